//! `/proc/stat`: per-CPU mode seconds (collector `cpu`) and the kernel-wide
//! counters (collector `stat`).

use super::{num, parse_err, read, HostError, HostOptions, Out};

/// The kernel reports CPU time in USER_HZ ticks, fixed at 100 on Linux
/// regardless of CONFIG_HZ.
const USER_HZ: f64 = 100.0;

/// /proc/stat column order after the `cpuN` name.
const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];

pub(crate) fn collect_cpu(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let path = opts.proc_path.join("stat");
    let text = read(&path)?;
    for (i, line) in text.lines().enumerate() {
        let mut f = line.split_whitespace();
        let Some(name) = f.next() else { continue };
        // The aggregate `cpu` line is not exported; only `cpuN`.
        let Some(cpu) = name.strip_prefix("cpu").filter(|c| !c.is_empty()) else {
            continue;
        };
        let vals = f
            .map(|s| num(&path, i + 1, name, s))
            .collect::<Result<Vec<_>, _>>()?;
        if vals.len() < 4 {
            return Err(parse_err(&path, i + 1, format!("{name}: too few fields")));
        }
        for (mode, v) in MODES.iter().zip(&vals) {
            out.counter(
                "node_cpu_seconds",
                "Seconds the CPUs spent in each mode.",
                &[("cpu", cpu), ("mode", mode)],
                v / USER_HZ,
            );
        }
        // Guest time is already included in user/nice; node_exporter reports
        // it separately rather than subtracting it, and so do we.
        for (mode, idx) in [("user", 8), ("nice", 9)] {
            if let Some(v) = vals.get(idx) {
                out.counter(
                    "node_cpu_guest_seconds",
                    "Seconds the CPUs spent in guests (VMs) for each mode.",
                    &[("cpu", cpu), ("mode", mode)],
                    v / USER_HZ,
                );
            }
        }
    }
    Ok(())
}

pub(crate) fn collect_stat(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let path = opts.proc_path.join("stat");
    let text = read(&path)?;
    for (i, line) in text.lines().enumerate() {
        let mut f = line.split_whitespace();
        let (Some(key), Some(first)) = (f.next(), f.next()) else {
            continue;
        };
        let v = || num(&path, i + 1, key, first);
        match key {
            "intr" => out.counter(
                "node_intr",
                "Total number of interrupts serviced.",
                &[],
                v()?,
            ),
            "ctxt" => out.counter(
                "node_context_switches",
                "Total number of context switches.",
                &[],
                v()?,
            ),
            "processes" => out.counter("node_forks", "Total number of forks.", &[], v()?),
            "btime" => out.gauge(
                "node_boot_time_seconds",
                "Boot time, in unixtime.",
                &[],
                v()?,
            ),
            "procs_running" => out.gauge(
                "node_procs_running",
                "Number of processes in runnable state.",
                &[],
                v()?,
            ),
            "procs_blocked" => out.gauge(
                "node_procs_blocked",
                "Number of processes blocked waiting for I/O to complete.",
                &[],
                v()?,
            ),
            _ => {}
        }
    }
    Ok(())
}
