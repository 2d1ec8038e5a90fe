//! [`WarmReport`]: what [`Client::prewarm`](crate::Client::prewarm) opened,
//! and the watch that carries each pre-warm connect's outcome to it.

use std::collections::HashMap;
use std::sync::Mutex;

use tokio::sync::mpsc;

use crate::error::Error;
use crate::key::Key;
use crate::protocol::ConnProtocol;

/// The outcome of one [`Client::prewarm`](crate::Client::prewarm) call.
#[derive(Debug, Default)]
pub struct WarmReport {
    /// The protocol of each connection opened (TLS and ALPN done), in the
    /// order they finished.
    pub opened: Vec<ConnProtocol>,
    /// Why each connect that failed failed (naming the key and the cause).
    pub failed: Vec<Error>,
}

impl WarmReport {
    /// Connections opened speaking `p`.
    pub fn count(&self, p: ConnProtocol) -> usize {
        self.opened.iter().filter(|&&o| o == p).count()
    }
}

/// One pre-warm connect's outcome.
pub(crate) type Outcome = Result<ConnProtocol, Error>;

/// Keys someone waits on in `prewarm`, with where their outcomes go.
#[derive(Default)]
pub(crate) struct Watch(Mutex<HashMap<Key, mpsc::UnboundedSender<Outcome>>>);

impl Watch {
    /// Starts watching `key`'s pre-warm connects.
    pub(crate) fn start(&self, key: &Key) -> mpsc::UnboundedReceiver<Outcome> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone(), tx);
        rx
    }

    /// Stops watching `key`.
    pub(crate) fn stop(&self, key: &Key) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    /// Hands `outcome` to whoever watches `key`; gives it back otherwise.
    pub(crate) fn report(&self, key: &Key, outcome: Outcome) -> Option<Outcome> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(key) {
            Some(tx) => tx.send(outcome).err().map(|e| e.0),
            None => Some(outcome),
        }
    }
}
