//! Plain-HTTP behaviour and fault knobs of `Upstream`.

mod common;

use std::time::Duration;

use common::{read_more, read_resp, send_get};
use keepwarm_testkit::{KnobSettings, Upstream};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

const MAX: Duration = Duration::from_secs(2);

#[tokio::test]
async fn keep_alive_two_requests_one_connection() {
    let up = Upstream::plain().await;
    assert!(up.url("/x").starts_with("http://127.0.0.1:"));
    let mut s = TcpStream::connect(up.addr()).await.unwrap();
    let mut buf = Vec::new();
    send_get(&mut s, "/a").await;
    let r1 = read_resp(&mut s, &mut buf).await.unwrap();
    send_get(&mut s, "/b").await;
    let r2 = read_resp(&mut s, &mut buf).await.unwrap();
    assert_eq!((r1.status, &r1.body[..]), (200, &b"ok"[..]));
    assert_eq!(r1.header("x-upstream-conn"), Some("1"));
    assert_eq!(r2.header("x-upstream-seq"), Some("2"));
    drop(s);
    assert!(
        up.wait_until(|s| s.requests_per_connection == [2], MAX)
            .await
    );
    let st = up.stats();
    assert_eq!((st.accepted, st.open, st.max_open), (1, 0, 1));
    assert_eq!((st.requests, st.responses, st.client_closes), (2, 2, 1));
    let paths: Vec<_> = st
        .request_log
        .iter()
        .map(|r| (r.conn, r.seq_on_conn, r.path.as_str()))
        .collect();
    assert_eq!(paths, [(1, 1, "/a"), (1, 2, "/b")]);
    assert!(st.request_log[0]
        .headers
        .contains(&("host".into(), "test".into())));
}

#[tokio::test]
async fn pipelined_and_chunked_request_bodies() {
    let up = Upstream::builder().body("hello").start().await;
    let mut s = TcpStream::connect(up.addr()).await.unwrap();
    s.write_all(
        b"POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n\
          POST /l HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyzHEAD /h HTTP/1.1\r\n\r\n",
    )
    .await
    .unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_resp(&mut s, &mut buf).await.unwrap().body, b"hello");
    assert_eq!(read_resp(&mut s, &mut buf).await.unwrap().body, b"hello");
    // HEAD: Content-Length but no body.
    let mut head = read_resp_head_only(&mut s, &mut buf).await;
    head.retain(|c| *c != b'\r');
    assert!(String::from_utf8(head)
        .unwrap()
        .contains("Content-Length: 5"));
    let st = up.stats();
    assert_eq!(&st.request_log[0].body[..], b"abc");
    assert_eq!(&st.request_log[1].body[..], b"xyz");
    assert_eq!(st.request_log[2].method, "HEAD");
}

async fn read_resp_head_only(s: &mut TcpStream, buf: &mut Vec<u8>) -> Vec<u8> {
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        assert!(read_more(s, buf).await > 0);
    }
    std::mem::take(buf)
}

#[tokio::test]
async fn connection_close_knob_closes_after_response() {
    let k = KnobSettings {
        connection_close: true,
        ..Default::default()
    };
    let up = Upstream::builder().knobs(k).start().await;
    let mut s = TcpStream::connect(up.addr()).await.unwrap();
    let mut buf = Vec::new();
    send_get(&mut s, "/").await;
    let r = read_resp(&mut s, &mut buf).await.unwrap();
    assert_eq!(r.header("connection"), Some("close"));
    assert_eq!(read_more(&mut s, &mut buf).await, 0);
    assert!(up.wait_until(|s| s.open == 0, MAX).await);
    let st = up.stats();
    assert_eq!((st.responses, st.client_closes, st.idle_closes), (1, 0, 0));
    assert_eq!(st.requests_per_connection, [1]);
}

#[tokio::test(start_paused = true)]
async fn idle_close_after_paused_time() {
    let up = Upstream::plain().await;
    up.knobs().update(|k| {
        k.close_idle_after = Some(Duration::from_secs(30));
        k.keep_alive_header = Some((30, Some(100)));
    });
    let mut s = TcpStream::connect(up.addr()).await.unwrap();
    let mut buf = Vec::new();
    send_get(&mut s, "/").await;
    let r = read_resp(&mut s, &mut buf).await.unwrap();
    assert_eq!(r.header("keep-alive"), Some("timeout=30, max=100"));
    let t0 = tokio::time::Instant::now();
    assert_eq!(read_more(&mut s, &mut buf).await, 0);
    let virtual_wait = t0.elapsed(); // paused clock: advanced only by the server's timer
    assert!(virtual_wait >= Duration::from_secs(30), "{virtual_wait:?}");
    assert!(
        up.wait_until(|s| s.idle_closes == 1 && s.open == 0, MAX)
            .await
    );
    assert_eq!(up.stats().client_closes, 0);
}

#[tokio::test]
async fn truncate_body_sends_half_then_closes() {
    let k = KnobSettings {
        truncate_body: true,
        ..Default::default()
    };
    let up = Upstream::builder()
        .body("0123456789ab")
        .knobs(k)
        .start()
        .await;
    let mut s = TcpStream::connect(up.addr()).await.unwrap();
    send_get(&mut s, "/").await;
    let mut buf = Vec::new();
    while read_more(&mut s, &mut buf).await > 0 {}
    let text = String::from_utf8(buf).unwrap();
    assert!(text.contains("Content-Length: 12\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n012345"), "{text}");
    assert!(up.wait_until(|s| s.open == 0, MAX).await);
    assert_eq!((up.stats().requests, up.stats().responses), (1, 0));
}

#[tokio::test]
async fn drop_next_request_after_one() {
    let k = KnobSettings {
        drop_next_request_after: Some(1),
        ..Default::default()
    };
    let up = Upstream::builder().knobs(k).start().await;
    let mut s = TcpStream::connect(up.addr()).await.unwrap();
    let mut buf = Vec::new();
    send_get(&mut s, "/1").await;
    assert_eq!(read_resp(&mut s, &mut buf).await.unwrap().status, 200);
    send_get(&mut s, "/2").await;
    assert!(read_resp(&mut s, &mut buf).await.is_none());
    assert!(up.wait_until(|s| s.dropped_requests == 1, MAX).await);
    let st = up.stats();
    assert_eq!((st.requests, st.responses), (2, 1));
    assert_eq!(st.requests_per_connection, [2]);
}

#[tokio::test]
async fn close_after_requests_reset_http10_chunked() {
    let up = Upstream::builder().body("abcdefgh").start().await;
    let mut buf = Vec::new();

    up.knobs().update(|k| k.close_after_requests = Some(1));
    let mut s = TcpStream::connect(up.addr()).await.unwrap();
    send_get(&mut s, "/").await;
    let r = read_resp(&mut s, &mut buf).await.unwrap();
    assert_eq!(r.header("connection"), None);
    assert_eq!(read_more(&mut s, &mut buf).await, 0);
    assert!(up.wait_until(|s| s.closed_after_requests == 1, MAX).await);

    up.knobs().set(KnobSettings {
        http10: true,
        ..Default::default()
    });
    let mut s = TcpStream::connect(up.addr()).await.unwrap();
    send_get(&mut s, "/").await;
    let r = read_resp(&mut s, &mut buf).await.unwrap();
    assert_eq!((r.version, &r.body[..]), (0, &b"abcdefgh"[..]));
    assert_eq!(read_more(&mut s, &mut buf).await, 0);

    let delay = Duration::from_millis(5);
    up.knobs().set(KnobSettings {
        chunk_delay: Some(delay),
        ..Default::default()
    });
    let mut s = TcpStream::connect(up.addr()).await.unwrap();
    send_get(&mut s, "/").await;
    let r = read_resp(&mut s, &mut buf).await.unwrap();
    assert_eq!(
        (r.header("transfer-encoding"), &r.body[..]),
        (Some("chunked"), &b"abcdefgh"[..])
    );

    up.knobs().set(KnobSettings {
        reset: true,
        ..Default::default()
    });
    send_get(&mut s, "/").await;
    assert!(read_resp(&mut s, &mut buf).await.is_none());
    assert!(up.wait_until(|s| s.resets == 1 && s.open == 0, MAX).await);

    up.knobs().set(KnobSettings::default());
    let mut s = TcpStream::connect(up.addr()).await.unwrap();
    s.write_all(b"\x01\x02 garbage\r\n\r\n").await.unwrap();
    let r = read_resp(&mut s, &mut buf).await.unwrap();
    assert_eq!(r.status, 400);
    assert!(up.wait_until(|s| s.open == 0, MAX).await);
    let st = up.stats();
    assert_eq!(
        (st.accepted, st.max_open, st.requests, st.responses),
        (4, 1, 4, 3)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_upstream_closes_connections() {
    let up = Upstream::plain().await;
    let addr = up.addr();
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = Vec::new();
    send_get(&mut s, "/").await;
    assert_eq!(read_resp(&mut s, &mut buf).await.unwrap().status, 200);
    drop(up);
    let eof = tokio::time::timeout(MAX, read_more(&mut s, &mut buf)).await;
    assert_eq!(eof.unwrap(), 0);
    // The listener is gone too (give the aborted task a moment to drop).
    let mut refused = false;
    for _ in 0..100 {
        if TcpStream::connect(addr).await.is_err() {
            refused = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(refused);
}

#[tokio::test(start_paused = true)]
async fn idle_close_random_within_bounds() {
    let (lo, hi) = (Duration::from_secs(10), Duration::from_secs(20));
    let k = KnobSettings {
        close_idle_random: Some((lo, hi)),
        ..Default::default()
    };
    let up = Upstream::builder().knobs(k).start().await;
    let mut s = TcpStream::connect(up.addr()).await.unwrap();
    let t0 = tokio::time::Instant::now();
    let mut buf = Vec::new();
    assert_eq!(read_more(&mut s, &mut buf).await, 0);
    let idle = t0.elapsed();
    assert!(
        idle >= lo && idle <= hi + Duration::from_millis(5),
        "{idle:?}"
    );
    assert!(up.wait_until(|s| s.idle_closes == 1, MAX).await);
    assert_eq!(up.stats().requests_per_connection, [0]);
}
