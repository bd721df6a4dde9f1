//! The outbox: the [`NotificationSink`] the dispatcher hands flushed groups
//! to. Each notification × integration is rendered once and written to the
//! store *before* the first attempt; a worker delivers due rows with a
//! per-receiver timeout and retries transient failures (timeouts,
//! connection errors, 429 with its Retry-After, 5xx) with exponential
//! backoff and jitter until the delivery's deadline. Other 4xx fail at once
//! with the reason kept. A restarted process resumes the pending rows.

use super::breaker::{Breaker, BreakerConfig, Transition};
use super::receivers::{self, email, Integration, Payload, Receiver, SendError};
use super::template::alert_status;
use super::{Notification, NotificationSink};
use crate::metrics::{CounterVec, FamilySnapshot, Gauge, HistogramVec, Kind, Registry};
use crate::model::now_millis;
use crate::store::notify::{Delivery, NewDelivery, Outcome};
use crate::store::{Store, StoreError};
use crate::template::TemplateSet;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Delivery tuning; the defaults suit paging (fast first retries, give up
/// after an hour so a stale page is not sent late).
#[derive(Clone, Debug)]
pub struct OutboxOptions {
    /// Per-attempt timeout for receivers not in `receiver_timeouts`.
    pub timeout: Duration,
    pub receiver_timeouts: HashMap<String, Duration>,
    /// Retries stop this long after the notification was created.
    pub deadline: Duration,
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Rows claimed per worker round.
    pub batch: usize,
    /// Maintenance mode: while on, every delivery is held; on resume the
    /// held rows go out, minus those a newer notification superseded.
    pub hold: Option<Arc<crate::maintenance::Maintenance>>,
    /// Where the outcome of every attempt goes, as a `notification` event.
    pub events: Option<crate::events::Events>,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        OutboxOptions {
            timeout: Duration::from_secs(10),
            receiver_timeouts: HashMap::new(),
            deadline: Duration::from_secs(3600),
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(300),
            batch: 64,
            hold: None,
            events: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("delivery {0} not found")]
    NotFound(i64),
    #[error("delivery {id}: {msg}")]
    Send { id: i64, msg: String },
}

/// Upper bounds of the latency histogram, seconds.
const BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

struct Metrics {
    total: Arc<CounterVec>,
    failed: Arc<CounterVec>,
    queue: Gauge,
    /// `klaxon_notification_latency_seconds{integration}`: per-attempt time.
    latency: Arc<HistogramVec>,
}

impl Metrics {
    fn new(r: &Registry) -> Self {
        let latency = r.histogram_vec(
            "klaxon_notification_latency_seconds",
            "Latency of notification delivery attempts.",
            &["integration"],
            BUCKETS,
        );
        Metrics {
            total: r.counter_vec(
                "klaxon_notifications",
                "Notification delivery attempts.",
                &["receiver", "integration"],
            ),
            failed: r.counter_vec(
                "klaxon_notifications_failed",
                "Failed notification delivery attempts.",
                &["receiver", "integration", "reason"],
            ),
            queue: r.gauge(
                "klaxon_notification_queue_length",
                "Notifications stored and not yet delivered or failed.",
            ),
            latency,
        }
    }
}

/// Receivers and templates of the current config.
struct Live {
    receivers: HashMap<String, Receiver>,
    templates: TemplateSet,
}

/// The outbox; see the module docs.
pub struct Outbox {
    store: Arc<Store>,
    /// Swapped as a whole on config reload ([`Outbox::update_config`]).
    config: parking_lot::RwLock<Arc<Live>>,
    opts: OutboxOptions,
    clients: Mutex<HashMap<(String, usize), reqwest::Client>>,
    wake: Arc<Notify>,
    metrics: Metrics,
    /// While on (kill-switch), nothing is sent: rows wait in the store.
    hold: Option<Arc<crate::maintenance::Maintenance>>,
    /// This outbox, for first attempts started from `enqueue`.
    me: Weak<Outbox>,
    /// Where `notification` events (sent, retrying, failed) go.
    events: Option<crate::events::Events>,
    /// (rows not finished, earliest due time) as last counted, for the
    /// heartbeat (which must not wait on the store).
    queue: Mutex<Option<(u64, Option<i64>)>>,
    /// A recount of `queue` is scheduled ([`Outbox::queue_changed`]).
    recount_pending: AtomicBool,
    /// Circuit breakers per receiver endpoint (`autoheal.receiver_breaker`).
    breakers: Arc<Breakers>,
}

/// One receiver integration's breaker.
struct Endpoint {
    integration: String,
    breaker: Breaker,
    /// A send is out while the breaker is half open (its cooldown over,
    /// not yet closed by a success): the others wait for its answer.
    probing: bool,
}

/// The receiver circuit breakers: after N consecutive failed attempts on
/// one receiver integration, its rows wait (deferred in the store, not
/// attempted, not failed) until the cooldown ends; then one row probes.
#[derive(Default)]
struct Breakers {
    cfg: parking_lot::RwLock<Option<BreakerConfig>>,
    /// (receiver, integration index) -> state.
    endpoints: Mutex<HashMap<(String, usize), Endpoint>>,
}

/// How long a row waits while another probes a half-open endpoint.
const PROBE_WAIT: Duration = Duration::from_secs(1);

/// What the gate says about a row.
enum Gate {
    Send,
    /// Not now: try again at this time (ms).
    Defer(i64),
}

/// One endpoint's breaker state, for the API and the UI.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct EndpointState {
    pub receiver: String,
    pub integration: String,
    pub integration_index: usize,
    pub consecutive_failures: u32,
    /// While in cooldown: until when (ms).
    pub cooldown_until_ms: Option<i64>,
}

impl Breakers {
    fn gate(&self, d: &Delivery, now: i64) -> Gate {
        if self.cfg.read().is_none() {
            return Gate::Send;
        }
        let mut eps = self.endpoints.lock();
        let Some(ep) = eps.get_mut(&(d.receiver.clone(), d.integration_index)) else {
            return Gate::Send;
        };
        if let Some(until) = ep.breaker.cooldown_until(now) {
            return Gate::Defer(until);
        }
        if ep.breaker.consecutive_failures() >= ep.breaker.threshold {
            if ep.probing {
                return Gate::Defer(now + PROBE_WAIT.as_millis() as i64);
            }
            ep.probing = true;
        }
        Gate::Send
    }

    /// Records an attempt's result; returns the cooldown's end when this
    /// failure opened the breaker, and whether a success closed an open one.
    fn record(&self, d: &Delivery, ok: bool, now: i64) -> (Option<i64>, bool) {
        let Some(cfg) = self.cfg.read().clone() else {
            return (None, false);
        };
        let mut eps = self.endpoints.lock();
        let ep = eps
            .entry((d.receiver.clone(), d.integration_index))
            .or_insert_with(|| Endpoint {
                integration: d.integration.clone(),
                breaker: Breaker::new(cfg.failures, cfg.cooldown, cfg.max_cooldown),
                probing: false,
            });
        ep.probing = false;
        if ok {
            let was_open = ep.breaker.consecutive_failures() >= ep.breaker.threshold;
            ep.breaker.record_success();
            return (None, was_open);
        }
        match ep.breaker.record_failure(now) {
            Transition::Opened { until } => (Some(until), false),
            Transition::Unchanged => (None, false),
        }
    }

    /// Endpoints that failed since they last delivered (`all`: every
    /// endpoint that ever failed, for the metric, which stays at 0 after a
    /// recovery instead of vanishing).
    fn states(&self, now: i64, all: bool) -> Vec<EndpointState> {
        let mut v: Vec<EndpointState> = self
            .endpoints
            .lock()
            .iter()
            .filter(|(_, e)| all || e.breaker.consecutive_failures() > 0)
            .map(|((r, i), e)| EndpointState {
                receiver: r.clone(),
                integration: e.integration.clone(),
                integration_index: *i,
                consecutive_failures: e.breaker.consecutive_failures(),
                cooldown_until_ms: e.breaker.cooldown_until(now),
            })
            .collect();
        v.sort_by(|a, b| {
            (&a.receiver, a.integration_index).cmp(&(&b.receiver, b.integration_index))
        });
        v
    }
}

/// How long after a change the queue is recounted (changes in between
/// share the count).
const RECOUNT_DELAY: Duration = Duration::from_millis(200);

impl Drop for Outbox {
    fn drop(&mut self) {
        // Lets the worker see the outbox is gone and stop.
        self.wake.notify_one();
    }
}

impl Outbox {
    /// Opens the outbox on `store` with default options and starts its
    /// worker on the current tokio runtime; rows a previous process left
    /// unfinished are resumed.
    pub fn start(
        store: Arc<Store>,
        receivers: Vec<Receiver>,
        templates: TemplateSet,
        registry: &Registry,
    ) -> Result<Arc<Outbox>, StoreError> {
        Self::start_with(
            store,
            receivers,
            templates,
            registry,
            OutboxOptions::default(),
        )
    }

    pub fn start_with(
        store: Arc<Store>,
        receivers: Vec<Receiver>,
        templates: TemplateSet,
        registry: &Registry,
        opts: OutboxOptions,
    ) -> Result<Arc<Outbox>, StoreError> {
        // A follower must not take back rows the HA leader is sending; the
        // election requeues them when this process takes over.
        let resumed = if store.is_shared() {
            0
        } else {
            store.requeue_in_flight_deliveries(now_millis())?
        };
        if resumed > 0 {
            tracing::info!(
                resumed,
                "outbox: resuming deliveries interrupted by a restart"
            );
        }
        let breakers = Arc::new(Breakers::default());
        let b = breakers.clone();
        registry.collector(move |out| {
            // One series per receiver and integration kind: 1 while any
            // endpoint of that kind is in cooldown.
            let now = now_millis();
            let mut by: std::collections::BTreeMap<(String, String), f64> = Default::default();
            for st in b.states(now, true) {
                let v = by.entry((st.receiver, st.integration)).or_insert(0.0);
                if st.cooldown_until_ms.is_some() {
                    *v = 1.0;
                }
            }
            out.push(FamilySnapshot {
                name: "klaxon_notify_endpoint_cooldown".into(),
                help: "1 while a receiver integration is in cooldown after consecutive failed deliveries (autoheal.receiver_breaker).".into(),
                kind: Kind::Gauge,
                samples: by
                    .into_iter()
                    .map(|((r, i), v)| {
                        (
                            vec![("receiver".to_string(), r), ("integration".to_string(), i)],
                            v,
                        )
                    })
                    .collect(),
            })
        });
        let (hold, events) = (opts.hold.clone(), opts.events.clone());
        let ob = Arc::new_cyclic(|me| Outbox {
            me: me.clone(),
            store,
            config: parking_lot::RwLock::new(Arc::new(Live {
                receivers: receivers.into_iter().map(|r| (r.name.clone(), r)).collect(),
                templates,
            })),
            opts,
            clients: Mutex::new(HashMap::new()),
            wake: Arc::new(Notify::new()),
            metrics: Metrics::new(registry),
            hold,
            events,
            queue: Mutex::new(None),
            recount_pending: AtomicBool::new(false),
            breakers,
        });
        ob.update_queue_gauge();
        let weak = Arc::downgrade(&ob);
        let wake = ob.wake.clone();
        tokio::spawn(worker(weak, wake));
        Ok(ob)
    }

    /// Applies a reloaded config: new rows use the new receivers and
    /// templates; stored rows keep their rendered payload and are sent with
    /// the new keys and URLs of the same receiver and integration.
    pub fn update_config(&self, receivers: Vec<Receiver>, templates: TemplateSet) {
        *self.config.write() = Arc::new(Live {
            receivers: receivers.into_iter().map(|r| (r.name.clone(), r)).collect(),
            templates,
        });
        // Clients carry TLS settings of the old config.
        self.clients.lock().clear();
        self.wake.notify_one();
    }

    /// Sets (or, with `None`, removes) the receiver circuit breakers. A
    /// changed setting starts every endpoint over.
    pub fn set_breaker(&self, cfg: Option<BreakerConfig>) {
        let mut cur = self.breakers.cfg.write();
        if *cur != cfg {
            *cur = cfg;
            self.breakers.endpoints.lock().clear();
            self.wake.notify_one();
        }
    }

    /// Endpoints with failures, and their cooldowns.
    pub fn endpoint_states(&self) -> Vec<EndpointState> {
        self.breakers.states(now_millis(), false)
    }

    /// Resets the breakers of `receiver`'s integrations (all, or those of
    /// kind `integration`) and makes their waiting rows due now. Returns
    /// the endpoints reset.
    pub async fn clear_endpoint_cooldown(
        &self,
        receiver: &str,
        integration: Option<&str>,
    ) -> Result<Vec<EndpointState>, StoreError> {
        let now = now_millis();
        let cleared: Vec<EndpointState> = {
            let mut eps = self.breakers.endpoints.lock();
            let mut out = Vec::new();
            for ((r, i), e) in eps.iter_mut() {
                if r == receiver && integration.is_none_or(|k| k == e.integration) {
                    out.push(EndpointState {
                        receiver: r.clone(),
                        integration: e.integration.clone(),
                        integration_index: *i,
                        consecutive_failures: e.breaker.consecutive_failures(),
                        cooldown_until_ms: e.breaker.cooldown_until(now),
                    });
                    e.breaker.clear();
                    e.probing = false;
                }
            }
            out
        };
        for st in &cleared {
            let (r, i) = (st.receiver.clone(), st.integration_index);
            self.store
                .call(move |s| s.release_deferred_deliveries(&r, i, now))
                .await?;
        }
        self.queue_changed();
        self.wake.notify_one();
        Ok(cleared)
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Recounts the queue; reads the store, so blocking threads only.
    fn update_queue_gauge(&self) {
        if let Ok(n) = self.store.count_unfinished_deliveries() {
            self.metrics.queue.set(n as f64);
            let due = self.store.next_delivery_due().ok().flatten();
            *self.queue.lock() = Some((n as u64, due));
        }
    }

    /// The queue changed: recounts it [`RECOUNT_DELAY`] from now, once for
    /// every change in between. Counting is two store queries; doing it at
    /// every enqueue and every attempt was half of the outbox's CPU per
    /// notification.
    fn queue_changed(&self) {
        if self.recount_pending.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            self.recount_pending.store(false, Ordering::Release);
            self.update_queue_gauge();
            return;
        };
        // A weak reference: a pending recount does not keep a dropped
        // outbox (and its worker) alive.
        let me = self.me.clone();
        rt.spawn(async move {
            tokio::time::sleep(RECOUNT_DELAY).await;
            let Some(ob) = me.upgrade() else { return };
            // Cleared first: a change while counting schedules another.
            ob.recount_pending.store(false, Ordering::Release);
            let _ = tokio::task::spawn_blocking(move || ob.update_queue_gauge()).await;
        });
    }

    /// (rows not finished, earliest due time) as last counted.
    pub fn queue_state(&self) -> Option<(u64, Option<i64>)> {
        *self.queue.lock()
    }

    fn timeout_for(&self, receiver: &str) -> Duration {
        self.opts
            .receiver_timeouts
            .get(receiver)
            .copied()
            .unwrap_or(self.opts.timeout)
    }

    /// Renders and stores `n` for every integration of its receiver;
    /// returns the new row ids. Integrations without `send_resolved` get
    /// only the firing alerts, and nothing when none fire.
    pub fn enqueue_notification(&self, n: &Notification) -> Result<Vec<i64>, StoreError> {
        Ok(self.enqueue_logged(n, None)?.0)
    }

    /// [`Outbox::enqueue_notification`], storing `log` (the dispatcher's
    /// notification log entry) in the same transaction; the flag says
    /// whether it was stored (not for an unknown receiver).
    pub fn enqueue_logged(
        &self,
        n: &Notification,
        log: Option<&crate::store::notify_log::LogEntry>,
    ) -> Result<(Vec<i64>, bool), StoreError> {
        let live = self.config.read().clone();
        let Some(r) = live.receivers.get(&n.receiver) else {
            tracing::warn!(receiver = %n.receiver, alerts = %n.alert_names(), "outbox: notification for an unknown receiver dropped");
            return Ok((vec![], false));
        };
        if r.integrations.is_empty() {
            // Nothing to send, but the group is still logged as notified
            // below, so it is not flushed again every group_interval.
            tracing::info!(receiver = %n.receiver, alerts = %n.alert_names(), "notification for a receiver without integrations: not sent");
        }
        let deadline = n.created_at + self.opts.deadline.as_millis() as i64;
        let mut rows = Vec::new();
        for (idx, integ) in r.integrations.iter().enumerate() {
            let filtered;
            let n = if integ.send_resolved() {
                n
            } else {
                let firing: Vec<_> = n
                    .alerts
                    .iter()
                    .filter(|a| !a.resolved_at(n.created_at))
                    .cloned()
                    .collect();
                if firing.is_empty() {
                    continue;
                }
                filtered = Notification {
                    alerts: firing,
                    ..n.clone()
                };
                &filtered
            };
            let mut names: Vec<String> = n
                .alerts
                .iter()
                .filter_map(|a| a.labels.get("alertname").map(str::to_string))
                .collect();
            names.sort();
            names.dedup();
            let firing = n
                .alerts
                .iter()
                .filter(|a| alert_status(a, n.created_at) == "firing")
                .count();
            let (payload, error) = match render(integ, n, &live.templates) {
                Ok(p) => (serde_json::to_string(&p).unwrap_or_default(), None),
                Err(e) => (String::new(), Some(e.to_string())),
            };
            if let Some(e) = &error {
                tracing::error!(receiver = %r.name, integration = integ.kind(), error = %e, "outbox: rendering notification failed");
            }
            rows.push((
                NewDelivery {
                    receiver: r.name.clone(),
                    integration: integ.kind().to_string(),
                    integration_index: idx,
                    group_key: n.group_key.clone(),
                    alertnames: names,
                    firing,
                    resolved: n.alerts.len() - firing,
                    payload,
                    created_at: n.created_at,
                    deadline_at: deadline,
                    unsendable: error.is_some(),
                },
                error,
            ));
        }
        let (news, errors): (Vec<NewDelivery>, Vec<Option<String>>) = rows.into_iter().unzip();
        // First attempts start right here, claimed in the insert's commit,
        // unless deliveries are held or there is no runtime to run them on
        // (the worker then picks the rows up).
        let held = self.hold.as_ref().is_some_and(|m| m.is_on()) || !self.store.is_leader();
        let rt = tokio::runtime::Handle::try_current().ok().filter(|_| !held);
        let (ids, claimed) =
            self.store
                .insert_deliveries_logged(&news, rt.as_ref().map(|_| now_millis()), log)?;
        if let (Some(rt), Some(me)) = (&rt, self.me.upgrade()) {
            for d in claimed {
                rt.spawn(me.clone().attempt(d));
            }
        }
        // A payload that cannot be rendered will not render on retry either;
        // its row was written claimed, so nothing sent it meanwhile.
        for (id, err) in ids.iter().zip(&errors) {
            if let Some(e) = err {
                self.store.finish_delivery_attempt(
                    *id,
                    now_millis(),
                    0,
                    &Outcome::Failed {
                        error: e.clone(),
                        reason: "template".into(),
                    },
                )?;
            }
        }
        self.queue_changed();
        self.wake.notify_one();
        Ok((ids, log.is_some()))
    }

    fn client(
        &self,
        receiver: &str,
        idx: usize,
        integ: &Integration,
    ) -> Result<reqwest::Client, SendError> {
        let key = (receiver.to_string(), idx);
        if let Some(c) = self.clients.lock().get(&key) {
            return Ok(c.clone());
        }
        let (http, proxy) = integ
            .http_parts()
            .ok_or_else(|| SendError::permanent("config", "no HTTP client for email"))?;
        let c =
            receivers::http_client(http, proxy).map_err(|e| SendError::permanent("config", e))?;
        self.clients.lock().insert(key, c.clone());
        Ok(c)
    }

    /// One attempt at sending a stored row.
    async fn send_row(&self, d: &Delivery) -> Result<(), SendError> {
        let live = self.config.read().clone();
        let integ = live
            .receivers
            .get(&d.receiver)
            .and_then(|r| r.integrations.get(d.integration_index))
            .filter(|i| i.kind() == d.integration)
            .ok_or_else(|| {
                SendError::permanent(
                    "config",
                    format!(
                        "receiver {:?} has no {} integration #{} in the current config",
                        d.receiver, d.integration, d.integration_index
                    ),
                )
            })?;
        let payload: Payload = serde_json::from_str(&d.payload).map_err(|e| {
            SendError::permanent("payload", format!("stored payload unreadable: {e}"))
        })?;
        let timeout = self.timeout_for(&d.receiver);
        match integ {
            Integration::Email(c) => email::send(c, &payload, timeout).await,
            other => {
                let client = self.client(&d.receiver, d.integration_index, other)?;
                receivers::send_http(other, &payload, &client, timeout, &idempotency_key(d)).await
            }
        }
    }

    /// Backoff before attempt `attempts + 1` (see [`retry_delay`]), seeded
    /// by the clock and the row so rows failing together spread out.
    fn backoff(&self, attempts: u32, id: i64) -> Duration {
        let seed = (now_millis() as u64)
            .wrapping_mul(6364136223846793005)
            .wrapping_add(id as u64)
            .rotate_left(17);
        retry_delay(
            self.opts.initial_backoff,
            self.opts.max_backoff,
            attempts,
            seed,
        )
    }

    /// Puts a claimed row back to wait for its endpoint's cooldown; no
    /// attempt is recorded and the row's deadline does not fail it.
    async fn defer(&self, d: &Delivery, until: i64) {
        let (id, store) = (d.id, self.store.clone());
        let r = tokio::task::spawn_blocking(move || store.defer_delivery(id, now_millis(), until))
            .await;
        if !matches!(r, Ok(Ok(_))) {
            tracing::error!(id, "outbox: deferring a delivery failed");
        }
        self.queue_changed();
        self.wake.notify_one();
    }

    /// The breaker's view of an attempt's result: events and logs when it
    /// opens or closes.
    fn breaker_saw(&self, d: &Delivery, res: &Result<(), SendError>) {
        // A row that cannot be sent by any endpoint (config, payload) says
        // nothing about the endpoint.
        let counts = match res {
            Ok(()) => true,
            Err(e) => !matches!(e.reason, "config" | "payload" | "template"),
        };
        if !counts {
            // A probe that said nothing lets the next row probe.
            if let Some(ep) = self
                .breakers
                .endpoints
                .lock()
                .get_mut(&(d.receiver.clone(), d.integration_index))
            {
                ep.probing = false;
            }
            return;
        }
        let now = now_millis();
        let (opened, closed) = self.breakers.record(d, res.is_ok(), now);
        let publish = |outcome: &str, until: Option<i64>| {
            if let Some(ev) = self.events.as_ref() {
                ev.publish_later(
                    crate::events::KIND_AUTOHEAL,
                    serde_json::json!({
                        "outcome": outcome,
                        "receiver": d.receiver,
                        "integration": d.integration,
                        "integration_index": d.integration_index,
                        "until_ms": until,
                    }),
                );
            }
        };
        if let Some(until) = opened {
            tracing::warn!(receiver = %d.receiver, integration = %d.integration, until = %crate::model::time::rfc3339_millis(until), "receiver endpoint in cooldown after consecutive failures; its notifications wait");
            publish("endpoint_cooldown", Some(until));
        } else if closed {
            tracing::info!(receiver = %d.receiver, integration = %d.integration, "receiver endpoint recovered");
            publish("endpoint_recovered", None);
        }
    }

    /// Sends a row's payload once, counting the attempt (latency, total,
    /// failures by reason) for an attempt and a replay alike.
    async fn send_measured(&self, d: &Delivery) -> (Result<(), SendError>, Duration) {
        let t0 = Instant::now();
        let res = self.send_row(d).await;
        let took = t0.elapsed();
        self.metrics
            .latency
            .with(&[&d.integration])
            .observe(took.as_secs_f64());
        self.metrics
            .total
            .with(&[&d.receiver, &d.integration])
            .inc();
        if let Err(e) = &res {
            self.metrics
                .failed
                .with(&[&d.receiver, &d.integration, e.reason])
                .inc();
        }
        (res, took)
    }

    async fn attempt(self: Arc<Self>, d: Delivery) {
        if let Gate::Defer(until) = self.breakers.gate(&d, now_millis()) {
            self.defer(&d, until).await;
            return;
        }
        let at = now_millis();
        let (res, took) = self.send_measured(&d).await;
        self.breaker_saw(&d, &res);
        let outcome = match res {
            Ok(()) => {
                tracing::debug!(id = d.id, receiver = %d.receiver, integration = %d.integration, "notification delivered");
                Outcome::Success
            }
            Err(e) => {
                let now = now_millis();
                let next_at = now
                    + e.retry_after
                        .unwrap_or_else(|| self.backoff(d.attempts, d.id))
                        .as_millis() as i64;
                if e.retry && next_at <= d.deadline_at {
                    tracing::warn!(id = d.id, receiver = %d.receiver, integration = %d.integration, attempt = d.attempts + 1, error = %e.message, "notification attempt failed; retrying");
                    Outcome::Retry {
                        error: e.message,
                        reason: e.reason.into(),
                        next_at,
                    }
                } else {
                    let error = if e.retry {
                        format!("{} (retry deadline reached)", e.message)
                    } else {
                        e.message
                    };
                    tracing::error!(id = d.id, receiver = %d.receiver, integration = %d.integration, error = %error, "notification failed");
                    Outcome::Failed {
                        error,
                        reason: e.reason.into(),
                    }
                }
            }
        };
        if let Some(ev) = self.events.as_ref() {
            let (result, error) = match &outcome {
                Outcome::Success => ("sent", None),
                Outcome::Retry { error, .. } => ("retrying", Some(error.clone())),
                Outcome::Failed { error, .. } => ("failed", Some(error.clone())),
            };
            ev.publish_later(
                crate::events::KIND_NOTIFICATION,
                serde_json::json!({
                    "delivery_id": d.id,
                    "receiver": d.receiver,
                    "integration": d.integration,
                    "group_key": d.group_key,
                    "attempt": d.attempts + 1,
                    "result": result,
                    "error": error,
                }),
            );
        }
        // Recorded at once, ahead of other store writes (see
        // `Store::finish_delivery_attempt`): the shorter the time between
        // the receiver's answer and this commit, the fewer repeats a crash
        // can cause.
        let id = d.id;
        let dur = took.as_millis() as i64;
        let store = self.store.clone();
        let r = tokio::task::spawn_blocking(move || {
            store.finish_delivery_attempt(id, at, dur, &outcome)
        })
        .await;
        self.queue_changed();
        match r {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(id, error = %e, "outbox: recording attempt failed"),
            Err(e) => tracing::error!(id, error = %e, "outbox: recording attempt failed"),
        }
        // The worker plans its next round from the rows' due times: a retry
        // scheduled here, or a row that waited for this one, needs it awake.
        self.wake.notify_one();
    }

    /// Re-sends a stored row's payload now and records the attempt (the
    /// row's retry state is left alone; a failed row that now succeeds is
    /// marked delivered).
    pub async fn replay(&self, id: i64) -> Result<Delivery, OutboxError> {
        let d = self
            .store
            .call(move |s| s.get_delivery(id))
            .await?
            .ok_or(OutboxError::NotFound(id))?;
        if d.payload.is_empty() {
            return Err(OutboxError::Send {
                id,
                msg: "no payload stored (rendering had failed)".into(),
            });
        }
        let at = now_millis();
        let (res, took) = self.send_measured(&d).await;
        let err = res.err().map(|e| e.message);
        let took = took.as_millis() as i64;
        let d = self
            .store
            .call(move |s| {
                s.record_replay_attempt(id, at, took, err.as_deref())?;
                s.get_delivery(id)
            })
            .await?
            .ok_or(OutboxError::NotFound(id));
        self.queue_changed();
        d
    }
}

impl NotificationSink for Outbox {
    fn enqueue(&self, n: Notification) {
        let _ = self.try_enqueue(n);
    }

    fn try_enqueue(&self, n: Notification) -> Result<(), crate::notify::EnqueueError> {
        self.enqueue_logged(&n, None)
            .map(drop)
            .map_err(|e| enqueue_failed(&n, e))
    }

    fn try_enqueue_logged(
        &self,
        n: Notification,
        log: &crate::store::notify_log::LogEntry,
    ) -> Result<bool, crate::notify::EnqueueError> {
        self.enqueue_logged(&n, Some(log))
            .map(|(_, logged)| logged)
            .map_err(|e| enqueue_failed(&n, e))
    }
}

/// Nothing was written: the dispatcher's next flush sends the group again.
fn enqueue_failed(n: &Notification, e: StoreError) -> crate::notify::EnqueueError {
    tracing::error!(receiver = %n.receiver, group = %n.group_key, error = %e, "outbox: storing notification failed; retrying at the next group_interval");
    e.into()
}

/// The `Idempotency-Key` of a stored notification: fixed when the row is
/// written (its id, creation time and group), so retries and a resend after
/// a restart carry the same key, and two rows never share one.
pub fn idempotency_key(d: &Delivery) -> String {
    let mut h: u64 = 14_695_981_039_346_656_037;
    for b in d.receiver.bytes().chain(d.group_key.bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(1_099_511_628_211);
    }
    format!(
        "klaxon-{}-{}-{}-{:016x}",
        d.id, d.integration_index, d.created_at, h
    )
}

/// The payload of `n` for one integration.
/// The wait before attempt `attempts + 1`: `initial × 2^attempts`, capped at
/// `max`, times a jitter in [50%, 100%] drawn from `seed`, so receivers
/// recovering from an outage are not hit by every sender at once.
fn retry_delay(initial: Duration, max: Duration, attempts: u32, seed: u64) -> Duration {
    let base = initial.as_millis() as u64;
    let max = max.as_millis() as u64;
    let exp = base.saturating_mul(1u64 << attempts.min(30)).min(max);
    let frac = 500 + seed % 501; // per mille
    Duration::from_millis(exp * frac / 1000)
}

pub fn render(
    integ: &Integration,
    n: &Notification,
    set: &TemplateSet,
) -> Result<Payload, receivers::RenderError> {
    receivers::render(integ, n, set)
}

/// Claims and sends due rows until the outbox is dropped.
async fn worker(weak: Weak<Outbox>, wake: Arc<Notify>) {
    loop {
        let notified = wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let Some(ob) = weak.upgrade() else { return };
        let hold = ob.hold.clone();
        if let Some(m) = hold.filter(|m| m.is_on()) {
            drop(ob);
            tokio::select! {
                _ = &mut notified => {}
                _ = m.wait_until_off() => {}
            }
            continue;
        }
        // HA: only the leader claims; a follower waits to be elected.
        if !ob.store.is_leader() {
            let mut role = ob.store.leader_watch();
            drop(ob);
            tokio::select! {
                _ = &mut notified => {}
                _ = role.wait_for(|l| *l) => {}
            }
            continue;
        }
        let store = ob.store.clone();
        let batch = ob.opts.batch;
        let now = now_millis();
        let claimed = tokio::task::spawn_blocking(move || {
            let rows = store.claim_due_deliveries(now, batch)?;
            let next = if rows.is_empty() {
                store.next_delivery_due()?
            } else {
                None
            };
            Ok::<_, StoreError>((rows, next))
        })
        .await;
        let (rows, next) = match claimed {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "outbox: reading due deliveries failed");
                // Try again soon rather than wait a minute on a store error.
                (vec![], Some(now_millis() + 1000))
            }
            Err(_) => (vec![], None),
        };
        if rows.is_empty() {
            drop(ob);
            let wait = match next {
                Some(t) => Duration::from_millis((t - now_millis()).clamp(1, 60_000) as u64),
                None => Duration::from_secs(60),
            };
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep(wait) => {}
            }
            continue;
        }
        let mut set = tokio::task::JoinSet::new();
        for d in rows {
            set.spawn(ob.clone().attempt(d));
        }
        drop(ob);
        while set.join_next().await.is_some() {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_grows_is_capped_and_jittered() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_millis(1000));
        for attempts in 0..40u32 {
            let exp = (100u64 << attempts.min(30)).min(1000);
            let mut seen = std::collections::BTreeSet::new();
            for seed in 0..2000u64 {
                let d = retry_delay(initial, max, attempts, seed.wrapping_mul(0x9e37_79b9));
                let ms = d.as_millis() as u64;
                assert!(
                    ms * 2 >= exp && ms <= exp,
                    "attempt {attempts}: {ms} ms of {exp}"
                );
                seen.insert(ms);
            }
            assert!(seen.len() > 10, "attempt {attempts}: no jitter: {seen:?}");
        }
        // The extremes of the jitter range are reachable.
        assert_eq!(retry_delay(initial, max, 0, 0), Duration::from_millis(50));
        assert_eq!(
            retry_delay(initial, max, 0, 500),
            Duration::from_millis(100)
        );
        // Exponential until the cap: the lowest delay of attempt n+1 is the
        // highest of attempt n while below the cap.
        assert_eq!(retry_delay(initial, max, 1, 0), Duration::from_millis(100));
        assert_eq!(
            retry_delay(initial, max, 3, 500),
            Duration::from_millis(800)
        );
        assert_eq!(
            retry_delay(initial, max, 4, 500),
            Duration::from_millis(1000)
        );
    }
}
