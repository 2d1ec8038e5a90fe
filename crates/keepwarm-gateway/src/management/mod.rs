//! The management API: the first seed's seven endpoints, with numbers
//! counted from real sockets, plus the effective config and Prometheus
//! metrics.
//!
//! | route | answer (`{"success": true, "data": …, "timestamp": …}`) |
//! |---|---|
//! | `GET /api/connections/stats` | totals and one summary per provider |
//! | `GET /api/connections/provider/{name}` | one provider's summary (404 if unknown) |
//! | `GET /api/connections/providers` | the providers, their endpoints and pool state |
//! | `GET /api/connections/health` | `healthy`, totals and the `issues` found by the seed's rules |
//! | `GET /api/connections/details` | overview plus per-provider connections, performance and counters |
//! | `GET /api/connections/stream` | Server-Sent Events: the stats at once, then every `STATS_INTERVAL_MS` |
//! | `POST /api/connections/destroy/{provider}` | close idle connections now, active ones when done |
//! | `GET /api/connections/config` | the effective pool settings per provider, keys redacted |
//! | `GET /metrics` | Prometheus text format |
//!
//! Each provider's summary carries `resilience`: circuit breaker state and
//! transitions, retries by reason, fallbacks and per-key stats (keys
//! redacted); `/providers` `status` says `circuit_open` while its breaker is
//! open, and `/health` lists open breakers and disabled keys as issues.
//!
//! A provider's numbers cover exactly its own pool. Field meanings are
//! DESIGN.md's "Stats, defined".

mod handlers;
mod health;
mod metrics;
pub mod recent;
mod resilience;
mod view;

pub use handlers::routes;
pub(crate) use handlers::{fail, ok};
pub use health::{assess, Health};
pub use metrics::{metrics_handler, DurationSink, Metrics};
pub use view::{overview, provider_views, Overview, ProviderView};
