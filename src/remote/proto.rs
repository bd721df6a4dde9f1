//! Prometheus remote-write 1.0 wire format: the prompb `WriteRequest`
//! message, protobuf-encoded, in a snappy *block* (not the framed stream
//! format; Prometheus calls `snappy.Encode`).
//!
//! Hand-written rather than generated: the message is small and fixed, and
//! a generator (prost + protoc) would be a build dependency for five
//! messages. The decoder treats the body as hostile: every declared length
//! is checked against what is left of the buffer, nothing is allocated from
//! a declared length (vectors grow with what is actually decoded, so memory
//! stays proportional to the input), unknown fields are skipped by wire type
//! and errors name the byte offset and the field path.
//!
//! What is decoded and what is not:
//! - `TimeSeries.exemplars` (field 3) are decoded and counted in
//!   [`DecodeStats`].
//! - `TimeSeries.histograms` (field 4, native histograms) are decoded
//!   (`remote::proto_hist`) and counted in [`DecodeStats`].
//! - An unknown `MetricMetadata.type` number decodes as
//!   [`MetricType::Unknown`].

use super::proto_hist::HistogramSample;
use crate::model::Label;
use std::fmt;

/// `prometheus.WriteRequest`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WriteRequest {
    pub timeseries: Vec<TimeSeries>,
    pub metadata: Vec<MetricMetadata>,
}

/// `prometheus.TimeSeries`: labels as sent (order and validity are the
/// receiver's business, see `remote::receive`) and float samples.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TimeSeries {
    pub labels: Vec<Label>,
    pub samples: Vec<Sample>,
    /// Native-histogram samples (`TimeSeries.histograms`).
    pub histograms: Vec<HistogramSample>,
    /// `TimeSeries.exemplars`.
    pub exemplars: Vec<Exemplar>,
}

/// `prometheus.Exemplar`: its own labels (a trace id, typically), value
/// and timestamp in milliseconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exemplar {
    pub labels: Vec<Label>,
    pub value: f64,
    pub timestamp: i64,
}

/// `prometheus.Sample`; `timestamp` in milliseconds since the epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sample {
    pub value: f64,
    pub timestamp: i64,
}

/// `prometheus.MetricMetadata`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MetricMetadata {
    pub kind: MetricType,
    pub family: String,
    pub help: String,
    pub unit: String,
}

/// `prometheus.MetricMetadata.MetricType`, same numbers as prompb.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum MetricType {
    #[default]
    Unknown = 0,
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
    GaugeHistogram = 4,
    Summary = 5,
    Info = 6,
    StateSet = 7,
}

impl MetricType {
    /// The prompb number; unknown numbers map to `Unknown` (proto3 enums
    /// are open, and an unknown kind carries no meaning klaxon could use).
    pub fn from_i32(n: i64) -> MetricType {
        match n {
            1 => MetricType::Counter,
            2 => MetricType::Gauge,
            3 => MetricType::Histogram,
            4 => MetricType::GaugeHistogram,
            5 => MetricType::Summary,
            6 => MetricType::Info,
            7 => MetricType::StateSet,
            _ => MetricType::Unknown,
        }
    }

    /// The name the exposition formats and `/api/v1/metadata` use.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Unknown => "unknown",
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
        }
    }
}

/// What a decode skipped, for the receiver's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DecodeStats {
    /// Native histogram samples (`TimeSeries.histograms`) decoded.
    pub histograms: u64,
    /// Exemplars (`TimeSeries.exemplars`) decoded.
    pub exemplars: u64,
}

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// Protobuf-level error at `offset` (from the start of the decompressed
    /// message) in `field` (a path such as `timeseries[2].labels[0].name`).
    #[error("protobuf: byte {offset}: {field}: {problem}")]
    Malformed {
        offset: usize,
        field: String,
        problem: Problem,
    },
    #[error("snappy: {0}")]
    Snappy(String),
    /// The snappy header declares more decompressed bytes than allowed.
    #[error("snappy: decompressed size {len} bytes exceeds the limit of {max} bytes")]
    TooLarge { len: usize, max: usize },
}

/// The protobuf problem behind [`DecodeError::Malformed`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Truncated,
    VarintOverflow,
    /// A length that runs past the end of the enclosing message.
    LengthOutOfBounds(u64),
    BadWireType(u8),
    /// A known field sent with another wire type than its declared one.
    WrongWireType {
        expected: u8,
        got: u8,
    },
    FieldNumberZero,
    InvalidUtf8,
    /// Submessages nested deeper than the decoder allows.
    NestedTooDeep(usize),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Truncated => f.write_str("unexpected end of data"),
            Problem::VarintOverflow => f.write_str("varint longer than 10 bytes"),
            Problem::LengthOutOfBounds(n) => {
                write!(f, "length {n} runs past the end of the message")
            }
            Problem::BadWireType(t) => write!(f, "unsupported wire type {t}"),
            Problem::WrongWireType { expected, got } => {
                write!(f, "wire type {got}, expected {expected}")
            }
            Problem::FieldNumberZero => f.write_str("field number 0"),
            Problem::InvalidUtf8 => f.write_str("invalid UTF-8"),
            Problem::NestedTooDeep(n) => write!(f, "nesting deeper than {n}"),
        }
    }
}

pub(crate) const VARINT: u8 = 0;
pub(crate) const FIXED64: u8 = 1;
pub(crate) const LEN: u8 = 2;
pub(crate) const FIXED32: u8 = 5;

/// Error under construction: the field path is filled in from the inside
/// out as the error travels up through the nested messages.
pub(crate) struct Err {
    pub(crate) offset: usize,
    pub(crate) path: Vec<String>,
    pub(crate) problem: Problem,
}

impl Err {
    pub(crate) fn at(offset: usize, problem: Problem) -> Err {
        Err {
            offset,
            path: Vec::new(),
            problem,
        }
    }

    pub(crate) fn within(mut self, segment: impl Into<String>) -> Err {
        self.path.push(segment.into());
        self
    }

    fn finish(self) -> DecodeError {
        let field = if self.path.is_empty() {
            "WriteRequest".to_string()
        } else {
            let mut parts = self.path;
            parts.reverse();
            parts.join(".")
        };
        DecodeError::Malformed {
            offset: self.offset,
            field,
            problem: self.problem,
        }
    }
}

/// A cursor over one message's bytes. `base` is the message's offset in the
/// whole body, so errors report absolute offsets.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    base: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], base: usize) -> Self {
        Reader { buf, pos: 0, base }
    }

    pub(crate) fn offset(&self) -> usize {
        self.base + self.pos
    }

    pub(crate) fn done(&self) -> bool {
        self.pos >= self.buf.len()
    }

    pub(crate) fn varint(&mut self) -> Result<u64, Err> {
        let start = self.offset();
        let mut v: u64 = 0;
        for i in 0..10 {
            let Some(&b) = self.buf.get(self.pos) else {
                return Err(Err::at(start, Problem::Truncated));
            };
            self.pos += 1;
            // The tenth byte carries only bit 63; higher bits are dropped as
            // Go's decoder does for int64.
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(Err::at(start, Problem::VarintOverflow))
    }

    /// Field number and wire type of the next field.
    pub(crate) fn tag(&mut self) -> Result<(u64, u8), Err> {
        let start = self.offset();
        let key = self.varint()?;
        let field = key >> 3;
        if field == 0 {
            return Err(Err::at(start, Problem::FieldNumberZero));
        }
        Ok((field, (key & 7) as u8))
    }

    pub(crate) fn fixed64(&mut self) -> Result<u64, Err> {
        let start = self.offset();
        let bytes = self
            .buf
            .get(self.pos..self.pos.saturating_add(8))
            .ok_or_else(|| Err::at(start, Problem::Truncated))?;
        let mut a = [0u8; 8];
        a.copy_from_slice(bytes);
        self.pos += 8;
        Ok(u64::from_le_bytes(a))
    }

    /// A length-delimited payload and its absolute offset.
    pub(crate) fn bytes(&mut self) -> Result<(&'a [u8], usize), Err> {
        let start = self.offset();
        let len = self.varint()?;
        let body_at = self.offset();
        let remaining = self.buf.len() - self.pos;
        if len > remaining as u64 {
            return Err(Err::at(start, Problem::LengthOutOfBounds(len)));
        }
        let len = len as usize;
        let out = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok((out, body_at))
    }

    pub(crate) fn string(&mut self) -> Result<String, Err> {
        let (b, at) = self.bytes()?;
        std::str::from_utf8(b)
            .map(str::to_owned)
            .map_err(|e| Err::at(at + e.valid_up_to(), Problem::InvalidUtf8))
    }

    pub(crate) fn skip(&mut self, wire: u8) -> Result<(), Err> {
        let start = self.offset();
        match wire {
            VARINT => self.varint().map(drop),
            FIXED64 => self.fixed64().map(drop),
            LEN => self.bytes().map(drop),
            FIXED32 => {
                if self.buf.len() - self.pos < 4 {
                    return Err(Err::at(start, Problem::Truncated));
                }
                self.pos += 4;
                Ok(())
            }
            // Groups (3, 4) are proto2-only and absent from prompb; 6 and 7
            // do not exist.
            other => Err(Err::at(start, Problem::BadWireType(other))),
        }
    }

    pub(crate) fn expect(&self, at: usize, wire: u8, expected: u8) -> Result<(), Err> {
        if wire == expected {
            Ok(())
        } else {
            Err(Err::at(
                at,
                Problem::WrongWireType {
                    expected,
                    got: wire,
                },
            ))
        }
    }
}

impl WriteRequest {
    /// Appends the protobuf encoding of `self` to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.reserve(self.encoded_len());
        for ts in &self.timeseries {
            put_len_field(out, 1, ts.encoded_len());
            ts.encode(out);
        }
        for md in &self.metadata {
            put_len_field(out, 3, md.encoded_len());
            md.encode(out);
        }
    }

    /// Decodes a protobuf `WriteRequest` (already decompressed).
    pub fn decode(buf: &[u8]) -> Result<WriteRequest, DecodeError> {
        Self::decode_with_stats(buf).map(|(req, _)| req)
    }

    /// [`WriteRequest::decode`], also telling what was skipped.
    pub fn decode_with_stats(buf: &[u8]) -> Result<(WriteRequest, DecodeStats), DecodeError> {
        let mut stats = DecodeStats::default();
        decode_request(buf, &mut stats)
            .map(|req| (req, stats))
            .map_err(Err::finish)
    }

    fn encoded_len(&self) -> usize {
        self.timeseries
            .iter()
            .map(|t| len_field_len(1, t.encoded_len()))
            .sum::<usize>()
            + self
                .metadata
                .iter()
                .map(|m| len_field_len(3, m.encoded_len()))
                .sum::<usize>()
    }
}

fn decode_request(buf: &[u8], stats: &mut DecodeStats) -> Result<WriteRequest, Err> {
    let mut r = Reader::new(buf, 0);
    let mut req = WriteRequest::default();
    while !r.done() {
        let at = r.offset();
        let (field, wire) = r.tag()?;
        match field {
            1 => {
                let i = req.timeseries.len();
                let ts = (|| {
                    r.expect(at, wire, LEN)?;
                    let (b, base) = r.bytes()?;
                    decode_series(b, base, stats)
                })()
                .map_err(|e| e.within(format!("timeseries[{i}]")))?;
                req.timeseries.push(ts);
            }
            3 => {
                let i = req.metadata.len();
                let md = (|| {
                    r.expect(at, wire, LEN)?;
                    let (b, base) = r.bytes()?;
                    decode_metadata(b, base)
                })()
                .map_err(|e| e.within(format!("metadata[{i}]")))?;
                req.metadata.push(md);
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(req)
}

fn decode_series(buf: &[u8], base: usize, stats: &mut DecodeStats) -> Result<TimeSeries, Err> {
    let mut r = Reader::new(buf, base);
    let mut ts = TimeSeries::default();
    while !r.done() {
        let at = r.offset();
        let (field, wire) = r.tag()?;
        match field {
            1 => {
                let i = ts.labels.len();
                let l = (|| {
                    r.expect(at, wire, LEN)?;
                    let (b, base) = r.bytes()?;
                    decode_label(b, base)
                })()
                .map_err(|e| e.within(format!("labels[{i}]")))?;
                ts.labels.push(l);
            }
            2 => {
                let i = ts.samples.len();
                let s = (|| {
                    r.expect(at, wire, LEN)?;
                    let (b, base) = r.bytes()?;
                    decode_sample(b, base)
                })()
                .map_err(|e| e.within(format!("samples[{i}]")))?;
                ts.samples.push(s);
            }
            3 => {
                let i = ts.exemplars.len();
                let ex = (|| {
                    r.expect(at, wire, LEN)?;
                    let (b, base) = r.bytes()?;
                    decode_exemplar(b, base)
                })()
                .map_err(|e| e.within(format!("exemplars[{i}]")))?;
                ts.exemplars.push(ex);
                stats.exemplars += 1;
            }
            4 => {
                let i = ts.histograms.len();
                let h = (|| {
                    r.expect(at, wire, LEN)?;
                    let (b, base) = r.bytes()?;
                    super::proto_hist::decode(b, base)
                })()
                .map_err(|e| e.within(format!("histograms[{i}]")))?;
                ts.histograms.push(h);
                stats.histograms += 1;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(ts)
}

fn decode_label(buf: &[u8], base: usize) -> Result<Label, Err> {
    let mut r = Reader::new(buf, base);
    let mut l = Label::new(String::new(), String::new());
    while !r.done() {
        let at = r.offset();
        let (field, wire) = r.tag()?;
        match field {
            1 => {
                r.expect(at, wire, LEN).map_err(|e| e.within("name"))?;
                l.name = r.string().map_err(|e| e.within("name"))?;
            }
            2 => {
                r.expect(at, wire, LEN).map_err(|e| e.within("value"))?;
                l.value = r.string().map_err(|e| e.within("value"))?;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(l)
}

fn decode_sample(buf: &[u8], base: usize) -> Result<Sample, Err> {
    let mut r = Reader::new(buf, base);
    let mut s = Sample::default();
    while !r.done() {
        let at = r.offset();
        let (field, wire) = r.tag()?;
        match field {
            1 => {
                r.expect(at, wire, FIXED64).map_err(|e| e.within("value"))?;
                s.value = f64::from_bits(r.fixed64().map_err(|e| e.within("value"))?);
            }
            2 => {
                r.expect(at, wire, VARINT)
                    .map_err(|e| e.within("timestamp"))?;
                // int64 is two's complement in a varint.
                s.timestamp = r.varint().map_err(|e| e.within("timestamp"))? as i64;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(s)
}

fn decode_exemplar(buf: &[u8], base: usize) -> Result<Exemplar, Err> {
    let mut r = Reader::new(buf, base);
    let mut ex = Exemplar::default();
    while !r.done() {
        let at = r.offset();
        let (field, wire) = r.tag()?;
        match field {
            1 => {
                let i = ex.labels.len();
                let l = (|| {
                    r.expect(at, wire, LEN)?;
                    let (b, base) = r.bytes()?;
                    decode_label(b, base)
                })()
                .map_err(|e| e.within(format!("labels[{i}]")))?;
                ex.labels.push(l);
            }
            2 => {
                r.expect(at, wire, FIXED64).map_err(|e| e.within("value"))?;
                ex.value = f64::from_bits(r.fixed64().map_err(|e| e.within("value"))?);
            }
            3 => {
                r.expect(at, wire, VARINT)
                    .map_err(|e| e.within("timestamp"))?;
                ex.timestamp = r.varint().map_err(|e| e.within("timestamp"))? as i64;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(ex)
}

fn decode_metadata(buf: &[u8], base: usize) -> Result<MetricMetadata, Err> {
    let mut r = Reader::new(buf, base);
    let mut m = MetricMetadata::default();
    while !r.done() {
        let at = r.offset();
        let (field, wire) = r.tag()?;
        let (name, expected) = match field {
            1 => ("type", VARINT),
            2 => ("metric_family_name", LEN),
            4 => ("help", LEN),
            5 => ("unit", LEN),
            _ => {
                r.skip(wire)?;
                continue;
            }
        };
        r.expect(at, wire, expected).map_err(|e| e.within(name))?;
        match field {
            1 => m.kind = MetricType::from_i32(r.varint().map_err(|e| e.within(name))? as i64),
            2 => m.family = r.string().map_err(|e| e.within(name))?,
            4 => m.help = r.string().map_err(|e| e.within(name))?,
            _ => m.unit = r.string().map_err(|e| e.within(name))?,
        }
    }
    Ok(m)
}

impl TimeSeries {
    fn encoded_len(&self) -> usize {
        self.labels
            .iter()
            .map(|l| len_field_len(1, label_len(l)))
            .sum::<usize>()
            + self
                .samples
                .iter()
                .map(|s| len_field_len(2, sample_len(s)))
                .sum::<usize>()
            + self
                .exemplars
                .iter()
                .map(|e| len_field_len(3, exemplar_len(e)))
                .sum::<usize>()
            + self
                .histograms
                .iter()
                .map(|h| len_field_len(4, super::proto_hist::encoded_len(h)))
                .sum::<usize>()
    }

    fn encode(&self, out: &mut Vec<u8>) {
        for l in &self.labels {
            put_len_field(out, 1, label_len(l));
            put_string(out, 1, &l.name);
            put_string(out, 2, &l.value);
        }
        for s in &self.samples {
            put_len_field(out, 2, sample_len(s));
            // Always written, unlike proto3's default omission, so -0.0 and
            // a zero timestamp survive a round trip bit for bit.
            put_varint(out, (1 << 3) | u64::from(FIXED64));
            out.extend_from_slice(&s.value.to_bits().to_le_bytes());
            put_varint(out, (2 << 3) | u64::from(VARINT));
            put_varint(out, s.timestamp as u64);
        }
        for e in &self.exemplars {
            put_len_field(out, 3, exemplar_len(e));
            for l in &e.labels {
                put_len_field(out, 1, label_len(l));
                put_string(out, 1, &l.name);
                put_string(out, 2, &l.value);
            }
            put_varint(out, (2 << 3) | u64::from(FIXED64));
            out.extend_from_slice(&e.value.to_bits().to_le_bytes());
            put_varint(out, (3 << 3) | u64::from(VARINT));
            put_varint(out, e.timestamp as u64);
        }
        for h in &self.histograms {
            put_len_field(out, 4, super::proto_hist::encoded_len(h));
            super::proto_hist::encode(h, out);
        }
    }
}

impl MetricMetadata {
    fn encoded_len(&self) -> usize {
        let kind = self.kind as u64;
        (if kind != 0 { 1 + varint_len(kind) } else { 0 })
            + string_len(1, &self.family)
            + string_len(4, &self.help)
            + string_len(5, &self.unit)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let kind = self.kind as u64;
        if kind != 0 {
            put_varint(out, (1 << 3) | u64::from(VARINT));
            put_varint(out, kind);
        }
        put_string(out, 2, &self.family);
        put_string(out, 4, &self.help);
        put_string(out, 5, &self.unit);
    }
}

fn label_len(l: &Label) -> usize {
    string_len(1, &l.name) + string_len(2, &l.value)
}

fn exemplar_len(e: &Exemplar) -> usize {
    e.labels
        .iter()
        .map(|l| len_field_len(1, label_len(l)))
        .sum::<usize>()
        + 1
        + 8
        + 1
        + varint_len(e.timestamp as u64)
}

fn sample_len(s: &Sample) -> usize {
    1 + 8 + 1 + varint_len(s.timestamp as u64)
}

/// Encoded size of a string field; empty strings are omitted as proto3
/// does (they decode to the same empty default).
fn string_len(field: u32, s: &str) -> usize {
    if s.is_empty() {
        0
    } else {
        len_field_len(field, s.len())
    }
}

fn len_field_len(field: u32, len: usize) -> usize {
    varint_len(u64::from(field) << 3) + varint_len(len as u64) + len
}

pub(crate) fn varint_len(v: u64) -> usize {
    // 1 byte per started group of 7 bits, at least one.
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

pub(crate) fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(crate) fn put_len_field(out: &mut Vec<u8>, field: u32, len: usize) {
    put_varint(out, (u64::from(field) << 3) | u64::from(LEN));
    put_varint(out, len as u64);
}

fn put_string(out: &mut Vec<u8>, field: u32, s: &str) {
    if !s.is_empty() {
        put_len_field(out, field, s.len());
        out.extend_from_slice(s.as_bytes());
    }
}

/// Protobuf, then a snappy block, as a remote-write request body.
///
/// The snappy block format cannot hold more than 2^32 − 1 bytes; a request
/// that large (far beyond any sane batch) yields an empty body, logged,
/// rather than a panic.
pub fn encode_snappy(req: &WriteRequest) -> Vec<u8> {
    let mut pb = Vec::new();
    req.encode(&mut pb);
    match snap::raw::Encoder::new().compress_vec(&pb) {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, bytes = pb.len(), "remote write request too large for snappy");
            Vec::new()
        }
    }
}

/// Decodes a remote-write body: snappy block, then protobuf. The size the
/// snappy header declares is checked against `max_len` before anything is
/// allocated.
pub fn decode_snappy(body: &[u8], max_len: usize) -> Result<WriteRequest, DecodeError> {
    decode_snappy_with_stats(body, max_len).map(|(req, _)| req)
}

/// [`decode_snappy`], also telling what was skipped.
pub fn decode_snappy_with_stats(
    body: &[u8],
    max_len: usize,
) -> Result<(WriteRequest, DecodeStats), DecodeError> {
    let len = snap::raw::decompress_len(body).map_err(|e| DecodeError::Snappy(e.to_string()))?;
    if len > max_len {
        return Err(DecodeError::TooLarge { len, max: max_len });
    }
    let pb = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| DecodeError::Snappy(e.to_string()))?;
    WriteRequest::decode_with_stats(&pb)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample_request() -> WriteRequest {
        WriteRequest {
            timeseries: vec![
                TimeSeries {
                    histograms: Vec::new(),
                    exemplars: Vec::new(),
                    labels: vec![
                        Label::new("__name__", "up"),
                        Label::new("instance", "a:9100"),
                        Label::new("job", "node"),
                    ],
                    samples: vec![
                        Sample {
                            value: 1.0,
                            timestamp: 1_700_000_000_000,
                        },
                        Sample {
                            value: -0.0,
                            timestamp: 0,
                        },
                        Sample {
                            value: f64::from_bits(crate::model::STALE_NAN_BITS),
                            timestamp: -5,
                        },
                        Sample {
                            value: f64::INFINITY,
                            timestamp: i64::MAX,
                        },
                    ],
                },
                TimeSeries {
                    histograms: Vec::new(),
                    exemplars: Vec::new(),
                    labels: vec![Label::new("__name__", "é"), Label::new("x", "")],
                    samples: vec![],
                },
                TimeSeries::default(),
            ],
            metadata: vec![
                MetricMetadata {
                    kind: MetricType::Counter,
                    family: "http_requests_total".into(),
                    help: "Requests.".into(),
                    unit: "".into(),
                },
                MetricMetadata::default(),
            ],
        }
    }

    /// Bitwise equality, so NaN and -0.0 count.
    fn same(a: &WriteRequest, b: &WriteRequest) -> bool {
        a.metadata == b.metadata
            && a.timeseries.len() == b.timeseries.len()
            && a.timeseries.iter().zip(&b.timeseries).all(|(x, y)| {
                x.labels == y.labels
                    && x.samples.len() == y.samples.len()
                    && x.samples.iter().zip(&y.samples).all(|(s, t)| {
                        s.timestamp == t.timestamp && s.value.to_bits() == t.value.to_bits()
                    })
            })
    }

    #[test]
    fn round_trip_protobuf() {
        let req = sample_request();
        let mut buf = Vec::new();
        req.encode(&mut buf);
        assert_eq!(buf.len(), req.encoded_len());
        let back = WriteRequest::decode(&buf).unwrap();
        assert!(same(&req, &back), "{back:?}");
    }

    #[test]
    fn round_trip_snappy() {
        let req = sample_request();
        let body = encode_snappy(&req);
        let back = decode_snappy(&body, 1 << 20).unwrap();
        assert!(same(&req, &back));
        // The body is a raw snappy block: its header is the varint length of
        // the protobuf, not the framed format's stream identifier.
        let mut pb = Vec::new();
        req.encode(&mut pb);
        assert_eq!(snap::raw::decompress_len(&body).unwrap(), pb.len());
        assert_ne!(body.first(), Some(&0xff));
    }

    #[test]
    fn empty_request_is_empty_bytes() {
        let mut buf = Vec::new();
        WriteRequest::default().encode(&mut buf);
        assert!(buf.is_empty());
        assert_eq!(WriteRequest::decode(&[]).unwrap(), WriteRequest::default());
    }

    /// Bytes as gogo-protobuf (Prometheus) writes them, by hand: proto3
    /// omits zero values, so a sample with value 0 has no field 1.
    #[test]
    fn decodes_go_style_bytes() {
        let mut ts = Vec::new();
        // labels { name: "__name__" value: "m" }
        ts.extend_from_slice(&[0x0a, 0x0d, 0x0a, 0x08]);
        ts.extend_from_slice(b"__name__");
        ts.extend_from_slice(&[0x12, 0x01, b'm']);
        // samples { timestamp: 1000 }  (value 0 omitted)
        ts.extend_from_slice(&[0x12, 0x03, 0x10, 0xe8, 0x07]);
        // samples { value: 2.5 timestamp: -1 }
        let mut s = vec![0x09];
        s.extend_from_slice(&2.5f64.to_le_bytes());
        s.extend_from_slice(&[
            0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ]);
        ts.push(0x12);
        ts.push(s.len() as u8);
        ts.extend_from_slice(&s);
        // an exemplar (skipped) and a histogram (count_int 1), both counted
        ts.extend_from_slice(&[0x1a, 0x00, 0x22, 0x02, 0x08, 0x01]);
        let mut msg = vec![0x0a, ts.len() as u8];
        msg.extend_from_slice(&ts);
        // unknown fields of every wire type are skipped
        msg.extend_from_slice(&[0x78, 0x05]); // 15 varint
        msg.extend_from_slice(&[0x79, 0, 0, 0, 0, 0, 0, 0, 0]); // 15 fixed64
        msg.extend_from_slice(&[0x7d, 0, 0, 0, 0]); // 15 fixed32
        msg.extend_from_slice(&[0x7a, 0x01, 0x00]); // 15 bytes
                                                    // metadata { type: GAUGE metric_family_name: "m" }
        msg.extend_from_slice(&[0x1a, 0x05, 0x08, 0x02, 0x12, 0x01, b'm']);
        let (req, stats) = WriteRequest::decode_with_stats(&msg).unwrap();
        assert_eq!(
            stats,
            DecodeStats {
                histograms: 1,
                exemplars: 1
            }
        );
        assert_eq!(
            req,
            WriteRequest {
                timeseries: vec![TimeSeries {
                    exemplars: vec![Exemplar::default()],
                    histograms: vec![super::super::proto_hist::HistogramSample {
                        timestamp: 0,
                        value: crate::tsdb::HistValue::Int(crate::model::histogram::Histogram {
                            count: 1,
                            ..Default::default()
                        }),
                    }],
                    labels: vec![Label::new("__name__", "m")],
                    samples: vec![
                        Sample {
                            value: 0.0,
                            timestamp: 1000
                        },
                        Sample {
                            value: 2.5,
                            timestamp: -1
                        },
                    ],
                }],
                metadata: vec![MetricMetadata {
                    kind: MetricType::Gauge,
                    family: "m".into(),
                    help: String::new(),
                    unit: String::new(),
                }],
            }
        );
    }

    fn malformed(buf: &[u8]) -> (usize, String, Problem) {
        match WriteRequest::decode(buf) {
            Err(DecodeError::Malformed {
                offset,
                field,
                problem,
            }) => (offset, field, problem),
            other => panic!("expected a protobuf error, got {other:?}"),
        }
    }

    #[test]
    fn errors_name_offset_and_field() {
        // Length past the end of the buffer.
        assert_eq!(
            malformed(&[0x0a, 0x05, 0x00]),
            (1, "timeseries[0]".into(), Problem::LengthOutOfBounds(5))
        );
        // Invalid UTF-8 in the second label's value.
        let msg = [
            0x0a, 0x0a, // timeseries, 10 bytes
            0x0a, 0x02, 0x0a, 0x00, // labels[0] {name: ""}
            0x0a, 0x04, 0x12, 0x02, 0xc3, 0x28, // labels[1] {value: bad}
        ];
        let (offset, field, problem) = malformed(&msg);
        assert_eq!(field, "timeseries[0].labels[1].value");
        assert_eq!(problem, Problem::InvalidUtf8);
        assert_eq!(offset, 10);
        // A sample value sent as a varint.
        let msg = [0x0a, 0x04, 0x12, 0x02, 0x08, 0x01];
        assert_eq!(
            malformed(&msg),
            (
                4,
                "timeseries[0].samples[0].value".into(),
                Problem::WrongWireType {
                    expected: FIXED64,
                    got: VARINT
                }
            )
        );
        // Truncated fixed64.
        let msg = [0x0a, 0x05, 0x12, 0x03, 0x09, 0x00, 0x00];
        assert_eq!(malformed(&msg).2, Problem::Truncated);
        // Eleven-byte varint.
        let msg = [
            0x78, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(
            malformed(&msg),
            (1, "WriteRequest".into(), Problem::VarintOverflow)
        );
        // Group wire type and field number zero.
        assert_eq!(malformed(&[0x7b]).2, Problem::BadWireType(3));
        assert_eq!(malformed(&[0x02, 0x00]).2, Problem::FieldNumberZero);
        // A huge declared length allocates nothing and fails cleanly.
        let msg = [0x0a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f];
        assert!(matches!(malformed(&msg).2, Problem::LengthOutOfBounds(_)));
        // The message renders all three.
        let e = WriteRequest::decode(&[0x0a, 0x05, 0x00]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "protobuf: byte 1: timeseries[0]: length 5 runs past the end of the message"
        );
    }

    #[test]
    fn snappy_limits_and_garbage() {
        let req = sample_request();
        let body = encode_snappy(&req);
        let mut pb = Vec::new();
        req.encode(&mut pb);
        assert_eq!(
            decode_snappy(&body, pb.len() - 1),
            Err(DecodeError::TooLarge {
                len: pb.len(),
                max: pb.len() - 1
            })
        );
        assert!(decode_snappy(&body, pb.len()).is_ok());
        // A header declaring 4 GiB is refused before allocation.
        let lie = [0x80, 0x80, 0x80, 0x80, 0x0f, 0x00];
        assert!(matches!(
            decode_snappy(&lie, 32 << 20),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            decode_snappy(b"not snappy at all", 1 << 20),
            Err(DecodeError::Snappy(_) | DecodeError::Malformed { .. })
        ));
        // The framed format is not accepted.
        let framed = [0xff, 0x06, 0x00, 0x00, b's', b'N', b'a', b'P', b'p', b'Y'];
        assert!(decode_snappy(&framed, 1 << 20).is_err());
    }

    /// Histograms and exemplars written with prompb's field numbers and
    /// wire types, byte for byte, and read back.
    #[test]
    fn histograms_and_exemplars_use_prompb_fields() {
        use crate::model::histogram::{CounterResetHint, FloatHistogram, Histogram, Span};
        use crate::remote::proto_hist::HistogramSample;
        use crate::tsdb::HistValue;
        let int = Histogram {
            counter_reset_hint: CounterResetHint::NotReset,
            schema: 1,
            zero_threshold: 0.5,
            zero_count: 1,
            count: 3,
            sum: 1.5,
            positive_spans: vec![Span {
                offset: 0,
                length: 2,
            }],
            positive_buckets: vec![1, 0],
            ..Default::default()
        };
        let ts = TimeSeries {
            labels: vec![Label::new("__name__", "h")],
            samples: Vec::new(),
            histograms: vec![HistogramSample {
                timestamp: 1000,
                value: HistValue::Int(int.clone()),
            }],
            exemplars: vec![Exemplar {
                labels: vec![Label::new("trace_id", "abc")],
                value: 0.25,
                timestamp: 999,
            }],
        };
        let req = WriteRequest {
            timeseries: vec![ts.clone()],
            metadata: Vec::new(),
        };
        let mut buf = Vec::new();
        req.encode(&mut buf);
        assert_eq!(buf.len(), req.encoded_len());
        let f64le = |v: f64| v.to_bits().to_le_bytes();
        // Exemplar: 1 labels, 2 value (double), 3 timestamp (int64).
        let mut ex = vec![0x0a, 0x0f, 0x0a, 0x08];
        ex.extend_from_slice(b"trace_id");
        ex.extend_from_slice(&[0x12, 0x03]);
        ex.extend_from_slice(b"abc");
        ex.push(0x11);
        ex.extend_from_slice(&f64le(0.25));
        ex.extend_from_slice(&[0x18, 0xe7, 0x07]);
        // Histogram: 1 count_int, 3 sum, 4 schema (sint32), 5
        // zero_threshold, 6 zero_count_int, 11 positive_spans, 12
        // positive_deltas (packed sint64), 14 reset_hint, 15 timestamp.
        let mut h = vec![0x08, 0x03, 0x19];
        h.extend_from_slice(&f64le(1.5));
        h.extend_from_slice(&[0x20, 0x02, 0x29]);
        h.extend_from_slice(&f64le(0.5));
        h.extend_from_slice(&[0x30, 0x01]);
        h.extend_from_slice(&[0x5a, 0x04, 0x08, 0x00, 0x10, 0x02]);
        h.extend_from_slice(&[0x62, 0x02, 0x02, 0x00]);
        h.extend_from_slice(&[0x70, 0x02, 0x78, 0xe8, 0x07]);
        let mut want_ts = vec![0x0a, 0x0d, 0x0a, 0x08];
        want_ts.extend_from_slice(b"__name__");
        want_ts.extend_from_slice(&[0x12, 0x01, b'h']);
        want_ts.push(0x1a);
        want_ts.push(ex.len() as u8);
        want_ts.extend_from_slice(&ex);
        want_ts.push(0x22);
        want_ts.push(h.len() as u8);
        want_ts.extend_from_slice(&h);
        let mut want = vec![0x0a, want_ts.len() as u8];
        want.extend_from_slice(&want_ts);
        assert_eq!(buf, want);
        assert_eq!(WriteRequest::decode(&buf).unwrap(), req);

        // A float histogram: 2 count_float, 7 zero_count_float, 10/13
        // absolute counts (packed double), 16 custom_values; round trip.
        let float = FloatHistogram {
            counter_reset_hint: CounterResetHint::Gauge,
            schema: -53,
            count: 7.5,
            sum: -2.0,
            positive_spans: vec![Span {
                offset: 0,
                length: 2,
            }],
            positive_buckets: vec![2.5, 5.0],
            custom_values: vec![1.0, 5.0],
            ..Default::default()
        };
        let expo = FloatHistogram {
            schema: -2,
            zero_threshold: 1e-128,
            zero_count: 0.5,
            count: 4.5,
            sum: 3.0,
            negative_spans: vec![Span {
                offset: -3,
                length: 1,
            }],
            negative_buckets: vec![4.0],
            ..Default::default()
        };
        let mut ts2 = ts;
        ts2.histograms = vec![
            HistogramSample {
                timestamp: -1,
                value: HistValue::Float(float),
            },
            HistogramSample {
                timestamp: 2000,
                value: HistValue::Float(expo),
            },
            HistogramSample {
                timestamp: 3000,
                value: HistValue::Int(Histogram {
                    negative_spans: vec![Span {
                        offset: -1,
                        length: 3,
                    }],
                    negative_buckets: vec![-1, 5, -9],
                    ..int
                }),
            },
        ];
        let req = WriteRequest {
            timeseries: vec![ts2],
            metadata: Vec::new(),
        };
        let back = decode_snappy(&encode_snappy(&req), 1 << 20).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn varint_lengths() {
        for v in [0u64, 1, 127, 128, 16383, 16384, u64::MAX, i64::MIN as u64] {
            let mut b = Vec::new();
            put_varint(&mut b, v);
            assert_eq!(b.len(), varint_len(v), "{v}");
            assert_eq!(Reader::new(&b, 0).varint().ok(), Some(v));
        }
    }
}
