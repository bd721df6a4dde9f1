//! Pratt parser over the token list. Errors are reported at the point
//! Prometheus' yacc grammar would report them (after the construct's closing
//! token), and parsing stops at the first one: Prometheus prints only the
//! first error, so nothing after it can change the result.

use super::ast::*;
use super::check::check;
use super::functions::{get_function, Function};
use super::lexer::{lex, LexError, Tok, Token};
use super::matchers::new_matcher;
use super::ParseError;
use crate::model::gofmt::{
    go_quote, go_quote_truncated, is_legacy_label_name, parse_duration, parse_number, unquote,
    unquote_bytes,
};
use crate::model::{MatchType, Matcher};

/// Highest syntax tree accepted: nesting (parentheses, calls, unary
/// operators) plus the length of operator chains, since `a + b + c` is a
/// left-deep tree that the checker, printer and evaluator walk recursively.
/// A level costs up to ~5 KiB of stack in debug builds, so 256 fits a 2 MiB
/// thread; real rules stay far below (a few dozen). Prometheus has no limit
/// (its yacc parser is not recursive), so deeper input is a known difference.
pub const MAX_DEPTH: usize = 256;

/// Longest input accepted, in bytes.
pub const MAX_INPUT_LEN: usize = 1 << 20;

pub(super) type PResult<T> = Result<T, Perr>;

/// An error at a byte position; converted to line:column at the end.
#[derive(Debug)]
pub(crate) struct Perr {
    pub pos: usize,
    pub message: String,
}

pub(crate) fn perr(pos: usize, message: impl Into<String>) -> Perr {
    Perr {
        pos,
        message: message.into(),
    }
}

/// Parses and type-checks a PromQL expression.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    if input.len() > MAX_INPUT_LEN {
        return Err(ParseError::at(
            input,
            0,
            format!(
                "query too long: {} bytes, at most {} allowed",
                input.len(),
                MAX_INPUT_LEN
            ),
        ));
    }
    let (tokens, lex_error) = lex(input);
    let mut p = Parser {
        input,
        tokens,
        lex_error,
        pos: 0,
        depth: 0,
    };
    let res = p.parse_top().and_then(|mut e| {
        check(&mut e, input)?;
        Ok(e)
    });
    res.map_err(|e| ParseError::at(input, e.pos, e.message))
}

pub(super) struct Parser<'a> {
    pub(super) input: &'a str,
    pub(super) tokens: Vec<Token>,
    pub(super) lex_error: Option<LexError>,
    pub(super) pos: usize,
    pub(super) depth: usize,
}

/// What the parser found at the current position.
enum Next {
    Tok(Token),
    /// The lexer failed here.
    LexErr,
}

impl<'a> Parser<'a> {
    fn next_kind(&self) -> Next {
        match self.tokens.get(self.pos) {
            Some(t) => Next::Tok(*t),
            None => Next::LexErr,
        }
    }

    /// The current token; at the lexer's failure point this is the lexer
    /// error itself, which ends parsing.
    pub(super) fn peek(&self) -> PResult<Token> {
        match self.next_kind() {
            Next::Tok(t) => Ok(t),
            Next::LexErr => Err(self.lex_err()),
        }
    }

    fn lex_err(&self) -> Perr {
        match &self.lex_error {
            Some(e) => perr(e.pos, e.message.clone()),
            None => perr(self.input.len(), "unexpected end of input"),
        }
    }

    pub(super) fn peek_kind(&self) -> Option<Tok> {
        self.tokens.get(self.pos).map(|t| t.kind)
    }

    pub(super) fn bump(&mut self) -> PResult<Token> {
        let t = self.peek()?;
        self.pos += 1;
        Ok(t)
    }

    pub(super) fn text(&self, t: Token) -> &'a str {
        self.input.get(t.start..t.end).unwrap_or("")
    }

    /// Prometheus' `Item.desc()` for the "unexpected ..." messages.
    fn desc(&self, t: Token) -> String {
        let val = self.text(t);
        let quoted = || {
            if val.len() > 10 {
                format!("{}...", go_quote_truncated(val))
            } else {
                go_quote(val)
            }
        };
        match t.kind {
            Tok::Eof => "end of input".into(),
            Tok::Identifier => format!("identifier {}", go_quote(val)),
            Tok::MetricIdentifier => format!("metric identifier {}", go_quote(val)),
            Tok::Number => format!("number {}", quoted()),
            Tok::Duration => format!("duration {}", quoted()),
            Tok::Str => format!("string {}", quoted()),
            Tok::Bool
            | Tok::By
            | Tok::Without
            | Tok::On
            | Tok::Ignoring
            | Tok::GroupLeft
            | Tok::GroupRight
            | Tok::Offset => format!("<{val}>"),
            Tok::Aggregator => format!("<aggr:{val}>"),
            Tok::Add
            | Tok::Sub
            | Tok::Mul
            | Tok::Div
            | Tok::Mod
            | Tok::Pow
            | Tok::Eqlc
            | Tok::Neq
            | Tok::Lte
            | Tok::TrimUpper
            | Tok::TrimLower
            | Tok::Lss
            | Tok::Gte
            | Tok::Gtr
            | Tok::EqlRegex
            | Tok::NeqRegex
            | Tok::Land
            | Tok::Lor
            | Tok::Lunless
            | Tok::Atan2
            | Tok::At => format!("<op:{val}>"),
            _ => go_quote(val),
        }
    }

    /// `unexpected <token>[ in <context>][, expected <what>]`.
    pub(super) fn unexpected(&self, context: &str, expected: &str) -> Perr {
        let t = match self.peek() {
            Ok(t) => t,
            Err(e) => return e,
        };
        let mut m = format!("unexpected {}", self.desc(t));
        if !context.is_empty() {
            m.push_str(" in ");
            m.push_str(context);
        }
        if !expected.is_empty() {
            m.push_str(", expected ");
            m.push_str(expected);
        }
        perr(t.start, m)
    }

    fn parse_top(&mut self) -> PResult<Expr> {
        if self.peek_kind() == Some(Tok::Eof) {
            return Err(perr(0, "no expression found in input"));
        }
        let e = self.parse_expr(0)?;
        if self.peek()?.kind != Tok::Eof {
            return Err(self.unexpected("", ""));
        }
        Ok(e)
    }

    pub(super) fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            let at = self
                .tokens
                .get(self.pos)
                .map(|t| t.start)
                .unwrap_or(self.input.len());
            return Err(perr(
                at,
                format!("expression nested too deeply (more than {MAX_DEPTH} levels)"),
            ));
        }
        Ok(())
    }

    fn binary_op(&self) -> Option<BinaryOp> {
        Some(match self.peek_kind()? {
            Tok::Add => BinaryOp::Add,
            Tok::Sub => BinaryOp::Sub,
            Tok::Mul => BinaryOp::Mul,
            Tok::Div => BinaryOp::Div,
            Tok::Mod => BinaryOp::Mod,
            Tok::Pow => BinaryOp::Pow,
            Tok::Atan2 => BinaryOp::Atan2,
            Tok::Eqlc => BinaryOp::Eql,
            Tok::Neq => BinaryOp::Neq,
            Tok::Gtr => BinaryOp::Gtr,
            Tok::Lss => BinaryOp::Lss,
            Tok::Gte => BinaryOp::Gte,
            Tok::Lte => BinaryOp::Lte,
            Tok::TrimUpper => BinaryOp::TrimUpper,
            Tok::TrimLower => BinaryOp::TrimLower,
            Tok::Land => BinaryOp::And,
            Tok::Lor => BinaryOp::Or,
            Tok::Lunless => BinaryOp::Unless,
            _ => return None,
        })
    }

    /// Binary expressions whose operators bind at least `min_prec`.
    pub(super) fn parse_expr(&mut self, min_prec: u8) -> PResult<Expr> {
        self.enter()?;
        let mut lhs = self.parse_unary()?;
        // Each operator of a left-assoc chain adds a tree level that the
        // recursive checker, printer and evaluator walk: count it too.
        let mut chain = 0;
        while let Some(op) = self.binary_op() {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            self.enter()?;
            chain += 1;
            self.bump()?;
            let (return_bool, matching) = self.parse_bin_modifiers()?;
            let next_min = if op.is_right_assoc() { prec } else { prec + 1 };
            let rhs = self.parse_expr(next_min)?;
            let span = (lhs.span().0, rhs.span().1);
            lhs = Expr::Binary(Box::new(BinaryExpr {
                op,
                lhs,
                rhs,
                return_bool,
                matching: Some(matching),
                span,
            }));
        }
        self.depth -= 1 + chain;
        Ok(lhs)
    }

    fn parse_bin_modifiers(&mut self) -> PResult<(bool, VectorMatching)> {
        let mut vm = VectorMatching {
            card: Cardinality::OneToOne,
            on: false,
            labels: Vec::new(),
            include: Vec::new(),
            fill_lhs: None,
            fill_rhs: None,
            fill_both: false,
        };
        let mut return_bool = false;
        if self.peek_kind() == Some(Tok::Bool) {
            self.bump()?;
            return_bool = true;
        }
        if matches!(self.peek_kind(), Some(Tok::On | Tok::Ignoring)) {
            vm.on = self.bump()?.kind == Tok::On;
            vm.labels = self.parse_grouping_labels()?;
            if matches!(self.peek_kind(), Some(Tok::GroupLeft | Tok::GroupRight)) {
                let t = self.bump()?;
                vm.card = if t.kind == Tok::GroupLeft {
                    Cardinality::ManyToOne
                } else {
                    Cardinality::OneToMany
                };
                if self.peek_kind() == Some(Tok::LParen) {
                    vm.include = self.parse_grouping_labels()?;
                }
            }
        }
        self.parse_fill_modifiers(&mut vm)?;
        Ok((return_bool, vm))
    }

    /// Which fill keyword, if any, starts here. Like Prometheus' lexer, the
    /// words are keywords only when `(` follows, so `fill + fill` still
    /// reads as two metrics.
    fn fill_keyword(&self) -> Option<u8> {
        let t = self.tokens.get(self.pos)?;
        if t.kind != Tok::Identifier
            || self.tokens.get(self.pos + 1).map(|t| t.kind) != Some(Tok::LParen)
        {
            return None;
        }
        match self.text(*t).to_ascii_lowercase().as_str() {
            "fill" => Some(0),
            "fill_left" => Some(1),
            "fill_right" => Some(2),
            _ => None,
        }
    }

    /// `fill(v)`, `fill_left(v)`, `fill_right(v)` (Prometheus 3.x binop fill
    /// modifiers, experimental upstream).
    fn parse_fill_modifiers(&mut self, vm: &mut VectorMatching) -> PResult<()> {
        while let Some(which) = self.fill_keyword() {
            let kw = self.bump()?;
            self.bump()?; // `(`
            let mut neg = false;
            if matches!(self.peek()?.kind, Tok::Add | Tok::Sub) {
                neg = self.bump()?.kind == Tok::Sub;
            }
            let n = self.peek()?;
            if n.kind != Tok::Number {
                return Err(self.unexpected("fill modifier", "number"));
            }
            self.bump()?;
            let mut v = parse_number(self.text(n))
                .map_err(|e| perr(n.start, format!("error parsing number: {e}")))?;
            if neg {
                v = -v;
            }
            if self.peek()?.kind != Tok::RParen {
                return Err(self.unexpected("fill modifier", "\")\""));
            }
            self.bump()?;
            let dup = match which {
                0 => vm.fill_lhs.is_some() || vm.fill_rhs.is_some(),
                1 => vm.fill_lhs.is_some(),
                _ => vm.fill_rhs.is_some(),
            };
            if dup {
                return Err(perr(
                    kw.start,
                    "fill modifier may not be set multiple times",
                ));
            }
            if which != 2 {
                vm.fill_lhs = Some(v);
            }
            if which != 1 {
                vm.fill_rhs = Some(v);
            }
            vm.fill_both = which == 0;
        }
        Ok(())
    }

    /// `( label, ... )` after by/without/on/ignoring/group_x.
    fn parse_grouping_labels(&mut self) -> PResult<Vec<String>> {
        if self.peek()?.kind != Tok::LParen {
            return Err(self.unexpected("grouping opts", "\"(\""));
        }
        self.bump()?;
        let mut labels = Vec::new();
        loop {
            let t = self.peek()?;
            if t.kind == Tok::RParen {
                self.bump()?;
                return Ok(labels);
            }
            let name = match t.kind {
                Tok::Str => unquote(self.text(t)).map_err(|e| perr(t.start, e))?,
                Tok::Identifier
                | Tok::MetricIdentifier
                | Tok::Aggregator
                | Tok::Bool
                | Tok::By
                | Tok::Without
                | Tok::On
                | Tok::Ignoring
                | Tok::GroupLeft
                | Tok::GroupRight
                | Tok::Offset
                | Tok::Land
                | Tok::Lor
                | Tok::Lunless
                | Tok::Atan2
                | Tok::Start
                | Tok::End => {
                    let v = self.text(t);
                    if !is_legacy_label_name(v) {
                        return Err(self.unexpected("grouping opts", "label"));
                    }
                    v.to_string()
                }
                _ => return Err(self.unexpected("grouping opts", "label")),
            };
            self.bump()?;
            labels.push(name);
            match self.peek()?.kind {
                Tok::Comma => {
                    self.bump()?;
                }
                Tok::RParen => {}
                _ => return Err(self.unexpected("grouping opts", "\",\" or \")\"")),
            }
        }
    }

    fn parse_unary(&mut self) -> PResult<Expr> {
        let t = self.peek()?;
        if matches!(t.kind, Tok::Add | Tok::Sub) {
            self.bump()?;
            self.enter()?;
            // Unary operators bind like `*`: only `^` binds tighter.
            let operand = self.parse_expr(BinaryOp::Pow.precedence())?;
            self.depth -= 1;
            let neg = t.kind == Tok::Sub;
            return Ok(match operand {
                Expr::NumberLiteral(mut n) => {
                    if neg {
                        n.value = -n.value;
                    }
                    n.span.0 = t.start;
                    Expr::NumberLiteral(n)
                }
                other => {
                    let span = (t.start, other.span().1);
                    Expr::Unary(Box::new(UnaryExpr {
                        op: if neg { UnaryOp::Neg } else { UnaryOp::Pos },
                        expr: other,
                        span,
                    }))
                }
            });
        }
        let e = self.parse_primary()?;
        self.parse_postfix(e)
    }

    /// Dispatch only: every arm lives in its own function so this frame,
    /// which recurses for each nesting level, stays small.
    fn parse_primary(&mut self) -> PResult<Expr> {
        let t = self.peek()?;
        match t.kind {
            Tok::Number | Tok::Duration | Tok::Str => self.parse_literal(t),
            Tok::LParen => self.parse_paren(t),
            Tok::LBrace => self.parse_braces_selector(t),
            Tok::Aggregator
                if matches!(
                    self.tokens.get(self.pos + 1).map(|t| t.kind),
                    Some(Tok::LParen | Tok::By | Tok::Without)
                ) =>
            {
                self.parse_aggregate()
            }
            // `start()`/`end()` are functions too (experimental upstream).
            Tok::Identifier | Tok::Start | Tok::End
                if self.tokens.get(self.pos + 1).map(|t| t.kind) == Some(Tok::LParen) =>
            {
                self.parse_call()
            }
            Tok::Identifier
            | Tok::MetricIdentifier
            | Tok::Aggregator
            | Tok::By
            | Tok::Without
            | Tok::Land
            | Tok::Lor
            | Tok::Lunless
            | Tok::Offset
            | Tok::Start
            | Tok::End => self.parse_named_selector(t),
            _ => Err(self.unexpected("", "")),
        }
    }

    #[inline(never)]
    fn parse_literal(&mut self, t: Token) -> PResult<Expr> {
        match t.kind {
            Tok::Number => {
                self.bump()?;
                let value = parse_number(self.text(t))
                    .map_err(|e| perr(t.start, format!("error parsing number: {e}")))?;
                Ok(Expr::NumberLiteral(NumberLiteral {
                    value,
                    duration: false,
                    span: (t.start, t.end),
                }))
            }
            Tok::Duration => {
                self.bump()?;
                let ms = parse_duration(self.text(t)).map_err(|e| perr(t.start, e))?;
                Ok(Expr::NumberLiteral(NumberLiteral {
                    value: ms as f64 / 1000.0,
                    duration: true,
                    span: (t.start, t.end),
                }))
            }
            Tok::Str => {
                self.bump()?;
                let (value, invalid_utf8) = match self.unquote_tok_bytes(t)? {
                    Ok(v) => (v, None),
                    Err(b) => (String::from_utf8_lossy(&b).into_owned(), Some(b)),
                };
                Ok(Expr::StringLiteral(Box::new(StringLiteral {
                    value,
                    invalid_utf8,
                    span: (t.start, t.end),
                })))
            }
            _ => Err(self.unexpected("", "")),
        }
    }

    fn parse_paren(&mut self, t: Token) -> PResult<Expr> {
        self.bump()?;
        let inner = self.parse_expr(0)?;
        let close = self.peek()?;
        if close.kind != Tok::RParen {
            return Err(self.unexpected("", ""));
        }
        self.bump()?;
        Ok(Expr::Paren(Box::new(ParenExpr {
            expr: inner,
            span: (t.start, close.end),
        })))
    }

    #[inline(never)]
    fn parse_braces_selector(&mut self, t: Token) -> PResult<Expr> {
        let (matchers, end) = self.parse_label_matchers()?;
        Ok(plain_selector(None, matchers, (t.start, end)))
    }

    #[inline(never)]
    fn parse_named_selector(&mut self, t: Token) -> PResult<Expr> {
        self.bump()?;
        let name = self.text(t).to_string();
        let mut end = t.end;
        let mut matchers = Vec::new();
        if self.peek_kind() == Some(Tok::LBrace) {
            let (m, e) = self.parse_label_matchers()?;
            matchers = m;
            end = e;
        }
        let name_matcher = Matcher::new(MatchType::Equal, "__name__", name.clone())
            .map_err(|e| perr(t.start, e.to_string()))?;
        matchers.push(name_matcher);
        Ok(plain_selector(Some(name), matchers, (t.start, end)))
    }

    pub(super) fn unquote_tok(&self, t: Token) -> PResult<String> {
        Ok(match self.unquote_tok_bytes(t)? {
            Ok(v) => v,
            Err(b) => String::from_utf8_lossy(&b).into_owned(),
        })
    }

    /// The string token unquoted; `Err` holds the bytes of a string that
    /// byte escapes made invalid UTF-8.
    fn unquote_tok_bytes(&self, t: Token) -> PResult<Result<String, Vec<u8>>> {
        let raw = self.text(t);
        unquote_bytes(raw).map_err(|e| {
            perr(
                t.start,
                format!("error unquoting string {}: {e}", go_quote(raw)),
            )
        })
    }

    /// `{ matcher, ... }`; returns the matchers and the end of `}`.
    fn parse_label_matchers(&mut self) -> PResult<(Vec<Matcher>, usize)> {
        self.bump()?; // `{`
        let mut out = Vec::new();
        loop {
            let t = self.peek()?;
            match t.kind {
                Tok::RBrace => {
                    self.bump()?;
                    return Ok((out, t.end));
                }
                Tok::Identifier | Tok::Str => {
                    self.bump()?;
                    let name = if t.kind == Tok::Str {
                        self.unquote_tok(t)?
                    } else {
                        self.text(t).to_string()
                    };
                    let op = self.peek()?;
                    let kind = match op.kind {
                        Tok::Eql => Some(MatchType::Equal),
                        Tok::Neq => Some(MatchType::NotEqual),
                        Tok::EqlRegex => Some(MatchType::RegexMatch),
                        Tok::NeqRegex => Some(MatchType::RegexNoMatch),
                        Tok::Comma | Tok::RBrace if t.kind == Tok::Str => None,
                        _ => {
                            return Err(self.unexpected("label matching", "label matching operator"))
                        }
                    };
                    let m = match kind {
                        // A lone quoted string is the metric name.
                        None => Matcher::new(MatchType::Equal, "__name__", name)
                            .map_err(|e| perr(t.start, e.to_string()))?,
                        Some(kind) => {
                            self.bump()?;
                            let v = self.peek()?;
                            if v.kind != Tok::Str {
                                return Err(self.unexpected("label matching", "string"));
                            }
                            self.bump()?;
                            let value = self.unquote_tok(v)?;
                            new_matcher(kind, name, value, t.start)?
                        }
                    };
                    out.push(m);
                    match self.peek()?.kind {
                        Tok::Comma => {
                            self.bump()?;
                        }
                        Tok::RBrace => {}
                        _ => return Err(self.unexpected("label matching", "\",\" or \"}\"")),
                    }
                }
                _ => {
                    return Err(self.unexpected("label matching", "identifier or \"}\""));
                }
            }
        }
    }

    fn parse_call(&mut self) -> PResult<Expr> {
        let name_tok = self.bump()?;
        let (args, end) = self.parse_call_body()?;
        let name = self.text(name_tok);
        let func: &'static Function = get_function(name).ok_or_else(|| {
            perr(
                name_tok.start,
                format!("unknown function with name {}", go_quote(name)),
            )
        })?;
        Ok(Expr::Call(Box::new(Call {
            func,
            args,
            span: (name_tok.start, end),
        })))
    }

    /// `( expr, ... )`; returns the arguments and the end of `)`.
    fn parse_call_body(&mut self) -> PResult<(Vec<Expr>, usize)> {
        self.bump()?; // `(`
        let mut args = Vec::new();
        if self.peek()?.kind == Tok::RParen {
            let t = self.bump()?;
            return Ok((args, t.end));
        }
        loop {
            args.push(self.parse_expr(0)?);
            let t = self.peek()?;
            match t.kind {
                Tok::Comma => {
                    self.bump()?;
                    if self.peek()?.kind == Tok::RParen {
                        return Err(perr(
                            t.start,
                            "trailing commas not allowed in function call args",
                        ));
                    }
                }
                Tok::RParen => {
                    self.bump()?;
                    return Ok((args, t.end));
                }
                _ => return Err(self.unexpected("", "")),
            }
        }
    }

    fn parse_aggregate(&mut self) -> PResult<Expr> {
        let op_tok = self.bump()?;
        let op = AggregateOp::from_keyword(self.text(op_tok))
            .ok_or_else(|| perr(op_tok.start, "unknown aggregation operator"))?;
        let mut grouping = Vec::new();
        let mut without = false;
        let mut have_modifier = false;
        if matches!(self.peek_kind(), Some(Tok::By | Tok::Without)) {
            without = self.bump()?.kind == Tok::Without;
            grouping = self.parse_grouping_labels()?;
            have_modifier = true;
        }
        if self.peek()?.kind != Tok::LParen {
            return Err(self.unexpected("aggregation", ""));
        }
        let (mut args, mut end) = self.parse_call_body()?;
        if !have_modifier && matches!(self.peek_kind(), Some(Tok::By | Tok::Without)) {
            without = self.bump()?.kind == Tok::Without;
            grouping = self.parse_grouping_labels()?;
            end = self
                .tokens
                .get(self.pos.wrapping_sub(1))
                .map(|t| t.end)
                .unwrap_or(end);
        }
        let span = (op_tok.start, end);
        if args.is_empty() {
            return Err(perr(
                span.0,
                "no arguments for aggregate expression provided",
            ));
        }
        let want = if op.has_param() { 2 } else { 1 };
        if args.len() != want {
            return Err(perr(
                span.0,
                format!(
                    "wrong number of arguments for aggregate expression provided, expected {want}, got {}",
                    args.len()
                ),
            ));
        }
        let expr = args.pop().ok_or_else(|| perr(span.0, "missing argument"))?;
        let param = args.pop();
        Ok(Expr::Aggregate(Box::new(AggregateExpr {
            op,
            expr,
            param,
            grouping,
            without,
            span,
        })))
    }
}

/// A selector as written before any modifier (`offset`, `@`, ...) applies.
fn plain_selector(name: Option<String>, matchers: Vec<Matcher>, span: Span) -> Expr {
    Expr::VectorSelector(Box::new(VectorSelector {
        name,
        matchers,
        offset: 0,
        offset_expr: None,
        at: None,
        anchored: false,
        smoothed: false,
        bypass_empty_matcher_check: false,
        span,
    }))
}
