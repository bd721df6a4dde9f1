//! Protobuf decoding of `ExportMetricsServiceRequest` with `prost`: the
//! structs below are the subset of opentelemetry-proto's messages the
//! translation reads (`collector/metrics/v1/metrics_service.proto`,
//! `metrics/v1/metrics.proto`, `common/v1/common.proto`,
//! `resource/v1/resource.proto`), with their field numbers; fields not
//! declared here (schema URLs, dropped-attribute counts, min/max, metric
//! metadata) are skipped as protobuf requires.
//!
//! Bounds: a body is at most [`super::MAX_REQUEST_BYTES`]; nesting (of
//! `AnyValue` arrays and maps inside attribute values) is limited by prost's
//! recursion limit of 100 messages, so a hostile body cannot exhaust the
//! stack.
//!
//! A body that does not decode is a [`DecodeError`] naming the byte offset
//! where decoding stopped and the field path, with indices for repeated
//! messages and the member's name for oneofs
//! (`resource_metrics[0].scope_metrics[1].metrics[2].sum.data_points[0].as_int`):
//! prost reports the fields it was in, and [`locate`] walks the body once
//! more to the offset to count the repeated elements before it.

use super::json;
use prost::Message as _;

/// Why a body could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{format}: byte {offset}: {field}: {problem}")]
pub struct DecodeError {
    /// `protobuf` or `json`.
    pub format: &'static str,
    /// Where decoding stopped (bytes from the start of the body).
    pub offset: usize,
    /// The field path from the request down (`ExportMetricsServiceRequest`
    /// for the request itself).
    pub field: String,
    pub problem: String,
}

impl DecodeError {
    /// A body over [`super::MAX_REQUEST_BYTES`].
    pub(super) fn too_large(format: &'static str, len: usize) -> DecodeError {
        DecodeError {
            format,
            offset: super::MAX_REQUEST_BYTES,
            field: "ExportMetricsServiceRequest".into(),
            problem: format!(
                "request of {len} bytes exceeds the limit of {}",
                super::MAX_REQUEST_BYTES
            ),
        }
    }
}

/// `ExportMetricsServiceRequest`.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExportRequest {
    #[prost(message, repeated, tag = "1")]
    pub resource_metrics: Vec<ResourceMetrics>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceMetrics {
    #[prost(message, optional, tag = "1")]
    pub resource: Option<Resource>,
    #[prost(message, repeated, tag = "2")]
    pub scope_metrics: Vec<ScopeMetrics>,
}

impl ResourceMetrics {
    /// The resource's attributes.
    pub fn attributes(&self) -> &[KeyValue] {
        self.resource.as_ref().map_or(&[], |r| &r.attributes)
    }
}

#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Resource {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ScopeMetrics {
    #[prost(message, optional, tag = "1")]
    pub scope: Option<Scope>,
    #[prost(message, repeated, tag = "2")]
    pub metrics: Vec<Metric>,
}

/// `InstrumentationScope`.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Scope {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub version: String,
}

#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(from = "json::MetricJson")]
pub struct Metric {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub description: String,
    #[prost(string, tag = "3")]
    pub unit: String,
    #[prost(oneof = "Data", tags = "5, 7, 9, 10, 11")]
    pub data: Option<Data>,
}

/// The metric's `data` oneof.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Data {
    #[prost(message, tag = "5")]
    Gauge(GaugeData),
    #[prost(message, tag = "7")]
    Sum(SumData),
    #[prost(message, tag = "9")]
    Histogram(HistogramData),
    #[prost(message, tag = "10")]
    ExponentialHistogram(ExpHistogramData),
    #[prost(message, tag = "11")]
    Summary(SummaryData),
}

/// `AggregationTemporality` values.
pub mod temporality {
    pub const UNSPECIFIED: i32 = 0;
    pub const DELTA: i32 = 1;
    pub const CUMULATIVE: i32 = 2;
}

/// `Gauge`.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct GaugeData {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<NumberPoint>,
}

/// `Sum`.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SumData {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<NumberPoint>,
    /// See [`temporality`].
    #[prost(int32, tag = "2")]
    pub aggregation_temporality: i32,
    #[prost(bool, tag = "3")]
    pub is_monotonic: bool,
}

/// `Histogram`.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HistogramData {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<HistogramPoint>,
    #[prost(int32, tag = "2")]
    pub aggregation_temporality: i32,
}

/// `ExponentialHistogram`.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExpHistogramData {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<ExpHistogramPoint>,
    #[prost(int32, tag = "2")]
    pub aggregation_temporality: i32,
}

/// `Summary`.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SummaryData {
    #[prost(message, repeated, tag = "1")]
    pub data_points: Vec<SummaryPoint>,
}

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`: the point marks the series gone.
pub const FLAG_NO_RECORDED_VALUE: u32 = 1;

/// `NumberDataPoint`.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(from = "json::NumberPointJson")]
pub struct NumberPoint {
    #[prost(message, repeated, tag = "7")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "3")]
    pub time_unix_nano: u64,
    #[prost(oneof = "NumberValue", tags = "4, 6")]
    pub value: Option<NumberValue>,
    #[prost(message, repeated, tag = "5")]
    pub exemplars: Vec<Exemplar>,
    #[prost(uint32, tag = "8")]
    pub flags: u32,
}

/// `NumberDataPoint.value`.
#[derive(Clone, Copy, PartialEq, prost::Oneof)]
pub enum NumberValue {
    #[prost(double, tag = "4")]
    AsDouble(f64),
    #[prost(sfixed64, tag = "6")]
    AsInt(i64),
}

impl NumberPoint {
    /// `as_double`, or `as_int` converted; 0 when unset.
    pub fn value(&self) -> f64 {
        match self.value {
            Some(NumberValue::AsDouble(v)) => v,
            Some(NumberValue::AsInt(v)) => v as f64,
            None => 0.0,
        }
    }
}

/// `HistogramDataPoint`.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct HistogramPoint {
    #[prost(message, repeated, tag = "9")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    #[serde(deserialize_with = "json::u64_any")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "3")]
    #[serde(deserialize_with = "json::u64_any")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "4")]
    #[serde(deserialize_with = "json::u64_any")]
    pub count: u64,
    #[prost(double, optional, tag = "5")]
    #[serde(deserialize_with = "json::opt_f64_any")]
    pub sum: Option<f64>,
    #[prost(fixed64, repeated, tag = "6")]
    #[serde(deserialize_with = "json::vec_u64_any")]
    pub bucket_counts: Vec<u64>,
    #[prost(double, repeated, tag = "7")]
    #[serde(deserialize_with = "json::vec_f64_any")]
    pub explicit_bounds: Vec<f64>,
    #[prost(message, repeated, tag = "8")]
    pub exemplars: Vec<Exemplar>,
    #[prost(uint32, tag = "10")]
    pub flags: u32,
}

/// `ExponentialHistogramDataPoint` (`min` and `max` are not read: Prometheus
/// drops them).
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ExpHistogramPoint {
    #[prost(message, repeated, tag = "1")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    #[serde(deserialize_with = "json::u64_any")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "3")]
    #[serde(deserialize_with = "json::u64_any")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "4")]
    #[serde(deserialize_with = "json::u64_any")]
    pub count: u64,
    #[prost(double, optional, tag = "5")]
    #[serde(deserialize_with = "json::opt_f64_any")]
    pub sum: Option<f64>,
    #[prost(sint32, tag = "6")]
    pub scale: i32,
    #[prost(fixed64, tag = "7")]
    #[serde(deserialize_with = "json::u64_any")]
    pub zero_count: u64,
    #[prost(message, optional, tag = "8")]
    pub positive: Option<Buckets>,
    #[prost(message, optional, tag = "9")]
    pub negative: Option<Buckets>,
    #[prost(uint32, tag = "10")]
    pub flags: u32,
    #[prost(message, repeated, tag = "11")]
    pub exemplars: Vec<Exemplar>,
    #[prost(double, tag = "14")]
    #[serde(deserialize_with = "json::f64_any")]
    pub zero_threshold: f64,
}

/// `ExponentialHistogramDataPoint.Buckets`: dense counts from `offset`.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Buckets {
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    #[prost(uint64, repeated, tag = "2")]
    #[serde(deserialize_with = "json::vec_u64_any")]
    pub bucket_counts: Vec<u64>,
}

/// `SummaryDataPoint`.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SummaryPoint {
    #[prost(message, repeated, tag = "7")]
    pub attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    #[serde(deserialize_with = "json::u64_any")]
    pub start_time_unix_nano: u64,
    #[prost(fixed64, tag = "3")]
    #[serde(deserialize_with = "json::u64_any")]
    pub time_unix_nano: u64,
    #[prost(fixed64, tag = "4")]
    #[serde(deserialize_with = "json::u64_any")]
    pub count: u64,
    #[prost(double, tag = "5")]
    #[serde(deserialize_with = "json::f64_any")]
    pub sum: f64,
    #[prost(message, repeated, tag = "6")]
    pub quantile_values: Vec<ValueAtQuantile>,
    #[prost(uint32, tag = "8")]
    pub flags: u32,
}

/// `SummaryDataPoint.ValueAtQuantile`.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ValueAtQuantile {
    #[prost(double, tag = "1")]
    #[serde(deserialize_with = "json::f64_any")]
    pub quantile: f64,
    #[prost(double, tag = "2")]
    #[serde(deserialize_with = "json::f64_any")]
    pub value: f64,
}

/// `Exemplar`.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(from = "json::ExemplarJson")]
pub struct Exemplar {
    #[prost(message, repeated, tag = "7")]
    pub filtered_attributes: Vec<KeyValue>,
    #[prost(fixed64, tag = "2")]
    pub time_unix_nano: u64,
    #[prost(oneof = "ExemplarValue", tags = "3, 6")]
    pub value: Option<ExemplarValue>,
    #[prost(bytes = "vec", tag = "4")]
    pub span_id: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    pub trace_id: Vec<u8>,
}

/// `Exemplar.value`.
#[derive(Clone, Copy, PartialEq, prost::Oneof)]
pub enum ExemplarValue {
    #[prost(double, tag = "3")]
    AsDouble(f64),
    #[prost(sfixed64, tag = "6")]
    AsInt(i64),
}

#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KeyValue {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(message, optional, tag = "2")]
    pub value: Option<AnyValue>,
}

impl KeyValue {
    /// The value as a label value (empty when unset).
    pub fn value_string(&self) -> String {
        self.value
            .as_ref()
            .map(AnyValue::as_label_value)
            .unwrap_or_default()
    }
}

/// `AnyValue`.
#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(from = "json::AnyValueJson")]
pub struct AnyValue {
    #[prost(oneof = "Value", tags = "1, 2, 3, 4, 5, 6, 7")]
    pub value: Option<Value>,
}

/// `AnyValue.value`.
#[derive(Clone, PartialEq, prost::Oneof)]
pub enum Value {
    #[prost(string, tag = "1")]
    Str(String),
    #[prost(bool, tag = "2")]
    Bool(bool),
    #[prost(int64, tag = "3")]
    Int(i64),
    #[prost(double, tag = "4")]
    Double(f64),
    #[prost(message, tag = "5")]
    Array(ArrayValue),
    #[prost(message, tag = "6")]
    KvList(KeyValueList),
    #[prost(bytes = "vec", tag = "7")]
    Bytes(Vec<u8>),
}

#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ArrayValue {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<AnyValue>,
}

#[derive(Clone, PartialEq, prost::Message, serde::Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct KeyValueList {
    #[prost(message, repeated, tag = "1")]
    pub values: Vec<KeyValue>,
}

impl AnyValue {
    /// A string value.
    pub fn string(s: impl Into<String>) -> AnyValue {
        AnyValue {
            value: Some(Value::Str(s.into())),
        }
    }

    /// The value as a label value, as the collector's `AsString` renders it:
    /// strings as is, numbers in Go's shortest form, bytes in base64,
    /// arrays and maps as JSON.
    pub fn as_label_value(&self) -> String {
        match &self.value {
            None => String::new(),
            Some(Value::Str(s)) => s.clone(),
            Some(Value::Bool(b)) => b.to_string(),
            Some(Value::Int(i)) => i.to_string(),
            Some(Value::Double(d)) => crate::model::gofmt::format_float(*d),
            Some(Value::Bytes(b)) => {
                use base64::Engine;
                base64::engine::general_purpose::STANDARD.encode(b)
            }
            Some(Value::Array(_)) | Some(Value::KvList(_)) => self.to_json().to_string(),
        }
    }

    fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            None => J::Null,
            Some(Value::Str(s)) => J::String(s.clone()),
            Some(Value::Bool(b)) => J::Bool(*b),
            Some(Value::Int(i)) => J::from(*i),
            Some(Value::Double(d)) => serde_json::Number::from_f64(*d)
                .map(J::Number)
                .unwrap_or_else(|| J::String(crate::model::gofmt::format_float(*d))),
            Some(Value::Bytes(_)) => J::String(self.as_label_value()),
            Some(Value::Array(a)) => J::Array(a.values.iter().map(AnyValue::to_json).collect()),
            Some(Value::KvList(kv)) => J::Object(
                kv.values
                    .iter()
                    .map(|e| {
                        let v = e.value.as_ref().map_or(J::Null, AnyValue::to_json);
                        (e.key.clone(), v)
                    })
                    .collect(),
            ),
        }
    }
}

/// Decodes a protobuf `ExportMetricsServiceRequest` of at most
/// [`super::MAX_REQUEST_BYTES`].
pub fn decode(buf: &[u8]) -> Result<ExportRequest, DecodeError> {
    if buf.len() > super::MAX_REQUEST_BYTES {
        return Err(DecodeError::too_large("protobuf", buf.len()));
    }
    let mut rest = buf;
    ExportRequest::decode(&mut rest).map_err(|e| {
        let offset = buf.len() - rest.len();
        let (stack, problem) = split_prost_error(&e.to_string());
        DecodeError {
            format: "protobuf",
            offset,
            field: locate(buf, offset, &stack),
            problem,
        }
    })
}

/// prost's message, `failed to decode Protobuf message: Inner.field:
/// Outer.field: problem`, as the (message, field) pairs outermost first
/// and the problem. prost keeps the pairs private; its `Display` is the only
/// way to them.
fn split_prost_error(text: &str) -> (Vec<(String, String)>, String) {
    let mut rest = text
        .strip_prefix("failed to decode Protobuf message: ")
        .unwrap_or(text);
    let mut stack = Vec::new();
    while let Some((seg, tail)) = rest.split_once(": ") {
        let Some((msg, field)) = seg.split_once('.') else {
            break;
        };
        let ident =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ident(msg) || !ident(field) {
            break;
        }
        stack.push((msg.to_string(), field.to_string()));
        rest = tail;
    }
    stack.reverse();
    (stack, rest.to_string())
}

/// Repeated message fields: their path elements carry the element's index.
const REPEATED: &[&str] = &[
    "resource_metrics",
    "scope_metrics",
    "metrics",
    "data_points",
    "attributes",
    "filtered_attributes",
    "exemplars",
    "quantile_values",
    "values",
];

/// The member of a oneof (prost names the oneof) by its field number.
fn oneof_member(message: &str, oneof: &str, number: u64) -> Option<&'static str> {
    Some(match (message, oneof, number) {
        ("Metric", "data", 5) => "gauge",
        ("Metric", "data", 7) => "sum",
        ("Metric", "data", 9) => "histogram",
        ("Metric", "data", 10) => "exponential_histogram",
        ("Metric", "data", 11) => "summary",
        ("NumberPoint", "value", 4) | ("Exemplar", "value", 3) => "as_double",
        ("NumberPoint", "value", 6) | ("Exemplar", "value", 6) => "as_int",
        ("AnyValue", "value", 1) => "string_value",
        ("AnyValue", "value", 2) => "bool_value",
        ("AnyValue", "value", 3) => "int_value",
        ("AnyValue", "value", 4) => "double_value",
        ("AnyValue", "value", 5) => "array_value",
        ("AnyValue", "value", 6) => "kvlist_value",
        ("AnyValue", "value", 7) => "bytes_value",
        _ => return None,
    })
}

/// One field of a message as [`locate`] sees it.
struct FieldAt {
    number: u64,
    /// How many fields with the same number came before it.
    index: usize,
    value: std::ops::Range<usize>,
}

/// The field of the message in `buf[range]` whose key starts before
/// `offset` and whose value ends at or after it. A field running past the
/// message's end (truncated) ends there.
fn field_at(buf: &[u8], range: std::ops::Range<usize>, offset: usize) -> Option<FieldAt> {
    let end = range.end.min(buf.len());
    let mut pos = range.start;
    let mut seen: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
    let varint = |pos: &mut usize| -> Option<u64> {
        let mut v = 0u64;
        for i in 0..10 {
            if *pos >= end {
                return None;
            }
            let b = buf[*pos];
            *pos += 1;
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    };
    while pos < end && pos < offset {
        let key_start = pos;
        let key = varint(&mut pos)?;
        let number = key >> 3;
        let value = match key & 7 {
            0 => {
                let start = pos;
                varint(&mut pos);
                start..pos
            }
            1 => pos..pos.saturating_add(8).min(end),
            5 => pos..pos.saturating_add(4).min(end),
            2 => match varint(&mut pos) {
                Some(len) => {
                    let len = usize::try_from(len).unwrap_or(usize::MAX);
                    pos..pos.saturating_add(len).min(end)
                }
                None => pos..end,
            },
            _ => return None,
        };
        let count = seen.entry(number).or_insert(0);
        let index = *count;
        *count += 1;
        if key_start < offset && offset <= value.end {
            return Some(FieldAt {
                number,
                index,
                value,
            });
        }
        pos = value.end;
    }
    None
}

/// The field path of an error at `offset`: prost's (message, field) pairs,
/// outermost first, with indices and oneof members found by walking `buf`.
fn locate(buf: &[u8], offset: usize, stack: &[(String, String)]) -> String {
    if stack.is_empty() {
        return "ExportMetricsServiceRequest".into();
    }
    let mut parts = Vec::with_capacity(stack.len());
    let mut range = Some(0..buf.len());
    for (message, field) in stack {
        let found = range.take().and_then(|r| field_at(buf, r, offset));
        let Some(f) = found else {
            parts.push(field.clone());
            continue;
        };
        let mut name = oneof_member(message, field, f.number)
            .unwrap_or(field)
            .to_string();
        if REPEATED.contains(&field.as_str()) {
            name.push_str(&format!("[{}]", f.index));
        }
        parts.push(name);
        range = Some(f.value);
    }
    if parts.len() > MAX_PATH_PARTS {
        // Deep nesting (up to prost's recursion limit): the start and the
        // end of the path say where.
        let tail = parts.split_off(parts.len() - MAX_PATH_PARTS / 2);
        parts.truncate(MAX_PATH_PARTS / 2);
        parts.push("…".into());
        parts.extend(tail);
    }
    parts.join(".")
}

/// Longest field path printed in full.
const MAX_PATH_PARTS: usize = 16;
