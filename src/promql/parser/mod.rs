//! A hand-written PromQL lexer and Pratt parser.
//!
//! Why our own: the `promql-parser` crate reports no positions and rejects
//! forms Prometheus accepts. This parser follows the Prometheus 3.x grammar
//! and reports errors the way `promtool` (2.42) prints them, e.g.
//! `1:6: parse error: unexpected end of input`, so rule validation output can
//! be compared byte for byte.

pub mod ast;
mod check;
pub mod functions;
mod lexer;
mod matchers;
#[allow(clippy::module_inception)]
mod parser;
mod postfix;
mod printer;

#[cfg(test)]
mod tests;

pub use ast::*;
pub use functions::{get_function, Function};
pub use parser::{parse, MAX_DEPTH, MAX_INPUT_LEN};

/// A PromQL parse error with Prometheus' position conventions: `line` is
/// 1-based, `column` is the 1-based *byte* offset within that line (Prometheus
/// counts bytes, not runes), and `offset` is the byte offset in the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: parse error: {message}")]
pub struct ParseError {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
    pub message: String,
}

impl ParseError {
    /// Builds an error at byte `offset` of `input`, computing line and column
    /// as Prometheus' `PositionRange.StartPosInput` does.
    pub(crate) fn at(input: &str, offset: usize, message: impl Into<String>) -> Self {
        let offset = offset.min(input.len());
        let before = input.as_bytes().get(..offset).unwrap_or_default();
        let mut line = 1;
        let mut last_break: isize = -1;
        for (i, b) in before.iter().enumerate() {
            if *b == b'\n' {
                line += 1;
                last_break = i as isize;
            }
        }
        let column = (offset as isize - last_break) as usize;
        ParseError {
            line,
            column,
            offset,
            message: message.into(),
        }
    }
}
