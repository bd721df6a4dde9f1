//! `klaxon anomaly generate`: from a list of signals (PromQL expressions),
//! plain recording and alerting rules that learn each signal's expected band
//! from its own history and alert when the signal leaves it for a while —
//! no fixed threshold to pick — plus a promtool unit-test file for them.
//!
//! The baseline (documented in docs/operations.md, "Anomaly detection"):
//! the signal is smoothed over 5m; its expected value now is the median over
//! the last seasons (the same time of day 1, 2 and 3 days ago, or of the
//! week 1, 2 and 3 weeks ago) of the 1h average centred on that time, moved
//! by how much the season's average changed since; the expected deviation is
//! the median of the 1h deviations at those times. The band is the
//! expectation plus and minus `sensitivity` deviations, never narrower than
//! `min_band` of the expectation nor `min_band_abs`; `quiet_below` keeps
//! periods where signal and expectation are both tiny from alerting. This
//! module parses and validates the definition; [`render`] writes the YAML and
//! [`eval`] measures the generated rules on synthetic series.

pub mod cli;
pub mod eval;
pub mod render;

use crate::slo::spec::{SpecError, Validator};
use serde::Deserialize;
use serde_saphyr::Spanned;
use std::collections::BTreeMap;
use std::path::Path;

pub use render::{generate, Generated};

/// An error in an anomaly definition file, naming the file and the place.
pub type AnomalyError = SpecError;

type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    service: S<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, S<String>>>,
    signals: S<Vec<RawSignal>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSignal {
    name: S<String>,
    #[serde(rename = "type")]
    kind: S<String>,
    query: S<String>,
    #[serde(default)]
    by: Option<S<Vec<String>>>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    seasonality: Option<S<String>>,
    #[serde(default)]
    direction: Option<S<String>>,
    #[serde(default)]
    sensitivity: Option<S<f64>>,
    #[serde(default)]
    min_band: Option<S<f64>>,
    #[serde(default)]
    min_band_abs: Option<S<f64>>,
    #[serde(default)]
    quiet_below: Option<S<f64>>,
    #[serde(default, rename = "for")]
    for_: Option<S<String>>,
    #[serde(default)]
    severity: Option<S<String>>,
    #[serde(default)]
    labels: Option<BTreeMap<String, S<String>>>,
}

/// What a signal measures; it picks the default direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Requests,
    Latency,
    Errors,
    Resource,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Requests => "requests",
            Kind::Latency => "latency",
            Kind::Errors => "errors",
            Kind::Resource => "resource",
        }
    }

    /// Traffic is anomalous both ways (a drop is an outage upstream);
    /// latency, errors and resource use only upwards.
    pub fn default_direction(self) -> Direction {
        match self {
            Kind::Requests => Direction::Both,
            _ => Direction::Up,
        }
    }
}

/// The season whose earlier values predict the signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seasonality {
    /// The last hour, 15 minutes ago: for signals without a daily rhythm.
    None,
    Daily,
    Weekly,
}

impl Seasonality {
    pub fn as_str(self) -> &'static str {
        match self {
            Seasonality::None => "none",
            Seasonality::Daily => "daily",
            Seasonality::Weekly => "weekly",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Up,
    Down,
    Both,
}

impl Direction {
    pub fn up(self) -> bool {
        matches!(self, Direction::Up | Direction::Both)
    }
    pub fn down(self) -> bool {
        matches!(self, Direction::Down | Direction::Both)
    }
}

/// A validated definition file: one service, one or more signals.
#[derive(Debug, Clone)]
pub struct AnomalySpec {
    pub service: String,
    pub signals: Vec<Signal>,
}

#[derive(Debug, Clone)]
pub struct Signal {
    pub name: String,
    pub kind: Kind,
    pub query: String,
    /// The labels the query keeps (its grouping); used for the test series
    /// and the dashboard legend.
    pub by: Vec<String>,
    pub description: Option<String>,
    pub seasonality: Seasonality,
    pub direction: Direction,
    /// Band half-width in deviations (default 3).
    pub sensitivity: f64,
    /// Minimum band half-width as a fraction of the expectation (default 0.1).
    pub min_band: f64,
    /// Minimum absolute band half-width (default 0).
    pub min_band_abs: f64,
    pub quiet_below: Option<f64>,
    /// How long the signal stays outside before the alert fires (default 10m).
    pub for_: String,
    pub severity: String,
    /// Labels added to every generated series and alert.
    pub labels: Vec<(String, String)>,
}

pub const DEFAULT_SENSITIVITY: f64 = 3.0;
pub const DEFAULT_MIN_BAND: f64 = 0.1;
pub const DEFAULT_FOR: &str = "10m";

/// Reads and validates a definition file.
pub fn load_file(path: &Path) -> Result<AnomalySpec, AnomalyError> {
    crate::slo::spec::load(path, parse)
}

/// Parses and validates a definition; `file` names it in errors.
pub fn parse(text: &str, file: &str) -> Result<AnomalySpec, AnomalyError> {
    let raw: RawSpec = serde_saphyr::from_str(text).map_err(|e| AnomalyError::Yaml {
        file: file.to_string(),
        message: e.to_string(),
    })?;
    let v = Validator {
        file,
        reserved_prefix: "anomaly_",
    };
    let service = v.name(&raw.service, "service")?;
    let base_labels = v.labels(raw.labels.as_ref(), "labels")?;
    if raw.signals.value.is_empty() {
        return Err(v.err(&raw.signals, "signals", "at least one signal is required"));
    }
    let mut signals: Vec<Signal> = Vec::new();
    for (i, s) in raw.signals.value.iter().enumerate() {
        let at = format!("signals[{i}]");
        let name = v.name(&s.name, &format!("{at}.name"))?;
        if signals.iter().any(|o| o.name == name) {
            return Err(v.err(&s.name, &format!("{at}.name"), "duplicate signal name"));
        }
        let kind = match s.kind.value.as_str() {
            "requests" => Kind::Requests,
            "latency" => Kind::Latency,
            "errors" => Kind::Errors,
            "resource" => Kind::Resource,
            other => {
                return Err(v.err(
                    &s.kind,
                    &format!("{at}.type"),
                    format!("{other:?}: one of requests, latency, errors, resource"),
                ))
            }
        };
        let query = s.query.value.trim().to_string();
        crate::promql::parse(&query)
            .map_err(|e| v.err(&s.query, &format!("{at}.query"), e.to_string()))?;
        let mut by = Vec::new();
        if let Some(b) = &s.by {
            for l in &b.value {
                if !crate::config::relabel::is_valid_label_name(l) || l.starts_with("__") {
                    return Err(v.err(
                        b,
                        &format!("{at}.by"),
                        format!("{l:?} is not a valid label name"),
                    ));
                }
                if l.starts_with("anomaly_") {
                    return Err(v.err(
                        b,
                        &format!("{at}.by"),
                        format!("{l:?} is reserved for the generated rules"),
                    ));
                }
                by.push(l.clone());
            }
        }
        let seasonality = match &s.seasonality {
            None => Seasonality::Daily,
            Some(x) => match x.value.as_str() {
                "none" => Seasonality::None,
                "daily" => Seasonality::Daily,
                "weekly" => Seasonality::Weekly,
                other => {
                    return Err(v.err(
                        x,
                        &format!("{at}.seasonality"),
                        format!("{other:?}: one of none, daily, weekly"),
                    ))
                }
            },
        };
        let direction = match &s.direction {
            None => kind.default_direction(),
            Some(x) => match x.value.as_str() {
                "up" => Direction::Up,
                "down" => Direction::Down,
                "both" => Direction::Both,
                other => {
                    return Err(v.err(
                        x,
                        &format!("{at}.direction"),
                        format!("{other:?}: one of up, down, both"),
                    ))
                }
            },
        };
        let num = |x: &Option<S<f64>>, field: &str, default: f64, positive: bool| {
            let Some(x) = x else { return Ok(default) };
            let ok = x.value.is_finite() && (x.value > 0.0 || (!positive && x.value == 0.0));
            if ok {
                Ok(x.value)
            } else {
                let want = if positive { "> 0" } else { ">= 0" };
                Err(v.err(
                    x,
                    &format!("{at}.{field}"),
                    format!("must be a number {want}"),
                ))
            }
        };
        let sensitivity = num(&s.sensitivity, "sensitivity", DEFAULT_SENSITIVITY, true)?;
        if sensitivity > 20.0 {
            if let Some(x) = &s.sensitivity {
                return Err(v.err(
                    x,
                    &format!("{at}.sensitivity"),
                    "at most 20 (a band that wide never alerts)",
                ));
            }
        }
        let min_band = num(&s.min_band, "min_band", DEFAULT_MIN_BAND, false)?;
        if min_band >= 1.0 {
            if let Some(x) = &s.min_band {
                return Err(v.err(
                    x,
                    &format!("{at}.min_band"),
                    "must be below 1 (a fraction of the expectation; 1 would never alert low)",
                ));
            }
        }
        let min_band_abs = num(&s.min_band_abs, "min_band_abs", 0.0, false)?;
        let quiet_below = match &s.quiet_below {
            None => None,
            Some(_) => Some(num(&s.quiet_below, "quiet_below", 0.0, true)?),
        };
        let for_ = match &s.for_ {
            None => DEFAULT_FOR.to_string(),
            Some(f) => {
                let d = crate::config::parse_duration(&f.value)
                    .map_err(|e| v.err(f, &format!("{at}.for"), e))?;
                if d.is_zero() || d.as_secs() > 7200 {
                    return Err(v.err(
                        f,
                        &format!("{at}.for"),
                        "between 1s and 2h (an anomaly that lasts longer moves the baseline)",
                    ));
                }
                f.value.clone()
            }
        };
        let severity = match &s.severity {
            None => "warning".to_string(),
            Some(x) if ["critical", "warning", "info"].contains(&x.value.as_str()) => {
                x.value.clone()
            }
            Some(x) => {
                return Err(v.err(
                    x,
                    &format!("{at}.severity"),
                    "one of critical, warning, info",
                ))
            }
        };
        let mut labels = base_labels.clone();
        for (k, val) in v.labels(s.labels.as_ref(), &format!("{at}.labels"))? {
            labels.retain(|(n, _)| *n != k);
            labels.push((k, val));
        }
        labels.sort();
        signals.push(Signal {
            name,
            kind,
            query,
            by,
            description: s.description.clone(),
            seasonality,
            direction,
            sensitivity,
            min_band,
            min_band_abs,
            quiet_below,
            for_,
            severity,
            labels,
        });
    }
    Ok(AnomalySpec { service, signals })
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
service: shop
labels:
  team: web
signals:
  - name: requests
    type: requests
    query: sum by (job) (rate(http_requests_total[5m]))
    by: [job]
    quiet_below: 0.5
  - name: latency-p95
    type: latency
    query: histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))
    seasonality: weekly
    sensitivity: 4
    for: 15m
    labels:
      team: api
"#;

    fn err(text: &str) -> String {
        parse(text, "a.yml").expect_err("must fail").to_string()
    }

    #[test]
    fn parses_with_defaults_by_type() {
        let s = parse(OK, "a.yml").expect("valid");
        assert_eq!(s.service, "shop");
        let r = &s.signals[0];
        assert_eq!(r.direction, Direction::Both);
        assert_eq!(r.seasonality, Seasonality::Daily);
        assert_eq!(r.sensitivity, 3.0);
        assert_eq!(r.quiet_below, Some(0.5));
        assert_eq!(r.by, vec!["job".to_string()]);
        let l = &s.signals[1];
        assert_eq!(l.direction, Direction::Up);
        assert_eq!(l.seasonality, Seasonality::Weekly);
        assert_eq!(l.for_, "15m");
        assert_eq!(l.labels, vec![("team".to_string(), "api".to_string())]);
    }

    #[test]
    fn errors_name_the_place() {
        assert_eq!(
            err(&OK.replace("type: latency", "type: speed")),
            "a.yml:12:11: signals[1].type: \"speed\": one of requests, latency, errors, resource"
        );
        assert!(err(&OK.replace("rate(http_requests_total[5m])", "rate("))
            .starts_with("a.yml:8:12: signals[0].query: "));
        assert!(err(&OK.replace("sensitivity: 4", "sensitivity: -1"))
            .contains("signals[1].sensitivity: must be a number > 0"));
        assert!(err(&OK.replace("for: 15m", "for: soon")).contains("signals[1].for: "));
        assert!(err(&OK.replace("by: [job]", "by: [anomaly_x]")).contains("reserved"));
        assert!(err(&OK.replace("team: api", "anomaly_name: x")).contains("reserved"));
        assert!(err(&OK.replace("weekly", "hourly")).contains("one of none, daily, weekly"));
        assert!(err(&OK.replace("name: latency-p95", "name: requests")).contains("duplicate"));
        assert!(err("service: a\nsignals: []\n").contains("at least one signal"));
        assert!(err("service: ../x\nsignals: []\n").starts_with("a.yml:1:10: service: "));
        assert!(err("service: a\nbogus: 1\nsignals: []\n").contains("bogus"));
    }
}
