//! Configuration reload (SIGHUP, `POST /-/reload`): re-read the config file
//! and the rule files, and swap them in only when all of them are valid, so
//! a typo never takes down what is running. Each stage that can reload
//! hooks in here (rules, scrape configs, notify, alerting), in one
//! function, so the success metric and `/api/v1/status/runtimeinfo` speak
//! for the whole reload.

use crate::api::AppState;
use crate::config::Config;
use crate::metrics::{Gauge, Registry};
use crate::rules::manager::RuleManager;
use crate::scrape::manager::Manager;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
    Notify(String),
    /// An `alerting.alertmanagers` entry cannot get an HTTP client.
    #[error("alerting: {0}")]
    Alerting(String),
    /// An autoheal rule cannot get its HTTP client.
    #[error("{0}")]
    Autoheal(String),
}

/// Outcome of the last reload, for `/api/v1/status/runtimeinfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReloadStatus {
    pub success: bool,
    /// Milliseconds: when the running configuration was last applied.
    pub last_success_ms: i64,
}

/// Everything a reload touches.
pub struct Reloader {
    /// `None`: the embedded default, which reloads as itself.
    config_path: Option<PathBuf>,
    listen: String,
    rules: Arc<RuleManager>,
    scrape: Arc<Manager>,
    success: Gauge,
    success_ts: Gauge,
    status: parking_lot::Mutex<ReloadStatus>,
    /// Reloads run one at a time.
    serial: parking_lot::Mutex<()>,
    /// Set once the notify stage is built (it is built after the reloader,
    /// which the operations stage needs first).
    notify: std::sync::OnceLock<crate::notify::wiring::NotifyStage>,
    /// The running config's text (`/api/v1/status/config`), replaced by
    /// each successful reload.
    running_yaml: parking_lot::RwLock<Arc<str>>,
    /// Remote write queues, set once at start (see `set_remote_write`).
    remote_write: std::sync::OnceLock<Arc<crate::remote::RemoteWrite>>,
    /// External Alertmanagers, set once at start (see `set_notifier`).
    notifier: std::sync::OnceLock<Arc<crate::notifier::Notifier>>,
    /// `--web.route-prefix`, for the embedded default's self-scrape path.
    route_prefix: std::sync::OnceLock<String>,
    /// Auto-healing rules and the receiver breakers (set once at start).
    autoheal: std::sync::OnceLock<Arc<crate::ops::autoheal::engine::Engine>>,
}

impl Reloader {
    pub fn new(
        cfg: &Config,
        listen: &str,
        rules: Arc<RuleManager>,
        scrape: Arc<Manager>,
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
            config_path: if cfg.embedded {
                None
            } else {
                cfg.source_path.clone()
            },
            listen: listen.to_string(),
            rules,
            scrape,
            success,
            success_ts,
            status: parking_lot::Mutex::new(ReloadStatus {
                success: true,
                last_success_ms: now,
            }),
            serial: parking_lot::Mutex::new(()),
            running_yaml: parking_lot::RwLock::new(Arc::from(cfg.to_yaml())),
            notify: std::sync::OnceLock::new(),
            remote_write: std::sync::OnceLock::new(),
            notifier: std::sync::OnceLock::new(),
            route_prefix: std::sync::OnceLock::new(),
            autoheal: std::sync::OnceLock::new(),
        }
    }

    /// Hooks auto-healing into reloads: `autoheal:` is applied with the rest.
    pub fn set_autoheal(&self, e: Arc<crate::ops::autoheal::engine::Engine>) {
        let _ = self.autoheal.set(e);
    }

    /// The route prefix the server runs under (set once at start).
    pub fn set_route_prefix(&self, prefix: &str) {
        let _ = self.route_prefix.set(prefix.to_string());
    }

    /// Makes reloads re-read the notify config too.
    pub fn set_notify(&self, stage: crate::notify::wiring::NotifyStage) {
        let _ = self.notify.set(stage);
    }

    /// Hooks remote write into reloads: queues whose entry changed restart.
    pub fn set_remote_write(&self, rw: Arc<crate::remote::RemoteWrite>) {
        let _ = self.remote_write.set(rw);
    }

    /// Hooks the notifier into reloads: a changed `alerting:` is applied.
    pub fn set_notifier(&self, n: Arc<crate::notifier::Notifier>) {
        let _ = self.notifier.set(n);
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
        let cfg = match &self.config_path {
            Some(p) => crate::config::load_file(p).map_err(|e| ReloadError::Config {
                path: p.display().to_string(),
                errors: e.to_string().trim_end().to_string(),
            })?,
            None => crate::config::embedded_default_under(
                &self.listen,
                self.route_prefix.get().map_or("/", String::as_str),
            ),
        };
        let notify = match self.notify.get() {
            Some(stage) => Some((stage, self.prepare_notify(stage, &cfg)?)),
            None => None,
        };
        let alerting = match self.notifier.get() {
            Some(n) => Some((
                n,
                crate::notifier::prepare(&cfg).map_err(ReloadError::Alerting)?,
            )),
            None => None,
        };
        let autoheal = match self.autoheal.get() {
            Some(e) => {
                let ah = cfg.autoheal.clone().unwrap_or_default();
                let clients = crate::ops::autoheal::engine::Engine::prepare(&ah.rules)
                    .map_err(ReloadError::Autoheal)?;
                Some((e, ah, clients))
            }
            None => None,
        };
        // Rules last of what can fail (their reload applies itself when it
        // succeeds); then the rest, which cannot fail, so a failure anywhere
        // changes nothing.
        self.rules.reload(&cfg).map_err(ReloadError::Rules)?;
        self.scrape.apply_config(&cfg.scrape_configs);
        if let Some((stage, prepared)) = notify {
            if let Some((_, ah, _)) = &autoheal {
                stage.outbox.set_breaker(ah.receiver_breaker.clone());
            }
            stage.apply(prepared);
        }
        if let Some((e, ah, clients)) = autoheal {
            e.apply_config(ah.rules, clients);
        }
        if let Some((n, prepared)) = alerting {
            n.apply(prepared);
        }
        if let Some(rw) = self.remote_write.get() {
            // An entry that cannot start is logged and skipped; the
            // others, and everything above, are applied.
            rw.apply_config(&cfg.remote_write, &cfg.global.external_labels);
        }
        *self.running_yaml.write() = Arc::from(cfg.to_yaml());
        Ok(())
    }

    /// The new notify config, loaded and checked: the reloaded config's
    /// `notify:` section or, when the running one came from
    /// `--notify-config`, that file read again.
    fn prepare_notify(
        &self,
        stage: &crate::notify::wiring::NotifyStage,
        cfg: &Config,
    ) -> Result<crate::notify::wiring::Prepared, ReloadError> {
        let file = stage.dispatcher.config().source_file.clone();
        let notify = match (&cfg.notify, file) {
            (Some(_), Some(f)) => {
                return Err(ReloadError::Notify(format!(
                    "--notify-config {} given while the config has a notify: section; use one",
                    f.display()
                )))
            }
            (Some(n), None) => Some(n.clone()),
            (None, Some(f)) => Some(Arc::new(
                crate::notify::config::load_file(&f)
                    .map_err(|e| ReloadError::Notify(e.to_string().trim_end().to_string()))?,
            )),
            (None, None) => None,
        };
        crate::notify::wiring::prepare(notify.as_ref())
            .map_err(|e| ReloadError::Notify(e.to_string()))
    }
}

/// `POST`/`PUT /-/reload`, as Prometheus (with `--web.enable-lifecycle`):
/// 200 and an empty body, or 500 with the error. Goes through `ops` so the
/// reload is published as an event like SIGHUP and signed commands.
pub async fn http_reload(State(s): State<Arc<AppState>>) -> Response {
    let ops = s.ops.clone();
    match tokio::task::spawn_blocking(move || ops.reload("http")).await {
        Ok(Ok(())) => StatusCode::OK.into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("failed to reload config: {e}\n"),
        )
            .into_response(),
    }
}
