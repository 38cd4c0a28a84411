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

/// An argument as text for error messages (lossy).
pub fn text(arg: &[u8]) -> String {
    String::from_utf8_lossy(arg).into_owned()
}

/// A blocking command's timeout in seconds (Redis's getTimeoutFromObjectOrReply): a float, 0
/// meaning forever, with millisecond precision (rounded up). Returns the deadline.
pub fn timeout(arg: &[u8]) -> Result<Option<std::time::Instant>, CmdError> {
    let err = || CmdError::new("timeout is not a float or out of range");
    let secs = crate::util::num::LongDouble::parse(arg).ok_or_else(err)?.to_f64();
    if !secs.is_finite() {
        return Err(err());
    }
    let ms = (secs * 1000.0).ceil();
    if ms < 0.0 {
        return Err(CmdError::new("timeout is negative"));
    }
    if ms == 0.0 {
        return Ok(None);
    }
    // A deadline centuries away is as good as none.
    Ok(std::time::Instant::now().checked_add(std::time::Duration::from_millis(ms.min(1e15) as u64)))
}
