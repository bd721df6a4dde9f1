//! RBAC for klaxon's HTTP API: who is calling (a bearer token from the
//! config, or anonymous) and what each route requires, in ONE table.
//!
//! Roles are never taken from a client-supplied header: the only identity
//! is a token whose SHA-256 matches a configured digest. Digests are
//! compared in constant time, and every configured token is compared (no
//! early exit), so timing reveals neither a prefix nor which token matched.

use crate::ops::config::{AuthConfig, RateLimitConfig, TokenConfig};
use parking_lot::Mutex;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// Roles, each including the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "viewer" => Some(Role::Viewer),
            "operator" => Some(Role::Operator),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// What a route asks of its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Required {
    /// Liveness/readiness probes: orchestrators call them without tokens.
    Public,
    Role(Role),
    /// Authenticated by the HMAC signature alone (the emergency kill-switch
    /// must work even when token distribution is broken); the handler
    /// verifies it.
    Signed,
}

use Required::{Public, Signed};
const VIEWER: Required = Required::Role(Role::Viewer);
const OPERATOR: Required = Required::Role(Role::Operator);
const ADMIN: Required = Required::Role(Role::Admin);

/// Every route klaxon (and the branches being merged into it) serves, with
/// the role it needs. A route missing here falls back to [`default_for`]:
/// viewer for reads, admin for anything else.
pub const ROUTES: &[(&str, &str, Required)] = &[
    ("GET", "/-/healthy", Public),
    ("HEAD", "/-/healthy", Public),
    ("GET", "/-/ready", Public),
    ("HEAD", "/-/ready", Public),
    ("GET", "/healthz", Public),
    ("GET", "/meta", VIEWER),
    // The web UI's files hold no data (the pages call the APIs below with
    // the user's token), so a browser can load them before it has one.
    ("GET", "/", Public),
    ("HEAD", "/", Public),
    ("GET", "/ui/{*path}", Public),
    ("HEAD", "/ui/{*path}", Public),
    // Prometheus' classic graph links redirect to the UI's graph page.
    ("GET", "/graph", Public),
    ("GET", "/api/v1/auth/whoami", VIEWER),
    ("GET", "/api/v1/probes", VIEWER),
    ("GET", "/metrics", VIEWER),
    ("GET", "/metrics/host", VIEWER),
    ("GET", "/metrics/postgres", VIEWER),
    // Off loopback `Authorizer::required` raises it (`auth.probe_role`).
    ("GET", "/probe", VIEWER),
    ("GET", "/runbooks/", VIEWER),
    ("GET", "/runbooks/{name}", VIEWER),
    ("GET", "/api/v1/targets", VIEWER),
    ("GET", "/api/v1/query", VIEWER),
    ("POST", "/api/v1/query", VIEWER),
    ("GET", "/api/v1/query_range", VIEWER),
    ("POST", "/api/v1/query_range", VIEWER),
    ("GET", "/api/v1/query_exemplars", VIEWER),
    ("POST", "/api/v1/query_exemplars", VIEWER),
    ("GET", "/api/v1/series", VIEWER),
    ("POST", "/api/v1/series", VIEWER),
    ("GET", "/api/v1/labels", VIEWER),
    ("POST", "/api/v1/labels", VIEWER),
    ("GET", "/api/v1/label/{name}/values", VIEWER),
    ("GET", "/api/v1/format_query", VIEWER),
    ("POST", "/api/v1/format_query", VIEWER),
    ("GET", "/api/v1/metadata", VIEWER),
    // Remote write appends data, so it is a change, but one a sidecar
    // Prometheus makes continuously: operator, like posting alerts.
    ("POST", "/api/v1/write", OPERATOR),
    ("POST", "/api/v1/otlp/v1/metrics", OPERATOR),
    ("GET", "/api/v1/rules", VIEWER),
    ("GET", "/api/v1/alerts", VIEWER),
    ("GET", "/api/v1/alertmanagers", VIEWER),
    ("GET", "/api/v1/status/buildinfo", VIEWER),
    ("GET", "/api/v1/status/config", ADMIN),
    ("GET", "/api/v1/status/flags", VIEWER),
    ("GET", "/api/v1/status/runtimeinfo", VIEWER),
    ("GET", "/api/v1/status/tsdb", VIEWER),
    ("GET", "/api/v1/events/stream", VIEWER),
    ("GET", "/api/v1/events/audit", VIEWER),
    ("GET", "/api/v1/deliveries", VIEWER),
    ("GET", "/api/v1/tenants/summary", VIEWER),
    ("POST", "/api/v1/deliveries/{id}/replay", OPERATOR),
    ("GET", "/api/v2/alerts", VIEWER),
    ("POST", "/api/v2/alerts", OPERATOR),
    ("GET", "/api/v2/alerts/groups", VIEWER),
    ("GET", "/api/v2/silences", VIEWER),
    ("POST", "/api/v2/silences", OPERATOR),
    ("GET", "/api/v2/silence/{id}", VIEWER),
    ("DELETE", "/api/v2/silence/{id}", OPERATOR),
    ("GET", "/api/v2/status", VIEWER),
    ("GET", "/api/v2/receivers", VIEWER),
    // Prometheus' TSDB admin API (also needs --web.enable-admin-api).
    ("POST", "/api/v1/admin/tsdb/snapshot", ADMIN),
    ("PUT", "/api/v1/admin/tsdb/snapshot", ADMIN),
    ("POST", "/api/v1/admin/tsdb/delete_series", ADMIN),
    ("PUT", "/api/v1/admin/tsdb/delete_series", ADMIN),
    ("POST", "/api/v1/admin/tsdb/clean_tombstones", ADMIN),
    ("PUT", "/api/v1/admin/tsdb/clean_tombstones", ADMIN),
    ("POST", "/-/reload", ADMIN),
    ("PUT", "/-/reload", ADMIN),
    ("POST", "/internal/commands/kill-switch", Signed),
    ("POST", "/internal/commands/resume", Signed),
    ("POST", "/internal/commands/reload", ADMIN),
    ("POST", "/internal/commands/refresh", ADMIN),
    // Auto-healing: operators see the rules and runs, admins change them.
    ("GET", "/api/v1/autoheal/rules", OPERATOR),
    ("POST", "/api/v1/autoheal/rules", ADMIN),
    ("GET", "/api/v1/autoheal/rules/{name}", OPERATOR),
    ("PUT", "/api/v1/autoheal/rules/{name}", ADMIN),
    ("DELETE", "/api/v1/autoheal/rules/{name}", ADMIN),
    ("GET", "/api/v1/autoheal/runs", OPERATOR),
    ("POST", "/api/v1/autoheal/clear_endpoint_cooldown", ADMIN),
];

/// For a route not in [`ROUTES`]: reads need a viewer, anything else an admin.
pub fn default_for(method: &str) -> Required {
    if method == "GET" || method == "HEAD" {
        VIEWER
    } else {
        ADMIN
    }
}

/// Whether a concrete path matches a route pattern with `{param}` segments.
pub fn pattern_matches(pattern: &str, path: &str) -> bool {
    let mut p = pattern.split('/');
    let mut q = path.split('/');
    loop {
        match (p.next(), q.next()) {
            (None, None) => return true,
            // A `{*rest}` catch-all takes the remaining segments (one at least).
            (Some(a), Some(b)) if a.starts_with("{*") && a.ends_with('}') => return !b.is_empty(),
            (Some(a), Some(b)) => {
                let param = a.starts_with('{') && a.ends_with('}');
                if !(param && !b.is_empty() || a == b) {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The table's pattern for a raw path (used when the router matched
/// nothing, so a route another branch adds later is still protected).
pub fn route_for_path(path: &str) -> Option<&'static str> {
    ROUTES
        .iter()
        .map(|r| r.1)
        .find(|pat| pattern_matches(pat, path))
}

/// What `method route` requires.
pub fn required(method: &str, route: &str) -> Required {
    ROUTES
        .iter()
        .find(|(m, r, _)| *m == method && *r == route)
        .map(|r| r.2)
        .unwrap_or_else(|| default_for(method))
}

/// Who is calling.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's configured name, or `anonymous`.
    pub name: String,
    pub role: Option<Role>,
    pub authenticated: bool,
    /// The tenants a scoped token may see and write (`None`: all).
    pub scope: Option<crate::ops::tenants::Scope>,
}

impl Principal {
    /// The anonymous caller (no role), for refused or unauthenticated
    /// requests.
    pub fn anonymous() -> Principal {
        Principal {
            name: "anonymous".into(),
            role: None,
            authenticated: false,
            scope: None,
        }
    }

    /// Who made a change, for the audit and access logs: the token's name,
    /// or `anonymous@ADDRESS`.
    pub fn caller(&self, peer: Option<std::net::SocketAddr>) -> String {
        match (self.authenticated, peer) {
            (true, _) => self.name.clone(),
            (false, Some(p)) => format!("anonymous@{}", p.ip()),
            (false, None) => "anonymous".to_string(),
        }
    }
}

/// Why a request is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("missing or invalid bearer token")]
    Unauthorized,
    #[error("role {needed} required")]
    Forbidden { needed: &'static str },
}

/// Authenticates requests against the configured tokens.
pub struct Authorizer {
    tokens: Vec<TokenConfig>,
    anonymous: Option<Role>,
    /// What `GET /probe` needs (it makes klaxon fetch any target).
    probe_role: Role,
    limiter: Option<RateLimiter>,
    tenant_label: String,
}

/// The probe route, whose role is configurable (`auth.probe_role`).
pub const PROBE_ROUTE: &str = "/probe";

impl Authorizer {
    /// `listen_is_loopback` decides the defaults: with no `auth:` section a
    /// loopback listener is anonymous admin (klaxon behaves like Prometheus,
    /// which has no auth, so `cargo run` + Grafana keeps working) and any
    /// other listener is anonymous viewer (reads work, changes are refused).
    /// With an `auth:` section, anonymous is `anonymous_role` or else viewer
    /// on loopback and nothing otherwise.
    pub fn new(cfg: Option<&AuthConfig>, listen_is_loopback: bool) -> Self {
        let anonymous = match cfg {
            None if listen_is_loopback => Some(Role::Admin),
            None => Some(Role::Viewer),
            Some(c) => match c.anonymous_role {
                Some(explicit) => explicit,
                None if listen_is_loopback => Some(Role::Viewer),
                None => None,
            },
        };
        // `/probe?target=` fetches any address: an SSRF tool for anyone who
        // can reach a non-loopback listener, so operators only by default
        // there (blackbox_exporter deployments restrict it the same way).
        let probe_role = cfg
            .and_then(|c| c.probe_role)
            .unwrap_or(if listen_is_loopback {
                Role::Viewer
            } else {
                Role::Operator
            });
        Authorizer {
            tokens: cfg.map(|c| c.tokens.clone()).unwrap_or_default(),
            anonymous,
            probe_role,
            limiter: cfg.and_then(|c| c.rate_limit).map(RateLimiter::new),
            tenant_label: cfg
                .map_or(crate::ops::tenants::DEFAULT_LABEL, |c| &c.tenant_label)
                .to_string(),
        }
    }

    /// The caller named by an `Authorization` header value (or its absence).
    pub fn authenticate(&self, authorization: Option<&str>) -> Result<Principal, AuthError> {
        let Some(h) = authorization else {
            return Ok(Principal {
                name: "anonymous".into(),
                role: self.anonymous,
                authenticated: false,
                scope: None,
            });
        };
        let token = h
            .strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(AuthError::Unauthorized)?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut found: Option<&TokenConfig> = None;
        for t in &self.tokens {
            // Every token is compared; the branch below only records.
            if bool::from(t.sha256.ct_eq(&digest)) {
                found = Some(t);
            }
        }
        let t = found.ok_or(AuthError::Unauthorized)?;
        Ok(self.token_principal(t))
    }

    /// The caller a configured token is: its best role, and its tenants
    /// unless that role is admin (admins see every tenant).
    fn token_principal(&self, t: &TokenConfig) -> Principal {
        let role = t.roles.iter().max().copied();
        let scope = if role == Some(Role::Admin) {
            None
        } else {
            crate::ops::tenants::Scope::new(&self.tenant_label, &t.tenants)
        };
        Principal {
            name: t.name.clone(),
            role,
            authenticated: true,
            scope,
        }
    }

    /// Every tenant some token is scoped to, sorted, once each.
    pub fn configured_tenants(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .tokens
            .iter()
            .flat_map(|t| t.tenants.iter().cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// The label that names tenants (`auth.tenant_label`).
    pub fn tenant_label(&self) -> &str {
        &self.tenant_label
    }

    /// The caller a `--web.config.file` basic-auth user is: the roles of
    /// the `auth.tokens` entry of the same name, else admin (any user the
    /// web config lets in may do everything, as in Prometheus).
    pub fn basic_auth_user(&self, user: &str) -> Principal {
        match self.tokens.iter().find(|t| t.name == user) {
            Some(t) => self.token_principal(t),
            None => Principal {
                name: user.to_string(),
                role: Some(Role::Admin),
                authenticated: true,
                scope: None,
            },
        }
    }

    /// What `method route` requires here: the table, with `/probe` at its
    /// configured role.
    pub fn required(&self, method: &str, route: &str) -> Required {
        if route == PROBE_ROUTE && (method == "GET" || method == "HEAD") {
            return Required::Role(self.probe_role);
        }
        required(method, route)
    }

    pub fn rate_limited(&self) -> bool {
        self.limiter.is_some()
    }

    /// Whether `p` may call a route needing `need`.
    pub fn authorize(p: &Principal, need: Required) -> Result<(), AuthError> {
        let role = match need {
            Required::Public | Required::Signed => return Ok(()),
            Required::Role(r) => r,
        };
        match p.role {
            Some(have) if have >= role => Ok(()),
            // An anonymous caller refused is asked to authenticate.
            _ if !p.authenticated => Err(AuthError::Unauthorized),
            _ => Err(AuthError::Forbidden {
                needed: role.as_str(),
            }),
        }
    }

    /// `Err(seconds to wait)` when the caller is over its rate.
    pub fn check_rate(&self, p: &Principal, addr: Option<IpAddr>) -> Result<(), u64> {
        let Some(l) = &self.limiter else {
            return Ok(());
        };
        let key = if p.authenticated {
            format!("token:{}", p.name)
        } else {
            format!("addr:{}", addr.map(|a| a.to_string()).unwrap_or_default())
        };
        l.take(&key, Instant::now())
    }
}

/// Token buckets per key: `burst` capacity, refilled at
/// `requests_per_second`.
pub struct RateLimiter {
    cfg: RateLimitConfig,
    buckets: Mutex<Buckets>,
}

#[derive(Default)]
struct Buckets {
    by_key: HashMap<String, (f64, Instant)>,
    /// When buckets full again were last dropped.
    swept: Option<Instant>,
}

/// Above this many keys, buckets full again are dropped, at most once a
/// second: many clients at once must not turn every request into a scan.
const MAX_BUCKETS: usize = 10_000;

impl RateLimiter {
    pub fn new(cfg: RateLimitConfig) -> Self {
        RateLimiter {
            cfg,
            buckets: Mutex::new(Buckets::default()),
        }
    }

    pub fn take(&self, key: &str, now: Instant) -> Result<(), u64> {
        let rate = self.cfg.requests_per_second;
        let cap = f64::from(self.cfg.burst);
        let mut guard = self.buckets.lock();
        let bs = &mut *guard;
        let due = bs
            .swept
            .is_none_or(|t| now.saturating_duration_since(t) >= Duration::from_secs(1));
        if bs.by_key.len() > MAX_BUCKETS && due {
            bs.swept = Some(now);
            bs.by_key.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < cap
            });
        }
        let (tokens, at) = bs.by_key.entry(key.to_string()).or_insert((cap, now));
        let elapsed = now.saturating_duration_since(*at).as_secs_f64();
        *tokens = (*tokens + elapsed * rate).min(cap);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil().max(1.0) as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(anon: Option<Option<Role>>) -> AuthConfig {
        AuthConfig {
            tokens: vec![TokenConfig {
                name: "ops".into(),
                sha256: Sha256::digest(b"s3cret").into(),
                roles: vec![Role::Operator],
                tenants: Vec::new(),
            }],
            anonymous_role: anon,
            ..Default::default()
        }
    }

    #[test]
    fn tokens_and_anonymous_defaults() {
        let a = Authorizer::new(Some(&cfg(None)), false);
        let p = a.authenticate(Some("Bearer s3cret")).unwrap();
        assert_eq!((p.name.as_str(), p.role), ("ops", Some(Role::Operator)));
        assert_eq!(
            a.authenticate(Some("Bearer nope")),
            Err(AuthError::Unauthorized)
        );
        assert_eq!(
            a.authenticate(Some("Basic s3cret")),
            Err(AuthError::Unauthorized)
        );
        assert_eq!(a.authenticate(None).unwrap().role, None);
        assert_eq!(
            Authorizer::new(Some(&cfg(None)), true)
                .authenticate(None)
                .unwrap()
                .role,
            Some(Role::Viewer)
        );
        assert_eq!(
            Authorizer::new(None, true).authenticate(None).unwrap().role,
            Some(Role::Admin)
        );
        assert_eq!(
            Authorizer::new(None, false)
                .authenticate(None)
                .unwrap()
                .role,
            Some(Role::Viewer)
        );
        assert_eq!(
            Authorizer::authorize(&p, required("POST", "/-/reload")),
            Err(AuthError::Forbidden { needed: "admin" })
        );
        assert_eq!(
            Authorizer::authorize(&p, required("POST", "/api/v2/silences")),
            Ok(())
        );
    }

    #[test]
    fn scoped_tokens_carry_their_tenants_and_admins_none() {
        let mut c = cfg(None);
        c.tenant_label = "team".into();
        c.tokens[0].tenants = vec!["b".into(), "a".into()];
        c.tokens.push(TokenConfig {
            name: "root".into(),
            sha256: Sha256::digest(b"root").into(),
            roles: vec![Role::Admin],
            tenants: vec!["a".into()],
        });
        let a = Authorizer::new(Some(&c), false);
        let p = a.authenticate(Some("Bearer s3cret")).unwrap();
        let s = p.scope.unwrap();
        assert_eq!(
            (s.label.as_str(), s.tenants.clone()),
            ("team", vec!["a".to_string(), "b".to_string()])
        );
        assert_eq!(a.authenticate(Some("Bearer root")).unwrap().scope, None);
        assert!(a.basic_auth_user("ops").scope.is_some());
        assert_eq!(a.authenticate(None).unwrap().scope, None);
    }

    #[test]
    fn table_defaults_and_patterns() {
        assert_eq!(required("POST", "/api/v1/query"), VIEWER);
        assert_eq!(required("POST", "/nope"), ADMIN);
        assert_eq!(required("GET", "/nope"), VIEWER);
        assert_eq!(
            route_for_path("/api/v2/silence/abc"),
            Some("/api/v2/silence/{id}")
        );
        assert_eq!(route_for_path("/api/v2/silence/"), None);
        assert_eq!(route_for_path("/ui/pages/alerts.js"), Some("/ui/{*path}"));
        assert_eq!(route_for_path("/ui/"), None);
        assert_eq!(required("GET", "/ui/{*path}"), Public);
        assert_eq!(required("GET", "/api/v1/auth/whoami"), VIEWER);
        assert_eq!(
            route_for_path("/api/v1/deliveries/7/replay"),
            Some("/api/v1/deliveries/{id}/replay")
        );
        // No method/route pair twice: one place, one answer.
        for (i, a) in ROUTES.iter().enumerate() {
            assert!(
                !ROUTES[i + 1..].iter().any(|b| a.0 == b.0 && a.1 == b.1),
                "{a:?}"
            );
        }
    }

    #[test]
    fn probe_needs_operator_off_loopback_unless_configured() {
        let need = |a: &Authorizer| a.required("GET", PROBE_ROUTE);
        assert_eq!(need(&Authorizer::new(None, false)), OPERATOR);
        assert_eq!(need(&Authorizer::new(None, true)), VIEWER);
        let mut c = cfg(None);
        c.probe_role = Some(Role::Viewer);
        assert_eq!(need(&Authorizer::new(Some(&c), false)), VIEWER);
        c.probe_role = Some(Role::Admin);
        assert_eq!(need(&Authorizer::new(Some(&c), true)), ADMIN);
        // Anonymous viewers off loopback are asked for a token.
        let a = Authorizer::new(None, false);
        let anon = a.authenticate(None).unwrap();
        assert_eq!(
            Authorizer::authorize(&anon, need(&a)),
            Err(AuthError::Unauthorized)
        );
        // Other routes keep the table's answer.
        assert_eq!(a.required("GET", "/api/v1/targets"), VIEWER);
    }

    #[test]
    fn bucket_refills_at_rate() {
        let l = RateLimiter::new(RateLimitConfig {
            requests_per_second: 2.0,
            burst: 2,
        });
        let t0 = Instant::now();
        assert!(l.take("a", t0).is_ok());
        assert!(l.take("a", t0).is_ok());
        assert_eq!(l.take("a", t0), Err(1));
        assert!(l.take("b", t0).is_ok());
        assert!(l.take("a", t0 + Duration::from_millis(500)).is_ok());
        assert!(l.take("a", t0 + Duration::from_millis(500)).is_err());
    }
}
