//! Alert state survives a restart: a firing alert is firing again right
//! after the first evaluation of the new process, with its old `activeAt`,
//! and is not handed to the dispatcher again as a new firing alert.

use klaxon::notify::{Alert, AlertSink};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

#[derive(Default)]
struct Recorder(Mutex<Vec<Alert>>);

impl AlertSink for Recorder {
    fn send(&self, alerts: Vec<Alert>) {
        self.0.lock().extend(alerts);
    }
}

const RULES: &str = r#"groups:
  - name: g
    interval: 1s
    rules:
      - alert: AlwaysOn
        expr: vector(1)
        for: 3s
        labels:
          severity: page
        annotations:
          summary: "value {{ $value }}"
"#;

async fn json(url: &str) -> serde_json::Value {
    let body = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

async fn start(cfg_path: &std::path::Path, sink: Arc<Recorder>) -> klaxon::app::Running {
    let cfg = klaxon::settings::load_file(cfg_path).unwrap();
    let opts = klaxon::app::StartOptions {
        sink: Some(sink),
        ..klaxon::app::StartOptions::on("127.0.0.1:0")
    };
    klaxon::app::start(cfg, opts).await.unwrap()
}

/// The alert of the only rule, and the group's lastEvaluation.
async fn alert_and_last_eval(base: &str) -> (Option<serde_json::Value>, String) {
    let r = json(&format!("{base}/api/v1/rules")).await;
    let g = &r["data"]["groups"][0];
    (
        g["rules"][0]["alerts"].get(0).cloned(),
        g["lastEvaluation"].as_str().unwrap_or_default().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_firing_alert_is_firing_after_a_restart_without_a_resend() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.rules"), RULES).unwrap();
    let cfg_path = dir.path().join("k.yml");
    let data = dir.path().join("data");
    std::fs::write(
        &cfg_path,
        format!(
            "rule_files: ['*.rules']\nstorage:\n  path: {}\n",
            data.display()
        ),
    )
    .unwrap();

    // First life: wait until the alert fires and was sent.
    let sink = Arc::new(Recorder::default());
    let app = start(&cfg_path, sink.clone()).await;
    let base = format!("http://{}", app.addr);
    let mut first = None;
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if let (Some(a), _) = alert_and_last_eval(&base).await {
            if a["state"] == "firing" && !sink.0.lock().is_empty() {
                first = Some(a);
                break;
            }
        }
    }
    let first = first.expect("alert never fired in the first run");
    let sent = sink.0.lock().clone();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(sent[0].labels.get("alertname"), Some("AlwaysOn"));
    app.stop().await;
    assert!(data.join("klaxon.db").exists());

    // Second life: right after the first evaluation it is firing, with the
    // same activeAt, and it is handed to the dispatcher again with the same
    // startsAt (as Prometheus re-sends after a restart); the dispatcher's
    // persisted notification log keeps the receiver from a second page
    // (tests/it/notify_api_v2.rs restarted_klaxon_does_not_repage).
    let sink2 = Arc::new(Recorder::default());
    let app = start(&cfg_path, sink2.clone()).await;
    let base = format!("http://{}", app.addr);
    let mut after = None;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (a, last) = alert_and_last_eval(&base).await;
        if !last.starts_with("0001-") {
            after = a;
            break;
        }
    }
    let after = after.expect("no alert after the first evaluation of the restart");
    assert_eq!(after["state"], "firing", "{after:#}");
    assert_eq!(after["activeAt"], first["activeAt"]);
    assert_eq!(after["labels"]["severity"], "page");
    let a = json(&format!("{base}/api/v1/alerts")).await;
    assert_eq!(a["data"]["alerts"][0]["state"], "firing", "{a:#}");
    assert_eq!(a["data"]["alerts"][0]["activeAt"], first["activeAt"]);
    let resent = sink2.0.lock().clone();
    assert_eq!(resent.len(), 1, "{resent:?}");
    assert_eq!(resent[0].starts_at, sent[0].starts_at);
    assert_eq!(resent[0].labels, sent[0].labels);
    app.stop().await;
}

#[tokio::test]
async fn an_unusable_store_stops_the_start_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, "x").unwrap();
    let cfg_path = dir.path().join("k.yml");
    std::fs::write(
        &cfg_path,
        format!("storage:\n  path: {}\n", blocker.join("sub").display()),
    )
    .unwrap();
    let cfg = klaxon::settings::load_file(&cfg_path).unwrap();
    match klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0")).await {
        Err(e @ klaxon::app::StartError::Store { .. }) => {
            let s = e.to_string();
            assert!(s.contains(&blocker.display().to_string()), "{s}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("started without a store"),
    }
}
