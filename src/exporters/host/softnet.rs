//! `/proc/net/softnet_stat`: per-CPU packet processing (hex columns:
//! processed, dropped, time_squeeze). The `cpu` label is the line index,
//! as in node_exporter 1.5.

use super::{parse_err, read, HostError, HostOptions, Out};

pub(crate) fn collect(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let p = opts.proc_path.join("net/softnet_stat");
    let text = read(&p)?;
    for (i, line) in text.lines().enumerate() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let cpu = i.to_string();
        for (idx, name, help) in [
            (0, "node_softnet_processed", "Number of processed packets."),
            (1, "node_softnet_dropped", "Number of dropped packets."),
            (
                2,
                "node_softnet_times_squeezed",
                "Number of times processing packets ran out of quota.",
            ),
        ] {
            let Some(s) = f.get(idx) else {
                return Err(parse_err(&p, i + 1, format!("missing column {}", idx + 1)));
            };
            let v = u64::from_str_radix(s, 16)
                .map_err(|_| parse_err(&p, i + 1, format!("column {}: not hex: {s:?}", idx + 1)))?;
            out.counter(name, help, &[("cpu", &cpu)], v as f64);
        }
    }
    Ok(())
}
