//! The PromQL functions over one native histogram, as pure functions so the
//! engine only has to pick the samples: `histogram_quantile`,
//! `histogram_fraction`, `histogram_count`, `histogram_sum`,
//! `histogram_avg`, `histogram_stddev` and `histogram_stdvar`.
//!
//! Interpolation within a bucket follows Prometheus: exponential buckets are
//! interpolated on a logarithmic scale (where their boundaries are evenly
//! spaced), custom buckets and the zero bucket linearly. The zero bucket's
//! lower (upper) boundary is taken as 0 when the histogram has only positive
//! (negative) buckets.

use super::{Bucket, FloatHistogram};

/// Why a quantile or fraction may mislead, for the engine's info
/// annotations (NaN observations counted in `count` but in no bucket).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QuantileInfo {
    /// The quantile landed above every bucket because of NaN observations;
    /// the result is NaN.
    pub nan_result: bool,
    /// NaN observations exist and push the quantile towards higher values.
    pub nan_skew: bool,
    /// `histogram_fraction` ignored NaN observations.
    pub nan_fraction: bool,
}

/// Moves the zero bucket's outer boundary to 0 when the other side of the
/// histogram has no buckets (observations cannot be there).
fn natural_zero_bound(h: &FloatHistogram, b: &mut Bucket) {
    if h.negative_buckets.is_empty() && !h.positive_buckets.is_empty() {
        b.lower = 0.0;
    } else if h.positive_buckets.is_empty() && !h.negative_buckets.is_empty() {
        b.upper = 0.0;
    }
}

/// `histogram_quantile(q, h)` for a native histogram.
pub fn histogram_quantile(q: f64, h: &FloatHistogram) -> (f64, QuantileInfo) {
    let mut info = QuantileInfo::default();
    if q < 0.0 {
        return (f64::NEG_INFINITY, info);
    }
    if q > 1.0 {
        return (f64::INFINITY, info);
    }
    if h.count == 0.0 || q.is_nan() {
        return (f64::NAN, info);
    }
    let all = h.all_buckets();
    // Walk from the nearer end: from below for low quantiles (and whenever
    // NaN observations are possible, since they are in no bucket), from
    // above for high ones, which keeps float error small at the tails.
    let forward = h.sum.is_nan() || q < 0.5;
    let mut rank = if forward {
        q * h.count
    } else {
        (1.0 - q) * h.count
    };
    let order: Box<dyn Iterator<Item = &Bucket>> = if forward {
        Box::new(all.iter())
    } else {
        Box::new(all.iter().rev())
    };
    let mut count = 0.0;
    let mut bucket = Bucket {
        lower: 0.0,
        upper: 0.0,
        lower_inclusive: false,
        upper_inclusive: false,
        count: 0.0,
        index: 0,
    };
    let mut consumed = 0;
    for b in order {
        consumed += 1;
        bucket = *b;
        if b.count == 0.0 {
            continue;
        }
        count += b.count;
        if count >= rank {
            break;
        }
    }
    if !h.uses_custom_buckets() && bucket.lower < 0.0 && bucket.upper > 0.0 {
        natural_zero_bound(h, &mut bucket);
    } else if h.uses_custom_buckets() {
        if bucket.lower == f64::NEG_INFINITY {
            if bucket.upper <= 0.0 {
                return (bucket.upper, info);
            }
            bucket.lower = 0.0;
        } else if bucket.upper == f64::INFINITY {
            return (bucket.lower, info);
        }
    }
    if count > h.count {
        count = h.count;
    }
    if count < rank {
        if h.sum.is_nan() {
            info.nan_result = true;
            return (f64::NAN, info);
        }
        return (bucket.upper, info);
    }
    if forward {
        rank -= count - bucket.count;
    } else {
        rank = count - rank;
    }
    if h.sum.is_nan() {
        let rest: f64 = all.iter().skip(consumed).map(|b| b.count).sum();
        if count + rest < h.count {
            info.nan_skew = true;
        }
    }
    let fraction = rank / bucket.count;
    if h.uses_custom_buckets() || (bucket.lower <= 0.0 && bucket.upper >= 0.0) {
        return (
            bucket.lower + (bucket.upper - bucket.lower) * fraction,
            info,
        );
    }
    let log_lower = bucket.lower.abs().log2();
    let log_upper = bucket.upper.abs().log2();
    if bucket.lower > 0.0 {
        return (
            (log_lower + (log_upper - log_lower) * fraction).exp2(),
            info,
        );
    }
    (
        -(log_upper + (log_lower - log_upper) * (1.0 - fraction)).exp2(),
        info,
    )
}

/// `histogram_fraction(lower, upper, h)`: the estimated share of
/// observations in `(lower, upper]`.
pub fn histogram_fraction(lower: f64, upper: f64, h: &FloatHistogram) -> (f64, QuantileInfo) {
    let mut info = QuantileInfo::default();
    if h.count == 0.0 || lower.is_nan() || upper.is_nan() {
        return (f64::NAN, info);
    }
    if lower >= upper {
        return (0.0, info);
    }
    let all = h.all_buckets();
    let (mut count, mut rank, mut lower_rank, mut upper_rank) = (0.0, 0.0, 0.0, 0.0);
    let (mut lower_set, mut upper_set) = (false, false);
    let mut consumed = 0;
    for orig in &all {
        consumed += 1;
        let mut b = *orig;
        count += b.count;
        let mut zero_bucket = false;
        if b.lower <= 0.0 && b.upper >= 0.0 {
            zero_bucket = true;
            natural_zero_bound(h, &mut b);
        }
        let linear = h.uses_custom_buckets() || zero_bucket;
        // A bucket with an infinite lower bound contributes nothing partial
        // (its whole count or none), as the +Inf bucket does.
        let interpolate = |v: f64| -> f64 {
            if linear && b.lower == f64::NEG_INFINITY {
                return b.count;
            }
            rank + b.count * b.fraction_below(v, linear)
        };
        if !lower_set && b.lower >= lower {
            lower_rank = rank;
            lower_set = true;
        }
        if !upper_set && b.lower >= upper {
            upper_rank = rank;
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        if !lower_set && b.lower < lower && b.upper > lower {
            lower_rank = interpolate(lower);
            lower_set = true;
        }
        if !upper_set && b.lower < upper && b.upper > upper {
            upper_rank = interpolate(upper);
            upper_set = true;
        }
        if lower_set && upper_set {
            break;
        }
        rank += b.count;
    }
    if h.sum.is_nan() {
        count += all.iter().skip(consumed).map(|b| b.count).sum::<f64>();
        if count < h.count {
            info.nan_fraction = true;
        }
    } else {
        count = h.count;
    }
    if !lower_set || lower_rank > count {
        lower_rank = count;
    }
    if !upper_set || upper_rank > count {
        upper_rank = count;
    }
    ((upper_rank - lower_rank) / h.count, info)
}

/// `histogram_count(h)`.
pub fn histogram_count(h: &FloatHistogram) -> f64 {
    h.count
}

/// `histogram_sum(h)`.
pub fn histogram_sum(h: &FloatHistogram) -> f64 {
    h.sum
}

/// `histogram_avg(h)`: sum over count.
pub fn histogram_avg(h: &FloatHistogram) -> f64 {
    h.sum / h.count
}

/// `histogram_stdvar(h)`: the variance of the observations, each bucket
/// represented by one value (the geometric mean of its boundaries for
/// exponential buckets, 0 for the zero bucket, the arithmetic mean for
/// custom buckets), summed with Kahan compensation as Prometheus does.
pub fn histogram_stdvar(h: &FloatHistogram) -> f64 {
    let mean = h.sum / h.count;
    let (mut var, mut comp) = (0.0, 0.0);
    for b in h.all_buckets() {
        if b.count == 0.0 {
            continue;
        }
        let val = if h.uses_custom_buckets() {
            (b.upper + b.lower) / 2.0
        } else if b.lower <= 0.0 && b.upper >= 0.0 {
            0.0
        } else {
            let g = (b.upper * b.lower).sqrt();
            if b.upper < 0.0 {
                -g
            } else {
                g
            }
        };
        let delta = val - mean;
        (var, comp) = kahan_inc(b.count * delta * delta, var, comp);
    }
    (var + comp) / h.count
}

/// `histogram_stddev(h)`: the square root of [`histogram_stdvar`].
pub fn histogram_stddev(h: &FloatHistogram) -> f64 {
    histogram_stdvar(h).sqrt()
}

/// One step of Kahan-Babuška (Neumaier) summation; `c` is reset once the
/// sum overflows so the infinity is not turned into NaN.
pub(crate) fn kahan_inc(inc: f64, sum: f64, c: f64) -> (f64, f64) {
    let t = sum + inc;
    let c = if t.is_infinite() {
        0.0
    } else if sum.abs() >= inc.abs() {
        c + ((sum - t) + inc)
    } else {
        c + ((inc - t) + sum)
    };
    (t, c)
}
