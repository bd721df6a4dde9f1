//! The memory snapshot written on a clean stop, as Prometheus'
//! `memory-snapshot-on-shutdown`: every series (reference and labels), the
//! chunks it holds in memory (full ones not yet in the head chunk files and
//! the open one with its encoder state) and the WAL segment the snapshot
//! covers up to. A start that finds it restores those series directly and
//! replays only the WAL segments written after it, instead of the
//! checkpoint and every segment since; full chunks come back from the head
//! chunk files as on any start. After a crash (no stop, so no new snapshot)
//! the WAL after the last snapshot or checkpoint is replayed as before.
//!
//! One file, `storage.path/chunk_snapshot.NNNNNNNN` (N: the first WAL
//! segment it does not cover), written to a `.tmp` file, fsynced and
//! renamed. Layout: the magic `KLXSNAP1`, then sections (a 4-byte
//! big-endian length, the body, its CRC32 Castagnoli), each body a type
//! byte and its payload:
//!
//! * `1` series: a count, then per series its reference, its labels
//!   (count, then name and value as length-prefixed strings), its full
//!   in-memory chunks (count, then encoding byte and length-prefixed
//!   bytes), and its open chunk (encoding byte, `0` for none; for XOR the
//!   bytes, then free bits, leading and trailing window bits, last
//!   timestamp, last delta and last value bits); then its native-histogram
//!   chunks held in memory: a count of full ones, each an encoding byte,
//!   length-prefixed bytes, first and last timestamp, and the open one the
//!   same way (encoding `0` for none; its appender state is rebuilt from
//!   its bytes);
//! * `2` end: the WAL segment and the number of series written (a file
//!   without it is torn).
//!
//! Encoding bytes are Prometheus' (`1` XOR, `2` integer and `3` float
//! histogram). Files of the first version (magic `KLXSNAP1`, no histogram
//! chunks) are still read. A file that fails any check is ignored with an
//! error naming the file and offset, counted in
//! `klaxon_tsdb_snapshot_replay_error_total`, and the WAL is replayed in full.

use super::block::enc::{put_section, put_str, put_uvarint, put_varint, section, Dec, DecError};
use super::chunk::{ClosedChunk, HeadChunk, XorState};
use super::chunk_histogram::{ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM};
use super::head::SeriesHandle;
use super::head_chunks::MappedChunk;
use super::mem::IdMap;
use super::replay::Floors;
use super::series::MemoryChunks;
use super::series_hist::{ClosedHist, HistChunks};
use super::wal::{self, SeriesList};
use super::Head;
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Instant;

const MAGIC: &[u8; 8] = b"KLXSNAP2";
/// The first version: float chunks only.
const MAGIC_V1: &[u8; 8] = b"KLXSNAP1";
const PREFIX: &str = "chunk_snapshot.";
const REC_SERIES: u8 = 1;
const REC_END: u8 = 2;
/// Prometheus' `chunkenc.EncXOR`; `0` marks "no open chunk".
const ENC_NONE: u8 = 0;
const ENC_XOR: u8 = 1;

/// Counters exported as `klaxon_tsdb_snapshot_*`.
#[derive(Debug, Default)]
pub struct SnapshotStats {
    /// Snapshots found at start that could not be used (corrupt, torn).
    pub replay_errors: AtomicU64,
    /// Snapshots loaded at start.
    pub loaded: AtomicU64,
    pub written: AtomicU64,
    pub write_failures: AtomicU64,
    /// Size of the last snapshot written or loaded.
    pub bytes: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("memory snapshot {path} at offset {offset}: {reason}")]
    Corrupt {
        path: String,
        offset: u64,
        reason: String,
    },
}

fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SnapshotError + 'a {
    move |source| SnapshotError::Io {
        op,
        path: path.display().to_string(),
        source,
    }
}

/// One series as read from a snapshot.
struct SnapSeries {
    closed: Vec<ClosedChunk>,
    open: Option<HeadChunk>,
    /// Only for series that hold histograms: inline, this record was as big
    /// again for every float series and slowed the snapshot's decode.
    hist: Option<Box<HistChunks>>,
}

/// A snapshot read and checked, not applied yet.
pub struct SnapshotData {
    /// The first WAL segment it does not cover.
    pub segment: u64,
    /// Batches of series: labels by reference, and their chunks (one batch
    /// for a whole snapshot; see `decode`).
    batches: Vec<(SeriesList, IdMap<u64, SnapSeries>)>,
    pub series: u64,
}

/// What restoring a snapshot gave each series: its WAL reference, the
/// head series and the newest time its head chunk files cover.
pub(crate) type Restored = Vec<(u64, SeriesHandle, Floors)>;

/// Where snapshots live and whether they are written.
#[derive(Debug)]
pub struct Snapshots {
    dir: PathBuf,
    enabled: bool,
    pub stats: SnapshotStats,
}

fn file_name(segment: u64) -> String {
    format!("{PREFIX}{}", wal::segment_name(segment))
}

/// Snapshot files in `dir` (complete names only), by segment ascending.
fn list(dir: &Path) -> Vec<(u64, PathBuf)> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(u64, PathBuf)> = rd
        .flatten()
        .filter_map(|e| {
            let name = e.file_name();
            let n = name.to_str()?.strip_prefix(PREFIX)?;
            if n.len() != 8 || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((n.parse().ok()?, e.path()))
        })
        .collect();
    out.sort_unstable_by_key(|e| e.0);
    out
}

/// Removes snapshot files (and `.tmp` leftovers) in `dir` except `keep`.
fn remove_others(dir: &Path, keep: Option<&Path>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let ours = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(PREFIX));
        if ours && Some(p.as_path()) != keep {
            if let Err(err) = std::fs::remove_file(&p) {
                tracing::warn!(file = %p.display(), error = %err, "removing an old memory snapshot failed");
            }
        }
    }
}

impl Snapshots {
    /// Snapshots in `dir` (`storage.path`); `enabled` false: none written
    /// or read, and old ones are removed at start.
    pub fn new(dir: &Path, enabled: bool) -> Snapshots {
        Snapshots {
            dir: dir.to_path_buf(),
            enabled,
            stats: SnapshotStats::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// The newest snapshot, read and checked, when it is newer than the
    /// WAL's last checkpoint (an older one is stale: the checkpoint and the
    /// segments after it hold more). `None` means a full WAL replay.
    pub fn load(&self, wal_dir: &Path) -> Option<SnapshotData> {
        let _span = tracing::info_span!("snapshot_load").entered();
        if !self.enabled {
            remove_others(&self.dir, None);
            return None;
        }
        let (segment, path) = list(&self.dir).pop()?;
        let checkpoint = wal::last_checkpoint(wal_dir)
            .ok()
            .flatten()
            .map_or(0, |c| c.1);
        if segment < checkpoint {
            tracing::info!(file = %path.display(), checkpoint, "memory snapshot older than the WAL checkpoint; not used");
            return None;
        }
        let started = Instant::now();
        match read(&path) {
            Ok((data, bytes)) if data.segment == segment => {
                self.stats.loaded.fetch_add(1, Relaxed);
                self.stats.bytes.store(bytes, Relaxed);
                tracing::info!(file = %path.display(), series = data.series, bytes,
                    duration = ?started.elapsed(), "memory snapshot read");
                Some(data)
            }
            res => {
                let (offset, reason) = match res {
                    Err(SnapshotError::Corrupt { offset, reason, .. }) => (offset, reason),
                    Err(e) => (0, e.to_string()),
                    Ok((data, _)) => (
                        0,
                        format!("names WAL segment {} in its end record", data.segment),
                    ),
                };
                self.stats.replay_errors.fetch_add(1, Relaxed);
                tracing::error!(file = %path.display(), offset, %reason,
                    "memory snapshot unusable: {}: offset {offset}: {reason}; replaying the whole WAL instead",
                    path.display());
                None
            }
        }
    }

    /// Writes the snapshot of `head` (at a clean stop, after ingestion has
    /// stopped) and removes older ones. `Ok(None)` when disabled or without
    /// a WAL.
    pub fn write(&self, head: &Head) -> Result<Option<u64>, SnapshotError> {
        if !self.enabled {
            return Ok(None);
        }
        let _span = tracing::info_span!("snapshot_write").entered();
        let started = Instant::now();
        let res = write(head, &self.dir);
        match &res {
            Ok(Some((segment, bytes, series))) => {
                self.stats.written.fetch_add(1, Relaxed);
                self.stats.bytes.store(*bytes, Relaxed);
                tracing::info!(segment, bytes, series, duration = ?started.elapsed(), "memory snapshot written");
            }
            Ok(None) => {}
            Err(_) => {
                self.stats.write_failures.fetch_add(1, Relaxed);
            }
        }
        res.map(|o| o.map(|(segment, _, _)| segment))
    }
}

fn encode_series(out: &mut Vec<u8>, r: u64, labels: &crate::model::Labels, m: &MemoryChunks) {
    put_uvarint(out, r);
    put_uvarint(out, labels.len() as u64);
    for l in labels.iter() {
        put_str(out, &l.name);
        put_str(out, &l.value);
    }
    put_uvarint(out, m.closed.len() as u64);
    for c in &m.closed {
        out.push(ENC_XOR);
        put_uvarint(out, c.len() as u64);
        out.extend_from_slice(c);
    }
    match &m.open {
        None => out.push(ENC_NONE),
        Some((bytes, st)) => {
            out.push(ENC_XOR);
            put_uvarint(out, bytes.len() as u64);
            out.extend_from_slice(bytes);
            out.extend_from_slice(&[st.free, st.leading, st.trailing]);
            put_varint(out, st.t);
            put_varint(out, st.t_delta);
            out.extend_from_slice(&st.v.to_be_bytes());
        }
    }
    put_uvarint(out, m.hist.len() as u64);
    for c in &m.hist {
        encode_hist(out, c);
    }
    match &m.hist_open {
        None => out.push(ENC_NONE),
        Some(c) => encode_hist(out, c),
    }
}

fn encode_hist(out: &mut Vec<u8>, c: &ClosedHist) {
    out.push(c.encoding);
    put_uvarint(out, c.bytes.len() as u64);
    out.extend_from_slice(&c.bytes);
    put_varint(out, c.mint);
    put_varint(out, c.maxt);
}

/// A histogram chunk written by [`encode_hist`] whose encoding byte `enc`
/// was read already.
fn decode_hist(d: &mut Dec<'_>, enc: u8, at: u64) -> Result<ClosedHist, DecError> {
    if enc != ENCODING_HISTOGRAM && enc != ENCODING_FLOAT_HISTOGRAM {
        return super::block::enc::fail(at, format!("unknown histogram chunk encoding {enc}"));
    }
    let n = d.uvarint()?;
    let bytes = d.bytes(usize::try_from(n).unwrap_or(usize::MAX))?.to_vec();
    if super::chunk::chunk_len(&bytes) == 0 {
        return super::block::enc::fail(at, "empty histogram chunk");
    }
    let (mint, maxt) = (d.varint()?, d.varint()?);
    if mint > maxt {
        return super::block::enc::fail(at, "histogram chunk ends before it starts");
    }
    Ok(ClosedHist {
        encoding: enc,
        mint,
        maxt,
        bytes: bytes.into_boxed_slice(),
    })
}

/// The snapshot file's bytes and WAL segment: taken with commits held
/// off, right after the WAL is cut, so the segments before it hold
/// exactly what the snapshot holds.
fn encode(head: &Head) -> Result<Option<(Vec<u8>, u64, u64)>, SnapshotError> {
    let Some(wal) = head.wal() else {
        return Ok(None);
    };
    // Full chunks go to the files first; none move while the head is read.
    if let Err(e) = head.write_chunks() {
        tracing::warn!(error = %e, "writing head chunks before the memory snapshot failed; they go into it");
    }
    let _pause = head.pause_chunk_writes();
    if let Some(hc) = head.chunk_files() {
        hc.sync().map_err(|e| SnapshotError::Io {
            op: "sync head chunks",
            path: hc.dir().display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
    }
    let _no_commits = head.exclusive();
    let segment = {
        let mut w = wal.writer.lock();
        w.cut(&wal.stats).map_err(|e| SnapshotError::Io {
            op: "cut WAL segment",
            path: wal.dir.display().to_string(),
            source: std::io::Error::other(e.to_string()),
        })?;
        w.segment()
    };
    let mut out = MAGIC.to_vec();
    let mut body = Vec::new();
    let mut series = 0u64;
    for i in 0..head.shard_count() {
        let snap = head.snapshot_shard_with(i, |d| d.memory_chunks());
        if snap.is_empty() {
            continue;
        }
        body.clear();
        body.push(REC_SERIES);
        put_uvarint(&mut body, snap.len() as u64);
        for (r, labels, m) in &snap {
            encode_series(&mut body, *r, labels, m);
        }
        series += snap.len() as u64;
        put_section(&mut out, &body);
    }
    body.clear();
    body.push(REC_END);
    put_uvarint(&mut body, segment);
    put_uvarint(&mut body, series);
    put_section(&mut out, &body);
    Ok(Some((out, segment, series)))
}

/// Returns the segment, file size and series count written.
fn write(head: &Head, dir: &Path) -> Result<Option<(u64, u64, u64)>, SnapshotError> {
    let Some((bytes, segment, series)) = encode(head)? else {
        return Ok(None);
    };
    let path = dir.join(file_name(segment));
    let tmp = dir.join(format!("{}.tmp", file_name(segment)));
    let mut f = std::fs::File::create(&tmp).map_err(io("create", &tmp))?;
    f.write_all(&bytes).map_err(io("write", &tmp))?;
    f.sync_all().map_err(io("sync", &tmp))?;
    drop(f);
    std::fs::rename(&tmp, &path).map_err(io("rename", &tmp))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("sync directory", dir))?;
    remove_others(dir, Some(&path));
    Ok(Some((segment, bytes.len() as u64, series)))
}

fn decode_chunk(d: &mut Dec<'_>) -> Result<Vec<u8>, DecError> {
    let enc = d.byte()?;
    if enc != ENC_XOR {
        return d.err(format!("unknown chunk encoding {enc}"));
    }
    let n = d.uvarint()?;
    Ok(d.bytes(usize::try_from(n).unwrap_or(usize::MAX))?.to_vec())
}

fn decode_series(
    d: &mut Dec<'_>,
    list: &mut SeriesList,
    v1: bool,
) -> Result<(u64, SnapSeries), DecError> {
    let r = d.uvarint()?;
    let n = d.uvarint()?;
    let mut labels = Vec::new();
    for _ in 0..n {
        labels.push((d.str()?, d.str()?));
    }
    list.push(r, labels);
    let n = d.uvarint()?;
    let mut closed = Vec::new();
    for _ in 0..n {
        let at = d.offset();
        let bytes = decode_chunk(d)?;
        if super::chunk::chunk_len(&bytes) == 0 {
            return super::block::enc::fail(at, "empty chunk");
        }
        closed.push(ClosedChunk::from_bytes(bytes.into_boxed_slice()));
    }
    let at = d.offset();
    let open = match d.byte()? {
        ENC_NONE => None,
        ENC_XOR => {
            let n = d.uvarint()?;
            let bytes = d.bytes(usize::try_from(n).unwrap_or(usize::MAX))?.to_vec();
            let b = d.bytes(3)?;
            let (free, leading, trailing) = (b[0], b[1], b[2]);
            let t = d.varint()?;
            let t_delta = d.varint()?;
            let v = d.be64()?;
            let st = XorState {
                free,
                leading,
                trailing,
                t,
                t_delta,
                v,
            };
            match HeadChunk::from_state(bytes, st) {
                Some(h) => Some(h),
                None => {
                    return super::block::enc::fail(at, "open chunk inconsistent with its state")
                }
            }
        }
        enc => return super::block::enc::fail(at, format!("unknown chunk encoding {enc}")),
    };
    if open.is_none() && !closed.is_empty() {
        return super::block::enc::fail(at, "full chunks without an open one");
    }
    let mut hist: Option<Box<HistChunks>> = None;
    if !v1 {
        let n = d.uvarint()?;
        for _ in 0..n {
            let at = d.offset();
            let enc = d.byte()?;
            hist.get_or_insert_with(Box::default)
                .closed
                .push(decode_hist(d, enc, at)?);
        }
        let at = d.offset();
        match d.byte()? {
            ENC_NONE => {}
            enc => {
                let c = decode_hist(d, enc, at)?;
                match HistChunks::reopen(c) {
                    Ok(open) => hist.get_or_insert_with(Box::default).head = Some(open),
                    Err(e) => {
                        return super::block::enc::fail(at, format!("open histogram chunk: {e}"))
                    }
                }
            }
        }
    }
    Ok((r, SnapSeries { closed, open, hist }))
}

/// Reads and checks a whole snapshot file; nothing is applied.
fn read(path: &Path) -> Result<(SnapshotData, u64), SnapshotError> {
    let bytes = std::fs::read(path).map_err(io("read", path))?;
    let corrupt = |e: DecError| SnapshotError::Corrupt {
        path: path.display().to_string(),
        offset: e.offset,
        reason: e.msg,
    };
    let v1 = bytes.get(..MAGIC_V1.len()) == Some(&MAGIC_V1[..]);
    if !v1 && bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
        return Err(corrupt(DecError {
            offset: 0,
            msg: "not a klaxon memory snapshot (bad magic)".into(),
        }));
    }
    let mut off = MAGIC.len() as u64;
    // Every section's series go into one list: sections are per shard, so
    // their references interleave, and restoring them as one batch indexes
    // each postings list in one merge instead of one per section.
    let mut list = SeriesList::default();
    let mut chunks = IdMap::default();
    let mut series = 0u64;
    loop {
        if off >= bytes.len() as u64 {
            return Err(corrupt(DecError {
                offset: off,
                msg: "torn: no end record".into(),
            }));
        }
        let mut d = section(&bytes, off, "record").map_err(corrupt)?;
        match d.byte().map_err(corrupt)? {
            REC_SERIES => {
                let n = d.uvarint().map_err(corrupt)?;
                list.reserve(n.min(1 << 16) as usize);
                for _ in 0..n {
                    let (r, s) = decode_series(&mut d, &mut list, v1).map_err(corrupt)?;
                    if chunks.insert(r, s).is_some() {
                        return Err(corrupt(DecError {
                            offset: d.offset(),
                            msg: format!("series reference {r} twice"),
                        }));
                    }
                }
                series += n;
            }
            REC_END => {
                let segment = d.uvarint().map_err(corrupt)?;
                let count = d.uvarint().map_err(corrupt)?;
                if count != series {
                    return Err(corrupt(DecError {
                        offset: d.offset(),
                        msg: format!("end record counts {count} series, {series} read"),
                    }));
                }
                let data = SnapshotData {
                    segment,
                    batches: vec![(list, chunks)],
                    series,
                };
                return Ok((data, bytes.len() as u64));
            }
            t => {
                return Err(corrupt(DecError {
                    offset: off,
                    msg: format!("unknown record type {t}"),
                }))
            }
        }
        if !d.is_empty() {
            return Err(corrupt(DecError {
                offset: d.offset(),
                msg: "trailing bytes in record".into(),
            }));
        }
        // Past the section: length, body, CRC.
        off = d.offset() + 4;
    }
}

impl Head {
    /// Creates a snapshot's series under their references with their
    /// chunks: first the full chunks of the head chunk files (`mapped` and
    /// `mapped_hist`, taken out of them), then the in-memory ones newer
    /// than those. Open chunks whose newest sample is older than `cutoff`
    /// are left out.
    pub(crate) fn restore_snapshot(
        &self,
        data: SnapshotData,
        mapped: &mut HashMap<u64, Vec<MappedChunk>>,
        mapped_hist: &mut HashMap<u64, Vec<MappedChunk>>,
        cutoff: i64,
    ) -> (Restored, u64) {
        let mut out = Vec::with_capacity(data.series as usize);
        let mut chunks_restored = 0;
        for (list, mut chunks) in data.batches {
            for (r, h) in self.create_logged(&list) {
                let mut floor = Floors::NONE;
                if let Some(m) = mapped.remove(&r) {
                    chunks_restored += m.len() as u64;
                    if let Some(f) = self.restore_mapped(h.series_ref().0, m) {
                        floor.float = f;
                    }
                }
                if let Some(m) = mapped_hist.remove(&r) {
                    chunks_restored += m.len() as u64;
                    if let Some(f) = self.restore_mapped_hist(h.series_ref().0, m) {
                        floor.hist = f;
                    }
                }
                if let Some(s) = chunks.remove(&r) {
                    let open = s.open.filter(|o| o.max_time() >= cutoff);
                    self.restore_memory(&h, s.closed, open);
                    if let Some(mut hist) = s.hist {
                        hist.truncate(cutoff);
                        self.restore_hist(&h, *hist);
                    }
                }
                out.push((r, h, floor));
            }
        }
        (out, chunks_restored)
    }
}

#[cfg(test)]
mod tests {
    use super::super::head_chunks::HeadChunks;
    use super::super::wal::{Compression, Wal, WalOptions};
    use super::super::ReplayStats;
    use super::*;
    use crate::model::Labels;
    use std::sync::Arc;

    fn l(i: usize) -> Labels {
        Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())])
    }

    /// A start on `dir` as `app::start` does it: head chunk files, the
    /// snapshot if usable, the WAL after it.
    fn open(dir: &Path, snaps: &Snapshots) -> (Arc<Head>, ReplayStats) {
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
        let (hc, loaded) = HeadChunks::open(&dir.join("chunks_head")).unwrap();
        head.attach_chunk_files(Arc::new(hc)).unwrap();
        let snap = snaps.load(&wal.dir);
        let st = head
            .replay_with_snapshot(&wal, i64::MIN, loaded, snap)
            .unwrap();
        head.attach_wal(wal).unwrap();
        (head, st)
    }

    fn write(h: &Head, from: i64, to: i64) {
        for t in from..to {
            let mut a = h.appender();
            for i in 0..5 {
                // Jitter, a stale marker and varied values exercise the
                // encoder state carried over.
                let v = match (t % 11, i) {
                    (3, 2) => crate::model::STALE_NAN,
                    _ => (t * i as i64) as f64 * 0.37,
                };
                a.append(&l(i), t * 1000 + (t % 3) * i as i64, v).unwrap();
            }
            a.commit().unwrap();
        }
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

    fn snapshot_file(dir: &Path) -> PathBuf {
        let mut l = list(dir);
        assert_eq!(l.len(), 1, "{l:?}");
        l.remove(0).1
    }

    #[test]
    fn a_clean_stop_restarts_from_the_snapshot_and_a_crash_after_it_still_has_everything() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = Snapshots::new(dir.path(), true);
        let (h, st) = open(dir.path(), &snaps);
        assert_eq!(st.snapshot, None);
        write(&h, 0, 300);
        h.write_chunks().unwrap();
        assert!(h.checkpoint().unwrap().is_some());
        write(&h, 300, 450);
        let before = dump(&h);
        let seg = snaps.write(&h).unwrap().unwrap();
        drop(h);
        assert!(snapshot_file(dir.path()).ends_with(file_name(seg)));

        let snaps = Snapshots::new(dir.path(), true);
        let (h, st) = open(dir.path(), &snaps);
        assert_eq!(st.snapshot, Some(seg), "{st:?}");
        assert_eq!(
            (st.snapshot_series, st.samples, st.checkpoint),
            (5, 0, None),
            "{st:?}"
        );
        assert_eq!(snaps.stats.loaded.load(Relaxed), 1);
        assert!(st.mmapped_chunks >= 15, "{st:?}");
        assert_eq!(dump(&h), before);
        // Appends go on in the restored open chunks; full ones reach the
        // files; then a crash (no new snapshot).
        write(&h, 450, 800);
        h.write_chunks().unwrap();
        let before = dump(&h);
        let rejected = h.stats();
        assert_eq!((rejected.out_of_order, rejected.duplicates), (0, 0));
        drop(h);

        let snaps = Snapshots::new(dir.path(), true);
        let (h, st) = open(dir.path(), &snaps);
        assert_eq!(st.snapshot, Some(seg), "{st:?}");
        assert!(st.segments > 0 && st.samples > 0, "{st:?}");
        assert_eq!(st.unknown_refs, 0, "{st:?}");
        assert_eq!(dump(&h), before);
        let s = h.stats();
        assert_eq!((s.out_of_order, s.duplicates), (0, 0), "{s:?}");
        // And without the snapshot (disabled: removed), the WAL alone.
        drop(h);
        let snaps = Snapshots::new(dir.path(), false);
        let (h, st) = open(dir.path(), &snaps);
        assert_eq!(st.snapshot, None);
        assert!(list(dir.path()).is_empty());
        assert_eq!(dump(&h), before);
    }

    /// Histogram samples of every kind at `t` in `[from, to)` seconds:
    /// a counter with resets and a stale marker, float histograms, custom
    /// buckets, and a series switching between floats and histograms.
    fn write_hists(h: &Head, from: i64, to: i64) {
        use crate::tsdb::series_hist::testdata::{float, int, nhcb};
        for t in from..to {
            let mut a = h.appender();
            let v = int((t % 70 + 1) as u64);
            let v = if t % 97 == 50 { v.stale_like() } else { v };
            a.append_histogram(&l(10), t * 1000, &v).unwrap();
            a.append_histogram(&l(11), t * 1000, &float(t as f64))
                .unwrap();
            a.append_histogram(&l(12), t * 1000, &nhcb(t as f64))
                .unwrap();
            if (t / 40) % 2 == 0 {
                a.append(&l(13), t * 1000, t as f64).unwrap();
            } else {
                a.append_histogram(&l(13), t * 1000, &int(t as u64))
                    .unwrap();
            }
            a.commit().unwrap();
        }
    }

    fn hdump(h: &Head) -> crate::tsdb::series_hist::testdata::Dump {
        crate::tsdb::series_hist::testdata::dump(h, i64::MIN, i64::MAX)
    }

    #[test]
    fn a_head_with_histograms_restarts_from_its_snapshot_with_them() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = Snapshots::new(dir.path(), true);
        let (h, _) = open(dir.path(), &snaps);
        write(&h, 0, 50);
        write_hists(&h, 0, 300);
        assert!(h.write_chunks().unwrap() > 0);
        let before = hdump(&h);
        assert!(before.iter().filter(|s| !s.2.is_empty()).count() == 4);
        let seg = snaps.write(&h).unwrap().unwrap();
        drop(h);

        let snaps = Snapshots::new(dir.path(), true);
        let (h, st) = open(dir.path(), &snaps);
        assert_eq!(st.snapshot, Some(seg), "{st:?}");
        assert_eq!((st.snapshot_series, st.samples), (9, 0), "{st:?}");
        assert_eq!(hdump(&h), before);
        // Appends go on in the restored open histogram chunks; then a
        // crash: the WAL after the snapshot adds what came since.
        write_hists(&h, 300, 400);
        // Full chunks of both kinds reach the files before the crash.
        assert!(h.write_chunks().unwrap() > 0);
        let s = h.stats();
        assert_eq!((s.out_of_order, s.duplicates), (0, 0), "{s:?}");
        let before = hdump(&h);
        drop(h);
        let snaps = Snapshots::new(dir.path(), true);
        let (h, st) = open(dir.path(), &snaps);
        assert_eq!(st.snapshot, Some(seg), "{st:?}");
        assert!(st.samples + st.mmapped_samples_skipped >= 400, "{st:?}");
        assert_eq!(hdump(&h), before);
        // Without the snapshot, the WAL alone gives the same head.
        drop(h);
        let snaps = Snapshots::new(dir.path(), false);
        let (h, st) = open(dir.path(), &snaps);
        assert_eq!(st.snapshot, None);
        assert_eq!(hdump(&h), before);
    }

    #[test]
    fn a_first_version_snapshot_without_histogram_fields_is_still_read() {
        let mut c = HeadChunk::new(1000, 1.0);
        c.append(2000, 2.5);
        let m = MemoryChunks {
            open: Some((c.bytes().to_vec(), c.state())),
            ..Default::default()
        };
        let mut body = vec![REC_SERIES];
        put_uvarint(&mut body, 1);
        encode_series(&mut body, 7, &l(1), &m);
        // The second version added the histogram count and open-chunk byte.
        assert_eq!(body[body.len() - 2..], [0, ENC_NONE]);
        body.truncate(body.len() - 2);
        let mut file = MAGIC_V1.to_vec();
        put_section(&mut file, &body);
        let mut end = vec![REC_END];
        put_uvarint(&mut end, 3);
        put_uvarint(&mut end, 1);
        put_section(&mut file, &end);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(file_name(3));
        std::fs::write(&path, &file).unwrap();
        let (data, _) = read(&path).unwrap();
        assert_eq!((data.segment, data.series), (3, 1));
        let h = Head::default();
        let (restored, _) =
            h.restore_snapshot(data, &mut HashMap::new(), &mut HashMap::new(), i64::MIN);
        assert_eq!(restored.len(), 1);
        let got = h.select(&[], i64::MIN, i64::MAX);
        assert_eq!(got[0].samples, [(1000, 1.0), (2000, 2.5)]);
        // The same bytes under the current magic are refused (torn series).
        file[..8].copy_from_slice(MAGIC);
        std::fs::write(&path, &file).unwrap();
        assert!(read(&path).is_err());
    }

    #[test]
    fn a_damaged_or_torn_snapshot_is_ignored_and_the_wal_replayed() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = Snapshots::new(dir.path(), true);
        let (h, _) = open(dir.path(), &snaps);
        write(&h, 0, 200);
        let before = dump(&h);
        snaps.write(&h).unwrap().unwrap();
        drop(h);
        let file = snapshot_file(dir.path());
        let good = std::fs::read(&file).unwrap();
        let mut bad = good.clone();
        bad[good.len() / 2] ^= 0x10;
        for (what, bytes) in [("flipped", bad), ("torn", good[..good.len() - 3].to_vec())] {
            std::fs::write(&file, &bytes).unwrap();
            let snaps = Snapshots::new(dir.path(), true);
            let (h, st) = open(dir.path(), &snaps);
            assert_eq!(st.snapshot, None, "{what}");
            assert_eq!(snaps.stats.replay_errors.load(Relaxed), 1, "{what}");
            assert_eq!(dump(&h), before, "{what}");
        }
        match read(&file) {
            Err(SnapshotError::Corrupt { offset, .. }) => assert!(offset > 0),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("torn file read"),
        }
    }

    #[test]
    fn a_snapshot_older_than_the_checkpoint_is_not_used() {
        let dir = tempfile::tempdir().unwrap();
        let snaps = Snapshots::new(dir.path(), true);
        let (h, _) = open(dir.path(), &snaps);
        write(&h, 0, 100);
        snaps.write(&h).unwrap().unwrap();
        drop(h);
        let snaps = Snapshots::new(dir.path(), true);
        let (h, st) = open(dir.path(), &snaps);
        assert!(st.snapshot.is_some());
        write(&h, 100, 400);
        assert!(h.checkpoint().unwrap().is_some());
        write(&h, 400, 420);
        let before = dump(&h);
        drop(h);
        let snaps = Snapshots::new(dir.path(), true);
        let (h, st) = open(dir.path(), &snaps);
        assert_eq!(st.snapshot, None, "{st:?}");
        assert!(st.checkpoint.is_some());
        assert_eq!(dump(&h), before);
    }
}
