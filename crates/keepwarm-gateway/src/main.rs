//! The `keepwarm` command: `serve` runs the gateway, `check-config`
//! validates a config file and prints the effective settings (keys redacted).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use keepwarm_gateway::config::{self, ConfigSource, Loaded};
use keepwarm_gateway::{cli, server, AppState};

/// mimalloc instead of glibc malloc, only with `--features mimalloc`
/// (measured by `bench/mimalloc.sh`; off by default).
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An LLM API gateway on a keep-alive connection pool that counts real sockets.
#[derive(Parser, Debug)]
#[command(name = "keepwarm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway (default http://127.0.0.1:3456).
    ///
    /// Reads --config, else ./config.json, else defaults with providers from
    /// ANTHROPIC_API_KEY / ANTHROPIC_BASE_URL and OPENAI_API_KEY / OPENAI_BASE_URL.
    Serve {
        /// The config file (claude-code-router's format plus HttpConnectionPool).
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
        /// Address to listen on, overriding HOST (default 127.0.0.1).
        #[arg(long)]
        host: Option<String>,
        /// Port to listen on, overriding PORT (default 3456).
        #[arg(long)]
        port: Option<u16>,
        /// Worker threads (default: one per CPU). 1 runs everything on one
        /// event loop: no request hops between threads, which is fastest
        /// when the machine also runs the load or the upstream.
        #[arg(long, env = "KEEPWARM_THREADS", value_parser = clap::value_parser!(u16).range(1..))]
        threads: Option<u16>,
        /// Reload the config file when it changes (checked every second).
        /// SIGHUP and POST /api/config/reload reload it too.
        #[arg(long)]
        watch: bool,
    },
    /// Validate a config file and print the effective configuration, keys redacted.
    CheckConfig {
        /// The config file (default: ./config.json, else the environment).
        path: Option<PathBuf>,
    },
    /// Show a running gateway's pools: reuse rate, active/idle, age, health issues.
    Stats(cli::stats::StatsArgs),
    /// The whole story offline: a local TLS mock provider behind a latency shim,
    /// the gateway, and the same requests with the pool off, on and pre-warmed.
    Demo(cli::demo::DemoArgs),
    /// Measure any URL pooled vs `keepAlive: false` and print the same table.
    Bench(cli::bench::BenchArgs),
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn load(path: Option<&std::path::Path>) -> Result<Loaded, ExitCode> {
    config::load(path, &env).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::from(2)
    })
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                eprintln!("error: cannot start the runtime: {e}");
                ExitCode::FAILURE
            })
    };
    match cli.command {
        Command::CheckConfig { path } => check_config(path),
        Command::Stats(args) => match runtime() {
            Ok(rt) => rt.block_on(cli::stats::run(args)),
            Err(code) => code,
        },
        Command::Demo(args) => match runtime() {
            Ok(rt) => rt.block_on(cli::demo::run(args)),
            Err(code) => code,
        },
        Command::Bench(args) => match runtime() {
            Ok(rt) => rt.block_on(cli::bench::run(args)),
            Err(code) => code,
        },
        Command::Serve {
            config,
            host,
            port,
            threads,
            watch,
        } => {
            let built = match threads {
                Some(1) => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build(),
                Some(n) => tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(usize::from(n))
                    .enable_all()
                    .build(),
                None => tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build(),
            };
            match built {
                Ok(rt) => rt.block_on(serve(config, host, port, watch)),
                Err(e) => {
                    eprintln!("error: cannot start the runtime: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Prints every error found (not only the first), then the warnings.
fn check_config(path: Option<PathBuf>) -> ExitCode {
    let loaded = match config::load_all(path.as_deref(), &env) {
        Ok(l) => l,
        Err(rejected) => {
            for w in &rejected.warnings {
                eprintln!("warning: {w}");
            }
            for e in &rejected.errors {
                eprintln!("error: {e}");
            }
            let n = rejected.errors.len();
            eprintln!(
                "the config is invalid: {n} error{}",
                if n == 1 { "" } else { "s" }
            );
            return ExitCode::from(2);
        }
    };
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    match &loaded.source {
        ConfigSource::File(p) => eprintln!("config {} is valid", p.display()),
        ConfigSource::Environment => {
            eprintln!("no config file; effective settings from defaults and the environment")
        }
    }
    if let Err(e) = server::check_exposure(&loaded.config) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    match serde_json::to_string_pretty(&loaded.config.redacted_json()) {
        Ok(s) => println!("{s}"),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

async fn serve(
    path: Option<PathBuf>,
    host: Option<String>,
    port: Option<u16>,
    watch: bool,
) -> ExitCode {
    let mut loaded = match load(path.as_deref()) {
        Ok(l) => l,
        Err(code) => return code,
    };
    if let Some(h) = host {
        loaded.config.host = h;
    }
    if let Some(p) = port {
        loaded.config.port = p;
    }
    let cfg = &loaded.config;
    init_logging(&cfg.log_level);
    for w in &loaded.warnings {
        tracing::warn!("config: {w}");
    }
    match &loaded.source {
        ConfigSource::File(p) => tracing::info!("config: {}", p.display()),
        ConfigSource::Environment => tracing::info!(
            "config: no config file (./config.json not found); using defaults and the environment"
        ),
    }
    if let Err(e) = server::check_exposure(cfg) {
        tracing::error!("{e}");
        return ExitCode::from(2);
    }
    if cfg.providers.is_empty() {
        tracing::warn!(
            "no providers configured: set ANTHROPIC_API_KEY (and ANTHROPIC_BASE_URL) or \
             OPENAI_API_KEY (and OPENAI_BASE_URL), or write a config.json with Providers; \
             until then LLM requests get a 400 naming the problem"
        );
    }
    for p in &cfg.providers {
        let s = cfg.pool.for_provider(&p.name);
        tracing::info!(
            "provider {} ({} API) -> {} | pool: keepAlive {}, maxSockets {}, maxFreeSockets {}, freeSocketTimeout {:?}, maxSocketLifetime {}",
            p.name,
            p.api.as_str(),
            config::redact_url(&p.api_base_url),
            s.enabled && s.keep_alive,
            s.max_sockets,
            s.max_free_sockets,
            s.free_socket_timeout,
            s.max_socket_lifetime
                .map_or("none".to_string(), |d| format!("{d:?}"))
        );
    }
    let addr = format!("{}:{}", cfg.host, cfg.port);
    let state = match AppState::new(loaded.config.clone()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot build the provider pools: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The bound address (with --port 0, the port the system chose).
    let addr = listener.local_addr().map_or(addr, |a| a.to_string());
    tracing::info!(
        "listening on http://{addr} — POST /v1/messages, /v1/messages/count_tokens, /v1/chat/completions; GET /health{}",
        if loaded.config.api_key.is_some() { " (APIKEY required)" } else { "" }
    );
    tracing::info!("dashboard: http://{addr}/dashboard");
    // minFreeSockets connections per provider, opened while serving starts.
    tokio::spawn(keepwarm_gateway::prewarm::run_and_log(state.clone()));
    // Reloads re-read the file the gateway started from.
    let file = match &loaded.source {
        ConfigSource::File(p) => Some(p.clone()),
        ConfigSource::Environment => None,
    };
    state.set_config_path(file.clone());
    tokio::spawn(keepwarm_gateway::reload::on_sighup(state.clone()));
    if watch {
        match file {
            Some(p) => {
                tracing::info!("watching {} for changes", p.display());
                tokio::spawn(keepwarm_gateway::reload::watch(
                    state.clone(),
                    p,
                    std::time::Duration::from_secs(1),
                ));
            }
            None => tracing::warn!("--watch: there is no config file to watch"),
        }
    }
    match server::serve(listener, state, server::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("server error: {e}");
            ExitCode::FAILURE
        }
    }
}
