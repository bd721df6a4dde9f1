//! Postfix parts of an expression: range selectors and subqueries, with
//! their duration expressions, and the `offset`, `@`, `anchored` and
//! `smoothed` modifiers. They bind tighter than every operator.

use super::ast::*;
use super::lexer::{Tok, Token};
use super::parser::{perr, PResult, Parser};
use crate::model::gofmt::{format_float, parse_duration, parse_number};

impl<'a> Parser<'a> {
    /// Range selectors, subqueries, `offset` and `@`, which bind tighter than
    /// any operator.
    pub(super) fn parse_postfix(&mut self, mut e: Expr) -> PResult<Expr> {
        loop {
            match self.peek_kind() {
                Some(Tok::LBracket) => e = self.parse_range(e)?,
                Some(Tok::Offset) => e = self.parse_offset(e)?,
                Some(Tok::At) => e = self.parse_at(e)?,
                Some(Tok::Identifier) => match self.extended_range_modifier() {
                    Some(anchored) => e = self.parse_extended_range_modifier(e, anchored)?,
                    None => return Ok(e),
                },
                _ => return Ok(e),
            }
        }
    }

    /// `anchored` (true) or `smoothed` (false) in modifier position.
    fn extended_range_modifier(&self) -> Option<bool> {
        let t = self.tokens.get(self.pos)?;
        match self.text(*t).to_ascii_lowercase().as_str() {
            "anchored" => Some(true),
            "smoothed" => Some(false),
            _ => None,
        }
    }

    fn parse_extended_range_modifier(&mut self, mut e: Expr, anchored: bool) -> PResult<Expr> {
        let t = self.bump()?;
        let start = e.span().0;
        let name = if anchored { "anchored" } else { "smoothed" };
        let vs = match &mut e {
            Expr::VectorSelector(vs) => &mut **vs,
            Expr::MatrixSelector(ms) => &mut ms.selector,
            Expr::SubqueryExpr(_) => {
                return Err(perr(
                    start,
                    format!("{name} modifier is not supported for subqueries"),
                ))
            }
            _ => return Err(perr(start, format!("{name} modifier not implemented"))),
        };
        if anchored {
            vs.anchored = true;
        } else {
            vs.smoothed = true;
        }
        if vs.anchored && vs.smoothed {
            return Err(perr(
                start,
                "anchored and smoothed modifiers cannot be used together",
            ));
        }
        match &mut e {
            Expr::VectorSelector(vs) => vs.span.1 = t.end,
            Expr::MatrixSelector(ms) => ms.span.1 = t.end,
            _ => {}
        }
        Ok(e)
    }

    fn parse_range(&mut self, e: Expr) -> PResult<Expr> {
        let open = self.bump()?;
        if !self.starts_duration() {
            return Err(self.unexpected("subquery selector", "duration"));
        }
        let range_de = self.parse_duration_expr(0)?;
        let t = self.peek()?;
        match t.kind {
            Tok::RBracket => {
                self.bump()?;
                let msg = match &e {
                    Expr::VectorSelector(vs) if vs.offset != 0 || vs.offset_expr.is_some() => {
                        Some("no offset modifiers allowed before range")
                    }
                    Expr::VectorSelector(vs) if vs.at.is_some() => {
                        Some("no @ modifiers allowed before range")
                    }
                    Expr::VectorSelector(_) => None,
                    _ => Some("ranges only allowed for vector selectors"),
                };
                if let Some(m) = msg {
                    return Err(perr(open.start, m));
                }
                let (range, range_expr) = split_duration(range_de);
                let start = e.span().0;
                match e {
                    Expr::VectorSelector(vs) => {
                        Ok(Expr::MatrixSelector(Box::new(MatrixSelector {
                            selector: *vs,
                            range,
                            range_expr,
                            span: (start, t.end),
                        })))
                    }
                    _ => Err(perr(open.start, "ranges only allowed for vector selectors")),
                }
            }
            Tok::Colon => {
                self.bump()?;
                let mut step_de = None;
                let s = self.peek()?;
                if self.starts_duration() {
                    step_de = Some(self.parse_duration_expr(0)?);
                    if self.peek()?.kind != Tok::RBracket {
                        return Err(self.unexpected("subquery selector", "\"]\""));
                    }
                } else if s.kind != Tok::RBracket {
                    return Err(self.unexpected("subquery selector", "duration or \"]\""));
                }
                let close = self.bump()?;
                let (range, range_expr) = split_duration(range_de);
                let (step, step_expr) = match step_de {
                    Some(d) => split_duration(d),
                    None => (0, None),
                };
                let start = e.span().0;
                Ok(Expr::SubqueryExpr(Box::new(SubqueryExpr {
                    expr: e,
                    range,
                    range_expr,
                    step,
                    step_expr,
                    offset: 0,
                    offset_expr: None,
                    at: None,
                    span: (start, close.end),
                })))
            }
            _ => Err(self.unexpected("subquery or range", "\":\" or \"]\"")),
        }
    }

    /// Whether a duration expression can start at the current token.
    fn starts_duration(&self) -> bool {
        match self.tokens.get(self.pos) {
            Some(t) => match t.kind {
                Tok::Number | Tok::Duration | Tok::LParen | Tok::Add | Tok::Sub => true,
                Tok::Identifier => self.duration_function(*t).is_some(),
                _ => false,
            },
            None => false,
        }
    }

    /// `step`, `range`, `min_of`, `max_of` (any case) followed by `(`.
    fn duration_function(&self, t: Token) -> Option<u8> {
        if self.tokens.get(self.pos + 1).map(|t| t.kind) != Some(Tok::LParen) {
            return None;
        }
        match self.text(t).to_ascii_lowercase().as_str() {
            "step" => Some(0),
            "range" => Some(1),
            "min_of" => Some(2),
            "max_of" => Some(3),
            _ => None,
        }
    }

    /// Full duration expression (inside brackets and parentheses): the
    /// binary operators with PromQL precedence, unary signs binding like `*`.
    fn parse_duration_expr(&mut self, min_prec: u8) -> PResult<DurationExpr> {
        self.enter()?;
        let mut lhs = self.parse_duration_unary()?;
        let mut chain = 0;
        loop {
            let op = match self.peek_kind() {
                Some(Tok::Add) => BinaryOp::Add,
                Some(Tok::Sub) => BinaryOp::Sub,
                Some(Tok::Mul) => BinaryOp::Mul,
                Some(Tok::Div) => BinaryOp::Div,
                Some(Tok::Mod) => BinaryOp::Mod,
                Some(Tok::Pow) => BinaryOp::Pow,
                _ => break,
            };
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            self.enter()?;
            chain += 1;
            let op_tok = self.bump()?;
            let next_min = if op.is_right_assoc() { prec } else { prec + 1 };
            let rhs = self.parse_duration_expr(next_min)?;
            if matches!(op, BinaryOp::Div | BinaryOp::Mod)
                && matches!(rhs.kind, DurationKind::Number { seconds, .. } if seconds == 0.0)
            {
                let what = if op == BinaryOp::Div {
                    "division by zero"
                } else {
                    "modulo by zero"
                };
                return Err(perr(op_tok.start, what));
            }
            let span = (lhs.span.0, rhs.span.1);
            lhs = DurationExpr {
                kind: DurationKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                wrapped: false,
                span,
            };
        }
        self.depth -= 1 + chain;
        Ok(lhs)
    }

    fn parse_duration_unary(&mut self) -> PResult<DurationExpr> {
        let t = self.peek()?;
        if matches!(t.kind, Tok::Add | Tok::Sub) {
            self.bump()?;
            self.enter()?;
            let operand = self.parse_duration_expr(BinaryOp::Pow.precedence())?;
            self.depth -= 1;
            return Ok(apply_sign(t, operand));
        }
        self.parse_duration_atom()
    }

    /// Literal, `step()`, `range()`, `min_of(a, b)`, `max_of(a, b)` or a
    /// parenthesized duration expression.
    fn parse_duration_atom(&mut self) -> PResult<DurationExpr> {
        let t = self.peek()?;
        match t.kind {
            Tok::Number | Tok::Duration => {
                self.bump()?;
                let (seconds, duration) = if t.kind == Tok::Duration {
                    let ms = parse_duration(self.text(t)).map_err(|e| perr(t.start, e))?;
                    (ms as f64 / 1000.0, true)
                } else {
                    let v = parse_number(self.text(t))
                        .map_err(|e| perr(t.start, format!("error parsing number: {e}")))?;
                    (v, false)
                };
                if !seconds.is_finite() || seconds.abs() > (i64::MAX / 1_000_000_000) as f64 {
                    return Err(perr(t.start, "duration out of range"));
                }
                Ok(DurationExpr {
                    kind: DurationKind::Number { seconds, duration },
                    wrapped: false,
                    span: (t.start, t.end),
                })
            }
            Tok::LParen => {
                self.bump()?;
                let mut inner = self.parse_duration_expr(0)?;
                let close = self.peek()?;
                if close.kind != Tok::RParen {
                    return Err(self.unexpected("duration expression", "\")\""));
                }
                self.bump()?;
                // A bare literal keeps no parentheses (upstream cannot mark it).
                if !matches!(inner.kind, DurationKind::Number { .. }) {
                    inner.wrapped = true;
                }
                Ok(inner)
            }
            Tok::Identifier => {
                let Some(which) = self.duration_function(t) else {
                    return Err(self.unexpected("duration expression", ""));
                };
                self.bump()?;
                self.bump()?; // `(`
                let kind = if which < 2 {
                    if which == 0 {
                        DurationKind::Step
                    } else {
                        DurationKind::Range
                    }
                } else {
                    let a = self.parse_duration_expr(0)?;
                    if self.peek()?.kind != Tok::Comma {
                        return Err(self.unexpected("duration expression", "\",\""));
                    }
                    self.bump()?;
                    let b = self.parse_duration_expr(0)?;
                    if which == 2 {
                        DurationKind::MinOf(Box::new(a), Box::new(b))
                    } else {
                        DurationKind::MaxOf(Box::new(a), Box::new(b))
                    }
                };
                let close = self.peek()?;
                if close.kind != Tok::RParen {
                    return Err(self.unexpected("duration expression", "\")\""));
                }
                self.bump()?;
                Ok(DurationExpr {
                    kind,
                    wrapped: false,
                    span: (t.start, close.end),
                })
            }
            _ => Err(self.unexpected("duration expression", "duration")),
        }
    }

    /// After `offset`: one optionally signed literal, function or
    /// parenthesized expression, so `foo offset 2 ^ 2` is `(foo offset 2) ^ 2`
    /// as upstream's `offset_duration_expr` makes it.
    fn parse_offset_duration(&mut self) -> PResult<DurationExpr> {
        let t = self.peek()?;
        if matches!(t.kind, Tok::Add | Tok::Sub) {
            self.bump()?;
            let operand = self.parse_duration_atom()?;
            return Ok(apply_sign(t, operand));
        }
        self.parse_duration_atom()
    }

    fn parse_offset(&mut self, mut e: Expr) -> PResult<Expr> {
        self.bump()?;
        if !self.starts_duration() {
            return Err(self.unexpected("offset", "duration"));
        }
        let de = self.parse_offset_duration()?;
        let end = de.span.1;
        let (v, dexpr) = split_duration(de);
        let start = e.span().0;
        let res = match &mut e {
            Expr::VectorSelector(vs) => {
                set_offset(&mut vs.offset, &mut vs.offset_expr, &mut vs.span.1, v, dexpr, end)
            }
            Expr::MatrixSelector(ms) => set_offset(
                &mut ms.selector.offset,
                &mut ms.selector.offset_expr,
                &mut ms.span.1,
                v,
                dexpr,
                end,
            ),
            Expr::SubqueryExpr(sq) => {
                set_offset(&mut sq.offset, &mut sq.offset_expr, &mut sq.span.1, v, dexpr, end)
            }
            _ => return Err(perr(
                start,
                "offset modifier must be preceded by an instant vector selector or range vector selector or a subquery",
            )),
        };
        if !res {
            return Err(perr(start, "offset may not be set multiple times"));
        }
        Ok(e)
    }

    fn parse_at(&mut self, mut e: Expr) -> PResult<Expr> {
        self.bump()?;
        let t = self.peek()?;
        let at;
        let end;
        match t.kind {
            Tok::Start | Tok::End => {
                self.bump()?;
                if self.peek()?.kind != Tok::LParen {
                    return Err(self.unexpected("@", "timestamp"));
                }
                self.bump()?;
                let close = self.peek()?;
                if close.kind != Tok::RParen {
                    return Err(self.unexpected("@", "timestamp"));
                }
                self.bump()?;
                at = if t.kind == Tok::Start {
                    AtModifier::Start
                } else {
                    AtModifier::End
                };
                end = close.end;
            }
            Tok::Number | Tok::Duration | Tok::Add | Tok::Sub => {
                let mut neg = false;
                if !matches!(t.kind, Tok::Number | Tok::Duration) {
                    self.bump()?;
                    neg = t.kind == Tok::Sub;
                    if !matches!(self.peek()?.kind, Tok::Number | Tok::Duration) {
                        return Err(self.unexpected("@", "timestamp"));
                    }
                }
                let n = self.bump()?;
                // Prometheus 3.x also takes a duration after the epoch here.
                let mut v = if n.kind == Tok::Duration {
                    parse_duration(self.text(n)).map_err(|e| perr(n.start, e))? as f64 / 1000.0
                } else {
                    parse_number(self.text(n))
                        .map_err(|e| perr(n.start, format!("error parsing number: {e}")))?
                };
                if neg {
                    v = -v;
                }
                if !v.is_finite() || v >= i64::MAX as f64 || v <= i64::MIN as f64 {
                    return Err(perr(
                        e.span().0,
                        format!(
                            "timestamp out of bounds for @ modifier: {}",
                            if v.is_finite() {
                                format!("{v:.6}")
                            } else {
                                format_float(v)
                            }
                        ),
                    ));
                }
                at = AtModifier::Timestamp((v * 1000.0).round() as i64);
                end = n.end;
            }
            _ => return Err(self.unexpected("@", "timestamp")),
        }
        let start = e.span().0;
        let res = match &mut e {
            Expr::VectorSelector(vs) => set_at(&mut vs.at, &mut vs.span.1, at, end),
            Expr::MatrixSelector(ms) => set_at(&mut ms.selector.at, &mut ms.span.1, at, end),
            Expr::SubqueryExpr(sq) => set_at(&mut sq.at, &mut sq.span.1, at, end),
            _ => return Err(perr(
                start,
                "@ modifier must be preceded by an instant vector selector or range vector selector or a subquery",
            )),
        };
        if !res {
            return Err(perr(start, "@ <timestamp> may not be set multiple times"));
        }
        Ok(e)
    }
}

/// Sets an offset unless one is set already (Prometheus treats 0 as unset).
fn set_offset(
    slot: &mut i64,
    expr_slot: &mut Option<DurationExpr>,
    span_end: &mut usize,
    v: i64,
    expr: Option<DurationExpr>,
    end: usize,
) -> bool {
    if *slot != 0 || expr_slot.is_some() {
        return false;
    }
    *slot = v;
    *expr_slot = expr;
    *span_end = end;
    true
}

/// A plain literal becomes a fixed duration in milliseconds; anything else
/// stays an expression, as upstream stores `Range`/`RangeExpr`.
fn split_duration(d: DurationExpr) -> (i64, Option<DurationExpr>) {
    match d.as_literal_ms() {
        Some(ms) => (ms, None),
        None => (0, Some(d)),
    }
}

/// Applies a unary sign: folded into literals, `-` wraps anything else,
/// `+` disappears.
fn apply_sign(sign: Token, operand: DurationExpr) -> DurationExpr {
    let neg = sign.kind == Tok::Sub;
    match operand.kind {
        DurationKind::Number { seconds, duration } => DurationExpr {
            kind: DurationKind::Number {
                seconds: if neg { -seconds } else { seconds },
                duration,
            },
            wrapped: false,
            span: (sign.start, operand.span.1),
        },
        _ if neg => {
            let span = (sign.start, operand.span.1);
            DurationExpr {
                kind: DurationKind::Neg(Box::new(operand)),
                wrapped: false,
                span,
            }
        }
        _ => operand,
    }
}

fn set_at(slot: &mut Option<AtModifier>, span_end: &mut usize, v: AtModifier, end: usize) -> bool {
    if slot.is_some() {
        return false;
    }
    *slot = Some(v);
    *span_end = end;
    true
}
