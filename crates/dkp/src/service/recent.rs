//! A tiny cache of recent answers, so that the requests of a burst (bids,
//! above all) do not each read their session and membership again. Entries
//! live `ttl` at most: a logout or role change made on another instance takes
//! effect here within that time (on this instance, at once: it evicts).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Past this many entries the cache starts over, so memory stays bounded.
const MAX_ENTRIES: usize = 100_000;

pub struct Recent<K, V> {
    ttl: Duration,
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> Recent<K, V> {
    pub fn new(ttl: Duration) -> Recent<K, V> {
        Recent { ttl, entries: Mutex::new(HashMap::new()) }
    }

    pub fn get(&self, key: &K) -> Option<V> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|(_, at)| at.elapsed() < self.ttl).map(|(value, _)| value.clone())
    }

    pub fn put(&self, key: K, value: V) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (value, Instant::now()));
    }

    pub fn remove(&self, key: &K) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(key);
    }

    pub fn clear(&self) {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_kept_for_its_time_only() {
        let recent = Recent::new(Duration::from_millis(30));
        recent.put("a", 1);
        assert_eq!(recent.get(&"a"), Some(1));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(recent.get(&"a"), None);
    }

    #[test]
    fn removed_and_cleared_entries_are_gone() {
        let recent = Recent::new(Duration::from_secs(60));
        recent.put("a", 1);
        recent.put("b", 2);
        recent.remove(&"a");
        assert_eq!((recent.get(&"a"), recent.get(&"b")), (None, Some(2)));
        recent.clear();
        assert_eq!(recent.get(&"b"), None);
    }
}
