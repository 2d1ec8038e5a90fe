//! The router: every route the gateway serves, behind the `APIKEY` check.
//!
//! | route | what |
//! |---|---|
//! | `POST /v1/messages` | Anthropic Messages API, routed by `"model": "provider,model"` |
//! | `POST /v1/messages/count_tokens` | Anthropic token counting |
//! | `POST /v1/chat/completions` | OpenAI Chat Completions API |
//! | `GET /health` | liveness |
//! | `/api/connections/…` | the management API (see [`crate::management`]) |
//! | `POST /api/config/reload` | re-read the config file (see [`crate::reload`]) |
//! | `GET /metrics` | Prometheus metrics |
//! | `GET /dashboard` | the live dashboard page (see [`crate::dashboard`]) |

use axum::extract::{Request, State};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use serde_json::json;

use crate::error::{ApiError, Shape};
use crate::state::AppState;
use crate::{auth, dashboard, management, proxy, reload};

/// The gateway's router over `state`.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/v1/messages", post(proxy::messages))
        .route("/v1/messages/count_tokens", post(proxy::count_tokens))
        .route("/v1/chat/completions", post(proxy::chat_completions))
        .route("/health", get(health))
        .nest("/api/connections", management::routes())
        .route("/api/config/reload", post(reload::reload_handler))
        .route("/metrics", get(management::metrics_handler))
        .merge(dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_key,
        ))
        .with_state(state)
}

async fn health(State(st): State<AppState>) -> Json<serde_json::Value> {
    Json(json!({
        "status": "ok",
        "uptimeSeconds": st.started().elapsed().as_secs(),
        "providers": st.registry().providers().iter().map(|p| &*p.name).collect::<Vec<_>>(),
    }))
}

async fn not_found(req: Request) -> Response {
    let path = req.uri().path().to_string();
    ApiError::not_found(format!("no route for {} {path}", req.method()))
        .shaped(Shape::for_path(&path))
        .into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    let path = req.uri().path().to_string();
    let mut e = ApiError::bad_request(
        "method_not_allowed",
        format!("{} is not allowed on {path}", req.method()),
    )
    .shaped(Shape::for_path(&path));
    e.status = StatusCode::METHOD_NOT_ALLOWED;
    e.into_response()
}
