//! The web UI in real Chromium, driven over WebDriver: an officer signs up,
//! makes a guild, a pool and a lot, awards points and bids in the live room
//! while a raider bids from elsewhere; the room follows over the WebSocket,
//! comes back after its connection is cut without missing or repeating a
//! bid, shows refusals in words, and the pages fit a 360 px phone. Controls
//! are found by the accessible names API.md gives them.
//!
//! The browser reaches the service through a cable of the test's own (a
//! TCP relay) that the test can cut, as a phone that sleeps cuts it.

mod webdriver;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::support::{Guild, Kind, TestApp, User, spawn_app};
use webdriver::Driver;

/// A TCP relay from a port of its own to the service, which the test can
/// cut (every connection dropped, no new one taken) and mend.
struct Cable {
    port: u16,
    to: SocketAddr,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Cable {
    async fn to(to: SocketAddr) -> Cable {
        let port = crate::services::free_port();
        let cable = Cable { port, to, tasks: Arc::default() };
        cable.mend().await;
        cable
    }

    async fn mend(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.expect("the cable's port");
        let (to, tasks) = (self.to, self.tasks.clone());
        let accepting = tokio::spawn(async move {
            while let Ok((mut near, _)) = listener.accept().await {
                let relay = tokio::spawn(async move {
                    if let Ok(mut far) = tokio::net::TcpStream::connect(to).await {
                        let _ = tokio::io::copy_bidirectional(&mut near, &mut far).await;
                    }
                });
                tasks.lock().expect("tasks").push(relay);
            }
        });
        self.tasks.lock().expect("tasks").push(accepting);
    }

    fn cut(&self) {
        for task in self.tasks.lock().expect("tasks").drain(..) {
            task.abort();
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// A raider with an account and points, bidding through the API.
async fn raider(app: &TestApp, owner_token: &str, pool: &str, name: &str) -> User {
    let user = app.register(name).await;
    let added = app
        .post("/api/v1/guilds/owls/members")
        .token(owner_token)
        .json(json!({"username": name}))
        .send()
        .await
        .expect(201);
    let member = added.json["member"]["id"].as_str().unwrap_or_default();
    app.post(&format!("/api/v1/guilds/owls/pools/{pool}/awards"))
        .token(owner_token)
        .json(json!({"member_ids": [member], "amount": 100, "reason": "raid"}))
        .send()
        .await
        .expect(201);
    user
}

/// The page fits its width: nothing to scroll sideways.
async fn fits(driver: &Driver, what: &str) {
    let widths = driver.script("return [document.documentElement.scrollWidth, window.innerWidth];").await;
    let (content, window) = (widths[0].as_i64().unwrap_or(i64::MAX), widths[1].as_i64().unwrap_or(0));
    assert!(content <= window, "{what}: {content} px of content in a {window} px window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_officer_runs_a_lot_in_chromium_and_the_room_follows_it_live() {
    let app = spawn_app(Kind::Sqlite).await;
    let cable = Cable::to(app.serve().await).await;
    let base = cable.base();
    let driver = Driver::start(360, 780).await;
    // Each step on the heap: the futures of a long test outgrow a thread's stack.
    let pool = Box::pin(make_guild(&driver, &base)).await;
    let login =
        app.post("/api/v1/auth/login").json(json!({"username": "ana", "password": "correct horse"})).send().await;
    let ana = login.json["token"].as_str().unwrap_or_default().to_owned();
    let raiders = [raider(&app, &ana, &pool, "bob").await, raider(&app, &ana, &pool, "cyd").await];
    Box::pin(award_and_open_lot(&driver, &base)).await;
    let lot = driver.url().await.rsplit('/').next().unwrap_or_default().to_owned();
    let guild = app_guild(&pool, &ana);
    Box::pin(bid_live(&app, &driver, &cable, &guild, &lot, &raiders)).await;
    Box::pin(close_and_look_around(&driver, &base)).await;
}

/// Signs up, makes a guild and its pool through the pages; the pool's id.
async fn make_guild(driver: &Driver, base: &str) -> String {
    driver.goto(&format!("{base}/signup")).await;
    driver.fill("Username", "ana").await;
    driver.fill("Password", "correct horse").await;
    driver.press("Create account").await;
    driver.wait_for_path("/").await;
    driver.fill("Guild name", "Night <Owls>").await;
    driver.fill("Address", "owls").await;
    driver.press("Create guild").await;
    driver.wait_for_path("/g/owls").await;
    // The name is shown as typed, never read as markup.
    let guild_link = driver.named("a", "Night <Owls>").await;
    assert_eq!(driver.text(&guild_link).await, "Night <Owls>");
    for link in ["Standings", "Raids", "Lots", "Audit"] {
        driver.named("a", link).await;
    }
    driver.goto(&format!("{base}/g/owls/pools")).await;
    driver.fill("Pool name", "Main").await;
    driver.press("Create pool").await;
    let standings = driver.wait_for_url(|url| url.contains("?pool=")).await;
    standings.rsplit('=').next().unwrap_or_default().to_owned()
}

/// Awards ana points from the console, then opens a lot and lands in its room.
async fn award_and_open_lot(driver: &Driver, base: &str) {
    driver.goto(&format!("{base}/g/owls/console")).await;
    driver.named("form", "Award points").await;
    let ana_box = driver.named("input[name=member_ids]", "ana 0.00").await;
    driver.click(&ana_box).await;
    driver.fill("Amount", "100").await;
    driver.fill("Reason", "Molten Core").await;
    driver.press("Award points").await;
    driver.wait_for_text("[role=status]", "", |t| t.contains("Done")).await;
    fits(driver, "the console").await;

    driver.goto(&format!("{base}/g/owls/lots")).await;
    driver.fill("Item", "Thunderfury").await;
    driver.fill("Minimum bid", "10").await;
    driver.press("Open lot").await;
    driver.wait_for_url(|url| url.contains("/lots/")).await;
    driver.wait_for_text("[role=status]", "High bid", |t| t.contains('—')).await;
    fits(driver, "the live room").await;
}

/// ana bids in the room while bob and cyd bid from elsewhere, once while
/// the room's connection is cut.
async fn bid_live(app: &TestApp, driver: &Driver, cable: &Cable, guild: &Guild, lot: &str, raiders: &[User; 2]) {
    let [bob, cyd] = raiders;
    driver.fill("Your bid", "20").await;
    driver.press("Bid").await;
    driver.wait_for_text("[role=status]", "High bid", |t| t.contains("20.00")).await;
    app.bid(guild, lot, &bob.token, json!("25")).await.expect(201);
    driver.wait_for_text("[role=status]", "High bid", |t| t.contains("25.00") && t.contains("bob")).await;

    // A bid too low is refused in words, with the lowest bid that would do.
    driver.fill("Your bid", "22").await;
    driver.press("Bid").await;
    driver.wait_for_text("[role=alert]", "", |t| t.contains("Too low") && t.contains("26.00")).await;

    // The connection drops (a phone asleep); two bids land meanwhile.
    cable.cut();
    app.bid(guild, lot, &bob.token, json!("30")).await.expect(201);
    app.bid(guild, lot, &cyd.token, json!("35")).await.expect(201);
    cable.mend().await;
    driver.wait_for_text("[role=status]", "High bid", |t| t.contains("35.00") && t.contains("cyd")).await;
    let feed = driver.script("return [...document.querySelectorAll('#feed li')].map(li => li.textContent);").await;
    assert_eq!(feed, json!(["cyd · 35.00", "bob · 30.00", "bob · 25.00", "ana · 20.00"]), "every bid once, in order");
}

/// Closes the lot, then checks Russian, the phone's width and the keyboard.
async fn close_and_look_around(driver: &Driver, base: &str) {
    driver.press("Close now").await;
    driver.wait_for_text("#result", "", |t| t.contains("cyd") && t.contains("35.00")).await;

    driver.goto(&format!("{base}/?lang=ru")).await;
    driver.named("button", "Выйти").await;
    fits(driver, "the home page").await;
    driver.goto(&format!("{base}/g/owls?lang=en")).await;
    fits(driver, "the standings").await;

    // The keyboard reaches the skip link first, and it leads to the content.
    let focused = "return [document.activeElement.textContent, document.activeElement.id];";
    driver.key("\u{E004}").await;
    assert_eq!(driver.script(focused).await[0], "Skip to content");
    driver.key("\u{E007}").await;
    assert_eq!(driver.script(focused).await[1], "main", "Enter on the skip link moves the focus to the content");
}

/// The guild as the support helpers name it, for `app.bid`.
fn app_guild(pool: &str, owner_token: &str) -> Guild {
    Guild {
        slug: "owls".into(),
        pool: pool.to_owned(),
        owner: User { id: String::new(), token: owner_token.to_owned() },
        owner_member: String::new(),
    }
}
