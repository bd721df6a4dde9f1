//! `/proc/net/sockstat` and `sockstat6`: socket counts per protocol
//! (`node_sockstat_TCP_inuse`, ...), `mem` also in bytes.

use super::{num, read, HostError, HostOptions, Out};
use std::path::Path;

fn page_size() -> f64 {
    // SAFETY: sysconf has no memory-safety preconditions.
    let v = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if v > 0 {
        v as f64
    } else {
        4096.0
    }
}

fn parse(p: &Path, text: &str, out: &mut Out) -> Result<(), HostError> {
    for (i, line) in text.lines().enumerate() {
        let Some((proto, rest)) = line.split_once(':') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        for kv in f.chunks(2) {
            let [k, v] = kv else { continue };
            let val = num(p, i + 1, k, v)?;
            let name = format!("node_sockstat_{proto}_{k}");
            let help = format!("Number of {proto} sockets in state {k}.");
            out.gauge(&name, &help, &[], val);
            if *k == "mem" {
                out.gauge(&format!("{name}_bytes"), &help, &[], val * page_size());
            }
        }
    }
    Ok(())
}

pub(crate) fn collect(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let p = opts.proc_path.join("net/sockstat");
    parse(&p, &read(&p)?, out)?;
    // IPv6 may be disabled; its absence is not a failure.
    let p6 = opts.proc_path.join("net/sockstat6");
    if let Ok(t) = std::fs::read_to_string(&p6) {
        parse(&p6, &t, out)?;
    }
    Ok(())
}
