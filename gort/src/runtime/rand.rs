//! A cheap per-thread random number generator (Go's `cheaprand`): wyrand
//! seeded from the thread's address space and the clock. For scheduling
//! choices (select's case order), never for anything secret.

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let local = 0u8;
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    (&local as *const u8 as u64).rotate_left(32) ^ t ^ 0x9E37_79B9_7F4A_7C15
}

/// A uniformly distributed 64-bit value. Never inlined: a thread-local
/// read around a park (see `g::current`).
#[inline(never)]
pub(crate) fn next() -> u64 {
    STATE.with(|s| {
        let x = s.get().wrapping_add(0xA076_1D64_78BD_642F);
        s.set(x);
        let t = (x as u128).wrapping_mul((x ^ 0xE703_7ED1_A0B4_28DB) as u128);
        (t >> 64) as u64 ^ t as u64
    })
}

/// A uniformly distributed value in `0..n` (`n > 0`), by Lemire's
/// multiply-shift (bias below 2^-32 for the small `n` used here).
#[inline]
#[cfg(not(loom))]
pub(crate) fn below(n: usize) -> usize {
    (((next() >> 32) * n as u64) >> 32) as usize
}

/// Under loom: always 0. A model must replay the same choices in every
/// execution; loom explores interleavings, not select's case orders.
#[cfg(loom)]
pub(crate) fn below(_n: usize) -> usize {
    0
}

#[cfg(all(test, not(loom)))]
mod tests {
    #[test]
    fn below_covers_the_range_evenly() {
        let mut hits = [0u32; 5];
        for _ in 0..50_000 {
            hits[super::below(5)] += 1;
        }
        for h in hits {
            assert!((8_000..12_000).contains(&h), "{hits:?}");
        }
    }
}
