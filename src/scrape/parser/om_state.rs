//! Cross-line OpenMetrics rules: metadata once and before samples, family
//! suffixes, contiguous families and label groups, timestamps per group,
//! histogram bucket rules and name clashes. Kept apart from the line syntax so
//! each half stays readable; the rules follow the upstream conformance suite
//! and the reference parser (a family ends when a line names something that is
//! not one of its allowed sample names, and a family's name never comes back).

use std::collections::HashSet;

use super::scan::{self, LabelSpan};
use super::{Entry, MetricType};

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Meta {
    Help,
    Type,
    Unit,
}

/// Per-group state of a histogram check (one label group at one timestamp).
#[derive(Default)]
struct HistGroup {
    count: Option<f64>,
    bucket: Option<f64>,
    value: f64,
    negative_buckets: bool,
    has_sum: bool,
    has_gsum: bool,
    negative_gsum: bool,
}

impl HistGroup {
    fn check(&self) -> Result<(), &'static str> {
        if self.bucket != Some(f64::INFINITY) {
            return Err("histogram has no +Inf bucket");
        }
        if let Some(c) = self.count {
            if c != self.value {
                return Err("histogram count does not match the +Inf bucket");
            }
        }
        if self.count.is_none() && self.has_sum {
            return Err("histogram has _sum without _count");
        }
        if self.count.is_none() && self.has_gsum {
            return Err("gauge histogram has _gsum without _gcount");
        }
        if self.count.is_some() && !(self.has_sum || self.has_gsum) {
            return Err("histogram has a count without a sum");
        }
        if self.negative_buckets && self.has_sum {
            return Err("histogram with negative buckets cannot have _sum");
        }
        if !self.negative_buckets && self.negative_gsum {
            return Err("gauge histogram with no negative bucket cannot have a negative _gsum");
        }
        Ok(())
    }
}

/// The family being read.
#[derive(Default)]
struct Family {
    active: bool,
    name: Vec<u8>,
    /// Declared (or, for a family started by a sample, implied unknown) type.
    kind: Option<MetricType>,
    help: bool,
    unit: Option<Vec<u8>>,
    samples: bool,
    group: Option<u64>,
    group_ts: Option<f64>,
    hist_key: Option<(u64, Option<u64>)>,
    hist: HistGroup,
}

/// Cross-line OpenMetrics state.
#[derive(Default)]
pub(super) struct State {
    pub eof: bool,
    /// Skip the value-semantics rules (see `Validation::PrometheusCompatible`).
    pub lenient_values: bool,
    fam: Family,
    /// Every name used by a finished family (with its type's suffixes): a later
    /// family may not reuse one. Allocates once per family, never per sample.
    seen_names: HashSet<Vec<u8>>,
    seen_groups: HashSet<u64>,
}

fn suffixes(kind: Option<MetricType>) -> &'static [&'static str] {
    match kind {
        Some(MetricType::Counter) => &["_total", "_created"],
        Some(MetricType::Summary) => &["", "_count", "_sum", "_created"],
        Some(MetricType::Histogram) => &["_count", "_sum", "_bucket", "_created"],
        Some(MetricType::GaugeHistogram) => &["_gcount", "_gsum", "_bucket"],
        Some(MetricType::Info) => &["_info"],
        _ => &[""],
    }
}

fn is_hist(kind: Option<MetricType>) -> bool {
    matches!(
        kind,
        Some(MetricType::Histogram | MetricType::GaugeHistogram)
    )
}

/// Order-independent hash of a label set minus one label: the identity of a
/// "group" (e.g. one histogram = its buckets, sum and count).
fn group_hash(buf: &[u8], spans: &[LabelSpan], skip: Option<&[u8]>) -> u64 {
    let mut g: u64 = 0;
    for s in spans {
        let n = s.name(buf);
        if Some(n) == skip {
            continue;
        }
        let h = xxhash_rust::xxh64::xxh64(n, 0x9e37_79b9)
            ^ xxhash_rust::xxh64::xxh64(s.value(buf), 0x85eb_ca6b).rotate_left(29);
        g = g.wrapping_add(xxhash_rust::xxh64::xxh64(&h.to_le_bytes(), 1));
    }
    g
}

fn find<'b>(buf: &'b [u8], spans: &[LabelSpan], name: &[u8]) -> Option<(&'b [u8], bool)> {
    spans
        .iter()
        .find(|s| s.name(buf) == name)
        .map(|s| (s.value(buf), s.value_escaped))
}

/// `le`/`quantile` values: any float, but infinities only as `+Inf`/`-Inf`.
fn canonical_float(raw: &[u8], escaped: bool) -> Option<f64> {
    if escaped {
        return None;
    }
    let v = scan::parse_float(raw)?;
    if v.is_nan() || (v.is_infinite() && raw != b"+Inf" && raw != b"-Inf") {
        return None;
    }
    Some(v)
}

impl State {
    fn start_family(&mut self, name: &[u8], kind: Option<MetricType>) {
        let f = &mut self.fam;
        f.active = true;
        f.name.clear();
        f.name.extend_from_slice(name);
        f.kind = kind;
        f.help = false;
        f.unit = None;
        f.samples = false;
        f.group = None;
        f.group_ts = None;
        f.hist_key = None;
        f.hist = HistGroup::default();
        self.seen_groups.clear();
    }

    /// Closes the current family: name clashes and its last histogram group.
    pub(super) fn finish_family(&mut self) -> Result<(), String> {
        if !self.fam.active {
            return Ok(());
        }
        self.fam.active = false;
        let name = String::from_utf8_lossy(&self.fam.name).into_owned();
        let mut sfx: Vec<&str> = suffixes(self.fam.kind).to_vec();
        if !sfx.contains(&"") {
            sfx.push("");
        }
        for s in sfx {
            let mut full = self.fam.name.clone();
            full.extend_from_slice(s.as_bytes());
            if !self.seen_names.insert(full) {
                return Err(format!("metric family {name}{s} clashes with an earlier family (families must not be interleaved or repeated)"));
            }
        }
        if is_hist(self.fam.kind) && self.fam.hist_key.is_some() && !self.lenient_values {
            self.fam.hist.check().map_err(|m| format!("{m}: {name}"))?;
        }
        Ok(())
    }

    fn check_unit(&self) -> Result<(), String> {
        let Some(unit) = self.fam.unit.as_deref() else {
            return Ok(());
        };
        if unit.is_empty() {
            return Ok(());
        }
        let name = &self.fam.name;
        let ok = name.len() > unit.len()
            && name.ends_with(unit)
            && name.get(name.len() - unit.len() - 1) == Some(&b'_');
        if !ok {
            return Err(format!(
                "unit {:?} is not a suffix of metric name {:?}",
                String::from_utf8_lossy(unit),
                String::from_utf8_lossy(name)
            ));
        }
        if matches!(self.fam.kind, Some(MetricType::Info | MetricType::StateSet)) {
            return Err("info and stateset metrics cannot have a unit".into());
        }
        Ok(())
    }

    pub(super) fn metadata(
        &mut self,
        kind: Meta,
        name: &[u8],
        entry: &Entry<'_>,
    ) -> Result<(), String> {
        if self.fam.active && self.fam.name == name {
            if self.fam.samples {
                return Err("metadata after samples of the same family".into());
            }
        } else {
            self.finish_family()?;
            self.start_family(name, None);
        }
        match (kind, entry) {
            (Meta::Help, _) => {
                if self.fam.help {
                    return Err("more than one HELP for the family".into());
                }
                self.fam.help = true;
            }
            (Meta::Unit, Entry::Unit { unit, .. }) => {
                if self.fam.unit.is_some() {
                    return Err("more than one UNIT for the family".into());
                }
                self.fam.unit = Some(unit.as_bytes().to_vec());
                self.check_unit()?;
            }
            (Meta::Type, Entry::Type { kind, .. }) => {
                if self.fam.kind.is_some() {
                    return Err("more than one TYPE for the family".into());
                }
                self.fam.kind = Some(*kind);
                self.check_unit()?;
            }
            _ => {}
        }
        Ok(())
    }

    fn belongs(&self, name: &[u8]) -> bool {
        if !self.fam.active {
            return false;
        }
        let f = &self.fam.name;
        name.len() >= f.len()
            && name.starts_with(f)
            && suffixes(self.fam.kind)
                .iter()
                .any(|s| name.get(f.len()..) == Some(s.as_bytes()))
    }

    fn exemplar_allowed(
        &self,
        name: &[u8],
        kind: Option<MetricType>,
        has: bool,
    ) -> Result<(), String> {
        let ok = !has
            || (is_hist(kind) && name.ends_with(b"_bucket"))
            || (kind == Some(MetricType::Counter) && name.ends_with(b"_total"));
        if ok {
            Ok(())
        } else {
            Err("exemplars are only allowed on counter _total and histogram _bucket samples".into())
        }
    }

    pub(super) fn sample(
        &mut self,
        buf: &[u8],
        name: &[u8],
        spans: &[LabelSpan],
        value: f64,
        ts: Option<f64>,
        has_exemplar: bool,
    ) -> Result<(), String> {
        if !self.belongs(name) {
            self.finish_family()?;
            self.start_family(name, Some(MetricType::Unknown));
        }
        self.fam.samples = true;
        let kind = self.fam.kind;
        let fname_len = self.fam.name.len();
        let suffix = name.get(fname_len..).unwrap_or(&[]);
        let bucket = is_hist(kind) && suffix == b"_bucket";
        let quantile = kind == Some(MetricType::Summary) && suffix.is_empty();

        if kind == Some(MetricType::StateSet) && find(buf, spans, &self.fam.name).is_none() {
            return Err("stateset sample lacks the label named after the family".into());
        }
        let mut le = None;
        if bucket {
            let (raw, esc) = find(buf, spans, b"le").ok_or("histogram bucket without le label")?;
            le =
                Some(canonical_float(raw, esc).ok_or_else(|| {
                    format!("invalid le label {:?}", String::from_utf8_lossy(raw))
                })?);
        }
        if quantile {
            let (raw, esc) =
                find(buf, spans, b"quantile").ok_or("summary quantile without quantile label")?;
            match canonical_float(raw, esc) {
                Some(q) if (0.0..=1.0).contains(&q) => {}
                _ => {
                    return Err(format!(
                        "invalid quantile label {:?}",
                        String::from_utf8_lossy(raw)
                    ))
                }
            }
        }

        let g = match kind {
            Some(MetricType::Info) => 0,
            Some(MetricType::StateSet) => group_hash(buf, spans, Some(&self.fam.name)),
            _ if bucket => group_hash(buf, spans, Some(b"le")),
            _ if quantile => group_hash(buf, spans, Some(b"quantile")),
            _ => group_hash(buf, spans, None),
        };
        if self.fam.group.is_some() && self.fam.group != Some(g) && self.seen_groups.contains(&g) {
            return Err("samples of one label group are not contiguous".into());
        }
        if self.fam.group == Some(g) {
            match (self.fam.group_ts, ts) {
                (None, None) => {}
                (Some(prev), Some(t)) => {
                    if prev > t && kind != Some(MetricType::Info) {
                        return Err("timestamps went backwards within a group".into());
                    }
                }
                _ => return Err("mix of samples with and without timestamp within a group".into()),
            }
        }
        self.fam.group = Some(g);
        self.fam.group_ts = ts;
        self.seen_groups.insert(g);

        if self.lenient_values {
            return self.exemplar_allowed(name, kind, has_exemplar);
        }
        match kind {
            Some(MetricType::StateSet) if value != 0.0 && value != 1.0 => {
                return Err("stateset values must be 0 or 1".into())
            }
            Some(MetricType::Info) if value != 1.0 => return Err("info values must be 1".into()),
            _ if quantile && value < 0.0 => return Err("quantile values cannot be negative".into()),
            _ => {}
        }
        let counter_like = matches!(
            suffix,
            b"_total" | b"_sum" | b"_count" | b"_bucket" | b"_gcount" | b"_gsum"
        );
        if counter_like && value.is_nan() {
            return Err("counter-like samples cannot be NaN".into());
        }
        if counter_like && suffix != b"_gsum" && value < 0.0 {
            return Err("counter-like samples cannot be negative".into());
        }
        self.exemplar_allowed(name, kind, has_exemplar)?;
        if is_hist(kind) && !suffix.is_empty() {
            let key = (g, ts.map(f64::to_bits));
            if self.fam.hist_key != Some(key) {
                if self.fam.hist_key.is_some() {
                    self.fam.hist.check().map_err(str::to_string)?;
                }
                self.fam.hist = HistGroup::default();
                self.fam.hist_key = Some(key);
            }
            let h = &mut self.fam.hist;
            match suffix {
                b"_bucket" => {
                    let b = le.unwrap_or(f64::NAN);
                    if b < 0.0 {
                        h.negative_buckets = true;
                    }
                    if matches!(h.bucket, Some(prev) if b <= prev) {
                        return Err("histogram buckets out of order".into());
                    }
                    if value < h.value {
                        return Err("histogram bucket values are not cumulative".into());
                    }
                    h.bucket = Some(b);
                    h.value = value;
                }
                b"_count" | b"_gcount" => h.count = Some(value),
                b"_sum" => h.has_sum = true,
                b"_gsum" => {
                    h.has_gsum = true;
                    if value < 0.0 {
                        h.negative_gsum = true;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}
