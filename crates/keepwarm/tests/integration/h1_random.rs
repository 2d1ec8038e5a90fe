//! The HTTP/1.1 decoder against seeded random input through real sockets:
//! chunked bodies cut into random pieces arrive whole and the connection is
//! reused; mangled responses end in a response or an error, never a panic
//! or a hang.

use std::sync::atomic::Ordering;
use std::time::Duration;

use http_body_util::BodyExt;
use keepwarm::Client;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::scripted::{serve, Reply};

/// `bytes` cut at random places into at most `max` pieces.
fn cut(rng: &mut StdRng, bytes: &[u8], max: usize) -> Vec<Vec<u8>> {
    let mut at: Vec<usize> = (0..rng.random_range(0..max))
        .map(|_| rng.random_range(0..=bytes.len()))
        .collect();
    at.extend([0, bytes.len()]);
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| bytes[w[0]..w[1]].to_vec()).collect()
}

/// A chunked response carrying `body` in random chunk sizes, sometimes with
/// chunk extensions and a trailer.
fn chunked(rng: &mut StdRng, body: &[u8], trailer: Option<&str>) -> Vec<u8> {
    let mut out = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    let mut rest = body;
    while !rest.is_empty() {
        let n = rng.random_range(1..=700).min(rest.len());
        let ext = if rng.random_bool(0.2) {
            ";x=\"y z\""
        } else {
            ""
        };
        out.extend_from_slice(format!("{n:x}{ext}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
    }
    out.extend_from_slice(b"0\r\n");
    if let Some(t) = trailer {
        out.extend_from_slice(format!("x-sum: {t}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

#[tokio::test]
async fn chunked_bodies_cut_anywhere_arrive_whole_on_one_connection() {
    let mut rng = StdRng::seed_from_u64(9);
    let mut cases = Vec::new();
    let mut replies = Vec::new();
    for i in 0..300 {
        let len = rng.random_range(0..5000);
        let body: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let trailer = (i % 3 == 0).then(|| i.to_string());
        let wire = chunked(&mut rng, &body, trailer.as_deref());
        replies.push(Reply {
            pieces: cut(&mut rng, &wire, 40),
            close: false,
        });
        cases.push((body, trailer));
    }
    let s = serve(replies).await;
    let (url, accepted) = (s.url, s.accepted);
    let client = Client::new().unwrap();
    for (i, (body, trailer)) in cases.into_iter().enumerate() {
        let resp = client.get(&url).await.unwrap();
        let got = resp.into_body().collect().await.unwrap();
        let trailers = got.trailers().cloned();
        assert_eq!(got.to_bytes(), body, "case {i}");
        assert_eq!(
            trailers.map(|t| t["x-sum"].to_str().unwrap().to_string()),
            trailer,
            "case {i}"
        );
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn mangled_responses_are_answers_or_errors_never_panics_or_hangs() {
    let mut rng = StdRng::seed_from_u64(11);
    let mut replies = Vec::new();
    for _ in 0..300 {
        let body: Vec<u8> = (0..rng.random_range(0..300))
            .map(|_| rng.random())
            .collect();
        let mut wire = if rng.random_bool(0.5) {
            chunked(&mut rng, &body, None)
        } else {
            let mut w =
                format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", body.len()).into_bytes();
            w.extend_from_slice(&body);
            w
        };
        // Flip, drop or insert bytes anywhere, head included.
        for _ in 0..rng.random_range(1..6) {
            let at = rng.random_range(0..wire.len());
            match rng.random_range(0..3) {
                0 => wire[at] = rng.random(),
                1 => {
                    wire.remove(at);
                }
                _ => wire.insert(at, rng.random()),
            }
            if wire.is_empty() {
                wire.push(b'H');
            }
        }
        replies.push(Reply {
            pieces: cut(&mut rng, &wire, 8),
            close: true,
        });
    }
    let s = serve(replies).await;
    let (url, accepted) = (s.url, s.accepted);
    // Every connection is closed by the server after one reply, so nothing
    // waits for bytes that never come longer than the close.
    let client = Client::builder()
        .timeout(Duration::from_secs(5))
        .max_retries(0)
        .build()
        .unwrap();
    let (mut answers, mut errors) = (0, 0);
    for i in 0..300 {
        let outcome = tokio::time::timeout(Duration::from_secs(10), async {
            let resp = client.get(&url).await?;
            resp.into_body().bytes().await
        })
        .await
        .unwrap_or_else(|_| panic!("case {i} hung"));
        match outcome {
            Ok(_) => answers += 1,
            Err(e) => {
                // Errors name the host and say what went wrong.
                assert!(format!("{e:#}").contains("127.0.0.1"), "case {i}: {e:#}");
                errors += 1;
            }
        }
    }
    assert_eq!(answers + errors, 300);
    assert!(
        errors > 0 && answers > 0,
        "{answers} answers, {errors} errors"
    );
    // A reply that parsed whole leaves its connection pooled until the
    // server's close is seen; a request sent on it in that window fails
    // (no retries here) without a reply of its own, so accepts <= requests.
    assert!(accepted.load(Ordering::SeqCst) <= 300);
}
