//! P3 (reuse and errors over many requests against nginx, its
//! `stub_status` the ground truth) and P4 (client throughput, keepwarm vs
//! reqwest's default pool, same server).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use keepwarm::Client;
use serde_json::json;

use crate::util::{emit, BoxResult, Stub};

/// One of the two clients under test, sending `GET url` and reading the
/// body to the end.
#[derive(Clone)]
pub(crate) enum Driver {
    /// keepwarm's `Client`.
    Keepwarm(Client),
    /// reqwest's `Client` with its default pool (no per-host cap).
    Reqwest(reqwest::Client),
}

impl Driver {
    /// `"keepwarm"` or `"reqwest"`.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Driver::Keepwarm(_) => "keepwarm",
            Driver::Reqwest(_) => "reqwest",
        }
    }

    /// One request; `Err` on a transport error or a non-2xx status.
    pub(crate) async fn get(&self, url: &Target) -> Result<(), String> {
        match self {
            Driver::Keepwarm(c) => {
                let r = c.get(&url.text).await.map_err(|e| e.to_string())?;
                let ok = r.status().is_success();
                r.into_body().bytes().await.map_err(|e| e.to_string())?;
                if ok {
                    Ok(())
                } else {
                    Err("status".into())
                }
            }
            Driver::Reqwest(c) => {
                // A pre-parsed `Url`, as a careful user would keep it (its
                // clone is one copy of the string; no parse per request).
                let r = c
                    .get(url.parsed.clone())
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let ok = r.status().is_success();
                r.bytes().await.map_err(|e| e.to_string())?;
                if ok {
                    Ok(())
                } else {
                    Err("status".into())
                }
            }
        }
    }
}

/// A request target, as text (keepwarm's `get` takes `&str`) and parsed
/// once up front for reqwest (whose `get` takes an `IntoUrl`: a `Url` is
/// used as is, a string is parsed on every request).
#[derive(Clone)]
pub(crate) struct Target {
    text: String,
    parsed: reqwest::Url,
}

impl Target {
    /// Parses `url` once.
    pub(crate) fn new(url: &str) -> BoxResult<Target> {
        Ok(Target {
            text: url.to_string(),
            parsed: reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?,
        })
    }
}

/// Builds the driver named `which` (`keepwarm` with `max_sockets`, or
/// `reqwest` with its defaults).
pub(crate) fn driver(which: &str, max_sockets: usize) -> BoxResult<Driver> {
    Ok(match which {
        "keepwarm" => Driver::Keepwarm(
            Client::builder()
                .max_sockets(max_sockets)
                .max_free_sockets(max_sockets)
                .build()?,
        ),
        "reqwest" => Driver::Reqwest(reqwest::Client::builder().build()?),
        other => return Err(format!("unknown client {other:?}: keepwarm or reqwest").into()),
    })
}

/// Sends requests `[0, total)` from `concurrency` tasks; returns errors and
/// the first error message.
async fn run_count(
    d: &Driver,
    url: &Target,
    total: u64,
    concurrency: usize,
) -> (u64, Option<String>) {
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first = Arc::new(std::sync::Mutex::new(None::<String>));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (d, url, next, errors, first) = (
            d.clone(),
            url.clone(),
            next.clone(),
            errors.clone(),
            first.clone(),
        );
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < total {
                if let Err(e) = d.get(&url).await {
                    errors.fetch_add(1, Ordering::Relaxed);
                    let mut f = first.lock().unwrap_or_else(|e| e.into_inner());
                    f.get_or_insert(e);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let msg = first.lock().unwrap_or_else(|e| e.into_inner()).take();
    (errors.load(Ordering::Relaxed), msg)
}

/// The fewest connections any client can open for `segments` (requests
/// between pauses longer than the server's idle timeout): every segment
/// starts with no live connection, needs `max_sockets` of them to run at
/// the concurrency given, and a connection carries at most `per_conn`
/// requests.
fn forced_minimum(segments: &[u64], max_sockets: u64, per_conn: Option<u64>) -> u64 {
    segments
        .iter()
        .map(|&r| {
            let by_limit = per_conn.map_or(0, |k| r.div_ceil(k));
            by_limit.max(max_sockets.min(r))
        })
        .sum()
}

/// Settings of one P3 run.
pub(crate) struct P3 {
    /// `generous` or `strict` (the label in the results).
    pub(crate) variant: String,
    /// Target URL on nginx.
    pub(crate) url: String,
    /// nginx `stub_status` URL.
    pub(crate) stub: String,
    /// Requests in all.
    pub(crate) requests: u64,
    /// Concurrent tasks.
    pub(crate) concurrency: usize,
    /// keepwarm's `maxSockets`.
    pub(crate) max_sockets: usize,
    /// Pauses (evenly spaced) in the traffic.
    pub(crate) pauses: u64,
    /// Length of each pause.
    pub(crate) pause: Duration,
    /// The server's `keepalive_requests`, when it limits.
    pub(crate) keepalive_requests: Option<u64>,
}

/// P3: `requests` GETs from `concurrency` tasks through one keepwarm client
/// with `maxSockets`, pausing `pauses` times; nginx's counts are the truth.
pub(crate) async fn p3(cfg: P3) -> BoxResult<()> {
    let d = driver("keepwarm", cfg.max_sockets)?;
    let Driver::Keepwarm(client) = &d else {
        unreachable!("driver(\"keepwarm\") builds keepwarm")
    };
    let target = Target::new(&cfg.url)?;
    let segs = cfg.pauses + 1;
    let segments: Vec<u64> = (0..segs)
        .map(|i| cfg.requests * (i + 1) / segs - cfg.requests * i / segs)
        .collect();
    let before = Stub::fetch(&cfg.stub)?;
    let t = Instant::now();
    let mut errors = 0;
    let mut first_error = None;
    for (i, &n) in segments.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(cfg.pause).await;
        }
        let (e, m) = run_count(&d, &target, n, cfg.concurrency).await;
        errors += e;
        first_error = first_error.or(m);
    }
    let elapsed = t.elapsed();
    let truth = Stub::fetch(&cfg.stub)?.delta(&before);
    let c = client
        .label_stats()
        .into_iter()
        .fold(keepwarm::KeySnapshot::default(), |mut a, s| {
            a.merge(&s.pool);
            a
        });
    let forced = forced_minimum(&segments, cfg.max_sockets as u64, cfg.keepalive_requests);
    let server_reuse = if truth.requests == 0 {
        0.0
    } else {
        100.0 * (truth.requests.saturating_sub(truth.accepts)) as f64 / truth.requests as f64
    };
    emit(&json!({
        "case": "p3",
        "variant": cfg.variant,
        "requests": cfg.requests,
        "concurrency": cfg.concurrency,
        "max_sockets": cfg.max_sockets,
        "pauses": cfg.pauses,
        "pause_ms": cfg.pause.as_millis() as u64,
        "segments": segments,
        "seconds": elapsed.as_secs_f64(),
        "errors": errors,
        "first_error": first_error,
        "nginx_connections": truth.accepts,
        "nginx_requests": truth.requests,
        "nginx_reuse_pct": server_reuse,
        "forced_minimum": forced,
        "connections_over_forced": truth.accepts as f64 / forced as f64,
        "client_requests": c.counters.requests,
        "client_reused": c.counters.reused,
        "client_created": c.counters.created,
        "client_reuse_pct": c.reuse_rate(),
        "client_stale": c.counters.stale,
        "client_retries": c.counters.retries,
        "client_matches_nginx": c.counters.created == truth.accepts
            && c.counters.requests == truth.requests,
    }));
    Ok(())
}

/// P4: `concurrency` tasks sending GETs for `duration` (after `warmup`),
/// with keepwarm or reqwest; reports requests per second and the
/// connections nginx accepted.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn p4(
    label: &str,
    which: &str,
    url: &str,
    stub: &str,
    concurrency: usize,
    max_sockets: usize,
    warmup: Duration,
    duration: Duration,
) -> BoxResult<()> {
    let d = driver(which, max_sockets)?;
    let target = Target::new(url)?;
    let before = Stub::fetch(stub)?;
    let deadline_warm = Instant::now() + warmup;
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let end = deadline_warm + duration;
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (d, url, done, errors) = (d.clone(), target.clone(), done.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            // Bounded by time (and, as a backstop, by count).
            for _ in 0..50_000_000u64 {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let r = d.get(&url).await;
                if r.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                // Count what completed inside the measured window.
                if now >= deadline_warm && Instant::now() <= end {
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let truth = Stub::fetch(stub)?.delta(&before);
    let n = done.load(Ordering::Relaxed);
    emit(&json!({
        "case": "p4",
        "variant": label,
        "client": d.name(),
        "concurrency": concurrency,
        "max_sockets": if which == "keepwarm" { Some(max_sockets) } else { None },
        "seconds": duration.as_secs_f64(),
        "requests": n,
        "rps": n as f64 / duration.as_secs_f64(),
        "errors": errors.load(Ordering::Relaxed),
        "nginx_connections": truth.accepts,
        "nginx_requests": truth.requests,
    }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::forced_minimum;

    #[test]
    fn forced_minimum_counts_limits_and_pauses() {
        assert_eq!(forced_minimum(&[100_000], 16, None), 16);
        assert_eq!(forced_minimum(&[20_000; 5], 16, Some(100)), 1000);
        assert_eq!(forced_minimum(&[1000, 1000], 16, Some(100)), 32);
        assert_eq!(forced_minimum(&[5], 16, Some(100)), 5);
    }
}
