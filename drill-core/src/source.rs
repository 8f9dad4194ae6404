//! Positions in scenario files, and errors that name them.

use std::fmt;
use std::ops::Range;

/// A position in a source file, 1-based, as editors show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Converts a byte offset into a 1-based line and column (columns count characters).
pub fn position(text: &str, offset: usize) -> Position {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = text[line_start..offset].chars().count() + 1;
    Position { line, column }
}

/// An error in a scenario file, pointing at the place and saying what to do.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SourceError {
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// What to do about it; empty when the message says it all.
    pub help: String,
}

impl SourceError {
    pub fn at(file: &str, text: &str, span: Option<Range<usize>>, message: impl Into<String>, help: impl Into<String>) -> Self {
        let pos = span.map_or(Position { line: 1, column: 1 }, |s| position(text, s.start));
        SourceError { file: file.to_string(), line: pos.line, column: pos.column, message: message.into(), help: help.into() }
    }
}

impl fmt::Display for SourceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)?;
        if !self.help.is_empty() {
            write!(f, "\n  help: {}", self.help)?;
        }
        Ok(())
    }
}

/// The most errors reported for one file (then one note that more were left out).
pub const MAX_ERRORS: usize = 100;

/// Collects the errors of one file: validation reports each problem here and goes on.
pub struct Collector<'t> {
    pub file: &'t str,
    pub text: &'t str,
    pub errors: Vec<SourceError>,
}

impl<'t> Collector<'t> {
    pub fn new(file: &'t str, text: &'t str) -> Self {
        Collector { file, text, errors: Vec::new() }
    }

    pub fn err(&mut self, span: Range<usize>, message: impl Into<String>, help: impl Into<String>) {
        // A hostile file could hold a million mistakes; past the cap, one note says so
        // (and every further error is dropped, so a file never takes quadratic time).
        match self.errors.len() {
            n if n < MAX_ERRORS => self.errors.push(SourceError::at(self.file, self.text, Some(span), message, help)),
            MAX_ERRORS => self.errors.push(SourceError::at(self.file, self.text, Some(span), format!("more than {MAX_ERRORS} errors; the rest are not shown"), "fix these first")),
            _ => {}
        }
    }

    /// The source text of a span (a value as the author wrote it).
    pub fn snippet(&self, span: &Range<usize>) -> &'t str {
        self.text.get(span.clone()).unwrap_or("").trim()
    }
}

/// All the errors found in one file (validation keeps going after the first).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct SourceErrors(pub Vec<SourceError>);

impl fmt::Display for SourceErrors {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_and_count_chars() {
        let t = "ab\ncdé\nf";
        assert_eq!(position(t, 0), Position { line: 1, column: 1 });
        assert_eq!(position(t, 3), Position { line: 2, column: 1 });
        assert_eq!(position(t, t.find('f').unwrap()), Position { line: 3, column: 1 });
        assert_eq!(position(t, t.len()), Position { line: 3, column: 2 });
    }

    #[test]
    fn display_names_file_line_column_and_help() {
        let e = SourceError::at("x.toml", "a\nbad = 1", Some(2..5), "unknown key `bad`", "remove it");
        assert_eq!(e.to_string(), "x.toml:2:1: unknown key `bad`\n  help: remove it");
    }
}
