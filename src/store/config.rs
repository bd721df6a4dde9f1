//! The store's part of `storage:`: `backend: sqlite|postgres`, `dsn` or
//! `dsn_file`, and `ha: {lease, cluster}` for the PostgreSQL leader
//! election. Parsed here with the rest of `storage:` (where the head and
//! the store live, retention, block range).

use crate::config::common::{opt_duration, opt_size};
use crate::config::errors::{Pos, Sink};
use crate::config::raw::S;
use serde::de::IgnoredAny;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// klaxon-only `storage:` section: where the head is persisted and for how
/// long samples are kept.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageConfig {
    /// As written (relative paths are relative to the working directory,
    /// like Prometheus' `--storage.tsdb.path`).
    pub path: PathBuf,
    pub retention: Duration,
    /// Size limit over blocks, WAL and head chunks (`None`: no limit).
    pub retention_size: Option<u64>,
    /// The head's block range: the head is compacted into blocks of this
    /// length (Prometheus' 2 h default).
    pub min_block_duration: Duration,
    /// Write a memory snapshot of the head on a clean stop and start from
    /// it (Prometheus' `memory-snapshot-on-shutdown`; on by default here).
    pub memory_snapshot_on_shutdown: bool,
    /// Backend (sqlite or postgres) and HA settings.
    pub db: DbConfig,
    /// `exemplars.max_exemplars` (Prometheus' `--storage.tsdb.max-exemplars`):
    /// size of the exemplar buffer; 0 disables exemplar storage.
    pub max_exemplars: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            path: PathBuf::from("./data"),
            retention: Duration::from_secs(15 * 24 * 3600),
            retention_size: None,
            min_block_duration: Duration::from_secs(2 * 3600),
            memory_snapshot_on_shutdown: true,
            db: Default::default(),
            max_exemplars: crate::tsdb::exemplars::DEFAULT_MAX_EXEMPLARS,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStorage {
    pub path: Option<String>,
    pub retention: Option<S<String>>,
    /// `--storage.tsdb.retention.size`: blocks + WAL + head chunks.
    pub retention_size: Option<S<String>>,
    /// `--storage.tsdb.min-block-duration` (hidden there too; tests use
    /// short blocks).
    pub min_block_duration: Option<S<String>>,
    /// `--enable-feature=memory-snapshot-on-shutdown`, as a setting.
    pub memory_snapshot_on_shutdown: Option<bool>,
    /// Prometheus' own `storage.tsdb`: accepted so an existing file loads,
    /// ignored with a warning.
    pub tsdb: Option<S<IgnoredAny>>,
    /// Prometheus' `storage.exemplars`.
    pub exemplars: Option<S<RawExemplars>>,
    /// The store backend (`store::config`).
    pub backend: Option<S<String>>,
    pub dsn: Option<S<String>>,
    pub dsn_file: Option<S<String>>,
    pub ha: Option<S<RawHa>>,
}

/// Resolves `storage:` (absent: the defaults); the store's own keys go to
/// [`resolve`].
pub(crate) fn resolve_storage(
    raw: Option<RawStorage>,
    dir: Option<&Path>,
    sink: &mut Sink,
) -> StorageConfig {
    let Some(s) = raw else {
        return StorageConfig::default();
    };
    if let Some(v) = &s.tsdb {
        tracing::warn!(
            file = sink.file(),
            line = Pos::of(v).line,
            "storage.tsdb is Prometheus-specific and ignored by klaxon"
        );
    }
    let d = StorageConfig::default();
    StorageConfig {
        path: s
            .path
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .unwrap_or(d.path),
        retention: opt_duration(&s.retention, sink).unwrap_or(d.retention),
        retention_size: opt_size(&s.retention_size, sink).filter(|n| *n > 0),
        min_block_duration: opt_duration(&s.min_block_duration, sink)
            .unwrap_or(d.min_block_duration),
        memory_snapshot_on_shutdown: s
            .memory_snapshot_on_shutdown
            .unwrap_or(d.memory_snapshot_on_shutdown),
        // Negative sizes disable the store, as in Prometheus.
        max_exemplars: s
            .exemplars
            .as_ref()
            .and_then(|e| e.value.max_exemplars)
            .map(|n| n.max(0) as usize)
            .unwrap_or(d.max_exemplars),
        db: resolve(
            RawDb {
                backend: &s.backend,
                dsn: &s.dsn,
                dsn_file: &s.dsn_file,
                ha: &s.ha,
            },
            dir.unwrap_or(Path::new(".")),
            sink,
        ),
    }
}

/// `storage.exemplars` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExemplars {
    pub max_exemplars: Option<i64>,
}

/// `storage.ha` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawHa {
    pub lease: Option<S<String>>,
    pub cluster: Option<S<String>>,
}

/// The raw fields `storage:` gains for the store.
#[derive(Debug)]
pub(crate) struct RawDb<'a> {
    pub backend: &'a Option<S<String>>,
    pub dsn: &'a Option<S<String>>,
    pub dsn_file: &'a Option<S<String>>,
    pub ha: &'a Option<S<RawHa>>,
}

/// A connection string. `Debug` never shows it: it may hold a password.
#[derive(Clone, PartialEq)]
pub enum Dsn {
    Inline(String),
    /// Read at open (relative paths are relative to the config file).
    File(PathBuf),
}

impl std::fmt::Debug for Dsn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Dsn::Inline(_) => f.write_str("Dsn(<secret>)"),
            Dsn::File(p) => write!(f, "DsnFile({})", p.display()),
        }
    }
}

impl Dsn {
    /// The connection string (from the file for `dsn_file`, trimmed).
    pub fn read(&self) -> Result<String, super::StoreError> {
        match self {
            Dsn::Inline(s) => Ok(s.clone()),
            Dsn::File(p) => std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .map_err(|e| {
                    super::StoreError::Config(format!("storage.dsn_file {}: {e}", p.display()))
                }),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub enum Backend {
    #[default]
    Sqlite,
    Postgres(Dsn),
}

/// The resolved store settings.
#[derive(Clone, Debug, PartialEq)]
pub struct DbConfig {
    pub backend: Backend,
    /// Leader lease: renewed (checked) every third of it; a follower takes
    /// over within two leases of the leader's death.
    pub lease: Duration,
    /// Names the election lock: pairs sharing one database need distinct
    /// names.
    pub cluster: String,
}

impl Default for DbConfig {
    fn default() -> Self {
        DbConfig {
            backend: Backend::Sqlite,
            lease: Duration::from_secs(15),
            cluster: "klaxon".into(),
        }
    }
}

/// Resolves the store fields of `storage:`, reporting errors at their
/// position.
pub(crate) fn resolve(raw: RawDb<'_>, dir: &Path, sink: &mut Sink) -> DbConfig {
    let mut out = DbConfig::default();
    if let Some(h) = raw.ha {
        if let Some(d) = crate::config::common::opt_duration(&h.value.lease, sink) {
            if d < Duration::from_secs(1) {
                if let Some(l) = &h.value.lease {
                    sink.push(
                        Pos::of(l),
                        "storage.ha.lease must be at least 1s".to_string(),
                    );
                }
            } else {
                out.lease = d;
            }
        }
        if let Some(c) = &h.value.cluster {
            if c.value.is_empty() {
                sink.push(
                    Pos::of(c),
                    "storage.ha.cluster must not be empty".to_string(),
                );
            } else {
                out.cluster = c.value.clone();
            }
        }
    }
    let backend = raw.backend.as_ref();
    match backend.map(|b| b.value.as_str()) {
        None | Some("sqlite") => {
            for (name, v) in [("dsn", raw.dsn), ("dsn_file", raw.dsn_file)] {
                if let Some(v) = v {
                    sink.push(
                        Pos::of(v),
                        format!("storage.{name} needs storage.backend: postgres"),
                    );
                }
            }
        }
        Some("postgres") => {
            let dsn = match (raw.dsn, raw.dsn_file) {
                (Some(d), None) if !d.value.trim().is_empty() => {
                    // Checked now so a typo fails `check config`; the error
                    // never echoes the string.
                    if let Err(e) = crate::net::pg_dsn::parse(&d.value) {
                        sink.push(Pos::of(d), format!("storage.dsn: {e}"));
                    }
                    Some(Dsn::Inline(d.value.clone()))
                }
                (None, Some(f)) if !f.value.is_empty() => Some(Dsn::File(dir.join(&f.value))),
                (Some(d), Some(_)) => {
                    sink.push(
                        Pos::of(d),
                        "storage: dsn and dsn_file are mutually exclusive".to_string(),
                    );
                    None
                }
                _ => {
                    if let Some(b) = backend {
                        sink.push(
                            Pos::of(b),
                            "storage.backend postgres needs storage.dsn or storage.dsn_file"
                                .to_string(),
                        );
                    }
                    None
                }
            };
            if let Some(d) = dsn {
                out.backend = Backend::Postgres(d);
            }
        }
        Some(other) => {
            if let Some(b) = backend {
                sink.push(
                    Pos::of(b),
                    format!("storage.backend: unknown backend {other:?} (sqlite or postgres)"),
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// A `storage:` section resolved alone, as the file loader does.
    fn load(storage: &str) -> Result<super::StorageConfig, String> {
        #[derive(Default, serde::Deserialize)]
        struct File {
            storage: Option<super::RawStorage>,
        }
        let f: File = crate::config::parse_yaml(&format!("storage:\n{storage}"), "k.yml")
            .map_err(|e| e.to_string())?;
        let mut sink = crate::config::errors::Sink::new("k.yml");
        let c = super::resolve_storage(f.storage, None, &mut sink);
        sink.into_result(c).map_err(|e| e.to_string())
    }

    #[test]
    fn postgres_backend_with_ha() {
        let c = load(
            "  backend: postgres\n  dsn: postgresql://u:pw@127.0.0.1:5432/k\n  ha:\n    lease: 9s\n    cluster: pair1\n",
        )
        .unwrap();
        assert!(matches!(c.db.backend, super::Backend::Postgres(_)));
        assert_eq!(c.db.lease, std::time::Duration::from_secs(9));
        assert_eq!(c.db.cluster, "pair1");
        assert!(!format!("{c:?}").contains("pw@"));
    }

    #[test]
    fn errors_name_the_line() {
        let e = load("  backend: mysql\n").unwrap_err();
        assert!(
            e.contains("k.yml:2:") && e.contains("unknown backend"),
            "{e}"
        );
        let e = load("  backend: postgres\n").unwrap_err();
        assert!(e.contains("needs storage.dsn"), "{e}");
        let e = load("  dsn: postgresql://h/db\n").unwrap_err();
        assert!(e.contains("needs storage.backend: postgres"), "{e}");
        let e = load("  backend: postgres\n  dsn: 'postgresql://u:hunter2@h:x/db'\n").unwrap_err();
        assert!(e.contains("storage.dsn") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn the_dsn_is_redacted_in_the_served_config() {
        let y = "storage:\n  backend: postgres\n  dsn: postgresql://u:hunter2@h/db\n";
        let r = crate::config::redact_secrets(y);
        assert!(!r.contains("hunter2"), "{r}");
        assert!(r.contains("  dsn: <secret>\n"), "{r}");
        assert!(r.contains("backend: postgres"), "{r}");
    }

    #[test]
    fn default_is_sqlite() {
        let c = load("  path: /tmp/x\n").unwrap();
        assert_eq!(c.db, super::DbConfig::default());
    }
}
