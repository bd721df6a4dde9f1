//! The TSDB's administrative operations, as Prometheus' admin API runs
//! them: deleting series (tombstones on blocks, a mask on the head),
//! cleaning tombstones (blocks rewritten without the deleted data) and
//! snapshots (hard links of the blocks plus the head written as a block).
//!
//! [`Tsdb`] holds the served blocks (the compactor's [`BlockSet`]; a
//! block is rewritten by the [`Compactor`]) and the head's deletions
//! ([`HeadDeletions`], kept in `storage.path/head_tombstones.json` so a
//! restart, whose WAL replay brings the samples back, masks them again).
//! Its [`Tsdb::queryable`] is what queries read.

use super::block::{self, BlockError, BlockSeries, WriteOptions};
use super::compact::{BlockSet, CompactError, Compactor};
use super::storage::{Fanout, Querier, Queryable};
use super::{Head, SeriesData};
use crate::model::{Labels, Matcher};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Samples per chunk of the blocks written here (Prometheus' target).
const SAMPLES_PER_CHUNK: usize = 120;

/// File under `storage.path` holding the head's deletions.
pub const HEAD_TOMBSTONES_FILE: &str = "head_tombstones.json";

/// Why an admin operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Block(#[from] BlockError),
    #[error(transparent)]
    Compact(#[from] CompactError),
    /// Blocks are rewritten by the compactor, which starts once the WAL
    /// is replayed.
    #[error("the TSDB is still replaying its WAL; try again when /-/ready answers 200")]
    NotReady,
    #[error("{path}: {msg}")]
    Io { path: String, msg: String },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> AdminError + '_ {
    move |e| AdminError::Io {
        path: path.display().to_string(),
        msg: e.to_string(),
    }
}

/// Deleted intervals (inclusive) of head series, by label set.
type Deleted = HashMap<Labels, Vec<(i64, i64)>>;

/// Deletions in the head: samples in the intervals are masked from every
/// read until retention or compaction takes them out of the head.
pub struct HeadDeletions {
    head: Arc<Head>,
    path: PathBuf,
    deleted: RwLock<Arc<Deleted>>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedDeletion {
    labels: Vec<(String, String)>,
    intervals: Vec<(i64, i64)>,
}

impl HeadDeletions {
    /// Reads `dir/head_tombstones.json` if there is one.
    pub fn open(head: Arc<Head>, dir: &Path) -> Result<HeadDeletions, AdminError> {
        let path = dir.join(HEAD_TOMBSTONES_FILE);
        let mut deleted = Deleted::new();
        match std::fs::read(&path) {
            Ok(raw) => {
                let saved: Vec<SavedDeletion> =
                    serde_json::from_slice(&raw).map_err(|e| AdminError::Io {
                        path: path.display().to_string(),
                        msg: format!("line {} column {}: {e}", e.line(), e.column()),
                    })?;
                for d in saved {
                    deleted.insert(Labels::from_pairs(d.labels), d.intervals);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(&path)(e)),
        }
        Ok(HeadDeletions {
            head,
            path,
            deleted: RwLock::new(Arc::new(deleted)),
        })
    }

    /// Masks the samples of the matching head series in `[mint, maxt]`
    /// (clamped to each series' samples there, so later samples stay) and
    /// saves the deletions. Returns the series hit.
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<usize, AdminError> {
        let hit = self.head.select(matchers, mint, maxt);
        let head_min = self.head.stats().min_time;
        let mut g = self.deleted.write();
        let mut next = Deleted::clone(&g);
        for s in &hit {
            let ends = |first: Option<i64>, last: Option<i64>| Some((first?, last?));
            let floats = ends(
                s.samples.first().map(|x| x.0),
                s.samples.last().map(|x| x.0),
            );
            let hists = ends(
                s.histograms.first().map(|x| x.0),
                s.histograms.last().map(|x| x.0),
            );
            let iv = match (floats, hists) {
                (Some(f), Some(h)) => (f.0.min(h.0), f.1.max(h.1)),
                (Some(x), None) | (None, Some(x)) => x,
                (None, None) => continue,
            };
            block::add_interval(next.entry(s.labels.clone()).or_default(), iv);
        }
        // What the head no longer holds needs no mask.
        next.retain(|_, ivs| {
            ivs.retain(|iv| iv.1 >= head_min);
            !ivs.is_empty()
        });
        self.save(&next)?;
        *g = Arc::new(next);
        Ok(hit.len())
    }

    fn save(&self, d: &Deleted) -> Result<(), AdminError> {
        let mut saved: Vec<SavedDeletion> = d
            .iter()
            .map(|(l, ivs)| SavedDeletion {
                labels: l
                    .iter()
                    .map(|l| (l.name.to_string(), l.value.to_string()))
                    .collect(),
                intervals: ivs.clone(),
            })
            .collect();
        saved.sort_by(|a, b| a.labels.cmp(&b.labels));
        let body = serde_json::to_vec(&saved).unwrap_or_default();
        let tmp = self.path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            if let Some(dir) = self.path.parent() {
                std::fs::File::open(dir)?.sync_all()?;
            }
            Ok(())
        };
        write().map_err(io_error(&self.path))
    }

    fn snapshot(&self) -> Arc<Deleted> {
        self.deleted.read().clone()
    }
}

/// The head read with its deletions masked.
struct MaskedQuerier<'h> {
    inner: Box<dyn Querier + 'h>,
    deleted: Arc<Deleted>,
}

impl MaskedQuerier<'_> {
    fn mask(&self, mut found: Vec<SeriesData>) -> Vec<SeriesData> {
        for s in &mut found {
            if let Some(ivs) = self.deleted.get(&s.labels) {
                let kept = |t: &i64| !ivs.iter().any(|(a, b)| a <= t && t <= b);
                s.samples.retain(|(t, _)| kept(t));
                s.histograms.retain(|(t, _)| kept(t));
            }
        }
        found.retain(|s| !s.is_empty());
        found
    }
}

impl Querier for MaskedQuerier<'_> {
    fn select(&self, m: &[Matcher]) -> Vec<SeriesData> {
        self.mask(self.inner.select(m))
    }
    fn series(&self, m: &[Matcher]) -> Vec<Labels> {
        let mut out = self.inner.series(m);
        if out.iter().any(|l| self.deleted.contains_key(l)) {
            // Drop the series whose samples in the range are all deleted.
            let kept: std::collections::HashSet<Labels> =
                self.select(m).into_iter().map(|s| s.labels).collect();
            out.retain(|l| !self.deleted.contains_key(l) || kept.contains(l));
        }
        out
    }
    fn label_names(&self, m: &[Matcher]) -> Vec<String> {
        self.inner.label_names(m)
    }
    fn label_values(&self, name: &str, m: &[Matcher]) -> Vec<String> {
        self.inner.label_values(name, m)
    }
}

impl Queryable for HeadDeletions {
    fn querier(&self, mint: i64, maxt: i64) -> Box<dyn Querier + '_> {
        let inner = self.head.querier(mint, maxt);
        let deleted = self.snapshot();
        if deleted.is_empty() {
            return inner;
        }
        Box::new(MaskedQuerier { inner, deleted })
    }
}

/// The head, its deletions and the persisted blocks of one data directory.
pub struct Tsdb {
    dir: PathBuf,
    head: Arc<HeadDeletions>,
    blocks: Arc<BlockSet>,
    /// Set once the WAL is replayed.
    compactor: std::sync::OnceLock<Arc<Compactor>>,
    /// Admin operations run one at a time.
    op: Mutex<()>,
}

impl Tsdb {
    pub fn new(dir: &Path, head: Arc<HeadDeletions>, blocks: Arc<BlockSet>) -> Tsdb {
        Tsdb {
            dir: dir.to_path_buf(),
            head,
            blocks,
            compactor: Default::default(),
            op: Mutex::new(()),
        }
    }

    /// Hands over the compactor (after the WAL replay); a second call is
    /// ignored.
    pub fn set_compactor(&self, c: Arc<Compactor>) {
        let _ = self.compactor.set(c);
    }

    pub fn compactor(&self) -> Option<&Arc<Compactor>> {
        self.compactor.get()
    }

    /// What queries read: the masked head first (it wins on equal
    /// timestamps), then the blocks.
    pub fn queryable(&self) -> Fanout {
        Fanout::new(self.head.clone()).with(self.blocks.clone())
    }

    /// The data directory (`storage.path`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn blocks(&self) -> &Arc<BlockSet> {
        &self.blocks
    }

    /// Deletes the matching series' samples in `[mint, maxt]` from every
    /// block (tombstones) and from the head (masked); queries stop seeing
    /// them at once. Returns the series hit in blocks and head together.
    pub fn delete_series(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<usize, AdminError> {
        let _span = tracing::info_span!("tsdb_delete_series").entered();
        let _op = self.op.lock();
        let mut hit = 0;
        for b in self.blocks.blocks().iter() {
            if b.meta().min_time <= maxt && mint < b.meta().max_time {
                hit += b.delete(matchers, mint, maxt)?;
            }
        }
        hit += self.head.delete(matchers, mint, maxt)?;
        Ok(hit)
    }

    /// Rewrites every block that has tombstones without the deleted data
    /// (the new block names the old one as its parent and replaces it; a
    /// block left empty is removed). Returns the blocks rewritten.
    pub fn clean_tombstones(&self) -> Result<usize, AdminError> {
        let _span = tracing::info_span!("tsdb_clean_tombstones").entered();
        let _op = self.op.lock();
        let compactor = self.compactor.get().ok_or(AdminError::NotReady)?;
        let mut n = 0;
        for b in self.blocks.blocks().iter() {
            if b.tombstones().is_empty() {
                continue;
            }
            compactor.rewrite_without_tombstones(&b.meta().ulid)?;
            n += 1;
        }
        Ok(n)
    }

    /// Writes a snapshot into `dir` (created): every block hard-linked,
    /// and unless `skip_head` the head's data (deletions applied) as one
    /// more block.
    pub fn snapshot(&self, dir: &Path, skip_head: bool) -> Result<(), AdminError> {
        let _span = tracing::info_span!("tsdb_snapshot", dir = %dir.display()).entered();
        let _op = self.op.lock();
        std::fs::create_dir_all(dir).map_err(io_error(dir))?;
        for b in self.blocks.blocks().iter() {
            link_block(b.dir(), &dir.join(&b.meta().ulid))?;
        }
        if skip_head {
            return Ok(());
        }
        let st = self.head.head.stats();
        if st.min_time > st.max_time {
            return Ok(());
        }
        let series: Vec<BlockSeries> = self
            .head
            .querier(st.min_time, st.max_time)
            .select(&[])
            .into_iter()
            .map(|s| BlockSeries {
                chunks: block::encode_series(&s.samples, &s.histograms, SAMPLES_PER_CHUNK),
                labels: s.labels,
            })
            .collect();
        if series.is_empty() {
            return Ok(());
        }
        let opts = WriteOptions {
            range: Some((st.min_time, st.max_time.saturating_add(1))),
            ..Default::default()
        };
        block::write_block(dir, series, opts)?;
        Ok(())
    }
}

/// Hard-links a block's files into `to` (meta.json, index, tombstones
/// when present, every chunk segment).
fn link_block(from: &Path, to: &Path) -> Result<(), AdminError> {
    let chunks = to.join("chunks");
    std::fs::create_dir_all(&chunks).map_err(io_error(&chunks))?;
    for f in ["meta.json", "index", "tombstones"] {
        let src = from.join(f);
        if f == "tombstones" && !src.exists() {
            continue;
        }
        std::fs::hard_link(&src, to.join(f)).map_err(io_error(&src))?;
    }
    let src_chunks = from.join("chunks");
    for e in std::fs::read_dir(&src_chunks).map_err(io_error(&src_chunks))? {
        let e = e.map_err(io_error(&src_chunks))?;
        std::fs::hard_link(e.path(), chunks.join(e.file_name())).map_err(io_error(&e.path()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::block::Block;

    fn l(i: &str) -> Labels {
        Labels::from_pairs([("__name__", "m"), ("i", i)])
    }

    fn eq(name: &str, v: &str) -> Matcher {
        Matcher::new(crate::model::MatchType::Equal, name, v).unwrap()
    }

    fn samples(q: &dyn Queryable, i: &str) -> Vec<i64> {
        q.querier(i64::MIN, i64::MAX)
            .select(&[eq("i", i)])
            .into_iter()
            .flat_map(|s| s.samples.into_iter().map(|p| p.0))
            .collect()
    }

    /// A data directory with one block (series a, b at 0..10) and a head
    /// (series a, b at 10..20).
    fn setup(dir: &Path) -> Tsdb {
        let series = ["a", "b"]
            .iter()
            .map(|i| BlockSeries {
                labels: l(i),
                chunks: block::encode_chunks(
                    &(0..10).map(|t| (t, t as f64)).collect::<Vec<_>>(),
                    4,
                ),
            })
            .collect();
        block::write_block(dir, series, WriteOptions::default()).unwrap();
        let loaded = block::load_blocks(dir);
        let head = Arc::new(Head::default());
        let mut a = head.appender();
        for t in 10..20 {
            a.append(&l("a"), t, 1.0).unwrap();
            a.append(&l("b"), t, 1.0).unwrap();
        }
        a.commit().unwrap();
        let del = Arc::new(HeadDeletions::open(head.clone(), dir).unwrap());
        let blocks = Arc::new(BlockSet::new(loaded.blocks));
        let db = Tsdb::new(dir, del.clone(), blocks.clone());
        let opts = super::super::compact::CompactorOptions {
            min_block_ms: 3_600_000,
            retention_ms: 0,
            retention_size: None,
        };
        db.set_compactor(Arc::new(
            Compactor::new(dir, head, blocks, opts).with_head_reader(del),
        ));
        db
    }

    #[test]
    fn deletes_mask_head_and_block_samples_and_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let db = setup(dir.path());
        let q = db.queryable();
        assert_eq!(samples(&q, "a").len(), 20);
        assert_eq!(db.delete_series(&[eq("i", "a")], 5, 14).unwrap(), 2);
        assert_eq!(samples(&q, "a"), [0, 1, 2, 3, 4, 15, 16, 17, 18, 19]);
        assert_eq!(samples(&q, "b").len(), 20);
        let b = &db.blocks().blocks()[0];
        assert_eq!(b.tombstones().values().next().unwrap(), &[(5, 9)]);
        // Reopened from disk: the block's tombstones file and the head's
        // deletions are read back.
        let reopened = Block::open(b.dir()).unwrap();
        assert_eq!(*reopened.tombstones(), *b.tombstones());
        let again = HeadDeletions::open(db.head.head.clone(), dir.path()).unwrap();
        let got: Vec<i64> = samples(&again, "a");
        assert_eq!(got, [15, 16, 17, 18, 19]);
        // A series wholly deleted in range leaves /api/v1/series.
        assert!(again.querier(10, 14).series(&[eq("i", "a")]).is_empty());
        assert_eq!(again.querier(10, 15).series(&[eq("i", "a")]).len(), 1);
    }

    #[test]
    fn clean_tombstones_rewrites_the_block_without_the_deleted_samples() {
        let dir = tempfile::tempdir().unwrap();
        let db = setup(dir.path());
        let old = db.blocks().blocks()[0].clone();
        db.delete_series(&[eq("i", "a")], 0, 4).unwrap();
        assert_eq!(db.clean_tombstones().unwrap(), 1);
        let new = db.blocks().blocks()[0].clone();
        assert!(!old.dir().exists());
        assert!(new.tombstones().is_empty());
        assert_eq!(new.meta().compaction.parents[0].ulid, old.meta().ulid);
        assert_eq!(
            (new.meta().min_time, new.meta().max_time),
            (old.meta().min_time, old.meta().max_time)
        );
        assert_eq!(samples(&*new, "a"), [5, 6, 7, 8, 9]);
        assert_eq!(samples(&*new, "b").len(), 10);
        new.verify().unwrap();
        // Nothing left to clean.
        assert_eq!(db.clean_tombstones().unwrap(), 0);
        // A block whose every sample is deleted goes away.
        db.delete_series(&[eq("__name__", "m")], i64::MIN, i64::MAX)
            .unwrap();
        db.clean_tombstones().unwrap();
        assert!(db.blocks().blocks().is_empty());
    }

    #[test]
    fn snapshot_links_blocks_and_writes_the_head_as_a_block() {
        let dir = tempfile::tempdir().unwrap();
        let db = setup(dir.path());
        db.delete_series(&[eq("i", "b")], 15, 19).unwrap();
        let snap = dir.path().join("snapshots").join("s1");
        db.snapshot(&snap, false).unwrap();
        let loaded = block::load_blocks(&snap);
        assert!(loaded.failed.is_empty());
        assert_eq!(loaded.blocks.len(), 2);
        let set = BlockSet::new(loaded.blocks);
        assert_eq!(samples(&set, "a").len(), 20);
        assert_eq!(samples(&set, "b").len(), 15);
        let head_block = &set.blocks()[1];
        assert_eq!(
            (head_block.meta().min_time, head_block.meta().max_time),
            (10, 20)
        );
        let skip = dir.path().join("snapshots").join("s2");
        db.snapshot(&skip, true).unwrap();
        assert_eq!(block::load_blocks(&skip).blocks.len(), 1);
    }
}
