use std::time::Duration;

use super::*;
use crate::model::Labels;
use crate::tsdb::Head;

fn head_with(series: &[(&str, &[(i64, f64)])]) -> Head {
    let head = Head::default();
    for (i, (name, pts)) in series.iter().enumerate() {
        let l = Labels::from_pairs([("__name__", name.to_string()), ("i", i.to_string())]);
        let (r, _) = head.get_or_create(&l);
        for &(t, v) in pts.iter() {
            head.append(r, t, v).expect("append");
        }
    }
    head
}

#[test]
fn instant_from_text_and_expr_agree() {
    let head = head_with(&[("up", &[(0, 1.0), (15_000, 1.0)]), ("up", &[(0, 0.0)])]);
    let e = Engine::default();
    let a = e.instant(&head, "sum(up)", 20_000).expect("query");
    let expr = parse("sum(up)").expect("parse");
    let b = e.instant(&head, &expr, 20_000).expect("query");
    assert_eq!(a.value, b.value);
    match a.value {
        Value::Vector(v) => {
            assert_eq!(v.len(), 1);
            assert_eq!(v[0].value, 1.0);
            assert_eq!(v[0].t, 20_000);
            assert!(v[0].labels.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn range_query_returns_sorted_matrix() {
    let head = head_with(&[("m", &[(0, 1.0), (60_000, 2.0)]), ("m", &[(0, 5.0)])]);
    let r = Engine::default()
        .range(&head, "m * 2", 0, 120_000, 60_000)
        .expect("query");
    let Value::Matrix(m) = r.value else {
        panic!("want matrix")
    };
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].points, vec![(0, 2.0), (60_000, 4.0), (120_000, 4.0)]);
    assert_eq!(
        m[1].points,
        vec![(0, 10.0), (60_000, 10.0), (120_000, 10.0)]
    );
    assert!(m[0].labels.get("__name__").is_none());
}

#[test]
fn range_query_rejects_range_vector_and_bad_step() {
    let head = Head::default();
    let e = Engine::default();
    let err = e.range(&head, "m[5m]", 0, 10, 1).expect_err("must fail");
    assert_eq!(err.kind, ErrorKind::BadData);
    assert!(err
        .message
        .contains("invalid expression type \"range vector\""));
    let err = e.range(&head, "m", 0, 10, 0).expect_err("must fail");
    assert_eq!(err.kind, ErrorKind::BadData);
}

#[test]
fn parse_errors_are_bad_data_with_position() {
    let err = Engine::default()
        .instant(&Head::default(), "sum(", 0)
        .expect_err("must fail");
    assert_eq!(err.kind, ErrorKind::BadData);
    assert!(
        err.message.starts_with("1:5: parse error"),
        "{}",
        err.message
    );
}

#[test]
fn timeout_is_reported() {
    let e = Engine::new(EngineOptions {
        timeout: Duration::ZERO,
        ..EngineOptions::default()
    });
    let err = e
        .instant(
            &Head::default(),
            "sum_over_time(vector(1)[1h:1s])",
            3_600_000,
        )
        .expect_err("must time out");
    assert_eq!(err.kind, ErrorKind::Timeout);
    assert_eq!(err.message, "query timed out in query execution");
}

#[test]
fn sample_limit_is_enforced() {
    let pts: Vec<(i64, f64)> = (0..100).map(|i| (i * 1000, i as f64)).collect();
    let head = head_with(&[("m", &pts)]);
    let e = Engine::new(EngineOptions {
        max_samples: 50,
        ..EngineOptions::default()
    });
    assert!(e.instant(&head, "count_over_time(m[40s])", 99_000).is_ok());
    let err = e
        .instant(&head, "count_over_time(m[60s])", 99_000)
        .expect_err("too many samples");
    assert_eq!(err.kind, ErrorKind::Execution);
    assert_eq!(
        err.message,
        "query processing would load too many samples into memory in query execution"
    );
}

#[test]
fn deep_expressions_do_not_panic() {
    let head = head_with(&[("m", &[(0, 1.0)])]);
    let q = format!("{}m{}", "(".repeat(200), ")".repeat(200));
    let r = Engine::default()
        .instant(&head, q.as_str(), 0)
        .expect("query");
    assert!(matches!(r.value, Value::Vector(ref v) if v.len() == 1));
}

#[test]
fn annotations_carry_positions() {
    let head = head_with(&[("requests", &[(0, 1.0), (60_000, 2.0)])]);
    let r = Engine::default()
        .instant(&head, "rate(requests[5m])", 60_000)
        .expect("query");
    assert_eq!(
        r.infos,
        vec![
            "PromQL info: metric might not be a counter, name does not end in _total/_sum/_count/_bucket: \"requests\" (1:6)"
                .to_string()
        ]
    );
}

#[test]
fn odd_parameters_do_not_panic() {
    let head = head_with(&[("up", &[(0, 1.0), (15_000, 2.0)]), ("up", &[(0, 3.0)])]);
    let e = Engine::default();
    for q in [
        "topk(1e300, up)",
        "topk(-1e300, up)",
        "bottomk(9.3e18, up)",
        "limitk(1e19, up)",
        "limit_ratio(-5, up)",
        "quantile(NaN, up)",
        "round(up, 0)",
        "label_replace(up, \"a\", \"$99999999999${x}\", \"job\", \"(.*)\")",
        "up offset -1y",
        "up @ 9e12",
        "rate(up[1ms])",
        "sum_over_time(up[1m:1ms])",
        "histogram_quantile(0.5, up)",
        "histogram_fraction(1, 0, up)",
        "day_of_month(vector(1e300))",
        "year(vector(-1e18))",
        "count_values(\"le\", up) / on() group_left sum(up)",
        "sort_by_label(up, \"\")",
        "clamp(up, NaN, NaN)",
        "predict_linear(up[1m], 1e308)",
        "double_exponential_smoothing(up[1m], 0.5, 0.5)",
    ] {
        let _ = e.instant(&head, q, 20_000);
        let _ = e.range(&head, q, -60_000, 60_000, 15_000);
    }
}

/// Two series that differ only by their metric name.
fn synth_head() -> Head {
    let head = Head::default();
    for name in ["a_total", "b_total"] {
        let l = Labels::from_pairs([("__name__", name), ("job", "synth")]);
        let (r, _) = head.get_or_create(&l);
        for k in 0..20 {
            head.append(r, k * 1_000 + 500, k as f64).expect("append");
        }
    }
    head
}

#[test]
fn duplicate_labelsets_inside_expressions_are_errors() {
    let head = synth_head();
    let e = Engine::default();
    for q in [
        r#"sum(count_over_time({job="synth"}[5s]))"#,
        r#"sum(rate({job="synth"}[5s]))"#,
        r#"sum({job="synth"} * 1)"#,
        r#"sum(abs({job="synth"}))"#,
        r#"count(-{job="synth"})"#,
        r#"{job="synth"} * 1 > 0"#,
    ] {
        let err = e.instant(&head, q, 15_000).expect_err(q);
        assert_eq!(
            err.message, "vector cannot contain metrics with the same labelset",
            "{q}"
        );
        let err = e.range(&head, q, 10_000, 15_000, 1_000).expect_err(q);
        assert_eq!(
            err.message, "vector cannot contain metrics with the same labelset",
            "{q}"
        );
    }
    // Operations that keep the name, or aggregate the selector directly,
    // are fine.
    for q in [
        r#"sum({job="synth"})"#,
        r#"sum(last_over_time({job="synth"}[5s]))"#,
        r#"sum by (__name__) (rate({job="synth"}[5s]))"#,
    ] {
        let r = e.instant(&head, q, 15_000);
        if q.contains("by (__name__)") {
            // The name is gone before the aggregation sees it: the same
            // labelset error, as in Prometheus.
            assert!(r.is_err(), "{q}");
        } else {
            assert!(r.is_ok(), "{q}: {r:?}");
        }
    }
    // With the experimental delayed removal the name survives until the end.
    let delayed = Engine::new(EngineOptions {
        delayed_name_removal: true,
        ..EngineOptions::default()
    });
    assert!(delayed
        .instant(&head, r#"sum(rate({job="synth"}[5s]))"#, 15_000)
        .is_ok());
}
