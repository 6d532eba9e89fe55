//! Bad input gets the contract's 4xx code, changes nothing, and never a 5xx.

use serde_json::json;

use crate::both_stores;
use crate::support::TestApp;

both_stores!(
    malformed_or_misshapen_bodies_are_invalid_json,
    every_bad_amount_form_is_invalid_amount,
    oversized_bodies_and_wrong_content_types_are_refused,
    unknown_ids_and_routes_are_404,
    malformed_paths_and_queries_answer_in_the_envelope,
    numbers_beyond_any_range_are_invalid_amount,
);

async fn malformed_or_misshapen_bodies_are_invalid_json(app: TestApp) {
    let guild = app.guild("owls").await;
    let award = format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool);
    let member = &guild.owner_member;
    let bodies = [
        "{not json".to_owned(),
        "".to_owned(),
        "[]".to_owned(),
        json!({"member_ids": member, "amount": 5, "reason": "r"}).to_string(),
        json!({"member_ids": [member], "amount": 5}).to_string(),
        json!({"member_ids": [member], "amount": 5, "reason": 7}).to_string(),
        json!({"member_ids": [member], "amount": 5, "reason": "r", "bonus": 100}).to_string(),
    ];
    for body in bodies {
        app.post(&award).token(&guild.owner.token).raw(body.clone()).send().await.expect_error(400, "invalid_json");
    }
    app.post("/api/v1/auth/register").raw("{\"username\": 5}").send().await.expect_error(400, "invalid_json");
    assert_eq!(app.balances(&guild).await[member], "0.00");
}

async fn every_bad_amount_form_is_invalid_amount(app: TestApp) {
    let guild = app.guild("owls").await;
    let member = &guild.owner_member;
    let path = format!("/api/v1/guilds/{}/pools/{}/adjustments", guild.slug, guild.pool);
    let bad = [
        json!("1.005"),
        json!(1.5),
        json!(12.345),
        json!("1e3"),
        json!(1e3),
        json!("NaN"),
        json!("Infinity"),
        json!("-Infinity"),
        json!(""),
        json!(" 5"),
        json!("5 "),
        json!("+5"),
        json!(".5"),
        json!("0x10"),
        json!(null),
        json!(true),
        json!([5]),
        json!({"value": 5}),
        json!("1000000000000.01"),
        json!(9_223_372_036_854_775_807_i64),
        json!(18_446_744_073_709_551_615_u64),
        json!("99999999999999999999999999999"),
        json!(0),
        json!("0.00"),
    ];
    for amount in bad {
        let reply = app
            .post(&path)
            .token(&guild.owner.token)
            .json(json!({"member_id": member, "amount": amount, "reason": "r"}))
            .send()
            .await;
        assert_eq!((reply.status.as_u16(), reply.code()), (422, "invalid_amount"), "amount {amount}: {}", reply.text);
    }
    // An award whose total overflows is refused the same way.
    let members: Vec<String> = vec![member.clone()];
    app.post(&format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool))
        .token(&guild.owner.token)
        .json(json!({"member_ids": members, "amount": "1000000000000", "reason": "r"}))
        .send()
        .await
        .expect(201);
    for _ in 0..2 {
        let reply = app
            .post(&path)
            .token(&guild.owner.token)
            .json(json!({"member_id": member, "amount": "1000000000000", "reason": "r"}))
            .send()
            .await;
        assert!(reply.status.is_success() || reply.code() == "invalid_amount", "{}", reply.text);
    }
    app.assert_ledger_consistent().await;
}

async fn oversized_bodies_and_wrong_content_types_are_refused(app: TestApp) {
    let guild = app.guild("owls").await;
    let path = format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool);
    let huge = format!("{{\"member_ids\": [], \"amount\": 1, \"reason\": \"{}\"}}", "x".repeat(1024 * 1024 + 1));
    app.post(&path).token(&guild.owner.token).raw(huge).send().await.expect_error(413, "payload_too_large");
    app.post(&path)
        .token(&guild.owner.token)
        .bare(json!({"member_ids": [guild.owner_member], "amount": 1, "reason": "r"}).to_string())
        .send()
        .await
        .expect_error(415, "unsupported_media_type");
    assert_eq!(app.balances(&guild).await[&guild.owner_member], "0.00");
}

async fn unknown_ids_and_routes_are_404(app: TestApp) {
    let guild = app.guild("owls").await;
    let token = &guild.owner.token;
    let unknown = uuid::Uuid::now_v7();
    app.get(&format!("/api/v1/guilds/{}/pools/{unknown}/standings", guild.slug))
        .token(token)
        .send()
        .await
        .expect_error(404, "not_found");
    app.get(&format!("/api/v1/guilds/{}/pools/not-an-id/entries", guild.slug))
        .token(token)
        .send()
        .await
        .expect_error(404, "not_found");
    app.post(&format!("/api/v1/guilds/{}/pools/{unknown}/awards", guild.slug))
        .token(token)
        .json(json!({"member_ids": [guild.owner_member], "amount": 1, "reason": "r"}))
        .send()
        .await
        .expect_error(404, "not_found");
    // A member id in the body that is not in this guild is a 422, not a 404.
    app.post(&format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool))
        .token(token)
        .json(json!({"member_ids": [unknown], "amount": 1, "reason": "r"}))
        .send()
        .await
        .expect_error(422, "unknown_reference");
    app.post(&format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool))
        .token(token)
        .json(json!({"member_ids": ["x"], "amount": 1, "reason": "r"}))
        .send()
        .await
        .expect_error(422, "invalid_field");
    app.get("/api/v1/nothing-here").send().await.expect_error(404, "not_found");
    app.get("/api/v1/guilds/%00/pools").token(token).send().await.expect_error(404, "not_found");
    let too_many: Vec<String> = (0..1001).map(|_| guild.owner_member.clone()).collect();
    app.post(&format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool))
        .token(token)
        .json(json!({"member_ids": too_many, "amount": 1, "reason": "r"}))
        .send()
        .await
        .expect_error(422, "invalid_field");
    app.call(axum::http::Method::DELETE, "/api/v1/me")
        .token(token)
        .send()
        .await
        .expect_error(405, "method_not_allowed");
}

async fn malformed_paths_and_queries_answer_in_the_envelope(app: TestApp) {
    let guild = app.guild("owls").await;
    let token = &guild.owner.token;
    let paths = [
        (format!("/api/v1/guilds/{}/lots/%ff%fe", guild.slug), 404, "not_found"),
        (format!("/api/v1/guilds/{}/pools/%ff/standings", guild.slug), 404, "not_found"),
        ("/api/v1/guilds/%c3%28".to_owned(), 404, "not_found"),
        (format!("/api/v1/guilds/{}/lots?status=%ff", guild.slug), 422, "invalid_field"),
        ("/api/v1/ws?token=%ff%fe".to_owned(), 400, "websocket_required"),
        ("/blobs/%ff".to_owned(), 404, "not_found"),
    ];
    for (path, status, code) in paths {
        let reply = app.get(&path).token(token).send().await;
        assert_eq!((reply.status.as_u16(), reply.code()), (status, code), "{path}: {}", reply.text);
        assert_eq!(reply.headers["content-type"], "application/json", "{path}");
    }
}

async fn numbers_beyond_any_range_are_invalid_amount(app: TestApp) {
    let guild = app.guild("owls").await;
    let path = format!("/api/v1/guilds/{}/pools/{}/adjustments", guild.slug, guild.pool);
    let member = &guild.owner_member;
    for amount in ["1e400".to_owned(), "-1e400".to_owned(), "9".repeat(400), format!("-{}", "1".repeat(400))] {
        let body = format!(r#"{{"member_id": "{member}", "amount": {amount}, "reason": "r"}}"#);
        let reply = app.post(&path).token(&guild.owner.token).raw(body).send().await;
        assert_eq!((reply.status.as_u16(), reply.code()), (422, "invalid_amount"), "{amount}: {}", reply.text);
    }
    // Inside a string, in an array, a number-like text is left as it is.
    let body = format!(r#"{{"member_ids": ["{member}"], "amount": 5, "reason": "1e400 \" 9e999"}}"#);
    let award = format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool);
    let reply = app.post(&award).token(&guild.owner.token).raw(body).send().await.expect(201);
    assert_eq!(reply.json["entry"]["reason"], "1e400 \" 9e999");
    assert_eq!(app.balances(&guild).await[member], "5.00");
}
