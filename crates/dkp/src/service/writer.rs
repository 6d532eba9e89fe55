//! The writer of bids on this instance (seed risk R3). Every bid that may
//! win queues here, whatever its lot; the writer drains what waits, sorts it
//! by lot, puts each lot's bids in the order that accepts the most of them,
//! answers repeats of one key within the batch from the first (see
//! `idempotency::in_batch`), and has the store apply the bids of every lot in
//! one transaction: a raid night's hundreds of busy lots share each durable
//! commit instead of paying one each and conflicting with one another. Only
//! after the commit does it publish the events and answer each bid.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use dkp_core::Points;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::Error;
use super::auction::{BidAnswer, bid_error};
use super::idempotency::{InBatch, in_batch};
use super::lot_states::LotStates;
use crate::clock::Clock;
use crate::hub::Hub;
use crate::model::{Answer, BidBatch, BidCommand, BidOutcome, LotView};
use crate::store::{Ctx, LotBids, Store, StoreError};
use crate::telemetry::spans::{Span, Spans, TraceContext};

/// The most bids one transaction applies.
const MAX_BATCH: usize = 1024;
/// Bids waiting for the writer at most.
pub(super) const QUEUE: usize = 16 * 1024;

/// A bid waiting for the writer, with its lot and where to send its answer.
pub(super) struct Queued {
    pub guild_id: Uuid,
    pub pool_id: Uuid,
    pub lot_id: Uuid,
    pub bid: BidCommand,
    pub reply: oneshot::Sender<Result<BidAnswer, Error>>,
    pub queued_at: Instant,
    /// The request's trace, when spans are exported.
    pub trace: Option<TraceContext>,
}

/// The task that owns this instance's queue of bids.
pub(super) struct Writer {
    pub store: Arc<Store>,
    pub hub: Arc<dyn Hub>,
    pub clock: Arc<dyn Clock>,
    pub states: Arc<LotStates>,
    /// Whether the batch's events go to the outbox too.
    pub outbox: bool,
    pub spans: Option<Spans>,
}

/// One lot's bids in a batch, in the order to decide them, and what to do
/// with each by its key.
struct Part {
    queued: Vec<Queued>,
    plan: Vec<InBatch>,
}

impl Writer {
    /// Runs until every sender of the queue is gone.
    pub async fn run(self, mut queue: mpsc::Receiver<Queued>) {
        let mut waiting = VecDeque::new();
        while super::gather(&mut queue, &mut waiting, MAX_BATCH).await {
            self.apply(waiting.drain(..).collect()).await;
        }
    }

    /// Splits a batch by lot, in the order each lot's first bid came.
    fn parts(&self, batch: Vec<Queued>) -> Vec<Part> {
        let mut index: HashMap<Uuid, usize> = HashMap::new();
        let mut lots: Vec<Vec<Queued>> = Vec::new();
        for queued in batch {
            let at = *index.entry(queued.lot_id).or_insert_with(|| {
                lots.push(Vec::new());
                lots.len() - 1
            });
            lots[at].push(queued);
        }
        lots.into_iter()
            .map(|queued| {
                let queued = self.order(queued);
                let plan = in_batch(queued.iter().map(|q| q.bid.idempotency.as_ref()));
                Part { queued, plan }
            })
            .collect()
    }

    /// Puts one lot's bids in the order that accepts the most (see
    /// `dkp_core::auction::batch_order`), from the lot's last known state.
    fn order(&self, bids: Vec<Queued>) -> Vec<Queued> {
        let Some(lot) = bids.first().and_then(|q| self.states.cached(q.lot_id)) else { return bids };
        // (Past the largest amount, the high bid itself bounds the chain.)
        let floor = lot.floor().unwrap_or_else(|_| lot.high_bid.unwrap_or(lot.min_bid));
        let amounts: Vec<Points> = bids.iter().map(|q| q.bid.amount).collect();
        let order = dkp_core::auction::batch_order(lot.mode, floor, lot.increment, &amounts);
        let mut slots: Vec<Option<Queued>> = bids.into_iter().map(Some).collect();
        order.into_iter().filter_map(|i| slots.get_mut(i).and_then(Option::take)).collect()
    }

    async fn apply(&self, batch: Vec<Queued>) {
        metrics::histogram!("dkp_sequencer_batch_size").record(batch.len() as f64);
        let parts = self.parts(batch);
        metrics::histogram!("dkp_writer_lots_per_commit").record(parts.len() as f64);
        let lots: Vec<LotBids> = parts.iter().map(to_apply).collect();
        let ctx = Ctx { actor: None, request_id: "writer:bids".to_owned(), now: self.clock.now(), outbox: self.outbox };
        match self.store.place_bids(&lots, &ctx).await {
            Ok(placed) => {
                let committed = Instant::now();
                self.hub.publish(&placed.events);
                if let Some(spans) = &self.spans {
                    trace_batch(spans, &parts, committed, Instant::now());
                }
                for (part, result) in parts.into_iter().zip(placed.lots) {
                    match result {
                        Some(batch) => {
                            self.states.remember(&batch.lot);
                            answer_part(part, batch);
                        }
                        None => fail_part(part, &StoreError::NotFound),
                    }
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, lots = parts.len(), "a batch of bids failed");
                for part in parts {
                    fail_part(part, &error);
                }
            }
        }
    }
}

/// The spans of each traced bid of a committed batch: from its queueing to
/// the commit, and the publishing of the batch's events after it.
fn trace_batch(spans: &Spans, parts: &[Part], committed: Instant, published: Instant) {
    let bids: usize = parts.iter().map(|part| part.queued.len()).sum();
    for part in parts {
        for queued in &part.queued {
            let Some(trace) = &queued.trace else { continue };
            let lot = queued.lot_id.to_string();
            spans.record(
                Span::child(trace, "bid.commit", queued.queued_at, committed)
                    .with("dkp.lot_id", lot.clone())
                    .with("dkp.batch.bids", bids)
                    .with("dkp.batch.lots", parts.len()),
            );
            spans.record(Span::child(trace, "bid.broadcast", committed, published).with("dkp.lot_id", lot));
        }
    }
}

/// What the store applies of a lot's part: the bids first under their keys.
fn to_apply(part: &Part) -> LotBids {
    let first = &part.queued[0];
    let bids = part.queued.iter().zip(&part.plan).filter(|(_, p)| **p == InBatch::Apply).map(|(q, _)| q.bid.clone());
    LotBids { guild_id: first.guild_id, pool_id: first.pool_id, lot_id: first.lot_id, bids: bids.collect() }
}

/// Answers each bid of a lot's part from what the batch did to the lot.
fn answer_part(part: Part, batch: BidBatch) {
    let mut outcomes = batch.outcomes.into_iter();
    let mut answers: Vec<Result<BidAnswer, Error>> = Vec::with_capacity(part.queued.len());
    for step in &part.plan {
        let answer = match step {
            InBatch::Apply => match outcomes.next() {
                Some(outcome) => answer(outcome, &batch.lot),
                None => Err(Error::internal(anyhow::anyhow!("a bid went unanswered"))),
            },
            InBatch::RepeatOf(first) => repeat(answers.get(*first)),
            InBatch::Reused => Err(StoreError::IdempotencyKeyReused.into()),
        };
        answers.push(answer);
    }
    for (queued, answer) in part.queued.into_iter().zip(answers) {
        metrics::histogram!("dkp_bid_queue_seconds").record(queued.queued_at.elapsed().as_secs_f64());
        let _ = queued.reply.send(answer);
    }
}

/// Answers every bid of a lot's part with the batch's failure.
fn fail_part(part: Part, error: &StoreError) {
    for queued in part.queued {
        let _ = queued.reply.send(Err(failed(error)));
    }
}

/// What one applied bid answers.
fn answer(outcome: BidOutcome, lot: &LotView) -> Result<BidAnswer, Error> {
    match outcome {
        BidOutcome::Accepted(bid) => {
            metrics::counter!("dkp_bids_accepted_total").increment(1);
            Ok(BidAnswer::Accepted { bid, lot: lot.clone() })
        }
        BidOutcome::Rejected(error) => Err(bid_error(error)),
        BidOutcome::Replay(answer) => Ok(BidAnswer::Replay(answer)),
        BidOutcome::KeyReused => Err(StoreError::IdempotencyKeyReused.into()),
    }
}

/// The answer to a repeat of a request earlier in the same batch: the first
/// one's answer, as a replay.
fn repeat(first: Option<&Result<BidAnswer, Error>>) -> Result<BidAnswer, Error> {
    match first {
        Some(Ok(BidAnswer::Accepted { bid, lot })) => {
            Ok(BidAnswer::Replay(Answer::Bid { bid: bid.clone(), lot: lot.clone() }))
        }
        Some(Ok(BidAnswer::Replay(answer))) => Ok(BidAnswer::Replay(answer.clone())),
        Some(Err(Error::Refused(refusal))) => Err(Error::Refused(refusal.clone())),
        _ => Err(Error::internal(anyhow::anyhow!("the first request of a repeated key has no answer"))),
    }
}

/// What every bid of a batch that failed as a whole answers.
fn failed(error: &StoreError) -> Error {
    if crate::store::is_contention(error) || matches!(error, StoreError::Overloaded) {
        Error::Busy
    } else if matches!(error, StoreError::NotFound) {
        Error::not_found()
    } else {
        Error::internal(anyhow::anyhow!("a batch of bids failed"))
    }
}
