//! Pools and the movements of points: awards, adjustments, transfers and
//! reversals, each one ledger entry, each optionally idempotent.

use dkp_core::Action;
use dkp_core::names;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::idempotency::Request;
use super::ledger_writer::{LedgerWriter, QUEUE, Queued};
use super::{Caller, Error, Service, amount, field_id};
use crate::model::{
    Entry, EntryCommand, EntryRequest, IdempotencyClaim, Membership, Page, PageRequest, Pool, Recorded, Standing,
};
use crate::store::{Ctx, EntryJob, NewPool, StoreError};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPoolInput {
    pub name: String,
    #[serde(default)]
    pub allow_negative: bool,
    /// Whether a lot's price goes to the present attendees of its raid.
    #[serde(default)]
    pub zero_sum: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AwardInput {
    pub member_ids: Vec<String>,
    pub amount: Value,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentInput {
    pub member_id: String,
    pub amount: Value,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TransferInput {
    pub from_member_id: String,
    pub to_member_id: String,
    pub amount: Value,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReversalInput {
    pub reason: String,
}

/// A standing as the member `access` is may see it: their own whole, another's
/// without the holds of sealed bids.
fn seen_by(access: &Membership, standing: Standing) -> Standing {
    if standing.member_id == access.member_id { standing } else { standing.seen_by_others() }
}

/// The most members one award may name (a raid is far smaller; the bound keeps
/// each statement within the databases' limits on bound values).
const MAX_AWARDED: usize = 1000;

pub(super) fn reason(text: &str) -> Result<String, Error> {
    Ok(names::display_text("reason", text, 500)?)
}

impl Service {
    pub async fn create_pool(&self, caller: &Caller, slug: &str, input: NewPoolInput) -> Result<Pool, Error> {
        let access = self.guild_access(caller, slug, Action::ManagePools).await?;
        let name = names::display_text("name", &input.name, 64)?;
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        let pool = NewPool { name: &name, allow_negative: input.allow_negative, zero_sum: input.zero_sum };
        Ok(self.store.create_pool(access.guild.id, &pool, &ctx).await?)
    }

    pub async fn pools(&self, caller: &Caller, slug: &str) -> Result<Vec<Pool>, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        Ok(self.store.pools(access.guild.id, caller.reads).await?)
    }

    /// The pool's standings: of members on the roster, or with
    /// `include_inactive` of everyone.
    pub async fn standings(
        &self,
        caller: &Caller,
        slug: &str,
        pool_id: &str,
        include_inactive: bool,
    ) -> Result<Vec<Standing>, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        let standings =
            self.store.standings(access.guild.id, super::id(pool_id)?, include_inactive, caller.reads).await?;
        Ok(standings.into_iter().map(|s| seen_by(&access, s)).collect())
    }

    /// One member's standing in the pool, as the caller may see it; `None`
    /// for a member without an account there.
    pub async fn standing(
        &self,
        caller: &Caller,
        slug: &str,
        pool_id: &str,
        member_id: Uuid,
    ) -> Result<Option<Standing>, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        let standing = self.store.standing(access.guild.id, super::id(pool_id)?, member_id, caller.reads).await?;
        Ok(standing.map(|s| seen_by(&access, s)))
    }

    pub async fn entries(
        &self,
        caller: &Caller,
        slug: &str,
        pool_id: &str,
        member_id: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<Entry>, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        let member_id = member_id.map(|m| field_id("member_id", m)).transpose()?;
        Ok(self.store.entries(access.guild.id, super::id(pool_id)?, member_id, page, caller.reads).await?)
    }

    pub async fn award(
        &self,
        caller: &Caller,
        slug: &str,
        pool_id: &str,
        input: AwardInput,
        idem: Option<Request>,
    ) -> Result<Recorded<Entry>, Error> {
        if input.member_ids.len() > MAX_AWARDED {
            return Err(Error::invalid_field(format!("member_ids: at most {MAX_AWARDED} in one award")));
        }
        let member_ids =
            input.member_ids.iter().map(|m| field_id("member_ids", m)).collect::<Result<Vec<Uuid>, _>>()?;
        let request = EntryRequest::Award { member_ids, amount: amount(&input.amount)? };
        self.move_points(caller, slug, super::id(pool_id)?, request, &input.reason, idem).await
    }

    pub async fn adjust(
        &self,
        caller: &Caller,
        slug: &str,
        pool_id: &str,
        input: AdjustmentInput,
        idem: Option<Request>,
    ) -> Result<Recorded<Entry>, Error> {
        let request = EntryRequest::Adjustment {
            member_id: field_id("member_id", &input.member_id)?,
            amount: amount(&input.amount)?,
        };
        self.move_points(caller, slug, super::id(pool_id)?, request, &input.reason, idem).await
    }

    pub async fn transfer(
        &self,
        caller: &Caller,
        slug: &str,
        pool_id: &str,
        input: TransferInput,
        idem: Option<Request>,
    ) -> Result<Recorded<Entry>, Error> {
        let request = EntryRequest::Transfer {
            from: field_id("from_member_id", &input.from_member_id)?,
            to: field_id("to_member_id", &input.to_member_id)?,
            amount: amount(&input.amount)?,
        };
        self.move_points(caller, slug, super::id(pool_id)?, request, &input.reason, idem).await
    }

    pub async fn reverse(
        &self,
        caller: &Caller,
        slug: &str,
        entry_id: &str,
        input: ReversalInput,
        idem: Option<Request>,
    ) -> Result<Recorded<Entry>, Error> {
        let access = self.guild_access(caller, slug, Action::MovePoints).await?;
        let entry_id = super::id(entry_id)?;
        let original = self.store.entry(access.guild.id, entry_id).await?.ok_or_else(Error::not_found)?;
        let request = EntryRequest::Reversal { entry_id };
        self.move_points(caller, slug, original.pool_id, request, &input.reason, idem).await
    }

    async fn move_points(
        &self,
        caller: &Caller,
        slug: &str,
        pool_id: Uuid,
        request: EntryRequest,
        reason: &str,
        idem: Option<Request>,
    ) -> Result<Recorded<Entry>, Error> {
        let access = self.guild_access(caller, slug, Action::MovePoints).await?;
        let command = EntryCommand {
            guild_id: access.guild.id,
            pool_id,
            actor_member: access.member_id,
            request,
            reason: self::reason(reason)?,
            idempotency: idem.map(|idem| idem.claim(caller.user.id)),
        };
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        let claim = command.idempotency.clone();
        match self.queue_move(EntryJob { command, ctx: ctx.clone() }).await? {
            Ok(recorded) => Ok(recorded),
            Err(error) => Err(self.refused(claim.as_ref(), error, &ctx).await),
        }
    }

    /// Queues a move for this instance's ledger writer and waits for what
    /// it came to (its events published by then).
    async fn queue_move(&self, job: EntryJob) -> Result<Result<Recorded<Entry>, StoreError>, Error> {
        let writer = self.ledger.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            tokio::spawn(LedgerWriter { store: self.store.clone(), hub: self.hub.clone() }.run(receiver));
            sender
        });
        let (reply, answer) = oneshot::channel();
        super::hand_to(writer, Queued { job, reply })?;
        answer.await.map_err(|_| super::writer_stopped())
    }

    /// What follows a point-moving write: a refusal of the request's own
    /// making kept under its key, or the events of a fresh change published.
    pub(super) async fn after_write<T>(
        &self,
        claim: Option<&IdempotencyClaim>,
        written: Result<Recorded<T>, StoreError>,
        ctx: &Ctx,
    ) -> Result<Recorded<T>, Error> {
        let recorded = match written {
            Ok(recorded) => recorded,
            Err(error) => return Err(self.refused(claim, error, ctx).await),
        };
        if let Recorded::Fresh(_, events) = &recorded {
            self.hub.publish(events);
        }
        Ok(recorded)
    }

    /// What a write the store refused answers: a refusal of the request's
    /// own making is kept under its key first.
    async fn refused(&self, claim: Option<&IdempotencyClaim>, error: StoreError, ctx: &Ctx) -> Error {
        match self.remember_refusal(claim, &error, ctx).await {
            Ok(()) => error.into(),
            Err(failed) => failed,
        }
    }
}
