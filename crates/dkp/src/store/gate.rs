//! Turnstiles per pool, so that ledger writers of one pool take turns and each
//! SERIALIZABLE snapshot is taken after the previous writer committed, leaving
//! nothing to refuse. In-process, writers wait on a `Gate` lane before they
//! even take a connection; across instances, on PostgreSQL, they then take
//! the pool's lock lane (`LOCK TABLE ledger_lane_NN`, which takes no snapshot).
//! The database stays the judge and the retry helper the safety net; this
//! only keeps retries rare. Pools hash onto fixed lanes, so memory is bounded.

use std::sync::LazyLock;

use tokio::sync::{Mutex, MutexGuard};
use uuid::Uuid;

const LANES: usize = 256;

pub struct Gate {
    lanes: Vec<Mutex<()>>,
}

impl Gate {
    pub fn new() -> Gate {
        Gate { lanes: (0..LANES).map(|_| Mutex::new(())).collect() }
    }

    /// Waits for the turn of `key`'s lane.
    pub async fn enter(&self, key: Uuid) -> MutexGuard<'_, ()> {
        let lane = (key.as_u64_pair().1 as usize) % LANES;
        self.lanes[lane].lock().await
    }
}

/// How many lock-lane tables migration 2 creates on PostgreSQL.
const DATABASE_LANES: u64 = 64;

/// The statements that open a SERIALIZABLE transaction and take `key`'s lock
/// lane in the database, sent together in one round trip. The lane is taken
/// before any statement takes a snapshot (`LOCK TABLE` takes none), so the
/// transaction's snapshot already sees what the previous holder committed.
/// The same key maps to the same lane in every instance, since it depends only
/// on the id's bits.
pub fn begin_in_lane(key: Uuid) -> &'static str {
    static STATEMENTS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
        (0..DATABASE_LANES)
            .map(|lane| {
                format!("BEGIN ISOLATION LEVEL SERIALIZABLE; LOCK TABLE ledger_lane_{lane:02} IN EXCLUSIVE MODE").leak()
                    as &'static str
            })
            .collect()
    });
    STATEMENTS[(key.as_u64_pair().1 % DATABASE_LANES) as usize]
}
