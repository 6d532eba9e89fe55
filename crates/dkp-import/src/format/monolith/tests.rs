//! MonolithDKP (flat) and CommunityDKP (teams) files, from the fixtures.

use dkp_core::Points;

use crate::testing::{assert_warns, points};

use crate::time::At;
use crate::{
    Class, ErrorKind, Format, HistoryRow, Import, ImportError, Kind, Options, Recipient, read, read_rows, reconcile,
};

const FLAT: &str = include_str!("../../../tests/fixtures/monolith.lua");
const TEAMS: &str = include_str!("../../../tests/fixtures/communitydkp.lua");

fn import(text: &str, options: &Options) -> Result<Import, ImportError> {
    read(Format::Monolith, text.as_bytes(), options)
}

fn rows(text: &str, options: &Options) -> (Import, Vec<HistoryRow>) {
    read_rows(Format::Monolith, text.as_bytes(), options).unwrap()
}

fn kinds(text: &str, options: &Options) -> Vec<&'static str> {
    rows(text, options).1.iter().map(|row| row.kind.as_str()).collect()
}

fn mismatches(import: &Import) -> Vec<(String, Points, Points)> {
    let reconciled = reconcile(import).unwrap();
    reconciled.mismatches.into_iter().map(|m| (m.name, m.stated, m.rebuilt)).collect()
}

#[test]
fn the_dkp_table_states_balances_and_lifetime_totals() {
    let import = import(FLAT, &Options::default()).unwrap();
    let names: Vec<&str> = import.players.iter().map(|player| player.name.as_str()).collect();
    assert_eq!(names, ["Tokk", "Zuulftw", "Øscar"]);
    let tokk = import.find("tokk").unwrap();
    let stated = import.stated.iter().find(|stated| stated.player == tokk).unwrap();
    assert_eq!(
        (stated.balance, stated.earned, stated.spent),
        (points("112.5"), Some(points("124.5")), Some(points("12")))
    );
    assert_eq!(import.player(tokk).class, Some(Class::Shaman));
    assert_eq!(import.stated_balance(import.find("ØSCAR").unwrap()), Some(Points::ZERO));
}

#[test]
fn history_holds_awards_decays_loot_and_carried_totals_oldest_first() {
    let (import, history) = rows(FLAT, &Options::default());
    assert_eq!(kinds(FLAT, &Options::default()), ["carried", "award", "loot", "loot", "award", "decay"]);
    let decay = &history[5];
    let amounts: Vec<Points> = decay.postings.iter().map(|posting| posting.amount).collect();
    assert_eq!(amounts, [points("-4.5"), points("-2"), Points::ZERO]);
    assert_eq!(decay.at, Some(At::Unix(1_588_904_400)));
    let loot = history.iter().find(|row| row.kind == Kind::Loot && row.postings[0].amount.is_negative()).unwrap();
    let item = &loot.loot.as_ref().unwrap().item;
    assert_eq!((item.name.as_str(), item.id), ("Onyxia Hide Backpack", Some(17966)));
    assert_eq!(loot.loot.as_ref().unwrap().to, Recipient::Player(import.find("Tokk").unwrap()));
    assert_eq!(history[1].reason.as_deref(), Some("Other - Onyxia \"split\" bonus"));
    assert_eq!((import.history.len(), import.history.count(Kind::Loot)), (6, 2));
    assert_eq!(import.history.span(), Some((At::Unix(1_588_800_000), At::Unix(1_588_904_400))));
}

#[test]
fn unpaired_deletions_and_bad_amount_lists_are_warned_about() {
    let import = import(FLAT, &Options::default()).unwrap();
    assert_warns(
        &import,
        &[
            "1 deletions reverse entries no longer in the file (pruned); the reversals were kept (lines 26)",
            "1 entries are marked deleted but their reversal is missing; they were left out (lines 84)",
            "line 99: a history entry lists 2 players but 3 amounts; it was left out",
        ],
    );
}

#[test]
fn rebuilt_balances_are_compared_with_the_stated_ones() {
    let import = import(FLAT, &Options::default()).unwrap();
    // Tokk: 100 carried + 27 + 2 - 4.5 decay - 12 loot = 112.5, as stated.
    assert_eq!(mismatches(&import), [("Zuulftw".to_owned(), points("30"), points("2"))]);
    let reconciled = reconcile(&import).unwrap();
    assert_eq!(reconciled.rebuilt[import.find("Tokk").unwrap().index()], points("112.5"));
    assert_eq!(
        reconciled.balances,
        [(import.find("Tokk").unwrap(), points("112.5")), (import.find("Zuulftw").unwrap(), points("30"))]
    );
}

#[test]
fn community_dkp_reads_the_current_team_and_folds_its_deletions() {
    let (import, history) = rows(TEAMS, &Options::default());
    let names: Vec<&str> = import.players.iter().map(|player| player.name.as_str()).collect();
    assert_eq!(names, ["Altraider", "Shamy"]);
    assert_eq!(import.stated_balance(import.find("shamy").unwrap()), Some(points("15")));
    assert_eq!(kinds(TEAMS, &Options::default()), ["carried", "award", "loot", "decay"]);
    let loot = history[2].loot.as_ref().unwrap();
    assert_eq!(loot.item.name, "Thunderfury, Blessed Blade of the Windseeker");
    assert_eq!((loot.boss.as_deref(), loot.zone.as_deref()), (Some("Garr"), Some("Molten Core")));
    // Altraider: 30 - 3 - 10 = 17 as stated; Shamy: 3.5 + 30 - 1.5 = 32 against 12 + 3.
    assert_eq!(mismatches(&import), [("Shamy".to_owned(), points("15"), points("32"))]);
    assert_warns(
        &import,
        &[
            "'Shamy', 'shamy' are one player",
            "'Shamy' has 2 balance records; they are added: 15.00",
            "read CommunityDKP team 'Alts' (1) of guild 'Undecided' on Gehennas-Horde",
            "the guild also has teams 'Main' (0) (not read)",
        ],
    );
}

#[test]
fn settings_before_the_tables_give_the_same_import() {
    let at = TEAMS.find("CommDKP_DB = {").unwrap();
    let settings_first = format!("{}\n{}", &TEAMS[at..], &TEAMS[..at]);
    let first = import(&settings_first, &Options::default()).unwrap();
    let last = import(TEAMS, &Options::default()).unwrap();
    assert_eq!((&first.players, &first.stated), (&last.players, &last.stated));
    assert_eq!(kinds(&settings_first, &Options::default()), kinds(TEAMS, &Options::default()));
    assert_eq!(first.history, last.history);
}

#[test]
fn the_team_option_names_a_team_by_index_or_name() {
    for team in ["0", "main"] {
        let import = import(TEAMS, &Options { team: Some(team.into()), ..Options::default() }).unwrap();
        let names: Vec<&str> = import.players.iter().map(|player| player.name.as_str()).collect();
        assert_eq!(names, ["Mainraider"]);
        assert_eq!(import.stated_balance(import.find("Mainraider").unwrap()), Some(points("100")));
        assert!(mismatches(&import).is_empty());
    }
    let error = import(TEAMS, &Options { team: Some("raiders".into()), ..Options::default() }).unwrap_err();
    assert!(matches!(error.kind, ErrorKind::WrongShape(_)), "{error}");
    assert!(error.to_string().contains("Gehennas-Horde/Undecided team 1"), "{error}");
}

#[test]
fn several_guilds_need_the_guild_option() {
    let two_guilds = TEAMS.replacen("[\"Undecided\"]", "[\"Other Guild\"]", 1);
    let error = import(&two_guilds, &Options::default()).unwrap_err();
    assert!(error.to_string().contains("several guilds"), "{error}");
    let options =
        Options { guild: Some("Gehennas-Horde/other guild".into()), team: Some("1".into()), ..Options::default() };
    let import = import(&two_guilds, &options).unwrap();
    assert_eq!(import.stated_balance(import.find("Altraider").unwrap()), Some(points("17")));
    assert!(import.history.is_empty());
}

#[test]
fn files_of_other_tools_and_broken_files_are_refused() {
    let error = import("WebDKP_DkpTable = {\n}\n", &Options::default()).unwrap_err();
    assert!(matches!(error.kind, ErrorKind::WrongShape(_)), "{error}");
    let inside_a_string = &FLAT[..FLAT.find("MonDKP_MinBids").unwrap() - 40];
    let error = import(inside_a_string, &Options::default()).unwrap_err();
    assert_eq!(error.to_string(), "line 104: the file ends too early: inside the string that starts here");
    let inside_a_table = &FLAT[..FLAT.find("MonDKP_MinBids").unwrap() - 3];
    let error = import(inside_a_table, &Options::default()).unwrap_err();
    assert!(matches!(error.kind, ErrorKind::Truncated(_)), "{error}");
    assert_eq!(error.line, Some(69));
    let error =
        import("MonDKP_DKPTable = {\n\t{ [\"player\"] = \"A\", [\"dkp\"] = \"lots\" },\n}", &Options::default())
            .unwrap_err();
    assert_eq!(error.to_string(), "line 2: dkp is not a number");
}
