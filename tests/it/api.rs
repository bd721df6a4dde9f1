//! Prometheus' metadata API on loopback, checked with our own client and with
//! promtool (Prometheus 2.42's CLI) as a real peer.

use crate::common;

use axum::routing::get;
use axum::Router;
use std::process::Command;
use std::time::Duration;

async fn target() -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new().route(
        "/metrics",
        get(|| async {
            "# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\",path=\"/a\"} 5\nhttp_requests_total{code=\"500\",path=\"/a\"} 1\n"
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (
        addr,
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        }),
    )
}

async fn json(url: &str) -> (u16, serde_json::Value) {
    let r = reqwest::get(url).await.unwrap();
    let code = r.status().as_u16();
    (
        code,
        serde_json::from_slice(&r.bytes().await.unwrap()).unwrap(),
    )
}

fn promtool() -> Option<&'static str> {
    let p = "/usr/bin/promtool";
    if std::path::Path::new(p).exists() {
        return Some(p);
    }
    assert!(
        !common::is_ci(),
        "promtool missing under CI: .ci/run must install it (../shared/tools/install-peers.sh)"
    );
    eprintln!("note: promtool not installed; promtool checks not run");
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_endpoints_and_promtool() {
    let (addr, server) = target().await;
    let yaml = format!(
        "scrape_configs:\n  - job_name: web\n    scrape_interval: 1s\n    basic_auth:\n      username: u\n      password: s3cr3t\n    static_configs:\n      - targets: ['{addr}']\n"
    );
    let mut cfg = klaxon::settings::load_str(&yaml, "api.yml").unwrap();
    // Its own storage: the WAL there is replayed by the next start.
    let store = tempfile::tempdir().unwrap();
    cfg.storage.path = store.path().to_path_buf();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr);
    tokio::time::sleep(Duration::from_millis(1600)).await;

    let (code, v) = json(&format!("{base}/api/v1/series?match[]=http_requests_total")).await;
    assert_eq!(code, 200);
    let series = v["data"].as_array().unwrap();
    assert_eq!(series.len(), 2, "{v}");
    assert_eq!(series[0]["__name__"], "http_requests_total");
    assert_eq!(series[0]["job"], "web");
    assert_eq!(series[0]["code"], "200");

    let (code, v) = json(&format!("{base}/api/v1/series")).await;
    assert_eq!(code, 400);
    assert_eq!(v["errorType"], "bad_data");
    assert_eq!(v["error"], "no match[] parameter provided");

    let (code, v) = json(&format!("{base}/api/v1/series?match[]=up{{")).await;
    assert_eq!(code, 400);
    assert!(v["error"].as_str().unwrap().contains("parse error"), "{v}");

    let (_, v) = json(&format!("{base}/api/v1/labels")).await;
    let names: Vec<&str> = v["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap())
        .collect();
    for n in ["__name__", "code", "instance", "job", "path"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let (_, v) = json(&format!("{base}/api/v1/label/code/values")).await;
    assert_eq!(v["data"], serde_json::json!(["200", "500"]));
    let (_, v) = json(&format!(
        "{base}/api/v1/label/__name__/values?match[]={{job=\"web\"}}"
    ))
    .await;
    let metric_names = v["data"].as_array().unwrap();
    assert!(metric_names.contains(&serde_json::json!("up")), "{v}");
    assert!(metric_names.contains(&serde_json::json!("http_requests_total")));

    let (_, v) = json(&format!("{base}/api/v1/metadata")).await;
    assert_eq!(
        v["data"]["http_requests_total"],
        serde_json::json!([{"type": "counter", "help": "", "unit": ""}]),
        "{v}"
    );
    let (_, v) = json(&format!("{base}/api/v1/metadata?metric=nope")).await;
    assert_eq!(v["data"], serde_json::json!({}));

    // The host exporter under node_exporter's names.
    let host = reqwest::get(format!("{base}/metrics/host"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        host.contains("# TYPE node_cpu_seconds_total counter\n"),
        "{host}"
    );
    assert!(host.contains("node_memory_MemTotal_bytes "), "{host}");

    let (_, v) = json(&format!(
        "{base}/api/v1/format_query?query=sum(rate(x[5m]))by(job)"
    ))
    .await;
    assert_eq!(v["data"], "sum by (job) (rate(x[5m]))");

    let (_, v) = json(&format!("{base}/api/v1/status/config")).await;
    let yaml_out = v["data"]["yaml"].as_str().unwrap();
    assert!(
        !yaml_out.contains("s3cr3t") && yaml_out.contains("password: <secret>"),
        "{yaml_out}"
    );
    let (_, v) = json(&format!("{base}/api/v1/status/buildinfo")).await;
    assert_eq!(v["data"]["version"], env!("CARGO_PKG_VERSION"));
    let (_, v) = json(&format!("{base}/api/v1/status/tsdb")).await;
    assert!(
        v["data"]["headStats"]["numSeries"].as_u64().unwrap() >= 7,
        "{v}"
    );
    let by_name = &v["data"]["seriesCountByMetricName"];
    assert!(
        by_name
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "http_requests_total" && e["value"] == 2),
        "{v}"
    );
    let (code, v) = json(&format!("{base}/api/v1/status/runtimeinfo")).await;
    assert_eq!(code, 200);
    assert_eq!(v["data"]["storageRetention"], "15d");

    if let Some(pt) = promtool() {
        let out = Command::new(pt)
            .args(["query", "series", &base, "--match=http_requests_total"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(text.lines().count(), 2, "{text}");
        assert!(text.contains("code=\"500\""), "{text}");
        let out = Command::new(pt)
            .args(["query", "labels", &base, "code"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .collect::<Vec<_>>(),
            ["200", "500"]
        );
    }
    app.stop().await;
    server.abort();
}
