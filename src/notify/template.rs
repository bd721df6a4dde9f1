//! Notification templates: Alertmanager's data model (`.Receiver`,
//! `.Status`, `.Alerts`, `.GroupLabels`, ...) built from a
//! [`Notification`], rendered with the Go-template engine
//! (`crate::template`) extended with `define`/`template`, and klaxon's own
//! default templates under Alertmanager's names.
//!
//! Why our own defaults: every message must carry what a responder needs
//! first — the runbook link, the source graph and a silence link — which
//! Alertmanager's defaults do not.

use super::{Alert, Notification};
use crate::model::{Labels, Timestamp};
use crate::template::{Struct, TemplateError, TemplateSet, Value};
use std::rc::Rc;

/// klaxon's default templates, loaded before the user's `templates:` files
/// (which may redefine any of them).
pub const DEFAULT_TEMPLATES: &str = include_str!("default.tmpl");

/// The default set plus the given `templates:` files (already read:
/// `(file name, text)`), later files overriding earlier definitions.
pub fn template_set(files: &[(String, String)]) -> Result<TemplateSet, TemplateError> {
    let mut set = TemplateSet::new();
    set.add("default.tmpl", DEFAULT_TEMPLATES)?;
    for (name, text) in files {
        set.add(name, text)?;
    }
    Ok(set)
}

/// The default set plus every file matching the `templates:` globs
/// (relative ones already joined to the config file's directory), in
/// glob order as Alertmanager reads them. A glob matching nothing is not
/// an error (Alertmanager's behaviour); an unreadable or invalid file is,
/// naming the file.
pub fn load_templates(globs: &[String]) -> Result<TemplateSet, TemplatesError> {
    let mut files = Vec::new();
    for g in globs {
        let paths = glob::glob(g).map_err(|source| TemplatesError::Pattern {
            pattern: g.clone(),
            source,
        })?;
        for p in paths {
            let p = p?;
            let text = std::fs::read_to_string(&p).map_err(|source| TemplatesError::Read {
                path: p.display().to_string(),
                source,
            })?;
            files.push((p.display().to_string(), text));
        }
    }
    Ok(template_set(&files)?)
}

/// Why the notification templates did not load.
#[derive(Debug, thiserror::Error)]
pub enum TemplatesError {
    #[error("templates: invalid pattern {pattern:?}: {source}")]
    Pattern {
        pattern: String,
        source: glob::PatternError,
    },
    #[error("templates: {0}")]
    Glob(#[from] glob::GlobError),
    #[error("templates: reading {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("templates: {0}")]
    Parse(#[from] TemplateError),
}

/// The link that opens klaxon's UI on a new silence pre-filled with
/// `labels` as equality matchers. The one place this URL is built.
pub fn silence_url(external_url: &str, labels: &Labels) -> String {
    let matchers: Vec<String> = labels
        .iter()
        .map(|l| format!("{}={:?}", l.name, l.value))
        .collect();
    let filter = format!("{{{}}}", matchers.join(", "));
    format!(
        "{}/#/silences?matchers={}",
        external_url.trim_end_matches('/'),
        crate::model::url::query_escape(&filter).replace('+', "%20")
    )
}

/// `firing` or `resolved` at `now`, as Alertmanager's `Alert.Status()`.
pub fn alert_status(a: &Alert, now: Timestamp) -> &'static str {
    if a.resolved_at(now) {
        "resolved"
    } else {
        "firing"
    }
}

/// The group's status: firing while any alert fires.
pub fn group_status(n: &Notification) -> &'static str {
    if n.alerts.iter().any(|a| !a.resolved_at(n.created_at)) {
        "firing"
    } else {
        "resolved"
    }
}

/// Label pairs equal in every label set (Alertmanager's CommonLabels).
pub fn common(sets: &[&Labels]) -> Labels {
    let Some(first) = sets.first() else {
        return Labels::empty();
    };
    let mut b = first.builder();
    for l in first.iter() {
        if sets
            .iter()
            .any(|s| s.get(&l.name) != Some(l.value.as_str()))
        {
            b.del(&l.name);
        }
    }
    b.build()
}

/// Go's `regexp.QuoteMeta`, which Alertmanager applies to `.Receiver`.
pub fn quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Alertmanager's fingerprint text: 16 hex digits.
pub fn fingerprint_hex(a: &Alert) -> String {
    format!("{:016x}", a.fingerprint())
}

fn kv(l: &Labels) -> Value {
    Value::Kv(Rc::new(l.clone()))
}

fn time_ns(ms: Timestamp) -> Value {
    Value::Time(i128::from(ms) * 1_000_000)
}

/// Go's zero `time.Time`, which is what an unset `EndsAt` is.
const GO_ZERO_TIME_NS: i128 = -62_135_596_800_000_000_000;

fn alert_value(a: &Alert, n: &Notification) -> Value {
    Value::Struct(Rc::new(Struct {
        type_name: "template.Alert",
        fields: vec![
            ("Status", Value::Str(alert_status(a, n.created_at).into())),
            ("Labels", kv(&a.labels)),
            ("Annotations", kv(&a.annotations)),
            ("StartsAt", time_ns(a.starts_at)),
            (
                "EndsAt",
                a.ends_at.map_or(Value::Time(GO_ZERO_TIME_NS), time_ns),
            ),
            ("GeneratorURL", Value::Str(a.generator_url.clone())),
            ("Fingerprint", Value::Str(fingerprint_hex(a))),
            (
                "SilenceURL",
                Value::Str(silence_url(&n.external_url, &a.labels)),
            ),
        ],
    }))
}

/// Alertmanager's `template.Data` for a notification, plus klaxon's
/// `SilenceURL` (silence of the group's common labels).
pub fn data(n: &Notification) -> Value {
    let labels: Vec<&Labels> = n.alerts.iter().map(|a| &a.labels).collect();
    let anns: Vec<&Labels> = n.alerts.iter().map(|a| &a.annotations).collect();
    let common_labels = common(&labels);
    Value::Struct(Rc::new(Struct {
        type_name: "template.Data",
        fields: vec![
            ("Receiver", Value::Str(quote_meta(&n.receiver))),
            ("Status", Value::Str(group_status(n).into())),
            (
                "Alerts",
                Value::Alerts(Rc::new(
                    n.alerts.iter().map(|a| alert_value(a, n)).collect(),
                )),
            ),
            ("GroupLabels", kv(&n.group_labels)),
            ("CommonLabels", kv(&common_labels)),
            ("CommonAnnotations", kv(&common(&anns))),
            ("ExternalURL", Value::Str(n.external_url.clone())),
            (
                "SilenceURL",
                Value::Str(silence_url(&n.external_url, &common_labels)),
            ),
        ],
    }))
}

/// Renders config field `text` for `n`; errors name the field.
pub fn render(
    set: &TemplateSet,
    field: &str,
    text: &str,
    data: &Value,
    html: bool,
) -> Result<String, FieldError> {
    set.render(text, data, html).map_err(|source| FieldError {
        field: field.to_string(),
        source,
    })
}

/// A config field's template that failed to render.
#[derive(Debug, thiserror::Error)]
#[error("rendering {field}: {source}")]
pub struct FieldError {
    pub field: String,
    pub source: TemplateError,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(name: &str, runbook: &str, ends: Option<i64>) -> Alert {
        Alert {
            labels: Labels::from_pairs([
                ("alertname", name),
                ("severity", "critical"),
                ("instance", "a:1"),
            ]),
            annotations: Labels::from_pairs([
                ("summary", "disk full"),
                ("description", "the disk is full"),
                ("runbook_url", runbook),
            ]),
            starts_at: 1_700_000_000_000,
            ends_at: ends,
            generator_url: "http://prom/graph?g0.expr=up".into(),
            request_id: None,
            updated_at: 0,
        }
    }

    fn notif(alerts: Vec<Alert>) -> Notification {
        Notification {
            receiver: "team.a".into(),
            group_key: "{}:{alertname=\"DiskFull\"}".into(),
            group_labels: Labels::from_pairs([("alertname", "DiskFull")]),
            alerts,
            external_url: "http://klaxon:9090".into(),
            created_at: 1_700_000_100_000,
        }
    }

    #[test]
    fn data_model_fields_and_methods() {
        let n = notif(vec![
            alert("DiskFull", "http://rb/1", None),
            alert("DiskFull", "http://rb/1", Some(1_700_000_050_000)),
        ]);
        let set = template_set(&[]).unwrap();
        let d = data(&n);
        let r = |t: &str| set.render(t, &d, false).unwrap();
        assert_eq!(r("{{ .Receiver }}"), "team\\.a");
        assert_eq!(r("{{ .Status }}"), "firing");
        assert_eq!(
            r("{{ len .Alerts.Firing }}/{{ len .Alerts.Resolved }}"),
            "1/1"
        );
        assert_eq!(r("{{ .CommonLabels.severity }}"), "critical");
        assert_eq!(
            r("{{ range .CommonLabels.SortedPairs }}{{ .Name }}={{ .Value }};{{ end }}"),
            "alertname=DiskFull;instance=a:1;severity=critical;"
        );
        assert_eq!(
            r("{{ .CommonLabels.Names | join \",\" }}"),
            "alertname,instance,severity"
        );
        assert_eq!(
            r("{{ (.CommonLabels.Remove .GroupLabels.Names).Values | join \" \" }}"),
            "a:1 critical"
        );
        assert_eq!(r("{{ join \"-\" (stringSlice \"a\" \"b\") }}"), "a-b");
        assert_eq!(
            r("{{ toUpper .Status }} {{ trimSpace \"  x \" }}"),
            "FIRING x"
        );
        assert_eq!(r("{{ (index .Alerts 0).Fingerprint | len }}"), "16");
        assert_eq!(r("{{ .ExternalURL }}"), "http://klaxon:9090");
        assert_eq!(
            r("{{ (index .Alerts 0).StartsAt.Format \"2006-01-02 15:04:05 MST\" }}"),
            "2023-11-14 22:13:20 UTC"
        );
        assert_eq!(r("{{ (index .Alerts 1).EndsAt.Unix }}"), "1700000050");
        assert_eq!(
            r("{{ define \"x\" }}[{{ . }}]{{ end }}{{ template \"x\" .Status }}"),
            "[firing]"
        );
    }

    #[test]
    fn html_mode_escapes_values_not_safe_html() {
        let n = notif(vec![alert("A<b>", "http://rb/?a=1&b=2", None)]);
        let set = template_set(&[]).unwrap();
        let d = data(&n);
        let out = set
            .render(
                "{{ .CommonLabels.alertname }}{{ safeHtml \"<i>\" }}",
                &d,
                true,
            )
            .unwrap();
        assert_eq!(out, "A&lt;b&gt;<i>");
    }

    #[test]
    fn defaults_carry_runbook_source_and_silence() {
        let n = notif(vec![alert("DiskFull", "http://rb/disk", None)]);
        let set = template_set(&[]).unwrap();
        let d = data(&n);
        for name in [
            "slack.default.text",
            "email.default.html",
            "email.default.text",
            "pagerduty.default.instances",
            "__text_alert_list",
        ] {
            let t = if name == "pagerduty.default.instances" {
                format!("{{{{ template \"{name}\" .Alerts }}}}")
            } else {
                format!("{{{{ template \"{name}\" . }}}}")
            };
            let out = set.render(&t, &d, name.contains("html")).unwrap();
            assert!(out.contains("http://rb/disk"), "{name}: {out}");
            assert!(out.contains("disk full"), "{name}: {out}");
            assert!(
                out.contains("http://prom/graph?g0.expr=up")
                    || out.contains("http://prom/graph?g0.expr&#61;up"),
                "{name}: {out}"
            );
            assert!(out.contains("/#/silences?matchers="), "{name}: {out}");
        }
        let subj = set
            .render("{{ template \"email.default.subject\" . }}", &d, false)
            .unwrap();
        assert_eq!(subj, "[FIRING:1] DiskFull (a:1 critical)");
        let desc = set
            .render(
                "{{ template \"pagerduty.default.description\" . }}",
                &d,
                false,
            )
            .unwrap();
        assert_eq!(desc, "[FIRING:1] DiskFull (a:1 critical)");
    }

    #[test]
    fn silence_url_is_encoded() {
        let u = silence_url(
            "http://k:9090/",
            &Labels::from_pairs([("alertname", "A B"), ("job", "x")]),
        );
        assert_eq!(
            u,
            "http://k:9090/#/silences?matchers=%7Balertname%3D%22A%20B%22%2C%20job%3D%22x%22%7D"
        );
    }

    #[test]
    fn template_files_load_by_glob_and_errors_name_the_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("a.tmpl"),
            "{{ define \"team.title\" }}T {{ .Status }}{{ end }}",
        )
        .unwrap();
        let glob = format!("{}/*.tmpl", dir.path().display());
        let set = load_templates(std::slice::from_ref(&glob)).unwrap();
        let d = data(&notif(vec![alert("A", "r", None)]));
        assert_eq!(
            set.render("{{ template \"team.title\" . }}", &d, false)
                .unwrap(),
            "T firing"
        );
        assert!(load_templates(&[format!("{}/none-*.tmpl", dir.path().display())]).is_ok());
        std::fs::write(dir.path().join("b.tmpl"), "{{ define \"x\" }}{{ .Status ").unwrap();
        let e = load_templates(&[glob]).unwrap_err();
        assert!(matches!(e, TemplatesError::Parse(_)), "{e:?}");
        assert!(e.to_string().starts_with("templates: "), "{e}");
        assert!(e.to_string().contains("b.tmpl"), "{e}");
    }

    #[test]
    fn user_template_file_overrides_default() {
        let set = template_set(&[(
            "mine.tmpl".into(),
            "{{ define \"slack.default.title\" }}custom {{ .Status }}{{ end }}".into(),
        )])
        .unwrap();
        let d = data(&notif(vec![alert("A", "r", None)]));
        assert_eq!(
            set.render("{{ template \"slack.default.title\" . }}", &d, false)
                .unwrap(),
            "custom firing"
        );
    }
}
