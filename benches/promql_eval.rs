//! Instant-query evaluation over a head shaped like an alerting workload:
//! 10k series scraped every 15s for one hour (counters, gauges, classic
//! histogram buckets, plus one info metric per instance for joins).

// A benchmark: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use klaxon::model::Labels;
use klaxon::promql::engine::{Engine, EngineOptions};
use klaxon::promql::parse;
use klaxon::tsdb::Head;

const HOUR_MS: i64 = 3_600_000;
const SCRAPE_MS: i64 = 15_000;

fn build_head() -> Head {
    let head = Head::default();
    let mut series = Vec::new();
    // 5000 counters: 500 instances x 10 jobs.
    for i in 0..500 {
        for j in 0..10 {
            series.push((
                Labels::from_pairs([
                    ("__name__", "x".to_string()),
                    ("instance", format!("i{i}")),
                    ("job", format!("j{j}")),
                ]),
                (i * 10 + j) as f64,
                true,
            ));
        }
    }
    // 3000 gauges.
    for i in 0..3000 {
        series.push((
            Labels::from_pairs([
                ("__name__", "g".to_string()),
                ("instance", format!("i{}", i % 500)),
                ("slot", format!("{}", i / 500)),
            ]),
            i as f64,
            false,
        ));
    }
    // 2000 histogram buckets: 200 instances x 10 bounds.
    let les = [
        "0.005", "0.01", "0.05", "0.1", "0.5", "1", "2.5", "5", "10", "+Inf",
    ];
    for i in 0..200 {
        for (k, le) in les.iter().enumerate() {
            series.push((
                Labels::from_pairs([
                    ("__name__", "h_bucket".to_string()),
                    ("instance", format!("i{i}")),
                    ("job", format!("j{}", i % 10)),
                    ("le", le.to_string()),
                ]),
                (k + 1) as f64,
                true,
            ));
        }
    }
    for i in 0..500 {
        series.push((
            Labels::from_pairs([
                ("__name__", "build_info".to_string()),
                ("instance", format!("i{i}")),
                ("version", format!("v{}", i % 3)),
            ]),
            1.0,
            false,
        ));
    }
    for (labels, base, counter) in &series {
        let (r, _) = head.get_or_create(labels);
        let mut v = *base;
        let mut t = 0;
        while t <= HOUR_MS {
            let _ = head.append(r, t, v);
            if *counter {
                v += base.max(1.0) * 0.1;
            } else {
                v = base + ((t / SCRAPE_MS) % 7) as f64;
            }
            t += SCRAPE_MS;
        }
    }
    head
}

fn bench(c: &mut Criterion) {
    let head = build_head();
    let engine = Engine::new(EngineOptions::default());
    let queries = [
        ("rate", "rate(x[5m])"),
        ("sum_by_job_rate", "sum by (job) (rate(x[5m]))"),
        (
            "histogram_quantile",
            "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))",
        ),
        ("avg_over_time", "avg_over_time(g[5m])"),
        (
            "group_left_join",
            "x * on(instance) group_left(version) build_info",
        ),
    ];
    let mut g = c.benchmark_group("promql_eval");
    g.sample_size(20);
    for (name, q) in queries {
        let expr = parse(q).expect("bench query parses");
        // Sanity: every query returns data.
        let r = engine
            .instant(&head, &expr, HOUR_MS)
            .expect("bench query runs");
        assert!(!matches!(r.value, klaxon::promql::Value::Vector(ref v) if v.is_empty()));
        g.bench_function(name, |b| {
            b.iter(|| engine.instant(&head, &expr, HOUR_MS).expect("query"))
        });
    }
    // A range query (61 steps): selection happens once, steps slice it.
    let rexpr = parse("sum by (job) (rate(x[5m]))").expect("parses");
    g.bench_function("range_sum_by_job_rate_1h_step_1m", |b| {
        b.iter(|| {
            engine
                .range(&head, &rexpr, 0, HOUR_MS, 60_000)
                .expect("range query")
        })
    });
    // A range query whose output keeps every input series (5000 series ×
    // 61 steps): what a graph of `rate()` asks for.
    let rate = parse("rate(x[5m])").expect("parses");
    g.bench_function("range_rate_1h_step_1m", |b| {
        b.iter(|| {
            engine
                .range(&head, &rate, 0, HOUR_MS, 60_000)
                .expect("range query")
        })
    });
    // For reference: the head's own cost of reading the samples that
    // `rate(x[5m])` needs (5000 series, 5 minutes).
    let sel = match parse("x").expect("parses") {
        klaxon::promql::Expr::VectorSelector(vs) => vs.matchers.clone(),
        _ => Vec::new(),
    };
    g.bench_function("head_select_x_5m", |b| {
        b.iter(|| head.select(&sel, HOUR_MS - 300_000, HOUR_MS))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
