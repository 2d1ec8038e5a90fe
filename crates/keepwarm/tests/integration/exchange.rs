//! The HTTP/1.1 exchange runs in the caller's task: no task per connection,
//! and a body read from another task still drives its connection.

use std::time::Duration;

use keepwarm_testkit::{KnobSettings, Upstream};

use crate::support::{builder_for, get, only};

#[test]
fn idle_http1_connections_hold_no_task() {
    // The server runs on a runtime of its own, so the client's runtime
    // counts only the client's tasks.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let up = server_rt.block_on(Upstream::plain());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = builder_for(&up).build().unwrap();
        let url = up.url("/idle");
        let gets = (0..4).map(|_| get(&client, &url));
        for r in futures_util::future::join_all(gets).await {
            r.unwrap();
        }
        assert_eq!(up.stats().accepted, 4);
        assert_eq!(only(&client).pool.idle, 4);
        let tasks = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        // At most the pool's expiry timer; a task per connection would be 4 more.
        assert!(tasks <= 1, "{tasks} tasks alive with 4 idle connections");
        let (_, info) = get(&client, &url).await.unwrap();
        assert!(info.reused);
    });
    drop(up);
}

#[tokio::test]
async fn a_body_read_in_another_task_drives_its_connection() {
    let up = Upstream::builder()
        .body(vec![b'z'; 4000])
        .knobs(KnobSettings {
            chunk_delay: Some(Duration::from_millis(5)),
            ..Default::default()
        })
        .start()
        .await;
    let client = builder_for(&up).build().unwrap();
    for _ in 0..3 {
        let resp = client.get(&up.url("/c")).await.unwrap();
        let body = tokio::spawn(resp.into_body().bytes()).await.unwrap();
        assert_eq!(body.unwrap().len(), 4000);
    }
    let s = only(&client);
    assert_eq!((up.stats().accepted, s.pool.counters.reused), (1, 2));
    assert_eq!(s.pool.idle, 1);
}
