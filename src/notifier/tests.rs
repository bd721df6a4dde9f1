use super::*;
use crate::config::{Action, RelabelRegex};

fn alert(name: &str) -> Alert {
    Alert {
        labels: Labels::from_pairs([("alertname", name)]),
        annotations: Labels::empty(),
        starts_at: 1_000,
        ends_at: Some(61_000),
        generator_url: "http://k/graph".into(),
        updated_at: 0,
        request_id: None,
    }
}

fn loop_with(capacity: usize, r: &Registry) -> Arc<SendLoop> {
    let m = NotifierMetrics::register(r);
    SendLoop::new(
        "http://am/api/v2/alerts".into(),
        capacity,
        m.for_url("http://am/api/v2/alerts"),
    )
}

fn value(r: &Registry, name: &str) -> f64 {
    r.gather()
        .into_iter()
        .filter(|f| f.name == name)
        .flat_map(|f| f.samples)
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn a_full_queue_drops_the_oldest_and_counts_them() {
    let r = Registry::new();
    let l = loop_with(4, &r);
    let batch: Vec<Arc<Alert>> = (0..3).map(|i| Arc::new(alert(&format!("a{i}")))).collect();
    l.add(&batch);
    l.add(&batch);
    assert_eq!(l.queue_len(), 4);
    assert_eq!(value(&r, "klaxon_notifications_dropped"), 2.0);
    assert_eq!(value(&r, "klaxon_notifications_queue_length"), 4.0);
    // Oldest first out: the survivors are the last four added.
    let names: Vec<String> = l
        .next_batch(10)
        .iter()
        .map(|a| a.labels.get("alertname").unwrap_or("").to_string())
        .collect();
    assert_eq!(names, ["a2", "a0", "a1", "a2"]);
    // A single batch larger than the queue keeps only its newest alerts.
    let big: Vec<Arc<Alert>> = (0..10).map(|i| Arc::new(alert(&format!("b{i}")))).collect();
    l.add(&big);
    assert_eq!(value(&r, "klaxon_notifications_dropped"), 8.0);
    let names: Vec<String> = l
        .next_batch(2)
        .iter()
        .map(|a| a.labels.get("alertname").unwrap_or("").to_string())
        .collect();
    assert_eq!(names, ["b6", "b7"], "batches are cut at the batch size");
    assert_eq!(l.queue_len(), 2);
    // Removing the Alertmanager counts what it still held as dropped.
    l.stop();
    assert_eq!(value(&r, "klaxon_notifications_dropped"), 10.0);
}

fn relabel(
    action: Action,
    source: &[&str],
    regex: &str,
    target: &str,
    replacement: &str,
) -> RelabelConfig {
    RelabelConfig {
        source_labels: source.iter().map(|s| s.to_string()).collect(),
        regex: RelabelRegex::new(regex).unwrap(),
        target_label: target.into(),
        replacement: replacement.into(),
        action,
        ..Default::default()
    }
}

#[test]
fn external_labels_then_alert_relabeling() {
    let a = [
        Arc::new(alert("Keep")),
        Arc::new(alert("Drop")),
        Arc::new(Alert {
            labels: Labels::from_pairs([("alertname", "Own"), ("dc", "mine")]),
            ..alert("x")
        }),
    ];
    let ext = Labels::from_pairs([("dc", "eu1")]);
    let cfgs = [
        relabel(Action::Drop, &["alertname"], "Drop", "", "$1"),
        relabel(Action::Replace, &["dc"], "(.*)", "region", "r-$1"),
    ];
    let out = relabel_alerts(&a, &ext, &cfgs);
    let got: Vec<String> = out.iter().map(|a| a.labels.to_string()).collect();
    assert_eq!(
        got,
        [
            r#"{alertname="Keep", dc="eu1", region="r-eu1"}"#,
            r#"{alertname="Own", dc="mine", region="r-mine"}"#
        ]
    );
    // Nothing configured: the same alerts, not copies.
    let same = relabel_alerts(&a, &Labels::empty(), &[]);
    assert!(Arc::ptr_eq(&same[0], &a[0]));
}

#[test]
fn alertmanagers_from_a_group_are_relabeled_into_urls() {
    let cfg = AlertmanagerConfig {
        scheme: "https".into(),
        path_prefix: "/prefix".into(),
        relabel_configs: vec![
            relabel(Action::Drop, &["__address__"], "skip:.*", "", "$1"),
            relabel(Action::Replace, &["zone"], "b", "__scheme__", "http"),
        ],
        ..Default::default()
    };
    let g = TargetGroup {
        targets: vec!["am1:9093".into(), "skip:1".into(), "am2:9093".into()],
        labels: [("zone".to_string(), "b".to_string())].into(),
        source: "0".into(),
    };
    let (active, dropped) = alertmanagers_from_group(&g, &cfg).unwrap();
    let urls: Vec<&str> = active.iter().map(|a| a.url.as_str()).collect();
    assert_eq!(
        urls,
        [
            "http://am1:9093/prefix/api/v2/alerts",
            "http://am2:9093/prefix/api/v2/alerts"
        ]
    );
    // Dropped ones show their labels before relabeling.
    assert_eq!(dropped.len(), 1);
    assert_eq!(dropped[0].url, "https://skip:1/prefix/api/v2/alerts");
    // A URL as address is refused, as upstream.
    let bad = TargetGroup {
        targets: vec!["http://am:9093".into()],
        ..Default::default()
    };
    let e = alertmanagers_from_group(&bad, &AlertmanagerConfig::default()).unwrap_err();
    assert!(e.contains("is not a valid hostname"), "{e}");
}

#[test]
fn v2_payload_carries_times_and_generator_url() {
    let mut firing = alert("A");
    firing.ends_at = None;
    let body = encode_v2(&[Arc::new(alert("R")), Arc::new(firing)]);
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v[0]["labels"]["alertname"], "R");
    assert_eq!(v[0]["startsAt"], "1970-01-01T00:00:01.000Z");
    assert_eq!(v[0]["endsAt"], "1970-01-01T00:01:01.000Z");
    assert_eq!(v[0]["generatorURL"], "http://k/graph");
    assert!(v[1].get("endsAt").is_none());
}
