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

use std::collections::HashSet;

use dkp_core::Points;

use crate::Format;
use crate::amount::{Decimal, magnitude};
use crate::builder::Builder;
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
    /// History and loot rows, and their ids at the same positions: kept
    /// apart, so that `finish` drops the ids and hands the rows over where
    /// they lie instead of copying a million of them.
    rows: Vec<HistoryRow>,
    ids: Vec<Ids>,
    pub has_table: bool,
}

impl Team {
    pub fn new() -> Team {
        let builder = Builder::new(Format::Monolith, TimeZone::Utc);
        Team { builder, rows: Vec::new(), ids: Vec::new(), has_table: false }
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
        self.push(row, record);
        Ok(())
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
        self.push(row, record);
        Ok(())
    }

    /// An `Archive` entry: the totals of pruned history, `{dkp, lifetime_gained, lifetime_spent, deleted?}`.
    pub fn archive_record(&mut self, name: &str, record: &Table, line: u64) -> Result<(), ImportError> {
        let amount = self.amount(record.get("dkp"), line, "dkp")?.unwrap_or(Points::ZERO);
        if amount == Points::ZERO {
            return Ok(());
        }
        let player = self.builder.player(name, line)?;
        self.builder.history.push(HistoryRow {
            kind: Kind::Carried,
            at: None,
            postings: vec![Posting { player, amount }],
            reason: Some("carried from pruned history".into()),
            loot: None,
            raid: None,
            line,
        });
        Ok(())
    }

    fn amount(&mut self, value: Option<&Value>, line: u64, field: &str) -> Result<Option<Points>, ImportError> {
        let Some(value) = value else { return Ok(None) };
        let amount = value.decimal().ok_or_else(|| invalid(line, format!("{field} is not a number")))?;
        self.builder.points(amount, line).map(Some)
    }

    fn push(&mut self, row: HistoryRow, record: &Table) {
        let id = |name: &str| record.text(name).map(str::to_owned);
        self.rows.push(row);
        self.ids.push(Ids { index: id("index"), deletes: id("deletes"), deleted_by: id("deletedby") });
    }

    /// Folds deletions and hands over the rows.
    pub fn finish(mut self) -> Builder {
        let mut keep = self.folded().into_iter();
        self.ids = Vec::new();
        self.rows.retain(|_| keep.next().unwrap_or(true));
        if self.builder.history.is_empty() {
            self.builder.history = self.rows;
        } else {
            self.builder.history.append(&mut self.rows);
        }
        self.builder
    }

    /// Whether each row stays once deletions are folded, warning of the
    /// deletions that have no pair.
    fn folded(&mut self) -> Vec<bool> {
        let present: HashSet<&str> = self.ids.iter().filter_map(|ids| ids.index.as_deref()).collect();
        let reversed: HashSet<&str> = self
            .ids
            .iter()
            .filter_map(|ids| ids.deletes.as_deref())
            .filter(|target| present.contains(target))
            .collect();
        let (mut kept_reversals, mut dropped_originals) = (Vec::new(), Vec::new());
        let mut keep = Vec::with_capacity(self.ids.len());
        for (ids, row) in self.ids.iter().zip(&self.rows) {
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
