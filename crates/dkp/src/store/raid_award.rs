//! A raid's award: one transaction in the write lane, like every ledger
//! write, whatever the number of attendees.
//!
//! What each attendee is due (`dkp_core::raid::dues`) is compared with what
//! the raid's entries have paid them so far, read in the same transaction,
//! and only the difference is written (`dkp_core::raid::payout`): the first
//! award as a `raid` entry, later ones as `raid_correction`, nothing when
//! nothing differs. The writers of every instance take turns in the lane,
//! so two awards of one raid (racing, under different keys) run one after
//! the other, and the second finds the first's entry and pays nothing.
//!
//! The first award that writes an entry also fixes the raid's rules (the
//! pool's at that moment), so later corrections pay for a changed record,
//! never for rules changed since.

use std::collections::BTreeMap;

use dkp_core::raid::{Attendance, Rules, dues, payout};
use dkp_core::{EntryKind, Posting};
use uuid::Uuid;

use super::idempotency::{remember, replay};
use super::ledger::{Draft, record};
use super::raids::{PAID_SQL, attendee_of, lock_raid, paid_of};
use super::retry::retry;
use super::sql::Tx;
use super::{Ctx, Store, StoreError};
use crate::model::{Answer, Entry, Raid, RaidAwardCommand, Recorded};

/// The raid's record as the award reads it: each attendee's attendance, and
/// how many bosses died.
async fn record_of(tx: &mut Tx, raid_id: Uuid) -> Result<(BTreeMap<Uuid, Attendance>, u32), StoreError> {
    let attendance = tx
        .sql("SELECT member_id, minutes, on_time, standby FROM raid_attendance WHERE raid_id = $1")
        .bind(raid_id)
        .fetch_all()
        .await?
        .iter()
        .map(|row| attendee_of(row).map(|a| (a.member_id, a.attendance())))
        .collect::<Result<_, _>>()?;
    let kills: i64 = tx
        .sql("SELECT COUNT(*) AS kills FROM raid_kills WHERE raid_id = $1")
        .bind(raid_id)
        .fetch_one()
        .await?
        .get("kills")?;
    Ok((attendance, u32::try_from(kills).map_err(|_| StoreError::Corrupt("kills".into()))?))
}

/// Keeps the rules a raid is first paid under as its own.
async fn fix_rules(tx: &mut Tx, raid_id: Uuid, rules: Rules) -> Result<(), StoreError> {
    tx.sql("UPDATE raids SET boss_kill = $1, on_time = $2, per_hour = $3, standby_percent = $4 WHERE id = $5")
        .bind(rules.boss_kill.hundredths())
        .bind(rules.on_time.hundredths())
        .bind(rules.per_hour.hundredths())
        .bind(rules.standby_percent.hundredths())
        .bind(raid_id)
        .execute()
        .await?;
    Ok(())
}

/// What an award of a raid would write now.
struct Owed {
    raid: Raid,
    /// Whether the raid's rules are fixed: an earlier award wrote an entry.
    fixed: bool,
    allow_negative: bool,
    /// Each member's difference between due and paid, against `issued`.
    postings: Vec<Posting<Uuid>>,
}

/// Locks the raid and works out what it owes: its dues under its rules less
/// what its entries have paid, read in the award's own transaction.
async fn owed(tx: &mut Tx, guild_id: Uuid, raid_id: Uuid) -> Result<Owed, StoreError> {
    let raid = lock_raid(tx, guild_id, raid_id).await?;
    let state = tx
        .sql(
            "SELECT r.boss_kill IS NOT NULL AS fixed, p.allow_negative FROM raids r \
              JOIN pools p ON p.id = r.pool_id WHERE r.id = $1",
        )
        .bind(raid.id)
        .fetch_one()
        .await?;
    let (attendance, kills) = record_of(tx, raid.id).await?;
    let paid = paid_of(&tx.sql(PAID_SQL).bind(guild_id).bind(raid.id).fetch_all().await?)?;
    let due = dues(&raid.rules, &attendance, kills).map_err(dkp_core::LedgerError::from)?;
    let postings = payout(&due, &paid)?;
    Ok(Owed { fixed: state.get("fixed")?, allow_negative: state.get("allow_negative")?, postings, raid })
}

impl Store {
    /// Awards a raid: writes what its attendees are due and not yet paid (or
    /// take back what they were paid and are no longer due) as one entry,
    /// `None` when nothing differs; or replays the answer kept under its key.
    pub async fn award_raid(
        &self,
        command: &RaidAwardCommand,
        ctx: &Ctx,
    ) -> Result<Recorded<Option<Entry>>, StoreError> {
        let _turn = self.gate.enter().await?;
        retry("raid_award", || async {
            let mut tx = self.db.begin_write_in_lane().await?;
            let claim = command.idempotency.as_ref();
            if let Some(claim) = claim {
                if let Some(answer) = replay(&mut tx, claim).await? {
                    return Ok(Recorded::Replay(answer));
                }
            }
            let Owed { raid, fixed, allow_negative, postings } =
                owed(&mut tx, command.guild_id, command.raid_id).await?;
            if postings.is_empty() {
                if let Some(claim) = claim {
                    remember(&mut tx, claim, &Answer::NothingToAward, ctx).await?;
                }
                tx.commit().await?;
                return Ok(Recorded::Fresh(None, Vec::new()));
            }
            let (kind, reason) = if fixed {
                (EntryKind::RaidCorrection, format!("raid {}: correction", raid.name))
            } else {
                fix_rules(&mut tx, raid.id, raid.rules).await?;
                (EntryKind::Raid, format!("raid {}", raid.name))
            };
            let draft = Draft {
                guild_id: command.guild_id,
                pool_id: raid.pool_id,
                kind,
                reason,
                created_by: command.actor_member,
                reverses: None,
                raid_id: Some(raid.id),
                postings,
                allow_negative,
            };
            let (entry, events) = record(&mut tx, draft, claim, ctx).await?;
            tx.commit().await?;
            Ok(Recorded::Fresh(Some(entry), events))
        })
        .await
    }
}
