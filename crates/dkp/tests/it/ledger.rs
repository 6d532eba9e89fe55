//! Pools and the double-entry ledger over HTTP.

use serde_json::{Value, json};

use crate::both_stores;
use crate::support::{Guild, TestApp};

both_stores!(
    awards_adjustments_and_transfers_move_points_and_balance,
    spending_beyond_available_is_refused_and_changes_nothing,
    a_pool_that_allows_negative_lets_balances_go_below_zero,
    an_entry_is_reversed_once_and_a_reversal_never,
    history_pages_with_a_cursor_and_filters_by_member,
    pools_are_listed_and_their_names_unique,
    every_change_leaves_an_audit_row_that_cannot_be_altered,
);

fn pool_path(guild: &Guild, what: &str) -> String {
    format!("/api/v1/guilds/{}/pools/{}/{what}", guild.slug, guild.pool)
}

async fn post_entry(app: &TestApp, guild: &Guild, what: &str, body: Value) -> Value {
    app.post(&pool_path(guild, what)).token(&guild.owner.token).json(body).send().await.expect(201).json["entry"]
        .clone()
}

async fn awards_adjustments_and_transfers_move_points_and_balance(app: TestApp) {
    let guild = app.guild("owls").await;
    let (_, a) = app.member(&guild, "ana", "member").await;
    let (_, b) = app.member(&guild, "bob", "member").await;

    let award =
        post_entry(&app, &guild, "awards", json!({"member_ids": [a, b], "amount": "12.5", "reason": "Onyxia"})).await;
    assert_eq!(award["kind"], "award");
    assert_eq!(award["reason"], "Onyxia");
    assert_eq!(award["created_by"], guild.owner_member.as_str());
    assert_eq!(
        award["postings"],
        json!([{"member_id": a, "amount": "12.50"}, {"member_id": b, "amount": "12.50"}, {"account": "issued", "amount": "-25.00"}])
    );
    post_entry(&app, &guild, "adjustments", json!({"member_id": a, "amount": "-2.25", "reason": "late"})).await;
    post_entry(
        &app,
        &guild,
        "transfers",
        json!({"from_member_id": b, "to_member_id": a, "amount": 10, "reason": "gift"}),
    )
    .await;

    let standings = app.get(&pool_path(&guild, "standings")).token(&guild.owner.token).send().await.expect(200);
    let rows = standings.json["standings"].as_array().unwrap().clone();
    assert_eq!(
        rows[0],
        json!({
            "member_id": a, "username": "ana", "name": "ana", "active": true, "balance": "20.25", "held": "0.00",
            "available": "20.25", "earned": "12.50", "spent": "0.00",
        })
    );
    assert_eq!(rows[1]["balance"], "2.50");
    assert_eq!(rows.len(), 3, "the owner has an account too");
    app.assert_ledger_consistent().await;
}

async fn spending_beyond_available_is_refused_and_changes_nothing(app: TestApp) {
    let guild = app.guild("owls").await;
    let (_, a) = app.member(&guild, "ana", "member").await;
    let (_, b) = app.member(&guild, "bob", "member").await;
    post_entry(&app, &guild, "awards", json!({"member_ids": [a], "amount": 5, "reason": "r"})).await;
    let before = app.balances(&guild).await;
    app.post(&pool_path(&guild, "transfers"))
        .token(&guild.owner.token)
        .json(json!({"from_member_id": a, "to_member_id": b, "amount": "5.01", "reason": "too much"}))
        .send()
        .await
        .expect_error(422, "insufficient_points");
    app.post(&pool_path(&guild, "adjustments"))
        .token(&guild.owner.token)
        .json(json!({"member_id": b, "amount": "-0.01", "reason": "below zero"}))
        .send()
        .await
        .expect_error(422, "insufficient_points");
    assert_eq!(app.balances(&guild).await, before);
    let entries = app.get(&pool_path(&guild, "entries")).token(&guild.owner.token).send().await.expect(200);
    assert_eq!(entries.json["entries"].as_array().unwrap().len(), 1);
    app.assert_ledger_consistent().await;
}

async fn a_pool_that_allows_negative_lets_balances_go_below_zero(app: TestApp) {
    let guild = app.guild("owls").await;
    let (_, a) = app.member(&guild, "ana", "member").await;
    let reply = app
        .post(&format!("/api/v1/guilds/{}/pools", guild.slug))
        .token(&guild.owner.token)
        .json(json!({"name": "Debt", "allow_negative": true}))
        .send()
        .await
        .expect(201);
    assert_eq!(reply.json["pool"]["allow_negative"], true);
    let debt = Guild { pool: reply.json["pool"]["id"].as_str().unwrap().to_owned(), ..guild.clone() };
    post_entry(&app, &debt, "adjustments", json!({"member_id": a, "amount": "-40", "reason": "loot on credit"})).await;
    assert_eq!(app.balances(&debt).await[&a], "-40.00");
    assert_eq!(app.balances(&guild).await[&a], "0.00", "pools are independent");
    app.assert_ledger_consistent().await;
}

async fn an_entry_is_reversed_once_and_a_reversal_never(app: TestApp) {
    let guild = app.guild("owls").await;
    let (_, a) = app.member(&guild, "ana", "member").await;
    let award = post_entry(&app, &guild, "awards", json!({"member_ids": [a], "amount": 30, "reason": "r"})).await;
    let id = award["id"].as_str().unwrap();
    let path = format!("/api/v1/guilds/{}/entries/{id}/reverse", guild.slug);
    let reversal =
        app.post(&path).token(&guild.owner.token).json(json!({"reason": "wrong raid"})).send().await.expect(201);
    assert_eq!(reversal.json["entry"]["kind"], "reversal");
    assert_eq!(reversal.json["entry"]["reverses"], id);
    assert_eq!(
        reversal.json["entry"]["postings"],
        json!([{"member_id": a, "amount": "-30.00"}, {"account": "issued", "amount": "30.00"}])
    );
    assert_eq!(app.balances(&guild).await[&a], "0.00");
    app.post(&path)
        .token(&guild.owner.token)
        .json(json!({"reason": "again"}))
        .send()
        .await
        .expect_error(409, "already_reversed");
    let reversal_id = reversal.json["entry"]["id"].as_str().unwrap();
    app.post(&format!("/api/v1/guilds/{}/entries/{reversal_id}/reverse", guild.slug))
        .token(&guild.owner.token)
        .json(json!({"reason": "undo the undo"}))
        .send()
        .await
        .expect_error(409, "not_reversible");
    app.post(&format!("/api/v1/guilds/{}/entries/{}/reverse", guild.slug, uuid::Uuid::now_v7()))
        .token(&guild.owner.token)
        .json(json!({"reason": "x"}))
        .send()
        .await
        .expect_error(404, "not_found");
    app.assert_ledger_consistent().await;
}

async fn history_pages_with_a_cursor_and_filters_by_member(app: TestApp) {
    let guild = app.guild("owls").await;
    let (_, a) = app.member(&guild, "ana", "member").await;
    let (_, b) = app.member(&guild, "bob", "member").await;
    for n in 1..=5 {
        post_entry(&app, &guild, "awards", json!({"member_ids": [a], "amount": n, "reason": format!("raid {n}")}))
            .await;
    }
    post_entry(&app, &guild, "awards", json!({"member_ids": [b], "amount": 1, "reason": "bob only"})).await;

    let mut reasons = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let query = match &cursor {
            Some(c) => format!("?member_id={a}&limit=2&cursor={c}"),
            None => format!("?member_id={a}&limit=2"),
        };
        let page = app
            .get(&format!("{}{query}", pool_path(&guild, "entries")))
            .token(&guild.owner.token)
            .send()
            .await
            .expect(200);
        for entry in page.json["entries"].as_array().unwrap() {
            assert_eq!(entry["postings"][0]["member_id"], a.as_str());
            reasons.push(entry["reason"].as_str().unwrap().to_owned());
        }
        match page.json["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(reasons, ["raid 5", "raid 4", "raid 3", "raid 2", "raid 1"]);
    let all = app
        .get(&format!("{}?limit=500", pool_path(&guild, "entries")))
        .token(&guild.owner.token)
        .send()
        .await
        .expect(200);
    assert_eq!(all.json["entries"].as_array().unwrap().len(), 6);
    assert_eq!(all.json["next_cursor"], Value::Null);
    for bad in ["?limit=0", "?limit=abc", "?cursor=nope", "?member_id=nope"] {
        app.get(&format!("{}{bad}", pool_path(&guild, "entries")))
            .token(&guild.owner.token)
            .send()
            .await
            .expect_error(422, "invalid_field");
    }
}

async fn pools_are_listed_and_their_names_unique(app: TestApp) {
    let guild = app.guild("owls").await;
    let path = format!("/api/v1/guilds/{}/pools", guild.slug);
    app.post(&path)
        .token(&guild.owner.token)
        .json(json!({"name": "Main"}))
        .send()
        .await
        .expect_error(409, "pool_name_taken");
    app.post(&path).token(&guild.owner.token).json(json!({"name": "Alt Team"})).send().await.expect(201);
    let list = app.get(&path).token(&guild.owner.token).send().await.expect(200);
    let names: Vec<&str> = list.json["pools"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Main", "Alt Team"]);
}

async fn every_change_leaves_an_audit_row_that_cannot_be_altered(app: TestApp) {
    let guild = app.guild("owls").await;
    let (_, a) = app.member(&guild, "ana", "member").await;
    let award = app
        .post(&pool_path(&guild, "awards"))
        .token(&guild.owner.token)
        .header("x-request-id", "req-award-1")
        .json(json!({"member_ids": [a], "amount": 7, "reason": "r"}))
        .send()
        .await
        .expect(201);
    assert_eq!(award.headers["x-request-id"], "req-award-1");
    let audit =
        app.get(&format!("/api/v1/guilds/{}/audit", guild.slug)).token(&guild.owner.token).send().await.expect(200);
    let actions: Vec<&str> =
        audit.json["entries"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["entry.award", "member.add", "pool.create", "guild.create"]);
    let newest = &audit.json["entries"][0];
    assert_eq!(newest["request_id"], "req-award-1");
    assert_eq!(newest["actor_id"], guild.owner.id.as_str());
    assert_eq!(newest["target_id"], award.json["entry"]["id"]);
    assert_eq!(newest["after"]["postings"][0]["amount"], "7.00");

    assert!(app.execute("UPDATE audit_log SET action = 'forged'").await.is_err(), "audit rows cannot be updated");
    assert!(app.execute("DELETE FROM audit_log").await.is_err(), "audit rows cannot be deleted");
    assert!(app.execute("DELETE FROM postings").await.is_err(), "postings cannot be deleted");
    assert!(app.execute("UPDATE entries SET reason = 'forged'").await.is_err(), "entries cannot be updated");
    let again = app
        .get(&format!("/api/v1/guilds/{}/audit?limit=1", guild.slug))
        .token(&guild.owner.token)
        .send()
        .await
        .expect(200);
    assert_eq!(again.json["entries"][0]["action"], "entry.award");
    assert!(again.json["next_cursor"].is_string());
}
