//! The TLS session cache (`tls-session-caching`, `tls-session-cache-size`): one cache shared by
//! the server configurations of every `tls-auth-clients` mode, as Redis's one SSL_CTX has one.
//! It grows as sessions are stored (rustls's own cache reserves room for every entry at once)
//! and drops the oldest entry once full.
//!
//! Its memory is the TLS library's, not counted in `used_memory` (as OpenSSL's cache is not):
//! the entries are made and dropped in the cache's own ledger scope, and what crosses to a
//! connection is copied on the receiving side, so a connection's ledger never holds an entry
//! nor frees one (see `metrics::memory::apart`).

use std::collections::{HashMap, VecDeque};

use parking_lot::Mutex;
use rustls::server::StoresServerSessions;

use crate::metrics::memory::Apart;

#[derive(Debug)]
pub struct SessionCache {
    limit: usize,
    entries: Apart<Mutex<Entries>>,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<Vec<u8>, Vec<u8>>,
    /// Keys, oldest first.
    order: VecDeque<Vec<u8>>,
}

impl SessionCache {
    /// A cache of at most `limit` sessions; 0 is no limit (as OpenSSL's cache size, which
    /// Redis passes on).
    pub fn new(limit: usize) -> SessionCache {
        let limit = if limit == 0 { usize::MAX } else { limit };
        SessionCache { limit, entries: Apart::new(Mutex::default) }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.get().lock().map.len()
    }
}

impl Entries {
    fn insert(&mut self, key: &[u8], value: &[u8], limit: usize) {
        if let Some(v) = self.map.get_mut(key) {
            *v = value.to_vec();
            return;
        }
        while self.map.len() >= limit {
            let Some(oldest) = self.order.pop_front() else { break };
            self.map.remove(&oldest);
        }
        self.map.insert(key.to_vec(), value.to_vec());
        self.order.push_back(key.to_vec());
    }

    fn remove(&mut self, key: &[u8]) {
        if self.map.remove(key).is_some() {
            if let Some(i) = self.order.iter().position(|k| k == key) {
                self.order.remove(i);
            }
        }
    }
}

impl StoresServerSessions for SessionCache {
    fn put(&self, key: Vec<u8>, value: Vec<u8>) -> bool {
        // Copied in the cache's scope; the caller's vectors are freed in the caller's.
        let (key, value) = (&key, &value);
        self.entries.ledger().scope(|| self.entries.get().lock().insert(key, value, self.limit));
        true
    }

    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        // The copy is the caller's.
        self.entries.get().lock().map.get(key).cloned()
    }

    fn take(&self, key: &[u8]) -> Option<Vec<u8>> {
        let mut entries = self.entries.get().lock();
        let value = entries.map.get(key).cloned()?;
        self.entries.ledger().scope(|| entries.remove(key));
        Some(value)
    }

    fn can_cache(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_sessions_up_to_its_limit() {
        let c = SessionCache::new(2);
        for k in [b"a", b"b", b"c"] {
            assert!(c.put(k.to_vec(), k.repeat(3)));
        }
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(b"a"), None);
        assert_eq!(c.get(b"b"), Some(b"bbb".to_vec()));
        // Replacing a session keeps its place; taking one removes it.
        c.put(b"b".to_vec(), b"new".to_vec());
        assert_eq!(c.take(b"b"), Some(b"new".to_vec()));
        assert_eq!(c.take(b"b"), None);
        c.put(b"d".to_vec(), b"ddd".to_vec());
        assert_eq!(c.len(), 2);
        assert_eq!(c.get(b"c"), Some(b"ccc".to_vec()));
        assert_eq!(c.get(b"d"), Some(b"ddd".to_vec()));
        assert!(c.can_cache());
    }

    #[test]
    fn a_limit_of_zero_is_no_limit() {
        let c = SessionCache::new(0);
        for i in 0..100u8 {
            c.put(vec![i], vec![i]);
        }
        assert_eq!((c.len(), c.get(&[0])), (100, Some(vec![0])));
    }
}
