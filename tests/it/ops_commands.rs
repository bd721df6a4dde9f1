//! Signed remote commands on 127.0.0.1: bad, expired and replayed
//! signatures are refused with nothing applied and audited; the kill-switch
//! turns maintenance mode on (ready 503, metric 1) and resume clears it; the
//! event stream resumes with Last-Event-ID; the audit list paginates.

use klaxon::ops::commands::{sign_ack, sign_request};
use std::time::Duration;

const SECRET: &str = "0123456789abcdef-shared";

async fn start() -> (klaxon::app::Running, String, tempfile::TempDir) {
    let cc = format!("command_center:\n  command_secret: {SECRET}\n");
    crate::common::Klaxon::start(&cc).await.parts()
}

fn now_s() -> i64 {
    klaxon::model::now_millis() / 1000
}

struct Cmd<'a> {
    name: &'a str,
    body: String,
    ts: i64,
    cid: &'a str,
    secret: &'a str,
    /// An invalid bearer token sent along (must not block signed commands).
    stale_token: bool,
}

impl<'a> Cmd<'a> {
    fn new(name: &'a str, cid: &'a str) -> Self {
        Cmd {
            name,
            body: format!(r#"{{"reason":"{name} drill","operator":"ana","ticket":"OPS-1"}}"#),
            ts: now_s(),
            cid,
            secret: SECRET,
            stale_token: false,
        }
    }

    async fn send(&self, c: &reqwest::Client, base: &str) -> (u16, serde_json::Value) {
        let ts = self.ts.to_string();
        let sig = sign_request(self.secret.as_bytes(), &ts, self.body.as_bytes());
        let mut rb = c.post(format!("{base}/internal/commands/{}", self.name));
        if self.stale_token {
            rb = rb.bearer_auth("stale-token");
        }
        let r = rb
            .header("X-Timestamp", &ts)
            .header("X-Correlation-ID", self.cid)
            .header("X-Signature", format!("sha256={sig}"))
            .header("Content-Type", "application/json")
            .body(self.body.clone())
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, json(r).await)
    }
}

async fn json(r: reqwest::Response) -> serde_json::Value {
    serde_json::from_slice(&r.bytes().await.unwrap()).unwrap()
}

async fn get(c: &reqwest::Client, url: String) -> (u16, String) {
    let r = c.get(url).send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn audit(c: &reqwest::Client, base: &str, q: &str) -> serde_json::Value {
    json(
        c.get(format!("{base}/api/v1/events/audit?{q}"))
            .send()
            .await
            .unwrap(),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signatures_maintenance_and_audit() {
    let (app, base, _d) = start().await;
    let c = reqwest::Client::new();

    // Wrong secret, tampered body, expired, future, missing signature.
    let mut bad = Cmd::new("kill-switch", "c-bad-1");
    bad.secret = "not-the-secret";
    assert_eq!(bad.send(&c, &base).await.0, 401);
    let expired = Cmd {
        ts: now_s() - 301,
        ..Cmd::new("kill-switch", "c-bad-2")
    };
    let (code, body) = expired.send(&c, &base).await;
    assert_eq!(code, 401);
    assert!(
        body["error"].as_str().unwrap().contains("away from now"),
        "{body}"
    );
    let future = Cmd {
        ts: now_s() + 400,
        ..Cmd::new("kill-switch", "c-bad-3")
    };
    assert_eq!(future.send(&c, &base).await.0, 401);
    let r = c
        .post(format!("{base}/internal/commands/kill-switch"))
        .header("X-Timestamp", now_s().to_string())
        .header("X-Correlation-ID", "c-bad-4")
        .header("Content-Type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Nothing applied.
    assert_eq!(get(&c, format!("{base}/-/ready")).await.0, 200);

    // A good kill-switch: signed ACK, ready 503 with reason, metric 1.
    let ok = Cmd {
        stale_token: true,
        ..Cmd::new("kill-switch", "c-ok-1")
    };
    let (code, ack) = ok.send(&c, &base).await;
    assert_eq!(code, 200, "{ack}");
    assert_eq!(ack["status"], "acknowledged");
    assert_eq!(ack["correlation_id"], "c-ok-1");
    assert_eq!(ack["maintenance_mode"], true);
    assert_eq!(
        ack["signature"],
        format!(
            "sha256={}",
            sign_ack(SECRET.as_bytes(), "acknowledged", "c-ok-1", true)
        )
    );
    let (code, text) = get(&c, format!("{base}/-/ready")).await;
    assert_eq!(code, 503);
    assert!(
        text.contains("kill-switch drill") && text.contains("ana"),
        "{text}"
    );
    let (_, m) = get(&c, format!("{base}/metrics")).await;
    assert!(m.contains("klaxon_maintenance_mode 1\n"));
    let (_, meta) = get(&c, format!("{base}/meta")).await;
    let meta: serde_json::Value = serde_json::from_str(&meta).unwrap();
    assert_eq!(meta["maintenance"]["enabled"], true);
    assert_eq!(meta["maintenance"]["state"]["correlation_id"], "c-ok-1");

    // The same request again is a replay, even with a fresh signature.
    let (code, body) = ok.send(&c, &base).await;
    assert_eq!(code, 401);
    assert!(body["error"].as_str().unwrap().contains("replay"), "{body}");

    // Resume clears it.
    let (code, ack) = Cmd::new("resume", "c-ok-2").send(&c, &base).await;
    assert_eq!(code, 200);
    assert_eq!(ack["maintenance_mode"], false);
    assert_eq!(get(&c, format!("{base}/-/ready")).await.0, 200);
    let (_, m) = get(&c, format!("{base}/metrics")).await;
    assert!(m.contains("klaxon_maintenance_mode 0\n"));

    // Reload runs the app's reload (config and rule files re-read), audited.
    let (code, body) = Cmd::new("reload", "c-ok-3").send(&c, &base).await;
    assert_eq!(code, 200, "{body}");
    let (_, m) = get(&c, format!("{base}/metrics")).await;
    assert!(m.contains("klaxon_config_last_reload_successful 1\n"));

    // Every command, accepted or rejected, is in the audit log.
    let a = audit(&c, &base, "kind=command&limit=1000").await;
    let ev = a["data"]["events"].as_array().unwrap();
    let results: Vec<(String, String)> = ev
        .iter()
        .map(|e| {
            (
                e["data"]["correlation_id"].as_str().unwrap().to_string(),
                e["data"]["result"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expect = [
        ("c-bad-1", "rejected: signature does not match"),
        ("c-bad-2", "rejected: X-Timestamp is 301 s away"),
        ("c-bad-3", "rejected: X-Timestamp is -400 s away"),
        ("c-bad-4", "rejected: missing header X-Signature"),
        ("c-ok-1", "accepted"),
        (
            "c-ok-1",
            "rejected: correlation id \"c-ok-1\" was already used",
        ),
        ("c-ok-2", "accepted"),
        ("c-ok-3", "accepted"),
    ];
    assert_eq!(results.len(), expect.len(), "{results:?}");
    for ((cid, res), (want_cid, want_res)) in results.iter().zip(expect) {
        assert_eq!(cid, want_cid);
        assert!(res.starts_with(want_res), "{cid}: {res}");
    }
    for e in ev {
        assert!(e["data"]["source"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"));
        if e["data"]["correlation_id"] != "c-bad-4" {
            // Claimed by the body (c-bad-4 sent an empty one).
            assert_eq!(e["data"]["who"], "ana");
            assert!(e["data"]["reason"].as_str().unwrap().ends_with("drill"));
        }
    }

    // Pagination: 3 + 3 + 2, cursors chain, no overlap.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let q = format!("kind=command&limit=3{cursor}");
        let p = audit(&c, &base, &q).await;
        for e in p["data"]["events"].as_array().unwrap() {
            seen.push(e["id"].as_i64().unwrap());
        }
        pages += 1;
        match p["data"]["next_cursor"].as_str() {
            Some(n) => cursor = format!("&cursor={n}"),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    let all: Vec<i64> = ev.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(seen, all);
    // since/until filter by time; a bad value names the parameter.
    let p = audit(&c, &base, "since=4000000000").await;
    assert_eq!(p["data"]["events"].as_array().unwrap().len(), 0);
    let p = audit(&c, &base, "until=abc").await;
    assert!(p["error"].as_str().unwrap().starts_with("until:"), "{p}");
    app.stop().await;
}

/// Reads SSE events (id, kind) until `n` arrived or the deadline passes.
async fn read_events(r: &mut reqwest::Response, n: usize) -> Vec<(i64, String)> {
    let mut buf = String::new();
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while out.len() < n {
        let chunk = tokio::time::timeout_at(deadline, r.chunk())
            .await
            .expect("events did not arrive in time")
            .unwrap()
            .expect("stream ended");
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut id = None;
            let mut kind = String::new();
            for l in block.lines() {
                if let Some(v) = l.strip_prefix("id: ").or_else(|| l.strip_prefix("id:")) {
                    id = v.trim().parse().ok();
                }
                if let Some(v) = l
                    .strip_prefix("event: ")
                    .or_else(|| l.strip_prefix("event:"))
                {
                    kind = v.trim().to_string();
                }
            }
            if let Some(id) = id {
                out.push((id, kind));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_resumes_from_last_event_id() {
    let (app, base, _d) = start().await;
    let c = reqwest::Client::new();
    for i in 0..4 {
        let cid = format!("sse-{i}");
        let mut cmd = Cmd::new("refresh", &cid);
        if i == 1 {
            cmd.secret = "wrong";
        }
        cmd.send(&c, &base).await;
    }
    let a = audit(&c, &base, "").await;
    let ids: Vec<i64> = a["data"]["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 4);

    // Resume after the second: the third and fourth come from the store.
    let mut r = c
        .get(format!("{base}/api/v1/events/stream"))
        .header("Last-Event-ID", ids[1].to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let got = read_events(&mut r, 2).await;
    assert_eq!(
        got,
        vec![
            (ids[2], "command".to_string()),
            (ids[3], "command".to_string())
        ]
    );
    // Then live events follow, in order, without repeats.
    Cmd::new("refresh", "sse-live").send(&c, &base).await;
    let live = read_events(&mut r, 1).await;
    assert_eq!(live.len(), 1);
    assert!(live[0].0 > ids[3], "{live:?}");
    drop(r);

    let r = c
        .get(format!("{base}/api/v1/events/stream"))
        .header("Last-Event-ID", "minus-one")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    app.stop().await;
}

/// The kill-switch pauses scheduled probes (no request reaches their
/// target while maintenance is on) and resume restarts them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_switch_pauses_scheduled_probes() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let taddr = target.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(move || {
                h.fetch_add(1, Ordering::SeqCst);
                async { "ok" }
            }),
        );
        let _ = axum::serve(target, app).await;
    });
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "storage:\n  path: {}\ncommand_center:\n  command_secret: {SECRET}\nprobes:\n  - targets: ['http://{taddr}/']\n    module: http_2xx\n    interval: 100ms\n",
        dir.path().display()
    );
    let cfg = klaxon::settings::load_str(&yaml, "ops.yml").unwrap();
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr);
    let c = reqwest::Client::new();
    let wait_hits = |n: usize| {
        let hits = hits.clone();
        async move {
            let end = std::time::Instant::now() + Duration::from_secs(30);
            while hits.load(Ordering::SeqCst) < n {
                assert!(std::time::Instant::now() < end, "probes stopped at {n}");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_hits(2).await;

    let (code, body) = Cmd::new("kill-switch", "pause-probes-1")
        .send(&c, &base)
        .await;
    assert_eq!(code, 200, "{body}");
    // A probe already in flight when the switch flipped may still land;
    // after that, nothing for many intervals.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let paused_at = hits.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        paused_at,
        "probes ran during maintenance"
    );

    let (code, body) = Cmd::new("resume", "pause-probes-2").send(&c, &base).await;
    assert_eq!(code, 200, "{body}");
    wait_hits(paused_at + 2).await;
    app.stop().await;
    server.abort();
}
