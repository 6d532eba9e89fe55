//! A small RFC 4180 reader: fields separated by a delimiter, optionally in
//! double quotes (a quote inside doubled, line breaks allowed inside),
//! records ending in `\n` or `\r\n`. It reads one physical line at a time, so
//! memory is one record; a record is bounded (`MAX_RECORD_BYTES`). Each
//! record knows the line it starts on. Blank lines are skipped. Text must be
//! UTF-8: anything else is an error naming the line.
//!
//! The header row names the columns; they are matched without case or
//! surrounding spaces. With `detect`, a header holding `;` and no `,` (as
//! spreadsheets in many European locales save CSV) switches the delimiter.

use std::io::BufRead;

use crate::error::{ErrorKind, ImportError, syntax, truncated};

/// The longest record read, quoted line breaks included.
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// One row and the line it starts on.
pub(crate) struct Record {
    pub fields: Vec<String>,
    pub line: u64,
}

impl Record {
    /// A field by column index; a short row reads as empty.
    pub fn get(&self, column: usize) -> &str {
        self.fields.get(column).map_or("", |field| field.trim())
    }
}

/// The header row's column names.
pub(crate) struct Header {
    names: Vec<String>,
    line: u64,
}

impl Header {
    pub fn line(&self) -> u64 {
        self.line
    }

    pub fn column(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|known| known == name)
    }

    /// The indexes of required columns, or an error listing every missing one.
    pub fn require<const N: usize>(&self, names: [&str; N]) -> Result<[usize; N], ImportError> {
        let missing: Vec<&str> = names.iter().copied().filter(|name| self.column(name).is_none()).collect();
        if !missing.is_empty() {
            return Err(ImportError::at(self.line, ErrorKind::MissingColumns(missing.join(", "))));
        }
        Ok(names.map(|name| self.column(name).unwrap_or_default()))
    }
}

pub(crate) struct CsvReader<R> {
    input: R,
    next_line: u64,
    delimiter: u8,
    detect: bool,
    buffer: Vec<u8>,
}

impl<R: BufRead> CsvReader<R> {
    pub fn new(input: R, detect: bool) -> CsvReader<R> {
        CsvReader { input, next_line: 1, delimiter: b',', detect, buffer: Vec::new() }
    }

    /// The delimiter in use (`;` once detected).
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// The first record, as column names; an empty file is an error.
    pub fn header(&mut self) -> Result<Header, ImportError> {
        let record = self.next_record()?.ok_or_else(|| truncated(1, "the file is empty; a header row is needed"))?;
        let names = record.fields.iter().map(|name| name.trim().to_lowercase()).collect();
        Ok(Header { names, line: record.line })
    }

    /// The next non-blank record, or `None` at the end.
    pub fn next_record(&mut self) -> Result<Option<Record>, ImportError> {
        loop {
            let line = self.next_line;
            let Some(text) = self.physical_line()? else { return Ok(None) };
            if text.trim().is_empty() {
                continue;
            }
            if std::mem::take(&mut self.detect) && text.contains(';') && !text.contains(',') {
                self.delimiter = b';';
            }
            return self.parse(text, line).map(Some);
        }
    }

    /// Splits a record, reading further lines while a quoted field is open.
    fn parse(&mut self, mut text: String, line: u64) -> Result<Record, ImportError> {
        let delimiter = char::from(self.delimiter);
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut quoted = false;
        let mut position = 0;
        loop {
            let Some(character) = text[position..].chars().next() else {
                if !quoted {
                    fields.push(field);
                    return Ok(Record { fields, line });
                }
                let more = self.physical_line()?.ok_or_else(|| truncated(line, "a quoted field is never closed"))?;
                if text.len() + more.len() > MAX_RECORD_BYTES {
                    return Err(ImportError::at(line, ErrorKind::Syntax("a record is longer than 1 MiB".into())));
                }
                field.push('\n');
                text = more;
                position = 0;
                continue;
            };
            position += character.len_utf8();
            match (quoted, character) {
                (false, '"') if field.trim().is_empty() => {
                    field.clear();
                    quoted = true;
                }
                (false, c) if c == delimiter => fields.push(std::mem::take(&mut field)),
                (true, '"') if text[position..].starts_with('"') => {
                    field.push('"');
                    position += 1;
                }
                (true, '"') => {
                    quoted = false;
                    let rest = text[position..].trim_start_matches([' ', '\t']);
                    if !rest.is_empty() && !rest.starts_with(delimiter) {
                        return Err(syntax(self.next_line - 1, "a quote inside a quoted field must be doubled"));
                    }
                }
                (_, c) => field.push(c),
            }
        }
    }

    /// One line without its line break, as UTF-8.
    fn physical_line(&mut self) -> Result<Option<String>, ImportError> {
        let line = self.next_line;
        self.buffer.clear();
        let limit = (MAX_RECORD_BYTES + 2) as u64;
        let read = std::io::Read::take(&mut self.input, limit)
            .read_until(b'\n', &mut self.buffer)
            .map_err(|error| ImportError::io(error, line))?;
        if read == 0 {
            return Ok(None);
        }
        if self.buffer.len() as u64 >= limit && !self.buffer.ends_with(b"\n") {
            return Err(ImportError::at(line, ErrorKind::Syntax("a line is longer than 1 MiB".into())));
        }
        self.next_line += 1;
        while matches!(self.buffer.last(), Some(b'\n' | b'\r')) {
            self.buffer.pop();
        }
        let text = std::str::from_utf8(&self.buffer).map_err(|_| {
            ImportError::at(line, ErrorKind::Encoding("the line is not valid UTF-8; save the file as UTF-8".into()))
        })?;
        Ok(Some(text.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(text: &str) -> Result<Vec<(u64, Vec<String>)>, ImportError> {
        let mut reader = CsvReader::new(text.as_bytes(), true);
        let mut out = Vec::new();
        while let Some(record) = reader.next_record()? {
            out.push((record.line, record.fields));
        }
        Ok(out)
    }

    #[test]
    fn quoted_fields_hold_delimiters_quotes_and_line_breaks() {
        let rows = records("a,b,c\r\n\"x, y\",\"say \"\"hi\"\"\",\"two\nlines\"\n\nlast,,\n").unwrap();
        assert_eq!(rows[0], (1, vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(rows[1], (2, vec!["x, y".into(), "say \"hi\"".into(), "two\nlines".into()]));
        assert_eq!(rows[2], (5, vec!["last".into(), "".into(), "".into()]));
    }

    #[test]
    fn a_semicolon_header_switches_the_delimiter() {
        let rows = records("name;balance\nAna;12,5\n").unwrap();
        assert_eq!(rows[1].1, ["Ana", "12,5"]);
    }

    #[test]
    fn an_unclosed_quote_is_truncation_and_a_stray_quote_a_syntax_error() {
        let error = records("a,b\n\"open,\nstill open\n").unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(matches!(error.kind, ErrorKind::Truncated(_)));
        let error = records("a,b\n\"x\"y,z\n").unwrap_err();
        assert_eq!(error.line, Some(2));
        assert!(matches!(error.kind, ErrorKind::Syntax(_)));
    }

    #[test]
    fn invalid_utf8_names_its_line() {
        let mut reader = CsvReader::new(&b"a,b\nok,1\n\xFF\xFE,2\n"[..], false);
        reader.next_record().unwrap();
        reader.next_record().unwrap();
        let error = reader.next_record().err().unwrap();
        assert_eq!(error.line, Some(3));
        assert!(matches!(error.kind, ErrorKind::Encoding(_)));
    }

    #[test]
    fn missing_columns_are_all_named() {
        let mut reader = CsvReader::new(&b"Name , Date\n"[..], false);
        let header = reader.header().unwrap();
        assert_eq!(header.require(["name"]).unwrap(), [0]);
        let error = header.require(["name", "amount", "balance"]).unwrap_err();
        assert_eq!(error.kind, ErrorKind::MissingColumns("amount, balance".into()));
        assert_eq!(error.line, Some(1));
    }
}
