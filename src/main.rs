//! The `klaxon` binary: argument parsing and the process edge. Everything
//! else lives in the library.

#![deny(clippy::unwrap_used, clippy::expect_used)]

use anyhow::Context;
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// Default listen address (loopback: nothing is exposed unless asked).
const DEFAULT_LISTEN: &str = "127.0.0.1:9470";

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

/// `klaxon tsdb create-blocks-from openmetrics`.
fn create_blocks(
    input: &std::path::Path,
    output: &std::path::Path,
    max_block_duration: &str,
    human: bool,
    quiet: bool,
) -> anyhow::Result<()> {
    let max = klaxon::config::duration::parse_duration(max_block_duration)
        .map_err(|e| anyhow::anyhow!("--max-block-duration: {e}"))?;
    let data = std::fs::read(input).with_context(|| format!("reading {}", input.display()))?;
    let metas = klaxon::tsdb::backfill::create_blocks_from_openmetrics(
        &data,
        &input.display().to_string(),
        output,
        i64::try_from(max.as_millis()).unwrap_or(i64::MAX),
    )?;
    if !quiet {
        klaxon::tsdb::backfill::print_blocks(output, &metas, human, &mut std::io::stdout())?;
    }
    Ok(())
}

/// `klaxon tsdb create-blocks-from rules`: promtool's checks and messages.
fn backfill_rules(a: RulesArgs) -> anyhow::Result<()> {
    let secs = |what: &str, s: &str| {
        klaxon::model::time::parse_time(s)
            .map(|ms| ms.div_euclid(1000))
            .map_err(|e| anyhow::anyhow!("error parsing {what} time: {e}"))
    };
    let end = match &a.end {
        Some(e) => secs("end", e)?,
        None => klaxon::model::now_millis().div_euclid(1000) - 3 * 3600,
    };
    let start = secs("start", &a.start)?;
    if start >= end {
        anyhow::bail!("start time is not before end time");
    }
    let max = klaxon::config::duration::parse_duration(&a.max_block_duration)
        .map_err(|e| anyhow::anyhow!("--max-block-duration: {e}"))?;
    let cfg = klaxon::tsdb::backfill_rules::RulesBackfill {
        url: a.url,
        start,
        end,
        eval_interval: a.eval_interval,
        max_block_duration_ms: i64::try_from(max.as_millis()).unwrap_or(i64::MAX),
        output: a.output_dir,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let (metas, errors) = rt.block_on(klaxon::tsdb::backfill_rules::create_blocks_from_rules(
        &a.rule_files,
        &cfg,
    ))?;
    for e in &errors {
        eprintln!("rule importer error: {e}");
    }
    if !errors.is_empty() {
        anyhow::bail!("error importing rules");
    }
    eprintln!(
        "{}",
        klaxon::tsdb::backfill_rules::describe(&cfg.output, &metas)
    );
    Ok(())
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
        } => check_config(&files),
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
            let ctx = match &config {
                None => klaxon::rules::file::lint::LintContext::default(),
                Some(p) => match klaxon::config::load_file(p) {
                    Ok(c) => klaxon::rules::file::lint::LintContext::from_config(&c),
                    Err(errs) => {
                        print_errors(&errs);
                        return ExitCode::FAILURE;
                    }
                },
            };
            let opts = klaxon::rules::file::LintOptions {
                positions,
                ..klaxon::rules::file::LintOptions::from_flag(&lint, lint_fatal, ctx)
            };
            let code = klaxon::rules::file::check_rule_files(
                &files,
                opts,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
            match code {
                Ok(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
                Err(e) => {
                    eprintln!("klaxon: {e}");
                    ExitCode::FAILURE
                }
            }
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
        } => {
            let code = klaxon::rules::unittest::test_rule_files(
                &files,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Command::Slo {
            what: SloWhat::Generate { file, output },
        } => match slo_generate(&file, output.as_deref()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("klaxon: {e:#}");
                ExitCode::FAILURE
            }
        },
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
        } => match create_blocks(&input, &output, &max_block_duration, human_readable, quiet) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("klaxon: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Tsdb {
            what:
                TsdbWhat::CreateBlocksFrom {
                    from: CreateBlocksFrom::Rules(args),
                },
        } => match backfill_rules(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("klaxon: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Anomaly {
            what: AnomalyWhat::Generate { file, output },
        } => {
            let generated = klaxon::anomaly::load_file(&file)
                .map_err(anyhow::Error::from)
                .map(|spec| klaxon::anomaly::generate(&spec, &source_name(&file)));
            match generated.and_then(|g| {
                write_generated(
                    [(&g.rules_path, &g.rules), (&g.tests_path, &g.tests)],
                    output.as_deref(),
                )
            }) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("klaxon: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
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

/// `klaxon slo generate`: the rules to stdout, or both files under `out`.
fn slo_generate(file: &std::path::Path, out: Option<&std::path::Path>) -> anyhow::Result<()> {
    let spec = klaxon::slo::load_file(file)?;
    let g = klaxon::slo::generate(&spec, &source_name(file));
    write_generated([(&g.rules_path, &g.rules), (&g.tests_path, &g.tests)], out)
}

fn source_name(file: &std::path::Path) -> String {
    file.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A generator's (rules, tests): the rules to stdout, or both files under
/// `out`.
fn write_generated(
    files: [(&String, &String); 2],
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let Some(dir) = out else {
        print!("{}", files[0].1);
        return Ok(());
    };
    for (rel, text) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("{}", path.display());
    }
    Ok(())
}

/// Like `promtool check config`: the verdict per file on stdout, errors on stderr.
fn check_config(files: &[PathBuf]) -> ExitCode {
    let mut code = ExitCode::SUCCESS;
    for file in files {
        // An alertmanager.yml is checked as a notify config.
        let is_am = std::fs::read_to_string(file)
            .is_ok_and(|t| klaxon::notify::config::looks_like_alertmanager(&t));
        if is_am {
            match klaxon::notify::config::load_file(file) {
                Ok(n) => println!(
                    "{}: SUCCESS: notify config, {} receivers, {} inhibit rules",
                    file.display(),
                    n.receivers.len(),
                    n.inhibit_rules.len()
                ),
                Err(errs) => {
                    print_errors(&errs);
                    code = ExitCode::FAILURE;
                }
            }
            continue;
        }
        match klaxon::config::load_file(file) {
            Ok(cfg) => {
                let report = klaxon::config::check::check(&cfg);
                for w in &report.warnings {
                    eprintln!("{}: WARNING: {w}", file.display());
                }
                if !report.errors.is_empty() {
                    print_errors(&klaxon::config::ConfigErrors(report.errors.clone()));
                }
                if report.ok() {
                    println!(
                        "{}: SUCCESS: {} scrape configs, {} rule files found",
                        file.display(),
                        cfg.scrape_configs.len(),
                        report.rule_files.len()
                    );
                } else {
                    println!("{}: FAILED", file.display());
                    code = ExitCode::FAILURE;
                }
                // Each rule file, as promtool reports them after the config.
                for rf in &report.rule_files {
                    println!("  Checking {}", rf.path.display());
                    match &rf.result {
                        Ok(n) => println!("    SUCCESS: {n} rules found"),
                        Err(errs) => {
                            println!("    FAILED:");
                            for e in errs {
                                eprintln!("{e}");
                            }
                        }
                    }
                }
            }
            Err(errs) => {
                print_errors(&errs);
                code = ExitCode::FAILURE;
            }
        }
    }
    code
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
    let s = errs.to_string();
    eprint!("{s}");
    if !s.ends_with('\n') {
        eprintln!();
    }
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
        Some(path) => match klaxon::config::load_file(path) {
            Ok(c) => c,
            Err(errs) => {
                log_errors(json, &errs);
                std::process::exit(1);
            }
        },
        None => klaxon::config::embedded_default_under(&args.listen, &web.route_prefix),
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
        let mut flags = klaxon::app::default_flags(&cfg, &args.listen);
        for (k, v) in [
            (
                "query.timeout",
                klaxon::config::format_duration(args.query_timeout),
            ),
            ("query.max-samples", args.query_max_samples.to_string()),
            (
                "query.max-concurrency",
                args.query_max_concurrency.to_string(),
            ),
            (
                "query.lookback-delta",
                klaxon::config::format_duration(args.query_lookback_delta),
            ),
        ] {
            flags.insert(k.to_string(), v);
        }
        flags.insert(
            klaxon::remote::receive::ENABLE_FLAG.to_string(),
            args.enable_remote_write_receiver.to_string(),
        );
        flags.insert(
            klaxon::api::admin::ENABLE_FLAG.to_string(),
            args.enable_admin_api.to_string(),
        );
        flags.insert(
            "web.max-connections".to_string(),
            args.max_connections.to_string(),
        );
        flags.insert(
            "web.read-header-timeout".to_string(),
            klaxon::config::format_duration(args.read_header_timeout),
        );
        flags.insert(
            klaxon::notify::dispatch::MAX_ALERTS_FLAG.to_string(),
            args.alerts_max.to_string(),
        );
        flags.insert(
            "rules.alert.resend-delay".to_string(),
            klaxon::config::format_duration(args.resend_delay),
        );
        flags.insert(
            "alertmanager.notification-queue-capacity".to_string(),
            args.notification_queue_capacity.to_string(),
        );
        let served_at = if web.route_prefix == "/" {
            String::new()
        } else {
            web.route_prefix.clone()
        };
        flags.insert("web.external-url".to_string(), web.external_url.clone());
        flags.insert("web.route-prefix".to_string(), web.route_prefix.clone());
        flags.insert(
            "storage.remote.flush-deadline".to_string(),
            klaxon::config::format_duration(args.flush_deadline),
        );
        let opts = klaxon::app::RunOptions {
            resend_delay: args.resend_delay,
            notifier: klaxon::notifier::NotifierOptions {
                queue_capacity: usize::try_from(args.notification_queue_capacity)
                    .unwrap_or(usize::MAX),
                ..Default::default()
            },
            web: Some(web),
            ..Default::default()
        };
        let running =
            match klaxon::app::start_with_options(cfg, &args.listen, flags, None, opts).await {
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
        running.stop_within(args.flush_deadline).await;
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
