//! Protobuf scrape side by side with a real Prometheus 2.42 started with
//! `--enable-feature=native-histograms,exemplar-storage` (which makes it
//! negotiate the protobuf format): both scrape one test server writing
//! length-delimited `MetricFamily` messages (counter with exemplar, gauge,
//! untyped, summary, classic histogram with bucket exemplars, and a native
//! histogram with exemplars), every sample carrying the same explicit
//! timestamp. The float series and values both store, and the exemplars
//! `/api/v1/query_exemplars` answers, must be equal. klaxon does not store
//! native histogram samples yet: those series are compared as absent from
//! klaxon and present in Prometheus.

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
        if k.len() >= 14 && p.len() >= 10 && p.values().any(|v| v == "histogram") {
            break (k, p);
        }
        assert!(
            Instant::now() < deadline,
            "no scrape in time:\nklaxon {k:#?}\nprometheus {p:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (p_native, p_float): (BTreeMap<_, _>, BTreeMap<_, _>) =
        p.into_iter().partition(|(_, v)| v == "histogram");
    assert_eq!(
        k, p_float,
        "float series differ (left klaxon, right prometheus)"
    );
    assert_eq!(p_native.len(), 1, "{p_native:?}");
    assert!(p_native.keys().all(|s| s.contains("demo_native_seconds")));
    assert!(k.keys().all(|s| !s.contains("demo_native_seconds")));

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
