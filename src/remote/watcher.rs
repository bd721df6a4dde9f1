//! A remote-write queue's reader of the WAL, as Prometheus' WAL watcher:
//! it follows the segments from where the queue last got to, hands every
//! sample to the shards (waiting when they are full: nothing is dropped for
//! lack of room), and persists how far the shards have *sent*, so a
//! restart resumes there: nothing skipped, and nothing sent twice unless
//! the process died between a send and the next save of the position.
//!
//! The position file is `wal/remote/<queue name>.pos` (`segment offset`).
//! Segments a queue has not read yet are kept by checkpoints (the queue
//! holds them), so an outage loses nothing while the disk has room.

use super::queue::Queue;
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

impl Cursor {
    /// Where queue `name` resumes: its saved position, or (a new queue)
    /// the end of the log, so it sends what is written from now on.
    pub fn open(wal: Arc<Wal>, name: &str) -> Cursor {
        let key = file_key(name);
        let path = wal.dir.join("remote").join(format!("{key}.pos"));
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
            None => wal.position(),
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
            saved: (u64::MAX, u64::MAX),
        }
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
        let data = tokio::task::spawn_blocking(move || read_from(&dir, seg, off)).await;
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
                (cur.seg, cur.off) = (next, 0);
                advanced = true;
            }
            None => {}
            Some(bytes) => {
                let mut recs: Vec<(Record, u64)> = Vec::new();
                let res = wal::read_records_at(&bytes, 0, |r, end| recs.push((r, end)));
                for (rec, end) in recs {
                    if let Record::Samples(samples) = rec {
                        cur.seq += 1;
                        for (r, t, v) in samples {
                            if !q.enqueue_wait(r, t, v, cur.seq, &mut stop).await {
                                // Stopping: this record counts as unread.
                                return cur;
                            }
                        }
                    }
                    cur.off = off + end;
                    cur.marks.push_back((cur.seq, cur.seg, cur.off));
                    advanced = true;
                }
                if let Err((at, reason)) = res {
                    if seg < live {
                        tracing::error!(file = %cur.wal.dir.join(wal::segment_name(seg)).display(), offset = off + at, %reason,
                            "remote write: damaged WAL record; skipping the rest of the segment");
                        (cur.seg, cur.off) = (seg + 1, 0);
                        advanced = true;
                    }
                    // In the live segment: a write in progress; read again.
                } else if seg < live && cur.off == off + bytes.len() as u64 {
                    (cur.seg, cur.off) = (seg + 1, 0);
                    advanced = true;
                }
            }
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
    fn positions_round_trip_and_names_are_file_safe() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("remote").join("a.pos");
        assert_eq!(load(&p), None);
        store(&p, (3, 4096)).unwrap();
        assert_eq!(load(&p), Some((3, 4096)));
        assert_eq!(file_key("../x y/z"), ".._x_y_z");
    }
}
