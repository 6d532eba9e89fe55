//! Lots and bids (seed risks R3 and, for the events, R2). A bid is checked
//! against the lot's cached state first, so hopeless bids are refused without
//! touching the database; the rest queue for the lot's sequencer, which
//! applies them in batches (one transaction per batch), and only after the
//! commit answers each bid and publishes the events.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dkp_core::auction::{BidError, Mode, Status, Terms};
use dkp_core::{Action, Points, names};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::ledger::Idempotency;
use super::lot_states::LotStates;
use super::{Caller, Service, amount};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::hub::Hub;
use crate::limits::Limited;
use crate::shared::Shared;
use crate::store::{
    BidCommand, BidOutcome, BidView, Ctx, Ending, IdempotencyClaim, LotView, NewLot, Page, PageRequest, Store,
};

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

/// What a bid came to.
pub enum BidAnswer {
    Accepted { bid: BidView, lot: LotView },
    Replay { status: u16, body: String },
}

/// How long a sequencer with nothing to do stays around.
const SEQUENCER_IDLE: Duration = Duration::from_secs(30);
/// The most bids one transaction applies.
const MAX_BATCH: usize = 512;

struct Queued {
    bid: BidCommand,
    reply: oneshot::Sender<Result<BidAnswer, ApiError>>,
    queued_at: Instant,
}

/// The per-lot sequencers of this instance and the lot states they keep fresh.
pub struct Auctions {
    queues: Mutex<HashMap<Uuid, mpsc::Sender<Queued>>>,
    pub states: LotStates,
}

impl Auctions {
    pub fn new(shared: Option<Shared>) -> Auctions {
        Auctions { queues: Mutex::default(), states: LotStates::new(shared) }
    }
}

fn bid_error(error: BidError) -> ApiError {
    metrics::counter!("dkp_bids_rejected_total", "reason" => reason(&error)).increment(1);
    bid_refusal(error)
}

/// The answer to a refused bid.
fn bid_refusal(error: BidError) -> ApiError {
    match error {
        BidError::LotClosed => ApiError::conflict("lot_closed", "the lot is not open for bids"),
        other => ApiError::unprocessable(reason(&other), other.to_string()),
    }
}

/// The status and body of a refused bid, as stored under its idempotency key.
fn stored_refusal(error: &BidError) -> (u16, String) {
    let (status, body) = bid_refusal(error.clone()).status_and_body();
    (status.as_u16(), body.to_string())
}

/// The code of a refused bid.
fn reason(error: &BidError) -> &'static str {
    match error {
        BidError::LotClosed => "lot_closed",
        BidError::TooLow { .. } => "bid_too_low",
        BidError::InsufficientPoints { .. } => "insufficient_points",
        BidError::Amount(_) => "invalid_amount",
    }
}

fn seconds(
    field: &'static str,
    value: Option<i64>,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64, ApiError> {
    let value = value.unwrap_or(default);
    if !range.contains(&value) {
        return Err(ApiError::unprocessable(
            "invalid_field",
            format!("{field}: from {} to {} seconds", range.start(), range.end()),
        ));
    }
    Ok(value)
}

fn positive(field: &'static str, value: &Value) -> Result<Points, ApiError> {
    let points = amount(value)?;
    if !points.is_positive() {
        return Err(ApiError::unprocessable("invalid_amount", format!("{field} must be positive")));
    }
    Ok(points)
}

/// The lowest bid that can win on a lot as it stands: the high bid plus
/// the increment on an open lot, else `min_bid` (a sealed lot shows no high
/// bid).
fn floor(lot: &LotView) -> Result<Points, dkp_core::AmountError> {
    match (lot.mode, lot.high_bid) {
        (Mode::Open, Some(high)) => high.checked_add(lot.increment),
        _ => Ok(lot.min_bid),
    }
}

/// Refuses, from a cached lot state, a bid that cannot win.
fn prereject(lot: &LotView, amount: Points) -> Result<(), ApiError> {
    if lot.status != Status::Open {
        return Err(bid_error(BidError::LotClosed));
    }
    let floor = floor(lot)?;
    if amount < floor {
        return Err(bid_error(BidError::TooLow { minimum: floor }));
    }
    Ok(())
}

impl Service {
    pub async fn create_lot(&self, caller: &Caller, slug: &str, input: NewLotInput) -> Result<LotView, ApiError> {
        let access = self.guild_access(caller, slug, Action::RunLots).await?;
        let mode = Mode::parse(&input.mode).ok_or_else(|| {
            ApiError::unprocessable("invalid_field", "mode: one of open, sealed_first, sealed_second")
        })?;
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
        let lot = NewLot {
            guild_id: access.guild.id,
            guild_slug: access.guild.slug.clone(),
            pool_id: super::field_id("pool_id", &input.pool_id)?,
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
        };
        let (lot, events) = self.store.create_lot(&lot, &self.ctx(Some(caller.user.id), &caller.request_id)).await?;
        self.hub.publish(&events);
        self.auctions.states.remember(&lot);
        Ok(lot)
    }

    pub async fn lots(
        &self,
        caller: &Caller,
        slug: &str,
        status: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<LotView>, ApiError> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        let status = status
            .map(|s| {
                Status::parse(s)
                    .ok_or_else(|| ApiError::unprocessable("invalid_field", "status: open, closed or cancelled"))
            })
            .transpose()?;
        Ok(self.store.lots(access.guild.id, status, page, caller.reads).await?)
    }

    pub async fn lot(&self, caller: &Caller, slug: &str, lot_id: &str) -> Result<LotView, ApiError> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        self.store.lot(access.guild.id, super::id(lot_id)?).await?.ok_or(ApiError::NotFound)
    }

    /// Places a bid: refused at once if it cannot win, else queued for the lot's sequencer.
    pub async fn bid(
        &self,
        caller: &Caller,
        slug: &str,
        lot_id: &str,
        input: BidInput,
        idem: Option<Idempotency>,
    ) -> Result<BidAnswer, ApiError> {
        let started = Instant::now();
        let access = self.guild_access(caller, slug, Action::Bid).await?;
        self.limits.admit(Limited::Bid, &access.member_id.simple().to_string()).await?;
        let lot_id = super::id(lot_id)?;
        let amount = positive("amount", &input.amount)?;
        let lot = match self.auctions.states.cached(lot_id).filter(|lot| lot.guild_id == access.guild.id) {
            Some(lot) => lot,
            None => {
                let lot = self.store.lot(access.guild.id, lot_id).await?.ok_or(ApiError::NotFound)?;
                self.auctions.states.remember(&lot);
                lot
            }
        };
        // What the cache says can only be older than the truth: a lot that
        // ended stays ended and a high bid only rises, so these refusals are
        // safe. A bid with an idempotency key goes to the sequencer anyway: it
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
            idempotency: idem.map(|idem| IdempotencyClaim {
                user_id: caller.user.id,
                key: idem.key,
                fingerprint: super::ledger::fingerprint(&idem.request),
            }),
            refusal: stored_refusal,
        };
        let answer = self.enqueue(&lot, bid).await;
        metrics::histogram!("dkp_bid_latency_seconds").record(started.elapsed().as_secs_f64());
        answer
    }

    async fn enqueue(&self, lot: &LotView, bid: BidCommand) -> Result<BidAnswer, ApiError> {
        let (reply, answer) = oneshot::channel();
        let mut queued = Queued { bid, reply, queued_at: Instant::now() };
        // A sequencer that just went idle may have closed its queue: start another.
        for _ in 0..2 {
            let sender = self.sequencer(lot);
            match sender.send(queued).await {
                Ok(()) => {
                    return answer.await.map_err(|_| ApiError::Internal(anyhow::anyhow!("the sequencer stopped")))?;
                }
                Err(mpsc::error::SendError(back)) => {
                    queued = back;
                    let mut queues = self.auctions.queues.lock().unwrap_or_else(|e| e.into_inner());
                    if queues.get(&lot.id).is_some_and(|s| s.same_channel(&sender)) {
                        queues.remove(&lot.id);
                    }
                }
            }
        }
        Err(ApiError::Internal(anyhow::anyhow!("no sequencer took the bid")))
    }

    /// The queue of the lot's sequencer, started if there is none.
    fn sequencer(&self, lot: &LotView) -> mpsc::Sender<Queued> {
        let mut queues = self.auctions.queues.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = queues.get(&lot.id).filter(|s| !s.is_closed()) {
            return sender.clone();
        }
        let (sender, receiver) = mpsc::channel(4096);
        queues.insert(lot.id, sender.clone());
        let sequencer = Sequencer {
            store: self.store.clone(),
            hub: self.hub.clone(),
            clock: self.clock.clone(),
            auctions: self.auctions.clone(),
            guild_id: lot.guild_id,
            pool_id: lot.pool_id,
            lot_id: lot.id,
        };
        tokio::spawn(sequencer.run(receiver, sender.downgrade()));
        sender
    }

    /// Closes a lot now (an officer) or cancels it.
    pub async fn end_lot(
        &self,
        caller: &Caller,
        slug: &str,
        lot_id: &str,
        ending: Ending,
        reason: Option<String>,
    ) -> Result<LotView, ApiError> {
        let access = self.guild_access(caller, slug, Action::RunLots).await?;
        let reason = match reason {
            Some(reason) => names::display_text("reason", &reason, 500)?,
            None => String::new(),
        };
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        self.finish_lot(access.guild.id, super::id(lot_id)?, ending, &reason, &ctx).await
    }

    /// Ends a lot, then publishes and remembers the outcome.
    pub async fn finish_lot(
        &self,
        guild_id: Uuid,
        lot_id: Uuid,
        ending: Ending,
        reason: &str,
        ctx: &Ctx,
    ) -> Result<LotView, ApiError> {
        let (lot, events) = self.store.end_lot(guild_id, lot_id, ending, reason, ctx).await?;
        self.hub.publish(&events);
        self.auctions.states.remember(&lot);
        Ok(lot)
    }
}

/// The task that owns one lot's queue on this instance.
struct Sequencer {
    store: Arc<dyn Store>,
    hub: Arc<dyn Hub>,
    clock: Arc<dyn Clock>,
    auctions: Arc<Auctions>,
    guild_id: Uuid,
    pool_id: Uuid,
    lot_id: Uuid,
}

impl Sequencer {
    async fn run(self, mut queue: mpsc::Receiver<Queued>, own: mpsc::WeakSender<Queued>) {
        loop {
            let first = match tokio::time::timeout(SEQUENCER_IDLE, queue.recv()).await {
                Ok(Some(first)) => first,
                _ => break,
            };
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match queue.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            self.apply(batch).await;
        }
        // Idle: leave the map first, so no new bid is handed this queue, then
        // close it and apply what was sent before the close.
        {
            let mut queues = self.auctions.queues.lock().unwrap_or_else(|e| e.into_inner());
            let ours = match (queues.get(&self.lot_id), own.upgrade()) {
                (Some(current), Some(own)) => current.same_channel(&own),
                _ => false,
            };
            if ours {
                queues.remove(&self.lot_id);
            }
            queue.close();
        }
        let mut leftovers = Vec::new();
        while let Some(queued) = queue.recv().await {
            leftovers.push(queued);
        }
        if !leftovers.is_empty() {
            self.apply(leftovers).await;
        }
    }

    /// Puts a batch in the order that accepts the most bids (see
    /// `dkp_core::auction::batch_order`), from the lot's last known state.
    fn order(&self, batch: Vec<Queued>) -> Vec<Queued> {
        let Some(lot) = self.auctions.states.cached(self.lot_id) else { return batch };
        // (Past the largest amount, the high bid itself bounds the chain.)
        let floor = floor(&lot).unwrap_or_else(|_| lot.high_bid.unwrap_or(lot.min_bid));
        let amounts: Vec<Points> = batch.iter().map(|q| q.bid.amount).collect();
        let order = dkp_core::auction::batch_order(lot.mode, floor, lot.increment, &amounts);
        let mut slots: Vec<Option<Queued>> = batch.into_iter().map(Some).collect();
        order.into_iter().filter_map(|i| slots.get_mut(i).and_then(Option::take)).collect()
    }

    async fn apply(&self, batch: Vec<Queued>) {
        metrics::histogram!("dkp_sequencer_batch_size").record(batch.len() as f64);
        let batch = self.order(batch);
        let commands: Vec<BidCommand> = batch.iter().map(|q| q.bid.clone()).collect();
        let ctx = Ctx { actor: None, request_id: format!("sequencer:{}", self.lot_id), now: self.clock.now() };
        match self.store.place_bids(self.guild_id, self.pool_id, self.lot_id, &commands, &ctx).await {
            Ok(result) => {
                self.hub.publish(&result.events);
                self.auctions.states.remember(&result.lot);
                for (queued, outcome) in batch.into_iter().zip(result.outcomes) {
                    let answer = match outcome {
                        BidOutcome::Accepted(bid) => {
                            metrics::counter!("dkp_bids_accepted_total").increment(1);
                            Ok(BidAnswer::Accepted { bid, lot: result.lot.clone() })
                        }
                        BidOutcome::Rejected(error) => Err(bid_error(error)),
                        BidOutcome::Replay { status, body } => Ok(BidAnswer::Replay { status, body }),
                        BidOutcome::KeyReused => Err(crate::store::StoreError::IdempotencyKeyReused.into()),
                    };
                    metrics::histogram!("dkp_bid_queue_seconds").record(queued.queued_at.elapsed().as_secs_f64());
                    let _ = queued.reply.send(answer);
                }
            }
            Err(error) => {
                let contended = crate::store::is_contention(&error);
                tracing::warn!(lot_id = %self.lot_id, error = %error, "a batch of bids failed");
                for queued in batch {
                    let answer = if contended {
                        ApiError::Contended
                    } else if matches!(error, crate::store::StoreError::NotFound) {
                        ApiError::NotFound
                    } else {
                        ApiError::Internal(anyhow::anyhow!("a batch of bids failed"))
                    };
                    let _ = queued.reply.send(Err(answer));
                }
            }
        }
    }
}
