//! Turns, so that writers never fail each other (seed risks R1 and R3).
//!
//! In-process, every point-moving write of this instance takes the one
//! `Gate` before it takes a connection: the instance has one writer at a
//! time, and that writer commits whole batches (the bids of every busy lot
//! at once), so concurrency costs no conflicts and each commit is shared.
//! Across instances, on PostgreSQL, a writer's transaction opens by taking
//! the lock lanes of the pools it touches (`LOCK TABLE ledger_lane_NN`, in
//! lane order, so two writers never wait on each other in a cycle). `LOCK
//! TABLE` takes no snapshot, so the SERIALIZABLE snapshot that follows is
//! taken after the previous writer of those pools committed, and has nothing
//! to conflict with. The database stays the judge and the retry helper the
//! safety net. Pools hash onto a fixed set of lanes.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};
use uuid::Uuid;

use super::StoreError;

/// How long a write waits for its turn before the instance counts as
/// overloaded: far beyond any batch's commit, so only a service that truly
/// cannot keep up refuses (503, counted in `dkp_write_turn_timeouts_total`).
const TURN_LIMIT: Duration = Duration::from_secs(10);

/// This instance's turn to write.
pub struct Gate {
    turn: Mutex<()>,
}

impl Gate {
    pub fn new() -> Gate {
        Gate { turn: Mutex::new(()) }
    }

    /// Waits for this instance's turn to write; `Overloaded` past the limit
    /// (nothing has been written then).
    pub async fn enter(&self) -> Result<MutexGuard<'_, ()>, StoreError> {
        match tokio::time::timeout(TURN_LIMIT, self.turn.lock()).await {
            Ok(turn) => Ok(turn),
            Err(_) => {
                metrics::counter!("dkp_write_turn_timeouts_total").increment(1);
                Err(StoreError::Overloaded)
            }
        }
    }
}

/// How many lock-lane tables migration 2 creates on PostgreSQL.
const DATABASE_LANES: u64 = 64;

/// The lane of a pool: the same in every instance, since it depends only on
/// the id's bits.
fn lane(key: Uuid) -> u64 {
    key.as_u64_pair().1 % DATABASE_LANES
}

/// The statements that open a SERIALIZABLE transaction and take the lock
/// lanes of `keys`, in lane order, sent together in one round trip.
pub fn begin_in_lanes(keys: impl IntoIterator<Item = Uuid>) -> String {
    let lanes: BTreeSet<u64> = keys.into_iter().map(lane).collect();
    let tables: Vec<String> = lanes.iter().map(|lane| format!("ledger_lane_{lane:02}")).collect();
    if tables.is_empty() {
        return "BEGIN ISOLATION LEVEL SERIALIZABLE".to_owned();
    }
    format!("BEGIN ISOLATION LEVEL SERIALIZABLE; LOCK TABLE {} IN EXCLUSIVE MODE", tables.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lanes_are_taken_once_each_in_lane_order() {
        let (a, b) = (Uuid::from_u64_pair(0, 70), Uuid::from_u64_pair(9, 3));
        let statement = begin_in_lanes([a, b, Uuid::from_u64_pair(1, 6)]);
        assert_eq!(
            statement,
            "BEGIN ISOLATION LEVEL SERIALIZABLE; LOCK TABLE ledger_lane_03, ledger_lane_06 IN EXCLUSIVE MODE"
        );
        assert_eq!(begin_in_lanes([]), "BEGIN ISOLATION LEVEL SERIALIZABLE");
    }
}
