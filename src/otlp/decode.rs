//! Protobuf decoding of `ExportMetricsServiceRequest`: the subset of
//! opentelemetry-proto's metrics messages the translation reads. Field
//! numbers are those of `opentelemetry/proto/metrics/v1/metrics.proto`,
//! `common/v1/common.proto` and `resource/v1/resource.proto`; unknown fields
//! are skipped as protobuf requires.
//!
//! Errors name the byte offset and the field path
//! (`resource_metrics[0].scope_metrics[1].metrics[2].sum.data_points[0]`).
//! Nesting of attribute values (arrays and key-value lists inside attribute
//! values) is bounded by [`MAX_VALUE_DEPTH`], so a hostile body cannot
//! exhaust the stack.

use crate::remote::proto::{Err, Problem, Reader, FIXED64, LEN, VARINT};

/// Deepest nesting of `AnyValue` arrays and maps accepted.
pub const MAX_VALUE_DEPTH: usize = 16;

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("protobuf: byte {offset}: {field}: {problem}")]
pub struct DecodeError {
    pub offset: usize,
    pub field: String,
    pub problem: String,
}

impl From<Err> for DecodeError {
    fn from(e: Err) -> Self {
        let field = if e.path.is_empty() {
            "ExportMetricsServiceRequest".to_string()
        } else {
            let mut parts = e.path;
            parts.reverse();
            parts.join(".")
        };
        DecodeError {
            offset: e.offset,
            field,
            problem: e.problem.to_string(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExportRequest {
    pub resource_metrics: Vec<ResourceMetrics>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceMetrics {
    /// `resource.attributes`.
    pub resource: Vec<KeyValue>,
    pub scope_metrics: Vec<ScopeMetrics>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeMetrics {
    pub scope_name: String,
    pub scope_version: String,
    pub metrics: Vec<Metric>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Metric {
    pub name: String,
    pub description: String,
    pub unit: String,
    pub data: Option<Data>,
}

/// `AggregationTemporality`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Temporality {
    #[default]
    Unspecified,
    Delta,
    Cumulative,
}

impl Temporality {
    fn from_wire(v: u64) -> Temporality {
        match v {
            1 => Temporality::Delta,
            2 => Temporality::Cumulative,
            _ => Temporality::Unspecified,
        }
    }
}

/// The metric's `data` oneof.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    Gauge(Vec<NumberPoint>),
    Sum {
        points: Vec<NumberPoint>,
        temporality: Temporality,
        monotonic: bool,
    },
    Histogram {
        points: Vec<HistogramPoint>,
        temporality: Temporality,
    },
    ExponentialHistogram {
        points: Vec<ExpHistogramPoint>,
        temporality: Temporality,
    },
    Summary(Vec<SummaryPoint>),
}

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`: the point marks the series gone.
pub const FLAG_NO_RECORDED_VALUE: u32 = 1;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct NumberPoint {
    pub attributes: Vec<KeyValue>,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    /// `as_double`, or `as_int` converted.
    pub value: f64,
    pub flags: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramPoint {
    pub attributes: Vec<KeyValue>,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub count: u64,
    pub sum: Option<f64>,
    pub bucket_counts: Vec<u64>,
    pub explicit_bounds: Vec<f64>,
    pub flags: u32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    pub offset: i32,
    pub bucket_counts: Vec<u64>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExpHistogramPoint {
    pub attributes: Vec<KeyValue>,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub count: u64,
    pub sum: Option<f64>,
    pub scale: i32,
    pub zero_count: u64,
    pub positive: Buckets,
    pub negative: Buckets,
    pub flags: u32,
    pub zero_threshold: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct SummaryPoint {
    pub attributes: Vec<KeyValue>,
    pub start_time_unix_nano: u64,
    pub time_unix_nano: u64,
    pub count: u64,
    pub sum: f64,
    /// `(quantile, value)` pairs.
    pub quantiles: Vec<(f64, f64)>,
    pub flags: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct KeyValue {
    pub key: String,
    pub value: AnyValue,
}

/// `AnyValue`; an unset value is `Empty`.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum AnyValue {
    #[default]
    Empty,
    Str(String),
    Bool(bool),
    Int(i64),
    Double(f64),
    Array(Vec<AnyValue>),
    KvList(Vec<KeyValue>),
    Bytes(Vec<u8>),
}

impl AnyValue {
    /// The value as a label value, as the collector's `AsString` renders it:
    /// strings as is, numbers in Go's shortest form, bytes in base64,
    /// arrays and maps as JSON.
    pub fn as_label_value(&self) -> String {
        match self {
            AnyValue::Empty => String::new(),
            AnyValue::Str(s) => s.clone(),
            AnyValue::Bool(b) => b.to_string(),
            AnyValue::Int(i) => i.to_string(),
            AnyValue::Double(d) => crate::model::gofmt::format_float(*d),
            AnyValue::Bytes(b) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(b)
            }
            AnyValue::Array(_) | AnyValue::KvList(_) => self.to_json().to_string(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            AnyValue::Empty => Value::Null,
            AnyValue::Str(s) => Value::String(s.clone()),
            AnyValue::Bool(b) => Value::Bool(*b),
            AnyValue::Int(i) => Value::from(*i),
            AnyValue::Double(d) => serde_json::Number::from_f64(*d)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(crate::model::gofmt::format_float(*d))),
            AnyValue::Bytes(_) => Value::String(self.as_label_value()),
            AnyValue::Array(a) => Value::Array(a.iter().map(AnyValue::to_json).collect()),
            AnyValue::KvList(kv) => Value::Object(
                kv.iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

impl ExportRequest {
    /// Decodes a protobuf `ExportMetricsServiceRequest`.
    pub fn decode(buf: &[u8]) -> Result<ExportRequest, DecodeError> {
        let mut out = ExportRequest::default();
        let mut r = Reader::new(buf, 0);
        while !r.done() {
            let at = r.offset();
            let (field, wire) = r.tag()?;
            if field == 1 {
                let i = out.resource_metrics.len();
                r.expect(at, wire, LEN)
                    .map_err(|e| e.within(format!("resource_metrics[{i}]")))?;
                let (b, base) = r
                    .bytes()
                    .map_err(|e| e.within(format!("resource_metrics[{i}]")))?;
                let rm = resource_metrics(b, base)
                    .map_err(|e| e.within(format!("resource_metrics[{i}]")))?;
                out.resource_metrics.push(rm);
            } else {
                r.skip(wire)?;
            }
        }
        Ok(out)
    }
}

/// Walks the fields of one message, giving `f` each field number, wire
/// type, the field's start offset and the reader positioned on its value.
fn fields<'a>(
    buf: &'a [u8],
    base: usize,
    mut f: impl FnMut(u64, u8, usize, &mut Reader<'a>) -> Result<bool, Err>,
) -> Result<(), Err> {
    let mut r = Reader::new(buf, base);
    while !r.done() {
        let at = r.offset();
        let (field, wire) = r.tag()?;
        if !f(field, wire, at, &mut r)? {
            r.skip(wire)?;
        }
    }
    Ok(())
}

/// A length-delimited submessage decoded by `dec`, its errors placed under
/// `name`.
fn sub<'a, T>(
    r: &mut Reader<'a>,
    at: usize,
    wire: u8,
    name: impl Fn() -> String,
    dec: impl FnOnce(&'a [u8], usize) -> Result<T, Err>,
) -> Result<T, Err> {
    r.expect(at, wire, LEN).map_err(|e| e.within(name()))?;
    let (b, base) = r.bytes().map_err(|e| e.within(name()))?;
    dec(b, base).map_err(|e| e.within(name()))
}

fn string_field(r: &mut Reader<'_>, at: usize, wire: u8, name: &str) -> Result<String, Err> {
    r.expect(at, wire, LEN).map_err(|e| e.within(name))?;
    r.string().map_err(|e| e.within(name))
}

fn varint_field(r: &mut Reader<'_>, at: usize, wire: u8, name: &str) -> Result<u64, Err> {
    r.expect(at, wire, VARINT).map_err(|e| e.within(name))?;
    r.varint().map_err(|e| e.within(name))
}

fn fixed64_field(r: &mut Reader<'_>, at: usize, wire: u8, name: &str) -> Result<u64, Err> {
    r.expect(at, wire, FIXED64).map_err(|e| e.within(name))?;
    r.fixed64().map_err(|e| e.within(name))
}

fn double_field(r: &mut Reader<'_>, at: usize, wire: u8, name: &str) -> Result<f64, Err> {
    fixed64_field(r, at, wire, name).map(f64::from_bits)
}

/// A repeated 64-bit field, packed (one length-delimited run) or not; the
/// element encoding is fixed64 or varint as `elem_wire` says.
fn repeated_u64(
    r: &mut Reader<'_>,
    at: usize,
    wire: u8,
    elem_wire: u8,
    name: &str,
    out: &mut Vec<u64>,
) -> Result<(), Err> {
    let one = |r: &mut Reader<'_>| -> Result<u64, Err> {
        if elem_wire == FIXED64 {
            r.fixed64()
        } else {
            r.varint()
        }
    };
    if wire == LEN {
        let (b, base) = r.bytes().map_err(|e| e.within(name))?;
        let mut inner = Reader::new(b, base);
        while !inner.done() {
            out.push(one(&mut inner).map_err(|e| e.within(name))?);
        }
        Ok(())
    } else {
        r.expect(at, wire, elem_wire).map_err(|e| e.within(name))?;
        out.push(one(r).map_err(|e| e.within(name))?);
        Ok(())
    }
}

fn resource_metrics(buf: &[u8], base: usize) -> Result<ResourceMetrics, Err> {
    let mut out = ResourceMetrics::default();
    fields(buf, base, |field, wire, at, r| {
        match field {
            1 => {
                let attrs = sub(r, at, wire, || "resource".into(), resource)?;
                out.resource.extend(attrs);
            }
            2 => {
                let i = out.scope_metrics.len();
                let sm = sub(r, at, wire, || format!("scope_metrics[{i}]"), scope_metrics)?;
                out.scope_metrics.push(sm);
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(out)
}

fn resource(buf: &[u8], base: usize) -> Result<Vec<KeyValue>, Err> {
    let mut out = Vec::new();
    fields(buf, base, |field, wire, at, r| {
        if field != 1 {
            return Ok(false);
        }
        let i = out.len();
        out.push(sub(
            r,
            at,
            wire,
            || format!("attributes[{i}]"),
            |b, o| key_value(b, o, 0),
        )?);
        Ok(true)
    })?;
    Ok(out)
}

fn scope_metrics(buf: &[u8], base: usize) -> Result<ScopeMetrics, Err> {
    let mut out = ScopeMetrics::default();
    fields(buf, base, |field, wire, at, r| {
        match field {
            1 => {
                let (name, version) = sub(r, at, wire, || "scope".into(), scope)?;
                out.scope_name = name;
                out.scope_version = version;
            }
            2 => {
                let i = out.metrics.len();
                let m = sub(r, at, wire, || format!("metrics[{i}]"), metric)?;
                out.metrics.push(m);
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(out)
}

fn scope(buf: &[u8], base: usize) -> Result<(String, String), Err> {
    let (mut name, mut version) = (String::new(), String::new());
    fields(buf, base, |field, wire, at, r| {
        match field {
            1 => name = string_field(r, at, wire, "name")?,
            2 => version = string_field(r, at, wire, "version")?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok((name, version))
}

fn metric(buf: &[u8], base: usize) -> Result<Metric, Err> {
    let mut out = Metric::default();
    fields(buf, base, |field, wire, at, r| {
        match field {
            1 => out.name = string_field(r, at, wire, "name")?,
            2 => out.description = string_field(r, at, wire, "description")?,
            3 => out.unit = string_field(r, at, wire, "unit")?,
            5 => {
                let (points, _, _) = sub(
                    r,
                    at,
                    wire,
                    || "gauge".into(),
                    |b, o| number_data(b, o, false),
                )?;
                out.data = Some(Data::Gauge(points));
            }
            7 => {
                let (points, temporality, monotonic) =
                    sub(r, at, wire, || "sum".into(), |b, o| number_data(b, o, true))?;
                out.data = Some(Data::Sum {
                    points,
                    temporality,
                    monotonic,
                });
            }
            9 => {
                let (points, temporality) = sub(
                    r,
                    at,
                    wire,
                    || "histogram".into(),
                    |b, o| points_with_temporality(b, o, histogram_point),
                )?;
                out.data = Some(Data::Histogram {
                    points,
                    temporality,
                });
            }
            10 => {
                let (points, temporality) = sub(
                    r,
                    at,
                    wire,
                    || "exponential_histogram".into(),
                    |b, o| points_with_temporality(b, o, exp_histogram_point),
                )?;
                out.data = Some(Data::ExponentialHistogram {
                    points,
                    temporality,
                });
            }
            11 => {
                let (points, _) = sub(
                    r,
                    at,
                    wire,
                    || "summary".into(),
                    |b, o| points_with_temporality(b, o, summary_point),
                )?;
                out.data = Some(Data::Summary(points));
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(out)
}

/// `Gauge` or `Sum`: points (1), and for a sum the temporality (2) and
/// `is_monotonic` (3).
fn number_data(
    buf: &[u8],
    base: usize,
    is_sum: bool,
) -> Result<(Vec<NumberPoint>, Temporality, bool), Err> {
    let mut points = Vec::new();
    let mut temporality = Temporality::Unspecified;
    let mut monotonic = false;
    fields(buf, base, |field, wire, at, r| {
        match field {
            1 => {
                let i = points.len();
                points.push(sub(
                    r,
                    at,
                    wire,
                    || format!("data_points[{i}]"),
                    number_point,
                )?);
            }
            2 if is_sum => {
                temporality =
                    Temporality::from_wire(varint_field(r, at, wire, "aggregation_temporality")?)
            }
            3 if is_sum => monotonic = varint_field(r, at, wire, "is_monotonic")? != 0,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok((points, temporality, monotonic))
}

/// Histogram, exponential histogram and summary messages: points (1) and
/// the temporality (2; absent from summaries, so left unspecified).
fn points_with_temporality<T>(
    buf: &[u8],
    base: usize,
    point: fn(&[u8], usize) -> Result<T, Err>,
) -> Result<(Vec<T>, Temporality), Err> {
    let mut points = Vec::new();
    let mut temporality = Temporality::Unspecified;
    fields(buf, base, |field, wire, at, r| {
        match field {
            1 => {
                let i = points.len();
                points.push(sub(r, at, wire, || format!("data_points[{i}]"), point)?);
            }
            2 => {
                temporality =
                    Temporality::from_wire(varint_field(r, at, wire, "aggregation_temporality")?)
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok((points, temporality))
}

fn attribute(r: &mut Reader<'_>, at: usize, wire: u8, out: &mut Vec<KeyValue>) -> Result<(), Err> {
    let i = out.len();
    out.push(sub(
        r,
        at,
        wire,
        || format!("attributes[{i}]"),
        |b, o| key_value(b, o, 0),
    )?);
    Ok(())
}

fn number_point(buf: &[u8], base: usize) -> Result<NumberPoint, Err> {
    let mut p = NumberPoint::default();
    fields(buf, base, |field, wire, at, r| {
        match field {
            7 => attribute(r, at, wire, &mut p.attributes)?,
            2 => p.start_time_unix_nano = fixed64_field(r, at, wire, "start_time_unix_nano")?,
            3 => p.time_unix_nano = fixed64_field(r, at, wire, "time_unix_nano")?,
            4 => p.value = double_field(r, at, wire, "as_double")?,
            6 => p.value = fixed64_field(r, at, wire, "as_int")? as i64 as f64,
            8 => p.flags = varint_field(r, at, wire, "flags")? as u32,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(p)
}

fn histogram_point(buf: &[u8], base: usize) -> Result<HistogramPoint, Err> {
    let mut p = HistogramPoint::default();
    fields(buf, base, |field, wire, at, r| {
        match field {
            9 => attribute(r, at, wire, &mut p.attributes)?,
            2 => p.start_time_unix_nano = fixed64_field(r, at, wire, "start_time_unix_nano")?,
            3 => p.time_unix_nano = fixed64_field(r, at, wire, "time_unix_nano")?,
            4 => p.count = fixed64_field(r, at, wire, "count")?,
            5 => p.sum = Some(double_field(r, at, wire, "sum")?),
            6 => repeated_u64(r, at, wire, FIXED64, "bucket_counts", &mut p.bucket_counts)?,
            7 => {
                let mut bits = Vec::new();
                repeated_u64(r, at, wire, FIXED64, "explicit_bounds", &mut bits)?;
                p.explicit_bounds
                    .extend(bits.into_iter().map(f64::from_bits));
            }
            10 => p.flags = varint_field(r, at, wire, "flags")? as u32,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(p)
}

fn exp_histogram_point(buf: &[u8], base: usize) -> Result<ExpHistogramPoint, Err> {
    let mut p = ExpHistogramPoint::default();
    fields(buf, base, |field, wire, at, r| {
        match field {
            1 => attribute(r, at, wire, &mut p.attributes)?,
            2 => p.start_time_unix_nano = fixed64_field(r, at, wire, "start_time_unix_nano")?,
            3 => p.time_unix_nano = fixed64_field(r, at, wire, "time_unix_nano")?,
            4 => p.count = fixed64_field(r, at, wire, "count")?,
            5 => p.sum = Some(double_field(r, at, wire, "sum")?),
            6 => p.scale = zigzag32(varint_field(r, at, wire, "scale")?),
            7 => p.zero_count = fixed64_field(r, at, wire, "zero_count")?,
            8 => p.positive = sub(r, at, wire, || "positive".into(), buckets)?,
            9 => p.negative = sub(r, at, wire, || "negative".into(), buckets)?,
            10 => p.flags = varint_field(r, at, wire, "flags")? as u32,
            14 => p.zero_threshold = double_field(r, at, wire, "zero_threshold")?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(p)
}

fn zigzag32(v: u64) -> i32 {
    let v = v as u32;
    ((v >> 1) as i32) ^ -((v & 1) as i32)
}

fn buckets(buf: &[u8], base: usize) -> Result<Buckets, Err> {
    let mut b = Buckets::default();
    fields(buf, base, |field, wire, at, r| {
        match field {
            1 => b.offset = zigzag32(varint_field(r, at, wire, "offset")?),
            2 => repeated_u64(r, at, wire, VARINT, "bucket_counts", &mut b.bucket_counts)?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(b)
}

fn summary_point(buf: &[u8], base: usize) -> Result<SummaryPoint, Err> {
    let mut p = SummaryPoint::default();
    fields(buf, base, |field, wire, at, r| {
        match field {
            7 => attribute(r, at, wire, &mut p.attributes)?,
            2 => p.start_time_unix_nano = fixed64_field(r, at, wire, "start_time_unix_nano")?,
            3 => p.time_unix_nano = fixed64_field(r, at, wire, "time_unix_nano")?,
            4 => p.count = fixed64_field(r, at, wire, "count")?,
            5 => p.sum = double_field(r, at, wire, "sum")?,
            6 => {
                let i = p.quantiles.len();
                let q = sub(r, at, wire, || format!("quantile_values[{i}]"), quantile)?;
                p.quantiles.push(q);
            }
            8 => p.flags = varint_field(r, at, wire, "flags")? as u32,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(p)
}

fn quantile(buf: &[u8], base: usize) -> Result<(f64, f64), Err> {
    let (mut q, mut v) = (0.0, 0.0);
    fields(buf, base, |field, wire, at, r| {
        match field {
            1 => q = double_field(r, at, wire, "quantile")?,
            2 => v = double_field(r, at, wire, "value")?,
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok((q, v))
}

fn key_value(buf: &[u8], base: usize, depth: usize) -> Result<KeyValue, Err> {
    let mut kv = KeyValue {
        key: String::new(),
        value: AnyValue::Empty,
    };
    fields(buf, base, |field, wire, at, r| {
        match field {
            1 => kv.key = string_field(r, at, wire, "key")?,
            2 => {
                kv.value = sub(
                    r,
                    at,
                    wire,
                    || "value".into(),
                    |b, o| any_value(b, o, depth + 1),
                )?
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(kv)
}

fn any_value(buf: &[u8], base: usize, depth: usize) -> Result<AnyValue, Err> {
    if depth > MAX_VALUE_DEPTH {
        return Err(Err::at(base, Problem::NestedTooDeep(MAX_VALUE_DEPTH)));
    }
    let mut v = AnyValue::Empty;
    fields(buf, base, |field, wire, at, r| {
        match field {
            1 => v = AnyValue::Str(string_field(r, at, wire, "string_value")?),
            2 => v = AnyValue::Bool(varint_field(r, at, wire, "bool_value")? != 0),
            3 => v = AnyValue::Int(varint_field(r, at, wire, "int_value")? as i64),
            4 => v = AnyValue::Double(double_field(r, at, wire, "double_value")?),
            5 => {
                let items = sub(
                    r,
                    at,
                    wire,
                    || "array_value".into(),
                    |b, o| {
                        let mut items = Vec::new();
                        fields(b, o, |f, w, a, r| {
                            if f != 1 {
                                return Ok(false);
                            }
                            let i = items.len();
                            items.push(sub(
                                r,
                                a,
                                w,
                                || format!("values[{i}]"),
                                |b, o| any_value(b, o, depth + 1),
                            )?);
                            Ok(true)
                        })?;
                        Ok(items)
                    },
                )?;
                v = AnyValue::Array(items);
            }
            6 => {
                let kvs = sub(
                    r,
                    at,
                    wire,
                    || "kvlist_value".into(),
                    |b, o| {
                        let mut kvs = Vec::new();
                        fields(b, o, |f, w, a, r| {
                            if f != 1 {
                                return Ok(false);
                            }
                            let i = kvs.len();
                            kvs.push(sub(
                                r,
                                a,
                                w,
                                || format!("values[{i}]"),
                                |b, o| key_value(b, o, depth + 1),
                            )?);
                            Ok(true)
                        })?;
                        Ok(kvs)
                    },
                )?;
                v = AnyValue::KvList(kvs);
            }
            7 => {
                r.expect(at, wire, LEN)
                    .map_err(|e| e.within("bytes_value"))?;
                let (b, _) = r.bytes().map_err(|e| e.within("bytes_value"))?;
                v = AnyValue::Bytes(b.to_vec());
            }
            _ => return Ok(false),
        }
        Ok(true)
    })?;
    Ok(v)
}
