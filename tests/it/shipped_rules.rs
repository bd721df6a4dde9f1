//! The shipped rules (`rules/`, `recording_rules/`, the generated SLO and
//! anomaly rules in `recording_rules/slo/` and `recording_rules/anomaly/`) are plain Prometheus rules with a unit test
//! each and a runbook per alert: checked with klaxon and with promtool 2.42,
//! and the runbooks are checked against the alerts and served over HTTP.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The five sections every runbook has, in order.
const SECTIONS: [&str; 5] = [
    "## What it means",
    "## Impact",
    "## How to investigate",
    "## How to fix",
    "## When to escalate",
];

fn yml_in(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    v.sort();
    v
}

/// Every shipped rule file, each with the test files that must cover it:
/// `<dir>/tests/<stem>.test.yml`, and for generated SLO rules also the
/// hand-written `recording_rules/slo/<stem>-sli.test.yml` that feeds the SLI
/// queries raw metrics (the generated test feeds the recorded ratios).
fn rule_files() -> Vec<(PathBuf, Vec<PathBuf>)> {
    let mut out = Vec::new();
    for dir in [
        "rules",
        "recording_rules",
        "recording_rules/slo/generated",
        "recording_rules/anomaly/generated",
    ] {
        for f in yml_in(dir) {
            let stem = f.file_stem().and_then(|s| s.to_str()).expect("utf-8 name");
            let mut tests = vec![Path::new(ROOT)
                .join(dir)
                .join("tests")
                .join(format!("{stem}.test.yml"))];
            let sli = Path::new(ROOT).join(format!("recording_rules/slo/{stem}-sli.test.yml"));
            if dir.ends_with("generated") && sli.exists() {
                tests.push(sli);
            }
            out.push((f, tests));
        }
    }
    assert!(out.len() >= 8, "shipped rule files missing: {out:?}");
    out
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
        "promtool missing under CI: .ci/run must install it ({})",
        p.display()
    );
    eprintln!("SKIPPED: promtool not installed; promtool checks not run");
    None
}

fn run(cmd: &mut Command) -> (i32, String) {
    let out = cmd.output().expect("spawn");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn test_files() -> Vec<PathBuf> {
    rule_files().into_iter().flat_map(|(_, t)| t).collect()
}

fn all_rule_paths() -> Vec<PathBuf> {
    rule_files().into_iter().map(|(r, _)| r).collect()
}

#[test]
fn klaxon_check_rules_accepts_every_shipped_file() {
    let (code, out) = run(Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(["check", "rules"])
        .args(all_rule_paths()));
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        out.matches("SUCCESS").count(),
        all_rule_paths().len(),
        "{out}"
    );
}

#[test]
fn klaxon_test_rules_passes_every_shipped_test() {
    let files = test_files();
    let (code, out) = run(Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(["test", "rules"])
        .args(&files));
    assert_eq!(code, 0, "{out}");
    assert_eq!(out.matches("  SUCCESS").count(), files.len(), "{out}");
    assert!(!out.contains("FAILED"), "{out}");
}

#[test]
fn promtool_check_and_test_rules_pass() {
    let Some(promtool) = promtool() else { return };
    let (code, out) = run(Command::new(&promtool)
        .args(["check", "rules"])
        .args(all_rule_paths()));
    assert_eq!(code, 0, "promtool check rules:\n{out}");
    let files = test_files();
    let (code, out) = run(Command::new(&promtool).args(["test", "rules"]).args(&files));
    assert_eq!(code, 0, "promtool test rules:\n{out}");
    assert_eq!(out.matches("  SUCCESS").count(), files.len(), "{out}");
}

/// Minutes in a promtool duration such as `90m`, `2h`, `1d`.
fn minutes(d: &str) -> u64 {
    let (num, unit) = d.split_at(d.len() - 1);
    let n: u64 = num.parse().unwrap_or_else(|_| panic!("duration {d:?}"));
    match unit {
        "m" => n,
        "h" => n * 60,
        "d" => n * 1440,
        "s" => n / 60,
        _ => panic!("duration {d:?}"),
    }
}

/// Every alert of a rule file is tested firing and, later, resolved; every
/// recording rule is the subject of an expression test or read by an alert
/// that is (for the SLO windows, whose exact values carry float noise that
/// differs between promtool 2.42 and klaxon).
#[test]
fn every_rule_is_exercised_by_its_test_files() {
    for (rules, tests) in rule_files() {
        let rf = klaxon::rules::file::load_rule_file(&rules)
            .unwrap_or_else(|e| panic!("{}: {e:?}", rules.display()));
        // alertname -> (eval times where it fires, where nothing fires),
        // per test file: firing and resolving must be shown in one file.
        let mut seen: BTreeMap<(String, usize), (Vec<u64>, Vec<u64>)> = BTreeMap::new();
        let mut exprs = Vec::new();
        for (ti, test) in tests.iter().enumerate() {
            let text = std::fs::read_to_string(test)
                .unwrap_or_else(|e| panic!("{}: missing test file: {e}", test.display()));
            let doc: serde_json::Value =
                serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", test.display()));
            let loads_it = doc["rule_files"].as_array().is_some_and(|a| {
                a.iter().any(|f| {
                    f.as_str().is_some_and(|f| {
                        test.parent()
                            .map(|d| d.join(f))
                            .and_then(|p| p.canonicalize().ok())
                            == rules.canonicalize().ok()
                    })
                })
            });
            assert!(
                loads_it,
                "{} does not load {}",
                test.display(),
                rules.display()
            );
            for group in doc["tests"].as_array().expect("tests") {
                for t in group["alert_rule_test"].as_array().into_iter().flatten() {
                    let name = t["alertname"].as_str().expect("alertname").to_string();
                    let at = minutes(t["eval_time"].as_str().expect("eval_time"));
                    let fires = t["exp_alerts"].as_array().is_some_and(|a| !a.is_empty());
                    let e = seen.entry((name, ti)).or_default();
                    if fires {
                        e.0.push(at)
                    } else {
                        e.1.push(at)
                    }
                }
                for t in group["promql_expr_test"].as_array().into_iter().flatten() {
                    exprs.push(t["expr"].as_str().expect("expr").to_string());
                }
            }
        }
        let mut alert_exprs = Vec::new();
        for r in rf.groups.iter().flat_map(|g| &g.rules) {
            if let klaxon::rules::file::RuleKind::Alert(a) = &r.kind {
                let fires_and_resolves = (0..tests.len()).any(|ti| {
                    let (fire, quiet) = seen.get(&(a.clone(), ti)).cloned().unwrap_or_default();
                    fire.iter()
                        .min()
                        .is_some_and(|f| quiet.iter().any(|q| q > f))
                });
                assert!(
                    fires_and_resolves,
                    "{}: alert {a} must fire and then resolve in one test file",
                    rules.display()
                );
                alert_exprs.push(r.expr_text.clone());
            }
        }
        for r in rf.groups.iter().flat_map(|g| &g.rules) {
            if let klaxon::rules::file::RuleKind::Record(name) = &r.kind {
                let used = |e: &String| {
                    e.match_indices(name.as_str()).any(|(i, _)| {
                        !e[i + name.len()..]
                            .starts_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
                    })
                };
                assert!(
                    exprs.iter().any(used) || alert_exprs.iter().any(used),
                    "{}: recording rule {name} is not checked",
                    rules.display()
                );
            }
        }
    }
}

/// Alerts: severity, summary, description and a portable runbook_url whose
/// runbook exists; runbooks: the five sections, an alert each, queries that
/// parse, and the same list as the one embedded in the binary.
#[test]
fn alerts_and_runbooks_match() {
    let mut alerts = BTreeSet::new();
    for path in all_rule_paths() {
        let rf = klaxon::rules::file::load_rule_file(&path).expect("valid");
        for g in &rf.groups {
            for r in &g.rules {
                let klaxon::rules::file::RuleKind::Alert(name) = &r.kind else {
                    continue;
                };
                let at = format!("{}: {name}", path.display());
                let sev = r.labels.get("severity").unwrap_or("");
                assert!(
                    ["critical", "warning", "info"].contains(&sev),
                    "{at}: severity {sev:?}"
                );
                for a in ["summary", "description"] {
                    assert!(
                        r.annotations.get(a).is_some_and(|s| !s.is_empty()),
                        "{at}: no {a}"
                    );
                }
                assert_eq!(
                    r.annotations.get("runbook_url").map(String::as_str),
                    Some(format!("{{{{ $externalURL }}}}/runbooks/{name}").as_str()),
                    "{at}"
                );
                alerts.insert(name.clone());
            }
        }
    }
    let dir = Path::new(ROOT).join("docs/runbooks");
    let mut runbooks = BTreeSet::new();
    for e in std::fs::read_dir(&dir).expect("docs/runbooks") {
        let p = e.expect("entry").path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name == "README.md" {
            continue;
        }
        let stem = name
            .strip_suffix(".md")
            .expect("only .md files")
            .to_string();
        let md = std::fs::read_to_string(&p).expect("read");
        let mut pos = 0;
        for s in SECTIONS {
            let found = md[pos..].find(&format!("\n{s}\n"));
            assert!(
                found.is_some(),
                "{name}: section {s:?} missing or out of order"
            );
            pos += found.unwrap_or(0) + 1;
        }
        let queries = promql_blocks(&md);
        assert!(!queries.is_empty(), "{name}: no query");
        for q in &queries {
            if let Err(e) = klaxon::promql::parse(q) {
                panic!("{name}: {q}: {e}");
            }
        }
        assert!(
            md.matches("](/graph?g0.expr=").count() >= queries.len(),
            "{name}: every query needs a graph link"
        );
        runbooks.insert(stem);
    }
    let no_runbook: Vec<_> = alerts.difference(&runbooks).collect();
    let no_alert: Vec<_> = runbooks.difference(&alerts).collect();
    assert!(
        no_runbook.is_empty(),
        "alerts without runbook: {no_runbook:?}"
    );
    assert!(no_alert.is_empty(), "runbooks without alert: {no_alert:?}");
    let embedded: BTreeSet<String> = klaxon::api::runbooks::RUNBOOKS
        .iter()
        .map(|r| r.name.to_string())
        .collect();
    assert_eq!(
        embedded, runbooks,
        "src/api/runbooks.rs RUNBOOKS differs from docs/runbooks/"
    );
}

fn promql_blocks(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in md.lines() {
        let t = line.trim();
        match (&mut cur, t) {
            (None, "```promql") => cur = Some(String::new()),
            (Some(q), "```") => {
                out.push(q.trim().to_string());
                cur = None;
            }
            (Some(q), _) => {
                q.push_str(t);
                q.push('\n');
            }
            _ => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runbooks_are_served() {
    let mut cfg =
        klaxon::settings::load_str("scrape_configs: []\n", "runbooks.yml").expect("config");
    // Its own store: tests in one binary run in parallel.
    let _store_dir = tempfile::tempdir().unwrap();
    cfg.storage.path = _store_dir.path().to_path_buf();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .expect("start");
    let base = format!("http://{}", app.addr);
    let get = |path: &str| {
        let url = format!("{base}{path}");
        async move {
            let r = reqwest::get(&url).await.expect("get");
            let ct = r
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string();
            (r.status().as_u16(), ct, r.text().await.expect("body"))
        }
    };
    let (code, ct, body) = get("/runbooks/").await;
    assert_eq!(code, 200);
    assert!(ct.starts_with("text/html"), "{ct}");
    for rb in klaxon::api::runbooks::RUNBOOKS {
        assert!(
            body.contains(&format!("href=\"{}\"", rb.name)),
            "{}",
            rb.name
        );
    }
    let (code, _, body) = get("/runbooks/PostgresDown").await;
    assert_eq!(code, 200);
    assert!(body.contains("<h1>PostgresDown</h1>"), "{body}");
    assert!(body.contains("<h2>When to escalate</h2>"), "{body}");
    assert!(
        body.contains("<pre><code class=\"language-promql\">pg_up\n</code></pre>"),
        "{body}"
    );
    for bad in [
        "/runbooks/NoSuchAlert",
        "/runbooks/..%2F..%2FCargo.toml",
        // (`/runbooks/%2E%2E` alone is a dot segment: the client resolves
        // it to `/`, which is the web UI, so it never reached this handler.)
        "/runbooks/%2E%2E%2FCargo.toml",
    ] {
        let (code, _, body) = get(bad).await;
        assert_eq!(code, 404, "{bad}");
        assert!(!body.contains("[package]"), "{bad}");
    }
}
