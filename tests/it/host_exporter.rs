//! The host exporter against node_exporter 1.5's output captured on this
//! machine (`../shared/reference/metrics/node_exporter.prom`), sanity of the
//! live values, and exact parsing of a fixture /proc tree.

use crate::common;

use klaxon::exporters::host::{collect, HostOptions};
use klaxon::metrics::{encode, FamilySnapshot, Kind};
use klaxon::scrape::parser::{Entry, Format, MetricType, Parser};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::time::Duration;

/// The node_exporter families the host exporter must serve, as
/// node_exporter names them in the text format.
const LISTED: &[&str] = &[
    "node_cpu_seconds_total",
    "node_load1",
    "node_load5",
    "node_load15",
    "node_memory_MemTotal_bytes",
    "node_memory_MemFree_bytes",
    "node_memory_MemAvailable_bytes",
    "node_memory_Buffers_bytes",
    "node_memory_Cached_bytes",
    "node_memory_SwapTotal_bytes",
    "node_memory_SwapFree_bytes",
    "node_memory_Dirty_bytes",
    "node_memory_Writeback_bytes",
    "node_memory_Active_bytes",
    "node_memory_Inactive_bytes",
    "node_memory_Shmem_bytes",
    "node_memory_Slab_bytes",
    "node_memory_SReclaimable_bytes",
    "node_memory_Committed_AS_bytes",
    "node_memory_CommitLimit_bytes",
    "node_memory_HugePages_Total",
    "node_memory_HugePages_Free",
    "node_memory_HugePages_Rsvd",
    "node_memory_HugePages_Surp",
    "node_filesystem_size_bytes",
    "node_filesystem_free_bytes",
    "node_filesystem_avail_bytes",
    "node_filesystem_files",
    "node_filesystem_files_free",
    "node_filesystem_readonly",
    "node_filesystem_device_error",
    "node_disk_reads_completed_total",
    "node_disk_writes_completed_total",
    "node_disk_read_bytes_total",
    "node_disk_written_bytes_total",
    "node_disk_read_time_seconds_total",
    "node_disk_write_time_seconds_total",
    "node_disk_io_time_seconds_total",
    "node_disk_io_time_weighted_seconds_total",
    "node_disk_io_now",
    "node_disk_discards_completed_total",
    "node_disk_discards_merged_total",
    "node_disk_discarded_sectors_total",
    "node_disk_discard_time_seconds_total",
    "node_network_receive_bytes_total",
    "node_network_transmit_bytes_total",
    "node_network_receive_packets_total",
    "node_network_transmit_packets_total",
    "node_network_receive_errs_total",
    "node_network_transmit_errs_total",
    "node_network_receive_drop_total",
    "node_network_transmit_drop_total",
    "node_network_up",
    "node_network_mtu_bytes",
    "node_network_speed_bytes",
    "node_pressure_cpu_waiting_seconds_total",
    "node_pressure_memory_waiting_seconds_total",
    "node_pressure_memory_stalled_seconds_total",
    "node_pressure_io_waiting_seconds_total",
    "node_pressure_io_stalled_seconds_total",
    "node_filefd_allocated",
    "node_filefd_maximum",
    "node_context_switches_total",
    "node_forks_total",
    "node_intr_total",
    "node_procs_running",
    "node_procs_blocked",
    "node_boot_time_seconds",
    "node_time_seconds",
    "node_uname_info",
    "node_os_info",
    "node_vmstat_pgfault",
    "node_vmstat_pgmajfault",
    "node_vmstat_pswpin",
    "node_vmstat_pswpout",
    "node_vmstat_oom_kill",
    "node_sockstat_TCP_inuse",
    "node_sockstat_TCP_alloc",
    "node_sockstat_TCP_tw",
    "node_netstat_Tcp_RetransSegs",
    "node_netstat_Tcp_CurrEstab",
    "node_entropy_available_bits",
];

struct Fam {
    kind: MetricType,
    labels: BTreeSet<String>,
}

/// TYPE and label names per family of a text-format payload.
fn families(payload: &[u8]) -> BTreeMap<String, Fam> {
    let mut out: BTreeMap<String, Fam> = BTreeMap::new();
    let mut p = Parser::new(payload, Format::PrometheusText);
    loop {
        match p.next() {
            Ok(Some(Entry::Type { family, kind })) => {
                out.entry(family.into_owned())
                    .or_insert_with(|| Fam {
                        kind,
                        labels: BTreeSet::new(),
                    })
                    .kind = kind;
            }
            Ok(Some(Entry::Sample(s))) => {
                let f = out
                    .entry(s.metric_name().into_owned())
                    .or_insert_with(|| Fam {
                        kind: MetricType::Unknown,
                        labels: BTreeSet::new(),
                    });
                f.labels
                    .extend(s.label_pairs().map(|(n, _)| n.into_owned()));
            }
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("payload does not parse: {e:?}"),
        }
    }
    out
}

#[test]
fn families_match_node_exporter_reference() {
    let Some(dir) = common::data_dir("reference/metrics") else {
        return;
    };
    let reference = std::fs::read(dir.join("node_exporter.prom")).expect("read reference");
    let reference = families(&reference);
    let ours = families(encode(&collect(&HostOptions::default()), false).as_bytes());

    let mut failures = Vec::new();
    println!(
        "{:<48} {:<10} {:<10} status",
        "family", "reference", "klaxon"
    );
    for name in LISTED {
        let Some(r) = reference.get(*name) else {
            println!(
                "{name:<48} {:<10} {:<10} not on this VM's reference",
                "-", "-"
            );
            continue;
        };
        let Some(o) = ours.get(*name) else {
            println!("{name:<48} {:<10} {:<10} MISSING", r.kind.as_str(), "-");
            failures.push(format!("{name}: missing"));
            continue;
        };
        let type_ok = r.kind == o.kind;
        let labels_ok = r.labels == o.labels;
        let status = match (type_ok, labels_ok) {
            (true, true) => "ok".to_string(),
            _ => format!("MISMATCH labels {:?} vs {:?}", r.labels, o.labels),
        };
        println!(
            "{name:<48} {:<10} {:<10} {status}",
            r.kind.as_str(),
            o.kind.as_str()
        );
        if !(type_ok && labels_ok) {
            failures.push(format!("{name}: {status}, type {} vs {}", r.kind, o.kind));
        }
    }
    // Every other family both export must agree too.
    for (name, o) in &ours {
        let Some(r) = reference.get(name) else {
            continue;
        };
        if LISTED.contains(&name.as_str()) {
            continue;
        }
        let type_ok = r.kind == o.kind;
        if !type_ok || r.labels != o.labels {
            println!(
                "{name:<48} {:<10} {:<10} MISMATCH labels {:?} vs {:?}",
                r.kind.as_str(),
                o.kind.as_str(),
                r.labels,
                o.labels
            );
            failures.push(format!(
                "{name}: type {} vs {}, labels {:?} vs {:?}",
                r.kind, o.kind, r.labels, o.labels
            ));
        }
    }
    // Beyond the listed set: report what else differs, without failing.
    let node = |n: &&String| n.starts_with("node_");
    let missing: Vec<_> = reference
        .keys()
        .filter(node)
        .filter(|n| !ours.contains_key(*n))
        .collect();
    let extra: Vec<_> = ours
        .keys()
        .filter(node)
        .filter(|n| !reference.contains_key(*n))
        .collect();
    println!(
        "unlisted reference families we do not export ({}): {missing:?}",
        missing.len()
    );
    println!("families we export that the reference lacks: {extra:?}");
    assert!(
        failures.is_empty(),
        "listed families missing or mismatched: {failures:#?}"
    );
}

type Series = HashMap<(String, Vec<(String, String)>), f64>;

fn by_series(fams: &[FamilySnapshot], kind: Kind) -> Series {
    fams.iter()
        .filter(|f| f.kind == kind)
        .flat_map(|f| {
            f.samples
                .iter()
                .map(move |(l, v)| ((f.name.clone(), l.clone()), *v))
        })
        .collect()
}

fn one(fams: &[FamilySnapshot], name: &str) -> f64 {
    let f = fams
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} missing"));
    assert_eq!(f.samples.len(), 1, "{name}");
    f.samples[0].1
}

fn label<'a>(l: &'a [(String, String)], n: &str) -> &'a str {
    l.iter()
        .find(|(k, _)| k == n)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

#[test]
fn live_values_are_sane() {
    let opts = HostOptions::default();
    let a = collect(&opts);
    std::thread::sleep(Duration::from_millis(100));
    let b = collect(&opts);

    let (ca, cb) = (by_series(&a, Kind::Counter), by_series(&b, Kind::Counter));
    assert!(ca.len() > 50, "too few counter series: {}", ca.len());
    let mut compared = 0;
    for (k, va) in &ca {
        if let Some(vb) = cb.get(k) {
            assert!(vb >= va, "counter went down: {k:?} {va} -> {vb}");
            compared += 1;
        }
    }
    assert!(
        compared * 10 >= ca.len() * 9,
        "series vanished between collections"
    );

    // CPU seconds: positive and bounded by uptime × cores (+ 1% and 2 s slack
    // for tick rounding).
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .expect("uptime")
        .split_whitespace()
        .next()
        .and_then(|s| s.parse().ok())
        .expect("uptime value");
    let cpu = b
        .iter()
        .find(|f| f.name == "node_cpu_seconds")
        .expect("cpu family");
    let cores: BTreeSet<&str> = cpu.samples.iter().map(|(l, _)| label(l, "cpu")).collect();
    let total: f64 = cpu.samples.iter().map(|(_, v)| v).sum();
    let bound = uptime * cores.len() as f64;
    assert!(
        total > 0.0 && total <= bound * 1.01 + 2.0,
        "cpu {total} vs uptime×cores {bound}"
    );
    assert_eq!(cpu.samples.len(), cores.len() * 8, "8 modes per cpu");

    let total_mem = one(&b, "node_memory_MemTotal_bytes");
    assert!(one(&b, "node_memory_MemAvailable_bytes") <= total_mem);
    assert!(one(&b, "node_memory_MemFree_bytes") <= total_mem);
    assert!(total_mem > 0.0);

    let get = |name: &str| -> HashMap<String, f64> {
        b.iter()
            .find(|f| f.name == name)
            .map(|f| {
                f.samples
                    .iter()
                    .map(|(l, v)| (label(l, "mountpoint").to_string(), *v))
                    .collect()
            })
            .unwrap_or_default()
    };
    let (size, free, avail) = (
        get("node_filesystem_size_bytes"),
        get("node_filesystem_free_bytes"),
        get("node_filesystem_avail_bytes"),
    );
    assert!(size.contains_key("/"), "root file system missing: {size:?}");
    for (mp, s) in &size {
        let (f, a) = (free[mp], avail[mp]);
        assert!(a <= f && f <= *s, "{mp}: avail {a} free {f} size {s}");
    }
}

fn fixture() -> HostOptions {
    let root = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/host"));
    HostOptions {
        proc_path: root.join("proc"),
        sys_path: root.join("sys"),
        rootfs: root.join("no-rootfs"),
        ..Default::default()
    }
}

fn value(fams: &[FamilySnapshot], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let f = fams.iter().find(|f| f.name == name)?;
    f.samples
        .iter()
        .find(|(l, _)| l.len() == labels.len() && labels.iter().all(|(n, v)| label(l, n) == *v))
        .map(|(_, v)| *v)
}

#[test]
fn fixture_values_are_exact() {
    let f = collect(&fixture());
    let v = |n: &str, l: &[(&str, &str)]| {
        value(&f, n, l).unwrap_or_else(|| panic!("{n} {l:?} missing"))
    };
    // /proc/stat, USER_HZ = 100.
    assert_eq!(
        v("node_cpu_seconds", &[("cpu", "0"), ("mode", "user")]),
        20.0
    );
    assert_eq!(
        v("node_cpu_seconds", &[("cpu", "0"), ("mode", "idle")]),
        750.0
    );
    assert_eq!(
        v("node_cpu_seconds", &[("cpu", "0"), ("mode", "steal")]),
        0.06
    );
    assert_eq!(
        v("node_cpu_seconds", &[("cpu", "1"), ("mode", "system")]),
        3.0
    );
    assert_eq!(
        v("node_cpu_guest_seconds", &[("cpu", "0"), ("mode", "user")]),
        1.5
    );
    assert_eq!(
        v("node_cpu_guest_seconds", &[("cpu", "0"), ("mode", "nice")]),
        0.07
    );
    let cpu = f
        .iter()
        .find(|x| x.name == "node_cpu_seconds")
        .map(|x| x.samples.len());
    assert_eq!(
        cpu,
        Some(16),
        "2 cpus × 8 modes, aggregate line not exported"
    );
    assert_eq!(v("node_intr", &[]), 123456.0);
    assert_eq!(v("node_context_switches", &[]), 987654.0);
    assert_eq!(v("node_forks", &[]), 4321.0);
    assert_eq!(v("node_boot_time_seconds", &[]), 1_700_000_000.0);
    assert_eq!(v("node_procs_running", &[]), 3.0);
    assert_eq!(v("node_procs_blocked", &[]), 1.0);
    // /proc/meminfo: kB → bytes, `(anon)` → `_anon`, unitless kept as is.
    assert_eq!(v("node_memory_MemTotal_bytes", &[]), 16_000_000.0 * 1024.0);
    assert_eq!(
        v("node_memory_MemAvailable_bytes", &[]),
        9_000_000.0 * 1024.0
    );
    assert_eq!(v("node_memory_SwapTotal_bytes", &[]), 0.0);
    assert_eq!(v("node_memory_Active_anon_bytes", &[]), 300_000.0 * 1024.0);
    assert_eq!(v("node_memory_HugePages_Total", &[]), 4.0);
    assert_eq!(v("node_memory_Hugepagesize_bytes", &[]), 2048.0 * 1024.0);
    // /proc/loadavg.
    assert_eq!(v("node_load1", &[]), 0.52);
    assert_eq!(v("node_load5", &[]), 1.25);
    assert_eq!(v("node_load15", &[]), 2.0);
    // Sources absent from the fixture report failure and emit nothing.
    let ok = |c: &str| v("node_scrape_collector_success", &[("collector", c)]);
    for c in ["cpu", "stat", "meminfo", "loadavg", "uname", "time"] {
        assert_eq!(ok(c), 1.0, "{c}");
    }
    for c in [
        "diskstats",
        "netdev",
        "netclass",
        "filesystem",
        "pressure",
        "vmstat",
        "os",
        "entropy",
    ] {
        assert_eq!(ok(c), 0.0, "{c}");
    }
    assert!(!f
        .iter()
        .any(|x| x.name.starts_with("node_disk_") || x.name.starts_with("node_network_")));
}

#[test]
fn malformed_source_is_skipped_not_fatal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let proc_ = dir.path().join("proc");
    std::fs::create_dir_all(&proc_).expect("mkdir");
    std::fs::write(proc_.join("meminfo"), "MemTotal: lots kB\n").expect("write");
    std::fs::write(proc_.join("loadavg"), "0.1 0.2\n").expect("write");
    std::fs::write(proc_.join("stat"), "cpu0 1 2 x 4\nctxt 5\n").expect("write");
    let f = collect(&HostOptions {
        proc_path: proc_,
        sys_path: dir.path().join("sys"),
        rootfs: dir.path().to_path_buf(),
        ..Default::default()
    });
    let ok = |c: &str| value(&f, "node_scrape_collector_success", &[("collector", c)]);
    assert_eq!(ok("meminfo"), Some(0.0));
    assert_eq!(ok("loadavg"), Some(0.0));
    assert_eq!(ok("cpu"), Some(0.0));
    // `stat` reads other lines of the same file and still succeeds.
    assert_eq!(ok("stat"), Some(1.0));
    assert_eq!(value(&f, "node_context_switches", &[]), Some(5.0));
    assert!(!f
        .iter()
        .any(|x| x.name.starts_with("node_memory_") || x.name.starts_with("node_load")));
}

async fn instant_query(base: &str, q: &str) -> Vec<serde_json::Value> {
    let url = format!(
        "{base}/api/v1/query?query={}",
        klaxon::model::url::query_escape(q)
    );
    let bytes = reqwest::get(url).await.unwrap().bytes().await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    v["data"]["result"].as_array().cloned().unwrap_or_default()
}

/// The embedded default feeds the host exporter to the head in-process as
/// `job="host"`, with the report series of an ordinary target, while
/// klaxon's own /metrics stays klaxon's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_default_feeds_host_job_in_process() {
    let yaml = klaxon::settings::DEFAULT_CONFIG_YAML
        .replace("15s", "1s")
        .replace(
            "rule_files:\n  - rules/*.yml\n  - recording_rules/*.yml\n",
            "",
        );
    let mut cfg = klaxon::settings::load_str(&yaml, "default.yml").unwrap();
    // Its own store: tests in one binary run in parallel.
    let _store_dir = tempfile::tempdir().unwrap();
    cfg.storage.path = _store_dir.path().to_path_buf();
    assert!(cfg.exporters.host.is_some());
    let app = klaxon::app::start(cfg, klaxon::app::StartOptions::on("127.0.0.1:0"))
        .await
        .unwrap();
    let base = format!("http://{}", app.addr);
    let instance = app.addr.to_string();
    tokio::time::sleep(Duration::from_millis(2600)).await;

    let up = instant_query(&base, "up{job=\"host\"}").await;
    assert_eq!(up.len(), 1, "{up:?}");
    assert_eq!(up[0]["metric"]["instance"], instance.as_str());
    assert_eq!(up[0]["value"][1], "1");
    let load = instant_query(&base, "node_load1{job=\"host\"}").await;
    assert_eq!(load.len(), 1, "{load:?}");
    let n = instant_query(&base, "scrape_samples_scraped{job=\"host\"}").await;
    let samples: f64 = n[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(samples > 100.0, "{samples}");

    let own = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        !own.contains("node_load1"),
        "host families leaked into /metrics"
    );
    app.stop().await;
}
