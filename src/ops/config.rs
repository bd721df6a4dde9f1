//! The `auth:` and `command_center:` config sections: their raw (positioned)
//! shapes and their resolution. Kept here rather than in `config/` so the
//! operations feature owns its own keys; `config` only holds one field each.
//!
//! Secrets read from files are read at load time, so a missing file is a
//! `check config` error at its line instead of a 401 at 3 a.m.

use crate::config::errors::{Pos, Sink};
use crate::config::raw::S;
use crate::config::Secret;
use crate::ops::auth::Role;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawAuth {
    pub tokens: Option<Vec<S<RawToken>>>,
    pub anonymous_role: Option<S<String>>,
    pub rate_limit: Option<S<RawRateLimit>>,
    pub probe_role: Option<S<String>>,
    pub tenant_label: Option<S<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawToken {
    pub name: Option<S<String>>,
    pub token_file: Option<S<String>>,
    pub token_sha256: Option<S<String>>,
    pub roles: Option<Vec<S<String>>>,
    pub tenants: Option<Vec<S<String>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimit {
    pub requests_per_second: Option<S<f64>>,
    pub burst: Option<S<u32>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCommandCenter {
    pub base_url: Option<S<String>>,
    pub api_key: Option<S<String>>,
    pub api_key_file: Option<S<String>>,
    pub service_id: Option<String>,
    pub region: Option<String>,
    pub interval: Option<S<String>>,
    pub command_secret: Option<S<String>>,
    pub command_secret_file: Option<S<String>>,
    /// Delays between failed heartbeat attempts; a knob for tests and for
    /// command centres that want a gentler schedule.
    pub retry_backoff: Option<Vec<S<String>>>,
    pub events_retention: Option<S<String>>,
}

/// A configured API token. Only the SHA-256 of the token is kept in memory:
/// requests are hashed and compared digest to digest in constant time.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenConfig {
    pub name: String,
    pub sha256: [u8; 32],
    pub roles: Vec<Role>,
    /// Tenants the token is scoped to (empty: unscoped, sees everything
    /// its role allows). Sorted, without duplicates.
    pub tenants: Vec<String>,
}

impl std::fmt::Debug for TokenConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenConfig")
            .field("name", &self.name)
            .field("roles", &self.roles)
            .field("tenants", &self.tenants)
            .finish_non_exhaustive()
    }
}

/// `auth.rate_limit`: a token bucket per principal.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimitConfig {
    pub requests_per_second: f64,
    pub burst: u32,
}

/// `auth:` as resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthConfig {
    pub tokens: Vec<TokenConfig>,
    /// `None` = not written (the default depends on the listen address);
    /// `Some(None)` = `none` written explicitly.
    pub anonymous_role: Option<Option<Role>>,
    pub rate_limit: Option<RateLimitConfig>,
    /// `probe_role`: the role `GET /probe` needs (`None`: operator on a
    /// non-loopback listener, viewer on loopback).
    pub probe_role: Option<Role>,
    /// `tenant_label`: the label naming a series' or alert's tenant
    /// (default `tenant`).
    pub tenant_label: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            tokens: Vec::new(),
            anonymous_role: None,
            rate_limit: None,
            probe_role: None,
            tenant_label: crate::ops::tenants::DEFAULT_LABEL.to_string(),
        }
    }
}

/// `command_center:` as resolved (before the environment overlay, see
/// [`CommandCenterConfig::with_env`]).
#[derive(Clone, Debug, PartialEq)]
pub struct CommandCenterConfig {
    pub base_url: Option<String>,
    pub api_key: Option<Secret>,
    pub service_id: String,
    pub region: String,
    pub interval: Duration,
    pub command_secret: Option<Secret>,
    pub retry_backoff: Vec<Duration>,
    /// How long events and audit entries are kept.
    pub events_retention: Duration,
}

/// The default retry schedule: 5, 10, 20, 40, 60 s.
pub const DEFAULT_BACKOFF: [Duration; 5] = [
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(20),
    Duration::from_secs(40),
    Duration::from_secs(60),
];

impl Default for CommandCenterConfig {
    fn default() -> Self {
        CommandCenterConfig {
            base_url: None,
            api_key: None,
            service_id: "klaxon".into(),
            region: String::new(),
            interval: Duration::from_secs(60),
            command_secret: None,
            retry_backoff: DEFAULT_BACKOFF.to_vec(),
            events_retention: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

impl CommandCenterConfig {
    /// `COMMAND_CENTER_BASE_URL`, `COMMAND_CENTER_API_KEY` and `SERVICE_ID`
    /// fill the section when set (container deployments inject them).
    pub fn with_env(mut self, get: impl Fn(&str) -> Option<String>) -> Self {
        if let Some(v) = get("COMMAND_CENTER_BASE_URL").filter(|v| !v.is_empty()) {
            self.base_url = Some(v);
        }
        if let Some(v) = get("COMMAND_CENTER_API_KEY").filter(|v| !v.is_empty()) {
            self.api_key = Some(Secret::new(v));
        }
        if let Some(v) = get("SERVICE_ID").filter(|v| !v.is_empty()) {
            self.service_id = v;
        }
        self
    }
}

/// Reads a secret file (relative to the config's directory), trimming the
/// trailing newline editors add.
pub(crate) fn read_secret(v: &S<String>, dir: Option<&Path>, sink: &mut Sink) -> Option<String> {
    let path = crate::config::join_dir(dir, &v.value);
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let s = s.trim_end_matches(['\n', '\r']).to_string();
            if s.is_empty() {
                sink.push(Pos::of(v), format!("{path:?} is empty"));
                None
            } else {
                Some(s)
            }
        }
        Err(e) => {
            sink.push(Pos::of(v), format!("reading {path:?}: {e}"));
            None
        }
    }
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        let hi = (*b.get(2 * i)? as char).to_digit(16)?;
        let lo = (*b.get(2 * i + 1)? as char).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some(out)
}

pub(crate) fn resolve_auth(raw: RawAuth, dir: Option<&Path>, sink: &mut Sink) -> AuthConfig {
    let mut tokens = Vec::new();
    for t in raw.tokens.iter().flatten() {
        let at = Pos::of(t);
        let t = &t.value;
        let Some(name) = t.name.as_ref().filter(|n| !n.value.is_empty()) else {
            sink.push(at, "auth token without a name");
            continue;
        };
        if tokens.iter().any(|x: &TokenConfig| x.name == name.value) {
            sink.push(
                Pos::of(name),
                format!("duplicate token name {:?}", name.value),
            );
        }
        let sha256 = match (&t.token_file, &t.token_sha256) {
            (Some(_), Some(h)) => {
                sink.push(
                    Pos::of(h),
                    "token_file and token_sha256 are mutually exclusive",
                );
                None
            }
            (None, None) => {
                sink.push(
                    at,
                    format!(
                        "token {:?}: one of token_file, token_sha256 is required",
                        name.value
                    ),
                );
                None
            }
            (Some(f), None) => {
                read_secret(f, dir, sink).map(|s| Sha256::digest(s.as_bytes()).into())
            }
            (None, Some(h)) => {
                let v = parse_hex32(h.value.trim());
                if v.is_none() {
                    sink.push(Pos::of(h), "token_sha256 must be 64 hex digits");
                }
                v
            }
        };
        let mut roles = Vec::new();
        for r in t.roles.iter().flatten() {
            match Role::parse(&r.value) {
                Some(role) => roles.push(role),
                None => sink.push(
                    Pos::of(r),
                    format!("unknown role {:?} (viewer, operator, admin)", r.value),
                ),
            }
        }
        if roles.is_empty() {
            sink.push(at, format!("token {:?} has no roles", name.value));
        }
        let mut tenants = Vec::new();
        for v in t.tenants.iter().flatten() {
            if v.value.is_empty() {
                sink.push(Pos::of(v), "empty tenant name");
            } else {
                tenants.push(v.value.clone());
            }
        }
        tenants.sort();
        tenants.dedup();
        if !tenants.is_empty() && roles.contains(&Role::Admin) {
            // Admins see every tenant; a scoped admin would be a contradiction
            // an operator should hear about rather than guess.
            sink.push(
                at,
                format!(
                    "token {:?}: an admin token cannot be scoped to tenants (admins see all tenants)",
                    name.value
                ),
            );
        }
        if let Some(sha256) = sha256 {
            tokens.push(TokenConfig {
                name: name.value.clone(),
                sha256,
                roles,
                tenants,
            });
        }
    }
    let anonymous_role = raw.anonymous_role.as_ref().map(|r| {
        if r.value == "none" || r.value.is_empty() {
            None
        } else {
            let role = Role::parse(&r.value);
            if role.is_none() {
                sink.push(
                    Pos::of(r),
                    format!(
                        "unknown anonymous_role {:?} (none, viewer, operator, admin)",
                        r.value
                    ),
                );
            }
            role
        }
    });
    let rate_limit = raw.rate_limit.as_ref().and_then(|rl| {
        let rps = rl.value.requests_per_second.as_ref()?;
        if !(rps.value.is_finite() && rps.value > 0.0) {
            sink.push(Pos::of(rps), "requests_per_second must be > 0");
            return None;
        }
        let burst = rl.value.burst.as_ref().map(|b| b.value).unwrap_or(0);
        Some(RateLimitConfig {
            requests_per_second: rps.value,
            burst: burst.max(rps.value.ceil() as u32).max(1),
        })
    });
    let probe_role = raw.probe_role.as_ref().and_then(|r| {
        let role = Role::parse(&r.value);
        if role.is_none() {
            sink.push(
                Pos::of(r),
                format!("unknown probe_role {:?} (viewer, operator, admin)", r.value),
            );
        }
        role
    });
    let tenant_label = match &raw.tenant_label {
        None => crate::ops::tenants::DEFAULT_LABEL.to_string(),
        Some(l) => {
            if !crate::config::relabel::is_valid_label_name(&l.value) || l.value.starts_with("__") {
                sink.push(
                    Pos::of(l),
                    format!("tenant_label {:?} is not a valid label name", l.value),
                );
            }
            l.value.clone()
        }
    };
    AuthConfig {
        tokens,
        anonymous_role,
        rate_limit,
        probe_role,
        tenant_label,
    }
}

pub(crate) fn resolve_command_center(
    raw: RawCommandCenter,
    dir: Option<&Path>,
    sink: &mut Sink,
) -> CommandCenterConfig {
    let d = CommandCenterConfig::default();
    let base_url = raw.base_url.as_ref().and_then(|u| {
        let v = u.value.trim_end_matches('/').to_string();
        if v.starts_with("http://") || v.starts_with("https://") {
            Some(v)
        } else {
            sink.push(Pos::of(u), "base_url must start with http:// or https://");
            None
        }
    });
    let pick = |inline: &Option<S<String>>,
                file: &Option<S<String>>,
                what: &str,
                sink: &mut Sink| match (inline, file) {
        (Some(_), Some(f)) => {
            sink.push(
                Pos::of(f),
                format!("{what} and {what}_file are mutually exclusive"),
            );
            None
        }
        (Some(v), None) => Some(Secret::new(v.value.clone())),
        (None, Some(f)) => read_secret(f, dir, sink).map(Secret::new),
        (None, None) => None,
    };
    let api_key = pick(&raw.api_key, &raw.api_key_file, "api_key", sink);
    let command_secret = pick(
        &raw.command_secret,
        &raw.command_secret_file,
        "command_secret",
        sink,
    );
    let mut retry_backoff = Vec::new();
    for b in raw.retry_backoff.iter().flatten() {
        match crate::config::parse_duration(&b.value) {
            Ok(v) => retry_backoff.push(v),
            Err(e) => sink.push(Pos::of(b), e),
        }
    }
    if retry_backoff.is_empty() {
        retry_backoff = d.retry_backoff.clone();
    }
    CommandCenterConfig {
        base_url,
        api_key,
        service_id: raw.service_id.unwrap_or(d.service_id),
        region: raw.region.unwrap_or(d.region),
        interval: crate::config::common::opt_duration(&raw.interval, sink).unwrap_or(d.interval),
        command_secret,
        retry_backoff,
        events_retention: crate::config::common::opt_duration(&raw.events_retention, sink)
            .unwrap_or(d.events_retention),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]

    struct Loaded {
        auth: Option<AuthConfig>,
        command_center: Option<CommandCenterConfig>,
    }

    /// `auth:` and `command_center:` resolved alone, as the file loader
    /// does.
    fn auth(y: &str) -> Result<Loaded, crate::config::ConfigErrors> {
        #[derive(Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct File {
            auth: Option<RawAuth>,
            command_center: Option<RawCommandCenter>,
        }
        let f: File = crate::config::parse_yaml(y, "t.yml")?;
        let mut sink = Sink::new("t.yml");
        let auth = f.auth.map(|a| resolve_auth(a, None, &mut sink));
        let command_center = f
            .command_center
            .map(|c| resolve_command_center(c, None, &mut sink));
        sink.into_result(Loaded {
            auth,
            command_center,
        })
    }

    #[test]
    fn tokens_roles_and_positions() {
        let h = "a".repeat(64);
        let c = auth(&format!(
            "auth:\n  tokens:\n    - name: ci\n      token_sha256: {h}\n      roles: [viewer, operator]\n  anonymous_role: none\n  rate_limit: {{requests_per_second: 2, burst: 5}}\n"
        ))
        .unwrap();
        let a = c.auth.unwrap();
        assert_eq!(a.tokens[0].roles, vec![Role::Viewer, Role::Operator]);
        assert_eq!(a.tokens[0].sha256, [0xaa; 32]);
        assert_eq!(a.anonymous_role, Some(None));
        assert_eq!(a.rate_limit.unwrap().burst, 5);
        let e =
            auth("auth:\n  tokens:\n    - name: x\n      token_sha256: zz\n      roles: [root]\n")
                .unwrap_err()
                .to_string();
        assert!(
            e.contains("t.yml:4:21: token_sha256 must be 64 hex digits"),
            "{e}"
        );
        assert!(e.contains("t.yml:5:15: unknown role \"root\""), "{e}");
        let c = auth("auth:\n  probe_role: viewer\n").unwrap();
        assert_eq!(c.auth.unwrap().probe_role, Some(Role::Viewer));
        let e = auth("auth:\n  probe_role: everyone\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.yml:2:15: unknown probe_role"), "{e}");
    }

    #[test]
    fn tenant_scoped_tokens() {
        let h = "a".repeat(64);
        let c = auth(&format!(
            "auth:\n  tenant_label: team\n  tokens:\n    - name: t\n      token_sha256: {h}\n      roles: [viewer]\n      tenants: [b, a, b]\n"
        ))
        .unwrap();
        let a = c.auth.unwrap();
        assert_eq!(a.tenant_label, "team");
        assert_eq!(a.tokens[0].tenants, ["a", "b"]);
        let c = auth("auth:\n  anonymous_role: none\n").unwrap();
        assert_eq!(c.auth.unwrap().tenant_label, "tenant");
        let e = auth(&format!(
            "auth:\n  tenant_label: 1x\n  tokens:\n    - name: t\n      token_sha256: {h}\n      roles: [admin]\n      tenants: [a, '']\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("t.yml:2:17: tenant_label \"1x\""), "{e}");
        assert!(e.contains("cannot be scoped to tenants"), "{e}");
        assert!(e.contains("empty tenant name"), "{e}");
    }

    #[test]
    fn secrets_of_these_sections_are_redacted() {
        let y = "command_center:\n  command_secret: hunter2\n  api_key: k3y\nauth:\n  tokens:\n    - name: a\n      token_sha256: abcd\n";
        let r = crate::config::redact_secrets(y);
        for s in ["hunter2", "k3y", "abcd"] {
            assert!(!r.contains(s), "{r}");
        }
    }

    #[test]
    fn command_center_env_overlay_and_missing_file() {
        let c = auth("command_center:\n  base_url: http://cc/\n  interval: 5s\n").unwrap();
        let cc = c
            .command_center
            .unwrap()
            .with_env(|k| (k == "SERVICE_ID").then(|| "svc-1".to_string()));
        assert_eq!(cc.base_url.as_deref(), Some("http://cc"));
        assert_eq!(cc.service_id, "svc-1");
        assert_eq!(cc.interval, Duration::from_secs(5));
        let e = auth("command_center:\n  command_secret_file: /nonexistent/x\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.yml:2:24: reading"), "{e}");
    }
}
