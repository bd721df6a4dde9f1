//! `GET /api/v1/targets` in Prometheus' JSON shape.

use super::{api_error, labels_json, success};
use crate::model::time::rfc3339_millis;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
pub struct TargetsQuery {
    state: Option<String>,
    #[serde(rename = "scrapePool")]
    scrape_pool: Option<String>,
}

pub async fn targets(
    State(manager): State<std::sync::Arc<crate::scrape::manager::Manager>>,
    ext: axum::http::Extensions,
    Query(q): Query<TargetsQuery>,
) -> Response {
    // A tenant-scoped caller sees the active targets of its tenants (by
    // their labels) and no dropped ones (those have no tenant yet).
    let scope = crate::ops::tenants::of_request(&ext);
    let show_dropped_scoped = scope.is_none();
    let state = q.state.as_deref().unwrap_or("any").to_ascii_lowercase();
    let (show_active, show_dropped) = match state.as_str() {
        "" | "any" => (true, true),
        "active" => (true, false),
        "dropped" => (false, true),
        other => {
            return api_error(
                StatusCode::BAD_REQUEST,
                "bad_data",
                format!("invalid state {other:?}: want active, dropped or any"),
            )
        }
    };
    let mut active = Vec::new();
    let mut dropped = Vec::new();
    let mut dropped_counts = serde_json::Map::new();
    for pool in manager.targets() {
        if q.scrape_pool.as_deref().is_some_and(|p| p != pool.job) {
            continue;
        }
        if show_active {
            for t in &pool.active {
                if scope.as_ref().is_some_and(|sc| !sc.allows(&t.labels)) {
                    continue;
                }
                let st = t.status();
                active.push(json!({
                    "discoveredLabels": labels_json(&t.discovered_labels),
                    "labels": labels_json(&t.labels),
                    "scrapePool": pool.job,
                    "scrapeUrl": t.scrape_url,
                    "globalUrl": t.scrape_url,
                    "lastError": st.last_error,
                    "lastScrape": st.last_scrape.map(rfc3339_millis)
                        .unwrap_or_else(|| "0001-01-01T00:00:00Z".to_string()),
                    "lastScrapeDuration": st.last_scrape_duration.as_secs_f64(),
                    "health": st.health.as_str(),
                    "scrapeInterval": crate::config::format_duration(t.interval),
                    "scrapeTimeout": crate::config::format_duration(t.timeout),
                }));
            }
        }
        if show_dropped && show_dropped_scoped {
            for d in &pool.dropped {
                dropped.push(json!({"discoveredLabels": labels_json(d), "scrapePool": pool.job}));
            }
        }
        if show_dropped_scoped {
            dropped_counts.insert(pool.job.clone(), json!(pool.dropped.len()));
        }
    }
    // Both arrays are always present (empty when filtered out), as in
    // Prometheus 3, with the dropped count per pool.
    success(json!({
        "activeTargets": active,
        "droppedTargets": dropped,
        "droppedTargetCounts": dropped_counts,
    }))
}
