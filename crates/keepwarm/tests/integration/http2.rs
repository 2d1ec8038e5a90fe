//! HTTP/2 against the testkit's H2Server (h2c and TLS with ALPN): streams
//! overflow to new connections at the server's limit, GOAWAY and refused
//! streams lose no request, PING finds a dead idle connection, a cancelled
//! stream frees its slot. Every count is checked against the server's own.

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use http::{Request, Version};
use keepwarm::{Client, CloseReason, ConnProtocol, ConnectionInfo, Protocol};
use keepwarm_testkit::{H2Server, Upstream};

use crate::support::{builder_for, eventually, get, only};

fn h2_client(server: &H2Server, protocol: Protocol) -> keepwarm::ClientBuilder {
    Client::builder()
        .tls_built_in_roots(false)
        .add_root_certificate(server.ca_der())
        .protocol(protocol)
}

async fn post(client: &Client, url: &str) -> Result<(Bytes, ConnectionInfo), keepwarm::Error> {
    let req = Request::post(url).body(Bytes::from_static(b"{}")).unwrap();
    let resp = client.request(req).await?;
    assert_eq!(resp.version(), Version::HTTP_2);
    let info = *resp.extensions().get::<ConnectionInfo>().unwrap();
    Ok((resp.into_body().bytes().await?, info))
}

async fn overflow_at_the_servers_limit(tls: bool, protocol: Protocol) {
    let server = H2Server::builder()
        .tls(tls)
        .max_concurrent_streams(100)
        .delay(Duration::from_millis(300))
        .start()
        .await;
    let client = h2_client(&server, protocol)
        .max_sockets(10)
        .build()
        .unwrap();
    let url = server.url("/slow");
    let results = join_all((0..250).map(|_| post(&client, &url))).await;
    for r in &results {
        assert_eq!(&r.as_ref().expect("no request fails").0[..], b"ok");
    }
    let st = server.stats();
    assert_eq!(st.connections, 3, "250 streams at 100 a connection: {st:?}");
    assert_eq!(st.max_concurrent_streams, 100, "{st:?}");
    assert_eq!((st.streams, st.refused), (250, 0), "{st:?}");
    let s = only(&client);
    let c = s.pool.counters;
    assert_eq!(c.created, st.connections);
    assert_eq!(c.requests, 250);
    assert_eq!(
        c.reused,
        250 - st.connections,
        "every other stream rode an open connection"
    );
    assert_eq!(s.h2.streams, st.streams);
    assert_eq!(s.h2.refused, 0);
    assert_eq!(s.connections.len(), 3);
    for conn in &s.connections {
        assert_eq!(conn.protocol, ConnProtocol::H2);
        assert_eq!(conn.open_streams, Some(0));
    }
    if tls {
        assert_eq!(s.tls.full + s.tls.resumed, st.tls_handshakes);
    }
}

#[tokio::test]
async fn h2c_streams_overflow_to_a_new_connection_at_the_servers_limit() {
    overflow_at_the_servers_limit(false, Protocol::Http2).await;
}

#[tokio::test]
async fn tls_alpn_h2_streams_overflow_to_a_new_connection_at_the_servers_limit() {
    overflow_at_the_servers_limit(true, Protocol::Auto).await;
}

#[tokio::test]
async fn our_max_concurrent_streams_caps_the_servers() {
    let server = H2Server::builder()
        .delay(Duration::from_millis(200))
        .start()
        .await;
    let client = h2_client(&server, Protocol::Http2)
        .max_concurrent_streams(Some(10))
        .build()
        .unwrap();
    let url = server.url("/");
    let results = join_all((0..25).map(|_| post(&client, &url))).await;
    assert!(results.iter().all(Result::is_ok));
    let st = server.stats();
    assert_eq!(
        (st.connections, st.max_concurrent_streams),
        (3, 10),
        "{st:?}"
    );
}

#[tokio::test]
async fn goaway_mid_traffic_loses_no_request() {
    let server = H2Server::builder()
        .goaway_after(20)
        .delay(Duration::from_millis(20))
        .start()
        .await;
    let client = h2_client(&server, Protocol::Http2).build().unwrap();
    let url = server.url("/");
    for _ in 0..4 {
        let results = join_all((0..50).map(|_| post(&client, &url))).await;
        for r in results {
            r.expect("a GOAWAY loses no request");
        }
    }
    let st = server.stats();
    assert!(st.goaways_sent >= 4, "{st:?}");
    assert_eq!(st.streams, 200, "each POST processed exactly once: {st:?}");
    let s = eventually(&client, |s| {
        s.pool.counters.closed.get(CloseReason::GoAway) == st.goaways_sent
    })
    .await;
    let c = s.pool.counters;
    assert_eq!(s.h2.goaways, st.goaways_sent, "{s:?}");
    assert_eq!(c.closed.get(CloseReason::GoAway), st.goaways_sent);
    assert_eq!(c.created, st.connections);
    assert_eq!(
        c.requests,
        200 + c.retries,
        "each retry is one more dispatch"
    );
    assert_eq!(s.h2.refused, s.h2.retried, "{s:?}");
    assert_eq!(c.closed.get(CloseReason::Error), 0);
}

#[tokio::test]
async fn refused_streams_are_retried_whatever_the_method() {
    let server = H2Server::builder().start().await;
    let client = h2_client(&server, Protocol::Http2).build().unwrap();
    server.refuse_next(3);
    let (body, info) = post(&client, &server.url("/")).await.unwrap();
    assert_eq!(&body[..], b"ok");
    assert_eq!(info.retries, 3);
    let st = server.stats();
    assert_eq!((st.refused, st.streams, st.connections), (3, 1, 1));
    let s = only(&client);
    assert_eq!((s.h2.refused, s.h2.retried), (3, 3));
    assert_eq!(s.pool.counters.retries, 3);
    assert_eq!(s.h2.streams, 4);

    // Refusals have their own budget of 10 retries, apart from maxRetries.
    server.refuse_next(10);
    let (_, info) = post(&client, &server.url("/")).await.unwrap();
    assert_eq!(info.retries, 10);
    server.refuse_next(11);
    let e = post(&client, &server.url("/")).await.unwrap_err();
    assert!(e.to_string().contains("refused the HTTP/2 stream"), "{e}");
    assert_eq!(server.stats().refused, 3 + 10 + 11);
}

#[tokio::test]
async fn a_server_that_picks_http11_in_alpn_gets_http11() {
    let up = Upstream::tls().await;
    let client = builder_for(&up).protocol(Protocol::Auto).build().unwrap();
    let resp = client.get(&up.url("/")).await.unwrap();
    assert_eq!(resp.version(), Version::HTTP_11);
    resp.into_body().bytes().await.unwrap();
    let s = only(&client);
    assert_eq!(s.connections.len(), 1);
    assert_eq!(s.connections[0].protocol, ConnProtocol::Http1);
    assert_eq!(s.connections[0].open_streams, None);
    assert_eq!(s.h2.streams, 0);

    // Requiring HTTP/2 from it fails the handshake, naming why.
    let strict = builder_for(&up).protocol(Protocol::Http2).build().unwrap();
    let e = strict.get(&up.url("/")).await.unwrap_err();
    assert!(e.is_tls(), "{e}");
    assert!(e.to_string().contains("ALPN h2 only"), "{e}");
    assert!(e.to_string().contains("NoApplicationProtocol"), "{e}");
}

#[tokio::test]
async fn ping_finds_a_dead_idle_connection_before_reuse() {
    let server = H2Server::builder().start().await;
    let client = h2_client(&server, Protocol::Http2)
        .keep_alive_msecs(Duration::from_millis(100))
        .http2_ping_timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let url = server.url("/");
    let (_, first) = get(&client, &url).await.unwrap();
    // A quiet connection keeps answering PINGs: still pooled.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (_, again) = get(&client, &url).await.unwrap();
    assert_eq!(again.id, first.id);
    assert!(again.reused);

    server.go_silent();
    let s = eventually(&client, |s| s.pool.counters.stale == 1).await;
    assert_eq!(s.pool.counters.stale, 1, "{s:?}");
    assert_eq!(s.h2.ping_timeouts, 1);
    assert_eq!(s.pool.idle, 0);
    let (_, fresh) = get(&client, &url).await.unwrap();
    assert_ne!(fresh.id, first.id);
    assert!(!fresh.reused);
    assert_eq!(server.stats().connections, 2);
}

#[tokio::test]
async fn a_cancelled_stream_frees_its_slot_and_keeps_the_connection() {
    let server = H2Server::builder()
        .max_concurrent_streams(1)
        .delay(Duration::from_secs(30))
        .start()
        .await;
    let client = h2_client(&server, Protocol::Http2)
        .max_sockets(1)
        .build()
        .unwrap();
    let url = server.url("/");
    let cancelled = tokio::time::timeout(Duration::from_millis(200), get(&client, &url)).await;
    assert!(cancelled.is_err(), "the slow request was cancelled");
    server.set_delay(Duration::ZERO);
    let (body, info) = get(&client, &url).await.unwrap();
    assert_eq!(&body[..], b"ok");
    assert!(info.reused, "the same connection carried it");
    assert!(
        server
            .wait_until(|s| s.cancelled == 1, Duration::from_secs(2))
            .await,
        "{:?}",
        server.stats()
    );
    let st = server.stats();
    assert_eq!((st.connections, st.streams), (1, 2));
    let s = only(&client);
    assert_eq!(s.pool.counters.created, 1);
    assert_eq!(s.pool.counters.closed.total(), 0);
    assert_eq!(s.connections[0].open_streams, Some(0));
}

#[tokio::test]
async fn a_profile_sets_the_protocol_stream_limit_and_tls_of_its_label() {
    let server = H2Server::builder()
        .tls(true)
        .max_concurrent_streams(100)
        .delay(Duration::from_millis(200))
        .start()
        .await;
    // The client's own TLS trusts nothing: only the profile's roots let
    // label "p" connect.
    let own_tls = keepwarm::tls_config(&[server.ca_der()], false).unwrap();
    let client = Client::builder()
        .tls_built_in_roots(false)
        .protocol(Protocol::Http1)
        .profile(
            "p",
            keepwarm::Profile {
                protocol: Protocol::Http2,
                max_concurrent_streams: Some(10),
                tls: Some(own_tls),
                ..keepwarm::Profile::default()
            },
        )
        .build()
        .unwrap();
    let url = server.url("/");
    let labelled = |client: &Client| {
        let mut req = Request::post(&url).body(Bytes::from_static(b"{}")).unwrap();
        req.extensions_mut().insert(keepwarm::Label("p".into()));
        let client = client.clone();
        async move {
            let resp = client.request(req).await?;
            assert_eq!(resp.version(), Version::HTTP_2);
            resp.into_body().bytes().await
        }
    };
    let results = join_all((0..25).map(|_| labelled(&client))).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let st = server.stats();
    assert_eq!(
        (st.connections, st.streams),
        (3, 25),
        "10 streams a connection: {st:?}"
    );
    // Without the label: the client's TLS, which does not trust the server.
    let e = client.get(&url).await.unwrap_err();
    assert!(e.is_tls(), "{e}");
}

#[tokio::test]
async fn prewarm_waits_for_tls_and_alpn_and_reports_failures() {
    let server = H2Server::builder().tls(true).start().await;
    let client = h2_client(&server, Protocol::Auto)
        .min_free_sockets(2)
        .build()
        .unwrap();
    let report = client.prewarm(&server.url("/"), None).await.unwrap();
    assert_eq!(report.opened, vec![ConnProtocol::H2; 2], "{report:?}");
    assert!(report.failed.is_empty(), "{report:?}");
    let st = server.stats();
    assert_eq!(
        (st.connections, st.tls_handshakes, st.streams),
        (2, 2, 0),
        "{st:?}"
    );
    let s = only(&client);
    assert_eq!((s.pool.idle, s.pool.counters.prewarmed), (2, 2));
    // Already warm: nothing more to open.
    let again = client.prewarm(&server.url("/"), None).await.unwrap();
    assert!(
        again.opened.is_empty() && again.failed.is_empty(),
        "{again:?}"
    );

    // A port nobody listens on: each connect's error is reported.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/", dead.local_addr().unwrap().port());
    drop(dead);
    let report = client.prewarm(&url, Some("dead")).await.unwrap();
    assert!(report.opened.is_empty(), "{report:?}");
    assert_eq!(report.failed.len(), 2, "{report:?}");
    assert!(report.failed[0].is_connect(), "{}", report.failed[0]);
}
