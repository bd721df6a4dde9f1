//! PromQL over native histograms against a real Prometheus 2.42 (started
//! with `--enable-feature=native-histograms`): Prometheus scrapes a
//! protobuf target that hands out one histogram sample per series per
//! scrape, each with an explicit timestamp 15s after the previous one; the
//! same histograms go straight into a klaxon head at the same timestamps.
//! A set of queries at times off the sample grid (2.42 closes range windows
//! on the left, 3.x leaves them open) must answer the same on both, where
//! 2.42's semantics are 3.x's; the queries where they differ by design are
//! checked to still differ, so docs/compatibility.md cannot go stale.

use crate::common;
use common::{free_port, get_json};

use klaxon::model::histogram::{Histogram, Span};
use klaxon::model::Labels;
use klaxon::promql::{Engine, Value};
use klaxon::scrape::parser::protobuf::{
    encode_delimited, BucketSpan, LabelPair, Metric, MetricFamily, ProtoHistogram,
};
use klaxon::tsdb::{Head, HistValue};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROTO_CT: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
const SAMPLES: usize = 14;
const STEP: i64 = 15_000;

/// One integer histogram: schema, zero bucket, and contiguous positive and
/// negative buckets from an offset.
struct H {
    schema: i32,
    zero_threshold: f64,
    zero_count: u64,
    pos: (i32, Vec<u64>),
    neg: (i32, Vec<u64>),
    sum: f64,
}

/// Sample `k` of series `kind`: a counter that grows every step; `exp`
/// resets at step 8.
fn sample(kind: &str, k: usize) -> H {
    let grow = |base: &[u64], inc: &[u64], k: u64| -> Vec<u64> {
        base.iter().zip(inc).map(|(b, i)| b + i * k).collect()
    };
    let k = k as u64;
    match kind {
        "exp" => {
            let (k, base) = if k < 8 { (k, 100) } else { (k - 8, 1) };
            H {
                schema: 0,
                zero_threshold: 0.001,
                zero_count: 2 + k,
                pos: (0, grow(&[base, 20 * base, 30, 15], &[1, 3, 2, 1], k)),
                neg: (1, grow(&[3, base], &[1, 0], k)),
                sum: 100.0 * base as f64 + 7.5 * k as f64,
            }
        }
        _ => H {
            schema: 2,
            zero_threshold: 1e-128,
            zero_count: 0,
            pos: (
                -2,
                grow(&[500, 400, 300, 200, 100, 100], &[0, 1, 2, 1, 0, 1], k),
            ),
            neg: (0, Vec::new()),
            sum: 2000.0 + 3.25 * k as f64,
        },
    }
}

fn count(h: &H) -> u64 {
    h.zero_count + h.pos.1.iter().sum::<u64>() + h.neg.1.iter().sum::<u64>()
}

fn deltas(abs: &[u64]) -> Vec<i64> {
    let mut prev = 0i64;
    abs.iter()
        .map(|&a| {
            let d = a as i64 - prev;
            prev = a as i64;
            d
        })
        .collect()
}

fn proto_spans((offset, b): &(i32, Vec<u64>)) -> Vec<BucketSpan> {
    if b.is_empty() {
        return Vec::new();
    }
    vec![BucketSpan {
        offset: Some(*offset),
        length: Some(b.len() as u32),
    }]
}

fn spans((offset, b): &(i32, Vec<u64>)) -> Vec<Span> {
    if b.is_empty() {
        return Vec::new();
    }
    vec![Span::new(*offset, b.len() as u32)]
}

fn klaxon_histogram(h: &H) -> Histogram {
    Histogram {
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: h.zero_count,
        count: count(h),
        sum: h.sum,
        positive_spans: spans(&h.pos),
        negative_spans: spans(&h.neg),
        positive_buckets: deltas(&h.pos.1),
        negative_buckets: deltas(&h.neg.1),
        ..Histogram::default()
    }
}

const KINDS: [&str; 2] = ["exp", "fine"];

/// The scrape answer with sample `k` of every series at `t0 + k * STEP`.
fn payload(t0: i64, k: usize) -> Vec<u8> {
    let metric = KINDS
        .iter()
        .map(|kind| {
            let h = sample(kind, k);
            Metric {
                label: vec![LabelPair {
                    name: Some("kind".into()),
                    value: Some((*kind).into()),
                }],
                histogram: Some(ProtoHistogram {
                    sample_count: Some(count(&h)),
                    sample_sum: Some(h.sum),
                    schema: Some(h.schema),
                    zero_threshold: Some(h.zero_threshold),
                    zero_count: Some(h.zero_count),
                    positive_span: proto_spans(&h.pos),
                    positive_delta: deltas(&h.pos.1),
                    negative_span: proto_spans(&h.neg),
                    negative_delta: deltas(&h.neg.1),
                    ..ProtoHistogram::default()
                }),
                timestamp_ms: Some(t0 + k as i64 * STEP),
                ..Metric::default()
            }
        })
        .collect();
    encode_delimited(&[MetricFamily {
        name: Some("demo_hist".into()),
        help: Some("Native histograms.".into()),
        r#type: Some(4),
        metric,
        unit: None,
    }])
}

/// A target whose n-th scrape gets sample n (the last one from then on).
async fn serve(t0: i64) -> (String, tokio::task::JoinHandle<()>) {
    use axum::routing::get;
    let n = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let k = n.fetch_add(1, Ordering::SeqCst).min(SAMPLES - 1);
            async move {
                (
                    [(axum::http::header::CONTENT_TYPE, PROTO_CT)],
                    payload(t0, k),
                )
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    let h = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (addr, h)
}

/// A result value: a float, or a histogram as (count, sum, buckets as
/// (lower, upper, count) with the empty ones left out).
#[derive(Debug, Clone)]
enum V {
    F(f64),
    H(f64, f64, Vec<(f64, f64, f64)>),
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan()) || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

fn same(a: &V, b: &V) -> bool {
    match (a, b) {
        (V::F(x), V::F(y)) => close(*x, *y),
        (V::H(c1, s1, b1), V::H(c2, s2, b2)) => {
            close(*c1, *c2)
                && close(*s1, *s2)
                && b1.len() == b2.len()
                && b1
                    .iter()
                    .zip(b2)
                    .all(|(x, y)| close(x.0, y.0) && close(x.1, y.1) && close(x.2, y.2))
        }
        _ => false,
    }
}

fn num(v: &serde_json::Value) -> f64 {
    let s = v.as_str().unwrap_or("NaN");
    match s {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        _ => s.parse().unwrap_or(f64::NAN),
    }
}

/// Prometheus' answer keyed by labels without job and instance.
async fn prometheus(base: &str, q: &str, t: i64) -> BTreeMap<String, V> {
    let url = format!(
        "{base}/api/v1/query?query={}&time={}",
        urlencode(q),
        t as f64 / 1000.0
    );
    let j = get_json(&url).await;
    assert_eq!(j["status"], "success", "{url}: {j}");
    let mut out = BTreeMap::new();
    for r in j["data"]["result"].as_array().expect("vector") {
        let mut pairs: Vec<(String, String)> = r["metric"]
            .as_object()
            .expect("metric")
            .iter()
            .filter(|(k, _)| *k != "job" && *k != "instance")
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
            .collect();
        pairs.sort();
        let key = Labels::from_pairs(pairs).to_string();
        let v = match r.get("histogram") {
            Some(h) => {
                let h = &h[1];
                let mut b: Vec<(f64, f64, f64)> = h["buckets"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| (num(&x[1]), num(&x[2]), num(&x[3])))
                            .filter(|x| x.2 != 0.0)
                            .collect()
                    })
                    .unwrap_or_default();
                b.sort_by(|x, y| x.0.total_cmp(&y.0));
                V::H(num(&h["count"]), num(&h["sum"]), b)
            }
            None => V::F(num(&r["value"][1])),
        };
        out.insert(key, v);
    }
    out
}

/// klaxon's answer over the head, keyed the same way.
fn klaxon(head: &Head, q: &str, t: i64) -> BTreeMap<String, V> {
    let r = Engine::default().instant(head, q, t).expect("query");
    let Value::Vector(v) = r.value else {
        panic!("{q}: not a vector")
    };
    v.into_iter()
        .map(|s| {
            let mut b = s.labels.builder();
            if s.drop_name {
                b.del("__name__");
            }
            let v = match &s.h {
                Some(h) => {
                    let mut bs: Vec<(f64, f64, f64)> = h
                        .all_buckets()
                        .into_iter()
                        .filter(|b| b.count != 0.0)
                        .map(|b| (b.lower, b.upper, b.count))
                        .collect();
                    bs.sort_by(|x, y| x.0.total_cmp(&y.0));
                    V::H(h.count, h.sum, bs)
                }
                None => V::F(s.value),
            };
            (b.build().to_string(), v)
        })
        .collect()
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn agree(a: &BTreeMap<String, V>, b: &BTreeMap<String, V>) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|((ka, va), (kb, vb))| ka == kb && same(va, vb))
}

/// Queries whose 2.42 answer is 3.x's.
const SAME: &[&str] = &[
    "demo_hist",
    "histogram_count(demo_hist)",
    "histogram_sum(demo_hist)",
    "sum(demo_hist)",
    "histogram_count(sum(demo_hist))",
    "rate(demo_hist[1m])",
    "histogram_count(rate(demo_hist[1m]))",
    "histogram_sum(rate(demo_hist[2m]))",
    "histogram_count(increase(demo_hist[2m]))",
    "sum by (kind) (rate(demo_hist[2m]))",
    "histogram_count(demo_hist) > 1000",
];

/// Queries where 3.x changed the semantics: `histogram_quantile` and
/// `histogram_fraction` interpolate exponentially inside exponential
/// buckets (2.42: linearly); 2.42 leaves a histogram multiplied or divided
/// by a scalar unscaled.
const DIFFERENT: &[&str] = &[
    "histogram_quantile(0.9, demo_hist)",
    "histogram_fraction(0, 3, demo_hist)",
    "demo_hist * 2",
    "sum(rate(demo_hist[1m])) / 2",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_histogram_queries_match_prometheus_2_42() {
    if !Path::new(PROMETHEUS).exists() {
        assert!(
            !common::is_ci(),
            "prometheus missing under CI (../shared/tools/install-peers.sh)"
        );
        eprintln!("SKIPPED: {PROMETHEUS} not installed");
        return;
    }
    let t0 = (klaxon::model::now_millis() / 1000) * 1000 - 600_000;
    let (addr, server) = serve(t0).await;
    let dir = common::tempdir();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "scrape_configs:\n  - job_name: hd\n    scrape_interval: 1s\n    static_configs: [{{targets: ['{addr}']}}]\n"
        ),
    )
    .expect("config");
    let port = free_port();
    let _prom = common::start_prometheus(
        Path::new(PROMETHEUS),
        dir.path(),
        port,
        &["--enable-feature=native-histograms"],
    )
    .await;
    let base = format!("http://127.0.0.1:{port}");
    // Until Prometheus holds the last sample of both series.
    let end = t0 + (SAMPLES as i64 - 1) * STEP;
    let last: Vec<f64> = KINDS
        .iter()
        .map(|k| count(&sample(k, SAMPLES - 1)) as f64)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let got = prometheus(&base, "histogram_count(demo_hist)", end).await;
        let counts: Vec<f64> = got
            .values()
            .filter_map(|v| match v {
                V::F(f) => Some(*f),
                V::H(..) => None,
            })
            .collect();
        if counts == last {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not scrape all samples"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    server.abort();

    let head = Head::default();
    for kind in KINDS {
        let l = Labels::from_pairs([("__name__", "demo_hist"), ("kind", kind)]);
        let (r, _) = head.get_or_create(&l);
        for k in 0..SAMPLES {
            head.append_histogram(
                r,
                t0 + k as i64 * STEP,
                &HistValue::Int(klaxon_histogram(&sample(kind, k))),
            )
            .expect("append");
        }
    }

    let mut checked = 0;
    let mut report = Vec::new();
    for t in [t0 + 100_000, t0 + 190_000] {
        for q in SAME {
            let (p, k) = (prometheus(&base, q, t).await, klaxon(&head, q, t));
            assert!(!p.is_empty(), "{q} at {t}: Prometheus answered nothing");
            assert!(
                agree(&p, &k),
                "{q} at t0+{}s:\n  prometheus {p:?}\n  klaxon     {k:?}",
                (t - t0) / 1000
            );
            checked += 1;
        }
        for q in DIFFERENT {
            let (p, k) = (prometheus(&base, q, t).await, klaxon(&head, q, t));
            report.push(format!(
                "{q} at t0+{}s: 2.42 {p:?}, klaxon {k:?}",
                (t - t0) / 1000
            ));
            assert!(
                !agree(&p, &k),
                "{q} at {t}: now agrees with 2.42, update docs/compatibility.md"
            );
        }
    }
    println!(
        "{checked} queries agree; by design different:\n{}",
        report.join("\n")
    );
}
