//! Reading a response's connection semantics: `Connection: close`, HTTP/1.0,
//! and the server's `Keep-Alive: timeout=N, max=M` hint.

use std::time::Duration;

use http::header::{HeaderMap, CONNECTION};
use http::Version;

/// What the response says about the connection's future.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ConnHints {
    /// The server will close the connection after this response.
    pub(crate) close: bool,
    /// The server's idle timeout, in seconds.
    pub(crate) timeout_secs: Option<u64>,
    /// Requests the server still allows on the connection.
    pub(crate) max: Option<u64>,
}

fn has_token(headers: &HeaderMap, token: &str) -> bool {
    headers.get_all(CONNECTION).iter().any(|v| {
        v.to_str()
            .unwrap_or("")
            .split(',')
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    })
}

pub(crate) fn read(version: Version, headers: &HeaderMap) -> ConnHints {
    let close = has_token(headers, "close")
        || (version <= Version::HTTP_10 && !has_token(headers, "keep-alive"));
    let mut hints = ConnHints {
        close,
        ..Default::default()
    };
    for v in headers.get_all("keep-alive") {
        for part in v.to_str().unwrap_or("").split(',') {
            let Some((name, value)) = part.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"').parse::<u64>().ok();
            match name.trim().to_ascii_lowercase().as_str() {
                "timeout" => hints.timeout_secs = value,
                "max" => hints.max = value,
                _ => {}
            }
        }
    }
    hints
}

/// The idle time to allow under a server's `timeout=N`: N seconds less a
/// margin of at least one second (a quarter of N when that is more), so we
/// never send on a socket the server is about to close.
pub(crate) fn idle_cap(timeout_secs: u64) -> Duration {
    let n = Duration::from_secs(timeout_secs);
    let margin = (n / 4).max(Duration::from_secs(1));
    n.saturating_sub(margin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.append(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn reads_connection_and_keep_alive() {
        assert!(read(Version::HTTP_11, &h(&[("connection", "Close")])).close);
        assert!(!read(Version::HTTP_11, &h(&[])).close);
        assert!(read(Version::HTTP_10, &h(&[])).close);
        assert!(!read(Version::HTTP_10, &h(&[("connection", "keep-alive")])).close);
        let k = read(
            Version::HTTP_11,
            &h(&[("keep-alive", "timeout=5, max=100")]),
        );
        assert_eq!((k.timeout_secs, k.max), (Some(5), Some(100)));
        let k = read(
            Version::HTTP_11,
            &h(&[("keep-alive", "garbage, timeout=x")]),
        );
        assert_eq!(k, ConnHints::default());
    }

    #[test]
    fn idle_cap_keeps_a_margin() {
        assert_eq!(idle_cap(1), Duration::ZERO);
        assert_eq!(idle_cap(2), Duration::from_secs(1));
        assert_eq!(idle_cap(5), Duration::from_millis(3750));
        assert_eq!(idle_cap(60), Duration::from_secs(45));
    }
}
