use super::*;
use crate::tsdb::block::{encode_chunks, load_blocks, write_block, Tombstones};
use crate::tsdb::Fanout;

const H: i64 = 3_600_000;

fn l(i: usize) -> Labels {
    Labels::from_pairs([
        (
            "__name__",
            if i.is_multiple_of(2) { "a" } else { "b" }.to_string(),
        ),
        ("i", i.to_string()),
    ])
}

/// `n` series with a sample every 15 s in `[from, to)`.
fn fill(head: &Head, n: usize, from: i64, to: i64) -> Vec<(Labels, Vec<(i64, f64)>)> {
    let mut want = Vec::new();
    for i in 0..n {
        let mut a = head.appender();
        let mut samples = Vec::new();
        let mut t = from + i as i64;
        while t < to {
            let v = (t / 1000) as f64 * (i + 1) as f64;
            a.append(&l(i), t, v).unwrap();
            samples.push((t, v));
            t += 15_000;
        }
        a.commit().unwrap();
        want.push((l(i), samples));
    }
    want.sort_by(|a, b| a.0.cmp(&b.0));
    want
}

fn read_all(q: &dyn Queryable) -> Vec<(Labels, Vec<(i64, f64)>)> {
    q.querier(i64::MIN, i64::MAX)
        .select(&[])
        .into_iter()
        .map(|s| (s.labels, s.samples))
        .collect()
}

fn compactor(dir: &Path, head: &Arc<Head>, opts: CompactorOptions) -> Compactor {
    let loaded = load_blocks(dir);
    Compactor::new(
        dir,
        head.clone(),
        Arc::new(BlockSet::new(loaded.blocks)),
        opts,
    )
}

fn hourly(retention_ms: i64) -> CompactorOptions {
    CompactorOptions {
        min_block_ms: H,
        retention_ms,
        retention_size: None,
    }
}

fn block_dirs(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn ranges_grow_by_three_up_to_a_tenth_of_retention() {
    let two = 2 * H;
    assert_eq!(block_ranges(two, 15 * 24 * H), vec![two, 3 * two, 9 * two]);
    // Capped at 31 days.
    assert_eq!(
        *block_ranges(two, 10 * 365 * 24 * H).last().unwrap(),
        243 * two
    );
    assert_eq!(block_ranges(two, H), vec![two]);
}

#[test]
fn the_head_is_written_in_aligned_blocks_merged_later_and_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let head = Arc::new(Head::default());
    let want = fill(&head, 6, 0, 5 * H);
    let c = compactor(dir.path(), &head, hourly(100 * H));
    assert_eq!(c.head_compactable(), Some((0, H)));
    let written = c.run().unwrap();
    // Four hours from the head, then the complete 3 h window merged (the
    // newest block is left out).
    assert_eq!(written, 5);
    let metas: Vec<BlockMeta> = c
        .blocks()
        .blocks()
        .iter()
        .map(|b| b.meta().clone())
        .collect();
    assert_eq!(
        metas
            .iter()
            .map(|m| (m.min_time, m.max_time))
            .collect::<Vec<_>>(),
        vec![(0, 3 * H), (3 * H, 4 * H)]
    );
    assert_eq!(metas[0].compaction.level, 2);
    assert_eq!(metas[0].compaction.parents.len(), 3);
    assert_eq!(metas[0].compaction.sources.len(), 3);
    assert_eq!(metas[1].compaction.level, 1);
    // The parents are gone from disk.
    assert_eq!(block_dirs(dir.path()).len(), 2);
    assert!(head.min_time() >= 4 * H - 15_000 * 120);
    // Head and blocks overlap where a head chunk straddles a block's end;
    // each sample comes back once.
    let all = Fanout::new(head.clone()).with(c.blocks().clone());
    assert_eq!(read_all(&all), want);
    // Nothing more to do; a sample below the blocks' end is refused.
    assert_eq!(c.run().unwrap(), 0);
    let mut a = head.appender();
    assert!(a.append(&l(0), 4 * H - 1, 1.0).is_err());
}

#[test]
fn overlapping_blocks_merge_into_one_with_each_sample_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = |from: i64, to: i64| -> Vec<(i64, f64)> {
        (from..to).step_by(10_000).map(|t| (t, t as f64)).collect()
    };
    let write = |samples: &[(i64, f64)], labels: Labels| {
        write_block(
            dir.path(),
            vec![BlockSeries {
                labels,
                chunks: encode_chunks(samples, 120),
            }],
            WriteOptions::default(),
        )
        .unwrap()
    };
    let a = write(&s(0, 50 * 60_000), l(0));
    let b = write(&s(30 * 60_000, 90 * 60_000), l(0));
    let c2 = write(&s(0, 10 * 60_000), l(1));
    let head = Arc::new(Head::default());
    let c = compactor(dir.path(), &head, hourly(100 * H));
    assert_eq!(c.plan().len(), 3);
    c.run().unwrap();
    let blocks = c.blocks().blocks();
    assert_eq!(blocks.len(), 1);
    let m = blocks[0].meta();
    assert_eq!((m.min_time, m.max_time), (0, b.max_time));
    let mut sources = vec![a.ulid, b.ulid, c2.ulid];
    sources.sort();
    assert_eq!(m.compaction.sources, sources);
    assert_eq!(m.compaction.level, 2);
    let got = read_all(&*c.blocks().clone());
    assert_eq!(got[0].1, s(0, 90 * 60_000));
    assert_eq!(got[1].1, s(0, 10 * 60_000));
    assert_eq!(block_dirs(dir.path()), vec![m.ulid.clone()]);
}

#[test]
fn a_merge_copies_chunks_unless_overlapped_or_cut_by_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let m = 60_000;
    // Three series every 10 s: three 120-sample chunks per series and hour.
    let every = |from: i64, to: i64, step: usize| -> Vec<(i64, f64)> {
        (from..to).step_by(step).map(|t| (t, t as f64)).collect()
    };
    let write = |series: Vec<(Labels, Vec<(i64, f64)>)>, range, tombstones| {
        let series = series
            .into_iter()
            .map(|(labels, s)| BlockSeries {
                labels,
                chunks: encode_chunks(&s, 120),
            })
            .collect();
        let opts = WriteOptions {
            range: Some(range),
            tombstones,
            ..Default::default()
        };
        write_block(dir.path(), series, opts).unwrap()
    };
    let hour = |from| {
        (0..3)
            .map(|i| (l(i), every(from, from + H, 10_000)))
            .collect()
    };
    // Series 1's first chunk in the first hour is cut by a tombstone.
    let first = write(hour(0), (0, H), Tombstones::new());
    let id1 = {
        let b = Block::open(&dir.path().join(&first.ulid)).unwrap();
        let all = b.all_series().unwrap();
        all.into_iter().find(|(_, s)| s.labels == l(1)).unwrap().0
    };
    std::fs::remove_dir_all(dir.path().join(&first.ulid)).unwrap();
    let first = write(
        hour(0),
        (0, H),
        Tombstones::from([(id1, vec![(5 * m, 6 * m)])]),
    );
    write(hour(H), (H, 2 * H), Tombstones::new());
    // A third block overlaps series 0's second chunk of the second hour,
    // every 5 s with other values: on equal timestamps the earlier block
    // wins.
    let late: Vec<(i64, f64)> = (H + 30 * m..H + 35 * m)
        .step_by(5_000)
        .map(|t| (t, -(t as f64)))
        .collect();
    write(
        vec![(l(0), late.clone())],
        (H + 30 * m, H + 35 * m),
        Tombstones::new(),
    );
    let head = Arc::new(Head::default());
    let c = compactor(dir.path(), &head, hourly(100 * H));
    let parents = c.blocks().blocks();
    assert_eq!(parents[0].meta().ulid, first.ulid);
    let merged = c.compact_blocks(&parents).unwrap().unwrap();
    assert_eq!((merged.min_time, merged.max_time), (0, 2 * H));
    // Series 0: one chunk of the second hour overlapped (with the third
    // block's); series 1: one chunk cut; the other 16 copied.
    assert_eq!(c.stats.chunks_copied.load(Relaxed), 16);
    assert_eq!(c.stats.chunks_reencoded.load(Relaxed), 3);
    let b = &c.blocks().blocks()[0];
    b.verify().unwrap();
    let mut want0 = every(0, 2 * H, 10_000);
    want0.extend(late.iter().filter(|(t, _)| t % 10_000 != 0));
    want0.sort_by_key(|s| s.0);
    let mut want1 = every(0, 2 * H, 10_000);
    want1.retain(|(t, _)| !(5 * m..=6 * m).contains(t));
    let mut want = vec![
        (l(0), want0),
        (l(1), want1),
        (l(2), every(0, 2 * H, 10_000)),
    ];
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(read_all(&**b), want);
    assert_eq!(
        merged.stats.num_samples,
        want.iter().map(|s| s.1.len() as u64).sum::<u64>()
    );
}

#[test]
fn a_big_block_with_tombstones_on_over_5_percent_of_its_series_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let series = |n: usize, from: i64, to: i64| -> Vec<BlockSeries> {
        let samples: Vec<(i64, f64)> = (from..to).step_by(10_000).map(|t| (t, 1.0)).collect();
        (0..n)
            .map(|i| BlockSeries {
                labels: l(i),
                chunks: encode_chunks(&samples, 120),
            })
            .collect()
    };
    let write = |n, from, to| {
        let opts = WriteOptions {
            range: Some((from, to)),
            ..Default::default()
        };
        write_block(dir.path(), series(n, from, to), opts).unwrap()
    };
    // Hourly ranges 1 h, 3 h, 9 h: tombstones count from 3 h on. A 1 h
    // block of 2 series, a 3 h block of 40, and the newest block (which
    // this rule leaves alone, as the others).
    let small = write(2, 0, H);
    let big = write(40, H, 4 * H);
    write(1, 4 * H, 5 * H);
    let head = Arc::new(Head::default());
    let c = compactor(dir.path(), &head, hourly(100 * H));
    assert_eq!(c.ranges(), &[H, 3 * H, 9 * H]);
    assert!(c.plan().is_empty());
    let block = |id: &str| {
        c.blocks()
            .blocks()
            .into_iter()
            .find(|b| b.meta().ulid == id)
    };
    let name = |i: usize| Matcher::new(MatchType::Equal, "i", i.to_string()).unwrap();
    // 2 of 40 (2/41 ≤ 5%) left alone; the small block with one of its
    // two series deleted too.
    let b = block(&big.ulid).unwrap();
    for i in [0, 1] {
        assert_eq!(b.delete(&[name(i)], H, H + 60_000).unwrap(), 1);
    }
    let s = block(&small.ulid).unwrap();
    assert_eq!(s.delete(&[name(0)], i64::MIN, i64::MAX).unwrap(), 1);
    assert!(c.plan().is_empty());
    assert_eq!(c.run().unwrap(), 0);
    assert!(block(&big.ulid).is_some());
    // A third (3/41 > 5%): rewritten on its own, keeping its level,
    // without the deleted samples and without tombstones.
    assert_eq!(b.delete(&[name(2)], H, H + 60_000).unwrap(), 1);
    let plan = c.plan();
    assert_eq!(plan.len(), 1);
    assert_eq!(plan[0].meta().ulid, big.ulid);
    assert_eq!(c.run().unwrap(), 1);
    assert!(block(&big.ulid).is_none());
    assert!(!dir.path().join(&big.ulid).exists());
    let new = c.blocks().blocks()[1].clone();
    assert_eq!((new.meta().min_time, new.meta().max_time), (H, 4 * H));
    assert_eq!(new.meta().compaction.parents[0].ulid, big.ulid);
    assert_eq!(new.meta().compaction.level, 1);
    assert!(new.tombstones().is_empty());
    assert_eq!(new.meta().stats.num_samples, 40 * 1080 - 3 * 7);
    let got = read_all(&*new);
    assert_eq!(got.iter().filter(|s| s.1[0].0 == H + 70_000).count(), 3);
    // Every series of the small block deleted: it goes whatever its size.
    assert_eq!(s.delete(&[name(1)], i64::MIN, i64::MAX).unwrap(), 1);
    assert_eq!(c.run().unwrap(), 0);
    assert!(block(&small.ulid).is_none());
    assert_eq!(c.blocks().len(), 2);
}

#[test]
fn tombstones_are_applied_when_a_block_is_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let samples: Vec<(i64, f64)> = (0..100).map(|i| (i * 1000, i as f64)).collect();
    let mut stones = Tombstones::new();
    // Series ids in the index are offsets/16 in order; the only series is
    // the first entry.
    let series = vec![BlockSeries {
        labels: l(0),
        chunks: encode_chunks(&samples, 120),
    }];
    let first = write_block(dir.path(), series.clone(), WriteOptions::default()).unwrap();
    let id = {
        let b = Block::open(&dir.path().join(&first.ulid)).unwrap();
        let ids: Vec<u32> = b.series_ids().unwrap();
        ids[0]
    };
    std::fs::remove_dir_all(dir.path().join(&first.ulid)).unwrap();
    stones.insert(id, vec![(10_000, 19_999)]);
    let meta = write_block(
        dir.path(),
        series,
        WriteOptions {
            tombstones: stones,
            ..Default::default()
        },
    )
    .unwrap();
    let head = Arc::new(Head::default());
    let c = compactor(dir.path(), &head, hourly(100 * H));
    let new = c.rewrite_without_tombstones(&meta.ulid).unwrap().unwrap();
    assert_eq!(new.stats.num_samples, 90);
    assert_eq!(new.stats.num_tombstones, 0);
    assert_eq!(new.compaction.parents[0].ulid, meta.ulid);
    let b = &c.blocks().blocks()[0];
    assert!(b.tombstones().is_empty());
    let got = read_all(&**b);
    assert_eq!(got[0].1.len(), 90);
    assert!(got[0].1.iter().all(|(t, _)| !(10_000..20_000).contains(t)));
    // Without tombstones there is nothing to rewrite.
    assert!(c.rewrite_without_tombstones(&new.ulid).unwrap().is_none());
}

#[test]
fn an_incomplete_window_waits_for_a_newer_block() {
    let dir = tempfile::tempdir().unwrap();
    let head = Arc::new(Head::default());
    fill(&head, 2, 0, 4 * H);
    let c = compactor(dir.path(), &head, hourly(100 * H));
    // [0,1h) [1h,2h) [2h,3h): without the newest, [0,1h) [1h,2h) fill
    // only part of their 3 h window and end after 1h, where the newest of
    // them starts.
    assert_eq!(c.run().unwrap(), 3);
    assert!(c.plan().is_empty());
    assert_eq!(c.blocks().len(), 3);
}

#[test]
fn a_failed_write_leaves_no_trace_is_counted_and_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let head = Arc::new(Head::default());
    let want = fill(&head, 3, 0, 3 * H);
    let c = compactor(dir.path(), &head, hourly(100 * H));
    block::fault::fail_next_writes(Some(dir.path()), 1);
    let err = c.run().unwrap_err().to_string();
    assert!(err.contains("No space left on device"), "{err}");
    assert_eq!(c.stats.failed.load(Relaxed), 1);
    assert!(block_dirs(dir.path()).is_empty());
    assert!(c.blocks().is_empty());
    assert_eq!(read_all(&*head), want);
    // [0,1h) and [1h,2h); the head keeps the last hour.
    assert_eq!(c.run().unwrap(), 2);
    assert_eq!(c.stats.failed.load(Relaxed), 1);
    let all = Fanout::new(head.clone()).with(c.blocks().clone());
    assert_eq!(read_all(&all), want);
}

#[test]
fn a_crash_between_rename_and_delete_is_finished_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let head = Arc::new(Head::default());
    let want = fill(&head, 3, 0, 5 * H);
    let c = compactor(dir.path(), &head, hourly(100 * H));
    while let Some((a, b)) = c.head_compactable() {
        c.compact_head(a, b).unwrap();
    }
    let parents = c.plan();
    assert_eq!(parents.len(), 3);
    // What a merge leaves when killed before deleting its parents.
    let keep = tempfile::tempdir().unwrap();
    for p in &parents {
        copy_dir(p.dir(), &keep.path().join(&p.meta().ulid));
    }
    c.compact_blocks(&parents).unwrap();
    for p in &parents {
        copy_dir(&keep.path().join(&p.meta().ulid), p.dir());
    }
    std::fs::create_dir(
        dir.path()
            .join(format!("{}{}", block::ulid::new(5), block::TMP_SUFFIX)),
    )
    .unwrap();
    assert_eq!(block_dirs(dir.path()).len(), 6);
    let loaded = load_blocks(dir.path());
    assert_eq!(loaded.blocks.len(), 2);
    assert_eq!(block_dirs(dir.path()).len(), 2);
    let set = Arc::new(BlockSet::new(loaded.blocks));
    let all = Fanout::new(head.clone()).with(set);
    assert_eq!(read_all(&all), want);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            copy_dir(&p, &to.join(e.file_name()));
        } else {
            std::fs::copy(&p, to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn retention_deletes_whole_blocks_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    for k in 0..4 {
        let samples: Vec<(i64, f64)> = (0..360).map(|i| (k * H + i * 10_000, i as f64)).collect();
        write_block(
            dir.path(),
            (0..20)
                .map(|i| BlockSeries {
                    labels: l(i),
                    chunks: encode_chunks(&samples, 120),
                })
                .collect(),
            WriteOptions {
                range: Some((k * H, (k + 1) * H)),
                ..Default::default()
            },
        )
        .unwrap();
    }
    let head = Arc::new(Head::default());
    // Ranges of 1 h only: no merging.
    let c = compactor(dir.path(), &head, hourly(2 * H + 1));
    c.apply_retention();
    // Ends 4h, 3h, 2h, 1h: those more than 2 h before 4 h go.
    let left: Vec<i64> = c
        .blocks()
        .blocks()
        .iter()
        .map(|b| b.meta().min_time)
        .collect();
    assert_eq!(left, vec![H, 2 * H, 3 * H]);
    assert_eq!(c.stats.time_retentions.load(Relaxed), 1);
    let one = c.blocks().blocks()[0].size_bytes();
    let c = compactor(
        dir.path(),
        &head,
        CompactorOptions {
            retention_size: Some(2 * one + one / 2),
            ..hourly(0)
        },
    );
    c.apply_retention();
    let left: Vec<i64> = c
        .blocks()
        .blocks()
        .iter()
        .map(|b| b.meta().min_time)
        .collect();
    assert_eq!(left, vec![2 * H, 3 * H]);
    assert_eq!(c.stats.size_retentions.load(Relaxed), 1);
    assert_eq!(block_dirs(dir.path()).len(), 2);
}

#[test]
fn a_damaged_block_is_not_merged_away_and_not_planned_again() {
    let dir = tempfile::tempdir().unwrap();
    let samples: Vec<(i64, f64)> = (0..360).map(|i| (i * 10_000, i as f64)).collect();
    let series: Vec<BlockSeries> = (0..4)
        .map(|i| BlockSeries {
            labels: l(i),
            chunks: encode_chunks(&samples, 120),
        })
        .collect();
    let a = write_block(
        dir.path(),
        series.clone(),
        WriteOptions {
            range: Some((0, H)),
            ..Default::default()
        },
    )
    .unwrap();
    write_block(
        dir.path(),
        series,
        WriteOptions {
            range: Some((0, H)),
            ..Default::default()
        },
    )
    .unwrap();
    // Flip a byte inside the first block's chunk data (past the header).
    let seg = dir.path().join(&a.ulid).join("chunks/000001");
    let mut b = std::fs::read(&seg).unwrap();
    b[40] ^= 0xff;
    std::fs::write(&seg, b).unwrap();
    let head = Arc::new(Head::default());
    let c = compactor(dir.path(), &head, hourly(100 * H));
    assert_eq!(c.plan().len(), 2);
    let err = c.run().unwrap_err().to_string();
    assert!(err.contains(&a.ulid), "{err}");
    assert_eq!(c.stats.failed.load(Relaxed), 1);
    // Both blocks still there and served; the damaged one is not planned.
    assert_eq!(block_dirs(dir.path()).len(), 2);
    assert_eq!(c.blocks().len(), 2);
    assert!(c.plan().is_empty());
    assert_eq!(c.run().unwrap(), 0);
}

#[test]
fn a_query_reads_only_the_blocks_its_range_overlaps() {
    let dir = tempfile::tempdir().unwrap();
    let head = Arc::new(Head::default());
    fill(&head, 4, 0, 7 * H / 2);
    let c = compactor(dir.path(), &head, hourly(100 * H));
    // Head compaction writes [0, H) and [H, 2H) (the head keeps the rest).
    while let Some((mint, maxt)) = c.head_compactable() {
        c.compact_head(mint, maxt).unwrap();
    }
    let blocks = c.blocks().clone();
    assert_eq!(blocks.len(), 2);
    let all = Fanout::new(head.clone()).with(blocks.clone());
    let m = [Matcher::new(MatchType::Equal, "__name__", "a").unwrap()];
    // The last hour: the head only.
    let got = all.querier(5 * H / 2, 7 * H / 2).select(&m);
    assert_eq!(got.len(), 2);
    assert_eq!(blocks.blocks_queried(), 0);
    // Reaching into the second block's hour opens that block only.
    let got = all.querier(2 * H - 60_000, 7 * H / 2).select(&m);
    assert!(got.iter().all(|s| s.samples[0].0 < 2 * H));
    assert_eq!(blocks.blocks_queried(), 1);
    all.querier(0, 7 * H / 2).select(&m);
    assert_eq!(blocks.blocks_queried(), 3);
}

#[test]
fn histograms_go_into_blocks_and_merges_and_come_back_once() {
    use crate::tsdb::series_hist::testdata::{dump, float, int, nhcb};
    let dir = tempfile::tempdir().unwrap();
    let head = Arc::new(Head::default());
    let name = |n: &str| Labels::from_pairs([("__name__", n)]);
    let mut t = 0;
    let mut i = 0u64;
    while t < 5 * H {
        let mut a = head.appender();
        // A counter reset every 1000 samples.
        a.append_histogram(&name("ints"), t, &int(i % 1000 + 1))
            .unwrap();
        a.append_histogram(&name("floats"), t, &float(i as f64))
            .unwrap();
        a.append_histogram(&name("custom"), t, &nhcb(i as f64))
            .unwrap();
        if (i / 100).is_multiple_of(2) {
            a.append(&name("mixed"), t, i as f64).unwrap();
        } else {
            a.append_histogram(&name("mixed"), t, &int(i)).unwrap();
        }
        a.commit().unwrap();
        t += 15_000;
        i += 1;
    }
    let want = dump(&*head, i64::MIN, i64::MAX);
    assert_eq!(want.len(), 4);
    let c = compactor(dir.path(), &head, hourly(100 * H));
    assert_eq!(c.run().unwrap(), 5);
    // The blocks hold the histograms the head no longer has.
    assert!(head.min_time() > 3 * H, "{}", head.min_time());
    let in_blocks = dump(&*c.blocks().clone(), i64::MIN, i64::MAX);
    assert!(
        in_blocks.iter().all(|s| !s.2.is_empty()),
        "{:?}",
        in_blocks[0].0
    );
    let all = Fanout::new(head.clone()).with(c.blocks().clone());
    assert_eq!(dump(&all, i64::MIN, i64::MAX), want);

    // Overlapping blocks holding histograms merge with each sample once.
    let dir2 = tempfile::tempdir().unwrap();
    let s = |from: i64, to: i64| -> Vec<(i64, HistValue)> {
        (from..to)
            .step_by(10_000)
            .map(|t| (t, float(t as f64 / 1e4)))
            .collect()
    };
    for (from, to) in [(0, 50 * 60_000), (30 * 60_000, 90 * 60_000)] {
        write_block(
            dir2.path(),
            vec![BlockSeries {
                labels: name("h"),
                chunks: block::encode_series(&[], &s(from, to), 120),
            }],
            WriteOptions::default(),
        )
        .unwrap();
    }
    let head2 = Arc::new(Head::default());
    let c = compactor(dir2.path(), &head2, hourly(100 * H));
    c.run().unwrap();
    assert_eq!(c.blocks().len(), 1);
    let got = dump(&*c.blocks().clone(), i64::MIN, i64::MAX);
    let want: Vec<(i64, String)> = s(0, 90 * 60_000)
        .iter()
        .map(|(t, v)| (*t, crate::tsdb::series_hist::testdata::norm(v)))
        .collect();
    assert_eq!(got[0].2, want);
}
