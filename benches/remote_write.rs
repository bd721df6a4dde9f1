//! Remote write: encode and decode of a batch shaped like Prometheus' (2000
//! series × 1 sample, node_exporter-like labels), snappy included, and the
//! receiver appending such a batch to a head whose series already exist
//! (the steady state of a sidecar).

// A benchmark: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use klaxon::metrics::Registry;
use klaxon::model::Label;
use klaxon::remote::proto::{decode_snappy, encode_snappy, Sample, TimeSeries, WriteRequest};
use klaxon::remote::receive::Receiver;
use klaxon::tsdb::{Head, HeadOptions};
use std::hint::black_box;
use std::sync::Arc;

const SERIES: usize = 2000;
const T0: i64 = 1_700_000_000_000;

fn batch(t: i64) -> WriteRequest {
    WriteRequest {
        timeseries: (0..SERIES)
            .map(|i| TimeSeries {
                labels: vec![
                    Label::new("__name__", format!("node_metric_{}", i % 200)),
                    Label::new("cpu", format!("{}", i % 8)),
                    Label::new("instance", format!("host-{}:9100", i / 200)),
                    Label::new("job", "node"),
                ],
                samples: vec![Sample {
                    value: (i as f64) * 1.5 + (t % 1000) as f64,
                    timestamp: t,
                }],
                histograms: Vec::new(),
                exemplars: Vec::new(),
            })
            .collect(),
        metadata: vec![],
    }
}

fn bench_codec(c: &mut Criterion) {
    let req = batch(T0);
    let body = encode_snappy(&req);
    let mut pb = Vec::new();
    req.encode(&mut pb);
    eprintln!(
        "remote_write batch: {SERIES} series, protobuf {} bytes, snappy {} bytes",
        pb.len(),
        body.len()
    );
    let mut g = c.benchmark_group("remote_write_codec");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("encode_snappy_2000", |b| {
        b.iter(|| black_box(encode_snappy(black_box(&req))))
    });
    g.bench_function("decode_snappy_2000", |b| {
        b.iter(|| black_box(decode_snappy(black_box(&body), 32 << 20).unwrap()))
    });
    g.finish();
}

fn bench_receive(c: &mut Criterion) {
    let head = Arc::new(Head::new(HeadOptions::default()));
    let recv = Receiver::new(head, &Registry::new());
    recv.receive(&encode_snappy(&batch(T0))).unwrap();
    let mut t = T0;
    let mut g = c.benchmark_group("remote_write_receive");
    g.throughput(Throughput::Elements(SERIES as u64));
    g.bench_function("existing_series_2000", |b| {
        b.iter_batched(
            || {
                t += 15_000;
                encode_snappy(&batch(t))
            },
            |body| black_box(recv.receive(&body).unwrap()),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench_codec, bench_receive);
criterion_main!(benches);
