//! EQdkp Plus points export: `<response>` with `<info>` (`with_twink`,
//! `date` as `dd.mm.yy H:i:s`, a unix `timestamp`), `<players>` (each
//! `<player>` with `id`, `name`, `main_id`, `class_name` and, per multidkp
//! pool, `<points><multidkp_points>` with `points_current`,
//! `points_current_with_twink`, earned, spent, adjustment) and
//! `<multidkp_pools>`.
//!
//! The XML is streamed; each player is kept as a few strings until the end
//! (real exports hold 1,500-3,600 players), since `<info>` and the pools may
//! come in any order. Then (`members`): with twinks, one member per main with
//! its twinks as characters and the main's `points_current_with_twink` as the
//! stated balance; without, one member per player with `points_current`.
//! An XML document whose root is not `<response>` is not an EQdkp export.

mod members;

use std::io::BufRead;

use quick_xml::events::{BytesRef, Event};

use crate::Options;
use crate::builder::Builder;
use crate::error::{ErrorKind, ImportError, syntax, truncated};
use crate::text::LineCounter;

/// One `<player>` as text, parsed once the whole file is read.
#[derive(Default)]
struct PendingPlayer {
    id: String,
    name: String,
    main_id: String,
    class: String,
    points: Vec<PendingPoints>,
    line: u64,
}

/// One `<multidkp_points>` as text.
#[derive(Default)]
struct PendingPoints {
    pool: String,
    current: String,
    current_with_twink: String,
    earned: String,
    earned_with_twink: String,
    spent: String,
    spent_with_twink: String,
}

#[derive(Default)]
struct Export {
    with_twink: Option<String>,
    date: Option<String>,
    timestamp: Option<String>,
    players: Vec<PendingPlayer>,
    /// Pool ids and names from `<multidkp_pools>`.
    pools: Vec<(String, String)>,
    status: Option<String>,
    error: Option<String>,
    saw_players: bool,
}

pub(crate) fn read<R: BufRead>(input: R, options: &Options) -> Result<Builder, ImportError> {
    let export = parse(input)?;
    if export.status.as_deref() == Some("0") || export.error.is_some() {
        let message = export.error.unwrap_or_else(|| "no message".into());
        return Err(not_eqdkp(format!("it is an error answer from EQdkp Plus ({message})")));
    }
    if !export.saw_players {
        return Err(not_eqdkp("it has no <players> element".into()));
    }
    members::build(export, options)
}

fn not_eqdkp(reason: String) -> ImportError {
    ImportError::whole_file(ErrorKind::NotEqdkp(reason))
}

/// Streams the document into an `Export`.
fn parse<R: BufRead>(input: R) -> Result<Export, ImportError> {
    let mut reader = quick_xml::Reader::from_reader(LineCounter::new(input));
    // Not trimmed event by event: the spaces beside an entity (`Tom &amp; Jerry`) belong to
    // the text; `close` trims the whole of it.
    reader.config_mut().trim_text(false);
    let mut export = Export::default();
    let mut path: Vec<String> = Vec::new();
    let mut text = String::new();
    let mut buffer = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buffer)
            .map_err(|error| syntax(reader.get_ref().line(), format!("malformed XML: {error}")))?;
        // The reader consumes exactly up to the end of the event it returns.
        let line = reader.get_ref().line();
        match event {
            Event::Start(start) | Event::Empty(start)
                if path.is_empty() && start.local_name().as_ref() != b"response" =>
            {
                let root = String::from_utf8_lossy(start.local_name().as_ref()).into_owned();
                return Err(ImportError::at(line, ErrorKind::NotEqdkp(format!("the root element is <{root}>"))));
            }
            Event::Start(start) => {
                let name = element_name(start.local_name().as_ref(), line)?;
                export.open(&path, &name, line);
                path.push(name);
                text.clear();
            }
            Event::Empty(start) => {
                let name = element_name(start.local_name().as_ref(), line)?;
                export.open(&path, &name, line);
                export.close(&path, &name, "");
            }
            Event::End(_) => {
                let name = path.pop().unwrap_or_default();
                export.close(&path, &name, text.trim());
                text.clear();
            }
            Event::Text(content) => text.push_str(&content.xml10_content().map_err(|_| not_utf8(line))?),
            Event::CData(content) => text.push_str(&content.decode().map_err(|_| not_utf8(line))?),
            Event::GeneralRef(reference) => text.push_str(&resolve(&reference, line)?),
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
        buffer.clear();
    }
    if let Some(open) = path.last() {
        return Err(truncated(reader.get_ref().line(), format!("the element <{open}> is never closed")));
    }
    if export.status.is_none() && !export.saw_players {
        return Err(not_eqdkp("the document is empty or has no <players>".into()));
    }
    Ok(export)
}

fn element_name(bytes: &[u8], line: u64) -> Result<String, ImportError> {
    String::from_utf8(bytes.to_vec()).map_err(|_| not_utf8(line))
}

fn not_utf8(line: u64) -> ImportError {
    ImportError::at(line, ErrorKind::Encoding("the text is not valid UTF-8; export the file as UTF-8".into()))
}

/// `&amp;`, `&#233;` and the other predefined references.
fn resolve(reference: &BytesRef<'_>, line: u64) -> Result<String, ImportError> {
    let unknown = || syntax(line, "an unknown entity reference (&...;)");
    if let Some(character) = reference.resolve_char_ref().map_err(|_| unknown())? {
        return Ok(character.to_string());
    }
    let name = reference.decode().map_err(|_| not_utf8(line))?;
    quick_xml::escape::resolve_predefined_entity(&name).map(str::to_owned).ok_or_else(unknown)
}

/// Whether `path` ends with `tail`.
fn under(path: &[String], tail: &[&str]) -> bool {
    path.len() >= tail.len() && path[path.len() - tail.len()..].iter().zip(tail).all(|(have, want)| have == want)
}

impl Export {
    fn open(&mut self, path: &[String], name: &str, line: u64) {
        if path.len() == 1 && name == "players" {
            self.saw_players = true;
        }
        if path.len() == 2 && name == "player" && under(path, &["players"]) {
            self.players.push(PendingPlayer { line, ..PendingPlayer::default() });
        }
        if name == "multidkp_points"
            && path.len() == 4
            && under(path, &["player", "points"])
            && let Some(player) = self.players.last_mut()
        {
            player.points.push(PendingPoints::default());
        }
        if name == "multidkp_pool" && path.len() == 2 && under(path, &["multidkp_pools"]) {
            self.pools.push(Default::default());
        }
    }

    fn close(&mut self, path: &[String], name: &str, text: &str) {
        let value = text.to_owned();
        match path.len() {
            1 => match name {
                "status" => self.status = Some(value),
                "error" => self.error = Some(value),
                _ => {}
            },
            2 if under(path, &["info"]) => match name {
                "with_twink" => self.with_twink = Some(value),
                "date" => self.date = Some(value),
                "timestamp" => self.timestamp = Some(value),
                _ => {}
            },
            3 if under(path, &["players", "player"]) => self.player_field(name, value),
            3 if under(path, &["multidkp_pools", "multidkp_pool"]) => {
                if let Some(pool) = self.pools.last_mut() {
                    match name {
                        "id" => pool.0 = value,
                        "name" => pool.1 = value,
                        _ => {}
                    }
                }
            }
            5 if under(path, &["player", "points", "multidkp_points"]) => self.points_field(name, value),
            _ => {}
        }
    }

    fn player_field(&mut self, name: &str, value: String) {
        let Some(player) = self.players.last_mut() else { return };
        match name {
            "id" => player.id = value,
            "name" => player.name = value,
            "main_id" => player.main_id = value,
            "class_name" => player.class = value,
            _ => {}
        }
    }

    fn points_field(&mut self, name: &str, value: String) {
        let Some(points) = self.players.last_mut().and_then(|player| player.points.last_mut()) else { return };
        let field = match name {
            "multidkp_id" => &mut points.pool,
            "points_current" => &mut points.current,
            "points_current_with_twink" => &mut points.current_with_twink,
            "points_earned" => &mut points.earned,
            "points_earned_with_twink" => &mut points.earned_with_twink,
            "points_spent" => &mut points.spent,
            "points_spent_with_twink" => &mut points.spent_with_twink,
            _ => return,
        };
        *field = value;
    }
}

#[cfg(test)]
mod tests;
