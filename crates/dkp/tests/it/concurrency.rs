//! Seed risk R1: concurrent, conflicting ledger writes on the same few
//! accounts, from one instance and (on PostgreSQL) from two instances sharing
//! one database, where only SERIALIZABLE and the retry helper keep order.

use serde_json::json;

use crate::support::{Guild, Kind, TestApp, spawn_app};

/// 50 operations over three members who start with 1000 points each: awards,
/// and transfers around the circle that can never overdraw. The end state
/// does not depend on the order they commit in, so it can be checked exactly.
async fn fifty_conflicting_operations(instances: &[std::sync::Arc<TestApp>], guild: &Guild, members: &[String; 3]) {
    let pool = |what: &str| format!("/api/v1/guilds/{}/pools/{}/{what}", guild.slug, guild.pool);
    instances[0]
        .post(&pool("awards"))
        .token(&guild.owner.token)
        .json(json!({"member_ids": members, "amount": 1000, "reason": "start"}))
        .send()
        .await
        .expect(201);
    let mut tasks = Vec::new();
    for i in 0..50usize {
        let app = instances[i % instances.len()].clone();
        let token = guild.owner.token.clone();
        let (path, body) = if i % 5 == 0 {
            (pool("awards"), json!({"member_ids": [members[i % 3]], "amount": "1.25", "reason": format!("op {i}")}))
        } else {
            let (from, to) = (&members[i % 3], &members[(i + 1) % 3]);
            (
                pool("transfers"),
                json!({"from_member_id": from, "to_member_id": to, "amount": format!("{}.{:02}", i, i), "reason": format!("op {i}")}),
            )
        };
        tasks.push(tokio::spawn(async move { app.post(&path).token(&token).json(body).send().await }));
    }
    for task in tasks {
        task.await.unwrap().expect(201);
    }
    // What each member should hold, in hundredths.
    let mut expected = [100_000i64; 3];
    for i in 0..50usize {
        if i % 5 == 0 {
            expected[i % 3] += 125;
        } else {
            let amount = (i * 100 + i) as i64;
            expected[i % 3] -= amount;
            expected[(i + 1) % 3] += amount;
        }
    }
    let balances = instances[0].balances(guild).await;
    for (member, hundredths) in members.iter().zip(expected) {
        assert_eq!(balances[member], format!("{}.{:02}", hundredths / 100, hundredths % 100), "member {member}");
    }
    instances[0].assert_ledger_consistent().await;
}

async fn three_members(app: &TestApp, guild: &Guild) -> [String; 3] {
    let (_, a) = app.member(guild, "ana", "member").await;
    let (_, b) = app.member(guild, "bob", "member").await;
    let (_, c) = app.member(guild, "cyd", "member").await;
    [a, b, c]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_conflicting_operations_on_sqlite_keep_every_balance_exact() {
    let app = std::sync::Arc::new(spawn_app(Kind::Sqlite).await);
    let guild = app.guild("owls").await;
    let members = three_members(&app, &guild).await;
    fifty_conflicting_operations(&[app], &guild, &members).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_conflicting_operations_on_postgres_from_two_instances_keep_every_balance_exact() {
    let first = spawn_app(Kind::Postgres).await;
    let second = first.second_instance().await;
    let guild = first.guild("owls").await;
    let members = three_members(&first, &guild).await;
    fifty_conflicting_operations(&[std::sync::Arc::new(first), std::sync::Arc::new(second)], &guild, &members).await;
}
