//! COMMAND DOCS and COMMAND INFO against Redis 7.2.4's own command table, byte for byte.
//! `tools/command_meta/compare72.py` renders every command's entries from 7.2.4's command JSON
//! files (what 7.2.4's command table is generated from) the way 7.2.4's server.c renders them,
//! and compares a running Ferrous's replies in RESP2 and RESP3. The renderer itself is checked
//! against a real Redis 7.0.15 rendering 7.0.15's JSON (the two versions render alike but for
//! 7.2's display_text). The source trees come from `$REDIS_SRC_72` / `$REDIS_SRC_70` (default
//! /tmp/redis-src-7.2, /tmp/redis-src-7.0); without one, or without python3, a test prints
//! SKIPPED.

mod common;

use common::{start_real_redis, Server};
use std::path::PathBuf;
use std::process::Command;

fn source_tree(var: &str, default: &str, test: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(std::env::var_os(var).unwrap_or_else(|| default.into()));
    if !dir.join("src/commands/set.json").is_file() {
        eprintln!("SKIPPED: {test} needs a Redis source tree at {} (or ${var})", dir.display());
        return None;
    }
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: {test} needs python3");
        return None;
    }
    Some(dir)
}

/// Run compare72.py against `port`; panics with its report unless everything matched.
fn compare(port: u16, src: &PathBuf, extra: &[&str]) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/command_meta/compare72.py");
    let out = Command::new("python3")
        .arg(script)
        .args(["--port", &port.to_string(), "--src"])
        .arg(src)
        .args(extra)
        .output()
        .expect("run compare72.py");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    eprintln!("{report}");
    assert!(out.status.success(), "COMMAND DOCS/INFO differ:\n{report}");
}

#[test]
fn command_docs_and_info_are_redis_7_2_4s() {
    let Some(src) = source_tree("REDIS_SRC_72", "/tmp/redis-src-7.2", "command_docs_and_info_are_redis_7_2_4s") else {
        return;
    };
    let ferrous = Server::start(&[]);
    compare(ferrous.port, &src, &[]);
}

#[test]
fn the_renderer_reproduces_redis_7_0_15() {
    let test = "the_renderer_reproduces_redis_7_0_15";
    let Some(src) = source_tree("REDIS_SRC_70", "/tmp/redis-src-7.0", test) else {
        return;
    };
    let Some(redis) = start_real_redis(test) else {
        return;
    };
    compare(redis.port, &src, &["--oracle70"]);
}
