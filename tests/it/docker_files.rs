//! The docker/ files, checked without a Docker engine: references between
//! them (mounted files, ports, flags, paths) and the configuration files with
//! `klaxon check config` and `promtool check config`.

use crate::common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn docker(rel: &str) -> PathBuf {
    Path::new(ROOT).join("docker").join(rel)
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn yaml(p: &Path) -> Value {
    serde_saphyr::from_str(&read(p)).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn compose() -> Value {
    yaml(&docker("docker-compose.yml"))
}

/// The port each service listens on inside the stack.
fn service_ports() -> BTreeMap<&'static str, u16> {
    BTreeMap::from([
        ("klaxon", 9470),
        ("prometheus", 9090),
        ("grafana", 3000),
        ("postgres", 5432),
        ("webhook", 8080),
    ])
}

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

#[test]
fn compose_services_mounts_and_ports_agree() {
    let c = compose();
    let services = c["services"].as_object().expect("services");
    let names: Vec<&str> = services.keys().map(String::as_str).collect();
    let ports = service_ports();
    assert_eq!(names.len(), ports.len(), "{names:?}");
    for (name, svc) in services {
        let port = ports
            .get(name.as_str())
            .unwrap_or_else(|| panic!("unexpected service {name}"));
        // Published ports map to the service's own port.
        for p in strs(&svc["ports"]) {
            let container = p.rsplit(':').next().unwrap_or("");
            assert_eq!(container, port.to_string(), "{name}: ports {p}");
        }
        // Bind mounts point at files or directories that exist.
        for v in strs(&svc["volumes"]) {
            let src = v.split(':').next().unwrap_or("");
            if src.starts_with('.') {
                let p = docker(src);
                assert!(p.exists(), "{name}: mount source {src} missing");
            } else {
                assert!(
                    c["volumes"].get(src).is_some(),
                    "{name}: named volume {src} not declared"
                );
            }
        }
        for dep in svc["depends_on"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_else(|| strs(&svc["depends_on"]))
        {
            assert!(services.contains_key(&dep), "{name}: depends on {dep}");
        }
    }
    // klaxon listens where the compose file and the Dockerfile say.
    let cmd = strs(&c["services"]["klaxon"]["command"]);
    let listen = cmd
        .iter()
        .position(|a| a == "--listen")
        .and_then(|i| cmd.get(i + 1))
        .expect("--listen in the klaxon command");
    assert_eq!(listen, "0.0.0.0:9470");
    // The build context is the repository root and names this Dockerfile.
    assert_eq!(c["services"]["klaxon"]["build"]["context"], "..");
    assert_eq!(
        c["services"]["klaxon"]["build"]["dockerfile"],
        "docker/Dockerfile"
    );
    assert!(Path::new(ROOT).join("docker/Dockerfile").is_file());
}

#[test]
fn klaxon_command_uses_only_existing_flags() {
    let c = compose();
    let cmd = strs(&c["services"]["klaxon"]["command"]);
    assert_eq!(cmd.first().map(String::as_str), Some("run"));
    let out = Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(["run", "--help"])
        .output()
        .expect("klaxon run --help");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in cmd.iter().filter(|a| a.starts_with("--")) {
        let name = flag.split('=').next().unwrap_or(flag);
        assert!(help.contains(name), "klaxon run has no {name}:\n{help}");
    }
    // The mounted config is the one the command reads.
    let config = cmd
        .iter()
        .position(|a| a == "--config")
        .and_then(|i| cmd.get(i + 1))
        .expect("--config");
    assert!(
        strs(&c["services"]["klaxon"]["volumes"])
            .iter()
            .any(|v| v.split(':').nth(1) == Some(config.as_str())),
        "{config} is not mounted"
    );
}

/// Every `host:port` scrape or Alertmanager target names a service of the
/// stack on its port (or the scraper itself).
fn check_targets(cfg: &Value, file: &str, own_port: u16) {
    let ports = service_ports();
    let mut targets = Vec::new();
    for sc in cfg["scrape_configs"].as_array().expect("scrape_configs") {
        for st in sc["static_configs"].as_array().into_iter().flatten() {
            targets.extend(strs(&st["targets"]));
        }
    }
    for am in cfg["alerting"]["alertmanagers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        for st in am["static_configs"].as_array().into_iter().flatten() {
            targets.extend(strs(&st["targets"]));
        }
    }
    assert!(!targets.is_empty(), "{file}: no targets");
    for t in targets {
        let (host, port) = t.rsplit_once(':').expect("host:port");
        let port: u16 = port.parse().expect("port");
        let want = if host == "localhost" {
            own_port
        } else {
            *ports
                .get(host)
                .unwrap_or_else(|| panic!("{file}: target {t} is no service"))
        };
        assert_eq!(port, want, "{file}: target {t}");
    }
}

fn promtool() -> Option<PathBuf> {
    let p = std::env::var_os("PROMTOOL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/promtool"));
    if p.exists() {
        return Some(p);
    }
    assert!(
        !common::is_ci(),
        "promtool missing under CI ({})",
        p.display()
    );
    eprintln!("SKIPPED: promtool not installed; promtool checks not run");
    None
}

#[test]
fn configs_pass_klaxon_and_promtool() {
    let prom = docker("prometheus/prometheus.yml");
    let klx = docker("klaxon/klaxon.yml");
    for f in [&prom, &klx] {
        let out = Command::new(env!("CARGO_BIN_EXE_klaxon"))
            .args(["check", "config"])
            .arg(f)
            .output()
            .expect("klaxon check config");
        assert!(
            out.status.success(),
            "{}: {}{}",
            f.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let p = yaml(&prom);
    check_targets(&p, "prometheus.yml", 9090);
    // Prometheus' rule globs are where the compose file mounts the rules.
    let mounts = strs(&compose()["services"]["prometheus"]["volumes"]);
    for g in strs(&p["rule_files"]) {
        let dir = g.rsplit_once('/').map(|(d, _)| d).unwrap_or("");
        assert!(
            mounts.iter().any(|m| m.split(':').nth(1) == Some(dir)),
            "rule_files {g}: {dir} is not mounted"
        );
    }
    let k = yaml(&klx);
    check_targets(&k, "klaxon.yml", 9470);
    // The data volume of the image is the configured storage path.
    let storage = k["storage"]["path"].as_str().expect("storage.path");
    assert!(
        read(&docker("Dockerfile")).contains(&format!("\"{storage}\"")),
        "Dockerfile VOLUME misses {storage}"
    );
    if let Some(promtool) = promtool() {
        let out = Command::new(promtool)
            .args(["check", "config"])
            .arg(&prom)
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "promtool check config: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn grafana_provisioning_matches_the_stack() {
    let ds = yaml(&docker("grafana/provisioning/datasources/datasources.yml"));
    let urls: Vec<String> = ds["datasources"]
        .as_array()
        .expect("datasources")
        .iter()
        .map(|d| d["url"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(urls, ["http://prometheus:9090", "http://klaxon:9470"]);
    assert!(ds["datasources"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|d| d["type"] == "prometheus"));
    let prov = yaml(&docker("grafana/provisioning/dashboards/dashboards.yml"));
    let path = prov["providers"][0]["options"]["path"]
        .as_str()
        .expect("provider path");
    let mounts = strs(&compose()["services"]["grafana"]["volumes"]);
    assert!(
        mounts
            .iter()
            .any(|m| m.starts_with("./grafana/dashboards:") && m.split(':').nth(1) == Some(path)),
        "dashboards are not mounted at {path}: {mounts:?}"
    );
}

#[test]
fn postgres_role_and_notify_config_are_consistent() {
    let sql = read(&docker("postgres/init/01-klaxon-monitor.sql"));
    assert!(sql.contains("GRANT pg_monitor TO klaxon_monitor;"), "{sql}");
    assert!(sql.contains("default_transaction_read_only = on"), "{sql}");
    let dsn = compose()["services"]["klaxon"]["environment"]["DATA_SOURCE_NAME"]
        .as_str()
        .expect("DATA_SOURCE_NAME")
        .to_string();
    assert!(
        dsn.starts_with("postgresql://klaxon_monitor:klaxon-monitor@postgres:5432/"),
        "{dsn}"
    );
    assert!(sql.contains("PASSWORD 'klaxon-monitor'"));
    let n = yaml(&docker("klaxon/notify.yml"));
    let receiver = n["route"]["receiver"].as_str().expect("route.receiver");
    let r = n["receivers"]
        .as_array()
        .expect("receivers")
        .iter()
        .find(|r| r["name"] == receiver)
        .expect("route receiver is defined");
    assert_eq!(r["webhook_configs"][0]["url"], "http://webhook:8080/klaxon");
}

#[test]
fn dockerfile_is_multistage_non_root_with_healthcheck() {
    let d = read(&docker("Dockerfile"));
    let lines: Vec<&str> = d
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let froms = lines.iter().filter(|l| l.starts_with("FROM ")).count();
    assert!(froms >= 2, "not multi-stage");
    assert!(lines
        .iter()
        .any(|l| l.starts_with("FROM ") && l.contains(" AS builder")));
    let user = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER");
    assert!(user != "root" && user != "0", "runs as {user}");
    assert!(d.contains("HEALTHCHECK") && d.contains("http://127.0.0.1:9470/-/healthy"));
    assert!(lines.contains(&"EXPOSE 9470"));
    assert!(d.contains("VOLUME [\"/etc/klaxon\""));
    assert!(d.contains("\"--listen\", \"0.0.0.0:9470\""));
    // Every COPY source from the build context exists.
    for l in &lines {
        let Some(rest) = l.strip_prefix("COPY ") else {
            continue;
        };
        if rest.starts_with("--from") {
            continue;
        }
        let parts: Vec<&str> = rest.split_whitespace().collect();
        for src in &parts[..parts.len().saturating_sub(1)] {
            if *src == "." {
                continue;
            }
            assert!(Path::new(ROOT).join(src).exists(), "COPY {src}: missing");
        }
    }
}

/// `docker compose config -q` (or docker-compose 1.x) when a client is
/// installed; it needs no daemon. Not required: CI has no Docker client.
#[test]
fn compose_config_validates_when_a_client_is_installed() {
    let dir = docker("");
    for cmd in [vec!["docker", "compose"], vec!["docker-compose"]] {
        let probe = Command::new(cmd[0]).args(&cmd[1..]).arg("version").output();
        if !probe.is_ok_and(|o| o.status.success()) {
            continue;
        }
        let out = Command::new(cmd[0])
            .args(&cmd[1..])
            .args(["config", "-q"])
            .current_dir(&dir)
            .output()
            .expect("compose config");
        assert!(
            out.status.success(),
            "{cmd:?} config: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    eprintln!("SKIPPED: no docker compose client; compose file not validated by Docker");
}
