//! Kernel clock discipline via `adjtimex(2)` (collector `timex`), scaled
//! to seconds and ratios as node_exporter does.

use super::{HostError, HostOptions, Out};

/// Kernel frequency values are ppm with a 16-bit binary fraction.
const PPM16: f64 = 65536.0 * 1e6;
const STA_NANO: i32 = 0x2000;
const TIME_ERROR: i32 = 5;

pub(crate) fn collect(_opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    // SAFETY: modes = 0 only reads; the kernel fills the zeroed struct we own.
    let (state, tx) = unsafe {
        let mut tx: libc::timex = std::mem::zeroed();
        let r = libc::adjtimex(&mut tx);
        if r < 0 {
            return Err(HostError::Io {
                path: "adjtimex(2)".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        (r, tx)
    };
    // `offset` and `jitter` are in ns when STA_NANO is set, µs otherwise.
    let div = if tx.status & STA_NANO != 0 { 1e9 } else { 1e6 };
    let g: [(&str, &str, f64); 13] = [
        (
            "node_timex_sync_status",
            "Is clock synchronized to a reliable server (1 = yes, 0 = no).",
            if state == TIME_ERROR { 0.0 } else { 1.0 },
        ),
        (
            "node_timex_offset_seconds",
            "Time offset in between local system and reference clock.",
            tx.offset as f64 / div,
        ),
        (
            "node_timex_frequency_adjustment_ratio",
            "Local clock frequency adjustment.",
            1.0 + tx.freq as f64 / PPM16,
        ),
        (
            "node_timex_maxerror_seconds",
            "Maximum error in seconds.",
            tx.maxerror as f64 / 1e6,
        ),
        (
            "node_timex_estimated_error_seconds",
            "Estimated error in seconds.",
            tx.esterror as f64 / 1e6,
        ),
        (
            "node_timex_status",
            "Value of the status array bits.",
            f64::from(tx.status),
        ),
        (
            "node_timex_loop_time_constant",
            "Phase-locked loop time constant.",
            tx.constant as f64,
        ),
        (
            "node_timex_tick_seconds",
            "Seconds between clock ticks.",
            tx.tick as f64 / 1e6,
        ),
        (
            "node_timex_pps_frequency_hertz",
            "Pulse per second frequency.",
            tx.ppsfreq as f64 / PPM16,
        ),
        (
            "node_timex_pps_jitter_seconds",
            "Pulse per second jitter.",
            tx.jitter as f64 / div,
        ),
        (
            "node_timex_pps_shift_seconds",
            "Pulse per second interval duration.",
            f64::from(tx.shift),
        ),
        (
            "node_timex_pps_stability_hertz",
            "Pulse per second stability, average of recent frequency changes.",
            tx.stabil as f64 / PPM16,
        ),
        (
            "node_timex_tai_offset_seconds",
            "International Atomic Time (TAI) offset.",
            f64::from(tx.tai),
        ),
    ];
    for (name, help, v) in g {
        out.gauge(name, help, &[], v);
    }
    for (name, help, v) in [
        (
            "node_timex_pps_jitter",
            "Pulse per second count of jitter limit exceeded events.",
            tx.jitcnt,
        ),
        (
            "node_timex_pps_calibration",
            "Pulse per second count of calibration intervals.",
            tx.calcnt,
        ),
        (
            "node_timex_pps_error",
            "Pulse per second count of calibration errors.",
            tx.errcnt,
        ),
        (
            "node_timex_pps_stability_exceeded",
            "Pulse per second count of stability limit exceeded events.",
            tx.stbcnt,
        ),
    ] {
        out.counter(name, help, &[], v as f64);
    }
    Ok(())
}
