//! A config reload re-reads the notify config, as Alertmanager does on
//! SIGHUP: new receivers and routes apply to what is flushed next, alerts
//! and the notification log are kept (an unchanged group does not notify
//! again), and a bad notify config keeps the running one.

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Webhook bodies received, by path.
type Seen = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

async fn webhook_sink() -> (u16, Seen, tokio::task::JoinHandle<()>) {
    let seen: Seen = Arc::default();
    let s2 = seen.clone();
    let app = axum::Router::new().route(
        "/{name}",
        axum::routing::post(
            move |axum::extract::Path(name): axum::extract::Path<String>, body: String| {
                let seen = s2.clone();
                async move {
                    let v = serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
                    seen.lock().push((name, v));
                    "ok"
                }
            },
        ),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let h = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (port, seen, h)
}

/// `path` also names the config in `repeat_interval` (the webhook URL is a
/// secret, masked in `/api/v2/status`).
fn notify_yaml(port: u16, path: &str) -> String {
    let repeat = if path == "second" { "2h" } else { "1h" };
    format!(
        "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: {repeat}\nreceivers:\n- name: hook\n  webhook_configs:\n  - url: http://127.0.0.1:{port}/{path}\n"
    )
}

async fn post_alert(base: &str, name: &str) {
    let body = serde_json::json!([{"labels": {"alertname": name}}]);
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v2/alerts"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn reload(base: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// (path, alertname of the group) of everything received.
fn received(seen: &Seen) -> Vec<(String, String)> {
    seen.lock()
        .iter()
        .map(|(p, v)| {
            (
                p.clone(),
                v["groupLabels"]["alertname"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect()
}

async fn wait_received(seen: &Seen, want: &[(&str, &str)]) {
    let end = Instant::now() + Duration::from_secs(10);
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    loop {
        let got = received(seen);
        if got == want {
            return;
        }
        assert!(Instant::now() < end, "received {got:?}, want {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_rereads_the_notify_config_file() {
    let (port, seen, sink) = webhook_sink().await;
    let dir = tempfile::tempdir().unwrap();
    let am = dir.path().join("alertmanager.yml");
    std::fs::write(&am, notify_yaml(port, "first")).unwrap();
    let kcfg = dir.path().join("klaxon.yml");
    std::fs::write(
        &kcfg,
        format!("storage:\n  path: {}\n", dir.path().join("data").display()),
    )
    .unwrap();
    // As `klaxon run --config klaxon.yml --notify-config alertmanager.yml`.
    let mut cfg = klaxon::settings::load_file(&kcfg).unwrap();
    cfg.notify = Some(Arc::new(klaxon::notify::config::load_file(&am).unwrap()));
    let k = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", k.addr);

    post_alert(&base, "Before").await;
    wait_received(&seen, &[("first", "Before")]).await;

    // The receiver moves; the group already notified is not notified again.
    std::fs::write(&am, notify_yaml(port, "second")).unwrap();
    assert_eq!(reload(&base).await, 200);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let dl = reqwest::get(format!("{base}/api/v1/deliveries"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        received(&seen),
        vec![("first".into(), "Before".into())],
        "{dl}"
    );
    post_alert(&base, "After").await;
    wait_received(&seen, &[("first", "Before"), ("second", "After")]).await;

    // /api/v2/status shows the config in force.
    let status: serde_json::Value = serde_json::from_slice(
        &reqwest::get(format!("{base}/api/v2/status"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let original = status["config"]["original"].as_str().unwrap();
    assert!(original.contains("repeat_interval: 2h"), "{original}");
    assert!(!original.contains("127.0.0.1"), "{original}");

    // A broken notify file is refused and the running config kept.
    std::fs::write(
        &am,
        "route:\n  receiver: nobody\nreceivers:\n- name: hook\n",
    )
    .unwrap();
    assert_eq!(reload(&base).await, 500);
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("klaxon_config_last_reload_successful 0"),
        "reload failure not reported"
    );
    post_alert(&base, "Kept").await;
    wait_received(
        &seen,
        &[("first", "Before"), ("second", "After"), ("second", "Kept")],
    )
    .await;

    k.stop().await;
    sink.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_an_inline_notify_section_and_its_removal() {
    let (port, seen, sink) = webhook_sink().await;
    let dir = tempfile::tempdir().unwrap();
    let kcfg = dir.path().join("klaxon.yml");
    let storage = format!("storage:\n  path: {}\n", dir.path().join("data").display());
    let with_notify = |path: &str| {
        let indented: String = notify_yaml(port, path)
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect();
        format!("{storage}notify:\n{indented}")
    };
    std::fs::write(&kcfg, with_notify("inline")).unwrap();
    let k = klaxon::app::start(
        klaxon::settings::load_file(&kcfg).unwrap(),
        klaxon::app::StartOptions::on("127.0.0.1:0"),
    )
    .await
    .unwrap();
    let base = format!("http://{}", k.addr);
    post_alert(&base, "One").await;
    wait_received(&seen, &[("inline", "One")]).await;

    std::fs::write(&kcfg, with_notify("moved")).unwrap();
    assert_eq!(reload(&base).await, 200);
    post_alert(&base, "Two").await;
    wait_received(&seen, &[("inline", "One"), ("moved", "Two")]).await;

    // Without a notify section flushes are only logged: nothing is sent,
    // and the alerts stay listed by the v2 API.
    std::fs::write(&kcfg, &storage).unwrap();
    assert_eq!(reload(&base).await, 200);
    post_alert(&base, "Three").await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(received(&seen).len(), 2, "{:?}", received(&seen));
    let alerts: serde_json::Value = serde_json::from_slice(
        &reqwest::get(format!("{base}/api/v2/alerts"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap(),
    )
    .unwrap();
    let names: Vec<&str> = alerts
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["labels"]["alertname"].as_str())
        .collect();
    for n in ["One", "Two", "Three"] {
        assert!(names.contains(&n), "{names:?}");
    }
    k.stop().await;
    sink.abort();
}
