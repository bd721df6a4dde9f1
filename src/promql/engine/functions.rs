//! Function calls: dispatch, the instant-vector math and label functions.
//! Range-vector functions live in [`super::range_fns`], histogram ones in
//! [`super::histogram`].

use super::eval::{check_unique, Evaluator, StepValue};
use super::value::{EvalError, EvalResult, Sample, Series};
use crate::model::labels::METRIC_NAME;
use crate::model::time::{civil_from_days, days_from_civil};
use crate::model::{Labels, MatchType};
use crate::promql::parser::{Call, Expr};

/// Go's `math.Max`: NaN wins.
pub(crate) fn gmax(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins.
pub(crate) fn gmin(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

fn unwrap_parens(e: &Expr) -> &Expr {
    match e {
        Expr::Paren(p) => unwrap_parens(&p.expr),
        e => e,
    }
}

/// Labels for `absent()` / `absent_over_time()`: the equality matchers of a
/// plain selector argument, minus names matched more than once.
fn absent_labels(e: &Expr) -> Labels {
    let ms = match e {
        Expr::VectorSelector(v) => &v.matchers,
        Expr::MatrixSelector(m) => &m.selector.matchers,
        _ => return Labels::empty(),
    };
    let mut b = Labels::empty().builder();
    let mut has: Vec<&str> = Vec::new();
    for m in ms {
        if m.name == METRIC_NAME {
            continue;
        }
        if m.kind == MatchType::Equal && !has.contains(&m.name.as_str()) {
            b.set(m.name.clone(), m.value.clone());
            has.push(&m.name);
        } else {
            b.del(&m.name);
        }
    }
    b.build()
}

/// Natural ordering of label values (digit runs compare as numbers), as
/// `sort_by_label` uses.
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ab, bb) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < ab.len() && j < bb.len() {
        let (ca, cb) = (ab[i], bb[j]);
        if ca.is_ascii_digit() && cb.is_ascii_digit() {
            let si = i;
            while i < ab.len() && ab[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < bb.len() && bb[j].is_ascii_digit() {
                j += 1;
            }
            let na = a[si..i].trim_start_matches('0');
            let nb = b[sj..j].trim_start_matches('0');
            let o = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
            if o != Ordering::Equal {
                return o;
            }
        } else {
            if ca != cb {
                return ca.cmp(&cb);
            }
            i += 1;
            j += 1;
        }
    }
    (ab.len() - i).cmp(&(bb.len() - j))
}

fn date_fn(name: &str, secs: f64) -> f64 {
    if !secs.is_finite() || secs.abs() > 1e17 {
        return f64::NAN;
    }
    let s = secs.trunc() as i64;
    let days = s.div_euclid(86_400);
    let sod = s.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    match name {
        "minute" => ((sod / 60) % 60) as f64,
        "hour" => (sod / 3600) as f64,
        "day_of_week" => ((days + 4).rem_euclid(7)) as f64,
        "day_of_month" => d as f64,
        "day_of_year" => {
            let start = days_from_civil(y, 1, 1);
            (days - start + 1) as f64
        }
        "month" => m as f64,
        "year" => y as f64,
        "days_in_month" => {
            let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            (days_from_civil(ny, nm, 1) - days_from_civil(y, m, 1)) as f64
        }
        _ => f64::NAN,
    }
}

fn math_fn(name: &str, f: f64) -> Option<f64> {
    Some(match name {
        "abs" => f.abs(),
        "ceil" => f.ceil(),
        "floor" => f.floor(),
        "exp" => f.exp(),
        "sqrt" => f.sqrt(),
        "ln" => f.ln(),
        "log2" => f.log2(),
        "log10" => f.log10(),
        "sgn" => {
            if f < 0.0 {
                -1.0
            } else if f > 0.0 {
                1.0
            } else {
                f
            }
        }
        "sin" => f.sin(),
        "cos" => f.cos(),
        "tan" => f.tan(),
        "asin" => f.asin(),
        "acos" => f.acos(),
        "atan" => f.atan(),
        "sinh" => f.sinh(),
        "cosh" => f.cosh(),
        "tanh" => f.tanh(),
        "asinh" => f.asinh(),
        "acosh" => f.acosh(),
        "atanh" => f.atanh(),
        "deg" => f * 180.0 / std::f64::consts::PI,
        "rad" => f * std::f64::consts::PI / 180.0,
        _ => return None,
    })
}

/// Leaves out native histogram samples: the functions that take floats
/// only skip them without an annotation, as Prometheus does.
fn floats_only(v: &mut Vec<Sample>) {
    if v.iter().any(|s| s.h.is_some()) {
        v.retain(|s| s.h.is_none());
    }
}

/// Applies `f` to every float sample and leaves out the histograms, in the
/// one pass the float path makes anyway (the removal pass only runs when a
/// histogram was met).
fn map_floats(v: &mut Vec<Sample>, mut f: impl FnMut(&mut Sample)) {
    let mut hist = false;
    for s in v.iter_mut() {
        if s.h.is_some() {
            hist = true;
            continue;
        }
        f(s);
    }
    if hist {
        v.retain(|s| s.h.is_none());
    }
}

impl Evaluator<'_> {
    fn vec_arg(&mut self, e: &Expr, t: i64) -> EvalResult<Vec<Sample>> {
        match self.eval(e, t)? {
            StepValue::Vector(v) => Ok(v),
            other => Err(EvalError::exec(format!(
                "expected instant vector argument, got {}",
                other.type_name()
            ))),
        }
    }

    pub(crate) fn scalar_arg(&mut self, e: &Expr, t: i64) -> EvalResult<f64> {
        match self.eval(e, t)? {
            StepValue::Scalar(f) => Ok(f),
            other => Err(EvalError::exec(format!(
                "expected scalar argument, got {}",
                other.type_name()
            ))),
        }
    }

    fn str_arg(&mut self, e: &Expr, t: i64) -> EvalResult<String> {
        match self.eval(e, t)? {
            StepValue::Str(s) => Ok(s),
            other => Err(EvalError::exec(format!(
                "expected string argument, got {}",
                other.type_name()
            ))),
        }
    }

    pub(crate) fn call(&mut self, c: &Call, t: i64) -> EvalResult<StepValue> {
        let name = c.func.name;
        let arg = |i: usize| c.args.get(i);
        let missing = || EvalError::exec(format!("missing argument to {name}"));
        if c.func.arg_types.first() == Some(&crate::promql::ValueType::RangeVector)
            || name == "quantile_over_time"
        {
            return self.range_call(c, t);
        }
        if math_fn(name, 0.0).is_some() {
            let mut v = self.vec_arg(arg(0).ok_or_else(missing)?, t)?;
            map_floats(&mut v, |s| {
                s.value = math_fn(name, s.value).unwrap_or(f64::NAN);
                s.drop_name = true;
            });
            return Ok(StepValue::Vector(v));
        }
        match name {
            "time" => Ok(StepValue::Scalar(t as f64 / 1000.0)),
            "pi" => Ok(StepValue::Scalar(std::f64::consts::PI)),
            "start" => Ok(StepValue::Scalar(self.start as f64 / 1000.0)),
            "end" => Ok(StepValue::Scalar(self.end as f64 / 1000.0)),
            "step" => Ok(StepValue::Scalar(self.interval as f64 / 1000.0)),
            "range" => Ok(StepValue::Scalar((self.end - self.start) as f64 / 1000.0)),
            "min_of" | "max_of" => {
                let a = self.scalar_arg(arg(0).ok_or_else(missing)?, t)?;
                let b = self.scalar_arg(arg(1).ok_or_else(missing)?, t)?;
                Ok(StepValue::Scalar(if name == "min_of" {
                    gmin(a, b)
                } else {
                    gmax(a, b)
                }))
            }
            "vector" => {
                let f = self.scalar_arg(arg(0).ok_or_else(missing)?, t)?;
                Ok(StepValue::Vector(vec![Sample {
                    labels: Labels::empty().into(),
                    t,
                    value: f,
                    drop_name: false,
                    h: None,
                }]))
            }
            "scalar" => {
                let mut v = self.vec_arg(arg(0).ok_or_else(missing)?, t)?;
                floats_only(&mut v);
                Ok(StepValue::Scalar(match v.as_slice() {
                    [one] => one.value,
                    _ => f64::NAN,
                }))
            }
            "round" => {
                let mut v = self.vec_arg(arg(0).ok_or_else(missing)?, t)?;
                let to = match arg(1) {
                    Some(e) => self.scalar_arg(e, t)?,
                    None => 1.0,
                };
                let inv = 1.0 / to;
                map_floats(&mut v, |s| {
                    s.value = (s.value * inv + 0.5).floor() / inv;
                    s.drop_name = true;
                });
                Ok(StepValue::Vector(v))
            }
            "clamp" | "clamp_min" | "clamp_max" => {
                let mut v = self.vec_arg(arg(0).ok_or_else(missing)?, t)?;
                let a = self.scalar_arg(arg(1).ok_or_else(missing)?, t)?;
                let (lo, hi) = match name {
                    "clamp" => (a, self.scalar_arg(arg(2).ok_or_else(missing)?, t)?),
                    "clamp_min" => (a, f64::NAN),
                    _ => (f64::NAN, a),
                };
                if name == "clamp" && hi < lo {
                    return Ok(StepValue::Vector(Vec::new()));
                }
                map_floats(&mut v, |s| {
                    s.value = match name {
                        "clamp" => gmax(lo, gmin(hi, s.value)),
                        "clamp_min" => gmax(lo, s.value),
                        _ => gmin(hi, s.value),
                    };
                    s.drop_name = true;
                });
                Ok(StepValue::Vector(v))
            }
            "minute" | "hour" | "day_of_week" | "day_of_month" | "day_of_year" | "month"
            | "year" | "days_in_month" => {
                let mut v = match arg(0) {
                    Some(e) => self.vec_arg(e, t)?,
                    None => vec![Sample {
                        labels: Labels::empty().into(),
                        t,
                        value: t as f64 / 1000.0,
                        drop_name: false,
                        h: None,
                    }],
                };
                map_floats(&mut v, |s| {
                    s.value = date_fn(name, s.value);
                    s.drop_name = true;
                });
                Ok(StepValue::Vector(v))
            }
            "timestamp" => {
                let a = arg(0).ok_or_else(missing)?;
                let direct = matches!(unwrap_parens(a), Expr::VectorSelector(_));
                let mut v = self.vec_arg(a, t)?;
                for s in &mut v {
                    s.h = None;
                    s.value = if direct {
                        s.t as f64 / 1000.0
                    } else {
                        t as f64 / 1000.0
                    };
                    s.drop_name = true;
                }
                Ok(StepValue::Vector(v))
            }
            "absent" => {
                let a = arg(0).ok_or_else(missing)?;
                let v = self.vec_arg(a, t)?;
                if !v.is_empty() {
                    return Ok(StepValue::Vector(Vec::new()));
                }
                Ok(StepValue::Vector(vec![Sample {
                    labels: absent_labels(a).into(),
                    t,
                    value: 1.0,
                    drop_name: false,
                    h: None,
                }]))
            }
            "sort" | "sort_desc" => {
                let mut v = self.vec_arg(arg(0).ok_or_else(missing)?, t)?;
                floats_only(&mut v);
                let desc = name == "sort_desc";
                v.sort_by(|a, b| {
                    use std::cmp::Ordering::*;
                    match (a.value.is_nan(), b.value.is_nan()) {
                        (true, true) => Equal,
                        (true, false) => Greater,
                        (false, true) => Less,
                        _ => {
                            let o = a.value.partial_cmp(&b.value).unwrap_or(Equal);
                            if desc {
                                o.reverse()
                            } else {
                                o
                            }
                        }
                    }
                });
                self.sort_warning(c);
                Ok(StepValue::Vector(v))
            }
            "sort_by_label" | "sort_by_label_desc" => {
                let mut v = self.vec_arg(arg(0).ok_or_else(missing)?, t)?;
                let mut names = Vec::new();
                for e in c.args.iter().skip(1) {
                    names.push(self.str_arg(e, t)?);
                }
                let desc = name == "sort_by_label_desc";
                v.sort_by(|a, b| {
                    for n in &names {
                        let x = a.labels.get(n).unwrap_or("");
                        let y = b.labels.get(n).unwrap_or("");
                        let o = natural_cmp(x, y);
                        if o != std::cmp::Ordering::Equal {
                            return if desc { o.reverse() } else { o };
                        }
                    }
                    let o = a.labels.cmp(&b.labels);
                    if desc {
                        o.reverse()
                    } else {
                        o
                    }
                });
                self.sort_warning(c);
                Ok(StepValue::Vector(v))
            }
            "label_replace" => self.label_replace(c, t),
            "info" => self.info_fn(c, t),
            "label_join" => self.label_join(c, t),
            "histogram_quantile" | "histogram_quantiles" | "histogram_fraction" => {
                self.histogram_fn(c, t)
            }
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
            | "histogram_stdvar" => self.histogram_simple(c, t),
            other => Err(EvalError::exec(format!("unsupported: function {other}"))),
        }
    }

    fn sort_warning(&mut self, c: &Call) {
        if self.start != self.end {
            self.warn(
                "sort is ineffective for range queries since results are always ordered by labels"
                    .into(),
                c.span.0,
            );
        }
    }

    fn label_replace(&mut self, c: &Call, t: i64) -> EvalResult<StepValue> {
        let missing = || EvalError::exec("missing argument to label_replace");
        let mut v = self.vec_arg(c.args.first().ok_or_else(missing)?, t)?;
        let dst = self.str_arg(c.args.get(1).ok_or_else(missing)?, t)?;
        let repl = self.str_arg(c.args.get(2).ok_or_else(missing)?, t)?;
        let src = self.str_arg(c.args.get(3).ok_or_else(missing)?, t)?;
        let re_s = self.str_arg(c.args.get(4).ok_or_else(missing)?, t)?;
        let re = regex::Regex::new(&format!("^(?s:{re_s})$")).map_err(|e| {
            EvalError::exec(format!(
                "invalid regular expression in label_replace(): {re_s}: {e}"
            ))
        })?;
        if dst.is_empty() || dst.contains('\u{fffd}') {
            return Err(EvalError::exec(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        for s in &mut v {
            let sv = s.labels.get(&src).unwrap_or("");
            if let Some(caps) = re.captures(sv) {
                let mut res = String::new();
                caps.expand(&repl, &mut res);
                let mut b = s.labels.builder();
                b.set(dst.clone(), res);
                s.labels = b.build().into();
                if dst == METRIC_NAME {
                    s.drop_name = false;
                }
            }
        }
        check_unique(&v)?;
        Ok(StepValue::Vector(v))
    }

    fn label_join(&mut self, c: &Call, t: i64) -> EvalResult<StepValue> {
        let missing = || EvalError::exec("missing argument to label_join");
        let mut v = self.vec_arg(c.args.first().ok_or_else(missing)?, t)?;
        let dst = self.str_arg(c.args.get(1).ok_or_else(missing)?, t)?;
        let sep = self.str_arg(c.args.get(2).ok_or_else(missing)?, t)?;
        let mut srcs = Vec::new();
        for e in c.args.iter().skip(3) {
            srcs.push(self.str_arg(e, t)?);
        }
        if dst.is_empty() || dst.contains('\u{fffd}') {
            return Err(EvalError::exec(format!(
                "invalid destination label name in label_join(): {dst}"
            )));
        }
        for s in &mut v {
            let joined: Vec<&str> = srcs.iter().map(|n| s.labels.get(n).unwrap_or("")).collect();
            let joined = joined.join(&sep);
            let mut b = s.labels.builder();
            b.set(dst.clone(), joined);
            s.labels = b.build().into();
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
        }
        check_unique(&v)?;
        Ok(StepValue::Vector(v))
    }

    /// `absent_over_time` result for an argument without points.
    pub(crate) fn absent_over_time(&self, arg: &Expr, m: &[Series], t: i64) -> Vec<Sample> {
        if !m.is_empty() {
            return Vec::new();
        }
        vec![Sample {
            labels: absent_labels(arg).into(),
            t,
            value: 1.0,
            drop_name: false,
            h: None,
        }]
    }
}
