//! Secrets out of the configuration text that the status APIs serve
//! (`/api/v1/status/config`, `/api/v2/status`'s `config.original`).
//!
//! The text is parsed (anchors, aliases, block scalars, flow mappings and
//! quoting resolved by the YAML parser, as the loader sees them), secrets
//! are replaced in the parsed tree, and the tree is written back as block
//! YAML, as Prometheus and Alertmanager marshal their parsed configs (the
//! user's comments and layout do not survive; no secret shape can slip
//! through a text pattern). Replaced:
//! - the value of every key typed as a secret in Prometheus or
//!   Alertmanager (and klaxon's own sections), whatever its shape;
//! - URLs that are secrets as a whole (Alertmanager's `SecretURL`s: a
//!   webhook receiver's `url`, Slack's `api_url`, chat webhook URLs);
//! - in every other URL, the userinfo password and the values of query
//!   parameters that carry credentials (`?token=`, `api_key=`, ...).
//!
//! Text that does not parse is never shown (a placeholder is).

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use std::fmt;

/// What replaces a secret, as Prometheus and Alertmanager print it (both
/// accept it back when a shown config is reloaded unchanged).
pub const SECRET: &str = "<secret>";

/// Shown instead of text that does not parse as YAML.
pub const UNPARSABLE: &str =
    "redacted: configuration text that does not parse as YAML is not shown\n";

/// Keys whose values are secrets wherever they appear: Prometheus'
/// `Secret` fields, Alertmanager's `Secret`/`SecretURL` fields and klaxon's
/// own (`auth:`, `command_center:`, `storage:`).
const SECRET_KEYS: &[&str] = &[
    // Prometheus HTTP client, TLS, OAuth2, SigV4, service discovery.
    "password",
    "bearer_token",
    "credentials",
    "key",
    "client_secret",
    "secret_key",
    "proxy_connect_header",
    // Alertmanager receivers and globals.
    "auth_password",
    "auth_secret",
    "routing_key",
    "service_key",
    "api_key",
    "api_url",
    "api_secret",
    "slack_api_url",
    "smtp_auth_password",
    "smtp_auth_secret",
    "opsgenie_api_key",
    "victorops_api_key",
    "wechat_api_secret",
    "telegram_bot_token",
    "bot_token",
    "rocketchat_token",
    "rocketchat_token_id",
    "token_id",
    "mattermost_webhook_url",
    "slack_app_token",
    "app_token",
    "user_key",
    "webhook_url",
    "secret",
    "token",
    // klaxon: auth:, command_center:, storage:.
    "command_secret",
    "hmac_secret",
    "token_sha256",
    "dsn",
];

/// `(parent list, key)`: keys that are secrets only in one receiver type
/// (a webhook's whole `url` is Alertmanager's `SecretURL`; elsewhere `url`
/// is an address whose userinfo and token parameters are masked).
const SECRET_KEYS_IN: &[(&str, &str)] = &[("webhook_configs", "url")];

/// Query parameters whose values are credentials in receiver and API URLs.
const TOKEN_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "api_key",
    "apikey",
    "key",
    "secret",
    "password",
    "sig",
    "signature",
    "auth",
    "code",
    "routing_key",
    "integration_key",
];

/// A parsed YAML node, mapping order kept.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Int(v))
    }
    fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<Node, E> {
        i128::try_from(v)
            .map(Node::Int)
            .map_err(|_| E::custom("integer out of range"))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut v = Vec::new();
        while let Some(x) = a.next_element::<Node>()? {
            v.push(x);
        }
        Ok(Node::Seq(v))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Node, A::Error> {
        let mut v = Vec::new();
        while let Some((k, x)) = a.next_entry::<Node, Node>()? {
            v.push((key_text(&k), x));
        }
        Ok(Node::Map(v))
    }
}

/// A mapping key as text (YAML allows any scalar; configs use strings).
fn key_text(k: &Node) -> String {
    match k {
        Node::Str(s) => s.clone(),
        other => {
            let mut s = String::new();
            emit_scalar(other, &mut s);
            s
        }
    }
}

fn parse(text: &str) -> Option<Node> {
    let opts = serde_saphyr::options! {
        duplicate_keys: serde_saphyr::DuplicateKeyPolicy::Error,
        // `n:`/`on:` stay the keys (and strings) they are written as.
        strict_booleans: true,
        non_finite_float_policy: serde_saphyr::NonFiniteFloatPolicy::PassThrough,
    };
    let n: Option<Node> = serde_saphyr::from_str_with_options(text, opts).ok()?;
    Some(n.unwrap_or(Node::Null))
}

/// The config text with every secret replaced by `<secret>` (see the
/// module docs), as block YAML.
pub fn redact_secrets(yaml: &str) -> String {
    match parse(yaml) {
        Some(mut n) => {
            redact_node(&mut n, None);
            emit(&n)
        }
        None => UNPARSABLE.to_string(),
    }
}

/// [`redact_secrets`] of one top-level section (`notify:`), so anchors
/// defined elsewhere in the file still resolve.
pub fn redact_section(yaml: &str, key: &str) -> String {
    let Some(Node::Map(entries)) = parse(yaml) else {
        return UNPARSABLE.to_string();
    };
    match entries.into_iter().find(|(k, _)| k == key) {
        Some((_, mut n)) => {
            redact_node(&mut n, None);
            emit(&n)
        }
        None => String::new(),
    }
}

fn is_secret_key(parent: Option<&str>, key: &str) -> bool {
    SECRET_KEYS.contains(&key)
        || SECRET_KEYS_IN
            .iter()
            .any(|(p, k)| *k == key && parent == Some(*p))
}

/// `list` is the key of the sequence this node is an element of.
fn redact_node(n: &mut Node, list: Option<&str>) {
    match n {
        Node::Map(entries) => {
            for (k, v) in entries.iter_mut() {
                if is_secret_key(list, k) {
                    mask(v);
                } else {
                    match v {
                        Node::Seq(items) => {
                            for it in items {
                                redact_node(it, Some(k));
                            }
                        }
                        _ => redact_node(v, None),
                    }
                }
            }
        }
        Node::Seq(items) => {
            for it in items {
                redact_node(it, list);
            }
        }
        Node::Str(s) if s.contains("://") => *s = redact_url(s),
        _ => {}
    }
}

/// Every scalar under a secret key becomes `<secret>` (an empty value
/// stays empty: it hides nothing and says the field is unset).
fn mask(n: &mut Node) {
    match n {
        Node::Null => {}
        Node::Str(s) if s.is_empty() => {}
        Node::Seq(items) => items.iter_mut().for_each(mask),
        Node::Map(entries) => entries.iter_mut().for_each(|(_, v)| mask(v)),
        _ => *n = Node::Str(SECRET.to_string()),
    }
}

/// A URL with its userinfo password and credential query values masked.
pub fn redact_url(url: &str) -> String {
    let url = crate::model::url::redact_userinfo(url);
    let Some((base, rest)) = url.split_once('?') else {
        return url;
    };
    let (query, fragment) = match rest.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (rest, None),
    };
    let mut out = String::with_capacity(url.len());
    out.push_str(base);
    out.push('?');
    for (i, pair) in query.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((name, v))
                if !v.is_empty() && TOKEN_PARAMS.contains(&name.to_ascii_lowercase().as_str()) =>
            {
                out.push_str(name);
                out.push('=');
                out.push_str(SECRET);
            }
            _ => out.push_str(pair),
        }
    }
    if let Some(f) = fragment {
        out.push('#');
        out.push_str(f);
    }
    out
}

/// Block YAML for a tree; parsing it back gives the same tree.
fn emit(n: &Node) -> String {
    let mut out = String::new();
    match n {
        Node::Map(e) if !e.is_empty() => emit_block(n, 0, &mut out),
        Node::Seq(v) if !v.is_empty() => emit_block(n, 0, &mut out),
        // An empty document shows as empty.
        Node::Null => {}
        _ => {
            emit_scalar(n, &mut out);
            out.push('\n');
        }
    }
    out
}

fn is_block(n: &Node) -> bool {
    match n {
        Node::Map(e) => !e.is_empty(),
        Node::Seq(v) => !v.is_empty(),
        _ => false,
    }
}

fn emit_block(n: &Node, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match n {
        Node::Map(entries) => {
            for (k, v) in entries {
                out.push_str(&pad);
                emit_str(k, out);
                out.push(':');
                if is_block(v) {
                    out.push('\n');
                    emit_block(v, indent + 2, out);
                } else {
                    out.push(' ');
                    emit_scalar(v, out);
                    out.push('\n');
                }
            }
        }
        Node::Seq(items) => {
            for it in items {
                if is_block(it) {
                    // The item's first line goes after the dash.
                    let mut sub = String::new();
                    emit_block(it, indent + 2, &mut sub);
                    out.push_str(&pad);
                    out.push_str("- ");
                    out.push_str(sub.get(indent + 2..).unwrap_or(""));
                } else {
                    out.push_str(&pad);
                    out.push_str("- ");
                    emit_scalar(it, out);
                    out.push('\n');
                }
            }
        }
        _ => emit_scalar(n, out),
    }
}

fn emit_scalar(n: &Node, out: &mut String) {
    match n {
        Node::Null => out.push_str("null"),
        Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Node::Int(i) => out.push_str(&i.to_string()),
        Node::Float(f) if f.is_nan() => out.push_str(".nan"),
        Node::Float(f) if f.is_infinite() => out.push_str(if *f > 0.0 { ".inf" } else { "-.inf" }),
        Node::Float(f) => {
            let s = format!("{f:?}");
            out.push_str(&s);
        }
        Node::Str(s) => emit_str(s, out),
        Node::Map(_) => out.push_str("{}"),
        Node::Seq(_) => out.push_str("[]"),
    }
}

/// A string plain when YAML reads it back as the same string, else
/// double-quoted (JSON's escapes are valid YAML).
fn emit_str(s: &str, out: &mut String) {
    if is_plain_safe(s) {
        out.push_str(s);
    } else {
        out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
    }
}

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphanumeric() || matches!(first, '_' | '/' | '<' | '$' | '.')) {
        return false;
    }
    let safe = |c: char| c.is_ascii_alphanumeric() || " _./<>@%+=,$()-:".contains(c);
    if !s.chars().all(safe) || s.ends_with([' ', ':']) || s.contains(": ") {
        return false;
    }
    if matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "nan" | "inf"
    ) {
        return false;
    }
    if first.is_ascii_digit() || first == '.' {
        // `15s` and `10.0.0.1:9100` are strings, `1e3` and `0x1F` are not:
        // ask the parser rather than re-implement its number rules.
        return parse(&format!("k: {s}\n"))
            == Some(Node::Map(vec![("k".to_string(), Node::Str(s.to_string()))]));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every secret planted, in every shape YAML allows.
    const PLANTED: &str = r#"
global:
  smtp_auth_password: >-
    S1-folded
  slack_api_url:
    https://hooks.slack.com/services/S2/next/line
x-shared: &creds
  username: u
  password: 'S3-anchored'
scrape_configs:
  - job_name: a
    basic_auth: *creds
    authorization: {type: Bearer, credentials: "S4-flow,quoted"}
    oauth2:
      client_id: id
      client_secret: |
        S5-literal
    proxy_url: http://proxyuser:S6-userinfo@proxy:3128
    tls_config: {key: S7-key}
  - job_name: b
    <<: *creds
    bearer_token:
      S8-next-line
    static_configs: [{targets: ["h:9"]}]
notify:
  receivers:
    - name: hook
      webhook_configs:
        - url: http://hook.example/x?token=S9
          http_config:
            authorization:
              credentials: S10
    - name: pd
      pagerduty_configs: [{routing_key: "S11", url: "https://events.pagerduty.com/v2/enqueue?token=S22&region=eu"}]
    - name: chat
      slack_configs:
        - api_url: "https://hooks.slack.com/services/S12"
      msteams_configs:
        - webhook_url: https://outlook.office.com/webhook/S13
      opsgenie_configs:
        - api_key: S14
          api_url: https://api.opsgenie.com/?apikey=S15&region=eu
remote_write:
  - url: https://u:S16@mimir/api/v1/push?X-Scope=t&access_token=S17
storage:
  dsn: "postgresql://k:S18@db/klaxon"
auth:
  tokens:
    - {name: ci, token_sha256: S19abcdef, roles: [viewer]}
command_center:
  command_secret: "S20"
  api_key: S21
"#;

    #[test]
    fn every_shape_of_planted_secret_is_masked() {
        let r = redact_secrets(PLANTED);
        for i in 1..=22 {
            let leak = format!("S{i}");
            // `S1` is a prefix of `S10`..: look for the token itself.
            let found = r.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| {
                w.starts_with(&leak) && !w[leak.len()..].starts_with(|c: char| c.is_ascii_digit())
            });
            assert!(!found, "{leak} leaked:\n{r}");
        }
        // What is not a secret stays, in the shape YAML reads back.
        for kept in [
            "username: u",
            "client_id: id",
            "job_name: b",
            "- h:9",
            "https://events.pagerduty.com/v2/enqueue",
            "region=eu",
            "X-Scope=t",
            "proxy_url: http://proxyuser:<secret>@proxy:3128",
            "name: ci",
        ] {
            assert!(r.contains(kept), "{kept} missing:\n{r}");
        }
        assert!(r.contains("password: <secret>"), "{r}");
        // Stable: the output parses and redacts to itself.
        assert_eq!(redact_secrets(&r), r);
    }

    #[test]
    fn scalars_keep_their_types() {
        let y = "a: '1'\nb: 1\nc: 1.5\nd: 'true'\ne: true\nf: ''\ng: null\nh: 'x: y'\ni: \"#no\"\nj: [1, '2']\nk: {}\nl: []\nm: .inf\nn: \"line\\nbreak\"\non: 'no'\n";
        let r = redact_secrets(y);
        assert_eq!(parse(&r), parse(y), "{r}");
        assert!(
            r.contains("m: .inf\n") && r.contains("\"n\": \"line\\nbreak\"\n"),
            "{r}"
        );
        assert!(r.contains("\"on\": \"no\"\n"), "{r}");
        let y = "a: 15s\nb: 10.0.0.1:9100\nc: '1e3'\nd: '0x1F'\ne: '1.5'\nf: .hidden\n";
        let r = redact_secrets(y);
        assert_eq!(parse(&r), parse(y), "{r}");
        assert!(
            r.starts_with("a: 15s\nb: 10.0.0.1:9100\nc: \"1e3\"\n"),
            "{r}"
        );
    }

    #[test]
    fn sections_and_unparsable_text() {
        let y = "base: &b {password: p1}\nnotify:\n  route: {receiver: a}\n  receivers: [{name: a, email_configs: [{to: x@y, auth_password: p2}]}]\n  global: *b\n";
        let n = redact_section(y, "notify");
        assert!(!n.contains("p1") && !n.contains("p2"), "{n}");
        assert!(n.starts_with("route:\n  receiver: a\n"), "{n}");
        assert_eq!(redact_section(y, "absent"), "");
        assert_eq!(redact_secrets("password: [unclosed\n"), UNPARSABLE);
        assert_eq!(redact_secrets(UNPARSABLE), UNPARSABLE);
        assert_eq!(redact_secrets(""), "");
        assert_eq!(redact_secrets("# only a comment\n"), "");
    }
}
