//! `klaxon probe`: the one-shot smoke runner a deploy pipeline calls. Runs
//! one target, or a list of checks from a file concurrently, prints a table
//! (or JSON) and reports through the exit code: 0 all passed, 1 some probe
//! failed, 2 the request itself was wrong (bad flag, file, module, target).

use super::module::{HttpModule, Prober};
use super::{check_target, find_module, run_probe, Module, Modules, ProbeOutcome};
use crate::config::parse_duration;
use regex::Regex;
use serde::Deserialize;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Exit codes.
pub const EXIT_OK: i32 = 0;
pub const EXIT_FAILED: i32 = 1;
pub const EXIT_USAGE: i32 = 2;

/// The command line, as parsed by the binary.
#[derive(Clone, Debug, Default)]
pub struct ProbeArgs {
    pub target: Option<String>,
    pub module: Option<String>,
    pub modules: Option<PathBuf>,
    pub expect_status: Vec<u16>,
    pub expect_body: Option<String>,
    pub timeout: Option<String>,
    pub json: bool,
    pub config: Option<PathBuf>,
}

/// A smoke file: `checks:` run concurrently.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmokeFile {
    modules_file: Option<String>,
    timeout: Option<String>,
    checks: Vec<SmokeCheck>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SmokeCheck {
    target: String,
    module: Option<String>,
    expect_status: Option<Vec<u16>>,
    expect_body: Option<String>,
    timeout: Option<String>,
}

/// One check ready to run.
struct Check {
    target: String,
    module: Arc<Module>,
    timeout: Duration,
}

/// The module used when none is named: `http_2xx` for URLs, `tcp_connect`
/// for `host:port`.
pub fn default_module(target: &str) -> &'static str {
    if target.contains("://") || target.contains('/') {
        return "http_2xx";
    }
    match target.rsplit_once(':') {
        Some((_, p)) if p.parse::<u16>().is_ok() => "tcp_connect",
        _ => "http_2xx",
    }
}

/// Applies `--expect-status` / `--expect-body` to an HTTP module.
fn with_expectations(
    m: Arc<Module>,
    status: &[u16],
    body: Option<&str>,
) -> Result<Arc<Module>, String> {
    if status.is_empty() && body.is_none() {
        return Ok(m);
    }
    let Prober::Http(h) = &m.prober else {
        return Err(format!(
            "--expect-status/--expect-body need an http module, {:?} is {}",
            m.name,
            m.prober.kind()
        ));
    };
    let mut h: HttpModule = h.clone();
    if !status.is_empty() {
        h.valid_status_codes = status.to_vec();
    }
    if let Some(b) = body {
        let re = Regex::new(&crate::config::goregex::translate(b))
            .map_err(|e| format!("--expect-body: invalid regular expression {b:?}: {e}"))?;
        h.fail_if_body_not_matches.push(re);
    }
    Ok(Arc::new(Module {
        name: m.name.clone(),
        timeout: m.timeout,
        prober: Prober::Http(h),
    }))
}

fn timeout_of(s: Option<&str>, m: &Module, what: &str) -> Result<Duration, String> {
    match s {
        Some(t) => match parse_duration(t) {
            Ok(d) if !d.is_zero() => Ok(d),
            Ok(_) => Err(format!("{what}: timeout must be greater than 0")),
            Err(e) => Err(format!("{what}: {e}")),
        },
        None => Ok(super::effective_timeout(m, None)),
    }
}

fn load_modules(file: Option<&Path>) -> Result<Modules, String> {
    match file {
        None => Ok(Modules::defaults()),
        Some(p) => Modules::defaults_with_file(p).map_err(|e| e.to_string().trim_end().to_string()),
    }
}

fn build_one(a: &ProbeArgs, target: &str) -> Result<Vec<Check>, String> {
    let modules = load_modules(a.modules.as_deref())?;
    let name = a
        .module
        .as_deref()
        .unwrap_or_else(|| default_module(target));
    let m = find_module(&modules, name).map_err(|e| e.to_string())?;
    check_target(&m, target).map_err(|e| e.to_string())?;
    let m = with_expectations(m, &a.expect_status, a.expect_body.as_deref())?;
    let timeout = timeout_of(a.timeout.as_deref(), &m, "--timeout")?;
    Ok(vec![Check {
        target: target.to_string(),
        module: m,
        timeout,
    }])
}

fn build_from_file(a: &ProbeArgs, path: &Path) -> Result<Vec<Check>, String> {
    let origin = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("{origin}: reading smoke file: {e}"))?;
    let f: SmokeFile = serde_saphyr::from_str(&text).map_err(|e| {
        let ce = crate::config::errors::from_yaml_error(&origin, &e);
        ce.to_string()
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let modules_file = match (&a.modules, &f.modules_file) {
        (Some(p), _) => Some(p.clone()),
        (None, Some(m)) => Some(dir.join(m)),
        (None, None) => None,
    };
    let modules = load_modules(modules_file.as_deref())?;
    if f.checks.is_empty() {
        return Err(format!("{origin}: checks must not be empty"));
    }
    let mut out = Vec::new();
    for (i, c) in f.checks.iter().enumerate() {
        let what = format!("{origin}: checks[{i}]");
        let name = c
            .module
            .as_deref()
            .or(a.module.as_deref())
            .unwrap_or_else(|| default_module(&c.target));
        let m = find_module(&modules, name).map_err(|e| format!("{what}: {e}"))?;
        check_target(&m, &c.target).map_err(|e| format!("{what}: {e}"))?;
        let status = c.expect_status.clone().unwrap_or_default();
        let m = with_expectations(m, &status, c.expect_body.as_deref())
            .map_err(|e| format!("{what}: {e}"))?;
        let t = c
            .timeout
            .as_deref()
            .or(f.timeout.as_deref())
            .or(a.timeout.as_deref());
        let timeout = timeout_of(t, &m, &what)?;
        out.push(Check {
            target: c.target.clone(),
            module: m,
            timeout,
        });
    }
    Ok(out)
}

/// Builds the checks from the arguments; the error is a usage error.
fn build(a: &ProbeArgs) -> Result<Vec<Check>, String> {
    match (&a.target, &a.config) {
        (Some(_), Some(_)) => Err("give either a target or --config, not both".into()),
        (None, None) => Err("a target (URL or HOST:PORT) or --config FILE is required".into()),
        (Some(t), None) => build_one(a, t),
        (None, Some(p)) => {
            if !a.expect_status.is_empty() || a.expect_body.is_some() {
                return Err("--expect-status/--expect-body apply to a single target; put them in the checks of the --config file".into());
            }
            build_from_file(a, p)
        }
    }
}

/// Runs the checks concurrently, in input order for the report.
async fn run_checks(checks: Vec<Check>) -> Vec<ProbeOutcome> {
    let handles: Vec<_> = checks
        .into_iter()
        .map(|c| {
            let (target, module) = (c.target.clone(), c.module.name.clone());
            let h = tokio::spawn(async move { run_probe(&c.module, &c.target, c.timeout).await });
            (target, module, h)
        })
        .collect();
    let mut out = Vec::new();
    for (target, module, h) in handles {
        // A check whose task died is a failed check, never a missing one
        // (which would let the smoke run exit 0).
        out.push(h.await.unwrap_or_else(|e| ProbeOutcome {
            target,
            module,
            success: false,
            duration: Duration::ZERO,
            metrics: Default::default(),
            log: Vec::new(),
            reason: Some(format!("probe task failed: {e}")),
            status: None,
        }));
    }
    out
}

fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The human table: TARGET MODULE RESULT STATUS DURATION REASON.
pub fn render_table(results: &[ProbeOutcome]) -> String {
    let rows: Vec<[String; 6]> = results
        .iter()
        .map(|r| {
            [
                r.target.clone(),
                r.module.clone(),
                if r.success { "PASS" } else { "FAIL" }.to_string(),
                r.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                format!("{:.3}s", r.duration.as_secs_f64()),
                one_line(r.reason.as_deref().unwrap_or("")),
            ]
        })
        .collect();
    let header = ["TARGET", "MODULE", "RESULT", "STATUS", "DURATION", "REASON"];
    let mut w = header.map(str::len);
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(x) = w.get_mut(i) {
                *x = (*x).max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let width = w.get(i).copied().unwrap_or(0);
                l.push_str(&format!("{c:<width$}  "));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for r in &rows {
        line(r.iter().map(String::as_str).collect());
    }
    out
}

/// JSON: an array of {target, module, success, status, duration_seconds,
/// reason}.
pub fn render_json(results: &[ProbeOutcome]) -> String {
    let v: Vec<serde_json::Value> = results
        .iter()
        .map(|r| {
            serde_json::json!({
                "target": r.target,
                "module": r.module,
                "success": r.success,
                "status": r.status,
                "duration_seconds": r.duration.as_secs_f64(),
                "reason": r.reason,
            })
        })
        .collect();
    serde_json::to_string_pretty(&v).unwrap_or_else(|_| "[]".into())
}

/// Runs `klaxon probe`; returns the exit code.
pub fn run(a: &ProbeArgs, out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let checks = match build(a) {
        Ok(c) => c,
        Err(e) => {
            let _ = writeln!(err, "klaxon probe: {e}");
            return EXIT_USAGE;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(err, "klaxon probe: starting the async runtime: {e}");
            return EXIT_USAGE;
        }
    };
    let results = rt.block_on(run_checks(checks));
    let text = if a.json {
        let mut s = render_json(&results);
        s.push('\n');
        s
    } else {
        render_table(&results)
    };
    let _ = out.write_all(text.as_bytes());
    if results.iter().all(|r| r.success) {
        EXIT_OK
    } else {
        EXIT_FAILED
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_modules() {
        assert_eq!(default_module("https://x"), "http_2xx");
        assert_eq!(default_module("db:5432"), "tcp_connect");
        assert_eq!(default_module("example.com"), "http_2xx");
        assert_eq!(default_module("example.com:80/health"), "http_2xx");
    }

    #[test]
    fn usage_errors_exit_2() {
        let mut o = Vec::new();
        let mut e = Vec::new();
        let a = ProbeArgs::default();
        assert_eq!(run(&a, &mut o, &mut e), EXIT_USAGE);
        let a = ProbeArgs {
            target: Some("ftp://x".into()),
            ..Default::default()
        };
        e.clear();
        assert_eq!(run(&a, &mut o, &mut e), EXIT_USAGE);
        assert!(String::from_utf8_lossy(&e).contains("unsupported scheme"));
        let a = ProbeArgs {
            target: Some("http://x".into()),
            module: Some("nope".into()),
            ..Default::default()
        };
        e.clear();
        assert_eq!(run(&a, &mut o, &mut e), EXIT_USAGE);
        assert!(String::from_utf8_lossy(&e).contains("unknown module \"nope\""));
        let a = ProbeArgs {
            target: Some("db:5432".into()),
            expect_status: vec![200],
            ..Default::default()
        };
        assert_eq!(run(&a, &mut o, &mut e), EXIT_USAGE);
        assert!(o.is_empty());
    }
}
