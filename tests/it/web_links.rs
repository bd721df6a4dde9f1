//! Every link klaxon writes resolves, under `--web.external-url` with a path
//! (so a route prefix): the Source link (`generatorURL`, Prometheus'
//! classic `/graph?g0.expr=…`), the Silence link and the runbook link of a
//! notification, the same fields in the APIs, the runbooks' own query
//! links, and the UI's pages and assets. Checked over HTTP and, end to end,
//! in headless Chromium (tests/it/common/webdriver.rs): each link opens the
//! page it names with the state it carries.

use crate::common;

use axum::routing::post;
use common::webdriver::{browser_available, Browser};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};

const T: Duration = Duration::from_secs(30);
const ALERT: &str = "KlaxonRuleEvaluationFailures";
const EXPR: &str = "vector(1) > 0";

struct Fixture {
    app: Option<klaxon::app::Running>,
    /// `http://127.0.0.1:PORT` (no prefix).
    origin: String,
    /// Where everything is served: origin + route prefix (`/kx`).
    external: String,
    slack: Arc<parking_lot::Mutex<Vec<Value>>>,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Fixture {
    /// klaxon with `--web.external-url http://127.0.0.1:PORT/kx/` (so the
    /// route prefix `/kx`).
    async fn start() -> Fixture {
        Fixture::start_with("/kx/", None).await
    }

    /// klaxon with the external URL's path `ext_path` and, when given, an
    /// explicit `--web.route-prefix`; `external` is origin + route prefix.
    async fn start_with(ext_path: &str, route_prefix: Option<&str>) -> Fixture {
        let slack: Arc<parking_lot::Mutex<Vec<Value>>> = Default::default();
        let s = slack.clone();
        let hooks = axum::Router::new().route(
            "/slack",
            post(move |body: axum::body::Bytes| {
                if let Ok(v) = serde_json::from_slice::<Value>(&body) {
                    s.lock().push(v);
                }
                async { "ok" }
            }),
        );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind hook server");
        let hook_port = l.local_addr().expect("addr").port();
        let server = tokio::spawn(async move {
            let _ = axum::serve(l, hooks).await;
        });
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("rules.yml"),
            format!(
                r#"groups:
- name: links
  interval: 1s
  rules:
  - alert: {ALERT}
    expr: {EXPR}
    labels:
      severity: ticket
    annotations:
      summary: links fixture
      runbook_url: "{{{{ $externalURL }}}}/runbooks/{ALERT}"
"#
            ),
        )
        .expect("rules");
        let mut last = String::new();
        for _ in 0..3 {
            let port = common::free_port();
            let origin = format!("http://127.0.0.1:{port}");
            let external_url = format!("{origin}{ext_path}");
            let yaml = format!(
                r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["{rules}"]
scrape_configs: []
storage:
  path: {data}
notify:
  route:
    receiver: chat
    group_wait: 0s
    group_interval: 1s
    repeat_interval: 1h
  receivers:
  - name: chat
    slack_configs:
    - api_url: http://127.0.0.1:{hook_port}/slack
      channel: '#ops'
"#,
                rules = dir.path().join("rules.yml").display(),
                data = dir.path().join("data").display(),
            );
            let path = dir.path().join("klaxon.yml");
            std::fs::write(&path, yaml).expect("config");
            let cfg = klaxon::settings::load_file(&path).expect("valid config");
            let web = klaxon::api::web::WebOptions::resolve(
                Some(&external_url),
                route_prefix,
                &format!("127.0.0.1:{port}"),
            )
            .expect("web options");
            let external = format!("{origin}{}", web.route_prefix.trim_end_matches('/'));
            match klaxon::app::start(
                cfg,
                klaxon::app::StartOptions {
                    web: Some(web),
                    ..klaxon::app::StartOptions::on(format!("127.0.0.1:{port}"))
                },
            )
            .await
            {
                Ok(app) => {
                    return Fixture {
                        app: Some(app),
                        origin,
                        external,
                        slack,
                        server,
                        _dir: dir,
                    }
                }
                Err(e) => last = e.to_string(),
            }
        }
        panic!("klaxon did not start: {last}");
    }

    async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }

    /// The first Slack message klaxon delivered.
    async fn notification(&self) -> Value {
        let end = Instant::now() + T;
        loop {
            if let Some(v) = self.slack.lock().first().cloned() {
                return v;
            }
            assert!(Instant::now() < end, "no notification within {T:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// Every `http(s)://…` string in a JSON document.
fn urls(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => {
            for word in s.split(|c: char| c.is_whitespace() || c == '<' || c == '>' || c == '|') {
                if word.starts_with("http://") || word.starts_with("https://") {
                    out.push(word.to_string());
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| urls(x, out)),
        Value::Object(m) => m.values().for_each(|x| urls(x, out)),
        _ => {}
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// GET `url` following redirects by hand; the final status and the chain.
async fn resolve(url: &str) -> (u16, Vec<String>) {
    let c = client();
    let mut chain = vec![url.to_string()];
    let mut cur = reqwest::Url::parse(url).expect("url");
    for _ in 0..5 {
        let r = c.get(cur.clone()).send().await.expect("GET");
        if r.status().is_redirection() {
            let loc = r
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .expect("redirect has a Location");
            cur = cur.join(loc).expect("Location resolves");
            chain.push(cur.to_string());
            continue;
        }
        return (r.status().as_u16(), chain);
    }
    panic!("redirect loop: {chain:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn links_in_notifications_apis_and_runbooks_resolve_under_a_route_prefix() {
    let f = Fixture::start().await;
    let msg = f.notification().await;
    let mut found = Vec::new();
    urls(&msg, &mut found);
    let ours: Vec<&String> = found.iter().filter(|u| u.starts_with(&f.origin)).collect();
    // Source, runbook and silence links, all under the external URL.
    for want in [
        "/kx/graph?g0.expr=",
        "/kx/runbooks/",
        "/kx/#/silences?matchers=",
    ] {
        assert!(
            ours.iter().any(|u| u.contains(want)),
            "no {want} link in the notification: {found:?}"
        );
    }
    for u in &ours {
        assert!(
            u.starts_with(&f.external),
            "{u} is not under {}",
            f.external
        );
        let (status, chain) = resolve(u).await;
        assert_eq!(status, 200, "{u}: {chain:?}");
    }
    // The classic graph link opens the UI's graph page on the expression.
    let source = ours
        .iter()
        .find(|u| u.contains("/graph?g0.expr="))
        .expect("source link");
    let (_, chain) = resolve(source).await;
    let last = chain.last().expect("chain");
    assert!(
        last.starts_with(&format!("{}/#/graph?g0.expr=", f.external)) && last.contains("g0.tab=1"),
        "{chain:?}"
    );

    // The same links in the APIs.
    let v2: Value = client()
        .get(format!("{}/api/v2/alerts", f.external))
        .send()
        .await
        .expect("GET")
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).expect("json"))
        .expect("body");
    let gen = v2[0]["generatorURL"].as_str().expect("generatorURL");
    assert!(
        gen.starts_with(&format!("{}/graph?g0.expr=", f.external)),
        "{gen}"
    );
    assert_eq!(resolve(gen).await.0, 200);
    let v1: Value = client()
        .get(format!("{}/api/v1/alerts", f.external))
        .send()
        .await
        .expect("GET")
        .bytes()
        .await
        .map(|b| serde_json::from_slice(&b).expect("json"))
        .expect("body");
    let rb = v1["data"]["alerts"][0]["annotations"]["runbook_url"]
        .as_str()
        .expect("runbook_url");
    assert_eq!(rb, format!("{}/runbooks/{ALERT}", f.external));

    // Runbooks: the index links each page, pages link queries that open.
    let index = client()
        .get(format!("{}/runbooks/", f.external))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("text");
    let base = reqwest::Url::parse(&format!("{}/runbooks/", f.external)).expect("url");
    let mut links = 0;
    for href in index
        .split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
    {
        let u = base.join(href).expect("href");
        assert_eq!(resolve(u.as_str()).await.0, 200, "{u}");
        let page = client().get(u.clone()).send().await.expect("GET");
        let body = page.text().await.expect("text");
        for inner in body
            .split("href=\"")
            .skip(1)
            .filter_map(|s| s.split('"').next())
        {
            let inner = inner.replace("&amp;", "&");
            let v = u.join(&inner).expect("href");
            if v.as_str().starts_with(&f.origin) {
                assert!(v.as_str().starts_with(&f.external), "{u}: {v}");
                assert_eq!(resolve(v.as_str()).await.0, 200, "{u}: {v}");
                links += 1;
            }
        }
    }
    assert!(links > 10, "runbooks link {links} queries");

    // Everything is under the prefix; the root sends there.
    let (s, chain) = resolve(&format!("{}/", f.origin)).await;
    assert_eq!(
        (s, chain.last().cloned()),
        (200, Some(format!("{}/", f.external)))
    );
    for p in ["/metrics", "/api/v1/query?query=1", "/ui/app.js"] {
        let r = client()
            .get(format!("{}{p}", f.origin))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 404, "{p} outside the prefix");
        let r = client()
            .get(format!("{}{p}", f.external))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), 200, "{p} under the prefix");
    }
    f.stop().await;
}

/// Opens `url` and waits for page `page` to say it has rendered.
async fn open(b: &Browser, url: &str, page: &str) {
    b.goto("about:blank").await.expect("blank");
    b.goto(url).await.expect("goto");
    b.wait_script(
        T,
        &format!(
            "return document.body && document.body.dataset.page === '{page}' && document.body.dataset.loaded === 'true';"
        ),
    )
    .await
    .unwrap_or_else(|e| panic!("{url} did not open page {page}: {e}"));
    let err = b
        .execute(
            "const e = document.querySelector('#view .error:not([hidden])'); return e ? e.textContent : '';",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(err, "", "{url}: page shows an error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_link_opens_its_page_in_chromium() {
    if !browser_available() {
        eprintln!("SKIPPED every_kind_of_link_opens_its_page_in_chromium: /usr/bin/chromium or /usr/bin/chromedriver missing");
        return;
    }
    let f = Fixture::start().await;
    let _one = crate::common::webdriver::ONE_BROWSER.lock().await;
    let b = Browser::start().await.expect("browser");
    let msg = f.notification().await;
    let mut found = Vec::new();
    urls(&msg, &mut found);
    let link = |part: &str| {
        found
            .iter()
            .find(|u| u.contains(part))
            .cloned()
            .unwrap_or_else(|| panic!("no {part} link in {found:?}"))
    };

    // Source: the classic graph URL shows the expression's table.
    open(&b, &link("/graph?g0.expr="), "graph").await;
    let v = b
        .execute(
            "return document.getElementById('expr-input').value;",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(v, EXPR);
    b.wait_script(
        T,
        "return document.getElementById('graph-tab-table').getAttribute('aria-selected') === 'true' && document.querySelectorAll('#graph-table tbody tr').length > 0;",
    )
    .await
    .expect("graph table with the result");

    // Silence: the new-silence form with the alert's matchers.
    open(&b, &link("/#/silences?matchers="), "silences").await;
    let m = b
        .execute(
            "return document.getElementById('silence-matchers').value;",
            vec![],
        )
        .await
        .expect("script");
    let m = m.as_str().unwrap_or_default();
    assert!(m.contains(&format!("alertname=\"{ALERT}\"")), "{m}");
    // Alertmanager's form of that link (templates written for it).
    let am =
        link("/#/silences?matchers=").replace("/#/silences?matchers=", "/#/silences/new?filter=");
    open(&b, &am, "silences").await;
    let m2 = b
        .execute(
            "return document.getElementById('silence-matchers').value;",
            vec![],
        )
        .await
        .expect("script");
    assert_eq!(m2.as_str(), Some(m));

    // Runbook: the page of this alert, whose query links open the graph.
    let rb = link("/runbooks/");
    b.goto(&rb).await.expect("runbook");
    let title = b
        .wait_script(T, "return document.querySelector('h1') && document.title;")
        .await
        .expect("runbook page");
    assert!(
        title.as_str().unwrap_or_default().contains(ALERT),
        "{title}"
    );
    let href = b
        .execute(
            "const a = [...document.querySelectorAll('a')].find(a => a.href.includes('/graph?g0.expr=')); return a ? a.href : '';",
            vec![],
        )
        .await
        .expect("script");
    let href = href.as_str().unwrap_or_default().to_string();
    assert!(
        href.starts_with(&format!("{}/graph?", f.external)),
        "{href}"
    );
    open(&b, &href, "graph").await;

    // The UI itself: every page in the navigation loads under the prefix,
    // and a rule alert's links (expression, runbook) resolve.
    open(&b, &format!("{}/", f.external), "alerts").await;
    let navs = b
        .execute(
            "return [...document.querySelectorAll('nav a')].map(a => a.href);",
            vec![],
        )
        .await
        .expect("script");
    let navs: Vec<String> = navs
        .as_array()
        .expect("nav links")
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect();
    assert_eq!(navs.len(), 10, "{navs:?}");
    for n in &navs {
        assert!(n.starts_with(&format!("{}/#/", f.external)), "{n}");
        let page = n.rsplit("#/").next().unwrap_or_default();
        open(&b, n, page).await;
    }
    open(&b, &format!("{}/#/alerts", f.external), "alerts").await;
    b.wait_element(T, "[data-testid=expr-link]")
        .await
        .expect("alert with an expression link");
    let mut hrefs = Vec::new();
    for id in ["expr-link", "runbook-link"] {
        let href = b
            .execute(
                &format!("const a = document.querySelector('[data-testid={id}]'); return a ? a.href : '';"),
                vec![],
            )
            .await
            .expect("script");
        let href = href.as_str().unwrap_or_default().to_string();
        assert!(href.starts_with(&f.external), "{id}: {href}");
        hrefs.push(href);
    }
    open(&b, &hrefs[0], "graph").await;
    assert_eq!(resolve(&hrefs[1]).await.0, 200, "{}", hrefs[1]);
    b.quit().await;
    f.stop().await;
}

/// Prometheus' classic link with three panels (`g0`, `g1`, `g2`) opens
/// three panels, in order, each with its expression, tab, range, end,
/// step and stacking, and each evaluated: under an external URL with a
/// path and under an explicit `--web.route-prefix`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_graph_link_with_three_panels_opens_each_panel_evaluated() {
    if !browser_available() {
        eprintln!("SKIPPED classic_graph_link_with_three_panels_opens_each_panel_evaluated: /usr/bin/chromium or /usr/bin/chromedriver missing");
        return;
    }
    let b = Browser::start().await.expect("browser");
    for (ext_path, prefix) in [("/kx/", None), ("/", Some("/rp"))] {
        let f = Fixture::start_with(ext_path, prefix).await;
        let query = "g0.expr=vector(11)&g0.tab=1&g0.stacked=0&g0.range_input=1h\
            &g1.expr=vector(2)+*+3&g1.tab=0&g1.stacked=1&g1.range_input=30m\
            &g1.end_input=2026-01-02+03%3A04%3A05&g1.moment_input=2026-01-02+03%3A04%3A05&g1.step_input=60\
            &g2.expr=sum(vector(5))+%2B+37&g2.tab=1&g2.range_input=2h";
        let url = format!("{}/graph?{query}", f.external);
        open(&b, &url, "graph").await;
        let panels = b
            .wait_script(
                T,
                "const p = [...document.querySelectorAll('[data-testid=panel]')];\
                 return p.length === 3 && p.every(x => x.dataset.evaluated) && p.map(x => ({\
                   expr: x.querySelector('textarea').value,\
                   evaluated: x.dataset.evaluated,\
                   tab: x.querySelector('[role=tab][aria-selected=true]').textContent,\
                   range: x.querySelector('[id^=graph-range]').value,\
                   end: x.querySelector('[id^=graph-end]').value,\
                   step: x.querySelector('[id^=graph-step]').value,\
                   stacked: x.querySelector('[id^=graph-stacked]').checked,\
                   table: (x.querySelector('table') || {}).textContent || '',\
                   lines: x.querySelectorAll('svg path[data-testid=series-line]').length,\
                 }));",
            )
            .await
            .unwrap_or_else(|e| panic!("{url}: three evaluated panels: {e}"));
        let p = panels.as_array().expect("panels");
        let exprs: Vec<&str> = p.iter().map(|x| x["expr"].as_str().unwrap_or("")).collect();
        assert_eq!(
            exprs,
            ["vector(11)", "vector(2) * 3", "sum(vector(5)) + 37"],
            "{url}"
        );
        let tabs: Vec<&str> = p
            .iter()
            .map(|x| x["evaluated"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(tabs, ["table", "graph", "table"], "{url}: {panels}");
        assert_eq!(p[0]["tab"], "Table");
        assert_eq!(p[1]["tab"], "Graph");
        assert!(
            p[0]["table"].as_str().unwrap_or("").contains("11"),
            "{panels}"
        );
        assert!(
            p[2]["table"].as_str().unwrap_or("").contains("42"),
            "{panels}"
        );
        assert!(p[1]["lines"].as_u64().unwrap_or(0) >= 1, "{panels}");
        assert_eq!(p[0]["range"], "1h");
        assert_eq!(p[1]["range"], "30m");
        assert_eq!(p[2]["range"], "2h");
        assert_eq!(p[1]["end"], "2026-01-02 03:04:05");
        assert_eq!(p[1]["step"], "60");
        assert_eq!(p[1]["stacked"], true);
        assert_eq!(p[0]["stacked"], false);
        // The page's own URL keeps every panel (shareable, reload restores).
        let here = b.current_url().await.expect("url");
        assert!(
            here.starts_with(&format!("{}/#/graph?g0.expr=", f.external))
                && here.contains("g2.expr=")
                && here.contains("g1.end_input=2026-01-02+03%3A04%3A05"),
            "{here}"
        );
        f.stop().await;
    }
    b.quit().await;
}
