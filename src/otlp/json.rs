//! OTLP/JSON (`Content-Type: application/json`): the protobuf JSON mapping
//! of the same messages as [`super::decode`], as OTLP/HTTP specifies it:
//! lowerCamelCase keys, enums as integers, 64-bit integers as strings or
//! numbers, `NaN`/`Infinity`/`-Infinity` as strings, trace and span ids in
//! hex, `bytesValue` in base64; unknown keys ignored. The structs are
//! decode's (serde attributes beside the prost ones); this module holds
//! the field deserializers, the JSON shape of the four messages holding a
//! oneof (its members are keys of the message itself; when a body sets
//! more than one, the first in field-number order counts), and
//! [`decode_json`].

use super::decode::{
    AnyValue, ArrayValue, Data, DecodeError, Exemplar, ExemplarValue, ExpHistogramData,
    ExportRequest, GaugeData, HistogramData, KeyValue, KeyValueList, Metric, NumberPoint,
    NumberValue, SumData, SummaryData, Value,
};
use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

/// A JSON number or a string holding one.
#[derive(Deserialize)]
#[serde(untagged)]
enum Num {
    U(u64),
    I(i64),
    F(f64),
    S(String),
}

fn to_u64<E: serde::de::Error>(n: Num) -> Result<u64, E> {
    match n {
        Num::U(v) => Ok(v),
        Num::I(v) => u64::try_from(v).map_err(|_| E::custom(format!("{v} is negative"))),
        Num::F(v) if v >= 0.0 && v.fract() == 0.0 && v < 2f64.powi(64) => Ok(v as u64),
        Num::F(v) => Err(E::custom(format!("{v} is not an unsigned integer"))),
        Num::S(s) => s
            .parse()
            .map_err(|_| E::custom(format!("{s:?} is not an unsigned integer"))),
    }
}

fn to_i64<E: serde::de::Error>(n: Num) -> Result<i64, E> {
    match n {
        Num::U(v) => i64::try_from(v).map_err(|_| E::custom(format!("{v} is out of range"))),
        Num::I(v) => Ok(v),
        Num::F(v) if v.fract() == 0.0 && v.abs() < 2f64.powi(63) => Ok(v as i64),
        Num::F(v) => Err(E::custom(format!("{v} is not an integer"))),
        Num::S(s) => s
            .parse()
            .map_err(|_| E::custom(format!("{s:?} is not an integer"))),
    }
}

fn to_f64<E: serde::de::Error>(n: Num) -> Result<f64, E> {
    match n {
        Num::U(v) => Ok(v as f64),
        Num::I(v) => Ok(v as f64),
        Num::F(v) => Ok(v),
        Num::S(s) => match s.as_str() {
            "NaN" => Ok(f64::NAN),
            "Infinity" => Ok(f64::INFINITY),
            "-Infinity" => Ok(f64::NEG_INFINITY),
            _ => s
                .parse()
                .map_err(|_| E::custom(format!("{s:?} is not a number"))),
        },
    }
}

pub(super) fn u64_any<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Option::<Num>::deserialize(d)?.map_or(Ok(0), to_u64)
}

pub(super) fn f64_any<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    Option::<Num>::deserialize(d)?.map_or(Ok(0.0), to_f64)
}

pub(super) fn opt_f64_any<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    Option::<Num>::deserialize(d)?.map(to_f64).transpose()
}

pub(super) fn vec_u64_any<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u64>, D::Error> {
    Option::<Vec<Num>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(to_u64)
        .collect()
}

pub(super) fn vec_f64_any<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<f64>, D::Error> {
    Option::<Vec<Num>>::deserialize(d)?
        .unwrap_or_default()
        .into_iter()
        .map(to_f64)
        .collect()
}

pub(super) fn opt_i64_any<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Option::<Num>::deserialize(d)?.map(to_i64).transpose()
}

/// Trace and span ids: hex (OTLP/JSON's exception to base64 bytes).
pub(super) fn hex_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    let s = Option::<String>::deserialize(d)?.unwrap_or_default();
    if s.len() % 2 != 0 {
        return Err(D::Error::custom(format!("{s:?} is not hex")));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(|| D::Error::custom(format!("{s:?} is not hex")))
        })
        .collect()
}

pub(super) fn base64_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    use base64::Engine;
    let s = Option::<String>::deserialize(d)?.unwrap_or_default();
    base64::engine::general_purpose::STANDARD
        .decode(s.as_bytes())
        .map_err(|e| D::Error::custom(format!("bytesValue: {e}")))
}

pub(super) fn opt_base64_bytes<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Vec<u8>>, D::Error> {
    base64_bytes(d).map(Some)
}

/// `Metric` with its `data` oneof's members as keys.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct MetricJson {
    name: String,
    description: String,
    unit: String,
    gauge: Option<GaugeData>,
    sum: Option<SumData>,
    histogram: Option<HistogramData>,
    exponential_histogram: Option<ExpHistogramData>,
    summary: Option<SummaryData>,
}

impl From<MetricJson> for Metric {
    fn from(m: MetricJson) -> Metric {
        let data = m
            .gauge
            .map(Data::Gauge)
            .or(m.sum.map(Data::Sum))
            .or(m.histogram.map(Data::Histogram))
            .or(m.exponential_histogram.map(Data::ExponentialHistogram))
            .or(m.summary.map(Data::Summary));
        Metric {
            name: m.name,
            description: m.description,
            unit: m.unit,
            data,
        }
    }
}

/// `NumberDataPoint` with `asDouble`/`asInt` as keys.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct NumberPointJson {
    attributes: Vec<KeyValue>,
    #[serde(deserialize_with = "u64_any")]
    start_time_unix_nano: u64,
    #[serde(deserialize_with = "u64_any")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "opt_f64_any")]
    as_double: Option<f64>,
    #[serde(deserialize_with = "opt_i64_any")]
    as_int: Option<i64>,
    exemplars: Vec<Exemplar>,
    flags: u32,
}

impl From<NumberPointJson> for NumberPoint {
    fn from(p: NumberPointJson) -> NumberPoint {
        NumberPoint {
            attributes: p.attributes,
            start_time_unix_nano: p.start_time_unix_nano,
            time_unix_nano: p.time_unix_nano,
            value: p
                .as_double
                .map(NumberValue::AsDouble)
                .or(p.as_int.map(NumberValue::AsInt)),
            exemplars: p.exemplars,
            flags: p.flags,
        }
    }
}

/// `Exemplar` with `asDouble`/`asInt` as keys.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct ExemplarJson {
    filtered_attributes: Vec<KeyValue>,
    #[serde(deserialize_with = "u64_any")]
    time_unix_nano: u64,
    #[serde(deserialize_with = "opt_f64_any")]
    as_double: Option<f64>,
    #[serde(deserialize_with = "opt_i64_any")]
    as_int: Option<i64>,
    #[serde(deserialize_with = "hex_bytes")]
    span_id: Vec<u8>,
    #[serde(deserialize_with = "hex_bytes")]
    trace_id: Vec<u8>,
}

impl From<ExemplarJson> for Exemplar {
    fn from(e: ExemplarJson) -> Exemplar {
        Exemplar {
            filtered_attributes: e.filtered_attributes,
            time_unix_nano: e.time_unix_nano,
            value: e
                .as_double
                .map(ExemplarValue::AsDouble)
                .or(e.as_int.map(ExemplarValue::AsInt)),
            span_id: e.span_id,
            trace_id: e.trace_id,
        }
    }
}

/// `AnyValue` with its members as keys.
#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct AnyValueJson {
    string_value: Option<String>,
    bool_value: Option<bool>,
    #[serde(deserialize_with = "opt_i64_any")]
    int_value: Option<i64>,
    #[serde(deserialize_with = "opt_f64_any")]
    double_value: Option<f64>,
    array_value: Option<ArrayValue>,
    kvlist_value: Option<KeyValueList>,
    #[serde(deserialize_with = "opt_base64_bytes")]
    bytes_value: Option<Vec<u8>>,
}

impl From<AnyValueJson> for AnyValue {
    fn from(v: AnyValueJson) -> AnyValue {
        let value = v
            .string_value
            .map(Value::Str)
            .or(v.bool_value.map(Value::Bool))
            .or(v.int_value.map(Value::Int))
            .or(v.double_value.map(Value::Double))
            .or(v.array_value.map(Value::Array))
            .or(v.kvlist_value.map(Value::KvList))
            .or(v.bytes_value.map(Value::Bytes));
        AnyValue { value }
    }
}

/// Decodes an OTLP/JSON `ExportMetricsServiceRequest` of at most
/// [`super::MAX_REQUEST_BYTES`]. Errors name the byte offset (from
/// serde_json's line and column) and the field path.
pub fn decode_json(buf: &[u8]) -> Result<ExportRequest, DecodeError> {
    if buf.len() > super::MAX_REQUEST_BYTES {
        return Err(DecodeError::too_large("json", buf.len()));
    }
    let request = "ExportMetricsServiceRequest";
    let fail = |field: String, e: serde_json::Error| DecodeError {
        format: "json",
        offset: byte_offset(buf, e.line(), e.column()),
        field,
        problem: strip_position(&e.to_string()),
    };
    let mut de = serde_json::Deserializer::from_slice(buf);
    let req: ExportRequest = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            request.to_string()
        } else {
            path
        };
        fail(field, e.into_inner())
    })?;
    de.end().map_err(|e| fail(request.to_string(), e))?;
    Ok(req)
}

/// serde_json's 1-based line and column as a byte offset.
fn byte_offset(buf: &[u8], line: usize, column: usize) -> usize {
    let mut offset = 0;
    for (i, l) in buf.split(|b| *b == b'\n').enumerate() {
        if i + 1 == line {
            return (offset + column.saturating_sub(1)).min(buf.len());
        }
        offset += l.len() + 1;
    }
    buf.len()
}

/// serde_json's message without its ` at line L column C` (the offset says
/// where).
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}
