//! The `anchored` and `smoothed` range modifiers (Prometheus 3.7+,
//! experimental upstream).
//!
//! * `anchored`: the window also takes the last sample at or before its
//!   start (within the lookback delta) and results are not extrapolated.
//! * `smoothed`: the values at both window edges are interpolated linearly
//!   from the neighbouring samples (counters corrected for resets first).

use super::eval::{is_stale_hist, Evaluator, SeriesData};
use super::native::changes_or_resets;
use super::value::{EvalError, EvalResult, Sample};
use crate::model::is_stale_nan;
use crate::promql::parser::{MatrixSelector, VectorSelector};

type Pt = (i64, f64);

/// Samples of one series around a window `(start, end]`.
struct Around {
    prev: Option<Pt>,
    window: Vec<Pt>,
    next: Option<Pt>,
}

fn around(samples: &[Pt], start: i64, end: i64, lookback: i64) -> Around {
    let a = samples.partition_point(|p| p.0 <= start);
    let b = samples.partition_point(|p| p.0 <= end);
    let prev = a
        .checked_sub(1)
        .and_then(|i| samples.get(i))
        .copied()
        .filter(|p| p.0 > start.saturating_sub(lookback) && !is_stale_nan(p.1));
    let window = samples
        .get(a..b)
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|p| !is_stale_nan(p.1))
        .collect();
    let next = samples
        .get(b)
        .copied()
        .filter(|p| p.0 <= end.saturating_add(lookback) && !is_stale_nan(p.1));
    Around { prev, window, next }
}

fn interpolate(a: Pt, b: Pt, t: i64) -> f64 {
    if b.0 == a.0 {
        return b.1;
    }
    a.1 + (b.1 - a.1) * ((t - a.0) as f64 / (b.0 - a.0) as f64)
}

/// Adds the pre-reset value at every counter reset so the series is monotonic.
fn correct_resets(pts: &mut [Pt]) {
    let mut offset = 0.0;
    let mut prev = f64::NAN;
    for p in pts.iter_mut() {
        let raw = p.1;
        if raw < prev {
            offset += prev;
        }
        prev = raw;
        p.1 = raw + offset;
    }
}

/// `changes`/`resets` over an anchored window of a series holding native
/// histograms: the newest sample of either type at or before the window
/// start (within the lookback delta) as the anchor, then the window's
/// samples, floats and histograms merged by time; `None` for an empty
/// window.
fn anchored_changes(
    s: &SeriesData,
    resets: bool,
    start: i64,
    end: i64,
    lookback: i64,
) -> Option<f64> {
    let fa = s.samples.partition_point(|p| p.0 <= start);
    let fb = s.samples.partition_point(|p| p.0 <= end);
    let ha = s.hist.partition_point(|p| p.0 <= start);
    let mut floats: Vec<Pt> = s
        .samples
        .get(fa..fb)
        .unwrap_or_default()
        .iter()
        .copied()
        .filter(|p| !is_stale_nan(p.1))
        .collect();
    let mut hists = s.hists_in(start, end);
    if floats.is_empty() && hists.is_empty() {
        return None;
    }
    let prev_f = fa.checked_sub(1).and_then(|i| s.samples.get(i));
    let prev_h = ha.checked_sub(1).and_then(|i| s.hist.get(i));
    let lo = start.saturating_sub(lookback);
    let float_newer = match (prev_f, prev_h) {
        (Some(f), Some(h)) => f.0 > h.0,
        (f, _) => f.is_some(),
    };
    if float_newer {
        if let Some(f) = prev_f.filter(|f| f.0 > lo && !is_stale_nan(f.1)) {
            floats.insert(0, *f);
        }
    } else if let Some(h) = prev_h.filter(|h| h.0 > lo && !is_stale_hist(&h.1)) {
        hists.insert(0, h.clone());
    }
    Some(changes_or_resets(resets, &floats, &hists))
}

pub(crate) fn check_modifier(vs: &VectorSelector, func: &str) -> EvalResult<()> {
    if vs.smoothed && !matches!(func, "delta" | "increase" | "rate") {
        return Err(EvalError::exec(format!(
            "smoothed modifier can only be used with: delta, increase, rate - not with {func}"
        )));
    }
    if vs.anchored && !matches!(func, "changes" | "delta" | "increase" | "rate" | "resets") {
        return Err(EvalError::exec(format!(
            "anchored modifier can only be used with: changes, delta, increase, rate, resets - not with {func}"
        )));
    }
    Ok(())
}

impl Evaluator<'_> {
    /// A range function over an `anchored` / `smoothed` matrix selector.
    pub(crate) fn extended_range(
        &mut self,
        ms: &MatrixSelector,
        func: &str,
        t: i64,
    ) -> EvalResult<Vec<Sample>> {
        let vs = &ms.selector;
        check_modifier(vs, func)?;
        let data = self.series_data(vs);
        let off = self.duration(vs.offset, &vs.offset_expr);
        let range = self.duration(ms.range, &ms.range_expr);
        let end = self.at_time(vs.at).unwrap_or(t).saturating_sub(off);
        let start = end.saturating_sub(range);
        let counter = matches!(func, "rate" | "increase");
        let mut out = Vec::new();
        for s in data.iter() {
            self.tick()?;
            if s.has_histograms() && vs.anchored && matches!(func, "changes" | "resets") {
                if let Some(v) = anchored_changes(s, func == "resets", start, end, self.lookback) {
                    out.push(Sample {
                        labels: s.labels.clone(),
                        t,
                        value: v,
                        drop_name: true,
                        h: None,
                    });
                }
                continue;
            }
            let ar = around(&s.samples, start, end, self.lookback);
            let v = if vs.anchored {
                if ar.window.is_empty() {
                    continue;
                }
                let mut pts: Vec<Pt> = ar.prev.into_iter().chain(ar.window).collect();
                match func {
                    "changes" | "resets" => {
                        let n = pts
                            .windows(2)
                            .filter(|w| {
                                if func == "changes" {
                                    w[1].1 != w[0].1 && !(w[1].1.is_nan() && w[0].1.is_nan())
                                } else {
                                    w[1].1 < w[0].1
                                }
                            })
                            .count();
                        n as f64
                    }
                    _ => {
                        if counter {
                            correct_resets(&mut pts);
                        }
                        let (Some(f), Some(l)) = (pts.first(), pts.last()) else {
                            continue;
                        };
                        let d = l.1 - f.1;
                        if func == "rate" {
                            d / (range as f64 / 1000.0)
                        } else {
                            d
                        }
                    }
                }
            } else {
                if ar.window.is_empty() && (ar.prev.is_none() || ar.next.is_none()) {
                    continue;
                }
                let has_prev = ar.prev.is_some();
                let mut pts: Vec<Pt> = ar
                    .prev
                    .into_iter()
                    .chain(ar.window)
                    .chain(ar.next)
                    .collect();
                if counter {
                    correct_resets(&mut pts);
                }
                let value_at = |x: i64| -> Option<f64> {
                    let i = pts.partition_point(|p| p.0 <= x);
                    let before = i.checked_sub(1).and_then(|j| pts.get(j)).copied();
                    let after = pts.get(i).copied();
                    match (before, after) {
                        (Some(b), Some(a)) => Some(interpolate(b, a, x)),
                        (Some(b), None) => Some(b.1),
                        (None, Some(a)) => Some(a.1),
                        (None, None) => None,
                    }
                };
                let _ = has_prev;
                let (Some(sv), Some(ev)) = (value_at(start), value_at(end)) else {
                    continue;
                };
                let d = ev - sv;
                if func == "rate" {
                    d / (range as f64 / 1000.0)
                } else {
                    d
                }
            };
            out.push(Sample {
                labels: s.labels.clone(),
                t,
                value: v,
                drop_name: true,
                h: None,
            });
        }
        Ok(out)
    }

    /// A `smoothed` instant selector: the value interpolated at the
    /// reference time between the samples around it.
    pub(crate) fn smoothed_vector(
        &mut self,
        vs: &VectorSelector,
        t: i64,
    ) -> EvalResult<Vec<Sample>> {
        let data = self.series_data(vs);
        let off = self.duration(vs.offset, &vs.offset_expr);
        let rt = self.at_time(vs.at).unwrap_or(t).saturating_sub(off);
        let mut out = Vec::new();
        for s in data.iter() {
            let ar = around(&s.samples, rt, rt, self.lookback);
            let v = match (ar.prev, ar.next) {
                (Some(p), Some(n)) => interpolate(p, n, rt),
                (Some(p), None) => p.1,
                _ => continue,
            };
            out.push(Sample {
                labels: s.labels.clone(),
                t: rt,
                value: v,
                drop_name: false,
                h: None,
            });
        }
        Ok(out)
    }
}
