//! The head's native-histogram append path, beside the float one in
//! `head.rs`: checks (the same rules and counters as floats), applying a
//! batch's histograms in order with its floats, and the in-memory append
//! replay and tests use.

use super::head::{Head, SeriesHandle};
use super::head_chunks::MappedChunk;
use super::series::{Appended, Series};
use super::series_hist::HistValue;
use super::storage::{CommitError, PendingSample};
use super::wal::{self, Kind, Wal, WalError};
use super::wal_hist;
use super::{AppendError, SeriesRef};
use crate::model::Labels;
use std::sync::atomic::Ordering::{Acquire, Release};
use std::sync::Arc;

/// A histogram waiting in a batch for its commit.
pub(crate) struct PendingHist {
    pub series: Arc<Series>,
    pub r: SeriesRef,
    pub t: i64,
    pub v: HistValue,
    /// How many of the batch's float samples were appended before it, so
    /// a commit applies both in the order they were appended.
    pub after: usize,
}

impl Head {
    /// Whether histogram `v` may be appended to `h` at `t` (see
    /// [`Head::check_append`]); an invalid histogram is rejected here.
    pub(crate) fn check_append_histogram(
        &self,
        h: &SeriesHandle,
        t: i64,
        v: &HistValue,
    ) -> Result<bool, AppendError> {
        let r = h.series_ref().0;
        if v.validate().is_err() {
            return Err(AppendError::InvalidHistogram);
        }
        let res = if t < self.cutoff() {
            Err(AppendError::OutOfBounds)
        } else {
            let data = h.series.data.lock();
            if h.series.removed.load(Acquire) {
                return Err(AppendError::UnknownSeries);
            }
            data.appendable_histogram(t, v)
        };
        if let Err(e) = res {
            self.count_rejection_for(r, e);
        }
        res
    }

    /// Stores one histogram (checked before; the head may have moved on
    /// since, so the rules are applied again). Returns whether it was stored.
    fn store_histogram(&self, series: &Series, r: SeriesRef, t: i64, v: &HistValue) -> bool {
        let res = {
            let mut data = series.data.lock();
            if series.removed.load(Acquire) {
                return false;
            }
            series.changed();
            data.append_histogram(t, v)
        };
        match res {
            Ok(Appended::Stored { cut }) => {
                self.note_hist_cut(r, cut);
                self.note_stored(r.0, 1, t, t);
                if !self.replaying() {
                    self.observe_histogram(r, t, v);
                }
                true
            }
            Ok(Appended::Duplicate) => false,
            Err(e) => {
                self.count_rejection_for(r.0, e);
                false
            }
        }
    }

    /// The histogram samples of series `r` held in memory (for
    /// checkpoints: chunks in the head chunk files are restored from there).
    pub(crate) fn histograms_of(&self, r: u64) -> Vec<(i64, HistValue)> {
        let mut out = Vec::new();
        if let Some(h) = self.handle(SeriesRef(r)) {
            h.series
                .data
                .lock()
                .histograms_in(None, i64::MIN, i64::MAX, &mut out);
        }
        out
    }

    /// Gives series `r` the histogram chunks read back from the head chunk
    /// files (replay); returns the newest time they cover, so the WAL adds
    /// only later histograms. `None` when the series is unknown or has none.
    pub(crate) fn restore_mapped_hist(&self, r: u64, chunks: Vec<MappedChunk>) -> Option<i64> {
        let s = self.handle(SeriesRef(r))?;
        let mut data = s.series.data.lock();
        s.series.changed();
        let hist = data.hist.get_or_insert_with(Default::default);
        let (newest, added) = hist.restore_mapped(chunks);
        if hist.is_empty() {
            data.hist = None;
        }
        if let (Some(first), Some(last)) = (added.first(), added.last()) {
            self.widen_bounds(first.mint, last.maxt);
        }
        newest
    }

    /// Tells the append observer about a stored histogram.
    fn observe_histogram(&self, r: SeriesRef, t: i64, v: &HistValue) {
        if let Some(o) = self.append_observer() {
            o.on_append_histogram(self, r, t, v);
        }
    }

    /// Commits a batch holding histograms: floats and histograms are
    /// applied in the order they were appended, each run of floats
    /// through the float commit and each run of histograms logged with
    /// one WAL write (series records for series the log lacks, then one
    /// record per histogram kind) and then applied.
    pub(crate) fn commit_mixed(
        &self,
        samples: &[PendingSample],
        hists: Vec<PendingHist>,
    ) -> Result<(), CommitError> {
        let mut done = 0;
        let mut hists = hists.into_iter().peekable();
        while let Some(first) = hists.next() {
            if first.after > done {
                self.commit_batch(&samples[done..first.after])?;
                done = first.after;
            }
            let mut run = vec![first];
            while let Some(h) = hists.next_if(|h| h.after == done) {
                run.push(h);
            }
            let _shared = self.commit_shared();
            if let Some(wal) = self.wal() {
                if let Err(e) = self.log_histograms(wal, &run) {
                    tracing::error!(error = %e, histograms = run.len(), "WAL write failed; histograms not committed");
                    return Err(CommitError::Wal(e.to_string()));
                }
            }
            for h in &run {
                self.store_histogram(&h.series, h.r, h.t, &h.v);
            }
        }
        self.commit_batch(&samples[done..])
    }

    /// One WAL write for a run of histograms.
    fn log_histograms(&self, wal: &Wal, run: &[PendingHist]) -> Result<(), WalError> {
        let mut new: Vec<&PendingHist> = run
            .iter()
            .filter(|p| !p.series.logged.load(Acquire))
            .collect();
        new.sort_unstable_by_key(|p| p.r.0);
        new.dedup_by_key(|p| p.r.0);
        let mut series_payload = Vec::new();
        if !new.is_empty() {
            let labels: Vec<(u64, Labels)> = new
                .iter()
                .filter_map(|p| Some((p.r.0, self.labels_of(&p.series)?)))
                .collect();
            wal::encode_series(&mut series_payload, labels.iter().map(|(r, l)| (*r, l)));
        }
        // One payload per record kind, in the batch's order within each.
        let mut payloads: Vec<(Kind, Vec<u8>)> = Vec::new();
        for kind in wal_hist::KINDS {
            let of_kind: Vec<(u64, i64, &HistValue)> = run
                .iter()
                .filter(|p| wal_hist::kind_of(&p.v) == kind)
                .map(|p| (p.r.0, p.t, &p.v))
                .collect();
            if !of_kind.is_empty() {
                let mut buf = Vec::new();
                wal_hist::encode(&mut buf, &of_kind);
                payloads.push((kind, buf));
            }
        }
        // Frame headers: a few bytes per record.
        let bound = series_payload.len()
            + payloads.iter().map(|(_, p)| p.len()).sum::<usize>()
            + 16 * (payloads.len() + 1);
        let res = wal.log_batch(
            bound,
            |_, f| {
                if !series_payload.is_empty() {
                    f.payload().extend_from_slice(&series_payload);
                    f.finish(Kind::Series);
                }
                for (kind, p) in &payloads {
                    f.payload().extend_from_slice(p);
                    f.finish(*kind);
                }
            },
            || {},
        );
        if res.is_ok() {
            for p in new {
                p.series.logged.store(true, Release);
            }
        }
        res
    }

    /// Appends a histogram to series `r` in memory only, bypassing the WAL
    /// (as [`Head::append`] for floats: replay and tests use it).
    pub fn append_histogram(&self, r: SeriesRef, t: i64, v: &HistValue) -> Result<(), AppendError> {
        let h = self.handle(r).ok_or(AppendError::UnknownSeries)?;
        self.append_histogram_to(&h, t, v)
    }

    /// [`Head::append_histogram`] through a handle.
    pub fn append_histogram_to(
        &self,
        h: &SeriesHandle,
        t: i64,
        v: &HistValue,
    ) -> Result<(), AppendError> {
        let r = h.series_ref();
        if self.check_append_histogram(h, t, v)? {
            let res = {
                let mut data = h.series.data.lock();
                h.series.changed();
                data.append_histogram(t, v)
            };
            match res {
                Ok(Appended::Stored { cut }) => {
                    self.note_hist_cut(r, cut);
                    self.note_stored(r.0, 1, t, t);
                    if !self.replaying() {
                        self.observe_histogram(r, t, v);
                    }
                }
                Ok(Appended::Duplicate) => {}
                Err(e) => {
                    self.count_rejection_for(r.0, e);
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::histogram::notation::parse_histogram;
    use crate::tsdb::Queryable;

    fn fh(s: &str) -> HistValue {
        HistValue::Float(parse_histogram(s).unwrap().histogram)
    }

    #[test]
    fn histograms_and_floats_share_the_order_rules_and_read_back() {
        let head = Head::default();
        let l = Labels::from_pairs([("__name__", "h")]);
        let mut a = head.appender();
        let r = a
            .append_histogram(&l, 10, &fh("{{count:1 sum:1 buckets:[1]}}"))
            .unwrap();
        a.append_histogram_ref(r, 20, &fh("{{count:2 sum:2 buckets:[2]}}"))
            .unwrap();
        // A float later in the same batch, then a histogram again.
        a.append_ref(r, 30, 5.0).unwrap();
        a.append_histogram_ref(r, 40, &fh("{{count:3 sum:3 buckets:[3]}}"))
            .unwrap();
        assert_eq!(
            a.append_histogram_ref(r, 35, &fh("{{count:3 sum:3 buckets:[3]}}")),
            Err(AppendError::OutOfOrder)
        );
        a.commit().unwrap();
        let got = head.querier(0, 100).select(&[]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].samples, [(30, 5.0)]);
        let ts: Vec<i64> = got[0].histograms.iter().map(|(t, _)| *t).collect();
        assert_eq!(ts, [10, 20, 40]);

        let mut a = head.appender();
        // Same timestamp: an equal histogram is a no-op, another one a duplicate.
        assert_eq!(
            a.append_histogram_ref(r, 40, &fh("{{count:3 sum:3 buckets:[3]}}")),
            Ok(())
        );
        assert_eq!(
            a.append_histogram_ref(r, 40, &fh("{{count:4 sum:3 buckets:[4]}}")),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!(
            a.append_ref(r, 40, 1.0),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!(a.append_ref(r, 39, 1.0), Err(AppendError::OutOfOrder));
        // Invalid: count below the buckets' total.
        let bad = HistValue::Int(crate::model::histogram::Histogram {
            count: 1,
            sum: 3.0,
            positive_spans: vec![crate::model::histogram::Span::new(0, 1)],
            positive_buckets: vec![4],
            ..Default::default()
        });
        assert_eq!(
            a.append_histogram_ref(r, 50, &bad),
            Err(AppendError::InvalidHistogram)
        );
        // A float stale marker on a histogram series becomes a histogram one.
        a.append_ref(r, 60, crate::model::STALE_NAN).unwrap();
        a.commit().unwrap();
        let got = head.querier(41, 100).select(&[]);
        assert!(got[0].samples.is_empty());
        assert_eq!(got[0].histograms.len(), 1);
        assert!(got[0].histograms[0].1.is_stale());
        assert_eq!(head.stats().samples_appended, 5);
        // Retention drops histogram chunks and empty series like float ones.
        head.truncate(1000);
        assert_eq!(head.num_series(), 0);
    }

    /// The append check skips the lock for a float after the series'
    /// newest float; a histogram stored since must end that shortcut.
    #[test]
    fn a_float_after_a_newer_histogram_is_out_of_order() {
        let head = Head::default();
        let l = Labels::from_pairs([("__name__", "m")]);
        let mut a = head.appender();
        let r = a.append(&l, 100, 1.0).unwrap();
        a.commit().unwrap();
        let mut a = head.appender();
        a.append_histogram_ref(r, 200, &fh("{{count:1 sum:1 buckets:[1]}}"))
            .unwrap();
        a.commit().unwrap();
        let mut a = head.appender();
        assert_eq!(a.append_ref(r, 150, 2.0), Err(AppendError::OutOfOrder));
        assert_eq!(
            a.append_ref(r, 200, 2.0),
            Err(AppendError::DuplicateTimestamp)
        );
        a.append_ref(r, 300, 3.0).unwrap();
        a.commit().unwrap();
        // After a float again: the shortcut's bound is that float.
        let mut a = head.appender();
        assert_eq!(
            a.append_ref(r, 300, 4.0),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!(a.append_ref(r, 300, 3.0), Ok(()));
        assert_eq!(a.append_ref(r, 250, 3.0), Err(AppendError::OutOfOrder));
        a.append_ref(r, 400, 5.0).unwrap();
        a.commit().unwrap();
        let got = head.querier(0, 1000).select(&[]);
        assert_eq!(got[0].samples, [(100, 1.0), (300, 3.0), (400, 5.0)]);
    }

    /// The batch's rules find a series' own pending histogram when other
    /// series' histograms came after it (the lookup is by series, not the
    /// batch's last entry).
    #[test]
    fn a_batch_checks_each_series_against_its_own_pending_histogram() {
        let head = Head::default();
        let mut a = head.appender();
        let refs: Vec<SeriesRef> = (0..50)
            .map(|i| {
                let l = Labels::from_pairs([("__name__", "h".to_string()), ("i", i.to_string())]);
                a.append_histogram(&l, 10, &fh("{{count:1 sum:1 buckets:[1]}}"))
                    .unwrap()
            })
            .collect();
        let first = refs[0];
        assert_eq!(
            a.append_histogram_ref(first, 10, &fh("{{count:1 sum:1 buckets:[1]}}")),
            Ok(()),
            "an equal histogram at the same time is a no-op"
        );
        assert_eq!(
            a.append_histogram_ref(first, 10, &fh("{{count:2 sum:1 buckets:[2]}}")),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!(
            a.append_histogram_ref(first, 5, &fh("{{count:2 sum:1 buckets:[2]}}")),
            Err(AppendError::OutOfOrder)
        );
        // A float staleness marker becomes a histogram one for every series.
        for r in &refs {
            a.append_ref(*r, 20, crate::model::STALE_NAN).unwrap();
        }
        a.commit().unwrap();
        let got = head.querier(0, 100).select(&[]);
        assert_eq!(got.len(), 50);
        for s in &got {
            assert!(s.samples.is_empty(), "{:?}", s.samples);
            assert_eq!(s.histograms.len(), 2);
            assert!(s.histograms[1].1.is_stale());
        }
    }
}
