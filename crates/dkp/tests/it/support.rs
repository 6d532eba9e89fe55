//! `spawn_app` gives each test its own service and database: a fresh SQLite
//! file, or a fresh schema in the `dkp_it_*` PostgreSQL database (recreated once
//! per run, so nothing outlives the next run). Requests go to the router
//! in-process; helpers register users, build guilds and check the ledger.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use dkp::app::Application;
use dkp::clock::TestClock;
use dkp::config::{Config, Secret};
use dkp::store::{Location, Store};
use serde_json::{Value, json};
use tower::ServiceExt;

/// Declares a scenario `async fn NAME(app: TestApp)` as two tests, one per store.
#[macro_export]
macro_rules! both_stores {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::spawn_app($crate::support::Kind::Sqlite).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::support::spawn_app($crate::support::Kind::Postgres).await).await;
            }
        }
    )*};
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub kind: Kind,
    /// The time every instance of this test reads: it moves only when the test moves it.
    pub clock: Arc<TestClock>,
    pub router: Router,
    pub store: Arc<Store>,
    pub service: Arc<dkp::service::Service>,
    pub location: Location,
    /// The connection string of this test's own database or schema.
    pub url: String,
    pub dir: PathBuf,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The PostgreSQL server tests use: `DKP_TEST_DATABASE_URL`, by default the local one.
pub fn admin_url() -> String {
    std::env::var("DKP_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

/// The name of this checkout's test database: `dkp_it_` and a hash of its
/// path, so that runs in two checkouts on one server never drop each other's.
fn it_database() -> String {
    let path = env!("CARGO_MANIFEST_DIR");
    let hash = path.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("dkp_it_{:08x}", hash as u32)
}

/// The URL of this checkout's test database on the same server.
fn it_database_url() -> String {
    let admin = admin_url();
    let base = admin.rsplit_once('/').map_or(admin.as_str(), |(base, _)| base).to_owned();
    format!("{base}/{}", it_database())
}

/// Recreates the test database once per test run, on a thread of its own.
fn prepare_postgres() {
    static READY: OnceLock<()> = OnceLock::new();
    READY.get_or_init(|| {
        std::thread::spawn(|| {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            runtime.block_on(async {
                use sqlx::Connection;
                let mut admin = sqlx::PgConnection::connect(&admin_url())
                    .await
                    .expect("PostgreSQL must run for the tests (DKP_TEST_DATABASE_URL)");
                let name = it_database();
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut admin)
                    .await
                    .expect("drop the test database");
                sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("create the test database");
            });
        })
        .join()
        .expect("preparing PostgreSQL");
    });
}

pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("dkp-it-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

/// A database of its own for one test: its location and URL.
pub async fn fresh_database(kind: Kind, dir: &std::path::Path) -> (Location, String) {
    match kind {
        Kind::Sqlite => {
            let path = dir.join("dkp.sqlite3");
            let url = format!("sqlite://{}", path.display());
            (Location::Sqlite { path }, url)
        }
        Kind::Postgres => {
            prepare_postgres();
            let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(&it_database_url()).await.expect("connect to the test database");
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .execute(&mut conn)
                .await
                .expect("schema");
            let url = format!("{}?options=-c%20search_path%3D{schema}", it_database_url());
            (Location::Postgres { url: Secret::new(url.clone()) }, url)
        }
    }
}

pub fn config(location: Location, dir: &std::path::Path) -> Config {
    Config {
        listen: "127.0.0.1:0".parse().expect("address"),
        data_dir: dir.to_path_buf(),
        location,
        read_replica: None,
        session_ttl_hours: 24,
        secure_cookies: false,
        public_url: None,
        jobs: true,
        job_lease: std::time::Duration::from_secs(30),
        // Tests race many bids per member; the limits have tests of their own.
        scale: dkp::config::ScaleArgs { bid_rate: 0, ws_connect_rate: 0, ..Default::default() },
        blobs: dkp::blobs::BlobConfig::in_folder(dir.join("blobs")),
        assets: dkp::blobs::PublicUrls::parse("/static").expect("the assets' base"),
        role: dkp::config::ServeRole::All,
        audit_database: None,
        nats_url: None,
        otlp: None,
    }
}

pub async fn spawn_app(kind: Kind) -> TestApp {
    spawn_app_with(kind, |_| {}).await
}

/// Like `spawn_app`, with the configuration adjusted first.
pub async fn spawn_app_with(kind: Kind, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = temp_dir();
    let (location, url) = fresh_database(kind, &dir).await;
    build(kind, location, url, dir, adjust).await
}

/// A service on a PostgreSQL database the test set up itself, with the
/// configuration adjusted first.
pub async fn spawn_app_on(url: &str, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let location = Location::Postgres { url: Secret::new(url) };
    build(Kind::Postgres, location, url.to_owned(), temp_dir(), adjust).await
}

async fn build(kind: Kind, location: Location, url: String, dir: PathBuf, adjust: impl FnOnce(&mut Config)) -> TestApp {
    let mut config = config(location.clone(), &dir);
    adjust(&mut config);
    let clock = Arc::new(TestClock::new());
    let app = Application::build_with_clock(config, clock.clone()).await.expect("the app builds");
    TestApp { kind, clock, router: app.router(), store: app.store(), service: app.service(), location, url, dir }
}

impl TestApp {
    /// Another instance of the service on the same PostgreSQL database, with
    /// its own pools and in-process state, as a second host would run it.
    pub async fn second_instance(&self) -> TestApp {
        self.second_instance_with(|_| {}).await
    }

    /// Like `second_instance`, with its configuration adjusted first.
    pub async fn second_instance_with(&self, adjust: impl FnOnce(&mut Config)) -> TestApp {
        assert_eq!(self.kind, Kind::Postgres, "only PostgreSQL serves several instances");
        let dir = temp_dir();
        let mut config = config(self.location.clone(), &dir);
        adjust(&mut config);
        let app = Application::build_with_clock(config, self.clock.clone()).await.expect("the second instance builds");
        TestApp {
            kind: self.kind,
            clock: self.clock.clone(),
            router: app.router(),
            store: app.store(),
            service: app.service(),
            location: self.location.clone(),
            url: self.url.clone(),
            dir,
        }
    }
}

/// A response, with its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
    pub json: Value,
    /// The body's length in bytes, as sent (compressed, if it was).
    pub size: usize,
}

impl Reply {
    /// The `error.code` of an error reply.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    #[track_caller]
    pub fn expect(self, status: u16) -> Reply {
        assert_eq!(self.status.as_u16(), status, "unexpected reply: {}", self.text);
        self
    }

    #[track_caller]
    pub fn expect_error(self, status: u16, code: &str) -> Reply {
        assert_eq!((self.status.as_u16(), self.code()), (status, code), "unexpected reply: {}", self.text);
        self
    }
}

/// A request to build up: `app.post(path).token(t).json(body).send().await`.
pub struct Call<'a> {
    app: &'a TestApp,
    request: axum::http::request::Builder,
    body: Body,
}

impl Call<'_> {
    pub fn token(mut self, token: &str) -> Self {
        self.request = self.request.header("authorization", format!("Bearer {token}"));
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.request = self.request.header(name, value);
        self
    }

    pub fn json(mut self, body: Value) -> Self {
        self.request = self.request.header("content-type", "application/json");
        self.body = Body::from(body.to_string());
        self
    }

    /// A body sent as JSON whatever it holds.
    pub fn raw(mut self, body: impl Into<Body>) -> Self {
        self.request = self.request.header("content-type", "application/json");
        self.body = body.into();
        self
    }

    /// A body sent with no content type.
    pub fn bare(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    pub async fn send(self) -> Reply {
        let request = self.request.body(self.body).expect("request");
        let response = self.app.router.clone().oneshot(request).await.expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.expect("body");
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, headers, text, json, size: bytes.len() }
    }
}

/// A registered, logged-in user.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub token: String,
}

/// A guild made by `owner`, with one pool.
#[derive(Clone, Debug)]
pub struct Guild {
    pub slug: String,
    pub pool: String,
    pub owner: User,
    pub owner_member: String,
}

impl TestApp {
    pub fn call(&self, method: Method, path: &str) -> Call<'_> {
        Call { app: self, request: Request::builder().method(method).uri(path), body: Body::empty() }
    }

    pub fn get(&self, path: &str) -> Call<'_> {
        self.call(Method::GET, path)
    }

    pub fn post(&self, path: &str) -> Call<'_> {
        self.call(Method::POST, path)
    }

    pub fn patch(&self, path: &str) -> Call<'_> {
        self.call(Method::PATCH, path)
    }

    pub fn put(&self, path: &str) -> Call<'_> {
        self.call(Method::PUT, path)
    }

    pub fn delete(&self, path: &str) -> Call<'_> {
        self.call(Method::DELETE, path)
    }

    pub async fn register(&self, name: &str) -> User {
        let reply = self
            .post("/api/v1/auth/register")
            .json(json!({"username": name, "password": "correct horse"}))
            .send()
            .await
            .expect(201);
        let id = reply.json["user"]["id"].as_str().expect("user id").to_owned();
        let login = self
            .post("/api/v1/auth/login")
            .json(json!({"username": name, "password": "correct horse"}))
            .send()
            .await
            .expect(200);
        User { id, token: login.json["token"].as_str().expect("token").to_owned() }
    }

    /// A guild owned by a new user, with a pool called Main.
    pub async fn guild(&self, slug: &str) -> Guild {
        self.guild_owned_by(slug, &format!("{slug}-owner")).await
    }

    /// A guild with one pool, "Main", whose owner registers as `owner`.
    pub async fn guild_owned_by(&self, slug: &str, owner: &str) -> Guild {
        let owner = self.register(owner).await;
        self.post("/api/v1/guilds")
            .token(&owner.token)
            .json(json!({"name": slug, "slug": slug}))
            .send()
            .await
            .expect(201);
        let pool = self
            .post(&format!("/api/v1/guilds/{slug}/pools"))
            .token(&owner.token)
            .json(json!({"name": "Main"}))
            .send()
            .await
            .expect(201);
        let me = self.get("/api/v1/me").token(&owner.token).send().await.expect(200);
        let owner_member = me.json["guilds"][0]["member_id"].as_str().expect("member id").to_owned();
        Guild {
            slug: slug.to_owned(),
            pool: pool.json["pool"]["id"].as_str().expect("pool id").to_owned(),
            owner,
            owner_member,
        }
    }

    /// Registers `name` and adds them to the guild with `role`; their member id.
    pub async fn member(&self, guild: &Guild, name: &str, role: &str) -> (User, String) {
        let user = self.register(name).await;
        let reply = self
            .post(&format!("/api/v1/guilds/{}/members", guild.slug))
            .token(&guild.owner.token)
            .json(json!({"username": name, "role": role}))
            .send()
            .await
            .expect(201);
        (user, reply.json["member"]["id"].as_str().expect("member id").to_owned())
    }

    /// A new member of the guild awarded `amount` points: the user and the member id.
    pub async fn funded_member(&self, guild: &Guild, name: &str, amount: i64) -> (User, String) {
        let (user, member) = self.member(guild, name, "member").await;
        self.post(&format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool))
            .token(&guild.owner.token)
            .json(json!({"member_ids": [member], "amount": amount, "reason": "raid"}))
            .send()
            .await
            .expect(201);
        (user, member)
    }

    /// Member id to balance, as standings show it.
    pub async fn balances(&self, guild: &Guild) -> std::collections::BTreeMap<String, String> {
        self.wallets(guild).await.into_iter().map(|(member, (balance, _))| (member, balance)).collect()
    }

    /// Checks the ledger's invariants straight in the database: the postings
    /// of every pool sum to zero, and every account's balance is the sum of
    /// its postings.
    pub async fn assert_ledger_consistent(&self) {
        let db = dkp::store::connect(&self.location).await.expect("connect");
        let totals = db
            .sql(
                "SELECT CAST(COALESCE(SUM(p.amount), 0) AS BIGINT) AS total FROM postings p \
                  JOIN accounts a ON a.id = p.account_id GROUP BY a.pool_id",
            )
            .fetch_all()
            .await
            .expect("totals");
        for row in totals {
            assert_eq!(row.get::<i64>("total").expect("total"), 0, "a pool's postings do not sum to zero");
        }
        let bad: i64 = db
            .sql(
                "SELECT COUNT(*) AS bad FROM accounts a WHERE a.balance <> \
                  CAST(COALESCE((SELECT SUM(p.amount) FROM postings p WHERE p.account_id = a.id), 0) AS BIGINT)",
            )
            .fetch_one()
            .await
            .expect("accounts")
            .get("bad")
            .expect("bad");
        assert_eq!(bad, 0, "an account's balance differs from the sum of its postings");
        db.close().await;
    }

    /// Runs one statement on this test's database.
    /// The `n` column of the one row `sql` gives (`SELECT count(*) AS n FROM …`).
    pub async fn count(&self, sql: &'static str) -> i64 {
        let db = dkp::store::connect(&self.location).await.expect("connect");
        let n: i64 = db.sql(sql).fetch_one().await.expect(sql).get("n").expect("n");
        db.close().await;
        n
    }

    pub async fn execute(&self, sql: &'static str) -> Result<u64, sqlx::Error> {
        let db = dkp::store::connect(&self.location).await.expect("connect");
        let result = db.sql(sql).execute().await;
        db.close().await;
        result
    }
}

impl TestApp {
    /// Runs this instance's job runner until the returned guard is dropped.
    pub fn start_jobs(&self) -> JobsRunning {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let runner = dkp::service::jobs::Runner::new("test", std::time::Duration::from_secs(30));
        let task = tokio::spawn(dkp::service::jobs::run(self.service.clone(), runner, stopped));
        JobsRunning { _stop: stop, task }
    }

    /// One pass of a job runner: claims and runs what is due now.
    pub async fn run_due_jobs(&self) -> usize {
        let runner = dkp::service::jobs::Runner::new("test", std::time::Duration::from_secs(30));
        dkp::service::jobs::run_due(&self.service, &runner).await
    }

    /// Serves the router on a real port of 127.0.0.1, for WebSocket clients.
    pub async fn serve(&self) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let router = self.router.clone().into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, router).await });
        address
    }

    /// Opens a lot in the guild's pool; its JSON.
    pub async fn open_lot(&self, guild: &Guild, terms: Value) -> Value {
        let mut body = json!({"pool_id": guild.pool, "item": {"name": "Thunderfury"}, "mode": "open", "min_bid": 10, "duration_s": 600});
        for (key, value) in terms.as_object().expect("terms").clone() {
            body[key] = value;
        }
        self.post(&format!("/api/v1/guilds/{}/lots", guild.slug))
            .token(&guild.owner.token)
            .json(body)
            .send()
            .await
            .expect(201)
            .json["lot"]
            .clone()
    }

    pub async fn bid(&self, guild: &Guild, lot: &str, token: &str, amount: Value) -> Reply {
        self.post(&format!("/api/v1/guilds/{}/lots/{lot}/bids", guild.slug))
            .token(token)
            .json(json!({"amount": amount}))
            .send()
            .await
    }

    /// A lot's log: the amounts of its accepted bids and the offsets of all
    /// its events, in offset order.
    pub async fn lot_log(&self, lot_id: &str) -> (Vec<i64>, Vec<i64>) {
        let events = self.store.events_since(&format!("lot:{lot_id}"), 0, 10_000).await.expect("the lot's events");
        let amounts = events
            .iter()
            .filter(|e| e.name.as_str() == "bid_placed")
            .map(|e| {
                dkp_core::Points::parse(e.data["amount"].as_str().expect("an amount")).expect("points").hundredths()
            })
            .collect();
        (amounts, events.iter().map(|e| e.offset).collect())
    }

    /// Member id to (balance, held), as standings show them to the owner.
    pub async fn wallets(&self, guild: &Guild) -> std::collections::BTreeMap<String, (String, String)> {
        self.wallets_seen_by(guild, &guild.owner.token).await
    }

    /// Member id to (balance, held), as standings show them to `token`'s user.
    pub async fn wallets_seen_by(
        &self,
        guild: &Guild,
        token: &str,
    ) -> std::collections::BTreeMap<String, (String, String)> {
        let reply = self
            .get(&format!("/api/v1/guilds/{}/pools/{}/standings", guild.slug, guild.pool))
            .token(token)
            .send()
            .await
            .expect(200);
        reply.json["standings"]
            .as_array()
            .expect("standings")
            .iter()
            .map(|s| {
                let text = |k: &str| s[k].as_str().unwrap_or("").to_owned();
                (text("member_id"), (text("balance"), text("held")))
            })
            .collect()
    }
}

/// A job runner started by `start_jobs`, stopped when dropped.
pub struct JobsRunning {
    _stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for JobsRunning {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A WebSocket client of the real-time feed.
pub struct Feed {
    socket: tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
}

impl Feed {
    pub async fn connect(address: std::net::SocketAddr, token: &str) -> Feed {
        let url = format!("ws://{address}/api/v1/ws?token={token}");
        let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("the feed accepts the connection");
        Feed { socket }
    }

    /// Opens the feed with the request headers given (a cookie, an `Origin`);
    /// the status of the refusal if the upgrade is refused.
    pub async fn open(address: std::net::SocketAddr, headers: &[(&str, &str)]) -> Result<Feed, u16> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{address}/api/v1/ws").into_client_request().expect("a request");
        for (name, value) in headers {
            let name = axum::http::HeaderName::from_bytes(name.as_bytes()).expect("a header name");
            request.headers_mut().insert(name, value.parse().expect("a header value"));
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(Feed { socket }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
            Err(other) => panic!("the upgrade failed: {other}"),
        }
    }

    /// Sends a frame as it is.
    pub async fn send_frame(&mut self, frame: tokio_tungstenite::tungstenite::Message) {
        use futures_util::SinkExt;
        self.socket.send(frame).await.expect("send");
    }

    /// How the server ends the connection, waiting at most `wait`: the code of
    /// its Close frame, and whether the TCP connection then ended cleanly
    /// (rather than being dropped without a closing handshake).
    pub async fn ending(&mut self, wait: std::time::Duration) -> Option<(u16, bool)> {
        use futures_util::StreamExt;
        use tokio_tungstenite::tungstenite::{Error, Message};
        let deadline = tokio::time::Instant::now() + wait;
        let mut code = None;
        loop {
            match tokio::time::timeout_at(deadline, self.socket.next()).await.ok()? {
                Some(Ok(Message::Close(frame))) => code = Some(frame.map_or(1005, |f| u16::from(f.code))),
                Some(Ok(_)) => {}
                None | Some(Err(Error::ConnectionClosed)) => return code.map(|code| (code, true)),
                Some(Err(_)) => return Some((code.unwrap_or(1006), false)),
            }
        }
    }

    pub async fn send(&mut self, message: Value) {
        use futures_util::SinkExt;
        self.socket.send(tokio_tungstenite::tungstenite::Message::text(message.to_string())).await.expect("send");
    }

    pub async fn subscribe(&mut self, channel: &str, since: Option<i64>) -> Value {
        let mut message = json!({"type": "subscribe", "channel": channel});
        if let Some(since) = since {
            message["since"] = json!(since);
        }
        self.send(message).await;
        self.next().await
    }

    /// The next JSON message, waiting at most 5 s.
    pub async fn next(&mut self) -> Value {
        self.next_within(std::time::Duration::from_secs(5)).await.expect("a message within 5 s")
    }

    pub async fn next_within(&mut self, wait: std::time::Duration) -> Option<Value> {
        use futures_util::StreamExt;
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let message = tokio::time::timeout_at(deadline, self.socket.next()).await.ok()??.ok()?;
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
                return serde_json::from_str(text.as_str()).ok();
            }
        }
    }
}
