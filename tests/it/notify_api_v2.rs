//! klaxon's own rules through the dispatcher, the v2 API's JSON shapes
//! (groups, status, receivers, silences), time-interval muting, and
//! `klaxon check config` on an alertmanager.yml.

use klaxon::notify::{Notification, NotificationSink};
use parking_lot::Mutex;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Collect(Mutex<Vec<Notification>>);

impl NotificationSink for Collect {
    fn enqueue(&self, n: Notification) {
        self.0.lock().push(n);
    }
}

async fn get(url: &str) -> (u16, Value) {
    let r = reqwest::get(url).await.unwrap();
    let code = r.status().as_u16();
    let t = r.text().await.unwrap();
    (code, serde_json::from_str(&t).unwrap_or(Value::Null))
}

async fn post(url: &str, body: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    let t = r.text().await.unwrap();
    (code, serde_json::from_str(&t).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_rules_reach_the_sink_and_api_shapes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.rules"),
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: Up\n    expr: vector(1)\n    labels: {team: a}\n    annotations: {summary: up}\n",
    )
    .unwrap();
    let cfg_path = dir.path().join("k.yml");
    std::fs::write(
        &cfg_path,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: ['*.rules']\nstorage:\n  path: {}\nnotify:\n  route:\n    receiver: default\n    group_wait: 100ms\n    group_by: [team]\n    routes:\n    - matchers: [team=a]\n      receiver: team-a\n  receivers:\n  - name: default\n  - name: team-a\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let cfg = klaxon::settings::load_file(&cfg_path).unwrap();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let sink = Arc::new(Collect::default());
    app.state.dispatcher.set_sink(sink.clone());
    let base = format!("http://{}", app.addr);

    let deadline = Instant::now() + Duration::from_secs(15);
    let n = loop {
        if let Some(n) = sink.0.lock().first().cloned() {
            break n;
        }
        assert!(Instant::now() < deadline, "rule alert never notified");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(n.receiver, "team-a");
    assert_eq!(n.group_key, "{}/{team=\"a\"}:{team=\"a\"}");
    assert_eq!(n.alerts[0].labels.get("alertname"), Some("Up"));
    // (The host part is the rule manager's external URL, the listen flag.)
    let g = &n.alerts[0].generator_url;
    assert!(g.ends_with("/graph?g0.expr=vector%281%29&g0.tab=1"), "{g}");

    // POSTed alerts share the same path.
    let (code, _) = post(
        &format!("{base}/api/v2/alerts"),
        r#"[{"labels":{"alertname":"Ext","team":"b"},"annotations":{"summary":"ext"}}]"#,
    )
    .await;
    assert_eq!(code, 200);
    let (code, body) = post(&format!("{base}/api/v2/alerts"), r#"[{"labels":{}}]"#).await;
    assert_eq!(
        (code, body),
        (
            400,
            Value::String("at least one label pair required".into())
        )
    );

    let (_, alerts) = get(&format!("{base}/api/v2/alerts")).await;
    let alerts = alerts.as_array().unwrap().clone();
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    for a in &alerts {
        let fp = a["fingerprint"].as_str().unwrap();
        assert_eq!(fp.len(), 16);
        assert!(a["status"]["silencedBy"].is_array() && a["status"]["inhibitedBy"].is_array());
        assert!(a["startsAt"].as_str().unwrap().ends_with('Z'));
    }
    let (_, groups) = get(&format!("{base}/api/v2/alerts/groups")).await;
    let mut seen: Vec<(String, String)> = groups
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["receiver"]["name"].as_str().unwrap().to_string(),
                g["labels"]["team"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("default".into(), "b".into()),
            ("team-a".into(), "a".into())
        ]
    );
    let (_, groups) = get(&format!("{base}/api/v2/alerts/groups?receiver=team-.*")).await;
    assert_eq!(groups.as_array().unwrap().len(), 1);
    let (_, filtered) = get(&format!("{base}/api/v2/alerts?filter=team%3D%22b%22")).await;
    assert_eq!(filtered.as_array().unwrap().len(), 1);

    let (_, status) = get(&format!("{base}/api/v2/status")).await;
    assert_eq!(status["cluster"]["status"], "disabled");
    let original = status["config"]["original"].as_str().unwrap();
    assert!(
        original.starts_with("route:\n  receiver: default\n"),
        "{original}"
    );
    let (_, recv) = get(&format!("{base}/api/v2/receivers")).await;
    assert_eq!(
        recv,
        serde_json::json!([{"name": "default"}, {"name": "team-a"}])
    );

    // A silence, its JSON and its effect on the alert's status.
    let now = klaxon::model::now_millis();
    let body = format!(
        r#"{{"matchers":[{{"name":"alertname","value":"Ext","isRegex":false,"isEqual":true}}],"startsAt":"{}","endsAt":"{}","createdBy":"t","comment":"c"}}"#,
        klaxon::model::time::rfc3339_millis(now - 1000),
        klaxon::model::time::rfc3339_millis(now + 3_600_000)
    );
    let (code, created) = post(&format!("{base}/api/v2/silences"), &body).await;
    assert_eq!(code, 200);
    let id = created["silenceID"].as_str().unwrap().to_string();
    let (code, sil) = get(&format!("{base}/api/v2/silence/{id}")).await;
    assert_eq!(code, 200);
    assert_eq!(sil["status"]["state"], "active");
    assert_eq!(sil["matchers"][0]["isEqual"], true);
    let (_, ext) = get(&format!("{base}/api/v2/alerts?filter=alertname%3DExt")).await;
    assert_eq!(ext[0]["status"]["state"], "suppressed");
    assert_eq!(ext[0]["status"]["silencedBy"][0], id.as_str());
    let (_, hidden) = get(&format!("{base}/api/v2/alerts?silenced=false")).await;
    assert_eq!(hidden.as_array().unwrap().len(), 1);
    let (code, _) = get(&format!("{base}/api/v2/silence/nope")).await;
    assert_eq!(code, 404);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_intervals_mute_routes() {
    // `always` covers every instant; `never` covers none (Feb 30 doesn't exist).
    let y = "route:\n  receiver: r\n  group_wait: 50ms\n  group_interval: 100ms\n  group_by: [alertname]\n  routes:\n  - matchers: [m=mute]\n    mute_time_intervals: [always]\n  - matchers: [m=inactive]\n    active_time_intervals: [never]\n  - matchers: [m=active]\n    active_time_intervals: [always]\ntime_intervals:\n- name: always\n  time_intervals:\n  - times: [{start_time: '00:00', end_time: '24:00'}]\nmute_time_intervals:\n- name: never\n  time_intervals:\n  - months: [february]\n    days_of_month: ['30']\nreceivers: [{name: r}]\n";
    let cfg = Arc::new(klaxon::notify::config::load_str(y, "t.yml", None).unwrap());
    let sink = Arc::new(Collect::default());
    let d =
        klaxon::notify::dispatch::Dispatcher::new(cfg, sink.clone(), Default::default()).unwrap();
    let now = klaxon::model::now_millis();
    let mk = |m: &str| klaxon::notify::Alert {
        labels: klaxon::model::Labels::from_pairs([("alertname", m), ("m", m)]),
        annotations: Default::default(),
        starts_at: now,
        ends_at: None,
        generator_url: String::new(),
        request_id: None,
        updated_at: now,
    };
    d.ingest(vec![mk("mute"), mk("inactive"), mk("active")], now);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let got = sink.0.lock().clone();
    let names: Vec<&str> = got
        .iter()
        .map(|n| n.alerts[0].labels.get("m").unwrap())
        .collect();
    assert_eq!(names, ["active"]);
}

#[test]
fn check_config_takes_an_alertmanager_yml() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("am.yml");
    std::fs::write(&good, "route:\n  receiver: a\nreceivers:\n- name: a\n").unwrap();
    let bad = dir.path().join("bad.yml");
    std::fs::write(
        &bad,
        "route:\n  receiver: nope\n  routes:\n  - matchers: ['a=\"']\nreceivers:\n- name: a\n",
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_klaxon");
    let out = std::process::Command::new(bin)
        .args(["check", "config"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("SUCCESS: notify config, 1 receivers"));
    let out = std::process::Command::new(bin)
        .args(["check", "config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:2:13: undefined receiver \"nope\" used in route",
            bad.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{}:4:16: matcher value contains unescaped double quote",
            bad.display()
        )),
        "{err}"
    );
}

/// Restart without re-paging, end to end: a klaxon whose rule fires
/// notifies once; stopped and started again on the same storage path, the
/// same firing alert is not notified again within repeat_interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_klaxon_does_not_repage() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.rules"),
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: Page\n    expr: vector(1)\n",
    )
    .unwrap();
    let cfg_path = dir.path().join("k.yml");
    std::fs::write(
        &cfg_path,
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: ['*.rules']\nstorage:\n  path: {}\nnotify:\n  route:\n    receiver: pager\n    group_wait: 100ms\n    group_interval: 200ms\n  receivers:\n  - name: pager\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let start = || async {
        let app = klaxon::app::start(
            klaxon::settings::load_file(&cfg_path).unwrap(),
            klaxon::app::StartOptions::on("127.0.0.1:0"),
        )
        .await
        .unwrap();
        let sink = Arc::new(Collect::default());
        app.state.dispatcher.set_sink(sink.clone());
        (app, sink)
    };
    let (app, sink) = start().await;
    let deadline = Instant::now() + Duration::from_secs(15);
    while sink.0.lock().is_empty() {
        assert!(Instant::now() < deadline, "first page never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;

    let (app, sink) = start().await;
    // The rule fires again at once and is flushed every 200 ms from here.
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let listed = app.state.dispatcher.alerts();
    assert_eq!(listed.len(), 1, "the alert is back in the store");
    assert!(
        sink.0.lock().is_empty(),
        "re-paged after restart: {:?}",
        sink.0.lock()
    );
    app.stop().await;
}
