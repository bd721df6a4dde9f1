//! `metric_name_validation_scheme` and `metric_name_escaping_scheme` at
//! scrape time. A local test server exposes a UTF-8 metric and label name
//! in the Prometheus text format, OpenMetrics and protobuf; klaxon scrapes
//! each under both schemes.
//!
//! Under utf8 (the default) the series is stored and the quoted selector
//! finds it; under legacy the whole scrape fails with Prometheus 3's error
//! in the target's `lastError`, `up` is 0 and nothing of the payload is
//! stored, also when the invalid name comes from `metric_relabel_configs`.
//! The `Accept` header carries `escaping=allow-utf-8` or `escaping=underscores`.
//!
//! `legacy_errors_match_prometheus_2_42` runs two legacy cases beside
//! Prometheus 2.42 (legacy-only, with the same scrape-loop check): a name
//! written by metric relabeling gives the same error text; a UTF-8 label
//! name from protobuf fails both, 2.42 already in its parser.
//! `remote_write_in_ignores_the_scheme`: the receiver stores UTF-8 names
//! under a global legacy scheme, as Prometheus 3's.

use crate::common;
use common::{free_port, get_json, Klaxon};

use klaxon::scrape::parser::protobuf::{encode_delimited, Gauge, LabelPair, Metric, MetricFamily};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const PROTO_CT: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

fn gauge_family(name: &str, labels: &[(&str, &str)], v: f64) -> MetricFamily {
    MetricFamily {
        name: Some(name.into()),
        help: Some("h".into()),
        r#type: Some(1),
        metric: vec![Metric {
            label: labels
                .iter()
                .map(|(n, v)| LabelPair {
                    name: Some((*n).into()),
                    value: Some((*v).into()),
                })
                .collect(),
            gauge: Some(Gauge { value: Some(v) }),
            ..Metric::default()
        }],
        unit: None,
    }
}

/// Serves every path: the format comes from the path's first element
/// (`/text/..`, `/om/..`, `/proto/..`, `/plain/..`, `/proto_label/..`),
/// the rest names the job, whose `Accept` headers are recorded.
async fn serve() -> (
    String,
    Arc<Mutex<HashMap<String, String>>>,
    tokio::task::JoinHandle<()>,
) {
    let accepts: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let seen = accepts.clone();
    let proto = encode_delimited(&[
        gauge_family("my.metric", &[("my.label", "a")], 1.0),
        gauge_family("plain_metric", &[], 2.0),
    ]);
    let proto_label = encode_delimited(&[gauge_family("plain_metric", &[("my.label", "a")], 2.0)]);
    let app = axum::Router::new().fallback(
        move |uri: axum::http::Uri, h: axum::http::HeaderMap| {
            let seen = seen.clone();
            let proto = proto.clone();
            let proto_label = proto_label.clone();
            async move {
                let path = uri.path().to_string();
                let accept = h
                    .get("accept")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                seen.lock().unwrap().insert(path.clone(), accept);
                let (ct, body): (&str, Vec<u8>) = match path.split('/').nth(1) {
                    Some("text") => (
                        "text/plain; version=1.0.0; charset=utf-8",
                        b"{\"my.metric\",\"my.label\"=\"a\"} 1\nplain_metric 2\n".to_vec(),
                    ),
                    Some("om") => (
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        b"# TYPE \"my.metric\" gauge\n{\"my.metric\",\"my.label\"=\"a\"} 1\n# TYPE plain_metric gauge\nplain_metric 2\n# EOF\n".to_vec(),
                    ),
                    Some("proto") => (PROTO_CT, proto),
                    Some("proto_label") => (PROTO_CT, proto_label),
                    _ => (
                        "text/plain; version=0.0.4",
                        b"plain_metric 2\nother_metric 3\n".to_vec(),
                    ),
                };
                ([(axum::http::header::CONTENT_TYPE, ct)], body)
            }
        },
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (addr, accepts, h)
}

/// `job -> (health, lastError)` of the active targets.
async fn targets(base: &str) -> HashMap<String, (String, String)> {
    let st = get_json(&format!("{base}/api/v1/targets")).await;
    st["data"]["activeTargets"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|t| {
            (
                t["labels"]["job"].as_str().unwrap_or("").to_string(),
                (
                    t["health"].as_str().unwrap_or("").to_string(),
                    t["lastError"].as_str().unwrap_or("").to_string(),
                ),
            )
        })
        .collect()
}

/// The series an instant query answers, as Go's label strings.
async fn query(base: &str, q: &str) -> Vec<String> {
    let url =
        reqwest::Url::parse_with_params(&format!("{base}/api/v1/query"), &[("query", q)]).unwrap();
    let v = get_json(url.as_str()).await;
    assert_eq!(v["status"], "success", "{q}: {v}");
    let mut out: Vec<String> = v["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|r| {
            let m: std::collections::BTreeMap<String, String> =
                serde_json::from_value(r["metric"].clone()).unwrap();
            klaxon::model::Labels::from_pairs(m).go_string()
        })
        .collect();
    out.sort();
    out
}

fn job(name: &str, path: &str, addr: &str, extra: &str) -> String {
    format!(
        "  - job_name: {name}\n    scrape_interval: 500ms\n    scrape_timeout: 400ms\n    metrics_path: /{path}/{name}\n{extra}    static_configs: [{{targets: ['{addr}']}}]\n"
    )
}

/// Waits until every job in `jobs` has a health other than "unknown".
async fn scraped(base: &str, jobs: &[&str]) -> HashMap<String, (String, String)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let t = targets(base).await;
        if jobs
            .iter()
            .all(|j| t.get(*j).is_some_and(|(h, _)| h != "unknown"))
        {
            return t;
        }
        assert!(Instant::now() < deadline, "not scraped in time: {t:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn utf8_names_by_scheme_and_format() {
    let (addr, accepts, server) = serve().await;
    let legacy = "    metric_name_validation_scheme: legacy\n";
    let rename = "    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: plain_metric\n        target_label: __name__\n        replacement: renamed.metric\n";
    let protocols = |p: &str| format!("    scrape_protocols: [{p}]\n");
    let mut cfg = String::from("scrape_configs:\n");
    for (fmt, p) in [
        ("text", "PrometheusText1.0.0"),
        ("om", "OpenMetricsText1.0.0"),
        ("proto", "PrometheusProto"),
    ] {
        cfg.push_str(&job(&format!("{fmt}_utf8"), fmt, &addr, &protocols(p)));
        cfg.push_str(&job(
            &format!("{fmt}_legacy"),
            fmt,
            &addr,
            &format!("{}{legacy}", protocols(p)),
        ));
    }
    cfg.push_str(&job("relabel_utf8", "plain", &addr, rename));
    cfg.push_str(&job(
        "relabel_legacy",
        "plain",
        &addr,
        &format!("{legacy}{rename}"),
    ));
    let kx = Klaxon::start(&cfg).await;
    let jobs = [
        "text_utf8",
        "text_legacy",
        "om_utf8",
        "om_legacy",
        "proto_utf8",
        "proto_legacy",
        "relabel_utf8",
        "relabel_legacy",
    ];
    let t = scraped(&kx.base, &jobs).await;
    let inst = format!("instance=\"{addr}\"");
    for fmt in ["text", "om", "proto"] {
        let utf8 = format!("{fmt}_utf8");
        let leg = format!("{fmt}_legacy");
        assert_eq!(t[&utf8], ("up".to_string(), String::new()), "{utf8}");
        // The quoted selector finds the series the utf8 job stored.
        assert_eq!(
            query(&kx.base, &format!("{{\"my.metric\", job=\"{utf8}\"}}")).await,
            [format!(
                "{{__name__=\"my.metric\", {inst}, job=\"{utf8}\", \"my.label\"=\"a\"}}"
            )],
            "{utf8}"
        );
        assert_eq!(
            query(&kx.base, &format!("{{\"my.label\"=\"a\", job=\"{utf8}\"}}"))
                .await
                .len(),
            1
        );
        // Legacy: Prometheus 3's error, and nothing of the payload stored.
        assert_eq!(
            t[&leg],
            (
                "down".to_string(),
                format!(
                    "invalid metric name or label names: {{__name__=\"my.metric\", {inst}, job=\"{leg}\", \"my.label\"=\"a\"}}"
                )
            ),
            "{leg}"
        );
        assert!(query(
            &kx.base,
            &format!("{{job=\"{leg}\", __name__!=\"up\", __name__!~\"scrape_.*\"}}")
        )
        .await
        .is_empty());
        assert_eq!(
            query(&kx.base, &format!("up{{job=\"{leg}\"}} == 0"))
                .await
                .len(),
            1,
            "{leg}: up is 0"
        );
    }
    // A name metric relabeling writes is checked as a scraped one.
    assert_eq!(t["relabel_utf8"].0, "up");
    assert_eq!(
        query(&kx.base, "{\"renamed.metric\", job=\"relabel_utf8\"}").await,
        [format!(
            "{{__name__=\"renamed.metric\", {inst}, job=\"relabel_utf8\"}}"
        )]
    );
    assert_eq!(
        t["relabel_legacy"].1,
        format!(
            "invalid metric name or label names: {{__name__=\"renamed.metric\", {inst}, job=\"relabel_legacy\"}}"
        )
    );
    assert!(query(&kx.base, "other_metric{job=\"relabel_legacy\"}")
        .await
        .is_empty());
    // Label values of a UTF-8 label name, given escaped in the path.
    let v = get_json(&format!("{}/api/v1/label/U__my_2e_label/values", kx.base)).await;
    assert_eq!(v["data"], serde_json::json!(["a"]), "{v}");
    // The escaping scheme asked for: allow-utf-8 under utf8, underscores
    // (derived from legacy) under legacy; never on protobuf.
    let a = accepts.lock().unwrap().clone();
    assert_eq!(
        a["/text/text_utf8"],
        "text/plain;version=1.0.0;escaping=allow-utf-8;q=0.6,*/*;q=0.5"
    );
    assert_eq!(
        a["/om/om_legacy"],
        "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,*/*;q=0.5"
    );
    assert!(!a["/proto/proto_legacy"].contains("escaping"), "{a:#?}");
    kx.app.stop().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_errors_match_prometheus_2_42() {
    if !Path::new(PROMETHEUS).exists() {
        assert!(
            !common::is_ci(),
            "prometheus missing under CI (../shared/tools/install-peers.sh)"
        );
        eprintln!("SKIPPED: {PROMETHEUS} not installed");
        return;
    }
    let (addr, _accepts, server) = serve().await;
    let rename = "    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: plain_metric\n        target_label: __name__\n        replacement: renamed.metric\n";
    // Prometheus 2.42 knows no scheme settings: it is legacy throughout.
    let jobs = |legacy: &str| {
        [
            "scrape_configs:\n".to_string(),
            job("relabel", "plain", &addr, &format!("{legacy}{rename}")),
            job("proto_label", "proto_label", &addr, legacy),
        ]
        .concat()
    };
    let dir = common::tempdir();
    std::fs::write(dir.path().join("prometheus.yml"), jobs("")).unwrap();
    let port = free_port();
    let _prom = common::start_prometheus(
        Path::new(PROMETHEUS),
        dir.path(),
        port,
        &["--enable-feature=native-histograms"],
    )
    .await;
    let prom = format!("http://127.0.0.1:{port}");
    let kx = Klaxon::start(&jobs("    metric_name_validation_scheme: legacy\n")).await;
    let names = ["relabel", "proto_label"];
    let k = scraped(&kx.base, &names).await;
    let p = scraped(&prom, &names).await;
    // A metric name written by relabeling: the same text.
    assert_eq!(k["relabel"].0, "down");
    assert_eq!(k["relabel"], p["relabel"], "left klaxon, right prometheus");
    // A UTF-8 label name from protobuf: both fail the scrape. 2.42's
    // protobuf parser refuses the name itself; 3.x parses it and the
    // scrape loop's check refuses the series (klaxon writes 3.x's text).
    assert_eq!(
        p["proto_label"],
        (
            "down".to_string(),
            "invalid label name: my.label".to_string()
        )
    );
    assert_eq!(
        k["proto_label"],
        (
            "down".to_string(),
            format!(
                "invalid metric name or label names: {{__name__=\"plain_metric\", instance=\"{addr}\", job=\"proto_label\", \"my.label\"=\"a\"}}"
            )
        )
    );
    kx.app.stop().await;
    server.abort();
}

/// Prometheus 3's remote write receiver validates names as utf8 whatever
/// `metric_name_validation_scheme` says: under a global legacy scheme a
/// series with UTF-8 names is stored and found with the quoted selector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_in_ignores_the_scheme() {
    use klaxon::remote::proto::{encode_snappy, Sample, TimeSeries, WriteRequest};
    let dir = common::tempdir();
    let text = format!(
        "storage:\n  path: {}\nglobal:\n  metric_name_validation_scheme: legacy\n",
        dir.path().display()
    );
    let cfg = klaxon::settings::load_str(&text, "klaxon.yml").unwrap();
    let app = klaxon::app::start(
        cfg,
        klaxon::app::StartOptions {
            enable_remote_write_receiver: true,
            ..klaxon::app::StartOptions::on("127.0.0.1:0")
        },
    )
    .await
    .unwrap();
    let base = format!("http://{}", app.addr);
    let now = klaxon::model::now_millis();
    let body = encode_snappy(&WriteRequest {
        timeseries: vec![TimeSeries {
            labels: vec![
                klaxon::model::Label::new("__name__", "rw.metric"),
                klaxon::model::Label::new("rw.label", "x"),
            ],
            samples: vec![Sample {
                value: 4.0,
                timestamp: now,
            }],
            ..TimeSeries::default()
        }],
        metadata: Vec::new(),
    });
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    assert_eq!(
        query(&base, "{\"rw.metric\", \"rw.label\"=\"x\"}").await,
        [r#"{__name__="rw.metric", "rw.label"="x"}"#]
    );
    app.stop().await;
}
