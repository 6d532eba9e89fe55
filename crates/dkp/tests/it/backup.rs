//! Seed risk R4, the restore drill: a PostgreSQL primary of the test's own
//! archives its WAL with deploy/backup/archive-wal.sh; deploy/backup/base-backup.sh
//! takes a base backup; the service writes awards, a lot and its bids; a
//! point in time is noted; more writes follow. A fresh data folder is then
//! restored with deploy/backup/restore.sh from the base backup and the
//! archive to that time, and the service on it shows exactly the standings,
//! entries and lot of that time.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sqlx::Connection;

use crate::servers::{as_postgres, bin, server_dir, start_server, stop_server};
use crate::services::free_port;
use crate::support::{Guild, TestApp, spawn_app_on};

/// The servers of the drill and their folder; stopped and removed when dropped.
struct Drill {
    dir: PathBuf,
    running: Vec<PathBuf>,
}

impl Drop for Drill {
    fn drop(&mut self) {
        for data in self.running.drain(..) {
            stop_server(&data, "immediate");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drill {
    /// A script of deploy/backup/, copied where the postgres user can run it.
    fn script(&self, name: &str) -> PathBuf {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/backup").join(name);
        let copy = self.dir.join(name);
        std::fs::copy(&shipped, &copy).expect("the shipped script");
        std::fs::set_permissions(&copy, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
        copy
    }

    /// Runs a script of deploy/backup/ as postgres with PostgreSQL's programs on the PATH; its output.
    fn run_script(&self, name: &str, args: &[&str]) -> String {
        let folder = Path::new(&bin("pg_ctl")).parent().expect("the programs' folder").display().to_string();
        let output = as_postgres("env")
            .arg(format!("PATH={folder}:/usr/bin:/bin"))
            .arg(self.script(name))
            .args(args)
            .output()
            .expect("the script runs");
        let said = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(output.status.success(), "{name}: {said}{}", String::from_utf8_lossy(&output.stderr));
        said
    }

    fn start(&mut self, data: &Path, port: u16, archive: Option<&Path>) {
        let settings = archive.map_or_else(String::new, |archive| {
            let command = format!("{} %p %f {}", self.script("archive-wal.sh").display(), archive.display());
            format!("-c wal_level=replica -c archive_mode=on -c \"archive_command={command}\"")
        });
        start_server(&self.dir, data, port, &settings);
        self.running.push(data.to_path_buf());
    }
}

async fn query(url: &str, sql: &'static str) -> String {
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    sqlx::query_scalar::<_, String>(sql).fetch_one(&mut conn).await.expect(sql)
}

/// What the drill compares: standings, the pool's entries and the lot, as the API shows them.
async fn state_of(app: &TestApp, guild: &Guild, lot: &str) -> Value {
    let token = &guild.owner.token;
    let get = |path: String| async move { app.get(&path).token(token).send().await.expect(200).json };
    let pool = format!("/api/v1/guilds/{}/pools/{}", guild.slug, guild.pool);
    json!({
        "standings": get(format!("{pool}/standings")).await["standings"],
        "entries": get(format!("{pool}/entries?limit=500")).await["entries"],
        "lot": get(format!("/api/v1/guilds/{}/lots/{lot}", guild.slug)).await["lot"],
    })
}

/// Awards, bids and a lot's close, all through the API.
async fn write(app: &TestApp, guild: &Guild, lot: &str, bidders: &[crate::support::User], round: i64) {
    let pool = format!("/api/v1/guilds/{}/pools/{}", guild.slug, guild.pool);
    let award = json!({"member_ids": [guild.owner_member], "amount": 10 * round, "reason": format!("raid {round}")});
    app.post(&format!("{pool}/awards")).token(&guild.owner.token).json(award).send().await.expect(201);
    for (n, bidder) in bidders.iter().enumerate() {
        app.bid(guild, lot, &bidder.token, json!(round * 100 + n as i64)).await.expect(201);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_restored_to_a_point_in_time_shows_exactly_that_time() {
    // Arrange: a primary that archives its WAL, and its base backup.
    let mut drill = Drill { dir: server_dir(), running: Vec::new() };
    let (primary, archive, backups) = (drill.dir.join("primary"), drill.dir.join("wal"), drill.dir.join("backups"));
    dkp_bench::postgres::initdb(&primary).expect("initdb makes the primary");
    let port = free_port();
    drill.start(&primary, port, Some(&archive));
    let (dir, wal) = (backups.display().to_string(), archive.display().to_string());
    let base =
        drill.run_script("base-backup.sh", &[&dir, &wal, "-h", "127.0.0.1", "-p", &port.to_string(), "-U", "postgres"]);
    let base = base.lines().last().expect("the backup's folder").trim().to_owned();

    // Act: writes, the point in time, more writes, the archive brought up to date.
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let app = spawn_app_on(&url, |_| {}).await;
    let guild = app.guild("drill").await;
    let bidders = [app.funded_member(&guild, "ana", 1000).await.0, app.funded_member(&guild, "bob", 1000).await.0];
    let lot = app.open_lot(&guild, json!({"min_bid": 1})).await["id"].as_str().expect("lot id").to_owned();
    write(&app, &guild, &lot, &bidders, 1).await;
    let then = state_of(&app, &guild, &lot).await;
    let target = query(&url, "SELECT clock_timestamp()::text").await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    write(&app, &guild, &lot, &bidders, 2).await;
    assert_ne!(state_of(&app, &guild, &lot).await, then, "the later writes changed the state");
    let last = query(&url, "SELECT pg_walfile_name(pg_switch_wal())").await;
    let started = Instant::now();
    while query(&url, "SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver").await < last {
        assert!(started.elapsed() < Duration::from_secs(30), "the WAL was never archived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(app);

    // The restore: the base backup, the archive replayed to the target, promoted.
    let restored = drill.dir.join("restored");
    drill.run_script("restore.sh", &[&base, &wal, &target, &restored.display().to_string()]);
    let port = free_port();
    drill.start(&restored, port, None);
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let started = Instant::now();
    while query(&url, "SELECT pg_is_in_recovery()::text").await != "false" {
        assert!(started.elapsed() < Duration::from_secs(60), "the restored server never left recovery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert: the service on the restored cluster shows that time exactly.
    let app = spawn_app_on(&url, |_| {}).await;
    assert_eq!(state_of(&app, &guild, &lot).await, then);
    app.assert_ledger_consistent().await;
}
