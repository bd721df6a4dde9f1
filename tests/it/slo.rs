//! `klaxon slo generate`: the committed example is what the generator
//! writes today, generated rules and tests pass in klaxon and promtool, and
//! the generated alerts fire as derived by hand from raw counters.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn example() -> PathBuf {
    Path::new(ROOT).join("recording_rules/slo/checkout.slo.yml")
}

fn klaxon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_klaxon"))
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

fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.output().expect("spawn");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn committed_example_output_is_up_to_date() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, out, err) = run(klaxon()
        .args(["slo", "generate"])
        .arg(example())
        .arg("-o")
        .arg(dir.path()));
    assert_eq!(code, 0, "{out}{err}");
    let committed = Path::new(ROOT).join("recording_rules/slo/generated");
    for rel in ["checkout.yml", "tests/checkout.test.yml"] {
        assert_eq!(
            read(&dir.path().join(rel)),
            read(&committed.join(rel)),
            "recording_rules/slo/generated/{rel} is stale: run klaxon slo generate recording_rules/slo/checkout.slo.yml -o recording_rules/slo/generated"
        );
    }
    // Without -o the rules go to stdout, byte for byte the same.
    let (code, out, err) = run(klaxon().args(["slo", "generate"]).arg(example()));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, read(&committed.join("checkout.yml")));
}

#[test]
fn generated_rules_follow_the_workbook() {
    let spec = klaxon::slo::load_file(&example()).expect("valid example");
    let g = klaxon::slo::generate(&spec, "checkout.slo.yml");
    for w in ["5m", "30m", "1h", "2h", "6h", "1d", "3d", "30d"] {
        assert!(
            g.rules
                .contains(&format!("- record: slo:sli_error:ratio_rate{w}\n")),
            "window {w}"
        );
    }
    for (long, short, factor) in [
        ("1h", "5m", "14.4"),
        ("6h", "30m", "6"),
        ("1d", "2h", "3"),
        ("3d", "6h", "1"),
    ] {
        let want = format!(
            "(slo:sli_error:ratio_rate{long}{{slo_service=\"checkout\",slo_name=\"requests-availability\"}}) > ({factor} * 0.001)\n            and\n            max without (slo_window) (slo:sli_error:ratio_rate{short}{{slo_service=\"checkout\",slo_name=\"requests-availability\"}}) > ({factor} * 0.001)"
        );
        assert!(g.rules.contains(&want), "{long}/{short} at {factor}x");
    }
    let rf = klaxon::rules::file::parse_rule_file(
        "checkout.yml",
        g.rules.as_bytes(),
        klaxon::rules::file::Dialect::Prometheus2_42,
    )
    .expect("generated rules load in klaxon");
    let alerts: Vec<_> = rf
        .groups
        .iter()
        .flat_map(|g| &g.rules)
        .filter_map(|r| match &r.kind {
            klaxon::rules::file::RuleKind::Alert(a) => Some((a.clone(), r)),
            _ => None,
        })
        .collect();
    assert_eq!(alerts.len(), 4, "two alerts per SLO");
    for (name, r) in alerts {
        assert_eq!(
            r.annotations.get("runbook_url").map(String::as_str),
            Some(format!("{{{{ $externalURL }}}}/runbooks/{name}").as_str())
        );
    }
}

/// Another definition (other objective, 28d, good/total, labels needing
/// quotes): generate, then check and test the output with both tools.
#[test]
fn generated_files_pass_klaxon_and_promtool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let def = dir.path().join("search.slo.yml");
    std::fs::write(
        &def,
        "service: search\nlabels:\n  owner: 'team \"search\" \\ it''s'\nslos:\n  - name: fast-queries\n    objective: 99.95\n    window: 28d\n    sli:\n      good_query: sum(rate(query_duration_seconds_bucket{le=\"0.1\"}[{{.window}}]))\n      total_query: sum(rate(query_duration_seconds_count[{{.window}}]))\n",
    )
    .expect("write");
    let out_dir = dir.path().join("out");
    let (code, out, err) = run(klaxon()
        .args(["slo", "generate"])
        .arg(&def)
        .arg("-o")
        .arg(&out_dir));
    assert_eq!(code, 0, "{out}{err}");
    let rules = out_dir.join("search.yml");
    let tests = out_dir.join("tests/search.test.yml");
    assert!(read(&rules).contains("slo:sli_error:ratio_rate28d"));
    assert!(read(&rules).contains("(14.4 * 0.0005)"));

    let (code, out, err) = run(klaxon().args(["check", "rules"]).arg(&rules));
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = run(klaxon().args(["test", "rules"]).arg(&tests));
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("SUCCESS"), "{out}");

    let Some(promtool) = promtool() else { return };
    let (code, out, err) = run(Command::new(&promtool).args(["check", "rules"]).arg(&rules));
    assert_eq!(code, 0, "promtool check rules: {out}{err}");
    let (code, out, err) = run(Command::new(&promtool).args(["test", "rules"]).arg(&tests));
    assert_eq!(code, 0, "promtool test rules: {out}{err}");
}

/// The hand-written tests of the example against raw metrics: its SLI
/// queries, and the generated burn-rate alerts with expectations derived by
/// hand from the error ratio and the workbook's thresholds (not written by
/// the generator).
#[test]
fn example_hand_written_tests_pass_in_both_tools() {
    for f in ["checkout-sli.test.yml", "checkout-burn.test.yml"] {
        let t = Path::new(ROOT).join("recording_rules/slo").join(f);
        let (code, out, err) = run(klaxon().args(["test", "rules"]).arg(&t));
        assert_eq!(code, 0, "klaxon {f}: {out}{err}");
        let Some(promtool) = promtool() else { return };
        let (code, out, err) = run(Command::new(&promtool).args(["test", "rules"]).arg(&t));
        assert_eq!(code, 0, "promtool {f}: {out}{err}");
    }
}

#[test]
fn invalid_definitions_fail_with_a_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let def = dir.path().join("bad.slo.yml");
    std::fs::write(
        &def,
        "service: x\nslos:\n  - name: a\n    objective: 120\n    sli:\n      error_query: e[{{.window}}]\n      total_query: t[{{.window}}]\n",
    )
    .expect("write");
    let (code, out, err) = run(klaxon().args(["slo", "generate"]).arg(&def));
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("bad.slo.yml:4:16: slos[0].objective: must be a percentage"),
        "{err}"
    );
    let (code, _, err) = run(klaxon()
        .args(["slo", "generate"])
        .arg(dir.path().join("missing.yml")));
    assert_eq!(code, 1);
    assert!(err.contains("missing.yml"), "{err}");
}
