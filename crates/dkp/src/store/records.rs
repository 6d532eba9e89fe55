//! What a guild's records tell over time: how often each member came to a
//! pool's last raids, and the loot its lots have handed out.

use dkp_core::Points;
use uuid::Uuid;

use super::audit::paginate;
use super::pools::pool;
use super::sql::{Db, Row};
use super::{Read, Store, StoreError};
use crate::model::{AttendanceRate, Loot, Page, PageRequest};

/// Each member of the pool on the roster (or everyone) with how many of its
/// last `last` raids (by start) they attended, most attended first.
async fn attendance_rates(
    db: &Db,
    guild_id: Uuid,
    pool_id: Uuid,
    last: u32,
    include_inactive: bool,
) -> Result<Vec<AttendanceRate>, StoreError> {
    pool(db, guild_id, pool_id).await?;
    let rows = db
        .sql(
            "WITH recent AS (SELECT id FROM raids WHERE guild_id = $1 AND pool_id = $2 \
                              ORDER BY started_at DESC, id DESC LIMIT $3) \
             SELECT a.member_id, (SELECT COUNT(*) FROM recent) AS raids, \
                    (SELECT COUNT(*) FROM raid_attendance ra JOIN recent ON recent.id = ra.raid_id \
                      WHERE ra.member_id = a.member_id) AS attended \
               FROM accounts a JOIN members m ON m.id = a.member_id \
              WHERE a.guild_id = $1 AND a.pool_id = $2 AND ($4 OR m.active)",
        )
        .bind(guild_id)
        .bind(pool_id)
        .bind(i64::from(last))
        .bind(include_inactive)
        .fetch_all()
        .await?;
    let count = |row: &Row, name: &str| -> Result<u32, StoreError> {
        u32::try_from(row.get::<i64>(name)?).map_err(|_| StoreError::Corrupt(format!("a count of {name}")))
    };
    let mut rates = rows
        .iter()
        .map(|row| {
            Ok(AttendanceRate {
                member_id: row.get("member_id")?,
                raids: count(row, "raids")?,
                attended: count(row, "attended")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    rates.sort_by(|a, b| b.attended.cmp(&a.attended).then(a.member_id.cmp(&b.member_id)));
    Ok(rates)
}

/// One page of the guild's loot, newest lot first, of one winner or pool if asked.
async fn loot(
    db: &Db,
    guild_id: Uuid,
    member_id: Option<Uuid>,
    pool_id: Option<Uuid>,
    page: PageRequest,
) -> Result<Page<Loot>, StoreError> {
    let rows = db
        .sql(
            "SELECT l.id, l.pool_id, l.item_name, l.game_item_id, l.winner_member_id, l.price, l.closed_at, l.raid_id \
               FROM lots l WHERE l.guild_id = $1 AND l.status = 'closed' AND l.winner_member_id IS NOT NULL \
                AND ($2 IS NULL OR l.winner_member_id = $2) AND ($3 IS NULL OR l.pool_id = $3) \
                AND ($4 IS NULL OR l.id < $4) ORDER BY l.id DESC LIMIT $5",
        )
        .bind(guild_id)
        .bind(member_id)
        .bind(pool_id)
        .bind(page.before)
        .bind(i64::from(page.limit) + 1)
        .fetch_all()
        .await?;
    let items = rows
        .iter()
        .map(|row| {
            Ok(Loot {
                lot_id: row.get("id")?,
                pool_id: row.get("pool_id")?,
                item_name: row.get("item_name")?,
                game_item_id: row.get("game_item_id")?,
                winner_member_id: row.get("winner_member_id")?,
                price: Points::from_stored(row.get::<Option<i64>>("price")?.unwrap_or(0)),
                closed_at: row
                    .get::<Option<_>>("closed_at")?
                    .ok_or_else(|| StoreError::Corrupt("a closed lot without closed_at".into()))?,
                raid_id: row.get("raid_id")?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(paginate(items, page, |l| l.lot_id))
}

impl Store {
    pub async fn attendance_rates(
        &self,
        guild_id: Uuid,
        pool_id: Uuid,
        last: u32,
        include_inactive: bool,
        read: Read,
    ) -> Result<Vec<AttendanceRate>, StoreError> {
        self.read(read, |db| attendance_rates(db, guild_id, pool_id, last, include_inactive)).await
    }

    pub async fn loot(
        &self,
        guild_id: Uuid,
        member_id: Option<Uuid>,
        pool_id: Option<Uuid>,
        page: PageRequest,
        read: Read,
    ) -> Result<Page<Loot>, StoreError> {
        self.read(read, |db| loot(db, guild_id, member_id, pool_id, page)).await
    }
}
