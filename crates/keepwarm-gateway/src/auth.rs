//! The gateway's own key: with `APIKEY` set every route needs it, as
//! `x-api-key` or `Authorization: Bearer`, compared in constant time. The
//! one exception is the dashboard's shell (HTML, CSS, JS: no data in it,
//! see [`crate::dashboard`]); the data it shows needs the key.

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, Shape};
use crate::state::AppState;

fn presented(req: &Request) -> Option<&[u8]> {
    if let Some(v) = req.headers().get("x-api-key") {
        return Some(v.as_bytes());
    }
    let auth = req.headers().get(http::header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = auth.split_at(auth.len().min(7));
    scheme.eq_ignore_ascii_case(b"bearer ").then_some(rest)
}

/// Middleware: 401 in the caller's API shape unless the key matches.
pub async fn require_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if crate::dashboard::is_public(req.uri().path()) {
        return next.run(req).await;
    }
    let ok = match &state.registry().config().api_key {
        None => true,
        Some(want) => {
            presented(&req).is_some_and(|got| bool::from(got.ct_eq(want.expose().as_bytes())))
        }
    };
    if ok {
        next.run(req).await
    } else {
        ApiError::unauthorized()
            .shaped(Shape::for_path(req.uri().path()))
            .into_response()
    }
}
