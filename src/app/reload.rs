//! Configuration reload (SIGHUP, `POST /-/reload`, the signed `reload`
//! command): re-read the config file and the rule files, and swap them in
//! only when all of them are valid, so a typo never takes down what is
//! running.
//!
//! A reload is a list of [`ReloadStage`]s, in the order they apply. Each
//! first *prepares* the new config (reads files, builds clients, parses
//! templates: everything that can fail) without touching what runs; only
//! when every stage has prepared does each *apply*, which cannot fail. So a
//! failure anywhere changes nothing, unlike Prometheus' reload, which may
//! leave some managers on the new config and others on the old one.

use crate::metrics::{Gauge, Registry};
use crate::settings::Config;
use std::path::PathBuf;
use std::sync::Arc;

/// Why a reload was refused; the old configuration keeps running.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The config file does not load; every error as `FILE:LINE:COL: message`.
    #[error("loading config {path}: {errors}")]
    Config { path: String, errors: String },
    /// A rule file does not load, one `FILE:LINE:COL: message` per line.
    #[error("loading rule files: {}", .0.join("; "))]
    Rules(crate::rules::manager::LoadErrors),
    /// The notify config (section or `--notify-config` file) does not load.
    #[error("loading notify config: {0}")]
    Notify(#[source] crate::app::BoxError),
    /// An `alerting.alertmanagers` entry cannot get an HTTP client.
    #[error("alerting: {0}")]
    Alerting(#[source] crate::app::BoxError),
    /// An autoheal rule cannot get its HTTP client.
    #[error("{0}")]
    Autoheal(#[source] crate::app::BoxError),
}

pub use crate::ops::ReloadStatus;

/// A stage's new configuration, checked and ready: applying it cannot
/// fail.
pub struct Prepared(Box<dyn FnOnce() + Send>);

impl Prepared {
    pub fn new(apply: impl FnOnce() + Send + 'static) -> Prepared {
        Prepared(Box::new(apply))
    }

    /// Swaps the prepared configuration in.
    pub fn apply(self) {
        (self.0)()
    }
}

/// A running stage that takes a new configuration on reload.
pub trait ReloadStage: Send + Sync {
    /// Everything that can fail, done on `cfg` without changing what runs.
    fn prepare(&self, cfg: &Config) -> Result<Prepared, ReloadError>;
}

/// Where a reload reads the configuration from.
#[derive(Clone, Debug)]
pub enum ConfigSource {
    /// The config file, read again.
    File(PathBuf),
    /// The embedded default, which reloads as itself (its self-scrape
    /// names the listen address and the route prefix).
    Embedded {
        listen: String,
        route_prefix: String,
    },
}

impl ConfigSource {
    /// Where `cfg` came from, for a server on `listen` under `route_prefix`.
    pub fn of(cfg: &Config, listen: &str, route_prefix: &str) -> ConfigSource {
        match (&cfg.source_path, cfg.embedded) {
            (Some(p), false) => ConfigSource::File(p.clone()),
            _ => ConfigSource::Embedded {
                listen: listen.to_string(),
                route_prefix: route_prefix.to_string(),
            },
        }
    }

    fn load(&self) -> Result<Config, ReloadError> {
        match self {
            ConfigSource::File(p) => {
                crate::settings::load_file(p).map_err(|e| ReloadError::Config {
                    path: p.display().to_string(),
                    errors: e.to_string().trim_end().to_string(),
                })
            }
            ConfigSource::Embedded {
                listen,
                route_prefix,
            } => Ok(crate::settings::embedded_default_under(
                listen,
                route_prefix,
            )),
        }
    }
}

/// Runs reloads over the stages given at construction.
pub struct Reloader {
    source: ConfigSource,
    /// In the order they apply.
    stages: Vec<Box<dyn ReloadStage>>,
    success: Gauge,
    success_ts: Gauge,
    status: parking_lot::Mutex<ReloadStatus>,
    /// Reloads run one at a time.
    serial: parking_lot::Mutex<()>,
    /// The running config's text (`/api/v1/status/config`), replaced by
    /// each successful reload.
    running_yaml: parking_lot::RwLock<Arc<str>>,
}

impl Reloader {
    /// A reloader for the running `cfg` (read again from `source`) over
    /// `stages`, applied in that order.
    pub fn new(
        cfg: &Config,
        source: ConfigSource,
        stages: Vec<Box<dyn ReloadStage>>,
        registry: &Registry,
    ) -> Reloader {
        let success = registry.gauge(
            "klaxon_config_last_reload_successful",
            "Whether the last configuration reload attempt was successful.",
        );
        let success_ts = registry.gauge(
            "klaxon_config_last_reload_success_timestamp_seconds",
            "Timestamp of the last successful configuration reload.",
        );
        let now = crate::model::now_millis();
        success.set(1.0);
        success_ts.set(now as f64 / 1000.0);
        Reloader {
            source,
            stages,
            success,
            success_ts,
            status: parking_lot::Mutex::new(ReloadStatus {
                success: true,
                last_success_ms: now,
            }),
            serial: parking_lot::Mutex::new(()),
            running_yaml: parking_lot::RwLock::new(Arc::from(cfg.to_yaml())),
        }
    }

    /// The text of the configuration running now.
    pub fn running_yaml(&self) -> Arc<str> {
        self.running_yaml.read().clone()
    }

    pub fn status(&self) -> ReloadStatus {
        *self.status.lock()
    }

    /// Re-reads everything and applies it, or nothing. Blocking (file
    /// reads, waits for running rule evaluations): call it off the async
    /// workers.
    pub fn reload(&self) -> Result<(), ReloadError> {
        let _one = self.serial.lock();
        let r = self.try_reload();
        let mut st = self.status.lock();
        match &r {
            Ok(()) => {
                let now = crate::model::now_millis();
                *st = ReloadStatus {
                    success: true,
                    last_success_ms: now,
                };
                self.success.set(1.0);
                self.success_ts.set(now as f64 / 1000.0);
                tracing::info!("configuration reloaded");
            }
            Err(e) => {
                st.success = false;
                self.success.set(0.0);
                tracing::error!(error = %e, "configuration reload failed; keeping the running configuration");
            }
        }
        r
    }

    fn try_reload(&self) -> Result<(), ReloadError> {
        let cfg = self.source.load()?;
        let prepared = self
            .stages
            .iter()
            .map(|s| s.prepare(&cfg))
            .collect::<Result<Vec<_>, _>>()?;
        for p in prepared {
            p.apply();
        }
        *self.running_yaml.write() = Arc::from(cfg.to_yaml());
        Ok(())
    }
}

impl crate::ops::ConfigReload for Reloader {
    fn reload(&self) -> Result<(), crate::ops::HookError> {
        Reloader::reload(self).map_err(Into::into)
    }

    fn status(&self) -> ReloadStatus {
        Reloader::status(self)
    }

    fn running_yaml(&self) -> Arc<str> {
        Reloader::running_yaml(self)
    }
}

/// Rule groups: files read and validated, then swapped in.
pub struct RulesStage(pub Arc<crate::rules::manager::RuleManager>);

impl ReloadStage for RulesStage {
    fn prepare(&self, cfg: &Config) -> Result<Prepared, ReloadError> {
        let p = self.0.prepare_reload(cfg).map_err(ReloadError::Rules)?;
        let rules = self.0.clone();
        Ok(Prepared::new(move || rules.apply_reload(p)))
    }
}

/// Scrape pools: the config's jobs.
pub struct ScrapeStage(pub Arc<crate::scrape::manager::Manager>);

impl ReloadStage for ScrapeStage {
    fn prepare(&self, cfg: &Config) -> Result<Prepared, ReloadError> {
        let (m, jobs) = (self.0.clone(), cfg.scrape_configs.clone());
        Ok(Prepared::new(move || m.apply_config(&jobs)))
    }
}

/// The router and outbox: the reloaded config's `notify:` section or,
/// when the running one came from `--notify-config`, that file read again;
/// the receiver breakers of `autoheal:`.
pub struct NotifyStage(pub crate::notify::wiring::NotifyStage);

impl ReloadStage for NotifyStage {
    fn prepare(&self, cfg: &Config) -> Result<Prepared, ReloadError> {
        let stage = &self.0;
        let file = stage.dispatcher.config().source_file.clone();
        let notify = match (&cfg.notify, file) {
            (Some(_), Some(f)) => {
                return Err(ReloadError::Notify(
                    format!(
                        "--notify-config {} given while the config has a notify: section; use one",
                        f.display()
                    )
                    .into(),
                ))
            }
            (Some(n), None) => Some(n.clone()),
            (None, Some(f)) => Some(Arc::new(
                crate::notify::config::load_file(&f)
                    .map_err(|e| ReloadError::Notify(e.to_string().trim_end().into()))?,
            )),
            (None, None) => None,
        };
        let prepared = crate::notify::wiring::prepare(notify.as_ref())
            .map_err(|e| ReloadError::Notify(e.into()))?;
        let breaker = cfg
            .autoheal
            .as_ref()
            .and_then(|a| a.receiver_breaker.clone());
        let stage = stage.clone();
        Ok(Prepared::new(move || {
            stage.outbox.set_breaker(breaker);
            stage.apply(prepared);
        }))
    }
}

/// Auto-healing rules from `autoheal:` (each with its HTTP client).
pub struct AutohealStage(pub Arc<crate::ops::autoheal::engine::Engine>);

impl ReloadStage for AutohealStage {
    fn prepare(&self, cfg: &Config) -> Result<Prepared, ReloadError> {
        let rules = cfg.autoheal.clone().unwrap_or_default().rules;
        let clients = crate::ops::autoheal::engine::Engine::prepare(&rules)
            .map_err(|e| ReloadError::Autoheal(e.into()))?;
        let e = self.0.clone();
        Ok(Prepared::new(move || e.apply_config(rules, clients)))
    }
}

/// External Alertmanagers (`alerting:`).
pub struct AlertingStage(pub Arc<crate::notifier::Notifier>);

impl ReloadStage for AlertingStage {
    fn prepare(&self, cfg: &Config) -> Result<Prepared, ReloadError> {
        let p = crate::notifier::prepare(cfg).map_err(|e| ReloadError::Alerting(e.into()))?;
        let n = self.0.clone();
        Ok(Prepared::new(move || n.apply(p)))
    }
}

/// Remote-write queues: an entry that changed restarts. An entry that
/// cannot start is logged and skipped; the others, and every other stage,
/// are applied.
pub struct RemoteWriteStage(pub Arc<crate::remote::RemoteWrite>);

impl ReloadStage for RemoteWriteStage {
    fn prepare(&self, cfg: &Config) -> Result<Prepared, ReloadError> {
        let rw = self.0.clone();
        let (entries, labels) = (cfg.remote_write.clone(), cfg.global.external_labels.clone());
        Ok(Prepared::new(move || {
            rw.apply_config(&entries, &labels);
        }))
    }
}

/// The OTLP receiver's `otlp:` settings.
pub struct OtlpStage(pub Arc<crate::otlp::Receiver>);

impl ReloadStage for OtlpStage {
    fn prepare(&self, cfg: &Config) -> Result<Prepared, ReloadError> {
        let (recv, otlp) = (self.0.clone(), cfg.otlp.clone());
        Ok(Prepared::new(move || recv.set_config(otlp)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A stage that counts its applies, or refuses every config.
    struct Fake {
        applied: Arc<AtomicUsize>,
        fail: bool,
    }

    impl ReloadStage for Fake {
        fn prepare(&self, _: &Config) -> Result<Prepared, ReloadError> {
            if self.fail {
                return Err(ReloadError::Alerting("refused".into()));
            }
            let a = self.applied.clone();
            Ok(Prepared::new(move || {
                a.fetch_add(1, Ordering::SeqCst);
            }))
        }
    }

    fn reloader(fails: &[bool]) -> (Reloader, Vec<Arc<AtomicUsize>>) {
        let cfg = crate::settings::embedded_default_under("127.0.0.1:9470", "/");
        let counts: Vec<_> = fails
            .iter()
            .map(|_| Arc::new(AtomicUsize::new(0)))
            .collect();
        let stages = fails
            .iter()
            .zip(&counts)
            .map(|(&fail, c)| {
                Box::new(Fake {
                    applied: c.clone(),
                    fail,
                }) as Box<dyn ReloadStage>
            })
            .collect();
        let source = ConfigSource::of(&cfg, "127.0.0.1:9470", "/");
        (
            Reloader::new(&cfg, source, stages, &Registry::new()),
            counts,
        )
    }

    #[test]
    fn a_failing_later_stage_leaves_the_earlier_ones_unchanged() {
        let (r, counts) = reloader(&[false, false, true, false]);
        let before = r.status();
        let err = r.reload().expect_err("the third stage refuses");
        assert!(matches!(err, ReloadError::Alerting(_)), "{err}");
        let applied: Vec<usize> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        assert_eq!(
            applied,
            vec![0, 0, 0, 0],
            "nothing applies when one stage fails"
        );
        assert!(!r.status().success);
        assert_eq!(r.status().last_success_ms, before.last_success_ms);
    }

    #[test]
    fn every_stage_applies_once_when_all_prepare() {
        let (r, counts) = reloader(&[false, false, false]);
        r.reload().expect("reload");
        r.reload().expect("reload");
        let applied: Vec<usize> = counts.iter().map(|c| c.load(Ordering::SeqCst)).collect();
        assert_eq!(applied, vec![2, 2, 2]);
        assert!(r.status().success);
    }
}
