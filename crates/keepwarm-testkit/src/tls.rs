//! Self-signed certificate (rcgen) and rustls server configuration.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::ServerConfig;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Installs rustls's *ring* provider as the process-wide default crypto
/// provider, unless one is already installed. Safe to call many times.
pub fn install_crypto_provider() {
    if CryptoProvider::get_default().is_none() {
        // Losing a race with another installer is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// A fresh self-signed certificate for `localhost` and `127.0.0.1`, as
/// (certificate PEM, private key PEM, certificate DER to trust as a root):
/// for servers the tests start themselves (e.g. nginx).
///
/// # Panics
/// If rcgen fails to generate a key or certificate.
pub fn self_signed_pem() -> (String, String, CertificateDer<'static>) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("rcgen: generate self-signed certificate");
    (
        ck.cert.pem(),
        ck.signing_key.serialize_pem(),
        ck.cert.der().clone(),
    )
}

/// `der` as a PEM `CERTIFICATE` block (64-column base64), e.g. to write a
/// test server's certificate to a CA file.
pub fn cert_pem(der: &CertificateDer<'_>) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// A self-signed certificate for `localhost` and `127.0.0.1` with its key.
pub(crate) struct SelfSigned {
    pub(crate) cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl std::fmt::Debug for SelfSigned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SelfSigned").finish_non_exhaustive()
    }
}

impl SelfSigned {
    /// Generates a fresh certificate.
    ///
    /// # Panics
    /// If rcgen fails to generate a key or certificate.
    pub(crate) fn generate() -> Self {
        let ck = rcgen::generate_simple_self_signed(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
        ])
        .expect("rcgen: generate self-signed certificate");
        Self {
            cert: ck.cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()),
        }
    }

    /// A rustls server config (ring provider, ALPN `http/1.1`, TLS 1.3
    /// tickets and TLS 1.2 session cache enabled) serving this certificate.
    ///
    /// # Panics
    /// If rustls rejects the configuration.
    pub(crate) fn server_config(&self) -> Arc<ServerConfig> {
        self.server_config_with_alpn(vec![b"http/1.1".to_vec()])
    }

    /// [`server_config`](Self::server_config) offering these ALPN
    /// protocols instead.
    ///
    /// # Panics
    /// If rustls rejects the configuration.
    pub(crate) fn server_config_with_alpn(&self, alpn: Vec<Vec<u8>>) -> Arc<ServerConfig> {
        install_crypto_provider();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("rustls: protocol versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![self.cert.clone()],
                PrivateKeyDer::Pkcs8(self.key.clone_key()),
            )
            .expect("rustls: server certificate");
        config.alpn_protocols = alpn;
        config.ticketer = rustls::crypto::ring::Ticketer::new().expect("rustls: ticketer");
        Arc::new(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    #[test]
    fn cert_pem_round_trips_and_matches_rcgen() {
        let (pem, _, der) = self_signed_pem();
        assert_eq!(cert_pem(&der), pem.replace("\r\n", "\n"));
        let back = CertificateDer::from_pem_slice(cert_pem(&der).as_bytes()).unwrap();
        assert_eq!(back, der);
    }
}
