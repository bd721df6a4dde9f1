//! Connection-tracking table use (collector `conntrack`): entries and limit
//! from `/proc/sys/net/netfilter`. The per-CPU `stat_*` families need
//! netlink and are not exported.

use super::{num, read, HostError, HostOptions, Out};

pub(crate) fn collect(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let dir = opts.proc_path.join("sys/net/netfilter");
    for (file, name, help) in [
        (
            "nf_conntrack_count",
            "node_nf_conntrack_entries",
            "Number of currently allocated flow entries for connection tracking.",
        ),
        (
            "nf_conntrack_max",
            "node_nf_conntrack_entries_limit",
            "Maximum size of connection tracking table.",
        ),
    ] {
        let p = dir.join(file);
        let v = num(&p, 1, file, &read(&p)?)?;
        out.gauge(name, help, &[], v);
    }
    Ok(())
}
