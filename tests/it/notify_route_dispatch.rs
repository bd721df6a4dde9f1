//! The dispatcher end to end with short timers: grouping, group_wait,
//! dedup, resolved flushes, repeat, `continue`, silences, inhibition, and a
//! restart that must not re-notify (notification log in a store dir).

use klaxon::model::{now_millis, Labels};
use klaxon::notify::config::load_str;
use klaxon::notify::dispatch::{Dispatcher, DispatcherOptions};
use klaxon::notify::silence::Silence;
use klaxon::notify::{Alert, AlertSink, Notification, NotificationSink};
use klaxon::store::Store;
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Default)]
struct Collect(Mutex<Vec<(Instant, Notification)>>);

impl NotificationSink for Collect {
    fn enqueue(&self, n: Notification) {
        self.0.lock().push((Instant::now(), n));
    }
}

impl Collect {
    fn len(&self) -> usize {
        self.0.lock().len()
    }
    /// When the `i`th notification arrived.
    fn arrived(&self, i: usize) -> Instant {
        self.0.lock()[i].0
    }
    fn all(&self) -> Vec<Notification> {
        self.0.lock().iter().map(|x| x.1.clone()).collect()
    }
    /// Waits until at least `n` notifications arrived (or panics after 5 s).
    async fn wait_for(&self, n: usize) -> Vec<Notification> {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.len() < n {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} notifications, have {:?}",
                self.all()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.all()
    }
}

fn alert(pairs: &[(&str, &str)], starts_at: i64, ends_at: Option<i64>) -> Alert {
    Alert {
        labels: Labels::from_pairs(pairs.iter().copied()),
        annotations: Labels::from_pairs([("summary", "s")]),
        starts_at,
        ends_at,
        generator_url: "http://gen".into(),
        request_id: None,
        updated_at: 0,
    }
}

const BASE: &str = "
route:
  receiver: default
  group_by: [alertname]
  group_wait: 300ms
  group_interval: 400ms
  repeat_interval: 1500ms
  routes:
  - matchers: ['team=\"a\"']
    receiver: team-a
    continue: true
  - matchers: ['team=~\"a|b\"']
    receiver: team-ab
inhibit_rules:
- source_matchers: [severity=critical]
  target_matchers: [severity=warning]
  equal: [alertname]
receivers:
- name: default
- name: team-a
- name: team-ab
";

fn dispatcher(sink: Arc<Collect>, store: Option<Arc<Store>>) -> Arc<Dispatcher> {
    let cfg = Arc::new(load_str(BASE, "test.yml", None).unwrap());
    Dispatcher::new(
        cfg,
        sink,
        DispatcherOptions {
            external_url: "http://klaxon".into(),
            store,
            ..Default::default()
        },
    )
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_wait_batches_and_dedup_holds_until_repeat() {
    let sink = Arc::new(Collect::default());
    let d = dispatcher(sink.clone(), None);
    let t0 = Instant::now();
    let now = now_millis();
    d.send(vec![alert(&[("alertname", "A"), ("i", "1")], now, None)]);
    d.send(vec![alert(&[("alertname", "A"), ("i", "2")], now, None)]);
    d.send(vec![alert(&[("alertname", "B")], now, None)]);
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(sink.len(), 0, "nothing before group_wait");
    let got = sink.wait_for(2).await;
    assert!(t0.elapsed() >= Duration::from_millis(290));
    let a = got
        .iter()
        .find(|n| n.group_key.ends_with("{alertname=\"A\"}"))
        .unwrap();
    assert_eq!(a.group_key, "{}:{alertname=\"A\"}");
    assert_eq!(a.receiver, "default");
    assert_eq!(a.alerts.len(), 2);
    assert!(
        a.alerts.iter().all(|x| x.ends_at.is_none()),
        "firing alerts carry no end"
    );
    assert_eq!(a.group_labels, Labels::from_pairs([("alertname", "A")]));
    assert_eq!(a.external_url, "http://klaxon");
    // Re-sending the same alerts changes nothing: no notification at the
    // next group_interval ticks, until repeat_interval (1500 ms) has passed
    // since the first. Arrival times are compared, so a slow machine can
    // only delay the repeat, never fail the check.
    d.send(vec![alert(&[("alertname", "A"), ("i", "1")], now, None)]);
    let got = sink.wait_for(4).await;
    let gap = sink.arrived(2) - sink.arrived(0);
    assert!(
        gap >= Duration::from_millis(1450),
        "repeated after {gap:?}: {got:?}"
    );
    assert_eq!(got[2].alerts.len() + got[3].alerts.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_alert_in_group_and_resolved_flush() {
    let sink = Arc::new(Collect::default());
    let d = dispatcher(sink.clone(), None);
    let old = now_millis() - 3_600_000;
    // Older than group_wait: flushed at once.
    d.send(vec![alert(&[("alertname", "A"), ("i", "1")], old, None)]);
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].alerts.len(), 1);
    d.send(vec![alert(
        &[("alertname", "A"), ("i", "2")],
        now_millis(),
        None,
    )]);
    let got = sink.wait_for(2).await;
    assert_eq!(
        got[1].alerts.len(),
        2,
        "a new alert is notified at the next group_interval"
    );
    // Resolve one: the next flush reports it resolved.
    let now = now_millis();
    d.send(vec![alert(
        &[("alertname", "A"), ("i", "1")],
        old,
        Some(now),
    )]);
    let got = sink.wait_for(3).await;
    let resolved: Vec<_> = got[2]
        .alerts
        .iter()
        .filter(|a| a.ends_at.is_some())
        .collect();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].labels.get("i"), Some("1"));
    // Resolve the other too: one more notification, then the group is gone.
    d.send(vec![alert(
        &[("alertname", "A"), ("i", "2")],
        old,
        Some(now_millis()),
    )]);
    let got = sink.wait_for(4).await;
    assert!(got[3].alerts.iter().all(|a| a.ends_at.is_some()));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !d.groups().is_empty() {
        assert!(
            Instant::now() < deadline,
            "resolved groups are never removed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sink.len(), 4, "{:?}", sink.all());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn continue_routes_to_several_receivers_with_route_keys() {
    let sink = Arc::new(Collect::default());
    let d = dispatcher(sink.clone(), None);
    d.send(vec![alert(
        &[("alertname", "X"), ("team", "a")],
        now_millis() - 60_000,
        None,
    )]);
    let got = sink.wait_for(2).await;
    let mut keys: Vec<(String, String)> = got
        .iter()
        .map(|n| (n.receiver.clone(), n.group_key.clone()))
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            (
                "team-a".to_string(),
                "{}/{team=\"a\"}:{alertname=\"X\"}".to_string()
            ),
            (
                "team-ab".to_string(),
                "{}/{team=~\"a|b\"}:{alertname=\"X\"}".to_string()
            ),
        ]
    );
    assert_eq!(
        d.receivers_for(&Labels::from_pairs([("team", "a")])),
        ["team-a", "team-ab"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_mutes_and_inhibition_suppresses() {
    let sink = Arc::new(Collect::default());
    let d = dispatcher(sink.clone(), None);
    let now = now_millis();
    d.silences()
        .set(
            Silence {
                id: String::new(),
                matchers: klaxon::notify::matchers::parse_matchers("alertname=Muted").unwrap(),
                starts_at: now,
                ends_at: now + 60_000,
                updated_at: now,
                created_by: "t".into(),
                comment: "c".into(),
            },
            now,
        )
        .unwrap();
    d.send(vec![
        alert(&[("alertname", "Muted")], now - 60_000, None),
        alert(
            &[("alertname", "Disk"), ("severity", "critical")],
            now - 60_000,
            None,
        ),
        alert(
            &[("alertname", "Disk"), ("severity", "warning"), ("x", "1")],
            now - 60_000,
            None,
        ),
    ]);
    let got = sink.wait_for(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.len(), 1, "{:?}", sink.all());
    let labels: Vec<String> = got[0].alerts.iter().map(|a| a.labels.to_string()).collect();
    assert_eq!(labels, ["{alertname=\"Disk\", severity=\"critical\"}"]);
    let (sil, inh) = d.mute_status(
        &Labels::from_pairs([("alertname", "Disk"), ("severity", "warning")]),
        now_millis(),
    );
    assert!(sil.is_empty());
    assert_eq!(inh.len(), 1);
    let (sil, _) = d.mute_status(&Labels::from_pairs([("alertname", "Muted")]), now_millis());
    assert_eq!(sil.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_does_not_renotify_within_repeat() {
    let dir = tempfile::tempdir().unwrap();
    let firing = alert(&[("alertname", "Page")], now_millis() - 60_000, None);
    {
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let sink = Arc::new(Collect::default());
        let d = dispatcher(sink.clone(), Some(store));
        d.send(vec![firing.clone()]);
        sink.wait_for(1).await;
    }
    // "Restart": a new dispatcher on the same store receives the same alert.
    let store = Arc::new(Store::open(dir.path()).unwrap());
    let sink = Arc::new(Collect::default());
    let d = dispatcher(sink.clone(), Some(store));
    d.send(vec![firing.clone()]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(sink.len(), 0, "re-paged after restart: {:?}", sink.all());
    // A changed firing set still notifies, with the whole group.
    d.send(vec![alert(
        &[("alertname", "Page"), ("i", "2")],
        now_millis() - 60_000,
        None,
    )]);
    let got = sink.wait_for(1).await;
    assert_eq!(got[0].alerts.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merge_keeps_earliest_start_and_explicit_end() {
    let sink = Arc::new(Collect::default());
    let d = dispatcher(sink, None);
    let now = now_millis();
    d.ingest(vec![alert(&[("alertname", "M")], now - 10_000, None)], now);
    d.ingest(
        vec![alert(&[("alertname", "M")], now - 5_000, None)],
        now + 1,
    );
    let a = d.alerts();
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].alert.starts_at, now - 10_000);
    assert!(a[0].timeout);
    assert_eq!(
        a[0].alert.ends_at,
        Some(now + 1 + 300_000),
        "resolve_timeout applied"
    );
    d.ingest(
        vec![alert(&[("alertname", "M")], now - 5_000, Some(now + 2))],
        now + 2,
    );
    let a = d.alerts();
    assert_eq!(a[0].alert.ends_at, Some(now + 2));
    assert!(a[0].resolved_at(now + 2));
    d.gc(now + 3);
    assert!(d.alerts().is_empty(), "gc drops resolved alerts");
}

/// Alertmanager's pipeline stops when silences leave nothing to send, so
/// the notification log keeps the last notification: an alert silenced
/// after it was notified and unsilenced before `repeat_interval` is not
/// notified again until then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_in_between_does_not_reset_the_log() {
    let sink = Arc::new(Collect::default());
    let d = dispatcher(sink.clone(), None);
    let now = now_millis();
    d.send(vec![alert(&[("alertname", "Flappy")], now - 60_000, None)]);
    sink.wait_for(1).await;
    let id = d
        .silences()
        .set(
            Silence {
                id: String::new(),
                matchers: klaxon::notify::matchers::parse_matchers("alertname=Flappy").unwrap(),
                starts_at: now_millis(),
                ends_at: now_millis() + 60_000,
                updated_at: now_millis(),
                created_by: "t".into(),
                comment: "c".into(),
            },
            now_millis(),
        )
        .unwrap();
    // Two group_interval flushes (400 ms) with everything silenced, then
    // the silence ends: the next notification is the repeat, due
    // repeat_interval (1500 ms) after the first, not the next flush after
    // the silence. (On a machine slow enough to expire the silence only
    // after 1500 ms this cannot tell the two apart; it cannot fail wrongly.)
    tokio::time::sleep(Duration::from_millis(900)).await;
    d.silences().expire(&id, now_millis()).unwrap();
    let got = sink.wait_for(2).await;
    let gap = sink.arrived(1) - sink.arrived(0);
    assert!(
        gap >= Duration::from_millis(1450),
        "re-notified {gap:?} after the first, right after the silence: {got:?}"
    );
}

/// A reload rebuilds the groups under the new routes: an unchanged group
/// is not notified again, a new receiver gets what is flushed next.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_config_keeps_the_log_and_uses_new_routes() {
    let sink = Arc::new(Collect::default());
    let d = dispatcher(sink.clone(), None);
    let now = now_millis();
    d.send(vec![alert(&[("alertname", "Old")], now - 60_000, None)]);
    sink.wait_for(1).await;
    let moved = BASE.replace(
        "  receiver: default\n  group_by",
        "  receiver: team-ab\n  group_by",
    );
    assert_ne!(moved, BASE);
    let cfg = Arc::new(load_str(&moved, "test.yml", None).unwrap());
    d.apply_config(cfg, Arc::new(|_: &str| true));
    // The old group's alert now routes to team-ab, which was never
    // notified: that is a new group for the log, notified once.
    let got = sink.wait_for(2).await;
    assert_eq!(got[1].receiver, "team-ab");
    assert_eq!(got[1].group_key, got[0].group_key);
    d.send(vec![alert(&[("alertname", "New")], now_millis(), None)]);
    let got = sink.wait_for(3).await;
    assert_eq!(got[2].receiver, "team-ab");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(sink.len(), 3, "{:?}", sink.all());
    // Applying the same config again notifies nobody.
    let same = Arc::new(load_str(&moved, "test.yml", None).unwrap());
    d.apply_config(same, Arc::new(|_: &str| true));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(sink.len(), 3, "{:?}", sink.all());
}
