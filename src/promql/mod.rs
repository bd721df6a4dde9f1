//! PromQL: the query language of Prometheus. The parser produces the AST the
//! engine evaluates against the TSDB head.

pub mod engine;
pub mod parser;

pub use engine::{Engine, EngineOptions, EvalError, QueryResult, Value};
pub use parser::{parse, Expr, ParseError, ValueType};
