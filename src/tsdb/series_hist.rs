//! A series' native-histogram samples: integer and float histogram chunks
//! (Prometheus' encodings 2 and 3) beside the series' float chunks.
//!
//! A series keeps its histogram chunks apart from its XOR chunks; only
//! series that ever received a histogram pay for them (one boxed
//! [`HistChunks`]). The append rules are Prometheus': a sample must be
//! newer than the series' newest sample of either type; at the same
//! timestamp an equal histogram is a no-op and anything else a duplicate.
//! A chunk is cut when the codec asks for it (counter reset, schema,
//! zero-threshold or custom-bounds change, stale marker, gauge/counter
//! switch), when the encoding changes (integer ↔ float histogram), after
//! float samples came in between (the sample type changed twice), and at
//! Prometheus' size target (1024 bytes once a chunk has 10 samples).

use super::chunk_histogram::{
    AppendOutcome, Codec, FloatCodec, FloatHistogramChunk, GenericHistogramChunk, HistogramChunk,
    HistogramChunkError, HistogramChunkIter, IntCodec, ENCODING_FLOAT_HISTOGRAM,
    ENCODING_HISTOGRAM,
};
use super::head_chunks::{split_hist_ref, HeadChunks, MappedChunk};
use super::mapped::MappedList;
use super::mem::block;
use crate::model::histogram::{CounterResetHint, FloatHistogram, Histogram, HistogramError};
use crate::model::is_stale_nan;

/// A chunk is cut once it holds this many bytes...
const TARGET_BYTES: usize = 1024;
/// ...and at least this many samples (Prometheus' histogram chunk targets).
const MIN_SAMPLES: usize = 10;

/// One native-histogram sample value: integer counts (as instrumented
/// and scraped) or float counts (results of rules, float histograms from
/// remote write or the test notation).
#[derive(Clone, Debug, PartialEq)]
pub enum HistValue {
    Int(Histogram),
    Float(FloatHistogram),
}

impl HistValue {
    /// The value with float counts, as PromQL evaluates it.
    pub fn to_float(&self) -> FloatHistogram {
        match self {
            HistValue::Int(h) => h.to_float(),
            HistValue::Float(f) => f.clone(),
        }
    }

    pub fn into_float(self) -> FloatHistogram {
        match self {
            HistValue::Int(h) => h.to_float(),
            HistValue::Float(f) => f,
        }
    }

    pub fn sum(&self) -> f64 {
        match self {
            HistValue::Int(h) => h.sum,
            HistValue::Float(f) => f.sum,
        }
    }

    pub fn counter_reset_hint(&self) -> CounterResetHint {
        match self {
            HistValue::Int(h) => h.counter_reset_hint,
            HistValue::Float(f) => f.counter_reset_hint,
        }
    }

    /// A staleness marker: a histogram whose sum is the staleness NaN.
    pub fn is_stale(&self) -> bool {
        is_stale_nan(self.sum())
    }

    /// The staleness marker of the same kind as `self`.
    pub fn stale_like(&self) -> HistValue {
        stale_marker(matches!(self, HistValue::Float(_)))
    }

    /// Prometheus' validation (stale markers are exempt).
    pub fn validate(&self) -> Result<(), HistogramError> {
        if self.is_stale() {
            return Ok(());
        }
        match self {
            HistValue::Int(h) => h.validate(),
            HistValue::Float(f) => f.validate(),
        }
    }

    /// Equal as Prometheus' `Equals` (spans compared after expansion,
    /// floats by bits).
    pub fn equals(&self, other: &HistValue) -> bool {
        match (self, other) {
            (HistValue::Int(a), HistValue::Int(b)) => a.to_float().equals(&b.to_float()),
            (HistValue::Float(a), HistValue::Float(b)) => a.equals(b),
            _ => false,
        }
    }

    fn encoding(&self) -> u8 {
        match self {
            HistValue::Int(_) => ENCODING_HISTOGRAM,
            HistValue::Float(_) => ENCODING_FLOAT_HISTOGRAM,
        }
    }
}

/// A histogram staleness marker, integer or float.
pub fn stale_marker(float: bool) -> HistValue {
    if float {
        HistValue::Float(FloatHistogram {
            sum: crate::model::STALE_NAN,
            ..Default::default()
        })
    } else {
        HistValue::Int(Histogram {
            sum: crate::model::STALE_NAN,
            ..Default::default()
        })
    }
}

/// A full histogram chunk: its encoding byte, exact time bounds and bytes.
#[derive(Clone, Debug)]
pub struct ClosedHist {
    pub encoding: u8,
    pub mint: i64,
    pub maxt: i64,
    pub bytes: Box<[u8]>,
}

/// The open histogram chunk.
#[derive(Clone, Debug)]
pub enum OpenChunk {
    Int(HistogramChunk),
    Float(FloatHistogramChunk),
}

impl OpenChunk {
    fn bytes(&self) -> &[u8] {
        match self {
            OpenChunk::Int(c) => c.bytes(),
            OpenChunk::Float(c) => c.bytes(),
        }
    }

    fn encoding(&self) -> u8 {
        match self {
            OpenChunk::Int(_) => ENCODING_HISTOGRAM,
            OpenChunk::Float(_) => ENCODING_FLOAT_HISTOGRAM,
        }
    }
}

#[derive(Clone, Debug)]
pub struct OpenHist {
    pub chunk: OpenChunk,
    pub mint: i64,
    pub maxt: i64,
}

impl OpenHist {
    /// The chunk as a full one (its bytes copied).
    fn close(&self) -> ClosedHist {
        ClosedHist {
            encoding: self.chunk.encoding(),
            mint: self.mint,
            maxt: self.maxt,
            bytes: self.chunk.bytes().into(),
        }
    }
}

/// The histogram chunks of one series, oldest first: `mapped` (full
/// chunks in the head chunk files, references as `head_chunks::hist_ref`
/// makes them), `closed` (full chunks not written out yet), then `head`.
#[derive(Clone, Debug, Default)]
pub struct HistChunks {
    pub mapped: MappedList,
    pub closed: Vec<ClosedHist>,
    pub head: Option<OpenHist>,
}

/// Appends to a chunk of one encoding; returns the chunk to cut to, if any.
fn push<C: Codec>(
    c: &mut GenericHistogramChunk<C>,
    t: i64,
    h: &C::Sample,
) -> Option<GenericHistogramChunk<C>> {
    if c.num_samples() >= MIN_SAMPLES && c.bytes().len() >= TARGET_BYTES {
        return Some(GenericHistogramChunk::first(t, h, Some(c)));
    }
    match c.append(t, h) {
        AppendOutcome::Appended | AppendOutcome::Recoded => None,
        AppendOutcome::NewChunk(n) => Some(n),
    }
}

/// Decodes chunk bytes of either encoding, failing on damaged or
/// truncated data (blocks read from disk).
pub fn decode_checked(
    encoding: u8,
    data: &[u8],
) -> Result<Vec<(i64, HistValue)>, HistogramChunkError> {
    fn all<C: Codec>(
        data: &[u8],
        f: impl Fn(C::Sample) -> HistValue,
    ) -> Result<Vec<(i64, HistValue)>, HistogramChunkError> {
        let mut it = HistogramChunkIter::<C>::try_new(data)?;
        let out = it.by_ref().map(|(t, h)| (t, f(h))).collect();
        match it.error() {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }
    if encoding == ENCODING_HISTOGRAM {
        all::<IntCodec>(data, HistValue::Int)
    } else {
        all::<FloatCodec>(data, HistValue::Float)
    }
}

/// Cuts histogram samples (in strictly increasing time) into chunks as
/// the head cuts them (for blocks).
pub fn encode_chunks(samples: &[(i64, HistValue)]) -> Vec<ClosedHist> {
    let mut c = HistChunks::default();
    for (t, v) in samples {
        c.append(*t, v, false);
    }
    let mut out = std::mem::take(&mut c.closed);
    out.extend(c.head.as_ref().map(OpenHist::close));
    out
}

/// Decodes chunk bytes of either encoding, calling `f` per sample in range.
pub fn decode_chunk(encoding: u8, data: &[u8], mut f: impl FnMut(i64, HistValue)) {
    if encoding == ENCODING_HISTOGRAM {
        for (t, h) in HistogramChunkIter::<IntCodec>::new(data) {
            f(t, HistValue::Int(h));
        }
    } else if encoding == ENCODING_FLOAT_HISTOGRAM {
        for (t, h) in HistogramChunkIter::<FloatCodec>::new(data) {
            f(t, HistValue::Float(h));
        }
    }
}

impl HistChunks {
    pub fn is_empty(&self) -> bool {
        self.in_memory_empty() && self.mapped.is_empty()
    }

    fn in_memory_empty(&self) -> bool {
        self.head.is_none() && self.closed.is_empty()
    }

    pub fn min_time(&self) -> Option<i64> {
        if let Some(m) = self.mapped.first() {
            return Some(m.mint);
        }
        match self.closed.first() {
            Some(c) => Some(c.mint),
            None => self.head.as_ref().map(|h| h.mint),
        }
    }

    pub fn max_time(&self) -> Option<i64> {
        match &self.head {
            Some(h) => Some(h.maxt),
            None => match self.closed.last() {
                Some(c) => Some(c.maxt),
                None => self.mapped.last().map(|m| m.maxt),
            },
        }
    }

    /// Newest sample time of the chunks held in memory.
    pub fn memory_max_time(&self) -> Option<i64> {
        match &self.head {
            Some(h) => Some(h.maxt),
            None => self.closed.last().map(|c| c.maxt),
        }
    }

    /// The newest sample (decodes the open chunk; used for the rare
    /// same-timestamp append). `None` also when only chunks in the files
    /// are held (a series restored at start).
    pub fn last(&self) -> Option<(i64, HistValue)> {
        let mut last = None;
        match &self.head {
            Some(h) => decode_chunk(h.chunk.encoding(), h.chunk.bytes(), |t, v| {
                last = Some((t, v))
            }),
            None => {
                let c = self.closed.last()?;
                decode_chunk(c.encoding, &c.bytes, |t, v| last = Some((t, v)));
            }
        }
        last
    }

    /// Whether the newest histogram sample has float counts.
    pub fn last_is_float(&self) -> bool {
        let encoding = match (&self.head, self.closed.last()) {
            (Some(h), _) => h.chunk.encoding(),
            (None, Some(c)) => c.encoding,
            (None, None) => match self.mapped.last() {
                Some(m) => split_hist_ref(m.r).1,
                None => return false,
            },
        };
        encoding == ENCODING_FLOAT_HISTOGRAM
    }

    /// Only the chunks in the files are held (restored at start, nothing
    /// newer yet).
    pub fn only_mapped(&self) -> bool {
        self.in_memory_empty() && !self.mapped.is_empty()
    }

    /// Appends an already checked sample; `fresh` forces a new chunk with
    /// an unknown counter-reset header (float samples came in between).
    /// Returns whether a chunk was cut.
    pub fn append(&mut self, t: i64, v: &HistValue, fresh: bool) -> bool {
        let next = match (&mut self.head, v) {
            (Some(open), HistValue::Int(h)) if !fresh => match &mut open.chunk {
                OpenChunk::Int(c) => push(c, t, h).map(OpenChunk::Int),
                OpenChunk::Float(_) => Some(OpenChunk::Int(HistogramChunk::first(t, h, None))),
            },
            (Some(open), HistValue::Float(h)) if !fresh => match &mut open.chunk {
                OpenChunk::Float(c) => push(c, t, h).map(OpenChunk::Float),
                OpenChunk::Int(_) => Some(OpenChunk::Float(FloatHistogramChunk::first(t, h, None))),
            },
            (_, HistValue::Int(h)) => Some(OpenChunk::Int(HistogramChunk::first(t, h, None))),
            (_, HistValue::Float(h)) => {
                Some(OpenChunk::Float(FloatHistogramChunk::first(t, h, None)))
            }
        };
        let Some(chunk) = next else {
            if let Some(open) = &mut self.head {
                open.maxt = t;
            }
            return false;
        };
        let new = OpenHist {
            chunk,
            mint: t,
            maxt: t,
        };
        let cut = match self.head.replace(new) {
            Some(old) => {
                self.closed.push(old.close());
                true
            }
            None => false,
        };
        debug_assert_eq!(
            self.head.as_ref().map(|h| h.chunk.encoding()),
            Some(v.encoding())
        );
        cut
    }

    /// The chunks held in memory as a memory snapshot keeps them: full
    /// ones, oldest first, and the open one.
    pub fn memory_chunks(&self) -> (Vec<ClosedHist>, Option<ClosedHist>) {
        (self.closed.clone(), self.head.as_ref().map(OpenHist::close))
    }

    /// Takes a snapshot's in-memory chunks when none are held. Chunks
    /// starting at or before the newest one in the files are left out: a
    /// file chunk written after the snapshot holds them. Returns the
    /// (min, max) time of what was taken.
    pub fn restore_memory(&mut self, from: HistChunks) -> Option<(i64, i64)> {
        if !self.in_memory_empty() {
            return None;
        }
        let floor = self.mapped.last().map_or(i64::MIN, |m| m.maxt);
        self.closed = from.closed.into_iter().filter(|c| c.mint > floor).collect();
        self.head = from.head.filter(|h| h.mint > floor);
        let lo = self
            .closed
            .first()
            .map(|c| c.mint)
            .or(self.head.as_ref().map(|h| h.mint))?;
        Some((lo, self.max_time()?))
    }

    /// Rebuilds a snapshot's open chunk (with its appender state) from its
    /// bytes.
    pub fn reopen(c: ClosedHist) -> Result<OpenHist, HistogramChunkError> {
        let chunk = if c.encoding == ENCODING_HISTOGRAM {
            OpenChunk::Int(HistogramChunk::from_bytes(&c.bytes)?)
        } else {
            OpenChunk::Float(FloatHistogramChunk::from_bytes(&c.bytes)?)
        };
        Ok(OpenHist {
            chunk,
            mint: c.mint,
            maxt: c.maxt,
        })
    }

    /// Full chunks still in memory, oldest first (for writing them to the
    /// head chunk files).
    pub fn unwritten(&self) -> impl Iterator<Item = &ClosedHist> + '_ {
        self.closed.iter()
    }

    /// Replaces the oldest in-memory full chunks by their written copies
    /// (references as `hist_ref` makes them), as long as they are still
    /// the same chunks. Returns how many were replaced.
    pub fn mark_written(&mut self, written: &[MappedChunk]) -> usize {
        let n = written
            .iter()
            .zip(&self.closed)
            .take_while(|(w, c)| w.mint == c.mint)
            .count();
        if n > 0 {
            self.closed.drain(..n);
            self.closed.shrink_to_fit();
            self.mapped.extend(&written[..n]);
        }
        n
    }

    /// Adds chunks read back from the files at start: those newer than
    /// the ones held there and older than the in-memory ones. Returns the
    /// newest time the files then cover and the chunks added.
    pub fn restore_mapped(&mut self, chunks: Vec<MappedChunk>) -> (Option<i64>, Vec<MappedChunk>) {
        let first_mem = self
            .closed
            .first()
            .map(|c| c.mint)
            .or(self.head.as_ref().map(|h| h.mint))
            .unwrap_or(i64::MAX);
        let add = self.mapped.restore(chunks, first_mem);
        (self.mapped.last().map(|m| m.maxt), add)
    }

    /// Every in-memory chunk, oldest first: encoding, time bounds, bytes.
    pub fn chunks(&self) -> impl Iterator<Item = (u8, i64, i64, &[u8])> + '_ {
        self.closed
            .iter()
            .map(|c| (c.encoding, c.mint, c.maxt, &c.bytes[..]))
            .chain(
                self.head
                    .iter()
                    .map(|h| (h.chunk.encoding(), h.mint, h.maxt, h.chunk.bytes())),
            )
    }

    /// Decoded samples in `[mint, maxt]`, in time order; chunks in the
    /// files are read through `disk` (left out without it).
    pub fn samples_in(
        &self,
        disk: Option<&HeadChunks>,
        mint: i64,
        maxt: i64,
        out: &mut Vec<(i64, HistValue)>,
    ) {
        if let Some(disk) = disk {
            for m in self.mapped.overlapping(mint, maxt) {
                let (r, enc) = split_hist_ref(m.r);
                if let Some(data) = disk.read(r) {
                    decode_chunk(enc, &data, |t, v| {
                        if mint <= t && t <= maxt {
                            out.push((t, v));
                        }
                    });
                }
            }
        }
        for (enc, lo, hi, data) in self.chunks() {
            if lo > maxt || hi < mint {
                continue;
            }
            decode_chunk(enc, data, |t, v| {
                if mint <= t && t <= maxt {
                    out.push((t, v));
                }
            });
        }
    }

    /// Whether a sample lies in `[mint, maxt]`.
    pub fn has_sample_in(&self, disk: Option<&HeadChunks>, mint: i64, maxt: i64) -> bool {
        let in_files = || {
            self.mapped.overlapping(mint, maxt).into_iter().any(|m| {
                if mint <= m.mint || m.maxt <= maxt {
                    return true;
                }
                let (r, enc) = split_hist_ref(m.r);
                let mut found = false;
                if let Some(data) = disk.and_then(|d| d.read(r)) {
                    decode_chunk(enc, &data, |t, _| found |= mint <= t && t <= maxt);
                }
                found
            })
        };
        in_files()
            || self.chunks().any(|(enc, lo, hi, data)| {
                if lo > maxt || hi < mint {
                    return false;
                }
                if (mint <= lo && lo <= maxt) || (mint <= hi && hi <= maxt) {
                    return true;
                }
                let mut found = false;
                decode_chunk(enc, data, |t, _| found |= mint <= t && t <= maxt);
                found
            })
    }

    /// Drops whole chunks whose newest sample is older than `cutoff`.
    pub fn truncate(&mut self, cutoff: i64) -> usize {
        let mapped_gone = self.mapped.truncate_before(cutoff);
        if !self.mapped.is_empty() {
            return mapped_gone;
        }
        mapped_gone + self.truncate_memory(cutoff)
    }

    fn truncate_memory(&mut self, cutoff: i64) -> usize {
        let gone = self.closed.iter().take_while(|c| c.maxt < cutoff).count();
        if gone > 0 {
            self.closed.drain(..gone);
        }
        if self.closed.is_empty() && self.head.as_ref().is_some_and(|h| h.maxt < cutoff) {
            self.head = None;
            return gone + 1;
        }
        gone
    }

    pub fn num_chunks(&self) -> usize {
        self.mapped.len() + self.closed.len() + usize::from(self.head.is_some())
    }

    pub fn chunk_bytes(&self) -> usize {
        self.chunks().map(|c| c.3.len()).sum()
    }

    pub fn heap_bytes(&self) -> usize {
        block(std::mem::size_of::<HistChunks>())
            + block(self.mapped.packed_bytes())
            + block(self.closed.capacity() * std::mem::size_of::<ClosedHist>())
            + self.chunks().map(|c| block(c.3.len())).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::histogram::notation::parse_histogram;

    fn fh(s: &str) -> HistValue {
        HistValue::Float(parse_histogram(s).unwrap().histogram)
    }

    #[test]
    fn cuts_on_reset_schema_and_encoding_and_reads_back_in_order() {
        let mut c = HistChunks::default();
        assert!(!c.append(10, &fh("{{schema:0 count:2 sum:3 buckets:[1 1]}}"), false));
        assert!(!c.append(20, &fh("{{schema:0 count:4 sum:6 buckets:[2 2]}}"), false));
        // Counter reset: a new chunk with the reset header.
        assert!(c.append(30, &fh("{{schema:0 count:1 sum:1 buckets:[1]}}"), false));
        // Schema change.
        assert!(c.append(40, &fh("{{schema:1 count:2 sum:1 buckets:[2]}}"), false));
        // Integer histogram after float ones: new encoding.
        let int = HistValue::Int(Histogram {
            schema: 1,
            count: 3,
            sum: 2.0,
            positive_spans: vec![crate::model::histogram::Span::new(0, 1)],
            positive_buckets: vec![3],
            ..Default::default()
        });
        assert!(c.append(50, &int, false));
        assert_eq!(c.num_chunks(), 4);
        assert_eq!(c.closed[1].bytes[2] & 0xc0, 0b1000_0000, "reset header");
        let mut out = Vec::new();
        c.samples_in(None, 15, 50, &mut out);
        let ts: Vec<i64> = out.iter().map(|(t, _)| *t).collect();
        assert_eq!(ts, [20, 30, 40, 50]);
        assert_eq!(out[3].1, int);
        assert_eq!(out[0].1.to_float().count, 4.0);
        assert!(c.has_sample_in(None, 41, 55));
        assert!(!c.has_sample_in(None, 41, 49));
        assert_eq!(c.last().map(|l| l.0), Some(50));
        assert_eq!(c.truncate(35), 2);
        assert_eq!(c.min_time(), Some(40));
        assert_eq!(c.truncate(51), 2);
        assert!(c.is_empty());
    }

    #[test]
    fn stale_marker_ends_its_chunk_and_reads_back_stale() {
        let mut c = HistChunks::default();
        let h = fh("{{count:1 sum:1 buckets:[1]}}");
        c.append(1, &h, false);
        c.append(2, &h.stale_like(), false);
        c.append(3, &h, false);
        let mut out = Vec::new();
        c.samples_in(None, i64::MIN, i64::MAX, &mut out);
        assert_eq!(out.len(), 3);
        assert!(out[1].1.is_stale() && !out[2].1.is_stale());
    }

    #[test]
    fn large_histograms_cut_at_the_size_target() {
        let mut c = HistChunks::default();
        for i in 0..200u64 {
            let h = HistValue::Int(Histogram {
                count: i * 7 + 1,
                sum: (i * 13) as f64 + 0.1234567,
                positive_spans: vec![crate::model::histogram::Span::new(0, 1)],
                positive_buckets: vec![(i * 7 + 1) as i64],
                ..Default::default()
            });
            c.append(i as i64 * 1000, &h, false);
        }
        assert!(c.num_chunks() > 1);
        assert!(c.closed.iter().all(|ch| ch.bytes.len() >= TARGET_BYTES));
        let mut out = Vec::new();
        c.samples_in(None, i64::MIN, i64::MAX, &mut out);
        assert_eq!(out.len(), 200);
    }
}

/// Histogram values for tests elsewhere in the TSDB.
#[cfg(test)]
pub(crate) mod testdata {
    use super::HistValue;
    use crate::model::histogram::{CounterResetHint, FloatHistogram, Histogram, Span};

    /// An integer histogram (schema 0, two buckets and a zero bucket)
    /// growing with `n`.
    pub fn int(n: u64) -> HistValue {
        let (a, b) = (n, n / 2);
        HistValue::Int(Histogram {
            zero_threshold: 0.001,
            zero_count: 1,
            count: a + b + 1,
            sum: n as f64 * 1.5,
            positive_spans: vec![Span::new(0, 2)],
            positive_buckets: vec![a as i64, b as i64 - a as i64],
            ..Default::default()
        })
    }

    /// A float histogram (schema 1, three buckets) growing with `x`.
    pub fn float(x: f64) -> HistValue {
        HistValue::Float(FloatHistogram {
            schema: 1,
            zero_threshold: 0.001,
            zero_count: 0.25 * x,
            count: 3.75 * x,
            sum: x * 2.5,
            positive_spans: vec![Span::new(-1, 3)],
            positive_buckets: vec![x, 2.0 * x, 0.5 * x],
            ..Default::default()
        })
    }

    /// A float histogram with custom buckets (schema -53).
    pub fn nhcb(x: f64) -> HistValue {
        HistValue::Float(FloatHistogram {
            schema: -53,
            count: 4.0 * x,
            sum: 3.0 * x,
            positive_spans: vec![Span::new(0, 4)],
            positive_buckets: vec![x, x, x, x],
            custom_values: vec![1.0, 5.0, 10.0],
            ..Default::default()
        })
    }

    /// `v` as text with its counter-reset hint cleared (chunk boundaries
    /// set the hint; stale markers' NaN sums compare as text).
    pub fn norm(v: &HistValue) -> String {
        let mut v = v.clone();
        match &mut v {
            HistValue::Int(h) => h.counter_reset_hint = CounterResetHint::Unknown,
            HistValue::Float(f) => f.counter_reset_hint = CounterResetHint::Unknown,
        }
        format!("{v:?}")
    }

    /// Every sample of each series: labels, float bits, normalised histograms.
    pub type Dump = Vec<(String, Vec<(i64, u64)>, Vec<(i64, String)>)>;

    pub fn dump(q: &dyn crate::tsdb::Queryable, mint: i64, maxt: i64) -> Dump {
        q.querier(mint, maxt)
            .select(&[])
            .into_iter()
            .map(|s| {
                (
                    s.labels.to_string(),
                    s.samples.iter().map(|(t, v)| (*t, v.to_bits())).collect(),
                    s.histograms.iter().map(|(t, v)| (*t, norm(v))).collect(),
                )
            })
            .collect()
    }
}
