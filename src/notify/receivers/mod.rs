//! Receivers: their config (`pagerduty_configs`, `slack_configs`,
//! `email_configs`, `webhook_configs`), payload rendering and sending.
//! (Seam stub: the delivery work replaces `RawReceiver` with the full
//! shapes; the routing work only relies on `name`.)

use serde::Deserialize;

/// One entry of `receivers:` as written.
#[derive(Debug, Deserialize)]
pub struct RawReceiver {
    pub name: String,
    #[serde(flatten)]
    pub integrations: std::collections::BTreeMap<String, serde_json::Value>,
}
