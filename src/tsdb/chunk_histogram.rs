//! The native-histogram chunk codecs in Prometheus' bit layout: encoding 2
//! (integer histograms) and 3 (float histograms), as described in
//! Prometheus' `tsdb/docs/format/chunks.md`:
//!
//! * 2 bytes sample count (big endian), 1 flag byte whose top two bits are
//!   the counter-reset header (`10` reset, `01` not reset, `00` unknown,
//!   `11` gauge);
//! * the layout shared by every sample of the chunk: zero threshold (one
//!   byte for 0 or a power of two, else 0xff and 64 bits), schema, positive
//!   and negative spans, and for schema -53 the custom bounds;
//! * the samples: timestamps as delta-of-delta, counts and buckets as
//!   delta-of-delta (integer chunks, buckets are the histogram's own
//!   bucket-to-bucket deltas) or XOR-encoded floats (float chunks, one XOR
//!   window per field), the sum always XOR-encoded. Variable-width integers
//!   use the `varbit` buckets (0 / 3 / 6 / 9 / 12 / 18 / 25 / 56 / 64 bits).
//!
//! Because the layout is per chunk, appending decides between three
//! outcomes, with Prometheus' rules: append as is (missing buckets of the
//! new sample are written as empty ones), rewrite the chunk with a wider
//! layout first (the new sample has buckets the chunk lacks), or cut a new
//! chunk (counter reset, schema or zero-threshold change, counter sample
//! after a gauge one, stale marker). A new chunk's header records whether a
//! counter reset separates it from the previous one.
//!
//! A stale marker (sum = the staleness NaN) is written without buckets and
//! always ends its chunk: the next sample starts a new one.

// `Codec` is public only so the chunk types can name it as a bound; its
// methods speak in this module's private types and nobody outside calls them.
#![allow(private_interfaces)]

use crate::model::histogram::{
    deltas_to_absolute, is_custom_buckets_schema, is_known_schema, span_indices, spans_for,
    CounterResetHint, FloatHistogram, Histogram, Span,
};
use crate::model::is_stale_nan;
use crate::tsdb::chunk::{fits, read_xor, write_xor, BitReader, BitWriter, NO_WINDOW};

/// Prometheus' chunk encoding id of integer histogram chunks.
pub const ENCODING_HISTOGRAM: u8 = 2;
/// Prometheus' chunk encoding id of float histogram chunks.
pub const ENCODING_FLOAT_HISTOGRAM: u8 = 3;

/// Sample count (2 bytes) and flag byte.
const HEADER_BYTES: usize = 3;
const FLAG_POS: usize = 2;
const HEADER_MASK: u8 = 0b1100_0000;

/// What the chunk's flag byte says about the boundary to the previous chunk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CounterResetHeader {
    Unknown,
    /// A counter reset happened between the previous chunk and this one.
    Reset,
    /// No counter reset between the previous chunk and this one.
    NotReset,
    /// The chunk holds gauge histograms.
    Gauge,
}

impl CounterResetHeader {
    fn bits(self) -> u8 {
        match self {
            CounterResetHeader::Unknown => 0,
            CounterResetHeader::Reset => 0b1000_0000,
            CounterResetHeader::NotReset => 0b0100_0000,
            CounterResetHeader::Gauge => 0b1100_0000,
        }
    }

    fn from_byte(b: u8) -> Self {
        match b & HEADER_MASK {
            0b1000_0000 => CounterResetHeader::Reset,
            0b0100_0000 => CounterResetHeader::NotReset,
            0b1100_0000 => CounterResetHeader::Gauge,
            _ => CounterResetHeader::Unknown,
        }
    }

    /// The hint a decoded sample carries: gauge in gauge chunks, "not reset"
    /// after the first sample, and "unknown" for the first one (the previous
    /// chunk might be gone, so its header cannot be trusted), as upstream.
    fn sample_hint(self, index: usize) -> CounterResetHint {
        match self {
            CounterResetHeader::Gauge => CounterResetHint::Gauge,
            _ if index > 0 => CounterResetHint::NotReset,
            _ => CounterResetHint::Unknown,
        }
    }
}

// ---------------------------------------------------------------------------
// varbit integers, the zero threshold, custom bounds, the layout

/// Bit widths of the varbit buckets after their `1…10` prefixes.
const VARBIT_WIDTHS: [u32; 7] = [3, 6, 9, 12, 18, 25, 56];

fn put_varbit_int(w: &mut BitWriter<'_>, v: i64) {
    if v == 0 {
        w.write_bit(false);
        return;
    }
    for (i, &n) in VARBIT_WIDTHS.iter().enumerate() {
        if fits(v, n) {
            // Prefix: i+1 ones and a zero.
            let ones = i as u32 + 1;
            w.write_bits(((1u64 << ones) - 1) << 1, ones + 1);
            w.write_bits(v as u64 & ((1u64 << n) - 1), n);
            return;
        }
    }
    w.write_bits(0xff, 8);
    w.write_bits(v as u64, 64);
}

fn put_varbit_uint(w: &mut BitWriter<'_>, v: u64) {
    if v == 0 {
        w.write_bit(false);
        return;
    }
    for (i, &n) in VARBIT_WIDTHS.iter().enumerate() {
        if v >> n == 0 {
            let ones = i as u32 + 1;
            w.write_bits(((1u64 << ones) - 1) << 1, ones + 1);
            w.write_bits(v, n);
            return;
        }
    }
    w.write_bits(0xff, 8);
    w.write_bits(v, 64);
}

/// Reads a varbit prefix: the number of leading ones (at most 8).
fn read_varbit_prefix(r: &mut BitReader<'_>) -> Option<usize> {
    let mut ones = 0;
    while ones < 8 && r.read_bit()? {
        ones += 1;
    }
    Some(ones)
}

fn read_varbit_int(r: &mut BitReader<'_>) -> Option<i64> {
    match read_varbit_prefix(r)? {
        0 => Some(0),
        8 => r.read_bits(64).map(|b| b as i64),
        ones => {
            let n = VARBIT_WIDTHS[ones - 1];
            let raw = r.read_bits(n)? as i64;
            // Prometheus' asymmetric range: only values above 2^(n-1) are negative.
            Some(if raw > 1 << (n - 1) {
                raw - (1 << n)
            } else {
                raw
            })
        }
    }
}

fn read_varbit_uint(r: &mut BitReader<'_>) -> Option<u64> {
    match read_varbit_prefix(r)? {
        0 => Some(0),
        8 => r.read_bits(64),
        ones => r.read_bits(VARBIT_WIDTHS[ones - 1]),
    }
}

/// 0 as one zero byte, powers of two from 2^-243 to 2^10 as one byte
/// (exponent + 243), anything else as 0xff and the float's bits.
fn put_zero_threshold(w: &mut BitWriter<'_>, zt: f64) {
    if zt == 0.0 {
        w.write_byte(0);
        return;
    }
    match frexp(zt) {
        (frac, exp) if frac == 0.5 && (-242..=11).contains(&exp) => w.write_byte((exp + 243) as u8),
        _ => {
            w.write_byte(0xff);
            w.write_bits(zt.to_bits(), 64);
        }
    }
}

fn read_zero_threshold(r: &mut BitReader<'_>) -> Option<f64> {
    match r.read_bits(8)? as u8 {
        0 => Some(0.0),
        0xff => r.read_bits(64).map(f64::from_bits),
        b => Some(0.5 * 2f64.powi(i32::from(b) - 243)),
    }
}

/// Go's `math.Frexp` for positive finite values: `v = frac * 2^exp` with
/// `frac` in [0.5, 1).
fn frexp(v: f64) -> (f64, i32) {
    if !v.is_finite() || v <= 0.0 {
        return (v, 0);
    }
    let mut exp = v.log2().floor() as i32 + 1;
    let mut frac = v / 2f64.powi(exp);
    // log2 can be off by one near powers of two; normalise.
    while frac >= 1.0 {
        frac /= 2.0;
        exp += 1;
    }
    while frac < 0.5 {
        frac *= 2.0;
        exp -= 1;
    }
    (frac, exp)
}

/// Custom bounds that are whole thousandths in `0..=33554.430` are stored as
/// `bound*1000 + 1` in a varbit uint (so a leading 1 bit); any other value
/// as a 0 bit and the float's 64 bits.
fn put_custom_bound(w: &mut BitWriter<'_>, f: f64) {
    let tf = f * 1000.0;
    let whole = ((f * 1000.0).round() / 1000.0) == f;
    if !(0.0..=33_554_430.0).contains(&tf) || !whole {
        w.write_bit(false);
        w.write_bits(f.to_bits(), 64);
        return;
    }
    put_varbit_uint(w, tf.round() as u64 + 1);
}

fn read_custom_bound(r: &mut BitReader<'_>) -> Option<f64> {
    match read_varbit_uint(r)? {
        0 => r.read_bits(64).map(f64::from_bits),
        v => Some((v - 1) as f64 / 1000.0),
    }
}

/// What every sample of a chunk shares.
#[derive(Clone, Debug, Default, PartialEq)]
struct Layout {
    schema: i32,
    zero_threshold: f64,
    pos_spans: Vec<Span>,
    neg_spans: Vec<Span>,
    custom_values: Vec<f64>,
}

fn put_spans(w: &mut BitWriter<'_>, spans: &[Span]) {
    put_varbit_uint(w, spans.len() as u64);
    for s in spans {
        put_varbit_uint(w, u64::from(s.length));
        put_varbit_int(w, i64::from(s.offset));
    }
}

/// More spans or bounds than a chunk of this size could describe means
/// corrupt data; refuse before allocating.
const MAX_LAYOUT_ITEMS: u64 = 1 << 16;

fn read_spans(r: &mut BitReader<'_>) -> Option<Vec<Span>> {
    let n = read_varbit_uint(r)?;
    if n > MAX_LAYOUT_ITEMS {
        return None;
    }
    let mut spans = Vec::with_capacity(n as usize);
    for _ in 0..n {
        let length = u32::try_from(read_varbit_uint(r)?).ok()?;
        let offset = i32::try_from(read_varbit_int(r)?).ok()?;
        spans.push(Span { offset, length });
    }
    Some(spans)
}

fn write_layout(w: &mut BitWriter<'_>, l: &Layout) {
    put_zero_threshold(w, l.zero_threshold);
    put_varbit_int(w, i64::from(l.schema));
    put_spans(w, &l.pos_spans);
    put_spans(w, &l.neg_spans);
    if is_custom_buckets_schema(l.schema) {
        put_varbit_uint(w, l.custom_values.len() as u64);
        for &b in &l.custom_values {
            put_custom_bound(w, b);
        }
    }
}

fn read_layout(r: &mut BitReader<'_>) -> Option<Layout> {
    let zero_threshold = read_zero_threshold(r)?;
    let schema = i32::try_from(read_varbit_int(r)?).ok()?;
    if !is_known_schema(schema) {
        return None;
    }
    let pos_spans = read_spans(r)?;
    let neg_spans = read_spans(r)?;
    let mut custom_values = Vec::new();
    if is_custom_buckets_schema(schema) {
        let n = read_varbit_uint(r)?;
        if n > MAX_LAYOUT_ITEMS {
            return None;
        }
        for _ in 0..n {
            custom_values.push(read_custom_bound(r)?);
        }
    }
    let total: u64 = pos_spans
        .iter()
        .chain(&neg_spans)
        .map(|s| u64::from(s.length))
        .sum();
    if total > MAX_LAYOUT_ITEMS {
        return None;
    }
    Some(Layout {
        schema,
        zero_threshold,
        pos_spans,
        neg_spans,
        custom_values,
    })
}

fn span_count(spans: &[Span]) -> usize {
    spans.iter().map(|s| s.length as usize).sum()
}

// ---------------------------------------------------------------------------
// Layout reconciliation

/// How a new sample's buckets relate to the chunk's layout.
struct Merge {
    /// The sample has buckets the chunk lacks (the chunk must be rewritten).
    forward: bool,
    /// The chunk has buckets the sample lacks (written as empty).
    backward: bool,
    /// Sorted union of both index sets.
    union: Vec<i32>,
}

/// Compares the chunk's last absolute bucket counts with the sample's.
/// `counter`: a bucket that shrank, or a populated one that vanished, is a
/// counter reset (`None`); gauges accept anything.
fn merge_side(
    chunk_idx: &[i32],
    chunk_abs: &[f64],
    new_idx: &[i32],
    new_abs: &[f64],
    counter: bool,
) -> Option<Merge> {
    let mut m = Merge {
        forward: false,
        backward: false,
        union: Vec::with_capacity(chunk_idx.len().max(new_idx.len())),
    };
    let (mut i, mut j) = (0, 0);
    loop {
        match (chunk_idx.get(i), new_idx.get(j)) {
            (Some(&a), Some(&b)) if a == b => {
                if counter && chunk_abs.get(i) > new_abs.get(j) {
                    return None;
                }
                m.union.push(a);
                i += 1;
                j += 1;
            }
            (Some(&a), Some(&b)) if a < b => {
                if counter && chunk_abs.get(i).is_some_and(|c| *c != 0.0) {
                    return None;
                }
                m.backward = true;
                m.union.push(a);
                i += 1;
            }
            (Some(&a), None) => {
                if counter && chunk_abs.get(i).is_some_and(|c| *c != 0.0) {
                    return None;
                }
                m.backward = true;
                m.union.push(a);
                i += 1;
            }
            (_, Some(&b)) => {
                m.forward = true;
                m.union.push(b);
                j += 1;
            }
            (None, None) => return Some(m),
        }
    }
}

/// Places absolute counts of `from` layout into the `to` layout (a superset),
/// zeros where `from` has no bucket.
fn relayout(from: &[Span], abs: &[f64], to: &[Span]) -> Vec<f64> {
    let from_idx = span_indices(from);
    let mut out = Vec::with_capacity(span_count(to));
    let mut k = 0;
    for i in span_indices(to) {
        while k < from_idx.len() && from_idx[k] < i {
            k += 1;
        }
        out.push(match from_idx.get(k) {
            Some(&fi) if fi == i => abs.get(k).copied().unwrap_or(0.0),
            _ => 0.0,
        });
    }
    out
}

/// What to do with a sample, decided from the chunk's state.
enum Decision {
    /// Append; `Some` gives the layout the chunk and the sample must use.
    Append(Option<(Vec<Span>, Vec<Span>)>, bool),
    /// Start a new chunk with this header.
    Cut(CounterResetHeader),
}

/// The state shared by both encodings for the append decision.
struct LastSample<'a> {
    num: usize,
    header: CounterResetHeader,
    layout: &'a Layout,
    stale: bool,
    count: f64,
    zero_count: f64,
    pos_abs: Vec<f64>,
    neg_abs: Vec<f64>,
}

/// The new sample, reduced to what the decision needs.
struct NewSample<'a> {
    hint: CounterResetHint,
    stale: bool,
    count: f64,
    zero_count: f64,
    schema: i32,
    zero_threshold: f64,
    custom_values: &'a [f64],
    pos_spans: &'a [Span],
    neg_spans: &'a [Span],
    pos_abs: Vec<f64>,
    neg_abs: Vec<f64>,
}

/// Prometheus' `appendable` / `appendableGauge` rules.
/// `float_chunk`: float chunks start the chunk after a gauge one with an
/// unknown header, integer chunks with "not reset" (upstream's asymmetry).
fn decide(last: &LastSample<'_>, h: &NewSample<'_>, float_chunk: bool) -> Decision {
    let gauge = h.hint == CounterResetHint::Gauge;
    let l = last.layout;
    if gauge {
        let cut = Decision::Cut(CounterResetHeader::Gauge);
        if last.num > 0 && last.header != CounterResetHeader::Gauge {
            return cut;
        }
        if h.stale {
            return Decision::Append(None, false);
        }
        if last.stale
            || h.schema != l.schema
            || h.zero_threshold != l.zero_threshold
            || (is_custom_buckets_schema(h.schema) && h.custom_values != l.custom_values.as_slice())
        {
            return cut;
        }
    } else {
        if last.num > 0 && last.header == CounterResetHeader::Gauge {
            return Decision::Cut(if float_chunk {
                CounterResetHeader::Unknown
            } else {
                CounterResetHeader::NotReset
            });
        }
        if h.hint == CounterResetHint::Reset {
            return Decision::Cut(CounterResetHeader::Reset);
        }
        if h.stale {
            return Decision::Append(None, false);
        }
        if last.stale {
            return Decision::Cut(CounterResetHeader::Unknown);
        }
        if h.count < last.count {
            return Decision::Cut(CounterResetHeader::Reset);
        }
        if h.schema != l.schema || h.zero_threshold != l.zero_threshold {
            return Decision::Cut(CounterResetHeader::Unknown);
        }
        if is_custom_buckets_schema(h.schema) && h.custom_values != l.custom_values.as_slice() {
            return Decision::Cut(CounterResetHeader::Reset);
        }
        if h.zero_count < last.zero_count {
            return Decision::Cut(CounterResetHeader::Reset);
        }
    }
    let pos = merge_side(
        &span_indices(&l.pos_spans),
        &last.pos_abs,
        &span_indices(h.pos_spans),
        &h.pos_abs,
        !gauge,
    );
    let neg = merge_side(
        &span_indices(&l.neg_spans),
        &last.neg_abs,
        &span_indices(h.neg_spans),
        &h.neg_abs,
        !gauge,
    );
    let (Some(pos), Some(neg)) = (pos, neg) else {
        return Decision::Cut(CounterResetHeader::Reset);
    };
    let forward = pos.forward || neg.forward;
    let backward = pos.backward || neg.backward;
    if !forward && !backward {
        return Decision::Append(None, false);
    }
    // The new layout: the sample's own spans when it only adds buckets (as
    // upstream, so the bytes match), the chunk's when it only lacks some,
    // else the union of both.
    let side = |m: &Merge, own: &[Span], chunk: &[Span]| -> Vec<Span> {
        match (m.forward, m.backward) {
            (true, false) => own.to_vec(),
            (false, _) => chunk.to_vec(),
            (true, true) => spans_for(m.union.iter().copied()),
        }
    };
    let spans = (
        side(&pos, h.pos_spans, &l.pos_spans),
        side(&neg, h.neg_spans, &l.neg_spans),
    );
    Decision::Append(Some(spans), forward)
}

// ---------------------------------------------------------------------------
// The two encodings

/// What differs between integer and float histogram chunks.
pub trait Codec: Sized + Clone + std::fmt::Debug {
    type Sample: Clone + std::fmt::Debug;
    /// Encoder state after the last sample.
    type State: Default + Clone + std::fmt::Debug;
    /// Float chunks differ in a few header decisions.
    const FLOAT: bool;

    fn layout_of(h: &Self::Sample) -> Layout;
    fn new_sample<'a>(h: &'a Self::Sample) -> NewSample<'a>;
    fn last_abs(state: &Self::State) -> (Vec<f64>, Vec<f64>, f64, f64, bool);
    /// The sample with its buckets placed into another (wider) layout.
    fn with_spans(h: &Self::Sample, pos: &[Span], neg: &[Span]) -> Self::Sample;
    fn write(w: &mut BitWriter<'_>, num: usize, t: i64, h: &Self::Sample, s: &mut Self::State);
    fn read(r: &mut BitReader<'_>, num: usize, layout: &Layout, s: &mut Self::State)
        -> Option<i64>;
    fn sample(layout: &Layout, s: &Self::State, hint: CounterResetHint) -> Self::Sample;
}

/// A histogram chunk of either encoding, with the appender state to go on
/// appending. `C` is [`IntCodec`] or [`FloatCodec`].
#[derive(Clone, Debug)]
pub struct GenericHistogramChunk<C: Codec> {
    buf: Vec<u8>,
    free: u8,
    num: usize,
    layout: Layout,
    t: i64,
    t_delta: i64,
    state: C::State,
}

/// An integer histogram chunk (encoding 2).
pub type HistogramChunk = GenericHistogramChunk<IntCodec>;
/// A float histogram chunk (encoding 3).
pub type FloatHistogramChunk = GenericHistogramChunk<FloatCodec>;

/// What [`GenericHistogramChunk::append`] did.
#[derive(Debug)]
pub enum AppendOutcome<C: Codec> {
    /// The sample was added to this chunk.
    Appended,
    /// The chunk was rewritten with a wider bucket layout, then the sample added.
    Recoded,
    /// The sample could not join this chunk; it is the first sample of the
    /// returned chunk, which replaces this one as the open chunk.
    NewChunk(GenericHistogramChunk<C>),
}

/// Why chunk bytes could not be read.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum HistogramChunkError {
    #[error("histogram chunk too short: {0} bytes, need at least 3")]
    TooShort(usize),
    #[error(
        "histogram chunk corrupt or truncated at sample {sample} of {total} (bit offset {bit})"
    )]
    Corrupt {
        sample: usize,
        total: usize,
        bit: usize,
    },
}

impl<C: Codec> Default for GenericHistogramChunk<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: Codec> GenericHistogramChunk<C> {
    /// An empty chunk.
    pub fn new() -> Self {
        GenericHistogramChunk {
            buf: vec![0; HEADER_BYTES],
            free: 0,
            num: 0,
            layout: Layout::default(),
            t: 0,
            t_delta: 0,
            state: C::State::default(),
        }
    }

    /// Starts a chunk with `h` (Prometheus' header rules: gauge and reset
    /// hints win, else whether `h` could have followed `prev`'s last sample).
    pub fn first(t: i64, h: &C::Sample, prev: Option<&Self>) -> Self {
        let mut c = Self::new();
        c.write_sample(t, h);
        let s = C::new_sample(h);
        let header = match s.hint {
            CounterResetHint::Gauge => CounterResetHeader::Gauge,
            CounterResetHint::Reset => CounterResetHeader::Reset,
            _ => match prev {
                Some(p) => match p.decide(h) {
                    Decision::Append(..) => CounterResetHeader::NotReset,
                    Decision::Cut(CounterResetHeader::Reset) => CounterResetHeader::Reset,
                    // Float chunks know only "reset or not" here.
                    Decision::Cut(_) if C::FLOAT => CounterResetHeader::NotReset,
                    Decision::Cut(hdr) => hdr,
                },
                None => CounterResetHeader::Unknown,
            },
        };
        c.set_header(header);
        c
    }

    fn decide(&self, h: &C::Sample) -> Decision {
        let (pos_abs, neg_abs, count, zero_count, stale) = C::last_abs(&self.state);
        let last = LastSample {
            num: self.num,
            header: self.header(),
            layout: &self.layout,
            stale,
            count,
            zero_count,
            pos_abs,
            neg_abs,
        };
        decide(&last, &C::new_sample(h), C::FLOAT)
    }

    /// Appends `h` at `t` (timestamps are not checked: the head orders
    /// samples before they get here).
    pub fn append(&mut self, t: i64, h: &C::Sample) -> AppendOutcome<C> {
        if self.num == 0 {
            *self = Self::first(t, h, None);
            return AppendOutcome::Appended;
        }
        if self.num >= usize::from(u16::MAX) {
            let mut c = Self::first(t, h, None);
            c.set_header(CounterResetHeader::Unknown);
            return AppendOutcome::NewChunk(c);
        }
        match self.decide(h) {
            Decision::Cut(header) => {
                let mut c = Self::new();
                c.write_sample(t, h);
                c.set_header(header);
                AppendOutcome::NewChunk(c)
            }
            Decision::Append(None, _) => {
                self.write_sample(t, h);
                AppendOutcome::Appended
            }
            Decision::Append(Some((pos, neg)), forward) => {
                let h = C::with_spans(h, &pos, &neg);
                if !forward {
                    self.write_sample(t, &h);
                    return AppendOutcome::Appended;
                }
                self.recode(&pos, &neg);
                self.write_sample(t, &h);
                AppendOutcome::Recoded
            }
        }
    }

    /// Rewrites every sample into the wider layout `pos`/`neg`.
    fn recode(&mut self, pos: &[Span], neg: &[Span]) {
        let header = self.header();
        let samples: Vec<(i64, C::Sample)> = self.iter().collect();
        let mut c = Self::new();
        for (t, s) in samples {
            c.write_sample(t, &C::with_spans(&s, pos, neg));
        }
        c.set_header(header);
        *self = c;
    }

    fn write_sample(&mut self, t: i64, h: &C::Sample) {
        let num = self.num;
        let mut w = BitWriter {
            buf: &mut self.buf,
            free: &mut self.free,
        };
        if num == 0 {
            let s = C::new_sample(h);
            // A stale marker is written as an empty histogram.
            self.layout = if s.stale {
                Layout::default()
            } else {
                C::layout_of(h)
            };
            write_layout(&mut w, &self.layout);
            put_varbit_int(&mut w, t);
            self.t_delta = 0;
        } else {
            let delta = t.wrapping_sub(self.t);
            put_varbit_int(&mut w, delta.wrapping_sub(self.t_delta));
            self.t_delta = delta;
        }
        self.t = t;
        C::write(&mut w, num, t, h, &mut self.state);
        self.num += 1;
        let n = (self.num as u16).to_be_bytes();
        self.buf[0] = n[0];
        self.buf[1] = n[1];
    }

    fn set_header(&mut self, h: CounterResetHeader) {
        self.buf[FLAG_POS] = (self.buf[FLAG_POS] & !HEADER_MASK) | h.bits();
    }

    /// The counter-reset header of this chunk.
    pub fn header(&self) -> CounterResetHeader {
        CounterResetHeader::from_byte(self.buf[FLAG_POS])
    }

    pub fn num_samples(&self) -> usize {
        self.num
    }

    /// The chunk's bytes as Prometheus stores them (header included).
    pub fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Decodes the samples of this chunk.
    pub fn iter(&self) -> HistogramChunkIter<'_, C> {
        HistogramChunkIter::new(&self.buf)
    }

    /// Rebuilds a chunk (with its appender state) from stored bytes.
    pub fn from_bytes(data: &[u8]) -> Result<Self, HistogramChunkError> {
        let mut it = HistogramChunkIter::<C>::try_new(data)?;
        for _ in it.by_ref() {}
        if let Some(e) = it.error() {
            return Err(e);
        }
        let mut buf = data.to_vec();
        // The writer continues after the last bit read.
        let used_bits = it.r.pos;
        let used = used_bits.div_ceil(8);
        buf.truncate(used.max(HEADER_BYTES));
        let free = (used * 8 - used_bits) as u8;
        Ok(GenericHistogramChunk {
            buf,
            free,
            num: it.total,
            layout: it.layout.unwrap_or_default(),
            t: it.t,
            t_delta: it.t_delta,
            state: it.state,
        })
    }
}

/// Decodes a histogram chunk; stops (and reports through [`error`](Self::error))
/// on corrupt or truncated data instead of panicking.
pub struct HistogramChunkIter<'a, C: Codec> {
    r: BitReader<'a>,
    total: usize,
    read: usize,
    header: CounterResetHeader,
    layout: Option<Layout>,
    t: i64,
    t_delta: i64,
    state: C::State,
    error: Option<HistogramChunkError>,
}

impl<'a, C: Codec> HistogramChunkIter<'a, C> {
    /// An iterator over `data`; too-short data yields nothing.
    pub fn new(data: &'a [u8]) -> Self {
        match Self::try_new(data) {
            Ok(it) => it,
            Err(e) => {
                let mut it = Self::build(data, 0, 0);
                it.error = Some(e);
                it
            }
        }
    }

    /// An iterator over `data`, or why it cannot be a histogram chunk.
    pub fn try_new(data: &'a [u8]) -> Result<Self, HistogramChunkError> {
        match data {
            [a, b, flags, ..] => Ok(Self::build(
                data,
                usize::from(u16::from_be_bytes([*a, *b])),
                *flags,
            )),
            _ => Err(HistogramChunkError::TooShort(data.len())),
        }
    }

    fn build(data: &'a [u8], total: usize, flags: u8) -> Self {
        HistogramChunkIter {
            r: BitReader {
                data,
                pos: HEADER_BYTES * 8,
            },
            total,
            read: 0,
            header: CounterResetHeader::from_byte(flags),
            layout: None,
            t: 0,
            t_delta: 0,
            state: C::State::default(),
            error: None,
        }
    }

    /// The chunk's counter-reset header.
    pub fn header(&self) -> CounterResetHeader {
        self.header
    }

    /// Why iteration stopped early, if it did.
    pub fn error(&self) -> Option<HistogramChunkError> {
        self.error.clone()
    }

    fn step(&mut self) -> Option<(i64, C::Sample)> {
        if self.read == 0 {
            self.layout = Some(read_layout(&mut self.r)?);
            self.t = read_varbit_int(&mut self.r)?;
        } else {
            let dod = read_varbit_int(&mut self.r)?;
            self.t_delta = self.t_delta.wrapping_add(dod);
            self.t = self.t.wrapping_add(self.t_delta);
        }
        let layout = self.layout.as_ref()?;
        C::read(&mut self.r, self.read, layout, &mut self.state)?;
        let hint = self.header.sample_hint(self.read);
        Some((self.t, C::sample(layout, &self.state, hint)))
    }
}

impl<C: Codec> Iterator for HistogramChunkIter<'_, C> {
    type Item = (i64, C::Sample);

    fn next(&mut self) -> Option<Self::Item> {
        if self.read >= self.total || self.error.is_some() {
            return None;
        }
        match self.step() {
            Some(s) => {
                self.read += 1;
                Some(s)
            }
            None => {
                self.error = Some(HistogramChunkError::Corrupt {
                    sample: self.read,
                    total: self.total,
                    bit: self.r.pos,
                });
                None
            }
        }
    }
}

/// Integer histograms (encoding 2).
#[derive(Clone, Debug)]
pub struct IntCodec;

/// Encoder/decoder state of integer chunks: the last sample's values and
/// their deltas (buckets are the histogram's bucket-to-bucket deltas).
#[derive(Clone, Debug, Default)]
pub struct IntState {
    count: u64,
    count_delta: i64,
    zero_count: u64,
    zero_count_delta: i64,
    sum: u64,
    leading: u8,
    trailing: u8,
    pos: Vec<i64>,
    pos_delta: Vec<i64>,
    neg: Vec<i64>,
    neg_delta: Vec<i64>,
}

fn abs_f64(deltas: &[i64]) -> Vec<f64> {
    deltas_to_absolute(deltas)
        .into_iter()
        .map(|c| c as f64)
        .collect()
}

fn abs_to_deltas_f(abs: &[f64]) -> Vec<i64> {
    let mut prev = 0i64;
    abs.iter()
        .map(|&a| {
            let a = a as i64;
            let d = a.wrapping_sub(prev);
            prev = a;
            d
        })
        .collect()
}

impl Codec for IntCodec {
    type Sample = Histogram;
    type State = IntState;
    const FLOAT: bool = false;

    fn layout_of(h: &Histogram) -> Layout {
        Layout {
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            pos_spans: h.positive_spans.clone(),
            neg_spans: h.negative_spans.clone(),
            custom_values: h.custom_values.clone(),
        }
    }

    fn new_sample(h: &Histogram) -> NewSample<'_> {
        NewSample {
            hint: h.counter_reset_hint,
            stale: is_stale_nan(h.sum),
            count: h.count as f64,
            zero_count: h.zero_count as f64,
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            custom_values: &h.custom_values,
            pos_spans: &h.positive_spans,
            neg_spans: &h.negative_spans,
            pos_abs: abs_f64(&h.positive_buckets),
            neg_abs: abs_f64(&h.negative_buckets),
        }
    }

    fn last_abs(s: &IntState) -> (Vec<f64>, Vec<f64>, f64, f64, bool) {
        (
            abs_f64(&s.pos),
            abs_f64(&s.neg),
            s.count as f64,
            s.zero_count as f64,
            is_stale_nan(f64::from_bits(s.sum)),
        )
    }

    fn with_spans(h: &Histogram, pos: &[Span], neg: &[Span]) -> Histogram {
        let mut out = h.clone();
        if is_stale_nan(h.sum) {
            return out;
        }
        out.positive_buckets = abs_to_deltas_f(&relayout(
            &h.positive_spans,
            &abs_f64(&h.positive_buckets),
            pos,
        ));
        out.negative_buckets = abs_to_deltas_f(&relayout(
            &h.negative_spans,
            &abs_f64(&h.negative_buckets),
            neg,
        ));
        out.positive_spans = pos.to_vec();
        out.negative_spans = neg.to_vec();
        out
    }

    fn write(w: &mut BitWriter<'_>, num: usize, _t: i64, h: &Histogram, s: &mut IntState) {
        let stale = is_stale_nan(h.sum);
        // A stale marker carries no counts or buckets.
        let (count, zero_count) = if stale {
            (0, 0)
        } else {
            (h.count, h.zero_count)
        };
        let (pos, neg): (&[i64], &[i64]) = if stale {
            (&[], &[])
        } else {
            (&h.positive_buckets, &h.negative_buckets)
        };
        if num == 0 {
            put_varbit_uint(w, count);
            put_varbit_uint(w, zero_count);
            w.write_bits(h.sum.to_bits(), 64);
            for &b in pos.iter().chain(neg) {
                put_varbit_int(w, b);
            }
            s.leading = NO_WINDOW;
            s.trailing = 0;
            s.count_delta = 0;
            s.zero_count_delta = 0;
            s.pos = pos.to_vec();
            s.neg = neg.to_vec();
            s.pos_delta = vec![0; pos.len()];
            s.neg_delta = vec![0; neg.len()];
        } else {
            let count_delta = (count as i64).wrapping_sub(s.count as i64);
            let zero_delta = (zero_count as i64).wrapping_sub(s.zero_count as i64);
            let (count_dod, zero_dod) = if stale {
                (0, 0)
            } else {
                (
                    count_delta.wrapping_sub(s.count_delta),
                    zero_delta.wrapping_sub(s.zero_count_delta),
                )
            };
            put_varbit_int(w, count_dod);
            put_varbit_int(w, zero_dod);
            write_xor(w, h.sum.to_bits() ^ s.sum, &mut s.leading, &mut s.trailing);
            for (vals, prev, prev_delta) in [
                (pos, &mut s.pos, &mut s.pos_delta),
                (neg, &mut s.neg, &mut s.neg_delta),
            ] {
                for (i, &b) in vals.iter().enumerate() {
                    let (Some(p), Some(pd)) = (prev.get_mut(i), prev_delta.get_mut(i)) else {
                        break;
                    };
                    let delta = b.wrapping_sub(*p);
                    put_varbit_int(w, delta.wrapping_sub(*pd));
                    *pd = delta;
                    *p = b;
                }
            }
            s.count_delta = count_delta;
            s.zero_count_delta = zero_delta;
        }
        s.count = count;
        s.zero_count = zero_count;
        s.sum = h.sum.to_bits();
    }

    fn read(r: &mut BitReader<'_>, num: usize, layout: &Layout, s: &mut IntState) -> Option<i64> {
        let np = span_count(&layout.pos_spans);
        let nn = span_count(&layout.neg_spans);
        if num == 0 {
            s.count = read_varbit_uint(r)?;
            s.zero_count = read_varbit_uint(r)?;
            s.sum = r.read_bits(64)?;
            s.leading = 0;
            s.trailing = 0;
            s.pos = (0..np).map(|_| read_varbit_int(r)).collect::<Option<_>>()?;
            s.neg = (0..nn).map(|_| read_varbit_int(r)).collect::<Option<_>>()?;
            s.pos_delta = vec![0; np];
            s.neg_delta = vec![0; nn];
            return Some(0);
        }
        s.count_delta = s.count_delta.wrapping_add(read_varbit_int(r)?);
        s.count = (s.count as i64).wrapping_add(s.count_delta) as u64;
        s.zero_count_delta = s.zero_count_delta.wrapping_add(read_varbit_int(r)?);
        s.zero_count = (s.zero_count as i64).wrapping_add(s.zero_count_delta) as u64;
        read_xor(r, &mut s.sum, &mut s.leading, &mut s.trailing)?;
        if is_stale_nan(f64::from_bits(s.sum)) {
            return Some(0);
        }
        for (vals, deltas) in [
            (&mut s.pos, &mut s.pos_delta),
            (&mut s.neg, &mut s.neg_delta),
        ] {
            for (v, d) in vals.iter_mut().zip(deltas.iter_mut()) {
                *d = d.wrapping_add(read_varbit_int(r)?);
                *v = v.wrapping_add(*d);
            }
        }
        Some(0)
    }

    fn sample(layout: &Layout, s: &IntState, hint: CounterResetHint) -> Histogram {
        let sum = f64::from_bits(s.sum);
        if is_stale_nan(sum) {
            return Histogram {
                sum,
                ..Histogram::default()
            };
        }
        Histogram {
            counter_reset_hint: hint,
            schema: layout.schema,
            zero_threshold: layout.zero_threshold,
            zero_count: s.zero_count,
            count: s.count,
            sum,
            positive_spans: layout.pos_spans.clone(),
            negative_spans: layout.neg_spans.clone(),
            positive_buckets: s.pos.clone(),
            negative_buckets: s.neg.clone(),
            custom_values: layout.custom_values.clone(),
        }
    }
}

/// Float histograms (encoding 3).
#[derive(Clone, Debug)]
pub struct FloatCodec;

/// One XOR-encoded field: last value's bits and its window.
#[derive(Clone, Copy, Debug)]
struct XorField {
    bits: u64,
    leading: u8,
    trailing: u8,
}

impl Default for XorField {
    fn default() -> Self {
        XorField {
            bits: 0,
            leading: NO_WINDOW,
            trailing: 0,
        }
    }
}

impl XorField {
    fn new(v: f64) -> Self {
        XorField {
            bits: v.to_bits(),
            ..XorField::default()
        }
    }

    fn write(&mut self, w: &mut BitWriter<'_>, v: f64) {
        write_xor(
            w,
            v.to_bits() ^ self.bits,
            &mut self.leading,
            &mut self.trailing,
        );
        self.bits = v.to_bits();
    }

    fn read(&mut self, r: &mut BitReader<'_>) -> Option<()> {
        read_xor(r, &mut self.bits, &mut self.leading, &mut self.trailing)
    }

    fn value(&self) -> f64 {
        f64::from_bits(self.bits)
    }
}

/// Encoder/decoder state of float chunks.
#[derive(Clone, Debug, Default)]
pub struct FloatState {
    count: XorField,
    zero_count: XorField,
    sum: XorField,
    pos: Vec<XorField>,
    neg: Vec<XorField>,
}

impl Codec for FloatCodec {
    type Sample = FloatHistogram;
    type State = FloatState;
    const FLOAT: bool = true;

    fn layout_of(h: &FloatHistogram) -> Layout {
        Layout {
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            pos_spans: h.positive_spans.clone(),
            neg_spans: h.negative_spans.clone(),
            custom_values: h.custom_values.clone(),
        }
    }

    fn new_sample(h: &FloatHistogram) -> NewSample<'_> {
        NewSample {
            hint: h.counter_reset_hint,
            stale: is_stale_nan(h.sum),
            count: h.count,
            zero_count: h.zero_count,
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            custom_values: &h.custom_values,
            pos_spans: &h.positive_spans,
            neg_spans: &h.negative_spans,
            pos_abs: h.positive_buckets.clone(),
            neg_abs: h.negative_buckets.clone(),
        }
    }

    fn last_abs(s: &FloatState) -> (Vec<f64>, Vec<f64>, f64, f64, bool) {
        (
            s.pos.iter().map(XorField::value).collect(),
            s.neg.iter().map(XorField::value).collect(),
            s.count.value(),
            s.zero_count.value(),
            is_stale_nan(s.sum.value()),
        )
    }

    fn with_spans(h: &FloatHistogram, pos: &[Span], neg: &[Span]) -> FloatHistogram {
        let mut out = h.clone();
        if is_stale_nan(h.sum) {
            return out;
        }
        out.positive_buckets = relayout(&h.positive_spans, &h.positive_buckets, pos);
        out.negative_buckets = relayout(&h.negative_spans, &h.negative_buckets, neg);
        out.positive_spans = pos.to_vec();
        out.negative_spans = neg.to_vec();
        out
    }

    fn write(w: &mut BitWriter<'_>, num: usize, _t: i64, h: &FloatHistogram, s: &mut FloatState) {
        let stale = is_stale_nan(h.sum);
        let (count, zero_count) = if stale {
            (0.0, 0.0)
        } else {
            (h.count, h.zero_count)
        };
        let (pos, neg): (&[f64], &[f64]) = if stale {
            (&[], &[])
        } else {
            (&h.positive_buckets, &h.negative_buckets)
        };
        if num == 0 {
            for v in [count, zero_count, h.sum].iter().chain(pos).chain(neg) {
                w.write_bits(v.to_bits(), 64);
            }
            s.count = XorField::new(count);
            s.zero_count = XorField::new(zero_count);
            s.sum = XorField::new(h.sum);
            s.pos = pos.iter().map(|v| XorField::new(*v)).collect();
            s.neg = neg.iter().map(|v| XorField::new(*v)).collect();
            return;
        }
        s.count.write(w, count);
        s.zero_count.write(w, zero_count);
        s.sum.write(w, h.sum);
        for (vals, fields) in [(pos, &mut s.pos), (neg, &mut s.neg)] {
            for (v, f) in vals.iter().zip(fields.iter_mut()) {
                f.write(w, *v);
            }
        }
    }

    fn read(r: &mut BitReader<'_>, num: usize, layout: &Layout, s: &mut FloatState) -> Option<i64> {
        if num == 0 {
            let mut read64 = || {
                r.read_bits(64).map(|b| XorField {
                    bits: b,
                    leading: 0,
                    trailing: 0,
                })
            };
            s.count = read64()?;
            s.zero_count = read64()?;
            s.sum = read64()?;
            s.pos = (0..span_count(&layout.pos_spans))
                .map(|_| read64())
                .collect::<Option<_>>()?;
            s.neg = (0..span_count(&layout.neg_spans))
                .map(|_| read64())
                .collect::<Option<_>>()?;
            return Some(0);
        }
        s.count.read(r)?;
        s.zero_count.read(r)?;
        s.sum.read(r)?;
        if is_stale_nan(s.sum.value()) {
            return Some(0);
        }
        for f in s.pos.iter_mut().chain(s.neg.iter_mut()) {
            f.read(r)?;
        }
        Some(0)
    }

    fn sample(layout: &Layout, s: &FloatState, hint: CounterResetHint) -> FloatHistogram {
        if is_stale_nan(s.sum.value()) {
            return FloatHistogram {
                sum: s.sum.value(),
                ..FloatHistogram::default()
            };
        }
        FloatHistogram {
            counter_reset_hint: hint,
            schema: layout.schema,
            zero_threshold: layout.zero_threshold,
            zero_count: s.zero_count.value(),
            count: s.count.value(),
            sum: s.sum.value(),
            positive_spans: layout.pos_spans.clone(),
            negative_spans: layout.neg_spans.clone(),
            positive_buckets: s.pos.iter().map(XorField::value).collect(),
            negative_buckets: s.neg.iter().map(XorField::value).collect(),
            custom_values: layout.custom_values.clone(),
        }
    }
}

#[cfg(test)]
mod tests;
