//! Which headers cross the gateway: hop-by-hop headers are stripped both
//! ways, the caller's gateway credentials never go upstream, the provider's
//! pre-built (sensitive) auth header is injected.

use http::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION, CONTENT_LENGTH, HOST};

use crate::config::ApiKind;
use crate::registry::Provider;

/// Hop-by-hop headers (RFC 9110 §7.6.1) and their relatives, plus every
/// `proxy-*` header.
const HOP_BY_HOP: [&str; 6] = [
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str()) || name.as_str().starts_with("proxy-")
}

/// Names listed in `Connection:` are hop-by-hop too. Compared in place
/// (no list of names built per request: header names are lower case, the
/// tokens compared without regard to case).
fn connection_listed(headers: &HeaderMap, name: &HeaderName) -> bool {
    headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(name.as_str()))
}

/// The headers to send upstream: the caller's minus hop-by-hop, `Host`,
/// `Content-Length` (recomputed), and its credentials; plus the provider's
/// key and, for Anthropic, a default `anthropic-version`.
pub fn upstream_request(incoming: &HeaderMap, provider: &Provider) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(incoming.len() + 2);
    for (name, value) in incoming {
        if is_hop_by_hop(name)
            || connection_listed(incoming, name)
            || name == HOST
            || name == CONTENT_LENGTH
            || name == AUTHORIZATION
            || name == "x-api-key"
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    let (name, value) = provider.auth_header();
    out.insert(name.clone(), value.clone());
    if provider.api() == ApiKind::Anthropic && !out.contains_key("anthropic-version") {
        out.insert("anthropic-version", HeaderValue::from_static("2023-06-01"));
    }
    out.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    out
}

/// The upstream's response headers minus hop-by-hop ones, in place (no new
/// map per response).
pub fn downstream_response(mut headers: HeaderMap) -> HeaderMap {
    // Names `Connection:` lists go first (read before it is removed).
    let mut listed: Vec<HeaderName> = Vec::new();
    for v in headers.get_all(http::header::CONNECTION) {
        for t in v.to_str().unwrap_or("").split(',') {
            match HeaderName::from_bytes(t.trim().as_bytes()) {
                // `keep-alive` and `close` are removed below anyway.
                Ok(n) if !is_hop_by_hop(&n) && n != "close" => listed.push(n),
                _ => {}
            }
        }
    }
    // Then the fixed names and `proxy-*` (a list only when there are any).
    let proxy: Vec<HeaderName> = (headers.keys())
        .filter(|n| n.as_str().starts_with("proxy-"))
        .cloned()
        .collect();
    for n in listed.into_iter().chain(proxy) {
        headers.remove(n);
    }
    for n in HOP_BY_HOP {
        headers.remove(n);
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{PoolSettings, ProviderConfig, Secret};
    use crate::management::Metrics;

    fn provider(api: ApiKind) -> Provider {
        let config = ProviderConfig {
            name: "p".into(),
            api_base_url: "http://127.0.0.1:1/v1/messages".parse().unwrap(),
            api_key: Secret::new("sk-up".into()),
            models: vec![],
            api,
            transformer: Default::default(),
            resilience: Default::default(),
            proxy: Default::default(),
            tls: Default::default(),
        };
        Provider::new(config, PoolSettings::default(), &Metrics::new().0).unwrap()
    }

    #[test]
    fn response_hop_by_hop_headers_go_in_place_and_the_rest_stay() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, X-Trace, close"),
            ("keep-alive", "timeout=5"),
            ("x-trace", "1"),
            ("transfer-encoding", "chunked"),
            ("proxy-authenticate", "Basic"),
            ("proxy-x", "y"),
            ("upgrade", "h2c"),
            ("content-type", "application/json"),
            ("request-id", "req_1"),
        ] {
            h.append(k, v.parse().unwrap());
        }
        h.append("set-cookie", "a=1".parse().unwrap());
        h.append("set-cookie", "b=2".parse().unwrap());
        let out = downstream_response(h);
        let mut names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["content-type", "request-id", "set-cookie"]);
        assert_eq!(out.get_all("set-cookie").iter().count(), 2);
        assert_eq!(out["request-id"], "req_1");
    }

    #[test]
    fn strips_hop_by_hop_and_caller_credentials() {
        let mut h = HeaderMap::new();
        for (k, v) in [
            ("connection", "keep-alive, x-trace"),
            ("keep-alive", "timeout=5"),
            ("x-trace", "1"),
            ("te", "trailers"),
            ("proxy-authorization", "x"),
            ("x-api-key", "gateway-key"),
            ("authorization", "Bearer gateway-key"),
            ("anthropic-beta", "tools-2024"),
            ("host", "localhost:3456"),
        ] {
            h.insert(k, v.parse().unwrap());
        }
        let out = upstream_request(&h, &provider(ApiKind::Anthropic));
        let names: Vec<&str> = out.keys().map(|k| k.as_str()).collect();
        assert_eq!(out["x-api-key"], "sk-up");
        assert!(out["x-api-key"].is_sensitive());
        assert_eq!(out["anthropic-beta"], "tools-2024");
        assert_eq!(out["anthropic-version"], "2023-06-01");
        for gone in [
            "connection",
            "keep-alive",
            "x-trace",
            "te",
            "proxy-authorization",
            "authorization",
            "host",
        ] {
            assert!(!names.contains(&gone), "{gone} leaked: {names:?}");
        }
        let out = upstream_request(&h, &provider(ApiKind::OpenAi));
        assert_eq!(out[AUTHORIZATION], "Bearer sk-up");
        assert!(!out.contains_key("x-api-key"));
    }
}
