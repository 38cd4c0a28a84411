//! Redis's partial sort (pqsort.c, a Bentley & McIlroy quicksort that skips the partitions
//! outside the wanted range), used where Redis uses it: SORT with a BY pattern and a LIMIT, and
//! GEOSEARCH/GEORADIUS with a COUNT below the number of matches.
//!
//! The algorithm is reproduced step for step because it is not stable: elements that compare
//! equal (ALPHA sorting by weights that are missing or the same, points at the same distance)
//! end up in the order its partitioning leaves them, which clients and replicas of Redis see,
//! so Ferrous must too. The partitions are kept on an explicit stack instead of recursion: they
//! are disjoint, so the order they are worked in does not change the result, and a bad input
//! cannot overflow the thread's stack.

use std::cmp::Ordering;

/// Sorts `v` far enough that positions `lo..=hi` hold what a full sort would put there (and
/// exactly what Redis's pqsort leaves there). `lo > hi` or a range outside `v` is allowed.
pub fn pqsort<T>(v: &mut [T], lo: i64, hi: i64, mut cmp: impl FnMut(&T, &T) -> Ordering) {
    let mut todo: Vec<(usize, usize)> = vec![(0, v.len())];
    while let Some((base, n)) = todo.pop() {
        partition(v, base, n, lo, hi, &mut cmp, &mut todo);
    }
}

/// Whether the partition of positions `first..=last` holds part of the wanted range: Redis
/// skips one only when both ends of the range lie on the same side of it.
fn wanted(first: usize, last: usize, lo: i64, hi: i64) -> bool {
    let (first, last) = (first as i64, last as i64);
    !((lo < first && hi < first) || (lo > last && hi > last))
}

/// The median of three positions, choosing between equals as Redis's med3 does.
fn med3<T>(v: &[T], a: usize, b: usize, c: usize, cmp: &mut impl FnMut(&T, &T) -> Ordering) -> usize {
    if cmp(&v[a], &v[b]) == Ordering::Less {
        if cmp(&v[b], &v[c]) == Ordering::Less {
            b
        } else if cmp(&v[a], &v[c]) == Ordering::Less {
            c
        } else {
            a
        }
    } else if cmp(&v[b], &v[c]) == Ordering::Greater {
        b
    } else if cmp(&v[a], &v[c]) == Ordering::Less {
        a
    } else {
        c
    }
}

/// Swaps the `n` positions from `a` with the `n` from `b`, pairwise.
fn swap_blocks<T>(v: &mut [T], a: usize, b: usize, n: usize) {
    for k in 0..n {
        v.swap(a + k, b + k);
    }
}

/// Sorts the `n` positions from `base` one step: small runs by insertion; larger ones are
/// split three ways around a pivot (less, equal, greater), and the outer two parts, when
/// they overlap the wanted range, are pushed to be done in turn.
fn partition<T>(
    v: &mut [T],
    base: usize,
    n: usize,
    lo: i64,
    hi: i64,
    cmp: &mut impl FnMut(&T, &T) -> Ordering,
    todo: &mut Vec<(usize, usize)>,
) {
    let s = &mut v[base..base + n];
    if n < 7 {
        for m in 1..n {
            let mut l = m;
            while l > 0 && cmp(&s[l - 1], &s[l]) == Ordering::Greater {
                s.swap(l, l - 1);
                l -= 1;
            }
        }
        return;
    }
    let mut pm = n / 2;
    if n > 7 {
        let (mut pl, mut pn) = (0, n - 1);
        if n > 40 {
            let d = n / 8;
            pl = med3(s, pl, pl + d, pl + 2 * d, cmp);
            pm = med3(s, pm - d, pm, pm + d, cmp);
            pn = med3(s, pn - 2 * d, pn - d, pn, cmp);
        }
        pm = med3(s, pl, pm, pn, cmp);
    }
    s.swap(0, pm);
    // Invariant: [0, pa) equal to the pivot, [pa, pb) less, (pc, pd] greater, (pd, n) equal.
    let (mut pa, mut pb) = (1usize, 1usize);
    let (mut pc, mut pd) = (n as isize - 1, n as isize - 1);
    loop {
        while pb as isize <= pc {
            let r = cmp(&s[pb], &s[0]);
            if r == Ordering::Greater {
                break;
            }
            if r == Ordering::Equal {
                s.swap(pa, pb);
                pa += 1;
            }
            pb += 1;
        }
        while pb as isize <= pc {
            let r = cmp(&s[pc as usize], &s[0]);
            if r == Ordering::Less {
                break;
            }
            if r == Ordering::Equal {
                s.swap(pc as usize, pd as usize);
                pd -= 1;
            }
            pc -= 1;
        }
        if pb as isize > pc {
            break;
        }
        s.swap(pb, pc as usize);
        pb += 1;
        pc -= 1;
    }
    let (pc, pd) = (pc as usize, pd as usize);
    // Move the equal runs from both ends into the middle.
    let r = pa.min(pb - pa);
    swap_blocks(s, 0, pb - r, r);
    let r = (pd - pc).min(n - pd - 1);
    swap_blocks(s, pb, n - r, r);
    let less = pb - pa;
    if less > 1 && wanted(base, base + less - 1, lo, hi) {
        todo.push((base, less));
    }
    let greater = pd - pc;
    if greater > 1 && wanted(base + n - greater, base + n - 1, lo, hi) {
        todo.push((base + n - greater, greater));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(seed: &mut u64) -> u64 {
        *seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        *seed >> 33
    }

    #[test]
    fn the_wanted_range_is_sorted() {
        let mut seed = 7;
        for n in [0usize, 1, 2, 6, 7, 8, 40, 41, 100, 1000] {
            for _ in 0..20 {
                let v: Vec<u64> = (0..n).map(|_| lcg(&mut seed) % 50).collect();
                let mut want = v.clone();
                want.sort();
                let lo = (lcg(&mut seed) % (n as u64 + 1)) as i64;
                let hi = lo + (lcg(&mut seed) % 10) as i64;
                let mut got = v.clone();
                pqsort(&mut got, lo, hi, |a, b| a.cmp(b));
                let end = (hi as usize + 1).min(n);
                if (lo as usize) < end {
                    assert_eq!(&got[lo as usize..end], &want[lo as usize..end], "n={n} lo={lo} hi={hi}");
                }
                let mut all = got.clone();
                all.sort();
                assert_eq!(all, want);
                let mut full = v.clone();
                pqsort(&mut full, 0, n as i64 - 1, |a, b| a.cmp(b));
                assert_eq!(full, want);
            }
        }
    }

    #[test]
    fn equal_elements_land_where_redis_puts_them() {
        // Keyed by the first byte only; the second tells the equal ones apart. Traced by hand
        // through Redis's algorithm: med3 of positions 0, 4 and 7, all equal, picks 7, which
        // is swapped to the front; every other element then equals the pivot and stays.
        let mut v: Vec<(u8, u8)> = (0..8).map(|i| (0, i)).collect();
        pqsort(&mut v, 0, 1, |a, b| a.0.cmp(&b.0));
        let order: Vec<u8> = v.iter().map(|e| e.1).collect();
        assert_eq!(order, vec![7, 1, 2, 3, 4, 5, 6, 0]);
    }
}
