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

use crate::Format;
use crate::builder::Builder;
use crate::csv::{CsvReader, Header, Record};
use crate::error::{ErrorKind, ImportError, invalid};
use crate::model::{HistoryRow, Kind, Posting};
use crate::time::{At, TimeZone, parse_iso_local, parse_rfc3339};

pub(crate) fn read<R: BufRead>(input: R) -> Result<Builder, ImportError> {
    let mut builder = Builder::new(Format::Csv, TimeZone::Utc);
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
        builder.history.push(HistoryRow { kind, at: Some(at), postings, reason, loot: None, raid: None, line });
    }
    Ok(builder)
}

fn history_columns(header: &Header) -> Result<[usize; 3], ImportError> {
    if header.column("amount").is_none() && header.column("date").is_none() {
        let missing = "balance (for balances), or date and amount (for history)";
        return Err(ImportError::at(1, ErrorKind::MissingColumns(missing.into())));
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
