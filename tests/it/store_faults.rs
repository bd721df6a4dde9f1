//! The store on a bad day, with the store's fault hook (deterministic) and
//! a real full disk (a small tmpfs): a stalled store answers 503 where it is
//! needed and stalls nothing else; a full disk loses no notification, turns
//! `/-/ready` to 503 and is counted in `klaxon_store_errors_total`.

use crate::common;

use klaxon::store::health::Fault;
use std::time::{Duration, Instant};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap()
}

async fn json(c: &reqwest::Client, url: &str) -> serde_json::Value {
    let b = c.get(url).send().await.unwrap().bytes().await.unwrap();
    serde_json::from_slice(&b).unwrap()
}

/// The value of an unlabelled sample in `/metrics`.
async fn metric(c: &reqwest::Client, base: &str, name: &str) -> Option<f64> {
    let text = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn last_scrape(c: &reqwest::Client, base: &str) -> String {
    let v = json(c, &format!("{base}/api/v1/targets")).await;
    v["data"]["activeTargets"][0]["lastScrape"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

async fn last_eval(c: &reqwest::Client, base: &str) -> String {
    let v = json(c, &format!("{base}/api/v1/rules")).await;
    v["data"]["groups"][0]["lastEvaluation"]
        .as_str()
        .unwrap_or("")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_store_answers_503_and_stalls_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    std::fs::write(
        dir.path().join("a.rules"),
        "groups:\n- name: g\n  interval: 200ms\n  rules:\n  - alert: Up\n    expr: vector(1)\n",
    )
    .unwrap();
    let cfg_path = dir.path().join("k.yml");
    std::fs::write(
        &cfg_path,
        format!(
            "global:\n  scrape_interval: 200ms\n  scrape_timeout: 100ms\nrule_files: ['*.rules']\nscrape_configs:\n- job_name: self\n  static_configs:\n  - targets: ['127.0.0.1:{port}']\nstorage:\n  path: {}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let cfg = klaxon::settings::load_file(&cfg_path).unwrap();
    let app = klaxon::app::start(
        cfg,
        klaxon::app::StartOptions::on(format!("127.0.0.1:{port}")),
    )
    .await
    .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let c = client();
    let store = app.state.outbox.store().clone();
    store.health().set_timeout(Duration::from_millis(500));

    // Scrapes and evaluations have started.
    let end = Instant::now() + Duration::from_secs(10);
    while last_scrape(&c, &base).await.is_empty() || last_eval(&c, &base).await.is_empty() {
        assert!(
            Instant::now() < end,
            "no scrape or evaluation before the stall"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    store.inject_fault(Some(Fault::Stall));
    let (scrape0, eval0) = (last_scrape(&c, &base).await, last_eval(&c, &base).await);
    let silence = serde_json::json!({
        "matchers": [{"name": "alertname", "value": "Up", "isRegex": false}],
        "startsAt": "2020-01-01T00:00:00Z",
        "endsAt": "2999-01-01T00:00:00Z",
        "createdBy": "t",
        "comment": "during the stall",
    });
    // Two writers and a reader at once, as in the report: each writer gets
    // a clear 503, the reader its answer.
    let post = |c: reqwest::Client, url: String, body: serde_json::Value| async move {
        c.post(url)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
    };
    let (a, b, g) = tokio::join!(
        post(
            c.clone(),
            format!("{base}/api/v2/silences"),
            silence.clone()
        ),
        post(
            c.clone(),
            format!("{base}/api/v2/silences"),
            silence.clone()
        ),
        c.get(format!("{base}/api/v2/silences")).send(),
    );
    for r in [a, b] {
        let r = r.expect("POST /api/v2/silences answers during a stall");
        assert_eq!(r.status(), 503);
        let msg = r.text().await.unwrap();
        assert!(msg.contains("store stalled"), "{msg}");
    }
    assert_eq!(g.expect("GET silences during a stall").status(), 200);
    let r = c
        .get(format!("{base}/api/v1/deliveries"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);

    // The rest keeps going while the store stays frozen.
    let end = Instant::now() + Duration::from_secs(3);
    while Instant::now() < end {
        let r = c.get(format!("{base}/-/healthy")).send().await;
        assert_eq!(r.expect("/-/healthy during a stall").status(), 200);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_ne!(last_scrape(&c, &base).await, scrape0, "scraping stopped");
    assert_ne!(last_eval(&c, &base).await, eval0, "rule evaluation stopped");
    let r = c.get(format!("{base}/-/ready")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.text().await.unwrap().contains("stalled"));
    assert!(metric(&c, &base, "klaxon_store_stalls_total").await >= Some(2.0));
    assert!(metric(&c, &base, "klaxon_store_errors_total").await >= Some(2.0));
    assert_eq!(metric(&c, &base, "klaxon_store_healthy").await, Some(0.0));

    // Thawed: the writes complete, the probe makes the store ready again.
    store.inject_fault(None);
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let r = c.get(format!("{base}/-/ready")).send().await.unwrap();
        if r.status() == 200 {
            break;
        }
        assert!(Instant::now() < end, "not ready again after the thaw");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = post(
        c.clone(),
        format!("{base}/api/v2/silences"),
        silence.clone(),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let id = json(&c, &format!("{base}/api/v2/silences")).await;
    assert!(id.as_array().is_some_and(|l| !l.is_empty()), "{id}");
    app.stop().await;
}

/// A tmpfs of `size` mounted on a fresh directory, unmounted when dropped.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    /// `None` (reported as skipped) when mounting is not allowed here (not
    /// root); under `CI=true` that is a failure.
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                !crate::common::is_ci(),
                "cannot mount a tmpfs (this test needs root)"
            );
            eprintln!("SKIPPED: cannot mount a tmpfs (needs root)");
            return None;
        }
        Some(Tmpfs(dir))
    }

    fn path(&self) -> &std::path::Path {
        self.0.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.0.path())
            .status();
    }
}

/// Fills the file system holding `path` with one file until it is full.
fn fill(path: &std::path::Path) {
    use std::io::Write;
    let mut f = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 16 * 1024];
    while f.write_all(&chunk).and_then(|_| f.sync_all()).is_ok() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_loses_no_notification_and_is_reported() {
    let Some(mnt) = Tmpfs::mount("1m") else {
        return;
    };
    // A webhook receiver remembering the alert names it was told about.
    let seen = std::sync::Arc::new(parking_lot::Mutex::new(
        std::collections::HashSet::<String>::new(),
    ));
    let seen2 = seen.clone();
    let hook = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let seen = seen2.clone();
            async move {
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                if let Some(n) = v["groupLabels"]["alertname"].as_str() {
                    seen.lock().insert(n.to_string());
                }
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_port = l.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let _ = axum::serve(l, hook).await;
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("k.yml");
    std::fs::write(
        &cfg_path,
        format!(
            "storage:\n  path: {}\nnotify:\n  route:\n    receiver: hook\n    group_by: [alertname]\n    group_wait: 0s\n    group_interval: 1s\n    repeat_interval: 1h\n  receivers:\n  - name: hook\n    webhook_configs:\n    - url: http://127.0.0.1:{hook_port}/hook\n",
            mnt.path().join("data").display()
        ),
    )
    .unwrap();
    let cfg = klaxon::settings::load_file(&cfg_path).unwrap();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr);
    let c = client();
    assert_eq!(
        metric(&c, &base, "klaxon_store_errors_total").await,
        Some(0.0)
    );

    fill(&mnt.path().join("filler"));
    const N: usize = 100;
    let alerts: Vec<serde_json::Value> = (0..N)
        .map(|i| serde_json::json!({"labels": {"alertname": format!("A{i}")}}))
        .collect();
    let r = c
        .post(format!("{base}/api/v2/alerts"))
        .header("content-type", "application/json")
        .body(serde_json::Value::Array(alerts).to_string())
        .send()
        .await
        .unwrap();
    // 200, or 503 when the accepted alerts could not be stored either.
    assert!([200, 503].contains(&r.status().as_u16()), "{}", r.status());

    // The failure is visible: errors counted, not ready.
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        let errors = metric(&c, &base, "klaxon_store_errors_total").await;
        let ready = c.get(format!("{base}/-/ready")).send().await.unwrap();
        if errors > Some(0.0) && ready.status() == 503 {
            let why = ready.text().await.unwrap();
            assert!(why.contains("full"), "{why}");
            break;
        }
        assert!(
            Instant::now() < end,
            "full disk not reported: errors {errors:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        seen.lock().len() < N,
        "every notification stored despite a full disk?"
    );

    // Space again: every group is notified, nothing was dropped.
    std::fs::remove_file(mnt.path().join("filler")).unwrap();
    let end = Instant::now() + Duration::from_secs(30);
    while seen.lock().len() < N {
        if Instant::now() > end {
            let ready = c.get(format!("{base}/-/ready")).send().await.unwrap();
            let d = c
                .get(format!("{base}/api/v1/deliveries?limit=3"))
                .send()
                .await
                .unwrap();
            // What filled the volume, for the failure message.
            let files: Vec<String> = std::fs::read_dir(mnt.path().join("data"))
                .map(|d| {
                    d.flatten()
                        .map(|e| {
                            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
                            format!("{} {len}", e.file_name().to_string_lossy())
                        })
                        .collect()
                })
                .unwrap_or_default();
            eprintln!("store files: {files:?}");
            let missing = N - seen.lock().len();
            panic!(
                "{missing} of {N} groups never notified after the disk had space again; ready: {}; deliveries: {}",
                ready.text().await.unwrap(),
                d.text().await.unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let end = Instant::now() + Duration::from_secs(10);
    while c
        .get(format!("{base}/-/ready"))
        .send()
        .await
        .unwrap()
        .status()
        != 200
    {
        assert!(Instant::now() < end, "not ready again");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.stop().await;
    server.abort();
}
