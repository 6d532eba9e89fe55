//! Pools, their accounts and standings: opening a pool opens an account for
//! every member and the pool's system accounts; standings are each member's
//! balance, what their bids hold and what is left available.

use dkp_core::{Points, SystemAccount};
use uuid::Uuid;

use super::audit::{AuditWrite, OnUnique, audit};
use super::retry::retry;
use super::sql::{Db, Row, Tx};
use super::{Ctx, Read, Store, StoreError};
use crate::model::{Code, Pool, Standing};

async fn create_pool(db: &Db, guild_id: Uuid, name: &str, allow_negative: bool, ctx: &Ctx) -> Result<Pool, StoreError> {
    retry("create_pool", || async {
        let mut tx = db.begin_write().await?;
        let pool = Pool { id: Uuid::now_v7(), name: name.to_owned(), allow_negative };
        tx.sql("INSERT INTO pools (id, guild_id, name, allow_negative, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(pool.id)
            .bind(guild_id)
            .bind(name)
            .bind(allow_negative)
            .bind(ctx.now)
            .execute()
            .await
            .on_unique("pools_guild_name_key", "pools.guild_id", Code::PoolNameTaken)?;
        for system in SystemAccount::ALL {
            open_account(&mut tx, guild_id, pool.id, None, Some(system)).await?;
        }
        let members: Vec<Uuid> = tx
            .sql("SELECT id FROM members WHERE guild_id = $1 ORDER BY id")
            .bind(guild_id)
            .fetch_all()
            .await?
            .iter()
            .map(|row| row.get("id"))
            .collect::<Result<_, _>>()?;
        for member_id in members {
            open_account(&mut tx, guild_id, pool.id, Some(member_id), None).await?;
        }
        audit(&mut tx, AuditWrite::new(ctx, Some(guild_id), "pool.create", "pool", pool.id).after(&pool)).await?;
        tx.commit().await?;
        Ok(pool)
    })
    .await
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

fn pool_of(row: &Row) -> Result<Pool, sqlx::Error> {
    Ok(Pool { id: row.get("id")?, name: row.get("name")?, allow_negative: row.get("allow_negative")? })
}

async fn pools(db: &Db, guild_id: Uuid) -> Result<Vec<Pool>, StoreError> {
    let rows = db
        .sql("SELECT id, name, allow_negative FROM pools WHERE guild_id = $1 ORDER BY id")
        .bind(guild_id)
        .fetch_all()
        .await?;
    Ok(rows.iter().map(pool_of).collect::<Result<_, _>>()?)
}

pub(super) async fn pool(db: &Db, guild_id: Uuid, pool_id: Uuid) -> Result<Pool, StoreError> {
    let row = db
        .sql("SELECT id, name, allow_negative FROM pools WHERE guild_id = $1 AND id = $2")
        .bind(guild_id)
        .bind(pool_id)
        .fetch_optional()
        .await?
        .ok_or(StoreError::NotFound)?;
    Ok(pool_of(&row)?)
}

async fn standings(db: &Db, guild_id: Uuid, pool_id: Uuid) -> Result<Vec<Standing>, StoreError> {
    pool(db, guild_id, pool_id).await?;
    let rows = db
        .sql(concat!(
            "SELECT a.member_id, u.username, a.balance, ",
            held_sql!(),
            ", CAST(COALESCE((SELECT SUM(h.amount) FROM holds h JOIN lots l ON l.id = h.lot_id \
               WHERE h.account_id = a.id AND l.mode <> 'open'), 0) AS BIGINT) AS sealed_held",
            " FROM accounts a JOIN members m ON m.id = a.member_id JOIN users u ON u.id = m.user_id \
             WHERE a.guild_id = $1 AND a.pool_id = $2 ORDER BY a.balance DESC, u.username_folded"
        ))
        .bind(guild_id)
        .bind(pool_id)
        .fetch_all()
        .await?;
    rows.iter()
        .map(|row| {
            let balance = Points::from_stored(row.get("balance")?);
            let held = Points::from_stored(row.get("held")?);
            let available = balance.checked_sub(held).map_err(|_| StoreError::Corrupt("available overflows".into()))?;
            let sealed_held = Points::from_stored(row.get("sealed_held")?);
            Ok(Standing {
                member_id: row.get("member_id")?,
                username: row.get("username")?,
                balance,
                held,
                available,
                sealed_held,
            })
        })
        .collect()
}

impl Store {
    pub async fn create_pool(
        &self,
        guild_id: Uuid,
        name: &str,
        allow_negative: bool,
        ctx: &Ctx,
    ) -> Result<Pool, StoreError> {
        create_pool(&self.db, guild_id, name, allow_negative, ctx).await
    }

    pub async fn pools(&self, guild_id: Uuid, read: Read) -> Result<Vec<Pool>, StoreError> {
        self.read(read, |db| pools(db, guild_id)).await
    }

    pub async fn standings(&self, guild_id: Uuid, pool_id: Uuid, read: Read) -> Result<Vec<Standing>, StoreError> {
        self.read(read, |db| standings(db, guild_id, pool_id)).await
    }
}
