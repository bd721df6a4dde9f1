//! `/sys/class/net/<dev>/`: link state, MTU, speed and identity.
//! Attributes the kernel refuses to report (e.g. `speed` on a down link
//! gives EINVAL) are skipped per interface, as node_exporter does.

use super::{read, HostError, HostOptions, Out};
use std::path::Path;

fn attr(dir: &Path, name: &str) -> Option<String> {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .map(|s| s.trim().to_string())
}

fn attr_num(dir: &Path, name: &str) -> Option<f64> {
    attr(dir, name)?.parse().ok()
}

pub(crate) fn collect(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let base = opts.sys_path.join("class/net");
    let rd = std::fs::read_dir(&base).map_err(|source| HostError::Io {
        path: base.display().to_string(),
        source,
    })?;
    let mut devs: Vec<String> = rd
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    devs.sort();
    for dev in &devs {
        let dir = base.join(dev);
        // Bonding masters list is a file, not an interface.
        if !dir.join("operstate").exists() {
            continue;
        }
        let operstate = read(&dir.join("operstate"))?.trim().to_string();
        let d = dev.as_str();
        out.gauge(
            "node_network_info",
            "Non-numeric data from /sys/class/net/<iface>, value is always 1.",
            &[
                ("address", &attr(&dir, "address").unwrap_or_default()),
                ("broadcast", &attr(&dir, "broadcast").unwrap_or_default()),
                ("device", d),
                ("duplex", &attr(&dir, "duplex").unwrap_or_default()),
                ("ifalias", &attr(&dir, "ifalias").unwrap_or_default()),
                ("operstate", &operstate),
            ],
            1.0,
        );
        out.gauge(
            "node_network_up",
            "Whether the operational state of the interface is up.",
            &[("device", d)],
            if operstate == "up" { 1.0 } else { 0.0 },
        );
        let g = [
            ("mtu", "node_network_mtu_bytes", 1.0),
            ("speed", "node_network_speed_bytes", 125_000.0),
            ("carrier", "node_network_carrier", 1.0),
            ("tx_queue_len", "node_network_transmit_queue_length", 1.0),
            ("flags", "node_network_flags", 1.0),
            ("ifindex", "node_network_iface_id", 1.0),
            ("iflink", "node_network_iface_link", 1.0),
            ("type", "node_network_protocol_type", 1.0),
            ("dormant", "node_network_dormant", 1.0),
            ("addr_assign_type", "node_network_address_assign_type", 1.0),
            ("dev_id", "node_network_device_id", 1.0),
            ("link_mode", "node_network_iface_link_mode", 1.0),
            ("name_assign_type", "node_network_name_assign_type", 1.0),
            ("netdev_group", "node_network_net_dev_group", 1.0),
        ];
        for (file, name, scale) in g {
            // `flags` and `dev_id` are hex.
            let v = if file == "flags" || file == "dev_id" {
                attr(&dir, file)
                    .and_then(|s| i64::from_str_radix(s.trim_start_matches("0x"), 16).ok())
                    .map(|v| v as f64)
            } else {
                attr_num(&dir, file)
            };
            if let Some(v) = v {
                out.gauge(
                    name,
                    &format!("Network device property: {file}."),
                    &[("device", d)],
                    v * scale,
                );
            }
        }
        for (file, name) in [
            ("carrier_changes", "node_network_carrier_changes"),
            ("carrier_up_count", "node_network_carrier_up_changes"),
            ("carrier_down_count", "node_network_carrier_down_changes"),
        ] {
            if let Some(v) = attr_num(&dir, file) {
                out.counter(
                    name,
                    &format!("Network device property: {file}."),
                    &[("device", d)],
                    v,
                );
            }
        }
    }
    Ok(())
}
