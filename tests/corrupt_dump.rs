//! Damaged DUMP payloads and RDB files, logged as Redis 7.2 logs them (what Redis's
//! `integration/corrupt-dump` suite looks for): a refused RESTORE logs Redis's reason at
//! verbose level, a hash listpack with duplicate fields that would become a table is logged as
//! a hex dump, a corrupt file at start-up ends the server with redis-check-rdb's report and
//! Redis's last words, and the empty keys a file holds are named as they are skipped.

mod common;

use common::{free_port, run_to_exit, wait_until, work_dir, Server};
use ferrous::persistence::rdb::CRC64;
use std::fs;
use std::path::PathBuf;
use std::time::Duration;

/// A DUMP payload of `body` (type byte and value): RDB version 10 and a valid CRC.
fn payload(body: &[u8]) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&10u16.to_le_bytes());
    let crc = CRC64.checksum(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

/// A hash ziplist whose third entry's length runs past the ziplist (from Redis's suite).
const BAD_HASH_ZIPLIST: &[u8] = b"\x0D\x1B\x1B\x00\x00\x00\x16\x00\x00\x00\x04\x00\x00\x02\x61\x00\x04\x02\x62\x00\x04\x14\x63\x00\x04\x02\x64\x00\xFF";
/// A hash listpack of the fields a, a (values b, d).
const DUP_HASH_LISTPACK: &[u8] =
    b"\x10\x17\x17\x00\x00\x00\x04\x00\x82\x61\x00\x03\x82\x62\x00\x03\x82\x61\x00\x03\x82\x64\x00\x03\xff";

fn restore(con: &mut redis::Connection, key: &str, body: &[u8]) -> Result<(), String> {
    redis::cmd("RESTORE").arg(key).arg(0).arg(payload(body)).arg("REPLACE").query(con).map_err(|e| e.to_string())
}

fn count(log: &str, text: &str) -> usize {
    log.lines().filter(|l| l.contains(text)).count()
}

#[test]
fn a_refused_restore_logs_redis_reason() {
    let server = Server::start(&["--loglevel", "verbose"]);
    let mut con = server.conn();
    let err = restore(&mut con, "h", BAD_HASH_ZIPLIST).unwrap_err();
    assert!(err.contains("Bad data format"), "{err}");
    let line =
        "- Internal error in RDB reading offset 0, function at rdb.c:2430 -> Hash ziplist integrity check failed.";
    assert!(wait_until(Duration::from_secs(5), || server.log().contains(line)), "{}", server.log());
    // A quicklist node of 0 bytes: refused, and (as in Redis) nothing is logged.
    let err = restore(&mut con, "l", b"\x12\x01\x01\x00").unwrap_err();
    assert!(err.contains("Bad data format"), "{err}");
    assert_eq!(count(&server.log(), "Internal error"), 1);
    // Duplicate fields found while converting to a table: Redis's hex dump, at warning level.
    let _: () = redis::cmd("CONFIG").arg("SET").arg("hash-max-listpack-entries").arg(1).query(&mut con).unwrap();
    assert!(restore(&mut con, "h", DUP_HASH_LISTPACK).unwrap_err().contains("Bad data format"));
    let dump = "# listpack with dup elements dump (hexdump of 23 bytes):";
    assert!(wait_until(Duration::from_secs(5), || server.log().contains(dump)), "{}", server.log());
    let hex: String = DUP_HASH_LISTPACK[2..].iter().map(|b| format!("{b:02x}")).collect();
    assert!(server.log().lines().any(|l| l == hex), "{}", server.log());
    let keys: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(keys, 0);
}

#[test]
fn at_notice_level_a_refused_restore_logs_nothing() {
    let server = Server::start(&[]);
    let mut con = server.conn();
    assert!(restore(&mut con, "h", BAD_HASH_ZIPLIST).unwrap_err().contains("Bad data format"));
    let _: String = redis::cmd("PING").query(&mut con).unwrap();
    assert_eq!(count(&server.log(), "Internal error"), 0, "{}", server.log());
}

/// A directory holding `name` with the content of an RDB version 10 file (checksum disabled)
/// of database 0 with `records`.
fn rdb_dir(test: &str, name: &str, records: &[u8]) -> PathBuf {
    let dir = work_dir().join(format!("corrupt-dump-{test}"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let mut file = b"REDIS0010\xfe\x00".to_vec();
    file.extend_from_slice(records);
    file.push(0xff);
    file.extend_from_slice(&[0; 8]);
    fs::write(dir.join(name), file).unwrap();
    dir
}

#[test]
fn a_corrupt_file_ends_the_start_up_as_in_redis() {
    let mut records = vec![0, 1, b'k', 1, b'v'];
    records.extend_from_slice(&[BAD_HASH_ZIPLIST[0], 1, b'h']);
    records.extend_from_slice(&BAD_HASH_ZIPLIST[1..]);
    let dir = rdb_dir("start", "bad.rdb", &records);
    let port = free_port().to_string();
    let args = ["--port", &port, "--dir", dir.to_str().unwrap(), "--dbfilename", "bad.rdb", "--save", ""];
    let done = run_to_exit(&args, Duration::from_secs(20));
    assert_eq!(done.status.code(), Some(1));
    let out = done.stdout;
    // The error line, then redis-check-rdb's report (which names it too), then the end.
    assert_eq!(count(&out, "Terminating server after rdb file reading failure."), 1, "{out}");
    assert!(count(&out, "rdb.c:2430 -> Hash ziplist integrity check failed.") >= 2, "{out}");
    assert_eq!(count(&out, "--- RDB ERROR DETECTED ---"), 1, "{out}");
    assert!(out.contains("(key 'h')"), "{out}");
}

#[test]
fn empty_keys_in_a_file_are_named_as_they_are_skipped() {
    let records = [
        &[2u8, 3, b's', b'e', b't', 0][..],
        // A quicklist whose only ziplist is empty.
        b"\x0e\x02ql\x01\x0b\x0b\x00\x00\x00\x0a\x00\x00\x00\x00\x00\xff",
        &[0, 1, b'k', 1, b'v'],
        // A hash listpack of no entries.
        b"\x10\x02hl\x07\x07\x00\x00\x00\x00\x00\xff",
    ]
    .concat();
    let dir = rdb_dir("empty", "empty.rdb", &records);
    let server = Server::start(&["--dir", dir.to_str().unwrap(), "--dbfilename", "empty.rdb"]);
    let mut con = server.conn();
    let keys: i64 = redis::cmd("DBSIZE").query(&mut con).unwrap();
    assert_eq!(keys, 1);
    let log = server.log();
    for key in ["set", "ql", "hl"] {
        assert_eq!(count(&log, &format!("* rdbLoadObject skipping empty key: {key}")), 1, "{log}");
    }
    assert_eq!(count(&log, "Done loading RDB, keys loaded: 1, keys expired: 0, empty keys skipped: 3."), 1, "{log}");
    assert_eq!(count(&log, "DB loaded from disk"), 1, "{log}");
}
