//! `UpstreamBuilder::handler`: computed, streamed replies.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{read_more, read_resp, send_get, send_req};
use keepwarm_testkit::{KnobSettings, Reply, Upstream};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const MAX: Duration = Duration::from_secs(2);

fn reply_for(path: &str) -> Reply {
    let ms = Duration::from_millis;
    match path {
        "/json" => Reply::json(201, &json!({"a": 1})),
        "/empty" => Reply::default(),
        "/nocontent" => Reply {
            status: 204,
            ..Default::default()
        },
        "/one-delayed" => Reply {
            chunks: vec![(ms(1), Bytes::from_static(b"late"))],
            ..Default::default()
        },
        "/pieces" => Reply {
            status: 503,
            headers: vec![("X-Custom".into(), "yes".into())],
            chunks: vec![
                (ms(0), Bytes::from_static(b"ab")),
                (ms(1), Bytes::new()),
                (ms(1), Bytes::from_static(b"cde")),
            ],
            ..Default::default()
        },
        "/close" => Reply {
            headers: vec![("Connection".into(), "close".into())],
            chunks: vec![(Duration::ZERO, Bytes::from_static(b"bye"))],
            ..Default::default()
        },
        "/forever" => Reply::sse(vec![
            (Duration::ZERO, "data: first\n\n".into()),
            (Duration::from_secs(3600), "data: never\n\n".into()),
        ]),
        _ => Reply {
            status: 404,
            ..Default::default()
        },
    }
}

#[tokio::test]
async fn handler_sets_status_headers_and_framing() {
    let up = Upstream::builder()
        .handler(|r| reply_for(&r.path))
        .start()
        .await;
    let mut s = TcpStream::connect(up.addr()).await.unwrap();
    let mut buf = Vec::new();

    send_req(&mut s, "POST", "/json", &[], "x").await;
    let r = read_resp(&mut s, &mut buf).await.unwrap();
    assert_eq!((r.status, &r.body[..]), (201, &br#"{"a":1}"#[..]));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("content-length"), Some("7"));
    assert_eq!(r.header("x-upstream-seq"), Some("1"));

    send_get(&mut s, "/empty").await;
    let r = read_resp(&mut s, &mut buf).await.unwrap();
    assert_eq!((r.status, r.header("content-length")), (200, Some("0")));
    assert_eq!(r.header("content-type"), Some("text/plain"));

    send_get(&mut s, "/one-delayed").await;
    let r = read_resp(&mut s, &mut buf).await.unwrap();
    assert_eq!(r.header("transfer-encoding"), Some("chunked"));
    assert_eq!(r.chunks, [b"late".to_vec()]);

    send_get(&mut s, "/pieces").await;
    let r = read_resp(&mut s, &mut buf).await.unwrap();
    assert_eq!((r.status, r.header("x-custom")), (503, Some("yes")));
    assert_eq!(r.chunks, [b"ab".to_vec(), b"cde".to_vec()]);

    // HEAD and 204: head only.
    s.write_all(b"HEAD /json HTTP/1.1\r\n\r\nGET /nocontent HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    while buf.windows(4).filter(|w| *w == b"\r\n\r\n").count() < 2 {
        assert!(read_more(&mut s, &mut buf).await > 0);
    }
    let text = String::from_utf8(std::mem::take(&mut buf)).unwrap();
    let (head1, head2) = text.split_once("\r\n\r\n").unwrap();
    assert!(head1.contains("Content-Length: 7"), "{head1}");
    assert!(head2.starts_with("HTTP/1.1 204 No Content\r\n"), "{head2}");
    assert!(!head2.contains("Content-Length") && head2.ends_with("\r\n\r\n"));

    send_get(&mut s, "/close").await;
    let r = read_resp(&mut s, &mut buf).await.unwrap();
    assert_eq!(
        (r.header("connection"), &r.body[..]),
        (Some("close"), &b"bye"[..])
    );
    assert_eq!(read_more(&mut s, &mut buf).await, 0);
    assert!(up.wait_until(|s| s.open == 0, MAX).await);
    let st = up.stats();
    assert_eq!((st.requests, st.responses, st.client_closes), (7, 7, 0));
}

#[tokio::test]
async fn streams_each_piece_and_notices_client_gone() {
    let up = Upstream::builder()
        .handler(|r| reply_for(&r.path))
        .start()
        .await;
    let mut s = TcpStream::connect(up.addr()).await.unwrap();
    send_get(&mut s, "/forever").await;
    // The first event arrives although the body never completes.
    let mut buf = Vec::new();
    let got = tokio::time::timeout(MAX, async {
        while !String::from_utf8_lossy(&buf).contains("data: first\n\n\r\n") {
            assert!(read_more(&mut s, &mut buf).await > 0);
        }
    })
    .await;
    assert!(got.is_ok());
    let text = String::from_utf8_lossy(&buf);
    assert!(
        text.contains("Content-Type: text/event-stream\r\n"),
        "{text}"
    );
    assert!(text.contains("Cache-Control: no-cache\r\n"), "{text}");
    drop(s);
    assert!(
        up.wait_until(|s| s.client_closes == 1 && s.open == 0, MAX)
            .await
    );
    assert_eq!(up.stats().responses, 0);
}

#[tokio::test(start_paused = true)]
async fn knobs_still_apply_with_a_handler() {
    let k = KnobSettings {
        header_delay: Some(Duration::from_secs(7)),
        keep_alive_header: Some((5, None)),
        close_after_requests: Some(1),
        ..Default::default()
    };
    let up = Upstream::builder()
        .knobs(k)
        .handler(|_| Reply {
            header_delay: Duration::from_secs(3),
            chunks: vec![(Duration::ZERO, Bytes::from_static(b"x"))],
            ..Default::default()
        })
        .start()
        .await;
    let t0 = tokio::time::Instant::now();
    let mut s = TcpStream::connect(up.addr()).await.unwrap();
    let mut buf = Vec::new();
    send_get(&mut s, "/").await;
    let r = read_resp(&mut s, &mut buf).await.unwrap();
    let virtual_wait = t0.elapsed(); // paused clock: advanced only by the delays
    assert!(virtual_wait >= Duration::from_secs(10), "{virtual_wait:?}");
    assert_eq!(r.header("keep-alive"), Some("timeout=5"));
    assert_eq!(read_more(&mut s, &mut buf).await, 0);
    assert!(up.wait_until(|s| s.closed_after_requests == 1, MAX).await);

    up.knobs().set(KnobSettings {
        drop_next_request_after: Some(0),
        ..Default::default()
    });
    let mut s = TcpStream::connect(up.addr()).await.unwrap();
    send_get(&mut s, "/").await;
    assert!(read_resp(&mut s, &mut buf).await.is_none());
    assert!(up.wait_until(|s| s.dropped_requests == 1, MAX).await);
}
