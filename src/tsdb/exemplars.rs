//! Exemplar storage: one circular buffer shared by every series, as
//! Prometheus' `--storage.tsdb.max-exemplars` (`storage.exemplars.max_exemplars`
//! in its config file).
//!
//! Each series' exemplars form a linked list through the buffer (oldest to
//! newest); writing into a full buffer overwrites the oldest exemplar of all,
//! unlinking it from its series. Appends follow Prometheus' rules: an
//! exemplar equal to the series' newest is a duplicate (ignored), one not
//! newer than it is out of order (counted and dropped). The buffer grows on
//! demand up to its size, so a klaxon whose targets expose no exemplars pays
//! nothing for it. Exemplars live in memory only (Prometheus keeps them in the
//! WAL; klaxon starts with an empty store).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::model::{Labels, Matcher};

/// Prometheus' default `max_exemplars` when exemplar storage is enabled.
pub const DEFAULT_MAX_EXEMPLARS: usize = 100_000;

/// Most characters (code points) of an exemplar's label names and values
/// together, as OpenMetrics and Prometheus allow.
pub const MAX_LABELS_RUNES: usize = 128;

/// One exemplar.
#[derive(Clone, Debug, PartialEq)]
pub struct Exemplar {
    pub labels: Labels,
    pub value: f64,
    /// Milliseconds.
    pub ts: i64,
}

impl Exemplar {
    fn same(&self, o: &Exemplar) -> bool {
        self.ts == o.ts && self.value.to_bits() == o.value.to_bits() && self.labels == o.labels
    }
}

/// Why an exemplar was not stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExemplarError {
    #[error("duplicate exemplar")]
    Duplicate,
    #[error("out of order exemplar")]
    OutOfOrder,
    #[error("exemplar label set is longer than 128 characters")]
    LabelLength,
    #[error("exemplar storage is disabled")]
    Disabled,
}

struct Slot {
    ex: Exemplar,
    /// The series (key into `index`).
    series: std::sync::Arc<Labels>,
    /// Next (newer) slot of the same series.
    next: Option<usize>,
}

#[derive(Clone, Copy)]
struct Ends {
    oldest: usize,
    newest: usize,
}

#[derive(Default)]
struct Inner {
    max: usize,
    ring: Vec<Slot>,
    /// Where the next exemplar goes once `ring` is full.
    next: usize,
    index: HashMap<std::sync::Arc<Labels>, Ends>,
}

/// Told about every exemplar the store accepted (remote write sends
/// them); called after the store's lock is released, on the adding
/// thread, so it must not block.
pub trait ExemplarObserver: Send + Sync {
    fn on_exemplar(&self, series: &Labels, ex: &Exemplar);
}

/// The exemplar store.
pub struct ExemplarStore {
    inner: Mutex<Inner>,
    observer: std::sync::OnceLock<std::sync::Arc<dyn ExemplarObserver>>,
    appended: AtomicU64,
    out_of_order: AtomicU64,
    last_ts: AtomicU64,
}

/// Counters and gauges of the store, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ExemplarStats {
    pub appended: u64,
    pub out_of_order: u64,
    pub in_storage: u64,
    pub series: u64,
    pub max: u64,
    /// Seconds; 0 before the first exemplar.
    pub last_ts_seconds: f64,
}

/// Exemplars of one series, as `/api/v1/query_exemplars` answers them.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesExemplars {
    pub series: Labels,
    pub exemplars: Vec<Exemplar>,
}

impl std::fmt::Debug for ExemplarStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExemplarStore")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Default for ExemplarStore {
    fn default() -> Self {
        ExemplarStore::new(DEFAULT_MAX_EXEMPLARS)
    }
}

impl ExemplarStore {
    /// A store holding at most `max` exemplars (0: disabled).
    pub fn new(max: usize) -> Self {
        ExemplarStore {
            inner: Mutex::new(Inner {
                max,
                ..Inner::default()
            }),
            observer: std::sync::OnceLock::new(),
            appended: AtomicU64::new(0),
            out_of_order: AtomicU64::new(0),
            last_ts: AtomicU64::new(0),
        }
    }

    /// Installs the observer (at most one; a second is handed back).
    pub fn set_observer(
        &self,
        o: std::sync::Arc<dyn ExemplarObserver>,
    ) -> Result<(), std::sync::Arc<dyn ExemplarObserver>> {
        self.observer.set(o)
    }

    /// Changes the size (config reload). As Prometheus, the newest exemplars
    /// that fit are kept.
    pub fn resize(&self, max: usize) {
        let mut g = self.inner.lock();
        if g.max == max {
            return;
        }
        let old = std::mem::take(&mut *g);
        g.max = max;
        let n = old.ring.len();
        // Oldest first: the slot after the write position when full.
        let start = if n == old.max { old.next } else { 0 };
        let keep = n.min(max);
        let mut ring: Vec<Option<Slot>> = old.ring.into_iter().map(Some).collect();
        for k in (n - keep)..n {
            if let Some(s) = ring.get_mut((start + k) % n.max(1)).and_then(Option::take) {
                g.push(s.series, s.ex);
            }
        }
    }

    /// Appends one exemplar of `series`.
    pub fn add(&self, series: &Labels, ex: Exemplar) -> Result<(), ExemplarError> {
        let runes: usize = ex
            .labels
            .iter()
            .map(|l| l.name.chars().count() + l.value.chars().count())
            .sum();
        if runes > MAX_LABELS_RUNES {
            return Err(ExemplarError::LabelLength);
        }
        let mut g = self.inner.lock();
        if g.max == 0 {
            return Err(ExemplarError::Disabled);
        }
        let key = match g.index.get_key_value(series) {
            Some((k, ends)) => {
                let newest = &g.ring[ends.newest].ex;
                if newest.same(&ex) {
                    return Err(ExemplarError::Duplicate);
                }
                if ex.ts <= newest.ts {
                    self.out_of_order.fetch_add(1, Ordering::Relaxed);
                    return Err(ExemplarError::OutOfOrder);
                }
                k.clone()
            }
            None => std::sync::Arc::new(series.clone()),
        };
        let ts = ex.ts;
        match self.observer.get() {
            Some(o) => {
                g.push(key, ex.clone());
                drop(g);
                o.on_exemplar(series, &ex);
            }
            None => {
                g.push(key, ex);
                drop(g);
            }
        }
        self.appended.fetch_add(1, Ordering::Relaxed);
        self.last_ts.fetch_max(ts.max(0) as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Exemplars in `[start, end]` of the series matching any of the
    /// selectors (each a list of matchers ANDed), series in label order.
    pub fn select(&self, start: i64, end: i64, selectors: &[Vec<Matcher>]) -> Vec<SeriesExemplars> {
        let g = self.inner.lock();
        let mut out = Vec::new();
        for (series, ends) in &g.index {
            let hit = selectors.iter().any(|ms| {
                ms.iter()
                    .all(|m| m.matches(series.get(&m.name).unwrap_or("")))
            });
            if !hit {
                continue;
            }
            let mut exemplars = Vec::new();
            let mut cur = Some(ends.oldest);
            while let Some(i) = cur {
                let Some(s) = g.ring.get(i) else { break };
                if s.ex.ts >= start && s.ex.ts <= end {
                    exemplars.push(s.ex.clone());
                }
                cur = s.next;
            }
            if !exemplars.is_empty() {
                out.push(SeriesExemplars {
                    series: (**series).clone(),
                    exemplars,
                });
            }
        }
        out.sort_by(|a, b| a.series.cmp(&b.series));
        out
    }

    pub fn stats(&self) -> ExemplarStats {
        let g = self.inner.lock();
        ExemplarStats {
            appended: self.appended.load(Ordering::Relaxed),
            out_of_order: self.out_of_order.load(Ordering::Relaxed),
            in_storage: g.ring.len() as u64,
            series: g.index.len() as u64,
            max: g.max as u64,
            last_ts_seconds: self.last_ts.load(Ordering::Relaxed) as f64 / 1000.0,
        }
    }
}

impl Inner {
    /// Writes `ex` as the newest exemplar of `series`, overwriting the
    /// oldest exemplar of the buffer when it is full. `max` is not 0.
    fn push(&mut self, series: std::sync::Arc<Labels>, ex: Exemplar) {
        let slot = Slot {
            ex,
            series: series.clone(),
            next: None,
        };
        let at = if self.ring.len() < self.max {
            self.ring.push(slot);
            self.ring.len() - 1
        } else {
            let at = self.next;
            self.next = (self.next + 1) % self.max;
            // Unlink the overwritten exemplar: it is its series' oldest.
            let old = std::mem::replace(&mut self.ring[at], slot);
            if let Some(ends) = self.index.get_mut(&old.series) {
                match old.next {
                    Some(n) if ends.oldest == at => ends.oldest = n,
                    _ => {
                        self.index.remove(&old.series);
                    }
                }
            }
            at
        };
        match self.index.get_mut(&series) {
            Some(ends) => {
                let prev = ends.newest;
                ends.newest = at;
                if let Some(p) = self.ring.get_mut(prev) {
                    p.next = Some(at);
                }
            }
            None => {
                self.index.insert(
                    series,
                    Ends {
                        oldest: at,
                        newest: at,
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::matcher::MatchType;

    fn ex(v: f64, ts: i64) -> Exemplar {
        Exemplar {
            labels: Labels::from_pairs([("trace_id", format!("t{ts}"))]),
            value: v,
            ts,
        }
    }

    fn all(s: &ExemplarStore, name: &str) -> Vec<i64> {
        let m = Matcher::new(MatchType::Equal, "__name__", name).unwrap();
        s.select(i64::MIN, i64::MAX, &[vec![m]])
            .into_iter()
            .flat_map(|se| se.exemplars.into_iter().map(|e| e.ts))
            .collect()
    }

    #[test]
    fn dedup_out_of_order_and_ring_overwrite() {
        let s = ExemplarStore::new(3);
        let a = Labels::from_pairs([("__name__", "a")]);
        let b = Labels::from_pairs([("__name__", "b")]);
        s.add(&a, ex(1.0, 10)).unwrap();
        assert_eq!(s.add(&a, ex(1.0, 10)), Err(ExemplarError::Duplicate));
        assert_eq!(s.add(&a, ex(2.0, 10)), Err(ExemplarError::OutOfOrder));
        assert_eq!(s.add(&a, ex(2.0, 5)), Err(ExemplarError::OutOfOrder));
        s.add(&b, ex(1.0, 11)).unwrap();
        s.add(&a, ex(1.0, 12)).unwrap();
        assert_eq!(all(&s, "a"), vec![10, 12]);
        // Full: the oldest (a@10) goes first, then b@11 (b disappears).
        s.add(&a, ex(1.0, 13)).unwrap();
        assert_eq!(all(&s, "a"), vec![12, 13]);
        s.add(&a, ex(1.0, 14)).unwrap();
        assert_eq!(all(&s, "a"), vec![12, 13, 14]);
        assert_eq!(all(&s, "b"), Vec::<i64>::new());
        let st = s.stats();
        assert_eq!(
            (st.in_storage, st.series, st.appended, st.out_of_order),
            (3, 1, 5, 2)
        );
        // Time range and shrinking keep the newest.
        let m = Matcher::new(MatchType::Equal, "__name__", "a").unwrap();
        let r = s.select(13, 13, &[vec![m]]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].exemplars, vec![ex(1.0, 13)]);
        s.resize(2);
        assert_eq!(all(&s, "a"), vec![13, 14]);
        s.resize(0);
        assert_eq!(s.add(&a, ex(1.0, 20)), Err(ExemplarError::Disabled));
    }

    #[test]
    fn long_label_sets_are_refused() {
        let s = ExemplarStore::new(10);
        let a = Labels::from_pairs([("__name__", "a")]);
        let e = Exemplar {
            labels: Labels::from_pairs([("trace_id", "x".repeat(121))]),
            value: 1.0,
            ts: 1,
        };
        assert_eq!(s.add(&a, e), Err(ExemplarError::LabelLength));
    }
}
