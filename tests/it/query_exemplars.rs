//! `/api/v1/query_exemplars` side by side with a real Prometheus 2.42
//! started with `--enable-feature=exemplar-storage`: both scrape one
//! OpenMetrics target (a counter and a histogram whose buckets carry
//! exemplars with explicit timestamps, and a counter whose exemplar has
//! none). For a set of queries, time ranges and bad requests the two must
//! answer the same status and the same bytes (errors: the same JSON, klaxon
//! adds its `request_id`): the shape
//! (`seriesLabels`, `exemplars` of `labels`, `value` as a string and
//! `timestamp` as seconds), the order, the number formats, the errors, and
//! 204 without a body for a query without selectors.

use crate::common;
use common::{free_port, Klaxon};

use klaxon::model::time::rfc3339_millis;
use std::time::{Duration, Instant};

const OM_CT: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The target's exposition; exemplar times (seconds) are `t` plus a
/// little, one with a fraction that ends in zero (`.100`).
fn exposition(t: i64) -> String {
    format!(
        "# TYPE om_requests counter\n\
         om_requests_total{{path=\"/a\"}} 12 # {{trace_id=\"a1\",span_id=\"s1\"}} 1e-07 {t}.100\n\
         om_requests_total{{path=\"/b\"}} 3 # {{trace_id=\"b1\"}} 2.5 {t}\n\
         # TYPE om_latency_seconds histogram\n\
         om_latency_seconds_bucket{{le=\"0.1\"}} 4 # {{trace_id=\"l1\"}} 0.05 {t}.005\n\
         om_latency_seconds_bucket{{le=\"1\"}} 9 # {{trace_id=\"l2\"}} 0.75 {t}.25\n\
         om_latency_seconds_bucket{{le=\"+Inf\"}} 10 # {{}} 12.5 {t}.999\n\
         om_latency_seconds_sum 20.5\n\
         om_latency_seconds_count 10\n\
         # TYPE om_untimed counter\n\
         om_untimed_total 1 # {{trace_id=\"u1\"}} 1\n\
         # EOF\n"
    )
}

async fn serve(t: i64) -> (String, tokio::task::JoinHandle<()>) {
    use axum::routing::get;
    let body = exposition(t);
    let app = axum::Router::new().route(
        "/metrics",
        get(move || {
            let body = body.clone();
            async move { ([(axum::http::header::CONTENT_TYPE, OM_CT)], body) }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind target");
    let addr = l.local_addr().expect("target addr").to_string();
    let h = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (addr, h)
}

/// Status, content type and body of `GET base + path` (or a form POST of
/// the query string when `post`).
async fn call(base: &str, path_and_query: &str, post: bool) -> (u16, String, String) {
    let c = reqwest::Client::new();
    let r = if post {
        let (path, form) = path_and_query
            .split_once('?')
            .unwrap_or((path_and_query, ""));
        c.post(format!("{base}{path}"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.to_string())
            .send()
            .await
    } else {
        c.get(format!("{base}{path_and_query}")).send().await
    }
    .unwrap_or_else(|e| panic!("{base}{path_and_query}: {e}"));
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, ct, r.text().await.unwrap_or_default())
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_exemplars_answers_like_prometheus() {
    let Some(prometheus) = common::peer("prometheus") else {
        return;
    };
    let t = klaxon::model::now_millis() / 1000 - 30;
    let (addr, server) = serve(t).await;
    let job = format!(
        "scrape_configs:\n  - job_name: om\n    scrape_interval: 1s\n    static_configs: [{{targets: ['{addr}']}}]\n"
    );
    let dir = common::tempdir();
    std::fs::write(dir.path().join("prometheus.yml"), &job).expect("write prometheus.yml");
    let prom_port = free_port();
    let _prom = common::start_prometheus(
        &prometheus,
        dir.path(),
        prom_port,
        &["--enable-feature=exemplar-storage"],
    )
    .await;
    let prom = format!("http://127.0.0.1:{prom_port}");
    let kx = Klaxon::start(&job).await;

    // Both have scraped once each has the six exemplars.
    let all = format!("/api/v1/query_exemplars?query={}", enc("{job=\"om\"}"));
    let count = |body: &str| body.matches("\"timestamp\"").count();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, _, k) = call(&kx.base, &all, false).await;
        let (_, _, p) = call(&prom, &all, false).await;
        if count(&k) >= 6 && count(&p) >= 6 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no exemplars in time:\nklaxon {k}\nprometheus {p}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The exemplar without a timestamp takes its scrape's time: present in
    // both, at a time of its own scrape (so not compared byte for byte).
    let untimed = "/api/v1/query_exemplars?query=om_untimed_total";
    for base in [&kx.base, &prom] {
        let (code, _, body) = call(base, untimed, false).await;
        assert_eq!(code, 200, "{base}: {body}");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let ts = v["data"][0]["exemplars"][0]["timestamp"]
            .as_f64()
            .unwrap_or(0.0);
        assert!(ts > t as f64, "{base}: {body}");
    }

    let (s, e) = (t - 1, t + 1);
    let queries: Vec<String> = vec![
        format!("query={}", enc("om_requests_total")),
        format!("query={}", enc("om_latency_seconds_bucket")),
        format!("query={}", enc("{__name__=~\"om_(requests_total|latency_seconds_bucket)\"}")),
        // Several selectors, a function, an aggregation, a binary operator.
        format!(
            "query={}",
            enc("rate(om_requests_total{path=\"/a\"}[1m]) + on() group_left sum(om_latency_seconds_bucket{le=\"1\"})")
        ),
        // A range that cuts: [t, t.100] holds three of them.
        format!("query={}&start={t}&end={t}.100", enc("{job=\"om\",__name__!=\"om_untimed_total\"}")),
        format!("query={}&start={s}&end={e}", enc("om_requests_total")),
        format!(
            "query={}&start={}&end={}",
            enc("om_latency_seconds_bucket"),
            enc(&rfc3339_millis(s * 1000)),
            enc(&rfc3339_millis(e * 1000))
        ),
        // Before any exemplar: none.
        format!("query={}&start=0&end={s}", enc("om_requests_total")),
        format!("query={}", enc("no_such_metric")),
        // No selector at all: 204, no body.
        format!("query={}", enc("1 + 1")),
        // Errors.
        String::new(),
        format!("query={}", enc("rate(om_requests_total[1m]")),
        format!("query={}&start=yesterday", enc("om_requests_total")),
        format!("query={}&end=x", enc("om_requests_total")),
        format!("query={}&start={e}&end={s}", enc("om_requests_total")),
    ];
    let mut same = 0;
    for q in &queries {
        for post in [false, true] {
            let path = format!("/api/v1/query_exemplars?{q}");
            let k = call(&kx.base, &path, post).await;
            let p = call(&prom, &path, post).await;
            let method = if post { "POST" } else { "GET" };
            if k.0 == 400 {
                // klaxon's error envelope adds its `request_id`.
                let mut kj: serde_json::Value = serde_json::from_str(&k.2).expect("JSON error");
                kj.as_object_mut().map(|o| o.remove("request_id"));
                let pj: serde_json::Value = serde_json::from_str(&p.2).expect("JSON error");
                assert_eq!(
                    (k.0, kj),
                    (p.0, pj),
                    "{method} {path}: left klaxon, right prometheus"
                );
            } else {
                assert_eq!(
                    (k.0, &k.2),
                    (p.0, &p.2),
                    "{method} {path}: left klaxon, right prometheus"
                );
            }
            assert!(
                k.0 == 204 || k.1.starts_with("application/json"),
                "{path}: {}",
                k.1
            );
            same += 1;
        }
    }
    eprintln!("{same} query_exemplars answers equal to Prometheus 2.42's");
    kx.app.stop().await;
    server.abort();
}
