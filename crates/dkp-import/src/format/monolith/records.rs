//! The records of one MonolithDKP team turned into rows.
//!
//! - `DKPTable` entries state balances (`dkp`) and lifetime totals.
//! - `DKPHistory` entries give one amount to a comma list of players, or a
//!   comma list of amounts, one per player, ending in the decay percentage
//!   (`"-22,-9,...,-20%"`).
//! - `Loot` entries charge their signed `cost` to one player.
//! - `Archive` entries carry the totals of history the addon pruned.
//! - A deletion leaves the original (marked `deletedby`) and a reversing
//!   entry (`deletes`); the pair folds to nothing. A reversal whose original
//!   was pruned is kept (the archive still counts the original); an original
//!   marked deleted whose reversal is missing is dropped (the addon applied
//!   the deletion). Both cases are warned about.
//!
//! Rows stream into the builder as they are read; only the rows a deletion
//! concerns are held until the end: reversals, rows marked `deletedby`, and
//! rows a reversal read earlier names (the addon writes newest first, so a
//! reversal comes before its original). An original that carries no
//! `deletedby` mark and comes before its reversal is already counted when
//! the reversal is read; the reversal is then kept as one of a pruned entry
//! (the pair still adds to nothing when the reversal negates it, as the
//! addon writes it). The addon marks every original it reverses.

use std::collections::HashSet;

use dkp_core::Points;

use crate::amount::{Decimal, magnitude};
use crate::builder::{Builder, Start};
use crate::error::{ImportError, invalid};
use crate::format::{item_from_link, unix_time};
use crate::lua::{Table, Value};
use crate::model::{HistoryRow, Kind, Loot, Posting, Recipient};
use crate::time::TimeZone;

/// The ids that pair a history or loot row with its deletion.
struct Ids {
    index: Option<String>,
    deletes: Option<String>,
    deleted_by: Option<String>,
}

/// What one team's records make.
pub(crate) struct Team {
    builder: Builder,
    /// The rows a deletion may fold away, with their ids: reversals, rows
    /// marked deleted, and rows a reversal already read names. Every other
    /// row is folded into the builder at once.
    held: Vec<(HistoryRow, Ids)>,
    /// The entries the reversals read so far name.
    targets: HashSet<String>,
    pub has_table: bool,
}

impl Team {
    pub fn new(start: Start) -> Team {
        let builder = start.builder(TimeZone::Utc);
        Team { builder, held: Vec::new(), targets: HashSet::new(), has_table: false }
    }

    /// A `DKPTable` entry: `{player, dkp, lifetime_gained, lifetime_spent, class}`.
    pub fn table_record(&mut self, record: &Table, line: u64) -> Result<(), ImportError> {
        self.has_table = true;
        let name = record.text("player").ok_or_else(|| invalid(line, "a DKP table entry has no player"))?;
        let player = self.builder.player(name, line)?;
        let class = record.text("class").and_then(|class| self.builder.class(class));
        self.builder.set_class(player, class);
        let balance = self.amount(record.get("dkp"), line, "dkp")?.unwrap_or(Points::ZERO);
        let earned = self.amount(record.get("lifetime_gained"), line, "lifetime_gained")?;
        let spent = self.amount(record.get("lifetime_spent"), line, "lifetime_spent")?.map(magnitude);
        let stated = self.builder.stated(player, balance);
        (stated.earned, stated.spent) = (earned, spent);
        Ok(())
    }

    /// A `DKPHistory` entry: `{players, dkp, date, reason, index, deletes?, deletedby?}`.
    pub fn history_record(&mut self, record: &Table, line: u64) -> Result<(), ImportError> {
        let names: Vec<&str> = record.text("players").unwrap_or("").split(',').map(str::trim).collect();
        let names: Vec<&str> = names.into_iter().filter(|name| !name.is_empty()).collect();
        let (amounts, decay) = match record.get("dkp") {
            Some(Value::Str(list)) if list.contains([',', '%']) => split_amounts(list, line)?,
            other => {
                let amount =
                    other.and_then(Value::decimal).ok_or_else(|| invalid(line, "a history entry has no dkp"))?;
                (vec![amount; names.len()], false)
            }
        };
        if amounts.len() != names.len() {
            self.builder.warn(format!(
                "line {line}: a history entry lists {} players but {} amounts; it was left out",
                names.len(),
                amounts.len()
            ));
            return Ok(());
        }
        let mut postings = Vec::with_capacity(names.len());
        for (name, amount) in names.into_iter().zip(amounts) {
            let amount = self.builder.points(amount, line)?;
            postings.push(Posting { player: self.builder.player(name, line)?, amount });
        }
        let kind = match (decay, postings.first()) {
            (true, _) => Kind::Decay,
            (false, Some(first)) if first.amount.is_positive() => Kind::Award,
            _ => Kind::Adjustment,
        };
        let reason = record.text("reason").map(str::to_owned);
        let row = HistoryRow { kind, at: unix_time(record, "date"), postings, reason, loot: None, raid: None, line };
        self.push(row, record)
    }

    /// A `Loot` entry: `{player, loot, zone, boss, date, cost, index, deletes?, deletedby?}`.
    pub fn loot_record(&mut self, record: &Table, line: u64) -> Result<(), ImportError> {
        let name = record.text("player").ok_or_else(|| invalid(line, "a loot entry has no player"))?;
        let player = self.builder.player(name, line)?;
        let cost = self.amount(record.get("cost"), line, "cost")?.unwrap_or(Points::ZERO);
        let postings = if cost == Points::ZERO { Vec::new() } else { vec![Posting { player, amount: cost }] };
        let loot = Loot {
            item: item_from_link(record.text("loot").unwrap_or("unknown item"), None),
            to: Recipient::Player(player),
            boss: record.text("boss").map(str::to_owned),
            zone: record.text("zone").map(str::to_owned),
            note: None,
        };
        let at = unix_time(record, "date");
        let row =
            HistoryRow { kind: Kind::Loot, at, postings, reason: None, loot: Some(Box::new(loot)), raid: None, line };
        self.push(row, record)
    }

    /// An `Archive` entry: the totals of pruned history, `{dkp, lifetime_gained, lifetime_spent, deleted?}`.
    pub fn archive_record(&mut self, name: &str, record: &Table, line: u64) -> Result<(), ImportError> {
        let amount = self.amount(record.get("dkp"), line, "dkp")?.unwrap_or(Points::ZERO);
        if amount == Points::ZERO {
            return Ok(());
        }
        let player = self.builder.player(name, line)?;
        self.builder.row(HistoryRow {
            kind: Kind::Carried,
            at: None,
            postings: vec![Posting { player, amount }],
            reason: Some("carried from pruned history".into()),
            loot: None,
            raid: None,
            line,
        })
    }

    fn amount(&mut self, value: Option<&Value>, line: u64, field: &str) -> Result<Option<Points>, ImportError> {
        let Some(value) = value else { return Ok(None) };
        let amount = value.decimal().ok_or_else(|| invalid(line, format!("{field} is not a number")))?;
        self.builder.points(amount, line).map(Some)
    }

    /// Folds a row in, or holds it back when a deletion may concern it.
    fn push(&mut self, row: HistoryRow, record: &Table) -> Result<(), ImportError> {
        let id = |name: &str| record.text(name).map(str::to_owned);
        let ids = Ids { index: id("index"), deletes: id("deletes"), deleted_by: id("deletedby") };
        let named = ids.index.as_ref().is_some_and(|index| self.targets.contains(index));
        if ids.deletes.is_none() && ids.deleted_by.is_none() && !named {
            return self.builder.row(row);
        }
        if let Some(target) = &ids.deletes {
            self.targets.insert(target.clone());
        }
        self.held.push((row, ids));
        Ok(())
    }

    /// Folds deletions and hands over the rows that stay.
    pub fn finish(mut self) -> Result<Builder, ImportError> {
        let keep = self.folded();
        for ((row, _), keep) in std::mem::take(&mut self.held).into_iter().zip(keep) {
            if keep {
                self.builder.row(row)?;
            }
        }
        Ok(self.builder)
    }

    /// Whether each row stays once deletions are folded, warning of the
    /// deletions that have no pair.
    fn folded(&mut self) -> Vec<bool> {
        let present: HashSet<&str> = self.held.iter().filter_map(|(_, ids)| ids.index.as_deref()).collect();
        let reversed: HashSet<&str> = self
            .held
            .iter()
            .filter_map(|(_, ids)| ids.deletes.as_deref())
            .filter(|target| present.contains(target))
            .collect();
        let (mut kept_reversals, mut dropped_originals) = (Vec::new(), Vec::new());
        let mut keep = Vec::with_capacity(self.held.len());
        for (row, ids) in &self.held {
            let keep_it = match (&ids.deletes, &ids.index, &ids.deleted_by) {
                (Some(target), _, _) if present.contains(target.as_str()) => false,
                (Some(_), _, _) => {
                    kept_reversals.push(row.line);
                    true
                }
                (None, Some(index), _) if reversed.contains(index.as_str()) => false,
                (None, _, Some(_)) => {
                    dropped_originals.push(row.line);
                    false
                }
                _ => true,
            };
            keep.push(keep_it);
        }
        if !kept_reversals.is_empty() {
            self.builder.warn(format!(
                "{} deletions reverse entries no longer in the file (pruned); the reversals were kept (lines {})",
                kept_reversals.len(),
                lines(&kept_reversals)
            ));
        }
        if !dropped_originals.is_empty() {
            self.builder.warn(format!(
                "{} entries are marked deleted but their reversal is missing; they were left out (lines {})",
                dropped_originals.len(),
                lines(&dropped_originals)
            ));
        }
        keep
    }
}

/// `"-22,-9,...,-20%"`: one amount per player, and whether a decay percentage ends the list.
fn split_amounts(list: &str, line: u64) -> Result<(Vec<Decimal>, bool), ImportError> {
    let mut parts: Vec<&str> = list.split(',').map(str::trim).collect();
    let decay = parts.last().is_some_and(|last| last.ends_with('%'));
    if decay {
        parts.pop();
    }
    if parts.last() == Some(&"") {
        parts.pop();
    }
    let amounts = parts
        .iter()
        .map(|part| {
            Decimal::parse(part).ok_or_else(|| invalid(line, format!("{part:?} in a list of amounts is not a number")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((amounts, decay))
}

fn lines(lines: &[u64]) -> String {
    let shown: Vec<String> = lines.iter().take(5).map(u64::to_string).collect();
    if lines.len() > 5 { format!("{}, ...", shown.join(", ")) } else { shown.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Format;
    use crate::lua::Key;

    fn entry(fields: &[(&str, &str)]) -> Table {
        let entries = fields.iter().map(|(key, text)| (Key::Name((*key).into()), Value::Str((*text).into())));
        Table { entries: entries.collect() }
    }

    #[test]
    fn only_rows_a_deletion_concerns_are_held() {
        let mut team = Team::new(Start { format: Format::Monolith, keep_rows: false });
        for index in 0..10_000 {
            let index = format!("Failing-{index}");
            team.history_record(&entry(&[("players", "Ana,Bors"), ("dkp", "5"), ("index", &index)]), 1).unwrap();
        }
        let reversal = [("players", "Ana"), ("dkp", "-5"), ("index", "Failing-x"), ("deletes", "Failing-y")];
        team.history_record(&entry(&reversal), 2).unwrap();
        let original = [("players", "Ana"), ("dkp", "5"), ("index", "Failing-y")];
        team.history_record(&entry(&original), 3).unwrap();
        assert_eq!(team.held.len(), 2, "the reversal and the original it names, not the 10,000 others");
        let (import, _) = team.finish().unwrap().finish().unwrap();
        assert_eq!(import.history.len(), 10_000);
        assert_eq!(import.history.sum(import.find("Ana").unwrap()), Points::parse("50000").ok());
    }
}
