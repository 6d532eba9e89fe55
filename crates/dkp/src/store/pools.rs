//! Pools, their accounts and standings: opening a pool opens an account for
//! every member and the pool's system accounts; standings are each member's
//! balance, what their bids hold, what is left available, and what they
//! earned and spent over their life in the pool. A pool's earning rules
//! (what its raids pay) are columns of its row.

use std::collections::BTreeMap;

use dkp_core::raid::Rules;
use dkp_core::{Points, SystemAccount};
use uuid::Uuid;

use super::audit::{AuditWrite, OnUnique, audit};
use super::retry::retry;
use super::sql::{Db, Row, Tx};
use super::{Ctx, Read, Store, StoreError};
use crate::model::{Code, Pool, Standing};

/// A pool to open: its name and what it allows.
pub struct NewPool<'a> {
    pub name: &'a str,
    pub allow_negative: bool,
    pub zero_sum: bool,
}

async fn create_pool(db: &Db, guild_id: Uuid, new: &NewPool<'_>, ctx: &Ctx) -> Result<Pool, StoreError> {
    retry("create_pool", || async {
        let mut tx = db.begin_write().await?;
        let pool = Pool {
            id: Uuid::now_v7(),
            name: new.name.to_owned(),
            allow_negative: new.allow_negative,
            decay_schedule: None,
            zero_sum: new.zero_sum,
            rules: Rules::default(),
        };
        tx.sql(
            "INSERT INTO pools (id, guild_id, name, allow_negative, zero_sum, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(pool.id)
        .bind(guild_id)
        .bind(new.name)
        .bind(new.allow_negative)
        .bind(new.zero_sum)
        .bind(ctx.now)
            .execute()
            .await
            .on_unique("pools_guild_name_key", "pools.guild_id", Code::PoolNameTaken)?;
        for system in SystemAccount::ALL {
            open_account(&mut tx, guild_id, pool.id, None, Some(system)).await?;
        }
        for member_id in ids(&mut tx, "SELECT id FROM members WHERE guild_id = $1 ORDER BY id", guild_id).await? {
            open_account(&mut tx, guild_id, pool.id, Some(member_id), None).await?;
        }
        audit(&mut tx, AuditWrite::new(ctx, Some(guild_id), "pool.create", "pool", pool.id).after(&pool)).await?;
        tx.commit().await?;
        Ok(pool)
    })
    .await
}

/// The ids a query of one guild's rows (`$1` the guild) reads, in its order.
pub(super) async fn ids(tx: &mut Tx, sql: &'static str, guild_id: Uuid) -> Result<Vec<Uuid>, StoreError> {
    let rows = tx.sql(sql).bind(guild_id).fetch_all().await?;
    Ok(rows.iter().map(|row| row.get("id")).collect::<Result<_, _>>()?)
}

/// Opens a member's or a system account in a pool, at zero.
pub async fn open_account(
    tx: &mut Tx,
    guild_id: Uuid,
    pool_id: Uuid,
    member_id: Option<Uuid>,
    system: Option<SystemAccount>,
) -> Result<(), StoreError> {
    tx.sql("INSERT INTO accounts (id, guild_id, pool_id, member_id, system, balance) VALUES ($1, $2, $3, $4, $5, 0)")
        .bind(Uuid::now_v7())
        .bind(guild_id)
        .bind(pool_id)
        .bind(member_id)
        .bind(system.map(SystemAccount::as_str))
        .execute()
        .await?;
    Ok(())
}

/// A pool query: the pool with its decay schedule, if any, then `$tail`.
macro_rules! pool_sql {
    ($tail:literal) => {
        concat!(
            "SELECT p.id, p.name, p.allow_negative, p.zero_sum, p.boss_kill, p.on_time, p.per_hour, \
             p.standby_percent, s.percent, s.every_days, s.next_at FROM pools p \
             LEFT JOIN decay_schedules s ON s.pool_id = p.id",
            $tail
        )
    };
}

/// A pool's earning rules from the columns `{prefix}boss_kill` and the others.
pub(super) fn rules_of(row: &Row, prefix: &str) -> Result<Rules, sqlx::Error> {
    let points =
        |name: &str| -> Result<Points, sqlx::Error> { Ok(Points::from_stored(row.get(&format!("{prefix}{name}"))?)) };
    Ok(Rules {
        boss_kill: points("boss_kill")?,
        on_time: points("on_time")?,
        per_hour: points("per_hour")?,
        standby_percent: points("standby_percent")?,
    })
}

fn pool_of(row: &Row) -> Result<Pool, StoreError> {
    Ok(Pool {
        id: row.get("id")?,
        name: row.get("name")?,
        allow_negative: row.get("allow_negative")?,
        decay_schedule: super::schedules::schedule_of(row)?,
        zero_sum: row.get("zero_sum")?,
        rules: rules_of(row, "")?,
    })
}

async fn pools(db: &Db, guild_id: Uuid) -> Result<Vec<Pool>, StoreError> {
    let rows = db.sql(pool_sql!(" WHERE p.guild_id = $1 ORDER BY p.id")).bind(guild_id).fetch_all().await?;
    rows.iter().map(pool_of).collect()
}

pub(super) async fn pool(db: &Db, guild_id: Uuid, pool_id: Uuid) -> Result<Pool, StoreError> {
    let row = db
        .sql(pool_sql!(" WHERE p.guild_id = $1 AND p.id = $2"))
        .bind(guild_id)
        .bind(pool_id)
        .fetch_optional()
        .await?
        .ok_or(StoreError::NotFound)?;
    pool_of(&row)
}

/// A member's lifetime figures in a pool, summed from their postings: each
/// posting counts by the kind of its entry, or for a reversal by the kind of
/// the entry it reverses (so a reversal takes back exactly what its entry
/// counted), and by the sign the original posting had.
/// - `earned`: awards, raid awards and their corrections, positive
///   adjustments, and positive settlement postings (a zero-sum pool's share
///   of a price);
/// - `spent`: what settlements charged the member for loot.
/// Transfers, decay and negative adjustments count in neither.
macro_rules! lifetime_sql {
    ($accounts:literal) => {
        concat!(
            "SELECT p.account_id, \
               SUM(CASE WHEN k.kind IN ('award', 'raid', 'raid_correction') \
                          OR (k.kind IN ('adjustment', 'settlement') AND k.sign * p.amount > 0) \
                   THEN p.amount ELSE 0 END) AS earned, \
               SUM(CASE WHEN k.kind = 'settlement' AND k.sign * p.amount < 0 THEN -p.amount ELSE 0 END) AS spent \
             FROM postings p JOIN accounts pa ON pa.id = p.account_id \
             JOIN (SELECT e.id, COALESCE(o.kind, e.kind) AS kind, CASE WHEN e.reverses IS NULL THEN 1 ELSE -1 END AS sign \
                     FROM entries e LEFT JOIN entries o ON o.id = e.reverses \
                    WHERE e.guild_id = $1 AND e.pool_id = $2) k ON k.id = p.entry_id \
             WHERE pa.guild_id = $1 AND pa.pool_id = $2 AND pa.member_id ",
            $accounts,
            " GROUP BY p.account_id"
        )
    };
}

/// Standings of the pool `$2` of the guild `$1`: of the member accounts
/// `pa.member_id $accounts` (the lifetime sums read only those), then `$tail`.
macro_rules! standings_sql {
    ($accounts:literal, $tail:literal) => {
        concat!(
            "SELECT a.member_id, u.username, m.name, m.active, a.balance, ",
            held_sql!(),
            ", CAST(COALESCE((SELECT SUM(h.amount) FROM holds h JOIN lots l ON l.id = h.lot_id \
               WHERE h.account_id = a.id AND l.mode <> 'open'), 0) AS BIGINT) AS sealed_held, \
             CAST(COALESCE(t.earned, 0) AS BIGINT) AS earned, CAST(COALESCE(t.spent, 0) AS BIGINT) AS spent \
             FROM accounts a JOIN members m ON m.id = a.member_id LEFT JOIN users u ON u.id = m.user_id \
             LEFT JOIN (",
            lifetime_sql!($accounts),
            ") t ON t.account_id = a.id WHERE a.guild_id = $1 AND a.pool_id = $2 ",
            $tail
        )
    };
}

async fn standings(
    db: &Db,
    guild_id: Uuid,
    pool_id: Uuid,
    include_inactive: bool,
) -> Result<Vec<Standing>, StoreError> {
    pool(db, guild_id, pool_id).await?;
    const SQL: &str = standings_sql!("IS NOT NULL", "AND ($3 OR m.active) ORDER BY a.balance DESC, m.name_folded");
    let rows = db.sql(SQL).bind(guild_id).bind(pool_id).bind(include_inactive).fetch_all().await?;
    rows.iter().map(standing_of).collect()
}

/// One member's standing in the pool, on the roster or not; `None` for a
/// member without an account there.
async fn standing(db: &Db, guild_id: Uuid, pool_id: Uuid, member_id: Uuid) -> Result<Option<Standing>, StoreError> {
    pool(db, guild_id, pool_id).await?;
    const SQL: &str = standings_sql!("= $3", "AND a.member_id = $3");
    let row = db.sql(SQL).bind(guild_id).bind(pool_id).bind(member_id).fetch_optional().await?;
    row.as_ref().map(standing_of).transpose()
}

fn standing_of(row: &Row) -> Result<Standing, StoreError> {
    let balance = Points::from_stored(row.get("balance")?);
    let held = Points::from_stored(row.get("held")?);
    let available = balance.checked_sub(held).map_err(|_| StoreError::Corrupt("available overflows".into()))?;
    Ok(Standing {
        member_id: row.get("member_id")?,
        username: row.get("username")?,
        name: row.get("name")?,
        active: row.get("active")?,
        balance,
        held,
        available,
        earned: Points::from_stored(row.get("earned")?),
        spent: Points::from_stored(row.get("spent")?),
        sealed_held: Points::from_stored(row.get("sealed_held")?),
    })
}

/// The balance of every member's account in the pool (on the roster or not).
pub(super) async fn balances(db: &Db, guild_id: Uuid, pool_id: Uuid) -> Result<BTreeMap<Uuid, Points>, StoreError> {
    pool(db, guild_id, pool_id).await?;
    let rows = db
        .sql("SELECT member_id, balance FROM accounts WHERE guild_id = $1 AND pool_id = $2 AND member_id IS NOT NULL")
        .bind(guild_id)
        .bind(pool_id)
        .fetch_all()
        .await?;
    rows.iter().map(|row| Ok((row.get("member_id")?, Points::from_stored(row.get("balance")?)))).collect()
}

impl Store {
    pub async fn create_pool(&self, guild_id: Uuid, new: &NewPool<'_>, ctx: &Ctx) -> Result<Pool, StoreError> {
        create_pool(&self.db, guild_id, new, ctx).await
    }

    pub async fn pools(&self, guild_id: Uuid, read: Read) -> Result<Vec<Pool>, StoreError> {
        self.read(read, |db| pools(db, guild_id)).await
    }

    /// One of the guild's pools.
    pub async fn pool(&self, guild_id: Uuid, pool_id: Uuid, read: Read) -> Result<Pool, StoreError> {
        self.read(read, |db| pool(db, guild_id, pool_id)).await
    }

    /// Replaces a pool's earning rules: the pool with its new rules.
    pub async fn set_rules(&self, guild_id: Uuid, pool_id: Uuid, rules: Rules, ctx: &Ctx) -> Result<Pool, StoreError> {
        retry("set_rules", || async {
            let mut tx = self.db.begin_write().await?;
            let changed = tx
                .sql(
                    "UPDATE pools SET boss_kill = $1, on_time = $2, per_hour = $3, standby_percent = $4 \
                      WHERE guild_id = $5 AND id = $6",
                )
                .bind(rules.boss_kill.hundredths())
                .bind(rules.on_time.hundredths())
                .bind(rules.per_hour.hundredths())
                .bind(rules.standby_percent.hundredths())
                .bind(guild_id)
                .bind(pool_id)
                .execute()
                .await?;
            if changed == 0 {
                return Err(StoreError::NotFound);
            }
            let row = tx.sql(pool_sql!(" WHERE p.id = $1")).bind(pool_id).fetch_one().await?;
            let pool = pool_of(&row)?;
            audit(&mut tx, AuditWrite::new(ctx, Some(guild_id), "pool.rules", "pool", pool_id).after(&pool)).await?;
            tx.commit().await?;
            Ok(pool)
        })
        .await
    }

    /// Every member's wallet and lifetime figures in the pool: those on the
    /// roster, or everyone.
    pub async fn standings(
        &self,
        guild_id: Uuid,
        pool_id: Uuid,
        include_inactive: bool,
        read: Read,
    ) -> Result<Vec<Standing>, StoreError> {
        self.read(read, |db| standings(db, guild_id, pool_id, include_inactive)).await
    }

    /// One member's standing in the pool, on the roster or not.
    pub async fn standing(
        &self,
        guild_id: Uuid,
        pool_id: Uuid,
        member_id: Uuid,
        read: Read,
    ) -> Result<Option<Standing>, StoreError> {
        self.read(read, |db| standing(db, guild_id, pool_id, member_id)).await
    }

    /// Every member's balance in the pool, by member id (what a decay reads).
    pub async fn balances(
        &self,
        guild_id: Uuid,
        pool_id: Uuid,
        read: Read,
    ) -> Result<BTreeMap<Uuid, Points>, StoreError> {
        self.read(read, |db| balances(db, guild_id, pool_id)).await
    }
}
