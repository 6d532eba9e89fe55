//! What raids do to loot: lots naming their raid, a zero-sum pool handing a
//! price to the raid's present attendees, attendance rates over a pool's last
//! raids, and the guild's loot history.

use serde_json::{Value, json};

use super::{attend, new_raid, present, raid_path, standby};
use crate::both_stores;
use crate::support::{Guild, TestApp, User};

both_stores!(
    lots_name_a_raid_of_their_own_pool_only,
    a_zero_sum_pool_splits_each_price_among_the_present_attendees_to_the_hundredth,
    a_zero_sum_lot_without_present_attendees_pays_into_spent,
    attendance_rates_count_the_pools_last_raids,
    the_loot_history_lists_items_won_by_member_and_pool,
);

fn lots_path(guild: &Guild) -> String {
    format!("/api/v1/guilds/{}/lots", guild.slug)
}

/// A lot in `pool` of `raid` (if any): the reply.
async fn lot(app: &TestApp, guild: &Guild, pool: &str, raid: Option<&str>, min_bid: &str) -> crate::support::Reply {
    let mut body = json!({"pool_id": pool, "item": {"name": "Onyxia Hide Backpack"}, "mode": "open", "min_bid": min_bid, "duration_s": 600});
    if let Some(raid) = raid {
        body["raid_id"] = json!(raid);
    }
    app.post(&lots_path(guild)).token(&guild.owner.token).json(body).send().await
}

/// A pool of the guild that the guild's owner makes; `guild` with it as its pool.
async fn second_pool(app: &TestApp, guild: &Guild, body: Value) -> Guild {
    let reply = app.post(&format!("/api/v1/guilds/{}/pools", guild.slug)).token(&guild.owner.token).json(body);
    let reply = reply.send().await.expect(201);
    Guild { pool: reply.json["pool"]["id"].as_str().unwrap().to_owned(), ..guild.clone() }
}

/// `bidder` wins a new lot of `raid` at `price`; the settlement entry.
async fn won(app: &TestApp, guild: &Guild, raid: &str, bidder: &User, price: &str) -> Value {
    let opened = lot(app, guild, &guild.pool, Some(raid), price).await.expect(201);
    let id = opened.json["lot"]["id"].as_str().unwrap().to_owned();
    app.bid(guild, &id, &bidder.token, json!(price)).await.expect(201);
    let closed = app.post(&format!("{}/{id}/close", lots_path(guild))).token(&guild.owner.token).send().await;
    let entry_id = closed.expect(200).json["lot"]["settlement_entry_id"].as_str().unwrap().to_owned();
    let entries =
        app.get(&format!("/api/v1/guilds/{}/pools/{}/entries", guild.slug, guild.pool)).token(&guild.owner.token);
    let entries = entries.send().await.expect(200).json["entries"].clone();
    entries.as_array().unwrap().iter().find(|e| e["id"] == entry_id.as_str()).unwrap().clone()
}

/// Account (member id or system account) to amount of an entry's postings.
fn postings(entry: &Value) -> Vec<(String, String)> {
    let account = |p: &Value| p["member_id"].as_str().or(p["account"].as_str()).unwrap_or_default().to_owned();
    entry["postings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (account(p), p["amount"].as_str().unwrap().to_owned()))
        .collect()
}

async fn lots_name_a_raid_of_their_own_pool_only(app: TestApp) {
    let guild = app.guild("owls").await;
    let other = app.guild("hawks").await;
    let alts = second_pool(&app, &guild, json!({"name": "Alts"})).await;
    let raid = new_raid(&app, &guild, &guild.pool).await;

    let named = lot(&app, &guild, &guild.pool, Some(&raid), "5").await.expect(201);
    let plain = lot(&app, &guild, &guild.pool, None, "5").await.expect(201);

    assert_eq!(named.json["lot"]["raid_id"], raid.as_str());
    assert_eq!(plain.json["lot"]["raid_id"], Value::Null);
    let page = app.get(&raid_path(&guild, &raid, "")).token(&guild.owner.token).send().await.expect(200);
    let lots = page.json["raid"]["lots"].as_array().unwrap().clone();
    assert_eq!((lots.len(), &lots[0]["id"]), (1, &named.json["lot"]["id"]));
    lot(&app, &guild, &alts.pool, Some(&raid), "5").await.expect_error(422, "unknown_reference");
    let theirs = new_raid(&app, &other, &other.pool).await;
    lot(&app, &guild, &guild.pool, Some(&theirs), "5").await.expect_error(422, "unknown_reference");
    lot(&app, &guild, &guild.pool, Some("raid-1"), "5").await.expect_error(422, "invalid_field");
}

async fn a_zero_sum_pool_splits_each_price_among_the_present_attendees_to_the_hundredth(app: TestApp) {
    let guild = app.guild("owls").await;
    let zero = second_pool(&app, &guild, json!({"name": "Zero", "zero_sum": true})).await;
    let mut raiders = Vec::new();
    for name in ["ana", "bob", "cyd", "dan", "eve"] {
        raiders.push(app.member(&guild, name, "member").await);
    }
    let ids: Vec<&String> = raiders.iter().map(|(_, id)| id).collect();
    let award = json!({"member_ids": ids, "amount": 100, "reason": "start"});
    let awards = format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, zero.pool);
    app.post(&awards).token(&guild.owner.token).json(award).send().await.expect(201);
    let raid = new_raid(&app, &zero, &zero.pool).await;
    // ana, bob and cyd present; dan on standby; eve not there.
    let (ana, bob, cyd, dan, eve) = (&raiders[0], &raiders[1], &raiders[2], &raiders[3], &raiders[4]);
    let attendees = json!([
        present(&ana.1, 60, true),
        present(&bob.1, 60, true),
        present(&cyd.1, 30, false),
        standby(&dan.1, 60, true)
    ]);
    attend(&app, &zero, &raid, attendees).await.expect(200);
    lot(&app, &zero, &zero.pool, None, "5").await.expect_error(422, "raid_required");
    let mut present_ids = vec![ana.1.clone(), bob.1.clone(), cyd.1.clone()];
    present_ids.sort();

    // eve, absent, pays 0.05: 0.02, 0.02, 0.01 in ascending member id order.
    let absent = won(&app, &zero, &raid, &eve.0, "0.05").await;
    // ana, present, pays 10.00: 3.34, 3.33, 3.33, hers netted with her price.
    let present_winner = won(&app, &zero, &raid, &ana.0, "10").await;

    let mut expected = vec![(eve.1.clone(), "-0.05".to_owned())];
    expected.extend(present_ids.iter().zip(["0.02", "0.02", "0.01"]).map(|(id, a)| (id.clone(), a.to_owned())));
    assert_eq!(postings(&absent), expected);
    let shares: Vec<(String, i64)> = present_ids.iter().cloned().zip([334, 333, 333]).collect();
    let expected: Vec<(String, String)> = shares
        .iter()
        .map(|(id, share)| {
            let net = if *id == ana.1 { share - 1000 } else { *share };
            (id.clone(), format!("{}{}.{:02}", if net < 0 { "-" } else { "" }, net.abs() / 100, net.abs() % 100))
        })
        .collect();
    assert_eq!(postings(&present_winner), expected);
    assert_eq!(present_winner["kind"], "settlement");
    let wallets = app.balances(&zero).await;
    assert_eq!((wallets[&dan.1].as_str(), wallets[&eve.1].as_str()), ("100.00", "99.95"), "standby shares nothing");
    let total: i64 = wallets.values().map(|b| dkp_core::Points::parse(b).unwrap().hundredths()).sum();
    assert_eq!(total, 500_00, "a zero-sum pool's wallets hold what was awarded, no more, no less");
    app.assert_ledger_consistent().await;
}

async fn a_zero_sum_lot_without_present_attendees_pays_into_spent(app: TestApp) {
    let guild = app.guild("owls").await;
    let zero = second_pool(&app, &guild, json!({"name": "Zero", "zero_sum": true})).await;
    assert!(zero.pool != guild.pool);
    let (ana, a) = app.funded_member(&zero, "ana", 50).await;
    let raid = new_raid(&app, &zero, &zero.pool).await;
    attend(&app, &zero, &raid, json!([standby(&a, 60, true)])).await.expect(200);

    let entry = won(&app, &zero, &raid, &ana, "7").await;

    assert_eq!(postings(&entry), vec![(a, "-7.00".to_owned()), ("spent".to_owned(), "7.00".to_owned())]);
    app.assert_ledger_consistent().await;
}

/// A raid of the guild's pool that started on `day` of November 2026.
async fn raid_on(app: &TestApp, guild: &Guild, day: u32) -> String {
    let started = format!("2026-11-{day:02}T18:00:00Z");
    let body = json!({"pool_id": guild.pool, "name": format!("Night {day}"), "started_at": started});
    let reply = app.post(&format!("/api/v1/guilds/{}/raids", guild.slug)).token(&guild.owner.token).json(body);
    reply.send().await.expect(201).json["raid"]["id"].as_str().unwrap().to_owned()
}

async fn attendance_rates_count_the_pools_last_raids(app: TestApp) {
    let guild = app.guild("owls").await;
    let (member, a) = app.member(&guild, "ana", "member").await;
    let (_, b) = app.member(&guild, "bob", "member").await;
    let (_, c) = app.member(&guild, "cyd", "member").await;
    let (_, d) = app.member(&guild, "dan", "member").await;
    // Made out of order: the last raids are the latest to start.
    let third = raid_on(&app, &guild, 15).await;
    let first = raid_on(&app, &guild, 1).await;
    let second = raid_on(&app, &guild, 8).await;
    attend(&app, &guild, &first, json!([present(&a, 60, true), present(&c, 60, true), present(&d, 60, true)]))
        .await
        .expect(200);
    let members = format!("/api/v1/guilds/{}/members/{d}", guild.slug);
    app.delete(&members).token(&guild.owner.token).send().await.expect(200);
    attend(&app, &guild, &second, json!([present(&a, 60, true), standby(&b, 60, true)])).await.expect(200);
    attend(&app, &guild, &third, json!([present(&a, 60, true), present(&b, 5, false)])).await.expect(200);
    let path = format!("/api/v1/guilds/{}/pools/{}/attendance", guild.slug, guild.pool);
    let rates = |last: &str| {
        let call = app.get(&format!("{path}{last}")).token(&member.token).send();
        async move {
            let reply = call.await.expect(200);
            reply.json["attendance"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["member_id"].as_str().unwrap().to_owned(), r.clone()))
                .collect::<Vec<_>>()
        }
    };

    let all = rates("").await;
    let last_two = rates("?last=2").await;
    let everyone = rates("?include_inactive=true").await;

    let row = |rows: &[(String, Value)], id: &str| rows.iter().find(|(m, _)| m == id).unwrap().1.clone();
    assert_eq!(row(&all, &a), json!({"member_id": a, "raids": 3, "attended": 3, "percent": "100.00"}));
    assert_eq!(row(&all, &b)["percent"], "66.66", "standby counts as attended");
    assert_eq!(row(&all, &c)["percent"], "33.33");
    assert_eq!(row(&all, &guild.owner_member)["percent"], "0.00");
    assert_eq!(all[0].0, a, "most attended first");
    assert!(all.iter().all(|(m, _)| *m != d), "a member taken off the roster is left out by default");
    assert_eq!(row(&everyone, &d)["percent"], "33.33");
    assert_eq!(
        (row(&last_two, &b)["percent"].clone(), row(&last_two, &c)["attended"].clone()),
        (json!("100.00"), json!(0))
    );
    for bad in ["?last=0", "?last=x", "?last=1001"] {
        app.get(&format!("{path}{bad}")).token(&member.token).send().await.expect_error(422, "invalid_field");
    }
    let elsewhere = format!("/api/v1/guilds/{}/pools/{}/attendance", guild.slug, uuid::Uuid::now_v7());
    app.get(&elsewhere).token(&member.token).send().await.expect_error(404, "not_found");
}

async fn the_loot_history_lists_items_won_by_member_and_pool(app: TestApp) {
    let guild = app.guild("owls").await;
    let other = app.guild("hawks").await;
    let (ana, a) = app.funded_member(&guild, "ana", 100).await;
    let (bob, b) = app.funded_member(&guild, "bob", 100).await;
    let alts = second_pool(&app, &guild, json!({"name": "Alts"})).await;
    let award = json!({"member_ids": [a], "amount": 100, "reason": "start"});
    app.post(&format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, alts.pool))
        .token(&guild.owner.token)
        .json(award)
        .send()
        .await
        .expect(201);
    let raid = new_raid(&app, &guild, &guild.pool).await;
    won(&app, &guild, &raid, &ana, "12").await;
    won(&app, &guild, &raid, &bob, "3.5").await;
    let alt_raid = new_raid(&app, &alts, &alts.pool).await;
    won(&app, &alts, &alt_raid, &ana, "1").await;
    let cancelled = lot(&app, &guild, &guild.pool, None, "1").await.expect(201);
    let id = cancelled.json["lot"]["id"].as_str().unwrap();
    let cancel =
        app.post(&format!("{}/{id}/cancel", lots_path(&guild))).token(&guild.owner.token).json(json!({"reason": "x"}));
    cancel.send().await.expect(200);
    let loot = |query: String| {
        let call = app.get(&format!("/api/v1/guilds/{}/loot{query}", guild.slug)).token(&bob.token).send();
        async move { call.await.expect(200).json }
    };

    let all = loot(String::new()).await;
    let anas = loot(format!("?member_id={a}")).await;
    let alt_pool = loot(format!("?pool_id={}", alts.pool)).await;
    let first_page = loot("?limit=2".to_owned()).await;

    let items = all["loot"].as_array().unwrap();
    assert_eq!(items.len(), 3, "the cancelled lot handed nothing out");
    assert_eq!(items[0]["winner_member_id"], a.as_str(), "newest first");
    assert_eq!((items[1]["price"].as_str(), items[1]["winner_member_id"].as_str()), (Some("3.50"), Some(b.as_str())));
    assert_eq!(
        (items[1]["raid_id"].as_str(), items[1]["item"]["name"].as_str()),
        (Some(raid.as_str()), Some("Onyxia Hide Backpack"))
    );
    assert!(items[1]["closed_at"].is_string());
    assert_eq!(anas["loot"].as_array().unwrap().len(), 2);
    assert_eq!(alt_pool["loot"].as_array().unwrap().len(), 1);
    let next = first_page["next_cursor"].as_str().unwrap();
    let rest = loot(format!("?limit=2&cursor={next}")).await;
    assert_eq!((rest["loot"].as_array().unwrap().len(), rest["next_cursor"].clone()), (1, Value::Null));
    let theirs = app.get(&format!("/api/v1/guilds/{}/loot", other.slug)).token(&other.owner.token).send().await;
    assert_eq!(theirs.expect(200).json["loot"], json!([]));
    app.get(&format!("/api/v1/guilds/{}/loot", guild.slug))
        .token(&other.owner.token)
        .send()
        .await
        .expect_error(404, "not_found");
    let bad = app.get(&format!("/api/v1/guilds/{}/loot?member_id=x", guild.slug)).token(&bob.token).send().await;
    bad.expect_error(422, "invalid_field");
}
