//! Memory estimates and the cheap hasher for integer-keyed maps.
//!
//! `Head::stats().memory_bytes` sums capacities rather than asking the
//! allocator, so it is an estimate: every byte the head's structures reserve,
//! plus [`ALLOC_OVERHEAD`] for each of the many small allocations (per series,
//! per chunk, per postings list, per string), where the allocator's own cost
//! is a sizeable fraction.

use std::hash::{BuildHasherDefault, Hasher};

/// Average allocator cost of one small heap block: glibc malloc keeps an
/// 8-byte header and rounds blocks to 16 bytes.
pub const ALLOC_OVERHEAD: usize = 16;

/// Bytes of a heap block of `n` bytes including [`ALLOC_OVERHEAD`]; an empty
/// (unallocated) block costs nothing.
pub fn block(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        n + ALLOC_OVERHEAD
    }
}

/// Heap bytes of a std `HashMap` (hashbrown) with the given `capacity()`: one
/// slot plus one control byte per bucket, plus a group of trailing control
/// bytes.
pub fn hashmap_bytes<K, V>(capacity: usize) -> usize {
    if capacity == 0 {
        return 0;
    }
    let buckets = if capacity < 8 {
        capacity + 1
    } else {
        capacity / 7 * 8
    };
    buckets * (std::mem::size_of::<(K, V)>() + 1) + 16
}

/// Hasher for keys that are already ids or hashes: one multiply spreads the
/// bits (series refs differ mostly in their high bits within a shard), far
/// cheaper than SipHash on the append path.
#[derive(Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(0x517c_c1b7_2722_0a95);
        }
    }
    fn write_u64(&mut self, x: u64) {
        let m = (u128::from(x ^ self.0)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
    fn write_u32(&mut self, x: u32) {
        self.write_u64(x.into());
    }
}

pub type IdBuild = BuildHasherDefault<IdHasher>;
pub type IdMap<K, V> = std::collections::HashMap<K, V, IdBuild>;
