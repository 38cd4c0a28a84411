//! Incremental request decoder. A request is either a RESP multibulk (`*N\r\n$len\r\n...`) or an
//! inline command (a line of words, as typed into telnet). The decoder first checks that a whole
//! request is buffered, then hands out its arguments as zero-copy slices of the read buffer.

use bytes::{Bytes, BytesMut};
use smallvec::SmallVec;

use crate::util::num::parse_i64;
use crate::util::split_args::split_args;

/// Largest inline request, and largest header line of a multibulk, as Redis (`PROTO_INLINE_MAX_SIZE`).
pub const INLINE_MAX_SIZE: usize = 64 * 1024;

/// Limits the decoder enforces; they come from the server's configuration.
#[derive(Clone, Copy, Debug)]
pub struct ParseLimits {
    /// `proto-max-bulk-len`: the largest single argument.
    pub max_bulk_len: i64,
    /// Whether the client has not authenticated yet while a password is required (Redis then
    /// refuses big multibulk / bulk lengths to protect itself from unauthenticated clients).
    pub unauthenticated: bool,
}

impl Default for ParseLimits {
    fn default() -> Self {
        ParseLimits { max_bulk_len: 512 * 1024 * 1024, unauthenticated: false }
    }
}

/// One decoded request: its arguments (possibly none, for an empty inline line or `*0`).
#[derive(Debug, PartialEq, Eq)]
pub struct Request {
    pub args: Vec<Bytes>,
    /// Whether it came in inline form (affects nothing but statistics and MONITOR output).
    pub inline: bool,
}

/// A malformed request. The text is Redis's exact error message (without the `-ERR ` prefix's
/// `ERR`); the connection must reply with it and then close.
#[derive(Debug, PartialEq, Eq)]
pub struct ParseError(pub String);

impl ParseError {
    fn new(s: &str) -> Self {
        ParseError(format!("Protocol error: {s}"))
    }
}

/// Try to decode one request from the front of `buf`. Returns `Ok(None)` when more bytes are
/// needed, and removes the request's bytes from `buf` when one is returned.
pub fn parse_request(buf: &mut BytesMut, limits: &ParseLimits) -> Result<Option<Request>, ParseError> {
    let mut args = Vec::new();
    Ok(parse_request_into(buf, limits, &mut args)?.map(|inline| Request { args, inline }))
}

/// [`parse_request`] into a caller's argument vector (cleared first), so that a connection
/// reuses one vector for all its requests instead of allocating one per command. Returns
/// whether the request was inline; `args` is left empty when `Ok(None)`.
pub fn parse_request_into(
    buf: &mut BytesMut,
    limits: &ParseLimits,
    args: &mut Vec<Bytes>,
) -> Result<Option<bool>, ParseError> {
    parse_request_framed(buf, limits, args, &mut Framing::default())
}

/// An argument at least this long gets a read buffer made for its request alone (see
/// [`Framing`]); Redis's PROTO_MBULK_BIG_ARG.
pub const OWN_BUFFER_ARG: usize = 32 * 1024;
/// Room left after such a request, for the few small arguments that may follow the big one
/// (SET's EX 100, KEEPTTL, GET).
const OWN_BUFFER_SLACK: usize = 256;

/// What a connection's parser remembers between reads about a big request's buffer.
///
/// When a request announces an argument of [`OWN_BUFFER_ARG`] bytes or more that the buffer has
/// no room for, its bytes so far move to a new buffer sized for the request (as Redis sizes
/// its query buffer for a big argument). When the request is complete and still fills that
/// buffer, `owned` gives the request's bytes, which are then the whole allocation: a command
/// may keep an argument as it is (SET's value, [`frame_holds`]) instead of copying it, as Redis
/// keeps a big argument's sds as the value.
#[derive(Debug, Default)]
pub struct Framing {
    /// The buffer was made for the request being read (it starts at its first byte).
    fresh: bool,
    /// The last request returned, when it is the whole of its allocation: (address, length).
    pub owned: Option<(usize, usize)>,
    /// Whether to hand out each request's bytes as received (`frame`): a replica proxies its
    /// master's stream to its own replicas and backlog exactly.
    pub keep_frame: bool,
    /// The last request's bytes, when `keep_frame` (no copy: its arguments are slices of it).
    pub frame: Option<Bytes>,
}

impl Framing {
    /// A framing that hands out each request's bytes (`frame`).
    pub fn keeping_frames() -> Self {
        Framing { keep_frame: true, ..Framing::default() }
    }

    /// Note the bytes of the request just taken from the buffer.
    #[inline]
    fn took(&mut self, frame: impl FnOnce() -> Bytes) {
        if self.keep_frame {
            self.keep(frame());
        }
    }

    /// (Out of line: a client connection never keeps frames, and its parse stays small.)
    #[cold]
    #[inline(never)]
    fn keep(&mut self, frame: Bytes) {
        self.frame = Some(frame);
    }
}

/// Move the bytes of a request being read into a buffer of `capacity` made for it alone.
#[cold]
#[inline(never)]
fn own_buffer(buf: &mut BytesMut, capacity: usize) {
    let mut own = BytesMut::with_capacity(capacity);
    own.extend_from_slice(buf);
    *buf = own;
}

/// Whether `arg` lies in a request that owns its allocation (`owned`, from [`Framing`]) and is
/// most of it: keeping it keeps little else.
#[inline]
pub fn frame_holds(owned: Option<(usize, usize)>, arg: &Bytes) -> bool {
    owned.is_some_and(|(start, len)| {
        let at = arg.as_ptr() as usize;
        arg.len() >= OWN_BUFFER_ARG && at >= start && at + arg.len() <= start + len && arg.len() * 2 >= len
    })
}

/// [`parse_request_into`], keeping a connection's [`Framing`] across calls.
pub fn parse_request_framed(
    buf: &mut BytesMut,
    limits: &ParseLimits,
    args: &mut Vec<Bytes>,
    framing: &mut Framing,
) -> Result<Option<bool>, ParseError> {
    args.clear();
    framing.owned = None;
    if framing.keep_frame {
        framing.frame = None;
    }
    if buf.is_empty() {
        return Ok(None);
    }
    if buf[0] == b'*' {
        Ok(parse_multibulk(buf, limits, args, framing)?.then_some(false))
    } else {
        parse_inline(buf, args, framing).map(|done| done.then_some(true))
    }
}

/// Whether an inline line is plain (no quotes, no `\v` or `\f`, no NUL): its arguments can
/// then be slices of the line itself, what `split_args` would make, without an allocation
/// per argument (an inline PING cost ~800 instructions more than a multibulk one).
fn is_plain_inline(line: &[u8]) -> bool {
    !line.iter().any(|&c| matches!(c, b'"' | b'\'' | 0x0b | 0x0c | 0))
}

/// Split a line [`is_plain_inline`] accepted, as `split_args` would.
fn split_plain_inline(line: &Bytes, args: &mut Vec<Bytes>) {
    let mut start = None;
    for (i, &c) in line.iter().enumerate() {
        let space = matches!(c, b' ' | b'\t' | b'\n' | b'\r');
        match (start, space) {
            (None, false) => start = Some(i),
            (Some(s), true) => {
                args.push(line.slice(s..i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        args.push(line.slice(s..));
    }
}

/// An inline request into `args`; false when its line is not complete yet.
fn parse_inline(buf: &mut BytesMut, args: &mut Vec<Bytes>, framing: &mut Framing) -> Result<bool, ParseError> {
    // Redis finds the end of the line with strchr: a NUL before the newline hides it, and the
    // request stays incomplete (until the inline size limit).
    let nl = memchr::memchr2(b'\n', 0, buf).filter(|&i| buf[i] == b'\n');
    let Some(nl) = nl else {
        if buf.len() > INLINE_MAX_SIZE {
            return Err(ParseError::new("too big inline request"));
        }
        return Ok(false);
    };
    let line_end = if nl > 0 && buf[nl - 1] == b'\r' { nl - 1 } else { nl };
    if !is_plain_inline(&buf[..line_end]) {
        let split = split_args(&buf[..line_end]).ok_or_else(|| ParseError::new("unbalanced quotes in request"))?;
        let line = buf.split_to(nl + 1);
        framing.took(|| line.freeze());
        args.extend(split.into_iter().map(Bytes::from));
        return Ok(true);
    }
    let mut line = buf.split_to(nl + 1).freeze();
    framing.took(|| line.clone());
    line.truncate(line_end);
    split_plain_inline(&line, args);
    Ok(true)
}

/// Finds the `\r` ending a header line starting at `pos`; `Ok(None)` if the line (and its `\n`)
/// is not complete yet.
fn header_line(buf: &[u8], pos: usize, too_big: &str) -> Result<Option<usize>, ParseError> {
    match memchr::memchr(b'\r', &buf[pos..]) {
        None => {
            if buf.len() - pos > INLINE_MAX_SIZE {
                return Err(ParseError::new(too_big));
            }
            Ok(None)
        }
        Some(off) => {
            let cr = pos + off;
            if cr + 1 >= buf.len() {
                return Ok(None);
            }
            Ok(Some(cr))
        }
    }
}

/// A multibulk request into `args`; false when it is not complete yet.
fn parse_multibulk(
    buf: &mut BytesMut,
    limits: &ParseLimits,
    args: &mut Vec<Bytes>,
    framing: &mut Framing,
) -> Result<bool, ParseError> {
    let (count, cr) = match short_header(buf, 0, b'*') {
        Some((n, cr)) => (n as i64, cr),
        None => {
            let Some(cr) = header_line(buf, 0, "too big mbulk count string")? else {
                return Ok(false);
            };
            match parse_i64(&buf[1..cr]) {
                Some(n) if n <= i32::MAX as i64 => (n, cr),
                _ => return Err(ParseError::new("invalid multibulk length")),
            }
        }
    };
    if count > 10 && limits.unauthenticated {
        return Err(ParseError::new("unauthenticated multibulk length"));
    }
    let mut pos = cr + 2;
    if count <= 0 {
        let empty = buf.split_to(pos);
        framing.took(|| empty.freeze());
        return Ok(true);
    }
    // First pass: find every argument's range, making sure the whole request is buffered (on
    // the stack for the usual few arguments: this runs for every request).
    let mut ranges: SmallVec<[(usize, usize); 8]> = SmallVec::new();
    for _ in 0..count {
        if pos >= buf.len() {
            return Ok(false);
        }
        let (len, cr) = match short_header(buf, pos, b'$') {
            Some(header) => header,
            None => {
                let Some(cr) = header_line(buf, pos, "too big bulk count string")? else {
                    return Ok(false);
                };
                if buf[pos] != b'$' {
                    return Err(ParseError(format!("Protocol error: expected '$', got '{}'", buf[pos] as char)));
                }
                let len = match parse_i64(&buf[pos + 1..cr]) {
                    Some(n) if n >= 0 => n as usize,
                    _ => return Err(ParseError::new("invalid bulk length")),
                };
                (len, cr)
            }
        };
        if len as u64 > limits.max_bulk_len.max(0) as u64 {
            return Err(ParseError::new("invalid bulk length"));
        }
        if len > 16384 && limits.unauthenticated {
            return Err(ParseError::new("unauthenticated bulk length"));
        }
        let start = cr + 2;
        // Like Redis, the two bytes after the payload are skipped without being checked.
        if buf.len() < start + len + 2 {
            let need = start + len + 2;
            if buf.capacity() < need {
                if len >= OWN_BUFFER_ARG {
                    // A buffer for this request alone (it starts the buffer: the requests
                    // before it were split off), its bytes so far copied once, as growing
                    // would have copied them.
                    own_buffer(buf, need + OWN_BUFFER_SLACK);
                    framing.fresh = true;
                } else {
                    // Big argument: make room once instead of growing step by step.
                    buf.reserve(need - buf.len());
                }
            }
            return Ok(false);
        }
        ranges.push((start, start + len));
        pos = start + len + 2;
    }
    // Made for this request and still about its size: the request is the allocation (what
    // follows it, at most the slack, leaves with the next read's new room).
    let owned = framing.fresh && {
        framing.fresh = false;
        buf.capacity() <= pos + OWN_BUFFER_SLACK
    };
    let frame = buf.split_to(pos).freeze();
    if owned {
        framing.owned = Some((frame.as_ptr() as usize, frame.len()));
    }
    framing.took(|| frame.clone());
    args.reserve(ranges.len());
    for (s, e) in ranges {
        args.push(frame.slice(s..e));
    }
    Ok(true)
}

/// The common header, `<kind><1 to 9 digits>\r` with its `\n` buffered (`$` a bulk length,
/// `*` an argument count), read in one pass: (number, position of the `\r`). Anything else
/// (more digits, a sign, a leading zero, another kind, an incomplete line) is None, for the
/// general path and its exact errors; what this accepts, that path would accept with the
/// same number.
#[inline]
fn short_header(buf: &[u8], pos: usize, kind: u8) -> Option<(usize, usize)> {
    if buf.get(pos) != Some(&kind) {
        return None;
    }
    let mut len = 0usize;
    let mut i = pos + 1;
    while let Some(&c) = buf.get(i) {
        match c {
            b'0'..=b'9' if i - pos <= 9 => len = len * 10 + (c - b'0') as usize,
            b'\r' if i > pos + 1 && i + 1 < buf.len() => {
                // "$0" is the only number allowed to start with a zero.
                return (buf[pos + 1] != b'0' || i == pos + 2).then_some((len, i));
            }
            _ => return None,
        }
        i += 1;
    }
    None
}

/// Look at the complete requests at the front of `buf`, up to `max` of them and `arg_budget`
/// arguments after their names (the first request is looked at whatever its count), without
/// consuming them: `f` gets each one's argument count and its first [`PEEK_ARGS`] arguments,
/// and says whether to go on. Stops at the first one that is incomplete or not a multibulk of
/// short headers (an inline request, a long length...), which the parser will handle; returns
/// how many `f` saw.
pub fn peek_requests<'b>(
    buf: &'b [u8],
    max: usize,
    mut arg_budget: usize,
    mut f: impl FnMut(usize, &[&'b [u8]]) -> bool,
) -> usize {
    let mut pos = 0;
    let mut seen = 0;
    // Filled anew up to each request's count: no clearing between requests.
    let mut args: [&'b [u8]; PEEK_ARGS] = [&[]; PEEK_ARGS];
    while seen < max {
        let Some((count, cr)) = short_header(buf, pos, b'*') else { break };
        let after_name = count.saturating_sub(1);
        if after_name > arg_budget && seen > 0 {
            break;
        }
        arg_budget = arg_budget.saturating_sub(after_name);
        pos = cr + 2;
        for i in 0..count {
            let Some((len, cr)) = short_header(buf, pos, b'$') else { return seen };
            let start = cr + 2;
            let Some(arg) = buf.get(start..start + len) else { return seen };
            if let Some(slot) = args.get_mut(i) {
                *slot = arg;
            }
            pos = start + len + 2;
        }
        if pos > buf.len() {
            break;
        }
        seen += 1;
        if !f(count, &args[..count.min(PEEK_ARGS)]) {
            break;
        }
    }
    seen
}

/// How many arguments of a request [`peek_requests`] shows: enough for the keys of an MSET of
/// ten pairs (redis-benchmark's), or an MGET or DEL of up to 23 keys.
pub const PEEK_ARGS: usize = 24;

/// How far a partial multibulk request at the front of `buf` has been read, as Redis keeps it:
/// Redis consumes each complete header line and argument from its query buffer (the arguments
/// go to argv), so CLIENT LIST's `qbuf` counts only what follows them and `argv-mem` the
/// complete arguments. Returns (bytes consumed, total length of the complete arguments, and
/// [`pending_argument_end`]); (0, 0, None) when `buf` does not start with a multibulk that is
/// still incomplete.
pub fn partial_progress(buf: &[u8]) -> (usize, usize, Option<usize>) {
    partial_request(buf).unwrap_or((0, 0, None))
}

/// Where the argument being read ends (its payload and the two bytes after it) when a partial
/// multibulk request at the front of `buf` has that argument's header but not all of its
/// payload; the read loop then reads into the room the parser made for it rather than grow the
/// buffer (see `connection::make_room`).
pub fn pending_argument_end(buf: &[u8]) -> Option<usize> {
    partial_request(buf).and_then(|(_, _, end)| end)
}

/// [`partial_progress`]'s figures and [`pending_argument_end`]; None when `buf` does not start
/// with a multibulk that is still incomplete.
fn partial_request(buf: &[u8]) -> Option<(usize, usize, Option<usize>)> {
    if buf.first() != Some(&b'*') {
        return None;
    }
    let Ok(Some(cr)) = header_line(buf, 0, "") else { return None };
    let count = parse_i64(&buf[1..cr]).filter(|&n| n > 0)?;
    let (mut pos, mut argv) = (cr + 2, 0);
    for _ in 0..count {
        let Ok(Some(cr)) = header_line(buf, pos, "") else { return Some((pos, argv, None)) };
        let len = parse_i64(&buf[pos + 1..cr]).filter(|&n| n >= 0)?;
        let start = cr + 2;
        let end = start.saturating_add(len as usize).saturating_add(2);
        if buf.len() < end {
            return Some((start, argv, Some(end)));
        }
        argv += len as usize;
        pos = end;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peek_shows_complete_requests_without_consuming_them() {
        let buf = b"*2\r\n$3\r\nGET\r\n$1\r\na\r\n*3\r\n$3\r\nSET\r\n$2\r\nbb\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nc";
        let mut seen = Vec::new();
        let n = peek_requests(buf, 16, 100, |argc, args| {
            seen.push((argc, args.iter().map(|a| a.to_vec()).collect::<Vec<_>>()));
            true
        });
        assert_eq!(n, 2, "the third request is incomplete");
        assert_eq!(seen[0], (2, vec![b"GET".to_vec(), b"a".to_vec()]));
        assert_eq!(seen[1], (3, vec![b"SET".to_vec(), b"bb".to_vec(), b"v".to_vec()]));
        assert_eq!(peek_requests(buf, 1, 100, |_, _| true), 1, "at most max");
        assert_eq!(peek_requests(buf, 16, 1, |_, _| true), 1, "within the budget, but always the first");
        assert_eq!(peek_requests(buf, 16, 3, |_, _| true), 2);
        assert_eq!(peek_requests(buf, 16, 100, |_, _| false), 1, "until f says stop");
        assert_eq!(peek_requests(b"GET a\r\n", 16, 100, |_, _| true), 0, "inline requests are left to the parser");
        // Without the two bytes after the last argument, the request is not complete.
        assert_eq!(peek_requests(b"*1\r\n$4\r\nPING", 16, 100, |_, _| true), 0);
        let many: Vec<u8> = b"*30\r\n".iter().chain(b"$1\r\nx\r\n".repeat(30).iter()).copied().collect();
        let mut argc = 0;
        assert_eq!(
            peek_requests(&many, 16, 100, |n, args| {
                argc = n + 100 * args.len();
                true
            }),
            1
        );
        assert_eq!(argc, 30 + 100 * PEEK_ARGS, "all counted, the first PEEK_ARGS shown");
        // A short request after a long one shows only its own arguments.
        let both: Vec<u8> = [&many[..], b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"].concat();
        let mut last = Vec::new();
        peek_requests(&both, 16, 100, |_, args| {
            last = args.to_vec();
            true
        });
        assert_eq!(last, vec![&b"GET"[..], &b"k"[..]]);
    }

    fn parse(input: &[u8]) -> (Result<Option<Request>, ParseError>, usize) {
        let mut b = BytesMut::from(input);
        let r = parse_request(&mut b, &ParseLimits::default());
        (r, b.len())
    }

    fn args(r: Result<Option<Request>, ParseError>) -> Vec<Vec<u8>> {
        r.unwrap().unwrap().args.into_iter().map(|b| b.to_vec()).collect()
    }

    #[test]
    fn multibulk_complete_and_partial() {
        let (r, left) = parse(b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\nextra");
        assert_eq!(args(r), vec![b"GET".to_vec(), b"k".to_vec()]);
        assert_eq!(left, 5);
        for cut in 1..20 {
            let full = b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
            let (r, left) = parse(&full[..cut]);
            assert_eq!(r, Ok(None), "cut at {cut}");
            assert_eq!(left, cut);
        }
    }

    #[test]
    fn partial_progress_is_what_redis_has_consumed() {
        // (qbuf, argv-mem) as Redis 7.0's CLIENT LIST shows them for these partial requests.
        let cases: &[(&[u8], usize, usize)] = &[
            (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$100\r\nxx", 2, 4),
            (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$10", 3, 4),
            (b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n", 0, 4),
            (b"*3\r\n", 0, 0),
            (b"*3\r\n$3\r\nSE", 2, 0),
            (b"*3", 2, 0),
            (b"GET k", 5, 0),
        ];
        for &(buf, qbuf, argv) in cases {
            let (consumed, a, _) = partial_progress(buf);
            assert_eq!((buf.len() - consumed, a), (qbuf, argv), "{:?}", String::from_utf8_lossy(buf));
        }
        // A complete request, or a malformed one, is not partial.
        assert_eq!(partial_progress(b"*1\r\n$4\r\nPING\r\n"), (0, 0, None));
        assert_eq!(partial_progress(b"*1\r\n$x\r\n"), (0, 0, None));
        assert_eq!(partial_progress(b"*1\r\n$10\r\nxxxx"), (9, 0, Some(4 + 5 + 10 + 2)));
    }

    #[test]
    fn pending_argument_end_is_where_the_argument_being_read_ends() {
        assert_eq!(pending_argument_end(b"*1\r\n$10\r\nxxxx"), Some(4 + 5 + 10 + 2));
        assert_eq!(pending_argument_end(b"*2\r\n$3\r\nSET\r\n$4\r\nvvvv\r"), Some(13 + 4 + 4 + 2));
        // No header for the argument yet, a complete request, or no multibulk at all.
        assert_eq!(pending_argument_end(b"*2\r\n$3\r\nSET\r\n$4"), None);
        assert_eq!(pending_argument_end(b"*1\r\n$4\r\nPING\r\n"), None);
        assert_eq!(pending_argument_end(b"PING"), None);
    }

    #[test]
    fn binary_argument() {
        let (r, _) = parse(b"*1\r\n$4\r\n\r\n\0x\r\n");
        assert_eq!(args(r), vec![b"\r\n\0x".to_vec()]);
    }

    #[test]
    fn errors_have_redis_text() {
        let (r, _) = parse(b"*x\r\n");
        assert_eq!(r.unwrap_err().0, "Protocol error: invalid multibulk length");
        let (r, _) = parse(b"*1\r\n$-1\r\n");
        assert_eq!(r.unwrap_err().0, "Protocol error: invalid bulk length");
        let (r, _) = parse(b"*1\r\n:1\r\n");
        assert_eq!(r.unwrap_err().0, "Protocol error: expected '$', got ':'");
        let (r, _) = parse(b"SET a \"b\r\n");
        assert_eq!(r.unwrap_err().0, "Protocol error: unbalanced quotes in request");
        let big = vec![b'a'; INLINE_MAX_SIZE + 1];
        let (r, _) = parse(&big);
        assert_eq!(r.unwrap_err().0, "Protocol error: too big inline request");
        let mut mb = b"*1".to_vec();
        mb.extend(vec![b'1'; INLINE_MAX_SIZE + 1]);
        let (r, _) = parse(&mb);
        assert_eq!(r.unwrap_err().0, "Protocol error: too big mbulk count string");
    }

    /// Read `input` in `chunk`-byte reads (each into the room the buffer has, growing it by
    /// 16 KB when full, as a connection does), parsing after each: the requests, each with
    /// whether it owned its allocation.
    fn read_in_chunks(input: &[u8], chunk: usize, capacity: usize) -> Vec<(Vec<Bytes>, bool)> {
        let (mut buf, mut framing, mut got) = (BytesMut::with_capacity(capacity), Framing::default(), Vec::new());
        let mut at = 0;
        while at < input.len() {
            if buf.capacity() - buf.len() < 1024 {
                buf.reserve(16 * 1024);
            }
            let n = chunk.min(input.len() - at).min(buf.capacity() - buf.len());
            buf.extend_from_slice(&input[at..at + n]);
            at += n;
            let mut args = Vec::new();
            while parse_request_framed(&mut buf, &ParseLimits::default(), &mut args, &mut framing).unwrap().is_some() {
                let owned = framing.owned;
                let kept = args.iter().any(|a| frame_holds(owned, a));
                got.push((std::mem::take(&mut args), kept));
            }
        }
        assert!(buf.is_empty());
        got
    }

    #[test]
    fn a_big_request_read_across_reads_owns_its_buffer() {
        let big = vec![b'v'; 100_000];
        let mut input = Vec::new();
        for req in [
            vec![&b"SET"[..], b"k", &big],
            vec![b"SET", b"k2", &big, b"EX", b"100"],
            vec![b"GET", b"k"],
            vec![b"MSET", b"a", &big[..40_000], b"b", &big[..50_000]],
        ] {
            input.extend(format!("*{}\r\n", req.len()).as_bytes());
            for a in &req {
                input.extend(format!("${}\r\n", a.len()).as_bytes());
                input.extend_from_slice(a);
                input.extend(b"\r\n");
            }
        }
        let got = read_in_chunks(&input, 16 * 1024, 16 * 1024);
        let kept: Vec<bool> = got.iter().map(|(_, k)| *k).collect();
        // The MSET's values are each under half of it: copied.
        assert_eq!(kept, [true, true, false, false]);
        assert_eq!(got[1].0[2], big);
        assert_eq!(got[1].0[4], &b"100"[..]);
        assert_eq!(got[3].0[4].len(), 50_000);
        // All of it in one read into a big buffer: not made for one request, nothing is kept.
        let got = read_in_chunks(&input, 1 << 20, 1 << 20);
        assert_eq!(got.len(), 4);
        assert!(got.iter().all(|(_, k)| !k));
    }

    #[test]
    fn bulk_limit_enforced() {
        let mut b = BytesMut::from(&b"*1\r\n$11\r\nhello world\r\n"[..]);
        let limits = ParseLimits { max_bulk_len: 10, unauthenticated: false };
        assert!(parse_request(&mut b, &limits).is_err());
    }

    #[test]
    fn plain_inline_lines_split_as_split_args_does() {
        let pieces: [&[u8]; 10] = [b"a", b"GET", b" ", b"\t", b"\r", b"xyz", b"\x0b", b"\"q\"", b"k:1", b"  "];
        // Every line of up to four pieces: the fast path, when it applies, agrees with split_args.
        let mut lines = vec![Vec::new()];
        for _ in 0..4 {
            let next: Vec<Vec<u8>> =
                lines.iter().flat_map(|l: &Vec<u8>| pieces.iter().map(move |p| [l.as_slice(), p].concat())).collect();
            lines.extend(next);
        }
        let mut plain = 0;
        for line in lines {
            let mut buf = BytesMut::from(&[line.as_slice(), b"\r\n"].concat()[..]);
            let mut args = Vec::new();
            let got = parse_request_into(&mut buf, &ParseLimits::default(), &mut args);
            if line.first() == Some(&b'*') {
                continue;
            }
            let want = split_args(&line).map(|v| v.into_iter().map(Bytes::from).collect::<Vec<_>>());
            match want {
                Some(w) => {
                    assert!(matches!(got, Ok(Some(true))), "{line:?}");
                    assert_eq!(args, w, "{line:?}");
                }
                None => assert!(got.is_err(), "{line:?}"),
            }
            assert!(buf.is_empty() || got.is_err());
            plain += is_plain_inline(&line) as usize;
        }
        assert!(plain > 1000, "{plain} plain lines");
    }

    #[test]
    fn inline_and_empty() {
        let (r, left) = parse(b"SET a \"b c\"\r\nPING\n");
        assert_eq!(args(r), vec![b"SET".to_vec(), b"a".to_vec(), b"b c".to_vec()]);
        assert_eq!(left, 5);
        let (r, _) = parse(b"\r\n");
        assert!(args(r).is_empty());
        let (r, left) = parse(b"*0\r\n");
        assert!(args(r).is_empty());
        assert_eq!(left, 0);
    }
}
