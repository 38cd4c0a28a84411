//! The shape of the radix tree Redis keeps a stream's nodes in (rax.c), for XINFO STREAM's
//! `radix-tree-nodes`. Ferrous keeps the nodes in an ordered map; the count is computed from
//! the keys instead. Rax keeps its tree maximally compressed (inserts split compressed nodes,
//! removals merge single-child chains back), so for keys of one length the shape depends only
//! on the key set: a compressed node for each run of bytes shared by all keys below a point,
//! a branching node where they diverge, and a leaf node after each key's last byte.

const KEY_LEN: usize = 16;

/// Rax nodes for the sorted, distinct, 16-byte keys `keys` (1 for an empty tree: its head).
pub fn node_count(keys: impl Iterator<Item = [u8; KEY_LEN]>) -> usize {
    let keys: Vec<[u8; KEY_LEN]> = keys.collect();
    if keys.is_empty() {
        return 1;
    }
    count(&keys, 0)
}

fn count(keys: &[[u8; KEY_LEN]], depth: usize) -> usize {
    if keys.len() == 1 {
        // The rest of the key in one node (compressed, or a one-child node for a single
        // byte), then the leaf; a key ending here is just the leaf.
        return if depth == KEY_LEN { 1 } else { 2 };
    }
    // Sorted keys: the bytes shared by all are those shared by the first and the last.
    let (a, b) = (&keys[0], &keys[keys.len() - 1]);
    let common = (depth..KEY_LEN).take_while(|&i| a[i] == b[i]).count();
    let at = depth + common;
    let mut n = 1 + usize::from(common > 0);
    let mut start = 0;
    while start < keys.len() {
        let byte = keys[start][at];
        let len = keys[start..].iter().take_while(|k| k[at] == byte).count();
        n += count(&keys[start..start + len], at + 1);
        start += len;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ms: u64, seq: u64) -> [u8; 16] {
        crate::types::stream::StreamId::new(ms, seq).to_be_bytes()
    }

    #[test]
    fn shapes() {
        assert_eq!(node_count(std::iter::empty()), 1);
        assert_eq!(node_count([key(1, 0)].into_iter()), 2);
        // Differing in the last byte: compressed prefix, branch, two leaves.
        assert_eq!(node_count([key(1, 0), key(1, 1)].into_iter()), 4);
        // Differing in the first byte: branch at the root, then two chains of two.
        assert_eq!(node_count([key(0, 0), key(1 << 56, 0)].into_iter()), 5);
    }
}
