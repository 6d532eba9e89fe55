//! Registration, login, sessions, `/me`.

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
