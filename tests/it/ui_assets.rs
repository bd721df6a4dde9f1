//! The web UI as the server delivers it (no browser here; the end-to-end
//! browser tests live on their own branch): `/` and every asset reachable
//! from it by `src`/`href` and JS `import`, with content types, CSP and
//! caching; unknown assets 404; `whoami` per role; the probes results API;
//! the status APIs the status page reads.

use crate::probe_support;

use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

fn sha(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn start(extra: &str) -> (klaxon::app::Running, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!("storage:\n  path: {}\n{extra}", dir.path().display());
    let cfg = klaxon::settings::load_str(&yaml, "ui.yml").unwrap();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr);
    (app, base, dir)
}

const AUTH: &str = "auth:\n  anonymous_role: none\n  tokens:\n";

fn auth_section() -> String {
    format!(
        "{AUTH}    - {{name: vic, token_sha256: {}, roles: [viewer]}}\n    - {{name: olga, token_sha256: {}, roles: [operator]}}\n    - {{name: ada, token_sha256: {}, roles: [viewer, admin]}}\n",
        sha("tok-viewer"),
        sha("tok-operator"),
        sha("tok-admin")
    )
}

/// Asset references in index.html: `src="ui/..."` and `href="ui/..."`,
/// relative so they follow a route prefix; returned as served paths.
fn html_refs(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let Some(end) = rest.find('"') else { break };
            let v = &rest[..end];
            if v.starts_with("ui/") {
                out.push(format!("/{v}"));
            }
            assert!(
                !v.starts_with("/ui/"),
                "absolute asset path {v} breaks under --web.route-prefix"
            );
            rest = &rest[end..];
        }
    }
    out
}

/// Module specifiers of a JS file's static imports: `import ... from '...'`
/// and `import '...'` (single or double quotes), comments skipped.
fn js_imports(src: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_import = false;
    for line in src.lines() {
        let t = line.trim_start();
        if t.starts_with("//") {
            continue;
        }
        if t.starts_with("import ") || t.starts_with("import{") {
            in_import = true;
        }
        if !in_import {
            continue;
        }
        // The specifier is the last quoted string of the statement.
        if t.contains(" from ") || t.starts_with("import '") || t.starts_with("import \"") {
            let q = t.rfind(['\'', '"']);
            let spec = q.and_then(|end| {
                let quote = t.as_bytes()[end] as char;
                t[..end]
                    .rfind(quote)
                    .map(|start| t[start + 1..end].to_string())
            });
            if let Some(s) = spec {
                out.push(s);
            }
            in_import = false;
        }
    }
    out
}

/// `spec` relative to the module at URL path `from` (`/ui/pages/a.js`).
fn resolve(from: &str, spec: &str) -> String {
    assert!(
        spec.starts_with("./") || spec.starts_with("../") || spec.starts_with('/'),
        "bare import {spec:?} in {from}: there is no bundler"
    );
    if spec.starts_with('/') {
        return spec.to_string();
    }
    let mut parts: Vec<&str> = from.split('/').collect();
    parts.pop();
    for seg in spec.split('/') {
        match seg {
            "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    parts.join("/")
}

fn content_type_for(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("js") => "text/javascript",
        Some("css") => "text/css",
        Some("html") => "text/html",
        Some("svg") => "image/svg+xml",
        other => panic!("unexpected asset type {other:?} for {path}"),
    }
}

#[test]
fn import_parser_and_resolver() {
    let src = "// import x from './no.js';\nimport { a,\n  b } from '../lib/dom.js';\nimport * as p from \"./pages/alerts.js\";\nimport './side.js';\nconst s = 'import y from \"./z.js\"';\n";
    assert_eq!(
        js_imports(src),
        vec!["../lib/dom.js", "./pages/alerts.js", "./side.js"]
    );
    assert_eq!(
        resolve("/ui/pages/alerts.js", "../lib/dom.js"),
        "/ui/lib/dom.js"
    );
    assert_eq!(resolve("/ui/app.js", "./pages/a.js"), "/ui/pages/a.js");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn index_and_every_referenced_asset_are_served() {
    let (app, base, _d) = start(&auth_section()).await;
    let c = reqwest::Client::new();
    // No token: the files are public (the data is not).
    let r = c.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
    assert!(csp.contains("default-src 'none'"));
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let html = r.text().await.unwrap();
    assert!(
        !html.contains("<script>") && !html.contains("style="),
        "inline script or style in index.html"
    );

    let mut queue: VecDeque<String> = html_refs(&html).into();
    assert!(queue.contains(&"/ui/app.js".to_string()), "{queue:?}");
    assert!(queue.contains(&"/ui/app.css".to_string()), "{queue:?}");
    let mut seen = BTreeSet::new();
    while let Some(path) = queue.pop_front() {
        if !seen.insert(path.clone()) {
            continue;
        }
        let r = c.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let ct = r.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with(content_type_for(&path)), "{path}: {ct}");
        assert!(
            r.headers().contains_key("content-security-policy"),
            "{path}"
        );
        assert!(r.headers().contains_key("etag"), "{path}");
        let body = r.text().await.unwrap();
        if path.ends_with(".js") {
            for spec in js_imports(&body) {
                queue.push_back(resolve(&path, &spec));
            }
        }
    }
    // Every page module is reachable from app.js.
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
        assert!(seen.contains(&format!("/ui/pages/{page}.js")), "{seen:?}");
    }
    // And every embedded asset is used (no dead file shipped).
    for p in klaxon::api::ui::asset_paths() {
        assert!(
            seen.contains(&format!("/ui/{p}")) || p == "index.html",
            "{p} embedded but never referenced"
        );
    }

    // Unknown assets and traversal attempts: 404.
    for p in [
        "/ui/nope.js",
        "/ui/..%2FCargo.toml",
        "/ui/pages/..%2F..%2FCargo.toml",
        "/ui/%2e%2e%2fsrc%2flib.rs",
        "/ui/pages",
    ] {
        let r = c.get(format!("{base}{p}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "{p}");
    }
    // Revalidation: the ETag answers 304 without a body.
    let r = c.get(format!("{base}/ui/app.js")).send().await.unwrap();
    let tag = r.headers()["etag"].to_str().unwrap().to_string();
    let r = c
        .get(format!("{base}/ui/app.js"))
        .header("If-None-Match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
    assert!(r.bytes().await.unwrap().is_empty());
    // The APIs themselves still need the token.
    let r = c.get(format!("{base}/api/v1/alerts")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    app.stop().await;
}

/// Every file in `ui/` is embedded (a file added there but not to
/// `src/api/ui.rs` would be a 404 in the browser).
#[test]
fn every_file_in_ui_is_embedded() {
    let root = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/ui"));
    let mut on_disk = BTreeSet::new();
    let mut dirs = vec![root.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else {
                let rel = p
                    .strip_prefix(root)
                    .unwrap()
                    .to_string_lossy()
                    .replace('\\', "/");
                on_disk.insert(rel);
            }
        }
    }
    let embedded: BTreeSet<String> = klaxon::api::ui::asset_paths().map(str::to_string).collect();
    assert_eq!(on_disk, embedded);
}

/// The DOM contract the browser tests select on: each id / test id is
/// present in the file that renders it (a rename breaks this test first).
#[test]
fn dom_contract_names_are_present() {
    let read = |p: &str| {
        std::fs::read_to_string(format!("{}/ui/{p}", env!("CARGO_MANIFEST_DIR"))).unwrap()
    };
    let cases: &[(&str, &[&str])] = &[
        (
            "index.html",
            &[
                "id=\"token-input\"",
                "id=\"token-save\"",
                "id=\"token-clear\"",
                "id=\"auth-message\"",
                ">API token<",
                "href=\"#/alerts\"",
                "href=\"#/graph\"",
                "href=\"#/rules\"",
                "href=\"#/targets\"",
                "href=\"#/probes\"",
                "href=\"#/deliveries\"",
                "href=\"#/autoheal\"",
                "href=\"#/tenants\"",
                "href=\"#/silences\"",
                "href=\"#/status\"",
            ],
        ),
        (
            "lib/api.js",
            &["'klaxon.token'", "sessionStorage", "Bearer "],
        ),
        (
            "app.js",
            &[
                "dataset.page = page",
                "dataset.loaded = 'true'",
                "dataset.loaded = 'false'",
            ],
        ),
        (
            "pages/alerts.js",
            &[
                "'alert-filter'",
                "'alert-state'",
                "'alert-group'",
                "'data-testid': 'alert'",
                "'data-alertname'",
                "'data-state'",
                "'data-silenced'",
                "'runbook-link'",
                "'dashboard-link'",
                "'expr-link'",
                "'silence-button'",
                "#/silences?",
                "/api/v1/events/stream",
            ],
        ),
        (
            "pages/graph.js",
            &[
                "'expr-input'",
                "'graph-range'",
                "'graph-step'",
                "'graph-run'",
                "'graph-tab-chart'",
                "'graph-tab-table'",
                "'graph-chart'",
                "'graph-table'",
                "'graph-error'",
                "'graph-exemplars'",
                "'graph-exemplars-warning'",
                "'Expression'",
            ],
        ),
        (
            "lib/chart.js",
            &[
                "'series-line'",
                "'legend-item'",
                "'data-testid': 'exemplar'",
                "'exemplars-not-drawn'",
                "'data-trace-id'",
            ],
        ),
        ("lib/exemplars.js", &["'exemplar-trace-id'"]),
        ("lib/panels.js", &["show_exemplars"]),
        (
            "pages/rules.js",
            &[
                "'rule-group'",
                "'data-testid': 'rule'",
                "'data-health'",
                "'details'",
            ],
        ),
        (
            "pages/targets.js",
            &["'target-pool'", "'data-testid': 'target'", "'data-health'"],
        ),
        ("pages/probes.js", &["'data-testid': 'probe'"]),
        (
            "pages/deliveries.js",
            &["'data-testid': 'delivery'", "'replay-button'", "/replay"],
        ),
        (
            "pages/autoheal.js",
            &[
                "'data-testid': 'autoheal-rule'",
                "'data-testid': 'autoheal-endpoint'",
                "'clear-cooldown'",
                "/api/v1/autoheal/clear_endpoint_cooldown",
                "/api/v1/autoheal/runs",
            ],
        ),
        (
            "pages/silences.js",
            &[
                "'silence-form'",
                "'silence-matchers'",
                "'silence-duration'",
                "'silence-createdby'",
                "'silence-comment'",
                "'silence-submit'",
                "'silence-message'",
                "'data-testid': 'silence'",
                "'data-state'",
                "'data-id'",
                "'silence-expire'",
                "/api/v2/silences",
            ],
        ),
        ("pages/status.js", &["'status-section'"]),
    ];
    for (file, needles) in cases {
        let text = read(file);
        for n in *needles {
            assert!(text.contains(n), "{file} lacks {n}");
        }
    }
}

async fn whoami(c: &reqwest::Client, base: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut rb = c.get(format!("{base}/api/v1/auth/whoami"));
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    let r = rb.send().await.unwrap();
    let code = r.status().as_u16();
    let body = r.bytes().await.unwrap();
    (
        code,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whoami_names_the_caller_and_its_roles() {
    let (app, base, _d) = start(&auth_section()).await;
    let c = reqwest::Client::new();
    for (token, name, roles) in [
        (Some("tok-viewer"), "vic", vec!["viewer"]),
        (Some("tok-operator"), "olga", vec!["viewer", "operator"]),
        (
            Some("tok-admin"),
            "ada",
            vec!["viewer", "operator", "admin"],
        ),
    ] {
        let (code, v) = whoami(&c, &base, token).await;
        assert_eq!(code, 200, "{token:?}: {v}");
        assert_eq!(v["name"], name);
        assert_eq!(v["roles"], serde_json::json!(roles), "{name}");
        assert_eq!(v["authenticated"], true);
    }
    // No token with anonymous_role: none, and a wrong token: 401.
    assert_eq!(whoami(&c, &base, None).await.0, 401);
    assert_eq!(whoami(&c, &base, Some("wrong")).await.0, 401);
    app.stop().await;

    // Anonymous viewer (an auth section on loopback): no token is a viewer.
    let (app, base, _d) = start(&format!(
        "auth:\n  anonymous_role: viewer\n  tokens:\n    - {{name: olga, token_sha256: {}, roles: [operator]}}\n",
        sha("tok-operator")
    ))
    .await;
    let (code, v) = whoami(&c, &base, None).await;
    assert_eq!(code, 200);
    assert_eq!(v["name"], "anonymous");
    assert_eq!(v["roles"], serde_json::json!(["viewer"]));
    assert_eq!(v["authenticated"], false);
    app.stop().await;
}

async fn get_json(c: &reqwest::Client, url: &str) -> serde_json::Value {
    let r = c.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "{url}");
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_api_reports_last_results() {
    let http = probe_support::http_server().await;
    let cert = probe_support::make_cert();
    let https = probe_support::https_server(&cert).await;
    let closed = probe_support::closed_port().await;
    let dir = tempfile::tempdir().unwrap();
    let mods = dir.path().join("mods.yml");
    std::fs::write(
        &mods,
        "modules:\n  tls_any:\n    prober: http\n    http:\n      preferred_ip_protocol: ip4\n      tls_config:\n        insecure_skip_verify: true\n",
    )
    .unwrap();
    let (app, base, _d) = start(&format!(
        "probes:\n  - modules_file: {}\n  - targets: ['http://{http}/', 'http://{closed}/']\n    module: http_2xx\n    interval: 1s\n    timeout: 1s\n    job: web\n  - targets: ['https://localhost:{}/']\n    module: tls_any\n    interval: 1s\n    timeout: 2s\n",
        mods.display(),
        https.port()
    ))
    .await;
    let c = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let probes = loop {
        let v = get_json(&c, &format!("{base}/api/v1/probes")).await;
        let list = v["data"]["probes"].as_array().cloned().unwrap_or_default();
        if list.len() == 3 {
            break list;
        }
        assert!(Instant::now() < deadline, "probes never all ran: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let find = |t: &str| {
        probes
            .iter()
            .find(|p| p["target"] == t)
            .unwrap_or_else(|| panic!("{t} missing in {probes:?}"))
            .clone()
    };
    let ok = find(&format!("http://{http}/"));
    assert_eq!(ok["success"], true, "{ok}");
    assert_eq!(ok["job"], "web");
    assert_eq!(ok["module"], "http_2xx");
    assert_eq!(ok["httpStatus"], 200);
    assert_eq!(ok["intervalSeconds"], 1.0);
    let phases: Vec<&str> = ok["phases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["phase"].as_str().unwrap())
        .collect();
    // In request order, not alphabetical.
    assert_eq!(
        phases,
        ["resolve", "connect", "tls", "processing", "transfer"],
        "{ok}"
    );
    assert!(ok["durationSeconds"].as_f64().unwrap() > 0.0);
    assert!(ok["certExpiry"].is_null());
    assert!(ok["lastRun"].as_str().unwrap().ends_with('Z'));

    let bad = find(&format!("http://{closed}/"));
    assert_eq!(bad["success"], false, "{bad}");
    assert!(!bad["error"].as_str().unwrap().is_empty(), "{bad}");

    let tls = find(&format!("https://localhost:{}/", https.port()));
    assert_eq!(tls["success"], true, "{tls}");
    assert_eq!(tls["certExpiry"], "2031-07-09T00:00:00.000Z", "{tls}");
    assert_eq!(tls["job"], "probe");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_page_apis_give_head_memory_and_a_redacted_config() {
    let (app, base, _d) = start(
        "scrape_configs:\n  - job_name: a\n    basic_auth: {username: u, password: flowsecret1}\n    static_configs:\n      - targets: ['127.0.0.1:1']\n",
    )
    .await;
    let c = reqwest::Client::new();
    let v = get_json(&c, &format!("{base}/api/v1/status/tsdb")).await;
    let hs = &v["data"]["headStats"];
    assert!(hs["memoryBytes"].as_u64().is_some(), "{v}");
    assert!(hs["samplesAppended"].as_u64().is_some(), "{v}");
    let v = get_json(&c, &format!("{base}/api/v1/status/config")).await;
    let yaml = v["data"]["yaml"].as_str().unwrap();
    assert!(!yaml.contains("flowsecret1"), "{yaml}");
    assert!(yaml.contains("password: <secret>"), "{yaml}");
    let v = get_json(&c, &format!("{base}/meta")).await;
    assert!(v["maintenance"]["enabled"].is_boolean() && v["heartbeat"].is_object());
    app.stop().await;
}
