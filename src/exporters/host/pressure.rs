//! `/proc/pressure/*`: pressure stall totals (microseconds in the kernel,
//! seconds here). `some` is "waiting", `full` is "stalled"; like
//! node_exporter 1.5 only `some` is exported for CPU.

use super::{num, parse_err, read, HostError, HostOptions, Out};

pub(crate) fn collect(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    for res in ["cpu", "io", "memory"] {
        let p = opts.proc_path.join("pressure").join(res);
        let text = read(&p)?;
        for (i, line) in text.lines().enumerate() {
            let mut f = line.split_whitespace();
            let kind = match f.next() {
                Some("some") => "waiting",
                Some("full") if res != "cpu" => "stalled",
                _ => continue,
            };
            let Some(total) = f.find_map(|kv| kv.strip_prefix("total=")) else {
                return Err(parse_err(&p, i + 1, "missing total="));
            };
            let v = num(&p, i + 1, "total", total)? / 1e6;
            let help = format!("Total time in seconds that processes have {kind} for {res}.");
            out.counter(
                &format!("node_pressure_{res}_{kind}_seconds"),
                &help,
                &[],
                v,
            );
        }
    }
    Ok(())
}
