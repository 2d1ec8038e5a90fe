//! `LatencyShim` relays bytes both ways with one-way delay.

mod common;

use std::time::Duration;

use common::{read_more, read_resp, send_get};
use keepwarm_testkit::{LatencyShim, Upstream};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::Instant;

#[tokio::test(start_paused = true)]
async fn round_trip_costs_two_one_way_delays() {
    let up = Upstream::plain().await;
    let one_way = Duration::from_millis(50);
    let shim = LatencyShim::start(up.addr(), one_way).await;
    let mut s = TcpStream::connect(shim.addr()).await.unwrap();
    let mut buf = Vec::new();
    for seq in 1..=2 {
        let t0 = Instant::now();
        send_get(&mut s, "/").await;
        let r = read_resp(&mut s, &mut buf).await.unwrap();
        let virtual_rtt = t0.elapsed(); // paused clock: advanced only by the shim's delays
        assert!(virtual_rtt >= 2 * one_way, "{virtual_rtt:?}");
        assert_eq!(r.header("x-upstream-seq"), Some(&*seq.to_string()));
    }
    assert_eq!(shim.accepted(), 1);
    // Half-close propagates: the client's FIN reaches the server, whose
    // close comes back as EOF.
    s.shutdown().await.unwrap();
    assert_eq!(read_more(&mut s, &mut buf).await, 0);
    let st = up.stats();
    assert_eq!((st.accepted, st.requests, st.client_closes), (1, 2, 1));
}

#[tokio::test]
async fn relays_bytes_real_time() {
    let up = Upstream::builder().body(vec![7u8; 100_000]).start().await;
    let shim = LatencyShim::start(up.addr(), Duration::from_millis(2)).await;
    let mut s = TcpStream::connect(shim.addr()).await.unwrap();
    let mut buf = Vec::new();
    send_get(&mut s, "/big").await;
    let r = read_resp(&mut s, &mut buf).await.unwrap();
    assert_eq!(r.body, vec![7u8; 100_000]);
}
