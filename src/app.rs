//! Wiring: builds every stage from a config, binds the listener, and runs
//! until asked to stop. Used by the binary and by integration tests.
//!
//! The order is the pipeline's: what every stage needs (store, registry,
//! event bus, maintenance mode) first, handed to the constructors; then
//! the stages; then the reloader over the reloadable ones and the
//! operations stage that triggers it; last the HTTP state each handler
//! takes its part of. Nothing is filled in after construction.

use crate::api::{router, AppState};
use crate::metrics::{register_process_collector, FamilySnapshot, Kind, Registry};
use crate::scrape::manager::Manager;
use crate::scrape::ScrapeMetrics;
use crate::settings::Config;
use crate::tsdb::{Head, HeadOptions};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

pub mod capacity;
pub mod reload;
pub use reload::{ReloadError, ReloadStatus, Reloader};

/// Why klaxon could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Rule files that do not load, one `FILE:LINE:COL: message` per line.
    #[error("{0}")]
    Rules(crate::rules::manager::LoadErrors),
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
    Notify(#[from] crate::notify::wiring::WiringError),
    /// An autoheal rule's HTTP client cannot be built (TLS files, proxy).
    #[error("{0}")]
    Autoheal(#[source] BoxError),
    /// `rule_evaluation.datasource` (datasource mode) could not be set up.
    #[error("{0}")]
    Datasource(#[from] crate::rules::datasource::DatasourceError),
    /// A `remote_write` entry whose client cannot be built (TLS files...).
    #[error("{}", .0.join("\n"))]
    RemoteWrite(Vec<String>),
    /// `global.query_log_file` cannot be opened for appending.
    #[error("opening the query log {path}: {source}")]
    QueryLog {
        path: String,
        source: std::io::Error,
    },
    /// An `alerting.alertmanagers` entry whose client cannot be built.
    #[error("{0}")]
    Alerting(#[source] BoxError),
    /// The write-ahead log under `storage.path/wal` cannot be opened or
    /// read.
    #[error("storage.path: {0}")]
    Wal(#[from] crate::tsdb::wal::WalError),
    /// The head's saved deletions (admin API) cannot be read.
    #[error("storage.path: {0}")]
    TsdbAdmin(crate::tsdb::admin::AdminError),
    #[error("listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
}

/// A stage's error that is still a message (the stage has no error type of
/// its own yet), carried as an error so `StartError` has typed sources.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// How long `Running::stop` lets open HTTP responses finish.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// A started klaxon.
pub struct Running {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    tasks: Vec<JoinHandle<()>>,
    server: JoinHandle<()>,
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    remote_write: Arc<crate::remote::RemoteWrite>,
    /// `--storage.remote.flush-deadline`, the budget of [`Running::stop`].
    flush_deadline: Duration,
    /// Written at the end of [`Running::stop`].
    snapshots: Arc<crate::tsdb::snapshot::Snapshots>,
}

/// klaxon's default listen address (loopback: nothing is exposed unless
/// asked).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9470";

/// How to run klaxon besides its config file: the settings of `klaxon run`
/// given on the command line, typed. `/api/v1/status/flags` shows them
/// under Prometheus' flag names ([`StartOptions::flags`]).
#[derive(Clone)]
pub struct StartOptions {
    /// `--listen`: where the HTTP API listens (`:0` picks a free port).
    pub listen: String,
    /// `--web.external-url`, `--web.route-prefix`, `--web.config.file`;
    /// `None`: the URL of the bound address, served at `/`.
    pub web: Option<crate::api::web::WebOptions>,
    /// `--rules.alert.resend-delay`.
    pub resend_delay: Duration,
    /// `--alertmanager.notification-queue-capacity` and the batch size.
    pub notifier: crate::notifier::NotifierOptions,
    /// DNS servers for `dns_sd_configs` (scrape jobs and Alertmanagers);
    /// `None` reads /etc/resolv.conf.
    pub dns_servers: Option<Vec<SocketAddr>>,
    /// Where the rules' alerts go besides the external Alertmanagers;
    /// `None`: the built-in router (the notify stage).
    pub sink: Option<Arc<dyn crate::notify::AlertSink>>,
    /// `--web.enable-remote-write-receiver`: accept `POST /api/v1/write`.
    pub enable_remote_write_receiver: bool,
    /// `--web.enable-otlp-receiver`: accept `POST /api/v1/otlp/v1/metrics`.
    pub enable_otlp_receiver: bool,
    /// `--web.enable-admin-api`: serve `/api/v1/admin/tsdb/*`.
    pub enable_admin_api: bool,
    /// `--alerts.max`: alerts held from the API and rules together (0: no
    /// limit).
    pub alerts_max: usize,
    /// `--storage.remote.flush-deadline`: how long [`Running::stop`] may
    /// take in all.
    pub flush_deadline: Duration,
    /// `--web.max-connections` as given (the limit in force is
    /// `Config::web`, capped by the open-files limit).
    pub max_connections: usize,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            listen: DEFAULT_LISTEN.to_string(),
            web: None,
            resend_delay: crate::rules::manager::RESEND_DELAY,
            notifier: Default::default(),
            dns_servers: None,
            sink: None,
            enable_remote_write_receiver: false,
            enable_otlp_receiver: false,
            enable_admin_api: false,
            alerts_max: crate::notify::dispatch::DEFAULT_MAX_ALERTS,
            flush_deadline: crate::remote::queue::FLUSH_DEADLINE,
            max_connections: crate::api::serve::DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl StartOptions {
    /// The defaults, listening on `listen`.
    pub fn on(listen: impl Into<String>) -> StartOptions {
        StartOptions {
            listen: listen.into(),
            ..Default::default()
        }
    }

    /// The flags as `/api/v1/status/flags` lists them: Prometheus' names,
    /// values as its flags print them. The query and web server settings
    /// come from `cfg`, where the binary puts them.
    pub fn flags(
        &self,
        cfg: &Config,
        web: &crate::api::web::WebOptions,
    ) -> std::collections::BTreeMap<String, String> {
        let d = crate::config::format_duration;
        let q = &cfg.query;
        [
            ("listen", self.listen.clone()),
            (
                "config",
                cfg.source_path
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
            ),
            ("query.timeout", d(q.engine.timeout)),
            ("query.max-samples", q.engine.max_samples.to_string()),
            ("query.max-concurrency", q.max_concurrency.to_string()),
            ("query.lookback-delta", d(q.engine.lookback_delta)),
            (
                "web.enable-remote-write-receiver",
                self.enable_remote_write_receiver.to_string(),
            ),
            (
                "web.enable-otlp-receiver",
                self.enable_otlp_receiver.to_string(),
            ),
            ("web.enable-admin-api", self.enable_admin_api.to_string()),
            ("web.max-connections", self.max_connections.to_string()),
            ("web.read-header-timeout", d(cfg.web.header_read_timeout)),
            ("alerts.max", self.alerts_max.to_string()),
            ("rules.alert.resend-delay", d(self.resend_delay)),
            (
                "alertmanager.notification-queue-capacity",
                self.notifier.queue_capacity.to_string(),
            ),
            ("web.external-url", web.external_url.clone()),
            ("web.route-prefix", web.route_prefix.clone()),
            ("storage.remote.flush-deadline", d(self.flush_deadline)),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// How long `Running::stop` waits for queued alerts to reach the
/// external Alertmanagers.
const NOTIFIER_DRAIN: Duration = Duration::from_secs(5);

/// Retention runs between two `malloc_trim`s when retention freed nothing.
const TRIM_EVERY: u32 = 10;

/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(60);

/// Starts everything. The listener is bound before any scrape starts, so a
/// port conflict fails fast.
pub async fn start(cfg: Config, opts: StartOptions) -> Result<Running, StartError> {
    let listen = opts.listen.as_str();
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
    // The WAL directory must be writable before anything is started.
    let wal = Arc::new(crate::tsdb::wal::Wal::open(
        &cfg.storage.path.join("wal"),
        crate::tsdb::wal::WalOptions::default(),
    )?);
    let head = Arc::new(Head::new(HeadOptions::default()));
    head.exemplars().resize(cfg.storage.max_exemplars);
    // Not ready until the WAL is replayed (`/-/ready` says so). Replay
    // runs on its own threads while the rest starts (rules, notifier,
    // listener, blocks); it is awaited below, before anything appends:
    // scrapes, rules and probes start on a head that already holds what
    // the log kept.
    head.set_replaying(true);
    let snapshots = Arc::new(crate::tsdb::snapshot::Snapshots::new(
        &cfg.storage.path,
        cfg.storage.memory_snapshot_on_shutdown,
    ));
    let replay = {
        let cutoff = crate::model::now_millis() - cfg.storage.retention.as_millis() as i64;
        let (h, w, s) = (head.clone(), wal.clone(), snapshots.clone());
        let chunks_dir = cfg.storage.path.join("chunks_head");
        tokio::task::spawn_blocking(move || {
            let loaded = open_head_chunks(&h, &chunks_dir);
            // The memory snapshot of the last clean stop, if usable: the
            // WAL it covers is not read.
            let snapshot = s.load(&w.dir);
            h.replay_with_snapshot(&w, cutoff, loaded, snapshot)
        })
    };
    let querier = crate::rules::datasource::start(&cfg.rule_evaluation, &rules).await?;
    let alerting = crate::notifier::prepare(&cfg).map_err(|e| StartError::Alerting(e.into()))?;
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
    // Links name the bound port when none is configured (`:0` in tests).
    let web = opts
        .web
        .clone()
        .unwrap_or_else(|| crate::api::web::WebOptions::for_listen(&addr.to_string()));
    rules.set_external_url(&web.external_url);

    // What every stage needs: the registry, the event bus (on the store)
    // and maintenance mode.
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
    let events = crate::events::Events::new(store.clone());
    let maintenance = Arc::new(crate::maintenance::Maintenance::new());
    register_head_collector(&registry, head.clone());
    // Persisted blocks under storage.path (Prometheus' format), read-only,
    // served beside the head; a damaged one is skipped and counted.
    let dir = cfg.storage.path.clone();
    let loaded = tokio::task::spawn_blocking(move || crate::tsdb::block::load_blocks(&dir))
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "loading blocks failed; serving the head only");
            Default::default()
        });
    if !loaded.blocks.is_empty() || !loaded.failed.is_empty() {
        tracing::info!(
            loaded = loaded.blocks.len(),
            skipped = loaded.failed.len(),
            "persisted blocks opened"
        );
    }
    // The admin API's deletions: tombstones on blocks, a mask on the head.
    let deletions = Arc::new(
        crate::tsdb::admin::HeadDeletions::open(head.clone(), &cfg.storage.path)
            .map_err(StartError::TsdbAdmin)?,
    );
    let blocks_failed = loaded.failed.len() as u64;
    let block_set = Arc::new(crate::tsdb::compact::BlockSet::new(loaded.blocks));
    let tsdb = Arc::new(crate::tsdb::admin::Tsdb::new(
        &cfg.storage.path,
        deletions.clone(),
        block_set.clone(),
    ));
    let storage = tsdb.queryable();
    register_wal_collector(&registry, wal.clone());
    register_snapshot_collector(&registry, snapshots.clone());
    // Its queues start once the WAL they read is replayed (below).
    let remote_write = crate::remote::RemoteWrite::new(&head, &registry);
    let scrape_metrics = ScrapeMetrics::register(&registry, Some(events.clone()));
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
    let sd_options = crate::discovery::Options {
        base_dir,
        dns_servers: opts.dns_servers.clone(),
        ..Default::default()
    };
    manager.attach_discovery(crate::discovery::Manager::new(
        "scrape",
        sd_metrics.clone(),
        sd_options.clone(),
    ));
    let rule_metrics = Arc::new(crate::rules::metrics::RuleMetrics::register(&registry));
    let cc = cfg
        .command_center
        .clone()
        .unwrap_or_default()
        .with_env(|k| std::env::var(k).ok());
    crate::store::leader::register_metrics(&registry, store.clone());
    let ev = events.clone();
    crate::store::leader::spawn(
        store.clone(),
        &cfg.storage.db.cluster,
        cfg.storage.db.lease,
        move |c| {
            ev.publish("ha", serde_json::json!({"role": if c.leader { "leader" } else { "follower" }, "requeued": c.requeued, "reason": c.reason}));
        },
    );

    let notify = crate::notify::wiring::build(
        cfg.notify.as_ref(),
        &web.external_url,
        store.clone(),
        &registry,
        maintenance.clone(),
        events.clone(),
    )
    .map_err(StartError::Notify)?;
    let dispatcher = notify.dispatcher.clone();
    // Auto-healing: the config's rules, the API's from the store, and the
    // receiver circuit breakers in the outbox.
    let autoheal = crate::ops::autoheal::engine::Engine::new(
        &registry,
        store.clone(),
        events.clone(),
        maintenance.clone(),
    );
    let ah = cfg.autoheal.clone().unwrap_or_default();
    let clients = crate::ops::autoheal::engine::Engine::prepare(&ah.rules)
        .map_err(|e| StartError::Autoheal(e.into()))?;
    autoheal.apply_config(ah.rules, clients);
    if let Err(e) = autoheal.load_from_store() {
        tracing::error!(error = %e, "autoheal: loading the API's rules failed");
    }
    notify.outbox.set_breaker(ah.receiver_breaker);
    // External Alertmanagers (`alerting:`) get the rules' alerts beside the
    // built-in router; with no Alertmanager configured the notifier passes.
    // Their SD entries run on a discovery manager of their own
    // (name="notify"), as Prometheus' notifier has.
    let notifier = crate::notifier::Notifier::new(
        &registry,
        opts.notifier,
        crate::discovery::Manager::new("notify", sd_metrics.clone(), sd_options),
    );
    notifier.apply(alerting);
    let otlp_receiver = opts.enable_otlp_receiver.then(|| {
        Arc::new(crate::otlp::Receiver::new(
            head.clone(),
            cfg.otlp.clone(),
            &registry,
        ))
    });
    let mut stages: Vec<Box<dyn reload::ReloadStage>> = vec![
        Box::new(reload::RulesStage(rules.clone())),
        Box::new(reload::ScrapeStage(manager.clone())),
        Box::new(reload::NotifyStage(notify.clone())),
        Box::new(reload::AutohealStage(autoheal.clone())),
        Box::new(reload::AlertingStage(notifier.clone())),
        Box::new(reload::RemoteWriteStage(remote_write.clone())),
    ];
    if let Some(r) = &otlp_receiver {
        stages.push(Box::new(reload::OtlpStage(r.clone())));
    }
    // Every reloadable stage, in the order a reload applies them.
    let reload = Arc::new(Reloader::new(
        &cfg,
        reload::ConfigSource::of(&cfg, listen, &web.route_prefix),
        stages,
        &registry,
    ));
    let ops = crate::ops::Ops::new(crate::ops::OpsOptions {
        registry: &registry,
        store: store.clone(),
        events: events.clone(),
        maintenance: maintenance.clone(),
        reload: reload.clone(),
        auth: cfg.auth.as_ref(),
        command_center: &cc,
        listen_is_loopback: crate::ops::is_loopback_listen(listen),
        external_host: crate::api::guard::url_host(&web.external_url),
    });
    let router_sink = opts
        .sink
        .clone()
        .unwrap_or_else(|| dispatcher.clone() as Arc<dyn crate::notify::AlertSink>);
    let sink: Option<Arc<dyn crate::notify::AlertSink>> =
        Some(Arc::new(crate::notifier::FanOut(vec![
            router_sink,
            notifier.clone(),
        ])));
    let (shutdown_tx, mut shutdown_rx) = tokio::sync::watch::channel(false);
    let query_log =
        match &cfg.global.query_log_file {
            Some(p) => Some(crate::api::query::QueryLog::open(p).map_err(|source| {
                StartError::QueryLog {
                    path: p.display().to_string(),
                    source,
                }
            })?),
            None => None,
        };
    let remote_write_receiver = opts.enable_remote_write_receiver.then(|| {
        Arc::new(crate::remote::receive::Receiver::new(
            head.clone(),
            &registry,
        ))
    });
    let query_registry = registry.clone();
    let state = Arc::new(AppState {
        registry,
        manager: manager.clone(),
        head: head.clone(),
        storage: Arc::new(storage),
        tsdb: tsdb.clone(),
        engine: crate::promql::Engine::new(cfg.query.engine.clone()),
        queries: Arc::new(crate::api::query::QueryLimits::new(
            cfg.query.max_concurrency,
            query_log,
            &query_registry,
        )),
        ready: Default::default(),
        flags: opts.flags(&cfg, &web),
        admin_api: opts.enable_admin_api,
        alerts_max: opts.alerts_max,
        remote_write_receiver,
        otlp_receiver,
        start_time_ms: crate::model::now_millis(),
        retention: cfg.storage.retention,
        rules: rules.clone(),
        exporters: exporters.clone(),
        ops: ops.clone(),
        reload: reload.clone(),
        probe_modules: cfg.probes.modules.clone(),
        dispatcher,
        outbox: notify.outbox.clone(),
        notifier: notifier.clone(),
        shutdown: shutdown_rx.clone(),
        probe_results: Default::default(),
        autoheal: autoheal.clone(),
    });
    let mut app = crate::api::web::with_prefix(router(state.clone()), &web.route_prefix);
    if let Some(wc) = web.config.clone() {
        app = app.layer(axum::middleware::from_fn(move |req, next| {
            crate::api::webconfig::layer(wc.clone(), req, next)
        }));
    }
    warn_if_open(listen, &cfg, web.config.as_deref());
    let shutdown = async move {
        let _ = shutdown_rx.wait_for(|stop| *stop).await;
    };
    let limit_hits = state.registry.counter(
        "klaxon_http_connection_limit_reached",
        "Times a connection had to wait because --web.max-connections were open.",
    );
    let serve_opts = cfg.web;
    let server = match web.config.as_ref().and_then(|c| c.tls.clone()) {
        None => {
            use axum::serve::ListenerExt;
            let tcp = listener.tap_io(|s| {
                let _ = s.set_nodelay(true);
            });
            tokio::spawn(crate::api::serve::serve(
                tcp, app, serve_opts, limit_hits, shutdown,
            ))
        }
        Some(tls) => {
            let tls = crate::api::webconfig::TlsListener::new(listener, tls).map_err(|source| {
                StartError::Bind {
                    addr: listen.to_string(),
                    source,
                }
            })?;
            tokio::spawn(crate::api::serve::serve(
                tls, app, serve_opts, limit_hits, shutdown,
            ))
        }
    };

    // The replay started above must be over before anything appends.
    let replayed = replay.await;
    match replayed {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            stop_early(shutdown_tx, server, &remote_write).await;
            return Err(StartError::Wal(e));
        }
        Err(e) => {
            stop_early(shutdown_tx, server, &remote_write).await;
            return Err(StartError::Wal(crate::tsdb::wal::WalError::Io {
                op: "replay",
                path: wal.dir.display().to_string(),
                source: std::io::Error::other(e.to_string()),
            }));
        }
    }
    if head.attach_wal(wal.clone()).is_err() {
        tracing::warn!("WAL already attached");
    }
    // Compaction and block retention start on the replayed head (which
    // now refuses samples older than the newest block's end).
    crate::tsdb::block::fault::from_env();
    let compactor = {
        let opts = crate::tsdb::compact::CompactorOptions {
            min_block_ms: cfg.storage.min_block_duration.as_millis() as i64,
            retention_ms: cfg.storage.retention.as_millis() as i64,
            retention_size: cfg.storage.retention_size,
        };
        let (dir, h, b) = (cfg.storage.path.clone(), head.clone(), block_set.clone());
        // Blocks are written from the head as queries see it: samples the
        // admin API deleted stay deleted.
        let reader: Arc<dyn crate::tsdb::Queryable> = deletions.clone();
        let made = tokio::task::spawn_blocking(move || {
            crate::tsdb::compact::Compactor::new(&dir, h, b, opts).with_head_reader(reader)
        })
        .await;
        match made {
            Ok(c) => Arc::new(c),
            Err(e) => {
                stop_early(shutdown_tx, server, &remote_write).await;
                return Err(StartError::Wal(crate::tsdb::wal::WalError::Io {
                    op: "compactor",
                    path: cfg.storage.path.display().to_string(),
                    source: std::io::Error::other(e.to_string()),
                }));
            }
        }
    };
    tsdb.set_compactor(compactor.clone());
    register_blocks_collector(&state.registry, compactor.clone(), blocks_failed);
    // Before any appender starts: each queue reads the WAL from where it
    // had got to (a new one from here on).
    let rw_errors = remote_write.apply_config(&cfg.remote_write, &cfg.global.external_labels);
    if !rw_errors.is_empty() {
        stop_early(shutdown_tx, server, &remote_write).await;
        return Err(StartError::RemoteWrite(rw_errors));
    }

    let mut scrape_configs = cfg.scrape_configs.clone();
    for (sc, src) in exporters.scrape_jobs(&cfg, &addr.to_string()) {
        manager.set_local_source(&sc.job_name, src);
        scrape_configs.push(sc);
    }
    manager.apply_config(&scrape_configs);
    let mut tasks = Vec::new();
    tasks.push(crate::store::health::monitor(&store));
    tasks.push(autoheal.spawn(state.dispatcher.clone()));
    tasks.push(crate::ops::audit::spawn_retention(
        events.clone(),
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
        storage: Some(state.storage.clone()),
        resend_delay: opts.resend_delay,
    });
    tasks.extend(crate::probe::schedule::spawn_recording(
        head.clone(),
        &cfg.probes.probes,
        maintenance.clone(),
        state.probe_results.clone(),
    ));
    let retention = cfg.storage.retention;
    let shortest = scrape_configs
        .iter()
        .map(|s| s.scrape_interval)
        .min()
        .unwrap_or(cfg.global.scrape_interval);
    // The head holds up to about two block ranges; older samples are in
    // blocks on disk.
    let head_span = retention.min(2 * cfg.storage.min_block_duration);
    tasks.push(capacity::spawn_check(head.clone(), head_span, shortest));
    tasks.push(spawn_chunk_writer(head.clone()));
    let h = head.clone();
    tasks.push(tokio::spawn(async move {
        let mut t = tokio::time::interval(RETENTION_EVERY);
        let mut trims = 0u32;
        loop {
            t.tick().await;
            let cutoff = crate::model::now_millis() - retention.as_millis() as i64;
            let st = h.truncate(cutoff);
            tracing::debug!(?st, "retention");
            trims += 1;
            // What the head dropped, the next checkpoint drops; it runs
            // off the runtime's workers (it writes the whole head).
            let hc = h.clone();
            match tokio::task::spawn_blocking(move || hc.maybe_checkpoint()).await {
                Ok(Err(e)) => tracing::error!(error = %e, "WAL checkpoint failed"),
                Err(e) => tracing::error!(error = %e, "WAL checkpoint task"),
                Ok(Ok(_)) => {}
            }
            // Trimming walks malloc's free lists: worth it after frees, and
            // now and then for what series creation left behind.
            if st.freed() || trims >= TRIM_EVERY {
                trims = 0;
                release_free_memory();
            }
        }
    }));
    tasks.push(spawn_compaction(compactor, cfg.storage.min_block_duration));
    state.ready.store(true, Ordering::Release);
    tracing::info!(%addr, jobs = cfg.scrape_configs.len(), "klaxon started");
    Ok(Running {
        addr,
        state,
        tasks,
        server,
        shutdown_tx,
        remote_write,
        flush_deadline: opts.flush_deadline,
        snapshots,
    })
}

impl Running {
    /// Stops scraping, then the HTTP server, within the flush deadline of
    /// [`StartOptions`] (Prometheus' default: 1m).
    pub async fn stop(self) {
        let deadline = self.flush_deadline;
        self.stop_within(deadline).await
    }

    /// [`Running::stop`] with everything done within `deadline`
    /// (`--storage.remote.flush-deadline`): remote-write queues get most of
    /// what is left to send what they hold, open HTTP responses the rest
    /// (at most [`SHUTDOWN_GRACE`]). An unreachable remote-write endpoint
    /// cannot hold the stop past a Kubernetes grace period set above it.
    pub async fn stop_within(self, deadline: Duration) {
        let end = std::time::Instant::now() + deadline;
        let left = || end.saturating_duration_since(std::time::Instant::now());
        for t in &self.tasks {
            t.abort();
        }
        self.state.rules.stop();
        // No more alerts come: let the external Alertmanagers have what
        // is queued (Prometheus drains on shutdown too), within the stop's
        // deadline.
        self.state
            .notifier
            .stop(NOTIFIER_DRAIN.min(left().mul_f64(0.2)))
            .await;
        if tokio::time::timeout(left(), self.state.manager.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("scrape loops still running at the stop deadline");
        }
        // Ingestion has stopped: make the log durable.
        if let Some(wal) = self.state.head.wal() {
            if let Err(e) = wal.sync() {
                tracing::error!(error = %e, "WAL sync at stop");
            }
        }
        // Ingestion has stopped: send what the remote-write queues hold.
        // The queues' own deadline leaves them room to drop the rest in
        // time; the outer one bounds that too.
        let queues = left().mul_f64(0.8);
        if tokio::time::timeout(left(), self.remote_write.stop(queues))
            .await
            .is_err()
        {
            tracing::warn!(deadline = ?deadline, "remote write still flushing at the stop deadline; left behind");
        }
        let _ = self.shutdown_tx.send(true);
        // Open responses end on the signal (see `AppState::shutdown`); a
        // client that stops reading must not hold the process forever.
        let grace = SHUTDOWN_GRACE.min(left());
        let mut server = self.server;
        if tokio::time::timeout(grace, &mut server).await.is_err() {
            tracing::warn!(grace = ?grace, "HTTP connections still open at shutdown; closing them");
            server.abort();
        }
        // Nothing appends any more (remote write came through the server):
        // the memory snapshot the next start begins from.
        let (head, snapshots) = (self.state.head.clone(), self.snapshots.clone());
        match tokio::task::spawn_blocking(move || snapshots.write(&head)).await {
            Ok(Err(e)) => {
                tracing::error!(error = %e, "memory snapshot at stop failed; the next start replays the WAL")
            }
            Err(e) => tracing::error!(error = %e, "memory snapshot task"),
            Ok(Ok(_)) => {}
        }
    }
}

/// One warning at start when anyone who can reach a non-loopback listener
/// may use it without credentials, saying what they may do.
fn warn_if_open(listen: &str, cfg: &Config, web: Option<&crate::api::webconfig::WebConfig>) {
    if let Some(w) = open_access_warning(listen, cfg, web) {
        tracing::warn!(listen, "{w}");
    }
}

/// The text of [`warn_if_open`]'s warning, `None` when there is nothing to
/// warn about (loopback, basic auth users, or no anonymous role).
fn open_access_warning(
    listen: &str,
    cfg: &Config,
    web: Option<&crate::api::webconfig::WebConfig>,
) -> Option<String> {
    if crate::ops::is_loopback_listen(listen) || web.is_some_and(|w| !w.users.is_empty()) {
        return None;
    }
    let role = match &cfg.auth {
        None => Some("viewer"),
        // Not written: nothing on a non-loopback listener.
        Some(a) => a.anonymous_role.flatten().map(|r| r.as_str()),
    }?;
    let more = match role {
        "viewer" => "no changes",
        "operator" => "plus create and expire silences, post alerts, remote write",
        _ => "plus reload and every other change",
    };
    Some(format!(
        "listening on {listen} without authentication: anyone who can reach it may act as {role} \
         (read every API: queries, series, targets, alerts, silences, rules, status; {more}); \
         set basic_auth_users in --web.config.file, or auth.tokens with anonymous_role: none"
    ))
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

/// Stops what `start` began before it failed (the server, remote write).
async fn stop_early(
    shutdown_tx: tokio::sync::watch::Sender<bool>,
    server: JoinHandle<()>,
    remote_write: &crate::remote::RemoteWrite,
) {
    remote_write.stop(Duration::ZERO).await;
    let _ = shutdown_tx.send(true);
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, server).await;
}

fn register_wal_collector(r: &Registry, wal: Arc<crate::tsdb::wal::Wal>) {
    r.collector(move |out| {
        use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
        let st = &wal.stats;
        let mut push = |name: &str, help: &str, kind: Kind, v: f64| {
            out.push(FamilySnapshot::single(name, help, kind, v))
        };
        let replay = st.replay_micros.load(Relaxed);
        if replay > 0 {
            push(
                "klaxon_tsdb_wal_replay_duration_seconds",
                "Time the WAL replay at start took.",
                Kind::Gauge,
                replay as f64 / 1e6,
            );
        }
        let counters: [(&str, &str, &AtomicU64); 6] = [
            (
                "klaxon_tsdb_wal_corruptions",
                "Damaged WAL records found at replay (each ends its file).",
                &st.corruptions,
            ),
            (
                "klaxon_tsdb_wal_writes_failed",
                "WAL writes that failed (the batch was not committed).",
                &st.write_failures,
            ),
            (
                "klaxon_tsdb_wal_bytes_written",
                "Bytes written to WAL segments.",
                &st.bytes,
            ),
            (
                "klaxon_tsdb_wal_fsyncs",
                "fsync calls on WAL segments.",
                &st.fsyncs,
            ),
            (
                "klaxon_tsdb_checkpoint_creations",
                "WAL checkpoints written.",
                &st.checkpoints,
            ),
            (
                "klaxon_tsdb_checkpoint_creations_failed",
                "WAL checkpoints that failed.",
                &st.checkpoint_failures,
            ),
        ];
        for (name, help, v) in counters {
            push(name, help, Kind::Counter, v.load(Relaxed) as f64);
        }
        push(
            "klaxon_tsdb_wal_segment_current",
            "Number of the WAL segment being written.",
            Kind::Gauge,
            st.segment.load(Relaxed) as f64,
        );
    });
}

fn register_snapshot_collector(r: &Registry, snaps: Arc<crate::tsdb::snapshot::Snapshots>) {
    r.collector(move |out| {
        use std::sync::atomic::Ordering::Relaxed;
        let st = &snaps.stats;
        for (name, help, v) in [
            (
                "klaxon_tsdb_snapshot_replay_error",
                "Memory snapshots found at start that could not be used (the WAL was replayed instead).",
                &st.replay_errors,
            ),
            (
                "klaxon_tsdb_snapshot_loaded",
                "Memory snapshots restored at start.",
                &st.loaded,
            ),
        ] {
            out.push(FamilySnapshot::single(
                name,
                help,
                Kind::Counter,
                v.load(Relaxed) as f64,
            ));
        }
    });
}

/// How often compaction looks at the head and the blocks: every minute,
/// as Prometheus, or four times per block range when that is shorter.
fn compaction_every(block: Duration) -> Duration {
    (block / 4).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

fn spawn_compaction(
    c: Arc<crate::tsdb::compact::Compactor>,
    block: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // The first pass one period after start, as Prometheus (whose
        // first compaction comes a minute after start).
        let every = compaction_every(block);
        let mut t = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            t.tick().await;
            let c = c.clone();
            // Failures are logged and counted by the compactor; the next
            // tick retries.
            if let Err(e) = tokio::task::spawn_blocking(move || c.run()).await {
                tracing::error!(error = %e, "compaction task");
            }
        }
    })
}

fn register_blocks_collector(
    r: &Registry,
    c: Arc<crate::tsdb::compact::Compactor>,
    failed_at_start: u64,
) {
    r.collector(move |out| {
        use std::sync::atomic::Ordering::Relaxed;
        let mut push = |name: &str, help: &str, kind: Kind, v: f64| {
            out.push(FamilySnapshot::single(name, help, kind, v))
        };
        let blocks = c.blocks();
        push(
            "klaxon_tsdb_blocks_loaded",
            "Persisted blocks served.",
            Kind::Gauge,
            blocks.len() as f64,
        );
        push(
            "klaxon_tsdb_block_corruptions",
            "Damaged blocks skipped at start plus damaged series or chunks met by queries.",
            Kind::Counter,
            (failed_at_start + blocks.read_errors()) as f64,
        );
        let st = &c.stats;
        let counters: [(&str, &str, &std::sync::atomic::AtomicU64); 6] = [
            (
                "klaxon_tsdb_compactions",
                "Blocks written by compaction (from the head or from other blocks).",
                &st.compactions,
            ),
            (
                "klaxon_tsdb_compactions_failed",
                "Compactions that failed (retried on the next pass).",
                &st.failed,
            ),
            (
                "klaxon_tsdb_head_compactions",
                "Blocks written from the head.",
                &st.head_compactions,
            ),
            (
                "klaxon_tsdb_time_retentions",
                "Retention passes that deleted blocks by time.",
                &st.time_retentions,
            ),
            (
                "klaxon_tsdb_size_retentions",
                "Retention passes that deleted blocks by size.",
                &st.size_retentions,
            ),
            (
                "klaxon_tsdb_blocks_deleted",
                "Blocks deleted by retention.",
                &st.blocks_deleted,
            ),
        ];
        for (name, help, v) in counters {
            push(name, help, Kind::Counter, v.load(Relaxed) as f64);
        }
        push(
            "klaxon_tsdb_compaction_seconds",
            "Time spent compacting.",
            Kind::Counter,
            st.micros.load(Relaxed) as f64 / 1e6,
        );
        crate::tsdb::compact::push_metrics(&c, &mut push);
        push(
            "klaxon_tsdb_storage_blocks_bytes",
            "Bytes of the served blocks on disk (at the last retention pass).",
            Kind::Gauge,
            st.blocks_bytes.load(Relaxed) as f64,
        );
    });
}

/// How often full chunks move from the heap to the head chunk files.
const CHUNK_WRITE_EVERY: Duration = Duration::from_secs(1);

/// Opens `storage.path/chunks_head` and attaches it to the head; what it
/// holds is handed to replay. A directory that cannot be used leaves full
/// chunks in memory (logged), it does not stop the start.
fn open_head_chunks(head: &Head, dir: &std::path::Path) -> crate::tsdb::head_chunks::Loaded {
    match crate::tsdb::head_chunks::HeadChunks::open(dir) {
        Ok((hc, loaded)) => {
            tracing::info!(dir = %dir.display(), chunks = loaded.chunks, series = loaded.series.len(),
                corruptions = loaded.corruptions.len(), "head chunk files read");
            if head.attach_chunk_files(Arc::new(hc)).is_err() {
                tracing::warn!("head chunk files already attached");
            }
            loaded
        }
        Err(e) => {
            tracing::error!(error = %e, "head chunk files unusable; full chunks stay in memory");
            Default::default()
        }
    }
}

/// Moves full chunks out of the heap every [`CHUNK_WRITE_EVERY`], off
/// the append path.
fn spawn_chunk_writer(head: Arc<Head>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut t = tokio::time::interval(CHUNK_WRITE_EVERY);
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            t.tick().await;
            let h = head.clone();
            match tokio::task::spawn_blocking(move || h.write_chunks()).await {
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "writing head chunks failed; kept in memory")
                }
                Err(e) => tracing::error!(error = %e, "head chunk writer task"),
                Ok(Ok(_)) => {}
            }
        }
    })
}

fn register_head_collector(r: &Registry, head: Arc<Head>) {
    r.collector(move |out| {
        let s = head.stats();
        let mut push = |name: &str, help: &str, kind: Kind, v: f64| {
            out.push(FamilySnapshot::single(name, help, kind, v))
        };
        let e = head.exemplars().stats();
        for (name, help, kind, v) in [
            (
                "klaxon_tsdb_exemplar_exemplars_appended",
                "Exemplars appended to the exemplar store.",
                Kind::Counter,
                e.appended as f64,
            ),
            (
                "klaxon_tsdb_exemplar_out_of_order_exemplars",
                "Exemplars rejected as out of order.",
                Kind::Counter,
                e.out_of_order as f64,
            ),
            (
                "klaxon_tsdb_exemplar_exemplars_in_storage",
                "Exemplars in the exemplar store.",
                Kind::Gauge,
                e.in_storage as f64,
            ),
            (
                "klaxon_tsdb_exemplar_series_with_exemplars_in_storage",
                "Series with exemplars in the exemplar store.",
                Kind::Gauge,
                e.series as f64,
            ),
            (
                "klaxon_tsdb_exemplar_max_exemplars",
                "Size of the exemplar store (storage.exemplars.max_exemplars).",
                Kind::Gauge,
                e.max as f64,
            ),
            (
                "klaxon_tsdb_exemplar_last_exemplars_timestamp_seconds",
                "Timestamp of the newest exemplar stored.",
                Kind::Gauge,
                e.last_ts_seconds,
            ),
        ] {
            push(name, help, kind, v);
        }
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
            "Bytes of compressed sample data in the head's memory.",
            Kind::Gauge,
            s.chunk_bytes as f64,
        );
        push(
            "klaxon_tsdb_head_mmapped_chunks",
            "Full head chunks held in the head chunk files, not in memory.",
            Kind::Gauge,
            s.mmapped_chunks as f64,
        );
        push(
            "klaxon_tsdb_head_chunks_storage_size_bytes",
            "Size of the head chunk files (chunks_head/).",
            Kind::Gauge,
            s.mmapped_chunk_bytes as f64,
        );
        if let Some(hc) = head.chunk_files() {
            push(
                "klaxon_tsdb_mmap_chunk_corruptions",
                "Damaged head chunk files found at start (each cut at its last good chunk).",
                Kind::Counter,
                hc.stats.corruptions.load(Ordering::Relaxed) as f64,
            );
            push(
                "klaxon_tsdb_head_chunks_written",
                "Full chunks written to the head chunk files.",
                Kind::Counter,
                hc.stats.written.load(Ordering::Relaxed) as f64,
            );
        }
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

#[cfg(test)]
mod open_access_tests {
    use super::*;

    #[test]
    fn warns_for_anonymous_access_beyond_loopback_only() {
        let open = crate::settings::load_str("", "t").unwrap();
        let w = open_access_warning("0.0.0.0:9470", &open, None).expect("warning");
        assert!(
            w.contains("may act as viewer") && w.contains("no changes"),
            "{w}"
        );
        assert!(open_access_warning("127.0.0.1:9470", &open, None).is_none());
        let closed = crate::settings::load_str("auth:\n  tokens: []\n", "t").unwrap();
        assert!(open_access_warning("0.0.0.0:9470", &closed, None).is_none());
        let op =
            crate::settings::load_str("auth:\n  anonymous_role: operator\n  tokens: []\n", "t")
                .unwrap();
        let w = open_access_warning("0.0.0.0:9470", &op, None).expect("warning");
        assert!(w.contains("operator") && w.contains("silences"), "{w}");
    }
}
