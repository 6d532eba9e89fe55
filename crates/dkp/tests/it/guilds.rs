//! Guild tenancy and roles.

use serde_json::json;

use crate::both_stores;
use crate::support::TestApp;

both_stores!(
    a_guild_is_created_with_its_maker_as_owner,
    slugs_are_unique,
    a_non_member_gets_404_for_every_guild_resource,
    members_read_but_cannot_act_as_officers,
    officers_add_plain_members_only,
    the_owner_grants_roles_and_a_guild_keeps_an_owner,
    a_user_belongs_to_several_guilds,
);

async fn a_guild_is_created_with_its_maker_as_owner(app: TestApp) {
    let ana = app.register("ana").await;
    let reply = app
        .post("/api/v1/guilds")
        .token(&ana.token)
        .json(json!({"name": "Night Owls", "slug": "owls"}))
        .send()
        .await
        .expect(201);
    assert_eq!(reply.json["guild"]["slug"], "owls");
    let me = app.get("/api/v1/me").token(&ana.token).send().await.expect(200);
    assert_eq!(me.json["guilds"][0]["role"], "owner");
    let shown = app.get("/api/v1/guilds/owls").token(&ana.token).send().await.expect(200);
    assert_eq!(shown.json["guild"]["name"], "Night Owls");
    let members = app.get("/api/v1/guilds/owls/members").token(&ana.token).send().await.expect(200);
    assert_eq!(members.json["members"][0]["role"], "owner");
    assert_eq!(members.json["members"][0]["username"], "ana");
}

async fn slugs_are_unique(app: TestApp) {
    let guild = app.guild("owls").await;
    app.post("/api/v1/guilds")
        .token(&guild.owner.token)
        .json(json!({"name": "Other", "slug": "owls"}))
        .send()
        .await
        .expect_error(409, "slug_taken");
    app.post("/api/v1/guilds")
        .token(&guild.owner.token)
        .json(json!({"name": "Other", "slug": "Not A Slug"}))
        .send()
        .await
        .expect_error(422, "invalid_field");
}

async fn a_non_member_gets_404_for_every_guild_resource(app: TestApp) {
    let guild = app.guild("owls").await;
    let stranger = app.register("stranger").await;
    let (slug, pool, member) = (&guild.slug, &guild.pool, &guild.owner_member);
    let award = json!({"member_ids": [member], "amount": 5, "reason": "x"});
    app.post(&format!("/api/v1/guilds/{slug}/pools/{pool}/awards"))
        .token(&guild.owner.token)
        .json(award.clone())
        .send()
        .await
        .expect(201);
    let entry = app
        .get(&format!("/api/v1/guilds/{slug}/pools/{pool}/entries"))
        .token(&guild.owner.token)
        .send()
        .await
        .expect(200);
    let entry_id = entry.json["entries"][0]["id"].as_str().unwrap().to_owned();
    let gets = [
        format!("/api/v1/guilds/{slug}"),
        format!("/api/v1/guilds/{slug}/members"),
        format!("/api/v1/guilds/{slug}/pools"),
        format!("/api/v1/guilds/{slug}/pools/{pool}/standings"),
        format!("/api/v1/guilds/{slug}/pools/{pool}/entries"),
        format!("/api/v1/guilds/{slug}/audit"),
        "/api/v1/guilds/no-such-guild".to_owned(),
    ];
    for path in gets {
        app.get(&path).token(&stranger.token).send().await.expect_error(404, "not_found");
    }
    let posts = [
        (format!("/api/v1/guilds/{slug}/members"), json!({"username": "stranger", "role": "member"})),
        (format!("/api/v1/guilds/{slug}/pools"), json!({"name": "Mine"})),
        (format!("/api/v1/guilds/{slug}/pools/{pool}/awards"), award),
        (format!("/api/v1/guilds/{slug}/entries/{entry_id}/reverse"), json!({"reason": "x"})),
    ];
    for (path, body) in posts {
        app.post(&path).token(&stranger.token).json(body).send().await.expect_error(404, "not_found");
    }
    app.patch(&format!("/api/v1/guilds/{slug}/members/{member}"))
        .token(&stranger.token)
        .json(json!({"role": "member"}))
        .send()
        .await
        .expect_error(404, "not_found");
    // A pool or entry of one guild is not reachable through another guild's address.
    let other = app.guild("other").await;
    app.get(&format!("/api/v1/guilds/other/pools/{pool}/standings"))
        .token(&other.owner.token)
        .send()
        .await
        .expect_error(404, "not_found");
    app.post(&format!("/api/v1/guilds/other/entries/{entry_id}/reverse"))
        .token(&other.owner.token)
        .json(json!({"reason": "x"}))
        .send()
        .await
        .expect_error(404, "not_found");
    assert_eq!(app.balances(&guild).await[member], "5.00");
}

async fn members_read_but_cannot_act_as_officers(app: TestApp) {
    let guild = app.guild("owls").await;
    let (member, member_id) = app.member(&guild, "mia", "member").await;
    let (slug, pool) = (&guild.slug, &guild.pool);
    app.get(&format!("/api/v1/guilds/{slug}/pools/{pool}/standings")).token(&member.token).send().await.expect(200);
    app.get(&format!("/api/v1/guilds/{slug}/pools/{pool}/entries")).token(&member.token).send().await.expect(200);
    app.get(&format!("/api/v1/guilds/{slug}/members")).token(&member.token).send().await.expect(200);
    app.get(&format!("/api/v1/guilds/{slug}/audit")).token(&member.token).send().await.expect_error(403, "forbidden");
    app.post(&format!("/api/v1/guilds/{slug}/pools/{pool}/awards"))
        .token(&member.token)
        .json(json!({"member_ids": [member_id], "amount": 100, "reason": "self-service"}))
        .send()
        .await
        .expect_error(403, "forbidden");
    app.post(&format!("/api/v1/guilds/{slug}/pools"))
        .token(&member.token)
        .json(json!({"name": "Mine"}))
        .send()
        .await
        .expect_error(403, "forbidden");
    assert_eq!(app.balances(&guild).await[&member_id], "0.00");
}

async fn officers_add_plain_members_only(app: TestApp) {
    let guild = app.guild("owls").await;
    let (officer, _) = app.member(&guild, "olaf", "officer").await;
    app.register("newbie").await;
    app.register("climber").await;
    let path = format!("/api/v1/guilds/{}/members", guild.slug);
    app.post(&path)
        .token(&officer.token)
        .json(json!({"username": "newbie", "role": "member"}))
        .send()
        .await
        .expect(201);
    app.post(&path)
        .token(&officer.token)
        .json(json!({"username": "climber", "role": "officer"}))
        .send()
        .await
        .expect_error(403, "forbidden");
    app.post(&path)
        .token(&officer.token)
        .json(json!({"username": "newbie", "role": "member"}))
        .send()
        .await
        .expect_error(409, "already_member");
    app.post(&path)
        .token(&officer.token)
        .json(json!({"username": "ghost", "role": "member"}))
        .send()
        .await
        .expect_error(422, "unknown_reference");
    app.post(&path)
        .token(&officer.token)
        .json(json!({"username": "climber", "role": "king"}))
        .send()
        .await
        .expect_error(422, "invalid_field");
    // Officers cannot change roles.
    let members = app.get(&path).token(&officer.token).send().await.expect(200);
    let newbie = members.json["members"].as_array().unwrap().iter().find(|m| m["username"] == "newbie").unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.patch(&format!("{path}/{newbie}"))
        .token(&officer.token)
        .json(json!({"role": "officer"}))
        .send()
        .await
        .expect_error(403, "forbidden");
}

async fn the_owner_grants_roles_and_a_guild_keeps_an_owner(app: TestApp) {
    let guild = app.guild("owls").await;
    let (_, mia) = app.member(&guild, "mia", "member").await;
    let path = format!("/api/v1/guilds/{}/members", guild.slug);
    let reply = app
        .patch(&format!("{path}/{mia}"))
        .token(&guild.owner.token)
        .json(json!({"role": "officer"}))
        .send()
        .await
        .expect(200);
    assert_eq!(reply.json["member"]["role"], "officer");
    app.patch(&format!("{path}/{}", guild.owner_member))
        .token(&guild.owner.token)
        .json(json!({"role": "member"}))
        .send()
        .await
        .expect_error(409, "last_owner");
    app.patch(&format!("{path}/{mia}"))
        .token(&guild.owner.token)
        .json(json!({"role": "owner"}))
        .send()
        .await
        .expect(200);
    app.patch(&format!("{path}/{}", uuid::Uuid::now_v7()))
        .token(&guild.owner.token)
        .json(json!({"role": "member"}))
        .send()
        .await
        .expect_error(404, "not_found");
    app.patch(&format!("{path}/{}", guild.owner_member))
        .token(&guild.owner.token)
        .json(json!({"role": "member"}))
        .send()
        .await
        .expect(200);
    let audit = app.get(&format!("/api/v1/guilds/{}/audit", guild.slug)).token(&guild.owner.token).send().await;
    // The former owner is now a plain member and may not read the audit log.
    audit.expect_error(403, "forbidden");
}

async fn a_user_belongs_to_several_guilds(app: TestApp) {
    let owls = app.guild("owls").await;
    let hawks = app.guild("hawks").await;
    let (mia, _) = app.member(&owls, "mia", "member").await;
    app.post("/api/v1/guilds/hawks/members")
        .token(&hawks.owner.token)
        .json(json!({"username": "mia", "role": "officer"}))
        .send()
        .await
        .expect(201);
    let me = app.get("/api/v1/me").token(&mia.token).send().await.expect(200);
    let roles: Vec<(String, String)> = me.json["guilds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["slug"].as_str().unwrap().to_owned(), g["role"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(roles, vec![("hawks".into(), "officer".into()), ("owls".into(), "member".into())]);
}
