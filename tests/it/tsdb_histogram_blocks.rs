//! Native histograms in blocks, with Prometheus 2.42 (started with
//! `--enable-feature=native-histograms`) as the oracle both ways:
//! Prometheus serves a block klaxon wrote with the answers klaxon gives,
//! and klaxon serves a block Prometheus cut from remote-written
//! histograms with Prometheus' answers. promtool 2.42's `tsdb dump`
//! prints float samples only (it stops a series at its first histogram),
//! so it checks the float series of a mixed block.

use crate::common;
use crate::tsdb_blocks::{copy_dir, dump, get, wait_ready};
use common::{free_port, Proc};

use klaxon::model::histogram::{FloatHistogram, Histogram, Span};
use klaxon::model::Labels;
use klaxon::remote::proto::{encode_snappy, Sample, TimeSeries, WriteRequest};
use klaxon::remote::proto_hist::HistogramSample;
use klaxon::tsdb::block::{self, BlockSeries, WriteOptions};
use klaxon::tsdb::{HistValue, Queryable};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const H: i64 = 3_600_000;
const STEP: i64 = 15_000;

/// An integer counter histogram after `n` scrapes (schema 0, zero bucket,
/// three positive and one negative bucket), reset when `n` wraps.
pub(crate) fn int_hist(n: u64) -> HistValue {
    let (a, b, c, neg) = (n, 2 * n, n / 3, n / 5);
    HistValue::Int(Histogram {
        zero_threshold: 0.001,
        zero_count: n / 7,
        count: a + b + c + neg + n / 7,
        sum: n as f64 * 3.25,
        positive_spans: vec![Span::new(0, 2), Span::new(1, 1)],
        positive_buckets: vec![a as i64, b as i64 - a as i64, c as i64 - b as i64],
        negative_spans: vec![Span::new(1, 1)],
        negative_buckets: vec![neg as i64],
        ..Default::default()
    })
}

/// A float histogram (schema 1) moving up and down with `k`.
pub(crate) fn float_hist(k: i64) -> HistValue {
    let x = 10.0 + ((k as f64) / 9.0).sin() * 5.0;
    HistValue::Float(FloatHistogram {
        schema: 1,
        zero_threshold: 0.001,
        zero_count: 0.5,
        count: 0.5 + 3.5 * x,
        sum: x * 7.25,
        positive_spans: vec![Span::new(-1, 3)],
        positive_buckets: vec![x, 2.0 * x, 0.5 * x],
        ..Default::default()
    })
}

struct Data {
    ints: Vec<(i64, HistValue)>,
    floats: Vec<(i64, HistValue)>,
    gauge: Vec<(i64, f64)>,
}

/// Samples every 15 s in `[from, to)`: an integer counter histogram with a
/// reset (and, when `stale`, a staleness marker), a float histogram and a
/// float gauge.
fn data(from: i64, to: i64, stale: bool) -> Data {
    let mut d = Data {
        ints: Vec::new(),
        floats: Vec::new(),
        gauge: Vec::new(),
    };
    let mut t = from;
    let mut k = 0i64;
    while t < to {
        let n = (k % 300 + 1) as u64;
        let v = int_hist(n);
        d.ints
            .push((t, if stale && k == 150 { v.stale_like() } else { v }));
        d.floats.push((t, float_hist(k)));
        d.gauge.push((t, (k as f64 / 5.0).cos() * 20.0));
        t += STEP;
        k += 1;
    }
    d
}

fn name(n: &str) -> Labels {
    Labels::from_pairs([("__name__", n), ("job", "h")])
}

/// Every number of a query answer's points, per series: a float as itself,
/// a histogram as count, sum, then each bucket's rule, bounds and count.
type Canon = Vec<(String, Vec<(f64, Vec<f64>)>)>;

fn canon(v: &Value) -> Canon {
    let num = |x: &Value| -> f64 {
        match x {
            Value::String(s) => s.parse().unwrap(),
            other => other.as_f64().unwrap(),
        }
    };
    let hist = |h: &Value| -> Vec<f64> {
        let mut out = vec![num(&h["count"]), num(&h["sum"])];
        for b in h["buckets"].as_array().into_iter().flatten() {
            out.extend(b.as_array().unwrap().iter().map(num));
        }
        out
    };
    let mut out: Canon = v["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let mut pts: Vec<(f64, Vec<f64>)> = Vec::new();
            for p in s["values"].as_array().into_iter().flatten() {
                pts.push((num(&p[0]), vec![num(&p[1])]));
            }
            for p in s["histograms"].as_array().into_iter().flatten() {
                pts.push((num(&p[0]), hist(&p[1])));
            }
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            (s["metric"].to_string(), pts)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn assert_close(a: &Canon, b: &Canon, what: &str) {
    assert_eq!(
        a.iter().map(|s| &s.0).collect::<Vec<_>>(),
        b.iter().map(|s| &s.0).collect::<Vec<_>>(),
        "{what}"
    );
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.1.len(), y.1.len(), "{what} {}", x.0);
        for (p, q) in x.1.iter().zip(&y.1) {
            assert_eq!(p.0, q.0, "{what} {}", x.0);
            assert_eq!(p.1.len(), q.1.len(), "{what} {} at {}", x.0, p.0);
            for (u, w) in p.1.iter().zip(&q.1) {
                let same = u == w
                    || (u.is_nan() && w.is_nan())
                    || (u - w).abs() <= 1e-9 * u.abs().max(w.abs());
                assert!(same, "{what} {} at {}: {:?} vs {:?}", x.0, p.0, p.1, q.1);
            }
        }
    }
}

fn start_klaxon(dir: &Path, data: &Path) -> (Proc, String) {
    let cfg = dir.join("klaxon.yml");
    std::fs::write(
        &cfg,
        format!(
            "storage:\n  path: {}\n  retention: 15d\nscrape_configs: []\n",
            data.display()
        ),
    )
    .unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("klaxon.log")).unwrap();
    let p = Proc(
        Command::new(env!("CARGO_BIN_EXE_klaxon"))
            .arg("run")
            .arg(format!("--config={}", cfg.display()))
            .arg(format!("--listen=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start klaxon"),
    );
    (p, format!("http://127.0.0.1:{port}"))
}

fn start_prom(prometheus: &Path, dir: &Path, data: &Path, extra: &[&str]) -> (Proc, String) {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, "global: {}\n").unwrap();
    let port = free_port();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    let p = Proc(
        Command::new(prometheus)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!("--storage.tsdb.path={}", data.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--enable-feature=native-histograms")
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    );
    (p, format!("http://127.0.0.1:{port}"))
}

/// The same range queries over `[from, to]` against both, compared.
async fn compare(kbase: &str, pbase: &str, from: i64, to: i64) {
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let s = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
    let exprs = [
        "h_ints",
        "h_floats",
        "h_gauge",
        "histogram_count(h_ints)",
        "histogram_sum(h_floats)",
    ];
    for e in exprs {
        let q = [
            ("query", e.to_string()),
            ("start", s(from)),
            ("end", s(to)),
            ("step", "60".to_string()),
        ];
        let kv = get(&c, kbase, "/api/v1/query_range", &q).await;
        let pv = get(&c, pbase, "/api/v1/query_range", &q).await;
        let (k, p) = (canon(&kv), canon(&pv));
        assert!(
            !p.is_empty() && p.iter().all(|s| !s.1.is_empty()),
            "{e}: Prometheus answered nothing: {pv}"
        );
        assert_close(&k, &p, e);
    }
}

/// POSTs `req` to `base`'s remote-write receiver; fails on an error answer.
pub(crate) async fn remote_write(c: &reqwest::Client, base: &str, req: &WriteRequest) {
    let r = c
        .post(format!("{base}/api/v1/write"))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(encode_snappy(req))
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert!(status.is_success(), "{status}: {}", r.text().await.unwrap());
}

/// Block directories (named by a ULID, holding a meta.json) under `dir`.
fn blocks_in(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("meta.json").is_file())
        // Not one still being written (`<ULID>.tmp-for-creation`).
        .filter(|p| p.file_name().is_some_and(|n| n.len() == 26))
        .collect();
    out.sort();
    out
}

/// klaxon writes a block holding integer and float histograms (a reset
/// and a staleness marker among them) and a float series; Prometheus 2.42
/// serves a copy of it with the answers klaxon gives, and promtool dumps
/// its float series.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_serves_the_histogram_blocks_klaxon_writes() {
    let (Some(promtool), Some(prometheus)) = (common::peer("promtool"), common::peer("prometheus"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let now = klaxon::model::now_millis();
    let t0 = (now - 6 * H).div_euclid(2 * H) * 2 * H;
    let d = data(t0, t0 + 2 * H, true);
    let series = vec![
        BlockSeries {
            labels: name("h_ints"),
            chunks: block::encode_series(&[], &d.ints, 120),
        },
        BlockSeries {
            labels: name("h_floats"),
            chunks: block::encode_series(&[], &d.floats, 120),
        },
        BlockSeries {
            labels: name("h_gauge"),
            chunks: block::encode_series(&d.gauge, &[], 120),
        },
    ];
    let kdata = dir.path().join("kdata");
    std::fs::create_dir_all(&kdata).unwrap();
    let meta = block::write_block(
        &kdata,
        series,
        WriteOptions {
            range: Some((t0, t0 + 2 * H)),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(meta.stats.num_samples, 3 * 480);
    let pdata = dir.path().join("pdata");
    copy_dir(&kdata, &pdata);

    // promtool reads the block: the float series whole; histogram series
    // print nothing (2.42's dump iterates float samples only).
    let dumped = dump(&promtool, &kdata);
    assert_eq!(dumped.keys().collect::<Vec<_>>(), [&name("h_gauge")]);
    assert_eq!(dumped[&name("h_gauge")], d.gauge);

    let kdir = dir.path().join("k");
    let pdir = dir.path().join("p");
    std::fs::create_dir_all(&kdir).unwrap();
    std::fs::create_dir_all(&pdir).unwrap();
    let (mut kp, kbase) = start_klaxon(&kdir, &kdata);
    let (mut pp, pbase) = start_prom(&prometheus, &pdir, &pdata, &[]);
    let c = reqwest::Client::new();
    wait_ready(&c, &kbase, &mut kp, "klaxon").await;
    wait_ready(&c, &pbase, &mut pp, "prometheus").await;
    compare(&kbase, &pbase, t0 + 10 * 60_000, t0 + 2 * H - 1).await;
    // At the staleness marker's time the series is gone for both.
    let at = d.ints[150].0;
    let q = [
        ("query", "h_ints".to_string()),
        ("time", format!("{:.3}", at as f64 / 1000.0)),
    ];
    let kv = get(&c, &kbase, "/api/v1/query", &q).await;
    let pv = get(&c, &pbase, "/api/v1/query", &q).await;
    assert_eq!(kv["result"], pv["result"]);
    assert_eq!(pv["result"].as_array().map(Vec::len), Some(0), "{pv}");
}

/// Prometheus 2.42 receives four hours of integer and float histograms by
/// remote write and cuts a block; klaxon, given a copy of that block,
/// answers as Prometheus does over the block's range.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn klaxon_serves_the_histogram_blocks_prometheus_writes() {
    let Some(prometheus) = common::peer("prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pdata = dir.path().join("pdata");
    let pdir = dir.path().join("p");
    std::fs::create_dir_all(&pdir).unwrap();
    let (mut pp, pbase) = start_prom(
        &prometheus,
        &pdir,
        &pdata,
        &["--web.enable-remote-write-receiver"],
    );
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    wait_ready(&c, &pbase, &mut pp, "prometheus").await;
    let now = klaxon::model::now_millis();
    let from = now - 5 * H;
    let d = data(from, now - H, false);
    let ts = |n: &str| -> Vec<klaxon::model::Label> { name(n).iter().cloned().collect() };
    let hs = |v: &[(i64, HistValue)]| -> Vec<HistogramSample> {
        v.iter()
            .map(|(t, v)| HistogramSample {
                timestamp: *t,
                value: v.clone(),
            })
            .collect()
    };
    let req = WriteRequest {
        timeseries: vec![
            TimeSeries {
                labels: ts("h_ints"),
                samples: Vec::new(),
                histograms: hs(&d.ints),
                exemplars: Vec::new(),
            },
            TimeSeries {
                labels: ts("h_floats"),
                samples: Vec::new(),
                histograms: hs(&d.floats),
                exemplars: Vec::new(),
            },
            TimeSeries {
                labels: ts("h_gauge"),
                samples: d
                    .gauge
                    .iter()
                    .map(|(t, v)| Sample {
                        timestamp: *t,
                        value: *v,
                    })
                    .collect(),
                histograms: Vec::new(),
                exemplars: Vec::new(),
            },
        ],
        metadata: Vec::new(),
    };
    remote_write(&c, &pbase, &req).await;
    // The head spans four hours: Prometheus compacts its oldest two.
    let deadline = Instant::now() + Duration::from_secs(120);
    let pblock = loop {
        if let Some(b) = blocks_in(&pdata).into_iter().next() {
            break b;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus cut no block: {}",
            std::fs::read_to_string(pdir.join("prometheus.log")).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let meta: Value =
        serde_json::from_slice(&std::fs::read(pblock.join("meta.json")).unwrap()).unwrap();
    let (bmin, bmax) = (
        meta["minTime"].as_i64().unwrap(),
        meta["maxTime"].as_i64().unwrap(),
    );
    assert!(meta["stats"]["numSamples"].as_u64().unwrap() > 0, "{meta}");
    // klaxon's block reader checks every chunk of it and finds the
    // histograms.
    let b = block::Block::open(&pblock).unwrap();
    b.verify().unwrap();
    let got = b.querier(i64::MIN, i64::MAX).select(&[]);
    let kinds: Vec<(String, usize, usize)> = got
        .iter()
        .map(|s| (s.labels.to_string(), s.samples.len(), s.histograms.len()))
        .collect();
    assert_eq!(kinds.len(), 3, "{kinds:?}");
    // Sorted: h_floats, h_gauge, h_ints.
    assert!(
        kinds[0].2 > 0 && kinds[1].1 > 0 && kinds[2].2 > 0,
        "{kinds:?}"
    );
    assert!(got[0]
        .histograms
        .iter()
        .all(|h| matches!(h.1, HistValue::Float(_))));
    assert!(got[2]
        .histograms
        .iter()
        .all(|h| matches!(h.1, HistValue::Int(_))));

    let kdata = dir.path().join("kdata");
    copy_dir(
        &pblock,
        &kdata.join(pblock.file_name().expect("block name")),
    );
    let kdir = dir.path().join("k");
    std::fs::create_dir_all(&kdir).unwrap();
    let (mut kp, kbase) = start_klaxon(&kdir, &kdata);
    wait_ready(&c, &kbase, &mut kp, "klaxon").await;
    // Prometheus' first block ends at a 2 h boundary, which may fall
    // minutes after the data starts: skip the first ten minutes only when
    // the block holds more than twice that.
    let first = bmin.max(d.ints[0].0);
    let skip = if bmax - first > 20 * 60_000 {
        10 * 60_000
    } else {
        0
    };
    compare(&kbase, &pbase, first + skip, bmax - 1).await;
}
