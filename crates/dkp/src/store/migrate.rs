//! Schema migrations, embedded in the binary and applied in order inside one
//! transaction. On PostgreSQL a transaction-scoped advisory lock lets several
//! instances start at once (and works through PgBouncer in transaction mode):
//! the first applies, the others wait and then find nothing left to do.
//!
//! On SQLite they run on a connection of their own with foreign keys off, as
//! SQLite asks for a table it cannot alter in place and must rebuild (a
//! `DROP TABLE` with foreign keys on would first delete the rows others
//! refer to); every reference is checked before the commit instead.

use anyhow::Context;
use sqlx::sqlite::SqlitePoolOptions;
use uuid::Uuid;

use super::sql::{Backend, Db};

struct Migration {
    version: i64,
    name: &'static str,
    postgres: &'static str,
    sqlite: &'static str,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        postgres: include_str!("../../migrations/postgres/0001_foundation.sql"),
        sqlite: include_str!("../../migrations/sqlite/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "ledger_lanes",
        postgres: include_str!("../../migrations/postgres/0002_ledger_lanes.sql"),
        sqlite: include_str!("../../migrations/sqlite/0002_ledger_lanes.sql"),
    },
    Migration {
        version: 3,
        name: "auctions",
        postgres: include_str!("../../migrations/postgres/0003_auctions.sql"),
        sqlite: include_str!("../../migrations/sqlite/0003_auctions.sql"),
    },
    Migration {
        version: 4,
        name: "jobs",
        postgres: include_str!("../../migrations/postgres/0004_jobs.sql"),
        sqlite: include_str!("../../migrations/sqlite/0004_jobs.sql"),
    },
    Migration {
        version: 5,
        name: "blobs",
        postgres: include_str!("../../migrations/postgres/0005_blobs.sql"),
        sqlite: include_str!("../../migrations/sqlite/0005_blobs.sql"),
    },
    Migration {
        version: 6,
        name: "roster",
        postgres: include_str!("../../migrations/postgres/0006_roster.sql"),
        sqlite: include_str!("../../migrations/sqlite/0006_roster.sql"),
    },
    Migration {
        version: 7,
        name: "raids",
        postgres: include_str!("../../migrations/postgres/0007_raids.sql"),
        sqlite: include_str!("../../migrations/sqlite/0007_raids.sql"),
    },
    Migration {
        version: 8,
        name: "imports",
        postgres: include_str!("../../migrations/postgres/0008_imports.sql"),
        sqlite: include_str!("../../migrations/sqlite/0008_imports.sql"),
    },
    Migration {
        version: 9,
        name: "outbox",
        postgres: include_str!("../../migrations/postgres/0009_outbox.sql"),
        sqlite: include_str!("../../migrations/sqlite/0009_outbox.sql"),
    },
    Migration {
        version: 10,
        name: "holds_kept",
        postgres: include_str!("../../migrations/postgres/0010_holds_kept.sql"),
        sqlite: include_str!("../../migrations/sqlite/0010_holds_kept.sql"),
    },
];

/// An arbitrary constant naming the migration lock.
const LOCK_KEY: i64 = 0x646b_705f_6d69_67;

pub async fn run(db: &Db) -> anyhow::Result<()> {
    let Db::Lite(pool) = db else { return apply(db).await };
    let options = pool.connect_options().as_ref().clone().foreign_keys(false);
    let lone = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .context("cannot open the database to migrate it")?;
    let applied = apply(&Db::Lite(lone.clone())).await;
    lone.close().await;
    applied
}

async fn apply(db: &Db) -> anyhow::Result<()> {
    let mut tx = db.begin_locking().await.context("cannot start the migration")?;
    if db.backend() == Backend::Postgres {
        tx.sql("SELECT pg_advisory_xact_lock($1)").bind(LOCK_KEY).execute().await?;
    }
    tx.sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, id TEXT NOT NULL)",
    )
    .execute()
    .await
    .context("cannot create the schema_migrations table")?;
    let applied: Vec<i64> = tx
        .sql("SELECT version FROM schema_migrations ORDER BY version")
        .fetch_all()
        .await?
        .iter()
        .map(|row| row.get("version"))
        .collect::<Result<_, _>>()?;
    if let Some(newest) = applied.last().filter(|v| **v > MIGRATIONS.last().map_or(0, |m| m.version)) {
        anyhow::bail!("the database has schema version {newest}, newer than this binary knows; run a newer dkp");
    }
    let pending: Vec<&Migration> = MIGRATIONS.iter().filter(|m| !applied.contains(&m.version)).collect();
    for migration in &pending {
        let text = match db.backend() {
            Backend::Postgres => migration.postgres,
            Backend::Sqlite => migration.sqlite,
        };
        tx.raw(text).await.with_context(|| format!("migration {} ({}) failed", migration.version, migration.name))?;
        tx.sql("INSERT INTO schema_migrations (version, name, id) VALUES ($1, $2, $3)")
            .bind(migration.version)
            .bind(migration.name)
            .bind(Uuid::now_v7().to_string())
            .execute()
            .await?;
        tracing::info!(version = migration.version, name = migration.name, "applied migration");
    }
    // Only after a change of schema: the check reads every row.
    if db.backend() == Backend::Sqlite && !pending.is_empty() {
        let broken = tx.sql("PRAGMA foreign_key_check").fetch_all().await?;
        anyhow::ensure!(broken.is_empty(), "the migrations left {} rows referring to none", broken.len());
    }
    tx.commit().await.context("cannot commit the migrations")?;
    Ok(())
}
