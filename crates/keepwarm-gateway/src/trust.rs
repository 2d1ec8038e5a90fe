//! Which roots the gateway trusts upstream: the built-in ones (unless a
//! test turns them off), extra ones given to the state (tests, the demo),
//! `SSL_CERT_FILE` for every provider, and a provider's own
//! `tls.ca_file` — which gets that provider a TLS configuration of its own.

use std::path::Path;
use std::sync::Arc;

use keepwarm::{rustls::ClientConfig, CertificateDer, Profile};

use crate::config::tls::load_pem_roots;
use crate::registry::Provider;

/// The roots every provider trusts.
#[derive(Clone, Debug)]
pub(crate) struct Trust {
    extra: Vec<CertificateDer<'static>>,
    built_in: bool,
}

impl Trust {
    /// `extra` roots plus those of `ssl_cert_file`; the error names
    /// `SSL_CERT_FILE` and the file.
    pub(crate) fn new(
        mut extra: Vec<CertificateDer<'static>>,
        built_in: bool,
        ssl_cert_file: Option<&Path>,
    ) -> Result<Trust, String> {
        if let Some(path) = ssl_cert_file {
            extra.extend(load_pem_roots(path).map_err(|e| format!("SSL_CERT_FILE: {e}"))?);
        }
        Ok(Trust { extra, built_in })
    }

    /// The TLS configuration shared by providers without a `ca_file`.
    pub(crate) fn shared(&self) -> Result<Arc<ClientConfig>, keepwarm::Error> {
        keepwarm::tls_config(&self.extra, self.built_in)
    }

    /// `p`'s client profile, with a TLS configuration of its own when it
    /// has a `ca_file`.
    pub(crate) fn profile(&self, p: &Provider) -> Result<Profile, String> {
        let mut profile = p.profile();
        if !p.ca_roots.is_empty() {
            let roots = [&self.extra[..], &p.ca_roots[..]].concat();
            let tls = keepwarm::tls_config(&roots, self.built_in)
                .map_err(|e| format!("provider \"{}\": tls.ca_file: {e}", p.name))?;
            profile.tls = Some(tls);
        }
        Ok(profile)
    }
}
