//! Lots (seed risk R3): opening one (with its closing job, in the same
//! transaction), reading them, and locking one for a change. A batch of bids
//! is `bids`; closing and cancelling are `settlement`.

use std::collections::HashMap;

use dkp_core::Points;
use dkp_core::auction::{Lot, Mode, Standing, Status, Terms};
use serde_json::json;
use uuid::Uuid;

use super::audit::{AuditWrite, audit, paginate};
use super::events::{Pending, append};
use super::retry::retry;
use super::sql::{Backend, Db, Row, Rows, Tx};
use super::{Ctx, Read, Store, StoreError};
use crate::model::{
    Event, EventName, JobKind, LotView, NewJob, NewLot, Page, PageRequest, Ts, guild_channel, lot_channel,
};

/// A lot query: every column of `lots l`, then `$tail` (more columns, joins, conditions).
macro_rules! lot_sql {
    ($tail:literal) => {
        concat!(
            "SELECT l.id, l.guild_id, l.pool_id, l.item_name, l.game_item_id, l.mode, l.status, l.min_bid, \
             l.increment, l.anti_snipe_s, l.extend_s, l.ends_at, l.created_at, l.created_by, l.seq, l.bid_count, \
             l.high_bid, l.leader_member_id, l.winner_member_id, l.price, l.settlement_entry_id, l.cancel_reason, \
             l.icon_key, l.raid_id",
            $tail
        )
    };
}

pub(super) fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn lot_of(row: &Row) -> Result<LotView, StoreError> {
    let points = |name: &str| -> Result<Points, StoreError> { Ok(Points::from_stored(row.get(name)?)) };
    let maybe_points = |name: &str| -> Result<Option<Points>, StoreError> {
        Ok(row.get::<Option<i64>>(name)?.map(Points::from_stored))
    };
    Ok(LotView {
        id: row.get("id")?,
        guild_id: row.get("guild_id")?,
        pool_id: row.get("pool_id")?,
        item_name: row.get("item_name")?,
        game_item_id: row.get("game_item_id")?,
        mode: Mode::parse(&row.get::<String>("mode")?).ok_or_else(|| corrupt("lot mode"))?,
        status: Status::parse(&row.get::<String>("status")?).ok_or_else(|| corrupt("lot status"))?,
        min_bid: points("min_bid")?,
        increment: points("increment")?,
        anti_snipe_s: row.get("anti_snipe_s")?,
        extend_s: row.get("extend_s")?,
        ends_at: row.get("ends_at")?,
        created_at: row.get("created_at")?,
        created_by: row.get("created_by")?,
        seq: row.get("seq")?,
        bid_count: row.get("bid_count")?,
        high_bid: maybe_points("high_bid")?,
        leader_member_id: row.get("leader_member_id")?,
        winner_member_id: row.get("winner_member_id")?,
        price: maybe_points("price")?,
        settlement_entry_id: row.get("settlement_entry_id")?,
        cancel_reason: row.get("cancel_reason")?,
        icon_key: row.get("icon_key")?,
        raid_id: row.get("raid_id")?,
    })
}

/// A time as `dkp-core` counts it, back as a `Ts`.
pub(super) fn from_micros(us: i64) -> Result<Ts, StoreError> {
    Ts::from_micros(us).ok_or_else(|| corrupt("a time out of range"))
}

/// Writes a new lot's row.
async fn insert_lot(tx: &mut Tx, lot: &LotView) -> Result<(), StoreError> {
    tx.sql(
        "INSERT INTO lots (id, guild_id, pool_id, item_name, game_item_id, mode, status, min_bid, increment, \
         anti_snipe_s, extend_s, ends_at, created_at, created_by, seq, bid_count, raid_id) \
         VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9, $10, $11, $12, $13, 1, 0, $14)",
    )
    .bind(lot.id)
    .bind(lot.guild_id)
    .bind(lot.pool_id)
    .bind(lot.item_name.as_str())
    .bind(lot.game_item_id.clone())
    .bind(lot.mode.as_str())
    .bind(lot.min_bid.hundredths())
    .bind(lot.increment.hundredths())
    .bind(lot.anti_snipe_s)
    .bind(lot.extend_s)
    .bind(lot.ends_at)
    .bind(lot.created_at)
    .bind(lot.created_by)
    .bind(lot.raid_id)
    .execute()
    .await?;
    Ok(())
}

/// The job that closes a lot when it is due (run again later if a bid extended it).
pub fn close_job(lot: &LotView) -> NewJob {
    NewJob {
        kind: JobKind::CloseLot,
        dedup_key: Some(format!("{}:{}", JobKind::CloseLot.as_str(), lot.id)),
        guild_id: Some(lot.guild_id),
        payload: json!({"lot_id": lot.id}),
        run_at: lot.ends_at,
    }
}

/// A lot read inside a transaction, such as one that changes it.
pub(super) async fn lot_in(tx: &mut Tx, guild_id: Uuid, lot_id: Uuid) -> Result<Option<LotView>, StoreError> {
    const SQL: &str = lot_sql!(" FROM lots l WHERE l.guild_id = $1 AND l.id = $2");
    tx.sql(SQL).bind(guild_id).bind(lot_id).fetch_optional().await?.as_ref().map(lot_of).transpose()
}

async fn lot(db: &Db, guild_id: Uuid, lot_id: Uuid) -> Result<Option<LotView>, StoreError> {
    db.sql(lot_sql!(" FROM lots l WHERE l.guild_id = $1 AND l.id = $2"))
        .bind(guild_id)
        .bind(lot_id)
        .fetch_optional()
        .await?
        .as_ref()
        .map(lot_of)
        .transpose()
}

/// The lots of a raid, newest first.
pub(super) async fn raid_lots(db: &Db, guild_id: Uuid, raid_id: Uuid) -> Result<Vec<LotView>, StoreError> {
    db.sql(lot_sql!(" FROM lots l WHERE l.guild_id = $1 AND l.raid_id = $2 ORDER BY l.id DESC"))
        .bind(guild_id)
        .bind(raid_id)
        .fetch_all()
        .await?
        .iter()
        .map(lot_of)
        .collect()
}

async fn lots(db: &Db, guild_id: Uuid, status: Option<Status>, page: PageRequest) -> Result<Page<LotView>, StoreError> {
    let rows = db
        .sql(lot_sql!(
            " FROM lots l WHERE l.guild_id = $1 AND ($2 IS NULL OR l.status = $2) AND ($3 IS NULL OR l.id < $3) \
             ORDER BY l.id DESC LIMIT $4"
        ))
        .bind(guild_id)
        .bind(status.map(Status::as_str))
        .bind(page.before)
        .bind(i64::from(page.limit) + 1)
        .fetch_all()
        .await?;
    Ok(paginate(rows.iter().map(lot_of).collect::<Result<_, _>>()?, page, |l| l.id))
}

/// The locked lot, its standing bids with their accounts, and its terms as `dkp-core` reads them.
pub(super) struct Locked {
    pub view: LotView,
    pub lot: Lot<Uuid>,
    /// The account of each member with a hold on the lot.
    pub accounts: HashMap<Uuid, Uuid>,
    pub allow_negative: bool,
    pub slug: String,
}

/// Locks a lot of the guild for a change: `NotFound` if the guild has no such lot.
pub(super) async fn lock_lot(tx: &mut Tx, guild_id: Uuid, lot_id: Uuid) -> Result<Locked, StoreError> {
    lock_lots(tx, &[(guild_id, lot_id)]).await?.remove(&lot_id).ok_or(StoreError::NotFound)
}

/// Locks lots, each named with its guild, in id order (so two writers never
/// wait on each other in a cycle), and reads their standing bids (the
/// holds above zero: an outbid bidder's stays at zero until the lot
/// settles), in one statement whatever their number. A lot its guild does
/// not have is missing from the answer.
pub(super) async fn lock_lots(tx: &mut Tx, lots: &[(Uuid, Uuid)]) -> Result<HashMap<Uuid, Locked>, StoreError> {
    if lots.is_empty() {
        return Ok(HashMap::new());
    }
    let locks = tx.backend() == Backend::Postgres && !super::gate::bids_unlocked();
    let lock = if locks { " FOR UPDATE OF l" } else { "" };
    let named = Rows::of(lots.iter().copied());
    // One row per hold (or one for a lot without any). Each hold's member by
    // its account's key: not a join the planner may answer by scanning
    // every account.
    let sql = format!(
        concat!(
            lot_sql!(""),
            ", p.allow_negative, g.slug, h.account_id AS hold_account, h.amount AS hold_amount, h.seq AS hold_seq, \
             (SELECT a.member_id FROM accounts a WHERE a.id = h.account_id) AS hold_member \
             FROM {} JOIN lots l ON l.guild_id = v.column1 AND l.id = v.column2 \
             JOIN pools p ON p.id = l.pool_id JOIN guilds g ON g.id = l.guild_id \
             LEFT JOIN holds h ON h.lot_id = l.id AND h.amount > 0 ORDER BY l.id, h.seq{}"
        ),
        named.relation(tx.backend(), 1),
        lock
    );
    let mut locked: HashMap<Uuid, Locked> = HashMap::with_capacity(lots.len());
    for row in tx.sql_built(sql).bind_rows(named).fetch_all().await? {
        let id: Uuid = row.get("id")?;
        if !locked.contains_key(&id) {
            locked.insert(id, locked_of(&row)?);
        }
        let Some(account) = row.get::<Option<Uuid>>("hold_account")? else { continue };
        let (Some(lot), Some(member)) = (locked.get_mut(&id), row.get::<Option<Uuid>>("hold_member")?) else {
            return Err(corrupt("a hold without a member"));
        };
        lot.accounts.insert(member, account);
        let amount = Points::from_stored(row.get("hold_amount")?);
        lot.lot.standing.push(Standing { member, amount, seq: row.get("hold_seq")? });
    }
    Ok(locked)
}

/// A locked lot as its row gives it, before its standing bids.
fn locked_of(row: &Row) -> Result<Locked, StoreError> {
    let view = lot_of(row)?;
    let lot = Lot {
        terms: Terms {
            mode: view.mode,
            min_bid: view.min_bid,
            increment: view.increment,
            anti_snipe_us: i64::from(view.anti_snipe_s) * 1_000_000,
            extend_us: i64::from(view.extend_s) * 1_000_000,
        },
        status: view.status,
        ends_at: view.ends_at.micros(),
        seq: view.seq,
        bid_count: view.bid_count,
        standing: Vec::new(),
    };
    let (allow_negative, slug) = (row.get("allow_negative")?, row.get("slug")?);
    Ok(Locked { view, lot, accounts: HashMap::new(), allow_negative, slug })
}

impl Store {
    /// Opens a lot, with the job that closes it; the events of its opening.
    pub async fn create_lot(&self, new: &NewLot, ctx: &Ctx) -> Result<(LotView, Vec<Event>), StoreError> {
        let _turn = self.gate.enter().await?;
        retry("create_lot", || async {
            let mut tx = self.db.begin_write_in_lane().await?;
            let pool = tx.sql("SELECT id FROM pools WHERE guild_id = $1 AND id = $2");
            if pool.bind(new.guild_id).bind(new.pool_id).fetch_optional().await?.is_none() {
                return Err(StoreError::UnknownReference("pool_id"));
            }
            if let Some(raid_id) = new.raid_id {
                let raid = tx.sql("SELECT id FROM raids WHERE guild_id = $1 AND id = $2 AND pool_id = $3");
                if raid.bind(new.guild_id).bind(raid_id).bind(new.pool_id).fetch_optional().await?.is_none() {
                    return Err(StoreError::UnknownReference("raid_id"));
                }
            }
            let lot = new.opened(Uuid::now_v7(), ctx.now);
            insert_lot(&mut tx, &lot).await?;
            let data = Event::lot_data(&lot);
            let pending = vec![
                Pending::at(lot_channel(lot.id), lot.seq, EventName::LotOpened, data.clone()),
                Pending::next(guild_channel(&new.guild_slug), EventName::LotOpened, data),
            ];
            let events = append(&mut tx, pending, ctx).await?;
            let opened = AuditWrite::new(ctx, Some(lot.guild_id), "lot.open", "lot", lot.id);
            audit(&mut tx, opened.after(lot.without_secrets())).await?;
            super::jobs::enqueue(&mut tx, &close_job(&lot), ctx).await?;
            tx.commit().await?;
            Ok((lot, events))
        })
        .await
    }

    pub async fn lot(&self, guild_id: Uuid, lot_id: Uuid) -> Result<Option<LotView>, StoreError> {
        lot(&self.db, guild_id, lot_id).await
    }

    pub async fn lots(
        &self,
        guild_id: Uuid,
        status: Option<Status>,
        page: PageRequest,
        read: Read,
    ) -> Result<Page<LotView>, StoreError> {
        self.read(read, |db| lots(db, guild_id, status, page)).await
    }

    /// The guild a lot belongs to, by slug: for subscriptions, which name only the lot.
    pub async fn lot_guild(&self, lot_id: Uuid) -> Result<Option<String>, StoreError> {
        let row = self
            .db
            .sql("SELECT g.slug FROM lots l JOIN guilds g ON g.id = l.guild_id WHERE l.id = $1")
            .bind(lot_id)
            .fetch_optional()
            .await?;
        Ok(row.map(|row| row.get("slug")).transpose()?)
    }

    /// How many lots are open, in every guild.
    pub async fn open_lot_count(&self) -> Result<i64, StoreError> {
        Ok(self.db.sql("SELECT COUNT(*) AS open FROM lots WHERE status = 'open'").fetch_one().await?.get("open")?)
    }
}
