//! Kernel identity via `uname(2)` (collector `uname`) and the distribution
//! from os-release (collector `os`).

use super::{parse_err, HostError, HostOptions, Out};
use std::path::Path;

fn field(b: &[libc::c_char]) -> String {
    let bytes: Vec<u8> = b
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub(crate) fn collect_uname(_opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    // SAFETY: uname fills the zeroed struct we own; fields are NUL-terminated
    // arrays, read only up to their length.
    let u = unsafe {
        let mut u: libc::utsname = std::mem::zeroed();
        if libc::uname(&mut u) != 0 {
            return Err(HostError::Io {
                path: "uname(2)".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        u
    };
    out.gauge(
        "node_uname_info",
        "Labeled system information as provided by the uname system call.",
        &[
            ("domainname", &field(&u.domainname)),
            ("machine", &field(&u.machine)),
            ("nodename", &field(&u.nodename)),
            ("release", &field(&u.release)),
            ("sysname", &field(&u.sysname)),
            ("version", &field(&u.version)),
        ],
        1.0,
    );
    Ok(())
}

/// `KEY=value` lines, value optionally quoted with shell-style escapes.
pub(crate) fn parse_os_release(
    path: &Path,
    text: &str,
) -> Result<Vec<(String, String)>, HostError> {
    let mut kv = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            return Err(parse_err(path, i + 1, "missing '='"));
        };
        let v = v.trim();
        let v = if v.len() >= 2
            && (v.starts_with('"') && v.ends_with('"') || v.starts_with('\'') && v.ends_with('\''))
        {
            let inner = v.get(1..v.len() - 1).unwrap_or_default();
            let mut s = String::with_capacity(inner.len());
            let mut esc = false;
            for c in inner.chars() {
                if esc || c != '\\' {
                    s.push(c);
                    esc = false;
                } else {
                    esc = true;
                }
            }
            s
        } else {
            v.to_string()
        };
        kv.push((k.to_string(), v));
    }
    Ok(kv)
}

pub(crate) fn collect_os(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let a = opts.rootfs.join("etc/os-release");
    let b = opts.rootfs.join("usr/lib/os-release");
    let (path, text) = match std::fs::read_to_string(&a) {
        Ok(t) => (a, t),
        Err(_) => {
            let t = super::read(&b)?;
            (b, t)
        }
    };
    let kv = parse_os_release(&path, &text)?;
    let get = |k: &str| {
        kv.iter()
            .rev()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    };
    out.gauge(
        "node_os_info",
        "A metric with a constant '1' value labeled by build_id, id, id_like, image_id, image_version, name, pretty_name, variant, variant_id, version, version_codename, version_id.",
        &[
            ("build_id", get("BUILD_ID")),
            ("id", get("ID")),
            ("id_like", get("ID_LIKE")),
            ("image_id", get("IMAGE_ID")),
            ("image_version", get("IMAGE_VERSION")),
            ("name", get("NAME")),
            ("pretty_name", get("PRETTY_NAME")),
            ("variant", get("VARIANT")),
            ("variant_id", get("VARIANT_ID")),
            ("version", get("VERSION")),
            ("version_codename", get("VERSION_CODENAME")),
            ("version_id", get("VERSION_ID")),
        ],
        1.0,
    );
    // The numeric VERSION_ID ("12", "22.04"); distributions without one
    // (rolling releases) get no sample, as in node_exporter.
    if let Ok(v) = get("VERSION_ID").parse::<f64>() {
        out.gauge(
            "node_os_version",
            "Metric containing the major.minor part of the OS version.",
            &[
                ("id", get("ID")),
                ("id_like", get("ID_LIKE")),
                ("name", get("NAME")),
            ],
            v,
        );
    }
    Ok(())
}
