//! The operations event stream carries what happens in the other stages:
//! alerts starting to fire and resolving, notification attempts, targets
//! going down and up (persisted, so the audit listing shows them).

use std::time::{Duration, Instant};

async fn events(base: &str, kind: &str) -> Vec<serde_json::Value> {
    let body = reqwest::get(format!("{base}/api/v1/events/audit?kind={kind}&limit=1000"))
        .await
        .expect("GET audit")
        .bytes()
        .await
        .expect("body");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    v["data"]["events"].as_array().cloned().unwrap_or_default()
}

async fn wait_for(base: &str, kind: &str, what: impl Fn(&[serde_json::Value]) -> bool) {
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let e = events(base, kind).await;
        if what(&e) {
            return;
        }
        assert!(Instant::now() < end, "no matching {kind} event: {e:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_notifications_and_targets_are_published() {
    // A receiver that answers 200, and a target port where nothing listens.
    let hook = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_port = hook.local_addr().unwrap().port();
    let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
    let server = tokio::spawn(async move {
        let _ = axum::serve(hook, app).await;
    });
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);

    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\nscrape_configs:\n- job_name: gone\n  static_configs:\n  - targets: ['127.0.0.1:{dead_port}']\nstorage:\n  path: {}\nnotify:\n  route:\n    receiver: hook\n    group_wait: 0s\n    group_interval: 1s\n  receivers:\n  - name: hook\n    webhook_configs:\n    - url: http://127.0.0.1:{hook_port}/hook\n",
        dir.path().display()
    );
    let cfg = klaxon::settings::load_str(&yaml, "k.yml").unwrap();
    let k = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", k.addr);

    let now = klaxon::model::now_millis();
    let post = |body: serde_json::Value| {
        let base = base.clone();
        async move {
            let r = reqwest::Client::new()
                .post(format!("{base}/api/v2/alerts"))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
    };
    let at = klaxon::model::time::rfc3339_millis;
    post(serde_json::json!([{"labels": {"alertname": "EvTest"}, "startsAt": at(now)}])).await;
    wait_for(&base, "alert", |e| {
        e.iter().any(|x| {
            x["data"]["status"] == "firing" && x["data"]["labels"]["alertname"] == "EvTest"
        })
    })
    .await;
    wait_for(&base, "notification", |e| {
        e.iter()
            .any(|x| x["data"]["result"] == "sent" && x["data"]["receiver"] == "hook")
    })
    .await;
    post(
        serde_json::json!([{"labels": {"alertname": "EvTest"}, "startsAt": at(now),
        "endsAt": at(klaxon::model::now_millis() - 1)}]),
    )
    .await;
    wait_for(&base, "alert", |e| {
        e.iter().any(|x| {
            x["data"]["status"] == "resolved" && x["data"]["labels"]["alertname"] == "EvTest"
        })
    })
    .await;
    wait_for(&base, "target", |e| {
        e.iter()
            .any(|x| x["data"]["job"] == "gone" && x["data"]["health"] == "down")
    })
    .await;
    // One state change, one event: later failed scrapes of the same target
    // are not news.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let downs = events(&base, "target").await.len();
    assert_eq!(downs, 1, "{:#?}", events(&base, "target").await);
    k.stop().await;
    server.abort();
}
