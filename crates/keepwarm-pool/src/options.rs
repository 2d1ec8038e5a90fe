//! Pool options: the seed's `http.Agent` / `agentkeepalive` names, their defaults and validation.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

/// Limits and timers of the pool for one key.
///
/// Field names follow Node's `http.Agent` and the `agentkeepalive` package
/// (`maxSockets` is [`max_sockets`](Self::max_sockets) and so on); the
/// defaults are those of keepwarm's DESIGN.md.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolOptions {
    /// Keep connections after a response. `false` closes every connection
    /// after one request: the "no pool" baseline. Default `true`.
    pub keep_alive: bool,
    /// Hard limit of connections per key, counting connecting, active and
    /// idle ones. At the limit a request waits in FIFO order. Default 50.
    pub max_sockets: usize,
    /// Most idle connections kept per key; a released connection beyond it
    /// is closed. Default 10.
    pub max_free_sockets: usize,
    /// An idle connection unused this long is closed. Default 15 s.
    pub free_socket_timeout: Duration,
    /// A connection older than this is not reused (closed when released or
    /// when found idle). `None` means no limit. Default 600 s.
    pub max_socket_lifetime: Option<Duration>,
    /// How long a request may wait for a free slot at `max_sockets` before
    /// it fails with a pool-exhausted error. `None` waits forever.
    /// Default 30 s.
    pub acquire_timeout: Option<Duration>,
    /// Most requests one connection carries before it is closed. `None`
    /// means no limit. Default `None`.
    pub max_requests_per_socket: Option<u64>,
    /// Pre-warmed connections kept idle and ready per key once the key has
    /// been used (or warmed with `Pool::warm`), refilled in the background.
    /// Default 0.
    pub min_free_sockets: usize,
}

impl Default for PoolOptions {
    fn default() -> Self {
        PoolOptions {
            keep_alive: true,
            max_sockets: 50,
            max_free_sockets: 10,
            free_socket_timeout: Duration::from_secs(15),
            max_socket_lifetime: Some(Duration::from_secs(600)),
            acquire_timeout: Some(Duration::from_secs(30)),
            max_requests_per_socket: None,
            min_free_sockets: 0,
        }
    }
}

/// A setting that makes no sense, named with its camelCase config name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptionsError {
    /// Which option, e.g. `maxSockets`.
    pub option: &'static str,
    /// Why it is rejected.
    pub reason: String,
}

impl fmt::Display for OptionsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.option, self.reason)
    }
}

impl std::error::Error for OptionsError {}

fn bad(option: &'static str, reason: impl Into<String>) -> OptionsError {
    OptionsError {
        option,
        reason: reason.into(),
    }
}

fn positive(option: &'static str, d: Option<Duration>) -> Result<(), OptionsError> {
    match d {
        Some(d) if d.is_zero() => Err(bad(option, "must be greater than 0")),
        _ => Ok(()),
    }
}

impl PoolOptions {
    /// Checks that the options are consistent: `maxSockets` ≥ 1,
    /// `maxFreeSockets` ≤ `maxSockets`, `minFreeSockets` ≤ `maxFreeSockets`,
    /// timeouts and limits greater than zero.
    pub fn validate(&self) -> Result<(), OptionsError> {
        if self.max_sockets == 0 {
            return Err(bad("maxSockets", "must be at least 1, got 0"));
        }
        if self.max_free_sockets > self.max_sockets {
            return Err(bad(
                "maxFreeSockets",
                format!(
                    "{} is above maxSockets ({})",
                    self.max_free_sockets, self.max_sockets
                ),
            ));
        }
        if self.min_free_sockets > self.max_free_sockets {
            return Err(bad(
                "minFreeSockets",
                format!(
                    "{} is above maxFreeSockets ({})",
                    self.min_free_sockets, self.max_free_sockets
                ),
            ));
        }
        positive("freeSocketTimeout", Some(self.free_socket_timeout))?;
        positive("maxSocketLifetime", self.max_socket_lifetime)?;
        positive("acquireTimeout", self.acquire_timeout)?;
        if self.max_requests_per_socket == Some(0) {
            return Err(bad("maxRequestsPerSocket", "must be at least 1, got 0"));
        }
        Ok(())
    }
}

/// Options for a whole pool: defaults, per-label overrides and the global
/// idle cap.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PoolConfig {
    /// Options for every key whose label has no override.
    pub default: PoolOptions,
    /// Options for keys with this label (a provider name), replacing
    /// `default` whole. Default: none.
    pub per_label: HashMap<String, PoolOptions>,
    /// Most idle connections across all keys; past it the least recently
    /// used idle connection is closed. `None` means no global cap.
    /// Default `None`.
    pub max_idle_total: Option<usize>,
}

impl PoolConfig {
    /// Validates the default and every override.
    pub fn validate(&self) -> Result<(), OptionsError> {
        self.default.validate()?;
        for o in self.per_label.values() {
            o.validate()?;
        }
        if self.max_idle_total == Some(0) {
            return Err(bad("maxIdleTotal", "must be at least 1, got 0"));
        }
        Ok(())
    }

    /// The options in force for `label`.
    pub fn for_label(&self, label: &str) -> &PoolOptions {
        self.per_label.get(label).unwrap_or(&self.default)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_documented_values() {
        let o = PoolOptions::default();
        assert!(o.validate().is_ok());
        assert_eq!(o.max_sockets, 50);
        assert_eq!(o.max_free_sockets, 10);
        assert_eq!(o.free_socket_timeout, Duration::from_secs(15));
    }

    #[test]
    fn rejects_nonsense_with_the_option_name() {
        let o = PoolOptions {
            max_sockets: 0,
            ..Default::default()
        };
        assert_eq!(o.validate().unwrap_err().option, "maxSockets");
        let o = PoolOptions {
            max_sockets: 4,
            max_free_sockets: 5,
            ..Default::default()
        };
        let e = o.validate().unwrap_err();
        assert_eq!(e.to_string(), "maxFreeSockets: 5 is above maxSockets (4)");
        let o = PoolOptions {
            free_socket_timeout: Duration::ZERO,
            ..Default::default()
        };
        assert_eq!(o.validate().unwrap_err().option, "freeSocketTimeout");
        let o = PoolOptions {
            acquire_timeout: Some(Duration::ZERO),
            ..Default::default()
        };
        assert_eq!(o.validate().unwrap_err().option, "acquireTimeout");
        let o = PoolOptions {
            min_free_sockets: 11,
            ..Default::default()
        };
        assert_eq!(o.validate().unwrap_err().option, "minFreeSockets");
    }
}
