//! Serving: the accept loop (HTTP/1.1, a header-read timeout that cuts off
//! clients dribbling headers), graceful shutdown (stop accepting, let
//! in-flight requests and streams finish up to `SHUTDOWN_TIMEOUT_MS`, cut
//! what still runs then with an error event — see [`crate::drain`] — and
//! close the pools), and the rule that a non-loopback address needs `APIKEY`.

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::state::AppState;

/// Whether `host` is a loopback address (`127.0.0.0/8`, `::1`, `localhost`).
pub fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Refuses a config that would expose the gateway (and the provider keys it
/// holds) beyond this machine without `APIKEY`.
pub fn check_exposure(config: &Config) -> Result<(), String> {
    if is_loopback(&config.host) || config.api_key.is_some() {
        return Ok(());
    }
    Err(format!(
        "refusing to listen on {}:{} without APIKEY: anyone who can reach that address could use \
         your provider keys. Set APIKEY in config.json (clients then send it as x-api-key or \
         Authorization: Bearer), or listen on 127.0.0.1",
        config.host, config.port
    ))
}

/// Serves the gateway on `listener` until `shutdown` completes, then drains
/// in-flight requests for up to `SHUTDOWN_TIMEOUT_MS` and closes the pools.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let app = crate::app(state.clone());
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(state.registry().config().header_read_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // e.g. EMFILE: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                stream.set_nodelay(true).ok();
                let conn = builder.serve_connection(
                    TokioIo::new(stream),
                    TowerToHyperService::new(app.clone()),
                );
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "client connection ended with an error");
                    }
                });
            }
            _ = &mut shutdown => break,
        }
    }
    drop(listener);
    state.begin_shutdown();
    let deadline = state.registry().config().shutdown_timeout;
    tracing::info!(
        ?deadline,
        "shutting down: no new connections; waiting for in-flight requests"
    );
    let drained = graceful.shutdown();
    tokio::pin!(drained);
    if tokio::time::timeout(deadline, &mut drained).await.is_ok() {
        tracing::info!("all requests finished");
    } else {
        let before = state.metrics().streams_cut().get();
        state.cut_responses();
        // Let the cut responses send their error event and end.
        let flushed = tokio::time::timeout(CUT_GRACE, &mut drained).await.is_ok();
        let cut = state.metrics().streams_cut().get() - before;
        tracing::warn!(
            ?deadline,
            "shutdown deadline passed: cut {cut} response(s) still running, each with an error event{}",
            if flushed { "" } else { "; closing the connections that remain" }
        );
    }
    let closed = state.close_pools();
    tracing::info!("closed {closed} idle upstream connection(s); bye");
    Ok(())
}

/// After the deadline, how long cut responses get to send their last event.
const CUT_GRACE: Duration = Duration::from_secs(2);

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for h in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "[::1]",
            "localhost",
            "LOCALHOST",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in ["0.0.0.0", "192.168.1.10", "::", "example.com"] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
