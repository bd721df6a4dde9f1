//! The write-ahead log with real processes: klaxon scrapes
//! `../shared/tools/synth_target.py` every second, is killed with SIGKILL
//! (or has its WAL damaged, or its disk filled) and is started again on the
//! same `storage.path`.

use crate::common;
use common::{free_port, Proc};

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) fn synth_present() -> bool {
    let synth = common::shared("tools/synth_target.py");
    if !synth.exists() {
        assert!(
            !crate::common::is_ci(),
            "{} missing under CI",
            synth.display()
        );
        eprintln!("SKIPPED: {} missing", synth.display());
        return false;
    }
    true
}

pub(crate) fn synth(port: u16, series: u32) -> Proc {
    Proc(
        Command::new("python3")
            .arg(common::shared("tools/synth_target.py"))
            .arg(format!("--port={port}"))
            .arg(format!("--series={series}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start synth_target.py"),
    )
}

const RULES: &str = "groups:
- name: wal
  interval: 1s
  rules:
  - record: job:up:count10m
    expr: count_over_time(up{job=\"synth\"}[10m])
  - alert: NeedsTenMinutes
    expr: count_over_time(up{job=\"synth\"}[10m]) > 40
";

/// Writes klaxon.yml (and rules.yml) into `dir`, storage under `data`.
fn write_config(dir: &Path, data: &Path, target: u16) -> PathBuf {
    std::fs::write(dir.join("rules.yml"), RULES).unwrap();
    let cfg = dir.join("klaxon.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files: ['{}']\n\
             storage:\n  path: {}\n  retention: 1h\n\
             scrape_configs:\n- job_name: synth\n  static_configs:\n  - targets: ['127.0.0.1:{target}']\n",
            dir.join("rules.yml").display(),
            data.display()
        ),
    )
    .unwrap();
    cfg
}

pub(crate) struct Klaxon {
    pub(crate) proc: Proc,
    base: String,
    log: PathBuf,
}

/// Starts `klaxon run`; its log goes to `log` (appended).
pub(crate) fn start(cfg: &Path, log: &Path) -> Klaxon {
    start_with(cfg, log, &[])
}

/// [`start`] with more command-line flags.
pub(crate) fn start_with(cfg: &Path, log: &Path, extra: &[&str]) -> Klaxon {
    let port = free_port();
    let out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let proc = Proc(
        Command::new(env!("CARGO_BIN_EXE_klaxon"))
            .arg("run")
            .arg(format!("--config={}", cfg.display()))
            .arg(format!("--listen=127.0.0.1:{port}"))
            .arg("--log.level=info")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .expect("start klaxon"),
    );
    Klaxon {
        proc,
        base: format!("http://127.0.0.1:{port}"),
        log: log.to_path_buf(),
    }
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

impl Klaxon {
    /// `http://127.0.0.1:PORT`.
    pub(crate) fn base(&self) -> &str {
        &self.base
    }

    pub(crate) async fn wait_ready(&mut self, c: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = c.get(format!("{}/-/ready", self.base)).send().await {
                if r.status() == 200 {
                    // Our child must be the one answering, not a server
                    // left on the port by another test.
                    if let Ok(Some(st)) = self.proc.0.try_wait() {
                        panic!("{} answers but our child exited ({st})", self.base);
                    }
                    return;
                }
            }
            if let Ok(Some(st)) = self.proc.0.try_wait() {
                panic!(
                    "klaxon exited ({st}) before ready:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            assert!(Instant::now() < deadline, "klaxon not ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn text(&self, c: &reqwest::Client, path: &str) -> String {
        let r = c.get(format!("{}{path}", self.base)).send().await;
        r.unwrap().text().await.unwrap()
    }

    pub(crate) async fn get(&self, c: &reqwest::Client, path: &str) -> Value {
        let text = self.text(c, path).await;
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
    }

    /// `data` of an instant query at `time` (seconds, as text).
    pub(crate) async fn query(&self, c: &reqwest::Client, expr: &str, time: &str) -> Value {
        let qs = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", expr)
            .append_pair("time", time)
            .finish();
        let body = self.get(c, &format!("/api/v1/query?{qs}")).await;
        assert_eq!(body["status"], "success", "{expr}: {body}");
        body["data"].clone()
    }

    /// The one value of a single-element vector (None when empty).
    async fn scalar(&self, c: &reqwest::Client, expr: &str, time: &str) -> Option<f64> {
        let d = self.query(c, expr, time).await;
        d["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// The first series of family `name` whose line contains `with`.
    pub(crate) async fn metric_with(
        &self,
        c: &reqwest::Client,
        name: &str,
        with: &str,
    ) -> Option<f64> {
        let text = self.text(c, "/metrics").await;
        text.lines().filter(|l| l.contains(with)).find_map(|l| {
            let rest = l.strip_prefix(name)?;
            let value = match rest.strip_prefix('{') {
                Some(r) => r.split_once("} ")?.1,
                None => rest.strip_prefix(' ')?,
            };
            value.trim().parse().ok()
        })
    }

    pub(crate) async fn metric(&self, c: &reqwest::Client, name: &str) -> Option<f64> {
        self.metric_with(c, name, "").await
    }

    /// The synth target's `lastError` in /api/v1/targets.
    async fn target_error(&self, c: &reqwest::Client) -> String {
        let t = self.get(c, "/api/v1/targets").await;
        t["data"]["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|t| t["labels"]["job"] == "synth")
            .map(|t| t["lastError"].as_str().unwrap_or("").to_string())
            .unwrap_or_else(|| "no synth target".into())
    }

    /// (health, lastError, lastEvaluation) of rule `name`.
    async fn rule(&self, c: &reqwest::Client, name: &str) -> (String, String, String, Value) {
        let r = self.get(c, "/api/v1/rules").await;
        for g in r["data"]["groups"].as_array().into_iter().flatten() {
            for rule in g["rules"].as_array().into_iter().flatten() {
                if rule["name"] == name {
                    let s = |k: &str| rule[k].as_str().unwrap_or("").to_string();
                    return (
                        s("health"),
                        s("lastError"),
                        s("lastEvaluation"),
                        rule["alerts"].clone(),
                    );
                }
            }
        }
        panic!("rule {name} not found: {r}")
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

pub(crate) fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Polls `f` until it returns `Some` or `secs` pass.
pub(crate) async fn until<T, F: std::future::Future<Output = Option<T>>>(
    secs: u64,
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// SIGKILL after a minute of 1 s scrapes: the same range query at the same
/// evaluation time returns exactly the same samples after the restart, and
/// an alert over a 10 minute window is right at its first evaluation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_restart_loses_no_sample_and_keeps_window_alerts_right() {
    if !synth_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tport = free_port();
    let _target = synth(tport, 100);
    let cfg = write_config(dir.path(), &dir.path().join("data"), tport);
    let log = dir.path().join("klaxon.log");
    let c = client();
    let mut k = start(&cfg, &log);
    k.wait_ready(&c).await;

    // A minute of scrapes (60 samples of `up` in the window).
    let now = || format!("{:.3}", now_secs());
    until(120, "a minute of scrapes", || async {
        let n = k
            .scalar(&c, "count_over_time(up{job=\"synth\"}[10m])", &now())
            .await?;
        (n >= 60.0).then_some(())
    })
    .await;
    let (_, _, _, alerts) = k.rule(&c, "NeedsTenMinutes").await;
    assert_eq!(alerts[0]["state"], "firing", "{alerts}");

    // Evaluation time a little in the past, so every scrape before it is
    // committed; the window covers all of the run.
    let e = now_secs() - 2.0;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let et = format!("{e:.3}");
    let range = "{job=\"synth\"}[5m]";
    let before = k.query(&c, range, &et).await;
    let series = before["result"].as_array().map_or(0, Vec::len);
    let samples: usize = before["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["values"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(series > 100, "series before the kill: {series}");
    assert!(samples >= series * 55, "samples before the kill: {samples}");
    let up_before = k.query(&c, "up{job=\"synth\"}[5m]", &et).await;

    k.proc.0.kill().unwrap(); // SIGKILL
    k.proc.0.wait().unwrap();

    let mut k = start(&cfg, &log);
    k.wait_ready(&c).await;
    let after = k.query(&c, range, &et).await;
    assert_eq!(
        after["result"].as_array().map_or(0, Vec::len),
        series,
        "series after the restart"
    );
    assert!(after == before, "samples differ after the SIGKILL restart");
    assert_eq!(k.query(&c, "up{job=\"synth\"}[5m]", &et).await, up_before);
    let replay = k
        .metric(&c, "klaxon_tsdb_wal_replay_duration_seconds")
        .await;
    assert!(
        replay.is_some_and(|s| s > 0.0),
        "replay duration: {replay:?}"
    );
    assert_eq!(
        k.metric(&c, "klaxon_tsdb_wal_corruptions_total").await,
        Some(0.0)
    );

    // The alert's first evaluations after the restart see the whole
    // window: wait for two new evaluations, then it must be firing with
    // the full count (without the WAL it would see one or two samples).
    let (_, _, first, _) = k.rule(&c, "NeedsTenMinutes").await;
    let mut seen = vec![first];
    let deadline = Instant::now() + Duration::from_secs(30);
    let alerts = loop {
        let (health, err, last, alerts) = k.rule(&c, "NeedsTenMinutes").await;
        assert_ne!(health, "err", "{err}");
        if !seen.contains(&last) {
            seen.push(last);
        }
        if seen.len() >= 3 {
            break alerts;
        }
        assert!(
            Instant::now() < deadline,
            "no evaluations after the restart"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    assert_eq!(alerts[0]["state"], "firing", "{alerts}");
    let v: f64 = alerts[0]["value"].as_str().unwrap().parse().unwrap();
    assert!(v >= 60.0, "alert value right after restart: {v}");
}

/// Damage: a flipped byte in the middle of one segment and a last segment
/// cut mid-record. The restart succeeds, keeps what lies before each
/// damage and the segments after it, names file and offset, counts both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_segments_keep_the_good_prefix_and_later_segments() {
    if !synth_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tport = free_port();
    let _target = synth(tport, 100);
    let data = dir.path().join("data");
    let cfg = write_config(dir.path(), &data, tport);
    let log = dir.path().join("klaxon.log");
    let c = client();
    let now = || format!("{:.3}", now_secs());
    let count = "count_over_time(up{job=\"synth\"}[10m])";

    // Two runs, each writing its own segment (a start opens a new one).
    let mut counts = Vec::new();
    for _ in 0..2 {
        let mut k = start(&cfg, &log);
        k.wait_ready(&c).await;
        let base = k.scalar(&c, count, &now()).await.unwrap_or(0.0);
        until(60, "ten scrapes", || async {
            let n = k.scalar(&c, count, &now()).await?;
            (n >= base + 10.0).then_some(())
        })
        .await;
        k.proc.0.kill().unwrap();
        k.proc.0.wait().unwrap();
        counts.push(now_secs());
    }
    let wal = data.join("wal");
    let mut segs: Vec<PathBuf> = std::fs::read_dir(&wal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().len() == 8)
        .collect();
    segs.sort();
    let segs: Vec<PathBuf> = segs
        .into_iter()
        .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
        .collect();
    assert_eq!(segs.len(), 2, "{segs:?}");
    // Flip bytes in the middle of the first segment.
    let mut first = std::fs::read(&segs[0]).unwrap();
    let first_len = first.len();
    for b in &mut first[first_len / 2..first_len / 2 + 4] {
        *b ^= 0x5a;
    }
    std::fs::write(&segs[0], &first).unwrap();
    // Cut the last segment inside its last record.
    let last_len = std::fs::metadata(&segs[1]).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&segs[1])
        .unwrap()
        .set_len(last_len - 7)
        .unwrap();

    let mut k = start(&cfg, &log);
    k.wait_ready(&c).await;
    assert_eq!(
        k.metric(&c, "klaxon_tsdb_wal_corruptions_total").await,
        Some(2.0)
    );
    let text = k.log_text();
    for s in &segs {
        let name = s.display().to_string();
        assert!(
            text.lines().any(|l| l.contains("corrupt WAL record")
                && l.contains(&name)
                && l.contains("offset")),
            "no corruption line naming {name}:\n{text}"
        );
    }
    // Data before the flipped bytes (start of run 1) and the second run
    // (a later segment) are back; the files were cut at the damage.
    let run1 = k
        .scalar(&c, count, &format!("{:.3}", counts[0] - 1.0))
        .await
        .unwrap_or(0.0);
    assert!(run1 >= 1.0, "samples of the first run: {run1}");
    let run2 = k
        .scalar(
            &c,
            "count_over_time(up{job=\"synth\"}[8s])",
            &format!("{:.3}", counts[1] - 2.0),
        )
        .await
        .unwrap_or(0.0);
    assert!(run2 >= 4.0, "samples of the second run: {run2}");
    assert!(std::fs::metadata(&segs[0]).unwrap().len() < first_len as u64);
    assert!(std::fs::metadata(&segs[1]).unwrap().len() < last_len - 7);
    // And it keeps scraping.
    let t0 = now_secs();
    until(30, "scrapes after the restart", || async {
        let n = k
            .scalar(&c, "count_over_time(up{job=\"synth\"}[5s])", &now())
            .await?;
        (now_secs() > t0 + 3.0 && n >= 2.0).then_some(())
    })
    .await;
}

/// A tmpfs mounted for one test, unmounted when dropped.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, opts: &str) -> Option<Mount> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            assert!(
                !crate::common::is_ci(),
                "mounting a tmpfs failed under CI (needs root)"
            );
            eprintln!("SKIPPED: cannot mount a tmpfs (not root?)");
            return None;
        }
        Some(Mount(at.to_path_buf()))
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A full disk: scrapes and rule groups report the failed commit, nothing
/// panics, and appends resume once space is freed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_commits_clearly_and_recovers() {
    if !synth_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Some(_mount) = Mount::tmpfs(&data, "size=8m") else {
        return;
    };
    let tport = free_port();
    let _target = synth(tport, 100);
    let cfg = write_config(dir.path(), &data, tport);
    let c = client();
    let mut k = start(&cfg, &dir.path().join("klaxon.log"));
    k.wait_ready(&c).await;
    let now = || format!("{:.3}", now_secs());
    until(30, "scrapes", || async {
        k.scalar(&c, "count_over_time(up{job=\"synth\"}[1m])", &now())
            .await
            .filter(|n| *n >= 3.0)
    })
    .await;

    // Fill the file system.
    let filler = data.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(Stdio::null())
        .status();
    let err = until(30, "a scrape error", || async {
        let e = k.target_error(&c).await;
        (!e.is_empty()).then_some(e)
    })
    .await;
    assert!(
        err.contains("storing the scrape failed") && err.contains("No space left on device"),
        "{err}"
    );
    let (health, rule_err) = until(30, "a rule error", || async {
        let (h, e, _, _) = k.rule(&c, "job:up:count10m").await;
        (h == "err").then_some((h, e))
    })
    .await;
    assert_eq!(health, "err");
    assert!(rule_err.contains("No space left on device"), "{rule_err}");
    assert!(k.proc.0.try_wait().unwrap().is_none(), "klaxon exited");
    let failed = k.metric(&c, "klaxon_tsdb_wal_writes_failed_total").await;
    assert!(failed.is_some_and(|n| n > 0.0), "{failed:?}");
    let gap_start = now_secs();

    // Space returns: scrapes and rules recover and samples are stored.
    std::fs::remove_file(&filler).unwrap();
    until(30, "recovery", || async {
        let e = k.target_error(&c).await;
        let (h, _, _, _) = k.rule(&c, "job:up:count10m").await;
        (e.is_empty() && h == "ok").then_some(())
    })
    .await;
    let n = until(30, "samples after recovery", || async {
        let q = format!(
            "count_over_time(up{{job=\"synth\"}}[{}s])",
            (now_secs() - gap_start) as u64 + 1
        );
        k.scalar(&c, &q, &now()).await.filter(|n| *n >= 2.0)
    })
    .await;
    assert!(n >= 2.0);

    // What was stored survives a restart, and the WAL replays cleanly.
    let probe_t = now();
    let before = k.query(&c, "up{job=\"synth\"}[10m]", &probe_t).await;
    k.proc.0.kill().unwrap();
    k.proc.0.wait().unwrap();
    let mut k = start(&cfg, &dir.path().join("klaxon.log"));
    k.wait_ready(&c).await;
    assert_eq!(
        k.query(&c, "up{job=\"synth\"}[10m]", &probe_t).await,
        before
    );
}

/// An unwritable WAL directory at start is a startup error naming it.
#[test]
fn a_read_only_wal_directory_is_a_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let wal = data.join("wal");
    let Some(_mount) = Mount::tmpfs(&wal, "size=1m,ro") else {
        return;
    };
    let cfg = dir.path().join("klaxon.yml");
    std::fs::write(
        &cfg,
        format!("storage:\n  path: {}\nscrape_configs: []\n", data.display()),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .arg("run")
        .arg(format!("--config={}", cfg.display()))
        .arg(format!("--listen=127.0.0.1:{}", free_port()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&wal.display().to_string()) && err.contains("Read-only file system"),
        "{err}"
    );
}

const PROMETHEUS: &str = "/usr/bin/prometheus";

fn prometheus_receiver(dir: &Path, port: u16) -> Proc {
    std::fs::write(
        dir.join("prometheus.yml"),
        "global: {}
",
    )
    .unwrap();
    common::spawn_prometheus(
        Path::new(PROMETHEUS),
        dir,
        port,
        &["--web.enable-remote-write-receiver"],
    )
}

/// Stops a child with SIGTERM and waits for it.
pub(crate) fn terminate(p: &mut Proc) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(p.0.id() as i32, libc::SIGTERM);
    }
    let _ = p.0.wait();
}

/// The raw samples of `expr` (a range selector) at `time`, as
/// series → [(t, value)].
fn samples(data: &Value) -> std::collections::BTreeMap<String, Vec<(String, String)>> {
    let mut out = std::collections::BTreeMap::new();
    for s in data["result"].as_array().into_iter().flatten() {
        let v = s["values"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| {
                (
                    format!("{:.3}", p[0].as_f64().unwrap_or(0.0)),
                    p[1].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        out.insert(s["metric"].to_string(), v);
    }
    out
}

/// A Prometheus 2.42 receiver is down for two minutes while klaxon
/// scrapes, and klaxon itself is restarted in the middle of the outage:
/// once the receiver is back, every sample klaxon stored is in Prometheus
/// with the same timestamp and value, and nothing was dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_outage_and_restart_lose_nothing() {
    if !synth_present() {
        return;
    }
    if !Path::new(PROMETHEUS).exists() {
        assert!(
            !crate::common::is_ci(),
            "prometheus missing under CI (../shared/tools/install-peers.sh)"
        );
        eprintln!("SKIPPED: {PROMETHEUS} not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let tport = free_port();
    let _target = synth(tport, 50);
    let pport = free_port();
    let prom = Klaxon {
        proc: prometheus_receiver(dir.path(), pport),
        base: format!("http://127.0.0.1:{pport}"),
        log: dir.path().join("none"),
    };
    let cfg = dir.path().join("klaxon.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
             storage:\n  path: {}\n\
             scrape_configs:\n- job_name: synth\n  static_configs:\n  - targets: ['127.0.0.1:{tport}']\n\
             remote_write:\n- url: http://127.0.0.1:{pport}/api/v1/write\n  name: prom\n  queue_config:\n    batch_send_deadline: 500ms\n    min_backoff: 100ms\n    max_backoff: 1s\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("klaxon.log");
    let c = client();
    let mut prom = prom;
    prom.wait_ready(&c).await;
    let mut k = start(&cfg, &log);
    k.wait_ready(&c).await;
    let t_start = now_secs();
    let now = || format!("{:.3}", now_secs());
    until(60, "samples in Prometheus", || async {
        prom.scalar(&c, "count(up{job=\"synth\"})", &now())
            .await
            .filter(|n| *n >= 1.0)
    })
    .await;

    // The outage: a minute, a klaxon restart, another minute.
    terminate(&mut prom.proc);
    tokio::time::sleep(Duration::from_secs(60)).await;
    let pending = k.metric(&c, "klaxon_remote_storage_samples_pending").await;
    assert!(
        pending.is_some_and(|p| p > 0.0),
        "pending during the outage: {pending:?}"
    );
    terminate(&mut k.proc);
    let mut k = start(&cfg, &log);
    k.wait_ready(&c).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    let t_end = now_secs();

    // The receiver returns; the queue catches up.
    let mut prom = Klaxon {
        proc: prometheus_receiver(dir.path(), pport),
        base: format!("http://127.0.0.1:{pport}"),
        log: dir.path().join("none"),
    };
    prom.wait_ready(&c).await;
    let window = format!("{}s", (t_end - t_start) as u64 + 5);
    let at = format!("{:.3}", t_end);
    let expr = format!("{{job=\"synth\"}}[{window}]");
    let want = samples(&k.query(&c, &expr, &at).await);
    let total: usize = want.values().map(Vec::len).sum();
    assert!(want.len() >= 50, "series in klaxon: {}", want.len());
    assert!(total >= 100 * want.len(), "samples in klaxon: {total}");
    let deadline = Instant::now() + Duration::from_secs(120);
    let got = loop {
        let got = samples(&prom.query(&c, &expr, &at).await);
        if got == want {
            break got;
        }
        if Instant::now() > deadline {
            let missing: Vec<String> = want
                .iter()
                .filter(|(k, v)| got.get(*k) != Some(v))
                .take(3)
                .map(|(k, v)| {
                    let g = got.get(k).cloned().unwrap_or_default();
                    let first_diff = v.iter().zip(&g).position(|(a, b)| a != b);
                    format!(
                        "{k}: klaxon {} samples, Prometheus {}; first difference at {first_diff:?}: {:?} vs {:?}",
                        v.len(),
                        g.len(),
                        first_diff.and_then(|i| v.get(i)),
                        first_diff.and_then(|i| g.get(i)),
                    )
                })
                .collect();
            let log = k.log_text();
            let remote: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("remote") || l.contains("WAL"))
                .rev()
                .take(15)
                .collect();
            panic!(
                "Prometheus did not catch up: {} of {} series differ\n{}\nklaxon log:\n{}",
                want.iter().filter(|(k, v)| got.get(*k) != Some(v)).count(),
                want.len(),
                missing.join("\n"),
                remote.join("\n")
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(got.len(), want.len());
    for reason in ["queue_full", "shutdown"] {
        let dropped = k
            .metric_with(
                &c,
                "klaxon_remote_storage_samples_dropped_total",
                &format!("reason=\"{reason}\""),
            )
            .await
            .unwrap_or(0.0);
        assert_eq!(dropped, 0.0, "{reason} drops");
    }
}
