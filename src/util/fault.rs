//! Fault injection for the tests of disk errors: a few named points of the persistence code
//! ask [`check`] before their I/O and fail with the armed `errno` instead (DEBUG FAULT-INJECT
//! arms them). Costs one relaxed atomic load per write when nothing is armed. Tests use a
//! real full filesystem (a small tmpfs) where they can mount one; this seam covers what a
//! filesystem cannot easily be made to do (a failing fsync) and machines without `mount`.

use std::io;
use std::sync::atomic::{AtomicI32, Ordering};

/// Where a fault can be injected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// The AOF writer's write(2) of its buffer.
    AofWrite = 0,
    /// The AOF writer's fsync.
    AofFsync = 1,
    /// Writing an RDB file (SAVE, BGSAVE).
    RdbSave = 2,
}

static ARMED: [AtomicI32; 3] = [AtomicI32::new(0), AtomicI32::new(0), AtomicI32::new(0)];

impl Point {
    pub fn by_name(name: &str) -> Option<Point> {
        match name.to_ascii_lowercase().as_str() {
            "aof-write" => Some(Point::AofWrite),
            "aof-fsync" => Some(Point::AofFsync),
            "rdb-save" => Some(Point::RdbSave),
            _ => None,
        }
    }
}

/// An errno by its name (`ENOSPC`, `EIO`, `EDQUOT`, `EROFS`) or number; `OFF`/`0` disarms.
pub fn errno_by_name(name: &str) -> Option<i32> {
    match name.to_ascii_uppercase().as_str() {
        "OFF" => Some(0),
        "ENOSPC" => Some(libc::ENOSPC),
        "EIO" => Some(libc::EIO),
        "EDQUOT" => Some(libc::EDQUOT),
        "EROFS" => Some(libc::EROFS),
        n => n.parse().ok().filter(|&e| e >= 0),
    }
}

/// Make `point` fail with `errno` (0: work normally again).
pub fn arm(point: Point, errno: i32) {
    ARMED[point as usize].store(errno, Ordering::Relaxed);
}

/// Err with the armed errno, if any.
#[inline]
pub fn check(point: Point) -> io::Result<()> {
    match ARMED[point as usize].load(Ordering::Relaxed) {
        0 => Ok(()),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// A writer whose every write fails (to release a capture without serialising it).
pub struct Failing(pub io::ErrorKind);

impl io::Write for Failing {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::Error::from(self.0))
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// C's strerror: the text of an errno without Rust's " (os error N)" suffix (Redis prints
/// `strerror(errno)` in its MISCONF errors and logs).
pub fn strerror(errno: i32) -> String {
    let s = io::Error::from_raw_os_error(errno).to_string();
    match s.rfind(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The errno of an I/O error (EIO when it has none, as a failed write would report).
pub fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn armed_point_fails_with_its_errno() {
        assert!(check(Point::AofFsync).is_ok());
        arm(Point::AofFsync, libc::EIO);
        let e = check(Point::AofFsync).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EIO));
        arm(Point::AofFsync, 0);
        assert!(check(Point::AofFsync).is_ok());
    }

    #[test]
    fn strerror_is_cs() {
        assert_eq!(strerror(libc::ENOSPC), "No space left on device");
        assert_eq!(errno_by_name("enospc"), Some(libc::ENOSPC));
        assert_eq!(errno_by_name("off"), Some(0));
        assert_eq!(errno_by_name("x"), None);
    }
}
