//! Values a query produces and the error type of evaluation.

use std::sync::Arc;

use crate::model::histogram::FloatHistogram;
use crate::model::Labels;

/// One element of an instant vector. `drop_name` implements Prometheus'
/// delayed `__name__` removal: name-dropping operations only mark the sample,
/// and the name is removed when the query finishes, so `label_replace` and
/// `by (__name__)` can still see it in between.
///
/// Labels are shared (`Arc`): a series keeps one label set for the whole
/// query however many steps it appears in.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Arc<Labels>,
    pub t: i64,
    pub value: f64,
    pub drop_name: bool,
    /// A native histogram sample (then `value` is unused and 0); `None`
    /// for a float sample.
    pub h: Option<Box<FloatHistogram>>,
}

/// One series of a range vector (matrix).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Arc<Labels>,
    pub points: Vec<(i64, f64)>,
    pub drop_name: bool,
    /// Native histogram points, by time, at times not in `points` (as
    /// Prometheus' `Series` holds floats and histograms apart).
    pub hpoints: Vec<(i64, FloatHistogram)>,
}

/// A query result value, as Prometheus' API types it.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar { t: i64, v: f64 },
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
    String { t: i64, v: String },
}

/// The outcome of a query: the value plus annotations (warnings and infos,
/// which Prometheus' API returns next to the data).
#[derive(Debug, Clone, PartialEq)]
pub struct QueryResult {
    pub value: Value,
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
    /// What the evaluation loaded (Prometheus' `stats` samples section).
    pub stats: SampleStats,
}

/// Samples a query touched, as Prometheus' query statistics count them:
/// every sample an instant or range selector yields at a step counts once
/// per step; the peak is the most held at once by one selector step plus
/// the result built so far.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SampleStats {
    pub total_queryable_samples: u64,
    pub peak_samples: u64,
    /// Per evaluation step (range queries: one per step; instant: one).
    pub per_step: Vec<(i64, u64)>,
}

/// The error classes of Prometheus' HTTP API (`errorType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    BadData,
    Execution,
    Timeout,
    Canceled,
}

impl ErrorKind {
    /// The API's `errorType` string.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::BadData => "bad_data",
            ErrorKind::Execution => "execution",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Canceled => "canceled",
        }
    }
}

/// An evaluation error; the message is Prometheus' text so clients and
/// tests can compare it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct EvalError {
    pub kind: ErrorKind,
    pub message: String,
}

impl EvalError {
    pub fn exec(message: impl Into<String>) -> Self {
        EvalError {
            kind: ErrorKind::Execution,
            message: message.into(),
        }
    }
    pub fn bad_data(message: impl Into<String>) -> Self {
        EvalError {
            kind: ErrorKind::BadData,
            message: message.into(),
        }
    }
    pub fn too_many_samples() -> Self {
        Self::exec("query processing would load too many samples into memory in query execution")
    }
    pub fn timeout() -> Self {
        EvalError {
            kind: ErrorKind::Timeout,
            message: "query timed out in query execution".into(),
        }
    }
    pub fn canceled() -> Self {
        EvalError {
            kind: ErrorKind::Canceled,
            message: "query was canceled in query execution".into(),
        }
    }
    pub fn same_labelset() -> Self {
        Self::exec("vector cannot contain metrics with the same labelset")
    }
}

pub type EvalResult<T> = Result<T, EvalError>;
