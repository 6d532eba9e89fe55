//! RCLootCouncil's CSV export of loot history. The header row names the
//! columns; `player` (`Name-Realm`), `date` (`M/D/YY`), `time` and `item` are
//! required, `itemID`, `response`, `class`, `instance`, `boss`, `note` and
//! `isAwardReason` are read when present. Every row is a loot row with no
//! price: the export holds no balances and no points.
//!
//! An award for a reason (`isAwardReason` true) whose response names
//! disenchanting or the bank went to no player. Dates and times are the
//! exporting client's wall-clock time; the file states no zone.

use std::io::BufRead;

use crate::builder::{Builder, Start};
use crate::csv::{CsvReader, Record};
use crate::error::{ImportError, invalid};
use crate::format::item_from_link;
use crate::model::{HistoryRow, Kind, Loot, Recipient};
use crate::time::{At, LocalTime, TimeZone, parse_clock, parse_us_date};

pub(crate) fn read<R: BufRead>(input: R, start: Start) -> Result<Builder, ImportError> {
    let mut builder = start.builder(TimeZone::Unstated);
    let mut reader = CsvReader::new(input, false);
    let header = reader.header()?;
    let [player, date, time, item] = header.require(["player", "date", "time", "item"])?;
    let optional = |name: &str| header.column(name);
    let columns = Columns {
        player,
        date,
        time,
        item,
        item_id: optional("itemid"),
        response: optional("response"),
        class: optional("class"),
        instance: optional("instance"),
        boss: optional("boss"),
        note: optional("note"),
        award_reason: optional("isawardreason"),
    };
    while let Some(record) = reader.next_record()? {
        let row = loot_row(&mut builder, &columns, &record)?;
        builder.row(row)?;
    }
    Ok(builder)
}

struct Columns {
    player: usize,
    date: usize,
    time: usize,
    item: usize,
    item_id: Option<usize>,
    response: Option<usize>,
    class: Option<usize>,
    instance: Option<usize>,
    boss: Option<usize>,
    note: Option<usize>,
    award_reason: Option<usize>,
}

fn loot_row(builder: &mut Builder, columns: &Columns, record: &Record) -> Result<HistoryRow, ImportError> {
    let line = record.line;
    let optional = |column: Option<usize>| column.map(|column| record.get(column)).filter(|text| !text.is_empty());
    let response = optional(columns.response);
    let for_reason = optional(columns.award_reason).is_some_and(|flag| flag.eq_ignore_ascii_case("true"));
    let reason = response.map(str::to_lowercase).unwrap_or_default();
    let to = match (for_reason, reason.contains("disenchant"), reason.contains("bank")) {
        (true, true, _) => Recipient::Disenchanted,
        (true, false, true) => Recipient::Bank,
        _ => {
            let player = builder.player(record.get(columns.player), line)?;
            let class = optional(columns.class).and_then(|class| builder.class(class));
            builder.set_class(player, class);
            Recipient::Player(player)
        }
    };
    let id = optional(columns.item_id).and_then(|id| id.parse().ok());
    let notes: Vec<&str> = [response, optional(columns.note)].into_iter().flatten().collect();
    let loot = Loot {
        item: item_from_link(record.get(columns.item), id),
        to,
        boss: optional(columns.boss).map(str::to_owned),
        zone: optional(columns.instance).map(str::to_owned),
        note: (!notes.is_empty()).then(|| notes.join("; ")),
    };
    let at = moment(record.get(columns.date), record.get(columns.time), line)?;
    Ok(HistoryRow {
        kind: Kind::Loot,
        at: Some(at),
        postings: Vec::new(),
        reason: None,
        loot: Some(Box::new(loot)),
        raid: None,
        line,
    })
}

fn moment(date: &str, time: &str, line: u64) -> Result<At, ImportError> {
    let (year, month, day) =
        parse_us_date(date).ok_or_else(|| invalid(line, format!("{date:?} is not an M/D/YY date")))?;
    let (hour, minute, second) =
        parse_clock(time).ok_or_else(|| invalid(line, format!("{time:?} is not an HH:MM:SS time")))?;
    let local = LocalTime::new(year, month, day, hour, minute, second)
        .ok_or_else(|| invalid(line, format!("{date} {time} is not a calendar date and time")))?;
    Ok(At::Local(local))
}

#[cfg(test)]
mod tests {
    use crate::time::{At, LocalTime, TimeZone};
    use crate::{Class, ErrorKind, Format, Kind, Options, Recipient, read, read_rows};

    const FILE: &str = include_str!("../../tests/fixtures/rclc.csv");

    #[test]
    fn every_row_is_loot_at_a_local_time_without_points() {
        let (import, history) = read_rows(Format::RclcCsv, FILE.as_bytes(), &Options::default()).unwrap();
        assert_eq!(import.time_zone, TimeZone::Unstated);
        assert!(import.stated.is_empty());
        assert!(history.iter().all(|row| row.postings.is_empty() && row.loot.is_some()));
        assert_eq!(import.history.count(Kind::Loot), history.len() as u64);
        let first = &history[0];
        assert_eq!(first.at, Some(At::Local(LocalTime::new(2020, 3, 23, 2, 17, 50).unwrap())));
        let loot = first.loot.as_ref().unwrap();
        assert_eq!((loot.item.name.as_str(), loot.item.id), ("The Eye of Divinity", Some(18646)));
        assert_eq!(
            (loot.boss.as_deref(), loot.zone.as_deref()),
            (Some("Majordomo Executus"), Some("Molten Core-40 Player"))
        );
        assert_eq!(loot.note.as_deref(), Some("Best Available"));
        let second = history[1].loot.as_ref().unwrap();
        assert_eq!(second.note.as_deref(), Some("Offspec / PvP/Greed; garbage, might try for pvp"));
    }

    #[test]
    fn names_keep_their_realm_and_award_reasons_go_to_no_player() {
        let (import, history) = read_rows(Format::RclcCsv, FILE.as_bytes(), &Options::default()).unwrap();
        assert!(!import.realms_dropped);
        let names: Vec<&str> = import.players.iter().map(|player| player.name.as_str()).collect();
        assert_eq!(names, ["Booster-Netherwind", "Spear-Netherwind"]);
        assert_eq!(import.players[0].class, Some(Class::Priest));
        let to: Vec<Recipient> = history.iter().map(|row| row.loot.as_ref().unwrap().to).collect();
        let booster = Recipient::Player(import.find("booster-netherwind").unwrap());
        let spear = Recipient::Player(import.find("Spear-Netherwind").unwrap());
        assert_eq!(to, [booster, booster, Recipient::Disenchanted, Recipient::Bank, spear]);
    }

    #[test]
    fn missing_columns_and_bad_dates_name_their_line() {
        let error =
            read(Format::RclcCsv, &b"player,item,response\nA-B,[X],Pass\n"[..], &Options::default()).unwrap_err();
        assert_eq!(error.to_string(), "line 1: missing column(s): date, time");
        assert_eq!(error.kind, ErrorKind::MissingColumns("date, time".into()));
        let bad_date = "player,date,time,item\nA-B,3/23/20,02:17:50,[X]\nA-B,2020-03-23,02:17:50,[X]\n";
        let error = read(Format::RclcCsv, bad_date.as_bytes(), &Options::default()).unwrap_err();
        assert_eq!(error.to_string(), "line 3: \"2020-03-23\" is not an M/D/YY date");
        let bad_day = "player,date,time,item\nA-B,2/30/20,02:17:50,[X]\n";
        assert_eq!(read(Format::RclcCsv, bad_day.as_bytes(), &Options::default()).unwrap_err().line, Some(2));
    }
}
