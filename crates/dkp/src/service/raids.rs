//! Raids and a pool's earning rules: owners set the rules, officers create
//! raids and keep their record (attendance, boss kills), members read them.
//! Nothing here moves points; the award is `raid_award`.

use dkp_core::raid::Rules;
use dkp_core::{Action, names};
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::{Caller, Error, Read, Service, amount, field_id};
use crate::model::{Attendee, Code, NewRaid, Page, PageRequest, Pool, Raid, RaidChange, RaidPage, Ts};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesInput {
    pub boss_kill: Value,
    pub on_time: Value,
    pub per_hour: Value,
    /// A percent with at most two decimals, like `50` or `"33.5"`.
    pub standby_percent: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewRaidInput {
    pub pool_id: String,
    pub name: String,
    pub zone: Option<String>,
    pub started_at: String,
    pub ended_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RaidChangeInput {
    pub name: Option<String>,
    pub zone: Option<String>,
    pub ended_at: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttendanceInput {
    pub attendees: Vec<AttendeeInput>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttendeeInput {
    pub member_id: String,
    pub minutes: i64,
    #[serde(default)]
    pub on_time: bool,
    #[serde(default)]
    pub standby: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KillInput {
    pub boss: String,
    pub killed_at: String,
}

/// The most attendees one raid keeps (a raid is 40 at most in any game; the
/// bound keeps each statement within the databases' limits on bound values).
const MAX_ATTENDEES: usize = 1000;

/// The most minutes one attendee may be recorded for: a week.
const MAX_MINUTES: i64 = 7 * 24 * 60;

/// Reads a time of a raid: RFC 3339 with any offset, kept in UTC to the
/// microsecond, from the year 1900 to 9999.
fn time_field(field: &'static str, text: &str) -> Result<Ts, Error> {
    let bad = || Error::invalid_field(format!("{field}: an RFC 3339 time such as 2026-11-26T18:00:00Z"));
    let parsed = OffsetDateTime::parse(text, &Rfc3339).map_err(|_| bad())?;
    if !(1900..=9999).contains(&parsed.year()) {
        return Err(bad());
    }
    Ts::from_micros((parsed.unix_timestamp_nanos() / 1_000) as i64).ok_or_else(bad)
}

fn rules(input: &RulesInput) -> Result<Rules, Error> {
    let rules = Rules {
        boss_kill: amount(&input.boss_kill)?,
        on_time: amount(&input.on_time)?,
        per_hour: amount(&input.per_hour)?,
        standby_percent: amount(&input.standby_percent)?,
    };
    // A negative amount or a percent beyond 0-100: refused like any amount out of range.
    rules.check().map_err(|error| Error::invalid(Code::InvalidAmount, error.to_string()))
}

fn attendees(input: &AttendanceInput) -> Result<Vec<Attendee>, Error> {
    if input.attendees.len() > MAX_ATTENDEES {
        return Err(Error::invalid_field(format!("attendees: at most {MAX_ATTENDEES}")));
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut attendees = Vec::with_capacity(input.attendees.len());
    for attendee in &input.attendees {
        let member_id = field_id("attendees.member_id", &attendee.member_id)?;
        if !seen.insert(member_id) {
            return Err(Error::invalid_field(format!("attendees: member {member_id} is named twice")));
        }
        if !(0..=MAX_MINUTES).contains(&attendee.minutes) {
            return Err(Error::invalid_field(format!("attendees.minutes: from 0 to {MAX_MINUTES}")));
        }
        let minutes = attendee.minutes as u32;
        attendees.push(Attendee { member_id, minutes, on_time: attendee.on_time, standby: attendee.standby });
    }
    Ok(attendees)
}

impl Service {
    /// Replaces a pool's earning rules (owners): the pool with them.
    pub async fn set_rules(
        &self,
        caller: &Caller,
        slug: &str,
        pool_id: &str,
        input: RulesInput,
    ) -> Result<Pool, Error> {
        let access = self.guild_access(caller, slug, Action::ManagePools).await?;
        let pool_id = super::id(pool_id)?;
        let rules = rules(&input)?;
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        Ok(self.store.set_rules(access.guild.id, pool_id, rules, &ctx).await?)
    }

    /// A pool of the guild, with its rules.
    pub async fn pool(&self, caller: &Caller, slug: &str, pool_id: &str) -> Result<Pool, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        let pool_id = super::id(pool_id)?;
        Ok(self.store.pool(access.guild.id, pool_id, caller.reads).await?)
    }

    pub async fn create_raid(&self, caller: &Caller, slug: &str, input: NewRaidInput) -> Result<Raid, Error> {
        let access = self.guild_access(caller, slug, Action::RunRaids).await?;
        let started_at = time_field("started_at", &input.started_at)?;
        let ended_at = input.ended_at.as_deref().map(|t| time_field("ended_at", t)).transpose()?;
        if ended_at.is_some_and(|end| end < started_at) {
            return Err(Error::invalid_field("ended_at: before started_at"));
        }
        let raid = NewRaid {
            guild_id: access.guild.id,
            pool_id: field_id("pool_id", &input.pool_id)?,
            name: names::display_text("name", &input.name, 200)?,
            zone: input.zone.as_deref().map(|zone| names::display_text("zone", zone, 100)).transpose()?,
            started_at,
            ended_at,
            created_by: access.member_id,
        };
        Ok(self.store.create_raid(&raid, &self.ctx(Some(caller.user.id), &caller.request_id)).await?)
    }

    pub async fn raids(
        &self,
        caller: &Caller,
        slug: &str,
        pool_id: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<Raid>, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        let pool_id = pool_id.map(|p| field_id("pool_id", p)).transpose()?;
        Ok(self.store.raids(access.guild.id, pool_id, page, caller.reads).await?)
    }

    pub async fn raid(&self, caller: &Caller, slug: &str, raid_id: &str) -> Result<RaidPage, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        Ok(self.store.raid_page(access.guild.id, super::id(raid_id)?, caller.reads).await?)
    }

    pub async fn change_raid(
        &self,
        caller: &Caller,
        slug: &str,
        raid_id: &str,
        input: RaidChangeInput,
    ) -> Result<RaidPage, Error> {
        let change = RaidChange {
            name: input.name.as_deref().map(|name| names::display_text("name", name, 200)).transpose()?,
            zone: input.zone.as_deref().map(|zone| names::display_text("zone", zone, 100)).transpose()?,
            ended_at: input.ended_at.as_deref().map(|t| time_field("ended_at", t)).transpose()?,
        };
        self.record_raid(caller, slug, raid_id, |store, guild, raid, ctx| async move {
            store.change_raid(guild, raid, &change, &ctx).await
        })
        .await
    }

    pub async fn set_attendance(
        &self,
        caller: &Caller,
        slug: &str,
        raid_id: &str,
        input: AttendanceInput,
    ) -> Result<RaidPage, Error> {
        let attendees = attendees(&input)?;
        self.record_raid(caller, slug, raid_id, |store, guild, raid, ctx| async move {
            store.set_attendance(guild, raid, &attendees, &ctx).await
        })
        .await
    }

    pub async fn add_kill(
        &self,
        caller: &Caller,
        slug: &str,
        raid_id: &str,
        input: KillInput,
    ) -> Result<RaidPage, Error> {
        let boss = names::display_text("boss", &input.boss, 200)?;
        let killed_at = time_field("killed_at", &input.killed_at)?;
        self.record_raid(caller, slug, raid_id, |store, guild, raid, ctx| async move {
            store.add_kill(guild, raid, &boss, killed_at, &ctx).await
        })
        .await
    }

    pub async fn remove_kill(
        &self,
        caller: &Caller,
        slug: &str,
        raid_id: &str,
        kill_id: &str,
    ) -> Result<RaidPage, Error> {
        let kill_id = super::id(kill_id)?;
        self.record_raid(caller, slug, raid_id, |store, guild, raid, ctx| async move {
            store.remove_kill(guild, raid, kill_id, &ctx).await
        })
        .await
    }

    /// A change of a raid's record by an officer (`write`), answered with the
    /// raid's page as it now stands.
    async fn record_raid<'a, F, Fut>(
        &'a self,
        caller: &Caller,
        slug: &str,
        raid_id: &str,
        write: F,
    ) -> Result<RaidPage, Error>
    where
        F: FnOnce(&'a crate::store::Store, Uuid, Uuid, crate::store::Ctx) -> Fut,
        Fut: std::future::Future<Output = Result<(), crate::store::StoreError>>,
    {
        let access = self.guild_access(caller, slug, Action::RunRaids).await?;
        let raid_id = super::id(raid_id)?;
        write(self.store.as_ref(), access.guild.id, raid_id, self.ctx(Some(caller.user.id), &caller.request_id))
            .await?;
        Ok(self.store.raid_page(access.guild.id, raid_id, Read::Fresh).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raid_time_is_kept_in_utc_and_anything_else_is_refused() {
        let at = time_field("t", "2026-11-26T20:00:00+02:00").unwrap();
        assert_eq!(at, time_field("t", "2026-11-26T18:00:00Z").unwrap());
        for bad in ["", "yesterday", "2026-11-26", "1899-12-31T23:59:59Z", "2026-11-26T18:00:00"] {
            assert!(time_field("t", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn attendance_refuses_duplicates_and_negative_minutes() {
        let one = |member: &str, minutes: i64| AttendeeInput {
            member_id: member.to_owned(),
            minutes,
            on_time: false,
            standby: false,
        };
        let id = Uuid::now_v7().to_string();
        assert!(attendees(&AttendanceInput { attendees: vec![one(&id, 60)] }).is_ok());
        assert!(attendees(&AttendanceInput { attendees: vec![one(&id, 60), one(&id, 30)] }).is_err());
        assert!(attendees(&AttendanceInput { attendees: vec![one(&id, -1)] }).is_err());
        assert!(attendees(&AttendanceInput { attendees: vec![one("nope", 1)] }).is_err());
    }
}
