//! P10: N concurrent streaming (SSE) requests through the gateway (a
//! separate `keepwarm serve` process, as in P7) to a TLS upstream, once
//! with the provider on `"protocol": "http2"` and once on `"http1"`.
//!
//! The upstream is the testkit `H2Server` over TLS offering ALPN
//! `h2, http/1.1` (HTTP/1.1 served by hyper for clients that pick it), a
//! fresh one per protocol, streaming the Anthropic mock's SSE events with
//! `gap` between them. Upstream connections and TLS handshakes are the
//! *server's* counts; time to first byte (first body bytes) and to last
//! byte are what the caller (a keepwarm client, its N connections to the
//! gateway opened before the burst) sees. One JSON line per protocol.

use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::join_all;
use http_body_util::BodyExt;
use keepwarm::Client;
use keepwarm_testkit::{anthropic_sse_body, cert_pem, H2Server, H2Stats};
use serde_json::json;

use crate::cases::gateway::start_gateway;
use crate::util::{free_port, ms, quantile, BoxResult};

/// The streaming request every caller sends.
const STREAM_BODY: &str =
    r#"{"model":"up,m","max_tokens":64,"stream":true,"messages":[{"role":"user","content":"hi"}]}"#;

/// The reply text the upstream streams, one `content_block_delta` per word.
const TEXT: &str = "Hello from the HTTP/2 benchmark upstream";

/// The SSE events the upstream sends, in order.
fn events() -> Vec<Bytes> {
    anthropic_sse_body("m", TEXT)
        .split_inclusive("\n\n")
        .map(|e| Bytes::copy_from_slice(e.as_bytes()))
        .collect()
}

/// What one streaming request took, as the caller saw it.
struct Timing {
    ttfb: Duration,
    ttlb: Duration,
}

/// Sends one streaming POST and reads it to the end; `Err` on a transport
/// error, a non-2xx status or a body other than `want`.
async fn one(c: &Client, url: &str, want: &[u8]) -> BoxResult<Timing> {
    let req = http::Request::post(url)
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(Bytes::from_static(STREAM_BODY.as_bytes()))?;
    let t = Instant::now();
    let resp = c.request(req).await?;
    let status = resp.status();
    let mut body = resp.into_body();
    let mut got = Vec::with_capacity(want.len());
    let mut ttfb = None;
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame?.into_data() {
            if !data.is_empty() && ttfb.is_none() {
                ttfb = Some(t.elapsed());
            }
            got.extend_from_slice(&data);
        }
    }
    let ttlb = t.elapsed();
    if !status.is_success() {
        let text = String::from_utf8_lossy(&got);
        return Err(format!("POST {url}: {status}: {text}").into());
    }
    if got != want {
        return Err(format!("POST {url}: the stream differs from what the upstream sent").into());
    }
    Ok(Timing {
        ttfb: ttfb.unwrap_or(ttlb),
        ttlb,
    })
}

/// Writes the gateway's config for `protocol` against `server` (its CA in
/// a PEM file beside it); returns the config's path and the gateway's port.
fn write_config(
    dir: &Path,
    server: &H2Server,
    protocol: &str,
    concurrency: usize,
) -> BoxResult<(String, u16)> {
    let port = free_port()?;
    std::fs::create_dir_all(dir)?;
    let ca = dir.join(format!("p10-ca-{port}.pem"));
    std::fs::write(&ca, cert_pem(&server.ca_der()))?;
    let cfg = json!({
        "PORT": port,
        "LOG_LEVEL": "warn",
        "Providers": [{
            "name": "up",
            "api_base_url": server.url("/v1/messages"),
            "api_key": "x",
            "models": ["m"],
            "tls": {"ca_file": ca.display().to_string()},
        }],
        "HttpConnectionPool": {"global": {
            "protocol": protocol,
            "maxSockets": concurrency,
            "maxFreeSockets": concurrency,
        }},
    });
    let path = dir.join(format!("p10-gateway-{port}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&cfg)?)?;
    Ok((path.display().to_string(), port))
}

/// One protocol: a fresh upstream and gateway, the caller's connections
/// opened, then `concurrency` streaming requests at once.
async fn run_one(
    gateway_bin: &str,
    workdir: &Path,
    protocol: &str,
    concurrency: usize,
    gap: Duration,
) -> BoxResult<()> {
    let events = events();
    let want: Vec<u8> = events.concat();
    let n_events = events.len();
    let server = H2Server::builder()
        .tls(true)
        .http1_fallback(true)
        .max_concurrent_streams(100)
        .content_type("text/event-stream")
        .stream(events, gap)
        .start()
        .await;
    let (config, port) = write_config(workdir, &server, protocol, concurrency)?;
    let mut gw = start_gateway(gateway_bin, &config, port).await?;
    let base = format!("http://127.0.0.1:{port}");
    let c = Client::builder().max_sockets(concurrency).build()?;
    // The caller's own connections to the gateway, so the burst times
    // only the gateway's upstream side opening (or not) connections.
    let health = format!("{base}/health");
    for r in join_all((0..concurrency).map(|_| c.get(&health))).await {
        r?.into_body().bytes().await?;
    }
    let before: H2Stats = server.stats();
    let url = format!("{base}/v1/messages");
    let started = Instant::now();
    let results = join_all((0..concurrency).map(|_| one(&c, &url, &want))).await;
    let wall = started.elapsed();
    let _ = gw.kill().await;
    let st = server.stats();
    let mut errors = 0u64;
    let mut first_error = None;
    let (mut ttfb, mut ttlb) = (Vec::new(), Vec::new());
    for r in results {
        match r {
            Ok(t) => {
                ttfb.push(ms(t.ttfb));
                ttlb.push(ms(t.ttlb));
            }
            Err(e) => {
                errors += 1;
                first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    if let Some(e) = &first_error {
        eprintln!("p10 {protocol}: {errors} of {concurrency} requests failed, first: {e}");
    }
    crate::util::emit(&json!({
        "case": "p10",
        "variant": protocol,
        "concurrency": concurrency,
        "events": n_events,
        "gap_ms": ms(gap),
        "upstream_connections": st.connections + st.http1_connections,
        "upstream_h2_connections": st.connections,
        "upstream_http1_connections": st.http1_connections,
        "tls_handshakes": st.tls_handshakes,
        "tls_resumed": st.tls_resumed,
        "h2_streams": st.streams,
        "http1_requests": st.http1_requests,
        "before_burst_connections": before.connections + before.http1_connections,
        "ttfb_p50_ms": quantile(&ttfb, 0.5),
        "ttfb_p99_ms": quantile(&ttfb, 0.99),
        "ttlb_p50_ms": quantile(&ttlb, 0.5),
        "ttlb_p99_ms": quantile(&ttlb, 0.99),
        "wall_ms": ms(wall),
        "errors": errors,
    }));
    Ok(())
}

/// P10: each of `protocols` in turn (`http2`, `http1`), `concurrency`
/// streaming requests at once, events `gap` apart.
pub(crate) async fn p10(
    gateway_bin: &str,
    workdir: &Path,
    protocols: &[String],
    concurrency: usize,
    gap: Duration,
) -> BoxResult<()> {
    if concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    for p in protocols {
        if p != "http2" && p != "http1" {
            return Err(format!("--protocol {p}: expected http2 or http1").into());
        }
        run_one(gateway_bin, workdir, p, concurrency, gap).await?;
    }
    Ok(())
}
