//! Rule groups running inside `klaxon run`: recording and alerting rules
//! evaluated on their interval over scraped data, visible in the head and on
//! `/api/v1/rules` and `/api/v1/alerts`; a bad rule file stops the start.

use axum::routing::get;
use axum::Router;
use klaxon::model::{MatchType, Matcher};
use std::time::Duration;

async fn target() -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new().route(
        "/metrics",
        get(|| async { "errors_total 3\nrequests_total 12\n" }),
    );
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    (
        addr,
        tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        }),
    )
}

async fn json(url: &str) -> serde_json::Value {
    let body = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    serde_json::from_slice(&body).unwrap()
}

const RULES: &str = r#"groups:
  - name: g
    interval: 1s
    rules:
      - record: job:error_ratio
        expr: errors_total / requests_total
      - alert: ErrorRatioHigh
        expr: job:error_ratio > 0.2
        labels:
          severity: page
        annotations:
          summary: "ratio {{ $value }} on {{ $labels.instance }}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_run_and_show_on_the_api() {
    let (addr, server) = target().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.rules"), RULES).unwrap();
    let cfg_path = dir.path().join("k.yml");
    std::fs::write(
        &cfg_path,
        format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 500ms\nrule_files: ['*.rules']\nscrape_configs:\n  - job_name: web\n    static_configs:\n      - targets: ['{addr}']\n"),
    )
    .unwrap();
    let mut cfg = klaxon::settings::load_file(&cfg_path).unwrap();
    // Its own store: tests in one binary run in parallel.
    let _store_dir = tempfile::tempdir().unwrap();
    cfg.storage.path = _store_dir.path().to_path_buf();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr);
    tokio::time::sleep(Duration::from_millis(3500)).await;

    // The recording rule's output is in the head, with the scraped labels.
    let m = [Matcher::new(MatchType::Equal, "__name__", "job:error_ratio").unwrap()];
    let rec = app.state.head.select(&m, i64::MIN, i64::MAX);
    assert_eq!(rec.len(), 1, "{rec:?}");
    assert_eq!(rec[0].labels.get("job"), Some("web"));
    assert!(
        rec[0].samples.iter().all(|(_, v)| *v == 0.25),
        "{:?}",
        rec[0].samples
    );

    let r = json(&format!("{base}/api/v1/rules")).await;
    let g = &r["data"]["groups"][0];
    assert_eq!(g["name"], "g");
    assert_eq!(g["interval"], 1.0);
    assert_eq!(g["rules"][0]["type"], "recording");
    assert_eq!(g["rules"][0]["health"], "ok", "{r:#}");
    assert_eq!(g["rules"][1]["type"], "alerting");
    assert_eq!(g["rules"][1]["state"], "firing", "{r:#}");

    let a = json(&format!("{base}/api/v1/alerts")).await;
    let alerts = a["data"]["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "{a:#}");
    assert_eq!(alerts[0]["labels"]["alertname"], "ErrorRatioHigh");
    assert_eq!(alerts[0]["labels"]["severity"], "page");
    assert_eq!(alerts[0]["state"], "firing");
    assert_eq!(alerts[0]["value"], "2.5e-01");
    assert_eq!(
        alerts[0]["annotations"]["summary"],
        format!("ratio 0.25 on {addr}")
    );
    // ALERTS series written by the rule.
    let m = [Matcher::new(MatchType::Equal, "__name__", "ALERTS").unwrap()];
    let s = app.state.head.select(&m, i64::MIN, i64::MAX);
    assert!(
        s.iter()
            .any(|x| x.labels.get("alertstate") == Some("firing")),
        "{s:?}"
    );
    app.stop().await;
    server.abort();
}

#[tokio::test]
async fn a_bad_rule_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yml"),
        "groups:\n  - name: g\n    rules:\n      - alert: X\n        expr: up ==\n",
    )
    .unwrap();
    let cfg_path = dir.path().join("k.yml");
    std::fs::write(&cfg_path, "rule_files: ['bad.yml']\n").unwrap();
    let mut cfg = klaxon::settings::load_file(&cfg_path).unwrap();
    // Its own store: tests in one binary run in parallel.
    let _store_dir = tempfile::tempdir().unwrap();
    cfg.storage.path = _store_dir.path().to_path_buf();
    match klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0")).await {
        Err(klaxon::app::StartError::Rules(errs)) => {
            let lines: Vec<String> = errs.errors().iter().map(|e| e.to_string()).collect();
            assert_eq!(lines.len(), 1, "{lines:?}");
            assert!(lines[0].contains("bad.yml"), "{lines:?}");
            assert!(lines[0].contains("could not parse expression"), "{lines:?}");
        }
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("started with a bad rule file"),
    }
}

const FILTER_RULES: &str = r#"groups:
  - name: a
    interval: 1s
    rules:
      - record: a:one:sum
        expr: vector(1)
      - alert: AOn
        expr: vector(1)
  - name: b
    interval: 1s
    rules:
      - record: b:two:sum
        expr: vector(2)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_api_filters_like_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.rules"), FILTER_RULES).unwrap();
    std::fs::write(
        dir.path().join("o.rules"),
        "groups:\n  - name: o\n    rules:\n      - record: o:x:sum\n        expr: vector(3)\n",
    )
    .unwrap();
    let cfg_path = dir.path().join("k.yml");
    std::fs::write(
        &cfg_path,
        format!(
            "rule_files: ['*.rules']\nstorage:\n  path: {}\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let cfg = klaxon::settings::load_file(&cfg_path).unwrap();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}/api/v1/rules", app.addr);
    // (group name, [rule names]) of a response.
    let shape = |v: serde_json::Value| -> Vec<(String, Vec<String>)> {
        v["data"]["groups"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| {
                (
                    g["name"].as_str().unwrap().to_string(),
                    g["rules"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r["name"].as_str().unwrap().to_string())
                        .collect(),
                )
            })
            .collect()
    };
    let q = |s: &str| format!("{base}?{s}");
    let all = shape(json(&base).await);
    assert_eq!(all.len(), 3, "{all:?}");
    // type=alert drops groups b and o, which have no alerting rule.
    assert_eq!(
        shape(json(&q("type=alert")).await),
        vec![("a".to_string(), vec!["AOn".to_string()])]
    );
    let rec = shape(json(&q("type=record")).await);
    assert_eq!(rec.len(), 3);
    assert_eq!(rec[0].1, ["a:one:sum"]);
    assert_eq!(
        shape(json(&q("rule_name[]=b:two:sum&rule_name[]=o:x:sum")).await),
        vec![
            ("b".to_string(), vec!["b:two:sum".to_string()]),
            ("o".to_string(), vec!["o:x:sum".to_string()])
        ]
    );
    assert_eq!(shape(json(&q("rule_group[]=b")).await).len(), 1);
    let f = dir.path().join("o.rules").display().to_string();
    let by_file = shape(json(&q(&format!("file[]={f}"))).await);
    assert_eq!(
        by_file,
        vec![("o".to_string(), vec!["o:x:sum".to_string()])]
    );
    assert!(shape(json(&q("rule_group[]=a&type=record&rule_name[]=AOn")).await).is_empty());
    let r = reqwest::get(q("type=bogus")).await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert_eq!(v["errorType"], "bad_data");
    let v = json(&q("exclude_alerts=true&type=alert")).await;
    assert!(
        v["data"]["groups"][0]["rules"][0]["alerts"].is_null(),
        "{v:#}"
    );
    app.stop().await;
}

/// A runaway template (megabytes of output, or nested ranges over a large
/// query result) is cut off with an error in the annotation, like any
/// template error; the rule and its other annotations keep working.
#[test]
fn runaway_templates_are_cut_off_and_the_rule_keeps_running() {
    use klaxon::rules::file::{parse_rule_file, Dialect};
    use klaxon::rules::group::{GroupState, RuleHealth};
    let head = klaxon::tsdb::Head::new(klaxon::tsdb::HeadOptions::default());
    for i in 0..1500 {
        let l = klaxon::model::Labels::from_pairs([("__name__", "m"), ("i", &i.to_string())]);
        let (r, _) = head.try_get_or_create(&l).unwrap();
        head.append(r, 0, 1.0).unwrap();
    }
    let yaml = r#"groups:
  - name: g
    rules:
      - alert: Runaway
        expr: vector(1)
        annotations:
          big: '{{ range query "m" }}{{ printf "%01000d" 1 }}{{ end }}'
          loop: '{{ $all := query "m" }}{{ range $all }}{{ range $all }}{{ end }}{{ end }}'
          fine: 'value {{ $value }}'
"#;
    let g = parse_rule_file("t.yml", yaml.as_bytes(), Dialect::Prometheus3)
        .unwrap()
        .groups
        .remove(0);
    let mut gs = GroupState::new("t.yml", g, Duration::from_secs(60), "http://x");
    let engine = klaxon::promql::Engine::default();
    let start = std::time::Instant::now();
    let report = gs.eval_group(&head, &engine, 1000, &klaxon::model::Labels::empty());
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(start.elapsed() < Duration::from_secs(60));
    assert_eq!(gs.rules[0].health, RuleHealth::Ok);
    let alerts = gs.active_alerts("Runaway");
    assert_eq!(alerts.len(), 1);
    let ann = &alerts[0].annotations;
    assert!(
        ann["big"].starts_with("<error expanding template: error executing template __alert_Runaway: template: __alert_Runaway:1:")
            && ann["big"].contains("template output exceeds the limit of 1048576 bytes>"),
        "{}",
        &ann["big"][..ann["big"].len().min(300)]
    );
    assert!(
        ann["loop"].contains("template exceeds the limit of 1000000 execution steps"),
        "{}",
        &ann["loop"][..ann["loop"].len().min(300)]
    );
    assert_eq!(ann["fine"], "value 1");
    // The next evaluation runs normally.
    let report = gs.eval_group(&head, &engine, 61_000, &klaxon::model::Labels::empty());
    assert!(report.errors.is_empty());
}
