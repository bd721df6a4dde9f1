//! Helpers shared by the integration tests (`crate::common` in every module
//! of the one test binary; not every module uses every item).
#![allow(dead_code)]

use std::path::PathBuf;

/// A path under `../shared/` beside the checkout, where Prometheus' test
/// data and the corpora live.
pub fn shared(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/")).join(rel)
}

/// Whether this run is CI: any non-empty `CI` other than `false`/`0` (runners
/// export `true` or `1`). Under CI a missing peer or data set is a failure.
pub fn is_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// The shared directory `rel`, or `None` when it is absent outside CI (the
/// caller reports the skip). Under `CI=true` a missing directory is a
/// failure, never a silent skip.
pub fn data_dir(rel: &str) -> Option<PathBuf> {
    let p = shared(rel);
    if p.is_dir() {
        return Some(p);
    }
    if is_ci() {
        panic!("shared test data missing: {}", p.display());
    }
    eprintln!("SKIPPED: shared test data missing: {}", p.display());
    None
}

/// A small deterministic generator (xorshift), seeded so failures replay.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// A child process killed (and reaped) when the test drops it, pass or
/// fail: every process a test starts, the test stops.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A port free on 127.0.0.1 a moment ago (the listener is closed again),
/// never handed out twice in this test process.
///
/// Ports come from below the kernel's ephemeral range (32768 and up on
/// Linux), so no `bind(0)` and no outgoing connection of a concurrently
/// running test can take the port between this call and the server's
/// bind. A port given to one test and reused by another once it stopped
/// once made a receiver test talk to the wrong server.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    const LOW: u32 = 12_000;
    const SPAN: u32 = 20_000;
    static NEXT: AtomicU32 = AtomicU32::new(u32::MAX);
    // Start at a place that depends on the process id, so two test
    // binaries run side by side on one machine start far apart.
    let _ = NEXT.compare_exchange(
        u32::MAX,
        (std::process::id().wrapping_mul(7_919)) % SPAN,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    for _ in 0..SPAN {
        let port = (LOW + NEXT.fetch_add(1, Ordering::SeqCst) % SPAN) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port on 127.0.0.1 in {LOW}..{}", LOW + SPAN)
}

/// The peer binary `name` from `PATH`, or `None` (with a SKIPPED line)
/// when it is not installed outside CI; under `CI=true` that is a failure.
pub fn peer(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        assert!(
            !is_ci(),
            "{name} missing under CI: run ../shared/tools/install-peers.sh"
        );
        eprintln!("SKIPPED: {name} not installed");
    }
    found
}

/// A real Alertmanager (`bin`) on 127.0.0.1:`port` with `config` as its
/// alertmanager.yml, data under `dir`, gossip off (PEERS-NOTES: it would
/// hold the first notification ~10 s and listen on every interface);
/// returned once its port accepts connections, killed on drop.
pub fn start_alertmanager(
    bin: &std::path::Path,
    dir: &std::path::Path,
    port: u16,
    config: &str,
) -> Proc {
    start_alertmanager_with(bin, dir, port, config, &[])
}

/// [`start_alertmanager`] with extra flags (e.g. `--web.config.file`).
pub fn start_alertmanager_with(
    bin: &std::path::Path,
    dir: &std::path::Path,
    port: u16,
    config: &str,
    extra: &[String],
) -> Proc {
    std::fs::create_dir_all(dir).expect("alertmanager dir");
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(&cfg, config).expect("write alertmanager.yml");
    let child = std::process::Command::new(bin)
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start alertmanager");
    let am = Proc(child);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "alertmanager on {port} did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    am
}

/// A klaxon started in this process on 127.0.0.1:0, its storage (and any
/// file a test writes beside the config) in a fresh temporary directory.
pub struct Klaxon {
    pub app: klaxon::app::Running,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub dir: tempfile::TempDir,
}

impl Klaxon {
    /// Starts klaxon on `storage.path: <tempdir>` followed by `extra` (YAML
    /// sections), in which `{dir}` stands for the temporary directory.
    pub async fn start(extra: &str) -> Klaxon {
        Self::start_in(tempdir(), extra, |_| {}).await
    }

    /// [`Klaxon::start`] in a directory the test prepared (rule files,
    /// certificates), with `tweak` applied to the loaded config.
    pub async fn start_in(
        dir: tempfile::TempDir,
        extra: &str,
        tweak: impl FnOnce(&mut klaxon::settings::Config),
    ) -> Klaxon {
        let d = dir.path().display().to_string();
        let yaml = format!("storage:\n  path: {d}\n{}", extra.replace("{dir}", &d));
        let path = dir.path().join("klaxon.yml");
        std::fs::write(&path, &yaml).expect("write klaxon.yml");
        let mut cfg = klaxon::settings::load_file(&path)
            .unwrap_or_else(|e| panic!("test config does not load: {e}\n{yaml}"));
        tweak(&mut cfg);
        let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
            .await
            .expect("klaxon starts");
        let base = format!("http://{}", app.addr);
        Klaxon { app, base, dir }
    }

    /// The parts, for tests that keep them in separate bindings.
    pub fn parts(self) -> (klaxon::app::Running, String, tempfile::TempDir) {
        (self.app, self.base, self.dir)
    }
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

/// `GET url` answered 200 with JSON: the JSON.
pub async fn get_json(url: &str) -> serde_json::Value {
    let r = reqwest::get(url).await.expect("GET");
    assert_eq!(r.status(), 200, "GET {url}");
    let text = r.text().await.expect("answer body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {text}"))
}

/// A real Prometheus (`bin`) on 127.0.0.1:`port` reading
/// `dir/prometheus.yml` (relative paths in it resolve under `dir`), its
/// data in `dir/prom-data`, its log in `dir/prometheus.log`; killed on drop.
/// Returned at once: [`start_prometheus`] waits until it is ready.
pub fn spawn_prometheus(
    bin: &std::path::Path,
    dir: &std::path::Path,
    port: u16,
    extra: &[&str],
) -> Proc {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("prometheus.log"))
        .expect("prometheus.log");
    let child = std::process::Command::new(bin)
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("prom-data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .args(extra)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start prometheus");
    Proc(child)
}

/// [`spawn_prometheus`], returned once `/-/ready` answers 200.
pub async fn start_prometheus(
    bin: &std::path::Path,
    dir: &std::path::Path,
    port: u16,
    extra: &[&str],
) -> Proc {
    let p = spawn_prometheus(bin, dir, port, extra);
    let url = format!("http://127.0.0.1:{port}/-/ready");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if reqwest::get(&url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return p;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "prometheus on {port} did not become ready"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// A dnsmasq on 127.0.0.1:`port` answering for `sd.test` from `records`
/// (dnsmasq options such as `--srv-host=...`).
pub fn dnsmasq(port: u16, records: &[String]) -> Option<Proc> {
    let bin = std::path::Path::new("/usr/sbin/dnsmasq");
    if !bin.is_file() {
        assert!(
            !is_ci(),
            "dnsmasq missing under CI (Debian package dnsmasq-base, see .ci/run)"
        );
        eprintln!("SKIPPED: dnsmasq not installed");
        return None;
    }
    let child = std::process::Command::new(bin)
        .args([
            "-k",
            &format!("--port={port}"),
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--conf-file=/dev/null",
            "--pid-file=",
            "--local=/sd.test/",
        ])
        .args(records)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start dnsmasq");
    Some(Proc(child))
}

pub mod fake_http;
pub mod fake_kube;
pub mod postgres;
pub mod webdriver;

/// The stderr of `child` (spawned with `Stdio::piped()` stderr) as lines on
/// a channel, read by a thread of its own.
pub fn stderr_lines(child: &mut std::process::Child) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let stderr = child.stderr.take().expect("stderr piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}
