//! HTTP/2 against a server nobody here wrote: nginx with `http2` on a TLS
//! listener and `keepalive_requests 10`, so every connection ends with a
//! GOAWAY after 10 streams while more are in flight. 400 POSTs, 50 at a
//! time: no client error, each POST processed exactly once (nginx's access
//! log), connections and GOAWAYs as nginx counts them.
//!
//! nginx is found through `KEEPWARM_NGINX` (set by `tests/nginx/run.sh`,
//! which installs it and is run by `.ci/run`: there a missing nginx fails),
//! else on `PATH` or at `/usr/sbin/nginx`; without any, the test says
//! loudly that it skipped.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use futures_util::future::join_all;
use http::{Request, Version};
use keepwarm::{Client, CloseReason, Protocol};

fn nginx_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KEEPWARM_NGINX") {
        let p = PathBuf::from(p);
        assert!(p.exists(), "KEEPWARM_NGINX={} does not exist", p.display());
        return Some(p);
    }
    let from_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("nginx"))
            .find(|p| p.exists())
    });
    from_path.or_else(|| Some(PathBuf::from("/usr/sbin/nginx")).filter(|p| p.exists()))
}

/// Stops nginx when the test ends, however it ends.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

fn config(dir: &Path, port: u16) -> String {
    let d = dir.display();
    format!(
        r#"daemon off;
master_process off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    log_format conns '$connection $connection_requests $request_method';
    access_log {d}/access.log conns;
    server {{
        listen 127.0.0.1:{port} ssl http2;
        ssl_certificate {d}/cert.pem;
        ssl_certificate_key {d}/key.pem;
        keepalive_requests 10;
        http2_max_concurrent_streams 16;
        location / {{ return 200 "ok"; }}
    }}
}}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_goaways_lose_no_request() {
    let Some(bin) = nginx_binary() else {
        eprintln!(
            "SKIPPED nginx_goaways_lose_no_request: no nginx (tests/nginx/run.sh installs it)"
        );
        return;
    };
    let dir = std::env::temp_dir().join(format!("keepwarm-nginx-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (cert, key, der) = keepwarm_testkit::self_signed_pem();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    let port = free_port();
    std::fs::write(dir.join("nginx.conf"), config(&dir, port)).unwrap();
    let child = Command::new(&bin)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
    let _nginx = Nginx(child);
    let mut up = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
    assert!(up, "nginx did not listen on {port}: {log}");

    let client = Client::builder()
        .tls_built_in_roots(false)
        .add_root_certificate(der)
        .protocol(Protocol::Http2)
        .max_sockets(20)
        .build()
        .unwrap();
    let url = format!("https://localhost:{port}/v1/messages");
    for _ in 0..8 {
        let batch = join_all((0..50).map(|_| {
            let req = Request::post(url.as_str())
                .body(Bytes::from_static(b"{}"))
                .unwrap();
            let client = client.clone();
            async move {
                let resp = client.request(req).await?;
                assert_eq!(resp.version(), Version::HTTP_2);
                resp.into_body().bytes().await
            }
        }))
        .await;
        for r in batch {
            assert_eq!(&r.expect("no client error")[..], b"ok");
        }
    }

    // nginx's own account: one log line per processed request.
    let mut lines = Vec::new();
    for _ in 0..100 {
        lines = std::fs::read_to_string(dir.join("access.log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect();
        if lines.len() >= 400 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(lines.len(), 400, "each POST processed exactly once");
    let conns: HashSet<&str> = lines.iter().filter_map(|l| l.split(' ').next()).collect();
    let mut s = client.stats();
    assert_eq!(s.len(), 1);
    let s = s.pop().unwrap();
    let c = s.pool.counters;
    assert_eq!(c.created as usize, conns.len(), "{s:?}");
    assert_eq!(
        c.created, 40,
        "keepalive_requests 10 over 400 requests: {s:?}"
    );
    // Every connection that reached keepalive_requests got a GOAWAY and
    // closed for it; the last one may still be open, idle.
    assert!(s.h2.goaways >= c.created - 1, "{s:?}");
    assert_eq!(c.closed.get(CloseReason::GoAway), s.h2.goaways, "{s:?}");
    assert_eq!(c.closed.total() + s.pool.idle as u64, c.created, "{s:?}");
    assert_eq!(
        s.h2.refused, s.h2.retried,
        "every refused stream was retried: {s:?}"
    );
    assert_eq!(c.requests, 400 + c.retries);
    assert_eq!(c.closed.get(CloseReason::Error), 0, "{s:?}");
    eprintln!(
        "nginx: {} connections, {} GOAWAYs, {} refused streams retried",
        c.created, s.h2.goaways, s.h2.retried
    );
    let _ = std::fs::remove_dir_all(&dir);
}
