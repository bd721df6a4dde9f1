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
    pub value: String,
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
    pub at: Option<AtModifier>,
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
    pub span: Span,
}

#[derive(Debug, Clone)]
pub struct SubqueryExpr {
    pub expr: Expr,
    pub range: i64,
    /// Step in milliseconds; 0 means the default evaluation interval.
    pub step: i64,
    pub offset: i64,
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
            And => "and",
            Or => "or",
            Unless => "unless",
        }
    }

    pub fn is_comparison(self) -> bool {
        use BinaryOp::*;
        matches!(self, Eql | Neq | Gtr | Lss | Gte | Lte)
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
            Eql | Neq | Gtr | Lss | Gte | Lte => 3,
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
