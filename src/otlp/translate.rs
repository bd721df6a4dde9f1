//! OTLP metrics to Prometheus samples, as Prometheus 3's OTLP receiver
//! translates them:
//! - gauges and non-monotonic sums are gauges; monotonic cumulative sums
//!   are counters (`_total`); histograms are classic `_bucket{le}` (running
//!   totals, `+Inf` = count), `_sum` (when sent), `_count`; summaries are
//!   `{quantile}`, `_sum`, `_count`;
//! - every series of a resource gets `job` (`service.namespace/service.name`)
//!   and `instance` (`service.instance.id`), the promoted resource
//!   attributes (never overriding a point's attribute), and the point's
//!   attributes (keys escaped to label names; two keys escaping to the same
//!   name have their values joined with `;` in key order);
//! - a resource with attributes besides the identifying three gets a
//!   `target_info` series (value 1) carrying them, with a sample every half
//!   lookback delta from the resource's earliest to its latest point;
//! - a point flagged "no recorded value" is a staleness marker;
//! - delta (and unspecified) temporality is refused with Prometheus'
//!   message, as are exponential histograms (klaxon has no native
//!   histogram storage yet): the rest of the request is kept.

use super::config::OtlpConfig;
use super::decode::{
    AnyValue, Data, ExportRequest, KeyValue, ResourceMetrics, ScopeMetrics, Temporality,
    FLAG_NO_RECORDED_VALUE,
};
use super::names::{label_name, metric_name, Kind, NameError};
use crate::model::labels::METRIC_NAME;
use crate::model::{Labels, STALE_NAN};
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

/// One float sample of the translation.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// What a request translates to: the samples, and one message per metric
/// (or point) that could not be translated.
#[derive(Debug, Default)]
pub struct Translated {
    pub samples: Vec<Sample>,
    pub errors: Vec<String>,
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

fn find<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .rev()
        .find(|kv| kv.key == key)
        .map(|kv| &kv.value)
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
        let value = kv.value.as_label_value();
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
                set_if_empty(&mut b, name, kv.value.as_label_value());
            }
        }
    }
    if let Some(s) = scope.filter(|s| cfg.promote_scope_metadata && !s.scope_name.is_empty()) {
        b.insert("otel_scope_name".into(), s.scope_name.clone());
        b.insert("otel_scope_version".into(), s.scope_version.clone());
    }
    if let Some(name) = find(resource, SERVICE_NAME) {
        let mut job = name.as_label_value();
        if let Some(ns) = find(resource, SERVICE_NAMESPACE) {
            job = format!("{}/{job}", ns.as_label_value());
        }
        b.insert("job".into(), job);
    }
    if let Some(id) = find(resource, SERVICE_INSTANCE_ID) {
        b.insert("instance".into(), id.as_label_value());
    }
    Ok(b)
}

/// Collects the samples of one resource.
struct Out<'a> {
    cfg: &'a OtlpConfig,
    out: &'a mut Translated,
}

impl Out<'_> {
    fn push(&mut self, base: &Builder, name: &str, extra: Option<(&str, String)>, t: i64, v: f64) {
        let mut b = base.clone();
        if let Some((k, val)) = extra {
            b.insert(k.to_string(), val);
        }
        b.insert(METRIC_NAME.to_string(), name.to_string());
        self.out.samples.push(Sample {
            labels: Labels::from_pairs(b),
            t,
            v,
        });
    }

    fn metric(&mut self, rm: &ResourceMetrics, scope: &ScopeMetrics, m: &super::decode::Metric) {
        let Some(data) = &m.data else {
            self.out
                .errors
                .push(format!("unsupported metric type for metric {:?}", m.name));
            return;
        };
        let (kind, temporality, len) = match data {
            Data::Gauge(p) => (Kind::Gauge, None, p.len()),
            Data::Sum {
                points,
                temporality,
                monotonic,
            } => (
                if *monotonic {
                    Kind::MonotonicCounter
                } else {
                    Kind::NonMonotonicCounter
                },
                Some(*temporality),
                points.len(),
            ),
            Data::Histogram {
                points,
                temporality,
            } => (Kind::Histogram, Some(*temporality), points.len()),
            Data::ExponentialHistogram {
                points,
                temporality,
            } => (Kind::ExponentialHistogram, Some(*temporality), points.len()),
            Data::Summary(p) => (Kind::Summary, None, p.len()),
        };
        if temporality.is_some_and(|t| t != Temporality::Cumulative) {
            self.out.errors.push(format!(
                "invalid temporality and type combination for metric {:?}",
                m.name
            ));
            return;
        }
        if kind == Kind::ExponentialHistogram {
            self.out.errors.push(format!(
                "exponential histogram {:?} refused: klaxon does not store native histograms yet",
                m.name
            ));
            return;
        }
        if len == 0 {
            self.out
                .errors
                .push(format!("empty data points. {} is dropped", m.name));
            return;
        }
        let name = match metric_name(&m.name, &m.unit, kind, self.cfg.translation_strategy) {
            Ok(n) => n,
            Err(e) => {
                self.out.errors.push(e.0);
                return;
            }
        };
        let labels_of = |attrs: &[KeyValue]| {
            point_labels(&rm.resource, attrs, &[], Some(scope), true, self.cfg)
        };
        match data {
            Data::Gauge(points) | Data::Sum { points, .. } => {
                for p in points {
                    match labels_of(&p.attributes) {
                        Ok(base) => {
                            let v = value_or_stale(p.value, p.flags);
                            self.push(&base, &name, None, millis(p.time_unix_nano), v)
                        }
                        Err(e) => self.out.errors.push(e.0),
                    }
                }
            }
            Data::Histogram { points, .. } => {
                for p in points {
                    let base = match labels_of(&p.attributes) {
                        Ok(b) => b,
                        Err(e) => {
                            self.out.errors.push(e.0);
                            continue;
                        }
                    };
                    let t = millis(p.time_unix_nano);
                    let v = |x: f64| value_or_stale(x, p.flags);
                    if let Some(sum) = p.sum {
                        self.push(&base, &format!("{name}_sum"), None, t, v(sum));
                    }
                    self.push(&base, &format!("{name}_count"), None, t, v(p.count as f64));
                    let bucket = format!("{name}_bucket");
                    let mut cumulative = 0u64;
                    for (bound, n) in p.explicit_bounds.iter().zip(&p.bucket_counts) {
                        cumulative = cumulative.saturating_add(*n);
                        let le = crate::model::gofmt::format_float(*bound);
                        self.push(&base, &bucket, Some(("le", le)), t, v(cumulative as f64));
                    }
                    self.push(
                        &base,
                        &bucket,
                        Some(("le", "+Inf".into())),
                        t,
                        v(p.count as f64),
                    );
                }
            }
            Data::Summary(points) => {
                for p in points {
                    let base = match labels_of(&p.attributes) {
                        Ok(b) => b,
                        Err(e) => {
                            self.out.errors.push(e.0);
                            continue;
                        }
                    };
                    let t = millis(p.time_unix_nano);
                    let v = |x: f64| value_or_stale(x, p.flags);
                    self.push(&base, &format!("{name}_sum"), None, t, v(p.sum));
                    self.push(&base, &format!("{name}_count"), None, t, v(p.count as f64));
                    for (q, val) in &p.quantiles {
                        let q = crate::model::gofmt::format_float(*q);
                        self.push(&base, &name, Some(("quantile", q)), t, v(*val));
                    }
                }
            }
            Data::ExponentialHistogram { .. } => {}
        }
    }

    /// `target_info` for the resource, its points spanning `first..=last`.
    fn target_info(&mut self, rm: &ResourceMetrics, first: i64, last: i64) {
        let others = rm
            .resource
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
        let base = match point_labels(&rm.resource, &rm.resource, ignore, None, false, self.cfg) {
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

/// The time span of a metric's points, in nanoseconds.
fn point_times(m: &super::decode::Metric) -> Vec<u64> {
    match &m.data {
        None => Vec::new(),
        Some(Data::Gauge(p)) | Some(Data::Sum { points: p, .. }) => {
            p.iter().map(|p| p.time_unix_nano).collect()
        }
        Some(Data::Histogram { points, .. }) => points.iter().map(|p| p.time_unix_nano).collect(),
        Some(Data::ExponentialHistogram { points, .. }) => {
            points.iter().map(|p| p.time_unix_nano).collect()
        }
        Some(Data::Summary(p)) => p.iter().map(|p| p.time_unix_nano).collect(),
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
