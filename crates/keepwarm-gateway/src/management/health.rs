//! The seed's health rules, with configurable thresholds
//! (`HealthThresholds` in config.json):
//! - a provider's reuse rate below `reuseRateBelow` (70%), once it carried
//!   `minRequests` (20) requests;
//! - more than `idleAbove` (50) idle connections in total;
//! - a provider with all `maxSockets` connections active;
//! - closed connections that lived under `connectionAgeBelowMs` (10 s) on
//!   average, once `minClosedConnections` (10) have closed ("connections
//!   dying too quickly": measured on closed connections, because the open
//!   ones of a fresh pool are young by nature).

use keepwarm_pool::reuse_rate;
use serde_json::{json, Value};

use crate::config::HealthThresholds;
use crate::management::view::{overview, ProviderView};

/// The verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Health {
    /// No issue found.
    pub healthy: bool,
    /// What is wrong, one sentence each.
    pub issues: Vec<String>,
    /// The `data` object of `/health`.
    pub json: Value,
}

/// Applies the rules to `views`.
pub fn assess(views: &[ProviderView], t: &HealthThresholds) -> Health {
    let mut issues = Vec::new();
    for v in views {
        let c = &v.pool.counters;
        if c.requests >= t.min_requests && v.reuse_rate() < t.reuse_rate_below {
            issues.push(format!(
                "{}: reuse rate {:.1}% is below {}% over {} requests",
                v.name,
                v.reuse_rate(),
                t.reuse_rate_below,
                c.requests
            ));
        }
        if v.pool.active >= v.pool.max_sockets {
            issues.push(format!(
                "{}: all {} connections (maxSockets) are active; new requests wait ({} waiting now)",
                v.name, v.pool.max_sockets, v.pool.waiters
            ));
        }
        let lived = c.lifetime_histogram.mean();
        if c.lifetime_histogram.count() >= t.min_closed && lived < t.connection_age_below {
            issues.push(format!(
                "{}: closed connections lived {:.1} s on average, under {} s: connections are dying too quickly",
                v.name,
                lived.as_secs_f64(),
                t.connection_age_below.as_secs_f64()
            ));
        }
    }
    let o = overview(views);
    if o.idle > t.idle_above {
        issues.push(format!(
            "{} idle connections in total, above {}",
            o.idle, t.idle_above
        ));
    }
    let healthy = issues.is_empty();
    let json = json!({
        "healthy": healthy,
        "totalConnections": o.active + o.idle,
        "activeConnections": o.active,
        "idleConnections": o.idle,
        "reuseRate": reuse_rate(o.reused, o.requests),
        "issues": issues,
    });
    Health {
        healthy,
        issues,
        json,
    }
}
