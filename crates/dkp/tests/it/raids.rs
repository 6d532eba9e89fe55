//! Raids over HTTP, on both stores: a pool's earning rules and a raid's
//! award with its corrections (`raids/award.rs`); the record's refusals,
//! roles and tenancy (`raids/record.rs`); zero-sum pools, lots of a raid,
//! attendance rates and the loot history (`raids/loot.rs`).

mod award;
mod loot;
mod record;

use serde_json::{Value, json};

use crate::support::{Guild, Reply, TestApp};

/// When the test raids start and end.
pub const START: &str = "2026-11-26T18:00:00Z";
pub const END: &str = "2026-11-26T22:00:00Z";

pub fn raid_path(guild: &Guild, raid: &str, what: &str) -> String {
    format!("/api/v1/guilds/{}/raids/{raid}{what}", guild.slug)
}

pub fn pool_path(guild: &Guild, pool: &str, what: &str) -> String {
    format!("/api/v1/guilds/{}/pools/{pool}/{what}", guild.slug)
}

/// The owner sets the rules of `pool`.
pub async fn set_rules(app: &TestApp, guild: &Guild, pool: &str, rules: Value) -> Reply {
    app.put(&pool_path(guild, pool, "rules")).token(&guild.owner.token).json(rules).send().await
}

/// A raid of `pool` from `START` to `END`: its id.
pub async fn new_raid(app: &TestApp, guild: &Guild, pool: &str) -> String {
    let body = json!({"pool_id": pool, "name": "Molten Core", "zone": "MC", "started_at": START, "ended_at": END});
    let reply = app
        .post(&format!("/api/v1/guilds/{}/raids", guild.slug))
        .token(&guild.owner.token)
        .json(body)
        .send()
        .await
        .expect(201);
    reply.json["raid"]["id"].as_str().expect("raid id").to_owned()
}

/// The owner replaces the raid's attendance.
pub async fn attend(app: &TestApp, guild: &Guild, raid: &str, attendees: Value) -> Reply {
    let body = json!({ "attendees": attendees });
    app.put(&raid_path(guild, raid, "/attendance")).token(&guild.owner.token).json(body).send().await
}

/// The owner records a boss killed at `at`.
pub async fn kill(app: &TestApp, guild: &Guild, raid: &str, boss: &str, at: &str) -> Reply {
    let body = json!({"boss": boss, "killed_at": at});
    app.post(&raid_path(guild, raid, "/kills")).token(&guild.owner.token).json(body).send().await
}

/// The owner awards the raid.
pub async fn award(app: &TestApp, guild: &Guild, raid: &str) -> Reply {
    app.post(&raid_path(guild, raid, "/award")).token(&guild.owner.token).send().await
}

pub fn present(member: &str, minutes: i64, on_time: bool) -> Value {
    json!({"member_id": member, "minutes": minutes, "on_time": on_time, "standby": false})
}

pub fn standby(member: &str, minutes: i64, on_time: bool) -> Value {
    json!({"member_id": member, "minutes": minutes, "on_time": on_time, "standby": true})
}

/// Member id to amount of an entry's member postings.
pub fn member_postings(entry: &Value) -> std::collections::BTreeMap<String, String> {
    entry["postings"]
        .as_array()
        .expect("postings")
        .iter()
        .filter_map(|p| Some((p["member_id"].as_str()?.to_owned(), p["amount"].as_str()?.to_owned())))
        .collect()
}
