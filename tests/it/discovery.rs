//! Service discovery against local servers: the discovery manager with
//! each mechanism, the scrape manager fed by it, and bad answers.

use crate::common;
use crate::common::fake_http;
use crate::common::fake_kube;

use fake_http::{Action, FakeHttp, Req};
use klaxon::config::TargetGroup;
use klaxon::discovery::{Manager, Options, SdConfig, SdMetrics, Snapshot};
use klaxon::settings::load_str;
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
        klaxon::scrape::ScrapeMetrics::register(&registry, None),
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

/// The scrape pool relabels only the groups that changed: with 2,000
/// groups, one changed, one removed and one added group cost three
/// relabelings, and the unchanged targets keep their loops.
#[tokio::test]
async fn scrape_pool_relabels_only_changed_groups() {
    let cfg = load_str(
        "scrape_configs:\n  - job_name: j\n    scrape_interval: 1h\n    relabel_configs:\n      - source_labels: [keep]\n        regex: 'yes'\n        action: keep\n",
        "t.yml",
    )
    .unwrap();
    let head = Arc::new(klaxon::tsdb::Head::new(Default::default()));
    let registry = klaxon::metrics::Registry::new();
    let scrape = klaxon::scrape::manager::Manager::new(
        head,
        klaxon::scrape::ScrapeMetrics::register(&registry, None),
    );
    scrape.apply_config(&cfg.scrape_configs);
    let group = |i: usize, keep: &str| {
        Arc::new(TargetGroup {
            targets: vec![format!("127.0.0.1:{}", 10000 + i)],
            labels: BTreeMap::from([("keep".to_string(), keep.to_string())]),
            source: format!("g{i:05}"),
            target_labels: Vec::new(),
        })
    };
    // Every tenth target is scraped, the others are dropped.
    let mut groups: Vec<Arc<TargetGroup>> = (0..2000)
        .map(|i| group(i, if i % 10 == 0 { "yes" } else { "no" }))
        .collect();
    let base = scrape.groups_relabeled();
    scrape.sync_groups("j", groups.clone());
    assert_eq!(scrape.groups_relabeled() - base, 2000);
    let active = |s: &klaxon::scrape::manager::Manager| {
        let v = s.targets();
        (v[0].active.clone(), v[0].dropped.len())
    };
    let (before, dropped) = active(&scrape);
    assert_eq!((before.len(), dropped), (200, 1800));

    // Group 10 (scraped) changes to dropped, group 20 goes away, a new
    // scraped group comes; the same list again costs nothing.
    groups[10] = group(10, "no");
    groups.remove(20);
    groups.push(group(5000, "yes"));
    let base = scrape.groups_relabeled();
    scrape.sync_groups("j", groups.clone());
    scrape.sync_groups("j", groups.clone());
    assert_eq!(scrape.groups_relabeled() - base, 2);
    let (after, dropped) = active(&scrape);
    assert_eq!((after.len(), dropped), (199, 1801));
    let port = |t: &Arc<klaxon::scrape::target::Target>| t.scrape_url.clone();
    assert!(after.iter().any(|t| port(t).contains(":15000/")));
    for t in &after {
        if let Some(old) = before.iter().find(|b| port(b) == port(t)) {
            assert!(Arc::ptr_eq(old, t), "{} kept its loop", port(t));
        }
    }
    assert!(!after
        .iter()
        .any(|t| port(t).contains(":10010/") || port(t).contains(":10020/")));
    scrape.shutdown().await;
}

// ---------------------------------------------------------------- dns_sd

use common::dnsmasq;

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

// ------------------------------------------------------------ kubernetes

use fake_kube::FakeKube;
use serde_json::json;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The full label set of the target at `addr` (group and target labels,
/// `__address__` included), as Prometheus' discovery tests write them.
fn target_labels(s: &Snapshot, job: &str, addr: &str) -> BTreeMap<String, String> {
    let g = group_with(s, job, addr);
    let (_, labels) = g
        .each_target()
        .find(|(t, _)| *t == addr)
        .expect("target in its group");
    let mut l = labels.into_owned();
    l.insert("__address__".into(), addr.to_string());
    l
}

fn kube_manager(metrics: Arc<SdMetrics>) -> Arc<Manager> {
    Manager::new(
        "scrape",
        metrics,
        Options {
            request_timeout: Duration::from_millis(500),
            ..fast()
        },
    )
}

fn kube_sd(kube: &FakeKube, extra: &str) -> Vec<SdConfig> {
    let yaml = format!(
        "scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - api_server: {}\n{extra}",
        kube.url()
    );
    sd_of(&yaml, "k")
}

fn multi_port_pod() -> serde_json::Value {
    json!({
        "metadata": {
            "name": "testpod", "namespace": "default", "uid": "abc123",
            "labels": {"test/label": "testvalue"},
            "annotations": {"test/annotation": "testannotationvalue"},
            "ownerReferences": [{"kind": "testcontrollerkind", "name": "testcontrollername", "controller": true}]
        },
        "spec": {
            "nodeName": "testnode",
            "containers": [
                {"name": "testcontainer0", "image": "testcontainer0:latest", "ports": [
                    {"name": "testport0", "protocol": "TCP", "containerPort": 9000},
                    {"name": "testport1", "protocol": "UDP", "containerPort": 9001}
                ]},
                {"name": "testcontainer1", "image": "testcontainer1:latest"}
            ]
        },
        "status": {
            "podIP": "1.2.3.4", "hostIP": "2.3.4.5", "phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}],
            "containerStatuses": [
                {"name": "testcontainer0", "containerID": "docker://a1b2c3d4e5f6"},
                {"name": "testcontainer1", "containerID": "containerd://6f5e4d3c2b1a"}
            ]
        }
    })
}

fn simple_pod(name: &str, ip: &str) -> serde_json::Value {
    json!({
        "metadata": {"name": name, "namespace": "default", "uid": format!("uid-{name}")},
        "spec": {"nodeName": "n1", "containers": [{"name": "c", "image": "i", "ports": [{"name": "web", "containerPort": 8080, "protocol": "TCP"}]}]},
        "status": {"podIP": ip, "hostIP": "10.0.0.1", "phase": "Running"}
    })
}

#[tokio::test]
async fn kubernetes_pod_role_labels_and_watch_events() {
    let kube = FakeKube::start().await;
    kube.put("/api/v1/pods", multi_port_pod());
    let metrics = SdMetrics::detached();
    let m = kube_manager(metrics.clone());
    let mut rx = m.subscribe();
    m.apply(one_set("k", kube_sd(&kube, "        role: pod\n")));
    let s = wait_for(&mut rx, "pod targets", |s| targets(s, "k").len() == 3).await;
    let pod = [
        ("__meta_kubernetes_pod_name", "testpod"),
        ("__meta_kubernetes_namespace", "default"),
        ("__meta_kubernetes_pod_label_test_label", "testvalue"),
        ("__meta_kubernetes_pod_labelpresent_test_label", "true"),
        (
            "__meta_kubernetes_pod_annotation_test_annotation",
            "testannotationvalue",
        ),
        (
            "__meta_kubernetes_pod_annotationpresent_test_annotation",
            "true",
        ),
        ("__meta_kubernetes_pod_node_name", "testnode"),
        ("__meta_kubernetes_pod_ip", "1.2.3.4"),
        ("__meta_kubernetes_pod_host_ip", "2.3.4.5"),
        ("__meta_kubernetes_pod_ready", "true"),
        ("__meta_kubernetes_pod_phase", "Running"),
        ("__meta_kubernetes_pod_uid", "abc123"),
        (
            "__meta_kubernetes_pod_controller_kind",
            "testcontrollerkind",
        ),
        (
            "__meta_kubernetes_pod_controller_name",
            "testcontrollername",
        ),
    ];
    let with = |extra: &[(&str, &str)]| {
        let mut l = labels(&pod);
        l.extend(labels(extra));
        l
    };
    assert_eq!(
        target_labels(&s, "k", "1.2.3.4:9000"),
        with(&[
            ("__address__", "1.2.3.4:9000"),
            ("__meta_kubernetes_pod_container_name", "testcontainer0"),
            (
                "__meta_kubernetes_pod_container_image",
                "testcontainer0:latest"
            ),
            ("__meta_kubernetes_pod_container_port_name", "testport0"),
            ("__meta_kubernetes_pod_container_port_number", "9000"),
            ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
            ("__meta_kubernetes_pod_container_init", "false"),
            (
                "__meta_kubernetes_pod_container_id",
                "docker://a1b2c3d4e5f6"
            ),
        ])
    );
    assert_eq!(
        target_labels(&s, "k", "1.2.3.4:9001")["__meta_kubernetes_pod_container_port_protocol"],
        "UDP"
    );
    // One group per pod, its targets one per port, sourced as Prometheus
    // does (`pod/NS/NAME`, behind the provider's prefix).
    let g = group_with(&s, "k", "1.2.3.4:9000");
    assert!(g.source.ends_with("/pod/default/testpod"), "{}", g.source);
    assert_eq!(g.targets, ["1.2.3.4:9000", "1.2.3.4:9001", "1.2.3.4"]);
    assert_eq!(g.labels["__meta_kubernetes_pod_name"], "testpod");
    assert!(!g
        .labels
        .contains_key("__meta_kubernetes_pod_container_name"));
    assert_eq!(
        target_labels(&s, "k", "1.2.3.4"),
        with(&[
            ("__address__", "1.2.3.4"),
            ("__meta_kubernetes_pod_container_name", "testcontainer1"),
            (
                "__meta_kubernetes_pod_container_image",
                "testcontainer1:latest"
            ),
            ("__meta_kubernetes_pod_container_init", "false"),
            (
                "__meta_kubernetes_pod_container_id",
                "containerd://6f5e4d3c2b1a"
            ),
        ])
    );
    let lists = kube.lists();
    assert!(lists[0].starts_with("/api/v1/pods?limit=500"), "{lists:?}");

    // Watch: ADDED, MODIFIED (one port fewer), BOOKMARK, DELETED.
    eventually("watch open", || kube.open_watches() == 1).await;
    kube.put("/api/v1/pods", simple_pod("p2", "10.1.0.2"));
    wait_for(&mut rx, "added pod", |s| {
        targets(s, "k").contains(&"10.1.0.2:8080".to_string())
    })
    .await;
    let mut p = multi_port_pod();
    p["spec"]["containers"][0]["ports"] =
        json!([{"name": "testport0", "protocol": "TCP", "containerPort": 9000}]);
    kube.put("/api/v1/pods", p);
    wait_for(&mut rx, "modified pod", |s| {
        targets(s, "k") == ["1.2.3.4", "1.2.3.4:9000", "10.1.0.2:8080"]
    })
    .await;
    kube.bookmark("/api/v1/pods");
    kube.delete("/api/v1/pods", "default/testpod");
    wait_for(&mut rx, "deleted pod", |s| {
        targets(s, "k") == ["10.1.0.2:8080"]
    })
    .await;

    // 410 in the stream: list again. A pod deleted while the watch was
    // gone disappears, one added appears.
    kube.delete_quietly("/api/v1/pods", "default/p2");
    kube.put_quietly("/api/v1/pods", simple_pod("p3", "10.1.0.3"));
    kube.expire_watches();
    wait_for(&mut rx, "relisted", |s| {
        targets(s, "k") == ["10.1.0.3:8080"]
    })
    .await;
    assert_eq!(kube.lists().len(), 2);
    // 410 answering the watch request: list again too.
    eventually("watch reopened", || kube.open_watches() == 1).await;
    kube.put_quietly("/api/v1/pods", simple_pod("p4", "10.1.0.4"));
    kube.gone_next_watch();
    kube.close_watches();
    wait_for(&mut rx, "relisted after 410", |s| {
        targets(s, "k") == ["10.1.0.3:8080", "10.1.0.4:8080"]
    })
    .await;
    // The watch resumed from the last version it saw (the bookmark's or
    // an event's), never from scratch.
    let watches = kube.watches();
    assert!(
        watches
            .iter()
            .all(|w| w.contains("resourceVersion=") && w.contains("allowWatchBookmarks=true")),
        "{watches:?}"
    );
    assert_eq!(metrics.failures.with(&["kubernetes", "k"]).get(), 0.0);
}

#[tokio::test]
async fn kubernetes_node_service_and_ingress_roles() {
    let kube = FakeKube::start().await;
    kube.put(
        "/api/v1/nodes",
        json!({
            "metadata": {"name": "testnode", "labels": {"test-label": "testvalue"}, "annotations": {"test-annotation": "testannotationvalue"}},
            "spec": {"providerID": "aws:///de/1234"},
            "status": {
                "addresses": [{"type": "InternalIP", "address": "1.2.3.4"}, {"type": "Hostname", "address": "h1"}],
                "daemonEndpoints": {"kubeletEndpoint": {"port": 10250}},
                "conditions": [{"type": "Ready", "status": "True"}]
            }
        }),
    );
    kube.put(
        "/api/v1/services",
        json!({
            "metadata": {"name": "testservice", "namespace": "default", "labels": {"test-label": "testvalue"}, "annotations": {"test-annotation": "testannotationvalue"}},
            "spec": {"type": "ClusterIP", "clusterIP": "10.0.0.1", "ports": [
                {"name": "testport", "protocol": "TCP", "port": 30900}
            ]}
        }),
    );
    kube.put(
        "/api/v1/services",
        json!({
            "metadata": {"name": "ext", "namespace": "default"},
            "spec": {"type": "ExternalName", "externalName": "FooExternalName", "ports": [{"name": "p", "protocol": "TCP", "port": 31900}]}
        }),
    );
    kube.put(
        "/api/v1/services",
        json!({
            "metadata": {"name": "lb", "namespace": "default"},
            "spec": {"type": "LoadBalancer", "clusterIP": "10.0.0.2", "ports": [{"name": "p", "protocol": "TCP", "port": 80}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "127.0.0.1"}, {"ip": "127.0.0.2"}]}}
        }),
    );
    kube.put(
        "/apis/networking.k8s.io/v1/ingresses",
        json!({
            "metadata": {"name": "testingress", "namespace": "default", "labels": {"test/label": "testvalue"}},
            "spec": {
                "ingressClassName": "testclass",
                "tls": [{"hosts": ["*.example.com"]}],
                "rules": [
                    {"host": "example.com", "http": {"paths": [{"path": "/"}, {"path": "/foo"}]}},
                    {"host": "test.example.com", "http": {"paths": [{"path": ""}]}},
                    {"host": "nohttp.example.com"}
                ]
            }
        }),
    );
    let m = kube_manager(SdMetrics::detached());
    let mut rx = m.subscribe();
    let mut sets = BTreeMap::new();
    for role in ["node", "service", "ingress"] {
        let yaml = format!(
            "scrape_configs:\n  - job_name: {role}\n    kubernetes_sd_configs:\n      - api_server: {}\n        role: {role}\n",
            kube.url()
        );
        sets.insert(role.to_string(), sd_of(&yaml, role));
    }
    m.apply(sets);
    let s = wait_for(&mut rx, "three roles", |s| {
        targets(s, "node").len() == 1
            && targets(s, "service").len() == 3
            && targets(s, "ingress").len() == 4
    })
    .await;
    assert_eq!(
        target_labels(&s, "node", "1.2.3.4:10250"),
        labels(&[
            ("__address__", "1.2.3.4:10250"),
            ("instance", "testnode"),
            ("__meta_kubernetes_node_name", "testnode"),
            ("__meta_kubernetes_node_provider_id", "aws:///de/1234"),
            ("__meta_kubernetes_node_label_test_label", "testvalue"),
            ("__meta_kubernetes_node_labelpresent_test_label", "true"),
            (
                "__meta_kubernetes_node_annotation_test_annotation",
                "testannotationvalue"
            ),
            (
                "__meta_kubernetes_node_annotationpresent_test_annotation",
                "true"
            ),
            ("__meta_kubernetes_node_address_InternalIP", "1.2.3.4"),
            ("__meta_kubernetes_node_address_Hostname", "h1"),
            ("__meta_kubernetes_node_condition_ready", "true"),
        ])
    );
    assert_eq!(
        target_labels(&s, "service", "testservice.default.svc:30900"),
        labels(&[
            ("__address__", "testservice.default.svc:30900"),
            ("__meta_kubernetes_namespace", "default"),
            ("__meta_kubernetes_service_name", "testservice"),
            ("__meta_kubernetes_service_label_test_label", "testvalue"),
            ("__meta_kubernetes_service_labelpresent_test_label", "true"),
            (
                "__meta_kubernetes_service_annotation_test_annotation",
                "testannotationvalue"
            ),
            (
                "__meta_kubernetes_service_annotationpresent_test_annotation",
                "true"
            ),
            ("__meta_kubernetes_service_port_name", "testport"),
            ("__meta_kubernetes_service_port_number", "30900"),
            ("__meta_kubernetes_service_port_protocol", "TCP"),
            ("__meta_kubernetes_service_type", "ClusterIP"),
            ("__meta_kubernetes_service_cluster_ip", "10.0.0.1"),
        ])
    );
    let ext = target_labels(&s, "service", "ext.default.svc:31900");
    assert_eq!(
        ext["__meta_kubernetes_service_external_name"],
        "FooExternalName"
    );
    assert!(!ext.contains_key("__meta_kubernetes_service_cluster_ip"));
    let lb = target_labels(&s, "service", "lb.default.svc:80");
    assert_eq!(
        lb["__meta_kubernetes_service_loadbalancer_ip"],
        "127.0.0.1,127.0.0.2"
    );

    let ing = |host: &str, path: &str| {
        let mut l = s["ingress"]
            .iter()
            .flat_map(|g| {
                g.each_target()
                    .map(|(t, l)| (t.to_string(), l.into_owned()))
            })
            .find(|(t, l)| t == host && l["__meta_kubernetes_ingress_path"] == path)
            .unwrap_or_else(|| panic!("ingress {host}{path}"))
            .1;
        l.insert("__address__".into(), host.to_string());
        l
    };
    let common = [
        ("__meta_kubernetes_namespace", "default"),
        ("__meta_kubernetes_ingress_name", "testingress"),
        ("__meta_kubernetes_ingress_class_name", "testclass"),
        ("__meta_kubernetes_ingress_label_test_label", "testvalue"),
        ("__meta_kubernetes_ingress_labelpresent_test_label", "true"),
    ];
    let mut want = labels(&common);
    want.extend(labels(&[
        ("__address__", "example.com"),
        ("__meta_kubernetes_ingress_scheme", "http"),
        ("__meta_kubernetes_ingress_host", "example.com"),
        ("__meta_kubernetes_ingress_path", "/foo"),
    ]));
    assert_eq!(ing("example.com", "/foo"), want);
    assert_eq!(
        ing("test.example.com", "/")["__meta_kubernetes_ingress_scheme"],
        "https"
    );
    assert_eq!(
        ing("nohttp.example.com", "/")["__meta_kubernetes_ingress_scheme"],
        "https"
    );
}

#[tokio::test]
async fn kubernetes_endpoints_and_endpointslice_roles_join_pods_and_services() {
    let kube = FakeKube::start().await;
    let pod = json!({
        "metadata": {"name": "testpod", "namespace": "default", "uid": "deadbeef"},
        "spec": {"nodeName": "testnode", "containers": [
            {"name": "c1", "image": "c1:latest", "ports": [{"name": "mainport", "containerPort": 9000, "protocol": "TCP"}]},
            {"name": "c2", "image": "c2:latest", "ports": [{"name": "sideport", "containerPort": 9001, "protocol": "TCP"}]}
        ]},
        "status": {"hostIP": "2.3.4.5", "podIP": "1.2.3.4"}
    });
    kube.put("/api/v1/pods", pod.clone());
    kube.put(
        "/api/v1/services",
        json!({"metadata": {"name": "testendpoints", "namespace": "default", "labels": {"app/name": "test"}}, "spec": {"type": "ClusterIP"}}),
    );
    kube.put(
        "/api/v1/endpoints",
        json!({
            "metadata": {"name": "testendpoints", "namespace": "default"},
            "subsets": [{
                "addresses": [{"ip": "4.3.2.1", "targetRef": {"kind": "Pod", "name": "testpod", "namespace": "default"}}],
                "notReadyAddresses": [{"ip": "2.3.4.5", "hostname": "h", "nodeName": "foobar"}],
                "ports": [{"name": "testport", "port": 9000, "protocol": "TCP"}]
            }]
        }),
    );
    kube.put(
        "/apis/discovery.k8s.io/v1/endpointslices",
        json!({
            "metadata": {"name": "testendpoints-abc", "namespace": "default", "labels": {"kubernetes.io/service-name": "testendpoints"}},
            "addressType": "IPv4",
            "endpoints": [
                {"addresses": ["4.3.2.1"], "conditions": {"ready": true, "serving": true, "terminating": false},
                 "targetRef": {"kind": "Pod", "name": "testpod", "namespace": "default"}, "nodeName": "foobar", "zone": "us-east-1a",
                 "hostname": "testendpoint1"}
            ],
            "ports": [{"name": "testport", "port": 9000, "protocol": "TCP", "appProtocol": "http"}]
        }),
    );
    let m = kube_manager(SdMetrics::detached());
    let mut rx = m.subscribe();
    let mut sets = BTreeMap::new();
    for role in ["endpoints", "endpointslice"] {
        let yaml = format!(
            "scrape_configs:\n  - job_name: {role}\n    kubernetes_sd_configs:\n      - api_server: {}\n        role: {role}\n",
            kube.url()
        );
        sets.insert(role.to_string(), sd_of(&yaml, role));
    }
    m.apply(sets);
    let s = wait_for(&mut rx, "endpoints targets", |s| {
        targets(s, "endpoints").len() == 3 && targets(s, "endpointslice").len() == 2
    })
    .await;
    let pod_labels = [
        ("__meta_kubernetes_pod_name", "testpod"),
        ("__meta_kubernetes_pod_ip", "1.2.3.4"),
        ("__meta_kubernetes_pod_ready", "unknown"),
        ("__meta_kubernetes_pod_phase", ""),
        ("__meta_kubernetes_pod_node_name", "testnode"),
        ("__meta_kubernetes_pod_host_ip", "2.3.4.5"),
        ("__meta_kubernetes_pod_uid", "deadbeef"),
    ];
    let service = [
        ("__meta_kubernetes_namespace", "default"),
        ("__meta_kubernetes_service_name", "testendpoints"),
        ("__meta_kubernetes_service_label_app_name", "test"),
        ("__meta_kubernetes_service_labelpresent_app_name", "true"),
    ];
    let mut want = labels(&pod_labels);
    want.extend(labels(&service));
    want.extend(labels(&[
        ("__address__", "4.3.2.1:9000"),
        ("__meta_kubernetes_endpoints_name", "testendpoints"),
        ("__meta_kubernetes_endpoint_port_name", "testport"),
        ("__meta_kubernetes_endpoint_port_protocol", "TCP"),
        ("__meta_kubernetes_endpoint_ready", "true"),
        ("__meta_kubernetes_endpoint_address_target_kind", "Pod"),
        ("__meta_kubernetes_endpoint_address_target_name", "testpod"),
        ("__meta_kubernetes_pod_container_name", "c1"),
        ("__meta_kubernetes_pod_container_image", "c1:latest"),
        ("__meta_kubernetes_pod_container_port_name", "mainport"),
        ("__meta_kubernetes_pod_container_port_number", "9000"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
        ("__meta_kubernetes_pod_container_init", "false"),
    ]));
    assert_eq!(target_labels(&s, "endpoints", "4.3.2.1:9000"), want);
    // The pod's other container port becomes a target of its own.
    let mut side = labels(&pod_labels);
    side.extend(labels(&service));
    side.extend(labels(&[
        ("__address__", "1.2.3.4:9001"),
        ("__meta_kubernetes_endpoints_name", "testendpoints"),
        ("__meta_kubernetes_pod_container_name", "c2"),
        ("__meta_kubernetes_pod_container_image", "c2:latest"),
        ("__meta_kubernetes_pod_container_port_name", "sideport"),
        ("__meta_kubernetes_pod_container_port_number", "9001"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
        ("__meta_kubernetes_pod_container_init", "false"),
    ]));
    assert_eq!(target_labels(&s, "endpoints", "1.2.3.4:9001"), side);
    let nr = target_labels(&s, "endpoints", "2.3.4.5:9000");
    assert_eq!(nr["__meta_kubernetes_endpoint_ready"], "false");
    assert_eq!(nr["__meta_kubernetes_endpoint_node_name"], "foobar");
    assert_eq!(nr["__meta_kubernetes_endpoint_hostname"], "h");

    let sl = target_labels(&s, "endpointslice", "4.3.2.1:9000");
    let mut want = labels(&pod_labels);
    want.extend(labels(&service));
    want.extend(labels(&[
        ("__address__", "4.3.2.1:9000"),
        ("__meta_kubernetes_endpointslice_name", "testendpoints-abc"),
        (
            "__meta_kubernetes_endpointslice_label_kubernetes_io_service_name",
            "testendpoints",
        ),
        (
            "__meta_kubernetes_endpointslice_labelpresent_kubernetes_io_service_name",
            "true",
        ),
        ("__meta_kubernetes_endpointslice_address_type", "IPv4"),
        ("__meta_kubernetes_endpointslice_port_name", "testport"),
        ("__meta_kubernetes_endpointslice_port_protocol", "TCP"),
        ("__meta_kubernetes_endpointslice_port", "9000"),
        ("__meta_kubernetes_endpointslice_port_app_protocol", "http"),
        (
            "__meta_kubernetes_endpointslice_endpoint_conditions_ready",
            "true",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_conditions_serving",
            "true",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_conditions_terminating",
            "false",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_hostname",
            "testendpoint1",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_node_name",
            "foobar",
        ),
        (
            "__meta_kubernetes_endpointslice_endpoint_zone",
            "us-east-1a",
        ),
        ("__meta_kubernetes_endpointslice_address_target_kind", "Pod"),
        (
            "__meta_kubernetes_endpointslice_address_target_name",
            "testpod",
        ),
        ("__meta_kubernetes_pod_container_name", "c1"),
        ("__meta_kubernetes_pod_container_image", "c1:latest"),
        ("__meta_kubernetes_pod_container_port_name", "mainport"),
        ("__meta_kubernetes_pod_container_port_number", "9000"),
        ("__meta_kubernetes_pod_container_port_protocol", "TCP"),
        ("__meta_kubernetes_pod_container_init", "false"),
    ]));
    assert_eq!(sl, want);

    // A pod change re-labels the endpoints that point at it.
    let mut p = pod;
    p["status"]["phase"] = json!("Running");
    kube.put("/api/v1/pods", p);
    wait_for(&mut rx, "pod phase in endpoints", |s| {
        target_labels(s, "endpoints", "4.3.2.1:9000")["__meta_kubernetes_pod_phase"] == "Running"
            && target_labels(s, "endpointslice", "4.3.2.1:9000")["__meta_kubernetes_pod_phase"]
                == "Running"
    })
    .await;
    // So does a service change.
    kube.put(
        "/api/v1/services",
        json!({"metadata": {"name": "testendpoints", "namespace": "default", "labels": {"app/name": "v2"}}, "spec": {"type": "ClusterIP"}}),
    );
    wait_for(&mut rx, "service label in endpoints", |s| {
        target_labels(s, "endpoints", "4.3.2.1:9000")["__meta_kubernetes_service_label_app_name"]
            == "v2"
            && target_labels(s, "endpointslice", "4.3.2.1:9000")
                ["__meta_kubernetes_service_label_app_name"]
                == "v2"
    })
    .await;
}

#[tokio::test]
async fn kubernetes_namespaces_selectors_and_attach_metadata() {
    let kube = FakeKube::start().await;
    let mut p = simple_pod("a", "10.0.0.5");
    p["metadata"]["namespace"] = json!("ns1");
    kube.put("/api/v1/pods", p);
    let mut p = simple_pod("b", "10.0.0.6");
    p["metadata"]["namespace"] = json!("other");
    kube.put("/api/v1/pods", p);
    kube.put(
        "/api/v1/nodes",
        json!({"metadata": {"name": "n1", "labels": {"zone": "z1"}}, "status": {"addresses": [{"type": "InternalIP", "address": "10.9.9.9"}]}}),
    );
    kube.put(
        "/api/v1/namespaces",
        json!({"metadata": {"name": "ns1", "labels": {"team": "a"}}}),
    );
    let m = kube_manager(SdMetrics::detached());
    let mut rx = m.subscribe();
    m.apply(one_set(
        "k",
        kube_sd(
            &kube,
            "        role: pod\n        namespaces: {names: [ns1]}\n        selectors:\n          - role: pod\n            label: 'app=x'\n            field: 'status.phase=Running'\n        attach_metadata: {node: true, namespace: true}\n",
        ),
    ));
    let s = wait_for(&mut rx, "ns1 pod", |s| targets(s, "k") == ["10.0.0.5:8080"]).await;
    let l = target_labels(&s, "k", "10.0.0.5:8080");
    assert_eq!(l["__meta_kubernetes_node_label_zone"], "z1");
    assert_eq!(l["__meta_kubernetes_node_name"], "n1");
    assert_eq!(l["__meta_kubernetes_namespace_label_team"], "a");
    let lists = kube.lists();
    let pods = lists.iter().find(|l| l.contains("/pods")).unwrap();
    assert!(pods.starts_with("/api/v1/namespaces/ns1/pods?"), "{pods}");
    assert!(pods.contains("labelSelector=app%3Dx"), "{pods}");
    assert!(
        pods.contains("fieldSelector=status.phase%3DRunning"),
        "{pods}"
    );
    // Node metadata follows the node.
    eventually("watches open", || kube.open_watches() == 3).await;
    kube.put(
        "/api/v1/nodes",
        json!({"metadata": {"name": "n1", "labels": {"zone": "z2"}}, "status": {"addresses": [{"type": "InternalIP", "address": "10.9.9.9"}]}}),
    );
    wait_for(&mut rx, "node label change", |s| {
        target_labels(s, "k", "10.0.0.5:8080")["__meta_kubernetes_node_label_zone"] == "z2"
    })
    .await;
}

#[tokio::test]
async fn kubernetes_bad_answers_keep_the_last_targets() {
    let kube = FakeKube::start().await;
    kube.put("/api/v1/pods", simple_pod("a", "10.0.0.5"));
    let metrics = SdMetrics::detached();
    let m = kube_manager(metrics.clone());
    let mut rx = m.subscribe();
    m.apply(one_set("k", kube_sd(&kube, "        role: pod\n")));
    wait_for(&mut rx, "pod", |s| targets(s, "k") == ["10.0.0.5:8080"]).await;
    let failures = || metrics.failures.with(&["kubernetes", "k"]).get();
    eventually("watch open", || kube.open_watches() == 1).await;
    // Lists now fail in every way; each relist attempt is counted and the
    // known targets stay.
    for bad in [
        Some((200, "{garbage".to_string())),
        Some((200, r#"{"items": [{"metadata": {"name": 5}}]}"#.to_string())),
        Some((500, "boom".to_string())),
    ] {
        kube.override_lists(bad);
        let before = failures();
        kube.expire_watches();
        eventually("list failure counted", || failures() > before).await;
        assert_eq!(targets(&m.current(), "k"), ["10.0.0.5:8080"]);
    }
    // A garbage watch line is an error too; the targets stay.
    kube.override_lists(None);
    eventually("watch open", || kube.open_watches() == 1).await;
    let before = failures();
    kube.put(
        "/api/v1/pods",
        json!({"metadata": {"name": ["not", "a", "string"]}}),
    );
    eventually("bad event counted", || failures() > before).await;
    assert_eq!(targets(&m.current(), "k"), ["10.0.0.5:8080"]);
}

#[tokio::test]
async fn kubernetes_hanging_and_resetting_api_server() {
    for action in ["hang", "reset"] {
        let a = action.to_string();
        let srv = FakeHttp::start(move |_r: &Req| {
            if a == "hang" {
                Action::Hang
            } else {
                Action::Reset
            }
        })
        .await;
        let metrics = SdMetrics::detached();
        let m = kube_manager(metrics.clone());
        let yaml = format!(
            "scrape_configs:\n  - job_name: k\n    kubernetes_sd_configs:\n      - api_server: {}\n        role: node\n",
            srv.url()
        );
        m.apply(one_set("k", sd_of(&yaml, "k")));
        eventually("failure counted", || {
            metrics.failures.with(&["kubernetes", "k"]).get() >= 1.0
        })
        .await;
        assert!(targets(&m.current(), "k").is_empty(), "{action}");
    }
}

#[test]
fn kubeconfig_current_context_to_client_settings() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("config");
    std::fs::write(
        &p,
        "apiVersion: v1\nkind: Config\ncurrent-context: b\nclusters:\n  - name: c1\n    cluster:\n      server: https://k8s.example:6443\n      certificate-authority: ca.pem\n  - name: c2\n    cluster:\n      server: https://other:443\n      insecure-skip-tls-verify: true\ncontexts:\n  - name: a\n    context: {cluster: c1, user: u1}\n  - name: b\n    context: {cluster: c2, user: u2}\nusers:\n  - name: u1\n    user: {token: t1}\n  - name: u2\n    user:\n      token: secret-token\n",
    )
    .unwrap();
    let (base, http) = klaxon::discovery::kubernetes::kubeconfig(&p).unwrap();
    assert_eq!(base, "https://other:443");
    assert!(http.tls_config.insecure_skip_verify);
    let auth = http.authorization.unwrap();
    assert_eq!(auth.credentials.unwrap().expose(), "secret-token");
    let e = klaxon::discovery::kubernetes::kubeconfig(&dir.path().join("missing")).unwrap_err();
    assert!(e.contains("missing"), "{e}");
}

// ---------------------------------------------------------------- docker

/// Serves a recorded Docker API directory (`_ping.json`, `headers.yml`,
/// `containers/json.json`, `networks.json`) under its API version prefix.
fn docker_handler(dir: std::path::PathBuf) -> impl Fn(&Req) -> Action + Send + Sync + 'static {
    let headers: Vec<(String, String)> = std::fs::read_to_string(dir.join("headers.yml"))
        .expect("headers.yml")
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.trim_matches('"').to_string()))
        .collect();
    let version = headers
        .iter()
        .find(|(k, _)| k == "Api-Version")
        .map(|(_, v)| v.clone())
        .expect("Api-Version");
    move |r: &Req| {
        let path = r.path().to_string();
        let file = if path == "/_ping" {
            "_ping.json".to_string()
        } else {
            match path.strip_prefix(&format!("/v{version}/")) {
                Some("containers/json") => "containers/json.json".to_string(),
                Some(p) => format!("{p}.json"),
                None => return Action::json(404, "{}"),
            }
        };
        match std::fs::read(dir.join(&file)) {
            Ok(body) => Action::Respond {
                status: 200,
                content_type: "application/json".into(),
                headers: headers.clone(),
                body,
            },
            Err(_) => Action::json(500, "{}"),
        }
    }
}

fn docker_expected_node_exporter() -> BTreeMap<String, String> {
    labels(&[
        ("__address__", "172.19.0.2:9100"),
        (
            "__meta_docker_container_id",
            "c301b928faceb1a18fe379f6bc178727ef920bb30b0f9b8592b32b36255a0eca",
        ),
        ("__meta_docker_container_image", "prom/node-exporter:v1.1.2"),
        (
            "__meta_docker_container_image_id",
            "sha256:c19ae228f0699185488b6a1c0debb9c6b79672181356ad455c9a7924a41a01bb",
        ),
        (
            "__meta_docker_container_label_com_docker_compose_project",
            "dockersd",
        ),
        (
            "__meta_docker_container_label_com_docker_compose_service",
            "node",
        ),
        (
            "__meta_docker_container_label_com_docker_compose_version",
            "1.25.0",
        ),
        (
            "__meta_docker_container_label_maintainer",
            "The Prometheus Authors <prometheus-developers@googlegroups.com>",
        ),
        ("__meta_docker_container_label_prometheus_job", "node"),
        ("__meta_docker_container_name", "/dockersd_node_1"),
        ("__meta_docker_container_network_mode", "dockersd_default"),
        (
            "__meta_docker_network_id",
            "7189986ab399e144e52a71b7451b4e04e2158c044b4cd2f3ae26fc3a285d3798",
        ),
        ("__meta_docker_network_ingress", "false"),
        ("__meta_docker_network_internal", "false"),
        ("__meta_docker_network_ip", "172.19.0.2"),
        (
            "__meta_docker_network_label_com_docker_compose_network",
            "default",
        ),
        (
            "__meta_docker_network_label_com_docker_compose_project",
            "dockersd",
        ),
        (
            "__meta_docker_network_label_com_docker_compose_version",
            "1.25.0",
        ),
        ("__meta_docker_network_name", "dockersd_default"),
        ("__meta_docker_network_scope", "local"),
        ("__meta_docker_port_private", "9100"),
    ])
}

#[tokio::test]
async fn docker_sd_recorded_answers_over_tcp_and_unix_socket() {
    let Some(dir) = common::data_dir("upstream/prometheus/discovery/moby/testdata/dockerprom")
    else {
        return;
    };
    let tcp = FakeHttp::start(docker_handler(dir.clone())).await;
    let sock_dir = tempfile::tempdir().unwrap();
    let sock = sock_dir.path().join("docker.sock");
    let _unix = FakeHttp::start_unix(&sock, docker_handler(dir)).await;
    let mut sets = BTreeMap::new();
    for (job, host) in [
        ("tcp", format!("tcp://{}", tcp.addr)),
        ("unix", format!("unix://{}", sock.display())),
    ] {
        let yaml = format!(
            "scrape_configs:\n  - job_name: {job}\n    docker_sd_configs:\n      - host: {host}\n        refresh_interval: 1h\n"
        );
        sets.insert(job.to_string(), sd_of(&yaml, job));
    }
    let m = Manager::new("scrape", SdMetrics::detached(), fast());
    let mut rx = m.subscribe();
    m.apply(sets);
    // Prometheus' own test of this answer: 8 targets.
    let s = wait_for(&mut rx, "docker targets", |s| {
        s.get("tcp").is_some_and(|g| g.len() == 8) && s.get("unix").is_some_and(|g| g.len() == 8)
    })
    .await;
    for job in ["tcp", "unix"] {
        assert_eq!(
            target_labels(&s, job, "172.19.0.2:9100"),
            docker_expected_node_exporter()
        );
        let noport = target_labels(&s, job, "172.19.0.3:80");
        assert_eq!(noport["__meta_docker_container_name"], "/dockersd_noport_1");
        assert!(!noport.contains_key("__meta_docker_port_private"));
        let host = target_labels(&s, job, "localhost");
        assert_eq!(host["__meta_docker_container_network_mode"], "host");
        assert_eq!(host["__meta_docker_network_ip"], "");
        assert_eq!(
            target_labels(&s, job, "172.20.0.2:3306")["__meta_docker_container_name"],
            "/dockersd_mysql"
        );
    }
    let reqs = tcp.requests.lock().unwrap().clone();
    assert!(
        reqs.iter().any(|r| r.target == "/v1.40/containers/json"),
        "{reqs:?}"
    );
}

// ---------------------------------------------------------------- consul

mod fake_consul {
    use axum::extract::{Path, Query, State};
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::get;
    use serde_json::{json, Value};
    use std::collections::{BTreeMap, HashMap};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    #[derive(Default)]
    pub struct Data {
        pub index: u64,
        pub services: BTreeMap<String, Vec<String>>,
        pub instances: BTreeMap<String, Vec<Value>>,
        pub fail: bool,
        /// (path, query, token header) of every request.
        pub requests: Vec<(String, HashMap<String, String>, Option<String>)>,
    }

    #[derive(Clone)]
    pub struct Fake {
        pub data: Arc<Mutex<Data>>,
        tx: Arc<tokio::sync::watch::Sender<u64>>,
    }

    impl Fake {
        pub fn change(&self, f: impl FnOnce(&mut Data)) {
            let idx = {
                let mut d = self.data.lock().unwrap();
                f(&mut d);
                d.index += 1;
                d.index
            };
            self.tx.send_replace(idx);
        }
    }

    /// Answers when the index moved past the client's, or after a short
    /// wait (a real server waits up to `wait`).
    async fn block(s: &Fake, q: &HashMap<String, String>) {
        let client: u64 = q.get("index").and_then(|i| i.parse().ok()).unwrap_or(0);
        let mut rx = s.tx.subscribe();
        let _ = tokio::time::timeout(Duration::from_secs(2), rx.wait_for(|i| *i > client)).await;
    }

    fn answer(s: &Fake, body: Value) -> Response {
        let d = s.data.lock().unwrap();
        if d.fail {
            return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
        }
        ([("X-Consul-Index", d.index.to_string())], axum::Json(body)).into_response()
    }

    fn record(s: &Fake, path: &str, q: &HashMap<String, String>, h: &HeaderMap) {
        let token = h
            .get("X-Consul-Token")
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        s.data
            .lock()
            .unwrap()
            .requests
            .push((path.to_string(), q.clone(), token));
    }

    pub async fn start() -> (Fake, std::net::SocketAddr, tokio::task::JoinHandle<()>) {
        let (tx, _) = tokio::sync::watch::channel(1);
        let fake = Fake {
            data: Arc::new(Mutex::new(Data {
                index: 1,
                ..Data::default()
            })),
            tx: Arc::new(tx),
        };
        let app = axum::Router::new()
            .route(
                "/v1/agent/self",
                get(
                    |State(s): State<Fake>,
                     Query(q): Query<HashMap<String, String>>,
                     h: HeaderMap| async move {
                        record(&s, "/v1/agent/self", &q, &h);
                        answer(&s, json!({"Config": {"Datacenter": "dc1"}}))
                    },
                ),
            )
            .route(
                "/v1/catalog/services",
                get(
                    |State(s): State<Fake>,
                     Query(q): Query<HashMap<String, String>>,
                     h: HeaderMap| async move {
                        record(&s, "/v1/catalog/services", &q, &h);
                        block(&s, &q).await;
                        let body = json!(s.data.lock().unwrap().services);
                        answer(&s, body)
                    },
                ),
            )
            .route(
                "/v1/health/service/{name}",
                get(
                    |State(s): State<Fake>,
                     Path(name): Path<String>,
                     Query(q): Query<HashMap<String, String>>,
                     h: HeaderMap| async move {
                        record(&s, &format!("/v1/health/service/{name}"), &q, &h);
                        block(&s, &q).await;
                        let body = json!(s
                            .data
                            .lock()
                            .unwrap()
                            .instances
                            .get(&name)
                            .cloned()
                            .unwrap_or_default());
                        answer(&s, body)
                    },
                ),
            )
            .with_state(fake.clone());
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        (fake, addr, task)
    }
}

fn consul_instance(
    node: &str,
    node_addr: &str,
    svc_addr: &str,
    port: u16,
    status: &str,
) -> serde_json::Value {
    json!({
        "Node": {"Node": node, "Address": node_addr, "Datacenter": "dc1",
                 "TaggedAddresses": {"lan": node_addr, "wan": "1.1.1.1"}, "Meta": {"rack-id": "r1"}},
        "Service": {"ID": format!("web-{node}"), "Service": "web", "Tags": ["prod", "v1"], "Address": svc_addr,
                    "Port": port, "Meta": {"version": "1.0"}, "Namespace": "", "Partition": ""},
        "Checks": [{"CheckID": "serfHealth", "Status": "passing"}, {"CheckID": "svc", "Status": status}]
    })
}

#[tokio::test]
async fn consul_sd_blocking_queries_labels_and_errors() {
    let (fake, addr, server) = fake_consul::start().await;
    fake.change(|d| {
        d.services
            .insert("web".into(), vec!["prod".into(), "v1".into()]);
        d.services.insert("db".into(), vec!["staging".into()]);
        d.instances.insert(
            "web".into(),
            vec![
                consul_instance("node1", "10.0.0.1", "", 80, "passing"),
                consul_instance("node2", "10.0.0.2", "10.1.0.2", 81, "critical"),
            ],
        );
    });
    let yaml = format!(
        "scrape_configs:\n  - job_name: c\n    consul_sd_configs:\n      - server: {addr}\n        token: s3cret\n        tags: [prod]\n        refresh_interval: 100ms\n"
    );
    let metrics = SdMetrics::detached();
    let m = Manager::new("scrape", metrics.clone(), fast());
    let mut rx = m.subscribe();
    m.apply(one_set("c", sd_of(&yaml, "c")));
    let s = wait_for(&mut rx, "consul targets", |s| {
        targets(s, "c") == ["10.0.0.1:80", "10.1.0.2:81"]
    })
    .await;
    assert_eq!(
        target_labels(&s, "c", "10.0.0.1:80"),
        labels(&[
            ("__address__", "10.0.0.1:80"),
            ("__meta_consul_address", "10.0.0.1"),
            ("__meta_consul_dc", "dc1"),
            ("__meta_consul_health", "passing"),
            ("__meta_consul_metadata_rack_id", "r1"),
            ("__meta_consul_namespace", ""),
            ("__meta_consul_node", "node1"),
            ("__meta_consul_partition", ""),
            ("__meta_consul_service", "web"),
            ("__meta_consul_service_address", ""),
            ("__meta_consul_service_id", "web-node1"),
            ("__meta_consul_service_metadata_version", "1.0"),
            ("__meta_consul_service_port", "80"),
            ("__meta_consul_tagged_address_lan", "10.0.0.1"),
            ("__meta_consul_tagged_address_wan", "1.1.1.1"),
            ("__meta_consul_tags", ",prod,v1,"),
        ])
    );
    assert_eq!(
        target_labels(&s, "c", "10.1.0.2:81")["__meta_consul_health"],
        "critical"
    );

    // A new instance is seen through the blocking health query.
    fake.change(|d| {
        d.instances
            .get_mut("web")
            .unwrap()
            .push(consul_instance("node3", "10.0.0.3", "", 82, "warning"));
    });
    wait_for(&mut rx, "third instance", |s| targets(s, "c").len() == 3).await;
    {
        let d = fake.data.lock().unwrap();
        let health: Vec<_> = d
            .requests
            .iter()
            .filter(|r| r.0 == "/v1/health/service/web")
            .collect();
        assert!(
            health
                .iter()
                .any(|r| r.1.get("index").is_some_and(|i| i != "0")
                    && r.1.get("wait").map(String::as_str) == Some("120000ms")),
            "{health:?}"
        );
        assert!(health.iter().all(|r| r.2.as_deref() == Some("s3cret")
            && r.1.get("tag").map(String::as_str) == Some("prod")
            && r.1.contains_key("stale")
            && r.1.get("dc").map(String::as_str) == Some("dc1")));
        // db lacks the tag: never watched.
        assert!(!d.requests.iter().any(|r| r.0 == "/v1/health/service/db"));
    }

    // Errors: counted, targets kept.
    let before = metrics.failures.with(&["consul", "c"]).get();
    fake.change(|d| d.fail = true);
    eventually("consul failures", || {
        metrics.failures.with(&["consul", "c"]).get() > before
    })
    .await;
    assert_eq!(targets(&m.current(), "c").len(), 3);
    // Garbage with a good status is an error too.
    fake.change(|d| {
        d.fail = false;
        d.instances
            .insert("web".into(), vec![json!("not an object")]);
    });
    let before = metrics.failures.with(&["consul", "c"]).get();
    eventually("decode failure", || {
        metrics.failures.with(&["consul", "c"]).get() > before
    })
    .await;
    assert_eq!(targets(&m.current(), "c").len(), 3);

    // The service leaves the catalog: its targets go.
    fake.change(|d| {
        d.services.remove("web");
        d.instances.remove("web");
    });
    wait_for(&mut rx, "service gone", |s| targets(s, "c").is_empty()).await;
    server.abort();
}

// ------------------------------------------------- config parity (upstream)

/// Prometheus' config test files for the SD mechanisms klaxon implements:
/// the good ones load, the bad ones fail with Prometheus' error text at a
/// position. Go's unknown-field wording is the one exception (serde names
/// the field its own way).
#[test]
fn upstream_sd_config_files_get_prometheus_verdicts() {
    let Some(dir) = common::data_dir("upstream/prometheus/config/testdata") else {
        return;
    };
    let tsv = std::fs::read_to_string(common::shared(
        "upstream/prometheus/config/bad-config-errors.tsv",
    ))
    .expect("bad-config-errors.tsv");
    let expected: BTreeMap<&str, &str> = tsv
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once('\t'))
        .collect();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| {
            n.starts_with("kubernetes_") || n.starts_with("http_url") || n.starts_with("http_token")
        })
        .collect();
    names.sort();
    assert!(names.len() >= 25, "{names:?}");
    let mut checked = 0;
    for name in &names {
        let r = klaxon::settings::load_file(&dir.join(name));
        if name.ends_with(".good.yml") {
            let cfg = r.unwrap_or_else(|e| panic!("{name} should load:\n{e}"));
            assert!(
                !cfg.scrape_configs[0].service_discovery.is_empty(),
                "{name}"
            );
        } else {
            let e = r.expect_err(name);
            let want = expected
                .get(name.as_str())
                .unwrap_or_else(|| panic!("{name} not in the tsv"));
            let want = if *want == "field foo not found in type kubernetes.plain" {
                "unknown field `foo`"
            } else {
                want
            };
            assert!(
                e.errors()
                    .iter()
                    .any(|x| x.message.contains(want) && x.line > 0),
                "{name}: want {want:?} at a position, got:\n{e}"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, names.len());
}

#[test]
fn sd_config_errors_name_the_field_and_position() {
    let cases = [
        (
            "dns_sd_configs:\n      - names: []\n",
            "DNS-SD config must contain at least one SRV record name",
        ),
        (
            "dns_sd_configs:\n      - names: [a]\n        type: A\n",
            "a port is required in DNS-SD configs for all record types except SRV",
        ),
        (
            "dns_sd_configs:\n      - names: [a]\n        type: TXT\n",
            "invalid DNS-SD records type TXT",
        ),
        (
            "consul_sd_configs:\n      - server: ''\n",
            "consul SD configuration requires a server address",
        ),
        (
            "consul_sd_configs:\n      - token: a\n        authorization: {credentials: b}\n",
            "at most one of consul SD token, authorization, or oauth2 can be configured",
        ),
        ("docker_sd_configs:\n      - port: 80\n", "host missing"),
        (
            "docker_sd_configs:\n      - host: ftp://x\n",
            "unsupported docker host",
        ),
        (
            "http_sd_configs:\n      - url: http://x\n        oauth2: {client_id: a}\n",
            "oauth2 is not supported",
        ),
        (
            "ec2_sd_configs:\n      - region: x\n",
            "`ec2_sd_configs` is a Prometheus service discovery mechanism not supported by klaxon",
        ),
        (
            "kubernetes_sd_configs:\n      - role: pod\n        attach_metadata: {nodes: true}\n",
            "unknown field `nodes`",
        ),
    ];
    for (sd, want) in cases {
        let yaml = format!("scrape_configs:\n  - job_name: j\n    {sd}");
        let e = klaxon::settings::load_str(&yaml, "t.yml").expect_err(sd);
        assert!(
            e.errors()
                .iter()
                .any(|x| x.message.contains(want) && x.line >= 3),
            "{sd}: want {want:?}, got:\n{e}"
        );
    }
    // Defaults as Prometheus documents them.
    let c = sd_of(
        "scrape_configs:\n  - job_name: j\n    dns_sd_configs: [{names: [a]}]\n    consul_sd_configs: [{}]\n    docker_sd_configs: [{host: 'unix:///var/run/docker.sock'}]\n    http_sd_configs: [{url: 'http://a/sd'}]\n    kubernetes_sd_configs: [{role: pod}]\n",
        "j",
    );
    let mut seen = 0;
    for sd in &c {
        match sd {
            SdConfig::Dns(d) => {
                assert_eq!((d.refresh_interval, d.port), (Duration::from_secs(30), 0));
                seen += 1;
            }
            SdConfig::Consul(d) => {
                assert_eq!(d.server, "localhost:8500");
                assert_eq!(d.refresh_interval, Duration::from_secs(30));
                assert!(d.allow_stale);
                assert_eq!(d.tag_separator, ",");
                assert_eq!(d.scheme, "http");
                seen += 1;
            }
            SdConfig::Docker(d) => {
                assert_eq!((d.port, d.host_networking_host.as_str()), (80, "localhost"));
                assert!(d.match_first_network);
                assert_eq!(d.refresh_interval, Duration::from_secs(60));
                seen += 1;
            }
            SdConfig::Http(d) => {
                assert_eq!(d.refresh_interval, Duration::from_secs(60));
                seen += 1;
            }
            SdConfig::Kubernetes(k) => {
                assert!(k.api_server.is_none() && k.kubeconfig_file.is_none() && !k.attach_node);
                seen += 1;
            }
            _ => {}
        }
    }
    assert_eq!(seen, 5);
}

// ------------------------------------------------- the app: API and metrics

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_targets_api_shows_discovered_and_dropped_targets() {
    let sd = FakeHttp::start(|_r: &Req| {
        Action::json(
            200,
            r#"[{"targets": ["127.0.0.1:1", "127.0.0.1:2"], "labels": {"__meta_role": "web"}}]"#,
        )
    })
    .await;
    let yaml = format!(
        "scrape_configs:\n  - job_name: web\n    scrape_interval: 1h\n    http_sd_configs:\n      - url: {}/sd\n    relabel_configs:\n      - source_labels: [__address__]\n        regex: '.*:2'\n        action: drop\n      - source_labels: [__meta_role]\n        target_label: role\n",
        sd.url()
    );
    let mut cfg = load_str(&yaml, "t.yml").unwrap();
    let store = tempfile::tempdir().unwrap();
    cfg.storage.path = store.path().to_path_buf();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr);
    let get = |path: String| async move { reqwest::get(path).await.unwrap().text().await.unwrap() };
    let mut body = String::new();
    for _ in 0..200 {
        body = get(format!("{base}/api/v1/targets")).await;
        if body.contains("127.0.0.1:2") && body.contains("127.0.0.1:1") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let active = v["data"]["activeTargets"].as_array().unwrap();
    assert_eq!(active.len(), 1, "{v:#}");
    let d = &active[0]["discoveredLabels"];
    assert_eq!(d["__meta_role"], "web");
    assert_eq!(d["__meta_url"], format!("{}/sd", sd.url()));
    assert_eq!(d["job"], "web");
    assert_eq!(active[0]["labels"]["role"], "web");
    let dropped = v["data"]["droppedTargets"].as_array().unwrap();
    assert_eq!(dropped.len(), 1, "{v:#}");
    assert_eq!(dropped[0]["scrapePool"], "web");
    let dl = &dropped[0]["discoveredLabels"];
    assert_eq!(dl["__address__"], "127.0.0.1:2");
    assert_eq!(dl["__meta_role"], "web");
    // As Prometheus: the scrape config's defaults are part of them.
    assert_eq!(dl["job"], "web");
    assert_eq!(dl["__scheme__"], "http");
    assert_eq!(dl["__metrics_path__"], "/metrics");
    assert_eq!(v["data"]["droppedTargetCounts"]["web"], 1);
    let metrics = get(format!("{base}/metrics")).await;
    assert!(
        metrics.contains("klaxon_sd_discovered_targets{config=\"web\",name=\"scrape\"} 2"),
        "{metrics}"
    );
    app.stop().await;
}

/// A `Write` into a shared buffer, for capturing log lines.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The process-wide log capture. A thread-local `set_default` missed
/// lines now and then: tracing caches per-callsite interest across
/// threads, and other tests of this binary hit the same callsites with
/// no subscriber at the same time. One global subscriber has no such race;
/// it keeps warnings and errors only, since every test of the binary logs
/// into it.
fn global_log() -> LogBuf {
    static LOG: std::sync::OnceLock<LogBuf> = std::sync::OnceLock::new();
    LOG.get_or_init(|| {
        let buf = LogBuf::default();
        let b2 = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || b2.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::WARN)
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        buf
    })
    .clone()
}

#[tokio::test]
async fn failure_logs_name_the_job_and_the_sd_entry() {
    let buf = global_log();
    let srv = FakeHttp::start(|_r: &Req| Action::json(200, "{broken")).await;
    // A job name no other test of this binary uses: the log is shared.
    let yaml = format!(
        "scrape_configs:\n  - job_name: jlog\n    static_configs: [{{targets: ['a:1']}}]\n    http_sd_configs:\n      - url: http://127.0.0.1:1/nothing\n      - url: {}/sd\n",
        srv.url()
    );
    let metrics = SdMetrics::detached();
    let m = Manager::new("scrape", metrics.clone(), fast());
    m.apply(one_set("jlog", sd_of(&yaml, "jlog")));
    eventually("two failures", || {
        metrics.failures.with(&["http", "jlog"]).get() >= 2.0
    })
    .await;
    let log = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("job \"jlog\" http_sd_configs[0]: service discovery failed"),
        "{log}"
    );
    assert!(
        log.contains("job \"jlog\" http_sd_configs[1]: service discovery failed"),
        "{log}"
    );
    assert!(log.contains("/sd"), "{log}");
}
