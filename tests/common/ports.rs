//! Which process listens on a port, read from /proc: a test's server is ready only once the
//! process it started answers on its port.
//!
//! An answer to PING on the port is not proof. The tests of a crate run side by side, each
//! picking a port that was free a moment ago: when two pick the same one, the server that binds
//! first answers both tests while the other exits on EADDRINUSE. (CI once saw a test's own
//! server reset its connection just as the test beside it finished and killed its servers,
//! a thing this explains and nothing else found did.)

use std::collections::HashSet;
use std::fs;

/// Whether process `pid` holds a listening TCP socket (IPv4 or IPv6) on `port`.
pub fn listens_on(pid: u32, port: u16) -> bool {
    let mut sockets = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else { continue };
        // Columns: sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let local_port =
                fields.get(1).and_then(|a| a.rsplit(':').next()).and_then(|p| u16::from_str_radix(p, 16).ok());
            if fields.len() > 9 && fields[3] == "0A" && local_port == Some(port) {
                sockets.insert(format!("socket:[{}]", fields[9]));
            }
        }
    }
    let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    fds.flatten().any(|fd| fs::read_link(fd.path()).is_ok_and(|target| sockets.contains(&*target.to_string_lossy())))
}
