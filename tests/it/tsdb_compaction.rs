//! Compaction and retention in a running klaxon (the binary, scraping
//! `../shared/tools/synth_target.py`, with blocks of a few seconds):
//! promtool 2.42 reads the blocks it writes and dumps exactly what the
//! API answers; answers are the same before and after compaction and
//! across restarts; SIGKILLs during compaction neither lose nor
//! duplicate samples; a failing disk is retried; retention by size
//! deletes the oldest blocks first.

use crate::common;
use crate::tsdb_blocks::{copy_dir, dump, get, run, wait_ready, Samples};
use common::{free_port, Proc, Rng};

use klaxon::model::{Labels, STALE_NAN_BITS};
use klaxon::tsdb::block::{self, Block, BlockMeta};
use klaxon::tsdb::Queryable;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Setup {
    dir: tempfile::TempDir,
    _synth: Proc,
    config: PathBuf,
    data: PathBuf,
}

/// A synthetic target and a klaxon config scraping it every `interval`
/// with blocks of `block`, plus extra `storage:` lines.
fn setup(interval: &str, block: &str, storage: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let synth = Proc(
        Command::new("python3")
            .arg(common::shared("tools/synth_target.py"))
            .arg(format!("--port={port}"))
            .arg("--series=20")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start synth_target.py"),
    );
    let data = dir.path().join("data");
    let config = dir.path().join("klaxon.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: {interval}\nstorage:\n  path: {}\n  min_block_duration: {block}\n{storage}scrape_configs:\n  - job_name: synth\n    static_configs:\n      - targets: ['127.0.0.1:{port}']\n",
            data.display()
        ),
    )
    .unwrap();
    Setup {
        dir,
        _synth: synth,
        config,
        data,
    }
}

struct Kx {
    proc: Proc,
    base: String,
}

impl Setup {
    async fn start(&self, c: &reqwest::Client, env: &[(&str, &str)]) -> Kx {
        let port = free_port();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("klaxon.log"))
            .unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_klaxon"));
        cmd.arg("run")
            .arg(format!("--config={}", self.config.display()))
            .arg(format!("--listen=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut proc = Proc(cmd.spawn().expect("start klaxon"));
        let base = format!("http://127.0.0.1:{port}");
        wait_ready(c, &base, &mut proc, "klaxon").await;
        Kx { proc, base }
    }

    /// Blocks now under the data directory (temporary ones left out).
    fn metas(&self) -> Vec<BlockMeta> {
        let mut out: Vec<BlockMeta> = std::fs::read_dir(&self.data)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| std::fs::read(e.path().join("meta.json")).ok())
                    .filter_map(|b| serde_json::from_slice(&b).ok())
                    .collect()
            })
            .unwrap_or_default();
        out.sort_by_key(|m| m.min_time);
        out
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("klaxon.log")).unwrap_or_default()
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// Every sample at or before `t` (ms) of every series, as the API returns
/// them (a range selector over a day).
async fn raw(c: &reqwest::Client, base: &str, t: i64) -> BTreeMap<Labels, Samples> {
    let d = get(
        c,
        base,
        "/api/v1/query",
        &[
            ("query", r#"{__name__=~".+"}[1d]"#.to_string()),
            ("time", format!("{}.{:03}", t / 1000, t % 1000)),
        ],
    )
    .await;
    let mut out = BTreeMap::new();
    for s in d["result"].as_array().expect("matrix") {
        let labels = Labels::from_pairs(
            s["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())),
        );
        let samples: Samples = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    (p[0].as_f64().unwrap() * 1000.0).round() as i64,
                    p[1].as_str().unwrap().parse::<f64>().unwrap(),
                )
            })
            .collect();
        out.insert(labels, samples);
    }
    out
}

async fn metric(c: &reqwest::Client, base: &str, name: &str) -> f64 {
    let text = c
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} not in /metrics"))
}

async fn query_range(c: &reqwest::Client, base: &str, from: i64, to: i64) -> Value {
    get(
        c,
        base,
        "/api/v1/query_range",
        &[
            ("query", r#"{job="synth"}"#.to_string()),
            ("start", format!("{}", from as f64 / 1000.0)),
            ("end", format!("{}", to as f64 / 1000.0)),
            ("step", "0.5".to_string()),
        ],
    )
    .await
}

async fn wait_for<F: FnMut() -> bool>(what: &str, limit: Duration, mut f: F) {
    let deadline = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Samples of `m` up to `t`, stale markers left out (the API leaves
/// them out of range vectors).
fn upto(m: &BTreeMap<Labels, Samples>, t: i64) -> BTreeMap<Labels, Samples> {
    m.iter()
        .map(|(l, s)| {
            let s: Samples = s
                .iter()
                .copied()
                .filter(|(ts, v)| *ts <= t && v.to_bits() != STALE_NAN_BITS)
                .collect();
            (l.clone(), s)
        })
        .filter(|(_, s)| !s.is_empty())
        .collect()
}

fn assert_equal(got: &BTreeMap<Labels, Samples>, want: &BTreeMap<Labels, Samples>, what: &str) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}"
    );
    for (l, w) in want {
        let g = &got[l];
        let same = g.len() == w.len()
            && g.iter()
                .zip(w)
                .all(|(a, b)| a.0 == b.0 && (a.1 == b.1 || (a.1.is_nan() && b.1.is_nan())));
        assert!(same, "{what}: {l:?}\n got {g:?}\nwant {w:?}");
    }
}

/// Copies the block directories (not the WAL) for promtool.
fn copy_blocks(data: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(data).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if block::ulid::parse(&name).is_some() {
            copy_dir(&e.path(), &to.join(&name));
        }
    }
}

/// Stops a klaxon with SIGTERM and waits for it.
fn stop(mut k: Kx) {
    // SAFETY: kill(2) on a child we own.
    unsafe { libc::kill(k.proc.0.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while k.proc.0.try_wait().ok().flatten().is_none() {
        assert!(Instant::now() < deadline, "klaxon did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Scraped every second with 10 s blocks: klaxon writes blocks from its
/// head and merges them (30 s, level 2); `promtool tsdb list` lists them
/// and `promtool tsdb dump` of the blocks equals the API's raw samples
/// for their range; a range query over data read from the head before
/// compaction answers the same from blocks after it and after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scraped_data_is_compacted_into_blocks_promtool_reads() {
    let Some(promtool) = common::peer("promtool") else {
        return;
    };
    let s = setup("1s", "10s", "  retention: 1h\n");
    let c = client();
    let k = s.start(&c, &[]).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let now = klaxon::model::now_millis();
    let (from, to) = (now - 3000, now - 1000);
    let before = query_range(&c, &k.base, from, to).await;
    assert!(!before["result"].as_array().unwrap().is_empty());
    assert!(s.metas().is_empty(), "no block yet");

    wait_for("a level-2 block", Duration::from_secs(120), || {
        s.metas().iter().any(|m| m.compaction.level >= 2)
    })
    .await;
    let metas = s.metas();
    assert!(metas.first().unwrap().min_time <= from);
    assert_eq!(
        query_range(&c, &k.base, from, to).await,
        before,
        "after compaction"
    );
    assert!(metric(&c, &k.base, "klaxon_tsdb_compactions_total").await >= 3.0);
    assert_eq!(
        metric(&c, &k.base, "klaxon_tsdb_compactions_failed_total").await,
        0.0
    );
    stop(k);

    // The blocks as they are after the stop.
    let metas = s.metas();
    let end = metas.iter().map(|m| m.max_time).max().unwrap() - 1;
    for w in metas.windows(2) {
        assert!(w[0].max_time <= w[1].min_time, "overlap: {metas:?}");
    }
    let copy = s.dir.path().join("copy");
    copy_blocks(&s.data, &copy);
    let listed = run(Command::new(&promtool).args(["tsdb", "list"]).arg(&copy));
    for m in &metas {
        assert!(listed.contains(&m.ulid), "{listed}");
    }
    let dumped = upto(&dump(&promtool, &copy), end);
    let total: usize = dumped.values().map(Vec::len).sum();
    assert!(total > 20 * 20, "{total} samples in blocks");

    let k = s.start(&c, &[]).await;
    let api_raw = upto(&raw(&c, &k.base, end).await, end);
    assert_equal(&api_raw, &dumped, "API vs promtool dump after restart");
    assert_eq!(
        query_range(&c, &k.base, from, to).await,
        before,
        "after restart"
    );
    stop(k);
}

/// Every sample of every block, block by block, read with klaxon's own
/// reader: (series, time) pairs held by two blocks are duplicates.
fn per_block_samples(data: &Path) -> (BTreeMap<(Labels, i64), usize>, usize) {
    let loaded = block::load_blocks(data);
    assert!(loaded.failed.is_empty(), "{:?}", loaded.failed);
    let mut seen: BTreeMap<(Labels, i64), usize> = BTreeMap::new();
    for b in &loaded.blocks {
        let b: &Block = b;
        for sd in b.querier(i64::MIN, i64::MAX).select(&[]) {
            for (t, _) in sd.samples {
                *seen.entry((sd.labels.clone(), t)).or_default() += 1;
            }
        }
    }
    (seen, loaded.blocks.len())
}

/// Blocks of 2 s, every write pausing 700 ms before its rename: klaxon
/// is SIGKILLed at random moments (often inside a compaction) and
/// restarted, eight times. What the API answered before each kill is
/// still answered after the restart, no sample is in two blocks, and no
/// temporary block is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_compaction_neither_loses_nor_duplicates_samples() {
    let s = setup("200ms", "2s", "  retention: 1h\n");
    let c = client();
    let mut rng = Rng(0x5eed_c0ffee);
    let env = [("KLAXON_TEST_BLOCK_FAULT", "pause=700")];
    let mut k = s.start(&c, &env).await;
    for round in 0..8 {
        tokio::time::sleep(Duration::from_millis(2500 + rng.below(3000))).await;
        let t = klaxon::model::now_millis() - 500;
        let before = upto(&raw(&c, &k.base, t).await, t);
        drop(k); // SIGKILL
        let k2 = s.start(&c, &env).await;
        let after = upto(&raw(&c, &k2.base, t).await, t);
        assert_equal(&after, &before, &format!("round {round}"));
        let (seen, n) = per_block_samples(&s.data);
        let dup = seen.iter().find(|(_, n)| **n > 1);
        assert!(dup.is_none(), "round {round}: duplicated {dup:?}");
        if round == 7 {
            assert!(n >= 1, "no block written");
        }
        k = k2;
    }
    let log = s.log();
    assert!(!log.contains("panicked"), "{log}");
    drop(k);
    let (_, n) = per_block_samples(&s.data);
    let leftovers = std::fs::read_dir(&s.data)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(block::TMP_SUFFIX))
        .count();
    // The last kill may have hit a write; the next start removes it.
    assert!(leftovers <= 1 && n >= 1);
}

/// The first three block writes fail as on a full disk: each is counted
/// in klaxon_tsdb_compactions_failed_total, no block appears meanwhile,
/// every temporary directory seen is gone afterwards, and the compaction
/// succeeds on a later pass.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_during_compaction_aborts_cleanly_and_is_retried() {
    let s = setup("500ms", "2s", "");
    let c = client();
    let k = s.start(&c, &[("KLAXON_TEST_BLOCK_FAULT", "fail=3")]).await;
    let tmp_dirs = |data: &Path| -> Vec<String> {
        std::fs::read_dir(data)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(block::TMP_SUFFIX))
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut seen: Vec<String> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while metric(&c, &k.base, "klaxon_tsdb_compactions_failed_total").await < 3.0 {
        assert!(Instant::now() < deadline, "no failed compaction counted");
        assert!(s.metas().is_empty(), "a block while writes fail");
        seen.extend(tmp_dirs(&s.data));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    wait_for(
        "a block after the failures",
        Duration::from_secs(60),
        || !s.metas().is_empty(),
    )
    .await;
    assert_eq!(
        metric(&c, &k.base, "klaxon_tsdb_compactions_failed_total").await,
        3.0
    );
    assert!(s.log().contains("No space left on device"));
    stop(k);
    let left = tmp_dirs(&s.data);
    assert!(left.is_empty(), "left behind: {left:?}");
    for d in &seen {
        assert!(!s.data.join(d).exists(), "{d} left behind");
    }
}

/// With blocks of 2 s and a size limit of the WAL plus a few blocks,
/// blocks are deleted oldest first: every deleted block ended before
/// every remaining one starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_by_size_deletes_the_oldest_blocks_first() {
    // The ranges stop at the head's (a tenth of 20 s is 2 s): no merges,
    // so a block disappears only through retention.
    let probe = setup("250ms", "2s", "  retention: 20s\n");
    let c = client();
    let k = probe.start(&c, &[]).await;
    wait_for("two blocks", Duration::from_secs(60), || {
        probe.metas().len() >= 2
    })
    .await;
    let wal = block::dir_size(&probe.data.join("wal"));
    let one = probe
        .metas()
        .iter()
        .map(|m| block::dir_size(&probe.data.join(&m.ulid)))
        .max()
        .unwrap();
    stop(k);
    drop(probe);
    // Room for the WAL (as it grows a little) and about three blocks.
    let limit = wal + wal / 2 + 3 * one;
    let s = setup(
        "250ms",
        "2s",
        &format!("  retention: 20s\n  retention_size: {limit}B\n"),
    );
    let k = s.start(&c, &[]).await;
    let mut seen: BTreeMap<String, BlockMeta> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        for m in s.metas() {
            seen.insert(m.ulid.clone(), m);
        }
        if metric(&c, &k.base, "klaxon_tsdb_size_retentions_total").await >= 1.0 && seen.len() >= 5
        {
            break;
        }
        assert!(Instant::now() < deadline, "no size retention: {seen:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let present = s.metas();
    let gone: Vec<&BlockMeta> = seen
        .values()
        .filter(|m| !present.iter().any(|p| p.ulid == m.ulid))
        .collect();
    assert!(!gone.is_empty());
    let first_left = present.iter().map(|m| m.min_time).min().unwrap();
    for g in &gone {
        assert!(g.max_time <= first_left, "{g:?} deleted before {present:?}");
    }
    // Time retention (20 s) did not do it.
    assert_eq!(
        metric(&c, &k.base, "klaxon_tsdb_time_retentions_total").await,
        0.0
    );
    stop(k);
}
