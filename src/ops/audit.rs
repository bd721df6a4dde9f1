//! The audit trail of remote commands: every command, accepted or
//! rejected, is recorded with who, what, why, its correlation id, where it
//! came from and what happened. Entries are events of kind `command`, so
//! they are streamed live and listed by `/api/v1/events/audit` like the rest.

use crate::ops::events::{Events, KIND_COMMAND};
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
