//! `Profile`: the per-label settings of a [`Client`](crate::Client) — the
//! pool options plus the client-level timers and the proxy — so one client can
//! serve several providers, each with its own settings, under one global
//! idle cap.

use std::sync::Arc;
use std::time::Duration;

use keepwarm_pool::PoolOptions;
use rustls::ClientConfig;

use crate::error::Error;
use crate::protocol::Protocol;
use crate::proxy::ProxyChoice;

/// The settings of the keys with one label (a provider). Set with
/// [`ClientBuilder::profile`](crate::ClientBuilder::profile); keys whose
/// label has no profile use the builder's own settings.
///
/// Build it from [`Profile::default`] with struct update syntax
/// (`Profile { timeout, ..Profile::default() }`) so fields added later
/// keep their defaults.
#[derive(Clone, Debug)]
pub struct Profile {
    /// Pool limits and timers (`maxSockets`, …). Default
    /// [`PoolOptions::default`].
    pub pool: PoolOptions,
    /// `connectTimeout`: DNS + TCP + TLS must finish within this.
    /// Default 10 s.
    pub connect_timeout: Duration,
    /// `timeout`: inactivity limit of an active exchange; also bounds the
    /// wait for response headers unless `response_header_timeout` is set.
    /// Default 30 s.
    pub timeout: Duration,
    /// How long to wait for response headers after sending. Default
    /// `None`: `timeout` applies. `Some(Duration::MAX)` turns the timer
    /// off, for a caller that bounds the whole request with its own
    /// deadline (the gateway does).
    pub response_header_timeout: Option<Duration>,
    /// `keepAliveMsecs`: initial delay of TCP keep-alive probes (and the
    /// HTTP/2 PING interval). Default 60 s.
    pub keep_alive_msecs: Duration,
    /// The label's proxy: the client's ([`ProxyChoice::Inherit`], the
    /// default), none, or its own. A changed proxy means new pool keys:
    /// connections through the old one are no longer used and close as
    /// idle.
    pub proxy: ProxyChoice,
    /// `protocol`: HTTP/1.1, HTTP/2, or what the server picks in ALPN
    /// (see [`Protocol`]). Default [`Protocol::Auto`].
    pub protocol: Protocol,
    /// `maxConcurrentStreams`: most streams on one HTTP/2 connection, below
    /// the server's limit. Default `None`: the server's limit.
    pub max_concurrent_streams: Option<u32>,
    /// The rustls configuration for this label's TLS connections (e.g. with
    /// a private CA among its roots; its ALPN list is replaced per
    /// `protocol`). Default `None`: the client's.
    pub tls: Option<Arc<ClientConfig>>,
}

impl Default for Profile {
    fn default() -> Self {
        Profile {
            pool: PoolOptions::default(),
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            response_header_timeout: None,
            keep_alive_msecs: Duration::from_secs(60),
            proxy: ProxyChoice::Inherit,
            protocol: Protocol::Auto,
            max_concurrent_streams: None,
            tls: None,
        }
    }
}

impl Profile {
    /// The wait for response headers: `response_header_timeout`, else
    /// `timeout`.
    pub fn header_timeout(&self) -> Duration {
        self.response_header_timeout.unwrap_or(self.timeout)
    }

    /// Checks the client-level timers (the pool options are checked with
    /// the pool's configuration); `whose` (e.g. ` (profile "p1")`) names
    /// the profile in the error.
    pub(crate) fn validate(&self, whose: &str) -> Result<(), Error> {
        for (name, d) in [
            ("connectTimeout", Some(self.connect_timeout)),
            ("timeout", Some(self.timeout)),
            ("responseHeaderTimeout", self.response_header_timeout),
            ("keepAliveMsecs", Some(self.keep_alive_msecs)),
        ] {
            if d.is_some_and(|d| d.is_zero()) {
                return Err(Error::builder(format!(
                    "invalid client setting {name}{whose}: must be greater than 0"
                )));
            }
        }
        if self.max_concurrent_streams == Some(0) {
            return Err(Error::builder(format!(
                "invalid client setting maxConcurrentStreams{whose}: must be at least 1, got 0"
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_header_timeout() {
        let p = Profile::default();
        assert_eq!(p.timeout, Duration::from_secs(30));
        assert_eq!(p.header_timeout(), Duration::from_secs(30));
        let p = Profile {
            response_header_timeout: Some(Duration::from_secs(600)),
            ..Profile::default()
        };
        assert_eq!(p.header_timeout(), Duration::from_secs(600));
    }

    #[test]
    fn a_zero_timer_is_named_with_its_profile() {
        let p = Profile {
            connect_timeout: Duration::ZERO,
            ..Profile::default()
        };
        let e = p.validate(" (profile \"p1\")").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid client setting connectTimeout (profile \"p1\"): must be greater than 0"
        );
        let p = Profile {
            max_concurrent_streams: Some(0),
            ..Profile::default()
        };
        let e = p.validate(" (profile \"p1\")").unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid client setting maxConcurrentStreams (profile \"p1\"): must be at least 1, got 0"
        );
    }
}
