//! notify: the Alertmanager half of klaxon. Alerts from klaxon's own rules
//! and from `POST /api/v2/alerts` enter one dispatcher, which routes them
//! (route tree, grouping, inhibition, silences) and, at each group flush,
//! hands a [`Notification`] to the outbox; the outbox stores it before the
//! first attempt and delivers it to the receiver's integrations (PagerDuty,
//! Slack, email, webhook) with retries.
//!
//! The types in this file are the seams between those stages:
//! rules → [`AlertSink`] → dispatcher → [`Notification`] → outbox/receivers.

pub mod breaker;
pub mod config;
pub mod dispatch;
pub mod inhibit;
pub mod matchers;
pub mod outbox;
pub mod receivers;
pub mod route;
pub mod silence;
mod stage;
pub mod template;
pub mod timeinterval;
pub mod wiring;

use crate::model::{Labels, Timestamp};

pub use crate::model::alert::{Alert, AlertSink};

/// One flush of one aggregation group for one receiver: what a template
/// renders and what the outbox stores.
#[derive(Clone, Debug, PartialEq)]
pub struct Notification {
    /// Receiver name, as in the config.
    pub receiver: String,
    /// Alertmanager's group key, e.g. `{}/{severity="page"}:{alertname="X"}`:
    /// stable across restarts, the base of PagerDuty's dedup_key.
    pub group_key: String,
    pub group_labels: Labels,
    /// Firing and resolved alerts of the group at flush time.
    pub alerts: Vec<Alert>,
    /// Base URL of klaxon's UI, for silence links and `.ExternalURL`.
    pub external_url: String,
    /// Flush time, milliseconds since the epoch.
    pub created_at: Timestamp,
}

impl Notification {
    /// The alerts as `alertname{labels}` (alertname first), comma
    /// separated: what a log line about this notification names.
    pub fn alert_names(&self) -> String {
        self.alerts
            .iter()
            .map(|a| {
                let name = a.labels.get("alertname").unwrap_or("");
                let rest: Vec<String> = a
                    .labels
                    .iter()
                    .filter(|l| l.name != "alertname")
                    .map(|l| format!("{}={:?}", l.name, l.value))
                    .collect();
                format!("{name}{{{}}}", rest.join(", "))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The request id of the newest alert posted through the API, if any:
    /// what ties this notification to the call that caused it.
    pub fn request_id(&self) -> Option<&str> {
        self.alerts
            .iter()
            .filter(|a| a.request_id.is_some())
            .max_by_key(|a| a.updated_at)
            .and_then(|a| a.request_id.as_deref())
    }
}

/// Where the dispatcher hands a flushed group. Implemented by the outbox,
/// which persists the notification before the first delivery attempt.
pub trait NotificationSink: Send + Sync {
    fn enqueue(&self, n: Notification);

    /// Like `enqueue`, telling whether the notification is safely kept:
    /// on an error the dispatcher does not log the group as notified and
    /// tries again at its next `group_interval`.
    fn try_enqueue(&self, n: Notification) -> Result<(), EnqueueError> {
        self.enqueue(n);
        Ok(())
    }

    /// Like `try_enqueue`, storing the notification log entry `log` with
    /// the notification when the sink can (atomically); true when it did,
    /// false when the dispatcher must store it.
    fn try_enqueue_logged(
        &self,
        n: Notification,
        log: &crate::store::notify_log::LogEntry,
    ) -> Result<bool, EnqueueError> {
        let _ = log;
        self.try_enqueue(n).map(|()| false)
    }
}

/// Why a [`NotificationSink`] did not keep a notification (nothing was
/// written; the dispatcher tries again at the group's next interval).
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}
