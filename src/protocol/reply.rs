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
/// In a sink that writes big values apart, a buffer that is full and holds half this much is
/// sealed and followed by a new one this big instead of growing: a reply of millions of
/// elements never doubles (and copies) one buffer.
const SEAL_AT: usize = 256 * 1024;
/// The most bytes an integer header takes (`*` or `$`, 20 digits, CRLF).
const HEADER_MAX: usize = 24;
/// The fewest bytes a bulk string reply takes (`$0\r\n\r\n`).
pub const MIN_BULK_BYTES: usize = 6;
/// In a sink that writes big values apart (see [`ReplySink::write_big_apart`]), a bulk value
/// this big gets a buffer of its own.
const APART_BULK: usize = 64 * 1024;

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
    /// Buffers finished before `buf`, oldest first (a connection's sink only: see
    /// [`ReplySink::write_big_apart`]), and the bytes they hold.
    sealed: Vec<Vec<u8>>,
    sealed_len: usize,
    apart: bool,
    /// Set by [`ReplySink::room_for`] when a reply is known to pass `limit` before it is written.
    overflowed: bool,
}

/// The limit of a sink whose replies nobody reads (commands from the AOF, a master, a replica,
/// a blocked command put back): one command cannot fill memory with them.
const DISCARD_LIMIT: usize = 1 << 20;

impl ReplySink {
    pub fn new(proto: Proto) -> Self {
        ReplySink {
            buf: Vec::with_capacity(256),
            proto,
            errors: Vec::new(),
            uncounted_errors: 0,
            limit: 0,
            sealed: Vec::new(),
            sealed_len: 0,
            apart: false,
            overflowed: false,
        }
    }

    /// Write each big bulk value (a GET of a 512 MB string, say) into a buffer of its own,
    /// kept in order with the others, instead of growing one buffer: a reply holding several
    /// (MGET, EXEC) never doubles and copies what it holds, as Redis's reply list does not.
    /// For a connection's sink, whose [`ReplySink::take_sealed`] is drained before `buf`;
    /// sinks read as one buffer (a script's, a test's) keep the default.
    pub fn write_big_apart(&mut self) {
        self.apart = true;
    }

    /// The finished buffers that precede `buf`, oldest first.
    pub fn take_sealed(&mut self) -> Vec<Vec<u8>> {
        self.sealed_len = 0;
        std::mem::take(&mut self.sealed)
    }

    /// Memory the sink holds: its buffer's allocation and the finished buffers (each sized to
    /// what it holds).
    pub fn allocated(&self) -> usize {
        self.buf.capacity() + self.sealed_len
    }

    /// Forget every reply written (and a known overflow).
    pub fn clear(&mut self) {
        self.buf.clear();
        self.sealed.clear();
        self.sealed_len = 0;
        self.overflowed = false;
    }

    /// Drop what was written past `mark` (a [`ReplySink::len`] taken earlier).
    pub fn truncate(&mut self, mark: usize) {
        while mark < self.sealed_len {
            if self.buf.is_empty() {
                match self.sealed.pop() {
                    Some(last) => {
                        self.sealed_len -= last.len();
                        self.buf = last;
                    }
                    None => break,
                }
            } else {
                self.buf.clear();
            }
        }
        self.buf.truncate(mark.saturating_sub(self.sealed_len));
    }

    /// Whether `min_bytes` more can be written within `limit`. A handler whose reply is known
    /// to be at least that big (a random sample of -10^18 members) asks before writing it:
    /// when not, the sink counts as past its limit at once (its client is closed, a script's
    /// command fails) and nothing more is written, instead of the worker building the reply
    /// until the limit stops it.
    pub fn room_for(&mut self, min_bytes: usize) -> bool {
        if self.limit != 0 && self.len().saturating_add(min_bytes) > self.limit {
            self.overflowed = true;
        }
        !self.over_limit()
    }

    /// A sink for replies that are thrown away (see [`DISCARD_LIMIT`]); its user clears it
    /// after each command.
    pub fn discarding(proto: Proto) -> Self {
        ReplySink { limit: DISCARD_LIMIT, ..Self::new(proto) }
    }

    pub fn is_resp3(&self) -> bool {
        self.proto == Proto::Resp3
    }

    /// Before a write of `n` bytes: in a sink that writes big values apart, a buffer holding
    /// half of [`SEAL_AT`] or more that cannot take them is sealed and a new one of that size
    /// begins, instead of the write growing it (doubling, and copying what it holds). Other
    /// buffers grow as a Vec does: a connection keeps a small buffer for reuse (see
    /// `server::outbox`), so sizes are left as they were.
    #[inline]
    fn seal_if_full(&mut self, n: usize) {
        if self.buf.capacity() - self.buf.len() < n && self.apart && self.buf.len() >= SEAL_AT / 2 {
            self.seal(n);
        }
    }

    #[cold]
    fn seal(&mut self, n: usize) {
        let done = std::mem::replace(&mut self.buf, Vec::with_capacity(SEAL_AT.max(n)));
        self.push_sealed(done);
    }

    /// A finished buffer, after those sealed so far.
    fn push_sealed(&mut self, done: Vec<u8>) {
        self.sealed_len += done.len();
        self.sealed.push(done);
    }

    fn line(&mut self, prefix: u8, body: &[u8]) {
        self.seal_if_full(body.len() + 3);
        self.buf.push(prefix);
        self.buf.extend_from_slice(body);
        self.buf.extend_from_slice(b"\r\n");
    }

    fn header(&mut self, prefix: u8, n: i64) {
        self.seal_if_full(HEADER_MAX);
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
        if s.len() >= APART_BULK && self.apart {
            self.bulk_apart(s);
            return;
        }
        self.seal_if_full(s.len() + HEADER_MAX + 2);
        if s.len() >= BIG_BULK {
            self.buf.reserve(s.len() + HEADER_MAX);
        }
        self.header(b'$', s.len() as i64);
        self.buf.extend_from_slice(s);
        self.buf.extend_from_slice(b"\r\n");
    }

    /// A big value in a buffer of its own, after those written so far (see
    /// [`ReplySink::write_big_apart`]).
    #[cold]
    fn bulk_apart(&mut self, s: &[u8]) {
        let mut own = Vec::with_capacity(s.len() + 24);
        own.push(b'$');
        own.extend_from_slice(itoa::Buffer::new().format(s.len()).as_bytes());
        own.extend_from_slice(b"\r\n");
        own.extend_from_slice(s);
        own.extend_from_slice(b"\r\n");
        if !self.buf.is_empty() {
            let done = std::mem::replace(&mut self.buf, Vec::with_capacity(256));
            self.push_sealed(done);
        }
        self.push_sealed(own);
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
        self.seal_if_full(b.len());
        self.buf.extend_from_slice(b);
    }

    /// Whether the reply went past the client's output-buffer limit (see [`ReplySink::limit`]).
    pub fn over_limit(&self) -> bool {
        self.limit != 0 && (self.overflowed || self.len() > self.limit)
    }

    /// Whether a reply was known to pass the limit before it was written
    /// ([`ReplySink::room_for`]): the client is over its limit whatever its buffers hold.
    pub fn overflowed(&self) -> bool {
        self.overflowed
    }

    /// Bytes written, in every buffer.
    pub fn len(&self) -> usize {
        self.sealed_len + self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.buf.is_empty() && self.sealed.is_empty()
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
    fn big_values_written_apart_keep_their_order_and_are_never_copied_twice() {
        let big = vec![b'v'; APART_BULK];
        let mut s = ReplySink::new(Proto::Resp2);
        s.write_big_apart();
        s.array(3);
        s.bulk(&big);
        s.bulk(b"small");
        s.bulk(&big);
        let mut plain = ReplySink::new(Proto::Resp2);
        plain.array(3);
        plain.bulk(&big);
        plain.bulk(b"small");
        plain.bulk(&big);
        assert_eq!(s.len(), plain.len());
        assert!(!s.is_empty());
        let mut joined = Vec::new();
        let sealed = s.take_sealed();
        // The header, then each big value in a buffer sized to it.
        assert_eq!(sealed.len(), 4);
        assert!(sealed.iter().all(|b| b.capacity() <= b.len() + 24 || b.len() < 300));
        for b in sealed {
            joined.extend_from_slice(&b);
        }
        joined.extend_from_slice(&s.buf);
        assert_eq!(joined, plain.buf);
        assert_eq!(s.len(), s.buf.len());
    }

    #[test]
    fn a_long_reply_is_sealed_in_pieces_instead_of_doubling_one_buffer() {
        let mut s = ReplySink::new(Proto::Resp2);
        s.write_big_apart();
        let mut plain = ReplySink::new(Proto::Resp2);
        s.array(200_000);
        plain.array(200_000);
        for i in 0..200_000 {
            let e = format!("element:{i}");
            s.bulk(e.as_bytes());
            plain.bulk(e.as_bytes());
        }
        assert_eq!(s.len(), plain.len());
        let sealed = s.take_sealed();
        assert!(sealed.len() >= plain.len() / SEAL_AT, "{} pieces", sealed.len());
        assert!(sealed.iter().all(|b| b.capacity() <= SEAL_AT && b.len() >= SEAL_AT / 2));
        let mut joined = sealed.concat();
        joined.extend_from_slice(&s.buf);
        assert_eq!(joined, plain.buf);
    }

    #[test]
    fn truncate_reaches_back_into_buffers_written_apart() {
        let big = vec![b'v'; APART_BULK];
        for cut in [0, 3, 4, 10, APART_BULK, APART_BULK + 12, APART_BULK + 14, APART_BULK + 20] {
            let mut s = ReplySink::new(Proto::Resp2);
            s.write_big_apart();
            s.array(2);
            s.bulk(&big);
            s.bulk(b"tail");
            let mut plain = ReplySink::new(Proto::Resp2);
            plain.array(2);
            plain.bulk(&big);
            plain.bulk(b"tail");
            s.truncate(cut);
            plain.buf.truncate(cut);
            assert_eq!(s.len(), cut.min(plain.len()));
            let mut joined: Vec<u8> = s.take_sealed().concat();
            joined.extend_from_slice(&s.buf);
            assert_eq!(joined, plain.buf, "cut at {cut}");
        }
    }

    #[test]
    fn a_reply_known_to_pass_the_limit_is_not_written() {
        let mut s = ReplySink { limit: 1000, ..ReplySink::new(Proto::Resp2) };
        assert!(s.room_for(900));
        assert!(!s.overflowed());
        s.array(1);
        assert!(!s.room_for(usize::MAX));
        assert!(s.overflowed() && s.over_limit());
        s.bulk(b"x");
        assert_eq!(s.len(), 4);
        s.clear();
        assert!(!s.overflowed() && !s.over_limit());
        // Without a limit there is always room.
        let mut free = ReplySink::new(Proto::Resp2);
        assert!(free.room_for(usize::MAX) && !free.overflowed());
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
