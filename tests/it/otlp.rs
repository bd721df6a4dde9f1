//! The OTLP receiver against the OpenTelemetry Python SDK
//! (`opentelemetry-sdk` + `opentelemetry-exporter-otlp-proto-http`, installed
//! by .ci/run): `tests/it/otlp_push.py` pushes a counter, an observable
//! gauge, a histogram and two exponential histograms; the series klaxon
//! stores must be those Prometheus 3's translation makes (exponential
//! histograms as native histograms, read back through `/api/v1/query`).
//! Also: 404 without the flag, delta temporality refused with Prometheus'
//! message.

use crate::common::{self, Klaxon};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

fn sdk_present() -> bool {
    let ok = Command::new("python3")
        .args([
            "-c",
            "import opentelemetry.sdk.metrics, opentelemetry.exporter.otlp.proto.http.metric_exporter",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            !common::is_ci(),
            "the OpenTelemetry Python SDK is missing under CI (.ci/run installs it)"
        );
        eprintln!("SKIPPED: python3 with opentelemetry-sdk and the OTLP/HTTP exporter missing");
    }
    ok
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/it/otlp_push.py")
}

/// Runs the SDK script; returns (its stdout, stderr).
async fn push(base: &str, mode: &str) -> (String, String) {
    let url = format!("{base}/api/v1/otlp/v1/metrics");
    let mode = mode.to_string();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3")
            .arg(script())
            .args([&url, &mode])
            .output()
            .expect("python3 runs")
    })
    .await
    .expect("join");
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn start(otlp: bool, extra: &str) -> Klaxon {
    let dir = common::tempdir();
    let d = dir.path().display().to_string();
    let yaml = format!("storage:\n  path: {d}\n{extra}");
    let path = dir.path().join("klaxon.yml");
    std::fs::write(&path, &yaml).expect("write klaxon.yml");
    let cfg = klaxon::settings::load_file(&path).expect("config loads");
    let opts = klaxon::app::StartOptions {
        enable_otlp_receiver: otlp,
        ..klaxon::app::StartOptions::on("127.0.0.1:0")
    };
    let app = klaxon::app::start(cfg, opts).await.expect("klaxon starts");
    let base = format!("http://{}", app.addr);
    Klaxon { app, base, dir }
}

/// The result of the instant query `expr`: each series' labels and its
/// JSON (`value` or `histogram`).
async fn query(base: &str, expr: &str) -> Vec<(BTreeMap<String, String>, serde_json::Value)> {
    let qs = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", expr)
        .finish();
    let v = common::get_json(&format!("{base}/api/v1/query?{qs}")).await;
    let mut out = Vec::new();
    for r in v["data"]["result"].as_array().expect("vector result") {
        let labels: BTreeMap<String, String> = r["metric"]
            .as_object()
            .expect("metric")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
        out.push((labels, r.clone()));
    }
    out
}

/// Every series of the instant query `expr`: labels → value.
async fn series(base: &str, expr: &str) -> BTreeMap<BTreeMap<String, String>, String> {
    query(base, expr)
        .await
        .into_iter()
        .map(|(l, r)| (l, r["value"][1].as_str().unwrap_or_default().to_string()))
        .collect()
}

/// One native histogram of an instant query's answer: count, sum and the
/// buckets as `(boundary rule, lower, upper, count)`.
#[derive(Debug)]
struct Hist {
    count: f64,
    sum: f64,
    buckets: Vec<(u64, f64, f64, f64)>,
}

async fn histograms(base: &str, expr: &str) -> BTreeMap<BTreeMap<String, String>, Hist> {
    let num = |v: &serde_json::Value| -> f64 {
        v.as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("number string, got {v}"))
    };
    let mut out = BTreeMap::new();
    for (labels, r) in query(base, expr).await {
        let h = &r["histogram"][1];
        let buckets = h["buckets"]
            .as_array()
            .map(|b| {
                b.iter()
                    .map(|b| {
                        let rule = b[0].as_u64().expect("boundary rule");
                        (rule, num(&b[1]), num(&b[2]), num(&b[3]))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.insert(
            labels,
            Hist {
                count: num(&h["count"]),
                sum: num(&h["sum"]),
                buckets,
            },
        );
    }
    out
}

/// Checks a native histogram's buckets against the observations: each
/// value lies in exactly one bucket `(lower, upper]` (OTel and Prometheus
/// buckets are both upper-inclusive, so a value on a power of two tells an
/// index shift apart), the bucket counts add up to the observations, and
/// every bucket spans the factor `2^(2^-schema)` of the schema the
/// translation defines (the SDK's scale, at most 8).
fn check_buckets(h: &Hist, values: &[f64], sdk_scale: i32) {
    let schema = sdk_scale.min(8);
    let factor = 2f64.powf(2f64.powi(-schema));
    let total: f64 = h.buckets.iter().map(|b| b.3).sum();
    assert_eq!(total, values.len() as f64, "{h:?}");
    for &(rule, lower, upper, _) in &h.buckets {
        assert_eq!(rule, 0, "positive buckets are (lower, upper]: {h:?}");
        assert!(
            ((upper / lower) / factor - 1.0).abs() < 1e-9,
            "bucket ({lower}, {upper}] is not one of schema {schema}'s: {h:?}"
        );
    }
    for &v in values {
        let holding: Vec<_> = h.buckets.iter().filter(|b| b.1 < v && v <= b.2).collect();
        assert_eq!(holding.len(), 1, "value {v} in {holding:?} of {h:?}");
    }
    for b in &h.buckets {
        let inside = values.iter().filter(|&&v| b.1 < v && v <= b.2).count();
        assert_eq!(inside as f64, b.3, "bucket {b:?} of {h:?}");
    }
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    let common = [
        ("job", "shop/checkout"),
        ("instance", "pod-1"),
        ("deployment_environment", "test"),
    ];
    common
        .iter()
        .chain(pairs)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_metrics_are_stored_as_prometheus_translates_them() {
    if !sdk_present() {
        return;
    }
    let k = start(
        true,
        "otlp:\n  promote_resource_attributes: [deployment.environment]\n",
    )
    .await;
    let (result, stderr) = push(&k.base, "main").await;
    let mut lines = result.lines();
    assert_eq!(lines.next(), Some("SUCCESS"), "{result}\n{stderr}");
    let mut scales = BTreeMap::new();
    for l in lines {
        let parts: Vec<&str> = l.split(' ').collect();
        assert_eq!(parts.len(), 3, "{l}");
        assert_eq!(parts[0], "scale", "{l}");
        scales.insert(
            parts[1].to_string(),
            parts[2].parse::<i32>().expect("scale"),
        );
    }

    let got = series(&k.base, "test_requests_total").await;
    let want: BTreeMap<_, _> = [
        (
            labels(&[("__name__", "test_requests_total"), ("http_method", "GET")]),
            "7".to_string(),
        ),
        (
            labels(&[("__name__", "test_requests_total"), ("http_method", "POST")]),
            "1".to_string(),
        ),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);

    let got = series(&k.base, "test_temperature_celsius").await;
    let want: BTreeMap<_, _> = [(
        labels(&[("__name__", "test_temperature_celsius"), ("room", "a")]),
        "21.5".to_string(),
    )]
    .into_iter()
    .collect();
    assert_eq!(got, want);

    let h = |name: &str, extra: &[(&str, &str)], v: &str| {
        let mut l = labels(&[("__name__", name), ("route", "/pay")]);
        for (a, b) in extra {
            l.insert(a.to_string(), b.to_string());
        }
        (l, v.to_string())
    };
    let got = series(
        &k.base,
        r#"{__name__=~"test_latency_milliseconds_(sum|count)"}"#,
    )
    .await;
    let want: BTreeMap<_, _> = [
        h("test_latency_milliseconds_sum", &[], "333"),
        h("test_latency_milliseconds_count", &[], "3"),
    ]
    .into_iter()
    .collect();
    assert_eq!(got, want);
    // The SDK's default boundaries: 0, 5, 10, 25, 50, 75, 100, 250, 500,
    // 750, 1000, 2500, 5000, 7500, 10000.
    let got = series(&k.base, "test_latency_milliseconds_bucket").await;
    let mut want = BTreeMap::new();
    for (le, v) in [
        ("0", "0"),
        ("5", "1"),
        ("10", "1"),
        ("25", "1"),
        ("50", "2"),
        ("75", "2"),
        ("100", "2"),
        ("250", "2"),
        ("500", "3"),
        ("750", "3"),
        ("1000", "3"),
        ("2500", "3"),
        ("5000", "3"),
        ("7500", "3"),
        ("10000", "3"),
        ("+Inf", "3"),
    ] {
        let (l, v) = h("test_latency_milliseconds_bucket", &[("le", le)], v);
        want.insert(l, v);
    }
    assert_eq!(got, want);
    // histogram_quantile works over the translated buckets.
    let got = series(
        &k.base,
        "histogram_quantile(0.5, test_latency_milliseconds_bucket)",
    )
    .await;
    assert_eq!(got.values().collect::<Vec<_>>(), vec!["37.5"]);

    // target_info: the resource's other attributes (promoted ones too),
    // job and instance; the SDK adds telemetry.sdk.*.
    let got = series(&k.base, "target_info").await;
    assert_eq!(got.len(), 1, "{got:?}");
    let (l, v) = got.iter().next().expect("one");
    assert_eq!(v, "1");
    assert_eq!(l.get("job").map(String::as_str), Some("shop/checkout"));
    assert_eq!(l.get("instance").map(String::as_str), Some("pod-1"));
    assert_eq!(
        l.get("deployment_environment").map(String::as_str),
        Some("test")
    );
    assert_eq!(
        l.get("telemetry_sdk_language").map(String::as_str),
        Some("python")
    );
    assert!(!l.contains_key("service_name"), "{l:?}");

    // Exponential histograms are native histograms named with the unit
    // suffix, no _bucket/_sum/_count series.
    let got = histograms(&k.base, "test_size_bytes").await;
    assert_eq!(got.len(), 1, "{got:?}");
    let (l, h) = got.iter().next().expect("one");
    assert_eq!(l, &labels(&[("__name__", "test_size_bytes")]));
    assert_eq!((h.count, h.sum), (4.0, 1007.0));
    // 1000 needs 81 buckets at scale 3, within the SDK's 160.
    assert_eq!(scales.get("test.size"), Some(&3), "{scales:?}");
    check_buckets(h, &[1.0, 2.0, 4.0, 1000.0], 3);
    // The SDK's finest scale, 20, is reduced to Prometheus' finest, 8: the
    // two close values share one bucket.
    let got = histograms(&k.base, "test_fine_seconds").await;
    let (_, h) = got.iter().next().expect("one");
    assert_eq!(scales.get("test.fine"), Some(&20), "{scales:?}");
    assert_eq!(h.count, 2.0);
    assert!((h.sum - 3.0001).abs() < 1e-9, "{h:?}");
    assert_eq!(h.buckets.len(), 1, "{h:?}");
    check_buckets(h, &[1.5, 1.5001], 20);
    // The PromQL functions read the stored histograms.
    let got = series(&k.base, "histogram_count(test_size_bytes)").await;
    assert_eq!(got.values().collect::<Vec<_>>(), vec!["4"]);
    let got = series(&k.base, "histogram_sum(test_size_bytes)").await;
    assert_eq!(got.values().collect::<Vec<_>>(), vec!["1007"]);
    let got = series(&k.base, r#"{__name__=~"test_size_bytes_.*"}"#).await;
    assert!(got.is_empty(), "{got:?}");

    // Delta temporality: Prometheus' message.
    let (out, stderr) = push(&k.base, "delta").await;
    assert_eq!(
        out,
        "FAILURE\n400\ninvalid temporality and type combination for metric \"test.requests\"; stored 1 samples of the request",
        "{stderr}"
    );
    k.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_is_off_without_the_flag_and_takes_json() {
    let k = start(false, "").await;
    let client = reqwest::Client::new();
    let url = format!("{}/api/v1/otlp/v1/metrics", k.base);
    let r = client
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(Vec::<u8>::new())
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 404);
    let text = r.text().await.expect("body");
    assert_eq!(
        text,
        "otlp write receiver needs to be enabled with --web.enable-otlp-receiver\n"
    );
    let r = client.get(&url).send().await.expect("GET");
    assert_eq!(r.status(), 405);
    k.app.stop().await;

    let k = start(true, "").await;
    let url = format!("{}/api/v1/otlp/v1/metrics", k.base);
    // OTLP/JSON: a counter and an exponential histogram.
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_nanos()
        .to_string();
    let body = format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"js"}}}}]}},
          "scopeMetrics":[{{"scope":{{"name":"x"}},"metrics":[
            {{"name":"json.requests","unit":"1","sum":{{"aggregationTemporality":2,"isMonotonic":true,
              "dataPoints":[{{"asInt":"5","timeUnixNano":"{now_ns}","attributes":[{{"key":"code","value":{{"intValue":"200"}}}}]}}]}}}},
            {{"name":"json.size","unit":"By","exponentialHistogram":{{"aggregationTemporality":2,
              "dataPoints":[{{"timeUnixNano":"{now_ns}","count":"3","sum":6,"scale":0,"zeroCount":"1",
                "positive":{{"offset":0,"bucketCounts":["1","1"]}}}}]}}}}]}}]}}]}}"#
    );
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.expect("body"), "{}");
    let got = series(&k.base, r#"json_requests_total{code="200",job="js"}"#).await;
    assert_eq!(got.values().collect::<Vec<_>>(), vec!["5"]);
    // Buckets (1, 2] and (2, 4]: OTel's 0 and 1 at scale 0.
    let got = histograms(&k.base, "json_size_bytes").await;
    let (_, h) = got.iter().next().expect("one histogram");
    assert_eq!((h.count, h.sum), (3.0, 6.0));
    assert_eq!(h.buckets.len(), 3, "{h:?}");
    // The zero bucket, under Prometheus' threshold for translated histograms.
    assert!(h.buckets.contains(&(3, -1e-128, 1e-128, 1.0)), "{h:?}");
    assert!(h.buckets.contains(&(0, 1.0, 2.0, 1.0)), "{h:?}");
    assert!(h.buckets.contains(&(0, 2.0, 4.0, 1.0)), "{h:?}");
    // Bad JSON: 400 naming the offset and the field.
    let r = client
        .post(&url)
        .header("content-type", "application/json")
        .body(r#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":7}]}]}]}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 400);
    let text = r.text().await.expect("body");
    assert!(
        text.starts_with("json: byte ")
            && text.contains(": resourceMetrics[0].scopeMetrics[0].metrics[0].name: invalid type"),
        "{text}"
    );
    // An empty protobuf request is a valid, empty export.
    let r = client
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(Vec::<u8>::new())
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 200);
    // A malformed body names the offset and field.
    let r = client
        .post(&url)
        .header("content-type", "application/x-protobuf")
        .body(vec![0x0a, 0x05, 0x12])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 400);
    let text = r.text().await.expect("body");
    assert!(text.starts_with("protobuf: byte "), "{text}");
    let r = client
        .post(&url)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 415);
    k.app.stop().await;
}
