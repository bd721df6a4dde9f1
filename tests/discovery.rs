//! Service discovery against local servers: the discovery manager with
//! each mechanism, the scrape manager fed by it, and bad answers.

mod common;
#[path = "common/fake_http.rs"]
mod fake_http;

use fake_http::{Action, FakeHttp, Req};
use klaxon::config::{load_str, TargetGroup};
use klaxon::discovery::{Manager, Options, SdConfig, SdMetrics, Snapshot};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

fn fast() -> Options {
    Options {
        throttle: Duration::from_millis(5),
        ..Options::default()
    }
}

/// The SD entries of job `job` in a prometheus.yml snippet.
fn sd_of(yaml: &str, job: &str) -> Vec<SdConfig> {
    let cfg = load_str(yaml, "test.yml").unwrap_or_else(|e| panic!("{e}"));
    cfg.scrape_config(job).expect("job").sd_configs()
}

fn one_set(job: &str, cfgs: Vec<SdConfig>) -> BTreeMap<String, Vec<SdConfig>> {
    BTreeMap::from([(job.to_string(), cfgs)])
}

/// Waits (up to 20s) for a snapshot that satisfies `f`.
async fn wait_for(
    rx: &mut watch::Receiver<Arc<Snapshot>>,
    what: &str,
    f: impl Fn(&Snapshot) -> bool,
) -> Arc<Snapshot> {
    let r = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let s = rx.borrow_and_update().clone();
            if f(&s) {
                return s;
            }
            rx.changed().await.expect("manager alive");
        }
    })
    .await;
    match r {
        Ok(s) => s,
        Err(_) => panic!("timed out waiting for {what}; last: {:#?}", rx.borrow()),
    }
}

/// Polls `f` until true (20s).
async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..400 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

fn targets(s: &Snapshot, job: &str) -> Vec<String> {
    let mut t: Vec<String> = s
        .get(job)
        .map(|gs| gs.iter().flat_map(|g| g.targets.clone()).collect())
        .unwrap_or_default();
    t.sort();
    t
}

fn group_with<'a>(s: &'a Snapshot, job: &str, target: &str) -> &'a TargetGroup {
    s[job]
        .iter()
        .find(|g| g.targets.iter().any(|t| t == target))
        .unwrap_or_else(|| panic!("no group with {target}: {s:#?}"))
}

// ---------------------------------------------------------------- http_sd

/// What the HTTP SD server answers next.
type Script = Arc<Mutex<Action>>;

fn take(script: &Script) -> Action {
    let mut a = script.lock().unwrap();
    match &*a {
        Action::Respond {
            status,
            content_type,
            headers,
            body,
        } => Action::Respond {
            status: *status,
            content_type: content_type.clone(),
            headers: headers.clone(),
            body: body.clone(),
        },
        Action::Hang => Action::Hang,
        Action::Reset => Action::Reset,
        Action::Stream { .. } => std::mem::replace(&mut *a, Action::Reset),
    }
}

#[tokio::test]
async fn http_sd_groups_labels_and_last_good_targets_on_errors() {
    let good = std::fs::read(common::shared(
        "upstream/prometheus/discovery/http/fixtures/http_sd.good.json",
    ))
    .expect("recorded http_sd answer");
    let script: Script = Arc::new(Mutex::new(Action::json(200, good)));
    let s2 = script.clone();
    let srv = FakeHttp::start(move |_r: &Req| take(&s2)).await;
    let yaml = format!(
        "scrape_configs:\n  - job_name: h\n    http_sd_configs:\n      - url: {}/sd\n        refresh_interval: 200ms\n",
        srv.url()
    );
    let metrics = SdMetrics::detached();
    let m = Manager::new("scrape", metrics.clone(), fast());
    let mut rx = m.subscribe();
    m.apply(one_set("h", sd_of(&yaml, "h")));
    let s = wait_for(&mut rx, "first targets", |s| {
        targets(s, "h") == ["127.0.0.1:9090"]
    })
    .await;
    let g = group_with(&s, "h", "127.0.0.1:9090");
    assert_eq!(g.labels["__meta_datacenter"], "bru1");
    assert_eq!(g.labels["__meta_url"], format!("{}/sd", srv.url()));
    let req = srv.requests.lock().unwrap()[0].clone();
    assert_eq!(
        req.header("X-Prometheus-Refresh-Interval-Seconds"),
        Some("0.2")
    );
    assert_eq!(req.header("Accept"), Some("application/json"));

    // Every kind of bad answer: counted as a failure, targets kept.
    let failures = || metrics.failures.with(&["http", "h"]).get();
    let bad = vec![
        Action::json(200, "{not json"),
        Action::json(200, r#"[{"targets": "a:1"}]"#),
        Action::json(
            200,
            r#"[{"targets": ["a:1"], "labels": {"bad-name": "x"}}]"#,
        ),
        Action::json(500, "oops"),
        Action::Respond {
            status: 200,
            content_type: "text/plain".into(),
            headers: vec![],
            body: b"[]".to_vec(),
        },
        Action::Reset,
        Action::Hang,
    ];
    for a in bad {
        let before = failures();
        *script.lock().unwrap() = a;
        eventually("a failure counted", || failures() > before).await;
        assert_eq!(
            targets(&m.current(), "h"),
            ["127.0.0.1:9090"],
            "last good targets kept"
        );
    }
    // Recovery replaces the groups; a group that went away is removed.
    *script.lock().unwrap() = Action::json(
        200,
        r#"[{"targets": ["b:1", "c:1"], "labels": {"x": "y"}}, {"targets": []}]"#,
    );
    let s = wait_for(&mut rx, "new targets", |s| {
        targets(s, "h") == ["b:1", "c:1"]
    })
    .await;
    assert_eq!(group_with(&s, "h", "b:1").labels["x"], "y");
    assert_eq!(metrics.discovered.with(&["h", "scrape"]).get(), 2.0);
}

#[tokio::test]
async fn http_sd_answer_over_the_size_limit_fails_cleanly() {
    let big = format!(
        r#"[{{"targets": ["a:1"], "labels": {{"pad": "{}"}}}}]"#,
        "x".repeat(4 << 20)
    );
    let small = Arc::new(AtomicUsize::new(1));
    let s2 = small.clone();
    let srv = FakeHttp::start(move |_r: &Req| {
        if s2.load(Ordering::SeqCst) == 1 {
            Action::json(200, r#"[{"targets": ["a:1"]}]"#)
        } else {
            Action::json(200, big.clone())
        }
    })
    .await;
    let yaml = format!(
        "scrape_configs:\n  - job_name: h\n    http_sd_configs:\n      - url: {}/sd\n        refresh_interval: 100ms\n",
        srv.url()
    );
    let metrics = SdMetrics::detached();
    let m = Manager::new(
        "scrape",
        metrics.clone(),
        Options {
            max_response_bytes: 1 << 20,
            ..fast()
        },
    );
    let mut rx = m.subscribe();
    m.apply(one_set("h", sd_of(&yaml, "h")));
    wait_for(&mut rx, "first targets", |s| targets(s, "h") == ["a:1"]).await;
    small.store(0, Ordering::SeqCst);
    let before = metrics.failures.with(&["http", "h"]).get();
    eventually("size failure", || {
        metrics.failures.with(&["http", "h"]).get() > before
    })
    .await;
    assert_eq!(targets(&m.current(), "h"), ["a:1"]);
}

// ------------------------------------------------- manager and scrape pools

#[tokio::test]
async fn mechanisms_of_one_job_merge_and_unchanged_targets_keep_their_loop() {
    let answer = Arc::new(Mutex::new(r#"[{"targets": ["127.0.0.1:1"]}]"#.to_string()));
    let a2 = answer.clone();
    let srv = FakeHttp::start(move |_r: &Req| Action::json(200, a2.lock().unwrap().clone())).await;
    let yaml = format!(
        "scrape_configs:\n  - job_name: j\n    scrape_interval: 1h\n    static_configs:\n      - targets: ['127.0.0.1:2']\n    http_sd_configs:\n      - url: {}/sd\n        refresh_interval: 100ms\n",
        srv.url()
    );
    let cfg = load_str(&yaml, "t.yml").unwrap();
    let head = Arc::new(klaxon::tsdb::Head::new(Default::default()));
    let registry = klaxon::metrics::Registry::new();
    let scrape = klaxon::scrape::manager::Manager::new(
        head,
        klaxon::scrape::ScrapeMetrics::register(&registry),
    );
    let sd = Manager::new("scrape", SdMetrics::register(&registry), fast());
    scrape.attach_discovery(sd.clone());
    scrape.apply_config(&cfg.scrape_configs);
    let active =
        |s: &klaxon::scrape::manager::Manager| -> Vec<Arc<klaxon::scrape::target::Target>> {
            s.targets().into_iter().flat_map(|p| p.active).collect()
        };
    eventually("static and http targets in one pool", || {
        active(&scrape).len() == 2
    })
    .await;
    let before = active(&scrape);
    let static_target = before
        .iter()
        .find(|t| t.scrape_url.contains(":2/"))
        .unwrap()
        .clone();
    // The http answer changes; the static target keeps its loop (same Arc).
    *answer.lock().unwrap() = r#"[{"targets": ["127.0.0.1:3"]}]"#.to_string();
    eventually("http target replaced", || {
        active(&scrape).iter().any(|t| t.scrape_url.contains(":3/"))
    })
    .await;
    let after = active(&scrape);
    assert_eq!(after.len(), 2);
    let kept = after.iter().find(|t| t.scrape_url.contains(":2/")).unwrap();
    assert!(
        Arc::ptr_eq(kept, &static_target),
        "unchanged target kept its loop"
    );
    let text = registry.encode(false);
    assert!(
        text.contains("klaxon_sd_discovered_targets{config=\"j\",name=\"scrape\"} 2"),
        "{text}"
    );
    // A reload without the job stops its pool.
    scrape.apply_config(&[]);
    eventually("pool gone", || scrape.targets().is_empty()).await;
    scrape.shutdown().await;
}

// ---------------------------------------------------------------- dns_sd

/// A dnsmasq on 127.0.0.1:`port` answering for `sd.test` from `records`
/// (dnsmasq options such as `--srv-host=...`).
fn dnsmasq(port: u16, records: &[String]) -> Option<common::Proc> {
    let bin = std::path::Path::new("/usr/sbin/dnsmasq");
    if !bin.is_file() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "dnsmasq missing under CI (Debian package dnsmasq-base, see .ci/run)"
        );
        eprintln!("SKIPPED: dnsmasq not installed");
        return None;
    }
    let child = std::process::Command::new(bin)
        .args([
            "-k",
            &format!("--port={port}"),
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--local=/sd.test/",
        ])
        .args(records)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start dnsmasq");
    Some(common::Proc(child))
}

fn dns_manager(servers: Vec<std::net::SocketAddr>, metrics: Arc<SdMetrics>) -> Arc<Manager> {
    Manager::new(
        "scrape",
        metrics,
        Options {
            dns_servers: Some(servers),
            dns_timeout: Duration::from_millis(300),
            ..fast()
        },
    )
}

#[tokio::test]
async fn dns_sd_srv_and_a_records_from_dnsmasq_follow_changes() {
    let port = common::free_port();
    let srv_v1 = [
        "--srv-host=_web._tcp.sd.test,host1.sd.test,8080".to_string(),
        "--srv-host=_web._tcp.sd.test,host2.sd.test,8081".to_string(),
        "--host-record=host1.sd.test,127.0.0.2".to_string(),
        "--host-record=multi.sd.test,127.0.0.3".to_string(),
        "--host-record=multi.sd.test,127.0.0.4".to_string(),
        "--mx-host=sd.test,mail.sd.test,10".to_string(),
    ];
    let Some(mut dns) = dnsmasq(port, &srv_v1) else {
        return;
    };
    let yaml = "scrape_configs:\n  - job_name: d\n    dns_sd_configs:\n      - names: [_web._tcp.sd.test, _none._tcp.sd.test]\n        refresh_interval: 200ms\n      - names: [multi.sd.test]\n        type: A\n        port: 9100\n        refresh_interval: 200ms\n      - names: [sd.test]\n        type: MX\n        port: 25\n        refresh_interval: 200ms\n";
    let metrics = SdMetrics::detached();
    let m = dns_manager(vec![([127, 0, 0, 1], port).into()], metrics.clone());
    let mut rx = m.subscribe();
    m.apply(one_set("d", sd_of(yaml, "d")));
    let want = [
        "127.0.0.3:9100",
        "127.0.0.4:9100",
        "host1.sd.test:8080",
        "host2.sd.test:8081",
        "mail.sd.test:25",
    ];
    let s = wait_for(&mut rx, "dns targets", |s| targets(s, "d") == want).await;
    let g = group_with(&s, "d", "host1.sd.test:8080");
    let expect: BTreeMap<String, String> = [
        ("__meta_dns_name", "_web._tcp.sd.test"),
        ("__meta_dns_srv_record_target", "host1.sd.test."),
        ("__meta_dns_srv_record_port", "8080"),
        ("__meta_dns_mx_record_target", ""),
        ("__meta_dns_ns_record_target", ""),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(g.labels, expect);
    let a = group_with(&s, "d", "127.0.0.3:9100");
    assert_eq!(a.labels["__meta_dns_name"], "multi.sd.test");
    assert_eq!(a.labels["__meta_dns_srv_record_target"], "");
    let mx = group_with(&s, "d", "mail.sd.test:25");
    assert_eq!(mx.labels["__meta_dns_mx_record_target"], "mail.sd.test.");

    // The server goes away: failures counted, the last targets stay.
    drop(dns);
    let failures = || metrics.failures.with(&["dns", "d"]).get();
    let before = failures();
    eventually("dns failures counted", || failures() > before + 2.0).await;
    assert_eq!(targets(&m.current(), "d"), want);

    // Back with other records: a target disappears, one appears.
    let srv_v2 = [
        "--srv-host=_web._tcp.sd.test,host2.sd.test,8081".to_string(),
        "--srv-host=_web._tcp.sd.test,host3.sd.test,8082".to_string(),
        "--host-record=multi.sd.test,127.0.0.3".to_string(),
        "--mx-host=sd.test,mail.sd.test,10".to_string(),
    ];
    dns = dnsmasq(port, &srv_v2).expect("dnsmasq");
    wait_for(&mut rx, "changed dns targets", |s| {
        targets(s, "d")
            == [
                "127.0.0.3:9100",
                "host2.sd.test:8081",
                "host3.sd.test:8082",
                "mail.sd.test:25",
            ]
    })
    .await;
    drop(dns);
}

#[tokio::test]
async fn dns_sd_timeout_is_a_failure_naming_the_name() {
    // A server that never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let conf = klaxon::discovery::dns::ResolverConf {
        servers: vec![silent.local_addr().unwrap()],
        search: vec![],
        ndots: 1,
        timeout: Duration::from_millis(200),
    };
    let cfg = match &sd_of(
        "scrape_configs:\n  - job_name: d\n    dns_sd_configs:\n      - names: [x.sd.test]\n",
        "d",
    )[0]
    {
        SdConfig::Dns(c) => c.clone(),
        other => panic!("{other:?}"),
    };
    let e = klaxon::discovery::dns::refresh_one(&conf, &cfg, "x.sd.test")
        .await
        .unwrap_err();
    assert!(e.contains("x.sd.test") && e.contains("timed out"), "{e}");

    // Through the manager: counted, nothing published, no panic.
    let metrics = SdMetrics::detached();
    let m = dns_manager(vec![silent.local_addr().unwrap()], metrics.clone());
    m.apply(one_set(
        "d",
        sd_of(
            "scrape_configs:\n  - job_name: d\n    dns_sd_configs:\n      - names: [x.sd.test]\n        refresh_interval: 100ms\n",
            "d",
        ),
    ));
    eventually("timeout counted", || {
        metrics.failures.with(&["dns", "d"]).get() >= 1.0
    })
    .await;
    assert!(targets(&m.current(), "d").is_empty());
}
