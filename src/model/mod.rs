//! Types shared by every stage of the pipeline: label sets, sample values and
//! timestamps. Kept deliberately small: each stage owns its own richer types and
//! only these cross module boundaries.

pub mod alert;
pub mod gofmt;
pub mod histogram;
pub mod labels;
pub mod matcher;
pub mod rule_alert;
pub mod time;
pub mod url;
pub mod value;

pub use labels::{Label, Labels, LabelsBuilder};
pub use matcher::{MatchType, Matcher};
pub use value::{is_stale_nan, STALE_NAN, STALE_NAN_BITS};

/// Milliseconds since the Unix epoch, as Prometheus stores timestamps.
pub type Timestamp = i64;

/// The current wall-clock time in milliseconds since the Unix epoch.
pub fn now_millis() -> Timestamp {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
