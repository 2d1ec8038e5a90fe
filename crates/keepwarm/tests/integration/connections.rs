//! `Client::connections()`: one row per open socket, matching the server's
//! own count of open connections and requests.

use crate::support::{builder_for, get};
use keepwarm_testkit::Upstream;

#[tokio::test]
async fn lists_the_open_connections_the_server_sees() {
    let up = Upstream::plain().await;
    let client = builder_for(&up).build().unwrap();
    assert!(client.connections().is_empty());
    // Two sequential requests share one connection...
    let (_, a) = get(&client, &up.url("/a")).await.unwrap();
    let (_, b) = get(&client, &up.url("/b")).await.unwrap();
    assert_eq!(a.id, b.id);
    // ...and two at once need a second one.
    let (ux, uy) = (up.url("/x"), up.url("/y"));
    let (x, y) = tokio::join!(get(&client, &ux), get(&client, &uy));
    let (x, y) = (x.unwrap().1, y.unwrap().1);
    assert_ne!(x.id, y.id);

    let all = client.connections();
    assert_eq!(all.len(), 1, "one key: {all:?}");
    let (key, conns) = &all[0];
    assert_eq!(key.port, up.addr().port());
    let server = up.stats();
    assert_eq!(conns.len() as u64, server.accepted);
    assert_eq!(
        conns.iter().map(|c| c.requests).sum::<u64>(),
        server.requests
    );
    assert!(conns
        .iter()
        .all(|c| c.in_flight == 0 && c.idle_for.is_some()));
    let mut ids: Vec<u64> = conns.iter().map(|c| c.id).collect();
    ids.sort_unstable();
    let mut seen = vec![x.id, y.id];
    seen.sort_unstable();
    assert_eq!(ids, seen);

    client.destroy_where(|_| true);
    assert!(client.connections()[0].1.is_empty());
}
