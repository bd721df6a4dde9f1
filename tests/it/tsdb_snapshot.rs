//! The memory snapshot with a real process: klaxon scrapes
//! `../shared/tools/synth_target.py` every 100 ms (full chunks go to the
//! head chunk files within seconds), is stopped with SIGTERM (a snapshot is
//! written), killed with SIGKILL (none: the WAL after the last one is
//! replayed), and started on a corrupted snapshot (ignored, counted, the
//! whole WAL replayed). Every restart answers the same range query as
//! before it, as soon as it is ready.

use crate::common::free_port;
use crate::tsdb_wal::{
    client, now_secs, start, start_with, synth, synth_present, terminate, until, Klaxon,
};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn write_config(dir: &Path, data: &Path, target: u16) -> PathBuf {
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

fn snapshots(data: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("chunk_snapshot."))
        })
        .collect();
    v.sort();
    v
}

const RANGE: &str = "{job=\"synth\"}[10m]";

/// The range query at a time every committed scrape is older than.
async fn settled_query(k: &Klaxon, c: &reqwest::Client) -> (String, Value) {
    let e = now_secs();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let et = format!("{e:.3}");
    let v = k.query(c, RANGE, &et).await;
    (et, v)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarts_after_sigterm_sigkill_and_a_corrupt_snapshot_answer_as_before() {
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
    // A full chunk per series in the files, the open ones in memory.
    until(120, "full chunks in the files", || async {
        let series = k.metric(&c, "klaxon_tsdb_head_series").await?;
        let mapped = k.metric(&c, "klaxon_tsdb_head_mmapped_chunks").await?;
        (series > 50.0 && mapped >= series).then_some(())
    })
    .await;
    let (t1, before) = settled_query(&k, &c).await;
    assert!(before["result"].as_array().is_some_and(|r| r.len() > 50));

    // SIGTERM: a snapshot; the restart reads it and no older WAL.
    terminate(&mut k.proc);
    let snaps = snapshots(&data);
    assert_eq!(snaps.len(), 1, "one snapshot after SIGTERM: {snaps:?}");
    let mut k = start(&cfg, &log);
    k.wait_ready(&c).await;
    assert!(
        k.query(&c, RANGE, &t1).await == before,
        "answers differ after the SIGTERM restart"
    );
    assert_eq!(
        k.metric(&c, "klaxon_tsdb_snapshot_loaded_total").await,
        Some(1.0)
    );
    assert!(k.log_text().contains("memory snapshot read"));

    // SIGKILL: no new snapshot; the old one plus the WAL written since.
    until(30, "chunks cut after the restart", || async {
        let series = k.metric(&c, "klaxon_tsdb_head_series").await?;
        let mapped = k.metric(&c, "klaxon_tsdb_head_mmapped_chunks").await?;
        (mapped >= 2.0 * series).then_some(())
    })
    .await;
    let (t2, before2) = settled_query(&k, &c).await;
    k.proc.0.kill().unwrap();
    k.proc.0.wait().unwrap();
    assert_eq!(snapshots(&data), snaps, "SIGKILL writes no snapshot");
    let mut k = start(&cfg, &log);
    k.wait_ready(&c).await;
    assert!(
        k.query(&c, RANGE, &t1).await == before,
        "first answers differ after the SIGKILL restart"
    );
    assert!(
        k.query(&c, RANGE, &t2).await == before2,
        "answers differ after the SIGKILL restart"
    );
    let (t3, before3) = settled_query(&k, &c).await;

    // A damaged snapshot: ignored, named with its offset, counted; the
    // whole WAL gives the same answers.
    terminate(&mut k.proc);
    let snaps = snapshots(&data);
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    let mut bytes = std::fs::read(&snaps[0]).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&snaps[0], &bytes).unwrap();
    let log_len = std::fs::metadata(&log).unwrap().len() as usize;
    let mut k = start(&cfg, &log);
    k.wait_ready(&c).await;
    for (t, want) in [(&t1, &before), (&t2, &before2), (&t3, &before3)] {
        assert!(
            k.query(&c, RANGE, t).await == *want,
            "answers at {t} differ after the corrupt-snapshot restart"
        );
    }
    assert_eq!(
        k.metric(&c, "klaxon_tsdb_snapshot_replay_error_total")
            .await,
        Some(1.0)
    );
    let text = k.log_text();
    let new = &text[log_len.min(text.len())..];
    let name = snaps[0].display().to_string();
    assert!(
        new.lines().any(|l| l.contains("memory snapshot unusable")
            && l.contains(&name)
            && l.contains("offset")),
        "log names the file and offset:\n{new}"
    );
    terminate(&mut k.proc);
}

/// Where two query answers differ: per series, the points of each.
fn differences(a: &Value, b: &Value) -> String {
    let points = |v: &Value| -> Vec<(String, Vec<String>)> {
        v["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                let pts = s["histograms"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|p| p.to_string())
                    .collect();
                (s["metric"].to_string(), pts)
            })
            .collect()
    };
    let (a, b) = (points(a), points(b));
    let mut out = format!("{} vs {} series\n", a.len(), b.len());
    for ((la, pa), (lb, pb)) in a.iter().zip(&b) {
        let first = pa.iter().zip(pb).position(|(x, y)| x != y);
        out += &format!(
            "{la} {} points vs {lb} {}; first difference at {first:?}: {:?} vs {:?}\n",
            pa.len(),
            pb.len(),
            first.and_then(|i| pa.get(i)),
            first.and_then(|i| pb.get(i)),
        );
    }
    out
}

/// Remote-writes `n` samples per series, one a second from `from_ms`, of
/// three native-histogram series: an integer counter (reset every 70
/// samples, so chunks are cut), a float histogram and one with custom
/// buckets.
async fn push_histograms(c: &reqwest::Client, k: &Klaxon, from_ms: i64, first: i64, n: i64) {
    use crate::tsdb_histogram_blocks::{float_hist, int_hist};
    use klaxon::model::histogram::{FloatHistogram, Span};
    use klaxon::model::Label;
    use klaxon::remote::proto::{TimeSeries, WriteRequest};
    use klaxon::remote::proto_hist::HistogramSample;
    use klaxon::tsdb::HistValue;
    let nhcb = |k: i64| {
        let x = (k % 50) as f64;
        HistValue::Float(FloatHistogram {
            schema: -53,
            count: 4.0 * x,
            sum: 3.0 * x,
            positive_spans: vec![Span::new(0, 4)],
            positive_buckets: vec![x, x, x, x],
            custom_values: vec![1.0, 5.0, 10.0],
            ..Default::default()
        })
    };
    let series = |name: &str, f: &dyn Fn(i64) -> HistValue| TimeSeries {
        labels: vec![
            Label {
                name: "__name__".into(),
                value: name.into(),
            },
            Label {
                name: "job".into(),
                value: "h".into(),
            },
        ],
        samples: Vec::new(),
        histograms: (first..first + n)
            .map(|k| HistogramSample {
                timestamp: from_ms + k * 1000,
                value: f(k),
            })
            .collect(),
        exemplars: Vec::new(),
    };
    let req = WriteRequest {
        timeseries: vec![
            series("h_ints", &|k| int_hist((k % 70 + 1) as u64)),
            series("h_floats", &float_hist),
            series("h_custom", &nhcb),
        ],
        metadata: Vec::new(),
    };
    crate::tsdb_histogram_blocks::remote_write(c, k.base(), &req).await;
}

/// Native histograms (integer, float, custom buckets) pushed by remote
/// write: full chunks reach the head chunk files, a SIGTERM restart reads
/// them from the files and the snapshot, a SIGKILL restart from the files
/// and the WAL; every restart answers as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn histograms_survive_sigterm_and_sigkill_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cfg = dir.path().join("klaxon.yml");
    std::fs::write(
        &cfg,
        format!(
            "storage:\n  path: {}\n  retention: 1h\nscrape_configs: []\n",
            data.display()
        ),
    )
    .unwrap();
    let log = dir.path().join("klaxon.log");
    let c = client();
    let flags = ["--web.enable-remote-write-receiver"];
    let mut k = start_with(&cfg, &log, &flags);
    k.wait_ready(&c).await;
    let now_ms = (now_secs() * 1000.0) as i64;
    let from = now_ms - 30 * 60_000;
    for batch in 0..10 {
        push_histograms(&c, &k, from, batch * 100, 100).await;
    }
    until(60, "histogram chunks in the files", || async {
        let mapped = k.metric(&c, "klaxon_tsdb_head_mmapped_chunks").await?;
        (mapped >= 20.0).then_some(())
    })
    .await;
    let range = "{job=\"h\"}[30m]";
    // Just after the newest sample (later pushes start a second after it).
    let t1 = format!("{:.3}", (from + 999_500) as f64 / 1000.0);
    let before = k.query(&c, range, &t1).await;
    let hists: usize = before["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["histograms"].as_array().map_or(0, Vec::len))
        .sum();
    assert_eq!(hists, 3000, "{before}");

    terminate(&mut k.proc);
    assert_eq!(snapshots(&data).len(), 1, "a snapshot after SIGTERM");
    let mut k = start_with(&cfg, &log, &flags);
    k.wait_ready(&c).await;
    let after = k.query(&c, range, &t1).await;
    assert!(
        after == before,
        "answers differ after the SIGTERM restart: {}",
        differences(&after, &before)
    );
    assert_eq!(
        k.metric(&c, "klaxon_tsdb_snapshot_loaded_total").await,
        Some(1.0)
    );

    // More samples on the restored open chunks, then SIGKILL.
    for batch in 10..14 {
        push_histograms(&c, &k, from, batch * 100, 100).await;
    }
    let t2 = format!("{:.3}", (from + 1_399_500) as f64 / 1000.0);
    let before2 = k.query(&c, range, &t2).await;
    k.proc.0.kill().unwrap();
    k.proc.0.wait().unwrap();
    let mut k = start_with(&cfg, &log, &flags);
    k.wait_ready(&c).await;
    let after = k.query(&c, range, &t1).await;
    assert!(
        after == before,
        "first answers differ after the SIGKILL restart: {}",
        differences(&after, &before)
    );
    let after = k.query(&c, range, &t2).await;
    assert!(
        after == before2,
        "answers differ after the SIGKILL restart: {}",
        differences(&after, &before2)
    );
    assert_eq!(
        k.metric(&c, "klaxon_tsdb_out_of_order_samples_total").await,
        Some(0.0)
    );
    terminate(&mut k.proc);
}
