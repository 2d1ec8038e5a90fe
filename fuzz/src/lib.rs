//! Shared driver for the stream-translator fuzz targets.
//!
//! The translators are compiled straight from the gateway's source (they
//! are pure and need only `serde_json`), so a fuzz build does not
//! instrument tokio, hyper and rustls too.

#[allow(dead_code, unreachable_pub, missing_docs)]
#[path = "../../crates/keepwarm-gateway/src/translate/mod.rs"]
pub mod translate;

use translate::sse::{SseItem, SseParser};

/// The event cap the targets run with (small, so overflow paths are hit).
pub const CAP: usize = 512;

/// Splits fuzz input into chunks: the first byte picks the chunk size
/// (1 to 64), the rest is the upstream stream.
pub fn chunks(data: &[u8]) -> Vec<&[u8]> {
    match data.split_first() {
        Some((&n, rest)) => rest.chunks(usize::from(n) % 64 + 1).collect(),
        None => Vec::new(),
    }
}

/// Parses translator output; panics if it is not clean SSE.
pub fn events(bytes: &[u8]) -> Vec<SseItem> {
    let mut p = SseParser::new(1 << 24);
    let mut out = Vec::new();
    p.push(bytes, &mut out);
    p.finish(&mut out);
    out.into_iter()
        .map(|i| i.expect("translator output is valid SSE"))
        .collect()
}
