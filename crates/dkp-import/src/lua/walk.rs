//! Walking a file by paths: a visitor says, for each table entry, whether to
//! go into it, collect it whole as a small `Value`, or skip it; the parser
//! streams over everything else without building anything.
//!
//! A collected record is bounded (`MAX_RECORD_VALUES`), so a file of any size
//! is read with memory for one record at a time plus what the visitor keeps.
//! Strings are checked to be UTF-8 only when collected: an invalid one is an
//! error naming its line, while a skipped part of a file is never decoded.

use std::io::BufRead;

use super::events::{Event, Events};
use super::value::{Key, Scalar, Table, Value};
use crate::error::{ErrorKind, ImportError, truncated};

/// The most values (scalars and tables) one collected record may hold.
pub const MAX_RECORD_VALUES: usize = 200_000;

/// What to do with one entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Go into a table and ask again for each of its entries.
    Descend,
    /// Build the entry as one `Value` and hand it to `Visitor::record`.
    Collect,
    /// Pass over it.
    Skip,
}

/// A reader of a SavedVariables file.
pub trait Visitor {
    /// Called with the keys from the global name down to an entry.
    fn step(&mut self, path: &[Key]) -> Step;

    /// Called with each entry `step` asked to collect, and the line it starts on.
    fn record(&mut self, path: &[Key], value: Value, line: u64) -> Result<(), ImportError>;
}

/// Streams a whole file through a visitor.
pub fn walk<R: BufRead>(events: &mut Events<R>, visitor: &mut impl Visitor) -> Result<(), ImportError> {
    let mut path: Vec<Key> = Vec::new();
    while let Some(event) = events.next_event()? {
        match event {
            Event::Open { key, line } => {
                path.push(key);
                match visitor.step(&path) {
                    Step::Descend => continue,
                    Step::Collect => {
                        let table = collect_table(events, line)?;
                        visitor.record(&path, Value::Table(table), line)?;
                    }
                    Step::Skip => skip_table(events, line)?,
                }
                path.pop();
            }
            Event::Scalar { key, value, line } => {
                path.push(key);
                if visitor.step(&path) == Step::Collect {
                    visitor.record(&path, decode(value, line)?, line)?;
                }
                path.pop();
            }
            Event::Close => {
                path.pop();
            }
        }
    }
    Ok(())
}

/// Builds the table just opened, up to its closing brace.
fn collect_table<R: BufRead>(events: &mut Events<R>, line: u64) -> Result<Table, ImportError> {
    let mut open: Vec<(Key, Table)> = vec![(Key::Index(0), Table::default())];
    let mut values = 0usize;
    loop {
        let event =
            events.next_event()?.ok_or_else(|| truncated(line, "the table opened on this line is never closed"))?;
        values += 1;
        if values > MAX_RECORD_VALUES {
            return Err(ImportError::at(line, ErrorKind::RecordTooLarge(MAX_RECORD_VALUES)));
        }
        match event {
            Event::Open { key, .. } => open.push((key, Table::default())),
            Event::Scalar { key, value, line } => {
                let value = decode(value, line)?;
                if let Some((_, table)) = open.last_mut() {
                    table.entries.push((key, value));
                }
            }
            Event::Close => {
                let Some((key, table)) = open.pop() else { break };
                match open.last_mut() {
                    Some((_, parent)) => parent.entries.push((key, Value::Table(table))),
                    None => return Ok(table),
                }
            }
        }
    }
    Err(truncated(line, "the table opened on this line is never closed"))
}

/// Passes over the table just opened, up to its closing brace.
fn skip_table<R: BufRead>(events: &mut Events<R>, line: u64) -> Result<(), ImportError> {
    let mut depth = 1usize;
    while depth > 0 {
        match events.next_event()? {
            Some(Event::Open { .. }) => depth += 1,
            Some(Event::Close) => depth -= 1,
            Some(Event::Scalar { .. }) => {}
            None => return Err(truncated(line, "the table opened on this line is never closed")),
        }
    }
    Ok(())
}

fn decode(scalar: Scalar, line: u64) -> Result<Value, ImportError> {
    Ok(match scalar {
        Scalar::Nil => Value::Nil,
        Scalar::Bool(flag) => Value::Bool(flag),
        Scalar::Number(number) => Value::Number(number),
        Scalar::Str(bytes) => Value::Str(String::from_utf8(bytes).map_err(|_| {
            ImportError::at(line, ErrorKind::Encoding("a string is not valid UTF-8; save the file as UTF-8".into()))
        })?),
    })
}
