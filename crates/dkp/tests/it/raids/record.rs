//! A raid's record: what creating, changing and recording a raid refuses
//! (with stable codes, changing nothing), roles, and guild tenancy.

use serde_json::{Value, json};

use super::{END, START, attend, award, kill, new_raid, present, raid_path};
use crate::both_stores;
use crate::support::{Guild, TestApp};

both_stores!(
    a_raid_is_created_listed_and_changed_by_officers,
    bad_raid_input_is_refused_with_stable_codes,
    bad_attendance_and_kills_are_refused_and_change_nothing,
    members_read_raids_officers_write_them_and_other_guilds_see_nothing,
);

fn raids_path(guild: &Guild) -> String {
    format!("/api/v1/guilds/{}/raids", guild.slug)
}

async fn page(app: &TestApp, guild: &Guild, raid: &str) -> Value {
    app.get(&raid_path(guild, raid, "")).token(&guild.owner.token).send().await.expect(200).json["raid"].clone()
}

async fn a_raid_is_created_listed_and_changed_by_officers(app: TestApp) {
    let guild = app.guild("owls").await;
    let (officer, _) = app.member(&guild, "otto", "officer").await;
    let body = json!({"pool_id": guild.pool, "name": " Onyxia ", "started_at": "2026-11-26T20:00:00+02:00"});

    let created = app.post(&raids_path(&guild)).token(&officer.token).json(body).send().await.expect(201);

    let raid = &created.json["raid"];
    assert_eq!((raid["name"].as_str(), raid["zone"].as_str()), (Some("Onyxia"), None));
    assert_eq!((raid["started_at"].as_str(), raid["ended_at"].as_str()), (Some(START), None));
    assert_eq!((raid["attendance"].clone(), raid["awarded"].clone()), (json!([]), json!("0.00")));
    let id = raid["id"].as_str().unwrap();
    let second = new_raid(&app, &guild, &guild.pool).await;
    let listed = app.get(&format!("{}?pool_id={}&limit=1", raids_path(&guild), guild.pool)).token(&officer.token);
    let listed = listed.send().await.expect(200);
    assert_eq!(listed.json["raids"][0]["id"], second.as_str(), "newest first");
    let next = listed.json["next_cursor"].as_str().unwrap();
    let rest = app.get(&format!("{}?cursor={next}", raids_path(&guild))).token(&officer.token).send().await.expect(200);
    assert_eq!((rest.json["raids"][0]["id"].as_str(), rest.json["next_cursor"].clone()), (Some(id), Value::Null));
    kill(&app, &guild, id, "Onyxia", "2026-11-26T21:00:00Z").await.expect(201);
    let change = |body: Value| app.patch(&raid_path(&guild, id, "")).token(&officer.token).json(body).send();
    change(json!({"ended_at": "2026-11-26T20:59:59Z"})).await.expect_error(422, "kill_outside_raid");
    change(json!({"ended_at": "2026-11-26T17:00:00Z"})).await.expect_error(422, "invalid_field");
    let changed = change(json!({"ended_at": END, "zone": "Onyxia's Lair"})).await.expect(200);
    assert_eq!(
        (changed.json["raid"]["ended_at"].as_str(), changed.json["raid"]["name"].as_str()),
        (Some(END), Some("Onyxia"))
    );
    kill(&app, &guild, id, "Late", "2026-11-26T22:00:01Z").await.expect_error(422, "kill_outside_raid");
}

async fn bad_raid_input_is_refused_with_stable_codes(app: TestApp) {
    let guild = app.guild("owls").await;
    let other = app.guild("hawks").await;
    let raid = |pool: &str, started: &str, ended: Value| json!({"pool_id": pool, "name": "MC", "started_at": started, "ended_at": ended});
    let cases = [
        (raid(&guild.pool, "yesterday", Value::Null), 422, "invalid_field"),
        (raid(&guild.pool, START, json!("2026-11-26T17:59:59Z")), 422, "invalid_field"),
        (raid(&other.pool, START, Value::Null), 422, "unknown_reference"),
        (raid("not-an-id", START, Value::Null), 422, "invalid_field"),
        (json!({"pool_id": guild.pool, "name": "", "started_at": START}), 422, "invalid_field"),
        (json!({"pool_id": guild.pool, "started_at": START}), 400, "invalid_json"),
    ];
    for (body, status, code) in cases {
        let reply = app.post(&raids_path(&guild)).token(&guild.owner.token).json(body.clone()).send().await;
        assert_eq!((reply.status.as_u16(), reply.code()), (status, code), "{body}: {}", reply.text);
    }
    let listed = app.get(&raids_path(&guild)).token(&guild.owner.token).send().await.expect(200);
    assert_eq!(listed.json["raids"], json!([]), "no raid was made");
}

async fn bad_attendance_and_kills_are_refused_and_change_nothing(app: TestApp) {
    let guild = app.guild("owls").await;
    let other = app.guild("hawks").await;
    let (_, a) = app.member(&guild, "ana", "member").await;
    let raid = new_raid(&app, &guild, &guild.pool).await;
    attend(&app, &guild, &raid, json!([present(&a, 60, true)])).await.expect(200);
    let before = page(&app, &guild, &raid).await;
    let stranger = uuid::Uuid::now_v7().to_string();
    let cases = [
        (json!([present(&a, 60, true), present(&stranger, 60, true)]), "unknown_reference"),
        (json!([present(&other.owner_member, 60, true)]), "unknown_reference"),
        (json!([present(&a, -1, true)]), "invalid_field"),
        (json!([present(&a, 10, true), present(&a, 20, false)]), "invalid_field"),
        (json!([present("nobody", 10, true)]), "invalid_field"),
    ];
    for (attendees, code) in cases {
        let reply = attend(&app, &guild, &raid, attendees.clone()).await;
        assert_eq!((reply.status.as_u16(), reply.code()), (422, code), "{attendees}: {}", reply.text);
    }
    attend(&app, &guild, &raid, json!([{"member_id": a, "minutes": 1.5}])).await.expect_error(400, "invalid_json");
    kill(&app, &guild, &raid, "Early", "2026-11-26T17:59:59Z").await.expect_error(422, "kill_outside_raid");
    kill(&app, &guild, &raid, "Late", "2026-11-26T22:00:01Z").await.expect_error(422, "kill_outside_raid");
    kill(&app, &guild, &raid, "Whenever", "soon").await.expect_error(422, "invalid_field");
    kill(&app, &guild, &raid, " ", START).await.expect_error(422, "invalid_field");

    assert_eq!(page(&app, &guild, &raid).await, before, "the raid is as it was");
    kill(&app, &guild, &raid, "On the hour", END).await.expect(201);
    let unknown_kill = raid_path(&guild, &raid, &format!("/kills/{stranger}"));
    app.delete(&unknown_kill).token(&guild.owner.token).send().await.expect_error(404, "not_found");
}

async fn members_read_raids_officers_write_them_and_other_guilds_see_nothing(app: TestApp) {
    let guild = app.guild("owls").await;
    let other = app.guild("hawks").await;
    let (member, a) = app.member(&guild, "ana", "member").await;
    let raid = new_raid(&app, &guild, &guild.pool).await;
    attend(&app, &guild, &raid, json!([present(&a, 60, true)])).await.expect(200);

    app.get(&raid_path(&guild, &raid, "")).token(&member.token).send().await.expect(200);
    let as_member = |method: &str, what: &str, body: Value| {
        let call = app.call(method.parse().unwrap(), &raid_path(&guild, &raid, what)).token(&member.token);
        call.json(body).send()
    };
    as_member("PUT", "/attendance", json!({"attendees": []})).await.expect_error(403, "forbidden");
    as_member("POST", "/kills", json!({"boss": "x", "killed_at": START})).await.expect_error(403, "forbidden");
    as_member("PATCH", "", json!({"name": "x"})).await.expect_error(403, "forbidden");
    app.post(&raid_path(&guild, &raid, "/award")).token(&member.token).send().await.expect_error(403, "forbidden");
    let body = json!({"pool_id": guild.pool, "name": "x", "started_at": START});
    app.post(&raids_path(&guild)).token(&member.token).json(body).send().await.expect_error(403, "forbidden");

    // The other guild's owner, through their own guild's routes, finds nothing.
    let theirs = |what: &str| raid_path(&other, &raid, what);
    app.get(&theirs("")).token(&other.owner.token).send().await.expect_error(404, "not_found");
    let attendance = json!({"attendees": [present(&other.owner_member, 1, true)]});
    let put = app.put(&theirs("/attendance")).token(&other.owner.token).json(attendance).send().await;
    put.expect_error(404, "not_found");
    app.post(&theirs("/award")).token(&other.owner.token).send().await.expect_error(404, "not_found");
    let listed = app.get(&raids_path(&other)).token(&other.owner.token).send().await.expect(200);
    assert_eq!(listed.json["raids"], json!([]));
    // And through this guild's routes, as a non-member, neither.
    app.get(&raid_path(&guild, &raid, "")).token(&other.owner.token).send().await.expect_error(404, "not_found");
    award(&app, &guild, &raid).await.expect(200);
    assert_eq!(app.balances(&guild).await[&a], "0.00", "a pool with no rules pays nothing");
}
