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

crate::both_stores!(moves_that_wait_together_are_each_answered_for_themselves);

/// Moves sent at once are written together, several to a commit; within one
/// batch each is checked against the wallets the moves before it left, and
/// one refused for its own fault (no points left, an unknown member, an
/// entry reversed already) is refused alone while the others land.
async fn moves_that_wait_together_are_each_answered_for_themselves(app: TestApp) {
    let app = std::sync::Arc::new(app);
    let guild = app.guild("owls").await;
    let (_, ana) = app.funded_member(&guild, "ana", 10).await;
    let (_, bob) = app.member(&guild, "bob", "member").await;
    let (_, cyd) = app.member(&guild, "cyd", "member").await;
    let award = app
        .post(&format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool))
        .token(&guild.owner.token)
        .json(json!({"member_ids": [cyd], "amount": 7, "reason": "to undo"}))
        .send()
        .await
        .expect(201);
    let reverse =
        format!("/api/v1/guilds/{}/entries/{}/reverse", guild.slug, award.json["entry"]["id"].as_str().unwrap());
    let pool = |what: &str| format!("/api/v1/guilds/{}/pools/{}/{what}", guild.slug, guild.pool);
    let stranger = uuid::Uuid::now_v7().to_string();
    let mut requests = Vec::new();
    for i in 0..20 {
        requests.push((
            pool("transfers"),
            json!({"from_member_id": ana, "to_member_id": bob, "amount": 1, "reason": format!("t{i}")}),
        ));
    }
    for i in 0..5 {
        requests.push((pool("awards"), json!({"member_ids": [cyd], "amount": 1, "reason": format!("a{i}")})));
        requests.push((
            pool("transfers"),
            json!({"from_member_id": cyd, "to_member_id": stranger, "amount": 1, "reason": "x"}),
        ));
    }
    for i in 0..2 {
        requests.push((reverse.clone(), json!({"reason": format!("r{i}")})));
    }
    let mut tasks = Vec::new();
    for (path, body) in requests {
        let (app, token) = (app.clone(), guild.owner.token.clone());
        tasks.push(tokio::spawn(async move { app.post(&path).token(&token).json(body).send().await }));
    }
    let mut answers: std::collections::BTreeMap<(u16, String), usize> = std::collections::BTreeMap::new();
    for task in tasks {
        let reply = task.await.unwrap();
        *answers.entry((reply.status.as_u16(), reply.code().to_owned())).or_default() += 1;
    }
    let expected: std::collections::BTreeMap<(u16, String), usize> = [
        ((201, String::new()), 10 + 5 + 1),
        ((409, "already_reversed".to_owned()), 1),
        ((422, "insufficient_points".to_owned()), 10),
        ((422, "unknown_reference".to_owned()), 5),
    ]
    .into_iter()
    .collect();
    assert_eq!(answers, expected);
    let balances = app.balances(&guild).await;
    assert_eq!((&balances[&ana][..], &balances[&bob][..], &balances[&cyd][..]), ("0.00", "10.00", "5.00"));
    app.assert_ledger_consistent().await;
    // Every entry has its audit row, and its members heard of their wallets.
    let entries = app.count("SELECT COUNT(*) AS n FROM entries").await;
    assert_eq!(entries, 2 + 16, "the two awards before, and the moves accepted");
    assert_eq!(app.count("SELECT COUNT(*) AS n FROM audit_log WHERE action LIKE 'entry.%'").await, entries);
    let heard = app.count("SELECT COUNT(*) AS n FROM events WHERE name = 'balance_changed'").await;
    assert_eq!(heard, 1 + 1 + 10 * 2 + 5 + 1, "one event per wallet each entry moved");
    // Some moves shared a commit: their events were written together.
    let commits = app.count("SELECT COUNT(DISTINCT created_at) AS n FROM events WHERE name = 'balance_changed'").await;
    assert!(commits < entries, "{entries} entries in {commits} commits: the moves were written one by one");
}

/// A request whose caller gives up while it waits for the write lane (a
/// client gone, a timeout) leaves nothing behind: once the lane is free, the
/// next writer goes through at once. (The chaos harness found the lane held
/// for good by a connection whose abandoned BEGIN went back to the pool.)
#[tokio::test]
async fn a_request_abandoned_while_waiting_for_the_write_lane_leaves_the_lane_free() {
    use sqlx::{Connection, Executor};

    let app = spawn_app(Kind::Postgres).await;
    let guild = app.guild("lanefree").await;
    let (_, member) = app.funded_member(&guild, "lena", 100).await;
    let lot = app.open_lot(&guild, json!({})).await;
    let close = format!("/api/v1/guilds/{}/lots/{}/close", guild.slug, lot["id"].as_str().unwrap());
    let mut holder = sqlx::PgConnection::connect(&app.url).await.expect("a connection of the test's own");
    holder.execute("BEGIN; LOCK TABLE ledger_lane_00 IN EXCLUSIVE MODE").await.expect("the lane taken");
    for _ in 0..3 {
        let waited = tokio::time::timeout(std::time::Duration::from_millis(300), async {
            app.post(&close).token(&guild.owner.token).send().await
        });
        assert!(waited.await.is_err(), "the close waits for the lane while another holds it");
    }
    holder.execute("COMMIT").await.expect("the lane given back");
    let award = format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool);
    let body = json!({"member_ids": [member], "amount": 5, "reason": "after"});
    let awarded = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        app.post(&award).token(&guild.owner.token).json(body).send().await
    });
    awarded.await.expect("the award does not wait on an abandoned transaction").expect(201);
    let held = app
        .count(
            "SELECT COUNT(*) AS n FROM pg_locks l JOIN pg_class c ON c.oid = l.relation \
             JOIN pg_namespace s ON s.oid = c.relnamespace \
             WHERE c.relname = 'ledger_lane_00' AND s.nspname = current_schema() AND l.granted",
        )
        .await;
    assert_eq!(held, 0, "nobody is left holding the lane");
}
