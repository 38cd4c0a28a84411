//! A dataset built apart and swapped in whole: loading a file fills a fresh keyspace
//! ([`Keyspace::staging`]) that no client sees, and [`Db::adopt`] moves its contents into the
//! live keyspace once the whole file checked out (a corrupt file never half-loads).

use super::{Db, Keyspace, ShardDb, NSHARDS};

impl Keyspace {
    /// An empty keyspace shaped like this one (databases, LFU settings), to load into.
    pub fn staging(&self) -> Keyspace {
        let ks = Keyspace::new(self.ndbs);
        ks.lfu.copy_from(&self.lfu);
        ks
    }
}

impl Db<'_> {
    /// Replace every database's contents, in every shard, with `staged`'s (a keyspace of the
    /// same shape: see [`Keyspace::staging`]). Returns the old contents, for the caller to free
    /// where it likes.
    pub fn adopt(&mut self, staged: Keyspace) -> Vec<ShardDb> {
        assert_eq!(staged.ndbs, self.ks.ndbs, "a staged keyspace has the live one's databases");
        self.lock_everything();
        assert_eq!(self.guards.len(), NSHARDS, "adopting a dataset takes every shard");
        // As Redis empties the databases, then loads without signalling the keys it adds.
        let waited = self.waited_kinds(&(0..self.ks.ndbs).collect::<Vec<_>>());
        let mut old = Vec::new();
        self.ks.ttl_shards.absorb(&staged.ttl_shards);
        for ((s, g), new) in self.guards.iter_mut().zip(staged.shards.into_vec()) {
            g.capture_all(*s);
            old.extend(std::mem::replace(&mut g.dbs, new.into_inner().dbs));
        }
        self.after_replace(waited, false);
        old
    }
}

#[cfg(test)]
mod tests {
    use super::super::now_ms;
    use super::*;
    use crate::types::{StrValue, Value};

    #[test]
    fn adopted_contents_replace_every_database() {
        let live = Keyspace::new(4);
        live.lock_keys(0, &[b"old"]).set(b"old", Value::Str(StrValue::from_bytes(b"1")), false);
        let staged = live.staging();
        {
            let mut db = staged.lock_all(0);
            db.index = 2;
            db.set(b"new", Value::Str(StrValue::from_bytes(b"2")), false);
            db.set_expire(b"new", now_ms() + 100_000);
        }
        let old = live.lock_all(0).adopt(staged);
        assert_eq!(old.iter().map(|d| d.main.len()).sum::<usize>(), 1);
        assert_eq!(live.db_counts(0), (0, 0));
        assert_eq!(live.db_counts(2), (1, 1));
    }
}
