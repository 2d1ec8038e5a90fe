//! `Proxy`: an HTTP proxy parsed from `http://[user:pass@]host[:port]`,
//! with its `Proxy-Authorization: Basic …` header pre-built (sensitive), and
//! `ProxyChoice`, a label's (provider's) override of the client's proxies.
//!
//! The password is never printed: `Display` and `Debug` show
//! `http://user:***@host:port`.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use http::HeaderValue;

use crate::error::Error;

/// An HTTP proxy (`http://[user:pass@]host[:port]`). Cheap to clone.
///
/// HTTPS targets are reached through one `CONNECT` tunnel per pooled
/// connection; plain HTTP targets are sent to it in absolute form over
/// pooled connections. Connections through different proxies (or
/// credentials), and direct ones, never share a pool key.
#[derive(Clone)]
pub struct Proxy {
    inner: Arc<Inner>,
}

struct Inner {
    /// Host name or IP literal, without brackets.
    host: String,
    port: u16,
    /// The user name, decoded (for display only).
    user: Option<String>,
    /// `Basic base64(user:pass)`, marked sensitive.
    auth: Option<HeaderValue>,
}

impl Proxy {
    /// Parses `http://[user:pass@]host[:port][/]`. A missing scheme means
    /// `http://` (as curl and Go read proxy variables); the port defaults
    /// to 80. `user` and `pass` are percent-decoded. Other schemes
    /// (`https://`, `socks5://`) are an error: only `http://` proxies are
    /// supported.
    pub fn parse(url: &str) -> Result<Proxy, Error> {
        let bad = |why: &str| {
            Error::builder(format!(
                "invalid proxy URL `{}`: {why}",
                redact_url(url.trim())
            ))
        };
        let s = url.trim();
        let rest = match s.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => {
                return Err(bad(&format!(
                    "scheme `{scheme}://` is not supported (only http:// proxies are)"
                )))
            }
            None => s,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err(bad("a proxy URL has no path or query"));
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (host, port) = split_host_port(hostport).map_err(|why| bad(&why))?;
        let (user, auth) = match userinfo {
            None => (None, None),
            Some(u) => {
                let (user, pass) = u.split_once(':').unwrap_or((u, ""));
                let user = percent_decode(user).map_err(|why| bad(&why))?;
                let pass = percent_decode(pass).map_err(|why| bad(&why))?;
                let mut creds = user.clone().into_bytes();
                creds.push(b':');
                creds.extend_from_slice(pass.as_bytes());
                let mut value = HeaderValue::from_str(&format!("Basic {}", base64(&creds)))
                    .map_err(|_| bad("credentials do not make a header value"))?;
                value.set_sensitive(true);
                (Some(user), Some(value))
            }
        };
        Ok(Proxy {
            inner: Arc::new(Inner {
                host,
                port,
                user,
                auth,
            }),
        })
    }

    /// The proxy's host (name or IP literal, without brackets).
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// The proxy's port (default 80).
    pub fn port(&self) -> u16 {
        self.inner.port
    }

    /// The `Proxy-Authorization` value (`Basic …`, marked sensitive), when
    /// the URL had `user:pass@`.
    pub fn authorization(&self) -> Option<&HeaderValue> {
        self.inner.auth.as_ref()
    }

    /// `host:port`, with brackets around an IPv6 literal.
    pub(crate) fn authority(&self) -> String {
        authority(&self.inner.host, self.inner.port)
    }
}

/// `host:port`, with brackets around an IPv6 literal.
pub(crate) fn authority(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl PartialEq for Proxy {
    fn eq(&self, other: &Proxy) -> bool {
        let (a, b) = (&*self.inner, &*other.inner);
        a.host.eq_ignore_ascii_case(&b.host)
            && a.port == b.port
            && a.auth.as_ref().map(HeaderValue::as_bytes)
                == b.auth.as_ref().map(HeaderValue::as_bytes)
    }
}

impl Eq for Proxy {}

impl Hash for Proxy {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.inner.host.to_ascii_lowercase().hash(state);
        self.inner.port.hash(state);
        self.inner
            .auth
            .as_ref()
            .map(HeaderValue::as_bytes)
            .hash(state);
    }
}

impl fmt::Display for Proxy {
    /// `http://user:***@host:port` (the password never shows).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("http://")?;
        if let Some(user) = &self.inner.user {
            write!(f, "{user}:***@")?;
        }
        f.write_str(&self.authority())
    }
}

impl fmt::Debug for Proxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proxy(\"{self}\")")
    }
}

impl std::str::FromStr for Proxy {
    type Err = Error;

    /// As [`Proxy::parse`].
    fn from_str(s: &str) -> Result<Proxy, Error> {
        Proxy::parse(s)
    }
}

/// A label's (provider's) proxy, set in its [`Profile`](crate::Profile).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ProxyChoice {
    /// Use the client's proxies ([`ClientBuilder::proxy`](crate::ClientBuilder::proxy),
    /// [`proxy_from_env`](crate::ClientBuilder::proxy_from_env)). The default.
    #[default]
    Inherit,
    /// Connect directly, whatever the client's proxies.
    Direct,
    /// Send every request of the label through this proxy.
    Via(Proxy),
}

/// `url` with the password of its userinfo replaced by `***`, for
/// messages and listings: `http://u:***@p:3128`. Strings without
/// userinfo are returned unchanged.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_string();
    };
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let scheme = scheme.map(|s| format!("{s}://")).unwrap_or_default();
    format!("{scheme}{user}:***@{host}{tail}")
}

/// Splits `host[:port]` (`[v6]:port` too); the port defaults to 80.
fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = s.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or_else(|| "unclosed `[` in the host".to_string())?;
        match after {
            "" => (host, None),
            p => match p.strip_prefix(':') {
                Some(p) => (host, Some(p)),
                None => return Err(format!("unexpected `{p}` after the host")),
            },
        }
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    if host.is_empty() {
        return Err("no host".to_string());
    }
    let port = match port {
        None => 80,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("bad port `{p}`"))?,
    };
    Ok((host.to_string(), port))
}

/// Decodes `%XX` escapes (UTF-8).
fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "a bad %-escape in the credentials".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "credentials are not UTF-8".to_string())
}

/// Standard base64 with padding.
fn base64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= n {
                out.push(T[(v >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ] {
            assert_eq!(base64(i.as_bytes()), o, "{i}");
        }
    }

    #[test]
    fn parses_host_port_and_credentials() {
        let p = Proxy::parse("http://al%40x:p%3Ass@proxy.local:3128/").unwrap();
        assert_eq!((p.host(), p.port()), ("proxy.local", 3128));
        // base64("al@x:p:ss")
        assert_eq!(p.authorization().unwrap(), "Basic YWxAeDpwOnNz");
        assert!(p.authorization().unwrap().is_sensitive());
        let p = Proxy::parse("10.0.0.1").unwrap();
        assert_eq!(
            (p.host(), p.port(), p.authorization()),
            ("10.0.0.1", 80, None)
        );
        let p = Proxy::parse("HTTP://[::1]:8080").unwrap();
        assert_eq!((p.host(), p.port()), ("::1", 8080));
        assert_eq!(p.to_string(), "http://[::1]:8080");
    }

    #[test]
    fn the_password_never_prints() {
        let p = Proxy::parse("http://user:s3cret@p:3128").unwrap();
        assert_eq!(p.to_string(), "http://user:***@p:3128");
        assert_eq!(format!("{p:?}"), "Proxy(\"http://user:***@p:3128\")");
        assert!(!format!("{p} {p:?}").contains("s3cret"));
        let e = Proxy::parse("https://user:s3cret@p:3128").unwrap_err();
        assert!(!e.to_string().contains("s3cret"), "{e}");
        assert_eq!(redact_url("http://u:pw@h:1/x"), "http://u:***@h:1/x");
        assert_eq!(redact_url("http://h:1/x@y"), "http://h:1/x@y");
        assert_eq!(redact_url("u:pw@h"), "u:***@h");
    }

    #[test]
    fn unsupported_and_malformed_urls_say_why() {
        let e = Proxy::parse("https://p:3128").unwrap_err();
        assert!(e.is_builder());
        assert!(e.to_string().contains("only http:// proxies"), "{e}");
        let e = Proxy::parse("socks5://p:1080").unwrap_err();
        assert!(e.to_string().contains("`socks5://`"), "{e}");
        for (url, why) in [
            ("http://p:99999", "bad port `99999`"),
            ("http://p:0", "bad port `0`"),
            ("http://:3128", "no host"),
            ("http://p:3128/path", "no path"),
            ("http://[::1", "unclosed"),
            ("http://u:%zz@p", "bad %-escape"),
        ] {
            let e = Proxy::parse(url).unwrap_err().to_string();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn equality_covers_credentials_not_case() {
        let a = Proxy::parse("http://P:3128").unwrap();
        let b = Proxy::parse("http://p:3128").unwrap();
        let c = Proxy::parse("http://u:x@p:3128").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        let hash = |p: &Proxy| {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            p.hash(&mut h);
            h.finish()
        };
        assert_eq!(hash(&a), hash(&b));
    }
}
