//! The roster: members added by name without an account and linked to one
//! later, links refused, members taken off the roster (keeping balance and
//! history) and brought back, and who may do which.

use serde_json::{Value, json};

use crate::both_stores;
use crate::support::{Guild, TestApp};

both_stores!(
    a_member_added_by_name_is_linked_to_an_account_and_bids_from_that_wallet,
    linking_is_refused_when_the_user_is_a_member_already_or_the_member_has_an_account,
    names_on_the_roster_are_checked_and_unique,
    a_member_taken_off_the_roster_keeps_balance_and_history_and_leaves_default_lists,
    officers_take_off_plain_members_only_and_a_guild_keeps_an_active_owner,
);

fn members_path(guild: &Guild) -> String {
    format!("/api/v1/guilds/{}/members", guild.slug)
}

async fn add_by_name(app: &TestApp, guild: &Guild, name: &str) -> Value {
    let reply = app.post(&members_path(guild)).token(&guild.owner.token).json(json!({"name": name}));
    reply.send().await.expect(201).json["member"].clone()
}

async fn award(app: &TestApp, guild: &Guild, member: &str, amount: i64) -> crate::support::Reply {
    let body = json!({"member_ids": [member], "amount": amount, "reason": "raid"});
    app.post(&format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool))
        .token(&guild.owner.token)
        .json(body)
        .send()
        .await
}

/// The member ids a list shows, in order.
fn ids(list: &Value, key: &str) -> Vec<String> {
    list[key].as_array().expect("a list").iter().map(|m| m["id"].as_str().unwrap_or("").to_owned()).collect()
}

async fn a_member_added_by_name_is_linked_to_an_account_and_bids_from_that_wallet(app: TestApp) {
    let guild = app.guild("owls").await;
    let (officer, _) = app.member(&guild, "olaf", "officer").await;
    let added = app.post(&members_path(&guild)).token(&officer.token).json(json!({"name": "Thrall"}));
    let thrall = added.send().await.expect(201).json["member"].clone();
    let id = thrall["id"].as_str().unwrap().to_owned();
    assert_eq!(
        thrall,
        json!({"id": id, "user_id": null, "username": null, "name": "Thrall", "role": "member", "active": true})
    );
    award(&app, &guild, &id, 100).await.expect(201);
    let player = app.register("thrall_player").await;
    let me = app.get("/api/v1/me").token(&player.token).send().await.expect(200);
    assert_eq!(me.json["guilds"], json!([]), "not yet a member");

    let linked = app
        .patch(&format!("{}/{id}", members_path(&guild)))
        .token(&officer.token)
        .json(json!({"username": "THRALL_player"}))
        .send()
        .await
        .expect(200);

    assert_eq!(linked.json["member"]["user_id"], player.id.as_str());
    assert_eq!(linked.json["member"]["username"], "thrall_player");
    assert_eq!(linked.json["member"]["name"], "thrall_player", "a linked member's name is their username");
    let me = app.get("/api/v1/me").token(&player.token).send().await.expect(200);
    assert_eq!(me.json["guilds"][0]["member_id"], id.as_str());
    assert_eq!(me.json["guilds"][0]["role"], "member");
    let lot = app.open_lot(&guild, json!({})).await;
    let lot_id = lot["id"].as_str().unwrap();
    app.bid(&guild, lot_id, &player.token, json!(60)).await.expect(201);
    let close = format!("/api/v1/guilds/{}/lots/{lot_id}/close", guild.slug);
    let closed = app.post(&close).token(&guild.owner.token).send().await.expect(200);
    assert_eq!(closed.json["lot"]["winner_member_id"], id.as_str());
    assert_eq!(app.balances(&guild).await[&id], "40.00", "the award before the link and the price after");
    app.assert_ledger_consistent().await;
}

async fn linking_is_refused_when_the_user_is_a_member_already_or_the_member_has_an_account(app: TestApp) {
    let guild = app.guild("owls").await;
    let (ana, ana_member) = app.member(&guild, "ana", "member").await;
    let jaina = add_by_name(&app, &guild, "Jaina").await;
    let jaina_path = format!("{}/{}", members_path(&guild), jaina["id"].as_str().unwrap());
    let link = |path: String, token: String, username: &str| {
        let body = json!({"username": username});
        let app = &app;
        async move { app.patch(&path).token(&token).json(body).send().await }
    };

    link(jaina_path.clone(), guild.owner.token.clone(), "ana").await.expect_error(409, "already_member");
    let ana_path = format!("{}/{ana_member}", members_path(&guild));
    app.register("bob").await;
    link(ana_path, guild.owner.token.clone(), "bob").await.expect_error(409, "already_linked");
    link(jaina_path.clone(), guild.owner.token.clone(), "ghost").await.expect_error(422, "unknown_reference");
    link(jaina_path.clone(), guild.owner.token.clone(), "not a name").await.expect_error(422, "invalid_field");
    link(jaina_path.clone(), ana.token.clone(), "bob").await.expect_error(403, "forbidden");
    let stranger = app.register("stranger").await;
    link(jaina_path.clone(), stranger.token.clone(), "stranger").await.expect_error(404, "not_found");
    let unknown = format!("{}/{}", members_path(&guild), uuid::Uuid::now_v7());
    link(unknown, guild.owner.token.clone(), "bob").await.expect_error(404, "not_found");

    let members = app.get(&members_path(&guild)).token(&guild.owner.token).send().await.expect(200);
    let jaina_now = members.json["members"].as_array().unwrap().iter().find(|m| m["id"] == jaina["id"]).cloned();
    assert_eq!(jaina_now, Some(jaina), "nothing changed");
    let me = app.get("/api/v1/me").token(&stranger.token).send().await.expect(200);
    assert_eq!(me.json["guilds"], json!([]));
}

async fn names_on_the_roster_are_checked_and_unique(app: TestApp) {
    let guild = app.guild("owls").await;
    app.member(&guild, "ana", "member").await;
    add_by_name(&app, &guild, "Jaina").await;
    let path = members_path(&guild);
    let refused = [
        (json!({"name": "JAINA"}), 409, "member_name_taken"),
        (json!({"name": "Ana"}), 409, "member_name_taken"),
        (json!({"name": "   "}), 422, "invalid_field"),
        (json!({"name": "x".repeat(65)}), 422, "invalid_field"),
        (json!({"name": "Thrall", "role": "officer"}), 422, "invalid_field"),
        (json!({"name": "Thrall", "username": "ana"}), 422, "invalid_field"),
        (json!({}), 422, "invalid_field"),
        (json!({"name": 5}), 400, "invalid_json"),
    ];
    for (body, status, code) in refused {
        app.post(&path).token(&guild.owner.token).json(body).send().await.expect_error(status, code);
    }
    // Accents are kept: another name.
    add_by_name(&app, &guild, "Jainä").await;
    let members = app.get(&path).token(&guild.owner.token).send().await.expect(200);
    let names: Vec<&str> =
        members.json["members"].as_array().unwrap().iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["ana", "Jaina", "Jainä", "owls-owner"], "by name, as compared");
}

async fn a_member_taken_off_the_roster_keeps_balance_and_history_and_leaves_default_lists(app: TestApp) {
    let guild = app.guild("owls").await;
    let (ana, ana_member) = app.funded_member(&guild, "ana", 100).await;
    let (_, bob) = app.funded_member(&guild, "bob", 10).await;
    let ana_path = format!("{}/{ana_member}", members_path(&guild));

    let removed = app.delete(&ana_path).token(&guild.owner.token).send().await.expect(200);

    assert_eq!(removed.json["member"]["active"], false);
    let listed = app.get(&members_path(&guild)).token(&guild.owner.token).send().await.expect(200);
    assert!(!ids(&listed.json, "members").contains(&ana_member), "left out by default");
    let all = app.get(&format!("{}?include_inactive=true", members_path(&guild))).token(&guild.owner.token);
    let all = all.send().await.expect(200);
    let shown = all.json["members"].as_array().unwrap().iter().find(|m| m["id"] == ana_member.as_str()).cloned();
    assert_eq!(shown.map(|m| m["active"].clone()), Some(json!(false)));
    assert!(!app.balances(&guild).await.contains_key(&ana_member), "standings leave them out by default");
    let standings = format!("/api/v1/guilds/{}/pools/{}/standings?include_inactive=true", guild.slug, guild.pool);
    let standings = app.get(&standings).token(&guild.owner.token).send().await.expect(200);
    let row = standings.json["standings"].as_array().unwrap().iter().find(|s| s["member_id"] == ana_member.as_str());
    assert_eq!(row.map(|r| (r["balance"].clone(), r["active"].clone())), Some((json!("100.00"), json!(false))));
    let history = format!("/api/v1/guilds/{}/pools/{}/entries?member_id={ana_member}", guild.slug, guild.pool);
    let history = app.get(&history).token(&guild.owner.token).send().await.expect(200);
    assert_eq!(history.json["entries"].as_array().unwrap().len(), 1, "history kept");

    award(&app, &guild, &ana_member, 5).await.expect_error(409, "member_inactive");
    let transfer = json!({"from_member_id": bob, "to_member_id": ana_member, "amount": 1, "reason": "gift"});
    app.post(&format!("/api/v1/guilds/{}/pools/{}/transfers", guild.slug, guild.pool))
        .token(&guild.owner.token)
        .json(transfer)
        .send()
        .await
        .expect_error(409, "member_inactive");
    app.get(&format!("/api/v1/guilds/{}", guild.slug)).token(&ana.token).send().await.expect_error(404, "not_found");
    let me = app.get("/api/v1/me").token(&ana.token).send().await.expect(200);
    assert_eq!(me.json["guilds"], json!([]));
    let lot = app.open_lot(&guild, json!({})).await;
    app.bid(&guild, lot["id"].as_str().unwrap(), &ana.token, json!(20)).await.expect_error(404, "not_found");
    let everyone =
        app.get(&format!("/api/v1/guilds/{}/pools/{}/standings?include_inactive=true", guild.slug, guild.pool));
    let everyone = everyone.token(&guild.owner.token).send().await.expect(200);
    let balances: Vec<&str> =
        everyone.json["standings"].as_array().unwrap().iter().map(|s| s["balance"].as_str().unwrap()).collect();
    assert_eq!(balances, ["100.00", "10.00", "0.00"], "nothing moved");

    let back = app.patch(&ana_path).token(&guild.owner.token).json(json!({"active": true})).send().await.expect(200);
    assert_eq!(back.json["member"]["active"], true);
    award(&app, &guild, &ana_member, 5).await.expect(201);
    app.get(&format!("/api/v1/guilds/{}", guild.slug)).token(&ana.token).send().await.expect(200);
    assert_eq!(app.balances(&guild).await[&ana_member], "105.00");
    app.assert_ledger_consistent().await;
}

async fn officers_take_off_plain_members_only_and_a_guild_keeps_an_active_owner(app: TestApp) {
    let guild = app.guild("owls").await;
    let (officer, officer_member) = app.member(&guild, "olaf", "officer").await;
    let (oda, other_officer) = app.member(&guild, "oda", "officer").await;
    let (member, plain) = app.member(&guild, "mia", "member").await;
    let path = |id: &str| format!("{}/{id}", members_path(&guild));

    app.delete(&path(&other_officer)).token(&officer.token).send().await.expect_error(403, "forbidden");
    app.delete(&path(&plain)).token(&member.token).send().await.expect_error(403, "forbidden");
    app.delete(&path(&guild.owner_member)).token(&guild.owner.token).send().await.expect_error(409, "last_owner");
    app.delete(&path(&uuid::Uuid::now_v7().to_string()))
        .token(&officer.token)
        .send()
        .await
        .expect_error(404, "not_found");
    app.delete(&path(&plain)).token(&officer.token).send().await.expect(200);
    app.patch(&path(&plain)).token(&officer.token).json(json!({"active": true})).send().await.expect(200);
    app.patch(&path(&plain)).token(&officer.token).json(json!({})).send().await.expect_error(422, "invalid_field");
    app.patch(&path(&plain))
        .token(&officer.token)
        .json(json!({"role": "officer"}))
        .send()
        .await
        .expect_error(403, "forbidden");
    app.delete(&path(&officer_member)).token(&guild.owner.token).send().await.expect(200);
    // An owner without an account cannot run the guild: it does not count.
    let ghost = add_by_name(&app, &guild, "Ghost").await;
    let ghost_path = path(ghost["id"].as_str().unwrap());
    app.patch(&ghost_path).token(&guild.owner.token).json(json!({"role": "owner"})).send().await.expect(200);
    app.delete(&path(&guild.owner_member)).token(&guild.owner.token).send().await.expect_error(409, "last_owner");
    // The owner hands the guild on, then may leave it.
    app.patch(&path(&other_officer)).token(&guild.owner.token).json(json!({"role": "owner"})).send().await.expect(200);
    app.delete(&path(&guild.owner_member)).token(&guild.owner.token).send().await.expect(200);
    let me = app.get("/api/v1/me").token(&guild.owner.token).send().await.expect(200);
    assert_eq!(me.json["guilds"], json!([]));
    // Taking off the owner without an account leaves the one who has one.
    app.delete(&ghost_path).token(&oda.token).send().await.expect(200);
    let stranger = app.register("stranger").await;
    app.delete(&path(&plain)).token(&stranger.token).send().await.expect_error(404, "not_found");
}
