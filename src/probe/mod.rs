//! Synthetic probes compatible with blackbox_exporter 0.23: HTTP, TCP (with
//! TLS and query/response), DNS and ICMP checks that produce the same metric
//! families blackbox does, usable three ways: scheduled into the head
//! (`schedule`), as a multi-target exporter (`/probe`, see `api::probe`) and
//! as a one-shot smoke runner (`cli`).
//!
//! A probe never fails with an error: whatever goes wrong ends up as
//! `probe_success 0` plus a log line, exactly as blackbox reports it, so a
//! scraper sees one consistent shape. Only bad *requests* (unknown module,
//! malformed target) are errors, checked by [`check_target`] before probing.

pub mod cli;
pub mod config;
pub mod dns;
mod http;
pub mod icmp;
pub mod module;
pub mod registry;
mod resolve;
pub mod schedule;
mod tcp;
mod tls;

pub use module::{Module, Modules, Prober};
pub use registry::ProbeMetrics;

use std::time::{Duration, Instant};

/// Default probe timeout when neither the module nor a scrape header sets
/// one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Upper bound on any probe timeout.
const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

/// Bad probe requests, reported as HTTP 400 / CLI exit 2.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProbeError {
    #[error("unknown module {0:?} (known: {1})")]
    UnknownModule(String, String),
    #[error("target parameter is missing")]
    MissingTarget,
    #[error("invalid target {target:?}: {reason}")]
    BadTarget { target: String, reason: String },
    #[error("unsupported scheme {scheme:?} in target {target:?} (http or https)")]
    UnsupportedScheme { target: String, scheme: String },
}

/// The result of one probe.
#[derive(Clone, Debug)]
pub struct ProbeOutcome {
    pub target: String,
    pub module: String,
    pub success: bool,
    pub duration: Duration,
    /// All metrics, including `probe_success` and `probe_duration_seconds`.
    pub metrics: ProbeMetrics,
    /// blackbox-style logfmt lines, for `debug=true`.
    pub log: Vec<String>,
    /// The last error logged, as a one-line reason for failure tables.
    pub reason: Option<String>,
    /// The final HTTP status, for HTTP probes that got a response.
    pub status: Option<u16>,
}

impl ProbeOutcome {
    /// The body of a `/probe?debug=true` answer, in blackbox's layout.
    pub fn debug_text(&self, module: &Module) -> String {
        let mut s = String::from("Logs for the probe:\n");
        for l in &self.log {
            s.push_str(l);
            s.push('\n');
        }
        s.push_str("\n\n\nMetrics that would have been returned:\n");
        s.push_str(&self.metrics.render());
        s.push_str("\n\n\nModule configuration:\n");
        s.push_str(&module.describe());
        s
    }
}

/// Per-probe state the probers write into: metrics and log.
pub(crate) struct Ctx {
    pub metrics: ProbeMetrics,
    log: Vec<String>,
    reason: Option<String>,
    pub status: Option<u16>,
    /// The probe's whole budget (ICMP's blocking wait is bounded by it).
    pub timeout: Duration,
    module: String,
    target: String,
}

impl Ctx {
    fn new(module: &str, target: &str) -> Ctx {
        Ctx {
            metrics: ProbeMetrics::default(),
            log: Vec::new(),
            reason: None,
            status: None,
            timeout: DEFAULT_TIMEOUT,
            module: module.to_string(),
            target: target.to_string(),
        }
    }

    fn line(&mut self, level: &str, msg: &str, kv: &[(&str, &str)]) {
        let ts = crate::model::now_millis();
        let mut l = format!(
            "ts={} caller=probe module={} target={} level={level} msg={}",
            crate::model::time::rfc3339_millis(ts),
            logfmt(&self.module),
            logfmt(&self.target),
            logfmt(msg)
        );
        for (k, v) in kv {
            l.push_str(&format!(" {k}={}", logfmt(v)));
        }
        tracing::debug!(module = %self.module, target = %self.target, "{l}");
        self.log.push(l);
    }

    pub fn info(&mut self, msg: &str, kv: &[(&str, &str)]) {
        self.line("info", msg, kv);
    }

    /// Logs an error; the last one becomes the failure reason.
    pub fn error(&mut self, msg: &str, kv: &[(&str, &str)]) {
        self.line("error", msg, kv);
        let mut r = msg.to_string();
        if let Some((_, e)) = kv.iter().find(|(k, _)| *k == "err") {
            r.push_str(": ");
            r.push_str(e);
        }
        self.reason = Some(r);
    }
}

fn logfmt(s: &str) -> String {
    if !s.is_empty() && !s.contains(|c: char| c == ' ' || c == '"' || c == '=' || c.is_control()) {
        s.to_string()
    } else {
        format!("{s:?}")
    }
}

/// The probe timeout: blackbox's rule when a scrape timeout is known
/// (`X-Prometheus-Scrape-Timeout-Seconds` minus 0.5 s, shortened by the
/// module's own timeout), else the module's timeout, else 10 s.
pub fn effective_timeout(module: &Module, scrape_timeout_secs: Option<f64>) -> Duration {
    let own = module.timeout.filter(|d| !d.is_zero());
    match scrape_timeout_secs.filter(|s| s.is_finite() && *s > 0.0) {
        Some(s) => {
            let max = s - 0.5;
            if max <= 0.0 {
                return own.unwrap_or(DEFAULT_TIMEOUT);
            }
            let Ok(max) = Duration::try_from_secs_f64(max) else {
                return own.unwrap_or(DEFAULT_TIMEOUT);
            };
            match own {
                Some(o) if o < max => o,
                _ => max,
            }
        }
        None => own.unwrap_or(DEFAULT_TIMEOUT),
    }
}

/// Looks up a module, with the error a caller reports as bad input.
pub fn find_module(modules: &Modules, name: &str) -> Result<std::sync::Arc<Module>, ProbeError> {
    modules.get(name).ok_or_else(|| {
        let mut known: Vec<&str> = modules.names().collect();
        known.sort_unstable();
        ProbeError::UnknownModule(name.to_string(), known.join(", "))
    })
}

/// Validates a target for a module before probing: what a user got wrong
/// is a 400 / exit 2, not a failed probe.
pub fn check_target(module: &Module, target: &str) -> Result<(), ProbeError> {
    if target.is_empty() {
        return Err(ProbeError::MissingTarget);
    }
    let bad = |reason: &str| ProbeError::BadTarget {
        target: target.to_string(),
        reason: reason.to_string(),
    };
    if target.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad("contains whitespace or control characters"));
    }
    match &module.prober {
        Prober::Http(_) => http::parse_target(target).map(|_| ()),
        Prober::Tcp(_) => resolve::split_host_port(target, None)
            .map(|_| ())
            .map_err(|e| bad(&e)),
        Prober::Dns(_) => resolve::split_host_port(target, Some(53))
            .map(|_| ())
            .map_err(|e| bad(&e)),
        Prober::Icmp(_) => {
            if target.contains('/') {
                Err(bad("expected a host name or IP address"))
            } else {
                Ok(())
            }
        }
    }
}

/// Runs one probe to completion or timeout. Never fails: problems are in
/// `success`, `reason` and the log.
pub async fn run_probe(module: &Module, target: &str, timeout: Duration) -> ProbeOutcome {
    // A deadline must stay representable; no probe needs more than a day.
    let timeout = timeout.min(MAX_TIMEOUT);
    let mut ctx = Ctx::new(&module.name, target);
    ctx.timeout = timeout;
    let start = Instant::now();
    ctx.info(
        "Beginning probe",
        &[
            ("probe", module.prober.kind()),
            ("timeout_seconds", &timeout.as_secs_f64().to_string()),
        ],
    );
    let deadline = tokio::time::Instant::now() + timeout;
    let fut = async {
        match &module.prober {
            Prober::Http(h) => http::probe(&mut ctx, h, target).await,
            Prober::Tcp(t) => tcp::probe(&mut ctx, t, target).await,
            Prober::Dns(d) => dns::probe(&mut ctx, d, target).await,
            Prober::Icmp(i) => icmp::probe(&mut ctx, i, target).await,
        }
    };
    let success = match tokio::time::timeout_at(deadline, fut).await {
        Ok(ok) => ok,
        Err(_) => {
            ctx.error("Probe timed out", &[("err", "context deadline exceeded")]);
            false
        }
    };
    let duration = start.elapsed();
    ctx.metrics.set(
        "probe_duration_seconds",
        "Returns how long the probe took to complete in seconds",
        duration.as_secs_f64(),
    );
    ctx.metrics.set(
        "probe_success",
        "Displays whether or not the probe was a success",
        if success { 1.0 } else { 0.0 },
    );
    let secs = duration.as_secs_f64().to_string();
    if success {
        ctx.info("Probe succeeded", &[("duration_seconds", &secs)]);
    } else {
        ctx.error_keep_reason("Probe failed", &[("duration_seconds", &secs)]);
    }
    ProbeOutcome {
        target: target.to_string(),
        module: module.name.clone(),
        success,
        duration,
        metrics: ctx.metrics,
        log: ctx.log,
        reason: if success {
            None
        } else {
            ctx.reason.or(Some("probe failed".into()))
        },
        status: ctx.status,
    }
}

impl Ctx {
    /// The closing "Probe failed" line must not hide the real reason.
    fn error_keep_reason(&mut self, msg: &str, kv: &[(&str, &str)]) {
        self.line("error", msg, kv);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http_module(timeout: Option<Duration>) -> Module {
        Module {
            name: "m".into(),
            timeout,
            prober: Prober::Http(Default::default()),
        }
    }

    #[test]
    fn timeout_rules() {
        let none = http_module(None);
        let five = http_module(Some(Duration::from_secs(5)));
        assert_eq!(effective_timeout(&none, None), DEFAULT_TIMEOUT);
        assert_eq!(effective_timeout(&five, None), Duration::from_secs(5));
        assert_eq!(
            effective_timeout(&none, Some(3.0)),
            Duration::from_millis(2500)
        );
        assert_eq!(
            effective_timeout(&five, Some(3.0)),
            Duration::from_millis(2500)
        );
        assert_eq!(effective_timeout(&five, Some(30.0)), Duration::from_secs(5));
        assert_eq!(effective_timeout(&five, Some(0.2)), Duration::from_secs(5));
        assert_eq!(
            effective_timeout(&five, Some(1e300)),
            Duration::from_secs(5)
        );
        assert_eq!(effective_timeout(&none, Some(f64::NAN)), DEFAULT_TIMEOUT);
    }

    #[test]
    fn bad_targets() {
        let m = http_module(None);
        assert!(matches!(
            check_target(&m, "ftp://x/"),
            Err(ProbeError::UnsupportedScheme { .. })
        ));
        assert!(matches!(
            check_target(&m, "http://"),
            Err(ProbeError::BadTarget { .. })
        ));
        assert_eq!(check_target(&m, ""), Err(ProbeError::MissingTarget));
        assert!(check_target(&m, "example.com:8080/x").is_ok());
        let tcp = Module {
            name: "t".into(),
            timeout: None,
            prober: Prober::Tcp(Default::default()),
        };
        assert!(check_target(&tcp, "localhost").is_err());
        assert!(check_target(&tcp, "localhost:x").is_err());
        assert!(check_target(&tcp, "[::1]:22").is_ok());
    }

    #[test]
    fn timestamps() {
        assert_eq!(
            crate::model::time::rfc3339_millis(0),
            "1970-01-01T00:00:00.000Z"
        );
        assert_eq!(
            crate::model::time::rfc3339_millis(1_700_000_000_123),
            "2023-11-14T22:13:20.123Z"
        );
    }
}
