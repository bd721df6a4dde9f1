//! A real Prometheus 2.42 with klaxon as its Alertmanager: an always-firing
//! rule's alert arrives through `POST /api/v2/alerts`, is listed by
//! `GET /api/v2/alerts` and flushed to the notification sink.

use crate::common;
use common::free_port;

use klaxon::notify::{Notification, NotificationSink};
use parking_lot::Mutex;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROMETHEUS: &str = "/usr/bin/prometheus";

#[derive(Default)]
struct Collect(Mutex<Vec<Notification>>);

impl NotificationSink for Collect {
    fn enqueue(&self, n: Notification) {
        self.0.lock().push(n);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_alerts_flow_through_klaxon() {
    if !Path::new(PROMETHEUS).exists() {
        assert!(
            !common::is_ci(),
            "prometheus missing under CI (../shared/tools/install-peers.sh)"
        );
        eprintln!("SKIPPED: {PROMETHEUS} not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "storage:\n  path: {}\nnotify:\n  route:\n    receiver: oncall\n    group_by: [alertname]\n    group_wait: 100ms\n  receivers:\n  - name: oncall\n",
        dir.path().join("kx").display()
    );
    let cfg = klaxon::settings::load_str(&text, "klaxon.yml").unwrap();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let sink = Arc::new(Collect::default());
    app.state.dispatcher.set_sink(sink.clone());

    std::fs::write(
        dir.path().join("rules.yml"),
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: AlwaysFiring\n    expr: vector(1)\n    labels:\n      severity: page\n    annotations:\n      summary: always\n      runbook_url: http://runbooks/always\n",
    )
    .unwrap();
    let prom_port = free_port();
    std::fs::write(
        dir.path().join("prometheus.yml"),
        format!(
            "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\nalerting:\n  alertmanagers:\n  - api_version: v2\n    static_configs:\n    - targets: ['{}']\n",
            app.addr
        ),
    )
    .unwrap();
    // The first evaluation can run before the Alertmanager list is
    // discovered (that send is dropped); resend soon after.
    let _prom = common::spawn_prometheus(
        Path::new(PROMETHEUS),
        dir.path(),
        prom_port,
        &["--rules.alert.resend-delay=1s"],
    );

    let deadline = Instant::now() + Duration::from_secs(40);
    let n = loop {
        if let Some(n) = sink.0.lock().first().cloned() {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "no notification from Prometheus' alert"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(n.receiver, "oncall");
    assert_eq!(n.group_key, "{}:{alertname=\"AlwaysFiring\"}");
    let a = &n.alerts[0];
    assert_eq!(a.labels.get("severity"), Some("page"));
    assert_eq!(
        a.annotations.get("runbook_url"),
        Some("http://runbooks/always")
    );
    assert!(a.ends_at.is_none(), "firing");
    assert!(
        a.generator_url
            .contains(&format!(":{prom_port}/graph?g0.expr=vector%281%29")),
        "{}",
        a.generator_url
    );

    let url = format!("http://{}/api/v2/alerts", app.addr);
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).unwrap();
    let listed = body.as_array().unwrap();
    assert_eq!(listed.len(), 1, "{body}");
    assert_eq!(listed[0]["labels"]["alertname"], "AlwaysFiring");
    assert_eq!(listed[0]["status"]["state"], "active");
    assert_eq!(listed[0]["receivers"][0]["name"], "oncall");
    app.stop().await;
}
