//! Lots and bids (seed risks R3 and, for the events, R2). A bid is checked
//! against the lot's cached state first, so hopeless bids are refused without
//! touching the database; the rest queue for the instance's writer
//! (`writer`), which applies the bids of every lot in batches (one
//! transaction per batch), and only after the commit answers each bid and
//! publishes the events.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use dkp_core::auction::{BidError, Mode, Status, Terms};
use dkp_core::{Action, Points, names};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::idempotency::Request;
use super::limits::Limited;
use super::lot_states::LotStates;
pub use super::lot_states::Standing as LotStanding;
use super::writer::{QUEUE, Queued, Writer};
use super::{Caller, Error, Service, amount};
use crate::clock::Clock;
use crate::model::{Answer, BidCommand, BidView, Code, Ending, LotView, NewLot, Page, PageRequest};
use crate::shared::Shared;
use crate::store::Ctx;
use crate::telemetry::spans;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemInput {
    pub name: String,
    pub game_item_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewLotInput {
    pub pool_id: String,
    pub item: ItemInput,
    pub mode: String,
    pub min_bid: Value,
    pub increment: Option<Value>,
    pub duration_s: i64,
    pub anti_snipe_s: Option<i64>,
    pub extend_s: Option<i64>,
    /// The raid the item dropped in: a raid of the same pool.
    pub raid_id: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BidInput {
    pub amount: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelInput {
    pub reason: String,
}

/// What a bid came to: a bid accepted now, or the first answer to the same
/// request sent before under its key.
pub enum BidAnswer {
    Accepted { bid: BidView, lot: LotView },
    Replay(Answer),
}

/// The writer of this instance's bids, started with the first bid, and the
/// lot states it keeps fresh.
pub struct Auctions {
    writer: OnceLock<mpsc::Sender<Queued>>,
    pub(super) states: Arc<LotStates>,
}

impl Auctions {
    pub fn new(shared: Option<Shared>, clock: Arc<dyn Clock>) -> Auctions {
        Auctions { writer: OnceLock::new(), states: Arc::new(LotStates::new(shared, clock)) }
    }
}

/// The refusal of a bid, counted by its code.
pub(super) fn bid_error(error: BidError) -> Error {
    let refused = Error::from(error);
    if let Error::Refused(refusal) = &refused {
        metrics::counter!("dkp_bids_rejected_total", "reason" => refusal.code.as_str()).increment(1);
    }
    refused
}

fn seconds(
    field: &'static str,
    value: Option<i64>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, Error> {
    let value = value.unwrap_or(default);
    if !range.contains(&value) {
        return Err(Error::invalid_field(format!("{field}: from {} to {} seconds", range.start(), range.end())));
    }
    Ok(value)
}

fn positive(field: &'static str, value: &Value) -> Result<Points, Error> {
    let points = amount(value)?;
    if !points.is_positive() {
        return Err(Error::invalid(Code::InvalidAmount, format!("{field} must be positive")));
    }
    Ok(points)
}

/// Refuses, from a cached lot state, a bid that cannot win.
fn prereject(lot: &LotView, amount: Points) -> Result<(), Error> {
    if lot.status != Status::Open {
        return Err(bid_error(BidError::LotClosed));
    }
    let floor = lot.floor()?;
    if amount < floor {
        return Err(bid_error(BidError::TooLow { minimum: floor }));
    }
    Ok(())
}

impl Service {
    pub async fn create_lot(&self, caller: &Caller, slug: &str, input: NewLotInput) -> Result<LotView, Error> {
        let access = self.guild_access(caller, slug, Action::RunLots).await?;
        let mode = Mode::parse(&input.mode)
            .ok_or_else(|| Error::invalid_field("mode: one of open, sealed_first, sealed_second"))?;
        let item_name = names::display_text("item.name", &input.item.name, 200)?;
        let game_item_id = input
            .item
            .game_item_id
            .as_deref()
            .map(|id| names::display_text("item.game_item_id", id, 100))
            .transpose()?;
        let min_bid = positive("min_bid", &input.min_bid)?;
        let increment = match &input.increment {
            Some(value) => positive("increment", value)?,
            None => Points::from_stored(100),
        };
        let duration_s = seconds("duration_s", Some(input.duration_s), 0, 1..=7 * 24 * 3600)?;
        let anti_snipe_s = seconds("anti_snipe_s", input.anti_snipe_s, 0, 0..=3600)?;
        let extend_s = seconds("extend_s", input.extend_s, anti_snipe_s, 0..=3600)?;
        let pool_id = super::field_id("pool_id", &input.pool_id)?;
        let raid_id = input.raid_id.as_deref().map(|raid| super::field_id("raid_id", raid)).transpose()?;
        self.check_lot_raid(access.guild.id, pool_id, raid_id).await?;
        let lot = NewLot {
            guild_id: access.guild.id,
            guild_slug: access.guild.slug.clone(),
            pool_id,
            item_name,
            game_item_id,
            terms: Terms {
                mode,
                min_bid,
                increment,
                anti_snipe_us: anti_snipe_s * 1_000_000,
                extend_us: extend_s * 1_000_000,
            },
            anti_snipe_s: anti_snipe_s as i32,
            extend_s: extend_s as i32,
            duration_s,
            created_by: access.member_id,
            raid_id,
        };
        let (lot, events) = self.store.create_lot(&lot, &self.ctx(Some(caller.user.id), &caller.request_id)).await?;
        self.hub.publish(&events);
        self.auctions.states.remember(&lot);
        Ok(lot)
    }

    /// A lot of a zero-sum pool must name its raid: its price goes to the
    /// raid's attendees. (A pool's `zero_sum` never changes, so this read
    /// before the write cannot go stale; the raid itself is checked in the
    /// lot's transaction.)
    async fn check_lot_raid(&self, guild_id: Uuid, pool_id: Uuid, raid_id: Option<Uuid>) -> Result<(), Error> {
        let pool = match self.store.pool(guild_id, pool_id, crate::store::Read::Fresh).await {
            Err(crate::store::StoreError::NotFound) => {
                return Err(crate::store::StoreError::UnknownReference("pool_id").into());
            }
            other => other?,
        };
        if pool.zero_sum && raid_id.is_none() {
            return Err(Error::invalid(
                Code::RaidRequired,
                "raid_id: a lot of a zero-sum pool names the raid whose attendees share its price",
            ));
        }
        Ok(())
    }

    pub async fn lots(
        &self,
        caller: &Caller,
        slug: &str,
        status: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<LotView>, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        let status = status
            .map(|s| Status::parse(s).ok_or_else(|| Error::invalid_field("status: open, closed or cancelled")))
            .transpose()?;
        Ok(self.store.lots(access.guild.id, status, page, caller.reads).await?)
    }

    pub async fn lot(&self, caller: &Caller, slug: &str, lot_id: &str) -> Result<LotView, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        self.store.lot(access.guild.id, super::id(lot_id)?).await?.ok_or_else(Error::not_found)
    }

    /// Places a bid: refused at once if it cannot win, else queued for the writer.
    pub async fn bid(
        &self,
        caller: &Caller,
        slug: &str,
        lot_id: &str,
        input: BidInput,
        idem: Option<Request>,
    ) -> Result<BidAnswer, Error> {
        let started = Instant::now();
        let access = self.guild_access(caller, slug, Action::Bid).await?;
        self.limits.admit(Limited::Bid, &access.member_id.simple().to_string()).await?;
        let lot_id = super::id(lot_id)?;
        let amount = positive("amount", &input.amount)?;
        let lot = match self.auctions.states.cached(lot_id).filter(|lot| lot.guild_id == access.guild.id) {
            Some(lot) => lot,
            None => {
                let lot = self.store.lot(access.guild.id, lot_id).await?.ok_or_else(Error::not_found)?;
                self.auctions.states.remember(&lot);
                lot
            }
        };
        // What the cache says can only be older than the truth: a lot that
        // ended stays ended and a high bid only rises, so these refusals are
        // safe. A bid with an idempotency key goes to the writer anyway: it
        // may be the repeat of one accepted before, whose answer is replayed.
        if idem.is_none() {
            prereject(&lot, amount)?;
            // Another instance may have moved the lot on since this one last saw it.
            if let Some(standing) = self.auctions.states.newer_than(lot.id, lot.seq).await {
                let newer =
                    LotView { seq: standing.seq, status: standing.status, high_bid: standing.high_bid, ..lot.clone() };
                prereject(&newer, amount)?;
            }
        }
        let bid = BidCommand {
            member_id: access.member_id,
            amount,
            idempotency: idem.map(|idem| idem.claim(caller.user.id)),
        };
        let answer = self.enqueue(&lot, bid).await;
        metrics::histogram!("dkp_bid_latency_seconds").record(started.elapsed().as_secs_f64());
        answer
    }

    async fn enqueue(&self, lot: &LotView, bid: BidCommand) -> Result<BidAnswer, Error> {
        let (reply, answer) = oneshot::channel();
        let queued = Queued {
            guild_id: lot.guild_id,
            pool_id: lot.pool_id,
            lot_id: lot.id,
            bid,
            reply,
            queued_at: Instant::now(),
            trace: self.spans.as_ref().and_then(|_| spans::current()),
        };
        let writer = self.auctions.writer.get_or_init(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            let writer = Writer {
                store: self.store.clone(),
                hub: self.hub.clone(),
                clock: self.clock.clone(),
                states: self.auctions.states.clone(),
                outbox: self.outbox,
                spans: self.spans.clone(),
            };
            tokio::spawn(writer.run(receiver));
            sender
        });
        super::hand_to(writer, queued)?;
        answer.await.map_err(|_| super::writer_stopped())?
    }

    /// Closes a lot now (an officer) or cancels it.
    pub async fn end_lot(
        &self,
        caller: &Caller,
        slug: &str,
        lot_id: &str,
        ending: Ending,
        reason: Option<String>,
    ) -> Result<LotView, Error> {
        let access = self.guild_access(caller, slug, Action::RunLots).await?;
        let reason = match reason {
            Some(reason) => names::display_text("reason", &reason, 500)?,
            None => String::new(),
        };
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        self.finish_lot(access.guild.id, super::id(lot_id)?, ending, &reason, &ctx).await
    }

    /// The standing of a lot as instances share it, when newer than `seq`.
    pub async fn shared_lot_standing(&self, lot_id: Uuid, seq: i64) -> Option<LotStanding> {
        self.auctions.states.newer_than(lot_id, seq).await
    }

    /// Ends a lot, then publishes and remembers the outcome.
    pub async fn finish_lot(
        &self,
        guild_id: Uuid,
        lot_id: Uuid,
        ending: Ending,
        reason: &str,
        ctx: &Ctx,
    ) -> Result<LotView, Error> {
        let (lot, events) = self.store.end_lot(guild_id, lot_id, ending, reason, ctx).await?;
        self.hub.publish(&events);
        self.auctions.states.remember(&lot);
        Ok(lot)
    }
}
