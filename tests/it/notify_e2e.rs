//! End to end through the `klaxon` binary: an alert POSTed to
//! `/api/v2/alerts` is routed, stored in the outbox and delivered to a
//! webhook; when the receiver is down and klaxon is killed with SIGKILL
//! mid-retry, the restarted klaxon delivers the stored notification exactly
//! once.

use crate::common;
use common::free_port;

use axum::routing::post;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A klaxon process, killed and reaped when dropped.
struct Klaxon {
    child: Child,
    base: String,
}

impl Drop for Klaxon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Klaxon {
    fn start(dir: &std::path::Path) -> Klaxon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_klaxon"))
            .args(["run", "--listen", "127.0.0.1:0", "--config"])
            .arg(dir.join("klaxon.yml"))
            .arg("--notify-config")
            .arg(dir.join("am.yml"))
            .current_dir(dir)
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start klaxon");
        let stderr = child.stderr.take().expect("stderr");
        let mut lines = BufReader::new(stderr).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("klaxon exited before listening")
                .expect("stderr line");
            if let Some(a) = line.strip_prefix("klaxon listening on ") {
                break a.trim().to_string();
            }
        };
        // Keep draining so klaxon never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Klaxon { child, base }
    }

    /// SIGKILL: no shutdown path runs.
    fn kill9(mut self) {
        let pid = i32::try_from(self.child.id()).expect("pid");
        // SAFETY: sending a signal to our own child process.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

/// The `X-Request-ID` headers a sink received.
type Ids = Arc<parking_lot::Mutex<Vec<String>>>;

/// A webhook receiver on `port` counting POSTs to /hook.
async fn sink(port: u16, hits: Arc<AtomicUsize>, ids: Ids) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let hits = hits.clone();
            let ids = ids.clone();
            async move {
                assert!(body.contains("\"version\":\"4\""), "{body}");
                assert!(body.contains("DiskFull"), "{body}");
                if let Some(v) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
                    ids.lock().push(v.to_string());
                }
                hits.fetch_add(1, Ordering::SeqCst);
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind sink");
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    })
}

async fn deliveries(base: &str) -> Vec<serde_json::Value> {
    let body = reqwest::get(format!("{base}/api/v1/deliveries"))
        .await
        .expect("GET deliveries")
        .bytes()
        .await
        .expect("body");
    let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
    v["data"]["deliveries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn setup(hook_port: u16) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("klaxon.yml"),
        format!(
            "scrape_configs: []\nstorage:\n  path: {}\n",
            dir.path().join("data").display()
        ),
    )
    .expect("write config");
    std::fs::write(
        dir.path().join("am.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 1h\nreceivers:\n- name: hook\n  webhook_configs:\n  - url: http://127.0.0.1:{hook_port}/hook\n"
        ),
    )
    .expect("write notify config");
    dir
}

async fn post_alert(base: &str) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v2/alerts"))
        .header("content-type", "application/json")
        .header("x-request-id", "e2e-request-1")
        .body(
            serde_json::json!([{
                "labels": {"alertname": "DiskFull", "instance": "db1:9100", "severity": "page"},
                "annotations": {"summary": "disk full", "runbook_url": "http://runbooks/DiskFull"},
                "generatorURL": "http://prom/graph"
            }])
            .to_string(),
        )
        .send()
        .await
        .expect("POST alerts");
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posted_alert_reaches_the_webhook() {
    let port = free_port();
    let hits = Arc::new(AtomicUsize::new(0));
    let ids = Ids::default();
    let server = sink(port, hits.clone(), ids.clone()).await;
    let dir = setup(port);
    let k = Klaxon::start(dir.path());
    post_alert(&k.base).await;
    let end = Instant::now() + Duration::from_secs(10);
    while hits.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < end, "webhook never called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The notification carries the id of the API call that caused it.
    assert_eq!(*ids.lock(), vec!["e2e-request-1".to_string()]);
    let d = deliveries(&k.base).await;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["status"], "success");
    drop(k);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_across_sigkill_is_delivered_once_after_restart() {
    let port = free_port();
    let dir = setup(port);
    let k = Klaxon::start(dir.path());
    post_alert(&k.base).await;
    // The receiver is down: wait until the stored notification has failed
    // at least twice and is waiting for its next retry.
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let d = deliveries(&k.base).await;
        if d.len() == 1 && d[0]["status"] == "pending" && d[0]["attempts"].as_u64() >= Some(2) {
            break;
        }
        assert!(Instant::now() < end, "no failed attempts recorded: {d:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    k.kill9();

    // The receiver comes back, then klaxon does.
    let hits = Arc::new(AtomicUsize::new(0));
    let server = sink(port, hits.clone(), Ids::default()).await;
    let k = Klaxon::start(dir.path());
    let end = Instant::now() + Duration::from_secs(30);
    while hits.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < end, "not delivered after the restart");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Give a duplicate every chance to show up.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(hits.load(Ordering::SeqCst), 1, "delivered more than once");
    let d = deliveries(&k.base).await;
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0]["status"], "success", "{d:?}");
    assert!(d[0]["attempts"].as_u64() >= Some(3), "{d:?}");
    drop(k);
    server.abort();
}

/// Signs and sends one remote command, as a command center would.
async fn command(base: &str, name: &str, cid: &str, secret: &str) -> u16 {
    let body = format!(r#"{{"reason":"{name} drill","operator":"ana"}}"#);
    let ts = (klaxon::model::now_millis() / 1000).to_string();
    let sig = klaxon::ops::commands::sign_request(secret.as_bytes(), &ts, body.as_bytes());
    reqwest::Client::new()
        .post(format!("{base}/internal/commands/{name}"))
        .header("X-Timestamp", &ts)
        .header("X-Correlation-ID", cid)
        .header("X-Signature", format!("sha256={sig}"))
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .await
        .expect("command")
        .status()
        .as_u16()
}

async fn post_alerts(base: &str, alerts: serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v2/alerts"))
        .header("content-type", "application/json")
        .body(alerts.to_string())
        .send()
        .await
        .expect("POST alerts");
    assert_eq!(r.status(), 200);
}

/// What a recording sink received: each body with its `Idempotency-Key`.
type Received = Arc<parking_lot::Mutex<Vec<(serde_json::Value, String)>>>;

/// A webhook receiver on `port` keeping every body posted to /hook.
async fn recording_sink(port: u16, bodies: Received) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let bodies = bodies.clone();
            async move {
                let key = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                if let Ok(v) = serde_json::from_str(&body) {
                    bodies.lock().push((v, key));
                }
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind sink");
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maintenance_holds_notifications_and_resume_sends_the_current_state() {
    const SECRET: &str = "maintenance-test-secret";
    let port = free_port();
    let bodies = Received::default();
    let server = recording_sink(port, bodies.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let yaml = format!(
        "storage:\n  path: {}\ncommand_center:\n  command_secret: {SECRET}\nnotify:\n  route:\n    receiver: hook\n    group_by: [alertname]\n    group_wait: 0s\n    group_interval: 1s\n  receivers:\n  - name: hook\n    webhook_configs:\n    - url: http://127.0.0.1:{port}/hook\n",
        dir.path().display()
    );
    let cfg = klaxon::settings::load_str(&yaml, "k.yml").expect("config");
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .expect("start");
    let base = format!("http://{}", app.addr);

    assert_eq!(command(&base, "kill-switch", "m-1", SECRET).await, 200);
    let now = klaxon::model::now_millis();
    let at = |ms: i64| klaxon::model::time::rfc3339_millis(ms);
    post_alerts(
        &base,
        serde_json::json!([
            {"labels": {"alertname": "StillFiring", "instance": "a"}, "startsAt": at(now)},
            {"labels": {"alertname": "GoneMeanwhile", "instance": "b"}, "startsAt": at(now)},
        ]),
    )
    .await;
    // Held: stored, not sent.
    let end = Instant::now() + Duration::from_secs(10);
    while deliveries(&base).await.len() < 2 {
        assert!(Instant::now() < end, "notifications were not stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One alert resolves while klaxon is in maintenance; the next flush of
    // its group stores a resolved notification that supersedes the held one.
    post_alerts(
        &base,
        serde_json::json!([{"labels": {"alertname": "GoneMeanwhile", "instance": "b"},
            "startsAt": at(now), "endsAt": at(klaxon::model::now_millis() - 1)}]),
    )
    .await;
    let end = Instant::now() + Duration::from_secs(10);
    while deliveries(&base).await.len() < 3 {
        assert!(Instant::now() < end, "the resolved flush was not stored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        bodies.lock().is_empty(),
        "sent during maintenance: {:?}",
        bodies.lock()
    );

    assert_eq!(command(&base, "resume", "m-2", SECRET).await, 200);
    let end = Instant::now() + Duration::from_secs(10);
    while bodies.lock().len() < 2 {
        assert!(
            Instant::now() < end,
            "held notifications not sent on resume"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let got: Vec<(String, String)> = bodies
        .lock()
        .iter()
        .map(|(b, _)| {
            (
                b["groupLabels"]["alertname"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                b["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let mut got = got;
    got.sort();
    assert_eq!(
        got,
        vec![
            ("GoneMeanwhile".to_string(), "resolved".to_string()),
            ("StillFiring".to_string(), "firing".to_string()),
        ],
        "the held firing notification of the resolved alert must not be sent"
    );
    let statuses: Vec<String> = deliveries(&base)
        .await
        .iter()
        .map(|d| d["status"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| *s == "superseded").count(),
        1,
        "{statuses:?}"
    );
    app.stop().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_accepted_before_a_sigkill_are_all_notified_after_restart() {
    let port = free_port();
    let got = Received::default();
    let server = recording_sink(port, got.clone()).await;
    let dir = setup(port);
    // group_wait outlasts the kill: nothing is notified before it, so only
    // what the 200 stored can be notified after the restart.
    std::fs::write(
        dir.path().join("am.yml"),
        format!(
            "route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 3s\n  group_interval: 1h\nreceivers:\n- name: hook\n  webhook_configs:\n  - url: http://127.0.0.1:{port}/hook\n"
        ),
    )
    .expect("write notify config");
    const N: usize = 300;
    let k = Klaxon::start(dir.path());
    let alerts: Vec<serde_json::Value> = (0..N)
        .map(|i| serde_json::json!({"labels": {"alertname": format!("A{i}")}}))
        .collect();
    post_alerts(&k.base, serde_json::Value::Array(alerts)).await;
    k.kill9();
    assert!(got.lock().is_empty(), "notified before group_wait");

    let k = Klaxon::start(dir.path());
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let groups: std::collections::HashSet<String> = got
            .lock()
            .iter()
            .map(|(b, _)| b["groupKey"].as_str().unwrap_or("").to_string())
            .collect();
        if groups.len() == N {
            break;
        }
        assert!(
            Instant::now() < end,
            "{} of {N} accepted alerts never notified after the restart",
            N - groups.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Every webhook notification carries an Idempotency-Key, one per group
    // here.
    let got = got.lock().clone();
    assert!(got.iter().all(|(_, k)| k.starts_with("klaxon-")), "{got:?}");
    let keys: std::collections::HashSet<&String> = got.iter().map(|(_, k)| k).collect();
    assert_eq!(keys.len(), N);
    drop(k);
    server.abort();
}
