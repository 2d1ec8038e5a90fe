//! A TCP relay that adds a fixed one-way latency in each direction.
//!
//! Every chunk is timestamped when read and forwarded at `read_time +
//! one_way` by a per-direction writer, so chunks keep their order without
//! queueing behind each other's delay. EOF is forwarded (as a half-close)
//! in order after the data; an I/O error on either side resets both.
//!
//! The kernel completes the client's TCP handshake with the shim at once, so
//! the shim charges it explicitly: nothing is relayed on a new connection
//! until one round trip (`2 * one_way`) after it was accepted, as a real
//! network would make the client wait for SYN-ACK. A new TLS 1.3 connection
//! then costs 3 round trips to its first response byte, a reused one 1.
//! Delays use tokio's timer, whose 1 ms resolution adds up to 1 ms per
//! direction (a 20 ms round trip measures about 22 ms).

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

/// A latency-adding TCP relay on `127.0.0.1` in front of `target`.
///
/// A round trip through it costs at least `2 * one_way`. Dropping it stops
/// accepting and closes all relayed connections.
#[derive(Debug)]
pub struct LatencyShim {
    addr: SocketAddr,
    accepted: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl LatencyShim {
    /// Binds `127.0.0.1:0` and relays every accepted connection to `target`,
    /// delaying each direction by `one_way`.
    ///
    /// # Panics
    /// If binding the listener fails.
    pub async fn start(target: SocketAddr, one_way: Duration) -> LatencyShim {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener local_addr");
        let accepted = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(accept_loop(listener, target, one_way, accepted.clone()));
        LatencyShim {
            addr,
            accepted,
            task,
        }
    }

    /// The address to connect to instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections accepted by the shim so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for LatencyShim {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    target: SocketAddr,
    one_way: Duration,
    accepted: Arc<AtomicU64>,
) {
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            res = listener.accept() => match res {
                Ok((client, _)) => {
                    accepted.fetch_add(1, Ordering::SeqCst);
                    conns.spawn(relay(client, target, one_way));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn relay(client: TcpStream, target: SocketAddr, one_way: Duration) {
    let _ = client.set_nodelay(true);
    // The TCP handshake's round trip (see the module docs).
    tokio::time::sleep(2 * one_way).await;
    let Ok(server) = TcpStream::connect(target).await else {
        reset(&client);
        return;
    };
    let _ = server.set_nodelay(true);
    let res = tokio::try_join!(
        pump(&client, &server, one_way),
        pump(&server, &client, one_way)
    );
    if res.is_err() {
        reset(&client);
        reset(&server);
    }
}

/// Makes the coming close a reset (RST).
fn reset(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
}

/// Relays `from` -> `to` with delay; finishes after forwarding EOF.
async fn pump(from: &TcpStream, to: &TcpStream, one_way: Duration) -> io::Result<()> {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Option<Bytes>)>();
    let reader = async move {
        loop {
            from.readable().await?;
            let mut buf = vec![0u8; 16 * 1024];
            match from.try_read(&mut buf) {
                Ok(0) => {
                    let _ = tx.send((Instant::now(), None));
                    return Ok::<(), io::Error>(());
                }
                Ok(n) => {
                    buf.truncate(n);
                    let _ = tx.send((Instant::now(), Some(buf.into())));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
    };
    let writer = async {
        while let Some((read_at, chunk)) = rx.recv().await {
            // A deadline already past costs nothing (a timer would round it
            // up to tokio's next 1 ms tick).
            let due = read_at + one_way;
            if due > Instant::now() {
                tokio::time::sleep_until(due).await;
            }
            match chunk {
                Some(data) => write_all(to, &data).await?,
                None => {
                    socket2::SockRef::from(to).shutdown(Shutdown::Write)?;
                    break;
                }
            }
        }
        Ok::<(), io::Error>(())
    };
    tokio::try_join!(reader, writer)?;
    Ok(())
}

async fn write_all(to: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        to.writable().await?;
        match to.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
