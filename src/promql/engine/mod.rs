//! The PromQL evaluator: instant and range queries over the TSDB head with
//! Prometheus 3.x semantics (left-open windows, `__name__` dropped at the
//! operator that drops it with the duplicate-labelset check there, as
//! without the experimental delayed name removal; Kahan-compensated sums).
//!
//! * [`value`]: result values and [`EvalError`].
//! * `eval`: the per-step tree walk, selectors and subqueries.
//! * `binary`, `aggregate`, `functions`, `range_fns`, `histogram`: operators.

mod aggregate;
mod binary;
mod eval;
mod extended;
mod functions;
mod histogram;
mod info;
mod native;
mod range_fns;
mod series_pass;
pub mod value;

use std::borrow::Cow;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub use value::{ErrorKind, EvalError, QueryResult, Sample, SampleStats, Series, Value};

use crate::promql::parser::{parse, Expr, ValueType};
use crate::tsdb::Queryable;
use eval::{cleanup_matrix, cleanup_vector, Collator, Evaluator, StepValue};

/// Engine limits, Prometheus' flags of the same names.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineOptions {
    /// How far back an instant selector looks for a sample (default 5m).
    pub lookback_delta: Duration,
    /// Most samples a query may hold at once (default 50M).
    pub max_samples: usize,
    /// Wall-clock limit of one query (default 2m).
    pub timeout: Duration,
    /// Step of subqueries written without one (`[5m:]`), default 1m.
    pub default_subquery_step: Duration,
    /// Prometheus' experimental `promql-delayed-name-removal`: `__name__`
    /// is only flagged where an operation drops it and removed at the end,
    /// so intermediate vectors may hold series differing only by name. Off
    /// by default, as in a Prometheus server (its test engine turns it on).
    pub delayed_name_removal: bool,
    /// Evaluate range-vector functions, selectors and the folding
    /// aggregations over them series by series across all steps in one
    /// pass (the default). Off, every node is evaluated step by step: the
    /// reference the series pass is tested against.
    pub series_pass: bool,
    /// Threads a range function over many samples (at least
    /// [`PARALLEL_MIN_SAMPLES`] selected) is computed on in the series
    /// pass, each thread taking a share of the series; 1 keeps
    /// every query on the thread that runs it. Results are the same either
    /// way: each series is computed by the same function, and they are
    /// taken back in series order.
    pub parallelism: usize,
}

/// Fewer selected samples than this are not worth a second thread.
pub const PARALLEL_MIN_SAMPLES: usize = 100_000;

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            lookback_delta: Duration::from_secs(300),
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step: Duration::from_secs(60),
            delayed_name_removal: false,
            series_pass: true,
            parallelism: 1,
        }
    }
}

/// A query given as text (parsed here; positions in annotations refer to
/// it) or as an already parsed expression.
pub enum Query<'a> {
    Text(&'a str),
    Parsed(&'a Expr, Option<&'a str>),
}

impl<'a> From<&'a str> for Query<'a> {
    fn from(s: &'a str) -> Self {
        Query::Text(s)
    }
}

impl<'a> From<&'a String> for Query<'a> {
    fn from(s: &'a String) -> Self {
        Query::Text(s)
    }
}

impl<'a> From<&'a Expr> for Query<'a> {
    fn from(e: &'a Expr) -> Self {
        Query::Parsed(e, None)
    }
}

/// The query engine. Cheap to share: queries keep their state on the stack.
#[derive(Debug, Clone, Default)]
pub struct Engine {
    opts: EngineOptions,
    /// Checked between operations: set, the query ends as "canceled".
    cancel: Option<Arc<AtomicBool>>,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Engine {
    pub fn new(opts: EngineOptions) -> Self {
        Engine { opts, cancel: None }
    }

    /// This engine, with queries that stop (as "canceled") once `flag` is
    /// set: the HTTP API sets it when the client disconnects.
    pub fn cancellable(&self, flag: Arc<AtomicBool>) -> Engine {
        Engine {
            opts: self.opts.clone(),
            cancel: Some(flag),
        }
    }

    pub fn options(&self) -> &EngineOptions {
        &self.opts
    }

    fn prepare<'q>(q: Query<'q>) -> Result<(Cow<'q, Expr>, Option<&'q str>), EvalError> {
        match q {
            Query::Text(s) => {
                let e = parse(s).map_err(|e| EvalError::bad_data(e.to_string()))?;
                Ok((Cow::Owned(e), Some(s)))
            }
            Query::Parsed(e, s) => Ok((Cow::Borrowed(e), s)),
        }
    }

    fn evaluator<'a>(
        &self,
        head: &'a dyn Queryable,
        text: Option<&'a str>,
        start: i64,
        end: i64,
        step: i64,
    ) -> Evaluator<'a> {
        let mut ev = Evaluator::new(
            head,
            text,
            start,
            end,
            step,
            ms(self.opts.lookback_delta),
            self.opts.max_samples,
            Instant::now() + self.opts.timeout,
        );
        ev.default_sub_step = ms(self.opts.default_subquery_step).max(1);
        ev.cancel = self.cancel.clone();
        ev.delayed_name_removal = self.opts.delayed_name_removal;
        ev.series_pass = self.opts.series_pass;
        ev.parallelism = self.opts.parallelism.max(1);
        ev
    }

    /// Evaluates `query` at `t` (milliseconds).
    pub fn instant<'q>(
        &self,
        head: &dyn Queryable,
        query: impl Into<Query<'q>>,
        t: i64,
    ) -> Result<QueryResult, EvalError> {
        let (expr, text) = Self::prepare(query.into())?;
        let mut ev = self.evaluator(head, text, t, t, 0);
        ev.plan(&expr, t, t);
        ev.mark_stats_selectors(&expr);
        let value = match ev.eval(&expr, t)? {
            StepValue::Scalar(v) => Value::Scalar { t, v },
            StepValue::Str(v) => Value::String { t, v },
            StepValue::Vector(mut v) => {
                cleanup_vector(&mut v)?;
                for s in &mut v {
                    s.t = t;
                }
                Value::Vector(v)
            }
            StepValue::Matrix(m) => Value::Matrix(cleanup_matrix(m)?),
        };
        let stats = SampleStats {
            total_queryable_samples: ev.loaded,
            peak_samples: ev.peak,
            per_step: vec![(t, ev.loaded)],
        };
        Ok(QueryResult {
            value,
            warnings: ev.warnings,
            infos: ev.infos,
            stats,
        })
    }

    /// Evaluates `query` at every step from `start` to `end` (inclusive,
    /// milliseconds) and returns a matrix sorted by labels.
    pub fn range<'q>(
        &self,
        head: &dyn Queryable,
        query: impl Into<Query<'q>>,
        start: i64,
        end: i64,
        step: i64,
    ) -> Result<QueryResult, EvalError> {
        let (expr, text) = Self::prepare(query.into())?;
        if step <= 0 {
            return Err(EvalError::bad_data(
                "zero or negative query resolution step widths are not accepted. Try a positive integer",
            ));
        }
        if end < start {
            return Err(EvalError::bad_data(
                "end timestamp must not be before start time",
            ));
        }
        // The same resolution limit as Prometheus' HTTP API.
        if end.saturating_sub(start) / step > 11_000 {
            return Err(EvalError::bad_data(
                "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
            ));
        }
        match expr.value_type() {
            ValueType::Scalar | ValueType::InstantVector => {}
            other => {
                return Err(EvalError::bad_data(format!(
                    "invalid expression type \"{other}\" for range query, must be Scalar or instant Vector"
                )))
            }
        }
        let mut ev = self.evaluator(head, text, start, end, step);
        ev.plan(&expr, start, end);
        ev.mark_stats_selectors(&expr);
        if ev.series_pass {
            match ev.build_table(&expr)? {
                Some(table) => return table_result(ev, table),
                None => {
                    ev.tables.insert(eval::key(&*expr), None);
                }
            }
        }
        let mut acc = Collator::default();
        let mut per_step = Vec::new();
        let mut t = start;
        while t <= end {
            let before = ev.loaded;
            match ev.eval(&expr, t)? {
                StepValue::Scalar(v) => {
                    acc.add(crate::model::Labels::empty().into(), false, t, v)?
                }
                StepValue::Vector(v) => acc.add_vector(v, t)?,
                other => {
                    return Err(EvalError::exec(format!(
                        "unexpected {} result in range query",
                        other.type_name()
                    )))
                }
            }
            ev.check_samples(acc.points)?;
            ev.held = acc.points as u64;
            per_step.push((t, ev.loaded - before));
            t = match t.checked_add(step) {
                Some(n) => n,
                None => break,
            };
        }
        matrix_result(ev, acc.finish(), per_step)
    }
}

/// A range query's answer: the matrix cleaned up (names dropped, series
/// merged) with the evaluation's annotations and statistics.
fn matrix_result(
    ev: Evaluator<'_>,
    m: Vec<Series>,
    per_step: Vec<(i64, u64)>,
) -> Result<QueryResult, EvalError> {
    let m = cleanup_matrix(m)?;
    let stats = SampleStats {
        total_queryable_samples: ev.loaded,
        peak_samples: ev.peak,
        per_step,
    };
    Ok(QueryResult {
        value: Value::Matrix(m),
        warnings: ev.warnings,
        infos: ev.infos,
        stats,
    })
}

/// A range query whose whole expression the series pass evaluated: its
/// table is the result matrix. Statistics and the sample limit are counted
/// as the per-step loop counts them (each step's selector samples plus the
/// result points of the steps before).
fn table_result(
    mut ev: Evaluator<'_>,
    table: series_pass::StepTable,
) -> Result<QueryResult, EvalError> {
    let grid = ev.grid();
    let mut out_per_step = vec![0u64; grid.len];
    for s in &table.series {
        for p in &s.points {
            if let Some(n) = grid.index(p.0).and_then(|i| out_per_step.get_mut(i)) {
                *n += 1;
            }
        }
    }
    let mut per_step = Vec::with_capacity(grid.len);
    let mut held = 0u64;
    for (i, (&loaded, &out)) in table.loaded.iter().zip(&out_per_step).enumerate() {
        ev.held = held;
        ev.loaded_step(loaded, table.peak.get(i).copied().unwrap_or(0))?;
        per_step.push((grid.time(i), loaded));
        held = held.saturating_add(out);
        ev.check_samples(usize::try_from(held).unwrap_or(usize::MAX))?;
    }
    let mut m: Vec<Series> = table
        .series
        .into_iter()
        .map(|s| Series {
            labels: s.labels,
            points: s.points,
            drop_name: s.drop_name,
            hpoints: Vec::new(),
        })
        .collect();
    m.sort_by(|a, b| a.labels.cmp(&b.labels));
    matrix_result(ev, m, per_step)
}

#[cfg(test)]
mod tests;
