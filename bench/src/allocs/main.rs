//! `keepwarm-allocs`: heap allocations per proxied request (non-streaming)
//! in the gateway, counted by a counting global allocator
//! ([`stats_alloc`]) in this process.
//!
//! The gateway runs in this process exactly as `keepwarm serve` builds it
//! (config parsed from JSON, `AppState`, `server::serve`, a multi-thread
//! runtime with 2 workers, logging at `warn`). The upstream is another
//! process (`--upstream`, nginx in `bench/run.sh`), and the load is a
//! blocking loop on the main thread that writes a prepared POST and reads
//! the answer into a fixed buffer: it allocates nothing per request, so
//! every allocation counted in the measured window is the gateway's.
//!
//! Prints one JSON line: allocations (and reallocations, bytes) per
//! request over `--n` sequential requests on one keep-alive connection,
//! after `--warmup` requests.

use std::alloc::System;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// Allocations per proxied request in the gateway.
#[derive(Parser)]
#[command(name = "keepwarm-allocs")]
struct Args {
    /// The provider's full URL (its `api_base_url`), e.g. nginx's
    /// `http://127.0.0.1:PORT/v1/messages`; must answer POST with 200 and a
    /// body framed by content-length or chunked.
    #[arg(long)]
    upstream: String,
    /// Requests before counting (not counted).
    #[arg(long, default_value_t = 200)]
    warmup: u64,
    /// Requests counted.
    #[arg(long, default_value_t = 2000)]
    n: u64,
}

type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The request body of the gateway cases (`"model": "provider,model"`).
const CHAT_BODY: &str =
    r#"{"model":"up,m","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#;

/// Starts the gateway for one provider `up` at `upstream` on a runtime of
/// its own (2 workers, as `keepwarm serve` on this machine); returns the
/// runtime (the gateway lives as long as it) and the port.
fn start_gateway(upstream: &str) -> BoxResult<(tokio::runtime::Runtime, u16)> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let text = serde_json::json!({
        "PORT": port,
        "LOG_LEVEL": "warn",
        "Providers": [{"name": "up", "api_base_url": upstream, "api_key": "x", "models": ["m"]}],
        "HttpConnectionPool": {"global": {"maxSockets": 16, "maxFreeSockets": 16}},
    })
    .to_string();
    let (config, _warnings) = keepwarm_gateway::config::parse(&text, &|_| None)
        .map_err(|e| format!("gateway config: {e}"))?;
    // The same subscriber and level as `keepwarm serve` (`LOG_LEVEL warn`).
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&config.log_level))
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let state = keepwarm_gateway::AppState::new(config)?;
    rt.spawn(async move {
        match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => {
                let never = std::future::pending::<()>();
                if let Err(e) = keepwarm_gateway::server::serve(l, state, never).await {
                    eprintln!("keepwarm-allocs: the gateway stopped: {e}");
                }
            }
            Err(e) => eprintln!("keepwarm-allocs: listener: {e}"),
        }
    });
    Ok((rt, port))
}

/// Position of `needle` in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The value of header `name` (lower case) in `head`, without allocating.
fn header<'a>(head: &'a [u8], name: &[u8]) -> Option<&'a [u8]> {
    head.split(|&b| b == b'\n').find_map(|line| {
        let colon = line.iter().position(|&b| b == b':')?;
        let (k, v) = line.split_at(colon);
        k.eq_ignore_ascii_case(name).then(|| v[1..].trim_ascii())
    })
}

/// Sends the prepared request and reads one response into `buf` (reused:
/// no allocation); returns the status code.
fn round_trip(s: &mut TcpStream, req: &[u8], buf: &mut [u8]) -> BoxResult<u16> {
    s.write_all(req)?;
    let mut len = 0;
    let head_end = loop {
        if let Some(i) = find(&buf[..len], b"\r\n\r\n") {
            break i + 4;
        }
        if len == buf.len() {
            return Err("response head larger than the buffer".into());
        }
        let n = s.read(&mut buf[len..])?;
        if n == 0 {
            return Err("the gateway closed the connection".into());
        }
        len += n;
    };
    let head = &buf[..head_end];
    let status = head
        .get(9..12)
        .and_then(|d| std::str::from_utf8(d).ok())
        .and_then(|d| d.parse::<u16>().ok())
        .ok_or("no status line")?;
    let chunked =
        header(head, b"transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case(b"chunked"));
    let body_len = header(head, b"content-length")
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<usize>().ok());
    // Read the body to its end: by length, or up to the last chunk.
    let complete = |b: &[u8]| match (chunked, body_len) {
        (true, _) => b.ends_with(b"0\r\n\r\n"),
        (false, Some(n)) => b.len() >= n,
        (false, None) => true,
    };
    while !complete(&buf[head_end..len]) {
        if len == buf.len() {
            return Err("response larger than the buffer".into());
        }
        let n = s.read(&mut buf[len..])?;
        if n == 0 {
            return Err("the gateway closed the connection mid-body".into());
        }
        len += n;
    }
    Ok(status)
}

fn run(a: Args) -> BoxResult<()> {
    keepwarm_testkit::install_crypto_provider();
    let (rt, port) = start_gateway(&a.upstream)?;
    let addr = format!("127.0.0.1:{port}");
    let mut s = (0..200)
        .find_map(|_| {
            TcpStream::connect(&addr).ok().or_else(|| {
                std::thread::sleep(Duration::from_millis(25));
                None
            })
        })
        .ok_or_else(|| format!("the gateway at {addr} did not accept within 5 s"))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let req = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: {addr}\r\ncontent-type: application/json\r\n\
         anthropic-version: 2023-06-01\r\ncontent-length: {}\r\n\r\n{CHAT_BODY}",
        CHAT_BODY.len()
    )
    .into_bytes();
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..a.warmup {
        let st = round_trip(&mut s, &req, &mut buf)?;
        if st != 200 {
            return Err(format!("warm-up request answered {st}").into());
        }
    }
    // Let the warm-up's stragglers (idle bookkeeping, timers) settle.
    std::thread::sleep(Duration::from_millis(200));
    let region = Region::new(GLOBAL);
    for i in 0..a.n {
        let st = round_trip(&mut s, &req, &mut buf)?;
        if st != 200 {
            return Err(format!("request {i} answered {st}").into());
        }
    }
    let c = region.change();
    drop(s);
    drop(rt);
    let n = a.n.max(1) as f64;
    println!(
        "{}",
        serde_json::json!({
            "case": "allocs",
            "variant": "gateway_post",
            "requests": a.n,
            "allocations_per_request": c.allocations as f64 / n,
            "reallocations_per_request": c.reallocations as f64 / n,
            "deallocations_per_request": c.deallocations as f64 / n,
            "bytes_allocated_per_request": c.bytes_allocated as f64 / n,
            "bytes_reallocated_per_request": c.bytes_reallocated as f64 / n,
        })
    );
    Ok(())
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keepwarm-allocs: {e}");
            ExitCode::FAILURE
        }
    }
}
