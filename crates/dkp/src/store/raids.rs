//! Raids: creating one, changing it, its attendance (replaced as a whole)
//! and its boss kills, and reading a raid's page. None of these moves
//! points; a raid's award is `raid_award`. Every statement names the guild,
//! and a kill is kept inside the raid's time (checked in the transaction
//! that writes it, against the raid row it locks).

use std::collections::BTreeMap;

use dkp_core::Points;
use uuid::Uuid;

use super::audit::{AuditWrite, audit, paginate};
use super::pools::rules_of;
use super::retry::retry;
use super::sql::{Backend, Db, Row, Tx, placeholders, value_rows};
use super::{Ctx, Read, Store, StoreError};
use crate::model::{Attendee, Code, Kill, NewRaid, Page, PageRequest, Raid, RaidChange, RaidPage, Ts};

/// A raid query: the raid with the rules it is paid under (its own once
/// fixed by its first award, else its pool's), then `$tail`.
macro_rules! raid_sql {
    ($tail:literal) => {
        concat!(
            "SELECT r.id, r.pool_id, r.name, r.zone, r.started_at, r.ended_at, r.created_at, r.created_by, \
             COALESCE(r.boss_kill, p.boss_kill) AS boss_kill, COALESCE(r.on_time, p.on_time) AS on_time, \
             COALESCE(r.per_hour, p.per_hour) AS per_hour, \
             COALESCE(r.standby_percent, p.standby_percent) AS standby_percent \
             FROM raids r JOIN pools p ON p.id = r.pool_id",
            $tail
        )
    };
}

/// The sum of each member's postings in the entries of raid `$2` of guild
/// `$1`: what the raid has paid them so far.
pub(super) const PAID_SQL: &str = "SELECT a.member_id, CAST(SUM(p.amount) AS BIGINT) AS paid FROM entries e \
     JOIN postings p ON p.entry_id = e.id JOIN accounts a ON a.id = p.account_id \
     WHERE e.guild_id = $1 AND e.raid_id = $2 AND a.member_id IS NOT NULL GROUP BY a.member_id";

/// Member to what the rows of `PAID_SQL` say the raid paid them, those at zero left out.
pub(super) fn paid_of(rows: &[Row]) -> Result<BTreeMap<Uuid, Points>, StoreError> {
    let mut paid = BTreeMap::new();
    for row in rows {
        let amount = Points::from_stored(row.get("paid")?);
        if amount != Points::ZERO {
            paid.insert(row.get("member_id")?, amount);
        }
    }
    Ok(paid)
}

fn raid_of(row: &Row) -> Result<Raid, StoreError> {
    Ok(Raid {
        id: row.get("id")?,
        pool_id: row.get("pool_id")?,
        name: row.get("name")?,
        zone: row.get("zone")?,
        started_at: row.get("started_at")?,
        ended_at: row.get("ended_at")?,
        created_at: row.get("created_at")?,
        created_by: row.get("created_by")?,
        rules: rules_of(row, "")?,
    })
}

pub(super) fn attendee_of(row: &Row) -> Result<Attendee, StoreError> {
    let minutes: i32 = row.get("minutes")?;
    Ok(Attendee {
        member_id: row.get("member_id")?,
        minutes: u32::try_from(minutes).map_err(|_| StoreError::Corrupt("negative minutes".into()))?,
        on_time: row.get("on_time")?,
        standby: row.get("standby")?,
    })
}

/// The raid row locked for a change (a row lock on PostgreSQL; SQLite's
/// writer holds the whole database): `NotFound` if the guild has no such raid.
pub(super) async fn lock_raid(tx: &mut Tx, guild_id: Uuid, raid_id: Uuid) -> Result<Raid, StoreError> {
    const SELECT: &str = raid_sql!(" WHERE r.guild_id = $1 AND r.id = $2");
    const LOCK: &str = raid_sql!(" WHERE r.guild_id = $1 AND r.id = $2 FOR UPDATE OF r");
    let sql = if tx.backend() == Backend::Postgres { LOCK } else { SELECT };
    let row = tx.sql(sql).bind(guild_id).bind(raid_id).fetch_optional().await?.ok_or(StoreError::NotFound)?;
    raid_of(&row)
}

/// Whether a boss killed at `at` died inside the raid's time.
fn within(raid: &Raid, at: Ts) -> bool {
    at >= raid.started_at && raid.ended_at.is_none_or(|end| at <= end)
}

async fn raids(db: &Db, guild_id: Uuid, pool_id: Option<Uuid>, page: PageRequest) -> Result<Page<Raid>, StoreError> {
    let rows = db
        .sql(raid_sql!(
            " WHERE r.guild_id = $1 AND ($2 IS NULL OR r.pool_id = $2) AND ($3 IS NULL OR r.id < $3) \
             ORDER BY r.id DESC LIMIT $4"
        ))
        .bind(guild_id)
        .bind(pool_id)
        .bind(page.before)
        .bind(i64::from(page.limit) + 1)
        .fetch_all()
        .await?;
    Ok(paginate(rows.iter().map(raid_of).collect::<Result<_, _>>()?, page, |r| r.id))
}

/// Everything a raid's page shows.
async fn raid_page(db: &Db, guild_id: Uuid, raid_id: Uuid) -> Result<RaidPage, StoreError> {
    let row = db
        .sql(raid_sql!(" WHERE r.guild_id = $1 AND r.id = $2"))
        .bind(guild_id)
        .bind(raid_id)
        .fetch_optional()
        .await?
        .ok_or(StoreError::NotFound)?;
    let raid = raid_of(&row)?;
    let attendance = db
        .sql("SELECT member_id, minutes, on_time, standby FROM raid_attendance WHERE raid_id = $1 ORDER BY member_id")
        .bind(raid_id)
        .fetch_all()
        .await?
        .iter()
        .map(attendee_of)
        .collect::<Result<_, _>>()?;
    let kills = db
        .sql("SELECT id, boss, killed_at FROM raid_kills WHERE raid_id = $1 ORDER BY killed_at, id")
        .bind(raid_id)
        .fetch_all()
        .await?
        .iter()
        .map(|row| Ok(Kill { id: row.get("id")?, boss: row.get("boss")?, killed_at: row.get("killed_at")? }))
        .collect::<Result<_, StoreError>>()?;
    let lots = super::lots::raid_lots(db, guild_id, raid_id).await?;
    let awarded = paid_of(&db.sql(PAID_SQL).bind(guild_id).bind(raid_id).fetch_all().await?)?;
    Ok(RaidPage { raid, attendance, kills, lots, awarded })
}

impl Store {
    pub async fn raids(
        &self,
        guild_id: Uuid,
        pool_id: Option<Uuid>,
        page: PageRequest,
        read: Read,
    ) -> Result<Page<Raid>, StoreError> {
        self.read(read, |db| raids(db, guild_id, pool_id, page)).await
    }

    /// A raid's page (`Read::Fresh` where it answers the raid's own writes).
    pub async fn raid_page(&self, guild_id: Uuid, raid_id: Uuid, read: Read) -> Result<RaidPage, StoreError> {
        self.read(read, |db| raid_page(db, guild_id, raid_id)).await
    }

    /// Creates a raid of a pool of the guild (`UnknownReference` if the guild has no such pool).
    pub async fn create_raid(&self, new: &NewRaid, ctx: &Ctx) -> Result<Raid, StoreError> {
        retry("create_raid", || async {
            let mut tx = self.db.begin_write().await?;
            let id = Uuid::now_v7();
            let inserted = tx
                .sql(
                    "INSERT INTO raids (id, guild_id, pool_id, name, zone, started_at, ended_at, created_at, created_by) \
                     SELECT $1, p.guild_id, p.id, $2, $3, $4, $5, $6, $7 FROM pools p WHERE p.guild_id = $8 AND p.id = $9",
                )
                .bind(id)
                .bind(new.name.as_str())
                .bind(new.zone.clone())
                .bind(new.started_at)
                .bind(new.ended_at)
                .bind(ctx.now)
                .bind(new.created_by)
                .bind(new.guild_id)
                .bind(new.pool_id)
                .execute()
                .await?;
            if inserted == 0 {
                return Err(StoreError::UnknownReference("pool_id"));
            }
            let raid = lock_raid(&mut tx, new.guild_id, id).await?;
            audit(&mut tx, AuditWrite::new(ctx, Some(new.guild_id), "raid.create", "raid", id).after(&raid)).await?;
            tx.commit().await?;
            Ok(raid)
        })
        .await
    }

    /// Changes a raid's name, zone or end; an end before its start or before a
    /// kill is refused.
    pub async fn change_raid(
        &self,
        guild_id: Uuid,
        raid_id: Uuid,
        change: &RaidChange,
        ctx: &Ctx,
    ) -> Result<(), StoreError> {
        retry("change_raid", || async {
            let mut tx = self.db.begin_write().await?;
            let before = lock_raid(&mut tx, guild_id, raid_id).await?;
            let after = Raid {
                name: change.name.clone().unwrap_or_else(|| before.name.clone()),
                zone: change.zone.clone().or_else(|| before.zone.clone()),
                ended_at: change.ended_at.or(before.ended_at),
                ..before.clone()
            };
            if after.ended_at.is_some_and(|end| end < after.started_at) {
                return Err(StoreError::Invalid(Code::InvalidField, "ended_at: before the raid's started_at"));
            }
            let last_kill = tx.sql("SELECT MAX(killed_at) AS last FROM raid_kills WHERE raid_id = $1");
            let last_kill: Option<Ts> = last_kill.bind(raid_id).fetch_one().await?.get("last")?;
            if last_kill.is_some_and(|at| !within(&after, at)) {
                return Err(StoreError::Invalid(Code::KillOutsideRaid, "ended_at: before a boss kill of the raid"));
            }
            tx.sql("UPDATE raids SET name = $1, zone = $2, ended_at = $3 WHERE id = $4")
                .bind(after.name.as_str())
                .bind(after.zone.clone())
                .bind(after.ended_at)
                .bind(raid_id)
                .execute()
                .await?;
            let row =
                AuditWrite::new(ctx, Some(guild_id), "raid.change", "raid", raid_id).before(&before).after(&after);
            audit(&mut tx, row).await?;
            Ok(tx.commit().await?)
        })
        .await
    }

    /// Replaces a raid's attendance; every attendee must be a member of the guild.
    pub async fn set_attendance(
        &self,
        guild_id: Uuid,
        raid_id: Uuid,
        attendees: &[Attendee],
        ctx: &Ctx,
    ) -> Result<(), StoreError> {
        retry("set_attendance", || async {
            let mut tx = self.db.begin_write().await?;
            lock_raid(&mut tx, guild_id, raid_id).await?;
            if !attendees.is_empty() {
                let sql = format!(
                    "SELECT COUNT(*) AS known FROM members WHERE guild_id = $1 AND id IN ({})",
                    placeholders(2, attendees.len())
                );
                let mut known = tx.sql_built(sql).bind(guild_id);
                for attendee in attendees {
                    known = known.bind(attendee.member_id);
                }
                if known.fetch_one().await?.get::<i64>("known")? != attendees.len() as i64 {
                    return Err(StoreError::UnknownReference("member_id"));
                }
            }
            let before: Vec<Attendee> = tx
                .sql("SELECT member_id, minutes, on_time, standby FROM raid_attendance WHERE raid_id = $1 ORDER BY member_id")
                .bind(raid_id)
                .fetch_all()
                .await?
                .iter()
                .map(attendee_of)
                .collect::<Result<_, _>>()?;
            tx.sql("DELETE FROM raid_attendance WHERE raid_id = $1").bind(raid_id).execute().await?;
            if !attendees.is_empty() {
                let sql = format!(
                    "INSERT INTO raid_attendance (raid_id, member_id, minutes, on_time, standby) VALUES {}",
                    value_rows(1, attendees.len(), 5)
                );
                let mut insert = tx.sql_built(sql);
                for attendee in attendees {
                    let minutes = i32::try_from(attendee.minutes).map_err(|_| StoreError::Corrupt("minutes".into()))?;
                    insert = insert.bind(raid_id).bind(attendee.member_id).bind(minutes).bind(attendee.on_time);
                    insert = insert.bind(attendee.standby);
                }
                insert.execute().await?;
            }
            let row = AuditWrite::new(ctx, Some(guild_id), "raid.attendance", "raid", raid_id);
            audit(&mut tx, row.before(&before).after(attendees)).await?;
            Ok(tx.commit().await?)
        })
        .await
    }

    /// Records a boss kill, refused unless it fell inside the raid's time.
    pub async fn add_kill(
        &self,
        guild_id: Uuid,
        raid_id: Uuid,
        boss: &str,
        at: Ts,
        ctx: &Ctx,
    ) -> Result<(), StoreError> {
        retry("add_kill", || async {
            let mut tx = self.db.begin_write().await?;
            let raid = lock_raid(&mut tx, guild_id, raid_id).await?;
            if !within(&raid, at) {
                return Err(StoreError::Invalid(
                    Code::KillOutsideRaid,
                    "killed_at: outside the raid's started_at and ended_at",
                ));
            }
            let kill = Kill { id: Uuid::now_v7(), boss: boss.to_owned(), killed_at: at };
            tx.sql("INSERT INTO raid_kills (id, raid_id, boss, killed_at, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(kill.id)
                .bind(raid_id)
                .bind(boss)
                .bind(at)
                .bind(ctx.now)
                .execute()
                .await?;
            audit(&mut tx, AuditWrite::new(ctx, Some(guild_id), "raid.kill", "raid", raid_id).after(&kill)).await?;
            Ok(tx.commit().await?)
        })
        .await
    }

    /// Takes back a kill recorded by mistake.
    pub async fn remove_kill(&self, guild_id: Uuid, raid_id: Uuid, kill_id: Uuid, ctx: &Ctx) -> Result<(), StoreError> {
        retry("remove_kill", || async {
            let mut tx = self.db.begin_write().await?;
            lock_raid(&mut tx, guild_id, raid_id).await?;
            let removed = tx
                .sql("DELETE FROM raid_kills WHERE id = $1 AND raid_id = $2")
                .bind(kill_id)
                .bind(raid_id)
                .execute()
                .await?;
            if removed == 0 {
                return Err(StoreError::NotFound);
            }
            let row = AuditWrite::new(ctx, Some(guild_id), "raid.kill_removed", "raid", raid_id);
            audit(&mut tx, row.before(serde_json::json!({ "kill_id": kill_id }))).await?;
            Ok(tx.commit().await?)
        })
        .await
    }
}
