//! Redis Cluster's key → hash slot mapping (CRC16/XMODEM of the key, or of its `{hash tag}`,
//! modulo 16384). The keyspace shards by slot so that, in cluster mode, a slot lives in one shard.

use crc::{Crc, Table, CRC_16_XMODEM};

/// Slice-by-16 tables: every command hashes its keys (for their shard) several times, and this
/// is about 5x faster per byte than the crate's default single table.
static CRC16: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_XMODEM);

pub const SLOTS: usize = 16384;

/// The hash slot of a key, honouring hash tags exactly as Redis's keyHashSlot.
#[inline]
pub fn key_hash_slot(key: &[u8]) -> u16 {
    // memchr: a byte-at-a-time scan cost as much as the CRC itself.
    let tagged = memchr::memchr(b'{', key).and_then(|s| {
        let rest = &key[s + 1..];
        memchr::memchr(b'}', rest).filter(|&e| e > 0).map(|e| &rest[..e])
    });
    crc16(tagged.unwrap_or(key)) & (SLOTS as u16 - 1)
}

/// One out-of-line copy: inlined at each caller, the crate's generic `checksum` was compiled
/// well or badly (66 or ~135 instructions for a 16-byte key) depending on how many callers
/// there were.
#[inline(never)]
fn crc16(bytes: &[u8]) -> u16 {
    CRC16.checksum(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_redis() {
        assert_eq!(key_hash_slot(b"foo"), 12182);
        assert_eq!(key_hash_slot(b"{user1000}.following"), key_hash_slot(b"user1000"));
        // An empty tag means the whole key is hashed.
        assert_eq!(key_hash_slot(b"foo{}{bar}"), CRC16.checksum(b"foo{}{bar}") & 16383);
        assert_eq!(key_hash_slot(b"foo{{bar}}zap"), CRC16.checksum(b"{bar") & 16383);
    }
}
