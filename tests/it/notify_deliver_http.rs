//! Delivery to real HTTP peers on 127.0.0.1: exact PagerDuty, Slack and
//! webhook payloads, retries, Retry-After, permanent failures, resume after
//! the outbox is dropped, replay through the API, and the metrics.

use crate::notify_deliver_support;

use klaxon::metrics::Registry;
use klaxon::model::now_millis;
use klaxon::notify::config::GlobalConfig;
use klaxon::notify::{Notification, NotificationSink};
use klaxon::store::Store;
use notify_deliver_support::*;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Top-level and per-alert field names, in order, from raw JSON text
/// (serde_json's map would sort them).
fn field_order(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let b = text.as_bytes();
    let mut i = 0;
    let mut in_alerts = false;
    while i < b.len() {
        match b[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            b'"' => {
                let start = i + 1;
                let mut j = start;
                while b[j] != b'"' {
                    if b[j] == b'\\' {
                        j += 1;
                    }
                    j += 1;
                }
                let s = &text[start..j];
                let mut k = j + 1;
                while b[k] == b' ' || b[k] == b'\n' {
                    k += 1;
                }
                if b[k] == b':' && (depth == 1 || (in_alerts && depth == 3)) {
                    out.push(format!("{depth}:{s}"));
                    if depth == 1 {
                        in_alerts = s == "alerts";
                    }
                }
                i = j;
            }
            _ => {}
        }
        i += 1;
    }
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_body_matches_alertmanager_fields_and_order() {
    let mock = Mock::start(vec![]).await;
    let recv = receivers(
        &format!(
            "- name: hook\n  webhook_configs:\n    - url: '{}'\n      max_alerts: 1\n      http_config:\n        authorization:\n          credentials: t0ken\n",
            mock.url("/hook")
        ),
        &GlobalConfig::default(),
    );
    let store = Arc::new(Store::open_in_memory().unwrap());
    let ob = outbox(store.clone(), recv, &Registry::new());
    let now = now_millis();
    let n = notification(
        "hook",
        vec![
            alert("DiskFull", "a:1", false, now),
            alert("DiskFull", "b:1", false, now),
        ],
        now,
    );
    ob.enqueue(n.clone());
    let reqs = mock.wait_reqs(1, WAIT).await;
    assert_eq!(reqs.len(), 1);
    let body = reqs[0].json();
    assert_eq!(reqs[0].headers["content-type"], "application/json");
    assert_eq!(reqs[0].headers["authorization"], "Bearer t0ken");

    let reference_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/reference/metrics/alertmanager_webhook_body.json"
    );
    let reference = std::fs::read_to_string(reference_path).expect("shared reference webhook body");
    assert_eq!(
        field_order(&reqs[0].body),
        field_order(&reference),
        "field names/order differ from Alertmanager's"
    );
    let refv: Value = serde_json::from_str(&reference).unwrap();
    assert_eq!(keys(&body["alerts"][0]), keys(&refv["alerts"][0]));

    assert_eq!(body["version"], "4");
    assert_eq!(body["receiver"], "hook");
    assert_eq!(body["status"], "firing");
    assert_eq!(body["groupKey"], n.group_key);
    assert_eq!(body["truncatedAlerts"], 1);
    assert_eq!(body["alerts"].as_array().unwrap().len(), 1);
    assert_eq!(body["groupLabels"], json!({"alertname": "DiskFull"}));
    assert_eq!(
        body["commonLabels"],
        json!({"alertname": "DiskFull", "severity": "critical"})
    );
    assert_eq!(body["commonAnnotations"]["runbook_url"], RUNBOOK);
    assert_eq!(body["externalURL"], "http://klaxon.example.org:9090");
    let a = &body["alerts"][0];
    assert_eq!(a["status"], "firing");
    assert_eq!(a["labels"]["instance"], "a:1");
    assert_eq!(a["endsAt"], "0001-01-01T00:00:00Z");
    assert_eq!(
        a["generatorURL"],
        "http://prometheus:9090/graph?g0.expr=disk"
    );
    assert_eq!(a["fingerprint"].as_str().unwrap().len(), 16);
    assert!(
        eventually(WAIT, || store.get_delivery(1).unwrap().map(|d| d.status)
            == Some("success".into()))
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_v2_event_fields() {
    let mock = Mock::start(vec![]).await;
    let recv = receivers(
        &format!(
            "- name: pd\n  pagerduty_configs:\n    - routing_key: 'R0UT1NG-s3cret'\n      url: '{}'\n      client_url: 'http://klaxon.example.org:9090'\n      links:\n        - href: 'https://wiki.example.org'\n          text: 'Wiki'\n",
            mock.url("/v2/enqueue")
        ),
        &GlobalConfig::default(),
    );
    let store = Arc::new(Store::open_in_memory().unwrap());
    let ob = outbox(store.clone(), recv, &Registry::new());
    let now = now_millis();
    let mut big = alert("DiskFull", "a:1", false, now);
    let mut b = big.labels.builder();
    b.set("huge", "x".repeat(3000));
    big.labels = b.build();
    ob.enqueue(notification("pd", vec![big], now));
    let reqs = mock.wait_reqs(1, WAIT).await;
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].path, "/v2/enqueue");
    let b = reqs[0].json();
    assert_eq!(b["routing_key"], "R0UT1NG-s3cret");
    assert_eq!(b["event_action"], "trigger");
    // Alertmanager's key: `printf '%s' '{}:{alertname="DiskFull"}' | sha256sum`.
    assert_eq!(
        b["dedup_key"],
        "17c4e445d234645c9e547ff6d32a864af0ebdadcd1902771c24c8d366637ff41"
    );
    let summary = b["payload"]["summary"].as_str().unwrap();
    assert!(summary.starts_with("[FIRING:1] DiskFull ("), "{summary}");
    assert!(
        summary.chars().count() <= 1024,
        "summary has {} chars",
        summary.chars().count()
    );
    assert_eq!(b["payload"]["severity"], "critical");
    assert_eq!(b["payload"]["source"], "klaxon");
    let details = &b["payload"]["custom_details"];
    assert_eq!(details["num_firing"], "1");
    assert_eq!(details["num_resolved"], "0");
    assert!(details["firing"].as_str().unwrap().contains(RUNBOOK));
    assert_eq!(details["common_labels"]["instance"], "a:1");
    assert_eq!(details["common_annotations"]["runbook_url"], RUNBOOK);
    let links = b["links"].as_array().unwrap();
    assert_eq!(links[0], json!({"href": RUNBOOK, "text": "Runbook"}));
    assert_eq!(links[1]["text"], "Dashboard");
    assert_eq!(
        links[2],
        json!({"href": "http://prometheus:9090/graph?g0.expr=disk", "text": "Source"})
    );
    assert!(links[3]["href"]
        .as_str()
        .unwrap()
        .starts_with("http://klaxon.example.org:9090/#/silences?matchers="));
    assert_eq!(
        links[4],
        json!({"href": "https://wiki.example.org", "text": "Wiki"})
    );
    assert_eq!(b["client"], "klaxon");
    assert_eq!(b["client_url"], "http://klaxon.example.org:9090");

    // The key is never stored (and so never shown by the history API).
    assert!(
        eventually(WAIT, || store.get_delivery(1).unwrap().map(|d| d.status)
            == Some("success".into()))
        .await
    );
    let d = store.get_delivery(1).unwrap().unwrap();
    assert!(!d.payload.contains("s3cret"), "{}", d.payload);

    // Resolving the group sends `resolve` under the same dedup key.
    let mut resolved = alert("DiskFull", "a:1", true, now);
    resolved.ends_at = Some(now - 1);
    ob.enqueue(notification("pd", vec![resolved], now));
    let reqs = mock.wait_reqs(2, WAIT).await;
    let b2 = reqs[1].json();
    assert_eq!(b2["event_action"], "resolve");
    assert_eq!(b2["dedup_key"], b["dedup_key"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_attachment_buttons_and_send_resolved() {
    let mock = Mock::start(vec![]).await;
    let recv = receivers(
        &format!(
            "- name: chat\n  slack_configs:\n    - api_url: '{}'\n      channel: '#ops'\n      fields:\n        - title: Severity\n          value: '{{{{ .CommonLabels.severity }}}}'\n          short: true\n",
            mock.url("/services/T0/B0/XyZ")
        ),
        &GlobalConfig::default(),
    );
    let store = Arc::new(Store::open_in_memory().unwrap());
    let ob = outbox(store.clone(), recv, &Registry::new());
    let now = now_millis();
    ob.enqueue(notification(
        "chat",
        vec![alert("DiskFull", "a:1", false, now)],
        now,
    ));
    let reqs = mock.wait_reqs(1, WAIT).await;
    assert_eq!(reqs.len(), 1);
    let b = reqs[0].json();
    assert_eq!(b["channel"], "#ops");
    assert_eq!(b["username"], "klaxon");
    let att = &b["attachments"][0];
    assert_eq!(att["title"], "[FIRING:1] DiskFull (a:1 critical)");
    assert_eq!(att["title_link"], RUNBOOK);
    assert_eq!(att["color"], "danger");
    let text = att["text"].as_str().unwrap();
    for want in [
        RUNBOOK,
        "Disk almost full",
        "Only 3% left on /var",
        "https://grafana.example.org/d/disk",
        "http://prometheus:9090/graph?g0.expr=disk",
        "/#/silences?matchers=",
    ] {
        assert!(text.contains(want), "slack text lacks {want}: {text}");
    }
    assert_eq!(
        att["fields"],
        json!([{"title": "Severity", "value": "critical", "short": true}])
    );
    let actions = att["actions"].as_array().unwrap();
    assert_eq!(actions[0]["url"], RUNBOOK);
    assert_eq!(actions[0]["type"], "button");
    assert!(actions[1]["url"]
        .as_str()
        .unwrap()
        .starts_with("http://klaxon.example.org:9090/#/silences?matchers="));

    // send_resolved defaults to false for Slack: a resolved-only group is not sent or stored.
    let ids = ob
        .enqueue_notification(&notification(
            "chat",
            vec![alert("DiskFull", "a:1", true, now)],
            now,
        ))
        .unwrap();
    assert!(ids.is_empty());
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(mock.reqs().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_retry_until_one_success() {
    let mock = Mock::start(vec![(500, vec![]), (500, vec![]), (503, vec![])]).await;
    let recv = receivers(
        &format!(
            "- name: hook\n  webhook_configs:\n    - url: '{}'\n",
            mock.url("/")
        ),
        &GlobalConfig::default(),
    );
    let store = Arc::new(Store::open_in_memory().unwrap());
    let registry = Registry::new();
    let ob = outbox(store.clone(), recv, &registry);
    let now = now_millis();
    let id = ob
        .enqueue_notification(&notification(
            "hook",
            vec![alert("DiskFull", "a:1", false, now)],
            now,
        ))
        .unwrap()[0];
    assert!(
        eventually(WAIT, || store.get_delivery(id).unwrap().map(|d| d.status)
            == Some("success".into()))
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = store.get_delivery(id).unwrap().unwrap();
    assert_eq!(d.attempts, 4);
    assert_eq!(mock.reqs().len(), 4);
    let attempts = store.delivery_attempts(id).unwrap();
    assert_eq!(attempts.iter().filter(|a| a.ok).count(), 1);
    assert_eq!(attempts.len(), 4);
    // Every attempt sent the same bytes.
    let bodies: Vec<String> = mock.reqs().iter().map(|r| r.body.clone()).collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));

    let text = registry.encode(false);
    assert!(
        text.contains("klaxon_notifications_total{receiver=\"hook\",integration=\"webhook\"} 4"),
        "{text}"
    );
    assert!(text.contains("klaxon_notifications_failed_total{receiver=\"hook\",integration=\"webhook\",reason=\"http_5xx\"} 3"), "{text}");
    assert!(
        text.contains("# TYPE klaxon_notification_latency_seconds histogram"),
        "{text}"
    );
    assert!(
        text.contains("klaxon_notification_latency_seconds_count{integration=\"webhook\"} 4"),
        "{text}"
    );
    assert!(
        text.contains(
            "klaxon_notification_latency_seconds_bucket{integration=\"webhook\",le=\"+Inf\"} 4"
        ),
        "{text}"
    );
    // The queue gauge is recounted shortly after the last change.
    assert!(
        eventually(WAIT, || registry
            .encode(false)
            .contains("klaxon_notification_queue_length 0"))
        .await,
        "{}",
        registry.encode(false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_error_fails_without_retry() {
    let mock = Mock::start(vec![(400, vec![])]).await;
    let recv = receivers(
        &format!(
            "- name: hook\n  webhook_configs:\n    - url: '{}'\n",
            mock.url("/")
        ),
        &GlobalConfig::default(),
    );
    let store = Arc::new(Store::open_in_memory().unwrap());
    let ob = outbox(store.clone(), recv, &Registry::new());
    let now = now_millis();
    let id = ob
        .enqueue_notification(&notification(
            "hook",
            vec![alert("DiskFull", "a:1", false, now)],
            now,
        ))
        .unwrap()[0];
    assert!(
        eventually(WAIT, || store.get_delivery(id).unwrap().map(|d| d.status)
            == Some("failed".into()))
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let d = store.get_delivery(id).unwrap().unwrap();
    assert_eq!(d.attempts, 1);
    assert_eq!(d.last_reason.as_deref(), Some("http_4xx"));
    assert!(
        d.last_error.as_deref().unwrap().contains("400"),
        "{:?}",
        d.last_error
    );
    assert_eq!(mock.reqs().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_honours_retry_after() {
    // PagerDuty's Events API v2 is one of the integrations Alertmanager
    // retries a 429 for (a webhook's 429 is final, as there).
    let mock = Mock::start(vec![(429, vec![("retry-after", "1")])]).await;
    let recv = receivers(
        &format!(
            "- name: hook\n  pagerduty_configs:\n    - routing_key: k\n      url: '{}'\n",
            mock.url("/")
        ),
        &GlobalConfig::default(),
    );
    let store = Arc::new(Store::open_in_memory().unwrap());
    let ob = outbox(store.clone(), recv, &Registry::new());
    let now = now_millis();
    let id = ob
        .enqueue_notification(&notification(
            "hook",
            vec![alert("DiskFull", "a:1", false, now)],
            now,
        ))
        .unwrap()[0];
    let reqs = mock.wait_reqs(2, WAIT).await;
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    // Our own backoff would be ≤ 20ms here.
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    assert!(
        eventually(WAIT, || store.get_delivery(id).unwrap().map(|d| d.status)
            == Some("success".into()))
        .await
    );
    assert_eq!(store.get_delivery(id).unwrap().unwrap().attempts, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_outbox_resumes_from_the_store_and_delivers_once() {
    let dir = tempfile::tempdir().unwrap();
    // A port with nothing listening: the receiver is down.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let yaml = format!("- name: hook\n  webhook_configs:\n    - url: 'http://127.0.0.1:{port}/'\n");
    let id;
    {
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let ob = outbox(
            store.clone(),
            receivers(&yaml, &GlobalConfig::default()),
            &Registry::new(),
        );
        let now = now_millis();
        id = ob
            .enqueue_notification(&notification(
                "hook",
                vec![alert("DiskFull", "a:1", false, now)],
                now,
            ))
            .unwrap()[0];
        assert!(
            eventually(WAIT, || store.get_delivery(id).unwrap().map(|d| d.attempts)
                >= Some(2))
            .await
        );
        let d = store.get_delivery(id).unwrap().unwrap();
        assert_eq!(d.status, "pending");
        assert_eq!(d.last_reason.as_deref(), Some("connection"));
        drop(ob);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let attempts_before = Store::open(dir.path())
        .unwrap()
        .get_delivery(id)
        .unwrap()
        .unwrap()
        .attempts;

    let mock = Mock::start_on(&format!("127.0.0.1:{port}"), vec![]).await;
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let _ob = outbox(
        store.clone(),
        receivers(&yaml, &GlobalConfig::default()),
        &Registry::new(),
    );
    assert!(
        eventually(WAIT, || store.get_delivery(id).unwrap().map(|d| d.status)
            == Some("success".into()))
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        mock.reqs().len(),
        1,
        "delivered exactly once after the restart"
    );
    let d = store.get_delivery(id).unwrap().unwrap();
    assert_eq!(d.attempts, attempts_before + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_api_lists_pages_and_replays() {
    let mock = Mock::start(vec![]).await;
    let recv = receivers(
        &format!(
            "- name: hook\n  webhook_configs:\n    - url: '{}'\n- name: other\n  webhook_configs:\n    - url: '{}'\n",
            mock.url("/a"),
            mock.url("/b")
        ),
        &GlobalConfig::default(),
    );
    let store = Arc::new(Store::open_in_memory().unwrap());
    let ob = outbox(store.clone(), recv, &Registry::new());
    let now = now_millis();
    ob.enqueue(notification(
        "hook",
        vec![alert("DiskFull", "a:1", false, now)],
        now,
    ));
    ob.enqueue(notification(
        "other",
        vec![alert("CPUHot", "b:1", false, now)],
        now,
    ));
    // Another group of the same receiver (a second flush of the first group
    // would supersede the first while it is still pending).
    ob.enqueue(Notification {
        group_key: "{}:{alertname=\"DiskFull\",instance=\"c:1\"}".into(),
        ..notification("hook", vec![alert("DiskFull", "c:1", false, now)], now)
    });
    assert_eq!(mock.wait_reqs(3, WAIT).await.len(), 3);
    assert!(eventually(WAIT, || store.count_unfinished_deliveries().unwrap() == 0).await);

    let app = klaxon::api::deliveries::routes(ob.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let base = format!("http://{addr}/api/v1/deliveries");
    let http = reqwest::Client::new();
    let get = |q: String| {
        let http = http.clone();
        async move {
            http.get(q)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .map(|t| serde_json::from_str::<Value>(&t).unwrap())
                .unwrap()
        }
    };

    let all = get(format!("{base}?status=success")).await;
    assert_eq!(all["status"], "success");
    let ids: Vec<&str> = all["data"]["deliveries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["3", "2", "1"]);
    assert_eq!(all["data"]["nextCursor"], Value::Null);

    let p1 = get(format!("{base}?receiver=hook&limit=1")).await;
    assert_eq!(p1["data"]["deliveries"][0]["id"], "3");
    assert_eq!(
        p1["data"]["deliveries"][0]["payload"]["body"]["receiver"],
        "hook"
    );
    let cursor = p1["data"]["nextCursor"].as_str().unwrap().to_string();
    let p2 = get(format!("{base}?receiver=hook&limit=1&cursor={cursor}")).await;
    assert_eq!(p2["data"]["deliveries"][0]["id"], "1");
    assert_eq!(p2["data"]["nextCursor"], Value::Null);

    let by_name = get(format!("{base}?alertname=CPUHot")).await;
    assert_eq!(by_name["data"]["deliveries"].as_array().unwrap().len(), 1);
    assert_eq!(by_name["data"]["deliveries"][0]["receiver"], "other");

    let bad = http
        .get(format!("{base}?status=nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let bad: Value = bad
        .text()
        .await
        .map(|t| serde_json::from_str::<Value>(&t).unwrap())
        .unwrap();
    assert!(bad["error"].as_str().unwrap().contains("\"status\""));

    let before = mock.reqs().len();
    let r: Value = http
        .post(format!("{base}/1/replay"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str::<Value>(&t).unwrap())
        .unwrap();
    assert_eq!(r["status"], "success");
    assert_eq!(r["data"]["delivery"]["attempts"], 2);
    assert_eq!(r["data"]["attempt"]["replay"], true);
    assert_eq!(r["data"]["attempt"]["success"], true);
    let reqs = mock.reqs();
    assert_eq!(reqs.len(), before + 1);
    // Delivery 1 is the request to /a about instance a:1 (3 is another
    // group of the same receiver, 2 went to /b).
    let first_a = reqs
        .iter()
        .find(|r| r.path == "/a" && r.body.contains("\"instance\":\"a:1\""))
        .unwrap();
    assert_eq!(reqs[before].path, "/a");
    assert_eq!(
        reqs[before].body, first_a.body,
        "replay re-sends the stored payload"
    );
    assert_eq!(store.delivery_attempts(1).unwrap().len(), 2);

    let missing = http.post(format!("{base}/99/replay")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

/// A receiver that always answers 503: retried with growing gaps (each at
/// least half its exponential step, the jitter's floor), then failed with
/// the deadline as the reason, and counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_503_backs_off_then_fails_at_the_deadline() {
    let mock = Mock::start(vec![(503, vec![]); 1000]).await;
    let recv = receivers(
        &format!(
            "- name: hook\n  webhook_configs:\n    - url: '{}'\n",
            mock.url("/")
        ),
        &GlobalConfig::default(),
    );
    let store = Arc::new(Store::open_in_memory().unwrap());
    let registry = Registry::new();
    let opts = klaxon::notify::outbox::OutboxOptions {
        initial_backoff: Duration::from_millis(40),
        max_backoff: Duration::from_millis(320),
        deadline: Duration::from_millis(2500),
        ..fast_options()
    };
    let set = klaxon::notify::template::template_set(&[]).unwrap();
    let ob = klaxon::notify::outbox::Outbox::start_with(store.clone(), recv, set, &registry, opts)
        .unwrap();
    let now = now_millis();
    let id = ob
        .enqueue_notification(&notification(
            "hook",
            vec![alert("DiskFull", "a:1", false, now)],
            now,
        ))
        .unwrap()[0];
    assert!(
        eventually(Duration::from_secs(20), || store
            .get_delivery(id)
            .unwrap()
            .is_some_and(|d| d.status == "failed"))
        .await,
        "never failed: {:?}",
        store.get_delivery(id)
    );
    let d = store.get_delivery(id).unwrap().unwrap();
    let err = d.last_error.clone().unwrap_or_default();
    assert!(err.contains("retry deadline reached"), "{err}");
    assert!(err.contains("503"), "{err}");
    let reqs = mock.reqs();
    assert_eq!(reqs.len() as u32, d.attempts, "one request per attempt");
    // 40, 80, 160, 320, 320 ... ms steps fit the 2.5 s deadline at least
    // four times even with full jitter.
    assert!(d.attempts >= 4, "{} attempts", d.attempts);
    for (i, w) in reqs.windows(2).enumerate() {
        let step = (40u64 << i.min(10)).min(320);
        let gap = w[1].at - w[0].at;
        assert!(
            gap >= Duration::from_millis(step / 2),
            "gap {i} was {gap:?}, below half of {step} ms"
        );
    }
    let text = registry.encode(false);
    let failed = format!(
        "klaxon_notifications_failed_total{{receiver=\"hook\",integration=\"webhook\",reason=\"http_5xx\"}} {}",
        d.attempts
    );
    assert!(text.contains(&failed), "{failed} not in {text}");
}
