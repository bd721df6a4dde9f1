//! The event bus: every event is persisted first (its row id is the SSE
//! id, so a client reconnecting with `Last-Event-ID` resumes from the
//! store) and then broadcast to live subscribers. It sits below the stages
//! (built right after the store and handed to their constructors); `ops`
//! serves it (`/api/v1/events/*`) and prunes it.
//!
//! Who publishes what (kinds are the constants below):
//! - `command`, `config_reload`: `ops` and `api::ops`;
//! - `change` (API changes with their caller): `api::middleware`;
//! - `alert` (state changes): the notify dispatcher;
//! - `notification` (sent/failed): the outbox;
//! - `target` (up/down): the scrape stage;
//! - `autoheal` (decisions and outcomes): `ops::autoheal` and the outbox's
//!   receiver breakers.

use crate::store::audit::{EventQuery, EventRow};
use crate::store::Store;
use parking_lot::Mutex;
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast;

pub const KIND_COMMAND: &str = "command";
pub const KIND_CONFIG_RELOAD: &str = "config_reload";
/// A change through the API (see `ops::audit::record_change`).
pub const KIND_CHANGE: &str = "change";
pub const KIND_ALERT: &str = "alert";
pub const KIND_NOTIFICATION: &str = "notification";
pub const KIND_TARGET: &str = "target";
/// An auto-healing decision or outcome, or a receiver breaker change.
pub const KIND_AUTOHEAL: &str = "autoheal";

/// One event as streamed and listed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// Store row id; 0 when the store refused the write (the event is still
    /// streamed live, but cannot be resumed).
    pub id: i64,
    pub at_ms: i64,
    pub kind: String,
    pub data: serde_json::Value,
}

impl Event {
    fn from_row(r: EventRow) -> Event {
        Event {
            id: r.id,
            at_ms: r.at_ms,
            kind: r.kind,
            data: serde_json::from_str(&r.data).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Live subscribers beyond this many unread events lag and resume from the
/// store.
const CHANNEL: usize = 1024;

/// The bus; cheap to clone.
#[derive(Clone)]
pub struct Events {
    store: Arc<Store>,
    tx: broadcast::Sender<Event>,
    /// Insert and send under one lock, so subscribers see ids in order.
    order: Arc<Mutex<()>>,
    /// Events handed over by hot paths ([`Events::publish_later`]), written
    /// by a background thread in batches.
    later: Arc<std::sync::OnceLock<std::sync::mpsc::Sender<(String, serde_json::Value)>>>,
}

impl std::fmt::Debug for Events {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Events")
            .field("subscribers", &self.tx.receiver_count())
            .finish_non_exhaustive()
    }
}

impl Events {
    pub fn new(store: Arc<Store>) -> Self {
        Events {
            store,
            tx: broadcast::channel(CHANNEL).0,
            order: Arc::new(Mutex::new(())),
            later: Arc::new(std::sync::OnceLock::new()),
        }
    }

    /// Queues an event without waiting for the store: for the alert,
    /// notification and target paths, where a commit per event would slow
    /// delivery. A background thread persists whatever has queued in one
    /// commit, then broadcasts it, in order.
    pub fn publish_later(&self, kind: &str, data: serde_json::Value) {
        let tx = self.later.get_or_init(|| {
            let (tx, rx) = std::sync::mpsc::channel::<(String, serde_json::Value)>();
            let me = Events {
                later: Arc::new(std::sync::OnceLock::new()),
                ..self.clone()
            };
            let spawned = std::thread::Builder::new()
                .name("klaxon-events".into())
                .spawn(move || {
                    while let Ok(first) = rx.recv() {
                        let mut batch = vec![first];
                        batch.extend(rx.try_iter().take(1023));
                        me.publish_batch(batch);
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start the event writer");
            }
            tx
        });
        // The writer only stops when the bus is gone.
        let _ = tx.send((kind.to_string(), data));
    }

    fn publish_batch(&self, batch: Vec<(String, serde_json::Value)>) {
        let _g = self.order.lock();
        let at_ms = crate::model::now_millis();
        let texts: Vec<String> = batch.iter().map(|(_, d)| d.to_string()).collect();
        let rows: Vec<(i64, &str, &str)> = batch
            .iter()
            .zip(&texts)
            .map(|((k, _), t)| (at_ms, k.as_str(), t.as_str()))
            .collect();
        let ids = match self.store.insert_events(&rows) {
            Ok(ids) => ids,
            Err(e) => {
                tracing::error!(error = %e, "persisting events");
                vec![0; batch.len()]
            }
        };
        for ((kind, data), id) in batch.into_iter().zip(ids) {
            let _ = self.tx.send(Event {
                id,
                at_ms,
                kind,
                data,
            });
        }
    }

    /// Persists and broadcasts an event; returns it. Synchronous: the
    /// insert commits (fsync) before subscribers see the event, so a client
    /// can always resume from the store. Callers on a hot async path wrap it
    /// in `spawn_blocking`.
    pub fn publish(&self, kind: &str, data: serde_json::Value) -> Event {
        let _g = self.order.lock();
        let at_ms = crate::model::now_millis();
        let id = match self.store.insert_event(at_ms, kind, &data.to_string()) {
            Ok(id) => id,
            Err(e) => {
                tracing::error!(error = %e, kind, "persisting event");
                0
            }
        };
        let ev = Event {
            id,
            at_ms,
            kind: kind.to_string(),
            data,
        };
        // No subscriber is not an error.
        let _ = self.tx.send(ev.clone());
        ev
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Stored events, filtered and paginated.
    pub fn query(&self, q: &EventQuery) -> Result<Vec<Event>, crate::store::StoreError> {
        Ok(self
            .store
            .query_events(q)?
            .into_iter()
            .map(Event::from_row)
            .collect())
    }

    /// Drops events older than `before_ms`.
    pub fn prune(&self, before_ms: i64) -> Result<usize, crate::store::StoreError> {
        self.store.prune_events(before_ms)
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_events_are_stored_and_broadcast_in_order() {
        let ev = Events::new(Arc::new(Store::open_in_memory().unwrap()));
        let mut rx = ev.subscribe();
        let a = ev.publish(KIND_COMMAND, serde_json::json!({"what": "kill-switch"}));
        let b = ev.publish(KIND_ALERT, serde_json::json!({"state": "firing"}));
        assert!(b.id > a.id && a.id > 0);
        assert_eq!(rx.try_recv().unwrap(), a);
        assert_eq!(rx.try_recv().unwrap(), b);
        let stored = ev
            .query(&EventQuery {
                after_id: Some(a.id),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(stored, vec![b]);
    }
}
