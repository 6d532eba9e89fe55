//! A pool's earning rules and a raid's award: the formula, corrections that
//! write only the difference, and an award that pays once however often it
//! is asked for, also by racing requests.

use std::sync::Arc;

use serde_json::{Value, json};

use super::{attend, award, kill, member_postings, new_raid, pool_path, present, raid_path, set_rules, standby};
use crate::both_stores;
use crate::support::{Guild, Kind, TestApp, spawn_app};

both_stores!(
    owners_set_a_pools_rules_and_everyone_reads_them,
    rules_with_three_decimals_a_negative_amount_or_a_percent_beyond_100_change_nothing,
    the_award_pays_each_kill_coming_on_time_hours_rounded_down_and_the_standby_share,
    a_correction_pays_a_forgotten_raider_once_and_a_removed_kill_takes_points_back,
    a_raid_awarded_twice_pays_once_and_a_repeated_key_replays_the_first_answer,
    racing_awards_under_different_keys_pay_once,
    a_reversed_raid_award_is_paid_again_by_the_next_award,
    rules_changed_after_the_first_award_do_not_reprice_the_raid,
);

/// 10 per kill, 5 on time, 1.00 per hour, standby 50 %.
fn rules() -> Value {
    json!({"boss_kill": 10, "on_time": "5", "per_hour": "1.00", "standby_percent": 50})
}

/// A guild with the owner's rules and members ana, bob and cyd; their ids.
async fn raiders(app: &TestApp) -> (Guild, [String; 3]) {
    let guild = app.guild("owls").await;
    set_rules(app, &guild, &guild.pool, rules()).await.expect(200);
    let (_, a) = app.member(&guild, "ana", "member").await;
    let (_, b) = app.member(&guild, "bob", "member").await;
    let (_, c) = app.member(&guild, "cyd", "member").await;
    (guild, [a, b, c])
}

/// A raid of the guild's pool with two kills and ana present 90 minutes on
/// time (26.50), bob present 61 minutes late (21.01), cyd on standby 121
/// minutes on time (13.50).
async fn night(app: &TestApp, guild: &Guild, [a, b, c]: &[String; 3]) -> String {
    let raid = new_raid(app, guild, &guild.pool).await;
    kill(app, guild, &raid, "Lucifron", "2026-11-26T18:30:00Z").await.expect(201);
    kill(app, guild, &raid, "Magmadar", "2026-11-26T19:00:00Z").await.expect(201);
    attend(app, guild, &raid, json!([present(a, 90, true), present(b, 61, false), standby(c, 121, true)]))
        .await
        .expect(200);
    raid
}

async fn entries_of_kind(app: &TestApp, guild: &Guild, kind: &str) -> Vec<Value> {
    let reply = app.get(&pool_path(guild, &guild.pool, "entries")).token(&guild.owner.token).send().await.expect(200);
    reply.json["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == kind).cloned().collect()
}

async fn owners_set_a_pools_rules_and_everyone_reads_them(app: TestApp) {
    let guild = app.guild("owls").await;
    let (officer, _) = app.member(&guild, "otto", "officer").await;
    let (member, _) = app.member(&guild, "ana", "member").await;
    let fresh = app.get(&pool_path(&guild, &guild.pool, "rules")).token(&member.token).send().await.expect(200);
    assert_eq!(fresh.json["rules"]["boss_kill"], "0.00", "a new pool pays nothing");

    let set = set_rules(
        &app,
        &guild,
        &guild.pool,
        json!({"boss_kill": "12.5", "on_time": 0, "per_hour": 3, "standby_percent": "33.33"}),
    );
    let set = set.await.expect(200);

    let expected = json!({"boss_kill": "12.50", "on_time": "0.00", "per_hour": "3.00", "standby_percent": "33.33"});
    assert_eq!(set.json["rules"], expected);
    let read = app.get(&pool_path(&guild, &guild.pool, "rules")).token(&member.token).send().await.expect(200);
    assert_eq!(read.json["rules"], expected);
    let pools = app.get(&format!("/api/v1/guilds/{}/pools", guild.slug)).token(&member.token).send().await.expect(200);
    assert_eq!(pools.json["pools"][0]["rules"], expected);
    assert_eq!(pools.json["pools"][0]["zero_sum"], false);
    let by_officer = app.put(&pool_path(&guild, &guild.pool, "rules")).token(&officer.token).json(rules()).send();
    by_officer.await.expect_error(403, "forbidden");
    let stranger = app.register("eve").await;
    let by_stranger = app.get(&pool_path(&guild, &guild.pool, "rules")).token(&stranger.token).send();
    by_stranger.await.expect_error(404, "not_found");
}

async fn rules_with_three_decimals_a_negative_amount_or_a_percent_beyond_100_change_nothing(app: TestApp) {
    let guild = app.guild("owls").await;
    set_rules(&app, &guild, &guild.pool, rules()).await.expect(200);
    let bad = [
        json!({"boss_kill": "1.005", "on_time": 0, "per_hour": 0, "standby_percent": 0}),
        json!({"boss_kill": 1, "on_time": "-1", "per_hour": 0, "standby_percent": 0}),
        json!({"boss_kill": 1, "on_time": 1, "per_hour": 1.5, "standby_percent": 0}),
        json!({"boss_kill": 1, "on_time": 1, "per_hour": 1, "standby_percent": 101}),
        json!({"boss_kill": 1, "on_time": 1, "per_hour": 1, "standby_percent": "-0.01"}),
    ];
    for rules in bad {
        let reply = set_rules(&app, &guild, &guild.pool, rules.clone()).await;
        assert_eq!((reply.status.as_u16(), reply.code()), (422, "invalid_amount"), "{rules}: {}", reply.text);
    }
    let missing = set_rules(&app, &guild, &guild.pool, json!({"boss_kill": 1})).await;
    missing.expect_error(400, "invalid_json");
    let read = app.get(&pool_path(&guild, &guild.pool, "rules")).token(&guild.owner.token).send().await.expect(200);
    assert_eq!(read.json["rules"]["boss_kill"], "10.00", "the rules are as they were");
    let elsewhere = set_rules(&app, &guild, &uuid::Uuid::now_v7().to_string(), rules()).await;
    elsewhere.expect_error(404, "not_found");
}

async fn the_award_pays_each_kill_coming_on_time_hours_rounded_down_and_the_standby_share(app: TestApp) {
    let (guild, members) = raiders(&app).await;
    let raid = night(&app, &guild, &members).await;

    let entry = award(&app, &guild, &raid).await.expect(201).json["entry"].clone();

    assert_eq!(entry["kind"], "raid");
    assert_eq!(entry["raid_id"], raid.as_str());
    let [a, b, c] = &members;
    let paid = member_postings(&entry);
    // 2 kills x 10 + 5 on time + 90 min x 1.00/h; 20 + 61 min (1.0166: 1.01); half of 20 + 5 + 121 min (2.01).
    assert_eq!((paid[a].as_str(), paid[b].as_str(), paid[c].as_str()), ("26.50", "21.01", "13.50"));
    let issued: Vec<&Value> =
        entry["postings"].as_array().unwrap().iter().filter(|p| p["account"] == "issued").collect();
    assert_eq!(issued[0]["amount"], "-61.01");
    let balances = app.balances(&guild).await;
    assert_eq!((balances[a].as_str(), balances[b].as_str(), balances[c].as_str()), ("26.50", "21.01", "13.50"));
    let standings = app.get(&pool_path(&guild, &guild.pool, "standings")).token(&guild.owner.token).send().await;
    let standings = standings.expect(200).json["standings"].clone();
    let ana = standings.as_array().unwrap().iter().find(|s| s["member_id"] == a.as_str()).unwrap();
    assert_eq!(ana["earned"], "26.50", "a raid's award counts as earned");
    let page = app.get(&raid_path(&guild, &raid, "")).token(&guild.owner.token).send().await.expect(200);
    assert_eq!(page.json["raid"]["awarded"], "61.01");
    assert_eq!(page.json["raid"]["awards"].as_array().unwrap().len(), 3);
    assert_eq!(page.json["raid"]["kills"].as_array().unwrap().len(), 2);
    assert_eq!(page.json["raid"]["rules"]["standby_percent"], "50.00");
    app.assert_ledger_consistent().await;
}

async fn a_correction_pays_a_forgotten_raider_once_and_a_removed_kill_takes_points_back(app: TestApp) {
    let (guild, members) = raiders(&app).await;
    let [a, b, c] = &members;
    let raid = new_raid(&app, &guild, &guild.pool).await;
    let magmadar = kill(&app, &guild, &raid, "Magmadar", "2026-11-26T19:00:00Z").await.expect(201);
    let kill_id = magmadar.json["raid"]["kills"][0]["id"].as_str().unwrap().to_owned();
    attend(&app, &guild, &raid, json!([present(a, 0, false), present(b, 0, false)])).await.expect(200);
    award(&app, &guild, &raid).await.expect(201);
    // ana spends what she got: a correction takes it back all the same.
    let transfer = json!({"from_member_id": a, "to_member_id": b, "amount": 10, "reason": "gift"});
    app.post(&pool_path(&guild, &guild.pool, "transfers"))
        .token(&guild.owner.token)
        .json(transfer)
        .send()
        .await
        .expect(201);

    attend(&app, &guild, &raid, json!([present(a, 0, false), present(b, 0, false), present(c, 0, false)]))
        .await
        .expect(200);
    let forgotten = award(&app, &guild, &raid).await.expect(201).json["entry"].clone();
    assert_eq!(forgotten["kind"], "raid_correction");
    assert_eq!(member_postings(&forgotten), [(c.clone(), "10.00".to_owned())].into());
    award(&app, &guild, &raid).await.expect(200);

    let removed = app.delete(&raid_path(&guild, &raid, &format!("/kills/{kill_id}"))).token(&guild.owner.token).send();
    assert_eq!(removed.await.expect(200).json["raid"]["kills"], json!([]));
    let taken = award(&app, &guild, &raid).await.expect(201).json["entry"].clone();

    assert_eq!(taken["kind"], "raid_correction");
    let taken = member_postings(&taken);
    assert_eq!((taken[a].as_str(), taken[b].as_str(), taken[c].as_str()), ("-10.00", "-10.00", "-10.00"));
    let balances = app.balances(&guild).await;
    assert_eq!((balances[a].as_str(), balances[b].as_str(), balances[c].as_str()), ("-10.00", "10.00", "0.00"));
    assert_eq!(award(&app, &guild, &raid).await.expect(200).json, json!({"entry": null}));
    assert_eq!(entries_of_kind(&app, &guild, "raid").await.len(), 1);
    assert_eq!(entries_of_kind(&app, &guild, "raid_correction").await.len(), 2);
    app.assert_ledger_consistent().await;
}

async fn a_raid_awarded_twice_pays_once_and_a_repeated_key_replays_the_first_answer(app: TestApp) {
    let (guild, members) = raiders(&app).await;
    let raid = night(&app, &guild, &members).await;
    let path = raid_path(&guild, &raid, "/award");
    let first = app.post(&path).token(&guild.owner.token).header("idempotency-key", "mc-1").send().await.expect(201);

    let again = app.post(&path).token(&guild.owner.token).header("idempotency-key", "mc-1").send().await;
    let second = app.post(&path).token(&guild.owner.token).header("idempotency-key", "mc-2").send().await;
    let second_again = app.post(&path).token(&guild.owner.token).header("idempotency-key", "mc-2").send().await;

    assert_eq!((again.status.as_u16(), again.text), (201, first.text));
    assert_eq!((second.status.as_u16(), &second.json), (200, &json!({"entry": null})));
    assert_eq!((second_again.status.as_u16(), second_again.text), (200, second.text));
    assert_eq!(entries_of_kind(&app, &guild, "raid").await.len(), 1);
    assert_eq!(app.balances(&guild).await[&members[0]], "26.50");
    let member = app.member(&guild, "dan", "member").await.0;
    app.post(&path).token(&member.token).send().await.expect_error(403, "forbidden");
}

async fn racing_awards_under_different_keys_pay_once(app: TestApp) {
    let (guild, members) = raiders(&app).await;
    let raid = night(&app, &guild, &members).await;
    let app = Arc::new(app);

    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (app, token, path) = (app.clone(), guild.owner.token.clone(), raid_path(&guild, &raid, "/award"));
            tokio::spawn(async move {
                let call = app.post(&path).token(&token);
                let call = if i % 2 == 0 { call.header("idempotency-key", &format!("race-{i}")) } else { call };
                call.send().await.status.as_u16()
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }

    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 200, 200, 201]);
    assert_eq!(entries_of_kind(&app, &guild, "raid").await.len(), 1);
    assert!(entries_of_kind(&app, &guild, "raid_correction").await.is_empty());
    let balances = app.balances(&guild).await;
    let [a, b, c] = &members;
    assert_eq!((balances[a].as_str(), balances[b].as_str(), balances[c].as_str()), ("26.50", "21.01", "13.50"));
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_awards_from_two_instances_on_postgres_pay_once() {
    let first = spawn_app(Kind::Postgres).await;
    let second = Arc::new(first.second_instance().await);
    let (guild, members) = raiders(&first).await;
    let raid = night(&first, &guild, &members).await;
    let first = Arc::new(first);
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let app = if i % 2 == 0 { first.clone() } else { second.clone() };
            let (token, path) = (guild.owner.token.clone(), raid_path(&guild, &raid, "/award"));
            tokio::spawn(async move { app.post(&path).token(&token).send().await.status.as_u16() })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 201]);
    assert_eq!(entries_of_kind(&first, &guild, "raid").await.len(), 1);
    assert_eq!(first.balances(&guild).await[&members[0]], "26.50");
    first.assert_ledger_consistent().await;
}

async fn a_reversed_raid_award_is_paid_again_by_the_next_award(app: TestApp) {
    let (guild, members) = raiders(&app).await;
    let raid = night(&app, &guild, &members).await;
    let entry = award(&app, &guild, &raid).await.expect(201).json["entry"].clone();
    let reverse = format!("/api/v1/guilds/{}/entries/{}/reverse", guild.slug, entry["id"].as_str().unwrap());

    let reversal = app.post(&reverse).token(&guild.owner.token).json(json!({"reason": "wrong night"})).send().await;

    assert_eq!(reversal.expect(201).json["entry"]["raid_id"], raid.as_str(), "the reversal belongs to the raid");
    assert_eq!(app.balances(&guild).await[&members[0]], "0.00");
    let again = award(&app, &guild, &raid).await.expect(201).json["entry"].clone();
    assert_eq!(
        (again["kind"].as_str(), member_postings(&again)[&members[0]].as_str()),
        (Some("raid_correction"), "26.50")
    );
    app.assert_ledger_consistent().await;
}

async fn rules_changed_after_the_first_award_do_not_reprice_the_raid(app: TestApp) {
    let (guild, members) = raiders(&app).await;
    let raid = night(&app, &guild, &members).await;
    award(&app, &guild, &raid).await.expect(201);

    set_rules(&app, &guild, &guild.pool, json!({"boss_kill": 100, "on_time": 0, "per_hour": 0, "standby_percent": 0}))
        .await
        .expect(200);
    let [a, b, c] = &members;
    attend(
        &app,
        &guild,
        &raid,
        json!([
            present(a, 90, true),
            present(b, 61, false),
            standby(c, 121, true),
            present(&guild.owner_member, 0, false)
        ]),
    )
    .await
    .expect(200);
    let correction = award(&app, &guild, &raid).await.expect(201).json["entry"].clone();

    assert_eq!(member_postings(&correction), [(guild.owner_member.clone(), "20.00".to_owned())].into());
    let page = app.get(&raid_path(&guild, &raid, "")).token(&guild.owner.token).send().await.expect(200);
    assert_eq!(page.json["raid"]["rules"]["boss_kill"], "10.00", "the raid keeps the rules it was first paid under");
    let later = new_raid(&app, &guild, &guild.pool).await;
    let later = app.get(&raid_path(&guild, &later, "")).token(&guild.owner.token).send().await.expect(200);
    assert_eq!(later.json["raid"]["rules"]["boss_kill"], "100.00");
}
