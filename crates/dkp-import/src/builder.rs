//! What readers fill while they stream through a file, and the one place that
//! turns it into an `Import`.
//!
//! Readers name players by the text the file uses. Each distinct text gets a
//! provisional `PlayerRef`; only when the whole file is read is it known
//! whether the file mixes `Name` and `Name-Realm`, so `finish` computes the
//! comparison keys then, merges names that compare equal (adding their
//! balances and warning), and rewrites every reference to the merged players.
//!
//! History rows are folded into `History` as readers hand them over (`row`)
//! and dropped: memory follows the players, never the rows. Only a builder
//! made to keep rows (`keeping_rows`, for `read_rows`) holds them.

use std::collections::{BTreeSet, HashMap};

use dkp_core::Points;

use crate::amount::Decimal;
use crate::class::Class;
use crate::error::{ImportError, invalid};
use crate::history::History;
use crate::model::{HistoryRow, Import, PlayerRef, Raid, Recipient, Stated};
use crate::names;
use crate::time::{At, TimeZone};
use crate::{Format, merge};

/// Warnings kept in full; past this many only a count is added.
const MAX_WARNINGS: usize = 200;

/// A name as the file writes it, before merging.
pub(crate) struct RawName {
    pub text: String,
    pub class: Option<Class>,
    /// For a twink (alt) folded into a main: the main's provisional ref.
    pub main: Option<PlayerRef>,
}

/// What a reader needs to start its builder: the format, and whether rows
/// are kept (`read_rows`) or only folded (`read`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Start {
    pub format: Format,
    pub keep_rows: bool,
}

impl Start {
    pub fn builder(self, time_zone: TimeZone) -> Builder {
        let builder = Builder::new(self.format, time_zone);
        if self.keep_rows { builder.keeping_rows() } else { builder }
    }
}

/// A name as a player's name may be written, trimmed; blank names are refused.
pub(crate) fn checked_name(text: &str, line: u64) -> Result<&str, ImportError> {
    let text = text.trim();
    if text.is_empty() {
        return Err(invalid(line, "a player name is empty"));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(line, format!("the player name {text:?} holds control characters")));
    }
    Ok(text)
}

/// An amount in hundredths, and whether extra decimals were rounded.
pub(crate) fn checked_points(amount: Decimal, line: u64) -> Result<(Points, bool), ImportError> {
    let rounded = amount.to_points().map_err(|error| invalid(line, format!("an amount: {error}")))?;
    Ok((rounded.points, rounded.rounded))
}

/// The import being built.
pub(crate) struct Builder {
    format: Format,
    pub(crate) names: Vec<RawName>,
    by_text: HashMap<String, PlayerRef>,
    pub(crate) stated: Vec<Stated>,
    history: History,
    /// The rows themselves, only for `read_rows`.
    kept: Option<Vec<HistoryRow>>,
    pub(crate) raids: Vec<Raid>,
    warnings: Vec<String>,
    dropped_warnings: usize,
    unknown_classes: BTreeSet<String>,
    first_rounded_line: Option<u64>,
    pub(crate) time_zone: TimeZone,
    pub(crate) exported_at: Option<At>,
}

impl Builder {
    pub fn new(format: Format, time_zone: TimeZone) -> Builder {
        Builder {
            format,
            names: Vec::new(),
            by_text: HashMap::new(),
            stated: Vec::new(),
            history: History::default(),
            kept: None,
            raids: Vec::new(),
            warnings: Vec::new(),
            dropped_warnings: 0,
            unknown_classes: BTreeSet::new(),
            first_rounded_line: None,
            time_zone,
            exported_at: None,
        }
    }

    /// A builder that also keeps every row it folds, for `read_rows`.
    pub fn keeping_rows(mut self) -> Builder {
        self.kept = Some(Vec::new());
        self
    }

    /// Folds one history row into the sums and counts; the row itself is
    /// dropped unless rows are kept.
    pub fn row(&mut self, row: HistoryRow) -> Result<(), ImportError> {
        self.history.add(&row)?;
        if let Some(kept) = &mut self.kept {
            kept.push(row);
        }
        Ok(())
    }

    /// The provisional ref of a name; blank names are refused.
    pub fn player(&mut self, text: &str, line: u64) -> Result<PlayerRef, ImportError> {
        let text = checked_name(text, line)?;
        if let Some(found) = self.by_text.get(text) {
            return Ok(*found);
        }
        let player = PlayerRef(self.names.len() as u32);
        self.names.push(RawName { text: text.to_owned(), class: None, main: None });
        self.by_text.insert(text.to_owned(), player);
        Ok(player)
    }

    /// The provisional ref of a name the file already used, without adding it.
    pub fn known(&self, text: &str) -> Option<PlayerRef> {
        self.by_text.get(text.trim()).copied()
    }

    /// Records a player's class the first time the file gives one.
    pub fn set_class(&mut self, player: PlayerRef, class: Option<Class>) {
        let slot = &mut self.names[player.index()].class;
        if slot.is_none() {
            *slot = class;
        }
    }

    /// Folds a twink into its main: both become one member.
    pub fn set_main(&mut self, twink: PlayerRef, main: PlayerRef) {
        if twink != main {
            self.names[twink.index()].main = Some(main);
        }
    }

    /// The class a file's class name means; unknown names are warned about
    /// once, except `UNKNOWN`: MonolithDKP's own word for a class it does not
    /// know (its colour key), which the monolith export writes too.
    pub fn class(&mut self, name: &str) -> Option<Class> {
        let name = name.trim();
        let class = Class::from_name(name);
        if class.is_none() && !name.is_empty() && !name.eq_ignore_ascii_case(crate::export::UNKNOWN_CLASS) {
            self.unknown_classes.insert(name.to_owned());
        }
        class
    }

    /// An amount in hundredths; extra decimals are rounded and remembered for one warning.
    pub fn points(&mut self, amount: Decimal, line: u64) -> Result<Points, ImportError> {
        let (points, rounded) = checked_points(amount, line)?;
        if rounded {
            self.rounded_at(line);
        }
        Ok(points)
    }

    /// Remembers where an amount was rounded, for the warning naming the first.
    pub fn rounded_at(&mut self, line: u64) {
        self.first_rounded_line.get_or_insert(line);
    }

    /// Folds in history a reader folded itself, under its own refs: `remap`
    /// gives the builder's ref of each.
    pub fn absorb(&mut self, history: History, remap: &[PlayerRef]) -> Result<(), ImportError> {
        self.history.absorb(history, remap)
    }

    /// An amount written as text (CSV, XML).
    pub fn points_text(&mut self, text: &str, line: u64) -> Result<Points, ImportError> {
        let amount = Decimal::parse(text.trim())
            .ok_or_else(|| invalid(line, format!("{:?} is not an amount (digits, a '.', at most one sign)", text)))?;
        self.points(amount, line)
    }

    pub fn warn(&mut self, warning: impl Into<String>) {
        if self.warnings.len() < MAX_WARNINGS {
            self.warnings.push(warning.into());
        } else {
            self.dropped_warnings += 1;
        }
    }

    pub fn stated(&mut self, player: PlayerRef, balance: Points) -> &mut Stated {
        self.stated.push(Stated { player, balance, earned: None, spent: None });
        let last = self.stated.len() - 1;
        &mut self.stated[last]
    }

    /// Merges names, adds up the history of merged names, closes the
    /// warnings; with the kept rows (if kept) rewritten to the merged
    /// players, oldest first.
    pub fn finish(mut self) -> Result<(Import, Vec<HistoryRow>), ImportError> {
        let uses_realms = self.format.uses_realms();
        let drop_realms = uses_realms && names::mixes_forms(self.names.iter().map(|name| name.text.as_str()));
        let mut merged = merge::merge_players(&self.names, uses_realms, drop_realms);
        std::mem::take(&mut merged.warnings).into_iter().for_each(|warning| self.warn(warning));
        let remap = |player: PlayerRef| merged.final_ref[player.index()];
        let (stated, stated_warnings) = merge::merge_stated(&self.stated, &remap, &merged.players)?;
        stated_warnings.into_iter().for_each(|warning| self.warn(warning));
        let history = std::mem::take(&mut self.history).remapped(&remap, merged.players.len())?;
        let mut rows = self.kept.take().unwrap_or_default();
        for row in &mut rows {
            merge::remap_postings(&mut row.postings, &remap)?;
            if let Some(Recipient::Player(player)) = row.loot.as_mut().map(|loot| &mut loot.to) {
                *player = remap(*player);
            }
        }
        rows.sort_by_key(|row| row.at.map(At::sort_key));
        for raid in &mut self.raids {
            raid.attendance.iter_mut().for_each(|stay| stay.player = remap(stay.player));
        }
        self.close_warnings();
        let import = Import {
            format: self.format,
            players: merged.players,
            stated,
            history,
            raids: self.raids,
            warnings: self.warnings,
            time_zone: self.time_zone,
            exported_at: self.exported_at,
            realms_dropped: drop_realms,
        };
        Ok((import, rows))
    }

    fn close_warnings(&mut self) {
        if let Some(line) = self.first_rounded_line {
            self.warnings.push(format!(
                "amounts with more than two decimals were rounded half away from zero to hundredths (the first on line {line})"
            ));
        }
        if !self.unknown_classes.is_empty() {
            let list: Vec<&str> = self.unknown_classes.iter().map(String::as_str).collect();
            self.warnings.push(format!("unknown class names, kept without a class: {}", list.join(", ")));
        }
        if self.dropped_warnings > 0 {
            self.warnings.push(format!("{} more warnings not shown", self.dropped_warnings));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Kind, Posting};
    use crate::testing::points;

    fn award(player: PlayerRef, line: u64) -> HistoryRow {
        let postings = vec![Posting { player, amount: points("1.5") }];
        HistoryRow {
            kind: Kind::Award,
            at: Some(At::Unix(line as i64)),
            postings,
            reason: None,
            loot: None,
            raid: None,
            line,
        }
    }

    #[test]
    fn folded_rows_leave_room_for_players_only() {
        let mut builder = Start { format: Format::Csv, keep_rows: false }.builder(TimeZone::Utc);
        let players: Vec<PlayerRef> =
            ["Ana", "Bors", "ana"].iter().map(|name| builder.player(name, 1).unwrap()).collect();
        for line in 0..100_000 {
            builder.row(award(players[line as usize % 3], line)).unwrap();
        }
        assert!(builder.kept.is_none());
        assert!(builder.history.players_held() <= 8, "{} sums held", builder.history.players_held());
        let (import, rows) = builder.finish().unwrap();
        assert!(rows.is_empty());
        assert_eq!((import.history.len(), import.history.count(Kind::Award)), (100_000, 100_000));
        assert_eq!(import.history.span(), Some((At::Unix(0), At::Unix(99_999))));
        let ana = import.find("ana").unwrap();
        assert_eq!(import.history.sum(ana), Some(points("100000.5")));
    }

    #[test]
    fn kept_rows_point_at_merged_players_oldest_first() {
        let mut builder = Start { format: Format::Csv, keep_rows: true }.builder(TimeZone::Utc);
        let (ana, other_ana) = (builder.player("Ana", 1).unwrap(), builder.player("ana", 2).unwrap());
        builder.row(award(other_ana, 9)).unwrap();
        builder.row(award(ana, 3)).unwrap();
        let (import, rows) = builder.finish().unwrap();
        let merged = import.find("Ana").unwrap();
        let lines: Vec<(u64, PlayerRef)> = rows.iter().map(|row| (row.line, row.postings[0].player)).collect();
        assert_eq!(lines, [(3, merged), (9, merged)]);
        assert_eq!(import.history.sum(merged), Some(points("3")));
    }
}
