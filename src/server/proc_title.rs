//! The process title (`proc-title-template`, `set-proc-title`), as `ps` and /proc/PID/cmdline
//! show it: Redis's setproctitle. Linux keeps no title apart from the command line, so the
//! title is written over the memory of the original arguments and environment strings.
//!
//! For that memory to be free, a constructor run before `main` (from `.init_array`, as glibc
//! calls those with argc, argv and envp, and as Rust's std captures its arguments) moves every
//! argument and environment string into copies of their own and points `argv[]` and
//! `environ[]` at them. `std::env::args` and `getenv` then read the copies, and the original
//! contiguous run of strings becomes the space the title is written in.

use parking_lot::Mutex;
use std::ffi::{c_char, c_int};

use crate::config::kinds::{expand_proc_title, TitleVars};

/// The original strings' memory: start and length (0: not captured, e.g. not glibc).
static AREA: Mutex<(usize, usize)> = Mutex::new((0, 0));

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[link_section = ".init_array"]
static CAPTURE: extern "C" fn(c_int, *mut *mut c_char, *mut *mut c_char) = capture;

/// Runs before `main`, single-threaded: move the argument and environment strings out of the
/// way (see the module's doc) and remember the contiguous memory they leave.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
extern "C" fn capture(argc: c_int, argv: *mut *mut c_char, envp: *mut *mut c_char) {
    if argc < 1 || argv.is_null() {
        return;
    }
    // SAFETY: glibc passes the process's argv (argc entries) and envp (NULL-terminated), whose
    // strings and arrays are writable and live for the whole process; no other thread exists.
    unsafe {
        let start = *argv as usize;
        if start == 0 {
            return;
        }
        let mut end = start;
        // Each string that begins where the previous ended extends the area; every one is
        // copied (leaked: the process keeps them to its end) and its pointer replaced.
        let mut take = |slot: *mut *mut c_char| {
            let s = *slot;
            let len = libc::strlen(s);
            if s as usize == end || s as usize == start {
                end = s as usize + len + 1;
            }
            let copy = libc::strdup(s);
            if !copy.is_null() {
                *slot = copy;
            }
        };
        for i in 0..argc as usize {
            if !(*argv.add(i)).is_null() {
                take(argv.add(i));
            }
        }
        if !envp.is_null() {
            let mut i = 0;
            while !(*envp.add(i)).is_null() {
                take(envp.add(i));
                i += 1;
            }
        }
        *AREA.lock() = (start, end - start);
    }
}

/// Show `title` as the process's command line (cut to the space the original strings had).
pub fn set(title: &str) {
    let area = AREA.lock();
    let (start, len) = *area;
    if start == 0 || len < 2 {
        return;
    }
    let n = title.len().min(len - 1);
    // SAFETY: [start, start + len) is the original strings' memory, which nothing points at
    // any more (see `capture`); the lock keeps two writers apart.
    unsafe {
        let p = start as *mut u8;
        std::ptr::copy_nonoverlapping(title.as_ptr(), p, n);
        std::ptr::write_bytes(p.add(n), 0, len - n);
    }
}

/// Show the title `proc-title-template` describes now, if `set-proc-title` is on.
pub fn update(cfg: &crate::config::Config, config_file: Option<&str>) {
    if !cfg.set_proc_title {
        return;
    }
    let argv0 = std::env::args().next().unwrap_or_default();
    let vars = TitleVars {
        title: &argv0,
        bind: cfg.bind.first().map(String::as_str),
        port: cfg.port,
        tls_port: cfg.tls_port,
        unixsocket: &cfg.unixsocket,
        cluster: cfg.cluster_enabled,
        sentinel: crate::sentinel::active(),
        config_file,
    };
    if let Some(title) = expand_proc_title(&cfg.proc_title_template, &vars) {
        set(&title);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> TitleVars<'static> {
        TitleVars {
            title: "/usr/bin/redis-server",
            bind: Some("127.0.0.1"),
            port: 6380,
            tls_port: 0,
            unixsocket: "/tmp/r.sock",
            cluster: false,
            sentinel: false,
            config_file: None,
        }
    }

    #[test]
    fn expands_every_variable_as_redis() {
        let t = "TEST {title} {listen-addr} {port} {tls-port} {unixsocket} {config-file}";
        assert_eq!(
            expand_proc_title(t, &vars()).unwrap(),
            "TEST /usr/bin/redis-server 127.0.0.1:6380 6380 0 /tmp/r.sock -"
        );
        // The default template, trimmed: no mode outside cluster mode.
        assert_eq!(
            expand_proc_title("{title} {listen-addr} {server-mode}", &vars()).unwrap(),
            "/usr/bin/redis-server 127.0.0.1:6380"
        );
        let v = TitleVars { port: 0, bind: None, cluster: true, ..vars() };
        assert_eq!(expand_proc_title("{listen-addr} {server-mode}", &v).unwrap(), "unixsocket:/tmp/r.sock [cluster]");
        assert_eq!(expand_proc_title("{invalid-var}", &vars()), None);
        assert_eq!(expand_proc_title("{title", &vars()), None);
        assert_eq!(expand_proc_title("title}", &vars()), None);
    }

    /// The arguments were moved before `main`: std still reads them, and the title is written
    /// over their old memory, as /proc/self/cmdline shows.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn the_title_replaces_the_command_line() {
        let args: Vec<String> = std::env::args().collect();
        set("ferrous-title-test 127.0.0.1:1");
        let cmdline = std::fs::read("/proc/self/cmdline").unwrap();
        assert!(cmdline.starts_with(b"ferrous-title-test 127.0.0.1:1\0"), "{:?}", String::from_utf8_lossy(&cmdline));
        assert_eq!(std::env::args().collect::<Vec<_>>(), args);
        assert!(std::env::var("PATH").is_ok());
    }
}
