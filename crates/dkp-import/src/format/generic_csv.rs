//! The documented generic CSV, for tools without a reader of their own and
//! for spreadsheets. A header row is required; columns are matched without
//! case and may come in any order:
//! - `name,balance`: one balance per row (a name twice adds up, with a warning);
//! - `name,date,amount,reason`: one history row per line (`reason` optional).
//!
//! An optional `class` column is read in both. Amounts are decimals with a
//! `.` (or a `,` in a file separated by `;`); more than two decimals are
//! rounded half away from zero, with a warning. Dates are `YYYY-MM-DD`,
//! `YYYY-MM-DD HH:MM:SS` (wall-clock time, zone unstated) or RFC 3339 with a
//! zone (`2026-11-26T18:00:00Z`, taken as that moment in UTC). Names are
//! compared without case; a `-Realm` suffix is part of the name here.

use std::io::BufRead;

use crate::builder::{Builder, Start};
use crate::csv::{CsvReader, Header, Record};
use crate::error::{ErrorKind, ImportError, invalid};
use crate::model::{HistoryRow, Kind, Posting};
use crate::time::{At, TimeZone, parse_iso_local, parse_rfc3339};

pub(crate) fn read<R: BufRead>(input: R, start: Start) -> Result<Builder, ImportError> {
    let mut builder = start.builder(TimeZone::Utc);
    let mut reader = CsvReader::new(input, true);
    let header = reader.header()?;
    let class = header.column("class");
    let decimal_comma = reader.delimiter() == b';';
    if header.column("balance").is_some() {
        let [name, balance] = header.require(["name", "balance"])?;
        while let Some(record) = reader.next_record()? {
            let player = player(&mut builder, &record, name, class)?;
            let amount = builder.points_text(&amount_text(record.get(balance), decimal_comma), record.line)?;
            builder.stated(player, amount);
        }
        return Ok(builder);
    }
    let [name, date, amount] = history_columns(&header)?;
    let reason = header.column("reason");
    while let Some(record) = reader.next_record()? {
        let line = record.line;
        let player = player(&mut builder, &record, name, class)?;
        let amount = builder.points_text(&amount_text(record.get(amount), decimal_comma), line)?;
        let at = moment(record.get(date), line)?;
        if matches!(at, At::Local(_)) {
            builder.time_zone = TimeZone::Unstated;
        }
        let kind = if amount.is_positive() { Kind::Award } else { Kind::Adjustment };
        let reason = reason.map(|column| record.get(column)).filter(|text| !text.is_empty()).map(str::to_owned);
        let postings = vec![Posting { player, amount }];
        builder.row(HistoryRow { kind, at: Some(at), postings, reason, loot: None, raid: None, line })?;
    }
    Ok(builder)
}

fn history_columns(header: &Header) -> Result<[usize; 3], ImportError> {
    if header.column("amount").is_none() && header.column("date").is_none() {
        let missing = "balance (for balances), or date and amount (for history)";
        return Err(ImportError::at(header.line(), ErrorKind::MissingColumns(missing.into())));
    }
    header.require(["name", "date", "amount"])
}

fn player(
    builder: &mut Builder,
    record: &Record,
    name: usize,
    class: Option<usize>,
) -> Result<crate::model::PlayerRef, ImportError> {
    let player = builder.player(record.get(name), record.line)?;
    let class = class.map(|column| record.get(column)).filter(|text| !text.is_empty());
    let class = class.and_then(|class| builder.class(class));
    builder.set_class(player, class);
    Ok(player)
}

fn amount_text(text: &str, decimal_comma: bool) -> String {
    if decimal_comma { text.replace(',', ".") } else { text.to_owned() }
}

fn moment(text: &str, line: u64) -> Result<At, ImportError> {
    if let Some(seconds) = parse_rfc3339(text) {
        return Ok(At::Unix(seconds));
    }
    parse_iso_local(text).map(At::Local).ok_or_else(|| {
        invalid(line, format!("{text:?} is not a date (YYYY-MM-DD, YYYY-MM-DD HH:MM:SS or RFC 3339 with a zone)"))
    })
}

#[cfg(test)]
mod tests {
    use dkp_core::Points;

    use crate::testing::points;

    use crate::time::{At, LocalTime, TimeZone};
    use crate::{Class, ErrorKind, Format, Import, Kind, Options, read, read_rows, reconcile};

    const BALANCES: &[u8] = include_bytes!("../../tests/fixtures/balances.csv");
    const HISTORY: &str = include_str!("../../tests/fixtures/history.csv");

    fn import(bytes: &[u8]) -> Import {
        read(Format::Csv, bytes, &Options::default()).unwrap()
    }

    #[test]
    fn name_balance_rows_state_balances() {
        let import = import(BALANCES);
        let names: Vec<&str> = import.players.iter().map(|player| player.name.as_str()).collect();
        assert_eq!(names, ["Ana", "Bors", "Cid, the Bold"]);
        assert_eq!(import.stated_balance(import.find("ana").unwrap()), Some(points("130.5")));
        assert_eq!(import.stated_balance(import.find("Cid, the Bold").unwrap()), Some(points("0.13")));
        assert_eq!(import.player(import.find("Bors").unwrap()).class, Some(Class::Warrior));
        let warnings = import.warnings.join("\n");
        assert!(warnings.contains("'Ana', 'ana' are one player"), "{warnings}");
        assert!(warnings.contains("(the first on line 5)"), "{warnings}");
        assert!(import.history.is_empty());
    }

    #[test]
    fn name_date_amount_rows_are_history_with_explicit_dates() {
        let (import, history) = read_rows(Format::Csv, HISTORY.as_bytes(), &Options::default()).unwrap();
        assert!(import.stated.is_empty());
        assert_eq!(import.time_zone, TimeZone::Unstated);
        let rows: Vec<(Kind, Option<At>, Points, Option<&str>)> =
            history.iter().map(|row| (row.kind, row.at, row.postings[0].amount, row.reason.as_deref())).collect();
        let local = |day, hour, minute| At::Local(LocalTime::new(2026, 11, day, hour, minute, 0).unwrap());
        assert_eq!(
            rows,
            [
                (Kind::Award, Some(At::Unix(1_795_716_000)), points("10"), Some("Boss kill")),
                (Kind::Award, Some(local(27, 0, 0)), points("25"), Some("Said \"thanks\"")),
                (Kind::Adjustment, Some(At::Unix(1_795_804_200)), points("-4.5"), Some("Late, twice")),
                (Kind::Adjustment, Some(local(28, 21, 15)), points("-5"), None),
            ]
        );
        let reconciled = reconcile(&import).unwrap();
        assert_eq!(
            reconciled.balances,
            [(import.find("Ana").unwrap(), points("5.5")), (import.find("Bors").unwrap(), points("20"))]
        );
    }

    #[test]
    fn semicolon_files_use_a_decimal_comma() {
        let import = import("Name;Balance\nAna;12,5\n".as_bytes());
        assert_eq!(import.stated_balance(import.find("Ana").unwrap()), Some(points("12.5")));
    }

    #[test]
    fn bad_csv_files_name_their_line() {
        let cases: [(&[u8], &str); 5] = [
            (
                b"name,points\nAna,5\n",
                "line 1: missing column(s): balance (for balances), or date and amount (for history)",
            ),
            (b"name,date\nAna,2026-01-01\n", "line 1: missing column(s): amount"),
            (b"name,balance\nAna,twelve\n", "line 2: \"twelve\" is not an amount (digits, a '.', at most one sign)"),
            (
                b"name,date,amount\nAna,26/11/2026,5\n",
                "line 2: \"26/11/2026\" is not a date (YYYY-MM-DD, YYYY-MM-DD HH:MM:SS or RFC 3339 with a zone)",
            ),
            (b"name,balance\n,5\n", "line 2: a player name is empty"),
        ];
        for (bytes, message) in cases {
            assert_eq!(read(Format::Csv, bytes, &Options::default()).unwrap_err().to_string(), message);
        }
        let empty = read(Format::Csv, &b""[..], &Options::default()).unwrap_err();
        assert!(matches!(empty.kind, ErrorKind::Truncated(_)));
    }
}
