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
    out.push(b'*');
    out.extend_from_slice(itoa::Buffer::new().format(argv.len()).as_bytes());
    out.extend_from_slice(b"\r\n");
    for a in argv {
        let a = a.as_ref();
        out.push(b'$');
        out.extend_from_slice(itoa::Buffer::new().format(a.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
}
