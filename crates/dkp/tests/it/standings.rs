//! Standings with what each member earned and spent over their life in a
//! pool: awards and positive adjustments earned, loot spent, reversals
//! taking back exactly what they reverse, transfers and decay in neither.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::both_stores;
use crate::support::{Guild, TestApp};

both_stores!(standings_show_what_each_member_earned_and_spent_over_their_life);

fn pool_path(guild: &Guild, what: &str) -> String {
    format!("/api/v1/guilds/{}/pools/{}/{what}", guild.slug, guild.pool)
}

async fn entry(app: &TestApp, guild: &Guild, what: &str, body: Value) -> String {
    let reply = app.post(&pool_path(guild, what)).token(&guild.owner.token).json(body).send().await.expect(201);
    reply.json["entry"]["id"].as_str().expect("an entry id").to_owned()
}

async fn reverse(app: &TestApp, guild: &Guild, entry_id: &str) {
    let path = format!("/api/v1/guilds/{}/entries/{entry_id}/reverse", guild.slug);
    app.post(&path).token(&guild.owner.token).json(json!({"reason": "mistake"})).send().await.expect(201);
}

/// A lot won by `token`'s user at `price`: its settlement entry.
async fn win(app: &TestApp, guild: &Guild, token: &str, price: i64) -> String {
    let lot = app.open_lot(guild, json!({"min_bid": 1})).await;
    let lot_id = lot["id"].as_str().expect("a lot id");
    app.bid(guild, lot_id, token, json!(price)).await.expect(201);
    let close = format!("/api/v1/guilds/{}/lots/{lot_id}/close", guild.slug);
    let closed = app.post(&close).token(&guild.owner.token).send().await.expect(200);
    closed.json["lot"]["settlement_entry_id"].as_str().expect("a settlement").to_owned()
}

/// Member id to (balance, earned, spent).
async fn lifetime(app: &TestApp, guild: &Guild) -> BTreeMap<String, (String, String, String)> {
    let reply = app.get(&pool_path(guild, "standings")).token(&guild.owner.token).send().await.expect(200);
    let text = |row: &Value, key: &str| row[key].as_str().unwrap_or("").to_owned();
    reply.json["standings"]
        .as_array()
        .expect("standings")
        .iter()
        .map(|row| (text(row, "member_id"), (text(row, "balance"), text(row, "earned"), text(row, "spent"))))
        .collect()
}

async fn standings_show_what_each_member_earned_and_spent_over_their_life(app: TestApp) {
    let guild = app.guild("owls").await;
    let (ana_user, ana) = app.member(&guild, "ana", "member").await;
    let (_, bob) = app.member(&guild, "bob", "member").await;
    entry(&app, &guild, "awards", json!({"member_ids": [ana, bob], "amount": 100, "reason": "Molten Core"})).await;
    let mistaken = entry(&app, &guild, "awards", json!({"member_ids": [ana], "amount": 50, "reason": "wrong"})).await;
    entry(&app, &guild, "adjustments", json!({"member_id": ana, "amount": "10.5", "reason": "bonus"})).await;
    entry(&app, &guild, "adjustments", json!({"member_id": ana, "amount": -5, "reason": "late"})).await;
    entry(
        &app,
        &guild,
        "transfers",
        json!({"from_member_id": ana, "to_member_id": bob, "amount": 20, "reason": "gift"}),
    )
    .await;
    reverse(&app, &guild, &mistaken).await;
    win(&app, &guild, &ana_user.token, 30).await;
    let refunded = win(&app, &guild, &ana_user.token, 12).await;
    reverse(&app, &guild, &refunded).await;
    let decay = pool_path(&guild, "decay");
    app.post(&decay).token(&guild.owner.token).json(json!({"percent": "10"})).send().await.expect(202);
    app.run_due_jobs().await;

    let rows = lifetime(&app, &guild).await;

    // Ana: 100 + 10.50 - 5 - 20 - 30 = 55.50, less 10 % = 49.95.
    assert_eq!(rows[&ana], ("49.95".to_owned(), "110.50".to_owned(), "30.00".to_owned()));
    // Bob: 120 less 10 %; a transfer received is not earned.
    assert_eq!(rows[&bob], ("108.00".to_owned(), "100.00".to_owned(), "0.00".to_owned()));
    assert_eq!(rows[&guild.owner_member], ("0.00".to_owned(), "0.00".to_owned(), "0.00".to_owned()));
    app.assert_ledger_consistent().await;
}
