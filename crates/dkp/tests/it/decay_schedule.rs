//! Decay that runs by itself: a pool's schedule run once per period by job
//! runners racing for it, and by `dkp worker` processes one of which is
//! killed in the middle of the run; the preview that writes nothing; a
//! scheduled decay undone by reversing its entry; a schedule asked wrongly.

use std::time::Duration;

use dkp::clock::Clock;
use dkp::model::{Job, JobEnd, Ts};
use serde_json::{Value, json};

use crate::both_stores;
use crate::jobs::{Blocker, Worker, decay_entries, job_row};
use crate::support::{Guild, Kind, TestApp, spawn_app_with};

both_stores!(
    a_schedule_runs_once_per_period_however_many_runners_race,
    a_decay_preview_writes_nothing_and_is_what_the_decay_then_takes,
    reversing_a_scheduled_decay_restores_every_balance,
    a_schedule_asked_wrongly_changes_nothing,
);

const WEEK: Duration = Duration::from_secs(7 * 86_400);

fn schedule_path(guild: &Guild) -> String {
    format!("/api/v1/guilds/{}/pools/{}/decay/schedule", guild.slug, guild.pool)
}

fn rfc3339(at: Ts) -> Value {
    serde_json::to_value(at).expect("a time")
}

async fn set_schedule(app: &TestApp, guild: &Guild, percent: &str, next_at: Ts) -> Value {
    let body = json!({"percent": percent, "every_days": 7, "next_at": rfc3339(next_at)});
    let reply = app.put(&schedule_path(guild)).token(&guild.owner.token).json(body).send().await.expect(200);
    reply.json["schedule"].clone()
}

async fn schedule(app: &TestApp, guild: &Guild) -> Value {
    app.get(&schedule_path(guild)).token(&guild.owner.token).send().await.expect(200).json["schedule"].clone()
}

/// The scheduled decay jobs, earliest run first.
async fn scheduled_jobs(app: &TestApp, guild: &Guild) -> Vec<Job> {
    let owner = uuid::Uuid::parse_str(&guild.owner.id).expect("an id");
    let guild_id = app.store.membership(&guild.slug, owner).await.expect("read").expect("a member").guild.id;
    let db = dkp::store::connect(&app.location).await.expect("connect");
    let rows = db
        .sql("SELECT id FROM jobs WHERE kind = 'scheduled_decay' ORDER BY run_at")
        .fetch_all()
        .await
        .expect("the jobs");
    db.close().await;
    let mut jobs = Vec::new();
    for row in rows {
        let id: uuid::Uuid = row.get("id").expect("an id");
        jobs.push(app.store.job(guild_id, id).await.expect("read").expect("a job"));
    }
    jobs
}

fn entry_of(end: JobEnd) -> Value {
    match end {
        JobEnd::Done(result) => result["entry_id"].clone(),
        other => panic!("not done: {other:?}"),
    }
}

async fn a_schedule_runs_once_per_period_however_many_runners_race(app: TestApp) {
    let guild = app.guild("elk").await;
    let (_, ana) = app.funded_member(&guild, "ana", 1000).await;
    let first = app.clock.now().plus(Duration::from_secs(3600));
    let set = set_schedule(&app, &guild, "10", first).await;
    assert_eq!(set, json!({"percent": "10.00", "every_days": 7, "next_at": rfc3339(first)}));
    let pools = app.get(&format!("/api/v1/guilds/{}/pools", guild.slug)).token(&guild.owner.token).send().await;
    assert_eq!(pools.expect(200).json["pools"][0]["decay_schedule"], set);
    app.run_due_jobs().await;
    assert_eq!(decay_entries(&app, &guild).await, 0, "not due yet");

    app.clock.advance(Duration::from_secs(3600));
    tokio::join!(app.run_due_jobs(), app.run_due_jobs());

    assert_eq!(decay_entries(&app, &guild).await, 1);
    assert_eq!(app.balances(&guild).await[&ana], "900.00");
    assert_eq!(schedule(&app, &guild).await["next_at"], rfc3339(first.plus(WEEK)));
    // The first period run again, as a runner whose lease ran out would: nothing.
    let jobs = scheduled_jobs(&app, &guild).await;
    assert_eq!(entry_of(app.service.run_scheduled_decay(&jobs[0]).await), Value::Null);

    app.clock.advance(WEEK);
    let (one, other) =
        tokio::join!(app.service.run_scheduled_decay(&jobs[1]), app.service.run_scheduled_decay(&jobs[1]));

    let entries = [entry_of(one), entry_of(other)];
    assert_eq!(
        entries.iter().filter(|entry| entry.is_string()).count(),
        1,
        "one of the two runs applied it: {entries:?}"
    );
    assert_eq!(app.balances(&guild).await[&ana], "810.00");
    app.run_due_jobs().await;
    assert_eq!(decay_entries(&app, &guild).await, 2, "the runner found the period done");
    assert_eq!(schedule(&app, &guild).await["next_at"], rfc3339(first.plus(WEEK * 2)));
    app.assert_ledger_consistent().await;
}

async fn a_decay_preview_writes_nothing_and_is_what_the_decay_then_takes(app: TestApp) {
    let guild = app.guild("owl").await;
    let (ana_user, ana) = app.funded_member(&guild, "ana", 1000).await;
    let (_, bob) = app.member(&guild, "bob", "member").await;
    let award = json!({"member_ids": [bob], "amount": "100.55", "reason": "raid"});
    let awards = format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool);
    app.post(&awards).token(&guild.owner.token).json(award).send().await.expect(201);
    let preview = format!("/api/v1/guilds/{}/pools/{}/decay/preview", guild.slug, guild.pool);
    let before = app.balances(&guild).await;

    let changes = app.get(&format!("{preview}?percent=10")).token(&ana_user.token).send().await.expect(200);

    let expected = json!([{"member_id": ana, "amount": "-100.00"}, {"member_id": bob, "amount": "-10.05"}]);
    assert_eq!(changes.json["changes"], expected, "rounded down; nobody with nothing to give");
    assert_eq!(app.balances(&guild).await, before, "nothing written");
    assert_eq!(decay_entries(&app, &guild).await, 0);
    for (query, code) in [
        ("?percent=0", "invalid_amount"),
        ("?percent=100.01", "invalid_amount"),
        ("?percent=1.005", "invalid_amount"),
        ("?percent=ten", "invalid_amount"),
        ("", "invalid_field"),
    ] {
        app.get(&format!("{preview}{query}")).token(&ana_user.token).send().await.expect_error(422, code);
    }
    let stranger = app.register("stranger").await;
    app.get(&format!("{preview}?percent=10")).token(&stranger.token).send().await.expect_error(404, "not_found");

    let decay = format!("/api/v1/guilds/{}/pools/{}/decay", guild.slug, guild.pool);
    app.post(&decay).token(&guild.owner.token).json(json!({"percent": "10"})).send().await.expect(202);
    app.run_due_jobs().await;

    let entries = format!("/api/v1/guilds/{}/pools/{}/entries", guild.slug, guild.pool);
    let entries = app.get(&entries).token(&guild.owner.token).send().await.expect(200);
    let postings = entries.json["entries"][0]["postings"].as_array().expect("postings").clone();
    let members: Vec<&Value> = postings.iter().filter(|p| p.get("member_id").is_some()).collect();
    assert_eq!(json!(members), expected, "the decay took what the preview said");
    set_schedule(&app, &guild, "50", app.clock.now().plus(WEEK)).await;
    let by_schedule = app.get(&preview).token(&ana_user.token).send().await.expect(200);
    assert_eq!(
        by_schedule.json["changes"][0],
        json!({"member_id": ana, "amount": "-450.00"}),
        "the schedule's percent"
    );
}

async fn reversing_a_scheduled_decay_restores_every_balance(app: TestApp) {
    let guild = app.guild("yak").await;
    let (_, ana) = app.funded_member(&guild, "ana", 1000).await;
    let (_, bob) = app.funded_member(&guild, "bob", 33).await;
    set_schedule(&app, &guild, "12.5", app.clock.now()).await;
    app.run_due_jobs().await;
    let decayed = app.balances(&guild).await;
    assert_eq!((decayed[&ana].as_str(), decayed[&bob].as_str()), ("875.00", "28.88"));
    let entries = format!("/api/v1/guilds/{}/pools/{}/entries", guild.slug, guild.pool);
    let entries = app.get(&entries).token(&guild.owner.token).send().await.expect(200);
    let decay = entries.json["entries"][0].clone();
    assert_eq!((decay["kind"].as_str(), decay["reason"].as_str()), (Some("decay"), Some("scheduled decay of 12.50%")));
    let reverse = format!("/api/v1/guilds/{}/entries/{}/reverse", guild.slug, decay["id"].as_str().unwrap());

    let reversal = app.post(&reverse).token(&guild.owner.token).json(json!({"reason": "too soon"})).send().await;

    assert_eq!(reversal.expect(201).json["entry"]["postings"].as_array().map(Vec::len), Some(3), "one entry undoes it");
    let restored = app.balances(&guild).await;
    assert_eq!((restored[&ana].as_str(), restored[&bob].as_str()), ("1000.00", "33.00"));
    app.post(&reverse)
        .token(&guild.owner.token)
        .json(json!({"reason": "again"}))
        .send()
        .await
        .expect_error(409, "already_reversed");
    app.assert_ledger_consistent().await;
}

async fn a_schedule_asked_wrongly_changes_nothing(app: TestApp) {
    let guild = app.guild("gnu").await;
    let (_, ana) = app.funded_member(&guild, "ana", 1000).await;
    let (officer, _) = app.member(&guild, "olaf", "officer").await;
    let path = schedule_path(&guild);
    let at = rfc3339(app.clock.now().plus(Duration::from_secs(60)));
    let good = json!({"percent": "10", "every_days": 7, "next_at": at});
    let refused = [
        (json!({"percent": "0", "every_days": 7, "next_at": at}), 422, "invalid_amount"),
        (json!({"percent": "100.01", "every_days": 7, "next_at": at}), 422, "invalid_amount"),
        (json!({"percent": "1.005", "every_days": 7, "next_at": at}), 422, "invalid_amount"),
        (json!({"percent": -5, "every_days": 7, "next_at": at}), 422, "invalid_amount"),
        (json!({"percent": "10", "every_days": 0, "next_at": at}), 422, "invalid_field"),
        (json!({"percent": "10", "every_days": 3651, "next_at": at}), 422, "invalid_field"),
        (json!({"percent": "10", "every_days": 7.5, "next_at": at}), 422, "invalid_field"),
        (json!({"percent": "10", "every_days": "7", "next_at": at}), 422, "invalid_field"),
        (json!({"percent": "10", "every_days": 7, "next_at": "tomorrow"}), 422, "invalid_field"),
        (json!({"percent": "10", "every_days": 7}), 400, "invalid_json"),
        (json!({"percent": "10", "every_days": 7, "next_at": at, "hour": 3}), 400, "invalid_json"),
    ];
    for (body, status, code) in refused {
        app.put(&path).token(&guild.owner.token).json(body).send().await.expect_error(status, code);
    }
    app.put(&path).token(&officer.token).json(good.clone()).send().await.expect_error(403, "forbidden");
    let stranger = app.register("stranger").await;
    app.put(&path).token(&stranger.token).json(good.clone()).send().await.expect_error(404, "not_found");
    let unknown = format!("/api/v1/guilds/{}/pools/{}/decay/schedule", guild.slug, uuid::Uuid::now_v7());
    app.put(&unknown).token(&guild.owner.token).json(good.clone()).send().await.expect_error(404, "not_found");
    assert_eq!(schedule(&app, &guild).await, Value::Null);
    assert!(scheduled_jobs(&app, &guild).await.is_empty(), "nothing planned");

    for _ in 0..2 {
        app.put(&path).token(&guild.owner.token).json(good.clone()).send().await.expect(200);
    }
    assert_eq!(scheduled_jobs(&app, &guild).await.len(), 1, "the same schedule set twice is one");
    let ended = app.put(&path).token(&guild.owner.token).json(Value::Null).send().await.expect(200);
    assert_eq!(ended.json["schedule"], Value::Null);
    app.clock.advance(Duration::from_secs(120));
    app.run_due_jobs().await;
    assert_eq!(decay_entries(&app, &guild).await, 0, "an ended schedule runs no more");
    assert_eq!(app.balances(&guild).await[&ana], "1000.00");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_scheduled_decay_leaves_the_period_to_another_and_it_applies_once() {
    let app = spawn_app_with(Kind::Postgres, |config| config.jobs = false).await;
    let guild = app.guild("moose").await;
    let (_, ana) = app.funded_member(&guild, "ana", 1000).await;
    let mut blocker = Blocker::hold_accounts(&app).await;
    // Due now on the workers' clock, which is the machine's.
    let period = app.clock.now();
    set_schedule(&app, &guild, "10", period).await;
    let job_id = scheduled_jobs(&app, &guild).await[0].id.to_string();
    let mut first = Worker::start(&app, 2);
    blocker.wait_for(&app, &job_id, &first).await;

    first.kill();
    blocker.release().await;
    assert_eq!(decay_entries(&app, &guild).await, 0, "the killed worker's transaction never committed");
    let _racing = [Worker::start(&app, 2), Worker::start(&app, 2)];

    let mut moved = false;
    for _ in 0..200 {
        if schedule(&app, &guild).await["next_at"] == rfc3339(period.plus(WEEK))
            && job_row(&app, &job_id).await.0 == "done"
        {
            moved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(moved, "no worker ran the period");
    assert_eq!(app.balances(&guild).await[&ana], "900.00", "applied exactly once");
    assert_eq!(decay_entries(&app, &guild).await, 1);
    assert_eq!(scheduled_jobs(&app, &guild).await.len(), 2, "the next period planned");
    app.assert_ledger_consistent().await;
}
