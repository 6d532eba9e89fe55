//! EQdkp Plus exports with and without twinks, and XML that is not one.

use dkp_core::Points;

use crate::testing::{assert_warns, points};

use crate::time::{At, LocalTime, TimeZone};
use crate::{Class, ErrorKind, Format, Import, ImportError, Options, read, reconcile};

const TWINKS: &str = include_str!("../../../tests/fixtures/eqdkp-twinks.xml");
const PLAIN: &str = include_str!("../../../tests/fixtures/eqdkp-plain.xml");

fn import(text: &str, options: &Options) -> Result<Import, ImportError> {
    read(Format::EqdkpXml, text.as_bytes(), options)
}

fn balance(import: &Import, name: &str) -> Option<Points> {
    import.stated_balance(import.find(name)?)
}

#[test]
fn with_twinks_each_main_is_a_member_holding_its_total_with_twinks() {
    let import = import(TWINKS, &Options::default()).unwrap();
    let names: Vec<&str> = import.players.iter().map(|player| player.name.as_str()).collect();
    assert_eq!(names, ["Argok", "Aryuna", "Breituxs", "Dep", "Doktorwho"]);
    let argok = import.player(import.find("argok").unwrap());
    let characters: Vec<(&str, bool, Option<Class>)> =
        argok.characters.iter().map(|c| (c.name.as_str(), c.main, c.class)).collect();
    assert_eq!(characters, [("Argok", true, Some(Class::Warrior)), ("Argokbank", false, Some(Class::Hunter))]);
    assert_eq!(import.find("Argokbank"), import.find("Argok"));
    assert_eq!(balance(&import, "Argok"), Some(points("60.50")));
    let stated = import.stated.iter().find(|stated| stated.player == import.find("Argok").unwrap()).unwrap();
    assert_eq!((stated.earned, stated.spent), (Some(points("800.10")), Some(points("775.67"))));
    assert_eq!(balance(&import, "Aryuna"), Some(points("211.05")));
    assert_eq!(import.player(import.find("Aryuna").unwrap()).class, Some(Class::Shaman));
    assert_eq!(import.exported_at, Some(At::Unix(1_579_616_503)));
    assert_eq!(import.time_zone, TimeZone::Utc);
    assert!(import.history.is_empty() && import.raids.is_empty());
    // No history to rebuild from: the stated balances stand alone.
    let reconciled = reconcile(&import).unwrap();
    assert!(reconciled.mismatches.is_empty());
    assert_eq!(reconciled.balances.len(), 5);
}

#[test]
fn with_twinks_the_quirks_are_kept_and_warned_about() {
    let import = import(TWINKS, &Options::default()).unwrap();
    // A stated total that is not the sum of its characters: the stated one wins.
    assert_eq!(balance(&import, "Breituxs"), Some(points("10.00")));
    // A twink whose main is missing stands alone with its own points.
    assert_eq!(balance(&import, "Dep"), Some(points("-341.48")));
    // More than two decimals round half away from zero.
    assert_eq!(balance(&import, "Doktorwho"), Some(points("96.33")));
    assert_eq!(import.player(import.find("Doktorwho").unwrap()).class, None);
    assert_warns(
        &import,
        &[
            "multidkp pools 1 'Raid DKP', 2 'PvP'; pool 1 was read",
            "'Breituxs' states 10.00, its characters sum to -3.13",
            "twinks whose main is not in the export are read alone: Dep",
            "rounded half away from zero",
            "unknown class names, kept without a class: Nekromant",
        ],
    );
}

#[test]
fn the_table_option_picks_a_multidkp_pool_by_id_or_name() {
    for wanted in ["2", "pvp"] {
        let import = import(TWINKS, &Options { table: Some(wanted.into()), ..Options::default() }).unwrap();
        assert_eq!(balance(&import, "Argok"), Some(points("5")));
        assert_eq!(balance(&import, "Aryuna"), None);
    }
    let error = import(TWINKS, &Options { table: Some("9".into()), ..Options::default() }).unwrap_err();
    assert!(matches!(error.kind, ErrorKind::WrongShape(_)), "{error}");
}

#[test]
fn without_twinks_every_player_is_a_member_and_equal_names_add_up() {
    let import = import(PLAIN, &Options::default()).unwrap();
    let names: Vec<&str> = import.players.iter().map(|player| player.name.as_str()).collect();
    assert_eq!(names, ["Lucey", "Веда", "Vedalt"]);
    assert_eq!(balance(&import, "LUCEY"), Some(points("158")));
    assert_eq!(balance(&import, "Веда"), Some(points("55.5")));
    assert_eq!(balance(&import, "Vedalt"), Some(points("20")));
    assert_eq!(import.player(import.find("веда").unwrap()).class, Some(Class::Hunter));
    assert_eq!(import.player(import.find("Vedalt").unwrap()).class, Some(Class::DeathKnight));
    assert_eq!(import.player(import.find("Lucey").unwrap()).characters.len(), 1);
    let warnings = import.warnings.join("\n");
    assert!(warnings.contains("'Lucey', 'lucey' are one player"), "{warnings}");
    assert!(warnings.contains("'Lucey' has 2 balance records; they are added: 158.00"), "{warnings}");
    let local = LocalTime::new(2021, 3, 5, 9, 5, 0).unwrap();
    assert_eq!(import.exported_at, Some(At::Local(local)));
}

#[test]
fn the_spaces_beside_an_entity_are_part_of_the_name() {
    let player = "<player><id>1</id><name> Tom &amp; &lt;Jerry&gt; &#233; </name><main_id>1</main_id></player>";
    let text = format!("<response><info><with_twink>0</with_twink></info><players>{player}</players></response>");

    let import = import(&text, &Options::default()).unwrap();

    assert_eq!(import.players[0].name, "Tom & <Jerry> é");
}

#[test]
fn xml_that_is_not_an_eqdkp_export_is_refused() {
    let cases = [
        "<?xml version=\"1.0\"?>\n<html><body/></html>",
        "<response><status>0</status><error>access denied</error></response>",
        "<response><info><with_twink>1</with_twink></info></response>",
        "",
    ];
    for text in cases {
        let error = import(text, &Options::default()).unwrap_err();
        assert!(matches!(error.kind, ErrorKind::NotEqdkp(_) | ErrorKind::Truncated(_)), "{text}: {error}");
    }
    let error = import("<?xml version=\"1.0\"?>\n<html/>", &Options::default()).unwrap_err();
    assert_eq!(error.to_string(), "line 2: not an EQdkp Plus export: the root element is <html>");
}

#[test]
fn broken_xml_names_its_line() {
    let cut = &TWINKS[..TWINKS.find("<name>Aryuna</name>").unwrap()];
    let error = import(cut, &Options::default()).unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Truncated(_)), "{error}");
    let mismatched = "<response>\n<players>\n<player><name>A</nam></player>\n</players>\n</response>";
    let error = import(mismatched, &Options::default()).unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Syntax(_)), "{error}");
    assert_eq!(error.line, Some(3));
    let entity = "<response>\n<players><player><name>&bogus;</name></player></players></response>";
    assert_eq!(import(entity, &Options::default()).unwrap_err().line, Some(2));
}

#[test]
fn utf16_and_invalid_utf8_exports_are_refused() {
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(TWINKS.encode_utf16().flat_map(u16::to_le_bytes));
    let error = read(Format::EqdkpXml, &utf16[..], &Options::default()).unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Encoding(_)));
    let latin1 = b"<response>\n<players><player><name>J\xE4ger</name></player></players></response>";
    let error = read(Format::EqdkpXml, &latin1[..], &Options::default()).unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Encoding(_)), "{error}");
    assert_eq!(error.line, Some(2));
}
