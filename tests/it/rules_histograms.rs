//! Rules over native histograms: recording rules that read and produce
//! histograms, and `klaxon test rules` with Prometheus' histogram series
//! notation in `input_series` and `exp_samples` (`histogram:`), as
//! Prometheus 3's promtool takes them (promtool 2.42 rejects both).

use klaxon::model::histogram::notation::parse_histogram;
use klaxon::model::Labels;
use klaxon::promql::{Engine, Value as QValue};
use klaxon::rules::file::{parse_rule_file, Dialect};
use klaxon::rules::group::GroupState;
use klaxon::rules::unittest::{load_series, test_rule_files};
use klaxon::tsdb::Head;
use std::time::Duration;

const MIN: i64 = 60_000;

const RULES: &str = r#"groups:
- name: hist
  rules:
  - record: job:h:sum
    expr: sum by (job) (h)
  - record: job:h:count
    expr: histogram_count(job:h:sum)
  - record: job:h:rate2m
    expr: sum by (job) (rate(h[2m]))
"#;

fn load_input(head: &Head) {
    for (series, values) in [
        (
            r#"h{job="a", i="1"}"#,
            "{{schema:0 sum:5 count:4 buckets:[1 2 1]}}+{{schema:0 sum:1 count:1 buckets:[0 1]}}x3",
        ),
        (
            r#"h{job="a", i="2"}"#,
            "{{schema:0 sum:1 count:1 buckets:[1]}}x3",
        ),
        (r#"h{job="b", i="1"}"#, "1 2 3 4"),
    ] {
        load_series(head, series, values, MIN).unwrap_or_else(|e| panic!("{series}: {e}"));
    }
}

/// `query` at `t` as (labels, float, histogram test expression).
fn query(head: &Head, q: &str, t: i64) -> Vec<(Labels, f64, Option<String>)> {
    let r = Engine::default().instant(head, q, t).expect("query");
    let QValue::Vector(v) = r.value else {
        panic!("{q}: not a vector")
    };
    let mut out: Vec<_> = v
        .into_iter()
        .map(|s| {
            let h = s.h.as_ref().map(|h| {
                let mut h = (**h).clone();
                // Compared without the hint the head's chunks add.
                h.counter_reset_hint = Default::default();
                h.test_expression()
            });
            ((*s.labels).clone(), s.value, h)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn expr_of(s: &str) -> String {
    parse_histogram(s)
        .expect("notation")
        .histogram
        .test_expression()
}

#[test]
fn recording_rules_read_and_write_native_histograms() {
    let head = Head::default();
    load_input(&head);
    let g = parse_rule_file("r.yml", RULES.as_bytes(), Dialect::Prometheus3)
        .expect("rules")
        .groups
        .remove(0);
    let mut gs = GroupState::new("r.yml", g, Duration::from_secs(60), "http://x");
    for t in [0, MIN, 2 * MIN] {
        let rep = gs.eval_group(&head, &Engine::default(), t, &Labels::empty());
        assert!(rep.errors.is_empty(), "at {t}: {:?}", rep.errors);
    }
    // The sum is stored as a histogram, not as 0.
    let sum = query(&head, "job:h:sum", 2 * MIN);
    assert_eq!(sum.len(), 2, "{sum:?}");
    // job b holds floats: its sum stays a float.
    assert_eq!((sum[1].1, sum[1].2.is_none()), (3.0, true), "{sum:?}");
    assert_eq!(
        sum[0].0,
        Labels::from_pairs([("__name__", "job:h:sum"), ("job", "a")])
    );
    assert_eq!(
        sum[0].2.as_deref(),
        Some(expr_of("{{schema:0 sum:8 count:7 buckets:[2 4 1]}}").as_str())
    );
    // A later rule of the group reads it back.
    let count = query(&head, "job:h:count", 2 * MIN);
    assert_eq!(count.len(), 1, "{count:?}");
    assert_eq!((count[0].1, count[0].2.is_none()), (7.0, true));
    // rate over histograms: one observation a minute, extrapolated to the
    // window start (both series' rates summed; the second one is 0).
    let rate = query(&head, "job:h:rate2m", 2 * MIN);
    assert_eq!(rate.len(), 2, "{rate:?}");
    let got = rate[0].2.clone().expect("rate is a histogram");
    assert!(got.contains("count:0.016666"), "{got}");
}

/// Writes `text` as `dir/name` and runs it as `klaxon test rules` does:
/// the exit code and stdout followed by stderr.
fn run_test_file(dir: &std::path::Path, name: &str, text: &str) -> (i32, String) {
    std::fs::write(dir.join(name), text).expect("write test file");
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let code = test_rule_files(&[dir.join(name)], &mut out, &mut err);
    let text = String::from_utf8_lossy(&out).to_string() + &String::from_utf8_lossy(&err);
    (code, text)
}

#[test]
fn unit_tests_take_histogram_notation() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("rules.yml"), RULES).expect("write rules");
    let test = r#"rule_files: [rules.yml]
evaluation_interval: 1m
tests:
- interval: 1m
  input_series:
  - series: 'h{job="a", i="1"}'
    values: '{{schema:0 sum:5 count:4 buckets:[1 2 1]}}+{{schema:0 sum:1 count:1 buckets:[0 1]}}x3'
  - series: 'h{job="a", i="2"}'
    values: '{{schema:0 sum:1 count:1 buckets:[1]}}x3'
  promql_expr_test:
  - expr: job:h:count
    eval_time: 2m
    exp_samples:
    - labels: 'job:h:count{job="a"}'
      value: 7
  - expr: sum(h)
    eval_time: 2m
    exp_samples:
    - labels: '{}'
      histogram: '{{schema:0 sum:8 count:7 counter_reset_hint:not_reset buckets:[2 4 1]}}'
"#;
    let (code, text) = run_test_file(dir.path(), "ok.yml", test);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("  SUCCESS"), "{text}");

    // A wrong expectation fails with both sides in the notation. (Samples
    // read back from the head after the first carry "not reset", so their
    // sum does too, as in Prometheus 3.)
    let bad = test.replace("sum:8 count:7", "sum:9 count:7");
    let (code, text) = run_test_file(dir.path(), "bad.yml", &bad);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(
            "    expr: \"sum(h)\", time: 2m,\n        exp: {} {{count:7 sum:9 counter_reset_hint:not_reset buckets:[2 4 1]}}\n        got: {} {{count:7 sum:8 counter_reset_hint:not_reset buckets:[2 4 1]}}"
        ),
        "{text}"
    );

    // A histogram expectation that does not parse fails that test only.
    let broken = test.replace("buckets:[2 4 1]}}'", "buckets:[2 4 1]'");
    let (code, text) = run_test_file(dir.path(), "broken.yml", &broken);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("    expr: \"sum(h)\", time: 2m, err: labels \"{}\": invalid histogram"),
        "{text}"
    );
}
