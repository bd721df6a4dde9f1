//! `/proc/meminfo`: every field, as node_exporter exports them
//! (`node_memory_<Field>_bytes` for kB fields, `(anon)` → `_anon`).

use super::{num, parse_err, read, HostError, HostOptions, Out};

pub(crate) fn collect(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let path = opts.proc_path.join("meminfo");
    let text = read(&path)?;
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((key, rest)) = line.split_once(':') else {
            return Err(parse_err(&path, i + 1, "missing ':'"));
        };
        let mut f = rest.split_whitespace();
        let Some(v) = f.next() else {
            return Err(parse_err(&path, i + 1, format!("{key}: missing value")));
        };
        let mut v = num(&path, i + 1, key, v)?;
        let key = key.replace('(', "_").replace(')', "");
        let name = if f.next() == Some("kB") {
            v *= 1024.0;
            format!("node_memory_{key}_bytes")
        } else {
            format!("node_memory_{key}")
        };
        out.gauge(&name, &format!("Memory information field {key}."), &[], v);
    }
    Ok(())
}

/// This machine's memory (`MemTotal` of /proc/meminfo), in bytes.
pub fn total_memory() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let l = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    l.split_whitespace()
        .nth(1)?
        .parse::<f64>()
        .ok()
        .map(|k| k * 1024.0)
}
