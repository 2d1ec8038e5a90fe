//! The pool key of an HTTP origin: provider label, scheme, host and port,
//! and the proxy that connections go through (if any).

use std::fmt;
use std::sync::Arc;

use http::Uri;
use keepwarm_pool::PoolKey;

use crate::error::Error;
use crate::proxy::Proxy;

/// `http` or `https`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain TCP.
    Http,
    /// TLS.
    Https,
}

impl Scheme {
    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// Connections under one key are interchangeable: same label, scheme, host
/// and port, same proxy (or none), and the client's one TLS configuration.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Key {
    /// The provider label, e.g. `anthropic`; defaults to the host.
    pub label: Arc<str>,
    /// `http` or `https`.
    pub scheme: Scheme,
    /// Host name or IP literal, without brackets.
    pub host: Arc<str>,
    /// Port, defaulted from the scheme.
    pub port: u16,
    /// The proxy its connections go through; `None` (the default) for
    /// direct connections.
    pub proxy: Option<Proxy>,
}

impl PoolKey for Key {
    fn label(&self) -> &str {
        &self.label
    }
}

impl fmt::Display for Key {
    /// `anthropic (api.example.com:443)`, or through a proxy
    /// `anthropic (api.example.com:443 via http://user:***@proxy:3128)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}:{}", self.label, self.host, self.port)?;
        if let Some(p) = &self.proxy {
            write!(f, " via {p}")?;
        }
        f.write_str(")")
    }
}

impl Key {
    /// The key for an absolute URI; `label` defaults to the host; no proxy.
    pub fn from_uri(uri: &Uri, label: Option<&Arc<str>>) -> Result<Key, Error> {
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::Http,
            Some("https") => Scheme::Https,
            Some(other) => {
                return Err(Error::invalid_url(format!(
                    "unsupported scheme `{other}` in {uri} (use http or https)"
                )))
            }
            None => {
                return Err(Error::invalid_url(format!(
                    "URL `{uri}` has no scheme (use http:// or https://)"
                )))
            }
        };
        let host = match uri.host() {
            Some(h) if !h.is_empty() => h.trim_start_matches('[').trim_end_matches(']'),
            _ => return Err(Error::invalid_url(format!("URL `{uri}` has no host"))),
        };
        let host: Arc<str> = Arc::from(host);
        Ok(Key {
            label: label.cloned().unwrap_or_else(|| host.clone()),
            scheme,
            port: uri.port_u16().unwrap_or(scheme.default_port()),
            host,
            proxy: None,
        })
    }

    /// The `Host` header value: the port only when it is not the default.
    pub(crate) fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.to_string()
        };
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_from_urls() {
        let k = Key::from_uri(&"https://api.example.com/v1".parse().unwrap(), None).unwrap();
        assert_eq!(
            (k.scheme, &*k.host, k.port),
            (Scheme::Https, "api.example.com", 443)
        );
        assert_eq!(k.to_string(), "api.example.com (api.example.com:443)");
        assert_eq!(k.host_header(), "api.example.com");
        let label: Arc<str> = "local".into();
        let k = Key::from_uri(&"http://[::1]:8080/".parse().unwrap(), Some(&label)).unwrap();
        assert_eq!((&*k.host, k.port), ("::1", 8080));
        assert_eq!(k.host_header(), "[::1]:8080");
        assert_eq!(k.to_string(), "local (::1:8080)");
        let mut k = k;
        k.proxy = Some(Proxy::parse("http://u:pw@p:3128").unwrap());
        assert_eq!(k.to_string(), "local (::1:8080 via http://u:***@p:3128)");
    }

    #[test]
    fn bad_urls_say_what_is_wrong() {
        let e = Key::from_uri(&"ftp://x/".parse().unwrap(), None).unwrap_err();
        assert!(e.to_string().contains("unsupported scheme `ftp`"), "{e}");
        let e = Key::from_uri(&"/just/a/path".parse().unwrap(), None).unwrap_err();
        assert!(e.to_string().contains("has no scheme"), "{e}");
    }
}
