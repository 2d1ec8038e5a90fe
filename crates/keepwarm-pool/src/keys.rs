//! The table of keys: a hash index from key to a stable slot, the slots
//! holding each key's state, and the keys themselves beside them (only
//! rarer events need a key back from its slot). A key is hashed once per
//! acquire; leases, permits and the idle index name it by slot, so
//! releases and expiry find its state without hashing or cloning the key.

use std::collections::HashMap;

use crate::key_state::KeyState;
use crate::traits::PoolKey;

/// A key's slot in the table.
pub(crate) type KeyIdx = u32;

/// A key's slot with the serial of the key that held it when this was
/// taken: a later key in the same slot has another serial.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct KeyAt {
    pub(crate) idx: KeyIdx,
    pub(crate) serial: u32,
}

impl KeyAt {
    /// Names no key (a lease detached from a dropped pool).
    pub(crate) const NONE: KeyAt = KeyAt {
        idx: KeyIdx::MAX,
        serial: 0,
    };
}

/// Every key the pool holds state for.
pub(crate) struct KeyTable<K, C> {
    index: HashMap<K, KeyIdx>,
    /// Each key's state, by slot.
    states: Vec<Option<KeyState<C>>>,
    /// Each slot's key.
    keys: Vec<Option<K>>,
    free: Vec<KeyIdx>,
    next_serial: u32,
}

impl<K: PoolKey, C> Default for KeyTable<K, C> {
    fn default() -> Self {
        KeyTable {
            index: HashMap::new(),
            states: Vec::new(),
            keys: Vec::new(),
            free: Vec::new(),
            next_serial: 0,
        }
    }
}

impl<K: PoolKey, C> KeyTable<K, C> {
    /// The slot of `key`, if the pool holds it.
    pub(crate) fn find(&self, key: &K) -> Option<KeyIdx> {
        self.index.get(key).copied()
    }

    /// `at`'s slot if it still holds the same key, else `key`'s slot.
    pub(crate) fn resolve(&self, key: &K, at: KeyAt) -> Option<KeyIdx> {
        match self.state(at.idx) {
            Some(ks) if ks.serial == at.serial => Some(at.idx),
            _ => self.find(key),
        }
    }

    /// Adds `key` with `state`; its slot.
    pub(crate) fn insert(&mut self, key: K, mut state: KeyState<C>) -> KeyIdx {
        // Wraps: a lease or permit keeps its key (and so its slot), the
        // serial only guards against a slot reused meanwhile.
        self.next_serial = self.next_serial.wrapping_add(1);
        state.serial = self.next_serial;
        let idx = match self.free.pop() {
            Some(i) => {
                self.states[i as usize] = Some(state);
                self.keys[i as usize] = Some(key.clone());
                i
            }
            None => {
                let i = KeyIdx::try_from(self.states.len()).expect("fewer than 2^32 keys");
                self.states.push(Some(state));
                self.keys.push(Some(key.clone()));
                i
            }
        };
        self.index.insert(key, idx);
        idx
    }

    /// Drops the key in slot `idx`; its key and state.
    pub(crate) fn remove(&mut self, idx: KeyIdx) -> Option<(K, KeyState<C>)> {
        let state = self.states.get_mut(idx as usize)?.take()?;
        let key = self.keys[idx as usize].take().expect("a key per state");
        self.index.remove(&key);
        self.free.push(idx);
        Some((key, state))
    }

    /// Gives back memory after keys were removed: empty slots at the end,
    /// and the index's and the slots' spare capacity once mostly unused.
    pub(crate) fn trim(&mut self) {
        while matches!(self.states.last(), Some(None)) {
            self.states.pop();
            self.keys.pop();
        }
        let len = self.states.len();
        self.free.retain(|i| (*i as usize) < len);
        if self.states.capacity() > 64 && len * 4 < self.states.capacity() {
            self.states.shrink_to_fit();
            self.keys.shrink_to_fit();
            self.free.shrink_to_fit();
        }
        if self.index.capacity() > 64 && self.index.len() * 4 < self.index.capacity() {
            self.index.shrink_to_fit();
        }
    }

    /// The state in slot `idx`.
    pub(crate) fn state(&self, idx: KeyIdx) -> Option<&KeyState<C>> {
        self.states.get(idx as usize)?.as_ref()
    }

    /// The state in slot `idx`, mutably.
    pub(crate) fn state_mut(&mut self, idx: KeyIdx) -> Option<&mut KeyState<C>> {
        self.states.get_mut(idx as usize)?.as_mut()
    }

    /// The key in slot `idx` with its state, mutably.
    pub(crate) fn key_and_state_mut(&mut self, idx: KeyIdx) -> Option<(&K, &mut KeyState<C>)> {
        let ks = self.states.get_mut(idx as usize)?.as_mut()?;
        Some((self.keys[idx as usize].as_ref()?, ks))
    }

    /// Where `idx` is now, for a lease or permit to name it by.
    pub(crate) fn at(&self, idx: KeyIdx) -> KeyAt {
        KeyAt {
            idx,
            serial: self.state(idx).map_or(0, |ks| ks.serial),
        }
    }

    /// `key`'s state.
    pub(crate) fn get(&self, key: &K) -> Option<&KeyState<C>> {
        self.state(self.find(key)?)
    }

    /// `key`'s state, mutably.
    pub(crate) fn get_mut(&mut self, key: &K) -> Option<&mut KeyState<C>> {
        let idx = self.find(key)?;
        self.state_mut(idx)
    }

    pub(crate) fn contains(&self, key: &K) -> bool {
        self.index.contains_key(key)
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    /// Every key with its slot and state.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (KeyIdx, &K, &KeyState<C>)> {
        self.states
            .iter()
            .zip(&self.keys)
            .enumerate()
            .filter_map(|(i, (s, k))| Some((i as KeyIdx, k.as_ref()?, s.as_ref()?)))
    }

    /// The slots of the keys `pred` accepts.
    pub(crate) fn select(&self, pred: impl Fn(&K) -> bool) -> Vec<KeyIdx> {
        self.iter()
            .filter(|(_, k, _)| pred(k))
            .map(|(i, _, _)| i)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::options::PoolOptions;

    #[derive(Clone, Debug, PartialEq, Eq, Hash)]
    struct Key(u32);

    impl PoolKey for Key {
        fn label(&self) -> &str {
            "k"
        }
    }

    fn state() -> KeyState<()> {
        KeyState::new(Arc::new(PoolOptions::default()))
    }

    #[test]
    fn a_slot_is_reused_under_a_new_serial() {
        let mut t: KeyTable<Key, ()> = KeyTable::default();
        let a = t.insert(Key(1), state());
        let b = t.insert(Key(2), state());
        let old = t.at(a);
        assert_eq!((t.find(&Key(1)), t.len()), (Some(a), 2));
        assert_eq!(t.resolve(&Key(1), old), Some(a));
        assert_eq!(t.remove(a).map(|(k, _)| k), Some(Key(1)));
        assert!(!t.contains(&Key(1)));
        let c = t.insert(Key(3), state());
        assert_eq!(c, a, "the freed slot is reused");
        assert_ne!(t.at(c), old);
        // A stale place falls back to the key itself.
        assert_eq!(t.resolve(&Key(3), old), Some(c));
        assert_eq!(t.resolve(&Key(1), old), None);
        assert_eq!(t.select(|k| k.0 > 1), vec![a, b]);
        assert_eq!(t.key_and_state_mut(b).map(|(k, _)| k.clone()), Some(Key(2)));
        // Removing the last slots gives them back.
        t.remove(b);
        t.remove(c);
        t.trim();
        assert_eq!(
            (t.len(), t.states.len(), t.keys.len(), t.free.len()),
            (0, 0, 0, 0)
        );
        assert_eq!(t.insert(Key(4), state()), 0);
    }
}
