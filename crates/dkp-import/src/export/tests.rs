//! Every export read back by the reader of its format: the same names,
//! balances and classes, nothing to reconcile.

use super::*;
use crate::testing::points;
use crate::{Class, Format, Import, Options, read, reconcile};

fn standings() -> Vec<Standing<'static>> {
    let row = |name, balance, earned, spent| Standing {
        name,
        balance: points(balance),
        earned: points(earned),
        spent: points(spent),
        class: None,
    };
    vec![
        Standing { class: Some(Class::DeathKnight), ..row("Ana, the Bold", "120.5", "200", "79.5") },
        row("Bo \"Q\" \\ Slash", "-3", "0", "3"),
        row("Tom & <Jerry>", "0", "0", "0"),
        row("Scyllá", "7.25", "10", "0"),
        Standing { class: Some(Class::Priest), ..row("Веда", "0.05", "1000000", "999999.95") },
        row("Zed", "-0.5", "1", "1"),
    ]
}

/// Name, stated balance and class of every player the import holds.
fn read_back(format: Format, file: &str) -> (Import, Vec<(String, Points, Option<Class>)>) {
    let import = read(format, file.as_bytes(), &Options::default()).unwrap();
    let balances = import
        .players
        .iter()
        .enumerate()
        .map(|(index, player)| {
            let stated = import.stated.iter().find(|stated| stated.player.index() == index);
            (player.name.clone(), stated.map(|stated| stated.balance).unwrap_or(Points::ZERO), player.class)
        })
        .collect();
    (import, balances)
}

fn assert_same_standings(format: Format, file: &str) {
    let expected: Vec<(String, Points, Option<Class>)> =
        standings().iter().map(|s| (s.name.to_owned(), s.balance, s.class)).collect();

    let (import, balances) = read_back(format, file);

    assert_eq!(balances, expected, "{format:?}:\n{file}");
    assert_eq!(import.stated.len(), expected.len(), "every balance is stated");
    assert!(import.history.is_empty());
    assert!(reconcile(&import).unwrap().mismatches.is_empty());
    assert_eq!(import.warnings, Vec::<String>::new(), "{format:?}");
}

#[test]
fn an_eqdkp_export_reads_back_to_the_same_standings() {
    let xml = eqdkp_xml(&standings(), "Raids & Co", 1_764_538_200);

    assert_same_standings(Format::EqdkpXml, &xml);
    let import = read(Format::EqdkpXml, xml.as_bytes(), &Options::default()).unwrap();
    assert_eq!(import.exported_at, Some(crate::At::Unix(1_764_538_200)));
    assert!(xml.contains("<date>30.11.25 21:30:00</date>"), "{xml}");
    assert!(
        xml.contains("<class_name>Death Knight</class_name>") && xml.contains("<class_name></class_name>"),
        "{xml}"
    );
    let vedas = &import.stated[4];
    assert_eq!((vedas.earned, vedas.spent), (Some(points("1000000")), Some(points("999999.95"))));
}

#[test]
fn a_monolith_export_reads_back_to_the_same_standings() {
    let lua = monolith(&standings());

    assert_same_standings(Format::Monolith, &lua);
    assert!(lua.contains("[\"dkp\"] = 120.5,") && lua.contains("[\"lifetime_spent\"] = -79.5,"), "{lua}");
    assert!(lua.contains("[\"class\"] = \"DEATHKNIGHT\",") && lua.contains("[\"class\"] = \"UNKNOWN\","), "{lua}");
    assert!(lua.contains("[\"player\"] = \"Bo \\\"Q\\\" \\\\ Slash\","), "{lua}");
    let import = read(Format::Monolith, lua.as_bytes(), &Options::default()).unwrap();
    assert_eq!((import.stated[0].earned, import.stated[0].spent), (Some(points("200")), Some(points("79.5"))));
}

#[test]
fn a_webdkp_export_reads_back_to_the_same_standings() {
    let lua = webdkp(&standings(), "Main \"Table\"");

    assert_same_standings(Format::Webdkp, &lua);
    assert!(lua.contains("[\"Веда\"] = {\n\t\t[\"dkp_1\"] = 0.05,"), "UTF-8 kept as it is:\n{lua}");
    assert!(lua.contains("[\"class\"] = \"Death Knight\","), "{lua}");
    let options = Options { table: Some("Main \"Table\"".into()), ..Options::default() };
    assert_eq!(read(Format::Webdkp, lua.as_bytes(), &options).unwrap().stated.len(), standings().len());
}

#[test]
fn an_empty_pool_exports_files_that_read_back_empty() {
    for (format, file) in [
        (Format::EqdkpXml, eqdkp_xml(&[], "Main", 0)),
        (Format::Monolith, monolith(&[])),
        (Format::Webdkp, webdkp(&[], "Main")),
    ] {
        let import = read(format, file.as_bytes(), &Options::default()).unwrap();
        assert!(import.players.is_empty(), "{format:?}");
    }
}
