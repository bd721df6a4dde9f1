//! `/proc/sys/fs/file-nr`: allocated and maximum file handles.

use super::{num, parse_err, read, HostError, HostOptions, Out};

pub(crate) fn collect(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let p = opts.proc_path.join("sys/fs/file-nr");
    let text = read(&p)?;
    let f: Vec<&str> = text.split_whitespace().collect();
    // Fields: allocated, allocated-but-unused (always 0 since 2.6), maximum.
    let (Some(alloc), Some(max)) = (f.first(), f.get(2)) else {
        return Err(parse_err(&p, 1, "expected 3 fields"));
    };
    out.gauge(
        "node_filefd_allocated",
        "File descriptor statistics: allocated.",
        &[],
        num(&p, 1, "allocated", alloc)?,
    );
    out.gauge(
        "node_filefd_maximum",
        "File descriptor statistics: maximum.",
        &[],
        num(&p, 1, "maximum", max)?,
    );
    Ok(())
}
