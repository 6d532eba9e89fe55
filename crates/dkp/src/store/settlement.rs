//! Closing and cancelling a lot: guarded transitions of the locked lot row,
//! so a lot is settled exactly once however many closers race (an officer,
//! the closing job on any instance or worker). In a zero-sum pool the price
//! goes to the present attendees of the lot's raid, in the same entry.

use std::collections::BTreeSet;

use dkp_core::auction::Status;
use dkp_core::{EntryKind, Points, Posting, ledger, raid};
use uuid::Uuid;

use super::audit::{AuditWrite, audit};
use super::events::{Pending, append, balance_changes};
use super::ledger::{Draft, post};
use super::lots::{Locked, lock_lot};
use super::retry::retry;
use super::sql::Tx;
use super::{Ctx, Store, StoreError};
use crate::model::{Code, Ending, Entry, Event, EventName, LotView, guild_channel, lot_channel};

impl Store {
    /// Ends an open lot: settles it (charging the winner through one ledger
    /// entry) or cancels it, releases every hold, and reports it.
    pub async fn end_lot(
        &self,
        guild_id: Uuid,
        lot_id: Uuid,
        ending: Ending,
        reason: &str,
        ctx: &Ctx,
    ) -> Result<(LotView, Vec<Event>), StoreError> {
        let _turn = self.gate.enter().await?;
        retry("end_lot", || async {
            let mut tx = self.db.begin_write_in_lane().await?;
            let Locked { mut view, lot, allow_negative, slug, .. } = lock_lot(&mut tx, guild_id, lot_id).await?;
            let pool_id = view.pool_id;
            if view.status != Status::Open {
                return Err(StoreError::Conflict(Code::LotClosed));
            }
            if ending == Ending::Due && ctx.now.micros() < lot.ends_at {
                return Err(StoreError::Conflict(Code::LotNotDue));
            }
            tx.sql("DELETE FROM holds WHERE lot_id = $1").bind(lot_id).execute().await?;
            let mut touched: BTreeSet<Uuid> = lot.standing.iter().map(|s| s.member).collect();
            view.seq = lot.seq + 1;
            let (name, action) = if ending == Ending::Cancel {
                view.status = Status::Cancelled;
                view.cancel_reason = Some(reason.to_owned());
                (EventName::LotCancelled, "lot.cancel")
            } else {
                view.status = Status::Closed;
                if let Some((winner, price)) = lot.outcome().filter(|(_, price)| price.is_positive()) {
                    let entry = settle(&mut tx, &mut view, winner, price, allow_negative, ctx).await?;
                    touched.extend(entry.members());
                }
                (EventName::LotClosed, "lot.close")
            };
            write_end(&mut tx, &view, ctx).await?;
            let data = Event::lot_data(&view);
            let touched: Vec<Uuid> = touched.into_iter().collect();
            let mut pending = vec![
                Pending::at(lot_channel(lot_id), view.seq, name, data.clone()),
                Pending::next(guild_channel(&slug), name, data),
            ];
            pending.extend(balance_changes(&mut tx, pool_id, &touched).await?);
            let events = append(&mut tx, pending, ctx).await?;
            audit(&mut tx, AuditWrite::new(ctx, Some(guild_id), action, "lot", lot_id).after(view.without_secrets()))
                .await?;
            tx.commit().await?;
            Ok((view, events))
        })
        .await
    }
}

/// Charges the winner of a closed lot through one settlement entry.
async fn settle(
    tx: &mut Tx,
    view: &mut LotView,
    winner: Uuid,
    price: Points,
    allow_negative: bool,
    ctx: &Ctx,
) -> Result<Entry, StoreError> {
    let draft = Draft {
        guild_id: view.guild_id,
        pool_id: view.pool_id,
        kind: EntryKind::Settlement,
        reason: format!("won {}", view.item_name),
        created_by: view.created_by,
        reverses: None,
        raid_id: None,
        postings: loot(tx, view, winner, price).await?,
        allow_negative,
    };
    let entry = post(tx, draft, ctx).await?;
    view.winner_member_id = Some(winner);
    view.price = Some(price);
    view.settlement_entry_id = Some(entry.id);
    Ok(entry)
}

/// Where the price goes: in a zero-sum pool, to the present (not standby)
/// attendees of the lot's raid (`dkp_core::raid::shared_loot`); otherwise,
/// or with nobody present, to the pool's spent account.
async fn loot(tx: &mut Tx, view: &LotView, winner: Uuid, price: Points) -> Result<Vec<Posting<Uuid>>, StoreError> {
    let Some(raid_id) = view.raid_id else { return Ok(ledger::loot(winner, price)?) };
    let present: BTreeSet<Uuid> = tx
        .sql(
            "SELECT a.member_id FROM raid_attendance a JOIN raids r ON r.id = a.raid_id \
              JOIN pools p ON p.id = r.pool_id WHERE r.guild_id = $1 AND r.id = $2 AND p.zero_sum AND NOT a.standby",
        )
        .bind(view.guild_id)
        .bind(raid_id)
        .fetch_all()
        .await?
        .iter()
        .map(|row| row.get("member_id"))
        .collect::<Result<_, _>>()?;
    Ok(raid::shared_loot(winner, price, &present)?)
}

/// Writes how the lot ended, guarded: only an open lot ends.
async fn write_end(tx: &mut Tx, view: &LotView, ctx: &Ctx) -> Result<(), StoreError> {
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
    .bind(view.id)
    .execute()
    .await?;
    Ok(())
}
