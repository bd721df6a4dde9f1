//! Operations: what makes klaxon observable and controllable in a
//! 24/7 setup — request correlation, RBAC and rate limits, signed remote
//! commands with maintenance mode, the heartbeat to a command centre, the
//! event bus and audit trail.
//!
//! [`Ops`] bundles the shared state; the HTTP side is `api::middleware`
//! (cross-cutting layer) and `api::ops` (endpoints).
//!
//! The event bus ([`crate::events`]) and maintenance mode
//! ([`crate::maintenance`]) sit below the stages: the app builds them right
//! after the store and hands them to the stages' constructors (the outbox
//! holds deliveries in maintenance and reports attempts, scheduled probes
//! skip, scrape reports targets going up or down). `ops` holds the same
//! two, serves them over HTTP and switches maintenance by signed command.
//! The config reload comes in as [`ReloadHook`] at construction.
//! `Extension<RequestId>` in handlers stamps notifications an API call
//! causes (webhook `X-Request-ID`, PagerDuty `custom_details`).

pub mod audit;
pub mod auth;
pub mod autoheal;
pub mod commands;
pub mod config;
pub mod health;
pub mod heartbeat;
pub mod http_metrics;
pub mod logfmt;
pub mod request_id;
pub mod tenants;

pub use crate::events::{self, Events};
pub use crate::maintenance::{self, Maintenance, MaintenanceState};
pub use auth::{Principal, Role};
pub use request_id::RequestId;

use crate::metrics::{FamilySnapshot, Kind, Registry};
use crate::store::Store;
use std::sync::Arc;

/// Why a reload hook failed; its text goes to the caller and the audit log.
pub type HookError = Box<dyn std::error::Error + Send + Sync>;

/// The config reload the app provides (`reload` commands, `/-/reload`,
/// SIGHUP) and what the status pages show of it.
pub trait ConfigReload: Send + Sync {
    /// Re-reads the configuration and applies all of it, or nothing.
    /// Blocking: call it off the async workers.
    fn reload(&self) -> Result<(), HookError>;
    /// Outcome of the last reload.
    fn status(&self) -> ReloadStatus;
    /// The text of the configuration running now.
    fn running_yaml(&self) -> Arc<str>;
}

/// The reload [`Ops`] runs.
pub type ReloadHook = Arc<dyn ConfigReload>;

/// A [`ConfigReload`] for an [`Ops`] with no configuration to reload (a
/// benchmark, a tool): every reload fails.
pub struct NoReload;

impl ConfigReload for NoReload {
    fn reload(&self) -> Result<(), HookError> {
        Err("reload is not available here".into())
    }
    fn status(&self) -> ReloadStatus {
        ReloadStatus {
            success: true,
            last_success_ms: 0,
        }
    }
    fn running_yaml(&self) -> Arc<str> {
        Arc::from("")
    }
}

/// Outcome of the last reload, for `/api/v1/status/runtimeinfo`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReloadStatus {
    pub success: bool,
    /// Milliseconds: when the running configuration was last applied.
    pub last_success_ms: i64,
}

/// Everything the operations features share.
pub struct Ops {
    pub maintenance: Arc<Maintenance>,
    pub events: Events,
    pub auth: auth::Authorizer,
    pub http: Arc<http_metrics::HttpMetrics>,
    pub verifier: commands::CommandVerifier,
    pub heartbeat: Arc<heartbeat::HeartbeatState>,
    pub started_ms: i64,
    /// Whether a heartbeat loop runs (a `base_url` is configured).
    pub heartbeat_enabled: bool,
    /// Whether the listener is loopback (the `Host` check applies).
    pub loopback: bool,
    /// The external URL's host (`--web.external-url`), also answered on a
    /// loopback listener (a reverse proxy in front of it).
    pub external_host: Option<String>,
    /// The config reload (`reload` commands, `/-/reload`, SIGHUP).
    pub reloader: ReloadHook,
}

/// What [`Ops::new`] needs.
pub struct OpsOptions<'a> {
    pub registry: &'a Registry,
    pub store: Arc<Store>,
    /// The bus the stages publish on (built before them).
    pub events: Events,
    /// Maintenance mode, shared with the stages that honour it.
    pub maintenance: Arc<Maintenance>,
    /// What a reload runs.
    pub reload: ReloadHook,
    pub auth: Option<&'a config::AuthConfig>,
    pub command_center: &'a config::CommandCenterConfig,
    pub listen_is_loopback: bool,
    /// The host of `--web.external-url`, if any.
    pub external_host: Option<String>,
}

impl Ops {
    pub fn new(o: OpsOptions<'_>) -> Arc<Ops> {
        let maintenance = o.maintenance;
        let m = maintenance.clone();
        o.registry.collector(move |out| {
            out.push(FamilySnapshot {
                name: "klaxon_maintenance_mode".into(),
                help: "1 while maintenance mode (kill-switch) holds notifications and probes."
                    .into(),
                kind: Kind::Gauge,
                samples: vec![(Vec::new(), if m.is_on() { 1.0 } else { 0.0 })],
            })
        });
        Arc::new(Ops {
            maintenance,
            events: o.events,
            auth: auth::Authorizer::new(o.auth, o.listen_is_loopback),
            http: Arc::new(http_metrics::HttpMetrics::register(o.registry)),
            verifier: commands::CommandVerifier::new(
                o.command_center.command_secret.clone(),
                o.store,
            ),
            heartbeat: heartbeat::HeartbeatState::register(
                o.registry,
                o.command_center.base_url.is_some(),
            ),
            started_ms: crate::model::now_millis(),
            heartbeat_enabled: o.command_center.base_url.is_some(),
            loopback: o.listen_is_loopback,
            external_host: o.external_host,
            reloader: o.reload,
        })
    }

    /// Runs the reload hook and publishes a `config_reload` event.
    pub fn reload(&self, cause: &str) -> Result<(), HookError> {
        let r = self.reloader.reload();
        self.events.publish(
            events::KIND_CONFIG_RELOAD,
            serde_json::json!({
                "cause": cause,
                "success": r.is_ok(),
                "error": r.as_ref().err().map(|e| e.to_string()),
            }),
        );
        r
    }

    /// Wakes the heartbeat (an immediate beat).
    pub fn refresh(&self) {
        self.heartbeat.wake.notify_one();
    }

    /// Feature names for `/meta`.
    pub fn features(&self) -> Vec<&'static str> {
        let mut f = vec!["rbac", "request_id", "events", "audit"];
        if self.auth.rate_limited() {
            f.push("rate_limit");
        }
        if self.heartbeat_enabled {
            f.push("heartbeat");
        }
        if self.verifier.secret().is_some() {
            f.push("signed_commands");
        }
        f
    }
}

/// Whether a `host:port` listen address is loopback (`localhost` counts).
pub fn is_loopback_listen(listen: &str) -> bool {
    if let Ok(a) = listen.parse::<std::net::SocketAddr>() {
        return a.ip().is_loopback();
    }
    let host = listen.rsplit_once(':').map_or(listen, |(h, _)| h);
    host == "localhost" || host.trim_matches(['[', ']']) == "::1"
}

#[cfg(test)]
mod tests {
    #[test]
    fn loopback_listen() {
        assert!(super::is_loopback_listen("127.0.0.1:9470"));
        assert!(super::is_loopback_listen("[::1]:9470"));
        assert!(super::is_loopback_listen("localhost:9470"));
        assert!(!super::is_loopback_listen("0.0.0.0:9470"));
        assert!(!super::is_loopback_listen(":9470"));
    }
}
