//! Through the testkit's counting proxy: one `CONNECT` tunnel per pooled
//! HTTPS connection (reused like any connection), absolute-form requests
//! over reused connections to the proxy for plain HTTP, credentials, a
//! proxy's refusals as clear errors, `NO_PROXY`, and pool keys that keep
//! proxied and direct connections apart. Every count is checked against
//! what the proxy and the upstream saw.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use http::Request;
use keepwarm::{Client, ConnProtocol, Profile, Protocol, Proxy, ProxyChoice, ProxyRules};
use keepwarm_testkit::{H2Server, KnobSettings, ProxyServer, Upstream};

use crate::support::{builder_for, get, only};

fn via(proxy: &ProxyServer) -> Proxy {
    Proxy::parse(&proxy.url()).unwrap()
}

#[tokio::test]
async fn hundred_sequential_https_requests_open_one_tunnel() {
    let up = Upstream::tls().await;
    let proxy = ProxyServer::start().await;
    let client = builder_for(&up).proxy(via(&proxy)).build().unwrap();
    for i in 0..100 {
        let (body, info) = get(&client, &up.url("/t")).await.unwrap();
        assert_eq!(&body[..], b"ok");
        assert_eq!(info.reused, i > 0, "request {i}");
    }
    let p = proxy.stats();
    assert_eq!((p.accepted, p.connects, p.forwarded), (1, 1, 0));
    assert_eq!(
        p.targets,
        vec![format!("CONNECT localhost:{}", up.addr().port())]
    );
    let server = up.stats();
    assert_eq!((server.accepted, server.requests), (1, 100));
    let s = only(&client);
    assert_eq!(s.key.proxy, Some(via(&proxy)));
    assert_eq!((s.pool.counters.created, s.pool.counters.reused), (1, 99));
}

#[tokio::test]
async fn concurrent_tunnels_equal_pool_connections_and_upstream_accepts() {
    let up = Upstream::builder()
        .tls(true)
        .knobs(KnobSettings {
            header_delay: Some(Duration::from_millis(100)),
            ..KnobSettings::default()
        })
        .start()
        .await;
    let proxy = ProxyServer::start().await;
    let client = builder_for(&up).proxy(via(&proxy)).build().unwrap();
    for _ in 0..3 {
        let url = up.url("/c");
        let rounds = (0..8).map(|_| get(&client, &url));
        for r in join_all(rounds).await {
            r.unwrap();
        }
    }
    let s = only(&client);
    let p = proxy.stats();
    let server = up.stats();
    assert!(s.pool.counters.created > 1, "{s:?}");
    assert_eq!(p.connects, s.pool.counters.created);
    assert_eq!(p.accepted, s.pool.counters.created);
    assert_eq!(server.accepted, s.pool.counters.created);
    assert_eq!(server.requests, 24);
    assert_eq!(p.tunnels_open, s.pool.idle as u64);
}

#[tokio::test]
async fn plain_http_goes_in_absolute_form_over_reused_proxy_connections() {
    let up = Upstream::plain().await;
    let proxy = ProxyServer::builder().credentials("u", "p w").start().await;
    let url = format!("http://u:p%20w@{}", proxy.addr());
    let client = Client::builder()
        .proxy(Proxy::parse(&url).unwrap())
        .build()
        .unwrap();
    for _ in 0..10 {
        let (body, _) = get(&client, &up.url("/abs?q=1")).await.unwrap();
        assert_eq!(&body[..], b"ok");
    }
    let p = proxy.stats();
    assert_eq!((p.accepted, p.connects, p.forwarded), (1, 0, 10));
    let want = format!("GET http://127.0.0.1:{}/abs?q=1", up.addr().port());
    assert!(p.targets.iter().all(|t| *t == want), "{:?}", p.targets);
    // base64("u:p w"): sent on every request.
    let auth = Some("Basic dTpwIHc=".to_string());
    assert_eq!(p.proxy_authorization, vec![auth; 10]);
    // The origin saw the origin form, without the proxy's credentials.
    let server = up.stats();
    assert_eq!(server.requests, 10);
    let first = &server.request_log[0];
    assert_eq!(first.path, "/abs?q=1");
    assert!(first
        .headers
        .iter()
        .all(|(n, _)| n != "proxy-authorization"));
    let s = only(&client);
    assert_eq!((s.pool.counters.created, s.pool.counters.reused), (1, 9));
}

#[tokio::test]
async fn a_407_names_the_proxy_and_credentials_fix_it() {
    let up = Upstream::tls().await;
    let proxy = ProxyServer::builder()
        .credentials("al", "s3cret")
        .start()
        .await;
    let target = format!("localhost:{}", up.addr().port());

    let client = builder_for(&up).proxy(via(&proxy)).build().unwrap();
    let e = get(&client, &up.url("/")).await.unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!(
            "proxy {} refused CONNECT to {target}",
            proxy.url()
        )),
        "{msg}"
    );
    assert!(msg.contains("407 Proxy Authentication Required"), "{msg}");

    let wrong = format!("http://al:wrong@{}", proxy.addr());
    let client = builder_for(&up)
        .proxy(Proxy::parse(&wrong).unwrap())
        .build()
        .unwrap();
    let msg = get(&client, &up.url("/")).await.unwrap_err().to_string();
    assert!(msg.contains("check the proxy's user:pass"), "{msg}");
    assert!(msg.contains("http://al:***@"), "{msg}");
    assert!(!msg.contains("wrong"), "{msg}");

    let right = format!("http://al:s3cret@{}", proxy.addr());
    let client = builder_for(&up)
        .proxy(Proxy::parse(&right).unwrap())
        .build()
        .unwrap();
    get(&client, &up.url("/")).await.unwrap();
    let p = proxy.stats();
    assert_eq!((p.auth_required, p.connects), (2, 1));
    // base64("al:s3cret")
    assert_eq!(
        p.proxy_authorization,
        vec![
            None,
            Some("Basic YWw6d3Jvbmc=".into()),
            Some("Basic YWw6czNjcmV0".into())
        ]
    );
    assert_eq!(up.stats().accepted, 1);
}

#[tokio::test]
async fn a_502_to_connect_and_a_dead_proxy_are_clear_errors() {
    let up = Upstream::tls().await;
    let proxy = ProxyServer::builder().refuse_connect(true).start().await;
    let client = builder_for(&up).proxy(via(&proxy)).build().unwrap();
    let e = get(&client, &up.url("/")).await.unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("proxy {} refused CONNECT", proxy.url())),
        "{msg}"
    );
    assert!(msg.ends_with("502 Bad Gateway"), "{msg}");
    assert_eq!(proxy.stats().bad_gateway, 1);
    assert_eq!(up.stats().accepted, 0);
    assert_eq!(only(&client).pool.counters.connect_errors, 1);

    // Nothing listens there any more: connection refused, naming the proxy.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let client = builder_for(&up)
        .proxy(Proxy::parse(&dead.to_string()).unwrap())
        .build()
        .unwrap();
    let e = get(&client, &up.url("/")).await.unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    assert!(
        e.to_string().starts_with(&format!(
            "connect to proxy http://{dead} for localhost (localhost:"
        )),
        "{e}"
    );
}

#[tokio::test]
async fn a_no_proxy_host_goes_direct() {
    let up = Upstream::tls().await;
    let proxy = ProxyServer::start().await;
    let env: HashMap<&str, String> = [
        ("HTTPS_PROXY", proxy.url()),
        ("no_proxy", "example.com, localhost".to_string()),
    ]
    .into();
    // Loopback would go direct anyway (Go's rule): let it be proxied, so
    // that only NO_PROXY sends localhost direct here.
    let rules = ProxyRules::from_lookup(|n| env.get(n).cloned())
        .unwrap()
        .with_loopback(true);
    let client = builder_for(&up).proxy_rules(rules).build().unwrap();
    for _ in 0..3 {
        get(&client, &up.url("/direct")).await.unwrap();
    }
    assert_eq!(proxy.stats().accepted, 0);
    assert_eq!(up.stats().accepted, 1);
    assert_eq!(only(&client).key.proxy, None);
    // Only HTTPS_PROXY is set: a plain-http target goes direct too.
    let plain = Upstream::plain().await;
    get(&client, &plain.url("/")).await.unwrap();
    assert_eq!(proxy.stats().accepted, 0);
    // ALL_PROXY covers plain http, but not loopback unless allowed.
    let env: HashMap<&str, String> = [("ALL_PROXY", proxy.url())].into();
    let rules = ProxyRules::from_lookup(|n| env.get(n).cloned()).unwrap();
    let client = Client::builder()
        .proxy_rules(rules.clone())
        .build()
        .unwrap();
    get(&client, &plain.url("/")).await.unwrap();
    assert_eq!(proxy.stats().accepted, 0);
    let client = Client::builder()
        .proxy_rules(rules.with_loopback(true))
        .build()
        .unwrap();
    get(&client, &plain.url("/")).await.unwrap();
    assert_eq!(proxy.stats().forwarded, 1);
}

#[tokio::test]
async fn the_key_keeps_proxied_and_direct_connections_apart() {
    let up = Upstream::tls().await;
    let proxy = ProxyServer::start().await;
    let client = builder_for(&up)
        .proxy(via(&proxy))
        .profile(
            "direct",
            Profile {
                proxy: ProxyChoice::Direct,
                ..Profile::default()
            },
        )
        .build()
        .unwrap();
    for _ in 0..3 {
        // The client's proxy.
        get(&client, &up.url("/p")).await.unwrap();
        // The label's choice: direct.
        let mut req = Request::get(up.url("/d")).body(Bytes::new()).unwrap();
        req.extensions_mut()
            .insert(keepwarm::Label("direct".into()));
        client
            .request(req)
            .await
            .unwrap()
            .into_body()
            .bytes()
            .await
            .unwrap();
        // The request's own choice: direct, same label as the first.
        let mut req = Request::get(up.url("/r")).body(Bytes::new()).unwrap();
        req.extensions_mut().insert(ProxyChoice::Direct);
        client
            .request(req)
            .await
            .unwrap()
            .into_body()
            .bytes()
            .await
            .unwrap();
    }
    let stats = client.stats();
    assert_eq!(stats.len(), 3, "{stats:?}");
    let proxied: Vec<_> = stats.iter().filter(|s| s.key.proxy.is_some()).collect();
    assert_eq!(proxied.len(), 1);
    assert_eq!(proxied[0].key.label.as_ref(), "localhost");
    for s in &stats {
        assert_eq!((s.pool.counters.created, s.pool.counters.requests), (1, 3));
    }
    assert_eq!(proxy.stats().connects, 1);
    assert_eq!(up.stats().accepted, 3);
}

#[tokio::test]
async fn http2_runs_through_a_tunnel() {
    let server = H2Server::builder().tls(true).start().await;
    let proxy = ProxyServer::start().await;
    let client = Client::builder()
        .tls_built_in_roots(false)
        .add_root_certificate(server.ca_der())
        .protocol(Protocol::Http2)
        .proxy(via(&proxy))
        .build()
        .unwrap();
    let url = server.url("/h2");
    let rounds = (0..10).map(|_| get(&client, &url));
    for r in join_all(rounds).await {
        r.unwrap();
    }
    let s = only(&client);
    assert_eq!(s.connections.len(), 1);
    assert_eq!(s.connections[0].protocol, ConnProtocol::H2);
    assert_eq!(s.h2.streams, 10);
    assert_eq!(proxy.stats().connects, 1);
    let h2 = server.stats();
    assert_eq!((h2.connections, h2.streams), (1, 10));
}
