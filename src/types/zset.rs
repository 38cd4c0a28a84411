//! A sorted set of members ordered by score (Redis sorted sets): the representation and its encodings.
//!
//! Skeleton: the type is being implemented (issue 3). The interface the rest of the server uses
//! is `encoding()`, `len()`, `rdb_type()` / `rdb_payload()` and `Clone` (COPY).

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ZSetValue {}

impl ZSetValue {
    /// The name OBJECT ENCODING reports.
    pub fn encoding(&self) -> &'static str {
        "listpack"
    }

    pub fn len(&self) -> usize {
        0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The RDB type byte this value is serialised with.
    pub fn rdb_type(&self) -> u8 {
        5
    }

    /// The RDB payload (after the type byte and the key).
    pub fn rdb_payload(&self, out: &mut Vec<u8>) {
        crate::persistence::rdb::write_len(out, 0);
    }
}
