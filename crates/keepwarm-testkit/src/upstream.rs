//! The running test server ([`Upstream`]) and its builder.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::knobs::{KnobSettings, Knobs};
use crate::reply::{Handler, Reply};
use crate::stats::{ConnGuard, RequestRecord, StatsCell, UpstreamStats};
use crate::tls::SelfSigned;

/// State shared by the accept loop and all connection tasks.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) knobs: Knobs,
    pub(crate) stats: Arc<StatsCell>,
    pub(crate) body: Bytes,
    pub(crate) handler: Option<Handler>,
    /// The `hold_responses` barrier.
    pub(crate) gate: crate::gate::Gate,
}

/// A running HTTP/1.1 server on `127.0.0.1` (optionally TLS) that counts what
/// happens on the server side and injects faults.
///
/// Dropping it stops accepting and aborts (closes) all its connections.
#[derive(Debug)]
pub struct Upstream {
    addr: SocketAddr,
    tls: bool,
    cert: SelfSigned,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

/// Builder for an [`Upstream`]; every setting has a default.
#[must_use]
#[derive(Debug, Clone)]
pub struct UpstreamBuilder {
    tls: bool,
    body: Bytes,
    knobs: KnobSettings,
    handler: Option<Handler>,
}

impl Default for UpstreamBuilder {
    fn default() -> Self {
        Self {
            tls: false,
            body: Bytes::from_static(b"ok"),
            knobs: KnobSettings::default(),
            handler: None,
        }
    }
}

impl UpstreamBuilder {
    /// Serve TLS (self-signed certificate for `localhost` / `127.0.0.1`,
    /// ALPN `http/1.1`, session resumption enabled). Default `false`.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// Response body for every request (unused when a
    /// [`handler`](Self::handler) is set). Default `b"ok"`.
    pub fn body(mut self, b: impl Into<Bytes>) -> Self {
        self.body = b.into();
        self
    }

    /// Initial fault knob values. Default: [`KnobSettings::default()`]
    /// (all off).
    pub fn knobs(mut self, k: KnobSettings) -> Self {
        self.knobs = k;
        self
    }

    /// Answer every request with the [`Reply`] this hook returns for it
    /// (called once per request, after it was recorded in the stats, on the
    /// connection's task; keep it quick and non-blocking). Default: none —
    /// every request gets the fixed [`body`](Self::body).
    ///
    /// The knobs `reset`, `drop_next_request_after`, `header_delay` (added
    /// to [`Reply::header_delay`]), `connection_close`, `keep_alive_header`,
    /// `close_idle_after` / `close_idle_random` and `close_after_requests`
    /// still apply. `truncate_body` sends only the first half of the body
    /// (half the bytes of a `Content-Length` body, or the first half of the
    /// chunks of a chunked one, without the terminating chunk) and closes.
    /// `chunk_delay` and `http10` are ignored (the reply decides framing;
    /// always HTTP/1.1). Responses still carry `X-Upstream-Conn` /
    /// `X-Upstream-Seq`.
    ///
    /// While waiting out a reply's delays the server watches the socket: if
    /// the client closes, the response is abandoned and the close counts in
    /// `client_closes`.
    pub fn handler(mut self, h: impl Fn(&RequestRecord) -> Reply + Send + Sync + 'static) -> Self {
        self.handler = Some(Handler(Arc::new(h)));
        self
    }

    /// Binds `127.0.0.1:0` and starts serving.
    ///
    /// # Panics
    /// If binding the listener or building the TLS configuration fails.
    pub async fn start(self) -> Upstream {
        let cert = SelfSigned::generate();
        let acceptor = self.tls.then(|| TlsAcceptor::from(cert.server_config()));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener local_addr");
        let shared = Arc::new(Shared {
            knobs: Knobs::new(self.knobs),
            stats: Arc::new(StatsCell::default()),
            body: self.body,
            handler: self.handler,
            gate: crate::gate::Gate::default(),
        });
        let accept = tokio::spawn(accept_loop(listener, acceptor, shared.clone()));
        Upstream {
            addr,
            tls: self.tls,
            cert,
            shared,
            accept,
        }
    }
}

async fn accept_loop(listener: TcpListener, tls: Option<TlsAcceptor>, shared: Arc<Shared>) {
    let mut next_conn = 0u64;
    crate::accept::serve_each(listener, |tcp| {
        next_conn += 1;
        let guard = ConnGuard::open(shared.stats.clone());
        crate::conn::run(tcp, tls.clone(), shared.clone(), next_conn, guard)
    })
    .await
}

impl Upstream {
    /// A builder with all defaults (plain HTTP, body `b"ok"`, knobs off).
    pub fn builder() -> UpstreamBuilder {
        UpstreamBuilder::default()
    }

    /// A plain-HTTP server with defaults (`builder().start()`).
    pub async fn plain() -> Upstream {
        Self::builder().start().await
    }

    /// A TLS server with defaults (`builder().tls(true).start()`).
    pub async fn tls() -> Upstream {
        Self::builder().tls(true).start().await
    }

    /// The bound address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether this server speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// A URL for `path`: `http://127.0.0.1:PORT/path`, or
    /// `https://localhost:PORT/path` for TLS (the certificate covers
    /// `localhost`). A missing leading `/` is added.
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        let port = self.addr.port();
        if self.tls {
            format!("https://localhost:{port}{slash}{path}")
        } else {
            format!("http://127.0.0.1:{port}{slash}{path}")
        }
    }

    /// A snapshot of the server-side counters.
    pub fn stats(&self) -> UpstreamStats {
        self.shared.stats.snapshot()
    }

    /// The fault knobs; changes apply to the next request / idle wait.
    pub fn knobs(&self) -> &Knobs {
        &self.shared.knobs
    }

    /// The self-signed certificate (DER), to add as a trusted root. Plain
    /// servers have one too (unused by them).
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.cert.cert.clone()
    }

    /// Polls the stats every 5 ms (tokio time, so paused time works) until
    /// `f` holds (`true`) or `max` has elapsed (`false`).
    pub async fn wait_until<F: Fn(&UpstreamStats) -> bool>(&self, f: F, max: Duration) -> bool {
        crate::wait::until(|| self.stats(), f, max).await
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
