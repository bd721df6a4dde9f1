//! PromQL over native histograms: the `histogram_*` functions' native
//! side, and the helpers the operators share (annotation texts naming the
//! metric, histogram samples built from an input sample).
//!
//! Semantics follow Prometheus 3.x: the `histogram_*` functions evaluate
//! native histogram samples and ignore float samples; quantiles and
//! fractions over one histogram come from `model::histogram::functions`.

use std::collections::HashMap;

use super::eval::{Evaluator, StepValue};
use super::range_fns::{extrapolation_factor, RangeFn};
use super::value::{EvalError, EvalResult, Sample};
use crate::model::gofmt::go_quote;
use crate::model::histogram::{self, CounterResetHint, FloatHistogram};
use crate::model::labels::METRIC_NAME;
use crate::model::Labels;
use crate::promql::parser::{AggregateExpr, AggregateOp, BinaryOp, Call, Expr};

impl Evaluator<'_> {
    /// ` for metric name "x"` as Prometheus appends it to an annotation,
    /// or nothing when the name is not known (gone, or removed already
    /// without delayed name removal).
    pub(crate) fn anno_metric_name(&self, l: &Labels) -> String {
        let name = l.metric_name();
        if name.is_empty() || !self.delayed_name_removal {
            return String::new();
        }
        format!(" for metric name {}", go_quote(name))
    }

    /// `histogram_count`, `_sum`, `_avg`, `_stddev`, `_stdvar`: one value
    /// per histogram sample; float samples are left out.
    pub(crate) fn histogram_simple(&mut self, c: &Call, t: i64) -> EvalResult<StepValue> {
        let f: fn(&FloatHistogram) -> f64 = match c.func.name {
            "histogram_count" => histogram::histogram_count,
            "histogram_sum" => histogram::histogram_sum,
            "histogram_avg" => histogram::histogram_avg,
            "histogram_stddev" => histogram::histogram_stddev,
            _ => histogram::histogram_stdvar,
        };
        let arg = c
            .args
            .first()
            .ok_or_else(|| EvalError::exec(format!("missing argument to {}", c.func.name)))?;
        let v = match self.eval(arg, t)? {
            StepValue::Vector(v) => v,
            other => {
                return Err(EvalError::exec(format!(
                    "expected instant vector argument, got {}",
                    other.type_name()
                )))
            }
        };
        let out = v
            .into_iter()
            .filter_map(|s| {
                let h = s.h?;
                Some(Sample {
                    labels: s.labels,
                    t: s.t,
                    value: f(&h),
                    drop_name: true,
                    h: None,
                })
            })
            .collect();
        Ok(StepValue::Vector(out))
    }

    /// The native histogram side of `histogram_quantile(s)` (one output
    /// per quantile, labelled with `label` when given) or, with no
    /// quantiles, `histogram_fraction(params[0], params[1], ..)`.
    pub(crate) fn native_quantiles(
        &mut self,
        s: &Sample,
        quantiles: &[f64],
        params: &[f64],
        label: Option<&str>,
        varg: &Expr,
        out: &mut Vec<Sample>,
    ) {
        let Some(h) = s.h.as_deref() else { return };
        let pos = varg.span().0;
        let name = self.anno_metric_name(&s.labels);
        if quantiles.is_empty() {
            let lo = params.first().copied().unwrap_or(f64::NAN);
            let hi = params.get(1).copied().unwrap_or(f64::NAN);
            let (v, info) = histogram::histogram_fraction(lo, hi, h);
            if info.nan_fraction {
                self.info(
                    format!("input to histogram_fraction has NaN observations, which are excluded from all fractions{name}"),
                    pos,
                );
            }
            out.push(Sample {
                labels: s.labels.clone(),
                t: s.t,
                value: v,
                drop_name: true,
                h: None,
            });
            return;
        }
        for &q in quantiles {
            let (v, info) = histogram::histogram_quantile(q, h);
            if info.nan_result {
                self.info(
                    format!(
                        "input to histogram_quantile has NaN observations, result is NaN{name}"
                    ),
                    pos,
                );
            } else if info.nan_skew {
                self.info(
                    format!("input to histogram_quantile has NaN observations, result is skewed higher{name}"),
                    pos,
                );
            }
            let labels = match label {
                Some(l) => {
                    let mut b = s.labels.builder();
                    b.set(l.to_string(), super::histogram::label_float(q));
                    std::sync::Arc::new(b.build())
                }
                None => s.labels.clone(),
            };
            out.push(Sample {
                labels,
                t: s.t,
                value: v,
                drop_name: true,
                h: None,
            });
        }
    }
}

/// A histogram as Go's `FloatHistogram.String()` prints it (the value
/// `count_values` counts): `{count:N, sum:S, <bucket>:<count>, ...}` with
/// the populated buckets from the most negative up, as `[lo,hi):n`.
pub(crate) fn go_string(h: &FloatHistogram) -> String {
    let mut out = format!(
        "{{count:{}, sum:{}",
        histogram::go_g(h.count),
        histogram::go_g(h.sum)
    );
    let neg: Vec<_> = h
        .negative_buckets_iter()
        .filter(|b| b.count != 0.0)
        .collect();
    for b in neg.iter().rev() {
        out.push_str(&format!(", {b}"));
    }
    if h.zero_count != 0.0 {
        out.push_str(&format!(", {}", h.zero_bucket()));
    }
    for b in h.positive_buckets_iter().filter(|b| b.count != 0.0) {
        out.push_str(&format!(", {b}"));
    }
    out.push('}');
    out
}

/// The trim operators: `h </ x` keeps the observations below `x`, `h >/ x`
/// those above (`upper` is `</`). A bucket the bound cuts keeps the share
/// interpolated as `histogram_fraction` does (linearly for custom buckets,
/// exponentially otherwise); count and sum are then estimated from the
/// kept buckets (each at its midpoint), as Prometheus' `TrimBuckets`.
pub(crate) fn trim_buckets(h: &mut FloatHistogram, rhs: f64, upper: bool) {
    let custom = h.uses_custom_buckets();
    let (mut count, mut sum) = (0.0, 0.0);
    let mut trimmed = false;
    let mut has = [false, false];
    for (side, positive) in [(0, true), (1, false)] {
        let buckets: Vec<histogram::Bucket> = if positive {
            h.positive_buckets_iter().collect()
        } else {
            h.negative_buckets_iter().collect()
        };
        for (i, b) in buckets.iter().enumerate() {
            if b.count == 0.0 {
                continue;
            }
            has[side] = true;
            let whole = if upper {
                b.upper <= rhs
            } else {
                b.lower >= rhs
            };
            let none = if upper {
                b.lower >= rhs
            } else {
                b.upper <= rhs
            };
            let keep = if whole {
                count += b.count;
                sum += trim_midpoint(b.lower, b.upper, positive, custom) * b.count;
                continue;
            } else if none {
                0.0
            } else {
                let (keep, mid) = trim_bucket(b, rhs, upper, positive, custom);
                count += keep;
                sum += mid * keep;
                keep
            };
            let slot = if positive {
                h.positive_buckets.get_mut(i)
            } else {
                h.negative_buckets.get_mut(i)
            };
            if let Some(c) = slot {
                if *c != keep {
                    *c = keep;
                    trimmed = true;
                }
            }
        }
    }
    if h.zero_count > 0.0 {
        let (keep, mid) = trim_zero_bucket(h, rhs, has[1], has[0], upper);
        if h.zero_count != keep {
            h.zero_count = keep;
            trimmed = true;
        }
        sum += mid * keep;
        count += keep;
    }
    if trimmed {
        h.count = count;
        h.sum = sum;
        h.compact(0);
    }
}

/// The part of the zero bucket a trim keeps, and its midpoint. The zero
/// bucket counts as one-sided when only positive (or only negative)
/// buckets are populated.
fn trim_zero_bucket(
    h: &FloatHistogram,
    rhs: f64,
    has_negative: bool,
    has_positive: bool,
    upper_trim: bool,
) -> (f64, f64) {
    let z = h.zero_bucket();
    let lower = if has_positive && !has_negative {
        0.0
    } else {
        z.lower
    };
    let upper = if has_negative && !has_positive {
        0.0
    } else {
        z.upper
    };
    let (fraction, mid) = if upper_trim {
        if rhs <= lower {
            return (0.0, 0.0);
        }
        if rhs >= upper {
            return (z.count, (lower + upper) / 2.0);
        }
        ((rhs - lower) / (upper - lower), (lower + rhs) / 2.0)
    } else {
        if rhs <= lower {
            return (z.count, (lower + upper) / 2.0);
        }
        if rhs >= upper {
            return (0.0, 0.0);
        }
        ((upper - rhs) / (upper - lower), (rhs + upper) / 2.0)
    };
    (z.count * fraction, mid)
}

/// The kept count and its midpoint for a bucket the trim bound falls in.
fn trim_bucket(
    b: &histogram::Bucket,
    rhs: f64,
    upper_trim: bool,
    positive: bool,
    linear: bool,
) -> (f64, f64) {
    if b.lower == f64::NEG_INFINITY || b.upper == f64::INFINITY {
        return trim_infinite_bucket(b, rhs, upper_trim);
    }
    let below = if rhs <= b.lower {
        0.0
    } else if rhs >= b.upper {
        b.count
    } else {
        b.count * b.fraction_below(rhs, linear)
    };
    if upper_trim {
        (below, trim_midpoint(b.lower, rhs, positive, linear))
    } else {
        (
            b.count - below,
            trim_midpoint(rhs, b.upper, positive, linear),
        )
    }
}

/// A cut bucket with an infinite bound: kept whole where the bound cannot
/// cut it, interpolated from 0 for the custom first bucket with a positive
/// upper bound, otherwise dropped (its distribution is unknown).
fn trim_infinite_bucket(b: &histogram::Bucket, rhs: f64, upper_trim: bool) -> (f64, f64) {
    let finite = |x: f64| if x.is_infinite() { 0.0 } else { x };
    if b.lower == f64::NEG_INFINITY {
        if upper_trim {
            if rhs >= b.upper {
                return (b.count, 0.0);
            }
            if rhs > 0.0 && b.upper > 0.0 && b.upper != f64::INFINITY {
                return (b.count * rhs / b.upper, rhs / 2.0);
            }
            if b.upper <= 0.0 {
                return (b.count, rhs);
            }
            return (0.0, finite(b.upper));
        }
        if rhs >= 0.0 && b.upper > rhs && b.upper != f64::INFINITY {
            return (b.count * (1.0 - rhs / b.upper), (rhs + b.upper) / 2.0);
        }
        return (0.0, finite(b.upper));
    }
    // Upper bound +Inf.
    if upper_trim {
        return (0.0, finite(b.lower));
    }
    if rhs >= b.lower {
        return (b.count, rhs);
    }
    (0.0, finite(b.lower))
}

/// Where the observations of `[lo, hi]` are assumed to sit: the middle
/// (linear buckets) or the geometric mean (exponential ones), with the
/// conventions Prometheus uses for infinite bounds.
fn trim_midpoint(lo: f64, hi: f64, positive: bool, linear: bool) -> f64 {
    if lo.is_infinite() {
        if hi.is_infinite() {
            return 0.0;
        }
        return if hi > 0.0 { hi / 2.0 } else { hi };
    }
    if hi.is_infinite() {
        return lo;
    }
    if linear {
        return (lo + hi) / 2.0;
    }
    let g = (lo * hi).abs().sqrt();
    if positive {
        g
    } else {
        -g
    }
}

/// `changes` or `resets` over a window of floats and histograms merged by
/// time: a switch between a float and a histogram counts either way; two
/// histograms count as a change when they differ and as a reset when the
/// later one is a counter reset of the earlier.
pub(crate) fn changes_or_resets(
    resets: bool,
    points: &[(i64, f64)],
    hpoints: &[(i64, FloatHistogram)],
) -> f64 {
    let (mut i, mut j) = (0, 0);
    let mut prev: Option<(f64, Option<&FloatHistogram>)> = None;
    let mut n = 0u64;
    while i < points.len() || j < hpoints.len() {
        let take_float = match (points.get(i), hpoints.get(j)) {
            (Some(f), Some(h)) => f.0 < h.0,
            (Some(_), None) => true,
            _ => false,
        };
        let cur = if take_float {
            i += 1;
            (points[i - 1].1, None)
        } else {
            j += 1;
            (0.0, Some(&hpoints[j - 1].1))
        };
        if let Some(p) = prev {
            let counted = match (p.1, cur.1) {
                (None, None) if resets => cur.0 < p.0,
                (None, None) => cur.0 != p.0 && !(cur.0.is_nan() && p.0.is_nan()),
                (Some(a), Some(b)) if resets => b.detect_reset(a),
                (Some(a), Some(b)) => !b.equals(a),
                _ => true,
            };
            n += u64::from(counted);
        }
        prev = Some(cur);
    }
    n as f64
}

/// A Kahan-compensated sum or mean of native histograms, as Prometheus 3
/// aggregates them (`sum`, `avg`, `sum_over_time`, `avg_over_time`): every
/// count, the sum and each bucket carry a compensation term, and a mean
/// switches to incremental calculation once the direct sum overflows.
pub(crate) struct HistAcc {
    value: FloatHistogram,
    /// The compensation terms (same schema as `value`).
    c: Option<FloatHistogram>,
    n: f64,
    /// `value` holds the running mean instead of the sum.
    incremental: bool,
}

/// `h += o` with compensation `c` (created on first use). Layouts that
/// need reconciling (zero thresholds, custom bounds) fold the compensation
/// in first and add plainly.
fn kahan_add(
    h: &mut FloatHistogram,
    c: &mut Option<FloatHistogram>,
    o: &FloatHistogram,
) -> Result<histogram::CombineInfo, histogram::HistogramError> {
    use crate::model::histogram::{collapse, expand, functions::kahan_inc};
    if h.uses_custom_buckets() != o.uses_custom_buckets() {
        return Err(histogram::HistogramError::IncompatibleSchema);
    }
    let same_layout = h.zero_threshold == o.zero_threshold
        && (!h.uses_custom_buckets() || h.custom_values == o.custom_values);
    if !same_layout {
        if let Some(comp) = c.take() {
            h.add(&comp)?;
        }
        return h.add(o);
    }
    let mut o = std::borrow::Cow::Borrowed(o);
    if !h.uses_custom_buckets() {
        if o.schema < h.schema {
            h.reduce_resolution(o.schema)?;
            if let Some(comp) = c.as_mut() {
                comp.reduce_resolution(o.schema)?;
            }
        } else if o.schema > h.schema {
            o.to_mut().reduce_resolution(h.schema)?;
        }
    }
    // Only the hint: the values are added with compensation below.
    let info = {
        let mut hint = FloatHistogram {
            counter_reset_hint: h.counter_reset_hint,
            schema: h.schema,
            custom_values: h.custom_values.clone(),
            ..FloatHistogram::default()
        };
        let other = FloatHistogram {
            counter_reset_hint: o.counter_reset_hint,
            schema: o.schema,
            custom_values: o.custom_values.clone(),
            ..FloatHistogram::default()
        };
        let info = hint.add(&other)?;
        h.counter_reset_hint = hint.counter_reset_hint;
        info
    };
    let comp = c.get_or_insert_with(|| FloatHistogram {
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        custom_values: h.custom_values.clone(),
        ..FloatHistogram::default()
    });
    (h.count, comp.count) = kahan_inc(o.count, h.count, comp.count);
    (h.sum, comp.sum) = kahan_inc(o.sum, h.sum, comp.sum);
    (h.zero_count, comp.zero_count) = kahan_inc(o.zero_count, h.zero_count, comp.zero_count);
    let side = |hs: &[histogram::Span],
                hb: &[f64],
                cs: &[histogram::Span],
                cb: &[f64],
                os: &[histogram::Span],
                ob: &[f64]| {
        let (hl, cl, ol) = (expand(hs, hb), expand(cs, cb), expand(os, ob));
        let mut idx: Vec<i32> = hl.iter().chain(&cl).chain(&ol).map(|b| b.0).collect();
        idx.sort_unstable();
        idx.dedup();
        let get = |l: &[(i32, f64)], i: i32| {
            l.binary_search_by_key(&i, |b| b.0)
                .ok()
                .and_then(|k| l.get(k))
                .map_or(0.0, |b| b.1)
        };
        let mut hv = Vec::with_capacity(idx.len());
        let mut cv = Vec::with_capacity(idx.len());
        for i in idx {
            let (v, k) = kahan_inc(get(&ol, i), get(&hl, i), get(&cl, i));
            hv.push((i, v));
            cv.push((i, k));
        }
        (collapse(&hv), collapse(&cv))
    };
    let ((hs, hb), (cs, cb)) = side(
        &h.positive_spans,
        &h.positive_buckets,
        &comp.positive_spans,
        &comp.positive_buckets,
        &o.positive_spans,
        &o.positive_buckets,
    );
    (h.positive_spans, h.positive_buckets) = (hs, hb);
    (comp.positive_spans, comp.positive_buckets) = (cs, cb);
    let ((hs, hb), (cs, cb)) = side(
        &h.negative_spans,
        &h.negative_buckets,
        &comp.negative_spans,
        &comp.negative_buckets,
        &o.negative_spans,
        &o.negative_buckets,
    );
    (h.negative_spans, h.negative_buckets) = (hs, hb);
    (comp.negative_spans, comp.negative_buckets) = (cs, cb);
    comp.schema = h.schema;
    Ok(info)
}

/// Whether a count, the sum or a bucket overflowed to an infinity.
fn has_overflow(h: &FloatHistogram) -> bool {
    [h.zero_count, h.count, h.sum]
        .iter()
        .chain(&h.positive_buckets)
        .chain(&h.negative_buckets)
        .any(|v| v.is_infinite())
}

impl HistAcc {
    pub(crate) fn new(h: FloatHistogram) -> Self {
        HistAcc {
            value: h,
            c: None,
            n: 1.0,
            incremental: false,
        }
    }

    /// Adds `h` to a sum.
    pub(crate) fn add(
        &mut self,
        h: &FloatHistogram,
    ) -> Result<histogram::CombineInfo, histogram::HistogramError> {
        self.n += 1.0;
        kahan_add(&mut self.value, &mut self.c, h)
    }

    /// Adds `h` to a mean: summed directly while the sum stays finite,
    /// then as an incremental mean.
    pub(crate) fn add_avg(
        &mut self,
        h: &FloatHistogram,
    ) -> Result<histogram::CombineInfo, histogram::HistogramError> {
        self.n += 1.0;
        if !self.incremental {
            let mut v = self.value.clone();
            let mut c = self.c.clone();
            let info = kahan_add(&mut v, &mut c, h)?;
            if !has_overflow(&v) {
                (self.value, self.c) = (v, c);
                return Ok(info);
            }
            self.incremental = true;
            self.value.div(self.n - 1.0);
            if let Some(c) = &mut self.c {
                c.div(self.n - 1.0);
            }
        }
        let q = (self.n - 1.0) / self.n;
        if let Some(c) = &mut self.c {
            c.mul(q);
        }
        let mut add = h.clone();
        add.div(self.n);
        self.value.mul(q);
        kahan_add(&mut self.value, &mut self.c, &add)
    }

    /// The sum, compensation added, compacted.
    pub(crate) fn sum(mut self) -> FloatHistogram {
        if let Some(mut c) = self.c.take() {
            // The compensation carries no hint of its own.
            c.counter_reset_hint = self.value.counter_reset_hint;
            let _ = self.value.add(&c);
        }
        self.value.compact(0);
        self.value
    }

    /// The mean of what [`add_avg`](Self::add_avg) took, compacted.
    pub(crate) fn mean(mut self) -> FloatHistogram {
        if !self.incremental {
            self.value.div(self.n);
            if let Some(c) = &mut self.c {
                c.div(self.n);
            }
        }
        self.sum()
    }
}

/// One group of a `sum`/`avg` over histogram samples.
struct HistGroup {
    key: u64,
    labels: Labels,
    drop_name: bool,
    acc: HistAcc,
    reset_seen: bool,
    not_reset_seen: bool,
    incompatible: bool,
}

impl Evaluator<'_> {
    /// `sum` and `avg` over the histogram samples of an aggregation's
    /// input, grouped as the float side groups: each group's grouping
    /// signature with its result, or `None` when its histograms could not
    /// be added (exponential beside custom buckets, warned here).
    pub(crate) fn aggregate_histograms(
        &mut self,
        a: &AggregateExpr,
        hists: Vec<Sample>,
    ) -> Vec<(u64, Option<Sample>)> {
        let pos = a.expr.span().0;
        let by_name = !a.without && a.grouping.iter().any(|g| g == METRIC_NAME);
        let avg = a.op == AggregateOp::Avg;
        let mut groups: Vec<HistGroup> = Vec::new();
        let mut index: HashMap<u64, usize> = HashMap::new();
        for s in hists {
            let Some(h) = s.h else { continue };
            let key =
                self.cached_signature(super::eval::key(a), &s.labels, !a.without, &a.grouping);
            let (reset, not_reset) = (
                h.counter_reset_hint == CounterResetHint::Reset,
                h.counter_reset_hint == CounterResetHint::NotReset,
            );
            let Some(g) = index.get(&key).and_then(|&i| groups.get_mut(i)) else {
                index.insert(key, groups.len());
                groups.push(HistGroup {
                    key,
                    labels: super::aggregate::group_labels_of(&s.labels, a),
                    drop_name: by_name && s.drop_name,
                    acc: HistAcc::new(*h),
                    reset_seen: reset,
                    not_reset_seen: not_reset,
                    incompatible: false,
                });
                continue;
            };
            if g.incompatible {
                continue;
            }
            if by_name && s.drop_name {
                g.drop_name = true;
            }
            g.reset_seen |= reset;
            g.not_reset_seen |= not_reset;
            let added = if avg {
                g.acc.add_avg(&h)
            } else {
                g.acc.add(&h)
            };
            match added {
                Ok(info) => {
                    if info.nhcb_bounds_reconciled {
                        self.info(
                            "mismatched custom buckets were reconciled during aggregation".into(),
                            pos,
                        );
                    }
                }
                Err(_) => {
                    g.incompatible = true;
                    self.warn(
                        format!(
                            "vector contains a mix of histograms with exponential and custom buckets schemas for metric name {}",
                            go_quote(s.labels.metric_name())
                        ),
                        pos,
                    );
                }
            }
        }
        let mut out = Vec::with_capacity(groups.len());
        for g in groups {
            if g.incompatible {
                out.push((g.key, None));
                continue;
            }
            if g.reset_seen && g.not_reset_seen {
                self.warn(
                    "conflicting counter resets during histogram aggregation".into(),
                    pos,
                );
            }
            let value = if avg { g.acc.mean() } else { g.acc.sum() };
            out.push((
                g.key,
                Some(Sample {
                    labels: g.labels.into(),
                    t: 0,
                    value: 0.0,
                    drop_name: g.drop_name,
                    h: Some(Box::new(value)),
                }),
            ));
        }
        out
    }

    /// The info for a histogram an aggregation that takes floats only
    /// (`min`, `max`, `topk`, `quantile`, ...) left out.
    pub(crate) fn histogram_ignored(&mut self, a: &AggregateExpr) {
        let name = a.op.as_str();
        self.info(
            format!("ignored histogram in {name} aggregation"),
            a.expr.span().0,
        );
    }
}

/// An annotation raised away from the evaluator (binary operators work on
/// plain vectors), added by the caller at the operator's position.
pub(crate) enum Note {
    Warn(String),
    Info(String),
}

impl Evaluator<'_> {
    /// The annotations of a histogram addition or subtraction (`what`:
    /// "aggregation", "subtraction", "addition") over series `name`:
    /// `false` (warned) when exponential and custom buckets met.
    fn combined(
        &mut self,
        r: Result<histogram::CombineInfo, histogram::HistogramError>,
        what: &str,
        name: &str,
        pos: usize,
    ) -> bool {
        match r {
            Err(_) => {
                self.warn(
                    format!("vector contains a mix of histograms with exponential and custom buckets schemas for metric name {name}"),
                    pos,
                );
                false
            }
            Ok(info) => {
                if info.nhcb_bounds_reconciled {
                    self.info(
                        format!("mismatched custom buckets were reconciled during {what}"),
                        pos,
                    );
                }
                true
            }
        }
    }

    pub(crate) fn add_notes(&mut self, notes: Vec<Note>, pos: usize) {
        for n in notes {
            match n {
                Note::Warn(w) => self.warn(w, pos),
                Note::Info(i) => self.info(i, pos),
            }
        }
    }
}

/// A binary operator's result for one pair of operands of which at least
/// one is a histogram: `(float, histogram, keep)`, or `None` when the
/// operator does not apply to these types (a note says so).
pub(crate) fn hist_elem(
    op: BinaryOp,
    lf: f64,
    rf: f64,
    lh: Option<&FloatHistogram>,
    rh: Option<&FloatHistogram>,
    notes: &mut Vec<Note>,
) -> Option<(f64, Option<Box<FloatHistogram>>, bool)> {
    let scaled = |h: &FloatHistogram, f: &dyn Fn(&mut FloatHistogram)| {
        let mut h = h.clone();
        f(&mut h);
        h.compact(0);
        Some((0.0, Some(Box::new(h)), true))
    };
    match (lh, rh) {
        (None, Some(h)) if op == BinaryOp::Mul => scaled(h, &|h| h.mul(lf)),
        (Some(h), None) if op == BinaryOp::Mul => scaled(h, &|h| h.mul(rf)),
        (Some(h), None) if op == BinaryOp::Div => scaled(h, &|h| h.div(rf)),
        (Some(h), None) if matches!(op, BinaryOp::TrimUpper | BinaryOp::TrimLower) => {
            let mut h = h.clone();
            trim_buckets(&mut h, rf, op == BinaryOp::TrimUpper);
            Some((0.0, Some(Box::new(h)), true))
        }
        (Some(l), Some(r)) if matches!(op, BinaryOp::Add | BinaryOp::Sub) => {
            let mut res = l.clone();
            let sub = op == BinaryOp::Sub;
            let combined = if sub { res.sub(r) } else { res.add(r) };
            match combined {
                Err(_) => {
                    notes.push(Note::Warn(format!(
                        "incompatible bucket layout encountered for binary operator {}",
                        op.as_str()
                    )));
                    None
                }
                Ok(info) => {
                    let what = if sub { "subtraction" } else { "addition" };
                    if info.counter_reset_collision {
                        notes.push(Note::Warn(format!(
                            "conflicting counter resets during histogram {what}"
                        )));
                    }
                    if info.nhcb_bounds_reconciled {
                        notes.push(Note::Info(format!(
                            "mismatched custom buckets were reconciled during {what}"
                        )));
                    }
                    if sub {
                        res.counter_reset_hint = CounterResetHint::Gauge;
                    }
                    res.compact(0);
                    Some((0.0, Some(Box::new(res)), true))
                }
            }
        }
        (Some(l), Some(r)) if matches!(op, BinaryOp::Eql | BinaryOp::Neq) => {
            let eq = l.equals(r);
            Some((0.0, Some(Box::new(l.clone())), eq == (op == BinaryOp::Eql)))
        }
        _ => {
            let kind = |h: Option<&FloatHistogram>| if h.is_some() { "histogram" } else { "float" };
            notes.push(Note::Info(format!(
                "incompatible sample types encountered for binary operator {}: {} {} {}",
                go_quote(op.as_str()),
                kind(lh),
                op.as_str(),
                kind(rh)
            )));
            None
        }
    }
}

/// A range function's result over a window with histograms: `None` to
/// compute it over the window's floats as usual; `Some(None)` for no
/// output; `Some(Some((float, histogram)))` the result.
type RangeOut = Option<Option<(f64, Option<FloatHistogram>)>>;

impl Evaluator<'_> {
    /// A range function over a window holding native histograms
    /// (`hpoints`, non-empty) and maybe floats (`points`).
    pub(crate) fn range_histograms(
        &mut self,
        func: RangeFn,
        labels: &Labels,
        points: &[(i64, f64)],
        hpoints: Vec<(i64, FloatHistogram)>,
        window: (i64, i64, i64),
        marg: &Expr,
    ) -> RangeOut {
        let pos = marg.span().0;
        let name = go_quote(labels.metric_name());
        let mixed = !points.is_empty();
        let newest_float = points.last().map(|p| p.0);
        let oldest_float = points.first().map(|p| p.0);
        match func {
            RangeFn::Rate | RangeFn::Increase | RangeFn::Delta | RangeFn::Sum | RangeFn::Avg
                if mixed =>
            {
                self.warn(
                    format!("encountered a mix of histograms and floats for metric name {name}"),
                    pos,
                );
                Some(None)
            }
            RangeFn::Rate | RangeFn::Increase | RangeFn::Delta => Some(
                self.histogram_rate(func, &name, &hpoints, window, pos)
                    .map(|h| (0.0, Some(h))),
            ),
            RangeFn::Sum | RangeFn::Avg => {
                let avg = func == RangeFn::Avg;
                let mut it = hpoints.into_iter();
                let (_, first) = it.next()?;
                let hint = |h: &FloatHistogram| {
                    (
                        h.counter_reset_hint == CounterResetHint::Reset,
                        h.counter_reset_hint == CounterResetHint::NotReset,
                    )
                };
                let (mut reset, mut not_reset) = hint(&first);
                let mut acc = HistAcc::new(first);
                for (_, h) in it {
                    let (r, n) = hint(&h);
                    reset |= r;
                    not_reset |= n;
                    let r = if avg { acc.add_avg(&h) } else { acc.add(&h) };
                    if !self.combined(r, "aggregation", &name, pos) {
                        return Some(None);
                    }
                }
                if reset && not_reset {
                    self.warn(
                        "conflicting counter resets during histogram aggregation".into(),
                        pos,
                    );
                }
                let v = if avg { acc.mean() } else { acc.sum() };
                Some(Some((0.0, Some(v))))
            }
            RangeFn::Count => Some(Some(((points.len() + hpoints.len()) as f64, None))),
            RangeFn::Changes | RangeFn::Resets => Some(Some((
                changes_or_resets(func == RangeFn::Resets, points, &hpoints),
                None,
            ))),
            RangeFn::Present => Some(Some((1.0, None))),
            RangeFn::Last | RangeFn::TsOfLast => {
                let (ht, h) = hpoints.into_iter().last()?;
                if newest_float.is_some_and(|ft| ft > ht) {
                    return None;
                }
                Some(Some(match func {
                    RangeFn::Last => (0.0, Some(h)),
                    _ => (ht as f64 / 1000.0, None),
                }))
            }
            RangeFn::First | RangeFn::TsOfFirst => {
                let (ht, h) = hpoints.into_iter().next()?;
                if oldest_float.is_some_and(|ft| ft < ht) {
                    return None;
                }
                Some(Some(match func {
                    RangeFn::First => (0.0, Some(h)),
                    _ => (ht as f64 / 1000.0, None),
                }))
            }
            RangeFn::Irate | RangeFn::Idelta => {
                self.instant_histogram(func == RangeFn::Irate, &name, points, &hpoints, pos)
            }
            _ if !mixed => Some(None),
            _ => {
                self.info(
                    format!("ignored histograms in a range containing both floats and histograms for metric name {name}"),
                    pos,
                );
                None
            }
        }
    }

    /// `irate`/`idelta` with histograms in the window: from its last two
    /// samples, `None` (the float path) when both are floats.
    fn instant_histogram(
        &mut self,
        is_rate: bool,
        name: &str,
        points: &[(i64, f64)],
        hpoints: &[(i64, FloatHistogram)],
        pos: usize,
    ) -> RangeOut {
        let mut last: Vec<(i64, Option<&FloatHistogram>)> = points
            .iter()
            .rev()
            .take(2)
            .map(|p| (p.0, None))
            .chain(hpoints.iter().rev().take(2).map(|p| (p.0, Some(&p.1))))
            .collect();
        last.sort_by_key(|p| p.0);
        let [.., (t0, a), (t1, b)] = last.as_slice() else {
            return Some(None);
        };
        let dt = t1 - t0;
        if dt == 0 {
            return Some(None);
        }
        let (a, b) = match (a, b) {
            (None, None) => return None,
            (Some(a), Some(b)) => (*a, *b),
            _ => {
                self.warn(
                    format!("encountered a mix of histograms and floats for metric name {name}"),
                    pos,
                );
                return Some(None);
            }
        };
        let gauge = |h: &FloatHistogram| h.counter_reset_hint == CounterResetHint::Gauge;
        if is_rate && (gauge(a) || gauge(b)) {
            self.warn(
                format!("this native histogram metric is not a counter: {name}"),
                pos,
            );
        }
        if !(is_rate || gauge(a) && gauge(b)) {
            self.warn(
                format!("this native histogram metric is not a gauge: {name}"),
                pos,
            );
        }
        let mut h = b.clone();
        if (!is_rate || !b.detect_reset(a)) && !self.combined(h.sub(a), "subtraction", name, pos) {
            return Some(None);
        }
        h.counter_reset_hint = CounterResetHint::Gauge;
        h.compact(0);
        if is_rate {
            h.div(dt as f64 / 1000.0);
        }
        Some(Some((0.0, Some(h))))
    }

    /// `rate`, `increase` or `delta` over histogram samples: the last minus
    /// the first (counter resets added back for `rate`/`increase`), in the
    /// lowest schema of the window, extrapolated as for floats by count.
    fn histogram_rate(
        &mut self,
        func: RangeFn,
        name: &str,
        pts: &[(i64, FloatHistogram)],
        (range_start, range_end, range_ms): (i64, i64, i64),
        pos: usize,
    ) -> Option<FloatHistogram> {
        let counter = func != RangeFn::Delta;
        let (first_t, first) = pts.first()?;
        let (last_t, last) = pts.last()?;
        if pts.len() < 2 {
            return None;
        }
        let not_counter = format!("this native histogram metric is not a counter: {name}");
        let mixed_layout = format!("vector contains a mix of histograms with exponential and custom buckets schemas for metric name {name}");
        if counter
            && (first.counter_reset_hint == CounterResetHint::Gauge
                || last.counter_reset_hint == CounterResetHint::Gauge)
        {
            self.warn(not_counter.clone(), pos);
        }
        let mut prev = first.clone();
        if counter {
            if let Some((_, second)) = pts.get(1) {
                if second.detect_reset(first) {
                    prev = FloatHistogram {
                        schema: second.schema,
                        custom_values: second.custom_values.clone(),
                        ..FloatHistogram::default()
                    };
                }
            }
        }
        let custom = prev.uses_custom_buckets();
        if last.uses_custom_buckets() != custom {
            self.warn(mixed_layout, pos);
            return None;
        }
        let mut min_schema = last.schema.min(prev.schema);
        for (_, h) in pts.iter().take(pts.len() - 1).skip(1) {
            if !counter {
                continue;
            }
            if h.counter_reset_hint == CounterResetHint::Gauge {
                self.warn(not_counter.clone(), pos);
            }
            min_schema = min_schema.min(h.schema);
            if h.uses_custom_buckets() != custom {
                self.warn(mixed_layout, pos);
                return None;
            }
        }
        let mut h = last.clone();
        if !h.uses_custom_buckets() && h.schema > min_schema {
            h.reduce_resolution(min_schema).ok()?;
        }
        if !self.combined(h.sub(&prev), "subtraction", name, pos) {
            return None;
        }
        if counter {
            let mut prev = &prev;
            for (_, cur) in pts.iter().skip(1) {
                if cur.detect_reset(prev) && !self.combined(h.add(prev), "addition", name, pos) {
                    return None;
                }
                prev = cur;
            }
        } else if first.counter_reset_hint != CounterResetHint::Gauge
            || last.counter_reset_hint != CounterResetHint::Gauge
        {
            self.warn(
                format!("this native histogram metric is not a gauge: {name}"),
                pos,
            );
        }
        h.counter_reset_hint = CounterResetHint::Gauge;
        h.compact(0);
        let factor = extrapolation_factor(
            (*first_t, *last_t, pts.len()),
            first.count,
            h.count,
            (range_start, range_end, range_ms),
            counter,
            func == RangeFn::Rate,
        );
        h.mul(factor);
        Some(h)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;
    use crate::model::histogram::notation::parse_histogram;
    use crate::promql::parser::parse;
    use crate::tsdb::Head;

    fn h(s: &str) -> FloatHistogram {
        parse_histogram(s).expect("notation").histogram
    }

    fn same(a: &FloatHistogram, b: &FloatHistogram) -> bool {
        let mut a = a.clone();
        let mut b = b.clone();
        a.compact(0);
        b.compact(0);
        a.equals(&b)
    }

    #[test]
    fn operators_on_histograms() {
        let a = h("{{schema:0 count:4 sum:6 buckets:[1 2 1]}}");
        let b = h("{{schema:0 count:2 sum:2 buckets:[1 1]}}");
        let mut notes = Vec::new();
        let (_, r, keep) =
            hist_elem(BinaryOp::Mul, 0.0, 2.0, Some(&a), None, &mut notes).expect("h * 2");
        assert!(keep);
        assert!(same(
            &r.expect("histogram"),
            &h("{{schema:0 count:8 sum:12 buckets:[2 4 2]}}")
        ));
        let (_, r, _) =
            hist_elem(BinaryOp::Mul, 2.0, 0.0, None, Some(&a), &mut notes).expect("2 * h");
        assert!(same(
            &r.expect("histogram"),
            &h("{{schema:0 count:8 sum:12 buckets:[2 4 2]}}")
        ));
        let (_, r, _) =
            hist_elem(BinaryOp::Sub, 0.0, 0.0, Some(&a), Some(&b), &mut notes).expect("a - b");
        let r = r.expect("histogram");
        assert_eq!(r.counter_reset_hint, CounterResetHint::Gauge);
        assert!(same(&r, &h("{{schema:0 count:2 sum:4 buckets:[0 1 1]}}")));
        let (_, _, keep) =
            hist_elem(BinaryOp::Eql, 0.0, 0.0, Some(&a), Some(&a), &mut notes).expect("a == a");
        assert!(keep);
        assert!(notes.is_empty());
        // A float added to a histogram: dropped with Prometheus' info.
        assert!(hist_elem(BinaryOp::Add, 1.0, 0.0, None, Some(&a), &mut notes).is_none());
        assert!(matches!(
            notes.as_slice(),
            [Note::Info(t)] if t == "incompatible sample types encountered for binary operator \"+\": float + histogram"
        ));
        // Exponential and custom buckets cannot be added.
        let c = h("{{schema:-53 count:1 sum:1 custom_values:[1] buckets:[1]}}");
        notes.clear();
        assert!(hist_elem(BinaryOp::Add, 0.0, 0.0, Some(&a), Some(&c), &mut notes).is_none());
        assert!(matches!(
            notes.as_slice(),
            [Note::Warn(t)] if t == "incompatible bucket layout encountered for binary operator +"
        ));
    }

    fn evaluator(head: &Head) -> Evaluator<'_> {
        Evaluator::new(
            head,
            None,
            0,
            0,
            0,
            300_000,
            1000,
            Instant::now() + std::time::Duration::from_secs(10),
        )
    }

    #[test]
    fn rate_of_histograms_adds_counter_resets_back() {
        let head = Head::default();
        let mut ev = evaluator(&head);
        let marg = parse("x[3m]").expect("parse");
        let labels = Labels::from_pairs([("__name__", "x")]);
        // 0, 60s, 120s: counts 2, 4, then a reset to 1.
        let pts = vec![
            (0, h("{{count:2 sum:2 buckets:[2]}}")),
            (60_000, h("{{count:4 sum:4 buckets:[4]}}")),
            (120_000, h("{{count:1 sum:1 buckets:[1]}}")),
        ];
        let out = ev
            .range_histograms(
                RangeFn::Increase,
                &labels,
                &[],
                pts.clone(),
                (-60_000, 120_000, 180_000),
                &marg,
            )
            .flatten()
            .expect("increase");
        let got = out.1.expect("histogram");
        // Raw increase 1 - 2 + 4 = 3 over 120s sampled; the window starts
        // 60s before the first sample (under 1.1 average intervals, and
        // the zero point 2/3 * 120s = 80s is further), so extrapolated by
        // 60s: factor (120 + 60) / 120.
        let want = 3.0 * 180.0 / 120.0;
        assert!((got.count - want).abs() < 1e-9, "{}", got.count);
        assert_eq!(got.counter_reset_hint, CounterResetHint::Gauge);
        // Floats in the same window: a warning and no result.
        let mixed = ev.range_histograms(
            RangeFn::Rate,
            &labels,
            &[(30_000, 1.0)],
            pts,
            (-60_000, 120_000, 180_000),
            &marg,
        );
        assert!(matches!(mixed, Some(None)));
        assert_eq!(
            ev.warnings,
            vec![
                "PromQL warning: encountered a mix of histograms and floats for metric name \"x\""
            ]
        );
    }
}
