//! Helpers shared by the integration tests.

use std::time::Duration;

use bytes::Bytes;
use keepwarm::{Client, ClientBuilder, ConnectionInfo, KeyStats};
use keepwarm_testkit::Upstream;

/// A builder trusting the upstream's self-signed certificate.
pub(crate) fn builder_for(up: &Upstream) -> ClientBuilder {
    Client::builder()
        .tls_built_in_roots(false)
        .add_root_certificate(up.ca_der())
}

/// GET `url`, read the body to the end; the body and the connection facts.
pub(crate) async fn get(
    client: &Client,
    url: &str,
) -> Result<(Bytes, ConnectionInfo), keepwarm::Error> {
    let resp = client.get(url).await?;
    let info = *resp
        .extensions()
        .get::<ConnectionInfo>()
        .expect("always set");
    let body = resp.into_body().bytes().await?;
    Ok((body, info))
}

/// The stats of the only key the client has used.
pub(crate) fn only(client: &Client) -> KeyStats {
    let mut s = client.stats();
    assert_eq!(s.len(), 1, "one key expected: {s:?}");
    s.pop().unwrap()
}

/// Waits (real time, bounded) until `f` holds for the client's only key.
pub(crate) async fn eventually(client: &Client, f: impl Fn(&KeyStats) -> bool) -> KeyStats {
    for _ in 0..400 {
        let s = only(client);
        if f(&s) {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    only(client)
}
