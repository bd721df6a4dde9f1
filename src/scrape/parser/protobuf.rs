//! Prometheus' protobuf exposition format
//! (`application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
//! encoding=delimited`): a stream of `MetricFamily` messages, each preceded by
//! its length as a varint.
//!
//! The messages are decoded with `prost` into the structs below (field numbers
//! of client_model's `metrics.proto`, a proto2 file: every scalar is optional).
//! [`convert`] then turns the families into what the scrape loop consumes:
//! the float samples rendered as Prometheus text lines (so that the loop's
//! series cache, relabeling, limits and staleness handling apply unchanged),
//! the metadata, the exemplars by sample position, and the native histograms.
//!
//! The samples are the ones Prometheus' protobuf parser hands out: a counter,
//! gauge or untyped metric is one series named after its family (no suffix is
//! added); a summary is `_count`, `_sum` and one series per quantile; a
//! classic histogram is `_count`, `_sum` and one `_bucket` per upper bound,
//! with a `+Inf` bucket added when the payload has none. Created timestamps
//! are read (see [`Converted::created`]) but produce no `_created` series, as
//! in Prometheus. A timestamp of 0 means "none", as upstream.

use std::borrow::Cow;
use std::fmt::Write as _;

use crate::config::names::is_legacy_metric_name;
use crate::model::gofmt::is_legacy_label_name;
use crate::model::histogram::{CounterResetHint, FloatHistogram, Histogram, Span};
use crate::model::labels::escape_label_value;
use crate::model::Labels;

use super::MetricType;

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Timestamp {
    #[prost(int64, optional, tag = "1")]
    pub seconds: Option<i64>,
    #[prost(int32, optional, tag = "2")]
    pub nanos: Option<i32>,
}

impl Timestamp {
    /// Milliseconds since the epoch (saturating).
    pub fn millis(&self) -> i64 {
        self.seconds
            .unwrap_or(0)
            .saturating_mul(1000)
            .saturating_add(i64::from(self.nanos.unwrap_or(0) / 1_000_000))
    }
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelPair {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub value: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Gauge {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Counter {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
    #[prost(message, optional, tag = "2")]
    pub exemplar: Option<Exemplar>,
    #[prost(message, optional, tag = "3")]
    pub created_timestamp: Option<Timestamp>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Quantile {
    #[prost(double, optional, tag = "1")]
    pub quantile: Option<f64>,
    #[prost(double, optional, tag = "2")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Summary {
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    #[prost(message, repeated, tag = "3")]
    pub quantile: Vec<Quantile>,
    #[prost(message, optional, tag = "4")]
    pub created_timestamp: Option<Timestamp>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Untyped {
    #[prost(double, optional, tag = "1")]
    pub value: Option<f64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct ProtoHistogram {
    #[prost(uint64, optional, tag = "1")]
    pub sample_count: Option<u64>,
    #[prost(double, optional, tag = "4")]
    pub sample_count_float: Option<f64>,
    #[prost(double, optional, tag = "2")]
    pub sample_sum: Option<f64>,
    /// Classic buckets, increasing upper bounds; `+Inf` optional.
    #[prost(message, repeated, tag = "3")]
    pub bucket: Vec<Bucket>,
    #[prost(message, optional, tag = "15")]
    pub created_timestamp: Option<Timestamp>,
    #[prost(sint32, optional, tag = "5")]
    pub schema: Option<i32>,
    #[prost(double, optional, tag = "6")]
    pub zero_threshold: Option<f64>,
    #[prost(uint64, optional, tag = "7")]
    pub zero_count: Option<u64>,
    #[prost(double, optional, tag = "8")]
    pub zero_count_float: Option<f64>,
    #[prost(message, repeated, tag = "9")]
    pub negative_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "10")]
    pub negative_delta: Vec<i64>,
    #[prost(double, repeated, tag = "11")]
    pub negative_count: Vec<f64>,
    #[prost(message, repeated, tag = "12")]
    pub positive_span: Vec<BucketSpan>,
    #[prost(sint64, repeated, tag = "13")]
    pub positive_delta: Vec<i64>,
    #[prost(double, repeated, tag = "14")]
    pub positive_count: Vec<f64>,
    /// Exemplars of a native histogram.
    #[prost(message, repeated, tag = "16")]
    pub exemplars: Vec<Exemplar>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Bucket {
    #[prost(uint64, optional, tag = "1")]
    pub cumulative_count: Option<u64>,
    #[prost(double, optional, tag = "4")]
    pub cumulative_count_float: Option<f64>,
    #[prost(double, optional, tag = "2")]
    pub upper_bound: Option<f64>,
    #[prost(message, optional, tag = "3")]
    pub exemplar: Option<Exemplar>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct BucketSpan {
    #[prost(sint32, optional, tag = "1")]
    pub offset: Option<i32>,
    #[prost(uint32, optional, tag = "2")]
    pub length: Option<u32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    #[prost(double, optional, tag = "2")]
    pub value: Option<f64>,
    #[prost(message, optional, tag = "3")]
    pub timestamp: Option<Timestamp>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Metric {
    #[prost(message, repeated, tag = "1")]
    pub label: Vec<LabelPair>,
    #[prost(message, optional, tag = "2")]
    pub gauge: Option<Gauge>,
    #[prost(message, optional, tag = "3")]
    pub counter: Option<Counter>,
    #[prost(message, optional, tag = "4")]
    pub summary: Option<Summary>,
    #[prost(message, optional, tag = "5")]
    pub untyped: Option<Untyped>,
    #[prost(message, optional, tag = "7")]
    pub histogram: Option<ProtoHistogram>,
    #[prost(int64, optional, tag = "6")]
    pub timestamp_ms: Option<i64>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricFamily {
    #[prost(string, optional, tag = "1")]
    pub name: Option<String>,
    #[prost(string, optional, tag = "2")]
    pub help: Option<String>,
    /// `MetricType`: 0 counter, 1 gauge, 2 summary, 3 untyped, 4 histogram,
    /// 5 gauge histogram.
    #[prost(int32, optional, tag = "3")]
    pub r#type: Option<i32>,
    #[prost(message, repeated, tag = "4")]
    pub metric: Vec<Metric>,
    #[prost(string, optional, tag = "5")]
    pub unit: Option<String>,
}

/// Largest single `MetricFamily` message accepted (the whole body is bounded
/// by `body_size_limit` before this).
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

/// A payload that does not decode or convert: the byte offset of the
/// message (its length prefix) and the field at fault.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("protobuf payload at byte offset {offset}: {field}: {message}")]
pub struct ProtoError {
    pub offset: usize,
    pub field: String,
    pub message: String,
}

fn err(offset: usize, field: impl Into<String>, message: impl Into<String>) -> ProtoError {
    ProtoError {
        offset,
        field: field.into(),
        message: message.into(),
    }
}

/// Reads a base-128 varint at `pos`; `None` when truncated or longer than
/// ten bytes.
fn read_uvarint(buf: &[u8], pos: usize) -> Option<(u64, usize)> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let b = *buf.get(pos + i)?;
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((v, i + 1));
        }
    }
    None
}

/// Iterates the length-delimited messages of a payload: each item is the
/// message's offset and its decoded family, or the error that ends the
/// stream.
pub struct Families<'a> {
    buf: &'a [u8],
    pos: usize,
    done: bool,
}

/// The families of a delimited payload.
pub fn families(buf: &[u8]) -> Families<'_> {
    Families {
        buf,
        pos: 0,
        done: false,
    }
}

impl Families<'_> {
    fn read_one(&mut self, at: usize) -> Result<(usize, MetricFamily), ProtoError> {
        let (len, n) = read_uvarint(self.buf, at)
            .ok_or_else(|| err(at, "length prefix", "truncated or invalid varint"))?;
        if len > MAX_MESSAGE_BYTES as u64 {
            return Err(err(
                at,
                "length prefix",
                format!("message of {len} bytes exceeds the limit of {MAX_MESSAGE_BYTES}"),
            ));
        }
        let start = at + n;
        let end = start + len as usize;
        let body = self.buf.get(start..end).ok_or_else(|| {
            err(
                at,
                "length prefix",
                format!(
                    "message of {len} bytes runs past the end of the payload ({} bytes left)",
                    self.buf.len() - start
                ),
            )
        })?;
        let mf = <MetricFamily as prost::Message>::decode(body)
            .map_err(|e| err(at, "MetricFamily", e.to_string()))?;
        self.pos = end;
        Ok((at, mf))
    }
}

impl Iterator for Families<'_> {
    type Item = Result<(usize, MetricFamily), ProtoError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.buf.len() {
            return None;
        }
        let at = self.pos;
        let r = self.read_one(at);
        if r.is_err() {
            self.done = true;
        }
        Some(r)
    }
}

/// What the scrape config asks of histograms.
#[derive(Clone, Copy, Debug, Default)]
pub struct Options {
    /// `scrape_native_histograms`: native histograms are handed out as such.
    pub native_histograms: bool,
    /// `always_scrape_classic_histograms`: a histogram that is native and has
    /// classic buckets also yields its classic series; with
    /// `convert_to_nhcb`, a converted classic histogram keeps its series too.
    pub always_classic: bool,
    /// `convert_classic_histograms_to_nhcb`: a classic histogram (or, with
    /// native histograms off, the classic buckets of any histogram) becomes
    /// one histogram with custom bounds.
    pub convert_to_nhcb: bool,
}

/// An exemplar as scraped (labels sorted, timestamp in milliseconds if the
/// payload had one).
#[derive(Clone, Debug, PartialEq)]
pub struct ScrapedExemplar {
    pub labels: Labels,
    pub value: f64,
    pub timestamp: Option<i64>,
}

/// A native histogram sample: integer or float counts, as stored.
pub type NativeValue = crate::tsdb::HistValue;

/// One native histogram of a payload.
#[derive(Clone, Debug, PartialEq)]
pub struct NativeSample {
    /// Family name and the metric's labels (no target labels yet).
    pub labels: Labels,
    pub timestamp: Option<i64>,
    pub value: NativeValue,
    pub exemplars: Vec<ScrapedExemplar>,
    /// Created timestamp in milliseconds, when the payload has one.
    pub created: Option<i64>,
}

/// A family's metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct FamilyMeta {
    pub name: String,
    pub kind: MetricType,
    pub help: String,
    pub unit: String,
}

/// A payload converted for the scrape loop.
#[derive(Debug, Default)]
pub struct Converted {
    /// The float samples as Prometheus text lines (`name{labels} value [ts]`),
    /// one per sample, in payload order.
    pub text: Vec<u8>,
    /// Number of lines in `text`.
    pub samples: u32,
    pub metadata: Vec<FamilyMeta>,
    /// Exemplars by the index of the sample line they belong to.
    pub exemplars: Vec<(u32, ScrapedExemplar)>,
    pub histograms: Vec<NativeSample>,
    /// Created timestamps by the index of the first sample line of their
    /// metric (counters, summaries, classic histograms).
    pub created: Vec<(u32, i64)>,
    /// The family being converted has a name outside the legacy set: its
    /// lines write it quoted inside the braces (decided once per family;
    /// the suffixes `_count`, `_sum`, `_bucket` do not change it).
    quote_name: bool,
}

/// Go's `%g`-like shortest form with `.0` added to integral values, as
/// Prometheus formats `le` and `quantile` values from protobuf.
pub fn format_om_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let s = crate::model::gofmt::strconv_float(f, 'g', -1);
    if s.contains(['e', '.']) {
        s
    } else {
        format!("{s}.0")
    }
}

fn push_value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else {
        let mut b = ryu::Buffer::new();
        out.extend_from_slice(b.format_finite(v).as_bytes());
    }
}

/// Converts a whole payload. Nothing is returned unless all of it is good.
pub fn convert(buf: &[u8], opts: Options) -> Result<Converted, ProtoError> {
    let mut out = Converted::default();
    for fam in families(buf) {
        let (at, mf) = fam?;
        convert_family(&mut out, at, &mf, opts)?;
    }
    Ok(out)
}

fn family_kind(t: i32) -> Option<MetricType> {
    Some(match t {
        0 => MetricType::Counter,
        1 => MetricType::Gauge,
        2 => MetricType::Summary,
        3 => MetricType::Unknown,
        4 => MetricType::Histogram,
        5 => MetricType::GaugeHistogram,
        _ => return None,
    })
}

/// Whether a protobuf histogram is a native one (Prometheus' rule: any span,
/// a positive zero threshold or a positive integer zero count).
fn is_native(h: &ProtoHistogram) -> bool {
    !h.positive_span.is_empty()
        || !h.negative_span.is_empty()
        || h.zero_threshold.unwrap_or(0.0) > 0.0
        || h.zero_count.unwrap_or(0) > 0
}

fn convert_family(
    out: &mut Converted,
    at: usize,
    mf: &MetricFamily,
    opts: Options,
) -> Result<(), ProtoError> {
    let name = mf.name.as_deref().unwrap_or("");
    // As Prometheus 3: any UTF-8 name (prost has checked the UTF-8); the
    // scrape config's validation scheme is applied to the finished series
    // by the scrape loop.
    if name.is_empty() {
        return Err(err(
            at,
            "MetricFamily.name",
            format!("invalid metric name: {name:?}"),
        ));
    }
    let t = mf.r#type.unwrap_or(0);
    let kind = family_kind(t).ok_or_else(|| {
        err(
            at,
            "MetricFamily.type",
            format!("unknown metric type for metric {name:?}: {t}"),
        )
    })?;
    let unit = mf.unit.as_deref().unwrap_or("");
    if !unit.is_empty() {
        let base = match kind {
            MetricType::Counter => name.strip_suffix("_total").unwrap_or(name),
            _ => name,
        };
        let ok = base
            .strip_suffix(unit)
            .is_some_and(|rest| rest.len() > 1 && rest.ends_with('_'));
        if !ok {
            return Err(err(
                at,
                "MetricFamily.unit",
                format!("unit {unit:?} not a suffix of metric {name:?}"),
            ));
        }
    }
    if mf.metric.is_empty() {
        // Prometheus skips empty families, metadata included.
        return Ok(());
    }
    out.quote_name = !is_legacy_metric_name(name);
    out.metadata.push(FamilyMeta {
        name: name.to_string(),
        kind,
        help: mf.help.clone().unwrap_or_default(),
        unit: unit.to_string(),
    });
    let histograms = matches!(kind, MetricType::Histogram | MetricType::GaugeHistogram);
    if histograms && (opts.native_histograms || opts.convert_to_nhcb) {
        out.histograms.reserve(mf.metric.len());
    }
    for (i, m) in mf.metric.iter().enumerate() {
        let field = |f: &str| format!("MetricFamily {name:?} metric[{i}].{f}");
        // A native histogram whose classic series are not kept needs no
        // text line: its labels are checked, not rendered.
        let text = !(histograms
            && opts.native_histograms
            && m.histogram
                .as_ref()
                .is_some_and(|h| is_native(h) && (!opts.always_classic || h.bucket.is_empty())));
        let mut labels = String::new();
        let mut seen: Vec<&str> = Vec::with_capacity(m.label.len());
        for (j, lp) in m.label.iter().enumerate() {
            let ln = lp.name.as_deref().unwrap_or("");
            if ln.is_empty() {
                return Err(err(
                    at,
                    field(&format!("label[{j}].name")),
                    format!("invalid label name {ln:?}"),
                ));
            }
            if seen.contains(&ln) || kind_has_magic(kind, ln) {
                return Err(err(
                    at,
                    field(&format!("label[{j}].name")),
                    format!("label name {ln:?} is not unique"),
                ));
            }
            seen.push(ln);
            let lv = lp.value.as_deref().unwrap_or("");
            if lv.is_empty() || !text {
                continue;
            }
            if !labels.is_empty() {
                labels.push(',');
            }
            if is_legacy_label_name(ln) {
                labels.push_str(ln);
            } else {
                // Prometheus 3 text syntax: a quoted label name.
                let _ = write!(labels, "\"{}\"", escape_label_value(ln));
            }
            let _ = write!(labels, "=\"{}\"", escape_label_value(lv));
        }
        let ts = m.timestamp_ms.filter(|t| *t != 0);
        if ts.is_some_and(|t| t < 0) {
            return Err(err(
                at,
                field("timestamp_ms"),
                "negative timestamps are not supported",
            ));
        }
        match kind {
            MetricType::Counter => {
                let c = m.counter.as_ref();
                let idx = line(
                    out,
                    name,
                    &labels,
                    None,
                    c.and_then(|c| c.value).unwrap_or(0.0),
                    ts,
                );
                if let Some(ct) = c.and_then(|c| c.created_timestamp.as_ref()) {
                    out.created.push((idx, ct.millis()));
                }
                if let Some(e) = c.and_then(|c| c.exemplar.as_ref()) {
                    out.exemplars
                        .push((idx, exemplar(at, e, &field("counter.exemplar"))?));
                }
            }
            MetricType::Gauge => {
                let v = m.gauge.as_ref().and_then(|g| g.value).unwrap_or(0.0);
                line(out, name, &labels, None, v, ts);
            }
            MetricType::Unknown => {
                let v = m.untyped.as_ref().and_then(|g| g.value).unwrap_or(0.0);
                line(out, name, &labels, None, v, ts);
            }
            MetricType::Summary => {
                let d = Summary::default();
                let s = m.summary.as_ref().unwrap_or(&d);
                let n = format!("{name}_count");
                let idx = line(
                    out,
                    &n,
                    &labels,
                    None,
                    s.sample_count.unwrap_or(0) as f64,
                    ts,
                );
                if let Some(ct) = &s.created_timestamp {
                    out.created.push((idx, ct.millis()));
                }
                let n = format!("{name}_sum");
                line(out, &n, &labels, None, s.sample_sum.unwrap_or(0.0), ts);
                for q in &s.quantile {
                    let qv = format_om_float(q.quantile.unwrap_or(0.0));
                    line(
                        out,
                        name,
                        &labels,
                        Some(("quantile", &qv)),
                        q.value.unwrap_or(0.0),
                        ts,
                    );
                }
            }
            MetricType::Histogram | MetricType::GaugeHistogram => {
                let d = ProtoHistogram::default();
                let h = m.histogram.as_ref().unwrap_or(&d);
                if is_native(h) && opts.native_histograms {
                    out.histograms
                        .push(native_sample(at, name, m, h, kind, ts, &|| {
                            field("histogram")
                        })?);
                    if !opts.always_classic || h.bucket.is_empty() {
                        continue;
                    }
                    classic(out, at, name, &labels, h, ts, &field("histogram"))?;
                    continue;
                }
                // A classic histogram, or any histogram with native ones
                // off (then one without classic buckets is count, sum and
                // the +Inf bucket, as Prometheus 3).
                if !opts.convert_to_nhcb || opts.always_classic {
                    classic(out, at, name, &labels, h, ts, &field("histogram"))?;
                }
                if opts.convert_to_nhcb {
                    out.histograms.push(nhcb_sample(
                        at,
                        name,
                        m,
                        h,
                        kind,
                        ts,
                        &field("histogram"),
                    )?);
                }
            }
            MetricType::Info | MetricType::StateSet => {}
        }
    }
    Ok(())
}

fn kind_has_magic(kind: MetricType, label: &str) -> bool {
    match label {
        "le" => matches!(kind, MetricType::Histogram | MetricType::GaugeHistogram),
        "quantile" => kind == MetricType::Summary,
        _ => false,
    }
}

/// Appends one sample line; returns its index.
fn line(
    out: &mut Converted,
    name: &str,
    labels: &str,
    extra: Option<(&str, &str)>,
    v: f64,
    ts: Option<i64>,
) -> u32 {
    // A name outside the legacy set goes inside the braces, quoted
    // (Prometheus 3 text syntax), which the text parser reads back.
    let legacy = !out.quote_name;
    let t = &mut out.text;
    if legacy {
        t.extend_from_slice(name.as_bytes());
    }
    if !legacy || !labels.is_empty() || extra.is_some() {
        t.push(b'{');
        if !legacy {
            t.push(b'"');
            t.extend_from_slice(escape_label_value(name).as_bytes());
            t.push(b'"');
            if !labels.is_empty() || extra.is_some() {
                t.push(b',');
            }
        }
        t.extend_from_slice(labels.as_bytes());
        if let Some((n, val)) = extra {
            if !labels.is_empty() {
                t.push(b',');
            }
            t.extend_from_slice(n.as_bytes());
            t.extend_from_slice(b"=\"");
            t.extend_from_slice(val.as_bytes());
            t.push(b'"');
        }
        t.push(b'}');
    }
    t.push(b' ');
    push_value(t, v);
    if let Some(ts) = ts {
        t.push(b' ');
        t.extend_from_slice(itoa::Buffer::new().format(ts).as_bytes());
    }
    t.push(b'\n');
    out.samples += 1;
    out.samples - 1
}

fn classic(
    out: &mut Converted,
    at: usize,
    name: &str,
    labels: &str,
    h: &ProtoHistogram,
    ts: Option<i64>,
    field: &str,
) -> Result<(), ProtoError> {
    let count = count_of(h);
    let n = format!("{name}_count");
    let idx = line(out, &n, labels, None, count, ts);
    if let Some(ct) = &h.created_timestamp {
        out.created.push((idx, ct.millis()));
    }
    let n = format!("{name}_sum");
    line(out, &n, labels, None, h.sample_sum.unwrap_or(0.0), ts);
    let n = format!("{name}_bucket");
    let mut inf = false;
    for (k, b) in h.bucket.iter().enumerate() {
        let ub = b.upper_bound.unwrap_or(0.0);
        let v = cumulative_of(b);
        let le = format_om_float(ub);
        let idx = line(out, &n, labels, Some(("le", &le)), v, ts);
        if let Some(e) = &b.exemplar {
            let f = format!("{field}.bucket[{k}].exemplar");
            out.exemplars.push((idx, exemplar(at, e, &f)?));
        }
        if ub == f64::INFINITY {
            inf = true;
            break;
        }
    }
    if !inf {
        line(out, &n, labels, Some(("le", "+Inf")), count, ts);
    }
    Ok(())
}

fn exemplar(at: usize, e: &Exemplar, field: &str) -> Result<ScrapedExemplar, ProtoError> {
    let mut b = crate::model::LabelsBuilder::new();
    for (j, lp) in e.label.iter().enumerate() {
        let ln = lp.name.as_deref().unwrap_or("");
        if ln.is_empty() {
            return Err(err(
                at,
                format!("{field}.label[{j}].name"),
                format!("invalid label name {ln:?}"),
            ));
        }
        b.set(ln, lp.value.clone().unwrap_or_default());
    }
    Ok(ScrapedExemplar {
        labels: b.build(),
        value: e.value.unwrap_or(0.0),
        timestamp: e.timestamp.as_ref().map(Timestamp::millis),
    })
}

fn spans(s: &[BucketSpan]) -> Vec<Span> {
    s.iter()
        .map(|s| Span::new(s.offset.unwrap_or(0), s.length.unwrap_or(0)))
        .collect()
}

#[allow(clippy::too_many_arguments)]
fn native_sample(
    at: usize,
    name: &str,
    m: &Metric,
    h: &ProtoHistogram,
    kind: MetricType,
    ts: Option<i64>,
    field: &dyn Fn() -> String,
) -> Result<NativeSample, ProtoError> {
    let hint = if kind == MetricType::GaugeHistogram {
        CounterResetHint::Gauge
    } else {
        CounterResetHint::Unknown
    };
    let schema = h.schema.unwrap_or(0);
    // Schemas above 8 are reserved: accepted, and lowered before storing.
    let reserved = schema > crate::model::histogram::EXPONENTIAL_SCHEMA_MAX
        && schema <= crate::model::histogram::EXPONENTIAL_SCHEMA_MAX_RESERVED;
    if !crate::model::histogram::is_valid_schema(schema) && !reserved {
        return Err(err(
            at,
            format!("{}.schema", field()),
            format!("invalid native histogram schema {schema}"),
        ));
    }
    let is_float =
        h.sample_count_float.unwrap_or(0.0) > 0.0 || h.zero_count_float.unwrap_or(0.0) > 0.0;
    // Spans must describe as many buckets as are given (else the
    // histogram is malformed; Prometheus rejects the scrape).
    let (np, nn) = if is_float {
        (h.positive_count.len(), h.negative_count.len())
    } else {
        (h.positive_delta.len(), h.negative_delta.len())
    };
    for (side, sp, n) in [
        ("positive", &h.positive_span, np),
        ("negative", &h.negative_span, nn),
    ] {
        let want: u64 = sp.iter().map(|s| u64::from(s.length.unwrap_or(0))).sum();
        if want != n as u64 {
            return Err(err(
                at,
                format!("{}.{side}_span", field()),
                format!("histogram {name:?}: {side} side: spans require {want} buckets, have {n}"),
            ));
        }
    }
    let value = if is_float {
        let mut fh = FloatHistogram {
            counter_reset_hint: hint,
            schema,
            zero_threshold: h.zero_threshold.unwrap_or(0.0),
            zero_count: h.zero_count_float.unwrap_or(0.0),
            count: h.sample_count_float.unwrap_or(0.0),
            sum: h.sample_sum.unwrap_or(0.0),
            positive_spans: spans(&h.positive_span),
            negative_spans: spans(&h.negative_span),
            positive_buckets: h.positive_count.clone(),
            negative_buckets: h.negative_count.clone(),
            custom_values: Vec::new(),
        };
        // The spans were checked against the buckets above, so compaction
        // never expands a span longer than the payload.
        fh.compact(0);
        NativeValue::Float(fh)
    } else {
        let mut ih = Histogram {
            counter_reset_hint: hint,
            schema,
            zero_threshold: h.zero_threshold.unwrap_or(0.0),
            zero_count: h.zero_count.unwrap_or(0),
            count: h.sample_count.unwrap_or(0),
            sum: h.sample_sum.unwrap_or(0.0),
            positive_spans: spans(&h.positive_span),
            negative_spans: spans(&h.negative_span),
            positive_buckets: h.positive_delta.clone(),
            negative_buckets: h.negative_delta.clone(),
            custom_values: Vec::new(),
        };
        // The spans were checked against the buckets above, so compaction
        // never expands a span longer than the payload.
        ih.compact(0);
        NativeValue::Int(ih)
    };
    let exemplars = native_exemplars(at, h, field)?;
    Ok(NativeSample {
        labels: metric_labels(name, m),
        timestamp: ts,
        value,
        exemplars,
        created: h.created_timestamp.as_ref().map(Timestamp::millis),
    })
}

/// A histogram's family name and the metric's labels (empty values
/// dropped, as in the text lines).
fn metric_labels(name: &str, m: &Metric) -> Labels {
    let mut b = crate::model::LabelsBuilder::new();
    b.set(crate::model::labels::METRIC_NAME, name);
    for lp in &m.label {
        let v = lp.value.as_deref().unwrap_or("");
        if !v.is_empty() {
            b.set(lp.name.clone().unwrap_or_default(), v);
        }
    }
    b.build()
}

/// The exemplars Prometheus keeps for a native histogram (NHCB included):
/// those of the histogram itself, else the buckets', and only the ones
/// with a timestamp.
fn native_exemplars(
    at: usize,
    h: &ProtoHistogram,
    field: &dyn Fn() -> String,
) -> Result<Vec<ScrapedExemplar>, ProtoError> {
    let mut out = Vec::new();
    if h.exemplars.is_empty() {
        for (k, b) in h.bucket.iter().enumerate() {
            if let Some(e) = b.exemplar.as_ref().filter(|e| e.timestamp.is_some()) {
                out.push(exemplar(
                    at,
                    e,
                    &format!("{}.bucket[{k}].exemplar", field()),
                )?);
            }
        }
    } else {
        for (k, e) in h.exemplars.iter().enumerate() {
            if e.timestamp.is_some() {
                out.push(exemplar(at, e, &format!("{}.exemplars[{k}]", field()))?);
            }
        }
    }
    Ok(out)
}

/// The classic buckets, count and sum of a histogram as one histogram with
/// custom bounds; a conversion error fails the payload, as in Prometheus'
/// protobuf parser.
fn nhcb_sample(
    at: usize,
    name: &str,
    m: &Metric,
    h: &ProtoHistogram,
    kind: MetricType,
    ts: Option<i64>,
    field: &str,
) -> Result<NativeSample, ProtoError> {
    let mut c = crate::scrape::histograms::ClassicCollector::new();
    c.set_count(count_of(h));
    c.set_sum(h.sample_sum.unwrap_or(0.0));
    for b in &h.bucket {
        c.set_bucket(b.upper_bound.unwrap_or(0.0), cumulative_of(b));
    }
    let value = c
        .convert(kind == MetricType::GaugeHistogram)
        .map_err(|e| err(at, format!("{field}.bucket"), e.to_string()))?;
    Ok(NativeSample {
        labels: metric_labels(name, m),
        timestamp: ts,
        value,
        exemplars: native_exemplars(at, h, &|| field.to_string())?,
        created: h.created_timestamp.as_ref().map(Timestamp::millis),
    })
}

/// A classic histogram's count: the float one unless zero.
fn count_of(h: &ProtoHistogram) -> f64 {
    match h.sample_count_float {
        Some(f) if f != 0.0 => f,
        _ => h.sample_count.unwrap_or(0) as f64,
    }
}

/// A classic bucket's cumulative count: the float one unless zero.
fn cumulative_of(b: &Bucket) -> f64 {
    match b.cumulative_count_float {
        Some(f) if f != 0.0 => f,
        _ => b.cumulative_count.unwrap_or(0) as f64,
    }
}

/// Length-delimited encoding of families, for tests, fuzzing and benches.
pub fn encode_delimited(families: &[MetricFamily]) -> Vec<u8> {
    let mut out = Vec::new();
    for f in families {
        // Writing into a Vec cannot run out of space.
        let _ = prost::Message::encode_length_delimited(f, &mut out);
    }
    out
}

/// The label values of a converted line are escaped text; for tests.
pub fn lines(c: &Converted) -> Vec<Cow<'_, str>> {
    c.text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(String::from_utf8_lossy)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lp(n: &str, v: &str) -> LabelPair {
        LabelPair {
            name: Some(n.into()),
            value: Some(v.into()),
        }
    }

    fn fam(name: &str, t: i32, metric: Vec<Metric>) -> MetricFamily {
        MetricFamily {
            name: Some(name.into()),
            help: Some("h".into()),
            r#type: Some(t),
            metric,
            unit: None,
        }
    }

    fn ex(trace: &str, v: f64, ts: Option<i64>) -> Exemplar {
        Exemplar {
            label: vec![lp("trace_id", trace)],
            value: Some(v),
            timestamp: ts.map(|ms| Timestamp {
                seconds: Some(ms / 1000),
                nanos: Some((ms % 1000) as i32 * 1_000_000),
            }),
        }
    }

    #[test]
    fn every_type_becomes_prometheus_series() {
        let counter = Metric {
            label: vec![lp("a", "x\"y")],
            counter: Some(Counter {
                value: Some(3.5),
                exemplar: Some(ex("t1", 1.0, Some(1_500))),
                created_timestamp: Some(Timestamp {
                    seconds: Some(10),
                    nanos: Some(0),
                }),
            }),
            ..Metric::default()
        };
        let gauge = Metric {
            gauge: Some(Gauge {
                value: Some(-1e300),
            }),
            timestamp_ms: Some(1234),
            ..Metric::default()
        };
        let summary = Metric {
            summary: Some(Summary {
                sample_count: Some(4),
                sample_sum: Some(2.5),
                quantile: vec![Quantile {
                    quantile: Some(0.5),
                    value: Some(f64::NAN),
                }],
                created_timestamp: None,
            }),
            ..Metric::default()
        };
        let hist = Metric {
            histogram: Some(ProtoHistogram {
                sample_count: Some(3),
                sample_sum: Some(7.0),
                bucket: vec![
                    Bucket {
                        cumulative_count: Some(1),
                        upper_bound: Some(1.0),
                        exemplar: Some(ex("t2", 0.5, None)),
                        ..Bucket::default()
                    },
                    Bucket {
                        cumulative_count: Some(2),
                        upper_bound: Some(2.5),
                        ..Bucket::default()
                    },
                ],
                ..ProtoHistogram::default()
            }),
            ..Metric::default()
        };
        let buf = encode_delimited(&[
            fam("c_total", 0, vec![counter]),
            fam("g", 1, vec![gauge]),
            fam("s", 2, vec![summary]),
            fam("empty", 1, vec![]),
            fam("h", 4, vec![hist]),
        ]);
        let c = convert(&buf, Options::default()).unwrap();
        assert_eq!(
            lines(&c),
            vec![
                "c_total{a=\"x\\\"y\"} 3.5",
                "g -1e300 1234",
                "s_count 4.0",
                "s_sum 2.5",
                "s{quantile=\"0.5\"} NaN",
                "h_count 3.0",
                "h_sum 7.0",
                "h_bucket{le=\"1.0\"} 1.0",
                "h_bucket{le=\"2.5\"} 2.0",
                "h_bucket{le=\"+Inf\"} 3.0",
            ]
        );
        assert_eq!(c.samples, 10);
        assert_eq!(c.created, vec![(0, 10_000)]);
        let ex_at: Vec<(u32, Option<i64>)> =
            c.exemplars.iter().map(|(i, e)| (*i, e.timestamp)).collect();
        assert_eq!(ex_at, vec![(0, Some(1_500)), (7, None)]);
        let kinds: Vec<(&str, MetricType)> = c
            .metadata
            .iter()
            .map(|m| (m.name.as_str(), m.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("c_total", MetricType::Counter),
                ("g", MetricType::Gauge),
                ("s", MetricType::Summary),
                ("h", MetricType::Histogram),
            ]
        );
        // The text is what the exposition parser reads.
        let mut p = crate::scrape::parser::Parser::new(
            &c.text,
            crate::scrape::parser::Format::PrometheusText,
        );
        let mut n = 0;
        while let Some(e) = p.next().unwrap() {
            if let crate::scrape::parser::Entry::Sample(_) = e {
                n += 1;
            }
        }
        assert_eq!(n, 10);
    }

    #[test]
    fn native_histograms_with_and_without_classic() {
        let h = ProtoHistogram {
            sample_count: Some(5),
            sample_sum: Some(10.0),
            schema: Some(1),
            zero_threshold: Some(0.001),
            zero_count: Some(1),
            positive_span: vec![BucketSpan {
                offset: Some(0),
                length: Some(2),
            }],
            positive_delta: vec![2, 0],
            bucket: vec![Bucket {
                cumulative_count: Some(5),
                upper_bound: Some(10.0),
                ..Bucket::default()
            }],
            exemplars: vec![ex("n1", 3.0, Some(2_000)), ex("n2", 4.0, None)],
            ..ProtoHistogram::default()
        };
        let m = Metric {
            label: vec![lp("k", "v")],
            histogram: Some(h),
            ..Metric::default()
        };
        let buf = encode_delimited(&[fam("nh", 4, vec![m])]);
        // Native off: the classic series.
        let c = convert(&buf, Options::default()).unwrap();
        assert_eq!(c.samples, 4);
        assert!(c.histograms.is_empty());
        // Native on: only the histogram, with its timestamped exemplar.
        let on = Options {
            native_histograms: true,
            ..Options::default()
        };
        let c = convert(&buf, on).unwrap();
        assert_eq!(c.samples, 0);
        assert_eq!(c.histograms.len(), 1);
        let n = &c.histograms[0];
        assert_eq!(n.labels.get("__name__"), Some("nh"));
        assert_eq!(n.labels.get("k"), Some("v"));
        assert_eq!(n.exemplars.len(), 1);
        match &n.value {
            NativeValue::Int(h) => {
                assert_eq!((h.schema, h.count, h.zero_count), (1, 5, 1));
                assert_eq!(h.positive_buckets, vec![2, 0]);
            }
            other => panic!("{other:?}"),
        }
        // Both.
        let c = convert(
            &buf,
            Options {
                always_classic: true,
                ..on
            },
        )
        .unwrap();
        assert_eq!((c.samples, c.histograms.len()), (4, 1));
        // The classic lines kept beside the histogram carry its labels.
        let text = String::from_utf8_lossy(&c.text);
        assert!(text.contains("nh_count{k=\"v\"} "), "{text}");
        assert!(text.contains("nh_bucket{k=\"v\",le=\"10.0\"} "), "{text}");
        assert_eq!(c.histograms[0].labels.get("k"), Some("v"));
    }

    /// Spans claiming billions of buckets (a few payload bytes) are not
    /// expanded: the payload is refused before any compaction.
    #[test]
    fn spans_longer_than_the_buckets_are_not_expanded() {
        for float in [false, true] {
            let h = ProtoHistogram {
                sample_count: Some(1),
                sample_count_float: float.then_some(1.0),
                schema: Some(0),
                positive_span: vec![BucketSpan {
                    offset: Some(0),
                    length: Some(u32::MAX),
                }],
                negative_span: vec![BucketSpan {
                    offset: Some(i32::MIN),
                    length: Some(u32::MAX),
                }],
                positive_delta: vec![1],
                positive_count: vec![1.0],
                ..ProtoHistogram::default()
            };
            let m = Metric {
                histogram: Some(h),
                ..Metric::default()
            };
            let buf = encode_delimited(&[fam("nh", 4, vec![m])]);
            let on = Options {
                native_histograms: true,
                ..Options::default()
            };
            let e = convert(&buf, on).unwrap_err().to_string();
            assert!(e.contains("spans require 4294967295 buckets"), "{e}");
        }
    }

    fn classic_hist(exemplar_ts: Option<i64>) -> ProtoHistogram {
        ProtoHistogram {
            sample_count: Some(4),
            sample_sum: Some(6.0),
            bucket: vec![
                Bucket {
                    cumulative_count: Some(1),
                    upper_bound: Some(0.5),
                    exemplar: Some(ex("b0", 0.3, exemplar_ts)),
                    ..Bucket::default()
                },
                Bucket {
                    cumulative_count: Some(3),
                    upper_bound: Some(2.0),
                    exemplar: Some(ex("b1", 1.5, None)),
                    ..Bucket::default()
                },
            ],
            ..ProtoHistogram::default()
        }
    }

    #[test]
    fn classic_histograms_become_nhcb() {
        let m = Metric {
            label: vec![lp("k", "v")],
            histogram: Some(classic_hist(Some(5_000))),
            ..Metric::default()
        };
        let buf = encode_delimited(&[fam("ch", 4, vec![m.clone()]), fam("gh", 5, vec![m])]);
        let nhcb = Options {
            convert_to_nhcb: true,
            ..Options::default()
        };
        let c = convert(&buf, nhcb).unwrap();
        // The classic series are replaced.
        assert_eq!(c.samples, 0, "{:?}", lines(&c));
        assert_eq!(c.histograms.len(), 2);
        let n = &c.histograms[0];
        assert_eq!(n.labels.to_string(), "ch{k=\"v\"}");
        let NativeValue::Int(h) = &n.value else {
            panic!("{:?}", n.value)
        };
        assert_eq!(h.schema, crate::model::histogram::CUSTOM_BUCKETS_SCHEMA);
        assert_eq!(h.custom_values, vec![0.5, 2.0]);
        // Bucket counts 1, 2, 1 (the +Inf bucket from the count).
        assert_eq!(h.positive_buckets, vec![1, 1, -1]);
        assert_eq!((h.count, h.sum), (4, 6.0));
        h.validate().unwrap();
        // Only the timestamped exemplar is kept.
        assert_eq!(n.exemplars.len(), 1);
        assert_eq!(n.exemplars[0].timestamp, Some(5_000));
        // A gauge histogram converts with the gauge hint.
        assert_eq!(
            c.histograms[1].value.counter_reset_hint(),
            CounterResetHint::Gauge
        );
        // With always_scrape_classic_histograms both are kept.
        let both = Options {
            always_classic: true,
            ..nhcb
        };
        let c = convert(&buf, both).unwrap();
        assert_eq!((c.samples, c.histograms.len()), (10, 2));
        // A native histogram with native histograms on is not converted;
        // with them off its classic buckets are.
        let native = Metric {
            histogram: Some(ProtoHistogram {
                schema: Some(0),
                zero_threshold: Some(0.01),
                positive_span: vec![BucketSpan {
                    offset: Some(0),
                    length: Some(1),
                }],
                positive_delta: vec![4],
                ..classic_hist(None)
            }),
            ..Metric::default()
        };
        let buf = encode_delimited(&[fam("nh", 4, vec![native])]);
        let c = convert(
            &buf,
            Options {
                native_histograms: true,
                ..nhcb
            },
        )
        .unwrap();
        assert_eq!(c.histograms.len(), 1);
        assert_eq!(c.histograms[0].value.to_float().schema, 0);
        let c = convert(&buf, nhcb).unwrap();
        assert_eq!(c.histograms.len(), 1);
        assert_eq!(
            c.histograms[0].value.to_float().custom_values,
            vec![0.5, 2.0]
        );
        // Non-cumulative buckets fail the payload, naming the field.
        let mut bad = classic_hist(None);
        bad.bucket[1].cumulative_count = Some(0);
        let m = Metric {
            histogram: Some(bad),
            ..Metric::default()
        };
        let e = convert(&encode_delimited(&[fam("bad", 4, vec![m])]), nhcb).unwrap_err();
        assert_eq!(e.field, "MetricFamily \"bad\" metric[0].histogram.bucket");
        assert!(e.message.contains("not cumulative"), "{e}");
    }

    #[test]
    fn native_only_histogram_with_native_off_is_count_sum_and_inf() {
        let m = Metric {
            histogram: Some(ProtoHistogram {
                sample_count: Some(2),
                sample_sum: Some(3.0),
                schema: Some(0),
                positive_span: vec![BucketSpan {
                    offset: Some(0),
                    length: Some(1),
                }],
                positive_delta: vec![2],
                ..ProtoHistogram::default()
            }),
            ..Metric::default()
        };
        let c = convert(
            &encode_delimited(&[fam("n", 4, vec![m])]),
            Options::default(),
        )
        .unwrap();
        assert_eq!(
            lines(&c),
            vec!["n_count 2.0", "n_sum 3.0", "n_bucket{le=\"+Inf\"} 2.0"]
        );
    }

    #[test]
    fn spans_must_match_buckets() {
        let m = Metric {
            histogram: Some(ProtoHistogram {
                sample_count: Some(2),
                schema: Some(0),
                positive_span: vec![BucketSpan {
                    offset: Some(0),
                    length: Some(3),
                }],
                positive_delta: vec![2],
                ..ProtoHistogram::default()
            }),
            ..Metric::default()
        };
        let on = Options {
            native_histograms: true,
            ..Options::default()
        };
        let e = convert(&encode_delimited(&[fam("n", 4, vec![m])]), on).unwrap_err();
        assert_eq!(
            e.field,
            "MetricFamily \"n\" metric[0].histogram.positive_span"
        );
        assert_eq!(
            e.message,
            "histogram \"n\": positive side: spans require 3 buckets, have 1"
        );
    }

    /// Prometheus 3 reads UTF-8 metric and label names from protobuf; the
    /// converted text writes them in the quoted syntax the text parser
    /// reads back to the same labels.
    #[test]
    fn utf8_names_become_quoted_text() {
        let m = Metric {
            label: vec![lp("my.label", "v\"1"), lp("ok", "2")],
            gauge: Some(Gauge { value: Some(1.0) }),
            ..Metric::default()
        };
        let bare = Metric {
            gauge: Some(Gauge { value: Some(2.0) }),
            ..Metric::default()
        };
        let sum = Metric {
            summary: Some(Summary {
                sample_count: Some(1),
                sample_sum: Some(3.0),
                ..Summary::default()
            }),
            ..Metric::default()
        };
        let buf = encode_delimited(&[
            fam("my.gauge", 1, vec![m, bare]),
            fam("req.latency", 2, vec![sum]),
        ]);
        let c = convert(&buf, Options::default()).unwrap();
        let text = String::from_utf8(c.text.clone()).unwrap();
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                r#"{"my.gauge","my.label"="v\"1",ok="2"} 1.0"#,
                r#"{"my.gauge"} 2.0"#,
                r#"{"req.latency_count"} 1.0"#,
                r#"{"req.latency_sum"} 3.0"#,
            ]
        );
        let mut p = crate::scrape::parser::Parser::new(
            &c.text,
            crate::scrape::parser::Format::PrometheusText,
        );
        let mut got = Vec::new();
        while let Some(e) = p.next().unwrap() {
            if let crate::scrape::parser::Entry::Sample(s) = e {
                let mut b = crate::model::LabelsBuilder::new();
                s.labels_into(&mut b);
                got.push(b.build().go_string());
            }
        }
        assert_eq!(
            got,
            [
                r#"{__name__="my.gauge", "my.label"="v\"1", ok="2"}"#,
                r#"{__name__="my.gauge"}"#,
                r#"{__name__="req.latency_count"}"#,
                r#"{__name__="req.latency_sum"}"#,
            ]
        );
    }

    #[test]
    fn errors_name_offset_and_field() {
        let good = encode_delimited(&[fam("a", 1, vec![Metric::default()])]);
        let mut buf = good.clone();
        buf.extend_from_slice(&encode_delimited(&[fam("", 1, vec![Metric::default()])]));
        let e = convert(&buf, Options::default()).unwrap_err();
        assert_eq!(e.offset, good.len());
        assert_eq!(e.field, "MetricFamily.name");
        // Truncated message.
        let mut t = good.clone();
        t.truncate(good.len() - 1);
        let e = convert(&t, Options::default()).unwrap_err();
        assert_eq!((e.offset, e.field.as_str()), (0, "length prefix"));
        assert!(e.to_string().contains("runs past the end"), "{e}");
        // Garbage inside a message names the protobuf field path.
        let bad = [3u8, 0x22, 0x01, 0xff];
        let e = convert(&bad, Options::default()).unwrap_err();
        assert_eq!(e.field, "MetricFamily");
        // Oversized length prefix.
        let e = convert(&[0xff, 0xff, 0xff, 0xff, 0x7f], Options::default()).unwrap_err();
        assert!(e.message.contains("exceeds the limit"), "{e}");
        // Bad (empty) label name and unit.
        let m = Metric {
            label: vec![lp("", "v")],
            ..Metric::default()
        };
        let e = convert(
            &encode_delimited(&[fam("a", 1, vec![m])]),
            Options::default(),
        )
        .unwrap_err();
        assert_eq!(e.field, "MetricFamily \"a\" metric[0].label[0].name");
        let mut f = fam("a_bytes", 1, vec![Metric::default()]);
        f.unit = Some("seconds".into());
        let e = convert(&encode_delimited(&[f]), Options::default()).unwrap_err();
        assert_eq!(e.field, "MetricFamily.unit");
    }

    #[test]
    fn om_floats_like_prometheus() {
        assert_eq!(format_om_float(1.0), "1.0");
        assert_eq!(format_om_float(0.25), "0.25");
        assert_eq!(format_om_float(1e21), "1e+21");
        assert_eq!(format_om_float(100000.0), "100000.0");
        assert_eq!(format_om_float(f64::INFINITY), "+Inf");
    }
}
