//! Rule group evaluation: the alert lifecycle, `ALERTS`/`ALERTS_FOR_STATE`,
//! recording rules, limits and templates, checked by hand-written cases and
//! against promtool unit-test files whose verdicts promtool 2.42 produced.

use crate::common;

use klaxon::model::{is_stale_nan, Labels, STALE_NAN};
use klaxon::promql::{Engine, Value as QValue};
use klaxon::rules::alert::{AlertState, RESOLVED_RETENTION_MS};
use klaxon::rules::file::{parse_rule_file, Dialect, RuleGroup};
use klaxon::rules::group::{eval_timestamp, group_hash, GroupState, RuleError, RuleHealth};
use klaxon::rules::unittest::{load_series, parse_series};
use klaxon::tsdb::Head;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

const MIN: i64 = 60_000;

// ---------------------------------------------------------------- helpers

fn groups_from(yaml: &str) -> Vec<RuleGroup> {
    parse_rule_file("test.yml", yaml.as_bytes(), Dialect::Prometheus3)
        .unwrap_or_else(|e| panic!("rule file: {e}"))
        .groups
}

fn group_state(yaml: &str) -> GroupState {
    let g = groups_from(yaml).into_iter().next().expect("one group");
    GroupState::new("test.yml", g, Duration::from_secs(60), "http://x")
}

fn series_labels(s: &str) -> Labels {
    parse_series(s).unwrap_or_else(|e| panic!("series {s}: {e}"))
}

fn load(head: &Head, series: &str, values: &str, step: i64) {
    load_series(head, series, values, step).unwrap_or_else(|e| panic!("input {series}: {e}"));
}

/// Instant query result as `labels display -> value`.
fn query(head: &Head, q: &str, t: i64) -> BTreeMap<String, f64> {
    let r = Engine::default().instant(head, q, t).expect("query");
    match r.value {
        QValue::Vector(v) => v
            .into_iter()
            .map(|s| {
                let mut l = (*s.labels).clone();
                if s.drop_name {
                    let mut b = l.builder();
                    b.del("__name__");
                    l = b.build();
                }
                (l.to_string(), s.value)
            })
            .collect(),
        other => panic!("not a vector: {other:?}"),
    }
}

/// The raw samples of one series in `[mint, maxt]`.
fn raw(head: &Head, series: &str, mint: i64, maxt: i64) -> Vec<(i64, f64)> {
    let l = series_labels(series);
    let ms: Vec<_> = l
        .iter()
        .map(|x| klaxon::model::Matcher::new(klaxon::model::MatchType::Equal, &x.name, &x.value))
        .collect::<Result<_, _>>()
        .expect("matchers");
    let sel = head.select(&ms, mint, maxt);
    sel.into_iter()
        .find(|s| s.labels == l)
        .map(|s| s.samples)
        .unwrap_or_default()
}

fn eval(gs: &mut GroupState, head: &Head, t: i64) -> klaxon::rules::group::EvalReport {
    gs.eval_group(head, &Engine::default(), t, &Labels::empty())
}

// ------------------------------------------------------- alert lifecycle

const DOWN: &str = r#"
groups:
  - name: g
    rules:
      - alert: Down
        expr: up == 0
        for: 3m
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.instance }} down, up={{ $value }}"
"#;

#[test]
fn pending_then_firing_after_for_then_resolved() {
    let head = Head::default();
    // down at 1m..5m, up again from 6m
    load(&head, r#"up{instance="a"}"#, "1 0x4 1x10", MIN);
    let mut gs = group_state(DOWN);
    let mut states = Vec::new();
    for i in 0..=8 {
        let rep = eval(&mut gs, &head, i * MIN);
        assert!(rep.errors.is_empty(), "{:?}", rep.errors);
        let a = gs.rules[0].alerts.alerts();
        states.push(a.first().map(|a| a.state));
    }
    use AlertState::*;
    assert_eq!(
        states,
        vec![
            None,
            Some(Pending),
            Some(Pending),
            Some(Pending),
            Some(Firing), // 4m - 1m >= 3m
            Some(Firing),
            Some(Inactive), // resolved at 6m, kept for sending
            Some(Inactive),
            Some(Inactive),
        ]
    );
    let a = gs.rules[0].alerts.alerts()[0].clone();
    assert_eq!(a.active_at, MIN);
    assert_eq!(a.fired_at, Some(4 * MIN));
    assert_eq!(a.resolved_at, Some(6 * MIN));
    assert_eq!(
        a.labels,
        Labels::from_pairs([
            ("alertname", "Down"),
            ("instance", "a"),
            ("severity", "page")
        ])
    );
    assert_eq!(a.annotations["summary"], "a down, up=0");
    assert!(gs.active_alerts("Down").is_empty());
}

#[test]
fn for_zero_fires_immediately_and_pending_that_vanishes_is_deleted() {
    let head = Head::default();
    load(&head, r#"up{instance="a"}"#, "0 1 1", MIN);
    load(&head, r#"up{instance="b"}"#, "1 0 1", MIN);
    let mut gs = group_state(
        r#"
groups:
  - name: g
    rules:
      - alert: Now
        expr: up{instance="a"} == 0
      - alert: Later
        expr: up{instance="b"} == 0
        for: 5m
"#,
    );
    eval(&mut gs, &head, 0);
    assert_eq!(gs.rules[0].alerts.alerts()[0].state, AlertState::Firing);
    eval(&mut gs, &head, MIN);
    assert_eq!(gs.rules[1].alerts.alerts()[0].state, AlertState::Pending);
    eval(&mut gs, &head, 2 * MIN);
    // A pending alert that goes away is forgotten, never "resolved".
    assert!(gs.rules[1].alerts.alerts().is_empty());
}

#[test]
fn alerts_series_values_and_stale_markers() {
    let head = Head::default();
    load(&head, r#"up{instance="a"}"#, "1 0x4 1x10", MIN);
    let mut gs = group_state(DOWN);
    for i in 0..=7 {
        eval(&mut gs, &head, i * MIN);
    }
    let pending =
        r#"ALERTS{alertname="Down", alertstate="pending", instance="a", severity="page"}"#;
    let firing = r#"ALERTS{alertname="Down", alertstate="firing", instance="a", severity="page"}"#;
    let for_state = r#"ALERTS_FOR_STATE{alertname="Down", instance="a", severity="page"}"#;
    let p = raw(&head, pending, 0, 10 * MIN);
    assert_eq!(&p[..3], &[(MIN, 1.0), (2 * MIN, 1.0), (3 * MIN, 1.0)]);
    // stale marker when it turned firing
    assert_eq!(p.len(), 4);
    assert_eq!(p[3].0, 4 * MIN);
    assert!(is_stale_nan(p[3].1));
    let f = raw(&head, firing, 0, 10 * MIN);
    assert_eq!(&f[..2], &[(4 * MIN, 1.0), (5 * MIN, 1.0)]);
    assert_eq!(f[2].0, 6 * MIN);
    assert!(is_stale_nan(f[2].1), "stale at resolution: {f:?}");
    assert_eq!(f.len(), 3, "resolved alerts write no ALERTS samples");
    let fs = raw(&head, for_state, 0, 10 * MIN);
    assert_eq!(fs.len(), 6);
    assert!(
        fs[..5].iter().all(|&(_, v)| v == 60.0),
        "activeAt seconds: {fs:?}"
    );
    assert!(is_stale_nan(fs[5].1));
    // Queries at 7m see nothing although 5m is within the lookback.
    assert!(query(&head, "ALERTS", 7 * MIN).is_empty());
    assert!(query(&head, "ALERTS_FOR_STATE", 7 * MIN).is_empty());
}

#[test]
fn keep_firing_for_holds_alert_with_last_value() {
    let head = Head::default();
    // true at 0..2m (value 5), then gone
    load(&head, r#"errs{job="x"}"#, "5 5 5 0x10", MIN);
    let mut gs = group_state(
        r#"
groups:
  - name: g
    rules:
      - alert: Errs
        expr: errs > 0
        keep_firing_for: 3m
        annotations:
          v: "{{ $value }}"
"#,
    );
    let mut states = Vec::new();
    for i in 0..=7 {
        eval(&mut gs, &head, i * MIN);
        let a = gs.rules[0].alerts.alerts()[0].clone();
        states.push((a.state, a.keep_firing_since, a.annotations["v"].clone()));
    }
    use AlertState::*;
    // first miss at 3m; kept while t - 3m < 3m, i.e. 3m, 4m, 5m
    for (i, (s, since, v)) in states.iter().enumerate() {
        let i = i as i64;
        let want = if i <= 5 { Firing } else { Inactive };
        assert_eq!(*s, want, "at {i}m");
        assert_eq!(v, "5");
        // set at the first miss and never reset while the alert stays away
        if i >= 3 {
            assert_eq!(*since, Some(3 * MIN), "at {i}m");
        } else {
            assert_eq!(*since, None, "at {i}m");
        }
    }
    assert_eq!(gs.rules[0].alerts.alerts()[0].resolved_at, Some(6 * MIN));
    // ALERTS keeps reporting firing during keep_firing_for
    let firing = raw(
        &head,
        r#"ALERTS{alertname="Errs", alertstate="firing", job="x"}"#,
        0,
        10 * MIN,
    );
    assert_eq!(firing.iter().filter(|(_, v)| *v == 1.0).count(), 6);
}

#[test]
fn resolved_alerts_retained_fifteen_minutes_and_sent() {
    let head = Head::default();
    load(&head, r#"up{instance="a"}"#, "0 0 1x40", MIN);
    let mut gs = group_state(
        r#"
groups:
  - name: g
    interval: 2m
    rules:
      - alert: Down
        expr: up == 0
"#,
    );
    let rd = Duration::from_secs(60);
    eval(&mut gs, &head, 0);
    let sent = gs.alerts_to_send(0, rd);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].starts_at, Some(0));
    // 4 × max(resend delay 1m, interval 2m)
    assert_eq!(sent[0].ends_at, 8 * MIN);
    eval(&mut gs, &head, MIN);
    // sent at 0, resend only after 1m has passed strictly
    assert!(gs.alerts_to_send(MIN, rd).is_empty());
    eval(&mut gs, &head, MIN + 1);
    assert_eq!(gs.alerts_to_send(MIN + 1, rd).len(), 1);
    // resolved at 2m: sent at once with endsAt = resolvedAt
    eval(&mut gs, &head, 2 * MIN);
    let sent = gs.alerts_to_send(2 * MIN, rd);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].ends_at, 2 * MIN);
    let mut t = 3 * MIN;
    while t <= 2 * MIN + RESOLVED_RETENTION_MS {
        eval(&mut gs, &head, t);
        assert_eq!(gs.rules[0].alerts.alerts().len(), 1, "kept at {t}");
        t += MIN;
    }
    eval(&mut gs, &head, t);
    assert!(
        gs.rules[0].alerts.alerts().is_empty(),
        "dropped after retention"
    );
}

#[test]
fn resolved_alert_that_returns_starts_over_pending() {
    let head = Head::default();
    load(&head, r#"up{instance="a"}"#, "0 0 0 1 0 0 0", MIN);
    let mut gs = group_state(DOWN.replace("3m", "2m").as_str());
    for i in 0..=4 {
        eval(&mut gs, &head, i * MIN);
    }
    let a = gs.rules[0].alerts.alerts()[0].clone();
    assert_eq!(a.state, AlertState::Pending);
    assert_eq!(a.active_at, 4 * MIN);
    assert_eq!(a.resolved_at, None);
}

// ---------------------------------------------------------- recording rules

#[test]
fn recording_rule_output_visible_to_later_rules_and_stale_when_gone() {
    let head = Head::default();
    load(&head, r#"x{job="a"}"#, "1 2 3", MIN);
    load(&head, r#"x{job="b"}"#, "10 20", MIN);
    let mut gs = group_state(
        r#"
groups:
  - name: g
    rules:
      - record: job:x:double
        expr: x * 2
        labels:
          extra: "1"
      - record: job:x:sum
        expr: sum(job:x:double)
      - record: constant
        expr: "42"
"#,
    );
    let rep = eval(&mut gs, &head, 0);
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    assert_eq!(
        query(&head, "job:x:sum", 0),
        BTreeMap::from([("job:x:sum".to_string(), 22.0)])
    );
    assert_eq!(
        query(&head, "job:x:double", 0),
        BTreeMap::from([
            (r#"job:x:double{extra="1", job="a"}"#.to_string(), 2.0),
            (r#"job:x:double{extra="1", job="b"}"#.to_string(), 20.0),
        ])
    );
    assert_eq!(
        query(&head, "constant", 0),
        BTreeMap::from([("constant".to_string(), 42.0)])
    );
    eval(&mut gs, &head, MIN);
    eval(&mut gs, &head, 2 * MIN); // x{job="b"} has no sample at 2m but lookback still finds 1m
                                   // x{job="b"} goes stale by lookback only after 6m; make it stale now
    let rb = head.get_or_create(&series_labels(r#"x{job="b"}"#)).0;
    head.append(rb, 3 * MIN - 1, STALE_NAN).expect("stale");
    eval(&mut gs, &head, 3 * MIN);
    let b = raw(&head, r#"job:x:double{extra="1", job="b"}"#, 0, 10 * MIN);
    assert_eq!(b.len(), 4, "{b:?}");
    assert_eq!(b[3].0, 3 * MIN);
    assert!(is_stale_nan(b[3].1));
    assert_eq!(
        query(&head, "job:x:double", 3 * MIN + 1),
        BTreeMap::from([(r#"job:x:double{extra="1", job="a"}"#.to_string(), 6.0)])
    );
}

#[test]
fn duplicate_labelset_after_rule_labels_fails_the_rule_only() {
    let head = Head::default();
    load(&head, r#"x{job="a"}"#, "1", MIN);
    load(&head, r#"x{job="b"}"#, "2", MIN);
    let mut gs = group_state(
        r#"
groups:
  - name: g
    rules:
      - record: r
        expr: x
        labels:
          job: same
      - record: ok
        expr: sum(x)
"#,
    );
    let rep = eval(&mut gs, &head, 0);
    assert_eq!(rep.errors.len(), 1);
    assert_eq!(
        rep.errors[0].2.to_string(),
        "vector contains metrics with the same labelset after applying rule labels"
    );
    assert_eq!(gs.rules[0].health, RuleHealth::Err);
    assert_eq!(gs.rules[1].health, RuleHealth::Ok);
    assert!(query(&head, "r", 0).is_empty());
    assert_eq!(query(&head, "ok", 0).len(), 1);
}

#[test]
fn duplicate_alert_labelset_is_an_error() {
    let head = Head::default();
    load(&head, r#"x{job="a"}"#, "1", MIN);
    load(&head, r#"y{job="a"}"#, "1", MIN);
    let mut gs = group_state(
        r#"
groups:
  - name: g
    rules:
      - alert: A
        expr: '{job="a"}'
"#,
    );
    let rep = eval(&mut gs, &head, 0);
    assert_eq!(
        rep.errors[0].2.to_string(),
        "vector contains metrics with the same labelset after applying alert labels"
    );
}

// ------------------------------------------------------------------- limit

#[test]
fn limit_exceeded_fails_and_keeps_nothing() {
    let head = Head::default();
    for i in 0..3 {
        load(&head, &format!(r#"up{{instance="{i}"}}"#), "0x5", MIN);
    }
    let mut gs = group_state(
        r#"
groups:
  - name: g
    limit: 2
    rules:
      - alert: Down
        expr: up == 0
      - record: r
        expr: up
      - alert: Small
        expr: up{instance="0"} == 0
"#,
    );
    let rep = eval(&mut gs, &head, 0);
    let msgs: Vec<String> = rep.errors.iter().map(|e| e.2.to_string()).collect();
    assert_eq!(
        msgs,
        vec![
            "exceeded limit of 2 with 3 alerts".to_string(),
            "exceeded limit of 2 with 3 series".to_string()
        ]
    );
    assert!(matches!(rep.errors[0].2, RuleError::Alert(_)));
    assert!(gs.rules[0].alerts.alerts().is_empty());
    assert!(query(&head, "ALERTS{alertname=\"Down\"}", 0).is_empty());
    assert!(query(&head, "r", 0).is_empty());
    assert_eq!(gs.rules[2].alerts.alerts().len(), 1);
    assert_eq!(gs.rules[2].health, RuleHealth::Ok);
}

// --------------------------------------------------------------- templates

#[test]
fn templates_see_labels_value_external_labels_and_query() {
    let head = Head::default();
    load(&head, r#"load{host="h1"}"#, "0.953", MIN);
    load(&head, r#"cores{host="h1"}"#, "8", MIN);
    let mut gs = group_state(
        r#"
groups:
  - name: g
    rules:
      - alert: Hot
        expr: load > 0.5
        labels:
          team: '{{ $externalLabels.team }}'
          empty: '{{ $labels.nothing }}'
        annotations:
          summary: '{{ $labels.host }} at {{ $value | humanizePercentage }} in {{ $externalLabels.dc }}'
          cores: '{{ with query "cores" }}{{ . | first | value }}{{ end }}'
          url: '{{ $externalURL }}'
          bad: '{{ "abc" | humanize }}'
"#,
    );
    let ext = Labels::from_pairs([("team", "ops"), ("dc", "fra")]);
    let rep = gs.eval_group(&head, &Engine::default(), 0, &ext);
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    let a = gs.rules[0].alerts.alerts()[0].clone();
    assert_eq!(
        a.labels,
        Labels::from_pairs([("alertname", "Hot"), ("host", "h1"), ("team", "ops")])
    );
    assert_eq!(a.annotations["summary"], "h1 at 95.3% in fra");
    assert_eq!(a.annotations["cores"], "8");
    assert_eq!(a.annotations["url"], "http://x");
    assert!(
        a.annotations["bad"].starts_with("<error expanding template: error executing template __alert_Hot: template: __alert_Hot:1:")
            && a.annotations["bad"].contains("error calling humanize"),
        "{}",
        a.annotations["bad"]
    );
    // ALERTS starts from the unexpanded rule labels: `empty` expanded to
    // nothing, so the raw template text stays (Prometheus does the same).
    let alerts = query(&head, "ALERTS", 0);
    assert_eq!(alerts.len(), 1);
    let k = alerts.keys().next().unwrap().clone();
    assert!(k.contains(r#"empty="{{ $labels.nothing }}""#), "{k}");
    assert!(k.contains(r#"team="ops""#), "{k}");
}

// ------------------------------------------------------------- alignment

#[test]
fn eval_timestamp_is_aligned_to_the_group_offset() {
    let iv = Duration::from_secs(60);
    let ivn = 60_000_000_000i64;
    let offset = (group_hash("f.yml", "g") % ivn as u64) as i64;
    let now = 1_700_000_123_456_789_000i64;
    let t = eval_timestamp("f.yml", "g", iv, now);
    assert!(t <= now && now - t < ivn, "{t} vs {now}");
    assert_eq!((t - offset).rem_euclid(ivn), 0);
    // every instant of the same slot maps to the same timestamp
    assert_eq!(eval_timestamp("f.yml", "g", iv, t), t);
    assert_eq!(eval_timestamp("f.yml", "g", iv, t + ivn - 1), t);
    assert_eq!(eval_timestamp("f.yml", "g", iv, t + ivn), t + ivn);
    // a different group lands elsewhere in the interval
    assert_ne!(group_hash("f.yml", "g"), group_hash("f.yml", "h"));
    // hash of {file, name} like Prometheus' labels hash
    assert_eq!(
        group_hash("f.yml", "g"),
        Labels::from_pairs([("file", "f.yml"), ("name", "g")]).hash64()
    );
}

// ----------------------------------------------------- promtool oracle

fn dur(s: &str) -> i64 {
    klaxon::model::gofmt::parse_duration(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

type AlertSet = klaxon::rules::unittest::AlertSet;
type SampleSet = klaxon::rules::unittest::SampleSet;

/// What one test group produced: per alert test (alertname, eval_time ms)
/// expected and got, and the same per expression test.
struct Outcome {
    name: String,
    alerts: Vec<(String, i64, AlertSet, AlertSet)>,
    exprs: Vec<(String, i64, SampleSet, SampleSet)>,
}

/// Runs one unit-test file through the library's promtool-compatible runner
/// (which `klaxon test rules` uses) and returns every comparison it made.
fn run_unit_file(dir: &Path, file: &str) -> Vec<Outcome> {
    let (outcomes, _) = klaxon::rules::unittest::run_file(&dir.join(file));
    assert!(!outcomes.is_empty(), "{file}: no test group ran");
    outcomes
        .into_iter()
        .map(|g| Outcome {
            name: g.name,
            alerts: g
                .alerts
                .into_iter()
                .map(|a| (a.alertname, a.eval_time, a.exp, a.got))
                .collect(),
            exprs: g
                .exprs
                .into_iter()
                .map(|e| (e.expr, e.eval_time, e.exp, e.got))
                .collect(),
        })
        .collect()
}

/// Checks every alert and expression test of `case` against promtool's
/// expectations. `deviations` lists (alertname, eval_time ms) cases where we
/// knowingly differ from promtool 2.42; they must still differ, so the list
/// cannot go stale silently.
fn assert_all_pass(case: &str, deviations: &[(&str, i64)]) {
    let Some(root) = common::data_dir("corpora/unittests") else {
        return;
    };
    let verdict = std::fs::read_to_string(root.join(format!("expected-output/{case}--test.txt")))
        .expect("expected output");
    assert!(verdict.contains("  SUCCESS"), "promtool passed {case}");
    let outcomes = run_unit_file(&root.join(case), "test.yml");
    let mut checked = 0;
    for oc in outcomes {
        for (name, t, exp, got) in &oc.alerts {
            if deviations.contains(&(name.as_str(), *t)) {
                assert_ne!(got, exp, "{case}: deviation {name}@{t} no longer differs");
            } else {
                assert_eq!(got, exp, "{case} / {}: alert {name} at {t}ms", oc.name);
            }
            checked += 1;
        }
        for (expr, t, exp, got) in &oc.exprs {
            assert_eq!(got, exp, "{case} / {}: expr {expr} at {t}ms", oc.name);
            checked += 1;
        }
    }
    assert!(checked > 0, "{case}: nothing checked");
}

#[test]
fn promtool_01_alert_for() {
    // promtool 2.42 evaluates `changes(up[10m])` over the closed window
    // [t-10m, t]; our engine follows Prometheus 3.x (left-open), so the
    // flapping condition is last true at 12m instead of 13m and
    // keep_firing_for ends one evaluation earlier (resolved at 16m).
    assert_all_pass("01-alert-for", &[("JobFlapping", 16 * MIN)]);
}

#[test]
fn left_open_window_explains_the_01_deviation() {
    let head = Head::default();
    load(
        &head,
        r#"up{job="web", instance="w1:80"}"#,
        "1 0 1 0 1 0 1 1x20",
        MIN,
    );
    // 2.42 would count 3 changes here (closed window includes 3m).
    assert_eq!(
        query(&head, "changes(up[10m])", 13 * MIN),
        BTreeMap::from([(r#"{instance="w1:80", job="web"}"#.to_string(), 2.0)])
    );
    assert_eq!(
        query(&head, "changes(up[10m])", 12 * MIN),
        BTreeMap::from([(r#"{instance="w1:80", job="web"}"#.to_string(), 3.0)])
    );
}

#[test]
fn promtool_02_recording_rules() {
    assert_all_pass("02-recording-rules", &[]);
}

#[test]
fn promtool_03_annotation_templates() {
    assert_all_pass("03-annotation-templates", &[]);
}

#[test]
fn promtool_04_external_labels() {
    assert_all_pass("04-external-labels", &[]);
}

/// One failure block of promtool's output: the test (alert name or
/// expression, eval time) and what promtool got.
#[derive(Debug)]
enum Failure {
    Alert(String, i64, AlertSet),
    Expr(String, i64, SampleSet),
}

/// `{a="b", c="d"}` as promtool prints label sets; `{}` is empty.
fn printed_labels(s: &str) -> Labels {
    if s.trim() == "{}" {
        Labels::empty()
    } else {
        series_labels(s.trim())
    }
}

/// Splits `{..} v, {..} v` (promtool's sample list) at top-level braces.
fn printed_samples(s: &str) -> SampleSet {
    let mut out = Vec::new();
    let mut rest = s.trim();
    while let Some(open) = rest.find('{') {
        let b = rest.as_bytes();
        let (mut i, mut in_q) = (open, false);
        while i < b.len() {
            match b[i] {
                b'\\' if in_q => i += 1,
                b'"' => in_q = !in_q,
                b'}' if !in_q => break,
                _ => {}
            }
            i += 1;
        }
        let labels = printed_labels(&rest[open..=i]);
        let after = &rest[i + 1..];
        let end = after.find(',').unwrap_or(after.len());
        let v: f64 = after[..end].trim().parse().expect("printed value");
        out.push((labels, v, String::new()));
        rest = &after[end..];
    }
    out
}

fn parse_failures(text: &str) -> Vec<Failure> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i].trim();
        if let Some(rest) = l.strip_prefix("alertname: ") {
            let (name, rest) = rest.split_once(", time: ").expect("time");
            let t = dur(rest.trim().trim_end_matches(','));
            // find the got block
            while !lines[i].trim().starts_with("got:[") {
                i += 1;
            }
            let mut got = Vec::new();
            if lines[i].trim() != "got:[]" {
                i += 1;
                while lines[i].trim() != "]" {
                    if let Some(lb) = lines[i].trim().strip_prefix("Labels:") {
                        let ann = lines[i + 1]
                            .trim()
                            .strip_prefix("Annotations:")
                            .expect("annotations line");
                        let ann: BTreeMap<String, String> = printed_labels(ann)
                            .iter()
                            .map(|l| (l.name.clone(), l.value.clone()))
                            .collect();
                        got.push((printed_labels(lb), ann));
                        i += 1;
                    }
                    i += 1;
                }
            }
            got.sort_by(|a, b| a.0.cmp(&b.0));
            out.push(Failure::Alert(name.to_string(), t, got));
        } else if let Some(rest) = l.strip_prefix("expr: ") {
            let (expr, rest) = rest.rsplit_once(", time: ").expect("time");
            let expr: String = serde_json::from_str(expr).expect("quoted expr");
            let t = dur(rest.trim().trim_end_matches(','));
            let got_line = lines[i + 2].trim().strip_prefix("got:").expect("got line");
            let mut got = printed_samples(got_line);
            got.sort_by(|a, b| a.0.cmp(&b.0));
            out.push(Failure::Expr(expr, t, got));
        }
        i += 1;
    }
    out
}

/// An intentionally failing file: every test promtool reported as failed
/// must fail for us with exactly promtool's `got`, and every other test
/// must pass.
#[test]
fn promtool_05_failures_match_promtool_got() {
    let Some(root) = common::data_dir("corpora/unittests") else {
        return;
    };
    let text =
        std::fs::read_to_string(root.join("expected-output/05-intentionally-failing--test.txt"))
            .expect("expected output");
    let failures = parse_failures(&text);
    assert_eq!(failures.len(), 3, "{failures:?}");
    let outcomes = run_unit_file(&root.join("05-intentionally-failing"), "test.yml");
    let mut matched = 0;
    for oc in &outcomes {
        for (name, t, exp, got) in &oc.alerts {
            let pf = failures.iter().find_map(|f| match f {
                Failure::Alert(n, ft, g) if n == name && ft == t => Some(g),
                _ => None,
            });
            match pf {
                Some(g) => {
                    assert_eq!(got, g, "{}: alert {name}@{t}", oc.name);
                    assert_ne!(got, exp);
                    matched += 1;
                }
                None => assert_eq!(got, exp, "{}: alert {name}@{t}", oc.name),
            }
        }
        for (expr, t, exp, got) in &oc.exprs {
            let pf = failures.iter().find_map(|f| match f {
                Failure::Expr(e, ft, g) if e == expr && ft == t => Some(g),
                _ => None,
            });
            // the passing group has the same expression and time: a
            // promtool failure only applies where expectations differ
            match pf {
                Some(g) if got != exp => {
                    assert_eq!(got, g, "{}: expr {expr}@{t}", oc.name);
                    matched += 1;
                }
                _ => assert_eq!(got, exp, "{}: expr {expr}@{t}", oc.name),
            }
        }
    }
    assert_eq!(matched, failures.len());
}

#[test]
fn query_offset_and_group_labels() {
    let head = Head::default();
    load(&head, r#"x{job="a"}"#, "1 2 3 4", MIN);
    let mut gs = group_state(
        r#"
groups:
  - name: g
    query_offset: 1m
    labels:
      team: core
      env: prod
    rules:
      - record: r
        expr: x
        labels:
          env: dev
      - alert: A
        expr: x > 0
"#,
    );
    let rep = eval(&mut gs, &head, 3 * MIN);
    assert!(rep.errors.is_empty(), "{:?}", rep.errors);
    // queried and written at t - offset: x at 2m is 3
    assert_eq!(
        raw(&head, r#"r{env="dev", job="a", team="core"}"#, 0, 10 * MIN),
        vec![(2 * MIN, 3.0)]
    );
    let a = gs.rules[1].alerts.alerts()[0].clone();
    // the alert itself lives at the evaluation time
    assert_eq!(a.active_at, 3 * MIN);
    assert_eq!(a.labels.get("team"), Some("core"));
    assert_eq!(a.labels.get("env"), Some("prod"));
    assert_eq!(
        raw(
            &head,
            r#"ALERTS{alertname="A", alertstate="firing", env="prod", job="a", team="core"}"#,
            0,
            10 * MIN
        ),
        vec![(2 * MIN, 1.0)]
    );
}
