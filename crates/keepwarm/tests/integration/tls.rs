//! TLS: a full handshake first, resumed sessions after; the server agrees.

use keepwarm::Handshake;
use keepwarm_testkit::Upstream;

use crate::support::{builder_for, eventually, get};

#[tokio::test]
async fn first_connection_full_later_ones_resumed() {
    let up = Upstream::tls().await;
    let client = builder_for(&up).keep_alive(false).build().unwrap();
    for i in 0..5 {
        let (_, info) = get(&client, &up.url("/tls")).await.unwrap();
        let want = if i == 0 {
            Handshake::Full
        } else {
            Handshake::Resumed
        };
        assert_eq!(info.handshake, want, "request {i}");
    }
    let s = eventually(&client, |s| s.pool.idle == 0).await;
    let server = up.stats();
    assert_eq!((s.tls.full, s.tls.resumed), (1, 4));
    assert_eq!((server.tls_full, server.tls_resumed), (1, 4));
    assert_eq!(server.accepted, 5);
}

#[tokio::test]
async fn pooled_tls_does_one_handshake() {
    let up = Upstream::tls().await;
    let client = builder_for(&up).build().unwrap();
    for _ in 0..20 {
        get(&client, &up.url("/tls")).await.unwrap();
    }
    let server = up.stats();
    assert_eq!(
        (server.accepted, server.tls_full, server.tls_resumed),
        (1, 1, 0)
    );
}
