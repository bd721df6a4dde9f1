//! klaxon's own metrics: a small registry of counters and gauges and the
//! exposition writer for `GET /metrics`.
//!
//! We write our own instead of pulling in a client library because the set is
//! small, we already own an exposition format on the read side, and the
//! OpenMetrics/text negotiation must behave exactly like a Prometheus client's.

use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A float stored in an atomic, so increments never take a lock.
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    pub fn inc(&self) {
        self.inc_by(1.0)
    }

    pub fn inc_by(&self, v: f64) {
        // The closure always returns Some, so fetch_update cannot fail.
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + v).to_bits())
            });
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// A gauge: a float that can go up and down.
#[derive(Clone, Debug, Default)]
pub struct Gauge(Arc<AtomicU64>);

impl Gauge {
    pub fn set(&self, v: f64) {
        self.0.store(v.to_bits(), Ordering::Relaxed)
    }

    pub fn add(&self, v: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                Some((f64::from_bits(b) + v).to_bits())
            });
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// The kinds of family we expose.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    /// No declared type (node_exporter's vmstat and netstat families):
    /// `untyped` in the text format, `unknown` in OpenMetrics.
    Untyped,
    /// Cumulative buckets plus `_sum` and `_count`. Each snapshot sample
    /// carries its name suffix as a leading [`SUFFIX_LABEL`] pair, which the
    /// writer strips: that keeps `FamilySnapshot` unchanged for every other
    /// kind.
    Histogram,
}

/// Pseudo-label naming a histogram sample's suffix (`_bucket`, `_sum`,
/// `_count`) inside a [`FamilySnapshot`]; never written out.
pub const SUFFIX_LABEL: &str = "__suffix__";

/// Default buckets for request latencies in seconds (client_golang's
/// `DefBuckets`), so dashboards written for Prometheus' own
/// `http_request_duration_seconds` work unchanged.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A histogram child: per-bucket counters (non-cumulative, summed at
/// encoding), a float sum and a count, all lock-free.
#[derive(Clone, Debug)]
pub struct Histogram {
    upper: Arc<[f64]>,
    counts: Arc<[AtomicU64]>,
    sum: Counter,
    count: Arc<AtomicU64>,
}

impl Histogram {
    /// A free-standing histogram (not registered), e.g. for a value only
    /// reported elsewhere.
    pub fn with_buckets(buckets: &[f64]) -> Self {
        let mut upper: Vec<f64> = buckets.iter().copied().filter(|b| b.is_finite()).collect();
        upper.sort_by(f64::total_cmp);
        upper.dedup();
        Histogram::new(upper.into())
    }

    fn new(upper: Arc<[f64]>) -> Self {
        let counts = (0..upper.len()).map(|_| AtomicU64::new(0)).collect();
        Histogram {
            upper,
            counts,
            sum: Counter::default(),
            count: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn observe(&self, v: f64) {
        let i = self.upper.partition_point(|b| *b < v);
        if let Some(c) = self.counts.get(i) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        self.sum.inc_by(v);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn sum(&self) -> f64 {
        self.sum.get()
    }

    /// `(upper bound, cumulative count)` per bucket, `+Inf` excluded.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut acc = 0;
        self.upper
            .iter()
            .zip(self.counts.iter())
            .map(|(b, c)| {
                acc += c.load(Ordering::Relaxed);
                (*b, acc)
            })
            .collect()
    }

    /// The `q` quantile estimated like PromQL's `histogram_quantile` (linear
    /// interpolation inside the bucket); `None` without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut lower = 0.0;
        let mut below = 0u64;
        for (b, c) in self.cumulative() {
            if c as f64 >= rank {
                let in_bucket = (c - below) as f64;
                if in_bucket == 0.0 {
                    return Some(b);
                }
                return Some(lower + (b - lower) * (rank - below as f64) / in_bucket);
            }
            lower = b;
            below = c;
        }
        Some(lower)
    }
}

/// Histograms keyed by label values, all with the same buckets.
#[derive(Debug)]
pub struct HistogramVec {
    label_names: Vec<&'static str>,
    upper: Arc<[f64]>,
    children: RwLock<BTreeMap<Vec<String>, Histogram>>,
}

impl HistogramVec {
    /// The child for these label values (created on first use).
    pub fn with(&self, values: &[&str]) -> Histogram {
        let key: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        if let Some(h) = self.children.read().get(&key) {
            return h.clone();
        }
        self.children
            .write()
            .entry(key)
            .or_insert_with(|| Histogram::new(self.upper.clone()))
            .clone()
    }

    /// Removes a child (an endpoint that went away).
    pub fn remove(&self, values: &[&str]) {
        let key: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        self.children.write().remove(&key);
    }

    /// Every child with its label values, for callers that aggregate.
    pub fn children(&self) -> Vec<(Vec<String>, Histogram)> {
        self.children
            .read()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn snapshot(&self, name: &str, help: &str) -> FamilySnapshot {
        let mut samples = Vec::new();
        for (vals, h) in self.children.read().iter() {
            let base: Vec<(String, String)> = self
                .label_names
                .iter()
                .zip(vals)
                .map(|(n, v)| (n.to_string(), v.clone()))
                .collect();
            let with = |suffix: &str, extra: Option<(String, String)>| {
                let mut l = vec![(SUFFIX_LABEL.to_string(), suffix.to_string())];
                l.extend(base.iter().cloned());
                l.extend(extra);
                l
            };
            let mut bound = String::new();
            for (b, c) in h.cumulative() {
                bound.clear();
                format_value(b, &mut bound);
                samples.push((
                    with("_bucket", Some(("le".into(), bound.clone()))),
                    c as f64,
                ));
            }
            let count = h.count() as f64;
            samples.push((with("_bucket", Some(("le".into(), "+Inf".into()))), count));
            samples.push((with("_sum", None), h.sum()));
            samples.push((with("_count", None), count));
        }
        FamilySnapshot {
            name: name.to_string(),
            help: help.to_string(),
            kind: Kind::Histogram,
            samples,
        }
    }
}

/// A family of children keyed by label values.
#[derive(Debug)]
pub struct Family<T> {
    label_names: Vec<&'static str>,
    children: RwLock<BTreeMap<Vec<String>, T>>,
}

impl<T: Clone + Default> Family<T> {
    fn new(label_names: &[&'static str]) -> Self {
        Family {
            label_names: label_names.to_vec(),
            children: RwLock::new(BTreeMap::new()),
        }
    }

    /// The child for these label values (created on first use).
    pub fn with(&self, values: &[&str]) -> T {
        debug_assert_eq!(values.len(), self.label_names.len());
        if let Some(c) = self
            .children
            .read()
            .get(&values.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        {
            return c.clone();
        }
        self.children
            .write()
            .entry(values.iter().map(|s| s.to_string()).collect())
            .or_default()
            .clone()
    }

    /// Removes a child, e.g. when a scrape pool goes away.
    pub fn remove(&self, values: &[&str]) {
        let key: Vec<String> = values.iter().map(|s| s.to_string()).collect();
        self.children.write().remove(&key);
    }
}

pub type CounterVec = Family<Counter>;
pub type GaugeVec = Family<Gauge>;

/// One family's samples at encoding time.
pub struct FamilySnapshot {
    pub name: String,
    pub help: String,
    pub kind: Kind,
    pub samples: Vec<(Vec<(String, String)>, f64)>,
}

impl FamilySnapshot {
    /// A family of one sample without labels (most of klaxon's own gauges
    /// and counters).
    pub fn single(name: &str, help: &str, kind: Kind, v: f64) -> FamilySnapshot {
        FamilySnapshot {
            name: name.into(),
            help: help.into(),
            kind,
            samples: vec![(Vec::new(), v)],
        }
    }
}

/// Families being built by a collector (host, PostgreSQL), looked up by
/// name so samples of one family from different sources land together.
#[derive(Default)]
pub struct FamilyBuilder {
    fams: Vec<FamilySnapshot>,
    index: HashMap<String, usize>,
}

impl FamilyBuilder {
    /// Adds one sample. The first call for a name fixes its help and kind.
    pub fn push(&mut self, name: &str, help: &str, kind: Kind, labels: &[(&str, &str)], v: f64) {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.fams.push(FamilySnapshot {
                    name: name.to_string(),
                    help: help.to_string(),
                    kind,
                    samples: Vec::new(),
                });
                let i = self.fams.len() - 1;
                self.index.insert(name.to_string(), i);
                i
            }
        };
        if let Some(f) = self.fams.get_mut(i) {
            f.samples.push((
                labels
                    .iter()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                v,
            ));
        }
    }

    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.push(name, help, Kind::Gauge, labels, v)
    }

    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.push(name, help, Kind::Counter, labels, v)
    }

    pub fn untyped(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.push(name, help, Kind::Untyped, labels, v)
    }

    /// Sum of a family's samples; `None` when it has none (its query failed).
    pub fn sum(&self, name: &str) -> Option<f64> {
        let f = self.fams.get(*self.index.get(name)?)?;
        if f.samples.is_empty() {
            return None;
        }
        Some(
            f.samples
                .iter()
                .map(|(_, v)| v)
                .filter(|v| !v.is_nan())
                .sum(),
        )
    }

    /// Moves every family of `other` in (samples appended to same-named ones).
    pub fn merge(&mut self, other: FamilyBuilder) {
        for f in other.fams {
            match self.index.get(&f.name) {
                Some(&i) => {
                    if let Some(mine) = self.fams.get_mut(i) {
                        mine.samples.extend(f.samples);
                    }
                }
                None => {
                    self.index.insert(f.name.clone(), self.fams.len());
                    self.fams.push(f);
                }
            }
        }
    }

    /// The families sorted by name, samples sorted by labels, as
    /// client_golang exposes them (stable output for diffing).
    pub fn finish(mut self) -> Vec<FamilySnapshot> {
        self.fams.sort_by(|a, b| a.name.cmp(&b.name));
        for f in &mut self.fams {
            f.samples.sort_by(|a, b| a.0.cmp(&b.0));
            for (labels, _) in &mut f.samples {
                labels.sort();
            }
        }
        self.fams
    }
}

type CollectFn = Box<dyn Fn(&mut Vec<FamilySnapshot>) + Send + Sync>;

enum Entry {
    Counter(&'static str, &'static str, Arc<CounterVec>),
    Gauge(&'static str, &'static str, Arc<GaugeVec>),
    Histogram(&'static str, &'static str, Arc<HistogramVec>),
    Collector(CollectFn),
}

/// All of klaxon's own metrics. Counter names are given without `_total`;
/// the writer adds it as the format requires.
#[derive(Default)]
pub struct Registry {
    entries: RwLock<Vec<Entry>>,
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn counter_vec(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[&'static str],
    ) -> Arc<CounterVec> {
        let v = Arc::new(CounterVec::new(labels));
        self.entries
            .write()
            .push(Entry::Counter(name, help, v.clone()));
        v
    }

    pub fn counter(&self, name: &'static str, help: &'static str) -> Counter {
        self.counter_vec(name, help, &[]).with(&[])
    }

    pub fn gauge_vec(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[&'static str],
    ) -> Arc<GaugeVec> {
        let v = Arc::new(GaugeVec::new(labels));
        self.entries
            .write()
            .push(Entry::Gauge(name, help, v.clone()));
        v
    }

    pub fn gauge(&self, name: &'static str, help: &'static str) -> Gauge {
        self.gauge_vec(name, help, &[]).with(&[])
    }

    /// A histogram family with the given bucket upper bounds (sorted,
    /// `+Inf` implied).
    pub fn histogram_vec(
        &self,
        name: &'static str,
        help: &'static str,
        labels: &[&'static str],
        buckets: &[f64],
    ) -> Arc<HistogramVec> {
        let mut upper: Vec<f64> = buckets.iter().copied().filter(|b| b.is_finite()).collect();
        upper.sort_by(f64::total_cmp);
        upper.dedup();
        let v = Arc::new(HistogramVec {
            label_names: labels.to_vec(),
            upper: upper.into(),
            children: RwLock::new(BTreeMap::new()),
        });
        self.entries
            .write()
            .push(Entry::Histogram(name, help, v.clone()));
        v
    }

    /// Registers a function called at every encoding, for values read from
    /// elsewhere (head statistics, /proc).
    pub fn collector(&self, f: impl Fn(&mut Vec<FamilySnapshot>) + Send + Sync + 'static) {
        self.entries.write().push(Entry::Collector(Box::new(f)));
    }

    /// Every family, sorted by name.
    pub fn gather(&self) -> Vec<FamilySnapshot> {
        let mut out = Vec::new();
        for e in self.entries.read().iter() {
            match e {
                Entry::Counter(n, h, v) => out.push(snapshot(n, h, Kind::Counter, v, |c| c.get())),
                Entry::Gauge(n, h, v) => out.push(snapshot(n, h, Kind::Gauge, v, |g| g.get())),
                Entry::Histogram(n, h, v) => out.push(v.snapshot(n, h)),
                Entry::Collector(f) => f(&mut out),
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Encodes every family; `openmetrics` selects OpenMetrics 1.0 over text 0.0.4.
    pub fn encode(&self, openmetrics: bool) -> String {
        encode(&self.gather(), openmetrics)
    }
}

fn snapshot<T>(
    name: &str,
    help: &str,
    kind: Kind,
    v: &Family<T>,
    get: impl Fn(&T) -> f64,
) -> FamilySnapshot {
    let children = v.children.read();
    FamilySnapshot {
        name: name.to_string(),
        help: help.to_string(),
        kind,
        samples: children
            .iter()
            .map(|(vals, c)| {
                let labels = v
                    .label_names
                    .iter()
                    .zip(vals)
                    .map(|(n, v)| (n.to_string(), v.clone()))
                    .collect();
                (labels, get(c))
            })
            .collect(),
    }
}

/// Content type for the text exposition format 0.0.4.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Content type for OpenMetrics 1.0.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Whether an `Accept` header prefers OpenMetrics, as client_golang decides:
/// OpenMetrics only when asked for explicitly.
pub fn wants_openmetrics(accept: &str) -> bool {
    accept.split(',').any(|part| {
        let mut it = part.split(';').map(str::trim);
        let ok = it.next() == Some("application/openmetrics-text");
        // A q=0 entry is an explicit refusal.
        ok && !it.any(|p| p.replace(' ', "") == "q=0")
    })
}

/// Formats a float as the exposition formats expect.
pub fn format_value(v: f64, out: &mut String) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v == f64::INFINITY {
        out.push_str("+Inf");
    } else if v == f64::NEG_INFINITY {
        out.push_str("-Inf");
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        let _ = write!(out, "{}", v as i64);
    } else {
        let _ = write!(out, "{v}");
    }
}

fn escape_help(h: &str) -> String {
    h.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The `# HELP` and `# TYPE` lines of a family in the text formats (every
/// encoder in klaxon writes them through here).
pub fn write_header(out: &mut String, name: &str, help: &str, type_name: &str) {
    let _ = writeln!(out, "# HELP {name} {}", escape_help(help));
    let _ = writeln!(out, "# TYPE {name} {type_name}");
}

/// A sample line up to its value: `name` + `suffix`, the label block when
/// there are labels, and the separating space. The caller appends the value
/// in its own float format and the newline.
pub fn write_series(out: &mut String, name: &str, suffix: &str, labels: &[(String, String)]) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() {
        out.push('{');
        for (i, (n, val)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(
                out,
                "{n}=\"{}\"",
                crate::model::labels::escape_label_value(val)
            );
        }
        out.push('}');
    }
    out.push(' ');
}

impl Kind {
    /// The type's name in the text format 0.0.4 (`# TYPE`).
    pub fn text_name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Untyped => "untyped",
            Kind::Histogram => "histogram",
        }
    }
}

/// Writes families in the text format or OpenMetrics.
pub fn encode(families: &[FamilySnapshot], openmetrics: bool) -> String {
    let mut out = String::with_capacity(8192);
    for f in families {
        let sample_name = match f.kind {
            Kind::Counter => format!("{}_total", f.name),
            Kind::Gauge | Kind::Untyped | Kind::Histogram => f.name.clone(),
        };
        let family_name = if openmetrics { &f.name } else { &sample_name };
        let kind = match f.kind {
            Kind::Untyped if openmetrics => "unknown",
            k => k.text_name(),
        };
        write_header(&mut out, family_name, &f.help, kind);
        for (labels, v) in &f.samples {
            let (suffix, labels) = match labels.split_first() {
                Some(((n, suffix), rest)) if n == SUFFIX_LABEL => (suffix.as_str(), rest),
                _ => ("", &labels[..]),
            };
            write_series(&mut out, &sample_name, suffix, labels);
            format_value(*v, &mut out);
            out.push('\n');
        }
    }
    if openmetrics {
        out.push_str("# EOF\n");
    }
    out
}

/// `process_*` families as client libraries expose them (Linux only: read
/// from /proc; elsewhere nothing is reported).
pub fn register_process_collector(r: &Registry) {
    let start = crate::model::now_millis() as f64 / 1000.0;
    r.collector(move |out| {
        let mut g = |name: &str, help: &str, kind: Kind, v: f64| {
            out.push(FamilySnapshot::single(name, help, kind, v))
        };
        g(
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            Kind::Gauge,
            start,
        );
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return;
        };
        // Fields after the command name (which may contain spaces) start at ")".
        let Some(rest) = stat.rfind(')').map(|i| &stat[i + 1..]) else {
            return;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|s| s.parse::<f64>().ok()).unwrap_or(0.0);
        // After ")": state=0, utime=11, stime=12, vsize=20, rss=21 (pages).
        let ticks = 100.0;
        g(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds.",
            Kind::Counter,
            (num(11) + num(12)) / ticks,
        );
        g(
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            Kind::Gauge,
            num(20),
        );
        g(
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            Kind::Gauge,
            num(21) * 4096.0,
        );
        if let Ok(rd) = std::fs::read_dir("/proc/self/fd") {
            g(
                "process_open_fds",
                "Number of open file descriptors.",
                Kind::Gauge,
                rd.count() as f64,
            );
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_get_total_suffix_in_both_formats() {
        let r = Registry::new();
        let c = r.counter_vec("x_requests", "Requests.", &["code"]);
        c.with(&["200"]).inc();
        c.with(&["200"]).inc_by(2.5);
        r.gauge("x_up", "Up.").set(1.0);
        let text = r.encode(false);
        assert!(text.contains("# TYPE x_requests_total counter\n"));
        assert!(text.contains("x_requests_total{code=\"200\"} 3.5\n"));
        assert!(text.contains("x_up 1\n"));
        assert!(!text.contains("# EOF"));
        let om = r.encode(true);
        assert!(om.contains("# TYPE x_requests counter\n"));
        assert!(om.contains("x_requests_total{code=\"200\"} 3.5\n"));
        assert!(om.ends_with("# EOF\n"));
    }

    #[test]
    fn histogram_buckets_are_cumulative_with_sum_and_count() {
        let r = Registry::new();
        let h = r.histogram_vec("x_seconds", "Latency.", &["route"], &[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 3.0] {
            h.with(&["/a"]).observe(v);
        }
        let text = r.encode(false);
        assert!(text.contains("# TYPE x_seconds histogram\n"), "{text}");
        assert!(
            text.contains("x_seconds_bucket{route=\"/a\",le=\"0.1\"} 2\n"),
            "{text}"
        );
        assert!(
            text.contains("x_seconds_bucket{route=\"/a\",le=\"1\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("x_seconds_bucket{route=\"/a\",le=\"+Inf\"} 4\n"),
            "{text}"
        );
        assert!(
            text.contains("x_seconds_sum{route=\"/a\"} 3.65\n"),
            "{text}"
        );
        assert!(text.contains("x_seconds_count{route=\"/a\"} 4\n"), "{text}");
        assert!(!text.contains(SUFFIX_LABEL));
        let q = h.with(&["/a"]).quantile(0.5).unwrap();
        assert!((q - 0.1).abs() < 1e-9, "{q}");
    }

    #[test]
    fn accept_negotiation() {
        assert!(wants_openmetrics(
            "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
        ));
        assert!(!wants_openmetrics("text/plain;version=0.0.4"));
        assert!(!wants_openmetrics("application/openmetrics-text;q=0"));
        assert!(!wants_openmetrics("*/*"));
    }

    #[test]
    fn values_format() {
        let mut s = String::new();
        for v in [1.0, 0.25, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -3.0] {
            format_value(v, &mut s);
            s.push(' ');
        }
        assert_eq!(s, "1 0.25 NaN +Inf -Inf -3 ");
    }
}
