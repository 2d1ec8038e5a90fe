//! `ConnectionInfo`: the facts about the connection a response came on,
//! carried in the response's extensions.

use std::time::Duration;

/// The TLS handshake that established a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Handshake {
    /// Plain TCP: no TLS.
    None,
    /// A full TLS handshake.
    Full,
    /// A resumed TLS session (no certificate exchange).
    Resumed,
}

/// Facts about the connection that carried a request; every response has
/// one in its extensions (`response.extensions().get::<ConnectionInfo>()`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The pool's id of the connection.
    pub id: u64,
    /// The connection had already carried a request (no connect, no
    /// handshake for this one).
    pub reused: bool,
    /// Requests the connection carried before this one.
    pub requests_before: u64,
    /// How long the connection sat idle before this request.
    pub idle_for: Duration,
    /// The connection's age when this request was sent.
    pub age: Duration,
    /// How the connection's TLS session was set up (when it was opened;
    /// a reused connection paid for it on an earlier request).
    pub handshake: Handshake,
    /// Attempts retried on another connection before this one succeeded.
    pub retries: u32,
}
