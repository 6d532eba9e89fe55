//! The roster's records: changes to a member, characters, and a pool's
//! decay schedule.

use dkp_core::roster::CharacterName;
use dkp_core::{Points, Role};
use serde::Serialize;
use uuid::Uuid;

use super::Ts;
use super::points_text;

/// Who joins the roster: a user, by their folded username, or a raider
/// without an account, by name.
#[derive(Clone, Debug)]
pub enum Joining {
    User { username_folded: String },
    Unlinked { name: String },
}

/// A change to a member, any of its parts; the store applies it in one
/// transaction, checking `actor_role` against the member as it finds it.
#[derive(Clone, Debug)]
pub struct MemberChange {
    pub role: Option<Role>,
    /// The folded username of the account to link to a member without one.
    pub link: Option<String>,
    pub active: Option<bool>,
    /// The role of whoever asks: taking a member off the roster (or back)
    /// needs the role that could add them.
    pub actor_role: Role,
}

/// A character in the game, one of a member's: all of them spend from the
/// member's wallet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Character {
    pub id: Uuid,
    pub member_id: Uuid,
    pub name: String,
    pub realm: Option<String>,
    pub class: Option<String>,
    pub spec: Option<String>,
    pub main: bool,
}

/// A character to add.
#[derive(Clone, Debug)]
pub struct NewCharacter {
    pub member_id: Uuid,
    pub name: CharacterName,
    pub class: Option<String>,
    pub spec: Option<String>,
    pub main: bool,
}

/// A change to a character: each part left out stays; `Some(None)` clears
/// a class or spec.
#[derive(Clone, Debug, Default)]
pub struct CharacterChange {
    pub member_id: Option<Uuid>,
    pub class: Option<Option<String>>,
    pub spec: Option<Option<String>>,
    pub main: Option<bool>,
}

/// A pool's decay that runs by itself: `percent` of every positive balance
/// every `every_days` days, next at `next_at`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DecaySchedule {
    #[serde(with = "points_text")]
    pub percent: Points,
    pub every_days: u32,
    pub next_at: Ts,
}

/// What a scheduled decay's run came to.
#[derive(Debug)]
pub enum ScheduledRun {
    /// The period's decay, written now, and the events its commit published.
    Applied(super::Entry, Vec<super::Event>),
    /// Nothing to do: the period was run before, or the schedule changed or
    /// ended since the run was planned.
    Skipped,
}
