//! Exposition parser throughput on the reference payloads scaled to ~20 MB.
//!
//! `parse/entries` is the scrape hot path (every entry, no label decoding: the
//! series cache hits); `parse/entries+labels` also decodes every sample's labels
//! (the cache-miss path of a first scrape).
//!
//! `protobuf/*`: the same families encoded as Prometheus' delimited protobuf
//! (counters, gauges, untyped, summaries and classic histograms as such):
//! `protobuf/convert` decodes and converts them to the text lines the scrape
//! loop reads, `protobuf/convert+entries` adds the parse of those lines (the
//! whole cache-hit path of a protobuf scrape); `text/entries` is the text
//! payload of the same families for the ratio. Throughput is in protobuf
//! bytes; samples per second are the sample count over the time.

// A benchmark: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use klaxon::scrape::parser::protobuf::{
    self, Bucket, Counter, Gauge, LabelPair, Metric, MetricFamily, ProtoHistogram, Quantile,
    Summary, Untyped,
};
use klaxon::scrape::parser::{Entry, Format, MetricType, Parser};
use std::hint::black_box;

const TARGET_BYTES: usize = 20 << 20;

fn payload() -> Vec<u8> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/reference/metrics");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("reference payloads in {dir}: {e}"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("prom"))
        .collect();
    files.sort();
    let mut one = Vec::new();
    for f in files {
        one.extend(std::fs::read(&f).unwrap_or_else(|e| panic!("{}: {e}", f.display())));
        if one.last() != Some(&b'\n') {
            one.push(b'\n');
        }
    }
    assert!(!one.is_empty(), "no reference payloads");
    let mut out = Vec::with_capacity(TARGET_BYTES + one.len());
    while out.len() < TARGET_BYTES {
        out.extend_from_slice(&one);
    }
    out
}

fn bench(c: &mut Criterion) {
    let input = payload();
    let mut g = c.benchmark_group("parse");
    g.throughput(Throughput::Bytes(input.len() as u64));
    g.sample_size(20);
    g.bench_function("entries", |b| b.iter(|| entries(black_box(&input))));
    g.bench_function("entries+labels", |b| {
        b.iter(|| {
            let mut p = Parser::new(black_box(&input), Format::PrometheusText);
            let mut n = 0usize;
            while let Some(e) = p.next().expect("reference payload parses") {
                if let Entry::Sample(s) = e {
                    n += s.labels().len();
                }
            }
            n
        })
    });
    g.finish();
}

/// The text payload's families as protobuf: one `MetricFamily` per TYPE
/// block; summaries and histograms regrouped from their series. Returns
/// the payload and its number of samples (as the converted text has them).
fn to_protobuf(text: &[u8]) -> (Vec<u8>, u64) {
    let mut p = Parser::new(text, Format::PrometheusText);
    let mut fams: Vec<MetricFamily> = Vec::new();
    let mut cur: Option<(String, MetricType)> = None;
    while let Some(e) = p.next().expect("reference payload parses") {
        let s = match e {
            Entry::Type { family, kind } => {
                cur = Some((family.into_owned(), kind));
                continue;
            }
            Entry::Sample(s) => s,
            _ => continue,
        };
        let labels = s.labels();
        let name = labels.metric_name().to_string();
        let (fam, kind) = match &cur {
            Some((f, k)) if name.starts_with(f.as_str()) => (f.clone(), *k),
            _ => (name.clone(), MetricType::Unknown),
        };
        let t = match kind {
            MetricType::Counter => 0,
            MetricType::Gauge => 1,
            MetricType::Summary => 2,
            MetricType::Histogram => 4,
            _ => 3,
        };
        if fams
            .last()
            .is_none_or(|f| f.name.as_deref() != Some(fam.as_str()))
        {
            fams.push(MetricFamily {
                name: Some(fam.clone()),
                help: Some(String::new()),
                r#type: Some(t),
                metric: Vec::new(),
                unit: None,
            });
        }
        let f = fams.last_mut().unwrap();
        let pairs: Vec<LabelPair> = labels
            .iter()
            .filter(|l| !matches!(l.name.as_str(), "__name__" | "le" | "quantile"))
            .map(|l| LabelPair {
                name: Some(l.name.clone()),
                value: Some(l.value.clone()),
            })
            .collect();
        let v = s.value;
        match t {
            0 | 1 | 3 => f.metric.push(Metric {
                label: pairs,
                counter: (t == 0).then_some(Counter {
                    value: Some(v),
                    ..Counter::default()
                }),
                gauge: (t == 1).then_some(Gauge { value: Some(v) }),
                untyped: (t == 3).then_some(Untyped { value: Some(v) }),
                ..Metric::default()
            }),
            _ => {
                if f.metric.last().is_none_or(|m| m.label != pairs) {
                    f.metric.push(Metric {
                        label: pairs,
                        summary: (t == 2).then(Summary::default),
                        histogram: (t == 4).then(ProtoHistogram::default),
                        ..Metric::default()
                    });
                }
                let m = f.metric.last_mut().unwrap();
                let suffix = &name[fam.len()..];
                if let Some(sm) = m.summary.as_mut() {
                    match suffix {
                        "_count" => sm.sample_count = Some(v as u64),
                        "_sum" => sm.sample_sum = Some(v),
                        _ => sm.quantile.push(Quantile {
                            quantile: labels.get("quantile").and_then(|q| q.parse().ok()),
                            value: Some(v),
                        }),
                    }
                } else if let Some(h) = m.histogram.as_mut() {
                    match suffix {
                        "_count" => h.sample_count = Some(v as u64),
                        "_sum" => h.sample_sum = Some(v),
                        _ => h.bucket.push(Bucket {
                            cumulative_count: Some(v as u64),
                            upper_bound: labels.get("le").and_then(|q| q.parse().ok()),
                            ..Bucket::default()
                        }),
                    }
                }
            }
        }
    }
    let buf = protobuf::encode_delimited(&fams);
    let samples = u64::from(
        protobuf::convert(&buf, protobuf::Options::default())
            .expect("converted payload")
            .samples,
    );
    (buf, samples)
}

fn bench_protobuf(c: &mut Criterion) {
    // A quarter of the text target: the families are re-encoded from it.
    let mut text = payload();
    text.truncate(text.len() / 4);
    let cut = text.iter().rposition(|b| *b == b'\n').unwrap_or(0);
    text.truncate(cut + 1);
    let (proto, samples) = to_protobuf(&text);
    // The text of exactly those families (what a text scrape of them reads).
    let conv = protobuf::convert(&proto, protobuf::Options::default()).unwrap();
    eprintln!(
        "protobuf bench: {} protobuf bytes, {} text bytes, {samples} samples",
        proto.len(),
        conv.text.len()
    );
    let mut g = c.benchmark_group("protobuf");
    g.throughput(Throughput::Bytes(proto.len() as u64));
    g.sample_size(20);
    g.bench_function("convert", |b| {
        b.iter(|| {
            protobuf::convert(black_box(&proto), protobuf::Options::default())
                .unwrap()
                .samples
        })
    });
    g.bench_function("convert+entries", |b| {
        b.iter(|| {
            let c = protobuf::convert(black_box(&proto), protobuf::Options::default()).unwrap();
            entries(&c.text)
        })
    });
    g.finish();
    let mut g = c.benchmark_group("text");
    g.throughput(Throughput::Bytes(conv.text.len() as u64));
    g.sample_size(20);
    g.bench_function("entries", |b| b.iter(|| entries(black_box(&conv.text))));
    g.finish();
}

/// Every entry of a text payload, as the scrape's cache-hit path reads it.
fn entries(text: &[u8]) -> usize {
    let mut p = Parser::new(text, Format::PrometheusText);
    let mut n = 0usize;
    while let Some(e) = p.next().expect("payload parses") {
        if let Entry::Sample(s) = e {
            n += s.series.len();
            black_box(s.value);
        }
    }
    n
}

criterion_group!(benches, bench, bench_protobuf);
criterion_main!(benches);
