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
    /// Run unit tests.
    Test {
        #[command(subcommand)]
        what: TestWhat,
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
        /// `duplicate-rules` (default) or `none`.
        #[arg(long, default_value = "duplicate-rules")]
        lint: String,
        /// Exit 3 when lint finds problems.
        #[arg(long)]
        lint_fatal: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run(RunArgs {
        config: None,
        notify_config: None,
        listen: DEFAULT_LISTEN.to_string(),
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
                },
        } => {
            let opts = klaxon::rules::file::LintOptions {
                duplicate_rules: lint
                    .split(',')
                    .any(|l| l == "duplicate-rules" || l == "all"),
                fatal: lint_fatal,
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
        Command::Run(args) => match run(args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("klaxon: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KLAXON_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
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
        let running = match klaxon::app::start(cfg, &args.listen).await {
            Ok(r) => r,
            Err(klaxon::app::StartError::Rules(lines)) => {
                for l in lines {
                    eprintln!("{l}");
                }
                std::process::exit(1);
            }
            Err(e) => return Err(e.into()),
        };
        eprintln!("klaxon listening on http://{}", running.addr);
        shutdown_signal().await;
        tracing::info!("shutting down");
        running.stop().await;
        Ok(())
    })
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
