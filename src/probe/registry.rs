//! The per-probe metric set and its text exposition.
//!
//! Every probe gets a fresh registry, exactly like blackbox_exporter builds a
//! new `prometheus.Registry` per request: a family exists only if the prober
//! registered it, which is what makes the set of families comparable with
//! blackbox's output.

use std::collections::BTreeMap;

/// A sample's labels as (name, value) pairs in the prober's order.
pub type SampleLabels = Vec<(String, String)>;

/// One metric family: name, help, and its samples keyed by label values.
#[derive(Clone, Debug, PartialEq)]
pub struct Family {
    pub name: String,
    pub help: String,
    pub samples: BTreeMap<Vec<String>, (SampleLabels, f64)>,
}

/// The metrics of one probe. All blackbox probe metrics are gauges, so no
/// type is stored.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ProbeMetrics {
    families: BTreeMap<String, Family>,
}

impl ProbeMetrics {
    /// Registers a family without samples (blackbox registers a `GaugeVec`
    /// before any label set is known; an empty vec is not exposed).
    pub fn register(&mut self, name: &str, help: &str) -> &mut Family {
        self.families
            .entry(name.to_string())
            .or_insert_with(|| Family {
                name: name.to_string(),
                help: help.to_string(),
                samples: BTreeMap::new(),
            })
    }

    /// Sets an unlabelled gauge.
    pub fn set(&mut self, name: &str, help: &str, v: f64) {
        self.set_labeled(name, help, &[], v);
    }

    /// Sets one labelled sample of a gauge family.
    pub fn set_labeled(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        let key: Vec<String> = labels.iter().map(|(_, v)| v.to_string()).collect();
        let owned: SampleLabels = labels
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        self.register(name, help).samples.insert(key, (owned, v));
    }

    /// Adds to one labelled sample (phases are summed over redirects).
    pub fn add_labeled(&mut self, name: &str, help: &str, labels: &[(&str, &str)], d: f64) {
        let cur = self.get_labeled(name, labels).unwrap_or(0.0);
        self.set_labeled(name, help, labels, cur + d);
    }

    /// Copies every family of `other` in, replacing same-named ones.
    pub fn merge(&mut self, other: ProbeMetrics) {
        self.families.extend(other.families);
    }

    /// The value of an unlabelled sample, if registered.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.get_labeled(name, &[])
    }

    pub fn get_labeled(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let key: Vec<String> = labels.iter().map(|(_, v)| v.to_string()).collect();
        self.families
            .get(name)
            .and_then(|f| f.samples.get(&key))
            .map(|s| s.1)
    }

    /// Families that have at least one sample, sorted by name.
    pub fn families(&self) -> impl Iterator<Item = &Family> {
        self.families.values().filter(|f| !f.samples.is_empty())
    }

    /// Prometheus text format 0.0.4, families sorted by name and samples by
    /// label values, as client_golang's gatherer writes them.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in self.families() {
            crate::metrics::write_header(&mut out, &f.name, &f.help, "gauge");
            for (labels, v) in f.samples.values() {
                crate::metrics::write_series(&mut out, &f.name, "", labels);
                out.push_str(&go_float(*v));
                out.push('\n');
            }
        }
        out
    }

    /// All samples as (metric name, labels, value), for writing into the head.
    pub fn samples(&self) -> Vec<(String, SampleLabels, f64)> {
        self.families()
            .flat_map(|f| {
                f.samples
                    .values()
                    .map(move |(l, v)| (f.name.clone(), l.clone(), *v))
            })
            .collect()
    }
}

/// Go's `strconv.FormatFloat(v, 'g', -1, 64)`, which client_golang uses for
/// sample values: shortest round-trip digits, and the exponent form once the
/// decimal exponent is below -4 or at least 6 (so a hash like 3668918509
/// prints as `3.668918509e+09`). Matching it keeps our output diffable
/// against blackbox_exporter's.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return "0".into();
    }
    // Shortest round-trip digits and decimal exponent from Rust's `{:e}`.
    let e = format!("{:e}", v);
    let (mant, exp) = match e.split_once('e') {
        Some((m, x)) => (m.to_string(), x.parse::<i32>().unwrap_or(0)),
        None => return format!("{v}"),
    };
    let eprec = 6;
    if exp < -4 || exp >= eprec {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_float_cases() {
        // Values taken from blackbox_exporter's real output.
        assert_eq!(go_float(3668918509.0), "3.668918509e+09");
        assert_eq!(go_float(1795367240.0), "1.79536724e+09");
        assert_eq!(go_float(1.6244e-05), "1.6244e-05");
        assert_eq!(go_float(0.002006589), "0.002006589");
        assert_eq!(go_float(200.0), "200");
        assert_eq!(go_float(1.1), "1.1");
        assert_eq!(go_float(-1.0), "-1");
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(123456.0), "123456");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
    }

    #[test]
    fn render_sorted_and_empty_vec_hidden() {
        let mut m = ProbeMetrics::default();
        m.set("probe_success", "ok", 1.0);
        m.register("probe_empty", "nothing");
        m.set_labeled("probe_a", "a", &[("phase", "x")], 0.5);
        let t = m.render();
        assert!(!t.contains("probe_empty"));
        let a = t.find("probe_a").unwrap_or(usize::MAX);
        let s = t.find("probe_success").unwrap_or(0);
        assert!(a < s, "{t}");
        assert!(t.contains("probe_a{phase=\"x\"} 0.5\n"));
    }
}
