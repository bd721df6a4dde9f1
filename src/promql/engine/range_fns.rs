//! Functions over range vectors: `rate` and friends with Prometheus'
//! extrapolation, `*_over_time`, regression and smoothing.

use super::aggregate::{format_float, kahan_inc, quantile};
use super::eval::{Evaluator, StepValue};
use super::value::{EvalError, EvalResult, Sample, Series};
use crate::promql::parser::{Call, Expr};
use std::sync::Arc;

/// `rate`, `increase` and `delta` as Prometheus computes them: the change
/// over the samples in the window, extrapolated towards the window edges
/// (at most half an average sample interval, never below a counter's zero).
fn extrapolated_rate(
    pts: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    range_ms: i64,
    counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let resets = pts
        .windows(2)
        .filter(|w| counter && w[1].1 < w[0].1)
        .map(|w| w[0].1);
    extrapolate(
        (pts.first()?, pts.last()?, pts.len()),
        resets,
        (range_start, range_end, range_ms),
        counter,
        is_rate,
    )
}

/// The body of [`extrapolated_rate`] given the window's first and last
/// points, its length and, for counters, the value before each reset in
/// window order (added one by one, so the float result does not depend on
/// how the caller found them).
pub(crate) fn extrapolate(
    (first, last, len): (&(i64, f64), &(i64, f64), usize),
    resets: impl Iterator<Item = f64>,
    (range_start, range_end, range_ms): (i64, i64, i64),
    counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if len < 2 {
        return None;
    }
    let mut result = last.1 - first.1;
    if counter {
        for prev in resets {
            result += prev;
        }
    }
    Some(
        result
            * extrapolation_factor(
                (first.0, last.0, len),
                first.1,
                result,
                (range_start, range_end, range_ms),
                counter,
                is_rate,
            ),
    )
}

/// The factor `rate`/`increase`/`delta` scale a window's raw increase
/// `result` by: extrapolated towards the window's edges (at most half an
/// average sample interval beyond the samples, and for counters not below
/// zero, judged by `first`, the first sample's value or count), per second
/// for `rate`. Shared by floats and native histograms (their count).
pub(crate) fn extrapolation_factor(
    (first_t, last_t, len): (i64, i64, usize),
    first: f64,
    result: f64,
    (range_start, range_end, range_ms): (i64, i64, i64),
    counter: bool,
    is_rate: bool,
) -> f64 {
    let n1 = (len - 1) as f64;
    let mut to_start = (first_t - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last_t) as f64 / 1000.0;
    let sampled = (last_t - first_t) as f64 / 1000.0;
    let avg = sampled / n1;
    let threshold = avg * 1.1;
    let mut interval = sampled;
    if to_start >= threshold {
        to_start = avg / 2.0;
    }
    if counter && result > 0.0 && first >= 0.0 {
        let to_zero = sampled * (first / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    interval += to_start;
    if to_end >= threshold {
        to_end = avg / 2.0;
    }
    interval += to_end;
    let mut factor = interval / sampled;
    if is_rate {
        factor /= range_ms as f64 / 1000.0;
    }
    factor
}

/// `irate` / `idelta`: the last two samples only.
fn instant_value(pts: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let a = pts.get(pts.len() - 2)?;
    let b = pts.last()?;
    let mut v = if is_rate && b.1 < a.1 { b.1 } else { b.1 - a.1 };
    let dt = b.0 - a.0;
    if dt == 0 {
        return None;
    }
    if is_rate {
        v /= dt as f64 / 1000.0;
    }
    Some(v)
}

/// Least-squares fit with Kahan-compensated sums, x in seconds relative to
/// `intercept_t`.
pub(crate) fn linear_regression(pts: &[(i64, f64)], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sx, mut cx, mut sy, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sxy, mut cxy, mut sx2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = pts.first().map(|p| p.1).unwrap_or(f64::NAN);
    let mut const_y = true;
    for (i, &(t, v)) in pts.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1e3;
        (sx, cx) = kahan_inc(x, sx, cx);
        (sy, cy) = kahan_inc(v, sy, cy);
        (sxy, cxy) = kahan_inc(x * v, sxy, cxy);
        (sx2, cx2) = kahan_inc(x * x, sx2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    sx += cx;
    sy += cy;
    sxy += cxy;
    sx2 += cx2;
    let cov = sxy - sx * sy / n;
    let var = sx2 - sx * sx / n;
    let slope = cov / var;
    (slope, sy / n - slope * sx / n)
}

fn avg_over_time(pts: &[(i64, f64)]) -> f64 {
    let (mut sum, mut mean, mut count, mut c) = (0.0, 0.0, 0.0, 0.0);
    let mut incremental = false;
    for &(_, f) in pts {
        count += 1.0;
        if !incremental {
            let (ns, nc) = kahan_inc(f, sum, c);
            if count == 1.0 || !ns.is_infinite() {
                sum = ns;
                c = nc;
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        if mean.is_infinite() {
            if f.is_infinite() && (mean > 0.0) == (f > 0.0) {
                continue;
            }
            if !f.is_infinite() && !f.is_nan() {
                continue;
            }
        }
        let cur = mean + c;
        (mean, c) = kahan_inc(f / count - cur / count, mean, c);
    }
    if incremental {
        mean + c
    } else {
        (sum + c) / count
    }
}

fn variance_over_time(pts: &[(i64, f64)]) -> f64 {
    let (mut count, mut mean, mut cm, mut aux, mut ca) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(_, f) in pts {
        count += 1.0;
        let delta = f - (mean + cm);
        (mean, cm) = kahan_inc(delta / count, mean, cm);
        (aux, ca) = kahan_inc(delta * (f - (mean + cm)), aux, ca);
    }
    (aux + ca) / count
}

fn double_exp_smoothing(pts: &[(i64, f64)], sf: f64, tf: f64) -> Option<f64> {
    if pts.len() < 2 {
        return None;
    }
    let v = |i: usize| pts.get(i).map(|p| p.1).unwrap_or(f64::NAN);
    let (mut s0, mut s1) = (0.0, v(0));
    let mut b = v(1) - v(0);
    for i in 1..pts.len() {
        let x = sf * v(i);
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        s0 = s1;
        s1 = x + y;
    }
    Some(s1)
}

/// The range-vector functions evaluated over a window of float samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RangeFn {
    Rate,
    Increase,
    Delta,
    Irate,
    Idelta,
    Changes,
    Resets,
    Deriv,
    PredictLinear,
    DoubleExpSmoothing,
    Avg,
    Sum,
    Count,
    Min,
    Max,
    TsOfMin,
    TsOfMax,
    Last,
    First,
    TsOfLast,
    TsOfFirst,
    Present,
    Quantile,
    Stddev,
    Stdvar,
    Mad,
}

impl RangeFn {
    pub(crate) fn from_name(name: &str) -> Option<RangeFn> {
        use RangeFn::*;
        Some(match name {
            "rate" => Rate,
            "increase" => Increase,
            "delta" => Delta,
            "irate" => Irate,
            "idelta" => Idelta,
            "changes" => Changes,
            "resets" => Resets,
            "deriv" => Deriv,
            "predict_linear" => PredictLinear,
            "double_exponential_smoothing" | "holt_winters" => DoubleExpSmoothing,
            "avg_over_time" => Avg,
            "sum_over_time" => Sum,
            "count_over_time" => Count,
            "min_over_time" => Min,
            "max_over_time" => Max,
            "ts_of_min_over_time" => TsOfMin,
            "ts_of_max_over_time" => TsOfMax,
            "last_over_time" => Last,
            "first_over_time" => First,
            "ts_of_last_over_time" => TsOfLast,
            "ts_of_first_over_time" => TsOfFirst,
            "present_over_time" => Present,
            "quantile_over_time" => Quantile,
            "stddev_over_time" => Stddev,
            "stdvar_over_time" => Stdvar,
            "mad_over_time" => Mad,
            _ => return None,
        })
    }

    /// Whether the result keeps the metric name.
    pub(crate) fn keeps_name(self) -> bool {
        matches!(self, RangeFn::Last | RangeFn::First)
    }

    /// Whether `rate`/`increase` note a metric name without a counter suffix.
    pub(crate) fn checks_counter_name(self) -> bool {
        matches!(self, RangeFn::Rate | RangeFn::Increase)
    }
}

/// One range function over the window `pts` (staleness markers removed,
/// non-empty) ending at evaluation time `t`: `(start, end, length)` of the
/// window in milliseconds, `(p0, p1)` the scalar parameters. `scratch` is
/// reused for the functions that sort.
pub(crate) fn window_value(
    func: RangeFn,
    pts: &[(i64, f64)],
    (rs, re, range): (i64, i64, i64),
    t: i64,
    (p0, p1): (f64, f64),
    scratch: &mut Vec<f64>,
) -> Option<f64> {
    use RangeFn::*;
    match func {
        Rate => extrapolated_rate(pts, rs, re, range, true, true),
        Increase => extrapolated_rate(pts, rs, re, range, true, false),
        Delta => extrapolated_rate(pts, rs, re, range, false, false),
        Irate => instant_value(pts, true),
        Idelta => instant_value(pts, false),
        Changes | Resets => {
            let mut n = 0.0;
            for w in pts.windows(2) {
                let (p, cur) = (w[0].1, w[1].1);
                let hit = if func == Changes {
                    cur != p && !(cur.is_nan() && p.is_nan())
                } else {
                    cur < p
                };
                if hit {
                    n += 1.0;
                }
            }
            Some(n)
        }
        Deriv => {
            if pts.len() < 2 {
                None
            } else {
                Some(linear_regression(pts, pts.first().map_or(0, |p| p.0)).0)
            }
        }
        PredictLinear => {
            if pts.len() < 2 {
                None
            } else {
                let (slope, icpt) = linear_regression(pts, t);
                Some(slope * p0 + icpt)
            }
        }
        DoubleExpSmoothing => double_exp_smoothing(pts, p0, p1),
        Avg => Some(avg_over_time(pts)),
        Sum => {
            let (mut sum, mut cc) = (0.0, 0.0);
            for p in pts {
                (sum, cc) = kahan_inc(p.1, sum, cc);
            }
            Some(sum + cc)
        }
        Count => Some(pts.len() as f64),
        Min | Max => {
            let mut acc = pts.first().map_or(f64::NAN, |p| p.1);
            for p in pts.iter().skip(1) {
                let better = if func == Min { p.1 < acc } else { p.1 > acc };
                if better || acc.is_nan() {
                    acc = p.1;
                }
            }
            Some(acc)
        }
        TsOfMin | TsOfMax => {
            let mut acc = pts.first().map_or(f64::NAN, |p| p.1);
            let mut ts = pts.first().map_or(0, |p| p.0);
            for p in pts.iter().skip(1) {
                let better = if func == TsOfMin {
                    p.1 <= acc
                } else {
                    p.1 >= acc
                };
                if better || acc.is_nan() {
                    acc = p.1;
                    ts = p.0;
                }
            }
            Some(ts as f64 / 1000.0)
        }
        Last => pts.last().map(|p| p.1),
        First => pts.first().map(|p| p.1),
        TsOfLast => pts.last().map(|p| p.0 as f64 / 1000.0),
        TsOfFirst => pts.first().map(|p| p.0 as f64 / 1000.0),
        Present => Some(1.0),
        Quantile => {
            scratch.clear();
            scratch.extend(pts.iter().map(|p| p.1));
            Some(quantile(p0, scratch))
        }
        Stddev => Some(variance_over_time(pts).sqrt()),
        Stdvar => Some(variance_over_time(pts)),
        Mad if pts.iter().any(|p| p.1.is_nan()) => Some(f64::NAN),
        Mad => {
            scratch.clear();
            scratch.extend(pts.iter().map(|p| p.1));
            let med = quantile(0.5, scratch);
            for v in scratch.iter_mut() {
                *v = (*v - med).abs();
            }
            Some(quantile(0.5, scratch))
        }
    }
}

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        e => e,
    }
}

const COUNTER_SUFFIXES: [&str; 4] = ["_total", "_sum", "_count", "_bucket"];

impl Evaluator<'_> {
    /// Evaluates a range-vector argument and returns it with its window
    /// `(start, end]` at `t` and the range length.
    fn matrix_arg(&mut self, e: &Expr, t: i64) -> EvalResult<(Vec<Series>, i64, i64, i64)> {
        match e {
            Expr::Paren(p) => self.matrix_arg(&p.expr, t),
            Expr::MatrixSelector(ms) => {
                let vs = &ms.selector;
                let off = self.duration(vs.offset, &vs.offset_expr);
                let range = self.duration(ms.range, &ms.range_expr);
                let end = self.at_time(vs.at).unwrap_or(t).saturating_sub(off);
                let m = self.matrix_selector(ms, t)?;
                Ok((m, end.saturating_sub(range), end, range))
            }
            Expr::SubqueryExpr(sq) => {
                let off = self.duration(sq.offset, &sq.offset_expr);
                let range = self.duration(sq.range, &sq.range_expr);
                let end = self.at_time(sq.at).unwrap_or(t).saturating_sub(off);
                let m = self.subquery(sq, t)?;
                Ok((m, end.saturating_sub(range), end, range))
            }
            other => match self.eval(other, t)? {
                StepValue::Matrix(m) => Ok((m, t, t, 0)),
                v => Err(EvalError::exec(format!(
                    "expected range vector argument, got {}",
                    v.type_name()
                ))),
            },
        }
    }

    /// Checks the scalar parameters of a range function as Prometheus
    /// does: an error for a bad smoothing or trend factor, a warning for a
    /// quantile outside [0, 1].
    pub(crate) fn check_range_params(
        &mut self,
        c: &Call,
        func: RangeFn,
        p0: f64,
        p1: f64,
    ) -> EvalResult<()> {
        match func {
            RangeFn::Quantile if !(0.0..=1.0).contains(&p0) => {
                self.warn(
                    format!(
                        "quantile value should be between 0 and 1, got {}",
                        format_float(p0)
                    ),
                    c.args.first().map(|a| a.span().0).unwrap_or(c.span.0),
                );
            }
            RangeFn::DoubleExpSmoothing => {
                if p0 <= 0.0 || p0 >= 1.0 || p0.is_nan() {
                    return Err(EvalError::exec(format!(
                        "invalid smoothing factor. Expected: 0 < sf < 1, got: {p0:.6}"
                    )));
                }
                if p1 <= 0.0 || p1 >= 1.0 || p1.is_nan() {
                    return Err(EvalError::exec(format!(
                        "invalid trend factor. Expected: 0 < tf < 1, got: {p1:.6}"
                    )));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `rate`/`increase` over a series whose name has no counter suffix:
    /// Prometheus' info annotation (once per name and query).
    pub(crate) fn note_counter_name(&mut self, labels: &crate::model::Labels, pos: usize) {
        let mn = labels.metric_name();
        if !mn.is_empty() && !COUNTER_SUFFIXES.iter().any(|x| mn.ends_with(x)) {
            self.info(
                format!(
                    "metric might not be a counter, name does not end in _total/_sum/_count/_bucket: {mn:?}"
                ),
                pos,
            );
        }
    }

    pub(crate) fn range_call(&mut self, c: &Call, t: i64) -> EvalResult<StepValue> {
        let name = c.func.name;
        let missing = || EvalError::exec(format!("missing argument to {name}"));
        let mi = usize::from(name == "quantile_over_time");
        let marg = c.args.get(mi).ok_or_else(missing)?;
        let mut params = Vec::new();
        for (i, a) in c.args.iter().enumerate() {
            if i != mi {
                params.push(self.scalar_arg(a, t)?);
            }
        }
        let p0 = params.first().copied().unwrap_or(f64::NAN);
        let p1 = params.get(1).copied().unwrap_or(f64::NAN);
        if let Expr::MatrixSelector(ms) = unwrap_parens(marg) {
            if ms.selector.anchored || ms.selector.smoothed {
                return Ok(StepValue::Vector(self.extended_range(ms, name, t)?));
            }
        }
        let (m, rs, re, range) = self.matrix_arg(marg, t)?;
        match name {
            "absent_over_time" => return Ok(StepValue::Vector(self.absent_over_time(marg, &m, t))),
            "integral" => return Err(EvalError::exec("unsupported: function integral")),
            _ => {}
        }
        let func = RangeFn::from_name(name)
            .ok_or_else(|| EvalError::exec(format!("unsupported: function {name}")))?;
        self.check_range_params(c, func, p0, p1)?;
        let keep_name = func.keeps_name();
        let mut out = Vec::with_capacity(m.len());
        for s in m {
            self.tick()?;
            let Series {
                labels,
                mut points,
                drop_name,
                hpoints,
            } = s;
            if !hpoints.is_empty() {
                let w = (rs, re, range);
                if let Some(v) = self.range_histograms(func, &labels, &points, hpoints, w, marg) {
                    if let Some((value, h)) = v {
                        out.push(Sample {
                            labels,
                            t,
                            value,
                            drop_name: if keep_name { drop_name } else { true },
                            h: h.map(Box::new),
                        });
                    }
                    continue;
                }
            }
            let pts = &points;
            if func.checks_counter_name()
                && self
                    .counter_checked
                    .insert(Arc::as_ptr(&labels) as usize, labels.clone())
                    .is_none()
            {
                self.note_counter_name(&labels, marg.span().0);
            }
            let v = window_value(
                func,
                pts,
                (rs, re, range),
                t,
                (p0, p1),
                &mut self.float_scratch,
            );
            points.clear();
            self.point_pool.push(points);
            if let Some(v) = v {
                out.push(Sample {
                    labels,
                    t,
                    value: v,
                    drop_name: if keep_name { drop_name } else { true },
                    h: None,
                });
            }
        }
        Ok(StepValue::Vector(out))
    }
}
