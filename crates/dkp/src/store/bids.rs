//! A batch of bids on one lot, applied in one transaction (seed risk R3):
//! the pool's lane, then the lot row, then the bidders' accounts in account
//! order. Keys seen before get their kept answers; the rest are decided in
//! memory, in order, by `dkp-core` (`Lot::decide`), and the batch is written
//! with a fixed number of set-based statements whatever its size. Repeats of
//! a key within the batch never reach here (the sequencer answers them).

use std::collections::{BTreeSet, HashMap};

use dkp_core::Points;
use dkp_core::auction::Decision;
use uuid::Uuid;

use super::events::{Pending, append, balance_changes};
use super::idempotency::{remember, replay};
use super::ledger::lock_wallets;
use super::lots::{Locked, corrupt, from_micros, lock_lot};
use super::retry::retry;
use super::sql::{Db, Tx, placeholders, value_rows};
use super::{Ctx, Store, StoreError};
use crate::model::{
    Answer, BidBatch, BidCommand, BidOutcome, BidView, Event, EventName, LotView, Refusal, lot_channel,
};

impl Store {
    /// Applies a batch of queued bids of one lot in one transaction.
    pub async fn place_bids(
        &self,
        guild_id: Uuid,
        pool_id: Uuid,
        lot_id: Uuid,
        bids: &[BidCommand],
        ctx: &Ctx,
    ) -> Result<BidBatch, StoreError> {
        let _turn = self.gate.enter(pool_id).await;
        retry("bid", || place_bids(&self.db, guild_id, pool_id, lot_id, bids, ctx)).await
    }
}

/// One try at applying a batch; `retry` runs it again on a serialization failure.
async fn place_bids(
    db: &Db,
    guild_id: Uuid,
    pool_id: Uuid,
    lot_id: Uuid,
    bids: &[BidCommand],
    ctx: &Ctx,
) -> Result<BidBatch, StoreError> {
    let mut tx = db.begin_write_in_lane(pool_id).await?;
    let Locked { mut view, mut lot, mut accounts, .. } = lock_lot(&mut tx, guild_id, lot_id).await?;
    let mut outcomes = kept_answers(&mut tx, bids).await?;
    let fresh: Vec<usize> = (0..bids.len()).filter(|&i| outcomes[i].is_none()).collect();
    let bidders: BTreeSet<Uuid> = fresh.iter().map(|&i| bids[i].member_id).collect();
    let mut wallets = Vec::with_capacity(bidders.len());
    for (member, (account, wallet)) in lock_wallets(&mut tx, pool_id, &bidders).await? {
        accounts.insert(member, account);
        wallets.push((member, wallet));
    }
    let asked: Vec<(Uuid, Points)> = fresh.iter().map(|&i| (bids[i].member_id, bids[i].amount)).collect();
    let batch = lot.decide(&mut wallets, &asked, ctx.now.micros());
    let (mut pending, placed) = record(&mut tx, &view, bids, &fresh, batch.decisions, &mut outcomes, ctx).await?;
    let mut events = Vec::new();
    if !placed.is_empty() {
        insert_bids(&mut tx, lot_id, &placed).await?;
        write_holds(&mut tx, lot_id, &batch.holds, &accounts).await?;
        update_lot(&mut tx, &mut view, &lot).await?;
        let mut touched: Vec<Uuid> = batch.holds.iter().map(|(member, _)| *member).collect();
        touched.sort_unstable();
        pending.extend(balance_changes(&mut tx, guild_id, pool_id, &touched).await?);
        events = append(&mut tx, pending, ctx).await?;
        for (bid, outcome) in bids.iter().zip(&outcomes) {
            if let (Some(claim), Some(BidOutcome::Accepted(accepted))) = (&bid.idempotency, outcome) {
                let answer = Answer::Bid { bid: accepted.clone(), lot: view.clone() };
                remember(&mut tx, claim, &answer, ctx).await?;
            }
        }
    }
    tx.commit().await?;
    let outcomes = outcomes.into_iter().map(|o| o.unwrap_or(BidOutcome::KeyReused)).collect();
    Ok(BidBatch { outcomes, lot: view, events })
}

/// Turns each decided bid into its outcome: an accepted bid into its view and
/// events, a refusal under a key into the answer kept for it. The events and
/// the accepted bids, with their bidders.
async fn record(
    tx: &mut Tx,
    view: &LotView,
    bids: &[BidCommand],
    fresh: &[usize],
    decisions: Vec<Decision<Uuid>>,
    outcomes: &mut [Option<BidOutcome>],
    ctx: &Ctx,
) -> Result<(Vec<Pending>, Vec<(Uuid, BidView)>), StoreError> {
    let (mut pending, mut placed) = (Vec::new(), Vec::new());
    // The lot's count and end as each accepted bid left them, for its events.
    let (mut bid_count, mut ends_at) = (view.bid_count, view.ends_at);
    for (&index, decision) in fresh.iter().zip(decisions) {
        let bid = &bids[index];
        outcomes[index] = Some(match decision {
            Ok(accepted) => {
                bid_count += 1;
                if let Some(until) = accepted.extended_to {
                    ends_at = from_micros(until)?;
                }
                let shown = BidView { id: Uuid::now_v7(), seq: accepted.seq, amount: bid.amount, created_at: ctx.now };
                let open = (!view.mode.is_sealed()).then_some((bid.amount, bid.member_id, shown.id));
                let extended = accepted.extended_to.is_some();
                pending.extend(bid_events(view.id, &shown, open, bid_count, ends_at, extended));
                placed.push((bid.member_id, shown.clone()));
                BidOutcome::Accepted(shown)
            }
            Err(error) => {
                if let Some(claim) = &bid.idempotency {
                    // A refusal is an answer too: a repeat gets the same one.
                    remember(tx, claim, &Answer::Refused(Refusal::from(&error)), ctx).await?;
                }
                BidOutcome::Rejected(error)
            }
        });
    }
    Ok((pending, placed))
}

/// The events of one accepted bid: the bid (its amount, bidder and id only
/// on an open lot), and the extension it caused.
fn bid_events(
    lot_id: Uuid,
    bid: &BidView,
    open: Option<(Points, Uuid, Uuid)>,
    bid_count: i64,
    ends_at: crate::model::Ts,
    extended: bool,
) -> Vec<Pending> {
    let data = Event::bid_data(lot_id, bid.seq, bid_count, ends_at, open);
    let mut events = vec![Pending::at(lot_channel(lot_id), bid.seq, EventName::BidPlaced, data)];
    if extended {
        let data = Event::extension_data(lot_id, bid.seq + 1, ends_at);
        events.push(Pending::at(lot_channel(lot_id), bid.seq + 1, EventName::LotExtended, data));
    }
    events
}

/// The answers kept for the bids seen before (a bid seen before is not
/// decided again); `None` for the others.
async fn kept_answers(tx: &mut Tx, bids: &[BidCommand]) -> Result<Vec<Option<BidOutcome>>, StoreError> {
    let mut outcomes = Vec::with_capacity(bids.len());
    for bid in bids {
        outcomes.push(match &bid.idempotency {
            Some(claim) => match replay(tx, claim).await {
                Ok(answer) => answer.map(BidOutcome::Replay),
                Err(StoreError::IdempotencyKeyReused) => Some(BidOutcome::KeyReused),
                Err(other) => return Err(other),
            },
            None => None,
        });
    }
    Ok(outcomes)
}

/// Writes the lot's new standing after a batch, into `view` and its row.
async fn update_lot(tx: &mut Tx, view: &mut LotView, lot: &dkp_core::auction::Lot<Uuid>) -> Result<(), StoreError> {
    let leader = lot.leader().map(|s| (s.member, s.amount));
    view.seq = lot.seq;
    view.bid_count = lot.bid_count;
    view.ends_at = from_micros(lot.ends_at)?;
    view.high_bid = leader.map(|(_, amount)| amount);
    view.leader_member_id = leader.map(|(member, _)| member);
    tx.sql(
        "UPDATE lots SET seq = $1, bid_count = $2, ends_at = $3, high_bid = $4, leader_member_id = $5 WHERE id = $6",
    )
    .bind(view.seq)
    .bind(view.bid_count)
    .bind(view.ends_at)
    .bind(view.high_bid.map(Points::hundredths))
    .bind(view.leader_member_id)
    .bind(view.id)
    .execute()
    .await?;
    Ok(())
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
    holds: &[(Uuid, Option<(Points, i64)>)],
    accounts: &HashMap<Uuid, Uuid>,
) -> Result<(), StoreError> {
    let account = |member: &Uuid| accounts.get(member).copied().ok_or_else(|| corrupt("a bidder without an account"));
    let changed: Vec<Uuid> = holds.iter().map(|(member, _)| account(member)).collect::<Result<_, _>>()?;
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
