//! Acceptance tests of rule-file loading and `check rules` against
//! promtool 2.42: its verdicts on upstream rule collections, its verdicts and
//! messages on the bad-file corpus, and Prometheus' own rulefmt test files.

use klaxon::rules::file::{
    check_rule_files, duplicate_rules, load_rule_file, load_rule_file_with, parse_rule_file,
    Dialect, LintOptions, RuleKind,
};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common;
use common::data_dir;

/// Runs `check rules` on one file as the library does for the CLI; returns
/// the exit code and stdout+stderr lines with `root/` removed from paths, so
/// they read like promtool's run from inside `root`.
fn check(root: &Path, rel: &str) -> (i32, Vec<String>) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let path = root.join(rel);
    let code = check_rule_files(&[&path], LintOptions::default(), &mut out, &mut err)
        .expect("writing to memory");
    let prefix = format!("{}/", root.display());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out),
        String::from_utf8_lossy(&err)
    );
    // stdout's trailing blank line comes after stderr in a merged log; drop
    // blank lines so the order of the two streams does not matter.
    let lines = text
        .replace(&prefix, "")
        .lines()
        .map(|l| l.trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    (code, lines)
}

#[test]
fn upstream_rule_collections_get_promtools_verdicts() {
    let Some(root) = data_dir("corpora/rules") else {
        return;
    };
    let tsv = std::fs::read_to_string(root.join("promtool-verdicts.tsv")).expect("verdicts");
    let mut files = 0;
    let mut mismatches = Vec::new();
    for row in tsv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let cols: Vec<&str> = row.split('\t').collect();
        let [path, code, count, first_error] = cols[..] else {
            panic!("bad verdict row: {row:?}");
        };
        files += 1;
        let want_code: i32 = code.parse().expect("exit code");
        let (got_code, lines) = check(&root, path);
        let mut why = Vec::new();
        if got_code != want_code {
            why.push(format!("exit {got_code}, promtool {want_code}"));
        }
        if !count.is_empty() {
            let want = format!("  SUCCESS: {count} rules found");
            if !lines.contains(&want) {
                why.push(format!("want {want:?}"));
            }
        }
        if !first_error.is_empty() {
            let first = lines.iter().skip_while(|l| *l != "  FAILED:").nth(1);
            if first.map(String::as_str) != Some(first_error) {
                why.push(format!("first error {first:?}, promtool {first_error:?}"));
            }
        }
        if !why.is_empty() {
            mismatches.push(format!("{path}: {} | output: {lines:?}", why.join("; ")));
        }
    }
    println!(
        "upstream corpus: {files} files, {} same verdict and count",
        files - mismatches.len()
    );
    assert!(files >= 100, "expected the whole corpus, read {files} rows");
    assert!(
        mismatches.is_empty(),
        "mismatches:\n{}",
        mismatches.join("\n")
    );
}

/// Files where klaxon's verdict knowingly differs from promtool's, and why.
/// The test fails if one of them starts agreeing, so the list stays true.
const KNOWN_VERDICT_DIFFERENCES: &[(&str, &str)] = &[
    (
        "bad/huge-nesting-promql.yml",
        "klaxon's PromQL parser refuses nesting beyond promql::parser::MAX_DEPTH; promtool has no limit",
    ),
    (
        "bad/huge-nesting-promql-functions.yml",
        "klaxon's PromQL parser refuses nesting beyond promql::parser::MAX_DEPTH; promtool has no limit",
    ),
];

/// promtool's log: `### FILE (exit N)` headers, then the merged output.
fn parse_log(log: &str) -> Vec<(String, i32, Vec<String>)> {
    let mut out: Vec<(String, i32, Vec<String>)> = Vec::new();
    for line in log.lines() {
        if let Some(rest) = line.strip_prefix("### ") {
            let (path, code) = rest
                .rsplit_once(" (exit ")
                .expect("header has an exit code");
            let code = code.trim_end_matches(')').parse().expect("exit code");
            out.push((path.to_string(), code, Vec::new()));
        } else if let Some(last) = out.last_mut() {
            if !line.trim().is_empty() {
                last.2.push(line.trim_end().to_string());
            }
        }
    }
    out
}

#[test]
fn bad_corpus_gets_promtools_verdicts_and_messages() {
    let Some(root) = data_dir("corpora/rules") else {
        return;
    };
    let log = std::fs::read_to_string(root.join("bad/promtool-check.log")).expect("log");
    let cases = parse_log(&log);
    let mut verdicts_equal = 0;
    let mut identical = 0;
    let mut verdict_failures = Vec::new();
    let mut known = Vec::new();
    let mut message_diffs = Vec::new();
    for (path, want_code, want_lines) in &cases {
        let (got_code, got_lines) = check(&root, path);
        let exempt = KNOWN_VERDICT_DIFFERENCES.iter().find(|(p, _)| p == path);
        if got_code == *want_code {
            verdicts_equal += 1;
            if let Some((_, why)) = exempt {
                verdict_failures.push(format!(
                    "{path}: listed as a known difference ({why}) but now agrees; remove it"
                ));
            }
        } else if let Some((_, why)) = exempt {
            known.push(format!(
                "{path}: exit {got_code}, promtool {want_code}: {why}"
            ));
        } else {
            verdict_failures.push(format!(
                "{path}: exit {got_code}, promtool {want_code}\n  ours: {got_lines:?}\n  promtool: {want_lines:?}"
            ));
        }
        if &got_lines == want_lines {
            identical += 1;
        } else {
            message_diffs.push(format!(
                "{path}:\n  ours:     {got_lines:?}\n  promtool: {want_lines:?}"
            ));
        }
    }
    let n = cases.len();
    println!(
        "bad corpus: {n} files, {verdicts_equal} verdicts equal, {identical} messages identical"
    );
    println!("known verdict differences ({}):", known.len());
    for k in &known {
        println!("  {k}");
    }
    println!("message differences ({}):", message_diffs.len());
    for d in &message_diffs {
        println!("  {d}");
    }
    assert!(n >= 69, "expected the whole bad corpus, read {n} cases");
    assert!(
        verdict_failures.is_empty(),
        "verdict failures:\n{}",
        verdict_failures.join("\n")
    );
    assert!(
        identical * 100 >= n * 80,
        "only {identical}/{n} messages identical"
    );
}

#[test]
fn prometheus_rulefmt_test_files_as_named() {
    let Some(dir) = data_dir("upstream/prometheus/rulefmt") else {
        return;
    };
    // What upstream's rulefmt test expects in each bad file's errors.
    let expected_bad: &[(&str, &str)] = &[
        ("bad_expr.bad.yaml", "parse error"),
        ("bad_field.bad.yaml", "field annotation not found"),
        (
            "duplicate_grp.bad.yaml",
            "groupname: \"yolo\" is repeated in the same file",
        ),
        ("invalid_label_name.bad.yaml", "invalid label name"),
        (
            "invalid_record_name.bad.yaml",
            "invalid recording rule name",
        ),
        (
            "legacy_validation_annotation.bad.yaml",
            "invalid annotation name",
        ),
        (
            "no_rec_alert.bad.yaml",
            "one of 'record' or 'alert' must be set",
        ),
        ("noexpr.bad.yaml", "field 'expr' must be set in rule"),
        (
            "record_and_alert.bad.yaml",
            "only one of 'record' and 'alert' must be set",
        ),
        (
            "record_and_for.bad.yaml",
            "invalid field 'for' in recording rule",
        ),
        (
            "record_and_keep_firing_for.bad.yaml",
            "invalid field 'keep_firing_for' in recording rule",
        ),
    ];
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("rulefmt dir")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut checked = 0;
    for name in &names {
        // utf-8_* files are valid only with 3.x's UTF-8 names; legacy_* test
        // the 2.42 rules, which is klaxon's default.
        let dialect = if name.starts_with("utf-8_") {
            Dialect::Prometheus3
        } else {
            Dialect::Prometheus2_42
        };
        let result = load_rule_file_with(dir.join(name), dialect);
        if name.ends_with(".bad.yaml") {
            let errs = match result {
                Ok(_) => panic!("{name}: accepted, upstream says bad"),
                Err(e) => e.to_string(),
            };
            let (_, want) = expected_bad
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("{name}: no expectation listed"));
            assert!(errs.contains(want), "{name}: {errs:?} lacks {want:?}");
        } else {
            let file = result.unwrap_or_else(|e| panic!("{name}: rejected: {e}"));
            assert!(file.rule_count() > 0, "{name}: no rules");
        }
        checked += 1;
    }
    assert_eq!(checked, names.len());
    assert!(checked >= 15, "expected all upstream files, saw {checked}");
    // The UTF-8 files are exactly the ones 2.42 rejects.
    assert!(load_rule_file(dir.join("utf-8_lname.good.yaml")).is_err());
    assert!(load_rule_file(dir.join("utf-8_annotation.good.yaml")).is_err());
}

#[test]
fn loaded_rules_carry_everything_the_engine_needs() {
    let src = br#"groups:
  - name: api
    interval: 30s
    limit: 10
    rules:
      - record: job:requests:rate5m
        expr: sum by (job) (rate(requests_total[5m]))
        labels:
          team: api
      - alert: HighErrors
        expr: job:errors:rate5m > 0.1
        for: 5m
        keep_firing_for: 1m
        labels:
          severity: page
        annotations:
          summary: "errors on {{ $labels.job }}"
"#;
    let file = parse_rule_file("mem.yml", src, Dialect::default()).expect("valid file");
    assert_eq!(file.groups.len(), 1);
    let g = &file.groups[0];
    assert_eq!(g.name, "api");
    assert_eq!(g.interval, Some(Duration::from_secs(30)));
    assert_eq!(g.limit, 10);
    assert_eq!(g.query_offset, None);
    assert_eq!(g.rules.len(), 2);
    let rec = &g.rules[0];
    assert_eq!(rec.kind, RuleKind::Record("job:requests:rate5m".into()));
    assert_eq!(rec.expr_text, "sum by (job) (rate(requests_total[5m]))");
    assert_eq!(rec.labels.get("team"), Some("api"));
    assert_eq!(rec.line, 6);
    let alert = &g.rules[1];
    assert_eq!(alert.kind, RuleKind::Alert("HighErrors".into()));
    assert_eq!(alert.for_, Duration::from_secs(300));
    assert_eq!(alert.keep_firing_for, Duration::from_secs(60));
    assert_eq!(alert.labels.get("severity"), Some("page"));
    assert_eq!(
        alert.annotations.get("summary").map(String::as_str),
        Some("errors on {{ $labels.job }}")
    );
    assert_eq!(alert.line, 10);
}

#[test]
fn query_offset_is_a_3x_field() {
    let src = b"groups:\n  - name: g\n    query_offset: 1m\n    labels:\n      team: x\n    rules:\n      - record: a:b\n        expr: up\n";
    let err = parse_rule_file("f.yml", src, Dialect::Prometheus2_42).expect_err("2.42 rejects");
    assert_eq!(
        err.to_string(),
        "f.yml: yaml: unmarshal errors:\n  line 3: field query_offset not found in type rulefmt.RuleGroup\n  line 4: field labels not found in type rulefmt.RuleGroup"
    );
    let file = parse_rule_file("f.yml", src, Dialect::Prometheus3).expect("3.x accepts");
    assert_eq!(file.groups[0].query_offset, Some(Duration::from_secs(60)));
    assert_eq!(file.groups[0].labels.get("team"), Some("x"));
}

#[test]
fn aliases_and_merge_keys_resolve() {
    let Some(dir) = data_dir("upstream/prometheus/rulefmt") else {
        return;
    };
    let file = load_rule_file(dir.join("test_aliases.yaml")).expect("valid");
    let rules = &file.groups[0].rules;
    assert_eq!(rules[1].kind, RuleKind::Record("new_metric".into()));
    assert_eq!(rules[1].expr_text, rules[0].expr_text);
    assert!(rules[0].expr_text.starts_with("sum without(instance)"));
    // `<<: *highalert` plus an override of `alert`.
    assert_eq!(rules[3].kind, RuleKind::Alert("HighAlert2".into()));
    assert_eq!(rules[3].for_, Duration::from_secs(300));
    assert_eq!(rules[3].labels.get("severity"), Some("critical"));
}

#[test]
fn errors_carry_positions_even_where_promtool_prints_none() {
    let src = b"groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        labels:\n          bad-name: x\n";
    let errs = parse_rule_file("f.yml", src, Dialect::default()).expect_err("invalid label");
    let e = &errs.errors()[0];
    assert_eq!(
        e.to_string(),
        "f.yml: group \"g\", rule 1, \"A\": invalid label name: bad-name"
    );
    assert_eq!((e.line, e.column), (7, 11));
}

#[test]
fn duplicate_lint_lists_labels_and_exit_codes_follow_promtool() {
    let src = b"groups:\n  - name: a\n    rules:\n      - record: x:y\n        expr: up\n        labels: {env: prod}\n  - name: b\n    rules:\n      - record: x:y\n        expr: up\n        labels: {env: prod}\n      - record: x:y\n        expr: up\n";
    let file = parse_rule_file("f.yml", src, Dialect::default()).expect("valid");
    let d = duplicate_rules(&file);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].metric, "x:y");
    assert_eq!(d[0].labels.get("env"), Some("prod"));

    let dir = tempfile::tempdir().expect("tempdir");
    let dup = dir.path().join("dup.yml");
    std::fs::write(&dup, src).expect("write");
    let mut out = Vec::new();
    let mut err = Vec::new();
    let fatal = LintOptions {
        duplicate_rules: true,
        fatal: true,
        ..LintOptions::default()
    };
    assert_eq!(
        check_rule_files(&[&dup], fatal, &mut out, &mut err).unwrap(),
        3
    );
    let err = String::from_utf8(err).unwrap();
    assert!(err.contains("Label(s):\n\tenv: prod\n"), "{err}");
    let missing = dir.path().join("missing.yml");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = check_rule_files(
        &[&dup, &missing],
        LintOptions::default(),
        &mut out,
        &mut err,
    );
    assert_eq!(code.unwrap(), 1);
    let err = String::from_utf8(err).unwrap();
    assert!(
        err.contains(&format!(
            "{}: open {}: no such file or directory",
            missing.display(),
            missing.display()
        )),
        "{err}"
    );
}

#[test]
fn cli_check_rules_reports_like_promtool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("good.yml");
    std::fs::write(
        &good,
        "groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: up\n",
    )
    .unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: up +\n",
    )
    .unwrap();
    let run = |f: &Path| {
        Command::new(env!("CARGO_BIN_EXE_klaxon"))
            .args(["check", "rules"])
            .arg(f)
            .output()
            .expect("run klaxon")
    };
    let ok = run(&good);
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&ok.stdout),
        format!("Checking {}\n  SUCCESS: 1 rules found\n\n", good.display())
    );
    let failed = run(&bad);
    assert_eq!(failed.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&failed.stderr),
        format!(
            "  FAILED:\n{}: 5:15: group \"g\", rule 1, \"a:b\": could not parse expression: 1:5: parse error: unexpected end of input\n",
            bad.display()
        )
    );
}

#[test]
fn truncated_and_mangled_files_never_panic() {
    let Some(root) = data_dir("corpora/rules/bad") else {
        return;
    };
    let mut inputs = 0;
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("bad dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    entries.sort();
    for p in entries {
        let bytes = std::fs::read(&p).expect("read");
        // Every prefix at a handful of cut points, and the file with one
        // byte flipped to a structural YAML character.
        let step = (bytes.len() / 16).max(1);
        for cut in (0..bytes.len()).step_by(step) {
            let _ = parse_rule_file("x.yml", &bytes[..cut], Dialect::default());
            let mut flipped = bytes.clone();
            flipped[cut] = b"[{:-&*!|>"[cut % 9];
            let _ = parse_rule_file("x.yml", &flipped, Dialect::Prometheus3);
            inputs += 2;
        }
    }
    assert!(inputs > 500, "only {inputs} inputs tried");
}

#[test]
fn alias_bombs_are_refused() {
    let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..9 {
        let p = i - 1;
        src.push_str(&format!(
            "a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n"
        ));
    }
    src.push_str("groups: *a8\n");
    let err = parse_rule_file("bomb.yml", src.as_bytes(), Dialect::default()).expect_err("bomb");
    assert!(err.to_string().contains("excessive aliasing"), "{err}");
}

#[test]
fn cli_lint_all_adds_klaxon_warnings_without_changing_the_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("r.yml");
    std::fs::write(
        &f,
        "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rate(x{job=\"web\"}[1m]) > 0\n        annotations:\n          summary: s\n          runbook_url: u\n",
    )
    .unwrap();
    let cfg = dir.path().join("k.yml");
    std::fs::write(
        &cfg,
        "scrape_configs:\n  - job_name: web\n    scrape_interval: 30s\n    static_configs:\n      - targets: ['a:1']\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_klaxon"))
            .args(["check", "rules"])
            .args(extra)
            .arg(&f)
            .output()
            .expect("run klaxon")
    };
    // Default: promtool's output, no warnings.
    let plain = run(&[]);
    assert_eq!(plain.status.code(), Some(0));
    assert!(
        plain.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    // --lint=all with the config: the rate window is too short for job web.
    let cfg_s = cfg.display().to_string();
    let linted = run(&["--lint=all", "--config", &cfg_s]);
    assert_eq!(linted.status.code(), Some(0));
    let err = String::from_utf8_lossy(&linted.stderr);
    assert_eq!(
        err,
        format!(
            "  WARNING: {}:5:15: group \"g\", rule \"A\": rate() range 1m (expression offset 5) is shorter than 4x the scrape interval 30s of job \"web\"\n",
            f.display()
        )
    );
    assert!(String::from_utf8_lossy(&linted.stdout).contains("SUCCESS: 1 rules found"));
    let fatal = run(&["--lint=klaxon", "--lint-fatal", "--config", &cfg_s]);
    assert_eq!(fatal.status.code(), Some(3));
    // Without a config the rate lint is off and this file is clean.
    let no_cfg = run(&["--lint=all", "--lint-fatal"]);
    assert_eq!(
        no_cfg.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&no_cfg.stderr)
    );
}

/// `--positions`: every error of every bad-corpus file names FILE:LINE:COL,
/// and every rule-level error its group and rule; PromQL errors keep their
/// position inside the expression. promtool's default text is unchanged
/// (the verdict tests above compare it).
#[test]
fn positioned_errors_name_file_line_col_group_and_rule() {
    let Some(root) = data_dir("corpora/rules/bad") else {
        return;
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("read corpus")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    let mut checked = 0;
    for f in &files {
        let Err(errs) = load_rule_file(f) else {
            continue;
        };
        for e in errs.errors() {
            let p = e.positioned();
            let prefix = format!("{}:", f.display());
            let rest = p.strip_prefix(&prefix).unwrap_or_else(|| panic!("{p}"));
            let mut it = rest.splitn(3, ':');
            let line: usize = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
            let col: usize = it.next().and_then(|x| x.parse().ok()).unwrap_or(0);
            assert!(line > 0 && col > 0, "no position: {p}");
            let rule_level = e.message.contains(", rule ")
                || e.message.contains("must be set")
                || e.message.contains("not found in type rulefmt.RuleNode");
            if rule_level {
                assert!(p.contains("group \"") && p.contains(", rule "), "{p}");
            }
            if e.message.contains("duration string") {
                assert!(p.contains("group \""), "{p}");
            }
            if e.message.contains("could not parse expression") {
                assert!(p.contains("could not parse expression: 1:"), "{p}");
            }
            checked += 1;
        }
    }
    assert!(checked >= 50, "only {checked} errors checked");
    // The CLI flag switches to this form; without it promtool's text stays.
    let f = root.join("for-bad-duration.yml");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_klaxon"))
            .args(["check", "rules"])
            .args(extra)
            .arg(&f)
            .output()
            .expect("run klaxon")
    };
    let plain = String::from_utf8_lossy(&run(&[]).stderr).to_string();
    assert_eq!(
        plain,
        format!(
            "  FAILED:\n{}: not a valid duration string: \"5 minutes\"\n",
            f.display()
        )
    );
    let rich = String::from_utf8_lossy(&run(&["--positions"]).stderr).to_string();
    assert_eq!(
        rich,
        format!(
            "  FAILED:\n{}:7:14: group \"dur\", rule 1, \"A\": not a valid duration string: \"5 minutes\"\n",
            f.display()
        )
    );
}

/// Upstream rulefmt's TestParseFileFailure / TestParseFileSuccess table,
/// each file under the validation scheme upstream parses it with (utf8
/// unless named), through the dialect `klaxon run` loads rule files in.
#[test]
fn prometheus3_rulefmt_table_under_each_scheme() {
    use klaxon::config::names::NameValidation::{Legacy, Utf8};
    let Some(dir) = data_dir("upstream/prometheus/rulefmt") else {
        return;
    };
    let bad = [
        ("duplicate_grp.bad.yaml", Utf8, "groupname: \"yolo\" is repeated in the same file"),
        ("bad_expr.bad.yaml", Utf8, "parse error"),
        ("record_and_alert.bad.yaml", Utf8, "only one of 'record' and 'alert' must be set"),
        ("no_rec_alert.bad.yaml", Utf8, "one of 'record' or 'alert' must be set"),
        ("noexpr.bad.yaml", Utf8, "field 'expr' must be set in rule"),
        (
            "invalid_record_name.bad.yaml",
            Utf8,
            "braces present in the recording rule name; should it be in expr?: strawberry{flavor=\"sweet\"}",
        ),
        ("bad_field.bad.yaml", Utf8, "field annotation not found"),
        ("invalid_label_name.bad.yaml", Utf8, "invalid label name"),
        ("record_and_for.bad.yaml", Utf8, "invalid field 'for' in recording rule"),
        (
            "record_and_keep_firing_for.bad.yaml",
            Utf8,
            "invalid field 'keep_firing_for' in recording rule",
        ),
        (
            "legacy_validation_annotation.bad.yaml",
            Legacy,
            "invalid annotation name: ins-tance",
        ),
    ];
    for (name, scheme, want) in bad {
        let errs = match load_rule_file_with(dir.join(name), Dialect::prometheus3(scheme)) {
            Ok(_) => panic!("{name}: accepted, upstream says bad"),
            Err(e) => e.to_string(),
        };
        assert!(errs.contains(want), "{name}: {errs:?} lacks {want:?}");
    }
    let good = [
        ("test.yaml", Utf8),
        ("utf-8_lname.good.yaml", Utf8),
        ("utf-8_annotation.good.yaml", Utf8),
        ("legacy_validation_annotation.good.yaml", Legacy),
    ];
    for (name, scheme) in good {
        let f = load_rule_file_with(dir.join(name), Dialect::prometheus3(scheme))
            .unwrap_or_else(|e| panic!("{name}: rejected: {e}"));
        assert!(f.rule_count() > 0, "{name}");
    }
    // The UTF-8 files fail under legacy names, as they would in a
    // Prometheus 3 with `metric_name_validation_scheme: legacy`.
    for name in ["utf-8_lname.good.yaml", "utf-8_annotation.good.yaml"] {
        assert!(
            load_rule_file_with(dir.join(name), Dialect::prometheus3(Legacy)).is_err(),
            "{name}"
        );
    }
}
