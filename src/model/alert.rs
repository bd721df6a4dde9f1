//! The alert that crosses from the stages that raise alerts (rules, the
//! Alertmanager API) to the ones that route and send them (notify, the
//! notifier), and the [`AlertSink`] seam between them. Kept here so the
//! rules manager and the dispatcher both depend on the shared types and not
//! on each other, as Prometheus' rules manager only knows a notify function.

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
        fingerprint(&self.labels)
    }

    /// Resolved at `now` when its end lies in the past.
    pub fn resolved_at(&self, now: Timestamp) -> bool {
        matches!(self.ends_at, Some(e) if e <= now)
    }
}

/// Alertmanager's alert fingerprint (`model.LabelSet.Fingerprint`): FNV-1a
/// 64 over sorted names and values, each followed by 0xff. Shown in the API
/// as 16 hex digits and stored in the notification log, so it must not
/// change between versions.
pub fn fingerprint(labels: &Labels) -> u64 {
    const OFFSET: u64 = 14_695_981_039_346_656_037;
    const PRIME: u64 = 1_099_511_628_211;
    let mut h = OFFSET;
    let mut add = |b: &[u8]| {
        for x in b {
            h ^= *x as u64;
            h = h.wrapping_mul(PRIME);
        }
    };
    for l in labels {
        add(l.name.as_bytes());
        add(&[0xff]);
        add(l.value.as_bytes());
        add(&[0xff]);
    }
    h
}

/// Where alerts go after evaluation. Implemented by the dispatcher; the rules
/// stage only knows this trait, so it can run without notify configured.
pub trait AlertSink: Send + Sync {
    /// Takes new or updated alerts (firing, or resolved with `ends_at` set).
    fn send(&self, alerts: Vec<Alert>);
}
