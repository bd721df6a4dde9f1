//! A random differential of klaxon's PromQL engine against Prometheus 2.42:
//! generated series and expressions go into one promtool unit-test file whose
//! `promql_expr_test`s expect nothing, so `promtool test rules` prints what
//! Prometheus got (or its error) for each; `klaxon test rules` prints the
//! same report format, and the two are compared expression by expression.
//!
//! The expressions lean on where engines tend to be lenient: selectors
//! without a metric name, `__name__` matchers, functions and operators that
//! drop the name (duplicate label sets), `label_replace` onto existing
//! labels, `on`/`ignoring` matching that produces duplicates.
//!
//! Samples sit every 10s from 0; evaluation times end in 5s and windows are
//! multiples of 10s, so no sample is on a window boundary (2.42 closes
//! range windows on the left, 3.x leaves them open). Functions whose 2.42
//! and 3.x results differ by design (extrapolation changes, new functions)
//! are not generated.

use crate::common;

use common::Rng;

use std::collections::BTreeMap;
use std::process::Command;

const SELECTORS: &[&str] = &[
    r#"{job="synth"}"#,
    r#"{__name__=~"a_total|b_total"}"#,
    r#"{__name__=~".+_total", i="1"}"#,
    r#"{__name__!="g", job="synth"}"#,
    r#"{i="2"}"#,
    "a_total",
    "b_total",
    "g",
    r#"g{job="other"}"#,
];

const RANGE_FNS: &[&str] = &[
    "rate",
    "increase",
    "count_over_time",
    "sum_over_time",
    "max_over_time",
    "min_over_time",
    "last_over_time",
    "avg_over_time",
    "changes",
    "resets",
];

const WINDOWS: &[&str] = &["30s", "1m", "2m"];

const EVAL_TIMES: &[&str] = &["125s", "185s", "245s"];

fn series_text() -> String {
    // Two counters that differ only by name, a gauge, and a second job.
    let mut s = String::new();
    let rows = [
        (r#"a_total{job="synth",i="1"}"#, "0+1x40"),
        (r#"b_total{job="synth",i="1"}"#, "0+3x40"),
        (r#"a_total{job="synth",i="2"}"#, "5+2x20 0+2x19"),
        (r#"b_total{job="other",i="2"}"#, "1+1x40"),
        (
            r#"g{job="synth",i="1"}"#,
            "3 1 4 1 5 9 2 6 5 3 5 8 9 7 9 3 2 3 8 4 6 2 6 4 3 3 8 3 2 7 9 5 0 2 8 8 4 1 9 7 1",
        ),
        (r#"g{job="other",i="2"}"#, "-1+0.5x40"),
    ];
    for (k, v) in rows {
        s.push_str(&format!("      - series: '{k}'\n        values: '{v}'\n"));
    }
    s
}

/// An instant-vector expression of depth at most `depth`.
fn vector(r: &mut Rng, depth: u32) -> String {
    if depth == 0 || r.chance(25) {
        return if r.chance(50) {
            r.pick(SELECTORS).to_string()
        } else {
            format!(
                "{}({}[{}])",
                r.pick(RANGE_FNS),
                r.pick(SELECTORS),
                r.pick(WINDOWS)
            )
        };
    }
    let inner = vector(r, depth - 1);
    match r.next() % 12 {
        0 => format!("abs({inner})"),
        1 => format!("-{inner}"),
        2 => format!("clamp_min({inner}, 2)"),
        3 => format!("label_replace({inner}, \"i\", \"z\", \"\", \"\")"),
        4 => format!("label_replace({inner}, \"job\", \"$1\", \"i\", \"(.*)\")"),
        5 => format!("{inner} * 2"),
        6 => format!("{inner} > 1"),
        7 => {
            let other = vector(r, depth - 1);
            let m = r.pick(&[
                "",
                " on(job)",
                " on(i)",
                " ignoring(i)",
                " on(job) group_left()",
                " ignoring(job) group_right()",
                " on(__name__)",
            ]);
            // A filtering comparison between vectors is left out: 3.x
            // raises matching errors before the comparison filters, 2.42
            // after (`== bool` filters nothing).
            let op = r.pick(&["+", "/", "-", "and", "or", "unless", "== bool"]);
            let m = if matches!(op, "and" | "or" | "unless") {
                m.split(" group").next().unwrap_or("")
            } else {
                m
            };
            format!("({inner}) {op}{m} ({other})")
        }
        8 => {
            let agg = r.pick(&["sum", "count", "max", "avg", "min", "group"]);
            let by = r.pick(&["", " by (job)", " by (i)", " without (i)", " by (__name__)"]);
            format!("{agg}{by} ({inner})")
        }
        // topk/bottomk pick among ties in map order in Prometheus: not
        // comparable.
        9 => format!("count({inner}) > 0"),
        10 => format!("count_values(\"v\", {inner})"),
        _ => format!("sort({inner})"),
    }
}

/// What is compared of one report block: floats to 12 significant digits
/// (2.42 and 3.x sum and average in different orders), and of a many-to-many
/// error only its kind (2.42 meets the series in map order).
fn normalize(block: &str) -> String {
    // Which duplicate is met first depends on series order, which 2.42
    // takes from map iteration for function outputs: keep the error kind.
    let block = match block.find("found duplicate series for the match group") {
        Some(i) => block[..i + "found duplicate series".len()].to_string(),
        None => block.to_string(),
    };
    block
        .split(' ')
        .map(|w| {
            let (num, rest) = match w.find([',', '\n']) {
                Some(i) => w.split_at(i),
                None => (w, ""),
            };
            match num.parse::<f64>() {
                Ok(f) if num.contains('E') && f.is_finite() && f != 0.0 => {
                    format!("{:.11E}{rest}", f)
                }
                _ => w.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// One expression's block of a `test rules` report: its `expr:` line and
/// the lines up to the next one.
fn blocks(report: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut cur: Option<(String, String)> = None;
    for l in report.lines() {
        if let Some(rest) = l.trim_start().strip_prefix("expr: ") {
            if let Some((k, v)) = cur.take() {
                out.insert(k, v);
            }
            // `"EXPR", time: T, ...`: the key is expression and time.
            let key = rest.split(", err:").next().unwrap_or(rest);
            let key = key.trim_end_matches(',').to_string();
            cur = Some((key, l.trim().to_string()));
        } else if let Some((_, v)) = cur.as_mut() {
            v.push('\n');
            v.push_str(l.trim());
        }
    }
    if let Some((k, v)) = cur {
        out.insert(k, v);
    }
    out
}

#[test]
fn promql_agrees_with_prometheus_2_42_on_generated_expressions() {
    let Some(promtool) = common::peer("promtool") else {
        return;
    };
    let seed = std::env::var("PROMQL_DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x2420_5EED_u64);
    let n: usize = std::env::var("PROMQL_DIFF_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let mut r = Rng(seed | 1);
    let mut exprs = Vec::new();
    while exprs.len() < n {
        let e = vector(&mut r, 3);
        if !exprs.contains(&e) {
            exprs.push(e);
        }
    }
    let mut yaml = format!(
        "rule_files: []\nevaluation_interval: 1m\ntests:\n  - interval: 10s\n    input_series:\n{}    promql_expr_test:\n",
        series_text()
    );
    for e in &exprs {
        let q = e.replace('\'', "''");
        yaml.push_str(&format!(
            "      - expr: '{q}'\n        eval_time: {}\n        exp_samples: []\n",
            r.pick(EVAL_TIMES)
        ));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("diff.test.yml");
    std::fs::write(&file, &yaml).expect("write");
    let run = |cmd: &std::ffi::OsStr| {
        let o = Command::new(cmd)
            .args(["test", "rules"])
            .arg(&file)
            .output()
            .expect("run test rules");
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let prom = blocks(&run(promtool.as_os_str()));
    let ours = blocks(&run(std::ffi::OsStr::new(env!("CARGO_BIN_EXE_klaxon"))));
    assert!(
        prom.len() > n * 9 / 10,
        "promtool reported {} of {n} expressions (a parse problem in the generated file?)",
        prom.len()
    );
    let mut diffs = Vec::new();
    for (k, p) in &prom {
        match ours.get(k) {
            Some(o) if normalize(o) == normalize(p) => {}
            Some(o) => diffs.push(format!("prometheus: {p}\n    klaxon: {o}")),
            None => diffs.push(format!("prometheus: {p}\n    klaxon: (no report)")),
        }
    }
    // promtool prints nothing for an expression whose result is empty.
    for o in ours
        .iter()
        .filter(|(k, _)| !prom.contains_key(*k))
        .map(|(_, o)| o)
    {
        diffs.push(format!("prometheus: (empty result)\n    klaxon: {o}"));
    }
    let errors = prom.values().filter(|v| v.contains(", err:")).count();
    eprintln!(
        "{} expressions, {errors} of them errors in Prometheus, {} differences (seed {seed:#x})",
        prom.len(),
        diffs.len()
    );
    assert!(
        diffs.is_empty(),
        "{} differences from Prometheus 2.42 (seed {seed:#x}):\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}
