//! The store: every read and write of the service's data, in SQL written
//! once over PostgreSQL and SQLite (`sql`). It knows SQL and the records of
//! `model`, nothing of HTTP, rendering, configuration or the use cases; it
//! returns facts (rows, outcomes) and the service decides.
//!
//! One concrete `Store` over two SQL dialects, no trait: there is one
//! implementation, and its tests run against the real databases.
//!
//! Invariants every method keeps:
//! - every read and write of guild data names the guild in the query itself;
//! - a change and its audit row (and its idempotency record) commit together;
//! - entries and postings are only ever inserted, and the postings of an entry
//!   sum to zero, so the postings of a pool always sum to zero.
//!
//! The files: `accounts` (users, sessions), `guilds` (guilds, memberships,
//! audit), `members` (the roster: members, roles, linking, leaving),
//! `characters`, `pools` (pools, earning rules, standings), `schedules`
//! (decay schedules and their runs), `ledger` (entries and the ledger write),
//! `book` (the accounts a transaction's entries move, posted in memory),
//! `raids` (raids, attendance, kills), `raid_award` (a raid's award),
//! `records` (attendance rates, loot history), `lots` (opening, reading),
//! `bids` (a batch of bids), `settlement` (closing and cancelling), `events`
//! (the event log), `idempotency` (kept answers), `jobs`, `images`; `sql` runs
//! a statement on either backend, `retry` and `gate` keep writers of a pool
//! from failing each other, `replica` and `marks` route lag-tolerant reads.

/// `held`: the sum of an account `a`'s holds on open lots, as a column.
macro_rules! held_sql {
    () => {
        "CAST(COALESCE((SELECT SUM(h.amount) FROM holds h WHERE h.account_id = a.id), 0) AS BIGINT) AS held"
    };
}

/// Runs `$change`, an expression over `$tx` (the `&mut Tx` of a writing
/// transaction of its own), and commits; the whole again on a serialization
/// failure. For changes that move no points (those take the write lane, see
/// `ledger`).
macro_rules! write_tx {
    ($store:expr, $operation:literal, |$tx:ident| $change:expr) => {
        super::retry::retry($operation, || async {
            let mut tx = $store.db.begin_write().await?;
            let $tx = &mut tx;
            let value = $change.await?;
            tx.commit().await?;
            Ok(value)
        })
        .await
    };
}

mod accounts;
mod audit;
pub mod audit_db;
mod bids;
mod book;
mod characters;
mod events;
mod gate;
mod guilds;
mod idempotency;
mod images;
mod imports;
mod jobs;
mod ledger;
mod lots;
mod marks;
mod members;
mod migrate;
pub mod outbox;
mod pools;
mod postgres;
mod raid_award;
mod raids;
mod records;
mod replica;
mod retry;
mod schedules;
mod settlement;
pub mod sql;
mod sqlite;

use uuid::Uuid;

use crate::model::{Code, Ts};
use crate::secret::Secret;

pub use bids::{LotBids, PlacedBids};
pub use imports::ImportPreview;
pub use ledger::EntryJob;
pub use pools::NewPool;
pub use replica::{Lsn, Read};
pub use retry::is_retryable as is_contention;
pub use sql::Backend;

use gate::Gate;
use marks::Marks;
use replica::Replica;
use sql::Db;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness or state rule refused the change.
    #[error("conflict: {}", .0.as_str())]
    Conflict(Code),
    /// Something named inside the request (not in its path) does not exist.
    #[error("unknown reference: {0}")]
    UnknownReference(&'static str),
    #[error("not found")]
    NotFound,
    /// The actor's role does not allow the change, as the store found the
    /// thing changed (a rule of `dkp_core::roles`).
    #[error("the actor's role does not allow this")]
    Forbidden,
    /// A rule of the data refused the request (422): the code, and what to tell.
    #[error("invalid: {1}")]
    Invalid(Code, &'static str),
    #[error(transparent)]
    Ledger(#[from] dkp_core::LedgerError<Uuid>),
    /// A concurrent writer claimed the same idempotency key first: run again.
    #[error("raced for an idempotency key")]
    Raced,
    #[error("the idempotency key was used with another request")]
    IdempotencyKeyReused,
    /// This instance waited too long for its turn to write: it cannot keep up.
    #[error("overloaded: no turn to write in time")]
    Overloaded,
    /// The database refused for a reason of its own; the cause is logged, not shown.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Whether the request itself was refused (it would be again, and
    /// nothing was written for it), rather than the moment or the database
    /// failing it.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            StoreError::Conflict(_)
                | StoreError::UnknownReference(_)
                | StoreError::NotFound
                | StoreError::Forbidden
                | StoreError::Invalid(..)
                | StoreError::Ledger(_)
                | StoreError::IdempotencyKeyReused
        )
    }
}

/// Who is changing what, and when: written into the audit row of the change.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub actor: Option<Uuid>,
    pub request_id: String,
    pub now: Ts,
    /// Whether the events written go to the outbox too, for NATS (`NATS_URL`).
    pub outbox: bool,
}

/// The store of the service: the primary database, and the read replica
/// lag-tolerant reads may go to.
pub struct Store {
    db: Db,
    gate: Gate,
    /// Where lag-tolerant reads go, when configured, and the marks that keep
    /// a writer's own reads on the primary until the replica has their write.
    replica: Option<(Replica, Marks)>,
}

impl Store {
    fn new(db: Db, replica: Option<Db>) -> Store {
        Store { db, gate: Gate::new(), replica: replica.map(|replica| (Replica::new(replica), Marks::new())) }
    }

    pub fn backend(&self) -> Backend {
        self.db.backend()
    }

    /// Answers when the database does.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.sql("SELECT 1 AS one").fetch_one().await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.db.close().await;
        if let Some((replica, _)) = &self.replica {
            replica.db().close().await;
        }
    }

    /// Answers when the read replica does; `None` when there is none.
    pub async fn ping_replica(&self) -> Option<Result<(), StoreError>> {
        Some(self.replica.as_ref()?.0.ping().await)
    }

    /// How far the primary has written, for a caller who has just written;
    /// `None` when there is no replica (every read sees every write).
    pub async fn write_position(&self) -> Result<Option<Lsn>, StoreError> {
        match &self.replica {
            Some((_, marks)) => Ok(Some(marks.after_commit(&self.db).await?)),
            None => Ok(None),
        }
    }

    /// Runs a lag-tolerant read where `read` lets it run.
    async fn read<'a, T, F, Fut>(&'a self, read: Read, query: F) -> Result<T, StoreError>
    where
        F: Fn(&'a Db) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        replica::route(&self.db, self.replica.as_ref().map(|(replica, _)| replica), read, query).await
    }
}

/// Where the data lives, from `DATABASE_URL`.
#[derive(Clone, Debug)]
pub enum Location {
    Postgres { url: Secret },
    Sqlite { path: std::path::PathBuf },
}

/// A connection pool to the configured database.
pub async fn connect(location: &Location) -> Result<sql::Db, anyhow::Error> {
    match location {
        Location::Postgres { url } => postgres::connect(url.expose()).await,
        Location::Sqlite { path } => sqlite::connect(path).await,
    }
}

/// Connects to the configured database and applies pending migrations.
pub async fn open(location: &Location) -> Result<Store, anyhow::Error> {
    open_with_replica(location, None).await
}

/// Like `open`, with lag-tolerant reads sent to the read replica at
/// `replica_url` (PostgreSQL only; the configuration checks it).
pub async fn open_with_replica(location: &Location, replica_url: Option<&Secret>) -> Result<Store, anyhow::Error> {
    let db = connect(location).await?;
    migrate::run(&db).await?;
    let replica = match replica_url {
        Some(url) => Some(postgres::connect_replica(url.expose()).await?),
        None => None,
    };
    Ok(Store::new(db, replica))
}

/// Connects and applies pending migrations, then lets go: `dkp migrate`.
pub async fn migrate_only(location: &Location) -> Result<(), anyhow::Error> {
    open(location).await?.close().await;
    Ok(())
}
