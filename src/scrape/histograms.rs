//! What a scrape does to native histograms before they are stored:
//! `native_histogram_min_bucket_factor` (a highest schema),
//! `native_histogram_bucket_limit` (the resolution lowered until the
//! histogram fits, else the scrape fails), and
//! `convert_classic_histograms_to_nhcb` (a classic histogram's cumulative
//! buckets, count and sum become one histogram with custom bounds, schema
//! -53), with Prometheus 3's rules.

use crate::model::histogram::{
    is_exponential_schema, spans_for, CounterResetHint, FloatHistogram, Histogram, Span,
    CUSTOM_BUCKETS_SCHEMA, EXPONENTIAL_SCHEMA_MAX, EXPONENTIAL_SCHEMA_MIN,
};
use crate::tsdb::HistValue;

/// Why a histogram could not be made to fit the scrape's limits.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum LimitError {
    /// Prometheus' `errBucketLimit`.
    #[error("histogram bucket limit exceeded")]
    BucketLimit,
}

/// The highest schema whose bucket growth factor is at least `factor`
/// (`native_histogram_min_bucket_factor`; 1 or less means no bound, i.e.
/// the highest schema, as Prometheus' `pickSchema`).
pub fn pick_schema(factor: f64) -> i32 {
    let factor = if factor <= 1.0 { 1.00271 } else { factor };
    let floor = (-factor.log2().log2()).floor();
    if floor >= f64::from(EXPONENTIAL_SCHEMA_MAX) {
        EXPONENTIAL_SCHEMA_MAX
    } else if floor <= f64::from(EXPONENTIAL_SCHEMA_MIN) {
        EXPONENTIAL_SCHEMA_MIN
    } else {
        floor as i32
    }
}

/// The limits one scrape config puts on native histograms.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// `native_histogram_bucket_limit`; 0: none.
    pub bucket_limit: u64,
    /// From `native_histogram_min_bucket_factor`.
    pub max_schema: i32,
}

impl Limits {
    pub fn new(bucket_limit: u64, min_bucket_factor: f64) -> Self {
        Limits {
            bucket_limit,
            max_schema: pick_schema(min_bucket_factor),
        }
    }

    /// Applies the schema bound, then the bucket limit (Prometheus wraps its
    /// appenders in that order). Exponential histograms are merged to lower
    /// schemas; a custom-bucket histogram over the limit, or one still over
    /// it at the lowest schema, is an error.
    pub fn apply(&self, v: &mut HistValue) -> Result<(), LimitError> {
        let schema = schema_of(v);
        // Schemas above 8 (reserved) always come down to at most 8.
        if schema > self.max_schema && schema > CUSTOM_BUCKETS_SCHEMA {
            reduce(v, self.max_schema);
        }
        if self.bucket_limit == 0 {
            return Ok(());
        }
        let limit = self.bucket_limit as usize;
        if bucket_count(v) > limit && !is_exponential_schema(schema_of(v)) {
            return Err(LimitError::BucketLimit);
        }
        while bucket_count(v) > limit {
            let s = schema_of(v);
            if s <= EXPONENTIAL_SCHEMA_MIN {
                return Err(LimitError::BucketLimit);
            }
            reduce(v, s - 1);
        }
        Ok(())
    }
}

fn schema_of(v: &HistValue) -> i32 {
    match v {
        HistValue::Int(h) => h.schema,
        HistValue::Float(f) => f.schema,
    }
}

/// Buckets as Prometheus counts them: the length of the bucket arrays
/// (zero buckets inside spans included).
fn bucket_count(v: &HistValue) -> usize {
    match v {
        HistValue::Int(h) => h.positive_buckets.len() + h.negative_buckets.len(),
        HistValue::Float(f) => f.positive_buckets.len() + f.negative_buckets.len(),
    }
}

/// Lowers the schema of an exponential histogram to `target` (< its own).
fn reduce(v: &mut HistValue, target: i32) {
    match v {
        HistValue::Int(h) => reduce_int(h, target),
        HistValue::Float(f) => {
            // Only a lower exponential target reaches here; nothing else can fail.
            let _ = f.reduce_resolution(target);
        }
    }
}

/// [`FloatHistogram::reduce_resolution`] for integer (delta-encoded) counts.
fn reduce_int(h: &mut Histogram, target: i32) {
    let side = |spans: &[Span], deltas: &[i64]| -> (Vec<Span>, Vec<i64>) {
        let mut out: Vec<(i32, i64)> = Vec::with_capacity(deltas.len());
        let mut abs = 0i64;
        for (idx, d) in crate::model::histogram::span_indices(spans)
            .into_iter()
            .zip(deltas)
        {
            abs = abs.wrapping_add(*d);
            let t = crate::model::histogram::target_index(idx, h.schema, target);
            match out.last_mut() {
                Some((l, c)) if *l == t => *c = c.wrapping_add(abs),
                _ => out.push((t, abs)),
            }
        }
        let spans = spans_for(out.iter().map(|b| b.0));
        let mut prev = 0i64;
        let deltas = out
            .iter()
            .map(|&(_, c)| {
                let d = c.wrapping_sub(prev);
                prev = c;
                d
            })
            .collect();
        (spans, deltas)
    };
    let (ps, pb) = side(&h.positive_spans, &h.positive_buckets);
    let (ns, nb) = side(&h.negative_spans, &h.negative_buckets);
    h.positive_spans = ps;
    h.positive_buckets = pb;
    h.negative_spans = ns;
    h.negative_buckets = nb;
    h.schema = target;
}

/// Why a classic histogram does not convert to a custom-bucket one
/// (Prometheus' convertnhcb errors).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum NhcbError {
    #[error("bucket boundary must not be NaN")]
    NaNBucket,
    #[error("bucket count must be non-negative: le={le}, count={count}")]
    NegativeBucketCount { le: String, count: String },
    #[error("count must be non-negative: count={0}")]
    NegativeCount(String),
    #[error("count is not cumulative: {0}")]
    NotCumulative(String),
    #[error("count mismatch: count={count} != le=+Inf count={inf}")]
    CountMismatch { count: String, inf: String },
}

fn g(v: f64) -> String {
    crate::model::gofmt::strconv_float(v, 'g', -1)
}

/// Collects one classic histogram (cumulative bucket counts by upper bound,
/// count, sum) and converts it to a histogram with custom bounds.
#[derive(Clone, Debug, Default)]
pub struct ClassicCollector {
    buckets: Vec<(f64, f64)>,
    count: Option<f64>,
    sum: f64,
    err: Option<NhcbError>,
}

impl ClassicCollector {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.buckets.is_empty() && self.count.is_none()
    }

    pub fn set_count(&mut self, count: f64) {
        if self.err.is_some() {
            return;
        }
        if count < 0.0 {
            self.err = Some(NhcbError::NegativeCount(g(count)));
            return;
        }
        self.count = Some(count);
    }

    pub fn set_sum(&mut self, sum: f64) {
        self.sum = sum;
    }

    /// One `_bucket` series: `le` and its cumulative count. Buckets may come
    /// in any order; a repeated bound is ignored.
    pub fn set_bucket(&mut self, le: f64, count: f64) {
        if self.err.is_some() {
            return;
        }
        if le.is_nan() {
            self.err = Some(NhcbError::NaNBucket);
            return;
        }
        if count < 0.0 {
            self.err = Some(NhcbError::NegativeBucketCount {
                le: g(le),
                count: g(count),
            });
            return;
        }
        let i = self.buckets.partition_point(|b| b.0 < le);
        if self.buckets.get(i).is_some_and(|b| b.0 == le) {
            return;
        }
        if i > 0 && count < self.buckets[i - 1].1 {
            self.err = Some(NhcbError::NotCumulative(format!(
                "{} < {}",
                g(count),
                g(self.buckets[i - 1].1)
            )));
            return;
        }
        if let Some(next) = self.buckets.get(i) {
            if count > next.1 {
                self.err = Some(NhcbError::NotCumulative(format!(
                    "{} > {}",
                    g(count),
                    g(next.1)
                )));
                return;
            }
        }
        self.buckets.insert(i, (le, count));
    }

    /// The histogram with custom bounds: integer counts when every count is
    /// integral, float counts otherwise. `gauge` marks a gauge histogram.
    pub fn convert(mut self, gauge: bool) -> Result<HistValue, NhcbError> {
        if let Some(e) = self.err {
            return Err(e);
        }
        let count = match self.count {
            Some(c) => c,
            None => self.buckets.last().map(|b| b.1).unwrap_or(0.0),
        };
        if self.buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
            if let Some(&(_, last)) = self.buckets.last() {
                if count < last {
                    return Err(NhcbError::NotCumulative(format!(
                        "{} < {}",
                        g(count),
                        g(last)
                    )));
                }
            }
            self.buckets.push((f64::INFINITY, count));
        }
        let inf = self.buckets[self.buckets.len() - 1].1;
        if count != inf {
            return Err(NhcbError::CountMismatch {
                count: g(count),
                inf: g(inf),
            });
        }
        let hint = if gauge {
            CounterResetHint::Gauge
        } else {
            CounterResetHint::Unknown
        };
        let n = self.buckets.len();
        let custom_values: Vec<f64> = self.buckets[..n - 1].iter().map(|b| b.0).collect();
        let spans = vec![Span::new(0, n as u32)];
        let integral = |v: f64| v.round() == v && v.abs() < 9.0e18;
        if self.buckets.iter().all(|b| integral(b.1)) && integral(count) {
            let mut prev_count = 0i64;
            let mut prev_delta = 0i64;
            let mut deltas = Vec::with_capacity(n);
            for b in &self.buckets {
                let c = b.1 as i64;
                let delta = c - prev_count;
                deltas.push(delta - prev_delta);
                prev_count = c;
                prev_delta = delta;
            }
            let mut h = Histogram {
                counter_reset_hint: hint,
                schema: CUSTOM_BUCKETS_SCHEMA,
                zero_threshold: 0.0,
                zero_count: 0,
                count: count as u64,
                sum: self.sum,
                positive_spans: spans,
                negative_spans: Vec::new(),
                positive_buckets: deltas,
                negative_buckets: Vec::new(),
                custom_values,
            };
            h.compact(2);
            return Ok(HistValue::Int(h));
        }
        let mut prev = 0.0;
        let buckets = self
            .buckets
            .iter()
            .map(|b| {
                let d = b.1 - prev;
                prev = b.1;
                d
            })
            .collect();
        let mut f = FloatHistogram {
            counter_reset_hint: hint,
            schema: CUSTOM_BUCKETS_SCHEMA,
            zero_threshold: 0.0,
            zero_count: 0.0,
            count,
            sum: self.sum,
            positive_spans: spans,
            negative_spans: Vec::new(),
            positive_buckets: buckets,
            negative_buckets: Vec::new(),
            custom_values,
        };
        f.compact(0);
        Ok(HistValue::Float(f))
    }
}

/// The classic histograms of a text or OpenMetrics payload converted to
/// NHCB, as Prometheus' NHCB parser does: only families of TYPE
/// `histogram`; each run of consecutive `_bucket`/`_count`/`_sum` series
/// with the same labels (apart from `le`) is one histogram; one that does
/// not convert is dropped.
#[derive(Debug, Default)]
pub struct TextNhcb {
    pub histograms: Vec<crate::scrape::parser::protobuf::NativeSample>,
    /// Byte ranges (line included its newline) of the classic series that
    /// were converted, for a payload that drops them.
    pub lines: Vec<(usize, usize)>,
}

/// Converts the classic histograms of `buf`; `None` when the payload does
/// not parse (the scrape then reports the parse error itself).
pub fn text_to_nhcb(buf: &[u8], format: crate::scrape::parser::Format) -> Option<TextNhcb> {
    use crate::scrape::parser::{Entry, MetricType, Parser, Validation};
    let mut out = TextNhcb::default();
    let mut p = Parser::with_validation(buf, format, Validation::PrometheusCompatible);
    let mut family: Option<String> = None;
    let mut cur: Option<Group> = None;
    loop {
        let e = match p.next() {
            Ok(Some(e)) => e,
            Ok(None) => break,
            Err(_) => return None,
        };
        let s = match e {
            Entry::Type { family: f, kind } => {
                flush(&mut cur, &mut out);
                family = (kind == MetricType::Histogram).then(|| f.into_owned());
                continue;
            }
            Entry::Sample(s) => s,
            _ => continue,
        };
        let name = s.metric_name();
        let part = family.as_deref().and_then(|f| {
            let rest = name.strip_prefix(f)?;
            match rest {
                "_bucket" => Some(Part::Bucket),
                "_count" => Some(Part::Count),
                "_sum" => Some(Part::Sum),
                _ => None,
            }
        });
        let le = match part {
            Some(Part::Bucket) => s
                .label_pairs()
                .find(|(n, _)| n == "le")
                .and_then(|(_, v)| v.parse::<f64>().ok())
                .filter(|v| !v.is_nan()),
            _ => None,
        };
        let (Some(part), Some(fam)) = (part, family.as_deref()) else {
            flush(&mut cur, &mut out);
            continue;
        };
        if part == Part::Bucket && le.is_none() {
            flush(&mut cur, &mut out);
            continue;
        }
        let mut b = s.labels().builder();
        b.set(crate::model::labels::METRIC_NAME, fam).del("le");
        let labels = b.build();
        if cur.as_ref().is_some_and(|g| g.labels != labels) {
            flush(&mut cur, &mut out);
        }
        let g = cur.get_or_insert_with(|| Group {
            labels,
            timestamp: s.timestamp,
            collector: ClassicCollector::new(),
            exemplars: Vec::new(),
        });
        match part {
            Part::Bucket => g.collector.set_bucket(le.unwrap_or(f64::NAN), s.value),
            Part::Count => g.collector.set_count(s.value),
            Part::Sum => g.collector.set_sum(s.value),
        }
        if let Some(e) = s.exemplar.as_ref().filter(|e| e.timestamp.is_some()) {
            g.exemplars
                .push(crate::scrape::parser::protobuf::ScrapedExemplar {
                    labels: e.labels(),
                    value: e.value,
                    timestamp: e.timestamp,
                });
        }
        let start = s.series.as_ptr() as usize - buf.as_ptr() as usize;
        let end = buf[start..]
            .iter()
            .position(|c| *c == b'\n')
            .map_or(buf.len(), |i| start + i + 1);
        out.lines.push((start, end));
    }
    flush(&mut cur, &mut out);
    Some(out)
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    Bucket,
    Count,
    Sum,
}

struct Group {
    labels: crate::model::Labels,
    timestamp: Option<i64>,
    collector: ClassicCollector,
    exemplars: Vec<crate::scrape::parser::protobuf::ScrapedExemplar>,
}

fn flush(cur: &mut Option<Group>, out: &mut TextNhcb) {
    let Some(g) = cur.take() else {
        return;
    };
    // As Prometheus: a histogram that does not convert, or converts to an
    // invalid one, is not stored.
    let Ok(value) = g.collector.convert(false) else {
        return;
    };
    if value.validate().is_err() {
        return;
    }
    out.histograms
        .push(crate::scrape::parser::protobuf::NativeSample {
            labels: g.labels,
            timestamp: g.timestamp,
            value,
            exemplars: g.exemplars,
            created: None,
        });
}

/// `buf` without the byte ranges `lines` (sorted, disjoint).
pub fn without_lines(buf: &[u8], lines: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len());
    let mut at = 0;
    for &(a, b) in lines {
        out.extend_from_slice(&buf[at..a]);
        at = b;
    }
    out.extend_from_slice(&buf[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int(schema: i32, spans: &[(i32, u32)], deltas: &[i64]) -> HistValue {
        let count = {
            let mut a = 0i64;
            deltas
                .iter()
                .map(|d| {
                    a += d;
                    a
                })
                .sum::<i64>() as u64
        };
        HistValue::Int(Histogram {
            schema,
            count,
            sum: 1.0,
            positive_spans: spans.iter().map(|&(o, l)| Span::new(o, l)).collect(),
            positive_buckets: deltas.to_vec(),
            ..Histogram::default()
        })
    }

    #[test]
    fn pick_schema_as_prometheus() {
        // Values from Prometheus' TestPickSchema.
        for (factor, want) in [
            (65536.0, -4),
            (256.0, -3),
            (16.0, -2),
            (4.0, -1),
            (2.0, 0),
            (1.4, 1),
            (1.1, 2),
            (1.09, 3),
            (1.04, 4),
            (1.02, 5),
            (1.01, 6),
            (1.005, 7),
            (1.002, 8),
            (0.0, 8),
            (1.0, 8),
            (1e30, -4),
        ] {
            assert_eq!(pick_schema(factor), want, "factor {factor}");
        }
    }

    #[test]
    fn bucket_limit_lowers_the_schema_until_it_fits() {
        // Schema 1, buckets 1..=4 with counts 1,2,3,4 (indices 1..4).
        let mut v = int(1, &[(1, 4)], &[1, 1, 1, 1]);
        let before = v.to_float();
        Limits::new(2, 0.0).apply(&mut v).unwrap();
        let HistValue::Int(h) = &v else {
            panic!("{v:?}")
        };
        // Schema 0 merges buckets 1+2 and 3+4: two buckets, same total.
        assert_eq!(h.schema, 0);
        assert!(h.positive_buckets.len() <= 2, "{h:?}");
        h.validate().unwrap();
        assert_eq!(h.count, 10);
        // The same as the float reduction.
        let mut f = before;
        f.reduce_resolution(0).unwrap();
        assert_eq!(v.to_float().positive_list(), f.positive_list());
        // Within the limit: untouched.
        let mut w = int(1, &[(1, 4)], &[1, 1, 1, 1]);
        Limits::new(4, 0.0).apply(&mut w).unwrap();
        assert_eq!(w, int(1, &[(1, 4)], &[1, 1, 1, 1]));
    }

    #[test]
    fn bucket_limit_fails_when_impossible() {
        // Buckets far apart stay apart down to schema -4.
        let mut v = int(0, &[(-100, 1), (300, 1)], &[1, 0]);
        assert_eq!(
            Limits::new(1, 0.0).apply(&mut v),
            Err(LimitError::BucketLimit)
        );
        // Custom buckets cannot be merged.
        let mut c = ClassicCollector::new();
        c.set_bucket(1.0, 1.0);
        c.set_bucket(2.0, 2.0);
        c.set_count(3.0);
        let mut v = c.convert(false).unwrap();
        assert_eq!(
            Limits::new(2, 0.0).apply(&mut v),
            Err(LimitError::BucketLimit)
        );
        assert!(Limits::new(3, 0.0).apply(&mut v).is_ok());
    }

    #[test]
    fn min_bucket_factor_caps_the_schema() {
        let mut v = HistValue::Float(int(3, &[(0, 8)], &[1, 0, 0, 0, 0, 0, 0, 0]).to_float());
        Limits::new(0, 2.0).apply(&mut v).unwrap();
        assert_eq!(schema_of(&v), 0);
        assert_eq!(v.to_float().count, 8.0);
        // Already coarse enough: untouched.
        let mut w = int(-1, &[(0, 1)], &[3]);
        Limits::new(0, 2.0).apply(&mut w).unwrap();
        assert_eq!(schema_of(&w), -1);
        // Reserved schemas above 8 come down to 8 without any limit set.
        let mut r = int(12, &[(0, 32)], &[1; 32]);
        Limits::new(0, 0.0).apply(&mut r).unwrap();
        assert_eq!(schema_of(&r), 8);
        assert_eq!(r.to_float().count, (1..=32).sum::<i64>() as f64);
    }

    #[test]
    fn classic_to_nhcb() {
        // Buckets out of order, no +Inf: the count becomes the +Inf bucket.
        let mut c = ClassicCollector::new();
        c.set_bucket(1.0, 3.0);
        c.set_bucket(0.5, 1.0);
        c.set_bucket(1.0, 3.0);
        c.set_count(5.0);
        c.set_sum(7.5);
        let HistValue::Int(h) = c.convert(false).unwrap() else {
            panic!()
        };
        assert_eq!(h.schema, CUSTOM_BUCKETS_SCHEMA);
        assert_eq!(h.custom_values, vec![0.5, 1.0]);
        assert_eq!(h.positive_spans, vec![Span::new(0, 3)]);
        // Bucket counts 1, 2, 2 as deltas.
        assert_eq!(h.positive_buckets, vec![1, 1, 0]);
        assert_eq!((h.count, h.sum), (5, 7.5));
        h.validate().unwrap();
        // Fractional counts: a float histogram; gauge hint kept.
        let mut c = ClassicCollector::new();
        c.set_bucket(1.0, 0.5);
        c.set_bucket(f64::INFINITY, 2.5);
        c.set_count(2.5);
        let HistValue::Float(f) = c.convert(true).unwrap() else {
            panic!()
        };
        assert_eq!(f.positive_buckets, vec![0.5, 2.0]);
        assert_eq!(f.custom_values, vec![1.0]);
        assert_eq!(f.counter_reset_hint, CounterResetHint::Gauge);
        // Empty buckets between populated ones are dropped from the spans,
        // bounds stay.
        let mut c = ClassicCollector::new();
        for (le, n) in [(1.0, 2.0), (2.0, 2.0), (3.0, 2.0), (4.0, 2.0), (5.0, 4.0)] {
            c.set_bucket(le, n);
        }
        c.set_count(4.0);
        let HistValue::Int(h) = c.convert(false).unwrap() else {
            panic!()
        };
        assert_eq!(h.custom_values, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!(h.positive_spans, vec![Span::new(0, 1), Span::new(3, 1)]);
        h.validate().unwrap();
    }

    #[test]
    fn classic_to_nhcb_errors() {
        let mut c = ClassicCollector::new();
        c.set_bucket(1.0, 3.0);
        c.set_bucket(2.0, 2.0);
        let e = c.convert(false).unwrap_err();
        assert_eq!(e.to_string(), "count is not cumulative: 2 < 3");
        let mut c = ClassicCollector::new();
        c.set_bucket(1.0, 3.0);
        c.set_count(2.0);
        assert!(matches!(
            c.convert(false),
            Err(NhcbError::NotCumulative(_) | NhcbError::CountMismatch { .. })
        ));
        let mut c = ClassicCollector::new();
        c.set_bucket(f64::NAN, 1.0);
        assert_eq!(c.convert(false), Err(NhcbError::NaNBucket));
        let mut c = ClassicCollector::new();
        c.set_count(-1.0);
        assert!(matches!(c.convert(false), Err(NhcbError::NegativeCount(_))));
    }

    #[test]
    fn text_classic_histograms_to_nhcb() {
        use crate::scrape::parser::Format;
        let text = b"# TYPE h histogram\nh_bucket{a=\"1\",le=\"1\"} 2\nh_bucket{a=\"1\",le=\"+Inf\"} 3\nh_sum{a=\"1\"} 4.5\nh_count{a=\"1\"} 3\nh_bucket{a=\"2\",le=\"1\"} 1\nh_count{a=\"2\"} 1\n# TYPE g gauge\ng 1\n# TYPE u untyped\nu_bucket{le=\"+Inf\"} 1\n";
        let n = text_to_nhcb(text, Format::PrometheusText).unwrap();
        let names: Vec<String> = n.histograms.iter().map(|h| h.labels.to_string()).collect();
        assert_eq!(names, vec!["h{a=\"1\"}", "h{a=\"2\"}"]);
        let f = n.histograms[0].value.to_float();
        assert_eq!((f.count, f.sum), (3.0, 4.5));
        assert_eq!(f.custom_values, vec![1.0]);
        assert_eq!(f.positive_buckets, vec![2.0, 1.0]);
        // The converted lines go; the gauge and the untyped `_bucket` stay.
        let rest = without_lines(text, &n.lines);
        assert_eq!(
            String::from_utf8(rest).unwrap(),
            "# TYPE h histogram\n# TYPE g gauge\ng 1\n# TYPE u untyped\nu_bucket{le=\"+Inf\"} 1\n"
        );
        // Unparseable payloads are left to the scrape's own parse.
        assert!(text_to_nhcb(b"h_bucket{", Format::PrometheusText).is_none());
    }
}
