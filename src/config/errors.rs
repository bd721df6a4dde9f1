//! Error types for configuration loading.
//!
//! Every error names the file, line and column it comes from, because
//! `klaxon check config` prints them as `FILE:LINE:COL: message` and an
//! operator must be able to jump straight to the offending node.

use std::fmt;

/// One problem found in a configuration file.
///
/// `line` and `column` are 1-based; `0` means the position is unknown (for
/// example when the file cannot be read at all), in which case `Display`
/// prints `FILE: message`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.message)
        } else {
            write!(
                f,
                "{}:{}:{}: {}",
                self.file, self.line, self.column, self.message
            )
        }
    }
}

/// All problems found in one load; never empty when returned as an error.
///
/// Collected rather than returned one by one so that a user fixing a file sees
/// every mistake in one `check config` run.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl ConfigErrors {
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// A source position, 1-based; `Pos::UNKNOWN` when the YAML library could not
/// tell (e.g. values that came through a flattening serde construct).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Pos {
    pub line: usize,
    pub column: usize,
}

impl Pos {
    pub(crate) const UNKNOWN: Pos = Pos { line: 0, column: 0 };

    /// Where the node is *defined*: for a value reached through an alias
    /// (`*name`) that is the anchored original, which is what the user has
    /// to edit.
    pub(crate) fn of<T>(s: &serde_saphyr::Spanned<T>) -> Pos {
        Pos::from_location(&s.defined)
    }

    pub(crate) fn from_location(l: &serde_saphyr::Location) -> Pos {
        Pos {
            line: usize::try_from(l.line()).unwrap_or(0),
            column: usize::try_from(l.column()).unwrap_or(0),
        }
    }
}

/// Accumulates semantic errors for one file while validation continues.
#[derive(Debug)]
pub(crate) struct Sink {
    file: String,
    errors: Vec<ConfigError>,
}

impl Sink {
    pub(crate) fn new(file: &str) -> Self {
        Sink {
            file: file.to_string(),
            errors: Vec::new(),
        }
    }

    /// Records an error. The same error at the same place is kept once: a
    /// node shared through an alias is validated at every use.
    pub(crate) fn push(&mut self, pos: Pos, message: impl Into<String>) {
        let e = ConfigError {
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            message: message.into(),
        };
        if !self.errors.contains(&e) {
            self.errors.push(e);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.errors.len()
    }

    /// Takes over errors a sub-parser collected with positions of its own.
    pub(crate) fn extend(&mut self, errors: ConfigErrors) {
        for e in errors.0 {
            if !self.errors.contains(&e) {
                self.errors.push(e);
            }
        }
    }

    pub(crate) fn file(&self) -> &str {
        &self.file
    }

    pub(crate) fn into_result<T>(mut self, value: T) -> Result<T, ConfigErrors> {
        if self.errors.is_empty() {
            Ok(value)
        } else {
            // Report in file order so the output reads top to bottom.
            self.errors.sort_by_key(|e| (e.line, e.column));
            Err(ConfigErrors(self.errors))
        }
    }
}

/// Turns a serde-saphyr error (syntax or type/shape error) into our form,
/// keeping its position but not its snippet rendering.
pub(crate) fn from_yaml_error(file: &str, err: &serde_saphyr::Error) -> ConfigError {
    use serde_saphyr::MessageFormatter;
    let inner = err.without_snippet();
    let message = serde_saphyr::DefaultMessageFormatter
        .format_message(inner)
        .into_owned();
    let pos = err
        .location()
        .map(|l| Pos::from_location(&l))
        .unwrap_or(Pos::UNKNOWN);
    ConfigError {
        file: file.to_string(),
        line: pos.line,
        column: pos.column,
        message: sanitize(&message),
    }
}

/// Replaces control characters (a message quoting hostile input could carry
/// terminal escapes or newlines) while keeping quotes readable.
fn sanitize(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}
