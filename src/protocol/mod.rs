//! The wire protocol: RESP2/RESP3 request decoding (multibulk and inline) with Redis's limits and
//! exact error texts, and the reply encoder that renders each reply for its connection's version.
//! This module knows nothing of the server: it works on byte buffers only.

pub mod parser;
pub mod reply;

pub use parser::{parse_request, parse_request_into, ParseError, ParseLimits, Request};
pub use reply::{Proto, ReplySink, MIN_BULK_BYTES};

/// A copy of a request argument, for keeping beyond the request (a channel subscribed to, a
/// key tracked or watched, a script body). An argument is a slice of the connection's read
/// buffer: kept as is, it would keep that whole buffer (16 KB or more) alive as long as it
/// is kept, uncounted by the client's memory.
pub fn detached(arg: &bytes::Bytes) -> bytes::Bytes {
    bytes::Bytes::copy_from_slice(arg)
}

/// Encode one command as a RESP multibulk.
pub fn encode_command(out: &mut Vec<u8>, argv: &[impl AsRef<[u8]>]) {
    encode_command_apart(out, argv, usize::MAX, |_, _| {});
}

/// [`encode_command`], except that each argument of `apart_from` bytes or more is not copied
/// into `out`: `apart(out, arg)` gets what `out` holds before it (its header included) and the
/// argument, to write both where they go, and leaves `out` for what follows (its CRLF on).
pub fn encode_command_apart(
    out: &mut Vec<u8>,
    argv: &[impl AsRef<[u8]>],
    apart_from: usize,
    mut apart: impl FnMut(&mut Vec<u8>, &[u8]),
) {
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(argv.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in argv {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        if a.len() >= apart_from {
            apart(out, a);
        } else {
            out.extend_from_slice(a);
        }
        out.extend_from_slice(b"\r\n");
    }
}
