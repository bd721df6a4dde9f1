use super::*;
use crate::config::{Action, GlobalConfig, RelabelRegex};

/// `global:` and `alerting:` of a YAML text, resolved as the file loader
/// does.
fn sections(yaml: &str) -> (GlobalConfig, AlertingConfig) {
    #[derive(Default, serde::Deserialize)]
    struct File {
        global: Option<crate::config::raw::RawGlobal>,
        alerting: Option<config::RawAlerting>,
    }
    let f: File = crate::config::parse_yaml(yaml, "t.yml").unwrap();
    let mut sink = crate::config::errors::Sink::new("t.yml");
    let g = crate::config::resolve_global(f.global.unwrap_or_default(), &mut sink);
    let a = config::resolve(f.alerting.unwrap_or_default(), None, &mut sink);
    sink.into_result((g, a)).unwrap()
}

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
        target_labels: Vec::new(),
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

/// One HTTP request as a test Alertmanager saw it.
#[derive(Debug)]
struct Seen {
    head: String,
    body: serde_json::Value,
}

/// A minimal Alertmanager: answers 200 to everything and records it.
async fn capture_server() -> (u16, Arc<Mutex<Vec<Seen>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = c.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(end) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let head = text[..end].to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    let body =
                        serde_json::from_slice(&buf[end + 4..end + 4 + len]).unwrap_or_default();
                    s.lock().push(Seen { head, body });
                    let _ = c
                        .write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                        )
                        .await;
                    return;
                }
            });
        }
    });
    (port, seen)
}

async fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn sets_batches_auth_relabeling_and_the_discovery_seam() {
    let (p1, seen1) = capture_server().await;
    let (p2, seen2) = capture_server().await;
    // Entry 0: static, under a prefix, with basic auth; entry 1: no static
    // targets (filled through the seam below) and its own alert relabeling.
    let yaml = format!(
        "global:
  external_labels: {{dc: eu1}}
alerting:
  alert_relabel_configs:
    - source_labels: [alertname]
      regex: Never
      action: drop
  alertmanagers:
    - path_prefix: /am
      basic_auth: {{username: u, password: p}}
      static_configs:
        - targets: ['127.0.0.1:{p1}']
    - alert_relabel_configs:
        - source_labels: [alertname]
          regex: a[0-2]
          action: drop
"
    );
    let (global, alerting) = sections(&yaml);
    let cfg = NotifierSection {
        alerting: &alerting,
        global: &global,
    };
    let r = Registry::new();
    let n = Notifier::new(
        &r,
        NotifierOptions {
            queue_capacity: 100,
            max_batch_size: 2,
        },
        crate::discovery::Manager::new(
            "notify",
            crate::discovery::SdMetrics::register(&r),
            Default::default(),
        ),
    );
    n.apply(prepare(cfg).unwrap());
    assert!(n.sync_groups(
        "config-1",
        &[Arc::new(TargetGroup {
            targets: vec![format!("127.0.0.1:{p2}")],
            ..Default::default()
        })]
    ));
    assert!(!n.sync_groups("config-9", &[]));
    let (active, _) = n.alertmanagers();
    let urls: Vec<&str> = active.iter().map(|a| a.url.as_str()).collect();
    let (u1, u2) = (
        format!("http://127.0.0.1:{p1}/am/api/v2/alerts"),
        format!("http://127.0.0.1:{p2}/api/v2/alerts"),
    );
    assert_eq!(urls, [u1.as_str(), u2.as_str()]);

    n.send((0..5).map(|i| alert(&format!("a{i}"))).collect());
    let count = |s: &Mutex<Vec<Seen>>| -> usize {
        s.lock()
            .iter()
            .map(|x| x.body.as_array().map_or(0, |a| a.len()))
            .sum()
    };
    wait_for("5 alerts at the first", || count(&seen1) == 5).await;
    wait_for("2 alerts at the second", || count(&seen2) == 2).await;
    {
        let s = seen1.lock();
        // Batches of at most max_batch_size, in order, each with auth.
        let sizes: Vec<usize> = s.iter().map(|x| x.body.as_array().unwrap().len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        for x in s.iter() {
            assert!(
                x.head.starts_with("POST /am/api/v2/alerts HTTP/1.1"),
                "{}",
                x.head
            );
            assert!(
                x.head
                    .to_ascii_lowercase()
                    .contains("authorization: basic dtpw"),
                "{}",
                x.head
            );
            assert!(x
                .head
                .to_ascii_lowercase()
                .contains("content-type: application/json"));
        }
        assert_eq!(s[0].body[0]["labels"]["dc"], "eu1");
    }
    let names: Vec<String> = seen2
        .lock()
        .iter()
        .flat_map(|x| x.body.as_array().cloned().unwrap_or_default())
        .map(|a| {
            a["labels"]["alertname"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["a3", "a4"]);
    assert_eq!(value(&r, "klaxon_notifications_sent"), 7.0);
    assert_eq!(
        value(&r, "klaxon_notifications_alertmanagers_discovered"),
        2.0
    );

    // A reload that drops entry 1 and keeps entry 0 unchanged: the kept
    // set keeps its Alertmanager; the other's metrics go away.
    let kept = yaml[..yaml.find("    - alert_relabel_configs").unwrap()].to_string();
    let (global, alerting) = sections(&kept);
    n.apply(
        prepare(NotifierSection {
            alerting: &alerting,
            global: &global,
        })
        .unwrap(),
    );
    let (active, _) = n.alertmanagers();
    assert_eq!(active.len(), 1);
    assert_eq!(value(&r, "klaxon_notifications_sent"), 5.0);
    n.stop(Duration::from_secs(1)).await;
}
