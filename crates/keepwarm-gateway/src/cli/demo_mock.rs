//! The mock provider behind one `keepwarm demo` mode, and what its server
//! counted: the testkit's Anthropic mock (HTTP/1.1 over TLS) for the pool
//! columns, or for the HTTP/2 column the testkit `H2Server` over TLS
//! offering ALPN `h2, http/1.1` (as the big providers' front ends do) and
//! answering every request with the same Anthropic message JSON.

use std::net::SocketAddr;

use keepwarm::CertificateDer;
use keepwarm_testkit::{H2Server, MockApi, MockProvider};
use serde_json::json;

/// The reply text both mocks answer with (the Anthropic mock's default).
const TEXT: &str = "Hello from the mock provider";

/// A running demo mock provider.
pub(crate) enum DemoMock {
    /// The testkit's Anthropic mock: HTTP/1.1 over TLS.
    Http1(MockProvider),
    /// The testkit's HTTP/2 server over TLS (ALPN `h2, http/1.1`).
    Http2(H2Server),
}

/// What a mock's server counted since it started.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ServerCounts {
    /// Connections it accepted and served (any protocol).
    pub(crate) connections: u64,
    /// Full TLS handshakes.
    pub(crate) tls_full: u64,
    /// Resumed TLS handshakes.
    pub(crate) tls_resumed: u64,
    /// HTTP/2 streams served; `None` for the HTTP/1.1 mock.
    pub(crate) streams: Option<u64>,
    /// Every connection it accepted finished its handshakes (no TLS or
    /// HTTP/2 handshake still under way).
    pub(crate) settled: bool,
}

/// The Anthropic message the HTTP/2 mock answers with (the HTTP/1.1 mock's
/// reply to the demo's request, give or take its request number).
fn message_json() -> String {
    json!({
        "id": "msg_mock_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-demo",
        "content": [{"type": "text", "text": TEXT}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": 22, "output_tokens": 5},
    })
    .to_string()
}

impl DemoMock {
    /// Starts the HTTP/2 mock when `http2`, else the Anthropic HTTP/1.1 mock.
    pub(crate) async fn start(http2: bool) -> DemoMock {
        if http2 {
            let server = H2Server::builder()
                .tls(true)
                .http1_fallback(true)
                .content_type("application/json")
                .body(message_json())
                .start()
                .await;
            DemoMock::Http2(server)
        } else {
            let mock = MockProvider::builder(MockApi::Anthropic)
                .tls(true)
                .start()
                .await;
            DemoMock::Http1(mock)
        }
    }

    /// The server's address.
    pub(crate) fn addr(&self) -> SocketAddr {
        match self {
            DemoMock::Http1(m) => m.upstream().addr(),
            DemoMock::Http2(s) => s.addr(),
        }
    }

    /// Its self-signed certificate, for the gateway to trust.
    pub(crate) fn ca_der(&self) -> CertificateDer<'static> {
        match self {
            DemoMock::Http1(m) => m.upstream().ca_der(),
            DemoMock::Http2(s) => s.ca_der(),
        }
    }

    /// The API key the gateway sends (only the HTTP/1.1 mock checks it).
    pub(crate) fn key(&self) -> &str {
        match self {
            DemoMock::Http1(m) => m.key(),
            DemoMock::Http2(_) => "sk-mock-h2",
        }
    }

    /// The server's number of the connection that carried the first
    /// request, for the HTTP/1.1 mock; `None` for the HTTP/2 mock (it keeps
    /// no per-request log) or before any request.
    pub(crate) fn first_request_conn(&self) -> Option<u64> {
        match self {
            DemoMock::Http1(m) => m.upstream().stats().request_log.first().map(|r| r.conn),
            DemoMock::Http2(_) => None,
        }
    }

    /// What the server counted so far.
    pub(crate) fn counts(&self) -> ServerCounts {
        match self {
            DemoMock::Http1(m) => {
                let s = m.upstream().stats();
                ServerCounts {
                    connections: s.accepted,
                    tls_full: s.tls_full,
                    tls_resumed: s.tls_resumed,
                    streams: None,
                    settled: s.tls_full + s.tls_resumed + s.tls_failed == s.accepted,
                }
            }
            DemoMock::Http2(server) => {
                let s = server.stats();
                ServerCounts {
                    connections: s.connections + s.http1_connections,
                    tls_full: s.tls_handshakes - s.tls_resumed,
                    tls_resumed: s.tls_resumed,
                    streams: Some(s.streams),
                    settled: s.tls_handshakes == s.connections + s.http1_connections,
                }
            }
        }
    }
}
