//! `klaxon test rules`: runs promtool's rule unit-test files unchanged and
//! reports like promtool 2.42, because users' CI scripts parse that output
//! and rely on its exit code. The evaluation follows promtool: every group
//! is evaluated at 0, evaluation_interval, 2×… up to the largest eval_time;
//! alert tests are checked after the evaluation whose slot holds their
//! eval_time, expression tests run as instant queries at the end.

use crate::model::gofmt::{format_duration, go_quote, parse_duration};
use crate::model::histogram::{notation, FloatHistogram};
use crate::model::{Labels, STALE_NAN};
use crate::promql::{Engine, Value as QValue};
use crate::rules::alert::AlertState;
use crate::rules::group::GroupState;
use crate::tsdb::{Head, HistValue};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A problem that stops one test file or test group; the text is what
/// promtool prints for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct UnitTestError(pub String);

/// A unit-test file as promtool reads it. Unknown fields are collected
/// (promtool's strict YAML rejects them).
#[derive(Deserialize, Debug, Default)]
pub struct UnitTestFile {
    #[serde(default)]
    pub rule_files: Vec<String>,
    #[serde(default)]
    pub evaluation_interval: Option<String>,
    #[serde(default)]
    pub group_eval_order: Vec<String>,
    #[serde(default)]
    pub tests: Vec<TestGroup>,
    #[serde(flatten)]
    unknown: BTreeMap<String, serde::de::IgnoredAny>,
}

#[derive(Deserialize, Debug, Default)]
pub struct TestGroup {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub input_series: Vec<InputSeries>,
    #[serde(default)]
    pub alert_rule_test: Vec<AlertTest>,
    #[serde(default)]
    pub promql_expr_test: Vec<ExprTest>,
    #[serde(default)]
    pub external_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub external_url: String,
    #[serde(flatten)]
    unknown: BTreeMap<String, serde::de::IgnoredAny>,
}

#[derive(Deserialize, Debug)]
pub struct InputSeries {
    pub series: String,
    pub values: String,
    #[serde(flatten)]
    unknown: BTreeMap<String, serde::de::IgnoredAny>,
}

#[derive(Deserialize, Debug)]
pub struct AlertTest {
    pub eval_time: String,
    #[serde(default)]
    pub alertname: String,
    #[serde(default)]
    pub exp_alerts: Vec<ExpAlert>,
    #[serde(flatten)]
    unknown: BTreeMap<String, serde::de::IgnoredAny>,
}

#[derive(Deserialize, Debug)]
pub struct ExpAlert {
    #[serde(default)]
    pub exp_labels: BTreeMap<String, String>,
    #[serde(default)]
    pub exp_annotations: BTreeMap<String, String>,
    #[serde(flatten)]
    unknown: BTreeMap<String, serde::de::IgnoredAny>,
}

#[derive(Deserialize, Debug)]
pub struct ExprTest {
    pub expr: String,
    pub eval_time: String,
    #[serde(default)]
    pub exp_samples: Vec<ExpSample>,
    #[serde(flatten)]
    unknown: BTreeMap<String, serde::de::IgnoredAny>,
}

#[derive(Deserialize, Debug)]
pub struct ExpSample {
    pub labels: String,
    #[serde(default)]
    pub value: f64,
    /// A native histogram in the series notation (`{{schema:0 count:1
    /// buckets:[1]}}`), as Prometheus 3's promtool; set, `value` is ignored.
    #[serde(default)]
    pub histogram: String,
    #[serde(flatten)]
    unknown: BTreeMap<String, serde::de::IgnoredAny>,
}

/// Firing alerts as (labels, annotations), sorted by labels like promtool.
pub type AlertSet = Vec<(Labels, BTreeMap<String, String>)>;
/// Query samples as (labels, value, histogram), sorted by labels. The
/// histogram is its test expression (`{{count:1 ...}}`), empty for a float,
/// and compared as text, as promtool does.
pub type SampleSet = Vec<(Labels, f64, String)>;

/// One alert test's result: alertname, eval_time (ms), expected, got.
#[derive(Debug, Clone)]
pub struct AlertOutcome {
    pub alertname: String,
    pub eval_time: i64,
    pub exp: AlertSet,
    pub got: AlertSet,
}

/// One expression test's result.
#[derive(Debug, Clone)]
pub struct ExprOutcome {
    pub expr: String,
    pub eval_time: i64,
    pub exp: SampleSet,
    pub got: SampleSet,
}

/// What one test group produced, failures rendered in promtool's layout.
#[derive(Debug, Default)]
pub struct GroupOutcome {
    pub name: String,
    pub alerts: Vec<AlertOutcome>,
    pub exprs: Vec<ExprOutcome>,
    /// promtool's error blocks for this group, in its order.
    pub errors: Vec<String>,
}

/// One input sample: a float or a native histogram.
#[derive(Debug, Clone, PartialEq)]
pub enum InputValue {
    Float(f64),
    Histogram(FloatHistogram),
}

/// promtool's series notation with native histogram items (`{{...}}`,
/// `{{...}}xN`, `{{A}}+{{B}}xN`) between the float ones; `None` is a
/// missing sample.
pub fn expand_items(s: &str) -> Result<Vec<Option<InputValue>>, UnitTestError> {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        if rest.starts_with("{{") {
            let (items, used) = notation::parse_item_prefix(rest).map_err(|e| {
                UnitTestError(format!(
                    "invalid histogram {}: column {}: {}",
                    go_quote(rest),
                    e.column,
                    e.message
                ))
            })?;
            out.extend(
                items
                    .into_iter()
                    .map(|i| Some(InputValue::Histogram(i.histogram))),
            );
            rest = rest.get(used..).unwrap_or("").trim_start();
            continue;
        }
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (tok, r) = rest.split_at(end);
        out.extend(
            expand_values(tok)?
                .into_iter()
                .map(|v| v.map(InputValue::Float)),
        );
        rest = r.trim_start();
    }
    Ok(out)
}

/// promtool's series notation: `a`, `a+bxN`, `a-bxN`, `axN`, `_`, `_xN`,
/// `stale`. `None` is a missing sample.
pub fn expand_values(s: &str) -> Result<Vec<Option<f64>>, UnitTestError> {
    let bad = |tok: &str| UnitTestError(format!("invalid value {}", go_quote(tok)));
    let mut out = Vec::new();
    for tok in s.split_whitespace() {
        match tok {
            "stale" => out.push(Some(STALE_NAN)),
            "_" => out.push(None),
            _ => match tok.split_once('x') {
                Some(("_", n)) => {
                    let n: usize = n.parse().map_err(|_| bad(tok))?;
                    out.extend(std::iter::repeat_n(None, n));
                }
                Some((a, n)) => {
                    let n: usize = n.parse().map_err(|_| bad(tok))?;
                    let split = a.get(1..).and_then(|r| r.rfind(['+', '-'])).map(|i| i + 1);
                    let (start, step) = match split {
                        Some(i) => (
                            parse_f(&a[..i]).ok_or_else(|| bad(tok))?,
                            parse_f(&a[i..]).ok_or_else(|| bad(tok))?,
                        ),
                        None => (parse_f(a).ok_or_else(|| bad(tok))?, 0.0),
                    };
                    for k in 0..=n {
                        out.push(Some(start + step * k as f64));
                    }
                }
                None => out.push(Some(parse_f(tok).ok_or_else(|| bad(tok))?)),
            },
        }
    }
    Ok(out)
}

fn parse_f(s: &str) -> Option<f64> {
    match s.to_ascii_lowercase().trim_start_matches('+') {
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        "nan" => Some(f64::NAN),
        x => x.parse().ok(),
    }
}

/// A series selector like `m{a="b"}` as a label set (promtool's ParseMetric).
pub fn parse_series(s: &str) -> Result<Labels, UnitTestError> {
    let err = |m: String| UnitTestError(format!("labels {}: {m}", go_quote(s)));
    if s.trim() == "{}" {
        return Ok(Labels::empty());
    }
    let expr = crate::promql::parse(s).map_err(|e| err(e.to_string()))?;
    let crate::promql::Expr::VectorSelector(vs) = expr else {
        return Err(err("not a series selector".into()));
    };
    Ok(Labels::from_pairs(
        vs.matchers
            .iter()
            .map(|m| (m.name.clone(), m.value.clone())),
    ))
}

fn dur(s: &str, field: &str) -> Result<i64, UnitTestError> {
    parse_duration(s).map_err(|e| UnitTestError(format!("{field}: {e}")))
}

/// Loads one input series with samples `step` apart from time 0.
pub fn load_series(
    head: &Head,
    series: &str,
    values: &str,
    step: i64,
) -> Result<(), UnitTestError> {
    let l = parse_series(series)?;
    let mut app = head.appender();
    let err = |e: &dyn std::fmt::Display| UnitTestError(format!("series {series}: {e}"));
    let (r, _) = app.get_or_create(&l).map_err(|e| err(&e))?;
    for (i, v) in expand_items(values)?.into_iter().enumerate() {
        let t = i as i64 * step;
        match v {
            Some(InputValue::Float(v)) => app.append_ref(r, t, v).map_err(|e| err(&e))?,
            Some(InputValue::Histogram(h)) => app
                .append_histogram_ref(r, t, &HistValue::Float(h))
                .map_err(|e| err(&e))?,
            None => {}
        }
    }
    app.commit().map_err(|e| err(&e))
}

/// Labels as Go's `labels.Labels.String()`: `{a="b", c="d"}`, `{}` empty.
pub fn labels_string(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|x| format!("{}={}", x.name, go_quote(&x.value)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

fn map_string(m: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = m
        .iter()
        .map(|(k, v)| format!("{k}={}", go_quote(v)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// `strconv.FormatFloat(v, 'E', -1, 64)`: shortest digits, `E±dd`.
pub fn go_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    let s = format!("{v:E}");
    let (m, e) = s.split_once('E').unwrap_or((&s, "0"));
    let exp: i32 = e.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{m}E{sign}{:02}", exp.unsigned_abs())
}

/// Go's `indentLines`: every line after the first gets `indent`.
fn indent_lines(s: &str, indent: &str) -> String {
    s.split('\n')
        .collect::<Vec<_>>()
        .join(&format!("\n{indent}"))
}

fn alerts_string(a: &AlertSet) -> String {
    if a.is_empty() {
        return "[]".into();
    }
    let mut s = String::from("[");
    for (i, (l, ann)) in a.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        let body = format!(
            "\nLabels:{}\nAnnotations:{}",
            labels_string(l),
            map_string(ann)
        );
        s.push_str(&format!("\n{i}:{}", indent_lines(&body, "  ")));
    }
    s.push_str("\n]");
    s
}

fn samples_string(s: &SampleSet) -> String {
    if s.is_empty() {
        return "nil".into();
    }
    s.iter()
        .map(|(l, v, h)| {
            if h.is_empty() {
                format!("{} {}", labels_string(l), go_float_e(*v))
            } else {
                format!("{} {h}", labels_string(l))
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Go's `time.Duration.String()` for non-negative milliseconds.
fn go_duration(ms: i64) -> String {
    if ms == 0 {
        return "0s".into();
    }
    let (h, m) = (ms / 3_600_000, (ms / 60_000) % 60);
    let s = (ms % 60_000) as f64 / 1000.0;
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if h > 0 || m > 0 {
        out.push_str(&format!("{m}m"));
    }
    out.push_str(&format!("{s}s"));
    out
}

/// Line (1-based) of the first `key:` in `text` (at column 0 for top-level
/// keys), for promtool's strict-YAML "field not found" messages. A nested key
/// that also appears earlier under another parent gets that earlier line: an
/// approximation, serde's flatten keeps no positions.
fn key_line(text: &str, key: &str, top_level: bool) -> usize {
    for (i, l) in text.lines().enumerate() {
        let t = if top_level {
            l
        } else {
            l.trim_start().trim_start_matches("- ").trim_start()
        };
        if t.strip_prefix(key)
            .is_some_and(|r| r.trim_start().starts_with(':'))
        {
            return i + 1;
        }
    }
    0
}

/// Parses a unit-test file strictly like promtool's `yaml.UnmarshalStrict`.
pub fn parse_unit_file(text: &str) -> Result<UnitTestFile, UnitTestError> {
    let uf: UnitTestFile =
        serde_saphyr::from_str(text).map_err(|e| UnitTestError(format!("yaml: {e}")))?;
    let mut unknown: Vec<(usize, String)> = uf
        .unknown
        .keys()
        .map(|k| {
            (
                key_line(text, k, true),
                format!("field {k} not found in type main.unitTestFile"),
            )
        })
        .collect();
    let mut nested = |keys: &BTreeMap<String, serde::de::IgnoredAny>, ty: &str| {
        for k in keys.keys() {
            unknown.push((
                key_line(text, k, false),
                format!("field {k} not found in type main.{ty}"),
            ));
        }
    };
    for tg in &uf.tests {
        nested(&tg.unknown, "testGroup");
        for s in &tg.input_series {
            nested(&s.unknown, "series");
        }
        for a in &tg.alert_rule_test {
            nested(&a.unknown, "alertTestCase");
            for e in &a.exp_alerts {
                nested(&e.unknown, "alert");
            }
        }
        for e in &tg.promql_expr_test {
            nested(&e.unknown, "promqlTestCase");
            for s in &e.exp_samples {
                nested(&s.unknown, "sample");
            }
        }
    }
    if unknown.is_empty() {
        return Ok(uf);
    }
    unknown.sort();
    let mut msg = String::from("yaml: unmarshal errors:");
    for (line, m) in unknown {
        msg.push_str(&format!("\n  line {line}: {m}"));
    }
    Err(UnitTestError(msg))
}

/// Runs one test group against the rule files; `Err` stops the group like
/// promtool does (rule file errors, evaluation errors).
pub fn run_group(
    tg: &TestGroup,
    rule_files: &[PathBuf],
    group_order: &[String],
    eval_iv: i64,
) -> Result<GroupOutcome, Vec<String>> {
    let one = |e: UnitTestError| vec![e.to_string()];
    let step = match &tg.interval {
        Some(s) => dur(s, "interval").map_err(one)?,
        None => eval_iv,
    };
    let head = Head::default();
    for s in &tg.input_series {
        load_series(&head, &s.series, &s.values, step).map_err(one)?;
    }
    let mut groups: Vec<GroupState> = Vec::new();
    for path in rule_files {
        let f = crate::rules::file::load_rule_file(path)
            .map_err(|e| e.0.iter().map(|x| x.to_string()).collect::<Vec<_>>())?;
        for g in f.groups {
            groups.push(GroupState::new(
                &path.display().to_string(),
                g,
                Duration::from_millis(step.max(0) as u64),
                &tg.external_url,
            ));
        }
    }
    if !group_order.is_empty() {
        for name in group_order {
            if !groups.iter().any(|g| &g.group.name == name) {
                return Err(vec![format!(
                    "group {} not found in the rule files",
                    go_quote(name)
                )]);
            }
        }
        let pos = |n: &str| group_order.iter().position(|x| x == n).unwrap_or(0);
        groups.sort_by_key(|g| pos(&g.group.name));
    }
    let ext = Labels::from_pairs(tg.external_labels.clone());
    let mut alert_times = Vec::new();
    for a in &tg.alert_rule_test {
        if a.alertname.is_empty() {
            let in_group = if tg.name.is_empty() {
                String::new()
            } else {
                format!(" (in TestGroup {})", tg.name)
            };
            return Err(vec![format!(
                "an item under alert_rule_test misses required attribute alertname at eval_time {}{in_group}",
                a.eval_time
            )]);
        }
        alert_times.push(dur(&a.eval_time, "eval_time").map_err(one)?);
    }
    let mut expr_times = Vec::new();
    for e in &tg.promql_expr_test {
        expr_times.push(dur(&e.eval_time, "eval_time").map_err(one)?);
    }
    let max_t = alert_times
        .iter()
        .chain(&expr_times)
        .copied()
        .max()
        .unwrap_or(0);
    let engine = Engine::default();
    let mut oc = GroupOutcome {
        name: tg.name.clone(),
        ..Default::default()
    };
    // alert tests in eval_time order, stable for equal times
    let mut order: Vec<usize> = (0..alert_times.len()).collect();
    order.sort_by_key(|&i| alert_times[i]);
    let mut curr = 0;
    let mut ts = 0;
    while ts <= max_t {
        let mut eval_errs = Vec::new();
        for g in &mut groups {
            let rep = g.eval_group(&head, &engine, ts, &ext);
            for (_, name, err) in rep.errors {
                eval_errs.push(format!(
                    "    rule: {name}, time: {}, err: {err}",
                    go_duration(ts)
                ));
            }
        }
        if !eval_errs.is_empty() {
            oc.errors.extend(eval_errs);
            return Err(oc.errors);
        }
        while curr < order.len() {
            let i = order[curr];
            let et = alert_times[i];
            if !(ts <= et && et < ts + eval_iv) {
                break;
            }
            let at = &tg.alert_rule_test[i];
            let mut got: AlertSet = groups
                .iter()
                .flat_map(|g| g.active_alerts(&at.alertname))
                .filter(|a| a.state == AlertState::Firing)
                .map(|a| (a.labels.clone(), a.annotations.clone()))
                .collect();
            got.sort_by(|a, b| a.0.cmp(&b.0));
            let mut exp: AlertSet = at
                .exp_alerts
                .iter()
                .map(|e| {
                    let mut l = e.exp_labels.clone();
                    l.insert("alertname".into(), at.alertname.clone());
                    (Labels::from_pairs(l), e.exp_annotations.clone())
                })
                .collect();
            exp.sort_by(|a, b| a.0.cmp(&b.0));
            if exp != got {
                let name = if tg.name.is_empty() {
                    String::new()
                } else {
                    format!("    name: {},\n", tg.name)
                };
                let ind = "            ";
                oc.errors.push(format!(
                    "{name}    alertname: {}, time: {}, \n        exp:{}, \n        got:{}",
                    at.alertname,
                    format_duration(et),
                    indent_lines(&alerts_string(&exp), ind),
                    indent_lines(&alerts_string(&got), ind)
                ));
            }
            oc.alerts.push(AlertOutcome {
                alertname: at.alertname.clone(),
                eval_time: et,
                exp,
                got,
            });
            curr += 1;
        }
        if eval_iv <= 0 {
            break;
        }
        ts += eval_iv;
    }
    for (et, &t) in tg.promql_expr_test.iter().zip(&expr_times) {
        let head_err = |m: String| {
            format!(
                "    expr: {}, time: {}, err: {m}",
                go_quote(&et.expr),
                format_duration(t)
            )
        };
        let got = match engine.instant(&head, et.expr.as_str(), t) {
            Ok(r) => match r.value {
                QValue::Vector(v) => v
                    .iter()
                    .map(|s| {
                        let mut b = s.labels.builder();
                        if s.drop_name {
                            b.del("__name__");
                        }
                        let h = s.h.as_ref().map(|h| h.test_expression());
                        (b.build(), s.value, h.unwrap_or_default())
                    })
                    .collect(),
                QValue::Scalar { v, .. } => vec![(Labels::empty(), v, String::new())],
                _ => {
                    oc.errors
                        .push(head_err("rule result is not a vector or scalar".into()));
                    continue;
                }
            },
            Err(e) => {
                oc.errors.push(head_err(e.to_string()));
                continue;
            }
        };
        let mut got: SampleSet = got;
        got.sort_by(|a, b| a.0.cmp(&b.0));
        let mut exp = Vec::new();
        let mut bad = None;
        for s in &et.exp_samples {
            let l = match parse_series(&s.labels) {
                Ok(l) => l,
                Err(e) => {
                    oc.errors.push(head_err(e.to_string()));
                    return Err(oc.errors);
                }
            };
            match expected_histogram(&s.histogram) {
                Ok(h) => exp.push((l, s.value, h)),
                Err(e) => {
                    bad = Some(format!("labels {}: {e}", go_quote(&s.labels)));
                    break;
                }
            }
        }
        if let Some(e) = bad {
            // As Prometheus 3's promtool: this test fails, the next runs.
            oc.errors.push(head_err(e));
            continue;
        }
        exp.sort_by(|a: &(Labels, f64, String), b| a.0.cmp(&b.0));
        if exp != got {
            oc.errors.push(format!(
                "    expr: {}, time: {},\n        exp: {}\n        got: {}",
                go_quote(&et.expr),
                format_duration(t),
                samples_string(&exp),
                samples_string(&got)
            ));
        }
        oc.exprs.push(ExprOutcome {
            expr: et.expr.clone(),
            eval_time: t,
            exp,
            got,
        });
    }
    Ok(oc)
}

/// An expected sample's `histogram:` text as the test expression of the one
/// histogram it holds (empty for none), compared with the result's.
fn expected_histogram(s: &str) -> Result<String, UnitTestError> {
    if s.is_empty() {
        return Ok(String::new());
    }
    match expand_items(s)?.as_slice() {
        [Some(InputValue::Histogram(h))] => Ok(h.test_expression()),
        [Some(InputValue::Float(v))] => Err(UnitTestError(format!("expected histogram, got {v}"))),
        items => Err(UnitTestError(format!(
            "expected 1 value, got {}",
            items.len()
        ))),
    }
}

/// Rule file patterns resolved relative to the test file's directory and
/// globbed, like promtool.
fn resolve_rule_files(dir: &Path, pats: &[String]) -> Result<Vec<PathBuf>, UnitTestError> {
    let mut out = Vec::new();
    for p in pats {
        let full = if Path::new(p).is_absolute() {
            PathBuf::from(p)
        } else {
            dir.join(p)
        };
        let pat = full.display().to_string();
        let mut found: Vec<PathBuf> = glob::glob(&pat)
            .map_err(|e| UnitTestError(format!("{pat}: {e}")))?
            .filter_map(Result::ok)
            .collect();
        if found.is_empty() && !pat.contains(['*', '?', '[']) {
            found.push(full);
        }
        out.extend(found);
    }
    Ok(out)
}

/// Runs one unit-test file: the outcomes per group, or promtool's error
/// texts when the file or a group could not be run or a test failed.
pub fn run_file(path: &Path) -> (Vec<GroupOutcome>, Vec<String>) {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return (Vec::new(), vec![format!("open {}: {e}", path.display())]),
    };
    let uf = match parse_unit_file(&text) {
        Ok(u) => u,
        Err(e) => return (Vec::new(), vec![e.0]),
    };
    let eval_iv = match uf.evaluation_interval.as_deref() {
        Some(s) => match dur(s, "evaluation_interval") {
            Ok(v) => v,
            Err(e) => return (Vec::new(), vec![e.0]),
        },
        None => 60_000,
    };
    let mut seen = std::collections::HashSet::new();
    for g in &uf.group_eval_order {
        if !seen.insert(g) {
            return (
                Vec::new(),
                vec![format!("group name repeated in evaluation order: {g}")],
            );
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    let files = match resolve_rule_files(dir, &uf.rule_files) {
        Ok(f) => f,
        Err(e) => return (Vec::new(), vec![e.0]),
    };
    let mut outcomes = Vec::new();
    let mut errs = Vec::new();
    for tg in &uf.tests {
        match run_group(tg, &files, &uf.group_eval_order, eval_iv) {
            Ok(oc) => {
                errs.extend(oc.errors.iter().cloned());
                outcomes.push(oc);
            }
            Err(e) => errs.extend(e),
        }
    }
    (outcomes, errs)
}

/// `promtool test rules`: the report per file (verdict lines on `out`,
/// `FAILED:` and error blocks on `err` like promtool) and the exit code,
/// 0 when every file passed and 1 otherwise.
pub fn test_rule_files(files: &[PathBuf], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let mut failed = false;
    for f in files {
        let _ = writeln!(out, "Unit Testing:  {}", f.display());
        let _ = out.flush();
        let (_, errs) = run_file(f);
        if errs.is_empty() {
            let _ = writeln!(out, "  SUCCESS");
        } else {
            failed = true;
            let _ = writeln!(err, "  FAILED:");
            for e in errs {
                let _ = writeln!(err, "{e}");
                let _ = err.flush();
                let _ = writeln!(out);
                let _ = out.flush();
            }
        }
        let _ = writeln!(out);
        let _ = out.flush();
    }
    i32::from(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notation_expands() {
        let v = expand_values("1+2x2 _ 5 -1-1x1 _x2 3x1 stale").unwrap();
        assert_eq!(
            &v[..10],
            &[
                Some(1.0),
                Some(3.0),
                Some(5.0),
                None,
                Some(5.0),
                Some(-1.0),
                Some(-2.0),
                None,
                None,
                Some(3.0)
            ]
        );
        assert!(crate::model::is_stale_nan(v[11].unwrap()));
        assert!(expand_values("1+x").is_err());
    }

    #[test]
    fn go_formats() {
        assert_eq!(go_float_e(0.9), "9E-01");
        assert_eq!(go_float_e(0.75), "7.5E-01");
        assert_eq!(go_float_e(1234.0), "1.234E+03");
        assert_eq!(go_float_e(0.0), "0E+00");
        assert_eq!(go_duration(90_000), "1m30s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
    }

    #[test]
    fn unknown_nested_field_rejected_with_line() {
        let e = parse_unit_file(
            "rule_files: []\ntests:\n  - interval: 1m\n    alert_rule_test:\n      - eval_time: 1m\n        alertname: A\n        exp_alert: []\n",
        )
        .unwrap_err();
        assert_eq!(
            e.0,
            "yaml: unmarshal errors:\n  line 7: field exp_alert not found in type main.alertTestCase"
        );
    }

    #[test]
    fn unknown_top_level_field_rejected_with_line() {
        let e = parse_unit_file("rule_files: []\nfoo: 1\ntests: []\n").unwrap_err();
        assert_eq!(
            e.0,
            "yaml: unmarshal errors:\n  line 2: field foo not found in type main.unitTestFile"
        );
    }
}
