use super::*;

fn fh(schema: i32, count: f64, sum: f64, pos: &[(i32, f64)], neg: &[(i32, f64)]) -> FloatHistogram {
    let mut h = FloatHistogram {
        schema,
        count,
        sum,
        ..FloatHistogram::default()
    };
    h.set_positive(pos);
    h.set_negative(neg);
    h
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn bucket_bounds_match_prometheus_table() {
    // Spot values of Prometheus' precomputed boundary table.
    assert_eq!(exponential_fraction(1, 1), 0.7071067811865475);
    assert_eq!(exponential_fraction(1, 3), 0.5452538663326288);
    assert_eq!(exponential_fraction(7, 3), 0.9170040432046711);
    assert_eq!(exponential_fraction(13, 4), 0.8781260801866495);
    assert_eq!(exponential_fraction(31, 5), 0.9785720620876999);
    assert_eq!(exponential_fraction(128, 8), 0.7071067811865475);
    assert_eq!(exponential_fraction(255, 8), 0.9972960560854698);
    assert_eq!(bucket_bound(0, 0, &[]), 1.0);
    assert_eq!(bucket_bound(1, 0, &[]), 2.0);
    assert_eq!(bucket_bound(-1, 0, &[]), 0.5);
    assert_eq!(bucket_bound(1, -2, &[]), 16.0);
    // Prometheus' boundary is one ulp below the nearest double to √2.
    assert_eq!(
        bucket_bound(1, 1, &[]),
        f64::from_bits(std::f64::consts::SQRT_2.to_bits() - 1)
    );
    assert_eq!(bucket_bound(256, -2, &[]), f64::MAX);
    assert_eq!(bucket_bound(1024, 0, &[]), f64::MAX);
    let cv = [5.0, 10.0];
    assert_eq!(
        bucket_bound(-1, CUSTOM_BUCKETS_SCHEMA, &cv),
        f64::NEG_INFINITY
    );
    assert_eq!(bucket_bound(1, CUSTOM_BUCKETS_SCHEMA, &cv), 10.0);
    assert_eq!(bucket_bound(2, CUSTOM_BUCKETS_SCHEMA, &cv), f64::INFINITY);
}

#[test]
fn string_form_matches_prometheus() {
    let mut h = fh(0, 7.0, 2.7, &[(0, 1.0), (1, 3.0), (2, 0.0)], &[(0, 1.0)]);
    h.zero_threshold = 0.001;
    h.zero_count = 2.0;
    assert_eq!(
        h.to_string(),
        "{count:7, sum:2.7, [-1,-0.5):1, [-0.001,0.001]:2, (0.5,1]:1, (1,2]:3}"
    );
    let mut c = fh(CUSTOM_BUCKETS_SCHEMA, 3.0, 1e6, &[(0, 1.0), (2, 2.0)], &[]);
    c.custom_values = vec![5.0, 10.0];
    assert_eq!(
        c.to_string(),
        "{count:3, sum:1e+06, [-Inf,5]:1, (10,+Inf]:2}"
    );
}

#[test]
fn bucket_iteration_and_all_buckets() {
    let mut h = fh(0, 6.0, 0.0, &[(-10, 1.0), (1, 2.0)], &[(-10, 1.0)]);
    h.zero_threshold = 0.01;
    h.zero_count = 2.0;
    let all = h.all_buckets();
    assert_eq!(all.len(), 4);
    // The tiny buckets next to zero are clamped to the zero threshold.
    assert_eq!(
        (all[0].lower, all[0].upper),
        (-bucket_bound(-10, 0, &[]), -0.01)
    );
    assert_eq!(
        (all[1].lower, all[1].upper, all[1].count),
        (-0.01, 0.01, 2.0)
    );
    assert_eq!(
        (all[2].lower, all[2].upper),
        (0.01, bucket_bound(-10, 0, &[]))
    );
    assert_eq!((all[3].lower, all[3].upper, all[3].count), (1.0, 2.0, 2.0));
    assert!(all[3].upper_inclusive && !all[3].lower_inclusive);
    assert!(all[0].lower_inclusive && !all[0].upper_inclusive);
}

#[test]
fn validation_errors() {
    let mut h = fh(0, 3.0, 1.0, &[(0, 1.0), (1, 2.0)], &[]);
    assert_eq!(h.validate(), Ok(()));
    h.positive_buckets.push(1.0);
    assert_eq!(
        h.validate().unwrap_err().to_string(),
        "positive side: spans need 2 buckets, have 3 buckets: histogram spans specify different number of buckets than provided"
    );
    let h = fh(0, 3.0, 1.0, &[(0, -1.0)], &[]);
    assert_eq!(
        h.validate().unwrap_err().to_string(),
        "positive side: bucket number 1 has observation count of -1: histogram has a bucket whose observation count is negative"
    );
    let h = fh(9, 0.0, 0.0, &[], &[]);
    assert_eq!(h.validate(), Err(HistogramError::InvalidSchema(9)));
    let mut c = fh(CUSTOM_BUCKETS_SCHEMA, 1.0, 1.0, &[(0, 1.0)], &[]);
    c.custom_values = vec![2.0, 1.0];
    assert!(matches!(
        c.validate(),
        Err(HistogramError::CustomBucketsInvalid(_))
    ));
    c.custom_values = vec![1.0, f64::INFINITY];
    assert!(matches!(
        c.validate(),
        Err(HistogramError::CustomBucketsInfinite(_))
    ));
    c.custom_values = vec![];
    c.positive_spans = vec![Span::new(3, 1)];
    assert!(matches!(
        c.validate(),
        Err(HistogramError::CustomBucketsMismatch(_))
    ));
    c.custom_values = vec![1.0, 2.0, 3.0];
    c.zero_count = 1.0;
    assert_eq!(c.validate(), Err(HistogramError::CustomBucketsZeroCount));

    // Integer histograms also check the count against the buckets.
    let i = Histogram {
        count: 4,
        zero_count: 1,
        sum: 3.0,
        positive_spans: vec![Span::new(0, 2)],
        positive_buckets: vec![1, 1], // absolute 1, 2
        ..Histogram::default()
    };
    assert_eq!(i.validate(), Ok(()));
    let bad = Histogram {
        count: 5,
        ..i.clone()
    };
    assert_eq!(
        bad.validate().unwrap_err().to_string(),
        "4 observations found in buckets, but the Count field is 5: histogram's observation count should equal the number of observations found in the buckets (in absence of NaN)"
    );
    let nan = Histogram {
        count: 5,
        sum: f64::NAN,
        ..i.clone()
    };
    assert_eq!(nan.validate(), Ok(()));
    let neg = Histogram {
        positive_buckets: vec![1, -2],
        ..i.clone()
    };
    assert!(matches!(
        neg.validate(),
        Err(HistogramError::NegativeBucketCount(_))
    ));
    let f = i.to_float();
    assert_eq!(f.positive_buckets, vec![1.0, 2.0]);
    assert_eq!((f.count, f.zero_count), (4.0, 1.0));
}

#[test]
fn compact_keeps_short_gaps_only() {
    let mut h = fh(
        0,
        3.0,
        0.0,
        &[(0, 0.0), (1, 1.0), (2, 0.0), (3, 0.0), (4, 2.0), (5, 0.0)],
        &[],
    );
    let mut one = h.clone();
    one.compact(1);
    assert_eq!(one.positive_spans, vec![Span::new(1, 1), Span::new(2, 1)]);
    assert_eq!(one.positive_buckets, vec![1.0, 2.0]);
    h.compact(2);
    assert_eq!(h.positive_spans, vec![Span::new(1, 4)]);
    assert_eq!(h.positive_buckets, vec![1.0, 0.0, 0.0, 2.0]);

    let mut i = Histogram {
        positive_spans: vec![Span::new(0, 3), Span::new(0, 2)],
        positive_buckets: absolute_to_deltas(&[0, 3, 0, 0, 5]),
        count: 8,
        ..Histogram::default()
    };
    i.compact(0);
    assert_eq!(i.positive_spans, vec![Span::new(1, 1), Span::new(2, 1)]);
    assert_eq!(deltas_to_absolute(&i.positive_buckets), vec![3, 5]);
}

#[test]
fn reduce_resolution_merges_buckets() {
    let mut h = fh(
        2,
        15.0,
        0.0,
        &[(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.0), (5, 5.0)],
        &[(0, 7.0)],
    );
    h.reduce_resolution(0).unwrap();
    assert_eq!(h.schema, 0);
    assert_eq!(h.positive_list(), vec![(1, 10.0), (2, 5.0)]);
    assert_eq!(h.negative_list(), vec![(0, 7.0)]);
    assert!(h.reduce_resolution(1).is_err());
}

#[test]
fn add_reconciles_schema_and_zero_bucket() {
    let a = fh(1, 3.0, 1.0, &[(1, 1.0), (2, 2.0)], &[]);
    let b = fh(0, 5.0, 2.0, &[(1, 5.0)], &[]);
    let mut s = a.clone();
    let info = s.add(&b).unwrap();
    assert_eq!(info, CombineInfo::default());
    assert_eq!(s.schema, 0);
    assert_eq!((s.count, s.sum), (8.0, 3.0));
    assert_eq!(s.positive_list(), vec![(1, 8.0)]);

    let mut a = fh(0, 3.0, 0.0, &[(0, 2.0), (1, 0.0)], &[]);
    a.zero_threshold = 0.001;
    a.zero_count = 1.0;
    let mut b = fh(0, 3.0, 0.0, &[], &[]);
    b.zero_threshold = 1.0;
    b.zero_count = 3.0;
    a.add(&b).unwrap();
    assert_eq!(a.zero_threshold, 1.0);
    assert_eq!(a.zero_count, 6.0);
    assert!(a.positive_list().is_empty());

    let mut d = fh(0, 4.0, 4.0, &[(0, 4.0)], &[]);
    d.sub(&fh(0, 1.0, 1.0, &[(1, 1.0)], &[])).unwrap();
    assert_eq!(d.positive_list(), vec![(0, 4.0), (1, -1.0)]);
}

#[test]
fn add_custom_buckets() {
    let mut a = fh(
        CUSTOM_BUCKETS_SCHEMA,
        4.0,
        4.0,
        &[(0, 1.0), (1, 1.0), (2, 1.0), (3, 1.0)],
        &[],
    );
    a.custom_values = vec![1.0, 2.0, 3.0];
    let mut b = fh(
        CUSTOM_BUCKETS_SCHEMA,
        3.0,
        3.0,
        &[(0, 1.0), (1, 1.0), (2, 1.0)],
        &[],
    );
    b.custom_values = vec![2.0, 4.0];
    let mut same = a.clone();
    assert!(!same.add(&a).unwrap().nhcb_bounds_reconciled);
    assert_eq!(same.positive_buckets, vec![2.0; 4]);
    let info = a.add(&b).unwrap();
    assert!(info.nhcb_bounds_reconciled);
    assert_eq!(a.custom_values, vec![2.0]);
    assert_eq!(a.positive_list(), vec![(0, 3.0), (1, 4.0)]);
    assert_eq!(a.count, 7.0);
    let e = a.add(&fh(0, 1.0, 1.0, &[], &[])).unwrap_err();
    assert_eq!(e, HistogramError::IncompatibleSchema);
    assert_eq!(
        e.to_string(),
        "cannot apply this operation on histograms with a mix of exponential and custom bucket schemas"
    );
}

#[test]
fn counter_reset_hint_on_add() {
    use CounterResetHint::*;
    let cases = [
        (Gauge, Reset, Gauge, false),
        (NotReset, Gauge, Gauge, false),
        (Unknown, Reset, Unknown, false),
        (Reset, Unknown, Unknown, false),
        (Reset, NotReset, Unknown, true),
        (Reset, Reset, Reset, false),
    ];
    for (a, b, want, collision) in cases {
        let mut x = FloatHistogram {
            counter_reset_hint: a,
            ..FloatHistogram::default()
        };
        let y = FloatHistogram {
            counter_reset_hint: b,
            ..FloatHistogram::default()
        };
        let info = x.add(&y).unwrap();
        assert_eq!(
            (x.counter_reset_hint, info.counter_reset_collision),
            (want, collision),
            "{a:?}+{b:?}"
        );
    }
}

#[test]
fn mul_div_scale_everything() {
    let mut h = fh(0, 4.0, 8.0, &[(0, 4.0)], &[(1, 2.0)]);
    h.zero_count = 1.0;
    h.mul(2.0);
    assert_eq!((h.count, h.sum, h.zero_count), (8.0, 16.0, 2.0));
    assert_eq!(
        (h.positive_buckets.clone(), h.negative_buckets.clone()),
        (vec![8.0], vec![4.0])
    );
    h.mul(-1.0);
    assert_eq!(h.counter_reset_hint, CounterResetHint::Gauge);
    let mut z = fh(0, 4.0, 8.0, &[(0, 4.0)], &[]);
    z.div(0.0);
    assert_eq!(z.count, f64::INFINITY);
    assert!(z.positive_buckets.is_empty() && z.positive_spans.is_empty());
    let mut d = fh(0, 4.0, 8.0, &[(0, 4.0)], &[]);
    d.div(4.0);
    assert_eq!((d.count, d.sum, d.positive_buckets[0]), (1.0, 2.0, 1.0));
}

#[test]
fn equality_ignores_span_shape_not_values() {
    let a = fh(0, 3.0, f64::NAN, &[(0, 1.0), (1, 2.0)], &[]);
    let mut b = a.clone();
    b.positive_spans = vec![Span::new(0, 1), Span::new(0, 0), Span::new(0, 1)];
    assert!(a.equals(&b));
    b.positive_buckets[1] = 3.0;
    assert!(!a.equals(&b));
    let c = fh(0, 3.0, 1.0, &[(0, 1.0), (1, 2.0)], &[]);
    assert!(!a.equals(&c));
}

#[test]
fn reset_detection() {
    let prev = fh(0, 5.0, 5.0, &[(0, 2.0), (1, 3.0)], &[]);
    assert!(!fh(0, 6.0, 6.0, &[(0, 2.0), (1, 4.0)], &[]).detect_reset(&prev));
    // One bucket went down although the count went up.
    assert!(fh(0, 6.0, 6.0, &[(0, 1.0), (1, 5.0)], &[]).detect_reset(&prev));
    // A populated bucket disappeared.
    assert!(fh(0, 6.0, 6.0, &[(1, 6.0)], &[]).detect_reset(&prev));
    // A higher resolution is a new series of observations.
    assert!(fh(1, 6.0, 6.0, &[], &[]).detect_reset(&prev));
    // A lower resolution is compared after merging the previous buckets.
    let fine = fh(1, 5.0, 5.0, &[(1, 2.0), (2, 3.0)], &[]);
    assert!(!fh(0, 6.0, 6.0, &[(1, 6.0)], &[]).detect_reset(&fine));
    assert!(fh(0, 6.0, 6.0, &[(1, 4.0), (2, 2.0)], &[]).detect_reset(&fine));
    // The hint wins.
    let mut hinted = fh(0, 6.0, 6.0, &[(0, 1.0), (1, 5.0)], &[]);
    hinted.counter_reset_hint = CounterResetHint::NotReset;
    assert!(!hinted.detect_reset(&prev));
    // A wider zero bucket swallows buckets of the previous histogram.
    let mut wide = fh(0, 6.0, 6.0, &[(1, 4.0)], &[]);
    wide.zero_threshold = 1.0;
    wide.zero_count = 2.0;
    assert!(!wide.detect_reset(&prev));
    wide.zero_count = 1.0;
    assert!(wide.detect_reset(&prev));
}

#[test]
fn quantiles() {
    let sqrt2 = std::f64::consts::SQRT_2;
    let h = fh(0, 4.0, 6.0, &[(1, 4.0)], &[]);
    assert!(close(histogram_quantile(0.5, &h).0, sqrt2));
    assert!(close(histogram_quantile(0.25, &h).0, 2f64.powf(0.25)));
    assert_eq!(histogram_quantile(1.0, &h).0, 2.0);
    assert_eq!(histogram_quantile(-1.0, &h).0, f64::NEG_INFINITY);
    assert_eq!(histogram_quantile(2.0, &h).0, f64::INFINITY);
    assert!(histogram_quantile(0.5, &FloatHistogram::default())
        .0
        .is_nan());
    // Negative buckets are mirrored.
    let n = fh(0, 4.0, -6.0, &[], &[(1, 4.0)]);
    assert!(close(histogram_quantile(0.5, &n).0, -sqrt2));

    // Custom buckets interpolate linearly; the first bucket starts at 0
    // when its upper bound is positive, the +Inf bucket answers its lower bound.
    let mut c = fh(
        CUSTOM_BUCKETS_SCHEMA,
        6.0,
        30.0,
        &[(0, 2.0), (1, 2.0), (2, 2.0)],
        &[],
    );
    c.custom_values = vec![10.0, 20.0];
    assert_eq!(histogram_quantile(0.25, &c).0, 7.5);
    assert_eq!(histogram_quantile(0.5, &c).0, 15.0);
    assert_eq!(histogram_quantile(0.9, &c).0, 20.0);

    // The zero bucket interpolates linearly, from 0 if only positive buckets exist.
    let mut z = fh(0, 4.0, 1.0, &[(1, 2.0)], &[]);
    z.zero_threshold = 1.0;
    z.zero_count = 2.0;
    assert_eq!(histogram_quantile(0.25, &z).0, 0.5);
    let mut zz = fh(0, 4.0, 0.0, &[], &[]);
    zz.zero_threshold = 1.0;
    zz.zero_count = 4.0;
    assert_eq!(histogram_quantile(0.5, &zz).0, 0.0);

    // NaN observations: count exceeds the buckets.
    let nan = fh(0, 5.0, f64::NAN, &[(1, 4.0)], &[]);
    let (v, info) = histogram_quantile(0.99, &nan);
    assert!(v.is_nan() && info.nan_result);
    let (v, info) = histogram_quantile(0.5, &nan);
    assert!(v > 1.0 && v < 2.0 && info.nan_skew);
}

#[test]
fn fractions() {
    let sqrt2 = std::f64::consts::SQRT_2;
    let h = fh(0, 4.0, 6.0, &[(1, 4.0)], &[]);
    assert!(close(histogram_fraction(0.0, sqrt2, &h).0, 0.5));
    assert_eq!(
        histogram_fraction(f64::NEG_INFINITY, f64::INFINITY, &h).0,
        1.0
    );
    assert_eq!(histogram_fraction(2.0, 1.0, &h).0, 0.0);
    assert!(histogram_fraction(f64::NAN, 1.0, &h).0.is_nan());
    let mut c = fh(
        CUSTOM_BUCKETS_SCHEMA,
        6.0,
        30.0,
        &[(0, 2.0), (1, 2.0), (2, 2.0)],
        &[],
    );
    c.custom_values = vec![10.0, 20.0];
    assert!(close(histogram_fraction(10.0, 15.0, &c).0, 1.0 / 6.0));
    // Nothing of the +Inf bucket is below a finite bound.
    assert!(close(histogram_fraction(0.0, 1000.0, &c).0, 4.0 / 6.0));
    let (f, info) = histogram_fraction(
        f64::NEG_INFINITY,
        f64::INFINITY,
        &fh(0, 5.0, f64::NAN, &[(1, 4.0)], &[]),
    );
    assert!(close(f, 0.8) && info.nan_fraction);
}

#[test]
fn simple_functions_and_variance() {
    let sqrt2 = std::f64::consts::SQRT_2;
    let h = fh(
        0,
        4.0,
        2.0 * (sqrt2 + 8f64.sqrt()),
        &[(1, 2.0), (2, 2.0)],
        &[],
    );
    assert_eq!(histogram_count(&h), 4.0);
    assert_eq!(histogram_sum(&h), h.sum);
    assert!(close(histogram_avg(&h), 1.5 * sqrt2));
    assert!(close(histogram_stdvar(&h), 0.5));
    assert!(close(histogram_stddev(&h), 0.5f64.sqrt()));
    // Custom buckets use the arithmetic middle; the zero bucket counts as 0.
    let mut c = fh(CUSTOM_BUCKETS_SCHEMA, 2.0, 20.0, &[(1, 1.0), (2, 1.0)], &[]);
    c.custom_values = vec![0.0, 10.0, 20.0];
    assert!(close(histogram_stdvar(&c), 25.0));
}

#[test]
fn test_expression_form() {
    let mut h = fh(1, 4.0, 5.0, &[(1, 1.0), (2, 0.0), (3, 2.0)], &[(0, 1.0)]);
    h.zero_threshold = 0.001;
    h.counter_reset_hint = CounterResetHint::Gauge;
    assert_eq!(
        h.test_expression(),
        "{{schema:1 count:4 sum:5 z_bucket_w:0.001 counter_reset_hint:gauge offset:1 buckets:[1 0 2] n_buckets:[1]}}"
    );
    let mut c = fh(CUSTOM_BUCKETS_SCHEMA, 1.0, 1.0, &[(0, 1.0)], &[]);
    c.custom_values = vec![5.0, 10.0];
    assert_eq!(
        c.test_expression(),
        "{{schema:-53 count:1 sum:1 custom_values:[5 10] buckets:[1]}}"
    );
}

/// Upstream conformance of the functions: every `eval instant at T
/// histogram_<fn>(<numbers>, <metric>)` in Prometheus' native_histograms.test
/// whose metric was loaded with histograms only is evaluated here on the
/// sample the 5m lookback picks, and compared with the expected values
/// (promqltest's relative tolerance). Evals over other expressions are left
/// to the PromQL engine's test and not counted.
#[test]
fn functions_match_upstream_promqltest_cases() {
    use std::collections::HashMap;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/upstream/prometheus/promql/native_histograms.test");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let dur = |s: &str| -> Option<i64> {
        let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
        let n: i64 = n.parse().ok()?;
        Some(
            n * match unit {
                "s" => 1,
                "m" => 60,
                "h" => 3600,
                _ => return None,
            },
        )
    };
    // metric name -> [(labels without the name, interval, samples)]
    type Loaded = Vec<(String, i64, Vec<Option<FloatHistogram>>)>;
    let mut series: HashMap<String, Loaded> = HashMap::new();
    let mut tainted = std::collections::HashSet::new();
    let norm = |labels: &str| -> String {
        let mut parts: Vec<String> = labels
            .trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        parts.sort();
        parts.join(",")
    };
    let lines: Vec<&str> = text.lines().collect();
    let (mut checked, mut i) = (0, 0);
    while i < lines.len() {
        let line = lines[i].trim();
        i += 1;
        if let Some(iv) = line.strip_prefix("load ") {
            let Some(interval) = dur(iv.trim()) else {
                continue;
            };
            while i < lines.len() && !lines[i].trim().is_empty() {
                let l = lines[i].trim();
                i += 1;
                let name_end = l.find(['{', ' ', '\t']).unwrap_or(l.len());
                let name = &l[..name_end];
                let mut rest = &l[name_end..];
                let mut labels = String::new();
                if rest.starts_with('{') {
                    let close = rest.find('}').unwrap();
                    labels = norm(&rest[..=close]);
                    rest = &rest[close + 1..];
                }
                let mut samples = Vec::new();
                let mut only_histograms = true;
                loop {
                    rest = rest.trim_start();
                    if rest.is_empty() {
                        break;
                    }
                    if rest.starts_with("{{") {
                        let (vals, used) = notation::parse_item_prefix(rest).unwrap();
                        samples.extend(vals.into_iter().map(|v| Some(v.histogram)));
                        rest = &rest[used..];
                    } else {
                        let end = rest.find([' ', '\t']).unwrap_or(rest.len());
                        let tok = &rest[..end];
                        if let Some(n) = tok.strip_prefix("_x") {
                            samples.extend((0..n.parse::<usize>().unwrap()).map(|_| None));
                        } else if tok == "_" {
                            samples.push(None);
                        } else {
                            only_histograms = false;
                        }
                        rest = &rest[end..];
                    }
                }
                // A name with float series too mixes classic and native
                // histograms: the engine's business, not these functions'.
                if only_histograms && !tainted.contains(name) {
                    series
                        .entry(name.to_string())
                        .or_default()
                        .push((labels, interval, samples));
                } else {
                    tainted.insert(name.to_string());
                    series.remove(name);
                }
            }
            continue;
        }
        if line.starts_with("clear") {
            series.clear();
            tainted.clear();
            continue;
        }
        let Some(ev) = line.strip_prefix("eval instant at ") else {
            continue;
        };
        let Some((at, expr)) = ev.split_once(' ') else {
            continue;
        };
        let (Some(at), Some(open)) = (dur(at), expr.find('(')) else {
            continue;
        };
        let func = &expr[..open];
        let Some(args) = expr[open + 1..].strip_suffix(')') else {
            continue;
        };
        if args.contains(['(', '{', '[']) {
            continue;
        }
        let args: Vec<&str> = args.split(',').map(str::trim).collect();
        let Some((metric, nums)) = args.split_last() else {
            continue;
        };
        let Ok(nums) = nums
            .iter()
            .map(|a| crate::model::gofmt::parse_number(a))
            .collect::<Result<Vec<f64>, _>>()
        else {
            continue;
        };
        let Some(loaded) = series.get(*metric) else {
            continue;
        };
        let mut expected: HashMap<String, f64> = HashMap::new();
        let mut fail = false;
        while i < lines.len() && !lines[i].trim().is_empty() {
            let l = lines[i].trim();
            i += 1;
            if l.starts_with("expect") {
                fail |= l.contains("fail");
                continue;
            }
            if let Some(close) = l.find('}') {
                let v = l[close + 1..].trim();
                // A histogram result: not one of the float functions here.
                let Ok(v) = crate::model::gofmt::parse_number(v) else {
                    fail = true;
                    continue;
                };
                expected.insert(norm(&l[..=close]), v);
            }
        }
        if fail {
            continue;
        }
        let mut got: HashMap<String, f64> = HashMap::new();
        for (labels, interval, samples) in loaded {
            // The latest sample in (at-5m, at].
            let last = usize::try_from(at / interval)
                .unwrap()
                .min(samples.len().saturating_sub(1));
            let pick = (0..=last)
                .rev()
                .take_while(|k| at - (*k as i64) * interval < 300)
                .find_map(|k| samples.get(k).cloned().flatten());
            let Some(h) = pick else { continue };
            let v = match (func, nums.as_slice()) {
                ("histogram_count", []) => histogram_count(&h),
                ("histogram_sum", []) => histogram_sum(&h),
                ("histogram_avg", []) => histogram_avg(&h),
                ("histogram_stddev", []) => histogram_stddev(&h),
                ("histogram_stdvar", []) => histogram_stdvar(&h),
                ("histogram_quantile", [q]) => histogram_quantile(*q, &h).0,
                ("histogram_fraction", [lo, hi]) => histogram_fraction(*lo, *hi, &h).0,
                _ => continue,
            };
            got.insert(labels.clone(), v);
        }
        if !matches!(
            func,
            "histogram_count"
                | "histogram_sum"
                | "histogram_avg"
                | "histogram_stddev"
                | "histogram_stdvar"
                | "histogram_quantile"
                | "histogram_fraction"
        ) {
            continue;
        }
        assert_eq!(
            got.keys().len(),
            expected.keys().len(),
            "line {i}: {line}: got {got:?}, want {expected:?}"
        );
        for (k, want) in &expected {
            let g = got
                .get(k)
                .unwrap_or_else(|| panic!("line {i}: {line}: no result for {{{k}}}"));
            let ok = (g.is_nan() && want.is_nan())
                || g == want
                || (g - want).abs() <= 1e-6 * want.abs().max(g.abs());
            assert!(ok, "line {i}: {line}: {{{k}}} got {g}, want {want}");
        }
        checked += 1;
    }
    assert!(checked >= 100, "only {checked} upstream evals checked");
    eprintln!("{checked} upstream evals checked");
}
