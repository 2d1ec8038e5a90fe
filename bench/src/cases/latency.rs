//! P1 (reused-request latency vs unpooled through the 20 ms shim) and P2
//! (first request with `minFreeSockets` vs steady state).
//!
//! Both use the testkit's TLS upstream behind its `LatencyShim`, which
//! charges one round trip per new TCP connection and `one_way` per
//! direction: a new TLS 1.3 connection costs 3 round trips to the first
//! response byte, a reused one 1.

use std::time::{Duration, Instant};

use keepwarm::Client;
use keepwarm_testkit::{LatencyShim, Upstream};
use serde_json::json;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::util::{emit, median, ms, quantile, wait_for, BoxResult};

/// The shim's real round trip: `n` one-byte ping-pongs over one raw TCP
/// connection through a `LatencyShim` to an in-process echo server (no
/// HTTP, no TLS). The shim forwards each chunk at a tokio timer deadline,
/// rounded up to tokio's 1 ms resolution, so this is a little above the
/// nominal round trip; it is the fastest any client can go through it.
async fn shim_round_trip(n: usize, one_way: Duration) -> BoxResult<Vec<f64>> {
    let echo = TcpListener::bind("127.0.0.1:0").await?;
    let echo_addr = echo.local_addr()?;
    let server = tokio::spawn(async move {
        if let Ok((mut s, _)) = echo.accept().await {
            let _ = s.set_nodelay(true);
            let mut b = [0u8; 1];
            while let Ok(1) = s.read(&mut b).await {
                if s.write_all(&b).await.is_err() {
                    break;
                }
            }
        }
    });
    let shim = LatencyShim::start(echo_addr, one_way).await;
    let mut s = TcpStream::connect(shim.addr()).await?;
    s.set_nodelay(true)?;
    let mut b = [0u8; 1];
    let mut out = Vec::with_capacity(n);
    for i in 0..=n {
        let t = Instant::now();
        s.write_all(b"x").await?;
        s.read_exact(&mut b).await?;
        if i > 0 {
            out.push(ms(t.elapsed()));
        }
    }
    drop(s);
    server.abort();
    Ok(out)
}

fn client(up: &Upstream, keep_alive: bool) -> BoxResult<Client> {
    Ok(Client::builder()
        .keep_alive(keep_alive)
        .tls_built_in_roots(false)
        .add_root_certificate(up.ca_der())
        .build()?)
}

async fn timed_get(c: &Client, url: &str) -> BoxResult<Duration> {
    let t = Instant::now();
    let resp = c.get(url).await?;
    if !resp.status().is_success() {
        return Err(format!("{url}: status {}", resp.status()).into());
    }
    resp.into_body().bytes().await?;
    Ok(t.elapsed())
}

/// P1: `n` interleaved rounds of (direct pooled, pooled through the shim,
/// unpooled through the shim), after one warm-up request each.
pub(crate) async fn p1(n: usize, rtt_ms: u64) -> BoxResult<()> {
    let shim_rtt = median(&shim_round_trip(n.min(50), Duration::from_millis(rtt_ms) / 2).await?);
    let up = Upstream::tls().await;
    let shim = LatencyShim::start(up.addr(), Duration::from_millis(rtt_ms) / 2).await;
    let via_shim = format!("https://localhost:{}/p1", shim.addr().port());
    let direct_url = up.url("/p1");
    let direct = client(&up, true)?;
    let pooled = client(&up, true)?;
    let unpooled = client(&up, false)?;
    timed_get(&direct, &direct_url).await?;
    let pooled_first = timed_get(&pooled, &via_shim).await?;
    timed_get(&unpooled, &via_shim).await?;
    let (mut d, mut p, mut u) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        d.push(ms(timed_get(&direct, &direct_url).await?));
        p.push(ms(timed_get(&pooled, &via_shim).await?));
        u.push(ms(timed_get(&unpooled, &via_shim).await?));
    }
    let server = up.stats();
    let created: u64 = pooled
        .label_stats()
        .iter()
        .map(|s| s.pool.counters.created)
        .sum();
    let (pm, um, dm) = (median(&p), median(&u), median(&d));
    let ideal = shim_rtt + dm;
    emit(&json!({
        "case": "p1",
        "n": n,
        "rtt_ms": rtt_ms,
        "direct_ms": dm,
        "pooled_ms": pm,
        "pooled_p99_ms": quantile(&p, 0.99),
        "unpooled_ms": um,
        "unpooled_p99_ms": quantile(&u, 0.99),
        "pooled_first_ms": ms(pooled_first),
        "shim_rtt_ms": shim_rtt,
        "nominal_ideal_ms": rtt_ms as f64 + dm,
        "ideal_ms": ideal,
        "reduction_pct": 100.0 * (1.0 - pm / um),
        "pooled_over_ideal": pm / ideal,
        "pooled_over_nominal_ideal": pm / (rtt_ms as f64 + dm),
        "unpooled_round_trips": um / shim_rtt,
        "pooled_connections": created,
        "server_accepted": server.accepted,
        "server_tls_full": server.tls_full,
        "server_tls_resumed": server.tls_resumed,
        "pooled_series_ms": p,
        "unpooled_series_ms": u,
    }));
    Ok(())
}

/// P2: `trials` fresh clients with `minFreeSockets` 2, warmed before their
/// first request, against `trials` fresh cold clients; then `steady`
/// sequential requests on the warmed clients.
pub(crate) async fn p2(trials: usize, steady: usize, rtt_ms: u64) -> BoxResult<()> {
    let up = Upstream::tls().await;
    let shim = LatencyShim::start(up.addr(), Duration::from_millis(rtt_ms) / 2).await;
    let url = format!("https://localhost:{}/p2", shim.addr().port());
    let (mut warm_first, mut cold_first, mut steady_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut prewarmed = 0u64;
    let mut first_not_reused = 0u64;
    for _ in 0..trials {
        let cold = client(&up, true)?;
        cold_first.push(ms(timed_get(&cold, &url).await?));

        let warm = Client::builder()
            .min_free_sockets(2)
            .tls_built_in_roots(false)
            .add_root_certificate(up.ca_der())
            .build()?;
        // Ready when the server has completed two more TLS handshakes (its
        // count, not our gauge): in TLS 1.3 the server finishes after the
        // client's Finished, so both connections are usable by then.
        let handshakes = |s: &keepwarm_testkit::UpstreamStats| s.tls_full + s.tls_resumed;
        let before = handshakes(&up.stats());
        warm.warm(&url, None)?;
        let ready = wait_for(
            || handshakes(&up.stats()) >= before + 2,
            Duration::from_secs(5),
        )
        .await;
        if !ready {
            return Err("p2: the server did not complete 2 pre-warm handshakes within 5 s".into());
        }
        // Let the client park the connections it just finished (the server
        // may finish a moment before the pool files them as idle).
        wait_for(
            || warm.stats().iter().map(|s| s.pool.idle).sum::<usize>() >= 2,
            Duration::from_secs(1),
        )
        .await;
        let t = Instant::now();
        let resp = warm.get(&url).await?;
        // The first request must have gone out on a pre-warmed connection
        // (one that sat idle, not one opened for it).
        let reused = resp
            .extensions()
            .get::<keepwarm::ConnectionInfo>()
            .is_some_and(|i| !i.idle_for.is_zero());
        resp.into_body().bytes().await?;
        warm_first.push(ms(t.elapsed()));
        first_not_reused += u64::from(!reused);
        for _ in 0..steady {
            steady_ms.push(ms(timed_get(&warm, &url).await?));
        }
        prewarmed += warm
            .label_stats()
            .iter()
            .map(|s| s.pool.counters.prewarmed)
            .sum::<u64>();
    }
    let (wf, cf, st) = (median(&warm_first), median(&cold_first), median(&steady_ms));
    emit(&json!({
        "case": "p2",
        "trials": trials,
        "rtt_ms": rtt_ms,
        "warm_first_ms": wf,
        "cold_first_ms": cf,
        "steady_ms": st,
        "warm_first_over_steady": wf / st,
        "cold_first_over_steady": cf / st,
        "prewarmed_connections": prewarmed,
        "first_requests_not_on_a_prewarmed_connection": first_not_reused,
    }));
    Ok(())
}
