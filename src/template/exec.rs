//! Executes a parsed template against the alert's data, with Go's
//! evaluation rules: variable scoping, lazy `and`/`or`, field chains on
//! maps and structs, and the `<no value>` printing of missing map keys.

use super::funcs;
use super::gofmt;
use super::parser::{Arg, Command, Control, Node, Number, Pipe};
use super::{QuerySample, TemplateContext, TemplateError};
use crate::model::Labels;
use std::collections::BTreeMap;
use std::rc::Rc;

/// A template value; the variants mirror the Go types Prometheus' template
/// functions take and return, so type errors read the same.
#[derive(Debug, Clone)]
pub enum Value {
    /// Go's invalid reflect.Value (a missing map key), printed `<no value>`.
    Missing,
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Html(String),
    Labels(Rc<Labels>),
    Map(Rc<BTreeMap<String, Value>>),
    Sample(Rc<QuerySample>),
    Vector(Rc<Vec<QuerySample>>),
    /// Nanoseconds since the epoch, UTC.
    Time(i128),
    /// Nanoseconds.
    Duration(i64),
    /// The root dot (`.Labels`, `.Value`, ...); holds its Go `%v` text
    /// because fields are read from the context, not from the value.
    Data(Rc<str>),
    /// A Go slice (`[]string`, `template.Pairs`): notification templates.
    Slice(Rc<Vec<Value>>),
    /// Alertmanager's `template.Alerts`: a slice with `Firing`/`Resolved`.
    Alerts(Rc<Vec<Value>>),
    /// Alertmanager's `template.KV`: a string map whose methods
    /// (`SortedPairs`, `Names`, `Values`, `Remove`) shadow its keys.
    Kv(Rc<Labels>),
    /// A Go struct (Alertmanager's `Data`, `Alert`, `Pair`).
    Struct(Rc<Struct>),
}

/// A Go struct value: its type name (for errors) and its fields in
/// declaration order (for `%v`).
#[derive(Debug, Clone)]
pub struct Struct {
    pub type_name: &'static str,
    pub fields: Vec<(&'static str, Value)>,
}

impl Struct {
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.fields.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// Named templates (`{{define}}`) visible to `{{template}}`.
pub type Defs = std::collections::HashMap<String, Vec<Node>>;

impl Value {
    pub fn truth(&self) -> bool {
        match self {
            Value::Missing | Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) | Value::Html(s) => !s.is_empty(),
            Value::Labels(l) => !l.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::Vector(v) => !v.is_empty(),
            Value::Slice(v) | Value::Alerts(v) => !v.is_empty(),
            Value::Kv(l) => !l.is_empty(),
            Value::Sample(_)
            | Value::Struct(_)
            | Value::Time(_)
            | Value::Duration(_)
            | Value::Data(_) => true,
        }
    }
}

pub enum Flow {
    Normal,
    Break,
    Continue,
}

/// Upper bound on output size and loop work: templates come from rule files
/// but their data comes from queries, and a runaway template must not take
/// the process down or stall its rule group. An annotation of 1 MiB is far
/// beyond any notification payload, so nothing legitimate is cut.
pub const MAX_OUTPUT: usize = 1 << 20;

/// Upper bound on executed template nodes (every node of every range
/// iteration): nested `range`s over large query results that print nothing
/// would otherwise run unbounded without ever reaching [`MAX_OUTPUT`].
pub const MAX_STEPS: u64 = 1_000_000;

pub struct State<'c, 'a> {
    pub ctx: &'c TemplateContext<'a>,
    name: &'c str,
    src: &'c str,
    vars: Vec<(String, Value)>,
    pub out: String,
    at: Option<(usize, String)>,
    depth: usize,
    steps: u64,
    /// Root data for notification templates (rules read it from `ctx`).
    pub data: Option<Value>,
    /// `{{define}}`d templates, searched in order.
    pub defs: Vec<&'c Defs>,
    /// html/template-like escaping of printed values (email HTML bodies).
    pub html: bool,
}

type R<T> = Result<T, TemplateError>;

impl<'c, 'a> State<'c, 'a> {
    pub fn new(ctx: &'c TemplateContext<'a>, name: &'c str, src: &'c str) -> Self {
        State {
            ctx,
            name,
            src,
            vars: vec![],
            out: String::new(),
            at: None,
            depth: 0,
            steps: 0,
            data: None,
            defs: vec![],
            html: false,
        }
    }

    fn at(&mut self, pos: usize, what: String) {
        self.at = Some((pos, what));
    }

    pub fn error(&self, msg: String) -> TemplateError {
        match &self.at {
            None => TemplateError::Exec {
                name: self.name.into(),
                location: None,
                msg,
            },
            Some((pos, ctx)) => {
                let pos = (*pos).min(self.src.len());
                let before = self.src.get(..pos).unwrap_or("");
                let line = 1 + before.matches('\n').count();
                let col = pos - before.rfind('\n').map(|i| i + 1).unwrap_or(0);
                TemplateError::Exec {
                    name: self.name.into(),
                    location: Some((line, col, ctx.clone())),
                    msg,
                }
            }
        }
    }

    /// Runs the whole template with the root data as dot and `$`.
    pub fn run(&mut self, nodes: &[Node]) -> R<()> {
        let root = self.root();
        self.vars.push(("$".into(), root.clone()));
        self.walk(&root, nodes)?;
        // The last node's output is not checked by `walk`.
        if self.out.len() > MAX_OUTPUT {
            return Err(self.error(format!(
                "template output exceeds the limit of {MAX_OUTPUT} bytes"
            )));
        }
        Ok(())
    }

    pub fn walk(&mut self, dot: &Value, nodes: &[Node]) -> R<Flow> {
        for n in nodes {
            if self.out.len() > MAX_OUTPUT {
                return Err(self.error(format!(
                    "template output exceeds the limit of {MAX_OUTPUT} bytes"
                )));
            }
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Err(self.error(format!(
                    "template exceeds the limit of {MAX_STEPS} execution steps"
                )));
            }
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.eval_pipeline(dot, p)?;
                    if p.decl.is_empty() {
                        self.print(&v)?;
                    }
                }
                Node::If(c) | Node::With(c) => {
                    let is_with = matches!(n, Node::With(_));
                    let mark = self.vars.len();
                    let v = self.eval_pipeline(dot, &c.pipe)?;
                    let flow = if v.truth() {
                        if is_with {
                            self.walk(&v, &c.list)?
                        } else {
                            self.walk(dot, &c.list)?
                        }
                    } else if let Some(e) = &c.else_list {
                        self.walk(dot, e)?
                    } else {
                        Flow::Normal
                    };
                    self.vars.truncate(mark);
                    if !matches!(flow, Flow::Normal) {
                        return Ok(flow);
                    }
                }
                Node::Range(c) => self.range(dot, c)?,
                Node::Break => return Ok(Flow::Break),
                Node::Template(pos, name, pipe) => {
                    let found = self.defs.iter().find_map(|d| d.get(name));
                    let Some(body) = found else {
                        // No `define` exists in an alert template, so Go fails here at run time.
                        self.at(*pos, format!("{{{{template {}}}}}", gofmt::quote(name)));
                        return Err(
                            self.error(format!("template {} not defined", gofmt::quote(name)))
                        );
                    };
                    let new_dot = match pipe {
                        Some(p) => self.eval_pipeline(dot, p)?,
                        None => Value::Nil,
                    };
                    self.depth += 1;
                    if self.depth > 100 {
                        self.depth -= 1;
                        return Err(self.error(format!(
                            "exceeded maximum template depth (100) in {}",
                            gofmt::quote(name)
                        )));
                    }
                    // A called template sees only its own `$`.
                    let saved =
                        std::mem::replace(&mut self.vars, vec![("$".into(), new_dot.clone())]);
                    let res = self.walk(&new_dot, body);
                    self.vars = saved;
                    self.depth -= 1;
                    res?;
                }
                Node::Continue => return Ok(Flow::Continue),
            }
        }
        Ok(Flow::Normal)
    }

    fn print(&mut self, v: &Value) -> R<()> {
        match v {
            Value::Html(s) if self.html => self.out.push_str(s),
            _ if self.html => html_escape_into(&mut self.out, &gofmt::sprint_value(v)),
            _ => self.out.push_str(&gofmt::sprint_value(v)),
        }
        Ok(())
    }

    /// The root data value; prints like Prometheus' anonymous data struct.
    pub fn root(&self) -> Value {
        if let Some(d) = &self.data {
            return d.clone();
        }
        let c = self.ctx;
        Value::Data(Rc::from(format!(
            "{{{} {} {} {}}}",
            gofmt::sprint_value(&Value::Labels(Rc::new(c.labels.clone()))),
            gofmt::sprint_value(&Value::Labels(Rc::new(c.external_labels.clone()))),
            c.external_url,
            gofmt::float_v(c.value)
        )))
    }

    fn range(&mut self, dot: &Value, c: &Control) -> R<()> {
        let mark = self.vars.len();
        let v = self.eval_pipeline(dot, &c.pipe)?;
        // Range declarations are re-set on every iteration, not printed.
        self.vars.truncate(mark);
        let items: Vec<(Value, Value)> = match &v {
            Value::Vector(vs) => vs
                .iter()
                .enumerate()
                .map(|(i, s)| (Value::Int(i as i64), Value::Sample(Rc::new(s.clone()))))
                .collect(),
            Value::Labels(l) => l
                .iter()
                .map(|x| (Value::Str(x.name.clone()), Value::Str(x.value.clone())))
                .collect(),
            Value::Map(m) => m
                .iter()
                .map(|(k, v)| (Value::Str(k.clone()), v.clone()))
                .collect(),
            Value::Slice(v) | Value::Alerts(v) => v
                .iter()
                .enumerate()
                .map(|(i, x)| (Value::Int(i as i64), x.clone()))
                .collect(),
            Value::Kv(l) => l
                .iter()
                .map(|x| (Value::Str(x.name.clone()), Value::Str(x.value.clone())))
                .collect(),
            Value::Missing | Value::Nil => vec![],
            other => {
                self.at(c.pipe.pos, c.pipe.to_string());
                return Err(self.error(format!(
                    "range can't iterate over {}",
                    gofmt::sprint_value(other)
                )));
            }
        };
        if items.is_empty() {
            if let Some(e) = &c.else_list {
                self.walk(dot, e)?;
            }
            return Ok(());
        }
        for (k, elem) in items {
            self.steps += 1;
            if self.steps > MAX_STEPS {
                self.at(c.pipe.pos, c.pipe.to_string());
                return Err(self.error(format!(
                    "template exceeds the limit of {MAX_STEPS} execution steps"
                )));
            }
            match c.pipe.decl.len() {
                1 => self.vars.push((c.pipe.decl[0].clone(), elem.clone())),
                2 => {
                    self.vars.push((c.pipe.decl[0].clone(), k));
                    self.vars.push((c.pipe.decl[1].clone(), elem.clone()));
                }
                _ => {}
            }
            let flow = self.walk(&elem, &c.list)?;
            self.vars.truncate(mark);
            if let Flow::Break = flow {
                break;
            }
        }
        Ok(())
    }

    pub fn eval_pipeline(&mut self, dot: &Value, p: &Pipe) -> R<Value> {
        self.depth += 1;
        if self.depth > 200 {
            self.depth -= 1;
            return Err(self.error("pipeline nested too deeply".into()));
        }
        let res = self.eval_pipeline_inner(dot, p);
        self.depth -= 1;
        res
    }

    fn eval_pipeline_inner(&mut self, dot: &Value, p: &Pipe) -> R<Value> {
        self.at(p.pos, p.to_string());
        let mut v = Value::Missing;
        let mut has_final = false;
        for c in &p.cmds {
            v = self.eval_command(dot, c, if has_final { Some(v) } else { None })?;
            has_final = true;
        }
        for name in &p.decl {
            if p.is_assign {
                if let Some(slot) = self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    slot.1 = v.clone();
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn not_a_function(&mut self, cmd: &Command, fin: &Option<Value>) -> R<()> {
        if cmd.args.len() > 1 || fin.is_some() {
            return Err(self.error(format!(
                "can't give argument to non-function {}",
                cmd.args[0]
            )));
        }
        Ok(())
    }

    fn eval_command(&mut self, dot: &Value, cmd: &Command, fin: Option<Value>) -> R<Value> {
        let Some(first) = cmd.args.first() else {
            return Ok(Value::Missing);
        };
        self.at(first.pos(), first.to_string());
        match first {
            Arg::Field(_, names) => self.eval_chain(dot, dot.clone(), names, cmd, fin),
            Arg::Chain(_, base, names) => {
                let recv = self.eval_arg(dot, base)?;
                self.eval_chain(dot, recv, names, cmd, fin)
            }
            Arg::Variable(_, names) => {
                let v = self.var(&names[0])?;
                if names.len() == 1 {
                    self.not_a_function(cmd, &fin)?;
                    return Ok(v);
                }
                self.eval_chain(dot, v, &names[1..], cmd, fin)
            }
            Arg::Ident(_, name) => self.eval_function(dot, name, cmd, fin),
            Arg::Pipe(p) => {
                self.not_a_function(cmd, &fin)?;
                self.eval_pipeline(dot, p)
            }
            Arg::Nil(_) => Err(self.error("nil is not a command".into())),
            other => {
                self.not_a_function(cmd, &fin)?;
                self.eval_arg(dot, other)
            }
        }
    }

    fn var(&self, name: &str) -> R<Value> {
        self.vars
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| self.error(format!("undefined variable: {name}")))
    }

    fn eval_chain(
        &mut self,
        dot: &Value,
        mut recv: Value,
        names: &[String],
        cmd: &Command,
        mut fin: Option<Value>,
    ) -> R<Value> {
        let n = names.len();
        for (i, name) in names.iter().enumerate() {
            let last = i + 1 == n;
            let has_args = last && (cmd.args.len() > 1 || fin.is_some());
            if let Some(want) = method_arity(&recv, name) {
                let mut args = Vec::new();
                if last {
                    for a in cmd.args.iter().skip(1) {
                        args.push(self.eval_arg(dot, a)?);
                    }
                    if let Some(f) = fin.take() {
                        args.push(f);
                    }
                }
                if args.len() != want {
                    return Err(self.error(format!(
                        "wrong number of args for {name}: want {want} got {}",
                        args.len()
                    )));
                }
                recv = self.method(&recv, name, args)?;
                continue;
            }
            recv = self.field(recv, name, has_args)?;
        }
        Ok(recv)
    }

    /// Alertmanager's methods on its template types.
    fn method(&mut self, recv: &Value, name: &str, args: Vec<Value>) -> R<Value> {
        Ok(match (recv, name) {
            (Value::Kv(l), "SortedPairs") => Value::Slice(Rc::new(
                l.iter()
                    .map(|p| {
                        Value::Struct(Rc::new(Struct {
                            type_name: "template.Pair",
                            fields: vec![
                                ("Name", Value::Str(p.name.clone())),
                                ("Value", Value::Str(p.value.clone())),
                            ],
                        }))
                    })
                    .collect(),
            )),
            (Value::Kv(l), "Names") => Value::Slice(Rc::new(
                l.iter().map(|p| Value::Str(p.name.clone())).collect(),
            )),
            (Value::Kv(l), "Values") => Value::Slice(Rc::new(
                l.iter().map(|p| Value::Str(p.value.clone())).collect(),
            )),
            (Value::Kv(l), "Remove") => {
                let keys: Vec<String> = match args.first() {
                    Some(Value::Slice(v)) => v.iter().map(gofmt::sprint_value).collect(),
                    Some(Value::Missing | Value::Nil) | None => vec![],
                    Some(other) => {
                        return Err(self.error(format!(
                            "wrong type for value; expected []string; got {}",
                            gofmt::type_name(other)
                        )))
                    }
                };
                let mut b = l.builder();
                for k in &keys {
                    b.del(k);
                }
                Value::Kv(Rc::new(b.build()))
            }
            (Value::Time(ns), "Format") => match args.first() {
                Some(Value::Str(l) | Value::Html(l)) => Value::Str(gofmt::time_format(*ns, l)),
                other => {
                    return Err(self.error(format!(
                        "wrong type for value; expected string; got {}",
                        other.map_or("<nil>", gofmt::type_name)
                    )))
                }
            },
            (Value::Time(ns), "UTC") => Value::Time(*ns),
            (Value::Time(ns), "Unix") => Value::Int(ns.div_euclid(1_000_000_000) as i64),
            (Value::Alerts(v), "Firing" | "Resolved") => {
                let want = if name == "Firing" {
                    "firing"
                } else {
                    "resolved"
                };
                Value::Alerts(Rc::new(
                    v.iter()
                        .filter(|a| match a {
                            Value::Struct(s) => {
                                matches!(s.get("Status"), Some(Value::Str(st)) if st == want)
                            }
                            _ => false,
                        })
                        .cloned()
                        .collect(),
                ))
            }
            _ => {
                return Err(self.error(format!(
                    "can't evaluate field {name} in type {}",
                    gofmt::type_name(recv)
                )))
            }
        })
    }

    fn field(&mut self, recv: Value, name: &str, has_args: bool) -> R<Value> {
        let map_args = |s: &Self| -> R<()> {
            if has_args {
                return Err(s.error(format!("{name} is not a method but has arguments")));
            }
            Ok(())
        };
        match &recv {
            Value::Missing => Ok(Value::Missing),
            Value::Data(_) => {
                if has_args {
                    return Err(self.error(format!(
                        "{name} has arguments but cannot be invoked as function"
                    )));
                }
                let c = self.ctx;
                match name {
                    "Labels" => Ok(Value::Labels(Rc::new(c.labels.clone()))),
                    "ExternalLabels" => Ok(Value::Labels(Rc::new(c.external_labels.clone()))),
                    "ExternalURL" => Ok(Value::Str(c.external_url.to_string())),
                    "Value" => Ok(Value::Float(c.value)),
                    _ => Err(self.error(format!(
                        "can't evaluate field {name} in type {}",
                        gofmt::type_name(&recv)
                    ))),
                }
            }
            Value::Labels(l) => {
                map_args(self)?;
                // Prometheus runs templates with missingkey=zero: a missing
                // label reads as "" (the map's zero value).
                Ok(Value::Str(l.get(name).unwrap_or("").to_string()))
            }
            Value::Map(m) => {
                map_args(self)?;
                Ok(m.get(name).cloned().unwrap_or(Value::Missing))
            }
            Value::Sample(s) => {
                if has_args {
                    return Err(self.error(format!(
                        "{name} has arguments but cannot be invoked as function"
                    )));
                }
                match name {
                    "Labels" => Ok(Value::Labels(Rc::new(s.labels.clone()))),
                    "Value" => Ok(Value::Float(s.value)),
                    _ => Err(self.error(format!(
                        "can't evaluate field {name} in type *template.sample"
                    ))),
                }
            }
            Value::Kv(l) => {
                map_args(self)?;
                Ok(Value::Str(l.get(name).unwrap_or("").to_string()))
            }
            Value::Struct(st) => {
                if has_args {
                    return Err(self.error(format!(
                        "{name} has arguments but cannot be invoked as function"
                    )));
                }
                match st.get(name) {
                    Some(v) => Ok(v.clone()),
                    None => Err(self.error(format!(
                        "can't evaluate field {name} in type {}",
                        st.type_name
                    ))),
                }
            }
            Value::Nil => Err(self.error(format!("nil pointer evaluating interface {{}}.{name}"))),
            other => Err(self.error(format!(
                "can't evaluate field {name} in type {}",
                gofmt::type_name(other)
            ))),
        }
    }

    /// Evaluates one argument node to a value (constants get Go's ideal
    /// constant typing: `1` is an int, `1.0` and `1e3` are float64).
    pub fn eval_arg(&mut self, dot: &Value, a: &Arg) -> R<Value> {
        self.at(a.pos(), a.to_string());
        Ok(match a {
            Arg::Dot(_) => dot.clone(),
            Arg::Nil(_) => Value::Nil,
            Arg::Bool(_, b) => Value::Bool(*b),
            Arg::Str(_, _, s) => Value::Str(s.clone()),
            Arg::Number(_, n) => self.ideal(n)?,
            Arg::Field(_, names) => {
                let cmd = Command {
                    pos: a.pos(),
                    args: vec![a.clone()],
                };
                self.eval_chain(dot, dot.clone(), names, &cmd, None)?
            }
            Arg::Variable(_, names) => {
                let v = self.var(&names[0])?;
                let cmd = Command {
                    pos: a.pos(),
                    args: vec![a.clone()],
                };
                self.eval_chain(dot, v, &names[1..], &cmd, None)?
            }
            Arg::Chain(_, base, names) => {
                let recv = self.eval_arg(dot, base)?;
                let cmd = Command {
                    pos: a.pos(),
                    args: vec![a.clone()],
                };
                self.eval_chain(dot, recv, names, &cmd, None)?
            }
            Arg::Pipe(p) => self.eval_pipeline(dot, p)?,
            Arg::Ident(_, name) => {
                let cmd = Command {
                    pos: a.pos(),
                    args: vec![a.clone()],
                };
                self.eval_function(dot, name, &cmd, None)?
            }
        })
    }

    fn ideal(&self, n: &Number) -> R<Value> {
        if n.is_float_const {
            if let Some(f) = n.float {
                return Ok(Value::Float(f));
            }
        }
        match n.int {
            Some(i) => Ok(Value::Int(i)),
            None => Err(self.error(format!("{} overflows int", n.text))),
        }
    }

    fn eval_function(
        &mut self,
        dot: &Value,
        name: &str,
        cmd: &Command,
        fin: Option<Value>,
    ) -> R<Value> {
        let args = &cmd.args[1..];
        let spec = funcs::spec(name)
            .ok_or_else(|| self.error(format!("{name:?} is not a defined function")))?;
        let given = args.len() + usize::from(fin.is_some());
        if spec.variadic {
            if given < spec.params.len() {
                return Err(self.error(format!(
                    "wrong number of args for {name}: want at least {} got {}",
                    spec.params.len(),
                    args.len()
                )));
            }
        } else if given != spec.params.len() {
            return Err(self.error(format!(
                "wrong number of args for {name}: want {} got {given}",
                spec.params.len()
            )));
        }
        if name == "and" || name == "or" {
            let mut v = Value::Missing;
            for a in args {
                v = self.eval_arg(dot, a)?;
                if v.truth() == (name == "or") {
                    return Ok(v);
                }
            }
            if let Some(f) = fin {
                v = f;
            }
            return Ok(v);
        }
        let mut vals = Vec::with_capacity(given);
        for (i, a) in args.iter().enumerate() {
            let kind = spec.param(i);
            let v = match (kind, a) {
                (funcs::P::Str, Arg::Number(..) | Arg::Bool(..)) => {
                    self.at(a.pos(), a.to_string());
                    return Err(self.error(format!("expected string; found {a}")));
                }
                (funcs::P::Str, Arg::Nil(_)) => {
                    self.at(a.pos(), a.to_string());
                    return Err(self.error("cannot assign nil to string".into()));
                }
                (
                    funcs::P::Sample | funcs::P::Vector,
                    Arg::Number(..) | Arg::Bool(..) | Arg::Str(..),
                ) => {
                    self.at(a.pos(), a.to_string());
                    return Err(self.error(format!(
                        "can't handle {a} for arg of type {}",
                        kind.go_name()
                    )));
                }
                _ => self.eval_arg(dot, a)?,
            };
            vals.push(self.check_type(kind, v)?);
        }
        if let Some(f) = fin {
            let kind = spec.param(given - 1);
            vals.push(self.check_type(kind, f)?);
        }
        self.at(cmd.pos, cmd.to_string());
        funcs::call(self, name, vals).map_err(|e| self.error(format!("error calling {name}: {e}")))
    }

    fn check_type(&self, kind: funcs::P, v: Value) -> R<Value> {
        use funcs::P;
        let ok = match (kind, &v) {
            (P::Any, _) => true,
            (_, Value::Missing) => {
                return match kind {
                    P::Sample => Ok(Value::Nil),
                    P::Vector => Ok(Value::Vector(Rc::new(vec![]))),
                    _ => Err(self.error(format!("invalid value; expected {}", kind.go_name()))),
                }
            }
            (P::Str, Value::Str(_)) => true,
            (P::Sample, Value::Sample(_) | Value::Nil) => true,
            (P::Vector, Value::Vector(_)) => true,
            (P::Vector, Value::Nil) => return Ok(Value::Vector(Rc::new(vec![]))),
            _ => false,
        };
        if !ok {
            return Err(self.error(format!(
                "wrong type for value; expected {}; got {}",
                kind.go_name(),
                gofmt::type_name(&v)
            )));
        }
        Ok(v)
    }
}

/// How many arguments a method of Alertmanager's template types takes;
/// `None` when `name` is not a method of `recv` (then it is a field or key).
fn method_arity(recv: &Value, name: &str) -> Option<usize> {
    match (recv, name) {
        (Value::Kv(_), "SortedPairs" | "Names" | "Values") => Some(0),
        (Value::Kv(_), "Remove") => Some(1),
        (Value::Alerts(_), "Firing" | "Resolved") => Some(0),
        (Value::Time(_), "Format") => Some(1),
        (Value::Time(_), "UTC" | "Unix") => Some(0),
        _ => None,
    }
}

/// Go's `html/template` escaping of text printed into HTML.
pub fn html_escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&#34;"),
            '\'' => out.push_str("&#39;"),
            '+' => out.push_str("&#43;"),
            '\0' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}
