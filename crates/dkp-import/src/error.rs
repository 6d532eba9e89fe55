//! The one error an import fails with. Every error that a place in the file
//! caused carries the line it was found on, so the message a user reads
//! ("line 42: ...") points at the spot to look at; the HTTP layer answers all
//! of them as 422 `invalid_import`.

use std::fmt;

/// Why a file could not be imported, and on which line (1-based) where that applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportError {
    pub line: Option<u64>,
    pub kind: ErrorKind,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The file ends inside a table, a string or a comment, or a record is cut short.
    #[error("the file ends too early: {0}")]
    Truncated(String),
    /// The text does not follow the format's syntax.
    #[error("{0}")]
    Syntax(String),
    /// The bytes are not UTF-8 text (a UTF-16 file, invalid UTF-8 where text is read).
    #[error("{0}")]
    Encoding(String),
    /// Tables nest deeper than any real export does.
    #[error("tables nest deeper than {0} levels")]
    TooDeep(usize),
    /// One record is larger than an import reads at once.
    #[error("a record is larger than {0} values")]
    RecordTooLarge(usize),
    /// A CSV header lacks columns the format needs.
    #[error("missing column(s): {0}")]
    MissingColumns(String),
    /// An XML file that is not an EQdkp Plus export.
    #[error("not an EQdkp Plus export: {0}")]
    NotEqdkp(String),
    /// The file parses but is not what the chosen format expects.
    #[error("{0}")]
    WrongShape(String),
    /// A value the import needs is malformed (an amount, a date, a name).
    #[error("{0}")]
    Invalid(String),
    /// Reading the input failed.
    #[error("the file could not be read: {0}")]
    Io(String),
}

impl ImportError {
    pub fn at(line: u64, kind: ErrorKind) -> ImportError {
        ImportError { line: Some(line), kind }
    }

    pub fn whole_file(kind: ErrorKind) -> ImportError {
        ImportError { line: None, kind }
    }

    pub(crate) fn io(error: std::io::Error, line: u64) -> ImportError {
        ImportError::at(line, ErrorKind::Io(error.to_string()))
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.kind),
            None => write!(f, "{}", self.kind),
        }
    }
}

impl std::error::Error for ImportError {}

/// Shorthand for the errors of a line.
pub(crate) fn syntax(line: u64, message: impl Into<String>) -> ImportError {
    ImportError::at(line, ErrorKind::Syntax(message.into()))
}

pub(crate) fn invalid(line: u64, message: impl Into<String>) -> ImportError {
    ImportError::at(line, ErrorKind::Invalid(message.into()))
}

pub(crate) fn truncated(line: u64, message: impl Into<String>) -> ImportError {
    ImportError::at(line, ErrorKind::Truncated(message.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_starts_with_the_line() {
        let error = ImportError::at(42, ErrorKind::TooDeep(200));
        assert_eq!(error.to_string(), "line 42: tables nest deeper than 200 levels");
        let error = ImportError::whole_file(ErrorKind::NotEqdkp("the root element is <html>".into()));
        assert_eq!(error.to_string(), "not an EQdkp Plus export: the root element is <html>");
    }
}
