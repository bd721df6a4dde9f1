//! Prometheus' TSDB admin API on a real klaxon: snapshot, delete_series
//! and clean_tombstones over a persisted block and the head, checked with
//! promtool 2.42 (list, dump) and the query API, across a restart; the
//! admin role and `--web.enable-admin-api` gate them as Prometheus 2.42
//! does (its answer with the flag off is the oracle).

use crate::common;
use klaxon::model::Labels;
use klaxon::tsdb::block::{self, BlockSeries};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const STEP: i64 = 15_000;

fn sha(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn series(i: &str) -> Labels {
    Labels::from_pairs([("__name__", "adm_metric"), ("i", i)])
}

/// Starts klaxon on `dir` (kept across restarts) with a viewer token `v`
/// and an admin token `a`, the admin API on or off.
async fn start(dir: &Path, admin_api: bool) -> (klaxon::app::Running, String) {
    start_with(dir, admin_api, "").await
}

/// [`start`] with more `storage:` settings (`extra`, indented lines).
async fn start_with(dir: &Path, admin_api: bool, extra: &str) -> (klaxon::app::Running, String) {
    let yaml = format!(
        "storage:\n  path: {}\n{extra}auth:\n  anonymous_role: none\n  tokens:\n    - {{name: v, token_sha256: {}, roles: [viewer]}}\n    - {{name: a, token_sha256: {}, roles: [viewer, admin]}}\n",
        dir.display(),
        sha("tok-viewer"),
        sha("tok-admin")
    );
    let path = dir.join("klaxon.yml");
    std::fs::write(&path, &yaml).unwrap();
    let cfg = klaxon::settings::load_file(&path).unwrap();
    let opts = klaxon::app::StartOptions {
        enable_admin_api: admin_api,
        ..klaxon::app::StartOptions::on("127.0.0.1:0")
    };
    let app = klaxon::app::start(cfg, opts).await.expect("klaxon starts");
    let base = format!("http://{}", app.addr);
    (app, base)
}

async fn post(c: &reqwest::Client, url: &str, token: &str) -> (u16, String) {
    let r = c.post(url).bearer_auth(token).send().await.expect("POST");
    let code = r.status().as_u16();
    (code, r.text().await.unwrap_or_default())
}

/// Sample times of each `adm_metric` series klaxon returns over the 5
/// hours before `at_ms` (the raw samples of `adm_metric[5h]`).
async fn times(c: &reqwest::Client, base: &str, at_ms: i64) -> BTreeMap<String, Vec<i64>> {
    let r = c
        .get(format!(
            "{base}/api/v1/query?query=adm_metric%5B5h%5D&time={}",
            at_ms as f64 / 1000.0
        ))
        .bearer_auth("tok-viewer")
        .send()
        .await
        .unwrap();
    let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert_eq!(v["status"], "success", "{v}");
    let mut out = BTreeMap::new();
    for s in v["data"]["result"].as_array().unwrap() {
        let ts = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_f64().unwrap() * 1000.0).round() as i64)
            .collect();
        out.insert(s["metric"]["i"].as_str().unwrap().to_string(), ts);
    }
    out
}

/// Block directories directly under `dir`.
fn block_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("meta.json").is_file())
        .collect();
    v.sort();
    v
}

/// `promtool tsdb list` and `dump` of a copy holding only `blocks`: the
/// listed ULIDs and the dumped samples' times by `i` label.
fn promtool_read(promtool: &Path, blocks: &[PathBuf]) -> (Vec<String>, BTreeMap<String, Vec<i64>>) {
    let db = tempfile::tempdir().unwrap();
    for b in blocks {
        crate::tsdb_blocks::copy_dir(b, &db.path().join(b.file_name().unwrap()));
    }
    std::fs::create_dir_all(db.path().join("wal")).unwrap();
    let list =
        crate::tsdb_blocks::run(Command::new(promtool).args(["tsdb", "list"]).arg(db.path()));
    let ulids = list
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .collect();
    let dump = crate::tsdb_blocks::dump(promtool, db.path());
    let by_i = dump
        .into_iter()
        .map(|(l, s)| {
            (
                l.get("i").unwrap_or("").to_string(),
                s.into_iter().map(|p| p.0).collect(),
            )
        })
        .collect();
    (ulids, by_i)
}

fn expected(all: &[i64], del: (i64, i64)) -> Vec<i64> {
    all.iter()
        .copied()
        .filter(|t| *t < del.0 || *t > del.1)
        .collect()
}

/// One block (two series, from 3 h to 2 h ago) in the data directory and
/// head samples (the last 30 minutes) appended in-process; a deletion over
/// both, then a snapshot, clean_tombstones and a restart, each checked
/// through the query API and promtool; viewers are refused, admins audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_snapshot_and_clean_tombstones_over_blocks_and_head() {
    let Some(promtool) = common::peer("promtool") else {
        return;
    };
    let dir = common::tempdir();
    let now = klaxon::model::now_millis();
    let now = now - now % STEP;
    let block_ts: Vec<i64> = (0..240).map(|k| now - 3 * 3_600_000 + k * STEP).collect();
    let head_ts: Vec<i64> = (0..120).map(|k| now - 30 * 60_000 + k * STEP).collect();
    let written = block::write_block(
        dir.path(),
        ["a", "b"]
            .iter()
            .map(|i| BlockSeries {
                labels: series(i),
                chunks: block::encode_chunks(
                    &block_ts.iter().map(|t| (*t, 1.0)).collect::<Vec<_>>(),
                    120,
                ),
            })
            .collect(),
        Default::default(),
    )
    .unwrap();
    let (app, base) = start(dir.path(), true).await;
    {
        let mut a = app.state.head.appender();
        for t in &head_ts {
            a.append(&series("a"), *t, 2.0).unwrap();
            a.append(&series("b"), *t, 2.0).unwrap();
        }
        a.commit().unwrap();
    }
    let c = reqwest::Client::new();
    let at = now + 3_600_000;
    let all: Vec<i64> = block_ts.iter().chain(&head_ts).copied().collect();
    assert_eq!(times(&c, &base, at).await["a"], all);

    // A viewer may not; an admin deletes a's samples from 2.5 h to 20 min
    // ago (the block's tail and the head's start).
    let del = (now - 150 * 60_000, now - 20 * 60_000);
    let url = format!(
        "{base}/api/v1/admin/tsdb/delete_series?match[]=adm_metric%7Bi%3D%22a%22%7D&start={}&end={}",
        del.0 as f64 / 1000.0,
        del.1 as f64 / 1000.0
    );
    let (code, body) = post(&c, &url, "tok-viewer").await;
    assert_eq!(code, 403, "{body}");
    assert_eq!(post(&c, &url, "tok-admin").await, (204, String::new()));
    let got = times(&c, &base, at).await;
    assert_eq!(got["a"], expected(&all, del));
    assert_eq!(got["b"], all);
    // Prometheus' parameter errors.
    let (code, body) = post(
        &c,
        &format!("{base}/api/v1/admin/tsdb/delete_series"),
        "tok-admin",
    )
    .await;
    assert_eq!(code, 400);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"], "no match[] parameter provided");
    assert_eq!(v["errorType"], "bad_data");

    // The block's tombstones file is on disk.
    let block_dir = dir.path().join(&written.ulid);
    assert!(
        std::fs::metadata(block_dir.join("tombstones"))
            .unwrap()
            .len()
            > 9
    );

    // Snapshot: the block hard-linked, the head written as a block;
    // promtool lists both and dumps the data without a's deleted samples.
    let (code, body) = post(
        &c,
        &format!("{base}/api/v1/admin/tsdb/snapshot"),
        "tok-admin",
    )
    .await;
    assert_eq!(code, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["status"], "success");
    let name = v["data"]["name"].as_str().unwrap().to_string();
    let snap = dir.path().join("snapshots").join(&name);
    let snap_blocks = block_dirs(&snap);
    assert_eq!(snap_blocks.len(), 2, "{snap_blocks:?}");
    assert!(snap_blocks.iter().any(|b| b.ends_with(&written.ulid)));
    let (ulids, dumped) = promtool_read(&promtool, &snap_blocks);
    assert_eq!(ulids.len(), 2);
    assert_eq!(dumped["a"], expected(&all, del));
    assert_eq!(dumped["b"], all);
    // skip_head=true: only the block; a bad boolean is Prometheus' error.
    let (code, body) = post(
        &c,
        &format!("{base}/api/v1/admin/tsdb/snapshot?skip_head=true"),
        "tok-admin",
    )
    .await;
    assert_eq!(code, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    let skip = dir
        .path()
        .join("snapshots")
        .join(v["data"]["name"].as_str().unwrap());
    assert_eq!(block_dirs(&skip).len(), 1);
    let (code, body) = post(
        &c,
        &format!("{base}/api/v1/admin/tsdb/snapshot?skip_head=maybe"),
        "tok-admin",
    )
    .await;
    assert_eq!(code, 400, "{body}");
    assert!(
        body.contains("invalid parameter \\\"skip_head\\\""),
        "{body}"
    );

    // clean_tombstones: the block is rewritten without a's deleted
    // samples and without tombstones.
    let (code, _) = post(
        &c,
        &format!("{base}/api/v1/admin/tsdb/clean_tombstones"),
        "tok-admin",
    )
    .await;
    assert_eq!(code, 204);
    assert!(!block_dir.exists());
    let blocks = block_dirs(dir.path());
    assert_eq!(blocks.len(), 1);
    assert_eq!(
        std::fs::metadata(blocks[0].join("tombstones"))
            .unwrap()
            .len(),
        9
    );
    let (_, dumped) = promtool_read(&promtool, &blocks);
    assert_eq!(dumped["a"], expected(&block_ts, del));
    assert_eq!(dumped["b"], block_ts);
    let got = times(&c, &base, at).await;
    assert_eq!(got["a"], expected(&all, del));

    // Audited with the caller's name.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = c
            .get(format!("{base}/api/v1/events/audit?kind=change&limit=100"))
            .bearer_auth("tok-viewer")
            .send()
            .await
            .unwrap();
        let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
        let ev = v["data"]["events"].as_array().cloned().unwrap_or_default();
        let found = |action: &str| {
            ev.iter()
                .any(|e| e["data"]["action"] == action && e["data"]["who"] == "a")
        };
        if found("tsdb_delete_series") && found("tsdb_snapshot") && found("tsdb_clean_tombstones") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "admin actions not audited: {ev:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // After a restart (the head replayed from the WAL) the deleted
    // samples stay deleted.
    app.stop().await;
    let (app, base) = start(dir.path(), true).await;
    let got = times(&c, &base, at).await;
    assert_eq!(got["a"], expected(&all, del));
    assert_eq!(got["b"], all);
    app.stop().await;
}

/// With `--web.enable-admin-api` off every admin endpoint answers as
/// Prometheus 2.42 does without its flag (same status and body).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_api_off_answers_as_prometheus() {
    let Some(prometheus) = common::peer("prometheus") else {
        return;
    };
    let pdir = common::tempdir();
    std::fs::write(pdir.path().join("prometheus.yml"), "global: {}\n").unwrap();
    let port = common::free_port();
    let _prom = common::start_prometheus(&prometheus, pdir.path(), port, &[]).await;
    let dir = common::tempdir();
    let (app, base) = start(dir.path(), false).await;
    let c = reqwest::Client::new();
    for (method, path) in [
        ("POST", "snapshot"),
        ("PUT", "delete_series?match[]=up"),
        ("POST", "clean_tombstones"),
    ] {
        let send = |url: String, token: Option<&str>| {
            let mut rb = c.request(method.parse().unwrap(), url);
            if let Some(t) = token {
                rb = rb.bearer_auth(t);
            }
            async move {
                let r = rb.send().await.unwrap();
                let code = r.status().as_u16();
                let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
                (code, v)
            }
        };
        let want = send(
            format!("http://127.0.0.1:{port}/api/v1/admin/tsdb/{path}"),
            None,
        )
        .await;
        assert_eq!(want.0, 500, "{:?}", want.1);
        let mut got = send(
            format!("{base}/api/v1/admin/tsdb/{path}"),
            Some("tok-admin"),
        )
        .await;
        // klaxon adds its request id to every error body.
        assert!(got.1["request_id"].is_string());
        got.1.as_object_mut().unwrap().remove("request_id");
        assert_eq!(got, want, "{method} {path}");
        // The role is checked first: a viewer is refused either way.
        let viewer = send(
            format!("{base}/api/v1/admin/tsdb/{path}"),
            Some("tok-viewer"),
        )
        .await;
        assert_eq!(viewer.0, 403);
    }
    app.stop().await;
}

/// Recording rules backfilled from a real Prometheus 2.42 (serving
/// promtool-backfilled history) by `klaxon tsdb create-blocks-from rules`
/// and by `promtool tsdb create-blocks-from rules` with the same flags:
/// promtool dumps the same series and samples from both outputs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_backfill_writes_what_promtool_writes() {
    let (Some(promtool), Some(prometheus)) = (common::peer("promtool"), common::peer("prometheus"))
    else {
        return;
    };
    let dir = common::tempdir();
    let now = klaxon::model::now_millis();
    let start = now - 8 * 3_600_000;
    let data = crate::tsdb_blocks::generate(20, 7 * 240, start);
    let om = dir.path().join("in.om");
    std::fs::write(&om, crate::tsdb_blocks::openmetrics(&data)).unwrap();
    crate::tsdb_blocks::run(
        Command::new(&promtool)
            .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
            .arg(&om)
            .arg(dir.path().join("prom-data")),
    );
    std::fs::write(dir.path().join("prometheus.yml"), "global: {}\n").unwrap();
    let port = common::free_port();
    let _prom = common::start_prometheus(&prometheus, dir.path(), port, &[]).await;
    std::fs::write(
        dir.path().join("rules.yml"),
        r#"groups:
  - name: zone
    interval: 1m
    rules:
      - record: zone:k_requests:rate5m
        expr: sum by (zone) (rate(k_requests_total[5m]))
        labels:
          source: backfill
      - alert: NotBackfilled
        expr: k_temperature > 1000
  - name: inst
    interval: 45s
    rules:
      - record: k_temperature:max
        expr: max by (inst, zone) (k_temperature)
        labels:
          zone: overridden
"#,
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let (s, e) = (
        (start / 1000 + 1800).to_string(),
        (now / 1000 - 3600).to_string(),
    );
    let flags = |out: &str| {
        vec![
            "tsdb".to_string(),
            "create-blocks-from".into(),
            "rules".into(),
            format!("--url={url}"),
            format!("--start={s}"),
            format!("--end={e}"),
            format!("--output-dir={out}"),
            "--eval-interval=30s".into(),
            "rules.yml".into(),
        ]
    };
    crate::tsdb_blocks::run(
        Command::new(&promtool)
            .args(flags("promtool-out"))
            .current_dir(dir.path()),
    );
    crate::tsdb_blocks::run(
        Command::new(env!("CARGO_BIN_EXE_klaxon"))
            .args(flags("klaxon-out"))
            .current_dir(dir.path()),
    );
    let want = crate::tsdb_blocks::dump(&promtool, &dir.path().join("promtool-out"));
    let got = crate::tsdb_blocks::dump(&promtool, &dir.path().join("klaxon-out"));
    assert!(want.len() >= 4, "{:?}", want.keys().collect::<Vec<_>>());
    assert!(want.values().all(|s| s.len() > 100));
    assert!(want.keys().any(|l| l.get("source") == Some("backfill")));
    assert!(want
        .keys()
        .all(|l| l.metric_name() != "k_temperature:max" || l.get("zone") == Some("overridden")));
    crate::tsdb_blocks::assert_same(&got, &want);

    // An unreachable source: promtool's failure message, exit status 1.
    let mut bad = flags("bad-out");
    bad[3] = format!("--url=http://127.0.0.1:{}", common::free_port());
    let out = Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(&bad)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rule importer error:") && err.contains("zone:k_requests:rate5m"),
        "{err}"
    );
    assert!(err.contains("error importing rules"), "{err}");
}

/// klaxon's own counter `name` from /metrics.
async fn counter(c: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = c
        .get(format!("{base}/metrics"))
        .bearer_auth("tok-viewer")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

/// Prometheus' planner on a running klaxon (compaction passes every
/// second with a 4 s block range): a 3 h block whose tombstones cover
/// more than 5% of its series is rewritten at the next pass, without the
/// deleted series and without tombstones; at 5% or less it keeps them.
/// Queries over the last hour read the head only (no block opened).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compaction_rewrites_a_block_with_tombstones_on_over_5_percent_of_its_series() {
    let dir = common::tempdir();
    let now = klaxon::model::now_millis();
    let now = now - now % STEP;
    let h = 3_600_000;
    let write = |n: usize, from: i64, to: i64| {
        let ts: Vec<(i64, f64)> = (from..to)
            .step_by(STEP as usize)
            .map(|t| (t, 1.0))
            .collect();
        let series = (0..n)
            .map(|i| BlockSeries {
                labels: series(&i.to_string()),
                chunks: block::encode_chunks(&ts, 120),
            })
            .collect();
        let opts = block::WriteOptions {
            range: Some((from, to)),
            ..Default::default()
        };
        block::write_block(dir.path(), series, opts).unwrap()
    };
    // 40 series from 5 h to 2 h ago, and a newer block (never rewritten
    // by this rule) from 2 h to 1 h ago.
    let big = write(40, now - 5 * h, now - 2 * h);
    let newest = write(1, now - 2 * h, now - h);
    // No head data: with a 4 s block range the head would be cut into
    // 4 s blocks.
    let (app, base) = start_with(dir.path(), true, "  min_block_duration: 4s\n").await;
    let c = reqwest::Client::new();
    let at = now + 60_000;

    // The last hour reads no block; 4 h back reads both.
    let opened = "klaxon_tsdb_blocks_queried_total";
    let before = counter(&c, &base, opened).await;
    let query = |q: &str| {
        let c = c.clone();
        let url = format!("{base}/api/v1/query?query={q}&time={}", at as f64 / 1000.0);
        async move {
            let r = c.get(url).bearer_auth("tok-viewer").send().await.unwrap();
            let v: Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
            assert_eq!(v["status"], "success", "{v}");
            v["data"]["result"].as_array().unwrap().len()
        }
    };
    assert_eq!(query("adm_metric%5B30m%5D").await, 0);
    assert_eq!(query("rate(adm_metric%5B5m%5D)").await, 0);
    assert_eq!(query("adm_metric").await, 0);
    assert_eq!(counter(&c, &base, opened).await, before);
    assert_eq!(query("adm_metric%5B4h%5D").await, 40);
    assert_eq!(counter(&c, &base, opened).await, before + 2.0);

    let delete = |i: usize| {
        let c = c.clone();
        let url = format!(
            "{base}/api/v1/admin/tsdb/delete_series?match[]=adm_metric%7Bi%3D%22{i}%22%7D&start={}&end={}",
            (now - 6 * h) as f64 / 1000.0,
            now as f64 / 1000.0
        );
        async move { assert_eq!(post(&c, &url, "tok-admin").await, (204, String::new())) }
    };
    // 2 of 40 (2/41 ≤ 5%): passes go by, the block keeps its tombstones.
    delete(0).await;
    delete(1).await;
    let written = counter(&c, &base, "klaxon_tsdb_compactions_total").await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let big_dir = dir.path().join(&big.ulid);
    assert!(big_dir.exists());
    assert!(std::fs::metadata(big_dir.join("tombstones")).unwrap().len() > 9);
    assert_eq!(
        counter(&c, &base, "klaxon_tsdb_compactions_total").await,
        written
    );
    // A third (3/41 > 5%): rewritten at the next pass.
    delete(2).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while big_dir.exists() {
        assert!(Instant::now() < deadline, "the block was not rewritten");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let blocks = block_dirs(dir.path());
    assert_eq!(blocks.len(), 2, "{blocks:?}");
    assert!(blocks.iter().any(|b| b.ends_with(&newest.ulid)));
    let new = blocks.iter().find(|b| !b.ends_with(&newest.ulid)).unwrap();
    let meta: Value =
        serde_json::from_slice(&std::fs::read(new.join("meta.json")).unwrap()).unwrap();
    assert_eq!(meta["minTime"], big.min_time);
    assert_eq!(meta["maxTime"], big.max_time);
    assert_eq!(meta["compaction"]["parents"][0]["ulid"], big.ulid.as_str());
    assert_eq!(meta["stats"]["numSeries"], 37);
    assert_eq!(meta["stats"]["numSamples"], 37 * 720);
    assert_eq!(std::fs::metadata(new.join("tombstones")).unwrap().len(), 9);
    let got = times(&c, &base, at).await;
    assert_eq!(got.len(), 37, "{:?}", got.keys());
    assert!(!got.contains_key("0") && !got.contains_key("2"));
    app.stop().await;
}
