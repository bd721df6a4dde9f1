//! The storage seam: how samples get in (an [`Appender`] per batch) and
//! how they are read (a [`Queryable`] opened as a [`Querier`] over a time
//! range), as Prometheus' `storage.Appender` and `storage.Querier`.
//!
//! The head implements both; persisted blocks will implement
//! [`Queryable`] too, and [`Fanout`] merges several sources into one view.

use super::head::{Head, SeriesHandle};
use super::head_hist::PendingHist;
use super::mem::IdMap;
use super::series::Series;
use super::series_hist::{stale_marker, HistValue};
use super::{AppendError, SeriesData, SeriesRef};
use crate::model::{Labels, Matcher};
use std::sync::Arc;

/// A read view over `[mint, maxt]` (milliseconds, inclusive).
pub trait Querier {
    /// Series matching every matcher with a sample in the range, with those
    /// samples, sorted by label set.
    fn select(&self, matchers: &[Matcher]) -> Vec<SeriesData>;
    /// Label sets of the series `select` would return, sorted.
    fn series(&self, matchers: &[Matcher]) -> Vec<Labels>;
    /// Sorted label names of the matching series.
    fn label_names(&self, matchers: &[Matcher]) -> Vec<String>;
    /// Sorted values of `name` over the matching series.
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String>;
}

/// Something that can be read over a time range.
pub trait Queryable: Send + Sync {
    fn querier(&self, mint: i64, maxt: i64) -> Box<dyn Querier + '_>;
}

impl<T: Queryable + ?Sized> Queryable for Arc<T> {
    fn querier(&self, mint: i64, maxt: i64) -> Box<dyn Querier + '_> {
        (**self).querier(mint, maxt)
    }
}

impl<T: Queryable + ?Sized> Queryable for &T {
    fn querier(&self, mint: i64, maxt: i64) -> Box<dyn Querier + '_> {
        (**self).querier(mint, maxt)
    }
}

/// The head read over a range.
pub struct HeadQuerier<'h> {
    head: &'h Head,
    mint: i64,
    maxt: i64,
}

impl Querier for HeadQuerier<'_> {
    fn select(&self, matchers: &[Matcher]) -> Vec<SeriesData> {
        self.head.select(matchers, self.mint, self.maxt)
    }
    fn series(&self, matchers: &[Matcher]) -> Vec<Labels> {
        self.head.series_matching(matchers, self.mint, self.maxt)
    }
    fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        self.head.label_names(matchers, self.mint, self.maxt)
    }
    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        self.head.label_values(name, matchers, self.mint, self.maxt)
    }
}

impl Queryable for Head {
    fn querier(&self, mint: i64, maxt: i64) -> Box<dyn Querier + '_> {
        Box::new(HeadQuerier {
            head: self,
            mint,
            maxt,
        })
    }
}

/// Several sources read as one: series with equal label sets are merged
/// (samples in time order; where two sources hold the same timestamp, the
/// first source wins), label names and values are unions.
#[derive(Clone, Default)]
pub struct Fanout {
    sources: Vec<Arc<dyn Queryable>>,
}

impl Fanout {
    /// `primary` first: it wins on equal timestamps (the head, whose data
    /// is the newest).
    pub fn new(primary: Arc<dyn Queryable>) -> Fanout {
        Fanout {
            sources: vec![primary],
        }
    }

    pub fn with(mut self, secondary: Arc<dyn Queryable>) -> Fanout {
        self.sources.push(secondary);
        self
    }
}

impl Queryable for Fanout {
    fn querier(&self, mint: i64, maxt: i64) -> Box<dyn Querier + '_> {
        if let [only] = self.sources.as_slice() {
            return only.querier(mint, maxt);
        }
        Box::new(FanoutQuerier {
            queriers: self.sources.iter().map(|s| s.querier(mint, maxt)).collect(),
        })
    }
}

/// The [`Querier`] of a [`Fanout`].
pub struct FanoutQuerier<'a> {
    queriers: Vec<Box<dyn Querier + 'a>>,
}

/// Merges sorted, deduplicated string lists.
fn union(lists: Vec<Vec<String>>) -> Vec<String> {
    let mut all: Vec<String> = lists.into_iter().flatten().collect();
    all.sort_unstable();
    all.dedup();
    all
}

impl<'a> FanoutQuerier<'a> {
    /// Reads `queriers` as one (the first wins on equal timestamps).
    pub fn new(queriers: Vec<Box<dyn Querier + 'a>>) -> FanoutQuerier<'a> {
        FanoutQuerier { queriers }
    }
}

/// Merges two time-ordered sample lists; on equal timestamps `a` wins.
pub(crate) fn merge_samples(a: Vec<(i64, f64)>, b: Vec<(i64, f64)>) -> Vec<(i64, f64)> {
    merge_by_time(a, b)
}

/// [`merge_samples`] for any sample value (histograms too).
pub(crate) fn merge_by_time<T>(a: Vec<(i64, T)>, b: Vec<(i64, T)>) -> Vec<(i64, T)> {
    if b.is_empty() {
        return a;
    }
    if a.is_empty() {
        return b;
    }
    let mut out = Vec::with_capacity(a.len() + b.len());
    let mut a = a.into_iter().peekable();
    let mut b = b.into_iter().peekable();
    while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
        match x.0.cmp(&y.0) {
            std::cmp::Ordering::Less => out.extend(a.next()),
            std::cmp::Ordering::Greater => out.extend(b.next()),
            std::cmp::Ordering::Equal => {
                out.extend(a.next());
                b.next();
            }
        }
    }
    out.extend(a);
    out.extend(b);
    out
}

impl Querier for FanoutQuerier<'_> {
    fn select(&self, matchers: &[Matcher]) -> Vec<SeriesData> {
        let mut out: Vec<SeriesData> = Vec::new();
        for q in &self.queriers {
            let next = q.select(matchers);
            if out.is_empty() {
                out = next;
                continue;
            }
            // Both sorted by labels: a merge join.
            let prev = std::mem::take(&mut out);
            let mut a = prev.into_iter().peekable();
            let mut b = next.into_iter().peekable();
            loop {
                let ord = match (a.peek(), b.peek()) {
                    (Some(x), Some(y)) => x.labels.cmp(&y.labels),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => break,
                };
                match ord {
                    std::cmp::Ordering::Less => out.extend(a.next()),
                    std::cmp::Ordering::Greater => out.extend(b.next()),
                    std::cmp::Ordering::Equal => {
                        if let (Some(x), Some(y)) = (a.next(), b.next()) {
                            out.push(SeriesData {
                                labels: x.labels,
                                samples: merge_samples(x.samples, y.samples),
                                histograms: merge_by_time(x.histograms, y.histograms),
                            });
                        }
                    }
                }
            }
        }
        out
    }

    fn series(&self, matchers: &[Matcher]) -> Vec<Labels> {
        let mut all: Vec<Labels> = self
            .queriers
            .iter()
            .flat_map(|q| q.series(matchers))
            .collect();
        all.sort();
        all.dedup();
        all
    }

    fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        union(
            self.queriers
                .iter()
                .map(|q| q.label_names(matchers))
                .collect(),
        )
    }

    fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        union(
            self.queriers
                .iter()
                .map(|q| q.label_values(name, matchers))
                .collect(),
        )
    }
}

/// Why a batch could not be committed. Nothing of the batch is visible.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommitError {
    #[error("write-ahead log: {0}")]
    Wal(String),
}

/// A batch of samples for one commit. Samples are checked when appended
/// (out of bounds, out of order, duplicate: the error comes back at once
/// and the sample is not kept), and become durable and visible together
/// on [`Appender::commit`]; dropping or rolling back discards them.
pub trait Appender {
    /// Appends by label set, creating the series if needed.
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError>;
    /// Appends to a series by a reference obtained earlier.
    fn append_ref(&mut self, r: SeriesRef, t: i64, v: f64) -> Result<(), AppendError>;
    /// Appends a native histogram (integer or float counts) by label set,
    /// with the float rules (out of bounds, out of order, duplicate) plus
    /// Prometheus' histogram validation.
    fn append_histogram(
        &mut self,
        labels: &Labels,
        t: i64,
        v: &HistValue,
    ) -> Result<SeriesRef, AppendError>;
    /// Appends a native histogram by reference.
    fn append_histogram_ref(
        &mut self,
        r: SeriesRef,
        t: i64,
        v: &HistValue,
    ) -> Result<(), AppendError>;
    fn commit(self: Box<Self>) -> Result<(), CommitError>;
    fn rollback(self: Box<Self>);
}

/// Something that hands out appenders.
pub trait Appendable: Send + Sync {
    fn appender(&self) -> Box<dyn Appender + '_>;
}

impl Appendable for Head {
    fn appender(&self) -> Box<dyn Appender + '_> {
        Box::new(Head::appender(self))
    }
}

pub(crate) struct PendingSample {
    pub series: Arc<Series>,
    pub r: SeriesRef,
    pub t: i64,
    pub v: f64,
    /// Where the series' open chunk ended when the sample was checked: a
    /// prefetch hint for the commit, never dereferenced.
    pub tail: usize,
}

/// The head's appender. Series are created in the head when first
/// appended (as Prometheus does); a series' record goes to the log with
/// the first batch that logs a sample of it.
pub struct HeadAppender<'h> {
    pub(crate) head: &'h Head,
    pub(crate) samples: Vec<PendingSample>,
    /// Newest pending sample per series (time, value bits), kept once the
    /// batch's references stop ascending; until then a series' pending
    /// samples are contiguous and the last one is all there is to check.
    pub(crate) newest: Option<IdMap<u64, (i64, u64)>>,
    /// Pending histograms, in append order (empty for float-only batches,
    /// which commit through the float path alone).
    pub(crate) hists: Vec<PendingHist>,
    /// Index in `hists` of each series' newest pending histogram: the
    /// batch's append rules look it up instead of scanning the batch
    /// (a scrape with n histograms would otherwise cost n² steps).
    pub(crate) hist_last: IdMap<u64, usize>,
}

impl<'h> HeadAppender<'h> {
    /// Finds or creates a series (`true` when created), for callers that
    /// cache references. Rejects an empty label set.
    pub fn get_or_create(&mut self, labels: &Labels) -> Result<(SeriesRef, bool), AppendError> {
        self.head.try_get_or_create(labels)
    }

    /// Appends by label set.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        let (r, _) = self.get_or_create(labels)?;
        self.append_ref(r, t, v)?;
        Ok(r)
    }

    /// Appends by reference.
    pub fn append_ref(&mut self, r: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
        let h = self.head.handle(r).ok_or(AppendError::UnknownSeries)?;
        self.append_handle(&h, t, v)
    }

    /// Appends through a cached handle (the scrape loop's fast path).
    pub fn append_handle(&mut self, h: &SeriesHandle, t: i64, v: f64) -> Result<(), AppendError> {
        if crate::model::is_stale_nan(v) {
            // On a series whose newest sample is a histogram, a staleness
            // marker is a histogram one (as Prometheus' appender does).
            if let Some(float) = self.last_histogram_kind(h) {
                return self.append_histogram_handle(h, t, &stale_marker(float));
            }
        }
        let r = h.series_ref();
        // The append rules hold within the batch too: the head only knows
        // what is committed.
        if let Some((last_t, last_bits)) = self.newest_pending(r) {
            if !self.batch_verdict(r, t, last_t, || v.to_bits() == last_bits)? {
                return Ok(());
            }
        }
        if let Some(tail) = self.head.check_append(h, t, v)? {
            self.samples.push(PendingSample {
                series: h.series.clone(),
                r,
                t,
                v,
                tail,
            });
            if let Some(m) = &mut self.newest {
                m.insert(r.0, (t, v.to_bits()));
            }
        }
        Ok(())
    }

    /// The append rules against the batch's newest sample of series `r`
    /// (at `last_t`): `Ok(true)` to go on, `Ok(false)` for an exact
    /// duplicate (`equal` tells, asked only at the same timestamp), an
    /// error (counted) otherwise.
    fn batch_verdict(
        &self,
        r: SeriesRef,
        t: i64,
        last_t: i64,
        equal: impl FnOnce() -> bool,
    ) -> Result<bool, AppendError> {
        let verdict = if t < last_t {
            Err(AppendError::OutOfOrder)
        } else if t > last_t {
            Ok(true)
        } else if equal() {
            Ok(false)
        } else {
            Err(AppendError::DuplicateTimestamp)
        };
        if let Err(e) = verdict {
            self.head.count_rejected(r, e);
        }
        verdict
    }

    /// Appends a histogram by label set.
    pub fn append_histogram(
        &mut self,
        labels: &Labels,
        t: i64,
        v: &HistValue,
    ) -> Result<SeriesRef, AppendError> {
        let (r, _) = self.get_or_create(labels)?;
        self.append_histogram_ref(r, t, v)?;
        Ok(r)
    }

    /// Appends a histogram by reference.
    pub fn append_histogram_ref(
        &mut self,
        r: SeriesRef,
        t: i64,
        v: &HistValue,
    ) -> Result<(), AppendError> {
        let h = self.head.handle(r).ok_or(AppendError::UnknownSeries)?;
        self.append_histogram_handle(&h, t, v)
    }

    /// Appends a histogram through a cached handle.
    pub fn append_histogram_handle(
        &mut self,
        h: &SeriesHandle,
        t: i64,
        v: &HistValue,
    ) -> Result<(), AppendError> {
        self.append_histogram_owned(h, t, std::borrow::Cow::Borrowed(v))
    }

    /// [`HeadAppender::append_histogram_handle`] keeping `v` without a copy
    /// when it is owned (a scrape's histograms).
    pub fn append_histogram_owned(
        &mut self,
        h: &SeriesHandle,
        t: i64,
        v: std::borrow::Cow<'_, HistValue>,
    ) -> Result<(), AppendError> {
        let r = h.series_ref();
        // The rules hold within the batch, against both sample types.
        let last_float = self.newest_pending(r).map(|(t, _)| t);
        let last_hist = self.pending_histogram(r);
        let newest = match (last_hist.map(|p| p.t), last_float) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        if let Some(last_t) = newest {
            let equal = || last_float != Some(t) && last_hist.is_some_and(|p| p.v.equals(&v));
            if !self.batch_verdict(r, t, last_t, equal)? {
                return Ok(());
            }
        }
        if self.head.check_append_histogram(h, t, &v)? {
            self.hist_last.insert(r.0, self.hists.len());
            self.hists.push(PendingHist {
                series: h.series.clone(),
                r,
                t,
                v: v.into_owned(),
                after: self.samples.len(),
            });
        }
        Ok(())
    }

    /// Whether the newest sample of the series (this batch included) is a
    /// histogram: `Some(true)` float, `Some(false)` integer counts.
    fn last_histogram_kind(&mut self, h: &SeriesHandle) -> Option<bool> {
        let r = h.series_ref();
        let float_t = self.newest_pending(r).map(|(t, _)| t);
        if let Some(p) = self.pending_histogram(r) {
            if float_t.is_none_or(|ft| ft < p.t) {
                return Some(matches!(p.v, HistValue::Float(_)));
            }
            return None;
        }
        if float_t.is_some() {
            return None;
        }
        h.series.data.lock().last_histogram_kind()
    }

    /// The newest histogram of `r` already in this batch.
    fn pending_histogram(&self, r: SeriesRef) -> Option<&PendingHist> {
        self.hist_last.get(&r.0).and_then(|&i| self.hists.get(i))
    }

    /// The newest sample of `r` already in this batch.
    fn newest_pending(&mut self, r: SeriesRef) -> Option<(i64, u64)> {
        if let Some(m) = &self.newest {
            return m.get(&r.0).copied();
        }
        let last = self.samples.last()?;
        if last.r == r {
            return Some((last.t, last.v.to_bits()));
        }
        if last.r < r {
            return None;
        }
        // References stopped ascending: an earlier sample of `r` may be
        // anywhere in the batch from now on.
        let mut m = IdMap::default();
        for p in &self.samples {
            m.insert(p.r.0, (p.t, p.v.to_bits()));
        }
        let got = m.get(&r.0).copied();
        self.newest = Some(m);
        got
    }

    /// Samples waiting for the commit.
    pub fn len(&self) -> usize {
        self.samples.len() + self.hists.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty() && self.hists.is_empty()
    }

    /// Logs the batch (one WAL write) and then makes it visible. On error
    /// nothing of it is visible and the caller may retry a later batch.
    pub fn commit(self) -> Result<(), CommitError> {
        if self.hists.is_empty() {
            return self.head.commit_batch(&self.samples);
        }
        self.head.commit_mixed(&self.samples, self.hists)
    }

    /// Commits as [`Self::commit`] and hands back the emptied sample
    /// buffer, for a caller that passes it to its next
    /// [`Head::appender_with`] instead of growing a new one per batch.
    pub(crate) fn commit_reuse(mut self) -> (Result<(), CommitError>, Vec<PendingSample>) {
        let res = if self.hists.is_empty() {
            self.head.commit_batch(&self.samples)
        } else {
            let hists = std::mem::take(&mut self.hists);
            self.head.commit_mixed(&self.samples, hists)
        };
        self.samples.clear();
        (res, self.samples)
    }

    /// Discards the batch (series it created stay, as in Prometheus).
    pub fn rollback(self) {}
}

impl Appender for HeadAppender<'_> {
    fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef, AppendError> {
        HeadAppender::append(self, labels, t, v)
    }
    fn append_ref(&mut self, r: SeriesRef, t: i64, v: f64) -> Result<(), AppendError> {
        HeadAppender::append_ref(self, r, t, v)
    }
    fn append_histogram(
        &mut self,
        labels: &Labels,
        t: i64,
        v: &HistValue,
    ) -> Result<SeriesRef, AppendError> {
        HeadAppender::append_histogram(self, labels, t, v)
    }
    fn append_histogram_ref(
        &mut self,
        r: SeriesRef,
        t: i64,
        v: &HistValue,
    ) -> Result<(), AppendError> {
        HeadAppender::append_histogram_ref(self, r, t, v)
    }
    fn commit(self: Box<Self>) -> Result<(), CommitError> {
        HeadAppender::commit(*self)
    }
    fn rollback(self: Box<Self>) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(v: &str) -> Labels {
        Labels::from_pairs([("__name__", "m"), ("i", v)])
    }

    #[test]
    fn a_batch_is_invisible_until_committed_and_gone_after_rollback() {
        let h = Head::default();
        let mut a = h.appender();
        let r = a.append(&l("a"), 10, 1.0).unwrap();
        assert!(h.select(&[], i64::MIN, i64::MAX).is_empty());
        a.commit().unwrap();
        let mut a = h.appender();
        a.append_ref(r, 20, 2.0).unwrap();
        a.rollback();
        let got = h.querier(i64::MIN, i64::MAX).select(&[]);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].samples, vec![(10, 1.0)]);
    }

    #[test]
    fn rejections_come_back_at_append_and_are_counted_by_the_head() {
        let h = Head::default();
        let mut a = h.appender();
        let r = a.append(&l("a"), 10, 1.0).unwrap();
        a.commit().unwrap();
        let mut a = h.appender();
        assert_eq!(a.append_ref(r, 5, 1.0), Err(AppendError::OutOfOrder));
        assert_eq!(
            a.append_ref(r, 10, 2.0),
            Err(AppendError::DuplicateTimestamp)
        );
        assert_eq!(a.append_ref(r, 10, 1.0), Ok(())); // exact duplicate: no-op
        assert_eq!(a.len(), 0);
        assert_eq!(
            a.append(&Labels::empty(), 1, 1.0),
            Err(AppendError::EmptyLabels)
        );
        a.commit().unwrap();
        let st = h.stats();
        assert_eq!((st.out_of_order, st.duplicates), (1, 1));
        h.truncate(100);
        let mut a = h.appender();
        assert_eq!(a.append(&l("b"), 50, 1.0), Err(AppendError::OutOfBounds));
        assert_eq!(h.stats().out_of_bounds, 1);
    }

    struct Fixed(Vec<SeriesData>);
    struct FixedQ<'a>(&'a [SeriesData], i64, i64);

    impl Queryable for Fixed {
        fn querier(&self, mint: i64, maxt: i64) -> Box<dyn Querier + '_> {
            Box::new(FixedQ(&self.0, mint, maxt))
        }
    }

    impl Querier for FixedQ<'_> {
        fn select(&self, m: &[Matcher]) -> Vec<SeriesData> {
            self.0
                .iter()
                .filter(|s| {
                    m.iter()
                        .all(|m| m.matches(s.labels.get(&m.name).unwrap_or("")))
                })
                .map(|s| {
                    SeriesData::floats(
                        s.labels.clone(),
                        s.samples
                            .iter()
                            .copied()
                            .filter(|(t, _)| *t >= self.1 && *t <= self.2)
                            .collect(),
                    )
                })
                .filter(|s| !s.samples.is_empty())
                .collect()
        }
        fn series(&self, m: &[Matcher]) -> Vec<Labels> {
            self.select(m).into_iter().map(|s| s.labels).collect()
        }
        fn label_names(&self, m: &[Matcher]) -> Vec<String> {
            union(
                self.series(m)
                    .iter()
                    .map(|l| l.iter().map(|l| l.name.to_string()).collect())
                    .collect(),
            )
        }
        fn label_values(&self, n: &str, m: &[Matcher]) -> Vec<String> {
            union(
                self.series(m)
                    .iter()
                    .map(|l| l.get(n).map(str::to_string).into_iter().collect())
                    .collect(),
            )
        }
    }

    #[test]
    fn fanout_merges_series_and_prefers_the_primary_on_equal_timestamps() {
        let head = Arc::new(Head::default());
        let mut a = head.appender();
        a.append(&l("a"), 30, 3.0).unwrap();
        a.append(&l("c"), 30, 3.0).unwrap();
        a.commit().unwrap();
        let block = Fixed(vec![
            SeriesData::floats(l("a"), vec![(10, 1.0), (30, 99.0)]),
            SeriesData::floats(
                Labels::from_pairs([("__name__", "m"), ("i", "b"), ("old", "x")]),
                vec![(20, 2.0)],
            ),
        ]);
        let f = Fanout::new(head.clone()).with(Arc::new(block));
        let q = f.querier(0, 100);
        let got = q.select(&[]);
        let labels: Vec<String> = got
            .iter()
            .map(|s| s.labels.get("i").unwrap_or("").to_string())
            .collect();
        assert_eq!(labels, ["a", "b", "c"]);
        assert_eq!(got[0].samples, vec![(10, 1.0), (30, 3.0)]);
        assert_eq!(q.label_names(&[]), ["__name__", "i", "old"]);
        assert_eq!(q.label_values("i", &[]), ["a", "b", "c"]);
        assert_eq!(q.series(&[]).len(), 3);
        // The range applies to every source.
        assert_eq!(f.querier(25, 100).select(&[]).len(), 2);
    }
}
