//! Ordering of search results as Redis orders them, ties included. A full sort is glibc's
//! `qsort`, which is a stable merge sort, so a stable sort gives the same order. When COUNT
//! asks for fewer results than were found Redis uses `pqsort`, a partial Bentley-McIlroy
//! quicksort that only sorts the part of the array holding the first N ranks: elements with
//! equal keys come out in the order that algorithm leaves them, so it is reproduced step by
//! step here (same pivots, same swaps).

use std::cmp::Ordering;

/// Sort `a` by `cmp` so that ranks `lrange..=rrange` hold the right elements in order
/// (the rest is partitioned around them), exactly as Redis's `pqsort` does.
pub fn pqsort<T>(a: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering, lrange: usize, rrange: usize) {
    // Redis recurses into the left part and loops on the right one; the parts are disjoint,
    // so sorting them in any order gives the same array: a work list instead of recursion
    // keeps crafted inputs from exhausting the stack.
    let mut work = vec![(0, a.len())];
    while let Some((base, n)) = work.pop() {
        partition(a, base, n, cmp, lrange, rrange, &mut work);
    }
}

fn med3<T>(a: &[T], i: usize, j: usize, k: usize, cmp: &impl Fn(&T, &T) -> Ordering) -> usize {
    if cmp(&a[i], &a[j]).is_lt() {
        if cmp(&a[j], &a[k]).is_lt() {
            j
        } else if cmp(&a[i], &a[k]).is_lt() {
            k
        } else {
            i
        }
    } else if cmp(&a[j], &a[k]).is_gt() {
        j
    } else if cmp(&a[i], &a[k]).is_lt() {
        i
    } else {
        k
    }
}

/// Swap the `n` elements from `i` with the `n` from `j` (the ranges never overlap).
fn vecswap<T>(a: &mut [T], i: usize, j: usize, n: usize) {
    for k in 0..n {
        a.swap(i + k, j + k);
    }
}

/// One step of the partial quicksort on `a[base..base + n]`: an insertion sort when short,
/// otherwise a three-way partition whose parts overlapping the wanted ranks go to `work`.
fn partition<T>(
    a: &mut [T],
    base: usize,
    n: usize,
    cmp: &impl Fn(&T, &T) -> Ordering,
    l: usize,
    r: usize,
    work: &mut Vec<(usize, usize)>,
) {
    if n < 7 {
        for pm in base + 1..base + n {
            let mut pl = pm;
            while pl > base && cmp(&a[pl - 1], &a[pl]).is_gt() {
                a.swap(pl, pl - 1);
                pl -= 1;
            }
        }
        return;
    }
    let mut pm = base + n / 2;
    if n > 7 {
        let mut pl = base;
        let mut pn = base + n - 1;
        if n > 40 {
            let d = n / 8;
            pl = med3(a, pl, pl + d, pl + 2 * d, cmp);
            pm = med3(a, pm - d, pm, pm + d, cmp);
            pn = med3(a, pn - 2 * d, pn - d, pn, cmp);
        }
        pm = med3(a, pl, pm, pn, cmp);
    }
    a.swap(base, pm);
    let (mut pa, mut pb) = (base + 1, base + 1);
    let (mut pc, mut pd) = (base + n - 1, base + n - 1);
    loop {
        while pb <= pc {
            let c = cmp(&a[pb], &a[base]);
            if c.is_gt() {
                break;
            }
            if c.is_eq() {
                a.swap(pa, pb);
                pa += 1;
            }
            pb += 1;
        }
        while pb <= pc {
            let c = cmp(&a[pc], &a[base]);
            if c.is_lt() {
                break;
            }
            if c.is_eq() {
                a.swap(pc, pd);
                pd -= 1;
            }
            pc -= 1;
        }
        if pb > pc {
            break;
        }
        a.swap(pb, pc);
        pb += 1;
        pc -= 1;
    }
    let pn = base + n;
    let s = (pa - base).min(pb - pa);
    vecswap(a, base, pb - s, s);
    let s = (pd - pc).min(pn - pd - 1);
    vecswap(a, pb, pn - s, s);
    // Only the parts that overlap the wanted ranks are sorted further.
    let overlaps = |lo: usize, len: usize| !(r < lo || l >= lo + len);
    let left = pb - pa;
    if left > 1 && overlaps(base, left) {
        work.push((base, left));
    }
    let right = pd - pc;
    if right > 1 && overlaps(pn - right, right) {
        work.push((pn - right, right));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorts_the_wanted_ranks() {
        let mut seed = 12345u64;
        for len in [0usize, 1, 5, 7, 8, 40, 41, 100, 1000] {
            let v: Vec<u32> = (0..len)
                .map(|_| {
                    seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                    (seed >> 40) as u32 % 50
                })
                .collect();
            let mut sorted = v.clone();
            sorted.sort();
            for k in [1usize, 3, 10, 999] {
                if k > len || len == 0 {
                    continue;
                }
                let mut w = v.clone();
                pqsort(&mut w, &|a: &u32, b: &u32| a.cmp(b), 0, k - 1);
                assert_eq!(&w[..k], &sorted[..k], "len {len} k {k}");
            }
        }
    }
}
