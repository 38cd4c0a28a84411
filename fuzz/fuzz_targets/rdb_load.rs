//! Fuzz target: an arbitrary byte string as an RDB file. Parsing must end in an error or a
//! complete image (never a panic, a hang or an allocation the input cannot justify), and a
//! parsed image must install into a keyspace. The input is tried as is and with its trailer
//! zeroed ("no checksum"), so mutations reach the value decoders instead of stopping at the
//! CRC-64.
#![no_main]

use ferrous::keyspace::Keyspace;
use ferrous::persistence::rdb_load::{install, parse, LoadOptions};
use ferrous::persistence::rdb_value::Limits;
use libfuzzer_sys::fuzz_target;

fn load(data: &[u8]) {
    let opts = LoadOptions { databases: 16, limits: Limits::default(), now_ms: 1_700_000_000_000 };
    if let Ok(loaded) = parse(data, &opts) {
        let ks = Keyspace::new(16);
        let mut db = ks.lock_all(0);
        let _ = install(&mut db, loaded, false);
    }
}

fuzz_target!(|data: &[u8]| {
    load(data);
    if data.len() >= 17 {
        let mut unchecked = data.to_vec();
        let n = unchecked.len();
        unchecked[n - 8..].fill(0);
        load(&unchecked);
    }
});
