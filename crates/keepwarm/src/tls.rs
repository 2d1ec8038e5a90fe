//! The client's one shared rustls configuration (ring provider), so TLS
//! sessions resume across connections.

use std::sync::Arc;

use rustls::client::ClientConfig;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;

use crate::error::Error;

/// Builds the shared `ClientConfig`: webpki roots unless `extra_roots_only`,
/// plus `extra_roots`; ALPN `http/1.1`; the default in-memory session cache.
pub(crate) fn client_config(
    extra_roots: &[CertificateDer<'static>],
    webpki_roots: bool,
) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    if webpki_roots {
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    }
    for cert in extra_roots {
        roots
            .add(cert.clone())
            .map_err(|e| Error::builder(format!("invalid root certificate: {e}")))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::builder(format!("TLS configuration: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
