//! The HA pair end to end: a throwaway PostgreSQL 15 (tests/it/common), two
//! `klaxon run` processes with the same config (`storage.backend:
//! postgres`, each with its own port and storage dir), a webhook sink
//! counting deliveries per alert. A stream of distinct firing alerts is
//! POSTed to both replicas (as a Prometheus HA pair does); midway the leader
//! is killed with SIGKILL. The follower must take over within 2 × lease,
//! every alert must be notified, and none twice (a send repeated with the
//! same Idempotency-Key, the documented at-least-once window, counts once).
//! Under `CI=true` a missing PostgreSQL is a failure.

use crate::common;
use common::free_port;

use axum::routing::post;
use common::postgres::PgServer;
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LEASE_SECS: u64 = 3;
const ALERTS: usize = 40;

/// A klaxon process, killed on drop.
struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_replica(dir: &std::path::Path, name: &str, config: &str) -> Replica {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let cfg = d.join("klaxon.yml");
    std::fs::write(
        &cfg,
        config.replace("@DATA@", &d.join("data").display().to_string()),
    )
    .unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(d.join("log.txt")).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_klaxon"))
        .args(["run", "--listen", &addr, "--config"])
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Replica {
        child,
        base: format!("http://{addr}"),
    }
}

async fn role(base: &str) -> Option<String> {
    let r = reqwest::Client::new()
        .get(format!("{base}/meta"))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .ok()?;
    let v: serde_json::Value = serde_json::from_str(&r.text().await.ok()?).ok()?;
    v["ha"]["role"].as_str().map(str::to_string)
}

async fn post_alert(base: &str, id: usize, starts_at: &str) -> bool {
    let body = serde_json::json!([
        {"labels": {"alertname": "HaStream", "id": id.to_string()}, "startsAt": starts_at}
    ]);
    reqwest::Client::new()
        .post(format!("{base}/api/v2/alerts"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
}

/// Per alert id, the `Idempotency-Key` of every firing delivery of it.
type Counts = Arc<Mutex<BTreeMap<String, Vec<String>>>>;

async fn sink(counts: Counts, keys: Arc<Mutex<Vec<String>>>) -> u16 {
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let counts = counts.clone();
            let keys = keys.clone();
            async move {
                let idem = headers
                    .get("idempotency-key")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                keys.lock().push(format!(
                    "{}\t{}\t{idem}",
                    v["externalURL"].as_str().unwrap_or(""),
                    v["groupKey"].as_str().unwrap_or("")
                ));
                for a in v["alerts"].as_array().into_iter().flatten() {
                    if a["status"] == "firing" {
                        let id = a["labels"]["id"].as_str().unwrap_or("?").to_string();
                        counts.lock().entry(id).or_default().push(idem.clone());
                    }
                }
                "ok"
            }
        }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(l, app).await;
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_mid_stream_follower_sends_everything_once() {
    let Some(pg) = PgServer::start(&[]) else {
        return;
    };
    pg.psql("CREATE DATABASE klaxon_ha");
    let dsn = format!(
        "postgresql://postgres@127.0.0.1:{}/klaxon_ha?sslmode=disable",
        pg.port
    );
    let counts: Counts = Arc::default();
    let keys = Arc::new(Mutex::new(Vec::new()));
    let port = sink(counts.clone(), keys.clone()).await;
    let config = format!(
        "storage:\n  path: @DATA@\n  backend: postgres\n  dsn: {dsn}\n  ha:\n    lease: {LEASE_SECS}s\n    cluster: test-pair\n\
         notify:\n  route:\n    receiver: hook\n    group_by: [alertname, id]\n    group_wait: 1s\n    group_interval: 1s\n    repeat_interval: 1h\n  \
         receivers:\n  - name: hook\n    webhook_configs:\n    - url: http://127.0.0.1:{port}/hook\n"
    );
    let tmp = tempfile::tempdir().unwrap();
    let mut a = Some(start_replica(tmp.path(), "a", &config));
    // b starts a little later, so a normally wins the first election.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut b = Some(start_replica(tmp.path(), "b", &config));

    // Wait for one leader and one follower.
    let lease = Duration::from_secs(LEASE_SECS);
    let end = Instant::now() + Duration::from_secs(30);
    let (ra, rb) = loop {
        let ra = role(&a.as_ref().unwrap().base).await;
        let rb = role(&b.as_ref().unwrap().base).await;
        if let (Some(x), Some(y)) = (&ra, &rb) {
            if x != y {
                break (x.clone(), y.clone());
            }
        }
        assert!(
            Instant::now() < end,
            "no leader/follower pair: {ra:?} {rb:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let a_leads = ra == "leader";
    eprintln!("roles: a={ra} b={rb}");

    // A silence made on the follower mutes the leader's notifications too
    // (replicas re-read silences from the store every 5 s).
    let follower = if a_leads { &b } else { &a };
    let now = klaxon::model::now_millis();
    let silence = serde_json::json!({
        "matchers": [{"name": "id", "value": "silenced", "isRegex": false, "isEqual": true}],
        "startsAt": klaxon::model::time::rfc3339_millis(now - 1000),
        "endsAt": klaxon::model::time::rfc3339_millis(now + 3_600_000),
        "createdBy": "ha test",
        "comment": "made on the follower",
    });
    let r = reqwest::Client::new()
        .post(format!(
            "{}/api/v2/silences",
            follower.as_ref().unwrap().base
        ))
        .header("content-type", "application/json")
        .body(silence.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Replicas re-read silences from the store every 5 s: wait until the
    // leader lists it.
    let leader = if a_leads { &a } else { &b };
    let end = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = reqwest::get(format!("{}/api/v2/silences", leader.as_ref().unwrap().base))
            .await
            .ok();
        let body = match listed {
            Some(r) => r.text().await.unwrap_or_default(),
            None => String::new(),
        };
        if body.contains("made on the follower") {
            break;
        }
        assert!(
            Instant::now() < end,
            "the leader never saw the follower's silence"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let at = klaxon::model::time::rfc3339_millis(klaxon::model::now_millis());
    for r in [&a, &b].into_iter().flatten() {
        let body = serde_json::json!([
            {"labels": {"alertname": "HaStream", "id": "silenced"}, "startsAt": at}
        ]);
        let resp = reqwest::Client::new()
            .post(format!("{}/api/v2/alerts", r.base))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    let mut killed_at = None;
    let mut takeover = None;
    for id in 0..ALERTS {
        for r in [&a, &b].into_iter().flatten() {
            // A killed replica's POSTs simply fail, like Prometheus' do.
            post_alert(&r.base, id, &at).await;
        }
        if id == ALERTS / 2 {
            // Kill the leader while notifications are in flight.
            let victim = if a_leads { &mut a } else { &mut b };
            if let Some(mut r) = victim.take() {
                let pid = r.child.id();
                let st = Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .status()
                    .unwrap();
                assert!(st.success());
                let _ = r.child.wait();
                killed_at = Some(Instant::now());
            }
        }
        if let (Some(k), None) = (killed_at, takeover) {
            let survivor = a.as_ref().or(b.as_ref()).unwrap();
            if role(&survivor.base).await.as_deref() == Some("leader") {
                takeover = Some(k.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let survivor = a.as_ref().or(b.as_ref()).unwrap().base.clone();
    let killed_at = killed_at.unwrap();
    while takeover.is_none() {
        if role(&survivor).await.as_deref() == Some("leader") {
            takeover = Some(killed_at.elapsed());
        }
        assert!(
            killed_at.elapsed() < lease * 4,
            "the follower never took over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let takeover = takeover.unwrap();
    eprintln!("takeover after SIGKILL: {takeover:?} (lease {lease:?})");
    assert!(
        takeover <= lease * 2,
        "takeover took {takeover:?} > 2 x {lease:?}"
    );

    // Every alert is notified; wait for the stragglers, then a little more
    // so a duplicate would have time to arrive.
    let end = Instant::now() + Duration::from_secs(30);
    while counts.lock().len() < ALERTS {
        assert!(
            Instant::now() < end,
            "missing notifications: got {:?}",
            counts.lock().keys().collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let counts = counts.lock().clone();
    assert!(
        !counts.contains_key("silenced"),
        "the follower's silence did not reach the leader"
    );
    // A send the killed leader made just before dying, before it could
    // record the answer, is sent again by the new leader (at-least-once for
    // that window, docs/operations.md) with the same Idempotency-Key, so a
    // receiver that honours the key sees every alert once. Two different
    // keys for one alert would be a second notification nobody can fold.
    let mut resent = 0;
    for (id, got) in &counts {
        let mut distinct = got.clone();
        distinct.sort();
        distinct.dedup();
        assert!(
            distinct.len() == 1 && !distinct[0].is_empty(),
            "alert {id} notified under keys {got:?}"
        );
        resent += got.len() - 1;
    }
    eprintln!("deliveries repeated with the same key after the SIGKILL: {resent}");
    assert_eq!(counts.len(), ALERTS);
    let sent = keys.lock().clone();
    // Each group once, once repeats under the same key are folded.
    let mut deliveries: Vec<(&str, &str)> = sent
        .iter()
        .filter_map(|s| {
            let mut f = s.split('\t').skip(1);
            Some((f.next()?, f.next()?))
        })
        .collect();
    deliveries.sort();
    deliveries.dedup();
    let mut groups: Vec<&str> = deliveries.iter().map(|d| d.0).collect();
    let n = groups.len();
    groups.dedup();
    assert_eq!(
        groups.len(),
        n,
        "a group was notified twice: {deliveries:?}"
    );
    // Both replicas sent a share: the old leader before the kill, the new
    // one after.
    let by_old = sent.iter().filter(|s| !s.starts_with(&survivor)).count();
    let by_new = sent.iter().filter(|s| s.starts_with(&survivor)).count();
    eprintln!("notifications sent by the killed leader: {by_old}, by the new leader: {by_new}");
    assert!(by_old > 0 && by_new > 0, "{sent:?}");
    // The survivor records the takeover in its events.
    let ev: serde_json::Value = reqwest::get(format!("{survivor}/api/v1/events/audit?kind=ha"))
        .await
        .unwrap()
        .text()
        .await
        .map(|t| serde_json::from_str(&t).unwrap_or_default())
        .unwrap_or_default();
    assert!(ev.to_string().contains("leader"), "{ev}");
}

/// The leader's PostgreSQL session ends under it (its backend terminated,
/// as a database failover or a network cut does): it must step down within
/// one check period (lease/3) plus the failed check, a leader must be back
/// within 2 × lease, and every alert streamed across the change is notified
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_losing_its_session_steps_down_without_duplicates() {
    let Some(pg) = PgServer::start(&[]) else {
        return;
    };
    pg.psql("CREATE DATABASE klaxon_ha2");
    let dsn = format!(
        "postgresql://postgres@127.0.0.1:{}/klaxon_ha2?sslmode=disable",
        pg.port
    );
    let counts: Counts = Arc::default();
    let keys = Arc::new(Mutex::new(Vec::new()));
    let port = sink(counts.clone(), keys.clone()).await;
    let config = format!(
        "storage:\n  path: @DATA@\n  backend: postgres\n  dsn: {dsn}\n  ha:\n    lease: {LEASE_SECS}s\n    cluster: session-loss\n\
         notify:\n  route:\n    receiver: hook\n    group_by: [alertname, id]\n    group_wait: 1s\n    group_interval: 1s\n    repeat_interval: 1h\n  \
         receivers:\n  - name: hook\n    webhook_configs:\n    - url: http://127.0.0.1:{port}/hook\n"
    );
    let tmp = tempfile::tempdir().unwrap();
    let a = start_replica(tmp.path(), "a", &config);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b = start_replica(tmp.path(), "b", &config);
    let lease = Duration::from_secs(LEASE_SECS);
    let end = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        let (ra, rb) = (role(&a.base).await, role(&b.base).await);
        match (ra.as_deref(), rb.as_deref()) {
            (Some("leader"), Some("follower")) => break &a,
            (Some("follower"), Some("leader")) => break &b,
            _ => {}
        }
        assert!(
            Instant::now() < end,
            "no leader/follower pair: {ra:?} {rb:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let at = klaxon::model::time::rfc3339_millis(klaxon::model::now_millis());
    let mut cut_at = None;
    let mut stepped_down = None;
    for id in 0..ALERTS {
        for r in [&a, &b] {
            post_alert(&r.base, id, &at).await;
        }
        if id == ALERTS / 2 {
            // End the session that holds the election's advisory lock.
            let out = pg.psql_in(
                "klaxon_ha2",
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted",
            );
            assert!(
                out.contains('t'),
                "no advisory lock holder to terminate: {out}"
            );
            cut_at = Some(Instant::now());
        }
        if let (Some(c), None) = (cut_at, stepped_down) {
            if role(&leader.base).await.as_deref() != Some("leader") {
                stepped_down = Some(c.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cut_at = cut_at.unwrap();
    // Either the leader notices at its next check and steps down (the other
    // replica may take the lock first), or it reconnects and takes the free
    // lock again on its new session before anyone else: then it never lost
    // it. Watch for two lease periods: never two leaders at once, and a
    // step-down, if any, within the lease.
    let end = cut_at + lease * 2;
    while Instant::now() < end {
        let (ra, rb) = (role(&a.base).await, role(&b.base).await);
        let leaders = [&ra, &rb]
            .iter()
            .filter(|r| r.as_deref() == Some("leader"))
            .count();
        assert!(leaders <= 1, "two leaders: {ra:?} {rb:?}");
        if stepped_down.is_none() && role(&leader.base).await.as_deref() != Some("leader") {
            stepped_down = Some(cut_at.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    match stepped_down {
        Some(t) => {
            eprintln!("stepped down {t:?} after its session ended (lease {lease:?})");
            // One check period (lease/3) plus a failing check bounded by
            // lease/3: 2/3 of the lease, the rest is slack for polling.
            assert!(t <= lease, "stepped down after {t:?}");
        }
        None => eprintln!("the leader took the free lock again on a new session"),
    }
    let (ra, rb) = (role(&a.base).await, role(&b.base).await);
    assert!(
        [&ra, &rb]
            .iter()
            .filter(|r| r.as_deref() == Some("leader"))
            .count()
            == 1,
        "no single leader after the cut: {ra:?} {rb:?}"
    );
    let end = Instant::now() + Duration::from_secs(30);
    while counts.lock().len() < ALERTS {
        assert!(
            Instant::now() < end,
            "missing notifications: got {:?}",
            counts.lock().keys().collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Time for a duplicate to show, two group intervals.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let counts = counts.lock().clone();
    let twice: Vec<_> = counts.iter().filter(|(_, k)| k.len() != 1).collect();
    assert!(twice.is_empty(), "notified more than once: {twice:?}");
    assert_eq!(counts.len(), ALERTS);
}
