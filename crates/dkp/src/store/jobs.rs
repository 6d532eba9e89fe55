//! The job table. A job is written in the transaction of the change that
//! causes it (a lot's closing job with the lot), or alone (a decay asked
//! for). A runner claims due jobs for a lease in one statement (on
//! PostgreSQL with `SKIP LOCKED`, so runners never wait on each other); a
//! runner that dies leaves its lease to run out, and the job is claimed
//! again. Jobs are therefore run at least once, and each job's effect is
//! written so that running it twice changes nothing: a guarded lot
//! transition, a ledger entry under an idempotency key.

use uuid::Uuid;

use super::audit::OnUnique;
use super::sql::{Backend, Row, Tx};
use super::{Ctx, Store, StoreError};
use crate::model::{Code, Job, JobEnd, NewJob, Ts};

/// The columns a `Job` is read from.
macro_rules! job_columns {
    () => {
        " id, kind, guild_id, payload, state, run_at, attempts, result, last_error, created_at, finished_at"
    };
}

/// `$head`, the columns a `Job` is read from, then the rest of the statement.
macro_rules! job_sql {
    ($head:literal, $tail:literal) => {
        concat!($head, job_columns!(), $tail)
    };
}

fn job_of(row: &Row) -> Result<Job, StoreError> {
    let json = |text: String| serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("job json: {e}")));
    Ok(Job {
        id: row.get("id")?,
        kind: row.get("kind")?,
        guild_id: row.get("guild_id")?,
        payload: json(row.get("payload")?)?,
        state: row.get("state")?,
        run_at: row.get("run_at")?,
        attempts: row.get("attempts")?,
        result: row.get::<Option<String>>("result")?.map(json).transpose()?,
        last_error: row.get("last_error")?,
        created_at: row.get("created_at")?,
        finished_at: row.get("finished_at")?,
    })
}

/// The condition of a job that is due and not held: queued, its time come
/// (`$1` is now), and its last lease, if any, run out.
macro_rules! due {
    () => {
        "state = 'queued' AND run_at <= $1 AND (locked_until IS NULL OR locked_until < $1)"
    };
}

/// Claims for `$2` until `$3` up to `$4` due jobs, oldest first, and returns them.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE jobs SET locked_by = $2, locked_until = $3, attempts = attempts + 1 WHERE id IN \
              (SELECT id FROM jobs WHERE ",
            due!(),
            " ORDER BY run_at LIMIT $4",
            $lock,
            ") RETURNING",
            job_columns!()
        )
    };
}

/// The statement that writes a job.
macro_rules! insert_job {
    () => {
        "INSERT INTO jobs (id, kind, dedup_key, guild_id, payload, state, run_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7)"
    };
}

/// Writes a job inside `tx`; a job with the same key is left as it is.
pub async fn enqueue(tx: &mut Tx, job: &NewJob, ctx: &Ctx) -> Result<Uuid, StoreError> {
    let id = Uuid::now_v7();
    insert(tx, id, job, ctx, concat!(insert_job!(), " ON CONFLICT (dedup_key) DO NOTHING")).await?;
    Ok(id)
}

async fn insert(tx: &mut Tx, id: Uuid, job: &NewJob, ctx: &Ctx, sql: &'static str) -> Result<u64, sqlx::Error> {
    tx.sql(sql)
        .bind(id)
        .bind(job.kind.as_str())
        .bind(job.dedup_key.clone())
        .bind(job.guild_id)
        .bind(job.payload.to_string())
        .bind(job.run_at)
        .bind(ctx.now)
        .execute()
        .await
}

impl Store {
    /// Writes a job on its own; 409 `duplicate_job` when its key is taken.
    pub async fn enqueue_job(&self, job: &NewJob, ctx: &Ctx) -> Result<Job, StoreError> {
        let id = Uuid::now_v7();
        let mut tx = self.db.begin_write().await?;
        insert(&mut tx, id, job, ctx, insert_job!()).await.on_unique(
            "jobs_dedup_key_key",
            "jobs.dedup_key",
            Code::DuplicateJob,
        )?;
        tx.commit().await?;
        let row = self.db.sql(job_sql!("SELECT", " FROM jobs WHERE id = $1")).bind(id).fetch_optional().await?;
        row.as_ref().map(job_of).transpose()?.ok_or(StoreError::NotFound)
    }

    /// The job with this dedup key, if any.
    pub async fn job_by_key(&self, key: &str) -> Result<Option<Job>, StoreError> {
        self.db
            .sql(job_sql!("SELECT", " FROM jobs WHERE dedup_key = $1"))
            .bind(key)
            .fetch_optional()
            .await?
            .as_ref()
            .map(job_of)
            .transpose()
    }

    /// A guild's job.
    pub async fn job(&self, guild_id: Uuid, id: Uuid) -> Result<Option<Job>, StoreError> {
        self.db
            .sql(job_sql!("SELECT", " FROM jobs WHERE guild_id = $1 AND id = $2"))
            .bind(guild_id)
            .bind(id)
            .fetch_optional()
            .await?
            .as_ref()
            .map(job_of)
            .transpose()
    }

    /// Claims up to `limit` due jobs for `runner` until `lease_until` (the
    /// caller looks first whether any is due: see `backlog`). A job whose runs all
    /// died before they could record an end (it crashes its runner, or outlives
    /// every lease) is given up instead, not claimed forever.
    pub async fn claim_jobs(
        &self,
        runner: &str,
        now: Ts,
        lease_until: Ts,
        limit: u32,
        max_attempts: i32,
    ) -> Result<Vec<Job>, StoreError> {
        self.db
            .sql(concat!(
                "UPDATE jobs SET state = 'failed', finished_at = $1, locked_by = NULL, locked_until = NULL, \
              last_error = 'no run finished; given up' WHERE attempts >= $2 AND ",
                due!()
            ))
            .bind(now)
            .bind(max_attempts)
            .execute()
            .await?;
        let sql = match self.db.backend() {
            Backend::Postgres => claim_sql!(" FOR UPDATE SKIP LOCKED"),
            // One writer at a time: nothing to skip.
            Backend::Sqlite => claim_sql!(""),
        };
        let rows = self.db.sql(sql).bind(now).bind(runner).bind(lease_until).bind(i64::from(limit)).fetch_all().await?;
        rows.iter().map(job_of).collect()
    }

    /// Records how a claimed run ended, unless the lease was lost to another
    /// runner meanwhile (then that runner's run counts). Whether it was recorded.
    pub async fn finish_job(&self, id: Uuid, runner: &str, end: &JobEnd, now: Ts) -> Result<bool, StoreError> {
        let (state, run_at, result, error) = match end {
            JobEnd::Done(result) => ("done", None, Some(result.to_string()), None),
            JobEnd::Later(at) => ("queued", Some(*at), None, None),
            JobEnd::Retry { at, error } => ("queued", Some(*at), None, Some(error.clone())),
            JobEnd::Failed(error) => ("failed", None, None, Some(error.clone())),
        };
        let finished_at = (state != "queued").then_some(now);
        let changed = self
                .db
            .sql(
                "UPDATE jobs SET state = $1, run_at = COALESCE($2, run_at), result = $3, last_error = COALESCE($4, last_error), \
                  finished_at = $5, locked_by = NULL, locked_until = NULL, \
                  attempts = CASE WHEN $6 THEN attempts - 1 ELSE attempts END \
                  WHERE id = $7 AND locked_by = $8",
            )
            .bind(state)
            .bind(run_at)
            .bind(result)
            .bind(error)
            .bind(finished_at)
            .bind(matches!(end, JobEnd::Later(_)))
            .bind(id)
            .bind(runner)
            .execute()
            .await?;
        Ok(changed == 1)
    }

    /// Jobs due now and not running, and how late the oldest of them is, in seconds.
    pub async fn job_backlog(&self, now: Ts) -> Result<(i64, f64), StoreError> {
        let row = self
            .db
            .sql(concat!("SELECT COUNT(*) AS due, MIN(run_at) AS oldest FROM jobs WHERE ", due!()))
            .bind(now)
            .fetch_one()
            .await?;
        let oldest = row.get::<Option<Ts>>("oldest")?.map_or(0.0, |at| (now.0 - at.0).as_seconds_f64().max(0.0));
        Ok((row.get("due")?, oldest))
    }
}
