//! notify: the Alertmanager half of klaxon. Alerts from klaxon's own rules
//! and from `POST /api/v2/alerts` enter one dispatcher, which routes them
//! (route tree, grouping, inhibition, silences) and, at each group flush,
//! hands a [`Notification`] to the outbox; the outbox stores it before the
//! first attempt and delivers it to the receiver's integrations (PagerDuty,
//! Slack, email, webhook) with retries.
//!
//! The types in this file are the seams between those stages:
//! rules → [`AlertSink`] → dispatcher → [`Notification`] → outbox/receivers.

pub mod config;
pub mod dispatch;
pub mod inhibit;
pub mod matchers;
pub mod outbox;
pub mod receivers;
pub mod route;
pub mod silence;
pub mod template;
pub mod timeinterval;
pub mod wiring;

use crate::model::{Labels, Timestamp};

/// An alert as Alertmanager models it: label set (its identity), annotations,
/// and the interval it is active in. This is what rules send and what
/// `POST /api/v2/alerts` carries.
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    pub labels: Labels,
    pub annotations: Labels,
    /// Milliseconds since the epoch.
    pub starts_at: Timestamp,
    /// Milliseconds since the epoch; `None` while the sender did not say
    /// (the dispatcher then applies `resolve_timeout`, as Alertmanager).
    pub ends_at: Option<Timestamp>,
    pub generator_url: String,
    /// When the dispatcher last saw this alert updated.
    pub updated_at: Timestamp,
    /// `X-Request-ID` of the API call that posted it (none for klaxon's own
    /// rules): notifications it causes carry it (webhook header, PagerDuty
    /// custom_details) so a delivery can be traced to the request.
    pub request_id: Option<String>,
}

impl Alert {
    /// Alertmanager's fingerprint of the label set (the same 16 hex digits
    /// Alertmanager shows in its API and webhook payloads).
    pub fn fingerprint(&self) -> u64 {
        dispatch::fingerprint(&self.labels)
    }

    /// Resolved at `now` when its end lies in the past.
    pub fn resolved_at(&self, now: Timestamp) -> bool {
        matches!(self.ends_at, Some(e) if e <= now)
    }
}

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

/// Where alerts go after evaluation. Implemented by the dispatcher; the rules
/// stage only knows this trait, so it can run without notify configured.
pub trait AlertSink: Send + Sync {
    /// Takes new or updated alerts (firing, or resolved with `ends_at` set).
    fn send(&self, alerts: Vec<Alert>);
}

/// Where the dispatcher hands a flushed group. Implemented by the outbox,
/// which persists the notification before the first delivery attempt.
pub trait NotificationSink: Send + Sync {
    fn enqueue(&self, n: Notification);

    /// Like `enqueue`, telling whether the notification is safely kept:
    /// on an error the dispatcher does not log the group as notified and
    /// tries again at its next `group_interval`.
    fn try_enqueue(&self, n: Notification) -> Result<(), String> {
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
    ) -> Result<bool, String> {
        let _ = log;
        self.try_enqueue(n).map(|()| false)
    }
}
