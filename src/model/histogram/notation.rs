//! The histogram notation of Prometheus' test series (promqltest `load`
//! and `eval` blocks, `promtool test rules` input series):
//!
//! ```text
//! {{schema:0 sum:5 count:4 z_bucket:1 z_bucket_w:0.001 buckets:[1 2 1] offset:1
//!   n_buckets:[1] n_offset:0 counter_reset_hint:gauge custom_values:[5 10]}}
//! {{...}}xN            the histogram N+1 times
//! {{A}}+{{B}}xN        A, A+B, A+2B, ... (N+1 values)
//! {{A}}-{{B}}xN        A, A-B, A-2B, ...
//! ```
//!
//! Every key is optional (`{{}}` is an empty histogram with schema 0);
//! buckets are absolute counts in one span starting at `offset`. Errors
//! carry the 1-based column (in characters of the parsed text, so callers
//! add their own line/column base).

use super::{CounterResetHint, FloatHistogram, Span};

/// A parse error at a column of the parsed text.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{column}: {message}")]
pub struct NotationError {
    /// 1-based column (character offset + 1) where the problem starts.
    pub column: usize,
    pub message: String,
}

/// One histogram of a series, with whether its counter reset hint was
/// written out (promqltest compares hints only when the expectation sets one).
#[derive(Clone, Debug, PartialEq)]
pub struct NotationSample {
    pub histogram: FloatHistogram,
    pub counter_reset_hint_set: bool,
}

/// Parses one series item that must be all of `s` (surrounding whitespace
/// allowed): `{{...}}`, `{{...}}xN`, `{{A}}+{{B}}xN` or `{{A}}-{{B}}xN`.
pub fn parse_item(s: &str) -> Result<Vec<NotationSample>, NotationError> {
    let trimmed_start = s.len() - s.trim_start().len();
    let (values, used) = parse_item_prefix(&s[trimmed_start..])
        .map_err(|e| shift(e, column_of(s, trimmed_start) - 1))?;
    let end = trimmed_start + used;
    if !s[end..].trim().is_empty() {
        let junk = end + (s[end..].len() - s[end..].trim_start().len());
        return Err(NotationError {
            column: column_of(s, junk),
            message: format!(
                "unexpected {:?} after histogram",
                s[end..].trim().chars().next().unwrap_or(' ')
            ),
        });
    }
    Ok(values)
}

/// Parses one histogram description `{{...}}` that must be all of `s`.
pub fn parse_histogram(s: &str) -> Result<NotationSample, NotationError> {
    let mut p = Parser::new(s.trim());
    let base = column_of(s, s.len() - s.trim_start().len()) - 1;
    let h = p.histogram().map_err(|e| shift(e, base))?;
    if p.pos != p.src.len() {
        return Err(shift(p.err("unexpected text after histogram"), base));
    }
    Ok(h)
}

/// Parses one series item at the start of `s` and returns its values and
/// the number of bytes it used, so a series-line parser can go on after it.
pub fn parse_item_prefix(s: &str) -> Result<(Vec<NotationSample>, usize), NotationError> {
    let mut p = Parser::new(s);
    let first = p.histogram()?;
    let op = match p.peek() {
        Some(b'x') => None,
        Some(b'+') if p.src[p.pos..].starts_with("+{{") => Some(false),
        Some(b'-') if p.src[p.pos..].starts_with("-{{") => Some(true),
        _ => return Ok((vec![first], p.pos)),
    };
    let inc = match op {
        Some(_) => {
            p.pos += 1;
            Some(p.histogram()?)
        }
        None => None,
    };
    if p.peek() != Some(b'x') {
        return Err(p.err("expected \"x\" and a repetition count after the histogram increment"));
    }
    p.pos += 1;
    let times_at = p.pos;
    let times = p.uint()?;
    let times = usize::try_from(times)
        .ok()
        .filter(|t| *t <= MAX_REPEAT)
        .ok_or_else(|| NotationError {
            column: column_of(s, times_at),
            message: format!("repetition count {times} is too large (at most {MAX_REPEAT})"),
        })?;
    let out = match (op, inc) {
        (Some(negate), Some(inc)) => {
            expand_series(first, inc, times, negate).map_err(|message| NotationError {
                column: column_of(s, 0),
                message,
            })?
        }
        _ => vec![first; times + 1],
    };
    Ok((out, p.pos))
}

/// More values than any test needs; keeps a typo from allocating gigabytes.
const MAX_REPEAT: usize = 1_000_000;

/// `base, base±inc, base±2inc, ...`: each value is the previous one combined
/// with `inc` by histogram addition (so schemas and zero buckets reconcile).
/// Every value carries the increment's "hint written" flag, as upstream.
fn expand_series(
    base: NotationSample,
    inc: NotationSample,
    times: usize,
    negate: bool,
) -> Result<Vec<NotationSample>, String> {
    let hint_set = inc.counter_reset_hint_set;
    let mut out = Vec::with_capacity(times + 1);
    let mut cur = base.histogram;
    out.push(NotationSample {
        histogram: cur.clone(),
        counter_reset_hint_set: hint_set,
    });
    for _ in 0..times {
        if cur.schema > inc.histogram.schema {
            return Err(format!(
                "error combining histograms: cannot merge from schema {} to {}",
                inc.histogram.schema, cur.schema
            ));
        }
        let mut next = cur.clone();
        let res = if negate {
            next.sub(&inc.histogram)
        } else {
            next.add(&inc.histogram)
        };
        res.map_err(|e| e.to_string())?;
        out.push(NotationSample {
            histogram: next.clone(),
            counter_reset_hint_set: hint_set,
        });
        cur = next;
    }
    Ok(out)
}

fn shift(mut e: NotationError, by: usize) -> NotationError {
    e.column += by;
    e
}

/// 1-based character column of byte offset `at` in `s`.
fn column_of(s: &str, at: usize) -> usize {
    s.get(..at).map_or(at, |p| p.chars().count()) + 1
}

struct Parser<'a> {
    src: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Parser { src, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.src.as_bytes().get(self.pos).copied()
    }

    fn err(&self, message: impl Into<String>) -> NotationError {
        NotationError {
            column: column_of(self.src, self.pos),
            message: message.into(),
        }
    }

    fn skip_spaces(&mut self) -> bool {
        let start = self.pos;
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
        self.pos > start
    }

    fn expect(&mut self, lit: &str) -> Result<(), NotationError> {
        if self.src[self.pos..].starts_with(lit) {
            self.pos += lit.len();
            Ok(())
        } else {
            Err(self.err(format!("expected {lit:?}")))
        }
    }

    /// A bare word: a key, a hint value, or a number's characters.
    fn word(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'+' | b'-') {
                self.pos += 1;
            } else {
                break;
            }
        }
        &self.src[start..self.pos]
    }

    fn number(&mut self) -> Result<f64, NotationError> {
        let start = self.pos;
        let w = self.word();
        if w.is_empty() {
            return Err(self.err("expected a number"));
        }
        crate::model::gofmt::parse_number(w).map_err(|e| NotationError {
            column: column_of(self.src, start),
            message: format!("error parsing number {w:?}: {e}"),
        })
    }

    fn int(&mut self) -> Result<i64, NotationError> {
        let start = self.pos;
        let w = self.word();
        w.parse::<i64>().map_err(|_| NotationError {
            column: column_of(self.src, start),
            message: format!("expected an integer, got {w:?}"),
        })
    }

    fn uint(&mut self) -> Result<u64, NotationError> {
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        self.src[start..self.pos]
            .parse::<u64>()
            .map_err(|_| NotationError {
                column: column_of(self.src, start),
                message: "expected a repetition count".into(),
            })
    }

    fn list(&mut self) -> Result<Vec<f64>, NotationError> {
        self.expect("[")?;
        let mut out = Vec::new();
        loop {
            self.skip_spaces();
            if self.peek() == Some(b']') {
                self.pos += 1;
                break;
            }
            if self.peek().is_none() {
                return Err(self.err("unclosed bucket list, expected \"]\""));
            }
            out.push(self.number()?);
            if !matches!(self.peek(), Some(b' ' | b'\t' | b']')) {
                return Err(self.err("expected a space or \"]\" in the bucket list"));
            }
        }
        Ok(out)
    }

    /// `{{key:value ...}}`.
    fn histogram(&mut self) -> Result<NotationSample, NotationError> {
        self.expect("{{")?;
        let mut h = FloatHistogram::default();
        let mut hint_set = false;
        let mut seen: Vec<&str> = Vec::new();
        let (mut pos_buckets, mut neg_buckets) = (None, None);
        let (mut pos_offset, mut neg_offset) = (0i32, 0i32);
        loop {
            self.skip_spaces();
            if self.src[self.pos..].starts_with("}}") {
                self.pos += 2;
                break;
            }
            if self.peek().is_none() {
                return Err(self.err("unclosed histogram, expected \"}}\""));
            }
            let key_at = self.pos;
            let key = self.word();
            let key_err = |message: String| NotationError {
                column: column_of(self.src, key_at),
                message,
            };
            if key.is_empty() {
                return Err(self.err(
                    "unexpected character in histogram description, expected a key, e.g. buckets:[5 10 7]",
                ));
            }
            if seen.contains(&key) {
                return Err(key_err(format!("duplicate key \"{key}\" in histogram")));
            }
            seen.push(key);
            self.expect(":")?;
            match key {
                "schema" => h.schema = self.small_int("schema")?,
                "sum" => h.sum = self.number()?,
                "count" => h.count = self.number()?,
                "z_bucket" => h.zero_count = self.number()?,
                "z_bucket_w" => h.zero_threshold = self.number()?,
                "custom_values" => h.custom_values = self.list()?,
                "buckets" => pos_buckets = Some(self.list()?),
                "n_buckets" => neg_buckets = Some(self.list()?),
                "offset" => pos_offset = self.small_int("offset")?,
                "n_offset" => neg_offset = self.small_int("n_offset")?,
                "counter_reset_hint" => {
                    let at = self.pos;
                    h.counter_reset_hint = match self.word() {
                        "unknown" => CounterResetHint::Unknown,
                        "reset" => CounterResetHint::Reset,
                        "not_reset" => CounterResetHint::NotReset,
                        "gauge" => CounterResetHint::Gauge,
                        other => {
                            return Err(NotationError {
                                column: column_of(self.src, at),
                                message: format!(
                                    "error parsing counter_reset_hint: unknown value {other:?} (want unknown, reset, not_reset or gauge)"
                                ),
                            })
                        }
                    };
                    hint_set = true;
                }
                other => {
                    return Err(key_err(format!(
                        "unknown histogram description key {other:?}"
                    )))
                }
            }
            if self.peek().is_none() {
                return Err(self.err("unclosed histogram, expected \"}}\""));
            }
            if !self.skip_spaces() && !self.src[self.pos..].starts_with("}}") {
                return Err(self.err("expected a space or \"}}\" after a histogram field"));
            }
        }
        for (buckets, offset, positive) in [
            (pos_buckets, pos_offset, true),
            (neg_buckets, neg_offset, false),
        ] {
            let Some(b) = buckets else { continue };
            let spans = vec![Span::new(offset, b.len() as u32)];
            if positive {
                h.positive_spans = spans;
                h.positive_buckets = b;
            } else {
                h.negative_spans = spans;
                h.negative_buckets = b;
            }
        }
        Ok(NotationSample {
            histogram: h,
            counter_reset_hint_set: hint_set,
        })
    }

    fn small_int(&mut self, what: &str) -> Result<i32, NotationError> {
        let at = self.pos;
        let v = self.int()?;
        i32::try_from(v).map_err(|_| NotationError {
            column: column_of(self.src, at),
            message: format!("{what} {v} out of range"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_form() {
        let s = parse_histogram(
            "{{schema:1 sum:-0.3 count:32.1 z_bucket:7.1 z_bucket_w:0.05 buckets:[5.1 10 7] offset:-3 n_buckets:[4.1 5] n_offset:-5 counter_reset_hint:gauge}}",
        )
        .unwrap();
        let h = &s.histogram;
        assert!(s.counter_reset_hint_set);
        assert_eq!(h.schema, 1);
        assert_eq!(h.sum, -0.3);
        assert_eq!(h.count, 32.1);
        assert_eq!(h.zero_count, 7.1);
        assert_eq!(h.zero_threshold, 0.05);
        assert_eq!(h.positive_spans, vec![Span::new(-3, 3)]);
        assert_eq!(h.positive_buckets, vec![5.1, 10.0, 7.0]);
        assert_eq!(h.negative_spans, vec![Span::new(-5, 2)]);
        assert_eq!(h.negative_buckets, vec![4.1, 5.0]);
        assert_eq!(h.counter_reset_hint, CounterResetHint::Gauge);
    }

    #[test]
    fn empty_and_spaces() {
        for s in ["{{}}", "{{ }}", "{{schema:0 }}"] {
            let h = parse_histogram(s).unwrap().histogram;
            assert_eq!(h, FloatHistogram::default(), "{s}");
        }
        let h = parse_histogram("{{buckets:[1 2 ]}}").unwrap().histogram;
        assert_eq!(h.positive_buckets, vec![1.0, 2.0]);
    }

    #[test]
    fn custom_values_and_special_numbers() {
        let h = parse_histogram(
            "{{schema:-53 sum:NaN count:Inf custom_values:[-3 0.1 1e3] buckets:[1 0x10]}}",
        )
        .unwrap()
        .histogram;
        assert_eq!(h.schema, -53);
        assert!(h.sum.is_nan());
        assert_eq!(h.count, f64::INFINITY);
        assert_eq!(h.custom_values, vec![-3.0, 0.1, 1000.0]);
        assert_eq!(h.positive_buckets, vec![1.0, 16.0]);
    }

    #[test]
    fn repetition_and_expansion() {
        let v = parse_item("{{schema:0 sum:1 count:1}}x3").unwrap();
        assert_eq!(v.len(), 4);
        assert!(v.iter().all(|s| s.histogram.sum == 1.0));

        let v = parse_item(
            "{{schema:0 sum:1 count:1 buckets:[1]}}+{{sum:2 count:2 buckets:[1 1] offset:1}}x2",
        )
        .unwrap();
        assert_eq!(v.len(), 3);
        assert_eq!(v[2].histogram.sum, 5.0);
        assert_eq!(v[2].histogram.count, 5.0);
        assert_eq!(
            v[2].histogram.positive_list(),
            vec![(0, 1.0), (1, 2.0), (2, 2.0)]
        );

        let v =
            parse_item("{{sum:10 count:10}}-{{sum:1 count:2 counter_reset_hint:gauge}}x2").unwrap();
        assert_eq!(v[2].histogram.sum, 8.0);
        assert_eq!(v[2].histogram.count, 6.0);
        assert!(v.iter().all(|s| s.counter_reset_hint_set));
    }

    #[test]
    fn expansion_rejects_finer_increment_schema() {
        let e = parse_item("{{schema:0 sum:1 count:1}}+{{schema:-1 sum:1 count:1}}x2").unwrap_err();
        assert!(
            e.message.contains("cannot merge from schema -1 to 0"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_column() {
        let cases = [
            (
                "{{schema:0 sum:1 cnt:2}}",
                18,
                "unknown histogram description key",
            ),
            ("{{sum:1 sum:2}}", 9, "duplicate key \"sum\""),
            ("{{sum:abc}}", 7, "error parsing number"),
            ("{{buckets:[1 2}}", 15, "expected a space or \"]\""),
            ("{{sum:1", 8, "unclosed histogram"),
            (
                "{{counter_reset_hint:maybe}}",
                22,
                "unknown value \"maybe\"",
            ),
            ("{{schema:1.5}}", 10, "expected an integer"),
            ("  {{sum:1}}x", 13, "expected a repetition count"),
            ("{{sum:1}}+{{sum:1}}", 20, "expected \"x\""),
            ("{{sum:1}} 5", 11, "unexpected '5'"),
        ];
        for (src, col, msg) in cases {
            let e = parse_item(src).unwrap_err();
            assert_eq!(e.column, col, "{src}: {e}");
            assert!(e.message.contains(msg), "{src}: {e}");
        }
    }

    /// Every histogram item in Prometheus' own promqltest files and promtool
    /// test files parses, and round-trips through `test_expression` where
    /// it is a single histogram.
    #[test]
    fn parses_every_upstream_item() {
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/upstream/prometheus");
        let mut files = Vec::new();
        for dir in ["promql", "promtool"] {
            let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
                panic!("upstream test data missing at {}", root.join(dir).display());
            };
            for e in rd.flatten() {
                let p = e.path();
                if matches!(p.extension().and_then(|x| x.to_str()), Some("test" | "yml")) {
                    files.push(p);
                }
            }
        }
        files.sort();
        let mut items = 0;
        for f in &files {
            let text = std::fs::read_to_string(f).unwrap();
            for (ln, line) in text.lines().enumerate() {
                let body = line.trim_start();
                // Comments and alert templates (`{{ $labels.x }}`) are not series.
                if body.starts_with('#') {
                    continue;
                }
                let mut rest = line;
                let mut col = 0;
                while let Some(at) = rest.find("{{") {
                    if rest[at..].starts_with("{{ $") || rest[at..].starts_with("{{$") {
                        rest = &rest[at + 2..];
                        col += at + 2;
                        continue;
                    }
                    match parse_item_prefix(&rest[at..]) {
                        Ok((vals, used)) => {
                            assert!(!vals.is_empty());
                            if vals.len() == 1 {
                                let h = &vals[0].histogram;
                                let again = parse_histogram(&h.test_expression())
                                    .unwrap_or_else(|e| panic!("{}: {e}", h.test_expression()));
                                let mut a = h.clone();
                                a.compact(usize::MAX);
                                assert!(
                                    a.equals(&again.histogram),
                                    "{} vs {}",
                                    h.test_expression(),
                                    again.histogram
                                );
                            }
                            items += 1;
                            rest = &rest[at + used..];
                            col += at + used;
                        }
                        Err(e) => panic!(
                            "{}:{}:{}: {}",
                            f.display(),
                            ln + 1,
                            col + at + e.column,
                            e.message
                        ),
                    }
                }
            }
        }
        // 843 `{{...}}` occurrences exist in these files; `+{{` pairs count once.
        assert!(items > 700, "only {items} histogram items found");
    }
}
