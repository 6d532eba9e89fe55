//! The web pages as a browser without script sees them: forms posted with
//! the CSRF token of the browser's cookie, the answers read as HTML. What
//! needs a real browser (the live room's script, accessible names, layout)
//! is in `browser`.

use std::collections::BTreeMap;

use axum::http::header::{CONTENT_SECURITY_POLICY, SET_COOKIE};
use serde_json::json;

use crate::both_stores;
use crate::support::{Guild, Reply, TestApp};

/// A browser's cookie jar over the in-process router.
pub struct WebClient<'a> {
    app: &'a TestApp,
    cookies: BTreeMap<String, String>,
    language: Option<&'static str>,
}

impl<'a> WebClient<'a> {
    pub fn new(app: &'a TestApp) -> WebClient<'a> {
        WebClient { app, cookies: BTreeMap::new(), language: None }
    }

    fn keep_cookies(&mut self, reply: &Reply) {
        for value in reply.headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            if let Some((name, rest)) = value.split_once('=') {
                let value = rest.split(';').next().unwrap_or_default();
                if value.is_empty() || value.contains("Max-Age=0") || rest.contains("Max-Age=0") {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
    }

    pub async fn get(&mut self, path: &str) -> Reply {
        let mut call = self.app.get(path).header("cookie", &self.cookie_header());
        if let Some(language) = self.language {
            call = call.header("accept-language", language);
        }
        let reply = call.send().await;
        self.keep_cookies(&reply);
        reply
    }

    /// The CSRF token the pages write into forms (a page is read first if
    /// the browser has none yet).
    pub async fn token(&mut self) -> String {
        if !self.cookies.contains_key("dkp_csrf") {
            self.get("/").await;
        }
        self.cookies["dkp_csrf"].clone()
    }

    /// Posts a form with the browser's CSRF token, as a page of this origin would.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let token = self.token().await;
        self.post_with(path, &token, fields).await
    }

    pub async fn post_with(&mut self, path: &str, token: &str, fields: &[(&str, &str)]) -> Reply {
        let mut body = form_urlencoded::Serializer::new(String::new());
        body.append_pair("csrf", token);
        body.extend_pairs(fields.iter().copied());
        let reply = self
            .app
            .post(path)
            .header("cookie", &self.cookie_header())
            .header("content-type", "application/x-www-form-urlencoded")
            .bare(body.finish())
            .send()
            .await;
        self.keep_cookies(&reply);
        reply
    }

    /// Signs up `name` through the pages; the browser is then signed in.
    pub async fn sign_up(&mut self, name: &str) {
        let reply = self.post("/signup", &[("username", name), ("password", "correct horse")]).await;
        assert_eq!(reply.status, 303, "{}", reply.text);
        assert!(self.cookies.contains_key("dkp_session"), "signed in after signing up");
    }
}

fn location(reply: &Reply) -> &str {
    reply.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or_default()
}

both_stores!(
    a_visitor_signs_up_makes_a_guild_and_sees_it_escaped,
    a_form_without_the_browsers_token_changes_nothing,
    an_award_form_sent_twice_awards_once_and_a_bad_amount_is_shown,
    a_non_member_sees_no_page_of_the_guild,
    the_room_bids_without_script_and_shows_the_refusal,
    pages_speak_russian_when_asked,
    a_thousand_standings_fit_a_small_page,
    an_item_named_like_markup_is_text_on_every_page,
    static_files_are_named_by_content_and_kept_for_good,
    the_console_adjusts_transfers_reverses_after_a_confirmation_and_runs_the_roster,
);

async fn a_visitor_signs_up_makes_a_guild_and_sees_it_escaped(app: TestApp) {
    let mut browser = WebClient::new(&app);
    let home = browser.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.text.contains(">Sign in</button>"), "{}", home.text);
    let policy = home.headers.get(CONTENT_SECURITY_POLICY).and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(policy.contains("script-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");

    browser.sign_up("ana").await;
    let made = browser.post("/guilds", &[("name", "<script>alert(1)</script> Owls"), ("slug", "owls")]).await;
    assert_eq!((made.status.as_u16(), location(&made)), (303, "/g/owls"));
    let taken = browser.post("/guilds", &[("name", "Again"), ("slug", "owls")]).await;
    assert_eq!(taken.status, 409);
    assert!(taken.text.contains("data-code=\"slug_taken\""), "{}", taken.text);

    let home = browser.get("/").await;
    assert!(home.text.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt; Owls"), "{}", home.text);
    assert!(!home.text.contains("<script>alert(1)"));
    let guild = browser.get("/g/owls").await;
    assert_eq!(guild.status, 200);
    assert!(guild.text.contains(">Standings</a>") && guild.text.contains(">Audit</a>"));
}

async fn a_form_without_the_browsers_token_changes_nothing(app: TestApp) {
    let mut browser = WebClient::new(&app);
    browser.sign_up("ana").await;
    let forged = browser.post_with("/guilds", "0".repeat(48).as_str(), &[("name", "Owls"), ("slug", "owls")]).await;
    assert_eq!(forged.status, 403);
    let from_elsewhere = app
        .post("/guilds")
        .header("cookie", &browser.cookie_header())
        .header("origin", "https://evil.example")
        .header("content-type", "application/x-www-form-urlencoded")
        .bare(format!("csrf={}&name=Owls&slug=owls", browser.cookies["dkp_csrf"]))
        .send()
        .await;
    assert_eq!(from_elsewhere.status, 403);
    assert_eq!(browser.get("/g/owls").await.status, 404, "no guild was made");
}

async fn an_award_form_sent_twice_awards_once_and_a_bad_amount_is_shown(app: TestApp) {
    let mut browser = WebClient::new(&app);
    browser.sign_up("ana").await;
    browser.post("/guilds", &[("name", "Owls"), ("slug", "owls")]).await;
    let pool = browser.post("/g/owls/pools", &[("name", "Main")]).await;
    let pool_id = location(&pool).rsplit('=').next().unwrap_or_default().to_owned();
    let console = browser.get(&format!("/g/owls/console?pool={pool_id}")).await;
    let member = console.text.split("name=\"member_ids\" value=\"").nth(1).and_then(|s| s.split('"').next());
    let member = member.expect("a member to award").to_owned();
    let award = [("pool_id", pool_id.as_str()), ("member_ids", &member), ("amount", "100"), ("reason", "Raid")];
    for _ in 0..2 {
        let sent =
            browser.post("/g/owls/console/award", &[award.as_slice(), &[("idempotency_key", "form-1")]].concat()).await;
        assert_eq!(sent.status, 303, "{}", sent.text);
    }
    let bad = [("pool_id", pool_id.as_str()), ("member_ids", &member), ("amount", "1.234"), ("reason", "Raid")];
    let refused =
        browser.post("/g/owls/console/award", &[bad.as_slice(), &[("idempotency_key", "form-2")]].concat()).await;
    assert_eq!(refused.status, 422);
    assert!(refused.text.contains("data-code=\"invalid_amount\""), "{}", refused.text);
    let standings = browser.get(&format!("/g/owls?pool={pool_id}")).await;
    assert!(standings.text.contains("<td>100.00<td>100.00<td>100.00<td>0.00"), "{}", standings.text);
    assert!(!standings.text.contains("200.00"), "the second form was the first one again");
    app.assert_ledger_consistent().await;
}

async fn a_non_member_sees_no_page_of_the_guild(app: TestApp) {
    let guild: Guild = app.guild("owls").await;
    let lot = app.open_lot(&guild, json!({})).await;
    let mut stranger = WebClient::new(&app);
    stranger.sign_up("eve").await;
    for path in [
        "/g/owls".to_owned(),
        format!("/g/owls/lots/{}", lot["id"].as_str().unwrap_or_default()),
        "/g/owls/console".into(),
    ] {
        let page = stranger.get(&path).await;
        assert_eq!(page.status, 404, "{path}");
        assert!(!page.text.contains("Thunderfury"), "{path}");
    }
    let mut visitor = WebClient::new(&app);
    let page = visitor.get("/g/owls").await;
    assert_eq!((page.status.as_u16(), location(&page)), (303, "/?next=%2Fg%2Fowls"));
}

async fn the_room_bids_without_script_and_shows_the_refusal(app: TestApp) {
    let guild = app.guild("owls").await;
    let lot = app.open_lot(&guild, json!({"min_bid": 10})).await;
    let lot_id = lot["id"].as_str().unwrap_or_default();
    let mut raider = WebClient::new(&app);
    raider.sign_up("bob").await;
    let added = app
        .post("/api/v1/guilds/owls/members")
        .token(&guild.owner.token)
        .json(json!({"username": "bob"}))
        .send()
        .await
        .expect(201);
    let member = added.json["member"]["id"].as_str().unwrap_or_default();
    app.post(&format!("/api/v1/guilds/owls/pools/{}/awards", guild.pool))
        .token(&guild.owner.token)
        .json(json!({"member_ids": [member], "amount": 50, "reason": "raid"}))
        .send()
        .await
        .expect(201);
    let room = format!("/g/owls/lots/{lot_id}");
    let low = raider.post(&format!("{room}/bids"), &[("amount", "5"), ("idempotency_key", "b-1")]).await;
    assert_eq!(low.status, 422);
    assert!(low.text.contains("data-code=\"bid_too_low\"") && low.text.contains("at least 10.00"), "{}", low.text);
    let broke = raider.post(&format!("{room}/bids"), &[("amount", "60"), ("idempotency_key", "b-2")]).await;
    assert!(broke.text.contains("data-code=\"insufficient_points\""), "{}", broke.text);
    let placed = raider.post(&format!("{room}/bids"), &[("amount", "20"), ("idempotency_key", "b-3")]).await;
    assert_eq!((placed.status.as_u16(), location(&placed)), (303, room.as_str()));
    let page = raider.get(&room).await;
    assert!(page.text.contains("id=\"high-amount\">20.00</span>"), "{}", page.text);
    assert!(page.text.contains("id=\"available\">30.00</span>"), "{}", page.text);
    assert!(page.text.contains("id=\"high-leader\">bob</span>"), "the leader by name: {}", page.text);
    assert!(!page.text.contains(">Close now</button>"), "a raider does not run lots");
}

async fn pages_speak_russian_when_asked(app: TestApp) {
    let mut browser = WebClient::new(&app);
    browser.language = Some("ru-RU,ru;q=0.9,en;q=0.5");
    assert!(browser.get("/").await.text.contains(">Войти</button>"));
    browser.language = None;
    assert!(browser.get("/").await.text.contains(">Sign in</button>"));
    let chosen = browser.get("/?lang=ru").await;
    assert!(chosen.text.contains("<html lang=\"ru\">"));
    assert!(browser.get("/signup").await.text.contains(">Создать аккаунт</button>"), "the choice is kept");
}

async fn a_thousand_standings_fit_a_small_page(app: TestApp) {
    let guild = app.guild("owls").await;
    let mut file = String::from("name,balance\n");
    for n in 0..1000 {
        file.push_str(&format!("Raider{n:04},{}.50\n", n * 7));
    }
    let path = format!("/api/v1/guilds/owls/imports?format=csv&pool_id={}", guild.pool);
    app.post(&path).token(&guild.owner.token).bare(file).send().await.expect(201);
    let page = app
        .get("/g/owls")
        .header("cookie", &format!("dkp_session={}", guild.owner.token))
        .header("accept-encoding", "gzip")
        .send()
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.headers.get("content-encoding").and_then(|v| v.to_str().ok()), Some("gzip"));
    let sent = page.size;
    assert!(sent < 100 * 1024, "{sent} bytes sent for 1,000 standings");
    let plain = app.get("/g/owls").header("cookie", &format!("dkp_session={}", guild.owner.token)).send().await;
    let rows = plain.text.matches("<th scope=\"row\">").count();
    assert_eq!(rows, 1001, "every member and the owner");
    assert!(
        plain.text.find("Raider0999").unwrap_or(usize::MAX) < plain.text.find("Raider0000").unwrap_or(0),
        "largest first"
    );
}

async fn an_item_named_like_markup_is_text_on_every_page(app: TestApp) {
    let guild = app.guild("owls").await;
    let item = json!({"name": "<script>alert(1)</script><img src=x onerror=alert(2)>"});
    let lot = app.open_lot(&guild, json!({"item": item})).await;
    let cookie = format!("dkp_session={}", guild.owner.token);
    let lot_id = lot["id"].as_str().unwrap_or_default();
    for path in ["/g/owls/lots".to_owned(), format!("/g/owls/lots/{lot_id}"), "/g/owls/lots?status=all".into()] {
        let page = app.get(&path).header("cookie", &cookie).send().await;
        assert_eq!(page.status, 200, "{path}");
        assert!(!page.text.contains("<script>alert") && !page.text.contains("<img src=x"), "{path}: {}", page.text);
        assert!(
            page.text.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;&lt;img src=x onerror=alert(2)&gt;"),
            "{path}"
        );
    }
}

async fn static_files_are_named_by_content_and_kept_for_good(app: TestApp) {
    let home = app.get("/").send().await;
    let css = home.text.split("<link rel=\"stylesheet\" href=\"").nth(1).and_then(|s| s.split('"').next());
    let css = css.expect("the stylesheet's link").replace("&#x2f;", "/");
    assert!(css.starts_with("/static/app.") && css != "/static/app.css", "{css}");
    let file = app.get(&css).send().await;
    assert_eq!(file.status, 200);
    let cache = file.headers.get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or_default();
    assert!(cache.contains("immutable") && cache.contains("max-age=31536000"), "{cache}");
    let plain = app.get("/static/app.css").send().await;
    assert_eq!(plain.text, file.text, "the plain name serves the same file");
    assert!(
        plain.headers.get("cache-control").and_then(|v| v.to_str().ok()).unwrap_or_default().contains("max-age=300")
    );
    assert_eq!(app.get("/static/app.0000000000.css").send().await.status, 404);
}

/// The `value` of the first `<option>` whose text starts with `name`.
fn option_value<'p>(page: &'p str, name: &str) -> &'p str {
    page.split("<option value=\"")
        .find(|piece| piece.split_once("\">").is_some_and(|(_, text)| text.starts_with(name)))
        .and_then(|piece| piece.split('"').next())
        .unwrap_or_default()
}

async fn the_console_adjusts_transfers_reverses_after_a_confirmation_and_runs_the_roster(app: TestApp) {
    let mut officer = WebClient::new(&app);
    officer.sign_up("ana").await;
    officer.post("/guilds", &[("name", "Owls"), ("slug", "owls")]).await;
    let made = officer.post("/g/owls/pools", &[("name", "Main")]).await;
    let pool = location(&made).rsplit('=').next().unwrap_or_default().to_owned();
    // A raider without an account, added by name.
    let added = officer.post("/g/owls/console/add-member", &[("name", "Dorn"), ("pool_id", &pool)]).await;
    assert_eq!(added.status, 303, "{}", added.text);
    let console = officer.get(&format!("/g/owls/console?pool={pool}")).await;
    let (ana, dorn) = (option_value(&console.text, "ana").to_owned(), option_value(&console.text, "Dorn").to_owned());
    assert!(!ana.is_empty() && !dorn.is_empty(), "{}", console.text);

    let (pool, ana, dorn) = (pool.as_str(), ana.as_str(), dorn.as_str());
    let adjust =
        [("pool_id", pool), ("member_id", ana), ("amount", "50"), ("reason", "fix"), ("idempotency_key", "k1")];
    assert_eq!(officer.post("/g/owls/console/adjust", &adjust).await.status, 303);
    let transfer = [("pool_id", pool), ("from_member_id", ana), ("to_member_id", dorn), ("amount", "20")];
    let sent = officer
        .post(
            "/g/owls/console/transfer",
            &[transfer.as_slice(), &[("reason", "gift"), ("idempotency_key", "k2")]].concat(),
        )
        .await;
    assert_eq!(sent.status, 303);
    let broke =
        [("pool_id", pool), ("from_member_id", dorn), ("to_member_id", ana), ("amount", "500"), ("reason", "too much")];
    let refused = officer.post("/g/owls/console/transfer", &broke).await;
    assert!(refused.text.contains("data-code=\"insufficient_points\""), "{}", refused.text);

    // Reversing asks first, and only the confirmation reverses.
    let console = officer.get(&format!("/g/owls/console?pool={pool}")).await;
    let entry = console
        .text
        .split("name=\"entry_id\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_default()
        .to_owned();
    let ask = [("pool_id", pool), ("entry_id", entry.as_str()), ("reason", "mistake")];
    let asked = officer.post("/g/owls/console/reverse", &ask).await;
    assert!(asked.status == 200 && asked.text.contains("Reverse this entry?"), "{}", asked.text);
    let balances = |page: &str| page.matches("<td>").count();
    let standings = officer.get(&format!("/g/owls?pool={pool}")).await;
    assert!(
        standings.text.contains("<td>30.00<td>30.00") && standings.text.contains("<td>20.00<td>20.00"),
        "{}",
        standings.text
    );
    assert!(balances(&standings.text) > 0);
    let confirm = [ask.as_slice(), &[("confirm", "yes"), ("idempotency_key", "k4")]].concat();
    assert_eq!(officer.post("/g/owls/console/reverse", &confirm).await.status, 303);
    let standings = officer.get(&format!("/g/owls?pool={pool}")).await;
    assert!(
        standings.text.contains("<td>50.00<td>50.00") && standings.text.contains("<td>0.00<td>0.00"),
        "the transfer is undone: {}",
        standings.text
    );

    // Roles: the owner makes Dorn an officer.
    let promoted = officer.post("/g/owls/console/role", &[("member_id", dorn), ("role", "officer")]).await;
    assert_eq!(promoted.status, 303, "{}", promoted.text);
    let console = officer.get(&format!("/g/owls/console?pool={pool}")).await;
    assert!(console.text.contains("Dorn (officer)"), "{}", console.text);
    app.assert_ledger_consistent().await;
}
