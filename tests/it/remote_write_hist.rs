//! Native histograms and exemplars through remote write, both directions,
//! against a real Prometheus 2.42 started with
//! `--web.enable-remote-write-receiver --enable-feature=native-histograms,exemplar-storage`:
//!
//! - Prometheus → klaxon: Prometheus scrapes a protobuf test target (native
//!   histograms of two schemas growing with each scrape, a classic histogram
//!   and a counter, exemplars on the counter and the classic buckets) and
//!   remote-writes with `send_native_histograms` and `send_exemplars` to a
//!   klaxon with `--web.enable-remote-write-receiver`.
//! - klaxon → Prometheus: integer native histograms and a counter with
//!   exemplars are written into klaxon (`POST /api/v1/write`); klaxon's
//!   WAL-fed queue sends them on to Prometheus.
//!
//! In both, every raw sample (floats and histograms, through a range
//! selector) must be equal on both sides, then the same PromQL
//! (`histogram_count`, `histogram_sum`, `histogram_quantile`,
//! `histogram_fraction`, `rate`, `sum`) at the same timestamps, and
//! `/api/v1/query_exemplars`.

use crate::common;
use common::free_port;

use klaxon::model::Label;
use klaxon::remote::proto::WriteRequest;
use klaxon::remote::proto::{encode_snappy, Exemplar as RwExemplar, Sample, TimeSeries};
use klaxon::remote::proto_hist::HistogramSample;
use klaxon::scrape::parser::protobuf::{
    encode_delimited, Bucket, BucketSpan, Counter, Exemplar, LabelPair, Metric, MetricFamily,
    ProtoHistogram,
};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROTO_CT: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";
const FEATURES: &str = "--enable-feature=native-histograms,exemplar-storage";

/// Whether Prometheus is installed; under CI its absence fails the test.
fn peer_present() -> bool {
    let ok = Path::new(PROMETHEUS).exists();
    if !ok {
        assert!(
            !common::is_ci(),
            "prometheus missing under CI (../shared/tools/install-peers.sh)"
        );
        eprintln!("SKIPPED: {PROMETHEUS} not installed");
    }
    ok
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// `GET /api/v1/query` (time in ms) → `data`.
async fn query(base: &str, expr: &str, t: i64) -> Value {
    let url = format!(
        "{base}/api/v1/query?query={}&time={:.3}",
        urlencode(expr),
        t as f64 / 1000.0
    );
    let j = common::get_json(&url).await;
    assert_eq!(j["status"], "success", "{url}: {j}");
    j["data"].clone()
}

/// A result as series (label set as JSON text) → its samples, floats and
/// histograms as the JSON gives them (numbers as strings).
fn series_map(data: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for r in data["result"].as_array().into_iter().flatten() {
        let mut r = r.as_object().cloned().unwrap_or_default();
        let key = r.remove("metric").unwrap_or_default().to_string();
        out.insert(key, Value::Object(r));
    }
    out
}

/// Equal, or both numbers within 1e-9 relative (a sum over buckets or
/// series may round differently in the last bits).
fn near(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (a, b) {
        (Value::String(x), Value::String(y)) => match (x.parse::<f64>(), y.parse::<f64>()) {
            (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| near(a, b))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| near(v, w)))
        }
        _ => false,
    }
}

/// The raw samples of `selector` over the minute before `t` on both
/// sides, polled until equal (the receiving side may lag); panics with
/// both when they still differ at the deadline. Returns how many float
/// and histogram samples were compared.
async fn raw_equal(sender: &str, receiver: &str, selector: &str, t: i64) -> (usize, usize) {
    let expr = format!("{selector}[1m]");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let s = series_map(&query(sender, &expr, t).await);
        let r = series_map(&query(receiver, &expr, t).await);
        if s == r {
            let count = |k: &str| {
                s.values()
                    .map(|v| v[k].as_array().map_or(0, Vec::len))
                    .sum::<usize>()
            };
            return (count("values"), count("histograms"));
        }
        assert!(
            Instant::now() < deadline,
            "raw samples of {expr} at {t} differ:\nsender   {s:#?}\nreceiver {r:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The same PromQL on both sides at each of `times`: equal answers.
async fn queries_equal(a: &str, b: &str, exprs: &[String], times: &[i64]) -> usize {
    let mut compared = 0;
    for e in exprs {
        for &t in times {
            let x = query(a, e, t).await;
            let y = query(b, e, t).await;
            assert_eq!(x["resultType"], y["resultType"], "{e} at {t}");
            let (xs, ys) = (series_map(&x), series_map(&y));
            assert!(
                xs.len() == ys.len()
                    && xs
                        .iter()
                        .all(|(k, v)| ys.get(k).is_some_and(|w| near(v, w))),
                "{e} at {t} differs:\nsender   {xs:#?}\nreceiver {ys:#?}"
            );
            assert!(!xs.is_empty(), "{e} at {t}: empty on both sides");
            compared += 1;
        }
    }
    compared
}

/// `query_exemplars` over `[start, end]` (ms): series → sorted exemplars.
async fn exemplars(base: &str, query: &str, start: i64, end: i64) -> BTreeMap<String, Vec<String>> {
    let url = format!(
        "{base}/api/v1/query_exemplars?query={}&start={:.3}&end={:.3}",
        urlencode(query),
        start as f64 / 1000.0,
        end as f64 / 1000.0
    );
    let j = common::get_json(&url).await;
    assert_eq!(j["status"], "success", "{url}: {j}");
    let mut out = BTreeMap::new();
    for s in j["data"].as_array().into_iter().flatten() {
        let mut v: Vec<String> = s["exemplars"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| format!("{} {} {}", e["labels"], e["value"], e["timestamp"]))
            .collect();
        v.sort();
        out.insert(s["seriesLabels"].to_string(), v);
    }
    out
}

async fn exemplars_equal(a: &str, b: &str, q: &str, start: i64, end: i64) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let x = exemplars(a, q, start, end).await;
        let y = exemplars(b, q, start, end).await;
        if x == y && !x.is_empty() {
            return x.values().map(Vec::len).sum();
        }
        assert!(
            Instant::now() < deadline,
            "exemplars of {q} differ:\nsender   {x:#?}\nreceiver {y:#?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The histogram queries compared on `metric` (a native histogram).
/// Quantiles and fraction bounds sit on bucket boundaries (`quantiles`:
/// where the cumulative count ends a bucket): there Prometheus 2.42's
/// linear interpolation within a bucket and 3.x's exponential one (which
/// klaxon follows) give the same answer; inside a bucket they differ by
/// design (docs/compatibility.md). Above 0.5, 3.x (and klaxon) walk the
/// buckets from the top, so at a boundary followed by an empty range the
/// answer is the next bucket's lower bound where 2.42 answers this
/// bucket's upper one: quantiles above 0.5 are taken at boundaries between
/// adjacent buckets only.
fn histogram_queries(metric: &str, quantiles: &[&str]) -> Vec<String> {
    let mut q = vec![
        metric.to_string(),
        format!("histogram_count({metric})"),
        format!("histogram_sum({metric})"),
        format!("histogram_fraction(0.001, 2, {metric})"),
        format!("histogram_fraction(-0.001, 4, {metric})"),
        format!("histogram_count(rate({metric}[10s]))"),
        format!("histogram_sum(rate({metric}[10s]))"),
        format!("histogram_count(sum({metric}))"),
        format!("histogram_sum(sum(rate({metric}[10s])))"),
    ];
    for p in quantiles {
        q.push(format!("histogram_quantile({p}, {metric})"));
        q.push(format!("histogram_quantile({p}, rate({metric}[10s]))"));
    }
    q
}

// --- Prometheus → klaxon -------------------------------------------------

fn lp(n: &str, v: &str) -> LabelPair {
    LabelPair {
        name: Some(n.into()),
        value: Some(v.into()),
    }
}

fn ex(trace: String, v: f64) -> Exemplar {
    Exemplar {
        label: vec![lp("trace_id", &trace)],
        value: Some(v),
        timestamp: None,
    }
}

/// The target's payload at its `n`th scrape (n ≥ 1): everything grows
/// with `n`, so rates are not zero.
fn payload(n: u64) -> Vec<u8> {
    let i = n as i64;
    let native = |schema: i32, shard: &str| Metric {
        label: vec![lp("shard", shard)],
        histogram: Some(ProtoHistogram {
            // zero bucket n, negative bucket n, positive buckets n, 2n, n, 3n
            sample_count: Some(9 * n),
            sample_sum: Some(10.5 * n as f64),
            schema: Some(schema),
            zero_threshold: Some(1e-3),
            zero_count: Some(n),
            negative_span: vec![BucketSpan {
                offset: Some(1),
                length: Some(1),
            }],
            negative_delta: vec![i],
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
            positive_delta: vec![i, i, -i, 2 * i],
            ..ProtoHistogram::default()
        }),
        ..Metric::default()
    };
    let classic = Metric {
        histogram: Some(ProtoHistogram {
            sample_count: Some(9 * n),
            sample_sum: Some(12.0 * n as f64),
            bucket: [(0.1, 2u64), (1.0, 5), (10.0, 8)]
                .iter()
                .enumerate()
                .map(|(k, (ub, c))| Bucket {
                    cumulative_count: Some(c * n),
                    upper_bound: Some(*ub),
                    exemplar: Some(ex(format!("b{k}-{n}"), ub / 2.0)),
                    ..Bucket::default()
                })
                .collect(),
            ..ProtoHistogram::default()
        }),
        ..Metric::default()
    };
    let counter = Metric {
        counter: Some(Counter {
            value: Some(3.5 * n as f64),
            exemplar: Some(ex(format!("c{n}"), 0.25 * n as f64)),
            created_timestamp: None,
        }),
        ..Metric::default()
    };
    let fam = |name: &str, t: i32, metric: Vec<Metric>| MetricFamily {
        name: Some(name.into()),
        help: Some(format!("{name}.")),
        r#type: Some(t),
        metric,
        unit: None,
    };
    encode_delimited(&[
        fam(
            "demo_native_seconds",
            4,
            vec![native(0, "a"), native(3, "b")],
        ),
        fam("demo_size_bytes", 4, vec![classic]),
        fam("demo_requests_total", 0, vec![counter]),
    ])
}

/// The target, answering protobuf; counts its scrapes.
async fn serve() -> (String, tokio::task::JoinHandle<()>) {
    use axum::routing::get;
    let n = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let n = n.fetch_add(1, Ordering::Relaxed) + 1;
            async move { ([(axum::http::header::CONTENT_TYPE, PROTO_CT)], payload(n)) }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (addr, h)
}

async fn start_klaxon(dir: &Path, extra: &str) -> klaxon::app::Running {
    let text = format!("storage:\n  path: {}\n{extra}", dir.join("kx").display());
    let cfg = klaxon::settings::load_str(&text, "klaxon.yml").unwrap();
    let opts = klaxon::app::StartOptions {
        enable_remote_write_receiver: true,
        ..klaxon::app::StartOptions::on("127.0.0.1:0")
    };
    klaxon::app::start(cfg, opts).await.unwrap()
}

/// `POST /api/v1/write` of `series` to klaxon at `base`: 204.
async fn write(client: &reqwest::Client, base: &str, series: Vec<TimeSeries>) {
    let body = encode_snappy(&WriteRequest {
        timeseries: series,
        metadata: Vec::new(),
    });
    let r = client
        .post(format!("{base}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
}

/// The newest sample time (ms) of `expr` at `t`, if any.
async fn newest(base: &str, expr: &str, t: i64) -> Option<i64> {
    let d = query(base, &format!("timestamp({expr})"), t).await;
    d["result"]
        .as_array()?
        .iter()
        .filter_map(|r| r["value"][1].as_str()?.parse::<f64>().ok())
        .map(|s| (s * 1000.0).round() as i64)
        .min()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_sends_native_histograms_and_exemplars_to_klaxon() {
    if !peer_present() {
        return;
    }
    let dir = common::tempdir();
    let kx = start_klaxon(dir.path(), "").await;
    let kx_base = format!("http://{}", kx.addr);
    let (target, server) = serve().await;
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            r#"global: {{scrape_interval: 1s}}
scrape_configs:
  - job_name: h
    static_configs: [{{targets: ['{target}']}}]
remote_write:
  - url: {kx_base}/api/v1/write
    send_native_histograms: true
    send_exemplars: true
    queue_config: {{batch_send_deadline: 200ms}}
"#
        ),
    )
    .unwrap();
    let prom_port = free_port();
    let _prom =
        common::start_prometheus(Path::new(PROMETHEUS), dir.path(), prom_port, &[FEATURES]).await;
    let prom = format!("http://127.0.0.1:{prom_port}");

    // Eight scrapes of the histogram in Prometheus; the comparison is at
    // the newest one, the queries at it and the two before.
    let deadline = Instant::now() + Duration::from_secs(40);
    let first = loop {
        if let Some(t) = newest(&prom, "demo_native_seconds", klaxon::model::now_millis()).await {
            break t;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus scraped no native histogram"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let t = loop {
        let now = klaxon::model::now_millis();
        match newest(&prom, "demo_native_seconds", now).await {
            Some(t) if t >= first + 7_000 => break t,
            _ => {}
        }
        assert!(Instant::now() < deadline, "Prometheus stopped scraping");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (floats, hists) = raw_equal(&prom, &kx_base, "{job=\"h\"}", t).await;
    eprintln!("raw samples equal: {floats} floats, {hists} histograms");
    assert!(hists >= 16, "too few histogram samples: {hists}");
    assert!(floats >= 40, "too few float samples: {floats}");

    // Cumulative counts n, 2n, 3n, 5n, 6n, 9n (buckets ending at -1,
    // 0.001, 0.5, 1, 8, 16 at schema 0; no gap after 3n and 6n): quantiles
    // 1/3, 2/3 and 1.
    let mut exprs = histogram_queries(
        "demo_native_seconds",
        &["0.3333333333333333", "0.6666666666666666", "1"],
    );
    // Float rates over windows that neither reach back before the series'
    // first sample (there 2.42 limits the extrapolation to the counter's
    // zero point before its half-interval rule, 3.x and klaxon after it)
    // nor start on a sample (2.42's ranges are left-closed, 3.x's
    // left-open).
    exprs.extend([
        "rate(demo_requests_total[5500ms])".to_string(),
        "histogram_quantile(0.9, rate(demo_size_bytes_bucket[5500ms]))".to_string(),
    ]);
    let times = [t, t - 1000, t - 2500];
    let n = queries_equal(&prom, &kx_base, &exprs, &times).await;
    let e = exemplars_equal(
        &prom,
        &kx_base,
        "{__name__=~\"demo_requests_total|demo_size_bytes_bucket\"}",
        first,
        t,
    )
    .await;
    eprintln!("{n} query results and {e} exemplars equal");
    assert!(e >= 16, "too few exemplars: {e}");
    server.abort();
    kx.stop().await;
}

// --- klaxon → Prometheus -------------------------------------------------

/// An integer histogram at step `k`: schema 1, buckets growing with `k`
/// (deltas as the wire carries them), one counter reset at `k == reset`.
fn int_histogram(k: i64, reset: i64) -> klaxon::tsdb::HistValue {
    use klaxon::model::histogram::{Histogram, Span};
    let n = if k >= reset { k - reset + 1 } else { k + 1 };
    klaxon::tsdb::HistValue::Int(Histogram {
        schema: 1,
        zero_threshold: 0.001,
        zero_count: n as u64,
        count: 12 * n as u64,
        sum: 7.25 * n as f64,
        positive_spans: vec![Span::new(0, 3), Span::new(1, 1)],
        positive_buckets: vec![n, n, -n, 3 * n],
        negative_spans: vec![Span::new(-2, 2)],
        negative_buckets: vec![2 * n, -n],
        ..Default::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn klaxon_sends_native_histograms_and_exemplars_to_prometheus() {
    if !peer_present() {
        return;
    }
    let dir = common::tempdir();
    std::fs::write(dir.path().join("prometheus.yml"), "global: {}\n").unwrap();
    let prom_port = free_port();
    let _prom = common::start_prometheus(
        Path::new(PROMETHEUS),
        dir.path(),
        prom_port,
        &["--web.enable-remote-write-receiver", FEATURES],
    )
    .await;
    let prom = format!("http://127.0.0.1:{prom_port}");
    let kx = start_klaxon(
        dir.path(),
        &format!(
            "remote_write:\n  - url: {prom}/api/v1/write\n    name: prom\n    send_native_histograms: true\n    send_exemplars: true\n    queue_config: {{batch_send_deadline: 200ms, max_samples_per_send: 7}}\n"
        ),
    )
    .await;
    let kx_base = format!("http://{}", kx.addr);

    // 30 steps of 1s ending a little in the past, written in 5 requests
    // (so batches and WAL records interleave); the counter carries one
    // exemplar per step.
    let t0 = (klaxon::model::now_millis() / 1000) * 1000 - 40_000;
    let client = reqwest::Client::new();
    let labels = |name: &str, extra: &[(&str, &str)]| {
        let mut l = vec![Label::new("__name__", name)];
        l.extend(extra.iter().map(|(n, v)| Label::new(*n, *v)));
        l.push(Label::new("job", "kx"));
        l.sort_by(|a, b| a.name.cmp(&b.name));
        l
    };
    for chunk in 0..5 {
        let steps = chunk * 6..chunk * 6 + 6;
        let at = |k: i64| t0 + k * 1000;
        let mut series = Vec::new();
        for (shard, reset) in [("a", 100), ("b", 17)] {
            series.push(TimeSeries {
                labels: labels("rw_native_seconds", &[("shard", shard)]),
                samples: Vec::new(),
                histograms: steps
                    .clone()
                    .map(|k| HistogramSample {
                        timestamp: at(k),
                        value: int_histogram(k, reset),
                    })
                    .collect(),
                exemplars: Vec::new(),
            });
        }
        series.push(TimeSeries {
            labels: labels("rw_requests_total", &[]),
            samples: steps
                .clone()
                .map(|k| Sample {
                    value: 2.5 * k as f64,
                    timestamp: at(k),
                })
                .collect(),
            histograms: Vec::new(),
            exemplars: steps
                .clone()
                .map(|k| RwExemplar {
                    labels: vec![Label::new("trace_id", format!("t{k}"))],
                    value: k as f64 / 4.0,
                    timestamp: at(k) - 10,
                })
                .collect(),
        });
        write(&client, &kx_base, series).await;
    }
    let t = t0 + 29_000;
    let (floats, hists) = raw_equal(&kx_base, &prom, "{job=\"kx\"}", t).await;
    eprintln!("raw samples equal: {floats} floats, {hists} histograms");
    assert_eq!((floats, hists), (30, 60));
    // Cumulative counts n, 3n, 4n, 5n, 7n, 8n, 12n (schema 1; no gap
    // after 7n, a gap after 8n): quantiles 1/4, 1/3, 7/12 and 1.
    let mut exprs = histogram_queries(
        "rw_native_seconds",
        &["0.25", "0.3333333333333333", "0.5833333333333334", "1"],
    );
    exprs.push("rate(rw_requests_total[10s])".to_string());
    let times = [t, t - 5000, t - 11_500, t0 + 18_000];
    let n = queries_equal(&kx_base, &prom, &exprs, &times).await;
    let e = exemplars_equal(&kx_base, &prom, "rw_requests_total", t0 - 1000, t).await;
    eprintln!("{n} query results and {e} exemplars equal");
    assert_eq!(e, 30);

    // What was sent, by kind.
    let m = reqwest::get(format!("{kx_base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |name: &str| -> f64 {
        m.lines()
            .filter(|l| l.starts_with(name) && l.contains("remote_name=\"prom\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(value("klaxon_remote_storage_samples_total{"), 30.0, "{m}");
    assert_eq!(
        value("klaxon_remote_storage_histograms_total{"),
        60.0,
        "{m}"
    );
    assert_eq!(value("klaxon_remote_storage_exemplars_total{"), 30.0, "{m}");
    assert_eq!(value("klaxon_remote_storage_histograms_failed_total{"), 0.0);
    kx.stop().await;
}

// --- Against a scripted receiver -------------------------------------------

/// What a mock receiver accepted: per series, floats, histograms and
/// exemplars in arrival order, and the item count of every request.
#[derive(Default)]
struct Got {
    /// 503 for this many more requests.
    fail: usize,
    floats: BTreeMap<String, Vec<(i64, f64)>>,
    hists: BTreeMap<String, Vec<(i64, klaxon::tsdb::HistValue)>>,
    exemplars: BTreeMap<String, Vec<(i64, f64)>>,
    sizes: Vec<usize>,
    refused: usize,
}

async fn start_mock() -> (Arc<parking_lot::Mutex<Got>>, String) {
    use axum::body::Bytes;
    use axum::extract::State;
    async fn write(
        State(g): State<Arc<parking_lot::Mutex<Got>>>,
        body: Bytes,
    ) -> axum::http::StatusCode {
        let req = klaxon::remote::proto::decode_snappy(&body, 32 << 20).unwrap();
        let mut g = g.lock();
        if g.fail > 0 {
            g.fail -= 1;
            g.refused += 1;
            return axum::http::StatusCode::SERVICE_UNAVAILABLE;
        }
        let mut n = 0;
        for ts in req.timeseries {
            let key: Vec<String> = ts
                .labels
                .iter()
                .map(|l| format!("{}={}", l.name, l.value))
                .collect();
            let key = key.join(",");
            n += ts.samples.len() + ts.histograms.len() + ts.exemplars.len();
            let f = g.floats.entry(key.clone()).or_default();
            f.extend(ts.samples.iter().map(|s| (s.timestamp, s.value)));
            let h = g.hists.entry(key.clone()).or_default();
            h.extend(ts.histograms.into_iter().map(|h| (h.timestamp, h.value)));
            let e = g.exemplars.entry(key).or_default();
            e.extend(ts.exemplars.iter().map(|e| (e.timestamp, e.value)));
        }
        g.sizes.push(n);
        axum::http::StatusCode::NO_CONTENT
    }
    let g = Arc::new(parking_lot::Mutex::new(Got::default()));
    let app = axum::Router::new()
        .route("/write", axum::routing::post(write))
        .with_state(g.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/write", l.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (g, url)
}

/// Through klaxon's WAL-fed queue while the receiver answers 503 for a
/// while: every histogram and float arrives once and in order, every
/// request holds at most `max_samples_per_send` items of all kinds, and
/// a queue without `send_native_histograms`/`send_exemplars` sends floats
/// only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histograms_survive_an_outage_and_the_flags_are_honoured() {
    let (with, url_with) = start_mock().await;
    let (without, url_without) = start_mock().await;
    with.lock().fail = 4;
    let dir = common::tempdir();
    let kx = start_klaxon(
        dir.path(),
        &format!(
            "remote_write:\n  - url: {url_with}\n    name: with\n    send_native_histograms: true\n    send_exemplars: true\n    queue_config: {{batch_send_deadline: 50ms, max_samples_per_send: 5, min_backoff: 10ms, max_backoff: 50ms}}\n  - url: {url_without}\n    name: without\n    queue_config: {{batch_send_deadline: 50ms}}\n"
        ),
    )
    .await;
    let kx_base = format!("http://{}", kx.addr);
    let t0 = (klaxon::model::now_millis() / 1000) * 1000 - 60_000;
    let client = reqwest::Client::new();
    let mut want_h = Vec::new();
    let mut want_f = Vec::new();
    let mut want_e = Vec::new();
    for k in 0..12i64 {
        let t = t0 + k * 1000;
        let h = int_histogram(k, 7);
        want_h.push((t, h.clone()));
        want_f.push((t, k as f64));
        want_e.push((t - 1, -(k as f64)));
        write(
            &client,
            &kx_base,
            vec![
                TimeSeries {
                    labels: vec![Label::new("__name__", "h"), Label::new("job", "x")],
                    samples: Vec::new(),
                    histograms: vec![HistogramSample {
                        timestamp: t,
                        value: h,
                    }],
                    exemplars: Vec::new(),
                },
                TimeSeries {
                    labels: vec![Label::new("__name__", "f"), Label::new("job", "x")],
                    samples: vec![Sample {
                        value: k as f64,
                        timestamp: t,
                    }],
                    histograms: Vec::new(),
                    exemplars: vec![RwExemplar {
                        labels: vec![Label::new("id", k.to_string())],
                        value: -(k as f64),
                        timestamp: t - 1,
                    }],
                },
            ],
        )
        .await;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let done = {
            let g = with.lock();
            g.hists.get("__name__=h,job=x").map_or(0, Vec::len) == 12
                && g.floats.get("__name__=f,job=x").map_or(0, Vec::len) == 12
                && g.exemplars.get("__name__=f,job=x").map_or(0, Vec::len) == 12
        } && without
            .lock()
            .floats
            .get("__name__=f,job=x")
            .map_or(0, Vec::len)
            == 12;
        if done {
            break;
        }
        assert!(Instant::now() < deadline, "not everything arrived");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give a duplicate a chance to show up.
    tokio::time::sleep(Duration::from_millis(300)).await;
    kx.stop().await;
    let g = with.lock();
    assert_eq!(g.refused, 4);
    let got_h = &g.hists["__name__=h,job=x"];
    assert_eq!(got_h.len(), want_h.len());
    for ((t, h), (wt, wh)) in got_h.iter().zip(&want_h) {
        assert_eq!(t, wt);
        assert!(h.equals(wh), "at {t}: {h:?} != {wh:?}");
    }
    assert_eq!(g.floats["__name__=f,job=x"], want_f);
    assert_eq!(g.exemplars["__name__=f,job=x"], want_e);
    assert!(g.sizes.iter().all(|n| *n <= 5), "{:?}", g.sizes);
    let w = without.lock();
    assert_eq!(w.floats["__name__=f,job=x"], want_f);
    assert!(
        w.hists.values().all(Vec::is_empty),
        "histograms sent without the flag"
    );
    assert!(
        w.exemplars.values().all(Vec::is_empty),
        "exemplars sent without the flag"
    );
}

/// Histograms written while the endpoint is down from the queue's first
/// moment, klaxon restarted in the outage: all arrive after the restart,
/// once and in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histograms_written_during_an_outage_survive_a_restart() {
    let (mock, url) = start_mock().await;
    mock.lock().fail = usize::MAX;
    let dir = common::tempdir();
    let cfg = format!(
        "remote_write:\n  - url: {url}\n    name: down\n    send_native_histograms: true\n    queue_config: {{batch_send_deadline: 50ms, min_backoff: 10ms, max_backoff: 50ms}}\n"
    );
    let kx = start_klaxon(dir.path(), &cfg).await;
    let base = format!("http://{}", kx.addr);
    let t0 = (klaxon::model::now_millis() / 1000) * 1000 - 60_000;
    let client = reqwest::Client::new();
    let mut want = Vec::new();
    for k in 0..10i64 {
        let h = int_histogram(k, 4);
        want.push((t0 + k * 1000, h.clone()));
        let series = vec![TimeSeries {
            labels: vec![Label::new("__name__", "h"), Label::new("job", "x")],
            samples: Vec::new(),
            histograms: vec![HistogramSample {
                timestamp: t0 + k * 1000,
                value: h,
            }],
            exemplars: Vec::new(),
        }];
        write(&client, &base, series).await;
    }
    // The queue is retrying: nothing got through.
    let deadline = Instant::now() + Duration::from_secs(10);
    while mock.lock().refused < 2 {
        assert!(Instant::now() < deadline, "the queue never tried");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kx.stop().await;
    assert!(mock.lock().hists.values().all(Vec::is_empty));
    mock.lock().fail = 0;
    let kx = start_klaxon(dir.path(), &cfg).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while mock
        .lock()
        .hists
        .get("__name__=h,job=x")
        .map_or(0, Vec::len)
        < want.len()
    {
        assert!(
            Instant::now() < deadline,
            "histograms not sent after the restart"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    kx.stop().await;
    let g = mock.lock();
    let got = &g.hists["__name__=h,job=x"];
    assert_eq!(got.len(), want.len(), "sent twice?");
    for ((t, h), (wt, wh)) in got.iter().zip(&want) {
        assert_eq!(t, wt);
        assert!(h.equals(wh), "at {t}: {h:?} != {wh:?}");
    }
}
