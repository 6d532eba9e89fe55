//! The bids of many lots at once, in one transaction (seed risk R3): a raid
//! night's busy lots share one durable commit instead of paying one each.
//! The pools' lanes, then the lots (in id order), then the bidders' accounts
//! (pool by pool, in account order); keys seen before get their kept
//! answers; the rest are decided in memory, lot by lot, by `dkp-core`
//! (`Lot::decide`) against wallets shared by the lots of a pool, so the same
//! points never back two bids; the whole batch is then written with a fixed
//! number of set-based statements (one lot row each). Repeats of a key
//! within the batch never reach here (the writer answers them).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use dkp_core::Points;
use dkp_core::auction::Decision;
use dkp_core::ledger::Wallet;
use uuid::Uuid;

use super::events::{Pending, add_event_writes, number};
use super::gate::bids_unlocked;
use super::idempotency::{add_kept, kept_or_fault, replay_all};
use super::ledger::lock_wallets_in;
use super::lots::{Locked, corrupt, from_micros, lock_lots};
use super::retry::retry;
use super::sql::{Rows, Tx, Writes};
use super::{Ctx, Store, StoreError};
use crate::model::{
    Answer, BidBatch, BidCommand, BidOutcome, BidView, Event, EventName, IdempotencyClaim, LotView, Refusal,
    balance_changed, lot_channel, user_channel,
};

/// What a batch came to: each lot's outcome, in the order given (`None` for
/// a lot its guild does not have), and the events its commit wrote.
pub struct PlacedBids {
    pub lots: Vec<Option<BidBatch>>,
    pub events: Vec<Event>,
}

/// The bids of one lot in a batch, in the order to decide them.
pub struct LotBids {
    pub guild_id: Uuid,
    pub pool_id: Uuid,
    pub lot_id: Uuid,
    pub bids: Vec<BidCommand>,
}

impl Store {
    /// Applies the queued bids of many lots in one transaction.
    pub async fn place_bids(&self, lots: &[LotBids], ctx: &Ctx) -> Result<PlacedBids, StoreError> {
        let _turn = self.gate.enter().await?;
        retry("bid", || async {
            let mut tx =
                if bids_unlocked() { self.db.begin_locking().await? } else { self.db.begin_write_in_lane().await? };
            let named: Vec<(Uuid, Uuid)> = lots.iter().map(|l| (l.guild_id, l.lot_id)).collect();
            let mut locked = lock_lots(&mut tx, &named).await?;
            let mut outcomes = kept_answers(&mut tx, lots).await?;
            let (mut wallets, owners) = lock_bidders(&mut tx, lots, &outcomes, &mut locked).await?;
            let read = wallets.clone();
            let (mut pending, mut placed, mut holds, mut kept) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            for (part, outcomes) in lots.iter().zip(outcomes.iter_mut()) {
                let Some(lot) = locked.get_mut(&part.lot_id) else { continue };
                // A bidder with no account in the pool has no wallet: refused as having no points.
                let wallets = wallets.entry(part.pool_id).or_default();
                let fresh: Vec<usize> = (0..part.bids.len()).filter(|&i| outcomes[i].is_none()).collect();
                let asked: Vec<(Uuid, Points)> =
                    fresh.iter().map(|&i| (part.bids[i].member_id, part.bids[i].amount)).collect();
                let batch = lot.lot.decide(wallets, &asked, ctx.now.micros());
                let (events, accepted) =
                    record(&lot.view, &part.bids, &fresh, batch.decisions, outcomes, &mut kept, ctx)?;
                pending.extend(events);
                placed.extend(accepted.into_iter().map(|(member, bid)| (part.lot_id, member, bid)));
                holds.extend(batch.holds.into_iter().map(|(member, hold)| (part.lot_id, member, hold)));
            }
            if bids_unlocked() {
                // The broken path's race, held open long enough to be met every few seconds.
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            let (mut events, mut writes) = (Vec::new(), Writes::default());
            if !placed.is_empty() {
                pending.extend(wallet_events(lots, &holds, (&read, &wallets), &owners)?);
                events = number(&mut tx, pending).await?;
                writes.add(INSERT_BIDS, bid_rows(&placed));
                writes.add(UPSERT_HOLDS, hold_rows(&holds, &locked)?);
                writes.add(UPDATE_LOTS, moved_lots(&mut locked)?);
                add_event_writes(&mut writes, &events, ctx);
                kept.extend(accepted_answers(lots, &outcomes, &locked));
            }
            add_kept(&mut writes, kept.iter().map(|(claim, answer)| (*claim, answer)), ctx);
            writes.run(&mut tx).await.map_err(kept_or_fault)?;
            tx.commit().await?;
            Ok(PlacedBids { lots: results(lots, outcomes, &locked), events })
        })
        .await
    }
}

/// The wallets of the bidders of a batch, by pool: each the member, and
/// their wallet as the batch has left it so far.
type Wallets = BTreeMap<Uuid, Vec<(Uuid, Wallet)>>;

/// The guild and the user of each bidder, by `(pool, member)`: where their
/// wallet's events go.
type Owners = HashMap<(Uuid, Uuid), (Uuid, Uuid)>;

/// Locks the wallets of every bidder of the batch still to decide, in one
/// statement, and notes each bidder's account on their lots.
async fn lock_bidders(
    tx: &mut Tx,
    lots: &[LotBids],
    outcomes: &[Vec<Option<BidOutcome>>],
    locked: &mut HashMap<Uuid, Locked>,
) -> Result<(Wallets, Owners), StoreError> {
    let mut bidders: BTreeSet<(Uuid, Uuid)> = BTreeSet::new();
    for (part, outcomes) in lots.iter().zip(outcomes) {
        let fresh = part.bids.iter().zip(outcomes).filter(|(_, o)| o.is_none()).map(|(b, _)| b.member_id);
        bidders.extend(fresh.map(|member| (part.pool_id, member)));
    }
    // The lots' standing bidders too: an outbid one's wallet moves with the
    // batch, and its event is written from it.
    for part in lots {
        if let Some(lot) = locked.get(&part.lot_id) {
            bidders.extend(lot.lot.standing.iter().map(|s| (part.pool_id, s.member)));
        }
    }
    let wanted: Vec<(Uuid, Uuid)> = bidders.into_iter().collect();
    let (mut wallets, mut owners) = (Wallets::new(), Owners::new());
    let mut accounts = HashMap::new();
    for ((pool_id, member), found) in lock_wallets_in(tx, &wanted).await? {
        accounts.insert((pool_id, member), found.account);
        if let Some(user_id) = found.user_id {
            owners.insert((pool_id, member), (found.guild_id, user_id));
        }
        wallets.entry(pool_id).or_default().push((member, found.wallet));
    }
    for part in lots {
        let Some(lot) = locked.get_mut(&part.lot_id) else { continue };
        for bid in &part.bids {
            if let Some(account) = accounts.get(&(part.pool_id, bid.member_id)) {
                lot.accounts.insert(bid.member_id, *account);
            }
        }
    }
    Ok((wallets, owners))
}

/// The `balance_changed` events of every member whose wallet the batch
/// changed, from their wallets as the batch left them (what the database
/// will hold). Every member whose holds moved is a bidder or a standing
/// bidder, whose wallet the batch locked; one whose bid was accepted and
/// then outbid within the batch ends where it began, and hears nothing.
fn wallet_events(
    lots: &[LotBids],
    holds: &[(Uuid, Uuid, Option<(Points, i64)>)],
    (read, left): (&Wallets, &Wallets),
    owners: &Owners,
) -> Result<Vec<Pending>, StoreError> {
    let pool_of: HashMap<Uuid, Uuid> = lots.iter().map(|l| (l.lot_id, l.pool_id)).collect();
    let touched: BTreeSet<(Uuid, Uuid)> =
        holds.iter().filter_map(|(lot_id, member, _)| Some((*pool_of.get(lot_id)?, *member))).collect();
    let wallet = |wallets: &Wallets, pool_id: Uuid, member: Uuid| {
        wallets.get(&pool_id).and_then(|w| w.iter().find(|(m, _)| *m == member)).map(|(_, w)| *w)
    };
    let mut pending = Vec::with_capacity(touched.len());
    for (pool_id, member) in touched {
        let before = wallet(read, pool_id, member);
        let after =
            wallet(left, pool_id, member).ok_or_else(|| corrupt("a hold moved on a wallet the batch did not lock"))?;
        // A member without an account has no channel of their own to hear it on.
        let Some(&(guild_id, user_id)) = owners.get(&(pool_id, member)) else { continue };
        if before == Some(after) {
            continue;
        }
        let data = balance_changed(guild_id, pool_id, member, after.balance, after.held)
            .ok_or_else(|| corrupt("available overflows"))?;
        pending.push(Pending::next(user_channel(user_id), EventName::BalanceChanged, data));
    }
    Ok(pending)
}

/// The answer to keep under the key of every accepted bid, with its lot as the batch left it.
fn accepted_answers<'a>(
    lots: &'a [LotBids],
    outcomes: &[Vec<Option<BidOutcome>>],
    locked: &HashMap<Uuid, Locked>,
) -> Vec<(&'a IdempotencyClaim, Answer)> {
    let mut kept = Vec::new();
    for (part, outcomes) in lots.iter().zip(outcomes) {
        let Some(lot) = locked.get(&part.lot_id) else { continue };
        for (bid, outcome) in part.bids.iter().zip(outcomes) {
            if let (Some(claim), Some(BidOutcome::Accepted(accepted))) = (&bid.idempotency, outcome) {
                kept.push((claim, Answer::Bid { bid: accepted.clone(), lot: lot.view.clone() }));
            }
        }
    }
    kept
}

/// Each lot's outcome, in the order given; `None` for a lot its guild does not have.
fn results(
    lots: &[LotBids],
    outcomes: Vec<Vec<Option<BidOutcome>>>,
    locked: &HashMap<Uuid, Locked>,
) -> Vec<Option<BidBatch>> {
    lots.iter()
        .zip(outcomes)
        .map(|(part, outcomes)| {
            let lot = locked.get(&part.lot_id)?;
            let outcomes = outcomes.into_iter().map(|o| o.unwrap_or(BidOutcome::KeyReused)).collect();
            Some(BidBatch { outcomes, lot: lot.view.clone() })
        })
        .collect()
}

/// Turns each decided bid into its outcome: an accepted bid into its view and
/// events, a refusal under a key into the answer to keep for it (added to
/// `kept`). The events and the accepted bids, with their bidders.
fn record<'a>(
    view: &LotView,
    bids: &'a [BidCommand],
    fresh: &[usize],
    decisions: Vec<Decision<Uuid>>,
    outcomes: &mut [Option<BidOutcome>],
    kept: &mut Vec<(&'a IdempotencyClaim, Answer)>,
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
                    kept.push((claim, Answer::Refused(Refusal::from(&error))));
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

/// The answers kept for the bids of the batch seen before (a bid seen
/// before is not decided again), read in one statement; `None` for the
/// others. By lot, as the batch has them.
async fn kept_answers(tx: &mut Tx, lots: &[LotBids]) -> Result<Vec<Vec<Option<BidOutcome>>>, StoreError> {
    let claims: Vec<&IdempotencyClaim> =
        lots.iter().flat_map(|part| part.bids.iter().filter_map(|bid| bid.idempotency.as_ref())).collect();
    let mut kept = replay_all(tx, &claims).await?.into_iter();
    let mut outcomes = Vec::with_capacity(lots.len());
    for part in lots {
        let mut answers = Vec::with_capacity(part.bids.len());
        for bid in &part.bids {
            // `kept` holds one answer for each bid with a key, in order.
            answers.push(match bid.idempotency.as_ref().and_then(|_| kept.next()) {
                Some(Ok(answer)) => answer.map(BidOutcome::Replay),
                Some(Err(StoreError::IdempotencyKeyReused)) => Some(BidOutcome::KeyReused),
                Some(Err(other)) => return Err(other),
                None => None,
            });
        }
        outcomes.push(answers);
    }
    Ok(outcomes)
}

const UPDATE_LOTS: &str = "UPDATE lots SET seq = v.column2, bid_count = v.column3, ends_at = v.column4, \
     high_bid = v.column5, leader_member_id = v.column6 FROM {rows} WHERE lots.id = v.column1";

/// Writes the new standing of every lot a batch moved on into its view, and
/// returns the rows of `UPDATE_LOTS`.
fn moved_lots(locked: &mut HashMap<Uuid, Locked>) -> Result<Rows, StoreError> {
    let mut moved = Vec::new();
    for lot in locked.values_mut().filter(|l| l.lot.seq != l.view.seq) {
        let leader = lot.lot.leader().map(|s| (s.member, s.amount));
        lot.view.seq = lot.lot.seq;
        lot.view.bid_count = lot.lot.bid_count;
        lot.view.ends_at = from_micros(lot.lot.ends_at)?;
        lot.view.high_bid = leader.map(|(_, amount)| amount);
        lot.view.leader_member_id = leader.map(|(member, _)| member);
        let view = &lot.view;
        moved.push((
            view.id,
            view.seq,
            view.bid_count,
            view.ends_at,
            view.high_bid.map(Points::hundredths),
            view.leader_member_id,
        ));
    }
    Ok(Rows::of(moved.into_iter()))
}

const INSERT_BIDS: &str = "INSERT INTO bids (id, lot_id, member_id, amount, seq, created_at) SELECT * FROM {rows}";

/// The rows of `INSERT_BIDS`: the accepted bids of a batch, of every lot.
fn bid_rows(placed: &[(Uuid, Uuid, BidView)]) -> Rows {
    Rows::of(
        placed
            .iter()
            .map(|(lot_id, member, bid)| (bid.id, *lot_id, *member, bid.amount.hundredths(), bid.seq, bid.created_at)),
    )
}

const UPSERT_HOLDS: &str = "INSERT INTO holds (lot_id, account_id, amount, seq) SELECT * FROM {rows} WHERE true \
     ON CONFLICT (lot_id, account_id) DO UPDATE SET amount = excluded.amount, seq = excluded.seq";

/// The holds the batch changed, of every lot: the rows of `UPSERT_HOLDS`.
/// A hold that ended keeps its row at zero until its lot settles (see
/// migration 0010): updated in place, not deleted and made again at the
/// bidder's next bid.
fn hold_rows(
    holds: &[(Uuid, Uuid, Option<(Points, i64)>)],
    locked: &HashMap<Uuid, Locked>,
) -> Result<Rows, StoreError> {
    let mut rows = Vec::with_capacity(holds.len());
    for (lot, member, hold) in holds {
        let account = locked
            .get(lot)
            .and_then(|l| l.accounts.get(member))
            .copied()
            .ok_or_else(|| corrupt("a bidder without an account"))?;
        let (amount, seq) = hold.map_or((0, 0), |(amount, seq)| (amount.hundredths(), seq));
        rows.push((*lot, account, amount, seq));
    }
    Ok(Rows::of(rows.into_iter()))
}
