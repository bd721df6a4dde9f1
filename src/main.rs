//! The `klaxon` binary: argument parsing and the process edge (logging
//! set-up, signals, the open-files limit, exit codes). Every command's body
//! lives in the library next to what it checks or runs: `run` is
//! `app::start`, `check config` `settings::cli`, `check rules` and `test
//! rules` `rules::cli`, `probe` `probe::cli`, `slo`/`anomaly generate`
//! `slo::cli`/`anomaly::cli`, `tsdb create-blocks-from` `scrape::backfill`/`rules::backfill`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use klaxon::app::DEFAULT_LISTEN;

#[derive(Parser)]
#[command(
    name = "klaxon",
    version,
    about = "Prometheus-compatible scraping, rules and alerting in one process"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run klaxon (the default when no command is given).
    Run(RunArgs),
    /// Validate files without running anything.
    Check {
        #[command(subcommand)]
        what: CheckWhat,
    },
    /// Probe a target once (or the checks of --config concurrently), like a
    /// blackbox_exporter module; exit 0 all passed, 1 a probe failed, 2 bad
    /// usage.
    Probe(ProbeCmd),
    /// Run unit tests.
    Test {
        #[command(subcommand)]
        what: TestWhat,
    },
    /// Service level objectives.
    Slo {
        #[command(subcommand)]
        what: SloWhat,
    },
    /// Tools for the on-disk TSDB (Prometheus' block format).
    Tsdb {
        #[command(subcommand)]
        what: TsdbWhat,
    },
    /// Anomaly detection from plain rules.
    Anomaly {
        #[command(subcommand)]
        what: AnomalyWhat,
    },
}

#[derive(Subcommand)]
enum AnomalyWhat {
    /// Generate recording rules for a seasonal baseline and its band, and
    /// alerts when a signal leaves the band (and their promtool unit tests),
    /// from an anomaly definition file. Without -o the rules are printed;
    /// with -o DIR, DIR/<service>.yml and DIR/tests/<service>.test.yml are
    /// written.
    Generate {
        file: PathBuf,
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TsdbWhat {
    /// Create blocks of data for new recordings.
    CreateBlocksFrom {
        #[command(subcommand)]
        from: CreateBlocksFrom,
    },
}

#[derive(Subcommand)]
enum CreateBlocksFrom {
    /// Import samples from an OpenMetrics input (every sample with a
    /// timestamp) into blocks, as `promtool tsdb create-blocks-from
    /// openmetrics` does.
    Openmetrics {
        /// The OpenMetrics file.
        input: PathBuf,
        /// Output directory for the blocks.
        #[arg(default_value = "data")]
        output: PathBuf,
        /// Print human readable values.
        #[arg(short = 'r', long)]
        human_readable: bool,
        /// Do not print the created blocks.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// Maximum duration a created block may span, e.g. 2h, 1d (rounded
        /// down to one of Prometheus' block ranges, 2h × 3ⁿ).
        #[arg(long, default_value = "0s")]
        max_block_duration: String,
    },
    /// Create blocks of data for new recording rules, as `promtool tsdb
    /// create-blocks-from rules` does: every recording rule of the files
    /// is evaluated over [start, end] with range queries to --url.
    Rules(RulesArgs),
}

#[derive(clap::Args)]
struct RulesArgs {
    /// The URL of the Prometheus-compatible API holding the data the
    /// rules read (default: klaxon on its default address).
    #[arg(long, default_value = "http://127.0.0.1:9470")]
    url: String,
    /// Start of the backfill: RFC 3339 or Unix timestamp. Required.
    #[arg(long)]
    start: String,
    /// End of the backfill (default: 3 hours ago).
    #[arg(long)]
    end: Option<String>,
    /// Output directory for the blocks.
    #[arg(long, default_value = "data/")]
    output_dir: PathBuf,
    /// Evaluation interval of groups that set none.
    #[arg(long, default_value = "60s", value_parser = parse_duration_flag)]
    eval_interval: std::time::Duration,
    /// Maximum duration a created block may span (see openmetrics).
    #[arg(long, default_value = "0s")]
    max_block_duration: String,
    /// Rule files whose recording rules are backfilled (alerting
    /// rules are not evaluated).
    #[arg(required = true)]
    rule_files: Vec<PathBuf>,
}

#[derive(Subcommand)]
enum SloWhat {
    /// Generate multi-window multi-burn-rate recording and alerting rules
    /// (and their promtool unit tests) from an SLO definition file. Without
    /// -o the rules are printed; with -o DIR, DIR/<service>.yml and
    /// DIR/tests/<service>.test.yml are written.
    Generate {
        file: PathBuf,
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum TestWhat {
    /// Run promtool rule unit-test files; output and exit code like
    /// `promtool test rules` (2.42).
    Rules {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ProbeCmd {
    /// URL (http_2xx by default) or HOST:PORT (tcp_connect by default).
    target: Option<String>,
    /// Module name from the shipped modules or --modules.
    #[arg(long)]
    module: Option<String>,
    /// A blackbox.yml-shaped modules file adding to the shipped modules.
    #[arg(long)]
    modules: Option<PathBuf>,
    /// Accepted status code (repeatable); default any 2xx.
    #[arg(long)]
    expect_status: Vec<u16>,
    /// Regex the response body must match.
    #[arg(long)]
    expect_body: Option<String>,
    /// Probe timeout, e.g. 5s (default: the module's, else 10s).
    #[arg(long)]
    timeout: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// A smoke file with `checks:` to run concurrently.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(clap::Args)]
struct RunArgs {
    /// Configuration file in prometheus.yml shape; without it an embedded
    /// default scrapes klaxon itself.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Alert routing in alertmanager.yml's shape, instead of a `notify:`
    /// section in the config.
    #[arg(long)]
    notify_config: Option<PathBuf>,
    /// Address for the HTTP API, UI and /metrics.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: String,
    /// Log line format: `logfmt` (key=value text) or `json` (one object per
    /// line with timestamp, level, target, fields and the request span).
    #[arg(long = "log.format", default_value = "logfmt", value_parser = ["logfmt", "json"])]
    log_format: String,
    /// Lowest level logged: debug, info, warn or error. `KLAXON_LOG` (an
    /// env-filter directive) overrides it when set.
    #[arg(long = "log.level", default_value = "info", value_parser = ["debug", "info", "warn", "error"])]
    log_level: String,
    /// Accept Prometheus remote write on `POST /api/v1/write` (sidecar
    /// mode: a Prometheus scrapes and writes, klaxon evaluates rules).
    #[arg(long = "web.enable-remote-write-receiver")]
    enable_remote_write_receiver: bool,
    /// Accept OpenTelemetry metrics on `POST /api/v1/otlp/v1/metrics`
    /// (protobuf), translated as Prometheus 3 does (`otlp:` in the config).
    #[arg(long = "web.enable-otlp-receiver")]
    enable_otlp_receiver: bool,
    /// Serve Prometheus' TSDB admin API (`/api/v1/admin/tsdb/*`:
    /// snapshot, delete_series, clean_tombstones; admin role).
    #[arg(long = "web.enable-admin-api")]
    enable_admin_api: bool,
    /// Longest a query may run before it is aborted (Prometheus' flag).
    #[arg(long = "query.timeout", default_value = "2m", value_parser = parse_duration_flag)]
    query_timeout: std::time::Duration,
    /// Most samples a single query may hold in memory at once.
    #[arg(long = "query.max-samples", default_value_t = 50_000_000)]
    query_max_samples: usize,
    /// Queries the HTTP API evaluates at once; more wait their turn.
    #[arg(long = "query.max-concurrency", default_value_t = 20)]
    query_max_concurrency: usize,
    /// How far back an instant selector looks for a sample.
    #[arg(long = "query.lookback-delta", default_value = "5m", value_parser = parse_duration_flag)]
    query_lookback_delta: std::time::Duration,
    /// Threads one query may use for a range function over many samples
    /// (klaxon's own; 1: each query runs on one thread).
    #[arg(long = "query.parallelism", default_value_t = 1)]
    query_parallelism: usize,
    /// Minimum time to wait before resending a firing alert to the
    /// router and the Alertmanagers (Prometheus' flag, default 1m).
    #[arg(long = "rules.alert.resend-delay", default_value = "1m", value_parser = parse_duration_flag)]
    resend_delay: std::time::Duration,
    /// Alerts each external Alertmanager's queue holds (`alerting:`); when
    /// full the oldest are dropped and counted.
    #[arg(long = "alertmanager.notification-queue-capacity", default_value_t = klaxon::notifier::DEFAULT_QUEUE_CAPACITY as u64, value_parser = clap::value_parser!(u64).range(1..))]
    notification_queue_capacity: u64,
    /// Most alerts held from `POST /api/v2/alerts` and rules together;
    /// alerts beyond it are refused with 429 (0: no limit).
    #[arg(long = "alerts.max", default_value_t = klaxon::notify::dispatch::DEFAULT_MAX_ALERTS)]
    alerts_max: usize,
    /// The URL under which klaxon is reached from outside (behind a reverse
    /// proxy, say), used in every link it writes: `$externalURL`, alerts'
    /// `generatorURL`, runbook and silence links. If the URL has a path,
    /// it is also the default route prefix. Default: http://HOST:PORT of
    /// --listen, the hostname for an unspecified address.
    #[arg(long = "web.external-url")]
    external_url: Option<String>,
    /// Path prefix of every HTTP endpoint (API, UI, /metrics). Default:
    /// the path of --web.external-url, else /.
    #[arg(long = "web.route-prefix")]
    route_prefix: Option<String>,
    /// Exporter-toolkit web configuration (as Prometheus, Alertmanager and
    /// the exporters): tls_server_config, basic_auth_users (bcrypt),
    /// http_server_config.headers. The certificate is re-read when its
    /// files change.
    #[arg(long = "web.config.file")]
    web_config_file: Option<PathBuf>,
    /// How long a stop (SIGTERM, Ctrl-C) may take in all: remote-write
    /// queues send what they hold until then, what is left is dropped.
    /// Keep it below the orchestrator's grace period (Kubernetes: 30s).
    #[arg(long = "storage.remote.flush-deadline", default_value = "1m", value_parser = parse_duration_flag)]
    flush_deadline: std::time::Duration,
    /// Maximum number of simultaneous HTTP connections (Prometheus'
    /// default); more wait until one closes.
    #[arg(long = "web.max-connections", default_value_t = klaxon::api::serve::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Time a connection has to send a request's headers, from its accept
    /// or its previous response (closes idle keep-alive connections too).
    #[arg(long = "web.read-header-timeout", default_value = "10s", value_parser = parse_duration_flag)]
    read_header_timeout: std::time::Duration,
}

/// A duration flag in Prometheus' syntax (`1m`, `90s`, `1h30m`).
fn parse_duration_flag(s: &str) -> Result<std::time::Duration, String> {
    klaxon::config::parse_duration(s).map_err(|e| e.to_string())
}

#[derive(Subcommand)]
enum CheckWhat {
    /// Check configuration files: exit 0 when all are valid, 1 with every
    /// error as FILE:LINE:COL: message.
    Config {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Check rule files like `promtool check rules` (2.42): per-file
    /// SUCCESS/FAILED report, exit 1 when any file is invalid.
    Rules {
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// `duplicate-rules` (default), `none`, or `all` (duplicate rules
        /// plus klaxon's extra lints; `klaxon` selects only the extras).
        #[arg(long, default_value = "duplicate-rules")]
        lint: String,
        /// Exit 3 when lint finds problems.
        #[arg(long)]
        lint_fatal: bool,
        /// Config file whose scrape intervals the rate-window lint uses.
        #[arg(long)]
        config: Option<PathBuf>,
        /// klaxon's error form: every error as FILE:LINE:COL: group, rule:
        /// message (default: promtool's exact text).
        #[arg(long)]
        positions: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run(RunArgs {
        config: None,
        notify_config: None,
        listen: DEFAULT_LISTEN.to_string(),
        log_format: "logfmt".to_string(),
        log_level: "info".to_string(),
        enable_remote_write_receiver: false,
        enable_otlp_receiver: false,
        enable_admin_api: false,
        query_timeout: std::time::Duration::from_secs(120),
        query_max_samples: 50_000_000,
        query_max_concurrency: 20,
        query_lookback_delta: std::time::Duration::from_secs(300),
        query_parallelism: 1,
        resend_delay: klaxon::rules::manager::RESEND_DELAY,
        notification_queue_capacity: klaxon::notifier::DEFAULT_QUEUE_CAPACITY as u64,
        alerts_max: klaxon::notify::dispatch::DEFAULT_MAX_ALERTS,
        external_url: None,
        route_prefix: None,
        flush_deadline: klaxon::remote::queue::FLUSH_DEADLINE,
        web_config_file: None,
        max_connections: klaxon::api::serve::DEFAULT_MAX_CONNECTIONS,
        read_header_timeout: klaxon::api::serve::DEFAULT_HEADER_READ_TIMEOUT,
    })) {
        Command::Check {
            what: CheckWhat::Config { files },
        } => exit(klaxon::settings::cli::check_config(
            &files,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )),
        Command::Check {
            what:
                CheckWhat::Rules {
                    files,
                    lint,
                    lint_fatal,
                    config,
                    positions,
                },
        } => {
            let args = klaxon::rules::cli::CheckArgs {
                files,
                lint,
                lint_fatal,
                positions,
            };
            exit(klaxon::settings::cli::check_rules(
                &args,
                config.as_deref(),
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            ))
        }
        Command::Probe(p) => {
            let args = klaxon::probe::cli::ProbeArgs {
                target: p.target,
                module: p.module,
                modules: p.modules,
                expect_status: p.expect_status,
                expect_body: p.expect_body,
                timeout: p.timeout,
                json: p.json,
                config: p.config,
            };
            let code =
                klaxon::probe::cli::run(&args, &mut std::io::stdout(), &mut std::io::stderr());
            ExitCode::from(u8::try_from(code).unwrap_or(2))
        }
        Command::Test {
            what: TestWhat::Rules { files },
        } => exit(klaxon::rules::cli::test(
            &files,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )),
        Command::Slo {
            what: SloWhat::Generate { file, output },
        } => exit(klaxon::slo::cli::generate(
            &file,
            output.as_deref(),
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )),
        Command::Tsdb {
            what:
                TsdbWhat::CreateBlocksFrom {
                    from:
                        CreateBlocksFrom::Openmetrics {
                            input,
                            output,
                            human_readable,
                            quiet,
                            max_block_duration,
                        },
                },
        } => {
            let args = klaxon::scrape::backfill::OpenMetricsArgs {
                input,
                output,
                human_readable,
                quiet,
                max_block_duration,
            };
            exit(klaxon::scrape::backfill::run_cli(
                &args,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            ))
        }
        Command::Tsdb {
            what:
                TsdbWhat::CreateBlocksFrom {
                    from: CreateBlocksFrom::Rules(a),
                },
        } => {
            let args = klaxon::rules::backfill::RulesArgs {
                url: a.url,
                start: a.start,
                end: a.end,
                output_dir: a.output_dir,
                eval_interval: a.eval_interval,
                max_block_duration: a.max_block_duration,
                rule_files: a.rule_files,
            };
            exit(klaxon::rules::backfill::run_cli(
                &args,
                &mut std::io::stderr(),
            ))
        }
        Command::Anomaly {
            what: AnomalyWhat::Generate { file, output },
        } => exit(klaxon::anomaly::cli::generate(
            &file,
            output.as_deref(),
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )),
        Command::Run(args) => {
            let json = args.log_format == "json";
            match run(args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    let msg = error_chain(&e);
                    if json {
                        tracing::error!(error = %msg, "klaxon stopped");
                    } else {
                        eprintln!("klaxon: {msg}");
                    }
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// An error with its causes, each cause once: a message that already
/// ends with its cause's text (`listen on X: Address already in use`) does
/// not get it appended again.
fn error_chain(e: &anyhow::Error) -> String {
    let mut out = e.to_string();
    for cause in e.chain().skip(1) {
        let c = cause.to_string();
        if !out.contains(&c) {
            out.push_str(": ");
            out.push_str(&c);
        }
    }
    out
}

/// Config errors at `klaxon run`: JSON lines under `--log.format json`.
fn log_errors(json: bool, errs: &klaxon::config::ConfigErrors) {
    if !json {
        print_errors(errs);
        return;
    }
    for e in errs.errors() {
        tracing::error!(file = %e.file, line = e.line, column = e.column, "{}", e.message);
    }
}

fn print_errors(errs: &klaxon::config::ConfigErrors) {
    klaxon::rules::cli::print_errors(&mut std::io::stderr(), errs);
}

/// A library command's exit code.
fn exit(code: u8) -> ExitCode {
    ExitCode::from(code)
}

/// A start-up failure: a JSON line under `--log.format json`, else
/// `klaxon: message` on stderr.
fn fail(json: bool, msg: &str) {
    if json {
        tracing::error!("{msg}");
    } else {
        eprintln!("klaxon: {msg}");
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let json = args.log_format == "json";
    let filter = tracing_subscriber::EnvFilter::try_from_env("KLAXON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&args.log_level));
    let fmt = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.log_format == "json" {
        // Span fields (request_id, route) ride along with every event
        // logged while a request is handled.
        fmt.json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init();
    } else {
        fmt.fmt_fields(klaxon::ops::logfmt::LogfmtFields)
            .event_format(klaxon::ops::logfmt::Logfmt)
            .init();
    }
    let mut web = match klaxon::api::web::WebOptions::resolve(
        args.external_url.as_deref(),
        args.route_prefix.as_deref(),
        &args.listen,
    ) {
        Ok(w) => w,
        Err(e) => {
            fail(json, &e.to_string());
            std::process::exit(2);
        }
    };
    if let Some(p) = &args.web_config_file {
        match klaxon::api::webconfig::load(p) {
            Ok(c) => web.config = Some(std::sync::Arc::new(c)),
            Err(e) => {
                fail(json, &e.to_string());
                std::process::exit(1);
            }
        }
    }
    // The config is validated before any port is bound.
    let mut cfg = match &args.config {
        Some(path) => match klaxon::settings::load_file(path) {
            Ok(c) => c,
            Err(errs) => {
                log_errors(json, &errs);
                std::process::exit(1);
            }
        },
        None => klaxon::settings::embedded_default_under(&args.listen, &web.route_prefix),
    };
    if let Some(path) = &args.notify_config {
        if cfg.notify.is_some() {
            fail(
                json,
                &format!(
                    "--notify-config {} given while the config has a notify: section; use one",
                    path.display()
                ),
            );
            std::process::exit(1);
        }
        match klaxon::notify::config::load_file(path) {
            Ok(n) => cfg.notify = Some(std::sync::Arc::new(n)),
            Err(errs) => {
                log_errors(json, &errs);
                std::process::exit(1);
            }
        }
    }
    cfg.query.engine.timeout = args.query_timeout;
    cfg.query.engine.max_samples = args.query_max_samples;
    cfg.query.engine.lookback_delta = args.query_lookback_delta;
    cfg.query.engine.parallelism = args.query_parallelism.max(1);
    cfg.query.max_concurrency = args.query_max_concurrency.max(1);
    let nofile = raise_nofile_limit();
    cfg.web = klaxon::api::serve::ServeOptions {
        header_read_timeout: args.read_header_timeout,
        max_connections: klaxon::api::serve::connections_within(args.max_connections, nofile),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let served_at = if web.route_prefix == "/" {
            String::new()
        } else {
            web.route_prefix.clone()
        };
        let opts = klaxon::app::StartOptions {
            listen: args.listen.clone(),
            web: Some(web),
            resend_delay: args.resend_delay,
            notifier: klaxon::notifier::NotifierOptions {
                queue_capacity: usize::try_from(args.notification_queue_capacity)
                    .unwrap_or(usize::MAX),
                ..Default::default()
            },
            enable_remote_write_receiver: args.enable_remote_write_receiver,
            enable_otlp_receiver: args.enable_otlp_receiver,
            enable_admin_api: args.enable_admin_api,
            alerts_max: args.alerts_max,
            flush_deadline: args.flush_deadline,
            max_connections: args.max_connections,
            ..Default::default()
        };
        let running = match klaxon::app::start(cfg, opts).await {
            Ok(r) => r,
            Err(klaxon::app::StartError::Rules(lines)) => {
                for l in lines {
                    eprintln!("{l}");
                }
                std::process::exit(1);
            }
            Err(e) => return Err(e.into()),
        };
        // Installed before announcing the address: until then SIGHUP's
        // default action would terminate the process.
        let hup = reload_on_sighup(running.state.ops.clone());
        let url = format!("http://{}{}", running.addr, served_at);
        if json {
            tracing::info!(url = %url, "klaxon listening");
        } else {
            eprintln!("klaxon listening on {url}");
        }
        shutdown_signal().await;
        if let Some(h) = hup {
            h.abort();
        }
        tracing::info!("shutting down");
        running.stop().await;
        Ok(())
    })
}

/// Raises the soft open-files limit to the hard one, as Prometheus does:
/// every connection, target and store handle is a descriptor, and the
/// common soft default (1024) is below `--web.max-connections` plus the
/// scrape targets. Answers the soft limit in force.
fn raise_nofile_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "reading RLIMIT_NOFILE");
        return None;
    }
    if lim.rlim_cur >= lim.rlim_max {
        tracing::info!(limit = lim.rlim_cur, "open files limit");
        return Some(lim.rlim_cur);
    }
    let before = lim.rlim_cur;
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: as above.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } == 0 {
        tracing::info!(
            from = before,
            to = lim.rlim_cur,
            "raised the open files limit to the hard limit"
        );
        Some(lim.rlim_cur)
    } else {
        tracing::warn!(error = %std::io::Error::last_os_error(), limit = before, "could not raise the open files limit");
        Some(before)
    }
}

/// SIGHUP reloads the configuration and rule files, as in Prometheus; the
/// outcome is logged by the reloader.
fn reload_on_sighup(ops: std::sync::Arc<klaxon::ops::Ops>) -> Option<tokio::task::JoinHandle<()>> {
    #[cfg(unix)]
    {
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; reload via POST /-/reload");
                return None;
            }
        };
        Some(tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading configuration");
                let ops = ops.clone();
                // The reloader logs success and failure itself.
                let _ = tokio::task::spawn_blocking(move || ops.reload("sighup")).await;
            }
        }))
    }
    #[cfg(not(unix))]
    {
        let _ = ops;
        None
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
