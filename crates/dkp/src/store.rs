//! The storage port. Handlers and use cases hold an `Arc<dyn Store>` and never
//! see SQL; `SqlStore` implements it once over PostgreSQL and SQLite.
//!
//! Invariants every implementation keeps:
//! - every read and write of guild data names the guild in the query itself;
//! - a change and its audit row (and its idempotency record) commit together;
//! - entries and postings are only ever inserted, and the postings of an entry
//!   sum to zero, so the postings of a pool always sum to zero.

/// `held`: the sum of an account `a`'s holds on open lots, as a column.
macro_rules! held_sql {
    () => {
        "CAST(COALESCE((SELECT SUM(h.amount) FROM holds h WHERE h.account_id = a.id), 0) AS BIGINT) AS held"
    };
}

mod accounts;
mod auction;
mod events;
mod gate;
mod guilds;
mod images;
mod jobs;
mod ledger;
mod marks;
mod migrate;
pub mod model;
mod postgres;
mod replica;
mod retry;
pub mod sql;
mod sql_store;
mod sqlite;

use std::sync::Arc;

use async_trait::async_trait;
use dkp_core::Role;
use uuid::Uuid;

use crate::blobs::PublicUrls;

pub use auction::{CLOSE_LOT, Ending};
pub use jobs::{Job, JobEnd, NewJob};
pub use model::*;
pub use replica::{Lsn, Read};
pub use retry::is_retryable as is_contention;
pub use sql::{Backend, Ts};
pub use sql_store::SqlStore;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A uniqueness or state rule refused the change; the code is stable.
    #[error("conflict: {0}")]
    Conflict(&'static str),
    /// Something named inside the request (not in its path) does not exist.
    #[error("unknown reference: {0}")]
    UnknownReference(&'static str),
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Ledger(#[from] dkp_core::LedgerError<Uuid>),
    /// A concurrent writer claimed the same idempotency key first: run again.
    #[error("raced for an idempotency key")]
    Raced,
    #[error("the idempotency key was used with another request")]
    IdempotencyKeyReused,
    /// The database refused for a reason of its own; the cause is logged, not shown.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

/// Who is changing what, and when: written into the audit row of the change.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub actor: Option<Uuid>,
    pub request_id: String,
    pub now: Ts,
}

/// The storage port of the service.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    fn backend(&self) -> Backend;
    /// Answers when the database does.
    async fn ping(&self) -> Result<(), StoreError>;
    async fn close(&self);
    /// Answers when the read replica does; `None` when there is none.
    async fn ping_replica(&self) -> Option<Result<(), StoreError>>;
    /// How far the primary has written, for a caller who has just written;
    /// `None` when there is no replica (every read sees every write).
    async fn write_position(&self) -> Result<Option<Lsn>, StoreError>;

    async fn create_user(&self, user: &NewUser, ctx: &Ctx) -> Result<User, StoreError>;
    /// The user and their password hash, by folded username.
    async fn login_of(&self, username_folded: &str) -> Result<Option<(User, String)>, StoreError>;
    async fn create_session(&self, session: &NewSession, ctx: &Ctx) -> Result<(), StoreError>;
    /// The user of an unexpired session.
    async fn session_user(&self, token_hash: &[u8], now: Ts) -> Result<Option<User>, StoreError>;
    async fn end_session(&self, token_hash: &[u8], ctx: &Ctx) -> Result<(), StoreError>;
    async fn memberships(&self, user_id: Uuid, read: Read) -> Result<Vec<Membership>, StoreError>;

    /// Creates a guild with the actor as its owner.
    async fn create_guild(&self, guild: &NewGuild, ctx: &Ctx) -> Result<Membership, StoreError>;
    /// The caller's membership of the guild at `slug`: the tenancy gate.
    async fn membership(&self, slug: &str, user_id: Uuid) -> Result<Option<Membership>, StoreError>;
    async fn add_member(
        &self,
        guild_id: Uuid,
        username_folded: &str,
        role: Role,
        ctx: &Ctx,
    ) -> Result<Member, StoreError>;
    async fn members(&self, guild_id: Uuid, read: Read) -> Result<Vec<Member>, StoreError>;
    async fn set_role(&self, guild_id: Uuid, member_id: Uuid, role: Role, ctx: &Ctx) -> Result<Member, StoreError>;

    async fn create_pool(
        &self,
        guild_id: Uuid,
        name: &str,
        allow_negative: bool,
        ctx: &Ctx,
    ) -> Result<Pool, StoreError>;
    async fn pools(&self, guild_id: Uuid, read: Read) -> Result<Vec<Pool>, StoreError>;
    async fn standings(&self, guild_id: Uuid, pool_id: Uuid, read: Read) -> Result<Vec<Standing>, StoreError>;
    async fn entry(&self, guild_id: Uuid, entry_id: Uuid) -> Result<Option<Entry>, StoreError>;
    /// Stores the answer to a refused request under its idempotency key
    /// (unless an answer is stored already), so that a repeat gets it again.
    async fn remember_refusal(
        &self,
        claim: &IdempotencyClaim,
        status: u16,
        body: &str,
        ctx: &Ctx,
    ) -> Result<(), StoreError>;
    /// Writes one ledger entry, or replays the answer stored under its idempotency key.
    async fn record_entry(&self, command: &EntryCommand, ctx: &Ctx) -> Result<Recorded, StoreError>;
    async fn entries(
        &self,
        guild_id: Uuid,
        pool_id: Uuid,
        member_id: Option<Uuid>,
        page: PageRequest,
        read: Read,
    ) -> Result<Page<Entry>, StoreError>;
    async fn audit(&self, guild_id: Uuid, page: PageRequest, read: Read) -> Result<Page<AuditRecord>, StoreError>;

    /// Opens a lot; the events of its opening.
    async fn create_lot(&self, lot: &NewLot, ctx: &Ctx) -> Result<(LotView, Vec<Event>), StoreError>;
    async fn lot(&self, guild_id: Uuid, lot_id: Uuid) -> Result<Option<LotView>, StoreError>;
    async fn lots(
        &self,
        guild_id: Uuid,
        status: Option<dkp_core::auction::Status>,
        page: PageRequest,
        read: Read,
    ) -> Result<Page<LotView>, StoreError>;
    /// The guild a lot belongs to, by slug: for subscriptions, which name only the lot.
    async fn lot_guild(&self, lot_id: Uuid) -> Result<Option<String>, StoreError>;
    /// Applies a batch of queued bids of one lot in one transaction.
    async fn place_bids(
        &self,
        guild_id: Uuid,
        pool_id: Uuid,
        lot_id: Uuid,
        bids: &[BidCommand],
        ctx: &Ctx,
    ) -> Result<BidBatch, StoreError>;
    /// Closes (settling it) or cancels an open lot.
    async fn end_lot(
        &self,
        guild_id: Uuid,
        lot_id: Uuid,
        ending: Ending,
        reason: &str,
        ctx: &Ctx,
    ) -> Result<(LotView, Vec<Event>), StoreError>;
    /// How many lots are open, in every guild.
    async fn open_lot_count(&self) -> Result<i64, StoreError>;
    /// Writes a job on its own (409 `duplicate_job` when its dedup key is taken).
    async fn enqueue_job(&self, job: &NewJob, ctx: &Ctx) -> Result<Job, StoreError>;
    async fn job_by_key(&self, key: &str) -> Result<Option<Job>, StoreError>;
    /// A guild's job.
    async fn job(&self, guild_id: Uuid, job_id: Uuid) -> Result<Option<Job>, StoreError>;
    /// Claims due jobs for `runner` until `lease_until`; gives up those run `max_attempts` times.
    async fn claim_jobs(
        &self,
        runner: &str,
        now: Ts,
        lease_until: Ts,
        limit: u32,
        max_attempts: i32,
    ) -> Result<Vec<Job>, StoreError>;
    /// Records how `runner`'s run of a job ended; false if its lease was lost.
    async fn finish_job(&self, job_id: Uuid, runner: &str, end: &JobEnd, now: Ts) -> Result<bool, StoreError>;
    /// Jobs due and waiting, and the lateness of the oldest, in seconds.
    async fn job_backlog(&self, now: Ts) -> Result<(i64, f64), StoreError>;
    /// Events of `channel` after `offset`, in order, at most `limit`.
    async fn events_since(&self, channel: &str, offset: i64, limit: u32) -> Result<Vec<Event>, StoreError>;
    /// The oldest and newest offsets kept for `channel`.
    async fn event_bounds(&self, channel: &str) -> Result<Option<(i64, i64)>, StoreError>;

    /// Points the guild's logo at the stored object `key`.
    async fn set_guild_logo(&self, guild_id: Uuid, key: &str, ctx: &Ctx) -> Result<Guild, StoreError>;
    /// Points a lot's icon at the stored object `key`.
    async fn set_lot_icon(&self, guild_id: Uuid, lot_id: Uuid, key: &str, ctx: &Ctx) -> Result<LotView, StoreError>;
}

/// Where the data lives, from `DATABASE_URL`.
#[derive(Clone, Debug)]
pub enum Location {
    Postgres { url: crate::config::Secret },
    Sqlite { path: std::path::PathBuf },
}

/// A connection pool to the configured database.
pub async fn connect(location: &Location) -> Result<sql::Db, anyhow::Error> {
    match location {
        Location::Postgres { url } => postgres::connect(url.expose()).await,
        Location::Sqlite { path } => sqlite::connect(path).await,
    }
}

/// Connects to the configured database and applies pending migrations;
/// `urls` is how image keys read in the lots the store writes out.
pub async fn open(location: &Location, urls: PublicUrls) -> Result<Arc<dyn Store>, anyhow::Error> {
    open_with_replica(location, None, urls).await
}

/// Like `open`, with lag-tolerant reads sent to the read replica at
/// `replica_url` (PostgreSQL only; the configuration checks it).
pub async fn open_with_replica(
    location: &Location,
    replica_url: Option<&crate::config::Secret>,
    urls: PublicUrls,
) -> Result<Arc<dyn Store>, anyhow::Error> {
    let db = connect(location).await?;
    migrate::run(&db).await?;
    Ok(Arc::new(match replica_url {
        Some(url) => SqlStore::with_replica(db, postgres::connect_replica(url.expose()).await?, urls),
        None => SqlStore::new(db, urls),
    }))
}

/// Connects and applies pending migrations, then lets go: `dkp migrate`.
pub async fn migrate_only(location: &Location) -> Result<(), anyhow::Error> {
    let store = open(location, PublicUrls::default()).await?;
    store.close().await;
    Ok(())
}
