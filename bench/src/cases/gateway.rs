//! P6 (gateway throughput vs nginx and HAProxy as reverse proxies, same
//! upstream, same load generator, and the upstream connections each opened)
//! and P7 (the gateway's added latency vs calling the upstream directly).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use keepwarm::Client;
use keepwarm_testkit::Upstream;
use serde_json::json;
use tokio::process::{Child, Command};

use crate::util::{
    emit, free_port, median, open_to, quantile, us, BoxResult, PeakSampler, Stub, CHAT_BODY,
};

/// Writes a gateway `config.json` in `dir` for one provider `up` at
/// `upstream` (a full URL), returning its path and the gateway's port.
pub(crate) fn write_config(
    dir: &Path,
    upstream: &str,
    max_sockets: usize,
) -> BoxResult<(String, u16)> {
    let port = free_port()?;
    let cfg = json!({
        "PORT": port,
        "LOG_LEVEL": "warn",
        "Providers": [{"name": "up", "api_base_url": upstream, "api_key": "x", "models": ["m"]}],
        "HttpConnectionPool": {"global": {"maxSockets": max_sockets, "maxFreeSockets": max_sockets}},
    });
    std::fs::create_dir_all(dir)?;
    let path = dir.join(format!("gateway-{port}.json"));
    std::fs::write(&path, serde_json::to_vec_pretty(&cfg)?)?;
    Ok((path.display().to_string(), port))
}

/// Starts `keepwarm serve --config PATH` and waits (≤ 20 s) for `/health`.
pub(crate) async fn start_gateway(bin: &str, config: &str, port: u16) -> BoxResult<Child> {
    let mut child = Command::new(bin)
        .args(["serve", "--config", config])
        .stdout(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("starting {bin}: {e}"))?;
    let probe = Client::builder().max_sockets(1).build()?;
    let url = format!("http://127.0.0.1:{port}/health");
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(20) {
        if let Ok(r) = probe.get(&url).await {
            if r.status().is_success() {
                return Ok(child);
            }
        }
        if let Some(st) = child.try_wait()? {
            return Err(format!("the gateway exited early: {st}").into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err("the gateway did not answer /health within 20 s".into())
}

fn post(url: &str) -> BoxResult<http::Request<Bytes>> {
    Ok(http::Request::post(url)
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(Bytes::from_static(CHAT_BODY.as_bytes()))?)
}

async fn timed_post(c: &Client, url: &str) -> BoxResult<Duration> {
    let t = Instant::now();
    let r = c.request(post(url)?).await?;
    let status = r.status();
    r.into_body().bytes().await?;
    if !status.is_success() {
        return Err(format!("POST {url}: {status}").into());
    }
    Ok(t.elapsed())
}

/// Median and p99 (µs) of `n` interleaved sequential POSTs to `direct` and
/// to each of `vias` (after 50 warm-up rounds).
async fn interleaved(
    c: &Client,
    direct: &str,
    vias: &[(String, String)],
    n: usize,
) -> BoxResult<(Vec<f64>, Vec<Vec<f64>>)> {
    for _ in 0..50 {
        timed_post(c, direct).await?;
        for (_, u) in vias {
            timed_post(c, u).await?;
        }
    }
    let mut d = Vec::with_capacity(n);
    let mut v = vec![Vec::with_capacity(n); vias.len()];
    for _ in 0..n {
        d.push(us(timed_post(c, direct).await?));
        for (i, (_, u)) in vias.iter().enumerate() {
            v[i].push(us(timed_post(c, u).await?));
        }
    }
    Ok((d, v))
}

/// P7: `n` interleaved sequential POSTs, directly to a testkit upstream and
/// through the gateway (a separate process) to the same upstream.
pub(crate) async fn p7(gateway_bin: &str, workdir: &Path, n: usize) -> BoxResult<()> {
    let up = Upstream::builder()
        .body(r#"{"id":"msg","type":"message","content":[]}"#)
        .start()
        .await;
    let direct_url = up.url("/v1/messages");
    let (config, port) = write_config(workdir, &direct_url, 16)?;
    let mut gw = start_gateway(gateway_bin, &config, port).await?;
    let gw_url = format!("http://127.0.0.1:{port}/v1/messages");
    let c = Client::builder().build()?;
    let (d, g) = interleaved(&c, &direct_url, &[("keepwarm".into(), gw_url)], n).await?;
    let _ = gw.kill().await;
    let g = &g[0];
    let s = up.stats();
    let (d50, d99, g50, g99) = (median(&d), quantile(&d, 0.99), median(g), quantile(g, 0.99));
    emit(&json!({
        "case": "p7",
        "n": n,
        "direct_p50_us": d50,
        "direct_p99_us": d99,
        "gateway_p50_us": g50,
        "gateway_p99_us": g99,
        "added_p50_us": g50 - d50,
        "added_p99_us": g99 - d99,
        "upstream_connections": s.accepted,
    }));
    Ok(())
}

/// P7 against peers: the same measurement with nginx as the upstream and
/// every proxy of P6 (`name=url`) in front of it, for reference.
pub(crate) async fn p7_peers(direct: &str, vias: &[(String, String)], n: usize) -> BoxResult<()> {
    let c = Client::builder().build()?;
    let (d, v) = interleaved(&c, direct, vias, n).await?;
    let (d50, d99) = (median(&d), quantile(&d, 0.99));
    let mut out = serde_json::Map::new();
    out.insert("case".into(), json!("p7_peers"));
    out.insert("n".into(), json!(n));
    out.insert("direct_p50_us".into(), json!(d50));
    out.insert("direct_p99_us".into(), json!(d99));
    for ((name, _), xs) in vias.iter().zip(&v) {
        out.insert(format!("{name}_added_p50_us"), json!(median(xs) - d50));
        out.insert(
            format!("{name}_added_p99_us"),
            json!(quantile(xs, 0.99) - d99),
        );
    }
    emit(&serde_json::Value::Object(out));
    Ok(())
}

/// Parses wrk's `Requests/sec:`, request count, latency percentiles and
/// error lines.
fn parse_wrk(out: &str) -> serde_json::Value {
    let mut rps = 0.0;
    let mut requests = 0u64;
    let mut non2xx = 0u64;
    let mut socket_errors = 0u64;
    let mut lat = serde_json::Map::new();
    let to_us = |v: &str| -> Option<f64> {
        let (num, mul) = if let Some(x) = v.strip_suffix("us") {
            (x, 1.0)
        } else if let Some(x) = v.strip_suffix("ms") {
            (x, 1e3)
        } else if let Some(x) = v.strip_suffix('s') {
            (x, 1e6)
        } else {
            (v, 1.0)
        };
        num.parse::<f64>().ok().map(|n| n * mul)
    };
    for l in out.lines() {
        let t = l.trim();
        if let Some(v) = t.strip_prefix("Requests/sec:") {
            rps = v.trim().parse().unwrap_or(0.0);
        } else if t.contains("requests in") {
            requests = t
                .split_whitespace()
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0);
        } else if let Some(v) = t.strip_prefix("Non-2xx or 3xx responses:") {
            non2xx = v.trim().parse().unwrap_or(0);
        } else if let Some(v) = t.strip_prefix("Socket errors:") {
            // connect 0, read 0, write 0, timeout 0
            socket_errors = v
                .split(',')
                .filter_map(|p| p.split_whitespace().last()?.parse::<u64>().ok())
                .sum();
        } else {
            for p in ["50%", "90%", "99%"] {
                if let Some(v) = t.strip_prefix(p) {
                    if let Some(x) = to_us(v.trim()) {
                        lat.insert(format!("p{}_us", &p[..2]), json!(x));
                    }
                }
            }
        }
    }
    json!({"rps": rps, "requests": requests, "non2xx": non2xx, "socket_errors": socket_errors, "latency": lat})
}

/// One P6 target: a name and the URL wrk loads.
pub(crate) struct Target {
    /// `keepwarm`, `nginx` or `haproxy`.
    pub(crate) name: String,
    /// The proxy's `/v1/messages` URL.
    pub(crate) url: String,
    /// The proxy's processes (for its CPU time), if known.
    pub(crate) pids: Vec<u32>,
    /// The gateway's `/api/connections/details` URL, for its own counts.
    pub(crate) admin: Option<String>,
}

/// The gateway's connection counters (`/api/connections/details`):
/// created and closed by reason, summed over its providers.
async fn gateway_counters(admin: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let c = Client::builder().max_sockets(1).build().ok()?;
    let r = c.get(admin).await.ok()?;
    let body = r.into_body().bytes().await.ok()?;
    let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
    let mut out = serde_json::Map::new();
    let mut add = |k: &str, x: u64| {
        let cur = out.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        out.insert(k.to_string(), json!(cur + x));
    };
    for p in v["data"]["providers"].as_array()? {
        let c = &p["counters"];
        for (k, name) in [
            ("created", "connectionsCreated"),
            ("connects_cancelled", "connectsCancelled"),
            ("connect_errors", "connectErrors"),
            ("stale", "staleCaughtBeforeReuse"),
            ("retries", "retries"),
        ] {
            add(k, c[name].as_u64().unwrap_or(0));
        }
        if let Some(m) = c["closedByReason"].as_object() {
            for (k, x) in m {
                add(&format!("closed_{k}"), x.as_u64().unwrap_or(0));
            }
        }
    }
    Some(out)
}

/// `after - before` for every counter.
fn counters_delta(
    before: &serde_json::Map<String, serde_json::Value>,
    after: &serde_json::Map<String, serde_json::Value>,
) -> serde_json::Value {
    after
        .iter()
        .map(|(k, v)| {
            let b = before
                .get(k)
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(0);
            (k.clone(), json!(v.as_u64().unwrap_or(0).saturating_sub(b)))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// utime + stime of the processes, in clock ticks (1/100 s).
fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).ok())
        .filter_map(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<u64> = rest
                .split_whitespace()
                .map(|x| x.parse().unwrap_or(0))
                .collect();
            Some(f.get(11)? + f.get(12)?)
        })
        .sum()
}

/// P6: for each target in turn, wrk (`threads`, `connections`) for
/// `warmup` then `duration`, POSTing the chat body with `script`; the
/// upstream nginx's `stub_status` counts the connections each proxy opened,
/// and the proxy's own sockets to `upstream_port` (sampled from `/proc`)
/// how many it held open at once.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn p6(
    targets: &[Target],
    stub: &str,
    upstream_port: u16,
    script: &str,
    threads: u32,
    connections: u32,
    warmup: Duration,
    duration: Duration,
) -> BoxResult<()> {
    for t in targets {
        let wrk = |d: Duration| {
            let mut c = Command::new("wrk");
            c.arg(format!("-t{threads}"))
                .arg(format!("-c{connections}"))
                .arg(format!("-d{}s", d.as_secs().max(1)))
                .arg("--latency")
                .args(["-s", script])
                .arg(&t.url)
                .kill_on_drop(true);
            c
        };
        if !warmup.is_zero() {
            let out = wrk(warmup).output().await?;
            if !out.status.success() {
                return Err(
                    format!("wrk {}: {}", t.url, String::from_utf8_lossy(&out.stderr)).into(),
                );
            }
        }
        // Let what the warm-up's stop set off (abandoned requests, see
        // below) settle before counting.
        tokio::time::sleep(Duration::from_secs(1)).await;
        // Connections are counted over the whole measured run, its start and
        // its end included. wrk's stop drops its connections mid-request,
        // which closes the upstream connections carrying those requests
        // (they cannot be reused); what the stop closes is reported on its
        // own (`upstream_closed_at_stop`), from the proxy's sockets to the
        // upstream just before the stop and after it settled.
        let open_at_start = open_to(&t.pids, upstream_port);
        let before = Stub::fetch(stub)?;
        let admin_before = match &t.admin {
            Some(a) => gateway_counters(a).await,
            None => None,
        };
        let sampler = PeakSampler::start(t.pids.clone(), upstream_port);
        let cpu0 = cpu_ticks(&t.pids);
        let child = wrk(duration)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        // Steady-state readings 300 ms before wrk stops.
        tokio::time::sleep(duration.saturating_sub(Duration::from_millis(300))).await;
        let steady = Stub::fetch(stub)?.delta(&before);
        let own_steady = match (&t.admin, &admin_before) {
            (Some(a), Some(b)) => gateway_counters(a)
                .await
                .map(|x| (counters_delta(b, &x), x)),
            _ => None,
        };
        let open_before_stop = open_to(&t.pids, upstream_port);
        let cpu = cpu_ticks(&t.pids).saturating_sub(cpu0);
        let out = child.wait_with_output().await?;
        let peak = sampler.finish();
        if !out.status.success() {
            return Err(format!("wrk {}: {}", t.url, String::from_utf8_lossy(&out.stderr)).into());
        }
        // Let the stop's consequences land, then read the whole run.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let open_after_stop = open_to(&t.pids, upstream_port);
        let mut whole = Stub::fetch(stub)?.delta(&before);
        // Less the steady reading's own connection and request.
        whole.accepts = whole.accepts.saturating_sub(1);
        whole.requests = whole.requests.saturating_sub(1);
        let own_stop = match (&t.admin, &own_steady) {
            (Some(a), Some((_, at_steady))) => gateway_counters(a)
                .await
                .map(|x| counters_delta(at_steady, &x)),
            _ => None,
        };
        let w = parse_wrk(&String::from_utf8_lossy(&out.stdout));
        let reqs_per_conn = if whole.accepts == 0 {
            whole.requests as f64
        } else {
            whole.requests as f64 / whole.accepts as f64
        };
        let has_pids = !t.pids.is_empty();
        emit(&json!({
            "case": "p6",
            "variant": t.name,
            "threads": threads,
            "connections": connections,
            "seconds": duration.as_secs_f64(),
            "rps": w["rps"],
            "requests": w["requests"],
            "errors": w["non2xx"].as_u64().unwrap_or(0) + w["socket_errors"].as_u64().unwrap_or(0),
            "latency": w["latency"],
            "upstream_connections": whole.accepts,
            // Distinct upstream connections the run used: the ones open at
            // its start plus the ones it opened (a pool that never churns
            // stays within maxSockets).
            "upstream_connections_used": has_pids.then_some(open_at_start + whole.accepts),
            "upstream_open_at_start": has_pids.then_some(open_at_start),
            "upstream_connections_steady": steady.accepts,
            "upstream_closed_at_stop": has_pids.then(|| open_before_stop.saturating_sub(open_after_stop)),
            "upstream_open_before_stop": has_pids.then_some(open_before_stop),
            "upstream_open_after_stop": has_pids.then_some(open_after_stop),
            "upstream_peak_open": has_pids.then_some(peak),
            "upstream_requests": whole.requests,
            "upstream_requests_per_connection": reqs_per_conn,
            "proxy_cpu_us_per_request": if !has_pids || w["requests"].as_u64().unwrap_or(0) == 0 {
                None
            } else {
                // CPU was read 300 ms before the end: per request at wrk's rate.
                Some(cpu as f64 * 10_000.0 / (w["rps"].as_f64().unwrap_or(1.0) * (duration.as_secs_f64() - 0.3)))
            },
            "proxy_cpu_cores": cpu as f64 / 100.0 / (duration.as_secs_f64() - 0.3),
            "gateway_counts_steady": own_steady.map(|(d, _)| d),
            "gateway_counts_at_stop": own_stop,
        }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_wrk;

    #[test]
    fn parses_wrk_output() {
        let out = "Running 2s test @ http://127.0.0.1:1/v1/messages\n  1 threads and 64 connections\n  Latency Distribution\n     50%    1.20ms\n     90%  800.00us\n     99%    2.00s\n  40000 requests in 2.00s, 5.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 4\nRequests/sec:  20000.50\n";
        let v = parse_wrk(out);
        assert_eq!(v["rps"], 20000.5);
        assert_eq!(v["requests"], 40000);
        assert_eq!(v["non2xx"], 4);
        assert_eq!(v["socket_errors"], 3);
        assert_eq!(v["latency"]["p50_us"], 1200.0);
        assert_eq!(v["latency"]["p90_us"], 800.0);
        assert_eq!(v["latency"]["p99_us"], 2_000_000.0);
    }
}
