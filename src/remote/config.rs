//! The `remote_write:` section, in Prometheus 2.42's shape and with its
//! defaults. Parsed here rather than in `config/` so remote write owns its
//! whole configuration surface; `config` only holds the one field.

use crate::config::common::opt_duration;
use crate::config::errors::{Pos, Sink};
use crate::config::http::resolve_http_fields;
use crate::config::raw::{RawRelabelConfig, SpannedMap, S};
use crate::config::{HttpClientConfig, RelabelConfig};
use serde::de::IgnoredAny;
use serde::Deserialize;
use sha2::Digest as _;
use std::path::Path;
use std::time::Duration;

crate::config::raw::raw_http_client_struct! {
    unsupported;
    pub(crate) struct RawRemoteWrite {
        url: Option<S<String>>,
        name: Option<S<String>>,
        remote_timeout: Option<S<String>>,
        headers: Option<SpannedMap>,
        write_relabel_configs: Option<Vec<S<RawRelabelConfig>>>,
        send_exemplars: Option<bool>,
        send_native_histograms: Option<bool>,
        queue_config: Option<S<RawQueueConfig>>,
        metadata_config: Option<S<RawMetadataConfig>>,
        sigv4: Option<S<IgnoredAny>>,
        azuread: Option<S<IgnoredAny>>,
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQueueConfig {
    pub capacity: Option<S<i64>>,
    pub max_shards: Option<S<i64>>,
    pub min_shards: Option<S<i64>>,
    pub max_samples_per_send: Option<S<i64>>,
    pub batch_send_deadline: Option<S<String>>,
    pub min_backoff: Option<S<String>>,
    pub max_backoff: Option<S<String>>,
    pub retry_on_http_429: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMetadataConfig {
    pub send: Option<bool>,
    pub send_interval: Option<S<String>>,
    pub max_samples_per_send: Option<S<i64>>,
}

/// `queue_config:`, defaults as Prometheus 2.42 (`/api/v1/status/config`
/// of a 2.42 with a bare `remote_write: [{url: ...}]` shows exactly these).
#[derive(Clone, Debug, PartialEq)]
pub struct QueueConfig {
    /// Samples buffered per shard.
    pub capacity: usize,
    pub max_shards: usize,
    pub min_shards: usize,
    pub max_samples_per_send: usize,
    pub batch_send_deadline: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Retry on 429 like on 5xx; off by default in 2.42.
    pub retry_on_http_429: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 2500,
            max_shards: 200,
            min_shards: 1,
            max_samples_per_send: 500,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: false,
        }
    }
}

/// `metadata_config:`; parsed and validated, not acted on (klaxon does not
/// send metadata yet, see docs/compatibility.md).
#[derive(Clone, Debug, PartialEq)]
pub struct MetadataConfig {
    pub send: bool,
    pub send_interval: Duration,
    pub max_samples_per_send: usize,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            send: true,
            send_interval: Duration::from_secs(60),
            max_samples_per_send: 500,
        }
    }
}

/// One resolved `remote_write:` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteWriteConfig {
    pub url: String,
    /// The `remote_name` label of the metrics: `name:` as written, else the
    /// first 6 hex digits of the URL's SHA-256 (Prometheus hashes its whole
    /// entry, so the generated names differ).
    pub name: String,
    pub remote_timeout: Duration,
    /// Extra request headers, in the order written.
    pub headers: Vec<(String, String)>,
    pub http_client: HttpClientConfig,
    pub write_relabel_configs: Vec<RelabelConfig>,
    pub queue: QueueConfig,
    pub metadata: MetadataConfig,
    /// `send_exemplars` (default false, as in Prometheus).
    pub send_exemplars: bool,
    /// `send_native_histograms` (default false, as in Prometheus).
    pub send_native_histograms: bool,
}

/// Headers the sender sets itself; Prometheus refuses them in `headers:`.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "retry-after",
    "x-prometheus-remote-write-version",
];

/// A positive integer setting, else its default with an error at its node.
fn positive(v: &Option<S<i64>>, what: &str, default: usize, sink: &mut Sink) -> usize {
    match v {
        None => default,
        Some(n) if n.value > 0 => usize::try_from(n.value).unwrap_or(default),
        Some(n) => {
            sink.push(
                Pos::of(n),
                format!(
                    "remote write queue {what} must be positive, got {}",
                    n.value
                ),
            );
            default
        }
    }
}

fn resolve_queue(raw: &S<RawQueueConfig>, sink: &mut Sink) -> QueueConfig {
    let d = QueueConfig::default();
    let r = &raw.value;
    let q = QueueConfig {
        capacity: positive(&r.capacity, "capacity", d.capacity, sink),
        max_shards: positive(&r.max_shards, "max_shards", d.max_shards, sink),
        min_shards: positive(&r.min_shards, "min_shards", d.min_shards, sink),
        max_samples_per_send: positive(
            &r.max_samples_per_send,
            "max_samples_per_send",
            d.max_samples_per_send,
            sink,
        ),
        batch_send_deadline: opt_duration(&r.batch_send_deadline, sink)
            .unwrap_or(d.batch_send_deadline),
        min_backoff: opt_duration(&r.min_backoff, sink).unwrap_or(d.min_backoff),
        max_backoff: opt_duration(&r.max_backoff, sink).unwrap_or(d.max_backoff),
        retry_on_http_429: r.retry_on_http_429.unwrap_or(false),
    };
    if q.min_shards > q.max_shards {
        sink.push(
            Pos::of(raw),
            format!(
                "remote write queue min_shards must not be greater than max_shards ({} > {})",
                q.min_shards, q.max_shards
            ),
        );
    }
    if q.min_backoff > q.max_backoff {
        sink.push(
            Pos::of(raw),
            "remote write queue max_backoff must not be less than min_backoff",
        );
    }
    q
}

fn resolve_metadata(raw: &S<RawMetadataConfig>, sink: &mut Sink) -> MetadataConfig {
    let d = MetadataConfig::default();
    let r = &raw.value;
    MetadataConfig {
        send: r.send.unwrap_or(d.send),
        send_interval: opt_duration(&r.send_interval, sink).unwrap_or(d.send_interval),
        max_samples_per_send: positive(
            &r.max_samples_per_send,
            "max_samples_per_send",
            d.max_samples_per_send,
            sink,
        ),
    }
}

fn resolve_one(raw: &S<RawRemoteWrite>, dir: Option<&Path>, sink: &mut Sink) -> RemoteWriteConfig {
    let r = &raw.value;
    for (name, v) in [
        ("sigv4", &r.sigv4),
        ("azuread", &r.azuread),
        ("oauth2", &r.oauth2),
        ("proxy_url", &r.proxy_url),
        ("no_proxy", &r.no_proxy),
        ("proxy_from_environment", &r.proxy_from_environment),
        ("proxy_connect_header", &r.proxy_connect_header),
    ] {
        if let Some(v) = v {
            sink.push(
                Pos::of(v),
                format!("remote_write {name} is not supported by klaxon"),
            );
        }
    }
    let url = match &r.url {
        None => {
            sink.push(Pos::of(raw), "url for remote_write is empty");
            String::new()
        }
        Some(u) => {
            let ok = reqwest::Url::parse(&u.value).is_ok_and(|p| {
                matches!(p.scheme(), "http" | "https")
                    && p.host_str().is_some_and(|h| !h.is_empty())
            });
            if !ok {
                sink.push(
                    Pos::of(u),
                    format!(
                        "invalid remote_write url {:?}: need http(s)://host",
                        u.value
                    ),
                );
            }
            u.value.clone()
        }
    };
    let mut headers = Vec::new();
    for (k, v) in r.headers.iter().flat_map(|m| m.0.iter()) {
        if k.value.eq_ignore_ascii_case("authorization") {
            // Prometheus' text names every auth parameter it has; klaxon's
            // are basic_auth and authorization.
            sink.push(
                Pos::of(k),
                "authorization header must be changed via the basic_auth, authorization, oauth2, sigv4, azuread or google_iam parameter",
            );
            continue;
        }
        if RESERVED_HEADERS.contains(&k.value.to_ascii_lowercase().as_str()) {
            sink.push(
                Pos::of(k),
                format!("{} is a reserved header. It must not be changed", k.value),
            );
            continue;
        }
        if reqwest::header::HeaderName::from_bytes(k.value.as_bytes()).is_err()
            || reqwest::header::HeaderValue::from_str(&v.value).is_err()
        {
            sink.push(Pos::of(k), format!("invalid header {:?}", k.value));
            continue;
        }
        headers.push((k.value.clone(), v.value.clone()));
    }
    let name = match r.name.as_ref().filter(|n| !n.value.is_empty()) {
        Some(n) => n.value.clone(),
        None => {
            let d = sha2::Sha256::digest(url.as_bytes());
            d.iter().take(3).map(|b| format!("{b:02x}")).collect()
        }
    };
    let http_client = resolve_http_fields(crate::config::http::http_fields!(r), dir, sink);
    RemoteWriteConfig {
        url,
        name,
        remote_timeout: opt_duration(&r.remote_timeout, sink).unwrap_or(Duration::from_secs(30)),
        headers,
        http_client,
        write_relabel_configs: crate::config::relabel::resolve_relabel_configs(
            r.write_relabel_configs.as_deref().unwrap_or(&[]),
            sink,
        ),
        queue: r
            .queue_config
            .as_ref()
            .map(|q| resolve_queue(q, sink))
            .unwrap_or_default(),
        metadata: r
            .metadata_config
            .as_ref()
            .map(|m| resolve_metadata(m, sink))
            .unwrap_or_default(),
        send_exemplars: r.send_exemplars.unwrap_or(false),
        send_native_histograms: r.send_native_histograms.unwrap_or(false),
    }
}

/// Resolves the whole list; names must be unique, as upstream requires.
pub(crate) fn resolve(
    raw: Option<Vec<S<RawRemoteWrite>>>,
    dir: Option<&Path>,
    sink: &mut Sink,
) -> Vec<RemoteWriteConfig> {
    let mut out: Vec<RemoteWriteConfig> = Vec::new();
    for r in raw.iter().flatten() {
        let c = resolve_one(r, dir, sink);
        if out.iter().any(|o| o.name == c.name) {
            let at = r.value.name.as_ref().map(Pos::of).unwrap_or(Pos::of(r));
            sink.push(
                at,
                format!(
                    "found multiple remote write configs with job name {:?}",
                    c.name
                ),
            );
            continue;
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::errors::Sink;

    #[derive(Debug)]

    struct Loaded {
        remote_write: Vec<super::RemoteWriteConfig>,
    }

    /// `remote_write:` resolved alone, as the file loader does.
    fn load_str(y: &str, origin: &str) -> Result<Loaded, crate::config::ConfigErrors> {
        #[derive(Default, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            remote_write: Option<Vec<crate::config::raw::S<super::RawRemoteWrite>>>,
        }
        let f: File = crate::config::parse_yaml(y, origin)?;
        let mut sink = Sink::new(origin);
        let remote_write = super::resolve(f.remote_write, None, &mut sink);
        sink.into_result(Loaded { remote_write })
    }
    use std::time::Duration;

    #[test]
    fn defaults_match_prometheus_2_42() {
        let c = load_str("remote_write:\n  - url: http://a.example/w\n", "t").unwrap();
        let rw = &c.remote_write[0];
        assert_eq!(rw.url, "http://a.example/w");
        assert_eq!(rw.remote_timeout, Duration::from_secs(30));
        assert_eq!(rw.queue, super::QueueConfig::default());
        assert_eq!(rw.queue.capacity, 2500);
        assert_eq!(rw.queue.max_shards, 200);
        assert_eq!(rw.queue.max_samples_per_send, 500);
        assert_eq!(rw.queue.min_backoff, Duration::from_millis(30));
        assert!(!rw.queue.retry_on_http_429);
        assert_eq!(rw.name.len(), 6);
        assert!(!rw.send_exemplars && !rw.send_native_histograms);
    }

    #[test]
    fn every_field_parses() {
        let y = r#"
remote_write:
  - url: https://a.example/w
    name: main
    remote_timeout: 10s
    headers: {X-Scope-OrgID: t1}
    basic_auth: {username: u, password: p}
    tls_config: {insecure_skip_verify: true}
    write_relabel_configs:
      - {source_labels: [__name__], regex: 'go_.*', action: drop}
    queue_config:
      capacity: 10
      max_shards: 3
      min_shards: 2
      max_samples_per_send: 7
      batch_send_deadline: 1s
      min_backoff: 10ms
      max_backoff: 1s
      retry_on_http_429: true
    metadata_config: {send: false, send_interval: 2m}
    send_exemplars: true
    send_native_histograms: true
"#;
        let c = load_str(y, "t").unwrap();
        let rw = &c.remote_write[0];
        assert_eq!(rw.name, "main");
        assert_eq!(rw.headers, [("X-Scope-OrgID".into(), "t1".into())]);
        assert_eq!(rw.remote_timeout, Duration::from_secs(10));
        assert_eq!(rw.write_relabel_configs.len(), 1);
        assert_eq!(
            rw.queue,
            super::QueueConfig {
                capacity: 10,
                max_shards: 3,
                min_shards: 2,
                max_samples_per_send: 7,
                batch_send_deadline: Duration::from_secs(1),
                min_backoff: Duration::from_millis(10),
                max_backoff: Duration::from_secs(1),
                retry_on_http_429: true,
            }
        );
        assert!(!rw.metadata.send);
        assert!(rw.send_exemplars && rw.send_native_histograms);
        assert!(rw.http_client.basic_auth.is_some());
        assert!(rw.http_client.tls_config.insecure_skip_verify);
    }

    fn errors(y: &str) -> String {
        load_str(y, "t").unwrap_err().to_string()
    }

    #[test]
    fn mistakes_are_reported_with_position() {
        let e = errors("remote_write:\n  - url: http://a/w\n    queue_config: {capacityy: 3}\n");
        assert!(e.contains("capacityy"), "{e}");
        assert!(e.starts_with("t:3:"), "{e}");
        let e = errors("remote_write:\n  - url: http://a/w\n    headers: {User-Agent: x}\n");
        assert!(e.contains("t:3:") && e.contains("reserved header"), "{e}");
        let e = errors("remote_write:\n  - name: x\n");
        assert!(e.contains("url for remote_write is empty"), "{e}");
        let e = errors("remote_write:\n  - url: ftp://a/w\n");
        assert!(e.contains("invalid remote_write url"), "{e}");
        let e = errors(
            "remote_write:\n  - url: http://a/w\n    name: a\n  - url: http://b/w\n    name: a\n",
        );
        assert!(
            e.contains("t:5:") && e.contains("multiple remote write"),
            "{e}"
        );
        let e = errors("remote_write:\n  - url: http://a/w\n    queue_config: {max_shards: 0}\n");
        assert!(e.contains("max_shards must be positive"), "{e}");
        let e = errors("remote_write:\n  - url: http://a/w\n    sigv4: {region: x}\n");
        assert!(e.contains("sigv4 is not supported"), "{e}");
        let e = errors(
            "remote_write:\n  - url: http://a/w\n    basic_auth: {username: u, password: p, password_file: f}\n",
        );
        assert!(e.contains("password & password_file"), "{e}");
    }

    #[test]
    fn secrets_are_redacted_in_status_config() {
        let y = "remote_write:\n  - url: http://a/w\n    basic_auth:\n      username: u\n      password: hunter2\n    authorization:\n      credentials: s3cr3t\n";
        let r = crate::config::redact_secrets(y);
        assert!(!r.contains("hunter2") && !r.contains("s3cr3t"), "{r}");
        // Flow style, as people write short sections.
        let y = "remote_write:\n  - {url: http://a/w, basic_auth: {username: u, password: \"hun,ter2\"},\n     authorization: {type: Bearer, credentials: s3cr3t}}\n";
        let r = crate::config::redact_secrets(y);
        assert!(!r.contains("hun,ter2") && !r.contains("s3cr3t"), "{r}");
        assert!(
            r.contains("password: <secret>") && r.contains("username: u"),
            "{r}"
        );
    }
}
