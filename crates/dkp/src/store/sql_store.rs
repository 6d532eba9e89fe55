//! `SqlStore`: the `Store` port over PostgreSQL or SQLite. The use cases live in
//! `accounts`, `guilds`, `ledger` and `auction`; this file wires them to the trait and
//! holds what they share (audit rows, constraint mapping).

use async_trait::async_trait;
use dkp_core::Role;
use sqlx::types::Json;
use uuid::Uuid;

use super::gate::Gate;
use super::marks::Marks;
use super::replica::{self, Lsn, Read, Replica};
use super::sql::{Backend, Db, Ts, Tx};
use super::{
    Ctx, Ending, Job, JobEnd, NewJob, Store, StoreError, accounts, auction, events, guilds, images, jobs, ledger,
    model::*,
};
use crate::blobs::PublicUrls;

pub struct SqlStore {
    pub(super) db: Db,
    pub(super) gate: Gate,
    /// How image keys read as URLs in the lots this store writes into events and answers.
    pub(super) urls: PublicUrls,
    /// Where lag-tolerant reads go, when configured, and the marks that keep
    /// a writer's own reads on the primary until the replica has their write.
    replica: Option<(Replica, Marks)>,
}

impl SqlStore {
    pub fn new(db: Db, urls: PublicUrls) -> SqlStore {
        SqlStore { db, gate: Gate::new(), urls, replica: None }
    }

    /// A store whose lag-tolerant reads go to `replica`.
    pub fn with_replica(db: Db, replica: Db, urls: PublicUrls) -> SqlStore {
        SqlStore { db, gate: Gate::new(), urls, replica: Some((Replica::new(replica), Marks::new())) }
    }
}

impl SqlStore {
    /// Runs a lag-tolerant read where `read` lets it run.
    async fn read<'a, T, F, Fut>(&'a self, read: Read, query: F) -> Result<T, StoreError>
    where
        F: Fn(&'a Db) -> Fut,
        Fut: std::future::Future<Output = Result<T, StoreError>>,
    {
        replica::route(&self.db, self.replica.as_ref().map(|(replica, _)| replica), read, query).await
    }
}

/// Writes the audit row of a change, inside the change's transaction.
pub(super) async fn audit(tx: &mut Tx, row: AuditWrite<'_>) -> Result<(), StoreError> {
    tx.sql(
        "INSERT INTO audit_log (id, guild_id, actor_id, action, target_type, target_id, request_id, created_at, before, after) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(Uuid::now_v7())
    .bind(row.guild_id)
    .bind(row.ctx.actor)
    .bind(row.action)
    .bind(row.target_type)
    .bind(row.target_id)
    .bind(row.ctx.request_id.clone())
    .bind(row.ctx.now)
    .bind(row.before.map(Json))
    .bind(row.after.map(Json))
    .execute()
    .await?;
    Ok(())
}

/// Maps a named unique constraint to a stable conflict code.
pub(super) trait OnUnique<T> {
    /// `constraint` is the PostgreSQL constraint name; `columns` the
    /// `table.column` SQLite names in its message.
    fn on_unique(self, constraint: &str, columns: &str, code: &'static str) -> Result<T, StoreError>;
}

impl<T> OnUnique<T> for Result<T, sqlx::Error> {
    fn on_unique(self, constraint: &str, columns: &str, code: &'static str) -> Result<T, StoreError> {
        self.map_err(|error| match &error {
            sqlx::Error::Database(db)
                if db.is_unique_violation()
                    && (db.constraint() == Some(constraint) || db.message().contains(columns)) =>
            {
                StoreError::Conflict(code)
            }
            _ => StoreError::Database(error),
        })
    }
}

/// Parses a role read back from the database.
pub(super) fn stored_role(text: &str) -> Result<Role, StoreError> {
    Role::parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown role {text:?}")))
}

#[async_trait]
impl Store for SqlStore {
    fn backend(&self) -> Backend {
        self.db.backend()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db.sql("SELECT 1 AS one").fetch_one().await?;
        Ok(())
    }

    async fn close(&self) {
        self.db.close().await;
        if let Some((replica, _)) = &self.replica {
            replica.db().close().await;
        }
    }

    async fn ping_replica(&self) -> Option<Result<(), StoreError>> {
        Some(self.replica.as_ref()?.0.ping().await)
    }

    async fn write_position(&self) -> Result<Option<Lsn>, StoreError> {
        match &self.replica {
            Some((_, marks)) => Ok(Some(marks.after_commit(&self.db).await?)),
            None => Ok(None),
        }
    }

    async fn create_user(&self, user: &NewUser, ctx: &Ctx) -> Result<User, StoreError> {
        accounts::create_user(&self.db, user, ctx).await
    }

    async fn login_of(&self, username_folded: &str) -> Result<Option<(User, String)>, StoreError> {
        accounts::login_of(&self.db, username_folded).await
    }

    async fn create_session(&self, session: &NewSession, ctx: &Ctx) -> Result<(), StoreError> {
        accounts::create_session(&self.db, session, ctx).await
    }

    async fn session_user(&self, token_hash: &[u8], now: super::Ts) -> Result<Option<User>, StoreError> {
        accounts::session_user(&self.db, token_hash, now).await
    }

    async fn end_session(&self, token_hash: &[u8], ctx: &Ctx) -> Result<(), StoreError> {
        accounts::end_session(&self.db, token_hash, ctx).await
    }

    async fn memberships(&self, user_id: Uuid, read: Read) -> Result<Vec<Membership>, StoreError> {
        self.read(read, |db| guilds::memberships(db, user_id)).await
    }

    async fn create_guild(&self, guild: &NewGuild, ctx: &Ctx) -> Result<Membership, StoreError> {
        guilds::create_guild(&self.db, guild, ctx).await
    }

    async fn membership(&self, slug: &str, user_id: Uuid) -> Result<Option<Membership>, StoreError> {
        guilds::membership(&self.db, slug, user_id).await
    }

    async fn add_member(
        &self,
        guild_id: Uuid,
        username_folded: &str,
        role: Role,
        ctx: &Ctx,
    ) -> Result<Member, StoreError> {
        guilds::add_member(&self.db, guild_id, username_folded, role, ctx).await
    }

    async fn members(&self, guild_id: Uuid, read: Read) -> Result<Vec<Member>, StoreError> {
        self.read(read, |db| guilds::members(db, guild_id)).await
    }

    async fn set_role(&self, guild_id: Uuid, member_id: Uuid, role: Role, ctx: &Ctx) -> Result<Member, StoreError> {
        guilds::set_role(&self.db, guild_id, member_id, role, ctx).await
    }

    async fn create_pool(
        &self,
        guild_id: Uuid,
        name: &str,
        allow_negative: bool,
        ctx: &Ctx,
    ) -> Result<Pool, StoreError> {
        ledger::create_pool(&self.db, guild_id, name, allow_negative, ctx).await
    }

    async fn pools(&self, guild_id: Uuid, read: Read) -> Result<Vec<Pool>, StoreError> {
        self.read(read, |db| ledger::pools(db, guild_id)).await
    }

    async fn standings(&self, guild_id: Uuid, pool_id: Uuid, read: Read) -> Result<Vec<Standing>, StoreError> {
        self.read(read, |db| ledger::standings(db, guild_id, pool_id)).await
    }

    async fn entry(&self, guild_id: Uuid, entry_id: Uuid) -> Result<Option<Entry>, StoreError> {
        ledger::entry(&self.db, guild_id, entry_id).await
    }

    async fn record_entry(&self, command: &EntryCommand, ctx: &Ctx) -> Result<Recorded, StoreError> {
        let _turn = self.gate.enter(command.pool_id).await;
        super::retry::retry(command.request.kind(), || ledger::record_entry(&self.db, command, ctx)).await
    }

    async fn remember_refusal(
        &self,
        claim: &IdempotencyClaim,
        status: u16,
        body: &str,
        ctx: &Ctx,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin_locking().await?;
        match ledger::remember(&mut tx, claim, status, body, ctx).await {
            Ok(()) => Ok(tx.commit().await?),
            // An answer is stored under the key already: it stays the answer.
            Err(StoreError::Raced) => Ok(()),
            Err(other) => Err(other),
        }
    }

    async fn create_lot(&self, lot: &NewLot, ctx: &Ctx) -> Result<(LotView, Vec<Event>), StoreError> {
        auction::create_lot(self, lot, ctx).await
    }

    async fn lot(&self, guild_id: Uuid, lot_id: Uuid) -> Result<Option<LotView>, StoreError> {
        auction::lot(&self.db, guild_id, lot_id).await
    }

    async fn lots(
        &self,
        guild_id: Uuid,
        status: Option<dkp_core::auction::Status>,
        page: PageRequest,
        read: Read,
    ) -> Result<Page<LotView>, StoreError> {
        self.read(read, |db| auction::lots(db, guild_id, status, page)).await
    }

    async fn lot_guild(&self, lot_id: Uuid) -> Result<Option<String>, StoreError> {
        let row = self
            .db
            .sql("SELECT g.slug FROM lots l JOIN guilds g ON g.id = l.guild_id WHERE l.id = $1")
            .bind(lot_id)
            .fetch_optional()
            .await?;
        Ok(row.map(|row| row.get("slug")).transpose()?)
    }

    async fn place_bids(
        &self,
        guild_id: Uuid,
        pool_id: Uuid,
        lot_id: Uuid,
        bids: &[BidCommand],
        ctx: &Ctx,
    ) -> Result<BidBatch, StoreError> {
        let _turn = self.gate.enter(pool_id).await;
        super::retry::retry("bid", || auction::place_bids(self, guild_id, pool_id, lot_id, bids, ctx)).await
    }

    async fn end_lot(
        &self,
        guild_id: Uuid,
        lot_id: Uuid,
        ending: Ending,
        reason: &str,
        ctx: &Ctx,
    ) -> Result<(LotView, Vec<Event>), StoreError> {
        let pool_id = auction::lot(&self.db, guild_id, lot_id).await?.ok_or(StoreError::NotFound)?.pool_id;
        let _turn = self.gate.enter(pool_id).await;
        auction::end_lot(self, guild_id, pool_id, lot_id, ending, reason, ctx).await
    }

    async fn open_lot_count(&self) -> Result<i64, StoreError> {
        Ok(self.db.sql("SELECT COUNT(*) AS open FROM lots WHERE status = 'open'").fetch_one().await?.get("open")?)
    }

    async fn enqueue_job(&self, job: &NewJob, ctx: &Ctx) -> Result<Job, StoreError> {
        jobs::enqueue_alone(&self.db, job, ctx).await
    }

    async fn job_by_key(&self, key: &str) -> Result<Option<Job>, StoreError> {
        jobs::job_by_key(&self.db, key).await
    }

    async fn job(&self, guild_id: Uuid, job_id: Uuid) -> Result<Option<Job>, StoreError> {
        jobs::job(&self.db, guild_id, job_id).await
    }

    async fn claim_jobs(
        &self,
        runner: &str,
        now: Ts,
        lease_until: Ts,
        limit: u32,
        max_attempts: i32,
    ) -> Result<Vec<Job>, StoreError> {
        jobs::claim(&self.db, runner, now, lease_until, limit, max_attempts).await
    }

    async fn finish_job(&self, job_id: Uuid, runner: &str, end: &JobEnd, now: Ts) -> Result<bool, StoreError> {
        jobs::finish(&self.db, job_id, runner, end, now).await
    }

    async fn job_backlog(&self, now: Ts) -> Result<(i64, f64), StoreError> {
        jobs::backlog(&self.db, now).await
    }

    async fn events_since(&self, channel: &str, offset: i64, limit: u32) -> Result<Vec<Event>, StoreError> {
        events::since(&self.db, channel, offset, limit).await
    }

    async fn event_bounds(&self, channel: &str) -> Result<Option<(i64, i64)>, StoreError> {
        events::bounds(&self.db, channel).await
    }

    async fn entries(
        &self,
        guild_id: Uuid,
        pool_id: Uuid,
        member_id: Option<Uuid>,
        page: PageRequest,
        read: Read,
    ) -> Result<Page<Entry>, StoreError> {
        self.read(read, |db| ledger::entries(db, guild_id, pool_id, member_id, page)).await
    }

    async fn audit(&self, guild_id: Uuid, page: PageRequest, read: Read) -> Result<Page<AuditRecord>, StoreError> {
        self.read(read, |db| guilds::audit(db, guild_id, page)).await
    }

    async fn set_guild_logo(&self, guild_id: Uuid, key: &str, ctx: &Ctx) -> Result<Guild, StoreError> {
        images::set_guild_logo(&self.db, guild_id, key, ctx).await
    }

    async fn set_lot_icon(&self, guild_id: Uuid, lot_id: Uuid, key: &str, ctx: &Ctx) -> Result<LotView, StoreError> {
        let pool_id = auction::lot(&self.db, guild_id, lot_id).await?.ok_or(StoreError::NotFound)?.pool_id;
        let _turn = self.gate.enter(pool_id).await;
        images::set_lot_icon(&self.db, guild_id, pool_id, lot_id, key, ctx).await
    }
}
