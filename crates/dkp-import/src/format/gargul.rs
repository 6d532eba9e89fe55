//! Gargul's award history: `GargulDB.AwardHistory[checksum]` entries
//! `{awardedTo, itemLink, itemID, timestamp, BRCost, GDKPCost, OS, ...}`.
//! Each becomes a loot row; `awardedTo = "||de||"` means disenchanted, not a
//! player. Boosted-roll points (`BRCost`) are points and are charged; a GDKP
//! price is gold, not points, so it is kept in the row's note and charged to
//! no one. Gargul states no balances. Timestamps are unix times, so UTC.

use std::io::BufRead;

use dkp_core::Points;

use crate::builder::{Builder, Start};
use crate::error::{ErrorKind, ImportError, invalid};
use crate::format::{charge, item_from_link, record_table, unix_time};
use crate::lua::{self, Events, Key, Step, Table, Value, Visitor};
use crate::model::{HistoryRow, Kind, Loot, Recipient};
use crate::time::TimeZone;

const DISENCHANTED: &str = "||de||";

struct Reader {
    builder: Builder,
    found_history: bool,
    gold_prices: usize,
}

pub(crate) fn read<R: BufRead>(input: R, start: Start) -> Result<Builder, ImportError> {
    let builder = start.builder(TimeZone::Utc);
    let mut reader = Reader { builder, found_history: false, gold_prices: 0 };
    lua::walk(&mut Events::new(input), &mut reader)?;
    if !reader.found_history {
        return Err(ImportError::whole_file(ErrorKind::WrongShape(
            "no GargulDB.AwardHistory: not a Gargul file".into(),
        )));
    }
    if reader.gold_prices > 0 {
        reader.builder.warn(format!(
            "{} awards have a GDKP gold price; gold is not points, so it is kept in the loot notes only",
            reader.gold_prices
        ));
    }
    Ok(reader.builder)
}

impl Visitor for Reader {
    fn step(&mut self, path: &[Key]) -> Step {
        match (path[0].name(), path.get(1).and_then(Key::name), path.len()) {
            (Some("GargulDB"), _, 1) => Step::Descend,
            (Some("GargulDB"), Some("AwardHistory"), 2) => {
                self.found_history = true;
                Step::Descend
            }
            (Some("GargulDB"), Some("AwardHistory"), 3) => Step::Collect,
            _ => Step::Skip,
        }
    }

    fn record(&mut self, _path: &[Key], value: Value, line: u64) -> Result<(), ImportError> {
        let award = record_table(&value, line, "an award")?;
        let row = self.award(award, line)?;
        self.builder.row(row)
    }
}

impl Reader {
    fn award(&mut self, award: &Table, line: u64) -> Result<HistoryRow, ImportError> {
        let awarded_to = award.text("awardedTo").ok_or_else(|| invalid(line, "an award has no awardedTo"))?;
        let to = match awarded_to {
            DISENCHANTED => Recipient::Disenchanted,
            name => Recipient::Player(self.builder.player(name, line)?),
        };
        let cost = match award.get("BRCost").and_then(Value::decimal) {
            Some(cost) => self.builder.points(cost, line)?,
            None => Points::ZERO,
        };
        let postings = charge(to, cost, line)?;
        let mut notes = Vec::new();
        if award.get("OS").and_then(Value::boolean) == Some(true) {
            notes.push("offspec".to_owned());
        }
        let gold = award.get("GDKPCost").and_then(Value::decimal).and_then(|gold| gold.to_points().ok());
        if let Some(gold) = gold.map(|gold| gold.points).filter(|gold| gold.is_positive()) {
            self.gold_prices += 1;
            notes.push(format!("GDKP price {gold}g"));
        }
        let id = award.get("itemID").and_then(Value::integer).and_then(|id| u32::try_from(id).ok());
        let loot = Loot {
            item: item_from_link(award.text("itemLink").unwrap_or("unknown item"), id),
            to,
            boss: None,
            zone: None,
            note: (!notes.is_empty()).then(|| notes.join("; ")),
        };
        let at = unix_time(award, "timestamp");
        Ok(HistoryRow { kind: Kind::Loot, at, postings, reason: None, loot: Some(Box::new(loot)), raid: None, line })
    }
}

#[cfg(test)]
mod tests {
    use dkp_core::Points;

    use crate::time::At;
    use crate::{ErrorKind, Format, Options, Recipient, read, read_rows};

    const FILE: &str = include_str!("../../tests/fixtures/gargul.lua");

    #[test]
    fn awards_become_loot_and_disenchanted_items_go_to_no_player() {
        let (import, history) = read_rows(Format::Gargul, FILE.as_bytes(), &Options::default()).unwrap();
        let names: Vec<&str> = import.players.iter().map(|player| player.name.as_str()).collect();
        assert_eq!(names, ["Arthasdk-Firemaw", "Healbot-Firemaw", "Goldbuyer-Firemaw"]);
        let character = &import.players[0].characters[0];
        assert_eq!((character.name.as_str(), character.realm.as_deref()), ("Arthasdk", Some("Firemaw")));
        let rows: Vec<(&str, Recipient, Vec<Points>, Option<&str>)> = history
            .iter()
            .map(|row| {
                let loot = row.loot.as_ref().unwrap();
                let amounts = row.postings.iter().map(|posting| posting.amount).collect();
                (loot.item.name.as_str(), loot.to, amounts, loot.note.as_deref())
            })
            .collect();
        let player = |name: &str| Recipient::Player(import.find(name).unwrap());
        assert_eq!(
            rows,
            [
                ("Betrayer of Humanity", player("arthasdk-firemaw"), vec![], None),
                ("Envoy of Mortality", Recipient::Disenchanted, vec![], None),
                ("Sinister Revenge", player("Healbot-Firemaw"), vec![Points::parse("-15").unwrap()], Some("offspec")),
                ("Boundless Ambition", player("Goldbuyer-Firemaw"), vec![], Some("GDKP price 1500.00g")),
            ]
        );
        assert_eq!(history[0].at, Some(At::Unix(1_665_443_560)));
        assert_eq!(history[0].loot.as_ref().unwrap().item.id, Some(40384));
        assert!(import.warnings.iter().any(|warning| warning.contains("1 awards have a GDKP gold price")));
    }

    #[test]
    fn a_file_without_award_history_is_not_gargul() {
        let error = read(Format::Gargul, &b"GargulDB = { [\"Settings\"] = {} }"[..], &Options::default()).unwrap_err();
        assert!(matches!(error.kind, ErrorKind::WrongShape(_)));
        let error = read(
            Format::Gargul,
            &b"GargulDB = {\n[\"AwardHistory\"] = {\n[\"x\"] = {},\n},\n}"[..],
            &Options::default(),
        );
        assert_eq!(error.unwrap_err().to_string(), "line 3: an award has no awardedTo");
    }
}
