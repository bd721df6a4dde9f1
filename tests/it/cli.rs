//! The binary's edge: exit codes and error formats.

use std::process::Command;

fn klaxon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_klaxon"))
}

#[test]
fn version_prints_the_crate_version() {
    let out = klaxon().arg("--version").output().unwrap();
    assert!(out.status.success());
    let s = String::from_utf8_lossy(&out.stdout);
    assert_eq!(s.trim(), format!("klaxon {}", env!("CARGO_PKG_VERSION")));
}

/// Two semantic errors: both must be reported.
const BAD: &str = "global:\n  scrape_interval: 1x\nscrape_configs:\n  - job_name: a\n    scrape_interval: 5s\n    scrape_timeout: 10s\n";
/// A structural error stops deserialization: reported at its own position.
const UNKNOWN_FIELD: &str = "scrape_configs:\n  - job_name: a\n    bogus_field: 1\n";

#[test]
fn check_config_lists_every_error_with_position() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yml");
    std::fs::write(&f, BAD).unwrap();
    let out = klaxon().args(["check", "config"]).arg(&f).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let prefix = format!("{}:", f.display());
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with(&prefix)).collect();
    assert_eq!(lines.len(), 2, "stderr: {err}");
    assert!(lines[0].starts_with(&format!("{prefix}2:")), "{err}");
    assert!(
        lines[1].contains("scrape timeout greater than scrape interval"),
        "{err}"
    );
    for l in &lines {
        // FILE:LINE:COL: message
        let rest = &l[prefix.len()..];
        let mut parts = rest.splitn(3, ':');
        let line: usize = parts.next().unwrap().parse().expect(l);
        let col: usize = parts.next().unwrap().parse().expect(l);
        assert!(line >= 1 && col >= 1, "{l}");
    }

    let unknown = dir.path().join("unknown.yml");
    std::fs::write(&unknown, UNKNOWN_FIELD).unwrap();
    let out = klaxon()
        .args(["check", "config"])
        .arg(&unknown)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with(&format!(
            "{}:3:5: unknown field `bogus_field`",
            unknown.display()
        )),
        "{err}"
    );

    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "scrape_configs:\n  - job_name: a\n    static_configs:\n      - targets: ['127.0.0.1:1']\n",
    )
    .unwrap();
    let out = klaxon()
        .args(["check", "config"])
        .arg(&good)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn run_rejects_a_bad_config_before_binding() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bad.yml");
    std::fs::write(&f, BAD).unwrap();
    // Hold the port: if klaxon tried to bind first, it would report that instead.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let out = klaxon()
        .args(["run", "--listen", &addr, "--config"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:2:", f.display())), "{err}");
    assert!(!err.contains("listen on"), "{err}");
}
