//! The reply encoder. Handlers write replies into a [`ReplySink`], which renders each one for the
//! connection's protocol version the way Redis does: RESP3 types (null, double, map, set, boolean,
//! verbatim, big number, push) degrade to their RESP2 equivalents on RESP2 connections.

/// The protocol version a connection speaks (chosen with HELLO).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Proto {
    #[default]
    Resp2,
    Resp3,
}

/// A bulk value this big is written into room reserved for it at once.
const BIG_BULK: usize = 16 * 1024;

/// A growing buffer of encoded replies, plus the bookkeeping the server needs about them.
#[derive(Debug, Default)]
pub struct ReplySink {
    pub buf: Vec<u8>,
    pub proto: Proto,
    /// The first word of every error reply written (e.g. `ERR`, `WRONGTYPE`), for INFO errorstats.
    pub errors: Vec<String>,
    /// Error replies already counted in errorstats elsewhere (a script returning the error of
    /// a command it ran): the command still counts as failed.
    pub uncounted_errors: usize,
    /// Bytes this sink may hold before its client is over its output-buffer hard limit or
    /// ceiling (0: no limit). Past it the reply is never sent (the client is closed; a script's
    /// command fails), so strings are no longer written, and handlers that can answer without
    /// bound (SRANDMEMBER, HRANDFIELD, ZRANDMEMBER with negative counts) stop, as Redis's stop
    /// when the client is flagged to close.
    pub limit: usize,
}

/// The limit of a sink whose replies nobody reads (commands from the AOF, a master, a replica,
/// a blocked command put back): one command cannot fill memory with them.
const DISCARD_LIMIT: usize = 1 << 20;

impl ReplySink {
    pub fn new(proto: Proto) -> Self {
        ReplySink { buf: Vec::with_capacity(256), proto, errors: Vec::new(), uncounted_errors: 0, limit: 0 }
    }

    /// A sink for replies that are thrown away (see [`DISCARD_LIMIT`]); its user clears it
    /// after each command.
    pub fn discarding(proto: Proto) -> Self {
        ReplySink { limit: DISCARD_LIMIT, ..Self::new(proto) }
    }

    pub fn is_resp3(&self) -> bool {
        self.proto == Proto::Resp3
    }

    fn line(&mut self, prefix: u8, body: &[u8]) {
        self.buf.push(prefix);
        self.buf.extend_from_slice(body);
        self.buf.extend_from_slice(b"\r\n");
    }

    fn header(&mut self, prefix: u8, n: i64) {
        self.buf.push(prefix);
        self.buf.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        self.buf.extend_from_slice(b"\r\n");
    }

    /// `+OK`-style status reply. Newlines are replaced by spaces, as Redis does.
    pub fn simple(&mut self, s: &str) {
        if s.bytes().any(|c| c == b'\r' || c == b'\n') {
            let clean: Vec<u8> = s.bytes().map(|c| if c == b'\r' || c == b'\n' { b' ' } else { c }).collect();
            self.line(b'+', &clean);
        } else {
            self.line(b'+', s.as_bytes());
        }
    }

    /// A status reply of raw bytes (newlines replaced by spaces).
    pub fn simple_bytes(&mut self, s: &[u8]) {
        self.buf.push(b'+');
        for &c in s {
            self.buf.push(if c == b'\r' || c == b'\n' { b' ' } else { c });
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn ok(&mut self) {
        self.buf.extend_from_slice(b"+OK\r\n");
    }

    /// An error reply, as Redis's addReplyError: a message starting with `-` carries its own
    /// error code (`-WRONGTYPE ...`); any other message gets the `ERR ` code prepended. Raw
    /// bytes embedded with `util::bytetext` are written as the bytes they stand for.
    pub fn error(&mut self, msg: &str) {
        let (code, body) = match msg.strip_prefix('-') {
            Some(rest) => (rest.split(' ').next().unwrap_or("ERR"), rest),
            None => ("ERR", msg),
        };
        self.errors.push(code.to_string());
        self.buf.push(b'-');
        if !msg.starts_with('-') {
            self.buf.extend_from_slice(b"ERR ");
        }
        let decoded;
        let body = if crate::util::bytetext::has_escapes(body) {
            let mut b = Vec::with_capacity(body.len());
            crate::util::bytetext::decode_into(body, &mut b);
            decoded = b;
            &decoded[..]
        } else {
            body.as_bytes()
        };
        for &c in body {
            self.buf.push(if c == b'\r' || c == b'\n' { b' ' } else { c });
        }
        self.buf.extend_from_slice(b"\r\n");
    }

    pub fn int(&mut self, n: i64) {
        self.header(b':', n);
    }

    pub fn bulk(&mut self, s: &[u8]) {
        if self.over_limit() {
            return;
        }
        // A big value: room for the whole reply first, as growing for the value and again for
        // its CRLF left the buffer at twice its size. Smaller ones grow the buffer the usual
        // way (a buffer sized exactly to a few-KB reply would be kept for reuse by the
        // connection, which keeps a small one only; see `server::outbox`).
        if s.len() >= BIG_BULK {
            self.buf.reserve(s.len() + 24);
        }
        self.header(b'$', s.len() as i64);
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A bulk string holding a decimal integer (as Redis's addReplyBulkLongLong).
    pub fn bulk_int(&mut self, n: i64) {
        let mut b = itoa::Buffer::new();
        self.bulk(b.format(n).as_bytes());
    }

    /// The null a missing value gets: `$-1` in RESP2, `_` in RESP3.
    pub fn null(&mut self) {
        match self.proto {
            Proto::Resp2 => self.buf.extend_from_slice(b"$-1\r\n"),
            Proto::Resp3 => self.buf.extend_from_slice(b"_\r\n"),
        }
    }

    /// The null a missing aggregate gets: `*-1` in RESP2, `_` in RESP3.
    pub fn null_array(&mut self) {
        match self.proto {
            Proto::Resp2 => self.buf.extend_from_slice(b"*-1\r\n"),
            Proto::Resp3 => self.buf.extend_from_slice(b"_\r\n"),
        }
    }

    pub fn array(&mut self, n: usize) {
        self.header(b'*', n as i64);
    }

    /// A map of `n` key/value pairs; in RESP2 a flat array of `2n` elements.
    pub fn map(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => self.header(b'*', 2 * n as i64),
            Proto::Resp3 => self.header(b'%', n as i64),
        }
    }

    /// A set of `n` elements; in RESP2 an array.
    pub fn set(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => self.header(b'*', n as i64),
            Proto::Resp3 => self.header(b'~', n as i64),
        }
    }

    /// An out-of-band push of `n` elements; in RESP2 an array.
    pub fn push(&mut self, n: usize) {
        match self.proto {
            Proto::Resp2 => self.header(b'*', n as i64),
            Proto::Resp3 => self.header(b'>', n as i64),
        }
    }

    /// An attribute map of `n` pairs preceding a reply (RESP3 only; callers skip it in RESP2).
    pub fn attribute(&mut self, n: usize) {
        self.header(b'|', n as i64);
    }

    /// A double: RESP3 `,` type, or a bulk string in RESP2, formatted as Redis 7.2's
    /// addReplyDouble does (d2string: integers as such, else Grisu2's digits).
    pub fn double(&mut self, d: f64) {
        let mut s = Vec::with_capacity(24);
        crate::util::dtoa::d2string(d, &mut s);
        match self.proto {
            Proto::Resp2 => self.bulk(&s),
            Proto::Resp3 => self.line(b',', &s),
        }
    }

    pub fn boolean(&mut self, b: bool) {
        match self.proto {
            Proto::Resp2 => self.int(b as i64),
            Proto::Resp3 => self.buf.extend_from_slice(if b { b"#t\r\n" } else { b"#f\r\n" }),
        }
    }

    /// A verbatim string (`=len\r\ntxt:...`), a bulk string in RESP2.
    pub fn verbatim(&mut self, format: &[u8; 3], s: &[u8]) {
        if self.over_limit() {
            return;
        }
        match self.proto {
            Proto::Resp2 => self.bulk(s),
            Proto::Resp3 => {
                self.header(b'=', (s.len() + 4) as i64);
                self.buf.extend_from_slice(format);
                self.buf.push(b':');
                self.buf.extend_from_slice(s);
                self.buf.extend_from_slice(b"\r\n");
            }
        }
    }

    /// A big number (`(` type), a bulk string in RESP2.
    pub fn big_number(&mut self, digits: &str) {
        match self.proto {
            Proto::Resp2 => self.bulk(digits.as_bytes()),
            Proto::Resp3 => self.line(b'(', digits.as_bytes()),
        }
    }

    /// Bytes already encoded for this connection (used for shared replies).
    pub fn raw(&mut self, b: &[u8]) {
        if self.over_limit() {
            return;
        }
        self.buf.extend_from_slice(b);
    }

    /// Whether the reply went past the client's output-buffer limit (see [`ReplySink::limit`]).
    pub fn over_limit(&self) -> bool {
        self.limit != 0 && self.buf.len() > self.limit
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn both(f: impl Fn(&mut ReplySink)) -> (String, String) {
        let mut a = ReplySink::new(Proto::Resp2);
        let mut b = ReplySink::new(Proto::Resp3);
        f(&mut a);
        f(&mut b);
        (String::from_utf8(a.buf).unwrap(), String::from_utf8(b.buf).unwrap())
    }

    #[test]
    fn resp3_types_degrade_in_resp2() {
        assert_eq!(both(|s| s.null()), ("$-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|s| s.null_array()), ("*-1\r\n".into(), "_\r\n".into()));
        assert_eq!(both(|s| s.map(2)), ("*4\r\n".into(), "%2\r\n".into()));
        assert_eq!(both(|s| s.set(3)), ("*3\r\n".into(), "~3\r\n".into()));
        assert_eq!(both(|s| s.double(1.5)), ("$3\r\n1.5\r\n".into(), ",1.5\r\n".into()));
        assert_eq!(both(|s| s.boolean(true)), (":1\r\n".into(), "#t\r\n".into()));
        assert_eq!(both(|s| s.verbatim(b"txt", b"hi")), ("$2\r\nhi\r\n".into(), "=6\r\ntxt:hi\r\n".into()));
        assert_eq!(both(|s| s.big_number("123")), ("$3\r\n123\r\n".into(), "(123\r\n".into()));
    }

    #[test]
    fn a_big_bulk_takes_about_its_size() {
        let mut s = ReplySink::new(Proto::Resp2);
        s.bulk(&vec![b'x'; 100_000]);
        assert_eq!(s.len(), 100_000 + "$100000\r\n\r\n".len());
        // Not twice: growing for the value and again for its CRLF doubled the buffer.
        assert!(s.buf.capacity() < 101_000, "{}", s.buf.capacity());
    }

    #[test]
    fn errors_get_a_code() {
        let (a, _) = both(|s| s.error("syntax error"));
        assert_eq!(a, "-ERR syntax error\r\n");
        let (a, _) = both(|s| s.error("-WRONGTYPE Operation against a key holding the wrong kind of value"));
        assert_eq!(a, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
        let mut s = ReplySink::new(Proto::Resp2);
        s.error("bad\r\nthing");
        assert_eq!(s.buf, b"-ERR bad  thing\r\n");
        assert_eq!(s.errors, vec!["ERR".to_string()]);
    }

    #[test]
    fn strings_past_the_limit_are_not_written() {
        let mut s = ReplySink { limit: 10, ..ReplySink::new(Proto::Resp2) };
        s.bulk(b"0123456789");
        assert!(s.over_limit());
        let len = s.len();
        s.bulk(b"more");
        s.raw(b"more");
        s.verbatim(b"txt", b"more");
        assert_eq!(s.len(), len);
        let mut free = ReplySink::new(Proto::Resp2);
        for _ in 0..100 {
            free.bulk(b"0123456789");
        }
        assert!(!free.over_limit());
        assert_eq!(free.len(), 1700);
        let mut d = ReplySink::discarding(Proto::Resp2);
        let big = vec![b'x'; 300_000];
        for _ in 0..1000 {
            d.bulk(&big);
        }
        assert!(d.len() < 2 * DISCARD_LIMIT);
    }
}
