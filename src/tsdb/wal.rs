//! The write-ahead log: what the head needs to rebuild itself after a
//! restart, written before a committed batch becomes visible.
//!
//! Layout under the WAL directory (`storage.path/wal/`):
//! * `00000000`, `00000001`, ...: segments, each at most `segment_size`
//!   bytes (a record never spans two segments);
//! * `checkpoint.NNNNNNNN/`: a snapshot of the head covering every segment
//!   numbered below `NNNNNNNN`, written to `checkpoint.NNNNNNNN.tmp` and
//!   renamed when complete, so a crash leaves either the old or the new one.
//!
//! A record on disk is a 9-byte header then its payload:
//! `kind: u8 (0x80 set when snappy-compressed) | len: u32 LE | crc32c: u32 LE`.
//! The CRC covers the payload as stored. Payload kinds:
//! * series: `count`, then per series `ref, nlabels, (name, value)*`;
//! * samples: `count, base ref, base t`, then per sample the ref and time
//!   deltas (signed varints) and the value's 8 bytes;
//! * deletions: `count, refs` (series retention removed);
//! * chunks (checkpoints only): `ref, count, (len, chunk bytes)*`.
//!
//! Integers are LEB128 varints (signed ones zig-zag encoded).

use crate::model::{Label, Labels};
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

pub const HEADER_BYTES: usize = 9;
/// Prometheus' default is 128 MiB; a smaller segment bounds what a
/// checkpoint leaves behind and what one damaged file can hide.
pub const DEFAULT_SEGMENT_SIZE: u64 = 32 << 20;
const COMPRESSED: u8 = 0x80;
/// Records at least this long are compressed (when compression is on):
/// below it snappy's framing outweighs what it saves.
const COMPRESS_MIN: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Series = 1,
    Samples = 2,
    Deletions = 3,
    Chunks = 4,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Series,
            2 => Kind::Samples,
            3 => Kind::Deletions,
            4 => Kind::Chunks,
            _ => return None,
        })
    }
}

/// Record compression.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Compression {
    None,
    #[default]
    Snappy,
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    Series(Vec<(u64, Labels)>),
    Samples(Vec<(u64, i64, f64)>),
    Deletions(Vec<u64>),
    Chunks(u64, Vec<Vec<u8>>),
}

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("WAL {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl WalError {
    fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> WalError + 'a {
        move |source| WalError::Io {
            op,
            path: path.display().to_string(),
            source,
        }
    }
}

/// A record that could not be read: where, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("corrupt WAL record in {file} at offset {offset}: {reason}")]
pub struct Corruption {
    pub file: String,
    pub offset: u64,
    pub reason: String,
}

// ---- varints -------------------------------------------------------------

pub fn put_uvarint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push(v as u8 | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

pub fn put_varint(buf: &mut Vec<u8>, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64)
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    put_uvarint(buf, s.len() as u64);
    buf.extend_from_slice(s.as_bytes());
}

/// A cursor over a record payload; every read is bounds-checked.
struct Dec<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Dec<'a> {
    fn uvarint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&byte) = self.b.get(self.pos) else {
                return Err("truncated varint".into());
            };
            self.pos += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn varint(&mut self) -> Result<i64, String> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.b.len());
        let Some(end) = end else {
            return Err("truncated field".into());
        };
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn len(&mut self) -> Result<usize, String> {
        let n = self.uvarint()?;
        // Every element takes at least one byte: a count above what is left
        // is corrupt (and must not drive an allocation).
        if n > (self.b.len() - self.pos) as u64 {
            return Err(format!("count {n} exceeds the record"));
        }
        Ok(n as usize)
    }

    fn string(&mut self) -> Result<String, String> {
        let n = self.len()?;
        let b = self.bytes(n)?;
        String::from_utf8(b.to_vec()).map_err(|_| "label is not UTF-8".to_string())
    }

    fn done(&self) -> Result<(), String> {
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err("trailing bytes in record".into())
        }
    }
}

// ---- record payloads -----------------------------------------------------

pub fn encode_series<'a>(
    buf: &mut Vec<u8>,
    series: impl ExactSizeIterator<Item = (u64, &'a Labels)>,
) {
    put_uvarint(buf, series.len() as u64);
    for (r, l) in series {
        put_uvarint(buf, r);
        put_uvarint(buf, l.len() as u64);
        for lb in l.iter() {
            put_str(buf, &lb.name);
            put_str(buf, &lb.value);
        }
    }
}

pub fn encode_samples(buf: &mut Vec<u8>, samples: &[(u64, i64, f64)]) {
    put_uvarint(buf, samples.len() as u64);
    let Some(&(r0, t0, _)) = samples.first() else {
        return;
    };
    put_uvarint(buf, r0);
    put_varint(buf, t0);
    for &(r, t, v) in samples {
        put_varint(buf, r.wrapping_sub(r0) as i64);
        put_varint(buf, t.wrapping_sub(t0));
        buf.extend_from_slice(&v.to_bits().to_le_bytes());
    }
}

pub fn encode_deletions(buf: &mut Vec<u8>, refs: &[u64]) {
    put_uvarint(buf, refs.len() as u64);
    for &r in refs {
        put_uvarint(buf, r);
    }
}

pub fn encode_chunks<'a>(
    buf: &mut Vec<u8>,
    r: u64,
    chunks: impl ExactSizeIterator<Item = &'a [u8]>,
) {
    put_uvarint(buf, r);
    put_uvarint(buf, chunks.len() as u64);
    for c in chunks {
        put_uvarint(buf, c.len() as u64);
        buf.extend_from_slice(c);
    }
}

pub fn decode(kind: Kind, payload: &[u8]) -> Result<Record, String> {
    let mut d = Dec { b: payload, pos: 0 };
    let rec = match kind {
        Kind::Series => {
            let n = d.len()?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let r = d.uvarint()?;
                let nl = d.len()?;
                let mut v = Vec::with_capacity(nl);
                for _ in 0..nl {
                    let name = d.string()?;
                    let value = d.string()?;
                    v.push(Label::new(name, value));
                }
                if v.windows(2).any(|w| w[0].name >= w[1].name) {
                    return Err("labels not sorted".into());
                }
                out.push((r, Labels::from_sorted_unchecked(v)));
            }
            Record::Series(out)
        }
        Kind::Samples => {
            let n = d.len()?;
            let mut out = Vec::with_capacity(n);
            if n > 0 {
                let r0 = d.uvarint()?;
                let t0 = d.varint()?;
                for _ in 0..n {
                    let r = r0.wrapping_add(d.varint()? as u64);
                    let t = t0.wrapping_add(d.varint()?);
                    let b = d.bytes(8)?;
                    let mut a = [0u8; 8];
                    a.copy_from_slice(b);
                    out.push((r, t, f64::from_bits(u64::from_le_bytes(a))));
                }
            }
            Record::Samples(out)
        }
        Kind::Deletions => {
            let n = d.len()?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                out.push(d.uvarint()?);
            }
            Record::Deletions(out)
        }
        Kind::Chunks => {
            let r = d.uvarint()?;
            let n = d.len()?;
            let mut out = Vec::with_capacity(n);
            for _ in 0..n {
                let len = d.len()?;
                out.push(d.bytes(len)?.to_vec());
            }
            Record::Chunks(r, out)
        }
    };
    d.done()?;
    Ok(rec)
}

/// Frames a payload (compressing it if asked and worth it) onto `out`.
pub fn frame(out: &mut Vec<u8>, kind: Kind, payload: &[u8], compression: Compression) {
    let mut k = kind as u8;
    let compressed;
    let body: &[u8] = if compression == Compression::Snappy && payload.len() >= COMPRESS_MIN {
        compressed = snap::raw::Encoder::new()
            .compress_vec(payload)
            .unwrap_or_default();
        if !compressed.is_empty() && compressed.len() < payload.len() {
            k |= COMPRESSED;
            &compressed
        } else {
            payload
        }
    } else {
        payload
    };
    out.push(k);
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// Reads the records of one file's bytes in order. Stops at the first
/// damaged one, returning the records before it and where it was.
pub fn read_records(data: &[u8], mut each: impl FnMut(Record)) -> Result<(), (u64, String)> {
    read_records_at(data, 0, |r, _| each(r))
}

/// [`read_records`] from byte `from`, telling `each` where each record
/// ends (the offset to resume after it).
pub fn read_records_at(
    data: &[u8],
    from: usize,
    mut each: impl FnMut(Record, u64),
) -> Result<(), (u64, String)> {
    let mut pos = from;
    let mut scratch = Vec::new();
    while pos < data.len() {
        let at = pos as u64;
        let Some(h) = data.get(pos..pos + HEADER_BYTES) else {
            return Err((at, "torn record header".into()));
        };
        let kb = h[0];
        let Some(kind) = Kind::from_u8(kb & !COMPRESSED) else {
            return Err((at, format!("unknown record type {kb}")));
        };
        let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]) as usize;
        let crc = u32::from_le_bytes([h[5], h[6], h[7], h[8]]);
        let start = pos + HEADER_BYTES;
        let Some(body) = data.get(start..start + len) else {
            return Err((
                at,
                format!(
                    "torn record: {len} bytes announced, {} left",
                    data.len() - start
                ),
            ));
        };
        if crc32c::crc32c(body) != crc {
            return Err((at, "checksum mismatch".into()));
        }
        let payload: &[u8] = if kb & COMPRESSED != 0 {
            let n = snap::raw::decompress_len(body).map_err(|e| (at, e.to_string()))?;
            scratch.resize(n, 0);
            snap::raw::Decoder::new()
                .decompress(body, &mut scratch)
                .map_err(|e| (at, e.to_string()))?;
            &scratch
        } else {
            body
        };
        let rec = decode(kind, payload).map_err(|e| (at, e))?;
        pos = start + len;
        each(rec, pos as u64);
    }
    Ok(())
}

// ---- directory -----------------------------------------------------------

pub fn segment_name(n: u64) -> String {
    format!("{n:08}")
}

/// Segment numbers in `dir`, ascending.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, WalError> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(WalError::io("read directory", dir))? {
        let e = e.map_err(WalError::io("read directory", dir))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.len() == 8 && name.bytes().all(|b| b.is_ascii_digit()) {
            if let Ok(n) = name.parse() {
                out.push(n);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The newest complete checkpoint: its directory and the first segment it
/// does not cover.
pub fn last_checkpoint(dir: &Path) -> Result<Option<(PathBuf, u64)>, WalError> {
    let mut best: Option<(PathBuf, u64)> = None;
    for e in std::fs::read_dir(dir).map_err(WalError::io("read directory", dir))? {
        let e = e.map_err(WalError::io("read directory", dir))?;
        let name = e.file_name();
        let Some(n) = name.to_str().and_then(|s| s.strip_prefix("checkpoint.")) else {
            continue;
        };
        if n.len() != 8 || !n.bytes().all(|b| b.is_ascii_digit()) {
            continue; // ".tmp" leftovers of an interrupted checkpoint
        }
        if let Ok(n) = n.parse::<u64>() {
            if best.as_ref().is_none_or(|b| n > b.1) {
                best = Some((e.path(), n));
            }
        }
    }
    Ok(best)
}

fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(WalError::io("sync directory", dir))
}

// ---- writer --------------------------------------------------------------

/// Counters kept by the WAL, exported as `klaxon_tsdb_wal_*`.
#[derive(Debug, Default)]
pub struct WalStats {
    pub records: AtomicU64,
    pub bytes: AtomicU64,
    pub fsyncs: AtomicU64,
    pub write_failures: AtomicU64,
    pub corruptions: AtomicU64,
    pub segment: AtomicU64,
    pub checkpoints: AtomicU64,
    pub checkpoint_failures: AtomicU64,
    pub checkpoint_bytes: AtomicU64,
    /// First segment the newest checkpoint does not cover.
    pub checkpoint_segment: AtomicU64,
    /// Replay duration in microseconds (0 until replay finished).
    pub replay_micros: AtomicU64,
}

/// Appends framed records to numbered segment files.
#[derive(Debug)]
pub struct SegmentWriter {
    dir: PathBuf,
    max: u64,
    n: u64,
    file: Option<File>,
    size: u64,
}

impl SegmentWriter {
    /// Starts segment `n` in `dir` (created or truncated).
    pub fn new(dir: &Path, n: u64, max: u64) -> SegmentWriter {
        SegmentWriter {
            dir: dir.to_path_buf(),
            max,
            n,
            file: None,
            size: 0,
        }
    }

    pub fn segment(&self) -> u64 {
        self.n
    }

    /// Where the next record goes: segment and offset.
    pub fn position(&self) -> (u64, u64) {
        (self.n, self.size)
    }

    fn path(&self) -> PathBuf {
        self.dir.join(segment_name(self.n))
    }

    fn open(&mut self) -> Result<&mut File, WalError> {
        if self.file.is_none() {
            let p = self.path();
            let f = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&p)
                .map_err(WalError::io("create segment", &p))?;
            self.size = 0;
            self.file = Some(f);
        }
        match self.file.as_mut() {
            Some(f) => Ok(f),
            None => unreachable!("file was just set"),
        }
    }

    /// Closes the current segment (fsynced) so the next write opens the next.
    pub fn cut(&mut self, stats: &WalStats) -> Result<(), WalError> {
        if let Some(f) = self.file.take() {
            let p = self.path();
            f.sync_all().map_err(WalError::io("sync segment", &p))?;
            stats.fsyncs.fetch_add(1, Relaxed);
            self.n += 1;
            self.size = 0;
        }
        Ok(())
    }

    /// Writes `buf` (whole framed records) with one `write` call. On failure
    /// the segment is cut back to its previous length, so a partial write
    /// never sits in front of later records; if even that fails the next
    /// write starts a new segment.
    pub fn write(&mut self, buf: &[u8], stats: &WalStats) -> Result<(), WalError> {
        if buf.is_empty() {
            return Ok(());
        }
        if self.file.is_some() && self.size > 0 && self.size + buf.len() as u64 > self.max {
            self.cut(stats)?;
        }
        let prev = self.size;
        let p = self.path();
        let res = self
            .open()
            .and_then(|f| f.write_all(buf).map_err(WalError::io("write segment", &p)));
        match res {
            Ok(()) => {
                self.size += buf.len() as u64;
                stats.bytes.fetch_add(buf.len() as u64, Relaxed);
                stats.segment.store(self.n, Relaxed);
                Ok(())
            }
            Err(e) => {
                stats.write_failures.fetch_add(1, Relaxed);
                let restored = self.file.as_mut().is_some_and(|f| {
                    f.set_len(prev).is_ok() && f.seek(SeekFrom::Start(prev)).is_ok()
                });
                if !restored && self.file.take().is_some() {
                    // The damaged tail stays; replay stops there and later
                    // records go to the next segment.
                    self.n += 1;
                    self.size = 0;
                }
                Err(e)
            }
        }
    }

    pub fn sync(&mut self, stats: &WalStats) -> Result<(), WalError> {
        if let Some(f) = &self.file {
            f.sync_all()
                .map_err(WalError::io("sync segment", &self.path()))?;
            stats.fsyncs.fetch_add(1, Relaxed);
        }
        Ok(())
    }
}

/// Options for [`Wal`].
#[derive(Clone, Copy, Debug)]
pub struct WalOptions {
    pub segment_size: u64,
    pub compression: Compression,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            segment_size: DEFAULT_SEGMENT_SIZE,
            compression: Compression::Snappy,
        }
    }
}

/// The log the head writes: the segment writer behind a lock, plus counters.
#[derive(Debug)]
pub struct Wal {
    pub dir: PathBuf,
    pub opts: WalOptions,
    pub(crate) writer: parking_lot::Mutex<SegmentWriter>,
    pub stats: WalStats,
    /// Readers of the log (remote-write queues) and the first segment each
    /// still needs: checkpoints keep those segments.
    holds: parking_lot::Mutex<std::collections::HashMap<String, u64>>,
}

impl Wal {
    /// Opens `dir` (created if missing) for writing after the segments
    /// already there, which replay reads first. A directory that cannot be
    /// created or written is an error here, before anything else starts.
    pub fn open(dir: &Path, opts: WalOptions) -> Result<Wal, WalError> {
        std::fs::create_dir_all(dir).map_err(WalError::io("create directory", dir))?;
        // Prove the directory is writable now rather than at the first commit.
        let probe = dir.join(".write-test");
        std::fs::write(&probe, b"")
            .and_then(|_| std::fs::remove_file(&probe))
            .map_err(WalError::io("write to directory", dir))?;
        let next = list_segments(dir)?.last().map_or(0, |n| n + 1);
        let next = match last_checkpoint(dir)? {
            Some((_, c)) => next.max(c),
            None => next,
        };
        Ok(Wal {
            dir: dir.to_path_buf(),
            opts,
            writer: parking_lot::Mutex::new(SegmentWriter::new(dir, next, opts.segment_size)),
            stats: WalStats::default(),
            holds: Default::default(),
        })
    }

    /// Where the next record goes (segment, offset): a new reader that
    /// wants only what is written from now on starts here.
    pub fn position(&self) -> (u64, u64) {
        self.writer.lock().position()
    }

    /// Records that reader `name` still needs segment `segment` and later.
    pub fn hold(&self, name: &str, segment: u64) {
        self.holds.lock().insert(name.to_string(), segment);
    }

    pub fn release(&self, name: &str) {
        self.holds.lock().remove(name);
    }

    /// The lowest segment some reader still needs.
    fn held_from(&self) -> Option<u64> {
        self.holds.lock().values().copied().min()
    }

    /// Writes one batch of framed records.
    pub fn log(&self, buf: &[u8]) -> Result<(), WalError> {
        let r = self.writer.lock().write(buf, &self.stats);
        if r.is_ok() {
            self.stats.records.fetch_add(1, Relaxed);
        }
        r
    }

    /// Fsyncs the open segment (clean stop).
    pub fn sync(&self) -> Result<(), WalError> {
        self.writer.lock().sync(&self.stats)
    }

    /// Bytes in segments at or after `from`.
    pub fn segment_bytes_from(&self, from: u64) -> u64 {
        list_segments(&self.dir)
            .unwrap_or_default()
            .into_iter()
            .filter(|n| *n >= from)
            .filter_map(|n| std::fs::metadata(self.dir.join(segment_name(n))).ok())
            .map(|m| m.len())
            .sum()
    }
}

/// Writes a checkpoint covering segments below `upto` from `write`, which
/// fills a segment writer; then deletes what it replaces. Atomic: the data
/// goes to `checkpoint.N.tmp`, fsynced, then renamed.
pub fn write_checkpoint(
    wal: &Wal,
    upto: u64,
    write: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<(), WalError>) -> Result<(), WalError>,
) -> Result<u64, WalError> {
    let final_dir = wal.dir.join(format!("checkpoint.{}", segment_name(upto)));
    let tmp = wal
        .dir
        .join(format!("checkpoint.{}.tmp", segment_name(upto)));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(WalError::io("remove", &tmp))?;
    }
    std::fs::create_dir_all(&tmp).map_err(WalError::io("create directory", &tmp))?;
    let scratch = WalStats::default();
    let mut w = SegmentWriter::new(&tmp, 0, wal.opts.segment_size);
    let mut buf = Vec::new();
    let mut bytes = 0u64;
    {
        let mut sink = |rec: &[u8]| -> Result<(), WalError> {
            buf.extend_from_slice(rec);
            if buf.len() >= 1 << 20 {
                w.write(&buf, &scratch)?;
                bytes += buf.len() as u64;
                buf.clear();
            }
            Ok(())
        };
        write(&mut sink)?;
    }
    w.write(&buf, &scratch)?;
    bytes += buf.len() as u64;
    w.cut(&scratch)?;
    sync_dir(&tmp)?;
    if final_dir.exists() {
        std::fs::remove_dir_all(&final_dir).map_err(WalError::io("remove", &final_dir))?;
    }
    std::fs::rename(&tmp, &final_dir).map_err(WalError::io("rename", &tmp))?;
    sync_dir(&wal.dir)?;
    // What the new checkpoint replaces: older checkpoints and segments
    // (segments a reader still needs stay until it has read them).
    let delete_below = wal.held_from().map_or(upto, |h| h.min(upto));
    for e in std::fs::read_dir(&wal.dir).map_err(WalError::io("read directory", &wal.dir))? {
        let Ok(e) = e else { continue };
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let old = if let Some(n) = name.strip_prefix("checkpoint.") {
            n.get(..8)
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n < upto)
        } else {
            name.len() == 8 && name.parse::<u64>().is_ok_and(|n| n < delete_below)
        };
        if old {
            let p = e.path();
            let r = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            if let Err(err) = r {
                tracing::warn!(path = %p.display(), error = %err, "removing old WAL file failed");
            }
        }
    }
    wal.stats.checkpoints.fetch_add(1, Relaxed);
    wal.stats.checkpoint_bytes.store(bytes, Relaxed);
    Ok(bytes)
}

/// Reads one file's records. Damage ends the file: the good prefix is
/// kept, the file truncated there (when `repair`), the corruption returned.
pub fn replay_file(
    path: &Path,
    repair: bool,
    each: impl FnMut(Record),
) -> Result<Option<Corruption>, WalError> {
    let data = std::fs::read(path).map_err(WalError::io("read segment", path))?;
    match read_records(&data, each) {
        Ok(()) => Ok(None),
        Err((offset, reason)) => {
            if repair {
                OpenOptions::new()
                    .write(true)
                    .open(path)
                    .and_then(|f| f.set_len(offset).and_then(|_| f.sync_all()))
                    .map_err(WalError::io("truncate damaged segment", path))?;
            }
            Ok(Some(Corruption {
                file: path.display().to_string(),
                offset,
                reason,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framed(recs: &[Record], c: Compression) -> Vec<u8> {
        let mut out = Vec::new();
        for r in recs {
            let mut p = Vec::new();
            let k = match r {
                Record::Series(s) => {
                    encode_series(&mut p, s.iter().map(|(r, l)| (*r, l)));
                    Kind::Series
                }
                Record::Samples(s) => {
                    encode_samples(&mut p, s);
                    Kind::Samples
                }
                Record::Deletions(d) => {
                    encode_deletions(&mut p, d);
                    Kind::Deletions
                }
                Record::Chunks(r, c) => {
                    encode_chunks(&mut p, *r, c.iter().map(|c| &c[..]));
                    Kind::Chunks
                }
            };
            frame(&mut out, k, &p, c);
        }
        out
    }

    fn sample_records() -> Vec<Record> {
        let many: Vec<(u64, i64, f64)> = (0..200)
            .map(|i| {
                (
                    1000 + (i % 7) * 512,
                    1_700_000_000_000 + i as i64 * 15,
                    i as f64,
                )
            })
            .collect();
        vec![
            Record::Series(vec![
                (513, Labels::from_pairs([("__name__", "up"), ("job", "a")])),
                (1025, Labels::from_pairs([("__name__", "ü"), ("x", "")])),
            ]),
            Record::Samples(vec![
                (513, -5, 1.5),
                (1025, i64::MAX, crate::model::STALE_NAN),
                (2, i64::MIN, f64::NEG_INFINITY),
            ]),
            Record::Samples(many),
            Record::Samples(vec![]),
            Record::Deletions(vec![513, u64::MAX]),
            Record::Chunks(7, vec![vec![1, 2, 3], vec![]]),
        ]
    }

    fn read_all(data: &[u8]) -> (Vec<Record>, Result<(), (u64, String)>) {
        let mut got = Vec::new();
        let r = read_records(data, |rec| got.push(rec));
        (got, r)
    }

    /// Equality that compares floats by bits (NaN markers included).
    fn bits(recs: &[Record]) -> String {
        recs.iter()
            .map(|r| match r {
                Record::Samples(s) => format!(
                    "{:?}",
                    s.iter()
                        .map(|(r, t, v)| (*r, *t, v.to_bits()))
                        .collect::<Vec<_>>()
                ),
                other => format!("{other:?}"),
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    #[test]
    fn records_round_trip_with_and_without_compression() {
        let recs = sample_records();
        for c in [Compression::None, Compression::Snappy] {
            let data = framed(&recs, c);
            let (got, r) = read_all(&data);
            assert_eq!(r, Ok(()));
            assert_eq!(bits(&got), bits(&recs), "{c:?}");
        }
        assert!(framed(&recs, Compression::Snappy).len() < framed(&recs, Compression::None).len());
    }

    #[test]
    fn a_torn_tail_keeps_every_whole_record_before_it() {
        let recs = sample_records();
        let data = framed(&recs, Compression::Snappy);
        let whole = {
            let mut v = framed(&recs[..recs.len() - 1], Compression::Snappy);
            v.truncate(v.len());
            v.len()
        };
        // Cut anywhere inside the last record.
        for cut in whole + 1..data.len() {
            let (got, r) = read_all(&data[..cut]);
            assert_eq!(got.len(), recs.len() - 1, "cut at {cut}");
            assert_eq!(r.map_err(|e| e.0), Err(whole as u64));
        }
    }

    #[test]
    fn a_flipped_byte_is_caught_at_its_record() {
        let recs = sample_records();
        let data = framed(&recs, Compression::None);
        let first = framed(&recs[..1], Compression::None).len();
        let second = framed(&recs[..2], Compression::None).len();
        for at in first..second {
            let mut d = data.clone();
            d[at] ^= 0x10;
            let (got, r) = read_all(&d);
            assert_eq!(got.len(), 1, "flip at {at}");
            assert_eq!(r.map_err(|e| e.0), Err(first as u64), "flip at {at}");
        }
    }

    #[test]
    fn garbage_payloads_are_errors_not_panics() {
        for kind in [Kind::Series, Kind::Samples, Kind::Deletions, Kind::Chunks] {
            for p in [&[][..], &[0xff; 12][..], &[5, 1, 2][..], &[1, 0x80][..]] {
                let _ = decode(kind, p);
            }
        }
        assert!(decode(Kind::Samples, &[0xff, 0xff, 0xff, 0x7f]).is_err());
    }

    #[test]
    fn segments_are_cut_at_the_size_limit_and_failed_writes_leave_no_tail() {
        let dir = tempfile::tempdir().unwrap();
        let stats = WalStats::default();
        let mut w = SegmentWriter::new(dir.path(), 3, 100);
        let rec = framed(&[Record::Deletions(vec![1; 45])], Compression::None);
        assert!(rec.len() > 40 && rec.len() < 100);
        w.write(&rec, &stats).unwrap();
        w.write(&rec, &stats).unwrap();
        w.write(&rec, &stats).unwrap();
        assert_eq!(list_segments(dir.path()).unwrap(), [3, 4, 5]);
        assert_eq!(stats.fsyncs.load(Relaxed), 2);
        for n in [3, 4, 5] {
            let mut got = Vec::new();
            let c = replay_file(&dir.path().join(segment_name(n)), true, |r| got.push(r)).unwrap();
            assert_eq!(c, None);
            assert_eq!(got.len(), 1);
        }
    }

    #[test]
    fn replay_truncates_a_damaged_file_at_the_last_good_record() {
        let dir = tempfile::tempdir().unwrap();
        let recs = sample_records();
        let data = framed(&recs, Compression::Snappy);
        let good = framed(&recs[..3], Compression::Snappy).len();
        let p = dir.path().join(segment_name(0));
        std::fs::write(&p, &data[..good + 5]).unwrap();
        let mut got = Vec::new();
        let c = replay_file(&p, true, |r| got.push(r)).unwrap().unwrap();
        assert_eq!(c.offset, good as u64);
        assert!(c.to_string().contains(&p.display().to_string()));
        assert_eq!(got.len(), 3);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), good as u64);
        // Reading again finds a clean file.
        assert_eq!(replay_file(&p, true, |_| {}).unwrap(), None);
    }

    #[test]
    fn open_refuses_an_unusable_directory() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, b"x").unwrap();
        let err = Wal::open(&file.join("wal"), WalOptions::default()).unwrap_err();
        assert!(err.to_string().contains("create directory"), "{err}");
    }
}
