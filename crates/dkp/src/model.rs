//! The records every layer speaks in: what the store reads and writes, what
//! the use cases take and return, what the transport renders. Plain data with
//! one serialized form each (the form the ledger's audit rows, the event log
//! and the idempotency records keep); how a record looks to a client is the
//! business of `http::wire`, not of these types.
//!
//! Closed sets (entry kinds, event names, job kinds, refusal codes) are enums
//! with one string form each.

/// A serde module `$module` that keeps a closed set `$type` as its one
/// string form (`as_str` / `parse`).
macro_rules! text_form {
    ($module:ident, $type:ty, $what:literal) => {
        mod $module {
            use serde::{Deserialize, Deserializer, Serializer};

            pub fn serialize<S: Serializer>(value: &$type, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(value.as_str())
            }

            // Not every form is read back (a member's role is only shown).
            #[allow(dead_code)]
            pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<$type, D::Error> {
                let text = String::deserialize(deserializer)?;
                <$type>::parse(&text).ok_or_else(|| serde::de::Error::custom(format!(concat!($what, " {:?}"), text)))
            }
        }
    };
}

mod answer;
mod codes;
mod events;
mod imports;
mod jobs;
mod lots;
mod raids;
mod records;
mod roster;
mod time;

pub use answer::{Answer, Refusal, RefusalKind};
pub use codes::Code;
pub use events::{Event, EventName, balance_changed, guild_channel, lot_channel, user_channel};
pub use imports::{
    ImportCommand, ImportMismatch, ImportReport, Imported, ImportedCharacter, ImportedPlayer, NamedPoints, RosterCounts,
};
pub use jobs::{Job, JobEnd, JobKind, NewJob};
pub use lots::{BidBatch, BidCommand, BidOutcome, BidView, Ending, LotView, NewLot};
pub use raids::{
    AttendanceRate, Attendee, Kill, Loot, NewRaid, Raid, RaidAwardCommand, RaidChange, RaidPage, RulesForm, rules_text,
};
pub use records::*;
pub use roster::{Character, CharacterChange, DecaySchedule, Joining, MemberChange, NewCharacter, ScheduledRun};
pub use time::Ts;

/// Serializes points as a string with two decimals (`"12.50"`), and reads them back.
pub mod points_text {
    use dkp_core::Points;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(points: &Points, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(points)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Points, D::Error> {
        stored(&String::deserialize(deserializer)?).ok_or_else(|| serde::de::Error::custom("not an amount"))
    }

    /// Reads an amount this service wrote, which may be a sum beyond the
    /// bound of a single amount (as a balance may be).
    pub fn stored(text: &str) -> Option<Points> {
        let (negative, rest) = text.strip_prefix('-').map_or((false, text), |rest| (true, rest));
        let (whole, fraction) = rest.split_once('.').unwrap_or((rest, ""));
        if whole.is_empty()
            || fraction.len() > 2
            || !(whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit()))
        {
            return None;
        }
        let fraction: i64 = format!("{fraction:0<2}").parse().ok()?;
        let magnitude = whole.parse::<i64>().ok()?.checked_mul(100)?.checked_add(fraction)?;
        Some(Points::from_stored(if negative { -magnitude } else { magnitude }))
    }

    /// The same for an optional amount.
    pub mod option {
        use dkp_core::Points;
        use serde::{Deserialize, Deserializer, Serializer};

        pub fn serialize<S: Serializer>(points: &Option<Points>, serializer: S) -> Result<S::Ok, S::Error> {
            match points {
                Some(points) => serializer.collect_str(points),
                None => serializer.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Points>, D::Error> {
            Option::<String>::deserialize(deserializer)?
                .map(|text| super::stored(&text).ok_or_else(|| serde::de::Error::custom("not an amount")))
                .transpose()
        }
    }
}
