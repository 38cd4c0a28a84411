//! Fuzz target: `split_args` (Redis's sdssplitargs, used for inline requests and config
//! lines). It must never panic; and whatever it accepts, quoting each argument back (as
//! Redis's sdscatrepr would) and splitting again gives the same arguments.
#![no_main]

use ferrous::server::monitor::repr_into;
use ferrous::util::split_args::split_args;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(args) = split_args(data) else { return };
    let mut line = Vec::new();
    for a in &args {
        if !line.is_empty() {
            line.push(b' ');
        }
        repr_into(&mut line, a);
    }
    let again = split_args(&line).expect("a quoted line splits");
    assert_eq!(again, args);
});
