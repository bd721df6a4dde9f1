//! `histogram_quantile` and `histogram_fraction` over classic `le` buckets.
//! Native histograms are not stored by our head, so only the classic path
//! exists.

use std::collections::HashMap;

use super::aggregate::format_float;
use super::eval::{Evaluator, StepValue};
use super::value::{EvalError, EvalResult, Sample};
use crate::model::Labels;
use crate::promql::parser::{Call, Expr};

#[derive(Clone, Copy, Debug)]
struct Bucket {
    upper: f64,
    count: f64,
}

fn almost_equal(a: f64, b: f64, eps: f64) -> bool {
    if a == b {
        return true;
    }
    let min_normal = f64::MIN_POSITIVE;
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || (a.abs() + b.abs()) < min_normal {
        return diff < eps * min_normal;
    }
    diff / (a.abs() + b.abs()).min(f64::MAX) < eps
}

fn sort_coalesce(buckets: &mut Vec<Bucket>) {
    buckets.sort_by(|a, b| {
        a.upper
            .partial_cmp(&b.upper)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let mut out: Vec<Bucket> = Vec::with_capacity(buckets.len());
    for b in buckets.drain(..) {
        match out.last_mut() {
            Some(l) if l.upper == b.upper => l.count += b.count,
            _ => out.push(b),
        }
    }
    *buckets = out;
}

/// Prometheus' `BucketQuantile`; the flag tells whether counts had to be
/// made monotonic.
fn bucket_quantile(q: f64, mut buckets: Vec<Bucket>) -> (f64, bool) {
    if q.is_nan() {
        return (f64::NAN, false);
    }
    if q < 0.0 {
        return (f64::NEG_INFINITY, false);
    }
    if q > 1.0 {
        return (f64::INFINITY, false);
    }
    sort_coalesce(&mut buckets);
    if !buckets.last().is_some_and(|b| b.upper == f64::INFINITY) {
        return (f64::NAN, false);
    }
    let mut forced = false;
    if let Some(first) = buckets.first() {
        let mut prev = first.count;
        for b in buckets.iter_mut().skip(1) {
            let cur = b.count;
            if cur == prev {
                continue;
            }
            if almost_equal(prev, cur, 1e-12) {
                b.count = prev;
                continue;
            }
            if cur < prev {
                b.count = prev;
                forced = true;
                continue;
            }
            prev = cur;
        }
    }
    let n = buckets.len();
    if n < 2 {
        return (f64::NAN, forced);
    }
    let obs = buckets[n - 1].count;
    if obs == 0.0 || obs.is_nan() {
        return (f64::NAN, forced);
    }
    let mut rank = q * obs;
    let b = buckets[..n - 1].partition_point(|x| x.count < rank);
    if b == n - 1 {
        return (buckets[n - 2].upper, forced);
    }
    if b == 0 && buckets[0].upper <= 0.0 {
        return (buckets[0].upper, forced);
    }
    let end = buckets[b].upper;
    let mut count = buckets[b].count;
    let mut start = 0.0;
    if b > 0 {
        start = buckets[b - 1].upper;
        count -= buckets[b - 1].count;
        rank -= buckets[b - 1].count;
    }
    (start + (end - start) * (rank / count), forced)
}

/// Prometheus' `BucketFraction`: estimated share of observations between
/// `lower` and `upper`, interpolating linearly inside buckets.
fn bucket_fraction(lower: f64, upper: f64, mut buckets: Vec<Bucket>) -> f64 {
    sort_coalesce(&mut buckets);
    if !buckets.last().is_some_and(|b| b.upper == f64::INFINITY) {
        return f64::NAN;
    }
    let count = buckets.last().map_or(0.0, |b| b.count);
    if count == 0.0 || lower.is_nan() || upper.is_nan() {
        return f64::NAN;
    }
    if lower >= upper {
        return 0.0;
    }
    let (mut rank, mut lr, mut ur) = (0.0, 0.0, 0.0);
    let (mut ls, mut us) = (false, false);
    for (i, b) in buckets.iter().enumerate() {
        let lb = if i > 0 {
            buckets[i - 1].upper
        } else if b.upper > 0.0 {
            0.0
        } else {
            f64::NEG_INFINITY
        };
        let ub = b.upper;
        // Infinite-width buckets cannot be interpolated: a value inside the
        // lowest one counts as its upper end, inside +Inf as its lower end.
        let interp = |v: f64| {
            if lb == f64::NEG_INFINITY {
                b.count
            } else if ub == f64::INFINITY {
                rank
            } else {
                rank + (b.count - rank) * (v - lb) / (ub - lb)
            }
        };
        if !ls && lb >= lower {
            lr = rank;
            ls = true;
        }
        if !us && lb >= upper {
            ur = rank;
            us = true;
        }
        if ls && us {
            break;
        }
        if !ls && lb < lower && ub > lower {
            lr = interp(lower);
            ls = true;
        }
        if !us && lb < upper && ub > upper {
            ur = interp(upper);
            us = true;
        }
        if ls && us {
            break;
        }
        rank = b.count;
    }
    if !ls || lr > count {
        lr = count;
    }
    if !us || ur > count {
        ur = count;
    }
    (ur - lr) / count
}

impl Evaluator<'_> {
    pub(crate) fn histogram_fn(&mut self, c: &Call, t: i64) -> EvalResult<StepValue> {
        let multi = c.func.name == "histogram_quantiles";
        let quantile = multi || c.func.name == "histogram_quantile";
        // Argument layout: histogram_quantile(q, v), histogram_fraction(lo,
        // hi, v), histogram_quantiles(v, "label", q...).
        let (varg, scalar_args, out_label): (&Expr, Vec<&Expr>, Option<&Expr>) = if multi {
            let v = c
                .args
                .first()
                .ok_or_else(|| EvalError::exec("missing argument"))?;
            (v, c.args.iter().skip(2).collect(), c.args.get(1))
        } else {
            let n = if quantile { 1 } else { 2 };
            let v = c
                .args
                .get(n)
                .ok_or_else(|| EvalError::exec("missing argument"))?;
            (v, c.args.iter().take(n).collect(), None)
        };
        let mut params = Vec::new();
        for a in &scalar_args {
            params.push(self.scalar_arg(a, t)?);
        }
        let label = match out_label {
            Some(e) => match self.eval(e, t)? {
                StepValue::Str(s) => Some(s),
                _ => None,
            },
            None => None,
        };
        let input = match self.eval(varg, t)? {
            StepValue::Vector(v) => v,
            other => {
                return Err(EvalError::exec(format!(
                    "expected instant vector, got {}",
                    other.type_name()
                )))
            }
        };
        if let Some(l) = &label {
            if let Some(s) = input.iter().find(|s| s.labels.get(l).is_some()) {
                return Err(EvalError::exec(format!(
                    "label {l:?} already exists on series {}",
                    s.labels
                )));
            }
        }
        let (native, input): (Vec<Sample>, Vec<Sample>) =
            input.into_iter().partition(|s| s.h.is_some());
        let quantiles: Vec<f64> = if quantile { params.clone() } else { Vec::new() };
        for (i, q) in quantiles.iter().enumerate() {
            if !(0.0..=1.0).contains(q) {
                self.warn(
                    format!(
                        "quantile value should be between 0 and 1, got {}",
                        format_float(*q)
                    ),
                    scalar_args.get(i).map_or(c.span.0, |a| a.span().0),
                );
            }
        }
        let q = params.first().copied().unwrap_or(f64::NAN);
        let mut order: Vec<Labels> = Vec::new();
        let mut groups: HashMap<Labels, (Vec<Bucket>, String)> = HashMap::new();
        for s in input {
            let le = s.labels.get("le").and_then(parse_go_float);
            let Some(upper) = le else {
                self.warn(
                    format!(
                        "bucket label \"le\" is missing or has a malformed value of {:?} for metric name {:?}",
                        s.labels.get("le").unwrap_or(""),
                        s.labels.metric_name()
                    ),
                    varg.span().0,
                );
                continue;
            };
            // Grouped with the name still on (delayed name removal): buckets
            // of different metrics stay apart and collide only at the end.
            let mut b = s.labels.builder();
            b.del("le");
            let key = b.build();
            let e = groups.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                (Vec::new(), s.labels.metric_name().to_string())
            });
            e.0.push(Bucket {
                upper,
                count: s.value,
            });
        }
        let mut out = Vec::new();
        for s in native {
            // A native histogram beside classic buckets of the same series:
            // neither is evaluated.
            if groups.remove(&*s.labels).is_some() {
                let name = self.anno_metric_name(&s.labels);
                self.warn(
                    format!("vector contains a mix of classic and native histograms{name}"),
                    varg.span().0,
                );
                continue;
            }
            self.native_quantiles(&s, &quantiles, &params, label.as_deref(), varg, &mut out);
        }
        for key in order {
            let Some((buckets, mname)) = groups.remove(&key) else {
                continue;
            };
            if !quantile {
                out.push(Sample {
                    labels: key.into(),
                    t,
                    value: bucket_fraction(q, params.get(1).copied().unwrap_or(f64::NAN), buckets),
                    drop_name: true,
                    h: None,
                });
                continue;
            }
            for q in &quantiles {
                let (v, forced) = bucket_quantile(*q, buckets.clone());
                if forced {
                    self.info(
                        format!("input to histogram_quantile needed to be fixed for monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile) for metric name {mname:?}"),
                        varg.span().0,
                    );
                }
                let labels = match &label {
                    Some(l) => {
                        let mut b = key.builder();
                        b.set(l.clone(), label_float(*q));
                        b.build()
                    }
                    None => key.clone(),
                };
                out.push(Sample {
                    labels: labels.into(),
                    t,
                    value: v,
                    drop_name: true,
                    h: None,
                });
            }
        }
        Ok(StepValue::Vector(out))
    }
}

/// A quantile as a label value: shortest form, integers with `.0`.
pub(crate) fn label_float(q: f64) -> String {
    let s = format_float(q);
    if q.is_finite() && !s.contains(['.', 'e']) {
        format!("{s}.0")
    } else {
        s
    }
}

/// Go's `strconv.ParseFloat` for bucket bounds (`+Inf`, `1e3`, `0x1p3`...).
pub(crate) fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim();
    if t != s || t.is_empty() {
        return None;
    }
    let lower = t.to_ascii_lowercase();
    let body = lower.trim_start_matches(['+', '-']);
    let neg = lower.starts_with('-');
    match body {
        "inf" | "infinity" => {
            return Some(if neg {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if body.starts_with("0x") {
        return crate::model::gofmt::parse_number(t).ok();
    }
    t.replace('_', "").parse::<f64>().ok()
}
