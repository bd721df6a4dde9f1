//! The series pass (range functions, selectors, folding aggregations and
//! binary operators evaluated series by series across all steps) against the per-step walk
//! (`EngineOptions::series_pass = false`), on generated series with gaps,
//! counter resets, NaN, ±Inf and staleness markers, at varied steps,
//! ranges, offsets and `@` times. Values must be bit-identical; errors,
//! warnings, infos and the sample statistics the same. Each range query is
//! also checked against instant queries at its steps (an instant query is
//! a one-step range).

use crate::common;

use common::Rng;
use klaxon::model::{Labels, STALE_NAN};
use klaxon::promql::engine::{Engine, EngineOptions, QueryResult, Value};
use klaxon::tsdb::Head;

/// Series of three metrics over ~40 minutes: counters with resets, gauges
/// with NaN/Inf and negative values, irregular intervals, gaps and stale
/// markers. `a_total` and `b_total` share label sets, so dropping the name
/// makes them collide.
fn build_head(rng: &mut Rng) -> Head {
    let head = Head::default();
    for name in ["a_total", "b_total", "g"] {
        for i in 0..6 {
            if rng.chance(15) {
                continue;
            }
            let l = Labels::from_pairs([
                ("__name__", name.to_string()),
                ("i", i.to_string()),
                ("grp", format!("{}", i % 3)),
                ("job", if i % 2 == 0 { "x" } else { "y" }.to_string()),
            ]);
            let (r, _) = head.get_or_create(&l);
            let mut t = (rng.below(30) as i64) * 1000;
            let mut v: f64 = if name == "g" { -5.0 } else { 0.0 };
            while t < 2_400_000 {
                let x = if rng.chance(3) {
                    STALE_NAN
                } else if name == "g" {
                    match rng.below(40) {
                        0 => f64::NAN,
                        1 => f64::INFINITY,
                        2 => f64::NEG_INFINITY,
                        3 => 0.0,
                        4 => -0.0,
                        _ => {
                            v = (v + (rng.below(200) as f64 - 100.0) / 7.0).round() / 3.0;
                            v
                        }
                    }
                } else {
                    if rng.chance(4) {
                        v = (rng.below(5)) as f64;
                    } else {
                        v += rng.below(1000) as f64 / 10.0;
                    }
                    if rng.chance(2) {
                        f64::NAN
                    } else {
                        v
                    }
                };
                head.append(r, t, x).expect("append");
                // Mostly regular scrapes, sometimes jitter or a gap.
                t += match rng.below(20) {
                    0 => 1_000 + rng.below(5_000) as i64,
                    1 => 60_000 + rng.below(300_000) as i64,
                    _ => 15_000,
                };
            }
        }
    }
    head
}

const FUNCS: &[&str] = &[
    "rate",
    "increase",
    "delta",
    "irate",
    "idelta",
    "changes",
    "resets",
    "deriv",
    "avg_over_time",
    "sum_over_time",
    "count_over_time",
    "min_over_time",
    "max_over_time",
    "last_over_time",
    "first_over_time",
    "present_over_time",
    "stddev_over_time",
    "stdvar_over_time",
    "mad_over_time",
    "ts_of_min_over_time",
    "ts_of_max_over_time",
    "ts_of_last_over_time",
    "ts_of_first_over_time",
];

const SELECTORS: &[&str] = &[
    "a_total",
    "b_total",
    "g",
    r#"g{job="x"}"#,
    r#"{__name__=~"a_total|b_total"}"#,
    r#"{__name__=~"a_total|g"}"#,
    r#"{grp="1"}"#,
];

const RANGES: &[&str] = &["15s", "30s", "1m", "90s", "5m", "11m"];

const AGGS: &[&str] = &[
    "sum", "avg", "count", "min", "max", "group", "stddev", "stdvar",
];

fn modifier(rng: &mut Rng) -> String {
    match rng.below(8) {
        0 => " offset 2m".into(),
        1 => " offset -1m".into(),
        2 => format!(" @ {}", 600 + rng.below(1200)),
        3 => " @ end()".into(),
        _ => String::new(),
    }
}

fn range_call(rng: &mut Rng) -> String {
    let sel = rng.pick(SELECTORS);
    let range = rng.pick(RANGES);
    let m = modifier(rng);
    match rng.below(12) {
        0 => format!(
            "quantile_over_time({}, {sel}[{range}]{m})",
            rng.pick(&["0", "0.3", "0.5", "0.99", "1", "-1", "1.5"])
        ),
        1 => format!(
            "predict_linear({sel}[{range}]{m}, {})",
            rng.pick(&["60", "-30", "0"])
        ),
        2 => format!("double_exponential_smoothing({sel}[{range}]{m}, 0.3, 0.6)"),
        _ => format!("{}({sel}[{range}]{m})", rng.pick(FUNCS)),
    }
}

fn aggregation(rng: &mut Rng, inner: &str) -> String {
    let op = rng.pick(AGGS);
    match rng.below(4) {
        0 => format!("{op}({inner})"),
        1 => format!("{op} by (grp) ({inner})"),
        2 => format!("{op} without (i) ({inner})"),
        _ => format!("{op} by (__name__, job) ({inner})"),
    }
}

/// Binary operators over tables: with constants, one-to-one and
/// many-to-one matching, comparisons with and without `bool`, nested.
fn binary(rng: &mut Rng, call: &str) -> String {
    let sel = rng.pick(SELECTORS);
    let other = range_call(rng);
    let cmp = rng.pick(&[">", "<", ">=", "<=", "==", "!="]);
    let arith = rng.pick(&["+", "-", "*", "/", "%", "^", "atan2"]);
    match rng.below(12) {
        0 => format!("{call} {arith} {}", rng.pick(&["2", "-0.5", "0", "(3)"])),
        1 => format!("{} {arith} {call}", rng.pick(&["100", "-1", "0"])),
        2 => format!("{call} {cmp} {}", rng.pick(&["0", "1", "50"])),
        3 => format!("{sel} {cmp} bool {}", rng.pick(&["0", "1"])),
        4 => format!("{call} {arith} {other}"),
        5 => format!("{sel} {cmp} {}", rng.pick(SELECTORS)),
        6 => format!("{sel} {arith} ignoring(i) {}", rng.pick(SELECTORS)),
        7 => {
            let a = aggregation(rng, &other);
            format!(
                "{call} {arith} on(grp) group_left(job) {}",
                a.replace("(grp)", "(grp, job)")
            )
        }
        8 => format!("sum by (grp) ({sel}) {arith} on(grp) group_right() {call}"),
        9 => {
            let inner = format!("{} * 100", aggregation(rng, call));
            format!("100 - ({inner})")
        }
        10 => aggregation(rng, &format!("{call} {arith} 8")),
        _ => format!("{call} {cmp} bool on(i, job) {sel}"),
    }
}

fn expression(rng: &mut Rng) -> String {
    let call = range_call(rng);
    if rng.chance(40) {
        return binary(rng, &call);
    }
    match rng.below(12) {
        0..=2 => call,
        3 | 4 => aggregation(rng, &call),
        5 => {
            let inner = aggregation(rng, &call);
            aggregation(rng, &inner)
        }
        6 => {
            let sel = rng.pick(SELECTORS);
            aggregation(rng, sel)
        }
        7 => rng.pick(SELECTORS).to_string(),
        // The walk takes the tables' columns step by step.
        8 => format!("{call} * 2"),
        9 => {
            let a = aggregation(rng, &call);
            format!("topk(2, {a})")
        }
        10 => {
            let a = aggregation(rng, &call);
            let b = range_call(rng);
            format!("{a} + on() group_left() count({b})")
        }
        _ => {
            // Subqueries: inner steps are not the query's.
            format!("max_over_time({call}[5m:1m])")
        }
    }
}

fn engine(series_pass: bool, delayed: bool) -> Engine {
    Engine::new(EngineOptions {
        series_pass,
        delayed_name_removal: delayed,
        ..EngineOptions::default()
    })
}

fn same_bits(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn matrix(r: &QueryResult) -> &[klaxon::promql::engine::Series] {
    match &r.value {
        Value::Matrix(m) => m,
        other => panic!("range query returned {other:?}"),
    }
}

/// Compares two outcomes of the same query; returns a description of the
/// first difference.
fn diff(a: &Result<QueryResult, String>, b: &Result<QueryResult, String>) -> Option<String> {
    match (a, b) {
        (Err(x), Err(y)) if x == y => None,
        (Ok(x), Ok(y)) => {
            let (mx, my) = (matrix(x), matrix(y));
            if mx.len() != my.len() {
                return Some(format!("{} series vs {}", mx.len(), my.len()));
            }
            for (sx, sy) in mx.iter().zip(my) {
                if sx.labels != sy.labels {
                    return Some(format!("labels {} vs {}", sx.labels, sy.labels));
                }
                if sx.points.len() != sy.points.len()
                    || sx
                        .points
                        .iter()
                        .zip(&sy.points)
                        .any(|(p, q)| p.0 != q.0 || !same_bits(p.1, q.1))
                {
                    return Some(format!("{}: {:?} vs {:?}", sx.labels, sx.points, sy.points));
                }
            }
            if x.warnings != y.warnings {
                return Some(format!("warnings {:?} vs {:?}", x.warnings, y.warnings));
            }
            let (mut ix, mut iy) = (x.infos.clone(), y.infos.clone());
            ix.sort();
            iy.sort();
            if ix != iy {
                return Some(format!("infos {ix:?} vs {iy:?}"));
            }
            if x.stats != y.stats {
                return Some(format!("stats {:?} vs {:?}", x.stats, y.stats));
            }
            None
        }
        (x, y) => Some(format!(
            "{:?} vs {:?}",
            x.as_ref().map(|_| "ok"),
            y.as_ref().map(|_| "ok")
        )),
    }
}

#[test]
fn series_pass_matches_per_step_walk() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut failures = Vec::new();
    let mut compared = 0usize;
    let mut with_data = 0usize;
    for round in 0..6 {
        let head = build_head(&mut rng);
        for _ in 0..120 {
            let q = expression(&mut rng);
            let step = [1_000, 7_000, 15_000, 30_000, 60_000, 210_000][rng.below(6) as usize];
            let start = (rng.below(600) as i64) * 1000;
            let end = start + (rng.below(1_800) as i64) * 1000;
            let delayed = rng.chance(30);
            let run = |series_pass: bool| {
                engine(series_pass, delayed)
                    .range(&head, q.as_str(), start, end, step)
                    .map_err(|e| e.to_string())
            };
            let (one, walk) = (run(true), run(false));
            compared += 1;
            if one.as_ref().is_ok_and(|r| !matrix(r).is_empty()) {
                with_data += 1;
            }
            if let Some(d) = diff(&one, &walk) {
                failures.push(format!(
                    "round {round}: {q} [{start}..{end} step {step}, delayed {delayed}]: {d}"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {compared} queries differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Most queries must return data, or the comparison says little (some
    // fail on purpose: names that collide once dropped).
    assert!(
        with_data * 2 > compared,
        "only {with_data} of {compared} queries returned series"
    );
}

#[test]
fn instant_queries_agree_with_range_columns() {
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let head = build_head(&mut rng);
    let e = engine(true, false);
    let mut failures = Vec::new();
    for _ in 0..150 {
        let call = range_call(&mut rng);
        let q = match rng.below(3) {
            0 => call,
            _ => aggregation(&mut rng, &call),
        };
        if q.contains("end()") {
            // `end()` is the query's end: each instant query has its own.
            continue;
        }
        let step = [15_000, 60_000][rng.below(2) as usize];
        let start = 300_000 + (rng.below(600) as i64) * 1000;
        let end = start + 10 * step;
        let Ok(range) = e.range(&head, q.as_str(), start, end, step) else {
            continue;
        };
        let m = matrix(&range);
        let mut t = start;
        while t <= end {
            let inst = e.instant(&head, q.as_str(), t).expect("instant query");
            let Value::Vector(v) = inst.value else {
                panic!("{q}: instant query returned {:?}", inst.value)
            };
            let mut want: Vec<(String, u64)> = m
                .iter()
                .filter_map(|s| {
                    s.points
                        .iter()
                        .find(|p| p.0 == t)
                        .map(|p| (s.labels.to_string(), p.1.to_bits()))
                })
                .collect();
            let mut got: Vec<(String, u64)> = v
                .iter()
                .map(|s| (s.labels.to_string(), s.value.to_bits()))
                .collect();
            want.sort();
            got.sort();
            if want != got {
                failures.push(format!("{q} at {t}: range {want:?} vs instant {got:?}"));
            }
            t += step;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The pass must evaluate what it claims: a range query of a table-able
/// expression over many steps agrees with the walk on a head where
/// windows overlap heavily (the incremental paths: resets, deques,
/// prefix counts).
#[test]
fn long_windows_agree() {
    let mut rng = Rng(0x0123_4567_89ab_cdef);
    let head = build_head(&mut rng);
    for f in FUNCS {
        for q in [
            format!("{f}({{__name__=~\"a_total|g\"}}[11m])"),
            format!("sum by (grp) ({f}(a_total[7m]))"),
        ] {
            let run = |sp: bool| {
                engine(sp, true)
                    .range(&head, q.as_str(), 0, 2_400_000, 5_000)
                    .map_err(|e| e.to_string())
            };
            if let Some(d) = diff(&run(true), &run(false)) {
                panic!("{q}: {d}");
            }
        }
    }
}

/// `parallelism` 2 against 1 (and the per-step walk) for every range
/// function over enough samples to be split between threads: values,
/// annotations (rate's counter-name note on a gauge) and statistics equal.
#[test]
fn parallel_range_functions_agree() {
    let mut rng = Rng(0x5151_2727_aaaa_0001);
    let head = Head::default();
    // About 70 samples per series: over the threshold for each metric.
    let n = 3 * klaxon::promql::engine::PARALLEL_MIN_SAMPLES / 70;
    for name in ["p_total", "pg"] {
        for i in 0..n {
            let l = Labels::from_pairs([
                ("__name__", name.to_string()),
                ("i", i.to_string()),
                ("grp", format!("{}", i % 7)),
            ]);
            let (r, _) = head.get_or_create(&l);
            let mut t = (rng.below(15) as i64) * 1000;
            let mut v = 0.0;
            while t < 1_200_000 {
                v = if rng.chance(5) {
                    rng.below(3) as f64
                } else {
                    v + rng.below(100) as f64 / 4.0
                };
                let x = if rng.chance(2) { STALE_NAN } else { v };
                head.append(r, t, x).expect("append");
                t += if rng.chance(3) { 90_000 } else { 15_000 };
            }
        }
    }
    let with = |parallelism: usize, series_pass: bool| {
        Engine::new(EngineOptions {
            parallelism,
            series_pass,
            ..EngineOptions::default()
        })
    };
    for (k, f) in FUNCS.iter().enumerate() {
        for q in [
            format!("{f}(p_total[2m])"),
            format!("{f}(pg[5m] offset 1m)"),
        ] {
            let run = |e: Engine| {
                e.range(&head, q.as_str(), 0, 1_200_000, 60_000)
                    .map_err(|e| e.to_string())
            };
            let parallel = run(with(2, true));
            assert!(
                parallel.as_ref().is_ok_and(|r| matrix(r).len() > n / 2),
                "{q}: {:?}",
                parallel.as_ref().map(|r| matrix(r).len())
            );
            if let Some(d) = diff(&parallel, &run(with(1, true))) {
                panic!("{q}, 2 threads vs 1: {d}");
            }
            // The walk is slow over this many series: a sample of the functions.
            if k % 4 != 0 {
                continue;
            }
            if let Some(d) = diff(&parallel, &run(with(1, false))) {
                panic!("{q}, 2 threads vs the per-step walk: {d}");
            }
        }
    }
}
