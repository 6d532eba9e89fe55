//! A real streaming replica (`DATABASE_READ_URL`): lag-tolerant reads are
//! served by it; a caller who wrote reads from the primary until the replica
//! has replayed their write, on any instance; writes go to the primary; reads
//! fall back to the primary while the replica is gone. Replay is paused on the
//! replica to make its lag visible.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use dkp::config::Secret;
use serde_json::json;

use crate::servers::Cluster;
use crate::services::free_port;
use crate::support::{Guild, Kind, Reply, TestApp, fresh_database, spawn_app, spawn_app_on, temp_dir};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_tolerant_reads_go_to_the_replica_and_a_writer_sees_their_writes() {
    let mut cluster = Cluster::start();
    let (primary, replica) = (cluster.primary_url(), cluster.replica_url());
    // Arrange: a guild set up through an instance without the replica, then two instances reading from it.
    let setup = spawn_app_on(&primary, |_| {}).await;
    let guild = setup.guild("replicas").await;
    let (member, member_id) = setup.member(&guild, "rian", "member").await;
    let with_replica = |config: &mut dkp::config::Config| config.read_replica = Some(Secret::new(&replica));
    let a = spawn_app_on(&primary, with_replica).await;
    let b = spawn_app_on(&primary, with_replica).await;
    award(&a, &guild, &member_id, 10).await;
    eventually("the replica replays the first award", || async {
        balance(&a, &guild, &member.token, None, &member_id).await == "10.00"
    })
    .await;

    // (a) With replay paused, a read without a mark is served by the replica and lags;
    // the writer's mark sends their reads to the primary, on either instance.
    pause_replay(&replica).await;
    let mark = award(&a, &guild, &member_id, 5).await;
    let on_replica = reads_on(&a, "replica").await;
    assert_eq!(balance(&a, &guild, &member.token, None, &member_id).await, "10.00", "the paused replica answers");
    assert!(reads_on(&a, "replica").await > on_replica, "counted as a replica read");
    let owner = &guild.owner.token;
    assert_eq!(balance(&a, &guild, owner, Some(&mark), &member_id).await, "15.00", "the writer sees their write");
    assert_eq!(balance(&b, &guild, owner, Some(&mark), &member_id).await, "15.00", "on another instance too");
    let history = format!("/api/v1/guilds/{}/pools/{}/entries", guild.slug, guild.pool);
    let by_cookie = a.get(&history).token(owner).header("cookie", &format!("dkp_read_after={mark}")).send().await;
    assert_eq!(by_cookie.expect(200).json["entries"].as_array().map(Vec::len), Some(2), "the cookie works as well");
    let lagging = a.get(&history).token(owner).send().await.expect(200);
    assert_eq!(lagging.json["entries"].as_array().map(Vec::len), Some(1), "the history lags on the replica");

    // (b) Writes went to the primary: it has both awards while the paused replica has one.
    assert_eq!(count_entries(&primary).await, 2);
    assert_eq!(count_entries(&replica).await, 1);
    resume_replay(&replica).await;
    eventually("the replica catches up", || async {
        balance(&a, &guild, &member.token, None, &member_id).await == "15.00"
    })
    .await;
    let on_replica = reads_on(&a, "replica").await;
    eventually("once the replica has replayed the mark, the writer reads from it again", || async {
        balance(&a, &guild, owner, Some(&mark), &member_id).await == "15.00"
            && reads_on(&a, "replica").await > on_replica
    })
    .await;

    // (c) With the replica stopped, reads fall back to the primary, and readiness names the replica.
    cluster.stop_replica();
    let fallbacks = counter(&a, "dkp_db_replica_fallbacks_total").await;
    assert_eq!(balance(&a, &guild, &member.token, None, &member_id).await, "15.00", "served by the primary");
    assert!(counter(&a, "dkp_db_replica_fallbacks_total").await > fallbacks, "the fallback is counted");
    assert_eq!(balance(&a, &guild, &member.token, None, &member_id).await, "15.00");
    let ready = a.get("/health/ready").send().await.expect(503);
    assert_eq!(ready.json["failing"], "database_read");
    cluster.start_replica();
    eventually("readiness recovers with the replica", || async {
        let ready = a.get("/health/ready").send().await;
        ready.status == 200 && ready.json["checks"]["database_read"] == "ok"
    })
    .await;
    let on_replica = reads_on(&a, "replica").await;
    eventually("reads go back to the replica", || async {
        balance(&a, &guild, &member.token, None, &member_id).await == "15.00"
            && reads_on(&a, "replica").await > on_replica
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_replica_writes_carry_no_mark() {
    let app = spawn_app(Kind::Postgres).await;
    let guild = app.guild("nomark").await;
    let reply = app
        .post(&format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool))
        .token(&guild.owner.token)
        .json(json!({"member_ids": [guild.owner_member], "amount": 1, "reason": "r"}))
        .send()
        .await
        .expect(201);
    assert!(reply.headers.get("x-dkp-read-after").is_none());
    let ready = app.get("/health/ready").send().await.expect(200);
    assert!(ready.json["checks"].get("database_read").is_none(), "{}", ready.text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_unreachable_read_url_stops_start_up_with_one_line() {
    let dir = temp_dir();
    let (_, primary) = fresh_database(Kind::Postgres, &dir).await;
    let unreachable = format!("postgres://postgres:hunter2@127.0.0.1:{}/replica", free_port());
    let cases = [
        (primary.as_str(), unreachable.as_str(), "cannot connect to the read replica (DATABASE_READ_URL)"),
        (primary.as_str(), "mysql://replica/db", "DATABASE_READ_URL must be a postgres:// URL"),
        ("", "postgres://replica/db", "DATABASE_READ_URL needs DATABASE_URL to be PostgreSQL"),
    ];
    for (database, read, expected) in cases {
        let output = Command::new(env!("CARGO_BIN_EXE_dkp"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"))
            .env("DATABASE_URL", database)
            .env("DATABASE_READ_URL", read)
            .env("DKP_LOG", "error")
            .stdin(Stdio::null())
            .output()
            .expect("run dkp");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{read}: {stderr}");
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("dkp:")).collect();
        assert_eq!(lines.len(), 1, "{read}: {stderr}");
        assert!(lines[0].contains(expected), "{read}: {stderr}");
        assert!(!stderr.contains("hunter2") && !stderr.contains("panicked"), "{stderr}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Awards `amount` to `member` through `app`; the read-your-writes mark of the answer.
async fn award(app: &TestApp, guild: &Guild, member: &str, amount: i64) -> String {
    let reply = app
        .post(&format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool))
        .token(&guild.owner.token)
        .json(json!({"member_ids": [member], "amount": amount, "reason": "raid"}))
        .send()
        .await
        .expect(201);
    let mark = reply.headers.get("x-dkp-read-after").and_then(|v| v.to_str().ok()).expect("a write carries a mark");
    let cookies: Vec<_> = reply.headers.get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).collect();
    assert!(cookies.iter().any(|c| c.starts_with(&format!("dkp_read_after={mark};"))), "{cookies:?}");
    mark.to_owned()
}

/// `member`'s balance in the standings read by `token`, sending `mark` if given.
async fn balance(app: &TestApp, guild: &Guild, token: &str, mark: Option<&str>, member: &str) -> String {
    let mut call = app.get(&format!("/api/v1/guilds/{}/pools/{}/standings", guild.slug, guild.pool)).token(token);
    if let Some(mark) = mark {
        call = call.header("x-dkp-read-after", mark);
    }
    let reply: Reply = call.send().await.expect(200);
    let standings = reply.json["standings"].as_array().cloned().unwrap_or_default();
    let row = standings.iter().find(|s| s["member_id"] == member).expect("the member stands");
    row["balance"].as_str().unwrap_or("").to_owned()
}

/// The value of a counter in the process's metrics (summed over its labels).
async fn counter(app: &TestApp, name: &str) -> f64 {
    dkp_bench::counter_total(&app.get("/metrics").send().await.expect(200).text, name)
}

/// How many lag-tolerant reads ran on `target`.
async fn reads_on(app: &TestApp, target: &str) -> f64 {
    let metrics = app.get("/metrics").send().await.expect(200).text;
    let prefix = format!("dkp_db_reads_total{{target=\"{target}\"}} ");
    metrics.lines().find_map(|l| l.strip_prefix(&prefix)?.parse().ok()).unwrap_or(0.0)
}

async fn sql(url: &str, statement: &'static str) -> Option<String> {
    use sqlx::{Connection, Row};
    let mut conn = sqlx::PgConnection::connect(url).await.expect("connect");
    let row = sqlx::raw_sql(statement).fetch_optional(&mut conn).await.expect(statement);
    row.and_then(|row| row.try_get::<String, _>(0).ok())
}

async fn count_entries(url: &str) -> i64 {
    let count = sql(url, "SELECT CAST(COUNT(*) AS TEXT) FROM entries").await.expect("a count");
    count.parse().expect("a number")
}

async fn pause_replay(replica: &str) {
    sql(replica, "SELECT pg_wal_replay_pause()").await;
    eventually("replay pauses", || async {
        sql(replica, "SELECT pg_get_wal_replay_pause_state()").await.as_deref() == Some("paused")
    })
    .await;
}

async fn resume_replay(replica: &str) {
    sql(replica, "SELECT pg_wal_replay_resume()").await;
}

/// Waits up to 10 s for `check` to hold.
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
