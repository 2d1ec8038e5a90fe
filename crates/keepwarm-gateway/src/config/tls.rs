//! Upstream TLS trust: `Providers[].tls.ca_file` (a provider's own extra
//! roots) and `SSL_CERT_FILE` (extra roots for every provider), both PEM
//! files added to the built-in roots.

use std::path::{Path, PathBuf};

use keepwarm::rustls::pki_types::pem::PemObject;
use keepwarm::CertificateDer;

use super::values::{err, quoted};
use super::ConfigError;

/// `Providers[].tls`; defaults in brackets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProviderTls {
    /// `ca_file` [none]: a PEM file of CA certificates trusted for this
    /// provider only, besides the built-in roots (and `SSL_CERT_FILE`'s).
    /// Read when the gateway starts and on each reload.
    pub ca_file: Option<PathBuf>,
}

/// `Providers[i].tls.ca_file`, found at `path`, as expanded and as
/// written: the path of a PEM file, not empty.
pub(crate) fn ca_file(expanded: String, written: &str, path: &str) -> Result<PathBuf, ConfigError> {
    if expanded.is_empty() {
        let msg = format!("expected the path of a PEM file, got {}", quoted(written));
        return Err(err(path, msg));
    }
    Ok(expanded.into())
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
    fn ca_file_is_expanded_and_checked_at_its_path() {
        use crate::config::{parse, parse_all, tests::env_of};
        let doc = |tls: &str| {
            format!(
                r#"{{"Providers": [{{"name": "a", "api_base_url": "https://a", "api_key": "k", "tls": {tls}}}]}}"#
            )
        };
        let env = env_of(&[("CA", "/etc/ca.pem"), ("EMPTY", "")]);
        let (c, w) = parse(&doc(r#"{"ca_file": "$CA", "verify": false}"#), &env).unwrap();
        assert_eq!(c.providers[0].tls.ca_file, Some("/etc/ca.pem".into()));
        assert_eq!(w, ["unknown key Providers[0].tls.verify (ignored)"]);
        let (c, _) = parse(&doc(r#"{"ca_file": null}"#), &env).unwrap();
        assert_eq!(c.providers[0].tls, ProviderTls::default());
        let errors = |tls: &str| -> Vec<String> {
            let r = parse_all(&doc(tls), &env).unwrap_err();
            r.errors.iter().map(|e| e.to_string()).collect()
        };
        assert_eq!(
            errors(r#"{"ca_file": "$EMPTY"}"#),
            [r#"Providers[0].tls.ca_file: expected the path of a PEM file, got "$EMPTY""#]
        );
        assert_eq!(
            errors(r#"{"ca_file": 5}"#),
            ["Providers[0].tls.ca_file: expected a string, got 5"]
        );
        assert_eq!(
            errors(r#""/ca.pem""#),
            [r#"Providers[0].tls: expected an object, got "/ca.pem""#]
        );
    }

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
