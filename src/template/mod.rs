//! Go templates: the subset of Go's text/template that Prometheus rule
//! files use in labels and annotations, with Prometheus' function map. A
//! stage of its own below `rules` and `notify` (as Prometheus and
//! Alertmanager each have a `template` package): rules expand alert labels
//! and annotations with it, notify renders notifications with it.
//!
//! Output must be byte-identical to Prometheus because users match alerts on
//! rendered labels and read annotations in notifications, so numbers are
//! formatted with Go's `fmt` rules (see `gofmt`) and errors carry Go's
//! `template: NAME:LINE:COL: executing ...` text.

mod exec;
mod funcs;
mod gofmt;
mod lexer;
mod parser;

use crate::model::{Labels, Timestamp};
use std::collections::HashMap;
use thiserror::Error;

pub use exec::{html_escape_into, Struct, Value};
pub use funcs::humanize;

/// One element of a `query` result.
#[derive(Debug, Clone, PartialEq)]
pub struct QuerySample {
    pub labels: Labels,
    pub value: f64,
}

/// Runs a PromQL query at the alert's evaluation time; the error text is
/// what Prometheus would put after `error calling query: `.
pub type QueryFn<'a> = dyn Fn(&str) -> Result<Vec<QuerySample>, String> + 'a;

/// Everything a template can see.
pub struct TemplateContext<'a> {
    /// `$labels` / `.Labels`: the alert's labels (with `__name__` when the
    /// expression kept it, as Prometheus does).
    pub labels: &'a Labels,
    pub external_labels: &'a Labels,
    pub external_url: &'a str,
    pub value: f64,
    /// Evaluation time, for `now`.
    pub now_ms: Timestamp,
    pub query: Option<&'a QueryFn<'a>>,
}

#[derive(Debug, Clone, Error, PartialEq)]
pub enum TemplateError {
    /// Go: `template: NAME:LINE: MSG`.
    #[error("template: {name}:{line}: {msg}")]
    Parse {
        name: String,
        line: usize,
        msg: String,
    },
    /// Go: `template: NAME:LINE:COL: executing "NAME" at <CTX>: MSG`.
    #[error("{}", fmt_exec(.name, .location, .msg))]
    Exec {
        name: String,
        location: Option<(usize, usize, String)>,
        msg: String,
    },
}

fn fmt_exec(name: &str, location: &Option<(usize, usize, String)>, msg: &str) -> String {
    match location {
        None => format!("template: {name}: {msg}"),
        Some((line, col, ctx)) => {
            format!(
                "template: {name}:{line}:{col}: executing {} at <{ctx}>: {msg}",
                gofmt::quote(name)
            )
        }
    }
}

/// The variable definitions Prometheus' alerting rule prepends to every
/// label and annotation template; they shift error columns, so keep them.
const ALERT_DEFS: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$externalURL := .ExternalURL}}{{$value := .Value}}";

/// A template parsed once (at rule load) and executed per alert.
#[derive(Debug, Clone)]
pub struct Template {
    name: String,
    src: String,
    nodes: Vec<parser::Node>,
}

impl Template {
    /// Parses `text` the way Prometheus' alerting rule does: with the
    /// `$labels`, `$externalLabels`, `$externalURL` and `$value` definitions
    /// in front, under the template name `name` (Prometheus uses
    /// `__alert_<alertname>`).
    pub fn parse(name: &str, text: &str) -> Result<Template, TemplateError> {
        let src = format!("{ALERT_DEFS}{text}");
        let (toks, lex_err) = lexer::lex_lazy(name, &src);
        let parsed = parser::Parser::new(name, toks, &funcs::is_defined).parse_reporting_end();
        let nodes = match (parsed, lex_err) {
            (Ok(n), None) => n,
            // The parser stopped before the tokens ran out: its error comes
            // first, as with Go's lazily running lexer.
            (Err((e, false)), _) => return Err(e),
            (_, Some(e)) => return Err(e),
            (Err((e, true)), None) => return Err(e),
        };
        Ok(Template {
            name: name.to_string(),
            src,
            nodes,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renders the template.
    pub fn execute(&self, ctx: &TemplateContext<'_>) -> Result<String, TemplateError> {
        let mut st = exec::State::new(ctx, &self.name, &self.src);
        st.run(&self.nodes)?;
        Ok(st.out)
    }
}

/// Alertmanager's notification templates: the same engine with `define` /
/// `template`, Alertmanager's function map and data model ([`Value::Struct`],
/// [`Value::Kv`], [`Value::Alerts`]). Holds the named templates of the
/// default set and the `templates:` files; later definitions of a name
/// replace earlier ones, as in Go.
#[derive(Debug, Clone, Default)]
pub struct TemplateSet {
    defs: HashMap<String, Vec<parser::Node>>,
    /// Parsed config field texts: the same few texts render for every
    /// notification, and parsing dominated rendering. Parsing does not
    /// depend on `defs`, so entries stay valid when definitions change.
    parsed: std::sync::Arc<parking_lot::Mutex<HashMap<String, std::sync::Arc<NotifyTemplate>>>>,
}

/// Bound on cached field texts (render() also takes ad-hoc texts).
const PARSED_CACHE_MAX: usize = 4096;

/// A notification template parsed against a [`TemplateSet`].
#[derive(Debug, Clone)]
pub struct NotifyTemplate {
    name: String,
    src: String,
    nodes: Vec<parser::Node>,
    local: HashMap<String, Vec<parser::Node>>,
}

fn parse_notify(name: &str, text: &str) -> Result<(Vec<parser::Node>, exec::Defs), TemplateError> {
    let (toks, lex_err) = lexer::lex_lazy(name, text);
    if let Some(e) = lex_err {
        return Err(e);
    }
    let (nodes, defs) = parser::Parser::new(name, toks, &funcs::is_notify_defined)
        .allow_define()
        .parse_with_defines()?;
    Ok((nodes, defs.into_iter().collect()))
}

impl TemplateSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the `define`s of one file (text outside them is ignored, as
    /// Alertmanager ignores it).
    pub fn add(&mut self, name: &str, text: &str) -> Result<(), TemplateError> {
        let (_, defs) = parse_notify(name, text)?;
        self.defs.extend(defs);
        Ok(())
    }

    pub fn has(&self, name: &str) -> bool {
        self.defs.contains_key(name)
    }

    /// Parses a config field's text (which may itself `define`).
    pub fn parse(&self, name: &str, text: &str) -> Result<NotifyTemplate, TemplateError> {
        let (nodes, local) = parse_notify(name, text)?;
        Ok(NotifyTemplate {
            name: name.to_string(),
            src: text.to_string(),
            nodes,
            local,
        })
    }

    /// Renders `t` with `data` as dot; `html` escapes printed values like
    /// Go's html/template does in element content.
    pub fn execute(
        &self,
        t: &NotifyTemplate,
        data: &Value,
        html: bool,
    ) -> Result<String, TemplateError> {
        let empty = Labels::empty();
        let ctx = TemplateContext {
            labels: &empty,
            external_labels: &empty,
            external_url: "",
            value: 0.0,
            now_ms: 0,
            query: None,
        };
        let mut st = exec::State::new(&ctx, &t.name, &t.src);
        st.data = Some(data.clone());
        st.defs = vec![&t.local, &self.defs];
        st.html = html;
        st.run(&t.nodes)?;
        Ok(st.out)
    }

    /// Parses and renders a field's text in one go.
    pub fn render(&self, text: &str, data: &Value, html: bool) -> Result<String, TemplateError> {
        if !text.contains("{{") {
            return Ok(text.to_string());
        }
        let cached = self.parsed.lock().get(text).cloned();
        let t = match cached {
            Some(t) => t,
            None => {
                let t = std::sync::Arc::new(self.parse("", text)?);
                let mut c = self.parsed.lock();
                if c.len() >= PARSED_CACHE_MAX {
                    c.clear();
                }
                c.insert(text.to_string(), t.clone());
                t
            }
        };
        self.execute(&t, data, html)
    }
}

/// Parses and renders in one go, under the name `__alert_`.
pub fn render(text: &str, ctx: &TemplateContext<'_>) -> Result<String, TemplateError> {
    Template::parse("__alert_", text)?.execute(ctx)
}

/// Prometheus' `Expander.Expand` error wrapping.
pub fn expand_error_text(name: &str, err: &TemplateError) -> String {
    match err {
        TemplateError::Parse { .. } => format!("error parsing template {name}: {err}"),
        TemplateError::Exec { .. } => format!("error executing template {name}: {err}"),
    }
}

/// What Prometheus' alerting rule writes into a label or annotation: the
/// expansion, or `<error expanding template: ...>` when it failed.
pub fn expand_for_alert(alert_name: &str, text: &str, ctx: &TemplateContext<'_>) -> String {
    let name = format!("__alert_{alert_name}");
    let res = Template::parse(&name, text).and_then(|t| t.execute(ctx));
    match res {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(alert = alert_name, error = %e, "expanding alert template failed");
            format!(
                "<error expanding template: {}>",
                expand_error_text(&name, &e)
            )
        }
    }
}

/// Renders an already parsed template with Prometheus' error handling.
pub fn execute_for_alert(t: &Template, ctx: &TemplateContext<'_>) -> String {
    match t.execute(ctx) {
        Ok(s) => s,
        Err(e) => format!(
            "<error expanding template: {}>",
            expand_error_text(&t.name, &e)
        ),
    }
}

#[cfg(test)]
mod tests;
