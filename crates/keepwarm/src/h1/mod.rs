//! HTTP/1.1 without a task per connection: the task that sends a request
//! writes it and reads the response head (`Http1Conn::send`), and whoever
//! reads the body reads it from the socket (`body::H1Body`). An idle
//! connection is a socket, its TLS state and a small watch; the read buffer
//! is dropped when the connection goes idle.
//!
//! Idle, nobody reads it. Its last poll (`park`) leaves the idle watch
//! registered as its socket's waker: news while parked (EOF, an error,
//! unexpected bytes) spawns a small check that asks the pool to look at the
//! connection (`Pool::check_idle`), which removes it as stale if it closed.
//! The pool also asks (`poll_open`) when it goes idle and before reuse.
//!
//! Learned from Pingora's HTTP/1 client (a lean exchange on `httparse`);
//! HTTP/2 stays on the h2 crate; hyper serves the gateway's side.

pub(crate) mod body;
mod decode;
mod encode;
mod io;

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::task::{Context, Poll, Wake, Waker};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Method, Uri};
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

pub(crate) use decode::{Framing, Head};
pub(crate) use io::Io;

use crate::client::ClientInner;
use crate::info::Handshake;
use crate::key::Key;

/// Size of a fresh read buffer (as hyper's first one).
const READ_BUF: usize = 8 * 1024;

/// An HTTP/1.1 connection as the pool holds it.
pub(crate) struct Http1Conn {
    io: Io,
    /// Bytes read and not yet consumed; empty and unallocated while idle.
    pub(crate) buf: BytesMut,
    /// The socket failed, closed, or is mid-exchange in a state nobody can
    /// resume: never reuse it.
    closed: bool,
    watch: Arc<Watch>,
    /// `watch` as a waker (made once).
    waker: Waker,
    pub(crate) handshake: Handshake,
}

/// The waker of a parked connection.
struct Watch {
    /// Parked: a wake means news on the socket.
    armed: AtomicBool,
    client: Weak<ClientInner>,
    key: Key,
    id: u64,
    rt: tokio::runtime::Handle,
}

impl Wake for Watch {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.armed.swap(false, Ordering::AcqRel) {
            return;
        }
        let me = self.clone();
        // Not inline: the waker runs inside the runtime's I/O driver.
        self.rt.spawn(async move {
            if let Some(c) = me.client.upgrade() {
                c.pool.check_idle(&me.key, me.id);
            }
        });
    }
}

/// Why an exchange failed, and what that allows.
#[derive(Debug)]
pub(crate) struct SendError {
    /// No byte of the request was written: safe to send again, any method.
    pub(crate) unwritten: bool,
    /// The server closed or reset the connection before any response
    /// byte: an idempotent request may be sent again.
    pub(crate) early: bool,
    pub(crate) source: Box<dyn std::error::Error + Send + Sync>,
}

impl SendError {
    fn io(e: std::io::Error, unwritten: bool, got_bytes: bool) -> SendError {
        use std::io::ErrorKind::*;
        let closing = matches!(
            e.kind(),
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
        );
        SendError {
            unwritten,
            early: closing && !got_bytes,
            source: Box::new(e),
        }
    }
}

impl Http1Conn {
    /// Connection `id` of `key` over `io`; parked (watched) until a request
    /// uses it.
    pub(crate) fn new(
        client: &Weak<ClientInner>,
        key: &Key,
        id: u64,
        io: Io,
        handshake: Handshake,
    ) -> Http1Conn {
        let watch = Arc::new(Watch {
            armed: AtomicBool::new(false),
            client: client.clone(),
            key: key.clone(),
            id,
            rt: tokio::runtime::Handle::current(),
        });
        let waker = Waker::from(watch.clone());
        let mut conn = Http1Conn {
            io,
            buf: BytesMut::new(),
            closed: false,
            watch,
            waker,
            handshake,
        };
        conn.park();
        conn
    }

    /// Not known to be closed.
    pub(crate) fn is_open(&self) -> bool {
        !self.closed
    }

    /// For the pool (`Poolable::poll_open`): looks at the socket (cheap when
    /// nothing happened: the runtime knows it is not readable) and leaves
    /// the idle watch on it.
    pub(crate) fn poll_open(&mut self) -> bool {
        self.park()
    }

    /// Polls the idle socket once with the idle watch as its waker: EOF, an
    /// error or unexpected bytes close the connection. `true` if still open.
    fn park(&mut self) -> bool {
        if self.closed {
            return false;
        }
        self.watch.armed.store(true, Ordering::Release);
        let mut cx = Context::from_waker(&self.waker);
        let mut probe = [0u8; 8];
        let mut probe = ReadBuf::new(&mut probe);
        match Pin::new(&mut self.io).poll_read(&mut cx, &mut probe) {
            Poll::Pending => true,
            // EOF, bytes nobody asked for, or an error.
            Poll::Ready(_) => {
                self.watch.armed.store(false, Ordering::Release);
                self.closed = true;
                false
            }
        }
    }

    /// Reads more into `buf`: the byte count, 0 at EOF.
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(READ_BUF);
        }
        let r = tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, &mut self.buf);
        if matches!(r, Poll::Ready(Ok(0) | Err(_))) {
            self.closed = true;
        }
        r
    }

    /// The exchange ended with the body read to its end: `true` if the
    /// connection may carry another request (nothing left unread), with its
    /// read buffer given back.
    pub(crate) fn finish_exchange(&mut self) -> bool {
        if !self.buf.is_empty() {
            // The server sent more than the response.
            self.closed = true;
        }
        self.buf = BytesMut::new();
        !self.closed
    }

    /// Marks the connection unusable (a body abandoned mid-way).
    pub(crate) fn abandon(&mut self) {
        self.closed = true;
    }

    /// Writes `method uri` with `headers` and `body`, and reads the response
    /// head (informational 1xx heads skipped). The body stays in the
    /// connection for [`body::H1Body`].
    pub(crate) async fn send(
        &mut self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &Bytes,
    ) -> Result<Head, SendError> {
        // From here the caller's task reads the socket.
        self.watch.armed.store(false, Ordering::Release);
        if self.closed {
            return Err(SendError {
                unwritten: true,
                early: true,
                source: "the connection was closed before the request was sent".into(),
            });
        }
        // Anything still read-ready now is a close or noise: not ours.
        self.closed = true;
        let inline = body.len() <= encode::INLINE_BODY;
        let mut out = Vec::with_capacity(256 + if inline { body.len() } else { 0 });
        encode::head(&mut out, method, uri, headers, body.len());
        if inline {
            out.extend_from_slice(body);
        }
        let mut written = 0;
        while written < out.len() {
            match self.io.write(&out[written..]).await {
                Ok(0) => {
                    let e = std::io::Error::from(std::io::ErrorKind::WriteZero);
                    return Err(SendError::io(e, written == 0, false));
                }
                Ok(n) => written += n,
                Err(e) => return Err(SendError::io(e, written == 0, false)),
            }
        }
        if !inline {
            self.io
                .write_all(body)
                .await
                .map_err(|e| SendError::io(e, false, false))?;
        }
        self.io
            .flush()
            .await
            .map_err(|e| SendError::io(e, false, false))?;
        let mut got_bytes = false;
        loop {
            match decode::head(&mut self.buf, method) {
                Ok(Some(head)) => {
                    let status = head.response.status();
                    if status.is_informational() && status != http::StatusCode::SWITCHING_PROTOCOLS
                    {
                        continue;
                    }
                    self.closed = false;
                    return Ok(head);
                }
                Ok(None) => {}
                Err(msg) => {
                    return Err(SendError {
                        unwritten: false,
                        early: false,
                        source: msg.into(),
                    })
                }
            }
            let n = poll_fn(|cx| self.poll_fill(cx))
                .await
                .map_err(|e| SendError::io(e, false, got_bytes))?;
            if n == 0 {
                let what = if got_bytes {
                    "the server closed the connection inside the response head"
                } else {
                    "the server closed the connection before responding"
                };
                let e = std::io::Error::new(std::io::ErrorKind::UnexpectedEof, what);
                return Err(SendError::io(e, false, got_bytes));
            }
            got_bytes = true;
        }
    }
}

impl Drop for Http1Conn {
    fn drop(&mut self) {
        self.watch.armed.store(false, Ordering::Release);
        if let Some(c) = self.watch.client.upgrade() {
            c.registry.closed(self.watch.id);
        }
    }
}
