//! What every reader produces: one `Import`, the same shape for every format.
//!
//! Invariants, kept by the builder that makes an `Import`:
//! - `players` holds one entry per member: names that compare equal (see
//!   `names`) are already merged, and every `PlayerRef` in the import is an
//!   index into `players`.
//! - `stated` has at most one balance per player (merged records are added).
//! - A history row's `postings` carry its whole effect on balances, at most one
//!   posting per player; a loot row given to no player, or for free, has none.
//!   Rebuilding a balance is summing postings, nothing else, so the import
//!   keeps the sums (`History`), not the rows.
//! - Amounts are exact hundredths (`Points`); no float is ever involved.

use dkp_core::Points;

use crate::Format;
use crate::class::Class;
use crate::history::History;
use crate::names;
use crate::time::{At, TimeZone};

/// A file read into the service's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub format: Format,
    /// One per member, in the order the file first names them.
    pub players: Vec<Player>,
    /// What the file says each player holds (for formats that say it).
    pub stated: Vec<Stated>,
    /// Every movement of points and every piece of loot, folded into sums
    /// and counts (`read_rows` gives the rows themselves).
    pub history: History,
    pub raids: Vec<Raid>,
    pub warnings: Vec<String>,
    /// The zone the file's times are in.
    pub time_zone: TimeZone,
    /// When the file says it was exported, if it says.
    pub exported_at: Option<At>,
    /// Whether `-Realm` suffixes were dropped from names (the file mixed both forms).
    pub realms_dropped: bool,
}

/// A player: the index of a member in `Import::players`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PlayerRef(pub(crate) u32);

impl PlayerRef {
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

/// One member of the guild as the file knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Player {
    /// The name as the file first writes it.
    pub name: String,
    /// The name compared the way the game compares names.
    pub key: String,
    pub class: Option<Class>,
    /// The member's characters, the main first; every player has at least one.
    pub characters: Vec<Character>,
}

/// A character in the game, one of a member's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Character {
    pub name: String,
    /// The full name as the file writes it, compared as the game compares names.
    pub key: String,
    pub realm: Option<String>,
    pub class: Option<Class>,
    pub main: bool,
}

/// A balance the file states, with the lifetime totals where it gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stated {
    pub player: PlayerRef,
    pub balance: Points,
    pub earned: Option<Points>,
    /// Spent over the player's lifetime, as a positive amount.
    pub spent: Option<Points>,
}

/// One event of the file's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryRow {
    pub kind: Kind,
    pub at: Option<At>,
    pub postings: Vec<Posting>,
    pub reason: Option<String>,
    /// Boxed: most rows carry no loot, and a row stays small when a file has a million.
    pub loot: Option<Box<Loot>>,
    /// The raid this happened in: an index into `Import::raids`.
    pub raid: Option<usize>,
    /// The line of the file where the record starts.
    pub line: u64,
}

/// What a history row does to one player's balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Posting {
    pub player: PlayerRef,
    pub amount: Points,
}

/// What sort of event a history row is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Points given (raid bonuses, boss kills).
    Award,
    /// Points corrected by hand, either way.
    Adjustment,
    /// Points taken by a percentage decay.
    Decay,
    /// An item given out, and its price where one was paid.
    Loot,
    /// A total carried from history the tool itself pruned (MonolithDKP's archive).
    Carried,
}

impl Kind {
    pub const ALL: [Kind; 5] = [Kind::Award, Kind::Adjustment, Kind::Decay, Kind::Loot, Kind::Carried];

    /// The kind's position in `Kind::ALL`.
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Award => "award",
            Kind::Adjustment => "adjustment",
            Kind::Decay => "decay",
            Kind::Loot => "loot",
            Kind::Carried => "carried",
        }
    }
}

/// An item given out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loot {
    pub item: Item,
    pub to: Recipient,
    pub boss: Option<String>,
    pub zone: Option<String>,
    pub note: Option<String>,
}

/// An item, by its name and (where the file gives it) the game's item id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub id: Option<u32>,
}

/// Who got an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recipient {
    Player(PlayerRef),
    /// Disenchanted: no player got it (Gargul's `||de||`, MRT's `disenchanted`).
    Disenchanted,
    /// Kept by the guild bank.
    Bank,
}

/// A raid night: who was there when, which bosses died.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raid {
    pub zone: Option<String>,
    pub size: Option<u32>,
    pub start: At,
    pub end: Option<At>,
    pub attendance: Vec<Attendance>,
    pub kills: Vec<Kill>,
    pub line: u64,
}

/// One stay of a player in a raid; a player who left and came back has two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attendance {
    pub player: PlayerRef,
    pub join: Option<At>,
    /// `None` when the file has no leave time (still there when the raid ended).
    pub leave: Option<At>,
}

/// A boss killed in a raid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Kill {
    pub boss: String,
    pub at: Option<At>,
}

impl Import {
    pub fn player(&self, player: PlayerRef) -> &Player {
        &self.players[player.index()]
    }

    /// The player a name (of a member or any of its characters) means in this import,
    /// compared as the import compared names.
    pub fn find(&self, name: &str) -> Option<PlayerRef> {
        let key = names::lookup_key(name, self.format.uses_realms(), self.realms_dropped);
        let index = self.players.iter().position(|player| player.key == key).or_else(|| {
            self.players.iter().position(|player| player.characters.iter().any(|character| character.key == key))
        })?;
        Some(PlayerRef(index as u32))
    }

    /// The balance the file states for a player.
    pub fn stated_balance(&self, player: PlayerRef) -> Option<Points> {
        self.stated.iter().find(|stated| stated.player == player).map(|stated| stated.balance)
    }
}
