//! The notification outbox and delivery log, silences and the notification
//! log (issue 5). Filled in by the notify stage.

/// Tables of this concern.
pub(crate) const SCHEMA: &str = "";
