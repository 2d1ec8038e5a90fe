//! The live resilience state of one registry: per provider its key pool,
//! circuit breaker, retry policy and retry counters; the fallback chains;
//! and the fallbacks taken. Built once from the config with the registry,
//! so a reload starts afresh (disabled keys come back).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use super::config::{Fallbacks, ResilienceConfig};
use super::{Breaker, KeyPool, RetryCounters, RetryPolicy};
use crate::config::Config;

/// One provider's guards.
#[derive(Debug)]
pub struct ProviderGuards {
    /// The provider's name as configured.
    pub name: Arc<str>,
    /// Its keys as a pool, when `ApiKeyPool.enabled`; else `None` (the
    /// first key is always sent).
    pub keys: Option<Arc<KeyPool>>,
    /// Its circuit breaker.
    pub breaker: Arc<Breaker>,
    /// Its retry policy (the global `Retry` with its own `retry` over it).
    pub retry: RetryPolicy,
    /// Retries made for it, by reason.
    pub retries: RetryCounters,
    /// Requests that fell back from it to another target.
    pub fell_back: AtomicU64,
}

/// Everything resilience keeps for one registry.
#[derive(Debug)]
pub struct Resilience {
    providers: Vec<ProviderGuards>,
    settings: ResilienceConfig,
    /// Fallbacks taken, by `(from provider, to provider)`.
    taken: Mutex<BTreeMap<(String, String), u64>>,
}

impl Resilience {
    /// Guards for every provider of `config`.
    pub fn build(config: &Config) -> Resilience {
        let r = &config.resilience;
        let providers = config
            .providers
            .iter()
            .map(|p| {
                let keys = (r.key_pool.enabled && !p.resilience.keys.is_empty()).then(|| {
                    Arc::new(KeyPool::new(
                        &p.name,
                        p.resilience.keys.clone(),
                        r.key_pool.strategy,
                        r.key_pool.cooldown,
                    ))
                });
                ProviderGuards {
                    name: Arc::from(p.name.as_str()),
                    keys,
                    breaker: Arc::new(Breaker::new(&p.name, r.breaker)),
                    retry: RetryPolicy::new(p.resilience.retry.unwrap_or(r.retry)),
                    retries: RetryCounters::default(),
                    fell_back: AtomicU64::new(0),
                }
            })
            .collect();
        Resilience {
            providers,
            settings: r.clone(),
            taken: Mutex::new(BTreeMap::new()),
        }
    }

    /// Provider `name`'s guards (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&ProviderGuards> {
        self.providers
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// Every provider's guards, in config order.
    pub fn providers(&self) -> &[ProviderGuards] {
        &self.providers
    }

    /// The fallback chains.
    pub fn fallbacks(&self) -> &Fallbacks {
        &self.settings.fallback
    }

    /// The settings in force.
    pub fn settings(&self) -> &ResilienceConfig {
        &self.settings
    }

    /// Counts a fallback from provider `from` to provider `to`.
    pub fn count_fallback(&self, from: &str, to: &str) {
        if let Some(p) = self.get(from) {
            p.fell_back
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let mut t = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        *t.entry((from.to_owned(), to.to_owned())).or_default() += 1;
    }

    /// Fallbacks taken: `((from, to), count)`.
    pub fn fallbacks_taken(&self) -> Vec<((String, String), u64)> {
        let t = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        t.iter().map(|(k, v)| (k.clone(), *v)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    #[test]
    fn built_from_config_with_overrides() {
        let text = r#"{"ApiKeyPool": {"enabled": true}, "Retry": {"attempts": 3},
            "Providers": [
              {"name": "a", "api_base_url": "http://a/v1/messages", "api_keys": ["k1", "k2"], "retry": {"attempts": 0}},
              {"name": "b", "api_base_url": "http://b/v1/messages", "api_key": "k3"}],
            "fallback": {"default": ["b,m"]}}"#;
        let (c, w) = parse(text, &|_| None).unwrap();
        assert!(w.is_empty(), "{w:?}");
        let r = Resilience::build(&c);
        let (a, b) = (r.get("A").unwrap(), r.get("b").unwrap());
        assert_eq!(a.keys.as_ref().map(|k| k.len()), Some(2));
        assert_eq!(
            (a.retry.settings().attempts, b.retry.settings().attempts),
            (0, 3)
        );
        assert_eq!(r.fallbacks().chain(None)[0].provider, "b");
        r.count_fallback("a", "b");
        r.count_fallback("a", "b");
        assert_eq!(r.fallbacks_taken(), [(("a".into(), "b".into()), 2)]);
        assert_eq!(a.fell_back.load(std::sync::atomic::Ordering::Relaxed), 2);
    }

    #[test]
    fn without_the_pool_only_the_first_key_is_used_and_a_warning_says_so() {
        let text = r#"{"Providers": [{"name": "a", "api_base_url": "http://a/v1/messages", "api_key": "k0", "api_keys": ["k1"]}]}"#;
        let (c, w) = parse(text, &|_| None).unwrap();
        assert_eq!(
            w,
            ["Providers[0].api_keys: ApiKeyPool.enabled is false, so only the first key is used"]
        );
        assert_eq!(c.providers[0].api_key.expose(), "k0");
        assert!(Resilience::build(&c).get("a").unwrap().keys.is_none());
    }
}
