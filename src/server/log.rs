//! Logging in Redis's format: `pid:role dd Mon yyyy hh:mm:ss.mmm <level-char> message`, where
//! the role is `C` before the server is initialised, `M` for a master, `S` for a replica, and the
//! level character is `.` debug, `-` verbose, `*` notice, `#` warning. Messages go to stdout or
//! to the configured logfile (reopened for every line, as Redis does, so log rotation and
//! truncation by tests work), filtered by loglevel.

use parking_lot::Mutex;
use std::io::Write;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};

use crate::persistence::reader::Report;

static LEVEL: AtomicUsize = AtomicUsize::new(2);
static FILE: Mutex<Option<String>> = Mutex::new(None);
static ROLE: AtomicU8 = AtomicU8::new(b'C');

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
        std::fs::OpenOptions::new().create(true).append(true).open(logfile)?;
        *FILE.lock() = Some(logfile.to_string());
    }
    Ok(())
}

/// Change `loglevel` (CONFIG SET).
pub fn set_level(level: usize) {
    LEVEL.store(level, Ordering::Relaxed);
}

/// The role letter of later lines: `M` (master) or `S` (replica); a Sentinel's `X` stays.
pub fn set_role(replica: bool) {
    if ROLE.load(Ordering::Relaxed) != b'X' {
        ROLE.store(if replica { b'S' } else { b'M' }, Ordering::Relaxed);
    }
}

/// Sentinel mode: every line carries `X`, as Redis's.
pub fn set_sentinel_role() {
    ROLE.store(b'X', Ordering::Relaxed);
}

fn write_out(text: &str) {
    let path = FILE.lock().clone();
    match path {
        Some(p) => {
            if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(&p) {
                let _ = f.write_all(text.as_bytes());
            }
        }
        None => {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
            let _ = out.flush();
        }
    }
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
        "{}:{} {:02} {} {} {:02}:{:02}:{:02}.{:03} {} {}\n",
        std::process::id(),
        ROLE.load(Ordering::Relaxed) as char,
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
    write_out(&line);
}

/// Write text as it is (the start-up logo), at notice level.
pub fn raw(text: &str) {
    if NOTICE >= LEVEL.load(Ordering::Relaxed) {
        write_out(text);
    }
}

/// Write text as it is, at warning level (the watchdog's report, as Redis's
/// serverLogFromHandler).
pub fn raw_warning(text: &str) {
    if WARNING >= LEVEL.load(Ordering::Relaxed) {
        write_out(text);
    }
}

/// Log `bytes` as Redis's serverLogHexDump does: "<descr> (hexdump of N bytes):", then the
/// bytes in lowercase hex on one line of their own (Redis writes them 32 at a time, raw,
/// without line breaks).
pub fn hexdump(level: usize, descr: &str, bytes: &[u8]) {
    if level < LEVEL.load(Ordering::Relaxed) {
        return;
    }
    log(level, &format!("{descr} (hexdump of {} bytes):", bytes.len()));
    write_out(&hex_line(bytes));
}

/// Log what Redis logs when it refuses a damaged RDB value (see [`Report`]): its internal
/// error line at `level` (`offset`: where in the file; a RESTORE says 0), or the hex dump of a
/// hash listpack with duplicate fields at warning level.
pub fn rdb_report(report: &Report, level: usize, offset: usize) {
    match report {
        Report::Corrupt { line, reason } => log(level, &Report::internal_error(*line, reason, offset)),
        Report::DupListpack(lp) => hexdump(WARNING, "listpack with dup elements dump", lp),
    }
}

/// `bytes` in lowercase hex, then a newline.
fn hex_line(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2 + 1);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out.push('\n');
    out
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

pub fn debug(msg: &str) {
    log(DEBUG, msg);
}

/// The start-up banner (shown with `always-show-logo yes`, or when stdout is a terminal): the
/// version, mode, port and ` PID: <pid>`, which tools (Redis's test suite) wait for.
pub fn logo(port: u16) -> String {
    format!(
        "                _._                                                  \n\
         \x20          _.-``__ ''-._                                             \n\
         \x20     _.-``    `.  `_.  ''-._           Ferrous {ferrous} (Redis {redis} compatible) 64 bit\n\
         \x20 .-`` .-```.  ```\\/    _.,_ ''-._                                  \n\
         \x20(    '      ,       .-`  | `,    )     Running in standalone mode\n\
         \x20|`-._`-...-` __...-.``-._|'` _.-'|     Port: {port}\n\
         \x20|    `-._   `._    /     _.-'    |     PID: {pid}\n\
         \x20 `-._    `-._  `-./  _.-'    _.-'                                   \n\
         \x20|`-._`-._    `-.__.-'    _.-'_.-'|                                  \n\
         \x20|    `-._`-._        _.-'_.-'    |                                  \n\
         \x20 `-._    `-._`-.__.-'_.-'    _.-'                                   \n\
         \x20     `-._    `-.__.-'    _.-'                                       \n\
         \x20         `-._        _.-'                                           \n\
         \x20             `-.__.-'                                               \n\n",
        ferrous = crate::VERSION,
        redis = crate::REDIS_VERSION,
        port = port,
        pid = std::process::id()
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_line_is_redis_hexdump_body() {
        assert_eq!(super::hex_line(&[0x17, 0, 0xff, 0xa0]), "1700ffa0\n");
        assert_eq!(super::hex_line(&[]), "\n");
    }

    #[test]
    fn dates() {
        assert_eq!(super::civil_from_days(0), (1970, 1, 1));
        assert_eq!(super::civil_from_days(20_415), (2025, 11, 23));
    }

    #[test]
    fn logo_names_the_pid() {
        assert!(super::logo(6379).contains(&format!(" PID: {}\n", std::process::id())));
    }
}
