//! Requests that ride on the session cookie must come from the service's own
//! pages: a change (any method but GET, HEAD, OPTIONS) or a WebSocket upgrade
//! whose `Origin` (or, without one, `Sec-Fetch-Site`) names another site is
//! refused with 403 `cross_origin`. A bearer token is never sent by a browser
//! on its own, so requests that carry one are not checked.

use serde_json::json;

use crate::both_stores;
use crate::support::{Feed, Kind, TestApp, spawn_app_with};

both_stores!(a_cookie_request_from_another_site_changes_nothing, a_cookie_websocket_from_another_site_is_refused);

const HOST: &str = "dkp.test";

async fn a_cookie_request_from_another_site_changes_nothing(app: TestApp) {
    let guild = app.guild("owls").await;
    let lot = app.open_lot(&guild, json!({})).await;
    let close = format!("/api/v1/guilds/{}/lots/{}/close", guild.slug, lot["id"].as_str().unwrap());
    let cookie = format!("dkp_session={}", guild.owner.token);
    let from =
        |origin: &'static str| app.post(&close).header("host", HOST).header("cookie", &cookie).header("origin", origin);

    for origin in ["https://evil.example", "null", "http://dkp.test.evil.example", "http://dkp.test:8443"] {
        from(origin).send().await.expect_error(403, "cross_origin");
    }
    for site in ["cross-site", "same-site"] {
        let reply = app.post(&close).header("host", HOST).header("cookie", &cookie).header("sec-fetch-site", site);
        reply.send().await.expect_error(403, "cross_origin");
    }
    let logout = app.post("/api/v1/auth/logout").header("host", HOST).header("cookie", &cookie);
    logout.header("origin", "https://evil.example").send().await.expect_error(403, "cross_origin");
    app.get("/api/v1/me").token(&guild.owner.token).send().await.expect(200);
    let shown = app.get(&close.replace("/close", "")).token(&guild.owner.token).send().await.expect(200);
    assert_eq!(shown.json["lot"]["status"], "open", "nothing changed");

    // A read with the cookie, or a change with a bearer token, is not checked.
    let me = app.get("/api/v1/me").header("cookie", &cookie).header("origin", "https://evil.example");
    me.send().await.expect(200);
    let bearer = app.post(&close).token(&guild.owner.token).header("origin", "https://evil.example");
    assert_eq!(bearer.send().await.expect(200).json["lot"]["status"], "closed");

    // The service's own pages, and clients that say nothing of where they are.
    let lot = app.open_lot(&guild, json!({})).await;
    let close = format!("/api/v1/guilds/{}/lots/{}/close", guild.slug, lot["id"].as_str().unwrap());
    let own = app.post(&close).header("host", HOST).header("cookie", &cookie).header("origin", "http://dkp.test");
    own.send().await.expect(200);
    let lot = app.open_lot(&guild, json!({})).await;
    let close = format!("/api/v1/guilds/{}/lots/{}/close", guild.slug, lot["id"].as_str().unwrap());
    app.post(&close).header("host", HOST).header("cookie", &cookie).send().await.expect(200);
    let same = app.post("/api/v1/auth/logout").header("cookie", &cookie).header("sec-fetch-site", "same-origin");
    same.send().await.expect(204);
}

async fn a_cookie_websocket_from_another_site_is_refused(app: TestApp) {
    let user = app.register("ana").await;
    let address = app.serve().await;
    let cookie = format!("dkp_session={}", user.token);
    let refused = Feed::open(address, &[("cookie", &cookie), ("origin", "https://evil.example")]).await;
    assert_eq!(refused.err(), Some(403));
    let site = Feed::open(address, &[("cookie", &cookie), ("sec-fetch-site", "cross-site")]).await;
    assert_eq!(site.err(), Some(403));

    let own = format!("http://{address}");
    let mut feed = Feed::open(address, &[("cookie", &cookie), ("origin", &own)]).await.expect("its own pages");
    assert_eq!(feed.subscribe("me", None).await["type"], "subscribed");
    let bearer = format!("Bearer {}", user.token);
    let mut feed = Feed::open(address, &[("authorization", &bearer), ("origin", "https://evil.example")])
        .await
        .expect("a bearer token is not checked");
    assert_eq!(feed.subscribe("me", None).await["type"], "subscribed");
}

#[tokio::test]
async fn the_public_url_or_a_trusted_balancer_names_the_own_origin() {
    let app = spawn_app_with(Kind::Sqlite, |config| {
        config.public_url = Some("https://dkp.example".parse().expect("an origin"));
    })
    .await;
    let user = app.register("ana").await;
    let cookie = format!("dkp_session={}", user.token);
    let logout = |origin: &'static str| {
        app.post("/api/v1/auth/logout")
            .header("host", "10.0.0.7:8080")
            .header("cookie", &cookie)
            .header("origin", origin)
    };
    logout("http://10.0.0.7:8080").send().await.expect_error(403, "cross_origin");
    logout("https://dkp.example").send().await.expect(204);

    let app = spawn_app_with(Kind::Sqlite, |config| config.scale.trust_forwarded_for = true).await;
    let user = app.register("ana").await;
    let cookie = format!("dkp_session={}", user.token);
    let logout = |origin: &'static str| {
        app.post("/api/v1/auth/logout")
            .header("host", HOST)
            .header("x-forwarded-proto", "https")
            .header("cookie", &cookie)
            .header("origin", origin)
    };
    logout("http://dkp.test").send().await.expect_error(403, "cross_origin");
    logout("https://dkp.test").send().await.expect(204);
}
