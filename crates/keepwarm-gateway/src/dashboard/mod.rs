//! `GET /dashboard`: one page, no build step, its HTML, CSS and JavaScript
//! embedded in the binary. The page reads `/api/connections/stream` with
//! `fetch` and renders each event; with `APIKEY` set it asks for the key once
//! and keeps it in the tab's `sessionStorage`, sending it as `x-api-key`
//! (never in a URL). The three files here are the public shell: they hold no
//! data, so they are served without the key; every data call needs it.

use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};

use crate::state::AppState;

const HTML: &str = include_str!("index.html");
const JS: &str = include_str!("app.js");
const CSS: &str = include_str!("app.css");

/// Only this origin's scripts, styles and connections; no inline code.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                   img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The paths of the public shell (served without `APIKEY`).
pub const PUBLIC_PATHS: [&str; 3] = ["/dashboard", "/dashboard/app.js", "/dashboard/app.css"];

/// Whether `path` is part of the public shell.
pub fn is_public(path: &str) -> bool {
    PUBLIC_PATHS.contains(&path)
}

/// The dashboard's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/dashboard",
            get(|| async { asset(HTML, "text/html; charset=utf-8") }),
        )
        .route(
            "/dashboard/app.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/dashboard/app.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CONTENT_SECURITY_POLICY, CSP),
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
