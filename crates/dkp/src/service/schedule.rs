//! A pool's decay that runs by itself, and the preview of a decay.
//!
//! Owners set a schedule (`percent` of every positive balance, every
//! `every_days` days, next at `next_at`) or end it. The job runner carries
//! out each period once, however many runners there are and whichever of
//! them dies mid-run (see `store::schedules`); a period missed while nothing
//! ran is not made up (`dkp_core::schedule::next_run`). Each run is one
//! `decay` entry, undone like any entry by reversing it.
//!
//! The preview reads the balances and applies the very rule a decay writes
//! with (`dkp_core::ledger::decay`), writing nothing.

use dkp_core::ledger::decay;
use dkp_core::{AccountRef, Action, Points};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{Caller, Error, Service};
use crate::model::{DecaySchedule, Job, JobEnd, ScheduledRun, Ts};
use crate::store::Read;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleInput {
    /// Percent of each positive balance, above 0 and at most 100.
    pub percent: Value,
    /// Whole days between runs, 1 to 3650.
    pub every_days: Value,
    /// The first run, RFC 3339; a time past runs at once.
    pub next_at: String,
}

/// One member's change in a decay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecayChange {
    pub member_id: Uuid,
    pub amount: Points,
}

fn schedule(input: &ScheduleInput) -> Result<DecaySchedule, Error> {
    let every_days = input.every_days.as_i64().ok_or_else(|| Error::invalid_field("every_days: a whole number"))?;
    let next_at = Ts::parse(&input.next_at)
        .ok_or_else(|| Error::invalid_field("next_at: an RFC 3339 time, like 2026-11-26T18:00:00Z"))?;
    Ok(DecaySchedule {
        percent: super::decay::percent(&input.percent)?,
        every_days: dkp_core::schedule::every_days(every_days)?,
        next_at,
    })
}

impl Service {
    /// Sets the pool's decay schedule, or ends it (`None`); what it is now.
    pub async fn set_decay_schedule(
        &self,
        caller: &Caller,
        slug: &str,
        pool_id: &str,
        input: Option<ScheduleInput>,
    ) -> Result<Option<DecaySchedule>, Error> {
        let access = self.guild_access(caller, slug, Action::ManagePools).await?;
        let pool_id = super::id(pool_id)?;
        let schedule = input.as_ref().map(schedule).transpose()?;
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        self.store.set_decay_schedule(access.guild.id, pool_id, schedule.as_ref(), access.member_id, &ctx).await?;
        Ok(self.store.pool(access.guild.id, pool_id, Read::Fresh).await?.decay_schedule)
    }

    /// The pool's decay schedule, if it has one.
    pub async fn decay_schedule(
        &self,
        caller: &Caller,
        slug: &str,
        pool_id: &str,
    ) -> Result<Option<DecaySchedule>, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        Ok(self.store.pool(access.guild.id, super::id(pool_id)?, caller.reads).await?.decay_schedule)
    }

    /// What a decay of `percent` (by default the schedule's) would take from
    /// each member now; nothing is written.
    pub async fn decay_preview(
        &self,
        caller: &Caller,
        slug: &str,
        pool_id: &str,
        percent: Option<&str>,
    ) -> Result<Vec<DecayChange>, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        let pool_id = super::id(pool_id)?;
        let percent = match percent {
            Some(text) => super::decay::percent(&Value::String(text.to_owned()))?,
            None => match self.store.pool(access.guild.id, pool_id, caller.reads).await?.decay_schedule {
                Some(schedule) => schedule.percent,
                None => return Err(Error::invalid_field("percent: give one, as the pool has no decay schedule")),
            },
        };
        let balances = self.store.balances(access.guild.id, pool_id, caller.reads).await?;
        let changes = decay(&balances, percent)?
            .into_iter()
            .filter_map(|posting| match posting.account {
                AccountRef::Member(member_id) => Some(DecayChange { member_id, amount: posting.amount }),
                AccountRef::System(_) => None,
            })
            .collect();
        Ok(changes)
    }

    /// Carries out one period of a pool's decay schedule.
    pub async fn run_scheduled_decay(&self, job: &Job) -> JobEnd {
        let payload = &job.payload;
        let id = |field: &str| payload[field].as_str().and_then(|text| Uuid::try_parse(text).ok());
        let period = payload["period"].as_str().and_then(Ts::parse);
        let (Some(guild_id), Some(pool_id), Some(version), Some(period)) =
            (job.guild_id, id("pool_id"), id("version"), period)
        else {
            return JobEnd::Failed("the job's payload is not a scheduled decay".into());
        };
        let ctx = self.ctx(None, &format!("job:{}", job.id));
        match self.store.run_scheduled_decay(guild_id, pool_id, version, period, &ctx).await {
            Ok(ScheduledRun::Applied(entry, events)) => {
                self.hub.publish(&events);
                JobEnd::Done(json!({"entry_id": entry.id}))
            }
            Ok(ScheduledRun::Skipped) => {
                JobEnd::Done(json!({"entry_id": null, "skipped": "run before, or the schedule changed since"}))
            }
            Err(error) => match super::error::refusal(&error) {
                Some(refusal) => JobEnd::Failed(refusal.message),
                None => self.retry_job(job, &error),
            },
        }
    }
}
