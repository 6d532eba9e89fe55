//! The audit log in a database of its own (`AUDIT_DATABASE_URL`,
//! PostgreSQL; seed phase 3): a copy of the main database's audit rows that
//! nobody can quietly change. It is append-only (triggers refuse UPDATE,
//! DELETE and TRUNCATE; grant the service's role INSERT and SELECT only),
//! range-partitioned by month with partitions made ahead and never dropped,
//! and each row carries the SHA-256 of its guild's previous row and of
//! itself (a hash chain), so `verify` finds the first row changed after
//! the fact. The main database's rows stay the source: `copy` takes those
//! it has not yet, in id order, and a lost audit database is refilled by
//! copying them all again.

use sha2::{Digest, Sha256};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, Row as _};
use time::{Date, Month, OffsetDateTime};
use uuid::Uuid;

use super::StoreError;
use crate::model::{AuditRecord, Ts};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS audit_chain (
    id uuid NOT NULL,
    guild_id uuid,
    seq bigint NOT NULL,
    actor_id uuid,
    action text NOT NULL,
    target_type text NOT NULL,
    target_id text NOT NULL,
    request_id text,
    created_at timestamptz NOT NULL,
    before text,
    after text,
    prev_hash bytea NOT NULL,
    hash bytea NOT NULL,
    PRIMARY KEY (created_at, id)
) PARTITION BY RANGE (created_at);
CREATE INDEX IF NOT EXISTS audit_chain_guild_seq ON audit_chain (guild_id, seq);
CREATE INDEX IF NOT EXISTS audit_chain_id ON audit_chain (id);
CREATE OR REPLACE FUNCTION audit_chain_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only';
END $$;
DROP TRIGGER IF EXISTS audit_chain_no_change ON audit_chain;
CREATE TRIGGER audit_chain_no_change BEFORE UPDATE OR DELETE ON audit_chain
    FOR EACH ROW EXECUTE FUNCTION audit_chain_refuse();
DROP TRIGGER IF EXISTS audit_chain_no_truncate ON audit_chain;
CREATE TRIGGER audit_chain_no_truncate BEFORE TRUNCATE ON audit_chain
    FOR EACH STATEMENT EXECUTE FUNCTION audit_chain_refuse();
";

/// The id of the newest row copied (ids are v7 uuids: they sort by time made).
const NEWEST: &str = "SELECT id FROM audit_chain ORDER BY id DESC LIMIT 1";

/// Months of partitions made ahead of the current one.
const MONTHS_AHEAD: i32 = 3;

/// The first row whose hash does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broken {
    pub guild_id: Option<Uuid>,
    pub id: Uuid,
}

/// A connection to the audit database.
pub struct AuditDb {
    pool: PgPool,
}

/// The first day of the month `months` after `day`'s.
fn month_start(day: Date, months: i32) -> Option<Date> {
    let index = day.year() * 12 + i32::from(u8::from(day.month())) - 1 + months;
    Date::from_calendar_date(
        index.div_euclid(12),
        Month::try_from(u8::try_from(index.rem_euclid(12) + 1).ok()?).ok()?,
        1,
    )
    .ok()
}

/// The hash of a row after `prev`: what the chain stores and checks.
fn chain_hash(prev: &[u8], row: &AuditRecord, guild_id: Option<Uuid>) -> Vec<u8> {
    let text = |value: &Option<serde_json::Value>| value.as_ref().map(ToString::to_string).unwrap_or_default();
    let fields = [
        row.id.to_string(),
        guild_id.map(|g| g.to_string()).unwrap_or_default(),
        row.actor_id.map(|a| a.to_string()).unwrap_or_default(),
        row.action.clone(),
        row.target_type.clone(),
        row.target_id.clone(),
        row.request_id.clone().unwrap_or_default(),
        row.created_at.micros().to_string(),
        text(&row.before),
        text(&row.after),
    ];
    let mut hasher = Sha256::new();
    hasher.update(prev);
    for field in fields {
        // Each field with its length, so no two rows hash alike by moving a boundary.
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hasher.finalize().to_vec()
}

impl AuditDb {
    pub async fn open(url: &str) -> Result<AuditDb, StoreError> {
        let pool = PgPoolOptions::new().max_connections(2).connect(url).await?;
        let db = AuditDb { pool };
        sqlx::raw_sql(SCHEMA).execute(&db.pool).await?;
        Ok(db)
    }

    /// Makes the partitions of the months from `now`'s to `MONTHS_AHEAD` after it.
    pub async fn make_partitions(&self, now: Ts) -> Result<(), StoreError> {
        self.make_partitions_between(now, now).await
    }

    /// Makes the partitions of the months from `first`'s to `MONTHS_AHEAD` after `last`'s.
    pub async fn make_partitions_between(&self, first: Ts, last: Ts) -> Result<(), StoreError> {
        let (first, last) = (first.0.date(), last.0.date());
        let months =
            (last.year() - first.year()) * 12 + i32::from(u8::from(last.month())) - i32::from(u8::from(first.month()));
        for ahead in 0..=months.max(0) + MONTHS_AHEAD {
            let (Some(from), Some(to)) = (month_start(first, ahead), month_start(first, ahead + 1)) else { continue };
            let name = format!("audit_chain_{}_{:02}", from.year(), u8::from(from.month()));
            let statement = format!(
                "CREATE TABLE IF NOT EXISTS {name} PARTITION OF audit_chain FOR VALUES FROM ('{from}') TO ('{to}')"
            );
            sqlx::raw_sql(AssertSqlSafe(statement)).execute(&self.pool).await?;
        }
        Ok(())
    }

    /// The id of the newest row copied, where copying goes on from.
    pub async fn last_id(&self) -> Result<Option<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(NEWEST).fetch_optional(&self.pool).await?)
    }

    /// Appends `rows` (oldest first), each chained to its guild's last row.
    pub async fn append(&self, rows: &[(Option<Uuid>, AuditRecord)]) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // One writer at a time (several instances may feed): a chain read
        // by two at once would fork.
        sqlx::query("SELECT pg_advisory_xact_lock(7274006346)").execute(&mut *tx).await?;
        let newest: Option<Uuid> = sqlx::query_scalar(NEWEST).fetch_optional(&mut *tx).await?;
        for (guild_id, row) in rows.iter().filter(|(_, row)| newest.is_none_or(|n| row.id > n)) {
            let last = sqlx::query(
                "SELECT seq, hash FROM audit_chain WHERE guild_id IS NOT DISTINCT FROM $1 ORDER BY seq DESC LIMIT 1",
            )
            .bind(guild_id)
            .fetch_optional(&mut *tx)
            .await?;
            let (seq, prev): (i64, Vec<u8>) = match last {
                Some(last) => (last.try_get::<i64, _>("seq")? + 1, last.try_get("hash")?),
                None => (1, Vec::new()),
            };
            let hash = chain_hash(&prev, row, *guild_id);
            sqlx::query(
                "INSERT INTO audit_chain (id, guild_id, seq, actor_id, action, target_type, target_id, request_id, \
                 created_at, before, after, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            )
            .bind(row.id)
            .bind(guild_id)
            .bind(seq)
            .bind(row.actor_id)
            .bind(&row.action)
            .bind(&row.target_type)
            .bind(&row.target_id)
            .bind(&row.request_id)
            .bind(row.created_at.0)
            .bind(row.before.as_ref().map(ToString::to_string))
            .bind(row.after.as_ref().map(ToString::to_string))
            .bind(prev)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Walks the chain of `guild_id` (every guild's when `None`) and names
    /// the first row whose hash does not follow from its content and the
    /// row before it.
    pub async fn verify(&self, guild_id: Option<Uuid>) -> Result<Option<Broken>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, guild_id, actor_id, action, target_type, target_id, request_id, created_at, before, after, \
             prev_hash, hash FROM audit_chain WHERE $1::uuid IS NULL OR guild_id = $1 ORDER BY guild_id NULLS FIRST, seq",
        )
        .bind(guild_id)
        .fetch_all(&self.pool)
        .await?;
        let mut chain: Option<(Option<Uuid>, Vec<u8>)> = None;
        for row in rows {
            let guild: Option<Uuid> = row.try_get("guild_id")?;
            let record = stored(&row)?;
            let prev = match &chain {
                Some((g, hash)) if *g == guild => hash.clone(),
                _ => Vec::new(),
            };
            let hash: Vec<u8> = row.try_get("hash")?;
            let prev_kept: Vec<u8> = row.try_get("prev_hash")?;
            if prev_kept != prev || chain_hash(&prev, &record, guild) != hash {
                return Ok(Some(Broken { guild_id: guild, id: record.id }));
            }
            chain = Some((guild, hash));
        }
        Ok(None)
    }
}

fn stored(row: &sqlx::postgres::PgRow) -> Result<AuditRecord, StoreError> {
    let json = |name: &str| -> Result<Option<serde_json::Value>, StoreError> {
        let text: Option<String> = row.try_get(name)?;
        text.map(|t| serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(e.to_string()))).transpose()
    };
    Ok(AuditRecord {
        id: row.try_get("id")?,
        actor_id: row.try_get("actor_id")?,
        action: row.try_get("action")?,
        target_type: row.try_get("target_type")?,
        target_id: row.try_get("target_id")?,
        request_id: row.try_get("request_id")?,
        created_at: Ts(row.try_get::<OffsetDateTime, _>("created_at")?),
        before: json("before")?,
        after: json("after")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_roll_over_the_year() {
        let day = Date::from_calendar_date(2026, Month::November, 30).unwrap();
        assert_eq!(month_start(day, 0), Date::from_calendar_date(2026, Month::November, 1).ok());
        assert_eq!(month_start(day, 2), Date::from_calendar_date(2027, Month::January, 1).ok());
    }
}
