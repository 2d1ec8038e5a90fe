//! `keepwarm stats` against a live gateway.

use keepwarm_gateway::cli::stats::StatsClient;
use keepwarm_testkit::MockProvider;

use crate::support::*;

// Multi-threaded: the test blocks on the `keepwarm stats` subprocess while
// the gateway it queries runs on this runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_table_shows_each_providers_numbers() {
    let mock = MockProvider::anthropic().await;
    let gw = Gateway::start(
        &anthropic_config(r#", "APIKEY": "k1""#),
        &vars(&mock),
        &[&mock],
    )
    .await;
    let c = client();
    for _ in 0..30 {
        let req = http::Request::post(format!("{}/v1/messages", gw.url))
            .header("x-api-key", "k1")
            .body(bytes::Bytes::from_static(
                br#"{"model":"mock,claude-test"}"#,
            ))
            .unwrap();
        assert_eq!(read(c.request(req).await.unwrap()).await.0, 200);
    }
    let screen = StatsClient::new(&gw.url, Some("k1"))
        .unwrap()
        .screen()
        .await
        .unwrap();
    assert!(
        screen.contains("1 providers · 30 requests · 96.7% reused overall"),
        "{screen}"
    );
    let row = screen
        .lines()
        .find(|l| l.contains("mock"))
        .expect("a row for the provider");
    for cell in ["http", "30", "29", "96.7%", "idle"] {
        assert!(row.contains(cell), "{cell} missing from {row}");
    }
    assert!(screen.contains("health: ok"), "{screen}");
    let err = StatsClient::new(&gw.url, None)
        .unwrap()
        .screen()
        .await
        .unwrap_err();
    assert!(err.contains("401") && err.contains("--api-key"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_keepwarm"))
        .args(["stats", "--url", &gw.url, "--api-key", "k1"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("96.7%"), "{stdout}");
}

#[tokio::test]
async fn an_unreachable_gateway_is_a_clear_error() {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let err = StatsClient::new(&url, None)
        .unwrap()
        .screen()
        .await
        .unwrap_err();
    assert!(
        err.starts_with(&format!("cannot reach the gateway at {url}")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_redraws_on_each_stream_event() {
    use std::io::{BufRead, BufReader};
    let mock = MockProvider::anthropic().await;
    let gw = Gateway::start(
        &anthropic_config(r#", "STATS_INTERVAL_MS": 50"#),
        &vars(&mock),
        &[&mock],
    )
    .await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_keepwarm"))
        .args(["stats", "--watch", "--url", &gw.url])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let screens = tokio::task::spawn_blocking(move || {
        let mut n = 0;
        for line in BufReader::new(stdout).lines() {
            if line.unwrap().starts_with("health: ") {
                n += 1;
                if n == 3 {
                    break;
                }
            }
        }
        n
    });
    let n = tokio::time::timeout(std::time::Duration::from_secs(10), screens).await;
    child.kill().unwrap();
    let _ = child.wait();
    assert_eq!(n.expect("three screens arrive").unwrap(), 3);
}
