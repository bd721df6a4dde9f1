//! A small W3C WebDriver client for the browser tests: Debian's chromedriver
//! driving Debian's headless Chromium.
//!
//! Written here rather than pulled in (fantoccini) because the tests need a
//! dozen endpoints, all plain JSON over HTTP, and `reqwest` is already a
//! dependency; no second TLS/hyper stack to keep in step with ours.
//!
//! Process hygiene: chromedriver runs in its own process group; dropping the
//! [`Browser`] deletes the session (which closes Chromium) and then kills that
//! group, so a failing test leaves no browser behind.

use serde_json::{json, Value};
use std::future::Future;
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const CHROMIUM: &str = "/usr/bin/chromium";
/// One Chromium at a time across every test of the binary: the machine has
/// two cores, and two browsers loading pages at once miss their deadlines.
pub static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The key code WebDriver uses for Enter in `send_keys`.
pub const ENTER: &str = "\u{E007}";

/// The W3C name of an element reference in JSON.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// What went wrong talking to chromedriver: the command and its answer.
#[derive(Debug, thiserror::Error)]
pub enum WdError {
    #[error("{cmd}: transport: {source}")]
    Http {
        cmd: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{cmd}: {error}: {message}")]
    Driver {
        cmd: String,
        error: String,
        message: String,
    },
    #[error("{cmd}: unexpected answer {body}")]
    Shape { cmd: String, body: String },
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    #[error("{0}")]
    Setup(String),
}

pub type WdResult<T> = Result<T, WdError>;

/// Whether the browser binaries are installed. Under `CI=true` their absence
/// is a failure (panics); elsewhere the caller prints a skip line.
pub fn browser_available() -> bool {
    let ok = Path::new(CHROMIUM).is_file() && Path::new(CHROMEDRIVER).is_file();
    if !ok && super::is_ci() {
        panic!("{CHROMIUM} or {CHROMEDRIVER} missing (apt-get install chromium chromium-driver)");
    }
    ok
}

/// A chromedriver process with one Chromium session.
pub struct Browser {
    http: reqwest::Client,
    driver: Child,
    port: u16,
    session: String,
}

/// An element found on the page (its WebDriver id).
#[derive(Clone, Debug)]
pub struct Element(pub String);

impl Element {
    fn to_json(&self) -> Value {
        json!({ ELEMENT_KEY: self.0 })
    }
}

impl Browser {
    /// Starts chromedriver on a free 127.0.0.1 port and opens a headless
    /// Chromium session with the flags this container needs.
    pub async fn start() -> WdResult<Browser> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| WdError::Setup(e.to_string()))?;
        // A port picked by bind(:0) can be taken again before chromedriver
        // binds it; try a few.
        let mut last = String::new();
        for _ in 0..3 {
            let port = super::free_port();
            let mut driver = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg("--allowed-ips=127.0.0.1")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .map_err(|e| WdError::Setup(format!("spawn {CHROMEDRIVER}: {e}")))?;
            if wait_ready(&http, port).await {
                let mut b = Browser {
                    http,
                    driver,
                    port,
                    session: String::new(),
                };
                b.session = b.new_session().await?;
                return Ok(b);
            }
            last = format!("chromedriver on port {port} not ready");
            kill_group(&mut driver);
        }
        Err(WdError::Setup(last))
    }

    async fn new_session(&self) -> WdResult<String> {
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": CHROMIUM,
                        "args": [
                            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", "--window-size=1280,900",
                        ],
                    },
                },
            },
        });
        let url = format!("http://127.0.0.1:{}/session", self.port);
        let v = send(
            &self.http,
            reqwest::Method::POST,
            &url,
            Some(caps),
            "new session",
        )
        .await?;
        v["sessionId"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| WdError::Shape {
                cmd: "new session".into(),
                body: v.to_string(),
            })
    }

    fn url(&self, rest: &str) -> String {
        format!(
            "http://127.0.0.1:{}/session/{}{rest}",
            self.port, self.session
        )
    }

    async fn get(&self, rest: &str) -> WdResult<Value> {
        send(
            &self.http,
            reqwest::Method::GET,
            &self.url(rest),
            None,
            rest,
        )
        .await
    }

    async fn post(&self, rest: &str, body: Value) -> WdResult<Value> {
        send(
            &self.http,
            reqwest::Method::POST,
            &self.url(rest),
            Some(body),
            rest,
        )
        .await
    }

    pub async fn goto(&self, url: &str) -> WdResult<()> {
        self.post("/url", json!({ "url": url })).await.map(drop)
    }

    pub async fn current_url(&self) -> WdResult<String> {
        Ok(self
            .get("/url")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// The first element matching `css`, or `None`.
    pub async fn find(&self, css: &str) -> WdResult<Option<Element>> {
        Ok(self.find_all(css).await?.into_iter().next())
    }

    /// The first element matching `css`; an error naming the selector when
    /// there is none.
    pub async fn one(&self, css: &str) -> WdResult<Element> {
        self.find(css).await?.ok_or_else(|| WdError::Driver {
            cmd: format!("find {css}"),
            error: "no such element".into(),
            message: String::new(),
        })
    }

    pub async fn find_all(&self, css: &str) -> WdResult<Vec<Element>> {
        let v = self
            .post(
                "/elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await?;
        Ok(elements(&v))
    }

    /// Elements matching `css` inside `parent`.
    pub async fn find_in(&self, parent: &Element, css: &str) -> WdResult<Vec<Element>> {
        let v = self
            .post(
                &format!("/element/{}/elements", parent.0),
                json!({ "using": "css selector", "value": css }),
            )
            .await?;
        Ok(elements(&v))
    }

    pub async fn click(&self, e: &Element) -> WdResult<()> {
        self.post(&format!("/element/{}/click", e.0), json!({}))
            .await
            .map(drop)
    }

    pub async fn clear(&self, e: &Element) -> WdResult<()> {
        self.post(&format!("/element/{}/clear", e.0), json!({}))
            .await
            .map(drop)
    }

    pub async fn send_keys(&self, e: &Element, text: &str) -> WdResult<()> {
        self.post(&format!("/element/{}/value", e.0), json!({ "text": text }))
            .await
            .map(drop)
    }

    /// Clears an input and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) -> WdResult<()> {
        let e = self.one(css).await?;
        self.clear(&e).await?;
        self.send_keys(&e, text).await
    }

    /// The rendered (visible) text of an element.
    pub async fn text(&self, e: &Element) -> WdResult<String> {
        Ok(self
            .get(&format!("/element/{}/text", e.0))
            .await?
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// An attribute as written in the DOM (`None` when absent).
    pub async fn attr(&self, e: &Element, name: &str) -> WdResult<Option<String>> {
        let v = self
            .get(&format!("/element/{}/attribute/{name}", e.0))
            .await?;
        Ok(v.as_str().map(str::to_string))
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) and returns
    /// its result. Elements in `args` are passed as [`Element::to_json`].
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> WdResult<Value> {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .await
    }

    /// Like [`Browser::execute`] with element arguments.
    pub async fn execute_on(&self, script: &str, els: &[&Element]) -> WdResult<Value> {
        let args = els.iter().map(|e| e.to_json()).collect();
        self.execute(script, args).await
    }

    /// Polls `check` every 100 ms until it yields `Some`, or fails after
    /// `timeout` naming `what`.
    pub async fn wait_until<T, F, Fut>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: F,
    ) -> WdResult<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = WdResult<Option<T>>>,
    {
        let end = Instant::now() + timeout;
        loop {
            if let Some(v) = check().await? {
                return Ok(v);
            }
            if Instant::now() >= end {
                return Err(WdError::Timeout(timeout, what.to_string()));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `script` returns a truthy value and returns it.
    pub async fn wait_script(&self, timeout: Duration, script: &str) -> WdResult<Value> {
        self.wait_until(timeout, script, || async {
            let v = self.execute(script, vec![]).await?;
            let truthy =
                !matches!(&v, Value::Null | Value::Bool(false)) && v != json!(0) && v != json!("");
            Ok(truthy.then_some(v))
        })
        .await
    }

    /// Waits for an element matching `css`.
    pub async fn wait_element(&self, timeout: Duration, css: &str) -> WdResult<Element> {
        self.wait_until(timeout, css, || self.find(css)).await
    }

    /// A PNG screenshot of the viewport, written to `path`.
    pub async fn screenshot(&self, path: &Path) -> WdResult<()> {
        use base64::Engine;
        let v = self.get("/screenshot").await?;
        let b64 = v.as_str().ok_or_else(|| WdError::Shape {
            cmd: "screenshot".into(),
            body: v.to_string().chars().take(200).collect(),
        })?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| WdError::Setup(format!("screenshot base64: {e}")))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| WdError::Setup(format!("{}: {e}", dir.display())))?;
        }
        std::fs::write(path, png).map_err(|e| WdError::Setup(format!("{}: {e}", path.display())))
    }

    /// Performs one W3C input source's `actions` (`kind` "pointer" as a
    /// mouse, or "key").
    async fn actions(&self, kind: &str, actions: Value) -> WdResult<()> {
        let mut source = json!({ "type": kind, "id": kind, "actions": actions });
        if kind == "pointer" {
            source["parameters"] = json!({ "pointerType": "mouse" });
        }
        self.post("/actions", json!({ "actions": [source] }))
            .await
            .map(drop)
    }

    /// A mouse drag through W3C actions: press the left button at `from`,
    /// move to `to` in steps, release. Points are offsets from the centre of
    /// `e`, so the browser sees real pointer and mouse events.
    pub async fn drag(&self, e: &Element, from: (i64, i64), to: (i64, i64)) -> WdResult<()> {
        let origin = e.to_json();
        let mid = ((from.0 + to.0) / 2, (from.1 + to.1) / 2);
        self.actions(
            "pointer",
            json!([
                { "type": "pointerMove", "duration": 0, "origin": origin, "x": from.0, "y": from.1 },
                { "type": "pointerDown", "button": 0 },
                { "type": "pointerMove", "duration": 100, "origin": origin, "x": mid.0, "y": mid.1 },
                { "type": "pointerMove", "duration": 100, "origin": origin, "x": to.0, "y": to.1 },
                { "type": "pointerUp", "button": 0 },
            ]),
        )
        .await
    }

    /// Scrolls `e` into view and moves the mouse onto its centre, so the
    /// page sees real pointerover/pointerenter events.
    pub async fn hover(&self, e: &Element) -> WdResult<()> {
        self.execute_on("arguments[0].scrollIntoView({block: 'center'});", &[e])
            .await?;
        self.actions(
            "pointer",
            json!([{ "type": "pointerMove", "duration": 50, "origin": e.to_json(), "x": 0, "y": 0 }]),
        )
        .await
    }

    /// Presses and releases `key` (a character or a WebDriver key code such
    /// as [`ENTER`]) on whatever has the focus, as a keyboard does.
    pub async fn press(&self, key: &str) -> WdResult<()> {
        self.actions(
            "key",
            json!([{ "type": "keyDown", "value": key }, { "type": "keyUp", "value": key }]),
        )
        .await
    }

    pub async fn set_window_size(&self, width: u32, height: u32) -> WdResult<()> {
        self.post("/window/rect", json!({ "width": width, "height": height }))
            .await
            .map(drop)
    }

    /// A Chrome DevTools Protocol command through chromedriver's
    /// `goog/cdp/execute` extension.
    pub async fn cdp(&self, cmd: &str, params: Value) -> WdResult<Value> {
        self.post("/goog/cdp/execute", json!({ "cmd": cmd, "params": params }))
            .await
    }

    /// Deletes the session and stops chromedriver.
    pub async fn quit(mut self) {
        let url = self.url("");
        let _ = send(
            &self.http,
            reqwest::Method::DELETE,
            &url,
            None,
            "delete session",
        )
        .await;
        self.session.clear();
        // Drop kills the process group.
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            // Drop cannot await: a blocking DELETE over a plain socket.
            delete_session_blocking(self.port, &self.session);
        }
        kill_group(&mut self.driver);
    }
}

fn kill_group(child: &mut Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: signalling the process group we created for our own child.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn delete_session_blocking(port: u16, session: &str) {
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_ok() {
        let mut buf = Vec::new();
        let _ = s.read_to_end(&mut buf);
    }
}

async fn wait_ready(http: &reqwest::Client, port: u16) -> bool {
    let end = Instant::now() + Duration::from_secs(10);
    while Instant::now() < end {
        let url = format!("http://127.0.0.1:{port}/status");
        if let Ok(r) = http.get(&url).send().await {
            if let Ok(v) = r
                .bytes()
                .await
                .map(|b| serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null))
            {
                if v["value"]["ready"] == true {
                    return true;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

fn elements(v: &Value) -> Vec<Element> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|e| e[ELEMENT_KEY].as_str().map(|s| Element(s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

/// One WebDriver command: the answer's `value`, or its `error`/`message`.
async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
    cmd: &str,
) -> WdResult<Value> {
    let mut rb = http.request(method, url);
    if let Some(b) = body {
        rb = rb
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let http_err = |source| WdError::Http {
        cmd: cmd.to_string(),
        source,
    };
    let r = rb.send().await.map_err(http_err)?;
    let bytes = r.bytes().await.map_err(http_err)?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|_| WdError::Shape {
        cmd: cmd.to_string(),
        body: String::from_utf8_lossy(&bytes).chars().take(500).collect(),
    })?;
    let value = v.get("value").cloned().unwrap_or(Value::Null);
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        return Err(WdError::Driver {
            cmd: cmd.to_string(),
            error: error.to_string(),
            message: value["message"].as_str().unwrap_or_default().to_string(),
        });
    }
    Ok(value)
}

/// Where screenshots go: `$CARGO_TARGET_DIR/ui-screenshots` when set, else
/// `target/ui-screenshots` in the crate root.
pub fn screenshot_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d).join("ui-screenshots"),
        _ => PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/ui-screenshots"
        )),
    }
}
