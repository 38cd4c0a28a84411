//! The wire protocol: RESP2/RESP3 request decoding (multibulk and inline) with Redis's limits and
//! exact error texts, and the reply encoder that renders each reply for its connection's version.
//! This module knows nothing of the server: it works on byte buffers only.

pub mod parser;
pub mod reply;

pub use parser::{parse_request, ParseError, ParseLimits, Request};
pub use reply::{Proto, ReplySink};
