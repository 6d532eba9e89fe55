//! Decay schedules: a pool's decay that runs by itself, once per period.
//!
//! Setting a schedule gives it a new `version` and plans its first run as a
//! job named after the pool, the version and the period (so a run is planned
//! once). A run is one transaction in the write lane: the guarded
//! transition of the schedule from this period to the next (it changes a row
//! only if the schedule still has this version and this period), the decay
//! entry, and the next period's job. Two runners of one period, or a runner
//! killed in the middle and the one that takes its job over, therefore
//! apply the decay once: whichever commits first moves the period on, and
//! any other finds nothing to do. A run planned before the schedule was set
//! anew or ended finds nothing to do either.

use dkp_core::Points;
use dkp_core::schedule::next_run;
use serde_json::json;
use uuid::Uuid;

use super::audit::{AuditWrite, audit};
use super::jobs::enqueue;
use super::ledger::write_entry;
use super::retry::retry;
use super::sql::{Db, Row, Tx};
use super::{Ctx, Store, StoreError};
use crate::model::{DecaySchedule, EntryCommand, EntryRequest, JobKind, NewJob, ScheduledRun, Ts};

/// The schedule in a row's `percent`, `every_days` and `next_at`, if it has one.
pub(super) fn schedule_of(row: &Row) -> Result<Option<DecaySchedule>, StoreError> {
    let (Some(percent), Some(every_days), Some(next_at)) =
        (row.get::<Option<i64>>("percent")?, row.get::<Option<i32>>("every_days")?, row.get::<Option<Ts>>("next_at")?)
    else {
        return Ok(None);
    };
    let every_days = u32::try_from(every_days).map_err(|_| StoreError::Corrupt("a schedule's every_days".into()))?;
    Ok(Some(DecaySchedule { percent: Points::from_stored(percent), every_days, next_at }))
}

/// The job that runs the period of `version` due at `period`.
fn run_job(guild_id: Uuid, pool_id: Uuid, version: Uuid, period: Ts) -> NewJob {
    NewJob {
        kind: JobKind::ScheduledDecay,
        dedup_key: Some(format!("{}:{pool_id}:{version}:{}", JobKind::ScheduledDecay.as_str(), period.micros())),
        guild_id: Some(guild_id),
        payload: json!({"pool_id": pool_id, "version": version, "period": period}),
        run_at: period,
    }
}

/// A pool's schedule as stored: its version and its setter beside it.
struct Stored {
    schedule: DecaySchedule,
    version: Uuid,
    set_by: Uuid,
}

async fn stored(tx: &mut Tx, guild_id: Uuid, pool_id: Uuid) -> Result<Option<Stored>, StoreError> {
    let row = tx
        .sql(
            "SELECT version, percent, every_days, next_at, set_by FROM decay_schedules \
              WHERE guild_id = $1 AND pool_id = $2",
        )
        .bind(guild_id)
        .bind(pool_id)
        .fetch_optional()
        .await?;
    let Some(row) = row else { return Ok(None) };
    let schedule = schedule_of(&row)?.ok_or_else(|| StoreError::Corrupt("a schedule without its parts".into()))?;
    Ok(Some(Stored { schedule, version: row.get("version")?, set_by: row.get("set_by")? }))
}

async fn set_schedule(
    tx: &mut Tx,
    guild_id: Uuid,
    pool_id: Uuid,
    schedule: Option<&DecaySchedule>,
    set_by: Uuid,
    ctx: &Ctx,
) -> Result<(), StoreError> {
    let pool = tx.sql("SELECT id FROM pools WHERE guild_id = $1 AND id = $2").bind(guild_id).bind(pool_id);
    pool.fetch_optional().await?.ok_or(StoreError::NotFound)?;
    let before = stored(tx, guild_id, pool_id).await?.map(|stored| stored.schedule);
    if before.as_ref() == schedule {
        return Ok(());
    }
    match schedule {
        None => {
            tx.sql("DELETE FROM decay_schedules WHERE guild_id = $1 AND pool_id = $2")
                .bind(guild_id)
                .bind(pool_id)
                .execute()
                .await?;
        }
        Some(schedule) => {
            let version = Uuid::now_v7();
            tx.sql(
                "INSERT INTO decay_schedules (pool_id, guild_id, version, percent, every_days, next_at, set_by, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (pool_id) DO UPDATE SET version = excluded.version, \
                 percent = excluded.percent, every_days = excluded.every_days, next_at = excluded.next_at, \
                 set_by = excluded.set_by, updated_at = excluded.updated_at",
            )
            .bind(pool_id)
            .bind(guild_id)
            .bind(version)
            .bind(schedule.percent.hundredths())
            .bind(i32::try_from(schedule.every_days).map_err(|_| StoreError::Corrupt("every_days".into()))?)
            .bind(schedule.next_at)
            .bind(set_by)
            .bind(ctx.now)
            .execute()
            .await?;
            enqueue(tx, &run_job(guild_id, pool_id, version, schedule.next_at), ctx).await?;
        }
    }
    let row = AuditWrite::new(ctx, Some(guild_id), "pool.decay_schedule", "pool", pool_id);
    audit(tx, row.before(&before).after(schedule)).await
}

/// One try at running the period of `version` due at `period`.
async fn run(
    db: &Db,
    guild_id: Uuid,
    pool_id: Uuid,
    version: Uuid,
    period: Ts,
    ctx: &Ctx,
) -> Result<ScheduledRun, StoreError> {
    let mut tx = db.begin_write_in_lane().await?;
    let Some(stored) = stored(&mut tx, guild_id, pool_id).await? else { return Ok(ScheduledRun::Skipped) };
    if stored.version != version || stored.schedule.next_at != period {
        return Ok(ScheduledRun::Skipped);
    }
    let next = next_run(period.micros(), stored.schedule.every_days, ctx.now.micros());
    let next = Ts::from_micros(next).ok_or_else(|| StoreError::Corrupt("a schedule's next run".into()))?;
    let moved = tx
        .sql(
            "UPDATE decay_schedules SET next_at = $1 \
              WHERE guild_id = $2 AND pool_id = $3 AND version = $4 AND next_at = $5",
        )
        .bind(next)
        .bind(guild_id)
        .bind(pool_id)
        .bind(version)
        .bind(period)
        .execute()
        .await?;
    if moved != 1 {
        return Ok(ScheduledRun::Skipped);
    }
    let percent = stored.schedule.percent;
    let command = EntryCommand {
        guild_id,
        pool_id,
        actor_member: stored.set_by,
        request: EntryRequest::Decay { percent },
        reason: format!("scheduled decay of {percent}%"),
        idempotency: None,
    };
    let (entry, events) = write_entry(&mut tx, &command, ctx).await?;
    enqueue(&mut tx, &run_job(guild_id, pool_id, version, next), ctx).await?;
    tx.commit().await?;
    Ok(ScheduledRun::Applied(entry, events))
}

impl Store {
    /// Sets a pool's decay schedule, or ends it (`None`), and plans its first
    /// run. Setting the schedule it has already changes nothing.
    pub async fn set_decay_schedule(
        &self,
        guild_id: Uuid,
        pool_id: Uuid,
        schedule: Option<&DecaySchedule>,
        set_by: Uuid,
        ctx: &Ctx,
    ) -> Result<(), StoreError> {
        write_tx!(self, "set_decay_schedule", |tx| set_schedule(tx, guild_id, pool_id, schedule, set_by, ctx))
    }

    /// Runs one period of a pool's decay schedule: once, whoever else runs it.
    pub async fn run_scheduled_decay(
        &self,
        guild_id: Uuid,
        pool_id: Uuid,
        version: Uuid,
        period: Ts,
        ctx: &Ctx,
    ) -> Result<ScheduledRun, StoreError> {
        let _turn = self.gate.enter().await?;
        retry("scheduled_decay", || run(&self.db, guild_id, pool_id, version, period, ctx)).await
    }
}
