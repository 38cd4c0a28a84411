//! Disk errors stop writes as in Redis (MISCONF) and lose nothing that was acknowledged: an AOF
//! on a filesystem that fills up (a small tmpfs this test mounts), a background save that
//! fails, and — through the fault-injection seam (`DEBUG FAULT-INJECT`) — AOF write and fsync
//! errors a filesystem cannot easily be made to produce. Writes are accepted again, by
//! themselves, once the disk has room.
//!
//! Mounting needs root (CI runs as root). Where `mount` is refused, the tmpfs tests print
//! `SKIPPED:` with the reason and the fault-injection tests below cover the same paths.

mod common;

use common::{info_field, query, wait_until, work_dir, Server};

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const AOF_FULL: &str = "MISCONF Errors writing to the AOF file: No space left on device";
const RDB_FAILED: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.";

/// A tmpfs of a few megabytes mounted for one test, unmounted when dropped.
struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    fn mount(name: &str, size: &str) -> Result<Tmpfs, String> {
        let path = work_dir().join(format!("tmpfs-{name}-{}", std::process::id()));
        let _ = Command::new("umount").arg("-l").arg(&path).output();
        fs::create_dir_all(&path).map_err(|e| e.to_string())?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .output()
            .map_err(|e| format!("mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount -t tmpfs failed: {}", String::from_utf8_lossy(&out.stderr).trim()));
        }
        Ok(Tmpfs { path })
    }

    fn dir(&self) -> &str {
        self.path.to_str().expect("utf-8 path")
    }

    /// Fill the filesystem with `name` (all of it when `bytes` is None).
    fn fill(&self, name: &str, bytes: Option<usize>) {
        let mut f = fs::File::create(self.path.join(name)).expect("create the filler");
        let chunk = vec![0u8; 64 * 1024];
        let mut left = bytes.unwrap_or(usize::MAX);
        while left > 0 {
            let n = chunk.len().min(left);
            if f.write_all(&chunk[..n]).is_err() {
                break;
            }
            left -= n;
        }
        let _ = f.sync_all();
    }

    fn free(&self, name: &str) {
        fs::remove_file(self.path.join(name)).expect("remove the filler");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).output();
        let _ = fs::remove_dir(&self.path);
    }
}

fn tmpfs_or_skip(test: &str, size: &str) -> Option<Tmpfs> {
    match Tmpfs::mount(test, size) {
        Ok(t) => Some(t),
        Err(why) => {
            println!("SKIPPED: {test}: cannot mount a tmpfs ({why}); the fault-injection tests cover this path");
            None
        }
    }
}

fn test_dir(name: &str) -> PathBuf {
    let d = work_dir().join(format!("disk-{name}"));
    let _ = fs::remove_dir_all(&d);
    fs::create_dir_all(&d).expect("create the test directory");
    d
}

/// The error text of a command that must fail.
fn error(con: &mut redis::Connection, args: &[&str]) -> String {
    match redis::cmd(args[0]).arg(&args[1..]).query::<redis::Value>(con) {
        Ok(v) => panic!("{args:?} succeeded: {v:?}"),
        Err(e) => {
            let code = e.code().unwrap_or("").to_string();
            let detail = e.detail().unwrap_or("").to_string();
            format!("{code} {detail}").trim().to_string()
        }
    }
}

fn ping(con: &mut redis::Connection) -> Result<String, String> {
    redis::cmd("PING").query::<String>(con).map_err(|e| e.to_string())
}

/// SET k0, k1 ... (10 KB values) until a write is refused; returns how many were acknowledged
/// and the refusal.
fn set_until_refused(con: &mut redis::Connection, max: usize) -> (usize, String) {
    let value = "v".repeat(10_000);
    for i in 0..max {
        match redis::cmd("SET").arg(format!("k{i}")).arg(&value).query::<()>(con) {
            Ok(()) => {}
            Err(e) => return (i, format!("{} {}", e.code().unwrap_or(""), e.detail().unwrap_or(""))),
        }
    }
    panic!("{max} writes of 10 KB were all accepted");
}

/// After a restart on the same directory: every acknowledged key is there.
fn assert_all_present(dir: &str, acked: usize, extra: &[&str]) {
    let mut args = vec!["--dir", dir, "--appendonly", "yes"];
    args.extend_from_slice(extra);
    let server = Server::start(&args);
    let mut con = server.conn();
    let size: usize = query(&mut con, &["DBSIZE"]);
    for i in 0..acked {
        let n: usize = query(&mut con, &["EXISTS", &format!("k{i}")]);
        assert_eq!(n, 1, "acknowledged key k{i} lost ({size} keys after the restart, {acked} acknowledged)");
    }
    assert!(size >= acked, "{size} keys after the restart, {acked} acknowledged");
}

#[test]
fn a_full_disk_refuses_writes_with_misconf_and_loses_no_acknowledged_write() {
    let Some(fs) = tmpfs_or_skip("aof-full", "5m") else { return };
    // Room to make later: 1 MB that the test deletes once the disk is full.
    fs.fill("filler", Some(1 << 20));
    let dir = fs.dir().to_string();
    let acked = {
        let server = Server::start(&["--dir", &dir, "--appendonly", "yes", "--appendfsync", "everysec"]);
        let mut con = server.conn();
        let (acked, refusal) = set_until_refused(&mut con, 1000);
        assert_eq!(refusal, AOF_FULL);
        assert!(acked > 100, "only {acked} writes before the disk was full");
        // Redis refuses PING too (health checks see the error); reads work.
        assert_eq!(error(&mut con, &["PING"]), AOF_FULL);
        let v: String = query(&mut con, &["GET", "k0"]);
        assert_eq!(v.len(), 10_000);
        assert_eq!(info_field(&mut con, "persistence", "aof_last_write_status"), "err");
        // Scripts: a write inside a script, a script with a shebang that may write.
        let in_script = error(&mut con, &["EVAL", "return redis.call('set','x','y')", "0"]);
        assert!(in_script.starts_with(&format!("{AOF_FULL} script: ")), "{in_script}");
        assert_eq!(error(&mut con, &["EVAL", "#!lua\nreturn 1", "0"]), AOF_FULL);
        let n: i64 = query(&mut con, &["EVAL", "return 1", "0"]);
        assert_eq!(n, 1);
        // Make room: the server notices by itself and accepts writes again.
        fs.free("filler");
        assert!(
            wait_until(common::BACKGROUND_WORK, || ping(&mut con).is_ok()),
            "writes still refused after the disk got room: {}",
            server.log()
        );
        assert!(server.log().contains("AOF write error looks solved, Redis can write again."));
        assert_eq!(info_field(&mut con, "persistence", "aof_last_write_status"), "ok");
        let _: () = query(&mut con, &["SET", &format!("k{acked}"), "after"]);
        acked + 1
        // The server is killed (SIGKILL) here: what was acknowledged must be in the file.
    };
    assert_all_present(&dir, acked, &[]);
}

#[test]
fn a_failed_bgsave_refuses_writes_until_a_save_succeeds() {
    let Some(fs) = tmpfs_or_skip("bgsave", "2m") else { return };
    let dir = fs.dir().to_string();
    let server = Server::start(&["--dir", &dir, "--save", "3600 1"]);
    let mut con = server.conn();
    let _: () = query(&mut con, &["SET", "big", &"x".repeat(100_000)]);
    fs.fill("filler", None);
    let _: String = query(&mut con, &["BGSAVE"]);
    assert!(
        wait_until(common::BACKGROUND_WORK, || info_field(&mut con, "persistence", "rdb_last_bgsave_status") == "err"),
        "the background save did not fail"
    );
    assert_eq!(error(&mut con, &["SET", "k", "v"]), RDB_FAILED);
    assert_eq!(error(&mut con, &["PING"]), RDB_FAILED);
    assert_eq!(
        error(&mut con, &["EVAL", "#!lua\nreturn 1", "0"]),
        RDB_FAILED,
        "a script that may write is refused like a write"
    );
    let v: String = query(&mut con, &["GET", "big"]);
    assert_eq!(v.len(), 100_000);
    // Without save points (or with stop-writes-on-bgsave-error no) writes are accepted.
    let _: () = query(&mut con, &["CONFIG", "SET", "save", ""]);
    let _: () = query(&mut con, &["SET", "k", "v"]);
    let _: () = query(&mut con, &["CONFIG", "SET", "save", "3600 1"]);
    assert_eq!(error(&mut con, &["SET", "k", "v"]), RDB_FAILED);
    fs.free("filler");
    let _: String = query(&mut con, &["BGSAVE"]);
    assert!(
        wait_until(common::BACKGROUND_WORK, || ping(&mut con).is_ok()),
        "writes still refused after a successful save"
    );
    let _: () = query(&mut con, &["SET", "k", "v2"]);
}

#[test]
fn injected_aof_write_errors_refuse_writes_and_lose_nothing() {
    let dir = test_dir("inject-write");
    let dir = dir.to_str().unwrap().to_string();
    let args = ["--dir", &dir, "--appendonly", "yes", "--enable-debug-command", "yes"];
    let acked = {
        let server = Server::start(&args);
        let mut con = server.conn();
        for i in 0..10 {
            let _: () = query(&mut con, &["SET", &format!("k{i}"), "v"]);
        }
        let _: () = query(&mut con, &["DEBUG", "FAULT-INJECT", "aof-write", "ENOSPC"]);
        // The write whose AOF write fails is acknowledged (as in Redis); the next is refused.
        let (acked, refusal) = set_until_refused(&mut con, 100);
        assert_eq!(refusal, AOF_FULL);
        assert!(acked <= 1, "{acked} writes acknowledged after the AOF failed");
        assert!(server.log().contains("Error writing to the AOF file: No space left on device"));
        let buffered: u64 = info_field(&mut con, "persistence", "aof_buffer_length").parse().unwrap();
        assert!(buffered > 0 || acked == 0, "the failed write is kept in the AOF buffer");
        let _: () = query(&mut con, &["DEBUG", "FAULT-INJECT", "aof-write", "OFF"]);
        assert!(wait_until(common::BACKGROUND_WORK, || ping(&mut con).is_ok()), "not recovered: {}", server.log());
        assert_eq!(info_field(&mut con, "persistence", "aof_buffer_length"), "0");
        acked
    };
    assert_all_present(&dir, acked, &[]);
}

#[test]
fn injected_aof_fsync_errors_refuse_writes_until_an_fsync_succeeds() {
    let dir = test_dir("inject-fsync");
    let dir = dir.to_str().unwrap().to_string();
    let server = Server::start(&["--dir", &dir, "--appendonly", "yes", "--enable-debug-command", "yes"]);
    let mut con = server.conn();
    let _: () = query(&mut con, &["DEBUG", "FAULT-INJECT", "aof-fsync", "EIO"]);
    let _: () = query(&mut con, &["SET", "a", "1"]);
    // everysec: the fsync after this write fails within about a second.
    let refused =
        wait_until(common::BACKGROUND_WORK, || redis::cmd("SET").arg("b").arg("1").query::<()>(&mut con).is_err());
    assert!(refused, "writes accepted although the fsync fails");
    assert_eq!(error(&mut con, &["SET", "b", "1"]), "MISCONF Errors writing to the AOF file: Input/output error");
    assert!(server.log().contains("Fail to fsync the AOF file: Input/output error"));
    assert_eq!(info_field(&mut con, "persistence", "aof_last_write_status"), "err");
    assert_eq!(
        error(&mut con, &["EVAL", "#!lua\nreturn redis.call('set','x','y')", "0"]),
        "MISCONF Errors writing to the AOF file: Input/output error"
    );
    let _: () = query(&mut con, &["DEBUG", "FAULT-INJECT", "aof-fsync", "OFF"]);
    assert!(wait_until(common::BACKGROUND_WORK, || ping(&mut con).is_ok()), "not recovered: {}", server.log());
    let _: () = query(&mut con, &["SET", "b", "2"]);
}

#[test]
fn an_aof_write_error_with_appendfsync_always_stops_the_server_before_replying() {
    let dir = test_dir("inject-always");
    let dir = dir.to_str().unwrap().to_string();
    let args = ["--dir", &dir, "--appendonly", "yes", "--appendfsync", "always", "--enable-debug-command", "yes"];
    let mut server = Server::start(&args);
    let mut con = server.conn();
    let _: () = query(&mut con, &["SET", "kept", "1"]);
    let _: () = query(&mut con, &["DEBUG", "FAULT-INJECT", "aof-write", "ENOSPC"]);
    // Redis exits rather than acknowledge a write it could not persist.
    let r = redis::cmd("SET").arg("lost").arg("1").query::<()>(&mut con);
    assert!(r.is_err(), "a write was acknowledged although the AOF write failed");
    let status = server.wait_exit(Duration::from_secs(10)).expect("the server exits");
    assert!(!status.success());
    assert!(server
        .log()
        .contains("Can't recover from AOF write error when the AOF fsync policy is 'always'. Exiting..."));
    assert_all_present(&dir, 0, &[]);
    let restarted = Server::start(&["--dir", &dir, "--appendonly", "yes"]);
    let mut con = restarted.conn();
    let n: usize = query(&mut con, &["EXISTS", "kept"]);
    assert_eq!(n, 1);
}

#[test]
fn injected_rdb_errors_fail_bgsave_and_refuse_writes() {
    let dir = test_dir("inject-rdb");
    let dir = dir.to_str().unwrap().to_string();
    let server = Server::start(&["--dir", &dir, "--save", "3600 1", "--enable-debug-command", "yes"]);
    let mut con = server.conn();
    let _: () = query(&mut con, &["SET", "k", "v"]);
    let _: () = query(&mut con, &["DEBUG", "FAULT-INJECT", "rdb-save", "ENOSPC"]);
    let _: String = query(&mut con, &["BGSAVE"]);
    assert!(wait_until(common::BACKGROUND_WORK, || {
        info_field(&mut con, "persistence", "rdb_last_bgsave_status") == "err"
    }));
    assert_eq!(error(&mut con, &["SET", "k", "v"]), RDB_FAILED);
    let _: () = query(&mut con, &["DEBUG", "FAULT-INJECT", "rdb-save", "OFF"]);
    let _: () = query(&mut con, &["CONFIG", "SET", "stop-writes-on-bgsave-error", "no"]);
    let _: () = query(&mut con, &["SET", "k", "v2"]);
    let _: () = query(&mut con, &["CONFIG", "SET", "stop-writes-on-bgsave-error", "yes"]);
    assert_eq!(error(&mut con, &["SET", "k", "v"]), RDB_FAILED);
    let _: String = query(&mut con, &["BGSAVE"]);
    assert!(wait_until(common::BACKGROUND_WORK, || ping(&mut con).is_ok()));
    assert!(Path::new(&dir).join("dump.rdb").exists());
}
