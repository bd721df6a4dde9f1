//! Behaviour of the TSDB head through its public API, checked against a
//! brute-force model where possible.

use klaxon::model::{Labels, MatchType, Matcher, STALE_NAN};
use klaxon::tsdb::{AppendError, Head, HeadOptions, SeriesData};
use std::collections::BTreeSet;
use std::sync::Arc;

use crate::common;
use common::Rng;

const NAMES: &[&str] = &["up", "http_requests_total", "node_cpu", "a_b"];
const JOBS: &[&str] = &["", "api", "node", "db", "api-2"];
const ENVS: &[&str] = &["", "", "prod", "dev", "Prod"];

fn random_labels(rng: &mut Rng) -> Labels {
    Labels::from_pairs([
        ("__name__", rng.pick(NAMES).to_string()),
        ("job", rng.pick(JOBS).to_string()),
        ("env", rng.pick(ENVS).to_string()),
        ("instance", format!("host-{}", rng.below(40))),
    ])
}

fn random_matcher(rng: &mut Rng) -> Matcher {
    let name = rng.pick(&["__name__", "job", "env", "instance", "absent"]);
    let kind = [
        MatchType::Equal,
        MatchType::NotEqual,
        MatchType::RegexMatch,
        MatchType::RegexNoMatch,
    ][rng.below(4) as usize];
    let value = rng.pick(&[
        "",
        "up",
        "api",
        "node",
        "prod",
        "dev",
        "host-1",
        "host-1.*",
        "api|db",
        "api|",
        ".*",
        ".+",
        "h.*-3",
        "(?i)prod",
        "node_cpu|up|nope",
        "nope",
        "a_b|http_requests_total",
    ]);
    Matcher::new(kind, name, value).expect("test regexes are valid")
}

/// The model: every series' labels and samples, scanned linearly.
struct Model(Vec<(Labels, Vec<(i64, f64)>)>);

impl Model {
    fn matching(&self, ms: &[Matcher], mint: i64, maxt: i64) -> Vec<SeriesData> {
        let mut out: Vec<SeriesData> = self
            .0
            .iter()
            .filter(|(l, _)| ms.iter().all(|m| m.matches(l.get(&m.name).unwrap_or(""))))
            .map(|(l, s)| {
                SeriesData::floats(
                    l.clone(),
                    s.iter()
                        .copied()
                        .filter(|(t, _)| mint <= *t && *t <= maxt)
                        .collect(),
                )
            })
            .filter(|d| !d.samples.is_empty())
            .collect();
        out.sort_by(|a, b| a.labels.cmp(&b.labels));
        out
    }
}

fn build(rng: &mut Rng, n: usize, opts: HeadOptions) -> (Head, Model) {
    let head = Head::new(opts);
    let mut model: Vec<(Labels, Vec<(i64, f64)>)> = Vec::new();
    for _ in 0..n {
        let l = random_labels(rng);
        let (r, created) = head.get_or_create(&l);
        if !created {
            continue;
        }
        let mut t = rng.below(10_000) as i64;
        let mut samples = Vec::new();
        for _ in 0..rng.below(300) {
            let v = (rng.below(1000) as f64) / 4.0;
            head.append(r, t, v).expect("increasing timestamps");
            samples.push((t, v));
            t += 1 + rng.below(2_000) as i64;
        }
        model.push((l, samples));
    }
    (head, Model(model))
}

#[test]
fn select_and_label_queries_match_brute_force() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let (head, model) = build(
        &mut rng,
        1500,
        HeadOptions {
            samples_per_chunk: 40,
        },
    );
    assert_eq!(head.num_series(), model.0.len());
    let mut non_empty = 0;
    for q in 0..400 {
        let ms: Vec<Matcher> = (0..1 + rng.below(3))
            .map(|_| random_matcher(&mut rng))
            .collect();
        let (mint, maxt) = match rng.below(4) {
            0 => (i64::MIN, i64::MAX),
            _ => {
                let a = rng.below(400_000) as i64;
                (a, a + rng.below(200_000) as i64)
            }
        };
        let want = model.matching(&ms, mint, maxt);
        let got = head.select(&ms, mint, maxt);
        let desc: Vec<String> = ms.iter().map(|m| m.to_string()).collect();
        assert_eq!(got, want, "query {q}: {desc:?} [{mint}, {maxt}]");
        non_empty += usize::from(!want.is_empty());

        let want_names: BTreeSet<String> = want
            .iter()
            .flat_map(|d| d.labels.iter().map(|l| l.name.clone()))
            .collect();
        let got_names = head.label_names(&ms, mint, maxt);
        assert_eq!(
            got_names,
            want_names.into_iter().collect::<Vec<_>>(),
            "names {q}: {desc:?}"
        );

        let name = rng.pick(&["job", "env", "instance", "absent"]);
        let want_vals: BTreeSet<String> = want
            .iter()
            .filter_map(|d| d.labels.get(name).map(str::to_string))
            .collect();
        let got_vals = head.label_values(name, &ms, mint, maxt);
        assert_eq!(
            got_vals,
            want_vals.into_iter().collect::<Vec<_>>(),
            "values {q}: {desc:?}"
        );
    }
    assert!(
        non_empty > 60,
        "too few queries selected anything: {non_empty}"
    );

    // Without matchers over all time: the index fast path.
    let all_names: BTreeSet<String> = model
        .0
        .iter()
        .flat_map(|(l, _)| l.iter().map(|l| l.name.clone()))
        .collect();
    assert_eq!(
        head.label_names(&[], i64::MIN, i64::MAX),
        all_names.into_iter().collect::<Vec<_>>()
    );
    let jobs: BTreeSet<String> = model
        .0
        .iter()
        .filter_map(|(l, _)| l.get("job").map(str::to_string))
        .collect();
    assert_eq!(
        head.label_values("job", &[], i64::MIN, i64::MAX),
        jobs.into_iter().collect::<Vec<_>>()
    );
}

#[test]
fn append_errors_and_counters() {
    let head = Head::default();
    let (r, _) = head.get_or_create(&Labels::from_pairs([("__name__", "x")]));
    head.append(r, 1000, 1.0).unwrap();
    assert_eq!(
        head.append(r, 1000, 1.0),
        Ok(()),
        "exact duplicate is a no-op"
    );
    assert_eq!(
        head.append(r, 1000, 2.0),
        Err(AppendError::DuplicateTimestamp)
    );
    assert_eq!(head.append(r, 999, 2.0), Err(AppendError::OutOfOrder));
    head.append(r, 2000, STALE_NAN).unwrap();
    assert_eq!(head.append(r, 2000, STALE_NAN), Ok(()));
    assert_eq!(
        AppendError::DuplicateTimestamp.to_string(),
        "duplicate sample for timestamp"
    );
    assert_eq!(AppendError::OutOfOrder.to_string(), "out of order sample");
    assert_eq!(AppendError::OutOfBounds.to_string(), "out of bounds");
    assert_eq!(
        head.try_get_or_create(&Labels::empty()),
        Err(AppendError::EmptyLabels)
    );
    head.truncate(1500);
    assert_eq!(head.append(r, 1499, 1.0), Err(AppendError::OutOfBounds));
    assert_eq!(head.append(r, 3000, 1.0), Ok(()));
    assert_eq!(
        head.append(klaxon::tsdb::SeriesRef(u64::MAX), 4000, 1.0),
        Err(AppendError::UnknownSeries)
    );

    let st = head.stats();
    assert_eq!(st.samples_appended, 3);
    assert_eq!(st.duplicates, 1);
    assert_eq!(st.out_of_order, 1);
    assert_eq!(st.out_of_bounds, 1);
    assert_eq!((st.series_created, st.num_series), (1, 1));
    assert_eq!((st.min_time, st.max_time), (1000, 3000));
    let got = head.select(&[], i64::MIN, i64::MAX);
    assert_eq!(got.len(), 1);
    let bits: Vec<(i64, u64)> = got[0]
        .samples
        .iter()
        .map(|(t, v)| (*t, v.to_bits()))
        .collect();
    assert_eq!(
        bits,
        [
            (1000, 1f64.to_bits()),
            (2000, STALE_NAN.to_bits()),
            (3000, 1f64.to_bits())
        ]
    );
}

#[test]
fn retention_drops_whole_chunks_then_series_and_symbols() {
    let head = Head::new(HeadOptions {
        samples_per_chunk: 10,
    });
    let old = Labels::from_pairs([("__name__", "m"), ("pod", "old-pod")]);
    let live = Labels::from_pairs([("__name__", "m"), ("pod", "live-pod")]);
    let (ro, _) = head.get_or_create(&old);
    let (rl, _) = head.get_or_create(&live);
    for i in 0..30 {
        head.append(ro, i * 100, i as f64).unwrap(); // 0..=2900
        head.append(rl, i * 200, i as f64).unwrap(); // 0..=5800
    }
    let before = head.stats();
    assert_eq!(before.chunks, 6);
    let chunk_bytes_before = before.chunk_bytes;

    // Cutoff 2500: old keeps its last chunk (2000..=2900); live drops chunk 0
    // (0..=1800) and keeps chunk 1 (2000..=3800) although 2000 < cutoff.
    let st = head.truncate(2500);
    assert_eq!((st.chunks_removed, st.series_removed), (3, 0));
    let s = head.stats();
    assert_eq!(s.chunks, 3);
    assert!(s.chunk_bytes < chunk_bytes_before);
    assert_eq!(s.min_time, 2000);
    let got = head.select(&[], 0, i64::MAX);
    assert_eq!(got[1].labels, old);
    assert_eq!(got[1].samples.first(), Some(&(2000, 20.0)));
    assert_eq!(got[0].samples.first(), Some(&(2000, 10.0)));

    let st = head.truncate(3000);
    assert_eq!((st.chunks_removed, st.series_removed), (1, 1));
    assert_eq!(st.symbols_freed, 1, "only \"old-pod\" is unused now");
    assert_eq!(head.append(ro, 9000, 1.0), Err(AppendError::UnknownSeries));
    assert_eq!(head.series_labels(ro), None);
    assert_eq!(head.series_labels(rl), Some(live.clone()));
    assert_eq!(
        head.label_values("pod", &[], i64::MIN, i64::MAX),
        ["live-pod"]
    );
    let m = Matcher::new(MatchType::Equal, "pod", "old-pod").unwrap();
    assert!(head.select(&[m], i64::MIN, i64::MAX).is_empty());
    let s = head.stats();
    assert_eq!((s.num_series, s.series_removed, s.chunks), (1, 1, 2));

    // Re-creating the dropped series works and gets a fresh ref.
    let (ro2, created) = head.get_or_create(&old);
    assert!(created && ro2 != ro);
    head.append(ro2, 9000, 1.0).unwrap();
    assert_eq!(head.select(&[], 0, i64::MAX).len(), 2);
}

#[test]
fn concurrent_appends_and_queries() {
    let head = Arc::new(Head::default());
    let threads = 4;
    let per_thread = 200;
    let samples = 300i64;
    let mut handles = Vec::new();
    for th in 0..threads {
        let head = Arc::clone(&head);
        handles.push(std::thread::spawn(move || {
            let refs: Vec<_> = (0..per_thread)
                .map(|i| {
                    let l = Labels::from_pairs([
                        ("__name__", "c".to_string()),
                        ("thread", th.to_string()),
                        ("i", i.to_string()),
                    ]);
                    head.get_or_create(&l).0
                })
                .collect();
            for t in 0..samples {
                for r in &refs {
                    head.append(*r, t * 1000, t as f64).expect("in order");
                }
            }
        }));
    }
    // A reader racing the writers must always see in-order samples.
    let reader = {
        let head = Arc::clone(&head);
        std::thread::spawn(move || {
            let m = Matcher::new(MatchType::RegexMatch, "thread", "0|1").unwrap();
            for _ in 0..20 {
                for s in head.select(std::slice::from_ref(&m), i64::MIN, i64::MAX) {
                    assert!(s.samples.windows(2).all(|w| w[0].0 < w[1].0));
                }
            }
        })
    };
    for h in handles {
        h.join().expect("writer thread");
    }
    reader.join().expect("reader thread");
    let st = head.stats();
    assert_eq!(st.num_series, threads * per_thread);
    assert_eq!(
        st.samples_appended,
        (threads * per_thread) as u64 * samples as u64
    );
    assert_eq!(st.chunks, threads * per_thread * 3);
    let all = head.select(&[], i64::MIN, i64::MAX);
    assert_eq!(all.len(), threads * per_thread);
    for s in all {
        let want: Vec<(i64, f64)> = (0..samples).map(|t| (t * 1000, t as f64)).collect();
        assert_eq!(s.samples, want, "{}", s.labels);
    }
}

#[test]
fn memory_estimate_tracks_contents() {
    let head = Head::default();
    let empty = head.stats().memory_bytes;
    for i in 0..1000 {
        let l = Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]);
        let (r, _) = head.get_or_create(&l);
        for t in 0..240 {
            head.append(r, t * 15_000, (t % 7) as f64).unwrap();
        }
    }
    let st = head.stats();
    assert_eq!(st.chunks, 2000);
    assert!(
        st.chunk_bytes > 1000 * 2 * 30,
        "chunk bytes {}",
        st.chunk_bytes
    );
    let per_series = (st.memory_bytes - empty) / 1000;
    assert!(
        per_series > st.chunk_bytes / 1000 && per_series < 2048,
        "per series {per_series}"
    );
    assert_eq!(st.symbols, 1003, "__name__, m, i and 1000 values");
}

#[test]
fn truncation_racing_appends_and_creation_stays_consistent() {
    let head = Arc::new(Head::new(HeadOptions {
        samples_per_chunk: 8,
    }));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clock = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let mut writers = Vec::new();
    for th in 0..3 {
        let (head, stop, clock) = (Arc::clone(&head), Arc::clone(&stop), Arc::clone(&clock));
        writers.push(std::thread::spawn(move || {
            let mut rng = Rng(th as u64 + 1);
            let mut recreated = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                // Short-lived series (churning pods) and long-lived ones.
                let pod = format!("pod-{}", rng.below(50));
                let l = Labels::from_pairs([("__name__", "churn"), ("pod", pod.as_str())]);
                let (mut r, _) = head.get_or_create(&l);
                let t = clock.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                loop {
                    match head.append(r, t, 1.0) {
                        Ok(()) | Err(AppendError::OutOfOrder) | Err(AppendError::OutOfBounds) => {
                            break
                        }
                        Err(AppendError::UnknownSeries) => {
                            recreated += 1;
                            r = head.get_or_create(&l).0;
                        }
                        Err(e) => panic!("unexpected {e}"),
                    }
                }
            }
            recreated
        }));
    }
    let truncator = {
        let (head, clock) = (Arc::clone(&head), Arc::clone(&clock));
        std::thread::spawn(move || {
            let mut removed = 0;
            for _ in 0..200 {
                let now = clock.load(std::sync::atomic::Ordering::Relaxed);
                removed += head.truncate(now - 50).series_removed;
                for s in head.select(&[], i64::MIN, i64::MAX) {
                    assert_eq!(s.labels.metric_name(), "churn");
                    assert!(s.labels.get("pod").is_some_and(|p| p.starts_with("pod-")));
                    assert!(s.samples.windows(2).all(|w| w[0].0 < w[1].0));
                }
                std::thread::yield_now();
            }
            removed
        })
    };
    let removed = truncator.join().expect("truncator");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in writers {
        w.join().expect("writer");
    }
    let st = head.stats();
    assert!(removed > 0, "the race was not exercised");
    assert_eq!(st.series_created - st.series_removed, st.num_series as u64);
    // Every live series resolves to its own labels and is indexed under them.
    for s in head.select(&[], i64::MIN, i64::MAX) {
        let m: Vec<Matcher> = s
            .labels
            .iter()
            .map(|l| Matcher::new(MatchType::Equal, &l.name, &l.value).unwrap())
            .collect();
        let again = head.select(&m, i64::MIN, i64::MAX);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].labels, s.labels);
    }
    let pods = head.label_values("pod", &[], i64::MIN, i64::MAX);
    assert!(pods.len() <= 50 && pods.iter().all(|p| p.starts_with("pod-")));
}

#[test]
fn handle_appends_and_sees_removal() {
    use klaxon::tsdb::{AppendError, Head, HeadOptions};
    let h = Head::new(HeadOptions::default());
    let l = klaxon::model::Labels::from_pairs([("__name__", "m"), ("a", "1")]);
    let (r, _) = h.get_or_create(&l);
    let handle = h.handle(r).expect("live series has a handle");
    assert_eq!(handle.series_ref(), r);
    h.append_to(&handle, 1000, 1.0).unwrap();
    assert_eq!(h.append_to(&handle, 500, 2.0), Err(AppendError::OutOfOrder));
    assert_eq!(h.stats().samples_appended, 1);
    // Retention removes the series; the stale handle must not write into it.
    h.truncate(10_000);
    assert_eq!(h.num_series(), 0);
    assert_eq!(
        h.append_to(&handle, 20_000, 3.0),
        Err(AppendError::UnknownSeries)
    );
    assert!(h.handle(r).is_none());
}
