//! Persisted blocks in Prometheus' on-disk format (`tsdb/docs/format/` in
//! the Prometheus repository): a directory named by a ULID holding
//! `meta.json`, `index` (format 2), `chunks/000001…` and `tombstones`.
//!
//! * [`write_block`] writes one atomically (a temporary directory, every
//!   file and directory fsynced, then renamed into place).
//! * [`Block::open`] checks magic numbers, versions and the checksums of
//!   the sections it loads; series, postings and chunks are checked when
//!   read. [`Block::verify`] reads everything.
//! * A [`Block`] is a [`Queryable`]: matchers are resolved on its postings
//!   (Prometheus' rules for matchers that match the empty string), chunks
//!   outside the range are skipped unread, tombstones are applied.
//! * [`load_blocks`] opens the blocks found directly under a directory;
//!   one that fails its checks is reported and left out.

mod chunks;
pub(crate) mod enc;
mod index;
pub mod meta;
mod tombstones;
pub mod ulid;

pub use index::{ChunkMeta, IndexSeries};
pub use meta::{BlockDesc, BlockMeta, BlockStats, Compaction};
pub use tombstones::Tombstones;
pub(crate) use tombstones::{add_interval, deleted};

use super::chunk::{ChunkIter, HeadChunk};
use super::series_hist::{self, HistValue};
use super::storage::{Querier, Queryable};
use super::SeriesData;
use crate::model::{Labels, Matcher};
use chunks::{ChunkError, ChunkReader, ChunkWriter, SeqChunkReader};
use enc::DecError;
use index::IndexReader;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Suffix of a block directory still being written.
pub const TMP_SUFFIX: &str = ".tmp-for-creation";

/// Why a block could not be written or read. Every variant names the
/// block directory and the file; corruption also names the offset.
#[derive(Debug, thiserror::Error)]
pub enum BlockError {
    #[error("block {dir}: {file}: offset {offset}: {msg}")]
    Corrupt {
        dir: String,
        file: String,
        offset: u64,
        msg: String,
    },
    #[error("block {dir}: {file}: {source}")]
    Io {
        dir: String,
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error("block {dir}: {file}: {msg}")]
    Invalid {
        dir: String,
        file: String,
        msg: String,
    },
}

fn io_err(dir: &Path, file: &str) -> impl FnOnce(std::io::Error) -> BlockError {
    let dir = dir.display().to_string();
    let file = file.to_string();
    move |source| BlockError::Io { dir, file, source }
}

fn corrupt(dir: &Path, file: &str, e: DecError) -> BlockError {
    BlockError::Corrupt {
        dir: dir.display().to_string(),
        file: file.to_string(),
        offset: e.offset,
        msg: e.msg,
    }
}

fn chunk_corrupt(dir: &Path, e: ChunkError) -> BlockError {
    BlockError::Corrupt {
        dir: dir.display().to_string(),
        file: format!("chunks/{}", e.file),
        offset: e.offset,
        msg: e.msg,
    }
}

/// One encoded chunk (Prometheus' encoding byte: 1 XOR, 2 integer and 3
/// float histogram) and the times of its first and last sample.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedChunk {
    pub encoding: u8,
    pub min_time: i64,
    pub max_time: i64,
    pub data: Vec<u8>,
}

/// Samples per chunk, Prometheus' target.
pub const SAMPLES_PER_CHUNK: usize = 120;

/// Cuts samples (in strictly increasing time, or the block writer
/// refuses the chunks) into XOR chunks of at most `per_chunk` samples
/// (Prometheus' head aims at 120).
pub fn encode_chunks(samples: &[(i64, f64)], per_chunk: usize) -> Vec<EncodedChunk> {
    let per_chunk = per_chunk.clamp(1, usize::from(u16::MAX));
    samples
        .chunks(per_chunk)
        .filter_map(|part| {
            let (first, rest) = part.split_first()?;
            let mut c = HeadChunk::new(first.0, first.1);
            for (t, v) in rest {
                c.append(*t, *v);
            }
            Some(EncodedChunk {
                encoding: chunks::ENCODING_XOR,
                min_time: first.0,
                max_time: c.max_time(),
                data: c.bytes().to_vec(),
            })
        })
        .collect()
}

/// [`encode_chunks`] for a series that may hold native histograms too
/// (each list in strictly increasing time): a chunk holds one sample
/// type, so one is cut wherever the type changes; histogram chunks are cut
/// as the head cuts them. On a timestamp in both lists the float is kept.
pub fn encode_series(
    samples: &[(i64, f64)],
    histograms: &[(i64, HistValue)],
    per_chunk: usize,
) -> Vec<EncodedChunk> {
    if histograms.is_empty() {
        return encode_chunks(samples, per_chunk);
    }
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < samples.len() || j < histograms.len() {
        let floats_next =
            j == histograms.len() || samples.get(i).is_some_and(|s| s.0 <= histograms[j].0);
        if floats_next {
            let end = histograms.get(j).map_or(i64::MAX, |h| h.0);
            let n = samples[i..].iter().take_while(|s| s.0 <= end).count();
            out.extend(encode_chunks(&samples[i..i + n], per_chunk));
            i += n;
            let last = samples[i - 1].0;
            while histograms.get(j).is_some_and(|h| h.0 <= last) {
                j += 1;
            }
        } else {
            let end = samples.get(i).map_or(i64::MAX, |s| s.0);
            let n = histograms[j..].iter().take_while(|h| h.0 < end).count();
            out.extend(
                series_hist::encode_chunks(&histograms[j..j + n])
                    .into_iter()
                    .map(|c| EncodedChunk {
                        encoding: c.encoding,
                        min_time: c.mint,
                        max_time: c.maxt,
                        data: c.bytes.into_vec(),
                    }),
            );
            j += n;
        }
    }
    out
}

/// A chunk's samples, by its encoding.
#[derive(Debug)]
pub(crate) enum Decoded {
    Floats(Vec<(i64, f64)>),
    Histograms(Vec<(i64, HistValue)>),
}

/// Decodes a chunk of `encoding` and checks it holds the sample count of
/// its header, in strictly increasing time from `min_time` to `max_time`.
fn check_chunk(encoding: u8, data: &[u8], min_time: i64, max_time: i64) -> Result<Decoded, String> {
    // Both chunk families start with a 16-bit sample count.
    let want = super::chunk::chunk_len(data);
    fn ok<T>(samples: &[(i64, T)], want: usize, min_time: i64, max_time: i64) -> bool {
        !samples.is_empty()
            && samples.len() == want
            && samples.first().is_some_and(|s| s.0 == min_time)
            && samples.last().is_some_and(|s| s.0 == max_time)
            && samples.windows(2).all(|w| w[0].0 < w[1].0)
    }
    let good = if encoding == chunks::ENCODING_XOR {
        let samples: Vec<(i64, f64)> = ChunkIter::new(data).collect();
        ok(&samples, want, min_time, max_time).then_some(Decoded::Floats(samples))
    } else {
        let samples = series_hist::decode_checked(encoding, data).map_err(|e| e.to_string())?;
        ok(&samples, want, min_time, max_time).then_some(Decoded::Histograms(samples))
    };
    good.ok_or_else(|| format!(
        "chunk does not decode to the {want} samples in increasing time from {min_time} to {max_time} its index entry names"
    ))
}

/// A series to write: its labels and its chunks in time order.
#[derive(Clone, Debug)]
pub struct BlockSeries {
    pub labels: Labels,
    pub chunks: Vec<EncodedChunk>,
}

/// What to write besides the series.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// The block's `[minTime, maxTime)`; the data's range when `None`.
    pub range: Option<(i64, i64)>,
    pub tombstones: Tombstones,
    /// Compaction level and parents (level 1 and none for new data).
    pub compaction: Option<Compaction>,
    /// The chunks were encoded by this process or read from a block with
    /// their checksums and index entries checked: written without
    /// decoding them again.
    pub chunks_checked: bool,
}

/// Writes a block under `parent` (series in any order; label sets must be
/// unique and non-empty) and returns its meta. Nothing is visible under
/// its ULID until the whole directory is on disk.
pub fn write_block(
    parent: &Path,
    mut series: Vec<BlockSeries>,
    opts: WriteOptions,
) -> Result<BlockMeta, BlockError> {
    let _span = tracing::info_span!("block_write", dir = %parent.display()).entered();
    let id = ulid::new(crate::model::now_millis().max(0) as u64);
    let tmp = parent.join(format!("{id}{TMP_SUFFIX}"));
    let result = write_into(&tmp, &id, &mut series, opts);
    let meta = match result {
        Ok(m) => m,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
    };
    fault::before_rename();
    let dest = parent.join(&id);
    let done = std::fs::rename(&tmp, &dest)
        .and_then(|()| sync_dir(parent))
        .map_err(io_err(&dest, "."));
    if let Err(e) = done {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(e);
    }
    Ok(meta)
}

fn sync_dir(d: &Path) -> std::io::Result<()> {
    std::fs::File::open(d)?.sync_all()
}

/// Replaces `dir/name` atomically: a temporary file, fsynced, renamed over
/// it, the directory fsynced.
fn replace_file(dir: &Path, name: &str, data: &[u8]) -> Result<(), BlockError> {
    let tmp = format!("{name}.tmp");
    write_file(dir, &tmp, data)?;
    std::fs::rename(dir.join(&tmp), dir.join(name))
        .and_then(|()| sync_dir(dir))
        .map_err(io_err(dir, name))
}

fn write_file(dir: &Path, name: &str, data: &[u8]) -> Result<(), BlockError> {
    use std::io::Write;
    let mut f = std::fs::File::create(dir.join(name)).map_err(io_err(dir, name))?;
    f.write_all(data).map_err(io_err(dir, name))?;
    f.sync_all().map_err(io_err(dir, name))
}

fn write_into(
    tmp: &Path,
    id: &str,
    series: &mut [BlockSeries],
    opts: WriteOptions,
) -> Result<BlockMeta, BlockError> {
    let invalid = |file: &str, msg: String| BlockError::Invalid {
        dir: tmp.display().to_string(),
        file: file.to_string(),
        msg,
    };
    if tmp.exists() {
        std::fs::remove_dir_all(tmp).map_err(io_err(tmp, "."))?;
    }
    std::fs::create_dir_all(tmp).map_err(io_err(tmp, "."))?;
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    let chunk_dir = tmp.join("chunks");
    let mut w = ChunkWriter::new(&chunk_dir).map_err(io_err(tmp, "chunks"))?;
    let mut stats = BlockStats::default();
    let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
    let mut entries = Vec::with_capacity(series.len());
    for s in series.iter() {
        if s.labels.is_empty() {
            return Err(invalid("index", "a series has no labels".into()));
        }
        if s.chunks.is_empty() {
            continue;
        }
        let mut metas = Vec::with_capacity(s.chunks.len());
        let mut prev_max: Option<i64> = None;
        for c in &s.chunks {
            if c.min_time > c.max_time || prev_max.is_some_and(|p| c.min_time <= p) {
                return Err(invalid(
                    "index",
                    format!("chunks of {:?} overlap or are out of order", s.labels),
                ));
            }
            prev_max = Some(c.max_time);
            if !chunks::known_encoding(c.encoding) {
                return Err(invalid(
                    "chunks",
                    format!("{:?}: unknown chunk encoding {}", s.labels, c.encoding),
                ));
            }
            if !opts.chunks_checked {
                check_chunk(c.encoding, &c.data, c.min_time, c.max_time)
                    .map_err(|m| invalid("chunks", format!("{:?}: {m}", s.labels)))?;
            }
            let r = w
                .write(c.encoding, &c.data)
                .map_err(io_err(tmp, "chunks"))?;
            metas.push(ChunkMeta {
                min_time: c.min_time,
                max_time: c.max_time,
                r#ref: r,
            });
            stats.num_chunks += 1;
            stats.num_samples += super::chunk::chunk_len(&c.data) as u64;
            mint = mint.min(c.min_time);
            maxt = maxt.max(c.max_time);
        }
        stats.num_series += 1;
        entries.push((s.labels.clone(), metas));
    }
    w.close().map_err(io_err(tmp, "chunks"))?;
    fault::check_write(tmp).map_err(io_err(tmp, "index"))?;
    let data = index::write_index(&entries).map_err(|m| invalid("index", m))?;
    write_file(tmp, "index", &data)?;
    stats.num_tombstones = opts.tombstones.values().map(|v| v.len() as u64).sum();
    write_file(tmp, "tombstones", &tombstones::encode(&opts.tombstones))?;
    let (min_time, max_time) = match opts.range {
        Some(r) => r,
        None if mint <= maxt => (mint, maxt.saturating_add(1)),
        None => (0, 0),
    };
    let meta = BlockMeta {
        ulid: id.to_string(),
        min_time,
        max_time,
        stats,
        compaction: match opts.compaction {
            // A rewrite names its parent but is a source of its own.
            Some(c) if c.sources.is_empty() => Compaction {
                sources: vec![id.to_string()],
                ..c
            },
            Some(c) => c,
            None => Compaction {
                level: 1,
                sources: vec![id.to_string()],
                ..Default::default()
            },
        },
        version: 1,
    };
    write_file(tmp, "meta.json", &meta::to_json(&meta))?;
    sync_dir(&chunk_dir).map_err(io_err(tmp, "chunks"))?;
    sync_dir(tmp).map_err(io_err(tmp, "."))?;
    Ok(meta)
}

/// Fault injection for tests of what a crash or a full disk does to a
/// block write: off unless a test sets it, or the process starts with
/// `KLAXON_TEST_BLOCK_FAULT` set to `fail=N` (the next N writes fail as
/// on a full disk, after the chunks are written) or `pause=MS` (every
/// write waits MS milliseconds between writing its temporary directory
/// and renaming it into place).
pub mod fault {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    /// Writes left to fail, and the directory they are limited to.
    static FAIL: parking_lot::Mutex<Option<(Option<PathBuf>, u64)>> = parking_lot::Mutex::new(None);
    static PAUSE_MS: AtomicU64 = AtomicU64::new(0);

    /// The next `n` block writes under `parent` (any, when `None`) fail.
    pub fn fail_next_writes(parent: Option<&Path>, n: u64) {
        *FAIL.lock() = Some((parent.map(Path::to_path_buf), n));
    }

    pub fn pause_before_rename(ms: u64) {
        PAUSE_MS.store(ms, Relaxed);
    }

    /// Reads `KLAXON_TEST_BLOCK_FAULT` (ignored when malformed, with a
    /// warning).
    pub fn from_env() {
        let Ok(v) = std::env::var("KLAXON_TEST_BLOCK_FAULT") else {
            return;
        };
        let parsed = v
            .split_once('=')
            .and_then(|(k, n)| Some((k, n.parse::<u64>().ok()?)));
        match parsed {
            Some(("fail", n)) => fail_next_writes(None, n),
            Some(("pause", ms)) => pause_before_rename(ms),
            _ => tracing::warn!(value = %v, "KLAXON_TEST_BLOCK_FAULT: expected fail=N or pause=MS"),
        }
    }

    /// Fails as a full disk does when a failure is due for `tmp`'s parent.
    pub(super) fn check_write(tmp: &Path) -> std::io::Result<()> {
        let mut f = FAIL.lock();
        if let Some((dir, n)) = f.as_mut() {
            let here = dir.as_deref().is_none_or(|d| Some(d) == tmp.parent());
            if here && *n > 0 {
                *n -= 1;
                return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
            }
        }
        Ok(())
    }

    pub(super) fn before_rename() {
        let ms = PAUSE_MS.load(Relaxed);
        if ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
    }
}

/// An opened, read-only block.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    index: IndexReader,
    chunks: ChunkReader,
    /// Replaced whole when series are deleted (readers keep the set they
    /// started with).
    tombstones: parking_lot::RwLock<Arc<Tombstones>>,
    /// Damage found while serving queries (the series is left out).
    read_errors: AtomicU64,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("dir", &self.dir)
            .field("meta", &self.meta)
            .finish()
    }
}

impl Block {
    /// Opens the block in `dir`, checking meta.json, the index' header,
    /// TOC, symbol table and postings offset table, the chunk segment
    /// headers and the tombstones.
    pub fn open(dir: &Path) -> Result<Block, BlockError> {
        let _span = tracing::debug_span!("block_open", dir = %dir.display()).entered();
        let raw = std::fs::read(dir.join("meta.json")).map_err(io_err(dir, "meta.json"))?;
        let meta: BlockMeta = serde_json::from_slice(&raw).map_err(|e| BlockError::Invalid {
            dir: dir.display().to_string(),
            file: "meta.json".into(),
            msg: format!("line {} column {}: {e}", e.line(), e.column()),
        })?;
        if meta.version != 1 {
            return Err(BlockError::Invalid {
                dir: dir.display().to_string(),
                file: "meta.json".into(),
                msg: format!("unsupported meta version {}", meta.version),
            });
        }
        let data = std::fs::read(dir.join("index")).map_err(io_err(dir, "index"))?;
        let index = IndexReader::new(data).map_err(|e| corrupt(dir, "index", e))?;
        let chunks = ChunkReader::open(&dir.join("chunks")).map_err(|e| chunk_corrupt(dir, e))?;
        let tombstones = match std::fs::read(dir.join("tombstones")) {
            Ok(b) => tombstones::decode(&b).map_err(|e| corrupt(dir, "tombstones", e))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Tombstones::new(),
            Err(e) => return Err(io_err(dir, "tombstones")(e)),
        };
        Ok(Block {
            dir: dir.to_path_buf(),
            meta,
            index,
            chunks,
            tombstones: parking_lot::RwLock::new(Arc::new(tombstones)),
            read_errors: AtomicU64::new(0),
        })
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The deleted intervals as of now.
    pub fn tombstones(&self) -> Arc<Tombstones> {
        self.tombstones.read().clone()
    }

    /// Deletes the samples of the series matching `matchers` in
    /// `[mint, maxt]`: a tombstone per series with a chunk in the range,
    /// clamped to the series' data (as Prometheus), merged with the
    /// existing ones. The `tombstones` file and `meta.json` are replaced
    /// atomically before queries see the new set. Returns the series hit.
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<usize, BlockError> {
        let _span = tracing::info_span!("block_delete", dir = %self.dir.display()).entered();
        let ix = |e| corrupt(&self.dir, "index", e);
        let mut stones = self.tombstones.write();
        let mut next = Tombstones::clone(&stones);
        let mut hit = 0;
        for id in self.postings_for(matchers).map_err(ix)? {
            let s = self.index.series(id).map_err(ix)?;
            let (Some(first), Some(last)) = (s.chunks.first(), s.chunks.last()) else {
                continue;
            };
            if !s
                .chunks
                .iter()
                .any(|c| c.min_time <= maxt && mint <= c.max_time)
            {
                continue;
            }
            let iv = (mint.max(first.min_time), maxt.min(last.max_time));
            tombstones::add_interval(next.entry(id).or_default(), iv);
            hit += 1;
        }
        if hit == 0 {
            return Ok(0);
        }
        let mut meta = self.meta.clone();
        meta.stats.num_tombstones = next.values().map(|v| v.len() as u64).sum();
        replace_file(&self.dir, "tombstones", &tombstones::encode(&next))?;
        replace_file(&self.dir, "meta.json", &meta::to_json(&meta))?;
        *stones = Arc::new(next);
        Ok(hit)
    }

    /// The ids of every series in the index (what tombstones key on).
    pub fn series_ids(&self) -> Result<Vec<u32>, BlockError> {
        self.index
            .all_postings()
            .map_err(|e| corrupt(&self.dir, "index", e))
    }

    /// Damage found by queries since the block was opened.
    pub fn read_errors(&self) -> u64 {
        self.read_errors.load(Ordering::Relaxed)
    }

    /// Reads every postings list, series and chunk, checking checksums,
    /// references, sample counts and that samples lie in their chunk's
    /// and the block's range.
    pub fn verify(&self) -> Result<(), BlockError> {
        let ix = |e| corrupt(&self.dir, "index", e);
        for off in self.index.postings_offsets() {
            self.index.check_postings(off).map_err(ix)?;
        }
        let mut last_ref = None;
        for id in self.index.all_postings().map_err(ix)? {
            let s = self.index.series(id).map_err(ix)?;
            for c in &s.chunks {
                if last_ref.is_some_and(|r| r >= c.r#ref) {
                    return Err(self.invalid(
                        "index",
                        format!("series {id}: chunk references not increasing"),
                    ));
                }
                last_ref = Some(c.r#ref);
                let (encoding, data) = self
                    .chunks
                    .chunk(c.r#ref)
                    .map_err(|e| chunk_corrupt(&self.dir, e))?;
                self.decode(encoding, &data, c)?;
            }
        }
        Ok(())
    }

    fn invalid(&self, file: &str, msg: String) -> BlockError {
        BlockError::Invalid {
            dir: self.dir.display().to_string(),
            file: file.into(),
            msg,
        }
    }

    /// Decodes a chunk, checking its samples against its meta.
    fn decode(&self, encoding: u8, data: &[u8], c: &ChunkMeta) -> Result<Decoded, BlockError> {
        check_chunk(encoding, data, c.min_time, c.max_time).map_err(|msg| BlockError::Corrupt {
            dir: self.dir.display().to_string(),
            file: format!("chunks/{:06}", (c.r#ref >> 32) + 1),
            offset: c.r#ref & 0xffff_ffff,
            msg,
        })
    }

    /// Every series of the block with its id, in label order (what a
    /// compaction walks).
    pub(crate) fn all_series(&self) -> Result<Vec<(u32, IndexSeries)>, BlockError> {
        let ix = |e| corrupt(&self.dir, "index", e);
        let mut out = Vec::new();
        for id in self.index.all_postings().map_err(ix)? {
            out.push((id, self.index.series(id).map_err(ix)?));
        }
        // Ids follow label order in any index written by the format's
        // rules; a foreign one that does not is sorted here.
        if out.windows(2).any(|w| w[0].1.labels >= w[1].1.labels) {
            out.sort_by(|a, b| a.1.labels.cmp(&b.1.labels));
        }
        Ok(out)
    }

    /// Reads this block's chunks for a walk in file order.
    pub(crate) fn chunk_cursor(&self) -> ChunkCursor<'_> {
        ChunkCursor {
            b: self,
            seq: self.chunks.sequential(),
        }
    }

    /// Counts and logs damage found in this block.
    pub(crate) fn report(&self, e: &BlockError) {
        self.read_errors.fetch_add(1, Ordering::Relaxed);
        tracing::error!(error = %e, "block read failed; the series is left out of the answer");
    }

    /// Series ids matching every matcher, sorted.
    fn postings_for(&self, matchers: &[Matcher]) -> Result<Vec<u32>, DecError> {
        let mut pos: Option<Vec<u32>> = None;
        let mut neg: Vec<u32> = Vec::new();
        for m in matchers {
            if m.matches_empty() {
                // Series without the label match too: take out the ones
                // whose value does not.
                neg.extend(self.index.postings_where(&m.name, |v| !m.matches(v))?);
            } else {
                let p = self.index.postings_where(&m.name, |v| m.matches(v))?;
                pos = Some(match pos {
                    None => p,
                    Some(prev) => super::index::intersect(&prev, &p),
                });
            }
            if pos.as_ref().is_some_and(Vec::is_empty) {
                return Ok(Vec::new());
            }
        }
        let mut ids = match pos {
            Some(p) => p,
            None => self.index.all_postings()?,
        };
        if !neg.is_empty() {
            neg.sort_unstable();
            neg.dedup();
            super::index::subtract(&mut ids, &neg);
        }
        Ok(ids)
    }

    /// Matching series with the chunks that overlap `[mint, maxt]` and are
    /// not wholly deleted; series left without chunks are dropped.
    fn matching(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Vec<(u32, IndexSeries)> {
        let ids = match self.postings_for(matchers) {
            Ok(ids) => ids,
            Err(e) => {
                self.report(&corrupt(&self.dir, "index", e));
                return Vec::new();
            }
        };
        let all_stones = self.tombstones();
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let mut s = match self.index.series(id) {
                Ok(s) => s,
                Err(e) => {
                    self.report(&corrupt(&self.dir, "index", e));
                    continue;
                }
            };
            let stones = all_stones.get(&id).map(Vec::as_slice).unwrap_or(&[]);
            s.chunks.retain(|c| {
                c.max_time >= mint
                    && c.min_time <= maxt
                    && !stones
                        .iter()
                        .any(|(a, b)| *a <= c.min_time && c.max_time <= *b)
            });
            if !s.chunks.is_empty() {
                out.push((id, s));
            }
        }
        out.sort_by(|a, b| a.1.labels.cmp(&b.1.labels));
        out
    }

    fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.meta.min_time <= maxt && mint < self.meta.max_time
    }
}

/// See [`Block::chunk_cursor`].
pub(crate) struct ChunkCursor<'a> {
    b: &'a Block,
    seq: SeqChunkReader<'a>,
}

impl ChunkCursor<'_> {
    /// The chunk's encoding and bytes, checksum checked.
    pub fn raw(&mut self, c: &ChunkMeta) -> Result<(u8, &[u8]), BlockError> {
        let dir = &self.b.dir;
        self.seq.chunk(c.r#ref).map_err(|e| chunk_corrupt(dir, e))
    }

    /// The chunk's samples, checked against its index entry.
    pub fn samples(&mut self, c: &ChunkMeta) -> Result<Decoded, BlockError> {
        let b = self.b;
        let (encoding, data) = self.raw(c)?;
        b.decode(encoding, data, c)
    }
}

/// A block read over `[mint, maxt]`, through a reference or an `Arc`.
struct BlockQuerier<B> {
    b: B,
    mint: i64,
    maxt: i64,
}

impl<B: std::ops::Deref<Target = Block>> Querier for BlockQuerier<B> {
    fn select(&self, matchers: &[Matcher]) -> Vec<SeriesData> {
        let b: &Block = &self.b;
        let all_stones = b.tombstones();
        let mut out = Vec::new();
        for (id, s) in b.matching(matchers, self.mint, self.maxt) {
            let stones = all_stones.get(&id).map(Vec::as_slice).unwrap_or(&[]);
            let mut samples = Vec::new();
            let mut histograms = Vec::new();
            let mut failed = false;
            let keep = |t: i64| t >= self.mint && t <= self.maxt && !tombstones::deleted(stones, t);
            for c in &s.chunks {
                let decoded = b
                    .chunks
                    .chunk(c.r#ref)
                    .map_err(|e| chunk_corrupt(&b.dir, e))
                    .and_then(|(encoding, data)| b.decode(encoding, &data, c));
                match decoded {
                    Ok(Decoded::Floats(d)) => samples.extend(d.into_iter().filter(|s| keep(s.0))),
                    Ok(Decoded::Histograms(d)) => {
                        histograms.extend(d.into_iter().filter(|s| keep(s.0)))
                    }
                    Err(e) => {
                        b.report(&e);
                        failed = true;
                        break;
                    }
                }
            }
            if !failed && (!samples.is_empty() || !histograms.is_empty()) {
                out.push(SeriesData {
                    labels: s.labels,
                    samples,
                    histograms,
                });
            }
        }
        out
    }

    fn series(&self, matchers: &[Matcher]) -> Vec<Labels> {
        self.b
            .matching(matchers, self.mint, self.maxt)
            .into_iter()
            .map(|(_, s)| s.labels)
            .collect()
    }

    fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        if matchers.is_empty() {
            return self.b.index.label_names();
        }
        let names: BTreeSet<String> = self
            .b
            .matching(matchers, i64::MIN, i64::MAX)
            .into_iter()
            .flat_map(|(_, s)| s.labels.into_vec().into_iter().map(|l| l.name))
            .collect();
        names.into_iter().collect()
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        if matchers.is_empty() {
            return self.b.index.label_values(name);
        }
        let values: BTreeSet<String> = self
            .b
            .matching(matchers, i64::MIN, i64::MAX)
            .into_iter()
            .filter_map(|(_, s)| s.labels.get(name).map(str::to_string))
            .collect();
        values.into_iter().collect()
    }
}

/// The querier of a block outside the range: answers without reading.
pub(crate) struct EmptyQuerier;

impl Querier for EmptyQuerier {
    fn select(&self, _: &[Matcher]) -> Vec<SeriesData> {
        Vec::new()
    }
    fn series(&self, _: &[Matcher]) -> Vec<Labels> {
        Vec::new()
    }
    fn label_names(&self, _: &[Matcher]) -> Vec<String> {
        Vec::new()
    }
    fn label_values(&self, _: &str, _: &[Matcher]) -> Vec<String> {
        Vec::new()
    }
}

impl Queryable for Block {
    /// A block whose `[minTime, maxTime)` misses the range is not read.
    fn querier(&self, mint: i64, maxt: i64) -> Box<dyn Querier + '_> {
        if !self.overlaps(mint, maxt) {
            return Box::new(EmptyQuerier);
        }
        Box::new(BlockQuerier {
            b: self,
            mint,
            maxt,
        })
    }
}

impl Block {
    /// A querier that keeps the block open by itself (for a block set
    /// whose members may be replaced while the query runs).
    pub fn owned_querier(self: &Arc<Self>, mint: i64, maxt: i64) -> Box<dyn Querier + 'static> {
        if !self.overlaps(mint, maxt) {
            return Box::new(EmptyQuerier);
        }
        Box::new(BlockQuerier {
            b: self.clone(),
            mint,
            maxt,
        })
    }

    /// Bytes of the block's files on disk.
    pub fn size_bytes(&self) -> u64 {
        dir_size(&self.dir)
    }
}

/// Bytes of the files under `dir`, recursively (0 when missing).
pub fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => dir_size(&e.path()),
            Ok(m) => m.len(),
            Err(_) => 0,
        })
        .sum()
}

/// Blocks found under a directory: the ones served and the ones refused.
#[derive(Debug, Default)]
pub struct LoadedBlocks {
    /// Sorted by minTime.
    pub blocks: Vec<Arc<Block>>,
    pub failed: Vec<BlockError>,
}

/// Opens every block directly under `dir` (directories named by a ULID
/// holding a meta.json), oldest first. Leftovers of an interrupted write
/// (`*.tmp-for-creation`) are removed. A block that fails its checks is
/// logged and reported in `failed`; the others load.
pub fn load_blocks(dir: &Path) -> LoadedBlocks {
    let _span = tracing::info_span!("blocks_load", dir = %dir.display()).entered();
    let mut out = LoadedBlocks::default();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return out,
        Err(e) => {
            out.failed.push(io_err(dir, ".")(e));
            return out;
        }
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if !path.is_dir() {
            continue;
        }
        if name
            .strip_suffix(TMP_SUFFIX)
            .is_some_and(|id| ulid::parse(id).is_some())
        {
            match std::fs::remove_dir_all(&path) {
                Ok(()) => tracing::info!(dir = %path.display(), "removed an unfinished block"),
                Err(e) => {
                    tracing::warn!(dir = %path.display(), error = %e, "cannot remove an unfinished block")
                }
            }
            continue;
        }
        if ulid::parse(&name).is_none() || !path.join("meta.json").is_file() {
            continue;
        }
        match Block::open(&path) {
            Ok(b) => out.blocks.push(Arc::new(b)),
            Err(e) => {
                tracing::error!(error = %e, "block skipped");
                out.failed.push(e);
            }
        }
    }
    // A compaction that stopped between renaming its output into place
    // and deleting its parents: the parents go now (as Prometheus does).
    let parents: BTreeSet<String> = out
        .blocks
        .iter()
        .flat_map(|b| b.meta.compaction.parents.iter().map(|p| p.ulid.clone()))
        .collect();
    out.blocks.retain(|b| {
        if !parents.contains(&b.meta.ulid) {
            return true;
        }
        match std::fs::remove_dir_all(&b.dir) {
            Ok(()) => tracing::info!(dir = %b.dir.display(), "removed a block already compacted into another"),
            Err(e) => tracing::warn!(dir = %b.dir.display(), error = %e, "cannot remove a compacted block"),
        }
        false
    });
    out.blocks
        .sort_by(|a, b| (a.meta.min_time, &a.meta.ulid).cmp(&(b.meta.min_time, &b.meta.ulid)));
    out
}

#[cfg(test)]
mod tests;
