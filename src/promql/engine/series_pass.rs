//! Series-major evaluation: a range-vector function over a matrix selector,
//! an instant selector, and the folding aggregations over either, computed
//! for every step of the query in one pass over each series' samples.
//!
//! The per-step walk (`eval`) slices each series' window again at every
//! step, copies it, and hands a vector per step to the next operator. Here
//! each series' samples (decoded once per query by the selector's cache)
//! are walked once with a sliding window `(t - range, t]` per step:
//! `rate`/`increase`/`delta` keep the window's counter resets in a list,
//! `changes`/`resets` prefix counts, `min`/`max` (and `ts_of_*`) a monotonic
//! deque, `count`/`last`/`first`/`present`/`irate`/`idelta` need only the
//! window's ends; the others (Kahan sums, quantiles, regression) fold the
//! window slice exactly as the per-step code does. An aggregation takes its
//! input series one at a time into one accumulator per step and group, so
//! the input matrix is never held.
//!
//! Results are bit-identical to the per-step walk: the same functions run
//! over the same windows, and every float sum adds its terms in the order
//! the per-step walk adds them (inputs of an aggregation in series order,
//! window points in time order). Where that cannot be guaranteed cheaply
//! (series whose names collide once dropped, aggregation inputs that
//! reorder between steps), the node is left to the per-step walk.
//!
//! A node is evaluated this way when the per-step walk reaches it at a
//! query step (not inside a subquery); its table then answers every step.
//! A range query whose whole expression qualifies returns the table as its
//! matrix without the per-step walk at all.

use std::cell::OnceCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

/// One series' output points and the index of its first step with a value.
type SeriesPoints = (Vec<(i64, f64)>, Option<usize>);

use super::aggregate::{group_labels_of, Acc};
use super::binary::{elem, is_arith, matching_of, result_labels, signature};
use super::eval::{drop_metric_name, key, Evaluator, SeriesData, StepValue, NAME_LABELS};
use super::range_fns::{extrapolate, window_value, RangeFn};
use super::value::{EvalResult, Sample};
use crate::model::{is_stale_nan, Labels};
use crate::promql::parser::{
    AggregateExpr, BinaryExpr, BinaryOp, Call, Cardinality, Expr, MatrixSelector, UnaryOp,
    VectorSelector,
};

/// A node's value at every step of the query.
pub(crate) struct StepTable {
    /// Output series in the order the per-step walk produces them.
    pub series: Vec<TableSeries>,
    /// Samples the selector underneath yielded at each step (statistics
    /// and the sample limit, as the per-step walk counts them).
    pub loaded: Vec<u64>,
    /// The most one selector yielded at each step (the per-step walk's
    /// peak counts selectors one at a time; a binary operator's table
    /// loads two).
    pub peak: Vec<u64>,
    /// Whether, at every step, the series present come in the order of
    /// `series` (false when an aggregation's groups reorder between steps).
    pub ordered: bool,
}

pub(crate) struct TableSeries {
    pub labels: Arc<Labels>,
    pub drop_name: bool,
    /// `(step time, value)` at the steps where the series has a value.
    pub points: Vec<(i64, f64)>,
    /// Aggregations: per point, the input index that created the group at
    /// that step (the group's position in that step's vector). Empty: the
    /// series' own index.
    pub order: Vec<u32>,
}

/// The evaluation steps of the query.
#[derive(Clone, Copy)]
pub(crate) struct Grid {
    pub start: i64,
    pub step: i64,
    pub len: usize,
}

impl Grid {
    pub(crate) fn time(&self, i: usize) -> i64 {
        self.start.saturating_add(
            self.step
                .saturating_mul(i64::try_from(i).unwrap_or(i64::MAX)),
        )
    }

    pub(crate) fn index(&self, t: i64) -> Option<usize> {
        if self.step <= 0 {
            return (t == self.start && self.len > 0).then_some(0);
        }
        let d = t.checked_sub(self.start)?;
        if d < 0 || d % self.step != 0 {
            return None;
        }
        let i = usize::try_from(d / self.step).ok()?;
        (i < self.len).then_some(i)
    }
}

/// A range function over a matrix selector, with constant parameters.
struct RangeSpec {
    func: RangeFn,
    range: i64,
    off: i64,
    at: Option<i64>,
    params: (f64, f64),
}

/// Per-series working memory, reused across series.
#[derive(Default)]
struct Scratch {
    pts: Vec<(i64, f64)>,
    marks: Vec<u32>,
    prefix: Vec<u32>,
    deque: VecDeque<u32>,
    floats: Vec<f64>,
    out: Vec<(i64, f64)>,
}

/// Where an aggregation's (or a materialised node's) input series come from.
enum Input {
    Range {
        spec: RangeSpec,
        data: Rc<Vec<SeriesData>>,
        /// Output labels per input series where the function drops the
        /// name (built when first asked for: an aggregation grouping `by`
        /// labels other than the name's never needs them), else empty and
        /// the input's labels are the output's; and the `drop_name` flag
        /// they carry.
        unnamed: Vec<OnceCell<Arc<Labels>>>,
        drop_name: bool,
        /// Series that need `rate`'s counter-name note: (first step with
        /// samples, series index).
        noted: Vec<(usize, usize)>,
        pos: usize,
    },
    Selector {
        off: i64,
        at: Option<i64>,
        data: Rc<Vec<SeriesData>>,
    },
    Table(Rc<StepTable>),
}

impl Input {
    /// The labels of input series `j` as selected, before a range function
    /// dropped the name: what an aggregation may group by when its grouping
    /// is the same with or without the name (see `aggregate_table`).
    fn source_labels(&self, j: usize) -> Option<(&Arc<Labels>, bool)> {
        match self {
            Input::Range {
                data, drop_name, ..
            } => data.get(j).map(|s| (&s.labels, *drop_name)),
            _ => self.labels(j),
        }
    }

    fn len(&self) -> usize {
        match self {
            Input::Range { data, .. } | Input::Selector { data, .. } => data.len(),
            Input::Table(t) => t.series.len(),
        }
    }

    fn labels(&self, j: usize) -> Option<(&Arc<Labels>, bool)> {
        match self {
            Input::Range {
                data,
                unnamed,
                drop_name,
                ..
            } => {
                let s = data.get(j)?;
                let l = match unnamed.get(j) {
                    Some(cell) => cell.get_or_init(|| drop_metric_name(&s.labels)),
                    None => &s.labels,
                };
                Some((l, *drop_name))
            }
            Input::Selector { data, .. } => data.get(j).map(|s| (&s.labels, false)),
            Input::Table(t) => t.series.get(j).map(|s| (&s.labels, s.drop_name)),
        }
    }
}

/// Whether the series' label sets stay distinct once the name (and the
/// labels that go with it) are dropped. Hashes first, so the common case
/// builds no label set; equal hashes are settled by comparing the sets.
fn unique_unnamed(data: &[SeriesData]) -> bool {
    // `signature` ignoring leaves out the name itself.
    let others: Vec<String> = NAME_LABELS
        .iter()
        .filter(|n| **n != crate::model::labels::METRIC_NAME)
        .map(|n| n.to_string())
        .collect();
    let hash = |l: &Labels| signature(l, false, &others);
    let mut seen: HashSet<u64, foldhash::fast::RandomState> = HashSet::default();
    if data.iter().all(|s| seen.insert(hash(&s.labels))) {
        return true;
    }
    let labels: Vec<Arc<Labels>> = data.iter().map(|s| drop_metric_name(&s.labels)).collect();
    let mut seen = HashSet::with_capacity(labels.len());
    labels.iter().all(|l| seen.insert(&**l))
}

/// A scalar parameter that is the same at every step: a number literal,
/// maybe negated or in parentheses.
fn const_scalar(e: &Expr) -> Option<f64> {
    match e {
        Expr::NumberLiteral(n) => Some(n.value),
        Expr::Paren(p) => const_scalar(&p.expr),
        Expr::Unary(u) => const_scalar(&u.expr).map(|v| match u.op {
            UnaryOp::Neg => -v,
            UnaryOp::Pos => v,
        }),
        _ => None,
    }
}

/// One output value of an arithmetic or comparison operator, as the
/// per-step operator computes it: `None` where a comparison (without
/// `bool`) filters the point out; a kept comparison has `cmp_value`.
fn binop_point(op: BinaryOp, ret_bool: bool, l: f64, r: f64, cmp_value: f64) -> Option<f64> {
    let (val, keep) = elem(op, l, r);
    if ret_bool {
        Some(if keep { 1.0 } else { 0.0 })
    } else if !keep {
        None
    } else if op.is_comparison() {
        Some(cmp_value)
    } else {
        Some(val)
    }
}

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        e => e,
    }
}

/// The value of `spec`'s function at every step for one series, into
/// `scr.out`; adds each step's window size to `loaded`. Returns the first
/// step whose window had samples.
fn range_series(
    spec: &RangeSpec,
    samples: &[(i64, f64)],
    grid: Grid,
    scr: &mut Scratch,
    loaded: &mut [u64],
) -> Option<usize> {
    use RangeFn::*;
    let Scratch {
        pts,
        marks,
        prefix,
        deque,
        floats,
        out,
    } = scr;
    out.clear();
    pts.clear();
    pts.extend(samples.iter().copied().filter(|p| !is_stale_nan(p.1)));
    marks.clear();
    prefix.clear();
    deque.clear();
    let pts = &pts[..];
    match spec.func {
        // Indices k whose sample is below the one before: counter resets.
        Rate | Increase => marks.extend(
            (1..pts.len())
                .filter(|&k| pts[k].1 < pts[k - 1].1)
                .map(|k| k as u32),
        ),
        Changes | Resets => {
            // prefix[k]: hits among the pairs (k-1, k) up to k.
            let mut n = 0u32;
            prefix.push(0);
            for w in pts.windows(2) {
                let (p, cur) = (w[0].1, w[1].1);
                let hit = if spec.func == Changes {
                    cur != p && !(cur.is_nan() && p.is_nan())
                } else {
                    cur < p
                };
                n += u32::from(hit);
                prefix.push(n);
            }
        }
        _ => {}
    }
    // Whether a newer value `v` evicts an older `o` from the deque's back.
    let evicts = |o: f64, v: f64| match spec.func {
        Min => o > v,
        Max => o < v,
        TsOfMin => o >= v,
        TsOfMax => o <= v,
        _ => false,
    };
    let uses_deque = matches!(spec.func, Min | Max | TsOfMin | TsOfMax);
    let (mut a, mut b, mut r) = (0usize, 0usize, 0usize);
    let mut first = None;
    for (i, slot) in loaded.iter_mut().enumerate().take(grid.len) {
        let t = grid.time(i);
        let rt = spec.at.unwrap_or(t).saturating_sub(spec.off);
        let lo = rt.saturating_sub(spec.range);
        while b < pts.len() && pts[b].0 <= rt {
            if uses_deque && !pts[b].1.is_nan() {
                while deque
                    .back()
                    .is_some_and(|&o| evicts(pts[o as usize].1, pts[b].1))
                {
                    deque.pop_back();
                }
                deque.push_back(b as u32);
            }
            b += 1;
        }
        while a < b && pts[a].0 <= lo {
            a += 1;
        }
        if a >= b {
            continue;
        }
        *slot += (b - a) as u64;
        first.get_or_insert(i);
        let win = &pts[a..b];
        let (wf, wl) = (&pts[a], &pts[b - 1]);
        let v = match spec.func {
            Rate | Increase | Delta => {
                while marks.get(r).is_some_and(|&k| k as usize <= a) {
                    r += 1;
                }
                let resets = marks
                    .get(r..)
                    .unwrap_or_default()
                    .iter()
                    .take_while(|&&k| (k as usize) < b)
                    .map(|&k| pts[k as usize - 1].1);
                let counter = spec.func != Delta;
                let is_rate = spec.func == Rate;
                extrapolate(
                    (wf, wl, b - a),
                    resets,
                    (lo, rt, spec.range),
                    counter,
                    is_rate,
                )
            }
            Changes | Resets => {
                let hits = prefix[b - 1] - prefix[a];
                Some(f64::from(hits))
            }
            Count => Some((b - a) as f64),
            Min | Max | TsOfMin | TsOfMax => {
                while deque.front().is_some_and(|&k| (k as usize) < a) {
                    deque.pop_front();
                }
                let p = match deque.front() {
                    Some(&k) => pts[k as usize],
                    // Only NaNs in the window: the last one stands.
                    None => *wl,
                };
                Some(if matches!(spec.func, Min | Max) {
                    p.1
                } else {
                    p.0 as f64 / 1000.0
                })
            }
            f => window_value(f, win, (lo, rt, spec.range), t, spec.params, floats),
        };
        if let Some(v) = v {
            out.push((t, v));
        }
    }
    first
}

/// An instant selector's value at every step for one series, into
/// `scr.out` (the newest sample within the lookback, unless stale).
fn selector_series(
    off: i64,
    at: Option<i64>,
    lookback: i64,
    samples: &[(i64, f64)],
    grid: Grid,
    scr: &mut Scratch,
    loaded: &mut [u64],
) {
    scr.out.clear();
    let mut idx = 0usize;
    for (i, slot) in loaded.iter_mut().enumerate().take(grid.len) {
        let t = grid.time(i);
        let rt = at.unwrap_or(t).saturating_sub(off);
        let lo = rt.saturating_sub(lookback);
        while samples.get(idx).is_some_and(|p| p.0 <= rt) {
            idx += 1;
        }
        let Some(&(ts, v)) = idx.checked_sub(1).and_then(|k| samples.get(k)) else {
            continue;
        };
        if ts <= lo || is_stale_nan(v) {
            continue;
        }
        *slot += 1;
        scr.out.push((t, v));
    }
}

impl Evaluator<'_> {
    pub(crate) fn grid(&self) -> Grid {
        let len = if self.interval <= 0 {
            1
        } else {
            usize::try_from((self.end - self.start) / self.interval + 1).unwrap_or(0)
        };
        Grid {
            start: self.start,
            step: self.interval,
            len,
        }
    }

    /// The value of `expr` at step `t` from its table when the node is
    /// evaluated series by series; `None`: evaluate it step by step.
    pub(crate) fn tabled(&mut self, expr: &Expr, t: i64) -> EvalResult<Option<StepValue>> {
        if !self.series_pass || self.sub_depth > 0 {
            return Ok(None);
        }
        let Some(i) = self.grid().index(t) else {
            return Ok(None);
        };
        let k = key(expr);
        let table = match self.tables.get(&k) {
            Some(Some(tab)) => tab.clone(),
            Some(None) => return Ok(None),
            None => {
                let built = self.build_table(expr)?.map(Rc::new);
                self.tables.insert(k, built.clone());
                match built {
                    Some(tab) => tab,
                    None => return Ok(None),
                }
            }
        };
        self.loaded_step(
            table.loaded.get(i).copied().unwrap_or(0),
            table.peak.get(i).copied().unwrap_or(0),
        )?;
        let cursors = self
            .table_cursors
            .entry(k)
            .or_insert_with(|| vec![0; table.series.len()]);
        let mut col: Vec<(u32, Sample)> = Vec::new();
        for (j, (s, cur)) in table.series.iter().zip(cursors.iter_mut()).enumerate() {
            while s.points.get(*cur).is_some_and(|p| p.0 < t) {
                *cur += 1;
            }
            let Some(&(pt, value)) = s.points.get(*cur) else {
                continue;
            };
            if pt != t {
                continue;
            }
            let order = s.order.get(*cur).copied().unwrap_or(j as u32);
            col.push((
                order,
                Sample {
                    labels: s.labels.clone(),
                    t,
                    value,
                    drop_name: s.drop_name,
                    h: None,
                },
            ));
        }
        if !table.ordered && !col.windows(2).all(|w| w[0].0 <= w[1].0) {
            col.sort_by_key(|c| c.0);
        }
        Ok(Some(StepValue::Vector(
            col.into_iter().map(|(_, s)| s).collect(),
        )))
    }

    /// The table of a node the series pass can evaluate, or `None`.
    pub(crate) fn build_table(&mut self, expr: &Expr) -> EvalResult<Option<StepTable>> {
        match unwrap_parens(expr) {
            Expr::Aggregate(a) => self.aggregate_table(a),
            Expr::Binary(b) => self.binary_table(b),
            e => match self.input_of(e)? {
                Some(input) => self.materialize(input).map(Some),
                None => Ok(None),
            },
        }
    }

    /// `expr` as a source of input series for the pass.
    fn input_of(&mut self, expr: &Expr) -> EvalResult<Option<Input>> {
        match unwrap_parens(expr) {
            Expr::Call(c) => self.range_input(c),
            Expr::VectorSelector(vs) if !vs.smoothed => {
                let off = self.duration(vs.offset, &vs.offset_expr);
                let at = self.at_time(vs.at);
                let data = self.series_data(vs);
                if data.iter().any(|s| s.has_histograms()) {
                    return Ok(None);
                }
                Ok(Some(Input::Selector { off, at, data }))
            }
            e @ (Expr::Aggregate(_) | Expr::Binary(_)) => match self.build_table(e)? {
                Some(t) if t.ordered => Ok(Some(Input::Table(Rc::new(t)))),
                _ => Ok(None),
            },
            _ => Ok(None),
        }
    }

    fn range_input(&mut self, c: &Call) -> EvalResult<Option<Input>> {
        let Some(func) = RangeFn::from_name(c.func.name) else {
            return Ok(None);
        };
        let mi = usize::from(func == RangeFn::Quantile);
        let Some(Expr::MatrixSelector(ms)) = c.args.get(mi).map(unwrap_parens) else {
            return Ok(None);
        };
        let ms: &MatrixSelector = ms;
        let vs: &VectorSelector = &ms.selector;
        if vs.anchored || vs.smoothed {
            return Ok(None);
        }
        let mut params = Vec::new();
        for (i, a) in c.args.iter().enumerate() {
            if i != mi {
                match const_scalar(a) {
                    Some(v) => params.push(v),
                    None => return Ok(None),
                }
            }
        }
        let p0 = params.first().copied().unwrap_or(f64::NAN);
        let p1 = params.get(1).copied().unwrap_or(f64::NAN);
        let data = self.series_data(vs);
        if data.iter().any(|s| s.has_histograms()) {
            return Ok(None);
        }
        // What the per-step walk's `settle` does to the function's output:
        // the name goes, and a step where two outputs collide is an error.
        // Series whose labels collide without the name stay with that walk.
        let drops = !func.keeps_name();
        let (unnamed, drop_name) = if drops && !self.delayed_name_removal {
            if !unique_unnamed(&data) {
                return Ok(None);
            }
            (vec![OnceCell::new(); data.len()], false)
        } else {
            (Vec::new(), drops)
        };
        self.check_range_params(c, func, p0, p1)?;
        let spec = RangeSpec {
            func,
            range: self.duration(ms.range, &ms.range_expr),
            off: self.duration(vs.offset, &vs.offset_expr),
            at: self.at_time(vs.at),
            params: (p0, p1),
        };
        let pos = c.args.get(mi).map_or(c.span.0, |a| a.span().0);
        Ok(Some(Input::Range {
            spec,
            data,
            unnamed,
            drop_name,
            noted: Vec::new(),
            pos,
        }))
    }

    /// Input series `j`'s points into `scr.out` (step time, value).
    fn input_points(
        &mut self,
        input: &mut Input,
        j: usize,
        grid: Grid,
        scr: &mut Scratch,
        loaded: &mut [u64],
    ) {
        match input {
            Input::Range {
                spec, data, noted, ..
            } => {
                let Some(s) = data.get(j) else { return };
                let first = range_series(spec, &s.samples, grid, scr, loaded);
                if let Some(i) = first {
                    if spec.func.checks_counter_name() {
                        noted.push((i, j));
                    }
                }
            }
            Input::Selector { off, at, data } => {
                let Some(s) = data.get(j) else { return };
                selector_series(*off, *at, self.lookback, &s.samples, grid, scr, loaded);
            }
            Input::Table(t) => {
                scr.out.clear();
                if let Some(s) = t.series.get(j) {
                    scr.out.extend_from_slice(&s.points);
                }
            }
        }
    }

    /// Annotations and sample counts an input leaves once it is consumed;
    /// returns the per-step peak of one selector (see [`StepTable::peak`]).
    fn finish_input(&mut self, input: Input, loaded: &mut [u64]) -> Vec<u64> {
        match input {
            Input::Range {
                data,
                mut noted,
                pos,
                ..
            } => {
                noted.sort_unstable();
                for (_, j) in noted {
                    if let Some(s) = data.get(j) {
                        self.note_counter_name(&s.labels, pos);
                    }
                }
                loaded.to_vec()
            }
            Input::Table(t) => {
                for (l, n) in loaded.iter_mut().zip(&t.loaded) {
                    *l += n;
                }
                t.peak.clone()
            }
            Input::Selector { .. } => loaded.to_vec(),
        }
    }

    /// Every series of `input` at every step.
    fn materialize(&mut self, mut input: Input) -> EvalResult<StepTable> {
        let grid = self.grid();
        let mut loaded = vec![0u64; grid.len];
        let mut scr = Scratch::default();
        let mut series = Vec::new();
        let mut total = 0usize;
        let steps = u32::try_from(grid.len).unwrap_or(u32::MAX);
        let mut done = self
            .parallel_range(&mut input, grid, &mut loaded)
            .into_iter();
        for j in 0..input.len() {
            self.tick_by(steps)?;
            match done.next() {
                Some(points) => scr.out = points,
                None => self.input_points(&mut input, j, grid, &mut scr, &mut loaded),
            }
            if scr.out.is_empty() {
                continue;
            }
            total += scr.out.len();
            // More output than the limit fails the per-step walk too.
            self.check_samples(total)?;
            let Some((labels, drop_name)) = input.labels(j) else {
                continue;
            };
            series.push(TableSeries {
                labels: labels.clone(),
                drop_name,
                points: scr.out.clone(),
                order: Vec::new(),
            });
        }
        let peak = self.finish_input(input, &mut loaded);
        Ok(StepTable {
            series,
            loaded,
            peak,
            ordered: true,
        })
    }

    /// A range function's points for every series of `input`, in series
    /// order, computed on `parallelism` threads (the calling one and
    /// scoped others, each over a contiguous share of the series), with
    /// their window sizes added to `loaded` and the counter-name notes
    /// recorded as `input_points` does. Empty when the input is not a
    /// range function, has few samples, or parallelism is off: the caller then
    /// computes series by series. Deadline and cancellation are checked
    /// by the caller as it takes the results.
    fn parallel_range(
        &self,
        input: &mut Input,
        grid: Grid,
        loaded: &mut [u64],
    ) -> Vec<Vec<(i64, f64)>> {
        let Input::Range {
            spec, data, noted, ..
        } = input
        else {
            return Vec::new();
        };
        let threads = self.parallelism.min(data.len());
        if threads < 2
            || data.iter().map(|s| s.samples.len()).sum::<usize>() < super::PARALLEL_MIN_SAMPLES
        {
            return Vec::new();
        }
        let spec: &RangeSpec = spec;
        let run = |part: &[SeriesData]| {
            let mut scr = Scratch::default();
            let mut part_loaded = vec![0u64; grid.len];
            let out: Vec<SeriesPoints> = part
                .iter()
                .map(|s| {
                    let first = range_series(spec, &s.samples, grid, &mut scr, &mut part_loaded);
                    (std::mem::take(&mut scr.out), first)
                })
                .collect();
            (out, part_loaded)
        };
        let run = &run;
        let mut parts = data.chunks(data.len().div_ceil(threads));
        let first = parts.next().unwrap_or(&[]);
        let results = std::thread::scope(|sc| {
            let others: Vec<_> = parts.map(|p| sc.spawn(move || run(p))).collect();
            let mut results = vec![run(first)];
            for h in others {
                match h.join() {
                    Ok(r) => results.push(r),
                    Err(panic) => std::panic::resume_unwind(panic),
                }
            }
            results
        });
        let checks = spec.func.checks_counter_name();
        let mut out = Vec::with_capacity(data.len());
        for (part, part_loaded) in results {
            for (l, n) in loaded.iter_mut().zip(&part_loaded) {
                *l += n;
            }
            for (points, first) in part {
                if let (Some(i), true) = (first, checks) {
                    noted.push((i, out.len()));
                }
                out.push(points);
            }
        }
        out
    }

    /// A folding aggregation (`sum`, `avg`, `count`, `group`, `min`,
    /// `max`, `stddev`, `stdvar`) over a source the pass can evaluate: the
    /// members of each group are taken in input order into one
    /// accumulator per step, so every step folds the same values in the
    /// same order as the per-step aggregation.
    fn aggregate_table(&mut self, a: &AggregateExpr) -> EvalResult<Option<StepTable>> {
        if a.param.is_some() || !Acc::folds(a.op) {
            return Ok(None);
        }
        let Some(mut input) = self.input_of(&a.expr)? else {
            return Ok(None);
        };
        let node = key(a);
        let by_name = !a.without
            && a.grouping
                .iter()
                .any(|g| g == crate::model::labels::METRIC_NAME);
        // Groups in order of their first member, each with its members.
        let mut index: HashMap<u64, usize, foldhash::fast::RandomState> = HashMap::default();
        let mut groups: Vec<(Arc<Labels>, Vec<u32>)> = Vec::new();
        // Grouping `by` labels none of which goes with the name: the same
        // groups from the selected labels, without building every series'
        // name-less label set.
        let by_source = !a.without && !a.grouping.iter().any(|g| NAME_LABELS.contains(&g.as_str()));
        for j in 0..input.len() {
            let labels = if by_source {
                input.source_labels(j)
            } else {
                input.labels(j)
            };
            let Some((labels, _)) = labels else {
                continue;
            };
            let labels = labels.clone();
            let sig = self.cached_signature(node, &labels, !a.without, &a.grouping);
            match index.get(&sig) {
                Some(&g) => {
                    if let Some(g) = groups.get_mut(g) {
                        g.1.push(j as u32);
                    }
                }
                None => {
                    index.insert(sig, groups.len());
                    groups.push((Arc::new(group_labels_of(&labels, a)), vec![j as u32]));
                }
            }
        }
        let grid = self.grid();
        let mut loaded = vec![0u64; grid.len];
        let mut scr = Scratch::default();
        const EMPTY: u32 = u32::MAX;
        // Per step: the accumulator, the member that opened it, whether a
        // member asked for the name to go.
        let mut slots: Vec<(Acc, u32, bool)> = vec![(Acc::default(), EMPTY, false); grid.len];
        let mut last_order: Vec<u32> = vec![0; grid.len];
        let mut ordered = true;
        let mut series = Vec::with_capacity(groups.len());
        let mut total = 0usize;
        let steps = u32::try_from(grid.len).unwrap_or(u32::MAX);
        for (glabels, members) in groups {
            for &j in &members {
                self.tick_by(steps)?;
                let j = j as usize;
                self.input_points(&mut input, j, grid, &mut scr, &mut loaded);
                let drop = input.source_labels(j).is_some_and(|l| l.1) && by_name;
                for &(t, v) in &scr.out {
                    let Some(slot) = grid.index(t).and_then(|i| slots.get_mut(i)) else {
                        continue;
                    };
                    if slot.1 == EMPTY {
                        *slot = (Acc::new(a.op, v), j as u32, drop);
                    } else {
                        slot.0.add(a.op, v);
                        slot.2 |= drop;
                    }
                }
            }
            let mut points = Vec::new();
            let mut order = Vec::new();
            let mut drop_name = None;
            for (i, slot) in slots.iter_mut().enumerate() {
                if slot.1 == EMPTY {
                    continue;
                }
                // A group whose name flag differs between steps is two
                // series to the per-step walk: leave it to that walk.
                if *drop_name.get_or_insert(slot.2) != slot.2 {
                    return Ok(None);
                }
                if let Some(last) = last_order.get_mut(i) {
                    if slot.1 < *last {
                        ordered = false;
                    }
                    *last = slot.1;
                }
                points.push((grid.time(i), slot.0.result(a.op)));
                order.push(slot.1);
                *slot = (Acc::default(), EMPTY, false);
            }
            if points.is_empty() {
                continue;
            }
            total += points.len();
            self.check_samples(total)?;
            series.push(TableSeries {
                labels: glabels,
                drop_name: drop_name.unwrap_or(false),
                points,
                order,
            });
        }
        let peak = self.finish_input(input, &mut loaded);
        Ok(Some(StepTable {
            series,
            loaded,
            peak,
            ordered,
        }))
    }

    /// Appends a binary operator's output series unless it has no point,
    /// counting its points against the sample limit.
    fn push_series(
        &mut self,
        series: &mut Vec<TableSeries>,
        total: &mut usize,
        labels: Arc<Labels>,
        drop_name: bool,
        points: Vec<(i64, f64)>,
    ) -> EvalResult<()> {
        if points.is_empty() {
            return Ok(());
        }
        *total += points.len();
        self.check_samples(*total)?;
        series.push(TableSeries {
            labels,
            drop_name,
            points,
            order: Vec::new(),
        });
        Ok(())
    }

    /// An operand of a binary operator as a table (cached for the query,
    /// so the per-step walk finds it if the operator itself cannot be
    /// tabled), or `None` when the pass cannot evaluate it.
    fn operand_table(&mut self, e: &Expr) -> EvalResult<Option<Rc<StepTable>>> {
        let e = unwrap_parens(e);
        let k = key(e);
        if let Some(t) = self.tables.get(&k) {
            return Ok(t.clone());
        }
        let t = match e {
            // Unordered tables too: the per-step walk can still use them.
            Expr::Aggregate(_) | Expr::Binary(_) => self.build_table(e)?.map(Rc::new),
            e => match self.input_of(e)? {
                Some(Input::Table(t)) => Some(t),
                Some(input) => Some(Rc::new(self.materialize(input)?)),
                None => None,
            },
        };
        self.tables.insert(k, t.clone());
        Ok(t)
    }

    /// The output labels of a binary operator's result series as the
    /// per-step walk's `settle` leaves them, or `None` when two of them
    /// could collide at a step (left to that walk, which raises the
    /// error where it happens).
    fn settled_labels(&self, out: Vec<(Arc<Labels>, bool)>) -> Option<Vec<(Arc<Labels>, bool)>> {
        let out: Vec<(Arc<Labels>, bool)> = if self.delayed_name_removal {
            out
        } else {
            out.into_iter()
                .map(|(l, d)| {
                    if d {
                        (drop_metric_name(&l), false)
                    } else {
                        (l, false)
                    }
                })
                .collect()
        };
        // Hashes first (no collision, no two sets alike), the sets
        // themselves only on equal hashes.
        let mut hashes: HashSet<(u64, bool), foldhash::fast::RandomState> =
            HashSet::with_capacity_and_hasher(out.len(), Default::default());
        if out.iter().all(|(l, d)| hashes.insert((l.hash64(), *d))) {
            return Some(out);
        }
        let mut seen = HashSet::with_capacity(out.len());
        out.iter()
            .all(|(l, d)| seen.insert((&**l, *d)))
            .then_some(out)
    }

    /// A binary operator (arithmetic or comparison) between a table and a
    /// constant, or between two tables with one-to-one or many-to-one
    /// matching: label-set matching is done once per pair of series, then
    /// each pair's points are combined step by step where both have one,
    /// with the per-step operator's element function. Set operators, fill
    /// modifiers, non-constant scalars and operands whose matching could
    /// fail at some step are left to the per-step walk.
    fn binary_table(&mut self, b: &BinaryExpr) -> EvalResult<Option<StepTable>> {
        let op = b.op;
        if op.is_set() {
            return Ok(None);
        }
        let ret_bool = b.return_bool;
        let lc = const_scalar(&b.lhs);
        let rc = const_scalar(&b.rhs);
        if lc.is_some() && rc.is_some() {
            return Ok(None);
        }
        if let Some((c, vec_side, swap)) = match (lc, rc) {
            (None, Some(c)) => Some((c, &b.lhs, false)),
            (Some(c), None) => Some((c, &b.rhs, true)),
            _ => None,
        } {
            let Some(t) = self.operand_table(vec_side)? else {
                return Ok(None);
            };
            if !t.ordered {
                return Ok(None);
            }
            let drops = is_arith(op) || ret_bool;
            let Some(labels) = self.settled_labels(
                t.series
                    .iter()
                    .map(|s| (s.labels.clone(), s.drop_name || drops))
                    .collect(),
            ) else {
                return Ok(None);
            };
            let mut series = Vec::with_capacity(t.series.len());
            let mut total = 0usize;
            let steps = u32::try_from(t.loaded.len()).unwrap_or(u32::MAX);
            for (s, (labels, drop_name)) in t.series.iter().zip(labels) {
                self.tick_by(steps)?;
                let points = s
                    .points
                    .iter()
                    .filter_map(|&(ts, v)| {
                        let (l, r) = if swap { (c, v) } else { (v, c) };
                        // A comparison keeps the vector's value.
                        binop_point(op, ret_bool, l, r, v).map(|x| (ts, x))
                    })
                    .collect();
                self.push_series(&mut series, &mut total, labels, drop_name, points)?;
            }
            return Ok(Some(StepTable {
                series,
                loaded: t.loaded.clone(),
                peak: t.peak.clone(),
                ordered: true,
            }));
        }
        let m = matching_of(b);
        let m = &*m;
        if m.fill_lhs.is_some() || m.fill_rhs.is_some() || m.card == Cardinality::ManyToMany {
            return Ok(None);
        }
        let Some(lt) = self.operand_table(&b.lhs)? else {
            return Ok(None);
        };
        let Some(rt) = self.operand_table(&b.rhs)? else {
            return Ok(None);
        };
        if !lt.ordered || !rt.ordered {
            return Ok(None);
        }
        let swapped = m.card == Cardinality::OneToMany;
        let (many, one) = if swapped { (&rt, &lt) } else { (&lt, &rt) };
        // The "one" side by match signature; two series with one signature
        // may meet at a step (an error there): per-step walk.
        let mut right: HashMap<u64, usize, foldhash::fast::RandomState> = HashMap::default();
        for (i, s) in one.series.iter().enumerate() {
            if right
                .insert(signature(&s.labels, m.on, &m.labels), i)
                .is_some()
            {
                return Ok(None);
            }
        }
        // Pairs in the order of the "many" side, which is the order the
        // per-step walk emits them at every step.
        let drops = is_arith(op) || ret_bool;
        let mut pairs = Vec::new();
        let mut outs = Vec::new();
        let mut per_sig: HashMap<u64, Vec<u64>, foldhash::fast::RandomState> = HashMap::default();
        for (i, ls) in many.series.iter().enumerate() {
            let sig = signature(&ls.labels, m.on, &m.labels);
            let Some(&j) = right.get(&sig) else {
                continue;
            };
            let Some(rs) = one.series.get(j) else {
                continue;
            };
            // Many-to-one without `group_left(<labels>)`: the "many"
            // side's labels as they are.
            let labels = if m.card != Cardinality::OneToOne && m.include.is_empty() {
                ls.labels.clone()
            } else {
                Arc::new(result_labels(&ls.labels, &rs.labels, m))
            };
            let drop = ls.drop_name || drops;
            // As `settle` leaves them: built once here, so
            // `settled_labels` below finds nothing left to drop.
            let (labels, drop) = if drop && !self.delayed_name_removal {
                (drop_metric_name(&labels), false)
            } else {
                (labels, drop)
            };
            let members = per_sig.entry(sig).or_default();
            if m.card == Cardinality::OneToOne {
                if !members.is_empty() {
                    return Ok(None);
                }
                members.push(0);
            } else {
                let h = labels.hash64();
                if members.contains(&h) {
                    return Ok(None);
                }
                members.push(h);
            }
            pairs.push((i, j));
            outs.push((labels, drop));
        }
        let Some(labels) = self.settled_labels(outs) else {
            return Ok(None);
        };
        let steps = u32::try_from(lt.loaded.len()).unwrap_or(u32::MAX);
        let mut series = Vec::with_capacity(pairs.len());
        let mut total = 0usize;
        for ((i, j), (labels, drop_name)) in pairs.into_iter().zip(labels) {
            self.tick_by(steps)?;
            let (Some(ls), Some(rs)) = (many.series.get(i), one.series.get(j)) else {
                continue;
            };
            let mut points = Vec::new();
            let (mut a, mut c) = (0, 0);
            while let (Some(&(ta, va)), Some(&(tc, vc))) = (ls.points.get(a), rs.points.get(c)) {
                if ta < tc {
                    a += 1;
                    continue;
                }
                if tc < ta {
                    c += 1;
                    continue;
                }
                a += 1;
                c += 1;
                let (vl, vr) = if swapped { (vc, va) } else { (va, vc) };
                if let Some(x) = binop_point(op, ret_bool, vl, vr, vl) {
                    points.push((ta, x));
                }
            }
            self.push_series(&mut series, &mut total, labels, drop_name, points)?;
        }
        let loaded = lt
            .loaded
            .iter()
            .zip(rt.loaded.iter())
            .map(|(a, b)| a + b)
            .collect();
        let peak = lt
            .peak
            .iter()
            .zip(rt.peak.iter())
            .map(|(a, b)| *a.max(b))
            .collect();
        Ok(Some(StepTable {
            series,
            loaded,
            peak,
            ordered: true,
        }))
    }
}
