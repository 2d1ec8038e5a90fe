//! keepwarm-gateway: an LLM API gateway whose requests go through one
//! keep-alive pool (a `keepwarm::Client`) with a profile per provider.
//!
//! [`app`] builds the router (see [`mod@app`] for the routes); [`server::serve`]
//! runs it with a header-read timeout and graceful shutdown; [`config`]
//! reads `config.json` (claude-code-router's conventions plus the
//! `HttpConnectionPool` block).
//!
//! Data flows one way: route → `&Provider` ([`registry`]) → client →
//! upstream; facts flow back as values (`ConnectionInfo` on each response,
//! counters in the pool).

pub mod app;
pub mod auth;
pub mod body_json;
pub mod bridge;
pub mod cli;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod headers;
pub mod management;
pub mod prewarm;
pub mod proxy;
pub mod registry;
pub mod reload;
pub mod resilience;
pub mod routing;
pub mod scenario;
pub mod server;
pub mod state;
pub mod tokens;
pub mod transformer;
pub mod translate;

mod access_log;
mod attempts;
mod drain;
mod leased_body;
mod request_body;
mod trust;

pub use app::app;
pub use state::AppState;
