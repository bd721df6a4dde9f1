//! The query endpoints on loopback: Prometheus' exact JSON and error
//! answers, then real clients (promtool, the Python
//! `prometheus-api-client`, and the requests Grafana's datasource makes)
//! checked against what the engine computes for the same expressions.

use crate::common;

use klaxon::api::query_json::format_value;
use klaxon::model::Labels;
use klaxon::promql::{Engine, Value};
use serde_json::Value as J;
use std::process::Command;

const STEP_MS: i64 = 15_000;
const POINTS: i64 = 40;

struct Fixture {
    app: klaxon::app::Running,
    base: String,
    /// The last sample's timestamp (ms), a whole second.
    t: i64,
}

/// A klaxon with no targets whose head holds 10 minutes of known samples
/// ending at `t`.
async fn fixture() -> Fixture {
    let mut cfg = klaxon::settings::load_str("global:\n  scrape_interval: 15s\n", "q.yml").unwrap();
    // Its own store: tests in one binary run in parallel.
    let _store_dir = tempfile::tempdir().unwrap();
    cfg.storage.path = _store_dir.path().to_path_buf();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let t = (klaxon::model::now_millis() / 60_000) * 60_000 - 60_000;
    let start = t - POINTS * STEP_MS;
    let head = &app.state.head;
    let add = |pairs: &[(&str, &str)], f: &dyn Fn(i64) -> f64| {
        let (r, _) = head
            .try_get_or_create(&Labels::from_pairs(pairs.iter().copied()))
            .unwrap();
        for i in 0..=POINTS {
            head.append(r, start + i * STEP_MS, f(i)).unwrap();
        }
    };
    add(
        &[
            ("__name__", "qa_requests_total"),
            ("code", "200"),
            ("path", "/a"),
        ],
        &|i| (i * 10) as f64,
    );
    add(
        &[
            ("__name__", "qa_requests_total"),
            ("code", "500"),
            ("path", "/a"),
        ],
        &|i| i as f64 * 0.5,
    );
    add(&[("__name__", "qa_temp"), ("room", "x")], &|i| {
        20.5 + (i % 4) as f64 * 0.25
    });
    for (kind, v) in [
        ("nan", f64::NAN),
        ("inf", f64::INFINITY),
        ("ninf", f64::NEG_INFINITY),
        ("tiny", 1e-7),
        ("big", 1e21),
        ("esc", 3.0),
    ] {
        let mut pairs = vec![("__name__", "qa_special"), ("kind", kind)];
        if kind == "esc" {
            pairs.push(("note", "say \"hi\"\n<b>"));
        }
        add(&pairs, &move |_| v);
    }
    let base = format!("http://{}", app.addr);
    Fixture { app, base, t }
}

fn secs(ms: i64) -> String {
    let mut s = String::new();
    klaxon::api::query_json::write_ts(&mut s, ms);
    s
}

async fn get_text(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn get(url: &str) -> (u16, J) {
    let (c, t) = get_text(url).await;
    (
        c,
        serde_json::from_str(&t).unwrap_or_else(|e| panic!("{e}: {t}")),
    )
}

async fn post(url: &str, form: &[(&str, &str)]) -> (u16, String) {
    let body: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(form)
        .finish();
    let r = reqwest::Client::new()
        .post(url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn results_in_prometheus_json() {
    let f = fixture().await;
    let (b, t) = (&f.base, f.t);
    let ts = secs(t);

    // The whole body, byte for byte.
    let (code, body) = get_text(&format!("{b}/api/v1/query?query=qa_temp&time={ts}")).await;
    assert_eq!(code, 200);
    assert_eq!(
        body,
        format!(
            r#"{{"status":"success","data":{{"resultType":"vector","result":[{{"metric":{{"__name__":"qa_temp","room":"x"}},"value":[{ts},"20.5"]}}]}}}}"#
        )
    );
    // A fractional evaluation time keeps three digits, as Prometheus writes.
    let (_, body) = get_text(&format!("{b}/api/v1/query?query=qa_temp&time={ts}.5")).await;
    assert!(
        body.contains(&format!("\"value\":[{ts}.500,\"20.5\"]")),
        "{body}"
    );

    let (_, body) = get_text(&format!("{b}/api/v1/query?query=1%2B1&time={ts}")).await;
    assert_eq!(
        body,
        format!(r#"{{"status":"success","data":{{"resultType":"scalar","result":[{ts},"2"]}}}}"#)
    );
    let (_, body) = get_text(&format!("{b}/api/v1/query?query=%22hi%22&time={ts}")).await;
    assert_eq!(
        body,
        format!(r#"{{"status":"success","data":{{"resultType":"string","result":[{ts},"hi"]}}}}"#)
    );

    // Special values in Go's float syntax; label values escaped.
    let (_, v) = get(&format!("{b}/api/v1/query?query=qa_special&time={ts}")).await;
    let res = v["data"]["result"].as_array().unwrap();
    assert_eq!(res.len(), 6);
    for (kind, want) in [
        ("nan", "NaN"),
        ("inf", "+Inf"),
        ("ninf", "-Inf"),
        ("tiny", "1e-07"),
        ("big", "1e+21"),
        ("esc", "3"),
    ] {
        let s = res.iter().find(|s| s["metric"]["kind"] == kind).unwrap();
        assert_eq!(s["value"][1], want, "{kind}");
        assert_eq!(s["value"][0].as_f64().unwrap() * 1000.0, t as f64);
    }
    let esc = res.iter().find(|s| s["metric"]["kind"] == "esc").unwrap();
    assert_eq!(esc["metric"]["note"], "say \"hi\"\n<b>");

    // A range selector in an instant query is a matrix: the window
    // (t-1m, t] holds four samples.
    let (_, v) = get(&format!(
        "{b}/api/v1/query?query={}&time={ts}",
        enc("qa_temp[1m]")
    ))
    .await;
    assert_eq!(v["data"]["resultType"], "matrix");
    let pts = v["data"]["result"][0]["values"].as_array().unwrap();
    assert_eq!(pts.len(), 4, "{v}");
    assert_eq!(pts[3][1], "20.5");

    // query_range equals the engine, with the step as float seconds, as a
    // duration, and over POST.
    let q = "sum by (path) (rate(qa_requests_total[1m]))";
    let (start, end) = (t - 300_000, t);
    let eng = Engine::default()
        .range(&f.app.state.head, q, start, end, 60_000)
        .unwrap();
    let Value::Matrix(m) = &eng.value else {
        panic!("{eng:?}")
    };
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].points.len(), 6);
    let url = format!(
        "{b}/api/v1/query_range?query={}&start={}&end={}&step=60",
        enc(q),
        secs(start),
        secs(end)
    );
    let (code, body60) = get_text(&url).await;
    assert_eq!(code, 200, "{body60}");
    let v: J = serde_json::from_str(&body60).unwrap();
    assert_eq!(v["data"]["resultType"], "matrix");
    let r0 = &v["data"]["result"][0];
    assert_eq!(r0["metric"], serde_json::json!({"path": "/a"}));
    let got: Vec<(f64, String)> = r0["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p[0].as_f64().unwrap(), p[1].as_str().unwrap().to_string()))
        .collect();
    let want: Vec<(f64, String)> = m[0]
        .points
        .iter()
        .map(|(t, v)| (*t as f64 / 1000.0, format_value(*v)))
        .collect();
    assert_eq!(got, want);
    let (_, body_1m) = get_text(&url.replace("step=60", "step=1m")).await;
    assert_eq!(body_1m, body60);
    let (code, body_post) = post(
        &format!("{b}/api/v1/query_range"),
        &[
            ("query", q),
            ("start", &secs(start)),
            ("end", &secs(end)),
            ("step", "60"),
        ],
    )
    .await;
    assert_eq!(code, 200);
    assert_eq!(body_post, body60);

    // Annotations travel next to the data.
    let q = "rate(qa_temp[1m])";
    let eng = Engine::default().instant(&f.app.state.head, q, t).unwrap();
    assert!(!eng.infos.is_empty(), "{eng:?}");
    let (_, v) = get(&format!("{b}/api/v1/query?query={}&time={ts}", enc(q))).await;
    assert_eq!(v["infos"], serde_json::json!(eng.infos));
    assert!(v.get("warnings").is_none(), "{v}");

    // limit (3.x) cuts the series and says so.
    let (_, v) = get(&format!(
        "{b}/api/v1/query?query=qa_requests_total&time={ts}&limit=1"
    ))
    .await;
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1);
    assert_eq!(
        v["warnings"],
        serde_json::json!(["results truncated due to limit"])
    );

    let (code, v) = get(&format!(
        "{b}/api/v1/query_exemplars?query=qa_temp&start=0&end={ts}"
    ))
    .await;
    assert_eq!(code, 200);
    assert_eq!(v, serde_json::json!({"status": "success", "data": []}));
    f.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_like_prometheus() {
    let f = fixture().await;
    let (b, t) = (&f.base, f.t);
    let ts = secs(t);
    let range = |q: &str, start: &str, end: &str, step: &str| {
        format!(
            "{b}/api/v1/query_range?query={}&start={start}&end={end}&step={step}",
            enc(q)
        )
    };
    let s0 = secs(t - 60_000);
    let cases: Vec<(String, u16, &str, String)> = vec![
        (
            format!("{b}/api/v1/query"),
            400,
            "bad_data",
            "invalid parameter \"query\": 1:1: parse error: no expression found in input".into(),
        ),
        (
            format!("{b}/api/v1/query?query=up&time=x"),
            400,
            "bad_data",
            "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"x\" to a valid timestamp".into(),
        ),
        (
            format!("{b}/api/v1/query?query=up&timeout=soon"),
            400,
            "bad_data",
            "invalid parameter \"timeout\": cannot parse \"soon\" to a valid duration".into(),
        ),
        (
            range("up", "x", &ts, "15"),
            400,
            "bad_data",
            "invalid parameter \"start\": cannot parse \"x\" to a valid timestamp".into(),
        ),
        (
            format!("{b}/api/v1/query_range?query=up&start={ts}&step=15"),
            400,
            "bad_data",
            "invalid parameter \"end\": cannot parse \"\" to a valid timestamp".into(),
        ),
        (
            range("up", &ts, &s0, "15"),
            400,
            "bad_data",
            "invalid parameter \"end\": end timestamp must not be before start time".into(),
        ),
        (
            range("up", &s0, &ts, "0"),
            400,
            "bad_data",
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer".into(),
        ),
        (
            range("up", &s0, &ts, "abc"),
            400,
            "bad_data",
            "invalid parameter \"step\": cannot parse \"abc\" to a valid duration".into(),
        ),
        (
            range("up", "0", "11001", "1"),
            400,
            "bad_data",
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)".into(),
        ),
        (
            range("qa_temp[1m]", &s0, &ts, "15"),
            400,
            "bad_data",
            "invalid parameter \"query\": invalid expression type \"range vector\" for range query, must be Scalar or instant Vector".into(),
        ),
    ];
    for (url, code, typ, msg) in cases {
        let (c, v) = get(&url).await;
        assert_eq!(
            (c, v["errorType"].as_str(), v["error"].as_str()),
            (code, Some(typ), Some(msg.as_str())),
            "{url}"
        );
        assert_eq!(v["status"], "error");
    }
    // 11,000 points exactly is still allowed.
    let (c, v) = get(&range("vector(1)", "0", "11000", "1")).await;
    assert_eq!(c, 200, "{v}");

    let (c, v) = get(&format!(
        "{b}/api/v1/query?query={}",
        enc("sum(rate(x[5m])")
    ))
    .await;
    assert_eq!(c, 400);
    let msg = v["error"].as_str().unwrap();
    let parse_msg = klaxon::promql::parse("sum(rate(x[5m])")
        .unwrap_err()
        .to_string();
    assert_eq!(msg, format!("invalid parameter \"query\": {parse_msg}"));
    assert!(
        parse_msg.starts_with("1:") && parse_msg.contains("parse error"),
        "{parse_msg}"
    );

    // Execution errors are 422 with the engine's message.
    let q = "qa_requests_total + on(path) qa_requests_total";
    let err = Engine::default()
        .instant(&f.app.state.head, q, t)
        .unwrap_err();
    let (c, v) = get(&format!("{b}/api/v1/query?query={}&time={ts}", enc(q))).await;
    assert_eq!(c, 422);
    assert_eq!(v["errorType"], "execution");
    assert_eq!(v["error"], err.message.as_str());

    // The request's timeout applies: 503 "timeout".
    let (c, v) = get(&format!(
        "{}&timeout=0",
        range(
            "count_over_time(qa_temp[10m])",
            &secs(t - 10_000_000),
            &ts,
            "1"
        )
    ))
    .await;
    assert_eq!(c, 503, "{v}");
    assert_eq!(v["errorType"], "timeout");
    assert_eq!(v["error"], "query timed out in query execution");
    // ...and a generous one does not get in the way.
    let (c, _) = get(&format!(
        "{}&timeout=2m",
        range(
            "count_over_time(qa_temp[10m])",
            &secs(t - 600_000),
            &ts,
            "15"
        )
    ))
    .await;
    assert_eq!(c, 200);
    f.app.stop().await;
}

fn tool_available(name: &str, present: bool, how: &str) -> bool {
    if present {
        return true;
    }
    assert!(!common::is_ci(), "{name} missing under CI: {how}");
    eprintln!("note: {name} not installed; its checks did not run");
    false
}

/// A label set the way Prometheus' Go client prints it
/// (`name{a="b", c="d"}`), which is promtool's output format.
fn go_metric(l: &Labels) -> String {
    let name = l.metric_name();
    let rest: Vec<String> = l
        .iter()
        .filter(|x| x.name != "__name__")
        .map(|x| format!("{}={:?}", x.name, x.value))
        .collect();
    format!("{name}{{{}}}", rest.join(", "))
}

fn go_time(ms: i64) -> String {
    format_value(ms as f64 / 1000.0)
}

fn run_promtool(args: &[&str]) -> String {
    let out = Command::new("/usr/bin/promtool")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_matches_engine() {
    if !tool_available(
        "promtool",
        std::path::Path::new("/usr/bin/promtool").exists(),
        ".ci/run must install it (../shared/tools/install-peers.sh)",
    ) {
        return;
    }
    let f = fixture().await;
    let head = f.app.state.head.clone();
    let (b, t) = (f.base.clone(), f.t);
    let eng = Engine::default();
    for q in [
        "qa_requests_total",
        "sum by (path) (rate(qa_requests_total[1m]))",
        "qa_temp * 2 + on() group_left() vector(0.125)",
        "avg_over_time(qa_temp[1m])",
    ] {
        let Value::Vector(v) = eng.instant(&head, q, t).unwrap().value else {
            panic!("{q}")
        };
        assert!(!v.is_empty(), "{q}");
        let mut want: Vec<String> = v
            .iter()
            .map(|s| {
                format!(
                    "{} => {} @[{}]",
                    go_metric(&s.labels),
                    format_value(s.value),
                    go_time(s.t)
                )
            })
            .collect();
        want.sort();
        let text = tokio::task::spawn_blocking({
            let (b, ts) = (b.clone(), secs(t));
            let q = q.to_string();
            move || run_promtool(&["query", "instant", &format!("--time={ts}"), &b, &q])
        })
        .await
        .unwrap();
        let mut got: Vec<String> = text.lines().map(str::to_string).collect();
        got.sort();
        assert_eq!(got, want, "{q}");
    }

    let q = "sum by (code) (rate(qa_requests_total[1m]))";
    let (start, end) = (t - 300_000, t);
    let Value::Matrix(m) = eng.range(&head, q, start, end, 30_000).unwrap().value else {
        panic!()
    };
    let mut want = String::new();
    for s in &m {
        want.push_str(&format!("{} =>\n", go_metric(&s.labels)));
        for (pt, pv) in &s.points {
            want.push_str(&format!("{} @[{}]\n", format_value(*pv), go_time(*pt)));
        }
    }
    let text = tokio::task::spawn_blocking({
        let (b, s0, s1) = (b.clone(), secs(start), secs(end));
        move || {
            run_promtool(&[
                "query",
                "range",
                &format!("--start={s0}"),
                &format!("--end={s1}"),
                "--step=30s",
                &b,
                q,
            ])
        }
    })
    .await
    .unwrap();
    assert_eq!(text.trim_end(), want.trim_end());
    f.app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_prometheus_api_client() {
    let importable = Command::new("python3")
        .args(["-c", "import prometheus_api_client"])
        .status()
        .is_ok_and(|s| s.success());
    if !tool_available(
        "python module prometheus_api_client",
        importable,
        ".ci/run must run `python3 -m pip install prometheus-api-client==0.7.2`",
    ) {
        return;
    }
    let f = fixture().await;
    let head = f.app.state.head.clone();
    let t = f.t;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/clients/prom_api_client.py"
    );
    let out = tokio::task::spawn_blocking({
        let (b, ts) = (f.base.clone(), secs(t));
        move || {
            Command::new("python3")
                .args([script, &b, &ts])
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: J = serde_json::from_slice(&out.stdout).unwrap();
    let eng = Engine::default();
    let q = "sum by (code) (rate(qa_requests_total[1m]))";

    let Value::Vector(iv) = eng.instant(&head, q, t).unwrap().value else {
        panic!()
    };
    let mut want: Vec<J> = iv
        .iter()
        .map(|s| {
            serde_json::json!([
                {"code": s.labels.get("code").unwrap()},
                s.t as f64 / 1000.0,
                format_value(s.value)
            ])
        })
        .collect();
    want.sort_by_key(|x| x[0]["code"].as_str().unwrap().to_string());
    assert_eq!(v["instant"], J::Array(want));

    let start = v["range_start"].as_i64().unwrap() * 1000;
    let end = v["range_end"].as_i64().unwrap() * 1000;
    let Value::Matrix(m) = eng.range(&head, q, start, end, 60_000).unwrap().value else {
        panic!()
    };
    let want: Vec<J> = m
        .iter()
        .map(|s| {
            let pts: Vec<J> = s
                .points
                .iter()
                .map(|(pt, pv)| serde_json::json!([*pt as f64 / 1000.0, format_value(*pv)]))
                .collect();
            serde_json::json!([{"code": s.labels.get("code").unwrap()}, pts])
        })
        .collect();
    assert_eq!(v["range"], J::Array(want));
    assert_eq!(v["codes"], serde_json::json!(["200", "500"]));
    let metrics = v["metrics"].as_array().unwrap();
    for n in ["qa_requests_total", "qa_special", "qa_temp"] {
        assert!(metrics.contains(&J::from(n)), "{metrics:?}");
    }
    f.app.stop().await;
}

/// Exactly the requests Grafana's Prometheus datasource makes for its health
/// check and its label browser, in both the GET and POST forms it can use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grafana_datasource_requests() {
    let f = fixture().await;
    let (b, t) = (&f.base, f.t);
    let ts = secs(t);
    let (s0, s1) = (secs(t - 3_600_000), ts.clone());

    let (c, v) = get(&format!("{b}/api/v1/query?query=1%2B1&time={ts}")).await;
    assert_eq!(c, 200);
    assert_eq!(v["data"]["resultType"], "scalar");
    assert_eq!(v["data"]["result"][1], "2");
    let (c, body) = post(
        &format!("{b}/api/v1/query"),
        &[("query", "1+1"), ("time", &ts)],
    )
    .await;
    assert_eq!(c, 200);
    let v: J = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["result"][0].as_f64(), Some(t as f64 / 1000.0));
    assert_eq!(v["data"]["result"][1], "2");
    let (c, v) = get(&format!("{b}/api/v1/status/buildinfo")).await;
    assert_eq!(c, 200);
    assert!(v["data"]["version"].is_string(), "{v}");

    let (c, v) = get(&format!("{b}/api/v1/labels?start={s0}&end={s1}")).await;
    assert_eq!(c, 200);
    let names = v["data"].as_array().unwrap().clone();
    for n in ["__name__", "code", "kind", "path", "room"] {
        assert!(names.contains(&J::from(n)), "{names:?}");
    }
    let (c, body) = post(
        &format!("{b}/api/v1/labels"),
        &[("start", &s0), ("end", &s1)],
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(
        serde_json::from_str::<J>(&body).unwrap()["data"],
        J::Array(names)
    );

    let (c, v) = get(&format!(
        "{b}/api/v1/label/__name__/values?start={s0}&end={s1}"
    ))
    .await;
    assert_eq!(c, 200);
    assert_eq!(
        v["data"],
        serde_json::json!(["qa_requests_total", "qa_special", "qa_temp"])
    );
    let (_, v) = get(&format!("{b}/api/v1/label/code/values?start={s0}&end={s1}")).await;
    assert_eq!(v["data"], serde_json::json!(["200", "500"]));

    let m = "{__name__=\"qa_requests_total\"}";
    let (c, v) = get(&format!(
        "{b}/api/v1/series?match%5B%5D={}&start={s0}&end={s1}",
        enc(m)
    ))
    .await;
    assert_eq!(c, 200);
    let series = v["data"].as_array().unwrap().clone();
    assert_eq!(series.len(), 2, "{v}");
    assert_eq!(series[0]["code"], "200");
    assert_eq!(series[1]["path"], "/a");
    let (c, body) = post(
        &format!("{b}/api/v1/series"),
        &[("match[]", m), ("start", &s0), ("end", &s1)],
    )
    .await;
    assert_eq!(c, 200);
    assert_eq!(
        serde_json::from_str::<J>(&body).unwrap()["data"],
        J::Array(series)
    );
    f.app.stop().await;
}

/// A klaxon with `settings` and a query log whose head holds `series`
/// series of `points` samples 15 s apart ending at the returned time (ms).
async fn limits_fixture(
    settings: klaxon::promql::QuerySettings,
    log: &std::path::Path,
    series: usize,
    points: i64,
) -> (klaxon::app::Running, String, i64, tempfile::TempDir) {
    let yaml = format!("global:\n  query_log_file: {}\n", log.display());
    let mut cfg = klaxon::settings::load_str(&yaml, "q.yml").unwrap();
    let store_dir = tempfile::tempdir().unwrap();
    cfg.storage.path = store_dir.path().to_path_buf();
    cfg.query = settings;
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let t = (klaxon::model::now_millis() / 60_000) * 60_000 - 60_000;
    let head = &app.state.head;
    for i in 0..series {
        let i = i.to_string();
        let (r, _) = head
            .try_get_or_create(&Labels::from_pairs([
                ("__name__", "heavy"),
                ("i", i.as_str()),
            ]))
            .unwrap();
        for k in 0..points {
            head.append(r, t - (points - 1 - k) * STEP_MS, k as f64)
                .unwrap();
        }
    }
    let base = format!("http://{}", app.addr);
    (app, base, t, store_dir)
}

async fn metric(base: &str, name: &str) -> f64 {
    let (_, text) = get_text(&format!("{base}/metrics")).await;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(f64::NAN)
}

/// `stats`, `--query.max-concurrency` (queued, not refused), cancellation
/// when the client disconnects, and the query log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn query_stats_concurrency_cancel_and_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("queries.log");
    let settings = klaxon::promql::QuerySettings {
        max_concurrency: 1,
        ..Default::default()
    };
    let (app, base, t, _d) = limits_fixture(settings, &log, 2000, 240).await;
    assert_eq!(
        metric(&base, "klaxon_engine_queries_concurrent_max").await,
        1.0
    );

    // stats=all: the samples each step read, their total and peak.
    let range = |q: &str, extra: &str| {
        format!(
            "{base}/api/v1/query_range?query={}&start={}&end={}&step=60{extra}",
            enc(q),
            secs(t - 600_000),
            secs(t)
        )
    };
    let (code, v) = get(&range("heavy{i=\"7\"}", "&stats=all")).await;
    assert_eq!(code, 200, "{v}");
    let st = &v["data"]["stats"];
    for k in [
        "evalTotalTime",
        "resultSortTime",
        "queryPreparationTime",
        "innerEvalTime",
        "execQueueTime",
        "execTotalTime",
    ] {
        assert!(st["timings"][k].is_number(), "{k}: {st}");
    }
    let per_step = st["samples"]["totalQueryableSamplesPerStep"]
        .as_array()
        .unwrap();
    assert_eq!(per_step.len(), 11, "{st}");
    assert!(per_step.iter().all(|p| p[1] == 1), "{st}");
    assert_eq!(per_step[0][0].as_f64(), Some((t - 600_000) as f64 / 1000.0));
    assert_eq!(st["samples"]["totalQueryableSamples"], 11);
    // `stats` without `all`: no per-step list; without `stats`: no stats.
    let (_, v) = get(&range("count_over_time(heavy{i=\"7\"}[5m])", "&stats=1")).await;
    let st = &v["data"]["stats"]["samples"];
    assert!(st.get("totalQueryableSamplesPerStep").is_none(), "{st}");
    // 20 samples in each 5 m window (15 s apart, left-open), 11 steps.
    assert_eq!(st["totalQueryableSamples"], 220, "{st}");
    assert_eq!(st["peakSamples"], 20 + 10, "{st}");
    let (_, v) = get(&range("heavy{i=\"7\"}", "")).await;
    assert!(v["data"].get("stats").is_none(), "{v}");

    // Two heavy queries at once with one slot: the second waits for the
    // first (its queue time covers most of the other's evaluation).
    // A subquery: walked step by step, so it stays heavy (the plain
    // `count_over_time` runs in the series pass in a few milliseconds).
    let heavy = range("sum(count_over_time(heavy[1h:15s]))", "&stats=1");
    let (a, b) = tokio::join!(get(&heavy), get(&heavy));
    assert_eq!((a.0, b.0), (200, 200), "{} {}", a.1, b.1);
    let timing = |v: &J, k: &str| v["data"]["stats"]["timings"][k].as_f64().unwrap();
    let (first, second) = if timing(&a.1, "execQueueTime") < timing(&b.1, "execQueueTime") {
        (&a.1, &b.1)
    } else {
        (&b.1, &a.1)
    };
    assert!(
        timing(second, "execQueueTime") >= 0.9 * timing(first, "evalTotalTime"),
        "not serialized: queue {} vs eval {}",
        timing(second, "execQueueTime"),
        timing(first, "evalTotalTime")
    );

    // A client that goes away cancels its query.
    let slow = range("sum(count_over_time(heavy[1h:15s]))", "");
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_millis(200))
        .build()
        .unwrap();
    assert!(
        client.get(&slow).send().await.is_err(),
        "the query was too quick"
    );
    let end = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while metric(&base, "klaxon_engine_queries_canceled_total").await != 1.0 {
        assert!(
            std::time::Instant::now() < end,
            "the query was not canceled"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // The query log: one JSON line per query, Prometheus' fields.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<J> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(lines.len() >= 6, "{text}");
    let first = &lines[0];
    assert_eq!(first["params"]["query"], "heavy{i=\"7\"}");
    assert_eq!(first["params"]["step"], 60);
    assert_eq!(first["httpRequest"]["path"], "/api/v1/query_range");
    assert_eq!(first["httpRequest"]["method"], "GET");
    assert_eq!(first["httpRequest"]["clientIP"], "127.0.0.1");
    assert!(first["stats"]["timings"]["evalTotalTime"].is_number());
    assert!(first["ts"].as_str().unwrap().ends_with('Z'));
    app.stop().await;
}

/// `--query.max-samples` and `--query.timeout` stop a query with
/// Prometheus' errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sample_limit_and_timeout_flags() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = klaxon::promql::QuerySettings::default();
    settings.engine.max_samples = 1000;
    let (app, base, t, _d) = limits_fixture(settings, &dir.path().join("q.log"), 200, 40).await;
    let (code, v) = get(&format!(
        "{base}/api/v1/query?query={}&time={}",
        enc("count_over_time(heavy[10m])"),
        secs(t)
    ))
    .await;
    assert_eq!(code, 422, "{v}");
    assert_eq!(v["errorType"], "execution");
    assert_eq!(
        v["error"],
        "query processing would load too many samples into memory in query execution"
    );
    app.stop().await;

    let mut settings = klaxon::promql::QuerySettings::default();
    settings.engine.timeout = std::time::Duration::from_millis(1);
    let (app, base, t, _d) = limits_fixture(settings, &dir.path().join("q2.log"), 2000, 240).await;
    let (code, v) = get(&format!(
        "{base}/api/v1/query_range?query={}&start={}&end={}&step=15",
        enc("sum(count_over_time(heavy[1h]))"),
        secs(t - 3_600_000),
        secs(t)
    ))
    .await;
    assert_eq!(code, 503, "{v}");
    assert_eq!(v["errorType"], "timeout");
    assert_eq!(v["error"], "query timed out in query execution");
    app.stop().await;
}
