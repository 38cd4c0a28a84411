//! Typed argument parsing shared by the handlers, with Redis's error texts.

use super::{errors, CmdError};
use crate::util::num::{parse_f64, parse_i64};

/// An integer argument (Redis's getLongLongFromObjectOrReply).
pub fn int(arg: &[u8]) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or_else(|| CmdError::new(errors::NOT_INTEGER))
}

/// An integer argument with a custom error text.
pub fn int_or(arg: &[u8], err: &str) -> Result<i64, CmdError> {
    parse_i64(arg).ok_or_else(|| CmdError::new(err))
}

/// A float argument (Redis's getDoubleFromObjectOrReply).
pub fn float(arg: &[u8]) -> Result<f64, CmdError> {
    parse_f64(arg).ok_or_else(|| CmdError::new(errors::NOT_FLOAT))
}

/// Case-insensitive comparison of an argument with an ASCII keyword.
pub fn is(arg: &[u8], word: &str) -> bool {
    arg.eq_ignore_ascii_case(word.as_bytes())
}

/// An argument as text (lossy), to parse it or compare it with words.
pub fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// An argument echoed in an error text, as Redis's `%s` of it prints: every byte as it came,
/// up to its first NUL (see `util::bytetext`; the reply encoder writes the raw bytes).
pub fn echo(arg: &[u8]) -> String {
    crate::util::bytetext::c_string(arg, usize::MAX)
}

/// A blocking command's timeout in seconds (Redis's getTimeoutFromObjectOrReply): a float, 0
/// meaning forever, with millisecond precision (rounded up). Returns the deadline.
pub fn timeout(arg: &[u8]) -> Result<Option<std::time::Instant>, CmdError> {
    let ld = crate::util::num::LongDouble::parse(arg)
        .ok_or_else(|| CmdError::new("timeout is not a float or out of range"))?;
    // Redis 7.2 computes in long double: milliseconds past LLONG_MAX (inf included), or a
    // deadline past it, are out of range; what rounds up to below zero (-inf included) is
    // negative. (-0.001 s is -0.999... ms as a long double: it rounds up to 0, forever.)
    let ms = ld.mul_u32(1000);
    if ms.above_i64_max() {
        return Err(CmdError::new("timeout is out of range"));
    }
    let ms = ms.ceil_i64();
    if ms < 0 {
        return Err(CmdError::new("timeout is negative"));
    }
    if ms == 0 {
        return Ok(None);
    }
    if ms > i64::MAX - crate::keyspace::now_ms() {
        return Err(CmdError::new("timeout is out of range"));
    }
    // A deadline centuries away is as good as none.
    Ok(std::time::Instant::now().checked_add(std::time::Duration::from_millis(ms.min(1 << 50) as u64)))
}
