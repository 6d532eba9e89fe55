//! Lots and bids (seed risk R3). `place_bids` applies a whole batch of queued
//! bids of one lot in one transaction: the pool's lane, then the lot row, then
//! each bidder's account as it comes; `dkp-core` decides each bid. Closing
//! and cancelling are guarded transitions of the locked lot row, so a lot is
//! settled exactly once however many closers race.

use std::collections::{BTreeSet, HashMap};

use dkp_core::Points;
use dkp_core::auction::{Lot, Mode, Standing, Status, Terms};
use dkp_core::ledger;
use serde_json::json;
use time::Duration;
use uuid::Uuid;

use super::events::{Pending, append, balance_changes};
use super::ledger::{Draft, lock_wallets, post};
use super::model::*;
use super::sql::{Backend, Db, Row, Ts, Tx, placeholders, value_rows};
use super::sql_store::{SqlStore, audit};
use super::{Ctx, StoreError};

/// A lot query: every column of `lots l`, then `$tail` (more columns, joins, conditions).
macro_rules! lot_sql {
    ($tail:literal) => {
        concat!(
            "SELECT l.id, l.guild_id, l.pool_id, l.item_name, l.game_item_id, l.mode, l.status, l.min_bid, \
             l.increment, l.anti_snipe_s, l.extend_s, l.ends_at, l.created_at, l.created_by, l.seq, l.bid_count, \
             l.high_bid, l.leader_member_id, l.winner_member_id, l.price, l.settlement_entry_id, l.cancel_reason, \
             l.icon_key",
            $tail
        )
    };
}

fn corrupt(what: &str) -> StoreError {
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
    })
}

fn micros(ts: Ts) -> i64 {
    (ts.0.unix_timestamp_nanos() / 1_000) as i64
}

fn from_micros(us: i64) -> Result<Ts, StoreError> {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000)
        .map(Ts)
        .map_err(|_| corrupt("a time out of range"))
}

pub async fn create_lot(store: &SqlStore, new: &NewLot, ctx: &Ctx) -> Result<(LotView, Vec<Event>), StoreError> {
    let (db, urls) = (&store.db, &store.urls);
    super::retry::retry("create_lot", || async {
        let mut tx = db.begin_write().await?;
        let exists = tx
            .sql("SELECT id FROM pools WHERE guild_id = $1 AND id = $2")
            .bind(new.guild_id)
            .bind(new.pool_id)
            .fetch_optional()
            .await?;
        if exists.is_none() {
            return Err(StoreError::UnknownReference("pool_id"));
        }
        let lot = LotView {
            id: Uuid::now_v7(),
            guild_id: new.guild_id,
            pool_id: new.pool_id,
            item_name: new.item_name.clone(),
            game_item_id: new.game_item_id.clone(),
            mode: new.terms.mode,
            status: Status::Open,
            min_bid: new.terms.min_bid,
            increment: new.terms.increment,
            anti_snipe_s: new.anti_snipe_s,
            extend_s: new.extend_s,
            ends_at: Ts(ctx.now.0 + Duration::seconds(new.duration_s)),
            created_at: ctx.now,
            created_by: new.created_by,
            seq: 1,
            bid_count: 0,
            high_bid: None,
            leader_member_id: None,
            winner_member_id: None,
            price: None,
            settlement_entry_id: None,
            cancel_reason: None,
            icon_key: None,
        };
        tx.sql(
            "INSERT INTO lots (id, guild_id, pool_id, item_name, game_item_id, mode, status, min_bid, increment, \
             anti_snipe_s, extend_s, ends_at, created_at, created_by, seq, bid_count) \
             VALUES ($1, $2, $3, $4, $5, $6, 'open', $7, $8, $9, $10, $11, $12, $13, 1, 0)",
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
        .execute()
        .await?;
        let data = json!({"lot": lot.to_json(urls)});
        let pending = vec![
            Pending::at(lot_channel(lot.id), 1, "lot_opened", data.clone()),
            Pending::next(guild_channel(&new.guild_slug), "lot_opened", data),
        ];
        let events = append(&mut tx, pending, ctx).await?;
        audit(&mut tx, AuditWrite::new(ctx, Some(lot.guild_id), "lot.open", "lot", lot.id).after(lot.to_json(urls)))
            .await?;
        super::jobs::enqueue(&mut tx, &close_job(&lot), ctx).await?;
        tx.commit().await?;
        Ok((lot, events))
    })
    .await
}

/// The job that closes a lot when it is due (run again later if a bid extended it).
pub fn close_job(lot: &LotView) -> super::NewJob {
    super::NewJob {
        kind: CLOSE_LOT,
        dedup_key: Some(format!("{CLOSE_LOT}:{}", lot.id)),
        guild_id: Some(lot.guild_id),
        payload: json!({"lot_id": lot.id}),
        run_at: lot.ends_at,
    }
}

/// The kind of a lot's closing job.
pub const CLOSE_LOT: &str = "close_lot";

/// A lot read inside a transaction, such as one that changes it.
pub(super) async fn lot_in(tx: &mut Tx, guild_id: Uuid, lot_id: Uuid) -> Result<Option<LotView>, StoreError> {
    const SQL: &str = lot_sql!(" FROM lots l WHERE l.guild_id = $1 AND l.id = $2");
    tx.sql(SQL).bind(guild_id).bind(lot_id).fetch_optional().await?.as_ref().map(lot_of).transpose()
}

pub async fn lot(db: &Db, guild_id: Uuid, lot_id: Uuid) -> Result<Option<LotView>, StoreError> {
    db.sql(lot_sql!(" FROM lots l WHERE l.guild_id = $1 AND l.id = $2"))
        .bind(guild_id)
        .bind(lot_id)
        .fetch_optional()
        .await?
        .as_ref()
        .map(lot_of)
        .transpose()
}

pub async fn lots(
    db: &Db,
    guild_id: Uuid,
    status: Option<Status>,
    page: PageRequest,
) -> Result<Page<LotView>, StoreError> {
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
struct Locked {
    view: LotView,
    lot: Lot<Uuid>,
    accounts: HashMap<Uuid, Uuid>,
    allow_negative: bool,
    slug: String,
}

async fn lock_lot(tx: &mut Tx, guild_id: Uuid, lot_id: Uuid) -> Result<Locked, StoreError> {
    // The lot with its pool's rule and its guild's slug, in one read.
    const SELECT: &str = lot_sql!(
        ", p.allow_negative, g.slug FROM lots l JOIN pools p ON p.id = l.pool_id JOIN guilds g ON g.id = l.guild_id \
         WHERE l.guild_id = $1 AND l.id = $2"
    );
    const LOCK: &str = lot_sql!(
        ", p.allow_negative, g.slug FROM lots l JOIN pools p ON p.id = l.pool_id JOIN guilds g ON g.id = l.guild_id \
         WHERE l.guild_id = $1 AND l.id = $2 FOR UPDATE OF l"
    );
    let sql = if tx.backend() == Backend::Postgres { LOCK } else { SELECT };
    let row = tx.sql(sql).bind(guild_id).bind(lot_id).fetch_optional().await?.ok_or(StoreError::NotFound)?;
    let view = lot_of(&row)?;
    let rows = tx
        .sql("SELECT a.member_id, h.account_id, h.amount, h.seq FROM holds h JOIN accounts a ON a.id = h.account_id WHERE h.lot_id = $1")
        .bind(lot_id)
        .fetch_all()
        .await?;
    let mut standing = Vec::with_capacity(rows.len());
    let mut accounts = HashMap::new();
    for row in &rows {
        let member: Uuid = row.get("member_id")?;
        accounts.insert(member, row.get("account_id")?);
        standing.push(Standing { member, amount: Points::from_stored(row.get("amount")?), seq: row.get("seq")? });
    }
    let terms = Terms {
        mode: view.mode,
        min_bid: view.min_bid,
        increment: view.increment,
        anti_snipe_us: i64::from(view.anti_snipe_s) * 1_000_000,
        extend_us: i64::from(view.extend_s) * 1_000_000,
    };
    let lot = Lot {
        terms,
        status: view.status,
        ends_at: micros(view.ends_at),
        seq: view.seq,
        bid_count: view.bid_count,
        standing,
    };
    Ok(Locked { view, lot, accounts, allow_negative: row.get("allow_negative")?, slug: row.get("slug")? })
}

/// One try at applying a batch of bids; `retry` runs it again on a
/// serialization failure. Each bid is decided in memory, in order, by
/// `dkp-core`; the batch is then written with a fixed number of set-based
/// statements, whatever its size.
pub async fn place_bids(
    store: &SqlStore,
    guild_id: Uuid,
    pool_id: Uuid,
    lot_id: Uuid,
    bids: &[BidCommand],
    ctx: &Ctx,
) -> Result<BidBatch, StoreError> {
    let (db, urls) = (&store.db, &store.urls);
    let mut tx = db.begin_write_in_lane(pool_id).await?;
    let Locked { mut view, mut lot, mut accounts, .. } = lock_lot(&mut tx, guild_id, lot_id).await?;
    let now = micros(ctx.now);
    let bidders: BTreeSet<Uuid> = bids.iter().map(|b| b.member_id).collect();
    let mut wallets = HashMap::with_capacity(bidders.len());
    for (member, (account, wallet)) in lock_wallets(&mut tx, pool_id, &bidders).await? {
        accounts.insert(member, account);
        wallets.insert(member, wallet);
    }
    let mut outcomes = Vec::with_capacity(bids.len());
    let mut placed: Vec<(Uuid, BidView)> = Vec::new();
    let mut pending = Vec::new();
    // Each member's hold on the lot after the batch: `None` for ended.
    let mut holds: HashMap<Uuid, Option<(Points, i64)>> = HashMap::new();
    let mut answers = Vec::new();
    // Keys met earlier in this batch: a repeat of the same request gets the
    // same answer, another request under the same key is refused.
    let mut keys: HashMap<(Uuid, &str), (&[u8], usize)> = HashMap::new();
    let mut repeats: Vec<(usize, usize)> = Vec::new();
    for bid in bids {
        if let Some(claim) = &bid.idempotency {
            if let Some((fingerprint, first)) = keys.get(&(claim.user_id, claim.key.as_str())) {
                // The same request again gets the first one's answer (filled in
                // below); another request under the key stays refused.
                if *fingerprint == claim.fingerprint.as_slice() {
                    repeats.push((outcomes.len(), *first));
                }
                outcomes.push(BidOutcome::KeyReused);
                continue;
            }
            keys.insert((claim.user_id, claim.key.as_str()), (claim.fingerprint.as_slice(), outcomes.len()));
            match super::ledger::replay(&mut tx, claim).await {
                Ok(Some(Recorded::Replay { status, body })) => {
                    outcomes.push(BidOutcome::Replay { status, body });
                    continue;
                }
                Ok(_) => {}
                Err(StoreError::IdempotencyKeyReused) => {
                    outcomes.push(BidOutcome::KeyReused);
                    continue;
                }
                Err(other) => return Err(other),
            }
        }
        let wallet = wallets.get(&bid.member_id).copied().ok_or(StoreError::UnknownReference("member_id"))?;
        let available = wallet.available().map_err(|_| corrupt("available overflows"))?;
        let own_before = lot.standing.iter().find(|s| s.member == bid.member_id).map_or(Points::ZERO, |s| s.amount);
        let previous_leader = lot.leader().map(|s| (s.member, s.amount));
        let accepted = match lot.bid(bid.member_id, bid.amount, now, available) {
            Ok(accepted) => accepted,
            Err(error) => {
                if let Some(claim) = &bid.idempotency {
                    // A refusal is an answer too: a repeat gets the same one.
                    let (status, body) = (bid.refusal)(&error);
                    super::ledger::remember(&mut tx, claim, status, &body, ctx).await?;
                }
                outcomes.push(BidOutcome::Rejected(error));
                continue;
            }
        };
        if let Some(released) = accepted.released {
            let amount = previous_leader.filter(|(m, _)| *m == released).map_or(Points::ZERO, |(_, a)| a);
            if let Some(w) = wallets.get_mut(&released) {
                w.held = w.held.checked_sub(amount).map_err(|_| corrupt("held"))?;
            }
            holds.insert(released, None);
        }
        if let Some(w) = wallets.get_mut(&bid.member_id) {
            w.held =
                w.held.checked_sub(own_before).and_then(|h| h.checked_add(bid.amount)).map_err(|_| corrupt("held"))?;
        }
        holds.insert(bid.member_id, Some((bid.amount, accepted.seq)));
        let bid_view = BidView { id: Uuid::now_v7(), seq: accepted.seq, amount: bid.amount, created_at: ctx.now };
        let ends_at = from_micros(lot.ends_at)?;
        let data = if view.mode.is_sealed() {
            json!({"lot_id": lot_id, "seq": accepted.seq, "bid_count": lot.bid_count, "ends_at": ends_at})
        } else {
            json!({"lot_id": lot_id, "seq": accepted.seq, "bid_count": lot.bid_count, "ends_at": ends_at,
                   "amount": bid.amount.to_string(), "member_id": bid.member_id, "bid_id": bid_view.id})
        };
        pending.push(Pending::at(lot_channel(lot_id), accepted.seq, "bid_placed", data));
        if accepted.extended_to.is_some() {
            let data = json!({"lot_id": lot_id, "seq": accepted.seq + 1, "ends_at": ends_at});
            pending.push(Pending::at(lot_channel(lot_id), accepted.seq + 1, "lot_extended", data));
        }
        placed.push((bid.member_id, bid_view.clone()));
        answers.push((outcomes.len(), bid.idempotency.clone()));
        outcomes.push(BidOutcome::Accepted(bid_view));
    }
    let mut events = Vec::new();
    if !placed.is_empty() {
        insert_bids(&mut tx, lot_id, &placed).await?;
        write_holds(&mut tx, lot_id, &holds, &accounts).await?;
        let leader = lot.leader().map(|s| (s.member, s.amount));
        view.seq = lot.seq;
        view.bid_count = lot.bid_count;
        view.ends_at = from_micros(lot.ends_at)?;
        view.high_bid = leader.map(|(_, amount)| amount);
        view.leader_member_id = leader.map(|(member, _)| member);
        tx.sql("UPDATE lots SET seq = $1, bid_count = $2, ends_at = $3, high_bid = $4, leader_member_id = $5 WHERE id = $6")
            .bind(view.seq)
            .bind(view.bid_count)
            .bind(view.ends_at)
            .bind(view.high_bid.map(Points::hundredths))
            .bind(view.leader_member_id)
            .bind(lot_id)
            .execute()
            .await?;
        let mut touched: Vec<Uuid> = holds.keys().copied().collect();
        touched.sort_unstable();
        pending.extend(balance_changes(&mut tx, guild_id, pool_id, &touched).await?);
        events = append(&mut tx, pending, ctx).await?;
        for (index, claim) in answers {
            if let (Some(claim), BidOutcome::Accepted(bid)) = (claim, &outcomes[index]) {
                super::ledger::remember(&mut tx, &claim, 201, &bid_response(bid, &view, urls), ctx).await?;
            }
        }
    }
    for (repeat, first) in repeats {
        outcomes[repeat] = match &outcomes[first] {
            BidOutcome::Accepted(bid) => BidOutcome::Replay { status: 201, body: bid_response(bid, &view, urls) },
            BidOutcome::Rejected(error) => BidOutcome::Rejected(error.clone()),
            BidOutcome::Replay { status, body } => BidOutcome::Replay { status: *status, body: body.clone() },
            BidOutcome::KeyReused => BidOutcome::KeyReused,
        };
    }
    tx.commit().await?;
    Ok(BidBatch { outcomes, lot: view, events })
}

/// Inserts the accepted bids of a batch in one statement.
async fn insert_bids(tx: &mut Tx, lot_id: Uuid, placed: &[(Uuid, BidView)]) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO bids (id, lot_id, member_id, amount, seq, created_at) VALUES {}",
        value_rows(1, placed.len(), 6)
    );
    let mut statement = tx.sql_built(sql);
    for (member, bid) in placed {
        statement = statement
            .bind(bid.id)
            .bind(lot_id)
            .bind(*member)
            .bind(bid.amount.hundredths())
            .bind(bid.seq)
            .bind(bid.created_at);
    }
    statement.execute().await?;
    Ok(())
}

/// Replaces the lot's holds of every member whose hold the batch changed:
/// one delete and one multi-row insert.
async fn write_holds(
    tx: &mut Tx,
    lot_id: Uuid,
    holds: &HashMap<Uuid, Option<(Points, i64)>>,
    accounts: &HashMap<Uuid, Uuid>,
) -> Result<(), StoreError> {
    let account = |member: &Uuid| accounts.get(member).copied().ok_or_else(|| corrupt("a bidder without an account"));
    let changed: Vec<Uuid> = holds.keys().map(account).collect::<Result<_, _>>()?;
    let sql = format!("DELETE FROM holds WHERE lot_id = $1 AND account_id IN ({})", placeholders(2, changed.len()));
    let mut statement = tx.sql_built(sql).bind(lot_id);
    for account in &changed {
        statement = statement.bind(*account);
    }
    statement.execute().await?;
    let kept: Vec<(Uuid, Points, i64)> =
        holds.iter().filter_map(|(member, hold)| hold.map(|(amount, seq)| (*member, amount, seq))).collect();
    if kept.is_empty() {
        return Ok(());
    }
    let sql = format!("INSERT INTO holds (lot_id, account_id, amount, seq) VALUES {}", value_rows(1, kept.len(), 4));
    let mut statement = tx.sql_built(sql);
    for (member, amount, seq) in &kept {
        statement = statement.bind(lot_id).bind(account(member)?).bind(amount.hundredths()).bind(*seq);
    }
    statement.execute().await?;
    Ok(())
}

/// How a lot ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The closing job: only once `ends_at` has passed.
    Due,
    /// An officer closes it now.
    Now,
    Cancel,
}

/// Ends an open lot: settles it (charging the winner through one ledger
/// entry) or cancels it, releases every hold, and reports it.
pub async fn end_lot(
    store: &SqlStore,
    guild_id: Uuid,
    pool_id: Uuid,
    lot_id: Uuid,
    ending: Ending,
    reason: &str,
    ctx: &Ctx,
) -> Result<(LotView, Vec<Event>), StoreError> {
    let (db, urls) = (&store.db, &store.urls);
    super::retry::retry("end_lot", || async {
        let mut tx = db.begin_write_in_lane(pool_id).await?;
        let Locked { mut view, lot, allow_negative, slug, .. } = lock_lot(&mut tx, guild_id, lot_id).await?;
        if view.status != Status::Open {
            return Err(StoreError::Conflict("lot_closed"));
        }
        if ending == Ending::Due && micros(ctx.now) < lot.ends_at {
            return Err(StoreError::Conflict("lot_not_due"));
        }
        tx.sql("DELETE FROM holds WHERE lot_id = $1").bind(lot_id).execute().await?;
        let mut touched: BTreeSet<Uuid> = lot.standing.iter().map(|s| s.member).collect();
        view.seq = lot.seq + 1;
        let (name, action) = if ending == Ending::Cancel {
            view.status = Status::Cancelled;
            view.cancel_reason = Some(reason.to_owned());
            ("lot_cancelled", "lot.cancel")
        } else {
            view.status = Status::Closed;
            if let Some((winner, price)) = lot.outcome().filter(|(_, price)| price.is_positive()) {
                let draft = Draft {
                    guild_id,
                    pool_id,
                    kind: "settlement",
                    reason: format!("won {}", view.item_name),
                    created_by: view.created_by,
                    reverses: None,
                    postings: ledger::loot(winner, price)?,
                    allow_negative,
                };
                let entry = post(&mut tx, draft, ctx).await?;
                view.winner_member_id = Some(winner);
                view.price = Some(price);
                view.settlement_entry_id = Some(entry.id);
                touched.insert(winner);
            }
            ("lot_closed", "lot.close")
        };
        tx.sql(
            "UPDATE lots SET status = $1, seq = $2, winner_member_id = $3, price = $4, settlement_entry_id = $5, \
             closed_at = $6, cancel_reason = $7 WHERE id = $8 AND status = 'open'",
        )
        .bind(view.status.as_str())
        .bind(view.seq)
        .bind(view.winner_member_id)
        .bind(view.price.map(Points::hundredths))
        .bind(view.settlement_entry_id)
        .bind(ctx.now)
        .bind(view.cancel_reason.clone())
        .bind(lot_id)
        .execute()
        .await?;
        let data = json!({"lot": view.to_json(urls)});
        let touched: Vec<Uuid> = touched.into_iter().collect();
        let mut pending = vec![
            Pending::at(lot_channel(lot_id), view.seq, name, data.clone()),
            Pending::next(guild_channel(&slug), name, data),
        ];
        pending.extend(balance_changes(&mut tx, guild_id, pool_id, &touched).await?);
        let events = append(&mut tx, pending, ctx).await?;
        audit(&mut tx, AuditWrite::new(ctx, Some(guild_id), action, "lot", lot_id).after(view.to_json(urls))).await?;
        tx.commit().await?;
        Ok((view, events))
    })
    .await
}
