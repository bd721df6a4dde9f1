//! Prometheus' block format with promtool and Prometheus 2.42 as the
//! oracles: promtool reads the blocks klaxon writes (list, dump, analyze),
//! klaxon serves blocks promtool wrote with the answers Prometheus gives
//! on a copy of the same directory, and klaxon's backfill command writes
//! what promtool's does.

use crate::common;
use common::{free_port, Proc, Rng};

use klaxon::model::{Labels, STALE_NAN_BITS};
use klaxon::tsdb::block::{self, BlockSeries};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) type Samples = Vec<(i64, f64)>;

/// Counters (with resets) and gauges, `n` samples each every ~15 s from
/// `start`, with NaNs and stale markers sprinkled in.
pub(crate) fn generate(series: usize, n: usize, start: i64) -> Vec<(Labels, Samples)> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    for i in 0..series {
        let counter = i % 2 == 0;
        let name = if counter {
            "k_requests_total"
        } else {
            "k_temperature"
        };
        let labels = Labels::from_pairs([
            ("__name__", name.to_string()),
            ("inst", format!("i{}", i / 2)),
            ("zone", ["a", "b", "c"][i % 3].to_string()),
        ]);
        let mut t = start + rng.below(15_000) as i64;
        let mut acc = 0.0f64;
        let mut samples = Vec::with_capacity(n);
        for k in 0..n {
            let v = if counter {
                if rng.below(200) == 0 {
                    acc = 0.0;
                }
                acc += rng.below(100) as f64;
                acc
            } else {
                ((k as f64) / 7.0).sin() * 40.0 + (rng.below(1000) as f64) / 1000.0
            };
            let v = match rng.below(97) {
                0 => f64::NAN,
                1 => f64::from_bits(STALE_NAN_BITS),
                _ => v,
            };
            samples.push((t, v));
            t += 15_000 + rng.below(50) as i64 - 25;
        }
        out.push((labels, samples));
    }
    out
}

pub(crate) fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run command");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// `{a="b", c="d"}` → Labels (dump prints Go-quoted values; the test data
/// has none needing escapes).
fn parse_labels(s: &str) -> Labels {
    let inner = s.trim_start_matches('{').trim_end_matches('}');
    Labels::from_pairs(inner.split(", ").map(|kv| {
        let (k, v) = kv.split_once('=').expect("name=value");
        (k.to_string(), v.trim_matches('"').to_string())
    }))
}

/// `promtool tsdb dump` of `dir` (a copy: dump opens it as a database) as
/// series → samples.
pub(crate) fn dump(promtool: &Path, dir: &Path) -> BTreeMap<Labels, Samples> {
    let copy = tempfile::tempdir().unwrap();
    copy_dir(dir, copy.path());
    std::fs::create_dir_all(copy.path().join("wal")).unwrap();
    let text = run(Command::new(promtool)
        .args(["tsdb", "dump"])
        .arg(copy.path()));
    let mut out: BTreeMap<Labels, Samples> = BTreeMap::new();
    for line in text.lines() {
        let (labels, rest) = line.rsplit_once("} ").expect("dump line");
        let (v, t) = rest.split_once(' ').expect("value and time");
        out.entry(parse_labels(&format!("{labels}}}")))
            .or_default()
            .push((t.parse().unwrap(), v.parse().unwrap()));
    }
    for s in out.values_mut() {
        s.sort_by_key(|s| s.0);
    }
    out
}

pub(crate) fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

/// NaNs compare equal (dump prints every NaN as `NaN`), others exactly.
pub(crate) fn assert_same(got: &BTreeMap<Labels, Samples>, want: &BTreeMap<Labels, Samples>) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>()
    );
    for (l, w) in want {
        let g = &got[l];
        assert_eq!(g.len(), w.len(), "{l:?}");
        for (a, b) in g.iter().zip(w) {
            assert_eq!(a.0, b.0, "{l:?}");
            assert!(
                a.1 == b.1 || (a.1.is_nan() && b.1.is_nan()),
                "{l:?} at {}: {} != {}",
                a.0,
                a.1,
                b.1
            );
        }
    }
}

/// klaxon writes two blocks (one 2 h range each) from generated series;
/// promtool 2.42 lists them with klaxon's figures, dumps exactly the input
/// and analyzes each without error.
#[test]
fn promtool_reads_the_blocks_klaxon_writes() {
    let Some(promtool) = common::peer("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let start = 1_700_000_000_000i64 - 1_700_000_000_000 % 7_200_000;
    // 480 samples ≈ 2 h at 15 s: two blocks of several chunks per series.
    let data = generate(300, 960, start);
    let mut metas = Vec::new();
    for w in 0..2 {
        let (lo, hi) = (start + w * 7_200_000, start + (w + 1) * 7_200_000);
        let series = data
            .iter()
            .map(|(l, s)| {
                let part: Samples = s
                    .iter()
                    .copied()
                    .filter(|p| p.0 >= lo && p.0 < hi)
                    .collect();
                BlockSeries {
                    labels: l.clone(),
                    chunks: block::encode_chunks(&part, 120),
                }
            })
            .collect();
        metas.push(block::write_block(dir.path(), series, Default::default()).unwrap());
    }
    assert!(metas
        .iter()
        .all(|m| m.stats.num_chunks >= 4 * m.stats.num_series));

    let list = run(Command::new(&promtool)
        .args(["tsdb", "list"])
        .arg(dir.path()));
    let rows: Vec<Vec<&str>> = list
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 2, "{list}");
    for m in &metas {
        let row = rows.iter().find(|r| r[0] == m.ulid).expect("block listed");
        // ULID, MIN TIME, MAX TIME, DURATION, NUM SAMPLES, NUM CHUNKS, NUM SERIES.
        assert_eq!(row[1], m.min_time.to_string());
        assert_eq!(row[2], m.max_time.to_string());
        assert_eq!(row[4], m.stats.num_samples.to_string());
        assert_eq!(row[5], m.stats.num_chunks.to_string());
        assert_eq!(row[6], m.stats.num_series.to_string());
    }

    let want: BTreeMap<Labels, Samples> = data.into_iter().collect();
    assert_same(&dump(&promtool, dir.path()), &want);

    for m in &metas {
        let out = run(Command::new(&promtool)
            .args(["tsdb", "analyze"])
            .arg(dir.path())
            .arg(&m.ulid));
        assert!(out.contains(&format!("Block ID: {}", m.ulid)), "{out}");
        assert!(
            out.contains("Series: 150") || out.contains("Series: 300"),
            "{out}"
        );
    }
}

/// For data that promtool cuts into the same chunks (under 120 samples per
/// series and block), klaxon's block files are byte for byte promtool's.
#[test]
fn klaxon_blocks_are_byte_identical_to_promtool_blocks() {
    let Some(promtool) = common::peer("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = generate(12, 100, 1_700_000_000_000 - 1_700_000_000_000 % 7_200_000);
    let om = dir.path().join("in.om");
    std::fs::write(&om, openmetrics(&data)).unwrap();
    let (k, p) = (dir.path().join("k"), dir.path().join("p"));
    run(Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(["tsdb", "create-blocks-from", "openmetrics", "-q"])
        .arg(&om)
        .arg(&k));
    run(Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&om)
        .arg(&p));
    let only = |d: &Path| {
        let v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        assert_eq!(v.len(), 1, "{v:?}");
        v[0].clone()
    };
    let (kb, pb) = (only(&k), only(&p));
    for f in ["index", "chunks/000001", "tombstones"] {
        let (a, b) = (
            std::fs::read(kb.join(f)).unwrap(),
            std::fs::read(pb.join(f)).unwrap(),
        );
        assert!(a == b, "{f} differs ({} vs {} bytes)", a.len(), b.len());
    }
    let meta = |d: &Path| {
        let name = d.file_name().unwrap().to_string_lossy().into_owned();
        std::fs::read_to_string(d.join("meta.json"))
            .unwrap()
            .replace(&name, "ULID")
    };
    assert_eq!(meta(&kb), meta(&pb));
}

/// OpenMetrics text for [`generate`]d series (seconds with milliseconds).
pub(crate) fn openmetrics(data: &[(Labels, Samples)]) -> String {
    let mut by_family: BTreeMap<&str, Vec<&(Labels, Samples)>> = BTreeMap::new();
    for s in data {
        by_family.entry(s.0.metric_name()).or_default().push(s);
    }
    let mut out = String::new();
    for (name, series) in by_family {
        let (family, kind) = match name.strip_suffix("_total") {
            Some(f) => (f, "counter"),
            None => (name, "gauge"),
        };
        out.push_str(&format!("# TYPE {family} {kind}\n"));
        for (l, samples) in series {
            let labels: Vec<String> = l
                .iter()
                .filter(|l| l.name != "__name__")
                .map(|l| format!("{}=\"{}\"", l.name, l.value))
                .collect();
            for (t, v) in samples {
                let v = if v.is_nan() {
                    "NaN".to_string()
                } else {
                    format!("{v:?}")
                };
                out.push_str(&format!(
                    "{name}{{{}}} {v} {}.{:03}\n",
                    labels.join(","),
                    t.div_euclid(1000),
                    t.rem_euclid(1000)
                ));
            }
        }
    }
    out.push_str("# EOF\n");
    out
}

/// `klaxon tsdb create-blocks-from openmetrics` writes blocks promtool
/// dumps as exactly the input, in the same 2 h block ranges promtool's own
/// backfill picks.
#[test]
fn klaxon_backfill_output_dumps_as_the_input() {
    let Some(promtool) = common::peer("promtool") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = generate(40, 800, 1_700_000_123_000);
    let om = dir.path().join("in.om");
    std::fs::write(&om, openmetrics(&data)).unwrap();
    let kout = dir.path().join("klaxon");
    let printed = run(Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&kout));
    let pout = dir.path().join("promtool");
    run(Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&pout));

    // NaN payloads are not kept by the text format: compare as dump does.
    let want: BTreeMap<Labels, Samples> = data.into_iter().collect();
    assert_same(&dump(&promtool, &kout), &want);

    // Same block ranges and counts as promtool's blocks.
    let ranges = |d: &Path| {
        let mut v: Vec<(String, String, String, String)> =
            run(Command::new(&promtool).args(["tsdb", "list"]).arg(d))
                .lines()
                .skip(1)
                .map(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    (f[1].into(), f[2].into(), f[4].into(), f[6].into())
                })
                .collect();
        v.sort();
        v
    };
    let k = ranges(&kout);
    assert!(k.len() >= 2, "{k:?}");
    assert_eq!(k, ranges(&pout));
    assert_eq!(printed.lines().count(), k.len() + 1, "{printed}");

    // A sample without a timestamp: the error names the file and line.
    std::fs::write(&om, "# TYPE m gauge\nm 1 1\nm 2\n# EOF\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(dir.path().join("bad"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:3:", om.display())), "{err}");
}

pub(crate) async fn wait_ready(c: &reqwest::Client, base: &str, p: &mut Proc, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = c.get(format!("{base}/-/ready")).send().await {
            if r.status() == 200 {
                return;
            }
        }
        if let Ok(Some(st)) = p.0.try_wait() {
            panic!("{what} exited ({st}) before ready");
        }
        assert!(Instant::now() < deadline, "{what} not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn get(
    c: &reqwest::Client,
    base: &str,
    path: &str,
    q: &[(&str, String)],
) -> Value {
    let qs: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(q.iter().map(|(k, v)| (*k, v.as_str())))
        .finish();
    let r = c
        .get(format!("{base}{path}?{qs}"))
        .send()
        .await
        .expect("request");
    let body = r.text().await.expect("body");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["status"], "success", "{path} {q:?}: {v}");
    v["data"].clone()
}

/// A query result with series sorted and numbers parsed, for comparison
/// within a relative 1e-9 (PromQL's float sums may differ in the last bit).
fn canon(v: &Value) -> Vec<(String, Vec<(f64, f64)>)> {
    let mut out: Vec<(String, Vec<(f64, f64)>)> = v["result"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|s| {
                    let points: Vec<&Value> = match s.get("values") {
                        Some(vs) => vs.as_array().unwrap().iter().collect(),
                        None => vec![&s["value"]],
                    };
                    let pts = points
                        .iter()
                        .map(|p| {
                            (
                                p[0].as_f64().unwrap(),
                                p[1].as_str().unwrap().parse::<f64>().unwrap(),
                            )
                        })
                        .collect();
                    (s["metric"].to_string(), pts)
                })
                .collect()
        })
        .unwrap_or_default();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn close(a: &[(String, Vec<(f64, f64)>)], b: &[(String, Vec<(f64, f64)>)], what: &str) {
    assert_eq!(
        a.iter().map(|s| &s.0).collect::<Vec<_>>(),
        b.iter().map(|s| &s.0).collect::<Vec<_>>(),
        "{what}"
    );
    for (x, y) in a.iter().zip(b) {
        assert_eq!(x.1.len(), y.1.len(), "{what} {}", x.0);
        for (p, q) in x.1.iter().zip(&y.1) {
            assert_eq!(p.0, q.0, "{what} {}", x.0);
            let same = p.1 == q.1
                || (p.1.is_nan() && q.1.is_nan())
                || (p.1 - q.1).abs() <= 1e-9 * p.1.abs().max(q.1.abs());
            assert!(same, "{what} {} at {}: {} vs {}", x.0, p.0, p.1, q.1);
        }
    }
}

/// promtool backfills a generated OpenMetrics file; klaxon (with a
/// damaged extra block beside them) and Prometheus 2.42 are started on
/// copies of the directory, and answer instant and range queries,
/// /api/v1/series, /api/v1/labels and label values alike; klaxon counts
/// the block it skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn klaxon_serves_promtool_blocks_as_prometheus_does() {
    let (Some(promtool), Some(prometheus)) = (common::peer("promtool"), common::peer("prometheus"))
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let now = klaxon::model::now_millis();
    // Seven hours ending an hour ago (inside Prometheus' retention).
    let start = now - 8 * 3_600_000;
    let data = generate(30, 7 * 240, start);
    let om = dir.path().join("in.om");
    std::fs::write(&om, openmetrics(&data)).unwrap();
    let blocks = dir.path().join("blocks");
    run(Command::new(&promtool)
        .args(["tsdb", "create-blocks-from", "openmetrics", "--quiet"])
        .arg(&om)
        .arg(&blocks));

    let kdata = dir.path().join("kdata");
    copy_dir(&blocks, &kdata);
    // A damaged copy of one block under a new ULID: skipped, counted.
    let first = std::fs::read_dir(&blocks)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let bad = kdata.join(block::ulid::new(1));
    copy_dir(&first, &bad);
    let idx = bad.join("index");
    let mut b = std::fs::read(&idx).unwrap();
    let n = b.len();
    b[n - 10] ^= 0xff; // inside the TOC
    std::fs::write(&idx, b).unwrap();
    let pdata = dir.path().join("pdata");
    copy_dir(&blocks, &pdata);

    let kcfg = dir.path().join("klaxon.yml");
    std::fs::write(
        &kcfg,
        format!(
            "storage:\n  path: {}\n  retention: 15d\nscrape_configs: []\n",
            kdata.display()
        ),
    )
    .unwrap();
    let kport = free_port();
    let log = std::fs::File::create(dir.path().join("klaxon.log")).unwrap();
    let mut kproc = Proc(
        Command::new(env!("CARGO_BIN_EXE_klaxon"))
            .arg("run")
            .arg(format!("--config={}", kcfg.display()))
            .arg(format!("--listen=127.0.0.1:{kport}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start klaxon"),
    );
    let pcfg = dir.path().join("prometheus.yml");
    std::fs::write(&pcfg, "global: {}\n").unwrap();
    let pport = free_port();
    let mut pproc = Proc(
        Command::new(&prometheus)
            .arg(format!("--config.file={}", pcfg.display()))
            .arg(format!("--storage.tsdb.path={}", pdata.display()))
            .arg(format!("--web.listen-address=127.0.0.1:{pport}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start prometheus"),
    );
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let kbase = format!("http://127.0.0.1:{kport}");
    let pbase = format!("http://127.0.0.1:{pport}");
    wait_ready(&c, &kbase, &mut kproc, "klaxon").await;
    wait_ready(&c, &pbase, &mut pproc, "prometheus").await;

    let log_text = std::fs::read_to_string(dir.path().join("klaxon.log")).unwrap();
    assert!(
        log_text.contains(&bad.display().to_string()) && log_text.contains("index"),
        "the skipped block is named in the log:\n{log_text}"
    );
    let metrics = c.get(format!("{kbase}/metrics")).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    let blocks_n = std::fs::read_dir(&blocks).unwrap().count();
    assert!(
        metrics.contains(&format!("klaxon_tsdb_blocks_loaded {blocks_n}")),
        "{metrics}"
    );
    assert!(
        metrics.contains("klaxon_tsdb_block_corruptions_total 1"),
        "{metrics}"
    );

    let s = |ms: i64| format!("{:.3}", ms as f64 / 1000.0);
    let end = data.iter().map(|d| d.1.last().unwrap().0).max().unwrap();
    let instants = [start + 3_600_000, start + 4 * 3_600_000 + 1234, end];
    let exprs = [
        "k_temperature",
        "k_requests_total{zone!=\"b\"}",
        "rate(k_requests_total[5m])",
        "sum by (zone) (k_temperature)",
        "max_over_time(k_temperature{inst=~\"i1.*\"}[30m])",
        "count_over_time(k_requests_total[8h])",
    ];
    for t in instants {
        for e in exprs {
            let q = [("query", e.to_string()), ("time", s(t))];
            let kv = get(&c, &kbase, "/api/v1/query", &q).await;
            let pv = get(&c, &pbase, "/api/v1/query", &q).await;
            assert!(!canon(&kv).is_empty(), "{e} @ {t}: empty");
            close(&canon(&kv), &canon(&pv), &format!("{e} @ {t}"));
        }
    }
    // Every input sample is there: count_over_time over everything.
    let q = [
        (
            "query",
            "count_over_time({__name__=~\"k_.*\"}[9h])".to_string(),
        ),
        ("time", s(end)),
    ];
    let total: f64 = canon(&get(&c, &kbase, "/api/v1/query", &q).await)
        .iter()
        .map(|s| s.1[0].1)
        .sum();
    assert_eq!(
        total as usize,
        data.iter().map(|d| d.1.len()).sum::<usize>()
    );

    for (e, step) in [
        ("k_temperature{inst=\"i3\"}", "60"),
        ("rate(k_requests_total[5m])", "300"),
        ("sum(k_temperature)", "120"),
    ] {
        let q = [
            ("query", e.to_string()),
            ("start", s(start)),
            ("end", s(end)),
            ("step", step.to_string()),
        ];
        let kv = get(&c, &kbase, "/api/v1/query_range", &q).await;
        let pv = get(&c, &pbase, "/api/v1/query_range", &q).await;
        assert!(
            canon(&kv).iter().all(|s| s.1.len() > 10),
            "{e}: too few points"
        );
        assert!(!canon(&kv).is_empty(), "{e}: empty");
        close(&canon(&kv), &canon(&pv), e);
    }

    let sorted = |v: Value| {
        let mut a: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.to_string())
            .collect();
        a.sort();
        a
    };
    for (path, q) in [
        (
            "/api/v1/series",
            vec![
                ("match[]", "{zone=\"a\"}".to_string()),
                ("start", s(start)),
                ("end", s(end)),
            ],
        ),
        (
            "/api/v1/series",
            vec![
                ("match[]", "k_temperature{inst!~\"i1|i2\"}".to_string()),
                ("start", s(start + 3 * 3_600_000)),
                ("end", s(start + 3 * 3_600_000 + 60_000)),
            ],
        ),
        ("/api/v1/labels", vec![("start", s(start)), ("end", s(end))]),
        (
            "/api/v1/label/inst/values",
            vec![("start", s(start)), ("end", s(end))],
        ),
        (
            "/api/v1/label/inst/values",
            vec![
                ("match[]", "k_requests_total{zone=\"c\"}".to_string()),
                ("start", s(start)),
                ("end", s(end)),
            ],
        ),
    ] {
        let kv = sorted(get(&c, &kbase, path, &q).await);
        let pv = sorted(get(&c, &pbase, path, &q).await);
        assert!(!kv.is_empty(), "{path} {q:?}");
        assert_eq!(kv, pv, "{path} {q:?}");
    }
    drop(kproc);
    drop(pproc);
}
