//! Full head chunks on disk (`storage.path/chunks_head/`), in Prometheus'
//! head-chunks format, so that only open chunks stay in the heap.
//!
//! A file (`000001`, `000002`, ...; at most [`MAX_FILE_SIZE`] bytes) is a
//! header — magic `0x0130BC91` (4 bytes, big endian), version 1 (1 byte),
//! 3 bytes of padding — followed by chunks:
//!
//! `series ref (8) | mint (8) | maxt (8) | encoding (1) | len (uvarint) |
//! data (len) | CRC32C (4)`, integers big endian, the checksum over
//! everything before it in the chunk. Encodings are Prometheus' (1 XOR,
//! 2 integer and 3 float native histogram).
//!
//! A chunk is referenced by `file sequence << 32 | offset in the file`, as
//! Prometheus' `ChunkDiskMapperRef`. Writes go through a buffered writer
//! (flushed before a reference is handed out, fsynced when a file is cut and
//! before a WAL checkpoint drops the samples); reads use `pread` on the
//! files, so the page cache, not the heap, holds chunk data. At start the
//! files are scanned and checked; a damaged tail is cut at the last good
//! chunk (counted and logged with file and offset). New chunks always go to
//! a new file, as Prometheus does after a restart.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::chunk_histogram::{ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM};

/// The head-chunks file magic.
pub const MAGIC: u32 = 0x0130_BC91;
/// The only format version.
pub const VERSION: u8 = 1;
/// Bytes before the first chunk of a file.
pub const FILE_HEADER: usize = 8;
/// A file is cut before it would grow past this (Prometheus' 128 MiB).
pub const MAX_FILE_SIZE: u64 = 128 << 20;
/// Prometheus' encoding byte for XOR chunks.
pub const ENCODING_XOR: u8 = 1;

/// A histogram chunk's file reference as the head keeps it: the
/// reference shifted left by one, the low bit set for a float histogram
/// chunk (file sequences stay far below 2^31, so nothing is lost).
pub fn hist_ref(r: u64, encoding: u8) -> u64 {
    r << 1 | u64::from(encoding == ENCODING_FLOAT_HISTOGRAM)
}

/// The file reference and encoding of a [`hist_ref`].
pub fn split_hist_ref(tagged: u64) -> (u64, u8) {
    let encoding = if tagged & 1 == 1 {
        ENCODING_FLOAT_HISTOGRAM
    } else {
        ENCODING_HISTOGRAM
    };
    (tagged >> 1, encoding)
}
/// Series ref, mint, maxt and encoding.
const CHUNK_FIXED: usize = 8 + 8 + 8 + 1;
const CRC_LEN: usize = 4;
/// Bytes a first read of a chunk takes (most chunks fit).
const FIRST_READ: usize = 320;

/// A full chunk that lives in a head chunk file: where, and its time span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MappedChunk {
    /// `file sequence << 32 | offset`.
    pub r: u64,
    pub mint: i64,
    pub maxt: i64,
}

/// A chunk to write.
pub struct ChunkToWrite<'a> {
    pub series: u64,
    pub encoding: u8,
    pub mint: i64,
    pub maxt: i64,
    pub data: &'a [u8],
}

#[derive(Debug, thiserror::Error)]
pub enum HeadChunksError {
    #[error("head chunks: {op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// A damaged head chunk file, cut at `offset` (its last good chunk's end).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkCorruption {
    pub file: String,
    pub offset: u64,
    pub reason: String,
}

impl std::fmt::Display for ChunkCorruption {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at offset {}: {}",
            self.file, self.offset, self.reason
        )
    }
}

/// What opening the directory found: every good chunk per series ref,
/// oldest first: XOR chunks in `series`, histogram chunks (references as
/// [`hist_ref`] makes them) in `hist`.
#[derive(Debug, Default)]
pub struct Loaded {
    pub series: HashMap<u64, Vec<MappedChunk>>,
    pub hist: HashMap<u64, Vec<MappedChunk>>,
    pub chunks: u64,
    pub corruptions: Vec<ChunkCorruption>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct HeadChunksStats {
    pub written: AtomicU64,
    pub corruptions: AtomicU64,
    pub read_errors: AtomicU64,
    pub files_removed: AtomicU64,
}

#[derive(Debug)]
struct FileEntry {
    file: Arc<File>,
    /// Newest sample time of any chunk in the file.
    maxt: i64,
    size: u64,
}

#[derive(Debug)]
struct Writer {
    seq: u32,
    out: Option<BufWriter<File>>,
    size: u64,
}

/// The head chunk files of one data directory.
#[derive(Debug)]
pub struct HeadChunks {
    dir: PathBuf,
    writer: Mutex<Writer>,
    files: RwLock<BTreeMap<u32, FileEntry>>,
    pub stats: HeadChunksStats,
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> HeadChunksError {
    let path = path.display().to_string();
    move |source| HeadChunksError::Io { op, path, source }
}

/// File name of sequence `seq`: six digits, as Prometheus names them.
pub fn file_name(seq: u32) -> String {
    format!("{seq:06}")
}

/// Appends one chunk in the file format to `out`.
pub fn encode_chunk(out: &mut Vec<u8>, c: &ChunkToWrite<'_>) {
    let start = out.len();
    out.extend_from_slice(&c.series.to_be_bytes());
    out.extend_from_slice(&(c.mint as u64).to_be_bytes());
    out.extend_from_slice(&(c.maxt as u64).to_be_bytes());
    out.push(c.encoding);
    let mut n = c.data.len() as u64;
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    out.extend_from_slice(c.data);
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut x = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        x |= u64::from(byte & 0x7f) << (7 * i);
        if *byte < 0x80 {
            return Some((x, i + 1));
        }
    }
    None
}

/// One decoded chunk: its header fields, where its data sits in the buffer
/// given, and its total length.
#[derive(Debug, PartialEq, Eq)]
pub struct Decoded {
    pub series: u64,
    pub mint: i64,
    pub maxt: i64,
    pub encoding: u8,
    pub data: std::ops::Range<usize>,
    pub len: usize,
}

/// Why a chunk at the start of `b` is not a good one.
#[derive(Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end inside the chunk (a torn write, or more to read).
    Short {
        need: usize,
    },
    Bad(String),
}

/// Decodes the chunk at the start of `b`; `check` verifies the CRC.
pub fn decode_chunk(b: &[u8], check: bool) -> Result<Decoded, DecodeError> {
    let short = |need| Err(DecodeError::Short { need });
    if b.len() < CHUNK_FIXED + 1 {
        return short(CHUNK_FIXED + 1);
    }
    let be = |i: usize| {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[i..i + 8]);
        u64::from_be_bytes(a)
    };
    let encoding = b[24];
    let Some((len, n)) = uvarint(&b[CHUNK_FIXED..]) else {
        return if b.len() >= CHUNK_FIXED + 10 {
            Err(DecodeError::Bad("bad chunk length varint".into()))
        } else {
            short(CHUNK_FIXED + 10)
        };
    };
    let data_start = CHUNK_FIXED + n;
    let Some(total) = usize::try_from(len)
        .ok()
        .filter(|l| *l as u64 <= MAX_FILE_SIZE)
        .map(|l| data_start + l + CRC_LEN)
    else {
        return Err(DecodeError::Bad(format!("chunk length {len} too large")));
    };
    if b.len() < total {
        return short(total);
    }
    if !matches!(
        encoding,
        ENCODING_XOR | ENCODING_HISTOGRAM | ENCODING_FLOAT_HISTOGRAM
    ) {
        return Err(DecodeError::Bad(format!(
            "unsupported chunk encoding {encoding}"
        )));
    }
    if check {
        let want = u32::from_be_bytes([b[total - 4], b[total - 3], b[total - 2], b[total - 1]]);
        let got = crc32c::crc32c(&b[..total - CRC_LEN]);
        if want != got {
            return Err(DecodeError::Bad(format!(
                "checksum mismatch (expected {want:#010x}, got {got:#010x})"
            )));
        }
    }
    Ok(Decoded {
        series: be(0),
        mint: be(8) as i64,
        maxt: be(16) as i64,
        encoding,
        data: data_start..total - CRC_LEN,
        len: total,
    })
}

fn parse_seq(name: &str) -> Option<u32> {
    (!name.is_empty() && name.bytes().all(|b| b.is_ascii_digit()))
        .then(|| name.parse().ok())
        .flatten()
}

impl HeadChunks {
    /// Opens (creating) `dir` and reads every chunk in it. Damaged files are
    /// cut at their last good chunk; files that cannot be read at all are
    /// reported and left out. Fails only when the directory cannot be used.
    pub fn open(dir: &Path) -> Result<(HeadChunks, Loaded), HeadChunksError> {
        std::fs::create_dir_all(dir).map_err(io_err("create", dir))?;
        let mut seqs: Vec<(u32, PathBuf)> = std::fs::read_dir(dir)
            .map_err(io_err("read", dir))?
            .filter_map(|e| {
                let e = e.ok()?;
                let name = e.file_name().into_string().ok()?;
                Some((parse_seq(&name)?, e.path()))
            })
            .collect();
        seqs.sort_unstable();
        let mut loaded = Loaded::default();
        let mut files = BTreeMap::new();
        let stats = HeadChunksStats::default();
        for (seq, path) in &seqs {
            match load_file(*seq, path, &mut loaded) {
                Ok((entry, corruption)) => {
                    if let Some(c) = corruption {
                        stats.corruptions.fetch_add(1, Relaxed);
                        tracing::error!(file = %c.file, offset = c.offset, reason = %c.reason,
                            "head chunk file corrupted: {c}; cut at the last good chunk, the WAL fills in what it still holds");
                        loaded.corruptions.push(c);
                    }
                    files.insert(*seq, entry);
                }
                Err(e) => {
                    stats.corruptions.fetch_add(1, Relaxed);
                    tracing::error!(error = %e, "head chunk file unreadable; skipped");
                    loaded.corruptions.push(ChunkCorruption {
                        file: path.display().to_string(),
                        offset: 0,
                        reason: e.to_string(),
                    });
                }
            }
        }
        for list in loaded.series.values_mut().chain(loaded.hist.values_mut()) {
            list.sort_by_key(|c| c.mint);
            // Overlapping chunks (a chunk written twice) keep the first.
            let mut last = i64::MIN;
            list.retain(|c| {
                let keep = c.mint > last || last == i64::MIN;
                if keep {
                    last = c.maxt;
                }
                keep
            });
        }
        let next = seqs.last().map_or(1, |(s, _)| s + 1);
        Ok((
            HeadChunks {
                dir: dir.to_path_buf(),
                writer: Mutex::new(Writer {
                    seq: next,
                    out: None,
                    size: 0,
                }),
                files: RwLock::new(files),
                stats,
            },
            loaded,
        ))
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes `chunks` (buffered, then flushed once), returning their
    /// references in order.
    pub fn write(&self, chunks: &[ChunkToWrite<'_>]) -> Result<Vec<u64>, HeadChunksError> {
        let mut refs = Vec::with_capacity(chunks.len());
        let mut w = self.writer.lock();
        let mut buf = Vec::with_capacity(512);
        for c in chunks {
            buf.clear();
            encode_chunk(&mut buf, c);
            if w.out.is_none() || w.size + buf.len() as u64 > MAX_FILE_SIZE {
                self.cut(&mut w)?;
            }
            let seq = w.seq;
            let path = self.dir.join(file_name(seq));
            let offset = w.size;
            if let Some(out) = w.out.as_mut() {
                out.write_all(&buf).map_err(io_err("write", &path))?;
            }
            w.size += buf.len() as u64;
            refs.push(u64::from(seq) << 32 | offset);
            if let Some(e) = self.files.write().get_mut(&seq) {
                e.maxt = e.maxt.max(c.maxt);
            }
        }
        let path = self.dir.join(file_name(w.seq));
        if let Some(out) = w.out.as_mut() {
            out.flush().map_err(io_err("write", &path))?;
        }
        let (seq, size) = (w.seq, w.size);
        if let Some(e) = self.files.write().get_mut(&seq) {
            e.size = size;
        }
        self.stats.written.fetch_add(chunks.len() as u64, Relaxed);
        Ok(refs)
    }

    /// Seals the current file (flush, fsync) and starts the next one.
    fn cut(&self, w: &mut Writer) -> Result<(), HeadChunksError> {
        if let Some(mut out) = w.out.take() {
            let path = self.dir.join(file_name(w.seq));
            out.flush().map_err(io_err("write", &path))?;
            out.get_ref().sync_all().map_err(io_err("fsync", &path))?;
            w.seq += 1;
        }
        let path = self.dir.join(file_name(w.seq));
        let mut f = File::options()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(io_err("create", &path))?;
        let mut header = [0u8; FILE_HEADER];
        header[..4].copy_from_slice(&MAGIC.to_be_bytes());
        header[4] = VERSION;
        f.write_all(&header).map_err(io_err("write", &path))?;
        let reader = File::open(&path).map_err(io_err("open", &path))?;
        self.files.write().insert(
            w.seq,
            FileEntry {
                file: Arc::new(reader),
                maxt: i64::MIN,
                size: FILE_HEADER as u64,
            },
        );
        w.out = Some(BufWriter::with_capacity(1 << 16, f));
        w.size = FILE_HEADER as u64;
        Ok(())
    }

    /// Flushes and fsyncs the file being written (before a WAL checkpoint
    /// drops the samples of chunks written here).
    pub fn sync(&self) -> Result<(), HeadChunksError> {
        let mut w = self.writer.lock();
        let path = self.dir.join(file_name(w.seq));
        if let Some(out) = w.out.as_mut() {
            out.flush().map_err(io_err("write", &path))?;
            out.get_ref().sync_all().map_err(io_err("fsync", &path))?;
        }
        Ok(())
    }

    /// The chunk bytes behind `r` (read from the file; the page cache holds
    /// them, not the heap). `None`, counted, when the read fails.
    pub fn read(&self, r: u64) -> Option<Vec<u8>> {
        let seq = (r >> 32) as u32;
        let offset = r & 0xffff_ffff;
        let file = self.files.read().get(&seq).map(|e| e.file.clone());
        let res = file.and_then(|f| read_chunk(&f, offset).ok().flatten());
        if res.is_none() {
            self.stats.read_errors.fetch_add(1, Relaxed);
            tracing::warn!(
                file = %self.dir.join(file_name(seq)).display(),
                offset,
                "head chunk read failed"
            );
        }
        res
    }

    /// Deletes the files (not the one being written) whose chunks all end
    /// before `cutoff`; the head has dropped their references by then.
    pub fn truncate(&self, cutoff: i64) -> usize {
        let active = self.writer.lock().seq;
        let old: Vec<u32> = self
            .files
            .read()
            .iter()
            .filter(|(s, e)| **s != active && e.maxt < cutoff)
            .map(|(s, _)| *s)
            .collect();
        let mut removed = 0;
        for seq in old {
            let path = self.dir.join(file_name(seq));
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    self.files.write().remove(&seq);
                    removed += 1;
                }
                Err(e) => {
                    tracing::warn!(file = %path.display(), error = %e, "removing head chunk file failed")
                }
            }
        }
        self.stats.files_removed.fetch_add(removed as u64, Relaxed);
        removed
    }

    /// Bytes of all head chunk files.
    pub fn size_bytes(&self) -> u64 {
        self.files.read().values().map(|e| e.size).sum()
    }

    pub fn num_files(&self) -> usize {
        self.files.read().len()
    }
}

/// Reads the chunk at `offset`; `Ok(None)` when it does not decode.
fn read_chunk(f: &File, offset: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut buf = vec![0u8; FIRST_READ];
    let n = read_some(f, &mut buf, offset)?;
    buf.truncate(n);
    let d = match decode_chunk(&buf, false) {
        Ok(d) => d,
        Err(DecodeError::Short { need }) if need > buf.len() && n == FIRST_READ => {
            buf.resize(need, 0);
            let m = read_some(f, &mut buf, offset)?;
            buf.truncate(m);
            match decode_chunk(&buf, false) {
                Ok(d) => d,
                Err(_) => return Ok(None),
            }
        }
        Err(_) => return Ok(None),
    };
    buf.truncate(d.data.end);
    buf.drain(..d.data.start);
    Ok(Some(buf))
}

/// Reads up to `buf.len()` bytes at `offset` (fewer at the end of the file).
fn read_some(f: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match f.read_at(&mut buf[got..], offset + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

/// Reads and checks one file, adding its chunks to `loaded`; a bad tail is
/// cut off (the file truncated at the last good chunk) and reported.
fn load_file(
    seq: u32,
    path: &Path,
    loaded: &mut Loaded,
) -> Result<(FileEntry, Option<ChunkCorruption>), HeadChunksError> {
    let bytes = std::fs::read(path).map_err(io_err("read", path))?;
    let corrupt = |offset: usize, reason: String| ChunkCorruption {
        file: path.display().to_string(),
        offset: offset as u64,
        reason,
    };
    let mut corruption = None;
    let mut maxt = i64::MIN;
    let mut good = FILE_HEADER;
    if bytes.len() < FILE_HEADER {
        corruption = Some(corrupt(0, "file shorter than its header".into()));
        good = 0;
    } else if bytes[..4] != MAGIC.to_be_bytes() || bytes[4] != VERSION {
        corruption = Some(corrupt(0, "bad magic or version".into()));
        good = 0;
    } else {
        let mut pos = FILE_HEADER;
        while pos < bytes.len() {
            // A preallocated or torn tail of zeros ends the file cleanly.
            if bytes[pos..].iter().all(|b| *b == 0) {
                corruption = Some(corrupt(pos, "zero-filled tail".into()))
                    .filter(|_| bytes.len() - pos > CHUNK_FIXED);
                break;
            }
            match decode_chunk(&bytes[pos..], true) {
                Ok(d) => {
                    let r = u64::from(seq) << 32 | pos as u64;
                    let (lists, r) = match d.encoding {
                        ENCODING_XOR => (&mut loaded.series, r),
                        enc => (&mut loaded.hist, hist_ref(r, enc)),
                    };
                    lists.entry(d.series).or_default().push(MappedChunk {
                        r,
                        mint: d.mint,
                        maxt: d.maxt,
                    });
                    loaded.chunks += 1;
                    maxt = maxt.max(d.maxt);
                    pos += d.len;
                    good = pos;
                }
                Err(DecodeError::Short { .. }) => {
                    corruption = Some(corrupt(pos, "torn chunk at the end of the file".into()));
                    break;
                }
                Err(DecodeError::Bad(reason)) => {
                    corruption = Some(corrupt(pos, reason));
                    break;
                }
            }
        }
    }
    if good < bytes.len() {
        let f = File::options()
            .write(true)
            .open(path)
            .map_err(io_err("open", path))?;
        if good == 0 {
            // Not a head chunk file at all: rewrite an empty one.
            f.set_len(0).map_err(io_err("truncate", path))?;
            let mut header = [0u8; FILE_HEADER];
            header[..4].copy_from_slice(&MAGIC.to_be_bytes());
            header[4] = VERSION;
            (&f).write_all(&header).map_err(io_err("write", path))?;
            good = FILE_HEADER;
        } else {
            f.set_len(good as u64).map_err(io_err("truncate", path))?;
        }
        f.sync_all().map_err(io_err("fsync", path))?;
    }
    let file = File::open(path).map_err(io_err("open", path))?;
    Ok((
        FileEntry {
            file: Arc::new(file),
            maxt,
            size: good as u64,
        },
        corruption,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tsdb::chunk::{ChunkIter, HeadChunk};

    fn chunk(from: i64, n: i64) -> Vec<u8> {
        let mut c = HeadChunk::new(from, from as f64);
        for t in from + 1..from + n {
            c.append(t * 10, t as f64 * 0.5);
        }
        c.bytes().to_vec()
    }

    fn write_some(hc: &HeadChunks, n: u64) -> Vec<(u64, Vec<u8>)> {
        let datas: Vec<Vec<u8>> = (0..n).map(|i| chunk(i as i64 * 10_000, 120)).collect();
        let todo: Vec<ChunkToWrite<'_>> = datas
            .iter()
            .enumerate()
            .map(|(i, d)| ChunkToWrite {
                series: 7 + i as u64 % 3,
                encoding: ENCODING_XOR,
                mint: i as i64 * 10_000,
                maxt: i as i64 * 10_000 + 1190,
                data: d,
            })
            .collect();
        let refs = hc.write(&todo).unwrap();
        refs.into_iter().zip(datas).collect()
    }

    #[test]
    fn chunks_roundtrip_through_files_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let (hc, loaded) = HeadChunks::open(dir.path()).unwrap();
        assert_eq!(loaded.chunks, 0);
        let written = write_some(&hc, 10);
        for (r, data) in &written {
            assert_eq!(hc.read(*r).as_ref(), Some(data));
            assert_eq!(r >> 32, 1, "first file is 000001");
        }
        assert!(dir.path().join("000001").exists());
        let raw = std::fs::read(dir.path().join("000001")).unwrap();
        assert_eq!(raw[..5], [0x01, 0x30, 0xBC, 0x91, 1]);
        drop(hc);
        let (hc, loaded) = HeadChunks::open(dir.path()).unwrap();
        assert_eq!(loaded.chunks, 10);
        assert!(loaded.corruptions.is_empty());
        let s7 = &loaded.series[&7];
        assert_eq!(s7.len(), 4);
        assert_eq!((s7[1].mint, s7[1].maxt), (30_000, 31_190));
        let data = hc.read(s7[1].r).unwrap();
        assert_eq!(ChunkIter::new(&data).count(), 120);
        // New chunks go to a new file.
        let more = write_some(&hc, 1);
        assert_eq!(more[0].0 >> 32, 2);
    }

    #[test]
    fn a_torn_tail_is_cut_at_the_last_good_chunk() {
        let dir = tempfile::tempdir().unwrap();
        let (hc, _) = HeadChunks::open(dir.path()).unwrap();
        let written = write_some(&hc, 5);
        drop(hc);
        let path = dir.path().join("000001");
        let len = std::fs::metadata(&path).unwrap().len();
        let last = written[4].0 & 0xffff_ffff;
        // Half of the last chunk reached the disk.
        let f = File::options().write(true).open(&path).unwrap();
        f.set_len(last + (len - last) / 2).unwrap();
        drop(f);
        let (_hc, loaded) = HeadChunks::open(dir.path()).unwrap();
        assert_eq!(loaded.chunks, 4);
        assert_eq!(loaded.corruptions.len(), 1);
        let c = &loaded.corruptions[0];
        assert_eq!(c.offset, last);
        assert!(c.file.ends_with("000001"), "{c}");
        assert_eq!(std::fs::metadata(&path).unwrap().len(), last);
        assert_eq!(_hc.stats.corruptions.load(Relaxed), 1);
    }

    #[test]
    fn a_flipped_bit_fails_the_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let (hc, _) = HeadChunks::open(dir.path()).unwrap();
        let written = write_some(&hc, 5);
        drop(hc);
        let path = dir.path().join("000001");
        let mut raw = std::fs::read(&path).unwrap();
        let third = (written[2].0 & 0xffff_ffff) as usize;
        raw[third + 40] ^= 0x10;
        std::fs::write(&path, &raw).unwrap();
        let (_hc, loaded) = HeadChunks::open(dir.path()).unwrap();
        assert_eq!(loaded.chunks, 2);
        assert!(
            loaded.corruptions[0].reason.contains("checksum"),
            "{:?}",
            loaded.corruptions
        );
        assert_eq!(loaded.corruptions[0].offset, third as u64);
    }

    #[test]
    fn truncate_deletes_only_files_out_of_retention() {
        let dir = tempfile::tempdir().unwrap();
        let (hc, _) = HeadChunks::open(dir.path()).unwrap();
        write_some(&hc, 3);
        drop(hc);
        let (hc, _) = HeadChunks::open(dir.path()).unwrap();
        write_some(&hc, 1); // 000002, the active one
        assert_eq!(hc.num_files(), 2);
        assert_eq!(hc.truncate(0), 0, "000001 still holds chunks at >= 0");
        assert_eq!(hc.truncate(i64::MAX), 1, "the active file stays");
        assert!(!dir.path().join("000001").exists());
        assert!(dir.path().join("000002").exists());
    }

    #[test]
    fn decode_rejects_garbage_without_panicking() {
        assert!(matches!(
            decode_chunk(&[0u8; 3], true),
            Err(DecodeError::Short { .. })
        ));
        let mut b = vec![0u8; 40];
        b[24] = 1;
        b[25] = 0xff;
        b[26] = 0xff;
        b[27] = 0xff;
        b[28] = 0xff;
        b[29] = 0x7f;
        assert!(matches!(decode_chunk(&b, true), Err(DecodeError::Bad(_))));
    }
}
