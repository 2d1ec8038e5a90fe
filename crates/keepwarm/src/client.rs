//! `Client`: sends requests over pooled connections, retries only when it
//! is safe, and tags every response with its `ConnectionInfo`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderValue, CONNECTION, HOST, PROXY_AUTHORIZATION};
use http::request::Parts;
use http::uri::{self, PathAndQuery};
use http::{Method, Request, Response, Uri};
use keepwarm_pool::{
    AcquireError, Acquired, BoxError, CloseReason, ConnectFuture, Connector, KeySnapshot, Lease,
    Pool, PoolConfig,
};
use rustls::ClientConfig;

use crate::body::ResponseBody;
use crate::builder::ClientBuilder;
use crate::conn;
use crate::conn_stats::{ConnStats, H2Counts, Registry};
use crate::error::{Error, Kind};
use crate::h1;
use crate::hints;
use crate::http2;
use crate::http2::send::Failure;
use crate::info::{ConnectionInfo, Handshake};
use crate::key::{Key, Scheme};
use crate::pooled::Conn;
use crate::profile::Profile;
use crate::protocol::{ConnProtocol, Protocol};
use crate::proxy::{Proxy, ProxyChoice};
use crate::proxy_rules::ProxyRules;

/// Options of the client that are not pool options.
#[derive(Clone, Debug)]
pub(crate) struct ClientOptions {
    pub(crate) connect_timeout: Duration,
    pub(crate) timeout: Duration,
    pub(crate) response_header_timeout: Option<Duration>,
    pub(crate) keep_alive_msecs: Duration,
    pub(crate) max_retries: u32,
    pub(crate) protocol: Protocol,
    pub(crate) max_concurrent_streams: Option<u32>,
    pub(crate) ping_timeout: Duration,
    pub(crate) proxy: ProxyChoice,
    /// A profile's own TLS configurations (ALPN for `Auto`, `Http1`,
    /// `Http2`); `None`: the client's.
    pub(crate) tls: Option<Arc<[Arc<ClientConfig>; 3]>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(10),
            timeout: Duration::from_secs(30),
            response_header_timeout: None,
            keep_alive_msecs: Duration::from_secs(60),
            max_retries: 3,
            protocol: Protocol::Auto,
            max_concurrent_streams: None,
            ping_timeout: Duration::from_secs(20),
            proxy: ProxyChoice::Inherit,
            tls: None,
        }
    }
}

/// A request extension naming the pool label (provider) a request belongs
/// to. Without it the label is the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Label(pub Arc<str>);

/// TLS handshakes per key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TlsCounts {
    /// Full handshakes.
    pub full: u64,
    /// Resumed sessions.
    pub resumed: u64,
}

/// One label's (provider's) totals: its live keys' counters and gauges
/// merged, plus the counters of its keys dropped as unused (see
/// [`Pool::retired`](keepwarm_pool::Pool::retired)). Unlike summing
/// [`Client::stats`], these never go down.
#[derive(Clone, Debug, PartialEq)]
pub struct LabelStats {
    /// The label (provider name, or the host when requests carry no [`Label`]).
    pub label: Arc<str>,
    /// Counters and gauges summed over the label's keys, live and dropped.
    pub pool: KeySnapshot,
    /// TLS handshakes on the label's connections.
    pub tls: TlsCounts,
}

/// One label's (provider's) numbers in one call: its totals, HTTP/2
/// counters and open connections with their protocol (see
/// [`Client::report`]).
#[derive(Clone, Debug, PartialEq)]
pub struct LabelReport {
    /// Totals that never go down, as [`Client::label_stats`].
    pub stats: LabelStats,
    /// HTTP/2 counters summed over the label's keys (kept when a key is
    /// dropped as unused).
    pub h2: H2Counts,
    /// Open connections, oldest first.
    pub connections: Vec<crate::OpenConnection>,
}

/// TLS handshakes by live key, and by label for keys the pool dropped.
#[derive(Default)]
struct TlsTally {
    by_key: HashMap<Key, TlsCounts>,
    retired: HashMap<Arc<str>, TlsCounts>,
}

impl TlsTally {
    /// Moves the counts of keys the pool no longer holds to their label.
    fn fold_dropped(&mut self, live: impl Fn(&Key) -> bool) {
        let retired = &mut self.retired;
        self.by_key.retain(|k, c| {
            if live(k) {
                return true;
            }
            let r = retired.entry(k.label.clone()).or_default();
            r.full += c.full;
            r.resumed += c.resumed;
            false
        });
    }
}

/// One key's numbers: the pool's counters and gauges, TLS handshakes,
/// HTTP/2 counters and the open connections.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyStats {
    /// The key.
    pub key: Key,
    /// Pool counters and gauges.
    pub pool: KeySnapshot,
    /// TLS handshakes on this key's connections.
    pub tls: TlsCounts,
    /// HTTP/2 counters (all zero for an HTTP/1.1-only key).
    pub h2: H2Counts,
    /// Open connections: protocol and open streams, by id.
    pub connections: Vec<ConnStats>,
}

pub(crate) struct ClientInner {
    pub(crate) pool: Pool<Key, Conn>,
    /// The TLS configuration with ALPN for `Auto`, `Http1`, `Http2`; clones
    /// of one, sharing its session cache.
    tls: [Arc<ClientConfig>; 3],
    /// Options of labels without a profile (and the client-wide ones:
    /// `max_retries`).
    pub(crate) opts: ClientOptions,
    /// Options per label, from [`ClientBuilder::profile`]; replaced at run
    /// time by [`Client::set_profile`] (read per use, never held across an
    /// `.await`).
    profiles: RwLock<HashMap<String, ClientOptions>>,
    tls_counts: Mutex<TlsTally>,
    pub(crate) registry: Registry,
    /// The client's proxies, for labels whose choice is `Inherit`.
    proxy_rules: ProxyRules,
    /// Keys a [`Client::prewarm`] waits on.
    warm_watch: crate::warm::Watch,
    /// Pool keys and `Host` values built once per origin.
    origins: crate::origin::Origins,
}

impl ClientInner {
    /// The options in force for `key`: its label's profile, else the
    /// client's.
    pub(crate) fn opts_for(&self, key: &Key) -> ClientOptions {
        self.opts_for_label(&key.label)
    }

    /// The options in force for `label`.
    pub(crate) fn opts_for_label(&self, label: &str) -> ClientOptions {
        let profiles = self.profiles.read().unwrap_or_else(|e| e.into_inner());
        profiles.get(label).unwrap_or(&self.opts).clone()
    }

    /// The proxy for a request to `key` (whose `proxy` is not yet set):
    /// the request's own [`ProxyChoice`], else its label's, else the
    /// client's rules.
    fn proxy_for(&self, key: &Key, ext: Option<&ProxyChoice>) -> Option<Proxy> {
        let label;
        let choice = match ext {
            Some(c) if *c != ProxyChoice::Inherit => c,
            _ => {
                label = self.opts_for(key).proxy;
                &label
            }
        };
        match choice {
            ProxyChoice::Direct => None,
            ProxyChoice::Via(p) => Some(p.clone()),
            ProxyChoice::Inherit => self
                .proxy_rules
                .for_target(key.scheme, &key.host, key.port)
                .cloned(),
        }
    }

    /// The protocol to speak with `key`'s origin.
    pub(crate) fn protocol_for(&self, key: &Key) -> Protocol {
        self.opts_for(key).protocol
    }

    /// The TLS configuration for `key` (its profile's, else the client's)
    /// offering `protocol` in ALPN.
    pub(crate) fn tls_for(&self, key: &Key, protocol: Protocol) -> Arc<ClientConfig> {
        let i = match protocol {
            Protocol::Auto => 0,
            Protocol::Http1 => 1,
            Protocol::Http2 => 2,
        };
        match &self.opts_for(key).tls {
            Some(own) => own[i].clone(),
            None => self.tls[i].clone(),
        }
    }

    /// Connections of `key` may be HTTP/2.
    fn may_share(&self, key: &Key) -> bool {
        match self.protocol_for(key) {
            Protocol::Http2 => true,
            Protocol::Auto => key.scheme == Scheme::Https,
            Protocol::Http1 => false,
        }
    }

    pub(crate) fn count_handshake(&self, key: &Key, kind: Handshake) {
        let mut m = self.tls_counts.lock().unwrap_or_else(|e| e.into_inner());
        if !m.by_key.contains_key(key) && m.by_key.len() > 2 * self.pool.key_count() + 16 {
            // Keys the pool dropped as unused: keep their counts by label
            // only, so a client that talks to many hosts stays small.
            m.fold_dropped(|k| self.pool.has_key(k));
        }
        let c = m.by_key.entry(key.clone()).or_default();
        match kind {
            Handshake::Full => c.full += 1,
            Handshake::Resumed => c.resumed += 1,
            Handshake::None => {}
        }
    }
}

/// Opens pre-warm connections for the pool (`minFreeSockets`).
struct Prewarm(Weak<ClientInner>);

impl Connector<Key, Conn> for Prewarm {
    fn connect(&self, key: Key, id: u64) -> ConnectFuture<Conn> {
        let client = self.0.clone();
        Box::pin(async move {
            let outcome = conn::open(&client, &key, id).await;
            let Some(inner) = client.upgrade() else {
                return outcome.map_err(|e| Box::new(e) as BoxError);
            };
            match outcome {
                Ok(c) => {
                    let p = match &c {
                        Conn::H1(_) => ConnProtocol::Http1,
                        Conn::H2(_) => ConnProtocol::H2,
                    };
                    inner.warm_watch.report(&key, Ok(p));
                    Ok(c)
                }
                Err(e) => match inner.warm_watch.report(&key, Err(e)) {
                    Some(Err(e)) => Err(Box::new(e) as BoxError),
                    _ => Err("pre-warm connect failed (reported to prewarm)".into()),
                },
            }
        })
    }
}

/// An HTTP/1.1 + HTTPS client with a keyed keep-alive pool. Cheap to clone;
/// clones share the pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<ClientInner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("pool", &self.inner.pool)
            .finish()
    }
}

fn is_idempotent(parts: &Parts) -> bool {
    matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    ) || parts.headers.contains_key("idempotency-key")
}

impl Client {
    /// A client with default settings.
    pub fn new() -> Result<Client, Error> {
        ClientBuilder::default().build()
    }

    /// A builder with every option at its default.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    pub(crate) fn from_parts(
        config: PoolConfig,
        opts: ClientOptions,
        profiles: HashMap<String, ClientOptions>,
        tls: Arc<ClientConfig>,
        proxy_rules: ProxyRules,
    ) -> Client {
        let inner = Arc::new_cyclic(|me: &Weak<ClientInner>| {
            let pool = Pool::with_connector(config, Arc::new(Prewarm(me.clone())))
                .expect("validated by the builder");
            ClientInner {
                pool,
                tls: alpn_variants(&tls),
                opts,
                profiles: RwLock::new(profiles),
                tls_counts: Mutex::new(TlsTally::default()),
                registry: Registry::default(),
                proxy_rules,
                warm_watch: Default::default(),
                origins: Default::default(),
            }
        });
        Client { inner }
    }

    /// The pool configuration in force.
    pub fn pool_config(&self) -> &PoolConfig {
        self.inner.pool.config()
    }

    /// The inactivity `timeout` in force for keys with `label` (its
    /// profile's, else the client's).
    pub fn timeout_for(&self, label: &str) -> Duration {
        self.inner.opts_for_label(label).timeout
    }

    /// Sets the profile of `label` while the client runs (a config reload):
    /// its pool options apply from the next acquire, its timers from the
    /// next request or connection; open connections, idle ones
    /// included, stay. Invalid settings are rejected and change nothing.
    pub fn set_profile(&self, label: &str, profile: Profile) -> Result<(), Error> {
        let whose = format!(" (profile \"{label}\")");
        profile.validate(&whose)?;
        self.inner
            .pool
            .set_label_options(label, profile.pool.clone())
            .map_err(|e| Error::builder(format!("invalid client setting {e}{whose}")))?;
        let opts = ClientOptions {
            connect_timeout: profile.connect_timeout,
            timeout: profile.timeout,
            response_header_timeout: profile.response_header_timeout,
            keep_alive_msecs: profile.keep_alive_msecs,
            proxy: profile.proxy,
            protocol: profile.protocol,
            max_concurrent_streams: profile.max_concurrent_streams,
            tls: profile.tls.as_ref().map(|t| Arc::new(alpn_variants(t))),
            ..self.inner.opts.clone()
        };
        let mut profiles = self
            .inner
            .profiles
            .write()
            .unwrap_or_else(|e| e.into_inner());
        profiles.insert(label.to_string(), opts);
        Ok(())
    }

    /// `GET url`.
    pub async fn get(&self, url: &str) -> Result<Response<ResponseBody>, Error> {
        let req = Request::get(url)
            .body(Bytes::new())
            .map_err(|e| Error::invalid_url(format!("invalid URL `{url}`: {e}")))?;
        self.request(req).await
    }

    /// Sends `req` (an absolute URL) over a pooled connection.
    ///
    /// The response's extensions hold a [`ConnectionInfo`]. Its body must be
    /// read to the end for the connection to be reused. A [`ProxyChoice`]
    /// in the request's extensions overrides the label's and the client's
    /// proxy for this request.
    pub async fn request(&self, req: Request<Bytes>) -> Result<Response<ResponseBody>, Error> {
        self.request_in(None, req).await
    }

    /// [`request`](Self::request) under `label` (a provider's pool label)
    /// given apart, as a [`Label`] extension would: a caller that knows the
    /// label saves the extension's allocations. `None`: the request's own
    /// [`Label`] extension if any, else the host.
    pub async fn request_in(
        &self,
        label: Option<&Label>,
        req: Request<Bytes>,
    ) -> Result<Response<ResponseBody>, Error> {
        let own;
        let label = match label {
            Some(l) => Some(&l.0),
            None => {
                own = req.extensions().get::<Label>().map(|l| l.0.clone());
                own.as_ref()
            }
        };
        let origin = self.inner.origins.get(req.uri(), label)?;
        let mut key = origin.key;
        key.proxy = self
            .inner
            .proxy_for(&key, req.extensions().get::<ProxyChoice>());
        let (mut parts, body) = req.into_parts();
        // Plain HTTP/1.1 through a proxy: the absolute form, with the
        // proxy's credentials on every request. Otherwise the origin form
        // (a tunnel, or no proxy).
        let absolute = key.scheme == Scheme::Http
            && self.inner.protocol_for(&key) != Protocol::Http2
            && key.proxy.is_some();
        let pq = std::mem::take(&mut parts.uri)
            .into_parts()
            .path_and_query
            .filter(|p| !p.as_str().is_empty())
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let target = if absolute {
            format!("http://{}{pq}", key.host_header())
                .parse::<Uri>()
                .map_err(|e| e.to_string())
        } else {
            let mut target = uri::Parts::default();
            target.path_and_query = Some(pq);
            Uri::from_parts(target).map_err(|e| e.to_string())
        };
        parts.uri = target
            .map_err(|e| Error::invalid_url(format!("invalid path in a request to {key}: {e}")))?;
        if let Some(auth) = key.proxy.as_ref().and_then(Proxy::authorization) {
            if absolute {
                parts.headers.insert(PROXY_AUTHORIZATION, auth.clone());
            }
        }
        if !parts.headers.contains_key(HOST) {
            parts.headers.insert(HOST, origin.host);
        }
        if !self.inner.pool.options_for(&key).keep_alive {
            parts
                .headers
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
        let idempotent = is_idempotent(&parts);
        // Every attempt writes its head from these parts: nothing is copied
        // for a replay.
        let (method, uri, headers) = (&parts.method, &parts.uri, &parts.headers);
        let mut retries = 0u32;
        // Refused HTTP/2 streams were not processed: they have their own
        // budget, apart from maxRetries.
        let mut refusals = 0u32;
        if self.inner.may_share(&key) {
            self.inner.pool.expect_shared(&key);
        }
        loop {
            let mut lease = self.checkout(&key).await?;
            let reused = lease.info().reused;
            let opts = self.inner.opts_for(&key);
            let header_timeout = opts.response_header_timeout.unwrap_or(opts.timeout);
            let h1 = match lease.conn_mut() {
                Conn::H1(c) => c,
                Conn::H2(c) => {
                    let conn = c.clone();
                    let head = http2::send::head(&key, method, uri, headers)?;
                    let sent = http2::send::send(
                        &self.inner,
                        &key,
                        lease,
                        conn,
                        head,
                        body.clone(),
                        header_timeout,
                        idempotent,
                    )
                    .await;
                    match sent {
                        Ok(resp) => return Ok(self.wrap_h2(&key, resp, retries)),
                        Err(Failure::Refused(_)) if refusals < http2::REFUSED_RETRIES => {
                            refusals += 1;
                            retries += 1;
                            self.inner.registry.count(&key, |c| c.retried += 1);
                            self.inner.pool.record_retry(&key);
                            continue;
                        }
                        Err(Failure::Retry(_)) if retries < self.inner.opts.max_retries => {
                            retries += 1;
                            self.inner.pool.record_retry(&key);
                            continue;
                        }
                        Err(Failure::Refused(e) | Failure::Retry(e) | Failure::Fatal(e)) => {
                            return Err(e)
                        }
                    }
                }
            };
            let sent =
                tokio::time::timeout(header_timeout, h1.send(method, uri, headers, &body)).await;
            let err = match sent {
                Ok(Ok(head)) => return Ok(self.wrap(head, lease, retries, opts.timeout)),
                Ok(Err(e)) => e,
                Err(_) => {
                    lease.close(CloseReason::Error);
                    return Err(Error::timeout(
                        format_args!("waiting for response headers from {key}"),
                        header_timeout,
                    ));
                }
            };
            lease.close(if err.early {
                CloseReason::ServerClosed
            } else {
                CloseReason::Error
            });
            // Go's rules: on a reused connection, a request not written at
            // all may go again, and an idempotent one that got no response
            // byte.
            let again = err.unwritten || (idempotent && err.early);
            if again && reused && retries < self.inner.opts.max_retries {
                retries += 1;
                self.inner.pool.record_retry(&key);
                continue;
            }
            return Err(Error::new(
                Kind::Request,
                format!("request to {key} failed"),
                Some(err.source),
            ));
        }
    }

    async fn checkout(&self, key: &Key) -> Result<Lease<Key, Conn>, Error> {
        match self.inner.pool.acquire(key).await {
            Ok(Acquired::Ready(lease)) => Ok(lease),
            Ok(Acquired::Connect(permit)) => {
                match conn::open(&Arc::downgrade(&self.inner), key, permit.id()).await {
                    Ok(c) => Ok(permit.complete(c)),
                    Err(e) => {
                        permit.fail();
                        Err(e)
                    }
                }
            }
            Err(AcquireError::Exhausted {
                max_sockets,
                busy,
                waited,
                ..
            }) => {
                // The measured wait (acquireTimeout plus any scheduling
                // delay), not the configured limit.
                Err(Error::new(
                    Kind::PoolExhausted,
                    format!(
                        "pool exhausted for {key}: {busy} of {max_sockets} connections busy, waited {}",
                        humanize(waited)
                    ),
                    None,
                ))
            }
            Err(AcquireError::Closed) => Err(Error::new(
                Kind::PoolExhausted,
                format!("pool for {key} closed while waiting"),
                None,
            )),
        }
    }

    fn wrap_h2(
        &self,
        key: &Key,
        resp: Response<http2::body::H2Body>,
        retries: u32,
    ) -> Response<ResponseBody> {
        let (mut parts, body) = resp.into_parts();
        if let Some(lease) = body.guard.lease() {
            let i = *lease.info();
            parts.extensions.insert(ConnectionInfo {
                id: i.id,
                reused: i.reused,
                requests_before: i.requests_before,
                idle_for: i.idle_for,
                age: i.age,
                handshake: lease.conn().handshake(),
                retries,
            });
        }
        let body = ResponseBody::h2(body, key.clone(), self.inner.opts_for(key).timeout);
        Response::from_parts(parts, body)
    }

    fn wrap(
        &self,
        head: h1::Head,
        mut lease: Lease<Key, Conn>,
        retries: u32,
        timeout: Duration,
    ) -> Response<ResponseBody> {
        let resp = head.response;
        let h = hints::read(resp.version(), resp.headers());
        if let Some(secs) = h.timeout_secs {
            lease.limit_idle_timeout(hints::idle_cap(secs));
        }
        if let Some(max) = h.max {
            lease.limit_remaining_requests(max);
        }
        let i = *lease.info();
        let info = ConnectionInfo {
            id: i.id,
            reused: i.reused,
            requests_before: i.requests_before,
            idle_for: i.idle_for,
            age: i.age,
            handshake: lease.conn().handshake(),
            retries,
        };
        let (mut parts, ()) = resp.into_parts();
        parts.extensions.insert(info);
        // A body that ends when the server closes, or a switch to another
        // protocol (101), leaves nothing to reuse.
        let close = h.close
            || head.framing == h1::Framing::UntilClose
            || parts.status == http::StatusCode::SWITCHING_PROTOCOLS;
        let body = ResponseBody::new(h1::body::H1Body::new(head.framing), lease, close, timeout);
        Response::from_parts(parts, body)
    }

    /// Opens `minFreeSockets` connections to `url`'s origin now, so even the
    /// first request skips the handshake. `label` as in [`Label`].
    pub fn warm(&self, url: &str, label: Option<&str>) -> Result<(), Error> {
        let uri: Uri = url
            .parse()
            .map_err(|e| Error::invalid_url(format!("invalid URL `{url}`: {e}")))?;
        let label = label.map(Arc::<str>::from);
        let mut key = Key::from_uri(&uri, label.as_ref())?;
        key.proxy = self.inner.proxy_for(&key, None);
        self.inner.pool.warm(&key);
        Ok(())
    }

    /// Opens `minFreeSockets` connections to `url`'s origin (as
    /// [`warm`](Self::warm)) and waits until each is open — TCP, TLS and
    /// ALPN done — or failed; each connect is bounded by `connectTimeout`.
    /// Connections already idle or being warmed count toward
    /// `minFreeSockets` and are not reported again. `label` as in [`Label`].
    pub async fn prewarm(
        &self,
        url: &str,
        label: Option<&str>,
    ) -> Result<crate::WarmReport, Error> {
        let uri: Uri = url
            .parse()
            .map_err(|e| Error::invalid_url(format!("invalid URL `{url}`: {e}")))?;
        let label = label.map(Arc::<str>::from);
        let key = Key::from_uri(&uri, label.as_ref())?;
        if self.inner.may_share(&key) {
            self.inner.pool.expect_shared(&key);
        }
        let mut rx = self.inner.warm_watch.start(&key);
        let started = self.inner.pool.warm(&key);
        let mut report = crate::WarmReport::default();
        for _ in 0..started {
            match rx.recv().await {
                Some(Ok(p)) => report.opened.push(p),
                Some(Err(e)) => report.failed.push(e),
                None => break,
            }
        }
        self.inner.warm_watch.stop(&key);
        Ok(report)
    }

    /// Every live key's counters, gauges and TLS handshakes, sorted by key.
    /// A key the pool dropped as unused (nothing open or waiting for
    /// `freeSocketTimeout`) is no longer listed; for totals that include
    /// such keys use [`label_stats`](Self::label_stats).
    pub fn stats(&self) -> Vec<KeyStats> {
        let tls = self
            .inner
            .tls_counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_key
            .clone();
        let h2 = self.inner.registry.h2_counts();
        let mut conns = self.inner.registry.connections();
        let mut v: Vec<KeyStats> = self
            .inner
            .pool
            .snapshot()
            .into_iter()
            .map(|(key, pool)| KeyStats {
                tls: tls.get(&key).copied().unwrap_or_default(),
                h2: h2.get(&key).copied().unwrap_or_default(),
                connections: conns.remove(&key).unwrap_or_default(),
                key,
                pool,
            })
            .collect();
        v.sort_by(|a, b| {
            (&a.key.label, &a.key.host, a.key.port, a.key.scheme.as_str()).cmp(&(
                &b.key.label,
                &b.key.host,
                b.key.port,
                b.key.scheme.as_str(),
            ))
        });
        v
    }

    /// Replaces the pool options of every key with `label` (a provider) from
    /// the next acquire on, keeping its open connections (a config reload).
    pub fn set_label_options(
        &self,
        label: &str,
        opts: keepwarm_pool::PoolOptions,
    ) -> Result<(), keepwarm_pool::OptionsError> {
        self.inner.pool.set_label_options(label, opts)
    }

    /// Every open connection of every key (id, age, idle time, requests
    /// carried), sorted by key like [`stats`](Self::stats); for dashboards.
    pub fn connections(&self) -> Vec<(Key, Vec<keepwarm_pool::ConnectionSnapshot>)> {
        let mut v = self.inner.pool.connections();
        v.sort_by(|a, b| {
            (&a.0.label, &a.0.host, a.0.port, a.0.scheme.as_str()).cmp(&(
                &b.0.label,
                &b.0.host,
                b.0.port,
                b.0.scheme.as_str(),
            ))
        });
        v
    }

    /// Totals per label (provider), sorted by label: live keys merged plus
    /// the counters of keys dropped as unused. Sum these, not
    /// [`stats`](Self::stats), for numbers that must never go down.
    pub fn label_stats(&self) -> Vec<LabelStats> {
        let mut out: HashMap<Arc<str>, LabelStats> = HashMap::new();
        let blank = |label: Arc<str>| LabelStats {
            label,
            pool: KeySnapshot::default(),
            tls: TlsCounts::default(),
        };
        for k in self.stats() {
            let l = out
                .entry(k.key.label.clone())
                .or_insert_with(|| blank(k.key.label.clone()));
            l.pool.merge(&k.pool);
            l.tls.full += k.tls.full;
            l.tls.resumed += k.tls.resumed;
        }
        for (label, c) in self.inner.pool.retired() {
            let label: Arc<str> = label.into();
            let l = out.entry(label.clone()).or_insert_with(|| blank(label));
            l.pool.counters.merge(&c);
        }
        let tls = self
            .inner
            .tls_counts
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (label, c) in &tls.retired {
            let l = out
                .entry(label.clone())
                .or_insert_with(|| blank(label.clone()));
            l.tls.full += c.full;
            l.tls.resumed += c.resumed;
        }
        drop(tls);
        let mut v: Vec<LabelStats> = out.into_values().collect();
        v.sort_by(|a, b| a.label.cmp(&b.label));
        v
    }

    /// Every label's totals, HTTP/2 counters and open connections with
    /// their protocol and open streams, sorted by label: what a dashboard
    /// needs, read in one call.
    pub fn report(&self) -> Vec<LabelReport> {
        let stats = self.label_stats();
        let h2 = self.inner.registry.h2_counts();
        let wire = self.inner.registry.connections();
        let conns = self.inner.pool.connections();
        let mut out: Vec<LabelReport> = stats
            .into_iter()
            .map(|stats| LabelReport {
                stats,
                h2: H2Counts::default(),
                connections: Vec::new(),
            })
            .collect();
        let find = |out: &mut Vec<LabelReport>, label: &Arc<str>| {
            out.iter().position(|r| r.stats.label == *label)
        };
        for (key, c) in &h2 {
            if let Some(i) = find(&mut out, &key.label) {
                let t = &mut out[i].h2;
                t.streams += c.streams;
                t.goaways += c.goaways;
                t.refused += c.refused;
                t.retried += c.retried;
                t.ping_timeouts += c.ping_timeouts;
            }
        }
        for (key, list) in conns {
            let Some(i) = find(&mut out, &key.label) else {
                continue;
            };
            let live = wire.get(&key);
            for pool in list {
                let w = live.and_then(|l| l.iter().find(|w| w.id == pool.id));
                out[i].connections.push(crate::OpenConnection {
                    protocol: w.map(|w| w.protocol),
                    open_streams: w.and_then(|w| w.open_streams),
                    pool,
                });
            }
        }
        for r in &mut out {
            r.connections
                .sort_by_key(|c| (std::cmp::Reverse(c.pool.age), c.pool.id));
        }
        out
    }

    /// Closes the idle connections of every key with `label` now; active
    /// ones close when their request ends. No in-flight request fails.
    pub fn destroy_label(&self, label: &str) -> keepwarm_pool::DestroyReport {
        self.inner.pool.destroy_label(label)
    }

    /// Closes the idle connections of every key `pred` accepts now (e.g.
    /// one provider's `https` keys); active ones close when released.
    pub fn destroy_where(&self, pred: impl Fn(&Key) -> bool) -> keepwarm_pool::DestroyReport {
        self.inner.pool.destroy_where(pred)
    }
}

/// `tls` with the ALPN list of `Auto`, `Http1` and `Http2`: clones sharing
/// one session cache.
pub(crate) fn alpn_variants(tls: &Arc<ClientConfig>) -> [Arc<ClientConfig>; 3] {
    let with_alpn = |p: Protocol| {
        let mut c = (**tls).clone();
        c.alpn_protocols = p.alpn();
        Arc::new(c)
    };
    [
        with_alpn(Protocol::Auto),
        with_alpn(Protocol::Http1),
        with_alpn(Protocol::Http2),
    ]
}

/// `30s`, `1.5s`, `250ms`.
fn humanize(d: Duration) -> String {
    if d >= Duration::from_secs(1) {
        let s = d.as_secs_f64();
        if (s - s.round()).abs() < 0.05 {
            format!("{}s", s.round())
        } else {
            format!("{s:.1}s")
        }
    } else {
        format!("{}ms", d.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn humanized_waits() {
        assert_eq!(humanize(Duration::from_secs(30)), "30s");
        assert_eq!(humanize(Duration::from_millis(1500)), "1.5s");
        assert_eq!(humanize(Duration::from_millis(250)), "250ms");
    }

    #[test]
    fn idempotency() {
        let p = |m: Method, key: bool| {
            let mut b = Request::builder().method(m);
            if key {
                b = b.header("idempotency-key", "k1");
            }
            b.body(()).unwrap().into_parts().0
        };
        assert!(is_idempotent(&p(Method::GET, false)));
        assert!(is_idempotent(&p(Method::PUT, false)));
        assert!(!is_idempotent(&p(Method::POST, false)));
        assert!(is_idempotent(&p(Method::POST, true)));
    }
}
