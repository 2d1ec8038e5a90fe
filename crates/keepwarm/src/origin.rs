//! What a request's origin needs built once, not per request: its pool key
//! (without the proxy) and its `Host` header value, cached per label,
//! scheme and authority. A hit allocates nothing; the cache is bounded
//! (cleared when full).

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex};

use http::header::HeaderValue;
use http::Uri;

use crate::error::Error;
use crate::key::Key;

/// Origins kept at most; past it the cache starts over.
pub(crate) const ORIGIN_CACHE_CAP: usize = 1024;

/// One origin, built.
#[derive(Clone)]
pub(crate) struct Origin {
    /// The pool key, `proxy` not yet set.
    pub(crate) key: Key,
    /// `host[:port]`, the port only when not the scheme's default.
    pub(crate) host: HeaderValue,
}

struct Entry {
    label: Option<Arc<str>>,
    scheme: String,
    authority: String,
    origin: Origin,
}

impl Entry {
    fn is(&self, label: Option<&Arc<str>>, scheme: &str, authority: &str) -> bool {
        self.label.as_deref() == label.map(|l| &**l)
            && self.scheme == scheme
            && self.authority == authority
    }
}

/// The cache: entries by a hash of (label, scheme, authority), compared in
/// full on lookup.
#[derive(Default)]
pub(crate) struct Origins {
    hasher: RandomState,
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    map: HashMap<u64, Vec<Entry>>,
    len: usize,
}

impl Origins {
    /// The origin of absolute `uri` under `label` (default: its host).
    pub(crate) fn get(&self, uri: &Uri, label: Option<&Arc<str>>) -> Result<Origin, Error> {
        let scheme = uri.scheme_str().unwrap_or("");
        let authority = uri.authority().map_or("", |a| a.as_str());
        let hash = self
            .hasher
            .hash_one((label.map(|l| &**l), scheme, authority));
        {
            let t = self.table.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = t
                .map
                .get(&hash)
                .and_then(|v| v.iter().find(|e| e.is(label, scheme, authority)))
            {
                return Ok(e.origin.clone());
            }
        }
        let key = Key::from_uri(uri, label)?;
        let host = HeaderValue::from_str(&key.host_header())
            .map_err(|e| Error::invalid_url(format!("invalid host `{}`: {e}", key.host)))?;
        let origin = Origin { key, host };
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(e) = t
            .map
            .get(&hash)
            .and_then(|v| v.iter().find(|e| e.is(label, scheme, authority)))
        {
            // Built meanwhile by another request.
            return Ok(e.origin.clone());
        }
        if t.len >= ORIGIN_CACHE_CAP {
            t.map.clear();
            t.len = 0;
        }
        t.len += 1;
        t.map.entry(hash).or_default().push(Entry {
            label: label.cloned(),
            scheme: scheme.to_string(),
            authority: authority.to_string(),
            origin: origin.clone(),
        });
        Ok(origin)
    }

    /// Origins cached now.
    #[cfg(test)]
    fn len(&self) -> usize {
        let t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(t.len, t.map.values().map(Vec::len).sum::<usize>());
        t.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(s: &str) -> Uri {
        s.parse().unwrap()
    }

    #[test]
    fn a_hit_returns_the_built_key_and_host() {
        let o = Origins::default();
        let a = o.get(&uri("https://api.example.com/v1/x"), None).unwrap();
        let b = o.get(&uri("https://api.example.com/v2?q=1"), None).unwrap();
        assert!(Arc::ptr_eq(&a.key.host, &b.key.host), "built once");
        assert_eq!(b.host, "api.example.com");
        assert_eq!(o.len(), 1);
        let label: Arc<str> = "p".into();
        let c = o.get(&uri("http://[::1]:8080/"), Some(&label)).unwrap();
        assert_eq!(
            (&*c.key.label, c.host.to_str().unwrap()),
            ("p", "[::1]:8080")
        );
        // Another label, scheme or port is another origin.
        o.get(&uri("http://[::1]:8080/"), None).unwrap();
        o.get(&uri("https://[::1]:8080/"), Some(&label)).unwrap();
        o.get(&uri("http://[::1]:8081/"), Some(&label)).unwrap();
        assert_eq!(o.len(), 5);
    }

    #[test]
    fn errors_are_not_cached_and_still_say_what_is_wrong() {
        let o = Origins::default();
        let e = o.get(&uri("ftp://x/"), None).err().unwrap();
        assert!(e.to_string().contains("unsupported scheme `ftp`"), "{e}");
        assert_eq!(o.len(), 0);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let o = Origins::default();
        for port in 0..(3 * ORIGIN_CACHE_CAP as u32) {
            let u = uri(&format!("http://h{port}.example/"));
            let got = o.get(&u, None).unwrap();
            assert_eq!(&*got.key.host, format!("h{port}.example"));
            assert!(o.len() <= ORIGIN_CACHE_CAP);
        }
        assert!(o.len() >= 1);
    }
}
