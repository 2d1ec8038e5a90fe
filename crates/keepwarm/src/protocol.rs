//! Which HTTP version a client speaks to an origin, and the ALPN list that
//! goes with it.

use std::fmt;

/// The HTTP version to use with an origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Over TLS, offer ALPN `h2, http/1.1` and use what the server picks;
    /// over plain `http`, HTTP/1.1. The default.
    #[default]
    Auto,
    /// HTTP/1.1 only (ALPN `http/1.1`).
    Http1,
    /// HTTP/2 only: over TLS, ALPN `h2` is required (a server that does not
    /// pick it fails the connect); over plain `http`, h2c with prior
    /// knowledge.
    Http2,
}

impl Protocol {
    /// `"auto"`, `"http1"` or `"http2"`, as in configuration files.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Auto => "auto",
            Protocol::Http1 => "http1",
            Protocol::Http2 => "http2",
        }
    }

    /// The ALPN protocols offered over TLS, most preferred first.
    pub(crate) fn alpn(self) -> Vec<Vec<u8>> {
        match self {
            Protocol::Auto => vec![b"h2".to_vec(), b"http/1.1".to_vec()],
            Protocol::Http1 => vec![b"http/1.1".to_vec()],
            Protocol::Http2 => vec![b"h2".to_vec()],
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Protocol {
    type Err = String;

    /// Parses `auto`, `http1` or `http2` (ASCII case-insensitive).
    fn from_str(s: &str) -> Result<Protocol, String> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(Protocol::Auto),
            "http1" => Ok(Protocol::Http1),
            "http2" => Ok(Protocol::Http2),
            other => Err(format!(
                "unknown protocol `{other}`: expected \"auto\", \"http1\" or \"http2\""
            )),
        }
    }
}

/// The protocol a connection speaks, as reported in stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnProtocol {
    /// HTTP/1.1.
    Http1,
    /// HTTP/2 (over TLS via ALPN, or h2c).
    H2,
}

impl ConnProtocol {
    /// `"http1.1"` or `"h2"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConnProtocol::Http1 => "http1.1",
            ConnProtocol::H2 => "h2",
        }
    }
}

impl fmt::Display for ConnProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names() {
        for p in [Protocol::Auto, Protocol::Http1, Protocol::Http2] {
            assert_eq!(p.as_str().parse::<Protocol>(), Ok(p));
        }
        assert_eq!("HTTP2".parse::<Protocol>(), Ok(Protocol::Http2));
        assert!("h3".parse::<Protocol>().unwrap_err().contains("`h3`"));
        assert_eq!(Protocol::Auto.alpn()[0], b"h2");
        assert_eq!(Protocol::Http1.alpn(), vec![b"http/1.1".to_vec()]);
    }
}
