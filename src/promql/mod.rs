//! PromQL: the query language of Prometheus. The parser produces the AST the
//! engine evaluates against the TSDB head.

pub mod engine;
pub mod parser;

pub use engine::{Engine, EngineOptions, EvalError, QueryResult, Value};
pub use parser::{parse, Expr, ParseError, ValueType};

/// Query limits set on the command line (`--query.timeout`,
/// `--query.max-samples`, `--query.lookback-delta`,
/// `--query.max-concurrency`), Prometheus' flags and defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySettings {
    pub engine: EngineOptions,
    /// Queries evaluated at once by the HTTP API; the rest wait.
    pub max_concurrency: usize,
}

impl Default for QuerySettings {
    fn default() -> Self {
        QuerySettings {
            engine: EngineOptions::default(),
            max_concurrency: 20,
        }
    }
}
