//! Password hashes: SHA-256 as 64 lower-case hex characters (what `#<hash>` rules and ACL
//! GETUSER show), compared in constant time.

use sha2::{Digest, Sha256};

/// The hex SHA-256 of a password (Redis's ACLHashPassword).
pub fn hash(pass: &[u8]) -> Vec<u8> {
    crate::util::digest::to_hex(&Sha256::digest(pass)).into_bytes()
}

/// Whether a `#`/`!` rule's hash is well formed: exactly 64 characters of `0-9a-f`.
pub fn valid_hash(h: &[u8]) -> bool {
    h.len() == 64 && h.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// Compare two hashes without a data-dependent early exit (Redis's time_independent_strcmp).
pub fn equal(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= std::hint::black_box(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_as_redis() {
        // The hash of "passwd4" that Redis's acl.tcl uses.
        assert_eq!(hash(b"passwd4"), b"34344e4d60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6".to_vec());
        assert!(valid_hash(&hash(b"")));
        assert!(!valid_hash(b"34344E4D60c2b6d639b7bd22e18f2b0b91bc34bf0ac5f9952744435093cfb4e6"));
        assert!(!valid_hash(b"abc"));
        assert!(equal(b"abc", b"abc"));
        assert!(!equal(b"abc", b"abd"));
        assert!(!equal(b"abc", b"ab"));
    }
}
