//! Proxies: claude-code-router's top-level `PROXY_URL`, the
//! `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY` environment (read only
//! when `PROXY_URL` is not set), and a provider's own `"proxy"` (a URL, or
//! `null` for direct), which wins over both. Each provider's choice is
//! resolved once, against its endpoint, into a [`ProxyChoice`].
//!
//! Messages never show a proxy's password (`http://user:***@host:port`).

use keepwarm::{redact_url, Proxy, ProxyChoice, ProxyRules, Scheme};

use super::parse::Env;
use super::values::err;
use super::{ConfigError, ProviderConfig};

/// The gateway-wide proxies; defaults in brackets.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProxySection {
    /// `PROXY_URL` [none; `""` and `null` also mean none]: every provider's
    /// requests go through it unless the provider says otherwise.
    pub url: Option<Proxy>,
    /// The environment's proxies [none], read only when `PROXY_URL` is not
    /// set.
    pub env: ProxyRules,
}

impl ProxySection {
    /// `provider`'s proxy: its own `"proxy"` (a URL, or `null` = direct),
    /// else `PROXY_URL`, else the environment's rule for its endpoint
    /// (`NO_PROXY` included), else direct.
    pub fn resolve(&self, provider: &ProviderConfig) -> ProxyChoice {
        match &provider.proxy {
            ProxyChoice::Inherit => {}
            own => return own.clone(),
        }
        if let Some(p) = &self.url {
            return ProxyChoice::Via(p.clone());
        }
        let u = &provider.api_base_url;
        let scheme = match u.scheme_str() {
            Some("https") => Scheme::Https,
            _ => Scheme::Http,
        };
        let host = u.host().unwrap_or_default();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = u.port_u16().unwrap_or(match scheme {
            Scheme::Https => 443,
            Scheme::Http => 80,
        });
        match self.env.for_target(scheme, host, port) {
            Some(p) => ProxyChoice::Via(p.clone()),
            None => ProxyChoice::Direct,
        }
    }
}

/// `PROXY_URL` as expanded (`None` when absent or `null`; blank is unset
/// too), found at `path`; then the environment when it is not set.
pub(crate) fn section(
    url: Option<&str>,
    path: &str,
    env: Env<'_>,
) -> Result<ProxySection, ConfigError> {
    let url = url.filter(|s| !s.trim().is_empty());
    from_env(url.map(|s| parse_url(s, path)).transpose()?, env)
}

/// The environment's proxies, unless `url` (`PROXY_URL`) is set.
pub(crate) fn from_env(url: Option<Proxy>, env: Env<'_>) -> Result<ProxySection, ConfigError> {
    if url.is_some() {
        return Ok(ProxySection {
            url,
            env: ProxyRules::default(),
        });
    }
    let rules = ProxyRules::from_lookup(env).map_err(|e| {
        err(
            "",
            format!("{e} (fix or unset it, or set PROXY_URL in the config file)"),
        )
    })?;
    Ok(ProxySection { url, env: rules })
}

/// A provider's `"proxy"` as expanded, found at `path`: a URL, or `None`
/// (`null`) for direct.
pub(crate) fn provider(url: Option<&str>, path: &str) -> Result<ProxyChoice, ConfigError> {
    match url {
        None => Ok(ProxyChoice::Direct),
        Some(s) => parse_url(s, path).map(ProxyChoice::Via),
    }
}

/// Proxy URL `s`, found at `path`; the error hides its password.
fn parse_url(s: &str, path: &str) -> Result<Proxy, ConfigError> {
    Proxy::parse(s).map_err(|e| {
        let why = e.to_string();
        let why = why.split_once("`: ").map_or(why.as_str(), |(_, w)| w);
        err(
            path,
            format!(
                "expected an http:// proxy URL (or null), got \"{}\": {why}",
                redact_url(s.trim())
            ),
        )
    })
}

/// The JSON of a provider's proxy, password masked: the URL, or `null`
/// for direct (or inherited).
pub fn to_json(choice: &ProxyChoice) -> serde_json::Value {
    match choice {
        ProxyChoice::Via(p) => serde_json::Value::String(p.to_string()),
        _ => serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use crate::config::tests::env_of;
    use crate::config::{from_env, parse};
    use keepwarm::ProxyChoice;

    const PROVIDERS: &str = r#""Providers": [
        {"name": "a", "api_base_url": "https://a.example/v1/messages", "api_key": "k"},
        {"name": "d", "api_base_url": "https://d.example/v1/messages", "api_key": "k", "proxy": null},
        {"name": "own", "api_base_url": "http://o.example/v1/messages", "api_key": "k", "proxy": "http://me:pw2@own:8080"},
        {"name": "near", "api_base_url": "https://near.internal/v1/messages", "api_key": "k"}
    ]"#;

    fn resolved(text: &str, env: &[(&str, &str)]) -> Vec<String> {
        let (c, w) = parse(text, &env_of(env)).unwrap();
        assert!(w.is_empty(), "{w:?}");
        (c.providers.iter())
            .map(|p| match c.proxy.resolve(p) {
                ProxyChoice::Via(x) => x.to_string(),
                other => format!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn a_provider_wins_then_proxy_url_then_the_environment() {
        let env = [
            ("HTTPS_PROXY", "http://envp:3128"),
            ("NO_PROXY", ".internal"),
            ("CORP", "http://u:s3cret@corp:3128"),
        ];
        let with_url = format!(r#"{{"PROXY_URL": "$CORP", {PROVIDERS}}}"#);
        assert_eq!(
            resolved(&with_url, &env),
            [
                "http://u:***@corp:3128",
                "Direct",
                "http://me:***@own:8080",
                "http://u:***@corp:3128"
            ]
        );
        let without = format!("{{{PROVIDERS}}}");
        assert_eq!(
            resolved(&without, &env),
            [
                "http://envp:3128",
                "Direct",
                "http://me:***@own:8080",
                "Direct"
            ]
        );
        assert_eq!(
            resolved(&without, &[]),
            ["Direct", "Direct", "http://me:***@own:8080", "Direct"]
        );
        // `PROXY_URL: null` or "" is unset: the environment applies.
        let null = format!(r#"{{"PROXY_URL": null, {PROVIDERS}}}"#);
        assert_eq!(resolved(&null, &env)[0], "http://envp:3128");
    }

    #[test]
    fn the_environment_alone_finds_proxies_and_bad_values_are_named() {
        let env = env_of(&[("ANTHROPIC_API_KEY", "k"), ("ALL_PROXY", "http://p:1")]);
        let c = from_env(&env).unwrap();
        let p = c.provider("anthropic").unwrap();
        assert_eq!(
            c.proxy.resolve(p),
            ProxyChoice::Via(keepwarm::Proxy::parse("http://p:1").unwrap())
        );
        let e = parse("{}", &env_of(&[("https_proxy", "socks5://u:pw@p:1")]))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("https_proxy=socks5://u:***@p:1: "), "{e}");
        assert!(e.contains("set PROXY_URL"), "{e}");
        // With PROXY_URL set the environment is not read.
        let text = r#"{"PROXY_URL": "http://p:1"}"#;
        assert!(parse(text, &env_of(&[("https_proxy", "socks5://p:1")])).is_ok());
    }

    #[test]
    fn bad_urls_name_the_provider_and_hide_the_password() {
        let text = r#"{"Providers": [{"name": "a", "api_base_url": "http://a", "api_key": "k",
            "proxy": "https://u:s3cret@p:3128"}]}"#;
        let e = parse(text, &env_of(&[])).unwrap_err().to_string();
        assert!(
            e.starts_with("Providers[0].proxy: expected an http:// proxy URL"),
            "{e}"
        );
        assert!(e.contains("u:***@p:3128") && !e.contains("s3cret"), "{e}");
        let e = parse(r#"{"PROXY_URL": "http://u:s3cret@p:0"}"#, &env_of(&[]))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("PROXY_URL: ") && e.contains("bad port"),
            "{e}"
        );
        assert!(!e.contains("s3cret"), "{e}");
    }

    #[test]
    fn redacted_json_masks_proxy_passwords() {
        let text = format!(r#"{{"PROXY_URL": "http://u:s3cret@corp:3128", {PROVIDERS}}}"#);
        let (c, _) = parse(&text, &env_of(&[])).unwrap();
        let j = c.redacted_json();
        assert_eq!(j["PROXY_URL"], "http://u:***@corp:3128");
        assert_eq!(j["Providers"][1]["proxy"], serde_json::Value::Null);
        assert_eq!(j["Providers"][2]["proxy"], "http://me:***@own:8080");
        assert!(j["Providers"][0].get("proxy").is_none());
        let s = j.to_string();
        assert!(!s.contains("s3cret") && !s.contains("pw2"), "{s}");
    }
}
