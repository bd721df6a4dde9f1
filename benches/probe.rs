//! Probe cost on loopback: a full http_2xx probe (resolve, connect,
//! request, body read, metrics) and a tcp_connect probe against a local
//! server, plus rendering a probe's metrics in the text format (what every
//! `/probe` answer pays).

// A benchmark: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use criterion::Criterion;
use klaxon::probe::{run_probe, Modules};
use std::hint::black_box;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn server(rt: &tokio::runtime::Runtime) -> std::net::SocketAddr {
    rt.block_on(async {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 2048];
                    let _ = s.read(&mut buf).await;
                    let _ = s
                        .write_all(
                            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                        )
                        .await;
                });
            }
        });
        a
    })
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let addr = server(&rt);
    let mods = Modules::parse(
        "modules:\n  h:\n    prober: http\n    http:\n      preferred_ip_protocol: ip4\n  t:\n    prober: tcp\n    tcp:\n      preferred_ip_protocol: ip4\n",
        "bench.yml",
    )
    .unwrap();
    let h = mods.get("h").unwrap();
    let t = mods.get("t").unwrap();
    let url = format!("http://{addr}/");
    let hp = addr.to_string();
    c.bench_function("probe/http_2xx_loopback", |b| {
        b.iter(|| {
            let o = rt.block_on(run_probe(&h, &url, Duration::from_secs(5)));
            assert!(o.success);
            black_box(o)
        })
    });
    c.bench_function("probe/tcp_connect_loopback", |b| {
        b.iter(|| {
            let o = rt.block_on(run_probe(&t, &hp, Duration::from_secs(5)));
            assert!(o.success);
            black_box(o)
        })
    });
    let o = rt.block_on(run_probe(&h, &url, Duration::from_secs(5)));
    c.bench_function("probe/render_http_metrics", |b| {
        b.iter(|| black_box(o.metrics.render()))
    });
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    bench(&mut c);
    c.final_summary();
}
