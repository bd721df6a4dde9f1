//! How `klaxon run` assembles the notify stage from a config: one function
//! so `app.rs` stays a list of stages.

use crate::config::Config;
use crate::notify::dispatch::{default_config, Dispatcher, DispatcherOptions, LoggingSink};
use std::sync::Arc;

/// The dispatcher for `cfg`: its notify section (or `--notify-config` file)
/// when present, with the notification log and silences in the store under
/// `storage.path`; otherwise a single default route, in memory, so alerts
/// are still listed by the v2 API and logged. Until the delivery stage is
/// wired, flushed notifications go to a logging sink.
pub fn build_dispatcher(cfg: &Config, external_url: &str) -> Result<Arc<Dispatcher>, String> {
    let (notify, store) = match &cfg.notify {
        Some(n) => {
            let store = crate::store::Store::open(&cfg.storage.path).map_err(|e| e.to_string())?;
            (n.clone(), Some(Arc::new(store)))
        }
        None => (default_config(), None),
    };
    let opts = DispatcherOptions {
        external_url: external_url.to_string(),
        store,
        ..Default::default()
    };
    Dispatcher::new(notify, Arc::new(LoggingSink), opts).map_err(|e| e.to_string())
}
