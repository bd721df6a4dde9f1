//! Protobuf scrape side by side with a real Prometheus 2.42 started with
//! `--enable-feature=native-histograms,exemplar-storage` (which makes it
//! negotiate the protobuf format): both scrape one test server writing
//! length-delimited `MetricFamily` messages (counter with exemplar, gauge,
//! untyped, summary, classic histogram with bucket exemplars, and a native
//! histogram with exemplars), every sample carrying the same explicit
//! timestamp. The series both store (floats and the native histogram), and
//! the exemplars `/api/v1/query_exemplars` answers, must be equal.
//!
//! `native_histograms_match_prometheus` then compares PromQL over native
//! histograms scraped from protobuf (quantiles, fractions, counts, sums,
//! rates, aggregations, exemplars) at the same timestamps, and checks the
//! classic histogram klaxon converts to one with custom bounds (NHCB, not
//! in Prometheus 2.42) against Prometheus' answers over its classic series.
//! The Klaxon-only tests cover the bucket limit, the bucket factor,
//! `sample_limit`, relabeling and staleness of histogram series.

use crate::common;
use common::{free_port, get_json, Klaxon};

use klaxon::scrape::parser::protobuf::{
    encode_delimited, Bucket, BucketSpan, Counter, Exemplar, Gauge, LabelPair, Metric,
    MetricFamily, ProtoHistogram, Quantile, Summary, Timestamp, Untyped,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROTO_CT: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

fn lp(n: &str, v: &str) -> LabelPair {
    LabelPair {
        name: Some(n.into()),
        value: Some(v.into()),
    }
}

fn ts(ms: i64) -> Timestamp {
    Timestamp {
        seconds: Some(ms / 1000),
        nanos: Some((ms % 1000) as i32 * 1_000_000),
    }
}

fn ex(trace: &str, v: f64, ms: i64) -> Exemplar {
    Exemplar {
        label: vec![lp("trace_id", trace)],
        value: Some(v),
        timestamp: Some(ts(ms)),
    }
}

fn fam(name: &str, help: &str, t: i32, metric: Vec<Metric>) -> MetricFamily {
    MetricFamily {
        name: Some(name.into()),
        help: Some(help.into()),
        r#type: Some(t),
        metric,
        unit: None,
    }
}

/// The payload: every sample at `t` (ms).
fn payload(t: i64) -> Vec<u8> {
    let at = |m: Metric| Metric {
        timestamp_ms: Some(t),
        ..m
    };
    let counters = (0..3)
        .map(|i| {
            at(Metric {
                label: vec![lp("path", &format!("/p{i}")), lp("quote", "a\"b\\c")],
                counter: Some(Counter {
                    value: Some(10.5 * (i + 1) as f64),
                    exemplar: Some(ex(&format!("c{i}"), 0.25, t - 100 - i)),
                    created_timestamp: Some(ts(t - 60_000)),
                }),
                ..Metric::default()
            })
        })
        .collect();
    let gauge = at(Metric {
        label: vec![lp("kind", "g")],
        gauge: Some(Gauge {
            value: Some(-0.125),
        }),
        ..Metric::default()
    });
    let untyped = at(Metric {
        untyped: Some(Untyped { value: Some(1e-7) }),
        ..Metric::default()
    });
    let summary = at(Metric {
        summary: Some(Summary {
            sample_count: Some(42),
            sample_sum: Some(17.5),
            quantile: vec![
                Quantile {
                    quantile: Some(0.5),
                    value: Some(0.3),
                },
                Quantile {
                    quantile: Some(0.99),
                    value: Some(1.7),
                },
            ],
            created_timestamp: None,
        }),
        ..Metric::default()
    });
    let classic = at(Metric {
        histogram: Some(ProtoHistogram {
            sample_count: Some(9),
            sample_sum: Some(12.0),
            bucket: [(0.1, 2u64), (1.0, 5), (10.0, 8)]
                .iter()
                .enumerate()
                .map(|(k, (ub, c))| Bucket {
                    cumulative_count: Some(*c),
                    upper_bound: Some(*ub),
                    exemplar: Some(ex(&format!("b{k}"), *ub / 2.0, t - 200 - k as i64)),
                    ..Bucket::default()
                })
                .collect(),
            ..ProtoHistogram::default()
        }),
        ..Metric::default()
    });
    let native = at(Metric {
        histogram: Some(ProtoHistogram {
            sample_count: Some(6),
            sample_sum: Some(20.0),
            schema: Some(0),
            zero_threshold: Some(1e-128),
            zero_count: Some(1),
            positive_span: vec![BucketSpan {
                offset: Some(1),
                length: Some(3),
            }],
            positive_delta: vec![2, -1, 1],
            exemplars: vec![ex("n0", 3.0, t - 300)],
            ..ProtoHistogram::default()
        }),
        ..Metric::default()
    });
    encode_delimited(&[
        fam("demo_requests_total", "Requests.", 0, counters),
        fam("demo_temperature", "A gauge.", 1, vec![gauge]),
        fam("demo_untyped", "", 3, vec![untyped]),
        fam("demo_latency_seconds", "A summary.", 2, vec![summary]),
        fam("demo_size_bytes", "A classic histogram.", 4, vec![classic]),
        fam(
            "demo_native_seconds",
            "A native histogram.",
            4,
            vec![native],
        ),
    ])
}

/// A target answering protobuf to everyone; records the Accept headers.
async fn serve(
    t: i64,
) -> (
    String,
    Arc<parking_lot::Mutex<Vec<String>>>,
    tokio::task::JoinHandle<()>,
) {
    use axum::routing::get;
    let accepts = Arc::new(parking_lot::Mutex::new(Vec::new()));
    let seen = accepts.clone();
    let body = payload(t);
    let app = axum::Router::new().route(
        "/metrics",
        get(move |h: axum::http::HeaderMap| {
            let body = body.clone();
            let seen = seen.clone();
            async move {
                let a = h
                    .get("accept")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                seen.lock().push(a);
                ([(axum::http::header::CONTENT_TYPE, PROTO_CT)], body)
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (addr, accepts, h)
}

/// `query` at `t` (ms) as label set (without job/instance) → value text;
/// native histogram results are keyed with the value "histogram".
async fn instant(base: &str, query: &str, t: i64) -> BTreeMap<String, String> {
    let url = format!(
        "{base}/api/v1/query?query={}&time={}",
        urlencode(query),
        t as f64 / 1000.0
    );
    let j = get_json(&url).await;
    assert_eq!(j["status"], "success", "{url}: {j}");
    let mut out = BTreeMap::new();
    for r in j["data"]["result"].as_array().unwrap() {
        let mut m = r["metric"].as_object().unwrap().clone();
        m.remove("instance");
        let key = serde_json::Value::Object(m).to_string();
        let v = if r.get("histogram").is_some() {
            "histogram".to_string()
        } else {
            r["value"][1].as_str().unwrap().to_string()
        };
        out.insert(key, v);
    }
    out
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// query_exemplars as (series without instance, [(labels, value, ts)]).
async fn exemplars(base: &str, query: &str) -> BTreeMap<String, Vec<String>> {
    let url = format!("{base}/api/v1/query_exemplars?query={}", urlencode(query));
    let j = get_json(&url).await;
    assert_eq!(j["status"], "success", "{url}: {j}");
    let mut out = BTreeMap::new();
    for s in j["data"].as_array().unwrap() {
        let mut m = s["seriesLabels"].as_object().unwrap().clone();
        m.remove("instance");
        let mut v: Vec<String> = s["exemplars"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| format!("{} {} {}", e["labels"], e["value"], e["timestamp"]))
            .collect();
        v.sort();
        out.insert(serde_json::Value::Object(m).to_string(), v);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_scrape_matches_prometheus() {
    if !Path::new(PROMETHEUS).exists() {
        assert!(
            !common::is_ci(),
            "prometheus missing under CI (../shared/tools/install-peers.sh)"
        );
        eprintln!("SKIPPED: {PROMETHEUS} not installed");
        return;
    }
    let t = (klaxon::model::now_millis() / 1000) * 1000 - 5_000;
    let (addr, accepts, server) = serve(t).await;
    let job = format!(
        "scrape_configs:\n  - job_name: p\n    scrape_interval: 1s\n    static_configs: [{{targets: ['{addr}']}}]\n"
    );
    let dir = common::tempdir();
    std::fs::write(dir.path().join("prometheus.yml"), &job).unwrap();
    let prom_port = free_port();
    let _prom = common::start_prometheus(
        Path::new(PROMETHEUS),
        dir.path(),
        prom_port,
        &["--enable-feature=native-histograms,exemplar-storage"],
    )
    .await;
    let prom = format!("http://127.0.0.1:{prom_port}");
    let kx = Klaxon::start(&format!(
        "scrape_configs:\n  - job_name: p\n    scrape_interval: 1s\n    scrape_native_histograms: true\n    static_configs: [{{targets: ['{addr}']}}]\n"
    ))
    .await;

    // Both have scraped once the counter is there and Prometheus has its
    // native histogram.
    let deadline = Instant::now() + Duration::from_secs(30);
    let all = "{job=\"p\"}";
    let (k, p) = loop {
        let k = instant(&kx.base, all, t).await;
        let p = instant(&prom, all, t).await;
        let native = |m: &BTreeMap<String, String>| m.values().any(|v| v == "histogram");
        if k.len() >= 16 && p.len() >= 16 && native(&k) && native(&p) {
            break (k, p);
        }
        assert!(
            Instant::now() < deadline,
            "no scrape in time:\nklaxon {k:#?}\nprometheus {p:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(k, p, "series differ (left klaxon, right prometheus)");
    let natives: Vec<&String> = k
        .iter()
        .filter(|e| e.1 == "histogram")
        .map(|e| e.0)
        .collect();
    assert_eq!(natives.len(), 1, "{natives:?}");
    assert!(natives[0].contains("demo_native_seconds"));

    // The native histogram's own exemplar (client_model's
    // `Histogram.exemplars`, newer than 2.42): kept by klaxon as Prometheus
    // 3 keeps it, unknown to 2.42.
    let ne = exemplars(&kx.base, "demo_native_seconds").await;
    assert_eq!(ne.values().map(Vec::len).sum::<usize>(), 1, "{ne:#?}");
    assert!(exemplars(&prom, "demo_native_seconds").await.is_empty());

    // Exemplars of the counter and the classic buckets.
    let q = "{__name__=~\"demo_requests_total|demo_size_bytes_bucket\"}";
    let ke = exemplars(&kx.base, q).await;
    let pe = exemplars(&prom, q).await;
    assert_eq!(ke.len(), 6, "{ke:#?}");
    assert_eq!(ke, pe, "exemplars differ (left klaxon, right prometheus)");

    // Protobuf was asked for first; metadata from the families.
    let a = accepts.lock().clone();
    assert!(
        a.iter().any(|h| h.starts_with(
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.6"
        )),
        "{a:?}"
    );
    let md = get_json(&format!("{}/api/v1/metadata", kx.base)).await;
    assert_eq!(
        md["data"]["demo_latency_seconds"][0]["type"], "summary",
        "{md}"
    );
    assert_eq!(
        md["data"]["demo_size_bytes"][0]["help"], "A classic histogram.",
        "{md}"
    );
    server.abort();
    kx.app.stop().await;
}

/// Phase `k` (0, 1, 2) of the histogram target, every sample at `at`:
/// two native counter histograms (schema 1, both signs, zero bucket, an
/// exemplar) that grow from phase to phase, and a classic histogram with
/// bucket exemplars (stored as classic series and, in klaxon, as NHCB).
fn hist_payload(k: u64, at: i64) -> Vec<u8> {
    let stamp = |m: Metric| Metric {
        timestamp_ms: Some(at),
        ..m
    };
    let natives = ["/a", "/b"]
        .iter()
        .enumerate()
        .map(|(i, path)| {
            let i = i as u64;
            // Absolute counts per bucket, then deltas.
            let pos = [40 + 3 * k + i, 25 + 5 * k, 10 + 2 * k + i, 4 + k];
            let neg = [6 + k, 2];
            let zero = 3 + k;
            let deltas = |c: &[u64]| -> Vec<i64> {
                let mut prev = 0i64;
                c.iter()
                    .map(|&x| {
                        let d = x as i64 - prev;
                        prev = x as i64;
                        d
                    })
                    .collect()
            };
            let count = pos.iter().sum::<u64>() + neg.iter().sum::<u64>() + zero;
            stamp(Metric {
                label: vec![lp("path", path)],
                histogram: Some(ProtoHistogram {
                    sample_count: Some(count),
                    sample_sum: Some(250.5 + 40.25 * k as f64 + i as f64),
                    schema: Some(1),
                    zero_threshold: Some(0.001),
                    zero_count: Some(zero),
                    positive_span: vec![
                        BucketSpan {
                            offset: Some(-1),
                            length: Some(2),
                        },
                        BucketSpan {
                            offset: Some(2),
                            length: Some(2),
                        },
                    ],
                    positive_delta: deltas(&pos),
                    negative_span: vec![BucketSpan {
                        offset: Some(0),
                        length: Some(2),
                    }],
                    negative_delta: deltas(&neg),
                    // `/a`: the histogram's own exemplars (Prometheus 3);
                    // `/b`: one on its only classic bucket (what 2.42
                    // reads too).
                    exemplars: if i == 0 {
                        vec![ex(&format!("n{i}{k}"), 1.25 + k as f64, at - 50)]
                    } else {
                        Vec::new()
                    },
                    bucket: if i == 0 {
                        Vec::new()
                    } else {
                        vec![Bucket {
                            cumulative_count: Some(count),
                            upper_bound: Some(f64::INFINITY),
                            exemplar: Some(ex(&format!("n{i}{k}"), 2.5 + k as f64, at - 40)),
                            ..Bucket::default()
                        }]
                    },
                    ..ProtoHistogram::default()
                }),
                ..Metric::default()
            })
        })
        .collect();
    let bounds = [0.25, 1.0, 4.0, 16.0];
    let cum = [10 + k, 30 + 4 * k, 70 + 9 * k, 90 + 10 * k];
    let classic = stamp(Metric {
        histogram: Some(ProtoHistogram {
            sample_count: Some(100 + 12 * k),
            sample_sum: Some(400.0 + 50.0 * k as f64),
            bucket: bounds
                .iter()
                .zip(cum)
                .enumerate()
                .map(|(j, (ub, c))| Bucket {
                    cumulative_count: Some(c),
                    upper_bound: Some(*ub),
                    exemplar: Some(ex(&format!("c{j}{k}"), ub / 2.0, at - 60 - j as i64)),
                    ..Bucket::default()
                })
                .collect(),
            ..ProtoHistogram::default()
        }),
        ..Metric::default()
    });
    encode_delimited(&[
        fam("demo_native_seconds", "Native.", 4, natives),
        fam("demo_size_bytes", "Classic.", 4, vec![classic]),
    ])
}

/// When the phases of [`serve_phases`] started (phase 0 until set).
type PhaseClock = Arc<parking_lot::Mutex<Option<Instant>>>;

/// Serves phase 0 of [`hist_payload`] until the clock is set, then phases
/// 1 and 2 `phase` apart, at the timestamps `stamps`.
async fn serve_phases(
    stamps: [i64; 3],
    phase: Duration,
) -> (String, PhaseClock, tokio::task::JoinHandle<()>) {
    use axum::routing::get;
    let clock: PhaseClock = Arc::new(parking_lot::Mutex::new(None));
    let started = clock.clone();
    let app = axum::Router::new().route(
        "/metrics",
        get(move || async move {
            let k = match *started.lock() {
                None => 0,
                Some(at) => (1 + (at.elapsed().as_millis() / phase.as_millis()) as usize).min(2),
            };
            (
                [(axum::http::header::CONTENT_TYPE, PROTO_CT)],
                hist_payload(k as u64, stamps[k]),
            )
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (addr, clock, h)
}

/// `query` at `t` (ms): series (without instance) → the JSON of its value,
/// float or histogram.
async fn answer(base: &str, query: &str, t: i64) -> BTreeMap<String, String> {
    let url = format!(
        "{base}/api/v1/query?query={}&time={}",
        urlencode(query),
        t as f64 / 1000.0
    );
    let j = get_json(&url).await;
    assert_eq!(j["status"], "success", "{url}: {j}");
    let mut out = BTreeMap::new();
    let result = &j["data"]["result"];
    let items: Vec<serde_json::Value> = match result.as_array() {
        Some(a) => a.clone(),
        // A scalar.
        None => vec![serde_json::json!({"metric": {}, "value": result})],
    };
    for r in items {
        let mut m = r["metric"].as_object().cloned().unwrap_or_default();
        m.remove("instance");
        let key = serde_json::Value::Object(m).to_string();
        let v = match r.get("histogram") {
            Some(h) => h[1].to_string(),
            None => r["value"][1].to_string(),
        };
        out.insert(key, v);
    }
    out
}

/// Prometheus 3's exponential interpolation of a quantile inside a
/// positive bucket of `schema`, from the linear one (2.42) in the same
/// bucket.
fn linear_to_exponential(lin: f64, schema: i32) -> f64 {
    assert!(lin > 0.0, "{lin}");
    let scale = 2f64.powi(schema);
    let k = (lin.log2() * scale).ceil();
    let (lo, up) = (2f64.powf((k - 1.0) / scale), 2f64.powf(k / scale));
    let f = (lin - lo) / (up - lo);
    2f64.powf(lo.log2() + (up.log2() - lo.log2()) * f)
}

/// Number of raw samples of `selector` in `[t - window, t]` per series.
async fn raw_samples(base: &str, selector: &str, window: &str, t: i64) -> Vec<usize> {
    let url = format!(
        "{base}/api/v1/query?query={}&time={}",
        urlencode(&format!("{selector}[{window}]")),
        t as f64 / 1000.0
    );
    let j = get_json(&url).await;
    j["data"]["result"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    s["histograms"].as_array().map_or(0, |v| v.len())
                        + s["values"].as_array().map_or(0, |v| v.len())
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_histograms_match_prometheus() {
    if !Path::new(PROMETHEUS).exists() {
        assert!(
            !common::is_ci(),
            "prometheus missing under CI (../shared/tools/install-peers.sh)"
        );
        eprintln!("SKIPPED: {PROMETHEUS} not installed");
        return;
    }
    // Three samples 10 s apart, in the recent past: the first until both
    // have scraped it, the others for 4 s each.
    let base_t = (klaxon::model::now_millis() / 1000) * 1000 - 40_000;
    let stamps = [base_t, base_t + 10_000, base_t + 20_000];
    let (addr, clock, server) = serve_phases(stamps, Duration::from_secs(4)).await;
    let dir = common::tempdir();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "scrape_configs:\n  - job_name: h\n    scrape_interval: 1s\n    static_configs: [{{targets: ['{addr}']}}]\n"
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let _prom = common::start_prometheus(
        Path::new(PROMETHEUS),
        dir.path(),
        prom_port,
        &["--enable-feature=native-histograms,exemplar-storage"],
    )
    .await;
    let prom = format!("http://127.0.0.1:{prom_port}");
    let kx = Klaxon::start(&format!(
        "scrape_configs:\n  - job_name: h\n    scrape_interval: 1s\n    scrape_native_histograms: true\n    always_scrape_classic_histograms: true\n    convert_classic_histograms_to_nhcb: true\n    static_configs: [{{targets: ['{addr}']}}]\n"
    ))
    .await;

    let t = stamps[2];
    let sel = "{__name__=~\"demo_native_seconds|demo_size_bytes|demo_size_bytes_count\"}";
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let k = raw_samples(&kx.base, sel, "30s", t).await;
        let p = raw_samples(&prom, sel, "30s", t).await;
        if k.len() == 4 && p.len() == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "first samples not scraped in time"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    *clock.lock() = Some(Instant::now());
    // Wait until both hold all three samples of every series.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let k = raw_samples(&kx.base, sel, "30s", t).await;
        let p = raw_samples(&prom, sel, "30s", t).await;
        // klaxon: two natives, the NHCB and the classic count; Prometheus:
        // two natives and the classic count.
        if k.len() == 4 && k.iter().all(|n| *n == 3) && p.len() == 3 && p.iter().all(|n| *n == 3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "samples not scraped in time: klaxon {k:?}, prometheus {p:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // PromQL over the native histograms: the same answers at every stamp.
    // Quantiles landing in the zero bucket and fractions whose bounds are
    // bucket boundaries (or inside the zero bucket) interpolate linearly in
    // both versions.
    let queries = [
        "demo_native_seconds",
        "histogram_count(demo_native_seconds)",
        "histogram_sum(demo_native_seconds)",
        "histogram_quantile(0.1, demo_native_seconds)",
        "histogram_fraction(0, 2, demo_native_seconds)",
        "histogram_fraction(-1, 1, demo_native_seconds)",
        "sum(demo_native_seconds)",
        "sum by (job) (demo_native_seconds)",
        "histogram_count(sum(demo_native_seconds))",
        "rate(demo_native_seconds[30s])",
        "histogram_count(rate(demo_native_seconds[30s]))",
        "histogram_sum(rate(demo_native_seconds[30s]))",
        "histogram_fraction(0, 4, sum(rate(demo_native_seconds[30s])))",
        "increase(demo_native_seconds[30s])",
        // The classic series klaxon keeps beside the NHCB.
        "demo_size_bytes_bucket",
        "demo_size_bytes_count",
        "demo_size_bytes_sum",
    ];
    let mut compared = 0;
    for q in queries {
        for at in stamps {
            let k = answer(&kx.base, q, at).await;
            let p = answer(&prom, q, at).await;
            assert!(
                !p.is_empty() || at == stamps[0],
                "{q} at {at}: prometheus empty"
            );
            assert_eq!(k, p, "{q} at {at} (left klaxon, right prometheus)");
            compared += 1;
        }
    }
    assert_eq!(compared, queries.len() * 3);

    // Inside an exponential bucket Prometheus 3 interpolates exponentially,
    // 2.42 linearly: 2.42's answer, mapped from linear to exponential
    // within its bucket (schema 1), is what klaxon must answer.
    let exponential = [
        "histogram_quantile(0.5, demo_native_seconds)",
        "histogram_quantile(0.9, demo_native_seconds)",
        "histogram_quantile(0.99, demo_native_seconds)",
        "histogram_quantile(0.9, sum by (job) (rate(demo_native_seconds[30s])))",
        "histogram_quantile(0.5, rate(demo_native_seconds[15s]))",
    ];
    for q in exponential {
        for at in stamps {
            let k = answer(&kx.base, q, at).await;
            let p = answer(&prom, q, at).await;
            assert_eq!(
                k.keys().collect::<Vec<_>>(),
                p.keys().collect::<Vec<_>>(),
                "{q} at {at}"
            );
            for (series, pv) in &p {
                let lin: f64 = pv.trim_matches('"').parse().unwrap();
                let want = linear_to_exponential(lin, 1);
                let got: f64 = k[series].trim_matches('"').parse().unwrap();
                assert!(
                    (got - want).abs() <= 1e-9 * want.abs(),
                    "{q} at {at} {series}: klaxon {got}, expected {want} (2.42 linear {lin})"
                );
            }
        }
    }

    // The NHCB klaxon made of the classic histogram answers what
    // Prometheus answers over the classic series.
    let pairs = [
        ("histogram_count(demo_size_bytes)", "demo_size_bytes_count"),
        ("histogram_sum(demo_size_bytes)", "demo_size_bytes_sum"),
        (
            "histogram_quantile(0.5, demo_size_bytes)",
            "histogram_quantile(0.5, demo_size_bytes_bucket)",
        ),
        (
            "histogram_quantile(0.95, demo_size_bytes)",
            "histogram_quantile(0.95, demo_size_bytes_bucket)",
        ),
        (
            "histogram_quantile(0.9, rate(demo_size_bytes[30s]))",
            "histogram_quantile(0.9, rate(demo_size_bytes_bucket[30s]))",
        ),
    ];
    let strip = |m: BTreeMap<String, String>| -> Vec<String> { m.into_values().collect() };
    for (kq, pq) in pairs {
        for at in stamps {
            let k = strip(answer(&kx.base, kq, at).await);
            let p = strip(answer(&prom, pq, at).await);
            assert_eq!(k, p, "{kq} vs {pq} at {at} (left klaxon, right prometheus)");
        }
    }
    // Its layout, from upstream's conversion rules: bounds as custom
    // values, the +Inf bucket from the count, schema -53.
    let head = kx.app.state.head.clone();
    let m = [klaxon::model::Matcher::new(
        klaxon::model::MatchType::Equal,
        "__name__",
        "demo_size_bytes",
    )
    .unwrap()];
    let s = head.select(&m, i64::MIN, i64::MAX);
    assert_eq!(s.len(), 1, "{s:?}");
    let (ht, hv) = s[0].histograms.last().unwrap();
    assert_eq!(*ht, t);
    let f = hv.to_float();
    assert_eq!(f.schema, -53);
    assert_eq!(f.custom_values, vec![0.25, 1.0, 4.0, 16.0]);
    assert_eq!(f.count, 124.0);
    assert_eq!(f.sum, 500.0);
    assert_eq!(f.positive_buckets, vec![12.0, 26.0, 50.0, 22.0, 14.0]);

    // Exemplars: a native histogram's from its classic bucket, and the
    // classic buckets'.
    for q in ["demo_native_seconds{path=\"/b\"}", "demo_size_bytes_bucket"] {
        let ke = exemplars(&kx.base, q).await;
        let pe = exemplars(&prom, q).await;
        assert!(!ke.is_empty(), "{q}: no exemplars");
        assert_eq!(ke, pe, "{q} exemplars (left klaxon, right prometheus)");
    }
    // The histogram's own exemplars (`Histogram.exemplars`): Prometheus 3
    // semantics, unknown to 2.42.
    let ke = exemplars(&kx.base, "demo_native_seconds{path=\"/a\"}").await;
    assert_eq!(ke.values().map(Vec::len).sum::<usize>(), 3, "{ke:#?}");
    assert!(exemplars(&prom, "demo_native_seconds{path=\"/a\"}")
        .await
        .is_empty());
    // The NHCB carries the bucket exemplars too (timestamped ones).
    let ne = exemplars(&kx.base, "demo_size_bytes").await;
    assert_eq!(ne.values().map(Vec::len).sum::<usize>(), 12, "{ne:#?}");
    server.abort();
    kx.app.stop().await;
}

/// Targets for the Klaxon-only tests: `/native` a native histogram at
/// schema 3 with 8 adjacent buckets; `/classic` a classic histogram with 3
/// bounds; `/mixed` a gauge and a native histogram; `/flip` the native
/// histogram for the first two requests only.
async fn serve_cases() -> (String, tokio::task::JoinHandle<()>) {
    use axum::routing::get;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let native = || Metric {
        label: vec![lp("le_not", "x")],
        histogram: Some(ProtoHistogram {
            sample_count: Some(36),
            sample_sum: Some(50.0),
            schema: Some(3),
            zero_threshold: Some(1e-9),
            positive_span: vec![BucketSpan {
                offset: Some(0),
                length: Some(8),
            }],
            // Counts 1..=8.
            positive_delta: vec![1, 1, 1, 1, 1, 1, 1, 1],
            ..ProtoHistogram::default()
        }),
        ..Metric::default()
    };
    let classic = Metric {
        histogram: Some(ProtoHistogram {
            sample_count: Some(6),
            sample_sum: Some(9.0),
            bucket: [(1.0, 1u64), (2.0, 3), (3.0, 5)]
                .iter()
                .map(|(ub, c)| Bucket {
                    cumulative_count: Some(*c),
                    upper_bound: Some(*ub),
                    ..Bucket::default()
                })
                .collect(),
            ..ProtoHistogram::default()
        }),
        ..Metric::default()
    };
    let gauge = Metric {
        gauge: Some(Gauge { value: Some(1.0) }),
        ..Metric::default()
    };
    let nat = encode_delimited(&[fam("case_native", "", 4, vec![native()])]);
    let cls = encode_delimited(&[fam("case_classic", "", 4, vec![classic])]);
    let mixed = encode_delimited(&[
        fam("case_gauge", "", 1, vec![gauge.clone()]),
        fam("case_native", "", 4, vec![native()]),
    ]);
    let flips = Arc::new(AtomicUsize::new(0));
    let only_gauge = encode_delimited(&[fam("case_gauge", "", 1, vec![gauge])]);
    let proto = |b: Vec<u8>| ([(axum::http::header::CONTENT_TYPE, PROTO_CT)], b);
    let text = "# TYPE case_text histogram\ncase_text_bucket{le=\"0.5\"} 1 # {trace_id=\"t1\"} 0.3 1700000000.5\ncase_text_bucket{le=\"+Inf\"} 3\ncase_text_sum 2.5\ncase_text_count 3\n# TYPE case_other gauge\ncase_other 7\n# EOF\n";
    let app = axum::Router::new()
        .route(
            "/text",
            get(move || async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    text,
                )
            }),
        )
        .route("/native", get(move || async move { proto(nat) }))
        .route("/classic", get(move || async move { proto(cls) }))
        .route(
            "/mixed",
            get({
                let m = mixed.clone();
                move || async move { proto(m) }
            }),
        )
        .route(
            "/flip",
            get(move || {
                let n = flips.fetch_add(1, Ordering::SeqCst);
                let b = if n < 2 {
                    mixed.clone()
                } else {
                    only_gauge.clone()
                };
                async move { proto(b) }
            }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (addr, h)
}

fn series_of(head: &klaxon::tsdb::Head, name: &str, job: &str) -> Vec<klaxon::tsdb::SeriesData> {
    use klaxon::model::{MatchType, Matcher};
    let m = [
        Matcher::new(MatchType::Equal, "__name__", name).unwrap(),
        Matcher::new(MatchType::Equal, "job", job).unwrap(),
    ];
    head.select(&m, i64::MIN, i64::MAX)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histogram_limits_relabeling_and_staleness() {
    let (addr, server) = serve_cases().await;
    let job = |name: &str, path: &str, extra: &str| {
        format!(
            "  - job_name: {name}\n    scrape_interval: 1s\n    scrape_timeout: 500ms\n    metrics_path: {path}\n    scrape_native_histograms: true\n{extra}    static_configs: [{{targets: ['{addr}']}}]\n"
        )
    };
    let cfg = [
        "scrape_configs:\n".to_string(),
        job("plain", "/native", ""),
        job("limit", "/native", "    native_histogram_bucket_limit: 3\n"),
        job("factor", "/native", "    native_histogram_min_bucket_factor: 1.4\n"),
        job(
            "nhcb_limit",
            "/classic",
            "    convert_classic_histograms_to_nhcb: true\n    native_histogram_bucket_limit: 3\n",
        ),
        job("samples", "/mixed", "    sample_limit: 1\n"),
        job(
            "relabel",
            "/mixed",
            "    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: case_native\n        action: drop\n",
        ),
        job("flip", "/flip", ""),
        job("text_nhcb", "/text", "    convert_classic_histograms_to_nhcb: true\n"),
        job(
            "text_both",
            "/text",
            "    convert_classic_histograms_to_nhcb: true\n    always_scrape_classic_histograms: true\n",
        ),
    ]
    .concat();
    let kx = Klaxon::start(&cfg).await;
    let head = kx.app.state.head.clone();
    let up = |job: &str| -> Vec<f64> {
        series_of(&head, "up", job)
            .into_iter()
            .flat_map(|s| s.samples)
            .map(|s| s.1)
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ready = [
            "plain",
            "limit",
            "factor",
            "nhcb_limit",
            "samples",
            "relabel",
            "text_nhcb",
            "text_both",
        ]
        .iter()
        .all(|j| !up(j).is_empty())
            && up("flip").len() >= 4;
        if ready {
            break;
        }
        assert!(Instant::now() < deadline, "targets not scraped in time");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let schema_count = |job: &str| -> (i32, f64, usize) {
        let s = series_of(&head, "case_native", job);
        assert_eq!(s.len(), 1, "{job}: {s:?}");
        assert_eq!(s[0].labels.get("instance"), Some(addr.as_str()));
        assert_eq!(s[0].labels.get("le_not"), Some("x"));
        let f = s[0].histograms.last().unwrap().1.to_float();
        (f.schema, f.count, f.positive_buckets.len())
    };
    // Stored as scraped.
    assert_eq!(schema_count("plain"), (3, 36.0, 8));
    // Lowered until at most 3 buckets: schema 2 has 5, schema 1 has 3.
    assert_eq!(schema_count("limit"), (1, 36.0, 3));
    // A bucket factor of 1.4 allows schema 1 at most.
    assert_eq!(schema_count("factor"), (1, 36.0, 3));
    // Custom buckets (4 with +Inf) cannot be merged: the scrape fails.
    assert!(
        up("nhcb_limit").iter().all(|v| *v == 0.0),
        "{:?}",
        up("nhcb_limit")
    );
    assert!(series_of(&head, "case_classic", "nhcb_limit").is_empty());
    let st = get_json(&format!("{}/api/v1/targets", kx.base)).await;
    let err = st["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["labels"]["job"] == "nhcb_limit")
        .map(|t| t["lastError"].as_str().unwrap_or("").to_string())
        .unwrap_or_default();
    assert!(err.contains("histogram bucket limit exceeded"), "{err}");
    // A histogram counts against sample_limit like a float.
    assert!(up("samples").iter().all(|v| *v == 0.0));
    assert!(series_of(&head, "case_gauge", "samples").is_empty());
    // Metric relabeling drops histogram series too.
    assert!(up("relabel").iter().all(|v| *v == 1.0));
    assert!(series_of(&head, "case_native", "relabel").is_empty());
    assert_eq!(series_of(&head, "case_gauge", "relabel").len(), 1);
    // A histogram series that disappears gets a histogram staleness marker.
    let s = series_of(&head, "case_native", "flip");
    assert_eq!(s.len(), 1);
    let h = &s[0].histograms;
    assert!(h.len() >= 2, "{h:?}");
    assert!(!h[0].1.is_stale());
    assert!(h.last().unwrap().1.is_stale(), "{h:?}");
    // OpenMetrics classic histograms become NHCB too; the classic series
    // stay only with always_scrape_classic_histograms.
    for (job, classic) in [("text_nhcb", false), ("text_both", true)] {
        assert!(up(job).iter().all(|v| *v == 1.0), "{job}: {:?}", up(job));
        let s = series_of(&head, "case_text", job);
        assert_eq!(s.len(), 1, "{job}: {s:?}");
        let f = s[0].histograms.last().unwrap().1.to_float();
        assert_eq!((f.schema, f.count, f.sum), (-53, 3.0, 2.5));
        assert_eq!(f.custom_values, vec![0.5]);
        assert_eq!(f.positive_buckets, vec![1.0, 2.0]);
        assert_eq!(
            series_of(&head, "case_text_bucket", job).len(),
            if classic { 2 } else { 0 },
            "{job}"
        );
        assert_eq!(series_of(&head, "case_other", job).len(), 1, "{job}");
    }
    let ne = exemplars(&kx.base, "case_text{job=\"text_nhcb\"}").await;
    assert_eq!(ne.values().map(Vec::len).sum::<usize>(), 1, "{ne:#?}");
    server.abort();
    kx.app.stop().await;
}
