//! Canonical PromQL text, as Prometheus' `String()` methods print it. Used
//! for `/api/v1/format_query` and to compare parse trees.

use std::fmt::{self, Display, Formatter, Write};

use super::ast::*;
use crate::model::gofmt::{
    format_duration, format_float, format_go_v, go_quote, is_legacy_label_name,
};
use crate::model::MatchType;

fn write_labels(f: &mut Formatter<'_>, labels: &[String]) -> fmt::Result {
    for (i, l) in labels.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        if is_legacy_label_name(l) {
            f.write_str(l)?;
        } else {
            f.write_str(&go_quote(l))?;
        }
    }
    Ok(())
}

fn write_at(f: &mut Formatter<'_>, at: Option<AtModifier>) -> fmt::Result {
    match at {
        Some(AtModifier::Timestamp(ms)) => write!(f, " @ {:.3}", ms as f64 / 1000.0),
        Some(AtModifier::Start) => f.write_str(" @ start()"),
        Some(AtModifier::End) => f.write_str(" @ end()"),
        None => Ok(()),
    }
}

fn write_offset(f: &mut Formatter<'_>, offset: i64, expr: &Option<DurationExpr>) -> fmt::Result {
    if let Some(e) = expr {
        write!(f, " offset {e}")
    } else if offset > 0 {
        write!(f, " offset {}", format_duration(offset))
    } else if offset < 0 {
        write!(f, " offset -{}", format_duration(-offset))
    } else {
        Ok(())
    }
}

fn write_extended(f: &mut Formatter<'_>, vs: &VectorSelector) -> fmt::Result {
    if vs.anchored {
        f.write_str(" anchored")
    } else if vs.smoothed {
        f.write_str(" smoothed")
    } else {
        Ok(())
    }
}

/// The selector without `@` and offset: `name{a="b",...}`.
fn write_selector_base(f: &mut Formatter<'_>, vs: &VectorSelector) -> fmt::Result {
    let name = vs.name.as_deref().unwrap_or("");
    let mut parts: Vec<String> = vs
        .matchers
        .iter()
        .filter(|m| {
            !(m.name == "__name__"
                && m.kind == MatchType::Equal
                && m.value == name
                && !name.is_empty())
        })
        .map(|m| {
            let mut s = String::new();
            if is_legacy_label_name(&m.name) {
                s.push_str(&m.name);
            } else {
                s.push_str(&go_quote(&m.name));
            }
            s.push_str(m.kind.as_str());
            s.push_str(&go_quote(&m.value));
            s
        })
        .collect();
    f.write_str(name)?;
    if !parts.is_empty() {
        parts.sort();
        f.write_char('{')?;
        f.write_str(&parts.join(","))?;
        f.write_char('}')?;
    }
    Ok(())
}

impl Display for Expr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        match self {
            Expr::NumberLiteral(n) => {
                if n.duration {
                    let ms = (n.value * 1000.0).round() as i64;
                    if ms < 0 {
                        write!(f, "-{}", format_duration(-ms))
                    } else {
                        f.write_str(&format_duration(ms))
                    }
                } else {
                    f.write_str(&format_float(n.value))
                }
            }
            Expr::StringLiteral(s) => match &s.invalid_utf8 {
                Some(b) => f.write_str(&crate::model::gofmt::go_quote_bytes(b)),
                None => f.write_str(&go_quote(&s.value)),
            },
            Expr::VectorSelector(vs) => {
                write_selector_base(f, vs)?;
                write_at(f, vs.at)?;
                write_extended(f, vs)?;
                write_offset(f, vs.offset, &vs.offset_expr)
            }
            Expr::MatrixSelector(ms) => {
                write_selector_base(f, &ms.selector)?;
                match &ms.range_expr {
                    Some(e) => write!(f, "[{e}]")?,
                    None => write!(f, "[{}]", format_duration(ms.range))?,
                }
                write_extended(f, &ms.selector)?;
                write_at(f, ms.selector.at)?;
                write_offset(f, ms.selector.offset, &ms.selector.offset_expr)
            }
            Expr::SubqueryExpr(sq) => {
                match &sq.range_expr {
                    Some(e) => write!(f, "{}[{e}:", sq.expr)?,
                    None => write!(f, "{}[{}:", sq.expr, format_duration(sq.range))?,
                }
                if sq.step != 0 {
                    f.write_str(&format_duration(sq.step))?;
                } else if let Some(e) = &sq.step_expr {
                    write!(f, "{e}")?;
                }
                f.write_char(']')?;
                write_at(f, sq.at)?;
                write_offset(f, sq.offset, &sq.offset_expr)
            }
            Expr::Unary(u) => {
                let op = if u.op == UnaryOp::Neg { "-" } else { "+" };
                write!(f, "{op}{}", u.expr)
            }
            Expr::Binary(b) => {
                write!(f, "{} {}", b.lhs, b.op.as_str())?;
                if b.return_bool {
                    f.write_str(" bool")?;
                }
                if let Some(vm) = &b.matching {
                    let grouped =
                        matches!(vm.card, Cardinality::ManyToOne | Cardinality::OneToMany);
                    if !vm.labels.is_empty() || vm.on || grouped {
                        f.write_str(if vm.on { " on (" } else { " ignoring (" })?;
                        write_labels(f, &vm.labels)?;
                        f.write_char(')')?;
                    }
                    if grouped {
                        f.write_str(if vm.card == Cardinality::ManyToOne {
                            " group_left ("
                        } else {
                            " group_right ("
                        })?;
                        write_labels(f, &vm.include)?;
                        f.write_char(')')?;
                    }
                    match (vm.fill_lhs, vm.fill_rhs) {
                        (Some(l), Some(_)) if vm.fill_both => {
                            write!(f, " fill ({})", format_go_v(l))?
                        }
                        (l, r) => {
                            if let Some(l) = l {
                                write!(f, " fill_left ({})", format_go_v(l))?;
                            }
                            if let Some(r) = r {
                                write!(f, " fill_right ({})", format_go_v(r))?;
                            }
                        }
                    }
                }
                write!(f, " {}", b.rhs)
            }
            Expr::Paren(p) => write!(f, "({})", p.expr),
            Expr::Call(c) => {
                write!(f, "{}(", c.func.name)?;
                for (i, a) in c.args.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{a}")?;
                }
                f.write_char(')')
            }
            Expr::Aggregate(a) => {
                f.write_str(a.op.as_str())?;
                if a.without {
                    f.write_str(" without (")?;
                    write_labels(f, &a.grouping)?;
                    f.write_str(") ")?;
                } else if !a.grouping.is_empty() {
                    f.write_str(" by (")?;
                    write_labels(f, &a.grouping)?;
                    f.write_str(") ")?;
                }
                f.write_char('(')?;
                if let Some(p) = &a.param {
                    write!(f, "{p}, ")?;
                }
                write!(f, "{})", a.expr)
            }
        }
    }
}

impl Display for DurationExpr {
    fn fmt(&self, f: &mut Formatter<'_>) -> fmt::Result {
        if self.wrapped {
            f.write_char('(')?;
        }
        match &self.kind {
            DurationKind::Number { seconds, duration } => {
                if *duration {
                    let ms = (seconds * 1000.0).round() as i64;
                    if ms < 0 {
                        write!(f, "-{}", format_duration(-ms))?;
                    } else {
                        f.write_str(&format_duration(ms))?;
                    }
                } else {
                    f.write_str(&format_float(*seconds))?;
                }
            }
            DurationKind::Neg(e) => write!(f, "-{e}")?,
            DurationKind::Binary { op, lhs, rhs } => write!(f, "{lhs} {} {rhs}", op.as_str())?,
            DurationKind::Step => f.write_str("step()")?,
            DurationKind::Range => f.write_str("range()")?,
            DurationKind::MinOf(a, b) => write!(f, "min_of({a}, {b})")?,
            DurationKind::MaxOf(a, b) => write!(f, "max_of({a}, {b})")?,
        }
        if self.wrapped {
            f.write_char(')')?;
        }
        Ok(())
    }
}
