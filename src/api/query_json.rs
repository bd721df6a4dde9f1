//! Query results in the exact JSON Prometheus' API writes. Built by hand
//! rather than through `serde_json::Value`: Prometheus writes timestamps as
//! raw numbers with a fixed millisecond fraction (`1.500`) and sample values
//! as strings in Go's float syntax (`+Inf`, `1e-07`), neither of which a
//! generic JSON value can express; hand-writing also avoids building a tree
//! for results with millions of points.

use crate::model::histogram::FloatHistogram;
use crate::model::Labels;
use crate::promql::engine::{QueryResult, Value};
use crate::tsdb::exemplars::SeriesExemplars;
use std::fmt::Write;

/// Appends `s` as a JSON string, escaping like Go's JSON encoders do for
/// the characters that must be escaped.
pub fn write_str(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let esc: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            c if (c as u32) < 0x20 => None,
            _ => continue,
        };
        out.push_str(&s[start..i]);
        match esc {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
        start = i + c.len_utf8();
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends a millisecond timestamp as Unix seconds the way Prometheus does:
/// integer seconds, then `.` and exactly three digits when the fraction is
/// not zero (`1435781451.781`, `1.500`, `-0.005`).
pub fn write_ts(out: &mut String, t: i64) {
    let neg = t < 0;
    let a = t.unsigned_abs();
    if neg {
        out.push('-');
    }
    out.push_str(itoa::Buffer::new().format(a / 1000));
    let frac = a % 1000;
    if frac != 0 {
        let d = |x: u64| char::from(b'0' + (x % 10) as u8);
        out.push('.');
        out.push(d(frac / 100));
        out.push(d(frac / 10));
        out.push(d(frac));
    }
}

/// Formats a sample value like Prometheus (Go's `strconv.AppendFloat` with
/// the shortest representation, `'f'` format except for magnitudes below
/// 1e-6 or from 1e21 up, which use `'e'`).
pub fn format_value(v: f64) -> String {
    let mut s = String::new();
    write_value_raw(&mut s, v);
    s
}

fn write_value_raw(out: &mut String, v: f64) {
    // Fast paths for the common values (a graph writes millions): whole
    // numbers, and magnitudes where `ryu`'s shortest digits come without
    // an exponent and agree with the general path (above ~1e14 the two
    // can round a tie differently: 573161864884280.25).
    let a = v.abs();
    if a < 1e15 && v.trunc() == v && !(v == 0.0 && v.is_sign_negative()) {
        out.push_str(itoa::Buffer::new().format(v as i64));
        return;
    }
    if (1e-5..1e9).contains(&a) {
        out.push_str(ryu::Buffer::new().format_finite(v));
        return;
    }
    write_value_slow(out, v);
}

fn write_value_slow(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
        return;
    }
    if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
        return;
    }
    let a = v.abs();
    if a != 0.0 && !(1e-6..1e21).contains(&a) {
        // Rust's `{:e}` is the shortest round-trip mantissa too; only the
        // exponent differs: Go always signs it and pads it to two digits.
        let e = format!("{v:e}");
        let (mant, exp) = e.split_once('e').unwrap_or((&e, "0"));
        let (sign, digits) = match exp.strip_prefix('-') {
            Some(d) => ('-', d),
            None => ('+', exp),
        };
        let _ = write!(out, "{mant}e{sign}{digits:0>2}");
    } else {
        // `{}` on f64 is the shortest round-trip digits without exponent,
        // as Go's 'f' with precision -1.
        let _ = write!(out, "{v}");
    }
}

fn write_point(out: &mut String, t: i64, v: f64) {
    out.push('[');
    write_ts(out, t);
    out.push_str(",\"");
    write_value_raw(out, v);
    out.push_str("\"]");
}

/// A native histogram as Prometheus' API writes it: count and sum as
/// strings, then the non-empty buckets as `[boundary rule, lower, upper,
/// count]` (rule 0: `(l,u]`, 1: `[l,u)`, 2: `(l,u)`, 3: `[l,u]`).
fn write_histogram(out: &mut String, h: &FloatHistogram) {
    out.push_str("{\"count\":\"");
    write_value_raw(out, h.count);
    out.push_str("\",\"sum\":\"");
    write_value_raw(out, h.sum);
    out.push('"');
    let mut first = true;
    for b in h.all_buckets().iter().filter(|b| b.count != 0.0) {
        out.push_str(if first { ",\"buckets\":[" } else { "," });
        first = false;
        let rule = match (b.lower_inclusive, b.upper_inclusive) {
            (true, true) => 3,
            (true, false) => 1,
            (false, true) => 0,
            (false, false) => 2,
        };
        let _ = write!(out, "[{rule},\"");
        write_value_raw(out, b.lower);
        out.push_str("\",\"");
        write_value_raw(out, b.upper);
        out.push_str("\",\"");
        write_value_raw(out, b.count);
        out.push_str("\"]");
    }
    if !first {
        out.push(']');
    }
    out.push('}');
}

fn write_hpoint(out: &mut String, t: i64, h: &FloatHistogram) {
    out.push('[');
    write_ts(out, t);
    out.push(',');
    write_histogram(out, h);
    out.push(']');
}

fn write_labels(out: &mut String, l: &Labels) {
    out.push('{');
    for (i, x) in l.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, &x.name);
        out.push(':');
        write_str(out, &x.value);
    }
    out.push('}');
}

fn write_str_array(out: &mut String, key: &str, items: &[String]) {
    if items.is_empty() {
        return;
    }
    let _ = write!(out, ",\"{key}\":[");
    for (i, w) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_str(out, w);
    }
    out.push(']');
}

/// The success body of `/api/v1/query_exemplars` as Prometheus writes it:
/// per series `seriesLabels` then `exemplars`, each exemplar `labels`,
/// `value` (a string, as sample values) and `timestamp` (seconds with a
/// millisecond fraction, as sample times).
pub fn encode_exemplars(found: &[SeriesExemplars]) -> String {
    let mut out = String::from("{\"status\":\"success\",\"data\":[");
    for (i, se) in found.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str("{\"seriesLabels\":");
        write_labels(&mut out, &se.series);
        out.push_str(",\"exemplars\":[");
        for (k, e) in se.exemplars.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            out.push_str("{\"labels\":");
            write_labels(&mut out, &e.labels);
            out.push_str(",\"value\":\"");
            write_value_raw(&mut out, e.value);
            out.push_str("\",\"timestamp\":");
            write_ts(&mut out, e.ts);
            out.push('}');
        }
        out.push_str("]}");
    }
    out.push_str("]}");
    out
}

/// The whole success body of `/api/v1/query` or `/api/v1/query_range`:
/// `{"status":"success","data":{"resultType":..,"result":..}}`, then
/// `warnings` and `infos` when there are any (Prometheus omits empty ones).
/// `stats`, when given, is the JSON object put in `data.stats` (the `stats`
/// request parameter).
pub fn encode_success(r: QueryResult, stats: Option<&str>) -> String {
    let mut body = String::new();
    encode_success_chunked(r, stats, usize::MAX, |c| {
        body.push_str(&c);
        true
    });
    body
}

/// [`encode_success`] in pieces: `emit` is handed the body in chunks of
/// about `chunk` bytes (at series and point boundaries) as it is written,
/// so a large matrix is never held as one string; each series is dropped
/// once written. Stops early when `emit` returns `false` (the client went
/// away).
pub fn encode_success_chunked(
    r: QueryResult,
    stats: Option<&str>,
    chunk: usize,
    mut emit: impl FnMut(String) -> bool,
) {
    let cap = chunk.saturating_add(4096).min(1 << 20);
    let mut out = String::with_capacity(cap.min(256));
    // Hands `out` over once it holds a chunk; `false` to stop.
    let mut flush = |out: &mut String, force: bool| -> bool {
        if out.len() >= chunk || (force && !out.is_empty()) {
            let full = std::mem::replace(out, String::with_capacity(cap));
            return emit(full);
        }
        true
    };
    out.push_str("{\"status\":\"success\",\"data\":{\"resultType\":");
    match r.value {
        Value::Scalar { t, v } => {
            out.push_str("\"scalar\",\"result\":");
            write_point(&mut out, t, v);
        }
        Value::String { t, v } => {
            out.push_str("\"string\",\"result\":[");
            write_ts(&mut out, t);
            out.push(',');
            write_str(&mut out, &v);
            out.push(']');
        }
        Value::Vector(samples) => {
            out.reserve((samples.len() * 96).min(cap));
            out.push_str("\"vector\",\"result\":[");
            for (i, s) in samples.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str("{\"metric\":");
                write_labels(&mut out, &s.labels);
                match &s.h {
                    None => {
                        out.push_str(",\"value\":");
                        write_point(&mut out, s.t, s.value);
                    }
                    Some(h) => {
                        out.push_str(",\"histogram\":");
                        write_hpoint(&mut out, s.t, h);
                    }
                }
                out.push('}');
                if !flush(&mut out, false) {
                    return;
                }
            }
            out.push(']');
        }
        Value::Matrix(series) => {
            out.push_str("\"matrix\",\"result\":[");
            for (i, s) in series.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.reserve((64 + s.points.len() * 24).min(cap));
                out.push_str("{\"metric\":");
                write_labels(&mut out, &s.labels);
                if !s.points.is_empty() || s.hpoints.is_empty() {
                    out.push_str(",\"values\":[");
                    for (j, (t, v)) in s.points.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        write_point(&mut out, *t, *v);
                        if j % 256 == 255 && !flush(&mut out, false) {
                            return;
                        }
                    }
                    out.push(']');
                }
                if !s.hpoints.is_empty() {
                    out.push_str(",\"histograms\":[");
                    for (j, (t, h)) in s.hpoints.iter().enumerate() {
                        if j > 0 {
                            out.push(',');
                        }
                        write_hpoint(&mut out, *t, h);
                        if j % 64 == 63 && !flush(&mut out, false) {
                            return;
                        }
                    }
                    out.push(']');
                }
                out.push('}');
                if !flush(&mut out, false) {
                    return;
                }
            }
            out.push(']');
        }
    }
    if let Some(st) = stats {
        out.push_str(",\"stats\":");
        out.push_str(st);
    }
    out.push('}');
    write_str_array(&mut out, "warnings", &r.warnings);
    write_str_array(&mut out, "infos", &r.infos);
    out.push('}');
    flush(&mut out, true);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_like_go() {
        for (v, want) in [
            (1.0, "1"),
            (0.5, "0.5"),
            (1e6, "1000000"),
            (1e20, "100000000000000000000"),
            (1e21, "1e+21"),
            (1.5e22, "1.5e+22"),
            (1e-6, "0.000001"),
            (1e-7, "1e-07"),
            (-2.5e-10, "-2.5e-10"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (0.1 + 0.2, "0.30000000000000004"),
            (-0.0, "-0"),
            (f64::NAN, "NaN"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
        ] {
            assert_eq!(format_value(v), want, "{v:e}");
        }
    }

    /// The fast paths write what the general formatting writes.
    #[test]
    fn fast_paths_agree_with_general_formatting() {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let check = |v: f64| {
            let (mut fast, mut slow) = (String::new(), String::new());
            write_value_raw(&mut fast, v);
            write_value_slow(&mut slow, v);
            assert_eq!(fast, slow, "{v:e}");
        };
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Random bits, random decimals at every scale, random integers.
            check(f64::from_bits(x));
            let scale = 10f64.powi((x % 40) as i32 - 20);
            check((x >> 11) as f64 / (1u64 << 53) as f64 * scale);
            check(((x >> 20) as i64 - (1 << 43)) as f64);
        }
        for v in [
            1e15,
            1e15 - 1.0,
            999_999_999_999_999.9,
            1e-5,
            0.99999e-5,
            0.0,
            -0.0,
            1.0,
            -1.0,
        ] {
            check(v);
        }
    }

    #[test]
    fn timestamps_keep_three_fraction_digits() {
        for (t, want) in [
            (1_435_781_451_781, "1435781451.781"),
            (1500, "1.500"),
            (1005, "1.005"),
            (2000, "2"),
            (-5, "-0.005"),
            (0, "0"),
        ] {
            let mut s = String::new();
            write_ts(&mut s, t);
            assert_eq!(s, want);
        }
    }

    #[test]
    fn exemplars_in_prometheus_shape() {
        use crate::tsdb::exemplars::Exemplar;
        let se = SeriesExemplars {
            series: Labels::from_pairs([("__name__", "a_bucket"), ("le", "0.5")]),
            exemplars: vec![
                Exemplar {
                    labels: Labels::from_pairs([("trace_id", "t\"1")]),
                    value: 0.25,
                    ts: 1_700_000_000_100,
                },
                Exemplar {
                    labels: Labels::empty(),
                    value: 1e-7,
                    ts: 1_700_000_001_000,
                },
            ],
        };
        assert_eq!(
            encode_exemplars(&[se]),
            r#"{"status":"success","data":[{"seriesLabels":{"__name__":"a_bucket","le":"0.5"},"exemplars":[{"labels":{"trace_id":"t\"1"},"value":"0.25","timestamp":1700000000.100},{"labels":{},"value":"1e-07","timestamp":1700000001}]}]}"#
        );
        assert_eq!(encode_exemplars(&[]), r#"{"status":"success","data":[]}"#);
    }

    fn hist(s: &str) -> FloatHistogram {
        crate::model::histogram::notation::parse_histogram(s)
            .expect("notation")
            .histogram
    }

    #[test]
    fn histograms_in_prometheus_shape() {
        use crate::promql::engine::{Sample, Series};
        let labels: std::sync::Arc<Labels> = Labels::from_pairs([("__name__", "h")]).into();
        let h = hist(
            "{{schema:0 count:4 sum:5 z_bucket:1 z_bucket_w:0.25 buckets:[1 0 2] n_buckets:[1]}}",
        );
        let r = |value| QueryResult {
            value,
            warnings: Vec::new(),
            infos: Vec::new(),
            stats: Default::default(),
        };
        let want_h = r#"{"count":"4","sum":"5","buckets":[[1,"-1","-0.5","1"],[3,"-0.25","0.25","1"],[0,"0.5","1","1"],[0,"2","4","2"]]}"#;
        let v = encode_success(
            r(Value::Vector(vec![Sample {
                labels: labels.clone(),
                t: 1500,
                value: 0.0,
                drop_name: false,
                h: Some(Box::new(h.clone())),
            }])),
            None,
        );
        assert_eq!(
            v,
            format!(
                r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"__name__":"h"}},"histogram":[1.500,{want_h}]}}]}}}}"#
            )
        );
        let m = encode_success(
            r(Value::Matrix(vec![Series {
                labels,
                points: Vec::new(),
                drop_name: false,
                hpoints: vec![(1000, h.clone()), (2000, hist("{{}}"))],
            }])),
            None,
        );
        assert_eq!(
            m,
            format!(
                r#"{{"status":"success","data":{{"resultType":"matrix","result":[{{"metric":{{"__name__":"h"}},"histograms":[[1,{want_h}],[2,{{"count":"0","sum":"0"}}]]}}]}}}}"#
            )
        );
    }

    #[test]
    fn strings_escaped() {
        let mut s = String::new();
        write_str(&mut s, "a\"b\\c\nd\u{1}é");
        assert_eq!(s, "\"a\\\"b\\\\c\\nd\\u0001é\"");
        let back: String = serde_json::from_str(&s).unwrap();
        assert_eq!(back, "a\"b\\c\nd\u{1}é");
    }

    fn matrix(series: usize, points: usize) -> QueryResult {
        use crate::promql::engine::Series;
        let m = (0..series)
            .map(|i| Series {
                labels: std::sync::Arc::new(Labels::from_pairs([
                    ("__name__", "m"),
                    ("i", &i.to_string()),
                ])),
                points: (0..points)
                    .map(|k| (k as i64 * 1500, i as f64 + k as f64 / 7.0))
                    .collect(),
                drop_name: false,
                hpoints: Vec::new(),
            })
            .collect();
        QueryResult {
            value: Value::Matrix(m),
            warnings: vec!["w".into()],
            infos: vec![],
            stats: Default::default(),
        }
    }

    #[test]
    fn chunked_body_is_the_whole_body() {
        let whole = encode_success(matrix(40, 700), Some("{\"x\":1}"));
        let mut parts = Vec::new();
        encode_success_chunked(matrix(40, 700), Some("{\"x\":1}"), 4096, |c| {
            parts.push(c);
            true
        });
        assert!(parts.len() > 10, "{}", parts.len());
        // Chunks stay near the asked size (cut at point boundaries).
        assert!(
            parts.iter().all(|p| p.len() < 4096 + 256 * 40),
            "{:?}",
            parts.iter().map(String::len).max()
        );
        assert_eq!(parts.concat(), whole);
        let v: serde_json::Value = serde_json::from_str(&whole).unwrap();
        assert_eq!(v["data"]["result"].as_array().map(Vec::len), Some(40));
        assert_eq!(v["warnings"][0], "w");
    }

    #[test]
    fn chunked_body_stops_when_the_client_is_gone() {
        let mut calls = 0;
        encode_success_chunked(matrix(40, 700), None, 4096, |_| {
            calls += 1;
            calls < 3
        });
        assert_eq!(calls, 3);
    }
}
