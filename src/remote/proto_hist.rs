//! prompb's `Histogram` message (remote-write 1.0 `TimeSeries.histograms`,
//! field 4): integer histograms carry `count_int`/`zero_count_int` and
//! bucket deltas, float histograms `count_float`/`zero_count_float` and
//! absolute bucket counts (which of the two is told by the `count` oneof,
//! as Prometheus' `IsFloatHistogram`).
//!
//! Fields: 1 count_int (uint64), 2 count_float (double), 3 sum, 4 schema
//! (sint32), 5 zero_threshold, 6 zero_count_int, 7 zero_count_float,
//! 8 negative_spans, 9 negative_deltas (packed sint64), 10 negative_counts
//! (packed double), 11 positive_spans, 12 positive_deltas, 13
//! positive_counts, 14 reset_hint (enum), 15 timestamp (int64), 16
//! custom_values (packed double). `BucketSpan`: 1 offset (sint32), 2 length
//! (uint32).

use super::proto::{
    put_len_field, put_varint, varint_len, Err, Problem, Reader, FIXED64, LEN, VARINT,
};
use crate::model::histogram::{CounterResetHint, FloatHistogram, Histogram, Span};
use crate::tsdb::HistValue;

/// One native-histogram sample of a series.
#[derive(Clone, Debug, PartialEq)]
pub struct HistogramSample {
    pub timestamp: i64,
    pub value: HistValue,
}

fn unzigzag(u: u64) -> i64 {
    ((u >> 1) as i64) ^ -((u & 1) as i64)
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Everything decoded, before it is known whether the histogram is float.
#[derive(Default)]
struct Raw {
    count_int: Option<u64>,
    count_float: Option<f64>,
    sum: f64,
    schema: i32,
    zero_threshold: f64,
    zero_count_int: u64,
    zero_count_float: f64,
    neg_spans: Vec<Span>,
    neg_deltas: Vec<i64>,
    neg_counts: Vec<f64>,
    pos_spans: Vec<Span>,
    pos_deltas: Vec<i64>,
    pos_counts: Vec<f64>,
    hint: CounterResetHint,
    timestamp: i64,
    custom_values: Vec<f64>,
}

fn decode_span(buf: &[u8], base: usize) -> Result<Span, Err> {
    let mut r = Reader::new(buf, base);
    let mut s = Span::default();
    while !r.done() {
        let at = r.offset();
        let (field, wire) = r.tag()?;
        match field {
            1 => {
                r.expect(at, wire, VARINT).map_err(|e| e.within("offset"))?;
                let v = unzigzag(r.varint().map_err(|e| e.within("offset"))?);
                s.offset = i32::try_from(v)
                    .map_err(|_| Err::at(at, Problem::VarintOverflow).within("offset"))?;
            }
            2 => {
                r.expect(at, wire, VARINT).map_err(|e| e.within("length"))?;
                let v = r.varint().map_err(|e| e.within("length"))?;
                s.length = u32::try_from(v)
                    .map_err(|_| Err::at(at, Problem::VarintOverflow).within("length"))?;
            }
            _ => r.skip(wire)?,
        }
    }
    Ok(s)
}

/// A repeated double: packed (one LEN field) or one FIXED64 per value.
fn doubles(r: &mut Reader<'_>, at: usize, wire: u8, out: &mut Vec<f64>) -> Result<(), Err> {
    if wire == FIXED64 {
        out.push(f64::from_bits(r.fixed64()?));
        return Ok(());
    }
    r.expect(at, wire, LEN)?;
    let (b, base) = r.bytes()?;
    let mut p = Reader::new(b, base);
    while !p.done() {
        out.push(f64::from_bits(p.fixed64()?));
    }
    Ok(())
}

/// A repeated sint64: packed or one VARINT per value.
fn sints(r: &mut Reader<'_>, at: usize, wire: u8, out: &mut Vec<i64>) -> Result<(), Err> {
    if wire == VARINT {
        out.push(unzigzag(r.varint()?));
        return Ok(());
    }
    r.expect(at, wire, LEN)?;
    let (b, base) = r.bytes()?;
    let mut p = Reader::new(b, base);
    while !p.done() {
        out.push(unzigzag(p.varint()?));
    }
    Ok(())
}

/// Decodes one `Histogram` message.
pub(crate) fn decode(buf: &[u8], base: usize) -> Result<HistogramSample, Err> {
    let mut r = Reader::new(buf, base);
    let mut h = Raw::default();
    while !r.done() {
        let at = r.offset();
        let (field, wire) = r.tag()?;
        let name = match field {
            1 => "count_int",
            2 => "count_float",
            3 => "sum",
            4 => "schema",
            5 => "zero_threshold",
            6 => "zero_count_int",
            7 => "zero_count_float",
            8 => "negative_spans",
            9 => "negative_deltas",
            10 => "negative_counts",
            11 => "positive_spans",
            12 => "positive_deltas",
            13 => "positive_counts",
            14 => "reset_hint",
            15 => "timestamp",
            16 => "custom_values",
            _ => {
                r.skip(wire)?;
                continue;
            }
        };
        (|| -> Result<(), Err> {
            match field {
                1 | 6 | 14 | 15 | 4 => {
                    r.expect(at, wire, VARINT)?;
                    let v = r.varint()?;
                    match field {
                        1 => h.count_int = Some(v),
                        6 => h.zero_count_int = v,
                        14 => {
                            h.hint = match v {
                                1 => CounterResetHint::Reset,
                                2 => CounterResetHint::NotReset,
                                3 => CounterResetHint::Gauge,
                                _ => CounterResetHint::Unknown,
                            }
                        }
                        15 => h.timestamp = v as i64,
                        _ => {
                            h.schema = i32::try_from(unzigzag(v))
                                .map_err(|_| Err::at(at, Problem::VarintOverflow))?
                        }
                    }
                }
                2 | 3 | 5 | 7 => {
                    r.expect(at, wire, FIXED64)?;
                    let v = f64::from_bits(r.fixed64()?);
                    match field {
                        2 => h.count_float = Some(v),
                        3 => h.sum = v,
                        5 => h.zero_threshold = v,
                        _ => h.zero_count_float = v,
                    }
                }
                8 | 11 => {
                    r.expect(at, wire, LEN)?;
                    let (b, base) = r.bytes()?;
                    let s = decode_span(b, base)?;
                    if field == 8 {
                        h.neg_spans.push(s)
                    } else {
                        h.pos_spans.push(s)
                    }
                }
                9 => sints(&mut r, at, wire, &mut h.neg_deltas)?,
                12 => sints(&mut r, at, wire, &mut h.pos_deltas)?,
                10 => doubles(&mut r, at, wire, &mut h.neg_counts)?,
                13 => doubles(&mut r, at, wire, &mut h.pos_counts)?,
                _ => doubles(&mut r, at, wire, &mut h.custom_values)?,
            }
            Ok(())
        })()
        .map_err(|e| e.within(name))?;
    }
    let value = match h.count_float {
        Some(count) => HistValue::Float(FloatHistogram {
            counter_reset_hint: h.hint,
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            zero_count: h.zero_count_float,
            count,
            sum: h.sum,
            positive_spans: h.pos_spans,
            negative_spans: h.neg_spans,
            positive_buckets: h.pos_counts,
            negative_buckets: h.neg_counts,
            custom_values: h.custom_values,
        }),
        None => HistValue::Int(Histogram {
            counter_reset_hint: h.hint,
            schema: h.schema,
            zero_threshold: h.zero_threshold,
            zero_count: h.zero_count_int,
            count: h.count_int.unwrap_or(0),
            sum: h.sum,
            positive_spans: h.pos_spans,
            negative_spans: h.neg_spans,
            positive_buckets: h.pos_deltas,
            negative_buckets: h.neg_deltas,
            custom_values: h.custom_values,
        }),
    };
    Ok(HistogramSample {
        timestamp: h.timestamp,
        value,
    })
}

/// The message's fields, for sizing and writing alike.
enum Field<'a> {
    Varint(u32, u64),
    Double(u32, f64),
    Spans(u32, &'a [Span]),
    PackedSint(u32, &'a [i64]),
    PackedDouble(u32, &'a [f64]),
}

fn fields(s: &HistogramSample) -> Vec<Field<'_>> {
    let hint = |h: CounterResetHint| match h {
        CounterResetHint::Unknown => 0,
        CounterResetHint::Reset => 1,
        CounterResetHint::NotReset => 2,
        CounterResetHint::Gauge => 3,
    };
    let mut f = Vec::with_capacity(16);
    match &s.value {
        HistValue::Int(h) => {
            f.push(Field::Varint(1, h.count));
            f.push(Field::Double(3, h.sum));
            f.push(Field::Varint(4, zigzag(i64::from(h.schema))));
            f.push(Field::Double(5, h.zero_threshold));
            f.push(Field::Varint(6, h.zero_count));
            f.push(Field::Spans(8, &h.negative_spans));
            f.push(Field::PackedSint(9, &h.negative_buckets));
            f.push(Field::Spans(11, &h.positive_spans));
            f.push(Field::PackedSint(12, &h.positive_buckets));
            f.push(Field::Varint(14, hint(h.counter_reset_hint)));
            f.push(Field::PackedDouble(16, &h.custom_values));
        }
        HistValue::Float(h) => {
            f.push(Field::Double(2, h.count));
            f.push(Field::Double(3, h.sum));
            f.push(Field::Varint(4, zigzag(i64::from(h.schema))));
            f.push(Field::Double(5, h.zero_threshold));
            f.push(Field::Double(7, h.zero_count));
            f.push(Field::Spans(8, &h.negative_spans));
            f.push(Field::PackedDouble(10, &h.negative_buckets));
            f.push(Field::Spans(11, &h.positive_spans));
            f.push(Field::PackedDouble(13, &h.positive_buckets));
            f.push(Field::Varint(14, hint(h.counter_reset_hint)));
            f.push(Field::PackedDouble(16, &h.custom_values));
        }
    }
    f.push(Field::Varint(15, s.timestamp as u64));
    f
}

fn span_len(s: &Span) -> usize {
    1 + varint_len(zigzag(i64::from(s.offset))) + 1 + varint_len(u64::from(s.length))
}

fn key_len(field: u32) -> usize {
    varint_len(u64::from(field) << 3)
}

fn packed_sint_len(v: &[i64]) -> usize {
    v.iter().map(|d| varint_len(zigzag(*d))).sum()
}

/// Encoded size of the message (without its own key and length).
pub(crate) fn encoded_len(s: &HistogramSample) -> usize {
    fields(s)
        .iter()
        .map(|f| match f {
            // Always written: the oneof's presence tells int from float,
            // and a zero sum or count must survive.
            Field::Varint(n, v) => key_len(*n) + varint_len(*v),
            Field::Double(n, _) => key_len(*n) + 8,
            Field::Spans(n, spans) => spans
                .iter()
                .map(|s| key_len(*n) + varint_len(span_len(s) as u64) + span_len(s))
                .sum(),
            Field::PackedSint(_, []) => 0,
            Field::PackedDouble(_, []) => 0,
            Field::PackedSint(n, v) => {
                let l = packed_sint_len(v);
                key_len(*n) + varint_len(l as u64) + l
            }
            Field::PackedDouble(n, v) => key_len(*n) + varint_len(8 * v.len() as u64) + 8 * v.len(),
        })
        .sum()
}

/// Writes the message's fields (the caller wrote its key and length).
pub(crate) fn encode(s: &HistogramSample, out: &mut Vec<u8>) {
    for f in fields(s) {
        match f {
            Field::Varint(n, v) => {
                put_varint(out, (u64::from(n) << 3) | u64::from(VARINT));
                put_varint(out, v);
            }
            Field::Double(n, v) => {
                put_varint(out, (u64::from(n) << 3) | u64::from(FIXED64));
                out.extend_from_slice(&v.to_bits().to_le_bytes());
            }
            Field::Spans(n, spans) => {
                for s in spans {
                    put_len_field(out, n, span_len(s));
                    put_varint(out, (1 << 3) | u64::from(VARINT));
                    put_varint(out, zigzag(i64::from(s.offset)));
                    put_varint(out, (2 << 3) | u64::from(VARINT));
                    put_varint(out, u64::from(s.length));
                }
            }
            Field::PackedSint(_, []) => {}
            Field::PackedDouble(_, []) => {}
            Field::PackedSint(n, v) => {
                put_len_field(out, n, packed_sint_len(v));
                for d in v {
                    put_varint(out, zigzag(*d));
                }
            }
            Field::PackedDouble(n, v) => {
                put_len_field(out, n, 8 * v.len());
                for d in v {
                    out.extend_from_slice(&d.to_bits().to_le_bytes());
                }
            }
        }
    }
}
