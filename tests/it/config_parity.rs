//! `klaxon check config` against `promtool check config` (2.42) on every
//! file of Prometheus' own config test data
//! (`../shared/upstream/prometheus/config/testdata/`): the same verdict, and
//! for bad files the expected error text of `bad-config-errors.tsv`
//! contained in klaxon's output.
//!
//! The test data is Prometheus 3.x's. Where promtool 2.42 and 3.x disagree
//! (features or checks added since), klaxon follows 3.x: the verdict the
//! file name states (`.good.yml` / `.bad.yml`). Files using features klaxon
//! does not have are listed with the reason and not counted; files using a
//! service discovery mechanism other than static/file are the SD work's.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Not checked here, with the reason (prefix of the file name).
const UNSUPPORTED: &[(&str, &str)] = &[
    ("tsdb_", "storage.tsdb is Prometheus' TSDB tuning: accepted and ignored with a warning"),
    ("remote_read", "remote_read is accepted and ignored with a warning (not implemented)"),
    ("empty_rr_config", "remote_read is accepted and ignored with a warning (not implemented)"),
    ("tracing_", "tracing: is not supported"),
    ("scrape_config_files", "scrape_config_files / fallback_scrape_protocol are not supported"),
    ("remote_write_wrong_msg", "remote write 2.0 (protobuf_message) is not supported"),
    ("remote_write_retry_on_rate_limit.good.yml", "klaxon refuses a remote_write url without http(s):// (\"localhost:9090\"), which Prometheus accepts and then cannot send to; docs/compatibility.md"),
];

/// Same verdict required, but klaxon's text differs on purpose.
const OWN_MESSAGE: &[(&str, &str)] = &[
    ("section_key_dup.bad.yml", "Prometheus names a Go type (config.plain); klaxon says duplicate key \"scrape_configs\" at its position"),
    ("unknown_global_attr.bad.yml", "Prometheus names a Go type (config.plain); klaxon says unknown field `nonexistent_field` at its position"),
    ("labelname.bad.yml", "!!binary non-UTF-8 label: rejected by the YAML decoder with its own text"),
    ("labelvalue.bad.yml", "!!binary non-UTF-8 label: rejected by the YAML decoder with its own text"),
    ("labelmap.bad.yml", "!!binary with bad base64: rejected by the YAML decoder with its own text"),
    ("empty_scrape_config_action.bad.yml", "`action: null` reads as the default action (replace); klaxon then asks for its target_label"),
];

/// Where promtool 2.42 and Prometheus 3.x disagree; klaxon follows 3.x.
const NEWER_THAN_2_42: &[(&str, &str)] = &[
    (
        "remote_write_queue_",
        "queue settings are validated since 2.42",
    ),
    (
        "scrape_config_disable_compression.good.yml",
        "enable_compression is newer than 2.42",
    ),
    (
        "global_enable_scrape_native_hist",
        "scrape_native_histograms is Prometheus 3.x",
    ),
    (
        "local_enable_scrape_native_hist",
        "scrape_native_histograms is Prometheus 3.x",
    ),
    (
        "local_disable_scrape_native_hist",
        "scrape_native_histograms is Prometheus 3.x",
    ),
    (
        "global_scrape_protocols_and_local_disable_scrape_native_hist",
        "scrape_native_histograms is Prometheus 3.x",
    ),
    (
        "global_convert_classic_hist_to_nhcb",
        "convert_classic_histograms_to_nhcb is Prometheus 3.x",
    ),
    (
        "local_convert_classic_hist_to_nhcb",
        "convert_classic_histograms_to_nhcb is Prometheus 3.x",
    ),
    (
        "local_disable_convert_classic_hist_to_nhcb",
        "convert_classic_histograms_to_nhcb is Prometheus 3.x",
    ),
    (
        "global_disable_always_scrape_classic_hist",
        "always_scrape_classic_histograms is Prometheus 3.x",
    ),
    (
        "global_enable_always_scrape_classic_hist",
        "always_scrape_classic_histograms is Prometheus 3.x",
    ),
    (
        "local_disable_always_scrape_classic_hist",
        "always_scrape_classic_histograms is Prometheus 3.x",
    ),
    (
        "local_enable_always_scrape_classic_hist",
        "always_scrape_classic_histograms is Prometheus 3.x",
    ),
    (
        "config_with_deprecated_am_api_config.yml",
        "Alertmanager API v1 is gone in 3.x",
    ),
    ("otlp_", "the otlp: section is newer than 2.42"),
    (
        "metric_name_validation_scheme",
        "metric_name_validation_scheme is newer than 2.42",
    ),
    (
        "scrape_config_utf8_conflicting",
        "metric_name_escaping_scheme is newer than 2.42",
    ),
    (
        "scrape_config_default_validation_mode",
        "UTF-8 validation (3.x's default)",
    ),
    (
        "scrape_config_global_validation_mode",
        "metric_name_validation_scheme is newer than 2.42",
    ),
    (
        "scrape_config_local_",
        "metric_name_validation_scheme is newer than 2.42",
    ),
];

fn reason<'a>(list: &'a [(&str, &str)], file: &str) -> Option<&'a str> {
    list.iter()
        .find(|(p, _)| file.starts_with(p))
        .map(|(_, r)| *r)
}

/// Uses a discovery mechanism other than static_configs / file_sd_configs.
fn uses_other_sd(text: &str) -> bool {
    text.lines().any(|l| {
        let k = l
            .trim()
            .trim_start_matches("- ")
            .split(':')
            .next()
            .unwrap_or("");
        k.ends_with("_sd_configs") && k != "file_sd_configs"
    })
}

struct Outcome {
    ok: bool,
    text: String,
}

fn run(cmd: &str, file: &str, dir: &Path) -> Outcome {
    let o = Command::new(cmd)
        .args(["check", "config", file])
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    Outcome {
        ok: o.status.success(),
        text: format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    }
}

#[test]
fn check_config_matches_promtool_on_prometheus_testdata() {
    let Some(promtool) = common::peer("promtool") else {
        return;
    };
    let Some(dir) = common::data_dir("upstream/prometheus/config/testdata") else {
        return;
    };
    let tsv = std::fs::read_to_string(dir.join("../bad-config-errors.tsv")).expect("tsv");
    let expected: BTreeMap<&str, &str> = tsv
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once('\t'))
        .collect();
    let klaxon = env!("CARGO_BIN_EXE_klaxon");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("testdata")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml") || n.ends_with(".yaml"))
        .collect();
    files.sort();
    let (mut checked, mut sd, mut skipped, mut newer) = (0, Vec::new(), Vec::new(), 0);
    let mut failures = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(dir.join(f)).unwrap_or_default();
        if uses_other_sd(&text) {
            sd.push(f.clone());
            continue;
        }
        if let Some(r) = reason(UNSUPPORTED, f) {
            skipped.push(format!("{f}: {r}"));
            continue;
        }
        let k = run(klaxon, f, &dir);
        let p = run(promtool.to_str().unwrap_or("promtool"), f, &dir);
        let want_ok = match reason(NEWER_THAN_2_42, f) {
            Some(_) => {
                newer += 1;
                // `.incompatible.` files fail to load in 3.x too.
                !f.contains(".bad.")
                    && !f.contains(".incompatible.")
                    && f != "config_with_deprecated_am_api_config.yml"
            }
            None => p.ok,
        };
        checked += 1;
        if k.ok != want_ok {
            failures.push(format!(
                "{f}: klaxon {} but expected {} (promtool 2.42: {})\n  klaxon: {}\n  promtool: {}",
                verdict(k.ok),
                verdict(want_ok),
                verdict(p.ok),
                k.text.trim().replace('\n', "\n          "),
                p.text.trim().replace('\n', "\n          ")
            ));
            continue;
        }
        if let (Some(e), false) = (expected.get(f.as_str()), k.ok) {
            if reason(OWN_MESSAGE, f).is_none() && !k.text.contains(e) {
                failures.push(format!(
                    "{f}: klaxon's message lacks {e:?}:\n  {}",
                    k.text.trim()
                ));
            }
        }
    }
    eprintln!(
        "{checked} files compared ({newer} where 2.42 is older and klaxon follows 3.x); \
         {} SD-mechanism files excluded (service discovery work): {sd:?}; \
         unsupported features:\n  {}",
        sd.len(),
        skipped.join("\n  ")
    );
    assert!(checked > 80, "only {checked} files compared");
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "accepts"
    } else {
        "rejects"
    }
}

/// `check config` loads every rule file (as promtool, reporting each), a
/// glob matching nothing is a warning there and at `klaxon run`.
#[test]
fn check_config_checks_rule_files_and_warns_on_empty_globs() {
    let d = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(d.path().join("r")).expect("mkdir");
    std::fs::write(
        d.path().join("r/bad.yml"),
        "groups:\n- name: g\n  rules:\n  - alert: A\n    expr: up ==\n",
    )
    .expect("write");
    std::fs::write(
        d.path().join("r/good.yml"),
        "groups:\n- name: g\n  rules:\n  - record: a:b\n    expr: up\n",
    )
    .expect("write");
    std::fs::write(d.path().join("bad.yml"), "rule_files: [r/*.yml]\n").expect("write");
    std::fs::write(d.path().join("empty.yml"), "rule_files: [none/*.yml]\n").expect("write");
    let klaxon = env!("CARGO_BIN_EXE_klaxon");
    let k = run(klaxon, "bad.yml", d.path());
    assert!(!k.ok, "{}", k.text);
    for want in [
        "Checking r/bad.yml",
        "FAILED",
        "r/bad.yml:5:11",
        "unexpected end of input",
        "Checking r/good.yml",
        "SUCCESS: 1 rules found",
    ] {
        assert!(k.text.contains(want), "{want}: {}", k.text);
    }
    let k = run(klaxon, "empty.yml", d.path());
    assert!(k.ok, "{}", k.text);
    assert!(
        k.text
            .contains("WARNING: rule_files: pattern \"./none/*.yml\" matches no file"),
        "{}",
        k.text
    );

    // klaxon run says it too, once, at start.
    let mut child = common::Proc(
        Command::new(klaxon)
            .args(["run", "--config", "empty.yml", "--listen", "127.0.0.1:0"])
            .current_dir(d.path())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("klaxon run"),
    );
    let rx = common::stderr_lines(&mut child.0);
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = end.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) if l.contains("pattern matches no file") => break,
            Ok(l) => seen.push(l),
            Err(_) => panic!("no warning for the empty glob at run: {seen:#?}"),
        }
    }
}
