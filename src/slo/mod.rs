//! `klaxon slo generate`: from an SLO definition, the multi-window,
//! multi-burn-rate recording and alerting rules of the Google SRE workbook
//! (chapter "Alerting on SLOs"), plus a promtool unit-test file for them.
//!
//! The generated rules are plain Prometheus rules so they run in klaxon and in
//! Prometheus alike; how they differ from Sloth's output is documented in
//! `docs/compatibility.md`. This module parses and validates the definition;
//! [`render`] writes the YAML.

pub mod cli;
pub mod render;
pub mod spec;

use serde::Deserialize;
use serde_saphyr::Spanned;
use spec::{SpecError, Validator};
use std::collections::BTreeMap;
use std::path::Path;

pub use render::{generate, Generated};

/// The burn-rate alert windows of the workbook for a 30-day budget:
/// (long window, short window, burn-rate factor). A factor of 14.4 over 1h
/// spends 2% of a 30-day budget; 6 over 6h spends 5%; 3 over 1d 10%; 1 over
/// 3d 10%. The first two page, the last two open a ticket.
pub const PAGE_WINDOWS: [(&str, &str, &str); 2] = [("1h", "5m", "14.4"), ("6h", "30m", "6")];
pub const TICKET_WINDOWS: [(&str, &str, &str); 2] = [("1d", "2h", "3"), ("3d", "6h", "1")];

/// Every window an error ratio is recorded for, shortest first.
pub const WINDOWS: [&str; 7] = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"];

/// The placeholder the SLI queries use for the range (Sloth's spelling, so
/// existing queries can be reused).
pub const WINDOW_PLACEHOLDER: &str = "{{.window}}";

/// An error in an SLO definition file, naming the file and the place.
pub type SloError = SpecError;

type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    service: S<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, S<String>>>,
    slos: S<Vec<RawSlo>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlo {
    name: S<String>,
    objective: S<f64>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    window: Option<S<String>>,
    sli: S<RawSli>,
    #[serde(default)]
    labels: Option<BTreeMap<String, S<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSli {
    #[serde(default)]
    error_query: Option<S<String>>,
    #[serde(default)]
    good_query: Option<S<String>>,
    total_query: S<String>,
}

/// A validated SLO definition file: one service, one or more SLOs.
#[derive(Debug, Clone)]
pub struct SloSpec {
    pub service: String,
    pub slos: Vec<Slo>,
}

#[derive(Debug, Clone)]
pub struct Slo {
    pub name: String,
    /// Percent, strictly between 0 and 100.
    pub objective: f64,
    /// `1 - objective/100` written with at most 12 decimals, so that 99.9
    /// gives `0.001` and not float noise.
    pub error_budget: String,
    pub description: Option<String>,
    /// Whole days of the SLO period (default 30).
    pub window_days: u64,
    pub sli: Sli,
    /// Labels added to every generated series and alert (file-level labels,
    /// then the SLO's own, which win).
    pub labels: Vec<(String, String)>,
}

/// The SLI as PromQL with [`WINDOW_PLACEHOLDER`] for the range.
#[derive(Debug, Clone)]
pub enum Sli {
    ErrorTotal { error: String, total: String },
    GoodTotal { good: String, total: String },
}

/// Reads and validates an SLO definition file.
pub fn load_file(path: &Path) -> Result<SloSpec, SloError> {
    spec::load(path, parse)
}

/// Parses and validates an SLO definition; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<SloSpec, SloError> {
    let raw: RawSpec = serde_saphyr::from_str(text).map_err(|e| SloError::Yaml {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    let v = Validator {
        file,
        reserved_prefix: "slo_",
    };
    let service = v.name(&raw.service, "service")?;
    let base_labels = v.labels(raw.labels.as_ref(), "labels")?;
    if raw.slos.value.is_empty() {
        return Err(v.err(&raw.slos, "slos", "at least one SLO is required"));
    }
    let mut slos = Vec::new();
    for (i, s) in raw.slos.value.iter().enumerate() {
        let at = format!("slos[{i}]");
        let name = v.name(&s.name, &format!("{at}.name"))?;
        if slos.iter().any(|o: &Slo| o.name == name) {
            return Err(v.err(&s.name, &format!("{at}.name"), "duplicate SLO name"));
        }
        let objective = s.objective.value;
        if !(objective > 0.0 && objective < 100.0) {
            return Err(v.err(
                &s.objective,
                &format!("{at}.objective"),
                "must be a percentage strictly between 0 and 100, e.g. 99.9",
            ));
        }
        let window_days = match &s.window {
            None => 30,
            Some(w) => v.window(w, &format!("{at}.window"))?,
        };
        let sli = v.sli(&s.sli, &format!("{at}.sli"))?;
        let mut labels = base_labels.clone();
        for (k, val) in v.labels(s.labels.as_ref(), &format!("{at}.labels"))? {
            labels.retain(|(n, _)| *n != k);
            labels.push((k, val));
        }
        labels.sort();
        slos.push(Slo {
            name,
            objective,
            error_budget: decimal(1.0 - objective / 100.0),
            description: s.description.clone(),
            window_days,
            sli,
            labels,
        });
    }
    Ok(SloSpec { service, slos })
}

/// `x` with at most 12 decimals and no trailing zeros: the budget of a
/// percentage objective given with up to 10 decimals is exact at that
/// precision, while `1.0 - 99.9 / 100.0` is 0.0010000000000000009.
pub fn decimal(x: f64) -> String {
    let s = format!("{x:.12}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// The SLO-specific checks.
impl Validator<'_> {
    fn window(&self, w: &S<String>, field: &str) -> Result<u64, SloError> {
        let d = crate::config::parse_duration(&w.value).map_err(|e| self.err(w, field, e))?;
        let secs = d.as_secs();
        if secs % 86_400 != 0 || d.subsec_nanos() != 0 || secs < 3 * 86_400 {
            return Err(self.err(
                w,
                field,
                "must be a whole number of days, at least 3d (the longest alert window)",
            ));
        }
        Ok(secs / 86_400)
    }

    fn sli(&self, s: &S<RawSli>, field: &str) -> Result<Sli, SloError> {
        let total = self.query(&s.value.total_query, &format!("{field}.total_query"))?;
        match (&s.value.error_query, &s.value.good_query) {
            (Some(e), None) => Ok(Sli::ErrorTotal {
                error: self.query(e, &format!("{field}.error_query"))?,
                total,
            }),
            (None, Some(g)) => Ok(Sli::GoodTotal {
                good: self.query(g, &format!("{field}.good_query"))?,
                total,
            }),
            _ => Err(self.err(
                s,
                field,
                "give exactly one of error_query and good_query, beside total_query",
            )),
        }
    }

    /// The query must use the window placeholder (a fixed range would make
    /// every window the same) and parse once it is filled in.
    fn query(&self, q: &S<String>, field: &str) -> Result<String, SloError> {
        let text = q.value.trim();
        if !text.contains(WINDOW_PLACEHOLDER) {
            return Err(self.err(
                q,
                field,
                format!("must use {WINDOW_PLACEHOLDER} as the range, e.g. rate(x[{WINDOW_PLACEHOLDER}])"),
            ));
        }
        let filled = text.replace(WINDOW_PLACEHOLDER, "5m");
        crate::promql::parse(&filled).map_err(|e| self.err(q, field, e.to_string()))?;
        Ok(text.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
service: checkout
labels:
  team: payments
slos:
  - name: availability
    objective: 99.9
    sli:
      error_query: sum(rate(http_requests_total{code=~"5.."}[{{.window}}]))
      total_query: sum(rate(http_requests_total[{{.window}}]))
    labels:
      team: checkout
      tier: "1"
"#;

    fn err(text: &str) -> String {
        parse(text, "slo.yml").expect_err("must fail").to_string()
    }

    #[test]
    fn parses_a_definition() {
        let s = parse(OK, "slo.yml").expect("valid");
        assert_eq!(s.service, "checkout");
        let slo = &s.slos[0];
        assert_eq!(slo.error_budget, "0.001");
        assert_eq!(slo.window_days, 30);
        assert_eq!(
            slo.labels,
            vec![
                ("team".to_string(), "checkout".to_string()),
                ("tier".to_string(), "1".to_string())
            ]
        );
        assert!(matches!(slo.sli, Sli::ErrorTotal { .. }));
    }

    #[test]
    fn budget_is_written_without_float_noise() {
        assert_eq!(decimal(1.0 - 99.9 / 100.0), "0.001");
        assert_eq!(decimal(1.0 - 99.95 / 100.0), "0.0005");
        assert_eq!(decimal(1.0 - 99.0 / 100.0), "0.01");
        assert_eq!(decimal(1.0 - 99.999 / 100.0), "0.00001");
    }

    #[test]
    fn errors_name_the_place() {
        let bad = OK.replace("objective: 99.9", "objective: 100");
        assert_eq!(
            err(&bad),
            "slo.yml:7:16: slos[0].objective: must be a percentage strictly between 0 and 100, e.g. 99.9"
        );
        let bad = OK.replace("[{{.window}}]))\n      total", "[5m]))\n      total");
        assert!(
            err(&bad).starts_with("slo.yml:9:20: slos[0].sli.error_query: must use {{.window}}"),
            "{}",
            err(&bad)
        );
        let bad = OK.replace("service: checkout", "service: ../etc");
        assert!(
            err(&bad).starts_with("slo.yml:2:10: service: "),
            "{}",
            err(&bad)
        );
        let bad = OK.replace(
            "    objective: 99.9\n",
            "    objective: 99.9\n    window: 36h\n",
        );
        assert!(err(&bad).contains("slos[0].window: must be a whole number of days"));
        let bad = OK.replace("tier:", "slo_tier:");
        assert!(err(&bad).contains("reserved"), "{}", err(&bad));
        let bad = OK.replace("sum(rate(http_requests_total[{{.window}}]))", "sum(rate(");
        assert!(
            err(&bad).contains("slos[0].sli.total_query: "),
            "{}",
            err(&bad)
        );
        let bad = OK.replace(
            "      total_query",
            "      good_query: x[{{.window}}]\n      total_query",
        );
        assert!(err(&bad).contains("exactly one of"), "{}", err(&bad));
        assert!(err("service: a\nslos: []\n").contains("at least one SLO"));
        assert!(err("service: a\nslos: [\n").starts_with("slo.yml: "));
        assert!(err("service: a\nunknown: 1\nslos: []\n").contains("unknown"));
    }
}
