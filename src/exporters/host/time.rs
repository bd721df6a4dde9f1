//! The system clock and time zone (collector `time`).

use super::{HostError, HostOptions, Out};

pub(crate) fn collect(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    clocksources(opts, out);
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

/// Available and current clock sources per clocksource device; absent on
/// some virtual machines, which is not a failure.
fn clocksources(opts: &HostOptions, out: &mut Out) {
    let base = opts.sys_path.join("devices/system/clocksource");
    let Ok(rd) = std::fs::read_dir(&base) else {
        return;
    };
    let mut devs: Vec<String> = rd
        .flatten()
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix("clocksource")
                .map(str::to_string)
        })
        .collect();
    devs.sort();
    for dev in devs {
        let dir = base.join(format!("clocksource{dev}"));
        if let Ok(t) = std::fs::read_to_string(dir.join("available_clocksource")) {
            for cs in t.split_whitespace() {
                out.gauge(
                    "node_time_clocksource_available_info",
                    "Available clocksources read from '/sys/devices/system/clocksource'.",
                    &[("clocksource", cs), ("device", &dev)],
                    1.0,
                );
            }
        }
        if let Ok(t) = std::fs::read_to_string(dir.join("current_clocksource")) {
            out.gauge(
                "node_time_clocksource_current_info",
                "Current clocksource read from '/sys/devices/system/clocksource'.",
                &[("clocksource", t.trim()), ("device", &dev)],
                1.0,
            );
        }
    }
}
