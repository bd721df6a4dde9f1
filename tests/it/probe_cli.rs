//! The three ways to use probes: `klaxon probe` (exit codes through the
//! real binary), `GET /probe` on a running klaxon, and the `probes:` config
//! section writing results into the head.

use crate::probe_support;

use probe_support::*;
use std::process::{Command, Output};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_klaxon");

async fn klaxon(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || Command::new(BIN).args(&args).output().unwrap())
        .await
        .unwrap()
}

/// An HTTP server that answers only once `n` requests are in flight at the
/// same time: checks against it succeed if and only if they run
/// concurrently (sequential ones time out waiting for the others).
async fn rendezvous_server(n: usize) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(n));
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = l.accept().await {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                barrier.wait().await;
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    addr
}

fn s(v: &[&str]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_exit_codes_and_output() {
    let http = http_server().await;
    let ok = format!("http://{http}/");
    let out = klaxon(s(&["probe", &ok])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.starts_with("TARGET"), "{stdout}");
    assert!(stdout.contains("http_2xx") && stdout.contains("PASS") && stdout.contains("200"));

    let out = klaxon(s(&[
        "probe",
        &format!("http://{http}/status/503"),
        "--json",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["success"], false);
    assert_eq!(v[0]["status"], 503);
    assert!(v[0]["reason"].as_str().unwrap().contains("status code"));

    let out = klaxon(s(&[
        "probe",
        &format!("http://{http}/status/503"),
        "--expect-status",
        "503",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(0));
    let out = klaxon(s(&["probe", &ok, "--expect-body", "^hello"])).await;
    assert_eq!(out.status.code(), Some(0));
    let out = klaxon(s(&["probe", &ok, "--expect-body", "^nope"])).await;
    assert_eq!(out.status.code(), Some(1));

    // host:port defaults to tcp_connect.
    let out = klaxon(s(&["probe", &http.to_string()])).await;
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("tcp_connect"));
    let closed = closed_port().await;
    let out = klaxon(s(&["probe", &closed.to_string()])).await;
    assert_eq!(out.status.code(), Some(1));

    // Timeout flag bounds a hanging target.
    let out = klaxon(s(&[
        "probe",
        &format!("http://{http}/hang"),
        "--timeout",
        "500ms",
    ]))
    .await;
    assert_eq!(out.status.code(), Some(1));

    // Bad usage: exit 2 with a message, nothing on stdout.
    for (args, msg) in [
        (s(&["probe", "ftp://example.com/"]), "unsupported scheme"),
        (s(&["probe", &ok, "--module", "nope"]), "unknown module"),
        (s(&["probe", "http://"]), "invalid target"),
        (s(&["probe", &ok, "--expect-body", "("]), "--expect-body"),
        (s(&["probe", &ok, "--timeout", "soon"]), "--timeout"),
        (s(&["probe"]), "required"),
    ] {
        let out = klaxon(args.clone()).await;
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_smoke_file_runs_checks_concurrently() {
    let http = http_server().await;
    let meet = rendezvous_server(2).await;
    let dir = tempfile::tempdir().unwrap();
    let mods = dir.path().join("mods.yml");
    std::fs::write(
        &mods,
        "modules:\n  teapot:\n    prober: http\n    http:\n      valid_status_codes: [418]\n",
    )
    .unwrap();
    let smoke = dir.path().join("smoke.yml");
    std::fs::write(
        &smoke,
        format!(
            "modules_file: mods.yml\ntimeout: 2s\nchecks:\n  - target: http://{http}/\n  - target: http://{http}/status/418\n    module: teapot\n  - target: http://{http}/hang\n  - target: http://{meet}/a\n  - target: {http}\n    module: tcp_connect\n  - target: http://{meet}/b\n"
        ),
    )
    .unwrap();
    let out = klaxon(s(&[
        "probe",
        "--config",
        &smoke.display().to_string(),
        "--json",
    ]))
    .await;
    // The two rendezvous checks succeed only because they ran at the same
    // time; the hanging one fails at its timeout.
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ok: Vec<bool> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["success"].as_bool().unwrap())
        .collect();
    assert_eq!(ok, vec![true, true, false, true, true, true], "{v:#}");

    let passing = dir.path().join("pass.yml");
    std::fs::write(
        &passing,
        format!("checks:\n  - target: http://{http}/\n    expect_body: world\n"),
    )
    .unwrap();
    let out = klaxon(s(&["probe", "--config", &passing.display().to_string()])).await;
    assert_eq!(out.status.code(), Some(0));

    let bad = dir.path().join("bad.yml");
    std::fs::write(&bad, "checks:\n  - target: http://x/\n    module: nope\n").unwrap();
    let out = klaxon(s(&["probe", "--config", &bad.display().to_string()])).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("checks[0]"));
    let badmods = dir.path().join("badmods.yml");
    std::fs::write(
        &badmods,
        "modules:\n  m:\n    prober: http\n    http:\n      fail_if_body_matches_regexp: ['[']\n",
    )
    .unwrap();
    let out = klaxon(s(&[
        "probe",
        "http://x/",
        "--modules",
        &badmods.display().to_string(),
    ]))
    .await;
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("badmods.yml:5:") && err.contains("fail_if_body_matches_regexp"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_endpoint_and_scheduled_probes() {
    let http = http_server().await;
    let closed = closed_port().await;
    let yaml = format!(
        "probes:
  - targets: ['http://{http}/', 'http://{closed}/']
    module: http_2xx
    interval: 200ms
    labels:
      team: web
"
    );
    let mut cfg = klaxon::settings::load_str(&yaml, "probes.yml").unwrap();
    // Its own store: tests in one binary run in parallel.
    let _store_dir = tempfile::tempdir().unwrap();
    cfg.storage.path = _store_dir.path().to_path_buf();
    assert_eq!(cfg.probes.probes.len(), 1);
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr);

    let r = reqwest::get(format!(
        "{base}/probe?target=http://{http}/&module=http_2xx"
    ))
    .await
    .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let body = r.text().await.unwrap();
    assert!(body.contains("probe_success 1\n"), "{body}");
    assert!(body.contains("# TYPE probe_http_status_code gauge\nprobe_http_status_code 200\n"));

    let body = reqwest::get(format!("{base}/probe?target=http://{http}/&debug=true"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.starts_with("Logs for the probe:\n"), "{body}");
    assert!(body.contains("msg=\"Beginning probe\""));
    assert!(body.contains("Metrics that would have been returned:\n"));
    assert!(body.contains("probe_success 1"));
    assert!(
        body.contains("Module configuration:\nprober: http\nhttp:\n  method: GET\n"),
        "{body}"
    );

    for (q, msg) in [
        ("target=x&module=nope", "unknown module"),
        ("module=http_2xx", "target parameter is missing"),
        ("target=ftp://x/", "unsupported scheme"),
        ("target=http://&module=http_2xx", "invalid target"),
        ("target=nohost&module=tcp_connect", "missing port"),
    ] {
        let r = reqwest::get(format!("{base}/probe?{q}")).await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{q}");
        let t = r.text().await.unwrap();
        assert!(t.contains(msg), "{q}: {t}");
    }

    // The scrape timeout header bounds the probe (blackbox: minus 0.5 s):
    // the debug log names the budget the probe ran with.
    let body = reqwest::Client::new()
        .get(format!("{base}/probe?target=http://{http}/hang&debug=true"))
        .header("X-Prometheus-Scrape-Timeout-Seconds", "1.2")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("timeout_seconds=0.7"), "{body}");
    assert!(body.contains("probe_success 0"), "{body}");

    // Scheduled probes land in the head with job/instance/module labels.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let (v, res) = loop {
        let v: serde_json::Value = reqwest::get(format!("{base}/api/v1/query?query=probe_success"))
            .await
            .unwrap()
            .bytes()
            .await
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap();
        let res = v["data"]["result"].as_array().cloned().unwrap_or_default();
        if res.len() >= 2 || std::time::Instant::now() > deadline {
            break (v, res);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(res.len(), 2, "{v}");
    for r in &res {
        let m = &r["metric"];
        assert_eq!(m["job"], "probe");
        assert_eq!(m["module"], "http_2xx");
        assert_eq!(m["team"], "web");
        let inst = m["instance"].as_str().unwrap();
        let want = if inst.contains(&http.to_string()) {
            "1"
        } else {
            "0"
        };
        assert_eq!(r["value"][1], want, "{inst}");
    }
    let v: serde_json::Value = reqwest::get(format!(
        "{base}/api/v1/query?query=probe_http_duration_seconds{{phase=\"connect\",instance=\"http://{http}/\"}}"
    ))
    .await
    .unwrap()
    .bytes()
    .await
    .map(|b| serde_json::from_slice(&b).unwrap())
    .unwrap();
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1, "{v}");
    app.stop().await;
}

#[test]
fn probes_config_errors_have_positions() {
    let e = klaxon::settings::load_str(
        "probes:\n  - targets: ['http://x/']\n    module: nope\n",
        "p.yml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("p.yml:3:13") && e.contains("unknown module"),
        "{e}"
    );
    let e = klaxon::settings::load_str(
        "probes:\n  - targets: ['ftp://x/']\n    module: http_2xx\n    interval: 0s\n",
        "p.yml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("p.yml:2:") && e.contains("unsupported scheme"),
        "{e}"
    );
    assert!(e.contains("p.yml:4:") && e.contains("interval"), "{e}");
}

#[tokio::test]
async fn stale_marker_for_vanished_series() {
    use klaxon::probe::schedule::{write_outcome, ProbeConfig};
    let head = klaxon::tsdb::Head::new(Default::default());
    let http = http_server().await;
    let cert = make_cert();
    let https = https_server(&cert).await;
    let modules = klaxon::probe::Modules::parse(
        "modules:\n  m:\n    prober: http\n    http:\n      tls_config:\n        insecure_skip_verify: true\n",
        "m.yml",
    )
    .unwrap();
    let m = modules.get("m").unwrap();
    let cfg = ProbeConfig {
        targets: vec![],
        module: m.clone(),
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(2),
        job: "probe".into(),
        labels: vec![],
    };
    let o1 =
        klaxon::probe::run_probe(&m, &format!("https://{https}/"), Duration::from_secs(2)).await;
    let mut o2 =
        klaxon::probe::run_probe(&m, &format!("http://{http}/"), Duration::from_secs(2)).await;
    // Same instance label for both runs: the TLS families disappear.
    o2.target = o1.target.clone();
    let now = klaxon::model::now_millis();
    let prev = write_outcome(&head, &cfg, &o1, now - 1000, &Default::default());
    let cur = write_outcome(&head, &cfg, &o2, now, &prev);
    assert!(cur.len() < prev.len());
    let sel = klaxon::model::Matcher::new(
        klaxon::model::MatchType::Equal,
        "__name__",
        "probe_ssl_earliest_cert_expiry",
    )
    .unwrap();
    let data = head.select(&[sel], now - 5000, now + 1);
    assert_eq!(data.len(), 1);
    let samples = &data[0].samples;
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].1, cert.not_after as f64);
    assert!(klaxon::model::is_stale_nan(samples[1].1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn modules_file_only_entry_serves_modules_on_probe() {
    let http = http_server().await;
    let dir = tempfile::tempdir().unwrap();
    let mods = dir.path().join("mods.yml");
    std::fs::write(
        &mods,
        "modules:\n  teapot:\n    prober: http\n    http:\n      valid_status_codes: [418]\n",
    )
    .unwrap();
    let cfg_path = dir.path().join("klaxon.yml");
    std::fs::write(&cfg_path, "probes:\n  - modules_file: mods.yml\n").unwrap();
    let mut cfg = klaxon::settings::load_file(&cfg_path).unwrap();
    cfg.storage.path = dir.path().join("data");
    assert!(cfg.probes.probes.is_empty());
    assert!(cfg.probes.modules.get("teapot").is_some());
    assert!(cfg.probes.modules.get("http_2xx").is_some());
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let body = reqwest::get(format!(
        "http://{}/probe?module=teapot&target=http://{http}/status/418",
        app.addr
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(body.contains("probe_success 1\n"), "{body}");
    app.stop().await;

    std::fs::write(&cfg_path, "probes:\n  - module: http_2xx\n").unwrap();
    let e = klaxon::settings::load_file(&cfg_path)
        .unwrap_err()
        .to_string();
    assert!(e.contains("targets must be set"), "{e}");
}
