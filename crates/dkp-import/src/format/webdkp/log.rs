//! WebDKP's log folded as it is read. Which DKP table is imported is known
//! only at the end (real files write `WebDKP_Log` before `WebDKP_DkpTable`
//! and `WebDKP_Tables`), so the entries of each table, and those naming no
//! table, are folded apart: per name its sum, where the file first writes it
//! and its first class; per table the counts, the dates, the first rounded
//! amount and the first error (raised only if that table is read). Memory
//! follows tables and players, not entries. `build` hands the chosen
//! table's to the builder as reading its entries one by one would.

use std::collections::{BTreeSet, HashMap};

use super::{PendingLog, row};
use crate::builder::{Builder, checked_name, checked_points};
use crate::class::Class;
use crate::error::ImportError;
use crate::history::History;
use crate::model::{PlayerRef, Posting};

/// Every table's log, folded.
#[derive(Default)]
pub(super) struct Folded {
    tables: Vec<(Option<i64>, TableLog)>,
    /// Counts entries and names in file order.
    seq: u64,
}

#[derive(Default)]
struct TableLog {
    names: Vec<LogName>,
    by_text: HashMap<String, usize>,
    /// Under refs that index `names`.
    history: History,
    unknown_classes: BTreeSet<String>,
    first_rounded: Option<u64>,
    /// The first error, with its place in the file; the table's later entries are not read.
    error: Option<(u64, ImportError)>,
}

struct LogName {
    text: String,
    seq: u64,
    line: u64,
    /// The first class the log gives the name, with its place in the file.
    class: Option<(u64, Class)>,
}

impl Folded {
    /// Folds one entry into its table's log.
    pub fn add(&mut self, entry: &PendingLog) {
        self.seq += 1;
        let at = self.seq;
        let index = match self.tables.iter().position(|(table, _)| *table == entry.table) {
            Some(index) => index,
            None => {
                self.tables.push((entry.table, TableLog::default()));
                self.tables.len() - 1
            }
        };
        let log = &mut self.tables[index].1;
        if log.error.is_none()
            && let Err(error) = log.fold(entry, &mut self.seq)
        {
            log.error = Some((at, error));
        }
    }

    /// Gives the builder the log of `table` and of the entries naming no table.
    pub fn build(self, builder: &mut Builder, table: i64) -> Result<(), ImportError> {
        let chosen: Vec<TableLog> =
            self.tables.into_iter().filter(|(id, _)| id.is_none_or(|id| id == table)).map(|(_, log)| log).collect();
        if let Some((_, error)) = chosen.iter().filter_map(|log| log.error.as_ref()).min_by_key(|(at, _)| *at) {
            return Err(error.clone());
        }
        let mut order: Vec<(u64, usize, usize)> = Vec::new();
        for (group, log) in chosen.iter().enumerate() {
            order.extend(log.names.iter().enumerate().map(|(index, name)| (name.seq, group, index)));
        }
        order.sort_unstable();
        let mut remaps: Vec<Vec<PlayerRef>> = chosen.iter().map(|log| vec![PlayerRef(0); log.names.len()]).collect();
        let mut classes: Vec<(u64, PlayerRef, Class)> = Vec::new();
        for (_, group, index) in order {
            let name = &chosen[group].names[index];
            let player = builder.player(&name.text, name.line)?;
            remaps[group][index] = player;
            classes.extend(name.class.map(|(at, class)| (at, player, class)));
        }
        classes.sort_unstable_by_key(|(at, _, _)| *at);
        classes.into_iter().for_each(|(_, player, class)| builder.set_class(player, Some(class)));
        if let Some(line) = chosen.iter().filter_map(|log| log.first_rounded).min() {
            builder.rounded_at(line);
        }
        for (log, remap) in chosen.into_iter().zip(&remaps) {
            log.unknown_classes.iter().for_each(|text| _ = builder.class(text));
            builder.absorb(log.history, remap)?;
        }
        Ok(())
    }
}

impl TableLog {
    fn fold(&mut self, entry: &PendingLog, seq: &mut u64) -> Result<(), ImportError> {
        let (amount, rounded) = checked_points(entry.points, entry.line)?;
        if rounded {
            self.first_rounded.get_or_insert(entry.line);
        }
        let mut postings = Vec::with_capacity(entry.names.len());
        for (text, class) in &entry.names {
            *seq += 1;
            let player = self.name(text, entry.line, *seq)?;
            if let Some(class) = class {
                self.class(player, class, *seq);
            }
            postings.push(Posting { player, amount });
        }
        self.history.add(&row(entry, amount, postings))
    }

    fn name(&mut self, text: &str, line: u64, seq: u64) -> Result<PlayerRef, ImportError> {
        let text = checked_name(text, line)?;
        let index = match self.by_text.get(text) {
            Some(index) => *index,
            None => {
                self.names.push(LogName { text: text.to_owned(), seq, line, class: None });
                self.by_text.insert(text.to_owned(), self.names.len() - 1);
                self.names.len() - 1
            }
        };
        Ok(PlayerRef(index as u32))
    }

    /// A class as `Builder::class` and `Builder::set_class` take it, kept for `build`.
    fn class(&mut self, player: PlayerRef, text: &str, seq: u64) {
        match Class::from_name(text.trim()) {
            Some(class) => {
                let slot = &mut self.names[player.index()].class;
                slot.get_or_insert((seq, class));
            }
            None => {
                self.unknown_classes.insert(text.to_owned());
            }
        }
    }
}
