//! P8 (memory per idle connection: RSS growth of this process holding
//! 10,000 idle plain and TLS connections) and P9's idle half (CPU wakeups
//! of a pool holding 1,000 idle connections).
//!
//! The upstream runs in a child process (`serve-upstream`, this binary), so
//! only the client's memory and wakeups are counted here. Each connection
//! carries one request, then sits idle in the pool (see [`open_idle`]).

use std::io::Write as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use keepwarm::Client;
use keepwarm_testkit::Upstream;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::util::{emit, rss_kib, BoxResult, ProcCounters};

/// The child upstream: prints `ready PORT CA_HEX`, then serves until its
/// standard input closes (or `max` passes).
pub(crate) async fn serve_upstream(tls: bool, max: Duration) -> BoxResult<()> {
    let up = Upstream::builder().tls(tls).start().await;
    let ca: String = up.ca_der().iter().map(|b| format!("{b:02x}")).collect();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready {} {ca}", up.addr().port())?;
        out.flush()?;
    }
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let end = tokio::time::sleep(max);
    tokio::pin!(end);
    loop {
        tokio::select! {
            l = lines.next_line() => match l? {
                Some(cmd) if cmd.trim() == "stats" => {
                    let s = up.stats();
                    println!("{}", json!({"accepted": s.accepted, "open": s.open, "requests": s.requests}));
                }
                Some(_) => {}
                None => break,
            },
            _ = &mut end => break,
        }
    }
    Ok(())
}

/// A running child upstream.
pub(crate) struct ChildUpstream {
    _child: Child,
    /// Its standard input (commands: `stats`).
    stdin: tokio::process::ChildStdin,
    /// Its standard output, after the `ready` line.
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    /// Its URL (`http://127.0.0.1:PORT/` or `https://localhost:PORT/`).
    pub(crate) url: String,
    /// Its certificate, to trust.
    pub(crate) ca: Vec<u8>,
}

/// Starts `serve-upstream` in a child process.
pub(crate) async fn child_upstream(tls: bool) -> BoxResult<ChildUpstream> {
    let me = std::env::current_exe()?;
    let mut child = Command::new(me)
        .arg("serve-upstream")
        .args(if tls { vec!["--tls"] } else { vec![] })
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .map_err(|_| "the child upstream did not start within 20 s")??
        .ok_or("the child upstream exited")?;
    let mut it = line.split_whitespace().skip(1);
    let port: u16 = it.next().ok_or("no port")?.parse()?;
    let hex = it.next().unwrap_or("");
    let ca = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()?;
    let url = if tls {
        format!("https://localhost:{port}/idle")
    } else {
        format!("http://127.0.0.1:{port}/idle")
    };
    let stdin = child.stdin.take().ok_or("no stdin")?;
    Ok(ChildUpstream {
        _child: child,
        stdin,
        lines,
        url,
        ca,
    })
}

impl ChildUpstream {
    /// The server's count of connections open now (its `stats` command).
    pub(crate) async fn open(&mut self) -> BoxResult<u64> {
        use tokio::io::AsyncWriteExt as _;
        self.stdin.write_all(b"stats\n").await?;
        self.stdin.flush().await?;
        let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
            .await
            .map_err(|_| "the child upstream did not answer `stats` within 10 s")??
            .ok_or("the child upstream exited")?;
        let v: serde_json::Value = serde_json::from_str(&line)?;
        v["open"]
            .as_u64()
            .ok_or_else(|| format!("the child upstream's stats lack `open`: {line}").into())
    }
}

/// A client that keeps up to `n` idle connections for 10 minutes.
fn idle_client(up: &ChildUpstream, n: usize) -> BoxResult<Client> {
    Ok(Client::builder()
        .max_sockets(n)
        .max_free_sockets(n)
        .free_socket_timeout(Duration::from_secs(600))
        .connect_timeout(Duration::from_secs(60))
        .acquire_timeout(Some(Duration::from_secs(120)))
        .tls_built_in_roots(false)
        .add_root_certificate(keepwarm::CertificateDer::from(up.ca.clone()))
        .build()?)
}

/// Opens `n` connections, each carrying one request, and leaves them idle
/// in the pool; returns the failures.
///
/// Requests go `concurrency` at a time, and each response's body is held
/// unread in `held` (one slot per request, allocated by the caller), so its
/// connection stays checked out and the next request must open a new one.
/// Then every body is read to the end and its connection becomes idle. The
/// memory of in-flight requests is reused from one request to the next, so
/// what the process grows by is the connections, plus the few bytes of a
/// held body each.
async fn open_idle(
    c: &Client,
    url: &str,
    held: &mut [Option<keepwarm::ResponseBody>],
    concurrency: usize,
) -> u64 {
    let n = held.len();
    let mut set = tokio::task::JoinSet::new();
    let (mut started, mut failed) = (0usize, 0u64);
    while started < n || !set.is_empty() {
        while started < n && set.len() < concurrency {
            let (c, url, i) = (c.clone(), url.to_string(), started);
            set.spawn(async move { (i, c.get(&url).await.map(|r| r.into_body())) });
            started += 1;
        }
        match set.join_next().await {
            Some(Ok((i, Ok(body)))) => held[i] = Some(body),
            Some(_) => failed += 1,
            None => break,
        }
    }
    for slot in held.iter_mut() {
        if let Some(b) = slot.take() {
            if b.bytes().await.is_err() {
                failed += 1;
            }
        }
    }
    failed
}

fn idle_count(c: &Client) -> usize {
    c.stats().iter().map(|s| s.pool.idle).sum()
}

/// P8: RSS growth per idle connection, `n` connections, plain or TLS.
/// With `exit_idle` the process exits while holding them.
pub(crate) fn p8(tls: bool, n: usize, exit_idle: bool) -> BoxResult<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut up = child_upstream(tls).await?;
        let c = idle_client(&up, n)?;
        // Allocate and touch the slots before the baseline.
        let mut held: Vec<Option<keepwarm::ResponseBody>> = (0..n).map(|_| None).collect();
        // Warm everything that is allocated once (runtime, TLS config,
        // session cache, the pool's key) with a first connection, and let
        // 64 requests run once so their memory is part of the baseline.
        let mut failed = open_idle(&c, &up.url, &mut held[..64.min(n)], 64).await;
        let warm = idle_count(&c);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let server_open_before = up.open().await?;
        let before = rss_kib();
        let t = Instant::now();
        // `n` at once: `warm` of them reuse the idle ones, the rest open.
        failed += open_idle(&c, &up.url, &mut held, 64).await;
        let opened_in = t.elapsed();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle = idle_count(&c);
        let after = rss_kib();
        // The server's count of open connections is the truth: what this
        // process grew by is divided by the connections the server holds
        // open for it (not by our own idle gauge).
        let server_open = up.open().await?;
        let grown = after.saturating_sub(before);
        let new = server_open.saturating_sub(server_open_before);
        let per_conn = if new > 0 {
            grown as f64 / new as f64
        } else {
            0.0
        };
        let created: u64 = c
            .label_stats()
            .iter()
            .map(|s| s.pool.counters.created)
            .sum();
        emit(&json!({
            "case": "p8",
            "variant": if tls { "tls" } else { "plain" },
            "connections_wanted": n,
            "connections_created": created,
            "idle_held": idle,
            "idle_held_before": warm,
            "server_open_before": server_open_before,
            "server_open": server_open,
            "failed": failed,
            "open_seconds": opened_in.as_secs_f64(),
            "rss_before_kib": before,
            "rss_after_kib": after,
            "kib_per_connection": per_conn,
        }));
        if exit_idle {
            // Under massif: its last snapshot is then this idle state, not
            // the teardown (the child upstream sees its stdin close).
            use std::io::Write as _;
            let _ = std::io::stdout().flush();
            std::process::exit(0);
        }
        Ok(())
    })
}

/// P9 (idle): context switches and CPU of this process over `window`, first
/// with an empty pool, then holding `n` idle plain connections.
pub(crate) fn p9_idle(n: usize, window: Duration) -> BoxResult<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (up, c) = rt.block_on(async {
        let up = child_upstream(false).await?;
        let c = idle_client(&up, n)?;
        Ok::<_, Box<dyn std::error::Error + Send + Sync>>((up, c))
    })?;
    std::thread::sleep(Duration::from_millis(300));
    let a = ProcCounters::read();
    std::thread::sleep(window);
    let empty = ProcCounters::read().since(&a);

    let mut held: Vec<Option<keepwarm::ResponseBody>> = (0..n).map(|_| None).collect();
    let failed = rt.block_on(open_idle(&c, &up.url, &mut held, 64));
    std::thread::sleep(Duration::from_millis(500));
    let idle = idle_count(&c);
    let b = ProcCounters::read();
    std::thread::sleep(window);
    let held = ProcCounters::read().since(&b);
    let idle_after = idle_count(&c);
    let secs = window.as_secs_f64();
    let wakeups = |p: &ProcCounters| (p.voluntary + p.involuntary) as f64 / secs;
    emit(&json!({
        "case": "p9_idle",
        "connections": n,
        "idle_held": idle,
        "idle_after_window": idle_after,
        "failed": failed,
        "window_seconds": secs,
        "empty_switches": empty.voluntary + empty.involuntary,
        "held_switches": held.voluntary + held.involuntary,
        "empty_wakeups_per_s": wakeups(&empty),
        "held_wakeups_per_s": wakeups(&held),
        "extra_wakeups_per_s": wakeups(&held) - wakeups(&empty),
        "empty_cpu_ms": empty.cpu_ticks * 10,
        "held_cpu_ms": held.cpu_ticks * 10,
        "threads": held.threads,
    }));
    drop(c);
    drop(up);
    Ok(())
}
