//! `--query.lookback-delta`: how far back an instant selector looks for a
//! sample. A target exposes one sample with an explicit timestamp 3 minutes
//! before the evaluation time (scraped with its timestamp honoured, so no
//! newer sample and no staleness marker follows it); an instant query at
//! that evaluation time finds it with the default 5m and with 4m, not with
//! 2m, in klaxon as in Prometheus 2.42 started with the same flag.

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::common::{self, fake_http::Action, fake_http::FakeHttp, Proc};

const PROMETHEUS: &str = "/usr/bin/prometheus";

fn now_ms() -> i64 {
    let d = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(d.as_millis()).expect("milliseconds fit")
}

fn config(target: &str, storage: Option<&Path>) -> String {
    let mut s = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n\
         scrape_configs:\n  - job_name: probe\n    static_configs:\n      - targets: ['{target}']\n"
    );
    if let Some(p) = storage {
        s.push_str(&format!("storage:\n  path: {}\n", p.display()));
    }
    s
}

/// `expr`'s result at `t` (seconds) from `base`, or `None` while the server
/// does not answer yet.
async fn result(base: &str, expr: &str, t: f64) -> Option<Vec<serde_json::Value>> {
    let url = format!(
        "{base}/api/v1/query?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("query", expr)
            .append_pair("time", &format!("{t:.3}"))
            .finish()
    );
    let r = reqwest::get(&url).await.ok()?;
    if r.status() != 200 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(&r.text().await.ok()?).ok()?;
    v["data"]["result"].as_array().cloned()
}

/// Waits until `base` holds the probe's sample (a range selector, which
/// the lookback does not affect), then answers how many series the
/// instant selector `lookback_probe` has at `t`.
async fn instant_series(base: &str, t: f64, who: &str) -> usize {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(r) = result(base, "count_over_time(lookback_probe[10m])", t).await {
            if !r.is_empty() {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "{who}: the probe's sample never arrived"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let r = result(base, "lookback_probe", t)
        .await
        .unwrap_or_else(|| panic!("{who}: instant query failed"));
    r.len()
}

async fn klaxon_series(target: &str, flag: Option<&str>, t: f64) -> usize {
    let dir = common::tempdir();
    let cfg = dir.path().join("klaxon.yml");
    std::fs::write(&cfg, config(target, Some(&dir.path().join("data")))).expect("write config");
    let port = common::free_port();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_klaxon"));
    cmd.arg("run")
        .arg("--config")
        .arg(&cfg)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .env("KLAXON_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(f) = flag {
        cmd.arg(format!("--query.lookback-delta={f}"));
    }
    let _proc = Proc(cmd.spawn().expect("start klaxon"));
    instant_series(
        &format!("http://127.0.0.1:{port}"),
        t,
        &format!("klaxon {flag:?}"),
    )
    .await
}

async fn prometheus_series(target: &str, flag: Option<&str>, t: f64) -> usize {
    let dir = common::tempdir();
    std::fs::write(dir.path().join("prometheus.yml"), config(target, None))
        .expect("write prometheus.yml");
    let port = common::free_port();
    let extra: Vec<String> = flag
        .map(|f| format!("--query.lookback-delta={f}"))
        .into_iter()
        .collect();
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let _proc = common::start_prometheus(Path::new(PROMETHEUS), dir.path(), port, &extra).await;
    instant_series(
        &format!("http://127.0.0.1:{port}"),
        t,
        &format!("prometheus {flag:?}"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookback_delta_flag_decides_instant_vector_staleness() {
    // One sample 3 minutes before the evaluation time.
    let sampled = now_ms() - 180_000;
    let t = (sampled + 180_000) as f64 / 1000.0;
    let body = format!("# TYPE lookback_probe gauge\nlookback_probe 1 {sampled}\n");
    let target = FakeHttp::start(move |_| Action::Respond {
        status: 200,
        content_type: "text/plain; version=0.0.4".into(),
        headers: Vec::new(),
        body: body.clone().into_bytes(),
    })
    .await;
    let addr = target.addr.to_string();
    let cases = [(None, 1), (Some("4m"), 1), (Some("2m"), 0)];
    for (flag, want) in cases {
        assert_eq!(
            klaxon_series(&addr, flag, t).await,
            want,
            "klaxon with --query.lookback-delta={flag:?}: series of lookback_probe 3m after its sample"
        );
    }
    if !Path::new(PROMETHEUS).exists() {
        assert!(
            !common::is_ci(),
            "{PROMETHEUS} missing under CI (../shared/tools/install-peers.sh)"
        );
        eprintln!("SKIPPED: the comparison with {PROMETHEUS} (not installed)");
        return;
    }
    for (flag, want) in cases {
        assert_eq!(
            prometheus_series(&addr, flag, t).await,
            want,
            "Prometheus with --query.lookback-delta={flag:?}"
        );
    }
}
