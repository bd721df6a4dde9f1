//! Heartbeat to the command centre: every `interval`, `POST
//! {base_url}/api/v1/heartbeat` with the service's health computed from real
//! checks. A 2xx carrying `{correlation_id}` is an ACK. A failed beat is
//! retried on the backoff schedule (5, 10, 20, 40, 60 s by default); when
//! every retry failed, one error is logged and
//! `klaxon_heartbeat_failures_total` goes up. The loop never stops.
//!
//! The API key is only ever put in the `Authorization` header; it is never
//! logged (errors are reported by status code and reqwest's error kind).

use crate::metrics::{Counter, Gauge, Registry};
use crate::ops::config::CommandCenterConfig;
use parking_lot::Mutex;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// Health verdicts, worst last.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Healthy,
    Degraded,
    Unhealthy,
}

/// The state of the notification queue, as the outbox reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QueueState {
    pub pending: u64,
    /// False when the queue grew or stalled since the last look.
    pub draining: bool,
}

/// What the heartbeat reads from the other stages. Every method has a
/// default meaning "not available here", so stages not merged yet (outbox,
/// PostgreSQL) plug in later by overriding their method.
pub trait HealthInputs: Send + Sync {
    /// (rule groups whose last evaluation failed, total groups).
    fn rule_groups(&self) -> Option<(usize, usize)> {
        None
    }
    fn store_writable(&self) -> Option<Result<(), String>> {
        None
    }
    fn notification_queue(&self) -> Option<QueueState> {
        None
    }
    /// (targets up, targets total).
    fn targets(&self) -> Option<(usize, usize)> {
        None
    }
    /// `None` when PostgreSQL is not configured.
    fn postgres(&self) -> Option<Result<(), String>> {
        None
    }
    /// (active alerts, of which firing).
    fn alerts(&self) -> (usize, usize) {
        (0, 0)
    }
}

/// Below this share of targets up, klaxon reports itself degraded.
pub const TARGETS_UP_DEGRADED: f64 = 0.9;

/// The verdict and its reasons (empty when healthy).
pub fn evaluate(h: &dyn HealthInputs) -> (Status, Vec<String>) {
    let mut st = Status::Healthy;
    let mut why = Vec::new();
    let mut flag = |s: Status, r: String, st: &mut Status| {
        *st = (*st).max(s);
        why.push(r);
    };
    if let Some(Err(e)) = h.store_writable() {
        flag(
            Status::Unhealthy,
            format!("store not writable: {e}"),
            &mut st,
        );
    }
    if let Some(Err(e)) = h.postgres() {
        flag(
            Status::Unhealthy,
            format!("postgresql unreachable: {e}"),
            &mut st,
        );
    }
    if let Some((failing, total)) = h.rule_groups() {
        if failing > 0 {
            let s = if failing == total {
                Status::Unhealthy
            } else {
                Status::Degraded
            };
            flag(
                s,
                format!("{failing} of {total} rule groups failing"),
                &mut st,
            );
        }
    }
    if let Some(q) = h.notification_queue() {
        if !q.draining && q.pending > 0 {
            flag(
                Status::Degraded,
                format!("notification queue not draining ({} pending)", q.pending),
                &mut st,
            );
        }
    }
    if let Some((up, total)) = h.targets() {
        if total > 0 {
            let ratio = up as f64 / total as f64;
            if up == 0 {
                flag(
                    Status::Unhealthy,
                    format!("all {total} targets down"),
                    &mut st,
                );
            } else if ratio < TARGETS_UP_DEGRADED {
                flag(
                    Status::Degraded,
                    format!("only {up} of {total} targets up"),
                    &mut st,
                );
            }
        }
    }
    (st, why)
}

/// The `metrics` object of a heartbeat.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct HeartbeatMetrics {
    pub p95_latency_ms: f64,
    pub error_rate: f64,
    pub cpu_usage_percent: f64,
    pub memory_usage_percent: f64,
    pub active_alerts: usize,
    pub firing_alerts: usize,
    pub targets_up: usize,
    pub targets_total: usize,
    pub notification_queue: u64,
}

/// One heartbeat body.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Heartbeat {
    pub service_id: String,
    pub timestamp: String,
    pub status: Status,
    pub reason: String,
    pub version: String,
    pub region: String,
    pub uptime_seconds: u64,
    pub metrics: HeartbeatMetrics,
}

/// What the last ACK said, for `/meta`.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct AckInfo {
    pub last_ack_ms: Option<i64>,
    pub last_correlation_id: Option<String>,
    pub last_status: Option<Status>,
    pub consecutive_failed_beats: u64,
}

/// Shared heartbeat state and metrics.
pub struct HeartbeatState {
    ack: Mutex<AckInfo>,
    last_ack_gauge: Gauge,
    failures: Counter,
    /// Wakes the loop for an immediate beat (`refresh` command).
    pub wake: Notify,
}

impl HeartbeatState {
    /// `enabled`: whether a heartbeat loop runs (`command_center.base_url`
    /// set), exported as `klaxon_heartbeat_enabled` so alerts on the
    /// acknowledgement age stay quiet while the feature is off.
    pub fn register(r: &Registry, enabled: bool) -> Arc<Self> {
        r.gauge(
            "klaxon_heartbeat_enabled",
            "1 when a heartbeat to a command center is configured, else 0.",
        )
        .set(if enabled { 1.0 } else { 0.0 });
        Arc::new(HeartbeatState {
            ack: Mutex::new(AckInfo::default()),
            last_ack_gauge: r.gauge(
                "klaxon_heartbeat_last_ack_timestamp_seconds",
                "Unix time of the last heartbeat acknowledged by the command center (0 = never).",
            ),
            failures: r.counter(
                "klaxon_heartbeat_failures",
                "Heartbeats that failed after every retry.",
            ),
            wake: Notify::new(),
        })
    }

    pub fn ack(&self) -> AckInfo {
        self.ack.lock().clone()
    }
}

/// CPU use of this process between two calls, in percent of one machine.
struct CpuSampler {
    last: Option<(Instant, f64)>,
}

impl CpuSampler {
    fn sample(&mut self) -> f64 {
        let now = Instant::now();
        let Some(cpu) = proc_cpu_seconds() else {
            return 0.0;
        };
        let pct = match self.last {
            Some((t, c)) => {
                let wall = now.duration_since(t).as_secs_f64();
                let n = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
                if wall > 0.0 {
                    ((cpu - c) / wall / n * 100.0).clamp(0.0, 100.0)
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        self.last = Some((now, cpu));
        pct
    }
}

fn proc_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let rest = stat.get(stat.rfind(')')? + 1..)?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let u: f64 = f.get(11)?.parse().ok()?;
    let s: f64 = f.get(12)?.parse().ok()?;
    Some((u + s) / 100.0)
}

fn memory_percent() -> f64 {
    let rss = std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map(|p| p * 4096.0);
    let total = crate::exporters::host::total_memory();
    match (rss, total) {
        (Some(r), Some(t)) if t > 0.0 => r / t * 100.0,
        _ => 0.0,
    }
}

/// Everything the loop needs.
pub struct HeartbeatDeps {
    pub cfg: CommandCenterConfig,
    pub inputs: Arc<dyn HealthInputs>,
    pub http: Arc<crate::ops::http_metrics::HttpMetrics>,
    pub state: Arc<HeartbeatState>,
    pub started: Instant,
}

fn rfc3339_now() -> String {
    crate::model::time::rfc3339_millis(crate::model::now_millis())
}

/// Builds one heartbeat from the current state.
pub fn build(d: &HeartbeatDeps, cpu: f64) -> Heartbeat {
    let (status, reasons) = evaluate(d.inputs.as_ref());
    let (active, firing) = d.inputs.alerts();
    let (up, total) = d.inputs.targets().unwrap_or((0, 0));
    let (reqs, errs) = d.http.totals();
    Heartbeat {
        service_id: d.cfg.service_id.clone(),
        timestamp: rfc3339_now(),
        status,
        reason: if reasons.is_empty() {
            "all checks passed".into()
        } else {
            reasons.join("; ")
        },
        version: env!("CARGO_PKG_VERSION").into(),
        region: d.cfg.region.clone(),
        uptime_seconds: d.started.elapsed().as_secs(),
        metrics: HeartbeatMetrics {
            p95_latency_ms: d.http.p95_ms(),
            error_rate: if reqs > 0 {
                errs as f64 / reqs as f64
            } else {
                0.0
            },
            cpu_usage_percent: cpu,
            memory_usage_percent: memory_percent(),
            active_alerts: active,
            firing_alerts: firing,
            targets_up: up,
            targets_total: total,
            notification_queue: d.inputs.notification_queue().map_or(0, |q| q.pending),
        },
    }
}

/// Why one attempt failed (never contains the key).
#[derive(Debug, thiserror::Error)]
pub enum BeatError {
    #[error("request: {0}")]
    Request(String),
    #[error("status {0}")]
    Status(u16),
    #[error("ACK without correlation_id")]
    NoCorrelationId,
}

async fn send_once(
    client: &reqwest::Client,
    d: &HeartbeatDeps,
    url: &str,
    hb: &Heartbeat,
) -> Result<String, BeatError> {
    let rid = crate::ops::request_id::RequestId::generate();
    let mut req = client
        .post(url)
        .header(crate::ops::request_id::HEADER, rid.as_str())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(serde_json::to_vec(hb).map_err(|e| BeatError::Request(e.to_string()))?);
    if let Some(k) = &d.cfg.api_key {
        req = req.bearer_auth(k.expose());
    }
    let resp = req
        .send()
        .await
        // Without the URL: it may carry credentials in userinfo.
        .map_err(|e| BeatError::Request(e.without_url().to_string()))?;
    let code = resp.status();
    if !code.is_success() {
        return Err(BeatError::Status(code.as_u16()));
    }
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| BeatError::Request(e.without_url().to_string()))?;
    let body: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|_| BeatError::NoCorrelationId)?;
    body.get("correlation_id")
        .and_then(|v| match v {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
        .filter(|s| !s.is_empty())
        .ok_or(BeatError::NoCorrelationId)
}

/// Runs the heartbeat loop; `None` when no `base_url` is configured.
pub fn spawn(d: HeartbeatDeps) -> Option<tokio::task::JoinHandle<()>> {
    let base = d.cfg.base_url.clone()?;
    let url = format!("{base}/api/v1/heartbeat");
    Some(tokio::spawn(async move {
        let client = match reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "heartbeat: building HTTP client");
                return;
            }
        };
        let mut cpu = CpuSampler { last: None };
        let mut tick = tokio::time::interval(d.cfg.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = d.state.wake.notified() => {}
            }
            let mut attempt = 0usize;
            loop {
                let hb = build(&d, cpu.sample());
                match send_once(&client, &d, &url, &hb).await {
                    Ok(cid) => {
                        let now = crate::model::now_millis();
                        d.state.last_ack_gauge.set(now as f64 / 1000.0);
                        let mut a = d.state.ack.lock();
                        a.last_ack_ms = Some(now);
                        a.last_correlation_id = Some(cid.clone());
                        a.last_status = Some(hb.status);
                        a.consecutive_failed_beats = 0;
                        tracing::debug!(correlation_id = %cid, status = ?hb.status, "heartbeat acknowledged");
                        break;
                    }
                    Err(e) => {
                        let Some(wait) = d.cfg.retry_backoff.get(attempt).copied() else {
                            d.state.failures.inc();
                            d.state.ack.lock().consecutive_failed_beats += 1;
                            tracing::error!(error = %e, attempts = attempt + 1, "heartbeat failed after every retry");
                            break;
                        };
                        tracing::warn!(error = %e, retry_in = ?wait, "heartbeat failed");
                        attempt += 1;
                        tokio::time::sleep(wait).await;
                    }
                }
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    struct H {
        targets: (usize, usize),
        store: Result<(), String>,
        rules: (usize, usize),
    }
    impl HealthInputs for H {
        fn targets(&self) -> Option<(usize, usize)> {
            Some(self.targets)
        }
        fn store_writable(&self) -> Option<Result<(), String>> {
            Some(self.store.clone())
        }
        fn rule_groups(&self) -> Option<(usize, usize)> {
            Some(self.rules)
        }
    }

    #[test]
    fn status_from_checks_with_reasons() {
        let ok = H {
            targets: (10, 10),
            store: Ok(()),
            rules: (0, 3),
        };
        assert_eq!(evaluate(&ok), (Status::Healthy, vec![]));
        let deg = H {
            targets: (8, 10),
            rules: (1, 3),
            ..ok
        };
        let (s, r) = evaluate(&deg);
        assert_eq!(s, Status::Degraded);
        assert_eq!(
            r,
            vec!["1 of 3 rule groups failing", "only 8 of 10 targets up"]
        );
        let bad = H {
            store: Err("disk full".into()),
            ..deg
        };
        let (s, r) = evaluate(&bad);
        assert_eq!(s, Status::Unhealthy);
        assert_eq!(r[0], "store not writable: disk full");
    }
}
