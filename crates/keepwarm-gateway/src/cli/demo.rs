//! `keepwarm demo`: the seed's "Real-World Performance" table, measured
//! offline in one process.
//!
//! Per mode, a fresh TLS Anthropic mock provider (testkit), a
//! [`LatencyShim`] in front of it adding `--rtt-ms` per round trip (and one
//! round trip for each new TCP connection, as a real network would), and a
//! fresh gateway on `127.0.0.1:0` whose provider `mock` points at the shim.
//! A client sends `--requests` sequential `POST /v1/messages` through the
//! gateway and times each one until its body was read to the end.
//!
//! Modes: "pool off" (`HttpConnectionPool.enabled: false`: one upstream
//! connection per request), "pool on" (the defaults), "pre-warmed"
//! (`minFreeSockets: 1`, warmed before the first request is timed), and
//! with `--http2` a fourth, "HTTP/2": the default pool against a mock that
//! offers ALPN `h2, http/1.1` (the testkit `H2Server`, see
//! [`demo_mock`](super::demo_mock)), so the requests ride HTTP/2 streams.
//!
//! Connections, TLS handshakes and HTTP/2 streams are what the mock
//! *server* counted (a fresh mock per mode, so no deltas are needed); requests, reuse and
//! pre-warming come from the gateway pool's own counters; CPU time is the
//! whole process's (client, gateway, mock and shim all run in it).

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use indicatif::ProgressBar;
use keepwarm::{CertificateDer, Client, KeySnapshot, TlsCounts};
use keepwarm_testkit::LatencyShim;
use serde_json::{json, Value};
use tokio::sync::oneshot;

use crate::cli::demo_mock::{DemoMock, ServerCounts};
use crate::cli::report::{self, ModeResult};
use crate::{config, server, AppState};

/// Arguments of `keepwarm demo`.
#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// Round trip added between the gateway and the mock provider, in ms.
    #[arg(long, default_value_t = 20)]
    pub rtt_ms: u64,
    /// Requests per mode.
    #[arg(long, default_value_t = 100)]
    pub requests: usize,
    /// Print the numbers as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
    /// Add a fourth column, "HTTP/2": the default pool against a mock
    /// provider offering ALPN `h2, http/1.1`. Default off.
    #[arg(long)]
    pub http2: bool,
}

/// A mode of the demo: how the gateway's pool is configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `HttpConnectionPool.enabled: false`: a new upstream connection (TCP +
    /// TLS) for every request.
    PoolOff,
    /// The default pool: the first request connects, the rest reuse.
    PoolOn,
    /// `minFreeSockets: 1`, warmed before the first request: even the first
    /// request finds a connection ready.
    PreWarmed,
    /// The default pool (`protocol: auto`) against a mock offering ALPN
    /// `h2, http/1.1`: it negotiates h2 and the requests are streams on one
    /// connection. Only with `--http2`.
    Http2,
}

impl Mode {
    /// The default modes, in the order the demo runs them.
    pub const ALL: [Mode; 3] = [Mode::PoolOff, Mode::PoolOn, Mode::PreWarmed];

    /// The modes `keepwarm demo` runs: [`ALL`](Self::ALL), then
    /// [`Http2`](Self::Http2) when `http2`.
    pub fn selected(http2: bool) -> Vec<Mode> {
        let mut modes = Mode::ALL.to_vec();
        if http2 {
            modes.push(Mode::Http2);
        }
        modes
    }

    /// The mode's name in the table and the JSON.
    pub fn name(self) -> &'static str {
        match self {
            Mode::PoolOff => "pool off",
            Mode::PoolOn => "pool on",
            Mode::PreWarmed => "pre-warmed",
            Mode::Http2 => "HTTP/2",
        }
    }

    /// The `HttpConnectionPool` block of the gateway's config.
    fn pool_block(self) -> Value {
        match self {
            Mode::PoolOff => json!({ "enabled": false }),
            Mode::PoolOn | Mode::Http2 => json!({ "enabled": true }),
            Mode::PreWarmed => json!({ "enabled": true, "global": { "minFreeSockets": 1 } }),
        }
    }
}

/// The request body the demo sends (provider `mock`, model `claude-demo`).
pub const REQUEST_BODY: &str = r#"{"model":"mock,claude-demo","max_tokens":64,"messages":[{"role":"user","content":"Hello"}]}"#;

/// The gateway's config for `mode`, with provider `mock` at `endpoint`.
pub fn gateway_config(mode: Mode, endpoint: &str, key: &str) -> Value {
    json!({
        "Providers": [{
            "name": "mock",
            "api_base_url": endpoint,
            "api_key": key,
            "models": ["claude-demo"],
        }],
        "HttpConnectionPool": mode.pool_block(),
    })
}

/// A gateway served on `127.0.0.1:0` until dropped or stopped.
struct Gateway {
    url: String,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Gateway {
    async fn start(cfg: &Value, ca: CertificateDer<'static>) -> Result<Gateway, String> {
        let (cfg, _warnings) = config::parse(&cfg.to_string(), &|_| None)
            .map_err(|e| format!("the demo's gateway config is invalid: {e}"))?;
        let state = AppState::builder(cfg)
            .built_in_roots(false)
            .add_root_certificate(ca)
            .build()
            .map_err(|e| format!("cannot build the gateway's pools: {e}"))?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("cannot listen on 127.0.0.1:0: {e}"))?;
        let addr = listener
            .local_addr()
            .map_err(|e| format!("cannot read the gateway's address: {e}"))?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(server::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        Ok(Gateway {
            url: format!("http://{addr}"),
            state,
            stop: Some(tx),
            task,
        })
    }

    /// The `mock` provider's pool: its counters summed over keys, and TLS.
    fn pool_stats(&self) -> (KeySnapshot, TlsCounts) {
        let mut snap = KeySnapshot::default();
        let mut tls = TlsCounts::default();
        for s in self.state.client().label_stats() {
            if &*s.label == "mock" {
                snap.merge(&s.pool);
                tls.full += s.tls.full;
                tls.resumed += s.tls.resumed;
            }
        }
        (snap, tls)
    }

    async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), &mut self.task).await;
        self.task.abort();
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Polls `f` every 2 ms until it holds or `max` has passed; returns whether
/// it held.
async fn wait_for(max: Duration, f: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + max;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Sends one request through the gateway and reads the answer to the end.
async fn one_request(client: &Client, url: &str) -> Result<(), String> {
    let req = http::Request::post(url)
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .body(Bytes::from_static(REQUEST_BODY.as_bytes()))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let resp = client
        .request(req)
        .await
        .map_err(|e| format!("the gateway did not answer: {e}"))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .bytes()
        .await
        .map_err(|e| format!("reading the gateway's answer failed: {e}"))?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        let text: String = text.chars().take(300).collect();
        return Err(format!("the gateway answered {status}: {text}"));
    }
    Ok(())
}

/// Runs one mode: a fresh mock, shim and gateway; `requests` sequential
/// requests; the counters. `progress` advances once per request.
pub async fn measure_mode(
    mode: Mode,
    rtt: Duration,
    requests: usize,
    progress: &ProgressBar,
) -> Result<ModeResult, String> {
    let name = mode.name();
    progress.set_message(name);
    let mock = DemoMock::start(mode == Mode::Http2).await;
    let shim = LatencyShim::start(mock.addr(), rtt / 2).await;
    let endpoint = format!("https://localhost:{}/v1/messages", shim.addr().port());
    let gw = Gateway::start(&gateway_config(mode, &endpoint, mock.key()), mock.ca_der()).await?;
    let pool = gw.state.client().clone();
    let url = format!("{}/v1/messages", gw.url);
    let client = Client::builder()
        .build()
        .map_err(|e| format!("cannot build the client: {e}"))?;

    let cpu_start = report::process_cpu_time();
    if mode == Mode::PreWarmed {
        pool.warm(&endpoint, Some("mock"))
            .map_err(|e| format!("cannot warm the pool: {e}"))?;
        let warmed = wait_for(Duration::from_secs(10), || gw.pool_stats().0.idle >= 1).await;
        if !warmed {
            return Err(format!(
                "{name}: the pool did not pre-warm a connection to {endpoint} within 10 s"
            ));
        }
    }
    let accepted_before = mock.counts().connections;
    let mut first_opened = None;
    let per_request_limit = Duration::from_secs(10) + rtt * 10;
    let mut latencies = Vec::with_capacity(requests);
    let started = Instant::now();
    for i in 0..requests {
        let t = Instant::now();
        match tokio::time::timeout(per_request_limit, one_request(&client, &url)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(format!("{name}: request {} failed: {e}", i + 1)),
            Err(_) => {
                return Err(format!(
                    "{name}: request {} got no complete answer within {per_request_limit:?}",
                    i + 1
                ))
            }
        }
        latencies.push(t.elapsed());
        if i == 0 {
            first_opened = Some(mock.counts().connections > accepted_before);
        }
        progress.inc(1);
    }
    let wall = started.elapsed();
    let cpu = match (cpu_start, report::process_cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => Duration::ZERO,
    };
    drop(client);

    // Let connections still being opened (a pre-warm refill) finish and
    // the server see every handshake complete, so the counts agree.
    let settled = |s: &ServerCounts, p: &KeySnapshot| {
        p.connecting == 0 && s.connections == p.counters.created && s.settled
    };
    wait_for(Duration::from_secs(2), || {
        settled(&mock.counts(), &gw.pool_stats().0)
    })
    .await;
    let up = mock.counts();
    let (snap, _) = gw.pool_stats();
    gw.shutdown().await;
    drop(shim);

    // The HTTP/1.1 mock logs which connection carried the first request;
    // for the HTTP/2 mock, whether the server's count rose with it (no
    // pre-warming there, so nothing else opens a connection meanwhile).
    let first_on_new_connection = match mock.first_request_conn() {
        Some(conn) => Some(conn > accepted_before),
        None => first_opened,
    };
    Ok(ModeResult {
        name: name.to_string(),
        latencies,
        connections: up.connections,
        tls_full: up.tls_full,
        tls_resumed: up.tls_resumed,
        streams: up.streams,
        requests: snap.counters.requests,
        reused: snap.counters.reused,
        prewarmed: snap.counters.prewarmed,
        first_on_new_connection,
        cpu,
        wall,
        errors: 0,
    })
}

/// Runs every [`Mode`] in order.
pub async fn measure(args: &DemoArgs, progress: &ProgressBar) -> Result<Vec<ModeResult>, String> {
    if args.requests == 0 {
        return Err("--requests must be at least 1".into());
    }
    keepwarm_testkit::install_crypto_provider();
    let rtt = Duration::from_millis(args.rtt_ms);
    let modes = Mode::selected(args.http2);
    let mut out = Vec::with_capacity(modes.len());
    for mode in modes {
        out.push(measure_mode(mode, rtt, args.requests, progress).await?);
    }
    Ok(out)
}

/// One line saying how the numbers were produced.
pub fn how_measured(args: &DemoArgs) -> String {
    format!(
        "How measured: {} sequential POST /v1/messages per mode, client -> gateway -> TLS 1.3 mock \
         provider, all in this process on loopback, a user-space shim adding {} ms per round trip \
         (and one per new TCP connection); {} CPUs. Connections and handshakes as counted by the \
         mock server, reuse by the gateway's pool; CPU = the whole process (client, gateway, mock, \
         shim) from the mode's first connection to its last response.",
        args.requests,
        args.rtt_ms,
        report::cpus()
    ) + if args.http2 {
        " HTTP/2: the default pool against a mock offering ALPN h2, http/1.1 (it negotiated h2); \
         streams as counted by that server."
    } else {
        ""
    }
}

/// The JSON form: `{"rttMs", "requests", "cpus", "http2", "howMeasured", "modes": [..]}`
/// with each mode as [`ModeResult::to_json`].
pub fn to_json(args: &DemoArgs, modes: &[ModeResult]) -> Value {
    json!({
        "rttMs": args.rtt_ms,
        "requests": args.requests,
        "cpus": report::cpus(),
        "http2": args.http2,
        "howMeasured": how_measured(args),
        "modes": modes.iter().map(ModeResult::to_json).collect::<Vec<_>>(),
    })
}

/// Runs `keepwarm demo`: the table (or JSON) on stdout; exit 1 with the
/// reason when any request fails.
pub async fn run(args: DemoArgs) -> ExitCode {
    let total = (args.requests * Mode::selected(args.http2).len()) as u64;
    report::run(
        total,
        args.json,
        async |bar| measure(&args, bar).await,
        |modes| {
            if args.json {
                println!("{}", to_json(&args, modes));
            } else {
                println!("{}", report::table(modes, 0, 1, false));
                println!("{}", how_measured(&args));
            }
        },
    )
    .await
}
