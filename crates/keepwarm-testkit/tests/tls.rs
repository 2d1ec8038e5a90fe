//! TLS handshakes: full, then resumed with a shared client config.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{read_resp, send_get};
use keepwarm_testkit::{install_crypto_provider, Upstream};
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

#[tokio::test]
async fn full_then_resumed_handshake() {
    install_crypto_provider();
    let up = Upstream::tls().await;
    assert!(up.is_tls());
    assert!(up.url("a").starts_with("https://localhost:"));
    let mut roots = rustls::RootCertStore::empty();
    roots.add(up.ca_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let connector = TlsConnector::from(Arc::new(config));

    // The session cache is keyed by server name: the IP connection is full.
    for (i, host) in ["localhost", "localhost", "127.0.0.1"]
        .into_iter()
        .enumerate()
    {
        let tcp = TcpStream::connect(up.addr()).await.unwrap();
        let name = ServerName::try_from(host).unwrap();
        let mut s = connector.connect(name, tcp).await.unwrap();
        assert_eq!(s.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
        let mut buf = Vec::new();
        send_get(&mut s, "/").await;
        let r = read_resp(&mut s, &mut buf).await.unwrap();
        assert_eq!(r.header("x-upstream-conn"), Some(&*(i + 1).to_string()));
    }
    let ok = up
        .wait_until(
            |s| s.tls_full == 2 && s.tls_resumed == 1,
            Duration::from_secs(2),
        )
        .await;
    assert!(ok, "{:?}", up.stats());

    // A client that does not trust the cert fails the handshake.
    let mut tcp = TcpStream::connect(up.addr()).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut tcp, b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    assert!(
        up.wait_until(|s| s.tls_failed == 1 && s.open == 0, Duration::from_secs(2))
            .await
    );
}
