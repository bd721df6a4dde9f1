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

/// One group of a `sum`/`avg` over histogram samples.
struct HistGroup {
    key: u64,
    labels: Labels,
    drop_name: bool,
    value: FloatHistogram,
    count: f64,
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
                    value: *h,
                    count: 1.0,
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
            g.count += 1.0;
            g.reset_seen |= reset;
            g.not_reset_seen |= not_reset;
            match g.value.add(&h) {
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
        let avg = a.op == AggregateOp::Avg;
        let mut out = Vec::with_capacity(groups.len());
        for mut g in groups {
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
            if avg {
                g.value.div(g.count);
            }
            g.value.compact(0);
            out.push((
                g.key,
                Some(Sample {
                    labels: g.labels.into(),
                    t: 0,
                    value: 0.0,
                    drop_name: g.drop_name,
                    h: Some(Box::new(g.value)),
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
                let n = hpoints.len() as f64;
                let mut it = hpoints.into_iter();
                let (_, mut acc) = it.next()?;
                for (_, h) in it {
                    if acc.add(&h).is_err() {
                        self.warn(
                            format!("vector contains a mix of histograms with exponential and custom buckets schemas for metric name {name}"),
                            pos,
                        );
                        return Some(None);
                    }
                }
                if func == RangeFn::Avg {
                    acc.div(n);
                }
                acc.compact(0);
                Some(Some((0.0, Some(acc))))
            }
            RangeFn::Count => Some(Some(((points.len() + hpoints.len()) as f64, None))),
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
        if !is_rate || !b.detect_reset(a) {
            match h.sub(a) {
                Err(_) => {
                    self.warn(
                        format!("vector contains a mix of histograms with exponential and custom buckets schemas for metric name {name}"),
                        pos,
                    );
                    return Some(None);
                }
                Ok(info) if info.nhcb_bounds_reconciled => self.info(
                    "mismatched custom buckets were reconciled during subtraction".into(),
                    pos,
                ),
                Ok(_) => {}
            }
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
        match h.sub(&prev) {
            Err(_) => {
                self.warn(mixed_layout, pos);
                return None;
            }
            Ok(info) if info.nhcb_bounds_reconciled => self.info(
                "mismatched custom buckets were reconciled during subtraction".into(),
                pos,
            ),
            Ok(_) => {}
        }
        if counter {
            let mut prev = &prev;
            for (_, cur) in pts.iter().skip(1) {
                if cur.detect_reset(prev) {
                    match h.add(prev) {
                        Err(_) => {
                            self.warn(mixed_layout, pos);
                            return None;
                        }
                        Ok(info) if info.nhcb_bounds_reconciled => self.info(
                            "mismatched custom buckets were reconciled during addition".into(),
                            pos,
                        ),
                        Ok(_) => {}
                    }
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
