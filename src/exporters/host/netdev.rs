//! `/proc/net/dev`: per-interface receive/transmit counters.

use super::{num, parse_err, read, HostError, HostOptions, Out};

const RX: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "frame",
    "compressed",
    "multicast",
];
const TX: [&str; 8] = [
    "bytes",
    "packets",
    "errs",
    "drop",
    "fifo",
    "colls",
    "carrier",
    "compressed",
];

pub(crate) fn collect(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let p = opts.proc_path.join("net/dev");
    let text = read(&p)?;
    // Two header lines, then `  dev: rx... tx...`.
    for (i, line) in text.lines().enumerate().skip(2) {
        let Some((dev, rest)) = line.split_once(':') else {
            return Err(parse_err(&p, i + 1, "missing ':'"));
        };
        let dev = dev.trim();
        let vals: Vec<&str> = rest.split_whitespace().collect();
        if vals.len() < 16 {
            return Err(parse_err(
                &p,
                i + 1,
                format!("{dev}: expected 16 fields, got {}", vals.len()),
            ));
        }
        for (dir, names, off) in [("receive", RX, 0), ("transmit", TX, 8)] {
            for (j, n) in names.iter().enumerate() {
                let Some(s) = vals.get(off + j) else { continue };
                let v = num(&p, i + 1, n, s)?;
                let name = format!("node_network_{dir}_{n}");
                out.counter(
                    &name,
                    &format!("Network device statistic {dir}_{n}."),
                    &[("device", dev)],
                    v,
                );
            }
        }
    }
    Ok(())
}
