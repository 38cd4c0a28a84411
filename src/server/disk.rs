//! Disk errors that stop writes (Redis's writeCommandsDeniedByDiskError): a failed background
//! save while `stop-writes-on-bgsave-error` is on and save points are configured, or an AOF
//! whose last write or fsync failed. While one holds, the pipeline refuses write commands (and
//! PING) with `-MISCONF`; it clears by itself when the next BGSAVE or AOF write succeeds.

use std::sync::atomic::Ordering;

use super::Server;
use crate::util::fault::strerror;

/// Why writes are refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DiskError {
    /// The last background save failed.
    Rdb,
    /// Writing or fsyncing the AOF failed with this errno.
    Aof(i32),
}

impl DiskError {
    /// processCommand's refusal (and scriptVerifyWriteCommandAllow's, inside a script).
    pub fn message(self) -> String {
        match self {
            DiskError::Rdb => "-MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for details about the RDB error.".to_string(),
            DiskError::Aof(errno) => format!("-MISCONF Errors writing to the AOF file: {}", strerror(errno)),
        }
    }

    /// scriptPrepareForRun's refusal of a script that may write.
    pub fn script_message(self) -> String {
        match self {
            DiskError::Rdb => "-MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk. Writable scripts are blocked. Use 'no-writes' flag for read only scripts.".to_string(),
            DiskError::Aof(errno) => format!(
                "-MISCONF Redis is configured to persist data to AOF, but it's currently unable to persist to disk. Writable scripts are blocked. Use 'no-writes' flag for read only scripts. AOF error: {}",
                strerror(errno)
            ),
        }
    }
}

/// The disk error that refuses writes now, if any. A few relaxed loads: it runs for every
/// command.
pub fn write_denied(server: &Server) -> Option<DiskError> {
    let sv = &server.saving;
    if !sv.last_bgsave_ok.load(Ordering::Relaxed) && sv.stop_writes_on_error.load(Ordering::Relaxed) {
        return Some(DiskError::Rdb);
    }
    server.aof.error().map(DiskError::Aof)
}

/// A write from our master while the disk fails: Redis panics unless
/// `replica-ignore-disk-write-errors` is on, in which case it applies the command and says so
/// (at most every 10 seconds). PING from the master is only logged.
pub fn master_write_denied(server: &Server, ping: bool) {
    use std::sync::atomic::AtomicI64;
    static LAST_LOG_MS: AtomicI64 = AtomicI64::new(0);
    let ignore = server.config.load().replica_ignore_disk_write_errors;
    if !ignore && !ping {
        super::log::warning("Guru Meditation: Replica was unable to write command to disk. #disk");
        std::process::abort();
    }
    let now = crate::keyspace::now_ms();
    let last = LAST_LOG_MS.load(Ordering::Relaxed);
    if now > last + 10_000 && LAST_LOG_MS.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok() {
        super::log::warning("Replica is applying a command even though it is unable to write to disk.");
    }
}
