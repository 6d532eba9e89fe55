//! Background jobs: a decay asked for over HTTP and carried out by a job
//! runner, once; `dkp worker` processes that share the job table, each job
//! claimed by one of them; and a worker killed by SIGKILL in the middle of a
//! job, whose job another worker finishes with its effect applied once.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::both_stores;
use crate::support::{Guild, Kind, TestApp, spawn_app_with};

both_stores!(
    a_decay_is_queued_and_applied_once,
    a_decay_asked_wrongly_changes_nothing,
    a_job_run_twice_applies_once,
    a_job_no_run_ever_finished_is_given_up,
    a_decay_of_the_largest_balances_the_ledger_holds_completes,
);

async fn decay(app: &TestApp, guild: &Guild, token: &str, body: Value, key: Option<&str>) -> crate::support::Reply {
    let mut call =
        app.post(&format!("/api/v1/guilds/{}/pools/{}/decay", guild.slug, guild.pool)).token(token).json(body);
    if let Some(key) = key {
        call = call.header("idempotency-key", key);
    }
    call.send().await
}

/// Polls a job until it is no longer queued, for at most 10 s.
async fn settled(app: &TestApp, guild: &Guild, job_id: &str) -> Value {
    for _ in 0..200 {
        let reply = app.get(&format!("/api/v1/guilds/{}/jobs/{job_id}", guild.slug)).token(&guild.owner.token).send();
        let job = reply.await.expect(200).json["job"].clone();
        if job["status"] != "queued" {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {job_id} never finished");
}

pub(crate) async fn decay_entries(app: &TestApp, guild: &Guild) -> usize {
    let reply =
        app.get(&format!("/api/v1/guilds/{}/pools/{}/entries", guild.slug, guild.pool)).token(&guild.owner.token);
    let entries = reply.send().await.expect(200).json["entries"].clone();
    entries.as_array().expect("entries").iter().filter(|e| e["kind"] == "decay").count()
}

async fn a_decay_is_queued_and_applied_once(app: TestApp) {
    let _runner = app.start_jobs();
    let guild = app.guild("elk").await;
    let (_, ana) = app.funded_member(&guild, "ana", 1000).await;
    let (bob_user, bob) = app.funded_member(&guild, "bob", 100).await;
    // Bob leads a lot with 95 of his 100: decay takes its percent all the same.
    let lot = app.open_lot(&guild, json!({})).await;
    app.bid(&guild, lot["id"].as_str().unwrap(), &bob_user.token, json!(95)).await.expect(201);

    let first = decay(&app, &guild, &guild.owner.token, json!({"percent": "10"}), Some("decay-1")).await.expect(202);
    let job_id = first.json["job"]["id"].as_str().unwrap().to_owned();
    assert_eq!(first.json["job"]["kind"], "decay");
    let job = settled(&app, &guild, &job_id).await;
    assert_eq!(job["status"], "done", "{job}");
    assert!(job["result"]["entry_id"].is_string());

    let repeat = decay(&app, &guild, &guild.owner.token, json!({"percent": "10"}), Some("decay-1")).await.expect(202);
    assert_eq!(repeat.json["job"]["id"], first.json["job"]["id"], "the same key is the same job");
    decay(&app, &guild, &guild.owner.token, json!({"percent": "20"}), Some("decay-1"))
        .await
        .expect_error(422, "idempotency_key_reused");

    let wallets = app.wallets(&guild).await;
    assert_eq!(wallets[&ana].0, "900.00");
    assert_eq!(wallets[&bob], ("90.00".to_owned(), "95.00".to_owned()), "decay reads balances, not holds");
    assert_eq!(decay_entries(&app, &guild).await, 1);
    app.assert_ledger_consistent().await;
}

async fn a_decay_asked_wrongly_changes_nothing(app: TestApp) {
    let guild = app.guild("owl").await;
    let (member, _) = app.funded_member(&guild, "ana", 1000).await;
    for percent in [json!("0"), json!("100.01"), json!("-5"), json!("ten"), json!(2.5)] {
        decay(&app, &guild, &guild.owner.token, json!({"percent": percent}), None)
            .await
            .expect_error(422, "invalid_amount");
    }
    decay(&app, &guild, &member.token, json!({"percent": "5"}), None).await.expect_error(403, "forbidden");
    let outsider = app.register("outsider").await;
    decay(&app, &guild, &outsider.token, json!({"percent": "5"}), None).await.expect_error(404, "not_found");
    let missing = format!("/api/v1/guilds/{}/jobs/{}", guild.slug, uuid::Uuid::now_v7());
    app.get(&missing).token(&guild.owner.token).send().await.expect_error(404, "not_found");
    // Whatever a runner finds due now, none of it is a decay.
    app.run_due_jobs().await;
    assert_eq!(decay_entries(&app, &guild).await, 0);
}

async fn a_job_run_twice_applies_once(app: TestApp) {
    // No runner in this instance: the test runs the job itself, twice, as
    // two runners would after the first died between its commit and its
    // record of the job's end.
    let app = second_without_jobs(&app).await;
    let guild = app.guild("yak").await;
    let (_, ana) = app.funded_member(&guild, "ana", 1000).await;
    let queued = decay(&app, &guild, &guild.owner.token, json!({"percent": "50"}), None).await.expect(202);
    let job_id = queued.json["job"]["id"].as_str().unwrap();
    let guild_id = app.store.membership(&guild.slug, uuid::Uuid::parse_str(&guild.owner.id).unwrap()).await;
    let guild_id = guild_id.expect("membership").expect("member").guild.id;
    let job = app.store.job(guild_id, uuid::Uuid::parse_str(job_id).unwrap()).await.expect("job").expect("found");

    let first = app.service.run_decay(&job).await;
    let second = app.service.run_decay(&job).await;
    let entry = |end: dkp::model::JobEnd| match end {
        dkp::model::JobEnd::Done(result) => result["entry_id"].clone(),
        other => panic!("not done: {other:?}"),
    };
    assert_eq!(entry(first), entry(second), "the second run finds the first one's entry");
    assert_eq!(app.balances(&guild).await[&ana], "500.00");
    assert_eq!(decay_entries(&app, &guild).await, 1);
}

async fn a_job_no_run_ever_finished_is_given_up(app: TestApp) {
    let app = second_without_jobs(&app).await;
    let guild = app.guild("gnu").await;
    let (_, ana) = app.funded_member(&guild, "ana", 1000).await;
    let queued = decay(&app, &guild, &guild.owner.token, json!({"percent": "50"}), None).await.expect(202);
    let job_id = queued.json["job"]["id"].as_str().unwrap().to_owned();
    // As if ten runners had claimed it and died each time.
    app.execute("UPDATE jobs SET attempts = 10").await.expect("update");

    app.run_due_jobs().await;

    let job = settled(&app, &guild, &job_id).await;
    assert_eq!(job["status"], "failed");
    assert_eq!(job["error"], "no run finished; given up");
    assert_eq!(app.balances(&guild).await[&ana], "1000.00", "a job given up did nothing");
}

async fn a_decay_of_the_largest_balances_the_ledger_holds_completes(app: TestApp) {
    let guild = app.guild("orc").await;
    let (_, ana) = app.member(&guild, "ana", "member").await;
    let (_, bob) = app.member(&guild, "bob", "member").await;
    let award = format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool);
    for _ in 0..3 {
        let body = json!({"member_ids": [ana, bob], "amount": "1000000000000", "reason": "r"});
        app.post(&award).token(&guild.owner.token).json(body).send().await.expect(201);
    }
    let queued = decay(&app, &guild, &guild.owner.token, json!({"percent": "50"}), None).await.expect(202);

    app.run_due_jobs().await;

    let job = settled(&app, &guild, queued.json["job"]["id"].as_str().unwrap()).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(app.balances(&guild).await[&ana], "1500000000000.00");
    app.assert_ledger_consistent().await;
}

/// The same store as `app`, served by an instance that runs no jobs.
async fn second_without_jobs(app: &TestApp) -> TestApp {
    match app.kind {
        Kind::Postgres => app.second_instance_with(|config| config.jobs = false).await,
        // SQLite serves one instance: make a fresh one without jobs instead.
        Kind::Sqlite => spawn_app_with(Kind::Sqlite, |config| config.jobs = false).await,
    }
}

/// A `dkp worker` process on the test's database.
pub(crate) struct Worker(Child);

impl Worker {
    pub(crate) fn start(app: &TestApp, lease_s: u64) -> Worker {
        Worker::start_with(app, lease_s, &[])
    }

    /// A worker with more environment (`NATS_URL`, say).
    pub(crate) fn start_with(app: &TestApp, lease_s: u64, env: &[(&str, &str)]) -> Worker {
        let child = Command::new(env!("CARGO_BIN_EXE_dkp"))
            .args(["worker", "--job-lease-s", &lease_s.to_string()])
            .env("DATABASE_URL", &app.url)
            .envs(env.iter().copied())
            .env("DKP_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dkp worker");
        Worker(child)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }

    /// SIGKILL: no chance to finish anything.
    pub(crate) fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A connection holding every member account locked, in a transaction it
/// began, so that a ledger write blocks inside its own transaction until
/// `release`.
pub(crate) struct Blocker(sqlx::PgConnection);

impl Blocker {
    pub(crate) async fn hold_accounts(app: &TestApp) -> Blocker {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&app.url).await.expect("connect");
        sqlx::query("BEGIN").execute(&mut conn).await.expect("begin");
        sqlx::query("SELECT id FROM accounts WHERE member_id IS NOT NULL FOR UPDATE")
            .fetch_all(&mut conn)
            .await
            .expect("lock accounts");
        Blocker(conn)
    }

    /// Waits (10 s at most) until `worker` has claimed the job and is stuck
    /// in it, waiting for the accounts held.
    pub(crate) async fn wait_for(&mut self, app: &TestApp, job_id: &str, worker: &Worker) {
        let name = format!("worker-{}-", worker.pid());
        for _ in 0..200 {
            let (_, attempts, locked_by) = job_row(app, job_id).await;
            let waiting: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_locks WHERE NOT granted")
                .fetch_one(&mut self.0)
                .await
                .expect("locks");
            if attempts == 1 && locked_by.as_deref().is_some_and(|l| l.starts_with(&name)) && waiting > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the worker never got into the job");
    }

    pub(crate) async fn release(mut self) {
        sqlx::query("ROLLBACK").execute(&mut self.0).await.expect("release");
    }
}

pub(crate) async fn job_row(app: &TestApp, job_id: &str) -> (String, i64, Option<String>) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(&app.url).await.expect("connect");
    let row: (String, i32, Option<String>) =
        sqlx::query_as("SELECT state, attempts, locked_by FROM jobs WHERE id = $1::uuid")
            .bind(job_id)
            .fetch_one(&mut conn)
            .await
            .expect("job row");
    (row.0, i64::from(row.1), row.2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_leaves_it_to_another_and_it_applies_once() {
    let app = spawn_app_with(Kind::Postgres, |config| config.jobs = false).await;
    let guild = app.guild("moose").await;
    let (_, ana) = app.funded_member(&guild, "ana", 1000).await;

    // Hold the pool's member accounts, so the worker's decay blocks inside its transaction.
    let mut blocker = Blocker::hold_accounts(&app).await;
    let queued = decay(&app, &guild, &guild.owner.token, json!({"percent": "10"}), None).await.expect(202);
    let job_id = queued.json["job"]["id"].as_str().unwrap().to_owned();
    let mut first = Worker::start(&app, 2);
    blocker.wait_for(&app, &job_id, &first).await;

    first.kill();
    blocker.release().await;
    assert_eq!(decay_entries(&app, &guild).await, 0, "the killed worker's transaction never committed");

    let _second = Worker::start(&app, 2);
    let job = settled(&app, &guild, &job_id).await;
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["attempts"], 2, "claimed once by each worker");
    assert_eq!(app.balances(&guild).await[&ana], "900.00", "applied exactly once");
    assert_eq!(decay_entries(&app, &guild).await, 1);
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_the_jobs_each_claimed_once_and_close_lots_on_time() {
    let app = spawn_app_with(Kind::Postgres, |config| config.jobs = false).await;
    let guild = app.guild("bison").await;
    let (ana_user, ana) = app.funded_member(&guild, "ana", 1000).await;
    let lot = app.open_lot(&guild, json!({"duration_s": 1})).await;
    let lot_id = lot["id"].as_str().unwrap();
    app.bid(&guild, lot_id, &ana_user.token, json!(100)).await.expect(201);
    let mut jobs = Vec::new();
    for n in 0..12 {
        let reply = decay(&app, &guild, &guild.owner.token, json!({"percent": "1"}), Some(&format!("d{n}"))).await;
        jobs.push(reply.expect(202).json["job"]["id"].as_str().unwrap().to_owned());
    }
    let _workers = [Worker::start(&app, 30), Worker::start(&app, 30), Worker::start(&app, 30)];

    for job_id in &jobs {
        let job = settled(&app, &guild, job_id).await;
        assert_eq!((job["status"].as_str(), job["attempts"].as_i64()), (Some("done"), Some(1)), "{job}");
    }
    assert_eq!(decay_entries(&app, &guild).await, 12);
    for _ in 0..100 {
        let seen = app.get(&format!("/api/v1/guilds/{}/lots/{lot_id}", guild.slug)).token(&ana_user.token);
        if seen.send().await.expect(200).json["lot"]["status"] == "closed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let closed = app.get(&format!("/api/v1/guilds/{}/lots/{lot_id}", guild.slug)).token(&ana_user.token);
    let closed = closed.send().await.expect(200).json["lot"].clone();
    assert_eq!((closed["status"].as_str(), closed["price"].as_str()), (Some("closed"), Some("100.00")));
    // 1000 less the price, then 1 % at a time of what was not held; exact
    // whatever order the workers ran the decays in, as each takes 1 % of the
    // balance it finds, rounded down.
    let balance = app.balances(&guild).await[&ana].clone();
    let balance = dkp_core::Points::parse(&balance).expect("points");
    assert!(balance < dkp_core::Points::from_stored(900_00), "decays applied: {balance}");
    app.assert_ledger_consistent().await;
}
