//! Notification latency with `group_wait: 0s`: from `POST /api/v2/alerts`
//! (one new alert group per request) until the notification leaves the
//! router. klaxon: until its NotificationSink has the group (the delivery
//! stage's outbox sits behind it). Alertmanager 0.25 (when installed): until
//! its webhook receiver, a minimal HTTP server here, gets the request.
//! Criterion reports the mean; p50/p99 over all iterations are printed.

// A benchmark: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::{criterion_group, criterion_main, Criterion};
use klaxon::notify::{Notification, NotificationSink};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

struct ChanSink(mpsc::UnboundedSender<String>);
impl NotificationSink for ChanSink {
    fn enqueue(&self, n: Notification) {
        let _ = self.0.send(n.group_key);
    }
}

fn body(name: &str) -> String {
    format!(
        r#"[{{"labels":{{"alertname":"{name}","severity":"page"}},"annotations":{{"summary":"s"}}}}]"#
    )
}

fn percentiles(label: &str, mut v: Vec<Duration>) {
    if v.is_empty() {
        return;
    }
    v.sort();
    let p = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    eprintln!("{label}: n={} p50={:?} p99={:?}", v.len(), p(0.5), p(0.99));
}

/// A webhook endpoint that answers 200 and reports each request's arrival.
async fn webhook(tx: mpsc::UnboundedSender<String>) -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let Ok(n) = s.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    let Some(h) = text.find("\r\n\r\n") else {
                        continue;
                    };
                    let len = text[..h]
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if buf.len() < h + 4 + len {
                        continue;
                    }
                    let _ = tx.send(text[h + 4..].to_string());
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    buf.clear();
                }
            });
        }
    });
    port
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = reqwest::Client::new();
    let seq = Arc::new(AtomicU64::new(0));
    let mut g = c.benchmark_group("notify_latency");
    g.sample_size(20).measurement_time(Duration::from_secs(5));

    // klaxon in process.
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let rx = Arc::new(tokio::sync::Mutex::new(rx));
    let app = rt.block_on(async {
        let text = format!(
            "storage:\n  path: {}\nnotify:\n  route:\n    receiver: hook\n    group_by: [alertname]\n    group_wait: 0s\n  receivers:\n  - name: hook\n",
            dir.path().display()
        );
        let cfg = klaxon::settings::load_str(&text, "bench.yml").unwrap();
        let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0")).await.unwrap();
        app.state.dispatcher.set_sink(Arc::new(ChanSink(tx)));
        app
    });
    let url = format!("http://{}/api/v2/alerts", app.addr);
    let mut samples = Vec::new();
    g.bench_function("klaxon_post_to_sink", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                let mut rx = rx.lock().await;
                for _ in 0..iters {
                    let name = format!("K{}", seq.fetch_add(1, Ordering::Relaxed));
                    let t = Instant::now();
                    client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body(&name))
                        .send()
                        .await
                        .unwrap();
                    while let Some(k) = rx.recv().await {
                        if k.contains(&format!("\"{name}\"")) {
                            break;
                        }
                    }
                    let d = t.elapsed();
                    samples.push(d);
                    total += d;
                }
                total
            })
        })
    });
    percentiles("klaxon POST -> sink", samples);
    rt.block_on(app.stop());

    // Alertmanager 0.25 with a webhook receiver.
    if std::path::Path::new(ALERTMANAGER).exists() {
        let (tx, rx) = mpsc::unbounded_channel();
        let rx = Arc::new(tokio::sync::Mutex::new(rx));
        let hook = rt.block_on(webhook(tx));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let cfg = dir.path().join("am.yml");
        std::fs::write(
            &cfg,
            format!("route:\n  receiver: hook\n  group_by: [alertname]\n  group_wait: 0s\nreceivers:\n- name: hook\n  webhook_configs:\n  - url: http://127.0.0.1:{hook}/\n"),
        )
        .unwrap();
        let mut child = std::process::Command::new(ALERTMANAGER)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("am").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "alertmanager did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let url = format!("http://127.0.0.1:{port}/api/v2/alerts");
        let mut samples = Vec::new();
        g.bench_function("alertmanager_post_to_webhook", |b| {
            b.iter_custom(|iters| {
                rt.block_on(async {
                    let mut total = Duration::ZERO;
                    let mut rx = rx.lock().await;
                    for _ in 0..iters {
                        let name = format!("A{}", seq.fetch_add(1, Ordering::Relaxed));
                        let t = Instant::now();
                        client
                            .post(&url)
                            .header("content-type", "application/json")
                            .body(body(&name))
                            .send()
                            .await
                            .unwrap();
                        while let Some(k) = rx.recv().await {
                            if k.contains(&format!("\"{name}\"")) {
                                break;
                            }
                        }
                        let d = t.elapsed();
                        samples.push(d);
                        total += d;
                    }
                    total
                })
            })
        });
        percentiles("alertmanager POST -> webhook", samples);
        let _ = child.kill();
        let _ = child.wait();
    } else {
        eprintln!("alertmanager not installed: only klaxon measured");
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
