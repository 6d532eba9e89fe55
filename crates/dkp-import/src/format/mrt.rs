//! MizusRaidTracker SavedVariables: `MRT_RaidLog` is a list of raids, each
//! with `Players` (`Name`, `Join`, `Leave`), `Bosskills` (`Name`, `Date`) and
//! `Loot` (`Looter`, `DKPValue`, `BossNumber`, `Time`, ...). Each raid becomes
//! a `Raid` with its attendance and kills, and each item a loot row charging
//! `DKPValue` to its looter. MRT states no balances. Classes come from
//! `MRT_PlayerDB` where it knows the players. Times are unix times, so UTC.
//!
//! MRT's own markers are honoured: loot to `disenchanted` or `bank` goes to
//! no player, loot marked `_deleted_` is left out, and the `_TrashMobLoot_`
//! pseudo-boss (loot before the first kill) is not a kill.

use std::io::BufRead;

use dkp_core::Points;

use crate::builder::{Builder, Start};
use crate::error::{ErrorKind, ImportError, invalid};
use crate::format::{charge, item_from_link, record_table, unix_time};
use crate::lua::{self, Events, Key, Step, Table, Value, Visitor};
use crate::model::{Attendance, HistoryRow, Kill, Kind, Loot, Raid, Recipient};
use crate::time::{At, TimeZone};

const TRASH: &str = "_TrashMobLoot_";

/// A boss kill as loot refers to it, by its key in `Bosskills`.
struct Boss {
    key: Key,
    name: String,
    at: Option<At>,
}

struct Reader {
    builder: Builder,
    classes: Vec<(String, String)>,
    found_log: bool,
}

pub(crate) fn read<R: BufRead>(input: R, start: Start) -> Result<Builder, ImportError> {
    let mut reader = Reader { builder: start.builder(TimeZone::Utc), classes: Vec::new(), found_log: false };
    lua::walk(&mut Events::new(input), &mut reader)?;
    if !reader.found_log {
        return Err(ImportError::whole_file(ErrorKind::WrongShape(
            "no MRT_RaidLog: not a MizusRaidTracker file".into(),
        )));
    }
    let mut builder = reader.builder;
    for (name, class) in &reader.classes {
        if let Some(player) = builder.known(name) {
            let class = builder.class(class);
            builder.set_class(player, class);
        }
    }
    Ok(builder)
}

impl Visitor for Reader {
    fn step(&mut self, path: &[Key]) -> Step {
        match (path[0].name(), path.len()) {
            (Some("MRT_RaidLog"), 1) => {
                self.found_log = true;
                Step::Descend
            }
            (Some("MRT_RaidLog"), 2) => Step::Collect,
            (Some("MRT_PlayerDB"), 1 | 2) => Step::Descend,
            (Some("MRT_PlayerDB"), 3) => Step::Collect,
            _ => Step::Skip,
        }
    }

    fn record(&mut self, path: &[Key], value: Value, line: u64) -> Result<(), ImportError> {
        if path[0].name() == Some("MRT_PlayerDB") {
            let class = value.table().and_then(|entry| entry.text("Class").or_else(|| entry.text("ClassL")));
            if let Some(class) = class {
                self.classes.push((path[2].to_text(), class.to_owned()));
            }
            return Ok(());
        }
        raid(&mut self.builder, record_table(&value, line, "a raid")?, line)
    }
}

fn raid(builder: &mut Builder, record: &Table, line: u64) -> Result<(), ImportError> {
    let start = unix_time(record, "StartTime").ok_or_else(|| invalid(line, "a raid has no StartTime"))?;
    let index = builder.raids.len();
    let mut attendance = Vec::new();
    for (key, value) in record.table("Players").map(|players| players.entries.as_slice()).unwrap_or_default() {
        let stay = value.table();
        let name = stay.and_then(|stay| stay.text("Name")).map(str::to_owned).or_else(|| key.name().map(str::to_owned));
        let Some(name) = name else { continue };
        attendance.push(Attendance {
            player: builder.player(&name, line)?,
            join: stay.and_then(|stay| unix_time(stay, "Join")),
            leave: stay.and_then(|stay| unix_time(stay, "Leave")),
        });
    }
    let mut bosses: Vec<Boss> = Vec::new();
    let mut kills = Vec::new();
    for (key, kill) in record.table("Bosskills").map(|kills| kills.entries.as_slice()).unwrap_or_default() {
        let Some(kill) = kill.table() else { continue };
        let Some(boss) = kill.text("Name") else { continue };
        bosses.push(Boss { key: key.clone(), name: boss.to_owned(), at: unix_time(kill, "Date") });
        if boss != TRASH {
            kills.push(Kill { boss: boss.to_owned(), at: unix_time(kill, "Date") });
        }
    }
    for item in record.table("Loot").map(|loot| loot.entries.as_slice()).unwrap_or_default() {
        if let Some(item) = item.1.table() {
            loot(builder, item, &bosses, record, index, line)?;
        }
    }
    let end = unix_time(record, "EndTime");
    let zone = record.text("RaidZone").map(str::to_owned);
    let size = record.get("RaidSize").and_then(Value::integer).and_then(|size| u32::try_from(size).ok());
    builder.raids.push(Raid { zone, size, start, end, attendance, kills, line });
    Ok(())
}

fn loot(
    builder: &mut Builder,
    item: &Table,
    bosses: &[Boss],
    raid: &Table,
    index: usize,
    line: u64,
) -> Result<(), ImportError> {
    let looter = item.text("Looter").unwrap_or("");
    let to = match looter {
        "_deleted_" => return Ok(()),
        "disenchanted" => Recipient::Disenchanted,
        "bank" => Recipient::Bank,
        name => Recipient::Player(builder.player(name, line)?),
    };
    let cost = match item.get("DKPValue").and_then(Value::decimal) {
        Some(cost) => builder.points(cost, line)?,
        None => Points::ZERO,
    };
    let postings = charge(to, cost, line)?;
    let boss_key = item.get("BossNumber").and_then(Value::integer).map(Key::Index);
    let boss = boss_key.and_then(|key| bosses.iter().find(|boss| boss.key == key));
    let at = unix_time(item, "Time").or(boss.and_then(|boss| boss.at));
    let name = item.text("ItemName").or_else(|| item.text("ItemLink")).unwrap_or("unknown item");
    let id = item.get("ItemId").and_then(Value::integer).and_then(|id| u32::try_from(id).ok());
    let loot = Loot {
        item: item_from_link(name, id),
        to,
        boss: boss.map(|boss| boss.name.clone()).filter(|boss| boss != TRASH),
        zone: raid.text("RaidZone").map(str::to_owned),
        note: item.text("Note").map(str::to_owned),
    };
    builder.row(HistoryRow {
        kind: Kind::Loot,
        at,
        postings,
        reason: None,
        loot: Some(Box::new(loot)),
        raid: Some(index),
        line,
    })
}

#[cfg(test)]
mod tests {
    use dkp_core::Points;

    use crate::time::{At, TimeZone};
    use crate::{Class, Format, Import, Kind, Options, Recipient, read, read_rows, reconcile};

    const FILE: &str = include_str!("../../tests/fixtures/mrt.lua");

    fn import() -> Import {
        read(Format::Mrt, FILE.as_bytes(), &Options::default()).unwrap()
    }

    #[test]
    fn raids_carry_attendance_and_kills_without_the_trash_pseudo_boss() {
        let import = import();
        assert_eq!(import.time_zone, TimeZone::Utc);
        assert_eq!(import.raids.len(), 2);
        let raid = &import.raids[0];
        assert_eq!((raid.zone.as_deref(), raid.size), (Some("Onyxia's Lair"), Some(40)));
        assert_eq!((raid.start, raid.end), (At::Unix(1_588_900_000), Some(At::Unix(1_588_908_000))));
        let booster = import.find("Booster").unwrap();
        let stays: Vec<_> = raid.attendance.iter().filter(|stay| stay.player == booster).collect();
        assert_eq!(stays.len(), 2);
        assert_eq!((stays[1].join, stays[1].leave), (Some(At::Unix(1_588_903_600)), Some(At::Unix(1_588_908_000))));
        let kills: Vec<&str> = raid.kills.iter().map(|kill| kill.boss.as_str()).collect();
        assert_eq!(kills, ["Onyxia"]);
        let open = &import.raids[1];
        assert_eq!((open.end, open.attendance[0].leave), (None, None));
    }

    #[test]
    fn names_with_and_without_realm_meet_when_the_file_mixes_both() {
        let import = import();
        assert!(import.realms_dropped);
        let names: Vec<&str> = import.players.iter().map(|player| player.name.as_str()).collect();
        assert_eq!(names, ["Booster", "Nevets"]);
        assert_eq!(import.find("Booster-Netherwind"), import.find("booster"));
        assert_eq!(import.player(import.find("Booster").unwrap()).class, Some(Class::Priest));
        assert_eq!(import.player(import.find("Nevets").unwrap()).class, Some(Class::Warrior));
        let warnings = import.warnings.join("\n");
        assert!(warnings.contains("'Booster', 'Booster-Netherwind' are one player"), "{warnings}");
    }

    #[test]
    fn loot_is_charged_to_looters_and_markers_go_to_no_one() {
        let (import, history) = read_rows(Format::Mrt, FILE.as_bytes(), &Options::default()).unwrap();
        let loot: Vec<(&str, Recipient, Option<&str>, Option<At>)> = history
            .iter()
            .map(|row| {
                assert_eq!((row.kind, row.raid), (Kind::Loot, Some(0)));
                let loot = row.loot.as_ref().unwrap();
                (loot.item.name.as_str(), loot.to, loot.boss.as_deref(), row.at)
            })
            .collect();
        let booster = import.find("Booster").unwrap();
        let nevets = import.find("Nevets").unwrap();
        assert_eq!(
            loot,
            [
                ("Eskhandar's Collar", Recipient::Bank, None, Some(At::Unix(1_588_900_200))),
                ("Sapphiron Drape", Recipient::Disenchanted, Some("Onyxia"), Some(At::Unix(1_588_901_000))),
                ("Head of Onyxia", Recipient::Player(booster), Some("Onyxia"), Some(At::Unix(1_588_901_100))),
                (
                    "Ancient Cornerstone Grimoire",
                    Recipient::Player(nevets),
                    Some("Onyxia"),
                    Some(At::Unix(1_588_901_300))
                ),
            ]
        );
        assert_eq!(history[2].loot.as_ref().unwrap().note.as_deref(), Some("won the roll"));
        let reconciled = reconcile(&import).unwrap();
        assert!(reconciled.mismatches.is_empty() && import.stated.is_empty());
        let minus = |text: &str| Points::parse(text).unwrap();
        assert_eq!(reconciled.balances, [(booster, minus("-25")), (nevets, minus("-12.5"))]);
    }
}
