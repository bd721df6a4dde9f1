//! Auto-healing end to end on 127.0.0.1: alerts posted to a real klaxon
//! fire remediation rules that call a fake remediation endpoint, which
//! verifies the HMAC signature; cooldowns, retries, the kill-switch, the
//! rules API (with persistence across a restart) and the receiver circuit
//! breaker of the notification outbox.

use crate::common::{get_json, Klaxon};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "remediation-s3cret";

/// JSON bodies without reqwest's `json` feature.
trait JsonBody {
    fn js(self, v: &Value) -> Self;
}

impl JsonBody for reqwest::RequestBuilder {
    fn js(self, v: &Value) -> Self {
        self.header("Content-Type", "application/json")
            .body(v.to_string())
    }
}

trait JsonAnswer {
    async fn js_body(self) -> Value;
}

impl JsonAnswer for reqwest::Response {
    async fn js_body(self) -> Value {
        let text = self.text().await.expect("answer body");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }
}
const WAIT: Duration = Duration::from_secs(20);

/// One request the fake endpoint got: signature valid, JSON body,
/// `X-Correlation-ID`.
type Call = (bool, Value, Option<String>);

/// A fake remediation (or receiver) endpoint: answers `status` (200 unless
/// told otherwise), keeps every request with whether its signature was
/// valid for [`SECRET`].
#[derive(Clone)]
struct Endpoint {
    url: String,
    status: Arc<AtomicU16>,
    calls: Arc<Mutex<Vec<Call>>>,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if Arc::strong_count(&self.task) == 1 {
            self.task.abort();
        }
    }
}

impl Endpoint {
    async fn start() -> Endpoint {
        let status = Arc::new(AtomicU16::new(200));
        let calls: Arc<Mutex<Vec<Call>>> = Default::default();
        let (st, c) = (status.clone(), calls.clone());
        let app = axum::Router::new().fallback(move |h: HeaderMap, body: Bytes| {
            let (st, c) = (st.clone(), c.clone());
            async move {
                let hv = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(String::from);
                let ts = hv("x-timestamp").unwrap_or_default();
                let want = format!(
                    "sha256={}",
                    klaxon::ops::commands::sign_request(SECRET.as_bytes(), &ts, &body)
                );
                let valid = hv("x-signature").as_deref() == Some(want.as_str());
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                c.lock().unwrap().push((valid, v, hv("x-correlation-id")));
                StatusCode::from_u16(st.load(Ordering::SeqCst)).unwrap_or(StatusCode::OK)
            }
        });
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = l.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });
        Endpoint {
            url: format!("http://{addr}/fix"),
            status,
            calls,
            task: Arc::new(task),
        }
    }

    fn count(&self) -> usize {
        self.calls.lock().unwrap().len()
    }
}

async fn until<F: Fn() -> Fut, Fut: std::future::Future<Output = bool>>(what: &str, f: F) {
    let end = Instant::now() + WAIT;
    while !f().await {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Posts one alert; `ends_in_ms` negative resolves it.
async fn post_alert(base: &str, alertname: &str, instance: &str, starts: i64, ends: i64) {
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v2/alerts"))
        .js(&json!([{
            "labels": {"alertname": alertname, "instance": instance, "severity": "page"},
            "annotations": {"runbook_url": "http://runbooks/DiskFull", "summary": "disk \"full\""},
            "startsAt": klaxon::model::time::rfc3339_millis(starts),
            "endsAt": klaxon::model::time::rfc3339_millis(ends),
        }]))
        .send()
        .await
        .expect("post alert");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

fn now() -> i64 {
    klaxon::model::now_millis()
}

/// A new firing episode of the alert: resolved, then firing from now.
async fn fire_again(base: &str, alertname: &str, instance: &str) {
    let t = now();
    post_alert(base, alertname, instance, t - 60_000, t - 1).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let t = now();
    post_alert(base, alertname, instance, t, t + 3_600_000).await;
}

async fn runs(base: &str) -> Vec<Value> {
    let v = get_json(&format!("{base}/api/v1/autoheal/runs?limit=1000")).await;
    v["data"]["runs"].as_array().cloned().unwrap_or_default()
}

async fn outcomes(base: &str, rule: &str) -> Vec<String> {
    runs(base)
        .await
        .iter()
        .filter(|e| e["data"]["rule"] == rule)
        .map(|e| e["data"]["outcome"].as_str().unwrap_or("").to_string())
        .collect()
}

async fn metric(base: &str, series: &str) -> f64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|r| r.trim().parse().ok()))
        .unwrap_or(0.0)
}

fn rule_yaml(name: &str, url: &str, cooldown: &str, retry: &str) -> String {
    format!(
        "  - name: {name}\n    matchers: ['alertname=\"DiskFull\"']\n    severity: [page]\n    cooldown: {cooldown}\n    target_labels: [instance]\n    action:\n      http:\n        url: {url}\n        hmac_secret: {SECRET}\n        body: '{{\"host\": \"{{{{ .Labels.instance }}}}\", \"why\": \"{{{{ .Annotations.summary }}}}\", \"runbook\": \"{{{{ .RunbookURL }}}}\"}}'\n    retry: {retry}\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_runs_the_action_once_the_cooldown_holds_the_next_then_it_runs_again() {
    let ep = Endpoint::start().await;
    let k = Klaxon::start(&format!(
        "autoheal:\n  rules:\n{}",
        rule_yaml("clean-disk", &ep.url, "3s", "{attempts: 1}")
    ))
    .await;
    let base = k.base.clone();
    let t0 = now();
    post_alert(&base, "DiskFull", "db:1", t0, t0 + 3_600_000).await;
    until("the first run", || async { ep.count() == 1 }).await;
    until("its success in the history", || async {
        outcomes(&base, "clean-disk").await == ["triggered", "succeeded"]
    })
    .await;
    let first_run = now();
    {
        let calls = ep.calls.lock().unwrap();
        let (valid, body, cid) = &calls[0];
        assert!(valid, "HMAC signature not valid: {body}");
        // The template's values are JSON-escaped: a quote in the summary
        // keeps the body valid JSON.
        assert_eq!(
            *body,
            json!({"host": "db:1", "why": "disk \"full\"", "runbook": "http://runbooks/DiskFull"})
        );
        assert!(cid
            .as_deref()
            .is_some_and(|c| c.starts_with("ah-clean-disk-")));
    }
    // The same alert still firing is not run again.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(ep.count(), 1);
    // A second firing within the cooldown is held back, and says until when.
    fire_again(&base, "DiskFull", "db:1").await;
    until("the skip", || async {
        outcomes(&base, "clean-disk")
            .await
            .last()
            .map(String::as_str)
            == Some("skipped_cooldown")
    })
    .await;
    assert_eq!(ep.count(), 1);
    let r = get_json(&format!("{base}/api/v1/autoheal/rules")).await;
    let rule = &r["data"]["rules"][0];
    assert_eq!(rule["name"], "clean-disk");
    assert_eq!(rule["source"], "config");
    assert_eq!(rule["action"]["http"]["hmac_secret"], "<secret>");
    assert!(!r.to_string().contains(SECRET), "secret leaked: {r}");
    let next = rule["targets"][0]["next_allowed_ms"]
        .as_i64()
        .expect("next");
    assert!(
        next > first_run - 1000 && next <= first_run + 3000,
        "{rule}"
    );
    // Another target is not held back by it.
    post_alert(&base, "DiskFull", "db:2", now(), now() + 3_600_000).await;
    until("the other target's run", || async { ep.count() == 2 }).await;
    // After the cooldown, a new firing runs again.
    let wait = (first_run + 3100 - now()).max(0) as u64;
    tokio::time::sleep(Duration::from_millis(wait)).await;
    fire_again(&base, "DiskFull", "db:1").await;
    until("the run after the cooldown", || async { ep.count() == 3 }).await;
    assert!(ep.calls.lock().unwrap().iter().all(|c| c.0));
    until("the metrics", || async {
        metric(
            &base,
            "klaxon_autoheal_decisions_total{rule=\"clean-disk\",outcome=\"succeeded\"}",
        )
        .await
            == 3.0
            && metric(
                &base,
                "klaxon_autoheal_decisions_total{rule=\"clean-disk\",outcome=\"skipped_cooldown\"}",
            )
            .await
                == 1.0
    })
    .await;
    // The decisions are in the event stream's store too (the audit list).
    let audit = get_json(&format!(
        "{base}/api/v1/events/audit?kind=autoheal&limit=100"
    ))
    .await;
    assert!(
        audit.to_string().contains("skipped_cooldown"),
        "not in the audit list: {audit}"
    );
    k.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_action_is_retried_per_its_policy_and_audited() {
    let ep = Endpoint::start().await;
    ep.status.store(503, Ordering::SeqCst);
    let k = Klaxon::start(&format!(
        "autoheal:\n  rules:\n{}",
        rule_yaml("clean-disk", &ep.url, "1h", "{attempts: 3, backoff: 100ms}")
    ))
    .await;
    let base = k.base.clone();
    post_alert(&base, "DiskFull", "db:1", now(), now() + 3_600_000).await;
    until("the failure in the history", || async {
        outcomes(&base, "clean-disk")
            .await
            .last()
            .map(String::as_str)
            == Some("failed")
    })
    .await;
    assert_eq!(ep.count(), 3, "three attempts in all");
    // The same run id on every attempt, so a receiver can drop repeats.
    let ids: Vec<_> = ep
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.2.clone())
        .collect();
    assert!(ids.iter().all(|i| *i == ids[0] && i.is_some()), "{ids:?}");
    assert_eq!(
        outcomes(&base, "clean-disk").await,
        ["triggered", "retrying", "retrying", "failed"]
    );
    let h = runs(&base).await;
    let failed = h.iter().find(|e| e["data"]["outcome"] == "failed").unwrap();
    assert_eq!(failed["data"]["error"], "HTTP 503 after 3 attempt(s)");
    assert_eq!(
        metric(
            &base,
            "klaxon_autoheal_action_failures_total{rule=\"clean-disk\",reason=\"status\"}"
        )
        .await,
        1.0
    );
    k.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_pauses_every_action() {
    const CMD: &str = "command-secret-for-the-test";
    let ep = Endpoint::start().await;
    let k = Klaxon::start(&format!(
        "command_center:\n  command_secret: {CMD}\nautoheal:\n  rules:\n{}",
        rule_yaml("clean-disk", &ep.url, "0s", "{attempts: 1}")
    ))
    .await;
    let base = k.base.clone();
    let c = reqwest::Client::new();
    let send = |name: &'static str, cid: &'static str| {
        let (c, base) = (c.clone(), base.clone());
        async move {
            let body = r#"{"reason":"drill","operator":"ana"}"#;
            let ts = (now() / 1000).to_string();
            let sig = klaxon::ops::commands::sign_request(CMD.as_bytes(), &ts, body.as_bytes());
            let r = c
                .post(format!("{base}/internal/commands/{name}"))
                .header("X-Timestamp", ts)
                .header("X-Correlation-ID", cid)
                .header("X-Signature", format!("sha256={sig}"))
                .header("Content-Type", "application/json")
                .body(body)
                .send()
                .await
                .expect("command");
            assert_eq!(r.status(), 200, "{name}: {:?}", r.text().await);
        }
    };
    send("kill-switch", "ah-drill-1").await;
    post_alert(&base, "DiskFull", "db:1", now(), now() + 3_600_000).await;
    until("the maintenance skip", || async {
        outcomes(&base, "clean-disk").await == ["skipped_maintenance"]
    })
    .await;
    let r = get_json(&format!("{base}/api/v1/autoheal/rules")).await;
    assert_eq!(r["data"]["paused"], true);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(ep.count(), 0, "an action ran in maintenance mode");
    send("resume", "ah-drill-2").await;
    fire_again(&base, "DiskFull", "db:1").await;
    until("the run after resume", || async { ep.count() == 1 }).await;
    k.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_manage_rules_through_the_api_and_they_survive_a_restart() {
    let ep = Endpoint::start().await;
    let admin = "admin-token-0123456789";
    let operator = "operator-token-0123456789";
    let sha = |t: &str| {
        use sha2::Digest;
        sha2::Sha256::digest(t.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    let extra = format!(
        "auth:\n  anonymous_role: none\n  tokens:\n    - {{name: boss, token_sha256: {}, roles: [admin]}}\n    - {{name: oncall, token_sha256: {}, roles: [operator]}}\nautoheal:\n  rules:\n{}",
        sha(admin),
        sha(operator),
        rule_yaml("from-file", &ep.url, "1h", "{attempts: 1}")
    );
    let k = Klaxon::start(&extra).await;
    let (app, base, dir) = k.parts();
    let c = reqwest::Client::new();
    let rule = json!({
        "name": "restart-api",
        "matchers": ["alertname=\"ApiDown\""],
        "cooldown": "2s",
        "dry_run": true,
        "action": {"http": {"url": ep.url, "hmac_secret": SECRET}},
    });
    // An operator may read, not create.
    let r = c
        .post(format!("{base}/api/v1/autoheal/rules"))
        .bearer_auth(operator)
        .js(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let r = c
        .post(format!("{base}/api/v1/autoheal/rules"))
        .bearer_auth(admin)
        .js(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    // A second create of the name, and any change of a config rule, conflict.
    let r = c
        .post(format!("{base}/api/v1/autoheal/rules"))
        .bearer_auth(admin)
        .js(&rule)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let r = c
        .delete(format!("{base}/api/v1/autoheal/rules/from-file"))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    // A bad rule is refused with the position of the problem.
    let r = c
        .put(format!("{base}/api/v1/autoheal/rules/restart-api"))
        .bearer_auth(admin)
        .header("Content-Type", "application/json")
        .body("{\"name\": \"restart-api\",\n \"matchers\": [],\n \"cooldown\": \"soon\", \"action\": {\"http\": {\"url\": \"http://h/\"}}}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e = r.text().await.unwrap();
    assert!(e.contains("request body:3:"), "{e}");
    let list = c
        .get(format!("{base}/api/v1/autoheal/rules"))
        .bearer_auth(operator)
        .send()
        .await
        .unwrap();
    assert_eq!(list.status(), 200);
    let list: Value = list.js_body().await;
    let names: Vec<_> = list["data"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["name"].clone(), r["source"].clone()))
        .collect();
    assert_eq!(
        names,
        [
            (json!("from-file"), json!("config")),
            (json!("restart-api"), json!("api"))
        ]
    );
    assert!(!list.to_string().contains(SECRET));
    // The dry run decides and audits, and calls nothing.
    let r = c
        .post(format!("{base}/api/v2/alerts"))
        .bearer_auth(admin)
        .js(&json!([{"labels": {"alertname": "ApiDown", "instance": "api:1"}}]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    until("the dry run", || async {
        let v: Value = c
            .get(format!("{base}/api/v1/autoheal/runs?rule=restart-api"))
            .bearer_auth(operator)
            .send()
            .await
            .unwrap()
            .js_body()
            .await;
        v["data"]["runs"][0]["data"]["outcome"] == "dry_run"
    })
    .await;
    assert_eq!(ep.count(), 0);
    // The creation is audited with the caller and the rule's name.
    until("the audit entry", || async {
        let v: Value = c
            .get(format!("{base}/api/v1/events/audit?kind=change&limit=100"))
            .bearer_auth(admin)
            .send()
            .await
            .unwrap()
            .js_body()
            .await;
        v["data"]["events"].as_array().is_some_and(|es| {
            es.iter().any(|e| {
                e["data"]["action"] == "autoheal_rule_create"
                    && e["data"]["who"] == "boss"
                    && e["data"]["target"] == "restart-api"
                    && e["data"]["status"] == 200
            })
        })
    })
    .await;
    app.stop().await;
    // Restarted on the same storage: the API's rule is back.
    let k = Klaxon::start_in(dir, &extra, |_| {}).await;
    let list: Value = c
        .get(format!("{}/api/v1/autoheal/rules/restart-api", k.base))
        .bearer_auth(operator)
        .send()
        .await
        .unwrap()
        .js_body()
        .await;
    assert_eq!(list["data"]["source"], "api", "{list}");
    assert_eq!(list["data"]["dry_run"], true);
    let r = c
        .delete(format!("{}/api/v1/autoheal/rules/restart-api", k.base))
        .bearer_auth(admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .get(format!("{}/api/v1/autoheal/rules/restart-api", k.base))
        .bearer_auth(operator)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    k.app.stop().await;
}

/// A klaxon whose one receiver (a webhook) answers 500, with a breaker of
/// 5 failures and `cooldown`, after five groups were notified (five failed
/// attempts in a row).
async fn failing_receiver(cooldown: &str) -> (Endpoint, Klaxon) {
    let hook = Endpoint::start().await;
    hook.status.store(500, Ordering::SeqCst);
    let k = Klaxon::start(&format!(
        "autoheal:\n  receiver_breaker: {{failures: 5, cooldown: {cooldown}}}\nnotify:\n  route:\n    receiver: hook\n    group_by: [alertname]\n    group_wait: 0s\n    group_interval: 1h\n  receivers:\n  - name: hook\n    webhook_configs:\n    - url: {}\n",
        hook.url
    ))
    .await;
    for i in 0..5 {
        post_alert(
            &k.base,
            &format!("Down{i}"),
            "x:1",
            now(),
            now() + 3_600_000,
        )
        .await;
    }
    (hook, k)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_5_times_cools_down_keeps_its_queue_and_delivers_after_recovery() {
    let (hook, k) = failing_receiver("30s").await;
    let base = k.base.clone();
    let deliveries = || async {
        get_json(&format!("{}/api/v1/deliveries?limit=1000", base)).await["data"].clone()
    };
    until("the cooldown", || async {
        deliveries().await["endpoints"][0]["cooldownUntil"].is_string()
    })
    .await;
    let d = deliveries().await;
    assert_eq!(d["endpoints"][0]["receiver"], "hook");
    assert_eq!(d["endpoints"][0]["integration"], "webhook");
    assert!(d["endpoints"][0]["consecutiveFailures"].as_u64() >= Some(5));
    assert_eq!(
        metric(
            &base,
            "klaxon_notify_endpoint_cooldown{receiver=\"hook\",integration=\"webhook\"}"
        )
        .await,
        1.0
    );
    until("the cooldown event", || async {
        outcomes_any(&base)
            .await
            .contains(&"endpoint_cooldown".to_string())
    })
    .await;
    // More notifications while in cooldown: they wait, nothing is sent.
    let sent = hook.count();
    for i in 5..8 {
        post_alert(&base, &format!("Down{i}"), "x:1", now(), now() + 3_600_000).await;
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(hook.count(), sent, "sent while in cooldown");
    let rows = deliveries().await["deliveries"]
        .as_array()
        .cloned()
        .unwrap();
    assert_eq!(rows.len(), 8);
    assert!(
        rows.iter().all(|r| r["status"] == "pending"),
        "a notification was dropped: {rows:?}"
    );
    // The receiver recovers; the admin clears the cooldown: all delivered.
    hook.status.store(200, Ordering::SeqCst);
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/autoheal/clear_endpoint_cooldown"))
        .js(&json!({"receiver": "hook", "integration": "webhook"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.js_body().await;
    assert_eq!(v["data"]["cleared"][0]["receiver"], "hook");
    until("every notification delivered", || async {
        let rows = deliveries().await["deliveries"]
            .as_array()
            .cloned()
            .unwrap();
        rows.len() == 8 && rows.iter().all(|r| r["status"] == "success")
    })
    .await;
    assert_eq!(
        metric(
            &base,
            "klaxon_notify_endpoint_cooldown{receiver=\"hook\",integration=\"webhook\"}"
        )
        .await,
        0.0
    );
    until("the clear audited", || async {
        let v = get_json(&format!("{base}/api/v1/events/audit?kind=change&limit=100")).await;
        v.to_string().contains("autoheal_clear_endpoint_cooldown")
    })
    .await;
    k.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cooled_down_receiver_recovers_on_its_own_after_the_cooldown() {
    let (hook, k) = failing_receiver("2s").await;
    let base = k.base.clone();
    until("the cooldown event", || async {
        outcomes_any(&base)
            .await
            .contains(&"endpoint_cooldown".to_string())
    })
    .await;
    hook.status.store(200, Ordering::SeqCst);
    let end = Instant::now() + WAIT;
    loop {
        let v = get_json(&format!("{base}/api/v1/deliveries")).await;
        let rows = v["data"]["deliveries"].as_array().cloned().unwrap();
        if rows.len() == 5 && rows.iter().all(|r| r["status"] == "success") {
            break;
        }
        assert!(
            Instant::now() < end,
            "not all delivered: {v:#}\nruns: {:#?}",
            runs(&base).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    until("the recovery event", || async {
        outcomes_any(&base)
            .await
            .contains(&"endpoint_recovered".to_string())
    })
    .await;
    k.app.stop().await;
}

async fn outcomes_any(base: &str) -> Vec<String> {
    runs(base)
        .await
        .iter()
        .map(|e| e["data"]["outcome"].as_str().unwrap_or("").to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_action_puts_another_klaxon_into_maintenance() {
    const CMD: &str = "the-other-klaxons-command-secret";
    let other = Klaxon::start(&format!("command_center:\n  command_secret: {CMD}\n")).await;
    let k = Klaxon::start(&format!(
        "autoheal:\n  rules:\n  - name: stop-paging\n    matchers: ['alertname=\"PageFlood\"']\n    action:\n      command: {{url: '{}', command: kill-switch, reason: 'page flood', secret: {CMD}}}\n",
        other.base
    ))
    .await;
    post_alert(&k.base, "PageFlood", "x:1", now(), now() + 3_600_000).await;
    until("the other klaxon in maintenance", || async {
        reqwest::get(format!("{}/-/ready", other.base))
            .await
            .is_ok_and(|r| r.status() == 503)
    })
    .await;
    until("the success in the history", || async {
        outcomes(&k.base, "stop-paging").await == ["triggered", "succeeded"]
    })
    .await;
    // The other klaxon audited the command with the rule as its operator.
    let audit = get_json(&format!("{}/api/v1/events/audit?kind=command", other.base)).await;
    let cmd = &audit["data"]["events"][0]["data"];
    assert_eq!(cmd["what"], "kill-switch", "{audit}");
    assert_eq!(cmd["who"], "autoheal/stop-paging");
    assert_eq!(cmd["reason"], "page flood");
    assert_eq!(cmd["result"], "accepted");
    k.app.stop().await;
    other.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_applies_the_autoheal_section_or_nothing() {
    let ep = Endpoint::start().await;
    let k = Klaxon::start(&format!(
        "autoheal:\n  rules:\n{}",
        rule_yaml("first", &ep.url, "1h", "{attempts: 1}")
    ))
    .await;
    let path = k.dir.path().join("klaxon.yml");
    let text = std::fs::read_to_string(&path).expect("config");
    let names = || async {
        get_json(&format!("{}/api/v1/autoheal/rules", k.base)).await["data"]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    let reload = || async {
        reqwest::Client::new()
            .post(format!("{}/-/reload", k.base))
            .send()
            .await
            .expect("reload")
    };
    std::fs::write(&path, text.replace("name: first", "name: second")).expect("write");
    assert_eq!(reload().await.status(), 200);
    assert_eq!(names().await, ["second"]);
    // A broken section fails the reload with its position; nothing changes.
    std::fs::write(
        &path,
        text.replace("name: first", "name: third")
            .replace("cooldown: 1h", "cooldown: often"),
    )
    .expect("write");
    let r = reload().await;
    assert_eq!(r.status(), 500);
    let e = r.text().await.unwrap();
    assert!(e.contains("klaxon.yml:") && e.contains("often"), "{e}");
    assert_eq!(names().await, ["second"]);
    k.app.stop().await;
}
