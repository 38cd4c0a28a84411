//! Fuzz target: arbitrary bytes as an AOF file (commands, possibly after an RDB preamble).
//! The command parser must never panic, must report a torn tail at or before the end, and
//! what it accepts must replay into a server's dataset through the command handlers (as
//! start-up loading does) without panicking.
#![no_main]

use bytes::Bytes;
use ferrous::persistence::aof::{parse_commands, Ending};
use libfuzzer_sys::fuzz_target;
use std::sync::{Arc, OnceLock};

struct World {
    server: Arc<ferrous::server::Server>,
    rt: tokio::runtime::Runtime,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        // Commands that write files (SAVE...) write them in a scratch directory.
        let dir = std::env::temp_dir().join(format!("ferrous-fuzz-aof-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::env::set_current_dir(&dir);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let server = ferrous::server::Server::new(ferrous::config::Config::defaults(), None);
        server.apply_config();
        World { server, rt }
    })
}

/// Commands not replayed by this target: scripts (an endless loop in an AOF would hang the
/// loader as it hangs Redis's) and server administration (they stop the process or act on
/// files and configuration outside the dataset).
const NOT_REPLAYED: &[&[u8]] = &[
    b"eval",
    b"evalsha",
    b"eval_ro",
    b"evalsha_ro",
    b"fcall",
    b"fcall_ro",
    b"function",
    b"script",
    b"debug",
    b"shutdown",
    b"save",
    b"bgsave",
    b"bgrewriteaof",
    b"replicaof",
    b"slaveof",
    b"config",
    b"monitor",
    b"sync",
    b"psync",
    b"failover",
    b"client",
    b"wait",
    b"waitaof",
];

fuzz_target!(|data: &[u8]| {
    let parsed = parse_commands(data, 0);
    match parsed.ending {
        Ending::Clean => {}
        Ending::Truncated { valid_up_to, .. } => assert!(valid_up_to <= data.len()),
        Ending::BadFormat { offset } => assert!(offset <= data.len()),
    }
    for argv in &parsed.commands {
        assert!(!argv.is_empty());
    }
    // Replay (a bounded amount: huge inputs only exercise the parser).
    let replayable = !parsed.commands.iter().any(|argv| NOT_REPLAYED.iter().any(|n| argv[0].eq_ignore_ascii_case(n)));
    if data.len() <= 64 * 1024 && replayable {
        let w = world();
        let _guard = w.rt.enter();
        let s = &w.server;
        let _ = ferrous::server::aof_load::load_bytes(s, Bytes::copy_from_slice(data));
        // Start the next input from an empty dataset.
        let mut db = s.keyspace.lock_all(0);
        drop(db.flush(true));
    }
});
