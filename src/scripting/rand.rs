//! Redis's `redisLrand48` (`rand.c`): the classic 48-bit `lrand48` linear congruential generator
//! (x = 0x5DEECE66D * x + 0xB mod 2^48, output its top 31 bits), which `math.random` uses so
//! scripts get the same sequence on every platform. Like Redis 7.0, one state serves every
//! script and is only reseeded by `math.randomseed`.

/// The generator's 48-bit state.
#[derive(Clone, Copy, Debug)]
pub struct Lrand48 {
    x: u64,
}

const A: u64 = 0x5_DEEC_E66D;
const C: u64 = 0xB;
const MASK: u64 = (1 << 48) - 1;
/// Redis's REDIS_LRAND48_MAX.
pub const LRAND48_MAX: i64 = i32::MAX as i64;

impl Default for Lrand48 {
    fn default() -> Self {
        Lrand48 { x: 0x1234_ABCD_330E }
    }
}

impl Lrand48 {
    /// `redisSrand48`: the seed's 32 bits above the fixed low 16 bits 0x330E.
    pub fn seed(&mut self, seed: i32) {
        self.x = (((seed as u32) as u64) << 16) | 0x330E;
    }

    /// `redisLrand48`: a number in [0, 2^31).
    pub fn next_i32(&mut self) -> i32 {
        self.x = (A.wrapping_mul(self.x).wrapping_add(C)) & MASK;
        (self.x >> 17) as i32
    }

    /// `math.random`'s base value in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        (self.next_i32() as i64 % LRAND48_MAX) as f64 / LRAND48_MAX as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_values_match_redis() {
        // A fresh Redis 7.0 answers `EVAL "return math.random(100)" 0` with 40.
        let mut r = Lrand48::default();
        assert_eq!((r.next_unit() * 100.0).floor() as i64 + 1, 40);
        // glibc's lrand48 after srand48(0) starts with 366850414.
        let mut g = Lrand48::default();
        g.seed(0);
        assert_eq!(g.next_i32(), 366850414);
    }
}
