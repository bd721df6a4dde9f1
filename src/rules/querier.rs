//! The seam between rule evaluation and whatever answers its queries: the
//! local PromQL engine over the head, or a remote Prometheus-compatible API
//! ([`crate::rules::datasource::Datasource`], "datasource mode").
//!
//! Rules only need an instant vector per expression, so that is the whole
//! interface; the local implementation borrows the engine and head and
//! allocates nothing beyond what the engine already returns.

use std::time::Duration;

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

    /// The query offset of groups that set none (Prometheus 3's
    /// `rule_query_offset`): data that reaches a remote store late is
    /// queried a little in the past.
    fn default_query_offset(&self) -> Duration {
        Duration::ZERO
    }
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

impl Querier for LocalQuerier<'_> {
    fn instant(
        &self,
        expr: &str,
        parsed: Option<&Expr>,
        t: Timestamp,
    ) -> Result<Vec<(Labels, f64)>, RuleError> {
        let q = match parsed {
            Some(e) => Query::Parsed(e, Some(expr)),
            None => Query::Text(expr),
        };
        match self.engine.instant(self.head, q, t)?.value {
            Value::Vector(v) => Ok(v.iter().map(|s| (sample_labels(s), s.value)).collect()),
            Value::Scalar { v, .. } => Ok(vec![(Labels::empty(), v)]),
            _ => Err(RuleError::NotVector),
        }
    }
}
