//! The sequencer of one lot on this instance (seed risk R3): the task that
//! owns the lot's queue. It drains what waits, puts the batch in the order
//! that accepts the most bids, answers repeats of one key within the batch
//! from the first (see `idempotency::in_batch`), has the store apply the rest
//! in one transaction, and only after the commit publishes the events and
//! answers each bid. A sequencer with nothing to do for a while leaves; the
//! next bid starts another.

use std::sync::Arc;
use std::time::{Duration, Instant};

use dkp_core::Points;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use super::Error;
use super::auction::{Auctions, BidAnswer, bid_error};
use super::idempotency::{InBatch, in_batch};
use crate::clock::Clock;
use crate::hub::Hub;
use crate::model::{Answer, BidCommand, BidOutcome};
use crate::store::{Ctx, Store, StoreError};

/// How long a sequencer with nothing to do stays around.
const IDLE: Duration = Duration::from_secs(30);
/// The most bids one transaction applies.
const MAX_BATCH: usize = 512;
/// Bids waiting for a sequencer at most.
pub(super) const QUEUE: usize = 4096;

/// A bid waiting in a lot's queue, with where to send its answer.
pub(super) struct Queued {
    pub bid: BidCommand,
    pub reply: oneshot::Sender<Result<BidAnswer, Error>>,
    pub queued_at: Instant,
}

/// The task that owns one lot's queue on this instance.
pub(super) struct Sequencer {
    pub store: Arc<Store>,
    pub hub: Arc<dyn Hub>,
    pub clock: Arc<dyn Clock>,
    pub auctions: Arc<Auctions>,
    pub guild_id: Uuid,
    pub pool_id: Uuid,
    pub lot_id: Uuid,
}

impl Sequencer {
    pub async fn run(self, mut queue: mpsc::Receiver<Queued>, own: mpsc::WeakSender<Queued>) {
        loop {
            let first = match tokio::time::timeout(IDLE, queue.recv()).await {
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
        self.leave(queue, own).await;
    }

    /// Idle: leave the map first, so no new bid is handed this queue, then
    /// close it and apply what was sent before the close.
    async fn leave(&self, mut queue: mpsc::Receiver<Queued>, own: mpsc::WeakSender<Queued>) {
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
        let floor = lot.floor().unwrap_or_else(|_| lot.high_bid.unwrap_or(lot.min_bid));
        let amounts: Vec<Points> = batch.iter().map(|q| q.bid.amount).collect();
        let order = dkp_core::auction::batch_order(lot.mode, floor, lot.increment, &amounts);
        let mut slots: Vec<Option<Queued>> = batch.into_iter().map(Some).collect();
        order.into_iter().filter_map(|i| slots.get_mut(i).and_then(Option::take)).collect()
    }

    async fn apply(&self, batch: Vec<Queued>) {
        metrics::histogram!("dkp_sequencer_batch_size").record(batch.len() as f64);
        let batch = self.order(batch);
        let plan = in_batch(batch.iter().map(|q| q.bid.idempotency.as_ref()));
        let applied: Vec<usize> = (0..batch.len()).filter(|&i| plan[i] == InBatch::Apply).collect();
        let commands: Vec<BidCommand> = applied.iter().map(|&i| batch[i].bid.clone()).collect();
        let ctx = Ctx { actor: None, request_id: format!("sequencer:{}", self.lot_id), now: self.clock.now() };
        match self.store.place_bids(self.guild_id, self.pool_id, self.lot_id, &commands, &ctx).await {
            Ok(result) => {
                self.hub.publish(&result.events);
                self.auctions.states.remember(&result.lot);
                let mut answers: Vec<Option<Result<BidAnswer, Error>>> = (0..batch.len()).map(|_| None).collect();
                for (&index, outcome) in applied.iter().zip(result.outcomes) {
                    answers[index] = Some(answer(outcome, &result.lot));
                }
                for (index, step) in plan.iter().enumerate() {
                    answers[index] = match step {
                        InBatch::Apply => answers[index].take(),
                        InBatch::RepeatOf(first) => Some(repeat(answers[*first].as_ref())),
                        InBatch::Reused => Some(Err(StoreError::IdempotencyKeyReused.into())),
                    };
                }
                for (queued, answer) in batch.into_iter().zip(answers) {
                    metrics::histogram!("dkp_bid_queue_seconds").record(queued.queued_at.elapsed().as_secs_f64());
                    let answer =
                        answer.unwrap_or_else(|| Err(Error::internal(anyhow::anyhow!("a bid went unanswered"))));
                    let _ = queued.reply.send(answer);
                }
            }
            Err(error) => {
                tracing::warn!(lot_id = %self.lot_id, error = %error, "a batch of bids failed");
                for queued in batch {
                    let _ = queued.reply.send(Err(failed(&error)));
                }
            }
        }
    }
}

/// What one applied bid answers.
fn answer(outcome: BidOutcome, lot: &crate::model::LotView) -> Result<BidAnswer, Error> {
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
    if crate::store::is_contention(error) {
        Error::Busy
    } else if matches!(error, StoreError::NotFound) {
        Error::not_found()
    } else {
        Error::internal(anyhow::anyhow!("a batch of bids failed"))
    }
}
