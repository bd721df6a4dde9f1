//! End-to-end scrape behaviour on loopback: a fake target server with one
//! route per kind of payload, klaxon started in-process, and assertions on
//! `/api/v1/targets`, the head and `/metrics`.

use crate::common::get_json;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use klaxon::model::{is_stale_nan, MatchType, Matcher};
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

const GOOD: &str = "# HELP m_total A counter.\n# TYPE m_total counter\nm_total{code=\"200\"} 7\nm_total{code=\"500\"} 1\n";

/// An explicit OpenMetrics timestamp inside the retention window: now - 10 s,
/// with a fractional second, in ms.
fn om_timestamp_ms() -> i64 {
    static TS: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *TS.get_or_init(|| (klaxon::model::now_millis() / 1000 - 10) * 1000 + 500)
}

/// Scrapes that a `/flip/N` target answers with data before it fails.
const FLIP_GOOD_SCRAPES: usize = 3;

/// `/flip/0`: two series, then HTTP 500. `/flip/1` and `/flip/2`: the same
/// with explicit timestamps (a second apart, the latest 10 s ago), then 500.
fn flip(counters: &[AtomicUsize; 3], which: usize) -> axum::response::Response {
    let Some(c) = counters.get(which) else {
        return (axum::http::StatusCode::NOT_FOUND, "no such flip").into_response();
    };
    let n = c.fetch_add(1, Ordering::SeqCst);
    if n >= FLIP_GOOD_SCRAPES {
        return (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "down now").into_response();
    }
    if which == 0 {
        return GOOD.into_response();
    }
    let ts = flip_timestamp_ms(n);
    format!("m_total{{code=\"200\"}} 7 {ts}\nm_total{{code=\"500\"}} 1 {ts}\n").into_response()
}

/// The explicit timestamp of a `/flip/N` payload's `n`th answer.
fn flip_timestamp_ms(n: usize) -> i64 {
    om_timestamp_ms() - 500 + n as i64 * 1000 - FLIP_GOOD_SCRAPES as i64 * 1000
}

/// Polls `f` every 50 ms until it holds or `within` passes; then panics
/// naming `what`. Scrape timing on a loaded machine varies, so tests wait
/// for what they need instead of sleeping a fixed time.
async fn eventually(what: &str, within: Duration, mut f: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + within;
    while !f() {
        assert!(
            std::time::Instant::now() < end,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts the fake target server; returns its address and a stop handle.
async fn fake_targets() -> (String, tokio::task::JoinHandle<()>) {
    let toggle = Arc::new(AtomicUsize::new(0));
    let flips = Arc::new([
        AtomicUsize::new(0),
        AtomicUsize::new(0),
        AtomicUsize::new(0),
    ]);
    let shuffle = Arc::new(AtomicUsize::new(0));
    let big = Arc::new("x".repeat(2 << 20));
    let app = Router::new()
        .route("/good", get(|| async { GOOD }))
        .route("/garbage", get(|| async { "this is {not a metric\n" }))
        .route(
            "/big",
            get(move || {
                let b = big.clone();
                async move { format!("m{{l=\"{}\"}} 1\n", b) }
            }),
        )
        .route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3)).await;
                GOOD
            }),
        )
        .route("/dup", get(|| async { "a 1\nb 2\na 3\n" }))
        .route(
            "/utf8",
            get(|| async { axum::body::Bytes::from_static(b"m{l=\"\xff\xfe\"} 1\n") }),
        )
        .route(
            "/longline",
            get(|| async { format!("m {}\n", "z".repeat(1 << 20)) }),
        )
        .route(
            "/longlabel",
            get(|| async { format!("m{{l=\"{}\"}} 1\n", "v".repeat(1 << 20)) }),
        )
        .route(
            "/many",
            get(|| async {
                (0..100)
                    .map(|i| format!("s{{i=\"{i}\"}} {i}\n"))
                    .collect::<String>()
            }),
        )
        .route(
            "/gzip",
            get(|| async {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                enc.write_all(GOOD.as_bytes()).unwrap();
                ([(header::CONTENT_ENCODING, "gzip")], enc.finish().unwrap()).into_response()
            }),
        )
        .route(
            "/om",
            get(|| async {
                (
                    [(
                        header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    format!(
                        "# TYPE c counter\nc_total 3 {}.5\n# EOF\n",
                        om_timestamp_ms() / 1000
                    ),
                )
                    .into_response()
            }),
        )
        .route(
            "/toggle",
            get(move || {
                let n = toggle.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        "keep 1\ngone 2\n"
                    } else {
                        "keep 1\n"
                    }
                }
            }),
        )
        .route(
            "/labels",
            get(|| async { "m{job=\"inner\",instance=\"x\"} 1\n" }),
        )
        .route(
            "/shuffle",
            get(move || {
                let n = shuffle.fetch_add(1, Ordering::SeqCst);
                async move {
                    let mut lines = ["a 1\n", "b 2\n", "c 3\n", "d 4\n"];
                    lines.rotate_left(n % 4);
                    if n % 2 == 1 {
                        lines.swap(0, 2);
                    }
                    lines.concat()
                }
            }),
        )
        .route(
            "/flip/{which}",
            get(
                move |axum::extract::Path(which): axum::extract::Path<usize>| {
                    let flips = flips.clone();
                    async move { flip(&flips, which) }
                },
            ),
        )
        .route(
            "/error500",
            get(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "no") }),
        );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let h = tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (addr, h)
}

fn job(name: &str, addr: &str, path: &str, extra: &str) -> String {
    format!(
        "  - job_name: {name}\n    scrape_interval: 1s\n    scrape_timeout: 500ms\n    metrics_path: {path}\n{extra}    static_configs:\n      - targets: ['{addr}']\n"
    )
}

fn value_of(head: &klaxon::tsdb::Head, name: &str, job: &str) -> Vec<(i64, f64)> {
    let m = [
        Matcher::new(MatchType::Equal, "__name__", name).unwrap(),
        Matcher::new(MatchType::Equal, "job", job).unwrap(),
    ];
    head.select(&m, i64::MIN, i64::MAX)
        .into_iter()
        .flat_map(|s| s.samples)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_fail_only_their_target() {
    let (addr, server) = fake_targets().await;
    let mut yaml = String::from("scrape_configs:\n");
    yaml += &job("good", &addr, "/good", "");
    yaml += &job("garbage", &addr, "/garbage", "");
    yaml += &job("big", &addr, "/big", "    body_size_limit: 1MB\n");
    yaml += &job("slow", &addr, "/slow", "");
    yaml += &job("dup", &addr, "/dup", "");
    yaml += &job("utf8", &addr, "/utf8", "");
    yaml += &job("longline", &addr, "/longline", "");
    yaml += &job("longlabel", &addr, "/longlabel", "");
    yaml += &job(
        "longlabel_limited",
        &addr,
        "/longlabel",
        "    label_value_length_limit: 1000\n",
    );
    yaml += &job("many", &addr, "/many", "    sample_limit: 10\n");
    yaml += &job("gzip", &addr, "/gzip", "");
    yaml += &job("om", &addr, "/om", "");
    yaml += &job("error500", &addr, "/error500", "");
    let mut cfg = klaxon::settings::load_str(&yaml, "test.yml").expect("config loads");
    // Its own store: tests in one binary run in parallel.
    let _store_dir = tempfile::tempdir().unwrap();
    cfg.storage.path = _store_dir.path().to_path_buf();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr);

    let jobs = [
        "good",
        "garbage",
        "big",
        "slow",
        "dup",
        "utf8",
        "longline",
        "longlabel",
        "longlabel_limited",
        "many",
        "gzip",
        "om",
        "error500",
    ];
    eventually(
        "every target scraped twice",
        Duration::from_secs(30),
        || {
            jobs.iter()
                .all(|j| value_of(&app.state.head, "up", j).len() >= 2)
        },
    )
    .await;

    let t = get_json(&format!("{base}/api/v1/targets")).await;
    assert_eq!(t["status"], "success");
    let active = t["data"]["activeTargets"].as_array().unwrap();
    assert_eq!(active.len(), 13, "{t:#}");
    let by_job = |j: &str| {
        active
            .iter()
            .find(|x| x["labels"]["job"] == j)
            .unwrap_or_else(|| panic!("no target for {j}"))
            .clone()
    };
    let expect = [
        ("good", "up", ""),
        ("gzip", "up", ""),
        ("om", "up", ""),
        ("longlabel", "up", ""),
        ("garbage", "down", "parse error"),
        ("big", "down", "body size limit"),
        ("slow", "down", "deadline exceeded"),
        ("dup", "down", "duplicate sample"),
        ("utf8", "down", "parse error"),
        ("longline", "down", "parse error"),
        (
            "longlabel_limited",
            "down",
            "label_value_length_limit exceeded",
        ),
        ("many", "down", "sample limit exceeded"),
        ("error500", "down", "500 Internal Server Error"),
    ];
    for (j, health, err) in expect {
        let x = by_job(j);
        assert_eq!(x["health"], health, "{j}: {x:#}");
        let last_error = x["lastError"].as_str().unwrap();
        if err.is_empty() {
            assert_eq!(last_error, "", "{j}");
        } else {
            assert!(
                last_error.contains(err),
                "{j}: {last_error:?} lacks {err:?}"
            );
        }
        assert_eq!(x["scrapePool"], j);
        assert!(x["scrapeUrl"]
            .as_str()
            .unwrap()
            .starts_with("http://127.0.0.1:"));
        assert_ne!(x["lastScrape"], "0001-01-01T00:00:00Z", "{j} never scraped");
    }

    let head = app.state.head.clone();
    for (j, health, _) in expect {
        let ups = value_of(&head, "up", j);
        assert!(!ups.is_empty(), "{j}: no up series");
        let want = if health == "up" { 1.0 } else { 0.0 };
        assert!(ups.iter().all(|(_, v)| *v == want), "{j}: up = {ups:?}");
        for name in [
            "scrape_duration_seconds",
            "scrape_samples_scraped",
            "scrape_samples_post_metric_relabeling",
            "scrape_series_added",
        ] {
            assert!(!value_of(&head, name, j).is_empty(), "{j}: no {name}");
        }
    }
    // The good target's series carry the target labels; gzip decoded; OM timestamp kept.
    assert!(value_of(&head, "m_total", "good").len() >= 2);
    assert!(!value_of(&head, "m_total", "gzip").is_empty());
    let om = value_of(&head, "c_total", "om");
    assert_eq!(om.first().map(|s| s.0), Some(om_timestamp_ms()));
    // Nothing of a rejected payload reached the head.
    assert!(value_of(&head, "a", "dup").is_empty());
    assert!(value_of(&head, "s", "many").is_empty());
    let samples = value_of(&head, "scrape_samples_scraped", "good");
    assert!(samples.iter().all(|(_, v)| *v == 2.0), "{samples:?}");

    // Failure counters by reason.
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for (j, reason) in [
        ("garbage", "parse"),
        ("big", "body_size_limit"),
        ("slow", "timeout"),
        ("dup", "duplicate"),
        ("many", "sample_limit"),
        ("longlabel_limited", "label_limit"),
        ("error500", "http_status"),
    ] {
        let needle =
            format!("klaxon_target_scrape_failures_total{{job=\"{j}\",reason=\"{reason}\"}} ");
        let line = metrics
            .lines()
            .find(|l| l.starts_with(&needle))
            .unwrap_or_else(|| panic!("no {needle} in /metrics"));
        let v: f64 = line[needle.len()..].parse().unwrap();
        assert!(v >= 1.0, "{line}");
    }
    assert!(
        metrics.contains("klaxon_target_scrapes_exceeded_sample_limit_total 1")
            || metrics.contains("klaxon_target_scrapes_exceeded_sample_limit_total 2")
            || metrics.contains("klaxon_target_scrapes_exceeded_sample_limit_total 3")
    );
    app.stop().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staleness_and_label_conflicts() {
    let (addr, server) = fake_targets().await;
    let mut yaml = String::from("scrape_configs:\n");
    yaml += &job("toggle", &addr, "/toggle", "");
    yaml += &job("labels", &addr, "/labels", "");
    yaml += &job("honor", &addr, "/labels", "    honor_labels: true\n");
    let mut cfg = klaxon::settings::load_str(&yaml, "test.yml").unwrap();
    // Its own store: tests in one binary run in parallel.
    let _store_dir = tempfile::tempdir().unwrap();
    cfg.storage.path = _store_dir.path().to_path_buf();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let head = app.state.head.clone();
    eventually(
        "two scrapes of each target",
        Duration::from_secs(30),
        || {
            ["toggle", "labels", "honor"]
                .iter()
                .all(|j| value_of(&head, "up", j).len() >= 2)
        },
    )
    .await;

    // `gone` was in the first scrape only: it ends with a staleness marker at
    // the second scrape's timestamp; `keep` has none.
    let gone = value_of(&head, "gone", "toggle");
    assert!(gone.len() >= 2, "{gone:?}");
    assert_eq!(gone[0].1, 2.0);
    assert!(is_stale_nan(gone[1].1), "{gone:?}");
    let keep = value_of(&head, "keep", "toggle");
    assert!(
        keep.len() >= 2 && keep.iter().all(|(_, v)| *v == 1.0),
        "{keep:?}"
    );
    assert_eq!(
        keep[1].0, gone[1].0,
        "marker written at the next scrape's time"
    );

    // Without honor_labels the scraped job/instance become exported_*.
    let m = [Matcher::new(MatchType::Equal, "__name__", "m").unwrap()];
    let series = head.select(&m, i64::MIN, i64::MAX);
    let mut seen = 0;
    for s in series {
        match s.labels.get("job") {
            Some("labels") => {
                assert_eq!(s.labels.get("exported_job"), Some("inner"));
                assert_eq!(s.labels.get("exported_instance"), Some("x"));
                assert_eq!(s.labels.get("instance"), Some(addr.as_str()));
                seen += 1;
            }
            Some("inner") => {
                assert_eq!(s.labels.get("instance"), Some("x"));
                assert_eq!(s.labels.get("exported_job"), None);
                seen += 1;
            }
            other => panic!("unexpected job {other:?}"),
        }
    }
    assert_eq!(seen, 2);
    app.stop().await;
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removed_target_gets_staleness_markers() {
    let (addr, server) = fake_targets().await;
    let dir = tempfile::tempdir().unwrap();
    let sd = dir.path().join("targets.json");
    std::fs::write(
        &sd,
        format!(r#"[{{"targets":["{addr}"],"labels":{{"env":"t"}}}}]"#),
    )
    .unwrap();
    let yaml = format!(
        "scrape_configs:\n  - job_name: fsd\n    scrape_interval: 1s\n    scrape_timeout: 500ms\n    metrics_path: /good\n    file_sd_configs:\n      - files: ['{}']\n",
        sd.display()
    );
    let mut cfg = klaxon::settings::load_str(&yaml, "test.yml").unwrap();
    // Its own store: tests in one binary run in parallel.
    let _store_dir = tempfile::tempdir().unwrap();
    cfg.storage.path = _store_dir.path().to_path_buf();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr);
    let head = app.state.head.clone();
    eventually(
        "the file_sd target scraped",
        Duration::from_secs(30),
        || !value_of(&head, "up", "fsd").is_empty(),
    )
    .await;
    let t = get_json(&format!("{base}/api/v1/targets")).await;
    assert_eq!(t["data"]["activeTargets"][0]["labels"]["env"], "t");
    assert_eq!(
        t["data"]["activeTargets"][0]["discoveredLabels"]["__address__"],
        addr.as_str()
    );

    // Remove the target: the file watcher notices within its poll interval,
    // then the loop waits up to two intervals before writing markers.
    std::fs::write(&sd, "[]").unwrap();
    eventually(
        "staleness markers of the removed target",
        Duration::from_secs(30),
        || {
            let up = value_of(&head, "up", "fsd");
            up.last().is_some_and(|s| is_stale_nan(s.1))
        },
    )
    .await;
    let t = get_json(&format!("{base}/api/v1/targets")).await;
    assert_eq!(
        t["data"]["activeTargets"].as_array().unwrap().len(),
        0,
        "{t:#}"
    );
    let up = value_of(&head, "up", "fsd");
    assert!(is_stale_nan(up.last().unwrap().1), "up not stale: {up:?}");
    let m = value_of(&head, "m_total", "fsd");
    assert!(
        is_stale_nan(m.last().unwrap().1),
        "m_total not stale: {m:?}"
    );
    app.stop().await;
    server.abort();
}

/// The scrape cache looks samples up by position first: when the exporter
/// reorders its series, every value must still land on its own series, and
/// series dropped by metric relabeling stay dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reordered_payloads_keep_values_on_their_series() {
    let (addr, server) = fake_targets().await;
    let mut yaml = String::from("scrape_configs:\n");
    yaml += &job(
        "shuffle",
        &addr,
        "/shuffle",
        "    metric_relabel_configs:\n      - source_labels: [__name__]\n        regex: c\n        action: drop\n",
    );
    let mut cfg = klaxon::settings::load_str(&yaml, "test.yml").unwrap();
    // Its own store: tests in one binary run in parallel.
    let _store_dir = tempfile::tempdir().unwrap();
    cfg.storage.path = _store_dir.path().to_path_buf();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let head = app.state.head.clone();
    eventually("four scrapes", Duration::from_secs(30), || {
        ["a", "b", "d"]
            .iter()
            .all(|n| value_of(&head, n, "shuffle").len() >= 4)
    })
    .await;
    let t = get_json(&format!("http://{}/api/v1/targets", app.addr)).await;
    assert_eq!(t["data"]["activeTargets"][0]["health"], "up", "{t:#}");
    for (name, want) in [("a", 1.0), ("b", 2.0), ("d", 4.0)] {
        let got = value_of(&head, name, "shuffle");
        assert!(got.len() >= 4, "{name}: {got:?}");
        assert!(got.iter().all(|(_, v)| *v == want), "{name}: {got:?}");
    }
    assert!(value_of(&head, "c", "shuffle").is_empty());
    let post = value_of(&head, "scrape_samples_post_metric_relabeling", "shuffle");
    assert!(post.iter().all(|(_, v)| *v == 3.0), "{post:?}");
    app.stop().await;
    server.abort();
}

/// More targets than `target_limit`: the whole pool stops and every target
/// shows the reason, as in Prometheus.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_limit_stops_the_pool() {
    let (addr, server) = fake_targets().await;
    let yaml = format!(
        "scrape_configs:\n  - job_name: limited\n    scrape_interval: 1s\n    scrape_timeout: 500ms\n    metrics_path: /good\n    target_limit: 1\n    static_configs:\n      - targets: ['{addr}', 'localhost:{}']\n",
        addr.rsplit(':').next().unwrap()
    );
    let mut cfg = klaxon::settings::load_str(&yaml, "test.yml").unwrap();
    // Its own store: tests in one binary run in parallel.
    let _store_dir = tempfile::tempdir().unwrap();
    cfg.storage.path = _store_dir.path().to_path_buf();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let url = format!("http://{}/api/v1/targets", app.addr);
    let end = std::time::Instant::now() + Duration::from_secs(30);
    let t = loop {
        let t = get_json(&url).await;
        let reported = t["data"]["activeTargets"]
            .as_array()
            .is_some_and(|a| a.len() == 2 && a.iter().all(|x| x["lastError"] != ""));
        if reported {
            break t;
        }
        assert!(
            std::time::Instant::now() < end,
            "pool never reported: {t:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let active = t["data"]["activeTargets"].as_array().unwrap();
    assert_eq!(active.len(), 2, "{t:#}");
    for x in active {
        assert_eq!(x["health"], "down");
        assert_eq!(
            x["lastError"],
            "target_limit exceeded (number of targets: 2, limit: 1)"
        );
    }
    assert!(value_of(&app.state.head, "up", "limited").is_empty());
    app.stop().await;
    server.abort();
}

/// A target that goes from good to HTTP 500: every series it had gets a
/// staleness marker at the failed scrape, `up` goes to 0 (not stale).
/// Series exposed with explicit timestamps get none (Prometheus does not
/// track their staleness), unless `honor_timestamps: false` makes klaxon
/// ignore the timestamps, when they are tracked like any other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_target_marks_its_series_stale() {
    let (addr, server) = fake_targets().await;
    let mut yaml = String::from("scrape_configs:\n");
    yaml += &job("flip", &addr, "/flip/0", "");
    yaml += &job("flip_ts", &addr, "/flip/1", "");
    yaml += &job(
        "flip_ts_ignored",
        &addr,
        "/flip/2",
        "    honor_timestamps: false\n",
    );
    let mut cfg = klaxon::settings::load_str(&yaml, "test.yml").unwrap();
    let _store_dir = tempfile::tempdir().unwrap();
    cfg.storage.path = _store_dir.path().to_path_buf();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let head = app.state.head.clone();
    let jobs = ["flip", "flip_ts", "flip_ts_ignored"];
    let failed_once = |j: &str| value_of(&head, "up", j).iter().any(|(_, v)| *v == 0.0);
    eventually("every flip target failed", Duration::from_secs(30), || {
        jobs.iter().all(|j| failed_once(j))
    })
    .await;
    // One more scrape after the first failure, so a late marker would show.
    let ups_now = value_of(&head, "up", "flip").len();
    eventually("one more scrape", Duration::from_secs(30), || {
        value_of(&head, "up", "flip").len() > ups_now
    })
    .await;

    let first_failure = |j: &str| {
        value_of(&head, "up", j)
            .into_iter()
            .find(|(_, v)| *v == 0.0)
            .map(|(t, _)| t)
            .expect("a failed scrape")
    };
    for code in ["200", "500"] {
        let series = |j: &str| {
            let m = [
                Matcher::new(MatchType::Equal, "__name__", "m_total").unwrap(),
                Matcher::new(MatchType::Equal, "job", j).unwrap(),
                Matcher::new(MatchType::Equal, "code", code).unwrap(),
            ];
            head.select(&m, i64::MIN, i64::MAX)
                .into_iter()
                .flat_map(|s| s.samples)
                .collect::<Vec<_>>()
        };
        // Plain samples: a marker at the failed scrape's time, then nothing.
        let plain = series("flip");
        let (t, v) = *plain.last().expect("samples");
        assert!(is_stale_nan(v), "flip code={code}: no marker: {plain:?}");
        assert_eq!(t, first_failure("flip"), "flip code={code}: marker time");
        assert_eq!(
            plain.iter().filter(|(_, v)| is_stale_nan(*v)).count(),
            1,
            "flip code={code}: {plain:?}"
        );
        // Explicit timestamps: the exposed samples with their own times, no
        // marker ever.
        let explicit = series("flip_ts");
        assert!(
            !explicit.iter().any(|(_, v)| is_stale_nan(*v)),
            "flip_ts code={code}: {explicit:?}"
        );
        let want: Vec<i64> = (0..FLIP_GOOD_SCRAPES).map(flip_timestamp_ms).collect();
        assert_eq!(
            explicit.iter().map(|s| s.0).collect::<Vec<_>>(),
            want,
            "flip_ts code={code}"
        );
        // honor_timestamps: false: scrape times, and a marker at the failure.
        let ignored = series("flip_ts_ignored");
        assert!(
            ignored.iter().all(|(t, _)| !want.contains(t)),
            "flip_ts_ignored code={code}: exposed timestamps kept: {ignored:?}"
        );
        let (t, v) = *ignored.last().expect("samples");
        assert!(
            is_stale_nan(v),
            "flip_ts_ignored code={code}: no marker: {ignored:?}"
        );
        assert_eq!(t, first_failure("flip_ts_ignored"));
    }
    // `up` and the other synthetic series report the failure, not staleness.
    for j in jobs {
        let up = value_of(&head, "up", j);
        assert!(up.iter().all(|(_, v)| !is_stale_nan(*v)), "{j}: {up:?}");
    }
    app.stop().await;
    server.abort();
}
