//! The PromQL lexer. It mirrors the state machine of Prometheus' `lex.go`
//! (brace, bracket and parenthesis tracking decide how characters lex) so
//! error messages and their positions come out the same. Inside brackets it
//! uses the messages of Prometheus 2.42, the version promtool verdicts in
//! this project come from.

use crate::model::gofmt::{go_quote, go_quote_rune, go_unicode_verb};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tok {
    Eof,
    Comma,
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Colon,
    At,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Eqlc,
    Neq,
    Lte,
    TrimUpper,
    TrimLower,
    Lss,
    Gte,
    Gtr,
    Eql,
    EqlRegex,
    NeqRegex,
    Land,
    Lor,
    Lunless,
    Atan2,
    Aggregator,
    Bool,
    By,
    Without,
    On,
    Ignoring,
    GroupLeft,
    GroupRight,
    Offset,
    Start,
    End,
    Identifier,
    MetricIdentifier,
    Number,
    Duration,
    Str,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Token {
    pub kind: Tok,
    pub start: usize,
    pub end: usize,
}

/// A lexing failure: message and byte position, as Prometheus reports it.
#[derive(Debug, Clone)]
pub(crate) struct LexError {
    pub pos: usize,
    pub message: String,
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}
fn is_alpha(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}
fn is_alnum(c: char) -> bool {
    is_alpha(c) || c.is_ascii_digit()
}

fn keyword(word: &str) -> Option<Tok> {
    let lower = word.to_ascii_lowercase();
    Some(match lower.as_str() {
        "and" => Tok::Land,
        "or" => Tok::Lor,
        "unless" => Tok::Lunless,
        "atan2" => Tok::Atan2,
        "sum" | "avg" | "count" | "min" | "max" | "group" | "stddev" | "stdvar" | "topk"
        | "bottomk" | "count_values" | "quantile" | "limitk" | "limit_ratio" => Tok::Aggregator,
        "offset" => Tok::Offset,
        "by" => Tok::By,
        "without" => Tok::Without,
        "on" => Tok::On,
        "ignoring" => Tok::Ignoring,
        "group_left" => Tok::GroupLeft,
        "group_right" => Tok::GroupRight,
        "bool" => Tok::Bool,
        "start" => Tok::Start,
        "end" => Tok::End,
        "inf" | "nan" => Tok::Number,
        _ => return None,
    })
}

struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    start: usize,
    paren_depth: usize,
    brace_open: bool,
    bracket_open: bool,
    got_colon: bool,
    out: Vec<Token>,
}

/// Tokenizes the whole input. Comments are dropped. On a lexing error the
/// tokens before it are returned with the error; the parser reports the
/// error only when it reaches that point, as Prometheus' lazy lexer does.
pub(crate) fn lex(input: &str) -> (Vec<Token>, Option<LexError>) {
    let mut l = Lexer {
        input,
        pos: 0,
        start: 0,
        paren_depth: 0,
        brace_open: false,
        bracket_open: false,
        got_colon: false,
        out: Vec::new(),
    };
    match l.run() {
        Ok(()) => (l.out, None),
        Err(e) => (l.out, Some(e)),
    }
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<char> {
        self.input.get(self.pos..).and_then(|s| s.chars().next())
    }
    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        Some(c)
    }
    fn backup(&mut self, c: Option<char>) {
        if let Some(c) = c {
            self.pos -= c.len_utf8();
        }
    }
    fn accept(&mut self, valid: &str) -> bool {
        match self.peek() {
            Some(c) if valid.contains(c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }
    fn is(&self, valid: &str) -> bool {
        self.peek().is_some_and(|c| valid.contains(c))
    }
    fn emit(&mut self, kind: Tok) {
        self.out.push(Token {
            kind,
            start: self.start,
            end: self.pos,
        });
        self.start = self.pos;
    }
    fn err(&self, message: String) -> LexError {
        LexError {
            pos: self.start,
            message,
        }
    }
    fn text(&self) -> &'a str {
        self.input.get(self.start..self.pos).unwrap_or("")
    }
    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(is_space) {
            self.next();
        }
        self.start = self.pos;
    }

    fn run(&mut self) -> Result<(), LexError> {
        loop {
            if self.brace_open {
                self.lex_inside_braces()?;
                continue;
            }
            if self.input[self.pos..].starts_with('#') {
                self.skip_comment();
                continue;
            }
            let c = self.next();
            match c {
                None => {
                    if self.paren_depth != 0 {
                        return Err(self.err("unclosed left parenthesis".into()));
                    }
                    if self.bracket_open {
                        return Err(self.err("unclosed left bracket".into()));
                    }
                    self.emit(Tok::Eof);
                    return Ok(());
                }
                Some(c) if is_space(c) => self.skip_spaces(),
                Some(',') => self.emit(Tok::Comma),
                Some('*') => self.emit(Tok::Mul),
                Some('/') => self.emit(Tok::Div),
                Some('%') => self.emit(Tok::Mod),
                Some('+') => self.emit(Tok::Add),
                Some('-') => self.emit(Tok::Sub),
                Some('^') => self.emit(Tok::Pow),
                Some('=') => match self.peek() {
                    Some('=') => {
                        self.next();
                        self.emit(Tok::Eqlc)
                    }
                    Some('~') => {
                        return Err(self.err(format!(
                            "unexpected character after '=': {}",
                            go_quote_rune(Some('~'))
                        )))
                    }
                    _ => self.emit(Tok::Eql),
                },
                Some('!') => {
                    let t = self.next();
                    if t != Some('=') {
                        return Err(self.err(format!(
                            "unexpected character after '!': {}",
                            go_quote_rune(t)
                        )));
                    }
                    self.emit(Tok::Neq)
                }
                Some('<') => {
                    if self.accept("=") {
                        self.emit(Tok::Lte)
                    } else if self.accept("/") {
                        self.emit(Tok::TrimUpper)
                    } else {
                        self.emit(Tok::Lss)
                    }
                }
                Some('>') => {
                    if self.accept("=") {
                        self.emit(Tok::Gte)
                    } else if self.accept("/") {
                        self.emit(Tok::TrimLower)
                    } else {
                        self.emit(Tok::Gtr)
                    }
                }
                Some(c)
                    if c.is_ascii_digit()
                        || (c == '.' && self.peek().is_some_and(|d| d.is_ascii_digit())) =>
                {
                    self.backup(Some(c));
                    self.lex_number_or_duration()?;
                }
                Some(q @ ('"' | '\'')) => self.lex_string(q)?,
                Some('`') => self.lex_raw_string()?,
                Some(c) if is_alpha(c) || c == ':' => {
                    if !self.bracket_open {
                        self.backup(Some(c));
                        self.lex_keyword_or_identifier();
                    } else if c != ':' && self.duration_function_ahead(c) {
                        // `step`, `range`, `min_of`, `max_of` of duration
                        // expressions; emitted as identifiers.
                        while self.peek().is_some_and(is_alnum) {
                            self.next();
                        }
                        self.emit(Tok::Identifier);
                    } else if self.got_colon {
                        // Prometheus 2.42 reports any letter or colon here so.
                        return Err(
                            self.err(format!("unexpected colon {}", go_quote_rune(Some(c))))
                        );
                    } else if c == ':' {
                        self.emit(Tok::Colon);
                        self.got_colon = true;
                    } else {
                        return Err(self.err(format!(
                            "unexpected character: {}, expected {}",
                            go_quote_rune(Some(c)),
                            go_quote_rune(Some(':'))
                        )));
                    }
                }
                Some('(') => {
                    self.emit(Tok::LParen);
                    self.paren_depth += 1;
                }
                Some(')') => {
                    self.start = self.pos;
                    if self.paren_depth == 0 {
                        return Err(self.err(format!(
                            "unexpected right parenthesis {}",
                            go_quote_rune(Some(')'))
                        )));
                    }
                    self.start = self.pos - 1;
                    self.emit(Tok::RParen);
                    self.paren_depth -= 1;
                }
                Some('{') => {
                    self.emit(Tok::LBrace);
                    self.brace_open = true;
                }
                Some('[') => {
                    if self.bracket_open {
                        return Err(self.err(format!(
                            "unexpected left bracket {}",
                            go_quote_rune(Some('['))
                        )));
                    }
                    self.got_colon = false;
                    self.emit(Tok::LBracket);
                    self.skip_spaces();
                    self.bracket_open = true;
                    // A literal first: 2.42's lexing and messages. Anything
                    // else starts a 3.x duration expression (`[(1h+5m)]`,
                    // `[step()]`, `[-5m+35m]`).
                    let expr_start = self.peek().is_some_and(|c| "(+-".contains(c))
                        || self.duration_function_at(self.pos);
                    if !expr_start {
                        self.lex_duration()?;
                    }
                }
                Some(']') => {
                    if !self.bracket_open {
                        return Err(self.err(format!(
                            "unexpected right bracket {}",
                            go_quote_rune(Some(']'))
                        )));
                    }
                    self.emit(Tok::RBracket);
                    self.bracket_open = false;
                }
                Some('@') => self.emit(Tok::At),
                Some(c) => {
                    return Err(
                        self.err(format!("unexpected character: {}", go_quote_rune(Some(c))))
                    )
                }
            }
        }
    }

    /// Whether the word starting with `first` (already consumed) is one of
    /// the duration-expression functions, followed by `(`.
    fn duration_function_ahead(&self, first: char) -> bool {
        self.duration_function_at(self.pos - first.len_utf8())
    }

    fn duration_function_at(&self, begin: usize) -> bool {
        let rest = self.input.get(begin..).unwrap_or("");
        let end = rest.find(|c: char| !is_alnum(c)).unwrap_or(rest.len());
        let word = rest[..end].to_ascii_lowercase();
        let after = rest[end..].trim_start_matches(is_space);
        matches!(word.as_str(), "step" | "range" | "min_of" | "max_of") && after.starts_with('(')
    }

    fn skip_comment(&mut self) {
        while let Some(c) = self.peek() {
            if c == '\n' || c == '\r' {
                break;
            }
            self.next();
        }
        self.start = self.pos;
    }

    fn lex_inside_braces(&mut self) -> Result<(), LexError> {
        if self.input[self.pos..].starts_with('#') {
            self.skip_comment();
            return Ok(());
        }
        match self.next() {
            None => Err(self.err("unexpected end of input inside braces".into())),
            Some(c) if is_space(c) => {
                self.skip_spaces();
                Ok(())
            }
            Some(c) if is_alpha(c) => {
                while self.peek().is_some_and(is_alnum) {
                    self.next();
                }
                self.emit(Tok::Identifier);
                Ok(())
            }
            Some(',') => {
                self.emit(Tok::Comma);
                Ok(())
            }
            Some(q @ ('"' | '\'')) => self.lex_string(q),
            Some('`') => self.lex_raw_string(),
            Some('=') => {
                if self.accept("~") {
                    self.emit(Tok::EqlRegex)
                } else {
                    self.emit(Tok::Eql)
                }
                Ok(())
            }
            Some('!') => match self.next() {
                Some('~') => {
                    self.emit(Tok::NeqRegex);
                    Ok(())
                }
                Some('=') => {
                    self.emit(Tok::Neq);
                    Ok(())
                }
                nr => Err(self.err(format!(
                    "unexpected character after '!' inside braces: {}",
                    go_quote_rune(nr)
                ))),
            },
            Some('{') => Err(self.err(format!(
                "unexpected left brace {}",
                go_quote_rune(Some('{'))
            ))),
            Some('}') => {
                self.emit(Tok::RBrace);
                self.brace_open = false;
                Ok(())
            }
            Some(c) => Err(self.err(format!(
                "unexpected character inside braces: {}",
                go_quote_rune(Some(c))
            ))),
        }
    }

    fn lex_escape(&mut self, quote: char) -> Result<(), LexError> {
        let ch = self.next();
        let (mut n, base, max): (u32, u32, u32) = match ch {
            Some('a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\') => return Ok(()),
            Some(c) if c == quote => return Ok(()),
            Some('0'..='7') => (3, 8, 255),
            Some('x') => (2, 16, 255),
            Some('u') => (4, 16, 0x10FFFF),
            Some('U') => (8, 16, 0x10FFFF),
            None => return Err(self.err("escape sequence not terminated".into())),
            Some(c) => {
                return Err(self.err(format!("unknown escape sequence {}", go_unicode_verb(c))))
            }
        };
        let mut cur = if matches!(ch, Some('x' | 'u' | 'U')) {
            self.next()
        } else {
            ch
        };
        let mut x: u32 = 0;
        while n > 0 {
            let d = cur.and_then(|c| c.to_digit(16)).unwrap_or(16);
            if d >= base {
                return Err(match cur {
                    None => self.err("escape sequence not terminated".into()),
                    Some(c) => self.err(format!(
                        "illegal character {} in escape sequence",
                        go_unicode_verb(c)
                    )),
                });
            }
            x = x.saturating_mul(base).saturating_add(d);
            n -= 1;
            if n > 0 {
                cur = self.next();
            }
        }
        if x > max || (0xD800..0xE000).contains(&x) {
            return Err(self.err("escape sequence is an invalid Unicode code point".into()));
        }
        Ok(())
    }

    fn lex_string(&mut self, quote: char) -> Result<(), LexError> {
        loop {
            match self.next() {
                Some('\\') => self.lex_escape(quote)?,
                None | Some('\n') => return Err(self.err("unterminated quoted string".into())),
                Some(c) if c == quote => break,
                Some(_) => {}
            }
        }
        self.emit(Tok::Str);
        Ok(())
    }

    fn lex_raw_string(&mut self) -> Result<(), LexError> {
        loop {
            match self.next() {
                None => return Err(self.err("unterminated raw string".into())),
                Some('`') => break,
                Some(_) => {}
            }
        }
        self.emit(Tok::Str);
        Ok(())
    }

    fn lex_keyword_or_identifier(&mut self) {
        while self.peek().is_some_and(|c| is_alnum(c) || c == ':') {
            self.next();
        }
        let word = self.text();
        let kind = match keyword(word) {
            Some(k) => k,
            None if word.contains(':') => Tok::MetricIdentifier,
            None => Tok::Identifier,
        };
        self.emit(kind);
    }

    /// The first item inside `[`: Prometheus 2.42 requires a duration here;
    /// 3.x also takes a plain number of seconds, which we accept.
    fn lex_duration(&mut self) -> Result<(), LexError> {
        if self.scan_number() {
            self.emit(Tok::Number);
            return Ok(());
        }
        if self.accept_remaining_duration() {
            self.emit(Tok::Duration);
            return Ok(());
        }
        Err(self.err(format!("bad duration syntax: {}", go_quote(self.text()))))
    }

    fn lex_number_or_duration(&mut self) -> Result<(), LexError> {
        if self.scan_number() {
            self.emit(Tok::Number);
            return Ok(());
        }
        if self.accept_remaining_duration() {
            self.emit(Tok::Duration);
            return Ok(());
        }
        Err(self.err(format!(
            "bad number or duration syntax: {}",
            go_quote(self.text())
        )))
    }

    /// After the digits of a number that is not a complete number: a unit
    /// (`s m h d w y`, `ms`), optionally more `<digits><unit>` groups, and no
    /// alphanumeric character after. On success `pos` is at the end.
    fn accept_remaining_duration(&mut self) -> bool {
        if !self.accept("smhdwy") {
            return false;
        }
        self.accept("s");
        while self.accept("0123456789") {
            while self.accept("0123456789") {}
            if !self.accept("smhdw") {
                return false;
            }
            self.accept("s");
        }
        // Like Prometheus, a trailing alphanumeric is consumed so the error
        // quotes it (`bad duration syntax: "5mm"`).
        match self.peek() {
            Some(c) if is_alnum(c) => {
                self.next();
                false
            }
            _ => true,
        }
    }

    /// Prometheus' `scanNumber`: decimal, hex, `_` separators, one dot, one
    /// exponent; true only if no alphanumeric character follows.
    fn scan_number(&mut self) -> bool {
        let initial = self.pos;
        let mut digits = "0123456789";
        if self.accept("0") && self.accept("xX") {
            self.accept("_");
            digits = "0123456789abcdefABCDEF";
        }
        self.accept(".");
        self.accept(digits);
        let mut dot = false;
        let mut exp = false;
        let all: String = format!("{digits}._eE");
        while self.is(&all) {
            if self.is(".") && dot {
                self.accept(".");
                return false;
            }
            if self.is("eE") && exp && digits.len() == 10 {
                self.accept("eE");
                return false;
            }
            if self.accept(".") {
                dot = true;
                if self.accept("_.") {
                    return false;
                }
                if digits.len() > 10 {
                    return false;
                }
                continue;
            }
            if digits.len() == 10 && self.accept("eE") {
                exp = true;
                self.accept("+-");
                if self.accept("._eE") || self.peek().is_none() {
                    return false;
                }
                continue;
            }
            if self.accept("_") {
                if self.accept("._eE") || self.peek().is_none() {
                    return false;
                }
                continue;
            }
            while self.accept(digits) {}
        }
        if self.pos == initial {
            return false;
        }
        !self.peek().is_some_and(is_alnum)
    }
}
