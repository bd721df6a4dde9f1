//! Mounted file systems from `/proc/1/mounts` (falling back to
//! `/proc/mounts`), sized with `statvfs(3)`, with node_exporter 1.5's
//! default excluded mount points and file-system types.
//!
//! `statvfs` on a hung network mount blocks forever. As node_exporter
//! (`--collector.filesystem.mount-timeout`), the calls run on a worker
//! thread and the collection waits at most `mount_timeout` for each: a
//! mount that does not answer reports `node_filesystem_device_error 1`,
//! and stays "stuck" (skipped without a new call) until its blocked call
//! finally returns, so hung threads never pile up.

use super::{read, HostError, HostOptions, Out};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

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

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Stat {
    size: f64,
    free: f64,
    avail: f64,
    files: f64,
    files_free: f64,
}

/// Mount points whose `statvfs` call timed out and has not returned yet.
static STUCK: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);

fn stuck_contains(p: &Path) -> bool {
    STUCK.lock().as_ref().is_some_and(|s| s.contains(p))
}

/// Stats every path, each bounded by `timeout`: `None` for a failed call,
/// a timed-out one, or a path still stuck from an earlier collection.
/// One worker thread serves the list; when it hangs on a path, that path
/// is left to it and a fresh worker takes the rest.
pub(crate) fn stat_all(
    paths: &[PathBuf],
    timeout: Duration,
    stat: fn(&Path) -> Option<Stat>,
) -> Vec<Option<Stat>> {
    let mut out = vec![None; paths.len()];
    let mut next = 0;
    while next < paths.len() {
        let todo: Vec<(usize, PathBuf, Arc<AtomicBool>)> = paths
            .iter()
            .enumerate()
            .skip(next)
            .filter(|(_, p)| !stuck_contains(p))
            .map(|(i, p)| (i, p.clone(), Arc::new(AtomicBool::new(false))))
            .collect();
        if todo.is_empty() {
            break;
        }
        let watch: Vec<(usize, Arc<AtomicBool>)> =
            todo.iter().map(|(i, _, d)| (*i, d.clone())).collect();
        let (tx, rx) = mpsc::channel::<(usize, Option<Stat>)>();
        let spawned = std::thread::Builder::new()
            .name("klaxon-statfs".into())
            .spawn(move || {
                for (i, p, done) in todo {
                    let r = stat(&p);
                    {
                        // Under the lock the collector uses to mark a
                        // timeout, so "done" and "stuck" never race.
                        let mut g = STUCK.lock();
                        done.store(true, Ordering::Release);
                        if let Some(set) = g.as_mut() {
                            set.remove(&p);
                        }
                    }
                    if tx.send((i, r)).is_err() {
                        return;
                    }
                }
            });
        if spawned.is_err() {
            tracing::debug!("statfs worker thread could not be started");
            break;
        }
        next = paths.len();
        for (i, done) in watch {
            match rx.recv_timeout(timeout) {
                Ok((j, r)) => {
                    if let Some(slot) = out.get_mut(j) {
                        *slot = r;
                    }
                }
                Err(_) => {
                    if let Some(p) = paths.get(i) {
                        let mut g = STUCK.lock();
                        if !done.load(Ordering::Acquire) {
                            g.get_or_insert_with(HashSet::new).insert(p.clone());
                        }
                        tracing::warn!(mountpoint = %p.display(), ?timeout,
                            "statfs timed out; mount marked as stuck");
                    }
                    // The worker is blocked on `i`; go on after it.
                    next = i + 1;
                    break;
                }
            }
        }
    }
    out
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
    let mounts = parse_mounts(&text);
    let paths: Vec<PathBuf> = mounts
        .iter()
        .map(|m| opts.rootfs.join(m.mountpoint.trim_start_matches('/')))
        .collect();
    let stats = stat_all(&paths, opts.mount_timeout, statvfs);
    for (m, st) in mounts.iter().zip(stats) {
        let labels = [
            ("device", m.device.as_str()),
            ("fstype", m.fstype.as_str()),
            ("mountpoint", m.mountpoint.as_str()),
        ];
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

    fn fake_stat(p: &Path) -> Option<Stat> {
        let name = p.to_string_lossy();
        if name.contains("hung") {
            std::thread::sleep(Duration::from_millis(600));
        }
        if name.contains("broken") {
            return None;
        }
        Some(Stat {
            size: name.len() as f64,
            free: 0.0,
            avail: 0.0,
            files: 0.0,
            files_free: 0.0,
        })
    }

    #[test]
    fn a_hung_mount_times_out_alone_and_stays_stuck_until_it_returns() {
        let paths: Vec<PathBuf> = ["/t1/a", "/t1/hung", "/t1/bb", "/t1/broken", "/t1/ccc"]
            .iter()
            .map(PathBuf::from)
            .collect();
        let t = std::time::Instant::now();
        let r = stat_all(&paths, Duration::from_millis(100), fake_stat);
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "{:?}",
            t.elapsed()
        );
        let sizes: Vec<Option<f64>> = r.iter().map(|s| s.map(|s| s.size)).collect();
        assert_eq!(sizes, [Some(5.0), None, Some(6.0), None, Some(7.0)]);
        // Still blocked: skipped at once, no second thread on it.
        assert!(stuck_contains(Path::new("/t1/hung")));
        let t = std::time::Instant::now();
        let r = stat_all(&paths[1..2], Duration::from_secs(5), fake_stat);
        assert_eq!(r, [None]);
        assert!(t.elapsed() < Duration::from_millis(50));
        // Once the call returns, the mount is tried again.
        std::thread::sleep(Duration::from_millis(700));
        assert!(!stuck_contains(Path::new("/t1/hung")));
        let r = stat_all(&paths[1..2], Duration::from_secs(5), fake_stat);
        assert_eq!(r.first().copied().flatten().map(|s| s.size), Some(8.0));
    }
}
