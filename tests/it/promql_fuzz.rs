//! Grammar-directed random testing of the PromQL parser and engine.
//!
//! libFuzzer (`fuzz/fuzz_targets/promql.rs`) mostly explores the lexer and
//! the parser's error paths, since random bytes rarely form a valid query.
//! This test complements it: a fixed-seed generator writes well-typed
//! expressions (nested calls, aggregations, binary operators with matching
//! modifiers, subqueries, offsets, `@`) so that almost every one reaches the
//! engine, and checks properties that must hold for any query:
//!
//! * every generated expression parses (the generator follows the grammar),
//!   and its printed form parses back to the same printed form;
//! * evaluation returns a value or an error, never panics;
//! * a range query yields one series per label set with points strictly
//!   increasing on the step grid;
//! * a range query over a single step equals the instant query at that time
//!   (Prometheus evaluates both with the same code path).
//!
//! The seed is fixed so a failure reproduces; the failing expression is in
//! the panic message.

use std::collections::HashMap;
use std::time::Duration;

use klaxon::model::{Labels, STALE_NAN};
use klaxon::promql::parser::{get_function, ValueType};
use klaxon::promql::{parse, Engine, EngineOptions, Value};
use klaxon::tsdb::Head;

const MIN: i64 = 60_000;
const END: i64 = 60 * MIN;
const INTERVAL: i64 = 15_000;

fn add(head: &Head, pairs: &[(&str, &str)], f: impl Fn(i64, i64) -> Option<f64>) {
    let labels = Labels::from_pairs(pairs.iter().copied());
    let (r, _) = head.get_or_create(&labels);
    let mut t = 0;
    let mut i = 0;
    while t <= END {
        if let Some(v) = f(i, t) {
            head.append(r, t, v).expect("in-order append");
        }
        t += INTERVAL;
        i += 1;
    }
}

/// The same kinds of series as the fuzz target's head: counters (one with
/// resets), gauges with NaN/±Inf, classic histogram buckets, stale markers,
/// sparse and short-lived series, empty and odd label values.
fn build_head() -> Head {
    let head = Head::default();
    for (job, inst) in [("api", "a:1"), ("api", "b:1"), ("db", "c:2")] {
        let base = [("job", job), ("instance", inst)];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v: Vec<(&str, &str)> = base.to_vec();
            v.extend_from_slice(extra);
            v
        };
        add(
            &head,
            &with(&[("__name__", "http_requests_total"), ("code", "200")]),
            |i, _| Some((i * 3) as f64),
        );
        add(
            &head,
            &with(&[("__name__", "http_requests_total"), ("code", "500")]),
            |i, _| Some(((i % 97) * 2) as f64),
        );
        add(&head, &with(&[("__name__", "temperature")]), |i, _| {
            Some(match i % 50 {
                7 => f64::NAN,
                13 => f64::INFINITY,
                29 => f64::NEG_INFINITY,
                n => (n as f64 - 20.0) * 1.5,
            })
        });
        for (le, k) in [("0.1", 1), ("0.5", 3), ("1", 4), ("5", 6), ("+Inf", 7)] {
            add(
                &head,
                &with(&[("__name__", "rpc_duration_seconds_bucket"), ("le", le)]),
                move |i, _| {
                    Some(if i == 100 && k == 4 {
                        0.0
                    } else {
                        (i * k) as f64
                    })
                },
            );
        }
        add(
            &head,
            &with(&[("__name__", "rpc_duration_seconds_count")]),
            |i, _| Some((i * 7) as f64),
        );
        add(&head, &with(&[("__name__", "up")]), |i, _| {
            Some(if i % 40 < 35 { 1.0 } else { 0.0 })
        });
    }
    add(
        &head,
        &[("__name__", "flappy"), ("job", "api")],
        |i, _| match i % 60 {
            20 => Some(STALE_NAN),
            21..=30 => None,
            n => Some(n as f64),
        },
    );
    add(&head, &[("__name__", "sparse"), ("job", "db")], |i, _| {
        (i % 17 == 0).then_some(i as f64)
    });
    add(&head, &[("__name__", "early"), ("job", "db")], |_, t| {
        (t < 5 * MIN).then_some(1.0)
    });
    add(
        &head,
        &[("__name__", "odd"), ("job", ""), ("path", "/a/b")],
        |i, _| Some(-(i as f64)),
    );
    add(&head, &[("__name__", "odd"), ("path", "")], |_, _| {
        Some(0.0)
    });
    add(
        &head,
        &[
            ("__name__", "target_info"),
            ("job", "api"),
            ("instance", "a:1"),
            ("region", "eu"),
        ],
        |_, _| Some(1.0),
    );
    head
}

/// SplitMix64: tiny, fixed-seed, good enough to pick grammar branches.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const METRICS: &[&str] = &[
    "http_requests_total",
    "temperature",
    "rpc_duration_seconds_bucket",
    "rpc_duration_seconds_count",
    "up",
    "flappy",
    "sparse",
    "early",
    "odd",
    "missing_metric",
];
const LABELS: &[&str] = &["job", "instance", "code", "le", "path", "region"];
const MATCHERS: &[&str] = &[
    r#"job="api""#,
    r#"job=~"a.*|db""#,
    r#"code!="500""#,
    r#"le="+Inf""#,
    r#"path="""#,
    r#"instance!~"b.*""#,
    r#"job="""#,
];
const RANGES: &[&str] = &["1m", "5m", "90s", "10m", "30s", "2m30s"];
const SUB_STEPS: &[&str] = &["", "1m", "30s", "45s", "2m"];
const AT_OFFSET: &[&str] = &[
    " offset 5m",
    " offset -2m",
    " @ 1800",
    " @ start()",
    " @ end()",
    " @ 3000 offset 1m",
];
const NUMBERS: &[&str] = &[
    "0", "1", "2", "0.5", "-1", "0.9", "10", "1e3", "Inf", "-Inf", "NaN", "0x10",
];

/// Functions the generator calls; the signatures come from the parser's own
/// table so the two cannot drift apart. `start`, `end`, `range`, `step`,
/// `min_of` and `max_of` belong to duration expressions and are left out.
const FUNCTIONS: &[&str] = &[
    "abs",
    "absent",
    "absent_over_time",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atanh",
    "avg_over_time",
    "ceil",
    "changes",
    "clamp",
    "clamp_max",
    "clamp_min",
    "cos",
    "cosh",
    "count_over_time",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "days_in_month",
    "deg",
    "delta",
    "deriv",
    "double_exponential_smoothing",
    "exp",
    "first_over_time",
    "floor",
    "histogram_avg",
    "histogram_count",
    "histogram_fraction",
    "histogram_quantile",
    "histogram_stddev",
    "histogram_stdvar",
    "histogram_sum",
    "hour",
    "idelta",
    "increase",
    "info",
    "irate",
    "label_join",
    "label_replace",
    "last_over_time",
    "ln",
    "log10",
    "log2",
    "mad_over_time",
    "max_over_time",
    "min_over_time",
    "minute",
    "month",
    "pi",
    "predict_linear",
    "present_over_time",
    "quantile_over_time",
    "rad",
    "rate",
    "resets",
    "round",
    "scalar",
    "sgn",
    "sin",
    "sinh",
    "sort",
    "sort_by_label",
    "sort_by_label_desc",
    "sort_desc",
    "sqrt",
    "stddev_over_time",
    "stdvar_over_time",
    "sum_over_time",
    "tan",
    "tanh",
    "time",
    "timestamp",
    "ts_of_first_over_time",
    "ts_of_last_over_time",
    "ts_of_max_over_time",
    "ts_of_min_over_time",
    "vector",
    "year",
];

struct Gen {
    rng: Rng,
}

impl Gen {
    fn selector(&mut self) -> String {
        let n = self.rng.below(3);
        let mut ms: Vec<&str> = (0..n).map(|_| self.rng.pick(MATCHERS)).collect();
        // One matcher per label name: with two (`{job=~"a.*",job="api"}`)
        // the labels `absent` derives depend on matcher order, which the
        // printer (like Prometheus') sorts, so the printed form could
        // legitimately evaluate differently.
        let label = |m: &str| m.split(['=', '!']).next().unwrap_or("").to_string();
        ms.dedup_by(|a, b| label(a) == label(b));
        if self.rng.chance(8) {
            // A name-less selector needs a matcher that cannot match empty.
            return format!(r#"{{__name__=~"rpc.*|up",{}}}"#, ms.join(","));
        }
        let name = self.rng.pick(METRICS);
        if ms.is_empty() {
            name.to_string()
        } else {
            format!("{name}{{{}}}", ms.join(","))
        }
    }

    fn modifiers(&mut self) -> &'static str {
        if self.rng.chance(25) {
            self.rng.pick(AT_OFFSET)
        } else {
            ""
        }
    }

    fn labels(&mut self) -> String {
        let n = self.rng.below(3);
        let ls: Vec<&str> = (0..n).map(|_| self.rng.pick(LABELS)).collect();
        ls.join(", ")
    }

    fn string(&mut self) -> String {
        format!("\"{}\"", self.rng.pick(LABELS))
    }

    fn scalar(&mut self, depth: u32) -> String {
        if depth == 0 || self.rng.chance(50) {
            return self.rng.pick(NUMBERS).to_string();
        }
        match self.rng.below(5) {
            0 => format!("scalar({})", self.vector(depth - 1)),
            1 => self.rng.pick(&["time()", "pi()"]).to_string(),
            2 => {
                let op = self
                    .rng
                    .pick(&["+", "-", "*", "/", "%", "^", "atan2", "== bool", "> bool"]);
                format!(
                    "({} {op} {})",
                    self.scalar(depth - 1),
                    self.scalar(depth - 1)
                )
            }
            3 => format!("-({})", self.scalar(depth - 1)),
            _ => format!("({})", self.scalar(depth - 1)),
        }
    }

    fn matrix(&mut self, depth: u32) -> String {
        if depth == 0 || self.rng.chance(65) {
            let sel = self.selector();
            let range = self.rng.pick(RANGES);
            return format!("{sel}[{range}]{}", self.modifiers());
        }
        let inner = self.vector(depth - 1);
        let range = self.rng.pick(RANGES);
        let step = self.rng.pick(SUB_STEPS);
        format!("({inner})[{range}:{step}]{}", self.modifiers())
    }

    fn arg(&mut self, t: ValueType, depth: u32) -> String {
        match t {
            ValueType::Scalar => self.scalar(depth),
            ValueType::InstantVector => self.vector(depth),
            ValueType::RangeVector => self.matrix(depth),
            ValueType::String => self.string(),
        }
    }

    fn call(&mut self, depth: u32) -> String {
        // Only functions returning a vector: `time()`, `pi()` and `scalar()`
        // are produced by `scalar`.
        let (name, f) = loop {
            let name = self.rng.pick(FUNCTIONS);
            let f = get_function(name).unwrap_or_else(|| panic!("{name} is not a known function"));
            if f.return_type == ValueType::InstantVector {
                break (name, f);
            }
        };
        let d = depth.saturating_sub(1);
        let args: Vec<String> = match name {
            // String arguments with meaning: label names and a valid regex.
            "label_replace" => vec![
                self.vector(d),
                self.string(),
                self.rng.pick(&["\"$1\"", "\"x-$1\"", "\"\""]).to_string(),
                self.string(),
                self.rng
                    .pick(&["\"(.*)\"", "\"(a).*\"", "\"\""])
                    .to_string(),
            ],
            // `info`'s second argument must be a selector.
            "info" => {
                let mut a = vec![self.vector(d)];
                if self.rng.chance(50) {
                    a.push(r#"{__name__="target_info"}"#.to_string());
                }
                a
            }
            _ => {
                let fixed = f.arg_types.len().saturating_sub(1);
                let count = match f.variadic {
                    0 => f.arg_types.len(),
                    n if n > 0 => fixed + self.rng.below(n as usize + 1),
                    _ => fixed + self.rng.below(3),
                };
                (0..count)
                    .map(|i| {
                        let t = f.arg_types.get(i).or(f.arg_types.last()).copied();
                        self.arg(t.unwrap_or(ValueType::Scalar), d)
                    })
                    .collect()
            }
        };
        format!("{name}({})", args.join(", "))
    }

    fn aggregation(&mut self, depth: u32) -> String {
        let op = self.rng.pick(&[
            "sum",
            "avg",
            "count",
            "min",
            "max",
            "group",
            "stddev",
            "stdvar",
            "topk",
            "bottomk",
            "limitk",
            "quantile",
            "count_values",
            "limit_ratio",
        ]);
        let param = match op {
            "topk" | "bottomk" | "limitk" => format!("{}, ", self.rng.pick(&["1", "2", "0", "5"])),
            "quantile" => format!("{}, ", self.rng.pick(&["0.5", "0.9", "2", "-1", "NaN"])),
            "limit_ratio" => format!("{}, ", self.rng.pick(&["0.5", "-0.5", "1"])),
            "count_values" => "\"value\", ".to_string(),
            _ => String::new(),
        };
        let inner = self.vector(depth - 1);
        let grouping = match self.rng.below(3) {
            0 => String::new(),
            1 => format!(" by ({})", self.labels()),
            _ => format!(" without ({})", self.labels()),
        };
        if self.rng.chance(50) {
            format!("{op}{grouping} ({param}{inner})")
        } else {
            format!("{op} ({param}{inner}){grouping}")
        }
    }

    fn binary(&mut self, depth: u32) -> String {
        let set_op = self.rng.chance(20);
        let lhs = self.vector(depth - 1);
        if set_op {
            let op = self.rng.pick(&["and", "or", "unless"]);
            let m = match self.rng.below(3) {
                0 => String::new(),
                1 => format!(" on ({})", self.labels()),
                _ => format!(" ignoring ({})", self.labels()),
            };
            return format!("({lhs} {op}{m} {})", self.vector(depth - 1));
        }
        let op = self.rng.pick(&[
            "+", "-", "*", "/", "%", "^", "atan2", "==", "!=", ">", "<", ">=", "<=",
        ]);
        let comparison = matches!(op, "==" | "!=" | ">" | "<" | ">=" | "<=");
        let b = if comparison && self.rng.chance(40) {
            " bool"
        } else {
            ""
        };
        if self.rng.chance(30) {
            // Vector-scalar in either order.
            let s = self.scalar(depth - 1);
            return if self.rng.chance(50) {
                format!("({lhs} {op}{b} {s})")
            } else {
                format!("({s} {op}{b} {lhs})")
            };
        }
        let mut m = String::new();
        if self.rng.chance(50) {
            let kw = self.rng.pick(&["on", "ignoring"]);
            let on = self.labels();
            m = format!(" {kw} ({on})");
            if self.rng.chance(40) {
                let g = self.rng.pick(&["group_left", "group_right"]);
                // A label may not be in both `on` and the group clause.
                let group = self.labels();
                let extra: Vec<&str> = group
                    .split(", ")
                    .filter(|l| !l.is_empty())
                    .filter(|l| kw != "on" || !on.split(", ").any(|o| o == *l))
                    .collect();
                m.push_str(&format!(" {g} ({})", extra.join(", ")));
            }
        }
        format!("({lhs} {op}{b}{m} {})", self.vector(depth - 1))
    }

    fn vector(&mut self, depth: u32) -> String {
        if depth == 0 || self.rng.chance(25) {
            let sel = self.selector();
            return format!("{sel}{}", self.modifiers());
        }
        match self.rng.below(7) {
            0 | 1 => self.call(depth),
            2 | 3 => self.aggregation(depth),
            4 | 5 => self.binary(depth),
            _ => {
                let inner = self.vector(depth - 1);
                if self.rng.chance(50) {
                    format!("-({inner})")
                } else {
                    format!("({inner})")
                }
            }
        }
    }

    fn top(&mut self) -> String {
        if self.rng.chance(10) {
            self.scalar(3)
        } else {
            self.vector(4)
        }
    }
}

fn same_value(a: f64, b: f64) -> bool {
    a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
}

fn same_result(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Scalar { t: ta, v: va }, Value::Scalar { t: tb, v: vb }) => {
            ta == tb && same_value(*va, *vb)
        }
        (Value::Vector(x), Value::Vector(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y)
                    .all(|(p, q)| p.labels == q.labels && same_value(p.value, q.value))
        }
        _ => a == b,
    }
}

/// Checks one generated expression; returns whether the instant query
/// evaluated without error.
fn check_expr(engine: &Engine, head: &Head, q: &str, t: i64) -> bool {
    let expr = parse(q).unwrap_or_else(|e| panic!("generated query does not parse: {q}\n{e}"));
    let printed = expr.to_string();
    let again = parse(&printed)
        .unwrap_or_else(|e| panic!("printed form of {q} does not parse: {printed}\n{e}"));
    // The printed text need not be a fixpoint: like Prometheus, `-Inf ^ 0`
    // prints as `-+Inf ^ 0`, which reparses with an extra unary `+` (and so
    // prints `-++Inf ^ 0`). It must mean the same, checked below by
    // evaluating both.

    let instant = engine.instant(head, &expr, t);
    let reparsed = engine.instant(head, &again, t);
    match (&instant, &reparsed) {
        (Ok(a), Ok(b)) => assert!(
            same_result(&a.value, &b.value),
            "{q} and its printed form {printed} differ: {:?} vs {:?}",
            a.value,
            b.value
        ),
        (Err(_), Err(_)) => {}
        _ => panic!("{q} and its printed form {printed} differ: {instant:?} vs {reparsed:?}"),
    }
    let range = engine.range(head, &expr, t, t, 60_000);
    match (&instant, &range) {
        (Ok(i), Ok(r)) => {
            let Value::Matrix(m) = &r.value else {
                panic!("range query of {q} returned {:?}", r.value)
            };
            // label set -> value at t, from the range query.
            let mut from_range: HashMap<String, f64> = HashMap::new();
            for s in m {
                assert_eq!(
                    s.points.len(),
                    1,
                    "one-step range query of {q}: {:?}",
                    s.points
                );
                assert_eq!(s.points[0].0, t, "{q}");
                let dup = from_range.insert(s.labels.to_string(), s.points[0].1);
                assert!(
                    dup.is_none(),
                    "duplicate series {} in range query of {q}",
                    s.labels
                );
            }
            match &i.value {
                Value::Vector(v) => {
                    assert_eq!(
                        v.len(),
                        from_range.len(),
                        "instant vs range series count for {q}"
                    );
                    for s in v {
                        let key = s.labels.to_string();
                        let rv = from_range
                            .get(&key)
                            .unwrap_or_else(|| panic!("{key} missing from range result of {q}"));
                        assert!(
                            same_value(s.value, *rv),
                            "{q}: {key} instant {} range {}",
                            s.value,
                            rv
                        );
                    }
                }
                Value::Scalar { v, .. } => {
                    let rv = from_range
                        .get("{}")
                        .unwrap_or_else(|| panic!("scalar {q} missing from range result"));
                    assert!(same_value(*v, *rv), "{q}: instant {v} range {rv}");
                }
                other => panic!("instant query of {q} returned {other:?}"),
            }
        }
        (Err(_), Err(_)) => {}
        _ => panic!("instant and one-step range query of {q} disagree: {instant:?} vs {range:?}"),
    }

    // A multi-step range: structural invariants only.
    let (start, step) = (t - 10 * MIN, 150_000);
    if let Ok(r) = engine.range(head, &expr, start, t, step) {
        let Value::Matrix(m) = &r.value else {
            panic!("range query of {q} returned {:?}", r.value)
        };
        let mut seen = std::collections::HashSet::new();
        for s in m {
            assert!(
                seen.insert(s.labels.to_string()),
                "duplicate series {} in {q}",
                s.labels
            );
            assert!(!s.points.is_empty(), "empty series {} in {q}", s.labels);
            for w in s.points.windows(2) {
                assert!(w[0].0 < w[1].0, "unsorted points in {} for {q}", s.labels);
            }
            for &(pt, _) in &s.points {
                assert!(
                    pt >= start && pt <= t && (pt - start) % step == 0,
                    "{q}: point at {pt} off the grid"
                );
            }
        }
    }
    instant.is_ok()
}

#[test]
fn generated_expressions_parse_and_evaluate() {
    let head = build_head();
    let engine = Engine::new(EngineOptions {
        max_samples: 1_000_000,
        timeout: Duration::from_secs(5),
        ..EngineOptions::default()
    });
    // Fixed by default so failures reproduce; `PROMQL_FUZZ_SEED` explores
    // other sequences by hand.
    let seed = std::env::var("PROMQL_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5EED_0FC0_FFEE);
    let mut g = Gen { rng: Rng(seed) };
    let times = [30 * MIN, END, 3 * MIN, END + 7 * MIN];
    let total = 2000;
    let mut ok = 0;
    for i in 0..total {
        let q = g.top();
        if check_expr(&engine, &head, &q, times[i % times.len()]) {
            ok += 1;
        }
    }
    eprintln!("{ok} of {total} generated queries evaluated without error");
    // Well-typed input should mostly evaluate; errors are legitimate only for
    // matching conflicts (many-to-many, duplicate label sets) and the like.
    assert!(
        ok * 10 >= total * 7,
        "only {ok} of {total} generated queries evaluated"
    );
}

/// Stack of the thread running the deep queries: 2 MiB, the default of
/// Rust and tokio threads, where the API and rule evaluation run queries.
/// Debug builds need 8 MiB (the main thread's default): unoptimised frames
/// of the evaluator's call path are several times larger (a nesting of
/// ~200 function calls overflows 2 MiB there), which does not occur in
/// optimised builds.
const QUERY_STACK: usize = if cfg!(debug_assertions) {
    8 << 20
} else {
    2 << 20
};

/// The parser caps nesting at `MAX_DEPTH` because checking, printing and
/// evaluating are all recursive. Queries just under the cap must evaluate on
/// a thread with the usual stack, and deeper ones must be rejected with an
/// error: never a stack overflow, which would abort the whole server.
#[test]
fn deepest_accepted_queries_evaluate_without_stack_overflow() {
    use klaxon::promql::parser::MAX_DEPTH;
    let n = std::env::var("DEEP_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(MAX_DEPTH - 8);
    let shapes = vec![
        format!("{}up{}", "abs(".repeat(n), ")".repeat(n)),
        format!("{}up{}", "-(".repeat(n / 3), ")".repeat(n / 3)),
        format!("{}up{}", "sum(".repeat(n), ")".repeat(n)),
        format!("up{}", " + up".repeat(n)),
        format!("{}up{}", "(".repeat(n), ")".repeat(n)),
        format!("{}1{}", "scalar(vector(".repeat(n / 2), "))".repeat(n / 2)),
        format!(
            "{}up{}",
            "max_over_time((".repeat(n / 3),
            // One inner step per level: `[5m:1m]` would multiply the work
            // by five per level (bounded only by the engine's timeout).
            ")[1m:1m])".repeat(n / 3)
        ),
    ];
    let worker = std::thread::Builder::new()
        .stack_size(QUERY_STACK)
        .spawn(move || {
            let head = build_head();
            let engine = Engine::default();
            for q in &shapes {
                let short = q.get(..40).unwrap_or(q);
                let expr = parse(q).unwrap_or_else(|e| panic!("{short}...: {e}"));
                let _ = expr.to_string();
                engine
                    .instant(&head, &expr, 30 * MIN)
                    .unwrap_or_else(|e| panic!("{short}...: {e}"));
                engine
                    .range(&head, &expr, 20 * MIN, 30 * MIN, 5 * MIN)
                    .unwrap_or_else(|e| panic!("{short}...: {e}"));
            }
        })
        .expect("spawn query thread");
    worker.join().expect("deep queries evaluate");
    let too_deep = format!(
        "{}up{}",
        "abs(".repeat(MAX_DEPTH + 1),
        ")".repeat(MAX_DEPTH + 1)
    );
    assert!(
        parse(&too_deep).is_err(),
        "{} levels accepted",
        MAX_DEPTH + 1
    );
}
