//! How `klaxon run` assembles the notify stage from a config: one function
//! so `app.rs` stays a list of stages.

use crate::metrics::Registry;
use crate::notify::config::NotifyConfig;
use crate::notify::dispatch::{
    default_config, DispatchError, Dispatcher, DispatcherOptions, LoggingSink,
};
use crate::notify::outbox::{Outbox, OutboxOptions};
use crate::notify::receivers::Receiver;
use crate::notify::template::TemplatesError;
use crate::notify::NotificationSink;
use crate::store::Store;
use crate::template::TemplateSet;
use std::collections::HashMap;
use std::sync::Arc;

/// The notify stage of a running klaxon.
#[derive(Clone)]
pub struct NotifyStage {
    pub dispatcher: Arc<Dispatcher>,
    /// Always present (empty without receivers) so the delivery history API
    /// answers the same way whether or not a notify section exists.
    pub outbox: Arc<Outbox>,
}

/// A notify configuration with everything that can fail done: templates
/// parsed, receivers resolved. Applying it cannot fail, so a reload either
/// applies all of it or, on error, none.
pub struct Prepared {
    cfg: Arc<NotifyConfig>,
    templates: TemplateSet,
    /// A notify section exists: flushes go to the outbox (else logged).
    configured: bool,
}

impl Prepared {
    /// The receivers deliveries go to: none for the default route, whose
    /// flushes are only logged.
    fn receivers(&self) -> &[Receiver] {
        if self.configured {
            &self.cfg.receivers
        } else {
            &[]
        }
    }
}

/// Why the notify stage could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WiringError {
    #[error(transparent)]
    Templates(#[from] TemplatesError),
    /// The outbox could not read its queue from the store.
    #[error(transparent)]
    Outbox(#[from] crate::store::StoreError),
    /// The dispatcher could not load silences or the notification log.
    #[error(transparent)]
    Dispatcher(#[from] DispatchError),
}

/// Prepares `notify` (`None`: no notify section, the default route).
pub fn prepare(notify: Option<&Arc<NotifyConfig>>) -> Result<Prepared, TemplatesError> {
    Ok(match notify {
        Some(n) => Prepared {
            cfg: n.clone(),
            templates: crate::notify::template::load_templates(&n.templates)?,
            configured: true,
        },
        None => Prepared {
            cfg: default_config(),
            templates: crate::notify::template::template_set(&[])?,
            configured: false,
        },
    })
}

/// Whether a receiver wants resolved notifications: a receiver whose
/// integrations all skip them gets no resolved-only flush (Alertmanager's
/// per-integration `send_resolved`).
fn send_resolved_of(receivers: &[Receiver]) -> Arc<dyn Fn(&str) -> bool + Send + Sync> {
    let wants: HashMap<String, bool> = receivers
        .iter()
        .map(|r| {
            let any = r.integrations.iter().any(|i| i.send_resolved());
            (r.name.clone(), any)
        })
        .collect();
    Arc::new(move |name: &str| wants.get(name).copied().unwrap_or(true))
}

/// The dispatcher and outbox for `cfg`. With a notify section (or
/// `--notify-config` file) flushed groups go to the outbox, which stores
/// them in `store` and delivers them; without one, a single default route
/// keeps alerts listed by the v2 API and a logging sink reports each flush.
/// Silences and the notification log live in `store` either way.
pub fn build(
    cfg: Option<&Arc<crate::notify::config::NotifyConfig>>,
    external_url: &str,
    store: Arc<Store>,
    registry: &Registry,
    maintenance: Arc<crate::maintenance::Maintenance>,
    events: crate::events::Events,
) -> Result<NotifyStage, WiringError> {
    let p = prepare(cfg)?;
    let send_resolved = send_resolved_of(p.receivers());
    let outbox_opts = OutboxOptions {
        hold: Some(maintenance),
        events: Some(events.clone()),
        ..Default::default()
    };
    let outbox = Outbox::start_with(
        store.clone(),
        p.receivers().to_vec(),
        p.templates,
        registry,
        outbox_opts,
    )?;
    let opts = DispatcherOptions {
        external_url: external_url.to_string(),
        store: Some(store),
        send_resolved,
        events: Some(events),
        ..Default::default()
    };
    let sink = sink_for(p.configured, &outbox);
    let dispatcher = Dispatcher::new(p.cfg, sink, opts)?;
    Ok(NotifyStage { dispatcher, outbox })
}

fn sink_for(configured: bool, outbox: &Arc<Outbox>) -> Arc<dyn NotificationSink> {
    if configured {
        outbox.clone()
    } else {
        Arc::new(LoggingSink)
    }
}

impl NotifyStage {
    /// Swaps in a reloaded configuration: receivers and templates for the
    /// deliveries not yet made, routes, inhibition and time intervals for
    /// the alerts held (see [`Dispatcher::apply_config`]).
    pub fn apply(&self, p: Prepared) {
        let send_resolved = send_resolved_of(p.receivers());
        self.outbox
            .update_config(p.receivers().to_vec(), p.templates);
        self.dispatcher
            .set_sink(sink_for(p.configured, &self.outbox));
        self.dispatcher.apply_config(p.cfg, send_resolved);
    }
}
