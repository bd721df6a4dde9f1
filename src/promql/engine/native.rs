//! PromQL over native histograms: the `histogram_*` functions' native
//! side, and the helpers the operators share (annotation texts naming the
//! metric, histogram samples built from an input sample).
//!
//! Semantics follow Prometheus 3.x: the `histogram_*` functions evaluate
//! native histogram samples and ignore float samples; quantiles and
//! fractions over one histogram come from `model::histogram::functions`.

use super::eval::{Evaluator, StepValue};
use super::value::{EvalError, EvalResult, Sample};
use crate::model::gofmt::go_quote;
use crate::model::histogram::{self, FloatHistogram};
use crate::model::Labels;
use crate::promql::parser::{Call, Expr};

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
