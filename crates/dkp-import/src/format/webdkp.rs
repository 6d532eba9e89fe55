//! WebDKP SavedVariables: `WebDKP_DkpTable[name]` holds each player's class
//! and one balance per DKP table (`dkp_1`, `dkp_2`, ...); `WebDKP_Log` holds
//! awards keyed by `"reason YYYY-MM-DD HH:MM:SS"`, each naming its table
//! (`tableid`), its players (`awarded`) and whether it paid for an item
//! (`foritem`). `WebDKP_Tables` names the tables.
//!
//! The table read is the one the `table` option names (by id or name), else
//! the file's only table, else table 1 with a warning. Since `WebDKP_Tables`
//! may come after the balances, players are kept until the end and the log
//! is folded per table as it is read (`log`); then only the chosen table's
//! are built. Dates are the game client's wall-clock time, zone unstated.

mod log;

use std::io::BufRead;

use dkp_core::Points;

use crate::Options;
use crate::amount::Decimal;
use crate::builder::{Builder, Start};
use crate::error::{ErrorKind, ImportError, invalid};
use crate::format::item_from_link;
use crate::lua::{self, Events, Key, Step, Table, Value, Visitor};
use crate::model::{HistoryRow, Kind, Loot, Posting, Recipient};
use crate::time::{At, TimeZone, parse_iso_local};

struct PendingPlayer {
    name: String,
    class: Option<String>,
    balances: Vec<(i64, Decimal)>,
    line: u64,
}

struct PendingLog {
    table: Option<i64>,
    names: Vec<(String, Option<String>)>,
    points: Decimal,
    at: Option<At>,
    reason: Option<String>,
    item: Option<String>,
    line: u64,
}

#[derive(Default)]
struct Reader {
    players: Vec<PendingPlayer>,
    /// The log folded per table, or (only for `read_rows`) kept whole.
    folded: log::Folded,
    log: Option<Vec<PendingLog>>,
    tables: Vec<(String, i64)>,
    alts: usize,
    found_table: bool,
}

pub(crate) fn read<R: BufRead>(input: R, options: &Options, start: Start) -> Result<Builder, ImportError> {
    let mut reader = Reader { log: start.keep_rows.then(Vec::new), ..Reader::default() };
    lua::walk(&mut Events::new(input), &mut reader)?;
    if !reader.found_table {
        return Err(ImportError::whole_file(ErrorKind::WrongShape("no WebDKP_DkpTable: not a WebDKP file".into())));
    }
    reader.build(options, start)
}

impl Visitor for Reader {
    fn step(&mut self, path: &[Key]) -> Step {
        let known = matches!(path[0].name(), Some("WebDKP_DkpTable" | "WebDKP_Log" | "WebDKP_Tables" | "WebDKP_Alts"));
        if path[0].name() == Some("WebDKP_DkpTable") {
            self.found_table = true;
        }
        match (known, path.len()) {
            (true, 1) => Step::Descend,
            (true, 2) => Step::Collect,
            _ => Step::Skip,
        }
    }

    fn record(&mut self, path: &[Key], value: Value, line: u64) -> Result<(), ImportError> {
        let key = path[1].to_text();
        match (path[0].name(), value) {
            (Some("WebDKP_DkpTable"), Value::Table(record)) => self.players.push(player(key, &record, line)),
            (Some("WebDKP_Log"), Value::Table(record)) => {
                let entry = log_entry(&key, &record, line)?;
                match &mut self.log {
                    Some(log) => log.push(entry),
                    None => self.folded.add(&entry),
                }
            }
            (Some("WebDKP_Tables"), Value::Table(record)) => {
                if let Some(id) = record.get("id").and_then(Value::integer) {
                    self.tables.push((key, id));
                }
            }
            (Some("WebDKP_Alts"), _) => self.alts += 1,
            _ => {}
        }
        Ok(())
    }
}

fn player(name: String, record: &Table, line: u64) -> PendingPlayer {
    let balances = record
        .entries
        .iter()
        .filter_map(|(key, value)| {
            let table = key.name()?.strip_prefix("dkp_")?.parse().ok()?;
            Some((table, value.decimal()?))
        })
        .collect();
    PendingPlayer { name, class: record.text("class").map(str::to_owned), balances, line }
}

fn log_entry(key: &str, record: &Table, line: u64) -> Result<PendingLog, ImportError> {
    let points =
        record.get("points").and_then(Value::decimal).ok_or_else(|| invalid(line, "a log entry has no points"))?;
    let names = record
        .table("awarded")
        .map(|awarded| {
            let named = |(key, value): &(Key, Value)| {
                let entry = value.table();
                let name =
                    entry.and_then(|entry| entry.text("name")).map(str::to_owned).unwrap_or_else(|| key.to_text());
                (name, entry.and_then(|entry| entry.text("class")).map(str::to_owned))
            };
            awarded.entries.iter().map(named).collect()
        })
        .unwrap_or_default();
    // The key ends with the date when the entry has no date of its own.
    let date = record.text("date").or_else(|| key.len().checked_sub(19).and_then(|at| key.get(at..)));
    let at = match date {
        Some(date) => Some(At::Local(
            parse_iso_local(date)
                .ok_or_else(|| invalid(line, format!("{date:?} is not a YYYY-MM-DD HH:MM:SS date")))?,
        )),
        None => None,
    };
    let for_item = record.get("foritem").and_then(Value::boolean).unwrap_or(false);
    Ok(PendingLog {
        table: record.get("tableid").and_then(Value::integer),
        names,
        points,
        at,
        reason: record.text("reason").map(str::to_owned),
        item: for_item.then(|| record.text("itemlink").unwrap_or("unknown item").to_owned()),
        line,
    })
}

impl Reader {
    fn build(self, options: &Options, start: Start) -> Result<Builder, ImportError> {
        let mut builder = start.builder(TimeZone::Unstated);
        let table = self.choose_table(options, &mut builder)?;
        if self.alts > 0 {
            builder.warn(format!("WebDKP_Alts lists {} alts; they are read as players of their own", self.alts));
        }
        for pending in &self.players {
            let player = builder.player(&pending.name, pending.line)?;
            let class = pending.class.as_deref().and_then(|class| builder.class(class));
            builder.set_class(player, class);
            if let Some((_, balance)) = pending.balances.iter().find(|(id, _)| *id == table) {
                let balance = builder.points(*balance, pending.line)?;
                builder.stated(player, balance);
            }
        }
        let Some(log) = self.log else {
            self.folded.build(&mut builder, table)?;
            return Ok(builder);
        };
        for entry in log.iter().filter(|entry| entry.table.is_none_or(|id| id == table)) {
            let row = log_row(&mut builder, entry)?;
            builder.row(row)?;
        }
        Ok(builder)
    }

    fn choose_table(&self, options: &Options, builder: &mut Builder) -> Result<i64, ImportError> {
        if let Some(wanted) = options.table.as_deref().map(str::trim) {
            let by_name = self.tables.iter().find(|(name, _)| name.eq_ignore_ascii_case(wanted)).map(|(_, id)| *id);
            return by_name.or_else(|| wanted.parse().ok()).ok_or_else(|| {
                ImportError::whole_file(ErrorKind::WrongShape(format!("no DKP table {wanted:?} in the file")))
            });
        }
        match self.tables.as_slice() {
            [(_, id)] => Ok(*id),
            [] => Ok(1),
            several => {
                let listed: Vec<String> = several.iter().map(|(name, id)| format!("'{name}' ({id})")).collect();
                builder.warn(format!("the file holds DKP tables {}; table 1 was read", listed.join(", ")));
                Ok(1)
            }
        }
    }
}

fn log_row(builder: &mut Builder, entry: &PendingLog) -> Result<HistoryRow, ImportError> {
    let amount = builder.points(entry.points, entry.line)?;
    let mut postings = Vec::with_capacity(entry.names.len());
    for (name, class) in &entry.names {
        let player = builder.player(name, entry.line)?;
        let class = class.as_deref().and_then(|class| builder.class(class));
        builder.set_class(player, class);
        postings.push(Posting { player, amount });
    }
    Ok(row(entry, amount, postings))
}

/// The row of an entry whose names are already players: an item paid for
/// is loot (charged only when it cost something), else an award or an
/// adjustment by its sign.
fn row(entry: &PendingLog, amount: Points, mut postings: Vec<Posting>) -> HistoryRow {
    let loot = match (&entry.item, postings.first()) {
        (Some(item), Some(first)) => Some(Box::new(Loot {
            item: item_from_link(item, None),
            to: Recipient::Player(first.player),
            boss: None,
            zone: None,
            note: None,
        })),
        _ => None,
    };
    let kind = match (&loot, amount.is_positive()) {
        (Some(_), _) => Kind::Loot,
        (None, true) => Kind::Award,
        (None, false) => Kind::Adjustment,
    };
    if kind == Kind::Loot {
        postings.retain(|posting| posting.amount != Points::ZERO);
    }
    HistoryRow { kind, at: entry.at, postings, reason: entry.reason.clone(), loot, raid: None, line: entry.line }
}

#[cfg(test)]
mod tests {
    use dkp_core::Points;

    use crate::testing::{assert_warns, points};

    use crate::time::{At, LocalTime, TimeZone};
    use crate::{ErrorKind, Format, Import, Kind, Options, read, read_rows, reconcile};

    const FILE: &str = include_str!("../../tests/fixtures/webdkp.lua");

    fn import(options: &Options) -> Import {
        read(Format::Webdkp, FILE.as_bytes(), options).unwrap()
    }

    #[test]
    fn lucey_and_lucey_are_one_member_whose_balances_add() {
        let import = import(&Options::default());
        let names: Vec<&str> = import.players.iter().map(|player| player.name.as_str()).collect();
        assert_eq!(names, ["Lucey", "Scyllá", "Feyà"]);
        assert_eq!(import.stated_balance(import.find("LUCEY").unwrap()), Some(points("158")));
        assert_eq!(import.stated_balance(import.find("Scyllá").unwrap()), Some(points("30")));
        assert_eq!(import.find("Scylla"), None);
        assert_eq!(import.stated_balance(import.find("feyà").unwrap()), Some(points("110.26")));
        assert_warns(
            &import,
            &[
                "'Lucey', 'lucey' are one player",
                "'Lucey' has 2 balance records; they are added: 158.00",
                "the file holds DKP tables 'Main Table' (1), 'Alt Table' (2); table 1 was read",
                "WebDKP_Alts lists 1 alts",
                "rounded half away from zero",
            ],
        );
    }

    #[test]
    fn the_log_gives_awards_and_paid_items_in_local_time() {
        let (import, history) = read_rows(Format::Webdkp, FILE.as_bytes(), &Options::default()).unwrap();
        assert_eq!(import.time_zone, TimeZone::Unstated);
        let kinds: Vec<Kind> = history.iter().map(|row| row.kind).collect();
        assert_eq!(kinds, [Kind::Award, Kind::Loot]);
        let award = &history[0];
        assert_eq!(award.at, Some(At::Local(LocalTime::new(2012, 12, 13, 23, 8, 42).unwrap())));
        assert_eq!(award.postings.len(), 2);
        let item = &history[1];
        // No `date` field: the date comes from the end of the key.
        assert_eq!(item.at, Some(At::Local(LocalTime::new(2012, 12, 14, 20, 15, 0).unwrap())));
        assert_eq!(item.postings[0].amount, points("-12.5"));
        let loot = item.loot.as_ref().unwrap();
        assert_eq!((loot.item.name.as_str(), loot.item.id), ("Vizier's Ruby Signet", Some(86813)));
        let mismatches: Vec<(String, Points, Points)> =
            reconcile(&import).unwrap().mismatches.into_iter().map(|m| (m.name, m.stated, m.rebuilt)).collect();
        assert_eq!(
            mismatches,
            [("Lucey".to_owned(), points("158"), points("17.5")), ("Feyà".to_owned(), points("110.26"), Points::ZERO)]
        );
    }

    #[test]
    fn the_table_option_reads_another_table_and_its_log() {
        for table in ["2", "alt table"] {
            let import = import(&Options { table: Some(table.into()), ..Options::default() });
            let lucey = import.find("Lucey").unwrap();
            assert_eq!(import.stated.len(), 1);
            assert_eq!(import.stated_balance(lucey), Some(points("5")));
            assert_eq!(import.history.len(), 1);
            assert!(reconcile(&import).unwrap().mismatches.is_empty());
        }
        let error =
            read(Format::Webdkp, FILE.as_bytes(), &Options { table: Some("Raid".into()), ..Options::default() });
        assert!(matches!(error.unwrap_err().kind, ErrorKind::WrongShape(_)));
    }

    #[test]
    fn a_file_without_a_dkp_table_is_not_webdkp() {
        let error = read(Format::Webdkp, &b"MonDKP_DKPTable = {}"[..], &Options::default()).unwrap_err();
        assert!(matches!(error.kind, ErrorKind::WrongShape(_)));
        let error =
            read(Format::Webdkp, &b"WebDKP_DkpTable = {\n  [\"A\"] = { [\"dkp_1\"] = 5 }"[..], &Options::default());
        assert_eq!(error.unwrap_err().line, Some(1));
    }
}
