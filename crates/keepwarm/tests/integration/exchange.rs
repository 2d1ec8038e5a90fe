//! The HTTP/1.1 exchange runs in the caller's task: no task per connection,
//! and a body read from another task still reads its connection. The
//! framing corners (1xx, trailers, `HEAD`, bytes after the response) against
//! a scripted loopback server that counts its connections.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use keepwarm::{Client, CloseReason, ConnectionInfo};
use keepwarm_testkit::{KnobSettings, Upstream};

use crate::scripted::{serve, Reply, Scripted};
use crate::support::{builder_for, get, only};

#[test]
fn idle_http1_connections_hold_no_task() {
    // The server runs on a runtime of its own, so the client's runtime
    // counts only the client's tasks.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let up = server_rt.block_on(Upstream::plain());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = builder_for(&up).build().unwrap();
        let url = up.url("/idle");
        let gets = (0..4).map(|_| get(&client, &url));
        for r in futures_util::future::join_all(gets).await {
            r.unwrap();
        }
        assert_eq!(up.stats().accepted, 4);
        assert_eq!(only(&client).pool.idle, 4);
        let tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        // At most the pool's expiry timer; a task per connection would be 4 more.
        assert!(tasks <= 1, "{tasks} tasks alive with 4 idle connections");
        let (_, info) = get(&client, &url).await.unwrap();
        assert!(info.reused);
    });
    drop(up);
}

#[tokio::test]
async fn a_body_read_in_another_task_drives_its_connection() {
    let up = Upstream::builder()
        .body(vec![b'z'; 4000])
        .knobs(KnobSettings {
            chunk_delay: Some(Duration::from_millis(5)),
            ..Default::default()
        })
        .start()
        .await;
    let client = builder_for(&up).build().unwrap();
    for _ in 0..3 {
        let resp = client.get(&up.url("/c")).await.unwrap();
        let body = tokio::spawn(resp.into_body().bytes()).await.unwrap();
        assert_eq!(body.unwrap().len(), 4000);
    }
    let s = only(&client);
    assert_eq!((up.stats().accepted, s.pool.counters.reused), (1, 2));
    assert_eq!(s.pool.idle, 1);
}

/// A scripted server answering every request with one of `replies`, whole.
async fn scripted(replies: Vec<&'static [u8]>) -> Scripted {
    serve(replies.into_iter().map(Reply::whole).collect()).await
}

async fn send(
    client: &Client,
    method: http::Method,
    url: &str,
) -> (
    http::Response<()>,
    ConnectionInfo,
    Vec<u8>,
    Option<http::HeaderMap>,
) {
    let req = http::Request::builder()
        .method(method)
        .uri(url)
        .body(bytes::Bytes::new())
        .unwrap();
    let resp = client.request(req).await.unwrap();
    let info = *resp.extensions().get::<ConnectionInfo>().unwrap();
    let (parts, body) = resp.into_parts();
    let collected = body.collect().await.unwrap();
    let trailers = collected.trailers().cloned();
    (
        http::Response::from_parts(parts, ()),
        info,
        collected.to_bytes().to_vec(),
        trailers,
    )
}

#[tokio::test]
async fn informational_heads_are_skipped_and_the_connection_reused() {
    let s = scripted(vec![
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok",
    ])
    .await;
    let client = Client::new().unwrap();
    for i in 0..3 {
        let (resp, info, body, _) = send(&client, http::Method::GET, &s.url).await;
        assert_eq!(
            (resp.status(), body.as_slice()),
            (http::StatusCode::OK, &b"ok"[..])
        );
        assert_eq!(info.reused, i > 0);
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn chunked_trailers_reach_the_caller_and_the_connection_is_reused() {
    let s = scripted(vec![
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\nx-checksum: 42\r\n\r\n",
    ])
    .await;
    let client = Client::new().unwrap();
    for _ in 0..2 {
        let (_, _, body, trailers) = send(&client, http::Method::GET, &s.url).await;
        assert_eq!(body, b"abcde");
        assert_eq!(trailers.unwrap()["x-checksum"], "42");
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
    let st = client.stats().pop().unwrap();
    assert_eq!((st.pool.counters.reused, st.pool.idle), (1, 1));
}

#[tokio::test]
async fn a_head_response_has_no_body_whatever_its_length_says() {
    let s = scripted(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n"]).await;
    let client = Client::new().unwrap();
    for _ in 0..3 {
        let (resp, _, body, _) = send(&client, http::Method::HEAD, &s.url).await;
        assert_eq!(resp.headers()["content-length"], "1000");
        assert!(body.is_empty());
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn bytes_after_the_response_retire_the_connection() {
    let s = scripted(vec![b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokJUNK"]).await;
    let client = Client::new().unwrap();
    for _ in 0..2 {
        let (_, info, body, _) = send(&client, http::Method::GET, &s.url).await;
        assert_eq!(body, b"ok");
        assert!(!info.reused);
    }
    assert_eq!(s.accepted.load(Ordering::SeqCst), 2);
    let c = client.stats().pop().unwrap().pool.counters;
    assert_eq!(c.closed.get(CloseReason::Error), 2);
}

#[tokio::test]
async fn a_malformed_head_is_a_request_error_naming_the_host() {
    let s = scripted(vec![b"SSH-2.0-OpenSSH_9.6\r\n\r\n"]).await;
    let client = Client::new().unwrap();
    let err = client.get(&s.url).await.unwrap_err();
    assert!(err.is_request(), "{err}");
    let text = format!("{err:#}");
    assert!(
        text.contains("127.0.0.1") && text.contains("malformed response head"),
        "{text}"
    );
    assert_eq!(client.stats().pop().unwrap().pool.counters.retries, 0);
}

#[tokio::test]
async fn large_request_and_response_bodies_cross_whole_on_one_connection() {
    // The server answers with the length and byte sum of what it decoded.
    let up = Upstream::builder()
        .handler(|r| {
            let sum: u64 = r.body.iter().map(|&b| b as u64).sum();
            keepwarm_testkit::Reply::json(
                200,
                &serde_json::json!({"len": r.body.len(), "sum": sum}),
            )
        })
        .start()
        .await;
    let client = builder_for(&up).build().unwrap();
    // Around the size sent in the head's own write (16 KiB) and well past it.
    for len in [0usize, 1, 16 * 1024, 16 * 1024 + 1, 300_000] {
        let body: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        let sum: u64 = body.iter().map(|&b| b as u64).sum();
        let req = http::Request::post(up.url("/big"))
            .body(bytes::Bytes::from(body))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        let got: serde_json::Value =
            serde_json::from_slice(&resp.into_body().bytes().await.unwrap()).unwrap();
        assert_eq!(
            got,
            serde_json::json!({"len": len, "sum": sum}),
            "len {len}"
        );
    }
    let big = Upstream::builder()
        .body(vec![b'q'; 3_000_000])
        .start()
        .await;
    let client2 = builder_for(&big).build().unwrap();
    for _ in 0..2 {
        let (body, _) = get(&client2, &big.url("/3mb")).await.unwrap();
        assert!(body.len() == 3_000_000 && body.iter().all(|&b| b == b'q'));
    }
    assert_eq!((up.stats().accepted, big.stats().accepted), (1, 1));
}

/// A waker that counts its clones (by `Arc` count) and forwards wakes to
/// the task's own waker.
struct Counted(std::sync::Mutex<Option<std::task::Waker>>);

impl std::task::Wake for Counted {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        if let Some(w) = self.0.lock().unwrap().as_ref() {
            w.wake_by_ref()
        }
    }
}

/// Polls a request future with a `Counted` waker.
async fn tracked<F: std::future::Future>(f: F, counted: Arc<Counted>) -> F::Output {
    let mut f = std::pin::pin!(f);
    std::future::poll_fn(|cx| {
        *counted.0.lock().unwrap() = Some(cx.waker().clone());
        let w = std::task::Waker::from(counted.clone());
        f.as_mut().poll(&mut std::task::Context::from_waker(&w))
    })
    .await
}

#[test]
fn a_finished_exchange_leaves_no_waker_of_its_task_behind() {
    // The server on a runtime of its own, as a remote server would be; each
    // request in its own task, bodies held, then read by another task. Once
    // idle, a connection's socket must hold the idle watch, not a waker of
    // the task that sent the request (that would keep the task alive).
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for tls in [false, true] {
        let up = server_rt.block_on(Upstream::builder().tls(tls).start());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let client = builder_for(&up)
                .max_sockets(50)
                .max_free_sockets(50)
                .build()
                .unwrap();
            let mut set = tokio::task::JoinSet::new();
            let mut wakers = Vec::new();
            for _ in 0..50 {
                let counted = Arc::new(Counted(Default::default()));
                wakers.push(counted.clone());
                let (c, url) = (client.clone(), up.url("/w"));
                set.spawn(
                    async move { tracked(c.get(&url), counted).await.map(|r| r.into_body()) },
                );
            }
            let mut bodies = Vec::new();
            while let Some(r) = set.join_next().await {
                bodies.push(r.unwrap().unwrap());
            }
            for b in bodies {
                b.bytes().await.unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let kept = wakers.iter().filter(|w| Arc::strong_count(w) > 1).count();
            assert_eq!(kept, 0, "tls={tls}: {kept} of 50 tasks' wakers still held");
            assert_eq!(only(&client).pool.idle, 50, "tls={tls}");
            assert_eq!(up.stats().accepted, 50, "tls={tls}");
        });
    }
}
