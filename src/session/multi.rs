//! A transaction being queued (MULTI ... EXEC).

use bytes::Bytes;

/// A transaction being queued.
#[derive(Default, Debug)]
pub struct MultiState {
    pub commands: Vec<Vec<Bytes>>,
    /// A queued command was refused (unknown, wrong arity...): EXEC will fail with EXECABORT.
    pub aborted: bool,
}
