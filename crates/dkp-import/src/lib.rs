//! Reads the files of the DKP tools guilds move in from, and turns each into
//! one model: players (members and their characters), the balances the file
//! states, the history of awards, adjustments, decays and loot, and raids with
//! attendance and kills. Pure: no I/O beyond the `BufRead` it is handed, no
//! database, no async. The service's import use case stores what this gives.
//!
//! - `read` dispatches on the `Format` to one reader per tool (`format`);
//! - readers stream: Lua SavedVariables through `lua` (parsed, never run,
//!   record by record), XML through a streaming reader, CSV line by line;
//! - `builder` collects what readers find and merges names at the end
//!   (`names`, `merge`): names compare without case, accents kept, and
//!   without `-Realm` when a World of Warcraft file mixes both forms;
//! - `history` folds history rows into per-player sums and counts as they
//!   are read, so memory follows the players, not the rows (`read_rows`
//!   keeps the rows too, for tests and tools that show them);
//! - `reconcile` compares the rebuilt balances with the stated ones;
//! - `export` writes standings back in three of these shapes (EQdkp Plus
//!   XML, MonolithDKP and WebDKP SavedVariables), each read back the same.
//!
//! Amounts are exact hundredths from the first digit read: no floats. Every
//! error is an `ImportError` naming the line where one applies.

mod amount;
mod builder;
mod class;
mod csv;
mod error;
pub mod export;
mod format;
mod history;
pub mod lua;
mod merge;
mod model;
mod names;
mod reconcile;
#[cfg(test)]
mod testing;
mod text;
mod time;

use std::io::BufRead;
use std::str::FromStr;

use builder::{Builder, Start};

pub use amount::Decimal;
pub use class::{Class, UnknownClass};
pub use error::{ErrorKind, ImportError};
pub use history::History;
pub use model::{
    Attendance, Character, HistoryRow, Import, Item, Kill, Kind, Loot, Player, PlayerRef, Posting, Raid, Recipient,
    Stated,
};
pub use reconcile::{Mismatch, Reconciliation, reconcile};
pub use time::{At, LocalTime, TimeZone};

/// The tools an import reads, by the names the API and CLI use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// EQdkp Plus points export (`<response>` XML).
    EqdkpXml,
    /// MonolithDKP, EssentialDKP or CommunityDKP SavedVariables.
    Monolith,
    /// WebDKP SavedVariables.
    Webdkp,
    /// MizusRaidTracker SavedVariables: raids, attendance, loot.
    Mrt,
    /// RCLootCouncil's CSV export of loot history.
    RclcCsv,
    /// Gargul's award history (SavedVariables).
    Gargul,
    /// The documented generic CSV: `name,balance` or `name,date,amount,reason`.
    Csv,
}

impl Format {
    pub const ALL: [Format; 7] =
        [Format::EqdkpXml, Format::Monolith, Format::Webdkp, Format::Mrt, Format::RclcCsv, Format::Gargul, Format::Csv];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::EqdkpXml => "eqdkp-xml",
            Format::Monolith => "monolith",
            Format::Webdkp => "webdkp",
            Format::Mrt => "mrt",
            Format::RclcCsv => "rclc-csv",
            Format::Gargul => "gargul",
            Format::Csv => "csv",
        }
    }

    /// Whether names may carry a World of Warcraft `-Realm` suffix.
    pub fn uses_realms(self) -> bool {
        !matches!(self, Format::EqdkpXml | Format::Csv)
    }
}

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(text: &str) -> Result<Format, UnknownFormat> {
        Format::ALL.into_iter().find(|format| format.as_str() == text).ok_or(UnknownFormat)
    }
}

/// A format name that is not one of `Format::ALL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("unknown format; one of eqdkp-xml, monolith, webdkp, mrt, rclc-csv, gargul, csv")]
pub struct UnknownFormat;

/// Choices for files that hold more than one pool of points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// CommunityDKP: the team to read, by index (`"0"`) or name. Default: the
    /// team the file's settings name as current.
    pub team: Option<String>,
    /// CommunityDKP: the guild to read (`"Guild"` or `"Realm-Faction/Guild"`)
    /// when the file holds several.
    pub guild: Option<String>,
    /// EQdkp Plus: the multidkp pool id; WebDKP: the table id or name.
    /// Default: the only one, or the first with a warning.
    pub table: Option<String>,
}

/// Reads one file of the given format, its history folded into sums and counts.
pub fn read(format: Format, input: impl BufRead, options: &Options) -> Result<Import, ImportError> {
    Ok(builder(format, input, options, false)?.finish()?.0)
}

/// Reads one file and keeps its history rows too, oldest first: memory
/// grows with the rows, so for tests and tools that show them, not for
/// importing large files.
pub fn read_rows(
    format: Format,
    input: impl BufRead,
    options: &Options,
) -> Result<(Import, Vec<HistoryRow>), ImportError> {
    builder(format, input, options, true)?.finish()
}

fn builder(format: Format, input: impl BufRead, options: &Options, keep_rows: bool) -> Result<Builder, ImportError> {
    let input = text::check_start(input)?;
    let start = Start { format, keep_rows };
    Ok(match format {
        Format::EqdkpXml => format::eqdkp::read(input, options)?,
        Format::Monolith => format::monolith::read(input, options, start)?,
        Format::Webdkp => format::webdkp::read(input, options, start)?,
        Format::Mrt => format::mrt::read(input, start)?,
        Format::RclcCsv => format::rclc::read(input, start)?,
        Format::Gargul => format::gargul::read(input, start)?,
        Format::Csv => format::generic_csv::read(input, start)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every fixture, with the options that choose another part of it.
    const FIXTURES: [(Format, &str); 9] = [
        (Format::Csv, include_str!("../tests/fixtures/history.csv")),
        (Format::Csv, include_str!("../tests/fixtures/balances.csv")),
        (Format::Monolith, include_str!("../tests/fixtures/monolith.lua")),
        (Format::Monolith, include_str!("../tests/fixtures/communitydkp.lua")),
        (Format::Webdkp, include_str!("../tests/fixtures/webdkp.lua")),
        (Format::Webdkp, WEBDKP_LOG_FIRST),
        (Format::Mrt, include_str!("../tests/fixtures/mrt.lua")),
        (Format::RclcCsv, include_str!("../tests/fixtures/rclc.csv")),
        (Format::Gargul, include_str!("../tests/fixtures/gargul.lua")),
    ];

    /// A log before the tables, entries of no table, a class unknown and a rounded amount.
    const WEBDKP_LOG_FIRST: &str = r#"
WebDKP_Log = {
    ["a 2020-01-01 10:00:00"] = { ["awarded"] = { ["Zed"] = { ["class"] = "Bard" } }, ["points"] = 1.005, ["tableid"] = 2 },
    ["b 2020-01-02 10:00:00"] = { ["awarded"] = { ["Amy"] = { ["class"] = "Mage" }, ["Zed"] = {} }, ["points"] = 4 },
    ["c 2020-01-03 10:00:00"] = { ["awarded"] = { ["Zed"] = { ["class"] = "Rogue" } }, ["points"] = -2, ["tableid"] = 1 },
    ["d 2020-01-04 10:00:00"] = { ["awarded"] = { [""] = {} }, ["points"] = 1, ["tableid"] = 3 },
}
WebDKP_DkpTable = { ["Bob"] = { ["dkp_1"] = 3, ["dkp_2"] = 1 } }
WebDKP_Tables = { ["Main"] = { ["id"] = 1 }, ["Alt"] = { ["id"] = 2 }, ["Odd"] = { ["id"] = 3 } }
"#;

    #[test]
    fn reading_with_rows_gives_the_same_import_as_folding_them() {
        let tables = [None, Some("1"), Some("2"), Some("3"), Some("Alt"), Some("Odd")];
        for ((format, text), table) in FIXTURES.iter().flat_map(|fixture| tables.map(|table| (fixture, table))) {
            let options = Options { table: table.map(str::to_owned), ..Options::default() };
            let folded = read(*format, text.as_bytes(), &options);
            let kept = read_rows(*format, text.as_bytes(), &options);
            match (folded, kept) {
                (Ok(folded), Ok((import, rows))) => {
                    assert_eq!(folded, import, "{format:?} {table:?}");
                    assert_eq!(folded.history.len(), rows.len() as u64, "{format:?} {table:?}");
                }
                (folded, kept) => assert_eq!(folded.err(), kept.err(), "{format:?} {table:?}"),
            }
        }
    }

    #[test]
    fn a_webdkp_log_before_its_tables_folds_the_chosen_table_and_the_entries_of_none() {
        let options = Options { table: Some("Alt".into()), ..Options::default() };
        let import = read(Format::Webdkp, WEBDKP_LOG_FIRST.as_bytes(), &options).unwrap();
        let names: Vec<(&str, Option<Class>)> =
            import.players.iter().map(|player| (player.name.as_str(), player.class)).collect();
        assert_eq!(names, [("Bob", None), ("Zed", None), ("Amy", Some(Class::Mage))]);
        let zed = import.find("Zed").unwrap();
        assert_eq!(import.history.sum(zed), Some(dkp_core::Points::parse("5.01").unwrap()));
        assert_eq!(import.history.len(), 2);
        let warnings = import.warnings.join("\n");
        assert!(
            warnings.contains("(the first on line 3)")
                && warnings.contains("unknown class names, kept without a class: Bard"),
            "{warnings}"
        );
        let odd = Options { table: Some("3".into()), ..Options::default() };
        let error = read(Format::Webdkp, WEBDKP_LOG_FIRST.as_bytes(), &odd).unwrap_err();
        assert_eq!(error.to_string(), "line 6: a player name is empty");
    }

    #[test]
    fn format_names_round_trip() {
        for format in Format::ALL {
            assert_eq!(format.as_str().parse::<Format>(), Ok(format));
        }
        assert_eq!("xml".parse::<Format>(), Err(UnknownFormat));
    }
}
