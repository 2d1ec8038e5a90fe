//! HTTP/2 upstream through the gateway, checked against the testkit
//! H2Server's own counts: 250 concurrent slow requests with the server's
//! limit at 100 open 3 connections and 250 streams (h2c with prior
//! knowledge and TLS with ALPN), and every HTTP/2 figure of /stats,
//! /details and /metrics equals the server's count — GOAWAYs sent vs
//! received, refused streams vs refused and retried. Against a server
//! offering ALPN `h2, http/1.1`, `"protocol": "http1"` gets HTTP/1.1 and
//! `"auto"` gets h2, by the server's count and in management; a streamed
//! SSE reply passes through on either.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use http_body_util::BodyExt;
use keepwarm::Client;
use keepwarm_testkit::{H2Server, H2Stats};
use serde_json::Value;

use crate::support::{json, post, read, Gateway};

fn body(provider: &str) -> String {
    format!(
        r#"{{"max_tokens":8,"messages":[{{"role":"user","content":"hi"}}],"model":"{provider},m"}}"#
    )
}

async fn get(gw: &Gateway, path: &str) -> String {
    let (s, _, text) = read(
        Client::new()
            .unwrap()
            .get(&format!("{}{path}", gw.url))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(s, 200, "{text}");
    text
}

/// The value of the sample `name{provider="p"}`.
fn sample(text: &str, name: &str, provider: &str) -> u64 {
    let prefix = format!("{name}{{provider=\"{provider}\"}} ");
    let line = (text.lines().find(|l| l.starts_with(&prefix)))
        .unwrap_or_else(|| panic!("no sample {prefix} in\n{text}"));
    line[prefix.len()..].trim().parse::<f64>().unwrap() as u64
}

/// (/stats entry, /details entry, /metrics text) for `provider`.
async fn figures(gw: &Gateway, provider: &str) -> (Value, Value, String) {
    let stats = json(&get(gw, "/api/connections/stats").await);
    let details = json(&get(gw, "/api/connections/details").await);
    let pick = |list: &Value| {
        (list.as_array().unwrap().iter())
            .find(|p| p["provider"] == provider)
            .cloned()
            .unwrap()
    };
    (
        pick(&stats["data"]["providers"]),
        pick(&details["data"]["providers"]),
        get(gw, "/metrics").await,
    )
}

async fn gateway_for(server: &H2Server, protocol: &str) -> Gateway {
    let cfg = format!(
        r#"{{ "Providers": [{{ "name": "up", "api_base_url": "$URL", "api_key": "k" }}],
             "HttpConnectionPool": {{ "global": {{ "protocol": "{protocol}", "maxSockets": 10 }} }} }}"#
    );
    let vars = HashMap::from([("URL".to_string(), server.url("/v1/messages"))]);
    Gateway::start_trusting(&cfg, vars, vec![server.ca_der()]).await
}

async fn send_many(gw: &Gateway, n: usize) {
    let c = Client::builder().max_sockets(n).build().unwrap();
    let url = format!("{}/v1/messages", gw.url);
    let b = body("up");
    let results = join_all((0..n).map(|_| async {
        let (s, _, text) = read(post(&c, &url, &[], &b).await).await;
        (s, text)
    }))
    .await;
    for (s, text) in results {
        assert_eq!(s, 200, "{text}");
    }
}

async fn overflow_truth(tls: bool, protocol: &str) {
    let server = H2Server::builder()
        .tls(tls)
        .max_concurrent_streams(100)
        .delay(Duration::from_secs(2))
        .start()
        .await;
    let gw = gateway_for(&server, protocol).await;
    send_many(&gw, 250).await;
    let st = server.stats();
    assert_eq!((st.connections, st.streams), (3, 250), "{st:?}");
    let (summary, details, m) = figures(&gw, "up").await;
    for h in [&summary["http2"], &details["http2"]] {
        assert_eq!(h["streamsTotal"], st.streams, "{h}");
        assert_eq!(h["connections"], st.open_connections, "{h}");
        assert_eq!(h["http1Connections"], 0, "{h}");
        assert_eq!(h["openStreams"], st.open_streams, "{h}");
        assert_eq!(h["goawaysReceived"], st.goaways_sent, "{h}");
        assert_eq!(h["streamsRefused"], st.refused, "{h}");
    }
    assert_eq!(details["counters"]["connectionsCreated"], st.connections);
    // reuseRate for h2: requests that rode an existing connection.
    assert_eq!(summary["totalRequests"], 250);
    assert_eq!(summary["reuseCount"], 250 - st.connections);
    let open = details["openConnections"].as_array().unwrap();
    assert_eq!(open.len() as u64, st.open_connections);
    for c in open {
        assert_eq!(c["protocol"], "h2", "{c}");
        assert_eq!(c["openStreams"], 0, "{c}");
    }
    assert_eq!(sample(&m, "keepwarm_http2_streams_total", "up"), st.streams);
    assert_eq!(
        sample(&m, "keepwarm_connections_created_total", "up"),
        st.connections
    );
    let h2_open = format!(
        "keepwarm_connections_open_by_protocol{{provider=\"up\",protocol=\"h2\"}} {}",
        st.open_connections
    );
    assert!(m.lines().any(|l| l == h2_open), "{h2_open} in\n{m}");
    if tls {
        let hs = &details["counters"]["tlsHandshakes"];
        let ours = hs["full"].as_u64().unwrap() + hs["resumed"].as_u64().unwrap();
        assert_eq!(ours, st.tls_handshakes);
    }
}

#[tokio::test]
async fn h2c_through_the_gateway_opens_three_connections_for_250_streams() {
    overflow_truth(false, "http2").await;
}

#[tokio::test]
async fn tls_alpn_h2_through_the_gateway_opens_three_connections_for_250_streams() {
    overflow_truth(true, "auto").await;
}

#[tokio::test]
async fn goaways_and_refused_streams_are_counted_as_the_server_sent_them() {
    let server = H2Server::builder().tls(true).goaway_after(5).start().await;
    let gw = gateway_for(&server, "auto").await;
    server.refuse_next(3);
    send_many(&gw, 40).await;
    let st = server.stats();
    assert!(st.goaways_sent >= 1 && st.refused >= 3, "{st:?}");
    let (summary, details, m) = figures(&gw, "up").await;
    for h in [&summary["http2"], &details["http2"]] {
        assert_eq!(h["goawaysReceived"], st.goaways_sent, "{h}");
        assert_eq!(h["streamsRefused"], st.refused, "{h}");
        assert_eq!(
            h["streamsRetried"], st.refused,
            "every refused stream was retried: {h}"
        );
        // Ours counts every stream opened; the server's `streams` leaves
        // the refused ones out.
        assert_eq!(h["streamsTotal"], st.streams + st.refused, "{h}");
    }
    assert_eq!(summary["totalRequests"], 40 + st.refused);
    assert_eq!(
        sample(&m, "keepwarm_http2_goaways_received_total", "up"),
        st.goaways_sent
    );
    assert_eq!(
        sample(&m, "keepwarm_http2_streams_refused_total", "up"),
        st.refused
    );
    assert_eq!(
        sample(&m, "keepwarm_http2_streams_retried_total", "up"),
        st.refused
    );
    assert_eq!(details["counters"]["connectionsCreated"], st.connections);
}

/// Against a TLS server offering ALPN `h2, http/1.1`: the provider's
/// `protocol` decides what the server sees. (server h1 connections, server
/// h2 connections, the protocol management shows per open connection.)
async fn alpn_choice(protocol: &str) -> (u64, u64, Value) {
    let server = H2Server::builder()
        .tls(true)
        .http1_fallback(true)
        .start()
        .await;
    let gw = gateway_for(&server, protocol).await;
    send_many(&gw, 1).await;
    let st = server.stats();
    assert_eq!(st.tls_handshakes, 1, "{st:?}");
    assert_eq!(
        st.http1_requests + st.streams,
        1,
        "one request served: {st:?}"
    );
    let (summary, details, m) = figures(&gw, "up").await;
    let open = details["openConnections"].as_array().unwrap();
    assert_eq!(open.len(), 1, "{details}");
    let (h1, h2) = (st.http1_connections, st.connections);
    assert_eq!(summary["http2"]["http1Connections"], h1, "{summary}");
    assert_eq!(summary["http2"]["connections"], h2, "{summary}");
    let wire = open[0]["protocol"].clone();
    let by_protocol = format!(
        "keepwarm_connections_open_by_protocol{{provider=\"up\",protocol=\"{}\"}} 1",
        wire.as_str().unwrap()
    );
    assert!(m.lines().any(|l| l == by_protocol), "{by_protocol} in\n{m}");
    (h1, h2, wire)
}

#[tokio::test]
async fn protocol_http1_against_an_h2_capable_server_gets_http1() {
    let (h1, h2, wire) = alpn_choice("http1").await;
    assert_eq!(
        (h1, h2),
        (1, 0),
        "the server served HTTP/1.1 once, h2 never"
    );
    assert_eq!(wire, "http1.1");
}

#[tokio::test]
async fn protocol_auto_against_the_same_server_gets_h2() {
    let (h1, h2, wire) = alpn_choice("auto").await;
    assert_eq!(
        (h1, h2),
        (0, 1),
        "the server served h2 once, HTTP/1.1 never"
    );
    assert_eq!(wire, "h2");
}

/// The server's streamed SSE reply (events 20 ms apart) reaches the caller
/// through the gateway byte for byte, in more than one piece, on HTTP/2 or
/// HTTP/1.1 as the provider's `protocol` says.
async fn sse_through(protocol: &str) -> H2Stats {
    let events: Vec<Bytes> = [
        "event: a\ndata: 1\n\n",
        "event: b\ndata: 2\n\n",
        "event: c\ndata: 3\n\n",
    ]
    .into_iter()
    .map(|e| Bytes::from_static(e.as_bytes()))
    .collect();
    let server = H2Server::builder()
        .tls(true)
        .http1_fallback(true)
        .content_type("text/event-stream")
        .stream(events.clone(), Duration::from_millis(20))
        .start()
        .await;
    let gw = gateway_for(&server, protocol).await;
    let c = Client::new().unwrap();
    let resp = post(&c, &format!("{}/v1/messages", gw.url), &[], &body("up")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut body = resp.into_body();
    let (mut got, mut pieces) = (Vec::new(), 0);
    while let Some(f) = body.frame().await {
        if let Ok(d) = f.unwrap().into_data() {
            pieces += usize::from(!d.is_empty());
            got.extend_from_slice(&d);
        }
    }
    assert_eq!(got, events.concat());
    assert!(
        pieces >= 2,
        "streamed, not buffered whole: {pieces} piece(s)"
    );
    server.stats()
}

#[tokio::test]
async fn a_streamed_reply_passes_through_on_h2() {
    let st = sse_through("http2").await;
    assert_eq!((st.streams, st.http1_requests), (1, 0), "{st:?}");
}

#[tokio::test]
async fn a_streamed_reply_passes_through_on_http1() {
    let st = sse_through("http1").await;
    assert_eq!((st.streams, st.http1_requests), (0, 1), "{st:?}");
}
