//! One server-side connection: optional TLS handshake, then the HTTP/1.1
//! request loop with fault injection driven by the shared knobs.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use rustls::HandshakeKind;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::http1::{self, BodyMode, Head, Parse, Request};
use crate::reply::Reply;
use crate::stats::{CloseReason, ConnGuard, RequestRecord};
use crate::upstream::Shared;

/// Longest we wait for a graceful shutdown (TLS close_notify + FIN).
const SHUTDOWN_LIMIT: Duration = Duration::from_secs(1);

/// While a reply waits out a delay, bytes the client sends (pipelined
/// requests) are buffered up to this size; beyond it the socket is no
/// longer watched during the wait.
const WATCH_LIMIT: usize = 1024 * 1024;

/// A byte stream backed by a TCP socket (plain or TLS).
trait Io: AsyncRead + AsyncWrite + Unpin + Send {
    fn tcp(&self) -> &TcpStream;
}

impl Io for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }
}

impl Io for tokio_rustls::server::TlsStream<TcpStream> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0
    }
}

/// Runs one accepted connection to completion.
pub(crate) async fn run(
    tcp: TcpStream,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
    conn: u64,
    mut guard: ConnGuard,
) {
    let Some(acceptor) = tls else {
        return Conn::new(tcp, shared, conn, guard).serve().await;
    };
    match acceptor.accept(tcp).await {
        Ok(stream) => {
            let kind = stream.get_ref().1.handshake_kind();
            guard.stats().update(|s| match kind {
                Some(HandshakeKind::Resumed) => s.tls_resumed += 1,
                _ => s.tls_full += 1,
            });
            Conn::new(stream, shared, conn, guard).serve().await;
        }
        Err(_) => guard.finish(CloseReason::TlsFailed),
    }
}

fn is_head(req: &Request) -> bool {
    req.method.eq_ignore_ascii_case("HEAD")
}

/// How writing a handler's reply ended.
enum Sent {
    /// Fully written.
    Complete,
    /// Deliberately cut short (`truncate_body`).
    Truncated,
    /// The client closed while the reply waited out a delay.
    ClientGone,
}

/// What waiting for the next request produced.
enum Next {
    Request(Request),
    Invalid,
    Idle,
    ClientGone,
}

struct Conn<S> {
    io: S,
    buf: BytesMut,
    shared: Arc<Shared>,
    conn: u64,
    guard: ConnGuard,
    read: u64,
    answered: u64,
}

impl<S: Io> Conn<S> {
    fn new(io: S, shared: Arc<Shared>, conn: u64, guard: ConnGuard) -> Self {
        Self {
            io,
            buf: BytesMut::with_capacity(8 * 1024),
            shared,
            conn,
            guard,
            read: 0,
            answered: 0,
        }
    }

    /// Records the close reason, then closes gracefully (FIN).
    async fn close(mut self, reason: CloseReason) {
        self.guard.finish(reason);
        let _ = tokio::time::timeout(SHUTDOWN_LIMIT, self.io.shutdown()).await;
    }

    async fn serve(mut self) {
        loop {
            let knobs = self.shared.knobs.get();
            if knobs
                .close_after_requests
                .is_some_and(|n| self.answered >= n)
            {
                return self.close(CloseReason::AfterRequests).await;
            }
            let req = match self.next_request().await {
                Next::Request(r) => r,
                Next::Idle => return self.close(CloseReason::Idle).await,
                Next::ClientGone => return self.guard.finish(CloseReason::Client),
                Next::Invalid => {
                    let _ = self.io.write_all(http1::bad_request()).await;
                    let _ = self.io.flush().await;
                    return self.close(CloseReason::Normal).await;
                }
            };
            self.read += 1;
            let record = RequestRecord {
                conn: self.conn,
                seq_on_conn: self.read,
                method: req.method.clone(),
                path: req.path.clone(),
                headers: req.headers.clone(),
                body: req.body.clone(),
            };
            self.guard.request(record.clone());
            let knobs = self.shared.knobs.get();
            if knobs.reset {
                self.guard.finish(CloseReason::Reset);
                let _ = socket2::SockRef::from(self.io.tcp()).set_linger(Some(Duration::ZERO));
                return drop(self.io);
            }
            if knobs
                .drop_next_request_after
                .is_some_and(|n| self.answered >= n)
            {
                return self.close(CloseReason::Dropped).await;
            }
            if let Some(d) = knobs.header_delay {
                tokio::time::sleep(d).await;
            }
            if let Some(n) = knobs.hold_responses {
                self.shared.gate.pass(n).await;
            }
            if let Some(handler) = self.shared.handler.clone() {
                let reply = (handler.0)(&record);
                let close =
                    knobs.connection_close || req.wants_close || http1::says_close(&reply.headers);
                match self.respond_reply(&req, &knobs, reply, close).await {
                    Ok(Sent::Complete) => {
                        self.answered += 1;
                        self.guard.response();
                    }
                    Ok(Sent::Truncated) | Err(_) => {
                        return self.close(CloseReason::Normal).await;
                    }
                    Ok(Sent::ClientGone) => return self.guard.finish(CloseReason::Client),
                }
                if close {
                    return self.close(CloseReason::Normal).await;
                }
                continue;
            }
            let truncated = knobs.truncate_body && !is_head(&req);
            match self.respond(&req, &knobs).await {
                Ok(true) => {
                    self.answered += 1;
                    self.guard.response();
                }
                Ok(false) => {}
                Err(_) => return self.close(CloseReason::Normal).await,
            }
            if truncated || knobs.connection_close || knobs.http10 || req.wants_close {
                return self.close(CloseReason::Normal).await;
            }
        }
    }

    /// Reads until one full request is buffered. With an empty buffer the
    /// wait is bounded by the idle-close knobs.
    async fn next_request(&mut self) -> Next {
        loop {
            if !self.buf.is_empty() {
                match http1::parse_request(&self.buf) {
                    Parse::Done(req, used) => {
                        self.buf.advance(used);
                        return Next::Request(req);
                    }
                    Parse::Invalid => return Next::Invalid,
                    Parse::Partial => {}
                }
            }
            let idle = if self.buf.is_empty() {
                self.shared.knobs.get().idle_timeout(self.answered)
            } else {
                None
            };
            self.buf.reserve(8 * 1024);
            let read = self.io.read_buf(&mut self.buf);
            let res = match idle {
                Some(d) => match tokio::time::timeout(d, read).await {
                    Ok(r) => r,
                    Err(_) => return Next::Idle,
                },
                None => read.await,
            };
            match res {
                Ok(0) | Err(_) => return Next::ClientGone,
                Ok(_) => {}
            }
        }
    }

    /// Writes the response. `Ok(true)` if it was complete, `Ok(false)` if it
    /// was deliberately truncated.
    async fn respond(
        &mut self,
        req: &Request,
        knobs: &crate::KnobSettings,
    ) -> std::io::Result<bool> {
        let body = self.shared.body.clone();
        let chunked = knobs
            .chunk_delay
            .filter(|_| !knobs.http10 && !knobs.truncate_body);
        let close = knobs.connection_close || req.wants_close;
        let head = http1::encode_head(&Head {
            http10: knobs.http10,
            status: 200,
            conn: self.conn,
            seq: self.read,
            body_len: body.len(),
            mode: if chunked.is_some() {
                BodyMode::Chunked
            } else {
                BodyMode::Length
            },
            close: close && !knobs.http10,
            keep_alive: knobs.keep_alive_header.filter(|_| !knobs.http10),
            extra: &[],
        });
        let mut out = head;
        let complete = if is_head(req) {
            true
        } else if knobs.truncate_body {
            out.extend_from_slice(&body[..body.len() / 2]);
            body.is_empty()
        } else if let Some(delay) = chunked {
            let parts = http1::split4(&body);
            for (i, part) in parts.iter().enumerate() {
                if i > 0 {
                    self.io.write_all(&out).await?;
                    self.io.flush().await?;
                    out.clear();
                    tokio::time::sleep(delay).await;
                }
                http1::push_chunk(&mut out, part);
            }
            out.extend_from_slice(http1::LAST_CHUNK);
            true
        } else {
            out.extend_from_slice(&body);
            true
        };
        self.io.write_all(&out).await?;
        self.io.flush().await?;
        Ok(complete)
    }

    /// Sleeps for `d` (tokio time) while watching the socket. Bytes that
    /// arrive meanwhile are kept for the next request. Returns `false` if
    /// the client closed (EOF or read error) before `d` elapsed.
    async fn pause(&mut self, d: Duration) -> bool {
        if d.is_zero() {
            return true;
        }
        let sleep = tokio::time::sleep(d);
        tokio::pin!(sleep);
        loop {
            if self.buf.len() >= WATCH_LIMIT {
                sleep.await;
                return true;
            }
            self.buf.reserve(8 * 1024);
            tokio::select! {
                () = &mut sleep => return true,
                res = self.io.read_buf(&mut self.buf) => match res {
                    Ok(0) | Err(_) => return false,
                    Ok(_) => {}
                },
            }
        }
    }

    /// Writes `bytes` and flushes.
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.io.write_all(bytes).await?;
        self.io.flush().await
    }

    /// Writes a handler's reply, streaming chunked bodies piece by piece.
    async fn respond_reply(
        &mut self,
        req: &Request,
        knobs: &crate::KnobSettings,
        reply: Reply,
        close: bool,
    ) -> std::io::Result<Sent> {
        let Reply {
            status,
            headers,
            header_delay,
            chunks,
        } = reply;
        let status = if status == 0 { 200 } else { status };
        let mode = if http1::bodyless_status(status) {
            BodyMode::None
        } else if chunks.len() > 1 || chunks.first().is_some_and(|(d, _)| !d.is_zero()) {
            BodyMode::Chunked
        } else {
            BodyMode::Length
        };
        let body_len = match mode {
            BodyMode::Length => chunks.first().map_or(0, |(_, b)| b.len()),
            _ => 0,
        };
        let mut out = http1::encode_head(&Head {
            http10: false,
            status,
            conn: self.conn,
            seq: self.read,
            body_len,
            mode,
            close,
            keep_alive: knobs.keep_alive_header,
            extra: &headers,
        });
        if !self.pause(header_delay).await {
            return Ok(Sent::ClientGone);
        }
        if is_head(req) || mode == BodyMode::None {
            self.send(&out).await?;
            return Ok(Sent::Complete);
        }
        if mode == BodyMode::Length {
            let body = chunks
                .into_iter()
                .next()
                .map(|(_, b)| b)
                .unwrap_or_default();
            if knobs.truncate_body {
                out.extend_from_slice(&body[..body.len() / 2]);
                self.send(&out).await?;
                return Ok(if body.is_empty() {
                    Sent::Complete
                } else {
                    Sent::Truncated
                });
            }
            out.extend_from_slice(&body);
            self.send(&out).await?;
            return Ok(Sent::Complete);
        }
        // Chunked: the head goes out at once, then each piece on its own.
        self.send(&out).await?;
        let keep = if knobs.truncate_body {
            chunks.len() / 2
        } else {
            chunks.len()
        };
        for (delay, piece) in chunks.iter().take(keep) {
            if !self.pause(*delay).await {
                return Ok(Sent::ClientGone);
            }
            if !piece.is_empty() {
                out.clear();
                http1::push_chunk(&mut out, piece);
                self.send(&out).await?;
            }
        }
        if keep < chunks.len() {
            return Ok(Sent::Truncated);
        }
        self.send(http1::LAST_CHUNK).await?;
        Ok(Sent::Complete)
    }
}
