//! Loading an RDB stream into a dataset of its own (start-up, DEBUG RELOAD, an AOF's RDB
//! preamble): the file is read in bounded chunks and parsed on one thread while this one
//! inserts the decoded keys into a fresh staging keyspace ([`Keyspace::staging`]), with a
//! bounded queue of key batches in between. Memory holds the dataset being built plus a few
//! chunks and batches — never the whole file, nor every decoded key waiting for its insert. The
//! live keyspace is not touched: only once the whole file (checksum included) checked out does
//! the caller swap the staged dataset in ([`crate::keyspace::Db::adopt`]), so a corrupt or
//! truncated file never half-loads.

use std::io::Read;
use std::sync::mpsc;

use smallvec::SmallVec;

use super::{log, Server};
use crate::keyspace::{Keyspace, MAX_SIZE_HINT};
use crate::persistence::rdb_load::{self, install_key, LoadOptions, Loaded, LoadedKey, Parsed};
use crate::persistence::rdb_window::Window;
use crate::persistence::reader::{RdbError, Report};

/// Keys handed from the parser to the inserter at a time.
const BATCH: usize = 1024;
/// Batches the parser may be ahead of the inserter.
const QUEUE: usize = 8;
/// Keys whose lookups the inserter prefetches together.
const PREFETCH: usize = 16;

/// What a whole load's RESIZEDB hints may size tables for, at most: keys, and keys with a TTL.
/// The hints come from the file, so a corrupt or hostile one must not make a few bytes cost
/// gigabytes (at most 512 MB of main buckets and 240 MB of TTL slots, over every database); a
/// bigger dataset's tables grow past them as they would without a hint. The keys' room is what
/// one database's [`Db::reserve`](crate::keyspace::Db::reserve) takes at most, so that bound,
/// kept for any other caller, never binds here.
struct HintRoom {
    keys: u64,
    ttls: u64,
}

impl HintRoom {
    const fn new() -> Self {
        HintRoom { keys: MAX_SIZE_HINT, ttls: 1 << 24 }
    }

    /// The part of a hint of `keys` keys, `expires` of them with a TTL, still within room.
    fn take(&mut self, keys: u64, expires: u64) -> (u64, u64) {
        let keys = keys.min(self.keys);
        let expires = expires.min(keys).min(self.ttls);
        self.keys -= keys;
        self.ttls -= expires;
        (keys, expires)
    }
}

/// What the parser hands the inserter.
enum Batch {
    Keys(Vec<LoadedKey>),
    /// The file's RESIZEDB hint: size database `db`'s tables for `keys` keys, `expires` of
    /// them with a TTL.
    Reserve {
        db: usize,
        keys: u64,
        expires: u64,
    },
}

/// A file's dataset, loaded apart.
pub struct Staged {
    pub keyspace: Keyspace,
    /// The file's header, aux fields, functions and skipped keys (no keys: they are in
    /// `keyspace`).
    pub loaded: Loaded,
    /// Keys loaded.
    pub keys: u64,
}

/// Why staging failed.
#[derive(Debug)]
pub enum StageError {
    /// The RDB data is bad (logged already, as Redis logs it: [`log_rdb_error`]).
    Rdb(RdbError),
    /// Anything else: a key the dataset has twice, the loading thread.
    Other(String),
}

impl From<StageError> for String {
    fn from(e: StageError) -> String {
        match e {
            StageError::Rdb(e) => e.to_string(),
            StageError::Other(e) => e,
        }
    }
}

/// Log why RDB data being loaded was refused, as Redis logs it: the value's report (Redis's
/// "Internal error in RDB reading ..." line) at warning level, after the two sums for a
/// checksum error; a truncation as Redis's short read and unexpected EOF. Errors Redis reports
/// otherwise (a signature, a version, a module) are the caller's.
pub fn log_rdb_error(e: &RdbError) {
    match &e.report {
        Some(report) => {
            if *report == Report::corrupt(rdb_load::CRC_ERROR_LINE, "RDB CRC error") {
                log::warning(&e.msg);
            }
            log::rdb_report(report, log::WARNING, e.offset)
        }
        None if e.is_short() => {
            log::warning("Short read or OOM loading DB. Unrecoverable error, aborting now.");
            log::warning(&Report::internal_error(3365, "Unexpected EOF reading RDB file", e.offset))
        }
        None => {}
    }
}

/// Parse the RDB data at the start of `w` into a staging keyspace shaped like the server's.
/// `w` is left after the RDB data (see [`rdb_load::check_end`] for a file that must end there).
pub fn stage<R: Read + Send>(server: &Server, w: &mut Window<R>, opts: &LoadOptions) -> Result<Staged, String> {
    stage_rdb(server, w, opts).map_err(String::from)
}

/// [`stage`], telling bad RDB data (logged) from other failures.
pub fn stage_rdb<R: Read + Send>(server: &Server, w: &mut Window<R>, opts: &LoadOptions) -> Result<Staged, StageError> {
    let keyspace = server.keyspace.staging();
    let (tx, rx) = mpsc::sync_channel::<Batch>(QUEUE);
    let (parsed, inserted) = std::thread::scope(|scope| {
        let parser = std::thread::Builder::new()
            .name("rdb-load".into())
            .spawn_scoped(scope, move || {
                let mut batch = Vec::with_capacity(BATCH);
                // The inserter only hangs up after an error of its own, reported instead.
                let send = |b| tx.send(b).map_err(|_| RdbError::new(0, "load abandoned"));
                let loaded = rdb_load::parse_stream(w, opts, |p| {
                    match p {
                        Parsed::Key(k) => batch.push(k),
                        Parsed::SizeHint { db, keys, expires } => send(Batch::Reserve { db, keys, expires })?,
                    }
                    if batch.len() == BATCH {
                        send(Batch::Keys(std::mem::replace(&mut batch, Vec::with_capacity(BATCH))))?;
                    }
                    Ok(())
                })?;
                if !batch.is_empty() {
                    send(Batch::Keys(batch))?;
                }
                Ok::<_, RdbError>(loaded)
            })
            .map_err(|e| format!("can't start the loading thread: {e}"));
        let parser = match parser {
            Ok(p) => p,
            Err(e) => return (Err(StageError::Other(e)), Ok(0)),
        };
        let inserted = (|| {
            let mut db = keyspace.lock_all(0);
            let mut n = 0u64;
            let mut room = HintRoom::new();
            for batch in rx {
                let batch = match batch {
                    Batch::Keys(keys) => keys,
                    Batch::Reserve { db: index, keys, expires } => {
                        db.index = index;
                        let (keys, expires) = room.take(keys, expires);
                        db.reserve(keys, expires);
                        continue;
                    }
                };
                // Each insert first looks its key up (a duplicate fails the load): two cache
                // misses (bucket, entry) that, one key after the other, were 80% of this
                // thread's time at 5M keys. Prefetched a group at a time, they overlap.
                let mut keys = batch.into_iter();
                while let Some(first) = keys.as_slice().first() {
                    let index = first.db;
                    let group = keys.as_slice().len().min(PREFETCH);
                    let names: SmallVec<[&[u8]; PREFETCH]> =
                        keys.as_slice()[..group].iter().filter(|k| k.db == index).map(|k| &k.key[..]).collect();
                    db.index = index;
                    db.prefetch(&names);
                    drop(names);
                    for k in keys.by_ref().take(group) {
                        install_key(&mut db, k, false)?;
                        n += 1;
                    }
                }
            }
            Ok::<_, String>(n)
        })();
        // An insert error drops the queue: the parser stops at its next batch.
        let parsed = parser.join().map_err(|_| StageError::Other("the loading thread panicked".into()));
        (parsed, inserted)
    });
    let keys = inserted.map_err(StageError::Other)?;
    let loaded = parsed?.map_err(|e| {
        log_rdb_error(&e);
        StageError::Rdb(e)
    })?;
    Ok(Staged { keyspace, loaded, keys })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::testing::Harness;
    use crate::persistence::rdb::{self, SaveOptions};
    use crate::server::saving;
    use crate::types::{StrValue, Value};

    /// An RDB file of `n` string keys, `n` larger than a batch: a late error comes after
    /// keys were inserted already.
    fn file(n: usize) -> Vec<u8> {
        let h = Harness::new();
        let mut db = h.server.keyspace.lock_all(0);
        for i in 0..n {
            db.set(format!("k{i}").as_bytes(), Value::Str(StrValue::from_bytes(b"v")), false);
        }
        rdb::snapshot(&mut db, h.server.keyspace.databases(), &[], SaveOptions::default())
    }

    /// A bad checksum, and a file cut inside its last key.
    fn bad_files(good: &[u8]) -> [Vec<u8>; 2] {
        let mut bad_crc = good.to_vec();
        *bad_crc.last_mut().unwrap() ^= 1;
        [bad_crc, good[..good.len() - 12].to_vec()]
    }

    #[test]
    fn a_bad_file_leaves_the_live_dataset_as_it_was() {
        let mut h = Harness::new();
        h.run(&["SET", "live", "1"]);
        let good = file(5 * BATCH);
        let opts = saving::load_options(&h.server);
        for bad in bad_files(&good) {
            assert!(stage(&h.server, &mut Window::new(&bad[..]), &opts).is_err());
            assert_eq!(h.run(&["DBSIZE"]), ":1\r\n");
        }
        let staged = stage(&h.server, &mut Window::new(&good[..]), &opts).unwrap();
        assert_eq!(staged.keys, 5 * BATCH as u64);
        assert_eq!(h.run(&["DBSIZE"]), ":1\r\n", "a staged dataset is not live before it is adopted");
    }

    #[test]
    fn bad_data_is_told_from_other_failures() {
        let h = Harness::new();
        let good = file(3);
        let opts = saving::load_options(&h.server);
        let [bad_crc, cut] = bad_files(&good);
        // The checksum: Redis's report; the cut: a short read (logged as Redis's EOF).
        match stage_rdb(&h.server, &mut Window::new(&bad_crc[..]), &opts) {
            Err(StageError::Rdb(e)) => assert_eq!(e.report, Some(Report::corrupt(3341, "RDB CRC error"))),
            other => panic!("{:?}", other.map(|s| s.keys)),
        }
        match stage_rdb(&h.server, &mut Window::new(&cut[..]), &opts) {
            Err(StageError::Rdb(e)) => assert!(e.is_short() && e.report.is_none(), "{e}"),
            other => panic!("{:?}", other.map(|s| s.keys)),
        }
        // A key twice is no damage of the data: it is reported by the inserter.
        let mut twice = b"REDIS0010\xfe\x00".to_vec();
        twice.extend_from_slice(&[0, 1, b'k', 1, b'v', 0, 1, b'k', 1, b'w', 0xff, 0, 0, 0, 0, 0, 0, 0, 0]);
        match stage_rdb(&h.server, &mut Window::new(&twice[..]), &opts) {
            Err(StageError::Other(e)) => assert!(e.contains("duplicate key 'k'"), "{e}"),
            other => panic!("{:?}", other.map(|s| s.keys)),
        }
    }

    #[test]
    fn debug_reload_of_a_bad_file_loads_no_key() {
        let mut h = Harness::new();
        let good = file(5 * BATCH);
        let path = std::env::temp_dir().join(format!("ferrous-staged-{}.rdb", std::process::id()));
        for bad in bad_files(&good) {
            std::fs::write(&path, &bad).unwrap();
            let mut db = h.server.keyspace.lock_all(0);
            assert!(saving::load_file(&h.server, &mut db, &path, false).is_err());
            drop(db);
            assert_eq!(h.run(&["DBSIZE"]), ":0\r\n");
        }
        std::fs::write(&path, &good).unwrap();
        let mut db = h.server.keyspace.lock_all(0);
        assert_eq!(saving::load_file(&h.server, &mut db, &path, false), Ok(5 * BATCH as u64));
        drop(db);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(h.run(&["DBSIZE"]), format!(":{}\r\n", 5 * BATCH));
    }

    #[test]
    fn a_loads_size_hints_share_one_bounded_room() {
        let mut room = HintRoom::new();
        assert_eq!(room.take(1000, 400), (1000, 400));
        // A TTL count above the key count is taken as the key count.
        assert_eq!(room.take(10, 50), (10, 10));
        // A hostile hint in each of several databases: only what is left of the room.
        assert_eq!(room.take(u64::MAX, u64::MAX), ((1 << 26) - 1010, (1 << 24) - 410));
        assert_eq!(room.take(u64::MAX, u64::MAX), (0, 0));
    }
}
