use super::*;
use crate::model::matcher::MatchType;
use crate::model::STALE_NAN_BITS;

fn l(pairs: &[(&str, &str)]) -> Labels {
    Labels::from_pairs(pairs.iter().copied())
}

fn m(kind: MatchType, name: &str, value: &str) -> Matcher {
    Matcher::new(kind, name, value).unwrap()
}

/// Three series; `b` spans several chunks and holds a NaN and a stale marker.
fn sample_series() -> Vec<(Labels, Vec<(i64, f64)>)> {
    let mut b: Vec<(i64, f64)> = (0..300).map(|i| (i * 1000, i as f64 * 1.5)).collect();
    b[10].1 = f64::NAN;
    b[20].1 = f64::from_bits(STALE_NAN_BITS);
    vec![
        (
            l(&[("__name__", "up"), ("job", "a")]),
            vec![(0, 1.0), (5000, 0.0)],
        ),
        (l(&[("__name__", "up"), ("job", "b"), ("zone", "x")]), b),
        (
            l(&[("__name__", "other"), ("job", "a")]),
            vec![(100_000, 7.0)],
        ),
    ]
}

fn write(dir: &Path, opts: WriteOptions) -> BlockMeta {
    let series = sample_series()
        .into_iter()
        .map(|(labels, s)| BlockSeries {
            labels,
            chunks: encode_chunks(&s, 120),
        })
        .collect();
    write_block(dir, series, opts).unwrap()
}

fn bits(s: &[(i64, f64)]) -> Vec<(i64, u64)> {
    s.iter().map(|(t, v)| (*t, v.to_bits())).collect()
}

#[test]
fn a_written_block_reads_back_sample_for_sample() {
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path(), WriteOptions::default());
    assert_eq!(meta.min_time, 0);
    assert_eq!(meta.max_time, 299_001);
    assert_eq!(meta.stats.num_series, 3);
    assert_eq!(meta.stats.num_samples, 303);
    assert_eq!(meta.stats.num_chunks, 5);
    assert_eq!(meta.compaction.sources, vec![meta.ulid.clone()]);
    let bdir = dir.path().join(&meta.ulid);
    for f in ["meta.json", "index", "tombstones", "chunks/000001"] {
        assert!(bdir.join(f).is_file(), "{f}");
    }
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1, "no temporary directory is left");
    let b = Block::open(&bdir).unwrap();
    b.verify().unwrap();
    assert_eq!(b.meta(), &meta);
    let got = b
        .querier(i64::MIN, i64::MAX)
        .select(&[m(MatchType::RegexMatch, "job", ".+")]);
    let mut want = sample_series();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(got.len(), 3);
    for (g, (labels, samples)) in got.iter().zip(&want) {
        assert_eq!(&g.labels, labels);
        assert_eq!(bits(&g.samples), bits(samples));
    }
    // The range trims samples and prunes chunks.
    let got = b
        .querier(10_000, 12_000)
        .select(&[m(MatchType::Equal, "job", "b")]);
    assert_eq!(
        got[0].samples.iter().map(|s| s.0).collect::<Vec<_>>(),
        [10_000, 11_000, 12_000]
    );
    // A range outside the block reads nothing.
    assert!(b.querier(300_000, 400_000).select(&[]).is_empty());
}

#[test]
fn matchers_follow_prometheus_rules_for_the_empty_value() {
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path(), WriteOptions::default());
    let b = Block::open(&dir.path().join(&meta.ulid)).unwrap();
    let q = b.querier(i64::MIN, i64::MAX);
    let zones = |ms: &[Matcher]| -> Vec<String> {
        q.series(ms)
            .iter()
            .map(|s| format!("{}/{}", s.metric_name(), s.get("job").unwrap_or("")))
            .collect()
    };
    let up = m(MatchType::Equal, "__name__", "up");
    assert_eq!(zones(std::slice::from_ref(&up)), ["up/a", "up/b"]);
    // zone="" selects series without the label.
    assert_eq!(
        zones(&[up.clone(), m(MatchType::Equal, "zone", "")]),
        ["up/a"]
    );
    assert_eq!(
        zones(&[up.clone(), m(MatchType::NotEqual, "zone", "")]),
        ["up/b"]
    );
    assert_eq!(
        zones(&[up.clone(), m(MatchType::NotEqual, "zone", "x")]),
        ["up/a"]
    );
    assert_eq!(
        zones(&[m(MatchType::RegexMatch, "zone", "x|")]),
        ["other/a", "up/a", "up/b"]
    );
    assert_eq!(zones(&[m(MatchType::RegexNoMatch, "job", "a")]), ["up/b"]);
    assert_eq!(
        zones(&[up.clone(), m(MatchType::RegexMatch, "zone", ".*")]),
        ["up/a", "up/b"]
    );
    assert_eq!(
        zones(&[m(MatchType::Equal, "nope", "1")]),
        Vec::<String>::new()
    );
    assert_eq!(q.label_names(&[]), ["__name__", "job", "zone"]);
    assert_eq!(
        q.label_names(&[m(MatchType::Equal, "job", "a")]),
        ["__name__", "job"]
    );
    assert_eq!(q.label_values("job", &[]), ["a", "b"]);
    assert_eq!(
        q.label_values("job", &[m(MatchType::Equal, "__name__", "other")]),
        ["a"]
    );
}

#[test]
fn tombstones_hide_deleted_samples() {
    let dir = tempfile::tempdir().unwrap();
    // Series ids are index offsets / 16; find `up{job="b"}`'s by writing once.
    let meta = write(dir.path(), WriteOptions::default());
    let b = Block::open(&dir.path().join(&meta.ulid)).unwrap();
    let ids = b.postings_for(&[m(MatchType::Equal, "job", "b")]).unwrap();
    let other = b
        .postings_for(&[m(MatchType::Equal, "__name__", "other")])
        .unwrap();
    let mut t = Tombstones::new();
    t.insert(ids[0], vec![(0, 149_000)]);
    t.insert(other[0], vec![(i64::MIN, i64::MAX)]);
    let dir2 = tempfile::tempdir().unwrap();
    let meta2 = write(
        dir2.path(),
        WriteOptions {
            tombstones: t,
            ..Default::default()
        },
    );
    assert_eq!(meta2.stats.num_tombstones, 2);
    let b = Block::open(&dir2.path().join(&meta2.ulid)).unwrap();
    let q = b.querier(i64::MIN, i64::MAX);
    let got = q.select(&[m(MatchType::Equal, "job", "b")]);
    assert_eq!(got[0].samples.len(), 150);
    assert_eq!(got[0].samples[0].0, 150_000);
    assert!(q
        .select(&[m(MatchType::Equal, "__name__", "other")])
        .is_empty());
    assert!(q
        .series(&[m(MatchType::Equal, "__name__", "other")])
        .is_empty());
}

/// Every single flipped byte and every truncation of every file either
/// fails with an error naming the block, the file and the offset, or (in
/// padding) changes nothing; it never panics.
#[test]
fn damaged_files_give_errors_naming_block_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path(), WriteOptions::default());
    let bdir = dir.path().join(&meta.ulid);
    let clean = Block::open(&bdir)
        .unwrap()
        .querier(i64::MIN, i64::MAX)
        .select(&[]);
    let all = || {
        let b = Block::open(&bdir)?;
        b.verify()?;
        let got = b.querier(i64::MIN, i64::MAX).select(&[]);
        Ok::<_, BlockError>(got)
    };
    let check = |file: &str, what: &str| match all() {
        Ok(got) => assert_eq!(
            got.iter()
                .map(|s| (s.labels.clone(), bits(&s.samples)))
                .collect::<Vec<_>>(),
            clean
                .iter()
                .map(|s| (s.labels.clone(), bits(&s.samples)))
                .collect::<Vec<_>>(),
            "{file}: {what} was accepted but changed the data"
        ),
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.contains(&bdir.display().to_string()), "{msg}");
            let short = file.trim_start_matches("chunks/");
            assert!(
                msg.contains(short) || msg.contains("chunks"),
                "{file}: {msg}"
            );
        }
    };
    for file in ["index", "chunks/000001", "tombstones", "meta.json"] {
        let path = bdir.join(file);
        let orig = std::fs::read(&path).unwrap();
        for i in 0..orig.len() {
            let mut bad = orig.clone();
            bad[i] ^= 0x5a;
            std::fs::write(&path, &bad).unwrap();
            check(file, &format!("byte {i} flipped"));
        }
        let step = (orig.len() / 97).max(1);
        for n in (0..orig.len()).step_by(step) {
            std::fs::write(&path, &orig[..n]).unwrap();
            check(file, &format!("truncation to {n} bytes"));
        }
        std::fs::write(&path, &orig).unwrap();
    }
    // An index error says where.
    let path = bdir.join("index");
    let mut bad = std::fs::read(&path).unwrap();
    bad[0] = 0;
    std::fs::write(&path, &bad).unwrap();
    let e = Block::open(&bdir).unwrap_err().to_string();
    assert!(
        e.contains("index: offset 0: invalid index magic number"),
        "{e}"
    );
}

#[test]
fn loading_skips_a_bad_block_and_leftovers_but_serves_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), WriteOptions::default());
    let bad = write(dir.path(), WriteOptions::default());
    std::fs::write(dir.path().join(&bad.ulid).join("index"), b"nonsense").unwrap();
    let leftover = dir.path().join(format!("{}{TMP_SUFFIX}", ulid::new(1)));
    std::fs::create_dir(&leftover).unwrap();
    std::fs::create_dir(dir.path().join("wal")).unwrap();
    let loaded = load_blocks(dir.path());
    assert_eq!(loaded.blocks.len(), 1);
    assert_eq!(loaded.blocks[0].meta().ulid, good.ulid);
    assert_eq!(loaded.failed.len(), 1);
    let e = loaded.failed[0].to_string();
    assert!(e.contains(&bad.ulid) && e.contains("index"), "{e}");
    assert!(!leftover.exists());
}

/// Pruning, shown with damage: a damaged chunk or series is only noticed
/// (and counted) by a query whose range reaches it.
#[test]
fn queries_read_only_blocks_and_chunks_in_their_range() {
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path(), WriteOptions::default());
    let bdir = dir.path().join(&meta.ulid);
    let b = Block::open(&bdir).unwrap();
    let a = b
        .postings_for(&[
            m(MatchType::Equal, "job", "a"),
            m(MatchType::Equal, "__name__", "up"),
        ])
        .unwrap()[0];
    let c = b.index.series(a).unwrap().chunks[0];
    drop(b);
    // Damage up{job="a"}'s only chunk (samples at 0 and 5000).
    let seg = bdir.join("chunks/000001");
    let mut bytes = std::fs::read(&seg).unwrap();
    bytes[(c.r#ref & 0xffff_ffff) as usize + 4] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    let b = Block::open(&bdir).unwrap();
    let got = b.querier(100_000, 200_000).select(&[]);
    assert_eq!(got.len(), 2);
    assert_eq!(b.read_errors(), 0, "the damaged chunk is outside the range");
    let got = b.querier(0, 10).select(&[]);
    assert_eq!(got.len(), 1, "up{{job=\"b\"}} only: {got:?}");
    assert_eq!(b.read_errors(), 1);
    assert!(b
        .verify()
        .unwrap_err()
        .to_string()
        .contains("chunks/000001"));

    // Damage a series entry in the index: a query outside the block's
    // range never looks it up.
    std::fs::write(&seg, {
        bytes[(c.r#ref & 0xffff_ffff) as usize + 4] ^= 0xff;
        &bytes
    })
    .unwrap();
    let ix = bdir.join("index");
    let mut bytes = std::fs::read(&ix).unwrap();
    bytes[a as usize * 16 + 2] ^= 0xff;
    std::fs::write(&ix, &bytes).unwrap();
    let b = Block::open(&bdir).unwrap();
    assert!(b.querier(meta.max_time, i64::MAX).select(&[]).is_empty());
    assert!(b
        .querier(i64::MIN, meta.min_time - 1)
        .series(&[])
        .is_empty());
    assert_eq!(b.read_errors(), 0);
    assert_eq!(b.querier(0, meta.max_time).select(&[]).len(), 2);
    assert_eq!(b.read_errors(), 1);
}

/// Blocks join the head in the fan-out: one view, the head winning on
/// equal timestamps.
#[test]
fn a_fanout_merges_the_head_and_blocks() {
    use crate::tsdb::{Fanout, Head};
    let dir = tempfile::tempdir().unwrap();
    let meta = write(dir.path(), WriteOptions::default());
    let b = Arc::new(Block::open(&dir.path().join(&meta.ulid)).unwrap());
    let head = Arc::new(Head::default());
    let mut app = head.appender();
    app.append(&l(&[("__name__", "up"), ("job", "a")]), 5000, 9.0)
        .unwrap();
    app.append(&l(&[("__name__", "up"), ("job", "a")]), 6000, 1.0)
        .unwrap();
    app.append(&l(&[("__name__", "new")]), 6000, 1.0).unwrap();
    app.commit().unwrap();
    let f = Fanout::new(head).with(b);
    let q = f.querier(0, 10_000);
    let got = q.select(&[m(MatchType::Equal, "job", "a")]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].samples, vec![(0, 1.0), (5000, 9.0), (6000, 1.0)]);
    assert_eq!(q.label_values("__name__", &[]), ["new", "other", "up"]);
}

#[test]
fn the_writer_refuses_chunks_that_do_not_decode_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = encode_chunks(&[(0, 1.0), (10, 2.0)], 120);
    c.extend(encode_chunks(&[(30, 1.0), (20, 2.0)], 120));
    c[1].max_time = 30;
    let s = vec![BlockSeries {
        labels: l(&[("a", "b")]),
        chunks: c,
    }];
    let e = write_block(dir.path(), s, Default::default()).unwrap_err();
    assert!(e.to_string().contains("increasing time"), "{e}");
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing left behind"
    );
}

#[test]
fn histogram_chunks_round_trip_through_a_block_with_their_encodings() {
    use crate::tsdb::series_hist::testdata::{dump, float, int, nhcb};
    let dir = tempfile::tempdir().unwrap();
    // A counter with a reset and a stale marker, float histograms, custom
    // buckets, and a series whose sample type changes twice.
    let mut ints: Vec<(i64, HistValue)> = (0..300u64)
        .map(|i| (i as i64 * 1000, int(if i < 150 { i + 1 } else { i - 149 })))
        .collect();
    ints[200].1 = ints[200].1.stale_like();
    let floats: Vec<(i64, HistValue)> = (0..50).map(|i| (i * 1000, float(i as f64))).collect();
    let custom: Vec<(i64, HistValue)> = (0..20).map(|i| (i * 1000, nhcb(i as f64))).collect();
    let mixed_f: Vec<(i64, f64)> = (0..10)
        .chain(20..30)
        .map(|i| (i * 1000, i as f64))
        .collect();
    let mixed_h: Vec<(i64, HistValue)> = (10..20).map(|i| (i * 1000, int(i as u64))).collect();
    let series = vec![
        (l(&[("__name__", "ints")]), vec![], ints.clone()),
        (l(&[("__name__", "floats")]), vec![], floats),
        (l(&[("__name__", "custom")]), vec![], custom),
        (l(&[("__name__", "mixed")]), mixed_f, mixed_h),
    ];
    let blocks: Vec<BlockSeries> = series
        .iter()
        .map(|(labels, f, h)| BlockSeries {
            labels: labels.clone(),
            chunks: encode_series(f, h, 120),
        })
        .collect();
    let mixed = &blocks[3].chunks;
    let encodings: Vec<u8> = mixed.iter().map(|c| c.encoding).collect();
    assert_eq!(encodings, [1, 2, 1]);
    assert!(
        blocks[0].chunks.len() >= 3,
        "cut at the reset and the stale marker"
    );
    assert!(blocks[0].chunks.iter().all(|c| c.encoding == 2));
    assert!(blocks[1].chunks.iter().all(|c| c.encoding == 3));
    // Checked on write (chunks_checked is off by default).
    let meta = write_block(dir.path(), blocks.clone(), WriteOptions::default()).unwrap();
    assert_eq!(meta.stats.num_samples, 300 + 50 + 20 + 30);
    let b = Block::open(&dir.path().join(&meta.ulid)).unwrap();
    b.verify().unwrap();
    // What the head answers for the same samples.
    let head = crate::tsdb::Head::default();
    for (labels, f, h) in &series {
        let mut a = head.appender();
        let (mut i, mut j) = (0, 0);
        while i < f.len() || j < h.len() {
            if j == h.len() || (i < f.len() && f[i].0 < h[j].0) {
                a.append(labels, f[i].0, f[i].1).unwrap();
                i += 1;
            } else {
                a.append_histogram(labels, h[j].0, &h[j].1).unwrap();
                j += 1;
            }
        }
        a.commit().unwrap();
    }
    let want = dump(&head, i64::MIN, i64::MAX);
    assert_eq!(
        want.iter().map(|s| s.1.len() + s.2.len()).sum::<usize>(),
        400
    );
    assert_eq!(dump(&b, i64::MIN, i64::MAX), want);
    // The reset and the stale marker read back as such.
    let got = b
        .querier(149_000, 201_000)
        .select(&[m(MatchType::Equal, "__name__", "ints")]);
    let h = &got[0].histograms;
    assert_eq!(h.len(), 53);
    assert_eq!(h[1].1.to_float().count, int(1).to_float().count);
    // The chunk after the reset says so in its header (the first sample
    // of a chunk reads back with an unknown hint, as in Prometheus), byte
    // for byte as written.
    let series = b.all_series().unwrap();
    let (_, ints_series) = series
        .iter()
        .find(|(_, s)| s.labels == l(&[("__name__", "ints")]))
        .unwrap();
    let mut cursor = b.chunk_cursor();
    let on_disk: Vec<(u8, Vec<u8>)> = ints_series
        .chunks
        .iter()
        .map(|c| {
            let (enc, data) = cursor.raw(c).unwrap();
            (enc, data.to_vec())
        })
        .collect();
    let written: Vec<(u8, Vec<u8>)> = blocks[0]
        .chunks
        .iter()
        .map(|c| (c.encoding, c.data.clone()))
        .collect();
    assert_eq!(on_disk, written);
    assert_eq!(on_disk[1].1[2] & 0xc0, 0b1000_0000, "reset header");
    assert!(h[51].1.is_stale() && !h[52].1.is_stale());
    // Tombstones apply to histogram samples.
    b.delete(&[m(MatchType::Equal, "__name__", "ints")], 0, 99_000)
        .unwrap();
    let got = b
        .querier(i64::MIN, i64::MAX)
        .select(&[m(MatchType::Equal, "__name__", "ints")]);
    assert_eq!(got[0].histograms.first().map(|x| x.0), Some(100_000));
    assert_eq!(got[0].histograms.len(), 200);
}
