//! `keepwarm demo`: the counts behind its table (never durations) are the
//! ones the mock server and the gateway's pool counted, per mode; with
//! `--http2` a fourth mode whose requests ride streams on one h2
//! connection by the HTTP/2 server's count.

use std::process::Command;

use indicatif::ProgressBar;
use keepwarm_gateway::cli::demo::{self, DemoArgs};
use serde_json::Value;

const N: u64 = 12;

fn args() -> DemoArgs {
    DemoArgs {
        rtt_ms: 4,
        requests: N as usize,
        json: true,
        http2: false,
    }
}

/// The mode named `name` in a demo JSON report.
fn mode<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["modes"]
        .as_array()
        .expect("modes")
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("no mode {name} in {report}"))
}

fn count(m: &Value, key: &str) -> u64 {
    m[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count in {m}"))
}

fn check(report: &Value) {
    check_modes(report, &["pool off", "pool on", "pre-warmed"]);
    assert_eq!(report["http2"], false);
}

/// The HTTP/2 column: one h2 connection (one TLS handshake) by the
/// server's count, every request a stream on it, all but the first reused.
fn check_http2(report: &Value) {
    check_modes(report, &["pool off", "pool on", "pre-warmed", "HTTP/2"]);
    assert_eq!(report["http2"], true);
    let h2 = mode(report, "HTTP/2");
    assert_eq!(h2["connections"], 1, "{h2}");
    assert_eq!(h2["streams"], N, "every request was an h2 stream: {h2}");
    assert_eq!(h2["reuseCount"], N - 1, "{h2}");
    assert_eq!(h2["prewarmed"], 0, "{h2}");
    assert_eq!(h2["firstOnNewConnection"], true, "{h2}");
    for name in ["pool off", "pool on", "pre-warmed"] {
        let m = mode(report, name);
        assert_eq!(m["streams"], Value::Null, "HTTP/1.1 mock: {m}");
    }
}

fn check_modes(report: &Value, expected: &[&str]) {
    assert_eq!(report["requests"], N);
    assert_eq!(report["rttMs"], 4);
    let names: Vec<&str> = report["modes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, expected);
    for m in report["modes"].as_array().unwrap() {
        assert_eq!(m["totalRequests"], N, "{m}");
        assert_eq!(
            m["tlsFull"].as_u64().unwrap() + m["tlsResumed"].as_u64().unwrap(),
            m["connections"].as_u64().unwrap(),
            "one TLS handshake per connection the server accepted: {m}"
        );
        assert!(m["tlsFull"].as_u64().unwrap() >= 1, "{m}");
        for key in [
            "firstMs",
            "subsequentAvgMs",
            "p50Ms",
            "p99Ms",
            "avgFirst10Ms",
            "avgAllMs",
            "cpuMs",
        ] {
            assert!(m[key].is_number(), "{key} in {m}");
        }
    }

    check_pool_modes(report);
}

/// The three HTTP/1.1 pool modes.
fn check_pool_modes(report: &Value) {
    let off = mode(report, "pool off");
    assert_eq!(off["connections"], N, "{off}");
    assert_eq!(off["reuseRate"], 0.0, "{off}");
    assert_eq!(off["reuseCount"], 0, "{off}");
    assert_eq!(off["firstOnNewConnection"], true, "{off}");

    let on = mode(report, "pool on");
    assert_eq!(on["connections"], 1, "{on}");
    assert_eq!(on["reuseCount"], N - 1, "{on}");
    assert_eq!(on["reuseRate"], 91.7, "{on}");
    assert_eq!(on["prewarmed"], 0, "{on}");
    assert_eq!(on["firstOnNewConnection"], true, "{on}");

    // minFreeSockets: 1 keeps one connection free: the pre-warmed one
    // carries the first request, and the pool opens a spare in the
    // background to stay at one free. No request opens a connection.
    let warm = mode(report, "pre-warmed");
    assert_eq!(warm["firstOnNewConnection"], false, "{warm}");
    assert_eq!(
        warm["connections"], warm["prewarmed"],
        "every connection was opened ahead of demand: {warm}"
    );
    let c = warm["connections"].as_u64().unwrap();
    assert!((1..=2).contains(&c), "{warm}");
    // Usually the spare stays idle (the connection just released is the
    // newest idle one, reused first): 11/12 reused. If the spare's
    // handshake ends between two requests, the next request takes it and
    // its first request there is not a reuse.
    let first_uses = N - count(warm, "reuseCount");
    assert!((1..=c).contains(&first_uses), "{warm}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_counts_match_the_server_and_the_pool() {
    let args = args();
    let modes = demo::measure(&args, &ProgressBar::hidden())
        .await
        .unwrap_or_else(|e| panic!("demo failed: {e}"));
    let report = demo::to_json(&args, &modes);
    check(&report);
    let table = keepwarm_gateway::cli::report::table(&modes, 0, 1, false);
    for row in [
        "First request",
        "TLS handshakes",
        "Connections opened",
        "Reuse rate",
    ] {
        assert!(table.contains(row), "{table}");
    }
    assert!(table.contains("91.7% (11/12)"), "{table}");
}

#[test]
fn the_binary_prints_the_same_numbers_as_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_keepwarm"))
        .args(["demo", "--requests", "12", "--rtt-ms", "4", "--json"])
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stderr}");
    let report: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    check(&report);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_http2_adds_a_column_counted_by_the_h2_server() {
    let args = DemoArgs {
        http2: true,
        ..args()
    };
    let modes = demo::measure(&args, &ProgressBar::hidden())
        .await
        .unwrap_or_else(|e| panic!("demo failed: {e}"));
    check_http2(&demo::to_json(&args, &modes));
    let table = keepwarm_gateway::cli::report::table(&modes, 0, 1, false);
    assert!(table.contains("HTTP/2 streams"), "{table}");
    assert!(table.contains("HTTP/2"), "{table}");
}

#[test]
fn the_binary_takes_http2() {
    let out = Command::new(env!("CARGO_BIN_EXE_keepwarm"))
        .args([
            "demo",
            "--requests",
            "12",
            "--rtt-ms",
            "4",
            "--json",
            "--http2",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"));
    check_http2(&report);
}
