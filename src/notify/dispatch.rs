//! The dispatcher: Alertmanager's alert store, aggregation groups and
//! notification pipeline in one place.
//!
//! Alerts (from rules through [`AlertSink`], from `POST /api/v2/alerts`
//! through [`Dispatcher::ingest`]) are merged by fingerprint into the alert
//! store, then inserted into one aggregation group per matching route and
//! group-label set. Each group runs its own timer task: first flush after
//! `group_wait` (at once when an alert is already older than that), then every
//! `group_interval`. A flush runs the group's alerts through the stages of
//! `notify::stage`: it drops muted alerts (time intervals, inhibition,
//! silences) and consults the notification log: a [`Notification`] goes to
//! the [`NotificationSink`] only when the firing set grew, alerts resolved, or
//! `repeat_interval` passed since the last one. The log is persisted in the
//! store, so a restart neither loses nor repeats a page.

use crate::model::{Labels, Timestamp};
use crate::notify::config::NotifyConfig;
use crate::notify::inhibit::Inhibitor;
use crate::notify::route::Route;
use crate::notify::silence::Silences;
use crate::notify::stage;
use crate::notify::{Alert, AlertSink, Notification, NotificationSink};
use crate::store::Store;
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

/// The default of `--alerts.max`, the bound on the alerts held.
pub const DEFAULT_MAX_ALERTS: usize = 100_000;

// The API's time format (RFC 3339 in UTC with milliseconds) and the
// Alertmanager fingerprint live in `model`; re-exported for the API.
pub use crate::model::alert::fingerprint;
pub use crate::model::time::{parse_rfc3339, rfc3339_millis as rfc3339};

/// `{a="1", b="2"}` as Alertmanager prints group labels in a group key.
pub fn labelset_string(l: &Labels) -> String {
    let parts: Vec<String> = l
        .iter()
        .map(|x| format!("{}={}", x.name, crate::model::gofmt::go_quote(&x.value)))
        .collect();
    format!("{{{}}}", parts.join(", "))
}

/// An alert as the store keeps it: `ends_at` always set (from the sender or
/// `resolve_timeout`), with whether it came from the timeout.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredAlert {
    pub alert: Alert,
    pub fingerprint: u64,
    /// `ends_at` was not given by the sender.
    pub timeout: bool,
}

impl StoredAlert {
    fn ends(&self) -> Timestamp {
        self.alert.ends_at.unwrap_or(i64::MAX)
    }

    pub fn resolved_at(&self, now: Timestamp) -> bool {
        self.ends() <= now
    }

    /// Alertmanager's `Alert.Merge`: the younger update wins, the earliest
    /// start is kept, and an explicit end beats one from the timeout.
    fn merge(&self, newer: &StoredAlert, now: Timestamp) -> StoredAlert {
        let (a, o) = if newer.alert.updated_at < self.alert.updated_at {
            (newer, self)
        } else {
            (self, newer)
        };
        let mut res = o.clone();
        res.alert.starts_at = a.alert.starts_at.min(o.alert.starts_at);
        if o.resolved_at(now) {
            if a.resolved_at(now) && a.ends() > o.ends() {
                res.alert.ends_at = a.alert.ends_at;
            }
        } else if a.ends() > o.ends() && !a.timeout {
            res.alert.ends_at = a.alert.ends_at;
            res.timeout = false;
        }
        res
    }
}

/// Settings a group needs from its route (copied: the tree stays immutable).
#[derive(Clone, Debug)]
struct RouteOpts {
    receiver: String,
    group_wait: Duration,
    group_interval: Duration,
    repeat_interval: Duration,
    mute_time_intervals: Vec<String>,
    active_time_intervals: Vec<String>,
}

impl RouteOpts {
    fn of(r: &Route) -> RouteOpts {
        RouteOpts {
            receiver: r.receiver.clone(),
            group_wait: r.group_wait,
            group_interval: r.group_interval,
            repeat_interval: r.repeat_interval,
            mute_time_intervals: r.mute_time_intervals.clone(),
            active_time_intervals: r.active_time_intervals.clone(),
        }
    }
}

struct AggrGroup {
    route: RouteOpts,
    labels: Labels,
    key: String,
    alerts: Mutex<HashMap<u64, StoredAlert>>,
    has_flushed: AtomicBool,
    /// Set when a config reload replaced the groups: the task ends without
    /// flushing (the new group for the same alerts takes over).
    stopped: AtomicBool,
    /// Held while the group flushes; a reload takes it after `stopped` is
    /// set, so the old group's last flush (and its notification log entry)
    /// is complete before the new group for the same key checks the log.
    flushing: Mutex<()>,
    wake: tokio::sync::Notify,
}

/// A group as the API lists it.
#[derive(Clone, Debug)]
pub struct GroupView {
    pub labels: Labels,
    pub receiver: String,
    pub key: String,
    pub alerts: Vec<StoredAlert>,
}

/// Tunables; defaults as Alertmanager's.
#[derive(Clone)]
pub struct DispatcherOptions {
    /// Base URL of klaxon, for links in notifications.
    pub external_url: String,
    /// Where the notification log and silences persist; `None` = memory only.
    pub store: Option<Arc<Store>>,
    /// How often resolved alerts, old silences and log entries are dropped.
    pub gc_interval: Duration,
    /// How long a notification log entry is kept.
    pub nflog_retention: Duration,
    /// Whether a receiver wants resolved notifications (its integrations'
    /// `send_resolved`; set by the delivery stage). Default: yes.
    pub send_resolved: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    /// Where `alert` events (an alert starts firing or resolves) go.
    pub events: Option<crate::events::Events>,
}

impl Default for DispatcherOptions {
    fn default() -> Self {
        DispatcherOptions {
            external_url: String::new(),
            store: None,
            gc_interval: Duration::from_secs(30 * 60),
            nflog_retention: Duration::from_secs(120 * 3600),
            send_resolved: Arc::new(|_| true),
            events: None,
        }
    }
}

/// Why a dispatcher could not start.
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("loading silences: {0}")]
    Silences(#[from] crate::notify::silence::SilenceError),
    #[error("loading the notification log: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// What a config reload replaces, swapped as one snapshot.
struct Live {
    cfg: Arc<NotifyConfig>,
    inhibitor: Inhibitor,
    /// Whether a receiver wants resolved notifications (see
    /// [`DispatcherOptions::send_resolved`]).
    send_resolved: Arc<dyn Fn(&str) -> bool + Send + Sync>,
}

pub struct Dispatcher {
    live: RwLock<Arc<Live>>,
    sink: RwLock<Arc<dyn NotificationSink>>,
    silences: Arc<Silences>,
    alerts: RwLock<HashMap<u64, StoredAlert>>,
    /// (route address, group labels fingerprint) → group.
    groups: Mutex<HashMap<(usize, u64), Arc<AggrGroup>>>,
    nflog: stage::NotifyLog,
    opts: DispatcherOptions,
    rt: tokio::runtime::Handle,
    me: Weak<Dispatcher>,
}

/// The configuration used without a notify section: every alert in one
/// group for a receiver named `default`, which the logging sink reports.
pub fn default_config() -> Arc<NotifyConfig> {
    let text = "route:\n  receiver: default\nreceivers:\n- name: default\n";
    match crate::notify::config::load_str(text, "<default notify>", None) {
        Ok(c) => Arc::new(c),
        // The text above is fixed and valid; keep a usable fallback anyway.
        Err(_) => Arc::new(NotifyConfig {
            global: Default::default(),
            route: Route {
                receiver: "default".into(),
                key: "{}".into(),
                group_wait: Duration::from_secs(30),
                group_interval: Duration::from_secs(300),
                repeat_interval: Duration::from_secs(4 * 3600),
                ..Default::default()
            },
            inhibit_rules: vec![],
            time_intervals: Default::default(),
            templates: vec![],
            receivers: vec![],
            original: text.into(),
            source_file: None,
        }),
    }
}

/// A [`NotificationSink`] that only logs: what runs until a delivery stage
/// is configured.
pub struct LoggingSink;

impl NotificationSink for LoggingSink {
    fn enqueue(&self, n: Notification) {
        let firing = n.alerts.iter().filter(|a| a.ends_at.is_none()).count();
        tracing::info!(
            receiver = %n.receiver,
            group_key = %n.group_key,
            firing,
            resolved = n.alerts.len() - firing,
            alerts = %n.alert_names(),
            "notification (no notify config: logged, not sent)"
        );
    }
}

impl Dispatcher {
    /// Builds a dispatcher and its garbage-collection task; must be called
    /// inside a Tokio runtime (groups run as tasks on it).
    pub fn new(
        cfg: Arc<NotifyConfig>,
        sink: Arc<dyn NotificationSink>,
        opts: DispatcherOptions,
    ) -> Result<Arc<Dispatcher>, DispatchError> {
        let silences = Arc::new(Silences::new(opts.store.clone())?);
        let now = crate::model::now_millis();
        let mut nflog = HashMap::new();
        if let Some(st) = &opts.store {
            crate::store::notify_log::gc(st, now)?;
            for e in crate::store::notify_log::load_live(st, now)? {
                nflog.insert((e.receiver.clone(), e.group_key.clone()), e);
            }
        }
        let rt = tokio::runtime::Handle::current();
        let d = Arc::new_cyclic(|me| Dispatcher {
            live: RwLock::new(Arc::new(Live {
                inhibitor: Inhibitor::new(cfg.inhibit_rules.clone()),
                send_resolved: opts.send_resolved.clone(),
                cfg,
            })),
            sink: RwLock::new(sink),
            silences,
            alerts: RwLock::new(HashMap::new()),
            groups: Mutex::new(HashMap::new()),
            nflog: Mutex::new(nflog),
            opts,
            rt,
            me: me.clone(),
        });
        if d.opts.store.as_ref().is_some_and(|s| s.is_shared()) {
            // HA pair: silences made on the other replica, within 5 s.
            let weak = Arc::downgrade(&d.silences);
            d.rt.spawn(async move {
                loop {
                    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                    let Some(s) = weak.upgrade() else { return };
                    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || s.reload()).await {
                        tracing::warn!(error = %e, "reloading silences from the store");
                    }
                }
            });
        }
        if let Some(st) = &d.opts.store {
            let mut n = 0;
            for body in crate::store::posted::load_all(st)? {
                match posted_from_json(&body) {
                    Some(sa) => {
                        d.restore(sa, now);
                        n += 1;
                    }
                    None => tracing::warn!("skipping an unreadable stored alert"),
                }
            }
            if n > 0 {
                tracing::info!(alerts = n, "restored alerts posted before the restart");
            }
        }
        let weak = Arc::downgrade(&d);
        let every = d.opts.gc_interval;
        d.rt.spawn(async move {
            let mut t = tokio::time::interval(every);
            t.tick().await;
            loop {
                t.tick().await;
                let Some(d) = weak.upgrade() else { return };
                // Touches the store: off the async workers.
                let _ = tokio::task::spawn_blocking(move || d.gc(crate::model::now_millis())).await;
            }
        });
        Ok(d)
    }

    /// Replaces where flushed notifications go (the delivery stage's outbox,
    /// or a test's collector), keeping alerts, groups and the log.
    pub fn set_sink(&self, sink: Arc<dyn NotificationSink>) {
        *self.sink.write() = sink;
    }

    /// The routing configuration in force.
    pub fn config(&self) -> Arc<NotifyConfig> {
        self.live.read().cfg.clone()
    }

    fn live(&self) -> Arc<Live> {
        self.live.read().clone()
    }

    /// Applies a reloaded configuration the way Alertmanager does: alerts,
    /// silences and the notification log are kept; the aggregation groups
    /// are rebuilt under the new routes (a group's alerts older than its
    /// `group_wait` flush at once, and the log keeps an unchanged group
    /// from notifying again); inhibition starts over from the stored alerts.
    pub fn apply_config(
        &self,
        cfg: Arc<NotifyConfig>,
        send_resolved: Arc<dyn Fn(&str) -> bool + Send + Sync>,
    ) {
        let now = crate::model::now_millis();
        let live = Arc::new(Live {
            inhibitor: Inhibitor::new(cfg.inhibit_rules.clone()),
            cfg,
            send_resolved,
        });
        // Swapped under the groups lock, which `route_alert` holds while it
        // reads the routes: no group keyed by the old tree is added after
        // the old groups are taken out.
        let old = {
            let mut groups = self.groups.lock();
            *self.live.write() = live.clone();
            std::mem::take(&mut *groups)
        };
        for g in old.into_values() {
            g.stopped.store(true, Ordering::Release);
            g.wake.notify_one();
            // Waits for a flush in progress; none starts after this.
            drop(g.flushing.lock());
        }
        // Read after the swap: an alert ingested meanwhile is either here or
        // observed and routed by `ingest` under the new snapshot.
        let alerts: Vec<StoredAlert> = self.alerts.read().values().cloned().collect();
        for sa in alerts {
            live.inhibitor
                .observe(sa.fingerprint, &sa.alert.labels, sa.alert.ends_at);
            self.route_alert(sa, now);
        }
    }

    pub fn silences(&self) -> &Arc<Silences> {
        &self.silences
    }

    /// Takes alerts as `POST /api/v2/alerts` does: a missing start is now
    /// (or the end when only that is given), a missing end is now +
    /// `resolve_timeout`.
    /// Returns the merged states, as [`persist_posted`] stores them.
    pub fn ingest(&self, alerts: Vec<Alert>, now: Timestamp) -> Vec<StoredAlert> {
        let resolve = self.live().cfg.global.resolve_timeout.as_millis() as i64;
        let mut merged = Vec::with_capacity(alerts.len());
        for mut a in alerts {
            if a.starts_at == 0 {
                a.starts_at = a.ends_at.filter(|e| *e != 0).unwrap_or(now);
            }
            let timeout = a.ends_at.is_none_or(|e| e == 0);
            if timeout {
                a.ends_at = Some(now + resolve);
            }
            a.updated_at = now;
            let fp = fingerprint(&a.labels);
            let mut sa = StoredAlert {
                alert: a,
                fingerprint: fp,
                timeout,
            };
            let was_active = {
                let mut store = self.alerts.write();
                let was_active = store.get(&fp).map(|old| !old.resolved_at(now));
                if let Some(old) = store.get(&fp) {
                    let (s, e) = (old.alert.starts_at, old.ends());
                    let (ns, ne) = (sa.alert.starts_at, sa.ends());
                    if (ne > s && ne < e) || (ns > s && ns < e) {
                        sa = old.merge(&sa, now);
                    }
                }
                store.insert(fp, sa.clone());
                was_active
            };
            let active = !sa.resolved_at(now);
            if was_active != Some(active) && (active || was_active.is_some()) {
                self.publish_state(&sa, active);
            }
            // A fresh snapshot, taken after the store insert (see
            // `apply_config`).
            self.live()
                .inhibitor
                .observe(fp, &sa.alert.labels, sa.alert.ends_at);
            merged.push(sa.clone());
            self.route_alert(sa, now);
        }
        merged
    }

    /// Splits `alerts` into those the store can take with at most `max`
    /// alerts held (updates of held alerts always fit) and the number
    /// refused. `max` 0: no limit.
    pub fn admit(&self, alerts: Vec<Alert>, max: usize) -> (Vec<Alert>, usize) {
        if max == 0 {
            return (alerts, 0);
        }
        let held = self.alerts.read();
        let mut room = max.saturating_sub(held.len());
        let mut refused = 0;
        let mut seen = HashSet::new();
        let kept = alerts
            .into_iter()
            .filter(|a| {
                let fp = fingerprint(&a.labels);
                if held.contains_key(&fp) || !seen.insert(fp) {
                    return true;
                }
                if room == 0 {
                    refused += 1;
                    return false;
                }
                room -= 1;
                true
            })
            .collect();
        (kept, refused)
    }

    /// Where posted alerts, silences and the log persist (`None`: memory).
    pub fn store(&self) -> Option<&Arc<Store>> {
        self.opts.store.as_ref()
    }

    /// Puts back an alert stored by [`persist_posted`] (at start).
    fn restore(&self, sa: StoredAlert, now: Timestamp) {
        self.alerts.write().insert(sa.fingerprint, sa.clone());
        self.live()
            .inhibitor
            .observe(sa.fingerprint, &sa.alert.labels, sa.alert.ends_at);
        self.route_alert(sa, now);
    }

    /// An `alert` event for the operations stream: this alert started
    /// firing (or came back) or resolved.
    fn publish_state(&self, sa: &StoredAlert, firing: bool) {
        let Some(ev) = &self.opts.events else { return };
        let labels = sa.alert.labels.to_json();
        ev.publish_later(
            crate::events::KIND_ALERT,
            serde_json::json!({
                "fingerprint": format!("{:016x}", sa.fingerprint),
                "status": if firing { "firing" } else { "resolved" },
                "labels": labels,
                "startsAt": rfc3339(sa.alert.starts_at),
            }),
        );
    }

    fn route_alert(&self, sa: StoredAlert, now: Timestamp) {
        let mut groups = self.groups.lock();
        let live = self.live();
        let routes = live.cfg.route.match_labels(&sa.alert.labels);
        for r in routes {
            let glabels = r.group_by.group_labels(&sa.alert.labels);
            let id = (r as *const Route as usize, fingerprint(&glabels));
            let (g, new) = match groups.get(&id) {
                Some(g) => (g.clone(), false),
                None => {
                    let g = Arc::new(AggrGroup {
                        route: RouteOpts::of(r),
                        key: format!("{}:{}", r.key, labelset_string(&glabels)),
                        labels: glabels,
                        alerts: Mutex::new(HashMap::new()),
                        has_flushed: AtomicBool::new(false),
                        stopped: AtomicBool::new(false),
                        flushing: Mutex::new(()),
                        wake: tokio::sync::Notify::new(),
                    });
                    groups.insert(id, g.clone());
                    (g, true)
                }
            };
            g.alerts.lock().insert(sa.fingerprint, sa.clone());
            // Started once it holds the alert: with group_wait 0 it flushes
            // at once, and an empty first flush would notify nothing.
            if new {
                self.spawn_group(id, g.clone());
            }
            // An alert older than group_wait needs no more waiting.
            if !g.has_flushed.load(Ordering::Acquire)
                && sa.alert.starts_at + (g.route.group_wait.as_millis() as i64) < now
            {
                g.wake.notify_one();
            }
        }
    }

    fn spawn_group(&self, id: (usize, u64), g: Arc<AggrGroup>) {
        let me = self.me.clone();
        self.rt.spawn(async move {
            let mut next = tokio::time::Instant::now() + g.route.group_wait;
            loop {
                // A due deadline (group_wait 0) flushes now: a timer would
                // round up to the next millisecond tick.
                if next > tokio::time::Instant::now() {
                    tokio::select! {
                        _ = tokio::time::sleep_until(next) => {}
                        _ = g.wake.notified() => {}
                    }
                }
                if g.stopped.load(Ordering::Acquire) {
                    return;
                }
                next = tokio::time::Instant::now() + g.route.group_interval;
                g.has_flushed.store(true, Ordering::Release);
                let Some(d) = me.upgrade() else { return };
                let g2 = g.clone();
                let d2 = d.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    let _flushing = g2.flushing.lock();
                    if !g2.stopped.load(Ordering::Acquire) {
                        d2.flush(&g2, crate::model::now_millis());
                    }
                })
                .await;
                if d.remove_if_empty(id, &g) {
                    return;
                }
            }
        });
    }

    fn remove_if_empty(&self, id: (usize, u64), g: &Arc<AggrGroup>) -> bool {
        let mut groups = self.groups.lock();
        if g.alerts.lock().is_empty() {
            groups.remove(&id);
            true
        } else {
            false
        }
    }

    /// Ids of the silences muting `labels` and fingerprints of the alerts
    /// inhibiting it, at `now`.
    pub fn mute_status(&self, labels: &Labels, now: Timestamp) -> (Vec<String>, Vec<u64>) {
        (
            self.silences.mutes(labels, now),
            self.live().inhibitor.inhibited_by(labels, now),
        )
    }

    /// One flush of a group: its alerts through the stages of
    /// [`crate::notify::stage`], then the resolved ones forgotten (unless
    /// the notification could not be stored: the retry at the next
    /// group_interval must still tell the receiver).
    fn flush(&self, g: &AggrGroup, now: Timestamp) {
        let mut snapshot: Vec<StoredAlert> = g.alerts.lock().values().cloned().collect();
        sort_alerts(&mut snapshot);
        let alerts: Vec<Alert> = snapshot
            .iter()
            .map(|a| {
                let mut x = a.alert.clone();
                // Alerts do not resolve as time moves on during delivery.
                if !a.resolved_at(now) {
                    x.ends_at = None;
                }
                x
            })
            .collect();
        let live = self.live();
        let sink = self.sink.read().clone();
        let store = self.opts.store.as_ref();
        let receiver = &g.route.receiver;
        let time_mute = stage::TimeMute {
            intervals: &live.cfg.time_intervals,
            mute: &g.route.mute_time_intervals,
            active: &g.route.active_time_intervals,
        };
        let mute = stage::Mute {
            silences: &self.silences,
            inhibitor: &live.inhibitor,
        };
        let leader = stage::LeaderGate::of(store);
        let dedup = stage::Dedup {
            nflog: &self.nflog,
            shared: store.filter(|s| s.is_shared()),
            send_resolved: (live.send_resolved)(receiver),
            repeat_interval: g.route.repeat_interval,
            retention: self.opts.nflog_retention,
        };
        let send = stage::Sink {
            sink: sink.as_ref(),
            nflog: &self.nflog,
            store,
            external_url: &self.opts.external_url,
        };
        let mut f = stage::Flush {
            receiver,
            group_key: &g.key,
            group_labels: &g.labels,
            now,
            log: None,
        };
        if let Err(err) = stage::run(&[&time_mute, &mute, &leader, &dedup, &send], &mut f, alerts) {
            tracing::error!(error = %err, group = %g.key, receiver = %receiver, "notification not stored; retrying at the next group_interval");
            return;
        }
        // Forget resolved alerts unless they were updated meanwhile.
        let mut alerts = g.alerts.lock();
        for a in snapshot.iter().filter(|a| a.resolved_at(now)) {
            if alerts
                .get(&a.fingerprint)
                .is_some_and(|cur| cur.alert.updated_at == a.alert.updated_at)
            {
                alerts.remove(&a.fingerprint);
            }
        }
    }

    /// Drops resolved alerts, expired log entries and old silences.
    pub fn gc(&self, now: Timestamp) {
        let gone: Vec<u64> = {
            let mut store = self.alerts.write();
            let gone: Vec<u64> = store
                .values()
                .filter(|a| a.resolved_at(now))
                .map(|a| a.fingerprint)
                .collect();
            for fp in &gone {
                store.remove(fp);
            }
            gone
        };
        let live = self.live();
        for fp in gone {
            live.inhibitor.forget(fp);
        }
        self.nflog.lock().retain(|_, e| e.expires_at > now);
        if let Some(st) = &self.opts.store {
            if let Err(e) = crate::store::notify_log::gc(st, now) {
                tracing::warn!(error = %e, "notification log gc");
            }
            if let Err(e) = crate::store::posted::gc(st, now - POSTED_KEEP_MS) {
                tracing::warn!(error = %e, "posted alerts gc");
            }
        }
        if let Err(e) = self.silences.gc(now) {
            tracing::warn!(error = %e, "silence gc");
        }
    }

    /// Every alert in the store (firing and not yet collected resolved ones).
    pub fn alerts(&self) -> Vec<StoredAlert> {
        let mut v: Vec<StoredAlert> = self.alerts.read().values().cloned().collect();
        sort_alerts(&mut v);
        v
    }

    /// Receivers an alert routes to, in tree order, without repeats.
    pub fn receivers_for(&self, labels: &Labels) -> Vec<String> {
        let mut seen = HashSet::new();
        self.live()
            .cfg
            .route
            .match_labels(labels)
            .into_iter()
            .filter(|r| seen.insert(r.receiver.clone()))
            .map(|r| r.receiver.clone())
            .collect()
    }

    /// The current aggregation groups with their alerts.
    pub fn groups(&self) -> Vec<GroupView> {
        let groups: Vec<Arc<AggrGroup>> = self.groups.lock().values().cloned().collect();
        let mut out: Vec<GroupView> = groups
            .iter()
            .map(|g| {
                let mut alerts: Vec<StoredAlert> = g.alerts.lock().values().cloned().collect();
                sort_alerts(&mut alerts);
                GroupView {
                    labels: g.labels.clone(),
                    receiver: g.route.receiver.clone(),
                    key: g.key.clone(),
                    alerts,
                }
            })
            .collect();
        out.sort_by(|a, b| a.key.cmp(&b.key).then(a.receiver.cmp(&b.receiver)));
        out
    }
}

/// How long a posted alert is kept after it ended: a restart within that
/// time still sends its resolved notification.
const POSTED_KEEP_MS: i64 = 3600 * 1000;

/// Stores the merged states [`Dispatcher::ingest`] returned for posted
/// alerts, in one transaction. Blocking: call it on the store's threads.
pub fn persist_posted(
    store: &Store,
    alerts: &[StoredAlert],
) -> Result<(), crate::store::StoreError> {
    let rows: Vec<crate::store::posted::Row> = alerts
        .iter()
        .map(|sa| {
            let a = &sa.alert;
            crate::store::posted::Row {
                fingerprint: format!("{:016x}", sa.fingerprint),
                updated_at: a.updated_at,
                ends_at: sa.ends(),
                body: serde_json::json!({
                    "labels": a.labels.to_json(),
                    "annotations": a.annotations.to_json(),
                    "startsAt": a.starts_at,
                    "endsAt": a.ends_at,
                    "generatorURL": a.generator_url,
                    "updatedAt": a.updated_at,
                    "requestId": a.request_id,
                    "timeout": sa.timeout,
                })
                .to_string(),
            }
        })
        .collect();
    crate::store::posted::put(store, &rows)
}

/// The alert [`persist_posted`] wrote.
fn posted_from_json(body: &str) -> Option<StoredAlert> {
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    let labels = |k: &str| -> Option<Labels> {
        let m = v.get(k)?.as_object()?;
        Some(Labels::from_pairs(m.iter().map(|(k, v)| {
            (k.clone(), v.as_str().unwrap_or_default().to_string())
        })))
    };
    let labels_ = labels("labels")?;
    let alert = Alert {
        annotations: labels("annotations").unwrap_or_else(Labels::empty),
        starts_at: v.get("startsAt")?.as_i64()?,
        ends_at: v.get("endsAt").and_then(serde_json::Value::as_i64),
        generator_url: v
            .get("generatorURL")
            .and_then(|g| g.as_str())
            .unwrap_or_default()
            .to_string(),
        updated_at: v.get("updatedAt")?.as_i64()?,
        request_id: v
            .get("requestId")
            .and_then(|r| r.as_str())
            .map(str::to_string),
        labels: labels_,
    };
    Some(StoredAlert {
        fingerprint: fingerprint(&alert.labels),
        timeout: v.get("timeout").and_then(|t| t.as_bool()).unwrap_or(false),
        alert,
    })
}

/// Alertmanager's alert order: by `job`, then `instance`, then label set.
fn sort_alerts(v: &mut [StoredAlert]) {
    v.sort_by(|a, b| {
        for k in ["job", "instance"] {
            match (a.alert.labels.get(k), b.alert.labels.get(k)) {
                (None, None) => continue,
                (None, Some(_)) => return std::cmp::Ordering::Greater,
                (Some(_), None) => return std::cmp::Ordering::Less,
                (Some(x), Some(y)) if x != y => return x.cmp(y),
                _ => continue,
            }
        }
        a.alert.labels.cmp(&b.alert.labels)
    });
}

impl AlertSink for Dispatcher {
    fn send(&self, alerts: Vec<Alert>) {
        self.ingest(alerts, crate::model::now_millis());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_alertmanagers() {
        // prometheus/common's own vectors for `LabelSet.Fingerprint`
        // (model/signature_test.go), which Alertmanager shows and stores.
        let cases: [(&[(&str, &str)], u64); 5] = [
            (&[], 14_695_981_039_346_656_037),
            (
                &[("name", "garland, briggs"), ("fear", "love is not enough")],
                5_799_056_148_416_392_346,
            ),
            (
                &[("first-label", "first-label-value")],
                5_146_282_821_936_882_169,
            ),
            (
                &[
                    ("first-label", "first-label-value"),
                    ("second-label", "second-label-value"),
                ],
                3_195_800_080_984_914_717,
            ),
            (
                &[
                    ("first-label", "first-label-value"),
                    ("second-label", "second-label-value"),
                    ("third-label", "third-label-value"),
                ],
                13_843_036_195_897_128_121,
            ),
        ];
        for (pairs, want) in cases {
            let l = Labels::from_pairs(pairs.iter().copied());
            assert_eq!(fingerprint(&l), want, "{pairs:?}");
        }
    }

    #[test]
    fn group_label_string_like_go() {
        let l = Labels::from_pairs([("b", "x\"y"), ("a", "1\n")]);
        assert_eq!(labelset_string(&l), r#"{a="1\n", b="x\"y"}"#);
        assert_eq!(labelset_string(&Labels::empty()), "{}");
    }

    /// Fails every enqueue while `fail` is set, then counts the stored ones.
    struct FlakySink {
        fail: AtomicBool,
        failed: std::sync::atomic::AtomicUsize,
        stored: Mutex<Vec<Notification>>,
    }

    impl NotificationSink for FlakySink {
        fn enqueue(&self, n: Notification) {
            let _ = self.try_enqueue(n);
        }
        fn try_enqueue(&self, n: Notification) -> Result<(), crate::notify::EnqueueError> {
            if self.fail.load(Ordering::SeqCst) {
                self.failed.fetch_add(1, Ordering::SeqCst);
                return Err(crate::store::StoreError::from(rusqlite::Error::InvalidQuery).into());
            }
            self.stored.lock().push(n);
            Ok(())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_notification_the_sink_could_not_store_is_retried_next_interval() {
        let cfg = crate::notify::config::load_str(
            "route:\n  receiver: r\n  group_by: [alertname]\n  group_wait: 0s\n  group_interval: 50ms\n  repeat_interval: 1h\nreceivers:\n- name: r\n",
            "t.yml",
            None,
        )
        .unwrap();
        let sink = Arc::new(FlakySink {
            fail: AtomicBool::new(true),
            failed: Default::default(),
            stored: Mutex::new(vec![]),
        });
        let d = Dispatcher::new(Arc::new(cfg), sink.clone(), DispatcherOptions::default()).unwrap();
        let now = crate::model::now_millis();
        let alert = |name: &str, ends_at: Option<Timestamp>| Alert {
            labels: Labels::from_pairs([("alertname", name)]),
            annotations: Labels::empty(),
            starts_at: now - 1000,
            ends_at,
            generator_url: String::new(),
            updated_at: 0,
            request_id: None,
        };
        d.ingest(vec![alert("A", None)], now);
        let wait_for = |what: &str, ok: &dyn Fn() -> bool| {
            let end = std::time::Instant::now() + Duration::from_secs(10);
            while !ok() {
                assert!(std::time::Instant::now() < end, "{what}");
                std::thread::sleep(Duration::from_millis(10));
            }
        };
        wait_for("no failed enqueue", &|| {
            sink.failed.load(Ordering::SeqCst) >= 2
        });
        sink.fail.store(false, Ordering::SeqCst);
        wait_for("never stored after the sink recovered", &|| {
            !sink.stored.lock().is_empty()
        });
        // Resolved while the sink fails: the resolved notification is not
        // lost either.
        sink.fail.store(true, Ordering::SeqCst);
        let failed = sink.failed.load(Ordering::SeqCst);
        d.ingest(vec![alert("A", Some(now))], crate::model::now_millis());
        wait_for("resolve not attempted", &|| {
            sink.failed.load(Ordering::SeqCst) > failed + 1
        });
        sink.fail.store(false, Ordering::SeqCst);
        wait_for("resolved notification lost", &|| {
            sink.stored
                .lock()
                .iter()
                .any(|n| n.alerts.iter().all(|a| a.ends_at.is_some()))
        });
    }
}
