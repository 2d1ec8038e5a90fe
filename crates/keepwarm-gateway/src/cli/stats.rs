//! `keepwarm stats`: the management API as a readable table per provider —
//! reuse rate, active/idle, connection age, counters, health issues.
//! `--watch` follows `/api/connections/stream` and redraws on each event.

use std::process::ExitCode;
use std::sync::Arc;

use bytes::Bytes;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};
use http_body_util::BodyExt;
use keepwarm::Client;
use serde_json::Value;

/// Arguments of `keepwarm stats`.
#[derive(clap::Args, Debug, Clone)]
pub struct StatsArgs {
    /// The gateway's base URL.
    #[arg(long, default_value = "http://127.0.0.1:3456")]
    pub url: String,
    /// The gateway's APIKEY, if it has one (also read from KEEPWARM_API_KEY).
    #[arg(long, env = "KEEPWARM_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Follow the live stream and redraw on every update.
    #[arg(long)]
    pub watch: bool,
}

/// A client for the management API of one gateway.
#[derive(Clone, Debug)]
pub struct StatsClient {
    client: Client,
    base: Arc<str>,
    key: Option<Arc<str>>,
}

impl StatsClient {
    /// For the gateway at `base` (e.g. `http://127.0.0.1:3456`).
    pub fn new(base: &str, key: Option<&str>) -> Result<StatsClient, String> {
        let client = Client::builder().build().map_err(|e| e.to_string())?;
        Ok(StatsClient {
            client,
            base: Arc::from(base.trim_end_matches('/')),
            key: key.map(Arc::from),
        })
    }

    fn request(&self, path: &str) -> Result<http::Request<Bytes>, String> {
        let mut b = http::Request::get(format!("{}{path}", self.base));
        if let Some(k) = &self.key {
            b = b.header("x-api-key", k.as_ref());
        }
        b.body(Bytes::new())
            .map_err(|e| format!("bad URL {}: {e}", self.base))
    }

    /// GETs `path` and returns its `data`.
    pub async fn get(&self, path: &str) -> Result<Value, String> {
        let resp = self
            .client
            .request(self.request(path)?)
            .await
            .map_err(|e| format!("cannot reach the gateway at {}: {e}", self.base))?;
        let status = resp.status();
        let body = resp.into_body().bytes().await.map_err(|e| e.to_string())?;
        let v: Value = serde_json::from_slice(&body).map_err(|_| {
            format!(
                "{}{path} answered {status} with something that is not JSON: is this a keepwarm gateway?",
                self.base
            )
        })?;
        if !status.is_success() || v["success"] != true {
            let why = v["error"].as_str().unwrap_or("no reason given");
            let hint = if status == http::StatusCode::UNAUTHORIZED {
                " (pass --api-key or set KEEPWARM_API_KEY)"
            } else {
                ""
            };
            return Err(format!("{}{path}: {status}: {why}{hint}", self.base));
        }
        Ok(v["data"].clone())
    }

    /// `/details` and `/health`, rendered.
    pub async fn screen(&self) -> Result<String, String> {
        let details = self.get("/api/connections/details").await?;
        let health = self.get("/api/connections/health").await?;
        Ok(render(&details, &health))
    }
}

fn n(v: &Value) -> String {
    match v {
        Value::Number(x) => x.to_string(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// The table for a `/details` and a `/health` answer's `data`.
pub fn render(details: &Value, health: &Value) -> String {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED).set_header(vec![
        "provider",
        "proto",
        "requests",
        "reused",
        "reuse rate",
        "active",
        "idle",
        "avg age",
        "created",
        "closed",
        "stale",
        "retries",
        "waits",
        "TLS full/res",
        "status",
    ]);
    let empty = Vec::new();
    for p in details["providers"].as_array().unwrap_or(&empty) {
        let c = &p["counters"];
        let perf = &p["performance"];
        t.add_row(vec![
            p["provider"].as_str().unwrap_or("?").to_string(),
            p["protocol"].as_str().unwrap_or("?").to_string(),
            n(&perf["totalRequests"]),
            n(&perf["reuseCount"]),
            format!("{}%", n(&perf["reuseRate"])),
            n(&p["connections"]["active"]),
            n(&p["connections"]["idle"]),
            format!("{} s", n(&perf["averageConnectionAge"])),
            n(&c["connectionsCreated"]),
            n(&c["connectionsClosed"]),
            n(&c["staleCaughtBeforeReuse"]),
            n(&c["retries"]),
            n(&c["waits"]),
            format!(
                "{}/{}",
                n(&c["tlsHandshakes"]["full"]),
                n(&c["tlsHandshakes"]["resumed"])
            ),
            p["status"].as_str().unwrap_or("?").to_string(),
        ]);
    }
    for i in 2..14 {
        if let Some(col) = t.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    let o = &details["overview"];
    let mut out = format!(
        "{} providers · {} requests · {}% reused overall · {} active · {} idle\n{t}\n",
        n(&o["totalProviders"]),
        n(&o["totalRequests"]),
        n(&o["overallReuseRate"]),
        n(&o["totalActiveConnections"]),
        n(&o["totalIdleConnections"]),
    );
    match health["issues"].as_array() {
        Some(issues) if !issues.is_empty() => {
            out.push_str("health: ISSUES\n");
            for i in issues {
                out.push_str(&format!("  - {}\n", i.as_str().unwrap_or("?")));
            }
        }
        _ => out.push_str("health: ok\n"),
    }
    out
}

async fn watch(c: &StatsClient) -> Result<(), String> {
    use std::io::{IsTerminal, Write};
    let resp = c
        .client
        .request(c.request("/api/connections/stream")?)
        .await
        .map_err(|e| format!("cannot reach the gateway at {}: {e}", c.base))?;
    if !resp.status().is_success() {
        return Err(format!(
            "{}/api/connections/stream: {}",
            c.base,
            resp.status()
        ));
    }
    let mut body = resp.into_body();
    let mut buf = String::new();
    let tty = std::io::stdout().is_terminal();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("the stream ended: {e}"))?;
        let Some(data) = frame.data_ref() else {
            continue;
        };
        buf.push_str(&String::from_utf8_lossy(data));
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            if !event.lines().any(|l| l == "event: stats") {
                continue; // keep-alive comment
            }
            let screen = c.screen().await?;
            let mut out = std::io::stdout().lock();
            if tty {
                let _ = write!(out, "\x1b[2J\x1b[H");
            }
            let _ = writeln!(out, "{screen}");
        }
    }
    Ok(())
}

/// Runs `keepwarm stats`.
pub async fn run(args: StatsArgs) -> ExitCode {
    let c = match StatsClient::new(&args.url, args.api_key.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let r = if args.watch {
        watch(&c).await
    } else {
        c.screen().await.map(|s| print!("{s}"))
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
