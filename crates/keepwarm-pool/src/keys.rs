//! The table of keys: a hash index from key to a stable slot, and the
//! slots holding each key's state. A key is hashed once per acquire;
//! leases, permits and the idle index name it by slot, so releases and
//! expiry find its state without hashing or cloning the key.

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

/// One key's slot, starting on a cache line: its state (hot part first),
/// then the key itself, boxed (only rarer events need it).
#[repr(C, align(64))]
pub(crate) struct KeyRecord<K, C> {
    pub(crate) state: KeyState<C>,
    pub(crate) key: Box<K>,
}

/// Every key the pool holds state for.
pub(crate) struct KeyTable<K, C> {
    index: HashMap<K, KeyIdx>,
    slots: Vec<Option<KeyRecord<K, C>>>,
    free: Vec<KeyIdx>,
    next_serial: u32,
}

impl<K: PoolKey, C> Default for KeyTable<K, C> {
    fn default() -> Self {
        KeyTable {
            index: HashMap::new(),
            slots: Vec::new(),
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
        match self.record(at.idx) {
            Some(r) if r.state.serial == at.serial => Some(at.idx),
            _ => self.find(key),
        }
    }

    /// Adds `key` with `state`; its slot.
    pub(crate) fn insert(&mut self, key: K, mut state: KeyState<C>) -> KeyIdx {
        // Wraps: a lease or permit keeps its key (and so its slot), the
        // serial only guards against a slot reused meanwhile.
        self.next_serial = self.next_serial.wrapping_add(1);
        state.serial = self.next_serial;
        let record = KeyRecord {
            state,
            key: Box::new(key.clone()),
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = Some(record);
                i
            }
            None => {
                let i = KeyIdx::try_from(self.slots.len()).expect("fewer than 2^32 keys");
                self.slots.push(Some(record));
                i
            }
        };
        self.index.insert(key, idx);
        idx
    }

    /// Drops the key in slot `idx`; its key and state.
    pub(crate) fn remove(&mut self, idx: KeyIdx) -> Option<(K, KeyState<C>)> {
        let r = self.slots.get_mut(idx as usize)?.take()?;
        self.index.remove(&*r.key);
        self.free.push(idx);
        Some((*r.key, r.state))
    }

    /// Gives back memory after keys were removed: empty slots at the end,
    /// and the index's and the slots' spare capacity once mostly unused.
    pub(crate) fn trim(&mut self) {
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        let len = self.slots.len();
        self.free.retain(|i| (*i as usize) < len);
        if self.slots.capacity() > 64 && len * 4 < self.slots.capacity() {
            self.slots.shrink_to_fit();
            self.free.shrink_to_fit();
        }
        if self.index.capacity() > 64 && self.index.len() * 4 < self.index.capacity() {
            self.index.shrink_to_fit();
        }
    }

    pub(crate) fn record(&self, idx: KeyIdx) -> Option<&KeyRecord<K, C>> {
        self.slots.get(idx as usize)?.as_ref()
    }

    pub(crate) fn record_mut(&mut self, idx: KeyIdx) -> Option<&mut KeyRecord<K, C>> {
        self.slots.get_mut(idx as usize)?.as_mut()
    }

    /// The state in slot `idx`.
    pub(crate) fn state_mut(&mut self, idx: KeyIdx) -> Option<&mut KeyState<C>> {
        self.record_mut(idx).map(|r| &mut r.state)
    }

    /// Where `idx` is now, for a lease or permit to name it by.
    pub(crate) fn at(&self, idx: KeyIdx) -> KeyAt {
        KeyAt {
            idx,
            serial: self.record(idx).map_or(0, |r| r.state.serial),
        }
    }

    /// `key`'s state.
    pub(crate) fn get(&self, key: &K) -> Option<&KeyState<C>> {
        self.record(self.find(key)?).map(|r| &r.state)
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
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, r)| r.as_ref().map(|r| (i as KeyIdx, &*r.key, &r.state)))
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
    fn a_slot_is_three_cache_lines() {
        assert_eq!(std::mem::size_of::<KeyRecord<Key, ()>>(), 192);
    }

    #[test]
    fn a_slot_is_reused_under_a_new_serial() {
        let mut t: KeyTable<Key, ()> = KeyTable::default();
        let a = t.insert(Key(1), state());
        let b = t.insert(Key(2), state());
        let old = t.at(a);
        assert_eq!((t.find(&Key(1)), t.len()), (Some(a), 2));
        assert_eq!(t.resolve(&Key(1), old), Some(a));
        assert!(t.remove(a).is_some());
        assert!(!t.contains(&Key(1)));
        let c = t.insert(Key(3), state());
        assert_eq!(c, a, "the freed slot is reused");
        assert_ne!(t.at(c), old);
        // A stale place falls back to the key itself.
        assert_eq!(t.resolve(&Key(3), old), Some(c));
        assert_eq!(t.resolve(&Key(1), old), None);
        assert_eq!(t.select(|k| k.0 > 1), vec![a, b]);
        // Removing the last slots gives them back.
        t.remove(b);
        t.remove(c);
        t.trim();
        assert_eq!((t.len(), t.slots.len(), t.free.len()), (0, 0, 0));
        assert_eq!(t.insert(Key(4), state()), 0);
    }
}
