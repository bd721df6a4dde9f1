//! `/proc/diskstats`: per-device I/O counters, skipping partitions and
//! pseudo devices as node_exporter's default `device-exclude` does.

use super::{num, read, HostError, HostOptions, Out};

/// node_exporter 1.5 default: `^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\d+n\d+p)\d+$`.
fn excluded(dev: &str) -> bool {
    let digits_tail = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    for pre in ["ram", "loop", "fd"] {
        if let Some(r) = dev.strip_prefix(pre) {
            if digits_tail(r) {
                return true;
            }
        }
    }
    for pre in ["hd", "sd", "vd", "xvd"] {
        if let Some(r) = dev.strip_prefix(pre) {
            let mut c = r.chars();
            if c.next().is_some_and(|c| c.is_ascii_lowercase()) && digits_tail(c.as_str()) {
                return true;
            }
        }
    }
    if let Some(r) = dev.strip_prefix("nvme") {
        // nvme<d>n<d>p<d>
        let Some((a, rest)) = r.split_once('n') else {
            return false;
        };
        let Some((b, c)) = rest.split_once('p') else {
            return false;
        };
        return digits_tail(a) && digits_tail(b) && digits_tail(c);
    }
    false
}

const SECTOR: f64 = 512.0;

/// (field index after the name, family, help, kind, scale)
const FIELDS: &[(usize, &str, &str, bool, f64)] = &[
    (
        0,
        "node_disk_reads_completed",
        "Reads completed.",
        true,
        1.0,
    ),
    (1, "node_disk_reads_merged", "Reads merged.", true, 1.0),
    (2, "node_disk_read_bytes", "Bytes read.", true, SECTOR),
    (
        3,
        "node_disk_read_time_seconds",
        "Seconds spent by all reads.",
        true,
        0.001,
    ),
    (
        4,
        "node_disk_writes_completed",
        "Writes completed.",
        true,
        1.0,
    ),
    (5, "node_disk_writes_merged", "Writes merged.", true, 1.0),
    (6, "node_disk_written_bytes", "Bytes written.", true, SECTOR),
    (
        7,
        "node_disk_write_time_seconds",
        "Seconds spent by all writes.",
        true,
        0.001,
    ),
    (
        8,
        "node_disk_io_now",
        "I/Os currently in progress.",
        false,
        1.0,
    ),
    (
        9,
        "node_disk_io_time_seconds",
        "Seconds spent doing I/Os.",
        true,
        0.001,
    ),
    (
        10,
        "node_disk_io_time_weighted_seconds",
        "Weighted seconds spent doing I/Os.",
        true,
        0.001,
    ),
    (
        11,
        "node_disk_discards_completed",
        "Discards completed.",
        true,
        1.0,
    ),
    (
        12,
        "node_disk_discards_merged",
        "Discards merged.",
        true,
        1.0,
    ),
    (
        13,
        "node_disk_discarded_sectors",
        "Sectors discarded.",
        true,
        1.0,
    ),
    (
        14,
        "node_disk_discard_time_seconds",
        "Seconds spent by all discards.",
        true,
        0.001,
    ),
    (
        15,
        "node_disk_flush_requests",
        "Flush requests completed.",
        true,
        1.0,
    ),
    (
        16,
        "node_disk_flush_requests_time_seconds",
        "Seconds spent by all flush requests.",
        true,
        0.001,
    ),
];

pub(crate) fn collect(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let p = opts.proc_path.join("diskstats");
    let text = read(&p)?;
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(major), Some(minor), Some(dev)) = (f.first(), f.get(1), f.get(2)) else {
            continue;
        };
        if excluded(dev) {
            continue;
        }
        let vals = f.get(3..).unwrap_or_default();
        for &(idx, name, help, counter, scale) in FIELDS {
            let Some(s) = vals.get(idx) else { break };
            let v = num(&p, i + 1, name, s)? * scale;
            out.push(
                name,
                help,
                if counter {
                    crate::metrics::Kind::Counter
                } else {
                    crate::metrics::Kind::Gauge
                },
                &[("device", dev)],
                v,
            );
        }
        out.gauge(
            "node_disk_info",
            "Info of /sys/block/<block_device>.",
            &[
                ("device", dev),
                ("major", major),
                ("minor", minor),
                ("model", ""),
                ("path", ""),
                ("revision", ""),
                ("serial", ""),
                ("wwn", ""),
            ],
            1.0,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_exclusions() {
        for d in ["sda1", "vda2", "nvme0n1p3", "loop0", "ram1", "xvda1"] {
            assert!(super::excluded(d), "{d}");
        }
        for d in ["sda", "vda", "nvme0n1", "zram0", "dm-0", "md0"] {
            assert!(!super::excluded(d), "{d}");
        }
    }
}
