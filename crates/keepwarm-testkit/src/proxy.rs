//! [`ProxyServer`]: a counting HTTP proxy on `127.0.0.1:0` — `CONNECT`
//! tunnels (bytes relayed both ways) and absolute-form HTTP/1.1 forwarding
//! with keep-alive towards the client — with optional required credentials
//! (`407` without them) and a mode that answers `502` to every `CONNECT`.
//! What it saw is in [`ProxyStats`].

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// What the proxy saw (ground truth for tests).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyStats {
    /// Client TCP connections accepted.
    pub accepted: u64,
    /// `CONNECT` requests answered `200` (tunnels opened).
    pub connects: u64,
    /// Tunnels open now.
    pub tunnels_open: u64,
    /// Absolute-form requests forwarded to their origin.
    pub forwarded: u64,
    /// `407 Proxy Authentication Required` answers sent.
    pub auth_required: u64,
    /// `502 Bad Gateway` answers sent (refused `CONNECT`s, unreachable
    /// origins).
    pub bad_gateway: u64,
    /// Every request line's method and target, in order, e.g.
    /// `CONNECT localhost:443` or `GET http://127.0.0.1:8080/a`.
    pub targets: Vec<String>,
    /// The `Proxy-Authorization` value of every request (`None` when
    /// absent), in the order of `targets`.
    pub proxy_authorization: Vec<Option<String>>,
}

/// Counters shared by the accept loop and the connection tasks.
#[derive(Debug, Default)]
pub(crate) struct ProxyShared {
    stats: Mutex<ProxyStats>,
    /// The expected `Proxy-Authorization` value, when credentials are
    /// required.
    pub(crate) expected_auth: Option<String>,
    /// Answer `502` to every `CONNECT`.
    pub(crate) refuse_connect: bool,
}

impl ProxyShared {
    /// Applies `f` to the counters under the lock.
    pub(crate) fn update(&self, f: impl FnOnce(&mut ProxyStats)) {
        f(&mut self.stats.lock().unwrap_or_else(|e| e.into_inner()));
    }
}

/// A running counting proxy. Dropping it stops accepting and closes all
/// its connections and tunnels.
#[derive(Debug)]
pub struct ProxyServer {
    addr: SocketAddr,
    shared: Arc<ProxyShared>,
    accept: JoinHandle<()>,
}

/// Builder for a [`ProxyServer`]; every setting has a default.
#[must_use]
#[derive(Debug, Clone, Default)]
pub struct ProxyServerBuilder {
    credentials: Option<(String, String)>,
    refuse_connect: bool,
}

impl ProxyServerBuilder {
    /// Require `Proxy-Authorization: Basic base64(user:pass)`; requests
    /// without it (or with another) get `407`. Default: none required.
    pub fn credentials(mut self, user: &str, pass: &str) -> Self {
        self.credentials = Some((user.to_string(), pass.to_string()));
        self
    }

    /// Answer `502 Bad Gateway` to every `CONNECT`. Default `false`.
    pub fn refuse_connect(mut self, on: bool) -> Self {
        self.refuse_connect = on;
        self
    }

    /// Binds `127.0.0.1:0` and starts serving.
    ///
    /// # Panics
    /// If binding the listener fails.
    pub async fn start(self) -> ProxyServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener local_addr");
        let shared = Arc::new(ProxyShared {
            stats: Mutex::default(),
            expected_auth: self
                .credentials
                .map(|(u, p)| format!("Basic {}", base64(format!("{u}:{p}").as_bytes()))),
            refuse_connect: self.refuse_connect,
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        ProxyServer {
            addr,
            shared,
            accept,
        }
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<ProxyShared>) {
    crate::accept::serve_each(listener, |tcp| {
        shared.update(|s| s.accepted += 1);
        crate::proxy_conn::run(tcp, shared.clone())
    })
    .await
}

impl ProxyServer {
    /// A builder with all defaults (no credentials, `CONNECT` allowed).
    pub fn builder() -> ProxyServerBuilder {
        ProxyServerBuilder::default()
    }

    /// A proxy with defaults (`builder().start()`).
    pub async fn start() -> ProxyServer {
        Self::builder().start().await
    }

    /// The bound address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A snapshot of what the proxy saw.
    pub fn stats(&self) -> ProxyStats {
        self.shared
            .stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Polls the stats every 5 ms (tokio time) until `f` holds (`true`) or
    /// `max` has elapsed (`false`).
    pub async fn wait_until<F: Fn(&ProxyStats) -> bool>(&self, f: F, max: Duration) -> bool {
        crate::wait::until(|| self.stats(), f, max).await
    }
}

impl Drop for ProxyServer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Standard base64 with padding.
pub(crate) fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let v = chunk
            .iter()
            .enumerate()
            .fold(0u32, |v, (i, b)| v | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            out.push(if i <= chunk.len() {
                T[(v >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_of_credentials() {
        assert_eq!(
            super::base64(b"Aladdin:open sesame"),
            "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="
        );
        assert_eq!(super::base64(b"fo"), "Zm8=");
    }
}
