//! Read-your-writes marks: the primary's log position, read after a caller's
//! write (see `replica`). Every successful write asks for one, so concurrent
//! writers share a read: a writer takes a ticket after its commit, and any
//! read of the position that began after the ticket was taken is far enough
//! for it. A batch of bids answered together then costs one query, not one
//! per bid.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use super::StoreError;
use super::replica::Lsn;
use super::sql::Db;

pub struct Marks {
    /// Tickets handed out so far.
    tickets: AtomicU64,
    /// One read of the position at a time; the writers behind it wait their turn.
    reading: tokio::sync::Mutex<()>,
    /// The last position read, and the last ticket taken before that read began.
    last: Mutex<(u64, Lsn)>,
}

impl Marks {
    pub fn new() -> Marks {
        Marks { tickets: AtomicU64::new(0), reading: tokio::sync::Mutex::new(()), last: Mutex::new((0, Lsn(0))) }
    }

    /// A position at or past every commit the caller has seen complete.
    pub async fn after_commit(&self, primary: &Db) -> Result<Lsn, StoreError> {
        let ticket = self.tickets.fetch_add(1, Ordering::SeqCst) + 1;
        let _turn = self.reading.lock().await;
        if let Some(position) = self.covering(ticket) {
            return Ok(position);
        }
        let covers = self.tickets.load(Ordering::SeqCst);
        let position = written(primary).await?;
        if let Ok(mut last) = self.last.lock() {
            *last = (covers, position);
        }
        Ok(position)
    }

    /// The last position read, if that read began after `ticket` was taken.
    fn covering(&self, ticket: u64) -> Option<Lsn> {
        let last = self.last.lock().ok()?;
        (last.0 >= ticket).then_some(last.1)
    }
}

/// How far the primary has flushed its log: what a replica can have replayed,
/// and past every commit acknowledged before this read.
async fn written(primary: &Db) -> Result<Lsn, StoreError> {
    let row = primary.sql("SELECT CAST(pg_current_wal_flush_lsn() - '0/0' AS BIGINT) AS written").fetch_one().await?;
    let written: i64 = row.get("written")?;
    u64::try_from(written).map(Lsn).map_err(|_| StoreError::Corrupt(format!("a negative WAL position {written}")))
}
