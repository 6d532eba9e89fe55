//! Raids: a pool's earning rules, a raid with its attendance and boss kills,
//! the raid's page (what it paid so far, its lots), attendance rates over a
//! pool's last raids, and the loot history of a guild.

use std::collections::BTreeMap;

use dkp_core::Points;
use dkp_core::raid::{Attendance, Rules};
use serde::Serialize;
use serde::ser::{SerializeStruct, Serializer};
use uuid::Uuid;

use super::{IdempotencyClaim, LotView, Ts, points_text};

/// Rules as shown and kept: `{"boss_kill": "10.00", …, "standby_percent": "50.00"}`.
pub mod rules_text {
    use super::*;

    pub fn serialize<S: Serializer>(rules: &Rules, serializer: S) -> Result<S::Ok, S::Error> {
        let mut form = serializer.serialize_struct("Rules", 4)?;
        form.serialize_field("boss_kill", &rules.boss_kill.to_string())?;
        form.serialize_field("on_time", &rules.on_time.to_string())?;
        form.serialize_field("per_hour", &rules.per_hour.to_string())?;
        form.serialize_field("standby_percent", &rules.standby_percent.to_string())?;
        form.end()
    }
}

/// Rules on their own, as `{"rules": …}` shows them.
pub struct RulesForm<'a>(pub &'a Rules);

impl Serialize for RulesForm<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        rules_text::serialize(self.0, serializer)
    }
}

/// A raid of a pool.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Raid {
    pub id: Uuid,
    pub pool_id: Uuid,
    pub name: String,
    pub zone: Option<String>,
    pub started_at: Ts,
    pub ended_at: Option<Ts>,
    pub created_at: Ts,
    /// The member who made the raid.
    pub created_by: Uuid,
    /// The rules the raid is paid under: its pool's until its first award,
    /// then those of that moment, for good.
    #[serde(with = "rules_text")]
    pub rules: Rules,
}

/// A raid to create.
pub struct NewRaid {
    pub guild_id: Uuid,
    pub pool_id: Uuid,
    pub name: String,
    pub zone: Option<String>,
    pub started_at: Ts,
    pub ended_at: Option<Ts>,
    pub created_by: Uuid,
}

/// What an officer changes of a raid: each field given replaces the old one.
#[derive(Default)]
pub struct RaidChange {
    pub name: Option<String>,
    pub zone: Option<String>,
    pub ended_at: Option<Ts>,
}

/// One attendee of a raid.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Attendee {
    pub member_id: Uuid,
    pub minutes: u32,
    pub on_time: bool,
    pub standby: bool,
}

impl Attendee {
    pub fn attendance(&self) -> Attendance {
        Attendance { minutes: self.minutes, on_time: self.on_time, standby: self.standby }
    }
}

/// A boss killed in a raid.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Kill {
    pub id: Uuid,
    pub boss: String,
    pub killed_at: Ts,
}

/// Everything a raid's page shows.
#[derive(Clone, Debug)]
pub struct RaidPage {
    pub raid: Raid,
    /// In member order.
    pub attendance: Vec<Attendee>,
    /// In the order they died.
    pub kills: Vec<Kill>,
    /// The lots that name the raid, newest first.
    pub lots: Vec<LotView>,
    /// What the raid's entries have paid each member so far (net of
    /// corrections and reversals), members it paid nothing left out.
    pub awarded: BTreeMap<Uuid, Points>,
}

impl RaidPage {
    /// The page of a raid with no record yet.
    pub fn new(raid: Raid) -> RaidPage {
        RaidPage { raid, attendance: Vec::new(), kills: Vec::new(), lots: Vec::new(), awarded: BTreeMap::new() }
    }
}

/// A request to award a raid: pay each attendee what they are due and not yet paid.
pub struct RaidAwardCommand {
    pub guild_id: Uuid,
    pub raid_id: Uuid,
    /// The member making the award.
    pub actor_member: Uuid,
    pub idempotency: Option<IdempotencyClaim>,
}

/// How often a member came to a pool's last raids.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttendanceRate {
    pub member_id: Uuid,
    /// The raids counted: the pool's last N (fewer if it has had fewer).
    pub raids: u32,
    /// Of those, the raids the member attended, present or on standby.
    pub attended: u32,
}

impl AttendanceRate {
    /// `attended` of `raids` as a percent with two decimals, rounded down
    /// (`"66.66"`); `"0.00"` when there were no raids.
    pub fn percent(&self) -> String {
        let hundredths = (u64::from(self.attended) * 100_00).checked_div(u64::from(self.raids)).unwrap_or(0);
        format!("{}.{:02}", hundredths / 100, hundredths % 100)
    }
}

/// An item won: a closed lot with a winner.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Loot {
    pub lot_id: Uuid,
    pub pool_id: Uuid,
    pub item_name: String,
    pub game_item_id: Option<String>,
    pub winner_member_id: Uuid,
    #[serde(with = "points_text")]
    pub price: Points,
    pub closed_at: Ts,
    pub raid_id: Option<Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(raids: u32, attended: u32) -> AttendanceRate {
        AttendanceRate { member_id: Uuid::nil(), raids, attended }
    }

    #[test]
    fn an_attendance_percent_has_two_decimals_rounded_down() {
        assert_eq!(rate(3, 2).percent(), "66.66");
        assert_eq!(rate(4, 4).percent(), "100.00");
        assert_eq!(rate(7, 1).percent(), "14.28");
        assert_eq!(rate(0, 0).percent(), "0.00");
    }
}
