//! `info(v, {selector})`: enriches series with the data labels of matching
//! info metrics (`target_info` by default), joined on the identifying labels
//! `instance` and `job` as of the base series' own reference time.

use std::collections::HashMap;
use std::rc::Rc;

use super::eval::{is_stale_hist, share, SeriesData};
use super::eval::{Evaluator, StepValue};
use super::value::{EvalError, EvalResult, Sample};
use crate::model::labels::METRIC_NAME;
use crate::model::{is_stale_nan, MatchType, Matcher};
use crate::promql::parser::{Call, Expr};

const IDENTIFYING: [&str; 2] = ["instance", "job"];

impl Evaluator<'_> {
    /// The time at which the base expression reads its samples: `@` and
    /// `offset` of its (first) selector or subquery, applied outside in.
    fn ref_time(&self, e: &Expr, t: i64) -> i64 {
        match e {
            Expr::VectorSelector(v) => self
                .at_time(v.at)
                .unwrap_or(t)
                .saturating_sub(self.duration(v.offset, &v.offset_expr)),
            Expr::MatrixSelector(m) => {
                self.ref_time(&Expr::VectorSelector(Box::new(m.selector.clone())), t)
            }
            Expr::SubqueryExpr(s) => {
                let st = self
                    .at_time(s.at)
                    .unwrap_or(t)
                    .saturating_sub(self.duration(s.offset, &s.offset_expr));
                self.ref_time(&s.expr, st)
            }
            Expr::Paren(p) => self.ref_time(&p.expr, t),
            Expr::Unary(u) => self.ref_time(&u.expr, t),
            Expr::Binary(b) => self.ref_time(&b.lhs, t),
            Expr::Aggregate(a) => self.ref_time(&a.expr, t),
            Expr::Call(c) => c
                .args
                .iter()
                .find(|a| !matches!(a, Expr::NumberLiteral(_) | Expr::StringLiteral(_)))
                .map_or(t, |a| self.ref_time(a, t)),
            _ => t,
        }
    }

    pub(crate) fn info_fn(&mut self, c: &Call, t: i64) -> EvalResult<StepValue> {
        let base_e = c
            .args
            .first()
            .ok_or_else(|| EvalError::exec("missing argument to info"))?;
        let base = match self.eval(base_e, t)? {
            StepValue::Vector(v) => v,
            other => {
                return Err(EvalError::exec(format!(
                    "expected instant vector, got {}",
                    other.type_name()
                )))
            }
        };
        let (mut name_ms, data_ms): (Vec<Matcher>, Vec<Matcher>) = match c.args.get(1) {
            Some(Expr::VectorSelector(vs)) => vs
                .matchers
                .iter()
                .cloned()
                .partition(|m| m.name == METRIC_NAME),
            _ => (Vec::new(), Vec::new()),
        };
        // No name given: `target_info`. Only negative name matchers: they
        // narrow the set of info metrics (`*_info`) rather than select
        // arbitrary series.
        let positive = name_ms
            .iter()
            .any(|m| matches!(m.kind, MatchType::Equal | MatchType::RegexMatch));
        let default = if name_ms.is_empty() {
            Some(Matcher::new(MatchType::Equal, METRIC_NAME, "target_info"))
        } else if !positive {
            Some(Matcher::new(MatchType::RegexMatch, METRIC_NAME, ".+_info"))
        } else {
            None
        };
        if let Some(m) = default {
            name_ms.push(m.map_err(|e| EvalError::exec(e.reason))?);
        }
        let key = c as *const Call as usize;
        let infos: Rc<Vec<SeriesData>> = match self.info_cache.get(&key) {
            Some(v) => v.clone(),
            None => {
                let mut all = name_ms.clone();
                all.extend(data_ms.iter().cloned());
                let v: Vec<SeriesData> = share(self.head.querier(i64::MIN, i64::MAX).select(&all));
                let v = Rc::new(v);
                self.info_cache.insert(key, v.clone());
                v
            }
        };
        let rt = self.ref_time(base_e, t);
        let lo = rt.saturating_sub(self.lookback);
        // Info series with a live sample at the reference time, newest per
        // (name, identifying labels) winning.
        let mut live: HashMap<(String, String, String), (i64, usize)> = HashMap::new();
        for (i, s) in infos.iter().enumerate() {
            let idx = s.samples.partition_point(|p| p.0 <= rt);
            let newest_float = idx.checked_sub(1).and_then(|j| s.samples.get(j));
            if !base.is_empty() && s.has_histograms() {
                // An info series must hold floats (Prometheus fails).
                let hi = s.hist.partition_point(|p| p.0 <= rt);
                if let Some(h) = hi.checked_sub(1).and_then(|j| s.hist.get(j)) {
                    if h.0 > lo && !is_stale_hist(&h.1) && newest_float.is_none_or(|f| f.0 < h.0) {
                        return Err(EvalError::exec("info sample should be float"));
                    }
                }
            }
            let Some(&(ts, v)) = newest_float else {
                continue;
            };
            if ts <= lo || is_stale_nan(v) {
                continue;
            }
            let k = (
                s.labels.metric_name().to_string(),
                s.labels.get("instance").unwrap_or("").to_string(),
                s.labels.get("job").unwrap_or("").to_string(),
            );
            match live.get(&k) {
                Some(&(pt, _)) if pt >= ts => {}
                _ => {
                    live.insert(k, (ts, i));
                }
            }
        }
        let needs_match = data_ms.iter().any(|m| !m.matches_empty());
        let mut out = Vec::with_capacity(base.len());
        for s in base {
            let name = s.labels.metric_name();
            if !name.is_empty() && name_ms.iter().all(|m| m.matches(name)) {
                out.push(s);
                continue;
            }
            let ids: Vec<(&str, &str)> = IDENTIFYING
                .iter()
                .filter_map(|n| s.labels.get(n).map(|v| (*n, v)))
                .collect();
            let mut added: Vec<(String, String, String)> = Vec::new();
            let mut matched = false;
            if !ids.is_empty() {
                for &(_, i) in live.values() {
                    let Some(info) = infos.get(i) else { continue };
                    if !ids.iter().all(|(n, v)| info.labels.get(n) == Some(*v)) {
                        continue;
                    }
                    matched = true;
                    for l in info.labels.iter() {
                        if l.name == METRIC_NAME || IDENTIFYING.contains(&l.name.as_str()) {
                            continue;
                        }
                        if !data_ms.is_empty() && !data_ms.iter().any(|m| m.name == l.name) {
                            continue;
                        }
                        if s.labels.get(&l.name).is_some() {
                            continue;
                        }
                        if let Some(prev) = added.iter().find(|a| a.0 == l.name) {
                            if prev.1 != l.value {
                                return Err(EvalError::exec(format!(
                                    "conflicting label: {} has values {:?} (from {}) and {:?} (from {})",
                                    l.name,
                                    prev.1,
                                    prev.2,
                                    l.value,
                                    info.labels.metric_name()
                                )));
                            }
                            continue;
                        }
                        added.push((
                            l.name.clone(),
                            l.value.clone(),
                            info.labels.metric_name().to_string(),
                        ));
                    }
                }
            }
            if !matched && needs_match {
                continue;
            }
            let mut b = s.labels.builder();
            for (n, v, _) in added {
                b.set(n, v);
            }
            out.push(Sample {
                labels: b.build().into(),
                ..s
            });
        }
        Ok(StepValue::Vector(out))
    }
}
