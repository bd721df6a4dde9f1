//! How `klaxon run` assembles the notify stage from a config: one function
//! so `app.rs` stays a list of stages.

use crate::config::Config;
use crate::metrics::Registry;
use crate::notify::dispatch::{default_config, Dispatcher, DispatcherOptions, LoggingSink};
use crate::notify::outbox::Outbox;
use crate::notify::NotificationSink;
use crate::store::Store;
use std::sync::Arc;

/// The notify stage of a running klaxon.
pub struct NotifyStage {
    pub dispatcher: Arc<Dispatcher>,
    /// Always present (empty without receivers) so the delivery history API
    /// answers the same way whether or not a notify section exists.
    pub outbox: Arc<Outbox>,
}

/// The dispatcher and outbox for `cfg`. With a notify section (or
/// `--notify-config` file) flushed groups go to the outbox, which stores
/// them in `store` and delivers them; without one, a single default route
/// keeps alerts listed by the v2 API and a logging sink reports each flush.
/// Silences and the notification log live in `store` either way.
pub fn build(
    cfg: &Config,
    external_url: &str,
    store: Arc<Store>,
    registry: &Registry,
    maintenance: Arc<crate::ops::Maintenance>,
    events: crate::ops::Events,
) -> Result<NotifyStage, String> {
    let (notify, receivers, templates) = match &cfg.notify {
        Some(n) => (
            n.clone(),
            n.receivers.clone(),
            crate::notify::template::load_templates(&n.templates)?,
        ),
        None => (
            default_config(),
            Vec::new(),
            crate::notify::template::template_set(&[]).map_err(|e| e.to_string())?,
        ),
    };
    let outbox = Outbox::start(store.clone(), receivers.clone(), templates, registry)
        .map_err(|e| e.to_string())?;
    outbox.hold_during(maintenance);
    outbox.publish_to(events.clone());
    let sink: Arc<dyn NotificationSink> = if cfg.notify.is_some() {
        outbox.clone()
    } else {
        Arc::new(LoggingSink)
    };
    // A receiver whose integrations all skip resolved notifications gets
    // no resolved-only flush (Alertmanager's per-integration send_resolved).
    let wants_resolved: std::collections::HashMap<String, bool> = receivers
        .iter()
        .map(|r| {
            let any = r.integrations.iter().any(|i| i.send_resolved());
            (r.name.clone(), any)
        })
        .collect();
    let opts = DispatcherOptions {
        external_url: external_url.to_string(),
        store: Some(store),
        send_resolved: Arc::new(move |name: &str| {
            wants_resolved.get(name).copied().unwrap_or(true)
        }),
        events: Some(events),
        ..Default::default()
    };
    let dispatcher = Dispatcher::new(notify, sink, opts).map_err(|e| e.to_string())?;
    Ok(NotifyStage { dispatcher, outbox })
}
