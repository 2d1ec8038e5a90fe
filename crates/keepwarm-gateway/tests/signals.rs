//! The real binary and its signals. SIGTERM: `keepwarm serve` with 100
//! streams in flight stops accepting, every stream finishes whole, the idle
//! upstream connections close, and the exit code is 0; a stream still
//! running at `SHUTDOWN_TIMEOUT_MS` is cut with an error event and counted
//! in the log. SIGHUP: the config file is read again; a new provider serves,
//! the unchanged one keeps its connection.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use keepwarm_testkit::{anthropic_sse_body, MockApi, MockProvider};

/// A `keepwarm serve` process and its log lines so far.
struct Served {
    child: Child,
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
}

fn config_path(mock: &MockProvider) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("keepwarm-signals-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("config-{}.json", mock.upstream().addr().port()))
}

fn provider(name: &str, mock: &MockProvider) -> String {
    format!(
        r#"{{ "name": "{name}", "api_base_url": "{}", "api_key": "{}", "models": ["m"] }}"#,
        mock.endpoint(),
        mock.key()
    )
}

fn serve(mock: &MockProvider, extra: &str) -> Served {
    let path = config_path(mock);
    std::fs::write(
        &path,
        format!(
            r#"{{ "Providers": [{}],
                 "HttpConnectionPool": {{ "global": {{ "maxSockets": 200, "maxFreeSockets": 200 }} }} {extra} }}"#,
            provider("mock", mock)
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_keepwarm"))
        .args(["serve", "--port", "0", "--config"])
        .arg(&path)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
            }
            sink.lock().unwrap().push(line);
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("keepwarm serve starts and prints its address");
    Served { child, addr, log }
}

fn sigterm(child: &Child) {
    signal(child, "-TERM");
}

fn signal(child: &Child, which: &str) {
    let ok = Command::new("kill")
        .args([which, &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {which}");
}

/// Waits (bounded) for the process to exit; its exit code.
async fn exit_code(child: &mut Child) -> Option<i32> {
    for _ in 0..600 {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    panic!("keepwarm serve did not exit within 30 s of SIGTERM");
}

async fn eventually(f: impl Fn() -> bool) -> bool {
    for _ in 0..600 {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

async fn call(client: &keepwarm::Client, addr: &str, provider: &str) -> u16 {
    let req = http::Request::post(format!("http://{addr}/v1/messages"))
        .header("content-type", "application/json")
        .body(Bytes::from(format!(
            r#"{{"model":"{provider},m","messages":[]}}"#
        )))
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let status = resp.status().as_u16();
    resp.into_body().collect().await.unwrap();
    status
}

async fn stream(client: &keepwarm::Client, addr: &str) -> Result<String, String> {
    let req = http::Request::post(format!("http://{addr}/v1/messages"))
        .header("content-type", "application/json")
        .body(Bytes::from_static(
            br#"{"model":"mock,m","stream":true,"max_tokens":10,"messages":[]}"#,
        ))
        .unwrap();
    let resp = client.request(req).await.map_err(|e| e.to_string())?;
    let bytes = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_100_streams_in_flight_drains_them_all_and_exits_0() {
    // 20 words, 100 ms apart: each stream runs for over 2 s.
    let words = (1..=20)
        .map(|i| format!("w{i}"))
        .collect::<Vec<_>>()
        .join(" ");
    let mock = MockProvider::builder(MockApi::Anthropic)
        .text(words)
        .event_delay(Duration::from_millis(100))
        .start()
        .await;
    let mut gw = serve(&mock, r#", "SHUTDOWN_TIMEOUT_MS": 20000"#);
    let client = keepwarm::Client::builder()
        .max_sockets(200)
        .build()
        .unwrap();
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (client, addr, done) = (client.clone(), gw.addr.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let r = stream(&client, &addr).await;
            done.fetch_add(1, Ordering::SeqCst);
            r
        }));
    }
    assert!(
        eventually(|| mock.upstream().stats().requests == 100).await,
        "all 100 streams reached the upstream"
    );
    assert_eq!(
        done.load(Ordering::SeqCst),
        0,
        "none finished before SIGTERM"
    );
    sigterm(&gw.child);

    // The listener closes while the streams still run.
    let mut refused = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(&gw.addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(refused, "the listener stopped accepting");
    assert!(
        done.load(Ordering::SeqCst) < 100,
        "streams were still running when the listener closed"
    );

    let want = anthropic_sse_body("m", mock.text());
    for t in tasks {
        let body = t.await.unwrap().expect("every stream finishes");
        assert_eq!(body, want, "every stream arrives whole");
    }
    assert_eq!(exit_code(&mut gw.child).await, Some(0));
    let server = mock.upstream().stats();
    assert_eq!(server.responses, 100);
    assert!(eventually(|| mock.upstream().stats().open == 0).await);
    let log = gw.log.lock().unwrap().join("\n");
    assert!(log.contains("all requests finished"), "{log}");
    // The gateway itself closed the 100 upstream connections, idle after
    // their streams (maxFreeSockets 200 kept them all).
    assert!(
        log.contains("closed 100 idle upstream connection(s)"),
        "{log}"
    );
    assert!(!log.contains("cut"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_running_at_the_deadline_is_cut_with_an_error_event_and_counted() {
    let mock = MockProvider::builder(MockApi::Anthropic)
        .text("one two three four five six seven eight nine ten")
        .event_delay(Duration::from_secs(3))
        .start()
        .await;
    let mut gw = serve(&mock, r#", "SHUTDOWN_TIMEOUT_MS": 300"#);
    let client = keepwarm::Client::new().unwrap();
    let addr = gw.addr.clone();
    let task = tokio::spawn(async move { stream(&client, &addr).await });
    assert!(eventually(|| mock.upstream().stats().requests == 1).await);
    sigterm(&gw.child);
    let body = task
        .await
        .unwrap()
        .expect("the stream ends cleanly, with an event");
    assert!(body.contains("event: message_start"), "{body}");
    assert!(!body.contains("message_stop"), "{body}");
    assert!(
        body.ends_with("\n\n") && body.contains("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"the gateway is shutting down"),
        "{body}"
    );
    assert_eq!(exit_code(&mut gw.child).await, Some(0));
    let log = gw.log.lock().unwrap().join("\n");
    assert!(log.contains("cut 1 response(s) still running"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_file_new_providers_serve_unchanged_ones_keep_their_connection() {
    let mock = MockProvider::anthropic().await;
    let other = MockProvider::anthropic().await;
    let mut gw = serve(&mock, "");
    let client = keepwarm::Client::new().unwrap();
    assert_eq!(call(&client, &gw.addr, "mock").await, 200);
    assert_eq!(call(&client, &gw.addr, "other").await, 400);
    std::fs::write(
        config_path(&mock),
        format!(
            r#"{{ "Providers": [{}, {}],
                 "HttpConnectionPool": {{ "global": {{ "maxSockets": 200, "maxFreeSockets": 200 }} }} }}"#,
            provider("mock", &mock),
            provider("other", &other)
        ),
    )
    .unwrap();
    signal(&gw.child, "-HUP");
    let log = gw.log.clone();
    assert!(
        eventually(|| log
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("config reloaded")))
        .await,
        "{:?}",
        log.lock().unwrap()
    );
    assert_eq!(call(&client, &gw.addr, "other").await, 200);
    assert_eq!(call(&client, &gw.addr, "mock").await, 200);
    assert_eq!(
        mock.upstream().stats().accepted,
        1,
        "mock kept its connection"
    );
    assert_eq!(other.upstream().stats().requests, 1);
    let line = log
        .lock()
        .unwrap()
        .iter()
        .find(|l| l.contains("config reloaded"))
        .cloned()
        .unwrap();
    assert!(
        line.contains("added [other]") && line.contains("unchanged [mock]"),
        "{line}"
    );
    sigterm(&gw.child);
    assert_eq!(exit_code(&mut gw.child).await, Some(0));
}
