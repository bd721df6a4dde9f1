//! Datasource mode: rules evaluated by instant queries against a remote
//! Prometheus-compatible API. First against a scripted mock server (answer
//! and error bodies, timeouts, the time parameter sent), then against a
//! real Prometheus 2.42 started by the test.

use crate::common;
use crate::common::get_json;
use common::{free_port, peer, Proc};

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::routing::any;
use klaxon::model::Labels;
use klaxon::promql::{Engine, Value as QValue};
use klaxon::rules::alert::AlertState;
use klaxon::rules::datasource::config::DatasourceConfig;
use klaxon::rules::datasource::response::QueryData;
use klaxon::rules::datasource::{Datasource, DatasourceError};
use klaxon::rules::file::{parse_rule_file, Dialect};
use klaxon::rules::group::{GroupState, RuleError, RuleHealth};
use klaxon::settings::load_str;
use klaxon::tsdb::{Head, HeadOptions};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

// ------------------------------------------------------------- mock server

/// One scripted answer.
#[derive(Clone)]
struct Answer {
    status: u16,
    body: String,
    delay: Duration,
}

fn answer(status: u16, body: &str) -> Answer {
    Answer {
        status,
        body: body.to_string(),
        delay: Duration::ZERO,
    }
}

/// What the mock saw of one request.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    /// The query parameters (GET) or the form body (POST), decoded.
    params: Vec<(String, String)>,
    headers: HeaderMap,
}

impl Seen {
    fn param(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Script {
    answers: VecDeque<Answer>,
    /// Answer once the script is used up.
    fallback: Option<Answer>,
    seen: Vec<Seen>,
}

type Shared = Arc<Mutex<Script>>;

async fn handle(
    State(s): State<Shared>,
    method: Method,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    body: String,
) -> (StatusCode, String) {
    let raw = if method == Method::GET {
        q.unwrap_or_default()
    } else {
        body
    };
    let params = form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let a = {
        let mut s = s.lock();
        s.seen.push(Seen {
            method,
            params,
            headers,
        });
        let next = s.answers.pop_front();
        next.or_else(|| s.fallback.clone())
            .unwrap_or_else(|| answer(500, "script exhausted"))
    };
    tokio::time::sleep(a.delay).await;
    (StatusCode::from_u16(a.status).unwrap(), a.body)
}

async fn mock() -> (String, Shared) {
    let s: Shared = Arc::default();
    let app = axum::Router::new()
        .route("/prom/api/v1/query", any(handle))
        .with_state(s.clone());
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    (format!("http://{addr}/prom"), s)
}

fn ds_config(extra: &str, url: &str) -> DatasourceConfig {
    let yaml = format!("rule_evaluation:\n  datasource:\n    url: {url}\n{extra}");
    load_str(&yaml, "<t>")
        .unwrap()
        .rule_evaluation
        .datasource
        .unwrap()
}

fn datasource(extra: &str, url: &str) -> Arc<Datasource> {
    Arc::new(Datasource::new(&ds_config(extra, url), tokio::runtime::Handle::current()).unwrap())
}

/// The blocking query, from the blocking pool as group evaluation runs it.
async fn query(ds: &Arc<Datasource>, expr: &str, t: i64) -> Result<QueryData, DatasourceError> {
    let (ds, expr) = (ds.clone(), expr.to_string());
    tokio::task::spawn_blocking(move || ds.query(&expr, t))
        .await
        .unwrap()
}

const VECTOR: &str = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"service":"a"},"value":[1700000000,"4.5"]},{"metric":{"service":"b"},"value":[1700000000,"-1"]}]}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_error_bodies_and_timeouts() {
    let (url, script) = mock().await;
    let ds = datasource(
        "    timeout: 400ms\n    headers: {X-Scope-OrgID: tenant-1}\n    basic_auth: {username: u, password: pw}\n",
        &url,
    );
    {
        let mut s = script.lock();
        s.answers.push_back(answer(200, VECTOR));
        s.answers.push_back(answer(
            400,
            r#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}"#,
        ));
        s.answers.push_back(answer(
            422,
            r#"{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory in query execution"}"#,
        ));
        s.answers
            .push_back(answer(503, "<html>Service Unavailable</html>"));
        s.answers.push_back(answer(
            200,
            r#"{"status":"success","warnings":["partial response"],"data":{"resultType":"scalar","result":[1700000000,"7"]}}"#,
        ));
        s.answers.push_back(answer(200, "not json"));
        s.answers.push_back(Answer {
            delay: Duration::from_secs(3),
            ..answer(200, VECTOR)
        });
    }
    let t = 1_700_000_000_250;
    let got = query(&ds, "sum by (service) (x)", t).await.unwrap();
    assert_eq!(
        got,
        QueryData::Vector(vec![
            (Labels::from_pairs([("service", "a")]), 4.5),
            (Labels::from_pairs([("service", "b")]), -1.0),
        ])
    );
    let seen = script.lock().seen[0].clone();
    assert_eq!(seen.method, Method::POST);
    assert_eq!(seen.param("query"), Some("sum by (service) (x)"));
    assert_eq!(seen.param("time"), Some("1700000000.250"));
    assert_eq!(
        seen.headers["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(seen.headers["x-scope-orgid"], "tenant-1");
    assert_eq!(seen.headers["authorization"], "Basic dTpwdw==");

    let e = query(&ds, "sum(", t).await.unwrap_err();
    assert_eq!(
        e,
        DatasourceError::Api {
            status: 400,
            error_type: "bad_data".into(),
            error: "1:5: parse error: unexpected end of input".into()
        }
    );
    assert_eq!(
        e.to_string(),
        "datasource query failed with HTTP 400 (bad_data): 1:5: parse error: unexpected end of input"
    );
    let e = query(&ds, "x", t).await.unwrap_err();
    assert!(
        matches!(&e, DatasourceError::Api { status: 422, error_type, .. } if error_type == "execution"),
        "{e:?}"
    );
    let e = query(&ds, "x", t).await.unwrap_err();
    assert_eq!(
        e,
        DatasourceError::Status {
            status: 503,
            body: "<html>Service Unavailable</html>".into()
        }
    );
    // Warnings are logged, the answer is used.
    assert_eq!(
        query(&ds, "x", t).await.unwrap(),
        QueryData::Vector(vec![(Labels::empty(), 7.0)])
    );
    let e = query(&ds, "x", t).await.unwrap_err();
    assert!(
        matches!(&e, DatasourceError::Decode(m) if m.contains("invalid JSON")),
        "{e:?}"
    );
    let e = query(&ds, "x", t).await.unwrap_err();
    assert_eq!(e, DatasourceError::Timeout("400ms".into()));

    // GET sends the same parameters in the URL.
    script.lock().answers.push_back(answer(200, VECTOR));
    let get = datasource(
        "    method: GET\n    authorization: {credentials: tok}\n",
        &url,
    );
    query(&get, "up == 1", 1_000).await.unwrap();
    let seen = script.lock().seen.last().unwrap().clone();
    assert_eq!(seen.method, Method::GET);
    assert_eq!(seen.param("query"), Some("up == 1"));
    assert_eq!(seen.param("time"), Some("1.000"));
    assert_eq!(seen.headers["authorization"], "Bearer tok");

    // Nobody listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let down = datasource("", &format!("http://{closed}"));
    let e = query(&down, "x", t).await.unwrap_err();
    assert!(
        matches!(&e, DatasourceError::Connect(m) if m.to_lowercase().contains("refused")),
        "{e:?}"
    );
}

// ------------------------------------------------ group evaluation, mocked

fn group(yaml: &str) -> GroupState {
    let g = parse_rule_file("ds.yml", yaml.as_bytes(), Dialect::Prometheus3)
        .unwrap()
        .groups
        .remove(0);
    GroupState::new("ds.yml", g, Duration::from_secs(15), "http://k")
}

async fn eval(g: &Arc<Mutex<GroupState>>, head: &Arc<Head>, ds: &Arc<Datasource>, t: i64) {
    let (g, head, ds) = (g.clone(), head.clone(), ds.clone());
    tokio::task::spawn_blocking(move || {
        g.lock()
            .eval_group_with(&head, ds.as_ref(), t, &Labels::empty())
    })
    .await
    .unwrap();
}

fn head_value(head: &Head, expr: &str, t: i64) -> Vec<(Labels, f64)> {
    match Engine::default().instant(head, expr, t).unwrap().value {
        QValue::Vector(v) => v.iter().map(|s| ((*s.labels).clone(), s.value)).collect(),
        v => panic!("{v:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_offset_sets_the_time_sent_and_of_the_output() {
    let (url, script) = mock().await;
    script.lock().fallback = Some(answer(200, VECTOR));
    let ds = datasource("    query_offset: 30s\n", &url);
    let head = Arc::new(Head::new(HeadOptions::default()));
    let g = Arc::new(Mutex::new(group(
        "groups:\n- name: g\n  rules:\n  - record: svc:x:sum\n    expr: sum by (service) (x)\n",
    )));
    let t = 1_700_000_000_000;
    eval(&g, &head, &ds, t).await;
    assert_eq!(script.lock().seen[0].param("time"), Some("1699999970.000"));
    // Written at the query time, as Prometheus writes offset rule output.
    let mut got = head_value(&head, "svc:x:sum", t - 30_000);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            (
                Labels::from_pairs([("__name__", "svc:x:sum"), ("service", "a")]),
                4.5
            ),
            (
                Labels::from_pairs([("__name__", "svc:x:sum"), ("service", "b")]),
                -1.0
            ),
        ]
    );
    // A group's own query_offset wins over the datasource default.
    let g = Arc::new(Mutex::new(group(
        "groups:\n- name: g\n  query_offset: 10s\n  rules:\n  - record: r\n    expr: x\n",
    )));
    eval(&g, &head, &ds, t).await;
    assert_eq!(
        script.lock().seen.last().unwrap().param("time"),
        Some("1699999990.000")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_datasource_keeps_active_alerts() {
    let (url, script) = mock().await;
    let ds = datasource("    timeout: 300ms\n", &url);
    let head = Arc::new(Head::new(HeadOptions::default()));
    let g = Arc::new(Mutex::new(group(
        "groups:\n- name: g\n  rules:\n  - alert: Hot\n    expr: x > 0\n    for: 30s\n    labels: {severity: page}\n    annotations: {summary: 'at {{ $value }}'}\n",
    )));
    let firing = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{"__name__":"x","instance":"i1"},"value":[1,"3"]}]}}"#;
    let t0 = 1_700_000_000_000;
    {
        let mut s = script.lock();
        for _ in 0..3 {
            s.answers.push_back(answer(200, firing));
        }
        s.answers.push_back(answer(503, "overloaded"));
        s.answers.push_back(answer(
            422,
            r#"{"status":"error","errorType":"execution","error":"boom"}"#,
        ));
        s.answers.push_back(Answer {
            delay: Duration::from_secs(2),
            ..answer(200, firing)
        });
        s.answers.push_back(answer(200, firing));
    }
    for i in 0..3 {
        eval(&g, &head, &ds, t0 + i * 15_000).await;
    }
    let want_labels = Labels::from_pairs([
        ("alertname", "Hot"),
        ("instance", "i1"),
        ("severity", "page"),
    ]);
    let check_firing = |g: &GroupState| {
        let a = g.active_alerts("Hot");
        assert_eq!(a.len(), 1, "{a:?}");
        assert_eq!(a[0].labels, want_labels);
        assert_eq!(a[0].state, AlertState::Firing);
        assert_eq!(a[0].active_at, t0);
        assert_eq!(a[0].fired_at, Some(t0 + 30_000));
        assert_eq!(a[0].value, 3.0);
        assert_eq!(a[0].annotations["summary"], "at 3");
    };
    check_firing(&g.lock());
    assert!(!g
        .lock()
        .alerts_to_send(t0 + 30_000, Duration::from_secs(60))
        .is_empty());

    // 503, status:error, timeout: unhealthy each time, the alert untouched,
    // nothing sent (Prometheus sends only after a successful evaluation).
    let mut t = t0 + 30_000;
    for want in [
        "HTTP 503: overloaded",
        "(execution): boom",
        "timed out after 300ms",
    ] {
        t += 15_000;
        eval(&g, &head, &ds, t).await;
        let mut s = g.lock();
        let st = &s.rules[0];
        assert_eq!(st.health, RuleHealth::Err);
        let e = st.last_error.clone().unwrap();
        assert!(matches!(e, RuleError::Datasource(_)), "{e:?}");
        assert!(e.to_string().contains(want), "{e} lacks {want}");
        check_firing(&s);
        assert!(s.alerts_to_send(t, Duration::from_secs(0)).is_empty());
    }
    // No ALERTS samples written while failing, and no stale marker either:
    // the last sample is from the last successful evaluation.
    let alerts = head_value(&head, "timestamp(ALERTS)", t);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].1, ((t0 + 30_000) / 1000) as f64);

    t += 15_000;
    eval(&g, &head, &ds, t).await;
    let s = g.lock();
    assert_eq!(s.rules[0].health, RuleHealth::Ok);
    assert!(s.rules[0].last_error.is_none());
    check_firing(&s);
}

// ------------------------------------------------------- real Prometheus

fn synth_target(port: u16) -> Proc {
    let script = common::shared("tools/synth_target.py");
    assert!(script.is_file(), "missing {}", script.display());
    Proc(
        std::process::Command::new("python3")
            .arg(script)
            .args(["--port", &port.to_string(), "--series", "60"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3"),
    )
}

/// Prometheus on `port` with `dir/prometheus.yml`, data in `dir/data`;
/// returns once it is ready.
async fn prometheus(bin: &std::path::Path, dir: &std::path::Path, port: u16) -> Proc {
    common::start_prometheus(bin, dir, port, &[]).await
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Polls `f` every 250 ms until it returns `Some`, for at most `secs`.
async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

const ALERT_RULE: &str = "  - alert: SynthUp\n    expr: up{job=\"synth\"} == 1\n    for: 8s\n    labels: {severity: page}\n    annotations: {summary: '{{ $labels.instance }} is up'}\n";

fn prometheus_yml(dir: &std::path::Path, synth: u16, rules: Option<&str>) {
    let mut y = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nscrape_configs:\n  - job_name: synth\n    static_configs: [{{targets: ['127.0.0.1:{synth}']}}]\n"
    );
    if let Some(r) = rules {
        let p = dir.join("prom-rules.yml");
        std::fs::write(&p, r).unwrap();
        y.push_str(&format!("rule_files: ['{}']\n", p.display()));
    }
    std::fs::write(dir.join("prometheus.yml"), y).unwrap();
}

async fn start_klaxon(dir: &std::path::Path, prom: u16, rules: &str) -> klaxon::app::Running {
    let rp = dir.join("klaxon-rules.yml");
    std::fs::write(&rp, rules).unwrap();
    let yaml = format!(
        "storage: {{path: '{}'}}\nrule_files: ['{}']\nrule_evaluation:\n  for_grace_period: 0s\n  datasource:\n    url: http://127.0.0.1:{prom}\n    timeout: 2s\n    query_offset: 2s\n",
        dir.join("klaxon-store").display(),
        rp.display()
    );
    klaxon::app::start(
        load_str(&yaml, "klaxon.yml").unwrap(),
        klaxon::app::StartOptions::on("127.0.0.1:0"),
    )
    .await
    .expect("klaxon starts")
}

/// klaxon's one SynthUp alert as the alerts API shows it, when firing.
async fn firing_alert(base: &str) -> Option<serde_json::Value> {
    let v = get_json(&format!("{base}/api/v1/alerts")).await;
    let a = v["data"]["alerts"].as_array()?;
    a.iter()
        .find(|a| a["labels"]["alertname"] == "SynthUp" && a["state"] == "firing")
        .cloned()
}

async fn rules_health(base: &str) -> Vec<(String, String)> {
    let v = get_json(&format!("{base}/api/v1/rules")).await;
    v["data"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["health"].as_str().unwrap().to_string(),
                r["lastError"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn evaluates_against_a_real_prometheus() {
    let Some(bin) = peer("prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (sp, pp) = (free_port(), free_port());
    let _synth = synth_target(sp);
    prometheus_yml(dir.path(), sp, None);
    let prom_base = format!("http://127.0.0.1:{pp}");
    let mut prom = Some(prometheus(&bin, dir.path(), pp).await);
    wait_for("prometheus to scrape", 30, || async {
        let v = get_json(&format!(
            "{prom_base}/api/v1/query?query={}",
            enc("up{job=\"synth\"} == 1")
        ))
        .await;
        (v["data"]["result"].as_array().is_some_and(|r| r.len() == 1)).then_some(())
    })
    .await;

    let rules = format!(
        "groups:\n- name: ds\n  interval: 1s\n  rules:\n  - record: service:synth_queue_depth:sum\n    expr: sum by (service) (synth_queue_depth)\n{ALERT_RULE}"
    );
    let app = start_klaxon(dir.path(), pp, &rules).await;
    let base = format!("http://{}", app.addr);
    let alert = wait_for("the alert to fire", 30, || firing_alert(&base)).await;
    let labels = &alert["labels"];
    assert_eq!(
        labels,
        &serde_json::json!({"alertname": "SynthUp", "instance": format!("127.0.0.1:{sp}"), "job": "synth", "severity": "page"})
    );
    assert_eq!(
        alert["annotations"]["summary"],
        format!("127.0.0.1:{sp} is up")
    );
    assert_eq!(
        alert["value"].as_str().unwrap().parse::<f64>().unwrap(),
        1.0
    );
    let active_at = alert["activeAt"].clone();
    // ALERTS went to klaxon's own head (from where remote write ships it).
    let v = get_json(&format!(
        "{base}/api/v1/query?query={}",
        enc("ALERTS{alertstate=\"firing\"}")
    ))
    .await;
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1, "{v}");

    // Every recorded sample equals Prometheus' answer at its timestamp.
    let v = get_json(&format!(
        "{base}/api/v1/query?query={}",
        enc("service:synth_queue_depth:sum[20s]")
    ))
    .await;
    let series = v["data"]["result"].as_array().unwrap().clone();
    assert_eq!(series.len(), 10, "one per synth service: {v}");
    let mut compared = 0;
    for s in &series {
        let service = s["metric"]["service"].as_str().unwrap();
        for p in s["values"].as_array().unwrap() {
            let t = (p[0].as_f64().unwrap() * 1000.0).round() as i64;
            let ours: f64 = p[1].as_str().unwrap().parse().unwrap();
            let pv = get_json(&format!(
                "{prom_base}/api/v1/query?query={}&time={}",
                enc("sum by (service) (synth_queue_depth)"),
                klaxon::rules::datasource::format_time(t)
            ))
            .await;
            let theirs: f64 = pv["data"]["result"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["metric"]["service"] == service)
                .unwrap_or_else(|| panic!("{service} missing at {t}: {pv}"))["value"][1]
                .as_str()
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(ours, theirs, "{service} at {t}");
            compared += 1;
        }
    }
    assert!(compared >= 20, "only {compared} samples compared");

    // Prometheus goes away: rules unhealthy with the error, failures
    // counted, the alert still firing since the same time.
    drop(prom.take());
    let health = wait_for("rules to turn unhealthy", 20, || async {
        let h = rules_health(&base).await;
        h.iter().all(|(s, _)| s == "err").then_some(h)
    })
    .await;
    for (_, e) in &health {
        assert!(e.contains("datasource unreachable"), "{e}");
    }
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let failures: f64 = metrics
        .lines()
        .find(|l| l.starts_with("klaxon_rule_evaluation_failures_total{") && l.contains(";ds\""))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no failure counter in\n{metrics}"));
    assert!(failures >= 2.0, "{failures}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let still = firing_alert(&base).await.expect("alert still firing");
    assert_eq!(still["activeAt"], active_at);

    // Back again: healthy, same alert.
    let _prom = prometheus(&bin, dir.path(), pp).await;
    wait_for("rules to turn healthy", 30, || async {
        let h = rules_health(&base).await;
        h.iter()
            .all(|(s, e)| s == "ok" && e.is_empty())
            .then_some(())
    })
    .await;
    let again = firing_alert(&base).await.expect("alert still firing");
    assert_eq!(again["activeAt"], active_at);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restores_for_state_from_prometheus() {
    let Some(bin) = peer("prometheus") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (sp, pp) = (free_port(), free_port());
    let _synth = synth_target(sp);
    let rules = format!("groups:\n- name: ds\n  interval: 1s\n  rules:\n{ALERT_RULE}");
    prometheus_yml(dir.path(), sp, Some(&rules));
    let prom_base = format!("http://127.0.0.1:{pp}");
    let _prom = prometheus(&bin, dir.path(), pp).await;
    // Prometheus itself runs the rule long enough to fire, writing
    // ALERTS_FOR_STATE with its activeAt.
    let prom_alert = wait_for("prometheus' alert to fire", 40, || async {
        let v = get_json(&format!("{prom_base}/api/v1/alerts")).await;
        v["data"]["alerts"]
            .as_array()?
            .iter()
            .find(|a| a["state"] == "firing")
            .cloned()
    })
    .await;
    let prom_active = prom_alert["activeAt"].as_str().unwrap().to_string();

    // klaxon with an empty store: the alert comes back with Prometheus'
    // activeAt (to the second, the precision of ALERTS_FOR_STATE) and fires
    // at its first evaluation instead of waiting `for` (8s) again.
    // Watched from klaxon's start, counted in evaluations (not seconds, so
    // a loaded machine cannot fail it): as in Prometheus, the restored
    // alert is pending for the one evaluation before the restore and
    // fires at the next; without the restore it would stay pending for
    // the 8 evaluations of `for`.
    let app = start_klaxon(dir.path(), pp, &rules).await;
    let base = format!("http://{}", app.addr);
    let mut pending_evals = std::collections::BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = get_json(&format!("{base}/api/v1/rules")).await;
        let rule = v["data"]["groups"][0]["rules"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == "SynthUp").cloned());
        if let Some(r) = rule {
            let at = r["lastEvaluation"].as_str().unwrap_or_default().to_string();
            match r["state"].as_str() {
                Some("firing") => break,
                Some("pending") => {
                    pending_evals.insert(at);
                }
                _ => {}
            }
        }
        assert!(Instant::now() < deadline, "klaxon's alert never fired");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        pending_evals.len() <= 1,
        "pending for {} evaluations: {pending_evals:?}",
        pending_evals.len()
    );
    let a = firing_alert(&base).await.expect("firing alert");
    let ours = a["activeAt"].as_str().unwrap();
    assert_eq!(ours[..19], prom_active[..19], "{ours} vs {prom_active}");
    assert_eq!(a["labels"], prom_alert["labels"]);
    app.stop().await;
}
