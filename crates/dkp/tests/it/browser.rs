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

/// The item's name: markup that must show as text everywhere.
const ITEM: &str = "<script>alert(1)</script> Thunderfury";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_raiders_bid_against_each_other_in_chromium_and_the_room_follows_live() {
    let app = spawn_app(Kind::Sqlite).await;
    let address = app.serve().await;
    let (cable_a, cable_b) = (Cable::to(address).await, Cable::to(address).await);
    let (ana_at, bob_at) = (cable_a.base(), cable_b.base());
    let ana = Driver::start(360, 780).await;
    // Each step on the heap: the futures of a long test outgrow a thread's stack.
    let pool = Box::pin(make_guild(&ana, &ana_at)).await;
    let login =
        app.post("/api/v1/auth/login").json(json!({"username": "ana", "password": "correct horse"})).send().await;
    let token = login.json["token"].as_str().unwrap_or_default().to_owned();
    let raiders = [raider(&app, &token, &pool, "bob").await, raider(&app, &token, &pool, "cyd").await];
    let bob = Driver::start(1280, 800).await;
    Box::pin(sign_in(&bob, &bob_at, "bob")).await;
    Box::pin(award_and_open_lot(&ana, &ana_at)).await;
    let lot = ana.url().await.rsplit('/').next().unwrap_or_default().to_owned();
    bob.goto(&format!("{bob_at}/g/owls/lots/{lot}")).await;
    let room = Room { app: &app, ana: &ana, bob: &bob, cable: &cable_a, guild: app_guild(&pool, &token), lot };
    Box::pin(room.bid_against_each_other(&raiders[1])).await;
    Box::pin(room.late_bid_and_close(&ana_at, &bob_at)).await;
    Box::pin(look_around(&ana, &ana_at)).await;
    Box::pin(import_a_file(&ana, &ana_at)).await;
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

/// Signs `name` in through the home page's form.
async fn sign_in(driver: &Driver, base: &str, name: &str) {
    driver.goto(&format!("{base}/")).await;
    driver.fill("Username", name).await;
    driver.fill("Password", "correct horse").await;
    driver.press("Sign in").await;
    driver.named("a", "Night <Owls>").await;
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
    driver.fill("Item", ITEM).await;
    driver.fill("Minimum bid", "10").await;
    driver.fill("Duration (minutes)", "10").await;
    driver.fill("Anti-snipe window (seconds, optional)", "30").await;
    driver.press("Open lot").await;
    driver.wait_for_url(|url| url.contains("/lots/")).await;
    driver.wait_for_text("[role=status]", "High bid", |t| t.contains('—')).await;
    let heading = driver.all("h1").await;
    assert_eq!(driver.text(&heading[0]).await, ITEM, "the item's name is text");
    fits(driver, "the live room").await;
}

/// The live room of one lot, open in ana's browser and in bob's.
struct Room<'a> {
    app: &'a TestApp,
    ana: &'a Driver,
    bob: &'a Driver,
    /// The cable of ana's browser.
    cable: &'a Cable,
    guild: Guild,
    lot: String,
}

const HIGH: (&str, &str) = ("[role=status]", "High bid");

impl Room<'_> {
    /// Bids in one browser and waits for the other to show it: within 1 s.
    async fn bid_and_see(&self, bidder: &Driver, watcher: &Driver, amount: &str, name: &str) {
        bidder.fill("Your bid", amount).await;
        bidder.press("Bid").await;
        let started = std::time::Instant::now();
        watcher.wait_for_text(HIGH.0, HIGH.1, |t| t.contains(&format!("{amount}.00")) && t.contains(name)).await;
        assert!(started.elapsed().as_millis() < 1000, "{name}'s bid of {amount} took {:?}", started.elapsed());
    }

    async fn bid_against_each_other(&self, cyd: &User) {
        self.bid_and_see(self.ana, self.bob, "20", "ana").await;
        self.bid_and_see(self.bob, self.ana, "25", "bob").await;

        // A bid too low is refused in words, with the lowest bid that would do.
        self.ana.fill("Your bid", "22").await;
        self.ana.press("Bid").await;
        self.ana.wait_for_text("[role=alert]", "", |t| t.contains("Too low") && t.contains("26.00")).await;

        // ana's connection drops (a phone asleep); two bids land meanwhile.
        self.cable.cut();
        self.app.bid(&self.guild, &self.lot, &cyd.token, json!("30")).await.expect(201);
        self.bob.fill("Your bid", "35").await;
        self.bob.press("Bid").await;
        self.bob.wait_for_text(HIGH.0, HIGH.1, |t| t.contains("35.00")).await;
        self.cable.mend().await;
        self.ana.wait_for_text(HIGH.0, HIGH.1, |t| t.contains("35.00") && t.contains("bob")).await;
        let feed = "return [...document.querySelectorAll('#feed li')].map(li => li.textContent);";
        let expected = json!(["bob · 35.00", "cyd · 30.00", "bob · 25.00", "ana · 20.00"]);
        assert_eq!(self.ana.script(feed).await, expected, "every bid once, in order, after the reconnect");
        assert_eq!(self.bob.script(feed).await, expected);
    }

    /// Seconds left as the room's countdown shows them (`m:ss`).
    async fn seconds_left(driver: &Driver) -> i64 {
        let text = driver.wait_for_text("[role=status]", "Time left", |t| t.contains(':')).await;
        let clock = text.lines().last().unwrap_or_default().trim();
        let (m, s) = clock.split_once(':').unwrap_or(("0", "0"));
        m.parse::<i64>().unwrap_or(0) * 60 + s.parse::<i64>().unwrap_or(0)
    }

    /// A bid 15 s before the end extends the lot in both rooms; then ana
    /// closes it and both see the winner and their wallets.
    async fn late_bid_and_close(&self, ana_at: &str, bob_at: &str) {
        self.app.clock.advance(std::time::Duration::from_secs(10 * 60 - 15));
        self.ana.goto(&format!("{ana_at}/g/owls/lots/{}", self.lot)).await;
        self.bob.goto(&format!("{bob_at}/g/owls/lots/{}", self.lot)).await;
        let before = Room::seconds_left(self.bob).await;
        assert!((5..=15).contains(&before), "{before} s left before the late bid");
        self.bid_and_see(self.ana, self.bob, "40", "ana").await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while Room::seconds_left(self.bob).await < 25 {
            assert!(std::time::Instant::now() < deadline, "the countdown did not follow the extension");
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        self.ana.press("Close now").await;
        for driver in [self.ana, self.bob] {
            driver.wait_for_text("#result", "", |t| t.contains("ana") && t.contains("40.00")).await;
        }
        // The winner paid; bob's hold is gone.
        self.ana.wait_for_text("#available", "", |t| t == "60.00").await;
        self.bob.wait_for_text("#available", "", |t| t == "100.00").await;
        fits(self.bob, "the room on a desktop").await;
    }
}

/// Screenshots of every page, Russian, a phone's width and the keyboard.
async fn look_around(driver: &Driver, base: &str) {
    let shots = std::env::var("DKP_SCREENSHOTS")
        .unwrap_or_else(|_| format!("{}/../../target/screenshots", env!("CARGO_MANIFEST_DIR")));
    std::fs::create_dir_all(&shots).expect("the screenshots folder");
    let lot = driver.url().await;
    let pages = [
        ("home", format!("{base}/")),
        ("standings", format!("{base}/g/owls")),
        ("room", lot),
        ("lots", format!("{base}/g/owls/lots?status=all")),
        ("raids", format!("{base}/g/owls/raids")),
        ("console", format!("{base}/g/owls/console")),
        ("audit", format!("{base}/g/owls/audit")),
        ("pools", format!("{base}/g/owls/pools")),
        ("import", format!("{base}/g/owls/import")),
    ];
    for (name, url) in &pages {
        driver.goto(url).await;
        if *name == "room" {
            // A closed lot's room still shows its bids, from the lot's log.
            driver.wait_for_text("#feed", "", |t| t.contains("ana · 40.00")).await;
        }
        fits(driver, name).await;
        driver.screenshot(&format!("{shots}/{name}.png")).await;
    }
    driver.goto(&format!("{base}/g/owls")).await;
    let member = driver.named("a", "ana").await;
    driver.click(&member).await;
    driver.wait_for_url(|url| url.contains("/members/")).await;
    driver.named("svg", "Balance over time: 0.00 → 60.00").await;
    driver.screenshot(&format!("{shots}/member.png")).await;

    driver.goto(&format!("{base}/?lang=ru")).await;
    driver.named("button", "Выйти").await;
    driver.goto(&format!("{base}/g/owls?lang=en")).await;

    // The keyboard reaches the skip link first, and it leads to the content.
    let focused = "return [document.activeElement.textContent, document.activeElement.id];";
    driver.key("\u{E004}").await;
    assert_eq!(driver.script(focused).await[0], "Skip to content");
    driver.key("\u{E007}").await;
    assert_eq!(driver.script(focused).await[1], "main", "Enter on the skip link moves the focus to the content");
}

/// Previews a spreadsheet's import, then imports it; its raiders join the standings.
async fn import_a_file(driver: &Driver, base: &str) {
    let dir = crate::support::temp_dir();
    let file = dir.join("standings.csv");
    std::fs::write(&file, "name,balance\nDorn,40\n<b>Elf</b>,12.5\n").expect("the file");
    driver.goto(&format!("{base}/g/owls/import")).await;
    let spreadsheet = driver.named("#import-format option", "Spreadsheet (CSV)").await;
    driver.click(&spreadsheet).await;
    let chooser = driver.named("input[type=file]", "File").await;
    driver.send_keys(&chooser, &file.display().to_string()).await;
    driver.press("Preview").await;
    let report = driver.wait_for_text("#import-report", "", |t| t.contains("Preview")).await;
    assert!(report.contains("<b>Elf</b>") && report.contains("12.50"), "{report}");
    driver.press("Import").await;
    driver.wait_for_text("#import-report", "", |t| t.contains("Imported")).await;
    driver.goto(&format!("{base}/g/owls")).await;
    driver.named("a", "<b>Elf</b>").await;
    let _ = std::fs::remove_dir_all(dir);
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
