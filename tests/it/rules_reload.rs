//! Hot reload: `POST /-/reload` (and SIGHUP in the binary) swaps in new rule
//! groups, carrying over the alerts of unchanged rules; an invalid file
//! keeps the old rules evaluating and is reported by metric, status API and
//! a 500. Also the per-group rule metrics on /metrics.

use std::time::Duration;

async fn json(url: &str) -> serde_json::Value {
    let body = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

async fn text(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

const V1: &str = r#"groups:
  - name: g
    interval: 1s
    rules:
      - alert: Kept
        expr: vector(1)
        for: 1h
"#;

const V2: &str = r#"groups:
  - name: g
    interval: 1s
    rules:
      - alert: Kept
        expr: vector(1)
        for: 1h
      - record: job:added:sum
        expr: vector(2)
  - name: h
    interval: 1s
    rules:
      - record: other:thing:sum
        expr: vector(3)
"#;

fn setup(rules: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.rules"), rules).unwrap();
    let cfg_path = dir.path().join("k.yml");
    std::fs::write(
        &cfg_path,
        format!(
            "rule_files: ['*.rules']\nstorage:\n  path: {}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    (dir, cfg_path)
}

async fn post_reload(base: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn metric(text: &str, name_and_labels: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
}

async fn wait_until<F: std::future::Future<Output = bool>>(mut f: impl FnMut() -> F) -> bool {
    for _ in 0..60 {
        if f().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_reload_swaps_groups_and_keeps_unchanged_alerts() {
    let (dir, cfg_path) = setup(V1);
    let cfg = klaxon::settings::load_file(&cfg_path).unwrap();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr);
    let rules_url = format!("{base}/api/v1/rules");
    assert!(
        wait_until(|| async {
            json(&rules_url).await["data"]["groups"][0]["rules"][0]["alerts"][0]["state"]
                == "pending"
        })
        .await
    );
    let before = json(&rules_url).await["data"]["groups"][0]["rules"][0]["alerts"][0].clone();

    std::fs::write(dir.path().join("r.rules"), V2).unwrap();
    let (code, body) = post_reload(&base).await;
    assert_eq!(code, 200, "{body}");
    let r = json(&rules_url).await;
    let groups = r["data"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "{r:#}");
    assert_eq!(groups[0]["rules"].as_array().unwrap().len(), 2);
    // The unchanged alerting rule kept its alert (same activeAt), at once.
    assert_eq!(
        groups[0]["rules"][0]["alerts"][0]["activeAt"],
        before["activeAt"]
    );
    // The new groups evaluate.
    let m = text(&format!("{base}/metrics")).await;
    let file = dir.path().join("r.rules").display().to_string();
    assert_eq!(
        metric(&m, "klaxon_config_last_reload_successful"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            &format!("klaxon_rule_group_rules{{rule_group=\"{file};g\"}}")
        ),
        Some(2.0),
        "{m}"
    );
    let key_h = format!("{file};h");
    assert!(
        wait_until(|| async {
            let m = text(&format!("{base}/metrics")).await;
            metric(
                &m,
                &format!("klaxon_rule_group_iterations_total{{rule_group=\"{key_h}\"}}"),
            )
            .is_some_and(|v| v >= 1.0)
        })
        .await
    );
    let m = text(&format!("{base}/metrics")).await;
    for fam in [
        "klaxon_rule_group_last_duration_seconds",
        "klaxon_rule_group_last_evaluation_timestamp_seconds",
        "klaxon_rule_group_last_evaluation_samples",
        "klaxon_rule_evaluations_total",
        "klaxon_rule_evaluation_failures_total",
        "klaxon_rule_group_iterations_missed_total",
    ] {
        assert!(
            metric(&m, &format!("{fam}{{rule_group=\"{key_h}\"}}")).is_some(),
            "{fam} missing:\n{m}"
        );
    }
    assert_eq!(
        metric(
            &m,
            &format!("klaxon_rule_group_interval_seconds{{rule_group=\"{key_h}\"}}")
        ),
        Some(1.0)
    );
    // PUT works too, as in Prometheus; removing group h drops its metrics.
    std::fs::write(dir.path().join("r.rules"), V1).unwrap();
    let r = reqwest::Client::new()
        .put(format!("{base}/-/reload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let m = text(&format!("{base}/metrics")).await;
    assert!(!m.contains(&key_h), "{m}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_reload_keeps_the_old_rules_running() {
    let (dir, cfg_path) = setup(V1);
    let cfg = klaxon::settings::load_file(&cfg_path).unwrap();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr);
    let rules_url = format!("{base}/api/v1/rules");
    let last = || async {
        json(&rules_url).await["data"]["groups"][0]["lastEvaluation"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert!(wait_until(|| async { !last().await.starts_with("0001") }).await);

    std::fs::write(
        dir.path().join("r.rules"),
        "groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: up ==\n",
    )
    .unwrap();
    let (code, body) = post_reload(&base).await;
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("r.rules"), "{body}");
    assert!(body.contains("could not parse expression"), "{body}");
    let m = text(&format!("{base}/metrics")).await;
    assert_eq!(
        metric(&m, "klaxon_config_last_reload_successful"),
        Some(0.0)
    );
    let rt = json(&format!("{base}/api/v1/status/runtimeinfo")).await;
    assert_eq!(rt["data"]["reloadConfigSuccess"], false, "{rt:#}");

    // The old group is still there and still evaluating.
    let r = json(&rules_url).await;
    assert_eq!(r["data"]["groups"][0]["rules"][0]["name"], "Kept");
    let seen = last().await;
    assert!(wait_until(|| async { last().await != seen }).await);

    // A broken config file is refused the same way; fixing both recovers.
    std::fs::write(&cfg_path, "global: [\n").unwrap();
    let (code, body) = post_reload(&base).await;
    assert_eq!(code, 500);
    assert!(body.contains("k.yml"), "{body}");
    let before =
        json(&format!("{base}/api/v1/status/runtimeinfo")).await["data"]["lastConfigTime"].clone();
    std::fs::write(dir.path().join("r.rules"), V1).unwrap();
    std::fs::write(
        &cfg_path,
        format!(
            "rule_files: ['*.rules']\nstorage:\n  path: {}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let (code, _) = post_reload(&base).await;
    assert_eq!(code, 200);
    let rt = json(&format!("{base}/api/v1/status/runtimeinfo")).await;
    assert_eq!(rt["data"]["reloadConfigSuccess"], true);
    assert_ne!(rt["data"]["lastConfigTime"], before);
    app.stop().await;
}

/// Reload prepares every stage before it applies any: an `alerting:`
/// entry whose client cannot be built (it is prepared after the rules and
/// the scrape jobs) leaves the new rule groups and the new scrape job out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_stage_failing_leaves_rules_and_scrape_unchanged() {
    let (dir, cfg_path) = setup(V1);
    let cfg = klaxon::settings::load_file(&cfg_path).unwrap();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr);
    std::fs::write(dir.path().join("r.rules"), V2).unwrap();
    std::fs::write(
        &cfg_path,
        format!(
            "rule_files: ['*.rules']\nstorage:\n  path: {}\n\
             scrape_configs:\n  - job_name: added\n    static_configs:\n      - targets: ['127.0.0.1:1']\n\
             alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:1']\n\
             \x20     tls_config:\n        ca_file: {}\n",
            dir.path().join("data").display(),
            dir.path().join("missing-ca.pem").display()
        ),
    )
    .unwrap();
    let (code, body) = post_reload(&base).await;
    assert_eq!(code, 500, "{body}");
    assert!(body.contains("alerting.alertmanagers[0]"), "{body}");
    let r = json(&format!("{base}/api/v1/rules")).await;
    let groups = r["data"]["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 1, "{r:#}");
    assert_eq!(groups[0]["rules"].as_array().unwrap().len(), 1, "{r:#}");
    let t = json(&format!("{base}/api/v1/targets")).await;
    let jobs: Vec<&str> = t["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["labels"]["job"].as_str())
        .collect();
    assert!(!jobs.contains(&"added"), "{t:#}");
    let rt = json(&format!("{base}/api/v1/status/runtimeinfo")).await;
    assert_eq!(rt["data"]["reloadConfigSuccess"], false, "{rt:#}");
    app.stop().await;
}

#[cfg(unix)]
#[test]
fn sighup_reloads_the_binary() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let (dir, cfg_path) = setup(V1);
    let mut child = Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(["run", "--listen", "127.0.0.1:0", "--config"])
        .arg(&cfg_path)
        .current_dir(dir.path())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let addr = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("klaxon did not report its address");
        if let Some(a) = line.strip_prefix("klaxon listening on ") {
            break a.to_string();
        }
    };
    std::fs::write(dir.path().join("r.rules"), V2).unwrap();
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: sending a signal to our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let groups = rt.block_on(async {
        let url = format!("{addr}/api/v1/rules");
        let mut n = 0;
        for _ in 0..100 {
            n = json(&url).await["data"]["groups"]
                .as_array()
                .map_or(0, |g| g.len());
            if n == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        n
    });
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let _ = child.wait();
    assert_eq!(groups, 2, "SIGHUP did not load the second group");
}
