//! Idempotency keys: one effect per key, the first answer replayed, another
//! body refused, and racing duplicates resolved to one effect.

use serde_json::json;

use crate::both_stores;
use crate::support::TestApp;

both_stores!(
    a_refused_request_repeats_its_refusal_under_its_key,
    the_same_key_and_body_replays_the_first_answer,
    the_same_key_with_another_body_is_refused,
    keys_are_scoped_to_their_caller,
    racing_duplicates_have_one_effect,
);

async fn the_same_key_and_body_replays_the_first_answer(app: TestApp) {
    let guild = app.guild("owls").await;
    let path = format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool);
    let body = json!({"member_ids": [guild.owner_member], "amount": "3.5", "reason": "r"});
    let first = app
        .post(&path)
        .token(&guild.owner.token)
        .header("idempotency-key", "award-1")
        .json(body.clone())
        .send()
        .await
        .expect(201);
    // The same document with its keys in another order is the same request.
    let reordered = format!("{{\"reason\": \"r\", \"amount\": \"3.5\", \"member_ids\": [\"{}\"]}}", guild.owner_member);
    let second = app
        .post(&path)
        .token(&guild.owner.token)
        .header("idempotency-key", "award-1")
        .raw(reordered)
        .send()
        .await
        .expect(201);
    assert_eq!(first.json, second.json);
    assert_eq!(app.balances(&guild).await[&guild.owner_member], "3.50");
    for bad in ["", "has space", "ключ"] {
        let reply =
            app.post(&path).token(&guild.owner.token).header("idempotency-key", bad).json(body.clone()).send().await;
        assert_eq!(reply.status.as_u16(), 422, "{bad:?}: {}", reply.text);
    }
    assert_eq!(app.balances(&guild).await[&guild.owner_member], "3.50");
}

async fn the_same_key_with_another_body_is_refused(app: TestApp) {
    let guild = app.guild("owls").await;
    let path = format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool);
    let member = &guild.owner_member;
    app.post(&path)
        .token(&guild.owner.token)
        .header("idempotency-key", "k")
        .json(json!({"member_ids": [member], "amount": 1, "reason": "r"}))
        .send()
        .await
        .expect(201);
    app.post(&path)
        .token(&guild.owner.token)
        .header("idempotency-key", "k")
        .json(json!({"member_ids": [member], "amount": 2, "reason": "r"}))
        .send()
        .await
        .expect_error(422, "idempotency_key_reused");
    app.post(&format!("/api/v1/guilds/{}/pools/{}/adjustments", guild.slug, guild.pool))
        .token(&guild.owner.token)
        .header("idempotency-key", "k")
        .json(json!({"member_ids": [member], "amount": 1, "reason": "r"}))
        .send()
        .await
        .expect_error(400, "invalid_json");
    assert_eq!(app.balances(&guild).await[member], "1.00");
}

async fn keys_are_scoped_to_their_caller(app: TestApp) {
    let guild = app.guild("owls").await;
    let (officer, _) = app.member(&guild, "olaf", "officer").await;
    let path = format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool);
    let body = json!({"member_ids": [guild.owner_member], "amount": 1, "reason": "r"});
    app.post(&path)
        .token(&guild.owner.token)
        .header("idempotency-key", "same")
        .json(body.clone())
        .send()
        .await
        .expect(201);
    app.post(&path).token(&officer.token).header("idempotency-key", "same").json(body).send().await.expect(201);
    assert_eq!(app.balances(&guild).await[&guild.owner_member], "2.00");
}

async fn racing_duplicates_have_one_effect(app: TestApp) {
    let guild = app.guild("owls").await;
    let path = format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool);
    let body = json!({"member_ids": [guild.owner_member], "amount": 10, "reason": "race"});
    let app = std::sync::Arc::new(app);
    let mut racers = Vec::new();
    for _ in 0..12 {
        let (app, path, body, token) = (app.clone(), path.clone(), body.clone(), guild.owner.token.clone());
        racers.push(tokio::spawn(async move {
            app.post(&path).token(&token).header("idempotency-key", "raced-key").json(body).send().await
        }));
    }
    let mut answers = Vec::new();
    for racer in racers {
        let reply = racer.await.unwrap();
        assert!(reply.status.as_u16() == 201 || reply.status.as_u16() == 409, "{}", reply.text);
        if reply.status.as_u16() == 201 {
            answers.push(reply.json["entry"]["id"].clone());
        }
    }
    assert!(!answers.is_empty());
    assert!(answers.iter().all(|id| *id == answers[0]), "every success names the same entry: {answers:?}");
    assert_eq!(app.balances(&guild).await[&guild.owner_member], "10.00");
    app.assert_ledger_consistent().await;
}

async fn a_refused_request_repeats_its_refusal_under_its_key(app: TestApp) {
    let guild = app.guild("owls").await;
    let (_, b) = app.member(&guild, "bob", "member").await;
    let pool = |what: &str| format!("/api/v1/guilds/{}/pools/{}/{what}", guild.slug, guild.pool);
    let transfer = json!({"from_member_id": guild.owner_member, "to_member_id": b, "amount": 5, "reason": "r"});
    let first = app
        .post(&pool("transfers"))
        .token(&guild.owner.token)
        .header("idempotency-key", "t-1")
        .json(transfer.clone())
        .send()
        .await;
    let first = first.expect_error(422, "insufficient_points");
    // Even once the points are there, the key answers as it first did, and moves nothing.
    app.post(&pool("awards"))
        .token(&guild.owner.token)
        .json(json!({"member_ids": [guild.owner_member], "amount": 50, "reason": "r"}))
        .send()
        .await
        .expect(201);
    let again = app
        .post(&pool("transfers"))
        .token(&guild.owner.token)
        .header("idempotency-key", "t-1")
        .json(transfer)
        .send()
        .await;
    assert_eq!((again.status, again.json.clone()), (first.status, first.json.clone()));
    assert_eq!(app.balances(&guild).await[&b], "0.00");
    assert_eq!(app.balances(&guild).await[&guild.owner_member], "50.00");
}
