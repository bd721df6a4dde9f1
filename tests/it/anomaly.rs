//! `klaxon anomaly generate`: the committed output is what the generator
//! writes today, generated rules and tests pass in klaxon and promtool,
//! invalid definitions fail with a position, and the generated alerts catch
//! injected anomalies on synthetic seasonal series without firing on the
//! clean ones (measured with klaxon's own rule engine).

use crate::common;

use klaxon::anomaly::eval::{self, Scenario};
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn example() -> PathBuf {
    Path::new(ROOT).join("recording_rules/anomaly/klaxon.anomaly.yml")
}

fn klaxon() -> Command {
    Command::new(env!("CARGO_BIN_EXE_klaxon"))
}

fn promtool() -> Option<PathBuf> {
    common::peer("promtool")
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
        .args(["anomaly", "generate"])
        .arg(example())
        .arg("-o")
        .arg(dir.path()));
    assert_eq!(code, 0, "{out}{err}");
    let committed = Path::new(ROOT).join("recording_rules/anomaly/generated");
    for rel in ["klaxon.yml", "tests/klaxon.test.yml"] {
        assert_eq!(
            read(&dir.path().join(rel)),
            read(&committed.join(rel)),
            "recording_rules/anomaly/generated/{rel} is stale: run klaxon anomaly generate recording_rules/anomaly/klaxon.anomaly.yml -o recording_rules/anomaly/generated"
        );
    }
    let (code, out, err) = run(klaxon().args(["anomaly", "generate"]).arg(example()));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, read(&committed.join("klaxon.yml")));
}

/// A definition with each seasonality, directions, a quiet threshold, an
/// absolute minimum band, labels needing quotes: generate, then check and
/// test the output with both tools.
#[test]
fn generated_files_pass_klaxon_and_promtool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let def = dir.path().join("shop.anomaly.yml");
    std::fs::write(
        &def,
        "service: shop\nlabels:\n  owner: 'team \"web\" \\ it''s'\nsignals:\n  - name: orders\n    type: requests\n    query: sum by (region) (rate(orders_total[5m]))\n    by: [region]\n    quiet_below: 2\n  - name: p95\n    type: latency\n    query: histogram_quantile(0.95, sum by (le) (rate(d_bucket[5m])))\n    seasonality: none\n    for: 25m\n    severity: critical\n  - name: queue\n    type: resource\n    query: sum(queue_depth)\n    direction: down\n    seasonality: weekly\n    sensitivity: 5\n    min_band_abs: 3\n",
    )
    .expect("write");
    let out_dir = dir.path().join("out");
    let (code, out, err) = run(klaxon()
        .args(["anomaly", "generate"])
        .arg(&def)
        .arg("-o")
        .arg(&out_dir));
    assert_eq!(code, 0, "{out}{err}");
    let rules = out_dir.join("shop.yml");
    let tests = out_dir.join("tests/shop.test.yml");
    let text = read(&tests);
    assert!(text.contains("shop/orders AnomalyHigh on a spike for 10m"));
    assert!(text.contains("shop/orders AnomalyLow on a drop for 10m"));
    assert!(text.contains("shop/queue AnomalyLow on a drop for 10m"));
    assert!(text.contains("exp_alerts:\n          - exp_labels:"));

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

#[test]
fn invalid_definitions_fail_with_a_position() {
    let dir = tempfile::tempdir().expect("tempdir");
    let def = dir.path().join("bad.anomaly.yml");
    std::fs::write(
        &def,
        "service: x\nsignals:\n  - name: a\n    type: requests\n    query: sum(rate(x[5m]))\n    min_band: 2\n",
    )
    .expect("write");
    let (code, out, err) = run(klaxon().args(["anomaly", "generate"]).arg(&def));
    assert_eq!(code, 1);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("bad.anomaly.yml:6:15: signals[0].min_band: must be below 1"),
        "{err}"
    );
}

/// The generated rules, run by klaxon's engine over synthetic daily-seasonal
/// series: every injected spike, drop and level shift is caught, and the
/// series without anomalies raise no alert (alerts on the anomalous series
/// outside the anomalies, e.g. while the level term still holds a past
/// shift, are counted in docs/benchmarks.md, not asserted here).
#[test]
fn generated_alerts_catch_injected_anomalies() {
    let sc = Scenario::small();
    let r = eval::run(&sc).expect("rules load");
    let adaptive = &r.detectors[0];
    assert_eq!(adaptive.name, eval::GENERATED);
    for kind in ["spike", "drop", "level shift"] {
        let (hit, total) = adaptive.recall_of(kind);
        assert!(total > 0, "{kind}: none injected");
        assert_eq!(hit, total, "{kind}: {r:#?}");
    }
    assert_eq!(adaptive.false_positives_clean, 0, "{r:#?}");
}
