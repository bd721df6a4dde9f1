//! Arbitrary text through the PromQL parser and, when it parses, through the
//! engine as an instant and a range query over a small fixed head. The engine
//! must return a value or an error: no panic, no stack overflow, and memory
//! and time bounded by its own limits (`max_samples`, `timeout`), which is
//! what a server exposed to user queries relies on.
//!
//! Input layout: the query is everything before the last NUL byte (or the
//! whole input when there is none); up to three bytes after it pick the
//! evaluation time, the range length and the step, so the fuzzer can reach
//! edges (before the data, after it, steps that do not divide the range)
//! without those choices eating into the query text.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use klaxon::model::{Labels, STALE_NAN};
use klaxon::promql::{parse, Engine, EngineOptions, QueryResult, Value};
use klaxon::tsdb::Head;
use libfuzzer_sys::fuzz_target;

const MIN: i64 = 60_000;
/// Data spans [0, 1h] at a 15 s interval.
const END: i64 = 60 * MIN;
const INTERVAL: i64 = 15_000;

fn add(head: &Head, pairs: &[(&str, &str)], f: impl Fn(i64, i64) -> Option<f64>) {
    let labels = Labels::from_pairs(pairs.iter().copied());
    let (r, _) = head.get_or_create(&labels);
    let mut t = 0;
    let mut i = 0;
    while t <= END {
        if let Some(v) = f(i, t) {
            // Out-of-order or duplicate appends cannot happen here; ignore
            // the result rather than panic in setup.
            let _ = head.append(r, t, v);
        }
        t += INTERVAL;
        i += 1;
    }
}

/// A few dozen series of every shape the engine special-cases.
fn build_head() -> Head {
    let head = Head::default();
    for (job, inst) in [("api", "a:1"), ("api", "b:1"), ("db", "c:2")] {
        // Counters, one with a reset in the middle.
        add(
            &head,
            &[
                ("__name__", "http_requests_total"),
                ("job", job),
                ("instance", inst),
                ("code", "200"),
            ],
            |i, _| Some((i * 3) as f64),
        );
        add(
            &head,
            &[
                ("__name__", "http_requests_total"),
                ("job", job),
                ("instance", inst),
                ("code", "500"),
            ],
            |i, _| Some(((i % 97) * 2) as f64),
        );
        // Gauges with NaN, ±Inf and negative values.
        add(
            &head,
            &[
                ("__name__", "temperature"),
                ("job", job),
                ("instance", inst),
            ],
            |i, _| {
                Some(match i % 50 {
                    7 => f64::NAN,
                    13 => f64::INFINITY,
                    29 => f64::NEG_INFINITY,
                    n => (n as f64 - 20.0) * 1.5,
                })
            },
        );
        // Classic histogram buckets, including a non-monotonic dip.
        for (le, k) in [("0.1", 1), ("0.5", 3), ("1", 4), ("5", 6), ("+Inf", 7)] {
            add(
                &head,
                &[
                    ("__name__", "rpc_duration_seconds_bucket"),
                    ("job", job),
                    ("instance", inst),
                    ("le", le),
                ],
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
            &[
                ("__name__", "rpc_duration_seconds_sum"),
                ("job", job),
                ("instance", inst),
            ],
            |i, _| Some(i as f64 * 0.7),
        );
        add(
            &head,
            &[
                ("__name__", "rpc_duration_seconds_count"),
                ("job", job),
                ("instance", inst),
            ],
            |i, _| Some((i * 7) as f64),
        );
        add(
            &head,
            &[("__name__", "up"), ("job", job), ("instance", inst)],
            |i, _| Some(if i % 40 < 35 { 1.0 } else { 0.0 }),
        );
    }
    // A series that goes stale mid-way and comes back.
    add(
        &head,
        &[("__name__", "flappy"), ("job", "api")],
        |i, _| match i % 60 {
            20 => Some(STALE_NAN),
            21..=30 => None,
            n => Some(n as f64),
        },
    );
    // Sparse samples and a series that only exists in the first minutes.
    add(&head, &[("__name__", "sparse"), ("job", "db")], |i, _| {
        (i % 17 == 0).then_some(i as f64)
    });
    add(&head, &[("__name__", "early"), ("job", "db")], |_, t| {
        (t < 5 * MIN).then_some(1.0)
    });
    // Label values that match the empty string, odd characters and UTF-8.
    add(
        &head,
        &[
            ("__name__", "odd"),
            ("job", ""),
            ("path", "/a/b"),
            ("x", "é\"\\\n"),
        ],
        |i, _| Some(-(i as f64)),
    );
    add(&head, &[("__name__", "odd"), ("path", "")], |_, _| {
        Some(0.0)
    });
    add(
        &head,
        &[
            ("__name__", "info_metric"),
            ("job", "api"),
            ("instance", "a:1"),
            ("version", "1.2"),
        ],
        |_, _| Some(1.0),
    );
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
    // Extreme magnitudes.
    add(&head, &[("__name__", "huge")], |i, _| {
        Some(if i % 2 == 0 {
            f64::MAX
        } else {
            -f64::MIN_POSITIVE
        })
    });
    head
}

fn head() -> &'static Head {
    static HEAD: OnceLock<Head> = OnceLock::new();
    HEAD.get_or_init(build_head)
}

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 1_000_000,
            timeout: Duration::from_secs(1),
            default_subquery_step: Duration::from_secs(60),
            ..EngineOptions::default()
        })
    })
}

/// Results of a range query must be internally consistent whatever the
/// query: one series per label set, points strictly increasing in time and
/// on the query's step grid.
fn check_range(res: &QueryResult, start: i64, end: i64, step: i64) {
    let Value::Matrix(m) = &res.value else {
        panic!("range query returned {:?}", res.value);
    };
    let mut seen = std::collections::HashSet::new();
    for s in m {
        assert!(
            seen.insert(s.labels.to_string()),
            "duplicate series {}",
            s.labels
        );
        assert!(!s.points.is_empty(), "empty series {}", s.labels);
        for w in s.points.windows(2) {
            assert!(w[0].0 < w[1].0, "unsorted points in {}", s.labels);
        }
        for &(t, _) in &s.points {
            assert!(
                t >= start && t <= end && (t - start) % step == 0,
                "point at {t} off the grid"
            );
        }
    }
}

const TIMES: [i64; 8] = [
    END / 2,
    END,
    0,
    END + 10 * MIN,
    -5 * MIN,
    7_123,
    END - 1,
    30 * MIN + 1,
];
const STEPS: [i64; 8] = [60_000, 15_000, 1, 7_001, 300_000, 1_000, 3_600_000, 45_000];

fuzz_target!(|data: &[u8]| {
    let (query, ctl) = match data.iter().rposition(|&b| b == 0) {
        Some(p) => (&data[..p], &data[p + 1..]),
        None => (data, &[][..]),
    };
    let query = String::from_utf8_lossy(query);
    let Ok(expr) = parse(&query) else { return };
    // Printing must not panic, and what is printed must parse again.
    let printed = expr.to_string();
    if let Err(e) = parse(&printed) {
        panic!("printed form of {query:?} does not parse: {printed:?}: {e}");
    }
    let b = |i: usize| ctl.get(i).copied().unwrap_or(0) as usize;
    let t = TIMES[b(0) % TIMES.len()];
    let step = STEPS[b(1) % STEPS.len()];
    // At most 64 steps, so one input costs a bounded number of evaluations.
    let steps = (b(2) % 64) as i64;
    let eng = engine();
    if let Ok(r) = eng.instant(head(), &expr, t) {
        // Label sets must print (Display walks every label).
        if let Value::Vector(v) = &r.value {
            for s in v {
                let _ = s.labels.to_string();
            }
        }
    }
    let end = t + steps * step;
    if let Ok(r) = eng.range(head(), &expr, t, end, step) {
        check_range(&r, t, end, step);
    }
});
