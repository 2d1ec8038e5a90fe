//! The accept loop every test server shares: accept, set `TCP_NODELAY`,
//! run the server's per-connection future in a set the loop owns (aborting
//! the loop's task drops the set, which aborts every connection), and back
//! off briefly when accept fails (e.g. out of file descriptors).

use std::future::Future;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Runs `each(tcp)` for every accepted connection, forever.
pub(crate) async fn serve_each<F, Fut>(listener: TcpListener, mut each: F)
where
    F: FnMut(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            res = listener.accept() => match res {
                Ok((tcp, _)) => {
                    let _ = tcp.set_nodelay(true);
                    conns.spawn(each(tcp));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}
