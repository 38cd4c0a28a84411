//! The keyspace against a model: random sequences of writes, deletes, expiries, database swaps
//! and flushes applied both to a `Keyspace` (through `Db` views locking one key's shard, as
//! commands do, or every shard) and to a `BTreeMap` per database; after every step the views
//! agree on every key, its value and its expiry, the counts and a full SCAN.

use super::Keyspace;
use crate::types::{StrValue, Value};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone)]
enum Op {
    Set { db: usize, key: u8, value: u16, keep_ttl: bool },
    Delete { db: usize, key: u8 },
    Expire { db: usize, key: u8, in_ms: i64 },
    Persist { db: usize, key: u8 },
    Swap { a: usize, b: usize },
    Flush { db: usize, all: bool },
}

const DBS: usize = 3;

fn op() -> impl Strategy<Value = Op> {
    let db = 0..DBS;
    prop_oneof![
        4 => (db.clone(), any::<u8>(), any::<u16>(), any::<bool>())
            .prop_map(|(db, key, value, keep_ttl)| Op::Set { db, key, value, keep_ttl }),
        2 => (db.clone(), any::<u8>()).prop_map(|(db, key)| Op::Delete { db, key }),
        // Expiries in the past (the key goes at once) or far in the future.
        2 => (db.clone(), any::<u8>(), prop_oneof![Just(-1000i64), Just(3_600_000i64)])
            .prop_map(|(db, key, in_ms)| Op::Expire { db, key, in_ms }),
        1 => (db.clone(), any::<u8>()).prop_map(|(db, key)| Op::Persist { db, key }),
        1 => (db.clone(), db.clone()).prop_map(|(a, b)| Op::Swap { a, b }),
        1 => (db, any::<bool>()).prop_map(|(db, all)| Op::Flush { db, all }),
    ]
}

fn key(k: u8) -> Vec<u8> {
    format!("key:{k}").into_bytes()
}

/// key → (value, expiry) for each database.
type Model = Vec<BTreeMap<Vec<u8>, (u16, Option<i64>)>>;

fn check(ks: &Keyspace, model: &Model, now: i64) {
    for (db, m) in model.iter().enumerate() {
        let mut view = ks.lock_all(db);
        view.now_ms = now;
        let (keys, expires) = ks_counts(&mut view);
        assert_eq!(keys, m.len(), "db {db}: key count");
        assert_eq!(expires, m.values().filter(|(_, e)| e.is_some()).count(), "db {db}: expiry count");
        for (k, (v, e)) in m {
            let entry = view.peek(k).unwrap_or_else(|| panic!("db {db}: {k:?} missing"));
            match &entry.value {
                Value::Str(s) => assert_eq!(s.to_bytes().as_ref(), v.to_string().as_bytes()),
                other => panic!("unexpected value {}", other.type_name()),
            }
            assert_eq!(view.expire_of(k), *e, "db {db}: expiry of {k:?}");
        }
        // A full SCAN returns exactly the model's keys.
        let mut seen = BTreeSet::new();
        let mut cursor = 0;
        loop {
            cursor = view.scan(cursor, 100, |k, _| {
                seen.insert(k.to_vec());
            });
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen, m.keys().cloned().collect::<BTreeSet<_>>(), "db {db}: SCAN");
    }
}

fn ks_counts(view: &mut super::Db<'_>) -> (usize, usize) {
    let mut keys = 0;
    let mut expires = 0;
    view.all_keys(|_, e| {
        keys += 1;
        expires += usize::from(e.is_some());
    });
    (keys, expires)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn keyspace_behaves_as_a_map_per_database(ops in proptest::collection::vec(op(), 1..120)) {
        let ks = Keyspace::new(DBS);
        let mut model: Model = vec![BTreeMap::new(); DBS];
        let now = super::now_ms();
        for op in ops {
            match op {
                Op::Set { db, key: k, value, keep_ttl } => {
                    let mut view = ks.lock_keys(db, &[key(k)]);
                    view.now_ms = now;
                    view.set(&key(k), Value::Str(StrValue::from_bytes(value.to_string().as_bytes())), keep_ttl);
                    let kept = if keep_ttl { model[db].get(&key(k)).and_then(|(_, e)| *e) } else { None };
                    model[db].insert(key(k), (value, kept));
                }
                Op::Delete { db, key: k } => {
                    let mut view = ks.lock_keys(db, &[key(k)]);
                    view.now_ms = now;
                    assert_eq!(view.delete(&key(k)), model[db].remove(&key(k)).is_some());
                }
                Op::Expire { db, key: k, in_ms } => {
                    let mut view = ks.lock_keys(db, &[key(k)]);
                    view.now_ms = now;
                    if view.exists(&key(k)) {
                        view.set_expire(&key(k), now + in_ms);
                        // A key whose time has passed is gone on the next access.
                        view.expire_if_needed(&key(k));
                        if in_ms < 0 {
                            model[db].remove(&key(k));
                        } else if let Some(e) = model[db].get_mut(&key(k)) {
                            e.1 = Some(now + in_ms);
                        }
                    }
                }
                Op::Persist { db, key: k } => {
                    let mut view = ks.lock_keys(db, &[key(k)]);
                    view.now_ms = now;
                    let had = model[db].get(&key(k)).is_some_and(|(_, e)| e.is_some());
                    assert_eq!(view.persist(&key(k)), had);
                    if let Some(e) = model[db].get_mut(&key(k)) {
                        e.1 = None;
                    }
                }
                Op::Swap { a, b } => {
                    let mut view = ks.lock_all(0);
                    view.swap_dbs(a, b);
                    model.swap(a, b);
                }
                Op::Flush { db, all } => {
                    let mut view = ks.lock_all(db);
                    view.flush(all);
                    if all {
                        model.iter_mut().for_each(BTreeMap::clear);
                    } else {
                        model[db].clear();
                    }
                }
            }
            check(&ks, &model, now);
        }
    }
}
