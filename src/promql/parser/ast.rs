//! The PromQL syntax tree. Every node carries its byte span in the input so
//! errors found later (type checks, evaluation) can point at the source.

use super::functions::Function;
use crate::model::Matcher;

/// Byte offsets `(start, end)` into the parsed input, end exclusive.
pub type Span = (usize, usize);

/// The type of value an expression evaluates to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Scalar,
    InstantVector,
    RangeVector,
    String,
}

impl ValueType {
    /// Prometheus' internal name (`vector`, `matrix`, ...), which a few error
    /// messages print instead of the documented name.
    pub fn internal_name(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::InstantVector => "vector",
            ValueType::RangeVector => "matrix",
            ValueType::String => "string",
        }
    }
}

impl std::fmt::Display for ValueType {
    /// The documented name, as Prometheus' `DocumentedType` prints it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ValueType::Scalar => "scalar",
            ValueType::InstantVector => "instant vector",
            ValueType::RangeVector => "range vector",
            ValueType::String => "string",
        })
    }
}

/// A PromQL expression. Large variants are boxed so deep trees stay cheap
/// to move and the recursive parser's frames stay small.
#[derive(Debug, Clone)]
pub enum Expr {
    NumberLiteral(NumberLiteral),
    StringLiteral(Box<StringLiteral>),
    VectorSelector(Box<VectorSelector>),
    MatrixSelector(Box<MatrixSelector>),
    SubqueryExpr(Box<SubqueryExpr>),
    Unary(Box<UnaryExpr>),
    Binary(Box<BinaryExpr>),
    Paren(Box<ParenExpr>),
    Call(Box<Call>),
    Aggregate(Box<AggregateExpr>),
}

#[derive(Debug, Clone)]
pub struct NumberLiteral {
    pub value: f64,
    /// Written as a duration (`5m` in number position); printed back as one.
    pub duration: bool,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct StringLiteral {
    /// The text (an invalid byte replaced by U+FFFD).
    pub value: String,
    /// The bytes as Go keeps them, when byte escapes (`"a\xc5z"`) made
    /// the literal invalid UTF-8; `None` for every valid literal.
    pub invalid_utf8: Option<Vec<u8>>,
    pub span: Span,
}

/// The `@` modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtModifier {
    /// Milliseconds since the epoch.
    Timestamp(i64),
    Start,
    End,
}

#[derive(Debug, Clone)]
pub struct VectorSelector {
    /// Metric name written before the braces, if any.
    pub name: Option<String>,
    /// All matchers; a name written before the braces is the last one, as an
    /// `__name__` equality matcher (the Prometheus layout).
    pub matchers: Vec<Matcher>,
    /// Offset in milliseconds (negative allowed), 0 when absent.
    pub offset: i64,
    /// Offset given as a duration expression (`offset (1h * 2)`).
    pub offset_expr: Option<DurationExpr>,
    pub at: Option<AtModifier>,
    /// `anchored` / `smoothed` range modifiers (Prometheus 3.x, experimental
    /// upstream).
    pub anchored: bool,
    pub smoothed: bool,
    /// Set for the second argument of `info()`, which may match everything.
    pub bypass_empty_matcher_check: bool,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct MatrixSelector {
    /// Holds the offset and `@` written after the range, as Prometheus does.
    pub selector: VectorSelector,
    /// Range in milliseconds.
    pub range: i64,
    /// Range given as a duration expression (`[5m + 1m]`, `[step()]`).
    pub range_expr: Option<DurationExpr>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct SubqueryExpr {
    pub expr: Expr,
    pub range: i64,
    pub range_expr: Option<DurationExpr>,
    /// Step in milliseconds; 0 means the default evaluation interval.
    pub step: i64,
    pub step_expr: Option<DurationExpr>,
    pub offset: i64,
    pub offset_expr: Option<DurationExpr>,
    pub at: Option<AtModifier>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Neg,
    Pos,
}

#[derive(Debug, Clone)]
pub struct UnaryExpr {
    pub op: UnaryOp,
    pub expr: Expr,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eql,
    Neq,
    Gtr,
    Lss,
    Gte,
    Lte,
    /// `</`: a native histogram's observations below the bound.
    TrimUpper,
    /// `>/`: a native histogram's observations above the bound.
    TrimLower,
    And,
    Or,
    Unless,
}

impl BinaryOp {
    pub fn as_str(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            Mod => "%",
            Pow => "^",
            Atan2 => "atan2",
            Eql => "==",
            Neq => "!=",
            Gtr => ">",
            Lss => "<",
            Gte => ">=",
            Lte => "<=",
            TrimUpper => "</",
            TrimLower => ">/",
            And => "and",
            Or => "or",
            Unless => "unless",
        }
    }

    pub fn is_comparison(self) -> bool {
        use BinaryOp::*;
        matches!(self, Eql | Neq | Gtr | Lss | Gte | Lte)
    }

    /// The native-histogram trim operators `</` and `>/`.
    pub fn is_trim(self) -> bool {
        matches!(self, BinaryOp::TrimUpper | BinaryOp::TrimLower)
    }

    pub fn is_set(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
    }

    /// Binding strength, higher binds tighter (Prometheus' yacc table).
    pub fn precedence(self) -> u8 {
        use BinaryOp::*;
        match self {
            Or => 1,
            And | Unless => 2,
            Eql | Neq | Gtr | Lss | Gte | Lte | TrimUpper | TrimLower => 3,
            Add | Sub => 4,
            Mul | Div | Mod | Atan2 => 5,
            Pow => 6,
        }
    }

    pub fn is_right_assoc(self) -> bool {
        self == BinaryOp::Pow
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cardinality {
    OneToOne,
    ManyToOne,
    OneToMany,
    ManyToMany,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VectorMatching {
    pub card: Cardinality,
    /// `on(...)` when true, `ignoring(...)` otherwise.
    pub on: bool,
    pub labels: Vec<String>,
    /// Labels of `group_left(...)` / `group_right(...)`.
    pub include: Vec<String>,
    /// `fill_left(v)`: value used for series missing on the left side.
    pub fill_lhs: Option<f64>,
    /// `fill_right(v)`: value used for series missing on the right side.
    pub fill_rhs: Option<f64>,
    /// Written as `fill(v)`, which sets both sides (printed back that way).
    pub fill_both: bool,
}

#[derive(Debug, Clone)]
pub struct BinaryExpr {
    pub op: BinaryOp,
    pub lhs: Expr,
    pub rhs: Expr,
    pub return_bool: bool,
    /// `None` once type checking found a scalar operand.
    pub matching: Option<VectorMatching>,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct ParenExpr {
    pub expr: Expr,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct Call {
    pub func: &'static Function,
    pub args: Vec<Expr>,
    pub span: Span,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggregateOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    CountValues,
    Quantile,
    Limitk,
    LimitRatio,
}

impl AggregateOp {
    pub fn as_str(self) -> &'static str {
        use AggregateOp::*;
        match self {
            Sum => "sum",
            Avg => "avg",
            Count => "count",
            Min => "min",
            Max => "max",
            Group => "group",
            Stddev => "stddev",
            Stdvar => "stdvar",
            Topk => "topk",
            Bottomk => "bottomk",
            CountValues => "count_values",
            Quantile => "quantile",
            Limitk => "limitk",
            LimitRatio => "limit_ratio",
        }
    }

    pub fn from_keyword(s: &str) -> Option<Self> {
        use AggregateOp::*;
        Some(match s.to_ascii_lowercase().as_str() {
            "sum" => Sum,
            "avg" => Avg,
            "count" => Count,
            "min" => Min,
            "max" => Max,
            "group" => Group,
            "stddev" => Stddev,
            "stdvar" => Stdvar,
            "topk" => Topk,
            "bottomk" => Bottomk,
            "count_values" => CountValues,
            "quantile" => Quantile,
            "limitk" => Limitk,
            "limit_ratio" => LimitRatio,
            _ => return None,
        })
    }

    /// Whether the aggregation takes a parameter before the vector.
    pub fn has_param(self) -> bool {
        use AggregateOp::*;
        matches!(
            self,
            Topk | Bottomk | CountValues | Quantile | Limitk | LimitRatio
        )
    }
}

#[derive(Debug, Clone)]
pub struct AggregateExpr {
    pub op: AggregateOp,
    pub expr: Expr,
    pub param: Option<Expr>,
    pub grouping: Vec<String>,
    pub without: bool,
    pub span: Span,
}

impl Expr {
    /// Byte span of the expression in the input.
    pub fn span(&self) -> Span {
        match self {
            Expr::NumberLiteral(n) => n.span,
            Expr::StringLiteral(s) => s.span,
            Expr::VectorSelector(v) => v.span,
            Expr::MatrixSelector(m) => m.span,
            Expr::SubqueryExpr(s) => s.span,
            Expr::Unary(u) => u.span,
            Expr::Binary(b) => b.span,
            Expr::Paren(p) => p.span,
            Expr::Call(c) => c.span,
            Expr::Aggregate(a) => a.span,
        }
    }

    /// The type this expression evaluates to, as Prometheus' `Type()`.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::NumberLiteral(_) => ValueType::Scalar,
            Expr::StringLiteral(_) => ValueType::String,
            Expr::VectorSelector(_) => ValueType::InstantVector,
            Expr::MatrixSelector(_) | Expr::SubqueryExpr(_) => ValueType::RangeVector,
            Expr::Unary(u) => u.expr.value_type(),
            Expr::Binary(b) => {
                if b.lhs.value_type() == ValueType::Scalar
                    && b.rhs.value_type() == ValueType::Scalar
                {
                    ValueType::Scalar
                } else {
                    ValueType::InstantVector
                }
            }
            Expr::Paren(p) => p.expr.value_type(),
            Expr::Call(c) => c.func.return_type,
            Expr::Aggregate(_) => ValueType::InstantVector,
        }
    }
}

/// A duration expression (Prometheus 3.x, experimental upstream): used for
/// ranges, subquery steps and offsets, evaluated per query because `step()`
/// and `range()` depend on it.
#[derive(Debug, Clone, PartialEq)]
pub struct DurationExpr {
    pub kind: DurationKind,
    /// Written inside parentheses; printed back with them.
    pub wrapped: bool,
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DurationKind {
    /// Seconds; `duration` when written like `5m`.
    Number {
        seconds: f64,
        duration: bool,
    },
    /// Unary minus (unary plus is dropped, as upstream).
    Neg(Box<DurationExpr>),
    Binary {
        op: BinaryOp,
        lhs: Box<DurationExpr>,
        rhs: Box<DurationExpr>,
    },
    Step,
    Range,
    MinOf(Box<DurationExpr>, Box<DurationExpr>),
    MaxOf(Box<DurationExpr>, Box<DurationExpr>),
}

impl DurationExpr {
    /// Evaluates to seconds given the query step and range (both seconds).
    pub fn eval_seconds(&self, step: f64, range: f64) -> f64 {
        match &self.kind {
            DurationKind::Number { seconds, .. } => *seconds,
            DurationKind::Neg(e) => -e.eval_seconds(step, range),
            DurationKind::Step => step,
            DurationKind::Range => range,
            DurationKind::MinOf(a, b) => {
                a.eval_seconds(step, range).min(b.eval_seconds(step, range))
            }
            DurationKind::MaxOf(a, b) => {
                a.eval_seconds(step, range).max(b.eval_seconds(step, range))
            }
            DurationKind::Binary { op, lhs, rhs } => {
                let (l, r) = (lhs.eval_seconds(step, range), rhs.eval_seconds(step, range));
                match op {
                    BinaryOp::Add => l + r,
                    BinaryOp::Sub => l - r,
                    BinaryOp::Mul => l * r,
                    BinaryOp::Div => l / r,
                    BinaryOp::Mod => l % r,
                    BinaryOp::Pow => l.powf(r),
                    _ => f64::NAN,
                }
            }
        }
    }

    /// A plain literal, which Prometheus stores as a fixed duration.
    pub fn as_literal_ms(&self) -> Option<i64> {
        match self.kind {
            DurationKind::Number { seconds, .. } => Some((seconds * 1000.0).round() as i64),
            _ => None,
        }
    }
}
