//! Relabeling cost on the two hot paths: metric relabeling (once per scraped
//! sample, usually a `drop`/`keep` on `__name__`) and target relabeling
//! (once per discovered target, longer rule chains).

use criterion::{criterion_group, criterion_main, Criterion};
use klaxon::config::relabel::{process, process_builder};
use klaxon::config::RelabelConfig;
use klaxon::model::Labels;
use klaxon::settings::load_str;
use std::hint::black_box;

fn configs(yaml: &str) -> Vec<RelabelConfig> {
    let indented: String = yaml.lines().map(|l| format!("      {l}\n")).collect();
    let text = format!("scrape_configs:\n  - job_name: b\n    relabel_configs:\n{indented}");
    load_str(&text, "bench")
        .map(|c| c.scrape_configs[0].relabel_configs.clone())
        .unwrap_or_default()
}

fn bench(c: &mut Criterion) {
    let metric = configs(
        "- source_labels: [__name__]\n  regex: go_gc_.*|process_.*\n  action: drop\n- source_labels: [__name__, le]\n  regex: http_request_duration_seconds_bucket;(0.005|0.01)\n  action: drop",
    );
    let sample = Labels::from_pairs([
        ("__name__", "http_request_duration_seconds_bucket"),
        ("code", "200"),
        ("handler", "/api/v1/query"),
        ("instance", "10.0.0.1:9100"),
        ("job", "node"),
        ("le", "0.25"),
        ("method", "GET"),
    ]);
    assert!(process(&sample, &metric).is_some());
    c.bench_function("metric_relabel_2_drop_rules", |b| {
        b.iter(|| {
            let mut builder = black_box(&sample).builder();
            black_box(process_builder(&mut builder, &metric))
        })
    });

    let target = configs(
        "- source_labels: [__meta_kubernetes_pod_annotation_prometheus_io_scrape]\n  regex: 'true'\n  action: keep\n- source_labels: [__address__, __meta_kubernetes_pod_annotation_prometheus_io_port]\n  regex: '([^:]+)(?::\\d+)?;(\\d+)'\n  replacement: $1:$2\n  target_label: __address__\n- regex: __meta_kubernetes_pod_label_(.+)\n  action: labelmap\n- source_labels: [__meta_kubernetes_namespace]\n  target_label: namespace\n- source_labels: [__address__]\n  modulus: 8\n  target_label: __tmp_hash\n  action: hashmod\n- source_labels: [__tmp_hash]\n  regex: '[0-7]'\n  action: keep\n- regex: __meta_.*\n  action: labeldrop",
    );
    let tgt = Labels::from_pairs([
        ("__address__", "10.1.2.3:8080"),
        ("__meta_kubernetes_namespace", "prod"),
        (
            "__meta_kubernetes_pod_annotation_prometheus_io_port",
            "9102",
        ),
        (
            "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
            "true",
        ),
        ("__meta_kubernetes_pod_label_app", "api"),
        ("__meta_kubernetes_pod_label_team", "core"),
        ("__meta_kubernetes_pod_name", "api-7d9f"),
        ("__metrics_path__", "/metrics"),
        ("__scheme__", "http"),
        ("job", "kubernetes-pods"),
    ]);
    assert!(process(&tgt, &target).is_some());
    c.bench_function("target_relabel_7_rules", |b| {
        b.iter(|| black_box(process(black_box(&tgt), &target)))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
