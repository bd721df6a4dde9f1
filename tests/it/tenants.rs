//! Tenants: two tenant-scoped tokens against a real klaxon see and change
//! only their own tenant's series, alerts, silences, deliveries and events
//! through every API the UI calls, while an admin sees both; and a
//! generated-PromQL property test that the tenant matcher injection cannot
//! be escaped (every selector carries it, and the result over a head of two
//! tenants equals the result over a head of the caller's tenant alone).

use crate::common::{tempdir, Rng};
use klaxon::model::Labels;
use klaxon::ops::tenants::{unscoped_selectors, Scope, ScopedQueryable};
use klaxon::promql::engine::Query;
use klaxon::promql::{parse, Engine};
use klaxon::tsdb::Head;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TA: &str = "token-of-tenant-a";
const TB: &str = "token-of-tenant-b";
const ADMIN: &str = "token-of-admin";

fn hex(t: &str) -> String {
    Sha256::digest(t.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

struct Api {
    c: reqwest::Client,
    base: String,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Vec<u8>>,
    ) -> (u16, String) {
        let url = format!("{}{path}", self.base);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut r = self.c.request(m, &url).bearer_auth(token);
        if let Some(b) = body {
            let ct = if path == "/api/v1/write" {
                "application/x-protobuf"
            } else {
                "application/json"
            };
            r = r.header("Content-Type", ct).body(b);
        }
        let resp = r
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        )
    }

    async fn json(&self, path: &str, token: &str) -> Value {
        let (code, text) = self.call("GET", path, token, None).await;
        assert_eq!(code, 200, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {path}: {e}: {text}"))
    }

    async fn post_json(&self, path: &str, token: &str, v: &Value) -> (u16, String) {
        self.call("POST", path, token, Some(v.to_string().into_bytes()))
            .await
    }
}

fn q(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Every `tenant` label value found anywhere in a JSON answer (label
/// objects), and every `tenant="x"` inside strings (group keys).
fn tenants_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "tenant" {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_string());
                    }
                }
                tenants_in(x, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|x| tenants_in(x, out)),
        Value::String(s) => {
            for t in ["a", "b"] {
                if s.contains(&format!("tenant=\"{t}\"")) {
                    out.push(t.to_string());
                }
            }
        }
        _ => {}
    }
}

fn seen(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    tenants_in(v, &mut out);
    out.sort();
    out.dedup();
    out
}

fn remote_write(series: &[(&[(&str, &str)], f64)], t: i64) -> Vec<u8> {
    use klaxon::remote::proto::{encode_snappy, Exemplar, Sample, TimeSeries, WriteRequest};
    let ts = series
        .iter()
        .map(|(labels, v)| {
            let mut l: Vec<klaxon::model::Label> = labels
                .iter()
                .map(|(n, v)| klaxon::model::Label {
                    name: n.to_string(),
                    value: v.to_string(),
                })
                .collect();
            l.sort_by(|a, b| a.name.cmp(&b.name));
            TimeSeries {
                histograms: Vec::new(),
                // Every sample carries an exemplar, so the exemplar API's
                // scoping is checked on the same series.
                exemplars: vec![Exemplar {
                    labels: vec![klaxon::model::Label {
                        name: "trace_id".to_string(),
                        value: format!("trace-{v}"),
                    }],
                    value: *v,
                    timestamp: t,
                }],
                labels: l,
                samples: vec![Sample {
                    value: *v,
                    timestamp: t,
                }],
            }
        })
        .collect();
    encode_snappy(&WriteRequest {
        timeseries: ts,
        ..Default::default()
    })
}

async fn until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tenants_see_and_change_only_their_own() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("t.rules"),
        "groups:\n- name: g\n  interval: 1s\n  rules:\n  - alert: TenantHot\n    expr: tm > 0\n    labels: {severity: critical}\n  - record: tenant:tm:sum\n    expr: sum by (tenant) (tm{tenant=\"a\"})\n    labels: {tenant: a}\n",
    )
    .unwrap();
    // Deliveries go to a closed port: stored, then retried (pending).
    let closed = crate::common::free_port();
    let yaml = format!(
        concat!(
            "storage:\n  path: {d}\nglobal:\n  evaluation_interval: 1s\nrule_files: ['{d}/t.rules']\n",
            "auth:\n  anonymous_role: none\n  tokens:\n",
            "    - {{name: ta, token_sha256: {a}, roles: [operator], tenants: [a]}}\n",
            "    - {{name: tb, token_sha256: {b}, roles: [operator], tenants: [b]}}\n",
            "    - {{name: root, token_sha256: {r}, roles: [admin]}}\n",
            "notify:\n  route:\n    receiver: hook\n    group_by: [tenant, alertname]\n",
            "    group_wait: 50ms\n    group_interval: 1s\n  receivers:\n  - name: hook\n",
            "    webhook_configs:\n    - url: http://127.0.0.1:{closed}/hook\n",
        ),
        d = dir.path().display(),
        a = hex(TA),
        b = hex(TB),
        r = hex(ADMIN),
        closed = closed,
    );
    let cfg =
        klaxon::settings::load_str(&yaml, "klaxon.yml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let opts = klaxon::app::StartOptions {
        enable_remote_write_receiver: true,
        ..klaxon::app::StartOptions::on("127.0.0.1:0")
    };
    let app = klaxon::app::start(cfg, opts).await.expect("klaxon starts");
    let api = Api {
        c: reqwest::Client::new(),
        base: format!("http://{}", app.addr),
    };

    // Data of both tenants (and one series of none), written by the admin.
    let now = klaxon::model::now_millis();
    let body = remote_write(
        &[
            (&[("__name__", "tm"), ("tenant", "a"), ("i", "1")], 1.0),
            (&[("__name__", "tm"), ("tenant", "b"), ("i", "1")], 2.0),
            (
                &[("__name__", "secret_b"), ("tenant", "b"), ("bonly", "x")],
                3.0,
            ),
            (&[("__name__", "untenanted"), ("job", "x")], 4.0),
        ],
        now,
    );
    assert_eq!(
        api.call("POST", "/api/v1/write", ADMIN, Some(body)).await.0,
        204
    );

    // Writes: a scoped token writes only its tenant's series.
    let foreign = remote_write(
        &[(&[("__name__", "tm"), ("tenant", "b"), ("i", "9")], 1.0)],
        now,
    );
    let (code, text) = api.call("POST", "/api/v1/write", TA, Some(foreign)).await;
    assert_eq!(code, 400, "{text}");
    assert!(
        text.contains("tenant=\"b\"") && text.contains("tenant"),
        "{text}"
    );
    let bare = remote_write(&[(&[("__name__", "tm"), ("i", "9")], 1.0)], now);
    assert_eq!(
        api.call("POST", "/api/v1/write", TA, Some(bare)).await.0,
        400
    );
    let own = remote_write(
        &[(&[("__name__", "tm"), ("tenant", "a"), ("i", "2")], 5.0)],
        now,
    );
    assert_eq!(
        api.call("POST", "/api/v1/write", TA, Some(own)).await.0,
        204
    );

    // Queries, instant and range, including escape attempts.
    // Just past the first whole minute after the samples: a subquery step
    // (aligned to its 1m step) then falls after them, inside the lookback,
    // whatever second of the minute the test runs at.
    let t = ((now / 60_000) + 1) as f64 * 60.0 + 1.0;
    for (tok, mine) in [(TA, "a"), (TB, "b")] {
        for expr in [
            "tm",
            "{__name__=~\".+\"}",
            "{tenant=~\"a|b\"}",
            "tm{tenant!=\"zzz\"} or secret_b",
            "label_replace(tm, \"tenant\", \"$1\", \"i\", \"(.*)\")",
            "sum by (tenant) (max_over_time({__name__=~\"tm|secret_b\"}[5m:1m]))",
        ] {
            let v = api
                .json(&format!("/api/v1/query?query={}&time={t}", q(expr)), tok)
                .await;
            let got = seen(&v["data"]);
            if !expr.starts_with("label_replace") {
                assert_eq!(got, [mine], "{expr} as {mine}: {v}");
            }
            let r = api
                .json(
                    &format!(
                        "/api/v1/query_range?query={}&start={}&end={t}&step=15",
                        q(expr),
                        t - 60.0
                    ),
                    tok,
                )
                .await;
            let n = r["data"]["result"].as_array().map_or(0, Vec::len);
            assert!(n > 0, "{expr}: {r}");
            if !expr.starts_with("label_replace") {
                assert_eq!(seen(&r["data"]), [mine], "{expr} as {mine}: {r}");
            }
        }
        // Another tenant's metric is absent for this one.
        let v = api
            .json(
                &format!(
                    "/api/v1/query?query={}&time={t}",
                    q("count({__name__=~\"tm|secret_b\"})")
                ),
                tok,
            )
            .await;
        assert_eq!(v["data"]["result"][0]["value"][1], "2", "{v}");
        let v = api
            .json(
                &format!("/api/v1/query?query={}&time={t}", q("absent(secret_b)")),
                tok,
            )
            .await;
        assert_eq!(
            v["data"]["result"].as_array().unwrap().len(),
            usize::from(mine == "a"),
            "{v}"
        );
        // The untenanted series is nobody's.
        let v = api
            .json(&format!("/api/v1/query?query=untenanted&time={t}"), tok)
            .await;
        assert_eq!(v["data"]["result"], serde_json::json!([]), "{v}");

        // Exemplars: only this tenant's series carry any.
        let v = api
            .json(
                &format!(
                    "/api/v1/query_exemplars?query={}&start={}&end={}",
                    q("{__name__=~\".+\"}"),
                    t - 3600.0,
                    t + 60.0
                ),
                tok,
            )
            .await;
        assert!(v["data"].as_array().is_some_and(|a| !a.is_empty()), "{v}");
        assert_eq!(seen(&v["data"]), [mine], "exemplars as {mine}: {v}");

        // Series and labels.
        let v = api
            .json(
                &format!("/api/v1/series?match[]={}", q("{__name__=~\".+\"}")),
                tok,
            )
            .await;
        assert_eq!(seen(&v["data"]), [mine], "{v}");
        let v = api.json("/api/v1/label/tenant/values", tok).await;
        assert_eq!(v["data"], serde_json::json!([mine]), "{v}");
        let v = api.json("/api/v1/label/__name__/values", tok).await;
        let names: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x.as_str())
            .collect();
        assert_eq!(names.contains(&"secret_b"), mine == "b", "{v}");
        assert!(!names.contains(&"untenanted"), "{v}");
        let v = api.json("/api/v1/labels", tok).await;
        let labels: Vec<&str> = v["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|x| x.as_str())
            .collect();
        assert_eq!(labels.contains(&"bonly"), mine == "b", "{v}");
        let v = api
            .json(
                &format!(
                    "/api/v1/label/tenant/values?match[]={}",
                    q("tm{tenant=\"b\"}")
                ),
                TA,
            )
            .await;
        assert_eq!(v["data"], serde_json::json!([]), "{v}");
    }
    let v = api.json("/api/v1/label/tenant/values", ADMIN).await;
    assert_eq!(v["data"], serde_json::json!(["a", "b"]), "{v}");
    assert_eq!(
        api.call("GET", "/api/v1/status/tsdb", TA, None).await.0,
        403
    );
    // Auto-healing spans every tenant: refused to a scoped operator, served
    // to the admin.
    for path in ["/api/v1/autoheal/rules", "/api/v1/autoheal/runs"] {
        assert_eq!(api.call("GET", path, TA, None).await.0, 403, "{path}");
        assert_eq!(api.call("GET", path, ADMIN, None).await.0, 200, "{path}");
    }

    // Alerts from the rule (tm > 0 fires for both tenants).
    admin_sees_both(&api, "/api/v1/alerts").await;
    for (tok, mine) in [(TA, "a"), (TB, "b")] {
        let v = api.json("/api/v1/alerts", tok).await;
        assert_eq!(seen(&v["data"]), [mine], "{v}");
        let v = api.json("/api/v1/rules", tok).await;
        assert_eq!(seen(&v["data"]), [mine], "{v}");
        let rules: Vec<&str> = v["data"]["groups"][0]["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["name"].as_str())
            .collect();
        // The recording rule names tenant a in its labels.
        assert_eq!(rules.contains(&"tenant:tm:sum"), mine == "a", "{v}");
    }

    // Alertmanager API: posted alerts must carry the token's tenant.
    let alert = |tenant: Option<&str>| {
        let mut l = serde_json::json!({"alertname": "Posted", "severity": "warning"});
        if let Some(t) = tenant {
            l["tenant"] = t.into();
        }
        serde_json::json!([{"labels": l}])
    };
    let (code, text) = api.post_json("/api/v2/alerts", TA, &alert(Some("b"))).await;
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("labels.tenant"), "{text}");
    assert_eq!(
        api.post_json("/api/v2/alerts", TA, &alert(None)).await.0,
        400
    );
    assert_eq!(
        api.post_json("/api/v2/alerts", TA, &alert(Some("a")))
            .await
            .0,
        200
    );
    assert_eq!(
        api.post_json("/api/v2/alerts", TB, &alert(Some("b")))
            .await
            .0,
        200
    );
    for (tok, mine) in [(TA, "a"), (TB, "b")] {
        let v = api.json("/api/v2/alerts", tok).await;
        assert_eq!(seen(&v), [mine], "{v}");
        assert!(v.as_array().unwrap().len() >= 2, "{v}");
        let v = api.json("/api/v2/alerts/groups", tok).await;
        assert_eq!(seen(&v), [mine], "{v}");
    }
    assert_eq!(seen(&api.json("/api/v2/alerts", ADMIN).await), ["a", "b"]);

    // Silences: added tenant matcher, refused foreign ones, invisible and
    // unchangeable across tenants.
    let ends = klaxon::notify::dispatch::rfc3339(now + 3_600_000);
    let silence = |matchers: Value| serde_json::json!({"matchers": matchers, "startsAt": klaxon::notify::dispatch::rfc3339(now), "endsAt": ends, "createdBy": "t", "comment": "c"});
    let m = |n: &str, v: &str| serde_json::json!({"name": n, "value": v, "isRegex": false, "isEqual": true});
    let post = |tok: &'static str, matchers: Value| {
        let body = silence(matchers);
        let api = &api;
        async move { api.post_json("/api/v2/silences", tok, &body).await }
    };
    let id_of = |text: &str| -> String {
        serde_json::from_str::<Value>(text).unwrap()["silenceID"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (code, text) = post(
        TA,
        serde_json::json!([m("alertname", "Posted"), m("tenant", "b")]),
    )
    .await;
    assert_eq!(code, 400, "{text}");
    assert!(text.contains("matchers"), "{text}");
    let regex =
        serde_json::json!({"name": "tenant", "value": "a|b", "isRegex": true, "isEqual": true});
    let (code, text) = post(TA, serde_json::json!([m("alertname", "Posted"), regex])).await;
    assert_eq!(code, 400, "{text}");
    let (code, text) = post(TA, serde_json::json!([m("alertname", "Posted")])).await;
    assert_eq!(code, 200, "{text}");
    let id_a = id_of(&text);
    let (code, text) = post(
        TB,
        serde_json::json!([m("alertname", "Posted"), m("tenant", "b")]),
    )
    .await;
    assert_eq!(code, 200, "{text}");
    let id_b = id_of(&text);
    // The single-tenant token's silence got its tenant matcher.
    let sa = api.json(&format!("/api/v2/silence/{id_a}"), TA).await;
    assert!(
        sa["matchers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["name"] == "tenant"
                && x["value"] == "a"
                && x["isEqual"] == true
                && x["isRegex"] == false),
        "{sa}"
    );
    for (tok, mine, other) in [(TA, &id_a, &id_b), (TB, &id_b, &id_a)] {
        let list = api.json("/api/v2/silences", tok).await;
        let ids: Vec<&str> = list
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s["id"].as_str())
            .collect();
        assert_eq!(ids, [mine.as_str()], "{list}");
        assert_eq!(
            api.call("GET", &format!("/api/v2/silence/{other}"), tok, None)
                .await
                .0,
            404
        );
        assert_eq!(
            api.call("DELETE", &format!("/api/v2/silence/{other}"), tok, None)
                .await
                .0,
            404
        );
        // Updating the other tenant's silence by id is refused too.
        let mut upd = silence(serde_json::json!([m("alertname", "Posted")]));
        upd["id"] = other.as_str().into();
        assert_eq!(api.post_json("/api/v2/silences", tok, &upd).await.0, 404);
    }
    let all = api.json("/api/v2/silences", ADMIN).await;
    assert_eq!(all.as_array().unwrap().len(), 2, "{all}");
    // Still active: the refused expiry changed nothing.
    for id in [&id_a, &id_b] {
        let s = api.json(&format!("/api/v2/silence/{id}"), ADMIN).await;
        assert_eq!(s["status"]["state"], "active", "{s}");
    }
    assert_eq!(
        api.call("DELETE", &format!("/api/v2/silence/{id_a}"), TA, None)
            .await
            .0,
        200
    );

    // Deliveries (grouped by tenant): each sees its own groups.
    admin_sees_both(&api, "/api/v1/deliveries").await;
    for (tok, mine) in [(TA, "a"), (TB, "b")] {
        let v = api.json("/api/v1/deliveries", tok).await;
        assert!(
            !v["data"]["deliveries"].as_array().unwrap().is_empty(),
            "{v}"
        );
        assert_eq!(seen(&v["data"]), [mine], "{v}");
        let other = api.json("/api/v1/deliveries", ADMIN).await;
        let foreign = other["data"]["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| {
                !d["groupKey"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("tenant=\"{mine}\""))
            })
            .expect("a delivery of the other tenant");
        let id = foreign["id"].as_str().unwrap();
        assert_eq!(
            api.call("GET", &format!("/api/v1/deliveries/{id}"), tok, None)
                .await
                .0,
            404
        );
        assert_eq!(
            api.call(
                "POST",
                &format!("/api/v1/deliveries/{id}/replay"),
                tok,
                None
            )
            .await
            .0,
            404
        );
    }

    // Events: the audit list and the stream replay.
    admin_sees_both(&api, "/api/v1/events/audit?kind=alert&limit=1000").await;
    for (tok, mine, name) in [(TA, "a", "ta"), (TB, "b", "tb")] {
        let v = api.json("/api/v1/events/audit?limit=1000", tok).await;
        let events = v["data"]["events"].as_array().unwrap();
        assert!(!events.is_empty(), "{v}");
        assert_eq!(seen(&v["data"]), [mine], "{v}");
        for e in events {
            if e["kind"] == "change" {
                assert_eq!(e["data"]["who"], name, "{e}");
            }
            assert!(
                e["kind"] != "command" && e["kind"] != "config_reload",
                "{e}"
            );
        }
        let text = sse_replay(&api, tok).await;
        assert!(text.contains(&format!("\"tenant\":\"{mine}\"")), "{text}");
        let other = if mine == "a" { "b" } else { "a" };
        assert!(!text.contains(&format!("\"tenant\":\"{other}\"")), "{text}");
        assert!(!text.contains(&format!("tenant=\\\"{other}\\\"")), "{text}");
    }

    // The tenant summary: an admin sees both, a tenant itself.
    let v = api.json("/api/v1/tenants/summary", ADMIN).await;
    let names: Vec<&str> = v["data"]["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["tenant"].as_str())
        .collect();
    assert_eq!(names, ["a", "b"], "{v}");
    for t in v["data"]["tenants"].as_array().unwrap() {
        assert!(t["firingAlerts"]["critical"].as_u64().unwrap() >= 1, "{t}");
        assert!(t["score"].as_f64().unwrap() <= 80.0, "{t}");
    }
    let v = api.json("/api/v1/tenants/summary", TB).await;
    let names: Vec<&str> = v["data"]["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["tenant"].as_str())
        .collect();
    assert_eq!(names, ["b"], "{v}");
    let who = api.json("/api/v1/auth/whoami", TA).await;
    assert_eq!(who["tenants"], serde_json::json!(["a"]), "{who}");

    app.stop().await;
}

/// Waits until the admin sees data of both tenants at `path`.
async fn admin_sees_both(api: &Api, path: &str) {
    until(path, || async {
        seen(&api.json(path, ADMIN).await["data"]) == ["a", "b"]
    })
    .await
}

/// The event stream from the start (`Last-Event-ID: 0`), read for a moment.
async fn sse_replay(api: &Api, token: &str) -> String {
    let mut resp = api
        .c
        .get(format!("{}/api/v1/events/stream", api.base))
        .bearer_auth(token)
        .header("Last-Event-ID", "0")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_millis(1500);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(deadline.into(), resp.chunk())
        .await
        .map(|r| r.map_err(|_| ()))
    {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

/// The UI calls only APIs this file checks for tenant isolation (or ones
/// holding no tenant data): a page calling a new API must be added here.
#[test]
fn the_ui_calls_only_checked_apis() {
    let checked = [
        "/api/v1/query",
        "/api/v1/query_range",
        "/api/v1/query_exemplars",
        "/api/v1/series",
        "/api/v1/labels",
        "/api/v1/label/",
        "/api/v1/rules",
        "/api/v1/alerts",
        "/api/v2/alerts",
        "/api/v2/silences",
        "/api/v2/silence/",
        "/api/v1/deliveries",
        "/api/v1/events/stream",
        "/api/v1/events/audit",
        "/api/v1/tenants/summary",
        "/api/v1/auth/whoami",
        "/api/v1/targets",
        "/api/v1/metadata",
        "/api/v1/status/tsdb",
        "/api/v1/autoheal",
        // No tenant data: build and runtime facts, flags, the config
        // (admin only), scheduled probes of the server's own config.
        "/api/v1/status/buildinfo",
        "/api/v1/status/runtimeinfo",
        "/api/v1/status/flags",
        "/api/v1/status/config",
        "/api/v1/probes",
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ui");
    let mut files = vec![root.join("app.js")];
    for d in ["pages", "lib"] {
        for e in std::fs::read_dir(root.join(d)).unwrap() {
            files.push(e.unwrap().path());
        }
    }
    let mut calls = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, _) in text.match_indices("/api/v") {
            let rest = &text[i..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || "/_".contains(c)))
                .unwrap_or(rest.len());
            let path = &rest[..end];
            if path == "/api/v1/x" || path.len() <= "/api/v1/".len() {
                continue; // an example in a comment, or a prefix
            }
            calls += 1;
            assert!(
                checked.iter().any(|c| path == *c
                    || (c.ends_with('/') && path.starts_with(c))
                    || path.starts_with(&format!("{c}/"))),
                "{}: the UI calls {path}, not checked for tenant isolation",
                f.display()
            );
        }
    }
    assert!(calls > 10, "found only {calls} API calls in the UI");
}

// ---- the property test: generated PromQL cannot escape the injection ----

const STEP: i64 = 15_000;
const END: i64 = 30 * 60_000;

fn fill(head: &Head, pairs: &[(&str, &str)], seed: u64) {
    let l = Labels::from_pairs(pairs.iter().copied());
    let (r, _) = head.get_or_create(&l);
    let mut t = 0;
    let mut i = seed;
    while t <= END {
        // Counters that sometimes reset, and gaps.
        if i % 11 != 3 {
            head.append(r, t, ((i * 7 + seed) % 50) as f64)
                .expect("in-order append");
        }
        t += STEP;
        i += 1;
    }
}

const A_SERIES: &[&[(&str, &str)]] = &[
    &[("__name__", "tm"), ("tenant", "a"), ("i", "1")],
    &[("__name__", "tm"), ("tenant", "a"), ("i", "2")],
    &[("__name__", "other"), ("tenant", "a"), ("job", "x")],
];
const FOREIGN: &[&[(&str, &str)]] = &[
    &[("__name__", "tm"), ("tenant", "b"), ("i", "1")],
    &[("__name__", "tm"), ("tenant", "b"), ("i", "3")],
    &[("__name__", "secret_b"), ("tenant", "b"), ("bonly", "x")],
    &[("__name__", "tm"), ("tenant", "a|b"), ("i", "4")],
    &[("__name__", "tm"), ("tenant", "A"), ("i", "5")],
    &[("__name__", "other"), ("job", "x")],
];

fn vector(r: &mut Rng, depth: u32) -> String {
    const SELECTORS: &[&str] = &[
        "tm",
        "other",
        "secret_b",
        "{__name__=~\".+\"}",
        "{__name__=~\"tm|secret_b\"}",
        "tm{tenant=\"b\"}",
        "{tenant=~\"a|b\"}",
        "{tenant!=\"a\", i=~\".+\"}",
        "tm{tenant=~\".*\"}",
        "{bonly=\"x\"}",
        "{tenant=~\"a\\\\|b\"}",
        "tm{tenant=\"a\"} offset 1m",
        "nothing_here",
    ];
    if depth == 0 || r.chance(25) {
        return r.pick(SELECTORS).to_string();
    }
    let d = depth - 1;
    match r.below(14) {
        0 => format!("sum by (tenant) ({})", vector(r, d)),
        1 => format!("count({})", vector(r, d)),
        2 => format!("absent({})", vector(r, d)),
        3 => format!("absent_over_time({})", matrix(r, d)),
        4 => format!(
            "label_replace({}, \"tenant\", \"b\", \"tenant\", \".*\")",
            vector(r, d)
        ),
        5 => format!(
            "label_join({}, \"tenant\", \"\", \"bonly\", \"i\")",
            vector(r, d)
        ),
        6 => format!("rate({})", matrix(r, d)),
        7 => format!("max_over_time({})", matrix(r, d)),
        8 => format!("({}) or ({})", vector(r, d), vector(r, d)),
        9 => format!("({}) unless on(i) ({})", vector(r, d), vector(r, d)),
        10 => format!(
            "sum({}) + on() group_left count({})",
            vector(r, d),
            vector(r, d)
        ),
        11 => format!("topk(2, {})", vector(r, d)),
        12 => format!("vector(scalar(sum({})))", vector(r, d)),
        _ => format!("count_values(\"v\", {})", vector(r, d)),
    }
}

fn matrix(r: &mut Rng, depth: u32) -> String {
    if depth == 0 || r.chance(50) {
        let sel = vector(r, 0);
        // A selector with `offset` takes the range before it.
        return match sel.split_once(" offset ") {
            Some((s, o)) => format!("{s}[5m] offset {o}"),
            None => format!("{sel}[5m]"),
        };
    }
    format!("({})[10m:1m]", vector(r, depth - 1))
}

#[test]
fn generated_queries_never_return_another_tenants_data() {
    let only_a = Head::default();
    let both = Head::default();
    for (i, s) in A_SERIES.iter().enumerate() {
        fill(&only_a, s, i as u64);
        fill(&both, s, i as u64);
    }
    for (i, s) in FOREIGN.iter().enumerate() {
        fill(&both, s, 100 + i as u64);
    }
    let both: Arc<dyn klaxon::tsdb::Queryable> = Arc::new(both);
    let scope = Scope::new("tenant", &["a".to_string()]).unwrap();
    let scoped = ScopedQueryable::new(both.clone(), &scope);
    let m = scope.matcher();
    let engine = Engine::default();
    let mut r = Rng(0x7e_4a_47);
    let mut evaluated = 0;
    let mut non_empty = 0;
    let mut leaky = 0;
    for n in 0..300 {
        let text = vector(&mut r, 4);
        let mut e = parse(&text).unwrap_or_else(|err| panic!("#{n} {text}: {err}"));
        scope.inject(&mut e);
        assert_eq!(
            unscoped_selectors(&e, &m),
            Vec::<String>::new(),
            "#{n} {text}"
        );
        // The injected tree prints to a query that still has the matcher.
        let printed = e.to_string();
        let again = parse(&printed).unwrap_or_else(|err| panic!("{printed}: {err}"));
        assert_eq!(
            unscoped_selectors(&again, &m),
            Vec::<String>::new(),
            "{printed}"
        );
        let run = |q: &dyn klaxon::tsdb::Queryable| {
            format!(
                "{:?}",
                engine
                    .range(q, Query::Parsed(&e, None), 0, END, 60_000)
                    .map(|r| r.value)
            )
        };
        // Injection alone, storage scoping alone, both: the same answer as
        // over a head holding tenant a's series only.
        let expected = run(&only_a);
        assert_eq!(
            run(&*both),
            expected,
            "#{n} {text} injected over both tenants"
        );
        assert_eq!(run(&scoped), expected, "#{n} {text} over scoped storage");
        let plain = parse(&text).unwrap();
        let plain_scoped = format!(
            "{:?}",
            engine
                .range(&scoped, Query::Parsed(&plain, None), 0, END, 60_000)
                .map(|r| r.value)
        );
        let plain_a = format!(
            "{:?}",
            engine
                .range(&only_a, Query::Parsed(&plain, None), 0, END, 60_000)
                .map(|r| r.value)
        );
        assert_eq!(
            plain_scoped, plain_a,
            "#{n} {text} without injection over scoped storage"
        );
        // Without any scoping, the other tenant's series do change answers
        // (else the comparisons above would prove nothing).
        let plain_both = format!(
            "{:?}",
            engine
                .range(&*both, Query::Parsed(&plain, None), 0, END, 60_000)
                .map(|r| r.value)
        );
        if plain_both != plain_a {
            leaky += 1;
        }
        if !expected.starts_with("Err") {
            evaluated += 1;
            if expected.contains("labels") {
                non_empty += 1;
            }
        }
    }
    eprintln!("tenant injection: {evaluated} of 300 evaluated, {non_empty} with series, {leaky} would leak unscoped");
    // The generator must produce mostly valid, mostly non-empty queries.
    assert!(evaluated > 200, "only {evaluated} of 300 evaluated");
    assert!(non_empty > 100, "only {non_empty} had series");
    assert!(
        leaky > 100,
        "only {leaky} of 300 would leak without scoping"
    );
}
