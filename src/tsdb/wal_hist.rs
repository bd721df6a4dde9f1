//! Native-histogram WAL records in Prometheus' layout (`tsdb/record`):
//! the payload is the base reference and base time (8 bytes each, big
//! endian), then per sample the reference and time deltas (signed
//! varints) and the histogram: counter-reset hint byte, schema (signed
//! varint), zero threshold (8 bytes), zero count and count (unsigned
//! varints; 8-byte floats in float records), sum (8 bytes), positive and
//! negative spans (count, then offset as a signed and length as an
//! unsigned varint each), positive and negative buckets (count, then
//! signed varint deltas; 8-byte floats in float records) and, for schema
//! -53, the custom bounds (count, 8-byte floats).
//!
//! The record kind (integer or float, exponential or custom buckets) is
//! in the frame, as Prometheus' first record byte.

use super::series_hist::HistValue;
use super::wal::{put_uvarint, put_varint, Dec, Kind};
use crate::model::histogram::{
    is_custom_buckets_schema, CounterResetHint, FloatHistogram, Histogram, Span,
};

/// The histogram record kinds, in the order a batch logs them.
pub const KINDS: [Kind; 4] = [
    Kind::HistogramSamples,
    Kind::FloatHistogramSamples,
    Kind::CustomBucketsHistogramSamples,
    Kind::CustomBucketsFloatHistogramSamples,
];

/// The record kind a histogram is logged under.
pub fn kind_of(v: &HistValue) -> Kind {
    match v {
        HistValue::Int(h) if is_custom_buckets_schema(h.schema) => {
            Kind::CustomBucketsHistogramSamples
        }
        HistValue::Int(_) => Kind::HistogramSamples,
        HistValue::Float(h) if is_custom_buckets_schema(h.schema) => {
            Kind::CustomBucketsFloatHistogramSamples
        }
        HistValue::Float(_) => Kind::FloatHistogramSamples,
    }
}

fn hint_byte(h: CounterResetHint) -> u8 {
    match h {
        CounterResetHint::Unknown => 0,
        CounterResetHint::Reset => 1,
        CounterResetHint::NotReset => 2,
        CounterResetHint::Gauge => 3,
    }
}

fn hint_of(b: u8) -> Result<CounterResetHint, String> {
    Ok(match b {
        0 => CounterResetHint::Unknown,
        1 => CounterResetHint::Reset,
        2 => CounterResetHint::NotReset,
        3 => CounterResetHint::Gauge,
        x => return Err(format!("unknown counter reset hint {x}")),
    })
}

fn put_f64(buf: &mut Vec<u8>, v: f64) {
    buf.extend_from_slice(&v.to_bits().to_be_bytes());
}

fn put_spans(buf: &mut Vec<u8>, spans: &[Span]) {
    put_uvarint(buf, spans.len() as u64);
    for s in spans {
        put_varint(buf, i64::from(s.offset));
        put_uvarint(buf, u64::from(s.length));
    }
}

/// Encodes one record's payload; every sample must be of the same
/// [`kind_of`]. An empty list gives an empty payload.
pub fn encode(buf: &mut Vec<u8>, samples: &[(u64, i64, &HistValue)]) {
    let Some(&(r0, t0, _)) = samples.first() else {
        return;
    };
    buf.extend_from_slice(&r0.to_be_bytes());
    buf.extend_from_slice(&t0.to_be_bytes());
    for &(r, t, v) in samples {
        put_varint(buf, r.wrapping_sub(r0) as i64);
        put_varint(buf, t.wrapping_sub(t0));
        // Both kinds share every field but the counts and buckets.
        macro_rules! put_sample {
            ($h:expr, $put_count:expr, $put_bucket:expr) => {{
                let h = $h;
                buf.push(hint_byte(h.counter_reset_hint));
                put_varint(buf, i64::from(h.schema));
                put_f64(buf, h.zero_threshold);
                $put_count(buf, h.zero_count);
                $put_count(buf, h.count);
                put_f64(buf, h.sum);
                put_spans(buf, &h.positive_spans);
                put_spans(buf, &h.negative_spans);
                for list in [&h.positive_buckets, &h.negative_buckets] {
                    put_uvarint(buf, list.len() as u64);
                    for b in list {
                        $put_bucket(buf, *b);
                    }
                }
                put_custom(buf, h.schema, &h.custom_values);
            }};
        }
        match v {
            HistValue::Int(h) => put_sample!(h, put_uvarint, put_varint),
            HistValue::Float(h) => put_sample!(h, put_f64, put_f64),
        }
    }
}

fn put_custom(buf: &mut Vec<u8>, schema: i32, values: &[f64]) {
    if is_custom_buckets_schema(schema) {
        put_uvarint(buf, values.len() as u64);
        for v in values {
            put_f64(buf, *v);
        }
    }
}

/// A field reader naming the sample and field in its errors.
struct Fields<'d, 'a> {
    d: &'d mut Dec<'a>,
    sample: usize,
}

impl Fields<'_, '_> {
    fn err(&self, field: &str, e: String) -> String {
        format!(
            "histogram sample {} field {field} (byte {}): {e}",
            self.sample, self.d.pos
        )
    }

    fn be64(&mut self, field: &str) -> Result<u64, String> {
        let b = self.d.bytes(8).map_err(|e| self.err(field, e))?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    fn f64(&mut self, field: &str) -> Result<f64, String> {
        self.be64(field).map(f64::from_bits)
    }

    fn uvarint(&mut self, field: &str) -> Result<u64, String> {
        self.d.uvarint().map_err(|e| self.err(field, e))
    }

    fn varint(&mut self, field: &str) -> Result<i64, String> {
        self.d.varint().map_err(|e| self.err(field, e))
    }

    fn len(&mut self, field: &str) -> Result<usize, String> {
        self.d.len().map_err(|e| self.err(field, e))
    }

    fn i32(&mut self, field: &str) -> Result<i32, String> {
        let v = self.varint(field)?;
        i32::try_from(v).map_err(|_| self.err(field, format!("{v} out of range")))
    }

    fn spans(&mut self, field: &str) -> Result<Vec<Span>, String> {
        let n = self.len(field)?;
        let mut out = Vec::with_capacity(n);
        for _ in 0..n {
            let offset = self.i32(field)?;
            let len = self.uvarint(field)?;
            let length = u32::try_from(len)
                .map_err(|_| self.err(field, format!("length {len} out of range")))?;
            out.push(Span { offset, length });
        }
        Ok(out)
    }

    /// A length-prefixed list of `field`, each read by `item`.
    fn list<T>(
        &mut self,
        field: &str,
        item: fn(&mut Self, &str) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        let n = self.len(field)?;
        (0..n).map(|_| item(self, field)).collect()
    }

    fn custom(&mut self, schema: i32) -> Result<Vec<f64>, String> {
        if !is_custom_buckets_schema(schema) {
            return Ok(Vec::new());
        }
        let n = self.len("custom_values")?;
        (0..n).map(|_| self.f64("custom_values")).collect()
    }
}

/// Decodes a payload written by [`encode`]; `float` for the float kinds.
pub(crate) fn decode(d: &mut Dec<'_>, float: bool) -> Result<Vec<(u64, i64, HistValue)>, String> {
    let mut out = Vec::new();
    if d.pos == d.b.len() {
        return Ok(out);
    }
    let mut head = Fields { d, sample: 0 };
    let r0 = head.be64("base ref")?;
    let t0 = head.be64("base time")? as i64;
    let d = head.d;
    while d.pos < d.b.len() {
        let mut f = Fields {
            d: &mut *d,
            sample: out.len(),
        };
        let r = r0.wrapping_add(f.varint("ref")? as u64);
        let t = t0.wrapping_add(f.varint("time")?);
        let hint = {
            let b = f.d.byte().map_err(|e| f.err("counter_reset_hint", e))?;
            hint_of(b).map_err(|e| f.err("counter_reset_hint", e))?
        };
        let schema = f.i32("schema")?;
        let zero_threshold = f.f64("zero_threshold")?;
        let v = if float {
            let zero_count = f.f64("zero_count")?;
            let count = f.f64("count")?;
            let sum = f.f64("sum")?;
            let positive_spans = f.spans("positive_spans")?;
            let negative_spans = f.spans("negative_spans")?;
            let positive_buckets = f.list("positive_buckets", Fields::f64)?;
            let negative_buckets = f.list("negative_buckets", Fields::f64)?;
            HistValue::Float(FloatHistogram {
                counter_reset_hint: hint,
                schema,
                zero_threshold,
                zero_count,
                count,
                sum,
                positive_spans,
                negative_spans,
                positive_buckets,
                negative_buckets,
                custom_values: f.custom(schema)?,
            })
        } else {
            let zero_count = f.uvarint("zero_count")?;
            let count = f.uvarint("count")?;
            let sum = f.f64("sum")?;
            let positive_spans = f.spans("positive_spans")?;
            let negative_spans = f.spans("negative_spans")?;
            let positive_buckets = f.list("positive_buckets", Fields::varint)?;
            let negative_buckets = f.list("negative_buckets", Fields::varint)?;
            HistValue::Int(Histogram {
                counter_reset_hint: hint,
                schema,
                zero_threshold,
                zero_count,
                count,
                sum,
                positive_spans,
                negative_spans,
                positive_buckets,
                negative_buckets,
                custom_values: f.custom(schema)?,
            })
        };
        out.push((r, t, v));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::histogram::notation::parse_histogram;
    use crate::tsdb::wal::{decode as decode_record, Record, SampleState};

    fn samples() -> Vec<(u64, i64, HistValue)> {
        let f = |s: &str| HistValue::Float(parse_histogram(s).unwrap().histogram);
        let int = HistValue::Int(Histogram {
            counter_reset_hint: CounterResetHint::Gauge,
            schema: 3,
            zero_threshold: 0.001,
            zero_count: 2,
            count: 9,
            sum: -4.5,
            positive_spans: vec![Span::new(-2, 2), Span::new(3, 1)],
            negative_spans: vec![Span::new(1, 1)],
            positive_buckets: vec![1, 2, -1],
            negative_buckets: vec![3],
            ..Default::default()
        });
        vec![
            (1 << 9 | 5, 1000, int.clone()),
            (5, 900, int),
            (
                7,
                1000,
                f("{{schema:0 count:4 sum:5 buckets:[1 2 1] counter_reset_hint:reset}}"),
            ),
            (
                9,
                2000,
                f("{{schema:-53 count:3 sum:2 buckets:[1 2] custom_values:[5 10]}}"),
            ),
        ]
    }

    #[test]
    fn records_round_trip_per_kind() {
        let all = samples();
        for kind in [
            Kind::HistogramSamples,
            Kind::FloatHistogramSamples,
            Kind::CustomBucketsFloatHistogramSamples,
        ] {
            let mine: Vec<(u64, i64, &HistValue)> = all
                .iter()
                .filter(|s| kind_of(&s.2) == kind)
                .map(|(r, t, v)| (*r, *t, v))
                .collect();
            assert!(!mine.is_empty());
            let mut buf = Vec::new();
            encode(&mut buf, &mine);
            let got = decode_record(kind, &buf, &mut SampleState::default()).unwrap();
            let Record::Histograms(got) = got else {
                panic!("not histograms")
            };
            let want: Vec<(u64, i64, HistValue)> = mine
                .iter()
                .map(|(r, t, v)| (*r, *t, (*v).clone()))
                .collect();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn truncated_or_corrupt_records_are_errors_naming_the_field() {
        let all = samples();
        let mine: Vec<(u64, i64, &HistValue)> =
            all[..2].iter().map(|(r, t, v)| (*r, *t, v)).collect();
        let mut buf = Vec::new();
        encode(&mut buf, &mine);
        for cut in 1..buf.len() {
            let r = decode_record(
                Kind::HistogramSamples,
                &buf[..cut],
                &mut SampleState::default(),
            );
            // Some prefixes end on a sample boundary; the rest must fail cleanly.
            if let Err(e) = r {
                assert!(e.contains("field") || e.contains("histogram"), "{e}");
            }
        }
        let err = decode_record(
            Kind::HistogramSamples,
            &buf[..20],
            &mut SampleState::default(),
        )
        .unwrap_err();
        assert!(err.contains("histogram sample 0 field"), "{err}");
        // A span count larger than the record.
        let mut bad = buf[..16].to_vec();
        bad.extend_from_slice(&[0, 0, 0, 0]); // ref, time, hint, schema
        bad.extend_from_slice(&[0; 8]); // zero threshold
        bad.extend_from_slice(&[0, 0]); // zero count, count
        bad.extend_from_slice(&[0; 8]); // sum
        bad.push(0x7f); // 127 positive spans
        let err =
            decode_record(Kind::HistogramSamples, &bad, &mut SampleState::default()).unwrap_err();
        assert!(err.contains("positive_spans"), "{err}");
    }
}
