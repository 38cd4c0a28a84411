//! Redis's DEBUG DIGEST arithmetic: SHA1 digests combined by xor (order does not matter) or by
//! mixing (order matters), so that a dataset's digest equals real Redis's for the same data.

/// `digest ^= SHA1(data)`: adds an element of an unordered collection (a set's member, a
/// key of the dataset).
pub fn xor_digest(digest: &mut [u8; 20], data: &[u8]) {
    let hash = sha1_smol::Sha1::from(data).digest().bytes();
    for (d, h) in digest.iter_mut().zip(hash) {
        *d ^= h;
    }
}

/// `digest = SHA1(digest ^ SHA1(data))`: adds the next element of an ordered sequence, so
/// that "a","b" and "b","a" (or "fo","obar" and "foo","bar") give different digests.
pub fn mix_digest(digest: &mut [u8; 20], data: &[u8]) {
    xor_digest(digest, data);
    *digest = sha1_smol::Sha1::from(&digest[..]).digest().bytes();
}

/// A digest as Redis prints digests (DEBUG DIGEST, ACL password hashes): lowercase hex, two
/// digits a byte.
pub fn to_hex(digest: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(digest.len() * 2);
    for b in digest {
        out.push(HEX[(b >> 4) as usize] as char);
        out.push(HEX[(b & 15) as usize] as char);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_is_unordered_and_mix_is_ordered() {
        let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
        xor_digest(&mut a, b"x");
        xor_digest(&mut a, b"y");
        xor_digest(&mut b, b"y");
        xor_digest(&mut b, b"x");
        assert_eq!(a, b);
        let (mut a, mut b) = ([0u8; 20], [0u8; 20]);
        mix_digest(&mut a, b"fo");
        mix_digest(&mut a, b"obar");
        mix_digest(&mut b, b"foo");
        mix_digest(&mut b, b"bar");
        assert_ne!(a, b);
    }

    #[test]
    fn xor_into_zero_is_the_plain_sha1() {
        let mut d = [0u8; 20];
        xor_digest(&mut d, b"abc");
        assert_eq!(to_hex(&d), "a9993e364706816aba3e25717850c26c9cd0d89d");
    }
}
