//! UDP socket queue totals from `/proc/net/udp{,6}` (collector
//! `udp_queues`): the sum of every socket's `tx_queue:rx_queue` column.

use super::{parse_err, read, HostError, HostOptions, Out};

pub(crate) fn collect(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    for (file, ip) in [("net/udp", "v4"), ("net/udp6", "v6")] {
        let p = opts.proc_path.join(file);
        let text = match read(&p) {
            Ok(t) => t,
            // No IPv6 stack: skip that half, as node_exporter does.
            Err(_) if ip == "v6" => continue,
            Err(e) => return Err(e),
        };
        let (mut tx, mut rx) = (0u64, 0u64);
        for (i, line) in text.lines().enumerate().skip(1) {
            let Some(q) = line.split_whitespace().nth(4) else {
                return Err(parse_err(&p, i + 1, "missing tx_queue:rx_queue column"));
            };
            let hex = |s: &str| {
                u64::from_str_radix(s, 16)
                    .map_err(|_| parse_err(&p, i + 1, format!("queue not hex: {q:?}")))
            };
            let Some((t, r)) = q.split_once(':') else {
                return Err(parse_err(
                    &p,
                    i + 1,
                    format!("queue column without ':': {q:?}"),
                ));
            };
            tx = tx.saturating_add(hex(t)?);
            rx = rx.saturating_add(hex(r)?);
        }
        for (queue, v) in [("rx", rx), ("tx", tx)] {
            out.gauge(
                "node_udp_queues",
                "Number of allocated memory in the kernel for UDP datagrams in bytes.",
                &[("ip", ip), ("queue", queue)],
                v as f64,
            );
        }
    }
    Ok(())
}
