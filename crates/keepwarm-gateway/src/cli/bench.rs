//! `keepwarm bench <url>`: the seed's "Real-World Performance" table for any
//! URL: the same requests through a keepwarm [`Client`] with the default pool
//! ("pool on") and with `keepAlive: false` ("pool off": one connection per
//! request), `-n` requests per mode at `-c` concurrency.
//!
//! Connections and TLS handshakes are the client's own counters (each mode
//! has a fresh client, so a fresh TLS session cache: the unpooled mode
//! resumes sessions after its first handshake, as any client would); CPU
//! time is this process's. Non-2xx answers count as errors but are timed;
//! a transport error (cannot connect, TLS failure, reset) stops the run.

use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use indicatif::ProgressBar;
use keepwarm::rustls::pki_types::pem::PemObject;
use keepwarm::{CertificateDer, Client, ConnectionInfo, KeySnapshot, TlsCounts};
use serde_json::{json, Value};

use crate::cli::report::{self, ModeResult};

/// Arguments of `keepwarm bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// The URL to measure (e.g. your provider's endpoint).
    pub url: String,
    /// Requests per mode. [-n, default 100]
    #[arg(short = 'n', long, default_value_t = 100)]
    pub requests: usize,
    /// Concurrent requests. [-c, default 1]
    #[arg(short = 'c', long, default_value_t = 1)]
    pub concurrency: usize,
    /// HTTP method. [default GET, or POST with --data]
    #[arg(long)]
    pub method: Option<String>,
    /// Extra header "Name: value", repeatable.
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// Request body (POST by default when given).
    #[arg(long)]
    pub data: Option<String>,
    /// Trust this PEM or DER certificate as a root (for self-signed test servers).
    #[arg(long)]
    pub cacert: Option<std::path::PathBuf>,
    /// Print JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// The request every bench request is a copy of.
#[derive(Clone, Debug)]
pub struct Template {
    /// The method.
    pub method: Method,
    /// The absolute URL.
    pub url: String,
    /// The headers from `-H`.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The body from `--data` (empty without).
    pub body: Bytes,
}

impl Template {
    /// Builds the template from the arguments, checking method, URL and
    /// headers.
    pub fn from_args(args: &BenchArgs) -> Result<Template, String> {
        let method = match (&args.method, &args.data) {
            (Some(m), _) => Method::from_bytes(m.to_ascii_uppercase().as_bytes())
                .map_err(|_| format!("invalid method `{m}`"))?,
            (None, Some(_)) => Method::POST,
            (None, None) => Method::GET,
        };
        let uri: http::Uri = args
            .url
            .parse()
            .map_err(|e| format!("invalid URL `{}`: {e}", args.url))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
            return Err(format!(
                "invalid URL `{}`: expected http://host[:port]/path or https://…",
                args.url
            ));
        }
        let mut headers = Vec::new();
        for h in &args.headers {
            let (name, value) = h
                .split_once(':')
                .ok_or_else(|| format!("invalid header `{h}`: expected \"Name: value\""))?;
            let name = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| format!("invalid header name in `{h}`"))?;
            let value = HeaderValue::from_str(value.trim())
                .map_err(|_| format!("invalid header value in `{h}`"))?;
            headers.push((name, value));
        }
        Ok(Template {
            method,
            url: args.url.clone(),
            headers,
            body: Bytes::from(args.data.clone().unwrap_or_default()),
        })
    }

    fn request(&self) -> Result<http::Request<Bytes>, String> {
        let mut b = http::Request::builder()
            .method(self.method.clone())
            .uri(&self.url);
        for (k, v) in &self.headers {
            b = b.header(k, v);
        }
        b.body(self.body.clone())
            .map_err(|e| format!("cannot build the request: {e}"))
    }
}

/// Reads a certificate file: PEM (the first `CERTIFICATE` block) or DER.
pub fn read_certificate(path: &Path) -> Result<CertificateDer<'static>, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return CertificateDer::from_pem_slice(&bytes)
            .map_err(|e| format!("{}: no PEM certificate: {e}", path.display()));
    }
    Ok(CertificateDer::from(bytes))
}

/// One mode: `pooled` is the default pool, else `keepAlive: false`.
fn client(pooled: bool, cacert: Option<&CertificateDer<'static>>) -> Result<Client, String> {
    let mut b = Client::builder().keep_alive(pooled);
    if let Some(c) = cacert {
        b = b.add_root_certificate(c.clone());
    }
    b.build()
        .map_err(|e| format!("cannot build the client: {e}"))
}

/// Sums a client's counters over its keys.
fn client_stats(c: &Client) -> (KeySnapshot, TlsCounts) {
    let mut snap = KeySnapshot::default();
    let mut tls = TlsCounts::default();
    for s in c.label_stats() {
        snap.merge(&s.pool);
        tls.full += s.tls.full;
        tls.resumed += s.tls.resumed;
    }
    (snap, tls)
}

/// What each request slot records.
#[derive(Clone, Copy, Default)]
struct Sample {
    latency: Duration,
    ok: bool,
    info: Option<ConnectionInfo>,
}

/// Runs `requests` copies of `template` at `concurrency` through a fresh
/// client (`pooled` or not) and returns the mode's numbers. A transport
/// error stops the mode and is returned.
pub async fn measure_mode(
    name: &str,
    pooled: bool,
    template: &Template,
    requests: usize,
    concurrency: usize,
    cacert: Option<&CertificateDer<'static>>,
    progress: &ProgressBar,
) -> Result<ModeResult, String> {
    progress.set_message(name.to_string());
    let client = client(pooled, cacert)?;
    let next = Arc::new(AtomicUsize::new(0));
    let samples = Arc::new(Mutex::new(vec![Sample::default(); requests]));
    let cpu_start = report::process_cpu_time();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.clamp(1, requests.max(1)) {
        let (client, next, samples) = (client.clone(), next.clone(), samples.clone());
        let (template, progress) = (template.clone(), progress.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= requests {
                    return Ok::<(), String>(());
                }
                let req = template.request()?;
                let t = Instant::now();
                let resp = client
                    .request(req)
                    .await
                    .map_err(|e| format!("request {} to {} failed: {e}", i + 1, template.url))?;
                let ok = resp.status().is_success();
                let info = resp.extensions().get::<ConnectionInfo>().copied();
                resp.into_body().bytes().await.map_err(|e| {
                    format!(
                        "reading response {} from {} failed: {e}",
                        i + 1,
                        template.url
                    )
                })?;
                let s = Sample {
                    latency: t.elapsed(),
                    ok,
                    info,
                };
                samples.lock().unwrap_or_else(|e| e.into_inner())[i] = s;
                progress.inc(1);
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        match r {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(e),
            Err(e) => return Err(format!("a request task failed: {e}")),
        }
    }
    let wall = started.elapsed();
    let cpu = match (cpu_start, report::process_cpu_time()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => Duration::ZERO,
    };
    let samples = samples.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let (snap, tls) = client_stats(&client);
    let first_on_new_connection = samples
        .first()
        .and_then(|s| s.info.map(|i| !i.reused && i.age <= s.latency));
    Ok(ModeResult {
        name: name.to_string(),
        latencies: samples.iter().map(|s| s.latency).collect(),
        connections: snap.counters.created,
        tls_full: tls.full,
        tls_resumed: tls.resumed,
        requests: snap.counters.requests,
        reused: snap.counters.reused,
        prewarmed: snap.counters.prewarmed,
        first_on_new_connection,
        streams: None,
        cpu,
        wall,
        errors: samples.iter().filter(|s| !s.ok).count() as u64,
    })
}

/// Runs both modes, "pool off" then "pool on".
pub async fn measure(args: &BenchArgs, progress: &ProgressBar) -> Result<Vec<ModeResult>, String> {
    if args.requests == 0 {
        return Err("-n must be at least 1".into());
    }
    if args.concurrency == 0 {
        return Err("-c must be at least 1".into());
    }
    let template = Template::from_args(args)?;
    let cacert = args.cacert.as_deref().map(read_certificate).transpose()?;
    let mut out = Vec::new();
    for (name, pooled) in [("pool off", false), ("pool on", true)] {
        out.push(
            measure_mode(
                name,
                pooled,
                &template,
                args.requests,
                args.concurrency,
                cacert.as_ref(),
                progress,
            )
            .await?,
        );
    }
    Ok(out)
}

/// One line saying how the numbers were produced.
pub fn how_measured(args: &BenchArgs) -> String {
    let method = Template::from_args(args)
        .map(|t| t.method.to_string())
        .unwrap_or_default();
    format!(
        "How measured: {} {method} {} per mode at concurrency {}, keepwarm client with its default \
         pool vs keepAlive: false (a fresh client per mode); latency = send to last body byte; \
         connections and handshakes as counted by the client; CPU = this process; {} CPUs.",
        args.requests,
        args.url,
        args.concurrency,
        report::cpus()
    )
}

/// The JSON form: `{"url", "method", "requests", "concurrency", "cpus",
/// "howMeasured", "modes": [..]}` with each mode as [`ModeResult::to_json`].
pub fn to_json(args: &BenchArgs, modes: &[ModeResult]) -> Value {
    json!({
        "url": args.url,
        "method": Template::from_args(args).map(|t| t.method.to_string()).unwrap_or_default(),
        "requests": args.requests,
        "concurrency": args.concurrency,
        "cpus": report::cpus(),
        "howMeasured": how_measured(args),
        "modes": modes.iter().map(ModeResult::to_json).collect::<Vec<_>>(),
    })
}

/// Runs `keepwarm bench`: the table (or JSON) on stdout; exit 1 with the
/// error when a request fails at the transport level.
pub async fn run(args: BenchArgs) -> ExitCode {
    let total = (args.requests * 2) as u64;
    report::run(
        total,
        args.json,
        async |bar| measure(&args, bar).await,
        |modes| {
            if args.json {
                println!("{}", to_json(&args, modes));
            } else {
                println!("{}", report::table(modes, 0, 1, true));
                println!("{}", how_measured(&args));
                let errors: u64 = modes.iter().map(|m| m.errors).sum();
                if errors > 0 {
                    println!(
                        "note: {errors} responses were not 2xx (counted as errors, still timed)"
                    );
                }
            }
        },
    )
    .await
}
