//! `HttpConnectionPool`: pool settings per provider, their defaults, the
//! merge (defaults ← `global` ← `providers.<name>`), the checks after it,
//! and the conversion to [`keepwarm::PoolOptions`].

use std::collections::BTreeMap;
use std::time::Duration;

use keepwarm::{PoolOptions, Protocol};

use serde_json::Value;

use super::de::{child, Diag, Lazy};
use super::raw::{self, PoolBlock};
use super::values::err;
use super::{ConfigError, ProviderConfig};

/// One provider's resolved pool settings (keys of the seed's
/// `HttpConnectionPool.global` block; defaults in brackets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolSettings {
    /// `HttpConnectionPool.enabled` [true]. `false` turns keep-alive off:
    /// one connection per request, the A/B baseline.
    pub enabled: bool,
    /// `maxSockets` [50]: most connections per host (connecting + active + idle).
    pub max_sockets: usize,
    /// `maxFreeSockets` [10, or `maxSockets` when that is lower and
    /// `maxFreeSockets` is set nowhere]: most idle connections kept.
    pub max_free_sockets: usize,
    /// `timeout` [30000 ms]: socket inactivity limit of an active exchange.
    pub timeout: Duration,
    /// `keepAlive` [true]: keep connections for reuse.
    pub keep_alive: bool,
    /// `keepAliveMsecs` [60000 ms]: TCP keep-alive probe delay.
    pub keep_alive_msecs: Duration,
    /// `freeSocketTimeout` [15000 ms]: an idle connection unused this long is closed.
    pub free_socket_timeout: Duration,
    /// `maxSocketLifetime` [600000 ms]: a connection older than this is not
    /// reused; `null` = no limit.
    pub max_socket_lifetime: Option<Duration>,
    /// `connectTimeout` [10000 ms]: DNS + TCP + TLS must finish within this.
    pub connect_timeout: Duration,
    /// `acquireTimeout` [30000 ms]: wait for a free slot at `maxSockets`;
    /// `null` = wait forever.
    pub acquire_timeout: Option<Duration>,
    /// `maxRequestsPerSocket` [null = no limit]: requests one connection carries.
    pub max_requests_per_socket: Option<u64>,
    /// `minFreeSockets` [0]: pre-warmed idle connections kept ready; the
    /// gateway opens them at start.
    pub min_free_sockets: usize,
    /// `protocol` ["auto"]: `"auto"` offers ALPN `h2, http/1.1` over TLS and
    /// uses what the server picks (HTTP/1.1 over plain http); `"http1"`;
    /// `"http2"` (h2c with prior knowledge over http, ALPN `h2` required
    /// over https).
    pub protocol: Protocol,
    /// `maxConcurrentStreams` [null = the server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS`, 100 when it sets none]: most
    /// streams on one HTTP/2 connection.
    pub max_concurrent_streams: Option<u32>,
}

impl Default for PoolSettings {
    /// [`keepwarm::Profile::default`]: the pool's own defaults
    /// ([`PoolOptions::default`]) and the client's timers.
    fn default() -> Self {
        let p = keepwarm::Profile::default();
        let o = p.pool;
        PoolSettings {
            enabled: true,
            max_sockets: o.max_sockets,
            max_free_sockets: o.max_free_sockets,
            timeout: p.timeout,
            keep_alive: o.keep_alive,
            keep_alive_msecs: p.keep_alive_msecs,
            free_socket_timeout: o.free_socket_timeout,
            max_socket_lifetime: o.max_socket_lifetime,
            connect_timeout: p.connect_timeout,
            acquire_timeout: o.acquire_timeout,
            max_requests_per_socket: o.max_requests_per_socket,
            min_free_sockets: o.min_free_sockets,
            protocol: p.protocol,
            max_concurrent_streams: p.max_concurrent_streams,
        }
    }
}

impl PoolSettings {
    /// The pool limits for `keepwarm` (`keep_alive` = `enabled && keep_alive`).
    /// `timeout`, `keepAliveMsecs` and `connectTimeout` are client options,
    /// not pool options: set them on the `ClientBuilder`.
    pub fn to_pool_options(&self) -> PoolOptions {
        PoolOptions {
            keep_alive: self.enabled && self.keep_alive,
            max_sockets: self.max_sockets,
            max_free_sockets: self.max_free_sockets,
            free_socket_timeout: self.free_socket_timeout,
            max_socket_lifetime: self.max_socket_lifetime,
            acquire_timeout: self.acquire_timeout,
            max_requests_per_socket: self.max_requests_per_socket,
            min_free_sockets: self.min_free_sockets,
        }
    }
}

/// The whole `HttpConnectionPool` block, resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct PoolSection {
    /// `enabled` [true]; copied into every [`PoolSettings::enabled`].
    pub enabled: bool,
    /// Defaults ← `global`: settings for names without an entry below.
    pub global: PoolSettings,
    /// Fully merged settings (defaults ← `global` ← `providers.<name>`),
    /// one entry for every provider in `Providers`, keyed by its name as
    /// written there. Default: empty (no providers).
    pub per_provider: BTreeMap<String, PoolSettings>,
    /// `global.maxIdleTotal` [null = no cap]: most idle connections across
    /// all providers.
    pub max_idle_total: Option<usize>,
}

impl Default for PoolSection {
    fn default() -> Self {
        PoolSection {
            enabled: true,
            global: PoolSettings::default(),
            per_provider: BTreeMap::new(),
            max_idle_total: None,
        }
    }
}

impl PoolSection {
    /// The settings of provider `name` (case-insensitive), else `global`.
    pub fn for_provider(&self, name: &str) -> &PoolSettings {
        (self.per_provider.get(name))
            .or_else(|| {
                let mut all = self.per_provider.iter();
                all.find(|(k, _)| k.eq_ignore_ascii_case(name))
                    .map(|(_, s)| s)
            })
            .unwrap_or(&self.global)
    }

    /// Defaults, with an entry for each provider.
    pub(crate) fn with_providers(providers: &[ProviderConfig]) -> PoolSection {
        let mut s = PoolSection::default();
        for p in providers {
            s.per_provider.insert(p.name.clone(), s.global.clone());
        }
        s
    }
}

/// Where each checked limit was last written: (depth, path of the key),
/// depth 1 for `global`, 2 for a provider override; `None` = default.
#[derive(Clone, Default)]
struct Origins {
    max: Option<(u8, String)>,
    free: Option<(u8, String)>,
    min: Option<(u8, String)>,
}

impl Origins {
    /// The origin of limit `option` (`maxSockets`, `maxFreeSockets`,
    /// `minFreeSockets`).
    fn of(&self, option: &str) -> &Option<(u8, String)> {
        match option {
            "maxSockets" => &self.max,
            "maxFreeSockets" => &self.free,
            _ => &self.min,
        }
    }
}

/// Applies one pool block, found at `path`, over `s`, recording where the
/// limits were written.
fn apply<I>(b: &PoolBlock<I>, path: &str, depth: u8, s: &mut PoolSettings, at: &mut Origins) {
    // The block and the settings name each field alike: plain values,
    // then the nullable ones (`null` = no limit).
    macro_rules! take {
        ($($f:ident),*; $($n:ident),*) => {
            $(if let Some(v) = *b.$f { s.$f = v.0; })*
            $(if let Some(v) = *b.$n { s.$n = v.map(|v| v.0); })*
        };
    }
    take!(max_sockets, max_free_sockets, min_free_sockets, timeout, keep_alive,
        keep_alive_msecs, free_socket_timeout, connect_timeout, protocol;
        max_socket_lifetime, acquire_timeout, max_requests_per_socket, max_concurrent_streams);
    let limits = [
        ("maxSockets", b.max_sockets.is_some(), &mut at.max),
        ("maxFreeSockets", b.max_free_sockets.is_some(), &mut at.free),
        ("minFreeSockets", b.min_free_sockets.is_some(), &mut at.min),
    ];
    for (key, written, origin) in limits {
        if written {
            *origin = Some((depth, child(path, key)));
        }
    }
}

/// Fills in the implicit `maxFreeSockets` and checks the settings with
/// [`PoolOptions::validate`], the one definition of the pool's rules. An
/// error names the JSON path of the more specific of the two values in
/// conflict (the checked one on a tie).
fn check(mut s: PoolSettings, at: &Origins) -> Result<PoolSettings, ConfigError> {
    if at.free.is_none() {
        s.max_free_sockets = s.max_free_sockets.min(s.max_sockets);
    }
    let Err(e) = s.to_pool_options().validate() else {
        return Ok(s);
    };
    fn depth(o: &Option<(u8, String)>) -> u8 {
        o.as_ref().map_or(0, |(d, _)| *d)
    }
    fn path(o: &Option<(u8, String)>) -> &str {
        o.as_ref().map_or("HttpConnectionPool", |(_, p)| p)
    }
    // The value in conflict, and the limit it is checked against.
    let (own, limit, bound) = match e.option {
        "maxFreeSockets" => (s.max_free_sockets, "maxSockets", s.max_sockets),
        "minFreeSockets" => (s.min_free_sockets, "maxFreeSockets", s.max_free_sockets),
        _ => return Err(err("HttpConnectionPool", e.to_string())),
    };
    let (mine, theirs) = (at.of(e.option), at.of(limit));
    if depth(mine) >= depth(theirs) {
        return Err(err(path(mine), e.reason));
    }
    let msg = format!("{bound} is below {} ({own})", e.option);
    Err(err(path(theirs), msg))
}

/// Reads `HttpConnectionPool` (absent: all defaults) for `providers`.
/// `names` are every provider name written in `Providers`, valid or not:
/// an override for a provider that failed its own checks is no warning.
pub(crate) fn section(
    lazy: &Lazy<raw::Pool>,
    providers: &[ProviderConfig],
    names: &[String],
    d: &mut Diag,
) -> PoolSection {
    const AT: &str = "HttpConnectionPool";
    let Ok(Some(pool)) = d.object(lazy, AT) else {
        return PoolSection::with_providers(providers);
    };
    let enabled = d.read(&pool.enabled, &child(AT, "enabled"));
    let enabled = enabled.ok().flatten().is_none_or(|f| f.0);
    let mut base = PoolSettings {
        enabled,
        ..PoolSettings::default()
    };
    let (mut at, mut max_idle_total) = (Origins::default(), None);
    let global_path = child(AT, "global");
    let read = d.object(&pool.global, &global_path);
    let mut global_ok = read.is_ok();
    if let Ok(Some(g)) = read {
        apply(&g, &global_path, 1, &mut base, &mut at);
        max_idle_total = g.max_idle_total.flatten().map(|n| n.0);
    }
    let global = match check(base.clone(), &at) {
        Ok(s) => s,
        Err(e) => {
            d.errors.push(e);
            global_ok = false;
            base.clone()
        }
    };
    let mut per_provider: BTreeMap<_, _> = (providers.iter())
        .map(|p| (p.name.clone(), global.clone()))
        .collect();
    let overrides_path = child(AT, "providers");
    let Ok(Some(overrides)) = d.object(&pool.providers, &overrides_path) else {
        return PoolSection {
            enabled,
            global,
            per_provider,
            max_idle_total,
        };
    };
    let mut done: Vec<&str> = Vec::new();
    for (key, v) in overrides {
        let (path, lazy) = (
            child(&overrides_path, &key),
            Lazy::<PoolBlock<Value>>::from(v),
        );
        // A bad value is an error wherever it is written.
        let Ok(Some(block)) = d.object(&lazy, &path) else {
            continue;
        };
        let (mut s, mut at) = (base.clone(), at.clone());
        apply(&block, &path, 2, &mut s, &mut at);
        if block.max_idle_total.is_some() {
            let at = child(&path, "maxIdleTotal");
            d.warnings.push(format!(
                "{at}: only read from HttpConnectionPool.global (ignored)"
            ));
        }
        // A conflict with a bad global block was reported there already.
        let checked = global_ok.then(|| d.check(check(s, &at)).ok()).flatten();
        let Some(p) = providers.iter().find(|p| p.name.eq_ignore_ascii_case(&key)) else {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(&key)) {
                d.warnings.push(format!(
                    "{path}: no provider named {key:?} in Providers (ignored)"
                ));
            }
            continue;
        };
        if done.contains(&p.name.as_str()) {
            d.fail(
                &path,
                "a second override for this provider (names are case-insensitive)",
            );
            continue;
        }
        done.push(&p.name);
        if let Some(s) = checked {
            per_provider.insert(p.name.clone(), s);
        }
    }
    PoolSection {
        enabled,
        global,
        per_provider,
        max_idle_total,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use keepwarm::Protocol;

    use crate::config::{parse, tests::env_of, PoolSettings};

    fn pools(pool: &str) -> crate::config::PoolSection {
        let text = format!(
            r#"{{"Providers": [{{"name": "a", "api_base_url": "http://a", "api_key": "k"}},
                {{"name": "B", "api_base_url": "http://b", "api_key": "k"}}], "HttpConnectionPool": {pool}}}"#
        );
        parse(&text, &env_of(&[])).unwrap().0.pool
    }

    #[test]
    fn max_free_sockets_follows_a_lower_max_sockets_unless_set() {
        let p = pools(r#"{"global": {"maxSockets": 4}, "providers": {"b": {"maxSockets": 30}}}"#);
        assert_eq!((p.global.max_sockets, p.global.max_free_sockets), (4, 4));
        assert_eq!(p.for_provider("a").max_free_sockets, 4);
        assert_eq!(
            (
                p.for_provider("B").max_sockets,
                p.for_provider("b").max_free_sockets
            ),
            (30, 10)
        );
        let p =
            pools(r#"{"global": {"maxFreeSockets": 2}, "providers": {"B": {"maxSockets": 30}}}"#);
        assert_eq!(p.for_provider("B").max_free_sockets, 2);
        assert_eq!(p.for_provider("unknown"), &p.global);
    }

    #[test]
    fn nulls_override_and_options_convert() {
        let p = pools(
            r#"{"global": {"acquireTimeout": 5000, "maxRequestsPerSocket": 100},
            "providers": {"a": {"acquireTimeout": null, "maxSocketLifetime": null, "minFreeSockets": 2}}}"#,
        );
        let o = p.for_provider("a").to_pool_options();
        assert_eq!(
            (
                o.acquire_timeout,
                o.max_socket_lifetime,
                o.max_requests_per_socket
            ),
            (None, None, Some(100))
        );
        assert_eq!((o.min_free_sockets, o.keep_alive), (2, true));
        assert_eq!(
            p.for_provider("B").acquire_timeout,
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            PoolSettings::default().to_pool_options(),
            keepwarm::PoolOptions::default()
        );
    }

    #[test]
    fn protocol_and_stream_limit_merge_per_provider() {
        let p = pools(
            r#"{"global": {"protocol": "http2", "maxConcurrentStreams": 50},
            "providers": {"a": {"protocol": "http1", "maxConcurrentStreams": null}}}"#,
        );
        let a = p.for_provider("a");
        assert_eq!(
            (a.protocol, a.max_concurrent_streams),
            (Protocol::Http1, None)
        );
        let b = p.for_provider("B");
        assert_eq!(
            (b.protocol, b.max_concurrent_streams),
            (Protocol::Http2, Some(50))
        );
        let d = PoolSettings::default();
        assert_eq!(
            (d.protocol, d.max_concurrent_streams),
            (Protocol::Auto, None)
        );
    }

    #[test]
    fn a_bad_protocol_or_stream_limit_names_the_provider() {
        let error = |pool: &str| {
            let text = format!(
                r#"{{"Providers": [{{"name": "a", "api_base_url": "http://a", "api_key": "k"}}], "HttpConnectionPool": {pool}}}"#
            );
            parse(&text, &env_of(&[])).unwrap_err().to_string()
        };
        assert_eq!(
            error(r#"{"providers": {"a": {"protocol": "h3"}}}"#),
            r#"HttpConnectionPool.providers.a.protocol: expected "auto", "http1" or "http2", got "h3""#
        );
        assert_eq!(
            error(r#"{"providers": {"a": {"maxConcurrentStreams": 0}}}"#),
            "HttpConnectionPool.providers.a.maxConcurrentStreams: expected a positive integer, got 0"
        );
        assert_eq!(
            error(r#"{"global": {"maxConcurrentStreams": 5000000000}}"#),
            "HttpConnectionPool.global.maxConcurrentStreams: 5000000000 is above 4294967295"
        );
    }

    #[test]
    fn disabled_pool_turns_keep_alive_off() {
        let p = pools(r#"{"enabled": false, "global": {"keepAlive": true}}"#);
        assert!(!p.enabled && !p.global.enabled);
        assert!(!p.for_provider("a").to_pool_options().keep_alive);
        assert!(!p.global.to_pool_options().keep_alive);
        let off = PoolSettings {
            keep_alive: false,
            ..PoolSettings::default()
        };
        assert!(!off.to_pool_options().keep_alive);
    }
}
