//! Redis Cluster's key → hash slot mapping (CRC16/XMODEM of the key, or of its `{hash tag}`,
//! modulo 16384). In cluster mode the keyspace shards by slot, so that a slot lives in one
//! shard; otherwise it shards by the dicts' hash of the same part of the key ([`hash_tag`]).

use crc::{Crc, Table, CRC_16_XMODEM};

/// Slice-by-16 tables: every command hashes its keys (for their shard) several times, and this
/// is about 5x faster per byte than the crate's default single table.
static CRC16: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_XMODEM);

pub const SLOTS: usize = 16384;

/// The hash slot of a key, honouring hash tags exactly as Redis's keyHashSlot.
#[inline]
pub fn key_hash_slot(key: &[u8]) -> u16 {
    crc16(hash_tag(key).unwrap_or(key)) & (SLOTS as u16 - 1)
}

/// The part of `key` between its first `{` and the next `}`, when not empty: the only part a
/// cluster hashes, so that keys sharing it share a slot (and outside cluster mode a shard).
#[inline]
pub fn hash_tag(key: &[u8]) -> Option<&[u8]> {
    find_open_brace(key).and_then(|s| {
        let rest = &key[s + 1..];
        memchr::memchr(b'}', rest).filter(|&e| e > 0).map(|e| &rest[..e])
    })
}

/// Where the first `{` is. A short key (the usual case) is scanned 8 bytes at a time: memchr's
/// dispatch cost ~100 instructions on a 16-byte key, more than the CRC itself, and a
/// byte-at-a-time loop about as much.
#[inline]
fn find_open_brace(key: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    if key.len() > 64 {
        return memchr::memchr(b'{', key);
    }
    let mut words = key.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        // Bytes equal to '{' become zero; the lowest zero byte sets the lowest flagged bit (a
        // borrow can only flag bytes above a zero byte).
        let x = u64::from_le_bytes(word.try_into().unwrap_or_default()) ^ (ONES * b'{' as u64);
        let zero = x.wrapping_sub(ONES) & !x & HIGHS;
        if zero != 0 {
            return Some(at + zero.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    words.remainder().iter().position(|&c| c == b'{').map(|i| at + i)
}

/// CRC16/XMODEM over the crate's slice-by-16 tables, with the loop written out here: the
/// crate's generic `checksum` reads the algorithm's parameters at run time unless the
/// compiler happens to inline it into a caller that knows them, so it compiled to 66 or 112
/// instructions for a 16-byte key depending on unrelated changes; written here, its code no
/// longer depends on its callers. (Only cluster mode hashes keys with it: see
/// `keyspace::shard_of`.)
#[inline(never)]
fn crc16(bytes: &[u8]) -> u16 {
    let t = CRC16.table();
    // XMODEM: initial value 0, not reflected, no final xor.
    let mut crc = 0u16;
    let mut blocks = bytes.chunks_exact(16);
    for block in &mut blocks {
        let b: &[u8; 16] = block.try_into().unwrap_or(&[0; 16]);
        let [hi, lo] = crc.to_be_bytes();
        // Byte i of the block goes through table 15 - i (the first two folded with the CRC).
        let mut next = t[15][(b[0] ^ hi) as usize] ^ t[14][(b[1] ^ lo) as usize];
        for (i, &byte) in b.iter().enumerate().skip(2) {
            next ^= t[15 - i][byte as usize];
        }
        crc = next;
    }
    for &byte in blocks.remainder() {
        crc = t[0][((crc >> 8) as u8 ^ byte) as usize] ^ (crc << 8);
    }
    crc
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

    #[test]
    fn crc_matches_the_crate_at_every_length() {
        let data: Vec<u8> = (0..200u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect();
        for len in 0..data.len() {
            assert_eq!(crc16(&data[..len]), CRC16.checksum(&data[..len]), "length {len}");
        }
    }

    #[test]
    fn brace_scan_finds_the_first_brace_anywhere() {
        for len in 0..80 {
            let plain = vec![b'a'; len];
            assert_eq!(find_open_brace(&plain), None);
            for at in 0..len {
                let mut key = plain.clone();
                key[at] = b'{';
                // Bytes around '{' that a borrow could confuse with it.
                if at + 1 < len {
                    key[at + 1] = b'{' + 1;
                }
                if at > 0 {
                    key[at - 1] = b'{' - 1;
                }
                assert_eq!(find_open_brace(&key), Some(at), "len {len} at {at}");
                if at + 2 < len {
                    key[at + 2] = b'{';
                    assert_eq!(find_open_brace(&key), Some(at), "second brace, len {len} at {at}");
                }
            }
        }
        assert_eq!(find_open_brace(&[0x7a, 0x7b, 0x00, 0xff, 0x7b, 0, 0, 0, 0]), Some(1));
        assert_eq!(find_open_brace(&[0xfb, 0x7c, 0x7a, 0x80, 0x00, 0xff, 0x3b, 0x5b]), None);
    }
}
