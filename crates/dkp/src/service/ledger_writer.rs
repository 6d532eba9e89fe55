//! The writer of ledger moves on this instance (seed risk R1). Awards,
//! adjustments, transfers and reversals queue here, whatever their pool; the
//! writer drains what waits and has the store write it in one transaction
//! (`Store::record_entries`): a busy pool's writers, who would take turns
//! anyway, share each durable commit instead of paying one each. A request
//! whose key is already in the batch waits for the next one, where it finds
//! its first's answer kept. Only after the commit does the writer publish
//! the events, in the order they were written, and answer each request.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::hub::Hub;
use crate::model::{Entry, Recorded};
use crate::store::{EntryJob, Store, StoreError};

/// The most entries one transaction writes.
const MAX_BATCH: usize = 256;
/// The most postings one transaction writes, beyond its first entry (SQLite
/// binds every value of a statement on its own, and caps their number).
const MAX_POSTINGS: usize = 2048;
/// Requests waiting for the writer at most.
pub(super) const QUEUE: usize = 16 * 1024;

/// A request waiting for the writer, and where to send its answer.
pub(super) struct Queued {
    pub job: EntryJob,
    pub reply: oneshot::Sender<Result<Recorded<Entry>, StoreError>>,
}

/// The task that owns this instance's queue of ledger moves.
pub(super) struct LedgerWriter {
    pub store: Arc<Store>,
    pub hub: Arc<dyn Hub>,
}

impl LedgerWriter {
    /// Runs until every sender of the queue is gone.
    pub async fn run(self, mut queue: mpsc::Receiver<Queued>) {
        let mut waiting: VecDeque<Queued> = VecDeque::new();
        while super::gather(&mut queue, &mut waiting, MAX_BATCH).await {
            let batch = next_batch(&mut waiting);
            self.apply(batch).await;
        }
    }

    async fn apply(&self, batch: Vec<Queued>) {
        metrics::histogram!("dkp_ledger_batch_size").record(batch.len() as f64);
        let (jobs, replies): (Vec<EntryJob>, Vec<_>) = batch.into_iter().map(|q| (q.job, q.reply)).unzip();
        let results = self.store.record_entries(&jobs).await;
        for result in &results {
            if let Ok(Recorded::Fresh(_, events)) = result {
                self.hub.publish(events);
            }
        }
        for (reply, result) in replies.into_iter().zip(results) {
            let _ = reply.send(result);
        }
    }
}

/// Takes from the front of `waiting` the next batch: in the order queued,
/// up to the bounds, and never two requests under one key (a later one
/// stays, in its place, for the batch after).
fn next_batch(waiting: &mut VecDeque<Queued>) -> Vec<Queued> {
    let (mut batch, mut later) = (Vec::new(), VecDeque::new());
    let mut keys: HashSet<(Uuid, String)> = HashSet::new();
    let mut postings = 0;
    while let Some(queued) = waiting.pop_front() {
        let size = queued.job.command.request.postings();
        let full = batch.len() >= MAX_BATCH || (!batch.is_empty() && postings + size > MAX_POSTINGS);
        let repeat = queued.job.command.idempotency.as_ref().is_some_and(|c| !keys.insert((c.user_id, c.key.clone())));
        if full || repeat {
            later.push_back(queued);
            if full {
                break;
            }
            continue;
        }
        postings += size;
        batch.push(queued);
    }
    later.append(waiting);
    *waiting = later;
    batch
}
