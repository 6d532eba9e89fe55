//! Turns, so that writers never fail each other (seed risks R1 and R3).
//!
//! In-process, every point-moving write of this instance takes the one
//! `Gate` before it takes a connection: the instance has one writer at a
//! time, and that writer commits whole batches (the bids of every busy lot
//! at once), so concurrency costs no conflicts and each commit is shared.
//! Across instances, on PostgreSQL, a writer's transaction opens by taking
//! the write lane (`LOCK TABLE ledger_lane_00`). `LOCK TABLE` takes no
//! snapshot, so the SERIALIZABLE snapshot that follows is taken after the
//! previous writer committed, and has nothing to conflict with. One lane for
//! every pool, not one per pool: writers of different pools still meet in
//! the pages of shared tables and indexes (holds, events, channel offsets),
//! which SERIALIZABLE counts as conflicts, and whole batches would fail on
//! them. Each writer's batch carries every bid and entry that waited, so the
//! cluster's writes take turns without throughput falling with the number of
//! busy lots. The database stays the judge and the retry helper the safety
//! net.

#[cfg(debug_assertions)]
use std::sync::OnceLock;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};

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

/// The statements that open a SERIALIZABLE transaction in the write lane,
/// sent together in one round trip.
pub const BEGIN_IN_LANE: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE; LOCK TABLE ledger_lane_00 IN EXCLUSIVE MODE";

/// A deliberately broken bid path, there only for the fault harness's proof
/// that it catches one (`dkp bench chaos`, and the suite's test of it): with
/// `DKP_FAULT_BIDS_UNLOCKED` set, bids skip the write lane and read lots and
/// wallets at READ COMMITTED without locking them, then write what they
/// decided 20 ms later (a window that two instances' batches meet every few
/// seconds, not by luck). Only debug builds (the test suite's) read the
/// switch; a release build has no such path.
pub fn bids_unlocked() -> bool {
    #[cfg(debug_assertions)]
    {
        static SET: OnceLock<bool> = OnceLock::new();
        *SET.get_or_init(|| std::env::var_os("DKP_FAULT_BIDS_UNLOCKED").is_some())
    }
    #[cfg(not(debug_assertions))]
    {
        false
    }
}
