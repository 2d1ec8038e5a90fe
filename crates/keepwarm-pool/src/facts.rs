//! The plain facts that pass between a lease and the pool's decisions:
//! what a checkout tells the caller ([`LeaseInfo`]), and how a lease ends
//! ([`Outcome`], [`Hints`]). A leaf module, so `dispatch`, `state` and
//! `lease` depend on it rather than on each other.

use std::time::Duration;

use crate::counters::CloseReason;

/// Facts about the connection a lease carries, fixed at checkout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseInfo {
    /// The pool's id of the connection (unique within the pool).
    pub id: u64,
    /// The connection had already carried a request.
    pub reused: bool,
    /// Requests the connection carried before this one.
    pub requests_before: u64,
    /// How long it sat idle before this request (zero for a shared
    /// connection already busy).
    pub idle_for: Duration,
    /// Its age at checkout.
    pub age: Duration,
}

/// How a lease ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The response was read to the end and the protocol allows reuse.
    Reusable,
    /// The connection must close, for this reason.
    Close(CloseReason),
}

/// Hints a lease learnt from the server (`Keep-Alive: timeout=, max=`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Hints {
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) remaining_requests: Option<u64>,
}
