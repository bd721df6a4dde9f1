//! Exposition parser throughput on the reference payloads scaled to ~20 MB.
//!
//! `parse/entries` is the scrape hot path (every entry, no label decoding: the
//! series cache hits); `parse/entries+labels` also decodes every sample's labels
//! (the cache-miss path of a first scrape).

// A benchmark: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use klaxon::scrape::parser::{Entry, Format, Parser};
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
    g.bench_function("entries", |b| {
        b.iter(|| {
            let mut p = Parser::new(black_box(&input), Format::PrometheusText);
            let mut n = 0usize;
            while let Some(e) = p.next().expect("reference payload parses") {
                if let Entry::Sample(s) = e {
                    n += s.series.len();
                    black_box(s.value);
                }
            }
            n
        })
    });
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

criterion_group!(benches, bench);
criterion_main!(benches);
