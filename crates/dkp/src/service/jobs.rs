//! The job runner, inside `dkp serve` or alone as `dkp worker`. It claims due
//! jobs from the job table for a lease (each job goes to one runner), runs
//! them and records the outcome. A runner that dies mid-job, even by
//! SIGKILL, leaves its lease to run out; another runner then claims the job
//! and runs it again. Each job's effect is written so that a second run
//! changes nothing: closing a lot is a guarded transition, a decay is a
//! ledger entry under an idempotency key named after the job, a scheduled
//! decay's period moves on in the transaction of its entry (a guarded
//! transition too).
//!
//! Failures are retried with exponential backoff; a job that fails
//! `MAX_ATTEMPTS` times, or for a reason that will not change, is marked
//! failed and kept for inspection.

use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use serde_json::json;
use tokio::sync::watch;

use super::Service;
use crate::model::{Code, Ending, Job, JobEnd, JobKind, Ts};
use crate::store::Ctx;

/// How often due jobs are looked for: a lot closes at most this late (plus its run).
pub const POLL: Duration = Duration::from_millis(250);
/// Jobs claimed at once.
const CLAIM: u32 = 16;
/// Runs before a failing job is given up.
pub const MAX_ATTEMPTS: i32 = 10;

/// Who runs jobs, and for how long a claim holds.
#[derive(Clone, Debug)]
pub struct Runner {
    /// Unique per process, so a runner can only finish its own claims.
    pub name: String,
    pub lease: Duration,
}

impl Runner {
    pub fn new(role: &str, lease: Duration) -> Runner {
        let name = format!("{role}-{}-{}", std::process::id(), &uuid::Uuid::now_v7().simple().to_string()[20..]);
        Runner { name, lease }
    }
}

/// Runs until `stop` turns true.
pub async fn run(service: Arc<Service>, runner: Runner, mut stop: watch::Receiver<bool>) {
    tracing::info!(runner = %runner.name, "running jobs");
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                run_due(&service, &runner).await;
            }
            _ = stop.changed() => break,
        }
        if *stop.borrow() {
            break;
        }
    }
}

/// Claims and runs the jobs due now; how many it ran.
pub async fn run_due(service: &Service, runner: &Runner) -> usize {
    let now = service.clock.now();
    // Most polls find nothing due, and then take no write lock (on SQLite, the
    // one writer lock the bid writer also needs). A backlog that cannot be
    // read does not stop the claim.
    if observe(service, now).await == Some(0) {
        return 0;
    }
    let lease_until = now.plus(runner.lease);
    let claimed = match service.store.claim_jobs(&runner.name, now, lease_until, CLAIM, MAX_ATTEMPTS).await {
        Ok(claimed) => claimed,
        Err(error) => {
            tracing::warn!(error = %error, "cannot claim jobs");
            return 0;
        }
    };
    for job in &claimed {
        // A job that panics fails like any other instead of ending the runner.
        let end = match std::panic::AssertUnwindSafe(run_one(service, job)).catch_unwind().await {
            Ok(end) => end,
            Err(_) => service.retry_job(job, &"the job's run panicked"),
        };
        let outcome = match &end {
            JobEnd::Done(_) => "done",
            JobEnd::Later(_) => "later",
            JobEnd::Retry { .. } => "retry",
            JobEnd::Failed(_) => "failed",
        };
        metrics::counter!("dkp_jobs_total", "kind" => job.kind.clone(), "outcome" => outcome).increment(1);
        // Each failed run's cause is logged where it fails (`retry`); here, a job given up.
        if let JobEnd::Failed(error) = &end {
            tracing::warn!(job_id = %job.id, kind = %job.kind, attempt = job.attempts, error = %error, "a job failed for good");
        }
        match service.store.finish_job(job.id, &runner.name, &end, service.clock.now()).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(job_id = %job.id, "a job's lease ran out before it finished; it runs again"),
            Err(error) => tracing::warn!(job_id = %job.id, error = %error, "cannot record a job's end; it runs again"),
        }
    }
    claimed.len()
}

/// Sets the gauges of open lots and of the job backlog; how many jobs are
/// due and waiting, if that could be read.
async fn observe(service: &Service, now: Ts) -> Option<i64> {
    if let Ok(open) = service.store.open_lot_count().await {
        metrics::gauge!("dkp_lots_open").set(open as f64);
    }
    let (due, lag_s) = service.store.job_backlog(now).await.ok()?;
    metrics::gauge!("dkp_jobs_due").set(due as f64);
    metrics::gauge!("dkp_jobs_lag_seconds").set(lag_s);
    Some(due)
}

async fn run_one(service: &Service, job: &Job) -> JobEnd {
    match JobKind::parse(&job.kind) {
        Some(JobKind::CloseLot) => close_lot(service, job).await,
        Some(JobKind::Decay) => service.run_decay(job).await,
        Some(JobKind::ScheduledDecay) => service.run_scheduled_decay(job).await,
        None => JobEnd::Failed(format!("no runner knows jobs of kind {}", job.kind)),
    }
}

async fn close_lot(service: &Service, job: &Job) -> JobEnd {
    let lot_id = job.payload["lot_id"].as_str().and_then(|id| uuid::Uuid::try_parse(id).ok());
    let (Some(guild_id), Some(lot_id)) = (job.guild_id, lot_id) else {
        return JobEnd::Failed("the job names no lot".into());
    };
    let ctx =
        Ctx { actor: None, request_id: format!("job:{}", job.id), now: service.clock.now(), outbox: service.outbox };
    match service.finish_lot(guild_id, lot_id, Ending::Due, "", &ctx).await {
        Ok(lot) => JobEnd::Done(json!({"status": lot.status.as_str()})),
        // A late bid moved the end: come back then.
        Err(error) if error.is(Code::LotNotDue) => match service.store.lot(guild_id, lot_id).await {
            Ok(Some(lot)) => JobEnd::Later(lot.ends_at),
            Ok(None) => JobEnd::Failed("the lot is gone".into()),
            Err(error) => service.retry_job(job, &error),
        },
        // Closed by an officer or cancelled: nothing left to do.
        Err(error) if error.is(Code::LotClosed) => JobEnd::Done(json!({"status": "ended before"})),
        Err(error) if error.is(Code::NotFound) => JobEnd::Failed("the lot is gone".into()),
        Err(error) => service.retry_job(job, &error),
    }
}

impl Service {
    /// Sets the gauges of open lots and of the job backlog now (as a runner's
    /// poll does), for a process that runs no jobs itself.
    pub async fn observe_jobs(&self) {
        observe(self, self.clock.now()).await;
    }

    /// Runs a failed job again after a backoff that doubles (1 s to 5 min),
    /// or gives up after `MAX_ATTEMPTS`. The cause is logged; the job keeps
    /// only a word on it, since guild members can read a job.
    pub(super) fn retry_job(&self, job: &Job, cause: &dyn std::fmt::Display) -> JobEnd {
        tracing::warn!(job_id = %job.id, kind = %job.kind, attempt = job.attempts, error = %cause, "a job's run failed");
        let error = "a run failed for a reason of the moment (the database, contention); it is retried".to_owned();
        if job.attempts >= MAX_ATTEMPTS {
            return JobEnd::Failed(error);
        }
        let backoff = Duration::from_secs(1u64 << job.attempts.clamp(0, 8)).min(Duration::from_secs(300));
        JobEnd::Retry { at: self.clock.now().plus(backoff), error }
    }
}
