//! `keepwarm-bench`: the benchmark harness of keepwarm (cases P1–P10 of
//! `docs/BENCHMARKS.md`). Each case subcommand prints one JSON line of
//! results; `bench/run.sh` runs them interleaved several times, then
//! `summarize` takes medians and ratios and `chart` draws the PNGs.
//!
//! Run by hand (`bash bench/run.sh`, or `bash bench/smoke.sh` for tiny
//! counts); never part of `cargo test`. All traffic goes to 127.0.0.1.

mod cases;
mod chart;
mod summary;
mod util;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};

use crate::util::BoxResult;

#[derive(Parser)]
#[command(
    name = "keepwarm-bench",
    about = "keepwarm's benchmark cases (see docs/BENCHMARKS.md)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// P1: reused-request latency vs unpooled through the latency shim (TLS).
    P1 {
        /// Measured requests per mode.
        #[arg(long, default_value_t = 50)]
        n: usize,
        /// Round trip of the shim, ms.
        #[arg(long, default_value_t = 20)]
        rtt_ms: u64,
    },
    /// P2: first request with minFreeSockets vs steady state.
    P2 {
        /// Fresh clients (each: one warmed first request, one cold).
        #[arg(long, default_value_t = 5)]
        trials: usize,
        /// Steady-state requests per trial.
        #[arg(long, default_value_t = 10)]
        steady: usize,
        /// Round trip of the shim, ms.
        #[arg(long, default_value_t = 20)]
        rtt_ms: u64,
    },
    /// P3: reuse and errors against nginx, its stub_status the truth.
    P3 {
        /// `generous` or `strict` (a label).
        #[arg(long)]
        variant: String,
        /// nginx URL to GET.
        #[arg(long)]
        url: String,
        /// nginx stub_status URL.
        #[arg(long)]
        stub: String,
        /// Requests in all.
        #[arg(long, default_value_t = 100_000)]
        requests: u64,
        /// Concurrent tasks.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// keepwarm's maxSockets.
        #[arg(long, default_value_t = 16)]
        max_sockets: usize,
        /// Pauses in the traffic, evenly spaced.
        #[arg(long, default_value_t = 0)]
        pauses: u64,
        /// Length of each pause, ms.
        #[arg(long, default_value_t = 1500)]
        pause_ms: u64,
        /// The server's keepalive_requests, when it limits.
        #[arg(long)]
        keepalive_requests: Option<u64>,
    },
    /// P4: client throughput, keepwarm or reqwest, against nginx.
    P4 {
        /// `keepwarm` or `reqwest`.
        #[arg(long)]
        client: String,
        /// nginx URL to GET.
        #[arg(long)]
        url: String,
        /// nginx stub_status URL.
        #[arg(long)]
        stub: String,
        /// Concurrent tasks.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// keepwarm's maxSockets (reqwest has no such cap).
        #[arg(long, default_value_t = 64)]
        max_sockets: usize,
        /// The variant's name in the results (default: the client's).
        #[arg(long)]
        label: Option<String>,
        /// Warm-up, ms (not counted).
        #[arg(long, default_value_t = 1000)]
        warmup_ms: u64,
        /// Measured time, ms.
        #[arg(long, default_value_t = 5000)]
        duration_ms: u64,
    },
    /// P5: callgrind instructions per pooled request, keepwarm vs reqwest.
    P5 {
        /// nginx URL to GET.
        #[arg(long)]
        url: String,
        /// Requests in the short run.
        #[arg(long, default_value_t = 200)]
        n1: u64,
        /// Requests in the long run.
        #[arg(long, default_value_t = 2200)]
        n2: u64,
        /// Where callgrind writes its files.
        #[arg(long, default_value = "target/bench-callgrind")]
        dir: PathBuf,
        /// Profile entries to keep.
        #[arg(long, default_value_t = 12)]
        top: usize,
    },
    /// The program P5 runs under callgrind: N sequential pooled GETs.
    P5Client {
        /// `keepwarm` or `reqwest`.
        #[arg(long)]
        client: String,
        /// URL to GET.
        #[arg(long)]
        url: String,
        /// Requests after one warm-up.
        #[arg(long)]
        n: u64,
    },
    /// P6: wrk against the gateway, nginx and HAProxy as reverse proxies.
    P6 {
        /// `name=url` or `name=url=pid,pid` targets, in the order to run them
        /// (the pids, when given, are the proxy's processes, for its CPU time).
        #[arg(long = "target", required = true)]
        targets: Vec<String>,
        /// The upstream nginx's stub_status URL.
        #[arg(long)]
        stub: String,
        /// The upstream's port (to count each proxy's connections to it).
        #[arg(long)]
        upstream_port: u16,
        /// wrk's Lua script (the POST body).
        #[arg(long)]
        script: String,
        /// wrk threads.
        #[arg(long, default_value_t = 1)]
        threads: u32,
        /// wrk connections.
        #[arg(long, default_value_t = 64)]
        connections: u32,
        /// Warm-up, s.
        #[arg(long, default_value_t = 1)]
        warmup_s: u64,
        /// Measured time, s.
        #[arg(long, default_value_t = 8)]
        duration_s: u64,
    },
    /// P7 with peers: added latency of each proxy in front of one upstream.
    P7Peers {
        /// The upstream's URL, called directly.
        #[arg(long)]
        direct: String,
        /// `name=url` proxies of the same upstream.
        #[arg(long = "via", required = true)]
        vias: Vec<String>,
        /// Interleaved request rounds.
        #[arg(long, default_value_t = 2000)]
        n: usize,
    },
    /// P7: gateway added latency vs calling the upstream directly.
    P7 {
        /// The `keepwarm` binary (gateway).
        #[arg(long)]
        gateway: String,
        /// Directory for the gateway's config.
        #[arg(long, default_value = "target/bench-work")]
        workdir: PathBuf,
        /// Interleaved request pairs.
        #[arg(long, default_value_t = 2000)]
        n: usize,
    },
    /// P10: N concurrent streaming requests through the gateway to a TLS
    /// upstream, provider on HTTP/2 vs HTTP/1.1.
    P10 {
        /// The `keepwarm` binary (gateway).
        #[arg(long)]
        gateway: String,
        /// Directory for the gateway's config and the upstream's CA file.
        #[arg(long, default_value = "target/bench-work")]
        workdir: PathBuf,
        /// Streaming requests sent at once.
        #[arg(long, default_value_t = 50)]
        concurrency: usize,
        /// Wait between two SSE events of the upstream, ms.
        #[arg(long, default_value_t = 5)]
        gap_ms: u64,
        /// The provider protocols to run, in order (`http2`, `http1`).
        #[arg(long = "protocol", default_values_t = ["http2".to_string(), "http1".to_string()])]
        protocols: Vec<String>,
    },
    /// P8: RSS growth per idle connection (plain or TLS).
    P8 {
        /// TLS connections instead of plain.
        #[arg(long)]
        tls: bool,
        /// Connections to hold.
        #[arg(long, default_value_t = 10_000)]
        conns: usize,
        /// Exit at once while holding them (for massif's last snapshot).
        #[arg(long)]
        exit_idle: bool,
    },
    /// P9: CPU wakeups of a pool holding idle connections.
    P9Idle {
        /// Idle connections to hold.
        #[arg(long, default_value_t = 1000)]
        conns: usize,
        /// Each measuring window, ms.
        #[arg(long, default_value_t = 10_000)]
        window_ms: u64,
    },
    /// P9: reads criterion's estimates of `cargo bench -p keepwarm-pool --bench acquire`.
    P9Criterion {
        /// criterion's output directory.
        #[arg(long, default_value = "target/criterion")]
        dir: PathBuf,
    },
    /// P9's profile: callgrind (cache simulation) of acquire + release at 1 and 10,000 keys.
    P9Profile {
        /// Acquire + release cycles per run.
        #[arg(long, default_value_t = 200_000)]
        n: u64,
        /// Where callgrind writes its files.
        #[arg(long, default_value = "target/bench-callgrind")]
        dir: PathBuf,
    },
    /// The program P9's profile runs under callgrind.
    #[command(hide = true)]
    P9ProfileClient {
        /// Keys, one idle connection each.
        #[arg(long)]
        keys: u32,
        /// Cycles.
        #[arg(long)]
        n: u64,
    },
    /// The child upstream of P8/P9 (internal).
    #[command(hide = true)]
    ServeUpstream {
        /// Serve TLS.
        #[arg(long)]
        tls: bool,
    },
    /// Medians, ratios and goals from the runs' JSON lines.
    Summarize {
        /// The JSON lines of all runs.
        #[arg(long)]
        raw: PathBuf,
        /// A JSON object describing the machine.
        #[arg(long)]
        machine: Option<PathBuf>,
        /// Where to write the summary.
        #[arg(long, default_value = "bench/results/latest.json")]
        out: PathBuf,
        /// Markdown file whose results section to regenerate.
        #[arg(long)]
        docs: Option<PathBuf>,
    },
    /// PNG charts from a summary.
    Chart {
        /// The summary (`summarize --out`).
        #[arg(long, default_value = "bench/results/latest.json")]
        latest: PathBuf,
        /// Output directory.
        #[arg(long, default_value = "docs/bench")]
        out_dir: PathBuf,
        /// A TTF font for the text.
        #[arg(
            long,
            default_value = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
        )]
        font: PathBuf,
    },
}

fn runtime() -> BoxResult<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

fn run(cmd: Cmd) -> BoxResult<()> {
    keepwarm_testkit::install_crypto_provider();
    match cmd {
        Cmd::P1 { n, rtt_ms } => runtime()?.block_on(cases::latency::p1(n, rtt_ms)),
        Cmd::P2 {
            trials,
            steady,
            rtt_ms,
        } => runtime()?.block_on(cases::latency::p2(trials, steady, rtt_ms)),
        Cmd::P3 {
            variant,
            url,
            stub,
            requests,
            concurrency,
            max_sockets,
            pauses,
            pause_ms,
            keepalive_requests,
        } => runtime()?.block_on(cases::load::p3(cases::load::P3 {
            variant,
            url,
            stub,
            requests,
            concurrency,
            max_sockets,
            pauses,
            pause: Duration::from_millis(pause_ms),
            keepalive_requests,
        })),
        Cmd::P4 {
            client,
            url,
            stub,
            concurrency,
            max_sockets,
            label,
            warmup_ms,
            duration_ms,
        } => runtime()?.block_on(cases::load::p4(
            label.as_deref().unwrap_or(&client),
            &client,
            &url,
            &stub,
            concurrency,
            max_sockets,
            Duration::from_millis(warmup_ms),
            Duration::from_millis(duration_ms),
        )),
        Cmd::P5 {
            url,
            n1,
            n2,
            dir,
            top,
        } => cases::instructions::p5(&url, n1, n2, &dir, top),
        Cmd::P5Client { client, url, n } => cases::instructions::client(&client, &url, n),
        Cmd::P6 {
            targets,
            stub,
            upstream_port,
            script,
            threads,
            connections,
            warmup_s,
            duration_s,
        } => {
            let targets = targets
                .iter()
                .map(|t| {
                    let mut it = t.splitn(3, '=');
                    let (Some(name), Some(url)) = (it.next(), it.next()) else {
                        return Err(format!("--target {t}: expected name=url[=pids]").into());
                    };
                    let pids = it
                        .next()
                        .unwrap_or("")
                        .split(',')
                        .filter(|p| !p.is_empty())
                        .map(str::parse)
                        .collect::<Result<Vec<u32>, _>>()
                        .map_err(|e| format!("--target {t}: {e}"))?;
                    // The gateway's own counters, next to its proxied route.
                    let admin = (name == "keepwarm").then(|| {
                        url.split_once("/v1/").map_or(url.to_string(), |(base, _)| {
                            format!("{base}/api/connections/details")
                        })
                    });
                    Ok(cases::gateway::Target {
                        name: name.into(),
                        url: url.into(),
                        pids,
                        admin,
                    })
                })
                .collect::<BoxResult<Vec<_>>>()?;
            runtime()?.block_on(cases::gateway::p6(
                &targets,
                &stub,
                upstream_port,
                &script,
                threads,
                connections,
                Duration::from_secs(warmup_s),
                Duration::from_secs(duration_s),
            ))
        }
        Cmd::P7Peers { direct, vias, n } => {
            let vias = vias
                .iter()
                .map(|v| {
                    v.split_once('=')
                        .map(|(a, b)| (a.to_string(), b.to_string()))
                        .ok_or_else(|| format!("--via {v}: expected name=url").into())
                })
                .collect::<BoxResult<Vec<_>>>()?;
            runtime()?.block_on(cases::gateway::p7_peers(&direct, &vias, n))
        }
        Cmd::P7 {
            gateway,
            workdir,
            n,
        } => runtime()?.block_on(cases::gateway::p7(&gateway, &workdir, n)),
        Cmd::P10 {
            gateway,
            workdir,
            concurrency,
            gap_ms,
            protocols,
        } => runtime()?.block_on(cases::h2stream::p10(
            &gateway,
            &workdir,
            &protocols,
            concurrency,
            Duration::from_millis(gap_ms),
        )),
        Cmd::P8 {
            tls,
            conns,
            exit_idle,
        } => cases::idle::p8(tls, conns, exit_idle),
        Cmd::P9Idle { conns, window_ms } => {
            cases::idle::p9_idle(conns, Duration::from_millis(window_ms))
        }
        Cmd::P9Criterion { dir } => cases::criterion::p9(&dir),
        Cmd::P9Profile { n, dir } => cases::acquire::profile(n, &dir),
        Cmd::P9ProfileClient { keys, n } => cases::acquire::client(keys, n),
        Cmd::ServeUpstream { tls } => {
            runtime()?.block_on(cases::idle::serve_upstream(tls, Duration::from_secs(900)))
        }
        Cmd::Summarize {
            raw,
            machine,
            out,
            docs,
        } => summary::summarize(&raw, machine.as_deref(), &out, docs.as_deref()),
        Cmd::Chart {
            latest,
            out_dir,
            font,
        } => chart::chart(&latest, &out_dir, &font),
    }
}

fn main() -> std::process::ExitCode {
    match run(Cli::parse().cmd) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keepwarm-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
