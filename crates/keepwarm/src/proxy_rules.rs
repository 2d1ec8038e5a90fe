//! `ProxyRules`: which proxy (if any) a target uses — one proxy for
//! everything, or the `HTTPS_PROXY` / `HTTP_PROXY` / `ALL_PROXY` /
//! `NO_PROXY` environment with curl's and Go's meaning. Reading the
//! environment is a pure function over a lookup closure, so it is tested
//! without touching the process environment.

use std::net::IpAddr;

use crate::error::Error;
use crate::key::Scheme;
use crate::proxy::{redact_url, Proxy};

/// The client's proxies. Default: none (every request goes direct).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxyRules {
    http: Option<Proxy>,
    https: Option<Proxy>,
    no_proxy: NoProxy,
    /// Loopback targets may go through the proxy.
    loopback: bool,
}

impl ProxyRules {
    /// Every request through `proxy` (no exceptions, loopback included).
    pub fn all(proxy: Proxy) -> ProxyRules {
        ProxyRules {
            http: Some(proxy.clone()),
            https: Some(proxy),
            no_proxy: NoProxy::default(),
            loopback: true,
        }
    }

    /// Whether loopback targets (`localhost`, `*.localhost`, `127.0.0.0/8`,
    /// `::1`) may go through the proxy. Default `false` for rules read
    /// from the environment (Go's rule: a proxy variable meant for the
    /// outside never captures local services), `true` for
    /// [`all`](Self::all).
    pub fn with_loopback(mut self, on: bool) -> ProxyRules {
        self.loopback = on;
        self
    }

    /// The rules of the process environment; see
    /// [`from_lookup`](Self::from_lookup).
    pub fn from_env() -> Result<ProxyRules, Error> {
        ProxyRules::from_lookup(|name| std::env::var(name).ok())
    }

    /// The rules of an environment given by `var` (name → value):
    ///
    /// - an `https` target uses `https_proxy`/`HTTPS_PROXY`, else
    ///   `all_proxy`/`ALL_PROXY`; an `http` target uses
    ///   `http_proxy`/`HTTP_PROXY`, else `all_proxy`/`ALL_PROXY` (the
    ///   lower-case name wins when both are set, as in curl; empty means
    ///   unset);
    /// - `no_proxy`/`NO_PROXY` lists targets that go direct: a comma list
    ///   of host names (`example.com` and `.example.com` both match the
    ///   name and its subdomains; `*.example.com` too), IP literals, CIDR
    ///   blocks (`10.0.0.0/8`), each with an optional `:port`; `*` alone
    ///   means everything. Names are compared as written (no DNS lookup);
    /// - loopback targets go direct (Go's rule; see
    ///   [`with_loopback`](Self::with_loopback)).
    ///
    /// A proxy URL that is not `http://` is an error naming the variable.
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Result<ProxyRules, Error> {
        let get = |lower: &str, upper: &str| -> Option<(String, String)> {
            [lower, upper].into_iter().find_map(|name| {
                var(name)
                    .filter(|v| !v.trim().is_empty())
                    .map(|v| (name.to_string(), v))
            })
        };
        let proxy = |lower: &str, upper: &str| -> Result<Option<Proxy>, Error> {
            match get(lower, upper) {
                None => Ok(None),
                Some((name, value)) => Proxy::parse(&value).map(Some).map_err(|e| {
                    Error::builder(format!(
                        "{name}={}: {}",
                        redact_url(value.trim()),
                        e.to_string()
                            .split_once("`: ")
                            .map_or(e.to_string(), |(_, why)| why.to_string())
                    ))
                }),
            }
        };
        let all = proxy("all_proxy", "ALL_PROXY")?;
        let http = proxy("http_proxy", "HTTP_PROXY")?.or_else(|| all.clone());
        let https = proxy("https_proxy", "HTTPS_PROXY")?.or(all);
        let no_proxy = get("no_proxy", "NO_PROXY")
            .map(|(_, v)| NoProxy::parse(&v))
            .unwrap_or_default();
        Ok(ProxyRules {
            http,
            https,
            no_proxy,
            loopback: false,
        })
    }

    /// No proxy for any target.
    pub fn is_empty(&self) -> bool {
        self.http.is_none() && self.https.is_none()
    }

    /// The proxy for `scheme://host:port`, or `None` to go direct.
    pub fn for_target(&self, scheme: Scheme, host: &str, port: u16) -> Option<&Proxy> {
        let proxy = match scheme {
            Scheme::Http => self.http.as_ref(),
            Scheme::Https => self.https.as_ref(),
        }?;
        let direct = (!self.loopback && is_loopback(host)) || self.no_proxy.matches(host, port);
        (!direct).then_some(proxy)
    }
}

/// `localhost`, a name under it, or a loopback IP literal.
fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host == "localhost" || host.ends_with(".localhost"),
    }
}

/// A parsed `NO_PROXY` list.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct NoProxy {
    everything: bool,
    entries: Vec<Entry>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Target {
    /// A name, lower case, without leading `.` / `*.`: matches itself and
    /// its subdomains.
    Domain(String),
    /// An address block (an IP literal is a full-length block).
    Net(IpAddr, u8),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    target: Target,
    port: Option<u16>,
}

impl NoProxy {
    /// Parses a comma (or space) separated list; entries it cannot read
    /// are skipped, as curl and Go do.
    fn parse(list: &str) -> NoProxy {
        let mut out = NoProxy::default();
        for raw in list
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            if raw == "*" {
                out.everything = true;
                continue;
            }
            if let Some(e) = Entry::parse(raw) {
                out.entries.push(e);
            }
        }
        out
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        if self.everything {
            return true;
        }
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let ip = host.parse::<IpAddr>().ok();
        self.entries.iter().any(|e| {
            e.port.is_none_or(|p| p == port)
                && match (&e.target, ip) {
                    (Target::Net(net, bits), Some(ip)) => in_block(ip, *net, *bits),
                    (Target::Domain(d), None) => {
                        host == *d
                            || (host.len() > d.len()
                                && host.ends_with(d.as_str())
                                && host.as_bytes()[host.len() - d.len() - 1] == b'.')
                    }
                    _ => false,
                }
        })
    }
}

impl Entry {
    fn parse(raw: &str) -> Option<Entry> {
        let raw = raw.to_ascii_lowercase();
        // CIDR (`10.0.0.0/8`, `::1/128`), optionally bracketed.
        if let Some((addr, bits)) = raw.split_once('/') {
            let addr = addr.trim_start_matches('[').trim_end_matches(']');
            let ip: IpAddr = addr.parse().ok()?;
            let bits: u8 = bits.parse().ok()?;
            let max = if ip.is_ipv4() { 32 } else { 128 };
            return (bits <= max).then_some(Entry {
                target: Target::Net(ip, bits),
                port: None,
            });
        }
        // A bare IPv6 literal (colons, no port).
        if let Ok(ip) = raw.parse::<IpAddr>() {
            return Some(Entry::ip(ip, None));
        }
        let (host, port) = if let Some(v6) = raw.strip_prefix('[') {
            let (h, after) = v6.split_once(']')?;
            (h, after.strip_prefix(':'))
        } else {
            match raw.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (raw.as_str(), None),
            }
        };
        let port = match port {
            Some(p) => Some(p.parse::<u16>().ok()?),
            None => None,
        };
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Some(Entry::ip(ip, port));
        }
        let name = host
            .trim_start_matches("*.")
            .trim_start_matches('.')
            .trim_end_matches('.');
        (!name.is_empty()).then(|| Entry {
            target: Target::Domain(name.to_string()),
            port,
        })
    }

    fn ip(ip: IpAddr, port: Option<u16>) -> Entry {
        let bits = if ip.is_ipv4() { 32 } else { 128 };
        Entry {
            target: Target::Net(ip, bits),
            port,
        }
    }
}

/// `ip` lies in `net/bits` (same address family only).
fn in_block(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let (ip, net, width) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = width - u32::from(bits);
    (ip >> shift) == (net >> shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| m.get(name).cloned()
    }

    fn via(r: &ProxyRules, scheme: Scheme, host: &str, port: u16) -> Option<String> {
        r.for_target(scheme, host, port).map(|p| p.authority())
    }

    #[test]
    fn scheme_picks_its_variable_else_all_proxy() {
        let r = ProxyRules::from_lookup(env(&[
            ("HTTPS_PROXY", "http://s:1"),
            ("ALL_PROXY", "http://a:3"),
        ]))
        .unwrap();
        assert_eq!(via(&r, Scheme::Https, "x", 443).as_deref(), Some("s:1"));
        assert_eq!(via(&r, Scheme::Http, "x", 80).as_deref(), Some("a:3"));
        let r = ProxyRules::from_lookup(env(&[("http_proxy", "h:2")])).unwrap();
        assert_eq!(via(&r, Scheme::Http, "x", 80).as_deref(), Some("h:2"));
        assert_eq!(via(&r, Scheme::Https, "x", 443), None);
        assert!(ProxyRules::from_lookup(env(&[])).unwrap().is_empty());
    }

    #[test]
    fn lower_case_wins_and_empty_is_unset() {
        let r = ProxyRules::from_lookup(env(&[
            ("https_proxy", "http://low:1"),
            ("HTTPS_PROXY", "http://up:1"),
            ("http_proxy", ""),
            ("HTTP_PROXY", "http://up:2"),
        ]))
        .unwrap();
        assert_eq!(via(&r, Scheme::Https, "x", 443).as_deref(), Some("low:1"));
        assert_eq!(via(&r, Scheme::Http, "x", 80).as_deref(), Some("up:2"));
    }

    #[test]
    fn a_bad_variable_is_named_without_its_password() {
        let e = ProxyRules::from_lookup(env(&[("ALL_PROXY", "socks5://u:pw@p:1080")]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("ALL_PROXY=socks5://u:***@p:1080: "), "{e}");
        assert!(e.contains("only http:// proxies"), "{e}");
        assert!(!e.contains("pw@"), "{e}");
    }

    #[test]
    fn no_proxy_names_suffixes_ips_cidrs_and_ports() {
        let np = NoProxy::parse(
            "example.com, .corp.local,*.wild.io, 10.1.2.3, 192.168.0.0/16, ::1, [fe80::1]:8443, api.x:8080",
        );
        let m = |h: &str, p: u16| np.matches(h, p);
        assert!(m("example.com", 443) && m("api.example.com", 443));
        assert!(!m("notexample.com", 443));
        assert!(m("corp.local", 80) && m("a.b.corp.local", 80));
        assert!(m("x.wild.io", 80) && m("wild.io", 80));
        assert!(m("10.1.2.3", 1) && !m("10.1.2.4", 1));
        assert!(m("192.168.7.9", 1) && !m("192.169.0.1", 1));
        assert!(m("::1", 1) && m("[::1]", 1));
        assert!(m("fe80::1", 8443) && !m("fe80::1", 443));
        assert!(m("api.x", 8080) && !m("api.x", 443));
        assert!(m("EXAMPLE.COM.", 443));
        assert!(!m("127.0.0.1", 80));
        assert!(NoProxy::parse("a, *").matches("anything", 1));
    }

    #[test]
    fn no_proxy_sends_listed_targets_direct() {
        let r = ProxyRules::from_lookup(env(&[
            ("ALL_PROXY", "http://p:3128"),
            ("NO_PROXY", "localhost,127.0.0.0/8"),
        ]))
        .unwrap();
        assert_eq!(via(&r, Scheme::Https, "127.0.0.1", 443), None);
        assert_eq!(via(&r, Scheme::Http, "localhost", 80), None);
        let r = r.with_loopback(true);
        assert_eq!(via(&r, Scheme::Https, "127.0.0.1", 443), None);
        assert_eq!(
            via(&r, Scheme::Https, "::1", 443).as_deref(),
            Some("p:3128")
        );
        assert_eq!(
            via(&r, Scheme::Https, "api.x", 443).as_deref(),
            Some("p:3128")
        );
        let all = ProxyRules::all(Proxy::parse("p:1").unwrap());
        assert!(all.for_target(Scheme::Http, "localhost", 80).is_some());
    }

    #[test]
    fn environment_proxies_never_capture_loopback() {
        let r = ProxyRules::from_lookup(env(&[("ALL_PROXY", "http://p:3128")])).unwrap();
        for host in [
            "localhost",
            "api.localhost",
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "[::1]",
        ] {
            assert_eq!(via(&r, Scheme::Https, host, 443), None, "{host}");
        }
        assert!(via(&r, Scheme::Https, "10.0.0.1", 443).is_some());
    }
}
