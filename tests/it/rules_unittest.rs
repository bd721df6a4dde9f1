//! Acceptance test for `klaxon test rules`: every promtool unit-test file in
//! the shared corpus is run through the binary and its exit code and output
//! (stdout and stderr interleaved, as the corpus was recorded) compared with
//! what promtool 2.42 printed.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Files where we knowingly differ from promtool 2.42, with the reason and
/// the exact text our output has instead of promtool's `  SUCCESS`. They
/// must still differ in exactly this way, so the list cannot go stale.
const KNOWN_DIFFERENCES: &[(&str, &str, &str)] = &[(
    "01-alert-for/test.yml",
    "promtool 2.42 evaluates range selectors over the closed window [t-10m, t]; \
     klaxon follows Prometheus 3.x (left-open), so `changes(up[10m])` drops to 2 \
     one evaluation earlier and JobFlapping's keep_firing_for ends at 16m instead of 17m",
    "  FAILED:\n    alertname: JobFlapping, time: 16m, \n        exp:[\n            0:\n              \
     Labels:{alertname=\"JobFlapping\", instance=\"w1:80\", job=\"web\", severity=\"ticket\"}\n              \
     Annotations:{summary=\"w1:80 changed state 3 times in 10m\"}\n            ], \n        got:[]\n\n",
)];

/// Runs the binary with stdout and stderr into one pipe, like `2>&1`.
fn run_klaxon(root: &Path, file: &str) -> (i32, String) {
    let (mut reader, writer) = std::io::pipe().expect("pipe");
    let writer2 = writer.try_clone().expect("dup pipe");
    let mut child = Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(["test", "rules", file])
        .current_dir(root)
        .stdout(writer)
        .stderr(writer2)
        .spawn()
        .expect("spawn klaxon");
    let mut out = String::new();
    std::io::Read::read_to_string(&mut reader, &mut out).expect("read output");
    let status = child.wait().expect("wait klaxon");
    // The corpus was recorded from the corpus root; an absolute path would
    // only appear if we printed one.
    let out = out.replace(&format!("{}/", root.display()), "");
    (status.code().unwrap_or(-1), out)
}

#[test]
fn unittest_corpus_matches_promtool() {
    let Some(root) = common::data_dir("corpora/unittests") else {
        return;
    };
    let tsv = std::fs::read_to_string(root.join("promtool-test-verdicts.tsv")).expect("verdicts");
    let mut verdicts = BTreeMap::new();
    for line in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), 3, "verdict line {line:?}");
        let code: i32 = cols[1].parse().expect("exit code");
        verdicts.insert(cols[0].to_string(), (code, cols[2].to_string()));
    }
    // every test file in the corpus has a verdict
    let mut files = Vec::new();
    for d in std::fs::read_dir(&root).expect("corpus dir") {
        let d = d.expect("dir entry").path();
        if !d.is_dir() {
            continue;
        }
        for f in std::fs::read_dir(&d).expect("case dir") {
            let f = f.expect("file").path();
            let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("test") && name.ends_with(".yml") {
                let rel = f
                    .strip_prefix(&root)
                    .expect("relative")
                    .display()
                    .to_string();
                files.push(rel);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 6, "corpus has {} test files", files.len());
    let mut identical = 0;
    let mut diffs = Vec::new();
    for f in &files {
        let (code, expected_file) = verdicts
            .get(f)
            .unwrap_or_else(|| panic!("{f}: no promtool verdict"));
        let expected =
            std::fs::read_to_string(root.join(expected_file)).expect("expected output file");
        let (got_code, got) = run_klaxon(&root, f);
        if got_code == *code && got == expected {
            identical += 1;
            assert!(
                !KNOWN_DIFFERENCES.iter().any(|k| k.0 == f),
                "{f}: listed as a known difference but now identical"
            );
            continue;
        }
        match KNOWN_DIFFERENCES.iter().find(|k| k.0 == f) {
            Some((_, reason, ours)) => {
                let want = expected.replace("  SUCCESS\n", ours);
                assert_eq!(got, want, "{f}: known difference changed shape");
                assert_eq!(got_code, 1, "{f}: known difference exit code");
                diffs.push(format!("{f}: exit {got_code} vs promtool {code}: {reason}"));
            }
            None => panic!(
                "{f}: exit {got_code} (promtool {code})\n--- ours\n{got}--- promtool\n{expected}"
            ),
        }
    }
    println!(
        "unittest corpus: {} files, {identical} identical",
        files.len()
    );
    for d in &diffs {
        println!("known difference: {d}");
    }
    assert_eq!(identical + diffs.len(), files.len());
}

/// A file that does not exist fails like promtool: exit 1, the error on stderr.
#[test]
fn missing_file_fails() {
    let out = Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(["test", "rules", "/nonexistent/test.yml"])
        .output()
        .expect("run klaxon");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.starts_with("Unit Testing:  /nonexistent/test.yml\n"),
        "{stdout}"
    );
    assert!(stderr.starts_with("  FAILED:\n"), "{stderr}");
    assert!(stderr.contains("/nonexistent/test.yml"), "{stderr}");
}

/// Several files: one failing file makes the exit code 1, every file is
/// still reported.
#[test]
fn several_files_report_each_and_fail_if_any_fails() {
    let Some(root) = common::data_dir("corpora/unittests") else {
        return;
    };
    let out = Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args([
            "test",
            "rules",
            "02-recording-rules/test.yml",
            "05-intentionally-failing/test-bad-format.yml",
            "04-external-labels/test.yml",
        ])
        .current_dir(&root)
        .output()
        .expect("run klaxon");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.matches("Unit Testing:  ").count(), 3, "{stdout}");
    assert_eq!(stdout.matches("  SUCCESS\n").count(), 2, "{stdout}");
    let ok = Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(["test", "rules", "02-recording-rules/test.yml"])
        .current_dir(&root)
        .output()
        .expect("run klaxon");
    assert_eq!(ok.status.code(), Some(0));
}
