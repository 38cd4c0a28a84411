//! A bounds-checked cursor over RDB bytes: lengths, strings (plain, integer-encoded and LZF),
//! doubles. Every read checks what is left first, so a truncated or lying file gives an
//! [`RdbError`] naming the offset — never a panic, and never an allocation larger than the
//! bytes that remain (a length field cannot make the loader reserve memory the file cannot
//! fill). A reader may cover only a window of a longer stream (see `rdb_window`): it then
//! counts offsets from the window's start in the stream, and remembers when a read failed only
//! because the window ended ([`Reader::ran_short`]), so the caller can widen it and retry.

use std::borrow::Cow;
use std::fmt;

use super::lzf;

/// Why an RDB file or DUMP payload was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdbError {
    pub offset: usize,
    /// Ferrous's account of the damage.
    pub msg: String,
    /// What Redis 7.2 reports for the same damage, where it reports something (see
    /// [`Report`]); `None` for a short read and for what Redis refuses silently.
    pub report: Option<Report>,
}

/// What Redis 7.2 logs when it refuses a damaged value, so that the server can log the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Redis's `rdbReportCorruptRDB(reason)` (or `rdbReportReadError`), called at `line` of
    /// Redis 7.2.4's rdb.c: logged as "Internal error in RDB reading offset N, function at
    /// rdb.c:LINE -> REASON" ([`Report::internal_error`]).
    Corrupt { line: u32, reason: String },
    /// A hash listpack with duplicate fields that Redis, without deep sanitisation, converts to
    /// a hash table: it logs the listpack as a hex dump ("listpack with dup elements dump")
    /// before it panics. Ferrous logs the dump and refuses the value.
    DupListpack(Vec<u8>),
}

impl Report {
    pub fn corrupt(line: u32, reason: impl Into<String>) -> Self {
        Report::Corrupt { line, reason: reason.into() }
    }

    /// Redis's log line for a [`Report::Corrupt`] found at `offset` (RESTORE says 0).
    pub fn internal_error(line: u32, reason: &str, offset: usize) -> String {
        format!("Internal error in RDB reading offset {offset}, function at rdb.c:{line} -> {reason}")
    }
}

impl RdbError {
    pub fn new(offset: usize, msg: impl Into<String>) -> Self {
        RdbError { offset, msg: msg.into(), report: None }
    }

    /// An error whose account is Redis's own reason, reported from `line` of rdb.c.
    pub fn corrupt(offset: usize, line: u32, reason: impl Into<String>) -> Self {
        let reason = reason.into();
        RdbError { offset, msg: reason.clone(), report: Some(Report::corrupt(line, reason)) }
    }

    /// This error, reported as Redis reports it from `line` (unless it carries a report of its
    /// own already: a damaged string inside a blob is reported as the string's damage).
    pub fn reported(mut self, line: u32, reason: &str) -> Self {
        self.report.get_or_insert_with(|| Report::corrupt(line, reason));
        self
    }

    /// Whether the data ended before the value did (a truncated file or payload): such errors
    /// say "unexpected end of data" (see [`Reader::ran_short`]).
    pub fn is_short(&self) -> bool {
        self.msg.starts_with("unexpected end of data")
    }
}

impl fmt::Display for RdbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.report {
            Some(Report::Corrupt { reason, .. }) if !self.msg.starts_with(reason.as_str()) => {
                write!(f, "{reason} [{}] (at byte offset {})", self.msg, self.offset)
            }
            _ => write!(f, "{} (at byte offset {})", self.msg, self.offset),
        }
    }
}

impl std::error::Error for RdbError {}

pub type Result<T> = std::result::Result<T, RdbError>;

pub const ENC_INT8: u64 = 0;
pub const ENC_INT16: u64 = 1;
pub const ENC_INT32: u64 = 2;
pub const ENC_LZF: u64 = 3;

/// A string of an RDB file as stored (see [`Reader::stored_string`]).
pub enum Stored<'a> {
    Bytes(Cow<'a, [u8]>),
    Int(i64),
}

pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// Stream offset of `buf[0]`.
    base: usize,
    /// A read needed more bytes than `buf` holds.
    short: bool,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self::at_offset(buf, 0)
    }

    /// A reader over `buf`, a window starting at offset `base` of a longer stream.
    pub fn at_offset(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base, short: false }
    }

    /// The offset in the stream (the whole input unless this is a window).
    pub fn pos(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes read from `buf` so far.
    pub fn consumed(&self) -> usize {
        self.pos
    }

    /// Whether some read failed because `buf` ended (more of the stream might have satisfied
    /// it). Errors of a reader that ran short say so by their "unexpected end of data".
    pub fn ran_short(&self) -> bool {
        self.short
    }

    fn short<T>(&mut self, msg: String) -> Result<T> {
        self.short = true;
        self.err(msg)
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// An error at the current offset.
    pub fn err<T>(&self, msg: impl Into<String>) -> Result<T> {
        Err(RdbError::new(self.pos(), msg))
    }

    /// An error at the current offset, reported as Redis reports it (see [`RdbError::corrupt`]).
    pub fn corrupt<T>(&self, line: u32, reason: impl Into<String>) -> Result<T> {
        Err(RdbError::corrupt(self.pos(), line, reason))
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return self.short(format!("unexpected end of data (needed {n} bytes, {} left)", self.remaining()));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.bytes(1)?[0])
    }

    pub fn u32_le(&mut self) -> Result<u32> {
        let b = self.bytes(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn u64_le(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.bytes(8)?);
        Ok(u64::from_le_bytes(a))
    }

    /// An RDB length, or (flag true) a special string encoding number.
    pub fn len_or_enc(&mut self) -> Result<(u64, bool)> {
        let b = self.u8()?;
        Ok(match b >> 6 {
            0 => ((b & 0x3f) as u64, false),
            1 => ((((b & 0x3f) as u64) << 8) | self.u8()? as u64, false),
            2 => match b {
                0x80 => (u32::from_be_bytes(self.bytes(4)?.try_into().unwrap_or([0; 4])) as u64, false),
                0x81 => (u64::from_be_bytes(self.bytes(8)?.try_into().unwrap_or([0; 8])), false),
                _ => return self.corrupt(244, "Unknown length encoding 2 in rdbLoadLen()"),
            },
            _ => ((b & 0x3f) as u64, true),
        })
    }

    /// A plain length.
    pub fn length(&mut self) -> Result<u64> {
        match self.len_or_enc()? {
            (n, false) => Ok(n),
            (_, true) => self.err("encoded value where a length was expected"),
        }
    }

    /// A count of items that each take at least `min_item_bytes` bytes: refused when the data
    /// left cannot hold that many (so callers may reserve `count` slots safely).
    pub fn count(&mut self, min_item_bytes: usize) -> Result<usize> {
        let n = self.length()?;
        if n > (self.remaining() / min_item_bytes.max(1)) as u64 {
            return self
                .short(format!("unexpected end of data: length {n} exceeds the {} bytes left", self.remaining()));
        }
        Ok(n as usize)
    }

    /// A string in any of its encodings (integer encodings come back as decimal text).
    pub fn string(&mut self) -> Result<Vec<u8>> {
        self.string_cow().map(Cow::into_owned)
    }

    /// [`Reader::string`], borrowed from the input when it is stored as it is (not an integer
    /// nor LZF): what is copied into a value anyway (a key, a listpack that is decoded) need
    /// not be copied first.
    pub fn string_cow(&mut self) -> Result<Cow<'a, [u8]>> {
        Ok(match self.stored_string()? {
            Stored::Bytes(b) => b,
            Stored::Int(v) => Cow::Owned(v.to_string().into_bytes()),
        })
    }

    /// A string as it is stored: its bytes (borrowed unless LZF-compressed), or the integer of
    /// an integer encoding (a string value keeps it as its integer encoding, never as text).
    pub fn stored_string(&mut self) -> Result<Stored<'a>> {
        let (n, encoded) = self.len_or_enc()?;
        if !encoded {
            if n > self.remaining() as u64 {
                return self.short(format!(
                    "unexpected end of data: string length {n} exceeds the {} bytes left",
                    self.remaining()
                ));
            }
            return Ok(Stored::Bytes(Cow::Borrowed(self.bytes(n as usize)?)));
        }
        let v: i64 = match n {
            ENC_INT8 => self.u8()? as i8 as i64,
            ENC_INT16 => i16::from_le_bytes([self.u8()?, self.u8()?]) as i64,
            ENC_INT32 => self.u32_le()? as i32 as i64,
            ENC_LZF => {
                let clen = self.length()?;
                let ulen = self.length()?;
                if clen > self.remaining() as u64 {
                    return self.short(format!(
                        "unexpected end of data: LZF length {clen} exceeds the {} bytes left",
                        self.remaining()
                    ));
                }
                let at = self.pos();
                let data = self.bytes(clen as usize)?;
                if ulen > usize::MAX as u64 {
                    return self.err("LZF length too large");
                }
                return lzf::decompress(data, ulen as usize).map(|b| Stored::Bytes(Cow::Owned(b))).map_err(|e| {
                    RdbError::new(at, format!("invalid LZF string: {e}")).reported(421, "Invalid LZF compressed string")
                });
            }
            other => return self.corrupt(536, format!("Unknown RDB string encoding type {other}")),
        };
        Ok(Stored::Int(v))
    }

    /// A score of the old ZSET type: a length byte then ASCII (253 nan, 254 +inf, 255 -inf).
    pub fn text_double(&mut self) -> Result<f64> {
        let n = self.u8()?;
        Ok(match n {
            253 => f64::NAN,
            254 => f64::INFINITY,
            255 => f64::NEG_INFINITY,
            _ => {
                let at = self.pos();
                let s = self.bytes(n as usize)?;
                match std::str::from_utf8(s).ok().and_then(|t| t.trim().parse::<f64>().ok()) {
                    Some(v) => v,
                    None => return Err(RdbError::new(at, "invalid double value")),
                }
            }
        })
    }

    /// A little-endian IEEE 754 double (ZSET_2 scores).
    pub fn binary_double(&mut self) -> Result<f64> {
        Ok(f64::from_bits(self.u64_le()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_strings() {
        let data = [0x05, 0x41, 0x2c, 0x80, 0, 1, 0x11, 0x70, 0xc0, 0xfb, 0xc1, 0xe8, 0x03, 3, b'a', b'b', b'c'];
        let mut r = Reader::new(&data);
        assert_eq!(r.length().unwrap(), 5);
        assert_eq!(r.length().unwrap(), 300);
        assert_eq!(r.length().unwrap(), 70000);
        assert_eq!(r.string().unwrap(), b"-5");
        assert_eq!(r.string().unwrap(), b"1000");
        assert_eq!(r.string().unwrap(), b"abc");
        assert!(r.u8().is_err());
    }

    #[test]
    fn damage_carries_redis_report() {
        // LZF data that does not decompress to its declared length.
        let e = Reader::new(&[0xc3, 2, 5, 0x00, b'a']).string().unwrap_err();
        assert_eq!(e.report, Some(Report::corrupt(421, "Invalid LZF compressed string")));
        assert!(e.to_string().starts_with("Invalid LZF compressed string [invalid LZF string"), "{e}");
        // A length byte of no known form; a string encoding of no known kind.
        let e = Reader::new(&[0x85]).length().unwrap_err();
        assert_eq!(e.report, Some(Report::corrupt(244, "Unknown length encoding 2 in rdbLoadLen()")));
        let e = Reader::new(&[0xc7]).string().unwrap_err();
        assert_eq!(e.report, Some(Report::corrupt(536, "Unknown RDB string encoding type 7")));
        // A short read reports nothing (Redis's RESTORE logs nothing for one).
        let e = Reader::new(&[0x05, b'a']).string().unwrap_err();
        assert!(e.is_short() && e.report.is_none());
        assert_eq!(
            Report::internal_error(2213, "Ziplist integrity check failed.", 0),
            "Internal error in RDB reading offset 0, function at rdb.c:2213 -> Ziplist integrity check failed."
        );
    }

    #[test]
    fn lying_lengths_are_refused() {
        assert!(Reader::new(&[0x80, 0xff, 0xff, 0xff, 0xff, 1, 2]).string().is_err());
        assert!(Reader::new(&[0x81, 0xff, 0, 0, 0, 0, 0, 0, 0]).count(1).is_err());
        // LZF: compressed length 2, declared 1 GB.
        assert!(Reader::new(&[0xc3, 2, 0x80, 0x40, 0, 0, 0, 0, 0]).string().is_err());
        assert!(Reader::new(&[0xc5]).string().is_err());
    }
}
