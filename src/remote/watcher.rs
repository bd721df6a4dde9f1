//! A remote-write queue's reader of the WAL, as Prometheus' WAL watcher:
//! it follows the segments from where the queue last got to, hands every
//! sample (and native-histogram sample, when the queue sends them) to the
//! shards (waiting when they are full: nothing is dropped for
//! lack of room), and persists how far the shards have *sent*, so a
//! restart resumes there: nothing skipped, and nothing sent twice unless
//! the process died between a send and the next save of the position.
//!
//! The position file is `wal/remote/<queue name>.pos` (`segment offset`).
//! Segments a queue has not read yet are kept by checkpoints (the queue
//! holds them), so an outage loses nothing while the disk has room.

use super::queue::Queue;
use super::shards::Value;
use crate::tsdb::wal::{self, Record, Wal};
use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// How long the reader sleeps at the end of the log.
const POLL: Duration = Duration::from_millis(100);
/// How often the sent position is saved.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// The reader's place in the log and what it has handed out.
pub(crate) struct Cursor {
    wal: Arc<Wal>,
    /// The queue's key in the WAL's holds and its position file.
    key: String,
    path: PathBuf,
    /// Next byte to read.
    seg: u64,
    off: u64,
    /// Sequence of the last samples record handed to the shards.
    seq: u64,
    /// `(seq, segment, offset)`: the position after each record, with the
    /// sequence that must be sent before it counts as done.
    marks: VecDeque<(u64, u64, u64)>,
    saved: (u64, u64),
    /// What decoding the rest of `seg` needs (each series' last value in
    /// it); `primed` once it covers the bytes before `off`.
    state: wal::SampleState,
    primed: bool,
}

/// A file-name-safe form of a queue name.
fn file_key(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn load(path: &Path) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut it = text.split_whitespace();
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

fn store(path: &Path, pos: (u64, u64)) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("pos.tmp");
    std::fs::write(&tmp, format!("{} {}\n", pos.0, pos.1))?;
    std::fs::rename(&tmp, path)
}

/// Bytes of segment `seg` from `off` on; `None` when the file is gone.
fn read_from(dir: &Path, seg: u64, off: u64) -> std::io::Result<Option<Vec<u8>>> {
    let mut f = match std::fs::File::open(dir.join(wal::segment_name(seg))) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    f.seek(SeekFrom::Start(off))?;
    let mut buf = Vec::new();
    f.read_to_end(&mut buf)?;
    Ok(Some(buf))
}

/// How a segment's decoding ended: cleanly, or at `(offset, reason)`.
type DecodeEnd = Result<(), (u64, String)>;

/// Decodes segment bytes read from `base` starting at segment offset
/// `off`; record ends and the damage's offset are segment offsets. Unless `primed`, the records
/// before `off` are decoded first, into `state` only (they were sent).
fn decode_from(
    state: &mut wal::SampleState,
    primed: &mut bool,
    bytes: &[u8],
    base: u64,
    off: u64,
) -> (Vec<(Record, u64)>, DecodeEnd) {
    let from = (off - base) as usize;
    if !*primed {
        let before = bytes.get(..from).unwrap_or(bytes);
        if let Err((at, reason)) = wal::read_records_at(before, 0, state, |_, _| {}) {
            tracing::warn!(offset = base + at, %reason,
                "remote write: damaged WAL record before the resume position");
        }
        *primed = true;
    }
    let mut recs: Vec<(Record, u64)> = Vec::new();
    let res = if from <= bytes.len() {
        wal::read_records_at(bytes, from, state, |r, end| recs.push((r, base + end)))
            .map_err(|(at, why)| (base + at, why))
    } else {
        Err((off, "segment shorter than the resume position".into()))
    };
    (recs, res)
}

impl Cursor {
    /// Where queue `name` resumes: its saved position, or (a new queue)
    /// the end of the log, so it sends what is written from now on.
    pub fn open(wal: Arc<Wal>, name: &str) -> Cursor {
        let key = file_key(name);
        let path = wal.dir.join("remote").join(format!("{key}.pos"));
        let mut saved = (u64::MAX, u64::MAX);
        let (seg, off) = match load(&path) {
            Some(p) => {
                tracing::info!(
                    remote_name = name,
                    segment = p.0,
                    offset = p.1,
                    "remote write resumes from its WAL position"
                );
                p
            }
            None => {
                // Saved at once: a queue whose endpoint is down from its
                // first second must not restart at the end of the log.
                let p = wal.position();
                match store(&path, p) {
                    Ok(()) => saved = p,
                    Err(e) => {
                        tracing::warn!(path = %path.display(), error = %e, "saving the remote-write WAL position failed")
                    }
                }
                p
            }
        };
        wal.hold(&key, seg);
        Cursor {
            wal,
            key,
            path,
            seg,
            off,
            seq: 0,
            marks: VecDeque::new(),
            saved,
            state: wal::SampleState::default(),
            primed: off == 0,
        }
    }

    /// Moves to the start of segment `seg`.
    fn goto(&mut self, seg: u64) {
        (self.seg, self.off) = (seg, 0);
        self.state.reset();
        self.primed = true;
    }

    /// Saves the position after everything the shards have sent.
    pub fn save(&mut self, queue: &Queue) {
        let through = queue.sent_through(self.seq);
        let mut pos = None;
        while let Some(&(seq, seg, off)) = self.marks.front() {
            if seq > through {
                break;
            }
            pos = Some((seg, off));
            self.marks.pop_front();
        }
        // Nothing outstanding: the read position is the sent one.
        if self.marks.is_empty() && through >= self.seq {
            pos = Some((self.seg, self.off));
        }
        let Some(pos) = pos else { return };
        if pos == self.saved {
            return;
        }
        match store(&self.path, pos) {
            Ok(()) => {
                self.saved = pos;
                self.wal.hold(&self.key, pos.0);
            }
            Err(e) => {
                tracing::warn!(path = %self.path.display(), error = %e, "saving the remote-write WAL position failed")
            }
        }
    }

    /// Stops holding segments (the queue was removed by a reload).
    pub fn forget(self) {
        self.wal.release(&self.key);
        let _ = std::fs::remove_file(&self.path);
    }
}

/// `stop` values: keep following the log.
pub(crate) const RUN: u8 = 0;
/// Read to the end of what is written (ingestion has stopped), then stop.
pub(crate) const DRAIN: u8 = 1;
/// Stop now.
pub(crate) const HALT: u8 = 2;

/// Follows the log until `stop` says so; returns the cursor for the final
/// save (after the shards have flushed).
pub(crate) async fn run(
    queue: Weak<Queue>,
    mut cur: Cursor,
    mut stop: watch::Receiver<u8>,
) -> Cursor {
    let mut last_save = Instant::now();
    loop {
        let mode = *stop.borrow();
        if mode == HALT {
            return cur;
        }
        let Some(q) = queue.upgrade() else {
            return cur;
        };
        q.note_highest_in();
        // The writer's segment is read before the data: if it is past
        // ours, ours is complete once read.
        let live = cur.wal.position().0;
        let dir = cur.wal.dir.clone();
        let (seg, off) = (cur.seg, cur.off);
        // Resuming inside a segment: its values are encoded against the
        // records before `off`, which are read again (and not sent).
        let base = if cur.primed { off } else { 0 };
        let data = tokio::task::spawn_blocking(move || read_from(&dir, seg, base)).await;
        let data = match data {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                tracing::warn!(segment = seg, error = %e, "remote write: reading the WAL failed");
                None
            }
            Err(_) => None,
        };
        let mut advanced = false;
        match data {
            None if seg < live => {
                // Removed (or never written, after a failed write): go on
                // with the next segment that exists.
                let next = wal::list_segments(&cur.wal.dir)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|n| *n > seg)
                    .unwrap_or(live);
                tracing::warn!(
                    segment = seg,
                    next,
                    "remote write: WAL segment missing, skipping to the next"
                );
                cur.goto(next);
                advanced = true;
            }
            None => {}
            Some(bytes) => {
                let (recs, res) = decode_from(&mut cur.state, &mut cur.primed, &bytes, base, off);
                let hists = q.sends_histograms();
                for (rec, end) in recs {
                    // Stopping inside a record: it counts as unread (the
                    // cursor is only saved from here on).
                    match rec {
                        Record::Samples(samples) => {
                            cur.seq += 1;
                            for (r, t, v) in samples {
                                if !q
                                    .enqueue_wait(r, t, Value::Float(v), cur.seq, &mut stop)
                                    .await
                                {
                                    return cur;
                                }
                            }
                        }
                        Record::Histograms(hs) if hists => {
                            cur.seq += 1;
                            for (r, t, h) in hs {
                                let v = Value::Histogram(Box::new(h));
                                if !q.enqueue_wait(r, t, v, cur.seq, &mut stop).await {
                                    return cur;
                                }
                            }
                        }
                        _ => {}
                    }
                    cur.off = end;
                    cur.marks.push_back((cur.seq, cur.seg, cur.off));
                    advanced = true;
                }
                if let Err((at, reason)) = res {
                    if seg < live {
                        tracing::error!(file = %cur.wal.dir.join(wal::segment_name(seg)).display(), offset = at, %reason,
                            "remote write: damaged WAL record; skipping the rest of the segment");
                        cur.goto(seg + 1);
                        advanced = true;
                    }
                    // In the live segment: a write in progress; read again.
                } else if seg < live && cur.off == base + bytes.len() as u64 {
                    cur.goto(seg + 1);
                    advanced = true;
                }
            }
        }
        // Exemplars whose samples are now with the shards follow them.
        if !q
            .release_exemplars((cur.seg, cur.off), cur.seq, &mut stop)
            .await
        {
            return cur;
        }
        if last_save.elapsed() >= SAVE_EVERY {
            cur.save(&q);
            last_save = Instant::now();
        }
        drop(q);
        if !advanced {
            if mode == DRAIN {
                return cur;
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reader_resuming_inside_a_segment_decodes_what_follows() {
        use crate::model::Labels;
        use crate::tsdb::Head;
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(Wal::open(dir.path(), wal::WalOptions::default()).unwrap());
        let head = Head::default();
        head.attach_wal(wal.clone()).unwrap();
        let write = |from: i64, to: i64| {
            let mut want = Vec::new();
            for t in from..to {
                let mut a = head.appender();
                for i in 0..3 {
                    let l =
                        Labels::from_pairs([("__name__", "m".to_string()), ("i", i.to_string())]);
                    let v = (t * (i + 1)) as f64 / 10.0;
                    let r = a.append(&l, t * 1000, v).unwrap();
                    want.push((r.0, t * 1000, v.to_bits()));
                }
                a.commit().unwrap();
            }
            want
        };
        write(0, 10);
        let (seg, off) = wal.position();
        assert!(off > 0);
        let want = write(10, 20);
        let bytes = read_from(dir.path(), seg, 0).unwrap().unwrap();
        let samples = |recs: Vec<(Record, u64)>| -> Vec<(u64, i64, u64)> {
            recs.into_iter()
                .flat_map(|(r, _)| match r {
                    Record::Samples(s) => s,
                    _ => Vec::new(),
                })
                .map(|(r, t, v)| (r, t, v.to_bits()))
                .collect()
        };
        // Primed on the records before the position: exactly what followed.
        let (mut state, mut primed) = (wal::SampleState::default(), false);
        let (recs, res) = decode_from(&mut state, &mut primed, &bytes, 0, off);
        assert_eq!(res, Ok(()));
        assert_eq!(recs.last().map(|r| r.1), Some(bytes.len() as u64));
        assert_eq!(samples(recs), want);
        // Bytes read from the position on, continuing a primed state.
        let (mut state, mut primed) = (wal::SampleState::default(), false);
        let _ = decode_from(&mut state, &mut primed, &bytes[..off as usize], 0, off);
        let tail = read_from(dir.path(), seg, off).unwrap().unwrap();
        let (recs, res) = decode_from(&mut state, &mut primed, &tail, off, off);
        assert_eq!(res, Ok(()));
        assert_eq!(samples(recs), want);
        // Without the records before it, the values cannot be decoded.
        let (mut state, mut primed) = (wal::SampleState::default(), true);
        let (_, res) = decode_from(&mut state, &mut primed, &tail, off, off);
        assert!(res.is_err());
    }

    #[test]
    fn positions_round_trip_and_names_are_file_safe() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("remote").join("a.pos");
        assert_eq!(load(&p), None);
        store(&p, (3, 4096)).unwrap();
        assert_eq!(load(&p), Some((3, 4096)));
        assert_eq!(file_key("../x y/z"), ".._x_y_z");
    }
}
