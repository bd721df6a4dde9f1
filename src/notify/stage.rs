//! The flush pipeline: what a group's alerts pass through at each flush
//! before a notification leaves the dispatcher, as Alertmanager's
//! `notify.Stage`s: [`TimeMute`] → [`Mute`] (silences and inhibition) →
//! [`LeaderGate`] → [`Dedup`] (against the notification log) → [`Sink`].
//!
//! A stage passes the alerts on (maybe fewer), stops the flush (nothing to
//! send; the flush is complete and the group forgets its resolved alerts),
//! or fails (the notification was not stored: the group keeps its alerts
//! and tries again at its next `group_interval`). The leader gate runs
//! before dedup so that a follower of an HA pair does not read the shared
//! log at every flush; a follower stops either way.

use crate::model::{Labels, Timestamp};
use crate::notify::inhibit::Inhibitor;
use crate::notify::silence::Silences;
use crate::notify::timeinterval::TimeInterval;
use crate::notify::{Alert, EnqueueError, Notification, NotificationSink};
use crate::store::notify_log::LogEntry;
use crate::store::Store;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

/// The notification log kept in memory: (receiver, group key) → last entry.
pub(crate) type NotifyLog = Mutex<HashMap<(String, String), LogEntry>>;

/// One flush of one group, as the stages see it.
pub(crate) struct Flush<'a> {
    pub receiver: &'a str,
    pub group_key: &'a str,
    pub group_labels: &'a Labels,
    pub now: Timestamp,
    /// Set by [`Dedup`]: the log entry to record with the notification.
    pub log: Option<LogEntry>,
}

/// What a stage hands on.
#[derive(Debug, PartialEq)]
pub(crate) enum Next {
    /// These alerts go to the next stage.
    Continue(Vec<Alert>),
    /// Nothing to send: the flush ends here, complete.
    Stop,
}

/// Why a flush did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StageError {
    /// The sink did not keep the notification.
    #[error(transparent)]
    NotStored(#[from] EnqueueError),
}

pub(crate) trait Stage {
    fn exec(&self, f: &mut Flush<'_>, alerts: Vec<Alert>) -> Result<Next, StageError>;
}

/// Runs `alerts` through `stages` in order until one stops or fails.
pub(crate) fn run(
    stages: &[&dyn Stage],
    f: &mut Flush<'_>,
    mut alerts: Vec<Alert>,
) -> Result<(), StageError> {
    for s in stages {
        match s.exec(f, alerts)? {
            Next::Continue(a) => alerts = a,
            Next::Stop => return Ok(()),
        }
    }
    Ok(())
}

/// A route's `mute_time_intervals` and `active_time_intervals`: the whole
/// group is muted while a mute interval or no active interval contains now.
pub(crate) struct TimeMute<'a> {
    pub intervals: &'a BTreeMap<String, TimeInterval>,
    pub mute: &'a [String],
    pub active: &'a [String],
}

impl TimeMute<'_> {
    fn muted(&self, now: Timestamp) -> bool {
        let on = |n: &String| self.intervals.get(n).is_some_and(|t| t.contains(now));
        self.mute.iter().any(on) || (!self.active.is_empty() && !self.active.iter().any(on))
    }
}

impl Stage for TimeMute<'_> {
    fn exec(&self, f: &mut Flush<'_>, alerts: Vec<Alert>) -> Result<Next, StageError> {
        if self.muted(f.now) {
            tracing::debug!(group = %f.group_key, "muted by time interval");
            return Ok(Next::Stop);
        }
        Ok(Next::Continue(alerts))
    }
}

/// Drops the alerts a silence or an inhibition mutes; stops when none is
/// left (as Alertmanager's pipeline ends at its mute stages, the log is not
/// touched, so an alert unmuted later is not notified again before its
/// repeat_interval).
pub(crate) struct Mute<'a> {
    pub silences: &'a Silences,
    pub inhibitor: &'a Inhibitor,
}

impl Stage for Mute<'_> {
    fn exec(&self, f: &mut Flush<'_>, alerts: Vec<Alert>) -> Result<Next, StageError> {
        let kept: Vec<Alert> = alerts
            .into_iter()
            .filter(|a| {
                self.silences.mutes(&a.labels, f.now).is_empty()
                    && self.inhibitor.inhibited_by(&a.labels, f.now).is_empty()
            })
            .collect();
        Ok(if kept.is_empty() {
            Next::Stop
        } else {
            Next::Continue(kept)
        })
    }
}

/// HA pair (shared store): only the leader notifies.
pub(crate) struct LeaderGate {
    pub follower: bool,
}

impl LeaderGate {
    pub fn of(store: Option<&Arc<Store>>) -> LeaderGate {
        LeaderGate {
            follower: store.is_some_and(|s| s.is_shared() && !s.is_leader()),
        }
    }
}

impl Stage for LeaderGate {
    fn exec(&self, _: &mut Flush<'_>, alerts: Vec<Alert>) -> Result<Next, StageError> {
        Ok(if self.follower {
            Next::Stop
        } else {
            Next::Continue(alerts)
        })
    }
}

/// Alertmanager's `DedupStage`: goes on only when the firing set grew,
/// alerts resolved (and the receiver wants that), or `repeat_interval`
/// passed since the logged notification; then sets the entry to log.
pub(crate) struct Dedup<'a> {
    pub nflog: &'a NotifyLog,
    /// The shared store of an HA pair, read so that a new leader does not
    /// page again for what the old one sent; `None` = the memory log only.
    pub shared: Option<&'a Arc<Store>>,
    pub send_resolved: bool,
    pub repeat_interval: Duration,
    pub retention: Duration,
}

impl Stage for Dedup<'_> {
    fn exec(&self, f: &mut Flush<'_>, alerts: Vec<Alert>) -> Result<Next, StageError> {
        let mut firing = Vec::new();
        let mut resolved = Vec::new();
        for a in &alerts {
            let fp = a.fingerprint();
            if a.ends_at.is_none() {
                firing.push(fp);
            } else {
                resolved.push(fp);
            }
        }
        firing.sort_unstable();
        resolved.sort_unstable();
        let key = (f.receiver.to_string(), f.group_key.to_string());
        let entry = match self
            .shared
            .map(|s| crate::store::notify_log::get(s, f.receiver, f.group_key))
        {
            Some(Ok(e)) => e,
            Some(Err(err)) => {
                tracing::error!(error = %err, group = %f.group_key, "reading the notification log");
                self.nflog.lock().get(&key).cloned()
            }
            None => self.nflog.lock().get(&key).cloned(),
        };
        if !needs_update(
            entry.as_ref(),
            &firing,
            &resolved,
            self.send_resolved,
            self.repeat_interval,
            f.now,
        ) {
            return Ok(Next::Stop);
        }
        f.log = Some(LogEntry {
            receiver: key.0,
            group_key: key.1,
            firing,
            resolved,
            sent_at: f.now,
            expires_at: f.now + self.retention.as_millis() as i64,
        });
        Ok(Next::Continue(alerts))
    }
}

/// Should a group with these firing/resolved fingerprints notify, given the
/// last log entry? (Alertmanager's `DedupStage.needsUpdate`.)
fn needs_update(
    entry: Option<&LogEntry>,
    firing: &[u64],
    resolved: &[u64],
    send_resolved: bool,
    repeat: Duration,
    now: Timestamp,
) -> bool {
    let Some(e) = entry else {
        return !firing.is_empty();
    };
    // Linear in both sizes: groups can hold thousands of alerts.
    let subset = |small: &[u64], big: &[u64]| {
        let big: std::collections::HashSet<u64> = big.iter().copied().collect();
        small.iter().all(|f| big.contains(f))
    };
    if !subset(firing, &e.firing) {
        return true;
    }
    if firing.is_empty() {
        return !e.firing.is_empty();
    }
    if send_resolved && !subset(resolved, &e.resolved) {
        return true;
    }
    e.sent_at < now - repeat.as_millis() as i64
}

/// Hands the notification to the [`NotificationSink`] (the outbox) and
/// records [`Dedup`]'s log entry with it: in the sink's own transaction
/// when it can, else in the store after it, and in the memory log. When the
/// sink fails, nothing is logged (a full disk must not turn into a group
/// marked as notified that never was).
pub(crate) struct Sink<'a> {
    pub sink: &'a dyn NotificationSink,
    pub nflog: &'a NotifyLog,
    pub store: Option<&'a Arc<Store>>,
    pub external_url: &'a str,
}

impl Stage for Sink<'_> {
    fn exec(&self, f: &mut Flush<'_>, alerts: Vec<Alert>) -> Result<Next, StageError> {
        let n = Notification {
            receiver: f.receiver.to_string(),
            group_key: f.group_key.to_string(),
            group_labels: f.group_labels.clone(),
            alerts,
            external_url: self.external_url.to_string(),
            created_at: f.now,
        };
        let Some(e) = f.log.take() else {
            self.sink.try_enqueue(n)?;
            return Ok(Next::Stop);
        };
        let logged = self.sink.try_enqueue_logged(n, &e)?;
        if let Some(st) = self.store.filter(|_| !logged) {
            if let Err(err) = crate::store::notify_log::put(st, &e) {
                tracing::error!(error = %err, group = %f.group_key, "writing the notification log");
            }
        }
        self.nflog
            .lock()
            .insert((e.receiver.clone(), e.group_key.clone()), e);
        Ok(Next::Stop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    const NOW: Timestamp = 1_700_000_000_000;

    fn alert(name: &str, resolved: bool) -> Alert {
        Alert {
            labels: Labels::from_pairs([("alertname", name)]),
            annotations: Labels::empty(),
            starts_at: NOW - 60_000,
            ends_at: resolved.then_some(NOW - 1000),
            generator_url: String::new(),
            updated_at: NOW - 1000,
            request_id: None,
        }
    }

    fn flush(labels: &Labels) -> Flush<'_> {
        Flush {
            receiver: "r",
            group_key: "{}:{}",
            group_labels: labels,
            now: NOW,
            log: None,
        }
    }

    fn names(n: Next) -> Vec<String> {
        match n {
            Next::Continue(a) => a
                .iter()
                .map(|a| a.labels.get("alertname").unwrap_or("").to_string())
                .collect(),
            Next::Stop => vec!["<stop>".into()],
        }
    }

    fn intervals(yaml: &str) -> BTreeMap<String, TimeInterval> {
        let text = format!("route:\n  receiver: r\nreceivers:\n- name: r\n{yaml}");
        crate::notify::config::load_str(&text, "t.yml", None)
            .unwrap()
            .time_intervals
    }

    #[test]
    fn time_mute_stops_inside_a_mute_interval_and_outside_the_active_ones() {
        // NOW is a Tuesday, 22:13 UTC.
        let ti = intervals(
            "time_intervals:\n- name: tuesday\n  time_intervals:\n  - weekdays: [tuesday]\n- name: monday\n  time_intervals:\n  - weekdays: [monday]\n",
        );
        let l = Labels::empty();
        let run = |mute: &[&str], active: &[&str]| {
            let mute: Vec<String> = mute.iter().map(|s| s.to_string()).collect();
            let active: Vec<String> = active.iter().map(|s| s.to_string()).collect();
            let st = TimeMute {
                intervals: &ti,
                mute: &mute,
                active: &active,
            };
            names(st.exec(&mut flush(&l), vec![alert("A", false)]).unwrap())
        };
        assert_eq!(run(&[], &[]), ["A"]);
        assert_eq!(run(&["tuesday"], &[]), ["<stop>"]);
        assert_eq!(run(&["monday"], &[]), ["A"]);
        assert_eq!(run(&[], &["monday"]), ["<stop>"]);
        assert_eq!(run(&[], &["monday", "tuesday"]), ["A"]);
        // An unknown name never contains now.
        assert_eq!(run(&["nope"], &[]), ["A"]);
    }

    #[test]
    fn mute_drops_silenced_and_inhibited_alerts_and_stops_when_none_is_left() {
        let silences = Silences::new(None).unwrap();
        let sil = crate::notify::silence::Silence {
            id: String::new(),
            matchers: vec![crate::model::Matcher::new(
                crate::model::MatchType::Equal,
                "alertname",
                "Silenced",
            )
            .unwrap()],
            starts_at: NOW - 1000,
            ends_at: NOW + 3_600_000,
            updated_at: NOW - 1000,
            created_by: "t".into(),
            comment: "c".into(),
        };
        silences.set(sil, NOW - 1000).unwrap();
        let cfg = crate::notify::config::load_str(
            "route:\n  receiver: r\nreceivers:\n- name: r\ninhibit_rules:\n- source_matchers: [alertname=\"Source\"]\n  target_matchers: [alertname=\"Target\"]\n",
            "t.yml",
            None,
        )
        .unwrap();
        let inhibitor = Inhibitor::new(cfg.inhibit_rules.clone());
        let src = alert("Source", false);
        inhibitor.observe(src.fingerprint(), &src.labels, None);
        let st = Mute {
            silences: &silences,
            inhibitor: &inhibitor,
        };
        let l = Labels::empty();
        let out = st
            .exec(
                &mut flush(&l),
                vec![
                    alert("Silenced", false),
                    alert("Target", false),
                    alert("Source", false),
                    alert("Other", true),
                ],
            )
            .unwrap();
        assert_eq!(names(out), ["Source", "Other"]);
        let out = st
            .exec(
                &mut flush(&l),
                vec![alert("Silenced", false), alert("Target", false)],
            )
            .unwrap();
        assert_eq!(out, Next::Stop);
    }

    #[test]
    fn leader_gate_stops_a_follower_only() {
        let l = Labels::empty();
        let follower = LeaderGate { follower: true };
        assert_eq!(
            follower
                .exec(&mut flush(&l), vec![alert("A", false)])
                .unwrap(),
            Next::Stop
        );
        // Without a store (one replica) everyone leads.
        let alone = LeaderGate::of(None);
        assert_eq!(
            names(alone.exec(&mut flush(&l), vec![alert("A", false)]).unwrap()),
            ["A"]
        );
    }

    #[test]
    fn dedup_goes_on_for_new_firing_alerts_and_sets_the_log_entry() {
        let l = Labels::empty();
        let nflog = NotifyLog::default();
        let st = Dedup {
            nflog: &nflog,
            shared: None,
            send_resolved: true,
            repeat_interval: Duration::from_secs(3600),
            retention: Duration::from_secs(10),
        };
        let (a, b) = (alert("A", false), alert("B", true));
        let mut f = flush(&l);
        let out = st.exec(&mut f, vec![a.clone(), b.clone()]).unwrap();
        assert_eq!(names(out), ["A", "B"]);
        let e = f.log.clone().unwrap();
        assert_eq!((e.receiver.as_str(), e.group_key.as_str()), ("r", "{}:{}"));
        assert_eq!(e.firing, [a.fingerprint()]);
        assert_eq!(e.resolved, [b.fingerprint()]);
        assert_eq!((e.sent_at, e.expires_at), (NOW, NOW + 10_000));
        // Logged: the same set again within repeat_interval stops.
        nflog.lock().insert(("r".into(), "{}:{}".into()), e);
        let mut f = flush(&l);
        assert_eq!(st.exec(&mut f, vec![a.clone(), b]).unwrap(), Next::Stop);
        assert!(f.log.is_none());
        // A new firing alert goes on.
        let out = st.exec(&mut flush(&l), vec![a, alert("C", false)]).unwrap();
        assert_eq!(names(out), ["A", "C"]);
        // Only resolved alerts and nothing logged: nothing to send.
        let empty = NotifyLog::default();
        let st = Dedup {
            nflog: &empty,
            ..st
        };
        assert_eq!(
            st.exec(&mut flush(&l), vec![alert("R", true)]).unwrap(),
            Next::Stop
        );
    }

    #[test]
    fn dedup_rules() {
        let e = LogEntry {
            receiver: "r".into(),
            group_key: "k".into(),
            firing: vec![1, 2],
            resolved: vec![],
            sent_at: 1000,
            expires_at: i64::MAX,
        };
        let rep = Duration::from_millis(500);
        assert!(!needs_update(None, &[], &[1], true, rep, 1100));
        assert!(needs_update(None, &[1], &[], true, rep, 1100));
        assert!(!needs_update(Some(&e), &[1, 2], &[], true, rep, 1100));
        assert!(!needs_update(Some(&e), &[1], &[], false, rep, 1100));
        assert!(needs_update(Some(&e), &[1], &[2], true, rep, 1100));
        assert!(needs_update(Some(&e), &[1, 2, 3], &[], true, rep, 1100));
        assert!(needs_update(Some(&e), &[], &[1, 2], false, rep, 1100));
        assert!(needs_update(Some(&e), &[1, 2], &[], true, rep, 1600));
    }

    /// Stores notifications unless `fail` is set.
    #[derive(Default)]
    struct Collect {
        fail: AtomicBool,
        got: Mutex<Vec<Notification>>,
    }

    impl NotificationSink for Collect {
        fn enqueue(&self, n: Notification) {
            self.got.lock().push(n);
        }
        fn try_enqueue(&self, n: Notification) -> Result<(), EnqueueError> {
            if self.fail.load(Ordering::SeqCst) {
                return Err(crate::store::StoreError::from(rusqlite::Error::InvalidQuery).into());
            }
            self.enqueue(n);
            Ok(())
        }
    }

    #[test]
    fn sink_enqueues_and_logs_only_what_it_stored() {
        let l = Labels::from_pairs([("alertname", "A")]);
        let nflog = NotifyLog::default();
        let sink = Collect::default();
        let st = Sink {
            sink: &sink,
            nflog: &nflog,
            store: None,
            external_url: "http://k/",
        };
        let entry = LogEntry {
            receiver: "r".into(),
            group_key: "{}:{}".into(),
            firing: vec![1],
            resolved: vec![],
            sent_at: NOW,
            expires_at: NOW + 1,
        };
        sink.fail.store(true, Ordering::SeqCst);
        let mut f = flush(&l);
        f.log = Some(entry.clone());
        assert!(matches!(
            st.exec(&mut f, vec![alert("A", false)]),
            Err(StageError::NotStored(_))
        ));
        assert!(nflog.lock().is_empty());
        sink.fail.store(false, Ordering::SeqCst);
        let mut f = flush(&l);
        f.log = Some(entry.clone());
        assert_eq!(
            st.exec(&mut f, vec![alert("A", false)]).unwrap(),
            Next::Stop
        );
        let got = sink.got.lock();
        assert_eq!(got.len(), 1);
        let n = &got[0];
        assert_eq!(
            (
                n.receiver.as_str(),
                n.group_key.as_str(),
                n.external_url.as_str()
            ),
            ("r", "{}:{}", "http://k/")
        );
        assert_eq!((n.group_labels.clone(), n.created_at), (l.clone(), NOW));
        assert_eq!(n.alerts, [alert("A", false)]);
        assert_eq!(
            nflog.lock().get(&("r".into(), "{}:{}".into())),
            Some(&entry)
        );
    }

    #[test]
    fn the_pipeline_runs_until_a_stage_stops() {
        let l = Labels::empty();
        let pass = LeaderGate { follower: false };
        let stop = LeaderGate { follower: true };
        let nflog = NotifyLog::default();
        let sink = Collect::default();
        let send = Sink {
            sink: &sink,
            nflog: &nflog,
            store: None,
            external_url: "",
        };
        run(
            &[&pass, &stop, &send],
            &mut flush(&l),
            vec![alert("A", false)],
        )
        .unwrap();
        assert!(sink.got.lock().is_empty());
        run(&[&pass, &send], &mut flush(&l), vec![alert("A", false)]).unwrap();
        assert_eq!(sink.got.lock().len(), 1);
    }
}
