//! The audit trail. Remote commands: every command, accepted or rejected,
//! is recorded with who, what, why, its correlation id, where it came from
//! and what happened (events of kind `command`). Changes through the API
//! (silences created and expired, alerts posted, deliveries replayed,
//! reloads) are recorded with the caller (token name, or `anonymous@ADDR`),
//! the outcome and the request id (kind `change`). Both are streamed live
//! and listed by `/api/v1/events/audit` like the rest.

use crate::ops::events::{Events, KIND_CHANGE, KIND_COMMAND};
use serde::Serialize;
use std::time::Duration;

/// One audited command.
#[derive(Clone, Debug, Default, Serialize)]
pub struct CommandAudit {
    /// The operator named in the body, or the token name; empty if unknown.
    pub who: String,
    /// `kill-switch`, `resume`, `reload`, `refresh`.
    pub what: String,
    pub reason: String,
    pub correlation_id: String,
    pub source: String,
    /// `accepted`, or `rejected: <why>`, or `failed: <why>`.
    pub result: String,
    pub request_id: String,
}

/// Writes the audit entry (and logs it: an audit that only exists in a
/// database nobody reads during an incident is half an audit).
pub fn record(events: &Events, a: &CommandAudit) {
    tracing::info!(
        target: "klaxon::audit",
        who = %a.who,
        what = %a.what,
        reason = %a.reason,
        correlation_id = %a.correlation_id,
        source = %a.source,
        result = %a.result,
        "command"
    );
    events.publish(
        KIND_COMMAND,
        serde_json::to_value(a).unwrap_or(serde_json::Value::Null),
    );
}

pub const SILENCE_CREATE: &str = "silence_create";

/// The audited changes: `(method, route, action)`. Signed commands are
/// audited as commands (with their body's operator and reason) instead.
const CHANGES: &[(&str, &str, &str)] = &[
    ("POST", "/api/v2/silences", SILENCE_CREATE),
    ("DELETE", "/api/v2/silence/{id}", "silence_expire"),
    ("POST", "/api/v2/alerts", "alerts_post"),
    ("POST", "/api/v1/deliveries/{id}/replay", "delivery_replay"),
    ("POST", "/api/v1/admin/tsdb/snapshot", "tsdb_snapshot"),
    ("PUT", "/api/v1/admin/tsdb/snapshot", "tsdb_snapshot"),
    (
        "POST",
        "/api/v1/admin/tsdb/delete_series",
        "tsdb_delete_series",
    ),
    (
        "PUT",
        "/api/v1/admin/tsdb/delete_series",
        "tsdb_delete_series",
    ),
    (
        "POST",
        "/api/v1/admin/tsdb/clean_tombstones",
        "tsdb_clean_tombstones",
    ),
    (
        "PUT",
        "/api/v1/admin/tsdb/clean_tombstones",
        "tsdb_clean_tombstones",
    ),
    ("POST", "/-/reload", "reload"),
    ("PUT", "/-/reload", "reload"),
    ("POST", "/api/v1/autoheal/rules", AUTOHEAL_RULE_CREATE),
    (
        "PUT",
        "/api/v1/autoheal/rules/{name}",
        "autoheal_rule_update",
    ),
    (
        "DELETE",
        "/api/v1/autoheal/rules/{name}",
        "autoheal_rule_delete",
    ),
    (
        "POST",
        "/api/v1/autoheal/clear_endpoint_cooldown",
        AUTOHEAL_CLEAR_COOLDOWN,
    ),
];

pub const AUTOHEAL_RULE_CREATE: &str = "autoheal_rule_create";
pub const AUTOHEAL_CLEAR_COOLDOWN: &str = "autoheal_clear_endpoint_cooldown";

/// Where an audited change's target is in its JSON answer when the path
/// does not name it: a created silence's id, a created rule's name, the
/// receiver whose endpoints were reset.
pub fn answer_target(action: &str, answer: &serde_json::Value) -> Option<String> {
    let v = match action {
        SILENCE_CREATE => answer.get("silenceID"),
        AUTOHEAL_RULE_CREATE => answer.pointer("/data/name"),
        AUTOHEAL_CLEAR_COOLDOWN => answer.pointer("/data/receiver"),
        _ => None,
    };
    v.and_then(|x| x.as_str()).map(String::from)
}

/// The audit action of `method route`, if it is an audited change.
pub fn change_action(method: &str, route: &str) -> Option<&'static str> {
    CHANGES
        .iter()
        .find(|(m, r, _)| *m == method && *r == route)
        .map(|c| c.2)
}

/// One change made through the API.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChangeAudit {
    /// The token's name, or `anonymous@ADDRESS`.
    pub who: String,
    /// `silence_create`, `silence_expire`, `alerts_post`,
    /// `delivery_replay`, `reload`, `autoheal_rule_{create,update,delete}`,
    /// `autoheal_clear_endpoint_cooldown`, `tsdb_snapshot`,
    /// `tsdb_delete_series`, `tsdb_clean_tombstones`.
    pub action: String,
    pub method: String,
    pub path: String,
    /// What was changed when the path does not say (a created silence's id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The HTTP status answered.
    pub status: u16,
    pub request_id: String,
}

/// Logs the change and queues it for the store without blocking the
/// request (alerts are posted every evaluation interval).
pub fn record_change(events: &Events, a: &ChangeAudit) {
    tracing::info!(
        target: "klaxon::audit",
        who = %a.who,
        action = %a.action,
        path = %a.path,
        status = a.status,
        request_id = %a.request_id,
        "change"
    );
    events.publish_later(
        KIND_CHANGE,
        serde_json::to_value(a).unwrap_or(serde_json::Value::Null),
    );
}

/// How often old events are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Prunes events older than `retention`, now and then hourly.
pub fn spawn_retention(events: Events, retention: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut t = tokio::time::interval(PRUNE_EVERY);
        loop {
            t.tick().await;
            let cutoff = crate::model::now_millis()
                - i64::try_from(retention.as_millis()).unwrap_or(i64::MAX / 2);
            let ev = events.clone();
            match tokio::task::spawn_blocking(move || ev.prune(cutoff)).await {
                Ok(Ok(n)) if n > 0 => tracing::debug!(n, "pruned old events"),
                Ok(Err(e)) => tracing::warn!(error = %e, "pruning events"),
                _ => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::audit::EventQuery;
    use crate::store::Store;
    use std::sync::Arc;

    /// The app's retention task prunes at start: events older than the
    /// retention go, younger ones stay.
    #[tokio::test]
    async fn retention_task_removes_only_what_is_older_than_retention() {
        let store = Arc::new(Store::open_in_memory().expect("store"));
        let now = crate::model::now_millis();
        let day = 86_400_000;
        for (at, kind) in [
            (now - 8 * day, "old"),
            (now - 6 * day - 3_600_000, "young"),
            (now - 1000, "fresh"),
        ] {
            store.insert_event(at, kind, "{}").expect("insert");
        }
        let events = Events::new(store.clone());
        let task = spawn_retention(events, Duration::from_secs(7 * 86_400));
        let kinds = || -> Vec<String> {
            store
                .query_events(&EventQuery {
                    limit: 100,
                    ..EventQuery::default()
                })
                .expect("query")
                .into_iter()
                .map(|e| e.kind)
                .collect()
        };
        let end = std::time::Instant::now() + Duration::from_secs(10);
        while kinds().contains(&"old".to_string()) {
            assert!(std::time::Instant::now() < end, "old event never pruned");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        task.abort();
        let mut left = kinds();
        left.sort();
        assert_eq!(left, ["fresh", "young"]);
    }
}
