//! One series: its interned labels and its chunks, with Prometheus' append
//! rules.

use super::chunk::{ChunkIter, ClosedChunk, HeadChunk, XorState};
use super::head_chunks::{HeadChunks, MappedChunk};
use super::intern::Sym;
use super::mapped::MappedList;
use super::series_hist::{ClosedHist, HistChunks, HistValue};
use super::AppendError;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// A series as the head stores it. Labels are symbol ids
/// (`[name, value, name, value, ...]`, sorted by name like [`crate::model::Labels`]),
/// never strings, to keep the per-series cost small.
#[derive(Debug)]
pub struct Series {
    pub labels: Box<[Sym]>,
    /// `Labels::hash64` of the label set, to find the hash entry on removal.
    pub hash: u64,
    /// Truncation generation the series was created in; a series that never
    /// received a sample is only dropped by a later truncation, so a scraper
    /// that just created it does not lose it to a concurrent one.
    pub created_gen: u32,
    /// Set (under the shard write lock) when retention removed the series;
    /// readers holding an `Arc` check it before resolving label ids, which may
    /// be recycled afterwards.
    pub removed: AtomicBool,
    /// Set once a series record for it is in the WAL (after the write
    /// succeeded, under the WAL writer's lock).
    pub logged: AtomicBool,
    /// The WAL segment holding this series' newest logged sample
    /// ([`NOT_LOGGED`]: none known) and that sample's value bits, which its
    /// next logged sample in the same segment is encoded against. Read and
    /// written only under the WAL writer's lock.
    pub wal_segment: AtomicU64,
    pub wal_value: AtomicU64,
    /// The time of the float sample the last float append stored, or
    /// [`UNKNOWN_NEWEST`] after any other change (a histogram, a restore):
    /// a sample after it is appendable, so the append check reads this
    /// instead of taking the lock. Written under the lock, read without.
    pub newest: AtomicI64,
    /// Where that append left the open chunk's last byte: a prefetch hint.
    pub tail: AtomicUsize,
    pub data: Mutex<SeriesChunks>,
}

/// [`Series::newest`] when the append check must look under the lock.
pub const UNKNOWN_NEWEST: i64 = i64::MAX;

/// [`Series::wal_segment`] when no logged sample of the series is known.
pub const NOT_LOGGED: u64 = u64::MAX;

impl Series {
    /// Notes a stored float sample at `t` (called under the lock).
    pub fn stored_float(&self, t: i64, data: &SeriesChunks) {
        self.newest.store(t, Relaxed);
        self.tail.store(data.tail_address(), Relaxed);
    }

    /// Notes any other change of the series' samples (called under the
    /// lock): the next append check looks at the chunks.
    pub fn changed(&self) {
        self.newest.store(UNKNOWN_NEWEST, Relaxed);
    }

    pub fn new(labels: Box<[Sym]>, hash: u64, created_gen: u32) -> Series {
        Series {
            labels,
            hash,
            created_gen,
            removed: AtomicBool::new(false),
            logged: AtomicBool::new(false),
            wal_segment: AtomicU64::new(NOT_LOGGED),
            wal_value: AtomicU64::new(0),
            newest: AtomicI64::new(UNKNOWN_NEWEST),
            tail: AtomicUsize::new(0),
            data: Default::default(),
        }
    }
}

/// The mutable part of a series, behind its own lock.
///
/// Chunks oldest first: `mapped` (full chunks in the head chunk files, only
/// their reference in the heap), then `closed` (full chunks not written out
/// yet), then the open `head` chunk.
///
/// Invariant: `head` is `None` only when `closed` is empty too (new series,
/// all data dropped by retention, or a series restored from the head chunk
/// files that has no newer sample yet).
#[derive(Debug, Default)]
pub struct SeriesChunks {
    /// Packed to a few bytes per chunk (see [`MappedList`]).
    pub mapped: MappedList,
    pub closed: Vec<ClosedChunk>,
    pub head: Option<HeadChunk>,
    /// Native-histogram chunks, for series that received a histogram.
    pub hist: Option<Box<HistChunks>>,
}

/// What [`SeriesChunks::memory_chunks`] returns.
#[derive(Debug, Default)]
pub struct MemoryChunks {
    pub closed: Vec<Vec<u8>>,
    pub open: Option<(Vec<u8>, XorState)>,
    /// Histogram chunks held in memory: full ones, then the open one.
    pub hist: Vec<ClosedHist>,
    pub hist_open: Option<ClosedHist>,
}

/// What an accepted append did.
#[derive(Debug, PartialEq, Eq)]
pub enum Appended {
    /// Stored (and whether a chunk was cut to store it).
    Stored { cut: bool },
    /// An exact duplicate of the last sample: ignored, as Prometheus does.
    Duplicate,
}

impl SeriesChunks {
    /// Appends with Prometheus' head rules: newer than the last sample is
    /// stored; older is out of order; the same timestamp is a no-op when the
    /// value bits are equal and a "duplicate sample" error otherwise.
    pub fn append(
        &mut self,
        t: i64,
        v: f64,
        samples_per_chunk: usize,
    ) -> Result<Appended, AppendError> {
        if !self.appendable(t, v)? {
            return Ok(Appended::Duplicate);
        }
        let Some(head) = self.head.as_mut() else {
            self.head = Some(HeadChunk::new(t, v));
            return Ok(Appended::Stored { cut: false });
        };
        if head.num_samples() < samples_per_chunk && head.append(t, v) {
            return Ok(Appended::Stored { cut: false });
        }
        let size_hint = head.bytes().len() + head.bytes().len() / 16;
        let full = std::mem::replace(head, HeadChunk::with_capacity(t, v, size_hint));
        // Chunks are cut every `samples_per_chunk` samples: grow the list one
        // slot at a time rather than doubling.
        self.closed.reserve_exact(1);
        self.closed.push(full.close());
        Ok(Appended::Stored { cut: true })
    }

    /// The append rules without appending: `Ok(true)` when `(t, v)` would
    /// be stored, `Ok(false)` for an exact duplicate of the last sample.
    /// The address of the open float chunk's last byte (0 without one):
    /// the cache line the next append writes, for a prefetch.
    pub fn tail_address(&self) -> usize {
        self.head.as_ref().map_or(0, HeadChunk::tail_address)
    }

    pub fn appendable(&self, t: i64, v: f64) -> Result<bool, AppendError> {
        // Against the newest histogram in memory: the open histogram chunk
        // always holds it, except while a restart replays the WAL on top of
        // chunks read back from the files, whose samples of the other type
        // must not turn the older ones in the WAL away.
        if let Some(ht) = self.hist.as_ref().and_then(|h| h.memory_max_time()) {
            // A float at or before the newest histogram sample.
            if t < ht {
                return Err(AppendError::OutOfOrder);
            }
            if t == ht {
                return Err(AppendError::DuplicateTimestamp);
            }
        }
        let Some(head) = self.head.as_ref() else {
            // Restored from the head chunk files: order against their end
            // (a sample at that very time is taken as the one stored).
            return match self.mapped.last() {
                Some(m) if t < m.maxt => Err(AppendError::OutOfOrder),
                Some(m) if t == m.maxt => Ok(false),
                _ => Ok(true),
            };
        };
        let last = head.max_time();
        if t < last {
            return Err(AppendError::OutOfOrder);
        }
        if t == last {
            return if v.to_bits() == head.last_value_bits() {
                Ok(false)
            } else {
                Err(AppendError::DuplicateTimestamp)
            };
        }
        Ok(true)
    }

    /// The bytes of every chunk held in memory, oldest first (for
    /// checkpoints; chunks in the head chunk files are restored from there).
    pub fn chunk_data(&self) -> Vec<Vec<u8>> {
        self.closed
            .iter()
            .map(|c| c.bytes().to_vec())
            .chain(self.head.iter().map(|h| h.bytes().to_vec()))
            .collect()
    }

    /// The chunks held in memory as a memory snapshot keeps them: full
    /// chunks not in the head chunk files yet, oldest first, and the open
    /// chunk with its encoder state.
    pub fn memory_chunks(&self) -> MemoryChunks {
        let (hist, hist_open) = match &self.hist {
            Some(h) => h.memory_chunks(),
            None => (Vec::new(), None),
        };
        MemoryChunks {
            closed: self.closed.iter().map(|c| c.bytes().to_vec()).collect(),
            open: self.head.as_ref().map(|h| (h.bytes().to_vec(), h.state())),
            hist,
            hist_open,
        }
    }

    /// Puts a snapshot's histogram chunks back; returns the (min, max)
    /// time of what was put back, nothing when the series already holds
    /// histogram chunks in memory.
    pub fn restore_hist(&mut self, chunks: HistChunks) -> Option<(i64, i64)> {
        let span = (chunks.min_time()?, chunks.max_time()?);
        match &mut self.hist {
            Some(h) => h.restore_memory(chunks),
            None => {
                self.hist = Some(Box::new(chunks));
                Some(span)
            }
        }
    }

    /// Puts a snapshot's in-memory chunks back behind the mapped ones.
    /// Chunks starting at or before the newest mapped sample are left out:
    /// a file chunk written after the snapshot continues them. Returns the
    /// (min, max) time of what was put back; nothing when the series already
    /// holds in-memory chunks.
    pub fn restore_memory(
        &mut self,
        closed: Vec<ClosedChunk>,
        open: Option<HeadChunk>,
    ) -> Option<(i64, i64)> {
        if self.head.is_some() || !self.closed.is_empty() {
            return None;
        }
        let floor = self.mapped.last().map_or(i64::MIN, |m| m.maxt);
        let open = open.filter(|h| h.min_time() > floor)?;
        self.closed = closed
            .into_iter()
            .filter(|c| c.min_time() > floor)
            .collect();
        let lo = self
            .closed
            .first()
            .map_or(open.min_time(), |c| c.min_time());
        let hi = open.max_time();
        self.head = Some(open);
        Some((lo, hi))
    }

    pub fn has_samples(&self) -> bool {
        self.head.is_some() || !self.mapped.is_empty() || self.hist.is_some()
    }

    pub fn min_time(&self) -> Option<i64> {
        let float = self.float_min_time();
        match self.hist.as_ref().and_then(|h| h.min_time()) {
            Some(h) => Some(float.map_or(h, |f| f.min(h))),
            None => float,
        }
    }

    fn float_min_time(&self) -> Option<i64> {
        if let Some(m) = self.mapped.first() {
            return Some(m.mint);
        }
        match self.closed.first() {
            Some(c) => Some(c.min_time()),
            None => self.head.as_ref().map(HeadChunk::min_time),
        }
    }

    /// Newest float sample time (exact for the open chunk, the end of the
    /// newest chunk in the files otherwise).
    fn float_max_time(&self) -> Option<i64> {
        match &self.head {
            Some(h) => Some(h.max_time()),
            None => self.mapped.last().map(|m| m.maxt),
        }
    }

    /// Whether the series' newest sample is a histogram: `Some(true)` for
    /// a float histogram, `Some(false)` for an integer one, `None` when
    /// the newest sample is a float (or there is none).
    pub fn last_histogram_kind(&self) -> Option<bool> {
        let h = self.hist.as_ref()?;
        let ht = h.max_time()?;
        match self.float_max_time() {
            Some(ft) if ft > ht => None,
            _ => Some(h.last_is_float()),
        }
    }

    /// [`Self::appendable`] for a histogram: newer than the newest sample
    /// of either type; at the same timestamp an equal histogram is a
    /// no-op (`Ok(false)`), anything else a duplicate.
    pub fn appendable_histogram(&self, t: i64, v: &HistValue) -> Result<bool, AppendError> {
        // Floats in memory only (see `appendable`).
        let ft = self.head.as_ref().map(HeadChunk::max_time);
        let ht = self.hist.as_ref().and_then(|h| h.max_time());
        let last = match (ft, ht) {
            (Some(a), Some(b)) => a.max(b),
            (a, b) => match a.or(b) {
                Some(x) => x,
                None => return Ok(true),
            },
        };
        if t < last {
            return Err(AppendError::OutOfOrder);
        }
        if t > last {
            return Ok(true);
        }
        if ht == Some(t) && ft != Some(t) {
            if let Some(h) = &self.hist {
                // Restored from the head chunk files: a sample at their
                // end is taken as the one stored (as for floats).
                if h.only_mapped() {
                    return Ok(false);
                }
                if h.last().is_some_and(|(_, prev)| prev.equals(v)) {
                    return Ok(false);
                }
            }
        }
        Err(AppendError::DuplicateTimestamp)
    }

    /// Appends a histogram with the append rules; `Stored { cut }` tells
    /// whether a histogram chunk was cut.
    pub fn append_histogram(&mut self, t: i64, v: &HistValue) -> Result<Appended, AppendError> {
        if !self.appendable_histogram(t, v)? {
            return Ok(Appended::Duplicate);
        }
        // Floats since the last histogram: the sample type changed, the
        // next histogram starts a chunk of its own.
        let fresh = match (&self.hist, self.float_max_time()) {
            (Some(h), Some(ft)) => h.max_time().is_some_and(|ht| ft > ht),
            _ => false,
        };
        let hist = self.hist.get_or_insert_with(Default::default);
        let cut = hist.append(t, v, fresh);
        Ok(Appended::Stored { cut })
    }

    /// Histogram samples in `[mint, maxt]`, in time order (chunks in the
    /// head chunk files read through `disk`, left out without it).
    pub fn histograms_in(
        &self,
        disk: Option<&HeadChunks>,
        mint: i64,
        maxt: i64,
        out: &mut Vec<(i64, HistValue)>,
    ) {
        if let Some(h) = &self.hist {
            h.samples_in(disk, mint, maxt, out);
        }
    }

    /// Histogram chunks in the head chunk files.
    pub fn mapped_hist_chunks(&self) -> usize {
        self.hist.as_ref().map_or(0, |h| h.mapped.len())
    }

    #[cfg(test)]
    pub fn max_time(&self) -> Option<i64> {
        self.float_max_time()
    }

    pub fn num_chunks(&self) -> usize {
        self.mapped.len()
            + self.closed.len()
            + usize::from(self.head.is_some())
            + self.hist.as_ref().map_or(0, |h| h.num_chunks())
    }

    /// Encoded chunk bytes held in the heap (used length, not capacity).
    pub fn chunk_bytes(&self) -> usize {
        self.closed.iter().map(|c| c.bytes().len()).sum::<usize>()
            + self.head.as_ref().map_or(0, |h| h.bytes().len())
            + self.hist.as_ref().map_or(0, |h| h.chunk_bytes())
    }

    /// Heap bytes held by the chunks, capacities and allocator overhead
    /// included.
    pub fn heap_bytes(&self) -> usize {
        use super::mem::block;
        block(self.closed.capacity() * std::mem::size_of::<ClosedChunk>())
            + block(self.mapped.packed_bytes())
            + self
                .closed
                .iter()
                .map(|c| block(c.bytes().len()))
                .sum::<usize>()
            + self.head.as_ref().map_or(0, |h| block(h.heap_bytes()))
            + self.hist.as_ref().map_or(0, |h| h.heap_bytes())
    }

    /// Drops whole chunks whose newest sample is older than `cutoff`; returns
    /// how many were dropped. A chunk straddling the cutoff is kept whole.
    pub fn truncate(&mut self, cutoff: i64) -> usize {
        let mut hist_gone = 0;
        if let Some(h) = &mut self.hist {
            hist_gone = h.truncate(cutoff);
            if h.is_empty() {
                self.hist = None;
            }
        }
        hist_gone + self.truncate_floats(cutoff)
    }

    fn truncate_floats(&mut self, cutoff: i64) -> usize {
        // Chunks in the files know their end exactly.
        let gone = self.mapped.truncate_before(cutoff);
        if !self.mapped.is_empty() {
            return gone;
        }
        gone + self.truncate_memory(cutoff)
    }

    fn truncate_memory(&mut self, cutoff: i64) -> usize {
        // Chunks whose upper bound is below the cutoff go for sure; the first
        // one past that may still end before the cutoff (a gap in the data):
        // decode it to know.
        let bounds = self.bounds();
        let mut dropped = 0;
        let mut first_kept = None;
        for b in bounds {
            if b.hi >= cutoff {
                first_kept = Some(b);
                break;
            }
            dropped += 1;
        }
        if let Some(b) = first_kept {
            if b.lo < cutoff
                && !b.exact_hi
                && self
                    .closed
                    .get(dropped)
                    .is_some_and(|c| c.max_time() < cutoff)
            {
                dropped += 1;
            }
        }
        let closed_drop = dropped.min(self.closed.len());
        if closed_drop > 0 {
            self.closed.drain(..closed_drop);
            self.closed.shrink_to_fit();
        }
        if dropped > closed_drop {
            self.head = None;
        }
        dropped
    }

    /// Whether some sample lies in `[mint, maxt]`; decodes at most the chunks
    /// whose bounds do not settle it.
    pub fn has_sample_in(&self, disk: Option<&HeadChunks>, mint: i64, maxt: i64) -> bool {
        if self
            .hist
            .as_ref()
            .is_some_and(|h| h.has_sample_in(disk, mint, maxt))
        {
            return true;
        }
        for m in self.mapped_in(mint, maxt) {
            if mint <= m.mint || m.maxt <= maxt {
                return true;
            }
            let data = disk.and_then(|d| d.read(m.r)).unwrap_or_default();
            if ChunkIter::new(&data).any(|(t, _)| mint <= t && t <= maxt) {
                return true;
            }
        }
        self.chunks_in(mint, maxt).any(|(b, iter)| {
            (mint <= b.lo && b.lo <= maxt)
                || (b.exact_hi && mint <= b.hi && b.hi <= maxt)
                || iter.into_iter().any(|(t, _)| mint <= t && t <= maxt)
        })
    }

    /// Decoded samples in `[mint, maxt]`, in time order.
    pub fn samples_in(
        &self,
        disk: Option<&HeadChunks>,
        mint: i64,
        maxt: i64,
        out: &mut Vec<(i64, f64)>,
    ) {
        for m in self.mapped_in(mint, maxt) {
            let Some(data) = disk.and_then(|d| d.read(m.r)) else {
                continue;
            };
            let whole = mint <= m.mint && m.maxt <= maxt;
            extend_in(out, ChunkIter::new(&data), whole, mint, maxt);
        }
        for (b, iter) in self.chunks_in(mint, maxt) {
            extend_in(out, iter, mint <= b.lo && b.hi <= maxt, mint, maxt);
        }
    }

    /// Chunks in the files overlapping the range, oldest first.
    fn mapped_in(&self, mint: i64, maxt: i64) -> Vec<MappedChunk> {
        self.mapped.overlapping(mint, maxt)
    }

    /// Full chunks still in memory, oldest first: time span and bytes
    /// (for writing them to the head chunk files).
    pub fn unwritten(&self) -> impl Iterator<Item = (i64, i64, &[u8])> + '_ {
        self.closed
            .iter()
            .map(|c| (c.min_time(), c.max_time(), c.bytes()))
    }

    /// Replaces the oldest in-memory full chunks by their written copies,
    /// as long as they are still the same chunks (retention may have
    /// dropped some meanwhile). Returns how many were replaced.
    pub fn mark_written(&mut self, written: &[MappedChunk]) -> usize {
        let mut n = 0;
        for w in written {
            match self.closed.get(n) {
                Some(c) if c.min_time() == w.mint => n += 1,
                _ => break,
            }
        }
        if n > 0 {
            self.closed.drain(..n);
            // Usually empty now: give its block back rather than keep a
            // one-slot buffer per series until the next cut.
            self.closed.shrink_to_fit();
            self.add_mapped(&written[..n]);
        }
        n
    }

    /// Appends chunks (newer than every mapped one) to `mapped`.
    pub fn add_mapped(&mut self, add: &[MappedChunk]) {
        self.mapped.extend(add);
    }

    /// Time bounds of every in-memory chunk, oldest first. A closed chunk's upper bound
    /// is one before the next chunk's first sample (its samples are all
    /// older); only the head chunk's is its exact last sample.
    fn bounds(&self) -> impl Iterator<Item = ChunkBounds> + '_ {
        let head_lo = self.head.as_ref().map(HeadChunk::min_time);
        let closed = self.closed.iter().enumerate().map(move |(i, c)| {
            let next_lo = match self.closed.get(i + 1) {
                Some(n) => Some(n.min_time()),
                None => head_lo,
            };
            match next_lo {
                Some(n) => ChunkBounds {
                    lo: c.min_time(),
                    hi: n.saturating_sub(1),
                    exact_hi: false,
                },
                // Unreachable while the invariant holds; decode to be exact.
                None => ChunkBounds {
                    lo: c.min_time(),
                    hi: c.max_time(),
                    exact_hi: true,
                },
            }
        });
        let head = self.head.as_ref().map(|h| ChunkBounds {
            lo: h.min_time(),
            hi: h.max_time(),
            exact_hi: true,
        });
        closed.chain(head)
    }

    /// Chunks overlapping the range, oldest first, with their bounds.
    fn chunks_in(
        &self,
        mint: i64,
        maxt: i64,
    ) -> impl Iterator<Item = (ChunkBounds, super::chunk::ChunkIter<'_>)> + '_ {
        let iters = self
            .closed
            .iter()
            .map(ClosedChunk::iter)
            .chain(self.head.iter().map(HeadChunk::iter));
        self.bounds()
            .zip(iters)
            .filter(move |(b, _)| b.lo <= maxt && b.hi >= mint)
    }
}

/// Adds a chunk's samples in `[mint, maxt]` (all of them when `whole`).
fn extend_in(out: &mut Vec<(i64, f64)>, iter: ChunkIter<'_>, whole: bool, mint: i64, maxt: i64) {
    if whole {
        out.extend(iter);
    } else {
        out.extend(
            iter.skip_while(|(t, _)| *t < mint)
                .take_while(|(t, _)| *t <= maxt),
        );
    }
}

/// A chunk's time bounds: `lo` is its first sample, `hi` an upper bound on
/// its last one (exact when `exact_hi`).
#[derive(Clone, Copy, Debug)]
struct ChunkBounds {
    lo: i64,
    hi: i64,
    exact_hi: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::STALE_NAN;

    #[test]
    fn append_rules_match_prometheus() {
        let mut s = SeriesChunks::default();
        assert_eq!(s.append(100, 1.0, 120), Ok(Appended::Stored { cut: false }));
        assert_eq!(s.append(100, 1.0, 120), Ok(Appended::Duplicate));
        assert_eq!(
            s.append(100, 2.0, 120),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!(s.append(99, 1.0, 120), Err(AppendError::OutOfOrder));
        assert_eq!(
            s.append(200, STALE_NAN, 120),
            Ok(Appended::Stored { cut: false })
        );
        // A stale marker is not a duplicate of a plain NaN: bits are compared.
        assert_eq!(
            s.append(200, f64::NAN, 120),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!(s.append(200, STALE_NAN, 120), Ok(Appended::Duplicate));
        // 0.0 and -0.0 compare equal as floats but differ in bits.
        assert_eq!(s.append(300, 0.0, 120), Ok(Appended::Stored { cut: false }));
        assert_eq!(
            s.append(300, -0.0, 120),
            Err(AppendError::DuplicateTimestamp)
        );
        let mut out = Vec::new();
        s.samples_in(None, i64::MIN, i64::MAX, &mut out);
        let bits: Vec<(i64, u64)> = out.iter().map(|(t, v)| (*t, v.to_bits())).collect();
        assert_eq!(
            bits,
            [(100, 1f64.to_bits()), (200, STALE_NAN.to_bits()), (300, 0)]
        );
    }

    #[test]
    fn cuts_chunks_and_truncates_whole_chunks() {
        let mut s = SeriesChunks::default();
        for i in 0..250 {
            let r = s.append(i * 10, i as f64, 120).unwrap();
            assert_eq!(
                r,
                Appended::Stored {
                    cut: i == 120 || i == 240
                }
            );
        }
        assert_eq!(s.num_chunks(), 3);
        assert_eq!(s.closed[0].num_samples(), 120);
        assert_eq!((s.min_time(), s.max_time()), (Some(0), Some(2490)));
        let mut out = Vec::new();
        s.samples_in(None, 1195, 1215, &mut out);
        assert_eq!(out, [(1200, 120.0), (1210, 121.0)]);
        assert!(s.has_sample_in(None, 1195, 1205));
        assert!(!s.has_sample_in(None, 1201, 1209));
        // Chunk 0 holds 0..=1190: a cutoff inside chunk 1 drops only chunk 0.
        assert_eq!(s.truncate(1500), 1);
        assert_eq!(s.min_time(), Some(1200));
        assert_eq!(s.truncate(2500), 2);
        assert!(!s.has_samples());
        assert_eq!(s.num_chunks(), 0);
    }

    #[test]
    fn written_chunks_leave_only_their_packed_references() {
        let mut s = SeriesChunks::default();
        for i in 0..250 {
            s.append(i * 1000, i as f64, 120).unwrap();
        }
        let written: Vec<MappedChunk> = s
            .unwritten()
            .enumerate()
            .map(|(i, (mint, maxt, _))| MappedChunk {
                r: 1 << 32 | (8 + 300 * i as u64),
                mint,
                maxt,
            })
            .collect();
        assert_eq!(written.len(), 2);
        let before = s.heap_bytes();
        assert_eq!(s.mark_written(&written), 2);
        assert_eq!(s.closed.capacity(), 0, "no empty buffer kept per series");
        assert_eq!(s.mapped.to_vec(), written);
        assert_eq!(s.num_chunks(), 3);
        assert_eq!(s.min_time(), Some(0));
        assert!(s.heap_bytes() < before);
        // Appends go on after the written chunks; truncation drops them by
        // their exact end.
        assert_eq!(
            s.append(249_000, 1.0, 120),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!(s.truncate(119_001), 1);
        assert_eq!(s.min_time(), Some(120_000));
    }

    #[test]
    fn gaps_between_chunks_are_decoded_not_guessed() {
        let mut s = SeriesChunks::default();
        for t in [0, 1, 2, 3, 1000, 1001, 1002, 1003, 2000] {
            s.append(t, t as f64, 4).unwrap();
        }
        assert_eq!(s.num_chunks(), 3);
        // Chunk 0's bound reaches 999, its data ends at 3.
        assert!(!s.has_sample_in(None, 10, 900));
        assert!(s.has_sample_in(None, 3, 900));
        let mut out = Vec::new();
        s.samples_in(None, 2, 999, &mut out);
        assert_eq!(out, [(2, 2.0), (3, 3.0)]);
        assert_eq!(s.truncate(500), 1);
        assert_eq!(s.min_time(), Some(1000));
        assert_eq!(s.truncate(1003), 0, "1003 is still needed");
        assert_eq!(s.truncate(1004), 1);
        assert_eq!((s.min_time(), s.max_time()), (Some(2000), Some(2000)));
    }
}
