//! Cost of the outbox's synchronous path per flushed group: rendering each
//! integration's payload (templates + JSON) and the durable insert before
//! the first attempt. Sending is network-bound and not measured here.

use criterion::{criterion_group, criterion_main, Criterion};
use klaxon::config::Secret;
use klaxon::model::Labels;
use klaxon::notify::config::GlobalConfig;
use klaxon::notify::outbox::render;
use klaxon::notify::receivers::{resolve_receivers, RawReceiver, Receiver};
use klaxon::notify::template::template_set;
use klaxon::notify::{Alert, Notification};
use klaxon::store::notify::NewDelivery;
use klaxon::store::Store;
use std::hint::black_box;

fn receivers() -> Vec<Receiver> {
    let yaml = "- name: all\n  pagerduty_configs:\n    - routing_key: k\n  slack_configs:\n    - api_url: http://127.0.0.1:1/s\n  email_configs:\n    - to: a@example.org\n  webhook_configs:\n    - url: http://127.0.0.1:1/w\n";
    let raw: Vec<serde_saphyr::Spanned<RawReceiver>> =
        serde_saphyr::from_str(yaml).unwrap_or_default();
    let global = GlobalConfig {
        smtp_from: Some("k@example.org".into()),
        smtp_smarthost: Some("127.0.0.1:25".into()),
        slack_api_url: Some(Secret::new("http://127.0.0.1:1/")),
        ..Default::default()
    };
    resolve_receivers(&raw, &global, "bench", None).unwrap_or_default()
}

fn group(n: usize) -> Notification {
    let alerts = (0..n)
        .map(|i| Alert {
            labels: Labels::from_pairs([
                ("alertname", "DiskFull".to_string()),
                ("instance", format!("host-{i}:9100")),
                ("severity", "critical".to_string()),
                ("job", "node".to_string()),
            ]),
            annotations: Labels::from_pairs([
                ("summary", format!("Disk almost full on host-{i}")),
                ("description", "Only 3% left on /var".to_string()),
                (
                    "runbook_url",
                    "https://runbooks.example.org/disk".to_string(),
                ),
            ]),
            starts_at: 1_700_000_000_000,
            ends_at: None,
            generator_url: "http://prometheus:9090/graph?g0.expr=x".into(),
            request_id: None,
            updated_at: 1_700_000_000_000,
        })
        .collect();
    Notification {
        receiver: "all".into(),
        group_key: "{}:{alertname=\"DiskFull\"}".into(),
        group_labels: Labels::from_pairs([("alertname", "DiskFull")]),
        alerts,
        external_url: "http://klaxon:9090".into(),
        created_at: 1_700_000_100_000,
    }
}

fn bench(c: &mut Criterion) {
    let recv = receivers();
    let Some(r) = recv.first() else { return };
    let set = template_set(&[]).unwrap_or_default();
    let n = group(10);
    for integ in &r.integrations {
        c.bench_function(&format!("render_{}_10_alerts", integ.kind()), |b| {
            b.iter(|| black_box(render(integ, black_box(&n), &set)))
        });
    }
    let Ok(store) = Store::open_in_memory() else {
        return;
    };
    let payload =
        serde_json::to_string(&render(&r.integrations[3], &n, &set).ok()).unwrap_or_default();
    let row = NewDelivery {
        receiver: "all".into(),
        integration: "webhook".into(),
        integration_index: 3,
        group_key: n.group_key.clone(),
        alertnames: vec!["DiskFull".into()],
        firing: 10,
        resolved: 0,
        payload,
        created_at: n.created_at,
        deadline_at: n.created_at + 3_600_000,
        unsendable: false,
    };
    c.bench_function("store_insert_delivery_in_memory", |b| {
        b.iter(|| black_box(store.insert_deliveries(std::slice::from_ref(&row))))
    });
    if let Ok(dir) = tempfile::tempdir() {
        if let Ok(file_store) = Store::open(dir.path()) {
            c.bench_function("store_insert_delivery_file_fsync", |b| {
                b.iter(|| black_box(file_store.insert_deliveries(std::slice::from_ref(&row))))
            });
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
