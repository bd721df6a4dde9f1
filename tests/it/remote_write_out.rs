//! Remote write out. Against a real Prometheus 2.42 started with
//! `--web.enable-remote-write-receiver`: every sample klaxon stored (scrapes
//! of itself and of `../shared/tools/synth_target.py`, the host exporter, a
//! TCP probe, a recording rule, ALERTS) is in Prometheus afterwards with the
//! same timestamps and bitwise the same values. Against a scripted mock
//! receiver: retries on 5xx, drops on 4xx, 429 with and without
//! `retry_on_http_429`, Retry-After, headers, external labels, write
//! relabeling, a full queue, and resharding without loss or reordering.

use crate::common;
use common::{free_port, Proc};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use klaxon::metrics::Registry;
use klaxon::model::{is_stale_nan, Labels, MatchType, Matcher};
use klaxon::remote::proto::decode_snappy;
use klaxon::remote::RemoteWrite;
use klaxon::tsdb::Head;
use parking_lot::Mutex;
use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// Sum of the samples of `name` whose labels include every `k="v"` in
/// `with`, from the registry's text exposition.
fn metric(registry: &Registry, name: &str, with: &[&str]) -> f64 {
    registry
        .encode(false)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter(|l| with.iter().all(|w| l.contains(w)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn http_ok(url: &str) -> bool {
    matches!(reqwest::get(url).await, Ok(r) if r.status().is_success())
}

type SeriesMap = BTreeMap<Vec<(String, String)>, Vec<(i64, u64)>>;

fn key(l: &Labels) -> Vec<(String, String)> {
    l.iter()
        .map(|l| (l.name.clone(), l.value.clone()))
        .collect()
}

/// Go's float text (`NaN`, `+Inf`, shortest round-trip digits) to bits.
fn go_float_bits(s: &str) -> u64 {
    match s {
        "NaN" => f64::NAN.to_bits(),
        "+Inf" => f64::INFINITY.to_bits(),
        "-Inf" => f64::NEG_INFINITY.to_bits(),
        _ => s.parse::<f64>().unwrap().to_bits(),
    }
}

/// NaN-aware bits: every NaN compares equal to every NaN (PromQL renders
/// them all as "NaN"); anything else bitwise.
fn norm(bits: u64) -> u64 {
    if f64::from_bits(bits).is_nan() {
        f64::NAN.to_bits()
    } else {
        bits
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_reaches_a_real_prometheus() {
    if !Path::new(PROMETHEUS).exists() {
        assert!(
            !common::is_ci(),
            "prometheus missing under CI (../shared/tools/install-peers.sh)"
        );
        eprintln!("SKIPPED: {PROMETHEUS} not installed");
        return;
    }
    let Some(tools) = common::data_dir("tools") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();

    let synth_port = free_port();
    let _synth = Proc(
        Command::new("python3")
            .arg(tools.join("synth_target.py"))
            .args(["--port", &synth_port.to_string(), "--series", "60"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let prom_port = free_port();
    std::fs::write(dir.path().join("prometheus.yml"), "global: {}\n").unwrap();
    let _prom = common::spawn_prometheus(
        Path::new(PROMETHEUS),
        dir.path(),
        prom_port,
        &["--web.enable-remote-write-receiver"],
    );
    let prom = format!("http://127.0.0.1:{prom_port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !(http_ok(&format!("{prom}/-/ready")).await
        && http_ok(&format!("http://127.0.0.1:{synth_port}/metrics")).await)
    {
        assert!(Instant::now() < deadline, "prometheus or synth not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - record: job:up:sum\n    expr: sum by (job) (up)\n  - record: synth:depth:avg\n    expr: avg by (service) (synth_queue_depth)\n  - alert: Always\n    expr: vector(1)\n",
    )
    .unwrap();
    let kx_port = free_port();
    let kx = dir.path().join("kx").display().to_string();
    let text = format!(
        r#"
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [rules.yml]
scrape_configs:
  - job_name: klaxon
    static_configs: [{{targets: ['127.0.0.1:{kx_port}']}}]
  - job_name: synth
    static_configs: [{{targets: ['127.0.0.1:{synth_port}']}}]
exporters:
  host: {{enabled: true, scrape_interval: 1s}}
probes:
  - {{targets: ['127.0.0.1:{kx_port}'], module: tcp_connect, interval: 1s}}
storage: {{path: {kx}}}
remote_write:
  - url: {prom}/api/v1/write
    name: prom
    basic_auth: {{username: u, password: hunter2}}
    queue_config: {{batch_send_deadline: 500ms}}
"#
    );
    let cfg_path = dir.path().join("klaxon.yml");
    std::fs::write(&cfg_path, text).unwrap();
    let cfg = klaxon::settings::load_file(&cfg_path).unwrap();
    let app = klaxon::app::start(
        cfg,
        klaxon::app::StartOptions::on(format!("127.0.0.1:{kx_port}")),
    )
    .await
    .unwrap();
    let state = app.state.clone();
    let status = reqwest::get(format!("http://127.0.0.1:{kx_port}/api/v1/status/config"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        status.contains("remote_write") && !status.contains("hunter2"),
        "{status}"
    );
    tokio::time::sleep(Duration::from_secs(8)).await;
    // Stop ingestion; stopping flushes the queue.
    app.stop().await;
    let reg = &state.registry;
    assert_eq!(
        metric(reg, "klaxon_remote_storage_samples_pending", &[]),
        0.0
    );
    assert_eq!(
        metric(reg, "klaxon_remote_storage_samples_failed_total", &[]),
        0.0
    );
    assert_eq!(
        metric(reg, "klaxon_remote_storage_samples_dropped_total", &[]),
        0.0
    );
    let sent = metric(
        reg,
        "klaxon_remote_storage_samples_total",
        &[r#"remote_name="prom""#],
    );
    let appended = state.head.stats().samples_appended as f64;
    assert_eq!(sent, appended, "every stored sample was sent once");

    // klaxon's side: every stored sample. Stale markers are left out:
    // PromQL range selectors skip them on both sides.
    let all = Matcher::new(MatchType::RegexMatch, "__name__", ".+").unwrap();
    let mut ours = SeriesMap::new();
    let mut max_t = i64::MIN;
    for s in state.head.select(&[all], i64::MIN, i64::MAX) {
        let v: Vec<(i64, u64)> = s
            .samples
            .iter()
            .filter(|(_, v)| !is_stale_nan(*v))
            .map(|(t, v)| (*t, norm(v.to_bits())))
            .collect();
        max_t = max_t.max(s.samples.last().map(|x| x.0).unwrap_or(i64::MIN));
        if !v.is_empty() {
            ours.insert(key(&s.labels), v);
        }
    }
    let jobs: std::collections::BTreeSet<&str> = ours
        .keys()
        .filter_map(|k| k.iter().find(|(n, _)| n == "job").map(|(_, v)| v.as_str()))
        .collect();
    for j in ["klaxon", "synth", "host", "probe"] {
        assert!(jobs.contains(j), "no series of job {j}: {jobs:?}");
    }
    for name in [
        "job:up:sum",
        "synth:depth:avg",
        "ALERTS",
        "ALERTS_FOR_STATE",
    ] {
        assert!(
            ours.keys()
                .any(|k| k.iter().any(|(n, v)| n == "__name__" && v == name)),
            "no {name} series"
        );
    }

    // Prometheus' side: raw samples of every series through a range
    // selector covering the whole run.
    let time = format!("{:.3}", (max_t + 1) as f64 / 1000.0);
    let q: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("query", r#"{__name__=~".+"}[1h]"#)
        .append_pair("time", &time)
        .finish();
    let body = reqwest::get(format!("{prom}/api/v1/query?{q}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resp: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(resp["status"], "success", "{resp}");
    let mut theirs = SeriesMap::new();
    for s in resp["data"]["result"].as_array().unwrap() {
        let mut k: Vec<(String, String)> = s["metric"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(n, v)| (n.clone(), v.as_str().unwrap().to_string()))
            .collect();
        k.sort();
        let v = s["values"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
                (t, norm(go_float_bits(p[1].as_str().unwrap())))
            })
            .collect();
        theirs.insert(k, v);
    }
    let missing: Vec<_> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    let extra: Vec<_> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "series missing in Prometheus: {missing:?}\nextra: {extra:?}"
    );
    let mut differ = 0;
    for (k, v) in &ours {
        if theirs.get(k) != Some(v) {
            differ += 1;
            if differ <= 3 {
                eprintln!("{k:?}\n ours:   {v:?}\n theirs: {:?}", theirs.get(k));
            }
        }
    }
    assert_eq!(differ, 0, "series whose samples differ (of {})", ours.len());
    let n: usize = ours.values().map(Vec::len).sum();
    eprintln!("compared {} series, {n} samples", ours.len());
    assert!(n > 1000, "too few samples to mean anything: {n}");
}

// --- Mock receiver -----------------------------------------------------

/// One request the mock saw.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    status: u16,
    headers: HeaderMap,
    /// `(labels, [(t, value bits)])` per series.
    series: Vec<(Labels, Vec<(i64, u64)>)>,
}

#[derive(Default)]
struct Mock {
    /// Answers to give, in order; 204 once empty.
    script: Mutex<VecDeque<(u16, Option<&'static str>)>>,
    seen: Mutex<Vec<Seen>>,
    delay: Mutex<Duration>,
}

impl Mock {
    /// Samples of accepted requests, per series, in arrival order.
    fn accepted(&self) -> BTreeMap<Labels, Vec<(i64, u64)>> {
        let mut out: BTreeMap<Labels, Vec<(i64, u64)>> = BTreeMap::new();
        for s in self.seen.lock().iter().filter(|s| s.status < 300) {
            for (l, v) in &s.series {
                out.entry(l.clone()).or_default().extend(v.iter().copied());
            }
        }
        out
    }

    fn statuses(&self) -> Vec<u16> {
        self.seen.lock().iter().map(|s| s.status).collect()
    }
}

async fn mock_write(State(m): State<Arc<Mock>>, headers: HeaderMap, body: Bytes) -> Response {
    let delay = *m.delay.lock();
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let req = match decode_snappy(&body, 32 << 20) {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    };
    let (status, retry_after) = m.script.lock().pop_front().unwrap_or((204, None));
    let series = req
        .timeseries
        .iter()
        .map(|ts| {
            (
                Labels::from_pairs(ts.labels.iter().map(|l| (l.name.clone(), l.value.clone()))),
                ts.samples
                    .iter()
                    .map(|s| (s.timestamp, s.value.to_bits()))
                    .collect(),
            )
        })
        .collect();
    m.seen.lock().push(Seen {
        at: Instant::now(),
        status,
        headers,
        series,
    });
    let mut r = (StatusCode::from_u16(status).unwrap(), "scripted").into_response();
    if let Some(ra) = retry_after {
        r.headers_mut().insert("retry-after", ra.parse().unwrap());
    }
    r
}

async fn start_mock() -> (Arc<Mock>, String) {
    let m = Arc::new(Mock::default());
    let app = axum::Router::new()
        .route("/write", axum::routing::post(mock_write))
        .with_state(m.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/write", l.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    (m, url)
}

/// A head with remote write to `url`, configured by `extra` YAML under the
/// entry (indented 4 spaces) and `global` lines.
fn setup(url: &str, extra: &str, global: &str) -> (Arc<Head>, Arc<RemoteWrite>, Arc<Registry>) {
    let y = format!("global:\n{global}\nremote_write:\n  - url: {url}\n    name: mock\n{extra}");
    let cfg = klaxon::settings::load_str(&y, "t.yml").unwrap();
    let head = Arc::new(Head::default());
    let reg = Arc::new(Registry::new());
    let rw = RemoteWrite::new(&head, &reg);
    assert!(rw
        .apply_config(&cfg.remote_write, &cfg.global.external_labels)
        .is_empty());
    (head, rw, reg)
}

/// Appends `n` samples to each of `series` series named `m{i="k"}`;
/// returns what was appended, per series.
fn append(head: &Head, series: usize, n: usize, t0: i64) -> BTreeMap<Labels, Vec<(i64, u64)>> {
    let mut out = BTreeMap::new();
    for k in 0..series {
        let l = Labels::from_pairs([("__name__", "m"), ("i", &k.to_string())]);
        let (r, _) = head.get_or_create(&l);
        let mut v = Vec::new();
        for j in 0..n {
            let t = t0 + j as i64 * 1000;
            let val = (k * 1000 + j) as f64 + 0.25;
            head.append(r, t, val).unwrap();
            v.push((t, val.to_bits()));
        }
        out.insert(l, v);
    }
    out
}

const FAST: &str =
    "    queue_config: {min_backoff: 10ms, max_backoff: 100ms, batch_send_deadline: 50ms}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_nothing_lost() {
    let (mock, url) = start_mock().await;
    mock.script.lock().extend([(500, None), (503, None)]);
    let (head, rw, reg) = setup(&url, FAST, "  scrape_interval: 1m");
    let want = append(&head, 3, 20, 1_000_000);
    wait_until("delivery", Duration::from_secs(10), || {
        mock.accepted() == want
    })
    .await;
    rw.stop(Duration::from_secs(5)).await;
    assert_eq!(mock.statuses(), [500, 503, 204]);
    assert_eq!(mock.accepted(), want, "each sample exactly once, in order");
    assert_eq!(
        metric(&reg, "klaxon_remote_storage_samples_retried_total", &[]),
        120.0
    );
    assert_eq!(
        metric(&reg, "klaxon_remote_storage_samples_total", &[]),
        60.0
    );
    assert_eq!(
        metric(&reg, "klaxon_remote_storage_samples_failed_total", &[]),
        0.0
    );
    assert_eq!(
        metric(&reg, "klaxon_remote_storage_samples_pending", &[]),
        0.0
    );
    assert_eq!(
        metric(&reg, "klaxon_remote_storage_samples_in_total", &[]),
        60.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_dropped_and_counted() {
    let (mock, url) = start_mock().await;
    mock.script.lock().push_back((400, None));
    let (head, rw, reg) = setup(&url, FAST, "  scrape_interval: 1m");
    append(&head, 2, 5, 1_000_000);
    wait_until("the 400", Duration::from_secs(10), || {
        metric(&reg, "klaxon_remote_storage_samples_failed_total", &[]) == 10.0
    })
    .await;
    // Later samples still go out.
    let later = append(&head, 1, 1, 2_000_000);
    wait_until("later delivery", Duration::from_secs(10), || {
        mock.accepted() == later
    })
    .await;
    rw.stop(Duration::from_secs(5)).await;
    assert_eq!(mock.statuses(), [400, 204], "a 400 is not retried");
    assert_eq!(
        metric(&reg, "klaxon_remote_storage_samples_retried_total", &[]),
        0.0
    );
    assert_eq!(
        metric(&reg, "klaxon_remote_storage_samples_total", &[]),
        1.0
    );
    assert_eq!(
        metric(&reg, "klaxon_remote_storage_samples_pending", &[]),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_honours_the_flag_and_retry_after() {
    // With retry_on_http_429: retried after the server's Retry-After (1 s),
    // not after our 10 ms backoff.
    let (mock, url) = start_mock().await;
    mock.script.lock().push_back((429, Some("1")));
    let extra = "    queue_config: {min_backoff: 10ms, max_backoff: 100ms, batch_send_deadline: 50ms, retry_on_http_429: true}\n";
    let (head, rw, reg) = setup(&url, extra, "  scrape_interval: 1m");
    let want = append(&head, 2, 3, 1_000_000);
    wait_until("delivery", Duration::from_secs(10), || {
        mock.accepted() == want
    })
    .await;
    rw.stop(Duration::from_secs(5)).await;
    assert_eq!(mock.statuses(), [429, 204]);
    let seen = mock.seen.lock().clone();
    let gap = seen[1].at - seen[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "Retry-After ignored: {gap:?}"
    );
    assert_eq!(
        metric(&reg, "klaxon_remote_storage_samples_retried_total", &[]),
        6.0
    );

    // Without it (2.42's default), a 429 drops the batch like a 400.
    let (mock, url) = start_mock().await;
    mock.script.lock().push_back((429, None));
    let (head, rw, reg) = setup(&url, FAST, "  scrape_interval: 1m");
    append(&head, 2, 3, 1_000_000);
    wait_until("the 429", Duration::from_secs(10), || {
        metric(&reg, "klaxon_remote_storage_samples_failed_total", &[]) == 6.0
    })
    .await;
    rw.stop(Duration::from_secs(5)).await;
    assert_eq!(mock.statuses(), [429]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_external_labels_and_write_relabeling() {
    let (mock, url) = start_mock().await;
    let extra = format!(
        "{FAST}    headers: {{X-Scope-OrgID: tenant-1}}\n    basic_auth: {{username: u, password: p}}\n    write_relabel_configs:\n      - {{source_labels: [i], regex: '1', action: drop}}\n"
    );
    let (head, rw, reg) = setup(&url, &extra, "  external_labels: {cluster: c1, i: ignored}");
    append(&head, 3, 2, 1_000_000);
    wait_until("delivery", Duration::from_secs(10), || {
        mock.accepted().len() == 2
    })
    .await;
    rw.stop(Duration::from_secs(5)).await;
    let got = mock.accepted();
    let keys: Vec<String> = got.keys().map(|l| l.to_string()).collect();
    // The series' own `i` wins over the external label; i="1" dropped.
    assert_eq!(
        keys,
        [
            r#"m{cluster="c1", i="0"}"#.to_string(),
            r#"m{cluster="c1", i="2"}"#.to_string()
        ]
    );
    assert_eq!(
        metric(
            &reg,
            "klaxon_remote_storage_samples_dropped_total",
            &[r#"reason="dropped_series""#]
        ),
        2.0
    );
    let seen = mock.seen.lock().clone();
    let h = &seen[0].headers;
    assert_eq!(h["content-encoding"], "snappy");
    assert_eq!(h["content-type"], "application/x-protobuf");
    assert_eq!(h["x-prometheus-remote-write-version"], "0.1.0");
    assert!(h["user-agent"].to_str().unwrap().starts_with("klaxon/"));
    assert_eq!(h["x-scope-orgid"], "tenant-1");
    assert_eq!(h["authorization"], "Basic dTpw");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts_without_blocking() {
    let (mock, url) = start_mock().await;
    *mock.delay.lock() = Duration::from_millis(300);
    // One shard at most: the queue holds capacity × max_shards = 10.
    let extra = "    queue_config: {capacity: 10, max_shards: 1, max_samples_per_send: 5, batch_send_deadline: 50ms, min_backoff: 10ms}\n";
    let (head, rw, reg) = setup(&url, extra, "  scrape_interval: 1m");
    append(&head, 1, 200, 1_000_000);
    // Appends did not wait for the sender: at 300 ms a request of 5, the
    // 200 samples take 12 s to send, and right after the appends returned
    // most of them have not reached the receiver (those that did not fit
    // are counted as dropped below, which a blocking queue never does).
    let delivered_at_return: usize = mock.accepted().values().map(Vec::len).sum();
    assert!(delivered_at_return < 200, "appends waited for the sends");
    rw.stop(Duration::from_secs(20)).await;
    let full = metric(
        &reg,
        "klaxon_remote_storage_samples_dropped_total",
        &[r#"reason="queue_full""#],
    );
    let sent = metric(&reg, "klaxon_remote_storage_samples_total", &[]);
    let got: usize = mock.accepted().values().map(Vec::len).sum();
    assert!(full > 0.0, "nothing dropped");
    assert_eq!(sent as usize, got);
    assert_eq!(
        full + sent,
        200.0,
        "every sample sent or counted as dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resharding_keeps_order_and_loses_nothing() {
    let (mock, url) = start_mock().await;
    *mock.delay.lock() = Duration::from_millis(5);
    let extra = "    queue_config: {max_samples_per_send: 20, batch_send_deadline: 20ms, min_backoff: 10ms}\n";
    let (head, rw, _reg) = setup(&url, extra, "  scrape_interval: 1m");
    let q = rw.queues().pop().unwrap();
    let mut want: BTreeMap<Labels, Vec<(i64, u64)>> = BTreeMap::new();
    for (round, shards) in [4usize, 2, 7, 1].into_iter().enumerate() {
        for (l, v) in append(&head, 10, 30, 1_000_000 + round as i64 * 100_000) {
            want.entry(l).or_default().extend(v);
        }
        q.reshard(shards);
        assert_eq!(q.num_shards(), shards);
    }
    rw.stop(Duration::from_secs(20)).await;
    let got = mock.accepted();
    assert_eq!(got.len(), 10);
    for (l, v) in &want {
        assert_eq!(got.get(l), Some(v), "{l}: samples lost or out of order");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_restarts_only_changed_queues() {
    let (mock_a, url_a) = start_mock().await;
    let (mock_b, url_b) = start_mock().await;
    let y = |b_extra: &str| {
        format!(
            "remote_write:\n  - url: {url_a}\n    name: a\n{FAST}  - url: {url_b}\n    name: b\n{FAST}{b_extra}"
        )
    };
    let cfg1 = klaxon::settings::load_str(&y(""), "t").unwrap();
    let head = Arc::new(Head::default());
    let reg = Arc::new(Registry::new());
    let rw = RemoteWrite::new(&head, &reg);
    assert!(rw
        .apply_config(&cfg1.remote_write, &Labels::empty())
        .is_empty());
    let before = rw.queues();
    let cfg2 = klaxon::settings::load_str(&y("    remote_timeout: 5s\n"), "t").unwrap();
    assert!(rw
        .apply_config(&cfg2.remote_write, &Labels::empty())
        .is_empty());
    let after = rw.queues();
    assert!(Arc::ptr_eq(&before[0], &after[0]), "unchanged queue kept");
    assert!(
        !Arc::ptr_eq(&before[1], &after[1]),
        "changed queue restarted"
    );
    let want = append(&head, 1, 3, 1_000_000);
    rw.stop(Duration::from_secs(5)).await;
    assert_eq!(mock_a.accepted(), want);
    assert_eq!(mock_b.accepted(), want);
    // Removing every entry stops sending.
    assert!(rw.apply_config(&[], &Labels::empty()).is_empty());
    assert!(rw.queues().is_empty());
}

/// A `remote_write` section as Prometheus 2.42 documents it, every field we
/// support set. promtool is the referee for "Prometheus' shape".
const FULL_SECTION: &str = r#"
global:
  external_labels: {cluster: c1}
remote_write:
  - url: https://mimir.example/api/v1/push
    name: mimir
    remote_timeout: 10s
    headers: {X-Scope-OrgID: tenant-1}
    basic_auth: {username: u, password: hunter2}
    tls_config: {insecure_skip_verify: true, min_version: TLS12}
    follow_redirects: false
    enable_http2: false
    send_exemplars: false
    write_relabel_configs:
      - {source_labels: [__name__], regex: 'go_.*', action: drop}
    queue_config:
      capacity: 5000
      max_shards: 50
      min_shards: 2
      max_samples_per_send: 1000
      batch_send_deadline: 2s
      min_backoff: 50ms
      max_backoff: 10s
      retry_on_http_429: true
    metadata_config: {send: true, send_interval: 1m, max_samples_per_send: 500}
  - url: http://127.0.0.1:9090/api/v1/write
    authorization: {type: Bearer, credentials: s3cr3t}
"#;

#[test]
fn check_config_accepts_prometheus_remote_write() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("prometheus.yml");
    std::fs::write(&p, FULL_SECTION).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(["check", "config"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cfg = klaxon::settings::load_file(&p).unwrap();
    assert_eq!(cfg.remote_write.len(), 2);
    assert_eq!(cfg.remote_write[0].queue.max_shards, 50);
    match Command::new("promtool")
        .args(["check", "config"])
        .arg(&p)
        .output()
    {
        Ok(o) => assert!(
            o.status.success(),
            "promtool rejects our example: {}",
            String::from_utf8_lossy(&o.stdout)
        ),
        Err(_) => assert!(!common::is_ci(), "promtool missing under CI"),
    }

    // A misspelt field is an error naming it, at its line.
    std::fs::write(
        &p,
        "remote_write:\n  - url: http://a/w\n    queue_config:\n      max_shard: 3\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(["check", "config"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(":4:") && err.contains("unknown field `max_shard`"),
        "{err}"
    );
}
