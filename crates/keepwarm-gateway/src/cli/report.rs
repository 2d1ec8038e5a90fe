//! What `keepwarm demo` and `keepwarm bench` measure, and how they show it:
//! one [`ModeResult`] per mode (pool off, pool on, …), rendered as the first
//! seed's "Real-World Performance" table ([`table`]: rows are metrics,
//! columns are modes plus "Improvement") or as JSON ([`ModeResult::to_json`]).
//!
//! Every number is measured: latencies are timed per request (send until the
//! body was read to the end), connections and TLS handshakes are counted by
//! sockets (the server's or the client's counters, as each command says),
//! and CPU time is read from the kernel ([`process_cpu_time`]).

use std::time::Duration;

use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{CellAlignment, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

/// The measurements of one mode (e.g. "pool off") of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModeResult {
    /// The mode's name, e.g. `"pool on"`.
    pub name: String,
    /// Each request's latency in dispatch order (request 0 first): from
    /// sending it until its response body was read to the end.
    pub latencies: Vec<Duration>,
    /// Connections opened during the mode (including pre-warmed ones).
    pub connections: u64,
    /// Full TLS handshakes.
    pub tls_full: u64,
    /// Resumed TLS handshakes (session tickets; no certificate exchange,
    /// but in TLS 1.3 still one round trip).
    pub tls_resumed: u64,
    /// Requests dispatched on a connection (the pool's `totalRequests`).
    pub requests: u64,
    /// Of those, the ones sent on a connection that had already carried a
    /// request (the pool's `reuseCount`).
    pub reused: u64,
    /// Connections opened ahead of demand (`minFreeSockets` pre-warming);
    /// `connections - prewarmed` were opened by requests.
    pub prewarmed: u64,
    /// Whether the first request had to open its connection (`false` when
    /// a pre-warmed connection carried it); `None` when unknown.
    pub first_on_new_connection: Option<bool>,
    /// HTTP/2 streams the server served (one per request that rode h2);
    /// `None` for a mode whose upstream speaks HTTP/1.1 only.
    pub streams: Option<u64>,
    /// CPU time the process spent during the mode (user + system, all threads).
    pub cpu: Duration,
    /// Wall-clock time of the mode's requests, first sent to last read.
    pub wall: Duration,
    /// Requests that failed or got a non-2xx status (still timed).
    pub errors: u64,
}

fn mean(d: &[Duration]) -> Duration {
    if d.is_empty() {
        return Duration::ZERO;
    }
    d.iter().sum::<Duration>() / u32::try_from(d.len()).unwrap_or(u32::MAX)
}

impl ModeResult {
    /// The first request's latency (zero when there were none).
    pub fn first(&self) -> Duration {
        self.latencies.first().copied().unwrap_or_default()
    }

    /// The mean latency of every request after the first.
    pub fn subsequent_avg(&self) -> Duration {
        mean(self.latencies.get(1..).unwrap_or_default())
    }

    /// The `p`-th percentile latency (`p` in 0..=100), nearest rank.
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let mut sorted = self.latencies.clone();
        sorted.sort_unstable();
        let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    /// The median latency.
    pub fn p50(&self) -> Duration {
        self.percentile(50.0)
    }

    /// The 99th percentile latency (the slowest request below 100 requests).
    pub fn p99(&self) -> Duration {
        self.percentile(99.0)
    }

    /// The mean latency of the first 10 requests (all of them if fewer).
    pub fn avg_first_10(&self) -> Duration {
        mean(&self.latencies[..self.latencies.len().min(10)])
    }

    /// The mean latency of all requests.
    pub fn avg_all(&self) -> Duration {
        mean(&self.latencies)
    }

    /// `100 × reused / requests`, one decimal; 0 when no requests (the
    /// pool's `reuseRate`).
    pub fn reuse_rate(&self) -> f64 {
        keepwarm_pool::reuse_rate(self.reused, self.requests)
    }

    /// Completed requests per second of wall-clock time.
    pub fn req_per_s(&self) -> f64 {
        let s = self.wall.as_secs_f64();
        if s > 0.0 {
            self.latencies.len() as f64 / s
        } else {
            0.0
        }
    }

    /// The mode as JSON: `name`, `firstMs`, `subsequentAvgMs`, `p50Ms`,
    /// `p99Ms`, `avgFirst10Ms`, `avgAllMs`, `tlsFull`, `tlsResumed`,
    /// `connections`, `prewarmed`, `firstOnNewConnection`, `streams` (HTTP/2
    /// streams by the server's count; `null` for HTTP/1.1), `totalRequests`,
    /// `reuseCount`, `reuseRate`, `cpuMs`, `wallMs`, `reqPerS`, `errors`.
    /// Durations in milliseconds, three decimals.
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "firstMs": ms_f64(self.first()),
            "subsequentAvgMs": ms_f64(self.subsequent_avg()),
            "p50Ms": ms_f64(self.p50()),
            "p99Ms": ms_f64(self.p99()),
            "avgFirst10Ms": ms_f64(self.avg_first_10()),
            "avgAllMs": ms_f64(self.avg_all()),
            "tlsFull": self.tls_full,
            "tlsResumed": self.tls_resumed,
            "connections": self.connections,
            "prewarmed": self.prewarmed,
            "firstOnNewConnection": self.first_on_new_connection,
            "streams": self.streams,
            "totalRequests": self.requests,
            "reuseCount": self.reused,
            "reuseRate": self.reuse_rate(),
            "cpuMs": ms_f64(self.cpu),
            "wallMs": ms_f64(self.wall),
            "reqPerS": (self.req_per_s() * 10.0).round() / 10.0,
            "errors": self.errors,
        })
    }
}

/// `d` in milliseconds, rounded to three decimals.
pub fn ms_f64(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// `d` for the table: `0.184 ms`, `4.21 ms`, `61.3 ms`, `1204 ms`.
pub fn fmt_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    match ms {
        m if m < 1.0 => format!("{m:.3} ms"),
        m if m < 10.0 => format!("{m:.2} ms"),
        m if m < 1000.0 => format!("{m:.1} ms"),
        m => format!("{m:.0} ms"),
    }
}

/// Relative change of a duration or rate, `-66%` / `+12%` / `0%`.
fn change(base: f64, new: f64) -> String {
    if base <= 0.0 {
        return "n/a".into();
    }
    let pct = ((new - base) / base * 100.0).round();
    if pct == 0.0 {
        "0%".into() // also -0
    } else {
        format!("{pct:+.0}%")
    }
}

/// Change of a count: `99% fewer`, `same`, `3× more`.
fn fewer(base: u64, new: u64) -> String {
    use std::cmp::Ordering::*;
    match new.cmp(&base) {
        Equal => "same".into(),
        Less => format!("{:.0}% fewer", (base - new) as f64 / base as f64 * 100.0),
        Greater if base == 0 => format!("+{new}"),
        Greater => format!("{:.1}× more", new as f64 / base as f64),
    }
}

/// The seed's "Real-World Performance" table with measured numbers: one row
/// per metric, one column per mode, and an "Improvement" column comparing
/// `modes[compared]` with `modes[baseline]` (negative percentages are
/// faster). `throughput` adds the req/s and error rows (`bench`).
///
/// # Panics
/// If `baseline` or `compared` is out of range.
pub fn table(modes: &[ModeResult], baseline: usize, compared: usize, throughput: bool) -> String {
    let (b, c) = (&modes[baseline], &modes[compared]);
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED);
    let mut header = vec!["Metric".to_string()];
    header.extend(modes.iter().map(|m| m.name.clone()));
    header.push(format!("Improvement\n({} vs {})", c.name, b.name));
    t.set_header(header);

    let n = modes.iter().map(|m| m.latencies.len()).max().unwrap_or(0);
    type Lat = fn(&ModeResult) -> Duration;
    let latency_rows: [(String, Lat); 6] = [
        ("First request".into(), ModeResult::first),
        (
            "Subsequent requests (avg)".into(),
            ModeResult::subsequent_avg,
        ),
        ("p50".into(), ModeResult::p50),
        ("p99".into(), ModeResult::p99),
        (
            format!("Average ({} requests)", n.min(10)),
            ModeResult::avg_first_10,
        ),
        (format!("Average ({n} requests)"), ModeResult::avg_all),
    ];
    for (label, f) in latency_rows {
        let mut row = vec![label];
        row.extend(modes.iter().map(|m| fmt_ms(f(m))));
        row.push(change(f(b).as_secs_f64(), f(c).as_secs_f64()));
        t.add_row(row);
    }

    let handshakes = |m: &ModeResult| m.tls_full + m.tls_resumed;
    let mut row = vec!["TLS handshakes (full + resumed)".to_string()];
    row.extend(
        modes
            .iter()
            .map(|m| format!("{} ({} + {})", handshakes(m), m.tls_full, m.tls_resumed)),
    );
    row.push(fewer(handshakes(b), handshakes(c)));
    t.add_row(row);

    let mut row = vec!["Connections opened".to_string()];
    row.extend(modes.iter().map(|m| match m.prewarmed {
        0 => m.connections.to_string(),
        p => format!("{} ({p} pre-warmed)", m.connections),
    }));
    row.push(fewer(b.connections, c.connections));
    t.add_row(row);

    if modes.iter().any(|m| m.streams.is_some()) {
        let mut row = vec!["HTTP/2 streams".to_string()];
        row.extend(modes.iter().map(|m| match m.streams {
            Some(n) => n.to_string(),
            None => "- (HTTP/1.1)".to_string(),
        }));
        row.push(String::new());
        t.add_row(row);
    }

    let mut row = vec!["Reuse rate".to_string()];
    row.extend(
        modes
            .iter()
            .map(|m| format!("{:.1}% ({}/{})", m.reuse_rate(), m.reused, m.requests)),
    );
    row.push(format!("{:+.1} pts", c.reuse_rate() - b.reuse_rate()));
    t.add_row(row);

    let mut row = vec!["CPU time (process)".to_string()];
    row.extend(modes.iter().map(|m| fmt_ms(m.cpu)));
    row.push(change(b.cpu.as_secs_f64(), c.cpu.as_secs_f64()));
    t.add_row(row);

    if throughput {
        let mut row = vec!["Throughput".to_string()];
        row.extend(modes.iter().map(|m| format!("{:.1} req/s", m.req_per_s())));
        row.push(change(b.req_per_s(), c.req_per_s()));
        t.add_row(row);

        let mut row = vec!["Errors".to_string()];
        row.extend(modes.iter().map(|m| m.errors.to_string()));
        row.push(String::new());
        t.add_row(row);
    }

    for i in 1..=modes.len() + 1 {
        if let Some(col) = t.column_mut(i) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    t.to_string()
}

/// CPU time (user + system) this process has used so far, all threads.
///
/// Read from Linux's `/proc`: the sum of the first field of
/// `/proc/self/task/*/schedstat` (nanoseconds on CPU per live thread), else
/// `utime + stime` of `/proc/self/stat` at 100 clock ticks per second (the
/// Linux `USER_HZ`; `sysconf` is not reachable from std), which is only
/// 10 ms precise. The schedstat sum misses threads that exited, which only
/// matters for a thread that worked and then idled out within one
/// measurement (tokio keeps idle threads for 10 s). `None` elsewhere.
pub fn process_cpu_time() -> Option<Duration> {
    schedstat_sum().or_else(stat_ticks)
}

fn schedstat_sum() -> Option<Duration> {
    let mut ns: u64 = 0;
    let mut any = false;
    for entry in std::fs::read_dir("/proc/self/task").ok()? {
        let path = entry.ok()?.path().join("schedstat");
        // A thread may exit between listing and reading: skip it.
        let Ok(text) = std::fs::read_to_string(path) else {
            continue;
        };
        ns += text.split_whitespace().next()?.parse::<u64>().ok()?;
        any = true;
    }
    any.then(|| Duration::from_nanos(ns))
}

fn stat_ticks() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}

/// The logical CPUs available to this process (what `nproc` prints).
pub fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// A progress bar on stderr for `total` requests, hidden when `hidden` or
/// stderr is not a terminal.
pub fn progress(total: u64, hidden: bool) -> ProgressBar {
    use std::io::IsTerminal;
    let target = if hidden || !std::io::stderr().is_terminal() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let pb = ProgressBar::with_draw_target(Some(total), target);
    if let Ok(style) =
        ProgressStyle::with_template("{msg:>12} [{bar:30}] {pos}/{len} requests {elapsed}")
    {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

/// The shared shape of `demo` and `bench`: a progress bar (hidden for
/// `--json`), the measurement, then `print` on success or the error on
/// stderr with exit code 1.
pub async fn run<F>(
    total: u64,
    json: bool,
    measure: F,
    print: impl FnOnce(&[ModeResult]),
) -> std::process::ExitCode
where
    F: AsyncFnOnce(&indicatif::ProgressBar) -> Result<Vec<ModeResult>, String>,
{
    let bar = progress(total, json);
    let result = measure(&bar).await;
    bar.finish_and_clear();
    match result {
        Ok(modes) => {
            print(&modes);
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(ms: &[u64]) -> ModeResult {
        ModeResult {
            name: "m".into(),
            latencies: ms.iter().map(|&m| Duration::from_millis(m)).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn derived_numbers() {
        let m = mode(&[60, 20, 22, 21, 20, 20, 20, 20, 20, 20, 40, 20]);
        assert_eq!(m.first(), Duration::from_millis(60));
        assert_eq!(m.subsequent_avg(), Duration::from_millis(243) / 11);
        assert_eq!(m.p50(), Duration::from_millis(20));
        assert_eq!(m.p99(), Duration::from_millis(60));
        assert_eq!(m.avg_first_10(), Duration::from_millis(243) / 10);
        assert_eq!(m.avg_all(), Duration::from_millis(303) / 12);
        assert_eq!(mode(&[]).p99(), Duration::ZERO);
        assert_eq!(mode(&[5]).subsequent_avg(), Duration::ZERO);
    }

    #[test]
    fn improvements() {
        assert_eq!(change(60.0, 20.0), "-67%");
        assert_eq!(change(60.0, 60.2), "0%");
        assert_eq!(change(0.0, 1.0), "n/a");
        assert_eq!(fewer(100, 1), "99% fewer");
        assert_eq!(fewer(2, 2), "same");
        assert_eq!(fewer(1, 3), "3.0× more");
    }

    #[test]
    fn cpu_time_is_readable_and_grows() {
        let a = process_cpu_time().expect("Linux /proc");
        let mut x = 0u64;
        for i in 0..20_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let b = process_cpu_time().unwrap();
        assert!(b > a, "{a:?} -> {b:?}");
        assert!(stat_ticks().is_some());
    }
}
