//! A loopback server that answers with bytes given by the test, verbatim:
//! for the framing corners and random input no well-behaved server sends.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One reply: the pieces written one by one (a yield between them), and
/// whether the server closes the connection after it.
pub(crate) struct Reply {
    pub(crate) pieces: Vec<Vec<u8>>,
    pub(crate) close: bool,
}

impl Reply {
    /// `bytes` in one write, the connection kept open.
    pub(crate) fn whole(bytes: &[u8]) -> Reply {
        Reply {
            pieces: vec![bytes.to_vec()],
            close: false,
        }
    }
}

/// A running scripted server.
pub(crate) struct Scripted {
    /// `http://127.0.0.1:PORT/s`.
    pub(crate) url: String,
    /// Connections accepted so far.
    pub(crate) accepted: Arc<AtomicU64>,
}

/// Answers the n-th request on any connection with `replies[n]` (the last
/// one repeated). Requests have no body here: a head is one request.
pub(crate) async fn serve(replies: Vec<Reply>) -> Scripted {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/s", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicU64::new(0));
    let (count, replies) = (accepted.clone(), Arc::new(replies));
    let next = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            // Each piece goes out at once (no Nagle wait for the ACK).
            sock.set_nodelay(true).unwrap();
            let (replies, next) = (replies.clone(), next.clone());
            tokio::spawn(async move {
                let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let n = next.fetch_add(1, Ordering::SeqCst) as usize;
                        let reply = &replies[n.min(replies.len() - 1)];
                        for piece in &reply.pieces {
                            if sock.write_all(piece).await.is_err() {
                                return;
                            }
                            tokio::task::yield_now().await;
                        }
                        if reply.close {
                            return;
                        }
                    }
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    Scripted { url, accepted }
}
