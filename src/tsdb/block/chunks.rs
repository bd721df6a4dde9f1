//! The `chunks/` directory of a block: segment files `000001`, `000002`…
//! (magic 0x85BD40DD, version 1, 3 padding bytes), each chunk stored as
//! uvarint data length, encoding byte, data, CRC32 of encoding and data.
//! Encodings are Prometheus': 1 XOR (floats), 2 integer and 3 float
//! native histograms.
//! A chunk is referenced by `segment index << 32 | offset in the segment`.

use super::enc::{self, put_uvarint};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub(crate) const MAGIC: u32 = 0x85BD_40DD;
pub(crate) const FORMAT_V1: u8 = 1;
pub(crate) const HEADER_LEN: u64 = 8;
/// Largest segment file, as Prometheus cuts them.
pub(crate) const SEGMENT_SIZE: u64 = 512 << 20;
/// The XOR (float) chunk encoding.
pub(crate) const ENCODING_XOR: u8 = 1;

/// Whether blocks may hold chunks of `encoding` (XOR, integer or float
/// histogram).
pub(crate) fn known_encoding(encoding: u8) -> bool {
    use crate::tsdb::chunk_histogram::{ENCODING_FLOAT_HISTOGRAM, ENCODING_HISTOGRAM};
    matches!(
        encoding,
        ENCODING_XOR | ENCODING_HISTOGRAM | ENCODING_FLOAT_HISTOGRAM
    )
}

/// Writes chunks into numbered segment files under `dir`.
pub(crate) struct ChunkWriter {
    dir: PathBuf,
    /// Buffered: one write call per 64 KiB, not per chunk.
    file: Option<BufWriter<File>>,
    /// Index of the open segment (0 for `000001`).
    seq: u32,
    pos: u64,
    max_size: u64,
}

impl ChunkWriter {
    pub fn new(dir: &Path) -> std::io::Result<ChunkWriter> {
        std::fs::create_dir_all(dir)?;
        Ok(ChunkWriter {
            dir: dir.to_path_buf(),
            file: None,
            seq: 0,
            pos: 0,
            max_size: SEGMENT_SIZE,
        })
    }

    #[cfg(test)]
    pub fn with_segment_size(mut self, size: u64) -> Self {
        self.max_size = size;
        self
    }

    fn cut(&mut self) -> std::io::Result<()> {
        let seq = if self.file.is_some() { self.seq + 1 } else { 0 };
        self.finish_file()?;
        let path = self.dir.join(format!("{:06}", seq + 1));
        let mut f = File::create(&path)?;
        let mut h = [0u8; HEADER_LEN as usize];
        h[..4].copy_from_slice(&MAGIC.to_be_bytes());
        h[4] = FORMAT_V1;
        f.write_all(&h)?;
        self.file = Some(BufWriter::with_capacity(1 << 16, f));
        self.seq = seq;
        self.pos = HEADER_LEN;
        Ok(())
    }

    fn finish_file(&mut self) -> std::io::Result<()> {
        if let Some(f) = self.file.take() {
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        Ok(())
    }

    /// Writes a chunk's bytes under its encoding; returns its reference.
    pub fn write(&mut self, encoding: u8, data: &[u8]) -> std::io::Result<u64> {
        let mut len = Vec::with_capacity(10);
        put_uvarint(&mut len, data.len() as u64);
        let sum = crc32c::crc32c_append(enc::crc(&[encoding]), data);
        let rec_len = (len.len() + 1 + data.len() + 4) as u64;
        if self.file.is_none() || (self.pos > HEADER_LEN && self.pos + rec_len > self.max_size) {
            self.cut()?;
        }
        let r = (u64::from(self.seq) << 32) | self.pos;
        if let Some(f) = self.file.as_mut() {
            f.write_all(&len)?;
            f.write_all(&[encoding])?;
            f.write_all(data)?;
            f.write_all(&sum.to_be_bytes())?;
        }
        self.pos += rec_len;
        Ok(r)
    }

    pub fn close(mut self) -> std::io::Result<()> {
        self.finish_file()
    }
}

/// Reads chunks by reference from a block's `chunks/` directory. Segment
/// headers are checked when opened; each chunk's CRC when read.
pub(crate) struct ChunkReader {
    segments: Vec<Segment>,
}

struct Segment {
    name: String,
    file: File,
    size: u64,
}

/// Where a chunk read failed: segment file name, offset and what.
#[derive(Debug)]
pub(crate) struct ChunkError {
    pub file: String,
    pub offset: u64,
    pub msg: String,
}

impl ChunkReader {
    /// Opens every segment in `dir` (files named by a number, in order).
    pub fn open(dir: &Path) -> Result<ChunkReader, ChunkError> {
        let io = |file: &str, e: std::io::Error| ChunkError {
            file: file.to_string(),
            offset: 0,
            msg: e.to_string(),
        };
        let mut names: Vec<(u64, String)> = Vec::new();
        for e in std::fs::read_dir(dir).map_err(|e| io("chunks", e))? {
            let e = e.map_err(|e| io("chunks", e))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if let Ok(n) = name.parse::<u64>() {
                names.push((n, name));
            }
        }
        names.sort();
        let mut segments = Vec::with_capacity(names.len());
        for (_, name) in names {
            let file = File::open(dir.join(&name)).map_err(|e| io(&name, e))?;
            let size = file.metadata().map_err(|e| io(&name, e))?.len();
            let mut h = [0u8; HEADER_LEN as usize];
            if size < HEADER_LEN {
                return Err(ChunkError {
                    file: name,
                    offset: 0,
                    msg: format!("segment too short ({size} bytes)"),
                });
            }
            file.read_exact_at(&mut h, 0).map_err(|e| io(&name, e))?;
            let magic = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
            if magic != MAGIC {
                return Err(ChunkError {
                    file: name,
                    offset: 0,
                    msg: format!("invalid chunk segment magic number {magic:#x}"),
                });
            }
            if h[4] != FORMAT_V1 {
                return Err(ChunkError {
                    file: name,
                    offset: 4,
                    msg: format!("unsupported chunk segment version {}", h[4]),
                });
            }
            segments.push(Segment { name, file, size });
        }
        Ok(ChunkReader { segments })
    }

    fn segment(&self, r: u64) -> Result<(&Segment, u64), ChunkError> {
        let (seq, off) = ((r >> 32) as usize, r & 0xffff_ffff);
        let Some(s) = self.segments.get(seq) else {
            return Err(ChunkError {
                file: "chunks".into(),
                offset: off,
                msg: format!("chunk reference {r:#x}: segment index {seq} does not exist"),
            });
        };
        if off < HEADER_LEN || off >= s.size {
            return Err(s.fail(off, "chunk offset outside the segment".into()));
        }
        Ok((s, off))
    }

    /// The encoding and bytes of the chunk at `r`.
    pub fn chunk(&self, r: u64) -> Result<(u8, Vec<u8>), ChunkError> {
        let (s, off) = self.segment(r)?;
        let mut head = [0u8; 10];
        let n = (s.size - off).min(10) as usize;
        s.file
            .read_exact_at(&mut head[..n], off)
            .map_err(|e| s.fail(off, e.to_string()))?;
        let (used, total) = s.record_len(off, &head[..n])?;
        let mut rec = vec![0u8; total];
        s.file
            .read_exact_at(&mut rec, off)
            .map_err(|e| s.fail(off, e.to_string()))?;
        let (encoding, data) = s.record_body(off, &rec, used)?;
        Ok((encoding, data.to_vec()))
    }

    /// A reader for chunks asked for mostly in file order (a compaction
    /// walking a block's series): it reads the segments in windows of
    /// 1 MiB instead of twice per chunk.
    pub fn sequential(&self) -> SeqChunkReader<'_> {
        SeqChunkReader {
            r: self,
            seg: usize::MAX,
            start: 0,
            buf: Vec::new(),
        }
    }
}

impl Segment {
    fn fail(&self, offset: u64, msg: String) -> ChunkError {
        ChunkError {
            file: self.name.clone(),
            offset,
            msg,
        }
    }

    /// From the first bytes of the record at `off`: the length of its
    /// length field and of the whole record (checked against the segment).
    fn record_len(&self, off: u64, head: &[u8]) -> Result<(usize, usize), ChunkError> {
        let Some((len, used)) = enc::uvarint(head) else {
            return Err(self.fail(off, "invalid chunk length".into()));
        };
        let total = (used as u64)
            .checked_add(1)
            .and_then(|x| x.checked_add(len))
            .and_then(|x| x.checked_add(4));
        match total.filter(|t| off + t <= self.size) {
            Some(t) => Ok((used, t as usize)),
            None => Err(self.fail(
                off,
                format!("chunk of {len} bytes runs past the end of the segment"),
            )),
        }
    }

    /// The encoding and chunk data of a whole record, its checksum and
    /// encoding checked.
    fn record_body<'b>(
        &self,
        off: u64,
        rec: &'b [u8],
        used: usize,
    ) -> Result<(u8, &'b [u8]), ChunkError> {
        let body = &rec[used..rec.len() - 4];
        let want = enc::trailing_be32(rec);
        if enc::crc(body) != want {
            return Err(self.fail(off, "chunk checksum mismatch".into()));
        }
        if !known_encoding(body[0]) {
            return Err(self.fail(
                off,
                format!(
                    "unsupported chunk encoding {} (XOR and native histogram chunks are read)",
                    body[0]
                ),
            ));
        }
        Ok((body[0], &body[1..]))
    }
}

/// Size of a [`SeqChunkReader`] window.
const WINDOW: usize = 1 << 20;

/// See [`ChunkReader::sequential`].
pub(crate) struct SeqChunkReader<'a> {
    r: &'a ChunkReader,
    /// The segment and offset `buf` holds bytes of.
    seg: usize,
    start: u64,
    buf: Vec<u8>,
}

impl SeqChunkReader<'_> {
    /// The encoding and bytes of the chunk at `r`, checked as
    /// [`ChunkReader::chunk`] does.
    pub fn chunk(&mut self, r: u64) -> Result<(u8, &[u8]), ChunkError> {
        let (s, off) = self.r.segment(r)?;
        let seq = (r >> 32) as usize;
        let head_len = (s.size - off).min(10) as usize;
        if !self.holds(seq, off, head_len) {
            self.fill(seq, off, WINDOW)?;
        }
        let at = (off - self.start) as usize;
        let (used, total) = s.record_len(off, &self.buf[at..at + head_len])?;
        let at = if self.holds(seq, off, total) {
            at
        } else {
            self.fill(seq, off, total.max(WINDOW))?;
            0
        };
        s.record_body(off, &self.buf[at..at + total], used)
    }

    fn holds(&self, seq: usize, off: u64, len: usize) -> bool {
        self.seg == seq
            && off >= self.start
            && off + len as u64 <= self.start + self.buf.len() as u64
    }

    /// Reads up to `want` bytes of segment `seq` from `off`.
    fn fill(&mut self, seq: usize, off: u64, want: usize) -> Result<(), ChunkError> {
        let s = &self.r.segments[seq];
        let len = (want as u64).min(s.size - off) as usize;
        self.buf.resize(len, 0);
        self.seg = usize::MAX;
        s.file
            .read_exact_at(&mut self.buf, off)
            .map_err(|e| s.fail(off, e.to_string()))?;
        self.seg = seq;
        self.start = off;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_round_trip_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = ChunkWriter::new(dir.path()).unwrap().with_segment_size(64);
        let chunks: Vec<Vec<u8>> = (0..10u8)
            .map(|i| {
                vec![
                    0, 1, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i, i,
                ]
            })
            .collect();
        let refs: Vec<u64> = chunks
            .iter()
            .enumerate()
            .map(|(i, c)| w.write(1 + i as u8 % 3, c).unwrap())
            .collect();
        w.close().unwrap();
        assert!(refs.iter().any(|r| r >> 32 > 0), "segments were cut");
        assert!(refs.windows(2).all(|w| w[0] < w[1]));
        let r = ChunkReader::open(dir.path()).unwrap();
        for (i, (c, rf)) in chunks.iter().zip(&refs).enumerate() {
            assert_eq!(r.chunk(*rf).unwrap(), (1 + i as u8 % 3, c.clone()));
        }
        assert!(r.chunk(99 << 32).is_err());
        assert!(r.chunk(3).is_err());
        // In order, backwards and again: the same bytes as single reads.
        let mut seq = r.sequential();
        for rf in refs.iter().chain(refs.iter().rev()).chain(&refs) {
            let (enc, data) = r.chunk(*rf).unwrap();
            assert_eq!(seq.chunk(*rf).unwrap(), (enc, data.as_slice()));
        }
        assert!(seq.chunk(99 << 32).is_err());
    }
}
