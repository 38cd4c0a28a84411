//! Fuzz target: loading nodes.conf. A file is loaded or refused, never a panic; a loaded one
//! is written back, and that text loads again to as many nodes (those not in handshake).
#![no_main]

use ferrous::cluster::state::{Settings, State};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ferrous::server::log::set_level(usize::MAX);
    let mut st = State::new(Settings::default());
    if st.load_config_text(data) != Ok(true) {
        return;
    }
    // The file leaves out nodes in handshake.
    let count = |s: &State| s.nodes.values().filter(|n| !n.in_handshake()).count();
    let text = st.nodes_description(ferrous::cluster::config::Lines::File);
    let mut again = State::new(Settings::default());
    assert_eq!(again.load_config_text(text.as_bytes()), Ok(true), "{text}");
    assert_eq!(count(&again), count(&st), "{text}");
});
