//! Registration, login, sessions, `/me`.

use std::time::Duration;

use serde_json::json;

use crate::both_stores;
use crate::support::{Kind, TestApp, spawn_app_with};

both_stores!(
    a_user_registers_logs_in_and_sees_themself,
    usernames_are_unique_whatever_their_case,
    a_wrong_password_or_unknown_user_is_unauthenticated,
    logout_ends_the_session,
    the_session_cookie_authenticates_like_the_token,
    bad_registrations_are_rejected_with_invalid_field,
    the_most_common_passwords_are_refused,
);

async fn a_user_registers_logs_in_and_sees_themself(app: TestApp) {
    let reply = app
        .post("/api/v1/auth/register")
        .json(json!({"username": "Ana", "password": "correct horse", "display_name": "Ana the Bold"}))
        .send()
        .await
        .expect(201);
    assert_eq!(reply.json["user"]["username"], "Ana");
    assert_eq!(reply.json["user"]["display_name"], "Ana the Bold");
    assert!(reply.json["user"].get("password_hash").is_none());

    let login = app
        .post("/api/v1/auth/login")
        .json(json!({"username": "ana", "password": "correct horse"}))
        .send()
        .await
        .expect(200);
    let token = login.json["token"].as_str().unwrap();
    assert!(token.len() >= 32);
    let cookie = login.headers["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"), "{cookie}");

    let me = app.get("/api/v1/me").token(token).send().await.expect(200);
    assert_eq!(me.json["user"]["id"], reply.json["user"]["id"]);
    assert_eq!(me.json["guilds"], json!([]));
}

async fn usernames_are_unique_whatever_their_case(app: TestApp) {
    app.register("Bjorn").await;
    app.post("/api/v1/auth/register")
        .json(json!({"username": "BJORN", "password": "another pass"}))
        .send()
        .await
        .expect_error(409, "username_taken");
}

async fn a_wrong_password_or_unknown_user_is_unauthenticated(app: TestApp) {
    app.register("cara").await;
    app.post("/api/v1/auth/login")
        .json(json!({"username": "cara", "password": "wrong password"}))
        .send()
        .await
        .expect_error(401, "unauthenticated");
    app.post("/api/v1/auth/login")
        .json(json!({"username": "nobody", "password": "correct horse"}))
        .send()
        .await
        .expect_error(401, "unauthenticated");
    app.get("/api/v1/me").send().await.expect_error(401, "unauthenticated");
    app.get("/api/v1/me").token("not-a-token").send().await.expect_error(401, "unauthenticated");
}

async fn logout_ends_the_session(app: TestApp) {
    let user = app.register("dana").await;
    app.post("/api/v1/auth/logout").token(&user.token).send().await.expect(204);
    app.get("/api/v1/me").token(&user.token).send().await.expect_error(401, "unauthenticated");
}

async fn the_session_cookie_authenticates_like_the_token(app: TestApp) {
    let user = app.register("emil").await;
    let me = app
        .get("/api/v1/me")
        .header("cookie", &format!("theme=dark; dkp_session={}", user.token))
        .send()
        .await
        .expect(200);
    assert_eq!(me.json["user"]["username"], "emil");
}

async fn bad_registrations_are_rejected_with_invalid_field(app: TestApp) {
    for body in [
        json!({"username": "ab", "password": "correct horse"}),
        json!({"username": "has space", "password": "correct horse"}),
        json!({"username": "fine_name", "password": "short"}),
        json!({"username": "fine_name", "password": "correct horse", "display_name": "   "}),
    ] {
        app.post("/api/v1/auth/register").json(body).send().await.expect_error(422, "invalid_field");
    }
}

#[tokio::test]
async fn an_expired_session_is_unauthenticated() {
    for kind in [Kind::Sqlite, Kind::Postgres] {
        let app = spawn_app_with(kind, |config| config.session_ttl_hours = 0).await;
        let user = app.register("fynn").await;
        app.get("/api/v1/me").token(&user.token).send().await.expect_error(401, "unauthenticated");
    }
}

async fn the_most_common_passwords_are_refused(app: TestApp) {
    for password in ["password", "12345678", "Password1", "qwertyuiop", "iloveyou", "PASSWORD123"] {
        let reply = app.post("/api/v1/auth/register").json(json!({"username": "gil", "password": password}));
        let reply = reply.send().await.expect_error(422, "invalid_field");
        assert!(reply.json["error"]["message"].as_str().unwrap().starts_with("password"), "{}", reply.text);
    }
    app.register("gil").await;
}

/// Logs `name` in with `password` from `address`: the status and `Retry-After`.
async fn login_from(app: &TestApp, address: &str, name: &str, password: &str) -> (u16, Option<u64>) {
    let reply = app
        .post("/api/v1/auth/login")
        .header("x-forwarded-for", address)
        .json(json!({"username": name, "password": password}))
        .send()
        .await;
    let retry = reply.headers.get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
    if reply.status.as_u16() == 429 {
        assert_eq!(reply.code(), "rate_limited");
    }
    (reply.status.as_u16(), retry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_throttled_per_account_and_address() {
    let app = spawn_app_with(Kind::Sqlite, |config| config.scale.trust_forwarded_for = true).await;
    app.register("gus").await;
    for name in ["gus", "nobody"] {
        for _ in 0..10 {
            assert_eq!(login_from(&app, "10.0.0.1", name, "wrong password").await, (401, None), "{name}");
        }
        let (status, retry) = login_from(&app, "10.0.0.1", name, "wrong password").await;
        assert_eq!(status, 429, "{name}: the eleventh failure in a row");
        assert!(retry.is_some_and(|s| (1..=900).contains(&s)), "{retry:?}");
    }
    assert_eq!(login_from(&app, "10.0.0.1", "gus", "correct horse").await.0, 429);
    assert_eq!(login_from(&app, "10.0.0.2", "gus", "correct horse").await.0, 200, "the owner, from elsewhere");

    app.clock.advance(Duration::from_secs(15 * 60));
    assert_eq!(login_from(&app, "10.0.0.1", "gus", "correct horse").await.0, 200, "the window passed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_guessing_many_accounts_is_throttled() {
    let app = spawn_app_with(Kind::Sqlite, |config| config.scale.trust_forwarded_for = true).await;
    app.register("hal").await;
    let mut refused = 0;
    for n in 0..60 {
        let (status, _) = login_from(&app, "10.0.0.3", &format!("user{n}"), "wrong password").await;
        refused += usize::from(status == 429);
    }
    assert_eq!(refused, 10, "fifty failures from one address, then refusals");
    assert_eq!(login_from(&app, "10.0.0.3", "hal", "correct horse").await.0, 429);
    assert_eq!(login_from(&app, "10.0.0.4", "hal", "correct horse").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_wrong_logins_costs_at_most_the_limit() {
    let app = spawn_app_with(Kind::Sqlite, |config| config.scale.trust_forwarded_for = true).await;
    app.register("ivy").await;
    let burst = (0..32).map(|_| login_from(&app, "10.0.0.5", "ivy", "wrong password"));
    let answers = futures_util::future::join_all(burst).await;
    let checked = answers.iter().filter(|(status, _)| *status == 401).count();
    assert_eq!(checked, 10, "{answers:?}");
    assert!(answers.iter().all(|(status, _)| [401, 429].contains(status)));
    assert_eq!(login_from(&app, "10.0.0.6", "ivy", "correct horse").await.0, 200);
}
