//! PromQL: the query language of Prometheus. Only the parser lives here for
//! now; the evaluator of the next milestone builds on its AST.

pub mod engine;
pub mod parser;

pub use engine::{Engine, EngineOptions, EvalError, QueryResult, Value};
pub use parser::{parse, Expr, ParseError, ValueType};
