//! The system clock and time zone (collector `time`).

use super::{HostError, HostOptions, Out};

pub(crate) fn collect(_opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    out.gauge(
        "node_time_seconds",
        "System time in seconds since epoch (1970).",
        &[],
        now,
    );
    // SAFETY: localtime_r writes only into the tm we own; tm_zone points to
    // static storage inside libc valid for the process's lifetime.
    let (offset, zone) = unsafe {
        let t = now as libc::time_t;
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() || tm.tm_zone.is_null() {
            return Ok(());
        }
        (
            tm.tm_gmtoff as f64,
            std::ffi::CStr::from_ptr(tm.tm_zone)
                .to_string_lossy()
                .into_owned(),
        )
    };
    out.gauge(
        "node_time_zone_offset_seconds",
        "System time zone offset in seconds.",
        &[("time_zone", &zone)],
        offset,
    );
    Ok(())
}
