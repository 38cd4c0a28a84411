//! Fuzz target: the cluster bus as an inbound peer's byte stream. Frames are cut as the link's
//! reader cuts them (signature and announced length), decoded, and processed by a cluster
//! state that knows one other node. Nothing may panic; and every frame that decodes encodes
//! back to bytes that decode and encode to the same bytes again.
#![no_main]

use ferrous::cluster::msg::{self, decode, encode};
use ferrous::cluster::node::flag;
use ferrous::cluster::state::{Settings, State};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Quiet: a log line per bad frame would slow the fuzzer down to a crawl.
    ferrous::server::log::set_level(usize::MAX);
    // Some messages save nodes.conf (a failed save stops the server, as Redis's does).
    let config_file = std::env::temp_dir().join(format!("ferrous-fuzz-nodes-{}.conf", std::process::id()));
    let config_file = config_file.to_string_lossy().into_owned();
    let mut st = State::new(Settings { port: 7000, node_timeout: 15000, config_file, ..Default::default() });
    let other = st.create_node(Some([b'b'; msg::NAMELEN]), flag::MASTER);
    if let Some(n) = st.nodes.get_mut(&other) {
        n.ip = "127.0.0.1".into();
        n.port = 7001;
        n.cport = 17001;
    }
    let link = st.add_link(None, ferrous::cluster::outgoing::Outgoing::new());
    let mut rest = data;
    while msg::valid_start(rest) {
        let Some(len) = msg::frame_len(rest) else { break };
        if rest.len() < len {
            break;
        }
        let (frame, tail) = rest.split_at(len);
        rest = tail;
        if let Ok(m) = decode(frame) {
            let once = encode(&m);
            let again = encode(&decode(&once).expect("an encoded message decodes"));
            assert_eq!(once, again);
        }
        if !st.process_packet(link, frame) {
            break;
        }
        st.cron();
    }
});
