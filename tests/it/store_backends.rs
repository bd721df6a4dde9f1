//! The store's typed functions on both backends: every body below runs
//! against a fresh SQLite file and a fresh database on a throwaway
//! PostgreSQL 15 (tests/it/common/postgres.rs); plus PostgreSQL migrations
//! (versioned, idempotent, two replicas starting at once), reconnecting
//! after the server drops the session, and the leader election.
//! Under `CI=true` a missing PostgreSQL is a failure.

use crate::common;

use common::postgres::PgServer;
use klaxon::model::Labels;
use klaxon::rules::alert::{Alert, AlertState};
use klaxon::store::alerts::{self, RuleAlerts};
use klaxon::store::audit::EventQuery;
use klaxon::store::notify::{NewDelivery, Outcome, Query};
use klaxon::store::{leader, notify_log, silences, Store};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

static DB_SEQ: AtomicUsize = AtomicUsize::new(0);

/// A new empty database on `pg`, its DSN.
fn fresh_db(pg: &PgServer) -> String {
    let name = format!("t{}", DB_SEQ.fetch_add(1, Ordering::Relaxed));
    pg.psql(&format!("CREATE DATABASE {name}"));
    format!(
        "postgresql://postgres@127.0.0.1:{}/{name}?sslmode=disable",
        pg.port
    )
}

/// Runs `body` on SQLite and, when PostgreSQL is installed, on PostgreSQL.
fn both(body: fn(&Store)) {
    let dir = tempfile::tempdir().unwrap();
    body(&Store::open(dir.path()).unwrap());
    if let Some(pg) = PgServer::start(&[]) {
        let s = Store::open_postgres(&fresh_db(&pg)).unwrap();
        assert_eq!(s.backend_name(), "postgres");
        body(&s);
    }
}

fn alert(inst: &str, state: AlertState) -> Alert {
    Alert {
        labels: Labels::from_pairs([("alertname", "A"), ("instance", inst)]),
        annotations: BTreeMap::from([("summary".to_string(), format!("down {inst}"))]),
        state,
        value: f64::NAN,
        active_at: 1_000,
        fired_at: Some(61_000),
        resolved_at: None,
        last_sent_at: Some(61_000),
        valid_until: Some(301_000),
        keep_firing_since: None,
    }
}

fn alerts_body(s: &Store) {
    let rules = vec![
        RuleAlerts {
            rule: "A".into(),
            expr: "up == 0".into(),
            alerts: vec![
                alert("a", AlertState::Firing),
                alert("b", AlertState::Pending),
            ],
        },
        RuleAlerts {
            rule: "B".into(),
            expr: "x > 1".into(),
            alerts: vec![alert("c", AlertState::Inactive)],
        },
    ];
    alerts::save_group(s, "f.yml", "g", &rules).unwrap();
    alerts::save_group(s, "f.yml", "g2", &rules[1..]).unwrap();
    let got = alerts::load_all(s).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].rules.len(), 2);
    let a = &got[0].rules[0].alerts;
    assert_eq!(a.len(), 2);
    let fa = a
        .iter()
        .find(|x| x.labels.get("instance") == Some("a"))
        .unwrap();
    assert_eq!(fa.state, AlertState::Firing);
    assert!(fa.value.is_nan());
    assert_eq!(
        (fa.active_at, fa.fired_at, fa.valid_until, fa.resolved_at),
        (1_000, Some(61_000), Some(301_000), None)
    );
    assert_eq!(fa.annotations["summary"], "down a");
    // Saving replaces the group.
    alerts::save_group(s, "f.yml", "g", &rules[..1]).unwrap();
    assert_eq!(alerts::load_all(s).unwrap()[0].rules.len(), 1);
    assert_eq!(
        alerts::retain_groups(s, &[("f.yml".into(), "g2".into())]).unwrap(),
        2
    );
    let got = alerts::load_all(s).unwrap();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].group, "g2");
}

#[test]
fn alerts_on_both_backends() {
    both(alerts_body);
}

fn silences_body(s: &Store) {
    silences::put(s, "a", "1").unwrap();
    silences::put(s, "a", "2").unwrap();
    silences::put(s, "b", "3").unwrap();
    assert_eq!(
        silences::load_all(s).unwrap(),
        [("a".into(), "2".into()), ("b".into(), "3".into())]
    );
    silences::delete(s, "a").unwrap();
    assert_eq!(silences::load_all(s).unwrap(), [("b".into(), "3".into())]);
}

#[test]
fn silences_on_both_backends() {
    both(silences_body);
}

fn nflog_body(s: &Store) {
    let e = notify_log::LogEntry {
        receiver: "r".into(),
        group_key: "{}:{a=\"1\"}".into(),
        firing: vec![1, u64::MAX],
        resolved: vec![7],
        sent_at: 10,
        expires_at: 100,
    };
    notify_log::put(s, &e).unwrap();
    let mut e2 = e.clone();
    e2.firing = vec![2];
    e2.sent_at = 20;
    notify_log::put(s, &e2).unwrap();
    assert_eq!(notify_log::load_live(s, 50).unwrap(), vec![e2.clone()]);
    assert_eq!(notify_log::get(s, "r", &e.group_key).unwrap(), Some(e2));
    assert_eq!(notify_log::get(s, "x", &e.group_key).unwrap(), None);
    assert!(notify_log::load_live(s, 100).unwrap().is_empty());
    assert_eq!(notify_log::gc(s, 100).unwrap(), 1);
    assert_eq!(notify_log::gc(s, 100).unwrap(), 0);
}

#[test]
fn notify_log_on_both_backends() {
    both(nflog_body);
}

fn audit_body(s: &Store) {
    let ids = s
        .insert_events(&[(10, "command", "{}"), (20, "alert", "{\"a\":1}")])
        .unwrap();
    assert_eq!(ids.len(), 2);
    assert!(ids[1] > ids[0]);
    s.insert_event(30, "command", "{}").unwrap();
    let all = s
        .query_events(&EventQuery {
            limit: 10,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        all.iter().map(|e| e.at_ms).collect::<Vec<_>>(),
        vec![10, 20, 30]
    );
    assert_eq!(all[1].data, "{\"a\":1}");
    let cmds = s
        .query_events(&EventQuery {
            kind: Some("command".into()),
            limit: 1,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(cmds.len(), 1);
    let next = s
        .query_events(&EventQuery {
            kind: Some("command".into()),
            after_id: Some(cmds[0].id),
            since_ms: Some(15),
            limit: 5,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(next.iter().map(|e| e.at_ms).collect::<Vec<_>>(), vec![30]);
    assert_eq!(s.prune_events(25).unwrap(), 2);
    assert!(s.remember_command_id("c1", 1000, 0).unwrap());
    assert!(!s.remember_command_id("c1", 2000, 0).unwrap());
    assert!(s.remember_command_id("c1", 9000, 5000).unwrap());
    s.check_writable().unwrap();
}

#[test]
fn audit_on_both_backends() {
    both(audit_body);
}

fn new(receiver: &str, name: &str, group: &str, at: i64) -> NewDelivery {
    NewDelivery {
        receiver: receiver.into(),
        integration: "webhook".into(),
        integration_index: 0,
        group_key: group.into(),
        alertnames: vec![name.into()],
        firing: 1,
        resolved: 0,
        payload: format!("{{\"n\":\"{name}\"}}"),
        created_at: at,
        deadline_at: at + 1000,
        unsendable: false,
    }
}

fn deliveries_body(s: &Store) {
    // Inserted and claimed in one commit; a second claim finds nothing.
    let (ids, claimed) = s
        .insert_deliveries_claiming(
            &[new("r", "A", "g1", 10), new("r", "B", "g2", 10)],
            Some(10),
        )
        .unwrap();
    assert_eq!(claimed.iter().map(|d| d.id).collect::<Vec<_>>(), ids);
    assert!(claimed.iter().all(|d| d.status == "sending"));
    assert!(s.claim_due_deliveries(10, 10).unwrap().is_empty());
    assert_eq!(s.count_unfinished_deliveries().unwrap(), 2);
    // Success is recorded once.
    assert!(s
        .finish_delivery_attempt(ids[0], 11, 2, &Outcome::Success)
        .unwrap());
    assert!(!s
        .finish_delivery_attempt(ids[0], 12, 2, &Outcome::Success)
        .unwrap());
    let d = s.get_delivery(ids[0]).unwrap().unwrap();
    assert_eq!(
        (d.status.as_str(), d.attempts, d.delivered_at),
        ("success", 1, Some(13))
    );
    assert_eq!(d.alertnames, vec!["A".to_string()]);
    assert_eq!(d.payload, "{\"n\":\"A\"}");
    // Retry, then a newer row of the same group supersedes it.
    let retry = Outcome::Retry {
        error: "500".into(),
        reason: "http_5xx".into(),
        next_at: 50,
    };
    assert!(s.finish_delivery_attempt(ids[1], 11, 1, &retry).unwrap());
    assert_eq!(s.next_delivery_due().unwrap(), Some(50));
    let newer = s.insert_deliveries(&[new("r", "B", "g2", 20)]).unwrap()[0];
    let got = s.claim_due_deliveries(60, 10).unwrap();
    assert_eq!(got.iter().map(|d| d.id).collect::<Vec<_>>(), vec![newer]);
    assert_eq!(
        s.get_delivery(ids[1]).unwrap().unwrap().status,
        "superseded"
    );
    // A crash leaves it sending; requeue makes it due again.
    assert_eq!(s.requeue_in_flight_deliveries(70).unwrap(), 1);
    assert_eq!(s.claim_due_deliveries(70, 10).unwrap().len(), 1);
    let failed = Outcome::Failed {
        error: "400".into(),
        reason: "http_4xx".into(),
    };
    assert!(s.finish_delivery_attempt(newer, 71, 1, &failed).unwrap());
    s.record_replay_attempt(newer, 80, 3, None).unwrap();
    let d = s.get_delivery(newer).unwrap().unwrap();
    assert_eq!((d.status.as_str(), d.attempts), ("success", 2));
    let at = s.delivery_attempts(newer).unwrap();
    assert_eq!(at.len(), 2);
    assert!(!at[0].ok && !at[0].replay && at[1].ok && at[1].replay);
    assert_eq!(at[0].error.as_deref(), Some("400"));
    // Unsendable rows are never claimed.
    let mut bad = new("r", "C", "g3", 90);
    bad.unsendable = true;
    let (bid, c) = s.insert_deliveries_claiming(&[bad], Some(90)).unwrap();
    assert!(c.is_empty());
    assert_eq!(s.get_delivery(bid[0]).unwrap().unwrap().status, "sending");
    assert_eq!(s.get_delivery(999_999).unwrap(), None);
    // History filters, newest first.
    let q = |f: &dyn Fn(&mut Query)| {
        let mut q = Query {
            limit: 10,
            ..Default::default()
        };
        f(&mut q);
        s.list_deliveries(&q)
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(q(&|_| {}), vec![bid[0], newer, ids[1], ids[0]]);
    assert_eq!(q(&|q| q.alertname = Some("B".into())), vec![newer, ids[1]]);
    assert_eq!(
        q(&|q| q.status = Some("success".into())),
        vec![newer, ids[0]]
    );
    assert_eq!(q(&|q| q.since = Some(20)), vec![bid[0], newer]);
    assert_eq!(q(&|q| q.until = Some(10)), vec![ids[1], ids[0]]);
    assert_eq!(
        q(&|q| {
            q.limit = 1;
            q.before_id = Some(newer);
            q.receiver = Some("r".into());
        }),
        vec![ids[1]]
    );
}

#[test]
fn deliveries_on_both_backends() {
    both(deliveries_body);
}

#[test]
fn migrations_are_versioned_idempotent_and_safe_to_race() {
    let Some(pg) = PgServer::start(&[]) else {
        return;
    };
    let dsn = fresh_db(&pg);
    let db = dsn
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    // Four replicas start at once on an empty database.
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let dsn = dsn.clone();
            std::thread::spawn(move || Store::open_postgres(&dsn).map(|_| ()))
        })
        .collect();
    for h in handles {
        h.join().unwrap().unwrap();
    }
    let rows = pg.psql_in(
        &db,
        "SELECT version, name FROM klaxon_schema_migrations ORDER BY version",
    );
    assert_eq!(
        rows.lines().collect::<Vec<_>>(),
        vec![
            "1|alerts",
            "2|notify",
            "3|audit",
            "4|notify_log",
            "5|silences",
            "6|store_probe",
            "7|posted_alerts",
            "8|autoheal_rules"
        ]
    );
    // Opening again applies nothing and keeps the data.
    let s = Store::open_postgres(&dsn).unwrap();
    silences::put(&s, "x", "y").unwrap();
    klaxon::store::autoheal::put(&s, "rule-a", "{\"name\": \"rule-a\"}").unwrap();
    drop(s);
    let s = Store::open_postgres(&dsn).unwrap();
    assert_eq!(silences::load_all(&s).unwrap().len(), 1);
    assert_eq!(
        klaxon::store::autoheal::load_all(&s).unwrap(),
        [("rule-a".to_string(), "{\"name\": \"rule-a\"}".to_string())]
    );
    klaxon::store::autoheal::delete(&s, "rule-a").unwrap();
    assert!(klaxon::store::autoheal::load_all(&s).unwrap().is_empty());
    assert_eq!(
        pg.psql_in(&db, "SELECT count(*) FROM klaxon_schema_migrations")
            .trim(),
        "8"
    );
}

#[test]
fn reconnects_after_the_server_comes_back() {
    let Some(mut pg) = PgServer::start(&[]) else {
        return;
    };
    let dsn = fresh_db(&pg);
    let db = dsn
        .rsplit('/')
        .next()
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let s = Store::open_postgres(&dsn).unwrap();
    s.check_writable().unwrap();
    // A killed session is replaced transparently or after one failed call.
    pg.psql(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{db}' AND pid <> pg_backend_pid()"
    ));
    let _ = s.check_writable();
    s.check_writable().unwrap();
    // A server that is down fails calls (counted, the DSN never shown) ...
    let before = s.errors_total();
    pg.stop();
    let e = s.check_writable().unwrap_err().to_string();
    assert!(!e.contains("postgresql://"), "{e}");
    assert!(e.contains(&format!("127.0.0.1:{}/{db}", pg.port)), "{e}");
    assert!(s.errors_total() > before);
    // ... and once it is back the store reconnects within the backoff.
    pg.start_again();
    let t0 = Instant::now();
    while s.check_writable().is_err() {
        assert!(t0.elapsed() < Duration::from_secs(15), "no reconnect");
        std::thread::sleep(Duration::from_millis(100));
    }
    silences::put(&s, "a", "b").unwrap();
    assert_eq!(silences::load_all(&s).unwrap().len(), 1);
}

#[test]
fn one_leader_and_takeover_within_two_leases() {
    let Some(pg) = PgServer::start(&[]) else {
        return;
    };
    let dsn = fresh_db(&pg);
    let lease = Duration::from_millis(1500);
    let a = Arc::new(Store::open_postgres(&dsn).unwrap());
    let b = Arc::new(Store::open_postgres(&dsn).unwrap());
    assert!(!a.is_leader() && !b.is_leader());
    let ea = leader::spawn(a.clone(), "pair", lease, |_| {}).unwrap();
    let t0 = Instant::now();
    while !a.is_leader() {
        assert!(t0.elapsed() < lease * 2, "a never became leader");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A row a left in flight is requeued by the next leader.
    let (ids, _) = a
        .insert_deliveries_claiming(&[new("r", "A", "g", 1)], Some(1))
        .unwrap();
    let _eb = leader::spawn(b.clone(), "pair", lease, |_| {}).unwrap();
    // A different cluster name is a different lock.
    let c = Arc::new(Store::open_postgres(&dsn).unwrap());
    let _ec = leader::spawn(c.clone(), "other", lease, |_| {}).unwrap();
    std::thread::sleep(lease);
    assert!(a.is_leader() && !b.is_leader() && c.is_leader());
    ea.stop();
    let t0 = Instant::now();
    while !b.is_leader() {
        assert!(t0.elapsed() < lease * 2, "no takeover within 2 x lease");
        std::thread::sleep(Duration::from_millis(20));
    }
    eprintln!("takeover after stop: {:?}", t0.elapsed());
    assert!(!a.is_leader());
    assert_eq!(b.get_delivery(ids[0]).unwrap().unwrap().status, "pending");
    assert_eq!(leader::status(&b)["role"], "leader");
    assert_eq!(leader::status(&b)["takeovers"], 1);
}

fn posted_body(s: &Store) {
    use klaxon::store::posted::{gc, load_all, put, Row};
    let row = |fp: &str, updated_at: i64, ends_at: i64| Row {
        fingerprint: fp.into(),
        updated_at,
        ends_at,
        body: format!("{fp}@{updated_at}"),
    };
    put(s, &[row("a", 2, 100), row("b", 1, 10)]).unwrap();
    // An older state never overwrites a newer one.
    put(s, &[row("a", 1, 100)]).unwrap();
    assert_eq!(load_all(s).unwrap(), ["a@2", "b@1"]);
    assert_eq!(gc(s, 50).unwrap(), 1);
    assert_eq!(load_all(s).unwrap(), ["a@2"]);
}

#[test]
fn posted_alerts_on_both_backends() {
    both(posted_body);
}
