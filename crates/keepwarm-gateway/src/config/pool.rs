//! `HttpConnectionPool`: pool settings per provider, their defaults, the
//! merge (defaults ← `global` ← `providers.<name>`), the checks after it,
//! and the conversion to [`keepwarm::PoolOptions`].

use std::collections::BTreeMap;
use std::time::Duration;

use keepwarm::{PoolOptions, Protocol};

use super::parse::{err, set, Field, Obj};
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
    fn default() -> Self {
        PoolSettings {
            enabled: true,
            max_sockets: 50,
            max_free_sockets: 10,
            timeout: Duration::from_millis(30_000),
            keep_alive: true,
            keep_alive_msecs: Duration::from_millis(60_000),
            free_socket_timeout: Duration::from_millis(15_000),
            max_socket_lifetime: Some(Duration::from_millis(600_000)),
            connect_timeout: Duration::from_millis(10_000),
            acquire_timeout: Some(Duration::from_millis(30_000)),
            max_requests_per_socket: None,
            min_free_sockets: 0,
            protocol: Protocol::Auto,
            max_concurrent_streams: None,
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

/// Setting names, to point misplaced ones to where they belong.
const KEYS: &str = "maxSockets maxFreeSockets timeout keepAlive keepAliveMsecs freeSocketTimeout \
    maxSocketLifetime connectTimeout acquireTimeout maxRequestsPerSocket minFreeSockets maxIdleTotal \
    protocol maxConcurrentStreams";

/// Applies one pool block over `s`, recording where limits were written.
fn apply(
    o: &mut Obj<'_>,
    depth: u8,
    s: &mut PoolSettings,
    at: &mut Origins,
) -> Result<(), ConfigError> {
    let limits = [
        ("maxSockets", &mut s.max_sockets, &mut at.max),
        ("maxFreeSockets", &mut s.max_free_sockets, &mut at.free),
        ("minFreeSockets", &mut s.min_free_sockets, &mut at.min),
    ];
    for (key, slot, origin) in limits {
        if let Some(f) = o.get(key) {
            *slot = f.size(key == "maxSockets")?;
            *origin = Some((depth, f.path));
        }
    }
    let nullable_ms = |f: &Field<'_>| f.nullable(Field::millis);
    set(&mut s.timeout, o.get("timeout"), Field::millis)?;
    set(&mut s.keep_alive, o.get("keepAlive"), Field::boolean)?;
    set(
        &mut s.keep_alive_msecs,
        o.get("keepAliveMsecs"),
        Field::millis,
    )?;
    set(
        &mut s.free_socket_timeout,
        o.get("freeSocketTimeout"),
        Field::millis,
    )?;
    set(
        &mut s.max_socket_lifetime,
        o.get("maxSocketLifetime"),
        nullable_ms,
    )?;
    set(
        &mut s.connect_timeout,
        o.get("connectTimeout"),
        Field::millis,
    )?;
    set(&mut s.acquire_timeout, o.get("acquireTimeout"), nullable_ms)?;
    let per_socket = |f: &Field<'_>| f.nullable(|f| f.int(true));
    set(
        &mut s.max_requests_per_socket,
        o.get("maxRequestsPerSocket"),
        per_socket,
    )?;
    set(&mut s.protocol, o.get("protocol"), protocol)?;
    let streams = |f: &Field<'_>| f.nullable(|f| f.u32_positive());
    set(
        &mut s.max_concurrent_streams,
        o.get("maxConcurrentStreams"),
        streams,
    )
}

/// `"auto"`, `"http1"` or `"http2"`.
fn protocol(f: &Field<'_>) -> Result<Protocol, ConfigError> {
    let expected = "expected \"auto\", \"http1\" or \"http2\"";
    match f.value.as_str().map(str::parse::<Protocol>) {
        Some(Ok(p)) => Ok(p),
        _ => Err(f.fail(expected)),
    }
}

/// Fills in the implicit `maxFreeSockets` and checks the limits, blaming
/// the more specific of the two values (the left one on a tie).
fn check(mut s: PoolSettings, at: &Origins) -> Result<PoolSettings, ConfigError> {
    let depth = |o: &Option<(u8, String)>| o.as_ref().map_or(0, |(d, _)| *d);
    let fail = |o: &Option<(u8, String)>, msg: String| {
        err(o.as_ref().map_or("HttpConnectionPool", |(_, p)| p), msg)
    };
    let (m, f, n) = (s.max_sockets, s.max_free_sockets, s.min_free_sockets);
    if at.free.is_none() {
        s.max_free_sockets = f.min(m);
    } else if f > m && depth(&at.free) >= depth(&at.max) {
        return Err(fail(&at.free, format!("{f} is above maxSockets ({m})")));
    } else if f > m {
        return Err(fail(&at.max, format!("{m} is below maxFreeSockets ({f})")));
    }
    let f = s.max_free_sockets;
    if n > f && depth(&at.min) >= depth(&at.free) {
        return Err(fail(&at.min, format!("{n} is above maxFreeSockets ({f})")));
    } else if n > f {
        return Err(fail(&at.free, format!("{f} is below minFreeSockets ({n})")));
    }
    Ok(s)
}

/// Reads `HttpConnectionPool` (absent: all defaults) for `providers`.
pub(crate) fn section(
    field: Option<Field<'_>>,
    providers: &[ProviderConfig],
    w: &mut Vec<String>,
) -> Result<PoolSection, ConfigError> {
    let Some(field) = field else {
        return Ok(PoolSection::with_providers(providers));
    };
    let mut o = Obj::new(field)?;
    let enabled = o.get("enabled").map(|f| f.boolean()).transpose()?;
    let enabled = enabled.unwrap_or(true);
    let (mut base, mut at) = (
        PoolSettings {
            enabled,
            ..PoolSettings::default()
        },
        Origins::default(),
    );
    let mut max_idle_total = None;
    if let Some(f) = o.get("global") {
        let mut g = Obj::new(f)?;
        apply(&mut g, 1, &mut base, &mut at)?;
        if let Some(f) = g.get("maxIdleTotal") {
            max_idle_total = f.nullable(|f| f.size(true))?;
        }
        g.finish(w, "");
    }
    let global = check(base.clone(), &at)?;
    let mut per_provider: BTreeMap<_, _> = (providers.iter())
        .map(|p| (p.name.clone(), global.clone()))
        .collect();
    if let Some(f) = o.get("providers") {
        let mut p = Obj::new(f)?;
        let mut done: Vec<&str> = Vec::new();
        for (key, value) in p.entries() {
            let path = p.child(key);
            let Some(pr) = providers.iter().find(|p| p.name.eq_ignore_ascii_case(key)) else {
                // Still checked: a bad value is an error wherever it is written.
                let mut po = Obj::new(Field {
                    path: path.clone(),
                    value,
                })?;
                let (mut s, mut at) = (base.clone(), at.clone());
                apply(&mut po, 2, &mut s, &mut at)?;
                check(s, &at)?;
                w.push(format!(
                    "{path}: no provider named {key:?} in Providers (ignored)"
                ));
                continue;
            };
            if done.contains(&pr.name.as_str()) {
                return Err(err(
                    &path,
                    "a second override for this provider (names are case-insensitive)",
                ));
            }
            done.push(&pr.name);
            let mut po = Obj::new(Field { path, value })?;
            let (mut s, mut at) = (base.clone(), at.clone());
            apply(&mut po, 2, &mut s, &mut at)?;
            per_provider.insert(pr.name.clone(), check(s, &at)?);
            if let Some(f) = po.get("maxIdleTotal") {
                w.push(format!(
                    "{}: only read from HttpConnectionPool.global (ignored)",
                    f.path
                ));
            }
            po.finish(w, "");
        }
    }
    for key in KEYS.split_whitespace() {
        if let Some(f) = o.get(key) {
            let msg = "pool settings go in HttpConnectionPool.global or providers.<name> (ignored)";
            w.push(format!("{}: {msg}", f.path));
        }
    }
    o.finish(w, "");
    Ok(PoolSection {
        enabled,
        global,
        per_provider,
        max_idle_total,
    })
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
