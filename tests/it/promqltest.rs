//! The promqltest harness: runs Prometheus' `.test` scripts (format described
//! in `../shared/upstream/prometheus/FORMAT.md`) against our engine.
//!
//! Every eval is one case: passed, failed, or skipped for a named reason
//! (native histograms, start timestamps, an engine feature reported as
//! unsupported). Failures are printed but only a drop below the committed
//! baseline (`testdata/promql/baseline.txt`) fails the test, so the count can
//! be worked up case by case.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use klaxon::model::histogram::{notation, FloatHistogram, Span};
use klaxon::model::{gofmt, Labels, MatchType, STALE_NAN};
use klaxon::promql::engine::{Engine, EngineOptions, Query, QueryResult, Value};
use klaxon::promql::parser::{self, AtModifier, Expr};
use klaxon::tsdb::series_hist::stale_marker;
use klaxon::tsdb::{Head, HistValue};

const SHARED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/upstream/prometheus/promql"
);
const OURS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/promql");
const BASELINE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/promql/baseline.txt");

// ---------------------------------------------------------------- parsing

fn parse_dur(s: &str) -> Result<i64, String> {
    if s == "0" {
        return Ok(0);
    }
    gofmt::parse_duration(s)
}

/// A series description: label set plus value items (None = no sample).
#[derive(Clone)]
struct SeriesDesc {
    labels: Labels,
    values: Vec<Option<f64>>,
    /// Native-histogram items, aligned with `values` (`None` where the
    /// item is a float or a gap).
    hists: Vec<Option<FloatHistogram>>,
    histogram: bool,
}

/// Splits `metric{...} rest` into the label part and the rest.
fn split_series(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut in_q = false;
    let mut esc = false;
    let mut depth = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if in_q {
            if esc {
                esc = false;
            } else if b == b'\\' {
                esc = true;
            } else if b == b'"' {
                in_q = false;
            }
            continue;
        }
        match b {
            b'"' => in_q = true,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return (&line[..=i], line[i + 1..].trim());
                }
            }
            b' ' | b'\t' if depth == 0 => return (&line[..i], line[i..].trim()),
            _ => {}
        }
    }
    (line, "")
}

fn parse_labels(s: &str) -> Result<Labels, String> {
    let s = s.trim();
    if s == "{}" {
        return Ok(Labels::empty());
    }
    let e = parser::parse(s).map_err(|e| format!("labels {s}: {e}"))?;
    match e {
        Expr::VectorSelector(vs) => {
            let mut pairs = Vec::new();
            for m in &vs.matchers {
                if m.kind != MatchType::Equal {
                    return Err(format!("labels {s}: only = allowed"));
                }
                pairs.push((m.name.clone(), m.value.clone()));
            }
            Ok(Labels::from_pairs(pairs))
        }
        _ => Err(format!("labels {s}: not a series")),
    }
}

fn parse_num(s: &str) -> Result<f64, String> {
    let l = s.to_ascii_lowercase();
    match l.trim_start_matches(['+', '-']) {
        "inf" => {
            return Ok(if l.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        "nan" => return Ok(f64::NAN),
        _ => {}
    }
    if let Some(rest) = s.strip_prefix('+') {
        return gofmt::parse_number(rest);
    }
    if let Some(rest) = s.strip_prefix('-') {
        return gofmt::parse_number(rest).map(|v| -v);
    }
    gofmt::parse_number(s)
}

/// Expands value items (`1`, `_`, `_x3`, `stale`, `1+2x3`, `1x3`...).
type Items = (Vec<Option<f64>>, Vec<Option<FloatHistogram>>, bool);

fn parse_values(s: &str) -> Result<Items, String> {
    let mut out = Vec::new();
    let mut hists: Vec<Option<FloatHistogram>> = Vec::new();
    let mut hist = false;
    let mut rest = s.trim();
    while !rest.is_empty() {
        if rest.starts_with("{{") {
            // Native histogram item: `{{..}}`, `{{..}}xN`, `{{A}}+{{B}}xN`.
            hist = true;
            let (parsed, used) = notation::parse_item_prefix(rest)
                .map_err(|e| format!("histogram {rest}: column {e}"))?;
            hists.resize(out.len(), None);
            for item in parsed {
                out.push(None);
                hists.push(Some(item.histogram));
            }
            rest = rest[used..].trim_start();
            continue;
        }
        let (tok, r) = match rest.find(char::is_whitespace) {
            Some(i) => (&rest[..i], rest[i..].trim_start()),
            None => (rest, ""),
        };
        rest = r;
        if tok == "_" {
            out.push(None);
        } else if let Some(k) = tok.strip_prefix("_x") {
            let k: usize = k.parse().map_err(|_| format!("bad item {tok}"))?;
            out.extend(std::iter::repeat_n(None, k));
        } else if tok == "stale" {
            out.push(Some(STALE_NAN));
        } else if let Some((base, k)) = tok
            .rfind('x')
            .filter(|&i| {
                i > 0 && i + 1 < tok.len() && tok[i + 1..].bytes().all(|c| c.is_ascii_digit())
            })
            .map(|i| (&tok[..i], &tok[i + 1..]))
        {
            let k: usize = k.parse().map_err(|_| format!("bad item {tok}"))?;
            // A, A+B or A-B (a sign right after an exponent `e` belongs to A).
            let split = base
                .char_indices()
                .skip(1)
                .find(|&(i, c)| {
                    (c == '+' || c == '-') && !base[..i].to_ascii_lowercase().ends_with('e')
                })
                .map(|(i, _)| i);
            let (a, d) = match split {
                Some(i) => {
                    let a = parse_num(&base[..i])?;
                    let d = parse_num(&base[i + 1..])?;
                    (a, if base[i..].starts_with('-') { -d } else { d })
                }
                None => (parse_num(base)?, 0.0),
            };
            // Cumulative, as the upstream grammar adds the increment.
            let mut v = a;
            for _ in 0..=k {
                out.push(Some(v));
                v += d;
            }
        } else {
            out.push(Some(parse_num(tok)?));
        }
    }
    hists.resize(out.len(), None);
    Ok((out, hists, hist))
}

fn parse_series(line: &str) -> Result<SeriesDesc, String> {
    let (l, v) = split_series(line);
    let labels = parse_labels(l)?;
    let (values, hists, histogram) = parse_values(v)?;
    Ok(SeriesDesc {
        labels,
        values,
        hists,
        histogram,
    })
}

#[derive(Default, Clone)]
struct Expect {
    fail: bool,
    fail_msg: Option<String>,
    fail_re: Option<String>,
    warn: Vec<(Option<String>, Option<String>)>,
    info: Vec<(Option<String>, Option<String>)>,
    any_warn: bool,
    any_info: bool,
    no_warn: bool,
    no_info: bool,
    ordered: bool,
    range_vector: Option<(i64, i64, i64)>,
    string: Option<String>,
    scalar: Option<f64>,
    series: Vec<(String, Result<SeriesDesc, String>)>,
}

enum Cmd {
    Load {
        interval: i64,
        lines: Vec<String>,
        nhcb: bool,
    },
    Clear,
    Eval {
        line: usize,
        text: String,
        expr: String,
        range: Option<(i64, i64, i64)>,
        at: i64,
        exp: Box<Expect>,
    },
    Bad {
        line: usize,
        err: String,
    },
}

fn go_unquote(s: &str) -> Option<String> {
    gofmt::unquote(s).ok()
}

fn parse_expect_line(l: &str, exp: &mut Expect) -> Result<(), String> {
    let rest = l.strip_prefix("expect").unwrap_or("").trim();
    let (kind, tail) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let (msg, re) = if let Some(m) = tail.strip_prefix("msg:") {
        (Some(m.trim().to_string()), None)
    } else if let Some(r) = tail.strip_prefix("regex:") {
        (None, Some(r.trim().to_string()))
    } else if tail.is_empty() {
        (None, None)
    } else {
        return Err(format!("bad expect line {l}"));
    };
    match kind {
        "fail" => {
            exp.fail = true;
            exp.fail_msg = msg;
            exp.fail_re = re;
        }
        "warn" => exp.warn.push((msg, re)),
        "info" => exp.info.push((msg, re)),
        "no_warn" => exp.no_warn = true,
        "no_info" => exp.no_info = true,
        "ordered" => exp.ordered = true,
        other => return Err(format!("unknown expect kind {other}")),
    }
    Ok(())
}

fn parse_script(src: &str) -> Vec<Cmd> {
    let lines: Vec<String> = src
        .split('\n')
        .map(|l| {
            let t = l.trim();
            if t.starts_with('#') {
                String::new()
            } else {
                t.to_string()
            }
        })
        .collect();
    let mut cmds = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].clone();
        i += 1;
        if l.is_empty() {
            continue;
        }
        let kw = l
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if kw == "clear" {
            // `clear` has no block: the next line is a new command.
            cmds.push(Cmd::Clear);
            continue;
        }
        let mut block = Vec::new();
        while i < lines.len() && !lines[i].is_empty() {
            block.push(lines[i].clone());
            i += 1;
        }
        let lineno = i - block.len();
        let kw = l
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if kw == "clear" {
            cmds.push(Cmd::Clear);
        } else if kw.starts_with("load") {
            let arg = l.split_whitespace().nth(1).unwrap_or("");
            match parse_dur(arg) {
                Ok(interval) => cmds.push(Cmd::Load {
                    interval,
                    lines: block,
                    nhcb: kw == "load_with_nhcb",
                }),
                Err(e) => cmds.push(Cmd::Bad {
                    line: lineno,
                    err: e,
                }),
            }
        } else if kw.starts_with("eval") {
            match parse_eval(&l, &kw, block, lineno) {
                Ok(c) => cmds.push(c),
                Err(err) => cmds.push(Cmd::Bad { line: lineno, err }),
            }
        } else {
            cmds.push(Cmd::Bad {
                line: lineno,
                err: format!("unknown command {l}"),
            });
        }
    }
    cmds
}

fn parse_eval(l: &str, kw: &str, block: Vec<String>, line: usize) -> Result<Cmd, String> {
    let mut exp = Expect::default();
    match kw {
        "eval" => {}
        "eval_fail" => exp.fail = true,
        "eval_warn" => exp.any_warn = true,
        "eval_info" => exp.any_info = true,
        "eval_ordered" => exp.ordered = true,
        other => return Err(format!("unknown eval kind {other}")),
    }
    let rest = l[kw.len()..].trim();
    let (range, at, expr) = if let Some(r) = rest.strip_prefix("instant") {
        let r = r.trim().strip_prefix("at").ok_or("missing at")?.trim();
        let (t, e) = r.split_once(char::is_whitespace).ok_or("missing expr")?;
        (None, parse_dur(t)?, e.trim().to_string())
    } else if let Some(r) = rest.strip_prefix("range") {
        let mut parts = r.trim().splitn(7, char::is_whitespace);
        let toks: Vec<&str> = (&mut parts).take(6).collect();
        let expr = parts.next().unwrap_or("").trim().to_string();
        if toks.len() < 6 || toks[0] != "from" || toks[2] != "to" || toks[4] != "step" {
            return Err("bad range header".into());
        }
        let (s, e, st) = (
            parse_dur(toks[1])?,
            parse_dur(toks[3])?,
            parse_dur(toks[5])?,
        );
        (Some((s, e, st)), e, expr)
    } else {
        return Err("bad eval header".into());
    };
    for b in block {
        if let Some(m) = b.strip_prefix("expected_fail_message") {
            exp.fail_msg = Some(m.trim().to_string());
            continue;
        }
        if let Some(m) = b.strip_prefix("expected_fail_regexp") {
            exp.fail_re = Some(m.trim().to_string());
            continue;
        }
        if let Some(r) = b.strip_prefix("expect range vector") {
            let toks: Vec<&str> = r.split_whitespace().collect();
            if toks.len() != 6 {
                return Err("bad expect range vector".into());
            }
            exp.range_vector = Some((
                parse_dur(toks[1])?,
                parse_dur(toks[3])?,
                parse_dur(toks[5])?,
            ));
            continue;
        }
        if let Some(r) = b.strip_prefix("expect string") {
            exp.string = Some(go_unquote(r.trim()).ok_or("bad expect string")?);
            continue;
        }
        if b.split_whitespace().next() == Some("expect") {
            parse_expect_line(&b, &mut exp)?;
            continue;
        }
        if let Ok(v) = parse_num(b.trim()) {
            exp.scalar = Some(v);
            continue;
        }
        exp.series.push((b.clone(), parse_series(&b)));
    }
    let at = match exp.range_vector {
        Some((_, t2, _)) => t2,
        None => at,
    };
    Ok(Cmd::Eval {
        line,
        text: l.to_string(),
        expr,
        range,
        at,
        exp: Box::new(exp),
    })
}

// ---------------------------------------------------------------- checking

fn almost_equal(a: f64, b: f64) -> bool {
    let stale_a = klaxon::model::is_stale_nan(a);
    let stale_b = klaxon::model::is_stale_nan(b);
    if stale_a || stale_b {
        return stale_a && stale_b;
    }
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let eps = 1e-6;
    let min_normal = f64::MIN_POSITIVE;
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || (a.abs() + b.abs()) < min_normal {
        return diff < eps * min_normal;
    }
    diff / (a.abs() + b.abs()).min(f64::MAX) < eps
}

enum Outcome {
    Pass,
    Fail(String),
    Skip(String),
}

/// A sample value: a float, or a native histogram with whether the
/// expectation wrote its counter reset hint (compared only then).
#[derive(Clone, Debug)]
enum Val {
    F(f64),
    H(Box<FloatHistogram>, bool),
}

impl std::fmt::Display for Val {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Val::F(v) => write!(f, "{v}"),
            Val::H(h, _) => write!(f, "{}", h.test_expression()),
        }
    }
}

/// The non-empty buckets of one side, by index.
fn bucket_list(l: Vec<(i32, f64)>) -> Vec<(i32, f64)> {
    l.into_iter().filter(|b| b.1 != 0.0).collect()
}

/// Prometheus' promqltest comparison of native histograms: both
/// compacted, counts almost equal, layouts equal, the hint only when the
/// expectation sets it.
fn hist_eq(want: &FloatHistogram, got: &FloatHistogram, hint_set: bool) -> bool {
    let lists_eq = |a: Vec<(i32, f64)>, b: Vec<(i32, f64)>| {
        let (a, b) = (bucket_list(a), bucket_list(b));
        a.len() == b.len()
            && a.iter()
                .zip(&b)
                .all(|(x, y)| x.0 == y.0 && almost_equal(x.1, y.1))
    };
    want.schema == got.schema
        && almost_equal(want.count, got.count)
        && almost_equal(want.sum, got.sum)
        && (!want.uses_custom_buckets()
            || (want.custom_values.len() == got.custom_values.len()
                && want
                    .custom_values
                    .iter()
                    .zip(&got.custom_values)
                    .all(|(a, b)| almost_equal(*a, *b))))
        && want.zero_threshold == got.zero_threshold
        && almost_equal(want.zero_count, got.zero_count)
        && lists_eq(want.negative_list(), got.negative_list())
        && lists_eq(want.positive_list(), got.positive_list())
        && (!hint_set || want.counter_reset_hint == got.counter_reset_hint)
}

fn val_eq(got: &Val, want: &Val) -> bool {
    match (got, want) {
        (Val::F(a), Val::F(b)) => almost_equal(*a, *b),
        (Val::H(g, _), Val::H(w, set)) => hist_eq(w, g, *set),
        _ => false,
    }
}

fn sample_val(s: &klaxon::promql::engine::Sample) -> Val {
    match &s.h {
        Some(h) => Val::H(h.clone(), false),
        None => Val::F(s.value),
    }
}

/// A matrix series' floats and histograms merged by time.
fn series_points(s: &klaxon::promql::engine::Series) -> Vec<(i64, Val)> {
    let mut v: Vec<(i64, Val)> = s.points.iter().map(|p| (p.0, Val::F(p.1))).collect();
    v.extend(
        s.hpoints
            .iter()
            .map(|p| (p.0, Val::H(Box::new(p.1.clone()), false))),
    );
    v.sort_by_key(|p| p.0);
    v
}

/// An expected series line with its values, floats and histograms
/// (`_` and `_xN` are no value).
fn expected_series(line: &str) -> Result<(Labels, Vec<Option<Val>>), String> {
    let (l, rest) = split_series(line);
    let labels = parse_labels(l)?;
    let mut out = Vec::new();
    let mut rest = rest.trim();
    while !rest.is_empty() {
        if rest.starts_with("{{") {
            let (hs, used) = notation::parse_item_prefix(rest)
                .map_err(|e| format!("histogram in {line}: {e}"))?;
            for h in hs {
                out.push(Some(Val::H(
                    Box::new(h.histogram),
                    h.counter_reset_hint_set,
                )));
            }
            rest = rest[used..].trim_start();
            continue;
        }
        let (tok, r) = match rest.find(char::is_whitespace) {
            Some(i) => (&rest[..i], rest[i..].trim_start()),
            None => (rest, ""),
        };
        rest = r;
        let (vals, _, _) = parse_values(tok)?;
        out.extend(vals.into_iter().map(|v| v.map(Val::F)));
    }
    Ok((labels, out))
}

fn fmt_vec(v: &[(Labels, Val)]) -> String {
    v.iter()
        .map(|(l, f)| format!("    {l} {f}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Compares an instant-vector-like result with the expected series.
fn check_vector(got: &[(Labels, Val)], exp: &Expect) -> Result<(), String> {
    let mut want = Vec::new();
    for (line, _) in &exp.series {
        let (labels, values) =
            expected_series(line).map_err(|e| format!("bad expected line {line}: {e}"))?;
        if values.len() != 1 {
            return Err(format!("expected line needs one value: {line}"));
        }
        let v = values
            .into_iter()
            .next()
            .flatten()
            .unwrap_or(Val::F(f64::NAN));
        want.push((labels, v));
    }
    let show = || format!("expected:\n{}\n  got:\n{}", fmt_vec(&want), fmt_vec(got));
    if got.len() != want.len() {
        return Err(format!("wrong number of series: {}", show()));
    }
    if exp.ordered {
        for (g, w) in got.iter().zip(&want) {
            if g.0 != w.0 || !val_eq(&g.1, &w.1) {
                return Err(format!("ordered mismatch: {}", show()));
            }
        }
        return Ok(());
    }
    for w in &want {
        match got.iter().find(|g| g.0 == w.0) {
            Some(g) if val_eq(&g.1, &w.1) => {}
            Some(g) => {
                return Err(format!(
                    "value for {} is {}, want {}: {}",
                    w.0,
                    g.1,
                    w.1,
                    show()
                ))
            }
            None => return Err(format!("missing series {}: {}", w.0, show())),
        }
    }
    Ok(())
}

fn check_matrix(
    got: &[klaxon::promql::engine::Series],
    exp: &Expect,
    start: i64,
    step: i64,
) -> Result<(), String> {
    if exp.ordered {
        return Err("expect ordered on a matrix".into());
    }
    let mut want: Vec<(Labels, Vec<(i64, Val)>)> = Vec::new();
    for (line, _) in &exp.series {
        let (labels, values) =
            expected_series(line).map_err(|e| format!("bad expected line {line}: {e}"))?;
        let pts = values
            .into_iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (start + i as i64 * step, v)))
            .collect();
        want.push((labels, pts));
    }
    let fmt_pts = |p: &[(i64, Val)]| {
        p.iter()
            .map(|(t, v)| format!("{t}:{v}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let show = || {
        let g: Vec<String> = got
            .iter()
            .map(|s| format!("    {} {}", s.labels, fmt_pts(&series_points(s))))
            .collect();
        let w: Vec<String> = want
            .iter()
            .map(|s| format!("    {} {}", s.0, fmt_pts(&s.1)))
            .collect();
        format!("expected:\n{}\n  got:\n{}", w.join("\n"), g.join("\n"))
    };
    if got.len() != want.len() {
        return Err(format!("wrong number of series: {}", show()));
    }
    for w in &want {
        let Some(g) = got.iter().find(|g| *g.labels == w.0) else {
            return Err(format!("missing series {}: {}", w.0, show()));
        };
        let gp = series_points(g);
        if gp.len() != w.1.len()
            || gp
                .iter()
                .zip(&w.1)
                .any(|(a, b)| a.0 != b.0 || !val_eq(&a.1, &b.1))
        {
            return Err(format!("points differ for {}: {}", w.0, show()));
        }
    }
    if got.windows(2).any(|w| w[0].labels > w[1].labels) {
        return Err("matrix not sorted by labels".into());
    }
    Ok(())
}

fn anno_match(list: &[String], want: &[(Option<String>, Option<String>)]) -> Result<(), String> {
    let matches = |a: &str, w: &(Option<String>, Option<String>)| match w {
        (Some(m), _) => a == m,
        (None, Some(r)) => regex::Regex::new(r)
            .map(|re| re.is_match(a))
            .unwrap_or(false),
        (None, None) => true,
    };
    for w in want {
        if !list.iter().any(|a| matches(a, w)) {
            return Err(format!("annotation {w:?} not found in {list:?}"));
        }
    }
    for a in list {
        if !want.iter().any(|w| matches(a, w)) {
            return Err(format!("unexpected annotation {a:?} (expected {want:?})"));
        }
    }
    Ok(())
}

fn check_annotations(r: &QueryResult, exp: &Expect) -> Result<(), String> {
    if exp.any_warn && r.warnings.is_empty() {
        return Err("expected a warning".into());
    }
    if exp.any_info && r.infos.is_empty() {
        return Err("expected an info".into());
    }
    if exp.no_warn && !r.warnings.is_empty() {
        return Err(format!("unexpected warnings {:?}", r.warnings));
    }
    if exp.no_info && !r.infos.is_empty() {
        return Err(format!("unexpected infos {:?}", r.infos));
    }
    if !exp.warn.is_empty() {
        anno_match(&r.warnings, &exp.warn)?;
    }
    if !exp.info.is_empty() {
        anno_match(&r.infos, &exp.info)?;
    }
    Ok(())
}

fn check_error(err: &str, exp: &Expect) -> Result<(), String> {
    if !exp.fail {
        return Err(format!("unexpected error: {err}"));
    }
    if let Some(m) = &exp.fail_msg {
        if err != m {
            return Err(format!("error {err:?}, want {m:?}"));
        }
    }
    if let Some(r) = &exp.fail_re {
        let re = regex::Regex::new(r).map_err(|e| e.to_string())?;
        if !re.is_match(err) {
            return Err(format!("error {err:?} does not match {r:?}"));
        }
    }
    Ok(())
}

/// Checks one instant query's result against the expectation.
fn check_instant(res: Result<QueryResult, String>, exp: &Expect) -> Result<(), String> {
    let r = match res {
        Err(e) => return check_error(&e, exp),
        Ok(r) => r,
    };
    if exp.fail {
        return Err("expected an error, query succeeded".into());
    }
    check_annotations(&r, exp)?;
    match &r.value {
        Value::Scalar { v, .. } => match exp.scalar {
            Some(w) if almost_equal(*v, w) => Ok(()),
            Some(w) => Err(format!("scalar {v}, want {w}")),
            None => Err(format!("got scalar {v}, expected a vector")),
        },
        Value::String { v, .. } => match &exp.string {
            Some(w) if w == v => Ok(()),
            _ => Err(format!("got string {v:?}, want {:?}", exp.string)),
        },
        Value::Vector(v) => {
            if exp.scalar.is_some() {
                return Err("got vector, expected scalar".into());
            }
            if let Some(w) = &exp.string {
                return Err(format!(
                    "got vector of {} samples, want string {w:?}",
                    v.len()
                ));
            }
            let got: Vec<(Labels, Val)> = v
                .iter()
                .map(|s| ((*s.labels).clone(), sample_val(s)))
                .collect();
            check_vector(&got, exp)
        }
        Value::Matrix(m) => match exp.range_vector {
            Some((s, _, st)) => check_matrix(m, exp, s, st),
            None => Err("got matrix for instant eval".into()),
        },
    }
}

/// Checks the points at `t` of a range query run around `t`.
fn check_range_at(res: Result<QueryResult, String>, exp: &Expect, t: i64) -> Result<(), String> {
    let r = match res {
        Err(e) => return check_error(&e, exp),
        Ok(r) => r,
    };
    if exp.fail {
        return Err("expected an error, range query succeeded".into());
    }
    // Annotations are not compared here, as upstream: the range query's
    // cover its other steps too (e.g. a counter reset one step later).
    let Value::Matrix(m) = &r.value else {
        return Err("range query did not return a matrix".into());
    };
    let got: Vec<(Labels, Val)> = m
        .iter()
        .filter_map(|s| {
            series_points(s)
                .into_iter()
                .find(|p| p.0 == t)
                .map(|p| ((*s.labels).clone(), p.1))
        })
        .collect();
    if let Some(w) = exp.scalar {
        return match got.as_slice() {
            [(_, Val::F(v))] if almost_equal(*v, w) => Ok(()),
            _ => Err(format!("range mode: scalar want {w}, got {got:?}")),
        };
    }
    let mut e2 = exp.clone();
    e2.ordered = false;
    check_vector(&got, &e2).map_err(|e| format!("range mode: {e}"))
}

const TIME_FNS: &[&str] = &[
    "time",
    "timestamp",
    "predict_linear",
    "minute",
    "hour",
    "day_of_week",
    "day_of_month",
    "day_of_year",
    "days_in_month",
    "month",
    "year",
    "start",
    "end",
    "range",
    "step",
];

fn walk<'a>(e: &'a Expr, f: &mut dyn FnMut(&'a Expr)) {
    f(e);
    match e {
        Expr::Unary(u) => walk(&u.expr, f),
        Expr::Paren(p) => walk(&p.expr, f),
        Expr::Binary(b) => {
            walk(&b.lhs, f);
            walk(&b.rhs, f);
        }
        Expr::Call(c) => c.args.iter().for_each(|a| walk(a, f)),
        Expr::Aggregate(a) => {
            walk(&a.expr, f);
            if let Some(p) = &a.param {
                walk(p, f);
            }
        }
        Expr::SubqueryExpr(s) => walk(&s.expr, f),
        _ => {}
    }
}

fn uses_time_fn(e: &Expr) -> bool {
    let mut found = false;
    walk(e, &mut |n| {
        if let Expr::Call(c) = n {
            if TIME_FNS.contains(&c.func.name) {
                found = true;
            }
        }
    });
    found
}

/// Adds `@ t` to every selector and subquery without one (not descending
/// into subqueries, whose inner times must keep moving).
fn add_at(e: &mut Expr, t: i64) {
    match e {
        Expr::VectorSelector(v) if v.at.is_none() => {
            v.at = Some(AtModifier::Timestamp(t));
        }
        Expr::MatrixSelector(m) if m.selector.at.is_none() => {
            m.selector.at = Some(AtModifier::Timestamp(t));
        }
        Expr::SubqueryExpr(s) if s.at.is_none() => {
            s.at = Some(AtModifier::Timestamp(t));
        }
        Expr::Unary(u) => add_at(&mut u.expr, t),
        Expr::Paren(p) => add_at(&mut p.expr, t),
        Expr::Binary(b) => {
            add_at(&mut b.lhs, t);
            add_at(&mut b.rhs, t);
        }
        Expr::Call(c) => c.args.iter_mut().for_each(|a| add_at(a, t)),
        Expr::Aggregate(a) => {
            add_at(&mut a.expr, t);
            if let Some(p) = &mut a.param {
                add_at(p, t);
            }
        }
        _ => {}
    }
}

fn unsupported(err: &str) -> Option<String> {
    // Engine gaps excused only when listed here with the reason; any other
    // `unsupported:` error is a failure like any wrong answer.
    KNOWN_ENGINE_GAPS
        .iter()
        .find(|(msg, _)| err == *msg)
        .map(|(msg, why)| format!("{msg} ({why})"))
}

/// Exact engine error texts that are skips, each with its reason (see
/// docs/compatibility.md).
const KNOWN_ENGINE_GAPS: &[(&str, &str)] = &[];

struct Storage {
    head: Head,
    /// Series loaded with native histogram samples.
    hist: Vec<Labels>,
    start_ts: bool,
}

/// One classic histogram at one timestamp, collected from its `_bucket`,
/// `_count` and `_sum` series for `load_with_nhcb` (Prometheus'
/// `convertnhcb.TempHistogram`): cumulative bucket counts by upper bound.
#[derive(Default)]
struct ClassicHist {
    buckets: Vec<(f64, f64)>,
    count: Option<f64>,
    sum: f64,
    err: Option<String>,
}

impl ClassicHist {
    fn set_bucket(&mut self, le: f64, count: f64) {
        if self.err.is_some() {
            return;
        }
        if count < 0.0 {
            self.err = Some(format!(
                "bucket count must be non-negative: le={le}, count={count}"
            ));
            return;
        }
        let i = self.buckets.partition_point(|b| b.0 < le);
        if self.buckets.get(i).is_some_and(|b| b.0 == le) {
            return; // a duplicate sample
        }
        let below = i.checked_sub(1).and_then(|j| self.buckets.get(j));
        let above = self.buckets.get(i);
        if below.is_some_and(|b| count < b.1) || above.is_some_and(|b| count > b.1) {
            self.err = Some(format!("count is not cumulative: le={le}, count={count}"));
            return;
        }
        self.buckets.insert(i, (le, count));
    }

    /// The native histogram with custom buckets (schema -53) it stands for.
    fn convert(mut self) -> Result<FloatHistogram, String> {
        if let Some(e) = self.err {
            return Err(e);
        }
        let count = match (self.count, self.buckets.last()) {
            (Some(c), _) => c,
            (None, Some(b)) => b.1,
            (None, None) => return Err("count must be provided when no buckets are present".into()),
        };
        if self.buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
            self.buckets.push((f64::INFINITY, count));
        }
        if self.buckets.last().is_some_and(|b| b.1 != count) {
            return Err(format!("count mismatch: count={count}"));
        }
        let mut prev = 0.0;
        let mut deltas = Vec::with_capacity(self.buckets.len());
        for b in &self.buckets {
            deltas.push(b.1 - prev);
            prev = b.1;
        }
        let mut h = FloatHistogram {
            schema: -53,
            count,
            sum: self.sum,
            positive_spans: vec![Span::new(0, deltas.len() as u32)],
            positive_buckets: deltas,
            custom_values: self
                .buckets
                .iter()
                .map(|b| b.0)
                .filter(|le| *le != f64::INFINITY)
                .collect(),
            ..FloatHistogram::default()
        };
        h.compact(0);
        h.validate().map_err(|e| e.to_string())?;
        Ok(h)
    }
}

/// A converted series: its labels and histogram samples by time.
type NhcbSeries = (Labels, Vec<(i64, FloatHistogram)>);

/// `load_with_nhcb`: the classic histograms among the loaded float series
/// (`_bucket` with a numeric `le`, `_count`, `_sum`), converted per
/// timestamp into native histograms with custom buckets under the base name.
fn classic_to_nhcb(
    block: &[(Labels, Vec<Option<f64>>)],
    interval: i64,
) -> Result<Vec<NhcbSeries>, String> {
    let mut by_series: Vec<(Labels, BTreeMap<i64, ClassicHist>)> = Vec::new();
    for (labels, values) in block {
        let name = labels.metric_name();
        let (base, le) = if let Some(b) = name.strip_suffix("_bucket") {
            let Some(le) = labels.get("le").and_then(|v| parse_num(v).ok()) else {
                continue;
            };
            if le.is_nan() {
                continue;
            }
            (b, Some(le))
        } else if let Some(b) = name.strip_suffix("_sum") {
            (b, None)
        } else if let Some(b) = name.strip_suffix("_count") {
            (b, None)
        } else {
            continue;
        };
        let mut lb = labels.builder();
        lb.set("__name__", base);
        lb.del("le");
        let target = lb.build();
        let i = match by_series.iter().position(|(l, _)| *l == target) {
            Some(i) => i,
            None => {
                by_series.push((target, BTreeMap::new()));
                by_series.len() - 1
            }
        };
        let hists = &mut by_series[i].1;
        for (k, v) in values.iter().enumerate() {
            let Some(v) = *v else { continue };
            let h = hists.entry(k as i64 * interval).or_default();
            match le {
                Some(le) => h.set_bucket(le, v),
                None if name.ends_with("_sum") => h.sum = v,
                None if v < 0.0 => h.err = Some(format!("count must be non-negative: count={v}")),
                None => h.count = Some(v),
            }
        }
    }
    by_series
        .into_iter()
        .map(|(l, hists)| {
            let pts = hists
                .into_iter()
                .map(|(t, h)| h.convert().map(|h| (t, h)))
                .collect::<Result<Vec<_>, String>>()
                .map_err(|e| format!("{l}: {e}"))?;
            Ok((l, pts))
        })
        .collect()
}

impl Storage {
    fn new() -> Self {
        Storage {
            head: Head::default(),
            hist: Vec::new(),
            start_ts: false,
        }
    }

    fn load(&mut self, interval: i64, lines: &[String], nhcb: bool) -> Result<(), String> {
        type Items = (Vec<Option<f64>>, Vec<Option<FloatHistogram>>);
        let mut block: Vec<(Labels, Items)> = Vec::new();
        for l in lines {
            let first = l.split_whitespace().next().unwrap_or("");
            if first.ends_with("@st") {
                self.start_ts = true;
                continue;
            }
            let s = parse_series(l)?;
            if s.histogram {
                self.hist.push(s.labels.clone());
            }
            // A series listed twice in one block: later samples win.
            match block.iter_mut().find(|(l, _)| *l == s.labels) {
                Some((_, (vals, hists))) => {
                    if vals.len() < s.values.len() {
                        vals.resize(s.values.len(), None);
                        hists.resize(s.values.len(), None);
                    }
                    for (i, (v, h)) in s.values.iter().zip(&s.hists).enumerate() {
                        if v.is_some() || h.is_some() {
                            vals[i] = *v;
                            hists[i] = h.clone();
                        }
                    }
                }
                None => block.push((s.labels, (s.values, s.hists))),
            }
        }
        let converted = if nhcb {
            let floats: Vec<(Labels, Vec<Option<f64>>)> = block
                .iter()
                .map(|(l, (v, _))| (l.clone(), v.clone()))
                .collect();
            classic_to_nhcb(&floats, interval)?
        } else {
            Vec::new()
        };
        for (labels, (values, hists)) in block {
            let (r, _) = self.head.get_or_create(&labels);
            // Whether the newest loaded sample is a histogram (with float
            // counts): a `stale` after it is a histogram stale marker.
            let mut after_hist = false;
            for (i, (v, h)) in values.iter().zip(&hists).enumerate() {
                let t = i as i64 * interval;
                let res = match (v, h) {
                    (Some(v), _) if after_hist && v.to_bits() == STALE_NAN.to_bits() => {
                        self.head.append_histogram(r, t, &stale_marker(true))
                    }
                    (Some(v), _) => {
                        after_hist = false;
                        self.head.append(r, t, *v)
                    }
                    (None, Some(h)) => {
                        after_hist = true;
                        self.head
                            .append_histogram(r, t, &HistValue::Float(h.clone()))
                    }
                    (None, None) => Ok(()),
                };
                res.map_err(|e| format!("append {labels}: {e}"))?;
            }
        }
        for (labels, pts) in converted {
            self.hist.push(labels.clone());
            let (r, _) = self.head.get_or_create(&labels);
            for (t, h) in pts {
                self.head
                    .append_histogram(r, t, &HistValue::Float(h))
                    .map_err(|e| format!("append {labels}: {e}"))?;
            }
        }
        Ok(())
    }
}

impl Storage {
    /// Whether an `anchored` or `smoothed` selector of the query can read a
    /// series holding native histograms: those experimental modifiers are
    /// built for floats only (see EXPERIMENTAL_SKIPS).
    fn extended_selector_on_histograms(&self, e: &Expr) -> bool {
        // changes() and resets() over anchored windows are built.
        let mut built: Vec<*const parser::VectorSelector> = Vec::new();
        walk(e, &mut |n| {
            if let Expr::Call(c) = n {
                if matches!(c.func.name, "changes" | "resets") {
                    if let Some(Expr::MatrixSelector(m)) = c.args.first() {
                        built.push(&m.selector as *const _);
                    }
                }
            }
        });
        let mut found = false;
        walk(e, &mut |n| {
            let vs: &parser::VectorSelector = match n {
                Expr::VectorSelector(v) => v,
                Expr::MatrixSelector(m) => &m.selector,
                _ => return,
            };
            if (vs.anchored || vs.smoothed)
                && !built.contains(&(vs as *const parser::VectorSelector))
                && self.hist.iter().any(|l| {
                    vs.matchers
                        .iter()
                        .all(|m| m.matches(l.get(&m.name).unwrap_or("")))
                })
            {
                found = true;
            }
        });
        found
    }
}

/// Upstream features klaxon leaves out on purpose, each with its reason
/// (docs/compatibility.md lists them too).
const EXPERIMENTAL_SKIPS: &[&str] = &[
    "anchored/smoothed range selectors over native histograms (experimental \
     upstream behind promql-extended-range-selectors; klaxon builds them for floats, \
     and changes()/resets() over anchored histogram windows, only)",
];

fn run_eval(
    engine: &Engine,
    st: &Storage,
    expr_s: &str,
    range: Option<(i64, i64, i64)>,
    at: i64,
    exp: &Expect,
) -> Outcome {
    if st.start_ts {
        return Outcome::Skip("start timestamps (@st lines)".into());
    }
    let expr = match parser::parse(expr_s) {
        Ok(e) => e,
        Err(e) => {
            return match check_error(&e.to_string(), exp) {
                Ok(()) => Outcome::Pass,
                Err(m) => Outcome::Fail(format!("parse: {m}")),
            };
        }
    };
    if st.extended_selector_on_histograms(&expr) {
        return Outcome::Skip(EXPERIMENTAL_SKIPS[0].into());
    }
    let q = |e: &Expr, t: i64| -> Result<QueryResult, String> {
        engine
            .instant(&st.head, Query::Parsed(e, Some(expr_s)), t)
            .map_err(|e| e.message)
    };
    let qr = |e: &Expr, s: i64, en: i64, step: i64| -> Result<QueryResult, String> {
        engine
            .range(&st.head, Query::Parsed(e, Some(expr_s)), s, en, step)
            .map_err(|e| e.message)
    };
    let skip_unsupported = |r: &Result<QueryResult, String>| -> Option<Outcome> {
        match r {
            Err(e) => unsupported(e).map(Outcome::Skip),
            _ => None,
        }
    };
    if let Some((s, e, step)) = range {
        let r = qr(&expr, s, e, step);
        if let Some(o) = skip_unsupported(&r) {
            return o;
        }
        let res = match r {
            Err(err) => check_error(&err, exp),
            Ok(r) => {
                if exp.fail {
                    Err("expected an error, query succeeded".into())
                } else {
                    check_annotations(&r, exp).and_then(|_| match &r.value {
                        Value::Matrix(m) => check_matrix(m, exp, s, step),
                        _ => Err("range query did not return a matrix".into()),
                    })
                }
            }
        };
        return match res {
            Ok(()) => Outcome::Pass,
            Err(m) => Outcome::Fail(m),
        };
    }
    // Instant: the query itself, then @-pinned variants, each also in range mode.
    let mut runs: Vec<(Expr, i64)> = vec![(expr.clone(), at)];
    if !uses_time_fn(&expr) {
        let mut pinned = expr.clone();
        add_at(&mut pinned, at);
        let times: Vec<i64> = if at == 0 {
            vec![-1000, 0, 1000]
        } else {
            vec![-10 * at, 0, at / 5, at, 10 * at]
        };
        for t in times {
            runs.push((pinned.clone(), t));
        }
    }
    let range_check = !exp.ordered
        && exp.range_vector.is_none()
        && exp.string.is_none()
        && !["start()", "end()", "range()", "step()"]
            .iter()
            .any(|f| expr_s.contains(f));
    for (i, (e, t)) in runs.iter().enumerate() {
        let r = q(e, *t);
        if let Some(o) = skip_unsupported(&r) {
            return o;
        }
        let tag = if i == 0 {
            String::new()
        } else {
            format!(" [@{at} variant at {t}]")
        };
        if let Err(m) = check_instant(r, exp) {
            return Outcome::Fail(format!("{m}{tag}"));
        }
        if range_check {
            let r = qr(e, t - 60_000, t + 60_000, 60_000);
            if let Some(o) = skip_unsupported(&r) {
                return o;
            }
            if let Err(m) = check_range_at(r, exp, *t) {
                return Outcome::Fail(format!("{m}{tag} [range mode]"));
            }
        }
    }
    Outcome::Pass
}

#[derive(Default)]
struct Counts {
    passed: usize,
    failed: usize,
    skipped: usize,
}

fn run_file(
    path: &Path,
    engine: &Engine,
    skips: &mut BTreeMap<String, usize>,
    verbose: bool,
) -> Counts {
    let mut c = Counts::default();
    let name = path
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let src = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(e) => {
            println!("FAIL {name}: cannot read: {e}");
            c.failed += 1;
            return c;
        }
    };
    let mut st = Storage::new();
    for cmd in parse_script(&src) {
        match cmd {
            Cmd::Clear => st = Storage::new(),
            Cmd::Load {
                interval,
                lines,
                nhcb,
            } => {
                if let Err(e) = st.load(interval, &lines, nhcb) {
                    println!("FAIL {name}: load: {e}");
                    c.failed += 1;
                }
            }
            Cmd::Bad { line, err } => {
                println!("FAIL {name}:{line}: {err}");
                c.failed += 1;
            }
            Cmd::Eval {
                line,
                text,
                expr,
                range,
                at,
                exp,
            } => {
                let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    run_eval(engine, &st, &expr, range, at, &exp)
                }))
                .unwrap_or_else(|_| Outcome::Fail("PANIC".into()));
                match out {
                    Outcome::Pass => c.passed += 1,
                    Outcome::Skip(r) => {
                        c.skipped += 1;
                        *skips.entry(r).or_default() += 1;
                    }
                    Outcome::Fail(m) => {
                        c.failed += 1;
                        if verbose {
                            println!("FAIL {name}:{line}: {text}\n  {m}");
                        }
                    }
                }
            }
        }
    }
    c
}

fn test_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "test"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn promqltest() {
    let ci = common::is_ci();
    let shared = Path::new(SHARED);
    if !shared.is_dir() {
        assert!(!ci, "shared test data missing at {SHARED}");
        eprintln!("promqltest: {SHARED} missing, skipping (not CI)");
        return;
    }
    let mut dirs = vec![shared.to_path_buf(), PathBuf::from(OURS)];
    if let Ok(extra) = std::env::var("KLAXON_PROMQLTEST_DIRS") {
        dirs.extend(
            extra
                .split(':')
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
        );
    }
    let only = std::env::var("PROMQLTEST_FILE").ok();
    let verbose = std::env::var("PROMQLTEST_QUIET").is_err();
    let engine = Engine::new(EngineOptions {
        lookback_delta: Duration::from_secs(300),
        max_samples: 10_000,
        timeout: Duration::from_secs(100),
        default_subquery_step: Duration::from_secs(60),
        // As Prometheus' own test engine (docs: FORMAT.md, section 9).
        delayed_name_removal: true,
        // PROMQLTEST_PER_STEP=1 runs the scripts on the per-step walk
        // alone, the reference the series pass is compared against.
        series_pass: std::env::var_os("PROMQLTEST_PER_STEP").is_none(),
        ..EngineOptions::default()
    });
    let mut total = Counts::default();
    let mut skips = BTreeMap::new();
    let mut per_file = Vec::new();
    for d in &dirs {
        for f in test_files(d) {
            if let Some(o) = &only {
                if !f.to_string_lossy().contains(o.as_str()) {
                    continue;
                }
            }
            let c = run_file(&f, &engine, &mut skips, verbose);
            per_file.push(format!(
                "{}: {} passed, {} failed, {} skipped",
                f.display(),
                c.passed,
                c.failed,
                c.skipped
            ));
            total.passed += c.passed;
            total.failed += c.failed;
            total.skipped += c.skipped;
        }
    }
    for l in &per_file {
        println!("{l}");
    }
    for (r, n) in &skips {
        println!("  skipped {n}: {r}");
    }
    println!(
        "promqltest: {} passed, {} failed, {} skipped",
        total.passed, total.failed, total.skipped
    );
    if only.is_none() {
        let text = std::fs::read_to_string(BASELINE)
            .unwrap_or_else(|e| panic!("cannot read the baseline {BASELINE}: {e}"));
        let baseline: usize = text
            .trim()
            .parse()
            .unwrap_or_else(|e| panic!("baseline {BASELINE} is not a count ({text:?}): {e}"));
        assert_eq!(
            total.failed, 0,
            "promqltest cases failed (see FAIL lines above)"
        );
        assert!(
            total.passed >= baseline,
            "{} cases passed, below the baseline of {baseline}",
            total.passed
        );
    }
}

/// Every expression of the shared rule corpora evaluates (instant and range)
/// without panicking, over a head holding a few generic series.
#[test]
fn corpus_expressions_never_panic() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/corpora/rules");
    if !Path::new(root).is_dir() {
        assert!(!common::is_ci(), "rule corpus missing at {root}");
        return;
    }
    let mut exprs = Vec::new();
    let mut stack = vec![PathBuf::from(root)];
    let re = regex::Regex::new(r"(?m)^\s*expr:\s*(.+)$").expect("regex");
    while let Some(dir) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for p in rd.flatten().map(|e| e.path()) {
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(text) = std::fs::read_to_string(&p) {
                for c in re.captures_iter(&text) {
                    let e = c[1].trim().trim_matches(['\'', '"', '|', '>']).trim();
                    if !e.is_empty() {
                        exprs.push(e.to_string());
                    }
                }
            }
        }
    }
    let head = Head::default();
    for (i, l) in [
        Labels::from_pairs([("__name__", "up"), ("job", "a"), ("instance", "x")]),
        Labels::from_pairs([("__name__", "up"), ("job", "b"), ("instance", "y")]),
        Labels::from_pairs([("__name__", "x_bucket"), ("job", "a"), ("le", "1")]),
        Labels::from_pairs([("__name__", "x_bucket"), ("job", "a"), ("le", "+Inf")]),
    ]
    .iter()
    .enumerate()
    {
        let (r, _) = head.get_or_create(l);
        for k in 0..40 {
            head.append(r, k * 15_000, (k as f64) * (i as f64 + 1.0))
                .expect("append");
        }
    }
    let engine = Engine::new(EngineOptions::default());
    let mut parsed = 0;
    for e in &exprs {
        let Ok(expr) = parser::parse(e) else { continue };
        parsed += 1;
        let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _ = engine.instant(&head, &expr, 600_000);
            if matches!(
                expr.value_type(),
                parser::ValueType::Scalar | parser::ValueType::InstantVector
            ) {
                let _ = engine.range(&head, &expr, 0, 600_000, 60_000);
            }
        }));
        assert!(ok.is_ok(), "panic evaluating {e}");
    }
    println!("corpus: {parsed} of {} expressions evaluated", exprs.len());
    assert!(parsed > 100, "too few corpus expressions parsed: {parsed}");
}

/// The harness itself: cases that must not pass or be excused.
#[test]
fn harness_is_strict() {
    let vec0 = || {
        Ok(QueryResult {
            value: Value::Vector(Vec::new()),
            warnings: Vec::new(),
            infos: Vec::new(),
            stats: Default::default(),
        })
    };
    let want_string = Expect {
        string: Some("hello".into()),
        ..Expect::default()
    };
    assert!(
        check_instant(vec0(), &want_string).is_err(),
        "an empty vector must not satisfy `expect string`"
    );
    // A parse error is a failure, never a skip.
    let st = Storage::new();
    let engine = Engine::new(EngineOptions::default());
    match run_eval(
        &engine,
        &st,
        "m +* hist_unrelated",
        None,
        0,
        &Expect::default(),
    ) {
        Outcome::Fail(_) => {}
        Outcome::Pass => panic!("a parse error passed"),
        Outcome::Skip(r) => panic!("a parse error was skipped as {r:?}"),
    }
    assert!(unsupported("unsupported: function integral").is_none());
}
