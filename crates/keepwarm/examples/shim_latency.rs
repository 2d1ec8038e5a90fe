//! 100 sequential HTTPS requests through a latency shim (20 ms round trip by
//! default), pooled vs `keepAlive: false`; prints medians, p99 and the
//! connections and handshakes the server counted.
//!
//! Run: `cargo run --release -p keepwarm --example shim_latency [-- RTT_MS [N]]`

use std::time::{Duration, Instant};

use keepwarm::Client;
use keepwarm_testkit::{LatencyShim, Upstream};

fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let rtt_ms: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(20);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(100);
    println!("{n} sequential GETs over TLS through a {rtt_ms} ms round-trip shim\n");
    println!(
        "{:<22} {:>10} {:>10} {:>10} {:>10} {:>12} {:>10}",
        "mode", "first", "median", "p99", "mean", "connections", "full/res"
    );
    for keep_alive in [false, true] {
        let up = Upstream::tls().await;
        let shim = LatencyShim::start(up.addr(), Duration::from_millis(rtt_ms / 2)).await;
        let url = format!("https://localhost:{}/bench", shim.addr().port());
        let client = Client::builder()
            .keep_alive(keep_alive)
            .tls_built_in_roots(false)
            .add_root_certificate(up.ca_der())
            .build()?;
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            let resp = client.get(&url).await?;
            resp.into_body().bytes().await?;
            times.push(t.elapsed());
        }
        let first = times[0];
        let mean = times.iter().sum::<Duration>() / n as u32;
        let mut sorted = times.clone();
        sorted.sort();
        let s = up.stats();
        println!(
            "{:<22} {:>10} {:>10} {:>10} {:>10} {:>12} {:>10}",
            if keep_alive {
                "pooled (keepwarm)"
            } else {
                "keepAlive: false"
            },
            ms(first),
            ms(pct(&sorted, 0.5)),
            ms(pct(&sorted, 0.99)),
            ms(mean),
            s.accepted,
            format!("{}/{}", s.tls_full, s.tls_resumed),
        );
    }
    Ok(())
}
