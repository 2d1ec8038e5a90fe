//! The client's one error type: what happened, where (provider, host, port),
//! which limit or timeout, and the underlying cause.

use std::fmt;
use std::time::Duration;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Builder,
    InvalidUrl,
    Connect,
    Tls,
    Timeout,
    PoolExhausted,
    Request,
    Body,
}

/// An error from the client. Its message names the key (provider and
/// host:port), the limit or timeout involved, and the cause.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    kind: Kind,
    message: String,
    source: Option<BoxError>,
}

impl Error {
    pub(crate) fn new(kind: Kind, message: impl Into<String>, source: Option<BoxError>) -> Error {
        Error {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                source,
            }),
        }
    }

    pub(crate) fn builder(message: impl Into<String>) -> Error {
        Error::new(Kind::Builder, message, None)
    }

    pub(crate) fn invalid_url(message: impl Into<String>) -> Error {
        Error::new(Kind::InvalidUrl, message, None)
    }

    pub(crate) fn timeout(what: impl fmt::Display, limit: Duration) -> Error {
        Error::new(
            Kind::Timeout,
            format!("{what}: timed out after {limit:?}"),
            None,
        )
    }

    /// A timeout (connect, response headers, body inactivity).
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == Kind::Timeout
    }

    /// The connection could not be established (DNS, TCP).
    pub fn is_connect(&self) -> bool {
        self.inner.kind == Kind::Connect
    }

    /// The TLS handshake failed.
    pub fn is_tls(&self) -> bool {
        self.inner.kind == Kind::Tls
    }

    /// No connection slot freed within `acquireTimeout`.
    pub fn is_pool_exhausted(&self) -> bool {
        self.inner.kind == Kind::PoolExhausted
    }

    /// A bad client setting.
    pub fn is_builder(&self) -> bool {
        self.inner.kind == Kind::Builder
    }

    /// A URL the client cannot use (no host, unsupported scheme).
    pub fn is_invalid_url(&self) -> bool {
        self.inner.kind == Kind::InvalidUrl
    }

    /// The exchange failed after the connection was made (closed, reset,
    /// malformed response).
    pub fn is_request(&self) -> bool {
        self.inner.kind == Kind::Request
    }

    /// Reading the response body failed.
    pub fn is_body(&self) -> bool {
        self.inner.kind == Kind::Body
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.message)?;
        if let Some(src) = &self.inner.source {
            write!(f, ": {src}")?;
            let mut next = src.source();
            while let Some(s) = next {
                write!(f, ": {s}")?;
                next = s.source();
            }
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.inner.kind)
            .field("message", &self.to_string())
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.inner.source.as_deref().map(|e| e as _)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn is_one_pointer_and_names_the_cause_chain() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = Error::new(
            Kind::Connect,
            "connect to anthropic (127.0.0.1:9) failed",
            Some(Box::new(io)),
        );
        assert!(e.is_connect() && !e.is_timeout());
        assert_eq!(
            e.to_string(),
            "connect to anthropic (127.0.0.1:9) failed: connection refused"
        );
    }
}
