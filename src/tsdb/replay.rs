//! Rebuilding the head from the WAL at start, and checkpoints.

use super::chunk::ChunkIter;
use super::head::{SeriesHandle, SHARD_BITS};
use super::head_chunks::{Loaded, MappedChunk};
use super::mem::IdMap;
use super::series_hist::HistValue;
use super::snapshot::SnapshotData;
use super::wal::{self, Corruption, Record, SeriesList, Wal, WalError};
use super::wal_hist;
use super::{AppendError, Head, SeriesRef};
use std::path::Path;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// What a replay did.
#[derive(Clone, Debug, Default)]
pub struct ReplayStats {
    /// The checkpoint read first (the first segment it does not cover).
    pub checkpoint: Option<u64>,
    pub segments: usize,
    pub series: u64,
    pub samples: u64,
    /// Samples older than the retention cutoff, skipped.
    pub too_old: u64,
    /// Samples whose series record was not found (counted, skipped).
    pub unknown_refs: u64,
    pub corruptions: Vec<Corruption>,
    pub duration: Duration,
    /// Full chunks restored from the head chunk files, and WAL samples
    /// skipped because those chunks already hold them.
    pub mmapped_chunks: u64,
    pub mmapped_samples_skipped: u64,
    /// The memory snapshot restored first (the first segment it does not
    /// cover) and its series; the WAL before that segment was not read.
    pub snapshot: Option<u64>,
    pub snapshot_series: u64,
}

/// WAL reference → the head series its samples go to.
///
/// Series are created with their logged reference whenever possible, and
/// the creation counter in a reference's high bits grows from 1, so a
/// vector indexed by it finds a series without hashing or locking, and
/// the ascending references of a scrape's record read it in order. Larger
/// counters (a long-lived head that created millions of series) go to a
/// map.
///
/// Each entry also holds the newest time the series' chunks restored from
/// the head chunk files cover (`i64::MIN` without any): samples up to it
/// are in those files already.
#[derive(Default)]
struct Handles {
    dense: Vec<Option<Entry>>,
    sparse: IdMap<u64, Entry>,
}

/// A reference's series and floors (see [`Handles`]).
struct Entry {
    r: u64,
    handle: SeriesHandle,
    floor: Floors,
}

/// The newest time the head chunk files cover for a series, per sample
/// type (float chunks and histogram chunks are restored apart):
/// `i64::MIN` without any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Floors {
    pub float: i64,
    pub hist: i64,
}

impl Floors {
    pub const NONE: Floors = Floors {
        float: i64::MIN,
        hist: i64::MIN,
    };
}

/// Counters below this are kept in [`Handles::dense`] (at most 64 MiB).
const DENSE_MAX: usize = 1 << 21;

impl Handles {
    /// `r`'s place in the vector: free or its own. A reference whose place
    /// another one holds (the same counter under other shard bits: not
    /// written by klaxon) lives in the map.
    fn slot(&self, r: u64) -> Option<usize> {
        let i = (r >> SHARD_BITS) as usize;
        if i >= DENSE_MAX {
            return None;
        }
        match self.dense.get(i) {
            Some(Some(e)) if e.r != r => None,
            _ => Some(i),
        }
    }

    fn get(&self, r: u64) -> Option<&Entry> {
        match self.dense.get((r >> SHARD_BITS) as usize) {
            Some(Some(e)) if e.r == r => Some(e),
            _ => self.sparse.get(&r),
        }
    }

    fn set(&mut self, r: u64, handle: SeriesHandle, floor: Floors) {
        let e = Entry { r, handle, floor };
        match self.slot(r) {
            Some(i) => {
                if i >= self.dense.len() {
                    self.dense
                        .resize_with((i + 1).max(self.dense.len() * 3 / 2), || None);
                }
                if let Some(slot) = self.dense.get_mut(i) {
                    *slot = Some(e);
                }
            }
            None => {
                self.sparse.insert(r, e);
            }
        }
    }

    fn remove(&mut self, r: u64) {
        if let Some(slot) = self.dense.get_mut((r >> SHARD_BITS) as usize) {
            if slot.as_ref().is_some_and(|e| e.r == r) {
                *slot = None;
            }
        }
        self.sparse.remove(&r);
    }
}

struct Replayer<'h> {
    head: &'h Head,
    cutoff: i64,
    /// Where each WAL reference's samples go: the series created for it,
    /// or the one already holding its labels (a series logged twice under
    /// two references after retention removed and recreated it). A
    /// reference without an entry means the head series of that reference.
    handles: Handles,
    /// Chunks from the head chunk files by the series reference they were
    /// written under, waiting for that series' record (the references this
    /// thread owns): float chunks, then histogram chunks.
    mapped: std::collections::HashMap<u64, Vec<MappedChunk>>,
    mapped_hist: std::collections::HashMap<u64, Vec<MappedChunk>>,
    stats: ReplayStats,
}

/// Where a replayed sample goes.
struct Target<'a> {
    head: &'a Head,
    cutoff: i64,
}

impl Target<'_> {
    /// The entry a sample of `r` at `t` goes to: `None` (counted) when it
    /// is too old, its series unknown, or the head chunk files of its type
    /// (`floor` picks it) hold it already.
    fn entry<'e>(
        &self,
        handles: &'e mut Handles,
        stats: &mut ReplayStats,
        r: u64,
        t: i64,
        floor: impl Fn(&Floors) -> i64,
    ) -> Option<&'e Entry> {
        if t < self.cutoff {
            stats.too_old += 1;
            return None;
        }
        if handles.get(r).is_none() {
            match self.head.handle(SeriesRef(r)) {
                Some(h) => handles.set(r, h, Floors::NONE),
                None => {
                    stats.unknown_refs += 1;
                    return None;
                }
            }
        }
        let e = handles.get(r)?;
        if t <= floor(&e.floor) {
            stats.mmapped_samples_skipped += 1;
            return None;
        }
        Some(e)
    }
}

impl<'h> Replayer<'h> {
    fn target(&self) -> Target<'h> {
        Target {
            head: self.head,
            cutoff: self.cutoff,
        }
    }

    fn sample(&mut self, r: u64, t: i64, v: f64) {
        let target = self.target();
        let Some(e) = target.entry(&mut self.handles, &mut self.stats, r, t, |f| f.float) else {
            return;
        };
        match self.head.append_to(&e.handle, t, v) {
            Ok(()) => self.stats.samples += 1,
            Err(AppendError::UnknownSeries) => self.stats.unknown_refs += 1,
            // A sample the head refused before the crash too (or a batch
            // that was in a checkpoint and the segment after it).
            Err(_) => {}
        }
    }

    fn histogram(&mut self, r: u64, t: i64, v: &HistValue) {
        let target = self.target();
        let Some(e) = target.entry(&mut self.handles, &mut self.stats, r, t, |f| f.hist) else {
            return;
        };
        match self.head.append_histogram_to(&e.handle, t, v) {
            Ok(()) => self.stats.samples += 1,
            Err(AppendError::UnknownSeries) => self.stats.unknown_refs += 1,
            Err(_) => {}
        }
    }

    fn apply(&mut self, rec: Record) {
        match rec {
            Record::Series(list) => {
                self.stats.series += list.iter().filter(|(_, l)| !l.is_empty()).count() as u64;
                for (r, h) in self.head.create_logged(&list) {
                    // A series logged again (checkpoint, then a segment)
                    // keeps the floor its chunks gave it.
                    let mut floor = self.handles.get(r).map_or(Floors::NONE, |e| e.floor);
                    if let Some(chunks) = self.mapped.remove(&r) {
                        self.stats.mmapped_chunks += chunks.len() as u64;
                        if let Some(f) = self.head.restore_mapped(h.series_ref().0, chunks) {
                            floor.float = f;
                        }
                    }
                    if let Some(chunks) = self.mapped_hist.remove(&r) {
                        self.stats.mmapped_chunks += chunks.len() as u64;
                        if let Some(f) = self.head.restore_mapped_hist(h.series_ref().0, chunks) {
                            floor.hist = f;
                        }
                    }
                    self.handles.set(r, h, floor);
                }
            }
            Record::Samples(list) => {
                for (r, t, v) in list {
                    self.sample(r, t, v);
                }
            }
            Record::Deletions(refs) => {
                for r in refs {
                    self.handles.remove(r);
                }
            }
            Record::Histograms(list) => {
                for (r, t, v) in &list {
                    self.histogram(*r, *t, v);
                }
            }
            Record::Chunks(r, chunks) => {
                for c in &chunks {
                    for (t, v) in ChunkIter::new(c) {
                        self.sample(r, t, v);
                    }
                }
            }
        }
    }
}

fn report(c: &Corruption, wal: &Wal) {
    wal.stats.corruptions.fetch_add(1, Relaxed);
    tracing::error!(
        file = %c.file,
        offset = c.offset,
        reason = %c.reason,
        "WAL corruption: {c}; records before it were replayed, the rest of the file is dropped"
    );
}

/// Records on their way from the reading thread to one applying thread.
struct Feed {
    tx: std::sync::mpsc::SyncSender<Vec<Record>>,
    batch: Vec<Record>,
    weight: usize,
}

/// Most threads applying records at replay (one per core up to this).
const MAX_APPLIERS: usize = 4;

/// About this many samples (or labels, or chunks) per hand-over.
const FEED_WEIGHT: usize = 8192;

impl Feed {
    fn new(tx: std::sync::mpsc::SyncSender<Vec<Record>>) -> Feed {
        Feed {
            tx,
            batch: Vec::new(),
            weight: 0,
        }
    }

    fn push(&mut self, r: Record) {
        self.weight += match &r {
            Record::Series(s) => s.len() * 4,
            Record::Samples(s) => s.len(),
            Record::Deletions(d) => d.len(),
            Record::Chunks(_, c) => c.len() * 120,
            Record::Histograms(h) => h.len() * 8,
        };
        self.batch.push(r);
        if self.weight >= FEED_WEIGHT {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.batch.is_empty() {
            // The receiver only goes away when replay is over.
            let _ = self.tx.send(std::mem::take(&mut self.batch));
        }
        self.weight = 0;
    }
}

/// The applying thread that owns WAL reference `r`, out of `n`. By the
/// reference's shard bits, which come from its labels' hash: every record
/// about one label set (even logged under several references) goes to
/// one thread, in log order.
fn owner(r: u64, n: usize) -> usize {
    (r as usize & ((1 << SHARD_BITS) - 1)) % n
}

/// Splits records among the applying threads, as Prometheus shards its
/// replay by series reference.
struct Feeds(Vec<Feed>);

impl Feeds {
    fn push(&mut self, rec: Record) {
        let n = self.0.len();
        if n == 1 {
            if let Some(f) = self.0.first_mut() {
                f.push(rec);
            }
            return;
        }
        fn split<T>(list: Vec<T>, n: usize, key: impl Fn(&T) -> u64) -> Vec<Vec<T>> {
            let mut parts: Vec<Vec<T>> = (0..n)
                .map(|_| Vec::with_capacity(list.len() / n + 8))
                .collect();
            for x in list {
                if let Some(p) = parts.get_mut(owner(key(&x), n)) {
                    p.push(x);
                }
            }
            parts
        }
        let parts: Vec<Record> = match rec {
            Record::Series(l) => {
                let mut parts: Vec<SeriesList> = (0..n)
                    .map(|_| SeriesList::with_capacity(l.len() / n + 8))
                    .collect();
                for (r, labels) in l.iter() {
                    if let Some(p) = parts.get_mut(owner(r, n)) {
                        p.push(r, labels.iter());
                    }
                }
                parts.into_iter().map(Record::Series).collect()
            }
            Record::Samples(l) => split(l, n, |x| x.0)
                .into_iter()
                .map(Record::Samples)
                .collect(),
            Record::Deletions(l) => split(l, n, |x| *x)
                .into_iter()
                .map(Record::Deletions)
                .collect(),
            Record::Histograms(l) => split(l, n, |x| x.0)
                .into_iter()
                .map(Record::Histograms)
                .collect(),
            Record::Chunks(r, c) => {
                if let Some(f) = self.0.get_mut(owner(r, n)) {
                    f.push(Record::Chunks(r, c));
                }
                return;
            }
        };
        for (f, rec) in self.0.iter_mut().zip(parts) {
            let empty = match &rec {
                Record::Series(l) => l.is_empty(),
                Record::Samples(l) => l.is_empty(),
                Record::Deletions(l) => l.is_empty(),
                Record::Histograms(l) => l.is_empty(),
                Record::Chunks(..) => false,
            };
            if !empty {
                f.push(rec);
            }
        }
    }

    fn flush(&mut self) {
        for f in &mut self.0 {
            f.flush();
        }
    }
}

/// What reading the log found, besides its records.
#[derive(Default)]
struct ReadOutcome {
    checkpoint: Option<u64>,
    segments: usize,
    corruptions: Vec<Corruption>,
}

/// Reads the newest checkpoint and the segments after it into `feed`,
/// truncating damaged segments at their last good record. With `after`
/// (a memory snapshot holds everything before that segment), only the
/// segments from there on.
fn read_log(wal: &Wal, mut feed: Feeds, after: Option<u64>) -> Result<ReadOutcome, WalError> {
    let dir: &Path = &wal.dir;
    let mut out = ReadOutcome::default();
    let mut state = wal::SampleState::default();
    let from = match wal::last_checkpoint(dir)? {
        Some((cdir, n)) => {
            let mut bytes = 0;
            if after.is_none() {
                tracing::info!(checkpoint = %cdir.display(), "replaying WAL checkpoint");
            }
            for s in wal::list_segments(&cdir)? {
                let p = cdir.join(wal::segment_name(s));
                bytes += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
                if after.is_some() {
                    continue;
                }
                if let Some(c) = wal::replay_file(&p, false, &mut state, |r| feed.push(r))? {
                    report(&c, wal);
                    out.corruptions.push(c);
                }
            }
            // Checkpoint bookkeeping as after reading it: the next one is
            // due by the same rule either way.
            wal.stats.checkpoint_bytes.store(bytes, Relaxed);
            wal.stats.checkpoint_segment.store(n, Relaxed);
            if after.is_none() {
                out.checkpoint = Some(n);
            }
            n
        }
        None => 0,
    };
    let from = from.max(after.unwrap_or(0));
    let segs: Vec<u64> = wal::list_segments(dir)?
        .into_iter()
        .filter(|n| *n >= from)
        .collect();
    for (i, n) in segs.iter().enumerate() {
        let p = dir.join(wal::segment_name(*n));
        tracing::info!(segment = i + 1, of = segs.len(), file = %p.display(), "replaying WAL segment {} of {}", i + 1, segs.len());
        if let Some(c) = wal::replay_file(&p, true, &mut state, |r| feed.push(r))? {
            report(&c, wal);
            out.corruptions.push(c);
        }
        out.segments += 1;
    }
    feed.flush();
    Ok(out)
}

impl Head {
    /// Rebuilds the head from `wal`'s directory: the newest checkpoint,
    /// then every segment after it. Samples older than `cutoff` are
    /// skipped. A damaged record ends its file (the file is truncated
    /// there) and replay goes on with the next one; only an I/O error
    /// reading the directory fails it.
    pub fn replay(&self, wal: &Wal, cutoff: i64) -> Result<ReplayStats, WalError> {
        self.replay_with_chunks(wal, cutoff, Loaded::default())
    }

    /// [`Head::replay`] on top of the full chunks read from the head chunk
    /// files (`loaded`): each series gets its chunks back when its record
    /// is read, and the WAL adds only samples newer than them, as
    /// Prometheus replays on top of its memory-mapped chunks.
    pub fn replay_with_chunks(
        &self,
        wal: &Wal,
        cutoff: i64,
        loaded: Loaded,
    ) -> Result<ReplayStats, WalError> {
        self.replay_with_snapshot(wal, cutoff, loaded, None)
    }

    /// [`Head::replay_with_chunks`] after restoring a memory snapshot
    /// (see [`super::snapshot`]): the WAL segments it covers are not read.
    pub fn replay_with_snapshot(
        &self,
        wal: &Wal,
        cutoff: i64,
        loaded: Loaded,
        snapshot: Option<SnapshotData>,
    ) -> Result<ReplayStats, WalError> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        self.replay_with(wal, cutoff, cores.clamp(1, MAX_APPLIERS), loaded, snapshot)
    }

    /// [`Head::replay_with_chunks`] with `appliers` threads applying records.
    pub(crate) fn replay_with(
        &self,
        wal: &Wal,
        cutoff: i64,
        appliers: usize,
        loaded: Loaded,
        snapshot: Option<SnapshotData>,
    ) -> Result<ReplayStats, WalError> {
        let start = Instant::now();
        let dir: &Path = &wal.dir;
        let appliers = appliers.max(1);
        self.set_replaying(true);
        let mut loaded_series = loaded.series;
        let mut loaded_hist = loaded.hist;
        let mut rp = ReplayStats::default();
        // The snapshot's series first, with their chunks; each applying
        // thread knows the ones it owns and how far their files go.
        let mut seeds: Vec<Handles> = (0..appliers).map(|_| Handles::default()).collect();
        let after = snapshot.map(|snap| {
            let segment = snap.segment;
            let (restored, chunks) =
                self.restore_snapshot(snap, &mut loaded_series, &mut loaded_hist, cutoff);
            rp.snapshot = Some(segment);
            rp.snapshot_series = restored.len() as u64;
            rp.mmapped_chunks += chunks;
            for (r, h, floor) in restored {
                if let Some(s) = seeds.get_mut(owner(r, appliers)) {
                    s.set(r, h, floor);
                }
            }
            segment
        });
        // Each thread gets the restored chunks of the references it owns.
        let mut mapped: Vec<std::collections::HashMap<u64, Vec<MappedChunk>>> =
            (0..appliers).map(|_| Default::default()).collect();
        for (r, chunks) in loaded_series {
            if let Some(m) = mapped.get_mut(owner(r, appliers)) {
                m.insert(r, chunks);
            }
        }
        let mut mapped_hist: Vec<std::collections::HashMap<u64, Vec<MappedChunk>>> =
            (0..appliers).map(|_| Default::default()).collect();
        for (r, chunks) in loaded_hist {
            if let Some(m) = mapped_hist.get_mut(owner(r, appliers)) {
                m.insert(r, chunks);
            }
        }
        // Reading (I/O, checksums, decompression, decoding) runs on its own
        // thread; applying to the head on `appliers` others, each owning
        // the references of some shards (see `owner`), so a series' records
        // reach its thread in log order, a few thousand samples at a time.
        let (txs, rxs): (Vec<_>, Vec<_>) = (0..appliers)
            .map(|_| std::sync::mpsc::sync_channel::<Vec<Record>>(4))
            .unzip();
        let res = std::thread::scope(|scope| {
            let reader = scope.spawn(move || {
                read_log(wal, Feeds(txs.into_iter().map(Feed::new).collect()), after)
            });
            let workers: Vec<_> = rxs
                .into_iter()
                .zip(mapped)
                .zip(mapped_hist)
                .zip(seeds)
                .map(|(((rx, mapped), mapped_hist), handles)| {
                    scope.spawn(move || {
                        let mut w = Replayer {
                            head: self,
                            cutoff,
                            handles,
                            mapped,
                            mapped_hist,
                            stats: ReplayStats::default(),
                        };
                        for recs in rx {
                            for r in recs {
                                w.apply(r);
                            }
                        }
                        w.stats
                    })
                })
                .collect();
            let panicked = |what: &str| WalError::Io {
                op: "replay",
                path: dir.display().to_string(),
                source: std::io::Error::other(format!("WAL {what} thread panicked")),
            };
            // Every thread is joined (a panic in one not joined would
            // panic the scope).
            let mut failed = false;
            for w in workers {
                match w.join() {
                    Ok(st) => {
                        rp.series += st.series;
                        rp.samples += st.samples;
                        rp.too_old += st.too_old;
                        rp.unknown_refs += st.unknown_refs;
                        rp.mmapped_chunks += st.mmapped_chunks;
                        rp.mmapped_samples_skipped += st.mmapped_samples_skipped;
                    }
                    Err(_) => failed = true,
                }
            }
            let read = reader.join().unwrap_or_else(|_| Err(panicked("reader")));
            if failed {
                return Err(panicked("applying"));
            }
            read
        });
        let res = res.map(|read| {
            rp.checkpoint = read.checkpoint;
            rp.segments = read.segments;
            rp.corruptions = read.corruptions;
        });
        self.set_replaying(false);
        res?;
        rp.duration = start.elapsed();
        wal.stats
            .replay_micros
            .store(rp.duration.as_micros().max(1) as u64, Relaxed);
        let st = &rp;
        tracing::info!(
            checkpoint = ?st.checkpoint,
            segments = st.segments,
            series = self.num_series(),
            samples = st.samples,
            too_old = st.too_old,
            unknown_refs = st.unknown_refs,
            mmapped_chunks = st.mmapped_chunks,
            mmapped_samples_skipped = st.mmapped_samples_skipped,
            snapshot = ?st.snapshot,
            snapshot_series = st.snapshot_series,
            corruptions = st.corruptions.len(),
            duration = ?st.duration,
            appliers,
            "WAL replay done"
        );
        Ok(rp)
    }

    /// Writes a checkpoint of the head covering every closed segment, then
    /// deletes those segments and older checkpoints. Returns the first
    /// segment not covered, or `None` without a WAL or anything to cover.
    pub fn checkpoint(&self) -> Result<Option<u64>, WalError> {
        let Some(wal) = self.wal() else {
            return Ok(None);
        };
        let upto = {
            let _no_commits = self.exclusive();
            let mut w = wal.writer.lock();
            w.cut(&wal.stats)?;
            w.segment()
        };
        if upto <= wal.stats.checkpoint_segment.load(Relaxed) {
            return Ok(None);
        }
        // Chunks in the head chunk files are left out of the checkpoint:
        // they must be on disk before the segments holding them go.
        let _pause = self.chunk_files().map(|_| {
            if let Err(e) = self.write_chunks() {
                tracing::warn!(error = %e, "writing head chunks before the checkpoint failed");
            }
            self.pause_chunk_writes()
        });
        if let Some(hc) = self.chunk_files() {
            hc.sync().map_err(|e| WalError::Io {
                op: "sync head chunks",
                path: hc.dir().display().to_string(),
                source: std::io::Error::other(e.to_string()),
            })?;
        }
        let started = Instant::now();
        let c = wal.opts.compression;
        let res = wal::write_checkpoint(wal, upto, |sink| {
            let mut f = wal::Framer::new(c);
            for i in 0..self.shard_count() {
                let snap = self.snapshot_shard(i);
                if snap.is_empty() {
                    continue;
                }
                f.clear();
                wal::encode_series(f.payload(), snap.iter().map(|(r, l, _)| (*r, l)));
                f.finish(wal::Kind::Series);
                sink(f.framed())?;
                for (r, _, chunks) in &snap {
                    if chunks.is_empty() {
                        continue;
                    }
                    f.clear();
                    wal::encode_chunks(f.payload(), *r, chunks.iter().map(|c| &c[..]));
                    f.finish(wal::Kind::Chunks);
                    sink(f.framed())?;
                }
                for (r, _, _) in &snap {
                    let hists = self.histograms_of(*r);
                    if hists.is_empty() {
                        continue;
                    }
                    f.clear();
                    for kind in wal_hist::KINDS {
                        let of_kind: Vec<(u64, i64, &HistValue)> = hists
                            .iter()
                            .filter(|(_, v)| wal_hist::kind_of(v) == kind)
                            .map(|(t, v)| (*r, *t, v))
                            .collect();
                        if !of_kind.is_empty() {
                            wal_hist::encode(f.payload(), &of_kind);
                            f.finish(kind);
                        }
                    }
                    sink(f.framed())?;
                }
            }
            Ok(())
        });
        match res {
            Ok(bytes) => {
                wal.stats.checkpoint_segment.store(upto, Relaxed);
                tracing::info!(upto, bytes, duration = ?started.elapsed(), "WAL checkpoint written");
                Ok(Some(upto))
            }
            Err(e) => {
                wal.stats.checkpoint_failures.fetch_add(1, Relaxed);
                Err(e)
            }
        }
    }

    /// Checkpoints when the segments written since the last checkpoint
    /// outgrow it (and at least two segments' worth), so replay reads at
    /// most about twice what the head holds and checkpoint writes are
    /// amortised over as many bytes of log.
    pub fn maybe_checkpoint(&self) -> Result<Option<u64>, WalError> {
        let Some(wal) = self.wal() else {
            return Ok(None);
        };
        let since = wal.segment_bytes_from(wal.stats.checkpoint_segment.load(Relaxed));
        let threshold = wal
            .stats
            .checkpoint_bytes
            .load(Relaxed)
            .max(2 * wal.opts.segment_size);
        if since < threshold {
            return Ok(None);
        }
        self.checkpoint()
    }
}

#[cfg(test)]
mod tests {
    use super::super::wal::{Compression, WalOptions};
    use super::*;
    use crate::model::Labels;
    use std::sync::Arc;

    fn l(i: usize) -> Labels {
        Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())])
    }

    fn open(dir: &Path, seg: u64) -> (Arc<Head>, Arc<Wal>, ReplayStats) {
        let wal = Arc::new(
            Wal::open(
                dir,
                WalOptions {
                    segment_size: seg,
                    compression: Compression::Snappy,
                },
            )
            .unwrap(),
        );
        let head = Arc::new(Head::default());
        let st = head.replay(&wal, i64::MIN).unwrap();
        head.attach_wal(wal.clone()).unwrap();
        (head, wal, st)
    }

    fn dump(h: &Head) -> Vec<(String, Vec<(i64, u64)>)> {
        h.select(&[], i64::MIN, i64::MAX)
            .into_iter()
            .map(|s| {
                (
                    s.labels.to_string(),
                    s.samples.iter().map(|(t, v)| (*t, v.to_bits())).collect(),
                )
            })
            .collect()
    }

    fn write(h: &Head, from: i64, to: i64) {
        for t in from..to {
            let mut a = h.appender();
            for i in 0..5 {
                let v = if t % 7 == 3 && i == 2 {
                    crate::model::STALE_NAN
                } else {
                    (t * i as i64) as f64
                };
                a.append(&l(i), t * 1000, v).unwrap();
            }
            a.commit().unwrap();
        }
    }

    #[test]
    fn restart_rebuilds_the_same_head_across_segments_and_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        let (h, _wal, _) = open(dir.path(), 1024);
        write(&h, 0, 200);
        let before = dump(&h);
        drop(h);
        let (h2, wal2, st) = open(dir.path(), 1024);
        assert!(st.segments > 2, "{st:?}");
        assert_eq!(dump(&h2), before);
        // Refs survive: appending after restart under the old refs works.
        write(&h2, 200, 300);
        assert!(h2.checkpoint().unwrap().is_some());
        assert_eq!(wal2.stats.checkpoints.load(Relaxed), 1);
        write(&h2, 300, 320);
        let before = dump(&h2);
        drop(h2);
        let (h3, _, st) = open(dir.path(), 1024);
        assert!(st.checkpoint.is_some());
        assert_eq!(dump(&h3), before);
        assert_eq!(st.unknown_refs, 0);
        assert_eq!(h3.num_series(), 5);
    }

    #[test]
    fn handles_keep_references_sharing_a_counter_apart() {
        let h = Head::default();
        let (ra, _) = h.get_or_create(&l(1));
        let (rb, _) = h.get_or_create(&l(2));
        let (ha, hb) = (h.handle(ra).unwrap(), h.handle(rb).unwrap());
        let mut m = Handles::default();
        let (x, y, z) = (
            (5 << SHARD_BITS) | 1,
            (5 << SHARD_BITS) | 2,
            (1u64 << 40) | 3,
        );
        let seven = Floors {
            float: 7,
            hist: i64::MIN,
        };
        m.set(x, ha.clone(), Floors::NONE);
        m.set(y, hb.clone(), seven);
        m.set(z, hb.clone(), Floors::NONE);
        let got = |m: &Handles, r| m.get(r).map(|e| e.handle.series_ref());
        assert_eq!(m.get(y).map(|e| e.floor), Some(seven));
        assert_eq!(
            (got(&m, x), got(&m, y), got(&m, z)),
            (Some(ra), Some(rb), Some(rb))
        );
        m.remove(x);
        assert_eq!((got(&m, x), got(&m, y)), (None, Some(rb)));
        m.set(y, ha.clone(), Floors::NONE);
        assert_eq!(got(&m, y), Some(ra));
        m.remove(y);
        m.remove(z);
        assert_eq!((got(&m, y), got(&m, z)), (None, None));
    }

    #[test]
    fn one_or_several_applying_threads_rebuild_the_same_head() {
        let dir = tempfile::tempdir().unwrap();
        let (h, _wal, _) = open(dir.path(), 4096);
        // Many series (spread over shards), series created mid-log, stale
        // markers, and a retention cycle that logs a series again.
        for t in 0..40i64 {
            let mut a = h.appender();
            for i in 0..(50 + t as usize * 5) {
                a.append(&l(i), t * 1000, (t * i as i64) as f64).unwrap();
            }
            a.commit().unwrap();
        }
        let before = dump(&h);
        assert!(h.checkpoint().unwrap().is_some());
        for t in 40..60i64 {
            let mut a = h.appender();
            for i in 0..300 {
                a.append(&l(i), t * 1000, (t + i as i64) as f64).unwrap();
            }
            a.commit().unwrap();
        }
        let before2 = dump(&h);
        assert_ne!(before, before2);
        drop(h);
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        for n in [1, 2, 3] {
            let h = Head::default();
            let st = h
                .replay_with(&wal, i64::MIN, n, Loaded::default(), None)
                .unwrap();
            assert_eq!(dump(&h), before2, "{n} appliers");
            assert_eq!(st.unknown_refs, 0, "{n} appliers: {st:?}");
            assert_eq!(h.num_series(), 300);
            // Refs are the logged ones: appending by them works.
            let r = h.lookup(&l(7)).unwrap();
            h.append(r, 100_000, 1.0).unwrap();
        }
    }

    #[test]
    fn retention_and_recreated_series_replay_consistently() {
        let dir = tempfile::tempdir().unwrap();
        let (h, _wal, _) = open(dir.path(), 1 << 20);
        write(&h, 0, 10);
        // Everything expires; series go after two truncations.
        h.truncate(100_000);
        h.truncate(100_000);
        assert_eq!(h.num_series(), 0);
        write(&h, 200, 210);
        let before = dump(&h);
        drop(h);
        let (h2, _, st) = open(dir.path(), 1 << 20);
        assert_eq!(st.unknown_refs, 0);
        // Replay keeps what the log holds; the cutoff (here none) decides.
        let got = dump(&h2);
        assert_eq!(got.len(), 5);
        for ((l1, s1), (l2, s2)) in got.iter().zip(&before) {
            assert_eq!(l1, l2);
            assert!(s1.ends_with(s2));
        }
        drop(h2);
        let wal = Wal::open(dir.path(), WalOptions::default()).unwrap();
        let h3 = Head::default();
        h3.replay(&wal, 200_000).unwrap();
        assert_eq!(dump(&h3), before);
    }

    #[test]
    fn a_damaged_segment_keeps_its_prefix_and_later_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (h, wal, _) = open(dir.path(), 512);
        write(&h, 0, 100);
        drop(h);
        drop(wal);
        let segs = wal::list_segments(dir.path()).unwrap();
        assert!(segs.len() >= 3);
        let victim = dir.path().join(wal::segment_name(segs[1]));
        let mut data = std::fs::read(&victim).unwrap();
        let mid = data.len() / 2;
        data[mid] ^= 0xff;
        std::fs::write(&victim, &data).unwrap();
        let (h2, wal2, st) = open(dir.path(), 512);
        assert_eq!(st.corruptions.len(), 1);
        assert!(st.corruptions[0]
            .file
            .ends_with(&wal::segment_name(segs[1])));
        assert!(st.corruptions[0].offset <= mid as u64);
        assert_eq!(wal2.stats.corruptions.load(Relaxed), 1);
        // The first and last samples are there; the file was truncated.
        let got = h2.select(&[], i64::MIN, i64::MAX);
        assert!(got
            .iter()
            .all(|s| s.samples.first().map(|x| x.0) == Some(0)));
        assert!(got
            .iter()
            .all(|s| s.samples.last().map(|x| x.0) == Some(99_000)));
        assert!(std::fs::metadata(&victim).unwrap().len() < data.len() as u64);
    }

    #[test]
    fn histograms_survive_replay_and_checkpoints() {
        use crate::model::histogram::notation::parse_histogram;
        use crate::tsdb::HistValue;
        let fh = |s: &str| HistValue::Float(parse_histogram(s).unwrap().histogram);
        let int = |c: u64| {
            HistValue::Int(crate::model::histogram::Histogram {
                count: c,
                sum: c as f64 / 2.0,
                positive_spans: vec![crate::model::histogram::Span::new(0, 1)],
                positive_buckets: vec![c as i64],
                ..Default::default()
            })
        };
        // Histograms compared by their Debug text: stale markers are NaN.
        type Dump = Vec<(String, Vec<(i64, u64)>, String)>;
        let all = |h: &Head| -> Dump {
            h.select(&[], i64::MIN, i64::MAX)
                .into_iter()
                .map(|s| {
                    (
                        s.labels.to_string(),
                        s.samples.iter().map(|(t, v)| (*t, v.to_bits())).collect(),
                        format!("{:?}", s.histograms),
                    )
                })
                .collect()
        };
        let dir = tempfile::tempdir().unwrap();
        let (h, _, _) = open(dir.path(), 1 << 20);
        let nhcb = "{{schema:-53 count:3 sum:2 buckets:[1 2] custom_values:[5 10]}}";
        for t in 0..20 {
            let mut a = h.appender();
            a.append(&l(0), t * 1000, t as f64).unwrap();
            a.append_histogram(&l(1), t * 1000, &int(t as u64)).unwrap();
            a.append_histogram(&l(2), t * 1000, &fh(nhcb)).unwrap();
            a.commit().unwrap();
        }
        // A histogram stale marker by a float one.
        let mut a = h.appender();
        a.append(&l(1), 20_000, crate::model::STALE_NAN).unwrap();
        a.commit().unwrap();
        let before = all(&h);
        let h1 = h.select(&[], i64::MIN, i64::MAX).remove(1).histograms;
        assert_eq!(h1.len(), 21);
        assert!(h1[20].1.is_stale());
        drop(h);
        let (h2, _, st) = open(dir.path(), 1 << 20);
        assert_eq!((st.unknown_refs, st.samples), (0, 61));
        assert_eq!(all(&h2), before);
        // Through a checkpoint too.
        h2.checkpoint().unwrap();
        drop(h2);
        let (h3, _, st) = open(dir.path(), 1 << 20);
        assert!(st.checkpoint.is_some());
        assert_eq!(all(&h3), before);
    }

    #[test]
    fn a_failed_write_commits_nothing_and_later_batches_still_replay() {
        let dir = tempfile::tempdir().unwrap();
        let (h, wal, _) = open(dir.path(), 1 << 20);
        write(&h, 0, 3);
        // Make the next write fail: point the writer at a missing directory.
        {
            let mut w = wal.writer.lock();
            *w = wal::SegmentWriter::new(&dir.path().join("missing"), 50, 1 << 20);
        }
        let mut a = h.appender();
        a.append(&l(99), 10_000, 1.0).unwrap();
        let err = a.commit().unwrap_err();
        assert!(err.to_string().contains("create segment"), "{err}");
        assert_eq!(h.select(&[], 10_000, 10_000).len(), 0);
        {
            let mut w = wal.writer.lock();
            *w = wal::SegmentWriter::new(dir.path(), 51, 1 << 20);
        }
        // The series created by the failed batch is logged with this one.
        let r = h.lookup(&l(99)).unwrap();
        let mut a = h.appender();
        a.append_ref(r, 11_000, 2.0).unwrap();
        a.commit().unwrap();
        let before = dump(&h);
        drop(h);
        let (h2, _, st) = open(dir.path(), 1 << 20);
        assert_eq!(st.unknown_refs, 0);
        assert_eq!(dump(&h2), before);
    }

    /// Every samples record in the log, decoded as a reader would.
    fn logged_samples(dir: &Path) -> Vec<(u64, i64, u64)> {
        let mut out = Vec::new();
        let mut state = wal::SampleState::default();
        for n in wal::list_segments(dir).unwrap() {
            let p = dir.join(wal::segment_name(n));
            let c = wal::replay_file(&p, false, &mut state, |r| {
                if let Record::Samples(s) = r {
                    out.extend(s.into_iter().map(|(r, t, v)| (r, t, v.to_bits())));
                }
            })
            .unwrap();
            assert_eq!(c, None);
        }
        out
    }

    #[test]
    fn a_series_record_precedes_its_first_sample_across_concurrent_batches() {
        let dir = tempfile::tempdir().unwrap();
        let (h, _wal, _) = open(dir.path(), 1 << 20);
        // Batch A creates the series but commits last; batch B finds it
        // and commits a sample of it first.
        let mut a = h.appender();
        let r = a.append(&l(1), 1000, 1.0).unwrap();
        let mut b = h.appender();
        b.append(&l(1), 2000, 2.0).unwrap();
        b.commit().unwrap();
        a.commit().unwrap();
        let mut c = h.appender();
        c.append_ref(r, 3000, 3.0).unwrap();
        c.commit().unwrap();
        let before = dump(&h);
        drop(h);
        let (h2, _, st) = open(dir.path(), 1 << 20);
        assert_eq!(st.unknown_refs, 0, "{st:?}");
        assert_eq!(dump(&h2), before);
        assert_eq!(before[0].1.len(), 2, "{before:?}");
    }

    #[test]
    fn samples_a_batch_rejects_within_itself_never_reach_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let (h, _wal, _) = open(dir.path(), 1 << 20);
        let mut a = h.appender();
        let r1 = a.append(&l(1), 20_000, 1.0).unwrap();
        // Contiguous, as a remote-write series' sample list.
        assert_eq!(a.append_ref(r1, 10_000, 2.0), Err(AppendError::OutOfOrder));
        assert_eq!(
            a.append_ref(r1, 20_000, 3.0),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!(a.append_ref(r1, 20_000, 1.0), Ok(()));
        // The same series again after another one (a series listed twice
        // in one request).
        let r2 = a.append(&l(2), 5_000, 1.0).unwrap();
        assert!(r2 != r1);
        assert_eq!(a.append_ref(r1, 15_000, 4.0), Err(AppendError::OutOfOrder));
        a.append_ref(r1, 30_000, 5.0).unwrap();
        a.append_ref(r2, 6_000, 6.0).unwrap();
        assert_eq!(a.len(), 4);
        a.commit().unwrap();
        let st = h.stats();
        assert_eq!((st.out_of_order, st.duplicates), (2, 1));
        let mut logged = logged_samples(dir.path());
        logged.sort_unstable();
        let mut want = vec![
            (r1.0, 20_000, 1f64.to_bits()),
            (r1.0, 30_000, 5f64.to_bits()),
            (r2.0, 5_000, 1f64.to_bits()),
            (r2.0, 6_000, 6f64.to_bits()),
        ];
        want.sort_unstable();
        assert_eq!(logged, want);
    }

    #[test]
    fn values_encoded_across_batches_replay_bit_for_bit_after_cuts_and_checkpoints() {
        let dir = tempfile::tempdir().unwrap();
        // Small segments: series' previous values are often in an earlier
        // segment (or a checkpoint), where the encoding must not look.
        let (h, _wal, _) = open(dir.path(), 1500);
        let vals = [
            0.0,
            -0.0,
            f64::NAN,
            crate::model::STALE_NAN,
            43.7,
            0.137,
            1e300,
            f64::INFINITY,
        ];
        for t in 0..300i64 {
            let mut a = h.appender();
            for i in 0..4 {
                let v = match i {
                    0 => (t * 3) as f64,
                    1 => ((t * 7919) % 1000) as f64 / 10.0,
                    2 => vals[(t as usize) % vals.len()],
                    _ => t as f64 * 0.137 + 5.0,
                };
                // Jittered timestamps on one series.
                let ts = t * 1000 + if i == 3 { t % 3 } else { 0 };
                a.append(&l(i), ts, v).unwrap();
            }
            a.commit().unwrap();
            if t == 150 {
                assert!(h.checkpoint().unwrap().is_some());
            }
        }
        let before = dump(&h);
        drop(h);
        let (h2, _, st) = open(dir.path(), 1500);
        assert!(st.corruptions.is_empty(), "{st:?}");
        assert_eq!(dump(&h2), before);
    }

    fn open_with_chunks(dir: &Path) -> (Arc<Head>, ReplayStats) {
        let wal = Arc::new(
            Wal::open(
                &dir.join("wal"),
                WalOptions {
                    segment_size: 4096,
                    compression: Compression::Snappy,
                },
            )
            .unwrap(),
        );
        let head = Arc::new(Head::default());
        let (hc, loaded) =
            super::super::head_chunks::HeadChunks::open(&dir.join("chunks_head")).unwrap();
        head.attach_chunk_files(Arc::new(hc)).unwrap();
        let st = head.replay_with_chunks(&wal, i64::MIN, loaded).unwrap();
        head.attach_wal(wal).unwrap();
        (head, st)
    }

    #[test]
    fn full_chunks_go_to_files_and_come_back_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (h, _) = open_with_chunks(dir.path());
        write(&h, 0, 600);
        let heap_before = h.stats().chunk_bytes;
        // 5 series x 600 samples: 4 full chunks each, the 5th open.
        assert_eq!(h.write_chunks().unwrap(), 20);
        let st = h.stats();
        assert_eq!((st.mmapped_chunks, st.chunks), (20, 25));
        assert!(st.chunk_bytes * 4 < heap_before, "{st:?} vs {heap_before}");
        assert!(dir.path().join("chunks_head/000001").exists());
        let before = dump(&h);
        assert_eq!(before[0].1.len(), 600);
        drop(h);

        let (h, st) = open_with_chunks(dir.path());
        assert_eq!(st.mmapped_chunks, 20, "{st:?}");
        assert_eq!(st.mmapped_samples_skipped, 20 * 120, "{st:?}");
        assert_eq!(dump(&h), before);
        assert_eq!(h.stats().mmapped_chunks, 20);
        // Appends go on; a checkpoint leaves the written chunks out and
        // the next restart still has everything.
        write(&h, 600, 800);
        h.write_chunks().unwrap();
        assert!(h.checkpoint().unwrap().is_some());
        write(&h, 800, 850);
        let before = dump(&h);
        drop(h);
        let (h, st) = open_with_chunks(dir.path());
        assert!(st.checkpoint.is_some());
        assert_eq!(dump(&h), before);
        assert_eq!(st.unknown_refs, 0);

        // Retention drops the references, then the files holding only
        // chunks out of retention (not the one being written).
        assert_eq!(h.stats().mmapped_chunks, 30);
        let ts = h.truncate(700_000);
        assert_eq!(ts.chunk_files_removed, 1, "{ts:?}");
        assert!(!dir.path().join("chunks_head/000001").exists());
        let after = dump(&h);
        assert!(
            after.iter().all(|(_, s)| s[0].0 >= 600_000),
            "{:?}",
            after[0].1[0]
        );
        assert_eq!(after[0].1.last(), before[0].1.last());
    }

    #[test]
    fn full_histogram_chunks_go_to_files_and_come_back_after_restart() {
        use crate::tsdb::series_hist::testdata::{dump, float, int, nhcb};
        let hdump = |h: &Head| dump(h, i64::MIN, i64::MAX);
        let write_hists = |h: &Head, from: i64, to: i64| {
            for t in from..to {
                let mut a = h.appender();
                // Counter resets every 70 samples cut chunks.
                a.append_histogram(&l(10), t * 1000, &int((t % 70 + 1) as u64))
                    .unwrap();
                a.append_histogram(&l(11), t * 1000, &float(t as f64))
                    .unwrap();
                a.append_histogram(&l(12), t * 1000, &nhcb((t % 50) as f64))
                    .unwrap();
                a.append(&l(13), t * 1000, t as f64).unwrap();
                a.commit().unwrap();
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let (h, _) = open_with_chunks(dir.path());
        write_hists(&h, 0, 600);
        let heap_before = h.stats().chunk_bytes;
        let written = h.write_chunks().unwrap();
        // Float: 4 full chunks; histograms: one per reset at least.
        assert!(written >= 4 + 8 + 11, "{written}");
        let st = h.stats();
        assert_eq!(st.mmapped_chunks, written);
        assert!(st.chunk_bytes * 2 < heap_before, "{st:?} vs {heap_before}");
        // Encodings 2 and 3 in the file.
        let raw = std::fs::read(dir.path().join("chunks_head/000001")).unwrap();
        let mut pos = super::super::head_chunks::FILE_HEADER;
        let mut encodings = std::collections::BTreeSet::new();
        while let Ok(d) = super::super::head_chunks::decode_chunk(&raw[pos..], true) {
            encodings.insert(d.encoding);
            pos += d.len;
        }
        assert_eq!(encodings, [1, 2, 3].into());
        let before = hdump(&h);
        assert_eq!(before[0].2.len(), 600);
        drop(h);

        let (h, st) = open_with_chunks(dir.path());
        assert_eq!(st.mmapped_chunks, written as u64, "{st:?}");
        assert!(st.mmapped_samples_skipped >= 500, "{st:?}");
        assert_eq!(hdump(&h), before);
        // Appends go on; a checkpoint leaves the written chunks out and the
        // next restart still has everything.
        write_hists(&h, 600, 800);
        h.write_chunks().unwrap();
        assert!(h.checkpoint().unwrap().is_some());
        write_hists(&h, 800, 850);
        let before = hdump(&h);
        let s = h.stats();
        assert_eq!((s.out_of_order, s.duplicates), (0, 0), "{s:?}");
        drop(h);
        let (h, st) = open_with_chunks(dir.path());
        assert!(st.checkpoint.is_some());
        assert_eq!(st.unknown_refs, 0);
        assert_eq!(hdump(&h), before);
        // Retention drops histogram chunks in the files by their end.
        h.truncate(700_000);
        let after = hdump(&h);
        assert!(after
            .iter()
            .all(|s| s.2.first().is_none_or(|x| x.0 >= 500_000)));
        assert_eq!(after[0].2.last(), before[0].2.last());
    }
}
