//! PromQL: the query language of Prometheus. Only the parser lives here for
//! now; the evaluator of the next milestone builds on its AST.

pub mod parser;

pub use parser::{parse, Expr, ParseError, ValueType};
