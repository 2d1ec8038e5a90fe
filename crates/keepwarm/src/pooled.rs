//! The connection the pool holds: HTTP/1.1 (one request at a time) or
//! HTTP/2 (shared by up to its stream limit).

use keepwarm_pool::Poolable;

use crate::h1::Http1Conn;
use crate::http2::H2Conn;
use crate::info::Handshake;

/// A pooled connection of either protocol.
pub(crate) enum Conn {
    /// HTTP/1.1.
    H1(Http1Conn),
    /// HTTP/2.
    H2(H2Conn),
}

impl Conn {
    /// How its TLS session was set up.
    pub(crate) fn handshake(&self) -> Handshake {
        match self {
            Conn::H1(c) => c.handshake,
            Conn::H2(c) => c.handshake,
        }
    }
}

impl Poolable for Conn {
    fn is_open(&self) -> bool {
        match self {
            Conn::H1(c) => c.is_open(),
            Conn::H2(c) => c.is_open(),
        }
    }

    fn poll_open(&mut self) -> bool {
        match self {
            Conn::H1(c) => c.poll_open(),
            Conn::H2(c) => c.is_open(),
        }
    }

    fn max_concurrent(&self) -> usize {
        match self {
            Conn::H1(_) => 1,
            Conn::H2(c) => c.capacity,
        }
    }

    fn share(&self) -> Option<Self> {
        match self {
            Conn::H1(_) => None,
            Conn::H2(c) => Some(Conn::H2(c.clone())),
        }
    }
}
