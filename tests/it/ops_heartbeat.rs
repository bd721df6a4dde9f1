//! The heartbeat against a mock command center on 127.0.0.1: the fields and
//! the auth it sends, the ACK it records, and the retry schedule when the
//! command center fails.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Mock {
    seen: Mutex<Vec<(Instant, HeaderMap, serde_json::Value)>>,
    fail: bool,
}

async fn heartbeat(
    State(m): State<Arc<Mock>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, String) {
    let v = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
    let n = {
        let mut s = m.seen.lock();
        s.push((Instant::now(), headers, v));
        s.len()
    };
    if m.fail {
        (StatusCode::SERVICE_UNAVAILABLE, "down".into())
    } else {
        (StatusCode::OK, format!(r#"{{"correlation_id":"cc-{n}"}}"#))
    }
}

async fn mock(fail: bool) -> (Arc<Mock>, String) {
    let m = Arc::new(Mock {
        fail,
        ..Default::default()
    });
    let app = Router::new()
        .route("/api/v1/heartbeat", post(heartbeat))
        .with_state(m.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (m, url)
}

async fn start(cc: &str) -> (klaxon::app::Running, String, tempfile::TempDir) {
    crate::common::Klaxon::start(&format!("command_center:\n{cc}"))
        .await
        .parts()
}

async fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn text(url: String) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_carry_fields_auth_and_record_the_ack() {
    let (m, url) = mock(false).await;
    let (app, base, _d) = start(&format!(
        "  base_url: {url}\n  api_key: key-123\n  service_id: svc-a\n  region: eu-1\n  interval: 300ms\n"
    ))
    .await;
    wait_for("two heartbeats", || m.seen.lock().len() >= 2).await;
    let seen = m.seen.lock().clone();
    for (_, h, body) in &seen {
        assert_eq!(h["authorization"], "Bearer key-123");
        assert_eq!(h["content-type"], "application/json");
        let rid = h["x-request-id"].to_str().unwrap();
        assert!(uuid::Uuid::parse_str(rid).is_ok(), "{rid}");
        assert_eq!(body["service_id"], "svc-a");
        assert_eq!(body["region"], "eu-1");
        assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
        // No targets, no rules, store writable: healthy, and it says why.
        assert_eq!(body["status"], "healthy", "{body}");
        assert_eq!(body["reason"], "all checks passed");
        let ts = body["timestamp"].as_str().unwrap();
        assert!(ts.ends_with('Z') && ts.len() == 24, "{ts}");
        let ms = klaxon::model::time::parse_time(ts).unwrap();
        assert!((klaxon::model::now_millis() - ms).abs() < 60_000);
        assert!(body["uptime_seconds"].is_u64());
        for k in [
            "p95_latency_ms",
            "error_rate",
            "cpu_usage_percent",
            "memory_usage_percent",
            "active_alerts",
            "firing_alerts",
            "targets_up",
            "targets_total",
            "notification_queue",
        ] {
            assert!(body["metrics"][k].is_number(), "metrics.{k} in {body}");
        }
        assert!(body["metrics"]["memory_usage_percent"].as_f64().unwrap() > 0.0);
    }
    // Distinct request ids per beat.
    assert_ne!(seen[0].1["x-request-id"], seen[1].1["x-request-id"]);
    // The ACK shows in /meta and the metric.
    let mut meta = serde_json::Value::Null;
    let deadline = Instant::now() + Duration::from_secs(10);
    while meta["heartbeat"]["last_ack_correlation_id"].is_null() {
        assert!(Instant::now() < deadline);
        meta = serde_json::from_str(&text(format!("{base}/meta")).await).unwrap();
    }
    assert_eq!(meta["heartbeat"]["enabled"], true);
    assert!(meta["heartbeat"]["last_ack_correlation_id"]
        .as_str()
        .unwrap()
        .starts_with("cc-"));
    assert!(meta["features"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("heartbeat")));
    let metrics = text(format!("{base}/metrics")).await;
    let line = metrics
        .lines()
        .find(|l| l.starts_with("klaxon_heartbeat_last_ack_timestamp_seconds "))
        .unwrap();
    let v: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(
        (v - klaxon::model::now_millis() as f64 / 1000.0).abs() < 60.0,
        "{line}"
    );
    assert!(metrics.contains("klaxon_heartbeat_failures_total 0\n"));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_command_center_gets_the_backoff_schedule() {
    let (m, url) = mock(true).await;
    let (app, base, _d) = start(&format!(
        "  base_url: {url}\n  api_key: k\n  interval: 1h\n  retry_backoff: [100ms, 200ms, 400ms]\n"
    ))
    .await;
    // One attempt plus three retries, then the failure is counted.
    wait_for("four attempts", || m.seen.lock().len() >= 4).await;
    let mut failures = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !failures.contains("klaxon_heartbeat_failures_total 1\n") {
        assert!(Instant::now() < deadline, "{failures}");
        failures = text(format!("{base}/metrics")).await;
    }
    let times: Vec<Instant> = m.seen.lock().iter().map(|s| s.0).collect();
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    // Each retry waits at least its step of the schedule (a loaded machine
    // can only make the gaps longer, so there is no upper bound here).
    assert_eq!(gaps.len(), 3, "gaps {gaps:?}");
    for (g, want) in gaps.iter().zip([100u64, 200, 400]) {
        assert!(*g >= Duration::from_millis(want), "gaps {gaps:?}");
    }
    // With an hour to the next beat, nothing more is sent.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(m.seen.lock().len(), 4);
    let meta: serde_json::Value =
        serde_json::from_str(&text(format!("{base}/meta")).await).unwrap();
    assert_eq!(meta["heartbeat"]["consecutive_failed_beats"], 1);
    assert!(meta["heartbeat"]["last_ack"].is_null());
    app.stop().await;
}
