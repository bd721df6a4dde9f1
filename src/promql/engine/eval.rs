//! The evaluator: walks the syntax tree once per evaluation timestamp.
//! Range-vector functions, selectors and the folding aggregations over
//! them are evaluated for all steps at once instead where they can be
//! (`series_pass`); the walk then takes each step's column of their table.
//!
//! Why per step: it keeps every operator a plain function of instant
//! vectors (the way Prometheus defines them), while selection stays cheap
//! because each selector node reads the head once for the whole query range
//! (planned up front by [`Evaluator::plan`]) and later steps only slice the
//! cached samples.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::value::{EvalError, EvalResult, Sample, Series};
use crate::model::histogram::{CounterResetHint, FloatHistogram};
use crate::model::{is_stale_nan, Labels};
use crate::promql::parser::{
    AtModifier, DurationExpr, Expr, MatrixSelector, SubqueryExpr, UnaryOp, VectorSelector,
};
use std::sync::Arc;

use crate::tsdb::Queryable;

/// A selected series as the query caches it: labels shared by every step.
pub(crate) struct SeriesData {
    pub labels: Arc<Labels>,
    pub samples: Vec<(i64, f64)>,
    /// Native histogram samples (float counts), by time; staleness markers
    /// included (their sum is the staleness NaN).
    pub hist: Vec<(i64, FloatHistogram)>,
}

impl SeriesData {
    /// Whether the series holds any native histogram sample: the series
    /// pass leaves such series to the per-step walk.
    pub(crate) fn has_histograms(&self) -> bool {
        !self.hist.is_empty()
    }

    /// The histogram samples in `(lo, hi]`, staleness markers left out.
    pub(crate) fn hists_in(&self, lo: i64, hi: i64) -> Vec<(i64, FloatHistogram)> {
        let a = self.hist.partition_point(|p| p.0 <= lo);
        let b = self.hist.partition_point(|p| p.0 <= hi);
        self.hist
            .get(a..b)
            .unwrap_or_default()
            .iter()
            .filter(|p| !is_stale_hist(&p.1))
            .cloned()
            .collect()
    }
}

/// Wraps the head's selection result for sharing.
pub(crate) fn share(v: Vec<crate::tsdb::SeriesData>) -> Vec<SeriesData> {
    v.into_iter()
        .map(|s| SeriesData {
            labels: Arc::new(s.labels),
            samples: s.samples,
            hist: s
                .histograms
                .into_iter()
                .map(|(t, h)| (t, h.into_float()))
                .collect(),
        })
        .collect()
}

/// The counter-reset hint Prometheus' histogram stats iterator gives a
/// sample it reads after `prev`: an unknown hint becomes "reset" or "not
/// reset" by comparing the two; without a previous sample it stays.
pub(crate) fn stats_hint(h: &mut FloatHistogram, prev: Option<&FloatHistogram>) {
    if h.counter_reset_hint != CounterResetHint::Unknown {
        return;
    }
    if let Some(p) = prev {
        h.counter_reset_hint = if h.detect_reset(p) {
            CounterResetHint::Reset
        } else {
            CounterResetHint::NotReset
        };
    }
}

/// Whether a histogram sample is a staleness marker.
pub(crate) fn is_stale_hist(h: &FloatHistogram) -> bool {
    is_stale_nan(h.sum)
}

/// A value at one evaluation step.
#[derive(Debug, Clone)]
pub(crate) enum StepValue {
    Scalar(f64),
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
    Str(String),
}

impl StepValue {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            StepValue::Scalar(_) => "scalar",
            StepValue::Vector(_) => "vector",
            StepValue::Matrix(_) => "matrix",
            StepValue::Str(_) => "string",
        }
    }
}

/// Per-query state.
pub(crate) struct Evaluator<'a> {
    pub head: &'a dyn Queryable,
    pub query: Option<&'a str>,
    /// Query start/end/step in milliseconds (`@ start()`, `step()`...).
    pub start: i64,
    pub end: i64,
    pub interval: i64,
    pub lookback: i64,
    pub max_samples: usize,
    pub deadline: Instant,
    /// Set by the caller when the client went away: the query stops at the
    /// next check with Prometheus' "canceled" error.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Samples selectors yielded, for the query statistics.
    pub loaded: u64,
    /// Most samples one selector step yielded plus the result so far.
    pub peak: u64,
    /// Output points already held (range queries), for the peak.
    pub held: u64,
    pub default_sub_step: i64,
    cache: HashMap<usize, Rc<Vec<SeriesData>>>,
    pub(crate) info_cache: HashMap<usize, Rc<Vec<SeriesData>>>,
    /// Per matrix selector, where each series' window started last step.
    cursors: HashMap<usize, Vec<usize>>,
    ranges: HashMap<usize, (i64, i64)>,
    /// Grouping signatures by (aggregation node, label-set address): a
    /// series met at every step is hashed once per query. The `Arc` is held
    /// so its address is not reused by other labels during the query.
    sigs: HashMap<(usize, usize), (Arc<Labels>, u64), foldhash::fast::RandomState>,
    /// Series whose name `rate`/`increase` already checked for a counter
    /// suffix in this query (held, as in `sigs`, so addresses stay unique).
    pub(crate) counter_checked: HashMap<usize, Arc<Labels>, foldhash::fast::RandomState>,
    /// Emptied window buffers: a range function hands its windows back, the
    /// next step's matrix selector refills them instead of allocating.
    pub(crate) point_pool: Vec<Vec<(i64, f64)>>,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
    /// See `EngineOptions::delayed_name_removal`.
    pub delayed_name_removal: bool,
    /// Label set (by address, held so the address stays unique) → the same
    /// without its name; see `settle`.
    unnamed: HashMap<usize, (Arc<Labels>, Arc<Labels>), foldhash::fast::RandomState>,
    ticks: u32,
    /// See `EngineOptions::series_pass`.
    pub series_pass: bool,
    /// See `EngineOptions::parallelism`.
    pub parallelism: usize,
    /// Subqueries the walk is inside of: their steps are not the query's.
    pub(crate) sub_depth: u32,
    /// Per node (by address): its table from the series pass, or `None`
    /// when the node is evaluated step by step.
    pub(crate) tables: HashMap<usize, Option<Rc<super::series_pass::StepTable>>>,
    /// Per tabled node, each series' position in its points.
    pub(crate) table_cursors: HashMap<usize, Vec<usize>>,
    /// Reused by the range functions that sort their window.
    pub(crate) float_scratch: Vec<f64>,
    /// Selectors (by address) whose histograms only feed
    /// `histogram_count`/`_sum`/`_avg`: see [`Evaluator::mark_stats_selectors`].
    pub(crate) stats_selectors: std::collections::HashSet<usize>,
}

pub(crate) fn key<T>(r: &T) -> usize {
    r as *const T as usize
}

impl<'a> Evaluator<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        head: &'a dyn Queryable,
        query: Option<&'a str>,
        start: i64,
        end: i64,
        interval: i64,
        lookback: i64,
        max_samples: usize,
        deadline: Instant,
    ) -> Self {
        Evaluator {
            head,
            query,
            start,
            end,
            interval,
            lookback,
            max_samples,
            deadline,
            cancel: None,
            loaded: 0,
            peak: 0,
            held: 0,
            default_sub_step: 60_000,
            cache: HashMap::new(),
            info_cache: HashMap::new(),
            cursors: HashMap::new(),
            ranges: HashMap::new(),
            sigs: HashMap::default(),
            delayed_name_removal: false,
            unnamed: HashMap::default(),
            counter_checked: HashMap::default(),
            point_pool: Vec::new(),
            warnings: Vec::new(),
            infos: Vec::new(),
            ticks: 0,
            series_pass: true,
            parallelism: 1,
            sub_depth: 0,
            tables: HashMap::new(),
            table_cursors: HashMap::new(),
            float_scratch: Vec::new(),
            stats_selectors: std::collections::HashSet::new(),
        }
    }

    /// Marks the selectors Prometheus reads through its histogram stats
    /// iterator: those under `histogram_count`, `histogram_sum` or
    /// `histogram_avg` with no subquery, `histogram_quantile(s)`,
    /// `histogram_fraction` or trim operator above them. That iterator
    /// detects counter resets as it reads, so a histogram whose hint is
    /// unknown gets "reset" or "not reset" from the sample before it (which
    /// `sum` and friends then see, e.g. for their conflicting-resets
    /// warning); [`stats_hint`] does the same here.
    pub(crate) fn mark_stats_selectors(&mut self, e: &Expr) {
        self.mark_stats(e, false, false);
    }

    fn mark_stats(&mut self, e: &Expr, stats: bool, blocked: bool) {
        match e {
            Expr::VectorSelector(vs) => {
                if stats && !blocked {
                    self.stats_selectors.insert(key(&**vs));
                }
            }
            Expr::MatrixSelector(ms) => {
                if stats && !blocked {
                    self.stats_selectors.insert(key(&ms.selector));
                }
            }
            Expr::SubqueryExpr(sq) => self.mark_stats(&sq.expr, stats, true),
            Expr::Paren(p) => self.mark_stats(&p.expr, stats, blocked),
            Expr::Unary(u) => self.mark_stats(&u.expr, stats, blocked),
            Expr::Binary(b) => {
                let blocked = blocked || b.op.is_trim();
                self.mark_stats(&b.lhs, stats, blocked);
                self.mark_stats(&b.rhs, stats, blocked);
            }
            Expr::Call(c) => {
                let (stats, blocked) = match c.func.name {
                    "histogram_count" | "histogram_sum" | "histogram_avg" => (true, blocked),
                    "histogram_quantile" | "histogram_quantiles" | "histogram_fraction" => {
                        (stats, true)
                    }
                    _ => (stats, blocked),
                };
                for a in &c.args {
                    self.mark_stats(a, stats, blocked);
                }
            }
            Expr::Aggregate(a) => {
                self.mark_stats(&a.expr, stats, blocked);
                if let Some(p) = &a.param {
                    self.mark_stats(p, stats, blocked);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        }
    }

    /// `binary::signature` of `labels`, computed once per query for each
    /// label set met at aggregation node `node`.
    /// An operator's or function's output as Prometheus hands it on
    /// (without the experimental delayed name removal): the metric name is
    /// dropped where the operation drops it, and a vector whose label sets
    /// then collide is an error right there, not only in the query's final
    /// result. So `sum(rate({job="x"}[5m]))` over series differing only by
    /// name fails as in Prometheus instead of adding them up.
    /// Name-less label sets are cached per input label set for the query,
    /// so a series seen at every step of a range query is rebuilt once (and
    /// the collator's pointer fast path keeps working).
    fn settle(&mut self, v: StepValue) -> EvalResult<StepValue> {
        if self.delayed_name_removal {
            return Ok(v);
        }
        match v {
            StepValue::Vector(mut vec) if vec.iter().any(|s| s.drop_name) => {
                for s in vec.iter_mut().filter(|s| s.drop_name) {
                    let k = Arc::as_ptr(&s.labels) as usize;
                    let dropped = match self.unnamed.get(&k) {
                        Some((_, d)) => d.clone(),
                        None => {
                            let d = drop_metric_name(&s.labels);
                            self.unnamed.insert(k, (s.labels.clone(), d.clone()));
                            d
                        }
                    };
                    s.labels = dropped;
                    s.drop_name = false;
                }
                check_unique(&vec)?;
                Ok(StepValue::Vector(vec))
            }
            other => Ok(other),
        }
    }

    pub(crate) fn cached_signature(
        &mut self,
        node: usize,
        labels: &Arc<Labels>,
        on: bool,
        names: &[String],
    ) -> u64 {
        let k = (node, Arc::as_ptr(labels) as usize);
        if let Some((_, sig)) = self.sigs.get(&k) {
            return *sig;
        }
        let sig = super::binary::signature(labels, on, names);
        self.sigs.insert(k, (labels.clone(), sig));
        sig
    }

    /// An annotation text with Prometheus' position suffix `(line:col)`.
    pub(crate) fn annotate(&self, text: String, pos: usize) -> String {
        match self.query {
            Some(q) => {
                let p = crate::promql::ParseError::at(q, pos, "");
                format!("{text} ({}:{})", p.line, p.column)
            }
            None => text,
        }
    }

    pub(crate) fn warn(&mut self, text: String, pos: usize) {
        let s = self.annotate(format!("PromQL warning: {text}"), pos);
        if !self.warnings.contains(&s) {
            self.warnings.push(s);
        }
    }

    pub(crate) fn info(&mut self, text: String, pos: usize) {
        let s = self.annotate(format!("PromQL info: {text}"), pos);
        if !self.infos.contains(&s) {
            self.infos.push(s);
        }
    }

    /// Checks the deadline and cancellation every few hundred operations.
    pub(crate) fn tick(&mut self) -> EvalResult<()> {
        self.tick_by(1)
    }

    /// [`Evaluator::tick`] for `n` operations at once (the series pass
    /// counts one per series and step, as the per-step walk would).
    pub(crate) fn tick_by(&mut self, n: u32) -> EvalResult<()> {
        let before = self.ticks / 256;
        self.ticks = self.ticks.wrapping_add(n);
        if self.ticks / 256 != before {
            if self
                .cancel
                .as_ref()
                .is_some_and(|c| c.load(Ordering::Relaxed))
            {
                return Err(EvalError::canceled());
            }
            if Instant::now() > self.deadline {
                return Err(EvalError::timeout());
            }
        }
        Ok(())
    }

    pub(crate) fn check_samples(&self, n: usize) -> EvalResult<()> {
        if n > self.max_samples {
            return Err(EvalError::too_many_samples());
        }
        Ok(())
    }

    /// Counts what a selector step yielded and checks the sample limit
    /// against it plus the result held so far.
    pub(crate) fn loaded_samples(&mut self, n: usize) -> EvalResult<()> {
        let n = n as u64;
        self.loaded_step(n, n)
    }

    /// A tabled node's step: `total` samples loaded by its selectors, of
    /// which one selector loaded at most `peak` (the per-step walk counts
    /// and checks its selectors one at a time).
    pub(crate) fn loaded_step(&mut self, total: u64, peak: u64) -> EvalResult<()> {
        self.loaded = self.loaded.saturating_add(total);
        self.peak = self.peak.max(peak.saturating_add(self.held));
        self.check_samples(usize::try_from(peak.saturating_add(self.held)).unwrap_or(usize::MAX))
    }

    /// Evaluates a duration expression (seconds) to milliseconds.
    pub(crate) fn duration(&self, lit: i64, e: &Option<DurationExpr>) -> i64 {
        match e {
            None => lit,
            Some(d) => {
                let step = self.interval as f64 / 1000.0;
                let range = (self.end - self.start) as f64 / 1000.0;
                let s = d.eval_seconds(step, range);
                if s.is_finite() {
                    (s * 1000.0).round() as i64
                } else {
                    0
                }
            }
        }
    }

    pub(crate) fn at_time(&self, at: Option<AtModifier>) -> Option<i64> {
        at.map(|a| match a {
            AtModifier::Timestamp(t) => t,
            AtModifier::Start => self.start,
            AtModifier::End => self.end,
        })
    }

    fn widen(&mut self, k: usize, mint: i64, maxt: i64) {
        let e = self.ranges.entry(k).or_insert((mint, maxt));
        e.0 = e.0.min(mint);
        e.1 = e.1.max(maxt);
    }

    /// Records, for every selector, the time range the query can read when
    /// its node is evaluated at times in `[s, e]`, so each selector reads the
    /// head once.
    pub(crate) fn plan(&mut self, expr: &Expr, s: i64, e: i64) {
        match expr {
            Expr::VectorSelector(vs) => {
                let (s, e) = self.at_time(vs.at).map_or((s, e), |a| (a, a));
                let off = self.duration(vs.offset, &vs.offset_expr);
                let k = key(&**vs);
                let ahead = if vs.smoothed { self.lookback } else { 0 };
                self.widen(
                    k,
                    s.saturating_sub(off).saturating_sub(self.lookback),
                    e.saturating_sub(off).saturating_add(ahead),
                );
            }
            Expr::MatrixSelector(ms) => {
                let vs = &ms.selector;
                let (s, e) = self.at_time(vs.at).map_or((s, e), |a| (a, a));
                let off = self.duration(vs.offset, &vs.offset_expr);
                let range = self.duration(ms.range, &ms.range_expr);
                let (back, ahead) = match (vs.anchored, vs.smoothed) {
                    (_, true) => (self.lookback, self.lookback),
                    (true, _) => (self.lookback, 0),
                    _ => (0, 0),
                };
                self.widen(
                    key(vs),
                    s.saturating_sub(off)
                        .saturating_sub(range)
                        .saturating_sub(back),
                    e.saturating_sub(off).saturating_add(ahead),
                );
            }
            Expr::SubqueryExpr(sq) => {
                let (s, e) = self.at_time(sq.at).map_or((s, e), |a| (a, a));
                let off = self.duration(sq.offset, &sq.offset_expr);
                let range = self.duration(sq.range, &sq.range_expr);
                self.plan(
                    &sq.expr,
                    s.saturating_sub(off).saturating_sub(range),
                    e.saturating_sub(off),
                );
            }
            Expr::Unary(u) => self.plan(&u.expr, s, e),
            Expr::Paren(p) => self.plan(&p.expr, s, e),
            Expr::Binary(b) => {
                self.plan(&b.lhs, s, e);
                self.plan(&b.rhs, s, e);
            }
            Expr::Call(c) => {
                for a in &c.args {
                    self.plan(a, s, e);
                }
            }
            Expr::Aggregate(a) => {
                self.plan(&a.expr, s, e);
                if let Some(p) = &a.param {
                    self.plan(p, s, e);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        }
    }

    pub(crate) fn series_data(&mut self, vs: &VectorSelector) -> Rc<Vec<SeriesData>> {
        self.series_of(vs)
    }

    fn series_of(&mut self, vs: &VectorSelector) -> Rc<Vec<SeriesData>> {
        let k = key(vs);
        if let Some(c) = self.cache.get(&k) {
            return c.clone();
        }
        let (mint, maxt) = self.ranges.get(&k).copied().unwrap_or((i64::MIN, i64::MAX));
        let data = Rc::new(share(self.head.querier(mint, maxt).select(&vs.matchers)));
        self.cache.insert(k, data.clone());
        data
    }

    pub(crate) fn eval(&mut self, expr: &Expr, t: i64) -> EvalResult<StepValue> {
        self.tick()?;
        match expr {
            Expr::NumberLiteral(n) => Ok(StepValue::Scalar(n.value)),
            Expr::StringLiteral(s) => Ok(StepValue::Str(s.value.clone())),
            Expr::Paren(p) => self.eval(&p.expr, t),
            Expr::Unary(u) => {
                let v = self.eval(&u.expr, t)?;
                Ok(match (u.op, v) {
                    (UnaryOp::Pos, v) => v,
                    (UnaryOp::Neg, StepValue::Scalar(f)) => StepValue::Scalar(-f),
                    (UnaryOp::Neg, StepValue::Vector(mut vec)) => {
                        for s in &mut vec {
                            s.value = -s.value;
                            if let Some(h) = &mut s.h {
                                h.mul(-1.0);
                            }
                            s.drop_name = true;
                        }
                        self.settle(StepValue::Vector(vec))?
                    }
                    (_, v) => {
                        return Err(EvalError::exec(format!(
                            "unexpected value type {} for unary expression",
                            v.type_name()
                        )))
                    }
                })
            }
            Expr::VectorSelector(vs) => Ok(StepValue::Vector(self.vector_selector(vs, t)?)),
            Expr::MatrixSelector(ms) => Ok(StepValue::Matrix(self.matrix_selector(ms, t)?)),
            Expr::SubqueryExpr(sq) => Ok(StepValue::Matrix(self.subquery(sq, t)?)),
            Expr::Binary(b) => {
                if let Some(v) = self.tabled(expr, t)? {
                    return Ok(v);
                }
                let v = self.binary(b, t)?;
                self.settle(v)
            }
            Expr::Call(c) => {
                if let Some(v) = self.tabled(expr, t)? {
                    return Ok(v);
                }
                let v = self.call(c, t)?;
                self.settle(v)
            }
            Expr::Aggregate(a) => {
                if let Some(v) = self.tabled(expr, t)? {
                    return Ok(v);
                }
                let v = self.aggregate(a, t)?;
                self.settle(v)
            }
        }
    }

    /// The instant vector of a selector at `t`: per series, the newest
    /// sample in `(ref - lookback, ref]` unless it is a staleness marker.
    pub(crate) fn vector_selector(
        &mut self,
        vs: &VectorSelector,
        t: i64,
    ) -> EvalResult<Vec<Sample>> {
        if vs.smoothed {
            return self.smoothed_vector(vs, t);
        }
        let data = self.series_of(vs);
        let off = self.duration(vs.offset, &vs.offset_expr);
        let rt = self.at_time(vs.at).unwrap_or(t).saturating_sub(off);
        let lo = rt.saturating_sub(self.lookback);
        let mut out = Vec::new();
        let stats = self.stats_selectors.contains(&key(vs));
        // As in `matrix_selector`: walk on from the previous step's position.
        let mut cursors = self
            .cursors
            .remove(&key(vs))
            .unwrap_or_else(|| vec![0; data.len()]);
        cursors.resize(data.len(), 0);
        for (s, cur) in data.iter().zip(cursors.iter_mut()) {
            let mut idx = (*cur).min(s.samples.len());
            if idx > 0 && s.samples.get(idx - 1).is_some_and(|p| p.0 > rt) {
                idx = s.samples.partition_point(|p| p.0 <= rt);
            } else {
                while s.samples.get(idx).is_some_and(|p| p.0 <= rt) {
                    idx += 1;
                }
            }
            *cur = idx;
            if s.has_histograms() {
                if let Some(h) = newest_histogram(s, idx, rt, lo) {
                    if let Some((ht, h)) = h {
                        let mut h = h.clone();
                        if stats {
                            let hi = s.hist.partition_point(|p| p.0 < *ht);
                            let prev = hi.checked_sub(1).and_then(|j| s.hist.get(j));
                            stats_hint(&mut h, prev.filter(|p| p.0 >= lo).map(|p| &p.1));
                        }
                        out.push(Sample {
                            labels: s.labels.clone(),
                            t: *ht,
                            value: 0.0,
                            drop_name: false,
                            h: Some(Box::new(h)),
                        });
                    }
                    continue;
                }
            }
            if idx == 0 {
                continue;
            }
            let Some(&(ts, v)) = s.samples.get(idx - 1) else {
                continue;
            };
            if ts <= lo || is_stale_nan(v) {
                continue;
            }
            out.push(Sample {
                labels: s.labels.clone(),
                t: ts,
                value: v,
                drop_name: false,
                h: None,
            });
        }
        self.cursors.insert(key(vs), cursors);
        self.loaded_samples(out.len())?;
        Ok(out)
    }

    /// Points of each series in `(ref - range, ref]`, staleness markers
    /// removed; series without points are left out.
    pub(crate) fn matrix_selector(
        &mut self,
        ms: &MatrixSelector,
        t: i64,
    ) -> EvalResult<Vec<Series>> {
        let vs = &ms.selector;
        let data = self.series_of(vs);
        let off = self.duration(vs.offset, &vs.offset_expr);
        let range = self.duration(ms.range, &ms.range_expr);
        let rt = self.at_time(vs.at).unwrap_or(t).saturating_sub(off);
        let lo = rt.saturating_sub(range);
        let mut out = Vec::new();
        let mut total = 0usize;
        // Steps move forward, so each series' window start is found by
        // walking on from where the previous step left it: sequential
        // memory access instead of a binary search per series and step.
        let mut cursors = self
            .cursors
            .remove(&key(vs))
            .unwrap_or_else(|| vec![0; data.len()]);
        cursors.resize(data.len(), 0);
        for (s, cur) in data.iter().zip(cursors.iter_mut()) {
            let n = s.samples.len();
            let mut a = (*cur).min(n);
            let behind = a > 0 && s.samples.get(a - 1).is_some_and(|p| p.0 > lo);
            if behind {
                a = s.samples.partition_point(|p| p.0 <= lo);
            } else {
                while s.samples.get(a).is_some_and(|p| p.0 <= lo) {
                    a += 1;
                }
            }
            *cur = a;
            let mut b = a;
            while s.samples.get(b).is_some_and(|p| p.0 <= rt) {
                b += 1;
            }
            let Some(win) = s.samples.get(a..b) else {
                continue;
            };
            let mut points = self.point_pool.pop().unwrap_or_default();
            points.extend(win.iter().copied().filter(|p| !is_stale_nan(p.1)));
            let hpoints: Vec<(i64, FloatHistogram)> = if s.has_histograms() {
                let mut hp = s.hists_in(lo, rt);
                if self.stats_selectors.contains(&key(vs)) {
                    for j in (1..hp.len()).rev() {
                        let (head, tail) = hp.split_at_mut(j);
                        if let (Some(prev), Some(cur)) = (head.last(), tail.first_mut()) {
                            stats_hint(&mut cur.1, Some(&prev.1));
                        }
                    }
                }
                hp
            } else {
                Vec::new()
            };
            if points.is_empty() && hpoints.is_empty() {
                self.point_pool.push(points);
                continue;
            }
            total += points.len() + hpoints.len();
            self.check_samples(total.saturating_add(usize::try_from(self.held).unwrap_or(0)))?;
            out.push(Series {
                labels: s.labels.clone(),
                points,
                drop_name: false,
                hpoints,
            });
        }
        self.cursors.insert(key(vs), cursors);
        self.loaded_samples(total)?;
        Ok(out)
    }

    /// Evaluates the inner expression at the subquery's step-aligned times:
    /// the first multiple of the step after `ref - range`, through `ref`.
    pub(crate) fn subquery(&mut self, sq: &SubqueryExpr, t: i64) -> EvalResult<Vec<Series>> {
        let off = self.duration(sq.offset, &sq.offset_expr);
        let range = self.duration(sq.range, &sq.range_expr);
        let mut step = self.duration(sq.step, &sq.step_expr);
        if step <= 0 {
            step = self.default_sub_step;
        }
        let rt = self.at_time(sq.at).unwrap_or(t).saturating_sub(off);
        let lo = rt.saturating_sub(range);
        let mut ts = step.saturating_mul(lo / step);
        if ts <= lo {
            ts = ts.saturating_add(step);
        }
        let mut acc = Collator::default();
        while ts <= rt {
            self.sub_depth += 1;
            let v = self.eval(&sq.expr, ts);
            self.sub_depth -= 1;
            let v = v?;
            match v {
                StepValue::Vector(vec) => acc.add_vector(vec, ts)?,
                StepValue::Scalar(f) => acc.add(Arc::new(Labels::empty()), false, ts, f)?,
                other => {
                    return Err(EvalError::exec(format!(
                        "unexpected value type {} in subquery",
                        other.type_name()
                    )))
                }
            }
            self.check_samples(acc.points)?;
            ts = match ts.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
        let mut m = acc.finish();
        // As Prometheus: a subquery may skip or repeat the samples around a
        // counter reset, so its histograms' explicit reset hints are not
        // trusted (rate then detects resets as for floats).
        for s in &mut m {
            for (_, h) in &mut s.hpoints {
                if matches!(
                    h.counter_reset_hint,
                    CounterResetHint::Reset | CounterResetHint::NotReset
                ) {
                    h.counter_reset_hint = CounterResetHint::Unknown;
                }
            }
        }
        Ok(m)
    }
}

/// The sample an instant selector takes from a series that has histogram
/// samples: `None` when the newest sample at or before `rt` is a float
/// (`float_idx` is the float cursor: floats before it are at or before
/// `rt`); `Some(None)` when the newest is a histogram that is stale or
/// older than the lookback window; `Some(Some(..))` the histogram to use.
fn newest_histogram(
    s: &SeriesData,
    float_idx: usize,
    rt: i64,
    lo: i64,
) -> Option<Option<&(i64, FloatHistogram)>> {
    let hi = s.hist.partition_point(|p| p.0 <= rt);
    let h = hi.checked_sub(1).and_then(|i| s.hist.get(i))?;
    let newest_float = float_idx
        .checked_sub(1)
        .and_then(|i| s.samples.get(i))
        .map(|p| p.0);
    if newest_float.is_some_and(|ft| ft > h.0) {
        return None;
    }
    if h.0 <= lo || is_stale_hist(&h.1) {
        return Some(None);
    }
    Some(Some(h))
}

/// Gathers per-step vectors into a matrix keyed by label set.
#[derive(Default)]
pub(crate) struct Collator {
    /// By label-set address. A selected series hands out the same `Arc` at
    /// every step, so most lookups hit here without hashing or comparing
    /// label contents. Only addresses of `Arc`s kept in `series` are
    /// entered, so an address cannot be reused by other labels meanwhile.
    by_ptr: HashMap<(usize, bool), usize, foldhash::fast::RandomState>,
    index: HashMap<(Arc<Labels>, bool), usize>,
    series: Vec<Series>,
    pub points: usize,
}

impl Collator {
    pub(crate) fn add(
        &mut self,
        labels: Arc<Labels>,
        drop: bool,
        t: i64,
        v: f64,
    ) -> EvalResult<()> {
        self.points += 1;
        let ptr = (Arc::as_ptr(&labels) as usize, drop);
        let key = (labels, drop);
        let found = match self.by_ptr.get(&ptr) {
            Some(&i) => Some(i),
            None => self.index.get(&key).copied(),
        };
        match found {
            Some(i) => {
                if let Some(s) = self.series.get_mut(i) {
                    if s.points.last().is_some_and(|p| p.0 == t)
                        || s.hpoints.last().is_some_and(|p| p.0 == t)
                    {
                        return Err(EvalError::same_labelset());
                    }
                    s.points.push((t, v));
                }
            }
            None => {
                self.by_ptr.insert(ptr, self.series.len());
                self.index.insert(key.clone(), self.series.len());
                self.series.push(Series {
                    labels: key.0,
                    points: vec![(t, v)],
                    drop_name: key.1,
                    hpoints: Vec::new(),
                });
            }
        }
        Ok(())
    }

    /// [`Collator::add`] for a histogram point.
    pub(crate) fn add_hist(
        &mut self,
        labels: Arc<Labels>,
        drop: bool,
        t: i64,
        h: FloatHistogram,
    ) -> EvalResult<()> {
        self.points += 1;
        let ptr = (Arc::as_ptr(&labels) as usize, drop);
        let key = (labels, drop);
        let found = match self.by_ptr.get(&ptr) {
            Some(&i) => Some(i),
            None => self.index.get(&key).copied(),
        };
        match found.and_then(|i| self.series.get_mut(i)) {
            Some(s) => {
                if s.points.last().is_some_and(|p| p.0 == t)
                    || s.hpoints.last().is_some_and(|p| p.0 == t)
                {
                    return Err(EvalError::same_labelset());
                }
                s.hpoints.push((t, h));
            }
            None => {
                self.by_ptr.insert(ptr, self.series.len());
                self.index.insert(key.clone(), self.series.len());
                self.series.push(Series {
                    labels: key.0,
                    points: Vec::new(),
                    drop_name: key.1,
                    hpoints: vec![(t, h)],
                });
            }
        }
        Ok(())
    }

    pub(crate) fn add_vector(&mut self, vec: Vec<Sample>, t: i64) -> EvalResult<()> {
        for s in vec {
            match s.h {
                None => self.add(s.labels, s.drop_name, t, s.value)?,
                Some(h) => self.add_hist(s.labels, s.drop_name, t, *h)?,
            }
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> Vec<Series> {
        let mut v = self.series;
        v.sort_by(|a, b| a.labels.cmp(&b.labels));
        v
    }
}

/// Removes `__name__` from samples marked for it and rejects a vector whose
/// label sets then collide.
pub(crate) fn cleanup_vector(vec: &mut [Sample]) -> EvalResult<()> {
    for s in vec.iter_mut() {
        if s.drop_name {
            s.labels = drop_metric_name(&s.labels);
            s.drop_name = false;
        }
    }
    check_unique(vec)
}

pub(crate) fn check_unique(vec: &[Sample]) -> EvalResult<()> {
    if vec.len() < 2 {
        return Ok(());
    }
    let mut seen = std::collections::HashSet::with_capacity(vec.len());
    for s in vec {
        if !seen.insert((&s.labels, s.drop_name)) {
            return Err(EvalError::same_labelset());
        }
    }
    Ok(())
}

/// Matrix form of [`cleanup_vector`]: series that become equal are merged
/// when their timestamps do not overlap, as Prometheus does.
pub(crate) fn cleanup_matrix(m: Vec<Series>) -> EvalResult<Vec<Series>> {
    if !m.iter().any(|s| s.drop_name) {
        return Ok(m);
    }
    let mut index: HashMap<Arc<Labels>, usize> = HashMap::new();
    let mut out: Vec<Series> = Vec::new();
    for mut s in m {
        if s.drop_name {
            s.labels = drop_metric_name(&s.labels);
            s.drop_name = false;
        }
        match index.get(&s.labels) {
            Some(&i) => {
                if let Some(o) = out.get_mut(i) {
                    o.points.extend(s.points);
                    o.points.sort_by_key(|p| p.0);
                    o.hpoints.extend(s.hpoints);
                    o.hpoints.sort_by_key(|p| p.0);
                    let overlap = !o.hpoints.is_empty()
                        && o.points
                            .iter()
                            .any(|p| o.hpoints.binary_search_by_key(&p.0, |h| h.0).is_ok());
                    if overlap
                        || o.points.windows(2).any(|w| w[0].0 == w[1].0)
                        || o.hpoints.windows(2).any(|w| w[0].0 == w[1].0)
                    {
                        return Err(EvalError::same_labelset());
                    }
                }
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    out.sort_by(|a, b| a.labels.cmp(&b.labels));
    Ok(out)
}

/// Labels that go with the metric name when an operation drops it: the
/// type-and-unit metadata labels describe the name.
pub(crate) const NAME_LABELS: [&str; 3] =
    [crate::model::labels::METRIC_NAME, "__type__", "__unit__"];

pub(crate) fn drop_metric_name(l: &Arc<Labels>) -> Arc<Labels> {
    if !l.iter().any(|x| NAME_LABELS.contains(&x.name.as_str())) {
        return l.clone();
    }
    let mut b = l.builder();
    b.retain(|x| !NAME_LABELS.contains(&x.name.as_str()));
    Arc::new(b.build())
}
