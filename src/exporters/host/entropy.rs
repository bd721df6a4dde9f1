//! `/proc/sys/kernel/random`: available entropy and pool size.

use super::{num, read, HostError, HostOptions, Out};

pub(crate) fn collect(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let dir = opts.proc_path.join("sys/kernel/random");
    let p = dir.join("entropy_avail");
    let v = num(&p, 1, "entropy_avail", &read(&p)?)?;
    out.gauge(
        "node_entropy_available_bits",
        "Bits of available entropy.",
        &[],
        v,
    );
    let p = dir.join("poolsize");
    let v = num(&p, 1, "poolsize", &read(&p)?)?;
    out.gauge(
        "node_entropy_pool_size_bits",
        "Bits of entropy pool.",
        &[],
        v,
    );
    Ok(())
}
