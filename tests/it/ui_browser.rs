//! The web UI in a real browser: Debian's headless Chromium driven through
//! chromedriver (tests/it/common/webdriver.rs) against a klaxon started here
//! with the fixture config in testdata/ui/.
//!
//! The tests select on the DOM contract of the pages (ids and `data-testid`s
//! documented in docs/operations.md "Web UI") and check side effects through
//! the JSON APIs, not the DOM. Screenshots of every page land in
//! `$CARGO_TARGET_DIR/ui-screenshots/` (else `target/ui-screenshots/`).
//!
//! Outside CI a machine without chromium/chromedriver prints a SKIPPED line;
//! under `CI=true` that is a failure.

use crate::common;

use axum::routing::{get, post};
use common::webdriver::{browser_available, screenshot_dir, Browser, WdResult, ENTER};
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const VIEWER: &str = "ui-viewer-token";
const OPERATOR: &str = "ui-operator-token";
const ADMIN: &str = "ui-admin-token";
const ALWAYS: &str = "UiFixtureAlwaysFiring";
const RUNBOOK: &str = "https://runbooks.example.org/ui-fixture-always-firing";
const DASHBOARD: &str = "https://dashboards.example.org/d/ui-fixture";
/// How long a page may take to show its data (the machine is shared).
const T: Duration = Duration::from_secs(20);

/// A klaxon running the fixture config, plus the fixture server it scrapes
/// (`ui_fixture_switch`; `/exemplars`, an OpenMetrics histogram with
/// exemplars) and delivers to (`/hook`).
struct Fixture {
    app: Option<klaxon::app::Running>,
    base: String,
    switch: Arc<AtomicBool>,
    hooks: Arc<AtomicUsize>,
    server: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The fixture's `/exemplars` answer on its `n`-th scrape at `now` (ms): a
/// histogram whose two lowest buckets carry a new exemplar each scrape
/// (`fast-N` and `slow-N`, values below 0.1 and 0.5, timestamped `now`).
fn exemplar_exposition(n: usize, now: i64) -> String {
    let ts = format!("{}.{:03}", now / 1000, now % 1000);
    let fast = (1 + n % 5) as f64 / 100.0;
    let slow = (20 + 5 * (n % 4)) as f64 / 100.0;
    format!(
        "# TYPE ui_fixture_latency_seconds histogram\n\
         # HELP ui_fixture_latency_seconds Latency of the fixture's requests.\n\
         ui_fixture_latency_seconds_bucket{{le=\"0.1\"}} {n} # {{trace_id=\"fast-{n}\"}} {fast} {ts}\n\
         ui_fixture_latency_seconds_bucket{{le=\"0.5\"}} {} # {{trace_id=\"slow-{n}\"}} {slow} {ts}\n\
         ui_fixture_latency_seconds_bucket{{le=\"+Inf\"}} {}\n\
         ui_fixture_latency_seconds_sum {}\n\
         ui_fixture_latency_seconds_count {}\n\
         # EOF\n",
        2 * n,
        3 * n,
        0.6 * n as f64,
        3 * n
    )
}

fn fixture_dir() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/ui")
}

impl Fixture {
    async fn start() -> Fixture {
        let switch = Arc::new(AtomicBool::new(false));
        let hooks = Arc::new(AtomicUsize::new(0));
        let (sw, hk) = (switch.clone(), hooks.clone());
        let scrapes = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .route(
                "/exemplars",
                get(move || {
                    let n = scrapes.fetch_add(1, Ordering::SeqCst) + 1;
                    async move {
                        (
                            [(
                                axum::http::header::CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            exemplar_exposition(n, klaxon::model::now_millis()),
                        )
                    }
                }),
            )
            .route(
                "/metrics",
                get(move || {
                    let on = sw.load(Ordering::SeqCst);
                    async move { format!("ui_fixture_switch {}\n", u8::from(on)) }
                }),
            )
            .route(
                "/hook",
                post(move || {
                    hk.fetch_add(1, Ordering::SeqCst);
                    async { "ok" }
                }),
            );
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fixture server");
        let fixture_port = l.local_addr().expect("fixture addr").port();
        let server = tokio::spawn(async move {
            let _ = axum::serve(l, app).await;
        });

        let dir = tempfile::tempdir().expect("tempdir");
        let template =
            std::fs::read_to_string(Path::new(fixture_dir()).join("klaxon.yml")).expect("fixture");
        // klaxon scrapes itself, so its port goes into the config before it
        // starts: a port from bind(:0), retried if someone takes it first.
        let mut last_err = String::new();
        for _ in 0..3 {
            let port = {
                let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
                l.local_addr().expect("addr").port()
            };
            let yaml = template
                .replace("@FIXTURE_DIR@", fixture_dir())
                .replace("@KLAXON_PORT@", &port.to_string())
                .replace("@FIXTURE_PORT@", &fixture_port.to_string())
                .replace("@DATA_DIR@", &dir.path().join("data").display().to_string());
            let path = dir.path().join("klaxon.yml");
            std::fs::write(&path, yaml).expect("write config");
            let cfg = klaxon::settings::load_file(&path).expect("fixture config is valid");
            match klaxon::app::start(
                cfg,
                klaxon::app::StartOptions::on(format!("127.0.0.1:{port}")),
            )
            .await
            {
                Ok(app) => {
                    let base = format!("http://{}", app.addr);
                    return Fixture {
                        app: Some(app),
                        base,
                        switch,
                        hooks,
                        server,
                        _dir: dir,
                    };
                }
                Err(e) => last_err = e.to_string(),
            }
        }
        panic!("klaxon did not start: {last_err}");
    }

    async fn stop(mut self) {
        if let Some(app) = self.app.take() {
            app.stop().await;
        }
    }

    /// A JSON API answer, as `token`.
    async fn api(&self, path: &str, token: &str) -> Value {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = r.status();
        let body = r.bytes().await.expect("body");
        assert!(
            status.is_success(),
            "GET {path}: {status} {}",
            String::from_utf8_lossy(&body)
        );
        serde_json::from_slice(&body).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Polls an API until `ok` accepts its answer.
    async fn api_until(&self, path: &str, ok: impl Fn(&Value) -> bool) -> Value {
        let end = Instant::now() + T;
        loop {
            let v = self.api(path, ADMIN).await;
            if ok(&v) {
                return v;
            }
            assert!(Instant::now() < end, "{path} never matched: {v}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until the rule engine has the fixture alert firing.
    async fn firing(&self) {
        self.api_until("/api/v1/alerts", |v| {
            v["data"]["alerts"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["labels"]["alertname"] == ALWAYS && x["state"] == "firing")
            })
        })
        .await;
    }
}

/// Starts the browser, or `None` (with a SKIPPED line) where it is not
/// installed outside CI.
async fn browser(test: &str) -> Option<Browser> {
    if !browser_available() {
        eprintln!("SKIPPED {test}: /usr/bin/chromium or /usr/bin/chromedriver missing (apt-get install chromium chromium-driver)");
        return None;
    }
    Some(
        Browser::start()
            .await
            .expect("start chromedriver + chromium"),
    )
}

/// Enters `token` in the header's token box, as a person would.
async fn login(b: &Browser, base: &str, token: &str) -> WdResult<()> {
    b.goto(&format!("{base}/#/status")).await?;
    b.wait_element(T, "#token-input").await?;
    b.fill("#token-input", token).await?;
    let save = b.one("#token-save").await?;
    b.click(&save).await?;
    let stored = b
        .wait_script(T, "return sessionStorage.getItem('klaxon.token')")
        .await?;
    assert_eq!(
        stored, token,
        "the token box stores the token in sessionStorage"
    );
    Ok(())
}

/// Navigates to `#/route` and waits until page `page` says its data is
/// rendered (`body[data-page][data-loaded=true]`).
async fn open(b: &Browser, base: &str, route: &str, page: &str) -> WdResult<()> {
    let url = format!("{base}/#/{route}");
    // Forget the previous page's "loaded", so a stale flag cannot pass.
    b.execute(
        "if (document.body) document.body.dataset.loaded = 'test-navigating';",
        vec![],
    )
    .await?;
    if b.current_url().await? == url {
        b.execute("location.reload();", vec![]).await?;
    } else {
        b.goto(&url).await?;
    }
    b.wait_script(
        T,
        &format!(
            "return document.body.dataset.page === '{page}' && document.body.dataset.loaded === 'true';"
        ),
    )
    .await
    .map(drop)
}

async fn shot(b: &Browser, name: &str) {
    let path = screenshot_dir().join(format!("{name}.png"));
    b.screenshot(&path)
        .await
        .unwrap_or_else(|e| panic!("screenshot {}: {e}", path.display()));
}

fn css_alert(name: &str) -> String {
    format!("[data-testid=alert][data-alertname=\"{name}\"]")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_page_shows_firing_alert_with_runbook_and_dashboard_links() {
    let _one = crate::common::webdriver::ONE_BROWSER.lock().await;
    let Some(b) = browser("alerts_page_shows_firing_alert_with_runbook_and_dashboard_links").await
    else {
        return;
    };
    let fx = Fixture::start().await;
    fx.firing().await;
    login(&b, &fx.base, VIEWER).await.unwrap();
    open(&b, &fx.base, "alerts", "alerts").await.unwrap();

    let alert = b.wait_element(T, &css_alert(ALWAYS)).await.unwrap();
    assert_eq!(
        b.attr(&alert, "data-state").await.unwrap().as_deref(),
        Some("firing")
    );
    let runbook = b
        .find_in(&alert, "a[data-testid=runbook-link]")
        .await
        .unwrap();
    assert_eq!(runbook.len(), 1, "one runbook link");
    assert_eq!(
        b.attr(&runbook[0], "href").await.unwrap().as_deref(),
        Some(RUNBOOK)
    );
    let dash = b
        .find_in(&alert, "a[data-testid=dashboard-link]")
        .await
        .unwrap();
    assert_eq!(dash.len(), 1, "one dashboard link");
    assert_eq!(
        b.attr(&dash[0], "href").await.unwrap().as_deref(),
        Some(DASHBOARD)
    );
    let expr = b.find_in(&alert, "a[data-testid=expr-link]").await.unwrap();
    assert_eq!(expr.len(), 1, "one expression link");
    let href = b.attr(&expr[0], "href").await.unwrap().unwrap_or_default();
    assert!(href.contains("#/graph?expr="), "{href}");
    assert!(
        href.contains("vector"),
        "the link carries the rule's expr: {href}"
    );
    let text = b.text(&alert).await.unwrap();
    assert!(
        text.contains("The UI fixture alert is firing"),
        "summary shown: {text}"
    );
    assert!(text.contains("oncall"), "labels shown: {text}");

    // The group is by alertname + severity.
    let groups = b.find_all("[data-testid=alert-group]").await.unwrap();
    assert!(!groups.is_empty());

    // An alert only the Alertmanager API knows (posted by a Prometheus) is
    // listed too, firing, with its sender's link instead of an expression.
    let ext = serde_json::json!([{
        "labels": {"alertname": "UiExternalAlert", "severity": "ticket"},
        "annotations": {"summary": "posted to /api/v2/alerts"},
        "generatorURL": "http://prometheus.example.org/graph?g0.expr=up",
    }]);
    let r = reqwest::Client::new()
        .post(format!("{}/api/v2/alerts", fx.base))
        .bearer_auth(OPERATOR)
        .header("content-type", "application/json")
        .body(ext.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    open(&b, &fx.base, "alerts", "alerts").await.unwrap();
    let posted = b
        .wait_element(T, &css_alert("UiExternalAlert"))
        .await
        .unwrap();
    assert_eq!(
        b.attr(&posted, "data-state").await.unwrap().as_deref(),
        Some("firing")
    );
    let src = b
        .find_in(&posted, "a[data-testid=source-link]")
        .await
        .unwrap();
    assert_eq!(src.len(), 1, "the sender's link");
    assert!(b
        .find_in(&posted, "a[data-testid=expr-link]")
        .await
        .unwrap()
        .is_empty());
    // The rule's alert is listed once, not again from the v2 API.
    assert_eq!(b.find_all(&css_alert(ALWAYS)).await.unwrap().len(), 1);

    // The state filter hides firing alerts when "pending" is chosen.
    let state = b.one("#alert-state").await.unwrap();
    b.execute_on(
        "arguments[0].value = 'pending'; arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
        &[&state],
    )
    .await
    .unwrap();
    b.wait_until(T, "pending filter hides the firing alert", || async {
        Ok(b.find(&css_alert(ALWAYS)).await?.is_none().then_some(()))
    })
    .await
    .unwrap();
    b.quit().await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_created_in_the_ui_is_stored_and_mutes_the_alert() {
    let _one = crate::common::webdriver::ONE_BROWSER.lock().await;
    let Some(b) = browser("silence_created_in_the_ui_is_stored_and_mutes_the_alert").await else {
        return;
    };
    let fx = Fixture::start().await;
    fx.firing().await;
    login(&b, &fx.base, OPERATOR).await.unwrap();
    open(&b, &fx.base, "alerts", "alerts").await.unwrap();
    let alert = b.wait_element(T, &css_alert(ALWAYS)).await.unwrap();
    let button = b
        .find_in(&alert, "[data-testid=silence-button]")
        .await
        .unwrap();
    assert_eq!(button.len(), 1, "an operator gets a silence button");
    b.click(&button[0]).await.unwrap();

    // The silences page opens with the alert's matchers filled in.
    b.wait_script(
        T,
        "return document.body.dataset.page === 'silences' && document.body.dataset.loaded === 'true';",
    )
    .await
    .unwrap();
    let matchers = b
        .wait_script(
            T,
            "const m = document.querySelector('#silence-matchers'); return m && m.value;",
        )
        .await
        .unwrap();
    let matchers = matchers.as_str().unwrap_or_default().to_string();
    assert!(
        matchers.contains(&format!("alertname=\"{ALWAYS}\"")),
        "pre-filled matchers: {matchers}"
    );
    // Only the alertname: the test's silence must not depend on how many
    // labels the page pre-fills.
    b.fill("#silence-matchers", &format!("{{alertname=\"{ALWAYS}\"}}"))
        .await
        .unwrap();
    b.fill("#silence-duration", "2h").await.unwrap();
    b.fill("#silence-createdby", "ui-test").await.unwrap();
    b.fill("#silence-comment", "muted by the browser test")
        .await
        .unwrap();
    b.click(&b.one("#silence-submit").await.unwrap())
        .await
        .unwrap();
    let msg = b
        .wait_script(T, "const m = document.querySelector('#silence-message'); return m && m.textContent.trim();")
        .await
        .unwrap();
    shot(&b, "silences-created").await;

    // Stored: the API lists it, active, with what was typed.
    let silences = fx
        .api_until("/api/v2/silences", |v| {
            v.as_array().is_some_and(|a| {
                a.iter()
                    .any(|s| s["comment"] == "muted by the browser test")
            })
        })
        .await;
    let s = silences
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|s| s["comment"] == "muted by the browser test")
        })
        .cloned()
        .unwrap_or_default();
    assert_eq!(s["status"]["state"], "active", "{s}");
    assert_eq!(s["createdBy"], "ui-test", "{s}");
    assert_eq!(s["matchers"][0]["name"], "alertname", "{s}");
    assert_eq!(s["matchers"][0]["value"], ALWAYS, "{s}");
    assert_eq!(s["matchers"][0]["isRegex"], false, "{s}");
    let id = s["id"].as_str().unwrap_or_default().to_string();
    assert!(!id.is_empty(), "{s}");
    eprintln!("#silence-message: {msg}");
    // Duration 2h: ends two hours after it starts (to the second).
    let at = |k: &str| klaxon::model::time::parse_time(s[k].as_str().unwrap_or_default());
    let (starts, ends) = (at("startsAt").unwrap(), at("endsAt").unwrap());
    assert!(
        (ends - starts - 2 * 3600 * 1000).abs() < 60_000,
        "2h silence: {s}"
    );

    // Muted: Alertmanager's view marks the alert suppressed by that silence.
    fx.api_until("/api/v2/alerts", |v| {
        v.as_array().is_some_and(|a| {
            a.iter().any(|x| {
                x["labels"]["alertname"] == ALWAYS
                    && x["status"]["state"] == "suppressed"
                    && x["status"]["silencedBy"]
                        .as_array()
                        .is_some_and(|ids| ids.iter().any(|i| i == id.as_str()))
            })
        })
    })
    .await;

    // The silence is listed on the page, and the alerts page shows the
    // alert as silenced.
    open(&b, &fx.base, "silences", "silences").await.unwrap();
    let row = b
        .wait_element(T, &format!("[data-testid=silence][data-id=\"{id}\"]"))
        .await
        .unwrap();
    assert_eq!(
        b.attr(&row, "data-state").await.unwrap().as_deref(),
        Some("active")
    );
    open(&b, &fx.base, "alerts", "alerts").await.unwrap();
    b.wait_element(T, &format!("{}[data-silenced=\"true\"]", css_alert(ALWAYS)))
        .await
        .unwrap();
    b.quit().await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_page_draws_rate_and_shows_parse_error_position() {
    let _one = crate::common::webdriver::ONE_BROWSER.lock().await;
    let Some(b) = browser("graph_page_draws_rate_and_shows_parse_error_position").await else {
        return;
    };
    let fx = Fixture::start().await;
    let expr = "rate(http_requests_total[1m])";
    // Enough self-scrapes that rate() has several points: a line, not a dot.
    let end = Instant::now() + T;
    loop {
        let now = klaxon::model::now_millis() / 1000;
        let v = fx
            .api(
                &format!(
                    "/api/v1/query_range?query={}&start={}&end={now}&step=1",
                    urlencode(expr),
                    now - 120
                ),
                VIEWER,
            )
            .await;
        let points = v["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s["values"].as_array().map_or(0, Vec::len))
            .max()
            .unwrap_or(0);
        if points >= 4 {
            break;
        }
        assert!(Instant::now() < end, "rate() never had 4 points: {v}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    login(&b, &fx.base, VIEWER).await.unwrap();
    open(&b, &fx.base, "graph", "graph").await.unwrap();
    b.fill("#expr-input", expr).await.unwrap();
    b.fill("#graph-range", "5m").await.unwrap();
    b.click(&b.one("#graph-run").await.unwrap()).await.unwrap();
    let drawn = b
        .wait_script(
            T,
            "const p = [...document.querySelectorAll('#graph-chart svg path[data-testid=series-line]')]\
               .filter(p => (p.getAttribute('d') || '').trim().length > 1 && p.getTotalLength() > 0\
                 && getComputedStyle(p).stroke !== 'none'); return p.length;",
        )
        .await;
    let drawn = match drawn {
        Ok(v) => v,
        Err(e) => {
            shot(&b, "graph-failed").await;
            let page = b
                .execute(
                    "return document.querySelector('main').innerHTML + ' URL ' + location.href;",
                    vec![],
                )
                .await
                .unwrap_or_default();
            panic!("{e}\n{page}");
        }
    };
    assert!(drawn.as_u64().unwrap_or(0) >= 1, "{drawn}");
    let legend = b
        .find_all("#graph-chart [data-testid=legend-item], [data-testid=legend-item]")
        .await
        .unwrap();
    assert!(!legend.is_empty(), "a legend entry per series");
    shot(&b, "graph").await;

    // The table view shows the instant query.
    b.click(&b.one("#graph-tab-table").await.unwrap())
        .await
        .unwrap();
    b.wait_script(
        T,
        "const t = document.querySelector('#graph-table'); return t && t.textContent.includes('http_requests_total') || t && t.textContent.includes('route');",
    )
    .await
    .unwrap();
    b.click(&b.one("#graph-tab-chart").await.unwrap())
        .await
        .unwrap();

    // A bad expression (Enter runs it) shows the parser's message and
    // position, as the query API gives them.
    let bad = "rate(http_requests_total[1m]";
    let api = reqwest::Client::new()
        .get(format!("{}/api/v1/query?query={}", fx.base, urlencode(bad)))
        .bearer_auth(VIEWER)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status().as_u16(), 400);
    let api: Value = serde_json::from_slice(&api.bytes().await.unwrap()).unwrap();
    let api_err = api["error"].as_str().unwrap_or_default().to_string();
    // Prometheus' form: `invalid parameter "query": 1:29: parse error: ...`.
    let position = regex::Regex::new(r"\b(\d+:\d+):")
        .unwrap()
        .captures(&api_err)
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| panic!("no line:col in the API error {api_err:?}"));
    let input = b.one("#expr-input").await.unwrap();
    b.clear(&input).await.unwrap();
    b.send_keys(&input, bad).await.unwrap();
    b.send_keys(&input, ENTER).await.unwrap();
    let shown = b
        .wait_script(
            T,
            "const e = document.querySelector('#graph-error'); return e && e.textContent.trim();",
        )
        .await
        .unwrap();
    let shown = shown.as_str().unwrap_or_default();
    assert!(
        shown.contains(&position),
        "#graph-error {shown:?} lacks position {position:?} ({api_err})"
    );
    shot(&b, "graph-error").await;
    b.quit().await;
    fx.stop().await;
}

/// Whether the page at hand has an element matching `css`, once loaded.
async fn has(b: &Browser, css: &str) -> bool {
    b.find(css).await.unwrap().is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_sees_no_silence_or_replay_buttons_operator_does() {
    let _one = crate::common::webdriver::ONE_BROWSER.lock().await;
    let Some(b) = browser("viewer_sees_no_silence_or_replay_buttons_operator_does").await else {
        return;
    };
    let fx = Fixture::start().await;
    fx.firing().await;
    // A delivery exists: the fixture alert went to the webhook.
    fx.api_until("/api/v1/deliveries", |v| {
        v["data"]["deliveries"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    })
    .await;
    // The delivery is stored before its first attempt: wait for the send.
    let deadline = std::time::Instant::now() + T;
    while fx.hooks.load(Ordering::SeqCst) < 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "the webhook got nothing"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    for (token, operator) in [(VIEWER, false), (OPERATOR, true)] {
        login(&b, &fx.base, token).await.unwrap();
        open(&b, &fx.base, "alerts", "alerts").await.unwrap();
        b.wait_element(T, &css_alert(ALWAYS)).await.unwrap();
        assert_eq!(
            has(&b, "[data-testid=silence-button]").await,
            operator,
            "silence button as {token}"
        );
        open(&b, &fx.base, "deliveries", "deliveries")
            .await
            .unwrap();
        b.wait_element(T, "[data-testid=delivery]").await.unwrap();
        assert_eq!(
            has(&b, "[data-testid=replay-button]").await,
            operator,
            "replay button as {token}"
        );
        if operator {
            shot(&b, "deliveries-operator").await;
            let before = fx.hooks.load(Ordering::SeqCst);
            let replay = b.one("[data-testid=replay-button]").await.unwrap();
            b.click(&replay).await.unwrap();
            // Replaying sends the notification again.
            let end = Instant::now() + T;
            while fx.hooks.load(Ordering::SeqCst) <= before {
                assert!(Instant::now() < end, "replay never reached the webhook");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        } else {
            shot(&b, "deliveries-viewer").await;
        }
    }
    b.quit().await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn autoheal_page_lists_rules_their_targets_and_runs() {
    let _one = crate::common::webdriver::ONE_BROWSER.lock().await;
    let Some(b) = browser("autoheal_page_lists_rules_their_targets_and_runs").await else {
        return;
    };
    let fx = Fixture::start().await;
    fx.firing().await;
    fx.api_until("/api/v1/autoheal/runs", |v| {
        v["data"]["runs"]
            .as_array()
            .is_some_and(|r| r.iter().any(|e| e["data"]["outcome"] == "dry_run"))
    })
    .await;
    login(&b, &fx.base, OPERATOR).await.unwrap();
    open(&b, &fx.base, "autoheal", "autoheal").await.unwrap();
    b.wait_element(T, "[data-testid=autoheal-rule][data-name=triage-dry-run]")
        .await
        .unwrap();
    let target = b
        .wait_element(T, "[data-testid=autoheal-target]")
        .await
        .unwrap();
    let text = b.text(&target).await.unwrap();
    assert!(text.contains("cooldown until"), "{text}");
    b.wait_element(T, "[data-testid=autoheal-run][data-outcome=dry_run]")
        .await
        .unwrap();
    shot(&b, "autoheal-operator").await;
    b.quit().await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_page_has_no_horizontal_scroll_at_phone_width() {
    let _one = crate::common::webdriver::ONE_BROWSER.lock().await;
    let Some(b) = browser("alerts_page_has_no_horizontal_scroll_at_phone_width").await else {
        return;
    };
    let fx = Fixture::start().await;
    fx.firing().await;
    b.set_window_size(375, 800).await.unwrap();
    login(&b, &fx.base, OPERATOR).await.unwrap();
    let mut overflow = Vec::new();
    for page in [
        "alerts",
        "graph",
        "rules",
        "targets",
        "probes",
        "deliveries",
        "autoheal",
        "silences",
        "tenants",
        "status",
    ] {
        open(&b, &fx.base, page, page).await.unwrap();
        if page == "alerts" {
            b.wait_element(T, &css_alert(ALWAYS)).await.unwrap();
        }
        let v = b
            .execute(
                "return [document.scrollingElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await
            .unwrap();
        let (sw, iw) = (
            v[0].as_f64().unwrap_or(f64::MAX),
            v[1].as_f64().unwrap_or(0.0),
        );
        assert!(iw <= 400.0, "the viewport is phone-sized: {iw}");
        if sw > iw + 1.0 {
            overflow.push(format!("{page}: scrollWidth {sw} > innerWidth {iw}"));
        }
        shot(&b, &format!("phone-{page}")).await;
    }
    assert!(
        overflow.is_empty(),
        "horizontal page scroll at 375 px: {overflow:?}"
    );
    b.quit().await;
    fx.stop().await;
}

/// Lists the visible interactive controls that have no accessible name (no
/// `<label for>`/wrapping label, `aria-label`, `aria-labelledby`, `title`,
/// or own text for buttons and links).
const UNNAMED_CONTROLS: &str = r#"
const named = (el) => {
  const t = (s) => (s || '').trim();
  if (t(el.getAttribute('aria-label'))) return true;
  const by = el.getAttribute('aria-labelledby');
  if (by && by.split(/\s+/).some(id => t(document.getElementById(id)?.textContent))) return true;
  if (el.labels && [...el.labels].some(l => t(l.textContent))) return true;
  if (t(el.getAttribute('title'))) return true;
  const tag = el.tagName;
  if ((tag === 'BUTTON' || tag === 'A' || el.getAttribute('role') === 'button') && t(el.textContent)) return true;
  if (tag === 'INPUT' && ['submit', 'button', 'reset'].includes(el.type) && t(el.value)) return true;
  return false;
};
const bad = [];
for (const el of document.querySelectorAll('input, select, textarea, button, a[href], [role=button], summary')) {
  if (el.type === 'hidden') continue;
  if (el.tagName === 'SUMMARY') { if (!(el.textContent || '').trim()) bad.push(el.outerHTML.slice(0, 160)); continue; }
  if (!named(el)) bad.push(el.outerHTML.slice(0, 160));
}
return bad;
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_control_on_every_page_has_an_accessible_name() {
    let _one = crate::common::webdriver::ONE_BROWSER.lock().await;
    let Some(b) = browser("every_control_on_every_page_has_an_accessible_name").await else {
        return;
    };
    let fx = Fixture::start().await;
    fx.firing().await;
    fx.api_until("/api/v1/deliveries", |v| {
        v["data"]["deliveries"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    })
    .await;
    login(&b, &fx.base, ADMIN).await.unwrap();
    // The checker itself finds an unlabelled input and accepts a labelled one.
    open(&b, &fx.base, "alerts", "alerts").await.unwrap();
    let probe = b
        .execute(
            &format!(
                "const a = document.createElement('input'); a.id = 'ui-test-unnamed'; document.body.append(a);\
                 const l = document.createElement('label'); l.htmlFor = 'ui-test-named'; l.textContent = 'Named';\
                 const c = document.createElement('input'); c.id = 'ui-test-named'; document.body.append(l, c);\
                 const bad = (() => {{ {UNNAMED_CONTROLS} }})(); a.remove(); l.remove(); c.remove(); return bad;"
            ),
            vec![],
        )
        .await
        .unwrap();
    let probe = probe.to_string();
    assert!(probe.contains("ui-test-unnamed"), "{probe}");
    assert!(!probe.contains("ui-test-named"), "{probe}");
    let mut unnamed = Vec::new();
    let mut controls = 0;
    for page in [
        "alerts",
        "graph",
        "rules",
        "targets",
        "probes",
        "deliveries",
        "autoheal",
        "silences",
        "tenants",
        "status",
    ] {
        open(&b, &fx.base, page, page).await.unwrap();
        let n = b
            .execute(
                "return document.querySelectorAll('input, select, textarea, button, a[href]').length;",
                vec![],
            )
            .await
            .unwrap();
        controls += n.as_u64().unwrap_or(0);
        let bad = b.execute(UNNAMED_CONTROLS, vec![]).await.unwrap();
        for x in bad.as_array().into_iter().flatten() {
            unnamed.push(format!("{page}: {}", x.as_str().unwrap_or_default()));
        }
    }
    // The header alone has the token box and its buttons, plus the nav.
    assert!(
        controls >= 8 * 8,
        "too few controls found ({controls}): pages not rendered?"
    );
    assert!(
        unnamed.is_empty(),
        "controls without an accessible name:\n{}",
        unnamed.join("\n")
    );
    b.quit().await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_page_refreshes_live_without_reload() {
    let _one = crate::common::webdriver::ONE_BROWSER.lock().await;
    let Some(b) = browser("alerts_page_refreshes_live_without_reload").await else {
        return;
    };
    let fx = Fixture::start().await;
    fx.firing().await;
    login(&b, &fx.base, OPERATOR).await.unwrap();
    open(&b, &fx.base, "alerts", "alerts").await.unwrap();
    b.wait_element(T, &css_alert(ALWAYS)).await.unwrap();
    assert!(!has(&b, &css_alert("UiFixtureSwitch")).await);
    // A marker a reload would wipe.
    b.execute("window.__uiTestNoReload = 'still here';", vec![])
        .await
        .unwrap();

    // A rule starts firing: the fixture target flips its switch.
    fx.switch.store(true, Ordering::SeqCst);
    b.wait_element(Duration::from_secs(30), &css_alert("UiFixtureSwitch"))
        .await
        .unwrap();
    let marker = b
        .execute("return window.__uiTestNoReload;", vec![])
        .await
        .unwrap();
    assert_eq!(marker, "still here", "the page was reloaded");
    shot(&b, "alerts-live").await;
    b.quit().await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshots_of_every_page() {
    let _one = crate::common::webdriver::ONE_BROWSER.lock().await;
    let Some(b) = browser("screenshots_of_every_page").await else {
        return;
    };
    let fx = Fixture::start().await;
    fx.firing().await;
    fx.api_until("/api/v1/deliveries", |v| {
        v["data"]["deliveries"]
            .as_array()
            .is_some_and(|d| !d.is_empty())
    })
    .await;

    // Without a token the pages say why they are empty.
    b.goto(&format!("{}/#/alerts", fx.base)).await.unwrap();
    let msg = b
        .wait_script(
            T,
            "const m = document.querySelector('#auth-message'); return m && m.textContent.trim();",
        )
        .await
        .unwrap();
    assert!(!msg.as_str().unwrap_or_default().is_empty());
    shot(&b, "no-token").await;

    login(&b, &fx.base, ADMIN).await.unwrap();
    let dir = screenshot_dir();
    let expr = urlencode("rate(http_requests_total[1m])");
    for (route, page) in [
        ("alerts".to_string(), "alerts"),
        (format!("graph?expr={expr}&range=5m"), "graph"),
        ("rules".to_string(), "rules"),
        ("targets".to_string(), "targets"),
        ("probes".to_string(), "probes"),
        ("deliveries".to_string(), "deliveries"),
        ("autoheal".to_string(), "autoheal"),
        ("silences".to_string(), "silences"),
        ("status".to_string(), "status"),
    ] {
        open(&b, &fx.base, &route, page).await.unwrap();
        shot(&b, page).await;
        let f = dir.join(format!("{page}.png"));
        let png = std::fs::read(&f).unwrap();
        assert!(
            png.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{} is a PNG",
            f.display()
        );
    }

    // Dark mode, where chromedriver passes CDP commands through.
    let dark = b
        .cdp(
            "Emulation.setEmulatedMedia",
            serde_json::json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}),
        )
        .await;
    match dark {
        Ok(_) => {
            open(&b, &fx.base, "alerts", "alerts").await.unwrap();
            let dark = b
                .execute(
                    "return matchMedia('(prefers-color-scheme: dark)').matches;",
                    vec![],
                )
                .await
                .unwrap();
            assert_eq!(dark, true);
            // The page follows the scheme: its background is not white.
            let bg = b
                .execute(
                    "return getComputedStyle(document.body).backgroundColor;",
                    vec![],
                )
                .await
                .unwrap();
            assert_ne!(
                bg, "rgb(255, 255, 255)",
                "dark mode keeps a white background"
            );
            shot(&b, "alerts-dark").await;
        }
        Err(e) => eprintln!("no dark screenshot: CDP not available through chromedriver: {e}"),
    }
    eprintln!("ui screenshots in {}", dir.display());
    b.quit().await;
    fx.stop().await;
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// One browser test of the graph page: the browser lock, Chromium, the
/// fixture klaxon and a viewer's token; `None` where Chromium is missing
/// outside CI.
async fn graph_session(
    test: &str,
) -> Option<(tokio::sync::MutexGuard<'static, ()>, Browser, Fixture)> {
    let one = crate::common::webdriver::ONE_BROWSER.lock().await;
    let b = browser(test).await?;
    let fx = Fixture::start().await;
    login(&b, &fx.base, VIEWER).await.unwrap();
    Some((one, b, fx))
}

/// Waits until the expression box's completion list (`list`) shows and
/// returns its entries as `kind:value`.
async fn completions(b: &Browser, list: &str) -> Vec<String> {
    let v = b
        .wait_script(
            T,
            &format!(
                "const l = document.getElementById('{list}');\
                 if (!l || l.hidden) return null;\
                 const x = [...l.querySelectorAll('[data-testid=completion]')].map(li => li.dataset.kind + ':' + li.dataset.value);\
                 return x.length ? x : null;"
            ),
        )
        .await;
    let v = match v {
        Ok(v) => v,
        Err(e) => {
            let state = b
                .execute(
                    "const i = document.querySelector('textarea[aria-controls]'); return [i.value, i.selectionStart, document.activeElement === i];",
                    vec![],
                )
                .await
                .unwrap_or_default();
            panic!("completion list {list}: {e}; input [value, caret, focused]: {state}");
        }
    };
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_string))
        .collect()
}

/// Waits until the completion list `list` holds exactly an entry passing
/// `want` (a JS predicate on `kind:value`) and returns the entries.
async fn completions_with(b: &Browser, list: &str, want: &str) -> Vec<String> {
    let end = Instant::now() + T;
    loop {
        let got = completions(b, list).await;
        let ok = b
            .execute(
                &format!("return arguments[0].some({want});"),
                vec![serde_json::json!(got)],
            )
            .await
            .unwrap();
        if ok == true {
            return got;
        }
        assert!(Instant::now() < end, "{list}: no entry {want} in {got:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn expr_value(b: &Browser, id: &str) -> String {
    b.execute(
        &format!("return document.getElementById('{id}').value;"),
        vec![],
    )
    .await
    .unwrap()
    .as_str()
    .unwrap_or_default()
    .to_string()
}

/// Waits until the fixture target's series are in the TSDB.
async fn fixture_scraped(fx: &Fixture) {
    fx.api_until("/api/v1/query?query=ui_fixture_switch", |v| {
        v["data"]["result"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_expression_box_completes_metrics_functions_labels_values_and_durations() {
    let Some((_one, b, fx)) = graph_session(
        "graph_expression_box_completes_metrics_functions_labels_values_and_durations",
    )
    .await
    else {
        return;
    };
    fixture_scraped(&fx).await;
    open(&b, &fx.base, "graph", "graph").await.unwrap();
    let input = b.one("#expr-input").await.unwrap();
    let list = "expr-complete";

    // A metric name from /api/v1/label/__name__/values; Enter takes it.
    b.send_keys(&input, "ui_fixture_sw").await.unwrap();
    let got = completions_with(&b, list, "x => x === 'metric:ui_fixture_switch'").await;
    assert_eq!(got[0], "metric:ui_fixture_switch", "{got:?}");
    shot(&b, "graph-complete-metric").await;
    b.send_keys(&input, ENTER).await.unwrap();
    assert_eq!(expr_value(&b, "expr-input").await, "ui_fixture_switch");

    // Label names of that metric, then the values of `job` narrowed by
    // match[] to it: the fixture's job, not klaxon's own nor the probe's.
    b.send_keys(&input, "{").await.unwrap();
    let got = completions_with(&b, list, "x => x === 'label:env'").await;
    for want in ["label:job", "label:instance", "label:env"] {
        assert!(got.iter().any(|x| x == want), "{want} in {got:?}");
    }
    assert!(!got.iter().any(|x| x == "label:__name__"), "{got:?}");
    b.send_keys(&input, "job=\"").await.unwrap();
    let got = completions_with(&b, list, "x => x === 'value:fixture'").await;
    assert_eq!(got, ["value:fixture"], "label values narrowed by match[]");
    b.send_keys(&input, ENTER).await.unwrap();
    assert_eq!(
        expr_value(&b, "expr-input").await,
        "ui_fixture_switch{job=\"fixture\""
    );

    // Functions, with their signature.
    b.clear(&input).await.unwrap();
    b.send_keys(&input, "rat").await.unwrap();
    completions_with(&b, list, "x => x === 'function:rate'").await;
    let detail = b
        .execute(
            "const li = document.querySelector('#expr-complete [data-value=rate]'); return li ? li.textContent : '';",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        detail
            .as_str()
            .unwrap_or_default()
            .contains("rate(v range-vector)"),
        "{detail}"
    );
    b.send_keys(&input, ENTER).await.unwrap();
    assert_eq!(expr_value(&b, "expr-input").await, "rate()");

    // Durations inside [..]: a number gets its units.
    b.clear(&input).await.unwrap();
    b.send_keys(&input, "rate(ui_fixture_switch[")
        .await
        .unwrap();
    completions_with(&b, list, "x => x === 'duration:5m'").await;
    b.send_keys(&input, "5").await.unwrap();
    let got = completions_with(&b, list, "x => x === 'duration:5m'").await;
    assert_eq!(
        got.first().map(String::as_str),
        Some("duration:5s"),
        "{got:?}"
    );
    b.send_keys(&input, "\u{E015}").await.unwrap(); // ArrowDown
    b.send_keys(&input, ENTER).await.unwrap();
    assert_eq!(
        expr_value(&b, "expr-input").await,
        "rate(ui_fixture_switch[5m]"
    );
    // With the list closed, Enter runs the query.
    b.send_keys(&input, ")").await.unwrap();
    b.send_keys(&input, ENTER).await.unwrap();
    b.wait_script(
        T,
        "const p = document.querySelector('[data-testid=panel]'); return p.dataset.evaluated === 'graph' && location.hash.includes('g0.expr=rate%28ui_fixture_switch%5B5m%5D%29');",
    )
    .await
    .unwrap();
    b.quit().await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_metric_browser_shows_help_and_type_and_inserts_a_selector() {
    let Some((_one, b, fx)) =
        graph_session("graph_metric_browser_shows_help_and_type_and_inserts_a_selector").await
    else {
        return;
    };
    // A metric of klaxon's own (scraped as job "klaxon") with HELP and TYPE.
    let meta = fx
        .api_until("/api/v1/metadata", |v| {
            v["data"].as_object().is_some_and(|m| {
                m.iter()
                    .any(|(k, x)| k.starts_with("klaxon_") && x[0]["help"] != "")
            })
        })
        .await;
    let (name, md) = meta["data"]
        .as_object()
        .and_then(|m| {
            m.iter().find(|(k, x)| {
                k.starts_with("klaxon_") && x[0]["type"] == "gauge" && x[0]["help"] != ""
            })
        })
        .map(|(k, x)| (k.clone(), x[0].clone()))
        .expect("a klaxon_ gauge with help");
    let help = md["help"].as_str().unwrap_or_default().to_string();
    // More than a step (14 s at 1h) of samples, so the last step has one.
    let enough = format!(
        "/api/v1/query?query={}",
        urlencode(&format!("count_over_time({name}[30s]) > 16"))
    );
    fx.api_until(&enough, |v| {
        v["data"]["result"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
    })
    .await;
    open(&b, &fx.base, "graph", "graph").await.unwrap();
    b.click(&b.one("#metric-browse").await.unwrap())
        .await
        .unwrap();
    b.wait_element(T, "#metric-browser:not([hidden]) [data-testid=metric-item]")
        .await
        .unwrap();
    b.fill("#metric-search", &name).await.unwrap();
    let item = b
        .wait_element(
            T,
            &format!("[data-testid=metric-item][data-metric=\"{name}\"]"),
        )
        .await
        .unwrap();
    let text = b.text(&item).await.unwrap();
    assert!(
        text.contains("gauge") && text.contains(&help),
        "{text:?} lacks type/help {help:?}"
    );
    // Searching by help text finds it too.
    let word = help
        .split_whitespace()
        .max_by_key(|w| w.len())
        .unwrap_or("")
        .to_string();
    b.fill("#metric-search", &word).await.unwrap();
    b.wait_element(
        T,
        &format!("[data-testid=metric-item][data-metric=\"{name}\"]"),
    )
    .await
    .unwrap();
    let pick = b
        .one(&format!(
            "[data-testid=metric-item][data-metric=\"{name}\"] button"
        ))
        .await
        .unwrap();
    b.click(&pick).await.unwrap();
    let job = b
        .wait_element(T, "[data-testid=label-value][data-label=job][value=klaxon]")
        .await
        .unwrap();
    shot(&b, "graph-metric-browser").await;
    b.click(&job).await.unwrap();
    let want = format!("{name}{{job=\"klaxon\"}}");
    let preview = b
        .text(&b.one("#metric-selector").await.unwrap())
        .await
        .unwrap();
    assert_eq!(preview, want);
    b.click(&b.one("#metric-insert").await.unwrap())
        .await
        .unwrap();
    assert_eq!(expr_value(&b, "expr-input").await, want);
    b.click(&b.one("#graph-run").await.unwrap()).await.unwrap();
    let ran = b.wait_script(
        T,
        "const p = document.querySelector('[data-testid=panel]'); const l = [...document.querySelectorAll('#graph-chart path[data-testid=series-line]')];\
         return p.dataset.evaluated === 'graph' && l.length > 0 && l.every(x => x.dataset.series.includes('job=\"klaxon\"'));",
    )
    .await;
    if let Err(e) = ran {
        let page = b
            .execute(
                "return document.querySelector('[data-testid=panel]').innerText;",
                vec![],
            )
            .await
            .unwrap_or_default();
        panic!("{e}\n{page}");
    }
    b.quit().await;
    fx.stop().await;
}

/// `range_input` and `end_input` of panel 0 in the page's URL.
async fn url_range(b: &Browser) -> (String, Option<String>) {
    let v = b
        .execute(
            "const p = new URLSearchParams(location.hash.split('?')[1] || ''); return [p.get('g0.range_input'), p.get('g0.end_input')];",
            vec![],
        )
        .await
        .unwrap();
    (
        v[0].as_str().unwrap_or_default().to_string(),
        v[1].as_str().map(str::to_string),
    )
}

/// The plotted [start, end] of panel 0's chart (`data-start`/`data-end`).
async fn chart_span(b: &Browser) -> f64 {
    let v = b
        .wait_script(
            T,
            "const s = document.querySelector('[data-testid=panel][data-evaluated=graph] #graph-chart svg'); return s ? Number(s.dataset.end) - Number(s.dataset.start) : 0;",
        )
        .await
        .unwrap();
    v.as_f64().unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_drag_zooms_the_range_into_the_url_and_back_and_forward_walk_zooms() {
    let Some((_one, b, fx)) =
        graph_session("graph_drag_zooms_the_range_into_the_url_and_back_and_forward_walk_zooms")
            .await
    else {
        return;
    };
    open(
        &b,
        &fx.base,
        "graph?g0.expr=vector(1)&g0.tab=0&g0.range_input=1h",
        "graph",
    )
    .await
    .unwrap();
    assert_eq!(chart_span(&b).await, 3600.0);
    let overlay = b
        .wait_element(T, "#graph-chart [data-testid=chart-overlay]")
        .await
        .unwrap();
    b.drag(&overlay, (-200, 0), (100, 0)).await.unwrap();
    b.wait_script(T, "return location.hash.includes('g0.end_input=');")
        .await
        .unwrap();
    let (zoomed, end) = url_range(&b).await;
    assert_ne!(zoomed, "1h");
    let span = b
        .wait_script(
            T,
            "const s = document.querySelector('[data-testid=panel][data-evaluated=graph] #graph-chart svg'); const d = s ? Number(s.dataset.end) - Number(s.dataset.start) : 0; return d > 0 && d < 3600 ? d : 0;",
        )
        .await
        .unwrap()
        .as_f64()
        .unwrap_or(0.0);
    // 300 px of a plot about 1150 px wide: a quarter of the hour, roughly.
    assert!((300.0..2400.0).contains(&span), "zoomed span {span}");
    let end = end.expect("end_input after a zoom");
    assert_eq!(
        b.execute(
            "return document.getElementById('graph-range').value;",
            vec![]
        )
        .await
        .unwrap(),
        zoomed.as_str()
    );
    shot(&b, "graph-zoomed").await;

    // A reload of the shared URL shows the same range.
    b.execute(
        "document.body.dataset.loaded = 'test-navigating'; location.reload();",
        vec![],
    )
    .await
    .unwrap();
    b.wait_script(
        T,
        "return document.body.dataset.page === 'graph' && document.body.dataset.loaded === 'true';",
    )
    .await
    .unwrap();
    assert_eq!(chart_span(&b).await, span);
    assert_eq!(url_range(&b).await, (zoomed.clone(), Some(end.clone())));
    assert_eq!(
        b.execute("return document.getElementById('graph-end').value;", vec![])
            .await
            .unwrap(),
        end.as_str()
    );

    // Back and forward through zooms (a second zoom, then back twice).
    let overlay = b
        .wait_element(T, "#graph-chart [data-testid=chart-overlay]")
        .await
        .unwrap();
    b.drag(&overlay, (-100, 0), (100, 0)).await.unwrap();
    let second = b
        .wait_script(
            T,
            &format!("const p = new URLSearchParams(location.hash.split('?')[1]); const r = p.get('g0.range_input'); return r !== '{zoomed}' ? r : null;"),
        )
        .await
        .unwrap();
    b.click(&b.one("#graph-zoom-back").await.unwrap())
        .await
        .unwrap();
    b.wait_script(
        T,
        &format!("return location.hash.includes('g0.range_input={zoomed}&');"),
    )
    .await
    .unwrap();
    assert_eq!(url_range(&b).await.1, Some(end.clone()));
    // The reload started a new history: back stops at the first zoom.
    assert_eq!(
        b.execute(
            "return document.getElementById('graph-zoom-back').disabled;",
            vec![]
        )
        .await
        .unwrap(),
        true
    );
    b.click(&b.one("#graph-zoom-forward").await.unwrap())
        .await
        .unwrap();
    b.wait_script(
        T,
        &format!(
            "return new URLSearchParams(location.hash.split('?')[1]).get('g0.range_input') === {second};"
        ),
    )
    .await
    .unwrap();
    b.quit().await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_legend_click_isolates_a_series_and_stacked_adds_them_up() {
    let Some((_one, b, fx)) =
        graph_session("graph_legend_click_isolates_a_series_and_stacked_adds_them_up").await
    else {
        return;
    };
    let expr = r#"label_replace(vector(1), "s", "a", "", "") or label_replace(vector(2), "s", "b", "", "")"#;
    open(
        &b,
        &fx.base,
        &format!(
            "graph?g0.expr={}&g0.tab=0&g0.range_input=5m",
            urlencode(expr)
        ),
        "graph",
    )
    .await
    .unwrap();
    let lines = "return [...document.querySelectorAll('#graph-chart path[data-testid=series-line]')].map(p => p.dataset.series + '=' + p.dataset.last);";
    let two = b
        .wait_script(
            T,
            &format!(
                "{} ",
                lines.replace("return ", "const x = ") + "; return x.length === 2 ? x : null;"
            ),
        )
        .await
        .unwrap();
    assert_eq!(two, serde_json::json!(["{s=\"a\"}=1", "{s=\"b\"}=2"]));
    // Click isolates b; clicking it again shows both.
    let b_item = b
        .one("[data-testid=legend-item][data-series='{s=\"b\"}'] button")
        .await
        .unwrap();
    b.click(&b_item).await.unwrap();
    assert_eq!(
        b.execute(lines, vec![]).await.unwrap(),
        serde_json::json!(["{s=\"b\"}=2"])
    );
    assert_eq!(
        b.execute(
            "return document.querySelector('[data-testid=legend-item][data-series=\\'{s=\"a\"}\\']').dataset.hidden;",
            vec![]
        )
        .await
        .unwrap(),
        "true"
    );
    shot(&b, "graph-isolated").await;
    b.click(&b_item).await.unwrap();
    assert_eq!(
        b.execute(lines, vec![])
            .await
            .unwrap()
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // Stacked: b is drawn on top of a (1 + 2), and the URL says so.
    b.click(&b.one("#graph-stacked").await.unwrap())
        .await
        .unwrap();
    let stacked = b
        .wait_script(
            T,
            &format!("{} ", lines.replace("return ", "const x = ") + "; const s = document.querySelector('#graph-chart svg'); return s && s.dataset.stacked === 'true' && location.hash.includes('g0.stacked=1') ? x : null;"),
        )
        .await
        .unwrap();
    assert_eq!(stacked, serde_json::json!(["{s=\"a\"}=1", "{s=\"b\"}=3"]));
    shot(&b, "graph-stacked").await;
    b.quit().await;
    fx.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_bounds_points_per_series_and_refuses_over_ten_thousand_series() {
    let Some((_one, b, fx)) =
        graph_session("graph_bounds_points_per_series_and_refuses_over_ten_thousand_series").await
    else {
        return;
    };
    // One day at a 1 s step is 86,400 points: the step is raised to stay
    // within Prometheus' 11,000, and the page says so.
    open(
        &b,
        &fx.base,
        "graph?g0.expr=vector(1)&g0.tab=0&g0.range_input=1d&g0.step_input=1",
        "graph",
    )
    .await
    .unwrap();
    let note = b
        .wait_script(
            T,
            "const n = document.getElementById('graph-step-note'); const p = document.querySelector('[data-testid=panel]'); return n && p.dataset.evaluated === 'graph' && n.textContent;",
        )
        .await
        .unwrap();
    assert!(
        note.as_str().unwrap_or_default().contains("11,000"),
        "{note}"
    );
    assert_eq!(
        b.execute("return document.querySelectorAll('#graph-chart path[data-testid=series-line]').length;", vec![])
            .await
            .unwrap(),
        1
    );
    // 10,801 points of one series are more than the plot is wide: drawn
    // thinned, with a note.
    b.fill("#graph-range", "3h").await.unwrap();
    b.click(&b.one("#graph-run").await.unwrap()).await.unwrap();
    let thinned = b
        .wait_script(
            T,
            "const n = document.querySelector('#graph-chart [data-testid=chart-thinned]'); return !document.getElementById('graph-step-note') && n && n.textContent;",
        )
        .await
        .unwrap();
    assert!(
        thinned
            .as_str()
            .unwrap_or_default()
            .contains("10,801 points"),
        "{thinned}"
    );

    // 500 series: drawn on one canvas, not as 500 SVG paths, with a legend
    // that builds only the rows in sight; a legend click still isolates a
    // series, and hovering lists the nearest values (the answer is made in
    // the page, as below).
    b.execute(
        "const orig = window.fetch; window.__origFetch = orig; window.fetch = async (u, init) => {\
           if (!String(u).includes('query_range')) return orig(u, init);\
           const q = new URL(String(u), location.href).searchParams; const start = Number(q.get('start')); const step = Number(q.get('step'));\
           const result = []; for (let i = 0; i < 500; i++) { const values = [];\
             for (let k = 0; k <= 60; k++) values.push([start + k * step, String(i + k)]);\
             result.push({metric: {__name__: 'm', i: String(i).padStart(3, '0')}, values}); }\
           return new Response(JSON.stringify({status: 'success', data: {resultType: 'matrix', result}}), {headers: {'content-type': 'application/json'}}); };",
        vec![],
    )
    .await
    .unwrap();
    b.fill("#graph-step", "180").await.unwrap();
    b.click(&b.one("#graph-run").await.unwrap()).await.unwrap();
    let drawn = b
        .wait_script(
            T,
            "const c = document.querySelector('#graph-chart canvas[data-testid=chart-canvas]'); return c && c.dataset.lines === '500' ? [document.querySelectorAll('#graph-chart path[data-testid=series-line]').length, document.querySelectorAll('#graph-chart [data-testid=legend-item]').length] : null;",
        )
        .await
        .unwrap();
    let legend_rows = drawn[1].as_u64().unwrap_or(0);
    assert_eq!(drawn[0], 0, "{drawn}");
    assert!((1..100).contains(&legend_rows), "{drawn}");
    // The canvas has pixels of the lines (not only a blank raster).
    let inked = b
        .execute(
            "const c = document.querySelector('#graph-chart canvas'); const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data; let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n;",
            vec![],
        )
        .await
        .unwrap();
    assert!(inked.as_u64().unwrap_or(0) > 1000, "{inked}");
    // Scrolling the legend to its end builds the last rows.
    let last = b
        .wait_script(
            T,
            "const l = document.querySelector('#graph-chart .legend'); l.scrollTop = l.scrollHeight; l.dispatchEvent(new Event('scroll')); return document.querySelector('[data-testid=legend-item][data-index=\"499\"]') ? 'yes' : null;",
        )
        .await
        .unwrap();
    assert_eq!(last, "yes");
    b.click(
        &b.one("[data-testid=legend-item][data-index=\"499\"] button")
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        b.execute(
            "return document.querySelector('#graph-chart canvas').dataset.lines;",
            vec![]
        )
        .await
        .unwrap(),
        "1"
    );
    b.click(
        &b.one("[data-testid=legend-item][data-index=\"499\"] button")
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    let tip = b
        .wait_script(
            T,
            "const o = document.querySelector('#graph-chart [data-testid=chart-overlay]'); const r = o.getBoundingClientRect();\
             o.dispatchEvent(new PointerEvent('pointermove', {clientX: r.left + r.width / 2, clientY: r.top + 5, bubbles: true}));\
             const t = document.querySelector('#graph-chart .tooltip'); return document.querySelector('#graph-chart canvas').dataset.lines === '500' && t && !t.hidden ? t.textContent : null;",
        )
        .await
        .unwrap();
    assert!(
        tip.as_str().unwrap_or_default().contains("and 488 more"),
        "{tip}"
    );
    b.execute("window.fetch = window.__origFetch;", vec![])
        .await
        .unwrap();

    // An answer with 10,001 series is refused with a message (the answer
    // is made in the page: the TSDB here has no 10k series).
    b.execute(
        "const orig = window.fetch; window.fetch = async (u, init) => {\
           if (!String(u).includes('query_range')) return orig(u, init);\
           const result = []; for (let i = 0; i < 10001; i++) result.push({metric: {__name__: 'm', i: String(i)}, values: [[1, '1']]});\
           return new Response(JSON.stringify({status: 'success', data: {resultType: 'matrix', result}}), {headers: {'content-type': 'application/json'}}); };",
        vec![],
    )
    .await
    .unwrap();
    b.click(&b.one("#graph-run").await.unwrap()).await.unwrap();
    let refused = b
        .wait_script(
            T,
            "const r = document.getElementById('graph-refused'); return r && r.textContent;",
        )
        .await
        .unwrap();
    assert!(
        refused
            .as_str()
            .unwrap_or_default()
            .contains("10,001 series"),
        "{refused}"
    );
    assert_eq!(
        b.execute(
            "return document.querySelectorAll('#graph-chart path').length;",
            vec![]
        )
        .await
        .unwrap(),
        0
    );
    b.quit().await;
    fx.stop().await;
}

/// Panel 0's exemplar markers as the page drew them, each with how far (in
/// px) it sits from where its time and value belong on the chart's axes
/// (time from the plot's span, value from two labelled ticks), and the
/// stroke of the graph series it is drawn on.
const MARKERS: &str = r#"
const svg = document.querySelector('[data-testid=panel][data-evaluated=graph] #graph-chart svg');
if (!svg) return null;
const o = svg.querySelector('[data-testid=chart-overlay]');
const ox = Number(o.getAttribute('x')), ow = Number(o.getAttribute('width'));
const s0 = Number(svg.dataset.start), s1 = Number(svg.dataset.end);
const ticks = [...svg.querySelectorAll('.axis text')].filter(t => Number(t.getAttribute('x')) === ox - 6).map(t => [Number(t.textContent), Number(t.getAttribute('y')) - 4]);
const a = ticks[0], b = ticks[ticks.length - 1];
return [...svg.querySelectorAll('[data-testid=exemplar]')].map(m => {
  const ts = Number(m.dataset.ts), v = Number(m.dataset.value);
  const line = svg.querySelector(`path[data-testid=series-line][data-series="${CSS.escape(m.dataset.graphSeries)}"]`);
  return {
    trace: m.dataset.traceId, ts, value: m.dataset.value, graph: m.dataset.graphSeries,
    fill: m.getAttribute('fill'), stroke: line ? line.getAttribute('stroke') : null,
    dx: Math.abs(Number(m.dataset.x) - (ox + (ts - s0) / (s1 - s0) * ow)),
    dy: Math.abs(Number(m.dataset.y) - (a[1] + (v - a[0]) * (b[1] - a[1]) / (b[0] - a[0]))),
  };
});
"#;

/// Waits until panel 0 shows `n` exemplar markers and returns them
/// ([`MARKERS`]).
async fn markers(b: &Browser, n: usize) -> Vec<Value> {
    let got = b
        .wait_script(
            T,
            &format!(
                "const x = (() => {{ {MARKERS} }})(); return x && x.length === {n} ? x : null;"
            ),
        )
        .await;
    match got {
        Ok(v) => v.as_array().cloned().unwrap_or_default(),
        Err(e) => {
            shot(b, "graph-exemplars-failed").await;
            let now = b
                .execute(&format!("return (() => {{ {MARKERS} }})();"), vec![])
                .await
                .unwrap_or_default();
            panic!("{n} exemplar markers: {e}; drawn: {now}");
        }
    }
}

/// The trace id the visible exemplar tooltip shows ('' when none).
const TIP_TRACE: &str = "const t = document.querySelector('#graph-chart .tooltip'); const c = t && !t.hidden && t.querySelector('[data-testid=exemplar-trace-id]'); return c ? c.textContent : '';";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graph_shows_exemplars_on_their_series_with_trace_ids() {
    let Some((_one, b, fx)) =
        graph_session("graph_shows_exemplars_on_their_series_with_trace_ids").await
    else {
        return;
    };
    let sel = "ui_fixture_latency_seconds_bucket";
    fx.api_until(&format!("/api/v1/query_exemplars?query={sel}"), |v| {
        v["data"].as_array().is_some_and(|a| {
            a.len() == 2
                && a.iter()
                    .all(|s| s["exemplars"].as_array().is_some_and(|e| e.len() >= 6))
        })
    })
    .await;
    // A fixed range that has ended, so the page and this test see the same
    // exemplars.
    let end = klaxon::model::now_millis() / 1000 - 1;
    let start = end - 60;
    let api = fx
        .api(
            &format!("/api/v1/query_exemplars?query={sel}&start={start}&end={end}"),
            VIEWER,
        )
        .await;
    let mut want: Vec<(String, f64, String)> = Vec::new();
    for s in api["data"].as_array().into_iter().flatten() {
        for e in s["exemplars"].as_array().into_iter().flatten() {
            want.push((
                e["labels"]["trace_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                e["timestamp"].as_f64().unwrap_or(f64::NAN),
                e["value"].as_str().unwrap_or_default().to_string(),
            ));
        }
    }
    want.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(want.len() >= 6, "{api}");
    let got_set = |ms: &[Value]| {
        let mut g: Vec<(String, f64, String)> = ms
            .iter()
            .map(|m| {
                (
                    m["trace"].as_str().unwrap_or_default().to_string(),
                    m["ts"].as_f64().unwrap_or(f64::NAN),
                    m["value"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect();
        g.sort_by(|a, b| a.0.cmp(&b.0));
        g
    };
    // Each marker where its time and value belong, in the colour of the
    // series it was recorded on.
    let placed = |ms: &[Value], graph: &dyn Fn(&str) -> String| {
        for m in ms {
            let trace = m["trace"].as_str().unwrap_or_default();
            assert_eq!(m["graph"], graph(trace), "{m}");
            assert!(m["fill"].is_string() && m["fill"] == m["stroke"], "{m}");
            assert!(m["dx"].as_f64().is_some_and(|d| d <= 0.1), "{m}");
            assert!(m["dy"].as_f64().is_some_and(|d| d <= 0.6), "{m}");
        }
    };
    let expr = format!("rate({sel}[10s])");
    let route = format!(
        "graph?g0.expr={}&g0.tab=0&g0.range_input=1m&g0.end_input={end}",
        urlencode(&expr)
    );
    open(&b, &fx.base, &route, "graph").await.unwrap();
    b.wait_script(
        T,
        "return document.querySelector('[data-testid=panel]').dataset.evaluated === 'graph';",
    )
    .await
    .unwrap();
    assert_eq!(
        b.execute(
            "return document.querySelectorAll('[data-testid=exemplar]').length;",
            vec![]
        )
        .await
        .unwrap(),
        0,
        "no exemplars unless asked for"
    );
    // The toggle draws them and goes into the URL.
    b.click(&b.one("#graph-exemplars").await.unwrap())
        .await
        .unwrap();
    let ms = markers(&b, want.len()).await;
    assert_eq!(got_set(&ms), want);
    // rate() keeps every label but the name: each exemplar is on the
    // series of its bucket (compared without the fixture's instance).
    let graph_of = |trace: &str| {
        let le = if trace.starts_with("fast-") {
            "0.1"
        } else {
            "0.5"
        };
        format!("{{job=\"fixture-exemplars\", le=\"{le}\"}}")
    };
    placed(&without_instance(&ms), &graph_of);
    assert!(
        b.execute("return location.hash;", vec![])
            .await
            .unwrap()
            .as_str()
            .unwrap_or_default()
            .contains("g0.show_exemplars=1"),
        "the toggle is in the URL"
    );
    let info = b
        .execute(
            "return document.getElementById('graph-info').textContent;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        info.as_str()
            .unwrap_or_default()
            .contains(&format!("{} exemplars", want.len())),
        "{info}"
    );
    shot(&b, "graph-exemplars").await;

    // Hover shows the exemplar's trace id and its series.
    let third = b
        .one("#graph-chart [data-testid=exemplar][data-k='2']")
        .await
        .unwrap();
    let third_trace = b
        .attr(&third, "data-trace-id")
        .await
        .unwrap()
        .unwrap_or_default();
    b.hover(&third).await.unwrap();
    let shown = b
        .wait_script(
            T,
            &format!("const x = (() => {{ {TIP_TRACE} }})(); return x || null;"),
        )
        .await
        .unwrap();
    assert_eq!(shown, third_trace.as_str());
    let series = b
        .execute(
            "return document.querySelector('#graph-chart .tooltip [data-testid=exemplar-series]').textContent;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        series.as_str().unwrap_or_default().starts_with(sel),
        "the series the exemplar was recorded on: {series}"
    );
    shot(&b, "graph-exemplar-hover").await;

    // Keyboard: one tab stop, arrows move, Enter pins, Escape closes
    // (the mouse away, so it shows nothing of its own).
    b.hover(&b.one("#graph-info").await.unwrap()).await.unwrap();
    b.execute(
        "document.querySelector('#graph-chart [data-testid=exemplar][tabindex=\"0\"]').focus();",
        vec![],
    )
    .await
    .unwrap();
    let first = marker_trace(&b, 0).await;
    assert_eq!(b.execute(TIP_TRACE, vec![]).await.unwrap(), first.as_str());
    b.press("\u{E014}").await.unwrap(); // ArrowRight
    let second = marker_trace(&b, 1).await;
    let focused = b
        .execute(
            "const a = document.activeElement; return [a.dataset.k, a.getAttribute('tabindex')];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(focused, serde_json::json!(["1", "0"]));
    assert_eq!(b.execute(TIP_TRACE, vec![]).await.unwrap(), second.as_str());
    b.press(ENTER).await.unwrap();
    b.wait_script(
        T,
        "const t = document.querySelector('#graph-chart .tooltip'); return t && !t.hidden && t.classList.contains('pinned') && !!t.querySelector('.tip-close');",
    )
    .await
    .unwrap();
    shot(&b, "graph-exemplar-pinned").await;
    b.press("\u{E00C}").await.unwrap(); // Escape
    b.wait_script(
        T,
        "return document.querySelector('#graph-chart .tooltip').hidden;",
    )
    .await
    .unwrap();
    // A click pins too.
    b.click(&third).await.unwrap();
    b.wait_script(
        T,
        "const t = document.querySelector('#graph-chart .tooltip'); return t && !t.hidden && t.classList.contains('pinned');",
    )
    .await
    .unwrap();
    assert_eq!(
        b.execute(TIP_TRACE, vec![]).await.unwrap(),
        third_trace.as_str()
    );
    // The pinned details take the pointer: a click selects the whole trace
    // id, ready to copy.
    b.click(
        &b.one("#graph-chart .tooltip [data-testid=exemplar-trace-id]")
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(
        b.execute("return window.getSelection().toString();", vec![])
            .await
            .unwrap(),
        third_trace.as_str()
    );
    // Every marker has an accessible name.
    let unnamed = b.execute(UNNAMED_CONTROLS, vec![]).await.unwrap();
    assert_eq!(unnamed, serde_json::json!([]), "{unnamed}");

    // A reload keeps the toggle (it is in the URL); stacked draws them at
    // the same places.
    b.execute(
        "document.body.dataset.loaded = 'test-navigating'; location.reload();",
        vec![],
    )
    .await
    .unwrap();
    b.wait_script(
        T,
        "return document.body.dataset.page === 'graph' && document.body.dataset.loaded === 'true';",
    )
    .await
    .unwrap();
    assert_eq!(
        b.execute(
            "return document.getElementById('graph-exemplars').checked;",
            vec![]
        )
        .await
        .unwrap(),
        true
    );
    markers(&b, want.len()).await;
    b.click(&b.one("#graph-stacked").await.unwrap())
        .await
        .unwrap();
    b.wait_script(
        T,
        "const s = document.querySelector('[data-testid=panel][data-evaluated=graph] #graph-chart svg'); return s && s.dataset.stacked === 'true';",
    )
    .await
    .unwrap();
    let stacked = markers(&b, want.len()).await;
    assert_eq!(got_set(&stacked), want);
    placed(&without_instance(&stacked), &graph_of);
    shot(&b, "graph-exemplars-stacked").await;

    // An aggregate over the buckets: every exemplar is on its one series.
    let q = format!("histogram_quantile(0.9, sum by (le) ({expr}))");
    open(
        &b,
        &fx.base,
        &format!(
            "graph?g0.expr={}&g0.tab=0&g0.range_input=1m&g0.end_input={end}&g0.show_exemplars=1",
            urlencode(&q)
        ),
        "graph",
    )
    .await
    .unwrap();
    let agg = markers(&b, want.len()).await;
    placed(&agg, &|_| "{}".to_string());

    // A graph without exemplars says nothing more.
    b.fill("#expr-input", "ui_fixture_switch").await.unwrap();
    b.click(&b.one("#graph-run").await.unwrap()).await.unwrap();
    let quiet = b
        .wait_script(
            T,
            "const p = document.querySelector('[data-testid=panel]');\
             if (p.dataset.evaluated !== 'graph' || !document.querySelector('#graph-chart path[data-testid=series-line]')) return null;\
             return [document.querySelectorAll('[data-testid=exemplar]').length,\
               document.querySelector('[data-testid=exemplars-not-drawn]').hidden,\
               document.getElementById('graph-exemplars-warning').hidden,\
               document.getElementById('graph-info').textContent.includes('exemplar')];",
        )
        .await
        .unwrap();
    assert_eq!(quiet, serde_json::json!([0, true, true, false]));

    // The exemplar query failing is a warning; the chart is still drawn.
    run_with_exemplars(
        &b,
        "return new Response(JSON.stringify({status: 'error', errorType: 'internal', error: 'exemplar store on fire'}), {status: 500, headers: {'content-type': 'application/json'}});",
    )
    .await;
    let warned = b
        .wait_script(
            T,
            "const w = document.getElementById('graph-exemplars-warning'); const p = document.querySelector('[data-testid=panel]');\
             return p.dataset.evaluated === 'graph' && !w.hidden && document.querySelector('#graph-chart path[data-testid=series-line]') ? w.textContent : null;",
        )
        .await
        .unwrap();
    assert!(
        warned
            .as_str()
            .unwrap_or_default()
            .contains("exemplar store on fire"),
        "{warned}"
    );
    assert!(b
        .find("#graph-error:not([hidden])")
        .await
        .unwrap()
        .is_none());

    // 100,000 exemplars (Prometheus' default store size) on one series:
    // 500 drawn, the highest among them, and the rest counted.
    run_with_exemplars(
        &b,
        "const q = new URL(String(u), location.href).searchParams; const s = Number(q.get('start')), e = Number(q.get('end'));\
         const exemplars = []; for (let k = 0; k < 100000; k++) exemplars.push({labels: {trace_id: 't' + k}, value: String(k === 77777 ? 5 : (k % 97) / 100), timestamp: s + (e - s) * k / 100000});\
         return new Response(JSON.stringify({status: 'success', data: [{seriesLabels: {__name__: 'ui_fixture_switch', env: 'test', instance: 'x', job: 'fixture'}, exemplars}]}), {headers: {'content-type': 'application/json'}});",
    )
    .await;
    let capped = b
        .wait_script(
            T,
            "const n = document.querySelector('[data-testid=exemplars-not-drawn]'); const m = document.querySelectorAll('[data-testid=exemplar]');\
             if (!n || n.hidden) return null;\
             const a = performance.getEntriesByName('graph-answer').pop(), d = performance.getEntriesByName('graph-drawn').pop();\
             return [m.length, n.textContent, [...m].some(x => x.dataset.traceId === 't77777'), d && a ? d.startTime - a.startTime : -1];",
        )
        .await
        .unwrap();
    assert_eq!(capped[0], 500, "{capped}");
    assert!(
        capped[1]
            .as_str()
            .unwrap_or_default()
            .contains("99,500 more exemplars not drawn"),
        "{capped}"
    );
    assert_eq!(capped[2], true, "the outlier is kept: {capped}");
    eprintln!(
        "100,000 exemplars: chart with 500 markers drawn in {} ms after the answer",
        capped[3]
    );
    shot(&b, "graph-exemplars-capped").await;

    // At phone width a pinned exemplar does not make the page scroll
    // sideways.
    b.set_window_size(375, 800).await.unwrap();
    // A fresh page: the answers made up above are gone.
    b.goto("about:blank").await.unwrap();
    open(
        &b,
        &fx.base,
        &format!("{route}&g0.show_exemplars=1"),
        "graph",
    )
    .await
    .unwrap();
    markers(&b, want.len()).await;
    let last = b
        .one(&format!(
            "#graph-chart [data-testid=exemplar][data-k='{}']",
            want.len() - 1
        ))
        .await
        .unwrap();
    b.click(&last).await.unwrap();
    let widths = b
        .wait_script(
            T,
            "const t = document.querySelector('#graph-chart .tooltip'); if (!t || t.hidden) return null;\
             return [document.scrollingElement.scrollWidth, window.innerWidth];",
        )
        .await
        .unwrap();
    let (sw, iw) = (
        widths[0].as_f64().unwrap_or(f64::MAX),
        widths[1].as_f64().unwrap_or(0.0),
    );
    assert!(
        sw <= iw + 1.0,
        "pinned exemplar at 375 px: scrollWidth {sw} > innerWidth {iw}"
    );
    shot(&b, "phone-graph-exemplar").await;
    b.quit().await;
    fx.stop().await;
}

/// Runs panel 0 again with the page's `query_exemplars` requests answered
/// by `answer` (the body of an async function of the request URL `u`);
/// other requests go to klaxon.
async fn run_with_exemplars(b: &Browser, answer: &str) {
    b.execute(
        &format!(
            "const orig = window.fetch; window.fetch = async (u, init) => {{\
               if (!String(u).includes('query_exemplars')) return orig(u, init); {answer} }};\
             performance.clearMarks();"
        ),
        vec![],
    )
    .await
    .unwrap();
    b.click(&b.one("#graph-run").await.unwrap()).await.unwrap();
}

/// `markers` with the `instance` label taken out of their graph series.
fn without_instance(ms: &[Value]) -> Vec<Value> {
    let re = regex::Regex::new(r#"instance="[^"]*", "#).expect("regex");
    ms.iter()
        .map(|m| {
            let mut m = m.clone();
            let g = re
                .replace(m["graph"].as_str().unwrap_or_default(), "")
                .to_string();
            m["graph"] = Value::String(g);
            m
        })
        .collect()
}

/// The trace id of marker `k` of panel 0.
async fn marker_trace(b: &Browser, k: usize) -> String {
    b.execute(
        &format!("return document.querySelector(\"#graph-chart [data-testid=exemplar][data-k='{k}']\").dataset.traceId;"),
        vec![],
    )
    .await
    .unwrap()
    .as_str()
    .unwrap_or_default()
    .to_string()
}
