//! One host collection and one PostgreSQL collection (+ text encoding), with
//! allocations counted by a wrapping global allocator: printed once per
//! benchmark as allocations and bytes per collection.
//!
//! The PostgreSQL part needs a server: set `KLAXON_BENCH_PG_DSN` (e.g. the
//! throwaway one `benches/compare_exporters.py` starts, or any loopback
//! `postgresql://postgres@127.0.0.1:5432/postgres?sslmode=disable`);
//! without it only the host part runs.
//!
//!   cargo bench --bench exporters

// A benchmark: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use klaxon::exporters::config::{Dsn, PostgresConfig};
use klaxon::exporters::host::{collect, HostOptions};
use klaxon::exporters::postgres::PostgresExporter;
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};

struct Counting;

static ALLOCS: AtomicU64 = AtomicU64::new(0);
static BYTES: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(l.size() as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        // SAFETY: `p` came from `alloc` above with the same layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(new as u64, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations and bytes of `n` runs of `f`, per run.
fn count<T>(n: u64, mut f: impl FnMut() -> T) -> (u64, u64) {
    let (a0, b0) = (
        ALLOCS.load(Ordering::Relaxed),
        BYTES.load(Ordering::Relaxed),
    );
    for _ in 0..n {
        black_box(f());
    }
    (
        (ALLOCS.load(Ordering::Relaxed) - a0) / n,
        (BYTES.load(Ordering::Relaxed) - b0) / n,
    )
}

fn bench(c: &mut Criterion) {
    let opts = HostOptions::default();
    let host = || klaxon::metrics::encode(&collect(&opts), false);
    let (a, b) = count(20, host);
    println!("host collection + encode: {a} allocations, {b} bytes allocated per collection");
    c.bench_function("exporters/host", |bch| bch.iter(host));

    let Ok(dsn) = std::env::var("KLAXON_BENCH_PG_DSN") else {
        println!("KLAXON_BENCH_PG_DSN not set: PostgreSQL collection not measured");
        return;
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let pg = PostgresExporter::new(&PostgresConfig {
        dsns: vec![Dsn(dsn)],
        ..Default::default()
    })
    .expect("exporter");
    let render = || rt.block_on(pg.render());
    let (a, b) = count(20, render);
    println!("postgres collection + encode: {a} allocations, {b} bytes allocated per collection");
    c.bench_function("exporters/postgres", |bch| bch.iter(render));
}

criterion_group!(benches, bench);
criterion_main!(benches);
