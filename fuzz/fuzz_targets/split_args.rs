//! Fuzz target: `split_args` (Redis's sdssplitargs, used for inline requests and config
//! lines). It must never panic; and whatever it accepts, quoting each argument back (as
//! Redis's sdscatrepr would) and splitting again gives the same arguments.
#![no_main]

use ferrous::util::split_args::split_args;
use libfuzzer_sys::fuzz_target;

/// An argument quoted so that split_args reads it back unchanged.
fn repr(arg: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &c in arg {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x07 => out.extend_from_slice(b"\\a"),
            0x08 => out.extend_from_slice(b"\\b"),
            c if c.is_ascii_graphic() || c == b' ' => out.push(c),
            c => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
        }
    }
    out.push(b'"');
}

fuzz_target!(|data: &[u8]| {
    let Some(args) = split_args(data) else { return };
    let mut line = Vec::new();
    for a in &args {
        if !line.is_empty() {
            line.push(b' ');
        }
        repr(a, &mut line);
    }
    let again = split_args(&line).expect("a quoted line splits");
    assert_eq!(again, args);
});
