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
}

impl<T> Pool<T> {
    /// A pool that keeps at most `keep` idle vectors.
    pub fn new(keep: usize) -> Self {
        Pool {
            free: Mutex::new(Vec::new()),
            keep,
        }
    }

    pub fn get(&self) -> Vec<T> {
        self.free.lock().pop().unwrap_or_default()
    }

    pub fn put(&self, mut v: Vec<T>) {
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
        let p: Pool<u8> = Pool::new(1);
        let mut a = p.get();
        a.extend_from_slice(&[1; 1000]);
        p.put(a);
        let b = p.get();
        assert!(b.is_empty() && b.capacity() >= 1000);
        p.put(b);
        p.put(Vec::with_capacity(10));
        assert_eq!(p.free.lock().len(), 1);
    }
}
