//! Fuzz target: a redis.conf file. Loading it fails with a message or gives a configuration,
//! never a panic; and what CONFIG REWRITE would write for that configuration loads again to a
//! configuration that rewrites to the same text (a rewritten file always starts the server
//! the same way). Inputs with `include` are skipped (they would read other files).
#![no_main]

use ferrous::config::{from_text, rewrite_text};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if text.to_ascii_lowercase().contains("include") {
        return;
    }
    let Ok(st) = from_text(text) else { return };
    let rewritten = rewrite_text(&st.config, text, true);
    let again = match from_text(&rewritten) {
        Ok(a) => a,
        Err(e) => panic!("the rewritten file does not load: {e}\n--- rewritten:\n{rewritten}"),
    };
    assert_eq!(rewrite_text(&again.config, "", true), rewrite_text(&st.config, "", true), "{rewritten}");
});
