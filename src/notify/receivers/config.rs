//! `receivers:` as written (Alertmanager 0.25's shapes) and its resolution
//! into typed integrations with Alertmanager's defaults.

use super::{
    EmailConfig, Integration, PagerDutyConfig, PagerDutyImage, PagerDutyLink, Receiver,
    SecretSource, SlackAction, SlackBlocks, SlackConfig, SlackField, WebhookConfig,
};
use crate::config::errors::{Pos, Sink};
use crate::config::http::{resolve_http_fields, resolve_tls};
use crate::config::raw::{RawHttpClientConfig, RawTlsConfig};
use crate::config::{join_dir, ConfigErrors, HttpClientConfig, Secret, TlsConfig};
use crate::notify::config::GlobalConfig;
use crate::template::TemplateSet;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_saphyr::Spanned as S;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// One entry of `receivers:` as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReceiver {
    pub name: String,
    #[serde(default)]
    pub(crate) pagerduty_configs: Vec<S<RawPagerDuty>>,
    #[serde(default)]
    pub(crate) slack_configs: Vec<S<RawSlack>>,
    #[serde(default)]
    pub(crate) email_configs: Vec<S<RawEmail>>,
    #[serde(default)]
    pub(crate) webhook_configs: Vec<S<RawWebhook>>,
    #[serde(default)]
    pub(crate) opsgenie_configs: Vec<S<super::opsgenie::RawOpsgenie>>,
    #[serde(default)]
    pub(crate) victorops_configs: Vec<S<super::victorops::RawVictorOps>>,
    #[serde(default)]
    pub(crate) pushover_configs: Vec<S<super::pushover::RawPushover>>,
    #[serde(default)]
    pub(crate) sns_configs: Vec<S<super::sns::RawSns>>,
    #[serde(default)]
    pub(crate) telegram_configs: Vec<S<super::telegram::RawTelegram>>,
    #[serde(default)]
    pub(crate) wechat_configs: Vec<S<super::wechat::RawWechat>>,
    #[serde(default)]
    pub(crate) webex_configs: Vec<S<super::webex::RawWebex>>,
    #[serde(default)]
    pub(crate) discord_configs: Vec<S<super::discord::RawDiscord>>,
    #[serde(default)]
    pub(crate) msteams_configs: Vec<S<super::msteams::RawMsteams>>,
    #[serde(default)]
    pub(crate) msteamsv2_configs: Vec<S<super::msteams::RawMsteams>>,
    #[serde(default)]
    pub(crate) mattermost_configs: Vec<S<super::mattermost::RawMattermost>>,
    #[serde(default)]
    pub(crate) rocketchat_configs: Vec<S<super::rocketchat::RawRocketchat>>,
    #[serde(default)]
    pub(crate) jira_configs: Vec<S<super::jira::RawJira>>,
    #[serde(default)]
    pub(crate) incidentio_configs: Vec<S<super::incidentio::RawIncidentio>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPdLink {
    pub href: Option<String>,
    pub text: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPdImage {
    pub src: Option<String>,
    pub alt: Option<String>,
    pub href: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPagerDuty {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpClientConfig>,
    pub routing_key: Option<String>,
    pub routing_key_file: Option<String>,
    pub service_key: Option<String>,
    pub service_key_file: Option<String>,
    pub url: Option<S<String>>,
    pub client: Option<S<String>>,
    pub client_url: Option<S<String>>,
    pub description: Option<S<String>>,
    pub severity: Option<S<String>>,
    pub class: Option<S<String>>,
    pub component: Option<S<String>>,
    pub group: Option<S<String>>,
    pub source: Option<S<String>>,
    pub details: Option<BTreeMap<String, String>>,
    pub links: Option<Vec<RawPdLink>>,
    pub images: Option<Vec<RawPdImage>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSlackField {
    pub title: Option<String>,
    pub value: Option<String>,
    pub short: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSlackAction {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub text: Option<String>,
    pub url: Option<String>,
    pub style: Option<String>,
    pub name: Option<String>,
    pub value: Option<String>,
    /// Accepted and not rendered (interactive confirmations need a Slack app).
    #[serde(rename = "confirm")]
    pub _confirm: Option<IgnoredAny>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSlack {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpClientConfig>,
    pub api_url: Option<String>,
    pub api_url_file: Option<String>,
    pub channel: Option<S<String>>,
    pub username: Option<S<String>>,
    pub color: Option<S<String>>,
    pub title: Option<S<String>>,
    pub title_link: Option<S<String>>,
    pub pretext: Option<S<String>>,
    pub text: Option<S<String>>,
    pub footer: Option<S<String>>,
    pub fallback: Option<S<String>>,
    pub callback_id: Option<S<String>>,
    pub icon_emoji: Option<S<String>>,
    pub icon_url: Option<S<String>>,
    pub image_url: Option<S<String>>,
    pub thumb_url: Option<S<String>>,
    pub link_names: Option<bool>,
    pub short_fields: Option<bool>,
    pub mrkdwn_in: Option<Vec<String>>,
    pub fields: Option<Vec<RawSlackField>>,
    pub actions: Option<Vec<RawSlackAction>>,
    /// Bot-token delivery to Slack's Web API (Alertmanager 0.27+).
    pub app_token: Option<String>,
    pub app_token_file: Option<String>,
    pub app_url: Option<S<String>>,
    pub update_message: Option<bool>,
    pub message_text: Option<S<String>>,
    pub timeout: Option<S<String>>,
    /// klaxon: Block Kit `blocks`, a list whose strings are templates, or
    /// `default` for klaxon's layout; unset: attachments only.
    pub blocks: Option<S<serde_json::Value>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawEmail {
    pub send_resolved: Option<bool>,
    pub to: Option<S<String>>,
    pub from: Option<S<String>>,
    pub hello: Option<String>,
    pub smarthost: Option<S<String>>,
    pub auth_username: Option<String>,
    pub auth_password: Option<String>,
    pub auth_password_file: Option<String>,
    pub auth_secret: Option<S<String>>,
    pub auth_secret_file: Option<S<String>>,
    pub auth_identity: Option<String>,
    pub headers: Option<BTreeMap<String, String>>,
    pub html: Option<S<String>>,
    pub text: Option<S<String>>,
    pub require_tls: Option<bool>,
    pub tls_config: Option<S<RawTlsConfig>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawWebhook {
    pub send_resolved: Option<bool>,
    pub http_config: Option<RawHttpClientConfig>,
    pub url: Option<S<String>>,
    pub url_file: Option<String>,
    pub max_alerts: Option<u64>,
    /// Per-attempt timeout (Alertmanager 0.28+).
    pub timeout: Option<S<String>>,
    /// A custom body: any YAML whose strings are templates (0.32+).
    pub payload: Option<S<serde_json::Value>>,
}

/// Slack's Web API method that posts a message (the bot-token default).
pub const SLACK_POST_MESSAGE: &str = "https://slack.com/api/chat.postMessage";

/// Resolution context shared by all receivers of one file.
pub(super) struct Ctx<'a> {
    pub global: &'a GlobalConfig,
    pub dir: Option<&'a Path>,
    /// Only parses: checks template syntax at load, not at the first page.
    templates: TemplateSet,
}

impl Ctx<'_> {
    pub fn path(&self, p: &str) -> PathBuf {
        PathBuf::from(join_dir(self.dir, p))
    }

    /// A template field: the user's text (checked) or the default.
    pub fn tmpl(
        &self,
        v: &Option<S<String>>,
        default: &str,
        field: &str,
        sink: &mut Sink,
    ) -> String {
        match v {
            Some(s) => {
                if let Err(e) = self.templates.parse(field, &s.value) {
                    sink.push(Pos::of(s), format!("{field}: {e}"));
                }
                s.value.clone()
            }
            None => default.to_string(),
        }
    }

    /// Checks the template syntax of every string in a structured field
    /// (webhook `payload`, Slack `blocks`).
    pub fn check_value(&self, v: &serde_json::Value, field: &str, pos: Pos, sink: &mut Sink) {
        match v {
            serde_json::Value::String(s) => {
                if let Err(e) = self.templates.parse(field, s) {
                    sink.push(pos, format!("{field}: {e}"));
                }
            }
            serde_json::Value::Array(a) => {
                a.iter().for_each(|x| self.check_value(x, field, pos, sink))
            }
            serde_json::Value::Object(m) => m
                .values()
                .for_each(|x| self.check_value(x, field, pos, sink)),
            _ => {}
        }
    }

    /// A `global:` key of an integration (`opsgenie_api_url`, ...).
    pub fn global_str(&self, key: &str) -> Option<&str> {
        self.global.other.get(key).map(String::as_str)
    }

    /// A secret set on the integration (`what` / `what_file`, at most
    /// one) or else inherited from `global.<gkey>` / `global.<gkey>_file`.
    #[allow(clippy::too_many_arguments)]
    pub fn secret_or_global(
        &self,
        inline: &Option<String>,
        file: &Option<String>,
        what: &str,
        gkey: &str,
        pos: Pos,
        sink: &mut Sink,
    ) -> Option<SecretSource> {
        if inline.is_some() && file.is_some() {
            sink.push(
                pos,
                format!("at most one of {what} & {what}_file must be configured"),
            );
            return None;
        }
        if let Some(s) = secret(inline, file, what, pos, self, sink) {
            return Some(s);
        }
        if let Some(v) = self.global_str(gkey).filter(|v| !v.is_empty()) {
            return Some(SecretSource::Inline(Secret::new(v)));
        }
        self.global_str(&format!("{gkey}_file"))
            .filter(|v| !v.is_empty())
            .map(|f| SecretSource::File(f.into()))
    }

    /// A URL field, else `global.<gkey>`, else Alertmanager's default.
    pub fn url_or_global(
        &self,
        v: &Option<S<String>>,
        gkey: &str,
        default: &str,
        sink: &mut Sink,
    ) -> String {
        match v {
            Some(u) => {
                check_url(u, u_field(gkey), sink);
                u.value.clone()
            }
            None => self
                .global_str(gkey)
                .filter(|v| !v.is_empty())
                .unwrap_or(default)
                .to_string(),
        }
    }
}

/// The integration field a global URL key stands for (`api_url`, ...).
fn u_field(gkey: &str) -> &str {
    if gkey.ends_with("webhook_url") {
        "webhook_url"
    } else {
        "api_url"
    }
}

/// Resolves every receiver; `file` is the config file's name for errors and
/// `dir` its directory for relative `*_file` paths. Names must be unique.
pub fn resolve_receivers(
    raw: &[S<RawReceiver>],
    global: &GlobalConfig,
    file: &str,
    dir: Option<&Path>,
) -> Result<Vec<Receiver>, ConfigErrors> {
    let mut sink = Sink::new(file);
    let ctx = Ctx {
        global,
        dir,
        templates: TemplateSet::new(),
    };
    let mut out: Vec<Receiver> = Vec::with_capacity(raw.len());
    for r in raw {
        let pos = Pos::of(r);
        if r.value.name.is_empty() {
            sink.push(pos, "missing name in receiver");
        } else if out.iter().any(|o| o.name == r.value.name) {
            sink.push(
                pos,
                format!("notification config name {:?} is not unique", r.value.name),
            );
        }
        out.push(r.value.resolve_at(pos, &ctx, &mut sink));
    }
    sink.into_result(out)
}

impl RawReceiver {
    /// Resolves this receiver alone (positions relative to `file`).
    pub fn resolve(
        &self,
        global: &GlobalConfig,
        file: &str,
        dir: Option<&Path>,
    ) -> Result<Receiver, ConfigErrors> {
        let mut sink = Sink::new(file);
        let ctx = Ctx {
            global,
            dir,
            templates: TemplateSet::new(),
        };
        let r = self.resolve_at(Pos::UNKNOWN, &ctx, &mut sink);
        sink.into_result(r)
    }

    fn resolve_at(&self, pos: Pos, ctx: &Ctx<'_>, sink: &mut Sink) -> Receiver {
        let _ = pos;
        let mut integrations = Vec::new();
        for c in &self.pagerduty_configs {
            if let Some(i) = pagerduty(c, ctx, sink) {
                integrations.push(Integration::PagerDuty(i));
            }
        }
        for c in &self.slack_configs {
            if let Some(i) = slack(c, ctx, sink) {
                integrations.push(Integration::Slack(i));
            }
        }
        for c in &self.email_configs {
            if let Some(i) = email(c, ctx, sink) {
                integrations.push(Integration::Email(i));
            }
        }
        for c in &self.webhook_configs {
            if let Some(i) = webhook(c, ctx, sink) {
                integrations.push(Integration::Webhook(i));
            }
        }
        macro_rules! more {
            ($field:ident, $module:ident, $variant:ident) => {
                for c in &self.$field {
                    if let Some(i) = super::$module::resolve(c, ctx, sink) {
                        integrations.push(Integration::$variant(i));
                    }
                }
            };
        }
        more!(opsgenie_configs, opsgenie, Opsgenie);
        more!(victorops_configs, victorops, VictorOps);
        more!(pushover_configs, pushover, Pushover);
        more!(telegram_configs, telegram, Telegram);
        more!(wechat_configs, wechat, Wechat);
        more!(webex_configs, webex, Webex);
        more!(discord_configs, discord, Discord);
        more!(sns_configs, sns, Sns);
        more!(mattermost_configs, mattermost, Mattermost);
        more!(rocketchat_configs, rocketchat, Rocketchat);
        more!(incidentio_configs, incidentio, Incidentio);
        more!(jira_configs, jira, Jira);
        for (v2, list) in [
            (false, &self.msteams_configs),
            (true, &self.msteamsv2_configs),
        ] {
            for c in list {
                if let Some(i) = super::msteams::resolve(c, v2, ctx, sink) {
                    integrations.push(Integration::Msteams(i));
                }
            }
        }
        Receiver {
            name: self.name.clone(),
            integrations,
        }
    }
}

pub(super) fn secret(
    inline: &Option<String>,
    file: &Option<String>,
    what: &str,
    pos: Pos,
    ctx: &Ctx<'_>,
    sink: &mut Sink,
) -> Option<SecretSource> {
    match (inline, file) {
        (Some(_), Some(_)) => {
            sink.push(
                pos,
                format!("at most one of {what} & {what}_file must be configured"),
            );
            None
        }
        (Some(s), None) => Some(SecretSource::Inline(Secret::new(s.clone()))),
        (None, Some(f)) => Some(SecretSource::File(ctx.path(f))),
        (None, None) => None,
    }
}

/// `tls_config`, resolved as everywhere else in klaxon, minus
/// `server_name`, which the notifier's clients do not support yet.
fn tls(raw: &Option<S<RawTlsConfig>>, ctx: &Ctx<'_>, sink: &mut Sink) -> TlsConfig {
    let Some(t) = raw else {
        return TlsConfig::default();
    };
    refuse_server_name(t, sink);
    let mut tls = resolve_tls(t, ctx.dir, sink);
    tls.server_name = None;
    tls
}

fn refuse_server_name(t: &S<RawTlsConfig>, sink: &mut Sink) {
    if t.value
        .server_name
        .as_deref()
        .is_some_and(|s| !s.is_empty())
    {
        sink.push(
            Pos::of(t),
            "tls_config.server_name is not supported yet (see docs/compatibility.md)",
        );
    }
}

/// `http_config.proxy_url`, when set.
pub(super) fn proxy(raw: &Option<RawHttpClientConfig>) -> Option<String> {
    raw.as_ref()
        .and_then(|h| h.proxy_url.as_ref())
        .map(|p| p.value.clone())
        .filter(|p| !p.is_empty())
}

/// `http_config`, resolved with the scrape configs' rules; the global
/// one when absent.
pub(super) fn http(
    raw: &Option<RawHttpClientConfig>,
    ctx: &Ctx<'_>,
    sink: &mut Sink,
) -> HttpClientConfig {
    let Some(h) = raw else {
        return ctx.global.http_config.clone();
    };
    if let Some(o) = &h.oauth2 {
        sink.push(Pos::of(o), "http_config.oauth2 is not supported yet");
    }
    if let Some(t) = &h.tls_config {
        refuse_server_name(t, sink);
    }
    let mut c = resolve_http_fields(h.fields(), ctx.dir, sink);
    c.tls_config.server_name = None;
    c
}

pub(super) fn check_url(s: &S<String>, field: &str, sink: &mut Sink) {
    let ok = s.value.starts_with("http://") || s.value.starts_with("https://");
    if !ok {
        // The URL itself may hold a token: name the field, not the value.
        sink.push(
            Pos::of(s),
            format!("{field}: unsupported scheme or invalid URL"),
        );
    }
}

fn pagerduty(c: &S<RawPagerDuty>, ctx: &Ctx<'_>, sink: &mut Sink) -> Option<PagerDutyConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    let routing_key = secret(
        &r.routing_key,
        &r.routing_key_file,
        "routing_key",
        pos,
        ctx,
        sink,
    );
    let service_key = secret(
        &r.service_key,
        &r.service_key_file,
        "service_key",
        pos,
        ctx,
        sink,
    );
    if routing_key.is_none() && service_key.is_none() {
        sink.push(pos, "missing service or routing key in PagerDuty config");
        return None;
    }
    if let Some(u) = &r.url {
        check_url(u, "url", sink);
    }
    let t = |v: &Option<S<String>>, d: &str, f: &str, sink: &mut Sink| ctx.tmpl(v, d, f, sink);
    // The user's details plus the defaults they do not override, as
    // Alertmanager merges them.
    let mut details: BTreeMap<String, String> = [
        (
            "firing",
            "{{ template \"pagerduty.default.instances\" .Alerts.Firing }}",
        ),
        (
            "resolved",
            "{{ template \"pagerduty.default.instances\" .Alerts.Resolved }}",
        ),
        ("num_firing", "{{ .Alerts.Firing | len }}"),
        ("num_resolved", "{{ .Alerts.Resolved | len }}"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(d) = &r.details {
        details.extend(d.clone());
    }
    Some(PagerDutyConfig {
        send_resolved: r.send_resolved.unwrap_or(true),
        routing_key,
        service_key,
        url: match &r.url {
            Some(u) => u.value.clone(),
            None if r.service_key.is_some() || r.service_key_file.is_some() => {
                "https://events.pagerduty.com/generic/2010-04-15/create_event.json".into()
            }
            None => ctx.global.pagerduty_url.clone(),
        },
        client: t(
            &r.client,
            "{{ template \"pagerduty.default.client\" . }}",
            "client",
            sink,
        ),
        client_url: t(
            &r.client_url,
            "{{ template \"pagerduty.default.clientURL\" . }}",
            "client_url",
            sink,
        ),
        description: t(
            &r.description,
            "{{ template \"pagerduty.default.description\" .}}",
            "description",
            sink,
        ),
        severity: t(
            &r.severity,
            "{{ template \"pagerduty.default.severity\" . }}",
            "severity",
            sink,
        ),
        class: t(&r.class, "", "class", sink),
        component: t(&r.component, "", "component", sink),
        group: t(&r.group, "", "group", sink),
        source: t(&r.source, "", "source", sink),
        details,
        links: r
            .links
            .iter()
            .flatten()
            .map(|l| PagerDutyLink {
                href: l.href.clone().unwrap_or_default(),
                text: l.text.clone().unwrap_or_default(),
            })
            .collect(),
        images: r
            .images
            .iter()
            .flatten()
            .map(|i| PagerDutyImage {
                src: i.src.clone().unwrap_or_default(),
                alt: i.alt.clone().unwrap_or_default(),
                href: i.href.clone().unwrap_or_default(),
            })
            .collect(),
        http_config: http(&r.http_config, ctx, sink),
        proxy_url: proxy(&r.http_config),
    })
}

fn slack(c: &S<RawSlack>, ctx: &Ctx<'_>, sink: &mut Sink) -> Option<SlackConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    let has_url = r.api_url.is_some() || r.api_url_file.is_some();
    let has_token = r.app_token.is_some() || r.app_token_file.is_some();
    if has_url && has_token {
        sink.push(
            pos,
            "at most one of api_url/api_url_file & app_token/app_token_file must be configured",
        );
        return None;
    }
    let has_auth = r
        .http_config
        .as_ref()
        .is_some_and(|h| h.authorization.is_some());
    let mut app_token = secret(&r.app_token, &r.app_token_file, "app_token", pos, ctx, sink);
    if app_token.is_none() && !has_url && !has_auth {
        app_token = match (
            ctx.global_str("slack_app_token"),
            ctx.global_str("slack_app_token_file"),
        ) {
            (Some(t), _) => Some(SecretSource::Inline(Secret::new(t))),
            (None, Some(f)) => Some(SecretSource::File(f.into())),
            (None, None) => None,
        };
    }
    let app_url = match &r.app_url {
        Some(u) => {
            check_url(u, "app_url", sink);
            u.value.clone()
        }
        None => ctx
            .global_str("slack_app_url")
            .unwrap_or(SLACK_POST_MESSAGE)
            .to_string(),
    };
    let api_url = if app_token.is_some() {
        SecretSource::Inline(Secret::new(app_url))
    } else {
        match secret(&r.api_url, &r.api_url_file, "api_url", pos, ctx, sink) {
            Some(u) => u,
            None => match (&ctx.global.slack_api_url, &ctx.global.slack_api_url_file) {
                (Some(u), _) => SecretSource::Inline(u.clone()),
                (None, Some(f)) => SecretSource::File(f.into()),
                (None, None) => {
                    sink.push(
                        pos,
                        "no Slack API URL nor App token set either inline or in a file",
                    );
                    return None;
                }
            },
        }
    };
    let update_message = r.update_message.unwrap_or(false);
    let web_api = app_token.is_some()
        || matches!(&api_url, SecretSource::Inline(u) if u.expose() == SLACK_POST_MESSAGE);
    if update_message && !web_api {
        sink.push(
            pos,
            "update_message can only be used with bot tokens. api_url must be set to https://slack.com/api/chat.postMessage",
        );
    }
    let blocks = match &r.blocks {
        None => None,
        Some(b) => match &b.value {
            serde_json::Value::String(s) if s == "default" => Some(SlackBlocks::Default),
            serde_json::Value::Array(_) => {
                ctx.check_value(&b.value, "blocks", Pos::of(b), sink);
                Some(SlackBlocks::Templated(b.value.clone()))
            }
            _ => {
                sink.push(
                    Pos::of(b),
                    "blocks: must be a list of Block Kit blocks or \"default\"",
                );
                None
            }
        },
    };
    let t = |v: &Option<S<String>>, d: &str, f: &str, sink: &mut Sink| ctx.tmpl(v, d, f, sink);
    Some(SlackConfig {
        send_resolved: r.send_resolved.unwrap_or(false),
        api_url,
        app_token,
        update_message,
        message_text: t(&r.message_text, "", "message_text", sink),
        timeout: timeout(&r.timeout, sink),
        blocks,
        channel: t(&r.channel, "", "channel", sink),
        username: t(
            &r.username,
            "{{ template \"slack.default.username\" . }}",
            "username",
            sink,
        ),
        color: t(
            &r.color,
            "{{ if eq .Status \"firing\" }}danger{{ else }}good{{ end }}",
            "color",
            sink,
        ),
        title: t(
            &r.title,
            "{{ template \"slack.default.title\" . }}",
            "title",
            sink,
        ),
        title_link: t(
            &r.title_link,
            "{{ template \"slack.default.titlelink\" . }}",
            "title_link",
            sink,
        ),
        pretext: t(
            &r.pretext,
            "{{ template \"slack.default.pretext\" . }}",
            "pretext",
            sink,
        ),
        text: t(
            &r.text,
            "{{ template \"slack.default.text\" . }}",
            "text",
            sink,
        ),
        footer: t(
            &r.footer,
            "{{ template \"slack.default.footer\" . }}",
            "footer",
            sink,
        ),
        fallback: t(
            &r.fallback,
            "{{ template \"slack.default.fallback\" . }}",
            "fallback",
            sink,
        ),
        callback_id: t(
            &r.callback_id,
            "{{ template \"slack.default.callbackid\" . }}",
            "callback_id",
            sink,
        ),
        icon_emoji: t(
            &r.icon_emoji,
            "{{ template \"slack.default.iconemoji\" . }}",
            "icon_emoji",
            sink,
        ),
        icon_url: t(
            &r.icon_url,
            "{{ template \"slack.default.iconurl\" . }}",
            "icon_url",
            sink,
        ),
        image_url: t(&r.image_url, "", "image_url", sink),
        thumb_url: t(&r.thumb_url, "", "thumb_url", sink),
        link_names: r.link_names.unwrap_or(false),
        short_fields: r.short_fields.unwrap_or(false),
        mrkdwn_in: r
            .mrkdwn_in
            .clone()
            .unwrap_or_else(|| vec!["fallback".into(), "pretext".into(), "text".into()]),
        fields: r
            .fields
            .iter()
            .flatten()
            .map(|f| SlackField {
                title: f.title.clone().unwrap_or_default(),
                value: f.value.clone().unwrap_or_default(),
                short: f.short,
            })
            .collect(),
        actions: r
            .actions
            .iter()
            .flatten()
            .map(|a| SlackAction {
                kind: a.kind.clone().unwrap_or_else(|| "button".into()),
                text: a.text.clone().unwrap_or_default(),
                url: a.url.clone().unwrap_or_default(),
                style: a.style.clone().unwrap_or_default(),
                name: a.name.clone().unwrap_or_default(),
                value: a.value.clone().unwrap_or_default(),
            })
            .collect(),
        http_config: http(&r.http_config, ctx, sink),
        proxy_url: proxy(&r.http_config),
    })
}

fn email(c: &S<RawEmail>, ctx: &Ctx<'_>, sink: &mut Sink) -> Option<EmailConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    let g = ctx.global;
    let Some(to) = &r.to else {
        sink.push(pos, "missing to address in email config");
        return None;
    };
    if r.auth_secret.is_some() && r.auth_secret_file.is_some() {
        sink.push(
            pos,
            "at most one of auth_secret & auth_secret_file must be configured",
        );
    }
    // CRAM-MD5 is not implemented: a secret is accepted so the file loads
    // as in Alertmanager, and a send that would need it fails with that
    // reason (PLAIN/LOGIN with a password still work).
    let cram_md5 = r.auth_secret.is_some()
        || r.auth_secret_file.is_some()
        || g.other.contains_key("smtp_auth_secret")
        || g.other.contains_key("smtp_auth_secret_file");
    let from = match (&r.from, &g.smtp_from) {
        (Some(f), _) => ctx.tmpl(&Some(f.clone_spanned()), "", "from", sink),
        (None, Some(f)) => f.clone(),
        (None, None) => {
            sink.push(pos, "no global SMTP from set");
            return None;
        }
    };
    let smarthost = match (&r.smarthost, &g.smtp_smarthost) {
        (Some(s), _) => {
            if s.value
                .rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_err())
            {
                sink.push(
                    Pos::of(s),
                    format!("smarthost {:?}: address must be host:port", s.value),
                );
            }
            s.value.clone()
        }
        (None, Some(s)) => s.clone(),
        (None, None) => {
            sink.push(pos, "no global SMTP smarthost set");
            return None;
        }
    };
    let mut password = secret(
        &r.auth_password,
        &r.auth_password_file,
        "auth_password",
        pos,
        ctx,
        sink,
    );
    if password.is_none() {
        password = match (&g.smtp_auth_password, &g.smtp_auth_password_file) {
            (Some(p), _) => Some(SecretSource::Inline(p.clone())),
            (None, Some(f)) => Some(SecretSource::File(f.into())),
            (None, None) => None,
        };
    }
    let mut headers = r.headers.clone().unwrap_or_default();
    // Header names are case-insensitive; Alertmanager title-cases them.
    headers = headers
        .into_iter()
        .map(|(k, v)| (title_case_header(&k), v))
        .collect();
    headers
        .entry("Subject".into())
        .or_insert_with(|| "{{ template \"email.default.subject\" . }}".into());
    headers
        .entry("To".into())
        .or_insert_with(|| to.value.clone());
    headers.entry("From".into()).or_insert_with(|| from.clone());
    Some(EmailConfig {
        send_resolved: r.send_resolved.unwrap_or(false),
        to: ctx.tmpl(&Some(to.clone_spanned()), "", "to", sink),
        from,
        hello: r.hello.clone().unwrap_or_else(|| g.smtp_hello.clone()),
        smarthost,
        auth_username: r
            .auth_username
            .clone()
            .or_else(|| g.smtp_auth_username.clone()),
        auth_password: password,
        auth_identity: r
            .auth_identity
            .clone()
            .or_else(|| g.smtp_auth_identity.clone()),
        require_tls: r.require_tls.unwrap_or(g.smtp_require_tls),
        auth_secret: cram_md5,
        tls_config: tls(&r.tls_config, ctx, sink),
        html: ctx.tmpl(
            &r.html,
            "{{ template \"email.default.html\" . }}",
            "html",
            sink,
        ),
        text: ctx.tmpl(
            &r.text,
            "{{ template \"email.default.text\" . }}",
            "text",
            sink,
        ),
        headers,
    })
}

fn title_case_header(k: &str) -> String {
    k.split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().collect::<String>() + &c.as_str().to_lowercase(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join("-")
}

fn webhook(c: &S<RawWebhook>, ctx: &Ctx<'_>, sink: &mut Sink) -> Option<WebhookConfig> {
    let pos = Pos::of(c);
    let r = &c.value;
    let url = url_secret(&r.url, &r.url_file, "url", pos, ctx, sink)?;
    Some(WebhookConfig {
        send_resolved: r.send_resolved.unwrap_or(true),
        url,
        max_alerts: r.max_alerts.unwrap_or(0),
        timeout: timeout(&r.timeout, sink),
        payload: r.payload.as_ref().map(|p| {
            ctx.check_value(&p.value, "payload", Pos::of(p), sink);
            p.value.clone()
        }),
        http_config: http(&r.http_config, ctx, sink),
        proxy_url: proxy(&r.http_config),
    })
}

/// An integration's `timeout` (0 or absent: the outbox's).
pub(super) fn timeout(v: &Option<S<String>>, sink: &mut Sink) -> Option<std::time::Duration> {
    let v = v.as_ref()?;
    match crate::config::parse_duration(&v.value) {
        Ok(d) if d.is_zero() => None,
        Ok(d) => Some(d),
        Err(e) => {
            sink.push(Pos::of(v), format!("timeout: {e}"));
            None
        }
    }
}

/// A URL that is a secret (webhook URLs carry their token): `field` or
/// `field_file`, exactly one; the inline one must be http(s).
pub(super) fn url_secret(
    inline: &Option<S<String>>,
    file: &Option<String>,
    field: &str,
    pos: Pos,
    ctx: &Ctx<'_>,
    sink: &mut Sink,
) -> Option<SecretSource> {
    if inline.is_none() && file.is_none() {
        sink.push(
            pos,
            format!("one of {field} or {field}_file must be configured"),
        );
        return None;
    }
    if let (Some(u), None) = (inline, file) {
        check_url(u, field, sink);
    }
    let inline = inline.as_ref().map(|u| u.value.clone());
    secret(&inline, file, field, pos, ctx, sink)
}

/// `Spanned` is not `Clone` for every `T` in all versions; this keeps the
/// position when a field is re-checked.
trait CloneSpanned {
    fn clone_spanned(&self) -> Self;
}

impl CloneSpanned for S<String> {
    fn clone_spanned(&self) -> Self {
        S::new(self.value.clone(), self.referenced, self.defined)
    }
}
