//! `GET /api/v1/rules` and `GET /api/v1/alerts` in Prometheus' JSON shape.

use super::params::{bad_data, Params};
use super::{labels_json, success};
use crate::model::time::rfc3339_millis;
use crate::rules::alert::{Alert, AlertState};
use crate::rules::file::RuleKind;
use crate::rules::group::RuleHealth;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn map_json(m: &BTreeMap<String, String>) -> Value {
    Value::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect(),
    )
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`, which Prometheus uses for an
/// alert's value: `1e+00`, `5e-01`, `1.25e+02`.
fn go_exp(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

fn state_str(s: AlertState) -> &'static str {
    match s {
        AlertState::Inactive => "inactive",
        AlertState::Pending => "pending",
        AlertState::Firing => "firing",
    }
}

fn alert_json(a: &Alert) -> Value {
    json!({
        "labels": labels_json(&a.labels),
        "annotations": map_json(&a.annotations),
        "state": state_str(a.state),
        "activeAt": rfc3339_millis(a.active_at),
        "value": go_exp(a.value),
    })
}

fn time_or_zero(t: Option<i64>) -> String {
    t.map(rfc3339_millis)
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string())
}

/// The `/api/v1/rules` query: Prometheus' `type`, `rule_name[]`,
/// `rule_group[]`, `file[]` and `exclude_alerts` (3.x).
#[derive(Debug, Default, PartialEq)]
pub struct RulesFilter {
    pub alerts: bool,
    pub records: bool,
    pub rule_names: Vec<String>,
    pub groups: Vec<String>,
    pub files: Vec<String>,
    pub exclude_alerts: bool,
}

impl RulesFilter {
    /// Parses the parameters; errors are Prometheus' `bad_data` texts.
    pub fn from_params(p: &Params) -> Result<RulesFilter, String> {
        let typ = p.get("type").unwrap_or_default().to_lowercase();
        if !typ.is_empty() && typ != "alert" && typ != "record" {
            return Err(format!("not supported value {typ:?}"));
        }
        let exclude_alerts = match p.get("exclude_alerts") {
            None | Some("") => false,
            Some(v) => go_parse_bool(v).ok_or_else(|| {
                format!("error converting exclude_alerts: strconv.ParseBool: parsing {v:?}: invalid syntax")
            })?,
        };
        let all = |n: &str| p.get_all(n).into_iter().map(str::to_string).collect();
        Ok(RulesFilter {
            alerts: typ.is_empty() || typ == "alert",
            records: typ.is_empty() || typ == "record",
            rule_names: all("rule_name[]"),
            groups: all("rule_group[]"),
            files: all("file[]"),
            exclude_alerts,
        })
    }

    fn group_wanted(&self, name: &str, file: &str) -> bool {
        (self.groups.is_empty() || self.groups.iter().any(|g| g == name))
            && (self.files.is_empty() || self.files.iter().any(|f| f == file))
    }

    fn rule_wanted(&self, name: &str, kind: &RuleKind) -> bool {
        let kind_ok = match kind {
            RuleKind::Alert(_) => self.alerts,
            RuleKind::Record(_) => self.records,
        };
        kind_ok && (self.rule_names.is_empty() || self.rule_names.iter().any(|n| n == name))
    }
}

/// Go's `strconv.ParseBool`.
fn go_parse_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

pub async fn rules(
    State(rules): State<std::sync::Arc<crate::rules::manager::RuleManager>>,
    ext: axum::http::Extensions,
    uri: Uri,
) -> Response {
    let scope = crate::ops::tenants::of_request(&ext);
    let p = Params::from_request(&uri, &HeaderMap::new(), &Bytes::new());
    let filter = match RulesFilter::from_params(&p) {
        Ok(f) => f,
        Err(e) => return bad_data(e).into_response(),
    };
    let mut groups = Vec::new();
    for g in rules.groups() {
        let g = g.lock();
        if !filter.group_wanted(&g.group.name, &g.file) {
            continue;
        }
        let mut rules = Vec::new();
        for (def, st) in g.group.rules.iter().zip(&g.rules) {
            if !filter.rule_wanted(&st.name, &def.kind) {
                continue;
            }
            let health = match st.health {
                RuleHealth::Unknown => "unknown",
                RuleHealth::Ok => "ok",
                RuleHealth::Err => "err",
            };
            let common = json!({
                "name": st.name,
                "query": def.expr_text,
                "labels": labels_json(&def.labels),
                "health": health,
                "lastError": st.last_error.as_ref().map(|e| e.to_string()).unwrap_or_default(),
                "evaluationTime": st.last_duration.as_secs_f64(),
                "lastEvaluation": time_or_zero(st.last_evaluation),
            });
            let Value::Object(mut r) = common else {
                continue;
            };
            match def.kind {
                RuleKind::Alert(_) => {
                    let alerts: Vec<&Alert> = st
                        .alerts
                        .alerts()
                        .into_iter()
                        .filter(|a| a.state != AlertState::Inactive)
                        .filter(|a| scope.as_ref().is_none_or(|sc| sc.allows(&a.labels)))
                        .collect();
                    // A scoped caller sees an alerting rule when it has
                    // alerts of its tenants or names one of them in its
                    // labels (prom-label-proxy's rule filter).
                    if scope
                        .as_ref()
                        .is_some_and(|sc| alerts.is_empty() && !sc.allows(&def.labels))
                    {
                        continue;
                    }
                    let state = alerts
                        .iter()
                        .map(|a| a.state)
                        .max_by_key(|s| match s {
                            AlertState::Inactive => 0,
                            AlertState::Pending => 1,
                            AlertState::Firing => 2,
                        })
                        .unwrap_or(AlertState::Inactive);
                    r.insert("type".into(), "alerting".into());
                    r.insert("duration".into(), json!(def.for_.as_secs_f64()));
                    r.insert(
                        "keepFiringFor".into(),
                        json!(def.keep_firing_for.as_secs_f64()),
                    );
                    r.insert("annotations".into(), map_json(&def.annotations));
                    // Upstream leaves the slice nil (JSON null) when excluded.
                    let alerts_json = if filter.exclude_alerts {
                        Value::Null
                    } else {
                        Value::Array(alerts.iter().map(|a| alert_json(a)).collect())
                    };
                    r.insert("alerts".into(), alerts_json);
                    r.insert("state".into(), state_str(state).into());
                }
                RuleKind::Record(_) => {
                    if scope.as_ref().is_some_and(|sc| !sc.allows(&def.labels)) {
                        continue;
                    }
                    r.insert("type".into(), "recording".into());
                }
            }
            rules.push(Value::Object(r));
        }
        // As upstream: a group left without rules (filtered out) is dropped.
        if rules.is_empty() {
            continue;
        }
        groups.push(json!({
            "name": g.group.name,
            "file": g.file,
            "interval": g.interval.as_secs_f64(),
            "limit": g.group.limit,
            "evaluationTime": g.last_duration.as_secs_f64(),
            "lastEvaluation": time_or_zero(g.last_evaluation),
            "rules": rules,
        }));
    }
    success(json!({ "groups": groups }))
}

pub async fn alerts(
    State(rules): State<std::sync::Arc<crate::rules::manager::RuleManager>>,
    ext: axum::http::Extensions,
) -> Response {
    let scope = crate::ops::tenants::of_request(&ext);
    let mut out = Vec::new();
    for g in rules.groups() {
        let g = g.lock();
        for st in &g.rules {
            for a in st.alerts.alerts() {
                if a.state != AlertState::Inactive
                    && scope.as_ref().is_none_or(|sc| sc.allows(&a.labels))
                {
                    out.push(alert_json(a));
                }
            }
        }
    }
    success(json!({ "alerts": out }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(q: &str) -> Result<RulesFilter, String> {
        let uri: Uri = format!("/api/v1/rules?{q}").parse().unwrap();
        RulesFilter::from_params(&Params::from_request(
            &uri,
            &HeaderMap::new(),
            &Bytes::new(),
        ))
    }

    #[test]
    fn rules_filters_parse_like_prometheus() {
        let f = filter("").unwrap();
        assert!(f.alerts && f.records && !f.exclude_alerts);
        let f =
            filter("type=ALERT&rule_name[]=A&rule_name[]=B&file[]=x.yml&exclude_alerts=1").unwrap();
        assert!(f.alerts && !f.records && f.exclude_alerts);
        assert_eq!(f.rule_names, ["A", "B"]);
        assert_eq!(f.files, ["x.yml"]);
        assert!(f.group_wanted("any", "x.yml"));
        assert!(!f.group_wanted("any", "y.yml"));
        assert!(f.rule_wanted("A", &RuleKind::Alert("A".into())));
        assert!(!f.rule_wanted("C", &RuleKind::Alert("C".into())));
        assert!(!f.rule_wanted("A", &RuleKind::Record("A".into())));
        assert_eq!(
            filter("type=foo").unwrap_err(),
            "not supported value \"foo\""
        );
        assert!(filter("exclude_alerts=yes")
            .unwrap_err()
            .contains("exclude_alerts"));
    }

    #[test]
    fn alert_values_like_go() {
        assert_eq!(go_exp(1.0), "1e+00");
        assert_eq!(go_exp(0.5), "5e-01");
        assert_eq!(go_exp(125.0), "1.25e+02");
        assert_eq!(go_exp(1e-10), "1e-10");
        assert_eq!(go_exp(f64::NAN), "NaN");
        assert_eq!(go_exp(f64::NEG_INFINITY), "-Inf");
    }
}
