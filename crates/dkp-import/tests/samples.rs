//! The three real files in `shared/import-samples/`, read through the public
//! API, with facts checked by hand against the files.
//!
//! The samples are not copied into this repository: they come from public
//! repositories that carry no licence, so they are not ours to redistribute.
//! They are found through `DKP_IMPORT_SAMPLES` (a folder; a missing file is
//! then a failure) or in `shared/import-samples` beside the repository's
//! folder, as on developers' machines and in CI; elsewhere these tests say so
//! and pass without reading anything. The fixtures in `tests/fixtures/`
//! (used by the unit tests) cover the same quirks in files of our own.

use std::fs::File;
use std::io::BufReader;
use std::path::PathBuf;

use dkp_core::Points;
use dkp_import::{
    At, Format, HistoryRow, Import, Kind, LocalTime, Options, Recipient, TimeZone, read, read_rows, reconcile,
};

fn sample(name: &str) -> Option<BufReader<File>> {
    let (folder, required) = match std::env::var_os("DKP_IMPORT_SAMPLES") {
        Some(folder) => (PathBuf::from(folder), true),
        None => (PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/import-samples"), false),
    };
    let path = folder.join(name);
    match File::open(&path) {
        Ok(file) => Some(BufReader::new(file)),
        Err(error) if required => panic!("{}: {error}", path.display()),
        Err(_) => {
            eprintln!("skipped: {} is not here (set DKP_IMPORT_SAMPLES to its folder)", path.display());
            None
        }
    }
}

fn points(text: &str) -> Points {
    Points::parse(text).unwrap()
}

fn balance(import: &Import, name: &str) -> Option<Points> {
    import.stated_balance(import.find(name)?)
}

fn count(import: &Import, kind: Kind) -> u64 {
    import.history.count(kind)
}

/// The file read with its rows, checked to fold to the same import as without them.
fn with_rows(format: Format, name: &str, folded: &Import) -> Vec<HistoryRow> {
    let (import, rows) = read_rows(format, sample(name).unwrap(), &Options::default()).unwrap();
    assert_eq!(&import, folded);
    assert_eq!(import.history.len(), rows.len() as u64);
    rows
}

#[test]
fn monolith_dkp_sample() {
    let Some(file) = sample("monolith__MonolithDKP.lua") else { return };
    let import = read(Format::Monolith, file, &Options::default()).unwrap();
    assert_eq!(import.time_zone, TimeZone::Utc);
    // 72 in the DKP table, 26 more known only from history (deleted from the table).
    assert_eq!((import.players.len(), import.stated.len()), (98, 72));
    assert_eq!(balance(&import, "Asty"), Some(points("192")));
    assert_eq!(balance(&import, "øscar"), Some(points("15")));
    let agarasana = import.stated.iter().find(|stated| Some(stated.player) == import.find("Agarasana")).unwrap();
    assert_eq!(
        (agarasana.balance, agarasana.earned, agarasana.spent),
        (points("140"), Some(points("702")), Some(points("349")))
    );
    // 1227 loot entries less 12 folded deletion pairs; 592 history entries less 34 pairs.
    assert_eq!(count(&import, Kind::Loot), 1203);
    assert_eq!(count(&import, Kind::Award) + count(&import, Kind::Adjustment) + count(&import, Kind::Decay), 524);
    assert_eq!(count(&import, Kind::Decay), 30);
    let rows = with_rows(Format::Monolith, "monolith__MonolithDKP.lua", &import);
    let decay = rows.iter().find(|row| row.at == Some(At::Unix(1_587_953_904))).unwrap();
    assert_eq!((decay.kind, decay.postings.len()), (Kind::Decay, 36));
    assert_eq!(
        (decay.postings[0].player, decay.postings[0].amount),
        (import.find("Agarasana").unwrap(), points("-22"))
    );
    // The file does not rebuild its own table: that is what mismatches report.
    let reconciled = reconcile(&import).unwrap();
    let tokk = reconciled.mismatches.iter().find(|mismatch| mismatch.name == "Tokk").unwrap();
    assert_eq!((tokk.stated, tokk.rebuilt), (points("141"), points("73")));
    assert_eq!(reconciled.mismatches.len(), 53);
    assert_eq!(
        reconciled.balances.iter().find(|(player, _)| Some(*player) == import.find("Tokk")).unwrap().1,
        points("141")
    );
}

#[test]
fn webdkp_sample() {
    let Some(file) = sample("webdkp__WebDKP.lua") else { return };
    let import = read(Format::Webdkp, file, &Options::default()).unwrap();
    assert_eq!(import.time_zone, TimeZone::Unstated);
    assert_eq!((import.players.len(), import.stated.len()), (16, 16));
    for (name, dkp) in
        [("Kattburk", "230"), ("Lucey", "148"), ("Scyllá", "210"), ("Cânìtänk", "238"), ("Elunnia", "10")]
    {
        assert_eq!(balance(&import, name), Some(points(dkp)), "{name}");
    }
    let rows = with_rows(Format::Webdkp, "webdkp__WebDKP.lua", &import);
    let awards: Vec<(Option<At>, usize)> = rows.iter().map(|row| (row.at, row.postings.len())).collect();
    let at = |second| Some(At::Local(LocalTime::new(2012, 12, 13, 23, 8, second).unwrap()));
    assert_eq!(awards, [(at(42), 10), (at(53), 1)]);
    assert!(rows.iter().all(|row| row.kind == Kind::Award && row.postings[0].amount == points("30")));
    // The log keeps only its last two awards: no balance rebuilds.
    assert_eq!(reconcile(&import).unwrap().mismatches.len(), 16);
    // This copy of the file names Lucey once; the merge of Lucey and lucey is shown by a fixture.
    assert!(!import.warnings.iter().any(|warning| warning.contains("one player")));
}

#[test]
fn rclootcouncil_sample() {
    let Some(file) = sample("rclc-csv__2020-05-10.txt") else { return };
    let import = read(Format::RclcCsv, file, &Options::default()).unwrap();
    assert_eq!(import.time_zone, TimeZone::Unstated);
    assert_eq!((import.history.len(), import.players.len()), (2688, 163));
    assert!(!import.realms_dropped);
    let rows = with_rows(Format::RclcCsv, "rclc-csv__2020-05-10.txt", &import);
    assert!(import.stated.is_empty() && rows.iter().all(|row| row.postings.is_empty()));
    let to = |recipient: Recipient| rows.iter().filter(|row| row.loot.as_ref().unwrap().to == recipient).count();
    assert_eq!((to(Recipient::Disenchanted), to(Recipient::Bank)), (377, 59));
    let first = rows.iter().find(|row| row.line == 2).unwrap();
    let loot = first.loot.as_ref().unwrap();
    assert_eq!((loot.item.name.as_str(), loot.item.id), ("The Eye of Divinity", Some(18646)));
    assert_eq!(loot.to, Recipient::Player(import.find("booster-netherwind").unwrap()));
    assert_eq!(first.at, Some(At::Local(LocalTime::new(2020, 3, 23, 2, 17, 50).unwrap())));
    let booster = import.player(import.find("Booster-Netherwind").unwrap());
    assert_eq!(
        (booster.characters[0].name.as_str(), booster.characters[0].realm.as_deref()),
        ("Booster", Some("Netherwind"))
    );
}
