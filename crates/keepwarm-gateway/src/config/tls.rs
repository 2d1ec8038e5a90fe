//! Upstream TLS trust: `Providers[].tls.ca_file` (a provider's own extra
//! roots) and `SSL_CERT_FILE` (extra roots for every provider), both PEM
//! files added to the built-in roots.

use std::path::{Path, PathBuf};

use keepwarm::rustls::pki_types::pem::PemObject;
use keepwarm::CertificateDer;

use super::parse::{Env, Field, Obj};
use super::ConfigError;

/// `Providers[].tls`; defaults in brackets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderTls {
    /// `ca_file` [none]: a PEM file of CA certificates trusted for this
    /// provider only, besides the built-in roots (and `SSL_CERT_FILE`'s).
    /// Read when the gateway starts and on each reload.
    pub ca_file: Option<PathBuf>,
}

/// Reads `Providers[i].tls` (`$VAR` expanded in `ca_file`).
pub(crate) fn parse(
    f: Field<'_>,
    env: Env<'_>,
    w: &mut Vec<String>,
) -> Result<ProviderTls, ConfigError> {
    let mut o = Obj::new(f)?;
    let mut tls = ProviderTls::default();
    if let Some(f) = o.get("ca_file") {
        let path = f.nullable(|f| f.string(env))?;
        if path.as_deref() == Some("") {
            return Err(f.fail("expected the path of a PEM file"));
        }
        tls.ca_file = path.map(PathBuf::from);
    }
    o.finish(w, "");
    Ok(tls)
}

/// The certificates of PEM file `path`; the error names the file and what
/// is wrong with it (unreadable, bad PEM, no certificate in it).
pub fn load_pem_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let shown = path.display();
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {shown}: {e}"))?;
    let certs = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{shown} is not a valid PEM file: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{shown} holds no PEM CERTIFICATE block"));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_files_are_read_and_bad_ones_named() {
        let dir = std::env::temp_dir().join(format!("keepwarm-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert_pem, _, der) = keepwarm_testkit::self_signed_pem();
        let good = dir.join("ca.pem");
        std::fs::write(&good, format!("{cert_pem}{cert_pem}")).unwrap();
        assert_eq!(load_pem_roots(&good).unwrap(), vec![der.clone(), der]);
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let e = load_pem_roots(&empty).unwrap_err();
        assert!(
            e.contains("empty.pem holds no PEM CERTIFICATE block"),
            "{e}"
        );
        let e = load_pem_roots(&dir.join("missing.pem")).unwrap_err();
        assert!(
            e.starts_with("cannot read ") && e.contains("missing.pem"),
            "{e}"
        );
        std::fs::remove_dir_all(&dir).ok();
    }
}
