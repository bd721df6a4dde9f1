//! The `klaxon` binary: argument parsing and the process edge. Everything
//! else lives in the library.

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

#[derive(clap::Args, Default)]
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
        Command::Run(args) => match run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("klaxon: {e:#}");
                ExitCode::FAILURE
            }
        },
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
            Ok(cfg) => println!(
                "{}: SUCCESS: {} scrape configs, {} rule file patterns",
                file.display(),
                cfg.scrape_configs.len(),
                cfg.rule_files.len()
            ),
            Err(errs) => {
                print_errors(&errs);
                code = ExitCode::FAILURE;
            }
        }
    }
    code
}

fn print_errors(errs: &klaxon::config::ConfigErrors) {
    let s = errs.to_string();
    eprint!("{s}");
    if !s.ends_with('\n') {
        eprintln!();
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
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
    // The config is validated before any port is bound.
    let mut cfg = match &args.config {
        Some(path) => match klaxon::config::load_file(path) {
            Ok(c) => c,
            Err(errs) => {
                print_errors(&errs);
                std::process::exit(1);
            }
        },
        None => klaxon::config::embedded_default(&args.listen),
    };
    if let Some(path) = &args.notify_config {
        if cfg.notify.is_some() {
            eprintln!(
                "klaxon: --notify-config {} given while the config has a notify: section; use one",
                path.display()
            );
            std::process::exit(1);
        }
        match klaxon::notify::config::load_file(path) {
            Ok(n) => cfg.notify = Some(std::sync::Arc::new(n)),
            Err(errs) => {
                print_errors(&errs);
                std::process::exit(1);
            }
        }
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(async move {
        let mut flags = klaxon::app::default_flags(&cfg, &args.listen);
        flags.insert(
            klaxon::remote::receive::ENABLE_FLAG.to_string(),
            args.enable_remote_write_receiver.to_string(),
        );
        let running = match klaxon::app::start_with_flags(cfg, &args.listen, flags).await {
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
        eprintln!("klaxon listening on http://{}", running.addr);
        shutdown_signal().await;
        if let Some(h) = hup {
            h.abort();
        }
        tracing::info!("shutting down");
        running.stop().await;
        Ok(())
    })
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
