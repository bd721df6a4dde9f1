//! Reusable buffers shared by all scrape loops.
//!
//! Scrape bodies and the per-scrape sample batch are the largest allocations
//! on the scrape path. Targets scrape at offsets spread across the interval,
//! so only a few scrapes run at once: a small shared pool serves every target,
//! where a buffer per target would hold (targets × payload size) forever.

use parking_lot::Mutex;

/// A pool of vectors; `get` hands out an empty one, `put` takes it back.
pub struct Pool<T> {
    free: Mutex<Vec<Vec<T>>>,
    keep: usize,
    /// Vectors that grew beyond this many elements are freed, not kept: one
    /// huge scrape must not pin its memory for good.
    max_capacity: usize,
}

impl<T> Pool<T> {
    /// A pool that keeps at most `keep` idle vectors of at most
    /// `max_capacity` elements each.
    pub fn new(keep: usize, max_capacity: usize) -> Self {
        Pool {
            free: Mutex::new(Vec::new()),
            keep,
            max_capacity,
        }
    }

    pub fn get(&self) -> Vec<T> {
        self.free.lock().pop().unwrap_or_default()
    }

    pub fn put(&self, mut v: Vec<T>) {
        if v.capacity() > self.max_capacity {
            return;
        }
        v.clear();
        let mut free = self.free.lock();
        if free.len() < self.keep {
            free.push(v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reuses_capacity_and_bounds_idle_buffers() {
        let p: Pool<u8> = Pool::new(1, 4096);
        let mut a = p.get();
        a.extend_from_slice(&[1; 1000]);
        p.put(a);
        let b = p.get();
        assert!(b.is_empty() && b.capacity() >= 1000);
        p.put(b);
        p.put(Vec::with_capacity(10));
        assert_eq!(p.free.lock().len(), 1);
    }

    #[test]
    fn oversized_buffers_are_freed_not_kept() {
        let p: Pool<u8> = Pool::new(4, 4096);
        p.put(vec![0; 1 << 20]);
        assert!(p.free.lock().is_empty());
        assert_eq!(p.get().capacity(), 0);
        p.put(Vec::with_capacity(4096));
        assert_eq!(p.free.lock().len(), 1);
    }
}
