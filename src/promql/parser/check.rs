//! Type checking after a successful parse, in the order of Prometheus'
//! `checkAST` so the first reported error is the same one. It also applies
//! the AST fix-ups Prometheus makes there (set operators become
//! many-to-many; vector matching is dropped when an operand is a scalar).

use super::ast::*;
use super::parser::{perr, Perr};
use crate::model::gofmt::go_quote;

pub(crate) fn check(e: &mut Expr, input: &str) -> Result<ValueType, Perr> {
    let typ = e.value_type();
    match e {
        Expr::NumberLiteral(_) | Expr::StringLiteral(_) => {}
        Expr::Paren(p) => {
            check(&mut p.expr, input)?;
        }
        Expr::VectorSelector(vs) => check_selector(vs)?,
        Expr::MatrixSelector(ms) => check_selector(&ms.selector)?,
        Expr::SubqueryExpr(sq) => {
            let t = check(&mut sq.expr, input)?;
            if t != ValueType::InstantVector {
                return Err(perr(
                    sq.span.0,
                    format!(
                        "subquery is only allowed on instant vector, got {} instead",
                        t.internal_name()
                    ),
                ));
            }
        }
        Expr::Unary(u) => {
            let t = check(&mut u.expr, input)?;
            if t != ValueType::Scalar && t != ValueType::InstantVector {
                return Err(perr(
                    u.span.0,
                    format!(
                        "unary expression only allowed on expressions of type scalar or instant vector, got {}",
                        go_quote(&t.to_string())
                    ),
                ));
            }
        }
        Expr::Aggregate(a) => {
            let t = check(&mut a.expr, input)?;
            if t != ValueType::InstantVector {
                return Err(perr(
                    a.expr.span().0,
                    format!("expected type instant vector in aggregation expression, got {t}"),
                ));
            }
            let want = match a.op {
                AggregateOp::CountValues => Some(ValueType::String),
                op if op.has_param() => Some(ValueType::Scalar),
                _ => None,
            };
            if let (Some(want), Some(param)) = (want, a.param.as_mut()) {
                let t = check(param, input)?;
                if t != want {
                    return Err(perr(
                        param.span().0,
                        format!("expected type {want} in aggregation parameter, got {t}"),
                    ));
                }
            }
        }
        Expr::Call(c) => check_call(c, input)?,
        Expr::Binary(b) => check_binary(b, input)?,
    }
    Ok(typ)
}

fn check_selector(vs: &VectorSelector) -> Result<(), Perr> {
    if let Some(name) = &vs.name {
        let before = vs.matchers.len().saturating_sub(1);
        if let Some(m) = vs.matchers[..before].iter().find(|m| m.name == "__name__") {
            return Err(perr(
                vs.span.0,
                format!(
                    "metric name must not be set twice: {} or {}",
                    go_quote(name),
                    go_quote(&m.value)
                ),
            ));
        }
        return Ok(());
    }
    if !vs.bypass_empty_matcher_check && vs.matchers.iter().all(|m| m.matches_empty()) {
        return Err(perr(
            vs.span.0,
            "vector selector must contain at least one non-empty matcher",
        ));
    }
    Ok(())
}

fn check_call(c: &mut Call, input: &str) -> Result<(), Perr> {
    let f = c.func;
    let nargs = f.arg_types.len();
    let got = c.args.len();
    let name = go_quote(f.name);
    if f.variadic == 0 {
        if nargs != got {
            return Err(perr(
                c.span.0,
                format!("expected {nargs} argument(s) in call to {name}, got {got}"),
            ));
        }
    } else {
        let min = nargs - 1;
        if min > got {
            return Err(perr(
                c.span.0,
                format!("expected at least {min} argument(s) in call to {name}, got {got}"),
            ));
        }
        let max = min as i64 + f.variadic as i64;
        if f.variadic > 0 && (got as i64) > max {
            return Err(perr(
                c.span.0,
                format!("expected at most {max} argument(s) in call to {name}, got {got}"),
            ));
        }
    }
    if f.name == "info" {
        if let Some(arg) = c.args.get_mut(1) {
            let t = arg.value_type();
            if t != ValueType::InstantVector {
                return Err(perr(
                    c.span.0,
                    format!("expected type instant vector in call to function {name}, got {t}"),
                ));
            }
            match arg {
                Expr::VectorSelector(vs) if vs.name.is_some() => {
                    return Err(perr(
                        vs.span.0,
                        "expected label selectors only, got vector selector instead",
                    ))
                }
                Expr::VectorSelector(vs) => vs.bypass_empty_matcher_check = true,
                other => return Err(perr(other.span().0, "expected label selectors only")),
            }
        }
    }
    for (i, arg) in c.args.iter_mut().enumerate() {
        let idx = if i >= nargs {
            if f.variadic == 0 {
                break;
            }
            nargs.saturating_sub(1)
        } else {
            i
        };
        let t = check(arg, input)?;
        if let Some(want) = f.arg_types.get(idx) {
            if t != *want {
                return Err(perr(
                    arg.span().0,
                    format!("expected type {want} in call to function {name}, got {t}"),
                ));
            }
        }
    }
    Ok(())
}

/// Start of the operator between the operands, for operator-level errors.
fn op_pos(b: &BinaryExpr, input: &str) -> usize {
    let mut p = b.lhs.span().1;
    let bytes = input.as_bytes();
    while p < bytes.len() && matches!(bytes[p], b' ' | b'\t' | b'\n' | b'\r') {
        p += 1;
    }
    p
}

fn check_binary(b: &mut BinaryExpr, input: &str) -> Result<(), Perr> {
    let lt = check(&mut b.lhs, input)?;
    let rt = check(&mut b.rhs, input)?;
    if b.return_bool && !b.op.is_comparison() {
        return Err(perr(
            op_pos(b, input),
            "bool modifier can only be used on comparison operators",
        ));
    }
    if b.op.is_comparison() && !b.return_bool && lt == ValueType::Scalar && rt == ValueType::Scalar
    {
        return Err(perr(
            op_pos(b, input),
            "comparisons between scalars must use BOOL modifier",
        ));
    }
    let opp = op_pos(b, input);
    if let Some(vm) = b.matching.as_mut() {
        if b.op.is_set() && vm.card == Cardinality::OneToOne {
            vm.card = Cardinality::ManyToMany;
        }
        if vm.on {
            if let Some(l) = vm.labels.iter().find(|l| vm.include.contains(l)) {
                return Err(perr(
                    opp,
                    format!(
                        "label {} must not occur in ON and GROUP clause at once",
                        go_quote(l)
                    ),
                ));
            }
        }
    }
    let ok = |t: ValueType| t == ValueType::Scalar || t == ValueType::InstantVector;
    if !ok(lt) {
        return Err(perr(
            b.lhs.span().0,
            "binary expression must contain only scalar and instant vector types",
        ));
    }
    if !ok(rt) {
        return Err(perr(
            b.rhs.span().0,
            "binary expression must contain only scalar and instant vector types",
        ));
    }
    let both_vectors = lt == ValueType::InstantVector && rt == ValueType::InstantVector;
    let has_fill = b
        .matching
        .as_ref()
        .is_some_and(|vm| vm.fill_lhs.is_some() || vm.fill_rhs.is_some());
    if !both_vectors {
        if b.matching.as_ref().is_some_and(|vm| !vm.labels.is_empty()) {
            return Err(perr(
                b.span.0,
                "vector matching only allowed between instant vectors",
            ));
        }
        if has_fill {
            return Err(perr(
                b.span.0,
                "filling in missing series only allowed between instant vectors",
            ));
        }
        b.matching = None;
    } else if b.op.is_set() {
        if let Some(vm) = &b.matching {
            if matches!(vm.card, Cardinality::OneToMany | Cardinality::ManyToOne) {
                return Err(perr(
                    b.span.0,
                    format!(
                        "no grouping allowed for {} operation",
                        go_quote(b.op.as_str())
                    ),
                ));
            }
        }
        if has_fill {
            return Err(perr(
                b.span.0,
                "filling in missing series not allowed for set operators",
            ));
        }
    }
    if (lt == ValueType::Scalar || rt == ValueType::Scalar) && b.op.is_set() {
        return Err(perr(
            b.span.0,
            format!(
                "set operator {} not allowed in binary scalar expression",
                go_quote(b.op.as_str())
            ),
        ));
    }
    Ok(())
}
