//! A provider's API keys used as a pool (`Providers[].api_keys` with
//! `ApiKeyPool.enabled`). A key is only a header: every key shares the
//! provider's connections.
//!
//! [`KeyPool::pick`] chooses a usable key — `least-loaded` takes the one
//! with the fewest requests in flight (ties broken round-robin),
//! `round-robin` the next in turn — and returns a [`KeyLease`] that counts
//! the request in flight until it is dropped. A `429` puts the key in
//! cooldown for the provider's `retry-after` (or `ApiKeyPool.cooldownMs`);
//! a `401`/`403` disables it until the config is reloaded. Keys appear in
//! logs and stats only as `…` plus their last 4 characters.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::config::Strategy;
use crate::config::Secret;

/// Whether a key may be used now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum KeyState {
    Active,
    /// Rate limited until then.
    Cooling(Instant),
    /// Refused by the provider with this status (`401`/`403`).
    Disabled(u16),
}

struct Key {
    secret: Secret,
    redacted: String,
    in_flight: AtomicU64,
    requests: AtomicU64,
    rate_limited: AtomicU64,
    state: Mutex<KeyState>,
}

impl Key {
    /// The state now; an expired cooldown becomes `Active`.
    fn state(&self, now: Instant) -> KeyState {
        let mut s = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(*s, KeyState::Cooling(until) if until <= now) {
            *s = KeyState::Active;
        }
        *s
    }
}

/// `…` and the last 4 characters of a key (only `…` for keys shorter
/// than 8 characters, which would give away too much).
pub fn redact(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    match chars.len() {
        n if n >= 8 => format!("…{}", chars[n - 4..].iter().collect::<String>()),
        _ => "…".to_owned(),
    }
}

/// Why no key could be picked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoKey {
    /// Every key is rate limited; the first becomes usable after this long.
    AllCooling(Duration),
    /// Every key was refused (`401`/`403`) and stays disabled until reload.
    AllDisabled,
}

/// One provider's keys. Share it as `Arc<KeyPool>`.
pub struct KeyPool {
    provider: Arc<str>,
    keys: Box<[Key]>,
    strategy: Strategy,
    cooldown: Duration,
    turn: AtomicUsize,
}

impl std::fmt::Debug for KeyPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<&str> = self.keys.iter().map(|k| k.redacted.as_str()).collect();
        f.debug_struct("KeyPool")
            .field("provider", &self.provider)
            .field("keys", &keys)
            .field("strategy", &self.strategy)
            .finish()
    }
}

impl KeyPool {
    /// A pool of `keys` (at least one; an empty list yields a pool whose
    /// every pick is [`NoKey::AllDisabled`]). `cooldown` applies to a `429`
    /// that carries no `retry-after`.
    pub fn new(
        provider: &str,
        keys: Vec<Secret>,
        strategy: Strategy,
        cooldown: Duration,
    ) -> KeyPool {
        let keys = keys
            .into_iter()
            .map(|secret| Key {
                redacted: redact(secret.expose()),
                secret,
                in_flight: AtomicU64::new(0),
                requests: AtomicU64::new(0),
                rate_limited: AtomicU64::new(0),
                state: Mutex::new(KeyState::Active),
            })
            .collect();
        KeyPool {
            provider: Arc::from(provider),
            keys,
            strategy,
            cooldown,
            turn: AtomicUsize::new(0),
        }
    }

    /// How many keys the pool holds.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the pool holds no key.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether some key is usable now.
    pub fn available(&self, now: Instant) -> bool {
        self.keys.iter().any(|k| k.state(now) == KeyState::Active)
    }

    /// Picks a usable key by the pool's strategy and counts a request on it.
    pub fn pick(self: &Arc<Self>, now: Instant) -> Result<KeyLease, NoKey> {
        let n = self.keys.len();
        let start = self.turn.fetch_add(1, Relaxed);
        let mut best: Option<(usize, u64)> = None;
        let mut soonest: Option<Duration> = None;
        for i in (0..n).map(|j| (start + j) % n) {
            let key = &self.keys[i];
            match key.state(now) {
                KeyState::Active => {}
                KeyState::Cooling(until) => {
                    let left = until.saturating_duration_since(now);
                    soonest = Some(soonest.map_or(left, |s| s.min(left)));
                    continue;
                }
                KeyState::Disabled(_) => continue,
            }
            let load = key.in_flight.load(Relaxed);
            if best.is_none_or(|(_, b)| load < b) {
                best = Some((i, load));
            }
            if self.strategy == Strategy::RoundRobin {
                break;
            }
        }
        let Some((index, _)) = best else {
            return Err(soonest.map_or(NoKey::AllDisabled, NoKey::AllCooling));
        };
        let key = &self.keys[index];
        key.in_flight.fetch_add(1, Relaxed);
        key.requests.fetch_add(1, Relaxed);
        Ok(KeyLease {
            pool: Arc::clone(self),
            index,
        })
    }

    /// Per-key counters and states, keys redacted, in config order.
    pub fn stats(&self, now: Instant) -> Vec<KeyStats> {
        self.keys
            .iter()
            .map(|k| {
                let (state, cooldown_ms) = match k.state(now) {
                    KeyState::Active => ("active", 0),
                    KeyState::Cooling(until) => (
                        "cooldown",
                        until.saturating_duration_since(now).as_millis() as u64,
                    ),
                    KeyState::Disabled(_) => ("disabled", 0),
                };
                KeyStats {
                    key: k.redacted.clone(),
                    in_flight: k.in_flight.load(Relaxed),
                    requests: k.requests.load(Relaxed),
                    rate_limited: k.rate_limited.load(Relaxed),
                    state,
                    cooldown_remaining_ms: cooldown_ms,
                }
            })
            .collect()
    }
}

/// One key's numbers, for the management API and `/metrics`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyStats {
    /// `…` and the key's last 4 characters.
    pub key: String,
    /// Requests using the key now.
    pub in_flight: u64,
    /// Requests sent with the key since start.
    pub requests: u64,
    /// `429` answers to it since start.
    pub rate_limited: u64,
    /// `"active"`, `"cooldown"` or `"disabled"`.
    pub state: &'static str,
    /// Cooldown left, in milliseconds (0 unless cooling).
    pub cooldown_remaining_ms: u64,
}

/// A picked key; the request counts as in flight on it until dropped.
pub struct KeyLease {
    pool: Arc<KeyPool>,
    index: usize,
}

impl std::fmt::Debug for KeyLease {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KeyLease")
            .field(&self.key().redacted)
            .finish()
    }
}

impl KeyLease {
    fn key(&self) -> &Key {
        &self.pool.keys[self.index]
    }

    /// The key, to put in the upstream request's auth header.
    pub fn secret(&self) -> &Secret {
        &self.key().secret
    }

    /// Its position in the provider's key list (0-based).
    pub fn index(&self) -> usize {
        self.index
    }

    /// `…` and its last 4 characters.
    pub fn redacted(&self) -> &str {
        &self.key().redacted
    }

    /// The provider answered `429`: the key cools down for `hint` (the
    /// response's `retry-after`) or the pool's default cooldown.
    pub fn rate_limited(&self, hint: Option<Duration>, now: Instant) {
        let key = self.key();
        key.rate_limited.fetch_add(1, Relaxed);
        let wait = hint.unwrap_or(self.pool.cooldown);
        let mut s = key.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !matches!(*s, KeyState::Disabled(_)) {
            *s = KeyState::Cooling(now + wait);
        }
        drop(s);
        tracing::warn!(provider = %self.pool.provider, key = %key.redacted, cooldown_ms = wait.as_millis() as u64,
            "API key rate limited (429): cooling down");
    }

    /// The provider refused the key (`401`/`403`): it stays disabled until
    /// the config is reloaded.
    pub fn refused(&self, status: u16) {
        let key = self.key();
        *key.state.lock().unwrap_or_else(PoisonError::into_inner) = KeyState::Disabled(status);
        tracing::error!(provider = %self.pool.provider, key = %key.redacted, status,
            "API key refused by the provider: disabled until the config is reloaded");
    }
}

impl Drop for KeyLease {
    fn drop(&mut self) {
        self.key().in_flight.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(n: usize, strategy: Strategy) -> Arc<KeyPool> {
        let keys = (0..n)
            .map(|i| Secret::new(format!("sk-test-key-000{i}")))
            .collect();
        Arc::new(KeyPool::new("p", keys, strategy, Duration::from_secs(60)))
    }

    #[test]
    fn round_robin_takes_turns() {
        let p = pool(3, Strategy::RoundRobin);
        let now = Instant::now();
        let picks: Vec<usize> = (0..6).map(|_| p.pick(now).unwrap().index()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn least_loaded_takes_the_idlest_key_and_the_lease_releases_it() {
        let p = pool(3, Strategy::LeastLoaded);
        let now = Instant::now();
        let a = p.pick(now).unwrap();
        let b = p.pick(now).unwrap();
        let c = p.pick(now).unwrap();
        let mut held = [a.index(), b.index(), c.index()];
        held.sort();
        assert_eq!(held, [0, 1, 2], "three in flight spread over three keys");
        drop(b);
        let d = p.pick(now).unwrap();
        let free = held
            .iter()
            .copied()
            .find(|&i| i != a.index() && i != c.index())
            .unwrap();
        assert_eq!(d.index(), free, "the only key with nothing in flight");
        drop((a, c, d));
        let s = p.stats(now);
        assert_eq!(s.iter().map(|k| k.in_flight).sum::<u64>(), 0);
        assert_eq!(s.iter().map(|k| k.requests).sum::<u64>(), 4);
    }

    #[test]
    fn least_loaded_breaks_ties_round_robin() {
        let p = pool(2, Strategy::LeastLoaded);
        let now = Instant::now();
        let picks: Vec<usize> = (0..4).map(|_| p.pick(now).unwrap().index()).collect();
        assert_eq!(picks, [0, 1, 0, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_limited_key_cools_down_then_returns() {
        let p = pool(2, Strategy::RoundRobin);
        let lease = p.pick(Instant::now()).unwrap();
        assert_eq!(lease.index(), 0);
        lease.rate_limited(Some(Duration::from_secs(5)), Instant::now());
        drop(lease);
        let picks: Vec<usize> = (0..3)
            .map(|_| p.pick(Instant::now()).unwrap().index())
            .collect();
        assert_eq!(picks, [1, 1, 1]);
        let s = p.stats(Instant::now());
        assert_eq!(
            (s[0].state, s[0].rate_limited, s[0].cooldown_remaining_ms),
            ("cooldown", 1, 5000)
        );
        tokio::time::advance(Duration::from_secs(5)).await;
        let picks: Vec<usize> = (0..2)
            .map(|_| p.pick(Instant::now()).unwrap().index())
            .collect();
        assert!(
            picks.contains(&0),
            "key 0 is back after its retry-after: {picks:?}"
        );
        assert_eq!(p.stats(Instant::now())[0].state, "active");
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_hint_the_default_cooldown_applies_and_all_cooling_says_how_long() {
        let p = pool(1, Strategy::LeastLoaded);
        p.pick(Instant::now())
            .unwrap()
            .rate_limited(None, Instant::now());
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(
            p.pick(Instant::now()).unwrap_err(),
            NoKey::AllCooling(Duration::from_secs(40))
        );
        tokio::time::advance(Duration::from_secs(40)).await;
        assert!(p.pick(Instant::now()).is_ok());
    }

    #[test]
    fn a_refused_key_stays_disabled() {
        let p = pool(2, Strategy::RoundRobin);
        let now = Instant::now();
        let l = p.pick(now).unwrap();
        l.refused(401);
        l.rate_limited(None, now); // a later 429 does not revive it
        drop(l);
        assert!((0..4).all(|_| p.pick(now).unwrap().index() == 1));
        p.pick(now).unwrap().refused(403);
        assert_eq!(p.pick(now).unwrap_err(), NoKey::AllDisabled);
        let states: Vec<&str> = p.stats(now).iter().map(|k| k.state).collect();
        assert_eq!(states, ["disabled", "disabled"]);
    }

    #[test]
    fn keys_are_shown_by_their_last_four_characters_only() {
        assert_eq!(redact("sk-ant-api03-abcdWXYZ"), "…WXYZ");
        assert_eq!(redact("short"), "…");
        assert_eq!(redact("ключ-секрет-ЖЗИК"), "…ЖЗИК");
        let p = pool(1, Strategy::RoundRobin);
        let shown = format!("{p:?} {:?}", p.stats(Instant::now()));
        assert!(
            !shown.contains("sk-test-key") && shown.contains("…0000"),
            "{shown}"
        );
        assert_eq!(
            KeyPool::new("p", vec![], Strategy::RoundRobin, Duration::ZERO).len(),
            0
        );
    }
}
