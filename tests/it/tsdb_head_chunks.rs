//! Full head chunks on disk with a real process: klaxon scrapes
//! `../shared/tools/synth_target.py` every 100 ms, so chunks fill within
//! seconds; full ones go to `storage.path/chunks_head/`, come back after a
//! SIGKILL (a torn tail cut off, the WAL filling in) and stay out of the
//! heap.

use crate::common::free_port;
use crate::tsdb_wal::{client, now_secs, start, synth, synth_present, until};
use std::path::Path;
use std::time::Duration;

fn write_config(dir: &Path, data: &Path, target: u16) -> std::path::PathBuf {
    let cfg = dir.join("klaxon.yml");
    std::fs::write(
        &cfg,
        format!(
            "global:\n  scrape_interval: 100ms\n  scrape_timeout: 100ms\n\
             storage:\n  path: {}\n  retention: 1h\n\
             scrape_configs:\n- job_name: synth\n  static_configs:\n  - targets: ['127.0.0.1:{target}']\n",
            data.display()
        ),
    )
    .unwrap();
    cfg
}

/// Chunks are written while scraping, a range query answers the same
/// before and after a SIGKILL restart with a torn chunk file tail, and after
/// the restart the full chunks are in the files, not in the heap.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_chunks_are_written_survive_sigkill_and_stay_out_of_the_heap() {
    if !synth_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let tport = free_port();
    let _target = synth(tport, 50);
    let cfg = write_config(dir.path(), &data, tport);
    let log = dir.path().join("klaxon.log");
    let c = client();
    let mut k = start(&cfg, &log);
    k.wait_ready(&c).await;

    // Five full chunks per series (120 samples each) written out.
    let series = until(180, "full chunks in the files", || async {
        let series = k.metric(&c, "klaxon_tsdb_head_series").await?;
        let mapped = k.metric(&c, "klaxon_tsdb_head_mmapped_chunks").await?;
        (series > 50.0 && mapped >= 5.0 * series).then_some(series)
    })
    .await;
    let files: Vec<_> = std::fs::read_dir(data.join("chunks_head"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, ["000001"], "head chunk files");

    // Everything counted above is older than `e`; a second later every
    // scrape started before `e` is committed.
    let e = now_secs();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let et = format!("{e:.3}");
    let range = "{job=\"synth\"}[10m]";
    let before = k.query(&c, range, &et).await;
    let samples: usize = before["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| s["values"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(
        samples as f64 >= series * 600.0,
        "samples before the kill: {samples}"
    );

    k.proc.0.kill().unwrap(); // SIGKILL
    k.proc.0.wait().unwrap();
    // The last chunk reached the file only in part.
    let f = data.join("chunks_head/000001");
    let len = std::fs::metadata(&f).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(len - 7)
        .unwrap();

    let mut k = start(&cfg, &log);
    k.wait_ready(&c).await;
    let after = k.query(&c, range, &et).await;
    assert!(after == before, "samples differ after the SIGKILL restart");
    assert_eq!(
        k.metric(&c, "klaxon_tsdb_mmap_chunk_corruptions_total")
            .await,
        Some(1.0)
    );
    assert!(
        k.log_text().contains("000001 at offset"),
        "the corruption names file and offset"
    );
    // The restored chunks are referenced, not in memory: the heap holds
    // about one open chunk per series.
    let mapped = k
        .metric(&c, "klaxon_tsdb_head_mmapped_chunks")
        .await
        .unwrap();
    let heap = k.metric(&c, "klaxon_tsdb_head_chunk_bytes").await.unwrap();
    let on_disk = k
        .metric(&c, "klaxon_tsdb_head_chunks_storage_size_bytes")
        .await
        .unwrap();
    assert!(
        mapped >= 5.0 * series - 1.0,
        "mmapped chunks after restart: {mapped}"
    );
    assert!(
        heap * 2.0 < on_disk,
        "heap chunk bytes {heap} vs head chunk files {on_disk}"
    );
    // New chunks go on being written, to a new file.
    until(60, "a second head chunk file", || async {
        data.join("chunks_head/000002").exists().then_some(())
    })
    .await;
}
