//! Pre-warm at start: `minFreeSockets` connections per provider, TLS and
//! ALPN done, by the server's own count; a provider that cannot be reached
//! is reported, not fatal.

use std::collections::HashMap;

use keepwarm_testkit::H2Server;

use crate::support::{client, eventually, post, read, Gateway};

#[tokio::test]
async fn min_free_sockets_are_open_before_the_first_request() {
    let server = H2Server::builder().tls(true).start().await;
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!(
        "http://127.0.0.1:{}/v1/messages",
        dead.local_addr().unwrap().port()
    );
    drop(dead);
    let cfg = r#"{
      "Providers": [
        { "name": "h2", "api_base_url": "$H2_URL", "api_key": "k" },
        { "name": "down", "api_base_url": "$DEAD_URL", "api_key": "k" },
        { "name": "cold", "api_base_url": "$H2_URL", "api_key": "k" }
      ],
      "HttpConnectionPool": { "providers": {
        "h2": { "minFreeSockets": 2 }, "down": { "minFreeSockets": 1 } } }
    }"#;
    let vars = HashMap::from([
        ("H2_URL".to_string(), server.url("/v1/messages")),
        ("DEAD_URL".to_string(), dead_url),
    ]);
    let gw = Gateway::start_trusting(cfg, vars, vec![server.ca_der()]).await;
    let results = keepwarm_gateway::prewarm::run(&gw.state).await;
    let names: Vec<&str> = results.iter().map(|w| w.provider.as_str()).collect();
    assert_eq!(names, ["h2", "down"], "cold has no minFreeSockets");
    let (h2, down) = (&results[0], &results[1]);
    assert_eq!((h2.h2, h2.http1, h2.wanted), (2, 0, 2), "{h2:?}");
    assert!(h2.failures.is_empty(), "{h2:?}");
    assert_eq!((down.opened(), down.failures.len()), (0, 1), "{down:?}");
    assert!(down.failures[0].contains("down (127.0.0.1:"), "{down:?}");
    let st = server.stats();
    assert_eq!(
        (st.connections, st.tls_handshakes, st.streams),
        (2, 2, 0),
        "{st:?}"
    );

    // The first request rides a pre-warmed connection: every connection
    // the server saw was opened ahead of demand (the pool refills to keep
    // two idle while one carries the request).
    let body = r#"{"max_tokens":8,"messages":[{"role":"user","content":"hi"}],"model":"h2,m"}"#;
    let (s, _, text) =
        read(post(&client(), &format!("{}/v1/messages", gw.url), &[], body).await).await;
    assert_eq!(s, 200, "{text}");
    let refilled = || {
        let stats = gw.state.client().label_stats();
        stats
            .iter()
            .any(|l| &*l.label == "h2" && l.pool.idle >= 2 && l.pool.connecting == 0)
    };
    assert!(eventually(refilled).await, "the pool refills to two idle");
    let stats = gw.state.client().label_stats();
    let c = stats
        .iter()
        .find(|l| &*l.label == "h2")
        .unwrap()
        .pool
        .counters;
    let st = server.stats();
    assert_eq!(st.streams, 1, "{st:?}");
    assert_eq!(c.created, st.connections, "{c:?} {st:?}");
    assert_eq!(
        c.prewarmed, c.created,
        "no connection opened by the request: {c:?}"
    );
}
