//! Decay: an officer asks for a pool's balances to shrink by a percent, and
//! a job runner carries it out as one `decay` ledger entry (the rule is
//! `dkp_core::ledger::decay`: rounded down, of balances alone, whatever bids
//! hold, so that no decay tells what sealed bids hold). Asking answers 202
//! with the job at once; the job's state tells when it is done.
//!
//! An `Idempotency-Key` on the request is the job's dedup key: a repeat gets
//! the same job (as it stands now). The entry is written under an idempotency
//! key named after the job, which no client can send, so a job run twice (its
//! runner died after the commit) writes it once.

use dkp_core::{Action, Points};
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::idempotency::{Request, job_claim};
use super::{Caller, Error, Service, amount};
use crate::model::{Answer, Code, EntryCommand, EntryRequest, Job, JobEnd, JobKind, NewJob, Recorded};
use crate::store::{Read, StoreError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecayInput {
    /// Percent of each balance, like `"10"` or `"2.5"`.
    pub percent: Value,
    pub reason: Option<String>,
}

impl Service {
    /// Queues a decay of the pool; the job, and whether it is new (not a repeat).
    pub async fn request_decay(
        &self,
        caller: &Caller,
        slug: &str,
        pool_id: &str,
        input: DecayInput,
        idem: Option<Request>,
    ) -> Result<(Job, bool), Error> {
        let access = self.guild_access(caller, slug, Action::MovePoints).await?;
        let pool_id = super::id(pool_id)?;
        // A check before a write: on the primary, which has every pool.
        if !self.store.pools(access.guild.id, Read::Fresh).await?.iter().any(|pool| pool.id == pool_id) {
            return Err(Error::not_found());
        }
        let percent = percent(&input.percent)?;
        let reason = super::ledger::reason(input.reason.as_deref().unwrap_or("decay"))?;
        let request = idem.as_ref().map(Request::fingerprint_hex);
        let job = NewJob {
            kind: JobKind::Decay,
            dedup_key: idem
                .as_ref()
                .map(|idem| format!("{}:{}:{}", JobKind::Decay.as_str(), caller.user.id, idem.key())),
            guild_id: Some(access.guild.id),
            payload: json!({
                "pool_id": pool_id,
                "percent": percent.to_string(),
                "reason": reason,
                "user_id": caller.user.id,
                "member_id": access.member_id,
                "request": request,
            }),
            run_at: self.clock.now(),
        };
        match self.store.enqueue_job(&job, &self.ctx(Some(caller.user.id), &caller.request_id)).await {
            Ok(job) => Ok((job, true)),
            Err(StoreError::Conflict(Code::DuplicateJob)) => {
                let key = job.dedup_key.as_deref().unwrap_or_default();
                let earlier = self.store.job_by_key(key).await?.ok_or_else(Error::not_found)?;
                if earlier.payload["request"] != json!(request) {
                    return Err(StoreError::IdempotencyKeyReused.into());
                }
                Ok((earlier, false))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// One of the guild's jobs.
    pub async fn job(&self, caller: &Caller, slug: &str, job_id: &str) -> Result<Job, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        self.store.job(access.guild.id, super::id(job_id)?).await?.ok_or_else(Error::not_found)
    }

    /// Carries out a decay job.
    pub async fn run_decay(&self, job: &Job) -> JobEnd {
        let Some(command) = decay_command(job) else {
            return JobEnd::Failed("the job's payload is not a decay".into());
        };
        let ctx = self.ctx(command.idempotency.as_ref().map(|claim| claim.user_id), &format!("job:{}", job.id));
        match self.store.record_entry(&command, &ctx).await {
            Ok(Recorded::Fresh(entry, events)) => {
                self.hub.publish(&events);
                JobEnd::Done(json!({"entry_id": entry.id}))
            }
            // An earlier run of this job wrote it already.
            Ok(Recorded::Replay(Answer::Entry(entry))) => JobEnd::Done(json!({"entry_id": entry.id})),
            Ok(Recorded::Replay(Answer::Rendered { body, .. })) => {
                let earlier: Value = serde_json::from_str(&body).unwrap_or_default();
                JobEnd::Done(json!({"entry_id": earlier["entry"]["id"]}))
            }
            Ok(Recorded::Replay(other)) => JobEnd::Failed(format!("an earlier run answered {other:?}")),
            Err(error) => match super::error::refusal(&error) {
                Some(refusal) => JobEnd::Failed(refusal.message),
                None => self.retry_job(job, &error),
            },
        }
    }
}

/// A decay's percent as the contract allows it: an amount above 0 and at
/// most 100, with at most two decimals.
pub(super) fn percent(value: &Value) -> Result<Points, Error> {
    dkp_core::ledger::decay_percent(amount(value)?)
        .map_err(|_| Error::invalid(Code::InvalidAmount, "percent: more than 0 and at most 100"))
}

fn decay_command(job: &Job) -> Option<EntryCommand> {
    let payload = &job.payload;
    let id = |field: &str| payload[field].as_str().and_then(|text| Uuid::try_parse(text).ok());
    Some(EntryCommand {
        guild_id: job.guild_id?,
        pool_id: id("pool_id")?,
        actor_member: id("member_id")?,
        request: EntryRequest::Decay { percent: Points::parse(payload["percent"].as_str()?).ok()? },
        reason: payload["reason"].as_str()?.to_owned(),
        idempotency: Some(job_claim(id("user_id")?, job.id)),
    })
}
