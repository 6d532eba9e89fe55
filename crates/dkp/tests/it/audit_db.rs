//! The audit log in its own database (seed phase 3): a service with
//! `AUDIT_DATABASE_URL` feeds it; `dkp audit rebuild` refills it from the
//! main database; `dkp audit verify` checks its hash chain and names the
//! first row a superuser changed behind the triggers' back; the triggers
//! refuse changes from anyone else; partitions are made months ahead.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::Connection;

use crate::support::{Kind, TestApp, admin_url, spawn_app_with};

/// A database of the test's own on the tests' server, dropped at the end.
struct AuditDatabase {
    name: String,
}

impl AuditDatabase {
    async fn create() -> AuditDatabase {
        let name = format!("dkp_audit_{}", uuid::Uuid::now_v7().simple());
        run_admin(&format!("CREATE DATABASE {name}")).await;
        AuditDatabase { name }
    }

    fn url(&self) -> String {
        let admin = admin_url();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base);
        format!("{base}/{}", self.name)
    }

    async fn query(&self, sql: &str) -> Result<i64, sqlx::Error> {
        let mut conn = sqlx::PgConnection::connect(&self.url()).await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut conn).await?;
        Ok(0)
    }

    async fn count(&self, sql: &'static str) -> i64 {
        let mut conn = sqlx::PgConnection::connect(&self.url()).await.expect("connect");
        sqlx::query_scalar::<_, i64>(sql).fetch_one(&mut conn).await.expect(sql)
    }
}

impl Drop for AuditDatabase {
    fn drop(&mut self) {
        let statement = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(run_admin(&statement));
        })
        .join();
    }
}

async fn run_admin(statement: &str) {
    let mut conn = sqlx::PgConnection::connect(&admin_url()).await.expect("connect to the tests' PostgreSQL");
    sqlx::raw_sql(sqlx::AssertSqlSafe(statement.to_owned())).execute(&mut conn).await.expect(statement);
}

/// `dkp audit ARGS` on the test's databases: whether it succeeded, and what it said.
fn audit_command(app: &TestApp, audit: &AuditDatabase, args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_dkp"))
        .arg("audit")
        .args(args)
        .env("DATABASE_URL", &app.url)
        .env("AUDIT_DATABASE_URL", audit.url())
        .env("DKP_LOG", "error")
        .stdin(Stdio::null())
        .output()
        .expect("dkp audit runs");
    (output.status.success(), String::from_utf8_lossy(&output.stderr).into_owned())
}

async fn main_rows(app: &TestApp) -> i64 {
    app.count("SELECT count(*) AS n FROM audit_log").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_database_is_fed_chained_append_only_and_rebuilt() {
    // Arrange: a service that feeds an audit database of its own.
    let audit = AuditDatabase::create().await;
    let url = audit.url();
    let app =
        spawn_app_with(Kind::Postgres, |config| config.audit_database = Some(dkp::config::Secret::new(&url))).await;
    let guild = app.guild("owls").await;
    app.funded_member(&guild, "ana", 100).await;

    // Act: rows settle (the feed copies rows older than a few seconds).
    app.clock.advance(Duration::from_secs(10));
    let started = Instant::now();
    let made = main_rows(&app).await;
    while audit.count("SELECT count(*) FROM audit_chain").await < made {
        assert!(started.elapsed() < Duration::from_secs(20), "the feed never copied the rows");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert: the chain holds, partitions are ahead, changes are refused.
    assert_eq!(audit.count("SELECT count(*) FROM audit_chain").await, made);
    assert!(audit.count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'audit_chain'::regclass").await >= 4);
    let (intact, said) = audit_command(&app, &audit, &["verify"]);
    assert!(intact, "{said}");
    assert!(audit.query("UPDATE audit_chain SET action = 'forged'").await.is_err(), "an update is refused");
    assert!(audit.query("DELETE FROM audit_chain").await.is_err(), "a delete is refused");
    assert!(audit.query("TRUNCATE audit_chain").await.is_err(), "a truncate is refused");

    // A superuser changes a row behind the triggers' back: verify names it.
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let (id, guild_id): (uuid::Uuid, Option<uuid::Uuid>) = sqlx::query_as(
        "SELECT id, guild_id FROM audit_chain WHERE guild_id IS NOT NULL ORDER BY guild_id, seq OFFSET 1 LIMIT 1",
    )
    .fetch_one(&mut conn)
    .await
    .expect("a row to change");
    sqlx::raw_sql("SET session_replication_role = replica").execute(&mut conn).await.expect("as a superuser");
    sqlx::query("UPDATE audit_chain SET action = 'entry.forged' WHERE id = $1")
        .bind(id)
        .execute(&mut conn)
        .await
        .expect("tamper");
    drop(conn);
    let (intact, said) = audit_command(&app, &audit, &["verify", "--guild", "owls"]);
    assert!(!intact, "a changed row went unnoticed: {said}");
    assert!(said.contains(&id.to_string()) && said.contains(&guild_id.expect("a guild").to_string()), "{said}");

    // A lost audit database is refilled from the main one, and holds.
    let fresh = AuditDatabase::create().await;
    let (done, said) = audit_command(&app, &fresh, &["rebuild"]);
    assert!(done, "{said}");
    assert_eq!(fresh.count("SELECT count(*) FROM audit_chain").await, main_rows(&app).await, "{said}");
    let (intact, said) = audit_command(&app, &fresh, &["verify"]);
    assert!(intact, "{said}");
}
