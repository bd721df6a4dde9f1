//! End to end through the `klaxon` binary: an alert POSTed to
//! `/api/v2/alerts` is routed, stored in the outbox and delivered to a
//! webhook; when the receiver is down and klaxon is killed with SIGKILL
//! mid-retry, the restarted klaxon delivers the stored notification exactly
//! once.

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

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A webhook receiver on `port` counting POSTs to /hook.
async fn sink(port: u16, hits: Arc<AtomicUsize>) -> tokio::task::JoinHandle<()> {
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: String| {
            let hits = hits.clone();
            async move {
                assert!(body.contains("\"version\":\"4\""), "{body}");
                assert!(body.contains("DiskFull"), "{body}");
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
    let server = sink(port, hits.clone()).await;
    let dir = setup(port);
    let k = Klaxon::start(dir.path());
    post_alert(&k.base).await;
    let end = Instant::now() + Duration::from_secs(10);
    while hits.load(Ordering::SeqCst) == 0 {
        assert!(Instant::now() < end, "webhook never called");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
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
    let server = sink(port, hits.clone()).await;
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
