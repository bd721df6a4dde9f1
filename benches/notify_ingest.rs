//! Alerts accepted per second by the notify stage (goal: ≥ 10k/s): parsing
//! a `POST /api/v2/alerts` body and ingesting it into the dispatcher (merge
//! into the alert store, inhibition cache, routing, aggregation groups).
//! A batch is 1000 alerts, 10 alertnames × 100 instances, as Prometheus
//! sends them (64 per request by default; bigger batches only amortize).

// A benchmark: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use klaxon::api::alertmanager::parse_postable_alerts;
use klaxon::model::now_millis;
use klaxon::notify::dispatch::{Dispatcher, DispatcherOptions};
use klaxon::notify::{Notification, NotificationSink};
use std::hint::black_box;
use std::sync::Arc;

struct Discard;
impl NotificationSink for Discard {
    fn enqueue(&self, n: Notification) {
        black_box(n);
    }
}

const CONFIG: &str = "route:
  receiver: default
  group_by: [alertname, cluster]
  group_wait: 1h
  routes:
  - matchers: ['severity=\"page\"']
    receiver: pager
    continue: true
  - matchers: ['team=~\"db|storage\"']
    receiver: db
inhibit_rules:
- source_matchers: [severity=page]
  target_matchers: [severity=warning]
  equal: [alertname, cluster]
receivers: [{name: default}, {name: pager}, {name: db}]
";

fn body(n: usize) -> String {
    let items: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"labels":{{"alertname":"Alert{}","cluster":"c1","instance":"10.0.{}.{}:9100","job":"node","severity":"{}","team":"{}"}},"annotations":{{"summary":"instance down","runbook_url":"https://runbooks/x"}},"startsAt":"2026-11-23T04:00:00.000Z","endsAt":"2026-11-23T05:00:00.000Z","generatorURL":"http://prometheus:9090/graph?g0.expr=up+%3D%3D+0"}}"#,
                i % 10,
                i / 250,
                i % 250,
                if i % 3 == 0 { "page" } else { "warning" },
                if i % 2 == 0 { "db" } else { "web" }
            )
        })
        .collect();
    format!("[{}]", items.join(","))
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let cfg = Arc::new(klaxon::notify::config::load_str(CONFIG, "bench.yml", None).unwrap());
    let text = body(1000);
    let (alerts, errs) = parse_postable_alerts(text.as_bytes(), now_millis()).unwrap();
    assert!(errs.is_empty() && alerts.len() == 1000);

    let mut g = c.benchmark_group("notify_ingest");
    g.throughput(Throughput::Elements(1000));
    g.bench_function("parse_post_body_1000", |b| {
        b.iter(|| black_box(parse_postable_alerts(black_box(text.as_bytes()), 0)))
    });
    g.bench_function("ingest_new_1000", |b| {
        b.iter_batched(
            || {
                let d =
                    Dispatcher::new(cfg.clone(), Arc::new(Discard), DispatcherOptions::default())
                        .unwrap();
                (d, alerts.clone())
            },
            |(d, a)| d.ingest(a, now_millis()),
            BatchSize::PerIteration,
        )
    });
    let d = Dispatcher::new(cfg.clone(), Arc::new(Discard), DispatcherOptions::default()).unwrap();
    d.ingest(alerts.clone(), now_millis());
    g.bench_function("ingest_update_1000", |b| {
        b.iter_batched(
            || alerts.clone(),
            |a| d.ingest(a, now_millis()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
