//! `/proc/loadavg`: the 1, 5 and 15 minute load averages.

use super::{num, parse_err, read, HostError, HostOptions, Out};

pub(crate) fn collect(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let path = opts.proc_path.join("loadavg");
    let text = read(&path)?;
    let f: Vec<&str> = text.split_whitespace().collect();
    for (idx, (name, help)) in [
        ("node_load1", "1m load average."),
        ("node_load5", "5m load average."),
        ("node_load15", "15m load average."),
    ]
    .into_iter()
    .enumerate()
    {
        let Some(s) = f.get(idx) else {
            return Err(parse_err(&path, 1, format!("missing field {}", idx + 1)));
        };
        out.gauge(name, help, &[], num(&path, 1, name, s)?);
    }
    Ok(())
}
