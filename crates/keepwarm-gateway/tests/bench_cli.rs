//! `keepwarm bench <url>`: the connections and handshakes it reports are the
//! ones the upstream server itself accepted.

use std::process::{Command, Output};

use indicatif::ProgressBar;
use keepwarm_gateway::cli::bench::{self, BenchArgs};
use keepwarm_testkit::{Reply, Upstream};
use serde_json::{json, Value};

/// Runs the binary with `args` off the runtime (the upstream keeps serving).
async fn keepwarm(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_keepwarm"))
            .args(args)
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

/// `keepwarm bench --json <args>`, which must succeed; its report.
async fn bench_json(args: &[&str]) -> Value {
    let mut all = vec!["bench".to_string(), "--json".to_string()];
    all.extend(args.iter().map(|s| s.to_string()));
    let out = keepwarm(all).await;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

fn mode<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["modes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no mode {name} in {report}"))
}

fn count(m: &Value, key: &str) -> u64 {
    m[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count in {m}"))
}

/// Checks a report of `n` requests at concurrency `c` against `up`.
fn check(report: &Value, up: &Upstream, n: u64, c: u64) {
    let (off, on) = (mode(report, "pool off"), mode(report, "pool on"));
    assert_eq!(count(off, "connections"), n, "{off}");
    assert_eq!(count(off, "reuseCount"), 0, "{off}");
    let pooled = count(on, "connections");
    assert!((1..=c).contains(&pooled), "1..={c} connections: {on}");
    if c == 1 {
        assert_eq!(pooled, 1, "{on}");
    }
    assert_eq!(count(on, "reuseCount"), n - pooled, "{on}");
    for m in [off, on] {
        assert_eq!(count(m, "totalRequests"), n, "{m}");
        assert_eq!(count(m, "errors"), 0, "{m}");
        assert_eq!(m["firstOnNewConnection"], true, "{m}");
        let handshakes = count(m, "tlsFull") + count(m, "tlsResumed");
        let expected = if up.is_tls() {
            count(m, "connections")
        } else {
            0
        };
        assert_eq!(handshakes, expected, "{m}");
    }
    let s = up.stats();
    assert_eq!(
        s.accepted,
        n + pooled,
        "the server accepted what bench reports"
    );
    assert_eq!(s.requests, 2 * n);
    if up.is_tls() {
        assert_eq!(s.tls_full + s.tls_resumed, s.accepted, "{s:?}");
        assert_eq!(
            s.tls_full,
            count(off, "tlsFull") + count(on, "tlsFull"),
            "{s:?}"
        );
    }
}

fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("keepwarm-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// PEM text of a DER certificate.
fn pem(der: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let v = chunk
            .iter()
            .enumerate()
            .fold(0u32, |v, (i, &b)| v | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(A[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|l| std::str::from_utf8(l).unwrap())
        .collect();
    format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        lines.join("\n")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_pooled_uses_one_connection_unpooled_one_per_request() {
    let up = Upstream::plain().await;
    let report = bench_json(&[&up.url("/x"), "-n", "20"]).await;
    assert_eq!(report["method"], "GET");
    assert_eq!(
        (report["requests"].clone(), report["concurrency"].clone()),
        (json!(20), json!(1))
    );
    check(&report, &up, 20, 1);
    assert_eq!(mode(&report, "pool on")["reuseRate"], 95.0);
    assert_eq!(mode(&report, "pool off")["reuseRate"], 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_concurrency_c_the_pool_opens_at_most_c_connections() {
    let up = Upstream::plain().await;
    let report = bench_json(&[&up.url("/x"), "-n", "60", "-c", "4"]).await;
    check(&report, &up, 60, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_der_cacert() {
    let up = Upstream::tls().await;
    let ca = temp_file("ca.der", up.ca_der().as_ref());
    let report = bench_json(&[&up.url("/x"), "-n", "10", "--cacert", ca.to_str().unwrap()]).await;
    check(&report, &up, 10, 1);
    let on = mode(&report, "pool on");
    assert_eq!((count(on, "tlsFull"), count(on, "tlsResumed")), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_pem_cacert_at_concurrency() {
    let up = Upstream::tls().await;
    let ca = temp_file("ca.pem", pem(up.ca_der().as_ref()).as_bytes());
    let report = bench_json(&[
        &up.url("/x"),
        "-n",
        "30",
        "-c",
        "3",
        "--cacert",
        ca.to_str().unwrap(),
    ])
    .await;
    check(&report, &up, 30, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_is_posted_with_the_headers() {
    let up = Upstream::plain().await;
    let report = bench_json(&[
        &up.url("/v1/messages"),
        "-n",
        "3",
        "--data",
        r#"{"hello":"world"}"#,
        "-H",
        "Content-Type: application/json",
        "-H",
        "x-test: 42",
    ])
    .await;
    assert_eq!(report["method"], "POST");
    check(&report, &up, 3, 1);
    let log = up.stats().request_log;
    assert_eq!(log.len(), 6);
    for r in &log {
        assert_eq!(
            (r.method.as_str(), r.path.as_str()),
            ("POST", "/v1/messages")
        );
        assert_eq!(&r.body[..], br#"{"hello":"world"}"#);
        assert!(
            r.headers.contains(&("x-test".into(), "42".into())),
            "{:?}",
            r.headers
        );
        assert!(r
            .headers
            .contains(&("content-type".into(), "application/json".into())));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_flag_overrides_the_default() {
    let up = Upstream::plain().await;
    let report = bench_json(&[&up.url("/r"), "-n", "2", "--method", "put", "--data", "x"]).await;
    assert_eq!(report["method"], "PUT");
    assert!(up.stats().request_log.iter().all(|r| r.method == "PUT"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_2xx_answers_are_errors_but_timed() {
    let up = Upstream::builder()
        .handler(|_| Reply::json(503, &json!({"error": "busy"})))
        .start()
        .await;
    let report = bench_json(&[&up.url("/x"), "-n", "5"]).await;
    for name in ["pool off", "pool on"] {
        let m = mode(&report, name);
        assert_eq!(count(m, "errors"), 5, "{m}");
        assert_eq!(count(m, "totalRequests"), 5, "{m}");
        assert!(m["p50Ms"].is_number(), "{m}");
    }
    assert_eq!(up.stats().requests, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_error_exits_1_with_the_reason() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = keepwarm(vec![
        "bench".into(),
        format!("http://127.0.0.1:{port}/"),
        "-n".into(),
        "3".into(),
    ])
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("error:") && stderr.contains(&port.to_string()),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_has_the_seed_rows() {
    let up = Upstream::plain().await;
    let out = keepwarm(vec!["bench".into(), up.url("/x"), "-n".into(), "5".into()]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for row in [
        "First request",
        "Subsequent requests (avg)",
        "Average (5 requests)",
        "TLS handshakes",
        "Connections opened",
        "Reuse rate",
        "CPU time",
        "Throughput",
        "Improvement",
        "How measured",
    ] {
        assert!(stdout.contains(row), "{row}: {stdout}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn measure_called_directly() {
    let up = Upstream::plain().await;
    let args = BenchArgs {
        url: up.url("/d"),
        requests: 8,
        concurrency: 2,
        method: None,
        headers: vec![],
        data: None,
        cacert: None,
        json: true,
    };
    let modes = bench::measure(&args, &ProgressBar::hidden()).await.unwrap();
    assert_eq!(modes.len(), 2);
    assert_eq!(modes[0].connections, 8);
    assert!((1..=2).contains(&modes[1].connections));
    assert_eq!(
        up.stats().accepted,
        modes[0].connections + modes[1].connections
    );
    assert!(modes
        .iter()
        .all(|m| m.latencies.len() == 8 && m.errors == 0));
    let bad = BenchArgs {
        headers: vec!["no colon".into()],
        ..args
    };
    let err = bench::measure(&bad, &ProgressBar::hidden())
        .await
        .unwrap_err();
    assert!(err.contains("no colon"), "{err}");
}
