//! Aggregation operators (`sum`, `avg`, ..., `topk`, `limit_ratio`) with
//! `by` / `without` grouping, following Prometheus' float arithmetic
//! (Kahan-compensated sums, incremental mean on overflow, Welford variance).

use std::collections::HashMap;

use super::eval::{Evaluator, StepValue};
use super::value::{EvalError, EvalResult, Sample};
use crate::model::labels::METRIC_NAME;
use crate::model::Labels;
use crate::promql::parser::{AggregateExpr, AggregateOp};

/// Neumaier's variant of Kahan summation, as Prometheus' `kahanSumInc`
/// (shared with the native-histogram functions).
pub(crate) use crate::model::histogram::functions::kahan_inc;

/// Prometheus' `quantile`: linear interpolation between closest ranks.
pub(crate) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| a.total_cmp(b));
    // NaNs sort to the end with total_cmp, but Go sorts them first.
    let nan = values.iter().filter(|v| v.is_nan()).count();
    if nan > 0 {
        values.rotate_right(nan);
    }
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let w = rank - rank.floor();
    let lv = values.get(lower as usize).copied().unwrap_or(f64::NAN);
    let uv = values.get(upper as usize).copied().unwrap_or(f64::NAN);
    lv * (1.0 - w) + uv * w
}

/// Go's `strconv.FormatFloat(f, 'f', -1, 64)`.
pub(crate) fn format_float(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        let s = format!("{f}");
        s
    }
}

/// The running value of one group for the aggregations that fold their
/// inputs one by one (`sum`, `avg`, `count`, `group`, `min`, `max`,
/// `stddev`, `stdvar`), with Prometheus' float arithmetic: the result
/// depends on the order inputs are added in, as upstream.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Acc {
    value: f64,
    c: f64,
    mean: f64,
    count: f64,
    incremental: bool,
}

impl Acc {
    /// A group's state after its first input `f`.
    pub(crate) fn new(op: AggregateOp, f: f64) -> Acc {
        let mut a = Acc {
            value: f,
            c: 0.0,
            mean: f,
            count: 1.0,
            incremental: false,
        };
        match op {
            AggregateOp::Stddev | AggregateOp::Stdvar => {
                a.value = if f.is_nan() || f.is_infinite() {
                    f64::NAN
                } else {
                    0.0
                };
            }
            AggregateOp::Group => a.value = 1.0,
            _ => {}
        }
        a
    }

    /// Folds in the next input.
    pub(crate) fn add(&mut self, op: AggregateOp, f: f64) {
        match op {
            AggregateOp::Sum => (self.value, self.c) = kahan_inc(f, self.value, self.c),
            AggregateOp::Avg => {
                self.count += 1.0;
                avg_add(self, f);
            }
            AggregateOp::Count | AggregateOp::CountValues => self.count += 1.0,
            AggregateOp::Min if self.value > f || self.value.is_nan() => self.value = f,
            AggregateOp::Max if self.value < f || self.value.is_nan() => self.value = f,
            AggregateOp::Min | AggregateOp::Max => {}
            AggregateOp::Stddev | AggregateOp::Stdvar => {
                self.count += 1.0;
                let delta = f - self.mean;
                self.mean += delta / self.count;
                self.value += delta * (f - self.mean);
            }
            _ => {}
        }
    }

    /// The group's value once every input is in.
    pub(crate) fn result(&self, op: AggregateOp) -> f64 {
        match op {
            AggregateOp::Sum => self.value + self.c,
            AggregateOp::Avg => {
                if self.incremental {
                    self.mean + self.c
                } else {
                    (self.value + self.c) / self.count
                }
            }
            AggregateOp::Count | AggregateOp::CountValues => self.count,
            AggregateOp::Stdvar => self.value / self.count,
            AggregateOp::Stddev => (self.value / self.count).sqrt(),
            _ => self.value,
        }
    }

    /// Whether `op` is one of the folding aggregations [`Acc`] computes.
    pub(crate) fn folds(op: AggregateOp) -> bool {
        matches!(
            op,
            AggregateOp::Sum
                | AggregateOp::Avg
                | AggregateOp::Count
                | AggregateOp::Group
                | AggregateOp::Min
                | AggregateOp::Max
                | AggregateOp::Stddev
                | AggregateOp::Stdvar
        )
    }
}

struct Group {
    labels: Labels,
    drop_name: bool,
    acc: Acc,
    values: Vec<f64>,
    members: Vec<Sample>,
}

pub(crate) fn group_labels_of(l: &Labels, a: &AggregateExpr) -> Labels {
    group_labels(l, &a.grouping, a.without)
}

fn group_labels(l: &Labels, grouping: &[String], without: bool) -> Labels {
    let mut b = l.builder();
    if without {
        b.retain(|lab| lab.name != METRIC_NAME && !grouping.iter().any(|g| g == &lab.name));
    } else {
        b.retain(|lab| grouping.iter().any(|g| g == &lab.name));
    }
    b.build()
}

/// The raw bytes of a (parenthesized) string literal that is not UTF-8.
fn invalid_utf8_literal(e: &crate::promql::parser::Expr) -> Option<&[u8]> {
    use crate::promql::parser::Expr;
    match e {
        Expr::StringLiteral(s) => s.invalid_utf8.as_deref(),
        Expr::Paren(p) => invalid_utf8_literal(&p.expr),
        _ => None,
    }
}

impl Evaluator<'_> {
    pub(crate) fn aggregate(&mut self, a: &AggregateExpr, t: i64) -> EvalResult<StepValue> {
        let mut param_f = f64::NAN;
        let mut param_s = String::new();
        if let Some(p) = &a.param {
            match self.eval(p, t)? {
                StepValue::Scalar(f) => param_f = f,
                StepValue::Str(s) => param_s = s,
                other => {
                    return Err(EvalError::exec(format!(
                        "unexpected aggregation parameter type {}",
                        other.type_name()
                    )))
                }
            }
        }
        let input = match self.eval(&a.expr, t)? {
            StepValue::Vector(v) => v,
            other => {
                return Err(EvalError::exec(format!(
                    "unexpected value type {} for aggregation",
                    other.type_name()
                )))
            }
        };
        let op = a.op;
        let pos = a.param.as_ref().map(|p| p.span().0).unwrap_or(a.span.0);
        match op {
            AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Limitk if param_f.is_nan() => {
                return Err(EvalError::exec("Parameter value is NaN"));
            }
            AggregateOp::LimitRatio => {
                if param_f.is_nan() {
                    return Err(EvalError::exec("Ratio value is NaN"));
                }
                if !(-1.0..=1.0).contains(&param_f) {
                    let capped = param_f.clamp(-1.0, 1.0);
                    self.warn(
                        format!(
                            "ratio value should be between -1 and 1, got {}, capping to {}",
                            format_float(param_f),
                            format_float(capped)
                        ),
                        pos,
                    );
                    param_f = capped;
                }
            }
            AggregateOp::Quantile if !(0.0..=1.0).contains(&param_f) => {
                self.warn(
                    format!(
                        "quantile value should be between 0 and 1, got {}",
                        format_float(param_f)
                    ),
                    pos,
                );
            }
            AggregateOp::CountValues => {
                // Prometheus' UTF8Validation: non-empty and valid UTF-8. A
                // literal that byte escapes made invalid UTF-8 is printed
                // with its raw bytes, as Go does.
                let invalid = a.param.as_ref().and_then(invalid_utf8_literal);
                if param_s.is_empty() || invalid.is_some() {
                    let shown = match invalid {
                        Some(b) => crate::model::gofmt::go_quote_bytes(b),
                        None => crate::model::gofmt::go_quote(&param_s),
                    };
                    return Err(EvalError::exec(format!("invalid label name {shown}")));
                }
            }
            _ => {}
        }
        // Native histograms: summed and averaged apart from the floats,
        // kept by `count`, `group`, `limitk` and `limit_ratio`, ignored by
        // the others.
        let mut input = input;
        let mut hist_out = Vec::new();
        if input.iter().any(|s| s.h.is_some()) {
            match op {
                AggregateOp::Sum | AggregateOp::Avg => {
                    let (h, f): (Vec<Sample>, Vec<Sample>) =
                        input.into_iter().partition(|s| s.h.is_some());
                    input = f;
                    hist_out = self.aggregate_histograms(a, h);
                }
                AggregateOp::Count
                | AggregateOp::Group
                | AggregateOp::CountValues
                | AggregateOp::Limitk
                | AggregateOp::LimitRatio => {}
                _ => {
                    input.retain(|s| s.h.is_none());
                    self.histogram_ignored(a);
                }
            }
        }
        let mut order: Vec<u64> = Vec::new();
        let mut groups: HashMap<u64, Group, foldhash::fast::RandomState> = HashMap::default();
        let by_name = !a.without && a.grouping.iter().any(|g| g == METRIC_NAME);
        for s in input {
            self.tick()?;
            let key =
                self.cached_signature(super::eval::key(a), &s.labels, !a.without, &a.grouping);
            // count_values groups by its output label set: the value may
            // overwrite a grouping label, merging groups (as upstream).
            let cv_labels = if op == AggregateOp::CountValues {
                let v = match &s.h {
                    Some(h) => super::native::go_string(h),
                    None => format_float(s.value),
                };
                let mut b = group_labels(&s.labels, &a.grouping, a.without).builder();
                b.set(param_s.clone(), v);
                Some(b.build())
            } else {
                None
            };
            let key = match &cv_labels {
                Some(l) => l.hash64(),
                None => key,
            };
            let f = s.value;
            match groups.get_mut(&key) {
                None => {
                    let labels = match cv_labels {
                        Some(l) => l,
                        None => group_labels(&s.labels, &a.grouping, a.without),
                    };
                    let drop_name = by_name && s.drop_name;
                    let mut g = Group {
                        labels,
                        drop_name,
                        acc: Acc::new(op, f),
                        values: Vec::new(),
                        members: Vec::new(),
                    };
                    if op == AggregateOp::Quantile {
                        g.values.push(f);
                    }
                    let k_ok = match op {
                        AggregateOp::Topk | AggregateOp::Bottomk | AggregateOp::Limitk => {
                            param_f >= 1.0
                        }
                        AggregateOp::LimitRatio => ratio_keeps(param_f, &s.labels),
                        _ => true,
                    };
                    if k_ok
                        && matches!(
                            op,
                            AggregateOp::Topk
                                | AggregateOp::Bottomk
                                | AggregateOp::Limitk
                                | AggregateOp::LimitRatio
                        )
                    {
                        g.members.push(s);
                    }
                    order.push(key);
                    groups.insert(key, g);
                }
                Some(g) => {
                    if by_name && s.drop_name {
                        g.drop_name = true;
                    }
                    match op {
                        AggregateOp::Quantile => g.values.push(f),
                        AggregateOp::Topk | AggregateOp::Bottomk => {
                            let k = param_f.min(usize::MAX as f64) as usize;
                            push_k(&mut g.members, s, k, op == AggregateOp::Topk);
                        }
                        AggregateOp::Limitk => {
                            if (g.members.len() as f64) < param_f {
                                g.members.push(s);
                            }
                        }
                        AggregateOp::LimitRatio => {
                            if ratio_keeps(param_f, &s.labels) {
                                g.members.push(s);
                            }
                        }
                        _ => g.acc.add(op, f),
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(order.len() + hist_out.len());
        for (key, h) in hist_out {
            if groups.remove(&key).is_some() {
                self.warn(
                    "encountered a mix of histograms and floats for aggregation".into(),
                    a.expr.span().0,
                );
                continue;
            }
            if let Some(mut h) = h {
                h.t = t;
                out.push(h);
            }
        }
        for key in order {
            let Some(mut g) = groups.remove(&key) else {
                continue;
            };
            let value = match op {
                AggregateOp::Quantile => quantile(param_f, &mut g.values),
                AggregateOp::Topk | AggregateOp::Bottomk => {
                    let top = op == AggregateOp::Topk;
                    g.members.sort_by(|a, b| {
                        let o = cmp_nan_low(a.value, b.value);
                        if top {
                            o.reverse()
                        } else {
                            o
                        }
                    });
                    if !top {
                        // NaNs still go last for bottomk.
                        let (mut nums, nans): (Vec<Sample>, Vec<Sample>) =
                            g.members.drain(..).partition(|s| !s.value.is_nan());
                        nums.extend(nans);
                        g.members = nums;
                    }
                    for mut s in g.members {
                        s.t = t;
                        out.push(s);
                    }
                    continue;
                }
                AggregateOp::Limitk | AggregateOp::LimitRatio => {
                    out.extend(g.members);
                    continue;
                }
                _ => g.acc.result(op),
            };
            out.push(Sample {
                labels: g.labels.into(),
                t,
                value,
                drop_name: g.drop_name,
                h: None,
            });
        }
        Ok(StepValue::Vector(out))
    }
}

/// Ordering with NaN below every number (Prometheus' heap order).
fn cmp_nan_low(a: f64, b: f64) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Equal,
        (true, false) => Less,
        (false, true) => Greater,
        _ => a.partial_cmp(&b).unwrap_or(Equal),
    }
}

/// Keeps the `k` best samples (largest for topk, smallest for bottomk;
/// NaN always loses).
fn push_k(members: &mut Vec<Sample>, s: Sample, k: usize, top: bool) {
    if members.len() < k {
        members.push(s);
        return;
    }
    // Find the worst member.
    let worse = |a: f64, b: f64| -> bool {
        // true when a is worse than b
        if a.is_nan() {
            return !b.is_nan();
        }
        if b.is_nan() {
            return false;
        }
        if top {
            a < b
        } else {
            a > b
        }
    };
    let mut wi = None;
    for (i, m) in members.iter().enumerate() {
        match wi {
            None => wi = Some(i),
            Some(j) => {
                if let Some(w) = members.get(j) {
                    if worse(m.value, w.value) {
                        wi = Some(i);
                    }
                }
            }
        }
    }
    if let Some(j) = wi {
        if let Some(w) = members.get_mut(j) {
            if worse(w.value, s.value) {
                *w = s;
            }
        }
    }
}

fn avg_add(g: &mut Acc, f: f64) {
    if !g.incremental {
        let (nv, nc) = kahan_inc(f, g.value, g.c);
        if !nv.is_infinite() {
            g.value = nv;
            g.c = nc;
            return;
        }
        g.incremental = true;
        g.mean = g.value / (g.count - 1.0);
        g.c /= g.count - 1.0;
    }
    if g.mean.is_infinite() {
        if f.is_infinite() && (g.mean > 0.0) == (f > 0.0) {
            return;
        }
        if !f.is_infinite() && !f.is_nan() {
            return;
        }
    }
    let cur = g.mean + g.c;
    let (m, c) = kahan_inc(f / g.count - cur / g.count, g.mean, g.c);
    g.mean = m;
    g.c = c;
}

/// Whether `limit_ratio` keeps a series: its label hash, scaled to [0, 1],
/// falls below the ratio (or, for negative ratios, in the top part).
fn ratio_keeps(ratio: f64, l: &Labels) -> bool {
    let off = l.hash64() as f64 / u64::MAX as f64;
    (ratio >= 0.0 && off < ratio) || (ratio < 0.0 && off >= 1.0 + ratio)
}
