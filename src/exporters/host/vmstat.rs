//! `/proc/vmstat`: node_exporter's default field selection
//! (`oom_kill`, `pgpg*`, `pswp*`, `pg*fault`).
//!
//! node_exporter types these `untyped`; klaxon's registry has only counters
//! and gauges, so they are gauges here (values identical).

use super::{num, read, HostError, HostOptions, Out};

fn wanted(k: &str) -> bool {
    k.starts_with("oom_kill")
        || k.starts_with("pgpg")
        || k.starts_with("pswp")
        || (k.starts_with("pg") && k.contains("fault"))
}

pub(crate) fn collect(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let p = opts.proc_path.join("vmstat");
    let text = read(&p)?;
    for (i, line) in text.lines().enumerate() {
        let mut f = line.split_whitespace();
        let (Some(k), Some(v)) = (f.next(), f.next()) else {
            continue;
        };
        if wanted(k) {
            let v = num(&p, i + 1, k, v)?;
            out.untyped(
                &format!("node_vmstat_{k}"),
                &format!("/proc/vmstat information field {k}."),
                &[],
                v,
            );
        }
    }
    Ok(())
}
