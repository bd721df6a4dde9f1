//! Wiring: builds every stage from a config, binds the listener, and runs
//! until asked to stop. Used by the binary and by integration tests.

use crate::api::{router, AppState};
use crate::config::Config;
use crate::metrics::{register_process_collector, FamilySnapshot, Kind, Registry};
use crate::scrape::manager::Manager;
use crate::scrape::ScrapeMetrics;
use crate::tsdb::{Head, HeadOptions};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

pub mod reload;
pub use reload::{ReloadError, ReloadStatus, Reloader};

/// Why klaxon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Rule files that do not load, one `FILE:LINE:COL: message` per line.
    #[error("{}", .0.join("\n"))]
    Rules(Vec<String>),
    #[error("{0}")]
    Exporter(#[from] crate::exporters::postgres::PostgresError),
    /// The embedded store (alert state) under `storage.path`.
    #[error("opening the store in {path}: {source}")]
    Store {
        path: String,
        source: crate::store::StoreError,
    },
    /// The notify stage (store, silences, notification log) did not start.
    #[error("notify: {0}")]
    Notify(String),
    /// `rule_evaluation.datasource` (datasource mode) could not be set up.
    #[error("{0}")]
    Datasource(#[from] crate::rules::datasource::DatasourceError),
    /// A `remote_write` entry whose client cannot be built (TLS files...).
    #[error("{}", .0.join("\n"))]
    RemoteWrite(Vec<String>),
    #[error("listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// A started klaxon.
/// How long `Running::stop` lets open HTTP responses finish.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Running {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<()>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    remote_write: Arc<crate::remote::RemoteWrite>,
}

/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// Starts everything. The listener is bound before any scrape starts, so a
/// port conflict fails fast.
pub async fn start(cfg: Config, listen: &str) -> Result<Running, StartError> {
    let flags = default_flags(&cfg, listen);
    start_with_flags(cfg, listen, flags).await
}

/// The flags [`start`] reports; the binary adds its own switches (such as
/// [`crate::remote::receive::ENABLE_FLAG`]) before calling
/// [`start_with_flags`].
pub fn default_flags(cfg: &Config, listen: &str) -> std::collections::BTreeMap<String, String> {
    let mut flags = std::collections::BTreeMap::new();
    flags.insert("listen".to_string(), listen.to_string());
    flags.insert(
        "config".to_string(),
        cfg.source_path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    flags
}

/// [`start`] with the command-line flags to report on `/api/v1/status/flags`.
pub async fn start_with_flags(
    cfg: Config,
    listen: &str,
    flags: std::collections::BTreeMap<String, String>,
) -> Result<Running, StartError> {
    start_with_sink(cfg, listen, flags, None).await
}

/// [`start_with_flags`] with the dispatcher that takes the rules' alerts
/// (`None`: firing and resolved alerts are logged).
pub async fn start_with_sink(
    cfg: Config,
    listen: &str,
    flags: std::collections::BTreeMap<String, String>,
    sink: Option<Arc<dyn crate::notify::AlertSink>>,
) -> Result<Running, StartError> {
    // Rule files and the store are checked before the port is bound, like
    // the config; saved alert state is back before the first evaluation.
    let rules = Arc::new(
        crate::rules::manager::RuleManager::load(&cfg, &format!("http://{listen}"))
            .map_err(StartError::Rules)?,
    );
    let exporters = Arc::new(crate::exporters::Exporters::build(&cfg)?);
    let store_err = |source| StartError::Store {
        path: cfg.storage.path.display().to_string(),
        source,
    };
    let store = Arc::new(crate::store::Store::open_config(&cfg.storage).map_err(store_err)?);
    rules.restore(&store).map_err(store_err)?;
    let querier = crate::rules::datasource::start(&cfg.rule_evaluation, &rules).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: listen.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: listen.to_string(),
        source,
    })?;

    let registry = Arc::new(Registry::new());
    register_process_collector(&registry);
    registry
        .gauge_vec(
            "klaxon_build_info",
            "klaxon build information.",
            &["version"],
        )
        .with(&[env!("CARGO_PKG_VERSION")])
        .set(1.0);
    let head = Arc::new(Head::new(HeadOptions::default()));
    register_head_collector(&registry, head.clone());
    // Before any appender starts, so remote write sees every sample.
    let remote_write = crate::remote::RemoteWrite::new(&head, &registry);
    let rw_errors = remote_write.apply_config(&cfg.remote_write, &cfg.global.external_labels);
    if !rw_errors.is_empty() {
        remote_write.stop(Duration::ZERO).await;
        return Err(StartError::RemoteWrite(rw_errors));
    }
    let scrape_metrics = ScrapeMetrics::register(&registry);
    let manager = Manager::new(head.clone(), scrape_metrics.clone());
    // One set of discovery metrics per process: a notifier's discovery
    // manager (alerting.alertmanagers) takes this same `sd_metrics` and
    // reports under name="notify".
    let sd_metrics = crate::discovery::SdMetrics::register(&registry);
    let base_dir = cfg
        .source_path
        .as_ref()
        .and_then(|p| p.parent().map(|d| d.to_path_buf()))
        .unwrap_or_else(|| std::path::PathBuf::from("."));
    manager.attach_discovery(crate::discovery::Manager::new(
        "scrape",
        sd_metrics.clone(),
        crate::discovery::Options {
            base_dir,
            ..Default::default()
        },
    ));
    let rule_metrics = Arc::new(crate::rules::metrics::RuleMetrics::register(&registry));
    let reload = Arc::new(Reloader::new(
        &cfg,
        listen,
        rules.clone(),
        manager.clone(),
        &registry,
    ));

    let cc = cfg
        .command_center
        .clone()
        .unwrap_or_default()
        .with_env(|k| std::env::var(k).ok());
    let ops = crate::ops::Ops::new(crate::ops::OpsOptions {
        registry: &registry,
        store: store.clone(),
        auth: cfg.auth.as_ref(),
        command_center: &cc,
        listen_is_loopback: crate::ops::is_loopback_listen(listen),
    });
    let _ = scrape_metrics.events.set(ops.events.clone());
    reload.set_remote_write(remote_write.clone());
    crate::store::leader::register_metrics(&registry, store.clone());
    let ev = ops.events.clone();
    crate::store::leader::spawn(
        store.clone(),
        &cfg.storage.db.cluster,
        cfg.storage.db.lease,
        move |c| {
            ev.publish("ha", serde_json::json!({"role": if c.leader { "leader" } else { "follower" }, "requeued": c.requeued, "reason": c.reason}));
        },
    );
    let r = reload.clone();
    ops.set_reload_hook(Arc::new(move || r.reload().map_err(|e| e.to_string())));

    let notify = crate::notify::wiring::build(
        &cfg,
        &format!("http://{addr}"),
        store.clone(),
        &registry,
        ops.maintenance.clone(),
        ops.events.clone(),
    )
    .map_err(StartError::Notify)?;
    let dispatcher = notify.dispatcher.clone();
    reload.set_notify(notify.clone());
    let sink = sink.or_else(|| Some(dispatcher.clone() as Arc<dyn crate::notify::AlertSink>));
    let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
    let state = Arc::new(AppState {
        registry,
        manager: manager.clone(),
        head: head.clone(),
        engine: crate::promql::Engine::default(),
        ready: Default::default(),
        config_yaml: cfg.to_yaml().to_string(),
        flags,
        start_time_ms: crate::model::now_millis(),
        retention: cfg.storage.retention,
        rules: rules.clone(),
        exporters: exporters.clone(),
        ops: ops.clone(),
        reload,
        probe_modules: cfg.probes.modules.clone(),
        dispatcher,
        outbox: notify.outbox.clone(),
        shutdown: shutdown_rx.clone(),
        probe_results: Default::default(),
    });
    let app = router(state.clone());
    let server = tokio::spawn(async move {
        // Peer addresses feed the audit log and per-address rate limits.
        let r = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            let _ = shutdown_rx.wait_for(|stop| *stop).await;
        })
        .await;
        if let Err(e) = r {
            tracing::error!(error = %e, "HTTP server");
        }
    });

    let mut scrape_configs = cfg.scrape_configs.clone();
    for (sc, src) in exporters.scrape_jobs(&cfg, &addr.to_string()) {
        manager.set_local_source(&sc.job_name, src);
        scrape_configs.push(sc);
    }
    manager.apply_config(&scrape_configs);
    let mut tasks = Vec::new();
    tasks.push(crate::ops::audit::spawn_retention(
        ops.events.clone(),
        cc.events_retention,
    ));
    tasks.extend(crate::ops::heartbeat::spawn(
        crate::ops::heartbeat::HeartbeatDeps {
            cfg: cc,
            inputs: Arc::new(crate::ops::health::AppHealth {
                rules: rules.clone(),
                scrape: manager.clone(),
                store: store.clone(),
                outbox: Some(notify.outbox.clone()),
                postgres: exporters.postgres.clone(),
            }),
            http: ops.http.clone(),
            state: ops.heartbeat.clone(),
            started: std::time::Instant::now(),
        },
    ));
    rules.spawn(crate::rules::manager::RunContext {
        head: head.clone(),
        engine: state.engine.clone(),
        external_labels: cfg.global.external_labels.clone(),
        store: Some(store.clone()),
        sink,
        metrics: Some(rule_metrics),
        querier,
    });
    tasks.extend(crate::probe::schedule::spawn_recording(
        head.clone(),
        &cfg.probes.probes,
        ops.maintenance.clone(),
        state.probe_results.clone(),
    ));
    let retention = cfg.storage.retention;
    let h = head.clone();
    tasks.push(tokio::spawn(async move {
        let mut t = tokio::time::interval(RETENTION_EVERY);
        loop {
            t.tick().await;
            let cutoff = crate::model::now_millis() - retention.as_millis() as i64;
            let st = h.truncate(cutoff);
            tracing::debug!(?st, "retention");
            release_free_memory();
        }
    }));
    state.ready.store(true, Ordering::Release);
    tracing::info!(%addr, jobs = cfg.scrape_configs.len(), "klaxon started");
    Ok(Running {
        addr,
        state,
        tasks,
        server,
        shutdown_tx,
        remote_write,
    })
}

impl Running {
    /// Stops scraping, then the HTTP server.
    pub async fn stop(self) {
        for t in &self.tasks {
            t.abort();
        }
        self.state.rules.stop();
        self.state.manager.shutdown().await;
        // Ingestion has stopped: send what the remote-write queues hold.
        self.remote_write
            .stop(crate::remote::queue::FLUSH_DEADLINE)
            .await;
        let _ = self.shutdown_tx.send(true);
        // Open responses end on the signal (see `AppState::shutdown`); a
        // client that stops reading must not hold the process forever.
        let mut server = self.server;
        if tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
            .await
            .is_err()
        {
            tracing::warn!(grace = ?SHUTDOWN_GRACE, "HTTP connections still open at shutdown; closing them");
            server.abort();
        }
    }
}

/// Hands memory freed since the last call back to the OS. glibc's malloc
/// keeps freed blocks in the middle of its heap (series creation leaves many
/// small holes behind) until asked; without this the resident size stays at
/// its high-water mark. Measured in docs/benchmarks.md.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim has no preconditions; it only walks malloc's own
    // free lists under malloc's locks.
    unsafe {
        libc::malloc_trim(0);
    }
}

fn register_head_collector(r: &Registry, head: Arc<Head>) {
    r.collector(move |out| {
        let s = head.stats();
        let mut push = |name: &str, help: &str, kind: Kind, v: f64| {
            out.push(FamilySnapshot {
                name: name.into(),
                help: help.into(),
                kind,
                samples: vec![(Vec::new(), v)],
            })
        };
        push(
            "klaxon_tsdb_head_series",
            "Series in the head.",
            Kind::Gauge,
            s.num_series as f64,
        );
        push(
            "klaxon_tsdb_head_series_created",
            "Series created in the head.",
            Kind::Counter,
            s.series_created as f64,
        );
        push(
            "klaxon_tsdb_head_series_removed",
            "Series removed from the head by retention.",
            Kind::Counter,
            s.series_removed as f64,
        );
        push(
            "klaxon_tsdb_head_samples_appended",
            "Samples appended to the head.",
            Kind::Counter,
            s.samples_appended as f64,
        );
        push(
            "klaxon_tsdb_head_chunks",
            "Chunks in the head.",
            Kind::Gauge,
            s.chunks as f64,
        );
        push(
            "klaxon_tsdb_head_chunk_bytes",
            "Bytes of compressed sample data in the head.",
            Kind::Gauge,
            s.chunk_bytes as f64,
        );
        push(
            "klaxon_tsdb_head_memory_bytes",
            "Estimated bytes held by the head (series, index, symbols, chunks).",
            Kind::Gauge,
            s.memory_bytes as f64,
        );
        push(
            "klaxon_tsdb_out_of_order_samples",
            "Samples rejected as out of order.",
            Kind::Counter,
            s.out_of_order as f64,
        );
        push(
            "klaxon_tsdb_duplicate_samples",
            "Samples rejected for a duplicate timestamp with another value.",
            Kind::Counter,
            s.duplicates as f64,
        );
        push(
            "klaxon_tsdb_out_of_bounds_samples",
            "Samples rejected as older than retention.",
            Kind::Counter,
            s.out_of_bounds as f64,
        );
        if s.num_series > 0 {
            push(
                "klaxon_tsdb_head_min_time_seconds",
                "Lowest timestamp in the head.",
                Kind::Gauge,
                s.min_time as f64 / 1000.0,
            );
            push(
                "klaxon_tsdb_head_max_time_seconds",
                "Highest timestamp in the head.",
                Kind::Gauge,
                s.max_time as f64 / 1000.0,
            );
        }
    });
}
