//! keepwarm: an HTTP/1.1 and HTTPS client whose keep-alive pool counts real
//! sockets.
//!
//! - One pool per [`Client`], keyed by provider label, scheme, host and port
//!   ([`Key`]), with the limits of Node's `http.Agent`: `maxSockets`,
//!   `maxFreeSockets`, `freeSocketTimeout`, `maxSocketLifetime`,
//!   `timeout`, `keepAliveMsecs` (see [`ClientBuilder`]).
//! - A connection returns to the pool only after its response was read to
//!   the end and the protocol allows reuse; an idle one is checked before
//!   reuse; the server's `Keep-Alive: timeout=N, max=M` is obeyed.
//! - Retries only when safe: on a reused connection, any request that was
//!   not written at all, and idempotent ones (or with `Idempotency-Key`)
//!   that got no response byte.
//! - Through an HTTP proxy ([`Proxy`], [`ClientBuilder::proxy`],
//!   [`ClientBuilder::proxy_from_env`], per label in [`Profile`]): one
//!   `CONNECT` tunnel per pooled HTTPS connection, absolute-form requests
//!   over pooled connections to the proxy for plain HTTP.
//! - Every response carries a [`ConnectionInfo`]; [`Client::stats`] has the
//!   counters, TLS handshakes full and resumed included.
//!
//! ```no_run
//! # async fn demo() -> Result<(), keepwarm::Error> {
//! let client = keepwarm::Client::builder().max_sockets(20).build()?;
//! for _ in 0..3 {
//!     let resp = client.get("https://example.com/").await?;
//!     let info = *resp.extensions().get::<keepwarm::ConnectionInfo>().unwrap();
//!     let body = resp.into_body().bytes().await?; // read to the end: reusable
//!     println!("{} bytes, connection {} reused: {}", body.len(), info.id, info.reused);
//! }
//! # Ok(()) }
//! ```

mod body;
mod builder;
mod client;
mod conn;
mod conn_stats;
mod error;
mod h1;
mod hints;
mod http2;
mod info;
mod key;
mod origin;
mod pooled;
mod profile;
mod protocol;
mod proxy;
mod proxy_rules;
mod tls;
mod tunnel;
mod warm;

pub use body::ResponseBody;
pub use builder::ClientBuilder;
pub use client::{Client, KeyStats, Label, LabelReport, LabelStats, TlsCounts};
pub use conn_stats::{ConnStats, H2Counts, OpenConnection};
pub use error::Error;
pub use info::{ConnectionInfo, Handshake};
pub use keepwarm_pool::{CloseReason, ConnectionSnapshot, DestroyReport, KeySnapshot, PoolOptions};
pub use key::{Key, Scheme};
pub use profile::Profile;
pub use protocol::{ConnProtocol, Protocol};
pub use proxy::{redact_url, Proxy, ProxyChoice};
pub use proxy_rules::ProxyRules;
pub use rustls;
pub use rustls_pki_types::CertificateDer;
pub use warm::WarmReport;

/// The TLS configuration a [`ClientBuilder`] builds by default: the ring
/// provider, ALPN `http/1.1`, webpki roots when `built_in_roots`, plus
/// `extra_roots`. Share one between clients (with
/// [`ClientBuilder::tls_config`]) so TLS sessions resume across them.
pub fn tls_config(
    extra_roots: &[CertificateDer<'static>],
    built_in_roots: bool,
) -> Result<std::sync::Arc<rustls::ClientConfig>, Error> {
    tls::client_config(extra_roots, built_in_roots)
}

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
