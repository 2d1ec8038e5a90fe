//! The live resilience state of one registry: per provider its key pool,
//! circuit breaker, retry policy and retry counters; the fallback chains;
//! and the fallbacks taken. Built with the registry and swapped with it; a
//! reload carries over the guards of every provider whose configuration and
//! resilience settings did not change (its breaker stays open, its keys stay
//! in cooldown) and builds fresh ones for the rest (disabled keys come back).

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
    providers: Vec<Arc<ProviderGuards>>,
    settings: ResilienceConfig,
    /// Fallbacks taken, by `(from provider, to provider)`.
    taken: Mutex<BTreeMap<(String, String), u64>>,
}

impl Resilience {
    /// Guards for every provider of `config`.
    pub fn build(config: &Config) -> Resilience {
        Self::carry_over(config, None)
    }

    /// Guards for every provider of `config`, reusing those of `before`
    /// (the registry being replaced, with the config it was built from) for each
    /// provider whose entry, resolved proxy, and the global key pool,
    /// breaker and retry settings are unchanged. The fallbacks taken carry over too.
    pub fn carry_over(config: &Config, before: Option<(&Config, &Resilience)>) -> Resilience {
        let r = &config.resilience;
        let same_globals = |old: &Config| {
            let o = &old.resilience;
            (o.key_pool, o.breaker, o.retry) == (r.key_pool, r.breaker, r.retry)
        };
        let providers = config
            .providers
            .iter()
            .map(|p| {
                let kept = before
                    .filter(|(c, _)| same_globals(c))
                    .and_then(|(c, res)| {
                        let entry = c.providers.iter().find(|o| o.name == p.name)?;
                        // The same entry through the same proxy: a breaker opened
                        // by a failing proxy resets when the proxy changes.
                        let same = entry == p && c.proxy.resolve(entry) == config.proxy.resolve(p);
                        same.then(|| res.shared(&p.name).cloned()).flatten()
                    });
                if let Some(guards) = kept {
                    return guards;
                }
                let keys = (r.key_pool.enabled && !p.resilience.keys.is_empty()).then(|| {
                    Arc::new(KeyPool::new(
                        &p.name,
                        p.resilience.keys.clone(),
                        r.key_pool.strategy,
                        r.key_pool.cooldown,
                    ))
                });
                Arc::new(ProviderGuards {
                    name: Arc::from(p.name.as_str()),
                    keys,
                    breaker: Arc::new(Breaker::new(&p.name, r.breaker)),
                    retry: RetryPolicy::new(p.resilience.retry.unwrap_or(r.retry)),
                    retries: RetryCounters::default(),
                    fell_back: AtomicU64::new(0),
                })
            })
            .collect();
        let taken = before.map(|(_, res)| res.taken_map()).unwrap_or_default();
        Resilience {
            providers,
            settings: r.clone(),
            taken: Mutex::new(taken),
        }
    }

    /// Provider `name`'s guards (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&ProviderGuards> {
        self.shared(name).map(|g| &**g)
    }

    fn shared(&self, name: &str) -> Option<&Arc<ProviderGuards>> {
        self.providers
            .iter()
            .find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// Every provider's guards, in config order.
    pub fn providers(&self) -> &[Arc<ProviderGuards>] {
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
        self.taken_map().into_iter().collect()
    }

    fn taken_map(&self) -> BTreeMap<(String, String), u64> {
        let t = self.taken.lock().unwrap_or_else(PoisonError::into_inner);
        t.clone()
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

    #[tokio::test(start_paused = true)]
    async fn a_reload_keeps_unchanged_providers_guards_and_resets_changed_ones() {
        use crate::resilience::{BreakerState, Outcome};
        use tokio::time::Instant;
        let text = |b_url: &str, threshold: u32| {
            format!(
                r#"{{"CircuitBreaker": {{"failureThreshold": {threshold}}}, "Providers": [
                  {{"name": "a", "api_base_url": "http://a/v1/messages", "api_key": "k"}},
                  {{"name": "b", "api_base_url": "{b_url}", "api_key": "k"}}]}}"#
            )
        };
        let (c1, _) = parse(&text("http://b/v1/messages", 1), &|_| None).unwrap();
        let r1 = Resilience::build(&c1);
        for name in ["a", "b"] {
            let g = r1.get(name).unwrap();
            g.breaker
                .admit(Instant::now())
                .unwrap()
                .record(Outcome::Connect, Instant::now());
            assert_eq!(g.breaker.state(), BreakerState::Open, "{name}");
        }
        r1.count_fallback("a", "b");
        // b's endpoint changes: a keeps its guards (same allocation, still
        // open), b starts closed; the fallbacks taken carry over.
        let (c2, _) = parse(&text("http://b2/v1/messages", 1), &|_| None).unwrap();
        let r2 = Resilience::carry_over(&c2, Some((&c1, &r1)));
        assert!(std::ptr::eq(r1.get("a").unwrap(), r2.get("a").unwrap()));
        assert_eq!(r2.get("a").unwrap().breaker.state(), BreakerState::Open);
        assert_eq!(r2.get("b").unwrap().breaker.state(), BreakerState::Closed);
        assert_eq!(r2.fallbacks_taken(), [(("a".into(), "b".into()), 1)]);
        // PROXY_URL changes: a's requests take another route, its breaker
        // starts closed.
        let mut c2p = c2.clone();
        c2p.proxy.url = Some(keepwarm::Proxy::parse("http://127.0.0.1:3128").unwrap());
        let r2p = Resilience::carry_over(&c2p, Some((&c2, &r2)));
        assert_eq!(r2p.get("a").unwrap().breaker.state(), BreakerState::Closed);
        // The global breaker settings change: every provider starts afresh.
        let (c3, _) = parse(&text("http://b2/v1/messages", 5), &|_| None).unwrap();
        let r3 = Resilience::carry_over(&c3, Some((&c2, &r2)));
        assert_eq!(r3.get("a").unwrap().breaker.state(), BreakerState::Closed);
    }
}
