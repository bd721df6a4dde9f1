//! Head → block compaction, block compaction and block retention, run the
//! way Prometheus' `tsdb.DB` runs them:
//!
//! * when the head spans more than 1.5 block ranges, its oldest range
//!   (from its oldest sample to the next multiple of the range) is written
//!   as a level-1 block read through the [`Querier`] seam, the block joins
//!   the served [`BlockSet`], the head is truncated below the block's end
//!   and a WAL checkpoint is taken;
//! * blocks whose ranges overlap are merged (vertical compaction); then
//!   blocks lying in one window of the next larger range (2 h, 6 h, 18 h,
//!   … up to 10% of retention, at most 31 d) are merged, the newest block
//!   left alone; tombstones are applied while merging, and the new
//!   block's `meta.json` records its sources, parents and level;
//! * the parents go only after the new block is in place; a restart after
//!   a crash in between deletes blocks named as another's parents
//!   ([`super::block::load_blocks`]);
//! * retention deletes whole blocks, oldest first: those whose end is
//!   more than the retention before the newest block's end, then while
//!   blocks + WAL + head chunks exceed the size limit.

use super::block::meta::BlockDesc;
use super::block::{self, Block, BlockError, BlockMeta, BlockSeries, Compaction, WriteOptions};
use super::series_hist::HistValue;
use super::storage::{merge_by_time, merge_samples, FanoutQuerier, Querier, Queryable};
use super::Head;
use crate::metrics::Kind;
use crate::model::{Labels, MatchType, Matcher};
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// Samples per chunk in written blocks (Prometheus' head target).
const SAMPLES_PER_CHUNK: usize = 120;

/// Share of a block's series with tombstones above which compaction
/// rewrites it (Prometheus' planner).
const TOMBSTONE_SHARE: f64 = 0.05;

/// Prometheus' `--storage.tsdb.max-block-duration` bound.
const MAX_BLOCK_MS: i64 = 31 * 24 * 3_600_000;

/// The persisted blocks served beside the head; members change as
/// compaction and retention run. Queries read the set as it was when
/// they opened their querier (each block kept open by its `Arc`).
#[derive(Default)]
pub struct BlockSet {
    /// Sorted by (minTime, ULID).
    blocks: RwLock<Vec<Arc<Block>>>,
    /// Read errors of blocks no longer in the set (the count only grows).
    retired_errors: AtomicU64,
    /// Blocks opened by queriers: only those whose range overlaps the
    /// query's are.
    opened: AtomicU64,
}

impl BlockSet {
    pub fn new(mut blocks: Vec<Arc<Block>>) -> BlockSet {
        sort(&mut blocks);
        BlockSet {
            blocks: RwLock::new(blocks),
            retired_errors: AtomicU64::new(0),
            opened: AtomicU64::new(0),
        }
    }

    /// The current members, oldest first.
    pub fn blocks(&self) -> Vec<Arc<Block>> {
        self.blocks.read().clone()
    }

    pub fn len(&self) -> usize {
        self.blocks.read().len()
    }

    pub fn is_empty(&self) -> bool {
        self.blocks.read().is_empty()
    }

    /// The latest end (exclusive) of any block.
    pub fn max_time(&self) -> Option<i64> {
        self.blocks.read().iter().map(|b| b.meta().max_time).max()
    }

    /// Damage met by queries and compaction in the blocks served since
    /// start.
    pub fn read_errors(&self) -> u64 {
        let current: u64 = self.blocks.read().iter().map(|b| b.read_errors()).sum();
        current + self.retired_errors.load(Relaxed)
    }

    /// Blocks read by queriers so far (one per block and querier whose
    /// ranges overlap).
    pub fn blocks_queried(&self) -> u64 {
        self.opened.load(Relaxed)
    }

    /// Takes out the blocks named in `remove` and adds `add`, in one step
    /// for readers.
    fn replace(&self, remove: &[String], add: Option<Arc<Block>>) {
        let mut w = self.blocks.write();
        w.retain(|b| {
            let keep = !remove.contains(&b.meta().ulid);
            if !keep {
                self.retired_errors.fetch_add(b.read_errors(), Relaxed);
            }
            keep
        });
        w.extend(add);
        sort(&mut w);
    }
}

fn sort(blocks: &mut [Arc<Block>]) {
    blocks.sort_by(|a, b| {
        (a.meta().min_time, &a.meta().ulid).cmp(&(b.meta().min_time, &b.meta().ulid))
    });
}

impl Queryable for BlockSet {
    fn querier(&self, mint: i64, maxt: i64) -> Box<dyn Querier + '_> {
        let queriers = self
            .blocks
            .read()
            .iter()
            .filter(|b| b.meta().min_time <= maxt && mint < b.meta().max_time)
            .map(|b| b.owned_querier(mint, maxt))
            .collect::<Vec<_>>();
        self.opened.fetch_add(queriers.len() as u64, Relaxed);
        Box::new(FanoutQuerier::new(queriers))
    }
}

/// `steps` ranges from `min`, each `factor` times the previous
/// (Prometheus' `ExponentialBlockRanges`).
pub fn exponential_ranges(min: i64, steps: usize, factor: i64) -> Vec<i64> {
    let mut out = Vec::with_capacity(steps);
    let mut r = min;
    for _ in 0..steps {
        out.push(r);
        r = r.saturating_mul(factor);
    }
    out
}

/// The compaction ranges Prometheus uses for a head block range and a
/// time retention: ten steps of ×3 from the block range, those above
/// 10% of the retention (at most 31 d) dropped; the head's range always
/// stays.
pub fn block_ranges(min_block_ms: i64, retention_ms: i64) -> Vec<i64> {
    let max = (retention_ms / 10).min(MAX_BLOCK_MS);
    let mut r = exponential_ranges(min_block_ms, 10, 3);
    if max > min_block_ms {
        r.retain(|v| *v <= max);
    } else {
        r.truncate(1);
    }
    r
}

/// What the compactor is told.
#[derive(Clone, Debug)]
pub struct CompactorOptions {
    /// The head's block range (ms).
    pub min_block_ms: i64,
    /// Time retention (ms; 0: none).
    pub retention_ms: i64,
    /// Size retention (bytes over blocks, WAL and head chunks).
    pub retention_size: Option<u64>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct CompactionStats {
    /// Blocks written by compaction (from the head or from blocks).
    pub compactions: AtomicU64,
    pub head_compactions: AtomicU64,
    pub failed: AtomicU64,
    /// Total time spent compacting, in microseconds.
    pub micros: AtomicU64,
    pub time_retentions: AtomicU64,
    pub size_retentions: AtomicU64,
    /// Blocks deleted by retention.
    pub blocks_deleted: AtomicU64,
    /// Bytes of the served blocks at the last retention pass.
    pub blocks_bytes: AtomicU64,
    /// Chunks of merged blocks copied unchanged, and decoded to be merged
    /// with overlapping ones or trimmed by tombstones.
    pub chunks_copied: AtomicU64,
    pub chunks_reencoded: AtomicU64,
    /// Of `micros`, the time spent writing blocks from the head.
    pub head_micros: AtomicU64,
}

/// Why a compaction step failed; the data it read stays where it was.
#[derive(Debug, thiserror::Error)]
pub enum CompactError {
    #[error("compaction: {0}")]
    Block(#[from] BlockError),
    #[error("compaction: no block {0}")]
    NoSuchBlock(String),
    #[error("compaction: block {0} is damaged (see the block read error logged before); it is served as it is and left out of compaction")]
    Damaged(String),
}

/// Runs compaction and retention for one data directory.
pub struct Compactor {
    dir: PathBuf,
    head: Arc<Head>,
    /// What head compaction reads: the head itself, or a view of it with
    /// deleted samples masked ([`super::admin::HeadDeletions`]).
    head_reader: Arc<dyn Queryable>,
    blocks: Arc<BlockSet>,
    opts: CompactorOptions,
    ranges: Vec<i64>,
    pub stats: CompactionStats,
    /// One compaction or rewrite at a time.
    busy: Mutex<()>,
    /// Blocks found damaged while merging: not planned again (Prometheus
    /// marks them `compaction.failed`).
    damaged: Mutex<Vec<String>>,
}

impl Compactor {
    /// The head rejects samples older than the newest block's end from now
    /// on (Prometheus' minimum valid time), so what is in a block is not
    /// written to another from the head.
    pub fn new(
        dir: &Path,
        head: Arc<Head>,
        blocks: Arc<BlockSet>,
        opts: CompactorOptions,
    ) -> Compactor {
        let min_block_ms = opts.min_block_ms.max(1000);
        let ranges = block_ranges(min_block_ms, opts.retention_ms);
        if let Some(t) = blocks.max_time() {
            head.truncate(t);
        }
        Compactor {
            dir: dir.to_path_buf(),
            head_reader: head.clone(),
            head,
            blocks,
            opts: CompactorOptions {
                min_block_ms,
                ..opts
            },
            ranges,
            stats: CompactionStats::default(),
            busy: Mutex::new(()),
            damaged: Mutex::new(Vec::new()),
        }
    }

    /// Head compaction reads the head through `reader` (the same head,
    /// seen with deletions applied) instead of directly.
    pub fn with_head_reader(mut self, reader: Arc<dyn Queryable>) -> Compactor {
        self.head_reader = reader;
        self
    }

    pub fn blocks(&self) -> &Arc<BlockSet> {
        &self.blocks
    }

    pub fn ranges(&self) -> &[i64] {
        &self.ranges
    }

    /// One pass: the head's ranges ready for a block, then block merges
    /// until none is planned, then retention. Returns the blocks written.
    /// A failure is counted and ends the pass; the next pass retries.
    pub fn run(&self) -> Result<usize, CompactError> {
        let _span = tracing::info_span!("compaction").entered();
        let mut written = 0;
        let res = (|| {
            while let Some((mint, maxt)) = self.head_compactable() {
                self.compact_head(mint, maxt)?;
                written += 1;
            }
            loop {
                let plan = self.plan();
                if plan.is_empty() {
                    break;
                }
                if self.compact_blocks(&plan)?.is_some() {
                    written += 1;
                }
            }
            Ok(())
        })();
        self.apply_retention();
        res.map(|()| written)
    }

    /// The head's range to write, when the head spans more than 1.5
    /// block ranges: `[oldest sample, next multiple of the range)`.
    pub fn head_compactable(&self) -> Option<(i64, i64)> {
        let r = self.opts.min_block_ms;
        let floor = self.blocks.max_time().unwrap_or(i64::MIN);
        let mint = self.head.min_time().max(floor);
        let maxt = self.head.max_time();
        if mint == i64::MAX || maxt == i64::MIN || maxt.saturating_sub(mint) <= r / 2 * 3 {
            return None;
        }
        Some((mint, mint.div_euclid(r) * r + r))
    }

    fn timed<T>(&self, f: impl FnOnce() -> Result<T, CompactError>) -> Result<T, CompactError> {
        let started = Instant::now();
        let res = f();
        self.stats
            .micros
            .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
        match &res {
            Ok(_) => {
                self.stats.compactions.fetch_add(1, Relaxed);
            }
            Err(e) => {
                self.stats.failed.fetch_add(1, Relaxed);
                tracing::error!(error = %e, "compaction failed; retried on the next pass");
            }
        }
        res
    }

    /// Writes the head's samples in `[mint, maxt)` as a level-1 block,
    /// serves it, truncates the head below `maxt` and checkpoints the WAL.
    pub fn compact_head(&self, mint: i64, maxt: i64) -> Result<BlockMeta, CompactError> {
        let _busy = self.busy.lock();
        let _span = tracing::info_span!("head_compaction", mint, maxt).entered();
        let started = Instant::now();
        let meta = self.timed(|| {
            let series = collect(&[&*self.head_reader], mint, maxt - 1);
            let meta = block::write_block(
                &self.dir,
                series,
                WriteOptions {
                    range: Some((mint, maxt)),
                    chunks_checked: true,
                    ..Default::default()
                },
            )?;
            let b = Block::open(&self.dir.join(&meta.ulid))?;
            self.blocks.replace(&[], Some(Arc::new(b)));
            Ok(meta)
        })?;
        self.stats.head_compactions.fetch_add(1, Relaxed);
        self.stats
            .head_micros
            .fetch_add(started.elapsed().as_micros() as u64, Relaxed);
        tracing::info!(
            ulid = %meta.ulid,
            mint,
            maxt,
            samples = meta.stats.num_samples,
            "head compacted into a block"
        );
        self.head.truncate(maxt);
        if let Err(e) = self.head.checkpoint() {
            // The block is in place; replay after a restart reads samples
            // the block also holds, and queries take each once.
            tracing::error!(error = %e, "WAL checkpoint after head compaction failed");
        }
        Ok(meta)
    }

    /// The blocks to merge next (empty: nothing to do): overlapping
    /// blocks first; else, the newest block left out, the first window of
    /// a larger range holding more than one block that is complete or
    /// ends before the newest remaining block starts; else a block to
    /// rewrite without its tombstones (Prometheus' rule: at least the
    /// middle compaction range long, tombstones on more than 5% of its
    /// series; or every series deleted).
    pub fn plan(&self) -> Vec<Arc<Block>> {
        let damaged = self.damaged.lock().clone();
        let mut blocks = self.blocks.blocks();
        blocks.retain(|b| !damaged.contains(&b.meta().ulid));
        plan(&blocks, &self.ranges)
    }

    /// Merges `parents` into one block (tombstones applied, overlapping
    /// samples taken once), serves it in their place and deletes them.
    /// With a single parent this rewrites it without its deleted samples.
    pub fn compact_blocks(
        &self,
        parents: &[Arc<Block>],
    ) -> Result<Option<BlockMeta>, CompactError> {
        let _busy = self.busy.lock();
        let ids: Vec<String> = parents.iter().map(|b| b.meta().ulid.clone()).collect();
        let _span = tracing::info_span!("block_compaction", parents = ?ids).entered();
        let meta = self.timed(|| {
            let current = self.blocks.blocks();
            if let Some(gone) = ids
                .iter()
                .find(|id| !current.iter().any(|b| &b.meta().ulid == *id))
            {
                return Err(CompactError::NoSuchBlock(gone.clone()));
            }
            let mint = parents.iter().map(|b| b.meta().min_time).min().unwrap_or(0);
            let maxt = parents.iter().map(|b| b.meta().max_time).max().unwrap_or(0);
            // A series a damaged block would leave out must not be lost
            // with the block: the merge is abandoned and the block kept as
            // it is.
            let (series, merge) = merge::merge_blocks(parents, mint, maxt).map_err(|d| {
                let b = &parents[d.parent];
                b.report(&d.error);
                self.damaged.lock().push(b.meta().ulid.clone());
                CompactError::Damaged(b.meta().ulid.clone())
            })?;
            tracing::debug!(
                copied = merge.copied,
                reencoded = merge.reencoded,
                "chunks of the parents"
            );
            self.stats.chunks_copied.fetch_add(merge.copied, Relaxed);
            self.stats
                .chunks_reencoded
                .fetch_add(merge.reencoded, Relaxed);
            if series.is_empty() {
                // Everything was deleted: no block replaces the parents.
                return Ok(None);
            }
            let meta = block::write_block(
                &self.dir,
                series,
                WriteOptions {
                    range: Some((mint, maxt)),
                    tombstones: Default::default(),
                    compaction: Some(merged_compaction(parents)),
                    chunks_checked: true,
                },
            )?;
            let b = Block::open(&self.dir.join(&meta.ulid))?;
            self.blocks.replace(&ids, Some(Arc::new(b)));
            Ok(Some(meta))
        })?;
        if meta.is_none() {
            self.blocks.replace(&ids, None);
        }
        for p in parents {
            if let Err(e) = std::fs::remove_dir_all(p.dir()) {
                tracing::warn!(dir = %p.dir().display(), error = %e, "cannot delete a compacted block");
            }
        }
        if let Some(m) = &meta {
            tracing::info!(ulid = %m.ulid, level = m.compaction.level, mint = m.min_time, maxt = m.max_time, "blocks compacted");
        }
        Ok(meta)
    }

    /// Rewrites the block `ulid` with its tombstones applied (for the
    /// admin API's `clean_tombstones`); a block without tombstones is
    /// left alone. Returns the new block's meta, `None` when nothing was
    /// written (no tombstones, or every sample deleted).
    pub fn rewrite_without_tombstones(
        &self,
        ulid: &str,
    ) -> Result<Option<BlockMeta>, CompactError> {
        let b = self
            .blocks
            .blocks()
            .into_iter()
            .find(|b| b.meta().ulid == ulid)
            .ok_or_else(|| CompactError::NoSuchBlock(ulid.to_string()))?;
        if b.tombstones().is_empty() {
            return Ok(None);
        }
        self.compact_blocks(&[b])
    }

    /// Deletes whole blocks beyond the time and size retention.
    pub fn apply_retention(&self) {
        let _busy = self.busy.lock();
        let mut blocks = self.blocks.blocks();
        // Newest first.
        blocks.sort_by_key(|b| std::cmp::Reverse(b.meta().max_time));
        let sizes: Vec<u64> = blocks.iter().map(|b| b.size_bytes()).collect();
        self.stats
            .blocks_bytes
            .store(sizes.iter().sum::<u64>(), Relaxed);
        let mut doomed = vec![false; blocks.len()];
        let newest = blocks.first().map(|b| b.meta().max_time);
        let mut by_time = false;
        if let (Some(newest), true) = (newest, self.opts.retention_ms > 0) {
            for (i, b) in blocks.iter().enumerate() {
                if newest - b.meta().max_time > self.opts.retention_ms {
                    doomed[i] = true;
                    by_time = true;
                }
            }
        }
        let mut by_size = false;
        if let Some(limit) = self.opts.retention_size {
            let mut total = block::dir_size(&self.dir.join("wal"))
                + block::dir_size(&self.dir.join("chunks_head"));
            for (i, size) in sizes.iter().enumerate() {
                total += size;
                if total > limit && !doomed[i] {
                    doomed[i] = true;
                    by_size = true;
                }
            }
        }
        if by_time {
            self.stats.time_retentions.fetch_add(1, Relaxed);
        }
        if by_size {
            self.stats.size_retentions.fetch_add(1, Relaxed);
        }
        let gone: Vec<&Arc<Block>> = blocks
            .iter()
            .zip(&doomed)
            .filter(|(_, d)| **d)
            .map(|(b, _)| b)
            .collect();
        if gone.is_empty() {
            return;
        }
        let ids: Vec<String> = gone.iter().map(|b| b.meta().ulid.clone()).collect();
        self.blocks.replace(&ids, None);
        for b in gone {
            tracing::info!(ulid = %b.meta().ulid, maxt = b.meta().max_time, by_time, by_size, "block deleted by retention");
            if let Err(e) = std::fs::remove_dir_all(b.dir()) {
                tracing::warn!(dir = %b.dir().display(), error = %e, "cannot delete a block");
            }
            self.stats.blocks_deleted.fetch_add(1, Relaxed);
        }
        let left: u64 = self.blocks.blocks().iter().map(|b| b.size_bytes()).sum();
        self.stats.blocks_bytes.store(left, Relaxed);
    }
}

/// The compactor's and block set's metrics besides the ones the app's
/// collector pushes itself.
pub fn push_metrics(c: &Compactor, push: &mut dyn FnMut(&str, &str, Kind, f64)) {
    let st = &c.stats;
    push(
        "klaxon_tsdb_head_compaction_seconds",
        "Time spent writing blocks from the head (part of klaxon_tsdb_compaction_seconds_total).",
        Kind::Counter,
        st.head_micros.load(Relaxed) as f64 / 1e6,
    );
    push(
        "klaxon_tsdb_compaction_chunks_copied",
        "Chunks of merged blocks copied unchanged.",
        Kind::Counter,
        st.chunks_copied.load(Relaxed) as f64,
    );
    push(
        "klaxon_tsdb_compaction_chunks_reencoded",
        "Chunks of merged blocks decoded and encoded again (overlapped by another block's or cut by tombstones).",
        Kind::Counter,
        st.chunks_reencoded.load(Relaxed) as f64,
    );
    push(
        "klaxon_tsdb_blocks_queried",
        "Blocks read by queries: only blocks whose time range overlaps a query's are.",
        Kind::Counter,
        c.blocks.blocks_queried() as f64,
    );
}

/// Prometheus' compaction meta for a merge: level one above the highest
/// parent's (a rewrite of one block keeps its level), sources the union
/// of the parents', parents each one.
fn merged_compaction(parents: &[Arc<Block>]) -> Compaction {
    let top = parents
        .iter()
        .map(|b| b.meta().compaction.level)
        .max()
        .unwrap_or(0);
    let mut sources: Vec<String> = parents
        .iter()
        .flat_map(|b| {
            let c = &b.meta().compaction;
            if c.sources.is_empty() {
                vec![b.meta().ulid.clone()]
            } else {
                c.sources.clone()
            }
        })
        .collect();
    sources.sort();
    sources.dedup();
    Compaction {
        level: if parents.len() == 1 {
            top.max(1)
        } else {
            top + 1
        },
        sources,
        parents: parents
            .iter()
            .map(|b| BlockDesc {
                ulid: b.meta().ulid.clone(),
                min_time: b.meta().min_time,
                max_time: b.meta().max_time,
            })
            .collect(),
        failed: false,
    }
}

/// Reads `sources` over `[mint, maxt]` one metric name at a time (so only
/// one name's decoded samples are in memory), merges equal series (on
/// equal timestamps the first source wins) and encodes them in chunks.
fn collect(sources: &[&dyn Queryable], mint: i64, maxt: i64) -> Vec<BlockSeries> {
    let queriers: Vec<Box<dyn Querier + '_>> =
        sources.iter().map(|s| s.querier(mint, maxt)).collect();
    let mut names: Vec<String> = queriers
        .iter()
        .flat_map(|q| q.label_values("__name__", &[]))
        .collect();
    names.sort_unstable();
    names.dedup();
    // The empty name selects the series without one.
    names.push(String::new());
    let mut out = Vec::new();
    for name in names {
        let Ok(m) = Matcher::new(MatchType::Equal, "__name__", name) else {
            continue;
        };
        type Merged = (Vec<(i64, f64)>, Vec<(i64, HistValue)>);
        let mut merged: BTreeMap<Labels, Merged> = BTreeMap::new();
        for q in &queriers {
            for s in q.select(std::slice::from_ref(&m)) {
                match merged.remove(&s.labels) {
                    Some((floats, hists)) => {
                        let both = (
                            merge_samples(floats, s.samples),
                            merge_by_time(hists, s.histograms),
                        );
                        merged.insert(s.labels, both);
                    }
                    None => {
                        merged.insert(s.labels, (s.samples, s.histograms));
                    }
                }
            }
        }
        for (labels, (samples, histograms)) in merged {
            if samples.is_empty() && histograms.is_empty() {
                continue;
            }
            out.push(BlockSeries {
                labels,
                chunks: block::encode_series(&samples, &histograms, SAMPLES_PER_CHUNK),
            });
        }
    }
    out
}

/// The window of `range` that `t` falls in starts here.
fn window_start(t: i64, range: i64) -> i64 {
    t.div_euclid(range) * range
}

/// See [`Compactor::plan`]. `blocks` sorted by minTime.
pub fn plan(blocks: &[Arc<Block>], ranges: &[i64]) -> Vec<Arc<Block>> {
    let overlapping = overlapping(blocks);
    if !overlapping.is_empty() {
        return overlapping;
    }
    // The newest block is left out, and a window is taken when it is
    // complete or ends before the newest of the remaining blocks starts.
    let Some((_, older)) = blocks.split_last() else {
        return Vec::new();
    };
    let Some(high) = older.last().map(|b| b.meta().min_time) else {
        return Vec::new();
    };
    for &range in ranges.iter().skip(1) {
        for group in split_by_range(older, range) {
            let mint = group[0].meta().min_time;
            let maxt = group[group.len() - 1].meta().max_time;
            if group.len() > 1 && (maxt - mint == range || maxt <= high) {
                return group;
            }
        }
    }
    // Newest first, a block spanning at least the middle range whose
    // tombstones outnumber 5% of its series is rewritten on its own; below
    // that size, only a block whose every series is deleted.
    let big = ranges.get(ranges.len() / 2).copied().unwrap_or(i64::MAX);
    for b in older.iter().rev() {
        let m = b.meta();
        let stones: u64 = b.tombstones().values().map(|v| v.len() as u64).sum();
        if m.max_time - m.min_time < big {
            if stones > 0 && stones >= m.stats.num_series {
                return vec![b.clone()];
            }
            break;
        }
        if stones as f64 / (m.stats.num_series + 1) as f64 > TOMBSTONE_SHARE {
            return vec![b.clone()];
        }
    }
    Vec::new()
}

/// The first run of blocks whose ranges overlap (sorted by minTime).
fn overlapping(blocks: &[Arc<Block>]) -> Vec<Arc<Block>> {
    let mut group: Vec<Arc<Block>> = Vec::new();
    let mut end = i64::MIN;
    for b in blocks {
        let m = b.meta();
        if !group.is_empty() && m.min_time < end {
            group.push(b.clone());
            end = end.max(m.max_time);
            continue;
        }
        if group.len() > 1 {
            return group;
        }
        group = vec![b.clone()];
        end = m.max_time;
    }
    if group.len() > 1 {
        group
    } else {
        Vec::new()
    }
}

/// Blocks grouped by the window of `range` that holds them whole; blocks
/// wider than their window are in no group.
fn split_by_range(blocks: &[Arc<Block>], range: i64) -> Vec<Vec<Arc<Block>>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < blocks.len() {
        let t0 = window_start(blocks[i].meta().min_time, range);
        if blocks[i].meta().max_time > t0 + range {
            i += 1;
            continue;
        }
        let mut group = Vec::new();
        while i < blocks.len() {
            let m = blocks[i].meta();
            if m.min_time < t0 || m.max_time > t0 + range {
                break;
            }
            group.push(blocks[i].clone());
            i += 1;
        }
        out.push(group);
    }
    out
}

mod merge;
#[cfg(test)]
mod tests;
