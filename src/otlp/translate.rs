//! OTLP metrics to Prometheus samples, as Prometheus 3's OTLP receiver
//! translates them:
//! - gauges and non-monotonic sums are gauges; monotonic cumulative sums
//!   are counters (`_total`); histograms are classic `_bucket{le}` (running
//!   totals, `+Inf` = count), `_sum` (when sent), `_count`, or with
//!   `otlp.convert_histograms_to_nhcb` one native histogram with custom
//!   buckets (the explicit bounds); exponential histograms are native
//!   histograms ([`exponential`]); summaries are `{quantile}`, `_sum`,
//!   `_count`;
//! - every series of a resource gets `job` (`service.namespace/service.name`)
//!   and `instance` (`service.instance.id`), the promoted resource
//!   attributes (never overriding a point's attribute), and the point's
//!   attributes (keys escaped to label names; two keys escaping to the same
//!   name have their values joined with `;` in key order);
//! - a resource with attributes besides the identifying three gets a
//!   `target_info` series (value 1) carrying them, with a sample every half
//!   lookback delta from the resource's earliest to its latest point;
//! - a point flagged "no recorded value" is a staleness marker;
//! - exemplars keep their value and timestamp (the point's when unset),
//!   with `trace_id` and `span_id` (hex) and, when all fit in 128
//!   characters, the filtered attributes as labels; a classic histogram's
//!   exemplars go to the first bucket whose bound is not below their value;
//! - delta (and unspecified) temporality is refused with Prometheus'
//!   message: the rest of the request is kept. Start times are not stored
//!   (Prometheus stores them only behind a feature flag).

use super::config::OtlpConfig;
use super::decode::{
    temporality, Data, Exemplar, ExemplarValue, ExportRequest, KeyValue, Metric, ResourceMetrics,
    ScopeMetrics, FLAG_NO_RECORDED_VALUE,
};
use super::names::{label_name, metric_name, Kind, NameError};
use crate::model::histogram::{
    absolute_to_deltas, spans_for, CounterResetHint, Histogram, CUSTOM_BUCKETS_SCHEMA,
    EXPONENTIAL_SCHEMA_MAX, EXPONENTIAL_SCHEMA_MIN,
};
use crate::model::labels::METRIC_NAME;
use crate::model::{Labels, STALE_NAN};
use crate::tsdb::exemplars::{Exemplar as PromExemplar, MAX_LABELS_RUNES};
use crate::tsdb::HistValue;
use std::collections::BTreeMap;

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";
const IDENTIFYING: [&str; 3] = [SERVICE_NAMESPACE, SERVICE_NAME, SERVICE_INSTANCE_ID];

/// `target_info` samples are written every half lookback delta (Prometheus'
/// default lookback, 5m).
pub const TARGET_INFO_INTERVAL_MS: i64 = 150_000;
/// At most this many `target_info` samples per resource and request: a
/// point stamped at the epoch must not make millions of them.
const MAX_TARGET_INFO_SAMPLES: i64 = 1_000;
/// The zero threshold of translated exponential histograms: Prometheus
/// uses this one whatever the point's `zero_threshold`.
pub const ZERO_THRESHOLD: f64 = 1e-128;
/// Empty buckets kept between populated ones before a new span starts.
const MAX_EMPTY_BUCKETS_IN_SPAN: usize = 2;

/// One float sample of the translation.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// One native histogram sample of the translation.
#[derive(Debug, Clone, PartialEq)]
pub struct HistSample {
    pub labels: Labels,
    pub t: i64,
    pub h: HistValue,
}

/// An exemplar and the series it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesExemplar {
    pub series: Labels,
    pub exemplar: PromExemplar,
}

/// What a request translates to: the samples, one message per metric (or
/// point) that could not be translated, and warnings (dropped empty
/// metrics, inconsistent points) that do not fail the request.
#[derive(Debug, Default)]
pub struct Translated {
    pub samples: Vec<Sample>,
    pub histograms: Vec<HistSample>,
    pub exemplars: Vec<SeriesExemplar>,
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

fn millis(ns: u64) -> i64 {
    (ns / 1_000_000) as i64
}

fn value_or_stale(v: f64, flags: u32) -> f64 {
    if flags & FLAG_NO_RECORDED_VALUE != 0 {
        STALE_NAN
    } else {
        v
    }
}

fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a KeyValue> {
    attrs.iter().rev().find(|kv| kv.key == key)
}

type Builder = BTreeMap<String, String>;

/// Sets `name` unless it already holds a non-empty value.
fn set_if_empty(b: &mut Builder, name: String, value: String) {
    match b.get(&name) {
        Some(v) if !v.is_empty() => {}
        _ => {
            b.insert(name, value);
        }
    }
}

/// The labels every sample of a point shares (Prometheus'
/// `createAttributes`), without the metric name.
fn point_labels(
    resource: &[KeyValue],
    attrs: &[KeyValue],
    ignore: &[&str],
    scope: Option<&ScopeMetrics>,
    promote: bool,
    cfg: &OtlpConfig,
) -> Result<Builder, NameError> {
    let strategy = cfg.translation_strategy;
    let mut sorted: Vec<&KeyValue> = attrs
        .iter()
        .filter(|kv| !ignore.contains(&kv.key.as_str()))
        .collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    let mut b = Builder::new();
    for kv in sorted {
        let value = kv.value_string();
        let name = label_name(&kv.key, cfg.label_options())?;
        if !strategy.escapes() {
            // Names are kept as sent: no two keys collide.
            b.insert(name, value);
            continue;
        }
        match b.get_mut(&name) {
            Some(existing) if !existing.is_empty() => {
                existing.push(';');
                existing.push_str(&value);
            }
            _ => {
                b.insert(name, value);
            }
        }
    }
    if promote {
        for kv in resource {
            let listed = if cfg.promote_all_resource_attributes {
                !cfg.ignore_resource_attributes.contains(&kv.key)
            } else {
                cfg.promote_resource_attributes.contains(&kv.key)
            };
            if listed {
                let name = label_name(&kv.key, cfg.label_options())?;
                set_if_empty(&mut b, name, kv.value_string());
            }
        }
    }
    let scope = scope
        .and_then(|s| s.scope.as_ref())
        .filter(|s| cfg.promote_scope_metadata && !s.name.is_empty());
    if let Some(s) = scope {
        b.insert("otel_scope_name".into(), s.name.clone());
        b.insert("otel_scope_version".into(), s.version.clone());
    }
    if let Some(name) = find(resource, SERVICE_NAME) {
        let mut job = name.value_string();
        if let Some(ns) = find(resource, SERVICE_NAMESPACE) {
            job = format!("{}/{job}", ns.value_string());
        }
        b.insert("job".into(), job);
    }
    if let Some(id) = find(resource, SERVICE_INSTANCE_ID) {
        b.insert("instance".into(), id.value_string());
    }
    Ok(b)
}

/// An OTLP exemplar as Prometheus keeps it (Prometheus' `getPromExemplars`);
/// `t` is the point's timestamp, used when the exemplar has none.
fn exemplar(e: &Exemplar, t: i64) -> Result<PromExemplar, String> {
    let value = match e.value {
        Some(ExemplarValue::AsDouble(v)) => v,
        Some(ExemplarValue::AsInt(v)) => v as f64,
        None => return Err("unsupported exemplar value type: Empty".into()),
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if e.trace_id.iter().any(|b| *b != 0) {
        pairs.push(("trace_id".into(), hex(&e.trace_id)));
    }
    if e.span_id.iter().any(|b| *b != 0) {
        pairs.push(("span_id".into(), hex(&e.span_id)));
    }
    let attrs: Vec<(String, String)> = e
        .filtered_attributes
        .iter()
        .map(|kv| (kv.key.clone(), kv.value_string()))
        .collect();
    let runes = |p: &[(String, String)]| -> usize {
        p.iter()
            .map(|(k, v)| k.chars().count() + v.chars().count())
            .sum()
    };
    if runes(&pairs) + runes(&attrs) <= MAX_LABELS_RUNES {
        pairs.extend(attrs);
    }
    let ts = millis(e.time_unix_nano);
    Ok(PromExemplar {
        labels: Labels::from_pairs(pairs),
        value,
        ts: if ts == 0 { t } else { ts },
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// OTel's dense bucket counts (index `offset + i`) as the ascending
/// (Prometheus index, count) pairs of the populated buckets: `2^scale_down`
/// neighbours merged into one, `shift` added to the merged index.
fn populated_buckets(
    counts: &[u64],
    offset: i32,
    scale_down: u32,
    shift: i64,
) -> Result<Vec<(i32, i64)>, String> {
    let mut out: Vec<(i32, i64)> = Vec::new();
    for (i, &c) in counts.iter().enumerate() {
        if c == 0 {
            continue;
        }
        let idx = ((i64::from(offset) + i as i64) >> scale_down.min(63)) + shift;
        let idx = i32::try_from(idx).map_err(|_| format!("bucket index {idx} out of range"))?;
        match out.last_mut() {
            Some((last, n)) if *last == idx => *n = n.wrapping_add(c as i64),
            _ => out.push((idx, c as i64)),
        }
    }
    Ok(out)
}

/// `h` with the populated buckets, laid out as Prometheus lays them out
/// (runs of up to two empty buckets inside a span).
fn with_buckets(mut h: Histogram, positive: &[(i32, i64)], negative: &[(i32, i64)]) -> Histogram {
    let deltas = |b: &[(i32, i64)]| absolute_to_deltas(&b.iter().map(|x| x.1).collect::<Vec<_>>());
    h.positive_spans = spans_for(positive.iter().map(|b| b.0));
    h.negative_spans = spans_for(negative.iter().map(|b| b.0));
    h.positive_buckets = deltas(positive);
    h.negative_buckets = deltas(negative);
    h.compact(MAX_EMPTY_BUCKETS_IN_SPAN);
    h
}

/// An exponential histogram point as Prometheus' native histogram: the
/// scale is the schema (scales above 8 are reduced to 8 by merging
/// buckets, scales below -4 refused); OTel's bucket `i` covers
/// `(base^i, base^(i+1)]`, Prometheus' bucket `i+1`; the zero bucket keeps
/// its count under Prometheus' fixed threshold ([`ZERO_THRESHOLD`]); min and
/// max are dropped.
pub fn exponential(p: &super::decode::ExpHistogramPoint) -> Result<HistValue, String> {
    let mut schema = p.scale;
    if schema < EXPONENTIAL_SCHEMA_MIN {
        return Err(format!(
            "cannot convert exponential to native histogram. Scale must be >= {EXPONENTIAL_SCHEMA_MIN}, was {schema}"
        ));
    }
    let mut scale_down = 0u32;
    if schema > EXPONENTIAL_SCHEMA_MAX {
        scale_down = (schema - EXPONENTIAL_SCHEMA_MAX) as u32;
        schema = EXPONENTIAL_SCHEMA_MAX;
    }
    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
        return Ok(crate::tsdb::series_hist::stale_marker(false));
    }
    let side = |b: &Option<super::decode::Buckets>| match b {
        Some(b) => populated_buckets(&b.bucket_counts, b.offset, scale_down, 1),
        None => Ok(Vec::new()),
    };
    let h = Histogram {
        counter_reset_hint: CounterResetHint::Unknown,
        schema,
        zero_threshold: ZERO_THRESHOLD,
        zero_count: p.zero_count,
        count: p.count,
        sum: p.sum.unwrap_or(0.0),
        ..Histogram::default()
    };
    Ok(HistValue::Int(with_buckets(
        h,
        &side(&p.positive)?,
        &side(&p.negative)?,
    )))
}

/// An explicit-bucket histogram point as a native histogram with custom
/// buckets: the explicit bounds are the custom values, the last bucket
/// ends at +Inf.
pub fn custom_buckets(p: &super::decode::HistogramPoint) -> Result<HistValue, String> {
    if p.flags & FLAG_NO_RECORDED_VALUE != 0 {
        return Ok(crate::tsdb::series_hist::stale_marker(false));
    }
    let buckets = populated_buckets(&p.bucket_counts, 0, 0, 0)?;
    let h = Histogram {
        counter_reset_hint: CounterResetHint::Unknown,
        schema: CUSTOM_BUCKETS_SCHEMA,
        count: p.count,
        sum: p.sum.unwrap_or(0.0),
        custom_values: p.explicit_bounds.clone(),
        ..Histogram::default()
    };
    Ok(HistValue::Int(with_buckets(h, &buckets, &[])))
}

/// Collects the samples of one resource.
struct Out<'a> {
    cfg: &'a OtlpConfig,
    out: &'a mut Translated,
}

impl Out<'_> {
    fn labels(&self, base: &Builder, name: &str, extra: Option<(&str, String)>) -> Labels {
        let mut b = base.clone();
        if let Some((k, val)) = extra {
            b.insert(k.to_string(), val);
        }
        b.insert(METRIC_NAME.to_string(), name.to_string());
        Labels::from_pairs(b)
    }

    fn push(&mut self, base: &Builder, name: &str, extra: Option<(&str, String)>, t: i64, v: f64) {
        let labels = self.labels(base, name, extra);
        self.out.samples.push(Sample { labels, t, v });
    }

    /// Like `push`, with exemplars for the series.
    fn push_with(
        &mut self,
        base: &Builder,
        name: &str,
        extra: Option<(&str, String)>,
        t: i64,
        v: f64,
        exemplars: &[PromExemplar],
    ) {
        let labels = self.labels(base, name, extra);
        self.add_exemplars(&labels, exemplars);
        self.out.samples.push(Sample { labels, t, v });
    }

    fn add_exemplars(&mut self, series: &Labels, exemplars: &[PromExemplar]) {
        for e in exemplars {
            self.out.exemplars.push(SeriesExemplar {
                series: series.clone(),
                exemplar: e.clone(),
            });
        }
    }

    fn histogram(&mut self, base: &Builder, name: &str, t: i64, h: HistValue, ex: &[PromExemplar]) {
        if let HistValue::Int(i) = &h {
            if i.count == 0 && i.sum != 0.0 && !i.sum.is_nan() {
                self.out.warnings.push(format!(
                    "histogram data point has zero count, but non-zero sum: {:.6}",
                    i.sum
                ));
            }
        }
        let labels = self.labels(base, name, None);
        self.add_exemplars(&labels, ex);
        self.out.histograms.push(HistSample { labels, t, h });
    }

    fn metric(&mut self, rm: &ResourceMetrics, scope: &ScopeMetrics, m: &Metric) {
        let Some(data) = &m.data else {
            self.out
                .errors
                .push(format!("unsupported metric type for metric {:?}", m.name));
            return;
        };
        let (kind, temp, len) = match data {
            Data::Gauge(g) => (Kind::Gauge, None, g.data_points.len()),
            Data::Sum(s) => (
                if s.is_monotonic {
                    Kind::MonotonicCounter
                } else {
                    Kind::NonMonotonicCounter
                },
                Some(s.aggregation_temporality),
                s.data_points.len(),
            ),
            Data::Histogram(h) => (
                Kind::Histogram,
                Some(h.aggregation_temporality),
                h.data_points.len(),
            ),
            Data::ExponentialHistogram(h) => (
                Kind::ExponentialHistogram,
                Some(h.aggregation_temporality),
                h.data_points.len(),
            ),
            Data::Summary(s) => (Kind::Summary, None, s.data_points.len()),
        };
        if temp.is_some_and(|t| t != temporality::CUMULATIVE) {
            self.out.errors.push(format!(
                "invalid temporality and type combination for metric {:?}",
                m.name
            ));
            return;
        }
        let name = match metric_name(&m.name, &m.unit, kind, self.cfg.translation_strategy) {
            Ok(n) => n,
            Err(e) => {
                self.out.errors.push(e.0);
                return;
            }
        };
        if len == 0 {
            self.out
                .warnings
                .push(format!("empty data points. {} is dropped", m.name));
            return;
        }
        let resource = rm.attributes();
        let cfg = self.cfg;
        let labels_of =
            |attrs: &[KeyValue]| point_labels(resource, attrs, &[], Some(scope), true, cfg);
        match data {
            Data::Gauge(g) => self.numbers(&g.data_points, &name, &labels_of),
            Data::Sum(s) => self.numbers(&s.data_points, &name, &labels_of),
            Data::Histogram(h) => {
                for p in &h.data_points {
                    let point = (&p.attributes[..], p.time_unix_nano, &p.exemplars[..]);
                    let Some((base, t, ex)) = self.point(&labels_of, point) else {
                        continue;
                    };
                    if self.cfg.convert_histograms_to_nhcb {
                        match custom_buckets(p) {
                            Ok(h) => self.histogram(&base, &name, t, h, &ex),
                            Err(e) => self.out.errors.push(e),
                        }
                    } else {
                        self.classic(&base, &name, p, t, &ex);
                    }
                }
            }
            Data::ExponentialHistogram(h) => {
                for p in &h.data_points {
                    let point = (&p.attributes[..], p.time_unix_nano, &p.exemplars[..]);
                    let Some((base, t, ex)) = self.point(&labels_of, point) else {
                        continue;
                    };
                    match exponential(p) {
                        Ok(h) => self.histogram(&base, &name, t, h, &ex),
                        Err(e) => self.out.errors.push(e),
                    }
                }
            }
            Data::Summary(s) => {
                for p in &s.data_points {
                    let point = (&p.attributes[..], p.time_unix_nano, &[][..]);
                    let Some((base, t, _)) = self.point(&labels_of, point) else {
                        continue;
                    };
                    let v = |x: f64| value_or_stale(x, p.flags);
                    self.push(&base, &format!("{name}_sum"), None, t, v(p.sum));
                    self.push(&base, &format!("{name}_count"), None, t, v(p.count as f64));
                    for q in &p.quantile_values {
                        let qs = crate::model::gofmt::format_float(q.quantile);
                        self.push(&base, &name, Some(("quantile", qs)), t, v(q.value));
                    }
                }
            }
        }
    }

    /// What every data point needs: its labels, its timestamp in
    /// milliseconds and its exemplars; `None` (the reason recorded) when
    /// the labels or an exemplar cannot be translated.
    fn point(
        &mut self,
        labels_of: &impl Fn(&[KeyValue]) -> Result<Builder, NameError>,
        (attrs, time_ns, exemplars): (&[KeyValue], u64, &[Exemplar]),
    ) -> Option<(Builder, i64, Vec<PromExemplar>)> {
        let base = match labels_of(attrs) {
            Ok(b) => b,
            Err(e) => {
                self.out.errors.push(e.0);
                return None;
            }
        };
        let t = millis(time_ns);
        match exemplars.iter().map(|e| exemplar(e, t)).collect() {
            Ok(ex) => Some((base, t, ex)),
            Err(e) => {
                self.out.errors.push(e);
                None
            }
        }
    }

    fn numbers(
        &mut self,
        points: &[super::decode::NumberPoint],
        name: &str,
        labels_of: &impl Fn(&[KeyValue]) -> Result<Builder, NameError>,
    ) {
        for p in points {
            let point = (&p.attributes[..], p.time_unix_nano, &p.exemplars[..]);
            let Some((base, t, ex)) = self.point(labels_of, point) else {
                continue;
            };
            let v = value_or_stale(p.value(), p.flags);
            self.push_with(&base, name, None, t, v, &ex)
        }
    }

    /// A classic histogram: `_sum`, `_count` and cumulative `_bucket`s, the
    /// exemplars on the first bucket whose bound is not below their value.
    fn classic(
        &mut self,
        base: &Builder,
        name: &str,
        p: &super::decode::HistogramPoint,
        t: i64,
        ex: &[PromExemplar],
    ) {
        let v = |x: f64| value_or_stale(x, p.flags);
        if let Some(sum) = p.sum {
            self.push(base, &format!("{name}_sum"), None, t, v(sum));
        }
        self.push(base, &format!("{name}_count"), None, t, v(p.count as f64));
        let bucket = format!("{name}_bucket");
        let mut cumulative = 0u64;
        let mut next_ex = 0;
        for (bound, n) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
            cumulative = cumulative.saturating_add(*n);
            let first = next_ex;
            while next_ex < ex.len() && ex[next_ex].value <= *bound {
                next_ex += 1;
            }
            let le = crate::model::gofmt::format_float(*bound);
            let c = v(cumulative as f64);
            self.push_with(base, &bucket, Some(("le", le)), t, c, &ex[first..next_ex]);
        }
        let c = v(p.count as f64);
        let inf = Some(("le", "+Inf".to_string()));
        self.push_with(base, &bucket, inf, t, c, &ex[next_ex..]);
    }

    /// `target_info` for the resource, its points spanning `first..=last`.
    fn target_info(&mut self, rm: &ResourceMetrics, first: i64, last: i64) {
        let resource = rm.attributes();
        let others = resource
            .iter()
            .filter(|kv| !IDENTIFYING.contains(&kv.key.as_str()))
            .count();
        if others == 0 {
            return;
        }
        let ignore: &[&str] = if self.cfg.keep_identifying_resource_attributes {
            &[]
        } else {
            &IDENTIFYING
        };
        let base = match point_labels(resource, resource, ignore, None, false, self.cfg) {
            Ok(b) => b,
            Err(e) => {
                self.out.errors.push(e.0);
                return;
            }
        };
        if !base.contains_key("job") && !base.contains_key("instance") {
            return;
        }
        let first = first.max(last - MAX_TARGET_INFO_SAMPLES * TARGET_INFO_INTERVAL_MS);
        let mut t = first;
        while t < last {
            self.push(&base, "target_info", None, t, 1.0);
            t += TARGET_INFO_INTERVAL_MS;
        }
        self.push(&base, "target_info", None, last, 1.0);
    }
}

/// The timestamps of a metric's points, in nanoseconds.
fn point_times(m: &Metric) -> Vec<u64> {
    match &m.data {
        None => Vec::new(),
        Some(Data::Gauge(g)) => g.data_points.iter().map(|p| p.time_unix_nano).collect(),
        Some(Data::Sum(s)) => s.data_points.iter().map(|p| p.time_unix_nano).collect(),
        Some(Data::Histogram(h)) => h.data_points.iter().map(|p| p.time_unix_nano).collect(),
        Some(Data::ExponentialHistogram(h)) => {
            h.data_points.iter().map(|p| p.time_unix_nano).collect()
        }
        Some(Data::Summary(s)) => s.data_points.iter().map(|p| p.time_unix_nano).collect(),
    }
}

/// Translates a whole request.
pub fn translate(req: &ExportRequest, cfg: &OtlpConfig) -> Translated {
    let mut out = Translated::default();
    for rm in &req.resource_metrics {
        let mut o = Out { cfg, out: &mut out };
        let (mut first, mut last) = (u64::MAX, 0u64);
        for scope in &rm.scope_metrics {
            for m in &scope.metrics {
                for t in point_times(m) {
                    first = first.min(t);
                    last = last.max(t);
                }
                o.metric(rm, scope, m);
            }
        }
        if first != u64::MAX {
            o.target_info(rm, millis(first), millis(last));
        }
    }
    out
}
