//! `GET /api/v1/events/stream` as a client sees it: live events reach an
//! open stream, `Last-Event-ID` resumes from the store after the given id,
//! keepalive comments arrive, and an open stream does not keep the server
//! from stopping.

use std::time::Duration;

/// Reads an SSE response until `done` holds for the text read so far.
struct SseReader {
    resp: reqwest::Response,
    text: String,
}

impl SseReader {
    async fn open(base: &str, last_event_id: Option<i64>) -> SseReader {
        let mut req = reqwest::Client::new().get(format!("{base}/api/v1/events/stream"));
        if let Some(id) = last_event_id {
            req = req.header("Last-Event-ID", id.to_string());
        }
        let resp = req.send().await.expect("GET stream");
        assert_eq!(resp.status(), 200);
        let ct = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(ct.starts_with("text/event-stream"), "content type {ct}");
        SseReader {
            resp,
            text: String::new(),
        }
    }

    /// Reads (for at most 10 s) until `done` holds for the reader.
    async fn wait(&mut self, done: impl Fn(&SseReader) -> bool) {
        self.wait_text(Duration::from_secs(10), |_| false, done)
            .await
    }

    /// Reads (for at most `limit`) until `text` holds for the raw text read
    /// or `done` for the reader.
    async fn wait_text(
        &mut self,
        limit: Duration,
        text: impl Fn(&str) -> bool,
        done: impl Fn(&SseReader) -> bool,
    ) {
        let end = tokio::time::Instant::now() + limit;
        while !text(&self.text) && !done(self) {
            let chunk = tokio::time::timeout_at(end, self.resp.chunk())
                .await
                .unwrap_or_else(|_| {
                    panic!("stream did not deliver in {limit:?}; read:\n{}", self.text)
                })
                .expect("stream read")
                .expect("stream ended early");
            self.text.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The complete events read so far: (id, kind, data).
    fn events(&self) -> Vec<(i64, String, serde_json::Value)> {
        let mut out = Vec::new();
        // Only blocks terminated by a blank line are complete.
        let complete = match self.text.rfind("\n\n") {
            Some(i) => &self.text[..i],
            None => return out,
        };
        for block in complete.split("\n\n") {
            let (mut id, mut kind, mut data) = (0, String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("id:") {
                    id = v.trim().parse().expect("numeric id");
                } else if let Some(v) = line.strip_prefix("event:") {
                    kind = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            if !kind.is_empty() {
                let data = serde_json::from_str(&data).expect("event data is JSON");
                out.push((id, kind, data));
            }
        }
        out
    }
}

async fn reload(base: &str) {
    let r = reqwest::Client::new()
        .post(format!("{base}/-/reload"))
        .send()
        .await
        .expect("reload");
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
}

const RELOAD: &str = "config_reload";

fn count(r: &SseReader, kind: &str) -> usize {
    r.events().iter().filter(|e| e.1 == kind).count()
}

async fn start() -> (klaxon::app::Running, tempfile::TempDir) {
    let dir = crate::common::tempdir();
    std::fs::write(dir.path().join("r.yml"), "groups: []\n").unwrap();
    let k = crate::common::Klaxon::start_in(dir, "rule_files: ['{dir}/r.yml']\n", |_| {}).await;
    (k.app, k.dir)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_resume_and_shutdown_with_an_open_stream() {
    let (k, _dir) = start().await;
    let base = format!("http://{}", k.addr);

    // A live subscriber sees two reloads as they happen, with rising ids.
    let mut live = SseReader::open(&base, None).await;
    for n in 1..=2 {
        reload(&base).await;
        live.wait(|r| count(r, RELOAD) >= n).await;
    }
    let ids: Vec<i64> = live
        .events()
        .into_iter()
        .filter(|e| e.1 == RELOAD)
        .map(|e| e.0)
        .collect();
    assert!(
        ids.len() == 2 && ids[0] > 0 && ids[1] > ids[0],
        "ids {ids:?}"
    );

    // Resuming after the first id replays the second from the store, and
    // nothing at or before the first.
    let mut resumed = SseReader::open(&base, Some(ids[0])).await;
    resumed
        .wait(|r| r.events().iter().any(|e| e.0 == ids[1]))
        .await;
    let replayed = resumed.events();
    assert!(replayed.iter().all(|e| e.0 > ids[0]), "{replayed:?}");
    // Other kinds interleave (each reload is also a `change` audit event):
    // the first reload event replayed is the second reload.
    let reloads: Vec<_> = replayed.iter().filter(|e| e.1 == RELOAD).collect();
    assert_eq!(reloads[0].0, ids[1], "{replayed:?}");
    assert_eq!(reloads[0].2["kind"], RELOAD, "{replayed:?}");
    assert_eq!(reloads[0].2["data"]["cause"], "http", "{replayed:?}");

    // After the replay the resumed stream is live too.
    reload(&base).await;
    resumed.wait(|r| count(r, RELOAD) >= 2).await;

    // A bad Last-Event-ID is a 400 with a JSON error.
    let r = reqwest::Client::new()
        .get(format!("{base}/api/v1/events/stream"))
        .header("Last-Event-ID", "yesterday")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().await.unwrap()).unwrap();
    assert!(
        v["error"].as_str().unwrap().contains("Last-Event-ID"),
        "{v}"
    );

    // Stopping with two streams open finishes, and the streams end.
    tokio::time::timeout(Duration::from_secs(15), k.stop())
        .await
        .expect("stop returns with event streams open");
    // What was sent before the end may still be buffered; then it ends.
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = live.resp.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "stream still open after stop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keepalive_comment_within_fifteen_seconds() {
    let (k, _dir) = start().await;
    let base = format!("http://{}", k.addr);
    let mut s = SseReader::open(&base, None).await;
    let t0 = std::time::Instant::now();
    s.wait_text(
        Duration::from_secs(20),
        |t| t.contains(": keepalive\n"),
        |_| false,
    )
    .await;
    let took = t0.elapsed();
    assert!(took >= Duration::from_secs(14), "keepalive after {took:?}");
    tokio::time::timeout(Duration::from_secs(15), k.stop())
        .await
        .expect("stop returns");
}
