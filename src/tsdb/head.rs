//! The head: series sharded by label hash, each with its own lock.
//!
//! Concurrency design. The append path (`append` with a cached ref) takes one
//! shard's read lock and the series' own mutex, nothing global: scrape tasks
//! on different series never contend on a lock. Per-shard atomics hold the
//! counters for the same reason. Global locks exist only where Prometheus
//! has them too, on series creation/removal and on queries: the symbol table
//! and the postings index.
//!
//! Lock order (never taken the other way round): shard → series → (nothing);
//! shard → symbols; shard → index; index → symbols. Nothing is locked while
//! holding the symbol table's lock, and a series lock is never held while
//! taking the symbols or index lock.
//!
//! A ref is `(creation counter << SHARD_BITS) | shard`, so the shard of a
//! ref is known without a second map, refs are never reused, and postings
//! sorted by ref are sorted by creation.

use super::chunk::{ClosedChunk, HeadChunk};
use super::head_chunks::{
    hist_ref, ChunkToWrite, HeadChunks, HeadChunksError, MappedChunk, ENCODING_XOR,
};
use super::index::Postings;
use super::intern::{Sym, Symbols};
use super::mem::{block, hashmap_bytes, IdMap};
use super::series::{Appended, Series, SeriesChunks, NOT_LOGGED};
use super::series_hist::{HistChunks, HistValue};
use super::storage::{CommitError, HeadAppender, PendingSample};
use super::wal::{self, SeriesList, Wal};
use super::{
    AppendError, Cardinality, HeadOptions, HeadStats, SeriesData, SeriesRef, TruncateStats,
};

/// See [`Head::handle`].
#[derive(Clone)]
pub struct SeriesHandle {
    r: SeriesRef,
    pub(crate) series: Arc<Series>,
}

impl SeriesHandle {
    pub fn series_ref(&self) -> SeriesRef {
        self.r
    }

    /// Asks the CPU for the series' memory (its lock and open chunk state)
    /// ahead of an append: a batch's appends are bound by those cache
    /// misses, and asking a few samples early lets them overlap.
    #[inline]
    pub fn prefetch(&self) {
        prefetch(Arc::as_ptr(&self.series).cast());
        prefetch(std::ptr::from_ref(&self.series.data).cast());
    }
}
use crate::model::{Label, Labels, Matcher};
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};

/// Told about every sample the head stores, after it is stored (remote
/// write's queues use it the way Prometheus' WAL watcher reads the WAL).
///
/// Called on the appending thread with no head lock held, so an observer may
/// call back into the head (e.g. [`Head::series_labels`] on a ref it has not
/// seen yet). It must not block: the appender is a scrape, a rule
/// evaluation or an HTTP request. Rejected samples (out of order, out of
/// bounds) and exact duplicates are not reported, as they are not in the
/// WAL either.
pub trait AppendObserver: Send + Sync {
    fn on_append(&self, head: &Head, r: SeriesRef, t: i64, v: f64);
    /// A stored native-histogram sample (ignored unless overridden).
    fn on_append_histogram(&self, _head: &Head, _r: SeriesRef, _t: i64, _v: &HistValue) {}
}

/// Holds the observer; a `OnceLock` so the check on each append is one
/// atomic load and no head without an observer pays more.
#[derive(Default)]
struct ObserverSlot(OnceLock<Arc<dyn AppendObserver>>);

impl std::fmt::Debug for ObserverSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "ObserverSlot(set)"
        } else {
            "ObserverSlot(empty)"
        })
    }
}

/// A truncation walks every series at least once in this many calls, even
/// when nothing looks droppable (see [`Head::truncate`]).
const FULL_WALK_EVERY: u32 = 10;

pub(crate) const SHARD_BITS: u32 = 9;
const SHARDS: usize = 1 << SHARD_BITS;
const SHARD_MASK: u64 = SHARDS as u64 - 1;

#[derive(Debug, Default)]
struct ShardMaps {
    by_ref: IdMap<u64, Arc<Series>>,
    /// Label hash → ref. A second series with the same 64-bit hash goes to
    /// `collisions`, so the common case costs one map entry.
    by_hash: IdMap<u64, u64>,
    collisions: IdMap<u64, Vec<u64>>,
}

impl ShardMaps {
    fn candidates(&self, hash: u64) -> impl Iterator<Item = (u64, &Arc<Series>)> {
        let first = self.by_hash.get(&hash).into_iter();
        let rest = self.collisions.get(&hash).into_iter().flatten();
        first
            .chain(rest)
            .filter_map(|r| Some((*r, self.by_ref.get(r)?)))
    }

    fn insert(&mut self, r: u64, series: Arc<Series>) {
        let hash = series.hash;
        match self.by_hash.entry(hash) {
            std::collections::hash_map::Entry::Occupied(_) => {
                self.collisions.entry(hash).or_default().push(r)
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(r);
            }
        }
        self.by_ref.insert(r, series);
    }

    fn remove(&mut self, r: u64) -> Option<Arc<Series>> {
        let series = self.by_ref.remove(&r)?;
        let hash = series.hash;
        if self.by_hash.get(&hash) == Some(&r) {
            self.by_hash.remove(&hash);
            // Promote a colliding series, if any, to the main entry.
            if let Some(list) = self.collisions.get_mut(&hash) {
                if let Some(next) = list.pop() {
                    self.by_hash.insert(hash, next);
                }
                if list.is_empty() {
                    self.collisions.remove(&hash);
                }
            }
        } else if let Some(list) = self.collisions.get_mut(&hash) {
            list.retain(|x| *x != r);
            if list.is_empty() {
                self.collisions.remove(&hash);
            }
        }
        Some(series)
    }

    fn memory_bytes(&self) -> usize {
        hashmap_bytes::<u64, Arc<Series>>(self.by_ref.capacity())
            + hashmap_bytes::<u64, u64>(self.by_hash.capacity())
            + hashmap_bytes::<u64, Vec<u64>>(self.collisions.capacity())
            + self
                .collisions
                .values()
                .map(|v| v.capacity() * 8)
                .sum::<usize>()
    }
}

/// One stripe, cache-line aligned so stripes used by different threads do
/// not share lines.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Shard {
    maps: RwLock<ShardMaps>,
    appended: AtomicU64,
    out_of_order: AtomicU64,
    duplicates: AtomicU64,
    out_of_bounds: AtomicU64,
}

/// The in-memory head. `Send + Sync`; share it with `Arc`.
#[derive(Debug)]
pub struct Head {
    samples_per_chunk: usize,
    shards: Box<[Shard]>,
    symbols: RwLock<Symbols>,
    index: RwLock<Postings>,
    next_id: AtomicU64,
    /// Truncation generation, see [`Series::created_gen`].
    gen: AtomicU32,
    /// Samples older than this are out of bounds (raised by `truncate`).
    cutoff: AtomicI64,
    min_time: AtomicI64,
    max_time: AtomicI64,
    series_created: AtomicU64,
    series_removed: AtomicU64,
    /// Whether the last truncation walk left empty series for the next
    /// one: without leftovers, and with no sample older than the cutoff, a
    /// truncation has nothing to do and skips the walk over every series.
    empty_left: AtomicBool,
    /// Truncations since the last full walk (one in [`FULL_WALK_EVERY`]
    /// walks anyway, covering a `min_time` an append raced with).
    skipped_walks: AtomicU32,
    observer: ObserverSlot,
    /// The write-ahead log, once attached (after replay).
    wal: OnceLock<Arc<Wal>>,
    /// Commits hold it shared across their WAL write and head update; a
    /// checkpoint takes it exclusively to cut the segment, so every batch
    /// in the segments it replaces is already in the head.
    commit_lock: RwLock<()>,
    /// Set while the WAL is replayed: the observer is not told about
    /// samples that were already sent before the restart.
    replaying: AtomicBool,
    /// Full chunks go to these files (once attached, before replay).
    chunk_files: OnceLock<Arc<HeadChunks>>,
    /// Series that cut a chunk since the last [`Head::write_chunks`].
    chunks_pending: Mutex<Vec<u64>>,
    /// One [`Head::write_chunks`] pass at a time.
    chunk_writer: Mutex<()>,
    /// Scraped exemplars (in memory only).
    exemplars: crate::tsdb::exemplars::ExemplarStore,
}

impl Default for Head {
    fn default() -> Self {
        Head::new(HeadOptions::default())
    }
}

/// Whether the interned labels `ids` spell exactly `labels`.
fn same_labels<'a>(
    ids: &[Sym],
    n: usize,
    mut pairs: impl Iterator<Item = (&'a str, &'a str)>,
    syms: &Symbols,
) -> bool {
    ids.len() == n * 2
        && ids.chunks_exact(2).all(|p| {
            pairs.next().is_some_and(|(name, value)| {
                syms.resolve(p[0]) == Some(name) && syms.resolve(p[1]) == Some(value)
            })
        })
}

/// The label set of a live series; `None` if retention removed it (its ids
/// may then name other strings). The caller holds the symbols read lock,
/// which keeps ids from being recycled while it checks and resolves.
fn resolve_labels(s: &Series, syms: &Symbols) -> Option<Labels> {
    if s.removed.load(std::sync::atomic::Ordering::Acquire) {
        return None;
    }
    let mut v = Vec::with_capacity(s.labels.len() / 2);
    for p in s.labels.chunks_exact(2) {
        v.push(Label::new(syms.resolve(p[0])?, syms.resolve(p[1])?));
    }
    Some(Labels::from_sorted_unchecked(v))
}

impl Head {
    pub fn new(opts: HeadOptions) -> Head {
        Head {
            samples_per_chunk: opts.samples_per_chunk.clamp(1, usize::from(u16::MAX)),
            shards: (0..SHARDS).map(|_| Shard::default()).collect(),
            symbols: RwLock::new(Symbols::new()),
            index: RwLock::new(Postings::new()),
            next_id: AtomicU64::new(1),
            gen: AtomicU32::new(0),
            cutoff: AtomicI64::new(i64::MIN),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            series_created: AtomicU64::new(0),
            series_removed: AtomicU64::new(0),
            empty_left: AtomicBool::new(false),
            skipped_walks: AtomicU32::new(0),
            observer: ObserverSlot::default(),
            wal: OnceLock::new(),
            commit_lock: RwLock::new(()),
            replaying: AtomicBool::new(false),
            chunk_files: OnceLock::new(),
            chunks_pending: Mutex::new(Vec::new()),
            chunk_writer: Mutex::new(()),
            exemplars: Default::default(),
        }
    }

    /// The exemplar store beside the head.
    pub fn exemplars(&self) -> &crate::tsdb::exemplars::ExemplarStore {
        &self.exemplars
    }

    /// A new batch; see [`HeadAppender`].
    pub fn appender(&self) -> HeadAppender<'_> {
        self.appender_with(Vec::new())
    }

    /// A new batch collecting into `buf` (emptied first): a buffer handed
    /// back by [`HeadAppender::commit_reuse`] keeps its capacity.
    pub(crate) fn appender_with(&self, mut buf: Vec<PendingSample>) -> HeadAppender<'_> {
        buf.clear();
        HeadAppender {
            head: self,
            samples: buf,
            newest: None,
            hists: Vec::new(),
            hist_last: Default::default(),
        }
    }

    /// Attaches the WAL every later commit writes to (once; call after
    /// [`Head::replay`]).
    pub fn attach_wal(&self, wal: Arc<Wal>) -> Result<(), Arc<Wal>> {
        self.wal.set(wal)
    }

    pub fn wal(&self) -> Option<&Arc<Wal>> {
        self.wal.get()
    }

    /// Whether a sample may be appended to `h` at `t`: `Ok(Some(tail))` to
    /// store it, `Ok(None)` for an exact duplicate (nothing to do), or the
    /// rejection, counted here for every writer. `tail` is the address of
    /// the series' open chunk's last byte as seen now, for the commit to
    /// prefetch ([`SeriesChunks::tail_address`]).
    pub(crate) fn check_append(
        &self,
        h: &SeriesHandle,
        t: i64,
        v: f64,
    ) -> Result<Option<usize>, AppendError> {
        let shard = self.shard(h.r.0);
        let res = if t < self.cutoff.load(Relaxed) {
            Err(AppendError::OutOfBounds)
        } else if t > h.series.newest.load(Relaxed) {
            // After the newest sample: appendable, no lock needed (a locked
            // instruction on a cold series would wait for its cache line,
            // where a load lets the next samples' misses overlap). The
            // commit checks again under the lock.
            if h.series.removed.load(std::sync::atomic::Ordering::Acquire) {
                return Err(AppendError::UnknownSeries);
            }
            return Ok(Some(h.series.tail.load(Relaxed)));
        } else {
            let data = h.series.data.lock();
            if h.series.removed.load(std::sync::atomic::Ordering::Acquire) {
                return Err(AppendError::UnknownSeries);
            }
            data.appendable(t, v)
                .map(|ok| ok.then(|| data.tail_address()))
        };
        if let Err(e) = res {
            self.count_rejection(shard, e);
        }
        res
    }

    /// Counts a rejection of a sample for `r` decided outside the head.
    pub(crate) fn count_rejected(&self, r: SeriesRef, e: AppendError) {
        self.count_rejection(self.shard(r.0), e);
    }

    pub(crate) fn count_rejection_for(&self, r: u64, e: AppendError) {
        self.count_rejection(self.shard(r), e);
    }

    fn count_rejection(&self, shard: &Shard, e: AppendError) {
        let counter = match e {
            AppendError::OutOfOrder => &shard.out_of_order,
            AppendError::DuplicateTimestamp => &shard.duplicates,
            AppendError::OutOfBounds => &shard.out_of_bounds,
            AppendError::UnknownSeries
            | AppendError::EmptyLabels
            | AppendError::InvalidHistogram => return,
        };
        counter.fetch_add(1, Relaxed);
    }

    /// Logs a batch with one WAL write, then applies it.
    pub(crate) fn commit_batch(&self, samples: &[PendingSample]) -> Result<(), CommitError> {
        if samples.is_empty() {
            return Ok(());
        }
        let _shared = self.commit_lock.read();
        if let Some(wal) = self.wal.get() {
            if let Err(e) = self.log_batch(wal, samples) {
                tracing::error!(error = %e, samples = samples.len(), "WAL write failed; batch not committed");
                return Err(CommitError::Wal(e.to_string()));
            }
        }
        // Counted for the batch rather than per sample: the counters and
        // time bounds are shared cache lines.
        // (Replayed samples are neither counted nor observed: see `account`.)
        let live = !self.replaying.load(Relaxed);
        let observer = self.observer.0.get().filter(|_| live);
        let (mut stored, mut tmin, mut tmax) = (0u64, i64::MAX, i64::MIN);
        // Series that cut a chunk: the chunk writer moves it to the files.
        let mut cut_refs: Vec<u64> = Vec::new();
        let to_files = self.chunk_files.get().is_some();
        for (i, p) in samples.iter().enumerate() {
            // The loop is bound by memory latency: each sample touches its
            // series and the end of its open chunk, both cold with many
            // series. Asking for a later sample's early lets the misses
            // overlap.
            if let Some(ahead) = samples.get(i + PREFETCH_AHEAD) {
                prefetch(std::ptr::from_ref(&ahead.series.data).cast());
                prefetch(ahead.tail as *const u8);
            }
            let res = {
                let mut data = p.series.data.lock();
                if p.series.removed.load(std::sync::atomic::Ordering::Acquire) {
                    continue;
                }
                let res = data.append(p.t, p.v, self.samples_per_chunk);
                if let Ok(Appended::Stored { .. }) = res {
                    p.series.stored_float(p.t, &data);
                }
                res
            };
            match res {
                Ok(Appended::Stored { cut }) => {
                    if cut && to_files {
                        cut_refs.push(p.r.0);
                    }
                    stored += 1;
                    tmin = tmin.min(p.t);
                    tmax = tmax.max(p.t);
                    if let Some(o) = observer {
                        o.on_append(self, p.r, p.t, p.v);
                    }
                }
                Ok(Appended::Duplicate) => {}
                // Another batch may have written the series since the check.
                Err(e) => self.count_rejection(self.shard(p.r.0), e),
            }
        }
        if stored > 0 {
            if live {
                self.shard(samples[0].r.0)
                    .appended
                    .fetch_add(stored, Relaxed);
            }
            self.widen_bounds(tmin, tmax);
        }
        if !cut_refs.is_empty() {
            self.chunks_pending.lock().extend(cut_refs);
        }
        Ok(())
    }

    /// Notes that series `r` cut a histogram chunk (to be written to the
    /// head chunk files).
    pub(crate) fn note_hist_cut(&self, r: SeriesRef, cut: bool) {
        if cut && self.chunk_files.get().is_some() {
            self.chunks_pending.lock().push(r.0);
        }
    }

    /// Widens the head's time bounds to `[tmin, tmax]`.
    pub(super) fn widen_bounds(&self, tmin: i64, tmax: i64) {
        // Read first: the common case changes nothing and keeps the shared
        // cache line clean.
        if tmax > self.max_time.load(Relaxed) {
            self.max_time.fetch_max(tmax, Relaxed);
        }
        if tmin < self.min_time.load(Relaxed) {
            self.min_time.fetch_min(tmin, Relaxed);
        }
    }

    /// One WAL write for a batch: series records for its series the log
    /// does not hold yet, then its samples, each value encoded against
    /// its series' previous one in the segment written to.
    ///
    /// A series' record always precedes its first sample in the log: the
    /// `logged` flag is set only after a write holding the record
    /// returned, so a batch that reads it set writes after that record; a
    /// batch that reads it unset logs the record again, which replay takes
    /// as a no-op. (Before, a series created by one batch and first
    /// committed by another could reach the log after its sample.)
    fn log_batch(&self, wal: &Wal, samples: &[PendingSample]) -> Result<(), wal::WalError> {
        let mut new: Vec<&PendingSample> = samples
            .iter()
            .filter(|p| !p.series.logged.load(std::sync::atomic::Ordering::Acquire))
            .collect();
        let mut series_payload = Vec::new();
        if !new.is_empty() {
            new.sort_unstable_by_key(|p| p.r.0);
            new.dedup_by_key(|p| p.r.0);
            let syms = self.symbols.read();
            let labels: Vec<(u64, Labels)> = new
                .iter()
                .filter_map(|p| Some((p.r.0, resolve_labels(&p.series, &syms)?)))
                .collect();
            drop(syms);
            wal::encode_series(&mut series_payload, labels.iter().map(|(r, l)| (*r, l)));
        }
        let t0 = samples[0].t;
        let same_time = samples.iter().all(|p| p.t == t0);
        let bound = series_payload.len() + wal::samples_bound(samples.len(), same_time);
        let res = wal.log_batch(
            bound,
            |seg, f| {
                if !series_payload.is_empty() {
                    f.payload().extend_from_slice(&series_payload);
                    f.finish(wal::Kind::Series);
                }
                let mut enc = wal::SamplesEncoder::new(f.payload(), samples.len(), t0, same_time);
                for p in samples {
                    let s = &p.series;
                    let prev =
                        (s.wal_segment.load(Relaxed) == seg).then(|| s.wal_value.load(Relaxed));
                    let bits = p.v.to_bits();
                    enc.push(p.r.0, p.t, bits, prev);
                    s.wal_segment.store(seg, Relaxed);
                    s.wal_value.store(bits, Relaxed);
                }
                f.finish(wal::Kind::Samples);
            },
            || {
                // Readers never see this batch: what its series last
                // logged is no longer known.
                for p in samples {
                    p.series.wal_segment.store(NOT_LOGGED, Relaxed);
                }
            },
        );
        if res.is_ok() {
            for p in new {
                p.series
                    .logged
                    .store(true, std::sync::atomic::Ordering::Release);
            }
        }
        res
    }

    /// Installs the append observer. There is at most one for the head's
    /// life (the remote-write manager, which swaps its own queues on
    /// reload); a second call is refused and hands the observer back.
    pub fn set_append_observer(
        &self,
        o: Arc<dyn AppendObserver>,
    ) -> Result<(), Arc<dyn AppendObserver>> {
        self.observer.0.set(o)
    }

    pub(crate) fn append_observer(&self) -> Option<&Arc<dyn AppendObserver>> {
        self.observer.0.get()
    }

    /// The shard for a ref or label hash (their low bits). The mask keeps the
    /// index below `SHARDS`, the length `new` gives the slice, so indexing
    /// cannot fail whatever the caller passes.
    fn shard(&self, key: u64) -> &Shard {
        &self.shards[(key & SHARD_MASK) as usize]
    }

    fn find(&self, maps: &ShardMaps, hash: u64, labels: &Labels) -> Option<u64> {
        self.find_pairs(
            maps,
            hash,
            labels.len(),
            labels.iter().map(|l| (l.name.as_str(), l.value.as_str())),
        )
    }

    /// [`Self::find`] for labels given as `n` sorted pairs.
    fn find_pairs<'a>(
        &self,
        maps: &ShardMaps,
        hash: u64,
        n: usize,
        pairs: impl Iterator<Item = (&'a str, &'a str)> + Clone,
    ) -> Option<u64> {
        let mut candidates = maps.candidates(hash).peekable();
        candidates.peek()?;
        let syms = self.symbols.read();
        candidates
            .find(|(_, s)| same_labels(&s.labels, n, pairs.clone(), &syms))
            .map(|(r, _)| r)
    }

    /// Finds or creates the series; `bool` is true when created. An empty
    /// label set is accepted here as a series no valid selector can reach;
    /// use [`Head::try_get_or_create`] to reject it as Prometheus does.
    pub fn get_or_create(&self, labels: &Labels) -> (SeriesRef, bool) {
        let hash = labels.hash64();
        let shard = self.shard(hash);
        if let Some(r) = self.find(&shard.maps.read(), hash, labels) {
            return (SeriesRef(r), false);
        }
        let mut maps = shard.maps.write();
        if let Some(r) = self.find(&maps, hash, labels) {
            return (SeriesRef(r), false);
        }
        let r = (self.next_id.fetch_add(1, Relaxed) << SHARD_BITS) | (hash & SHARD_MASK);
        self.insert_series(&mut maps, r, hash, labels);
        drop(maps);
        (SeriesRef(r), true)
    }

    /// Creates the series of a WAL series record, as a batch: each under its
    /// logged reference when that is free and belongs to its labels' shard
    /// (so later records keep meaning the same series), otherwise under a
    /// new one; labels the head already holds keep their series. Returns,
    /// per entry with labels, the logged reference and the head's series
    /// for it. The symbol table and the postings index are locked once for
    /// the batch instead of once per series.
    pub(crate) fn create_logged(&self, list: &SeriesList) -> Vec<(u64, SeriesHandle)> {
        let mut out = Vec::with_capacity(list.len());
        let mut fresh = Vec::with_capacity(list.len());
        for (r, labels) in list.iter() {
            if labels.is_empty() {
                continue;
            }
            let hash = labels.hash64();
            // The shard's read lock is released before `handle` takes it again.
            let found = {
                let maps = self.shard(hash).maps.read();
                self.find_pairs(&maps, hash, labels.len(), labels.iter())
            };
            match found {
                Some(e) => out.extend(self.handle(SeriesRef(e)).map(|h| (r, h))),
                None => fresh.push((r, hash, labels)),
            }
        }
        if fresh.is_empty() {
            return out;
        }
        let mut ids: Vec<Option<Box<[Sym]>>> = {
            let mut syms = self.symbols.write();
            fresh
                .iter()
                .map(|(_, _, labels)| {
                    Some(
                        labels
                            .iter()
                            .flat_map(|(name, value)| [syms.acquire(name), syms.acquire(value)])
                            .collect(),
                    )
                })
                .collect()
        };
        let gen = self.gen.load(Relaxed);
        let mut added = Vec::with_capacity(fresh.len());
        for ((r, hash, labels), ids) in fresh.iter().zip(&mut ids) {
            let shard = self.shard(*hash);
            let mut maps = shard.maps.write();
            // The same labels twice in one record.
            if let Some(e) = self.find_pairs(&maps, *hash, labels.len(), labels.iter()) {
                drop(maps);
                out.extend(self.handle(SeriesRef(e)).map(|h| (*r, h)));
                continue;
            }
            let Some(ids) = ids.take() else { continue };
            let logged = *r & SHARD_MASK == *hash & SHARD_MASK
                && *r >> SHARD_BITS != 0
                && !maps.by_ref.contains_key(r);
            let nr = if logged {
                self.next_id.fetch_max((*r >> SHARD_BITS) + 1, Relaxed);
                *r
            } else {
                (self.next_id.fetch_add(1, Relaxed) << SHARD_BITS) | (*hash & SHARD_MASK)
            };
            let series = Arc::new(Series::new(ids, *hash, gen));
            // Read from the log: its record is there.
            series
                .logged
                .store(logged, std::sync::atomic::Ordering::Release);
            maps.insert(nr, series.clone());
            drop(maps);
            self.series_created.fetch_add(1, Relaxed);
            out.push((
                *r,
                SeriesHandle {
                    r: SeriesRef(nr),
                    series: series.clone(),
                },
            ));
            added.push((nr, series));
        }
        // Ids of entries that found their series after all.
        if ids.iter().any(Option::is_some) {
            let mut syms = self.symbols.write();
            for id in ids.iter().flatten().flat_map(|b| b.iter()) {
                syms.release(*id);
            }
        }
        let batch: Vec<(u64, &[Sym])> = added.iter().map(|(r, s)| (*r, &s.labels[..])).collect();
        self.index.write().add_batch(&batch);
        out
    }

    /// The reference of an existing series.
    pub fn lookup(&self, labels: &Labels) -> Option<SeriesRef> {
        let hash = labels.hash64();
        self.find(&self.shard(hash).maps.read(), hash, labels)
            .map(SeriesRef)
    }

    fn insert_series(&self, maps: &mut ShardMaps, r: u64, hash: u64, labels: &Labels) {
        let ids: Box<[Sym]> = {
            let mut syms = self.symbols.write();
            labels
                .iter()
                .flat_map(|l| [syms.acquire(&l.name), syms.acquire(&l.value)])
                .collect()
        };
        self.index.write().add(r, &ids);
        maps.insert(r, Arc::new(Series::new(ids, hash, self.gen.load(Relaxed))));
        self.series_created.fetch_add(1, Relaxed);
        tracing::trace!(series = %labels, r, "created series");
    }

    /// Like [`Head::get_or_create`], but rejects an empty label set.
    pub fn try_get_or_create(&self, labels: &Labels) -> Result<(SeriesRef, bool), AppendError> {
        if labels.is_empty() {
            return Err(AppendError::EmptyLabels);
        }
        Ok(self.get_or_create(labels))
    }

    /// Appends one sample, with Prometheus' rules: out of bounds (older than
    /// the retention cutoff) is checked first, then order and duplicates.
    /// In memory only: it bypasses the WAL (replay and tests use it);
    /// writers take an [`Head::appender`].
    pub fn append(&self, r: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
        let shard = self.shard(r.0);
        if t < self.cutoff.load(Relaxed) {
            shard.out_of_bounds.fetch_add(1, Relaxed);
            return Err(AppendError::OutOfBounds);
        }
        let res = {
            let maps = shard.maps.read();
            let Some(series) = maps.by_ref.get(&r.0) else {
                return Err(AppendError::UnknownSeries);
            };
            let res = series.data.lock().append(t, v, self.samples_per_chunk);
            res
        };
        self.account(shard, r, t, v, res)
    }

    /// A direct handle on a series, for appenders that keep their own cache
    /// (the scrape loop): appending through it skips the reference lookup,
    /// which is most of the cost of an append on a large head.
    pub fn handle(&self, r: SeriesRef) -> Option<SeriesHandle> {
        self.series(r.0).map(|series| SeriesHandle { r, series })
    }

    /// [`Head::append`] through a handle (in memory only, like it). `UnknownSeries` when retention
    /// removed the series since the handle was taken.
    pub fn append_to(&self, h: &SeriesHandle, t: i64, v: f64) -> Result<(), AppendError> {
        let shard = self.shard(h.r.0);
        if t < self.cutoff.load(Relaxed) {
            shard.out_of_bounds.fetch_add(1, Relaxed);
            return Err(AppendError::OutOfBounds);
        }
        let res = {
            let mut data = h.series.data.lock();
            if h.series.removed.load(std::sync::atomic::Ordering::Acquire) {
                return Err(AppendError::UnknownSeries);
            }
            let res = data.append(t, v, self.samples_per_chunk);
            if let Ok(Appended::Stored { .. }) = res {
                h.series.stored_float(t, &data);
            }
            res
        };
        self.account(shard, h.r, t, v, res)
    }

    /// Counters and time bounds after one append attempt.
    fn account(
        &self,
        shard: &Shard,
        r: SeriesRef,
        t: i64,
        v: f64,
        res: Result<Appended, AppendError>,
    ) -> Result<(), AppendError> {
        match res {
            Ok(Appended::Stored { cut }) => {
                if cut && self.chunk_files.get().is_some() {
                    self.chunks_pending.lock().push(r.0);
                }
                // Replayed samples were counted (and observed) before the
                // restart, as Prometheus' counter does not count replay.
                if !self.replaying.load(Relaxed) {
                    shard.appended.fetch_add(1, Relaxed);
                    if let Some(o) = self.observer.0.get() {
                        o.on_append(self, r, t, v);
                    }
                }
                self.widen_bounds(t, t);
                Ok(())
            }
            Ok(Appended::Duplicate) => Ok(()),
            Err(e) => {
                self.count_rejection(shard, e);
                Err(e)
            }
        }
    }

    /// Held shared across a commit's WAL write and head update.
    pub(crate) fn commit_shared(&self) -> parking_lot::RwLockReadGuard<'_, ()> {
        self.commit_lock.read()
    }

    /// A series' label set (`None` once retention removed it).
    pub(crate) fn labels_of(&self, s: &Series) -> Option<Labels> {
        resolve_labels(s, &self.symbols.read())
    }

    pub(crate) fn cutoff(&self) -> i64 {
        self.cutoff.load(Relaxed)
    }

    /// Counts stored samples and widens the time bounds (histogram appends).
    pub(crate) fn note_stored(&self, r: u64, n: u64, tmin: i64, tmax: i64) {
        if n == 0 {
            return;
        }
        if !self.replaying.load(Relaxed) {
            self.shard(r).appended.fetch_add(n, Relaxed);
        }
        self.widen_bounds(tmin, tmax);
    }

    fn series(&self, r: u64) -> Option<Arc<Series>> {
        self.shard(r).maps.read().by_ref.get(&r).cloned()
    }

    pub fn series_labels(&self, r: SeriesRef) -> Option<Labels> {
        let s = self.series(r.0)?;
        resolve_labels(&s, &self.symbols.read())
    }

    fn postings_for(&self, matchers: &[Matcher]) -> Vec<u64> {
        let index = self.index.read();
        let syms = self.symbols.read();
        index.select(matchers, &syms)
    }

    /// Series matching all matchers that have at least one sample in
    /// `[mint, maxt]`, with those samples, sorted by label set (as
    /// Prometheus' sorted `Select`).
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesData> {
        let mut found = Vec::new();
        for r in self.postings_for(matchers) {
            let Some(s) = self.series(r) else { continue };
            let mut samples = Vec::new();
            let mut histograms = Vec::new();
            {
                let data = s.data.lock();
                data.samples_in(self.chunk_files(), mint, maxt, &mut samples);
                data.histograms_in(self.chunk_files(), mint, maxt, &mut histograms);
            }
            if !samples.is_empty() || !histograms.is_empty() {
                found.push((s, samples, histograms));
            }
        }
        let mut out: Vec<SeriesData> = {
            let syms = self.symbols.read();
            found
                .into_iter()
                .filter_map(|(s, samples, histograms)| {
                    Some(SeriesData {
                        labels: resolve_labels(&s, &syms)?,
                        samples,
                        histograms,
                    })
                })
                .collect()
        };
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }

    /// Label sets of the series matching `matchers` with a sample in
    /// `[mint, maxt]`, sorted (`/api/v1/series`: no samples decoded beyond
    /// what settles the range).
    pub fn series_matching(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Labels> {
        let series = self.matching_series(matchers, mint, maxt);
        let mut out: Vec<Labels> = {
            let syms = self.symbols.read();
            series
                .iter()
                .filter_map(|s| resolve_labels(s, &syms))
                .collect()
        };
        out.sort();
        out
    }

    /// Number of stripes, for [`Head::snapshot_shard`].
    pub(crate) fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Every live series of stripe `i`: reference, labels, chunk bytes.
    pub(crate) fn snapshot_shard(&self, i: usize) -> Vec<(u64, Labels, Vec<Vec<u8>>)> {
        self.snapshot_shard_with(i, SeriesChunks::chunk_data)
    }

    /// Every live series of stripe `i`: reference, labels and what `f`
    /// takes from its chunks, by reference.
    pub(crate) fn snapshot_shard_with<T>(
        &self,
        i: usize,
        f: impl Fn(&SeriesChunks) -> T,
    ) -> Vec<(u64, Labels, T)> {
        let Some(shard) = self.shards.get(i) else {
            return Vec::new();
        };
        let series: Vec<(u64, Arc<Series>)> = shard
            .maps
            .read()
            .by_ref
            .iter()
            .map(|(r, s)| (*r, s.clone()))
            .collect();
        let syms = self.symbols.read();
        let mut out: Vec<_> = series
            .into_iter()
            .filter_map(|(r, s)| {
                let chunks = f(&s.data.lock());
                Some((r, resolve_labels(&s, &syms)?, chunks))
            })
            .collect();
        out.sort_unstable_by_key(|e| e.0);
        out
    }

    /// Whether the WAL is being replayed into the head.
    pub fn replaying(&self) -> bool {
        self.replaying.load(Relaxed)
    }

    pub(crate) fn set_replaying(&self, on: bool) {
        self.replaying.store(on, Relaxed);
    }

    /// Blocks commits while held (a checkpoint cuts the segment under it).
    pub(crate) fn exclusive(&self) -> parking_lot::RwLockWriteGuard<'_, ()> {
        self.commit_lock.write()
    }

    /// Whether `[mint, maxt]` covers every sample in the head, so label
    /// queries without matchers can answer from the index alone.
    fn covers_head(&self, mint: i64, maxt: i64) -> bool {
        mint <= self.min_time.load(Relaxed) && maxt >= self.max_time.load(Relaxed)
    }

    /// Series matching `matchers` with a sample in `[mint, maxt]`.
    fn matching_series(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<Arc<Series>> {
        self.postings_for(matchers)
            .into_iter()
            .filter_map(|r| self.series(r))
            .filter(|s| s.data.lock().has_sample_in(self.chunk_files(), mint, maxt))
            .collect()
    }

    fn resolve_sorted(syms: &RwLockReadGuard<'_, Symbols>, ids: HashSet<Sym>) -> Vec<String> {
        let mut out: Vec<String> = ids
            .into_iter()
            .filter_map(|id| syms.resolve(id).map(str::to_owned))
            .collect();
        out.sort_unstable();
        out
    }

    /// Cardinality figures for `/api/v1/status/tsdb`: the `limit` largest
    /// entries of each list, computed from the postings (no series walk).
    pub fn cardinality(&self, limit: usize) -> Cardinality {
        let index = self.index.read();
        let syms = self.symbols.read();
        let name_sym = syms.lookup(crate::model::labels::METRIC_NAME);
        let mut by_metric = Vec::new();
        let mut by_pair = Vec::new();
        let mut values_per_name: HashMap<Sym, (u64, u64)> = HashMap::new();
        let mut pairs = 0u64;
        for (n, v, count) in index.pair_counts() {
            pairs += 1;
            let (Some(ns), Some(vs)) = (syms.resolve(n), syms.resolve(v)) else {
                continue;
            };
            if Some(n) == name_sym {
                by_metric.push((vs.to_string(), count as u64));
            }
            by_pair.push((format!("{ns}={vs}"), count as u64));
            let e = values_per_name.entry(n).or_default();
            e.0 += 1;
            // Bytes of the value strings times the series using them.
            e.1 += (vs.len() * count) as u64;
        }
        let mut value_counts = Vec::new();
        let mut memory = Vec::new();
        for (n, (values, bytes)) in values_per_name {
            if let Some(ns) = syms.resolve(n) {
                value_counts.push((ns.to_string(), values));
                memory.push((ns.to_string(), bytes));
            }
        }
        let top = |mut v: Vec<(String, u64)>| {
            v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            v.truncate(limit);
            v
        };
        Cardinality {
            num_label_pairs: pairs,
            series_by_metric_name: top(by_metric),
            label_value_count_by_name: top(value_counts),
            memory_by_label_name: top(memory),
            series_by_label_pair: top(by_pair),
        }
    }

    /// Sorted label names of the series matching `matchers` with a sample in
    /// `[mint, maxt]`. (Prometheus' head is coarser: any series in a head
    /// overlapping the range counts. We filter per series, as `select` does.)
    pub fn label_names(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<String> {
        if matchers.is_empty() && self.covers_head(mint, maxt) {
            let index = self.index.read();
            let syms = self.symbols.read();
            return Self::resolve_sorted(&syms, index.names().collect());
        }
        let series = self.matching_series(matchers, mint, maxt);
        let syms = self.symbols.read();
        let mut ids = HashSet::new();
        for s in series
            .iter()
            .filter(|s| !s.removed.load(std::sync::atomic::Ordering::Acquire))
        {
            ids.extend(s.labels.chunks_exact(2).map(|p| p[0]));
        }
        Self::resolve_sorted(&syms, ids)
    }

    /// Sorted values of label `name` over the series matching `matchers`
    /// with a sample in `[mint, maxt]`.
    pub fn label_values(
        &self,
        name: &str,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Vec<String> {
        if matchers.is_empty() && self.covers_head(mint, maxt) {
            let index = self.index.read();
            let syms = self.symbols.read();
            let ids = syms
                .lookup(name)
                .map(|n| index.values(n).collect())
                .unwrap_or_default();
            return Self::resolve_sorted(&syms, ids);
        }
        let series = self.matching_series(matchers, mint, maxt);
        let syms = self.symbols.read();
        let Some(name_id) = syms.lookup(name) else {
            return Vec::new();
        };
        let mut ids = HashSet::new();
        for s in series
            .iter()
            .filter(|s| !s.removed.load(std::sync::atomic::Ordering::Acquire))
        {
            if let Some(p) = s.labels.chunks_exact(2).find(|p| p[0] == name_id) {
                ids.insert(p[1]);
            }
        }
        Self::resolve_sorted(&syms, ids)
    }

    /// Drops whole chunks whose newest sample is older than `cutoff`, then
    /// series left without samples (a series that never had one survives one
    /// truncation, so a just-created series is not lost to a race). Removed
    /// series leave the postings, and label strings no remaining series uses
    /// are freed (their ids recycled). Afterwards samples older than `cutoff`
    /// are rejected as out of bounds.
    pub fn truncate(&self, cutoff: i64) -> TruncateStats {
        self.cutoff.fetch_max(cutoff, Relaxed);
        let mut stats = TruncateStats::default();
        // New series alone do not start a walk: one that never gets a
        // sample (its batch failed) waits for the next full walk, as
        // Prometheus keeps it until its next head GC. Walking 100k series
        // because some were created cost a tenth of a minute's ingest CPU.
        if cutoff <= self.min_time.load(Relaxed)
            && !self.empty_left.load(Relaxed)
            && self.skipped_walks.fetch_add(1, Relaxed) + 1 < FULL_WALK_EVERY
        {
            stats.skipped = true;
            return stats;
        }
        self.skipped_walks.store(0, Relaxed);
        let mut empty_left = false;
        let gen = self.gen.load(Relaxed);
        let mut removed: Vec<(u64, Arc<Series>)> = Vec::new();
        let mut new_min = i64::MAX;
        for shard in self.shards.iter() {
            let mut candidates = Vec::new();
            for (r, s) in shard.maps.read().by_ref.iter() {
                let mut data = s.data.lock();
                let had = data.has_samples();
                stats.chunks_removed += data.truncate(cutoff);
                match data.min_time() {
                    Some(t) => new_min = new_min.min(t),
                    None if had || s.created_gen < gen => candidates.push(*r),
                    None => empty_left = true,
                }
            }
            if candidates.is_empty() {
                continue;
            }
            let mut maps = shard.maps.write();
            for r in candidates {
                // Re-check under the write lock: an append may have come in.
                // The flag is set under the series lock, so an append through
                // a `SeriesHandle` either lands before or sees the removal.
                let still_empty = maps.by_ref.get(&r).is_some_and(|s| {
                    let data = s.data.lock();
                    let empty = !data.has_samples();
                    if empty {
                        s.removed.store(true, std::sync::atomic::Ordering::Release);
                    }
                    empty
                });
                if still_empty {
                    if let Some(s) = maps.remove(r) {
                        removed.push((r, s));
                    }
                }
            }
        }
        self.gen.fetch_add(1, Relaxed);
        self.min_time.store(new_min, Relaxed);
        self.empty_left.store(empty_left, Relaxed);
        if !removed.is_empty() {
            self.index
                .write()
                .remove(removed.iter().map(|(r, s)| (*r, &s.labels[..])));
            let mut syms = self.symbols.write();
            let before = syms.len();
            for (_, s) in &removed {
                for &id in s.labels.iter() {
                    syms.release(id);
                }
            }
            stats.symbols_freed = before - syms.len();
        }
        stats.series_removed = removed.len();
        self.series_removed.fetch_add(removed.len() as u64, Relaxed);
        if let (Some(wal), false) = (self.wal.get(), removed.is_empty()) {
            let refs: Vec<u64> = removed.iter().map(|(r, _)| *r).collect();
            let mut payload = Vec::new();
            wal::encode_deletions(&mut payload, &refs);
            let mut buf = Vec::new();
            wal::frame(
                &mut buf,
                wal::Kind::Deletions,
                &payload,
                wal.opts.compression,
            );
            let _shared = self.commit_lock.read();
            if let Err(e) = wal.log(&buf) {
                // Harmless: the next checkpoint leaves these series out.
                tracing::warn!(error = %e, "logging removed series failed");
            }
        }
        if let Some(hc) = self.chunk_files() {
            stats.chunk_files_removed = hc.truncate(cutoff);
        }
        tracing::debug!(cutoff, ?stats, "head truncated");
        stats
    }

    /// Counters and sizes. Walks every series (taking each lock briefly), so
    /// it costs O(series): meant for status pages and metrics, not hot paths.
    pub fn stats(&self) -> HeadStats {
        let mut st = HeadStats {
            min_time: self.min_time.load(Relaxed),
            max_time: self.max_time.load(Relaxed),
            series_created: self.series_created.load(Relaxed),
            series_removed: self.series_removed.load(Relaxed),
            memory_bytes: std::mem::size_of::<Head>()
                + self.shards.len() * std::mem::size_of::<Shard>(),
            ..HeadStats::default()
        };
        // The Arc block: two counters and the series.
        let per_series = block(2 * std::mem::size_of::<usize>() + std::mem::size_of::<Series>());
        for shard in self.shards.iter() {
            st.samples_appended += shard.appended.load(Relaxed);
            st.out_of_order += shard.out_of_order.load(Relaxed);
            st.duplicates += shard.duplicates.load(Relaxed);
            st.out_of_bounds += shard.out_of_bounds.load(Relaxed);
            let maps = shard.maps.read();
            st.memory_bytes += maps.memory_bytes();
            for s in maps.by_ref.values() {
                let data: &SeriesChunks = &s.data.lock();
                st.num_series += 1;
                st.chunks += data.num_chunks();
                st.mmapped_chunks += data.mapped.len() + data.mapped_hist_chunks();
                st.chunk_bytes += data.chunk_bytes();
                st.memory_bytes += per_series + block(s.labels.len() * 4) + data.heap_bytes();
            }
        }
        st.memory_bytes += self.index.read().memory_bytes();
        if let Some(hc) = self.chunk_files() {
            st.mmapped_chunk_bytes = hc.size_bytes();
        }
        let syms = self.symbols.read();
        st.symbols = syms.len();
        st.memory_bytes += syms.memory_bytes();
        st
    }

    /// Oldest sample time held, as of the last truncation or append
    /// (`i64::MAX` when none).
    pub fn min_time(&self) -> i64 {
        self.min_time.load(Relaxed)
    }

    /// Attaches the head chunk files full chunks are written to (once;
    /// before [`Head::replay`], which restores the chunks they hold).
    pub fn attach_chunk_files(&self, hc: Arc<HeadChunks>) -> Result<(), Arc<HeadChunks>> {
        self.chunk_files.set(hc)
    }

    pub fn chunk_files(&self) -> Option<&HeadChunks> {
        self.chunk_files.get().map(|a| &**a)
    }

    /// Gives series `r` the chunks read back from the head chunk files
    /// (replay); returns the newest time they cover, so the WAL adds only
    /// later samples. `None` when the series is unknown.
    pub(crate) fn restore_mapped(&self, r: u64, chunks: Vec<MappedChunk>) -> Option<i64> {
        let s = self.series(r)?;
        let mut data = s.data.lock();
        s.changed();
        // Only chunks between the ones restored already and the samples
        // the WAL put in memory (a series logged twice comes here twice).
        let first_mem = data
            .closed
            .first()
            .map(|c| c.min_time())
            .or(data.head.as_ref().map(|h| h.min_time()))
            .unwrap_or(i64::MAX);
        let add = data.mapped.restore(chunks, first_mem);
        if add.is_empty() {
            return data.mapped.last().map(|m| m.maxt);
        }
        let newest = add.last().map(|c| c.maxt);
        for c in &add {
            self.min_time.fetch_min(c.mint, Relaxed);
            self.max_time.fetch_max(c.maxt, Relaxed);
        }
        newest
    }

    /// Gives series `h` the in-memory chunks of a memory snapshot (see
    /// [`SeriesChunks::restore_memory`]); returns whether any were kept.
    pub(crate) fn restore_memory(
        &self,
        h: &SeriesHandle,
        closed: Vec<ClosedChunk>,
        open: Option<HeadChunk>,
    ) -> bool {
        let has_closed = !closed.is_empty();
        let restored = {
            let mut data = h.series.data.lock();
            h.series.changed();
            data.restore_memory(closed, open)
        };
        let Some((lo, hi)) = restored else {
            return false;
        };
        self.widen_bounds(lo, hi);
        if has_closed && self.chunk_files.get().is_some() {
            self.chunks_pending.lock().push(h.r.0);
        }
        true
    }

    /// Gives series `h` the histogram chunks of a memory snapshot (see
    /// [`SeriesChunks::restore_hist`]).
    pub(crate) fn restore_hist(&self, h: &SeriesHandle, chunks: HistChunks) {
        let full = !chunks.closed.is_empty();
        let restored = {
            let mut data = h.series.data.lock();
            h.series.changed();
            data.restore_hist(chunks)
        };
        if let Some((lo, hi)) = restored {
            self.widen_bounds(lo, hi);
            self.note_hist_cut(h.r, full);
        }
    }

    /// Writes the full chunks cut since the last call to the head chunk
    /// files and drops their bytes from the heap. Runs off the append path
    /// (a background task calls it): appenders only note which series cut
    /// a chunk. Returns how many chunks went to disk.
    pub fn write_chunks(&self) -> Result<usize, HeadChunksError> {
        let Some(hc) = self.chunk_files() else {
            return Ok(0);
        };
        let _one = self.chunk_writer.lock();
        let mut refs = std::mem::take(&mut *self.chunks_pending.lock());
        if refs.is_empty() {
            return Ok(0);
        }
        refs.sort_unstable();
        refs.dedup();
        // Copy the bytes out under each series' lock, write without any
        // head lock, then swap the in-memory chunks for their references.
        struct Todo {
            series: Arc<Series>,
            r: u64,
            encoding: u8,
            mint: i64,
            maxt: i64,
            data: Vec<u8>,
        }
        let mut todo: Vec<Todo> = Vec::new();
        for r in refs {
            let Some(s) = self.series(r) else { continue };
            let data = s.data.lock();
            for (mint, maxt, bytes) in data.unwritten() {
                todo.push(Todo {
                    series: s.clone(),
                    r,
                    encoding: ENCODING_XOR,
                    mint,
                    maxt,
                    data: bytes.to_vec(),
                });
            }
            for c in data.hist.iter().flat_map(|h| h.unwritten()) {
                todo.push(Todo {
                    series: s.clone(),
                    r,
                    encoding: c.encoding,
                    mint: c.mint,
                    maxt: c.maxt,
                    data: c.bytes.to_vec(),
                });
            }
        }
        let batch: Vec<ChunkToWrite<'_>> = todo
            .iter()
            .map(|t| ChunkToWrite {
                series: t.r,
                encoding: t.encoding,
                mint: t.mint,
                maxt: t.maxt,
                data: &t.data,
            })
            .collect();
        let written = match hc.write(&batch) {
            Ok(w) => w,
            Err(e) => {
                // Keep them in memory and try again next time.
                self.chunks_pending.lock().extend(todo.iter().map(|t| t.r));
                return Err(e);
            }
        };
        drop(batch);
        let mut i = 0;
        let mut n = 0;
        while i < todo.len() {
            let r = todo[i].r;
            let mut j = i;
            let mut list = Vec::new();
            let mut hist = Vec::new();
            while j < todo.len() && todo[j].r == r {
                let t = &todo[j];
                let (to, file_ref) = match t.encoding {
                    ENCODING_XOR => (&mut list, written[j]),
                    enc => (&mut hist, hist_ref(written[j], enc)),
                };
                to.push(MappedChunk {
                    r: file_ref,
                    mint: t.mint,
                    maxt: t.maxt,
                });
                j += 1;
            }
            let mut data = todo[i].series.data.lock();
            n += data.mark_written(&list);
            if let Some(h) = data.hist.as_mut().filter(|_| !hist.is_empty()) {
                n += h.mark_written(&hist);
            }
            drop(data);
            i = j;
        }
        Ok(n)
    }

    /// Holds off [`Head::write_chunks`] while the guard lives (a checkpoint
    /// leaves out chunks already in the files, so none may move meanwhile).
    pub(crate) fn pause_chunk_writes(&self) -> parking_lot::MutexGuard<'_, ()> {
        self.chunk_writer.lock()
    }

    /// Newest sample time ever appended (`i64::MIN` when none).
    pub fn max_time(&self) -> i64 {
        self.max_time.load(Relaxed)
    }

    /// Number of live series (cheaper than `stats()`).
    pub fn num_series(&self) -> usize {
        self.shards.iter().map(|s| s.maps.read().by_ref.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn head_is_send_sync() {
        assert_send_sync::<Head>();
    }

    /// Truncates until a call walks the series (at most
    /// [`FULL_WALK_EVERY`] calls).
    fn walk(h: &Head, cutoff: i64) {
        let calls = (0..FULL_WALK_EVERY)
            .take_while(|_| h.truncate(cutoff).skipped)
            .count();
        assert!(calls < FULL_WALK_EVERY as usize, "no walk");
    }

    #[test]
    fn refs_are_stable_and_never_reused() {
        let h = Head::default();
        let a = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let (r1, created) = h.get_or_create(&a);
        assert!(created);
        assert_eq!(h.get_or_create(&a), (r1, false));
        assert_eq!(h.series_labels(r1), Some(a.clone()));
        walk(&h, 0); // never had a sample, created this generation: kept
        assert_eq!(h.num_series(), 1);
        walk(&h, 0); // still empty one walk later: removed
        assert_eq!(h.num_series(), 0);
        assert_eq!(h.append(r1, 10, 1.0), Err(AppendError::UnknownSeries));
        let (r2, created) = h.get_or_create(&a);
        assert!(created);
        assert_ne!(r1, r2);
        assert_eq!(h.series_labels(r1), None);
    }

    #[test]
    fn truncation_skips_the_walk_only_when_nothing_can_go() {
        let h = Head::new(HeadOptions {
            samples_per_chunk: 2,
        });
        let a = Labels::from_pairs([("__name__", "up"), ("job", "a")]);
        let (r, _) = h.get_or_create(&a);
        for t in [100, 200, 300, 400] {
            h.append(r, t, 1.0).unwrap();
        }
        let st = h.truncate(60);
        assert!(st.skipped && !st.freed(), "nothing older than 100: {st:?}");
        // A cutoff past the oldest chunk: walked, the chunk dropped.
        let st = h.truncate(250);
        assert!(!st.skipped && st.chunks_removed == 1, "{st:?}");
        // A new series does not: it is walked with the others later.
        let b = Labels::from_pairs([("__name__", "up"), ("job", "b")]);
        let (rb, _) = h.get_or_create(&b);
        h.append(rb, 260, 1.0).unwrap();
        assert!(h.truncate(255).skipped);
        // A series left empty by a walk is looked at again by the next call.
        let c = Labels::from_pairs([("__name__", "up"), ("job", "c")]);
        h.get_or_create(&c);
        walk(&h, 255);
        assert_eq!(h.num_series(), 3, "kept by its first walk");
        assert!(!h.truncate(255).skipped, "the empty series is walked again");
        assert_eq!(h.num_series(), 2);
        // Ten calls in a row never all skip.
        let walked = (0..FULL_WALK_EVERY)
            .filter(|_| !h.truncate(255).skipped)
            .count();
        assert_eq!(walked, 1);
    }

    #[test]
    fn hash_collisions_are_kept_apart() {
        let mut maps = ShardMaps::default();
        let mk = || Arc::new(Series::new(Box::new([]), 7, 0));
        for r in [1, 2, 3] {
            maps.insert(r, mk());
        }
        let got: Vec<u64> = maps.candidates(7).map(|(r, _)| r).collect();
        assert_eq!(got, [1, 2, 3]);
        maps.remove(1);
        let mut got: Vec<u64> = maps.candidates(7).map(|(r, _)| r).collect();
        got.sort_unstable();
        assert_eq!(got, [2, 3]);
        maps.remove(2);
        maps.remove(3);
        assert!(maps.by_hash.is_empty() && maps.collisions.is_empty());
    }
}

#[cfg(test)]
mod observer_tests {
    use super::*;
    use parking_lot::Mutex;

    #[derive(Default)]
    struct Rec(Mutex<Vec<(Option<Labels>, i64, u64)>>);

    impl AppendObserver for Rec {
        fn on_append(&self, head: &Head, r: SeriesRef, t: i64, v: f64) {
            // Calling back into the head must not deadlock.
            let l = head.series_labels(r);
            self.0.lock().push((l, t, v.to_bits()));
        }
    }

    #[test]
    fn observer_sees_stored_samples_only() {
        let h = Head::default();
        let rec = Arc::new(Rec::default());
        assert!(h.set_append_observer(rec.clone()).is_ok());
        assert!(h.set_append_observer(rec.clone()).is_err());
        let a = Labels::from_pairs([("__name__", "x")]);
        let (r, _) = h.get_or_create(&a);
        h.append(r, 10, 1.0).unwrap();
        h.append(r, 10, 1.0).unwrap(); // exact duplicate: not reported
        assert!(h.append(r, 5, 2.0).is_err()); // out of order
        let hd = h.handle(r).unwrap();
        h.append_to(&hd, 20, f64::NAN).unwrap();
        let got = rec.0.lock().clone();
        assert_eq!(
            got,
            vec![
                (Some(a.clone()), 10, 1.0f64.to_bits()),
                (Some(a), 20, f64::NAN.to_bits())
            ]
        );
    }
}

#[cfg(test)]
mod replay_tests {
    use super::*;

    fn l(i: &str) -> Labels {
        Labels::from_pairs([("__name__", "m"), ("i", i)])
    }

    fn shard_ref(counter: u64, labels: &Labels) -> u64 {
        (counter << SHARD_BITS) | (labels.hash64() & SHARD_MASK)
    }

    #[test]
    fn logged_series_keep_their_refs_and_duplicates_or_foreign_refs_do_not() {
        let h = Head::default();
        let (a, b) = (l("a"), l("b"));
        let ra = shard_ref(5, &a);
        let ra2 = shard_ref(6, &a);
        // A reference that cannot be b's: another shard's bits.
        let wrong = (7 << SHARD_BITS) | ((b.hash64() + 1) & SHARD_MASK);
        let got = h.create_logged(&SeriesList::from_labels([
            (ra, &a),
            (ra2, &a),
            (wrong, &b),
            (9 << SHARD_BITS, &Labels::empty()),
        ]));
        let got: Vec<(u64, u64)> = got.iter().map(|(r, s)| (*r, s.series_ref().0)).collect();
        let rb = h.lookup(&b).unwrap().0;
        assert_eq!(got, vec![(ra, ra), (ra2, ra), (wrong, rb)]);
        assert_ne!(rb, wrong);
        assert_eq!(rb & SHARD_MASK, b.hash64() & SHARD_MASK);
        assert_eq!(h.lookup(&a), Some(SeriesRef(ra)));
        assert_eq!(h.num_series(), 2);
        // Series logged under their own reference are not logged again;
        // the one that moved is.
        let sa = h.series(ra).unwrap();
        let sb = h.series(rb).unwrap();
        assert!(sa.logged.load(std::sync::atomic::Ordering::Acquire));
        assert!(!sb.logged.load(std::sync::atomic::Ordering::Acquire));
        // Indexed, with the labels interned once per series.
        let m = Matcher::new(crate::model::MatchType::Equal, "i", "a").unwrap();
        assert_eq!(h.postings_for(&[m]), vec![ra]);
        assert_eq!(h.stats().symbols, 5);
        // Again: nothing new, same series.
        let again = h.create_logged(&SeriesList::from_labels([(ra, &a)]));
        assert_eq!(again[0].1.series_ref().0, ra);
        assert_eq!(h.stats().symbols, 5);
        // New series never reuse a logged reference.
        let (rc, created) = h.get_or_create(&l("c"));
        assert!(created);
        assert!(rc.0 >> SHARD_BITS > rb >> SHARD_BITS, "{rc:?}");
    }
}

#[cfg(test)]
mod size_tests {
    use super::super::chunk::{ClosedChunk, HeadChunk};
    use super::*;

    /// Per-series structs are multiplied by millions: keep them from growing
    /// unnoticed.
    #[test]
    fn per_series_structs_stay_small() {
        use std::mem::size_of;
        assert_eq!(size_of::<ClosedChunk>(), 16);
        assert!(size_of::<HeadChunk>() <= 56);
        // 120 before the WAL's per-series state (segment and value of the
        // last logged sample, which the next one is encoded against), 136
        // before the references to chunks in the head chunk files, 152
        // before the (boxed, optional) native-histogram chunks, 160 before
        // the newest float's time and chunk end that let the append check
        // skip the lock.
        assert!(size_of::<Series>() <= 176);
        assert_eq!(size_of::<super::MappedChunk>(), 24);
    }
}

/// How many samples ahead a batch's appends prefetch their series.
pub(crate) const PREFETCH_AHEAD: usize = 8;

/// A hint to the CPU to bring the cache line at `p` closer; never faults,
/// whatever `p` is (a stale or null address is fine).
#[inline(always)]
fn prefetch(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch reads nothing architecturally and cannot fault.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p.cast::<i8>(), std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
