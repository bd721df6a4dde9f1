//! Tokenizer for Go's text/template syntax.
//!
//! Positions are byte offsets into the whole template text because Go's
//! error messages report `line:column` computed from them, and Prometheus
//! users see those numbers in their annotations.

use super::TemplateError;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    Text(String),
    LeftDelim,
    RightDelim,
    Space,
    Ident(String),
    Field(String),
    Variable(String),
    Dot,
    Str(String, String),
    RawStr(String, String),
    Char(String),
    Number(String),
    Bool(bool),
    Nil,
    Pipe,
    LParen,
    RParen,
    Declare,
    Assign,
    Comma,
    Keyword(&'static str),
    Punct(char),
    Eof,
}

#[derive(Debug, Clone)]
pub struct Token {
    pub tok: Tok,
    pub pos: usize,
    pub line: usize,
}

const KEYWORDS: [&str; 10] = [
    "if", "else", "end", "range", "with", "define", "template", "block", "break", "continue",
];

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn line_of(src: &str, pos: usize) -> usize {
    1 + src.as_bytes()[..pos.min(src.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
}

/// Splits `src` into tokens, applying trim markers and dropping comments.
/// A lexing error does not discard the tokens before it:
/// Go's lexer runs lazily, so its parser reports an error in those tokens
/// (`function "is" not defined`) before the lexer reaches a later one
/// (`unclosed action`). The caller parses the tokens first and reports the
/// lexing error only when the parser got as far as it.
pub fn lex_lazy(name: &str, src: &str) -> (Vec<Token>, Option<TemplateError>) {
    let mut out: Vec<Token> = Vec::new();
    let res = lex_into(name, src, &mut out);
    out.push(Token {
        tok: Tok::Eof,
        pos: src.len(),
        line: 0,
    });
    // Lines in one forward pass: tokens are in source order, and counting
    // per token from the start would be quadratic in the template size.
    let b = src.as_bytes();
    let (mut line, mut at) = (1usize, 0usize);
    for t in &mut out {
        let to = t.pos.min(b.len());
        line += b[at.min(to)..to].iter().filter(|c| **c == b'\n').count();
        at = to;
        t.line = line;
    }
    (out, res.err())
}

fn lex_into(name: &str, src: &str, out: &mut Vec<Token>) -> Result<(), TemplateError> {
    let b = src.as_bytes();
    let mut pos = 0usize;
    let err = |pos: usize, msg: String| TemplateError::Parse {
        name: name.to_string(),
        line: line_of(src, pos),
        msg,
    };
    let mut trim_next_text = false;
    loop {
        // Text up to the next "{{".
        let start = pos;
        let next = src[pos..].find("{{").map(|i| pos + i);
        let end = next.unwrap_or(src.len());
        let mut text = &src[start..end];
        if trim_next_text {
            text = text.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8));
        }
        let Some(open) = next else {
            if !text.is_empty() {
                out.push(Token {
                    tok: Tok::Text(text.to_string()),
                    pos: start,
                    line: 0,
                });
            }
            break;
        };
        let mut after = open + 2;
        let left_trim = b.len() > after + 1 && b[after] == b'-' && is_space(b[after + 1]);
        if left_trim {
            text = text.trim_end_matches(|c: char| c.is_ascii() && is_space(c as u8));
            after += 2;
        }
        if !text.is_empty() {
            out.push(Token {
                tok: Tok::Text(text.to_string()),
                pos: start,
                line: 0,
            });
        }
        trim_next_text = false;
        pos = after;
        // Comment.
        if src[pos..].starts_with("/*") {
            let Some(close) = src[pos + 2..].find("*/") else {
                return Err(err(open, "unclosed comment".into()));
            };
            let mut q = pos + 2 + close + 2;
            let mut rtrim = false;
            if src[q..].starts_with(" -}}") {
                rtrim = true;
                q += 2;
            }
            if !src[q..].starts_with("}}") {
                return Err(err(open, "comment ends before closing delimiter".into()));
            }
            pos = q + 2;
            trim_next_text = rtrim;
            continue;
        }
        out.push(Token {
            tok: Tok::LeftDelim,
            pos: open,
            line: 0,
        });
        // Inside the action.
        let mut paren = 0i32;
        loop {
            if pos >= b.len() {
                return Err(err(pos, "unclosed action".into()));
            }
            let c = b[pos];
            let tpos = pos;
            let mk = |tok: Tok| Token {
                tok,
                pos: tpos,
                line: 0,
            };
            if src[pos..].starts_with(" -}}")
                || src[pos..].starts_with("\t-}}")
                || src[pos..].starts_with("\n-}}")
                || src[pos..].starts_with("\r-}}")
            {
                if paren > 0 {
                    return Err(err(pos, "unclosed left paren".into()));
                }
                out.push(mk(Tok::RightDelim));
                pos += 4;
                trim_next_text = true;
                break;
            }
            if src[pos..].starts_with("}}") {
                if paren > 0 {
                    return Err(err(pos, "unclosed left paren".into()));
                }
                out.push(mk(Tok::RightDelim));
                pos += 2;
                break;
            }
            if is_space(c) {
                let mut n = 0;
                while pos < b.len() && is_space(b[pos]) {
                    pos += 1;
                    n += 1;
                }
                // A space right before "-}}" belongs to the trim marker.
                if src[pos..].starts_with("-}}") {
                    pos -= 1;
                    if n == 1 {
                        continue;
                    }
                }
                out.push(mk(Tok::Space));
                continue;
            }
            match c {
                b'=' => {
                    out.push(mk(Tok::Assign));
                    pos += 1;
                }
                b':' => {
                    if b.get(pos + 1) != Some(&b'=') {
                        return Err(err(pos, "expected :=".into()));
                    }
                    out.push(mk(Tok::Declare));
                    pos += 2;
                }
                b'|' => {
                    out.push(mk(Tok::Pipe));
                    pos += 1;
                }
                b',' => {
                    out.push(mk(Tok::Comma));
                    pos += 1;
                }
                b'(' => {
                    paren += 1;
                    out.push(mk(Tok::LParen));
                    pos += 1;
                }
                b')' => {
                    paren -= 1;
                    if paren < 0 {
                        return Err(err(pos, "unexpected right paren".into()));
                    }
                    out.push(mk(Tok::RParen));
                    pos += 1;
                }
                b'"' => {
                    let mut q = pos + 1;
                    loop {
                        match b.get(q) {
                            None | Some(b'\n') => {
                                return Err(err(pos, "unterminated quoted string".into()))
                            }
                            Some(b'\\') => q += 2,
                            Some(b'"') => break,
                            _ => q += 1,
                        }
                    }
                    let raw = &src[pos..=q.min(b.len() - 1)];
                    let val = unquote_go(raw).map_err(|e| err(pos, e))?;
                    out.push(mk(Tok::Str(raw.to_string(), val)));
                    pos = q + 1;
                }
                b'`' => {
                    let Some(close) = src[pos + 1..].find('`') else {
                        return Err(err(pos, "unterminated raw quoted string".into()));
                    };
                    let raw = &src[pos..pos + close + 2];
                    out.push(mk(Tok::RawStr(
                        raw.to_string(),
                        raw[1..raw.len() - 1].to_string(),
                    )));
                    pos += close + 2;
                }
                b'\'' => {
                    let mut q = pos + 1;
                    loop {
                        match b.get(q) {
                            None | Some(b'\n') => {
                                return Err(err(pos, "unterminated character constant".into()))
                            }
                            Some(b'\\') => q += 2,
                            Some(b'\'') => break,
                            _ => q += 1,
                        }
                    }
                    let end = (q + 1).min(b.len());
                    out.push(mk(Tok::Char(src[pos..end].to_string())));
                    pos = end;
                }
                b'$' => {
                    let mut q = pos + 1;
                    while q < b.len()
                        && (b[q].is_ascii_alphanumeric() || b[q] == b'_' || b[q] >= 0x80)
                    {
                        q += 1;
                    }
                    q = snap(src, q);
                    out.push(mk(Tok::Variable(src[pos..q].to_string())));
                    pos = q;
                }
                b'.' => {
                    let nb = b.get(pos + 1).copied();
                    if nb.is_some_and(|d| d.is_ascii_digit()) && !prev_is_operand(out) {
                        pos = lex_number(src, pos, out, &err)?;
                    } else {
                        let mut q = pos + 1;
                        while q < b.len()
                            && (b[q].is_ascii_alphanumeric() || b[q] == b'_' || b[q] >= 0x80)
                        {
                            q += 1;
                        }
                        q = snap(src, q);
                        if q == pos + 1 {
                            out.push(mk(Tok::Dot));
                        } else {
                            out.push(mk(Tok::Field(src[pos..q].to_string())));
                        }
                        pos = q;
                    }
                }
                b'+' | b'-' | b'0'..=b'9' => {
                    pos = lex_number(src, pos, out, &err)?;
                }
                c if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                    let mut q = pos;
                    while q < b.len()
                        && (b[q].is_ascii_alphanumeric() || b[q] == b'_' || b[q] >= 0x80)
                    {
                        q += 1;
                    }
                    q = snap(src, q);
                    let word = &src[pos..q];
                    let tok = match word {
                        "true" => Tok::Bool(true),
                        "false" => Tok::Bool(false),
                        "nil" => Tok::Nil,
                        w => match KEYWORDS.iter().find(|k| **k == w) {
                            Some(k) => Tok::Keyword(k),
                            None => Tok::Ident(w.to_string()),
                        },
                    };
                    out.push(mk(tok));
                    pos = q;
                }
                c if c.is_ascii_graphic() => {
                    // Go emits other printable ASCII as a one-character item
                    // that the parser then rejects in context.
                    out.push(mk(Tok::Punct(c as char)));
                    pos += 1;
                }
                _ => {
                    let ch = src[pos..].chars().next().unwrap_or('?');
                    return Err(err(
                        pos,
                        format!(
                            "unrecognized character in action: {}",
                            crate::model::gofmt::go_unicode_verb(ch)
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Moves a byte index forward to the next char boundary.
fn snap(src: &str, mut q: usize) -> usize {
    while q < src.len() && !src.is_char_boundary(q) {
        q += 1;
    }
    q.min(src.len())
}

fn prev_is_operand(out: &[Token]) -> bool {
    matches!(out.last().map(|t| &t.tok), Some(Tok::RParen))
}

fn lex_number(
    src: &str,
    pos: usize,
    out: &mut Vec<Token>,
    err: &dyn Fn(usize, String) -> TemplateError,
) -> Result<usize, TemplateError> {
    let b = src.as_bytes();
    let mut q = pos;
    if q < b.len() && (b[q] == b'+' || b[q] == b'-') {
        q += 1;
    }
    let start_digits = q;
    while q < b.len()
        && (b[q].is_ascii_alphanumeric()
            || b[q] == b'.'
            || b[q] == b'_'
            || ((b[q] == b'+' || b[q] == b'-')
                && q > 0
                && matches!(b[q - 1], b'e' | b'E' | b'p' | b'P')))
    {
        q += 1;
    }
    let text = &src[pos..q];
    if q == start_digits
        || !text[start_digits - pos..].starts_with(|c: char| c.is_ascii_digit() || c == '.')
    {
        return Err(err(pos, format!("bad number syntax: {:?}", text)));
    }
    out.push(Token {
        tok: Tok::Number(text.to_string()),
        pos,
        line: 0,
    });
    Ok(q)
}

/// Go's `strconv.Unquote` for a double-quoted literal.
pub fn unquote_go(raw: &str) -> Result<String, String> {
    let body = raw
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(|| "invalid syntax".to_string())?;
    let mut out = String::with_capacity(body.len());
    let mut it = body.chars();
    let bad = || format!("invalid syntax: {raw}");
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let e = it.next().ok_or_else(bad)?;
        match e {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'a' => out.push('\x07'),
            'b' => out.push('\x08'),
            'f' => out.push('\x0c'),
            'v' => out.push('\x0b'),
            '\\' => out.push('\\'),
            '"' => out.push('"'),
            'x' | 'u' | 'U' => {
                let n = match e {
                    'x' => 2,
                    'u' => 4,
                    _ => 8,
                };
                let h: String = it.by_ref().take(n).collect();
                let v = u32::from_str_radix(&h, 16).map_err(|_| bad())?;
                if h.len() != n {
                    return Err(bad());
                }
                out.push(char::from_u32(v).ok_or_else(bad)?);
            }
            '0'..='7' => {
                let mut h = String::from(e);
                h.extend(it.by_ref().take(2));
                let v = u32::from_str_radix(&h, 8).map_err(|_| bad())?;
                out.push(char::from_u32(v).ok_or_else(bad)?);
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}
