//! Real loopback upstream servers for integration tests of a keep-alive
//! HTTP client pool.
//!
//! [`Upstream`] is a hand-written HTTP/1.1 server (plain or TLS) on
//! `127.0.0.1:0` that counts what really happened on the server side
//! ([`UpstreamStats`]) and injects faults controlled at runtime through
//! [`Knobs`]. A [`handler`](UpstreamBuilder::handler) can compute each
//! response ([`Reply`], optionally streamed piece by piece).
//! [`MockProvider`] builds on that: a mock Anthropic or OpenAI API (JSON and
//! SSE streaming). [`LatencyShim`] is a TCP relay that adds one-way latency.
//! [`H2Server`] is an HTTP/2 server (h2c or TLS with ALPN `h2`, optionally
//! with an HTTP/1.1 fallback) that counts connections, streams, GOAWAYs and
//! refused streams. [`ProxyServer`] is a
//! counting HTTP proxy (`CONNECT` tunnels and absolute-form forwarding).

mod accept;
mod conn;
mod gate;
mod h2server;
mod h2server_h1;
mod h2stats;
mod http1;
mod knobs;
mod mock;
mod proxy;
mod proxy_conn;
mod reply;
mod shim;
mod stats;
mod tls;
mod upstream;
mod wait;

pub use h2server::{H2Server, H2ServerBuilder};
pub use h2stats::H2Stats;
pub use knobs::{KnobSettings, Knobs};
pub use mock::{
    anthropic_sse_body, openai_sse_body, refused_url, Fault, FaultyProvider, MockApi, MockProvider,
    MockProviderBuilder, MOCK_TOOL_ARGUMENTS,
};
pub use proxy::{ProxyServer, ProxyServerBuilder, ProxyStats};
pub use reply::Reply;
pub use shim::LatencyShim;
pub use stats::{RequestRecord, UpstreamStats};
pub use tls::{cert_pem, install_crypto_provider, self_signed_pem};
pub use upstream::{Upstream, UpstreamBuilder};
