//! Logging in Redis's format: `pid:role dd Mon yyyy hh:mm:ss.mmm <level-char> message`, where the
//! level character is `.` debug, `-` verbose, `*` notice, `#` warning. Messages go to stdout or
//! to the configured logfile, filtered by loglevel.

use parking_lot::Mutex;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};

static LEVEL: AtomicUsize = AtomicUsize::new(2);
static FILE: Mutex<Option<std::fs::File>> = Mutex::new(None);

pub const DEBUG: usize = 0;
pub const VERBOSE: usize = 1;
pub const NOTICE: usize = 2;
pub const WARNING: usize = 3;
/// `loglevel nothing` (Redis 7.2): above every level, so nothing is written.
pub const NOTHING: usize = 4;

/// Apply `loglevel` and `logfile` (empty = stdout).
pub fn configure(level: usize, logfile: &str) -> std::io::Result<()> {
    LEVEL.store(level, Ordering::Relaxed);
    if !logfile.is_empty() {
        let f = std::fs::OpenOptions::new().create(true).append(true).open(logfile)?;
        *FILE.lock() = Some(f);
    }
    Ok(())
}

pub fn log(level: usize, msg: &str) {
    if level < LEVEL.load(Ordering::Relaxed) {
        return;
    }
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (y, m, d) = civil_from_days(secs.div_euclid(86400));
    let tod = secs.rem_euclid(86400);
    let mark = ['.', '-', '*', '#'][level.min(3)];
    let line = format!(
        "{}:M {:02} {} {} {:02}:{:02}:{:02}.{:03} {} {}\n",
        std::process::id(),
        d,
        MONTHS[(m - 1) as usize],
        y,
        tod / 3600,
        tod % 3600 / 60,
        tod % 60,
        now.subsec_millis(),
        mark,
        msg
    );
    let mut f = FILE.lock();
    match f.as_mut() {
        Some(f) => {
            let _ = f.write_all(line.as_bytes());
        }
        None => {
            let _ = std::io::stdout().lock().write_all(line.as_bytes());
        }
    }
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn notice(msg: &str) {
    log(NOTICE, msg);
}

pub fn warning(msg: &str) {
    log(WARNING, msg);
}

pub fn verbose(msg: &str) {
    log(VERBOSE, msg);
}

#[cfg(test)]
mod tests {
    #[test]
    fn dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_415), (2025, 11, 23));
    }
}
