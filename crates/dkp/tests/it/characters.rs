//! Characters and alts: unique per guild by name and realm as the game
//! compares them, one main per member, every character spending from its
//! member's wallet, scoped by guild and written by officers.

use serde_json::{Value, json};

use crate::both_stores;
use crate::support::{Guild, Reply, TestApp};

both_stores!(
    characters_are_unique_per_guild_by_name_and_realm_as_the_game_compares_them,
    a_member_has_one_main_and_setting_another_unsets_the_first,
    an_alt_spends_from_its_members_wallet,
    characters_are_read_by_members_written_by_officers_and_kept_in_their_guild,
);

fn path(guild: &Guild) -> String {
    format!("/api/v1/guilds/{}/characters", guild.slug)
}

async fn add(app: &TestApp, guild: &Guild, body: Value) -> Reply {
    app.post(&path(guild)).token(&guild.owner.token).json(body).send().await
}

async fn list(app: &TestApp, guild: &Guild, member: &str) -> Vec<Value> {
    let reply = app.get(&format!("{}?member_id={member}", path(guild))).token(&guild.owner.token).send().await;
    reply.expect(200).json["characters"].as_array().expect("characters").clone()
}

async fn characters_are_unique_per_guild_by_name_and_realm_as_the_game_compares_them(app: TestApp) {
    let guild = app.guild("owls").await;
    let (_, ana) = app.member(&guild, "ana", "member").await;
    let (_, bob) = app.member(&guild, "bob", "member").await;

    let thrall = add(&app, &guild, json!({"member_id": ana, "name": "Thrall-Draenor", "class": "Shaman"})).await;

    let thrall = thrall.expect(201).json["character"].clone();
    let id = thrall["id"].as_str().unwrap();
    assert_eq!(
        thrall,
        json!({"id": id, "member_id": ana, "name": "Thrall", "realm": "Draenor", "class": "Shaman", "spec": null, "main": false})
    );
    for taken in [
        json!({"member_id": bob, "name": "thrall", "realm": "DRAENOR"}),
        json!({"member_id": bob, "name": "THRALL-draenor"}),
        json!({"member_id": ana, "name": " Thrall ", "realm": "Draenor"}),
    ] {
        add(&app, &guild, taken).await.expect_error(409, "character_taken");
    }
    add(&app, &guild, json!({"member_id": bob, "name": "Thräll-Draenor"})).await.expect(201);
    add(&app, &guild, json!({"member_id": bob, "name": "Thrall"})).await.expect(201);
    add(&app, &guild, json!({"member_id": bob, "name": "Thrall-Argent Dawn"})).await.expect(201);
    add(&app, &guild, json!({"member_id": bob, "name": "thrall", "realm": "ArgentDawn"}))
        .await
        .expect_error(409, "character_taken");
    add(&app, &guild, json!({"member_id": bob, "name": "Thrall-Azjol-Nerub"})).await.expect(201);
    let other = app.guild("hawks").await;
    let (_, cid) = app.member(&other, "cid", "member").await;
    add(&app, &other, json!({"member_id": cid, "name": "Thrall-Draenor"})).await.expect(201);

    let long = "x".repeat(65);
    let refused = [
        (json!({"member_id": ana, "name": ""}), 422, "invalid_field"),
        (json!({"member_id": ana, "name": "-Draenor"}), 422, "invalid_field"),
        (json!({"member_id": ana, "name": "Thrall-"}), 422, "invalid_field"),
        (json!({"member_id": ana, "name": long}), 422, "invalid_field"),
        (json!({"member_id": ana, "name": "Rexxar", "class": ""}), 422, "invalid_field"),
        (json!({"member_id": "nope", "name": "Rexxar"}), 422, "invalid_field"),
        (json!({"member_id": uuid::Uuid::now_v7(), "name": "Rexxar"}), 422, "unknown_reference"),
        (json!({"member_id": cid, "name": "Rexxar"}), 422, "unknown_reference"),
        (json!({"member_id": ana, "name": "Rexxar", "level": 60}), 400, "invalid_json"),
    ];
    for (body, status, code) in refused {
        add(&app, &guild, body).await.expect_error(status, code);
    }
    let realms: Vec<Value> = list(&app, &guild, &bob).await.iter().map(|c| json!([c["name"], c["realm"]])).collect();
    assert_eq!(
        realms,
        [
            json!(["Thrall", null]),
            json!(["Thrall", "Argent Dawn"]),
            json!(["Thrall", "Azjol-Nerub"]),
            json!(["Thräll", "Draenor"])
        ]
    );
    assert_eq!(list(&app, &guild, &ana).await.len(), 1, "nothing refused was written");
}

async fn a_member_has_one_main_and_setting_another_unsets_the_first(app: TestApp) {
    let guild = app.guild("owls").await;
    let (_, ana) = app.member(&guild, "ana", "member").await;
    let (_, bob) = app.member(&guild, "bob", "member").await;
    let first = add(&app, &guild, json!({"member_id": ana, "name": "Anastra", "main": true})).await.expect(201);
    let first = first.json["character"]["id"].as_str().unwrap().to_owned();
    let mains = |characters: Vec<Value>| -> Vec<String> {
        characters.iter().filter(|c| c["main"] == true).map(|c| c["name"].as_str().unwrap().to_owned()).collect()
    };

    let second = add(&app, &guild, json!({"member_id": ana, "name": "Anabank", "main": true})).await.expect(201);

    let second = second.json["character"]["id"].as_str().unwrap().to_owned();
    assert_eq!(mains(list(&app, &guild, &ana).await), ["Anabank"]);
    let change =
        |id: &str, body: Value| app.patch(&format!("{}/{id}", path(&guild))).token(&guild.owner.token).json(body);
    change(&first, json!({"main": true})).send().await.expect(200);
    assert_eq!(mains(list(&app, &guild, &ana).await), ["Anastra"]);
    let classed = change(&second, json!({"class": "Rogue", "spec": "Combat"})).send().await.expect(200);
    assert_eq!(
        (&classed.json["character"]["class"], &classed.json["character"]["spec"]),
        (&json!("Rogue"), &json!("Combat"))
    );
    let cleared = change(&second, json!({"spec": null})).send().await.expect(200);
    assert_eq!(
        (&cleared.json["character"]["class"], &cleared.json["character"]["spec"]),
        (&json!("Rogue"), &json!(null))
    );
    // Handed to another member, a main is not theirs unless asked; asked, it is, and theirs alone.
    let bobs = add(&app, &guild, json!({"member_id": bob, "name": "Bobtank", "main": true})).await.expect(201);
    let moved = change(&first, json!({"member_id": bob})).send().await.expect(200);
    assert_eq!((&moved.json["character"]["member_id"], &moved.json["character"]["main"]), (&json!(bob), &json!(false)));
    assert_eq!(mains(list(&app, &guild, &bob).await), ["Bobtank"]);
    assert!(mains(list(&app, &guild, &ana).await).is_empty());
    change(&second, json!({"member_id": bob, "main": true})).send().await.expect(200);
    assert_eq!(mains(list(&app, &guild, &bob).await), ["Anabank"]);
    assert_eq!(bobs.json["character"]["main"], true, "Bobtank was the main until then");
    change(&second, json!({"member_id": uuid::Uuid::now_v7()})).send().await.expect_error(422, "unknown_reference");
    change(&second, json!({"main": "yes"})).send().await.expect_error(400, "invalid_json");
}

async fn an_alt_spends_from_its_members_wallet(app: TestApp) {
    let guild = app.guild("owls").await;
    let (ana, member) = app.funded_member(&guild, "ana", 100).await;
    add(&app, &guild, json!({"member_id": member, "name": "Anastra-Draenor", "main": true})).await.expect(201);
    add(&app, &guild, json!({"member_id": member, "name": "Anabank-Draenor"})).await.expect(201);
    let lot = app.open_lot(&guild, json!({"item": {"name": "Bank bag"}})).await;
    let lot_id = lot["id"].as_str().unwrap();

    app.bid(&guild, lot_id, &ana.token, json!(30)).await.expect(201);
    let close = format!("/api/v1/guilds/{}/lots/{lot_id}/close", guild.slug);
    let closed = app.post(&close).token(&guild.owner.token).send().await.expect(200);

    assert_eq!(closed.json["lot"]["winner_member_id"], member.as_str(), "the lot is won by the member");
    let characters = list(&app, &guild, &member).await;
    assert_eq!(characters.len(), 2);
    assert!(characters.iter().all(|c| c["member_id"] == member.as_str()), "both draw on one wallet");
    assert_eq!(app.balances(&guild).await[&member], "70.00");
    app.assert_ledger_consistent().await;
}

async fn characters_are_read_by_members_written_by_officers_and_kept_in_their_guild(app: TestApp) {
    let guild = app.guild("owls").await;
    let (member, mia) = app.member(&guild, "mia", "member").await;
    let (officer, _) = app.member(&guild, "olaf", "officer").await;
    let body = json!({"member_id": mia, "name": "Miara"});
    app.post(&path(&guild)).token(&member.token).json(body.clone()).send().await.expect_error(403, "forbidden");
    let created = app.post(&path(&guild)).token(&officer.token).json(body).send().await.expect(201);
    let id = created.json["character"]["id"].as_str().unwrap().to_owned();
    let seen = app.get(&path(&guild)).token(&member.token).send().await.expect(200);
    assert_eq!(seen.json["characters"].as_array().unwrap().len(), 1);
    let patch = format!("{}/{id}", path(&guild));
    app.patch(&patch).token(&member.token).json(json!({"main": true})).send().await.expect_error(403, "forbidden");
    app.get(&format!("{}?member_id=x", path(&guild)))
        .token(&member.token)
        .send()
        .await
        .expect_error(422, "invalid_field");

    let stranger = app.register("stranger").await;
    app.get(&path(&guild)).token(&stranger.token).send().await.expect_error(404, "not_found");
    let other = app.guild("hawks").await;
    let theirs = format!("/api/v1/guilds/{}/characters/{id}", other.slug);
    app.patch(&theirs)
        .token(&other.owner.token)
        .json(json!({"main": true}))
        .send()
        .await
        .expect_error(404, "not_found");
    let unknown = format!("{}/{}", path(&guild), uuid::Uuid::now_v7());
    app.patch(&unknown).token(&officer.token).json(json!({"main": true})).send().await.expect_error(404, "not_found");
    let listed = app.get(&path(&other)).token(&other.owner.token).send().await.expect(200);
    assert_eq!(listed.json["characters"], json!([]), "another guild's characters are not listed");
    assert_eq!(list(&app, &guild, &mia).await[0]["main"], false, "nothing refused was written");
}
