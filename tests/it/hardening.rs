//! Safe defaults on 127.0.0.1: browsers cannot drive or read a loopback
//! klaxon (CSRF, DNS rebinding) while tools keep working, connections
//! cannot be held open forever, failed authentication is rate limited,
//! and the status API shows the running config.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use crate::common::{tempdir, Klaxon};

async fn start_cfg(
    extra: &str,
    tweak: impl FnOnce(&mut klaxon::settings::Config),
) -> (klaxon::app::Running, String, tempfile::TempDir) {
    Klaxon::start_in(tempdir(), extra, tweak).await.parts()
}

async fn start(extra: &str) -> (klaxon::app::Running, String, tempfile::TempDir) {
    Klaxon::start(extra).await.parts()
}

fn silence_body() -> String {
    serde_json::json!({
        "matchers": [{"name": "alertname", "value": ".+", "isRegex": true, "isEqual": true}],
        "startsAt": "2020-01-01T00:00:00Z",
        "endsAt": "2099-01-01T00:00:00Z",
        "createdBy": "t",
        "comment": "c",
    })
    .to_string()
}

/// One request: `(status, body)`.
async fn send(
    c: &reqwest::Client,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<String>,
) -> (u16, String) {
    let mut rb = c.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    if let Some(b) = body {
        rb = rb.body(b);
    }
    let r = rb.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn get_json(c: &reqwest::Client, url: &str) -> serde_json::Value {
    serde_json::from_str(&send(c, "GET", url, &[], None).await.1).unwrap()
}

const JSON: (&str, &str) = ("content-type", "application/json");

async fn silence_count(c: &reqwest::Client, base: &str) -> usize {
    get_json(c, &format!("{base}/api/v2/silences"))
        .await
        .as_array()
        .unwrap()
        .len()
}

#[tokio::test]
async fn browser_writes_and_rebinding_refused_tools_still_work() {
    let (app, base, _d) = start("").await;
    let c = reqwest::Client::new();
    let silences = format!("{base}/api/v2/silences");
    let post_silence = |headers: Vec<(&'static str, String)>| {
        let (c, url) = (c.clone(), silences.clone());
        async move {
            let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
            send(&c, "POST", &url, &h, Some(silence_body())).await.0
        }
    };
    let own = format!("http://{}", app.addr);
    let rebound = format!("rebind.evil.example:{}", app.addr.port());

    // What a page on evil.example can send without a CORS preflight.
    let text = ("content-type", "text/plain".to_string());
    let evil = ("origin", "http://evil.example".to_string());
    let cross = ("sec-fetch-site", "cross-site".to_string());
    assert_eq!(
        post_silence(vec![text.clone(), evil.clone(), cross]).await,
        403
    );
    // Same, without Origin (an old browser): the content type refuses it.
    assert_eq!(post_silence(vec![text]).await, 415);
    // An empty-bodied cross-origin change (reload, replay).
    let reload = format!("{base}/-/reload");
    let r = send(
        &c,
        "POST",
        &reload,
        &[("origin", "http://evil.example")],
        None,
    )
    .await;
    assert_eq!(r.0, 403);
    // A rebinding page reaches us under its own name: refused, reads too.
    for path in ["/api/v2/alerts", "/api/v1/status/config", "/-/healthy"] {
        let r = send(
            &c,
            "GET",
            &format!("{base}{path}"),
            &[("host", &rebound)],
            None,
        )
        .await;
        assert_eq!(r.0, 403, "{path}");
    }
    assert_eq!(silence_count(&c, &base).await, 0);

    let json = (JSON.0, JSON.1.to_string());
    // curl -H 'Content-Type: application/json' -d ...
    assert_eq!(post_silence(vec![json.clone()]).await, 200);
    // Grafana's data source proxy (pkg/util/proxyutil): Origin and
    // Referer removed, X-Grafana-Referer and X-Forwarded-For set, the
    // browser's other headers (its same-origin Sec-Fetch-Site) passed on.
    let grafana = [
        ("user-agent", "Grafana/10.4.0".to_string()),
        ("x-grafana-org-id", "1".to_string()),
        (
            "x-grafana-referer",
            "http://grafana.example:3000/alerting/silences".to_string(),
        ),
        ("sec-fetch-site", "same-origin".to_string()),
        ("x-forwarded-for", "10.1.2.3".to_string()),
    ];
    let mut h = grafana.to_vec();
    h.push(json.clone());
    assert_eq!(post_silence(h).await, 200);
    let mut h: Vec<(&str, &str)> = grafana.iter().map(|(k, v)| (*k, v.as_str())).collect();
    h.push(("content-type", "application/x-www-form-urlencoded"));
    let q = send(
        &c,
        "POST",
        &format!("{base}/api/v1/query"),
        &h,
        Some("query=1%2B1".into()),
    )
    .await;
    assert_eq!(q.0, 200, "{}", q.1);
    // klaxon's own UI: same origin.
    let ui = vec![
        json,
        ("origin", own),
        ("sec-fetch-site", "same-origin".to_string()),
    ];
    assert_eq!(post_silence(ui).await, 200);
    // localhost names work.
    let local = format!("localhost:{}", app.addr.port());
    let r = send(
        &c,
        "GET",
        &format!("{base}/-/healthy"),
        &[("host", &local)],
        None,
    )
    .await;
    assert_eq!(r.0, 200);
    // curl -X POST /-/reload (no body, no type).
    assert_eq!(send(&c, "POST", &reload, &[], None).await.0, 200);
    assert_eq!(silence_count(&c, &base).await, 3);
    app.stop().await;
}

#[tokio::test]
async fn deleting_an_unknown_silence_is_404() {
    let (app, base, _d) = start("").await;
    let url = format!("{base}/api/v2/silence/00000000-0000-0000-0000-000000000000");
    let r = send(&reqwest::Client::new(), "DELETE", &url, &[], None).await;
    assert_eq!(r.0, 404);
    app.stop().await;
}

#[tokio::test]
async fn status_config_shows_the_reloaded_config() {
    let (app, base, dir) = start("global:\n  scrape_interval: 17s\n").await;
    let c = reqwest::Client::new();
    let url = format!("{base}/api/v1/status/config");
    let yaml = |v: serde_json::Value| v["data"]["yaml"].as_str().unwrap().to_string();
    assert!(yaml(get_json(&c, &url).await).contains("17s"));
    let path = dir.path().join("klaxon.yml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("17s", "23s");
    std::fs::write(&path, text).unwrap();
    let r = send(&c, "POST", &format!("{base}/-/reload"), &[], None).await;
    assert_eq!(r.0, 200);
    let after = yaml(get_json(&c, &url).await);
    assert!(after.contains("23s") && !after.contains("17s"), "{after}");
    app.stop().await;
}

#[tokio::test]
async fn failed_authentication_is_rate_limited_by_address() {
    let extra = "auth:\n  anonymous_role: none\n  rate_limit: {requests_per_second: 0.5, burst: 3}\n  tokens:\n    - {name: v, token_sha256: 0000000000000000000000000000000000000000000000000000000000000000, roles: [viewer]}\n";
    let (app, base, _d) = start(extra).await;
    let c = reqwest::Client::new();
    let mut codes = Vec::new();
    for _ in 0..10 {
        let r = c
            .get(format!("{base}/api/v2/alerts"))
            .bearer_auth("wrong")
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
    }
    assert_eq!(&codes[..3], &[401, 401, 401], "{codes:?}");
    assert!(codes[3..].iter().all(|c| *c == 429), "{codes:?}");
    // Anonymous callers share the address' bucket, refused or not.
    let r = c.get(format!("{base}/api/v2/alerts")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    // Probes stay unlimited.
    let r = c.get(format!("{base}/-/healthy")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

/// Reads until EOF or `deadline`; true when the server closed the socket.
fn closed_by_server(s: &mut std::net::TcpStream, deadline: Instant) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_and_idle_sockets_do_not_block_health() {
    let timeout = Duration::from_secs(1);
    let (app, base, _d) = start_cfg("", |c| {
        c.web = klaxon::api::serve::ServeOptions {
            header_read_timeout: timeout,
            max_connections: 8,
        };
    })
    .await;
    let addr = app.addr;
    let opened = Instant::now();
    let socks = tokio::task::spawn_blocking(move || {
        let mut v = Vec::new();
        for i in 0..16 {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            if i % 2 == 0 {
                // Slowloris: a request line, then nothing.
                s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                    .unwrap();
            }
            v.push(s);
        }
        v
    })
    .await
    .unwrap();
    // Every slot is taken; health must answer once they time out, well
    // before the sockets give up on their own.
    let c = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let healthy = loop {
        match c
            .get(format!("{base}/-/healthy"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
        {
            Ok(r) if r.status() == 200 => break true,
            _ if Instant::now() > deadline => break false,
            _ => {}
        }
    };
    assert!(healthy, "/-/healthy unreachable for {:?}", opened.elapsed());
    // The server closed every held socket (idle or slow) itself.
    let closed = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(15);
        socks
            .into_iter()
            .map(|mut s| closed_by_server(&mut s, deadline))
            .filter(|c| *c)
            .count()
    })
    .await
    .unwrap();
    assert_eq!(closed, 16);
    // A kept-alive connection idle past the timeout is closed too.
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let t0 = Instant::now();
    let closed = tokio::task::spawn_blocking(move || {
        closed_by_server(&mut s, Instant::now() + Duration::from_secs(15))
    })
    .await
    .unwrap();
    assert!(closed, "idle keep-alive connection kept");
    assert!(t0.elapsed() >= timeout / 2, "{:?}", t0.elapsed());
    let (_, m) = send(&c, "GET", &format!("{base}/metrics"), &[], None).await;
    let hits = m
        .lines()
        .find(|l| l.starts_with("klaxon_http_connection_limit_reached_total "))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    assert!(hits >= 1.0, "limit never reached");
    app.stop().await;
}

fn sha(s: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn changes_are_audited_with_caller_and_request_id() {
    let extra = format!(
        "auth:\n  anonymous_role: admin\n  tokens:\n    - {{name: ops-bot, token_sha256: {}, roles: [operator]}}\n",
        sha("tok-ops")
    );
    let (app, base, _d) = start(&extra).await;
    let c = reqwest::Client::new();
    let bot = ("authorization", "Bearer tok-ops");
    let rid = ("x-request-id", "req-create-1");
    let url = format!("{base}/api/v2/silences");
    let (code, body) = send(&c, "POST", &url, &[bot, JSON, rid], Some(silence_body())).await;
    assert_eq!(code, 200);
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = v["silenceID"].as_str().unwrap().to_string();
    let url = format!("{base}/api/v2/silence/{id}");
    let rid = ("x-request-id", "req-expire-1");
    assert_eq!(send(&c, "DELETE", &url, &[rid], None).await.0, 200);
    let alerts = Some(r#"[{"labels":{"alertname":"A"}}]"#.to_string());
    let url = format!("{base}/api/v2/alerts");
    assert_eq!(send(&c, "POST", &url, &[bot, JSON], alerts).await.0, 200);
    let url = format!("{base}/-/reload");
    assert_eq!(send(&c, "POST", &url, &[], None).await.0, 200);

    let deadline = Instant::now() + Duration::from_secs(20);
    let events = loop {
        let v = get_json(&c, &format!("{base}/api/v1/events/audit?kind=change")).await;
        let ev = v["data"]["events"].as_array().cloned().unwrap_or_default();
        if ev.len() >= 4 || Instant::now() > deadline {
            break ev;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let find = |action: &str| {
        events
            .iter()
            .map(|e| &e["data"])
            .find(|d| d["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {events:?}"))
            .clone()
    };
    let created = find("silence_create");
    assert_eq!(created["who"], "ops-bot");
    assert_eq!(created["request_id"], "req-create-1");
    assert_eq!(created["target"], id.as_str());
    assert_eq!(created["status"], 200);
    let expired = find("silence_expire");
    assert_eq!(expired["who"], "anonymous@127.0.0.1");
    assert_eq!(expired["request_id"], "req-expire-1");
    assert_eq!(expired["path"], format!("/api/v2/silence/{id}"));
    assert_eq!(find("alerts_post")["who"], "ops-bot");
    let reload = find("reload");
    assert_eq!(reload["who"], "anonymous@127.0.0.1");
    assert!(!reload["request_id"].as_str().unwrap().is_empty());
    app.stop().await;
}

#[tokio::test]
async fn status_apis_never_show_planted_secrets() {
    let extra = r#"scrape_configs:
  - job_name: s
    basic_auth: &auth
      username: u
      password: >-
        PLANTED-block
    static_configs: [{targets: ["127.0.0.1:1"]}]
  - job_name: t
    basic_auth: *auth
    static_configs: [{targets: ["127.0.0.1:2"]}]
  - job_name: u
    bearer_token:
      PLANTED-nextline
    static_configs: [{targets: ["127.0.0.1:3"]}]
notify:
  route: {receiver: hook}
  receivers:
    - name: hook
      webhook_configs:
        - url: "http://127.0.0.1:1/hook?token=PLANTED-webhook"
          http_config: {authorization: {credentials: 'PLANTED-flow'}}
      email_configs:
        - to: a@b.example
          from: k@b.example
          smarthost: 127.0.0.1:25
          auth_username: k
          auth_password: |
            PLANTED-literal
"#;
    let (app, base, _d) = start(extra).await;
    let c = reqwest::Client::new();
    for path in ["/api/v2/status", "/api/v1/status/config"] {
        let (_, t) = send(&c, "GET", &format!("{base}{path}"), &[], None).await;
        assert!(!t.contains("PLANTED"), "{path}: {t}");
        assert!(t.contains("<secret>"), "{path}: {t}");
    }
    app.stop().await;
}

/// An exporter on 127.0.0.1 whose answer `body` writes (until the socket
/// closes); one thread per connection, stopped with the test process.
fn exporter(body: fn(&mut std::net::TcpStream) -> std::io::Result<()>) -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut req = [0u8; 4096];
                let _ = s.read(&mut req);
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nConnection: close\r\n\r\n",
                );
                let _ = body(&mut s);
            });
        }
    });
    port
}

/// `(health, lastScrapeDuration)` of the only target once it was scraped.
async fn first_scrape(c: &reqwest::Client, base: &str) -> (String, f64) {
    // Generous: under a CPU hog the first scrape (offset up to one 5 s
    // interval) took longer than 30 s to be reported.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let v = get_json(c, &format!("{base}/api/v1/targets")).await;
        let tg = &v["data"]["activeTargets"][0];
        if tg["health"] != "unknown" && !tg["health"].is_null() {
            return (
                tg["health"].as_str().unwrap().to_string(),
                tg["lastScrapeDuration"].as_f64().unwrap(),
            );
        }
        assert!(Instant::now() < deadline, "never scraped: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn scrape_job(port: u16) -> String {
    format!("scrape_configs:\n  - job_name: e\n    scrape_interval: 5s\n    scrape_timeout: 1s\n    static_configs: [{{targets: [\"127.0.0.1:{port}\"]}}]\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_is_a_failed_scrape_within_the_timeout() {
    let port = exporter(|s| {
        let line = b"endless_metric 1\n".repeat(4096);
        loop {
            s.write_all(&line)?;
        }
    });
    let (app, base, _d) = start(&scrape_job(port)).await;
    let c = reqwest::Client::new();
    let (health, duration) = first_scrape(&c, &base).await;
    assert_eq!(health, "down");
    assert!(
        duration <= 1.5,
        "scrape took {duration} s with a 1 s timeout"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_duration_is_the_fetch_bounded_by_the_timeout() {
    // Many new series: appending them takes a while after a fast fetch.
    let port = exporter(|s| {
        let mut body = Vec::with_capacity(16 << 20);
        for i in 0..400_000 {
            body.extend_from_slice(format!("m{{i=\"{i}\",a=\"b\"}} {i}\n").as_bytes());
        }
        s.write_all(&body)
    });
    let (app, base, _d) = start(&scrape_job(port)).await;
    let c = reqwest::Client::new();
    let (health, duration) = first_scrape(&c, &base).await;
    assert_eq!(health, "up");
    assert!(
        duration <= 1.5,
        "scrape reported {duration} s with a 1 s timeout"
    );
    app.stop().await;
}
