//! Scrape sharding with the `hashmod` relabel recipe of docs/scaling.md:
//! N klaxon replicas with the same file_sd targets each keep exactly the
//! targets whose address hashes to their index, and the split is the one
//! Prometheus 2.42 makes with the same configs.

use crate::common;
use common::{free_port, peer};

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const N: usize = 3;
const TARGETS: u16 = 30;

/// The docs/scaling.md recipe for replica `i` of `n`, as one scrape job.
fn shard_job(job: &str, sd_file: &std::path::Path, i: usize, n: usize) -> String {
    format!(
        "  - job_name: {job}
    scrape_interval: 1h
    file_sd_configs: [{{files: ['{}']}}]
    relabel_configs:
      - source_labels: [__address__]
        modulus: {n}
        target_label: __tmp_hash
        action: hashmod
      - source_labels: [__tmp_hash]
        regex: '{i}'
        action: keep
",
        sd_file.display()
    )
}

/// Addresses of the active targets per scrape pool, once `want` targets
/// (active + dropped) are known.
async fn targets(
    base: &str,
    want: usize,
) -> (BTreeMap<String, BTreeSet<String>>, serde_json::Value) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = reqwest::get(format!("{base}/api/v1/targets"))
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
        let active = v["data"]["activeTargets"].as_array().unwrap();
        let dropped = v["data"]["droppedTargets"].as_array().unwrap();
        if active.len() + dropped.len() >= want {
            let mut by_pool: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
            for t in active {
                by_pool
                    .entry(t["scrapePool"].as_str().unwrap().to_string())
                    .or_default()
                    .insert(
                        t["discoveredLabels"]["__address__"]
                            .as_str()
                            .unwrap()
                            .to_string(),
                    );
            }
            return (by_pool, v);
        }
        assert!(
            Instant::now() < deadline,
            "{base}: only {} targets discovered",
            active.len() + dropped.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hashmod_splits_targets_like_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    let sd = dir.path().join("targets.json");
    // Nothing listens there: discovery and relabeling are what is tested.
    let addrs: Vec<String> = (0..TARGETS)
        .map(|i| format!("127.0.0.1:{}", 20_000 + i * 7))
        .collect();
    std::fs::write(
        &sd,
        serde_json::json!([{"targets": addrs, "labels": {"env": "test"}}]).to_string(),
    )
    .unwrap();

    // N klaxon replicas, the same targets, shard i keeps hash == i.
    let mut apps = Vec::new();
    let mut kept: Vec<BTreeSet<String>> = Vec::new();
    for i in 0..N {
        let yaml = format!(
            "storage: {{path: '{}'}}\nscrape_configs:\n{}",
            dir.path().join(format!("store-{i}")).display(),
            shard_job("node", &sd, i, N)
        );
        let cfg = klaxon::settings::load_str(&yaml, "shard.yml").unwrap();
        let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
            .await
            .unwrap();
        let (by_pool, v) = targets(&format!("http://{}", app.addr), addrs.len()).await;
        let active = by_pool.get("node").cloned().unwrap_or_default();
        let dropped = v["data"]["droppedTargets"].as_array().unwrap().len();
        assert_eq!(active.len() + dropped, addrs.len(), "replica {i}");
        // Each replica's targets are the ones whose hash is its index.
        for a in &active {
            assert_eq!(
                klaxon::config::relabel::hash_mod(a, N as u64),
                i as u64,
                "{a}"
            );
        }
        kept.push(active);
        apps.push(app);
    }
    // Every target is kept by exactly one replica, and none is left out.
    let mut count: BTreeMap<&String, usize> = BTreeMap::new();
    for set in &kept {
        for a in set {
            *count.entry(a).or_default() += 1;
        }
    }
    assert_eq!(count.len(), addrs.len(), "{kept:?}");
    assert!(count.values().all(|&c| c == 1), "{count:?}");
    // With 30 targets no shard should be empty (a degenerate split would
    // hide a broken hash).
    assert!(kept.iter().all(|s| !s.is_empty()), "{kept:?}");
    for a in apps {
        a.stop().await;
    }

    // Prometheus 2.42 with the same N jobs (one per replica), plus a job
    // that exposes the raw hash mod 1000 as a label.
    let Some(bin) = peer("prometheus") else {
        return;
    };
    let mut y = String::from("global: {scrape_interval: 1h}\nscrape_configs:\n");
    for i in 0..N {
        y.push_str(&shard_job(&format!("shard{i}"), &sd, i, N));
    }
    y.push_str(&format!(
        "  - job_name: hash
    file_sd_configs: [{{files: ['{}']}}]
    relabel_configs:
      - source_labels: [__address__]
        modulus: 1000
        target_label: hash
        action: hashmod
",
        sd.display()
    ));
    std::fs::write(dir.path().join("prometheus.yml"), y).unwrap();
    let port = free_port();
    let _prom = common::start_prometheus(&bin, dir.path(), port, &[]).await;
    let base = format!("http://127.0.0.1:{port}");
    // (N + 1) jobs see every target once each.
    let (by_pool, v) = targets(&base, (N + 1) * addrs.len()).await;
    for (i, ours) in kept.iter().enumerate() {
        let theirs = by_pool
            .get(&format!("shard{i}"))
            .cloned()
            .unwrap_or_default();
        assert_eq!(ours, &theirs, "replica {i}");
    }
    // hash_mod equals Prometheus' value for every address.
    let mut checked = 0;
    for t in v["data"]["activeTargets"].as_array().unwrap() {
        if t["scrapePool"] != "hash" {
            continue;
        }
        let addr = t["discoveredLabels"]["__address__"].as_str().unwrap();
        let want: u64 = t["labels"]["hash"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            klaxon::config::relabel::hash_mod(addr, 1000),
            want,
            "{addr}"
        );
        checked += 1;
    }
    assert_eq!(checked, addrs.len());
}
