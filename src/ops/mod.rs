//! Operations: what makes klaxon observable and controllable in a
//! 24/7 setup — request correlation, RBAC and rate limits, signed remote
//! commands with maintenance mode, the heartbeat to a command centre, the
//! event bus and audit trail.
//!
//! [`Ops`] bundles the shared state; the HTTP side is `api::middleware`
//! (cross-cutting layer) and `api::ops` (endpoints).
//!
//! Seams for the other stages (all through `AppState::ops`):
//! - `ops.maintenance.is_on()`: the outbox holds deliveries while true and
//!   sends them on resume unless resolved meanwhile; scheduled probes skip.
//! - `ops.events.publish(kind, json)`: rules on alert state changes
//!   (`alert`), the outbox on sent/failed (`notification`), scrape on
//!   target up/down (`target`), `/-/reload` via `ops.reload(cause)`.
//! - `ops.set_reload_hook` / `set_refresh_hook`: the app's reload function
//!   and an immediate re-discovery.
//! - `Extension<RequestId>` in handlers: stamp notifications an API call
//!   causes (webhook `X-Request-ID`, PagerDuty `custom_details`).

pub mod audit;
pub mod auth;
pub mod autoheal;
pub mod commands;
pub mod config;
pub mod events;
pub mod health;
pub mod heartbeat;
pub mod http_metrics;
pub mod logfmt;
pub mod maintenance;
pub mod request_id;
pub mod tenants;

pub use auth::{Principal, Role};
pub use events::Events;
pub use maintenance::{Maintenance, MaintenanceState};
pub use request_id::RequestId;

use crate::metrics::{FamilySnapshot, Kind, Registry};
use crate::store::Store;
use parking_lot::RwLock;
use std::sync::Arc;

/// A hook the app provides (reload, refresh); `Err` carries a message for
/// the caller and the audit log.
pub type Hook = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

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
    reload: RwLock<Option<Hook>>,
    refresh: RwLock<Option<Hook>>,
}

/// What [`Ops::new`] needs.
pub struct OpsOptions<'a> {
    pub registry: &'a Registry,
    pub store: Arc<Store>,
    pub auth: Option<&'a config::AuthConfig>,
    pub command_center: &'a config::CommandCenterConfig,
    pub listen_is_loopback: bool,
    /// The host of `--web.external-url`, if any.
    pub external_host: Option<String>,
}

impl Ops {
    pub fn new(o: OpsOptions<'_>) -> Arc<Ops> {
        let maintenance = Arc::new(Maintenance::new());
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
            events: Events::new(o.store.clone()),
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
            reload: RwLock::new(None),
            refresh: RwLock::new(None),
        })
    }

    /// The function `reload` commands call (the app's config/rules reload).
    pub fn set_reload_hook(&self, h: Hook) {
        *self.reload.write() = Some(h);
    }

    /// Extra work for `refresh` besides an immediate heartbeat (e.g.
    /// re-reading file_sd).
    pub fn set_refresh_hook(&self, h: Hook) {
        *self.refresh.write() = Some(h);
    }

    /// Runs the reload hook and publishes a `config_reload` event.
    pub fn reload(&self, cause: &str) -> Result<(), String> {
        let hook = self.reload.read().clone();
        let r = match hook {
            Some(h) => h(),
            None => Err("reload is not available in this build".to_string()),
        };
        self.events.publish(
            events::KIND_CONFIG_RELOAD,
            serde_json::json!({
                "cause": cause,
                "success": r.is_ok(),
                "error": r.as_ref().err(),
            }),
        );
        r
    }

    /// Wakes the heartbeat and runs the refresh hook.
    pub fn refresh(&self) -> Result<(), String> {
        self.heartbeat.wake.notify_one();
        let hook = self.refresh.read().clone();
        match hook {
            Some(h) => h(),
            None => Ok(()),
        }
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
