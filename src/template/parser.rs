//! Parser from tokens to the template tree, following Go's text/template
//! grammar so the same inputs are accepted or rejected with the same words.

use super::lexer::{Tok, Token};
use super::TemplateError;
use std::fmt;

#[derive(Debug, Clone)]
pub enum Node {
    Text(String),
    Action(Pipe),
    If(Control),
    Range(Control),
    With(Control),
    Break,
    Continue,
    /// `{{template "name" pipeline}}`: rule templates have no `define`, so
    /// execution fails like Go; notification templates look the name up.
    Template(usize, String, Option<Pipe>),
}

/// `{{define}}`d templates of one text, in order.
pub type Defines = Vec<(String, Vec<Node>)>;

#[derive(Debug, Clone)]
pub struct Control {
    pub pipe: Pipe,
    pub list: Vec<Node>,
    pub else_list: Option<Vec<Node>>,
}

#[derive(Debug, Clone)]
pub struct Pipe {
    pub pos: usize,
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Command>,
}

#[derive(Debug, Clone)]
pub struct Command {
    pub pos: usize,
    pub args: Vec<Arg>,
}

/// A constant number with the kinds Go's parser derives from its text.
#[derive(Debug, Clone)]
pub struct Number {
    pub text: String,
    pub int: Option<i64>,
    pub float: Option<f64>,
    /// True when Go would make it a float64 in an `interface{}` slot.
    pub is_float_const: bool,
}

#[derive(Debug, Clone)]
pub enum Arg {
    Field(usize, Vec<String>),
    Variable(usize, Vec<String>),
    Ident(usize, String),
    Dot(usize),
    Nil(usize),
    Bool(usize, bool),
    Number(usize, Number),
    Str(usize, String, String),
    Pipe(Box<Pipe>),
    Chain(usize, Box<Arg>, Vec<String>),
}

impl Arg {
    pub fn pos(&self) -> usize {
        match self {
            Arg::Field(p, _)
            | Arg::Variable(p, _)
            | Arg::Ident(p, _)
            | Arg::Dot(p)
            | Arg::Nil(p) => *p,
            Arg::Bool(p, _) | Arg::Number(p, _) | Arg::Str(p, _, _) | Arg::Chain(p, _, _) => *p,
            Arg::Pipe(p) => p.pos,
        }
    }
}

impl fmt::Display for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Field(_, n) => {
                for x in n {
                    write!(f, ".{x}")?;
                }
                Ok(())
            }
            Arg::Variable(_, n) => write!(f, "{}", n.join(".")),
            Arg::Ident(_, n) => f.write_str(n),
            Arg::Dot(_) => f.write_str("."),
            Arg::Nil(_) => f.write_str("nil"),
            Arg::Bool(_, b) => write!(f, "{b}"),
            Arg::Number(_, n) => f.write_str(&n.text),
            Arg::Str(_, q, _) => f.write_str(q),
            Arg::Pipe(p) => write!(f, "({p})"),
            Arg::Chain(_, a, fields) => {
                match a.as_ref() {
                    Arg::Pipe(_) => write!(f, "{a}")?,
                    _ => write!(f, "{a}")?,
                }
                for x in fields {
                    write!(f, ".{x}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, a) in self.args.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.decl.is_empty() {
            write!(
                f,
                "{} {} ",
                self.decl.join(", "),
                if self.is_assign { "=" } else { ":=" }
            )?;
        }
        for (i, c) in self.cmds.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{c}")?;
        }
        Ok(())
    }
}

/// Deepest nesting accepted (Go has no limit, but no real template nests
/// anywhere near this).
pub const MAX_DEPTH: usize = 100;

pub struct Parser<'a> {
    name: &'a str,
    toks: Vec<Token>,
    i: usize,
    vars: Vec<String>,
    range_depth: usize,
    /// Nesting of controls and parenthesized pipelines; bounded so a
    /// hostile template cannot overflow the stack.
    depth: usize,
    is_func: &'a dyn Fn(&str) -> bool,
    /// `Some` when `{{define}}` is allowed (notification templates).
    defines: Option<Defines>,
}

enum ListEnd {
    Close,
    Else(bool),
    Eof,
}

fn describe(t: &Tok) -> String {
    let s = match t {
        Tok::Eof => return "EOF".into(),
        Tok::Keyword(k) => return format!("<{k}>"),
        Tok::Text(s)
        | Tok::Ident(s)
        | Tok::Field(s)
        | Tok::Variable(s)
        | Tok::Number(s)
        | Tok::Char(s) => s.clone(),
        Tok::Str(q, _) | Tok::RawStr(q, _) => q.clone(),
        Tok::LeftDelim => "{{".into(),
        Tok::RightDelim => "}}".into(),
        Tok::Space => " ".into(),
        Tok::Dot => ".".into(),
        Tok::Bool(b) => b.to_string(),
        Tok::Nil => "nil".into(),
        Tok::Pipe => "|".into(),
        Tok::LParen => "(".into(),
        Tok::RParen => ")".into(),
        Tok::Declare => ":=".into(),
        Tok::Assign => "=".into(),
        Tok::Comma => ",".into(),
        Tok::Punct(c) => c.to_string(),
    };
    if s.chars().count() > 10 {
        format!(
            "{}...",
            super::gofmt::quote(&s.chars().take(10).collect::<String>())
        )
    } else {
        super::gofmt::quote(&s)
    }
}

impl<'a> Parser<'a> {
    pub fn new(name: &'a str, toks: Vec<Token>, is_func: &'a dyn Fn(&str) -> bool) -> Self {
        Parser {
            name,
            toks,
            i: 0,
            vars: vec!["$".into()],
            range_depth: 0,
            depth: 0,
            is_func,
            defines: None,
        }
    }

    /// Accepts `{{define "name"}}...{{end}}` (Alertmanager's template files).
    pub fn allow_define(mut self) -> Self {
        self.defines = Some(Vec::new());
        self
    }

    /// Parses a template that may `define` others: the main list and the
    /// definitions, in file order.
    pub fn parse_with_defines(mut self) -> Result<(Vec<Node>, Defines), TemplateError> {
        let main = self.parse_inner()?;
        Ok((main, self.defines.take().unwrap_or_default()))
    }

    fn err(&self, msg: String) -> TemplateError {
        let line = self
            .toks
            .get(self.i.saturating_sub(1))
            .map(|t| t.line)
            .unwrap_or(1);
        TemplateError::Parse {
            name: self.name.to_string(),
            line,
            msg,
        }
    }

    fn peek(&self) -> &Token {
        let last = self.toks.len().saturating_sub(1);
        &self.toks[self.i.min(last)]
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.i < self.toks.len() {
            self.i += 1;
        }
        t
    }

    fn next_non_space(&mut self) -> Token {
        loop {
            let t = self.next();
            if t.tok != Tok::Space {
                return t;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        let t = self.next_non_space();
        self.i -= 1;
        t
    }

    fn expect(&mut self, want: Tok, ctx: &str) -> Result<Token, TemplateError> {
        let t = self.next_non_space();
        if t.tok != want {
            return Err(self.err(format!("unexpected {} in {ctx}", describe(&t.tok))));
        }
        Ok(t)
    }

    /// Parses; on error also says whether the parser had reached the end of
    /// the tokens (see [`super::lexer::lex_lazy`]).
    pub fn parse_reporting_end(mut self) -> Result<Vec<Node>, (TemplateError, bool)> {
        match self.parse_inner() {
            Ok(n) => Ok(n),
            Err(e) => {
                let at_end = self.i + 1 >= self.toks.len();
                Err((e, at_end))
            }
        }
    }

    fn parse_inner(&mut self) -> Result<Vec<Node>, TemplateError> {
        let (list, end) = self.item_list(true)?;
        match end {
            ListEnd::Eof => Ok(list),
            ListEnd::Close => Err(self.err("unexpected {{end}}".into())),
            ListEnd::Else(_) => Err(self.err("unexpected {{else}}".into())),
        }
    }

    fn item_list(&mut self, top: bool) -> Result<(Vec<Node>, ListEnd), TemplateError> {
        let mut list = Vec::new();
        loop {
            let t = self.next();
            match t.tok {
                Tok::Eof => {
                    if top {
                        return Ok((list, ListEnd::Eof));
                    }
                    return Err(self.err("unexpected EOF".into()));
                }
                Tok::Text(s) => list.push(Node::Text(s)),
                Tok::LeftDelim => {
                    let k = self.peek_non_space();
                    match k.tok {
                        Tok::Keyword("end") => {
                            self.next_non_space();
                            self.expect(Tok::RightDelim, "end")?;
                            return Ok((list, ListEnd::Close));
                        }
                        Tok::Keyword("else") => {
                            self.next_non_space();
                            let n = self.peek_non_space();
                            if n.tok == Tok::Keyword("if") {
                                self.next_non_space();
                                return Ok((list, ListEnd::Else(true)));
                            }
                            self.expect(Tok::RightDelim, "else")?;
                            return Ok((list, ListEnd::Else(false)));
                        }
                        _ => list.push(self.action()?),
                    }
                }
                other => return Err(self.err(format!("unexpected {}", describe(&other)))),
            }
        }
    }

    fn action(&mut self) -> Result<Node, TemplateError> {
        let t = self.peek_non_space();
        match t.tok {
            Tok::Keyword("if") => {
                self.next_non_space();
                Ok(Node::If(self.control("if")?))
            }
            Tok::Keyword("range") => {
                self.next_non_space();
                self.range_depth += 1;
                let c = self.control("range");
                self.range_depth -= 1;
                Ok(Node::Range(c?))
            }
            Tok::Keyword("with") => {
                self.next_non_space();
                Ok(Node::With(self.control("with")?))
            }
            Tok::Keyword(k @ ("break" | "continue")) => {
                self.next_non_space();
                if self.range_depth == 0 {
                    return Err(self.err(format!("{{{{{k}}}}} outside {{{{range}}}}")));
                }
                self.expect(Tok::RightDelim, k)?;
                Ok(if k == "break" {
                    Node::Break
                } else {
                    Node::Continue
                })
            }
            Tok::Keyword("template") => {
                self.next_non_space();
                let n = self.next_non_space();
                let name_pos = n.pos;
                let name = match n.tok {
                    Tok::Str(_, v) | Tok::RawStr(_, v) => v,
                    other => {
                        return Err(self.err(format!(
                            "unexpected {} in template clause",
                            describe(&other)
                        )))
                    }
                };
                let n2 = self.peek_non_space();
                let pipe = if n2.tok != Tok::RightDelim {
                    Some(self.pipeline("template clause", Tok::RightDelim)?)
                } else {
                    self.next_non_space();
                    None
                };
                Ok(Node::Template(name_pos, name, pipe))
            }
            Tok::Keyword("define") if self.defines.is_some() => {
                self.next_non_space();
                let n = self.next_non_space();
                let name = match n.tok {
                    Tok::Str(_, v) | Tok::RawStr(_, v) => v,
                    other => {
                        return Err(
                            self.err(format!("unexpected {} in define clause", describe(&other)))
                        )
                    }
                };
                self.expect(Tok::RightDelim, "define clause")?;
                self.enter()?;
                // A definition has its own variable scope with only `$`.
                let saved = std::mem::replace(&mut self.vars, vec!["$".into()]);
                let res = self.item_list(false);
                self.vars = saved;
                self.depth -= 1;
                let (body, end) = res?;
                match end {
                    ListEnd::Close => {}
                    _ => return Err(self.err("unexpected {{else}} in define".into())),
                }
                if let Some(d) = self.defines.as_mut() {
                    d.push((name, body));
                }
                Ok(Node::Text(String::new()))
            }
            Tok::Keyword(k) => {
                Err(self.err(format!("{{{{{k}}}}} is not supported in alert templates")))
            }
            _ => Ok(Node::Action(self.pipeline("command", Tok::RightDelim)?)),
        }
    }

    fn control(&mut self, ctx: &str) -> Result<Control, TemplateError> {
        let mark = self.vars.len();
        self.enter()?;
        let res = self.control_inner(ctx);
        self.depth -= 1;
        self.vars.truncate(mark);
        res
    }

    fn control_inner(&mut self, ctx: &str) -> Result<Control, TemplateError> {
        let pipe = self.pipeline(ctx, Tok::RightDelim)?;
        let (list, end) = self.item_list(false)?;
        let else_list = match end {
            ListEnd::Close => None,
            ListEnd::Eof => return Err(self.err("unexpected EOF".into())),
            ListEnd::Else(true) => {
                // `{{else if x}}` is `{{else}}{{if x}}...{{end}}` sharing the end.
                Some(vec![Node::If(self.control("if")?)])
            }
            ListEnd::Else(false) => {
                let (l, e) = self.item_list(false)?;
                match e {
                    ListEnd::Close => Some(l),
                    _ => return Err(self.err("expected end; found {{else}}".into())),
                }
            }
        };
        Ok(Control {
            pipe,
            list,
            else_list,
        })
    }

    fn enter(&mut self) -> Result<(), TemplateError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!("template nested deeper than {MAX_DEPTH} levels")));
        }
        self.depth += 1;
        Ok(())
    }

    fn pipeline(&mut self, ctx: &str, end: Tok) -> Result<Pipe, TemplateError> {
        self.enter()?;
        let res = self.pipeline_inner(ctx, end);
        self.depth -= 1;
        res
    }

    fn pipeline_inner(&mut self, ctx: &str, end: Tok) -> Result<Pipe, TemplateError> {
        let start = self.peek_non_space();
        let mut pipe = Pipe {
            pos: start.pos,
            decl: vec![],
            is_assign: false,
            cmds: vec![],
        };
        // Declarations.
        'decl: loop {
            let save = self.i;
            let v = self.peek_non_space();
            let Tok::Variable(name) = v.tok.clone() else {
                break;
            };
            self.next_non_space();
            let n = self.peek_non_space();
            match n.tok {
                Tok::Declare | Tok::Assign => {
                    self.next_non_space();
                    pipe.is_assign = n.tok == Tok::Assign;
                    if pipe.is_assign && !self.vars.contains(&name) {
                        return Err(self.err(format!("undefined variable {:?}", name)));
                    }
                    pipe.decl.push(name.clone());
                    if !pipe.is_assign {
                        self.vars.push(name);
                    }
                    break 'decl;
                }
                Tok::Comma if ctx == "range" && pipe.decl.is_empty() => {
                    self.next_non_space();
                    pipe.decl.push(name.clone());
                    self.vars.push(name);
                    continue;
                }
                Tok::Comma => return Err(self.err(format!("too many declarations in {ctx}"))),
                _ => {
                    if !pipe.decl.is_empty() {
                        return Err(self.err("missing := after range variables".to_string()));
                    }
                    self.i = save;
                    break;
                }
            }
        }
        if pipe.decl.len() == 2 && ctx != "range" {
            return Err(self.err(format!("too many declarations in {ctx}")));
        }
        loop {
            let t = self.next_non_space();
            if t.tok == end {
                if pipe.cmds.is_empty() {
                    return Err(self.err(format!("missing value for {ctx}")));
                }
                for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
                    if matches!(
                        c.args.first(),
                        Some(
                            Arg::Bool(..)
                                | Arg::Dot(_)
                                | Arg::Nil(_)
                                | Arg::Number(..)
                                | Arg::Str(..)
                        )
                    ) {
                        return Err(self.err(format!(
                            "non executable command in pipeline stage {}",
                            i + 1
                        )));
                    }
                }
                return Ok(pipe);
            }
            match t.tok {
                Tok::Bool(_)
                | Tok::Char(_)
                | Tok::Dot
                | Tok::Field(_)
                | Tok::Ident(_)
                | Tok::Number(_)
                | Tok::Nil
                | Tok::RawStr(..)
                | Tok::Str(..)
                | Tok::Variable(_)
                | Tok::LParen => {
                    self.i -= 1;
                    let c = self.command()?;
                    pipe.cmds.push(c);
                }
                other => return Err(self.err(format!("unexpected {} in {ctx}", describe(&other)))),
            }
        }
    }

    fn command(&mut self) -> Result<Command, TemplateError> {
        let pos = self.peek_non_space().pos;
        let mut cmd = Command { pos, args: vec![] };
        loop {
            self.peek_non_space();
            if let Some(op) = self.operand()? {
                cmd.args.push(op);
            }
            let t = self.next();
            match t.tok {
                Tok::Space => continue,
                Tok::RightDelim | Tok::RParen => self.i -= 1,
                Tok::Pipe => {}
                other => {
                    return Err(self.err(format!("unexpected {} in operand", describe(&other))))
                }
            }
            break;
        }
        if cmd.args.is_empty() {
            return Err(self.err("empty command".into()));
        }
        Ok(cmd)
    }

    fn operand(&mut self) -> Result<Option<Arg>, TemplateError> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        // Go positions a chained node at its first chained field.
        let p = self.peek().pos;
        while let Tok::Field(f) = &self.peek().tok {
            fields.push(f[1..].to_string());
            self.next();
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        Ok(Some(match term {
            Arg::Field(_, mut n) => {
                n.extend(fields);
                Arg::Field(p, n)
            }
            Arg::Variable(_, mut n) => {
                n.extend(fields);
                Arg::Variable(p, n)
            }
            Arg::Bool(..) | Arg::Str(..) | Arg::Number(..) | Arg::Nil(_) | Arg::Dot(_) => {
                return Err(self.err(format!("unexpected . after term {:?}", term.to_string())));
            }
            other => Arg::Chain(p, Box::new(other), fields),
        }))
    }

    fn term(&mut self) -> Result<Option<Arg>, TemplateError> {
        let t = self.next_non_space();
        let p = t.pos;
        Ok(Some(match t.tok {
            Tok::Ident(n) => {
                if !(self.is_func)(&n) {
                    return Err(self.err(format!("function {:?} not defined", n)));
                }
                Arg::Ident(p, n)
            }
            Tok::Dot => Arg::Dot(p),
            Tok::Nil => Arg::Nil(p),
            Tok::Variable(v) => {
                let parts: Vec<String> = v.split('.').map(str::to_string).collect();
                if !self.vars.contains(&parts[0]) {
                    return Err(self.err(format!("undefined variable {:?}", parts[0])));
                }
                Arg::Variable(p, parts)
            }
            Tok::Field(f) => Arg::Field(p, vec![f[1..].to_string()]),
            Tok::Bool(b) => Arg::Bool(p, b),
            Tok::Number(n) => Arg::Number(p, self.number(&n)?),
            Tok::Char(c) => {
                let v = char_value(&c)
                    .ok_or_else(|| self.err(format!("malformed character constant: {c}")))?;
                Arg::Number(
                    p,
                    Number {
                        text: c,
                        int: Some(v as i64),
                        float: Some(v as u32 as f64),
                        is_float_const: false,
                    },
                )
            }
            Tok::LParen => {
                let pipe = self.pipeline("parenthesized pipeline", Tok::RParen)?;
                Arg::Pipe(Box::new(pipe))
            }
            Tok::Str(q, v) | Tok::RawStr(q, v) => Arg::Str(p, q, v),
            _ => {
                self.i -= 1;
                return Ok(None);
            }
        }))
    }

    fn number(&self, text: &str) -> Result<Number, TemplateError> {
        let clean: String = text.chars().filter(|c| *c != '_').collect();
        let (neg, body) = match clean.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
        };
        let lower = body.to_ascii_lowercase();
        let int = if let Some(h) = lower.strip_prefix("0x") {
            u64::from_str_radix(h, 16).ok()
        } else if let Some(o) = lower.strip_prefix("0o") {
            u64::from_str_radix(o, 8).ok()
        } else if let Some(b) = lower.strip_prefix("0b") {
            u64::from_str_radix(b, 2).ok()
        } else if lower.len() > 1
            && lower.starts_with('0')
            && lower.bytes().all(|c| c.is_ascii_digit())
        {
            u64::from_str_radix(&lower[1..], 8).ok()
        } else {
            lower.parse::<u64>().ok()
        };
        let int = int.and_then(|u| {
            if neg {
                if u <= i64::MAX as u64 + 1 {
                    Some((u as i128).wrapping_neg() as i64)
                } else {
                    None
                }
            } else {
                i64::try_from(u).ok()
            }
        });
        let is_hex = lower.starts_with("0x");
        let float = if let Some(i) = int {
            Some(i as f64)
        } else if !is_hex
            && lower
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-'))
        {
            clean.parse::<f64>().ok().filter(|f| f.is_finite())
        } else {
            None
        };
        let fits_u64 = int.is_some() || lower.parse::<u64>().is_ok();
        if !fits_u64 && float.is_some() && !body.contains(['.', 'e', 'E', 'p', 'P']) {
            return Err(self.err(format!("integer overflow: {:?}", text)));
        }
        let int = int.or_else(|| {
            float
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        });
        if int.is_none() && float.is_none() {
            return Err(self.err(format!("illegal number syntax: {:?}", text)));
        }
        let is_float_const = float.is_some() && !is_hex && body.contains(['.', 'e', 'E', 'p', 'P']);
        Ok(Number {
            text: text.to_string(),
            int,
            float,
            is_float_const,
        })
    }
}

fn char_value(c: &str) -> Option<char> {
    let inner = c.strip_prefix('\'')?.strip_suffix('\'')?;
    if inner.starts_with('\\') {
        let s = super::lexer::unquote_go(&format!("\"{}\"", inner.replace("\\'", "'"))).ok()?;
        let mut it = s.chars();
        let ch = it.next()?;
        return if it.next().is_none() { Some(ch) } else { None };
    }
    let mut it = inner.chars();
    let ch = it.next()?;
    if it.next().is_none() {
        Some(ch)
    } else {
        None
    }
}
