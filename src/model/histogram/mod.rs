//! Native histograms: Prometheus' sparse, exponentially bucketed histograms
//! (schemas -4..=8) and the custom-buckets variant NHCB (schema -53).
//!
//! Two representations exist, as in Prometheus:
//!
//! * [`Histogram`]: integer counts, buckets stored as deltas to the previous
//!   bucket (the first one absolute). This is what instrumentation exposes and
//!   what the integer histogram chunk encoding stores.
//! * [`FloatHistogram`]: float counts, buckets stored as absolute values. Every
//!   computation (PromQL, aggregation, rates) happens on this one.
//!
//! Buckets are addressed by an index: for a standard schema `s`, bucket `i`
//! covers `(base^(i-1), base^i]` with `base = 2^(2^-s)` on the positive side
//! and the mirror image on the negative side; observations with an absolute
//! value at most the zero threshold go to the zero bucket. For custom buckets,
//! bucket `i` covers `(custom_values[i-1], custom_values[i]]`, the first one
//! starting at -Inf and the last one ending at +Inf. Which buckets exist is
//! described by spans: each span skips `offset` indices (the first one relative
//! to index 0) and then covers `length` consecutive buckets.
//!
//! The arithmetic here works on expanded `(index, count)` lists rather than on
//! spans directly: it is simpler to get right, and the histograms PromQL
//! handles have at most a few hundred buckets.
//!
//! [`notation`] parses the test-series notation (`{{schema:0 count:4 ...}}`);
//! [`functions`] holds the PromQL functions over one histogram.

mod bounds;
pub mod functions;
pub mod notation;

use std::fmt;

pub use functions::{
    histogram_avg, histogram_count, histogram_fraction, histogram_quantile, histogram_stddev,
    histogram_stdvar, histogram_sum, QuantileInfo,
};

/// Lowest standard (exponential) schema.
pub const EXPONENTIAL_SCHEMA_MIN: i32 = -4;
/// Highest standard (exponential) schema.
pub const EXPONENTIAL_SCHEMA_MAX: i32 = 8;
/// Lowest schema a decoder should tolerate (reserved for future use).
pub const EXPONENTIAL_SCHEMA_MIN_RESERVED: i32 = -9;
/// Highest schema a decoder should tolerate (reserved for future use).
pub const EXPONENTIAL_SCHEMA_MAX_RESERVED: i32 = 52;
/// The schema of histograms with custom bucket boundaries (NHCB).
pub const CUSTOM_BUCKETS_SCHEMA: i32 = -53;

/// Whether `s` is the custom-buckets schema.
pub fn is_custom_buckets_schema(s: i32) -> bool {
    s == CUSTOM_BUCKETS_SCHEMA
}

/// Whether `s` is one of the standard exponential schemas.
pub fn is_exponential_schema(s: i32) -> bool {
    (EXPONENTIAL_SCHEMA_MIN..=EXPONENTIAL_SCHEMA_MAX).contains(&s)
}

/// Whether `s` is a schema this version can compute with.
pub fn is_valid_schema(s: i32) -> bool {
    is_custom_buckets_schema(s) || is_exponential_schema(s)
}

/// Whether `s` is a schema a decoder should accept (valid or reserved).
pub fn is_known_schema(s: i32) -> bool {
    is_custom_buckets_schema(s)
        || (EXPONENTIAL_SCHEMA_MIN_RESERVED..=EXPONENTIAL_SCHEMA_MAX_RESERVED).contains(&s)
}

/// A run of consecutive buckets: `offset` buckets skipped (relative to the
/// end of the previous span, or to index 0 for the first span), then
/// `length` buckets present.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    pub offset: i32,
    pub length: u32,
}

impl Span {
    pub fn new(offset: i32, length: u32) -> Span {
        Span { offset, length }
    }
}

/// What the producer knows about a counter reset before this sample.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CounterResetHint {
    /// Nothing known; readers detect resets by comparing with the previous sample.
    #[default]
    Unknown,
    /// A counter reset happened right before this sample.
    Reset,
    /// No counter reset happened.
    NotReset,
    /// A gauge histogram: counts go up and down, resets do not apply.
    Gauge,
}

/// The errors Prometheus' histogram validation and arithmetic return, with
/// its texts (the context in front of the text is Prometheus', too).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum HistogramError {
    #[error("{0}histogram's observation count should be at least the number of observations found in the buckets")]
    CountNotBigEnough(String),
    #[error("{0}histogram's observation count should equal the number of observations found in the buckets (in absence of NaN)")]
    CountMismatch(String),
    #[error("{0}histogram's observation count is negative")]
    NegativeCount(String),
    #[error("{0}histogram has a bucket whose observation count is negative")]
    NegativeBucketCount(String),
    #[error("{0}histogram has a span whose offset is negative")]
    SpanNegativeOffset(String),
    #[error("{0}histogram spans specify different number of buckets than provided")]
    SpansBucketsMismatch(String),
    #[error("{0}histogram custom bounds are too few")]
    CustomBucketsMismatch(String),
    #[error("{0}histogram custom bounds must be in strictly increasing order")]
    CustomBucketsInvalid(String),
    #[error("{0}histogram custom bounds must be finite")]
    CustomBucketsInfinite(String),
    #[error("custom buckets: histogram custom bounds must not be NaN")]
    CustomBucketsNaN,
    #[error("cannot apply this operation on histograms with a mix of exponential and custom bucket schemas")]
    IncompatibleSchema,
    #[error("custom buckets: must have zero count of 0")]
    CustomBucketsZeroCount,
    #[error("custom buckets: must have zero threshold of 0")]
    CustomBucketsZeroThreshold,
    #[error("custom buckets: must not have negative spans")]
    CustomBucketsNegativeSpans,
    #[error("custom buckets: must not have negative buckets")]
    CustomBucketsNegativeBuckets,
    #[error("histogram with exponential schema must not have custom bounds")]
    ExponentialSchemaCustomBounds,
    #[error("histogram has an invalid schema, which must be between -4 and 8 for exponential buckets, or -53 for custom buckets, got schema {0}")]
    InvalidSchema(i32),
    #[error("histogram has an unknown schema, which must be between -9 and 52 for exponential buckets, or -53 for custom buckets, got schema {0}")]
    UnknownSchema(i32),
    #[error("cannot reduce resolution from schema {from} to {to}")]
    CannotReduce { from: i32, to: i32 },
}

/// One bucket with its boundaries, as the bucket iterators hand it out.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    pub lower: f64,
    pub upper: f64,
    pub lower_inclusive: bool,
    pub upper_inclusive: bool,
    pub count: f64,
    /// Bucket index in the histogram's schema (meaningless for the zero bucket).
    pub index: i32,
}

impl Bucket {
    /// The fraction of the bucket's observations below `v`, interpolating
    /// linearly or on a logarithmic scale (exponential buckets).
    pub fn fraction_below(&self, v: f64, linear: bool) -> f64 {
        if linear {
            return (v - self.lower) / (self.upper - self.lower);
        }
        let log_lower = self.lower.abs().log2();
        let log_upper = self.upper.abs().log2();
        let log_v = v.abs().log2();
        if v > 0.0 {
            (log_v - log_lower) / (log_upper - log_lower)
        } else {
            1.0 - (log_v - log_upper) / (log_lower - log_upper)
        }
    }
}

impl fmt::Display for Bucket {
    /// Prometheus' `Bucket.String()`: `(0.5,1]:3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{},{}{}:{}",
            if self.lower_inclusive { '[' } else { '(' },
            go_g(self.lower),
            go_g(self.upper),
            if self.upper_inclusive { ']' } else { ')' },
            go_g(self.count)
        )
    }
}

/// Go's `%g` for a float (shortest digits, exponent form outside 1e-4..1e21
/// as `%g` decides, `+Inf`, `NaN`).
pub(crate) fn go_g(v: f64) -> String {
    crate::model::gofmt::format_go_v(v)
}

/// The upper boundary of bucket `idx` (the lower one is `bound(idx - 1)`).
///
/// For standard schemas this is `2^(idx * 2^-schema)`, built from a
/// tabulated mantissa and an exact power of two so that boundaries are
/// bit-identical to Prometheus'; the largest index maps to `f64::MAX`
/// rather than overflowing to +Inf.
pub fn bucket_bound(idx: i32, schema: i32, custom_values: &[f64]) -> f64 {
    if is_custom_buckets_schema(schema) {
        let len = custom_values.len() as i64;
        let i = i64::from(idx);
        return if i >= len {
            f64::INFINITY
        } else if i < 0 {
            f64::NEG_INFINITY
        } else {
            custom_values[idx as usize]
        };
    }
    exponential_bound(idx, schema)
}

fn exponential_bound(idx: i32, schema: i32) -> f64 {
    if schema < 0 {
        let exp = i64::from(idx)
            .checked_mul(1i64 << (-schema).min(62))
            .unwrap_or(if idx < 0 { i64::MIN } else { i64::MAX });
        if exp >= 1024 {
            return f64::MAX;
        }
        return ldexp(1.0, exp);
    }
    let schema = schema.min(30);
    let frac_idx = idx & ((1 << schema) - 1);
    let frac = exponential_fraction(frac_idx, schema);
    let exp = (i64::from(idx) >> schema) + 1;
    if frac == 0.5 && exp == 1025 {
        return f64::MAX;
    }
    ldexp(frac, exp)
}

/// `2^(j/2^schema) / 2`, the mantissa of the `j`-th boundary within one
/// power of two, from Prometheus' table (see [`bounds`]).
/// Schemas above 8 (reserved, only seen in invalid input) fall back to
/// computing the value, so nothing here can index out of the table.
fn exponential_fraction(j: i32, schema: i32) -> f64 {
    let table = usize::try_from(schema)
        .ok()
        .and_then(|s| bounds::SCHEMA_OFFSETS.get(s))
        .and_then(|off| bounds::FRACTIONS.get(off + j as usize));
    match table {
        Some(v) => *v,
        None => (f64::from(j) / 2f64.powi(schema)).exp2() / 2.0,
    }
}

/// `frac * 2^exp` without intermediate overflow or underflow for the
/// exponents bucket boundaries reach.
fn ldexp(frac: f64, exp: i64) -> f64 {
    let mut v = frac;
    // Beyond these exponents the result is 0 or +Inf anyway.
    let mut e = exp.clamp(-1200, 1200);
    while e > 1000 {
        v *= 2f64.powi(1000);
        e -= 1000;
    }
    while e < -1000 {
        v *= 2f64.powi(-1000);
        e += 1000;
    }
    v * 2f64.powi(e as i32)
}

/// The bucket index in a lower-resolution `target` schema that bucket `idx`
/// of `origin` falls into.
pub fn target_index(idx: i32, origin: i32, target: i32) -> i32 {
    ((idx - 1) >> (origin - target)) + 1
}

/// Expands spans and absolute counts into `(index, count)` pairs in index
/// order. Extra counts (more buckets than spans cover) are ignored; callers
/// validate first where it matters.
pub(crate) fn expand(spans: &[Span], counts: &[f64]) -> Vec<(i32, f64)> {
    let mut out = Vec::with_capacity(counts.len());
    let mut idx: i32 = 0;
    let mut ci = 0;
    for (n, s) in spans.iter().enumerate() {
        idx = if n == 0 {
            s.offset
        } else {
            idx.saturating_add(s.offset)
        };
        for _ in 0..s.length {
            let Some(&c) = counts.get(ci) else {
                return out;
            };
            out.push((idx, c));
            ci += 1;
            idx = idx.saturating_add(1);
        }
    }
    out
}

/// The bucket indices spans describe, in order.
pub(crate) fn span_indices(spans: &[Span]) -> Vec<i32> {
    let mut out = Vec::new();
    let mut idx: i32 = 0;
    for (n, s) in spans.iter().enumerate() {
        idx = if n == 0 {
            s.offset
        } else {
            idx.saturating_add(s.offset)
        };
        for _ in 0..s.length {
            out.push(idx);
            idx = idx.saturating_add(1);
        }
    }
    out
}

/// Builds spans and counts from index-ordered `(index, count)` pairs: each
/// run of consecutive indices becomes one span, gaps stay gaps.
pub(crate) fn collapse(buckets: &[(i32, f64)]) -> (Vec<Span>, Vec<f64>) {
    (
        spans_for(buckets.iter().map(|b| b.0)),
        buckets.iter().map(|b| b.1).collect(),
    )
}

/// Spans describing exactly the ascending `indices`: each run of
/// consecutive indices one span, gaps as offsets.
pub(crate) fn spans_for(indices: impl IntoIterator<Item = i32>) -> Vec<Span> {
    let mut spans: Vec<Span> = Vec::new();
    let mut last: Option<i32> = None;
    for idx in indices {
        match (last, spans.last_mut()) {
            (Some(l), Some(s)) if idx == l + 1 => s.length += 1,
            (Some(l), _) => spans.push(Span::new(idx - l - 1, 1)),
            (None, _) => spans.push(Span::new(idx, 1)),
        }
        last = Some(idx);
    }
    spans
}

/// Prometheus' compaction on an expanded list: drops unpopulated buckets
/// except runs of at most `max_empty` between populated ones, which are
/// kept (filled with zeros where the spans had a gap), and merges spans.
pub(crate) fn compact_list(buckets: &[(i32, f64)], max_empty: usize) -> Vec<(i32, f64)> {
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(buckets.len());
    for &(idx, c) in buckets.iter().filter(|(_, c)| *c != 0.0) {
        if let Some(&(last, _)) = out.last() {
            let gap = i64::from(idx) - i64::from(last) - 1;
            if gap > 0 && gap as u64 <= max_empty as u64 {
                for i in last + 1..idx {
                    out.push((i, 0.0));
                }
            }
        }
        out.push((idx, c));
    }
    out
}

/// Merges buckets into a lower-resolution schema, summing counts.
pub(crate) fn reduce_list(buckets: &[(i32, f64)], origin: i32, target: i32) -> Vec<(i32, f64)> {
    let mut out: Vec<(i32, f64)> = Vec::with_capacity(buckets.len());
    for &(idx, c) in buckets {
        let t = target_index(idx, origin, target);
        match out.last_mut() {
            Some((l, lc)) if *l == t => *lc += c,
            _ => out.push((t, c)),
        }
    }
    out
}

/// Adds (or subtracts) `b` into `a`, both index-ordered: the union of the
/// two layouts, buckets of `b` missing in `a` inserted.
fn merge_add(a: &[(i32, f64)], b: &[(i32, f64)], negate: bool) -> Vec<(i32, f64)> {
    let sign = if negate { -1.0 } else { 1.0 };
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        match (a.get(i), b.get(j)) {
            (Some(&(ai, ac)), Some(&(bi, bc))) if ai == bi => {
                out.push((ai, ac + sign * bc));
                i += 1;
                j += 1;
            }
            (Some(&(ai, ac)), Some(&(bi, _))) if ai < bi => {
                out.push((ai, ac));
                i += 1;
            }
            (Some(_), Some(&(bi, bc))) | (None, Some(&(bi, bc))) => {
                out.push((bi, sign * bc));
                j += 1;
            }
            (Some(&(ai, ac)), None) => {
                out.push((ai, ac));
                i += 1;
            }
            (None, None) => break,
        }
    }
    out
}

/// The boundaries both custom-bucket layouts share (the reconciled layout).
fn intersect_bounds(a: &[f64], b: &[f64]) -> Vec<f64> {
    let mut out = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i] == b[j] {
            out.push(a[i]);
            i += 1;
            j += 1;
        } else if a[i] < b[j] {
            i += 1;
        } else {
            j += 1;
        }
    }
    out
}

/// Maps custom buckets onto a coarser layout whose bounds are a subset of
/// `bounds`: each bucket lands in the first target bucket whose upper bound
/// is at least its own; the result is dense (one slot per target bucket).
fn map_custom(buckets: &[(i32, f64)], bounds: &[f64], target: &[f64]) -> Vec<f64> {
    let mut out = vec![0.0; target.len() + 1];
    for &(idx, c) in buckets {
        let upper = bucket_bound(idx, CUSTOM_BUCKETS_SCHEMA, bounds);
        let t = target
            .iter()
            .position(|&b| b >= upper)
            .unwrap_or(target.len());
        out[t] += c;
    }
    out
}

fn dense_to_list(dense: &[f64]) -> Vec<(i32, f64)> {
    dense
        .iter()
        .enumerate()
        .filter(|(_, c)| **c != 0.0)
        .map(|(i, c)| (i as i32, *c))
        .collect()
}

/// What an addition or subtraction noticed, for the caller's annotations.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CombineInfo {
    /// One operand said "reset" and the other "not reset"; the result's hint
    /// became unknown.
    pub counter_reset_collision: bool,
    /// Custom-bucket operands with different bounds were reduced to the
    /// bounds they share.
    pub nhcb_bounds_reconciled: bool,
}

/// A native histogram with float counts and absolute bucket values.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FloatHistogram {
    pub counter_reset_hint: CounterResetHint,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: f64,
    pub count: f64,
    pub sum: f64,
    pub positive_spans: Vec<Span>,
    pub negative_spans: Vec<Span>,
    pub positive_buckets: Vec<f64>,
    pub negative_buckets: Vec<f64>,
    /// Upper bounds of the custom buckets (schema -53 only), without +Inf.
    pub custom_values: Vec<f64>,
}

impl FloatHistogram {
    pub fn uses_custom_buckets(&self) -> bool {
        is_custom_buckets_schema(self.schema)
    }

    /// `(index, count)` of the positive buckets, ascending.
    pub fn positive_list(&self) -> Vec<(i32, f64)> {
        expand(&self.positive_spans, &self.positive_buckets)
    }

    /// `(index, count)` of the negative buckets, ascending by index (that is,
    /// by absolute value).
    pub fn negative_list(&self) -> Vec<(i32, f64)> {
        expand(&self.negative_spans, &self.negative_buckets)
    }

    fn set_positive(&mut self, list: &[(i32, f64)]) {
        (self.positive_spans, self.positive_buckets) = collapse(list);
    }

    fn set_negative(&mut self, list: &[(i32, f64)]) {
        (self.negative_spans, self.negative_buckets) = collapse(list);
    }

    fn bucket_at(&self, idx: i32, count: f64, positive: bool) -> Bucket {
        let (lower, upper) = if positive {
            (
                bucket_bound(idx - 1, self.schema, &self.custom_values),
                bucket_bound(idx, self.schema, &self.custom_values),
            )
        } else {
            (
                -bucket_bound(idx, self.schema, &self.custom_values),
                -bucket_bound(idx - 1, self.schema, &self.custom_values),
            )
        };
        let (lower_inclusive, upper_inclusive) = if self.uses_custom_buckets() {
            (idx == 0, true)
        } else {
            (lower < 0.0, upper > 0.0)
        };
        Bucket {
            lower,
            upper,
            lower_inclusive,
            upper_inclusive,
            count,
            index: idx,
        }
    }

    /// Positive buckets with boundaries, from the zero bucket upwards.
    pub fn positive_buckets_iter(&self) -> impl Iterator<Item = Bucket> + '_ {
        expand(&self.positive_spans, &self.positive_buckets)
            .into_iter()
            .map(move |(i, c)| self.bucket_at(i, c, true))
    }

    /// Negative buckets with boundaries, from the zero bucket downwards.
    pub fn negative_buckets_iter(&self) -> impl Iterator<Item = Bucket> + '_ {
        expand(&self.negative_spans, &self.negative_buckets)
            .into_iter()
            .map(move |(i, c)| self.bucket_at(i, c, false))
    }

    /// The zero bucket (`[-threshold, threshold]`).
    pub fn zero_bucket(&self) -> Bucket {
        Bucket {
            lower: -self.zero_threshold,
            upper: self.zero_threshold,
            lower_inclusive: true,
            upper_inclusive: true,
            count: self.zero_count,
            index: 0,
        }
    }

    /// Every bucket in ascending order of value: negative ones, the zero
    /// bucket if populated, positive ones. A bucket overlapping the zero
    /// bucket has that boundary moved to the zero threshold (Prometheus'
    /// `AllBucketIterator`).
    pub fn all_buckets(&self) -> Vec<Bucket> {
        let zt = self.zero_threshold;
        let clamp = |mut b: Bucket| {
            if b.upper < 0.0 && b.upper > -zt {
                b.upper = -zt;
            } else if b.lower > 0.0 && b.lower < zt {
                b.lower = zt;
            }
            b
        };
        let mut neg: Vec<Bucket> = self.negative_buckets_iter().map(clamp).collect();
        neg.reverse();
        let mut out = neg;
        if self.zero_count > 0.0 {
            out.push(self.zero_bucket());
        }
        out.extend(self.positive_buckets_iter().map(clamp));
        out
    }

    /// Checks the histogram as Prometheus' `FloatHistogram.Validate` does
    /// (the count is not compared with the buckets: float rounding would
    /// make that check fail on valid results).
    pub fn validate(&self) -> Result<(), HistogramError> {
        check_layout(&LayoutView {
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count_is_zero: self.zero_count == 0.0,
            custom_values: &self.custom_values,
            positive_spans: &self.positive_spans,
            positive_buckets: self.positive_buckets.len(),
            negative_spans: &self.negative_spans,
            negative_buckets: self.negative_buckets.len(),
        })?;
        if !self.uses_custom_buckets() {
            check_float_buckets(&self.negative_buckets, "negative side: ")?;
            if self.zero_count < 0.0 {
                return Err(HistogramError::NegativeBucketCount(format!(
                    "zero bucket has observation count of {}: ",
                    go_g(self.zero_count)
                )));
            }
        }
        if self.count < 0.0 {
            return Err(HistogramError::NegativeCount(format!(
                "observation count is  {}: ",
                go_g(self.count)
            )));
        }
        check_float_buckets(&self.positive_buckets, "positive side: ")
    }

    /// Removes unpopulated buckets except runs of at most `max_empty`
    /// between populated ones, and merges adjacent spans.
    pub fn compact(&mut self, max_empty: usize) {
        let p = compact_list(&self.positive_list(), max_empty);
        let n = compact_list(&self.negative_list(), max_empty);
        self.set_positive(&p);
        self.set_negative(&n);
    }

    /// Merges buckets down to the lower-resolution `target` schema.
    pub fn reduce_resolution(&mut self, target: i32) -> Result<(), HistogramError> {
        if self.uses_custom_buckets()
            || is_custom_buckets_schema(target)
            || target > self.schema
            || !is_exponential_schema(target)
        {
            return Err(HistogramError::CannotReduce {
                from: self.schema,
                to: target,
            });
        }
        if target == self.schema {
            return Ok(());
        }
        let p = reduce_list(&self.positive_list(), self.schema, target);
        let n = reduce_list(&self.negative_list(), self.schema, target);
        self.set_positive(&p);
        self.set_negative(&n);
        self.schema = target;
        Ok(())
    }

    /// Scales every count and the sum by `factor` (a negative factor makes
    /// the result a gauge histogram).
    pub fn mul(&mut self, factor: f64) {
        self.zero_count *= factor;
        self.count *= factor;
        self.sum *= factor;
        self.positive_buckets.iter_mut().for_each(|b| *b *= factor);
        self.negative_buckets.iter_mut().for_each(|b| *b *= factor);
        if factor < 0.0 {
            self.counter_reset_hint = CounterResetHint::Gauge;
        }
    }

    /// Divides every count and the sum by `scalar`; division by zero drops
    /// the buckets and leaves infinite (or NaN) count, sum and zero count.
    pub fn div(&mut self, scalar: f64) {
        self.zero_count /= scalar;
        self.count /= scalar;
        self.sum /= scalar;
        if scalar == 0.0 {
            self.positive_buckets.clear();
            self.negative_buckets.clear();
            self.positive_spans.clear();
            self.negative_spans.clear();
            return;
        }
        self.positive_buckets.iter_mut().for_each(|b| *b /= scalar);
        self.negative_buckets.iter_mut().for_each(|b| *b /= scalar);
        if scalar < 0.0 {
            self.counter_reset_hint = CounterResetHint::Gauge;
        }
    }

    /// `self += other`, reconciling schemas (the lower resolution wins), zero
    /// buckets (the wider one wins) and custom bounds (their intersection).
    pub fn add(&mut self, other: &FloatHistogram) -> Result<CombineInfo, HistogramError> {
        self.combine(other, false)
    }

    /// `self -= other`, with the same reconciliation as [`add`](Self::add).
    /// The hint follows the same rules as for addition; PromQL's `-` sets
    /// the result to gauge itself.
    pub fn sub(&mut self, other: &FloatHistogram) -> Result<CombineInfo, HistogramError> {
        self.combine(other, true)
    }

    fn combine(
        &mut self,
        other: &FloatHistogram,
        negate: bool,
    ) -> Result<CombineInfo, HistogramError> {
        if self.uses_custom_buckets() != other.uses_custom_buckets() {
            return Err(HistogramError::IncompatibleSchema);
        }
        let mut info = CombineInfo {
            counter_reset_collision: self.adjust_counter_reset(other),
            ..CombineInfo::default()
        };
        let sign = if negate { -1.0 } else { 1.0 };
        if self.uses_custom_buckets() {
            self.count += sign * other.count;
            self.sum += sign * other.sum;
            if self.custom_values == other.custom_values {
                let p = merge_add(&self.positive_list(), &other.positive_list(), negate);
                self.set_positive(&p);
            } else {
                info.nhcb_bounds_reconciled = true;
                let target = intersect_bounds(&self.custom_values, &other.custom_values);
                let mut a = map_custom(&self.positive_list(), &self.custom_values, &target);
                let b = map_custom(&other.positive_list(), &other.custom_values, &target);
                for (x, y) in a.iter_mut().zip(&b) {
                    *x += sign * y;
                }
                self.set_positive(&dense_to_list(&a));
                self.custom_values = target;
            }
            return Ok(info);
        }
        let other_zero = self.reconcile_zero_buckets(other);
        self.zero_count += sign * other_zero;
        self.count += sign * other.count;
        self.sum += sign * other.sum;

        let mut op = other.positive_list();
        let mut on = other.negative_list();
        if other.schema < self.schema {
            let p = reduce_list(&self.positive_list(), self.schema, other.schema);
            let n = reduce_list(&self.negative_list(), self.schema, other.schema);
            self.set_positive(&p);
            self.set_negative(&n);
            self.schema = other.schema;
        } else if other.schema > self.schema {
            op = reduce_list(&op, other.schema, self.schema);
            on = reduce_list(&on, other.schema, self.schema);
        }
        // Buckets of the other histogram inside the (possibly widened) zero
        // bucket were already counted in its zero count.
        let zt = self.zero_threshold;
        let schema = self.schema;
        op.retain(|&(i, _)| exponential_bound(i, schema) > zt);
        on.retain(|&(i, _)| exponential_bound(i, schema) > zt);
        let p = merge_add(&self.positive_list(), &op, negate);
        let n = merge_add(&self.negative_list(), &on, negate);
        self.set_positive(&p);
        self.set_negative(&n);
        Ok(info)
    }

    /// Prometheus' hint rules for adding two histograms; returns whether a
    /// "reset" met a "not reset".
    fn adjust_counter_reset(&mut self, other: &FloatHistogram) -> bool {
        use CounterResetHint::*;
        match (self.counter_reset_hint, other.counter_reset_hint) {
            (a, b) if a == b => false,
            (Gauge, _) => false,
            (_, Gauge) => {
                self.counter_reset_hint = Gauge;
                false
            }
            (Unknown, _) => false,
            (_, Unknown) => {
                self.counter_reset_hint = Unknown;
                false
            }
            _ => {
                self.counter_reset_hint = Unknown;
                true
            }
        }
    }

    /// The zero count this histogram would have with the (larger or equal)
    /// `threshold`, and the threshold actually usable: if it falls inside a
    /// populated bucket, it moves up to that bucket's upper boundary.
    pub fn zero_count_for_larger_threshold(&self, mut threshold: f64) -> (f64, f64) {
        if threshold == self.zero_threshold {
            return (self.zero_count, threshold);
        }
        'outer: loop {
            let mut zc = self.zero_count;
            for b in self.positive_buckets_iter() {
                if b.lower >= threshold {
                    break;
                }
                zc += b.count;
                if b.upper > threshold {
                    if b.count != 0.0 {
                        threshold = b.upper;
                    }
                    break;
                }
            }
            for b in self.negative_buckets_iter() {
                if b.upper <= -threshold {
                    break;
                }
                zc += b.count;
                if b.lower < -threshold {
                    if b.count != 0.0 {
                        threshold = -b.lower;
                        continue 'outer;
                    }
                    break;
                }
            }
            return (zc, threshold);
        }
    }

    /// Widens whichever zero bucket is narrower until both histograms agree
    /// on a threshold that is not inside a populated bucket of either; this
    /// histogram is changed, `other` is not: its zero count at the agreed
    /// threshold is returned.
    fn reconcile_zero_buckets(&mut self, other: &FloatHistogram) -> f64 {
        let mut other_zc = other.zero_count;
        let mut other_zt = other.zero_threshold;
        while other_zt != self.zero_threshold {
            if self.zero_threshold > other_zt {
                (other_zc, other_zt) = other.zero_count_for_larger_threshold(self.zero_threshold);
            }
            if other_zt > self.zero_threshold {
                let (zc, zt) = self.zero_count_for_larger_threshold(other_zt);
                self.zero_count = zc;
                self.zero_threshold = zt;
                self.trim_buckets_in_zero_bucket();
            }
        }
        other_zc
    }

    fn trim_buckets_in_zero_bucket(&mut self) {
        let zt = self.zero_threshold;
        let schema = self.schema;
        let keep = |&(i, _): &(i32, f64)| exponential_bound(i - 1, schema) >= zt;
        let p: Vec<_> = self.positive_list().into_iter().filter(keep).collect();
        let n: Vec<_> = self.negative_list().into_iter().filter(keep).collect();
        self.set_positive(&p);
        self.set_negative(&n);
        // As upstream, the trim ends with a full compaction (which also
        // drops empty buckets elsewhere), so results match bucket for bucket.
        self.compact(0);
    }

    /// Whether `self` follows `previous` only after a counter reset
    /// (Prometheus' `DetectReset`): the hint decides if it is reset/not
    /// reset, otherwise any decrease of the count, the zero bucket or a
    /// bucket (after bringing `previous` to this layout), a higher
    /// resolution or a narrower zero bucket counts as a reset.
    pub fn detect_reset(&self, previous: &FloatHistogram) -> bool {
        match self.counter_reset_hint {
            CounterResetHint::Reset => return true,
            CounterResetHint::NotReset => return false,
            _ => {}
        }
        if self.count < previous.count {
            return true;
        }
        if self.uses_custom_buckets() {
            if !previous.uses_custom_buckets() {
                return true;
            }
            if self.custom_values != previous.custom_values {
                let target = intersect_bounds(&self.custom_values, &previous.custom_values);
                let cur = map_custom(&self.positive_list(), &self.custom_values, &target);
                let prev = map_custom(&previous.positive_list(), &previous.custom_values, &target);
                return cur.iter().zip(&prev).any(|(c, p)| c < p);
            }
        } else if previous.uses_custom_buckets() {
            return true;
        }
        if self.schema > previous.schema {
            return true;
        }
        if self.zero_threshold < previous.zero_threshold {
            return true;
        }
        let (prev_zc, new_threshold) =
            previous.zero_count_for_larger_threshold(self.zero_threshold);
        if new_threshold != self.zero_threshold {
            return true;
        }
        if self.zero_count < prev_zc {
            return true;
        }
        let above = |list: Vec<(i32, f64)>, h: &FloatHistogram| -> Vec<(i32, f64)> {
            let list = if h.schema != self.schema && !self.uses_custom_buckets() {
                reduce_list(&list, h.schema, self.schema)
            } else {
                list
            };
            if self.uses_custom_buckets() {
                return list;
            }
            list.into_iter()
                .skip_while(|&(i, _)| exponential_bound(i, self.schema) <= self.zero_threshold)
                .collect()
        };
        let sides = [
            (
                above(self.positive_list(), self),
                above(previous.positive_list(), previous),
            ),
            (
                above(self.negative_list(), self),
                above(previous.negative_list(), previous),
            ),
        ];
        sides.iter().any(|(cur, prev)| buckets_decreased(cur, prev))
    }

    /// Exact equality as Prometheus' `Equals`: counts compared by bit
    /// pattern (so NaN equals NaN), layouts compared bucket by bucket
    /// (zero-length spans and split spans do not matter), the hint ignored.
    pub fn equals(&self, other: &FloatHistogram) -> bool {
        let bits_eq = |a: f64, b: f64| a.to_bits() == b.to_bits();
        let lists_eq = |a: Vec<(i32, f64)>, b: Vec<(i32, f64)>| {
            a.len() == b.len()
                && a.iter()
                    .zip(&b)
                    .all(|(x, y)| x.0 == y.0 && bits_eq(x.1, y.1))
        };
        self.schema == other.schema
            && bits_eq(self.count, other.count)
            && bits_eq(self.sum, other.sum)
            && (!self.uses_custom_buckets() || self.custom_values == other.custom_values)
            && self.zero_threshold == other.zero_threshold
            && bits_eq(self.zero_count, other.zero_count)
            && lists_eq(self.negative_list(), other.negative_list())
            && lists_eq(self.positive_list(), other.positive_list())
    }

    /// The histogram in the test-series notation (`{{schema:1 count:3 ...}}`),
    /// as Prometheus' `TestExpression`: compacted to one span per side,
    /// zero-valued fields left out.
    pub fn test_expression(&self) -> String {
        let mut m = self.clone();
        m.compact(usize::MAX);
        let mut res: Vec<String> = Vec::new();
        if m.schema != 0 {
            res.push(format!("schema:{}", m.schema));
        }
        if m.count != 0.0 {
            res.push(format!("count:{}", go_g(m.count)));
        }
        if m.sum != 0.0 {
            res.push(format!("sum:{}", go_g(m.sum)));
        }
        if m.zero_count != 0.0 {
            res.push(format!("z_bucket:{}", go_g(m.zero_count)));
        }
        if m.zero_threshold != 0.0 {
            res.push(format!("z_bucket_w:{}", go_g(m.zero_threshold)));
        }
        if m.uses_custom_buckets() {
            res.push(format!("custom_values:{}", go_slice(&m.custom_values)));
        }
        match m.counter_reset_hint {
            CounterResetHint::Unknown => {}
            CounterResetHint::Reset => res.push("counter_reset_hint:reset".into()),
            CounterResetHint::NotReset => res.push("counter_reset_hint:not_reset".into()),
            CounterResetHint::Gauge => res.push("counter_reset_hint:gauge".into()),
        }
        for (spans, buckets, bkey, okey) in [
            (&m.positive_spans, &m.positive_buckets, "buckets", "offset"),
            (
                &m.negative_spans,
                &m.negative_buckets,
                "n_buckets",
                "n_offset",
            ),
        ] {
            if let Some(s) = spans.first() {
                if s.offset != 0 {
                    res.push(format!("{okey}:{}", s.offset));
                }
            }
            if !buckets.is_empty() {
                res.push(format!("{bkey}:{}", go_slice(buckets)));
            }
        }
        format!("{{{{{}}}}}", res.join(" "))
    }
}

/// Go's `%g` of a float slice: `[1 2.5 10]`.
fn go_slice(v: &[f64]) -> String {
    let parts: Vec<String> = v.iter().map(|x| go_g(*x)).collect();
    format!("[{}]", parts.join(" "))
}

/// Whether a bucket of `prev` lost observations in `cur` (missing buckets
/// count as empty).
fn buckets_decreased(cur: &[(i32, f64)], prev: &[(i32, f64)]) -> bool {
    let mut j = 0;
    for &(pi, pc) in prev {
        while j < cur.len() && cur[j].0 < pi {
            j += 1;
        }
        match cur.get(j) {
            Some(&(ci, cc)) if ci == pi => {
                if cc < pc {
                    return true;
                }
            }
            _ => {
                if pc != 0.0 {
                    return true;
                }
            }
        }
    }
    false
}

impl fmt::Display for FloatHistogram {
    /// Prometheus' `FloatHistogram.String()`:
    /// `{count:4, sum:5, [-1,-0.5):1, [-0.001,0.001]:1, (0.5,1]:2}`,
    /// populated buckets only, from the lowest value up.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{count:{}, sum:{}", go_g(self.count), go_g(self.sum))?;
        let neg: Vec<Bucket> = self
            .negative_buckets_iter()
            .filter(|b| b.count != 0.0)
            .collect();
        for b in neg.iter().rev() {
            write!(f, ", {b}")?;
        }
        if self.zero_count != 0.0 {
            write!(f, ", {}", self.zero_bucket())?;
        }
        for b in self.positive_buckets_iter().filter(|b| b.count != 0.0) {
            write!(f, ", {b}")?;
        }
        f.write_str("}")
    }
}

/// The parts of a histogram the layout checks need, from either representation.
struct LayoutView<'a> {
    schema: i32,
    zero_threshold: f64,
    zero_count_is_zero: bool,
    custom_values: &'a [f64],
    positive_spans: &'a [Span],
    positive_buckets: usize,
    negative_spans: &'a [Span],
    negative_buckets: usize,
}

/// Schema, spans against bucket counts, and what a custom-bucket (or an
/// exponential) histogram must not have, in Prometheus' order of checks.
fn check_layout(v: &LayoutView<'_>) -> Result<(), HistogramError> {
    if is_custom_buckets_schema(v.schema) {
        check_custom_bounds(v.custom_values, v.positive_spans, v.positive_buckets)?;
        if !v.zero_count_is_zero {
            return Err(HistogramError::CustomBucketsZeroCount);
        }
        if v.zero_threshold != 0.0 {
            return Err(HistogramError::CustomBucketsZeroThreshold);
        }
        if !v.negative_spans.is_empty() {
            return Err(HistogramError::CustomBucketsNegativeSpans);
        }
        if v.negative_buckets > 0 {
            return Err(HistogramError::CustomBucketsNegativeBuckets);
        }
        return Ok(());
    }
    if !is_exponential_schema(v.schema) {
        return Err(HistogramError::InvalidSchema(v.schema));
    }
    check_spans(v.positive_spans, v.positive_buckets, "positive side: ")?;
    check_spans(v.negative_spans, v.negative_buckets, "negative side: ")?;
    if !v.custom_values.is_empty() {
        return Err(HistogramError::ExponentialSchemaCustomBounds);
    }
    Ok(())
}

fn check_spans(spans: &[Span], num_buckets: usize, side: &str) -> Result<(), HistogramError> {
    let mut total: u64 = 0;
    for (n, s) in spans.iter().enumerate() {
        if n > 0 && s.offset < 0 {
            return Err(HistogramError::SpanNegativeOffset(format!(
                "{side}span number {} with offset {}: ",
                n + 1,
                s.offset
            )));
        }
        total += u64::from(s.length);
    }
    if total != num_buckets as u64 {
        return Err(HistogramError::SpansBucketsMismatch(format!(
            "{side}spans need {total} buckets, have {num_buckets} buckets: "
        )));
    }
    Ok(())
}

fn check_float_buckets(buckets: &[f64], side: &str) -> Result<(), HistogramError> {
    for (i, &c) in buckets.iter().enumerate() {
        if c < 0.0 {
            return Err(HistogramError::NegativeBucketCount(format!(
                "{side}bucket number {} has observation count of {}: ",
                i + 1,
                go_g(c)
            )));
        }
    }
    Ok(())
}

fn check_custom_bounds(
    bounds: &[f64],
    spans: &[Span],
    num_buckets: usize,
) -> Result<(), HistogramError> {
    let mut prev = f64::NEG_INFINITY;
    for (i, &b) in bounds.iter().enumerate() {
        if b.is_nan() {
            return Err(HistogramError::CustomBucketsNaN);
        }
        if i > 0 && b <= prev {
            return Err(HistogramError::CustomBucketsInvalid(format!(
                "custom buckets: previous bound is {prev:.6} and current is {b:.6}: "
            )));
        }
        prev = b;
    }
    if prev == f64::INFINITY {
        return Err(HistogramError::CustomBucketsInfinite(
            "custom buckets: last +Inf bound must not be explicitly defined: ".into(),
        ));
    }
    let mut buckets: u64 = 0;
    let mut total: i64 = 0;
    for (n, s) in spans.iter().enumerate() {
        if s.offset < 0 {
            return Err(HistogramError::SpanNegativeOffset(format!(
                "custom buckets: span number {} with offset {}: ",
                n + 1,
                s.offset
            )));
        }
        buckets += u64::from(s.length);
        total += i64::from(s.length) + i64::from(s.offset);
    }
    if buckets != num_buckets as u64 {
        return Err(HistogramError::SpansBucketsMismatch(format!(
            "custom buckets: spans need {buckets} buckets, have {num_buckets} buckets: "
        )));
    }
    if (bounds.len() as i64 + 1) < total {
        return Err(HistogramError::CustomBucketsMismatch(format!(
            "custom buckets: only {} custom bounds defined which is insufficient to cover total span length of {total}: ",
            bounds.len()
        )));
    }
    Ok(())
}

/// A native histogram with integer counts; buckets are deltas (the first
/// bucket of each side absolute, every other one relative to its
/// predecessor), as exposed by instrumentation and stored in integer
/// histogram chunks.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Histogram {
    pub counter_reset_hint: CounterResetHint,
    pub schema: i32,
    pub zero_threshold: f64,
    pub zero_count: u64,
    pub count: u64,
    pub sum: f64,
    pub positive_spans: Vec<Span>,
    pub negative_spans: Vec<Span>,
    pub positive_buckets: Vec<i64>,
    pub negative_buckets: Vec<i64>,
    pub custom_values: Vec<f64>,
}

/// Absolute counts from deltas.
pub(crate) fn deltas_to_absolute(deltas: &[i64]) -> Vec<i64> {
    let mut cur: i64 = 0;
    deltas
        .iter()
        .map(|d| {
            cur = cur.wrapping_add(*d);
            cur
        })
        .collect()
}

/// Deltas from absolute counts.
pub(crate) fn absolute_to_deltas(abs: &[i64]) -> Vec<i64> {
    let mut prev: i64 = 0;
    abs.iter()
        .map(|a| {
            let d = a.wrapping_sub(prev);
            prev = *a;
            d
        })
        .collect()
}

impl Histogram {
    pub fn uses_custom_buckets(&self) -> bool {
        is_custom_buckets_schema(self.schema)
    }

    /// The same histogram with float counts and absolute buckets.
    pub fn to_float(&self) -> FloatHistogram {
        let abs = |d: &[i64]| -> Vec<f64> {
            deltas_to_absolute(d)
                .into_iter()
                .map(|c| c as f64)
                .collect()
        };
        FloatHistogram {
            counter_reset_hint: self.counter_reset_hint,
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count: self.zero_count as f64,
            count: self.count as f64,
            sum: self.sum,
            positive_spans: self.positive_spans.clone(),
            negative_spans: self.negative_spans.clone(),
            positive_buckets: abs(&self.positive_buckets),
            negative_buckets: abs(&self.negative_buckets),
            custom_values: self.custom_values.clone(),
        }
    }

    /// Checks the histogram as Prometheus' `Histogram.Validate` does,
    /// including that the count equals the buckets' total (or exceeds it
    /// when the sum is NaN, since NaN observations land in no bucket).
    pub fn validate(&self) -> Result<(), HistogramError> {
        check_layout(&LayoutView {
            schema: self.schema,
            zero_threshold: self.zero_threshold,
            zero_count_is_zero: self.zero_count == 0,
            custom_values: &self.custom_values,
            positive_spans: &self.positive_spans,
            positive_buckets: self.positive_buckets.len(),
            negative_spans: &self.negative_spans,
            negative_buckets: self.negative_buckets.len(),
        })?;
        let mut total = check_int_buckets(&self.negative_buckets, "negative side: ")?;
        total = total.wrapping_add(check_int_buckets(
            &self.positive_buckets,
            "positive side: ",
        )?);
        total = total.wrapping_add(self.zero_count);
        if self.sum.is_nan() {
            if total > self.count {
                return Err(HistogramError::CountNotBigEnough(format!(
                    "{} observations found in buckets, but the Count field is {}: ",
                    total, self.count
                )));
            }
        } else if total != self.count {
            return Err(HistogramError::CountMismatch(format!(
                "{} observations found in buckets, but the Count field is {}: ",
                total, self.count
            )));
        }
        Ok(())
    }

    /// Removes unpopulated buckets as [`FloatHistogram::compact`] does,
    /// keeping the delta encoding consistent.
    pub fn compact(&mut self, max_empty: usize) {
        for positive in [true, false] {
            let (spans, deltas) = if positive {
                (&self.positive_spans, &self.positive_buckets)
            } else {
                (&self.negative_spans, &self.negative_buckets)
            };
            let abs: Vec<(i32, i64)> = span_indices(spans)
                .into_iter()
                .zip(deltas_to_absolute(deltas))
                .collect();
            let mut out: Vec<(i32, i64)> = Vec::with_capacity(abs.len());
            for &(idx, c) in abs.iter().filter(|(_, c)| *c != 0) {
                if let Some(&(last, _)) = out.last() {
                    let gap = i64::from(idx) - i64::from(last) - 1;
                    if gap > 0 && gap as u64 <= max_empty as u64 {
                        out.extend((last + 1..idx).map(|i| (i, 0)));
                    }
                }
                out.push((idx, c));
            }
            let new_spans = spans_for(out.iter().map(|b| b.0));
            let counts: Vec<i64> = out.iter().map(|&(_, c)| c).collect();
            let new_deltas = absolute_to_deltas(&counts);
            if positive {
                self.positive_spans = new_spans;
                self.positive_buckets = new_deltas;
            } else {
                self.negative_spans = new_spans;
                self.negative_buckets = new_deltas;
            }
        }
    }
}

fn check_int_buckets(deltas: &[i64], side: &str) -> Result<u64, HistogramError> {
    let mut total: u64 = 0;
    for (i, c) in deltas_to_absolute(deltas).into_iter().enumerate() {
        if c < 0 {
            return Err(HistogramError::NegativeBucketCount(format!(
                "{side}bucket number {} has observation count of {c}: ",
                i + 1
            )));
        }
        total = total.wrapping_add(c as u64);
    }
    Ok(total)
}

#[cfg(test)]
mod tests;
