//! `GET /api/v1/tenants/summary`: per tenant, what is firing (by
//! severity), the worst SLO burn rate, failed deliveries and the share of
//! targets up, folded into one health score (formula in
//! docs/operations.md, "Tenants", and in [`health_score`]). An unscoped
//! caller sees every tenant; a tenant-scoped one only its own.

use super::{success, AppState, HttpState};
use crate::ops::tenants::Scope;
use crate::promql::Value;
use axum::extract::State;
use axum::response::Response;
use serde_json::json;
use std::collections::BTreeMap;

/// How far back failed deliveries count.
pub const FAILED_WINDOW_MS: i64 = 24 * 3600 * 1000;

/// One tenant's inputs to the score.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TenantHealth {
    pub critical: u64,
    pub warning: u64,
    /// Firing alerts of any other (or no) severity.
    pub other: u64,
    /// Highest `slo:current_burn_rate:ratio` of the tenant's SLOs, if any.
    pub slo_burn: Option<f64>,
    /// Failed deliveries of the tenant's alert groups in the last 24 h.
    pub failed_deliveries: u64,
    pub targets_up: u64,
    pub targets: u64,
}

/// The score, 0 (worst) to 100, as documented:
///
/// `100 - alerts - slo - deliveries - targets`, floored at 0, where
/// - `alerts = min(50, 20*critical + 8*warning + 2*other)`,
/// - `slo = 25 * clamp((burn - 1) / (14.4 - 1), 0, 1)` (a burn rate of 1
///   spends the error budget exactly over the SLO period and costs
///   nothing; 14.4, the fast page threshold, costs all 25),
/// - `deliveries = min(10, 2*failed)`,
/// - `targets = 15 * (1 - up/total)` (0 without targets).
pub fn health_score(h: &TenantHealth) -> f64 {
    let alerts = (20 * h.critical + 8 * h.warning + 2 * h.other).min(50) as f64;
    let slo = h
        .slo_burn
        .filter(|b| b.is_finite())
        .map_or(0.0, |b| 25.0 * ((b - 1.0) / 13.4).clamp(0.0, 1.0));
    let deliveries = (2 * h.failed_deliveries).min(10) as f64;
    let targets = if h.targets == 0 {
        0.0
    } else {
        15.0 * (1.0 - h.targets_up as f64 / h.targets as f64)
    };
    let s = (100.0 - alerts - slo - deliveries - targets).max(0.0);
    (s * 10.0).round() / 10.0
}

/// `healthy` from 90, `degraded` from 70, else `critical`.
pub fn status(score: f64) -> &'static str {
    if score >= 90.0 {
        "healthy"
    } else if score >= 70.0 {
        "degraded"
    } else {
        "critical"
    }
}

/// The value of `label` in each sample of an instant query, with its value.
fn by_tenant(s: &AppState, label: &str, expr: &str, now: i64) -> Vec<(String, f64)> {
    match s.engine.instant(&*s.storage, expr, now) {
        Ok(r) => match r.value {
            Value::Vector(v) => v
                .into_iter()
                .filter_map(|x| x.labels.get(label).map(|t| (t.to_string(), x.value)))
                .collect(),
            _ => Vec::new(),
        },
        Err(e) => {
            tracing::warn!(error = %e, query = expr, "tenant summary query failed");
            Vec::new()
        }
    }
}

pub async fn summary(State(s): State<HttpState>, ext: axum::http::Extensions) -> Response {
    let scope = crate::ops::tenants::of_request(&ext);
    let label = s.ops.auth.tenant_label().to_string();
    let now = crate::model::now_millis();
    // Failed deliveries of the last day (newest 1000), attributed below.
    let q = crate::store::notify::Query {
        status: Some("failed".into()),
        since: Some(now - FAILED_WINDOW_MS),
        limit: 1000,
        ..Default::default()
    };
    let failed = s
        .outbox
        .store()
        .call(move |st| st.list_deliveries(&q))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "tenant summary: reading deliveries");
            Vec::new()
        });
    let st = s.clone();
    let body = tokio::task::spawn_blocking(move || {
        let mut tenants: BTreeMap<String, TenantHealth> = BTreeMap::new();
        // Tenants known from the configured tokens and the data itself.
        for t in st.ops.auth.configured_tenants() {
            tenants.entry(t).or_default();
        }
        for t in st
            .storage
            .querier(now - 3600 * 1000, now)
            .label_values(&label, &[])
        {
            tenants.entry(t).or_default();
        }
        for a in st.dispatcher.alerts() {
            if a.resolved_at(now) {
                continue;
            }
            let Some(t) = a.alert.labels.get(&label) else {
                continue;
            };
            let h = tenants.entry(t.to_string()).or_default();
            match a.alert.labels.get("severity") {
                Some("critical") | Some("page") => h.critical += 1,
                Some("warning") => h.warning += 1,
                _ => h.other += 1,
            }
        }
        for (t, v) in by_tenant(
            &st,
            &label,
            &format!("max by ({label}) (slo:current_burn_rate:ratio)"),
            now,
        ) {
            tenants.entry(t).or_default().slo_burn = Some(v);
        }
        for (t, v) in by_tenant(&st, &label, &format!("sum by ({label}) (up)"), now) {
            tenants.entry(t).or_default().targets_up = v.max(0.0) as u64;
        }
        for (t, v) in by_tenant(&st, &label, &format!("count by ({label}) (up)"), now) {
            tenants.entry(t).or_default().targets = v.max(0.0) as u64;
        }
        let names: Vec<String> = tenants.keys().cloned().collect();
        for d in &failed {
            for t in &names {
                let one = Scope {
                    label: label.clone(),
                    tenants: vec![t.clone()],
                };
                if one.owns_group_key(&d.group_key) {
                    if let Some(h) = tenants.get_mut(t) {
                        h.failed_deliveries += 1;
                    }
                }
            }
        }
        let out: Vec<serde_json::Value> = tenants
            .into_iter()
            .filter(|(t, _)| {
                scope
                    .as_ref()
                    .is_none_or(|sc| sc.allows_value(Some(t.as_str())))
            })
            .map(|(t, h)| {
                let score = health_score(&h);
                json!({
                    "tenant": t,
                    "score": score,
                    "status": status(score),
                    "firingAlerts": {
                        "critical": h.critical,
                        "warning": h.warning,
                        "other": h.other,
                    },
                    "sloBurnRate": h.slo_burn.filter(|b| b.is_finite()),
                    "failedDeliveries24h": h.failed_deliveries,
                    "targets": {
                        "up": h.targets_up,
                        "total": h.targets,
                        "upRatio": (h.targets > 0).then(|| h.targets_up as f64 / h.targets as f64),
                    },
                })
            })
            .collect();
        json!({"tenantLabel": label, "tenants": out})
    })
    .await;
    match body {
        Ok(v) => success(v),
        Err(e) => {
            tracing::error!(error = %e, "tenant summary failed");
            super::api_error(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "tenant summary failed",
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_follows_the_documented_formula() {
        let ok = TenantHealth::default();
        assert_eq!(health_score(&ok), 100.0);
        assert_eq!(status(100.0), "healthy");
        let h = TenantHealth {
            critical: 1,
            warning: 1,
            other: 1,
            slo_burn: Some(7.7),
            failed_deliveries: 2,
            targets_up: 3,
            targets: 4,
        };
        // 100 - 30 - 12.5 - 4 - 3.75
        assert_eq!(health_score(&h), 49.8);
        assert_eq!(status(49.8), "critical");
        let worst = TenantHealth {
            critical: 9,
            slo_burn: Some(100.0),
            failed_deliveries: 50,
            targets: 2,
            ..Default::default()
        };
        assert_eq!(health_score(&worst), 0.0);
        let burn_one = TenantHealth {
            slo_burn: Some(1.0),
            warning: 1,
            ..Default::default()
        };
        assert_eq!(health_score(&burn_one), 92.0);
        assert_eq!(status(75.0), "degraded");
    }
}
