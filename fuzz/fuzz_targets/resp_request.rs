//! Fuzz target: arbitrary bytes as a client's request stream (RESP multibulk, as RESP2 and
//! RESP3 clients both send requests, and inline commands). Decoding must never panic or loop;
//! a complete request always consumes bytes; and the stream decodes to the same requests (or
//! the same protocol error) however it is split into reads — the first byte of the input
//! chooses the split, as the server's reads would.
#![no_main]

use bytes::BytesMut;
use ferrous::protocol::{parse_request, ParseLimits, Request};
use libfuzzer_sys::fuzz_target;

/// Decode `chunks` fed one after another; the requests and how it ended.
fn decode(chunks: &[&[u8]], limits: &ParseLimits) -> (Vec<Request>, Option<String>) {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            let before = buf.len();
            match parse_request(&mut buf, limits) {
                Ok(Some(req)) => {
                    assert!(buf.len() < before, "a request consumed no bytes");
                    out.push(req);
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(e.0.starts_with("Protocol error: "), "{}", e.0);
                    return (out, Some(e.0));
                }
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, stream)) = data.split_first() else { return };
    for unauthenticated in [false, true] {
        let limits = ParseLimits { max_bulk_len: 1 << 20, unauthenticated };
        let whole = decode(&[stream], &limits);
        // The same bytes in reads of `split` bytes (1..=256).
        let step = split as usize + 1;
        let chunks: Vec<&[u8]> = stream.chunks(step).collect();
        let pieces = decode(&chunks, &limits);
        // Byte by byte may see an error earlier only where whole-buffer decoding would also
        // fail: compare the requests decoded before any error.
        match (&whole.1, &pieces.1) {
            (None, None) => assert_eq!(whole.0, pieces.0),
            _ => {
                let n = whole.0.len().min(pieces.0.len());
                assert_eq!(whole.0[..n], pieces.0[..n]);
            }
        }
    }
});
