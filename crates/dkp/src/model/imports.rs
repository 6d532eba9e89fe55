//! An import of another tool's file into a pool: what the store is asked to
//! write (`ImportCommand`), what it did (`Imported`), and the report an
//! officer reads (`ImportReport`), which is also kept with the import so a
//! second upload of the same file answers the first report.

use dkp_core::Points;
use dkp_core::roster::CharacterName;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Event;

/// A player of the file, ready to be matched to the roster.
#[derive(Clone, Debug)]
pub struct ImportedPlayer {
    /// The member's name as the file first writes it (checked for the roster).
    pub name: String,
    /// Characters the file names for the player, the main first.
    pub characters: Vec<ImportedCharacter>,
    /// The balance the pool is to hold for this player after the import.
    pub balance: Points,
}

/// A character the file names.
#[derive(Clone, Debug)]
pub struct ImportedCharacter {
    pub name: CharacterName,
    pub class: Option<String>,
    pub main: bool,
}

/// An import to write in one transaction.
#[derive(Clone, Debug)]
pub struct ImportCommand {
    pub guild_id: Uuid,
    pub pool_id: Uuid,
    /// Who the entry and the import are recorded as made by.
    pub actor_member: Uuid,
    /// The SHA-256 of the file's bytes: an import of one file into one pool happens once.
    pub content_hash: Vec<u8>,
    pub players: Vec<ImportedPlayer>,
    /// The reason of the entry that moves the balances.
    pub reason: String,
    /// The report so far (what the file says); the store fills in what it did.
    pub report: ImportReport,
}

/// What an import did, or found done already.
#[derive(Debug)]
pub enum Imported {
    Fresh {
        report: ImportReport,
        events: Vec<Event>,
    },
    /// The same file went into this pool before: its report, unchanged.
    Already(ImportReport),
}

/// How the file's players meet the roster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RosterCounts {
    pub members_created: u64,
    pub members_matched: u64,
    pub characters_created: u64,
}

/// A name with an amount.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedPoints {
    pub name: String,
    #[serde(with = "super::points_text")]
    pub balance: Points,
}

/// A player whose history does not add up to what the file states.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportMismatch {
    pub name: String,
    #[serde(with = "super::points_text")]
    pub stated: Points,
    #[serde(with = "super::points_text")]
    pub rebuilt: Points,
}

/// The report of an import, as the contract shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub format: String,
    pub dry_run: bool,
    pub roster: RosterCounts,
    pub raids: u64,
    /// Ledger entries written (or, on a dry run, that would be).
    pub entries: u64,
    pub balances: Vec<NamedPoints>,
    pub stated: Vec<NamedPoints>,
    pub mismatches: Vec<ImportMismatch>,
    pub warnings: Vec<String>,
    /// The zone the file's times are in, as the file states it.
    pub time_zone: String,
}
