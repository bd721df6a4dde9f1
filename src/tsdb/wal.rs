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
//! * 1, series: `count`, then per series `ref, nlabels, (name, value)*`;
//! * 5, samples (format 2, written): `count, t0, time mode`, then per
//!   sample the ref as a delta from the previous sample's ref, the time as
//!   a delta from `t0` (only when the mode byte is 1; mode 0 means every
//!   sample is at `t0`, as in a scrape), and the value encoded against the
//!   value its series last had *in the same segment* (see [`put_value`]):
//!   readers decode a segment from its start, keeping one value per series;
//! * 2, samples (format 1, read only): `count, base ref, base t`, then per
//!   sample the ref and time deltas (signed varints) and the value's 8 bytes;
//! * 3, deletions: `count, refs` (series retention removed);
//! * 4, chunks (checkpoints only): `ref, count, (len, chunk bytes)*`;
//! * 7 to 10, native-histogram samples in Prometheus' record layout
//!   (integer, float, and both with custom buckets; see `wal_hist`).
//!
//! Integers are LEB128 varints (signed ones zig-zag encoded). Any other
//! record kind is reported as damage at its offset, with the kind named.

use super::mem::IdMap;
use super::series_hist::HistValue;
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
    /// Samples with raw 8-byte values, the first format: still read (a log
    /// written before format 2), no longer written.
    SamplesV1 = 2,
    Deletions = 3,
    Chunks = 4,
    /// Samples with values relative to their series' previous one.
    Samples = 5,
    /// Native-histogram samples in Prometheus' record layouts (its type
    /// numbers too): integer and float histograms, and the same with
    /// custom buckets (schema -53).
    HistogramSamples = 7,
    FloatHistogramSamples = 8,
    CustomBucketsHistogramSamples = 9,
    CustomBucketsFloatHistogramSamples = 10,
}

impl Kind {
    fn from_u8(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Series,
            2 => Kind::SamplesV1,
            3 => Kind::Deletions,
            4 => Kind::Chunks,
            5 => Kind::Samples,
            7 => Kind::HistogramSamples,
            8 => Kind::FloatHistogramSamples,
            9 => Kind::CustomBucketsHistogramSamples,
            10 => Kind::CustomBucketsFloatHistogramSamples,
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
    Series(SeriesList),
    Samples(Vec<(u64, i64, f64)>),
    Deletions(Vec<u64>),
    Chunks(u64, Vec<Vec<u8>>),
    /// Native-histogram samples: reference, time, value.
    Histograms(Vec<(u64, i64, HistValue)>),
}

/// A series record's entries: each reference with its labels, the label
/// strings of the whole record in one buffer (decoding allocates per
/// record, not per label).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SeriesList {
    text: String,
    /// Per label: the end of its name and of its value in `text`.
    ends: Vec<(u32, u32)>,
    /// Per series: its reference and the end of its labels in `ends`.
    series: Vec<(u64, u32)>,
}

impl SeriesList {
    pub fn with_capacity(series: usize) -> SeriesList {
        SeriesList {
            text: String::new(),
            ends: Vec::with_capacity(series * 4),
            series: Vec::with_capacity(series),
        }
    }

    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// Room for `series` more entries.
    pub fn reserve(&mut self, series: usize) {
        self.ends.reserve(series * 4);
        self.series.reserve(series);
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Adds a series; `labels` sorted by name, names unique.
    pub fn push<'a>(&mut self, r: u64, labels: impl IntoIterator<Item = (&'a str, &'a str)>) {
        for (name, value) in labels {
            self.push_label(name, value);
        }
        self.end_series(r);
    }

    /// Appends one label of the series being added.
    fn push_label(&mut self, name: &str, value: &str) {
        self.text.push_str(name);
        let n = self.text.len() as u32;
        self.text.push_str(value);
        self.ends.push((n, self.text.len() as u32));
    }

    /// Closes the series being added: the labels pushed since the last one.
    fn end_series(&mut self, r: u64) {
        self.series.push((r, self.ends.len() as u32));
    }

    /// A list of label sets as [`Labels`].
    pub fn from_labels<'a>(list: impl IntoIterator<Item = (u64, &'a Labels)>) -> SeriesList {
        let mut out = SeriesList::default();
        for (r, l) in list {
            out.push(r, l.iter().map(|x| (x.name.as_str(), x.value.as_str())));
        }
        out
    }

    /// The entries in record order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, LabelsRef<'_>)> + '_ {
        let mut from = 0usize;
        self.series.iter().map(move |&(r, end)| {
            let end = end as usize;
            let ends = self.ends.get(from..end).unwrap_or_default();
            let start = match from.checked_sub(1).and_then(|i| self.ends.get(i)) {
                Some(&(_, v)) => v,
                None => 0,
            };
            from = end;
            (
                r,
                LabelsRef {
                    text: &self.text,
                    start,
                    ends,
                },
            )
        })
    }
}

/// One label set of a [`SeriesList`], borrowed.
#[derive(Clone, Copy, Debug)]
pub struct LabelsRef<'a> {
    text: &'a str,
    /// Where its first name starts in `text`.
    start: u32,
    ends: &'a [(u32, u32)],
}

impl<'a> LabelsRef<'a> {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// `(name, value)` pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + Clone + 'a {
        let text = self.text;
        let mut at = self.start as usize;
        self.ends.iter().map(move |&(n, v)| {
            let (n, v) = (n as usize, v as usize);
            let pair = (
                text.get(at..n).unwrap_or_default(),
                text.get(n..v).unwrap_or_default(),
            );
            at = v;
            pair
        })
    }

    /// The same hash as [`Labels::hash64`] of these labels.
    pub fn hash64(&self) -> u64 {
        crate::model::labels::hash_pairs(self.iter())
    }

    pub fn to_labels(&self) -> Labels {
        Labels::from_sorted_unchecked(self.iter().map(|(n, v)| Label::new(n, v)).collect())
    }
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
pub(crate) struct Dec<'a> {
    pub(crate) b: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Dec<'a> {
    pub(crate) fn uvarint(&mut self) -> Result<u64, String> {
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

    pub(crate) fn byte(&mut self) -> Result<u8, String> {
        let b = *self.b.get(self.pos).ok_or("truncated field")?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn varint(&mut self) -> Result<i64, String> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.b.len());
        let Some(end) = end else {
            return Err("truncated field".into());
        };
        let s = &self.b[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    pub(crate) fn len(&mut self) -> Result<usize, String> {
        let n = self.uvarint()?;
        // Every element takes at least one byte: a count above what is left
        // is corrupt (and must not drive an allocation).
        if n > (self.b.len() - self.pos) as u64 {
            return Err(format!("count {n} exceeds the record"));
        }
        Ok(n as usize)
    }

    fn str(&mut self) -> Result<&'a str, String> {
        let n = self.len()?;
        let b = self.bytes(n)?;
        std::str::from_utf8(b).map_err(|_| "label is not UTF-8".to_string())
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

// ---- sample values -------------------------------------------------------
//
// A value is one tag byte and a payload, chosen against `prev`, the value
// its series last had in the same segment (none for its first there):
// * `V_REPEAT`: the same bits as `prev`;
// * `V_RAW`: the 8 bytes (little endian);
// * `V_DEC_DELTA + s`: both values are decimals with `s` digits after the
//   point (`k / 10^s` for an integer `k`, exactly, bit for bit), payload the
//   difference of their `k` (signed varint);
// * `V_SMALL | s << 5 | (d + 16)`: the same with `s <= 3` and the
//   difference `d` in `-16..=15`, no payload (counters moving a little);
// * `V_DEC_ABS + s`: a decimal `k` on its own (signed varint);
// * `V_XOR + lead * 8 + trail`: `prev` XOR the value, without its `lead`
//   leading and `trail` trailing zero bytes (big endian).
// Decoding computes `k / 10^s` the same way, so every value (NaN payloads,
// -0.0, staleness markers) comes back with the same bits.

const V_REPEAT: u8 = 0x00;
const V_RAW: u8 = 0x01;
const V_DEC_DELTA: u8 = 0x02;
const V_DEC_ABS: u8 = 0x08;
const V_XOR: u8 = 0x40;
const V_SMALL: u8 = 0x80;
const MAX_SCALE: usize = 4;
const POW10: [f64; MAX_SCALE + 1] = [1.0, 10.0, 100.0, 1000.0, 10000.0];
/// Decimal mantissas stay below 2^53, where every integer is a float.
const MAX_MANTISSA: f64 = 9_007_199_254_740_992.0;

/// `k` when `bits` is exactly `k / 10^s`.
fn mantissa(bits: u64, s: usize) -> Option<i64> {
    let p = POW10[s];
    let x = f64::from_bits(bits) * p;
    // NaN and infinities fail this comparison too.
    if x.is_nan() || x.abs() >= MAX_MANTISSA {
        return None;
    }
    // Round half away from zero without a libm call.
    let k = if x >= 0.0 {
        (x + 0.5) as i64
    } else {
        (x - 0.5) as i64
    };
    ((k as f64 / p).to_bits() == bits).then_some(k)
}

fn from_mantissa(k: i64, s: usize) -> Result<u64, String> {
    if k.unsigned_abs() >= 1 << 53 {
        return Err("decimal value out of range".into());
    }
    Ok((k as f64 / POW10[s]).to_bits())
}

/// The fewest decimal digits that spell `bits` exactly, with the mantissa.
fn decimal(bits: u64) -> Option<(usize, i64)> {
    (0..=MAX_SCALE).find_map(|s| mantissa(bits, s).map(|k| (s, k)))
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Encodes one value against `prev` (see above).
pub fn put_value(buf: &mut Vec<u8>, prev: Option<u64>, bits: u64) {
    if prev == Some(bits) {
        buf.push(V_REPEAT);
        return;
    }
    if let Some((s, k)) = decimal(bits) {
        // The smallest scale that spells both values exactly.
        let both = prev.and_then(|p| {
            (s..=MAX_SCALE).find_map(|s2| {
                let kp = mantissa(p, s2)?;
                let k2 = if s2 == s { k } else { mantissa(bits, s2)? };
                Some((s2, k2 - kp))
            })
        });
        if let Some((s, d)) = both {
            if s <= 3 && (-16..16).contains(&d) {
                buf.push(V_SMALL | (s as u8) << 5 | (d + 16) as u8);
            } else {
                buf.push(V_DEC_DELTA + s as u8);
                put_varint(buf, d);
            }
            return;
        }
        // Alone: worth it while shorter than the XOR or the raw bytes.
        if prev.is_none() || zigzag(k) < 1 << 28 {
            buf.push(V_DEC_ABS + s as u8);
            put_varint(buf, k);
            return;
        }
    }
    match prev {
        Some(p) => {
            let x = p ^ bits;
            let lead = (x.leading_zeros() / 8) as usize;
            let trail = (x.trailing_zeros() / 8) as usize;
            buf.push(V_XOR + (lead * 8 + trail) as u8);
            buf.extend_from_slice(&x.to_be_bytes()[lead..8 - trail]);
        }
        None => {
            buf.push(V_RAW);
            buf.extend_from_slice(&bits.to_le_bytes());
        }
    }
}
fn get_value(d: &mut Dec<'_>, prev: Option<u64>) -> Result<u64, String> {
    let tag = d.byte()?;
    let prev = || {
        prev.ok_or_else(|| {
            "value relative to a sample of its series not in this segment".to_string()
        })
    };
    match tag {
        V_REPEAT => prev(),
        V_RAW => {
            let mut a = [0u8; 8];
            a.copy_from_slice(d.bytes(8)?);
            Ok(u64::from_le_bytes(a))
        }
        t if (V_DEC_DELTA..=V_DEC_DELTA + MAX_SCALE as u8).contains(&t) => {
            let s = usize::from(t - V_DEC_DELTA);
            let kp = mantissa(prev()?, s).ok_or("previous value is not a decimal")?;
            let k = kp
                .checked_add(d.varint()?)
                .ok_or("decimal value out of range")?;
            from_mantissa(k, s)
        }
        t if (V_DEC_ABS..=V_DEC_ABS + MAX_SCALE as u8).contains(&t) => {
            from_mantissa(d.varint()?, usize::from(t - V_DEC_ABS))
        }
        t if (V_XOR..V_SMALL).contains(&t) => {
            let (lead, trail) = (usize::from((t - V_XOR) / 8), usize::from((t - V_XOR) % 8));
            if lead + trail > 7 {
                return Err(format!("bad value tag {t:#x}"));
            }
            let mut a = [0u8; 8];
            a[lead..8 - trail].copy_from_slice(d.bytes(8 - lead - trail)?);
            Ok(prev()? ^ u64::from_be_bytes(a))
        }
        t if t >= V_SMALL => {
            let s = usize::from((t >> 5) & 3);
            let delta = i64::from(t & 31) - 16;
            let kp = mantissa(prev()?, s).ok_or("previous value is not a decimal")?;
            from_mantissa(kp + delta, s)
        }
        t => Err(format!("unknown value tag {t:#x}")),
    }
}

/// What a reader of format-2 samples keeps while it reads one segment:
/// each series' last value. Reset it at the start of every segment.
///
/// Kept in a vector indexed by the creation counter in a reference's high
/// bits (dense from 1, and ascending within a scrape's record, so lookups
/// read it in order), references with larger counters in a map.
#[derive(Debug, Default)]
pub struct SampleState {
    /// `(ref + 1, value bits)`; 0 for none.
    dense: Vec<(u64, u64)>,
    sparse: IdMap<u64, u64>,
}

/// Counters below this are kept in [`SampleState`]'s vector (32 MiB at most).
const DENSE_STATE_MAX: usize = 1 << 21;

impl SampleState {
    pub fn reset(&mut self) {
        self.dense.fill((0, 0));
        self.sparse.clear();
    }

    /// `r`'s place in the vector: free or its own. A reference whose place
    /// another one holds (the same counter under other shard bits: not
    /// written by klaxon) lives in the map.
    fn slot(&self, r: u64) -> Option<usize> {
        let i = (r >> super::head::SHARD_BITS) as usize;
        if i >= DENSE_STATE_MAX || r == u64::MAX {
            return None;
        }
        match self.dense.get(i) {
            Some(&(k, _)) if k != 0 && k != r + 1 => None,
            _ => Some(i),
        }
    }

    fn get(&self, r: u64) -> Option<u64> {
        let i = (r >> super::head::SHARD_BITS) as usize;
        match self.dense.get(i) {
            Some(&(k, bits)) if k == r.wrapping_add(1) && k != 0 => Some(bits),
            _ => self.sparse.get(&r).copied(),
        }
    }

    /// Sets `r`'s value, returning the one before.
    fn replace(&mut self, r: u64, bits: u64) -> Option<u64> {
        match self.slot(r) {
            Some(i) => {
                if i >= self.dense.len() {
                    self.dense
                        .resize((i + 1).max(self.dense.len() * 3 / 2), (0, 0));
                }
                let slot = self.dense.get_mut(i)?;
                let old = (slot.0 == r + 1).then_some(slot.1);
                *slot = (r + 1, bits);
                old
            }
            None => self.sparse.insert(r, bits),
        }
    }
}

/// Writes a format-2 samples payload sample by sample; the caller supplies
/// each series' previous value in the segment the record goes to.
pub struct SamplesEncoder<'a> {
    buf: &'a mut Vec<u8>,
    t0: i64,
    same_time: bool,
    last_ref: u64,
}

impl<'a> SamplesEncoder<'a> {
    /// Starts a payload of `count` samples whose first is at `t0`;
    /// `same_time` when every sample is at `t0` (timestamps are then left
    /// out).
    pub fn new(buf: &'a mut Vec<u8>, count: usize, t0: i64, same_time: bool) -> Self {
        put_uvarint(buf, count as u64);
        put_varint(buf, t0);
        buf.push(u8::from(!same_time));
        SamplesEncoder {
            buf,
            t0,
            same_time,
            last_ref: 0,
        }
    }

    pub fn push(&mut self, r: u64, t: i64, bits: u64, prev: Option<u64>) {
        put_varint(self.buf, r.wrapping_sub(self.last_ref) as i64);
        self.last_ref = r;
        if !self.same_time {
            put_varint(self.buf, t.wrapping_sub(self.t0));
        }
        put_value(self.buf, prev, bits);
    }
}

/// A format-2 samples payload for a list of samples, each series' previous
/// value looked up (and updated) in `state`, as a reader would.
pub fn encode_samples(buf: &mut Vec<u8>, samples: &[(u64, i64, f64)], state: &mut SampleState) {
    let t0 = samples.first().map_or(0, |s| s.1);
    let same = samples.iter().all(|s| s.1 == t0);
    let mut e = SamplesEncoder::new(buf, samples.len(), t0, same);
    for &(r, t, v) in samples {
        let bits = v.to_bits();
        e.push(r, t, bits, state.replace(r, bits));
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

/// Decodes one payload; format-2 samples read and update `state`.
pub fn decode(kind: Kind, payload: &[u8], state: &mut SampleState) -> Result<Record, String> {
    let mut d = Dec { b: payload, pos: 0 };
    let rec = match kind {
        Kind::Series => {
            let n = d.len()?;
            let mut out = SeriesList::with_capacity(n);
            // Names and values take at most the payload's bytes.
            out.text.reserve(payload.len());
            for _ in 0..n {
                let r = d.uvarint()?;
                let nl = d.len()?;
                let mut prev: Option<&str> = None;
                for _ in 0..nl {
                    let name = d.str()?;
                    let value = d.str()?;
                    if prev.is_some_and(|p| p >= name) {
                        return Err("labels not sorted".into());
                    }
                    prev = Some(name);
                    out.push_label(name, value);
                }
                out.end_series(r);
            }
            Record::Series(out)
        }
        Kind::SamplesV1 => {
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
        Kind::Samples => {
            let n = d.len()?;
            let t0 = d.varint()?;
            let same_time = match d.byte()? {
                0 => true,
                1 => false,
                m => return Err(format!("unknown time mode {m}")),
            };
            let mut out = Vec::with_capacity(n);
            let mut r = 0u64;
            for _ in 0..n {
                r = r.wrapping_add(d.varint()? as u64);
                let t = if same_time {
                    t0
                } else {
                    t0.wrapping_add(d.varint()?)
                };
                let bits = get_value(&mut d, state.get(r))?;
                state.replace(r, bits);
                out.push((r, t, f64::from_bits(bits)));
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
        Kind::HistogramSamples
        | Kind::FloatHistogramSamples
        | Kind::CustomBucketsHistogramSamples
        | Kind::CustomBucketsFloatHistogramSamples => {
            let float = matches!(
                kind,
                Kind::FloatHistogramSamples | Kind::CustomBucketsFloatHistogramSamples
            );
            Record::Histograms(crate::tsdb::wal_hist::decode(&mut d, float)?)
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
    let mut f = Framer::new(compression);
    f.frame(out, kind, payload);
}

/// Frames records with reusable buffers (the compressor's table, the
/// payload and the compressed copy), so a commit allocates nothing.
#[derive(Debug)]
pub struct Framer {
    compression: Compression,
    snappy: snap::raw::Encoder,
    compressed: Vec<u8>,
    payload: Vec<u8>,
    out: Vec<u8>,
}

impl Framer {
    pub fn new(compression: Compression) -> Framer {
        Framer {
            compression,
            snappy: snap::raw::Encoder::new(),
            compressed: Vec::new(),
            payload: Vec::new(),
            out: Vec::new(),
        }
    }

    /// The records framed since the last [`Framer::clear`].
    pub fn framed(&self) -> &[u8] {
        &self.out
    }

    pub fn clear(&mut self) {
        self.out.clear();
        self.payload.clear();
    }

    /// The payload buffer of the next record (empty).
    pub fn payload(&mut self) -> &mut Vec<u8> {
        &mut self.payload
    }

    /// Frames the payload written so far as a record of `kind`.
    pub fn finish(&mut self, kind: Kind) {
        let payload = std::mem::take(&mut self.payload);
        let mut out = std::mem::take(&mut self.out);
        self.frame(&mut out, kind, &payload);
        self.out = out;
        self.payload = payload;
        self.payload.clear();
    }

    fn frame(&mut self, out: &mut Vec<u8>, kind: Kind, payload: &[u8]) {
        let mut k = kind as u8;
        let mut body = payload;
        if self.compression == Compression::Snappy && payload.len() >= COMPRESS_MIN {
            self.compressed
                .resize(snap::raw::max_compress_len(payload.len()), 0);
            if let Ok(n) = self.snappy.compress(payload, &mut self.compressed) {
                if n < payload.len() {
                    k |= COMPRESSED;
                    body = &self.compressed[..n];
                }
            }
        }
        out.push(k);
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
        out.extend_from_slice(body);
    }
}

/// An upper bound of the framed size of a format-2 samples record of `n`
/// samples (compression only ever makes a record smaller).
pub fn samples_bound(n: usize, same_time: bool) -> usize {
    let per = 10 + 9 + if same_time { 0 } else { 10 };
    HEADER_BYTES + 10 + 10 + 1 + n * per
}

/// Reads the records of one file's bytes in order (`state` as the file's
/// reader, fresh for a whole file). Stops at the first damaged one,
/// returning the records before it and where it was.
pub fn read_records(
    data: &[u8],
    state: &mut SampleState,
    mut each: impl FnMut(Record),
) -> Result<(), (u64, String)> {
    read_records_at(data, 0, state, |r, _| each(r))
}

/// [`read_records`] from byte `from`, telling `each` where each record
/// ends (the offset to resume after it).
pub fn read_records_at(
    data: &[u8],
    from: usize,
    state: &mut SampleState,
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
        let rec = decode(kind, payload, state).map_err(|e| (at, e))?;
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
            // On to the next segment even if the sync fails: reopening
            // this one would truncate it.
            self.n += 1;
            self.size = 0;
            f.sync_all().map_err(WalError::io("sync segment", &p))?;
            stats.fsyncs.fetch_add(1, Relaxed);
        }
        Ok(())
    }

    /// Whether `len` more bytes fit in the current segment (an empty one
    /// takes anything).
    fn fits(&self, len: usize) -> bool {
        self.file.is_none() || self.size == 0 || self.size + len as u64 <= self.max
    }

    /// Writes `buf` (whole framed records) with one `write` call, cutting
    /// the segment first if `buf` does not fit. On failure the segment is
    /// cut back to its previous length, so a partial write never sits in
    /// front of later records; if even that fails the next write starts a
    /// new segment.
    pub fn write(&mut self, buf: &[u8], stats: &WalStats) -> Result<(), WalError> {
        if !self.fits(buf.len()) {
            self.cut(stats)?;
        }
        self.write_here(buf, stats)
    }

    /// [`SegmentWriter::write`] into the current segment whatever its size.
    fn write_here(&mut self, buf: &[u8], stats: &WalStats) -> Result<(), WalError> {
        if buf.is_empty() {
            return Ok(());
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
    /// Used under `writer`'s lock (a separate lock never contended).
    framer: parking_lot::Mutex<Framer>,
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
            framer: parking_lot::Mutex::new(Framer::new(opts.compression)),
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

    /// Writes one batch encoded under the writer's lock, so records that
    /// depend on what their segment already holds (format-2 samples) are
    /// encoded in log order: `encode(segment, framer)` frames the batch's
    /// records for `segment`. `bound` is an upper bound of their size; a
    /// segment that could not take it is cut first, and the records go to
    /// the segment they were encoded for whatever their size. When the
    /// write fails, `undo` runs, still under the lock, and nothing of the
    /// batch is in the log.
    pub fn log_batch(
        &self,
        bound: usize,
        encode: impl FnOnce(u64, &mut Framer),
        undo: impl FnOnce(),
    ) -> Result<(), WalError> {
        let mut w = self.writer.lock();
        let mut f = self.framer.lock();
        if !w.fits(bound) {
            w.cut(&self.stats)?;
        }
        f.out.clear();
        f.payload.clear();
        encode(w.segment(), &mut f);
        let r = w.write_here(&f.out, &self.stats);
        if f.out.capacity() > 4 << 20 {
            // One huge batch: do not keep its buffers.
            *f = Framer::new(self.opts.compression);
        }
        match r {
            Ok(()) => {
                self.stats.records.fetch_add(1, Relaxed);
            }
            Err(_) => undo(),
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
    state: &mut SampleState,
    each: impl FnMut(Record),
) -> Result<Option<Corruption>, WalError> {
    let data = std::fs::read(path).map_err(WalError::io("read segment", path))?;
    state.reset();
    match read_records(&data, state, each) {
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
        let mut state = SampleState::default();
        for r in recs {
            let mut p = Vec::new();
            let k = match r {
                Record::Series(s) => {
                    let owned: Vec<(u64, Labels)> =
                        s.iter().map(|(r, l)| (r, l.to_labels())).collect();
                    encode_series(&mut p, owned.iter().map(|(r, l)| (*r, l)));
                    Kind::Series
                }
                Record::Samples(s) => {
                    encode_samples(&mut p, s, &mut state);
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
                Record::Histograms(h) => {
                    let h: Vec<(u64, i64, &HistValue)> =
                        h.iter().map(|(r, t, v)| (*r, *t, v)).collect();
                    crate::tsdb::wal_hist::encode(&mut p, &h);
                    crate::tsdb::wal_hist::kind_of(h[0].2)
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
            Record::Series(SeriesList::from_labels([
                (513, &Labels::from_pairs([("__name__", "up"), ("job", "a")])),
                (1025, &Labels::from_pairs([("__name__", "ü"), ("x", "")])),
                (9, &Labels::empty()),
                (1537, &Labels::from_pairs([("a", "b")])),
            ])),
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
        let r = read_records(data, &mut SampleState::default(), |rec| got.push(rec));
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
        let st = &mut SampleState::default();
        for kind in [
            Kind::Series,
            Kind::SamplesV1,
            Kind::Samples,
            Kind::Deletions,
            Kind::Chunks,
            Kind::HistogramSamples,
            Kind::FloatHistogramSamples,
            Kind::CustomBucketsHistogramSamples,
            Kind::CustomBucketsFloatHistogramSamples,
        ] {
            for p in [
                &[][..],
                &[0xff; 12][..],
                &[5, 1, 2][..],
                &[1, 0x80][..],
                &[0; 19][..],
            ] {
                let _ = decode(kind, p, st);
            }
        }
        assert!(decode(Kind::Samples, &[0xff, 0xff, 0xff, 0x7f], st).is_err());
        // A value relative to a sample the reader has not seen.
        let mut p = Vec::new();
        encode_samples(&mut p, &[(7, 1, 1.0)], &mut SampleState::default());
        let mut q = Vec::new();
        let mut enc = SampleState::default();
        encode_samples(&mut q, &[(7, 1, 1.0)], &mut enc);
        q.clear();
        encode_samples(&mut q, &[(7, 2, 1.0)], &mut enc);
        let err = decode(Kind::Samples, &q, &mut SampleState::default()).unwrap_err();
        assert!(err.contains("not in this segment"), "{err}");
        assert!(decode(Kind::Samples, &p, &mut SampleState::default()).is_ok());
    }

    /// Values whose bits must survive every encoding path.
    fn tricky_values() -> Vec<f64> {
        let mut v = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            0.137,
            43.7,
            1234.5678,
            1e-300,
            1e300,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::INFINITY,
            f64::NEG_INFINITY,
            f64::NAN,
            crate::model::STALE_NAN,
            f64::from_bits(0x7ff8_0000_dead_beef),
            9_007_199_254_740_991.0,
            9_007_199_254_740_993.0,
            -9_007_199_254_740_992.0,
            1.7e9 + 0.25,
            std::f64::consts::PI,
        ];
        // Counters and gauges as exporters write them.
        for i in 0..200 {
            v.push((i * 3) as f64);
            v.push(f64::from(i % 1000) / 10.0);
            v.push(f64::from(i) * 0.137 + 5.0);
        }
        v
    }

    #[test]
    fn every_value_pair_round_trips_bit_for_bit() {
        let vals = tricky_values();
        for &prev in vals.iter().step_by(3).chain([f64::NAN, 0.0].iter()) {
            for &v in &vals {
                for p in [Some(prev.to_bits()), None] {
                    let mut buf = Vec::new();
                    put_value(&mut buf, p, v.to_bits());
                    let mut d = Dec { b: &buf, pos: 0 };
                    let got = get_value(&mut d, p).unwrap();
                    assert_eq!(got, v.to_bits(), "{v:?} after {p:?}");
                    assert_eq!(d.pos, buf.len());
                    assert!(buf.len() <= 9);
                }
            }
        }
    }

    #[test]
    fn counters_and_repeats_take_a_byte_or_two() {
        let mut buf = Vec::new();
        put_value(&mut buf, Some(100f64.to_bits()), 103f64.to_bits());
        assert_eq!(buf.len(), 1);
        buf.clear();
        put_value(&mut buf, Some(43.7f64.to_bits()), 41.2f64.to_bits());
        assert_eq!(buf.len(), 2);
        buf.clear();
        let stale = crate::model::STALE_NAN.to_bits();
        put_value(&mut buf, Some(stale), stale);
        assert_eq!(buf, [V_REPEAT]);
    }

    #[test]
    fn a_segment_decodes_against_its_own_earlier_records() {
        // Two series over many records, with repeats and time jitter.
        let mut recs = Vec::new();
        for i in 0..50i64 {
            let t = 1_700_000_000_000 + i * 5000;
            let jitter = if i % 4 == 0 { 3 } else { 0 };
            recs.push(Record::Samples(vec![
                (1025, t, (i * 7) as f64),
                (513, t + jitter, f64::from((i * 37 % 1000) as i32) / 10.0),
                (1025, t + 1, if i % 5 == 0 { f64::NAN } else { 0.5 }),
                // References past the reader's vector, and one sharing
                // 1025's counter with other shard bits.
                (1 << 40, t, (i / 3) as f64),
                (u64::MAX, t, (i % 3) as f64 * 0.25),
                (1024, t, (i / 2) as f64),
            ]));
        }
        for c in [Compression::None, Compression::Snappy] {
            let data = framed(&recs, c);
            let (got, r) = read_all(&data);
            assert_eq!(r, Ok(()));
            assert_eq!(bits(&got), bits(&recs));
        }
    }

    /// The first samples format, as a log written before format 2 has it.
    fn encode_samples_v1(buf: &mut Vec<u8>, samples: &[(u64, i64, f64)]) {
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

    #[test]
    fn format_one_samples_are_still_read() {
        let samples = vec![(513, 10, 1.5), (2, i64::MIN, crate::model::STALE_NAN)];
        let mut p = Vec::new();
        encode_samples_v1(&mut p, &samples);
        let mut data = Vec::new();
        frame(&mut data, Kind::SamplesV1, &p, Compression::None);
        let (got, r) = read_all(&data);
        assert_eq!(r, Ok(()));
        assert_eq!(bits(&got), bits(&[Record::Samples(samples)]));
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
            let c = replay_file(
                &dir.path().join(segment_name(n)),
                true,
                &mut SampleState::default(),
                |r| got.push(r),
            )
            .unwrap();
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
        let c = replay_file(&p, true, &mut SampleState::default(), |r| got.push(r))
            .unwrap()
            .unwrap();
        assert_eq!(c.offset, good as u64);
        assert!(c.to_string().contains(&p.display().to_string()));
        assert_eq!(got.len(), 3);
        assert_eq!(std::fs::metadata(&p).unwrap().len(), good as u64);
        // Reading again finds a clean file.
        assert_eq!(
            replay_file(&p, true, &mut SampleState::default(), |_| {}).unwrap(),
            None
        );
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
