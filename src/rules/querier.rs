//! The seam between rule evaluation and whatever answers its queries: the
//! local PromQL engine over the head, or a remote Prometheus-compatible API
//! ([`crate::rules::datasource::Datasource`], "datasource mode").
//!
//! Rules only need an instant vector per expression, so that is the whole
//! interface; the local implementation borrows the engine and head and
//! allocates nothing beyond what the engine already returns.

use std::time::Duration;

use crate::model::histogram::FloatHistogram;
use crate::model::{Labels, Timestamp};
use crate::promql::engine::{Engine, Query, Sample};
use crate::promql::{Expr, Value};
use crate::rules::group::RuleError;

/// Answers the instant queries of rule evaluation. Called from the blocking
/// pool (group evaluation is synchronous), so implementations may block.
pub trait Querier: Send + Sync {
    /// Evaluates `expr` at `t` (ms). `parsed` is the rule's already parsed
    /// expression when there is one (templates' `query` passes `None`); a
    /// remote implementation sends `expr` as written. A scalar result comes
    /// back as one sample without labels, as in Prometheus'
    /// `EngineQueryFunc`.
    fn instant(
        &self,
        expr: &str,
        parsed: Option<&Expr>,
        t: Timestamp,
    ) -> Result<Vec<(Labels, f64)>, RuleError>;

    /// [`instant`](Self::instant) keeping native histogram samples, for
    /// recording rules (whose output may be a histogram). The default
    /// answers floats only, as a remote datasource does.
    fn instant_values(
        &self,
        expr: &str,
        parsed: Option<&Expr>,
        t: Timestamp,
    ) -> Result<Vec<(Labels, RuleValue)>, RuleError> {
        Ok(self
            .instant(expr, parsed, t)?
            .into_iter()
            .map(|(l, v)| (l, RuleValue::Float(v)))
            .collect())
    }

    /// The query offset of groups that set none (Prometheus 3's
    /// `rule_query_offset`): data that reaches a remote store late is
    /// queried a little in the past.
    fn default_query_offset(&self) -> Duration {
        Duration::ZERO
    }
}

/// One sample of a rule's query result: a float or a native histogram.
#[derive(Debug, Clone, PartialEq)]
pub enum RuleValue {
    Float(f64),
    Histogram(Box<FloatHistogram>),
}

/// The local engine over the head: klaxon's default mode.
pub struct LocalQuerier<'a> {
    pub engine: &'a Engine,
    pub head: &'a dyn crate::tsdb::Queryable,
}

/// Applies a vector's `drop_name` mark (the engine leaves it to callers).
fn sample_labels(s: &Sample) -> Labels {
    if s.drop_name && s.labels.get("__name__").is_some() {
        let mut b = s.labels.builder();
        b.del("__name__");
        b.build()
    } else {
        (*s.labels).clone()
    }
}

impl LocalQuerier<'_> {
    fn run(&self, expr: &str, parsed: Option<&Expr>, t: Timestamp) -> Result<Value, RuleError> {
        let q = match parsed {
            Some(e) => Query::Parsed(e, Some(expr)),
            None => Query::Text(expr),
        };
        Ok(self.engine.instant(self.head, q, t)?.value)
    }
}

impl Querier for LocalQuerier<'_> {
    /// A histogram sample's value is 0 here, as Prometheus' `Sample.F`.
    fn instant(
        &self,
        expr: &str,
        parsed: Option<&Expr>,
        t: Timestamp,
    ) -> Result<Vec<(Labels, f64)>, RuleError> {
        Ok(self
            .instant_values(expr, parsed, t)?
            .into_iter()
            .map(|(l, v)| match v {
                RuleValue::Float(f) => (l, f),
                RuleValue::Histogram(_) => (l, 0.0),
            })
            .collect())
    }

    fn instant_values(
        &self,
        expr: &str,
        parsed: Option<&Expr>,
        t: Timestamp,
    ) -> Result<Vec<(Labels, RuleValue)>, RuleError> {
        match self.run(expr, parsed, t)? {
            Value::Vector(v) => Ok(v
                .into_iter()
                .map(|s| {
                    let l = sample_labels(&s);
                    match s.h {
                        Some(h) => (l, RuleValue::Histogram(h)),
                        None => (l, RuleValue::Float(s.value)),
                    }
                })
                .collect()),
            Value::Scalar { v, .. } => Ok(vec![(Labels::empty(), RuleValue::Float(v))]),
            _ => Err(RuleError::NotVector),
        }
    }
}
