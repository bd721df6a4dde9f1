//! Head benchmarks: append via cached refs, series lookup/creation, selection
//! over 100k series, and (printed once, untimed) bytes per series for 10k
//! series × 720 samples.

// A benchmark: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, BatchSize, Criterion, Throughput};
use klaxon::model::{Labels, MatchType, Matcher};
use klaxon::tsdb::{Head, HeadOptions, SeriesRef};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// xorshift64*, fixed seed: the data is the same on every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Labels shaped like a node_exporter target's series.
fn labels(i: usize, names: usize) -> Labels {
    Labels::from_pairs([
        ("__name__", format!("metric_{}", i % names)),
        ("job", format!("job-{}", i % 10)),
        ("instance", format!("host-{}:9100", i / names)),
        ("env", "prod".to_string()),
    ])
}

const T0: i64 = 1_700_000_000_000;

/// Value generators per series kind: counters with small increments, gauges
/// that rarely change, and noisy gauges with two decimals.
fn value(kind: usize, prev: f64, rng: &mut Rng) -> f64 {
    match kind % 10 {
        0..=4 => prev + rng.below(100) as f64,
        5..=7 => {
            if rng.below(50) == 0 {
                (rng.below(10)) as f64
            } else {
                prev
            }
        }
        _ => (rng.below(10_000) as f64) / 100.0,
    }
}

fn fill(head: &Head, n: usize, samples: i64, interval: i64, jitter: u64) -> Vec<SeriesRef> {
    let mut rng = Rng(7);
    let refs: Vec<SeriesRef> = (0..n)
        .map(|i| head.get_or_create(&labels(i, 100)).0)
        .collect();
    let mut vals = vec![0.0f64; n];
    for s in 0..samples {
        for (i, r) in refs.iter().enumerate() {
            vals[i] = value(i, vals[i], &mut rng);
            let t = T0 + s * interval + rng.below(jitter + 1) as i64;
            head.append(*r, t, vals[i]).expect("in order");
        }
    }
    refs
}

fn rss_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Set in a child process that only measures memory, so its RSS is not
/// polluted by earlier allocations of the benchmark process.
const PROBE_ENV: &str = "KLAXON_HEAD_MEMORY_PROBE";

/// Fills a head (10k series x 720 samples at 5 s, `jitter` ms of scrape
/// jitter) and prints the estimate and the process' RSS growth.
fn memory_probe(jitter: u64) {
    let rss0 = rss_bytes();
    let head = Head::new(HeadOptions::default());
    let empty = head.stats().memory_bytes;
    fill(&head, 10_000, 720, 5_000, jitter);
    let st = head.stats();
    let rss1 = rss_bytes();
    let n = st.num_series;
    println!(
        "memory, 10k series x 720 samples, 0-{jitter} ms jitter: {} B/series estimated \
         ({} B chunk data + {} B everything else; {:.2} B/sample); RSS growth {} B/series",
        (st.memory_bytes - empty) / n,
        st.chunk_bytes / n,
        (st.memory_bytes - empty - st.chunk_bytes) / n,
        st.chunk_bytes as f64 / (n as f64 * 720.0),
        match (rss0, rss1) {
            (Some(a), Some(b)) => (b.saturating_sub(a) / n).to_string(),
            _ => "n/a".to_string(),
        }
    );
}

/// Printed, not timed: the memory figures, each from a fresh process.
fn report_memory() {
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    for jitter in [0, 4] {
        match std::process::Command::new(&exe)
            .env(PROBE_ENV, jitter.to_string())
            .output()
        {
            Ok(out) => print!("{}", String::from_utf8_lossy(&out.stdout)),
            Err(e) => println!("memory probe failed: {e}"),
        }
    }
}

fn bench_append(c: &mut Criterion) {
    let mut g = c.benchmark_group("append");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(10_000 * 120));
    g.bench_function("10k_series_x_120_samples_cached_ref", |b| {
        b.iter_batched(
            || {
                let head = Head::new(HeadOptions::default());
                let refs: Vec<SeriesRef> = (0..10_000)
                    .map(|i| head.get_or_create(&labels(i, 100)).0)
                    .collect();
                (head, refs)
            },
            |(head, refs)| {
                for s in 0..120i64 {
                    let t = T0 + s * 15_000;
                    for (i, r) in refs.iter().enumerate() {
                        let v = (s * (i as i64 % 7 + 1)) as f64;
                        head.append(*r, t, v).expect("in order");
                    }
                }
                head
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn bench_get_or_create(c: &mut Criterion) {
    let mut g = c.benchmark_group("get_or_create");
    g.throughput(Throughput::Elements(1));
    let head = Head::new(HeadOptions::default());
    let known: Vec<Labels> = (0..10_000).map(|i| labels(i, 100)).collect();
    for l in &known {
        head.get_or_create(l);
    }
    let mut i = 0;
    g.bench_function("hit", |b| {
        b.iter(|| {
            i = (i + 1) % known.len();
            black_box(head.get_or_create(&known[i]))
        })
    });
    // Misses: fresh label sets, built outside the timing, into a head that
    // is replaced every 10k creations so it does not grow without bound.
    g.bench_function("miss", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut done = 0u64;
            let mut next = 0usize;
            while done < iters {
                let batch = (iters - done).min(10_000) as usize;
                let fresh: Vec<Labels> = (next..next + batch).map(|i| labels(i, 100)).collect();
                next += batch;
                let head = Head::new(HeadOptions::default());
                let start = Instant::now();
                for l in &fresh {
                    black_box(head.get_or_create(l));
                }
                total += start.elapsed();
                done += batch as u64;
            }
            total
        })
    });
    g.finish();
}

fn bench_select(c: &mut Criterion) {
    let head = Head::new(HeadOptions::default());
    let refs: Vec<SeriesRef> = (0..100_000)
        .map(|i| head.get_or_create(&labels(i, 100)).0)
        .collect();
    for s in 0..4 {
        for r in &refs {
            head.append(*r, T0 + s * 15_000, s as f64)
                .expect("in order");
        }
    }
    let m = |k, n: &str, v: &str| Matcher::new(k, n, v).expect("valid matcher");
    let cases = [
        (
            "eq_name_1000_series",
            vec![m(MatchType::Equal, "__name__", "metric_42")],
        ),
        (
            "eq_name_and_regex_instance_111_series",
            vec![
                m(MatchType::Equal, "__name__", "metric_42"),
                m(MatchType::RegexMatch, "instance", "host-1.*"),
            ],
        ),
        (
            "regex_instance_only_200_series",
            vec![m(MatchType::RegexMatch, "instance", "host-(12|345):9100")],
        ),
        (
            "regex_literal_set_name_3000_series",
            vec![m(
                MatchType::RegexMatch,
                "__name__",
                "metric_1|metric_2|metric_3",
            )],
        ),
    ];
    let mut g = c.benchmark_group("select_100k_series");
    for (name, ms) in &cases {
        let n = head.select(ms, i64::MIN, i64::MAX).len();
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(*name, |b| {
            b.iter(|| black_box(head.select(ms, T0, T0 + 60_000)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench_append, bench_get_or_create, bench_select);

fn main() {
    if let Some(jitter) = std::env::var(PROBE_ENV).ok().and_then(|j| j.parse().ok()) {
        memory_probe(jitter);
        return;
    }
    report_memory();
    benches();
    Criterion::default().configure_from_args().final_summary();
}
