//! [`H2Server`]: an HTTP/2 server on `127.0.0.1:0` (h2c with prior
//! knowledge, or TLS with ALPN `h2`), on the `h2` crate's server side. It
//! counts connections, streams, the most streams open at once on one
//! connection, GOAWAYs sent and streams refused ([`H2Stats`]), and has
//! knobs: the stream limit it advertises, a response delay, a graceful
//! GOAWAY after N streams per connection, refusing streams with
//! `REFUSED_STREAM`, and going silent (no more PING answers). Optionally
//! it offers ALPN `h2, http/1.1` and serves HTTP/1.1 to clients that pick
//! it ([`H2ServerBuilder::http1_fallback`]), counted apart.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{Reason, RecvStream};
use http::{Request, Response};
use rustls::HandshakeKind;
use rustls_pki_types::CertificateDer;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::h2server_h1::serve_http1;
use crate::h2stats::{H2Counters, H2Knobs, H2Stats};
use crate::tls::SelfSigned;

/// What every connection of one server shares.
pub(crate) struct Shared {
    pub(crate) counters: H2Counters,
    pub(crate) knobs: H2Knobs,
    max_streams: u32,
    /// The response body in the pieces it is sent in (one piece unless
    /// [`H2ServerBuilder::stream`] was used).
    pub(crate) pieces: Vec<Bytes>,
    /// Wait between two pieces.
    pub(crate) gap: Duration,
    pub(crate) content_type: Option<String>,
    silent: watch::Sender<bool>,
}

/// A running HTTP/2 test server. Dropping it closes every connection.
pub struct H2Server {
    addr: SocketAddr,
    tls: bool,
    cert: SelfSigned,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl std::fmt::Debug for H2Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("H2Server")
            .field("addr", &self.addr)
            .field("tls", &self.tls)
            .finish()
    }
}

/// Builder for an [`H2Server`]; every setting has a default.
#[must_use]
#[derive(Clone, Debug)]
pub struct H2ServerBuilder {
    tls: bool,
    max_streams: u32,
    delay: Duration,
    goaway_after: u64,
    pieces: Vec<Bytes>,
    gap: Duration,
    content_type: Option<String>,
    http1_fallback: bool,
}

impl Default for H2ServerBuilder {
    fn default() -> Self {
        H2ServerBuilder {
            tls: false,
            max_streams: 100,
            delay: Duration::ZERO,
            goaway_after: 0,
            pieces: vec![Bytes::from_static(b"ok")],
            gap: Duration::ZERO,
            content_type: None,
            http1_fallback: false,
        }
    }
}

impl H2ServerBuilder {
    /// Serve TLS with ALPN `h2` only (self-signed certificate for
    /// `localhost`). Default `false`: h2c with prior knowledge.
    pub fn tls(mut self, on: bool) -> Self {
        self.tls = on;
        self
    }

    /// `SETTINGS_MAX_CONCURRENT_STREAMS` it advertises (and enforces).
    /// Default 100.
    pub fn max_concurrent_streams(mut self, n: u32) -> Self {
        self.max_streams = n;
        self
    }

    /// Wait this long before each response's headers. Default zero.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    /// Start a graceful shutdown (GOAWAY) of a connection once it has
    /// accepted `n` streams. Default 0: never.
    pub fn goaway_after(mut self, n: u64) -> Self {
        self.goaway_after = n;
        self
    }

    /// With TLS, offer ALPN `h2, http/1.1` and serve HTTP/1.1 (hyper's
    /// server side; same delay and response) on connections whose client
    /// picks `http/1.1` or offers no ALPN, counted in
    /// [`H2Stats::http1_connections`](crate::H2Stats::http1_connections)
    /// and [`H2Stats::http1_requests`](crate::H2Stats::http1_requests),
    /// not in the HTTP/2 counts. Default `false`: ALPN `h2` only. No
    /// effect without [`tls`](Self::tls).
    pub fn http1_fallback(mut self, on: bool) -> Self {
        self.http1_fallback = on;
        self
    }

    /// The response body, sent at once with a `content-length`. Default
    /// `b"ok"`. Replaces a [`stream`](Self::stream).
    pub fn body(mut self, b: impl Into<Bytes>) -> Self {
        self.pieces = vec![b.into()];
        self.gap = Duration::ZERO;
        self
    }

    /// Stream the response body as these pieces (e.g. SSE events): the
    /// headers and the first piece after the delay, then each next piece
    /// `gap` later (tokio time), without a `content-length` (chunked over
    /// HTTP/1.1, one DATA frame per piece over HTTP/2). Replaces a
    /// [`body`](Self::body). Default: the body `b"ok"` at once.
    pub fn stream(mut self, pieces: Vec<Bytes>, gap: Duration) -> Self {
        self.pieces = pieces;
        self.gap = gap;
        self
    }

    /// The `content-type` of every response. Default: none sent.
    pub fn content_type(mut self, ct: impl Into<String>) -> Self {
        self.content_type = Some(ct.into());
        self
    }

    /// Binds `127.0.0.1:0` and starts serving.
    ///
    /// # Panics
    /// If binding the listener fails.
    pub async fn start(self) -> H2Server {
        let cert = SelfSigned::generate();
        let alpn = if self.http1_fallback {
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        } else {
            vec![b"h2".to_vec()]
        };
        let acceptor = self
            .tls
            .then(|| TlsAcceptor::from(cert.server_config_with_alpn(alpn)));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener local_addr");
        let knobs = H2Knobs::default();
        *knobs.delay.lock().unwrap_or_else(|e| e.into_inner()) = self.delay;
        knobs
            .goaway_after
            .store(self.goaway_after, Ordering::SeqCst);
        let shared = Arc::new(Shared {
            counters: H2Counters::default(),
            knobs,
            max_streams: self.max_streams,
            pieces: self.pieces,
            gap: self.gap,
            content_type: self.content_type,
            silent: watch::channel(false).0,
        });
        let fallback = self.tls && self.http1_fallback;
        let accept = tokio::spawn(accept_loop(listener, acceptor, fallback, shared.clone()));
        H2Server {
            addr,
            tls: self.tls,
            cert,
            shared,
            accept,
        }
    }
}

impl H2Server {
    /// A builder with all defaults.
    pub fn builder() -> H2ServerBuilder {
        H2ServerBuilder::default()
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT/path`, or `https://localhost:PORT/path` for TLS.
    pub fn url(&self, path: &str) -> String {
        let slash = if path.starts_with('/') { "" } else { "/" };
        let port = self.addr.port();
        if self.tls {
            format!("https://localhost:{port}{slash}{path}")
        } else {
            format!("http://127.0.0.1:{port}{slash}{path}")
        }
    }

    /// The self-signed certificate (DER), to trust as a root.
    pub fn ca_der(&self) -> CertificateDer<'static> {
        self.cert.cert.clone()
    }

    /// A snapshot of the server's counts.
    pub fn stats(&self) -> H2Stats {
        self.shared.counters.snapshot()
    }

    /// Sets the delay before each response's headers.
    pub fn set_delay(&self, d: Duration) {
        *self
            .shared
            .knobs
            .delay
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = d;
    }

    /// Graceful GOAWAY after `n` streams per connection (0: never).
    pub fn set_goaway_after(&self, n: u64) {
        self.shared.knobs.goaway_after.store(n, Ordering::SeqCst);
    }

    /// Refuse the next `n` streams with `REFUSED_STREAM`.
    pub fn refuse_next(&self, n: usize) {
        self.shared.knobs.refuse_next.store(n, Ordering::SeqCst);
    }

    /// Stop serving every open connection: no frame is read or written any
    /// more (so no PING is answered), the sockets stay open. New
    /// connections are still served.
    pub fn go_silent(&self) {
        self.shared.silent.send_replace(true);
    }

    /// Polls the stats every 5 ms until `f` holds (`true`) or `max` has
    /// passed (`false`).
    pub async fn wait_until(&self, f: impl Fn(&H2Stats) -> bool, max: Duration) -> bool {
        crate::wait::until(|| self.stats(), f, max).await
    }
}

impl Drop for H2Server {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    http1_fallback: bool,
    shared: Arc<Shared>,
) {
    crate::accept::serve_each(listener, |tcp| {
        let (tls, shared) = (tls.clone(), shared.clone());
        async move {
            match tls {
                Some(acceptor) => {
                    if let Ok(s) = acceptor.accept(tcp).await {
                        let c = &shared.counters;
                        c.tls_handshakes.fetch_add(1, Ordering::SeqCst);
                        if s.get_ref().1.handshake_kind() == Some(HandshakeKind::Resumed) {
                            c.tls_resumed.fetch_add(1, Ordering::SeqCst);
                        }
                        let h2 = s.get_ref().1.alpn_protocol() == Some(b"h2");
                        if http1_fallback && !h2 {
                            serve_http1(s, shared).await;
                        } else {
                            serve(s, shared).await;
                        }
                    }
                }
                None => serve(tcp, shared).await,
            }
        }
    })
    .await
}

/// Counts a connection open until dropped.
struct OpenConn<'a>(&'a H2Counters);

impl Drop for OpenConn<'_> {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve<T: AsyncRead + AsyncWrite + Unpin + Send + 'static>(io: T, shared: Arc<Shared>) {
    let Ok(mut conn) = h2::server::Builder::new()
        .max_concurrent_streams(shared.max_streams)
        .handshake::<_, Bytes>(io)
        .await
    else {
        return;
    };
    let c = &shared.counters;
    c.connections.fetch_add(1, Ordering::SeqCst);
    c.open_connections.fetch_add(1, Ordering::SeqCst);
    let _open = OpenConn(c);
    let mut silent = shared.silent.subscribe();
    let open_here = Arc::new(AtomicU64::new(0));
    let mut accepted = 0u64;
    let mut shutting_down = false;
    loop {
        tokio::select! {
            () = silenced(&mut silent) => {
                // Hold the socket, never poll the connection again.
                std::future::pending::<()>().await;
            }
            next = conn.accept() => match next {
                Some(Ok((req, respond))) => {
                    accepted += 1;
                    if shared.knobs.take_refusal() {
                        let mut respond = respond;
                        respond.send_reset(Reason::REFUSED_STREAM);
                        c.refused.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    tokio::spawn(answer(req, respond, shared.clone(), open_here.clone()));
                    let after = shared.knobs.goaway_after.load(Ordering::SeqCst);
                    if after > 0 && accepted >= after && !shutting_down {
                        shutting_down = true;
                        conn.graceful_shutdown();
                        c.goaways_sent.fetch_add(1, Ordering::SeqCst);
                    }
                }
                Some(Err(_)) | None => break,
            },
        }
    }
}

/// Resolves once the server was told to go silent.
/// Only a change after the connection started counts: connections opened
/// after [`H2Server::go_silent`] are served.
async fn silenced(rx: &mut watch::Receiver<bool>) {
    loop {
        if rx.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        if *rx.borrow_and_update() {
            return;
        }
    }
}

/// One stream: read the request, wait the delay, answer (or notice the
/// client's reset).
async fn answer(
    req: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    shared: Arc<Shared>,
    open_here: Arc<AtomicU64>,
) {
    let c = &shared.counters;
    let now_open = open_here.fetch_add(1, Ordering::SeqCst) + 1;
    c.max_concurrent_streams
        .fetch_max(now_open, Ordering::SeqCst);
    c.open_streams.fetch_add(1, Ordering::SeqCst);
    c.streams.fetch_add(1, Ordering::SeqCst);
    let mut body = req.into_body();
    let work = async {
        while let Some(chunk) = body.data().await {
            let Ok(chunk) = chunk else { return false };
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        tokio::time::sleep(shared.knobs.delay()).await;
        true
    };
    let reset = std::future::poll_fn(|cx| respond.poll_reset(cx));
    let finished = tokio::select! {
        ok = work => ok,
        _ = reset => false,
    };
    if finished {
        if !send_body(&mut respond, &shared).await {
            finished_as_cancelled(c);
        }
    } else {
        finished_as_cancelled(c);
    }
    open_here.fetch_sub(1, Ordering::SeqCst);
    c.open_streams.fetch_sub(1, Ordering::SeqCst);
}

impl Shared {
    /// A streamed body (more than one piece): no `content-length`.
    pub(crate) fn streamed(&self) -> bool {
        self.pieces.len() > 1
    }

    /// The body's length when sent at once.
    pub(crate) fn body_len(&self) -> usize {
        self.pieces.iter().map(Bytes::len).sum()
    }

    /// The response head (status 200, content type, length unless streamed).
    pub(crate) fn head(&self) -> http::response::Builder {
        let mut b = Response::builder().status(200);
        if let Some(ct) = &self.content_type {
            b = b.header("content-type", ct.as_str());
        }
        if !self.streamed() {
            b = b.header("content-length", self.body_len());
        }
        b
    }
}

/// Sends the head and the body's pieces `gap` apart; `false` when the
/// client reset the stream first.
async fn send_body(respond: &mut SendResponse<Bytes>, shared: &Shared) -> bool {
    let head = shared.head().body(()).unwrap_or_default();
    let end_now = shared.pieces.is_empty();
    let Ok(mut stream) = respond.send_response(head, end_now) else {
        return false;
    };
    let last = shared.pieces.len().saturating_sub(1);
    for (i, piece) in shared.pieces.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(shared.gap).await;
        }
        if stream.send_data(piece.clone(), i == last).is_err() {
            return false;
        }
    }
    true
}

fn finished_as_cancelled(c: &H2Counters) {
    c.cancelled.fetch_add(1, Ordering::SeqCst);
}
