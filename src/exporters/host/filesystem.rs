//! Mounted file systems from `/proc/1/mounts` (falling back to
//! `/proc/mounts`), sized with `statvfs(3)`, with node_exporter 1.5's
//! default excluded mount points and file-system types.

use super::{read, HostError, HostOptions, Out};
use std::ffi::CString;
use std::path::Path;

/// `^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)`
fn mount_excluded(mp: &str) -> bool {
    let Some(rest) = mp.strip_prefix('/') else {
        return false;
    };
    let exact_or_below = |pre: &str| rest == pre || rest.starts_with(&format!("{pre}/"));
    if ["dev", "proc", "sys"].iter().any(|p| exact_or_below(p)) {
        return true;
    }
    // `.+` after the prefix: something must follow the slash.
    [
        "run/credentials/",
        "var/lib/docker/",
        "var/lib/containers/storage/",
    ]
    .iter()
    .any(|p| rest.strip_prefix(p).is_some_and(|r| !r.is_empty()))
}

const FS_TYPES_EXCLUDED: &[&str] = &[
    "autofs",
    "binfmt_misc",
    "bpf",
    "cgroup",
    "cgroup2",
    "configfs",
    "debugfs",
    "devpts",
    "devtmpfs",
    "fusectl",
    "hugetlbfs",
    "iso9660",
    "mqueue",
    "nsfs",
    "overlay",
    "proc",
    "procfs",
    "pstore",
    "rpc_pipefs",
    "securityfs",
    "selinuxfs",
    "squashfs",
    "sysfs",
    "tracefs",
];

/// Undoes the kernel's octal escaping of space, tab, newline and backslash
/// in /proc/mounts fields.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' {
            if let Some(oct) = b.get(i + 1..i + 4) {
                if oct.iter().all(|c| (b'0'..=b'7').contains(c)) {
                    let v = oct.iter().fold(0u32, |a, c| a * 8 + u32::from(c - b'0'));
                    if let Ok(c) = u8::try_from(v) {
                        out.push(c);
                        i += 4;
                        continue;
                    }
                }
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One mount as the metrics label it.
pub(crate) struct Mount {
    pub device: String,
    pub mountpoint: String,
    pub fstype: String,
    pub readonly: bool,
}

pub(crate) fn parse_mounts(text: &str) -> Vec<Mount> {
    let mut seen = std::collections::HashSet::new();
    let mut v = Vec::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let (Some(dev), Some(mp), Some(fstype), Some(opts)) =
            (f.first(), f.get(1), f.get(2), f.get(3))
        else {
            continue;
        };
        let mountpoint = unescape(mp);
        if mount_excluded(&mountpoint) || FS_TYPES_EXCLUDED.contains(fstype) {
            continue;
        }
        // The same mount listed twice (bind mounts, namespaces) would give
        // duplicate series.
        if !seen.insert((dev.to_string(), mountpoint.clone(), fstype.to_string())) {
            continue;
        }
        v.push(Mount {
            device: unescape(dev),
            mountpoint,
            fstype: fstype.to_string(),
            readonly: opts.split(',').any(|o| o == "ro"),
        });
    }
    v
}

struct Stat {
    size: f64,
    free: f64,
    avail: f64,
    files: f64,
    files_free: f64,
}

fn statvfs(path: &Path) -> Option<Stat> {
    use std::os::unix::ffi::OsStrExt;
    let c = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `s` a zeroed struct we own.
    let s = unsafe {
        let mut s: libc::statvfs = std::mem::zeroed();
        if libc::statvfs(c.as_ptr(), &mut s) != 0 {
            return None;
        }
        s
    };
    // node_exporter multiplies by the block size (f_bsize), not f_frsize.
    let bs = s.f_bsize as f64;
    Some(Stat {
        size: s.f_blocks as f64 * bs,
        free: s.f_bfree as f64 * bs,
        avail: s.f_bavail as f64 * bs,
        files: s.f_files as f64,
        files_free: s.f_ffree as f64,
    })
}

pub(crate) fn collect(opts: &HostOptions, out: &mut Out) -> Result<(), HostError> {
    let p1 = opts.proc_path.join("1/mounts");
    let text = match std::fs::read_to_string(&p1) {
        Ok(t) => t,
        Err(_) => read(&opts.proc_path.join("mounts"))?,
    };
    for m in parse_mounts(&text) {
        let labels = [
            ("device", m.device.as_str()),
            ("fstype", m.fstype.as_str()),
            ("mountpoint", m.mountpoint.as_str()),
        ];
        let rel = m.mountpoint.trim_start_matches('/');
        let st = statvfs(&opts.rootfs.join(rel));
        out.gauge(
            "node_filesystem_device_error",
            "Whether an error occurred while getting statistics for the given device.",
            &labels,
            if st.is_some() { 0.0 } else { 1.0 },
        );
        let Some(st) = st else { continue };
        out.gauge(
            "node_filesystem_readonly",
            "Filesystem read-only status.",
            &labels,
            if m.readonly { 1.0 } else { 0.0 },
        );
        out.gauge(
            "node_filesystem_size_bytes",
            "Filesystem size in bytes.",
            &labels,
            st.size,
        );
        out.gauge(
            "node_filesystem_free_bytes",
            "Filesystem free space in bytes.",
            &labels,
            st.free,
        );
        out.gauge(
            "node_filesystem_avail_bytes",
            "Filesystem space available to non-root users in bytes.",
            &labels,
            st.avail,
        );
        out.gauge(
            "node_filesystem_files",
            "Filesystem total file nodes.",
            &labels,
            st.files,
        );
        out.gauge(
            "node_filesystem_files_free",
            "Filesystem total free file nodes.",
            &labels,
            st.files_free,
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_exclusions_and_unescape() {
        let m = parse_mounts(
            "proc /proc proc rw 0 0\n/dev/vda / ext4 rw,relatime 0 0\ntmpfs /dev/shm tmpfs rw 0 0\n\
             /dev/sdb /mnt/my\\040disk xfs ro,noatime 0 0\n/dev/vda / ext4 rw 0 0\n\
             overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0\n/dev/sdc /devices ext4 rw 0 0\n",
        );
        let mps: Vec<&str> = m.iter().map(|m| m.mountpoint.as_str()).collect();
        assert_eq!(mps, ["/", "/mnt/my disk", "/devices"]);
        assert!(m[1].readonly && !m[0].readonly);
        assert!(mount_excluded("/var/lib/docker/x") && !mount_excluded("/var/lib/docker"));
    }
}
