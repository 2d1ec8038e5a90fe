//! Small helpers shared by the cases: percentiles, process counters from
//! `/proc`, nginx's `stub_status`, and the request bodies every case sends.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde::Serialize;

/// The JSON body the gateway cases POST (`"model": "provider,model"`).
pub(crate) const CHAT_BODY: &str =
    r#"{"model":"up,m","max_tokens":8,"messages":[{"role":"user","content":"hi"}]}"#;

/// Milliseconds as `f64`.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Microseconds as `f64`.
pub(crate) fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// The `p`-quantile (0..=1) of `v` by nearest rank; 0 for an empty slice.
pub(crate) fn quantile(v: &[f64], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let i = ((s.len() as f64 - 1.0) * p).round() as usize;
    s[i.min(s.len() - 1)]
}

/// The median of `v` (mean of the two middle values for an even count).
pub(crate) fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Resident set size of this process in KiB (`VmRSS`).
pub(crate) fn rss_kib() -> u64 {
    status_field("/proc/self/status", "VmRSS:").unwrap_or(0)
}

fn status_field(path: &str, name: &str) -> Option<u64> {
    let s = std::fs::read_to_string(path).ok()?;
    s.lines()
        .find(|l| l.starts_with(name))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Context switches (voluntary, involuntary) summed over every thread of
/// this process, and its CPU time (user + system), from `/proc/self/task`.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct ProcCounters {
    /// Voluntary context switches: a thread slept and was woken.
    pub(crate) voluntary: u64,
    /// Involuntary context switches.
    pub(crate) involuntary: u64,
    /// utime + stime in clock ticks (1/100 s on Linux).
    pub(crate) cpu_ticks: u64,
    /// Threads alive.
    pub(crate) threads: u64,
}

impl ProcCounters {
    /// Reads the counters now.
    pub(crate) fn read() -> ProcCounters {
        let mut c = ProcCounters::default();
        let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
            return c;
        };
        for e in dir.flatten() {
            let p = e.path();
            let st = p.join("status");
            c.voluntary +=
                status_field(st.to_str().unwrap_or(""), "voluntary_ctxt_switches:").unwrap_or(0);
            c.involuntary +=
                status_field(st.to_str().unwrap_or(""), "nonvoluntary_ctxt_switches:").unwrap_or(0);
            c.threads += 1;
        }
        // Process-wide CPU time (all threads, dead ones included).
        if let Ok(s) = std::fs::read_to_string("/proc/self/stat") {
            // Fields after the `(comm)`: state is field 3; utime 14, stime 15.
            if let Some(rest) = s.rsplit_once(')').map(|(_, r)| r) {
                let f: Vec<&str> = rest.split_whitespace().collect();
                let get = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
                c.cpu_ticks = get(11) + get(12);
            }
        }
        c
    }

    /// `self - earlier`, field by field.
    pub(crate) fn since(&self, earlier: &ProcCounters) -> ProcCounters {
        ProcCounters {
            voluntary: self.voluntary.saturating_sub(earlier.voluntary),
            involuntary: self.involuntary.saturating_sub(earlier.involuntary),
            cpu_ticks: self.cpu_ticks.saturating_sub(earlier.cpu_ticks),
            threads: self.threads,
        }
    }
}

/// nginx's own counters from `stub_status`.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub(crate) struct Stub {
    /// Connections accepted since start.
    pub(crate) accepts: u64,
    /// Requests served since start.
    pub(crate) requests: u64,
    /// Connections open now, this `stub_status` request's own excluded.
    pub(crate) active: u64,
}

impl Stub {
    /// Fetches `http://ADDR/PATH` over a fresh connection (which itself
    /// counts one accept and one request: see [`Stub::delta`]).
    pub(crate) fn fetch(url: &str) -> Result<Stub, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("stub_status URL must be http://: {url}"))?;
        let (addr, path) = rest.split_once('/').unwrap_or((rest, ""));
        let mut s = TcpStream::connect(addr).map_err(|e| format!("stub_status {url}: {e}"))?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok();
        write!(
            s,
            "GET /{path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        )
        .map_err(|e| format!("stub_status {url}: {e}"))?;
        let mut body = String::new();
        s.read_to_string(&mut body)
            .map_err(|e| format!("stub_status {url}: {e}"))?;
        // "server accepts handled requests\n 5 5 10 \n"
        let line = body
            .lines()
            .skip_while(|l| !l.starts_with("server accepts"))
            .nth(1)
            .ok_or_else(|| format!("stub_status {url}: unexpected answer {body:?}"))?;
        let n: Vec<u64> = line
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        if n.len() < 3 {
            return Err(format!("stub_status {url}: unexpected line {line:?}"));
        }
        let active = body
            .lines()
            .find_map(|l| l.strip_prefix("Active connections:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(1);
        Ok(Stub {
            accepts: n[0],
            requests: n[2],
            active: active.saturating_sub(1),
        })
    }

    /// What happened between `before` and `self`, less the `stub_status`
    /// request of `self` itself (one connection, one request).
    pub(crate) fn delta(&self, before: &Stub) -> Stub {
        Stub {
            accepts: self.accepts.saturating_sub(before.accepts + 1),
            requests: self.requests.saturating_sub(before.requests + 1),
            active: self.active,
        }
    }
}

/// TCP connections that the processes `pids` hold ESTABLISHED to
/// `127.0.0.1:port` (their socket inodes matched in `/proc/net/tcp`).
pub(crate) fn open_to(pids: &[u32], port: u16) -> u64 {
    let mut inodes = std::collections::HashSet::new();
    for p in pids {
        let Ok(dir) = std::fs::read_dir(format!("/proc/{p}/fd")) else {
            continue;
        };
        for e in dir.flatten() {
            if let Ok(t) = std::fs::read_link(e.path()) {
                let t = t.to_string_lossy();
                if let Some(i) = t.strip_prefix("socket:[").and_then(|x| x.strip_suffix(']')) {
                    inodes.insert(i.to_string());
                }
            }
        }
    }
    let Ok(tcp) = std::fs::read_to_string("/proc/net/tcp") else {
        return 0;
    };
    let want = format!(":{port:04X}");
    tcp.lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            f.len() > 9 && f[2].ends_with(&want) && f[3] == "01" && inodes.contains(f[9])
        })
        .count() as u64
}

/// Samples [`open_to`] every 200 ms on a thread until finished, keeping
/// the most connections seen open at once.
pub(crate) struct PeakSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    handle: Option<std::thread::JoinHandle<u64>>,
}

impl PeakSampler {
    /// Starts sampling (bounded: at most 10 minutes).
    pub(crate) fn start(pids: Vec<u32>, port: u16) -> PeakSampler {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = 0;
            let t = Instant::now();
            while !s.load(Ordering::Relaxed) && t.elapsed() < Duration::from_secs(600) {
                peak = peak.max(open_to(&pids, port));
                std::thread::sleep(Duration::from_millis(200));
            }
            peak
        });
        PeakSampler {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops and returns the peak.
    pub(crate) fn finish(mut self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.handle.take().map_or(0, |h| h.join().unwrap_or(0))
    }
}

/// Prints one JSON result line (what `run.sh` collects).
pub(crate) fn emit(v: &serde_json::Value) {
    println!("{v}");
}

/// Waits until `f` holds, polling every millisecond, at most `max`.
pub(crate) async fn wait_for(mut f: impl FnMut() -> bool, max: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < max {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    f()
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub(crate) fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// The boxed error every case returns.
pub(crate) type BoxResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;
