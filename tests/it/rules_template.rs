//! Alert template rendering checked against promtool 2.42: stored oracle
//! cases (re-confirmed with promtool when installed), the shared
//! annotation-template corpus evaluated through the real engine, and a
//! randomized no-panic test.

use klaxon::model::Labels;
use klaxon::promql::{Engine, Value as QValue};
use klaxon::template::{expand_for_alert, QuerySample, Template, TemplateContext};
use klaxon::tsdb::Head;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    template: String,
    value: String,
    labels: BTreeMap<String, String>,
    #[serde(default)]
    expected: Option<String>,
    #[serde(default)]
    parse_error: Option<String>,
}

#[derive(Debug, Deserialize)]
struct CaseFile {
    cases: Vec<Case>,
}

const EXTERNAL_URL: &str = "https://prom.example.org/sub/";

fn cases() -> Vec<Case> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/templates/cases.yml");
    let text = std::fs::read_to_string(path).expect("read cases.yml");
    let f: CaseFile = serde_saphyr::from_str(&text).expect("parse cases.yml");
    f.cases
}

fn case_labels(c: &Case) -> Labels {
    let n: u32 = c.name[1..].parse().expect("case number");
    let mut pairs: Vec<(String, String)> = c
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    pairs.push(("case".into(), n.to_string()));
    pairs.push(("__name__".into(), "tmpl_value".into()));
    Labels::from_pairs(pairs)
}

fn parse_value(s: &str) -> f64 {
    match s {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().expect("case value"),
    }
}

#[test]
fn oracle_cases_render_like_promtool() {
    let cases = cases();
    assert!(
        cases.len() >= 30,
        "need at least 30 oracle cases, have {}",
        cases.len()
    );
    let ext = Labels::from_pairs([("cluster", "prod")]);
    let mut failures = Vec::new();
    for c in &cases {
        let labels = case_labels(c);
        let ctx = TemplateContext {
            labels: &labels,
            external_labels: &ext,
            external_url: EXTERNAL_URL,
            value: parse_value(&c.value),
            now_ms: 0,
            query: None,
        };
        let alert = format!("__alert_{}", c.name);
        match (&c.expected, &c.parse_error) {
            (Some(want), None) => {
                let got = expand_for_alert(&c.name, &c.template, &ctx);
                if &got != want {
                    failures.push(format!(
                        "{}: {:?}\n   want {:?}\n   got  {:?}",
                        c.name, c.template, want, got
                    ));
                }
            }
            (None, Some(want)) => match Template::parse(&alert, &c.template) {
                Ok(_) => failures.push(format!(
                    "{}: {:?} parsed, want error {want:?}",
                    c.name, c.template
                )),
                Err(e) if &e.to_string() != want => failures.push(format!(
                    "{}: {:?}\n   want {:?}\n   got  {:?}",
                    c.name,
                    c.template,
                    want,
                    e.to_string()
                )),
                Err(_) => {}
            },
            _ => panic!(
                "case {} needs exactly one of expected / parse_error",
                c.name
            ),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

fn promtool() -> Option<PathBuf> {
    let p = Path::new("/usr/bin/promtool");
    if p.exists() {
        return Some(p.to_path_buf());
    }
    if common::is_ci() {
        panic!("promtool must be installed under CI=true (the template oracle re-runs it)");
    }
    None
}

/// Go's `%q` string back to text (promtool prints annotations with it).
fn go_unquote(q: &str) -> String {
    serde_json::from_str::<String>(q).unwrap_or_else(|e| panic!("cannot unquote {q}: {e}"))
}

/// Re-runs promtool on every stored case and checks it still prints the
/// stored expectation, so cases.yml cannot drift from the reference.
#[test]
fn promtool_confirms_stored_cases() {
    let Some(promtool_path) = promtool() else {
        eprintln!("promtool not installed; stored expectations checked by oracle_cases_render_like_promtool only");
        return;
    };
    let cases = cases();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut rules = Vec::new();
    let mut series = Vec::new();
    let mut tests = Vec::new();
    for c in cases.iter().filter(|c| c.expected.is_some()) {
        let n: u32 = c.name[1..].parse().expect("case number");
        rules.push(
            serde_json::json!({"alert": c.name, "expr": format!("tmpl_value{{case=\"{n}\"}}"),
            "annotations": {"a": c.template}}),
        );
        let mut lab = c.labels.clone();
        lab.insert("case".into(), n.to_string());
        let sel: Vec<String> = lab
            .iter()
            .map(|(k, v)| format!("{k}={}", serde_json::to_string(v).unwrap()))
            .collect();
        let v = if c.value == "+Inf" {
            "Inf".to_string()
        } else {
            c.value.clone()
        };
        series.push(
            serde_json::json!({"series": format!("tmpl_value{{{}}}", sel.join(",")),
            "values": format!("{v} {v} {v}")}),
        );
        tests.push(serde_json::json!({"eval_time": "1m", "alertname": c.name,
            "exp_alerts": [{"exp_labels": lab, "exp_annotations": {"a": "WRONG"}}]}));
    }
    let rules = serde_json::json!({"groups": [{"name": "g", "rules": rules}]});
    let test = serde_json::json!({"rule_files": ["rules.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "external_labels": {"cluster": "prod"}, "external_url": EXTERNAL_URL,
            "input_series": series, "alert_rule_test": tests}]});
    std::fs::write(dir.path().join("rules.yml"), rules.to_string()).expect("write rules");
    std::fs::write(dir.path().join("test.yml"), test.to_string()).expect("write test");
    let out = Command::new(&promtool_path)
        .args(["test", "rules", "test.yml"])
        .current_dir(dir.path())
        .output()
        .expect("run promtool");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let mut checked = 0;
    for c in cases.iter().filter(|c| c.expected.is_some()) {
        let marker = format!("alertname: {}, time: 1m,", c.name);
        let start = text
            .find(&marker)
            .unwrap_or_else(|| panic!("promtool printed nothing for {}", c.name));
        let rest = &text[start..];
        let got_at = rest.find("got:[").expect("got section");
        let ann_at = rest[got_at..].find("Annotations:{a=").expect("annotations")
            + got_at
            + "Annotations:{a=".len();
        let end = rest[ann_at..].find("}\n").expect("end of annotations") + ann_at;
        let got = go_unquote(&rest[ann_at..end]);
        assert_eq!(
            Some(&got),
            c.expected.as_ref(),
            "promtool now renders {} differently",
            c.name
        );
        checked += 1;
    }
    assert!(checked >= 30, "only {checked} cases confirmed");

    // Parse errors: promtool rejects the rule file at load, one line per rule.
    let bad: Vec<&Case> = cases.iter().filter(|c| c.parse_error.is_some()).collect();
    let rules: Vec<serde_json::Value> = bad
        .iter()
        .map(|c| serde_json::json!({"alert": c.name, "expr": "up", "annotations": {"a": c.template}}))
        .collect();
    let rules = serde_json::json!({"groups": [{"name": "g", "rules": rules}]});
    std::fs::write(dir.path().join("bad.yml"), rules.to_string()).expect("write bad rules");
    let out = Command::new(&promtool_path)
        .args(["check", "rules", "bad.yml"])
        .current_dir(dir.path())
        .output()
        .expect("run promtool check");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for c in bad {
        let marker = format!("\"{}\": annotation \"a\": ", c.name);
        let line = text
            .lines()
            .find(|l| l.contains(&marker))
            .unwrap_or_else(|| panic!("promtool reported nothing for {}", c.name));
        let got = &line[line.find(&marker).map(|i| i + marker.len()).unwrap_or(0)..];
        assert_eq!(
            Some(got),
            c.parse_error.as_deref(),
            "promtool now rejects {} differently",
            c.name
        );
    }
}

use crate::common;

fn shared_dir() -> Option<PathBuf> {
    common::data_dir("corpora/unittests/03-annotation-templates")
}

/// Expands promtool's `a+bxN` / `axN` / plain series notation (enough for the corpus).
fn expand_values(s: &str) -> Vec<f64> {
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        match tok.split_once('x') {
            Some((a, n)) => {
                let n: usize = n.parse().expect("repeat count");
                let (start, step) = match a.rfind(['+', '-']).filter(|i| *i > 0) {
                    Some(i) => (
                        a[..i].parse::<f64>().expect("start"),
                        a[i..].parse::<f64>().expect("step"),
                    ),
                    None => (a.parse::<f64>().expect("value"), 0.0),
                };
                for k in 0..=n {
                    out.push(start + step * k as f64);
                }
            }
            None => out.push(tok.parse().expect("value")),
        }
    }
    out
}

fn series_labels(s: &str) -> Labels {
    let expr = klaxon::promql::parse(s).expect("series selector");
    let klaxon::promql::Expr::VectorSelector(vs) = expr else {
        panic!("not a selector: {s}")
    };
    Labels::from_pairs(
        vs.matchers
            .iter()
            .map(|m| (m.name.clone(), m.value.clone())),
    )
}

fn vector(engine: &Engine, head: &Head, q: &str, t: i64) -> Result<Vec<QuerySample>, String> {
    let r = engine.instant(head, q, t).map_err(|e| e.to_string())?;
    match r.value {
        QValue::Vector(v) => Ok(v
            .into_iter()
            .map(|s| {
                let mut l = (*s.labels).clone();
                if s.drop_name {
                    let mut b = l.builder();
                    b.del("__name__");
                    l = b.build();
                }
                QuerySample {
                    labels: l,
                    value: s.value,
                }
            })
            .collect()),
        QValue::Scalar { v, .. } => Ok(vec![QuerySample {
            labels: Labels::empty(),
            value: v,
        }]),
        other => Err(format!("unexpected result {other:?}")),
    }
}

/// The shared corpus (whose exp_annotations promtool 2.42 accepts): evaluate
/// each alert expression with the engine, render its templated labels and
/// annotations, including `query`, and compare.
#[test]
fn corpus_annotation_templates_match_promtool() {
    let Some(dir) = shared_dir() else {
        eprintln!("shared corpus not found; skipping (not counted)");
        return;
    };
    let rules: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("rules.yml")).expect("rules"))
            .expect("rules yaml");
    let test: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("test.yml")).expect("test"))
            .expect("test yaml");
    let group = &test["tests"][0];
    let interval = 60_000i64;
    let head = Head::default();
    for s in group["input_series"].as_array().expect("input_series") {
        let l = series_labels(s["series"].as_str().expect("series"));
        let (r, _) = head.get_or_create(&l);
        for (i, v) in expand_values(s["values"].as_str().expect("values"))
            .into_iter()
            .enumerate()
        {
            head.append(r, i as i64 * interval, v).expect("append");
        }
    }
    let engine = Engine::default();
    let empty = Labels::empty();
    let mut checked = 0;
    for art in group["alert_rule_test"]
        .as_array()
        .expect("alert_rule_test")
    {
        let t = 120_000; // every eval_time in this corpus is 2m
        assert_eq!(art["eval_time"].as_str(), Some("2m"));
        let name = art["alertname"].as_str().expect("alertname");
        let rule = rules["groups"][0]["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .find(|r| r["alert"].as_str() == Some(name))
            .expect("rule for alertname");
        let samples = vector(&engine, &head, rule["expr"].as_str().expect("expr"), t)
            .expect("expr evaluates");
        let query = |q: &str| vector(&engine, &head, q, t);
        for exp in art["exp_alerts"].as_array().expect("exp_alerts") {
            let exp_labels = exp["exp_labels"].as_object().expect("exp_labels");
            let sample = samples
                .iter()
                .find(|s| {
                    s.labels
                        .iter()
                        .filter(|l| l.name != "__name__")
                        .all(|l| exp_labels.get(&l.name).and_then(|v| v.as_str()) == Some(&l.value))
                })
                .unwrap_or_else(|| panic!("no sample for {name} {exp_labels:?}"));
            let ctx = TemplateContext {
                labels: &sample.labels,
                external_labels: &empty,
                external_url: "",
                value: sample.value,
                now_ms: t,
                query: Some(&query),
            };
            if let Some(ls) = rule["labels"].as_object() {
                for (k, v) in ls {
                    let got = expand_for_alert(name, v.as_str().expect("label template"), &ctx);
                    assert_eq!(
                        Some(got.as_str()),
                        exp_labels.get(k).and_then(|v| v.as_str()),
                        "{name} label {k}"
                    );
                    checked += 1;
                }
            }
            for (k, want) in exp["exp_annotations"].as_object().expect("exp_annotations") {
                let tpl = rule["annotations"][k]
                    .as_str()
                    .expect("annotation template");
                let got = expand_for_alert(name, tpl, &ctx);
                assert_eq!(Some(got.as_str()), want.as_str(), "{name} annotation {k}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "only {checked} corpus templates checked");
}

/// Tiny deterministic generator so the randomized test is reproducible.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[(self.next() % xs.len() as u64) as usize]
    }
}

#[test]
fn random_templates_never_panic() {
    const PIECES: &[&str] = &[
        "{{",
        "}}",
        "{{-",
        "-}}",
        " ",
        "$value",
        "$labels",
        ".",
        ".Labels",
        ".x",
        "$x",
        ":=",
        "=",
        "|",
        "(",
        ")",
        "\"s\"",
        "`r`",
        "'c'",
        "1",
        "-2.5e3",
        "0x1f",
        "if",
        "else",
        "end",
        "range",
        "with",
        "break",
        "humanize",
        "printf",
        "\"%d %s %.2f %q %x %v %-5d %!\"",
        "index",
        "len",
        "eq",
        "lt",
        "and",
        "or",
        "not",
        "first",
        "query",
        "args",
        "label",
        "value",
        "title",
        "reReplaceAll",
        "\"(\"",
        "match",
        "/*",
        "*/",
        "nil",
        "true",
        "x",
        "\n",
        "\\",
        "é",
        "humanizeTimestamp",
        "toTime",
        "sortByLabel",
        "template",
        ",",
        "$i",
        "$e",
        "1e400",
    ];
    let labels = Labels::from_pairs([("job", "a"), ("instance", "h:1")]);
    let ext = Labels::empty();
    let query = |_: &str| -> Result<Vec<QuerySample>, String> {
        Ok(vec![QuerySample {
            labels: Labels::from_pairs([("a", "1")]),
            value: 2.0,
        }])
    };
    let ctx = TemplateContext {
        labels: &labels,
        external_labels: &ext,
        external_url: "http://x/",
        value: 1.5,
        now_ms: 0,
        query: Some(&query),
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut ok = 0;
    for _ in 0..20_000 {
        let n = 1 + rng.next() % 12;
        let mut s = String::new();
        for _ in 0..n {
            s.push_str(rng.pick(PIECES));
        }
        if Template::parse("r", &s)
            .and_then(|t| t.execute(&ctx))
            .is_ok()
        {
            ok += 1;
        }
        // Byte-level garbage too, cut at arbitrary char boundaries.
        let cut: String = s.chars().rev().take((rng.next() % 8) as usize).collect();
        let _ = Template::parse("r", &cut);
    }
    assert!(ok > 0, "the generator should produce some valid templates");
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n != "bad") {
                collect_yaml(&p, out);
            }
        } else if p.extension().is_some_and(|e| e == "yml" || e == "yaml") {
            out.push(p);
        }
    }
}

/// Every templated label and annotation in the shared real-world rule
/// corpus (except those calling `query`, which needs promtool's own data),
/// rendered by klaxon and by promtool at test time.
#[test]
fn shared_rule_corpus_templates_match_promtool() {
    let Some(root) = common::data_dir("corpora/rules") else {
        return;
    };
    let Some(promtool_path) = promtool() else {
        eprintln!("promtool not installed; skipping (not counted)");
        return;
    };
    let mut files = Vec::new();
    collect_yaml(&root, &mut files);
    let label_ref =
        regex::Regex::new(r"(?:\$labels|\.Labels)\.([A-Za-z_][A-Za-z0-9_]*)").expect("regex");
    let mut templates = std::collections::BTreeSet::new();
    for f in &files {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        let Ok(doc) = serde_saphyr::from_str::<serde_json::Value>(&text) else {
            continue;
        };
        for g in doc["groups"].as_array().into_iter().flatten() {
            for r in g["rules"].as_array().into_iter().flatten() {
                for key in ["annotations", "labels"] {
                    for v in r[key].as_object().into_iter().flat_map(|m| m.values()) {
                        if let Some(s) = v.as_str() {
                            if s.contains("{{") && !s.contains("query") {
                                templates.insert(s.to_string());
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(
        templates.len() >= 100,
        "expected many corpus templates, found {}",
        templates.len()
    );
    const VALUES: [&str; 5] = ["0.0734", "1234.5678", "3725", "0.999", "1e9"];
    struct Item {
        name: String,
        template: String,
        labels: BTreeMap<String, String>,
        value: &'static str,
    }
    let items: Vec<Item> = templates
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            let mut labels = BTreeMap::new();
            labels.insert(
                "instance".to_string(),
                "host-1.example.org:9100".to_string(),
            );
            for c in label_ref.captures_iter(&t) {
                let n = c[1].to_string();
                if n != "instance" && n != "__name__" {
                    labels.insert(n.clone(), format!("{n}-v"));
                }
            }
            labels.insert("case".into(), i.to_string());
            Item {
                name: format!("R{i:04}"),
                template: t,
                labels,
                value: VALUES[i % VALUES.len()],
            }
        })
        .collect();
    let dir = tempfile::tempdir().expect("tempdir");
    let rules: Vec<serde_json::Value> = items
        .iter()
        .map(|it| {
            serde_json::json!({"alert": it.name, "expr": format!("corpus_value{{case=\"{}\"}}", it.labels["case"]),
                "annotations": {"a": it.template}})
        })
        .collect();
    let series: Vec<serde_json::Value> = items
        .iter()
        .map(|it| {
            let sel: Vec<String> = it
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={}", serde_json::to_string(v).unwrap()))
                .collect();
            serde_json::json!({"series": format!("corpus_value{{{}}}", sel.join(",")),
                "values": format!("{v} {v} {v}", v = it.value)})
        })
        .collect();
    let tests: Vec<serde_json::Value> = items
        .iter()
        .map(|it| {
            serde_json::json!({"eval_time": "1m", "alertname": it.name,
                "exp_alerts": [{"exp_labels": it.labels, "exp_annotations": {"a": "WRONG"}}]})
        })
        .collect();
    let rules = serde_json::json!({"groups": [{"name": "g", "rules": rules}]});
    let test = serde_json::json!({"rule_files": ["rules.yml"], "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "external_labels": {"cluster": "prod"}, "external_url": EXTERNAL_URL,
            "input_series": series, "alert_rule_test": tests}]});
    std::fs::write(dir.path().join("rules.yml"), rules.to_string()).expect("write rules");
    std::fs::write(dir.path().join("test.yml"), test.to_string()).expect("write test");
    let out = Command::new(&promtool_path)
        .args(["test", "rules", "test.yml"])
        .current_dir(dir.path())
        .output()
        .expect("run promtool");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let ext = Labels::from_pairs([("cluster", "prod")]);
    let mut failures = Vec::new();
    for it in &items {
        let marker = format!("alertname: {}, time: 1m,", it.name);
        let Some(start) = text.find(&marker) else {
            failures.push(format!(
                "{}: promtool printed nothing for {:?}",
                it.name, it.template
            ));
            continue;
        };
        let rest = &text[start..];
        let got_at = rest.find("got:[").expect("got section");
        let ann_at = rest[got_at..].find("Annotations:{a=").expect("annotations")
            + got_at
            + "Annotations:{a=".len();
        let end = rest[ann_at..].find("}\n").expect("end of annotations") + ann_at;
        let want = go_unquote(&rest[ann_at..end]);
        let mut pairs: Vec<(String, String)> = it
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        pairs.push(("__name__".into(), "corpus_value".into()));
        let labels = Labels::from_pairs(pairs);
        let ctx = TemplateContext {
            labels: &labels,
            external_labels: &ext,
            external_url: EXTERNAL_URL,
            value: it.value.parse().expect("value"),
            now_ms: 0,
            query: None,
        };
        let got = expand_for_alert(&it.name, &it.template, &ctx);
        if got != want {
            failures.push(format!(
                "{}: {:?}\n   want {want:?}\n   got  {got:?}",
                it.name, it.template
            ));
        }
    }
    eprintln!(
        "{} corpus templates from {} rule files compared with promtool",
        items.len(),
        files.len()
    );
    assert!(
        failures.is_empty(),
        "{} of {} corpus templates differ:\n{}",
        failures.len(),
        items.len(),
        failures.join("\n")
    );
}
