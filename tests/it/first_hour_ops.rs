//! What a new user sees in logs and CLI messages, and how fast klaxon stops:
//! the access log at debug, every line JSON under `--log.format json`, an
//! error's cause said once, the probe CLI's wanted/got and known modules, a
//! logged notification naming its alerts, a failing rule logged once per
//! evaluation, and a stop that keeps within `--storage.remote.flush-deadline`
//! although the remote-write endpoint never answers.

use crate::common;

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const KLAXON: &str = env!("CARGO_BIN_EXE_klaxon");
const T: Duration = Duration::from_secs(30);

/// `klaxon run ARGS` in `dir`, its stderr lines on a channel.
fn spawn(dir: &std::path::Path, args: &[&str]) -> (common::Proc, mpsc::Receiver<String>) {
    let mut child = Command::new(KLAXON)
        .arg("run")
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("klaxon run");
    let rx = common::stderr_lines(&mut child);
    (common::Proc(child), rx)
}

/// Lines until `until` accepts one (returned last), or panics after `T`.
fn read_until(rx: &mpsc::Receiver<String>, until: impl Fn(&str) -> bool) -> Vec<String> {
    let end = Instant::now() + T;
    let mut seen = Vec::new();
    loop {
        match rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
            Ok(l) => {
                let done = until(&l);
                seen.push(l);
                if done {
                    return seen;
                }
            }
            Err(_) => panic!("never saw the line; got:\n{}", seen.join("\n")),
        }
    }
}

/// Everything on the channel for `d`.
fn read_for(rx: &mpsc::Receiver<String>, d: Duration) -> Vec<String> {
    let end = Instant::now() + d;
    let mut seen = Vec::new();
    while let Ok(l) = rx.recv_timeout(end.saturating_duration_since(Instant::now())) {
        seen.push(l);
    }
    seen
}

/// A GET over a plain TCP connection (answer ignored).
fn get(url: String) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap_or(&url);
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut c = std::net::TcpStream::connect(host)?;
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        c,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )?;
    let mut sink = Vec::new();
    let _ = c.read_to_end(&mut sink);
    Ok(())
}

fn listen_url(lines: &[String]) -> String {
    let l = lines.last().expect("a line");
    if let Some(u) = l.strip_prefix("klaxon listening on ") {
        return u.to_string();
    }
    let v: serde_json::Value = serde_json::from_str(l).expect("json line");
    v["url"].as_str().expect("url field").to_string()
}

fn config(dir: &std::path::Path, extra: &str) -> String {
    let p = dir.join("klaxon.yml");
    std::fs::write(
        &p,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nstorage:\n  path: {}\n{extra}",
            dir.join("data").display()
        ),
    )
    .expect("write config");
    p.display().to_string()
}

#[test]
fn json_logs_are_json_and_access_lines_are_debug() {
    let d = tempfile::tempdir().expect("tempdir");
    let cfg = config(d.path(), "");
    let (_p, rx) = spawn(
        d.path(),
        &[
            "--config",
            &cfg,
            "--listen",
            "127.0.0.1:0",
            "--log.format",
            "json",
        ],
    );
    let lines = read_until(&rx, |l| l.contains("klaxon listening"));
    let url = listen_url(&lines);
    for _ in 0..3 {
        let _ = get(format!("{url}/api/v1/query?query=up"));
    }
    let _ = get(format!("{url}/nope"));
    let later = read_for(&rx, Duration::from_secs(2));
    for l in lines.iter().chain(&later) {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(v["level"].is_string(), "{l}");
    }
    assert!(
        !later.iter().any(|l| l.contains("klaxon::access")),
        "access lines at the default level: {later:#?}"
    );

    // At debug they are there, with milliseconds to two decimals.
    let (_p, rx) = spawn(
        d.path(),
        &[
            "--config",
            &cfg,
            "--listen",
            "127.0.0.1:0",
            "--log.level",
            "debug",
        ],
    );
    let url = listen_url(&read_until(&rx, |l| l.starts_with("klaxon listening on ")));
    let _ = get(format!("{url}/api/v1/query?query=up"));
    let access = read_until(&rx, |l| l.contains("target=klaxon::access"));
    let line = access.last().expect("access line");
    assert!(line.contains("level=debug"), "{line}");
    let ms = line
        .split("duration_ms=")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .expect("duration_ms");
    assert!(
        ms.split('.').nth(1).is_none_or(|frac| frac.len() <= 2),
        "duration_ms={ms}"
    );
}

#[test]
fn a_port_in_use_is_said_once() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = held.local_addr().expect("addr").to_string();
    let d = tempfile::tempdir().expect("tempdir");
    let cfg = config(d.path(), "");
    let o = Command::new(KLAXON)
        .args(["run", "--config", &cfg, "--listen", &addr])
        .current_dir(d.path())
        .output()
        .expect("run");
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    let last = err.lines().last().unwrap_or("");
    assert!(last.contains("Address already in use"), "{err}");
    assert_eq!(
        last.matches("Address already in use").count(),
        1,
        "cause repeated: {last}"
    );
}

#[test]
fn probe_cli_says_wanted_and_got_and_lists_modules() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let l = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let port = l.local_addr().expect("addr").port();
    let server = rt.spawn(async move {
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let _ = axum::serve(l, app).await;
    });
    let o = Command::new(KLAXON)
        .args(["probe", "--expect-status", "204"])
        .arg(format!("http://127.0.0.1:{port}/"))
        .output()
        .expect("probe");
    let out = String::from_utf8_lossy(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(out.contains("wanted 204, got 200"), "{out}");
    let o = Command::new(KLAXON)
        .args(["probe", "--module", "nope", "http://127.0.0.1:1/"])
        .output()
        .expect("probe");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("unknown module \"nope\" (known: ") && err.contains("http_2xx"),
        "{err}"
    );
    server.abort();
}

#[test]
fn logged_notifications_name_their_alerts_and_rule_failures_log_once() {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        d.path().join("rules.yml"),
        "groups:\n- name: g\n  rules:\n  - alert: FirstHourAlways\n    expr: vector(1)\n  - alert: FirstHourFails\n    expr: 'label_replace(vector(1) or label_replace(vector(2), \"x\", \"y\", \"\", \"\"), \"x\", \"\", \"\", \"\")'\n",
    )
    .expect("rules");
    let cfg = config(
        d.path(),
        &format!(
            "rule_files: ['{}']\nnotify:\n  route:\n    receiver: nobody\n    group_wait: 0s\n  receivers:\n  - name: nobody\n",
            d.path().join("rules.yml").display()
        ),
    );
    let (_p, rx) = spawn(d.path(), &["--config", &cfg, "--listen", "127.0.0.1:0"]);
    let lines = read_until(&rx, |l| {
        l.contains("without integrations") && l.contains("FirstHourAlways")
    });
    let line = lines.last().expect("line");
    assert!(line.contains("receiver=nobody"), "{line}");
    // A failing rule: one line per evaluation (evaluations are 1s apart).
    let more = read_for(&rx, Duration::from_secs(3));
    let fails: Vec<&String> = lines
        .iter()
        .chain(&more)
        .filter(|l| l.contains("FirstHourFails") && l.contains("level=warn"))
        .collect();
    assert!(
        !fails.is_empty(),
        "the failing rule was not logged: {more:#?}"
    );
    let stamps: Vec<&str> = fails.iter().filter_map(|l| l.split(' ').next()).collect();
    for w in stamps.windows(2) {
        assert_ne!(w[0], w[1], "logged twice in one evaluation: {fails:#?}");
    }
}

#[test]
fn stop_keeps_within_the_flush_deadline_when_remote_write_hangs() {
    // Accepts connections (the kernel does) and never answers.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let hang_addr = hang.local_addr().expect("addr");
    let d = tempfile::tempdir().expect("tempdir");
    let port = common::free_port();
    let path = config(
        d.path(),
        &format!(
            "scrape_configs:\n- job_name: self\n  static_configs:\n  - targets: ['127.0.0.1:{port}']\nremote_write:\n- url: http://{hang_addr}/api/v1/write\n  queue_config: {{batch_send_deadline: 100ms}}\n"
        ),
    );
    let cfg = klaxon::settings::load_file(std::path::Path::new(&path)).expect("config");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let app = klaxon::app::start(
            cfg,
            klaxon::app::StartOptions::on(format!("127.0.0.1:{port}")),
        )
        .await
        .expect("start");
        // Some scrapes, so the queue holds samples it cannot send.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let deadline = Duration::from_secs(2);
        let t0 = Instant::now();
        app.stop_within(deadline).await;
        let took = t0.elapsed();
        assert!(
            took < deadline + Duration::from_millis(900),
            "stop took {took:?} with a {deadline:?} deadline"
        );
    });
    drop(hang);
}
