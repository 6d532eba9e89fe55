//! Upgrading a database made before the roster: its members keep their
//! places, names and accounts, and references between tables still hold
//! (SQLite rebuilds `members` to let `user_id` be null).

use dkp::model::{Joining, Ts};
use dkp::store::{Ctx, Location, Read, sql::Db};
use uuid::Uuid;

use crate::support::{Kind, fresh_database, temp_dir};

/// The migrations before the roster, in order, for one backend.
fn before_the_roster(kind: Kind) -> [&'static str; 5] {
    match kind {
        Kind::Postgres => [
            include_str!("../../migrations/postgres/0001_foundation.sql"),
            include_str!("../../migrations/postgres/0002_ledger_lanes.sql"),
            include_str!("../../migrations/postgres/0003_auctions.sql"),
            include_str!("../../migrations/postgres/0004_jobs.sql"),
            include_str!("../../migrations/postgres/0005_blobs.sql"),
        ],
        Kind::Sqlite => [
            include_str!("../../migrations/sqlite/0001_foundation.sql"),
            include_str!("../../migrations/sqlite/0002_ledger_lanes.sql"),
            include_str!("../../migrations/sqlite/0003_auctions.sql"),
            include_str!("../../migrations/sqlite/0004_jobs.sql"),
            include_str!("../../migrations/sqlite/0005_blobs.sql"),
        ],
    }
}

/// A database at schema version 5 with one guild, its owner and a pool.
async fn old_database(kind: Kind, location: &Location, ids: &Ids) {
    let db = dkp::store::connect(location).await.expect("connect");
    let mut tx = db.begin_locking().await.expect("begin");
    tx.sql("CREATE TABLE schema_migrations (version BIGINT PRIMARY KEY, name TEXT NOT NULL, id TEXT NOT NULL)")
        .execute()
        .await
        .expect("schema_migrations");
    for (n, script) in before_the_roster(kind).into_iter().enumerate() {
        tx.raw(script).await.expect("an old migration");
        let version = i64::try_from(n + 1).expect("a version");
        tx.sql("INSERT INTO schema_migrations (version, name, id) VALUES ($1, 'old', 'old')")
            .bind(version)
            .execute()
            .await
            .expect("a version row");
    }
    let now = Ts::from_micros(1_790_000_000_000_000).expect("a time");
    let statements: [(&'static str, Vec<Uuid>); 4] = [
        (
            "INSERT INTO users (id, username, username_folded, display_name, password_hash, created_at) \
             VALUES ($1, 'Ana_Old', 'ana_old', 'Ana', 'x', $2)",
            vec![ids.user],
        ),
        ("INSERT INTO guilds (id, slug, name, created_at) VALUES ($1, 'old', 'Old', $2)", vec![ids.guild]),
        (
            "INSERT INTO members (id, guild_id, user_id, role, created_at) VALUES ($1, $3, $4, 'owner', $2)",
            vec![ids.member, ids.guild, ids.user],
        ),
        (
            "INSERT INTO pools (id, guild_id, name, allow_negative, created_at) VALUES ($1, $3, 'Main', false, $2)",
            vec![ids.pool, ids.guild],
        ),
    ];
    for (sql, binds) in statements {
        let mut statement = tx.sql(sql).bind(binds[0]).bind(now);
        for id in &binds[1..] {
            statement = statement.bind(*id);
        }
        statement.execute().await.expect("old data");
    }
    tx.sql("INSERT INTO accounts (id, guild_id, pool_id, member_id, balance) VALUES ($1, $2, $3, $4, 1250)")
        .bind(Uuid::now_v7())
        .bind(ids.guild)
        .bind(ids.pool)
        .bind(ids.member)
        .execute()
        .await
        .expect("an account");
    tx.commit().await.expect("commit");
    db.close().await;
}

struct Ids {
    user: Uuid,
    guild: Uuid,
    member: Uuid,
    pool: Uuid,
}

async fn a_database_from_before_the_roster_keeps_its_members(kind: Kind) {
    let dir = temp_dir();
    let (location, _) = fresh_database(kind, &dir).await;
    let ids = Ids { user: Uuid::now_v7(), guild: Uuid::now_v7(), member: Uuid::now_v7(), pool: Uuid::now_v7() };
    old_database(kind, &location, &ids).await;

    let store = dkp::store::open(&location).await.expect("the upgrade applies");

    let members = store.members(ids.guild, true, Read::Fresh).await.expect("members");
    assert_eq!(members.len(), 1);
    let owner = &members[0];
    assert_eq!(
        (owner.id, owner.user_id, owner.name.as_str(), owner.active),
        (ids.member, Some(ids.user), "Ana_Old", true)
    );
    let standings = store.standings(ids.guild, ids.pool, false, Read::Fresh).await.expect("standings");
    assert_eq!(standings[0].balance.to_string(), "12.50");
    let ctx = Ctx {
        actor: Some(ids.user),
        request_id: "test".into(),
        now: Ts::from_micros(1_790_000_000_000_001).unwrap(),
        outbox: false,
    };
    let thrall = Joining::Unlinked { name: "Thrall".into() };
    let added = store.add_member(ids.guild, &thrall, dkp_core::Role::Member, &ctx).await.expect("a member by name");
    assert_eq!(added.user_id, None);
    // References still hold: an account of no member is refused.
    let db: Db = dkp::store::connect(&location).await.expect("connect");
    let orphan = db
        .sql("INSERT INTO accounts (id, guild_id, pool_id, member_id, balance) VALUES ($1, $2, $3, $4, 0)")
        .bind(Uuid::now_v7())
        .bind(ids.guild)
        .bind(ids.pool)
        .bind(Uuid::now_v7())
        .execute()
        .await;
    assert!(orphan.is_err(), "a foreign key refuses an account of no member");
    db.close().await;
    store.close().await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_database_from_before_the_roster_keeps_its_members() {
    a_database_from_before_the_roster_keeps_its_members(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_database_from_before_the_roster_keeps_its_members() {
    a_database_from_before_the_roster_keeps_its_members(Kind::Postgres).await;
}
