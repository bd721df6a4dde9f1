//! The PromQL function table: argument types, variadic count and return
//! type, as in Prometheus 3.x, plus `holt_winters` from 2.x so older rule
//! files keep parsing.

use super::ast::ValueType;

/// Signature of a PromQL function.
#[derive(Debug, PartialEq, Eq)]
pub struct Function {
    pub name: &'static str,
    pub arg_types: &'static [ValueType],
    /// 0: exactly `arg_types.len()` arguments; n > 0: between `len-1` and
    /// `len-1+n` arguments, extra ones typed like the last; -1: at least
    /// `len-1` arguments, unbounded.
    pub variadic: i32,
    pub return_type: ValueType,
    /// Behind `--enable-feature=promql-experimental-functions` upstream;
    /// accepted here, recorded for the engine.
    pub experimental: bool,
}

use ValueType::{InstantVector as V, RangeVector as M, Scalar as S, String as Str};

macro_rules! f {
    ($name:literal, [$($t:expr),*], $var:expr, $ret:expr) => {
        Function { name: $name, arg_types: &[$($t),*], variadic: $var, return_type: $ret, experimental: false }
    };
    ($name:literal, [$($t:expr),*], $var:expr, $ret:expr, exp) => {
        Function { name: $name, arg_types: &[$($t),*], variadic: $var, return_type: $ret, experimental: true }
    };
}

/// Every known function, sorted by name for binary search.
static FUNCTIONS: &[Function] = &[
    f!("abs", [V], 0, V),
    f!("absent", [V], 0, V),
    f!("absent_over_time", [M], 0, V),
    f!("acos", [V], 0, V),
    f!("acosh", [V], 0, V),
    f!("asin", [V], 0, V),
    f!("asinh", [V], 0, V),
    f!("atan", [V], 0, V),
    f!("atanh", [V], 0, V),
    f!("avg_over_time", [M], 0, V),
    f!("ceil", [V], 0, V),
    f!("changes", [M], 0, V),
    f!("clamp", [V, S, S], 0, V),
    f!("clamp_max", [V, S], 0, V),
    f!("clamp_min", [V, S], 0, V),
    f!("cos", [V], 0, V),
    f!("cosh", [V], 0, V),
    f!("count_over_time", [M], 0, V),
    f!("day_of_month", [V], 1, V),
    f!("day_of_week", [V], 1, V),
    f!("day_of_year", [V], 1, V),
    f!("days_in_month", [V], 1, V),
    f!("deg", [V], 0, V),
    f!("delta", [M], 0, V),
    f!("deriv", [M], 0, V),
    f!("double_exponential_smoothing", [M, S, S], 0, V, exp),
    f!("end", [], 0, S, exp),
    f!("exp", [V], 0, V),
    f!("first_over_time", [M], 0, V, exp),
    f!("floor", [V], 0, V),
    f!("histogram_avg", [V], 0, V),
    f!("histogram_count", [V], 0, V),
    f!("histogram_fraction", [S, S, V], 0, V),
    f!("histogram_quantile", [S, V], 0, V),
    f!("histogram_quantiles", [V, Str, S, S], 9, V, exp),
    f!("histogram_stddev", [V], 0, V),
    f!("histogram_stdvar", [V], 0, V),
    f!("histogram_sum", [V], 0, V),
    f!("holt_winters", [M, S, S], 0, V),
    f!("hour", [V], 1, V),
    f!("idelta", [M], 0, V),
    f!("increase", [M], 0, V),
    f!("info", [V, V], 1, V, exp),
    f!("integral", [M, S], 1, V, exp),
    f!("irate", [M], 0, V),
    f!("label_join", [V, Str, Str, Str], -1, V),
    f!("label_replace", [V, Str, Str, Str, Str], 0, V),
    f!("last_over_time", [M], 0, V),
    f!("ln", [V], 0, V),
    f!("log10", [V], 0, V),
    f!("log2", [V], 0, V),
    f!("mad_over_time", [M], 0, V, exp),
    f!("max_of", [S, S], 0, S, exp),
    f!("max_over_time", [M], 0, V),
    f!("min_of", [S, S], 0, S, exp),
    f!("min_over_time", [M], 0, V),
    f!("minute", [V], 1, V),
    f!("month", [V], 1, V),
    f!("pi", [], 0, S),
    f!("predict_linear", [M, S], 0, V),
    f!("present_over_time", [M], 0, V),
    f!("quantile_over_time", [S, M], 0, V),
    f!("rad", [V], 0, V),
    f!("range", [], 0, S, exp),
    f!("rate", [M], 0, V),
    f!("resets", [M], 0, V),
    f!("round", [V, S], 1, V),
    f!("scalar", [V], 0, S),
    f!("sgn", [V], 0, V),
    f!("sin", [V], 0, V),
    f!("sinh", [V], 0, V),
    f!("sort", [V], 0, V),
    f!("sort_by_label", [V, Str], -1, V, exp),
    f!("sort_by_label_desc", [V, Str], -1, V, exp),
    f!("sort_desc", [V], 0, V),
    f!("sqrt", [V], 0, V),
    f!("start", [], 0, S, exp),
    f!("start_timestamp", [V], 0, V, exp),
    f!("stddev_over_time", [M], 0, V),
    f!("stdvar_over_time", [M], 0, V),
    f!("step", [], 0, S, exp),
    f!("sum_over_time", [M], 0, V),
    f!("tan", [V], 0, V),
    f!("tanh", [V], 0, V),
    f!("time", [], 0, S),
    f!("timestamp", [V], 0, V),
    f!("ts_of_first_over_time", [M], 0, V, exp),
    f!("ts_of_last_over_time", [M], 0, V, exp),
    f!("ts_of_max_over_time", [M], 0, V, exp),
    f!("ts_of_min_over_time", [M], 0, V, exp),
    f!("vector", [S], 0, V),
    f!("year", [V], 1, V),
];

/// Looks a function up by its exact (case-sensitive) name.
pub fn get_function(name: &str) -> Option<&'static Function> {
    FUNCTIONS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .and_then(|i| FUNCTIONS.get(i))
}

/// All functions, sorted by name.
pub fn all_functions() -> &'static [Function] {
    FUNCTIONS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_and_complete() {
        assert!(FUNCTIONS.windows(2).all(|w| w[0].name < w[1].name));
        for n in [
            "rate",
            "holt_winters",
            "double_exponential_smoothing",
            "info",
            "sort_by_label",
            "mad_over_time",
            "ts_of_max_over_time",
            "first_over_time",
            "histogram_quantile",
        ] {
            assert!(get_function(n).is_some(), "{n}");
        }
        assert!(get_function("rate_per_minute").is_none());
        assert_eq!(get_function("label_join").map(|f| f.variadic), Some(-1));
    }
}
