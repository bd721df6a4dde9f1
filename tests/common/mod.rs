//! Helpers shared by the integration tests (each test file is its own crate
//! and pulls this in with `mod common;`, so not every file uses every item).
#![allow(dead_code)]

use std::path::PathBuf;

/// A path under `../shared/` beside the checkout, where Prometheus' test
/// data and the corpora live.
pub fn shared(rel: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/")).join(rel)
}

/// The shared directory `rel`, or `None` when it is absent outside CI (the
/// caller reports the skip). Under `CI=true` a missing directory is a
/// failure, never a silent skip.
pub fn data_dir(rel: &str) -> Option<PathBuf> {
    let p = shared(rel);
    if p.is_dir() {
        return Some(p);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("shared test data missing: {}", p.display());
    }
    eprintln!("SKIPPED: shared test data missing: {}", p.display());
    None
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

/// A port free on 127.0.0.1 a moment ago (the listener is closed again).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .expect("local address")
        .port()
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
            std::env::var("CI").as_deref() != Ok("true"),
            "{name} missing under CI: run ../shared/tools/install-peers.sh"
        );
        eprintln!("SKIPPED: {name} not installed");
    }
    found
}

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
