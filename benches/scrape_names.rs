//! What `metric_name_validation_scheme` costs a scrape: one target of 10k
//! series appended through the scrape loop (parse, cache, head append), in
//! the Prometheus text format and in protobuf, under utf8 and legacy.
//!
//! `hit`: the steady state, every series in the scrape cache (the name
//! check never runs there). `miss`: the first scrape of a fresh loop and
//! head, where every series is resolved (and, under legacy, checked).
//!
//! `cargo bench --bench scrape_names`

// A benchmark's fixed inputs: a failure is a broken bench, not input.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use klaxon::scrape::parser::protobuf::{encode_delimited, Gauge, LabelPair, Metric, MetricFamily};
use klaxon::scrape::parser::Format;
use klaxon::scrape::scrape_loop::{ScrapeLoop, ScrapePools};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;

const SERIES: usize = 10_000;

fn scrape_loop(scheme: &str) -> ScrapeLoop {
    let yaml =
        format!("scrape_configs:\n  - job_name: j\n    metric_name_validation_scheme: {scheme}\n");
    let cfg = klaxon::settings::load_str(&yaml, "bench").expect("config");
    let sc = cfg.scrape_configs.into_iter().next().expect("job");
    let target = klaxon::scrape::target::populate("127.0.0.1:9", &BTreeMap::new(), &sc)
        .expect("target")
        .expect("kept");
    ScrapeLoop::new(
        Arc::new(target),
        Arc::new(sc),
        Arc::new(Err("no client".into())),
        Arc::new(klaxon::tsdb::Head::new(klaxon::tsdb::HeadOptions::default())),
        klaxon::scrape::ScrapeMetrics::register(&klaxon::metrics::Registry::new(), None),
        ScrapePools::new(),
    )
}

fn text_payload() -> Vec<u8> {
    let mut s = String::new();
    for i in 0..SERIES {
        s.push_str(&format!(
            "bench_metric_{}{{handler=\"/api/v1/h{}\",code=\"200\",idx=\"{i}\"}} {i}\n",
            i % 100,
            i % 7
        ));
    }
    s.into_bytes()
}

fn proto_payload() -> Vec<u8> {
    let fams: Vec<MetricFamily> = (0..100)
        .map(|f| MetricFamily {
            name: Some(format!("bench_metric_{f}")),
            help: Some("h".into()),
            r#type: Some(1),
            metric: (0..SERIES / 100)
                .map(|j| {
                    let i = j * 100 + f;
                    let lp = |n: &str, v: String| LabelPair {
                        name: Some(n.into()),
                        value: Some(v),
                    };
                    Metric {
                        label: vec![
                            lp("handler", format!("/api/v1/h{}", i % 7)),
                            lp("code", "200".into()),
                            lp("idx", i.to_string()),
                        ],
                        gauge: Some(Gauge {
                            value: Some(i as f64),
                        }),
                        ..Metric::default()
                    }
                })
                .collect(),
            unit: None,
        })
        .collect();
    encode_delimited(&fams)
}

fn bench(c: &mut Criterion) {
    let payloads = [
        ("text", text_payload(), Format::PrometheusText),
        ("proto", proto_payload(), Format::Protobuf),
    ];
    let mut g = c.benchmark_group("scrape_10k_series");
    g.throughput(Throughput::Elements(SERIES as u64));
    for (kind, body, format) in &payloads {
        for scheme in ["utf8", "legacy"] {
            let mut lp = scrape_loop(scheme);
            let mut ts = 1_000_i64;
            lp.append_payload(body, *format, ts).expect("first scrape");
            g.bench_function(format!("hit/{kind}/{scheme}"), |b| {
                b.iter(|| {
                    ts += 1_000;
                    black_box(lp.append_payload(body, *format, ts).expect("scrape"))
                })
            });
            g.bench_function(format!("miss/{kind}/{scheme}"), |b| {
                b.iter_batched(
                    || scrape_loop(scheme),
                    |mut fresh| {
                        black_box(fresh.append_payload(body, *format, 1_000).expect("scrape"))
                    },
                    BatchSize::PerIteration,
                )
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
