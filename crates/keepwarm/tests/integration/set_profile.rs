//! `Client::set_profile` while the client runs: the label's new settings
//! apply from the next request, its idle connection stays (the server's
//! accept count does not move), other labels are untouched.

use std::time::Duration;

use bytes::Bytes;
use keepwarm::{Label, PoolOptions, Profile};
use keepwarm_testkit::Upstream;

use crate::support::builder_for;

async fn get(client: &keepwarm::Client, url: &str, label: &str) -> keepwarm::ConnectionInfo {
    let mut req = http::Request::get(url).body(Bytes::new()).unwrap();
    req.extensions_mut().insert(Label(label.into()));
    let resp = client.request(req).await.unwrap();
    let info = *resp.extensions().get::<keepwarm::ConnectionInfo>().unwrap();
    resp.into_body().bytes().await.unwrap();
    info
}

#[tokio::test]
async fn a_new_profile_applies_and_the_idle_connection_stays() {
    let up = Upstream::plain().await;
    let client = builder_for(&up).build().unwrap();
    let url = up.url("/p");
    let first = get(&client, &url, "p").await;
    client
        .set_profile(
            "p",
            Profile {
                pool: PoolOptions {
                    max_sockets: 3,
                    max_free_sockets: 3,
                    ..PoolOptions::default()
                },
                timeout: Duration::from_secs(7),
                ..Profile::default()
            },
        )
        .unwrap();
    let again = get(&client, &url, "p").await;
    assert_eq!((again.id, again.reused), (first.id, true));
    assert_eq!(up.stats().accepted, 1);
    assert_eq!(client.timeout_for("p"), Duration::from_secs(7));
    assert_eq!(client.timeout_for("other"), Duration::from_secs(30));
    let s = client.stats();
    assert_eq!(s[0].pool.max_sockets, 3);
    // Invalid settings are refused, naming the profile, and change nothing.
    let e = client
        .set_profile(
            "p",
            Profile {
                timeout: Duration::ZERO,
                ..Profile::default()
            },
        )
        .unwrap_err();
    assert!(e.to_string().contains("(profile \"p\")"), "{e}");
    assert_eq!(client.timeout_for("p"), Duration::from_secs(7));
}

#[tokio::test]
async fn a_label_given_apart_is_the_same_pool_as_the_extension() {
    let up = Upstream::plain().await;
    let client = builder_for(&up).build().unwrap();
    let url = up.url("/l");
    let first = get(&client, &url, "p").await;
    let req = http::Request::get(&url).body(Bytes::new()).unwrap();
    let label = Label("p".into());
    let resp = client.request_in(Some(&label), req).await.unwrap();
    let info = *resp.extensions().get::<keepwarm::ConnectionInfo>().unwrap();
    resp.into_body().bytes().await.unwrap();
    // One key, one connection, reused: the server accepted once.
    assert_eq!((info.id, info.reused), (first.id, true));
    let stats = client.stats();
    assert_eq!(stats.len(), 1);
    assert_eq!(&*stats[0].key.label, "p");
    assert_eq!(up.stats().accepted, 1);
}
