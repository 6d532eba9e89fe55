//! Several instances on one PostgreSQL database linked by a real Redis or a
//! real NATS (Redis, when both are set): events cross instances over either,
//! and an outage of either costs readiness, never correctness, and is
//! recovered without a restart. Through Redis the lot state is shared too,
//! and rate limits (bids, connects, failed logins) hold across instances.

use std::time::Duration;

use dkp::config::{Config, Secret};
use serde_json::{Value, json};

use crate::services::{NatsServer, RedisCluster, RedisServer};
use crate::support::{Feed, Guild, Kind, TestApp, User, spawn_app_with};

/// What carries events between a test's instances, on a server of the test's own.
enum Link {
    /// `REDIS_URL`, which shares lot states and rate limits too.
    Redis(RedisServer),
    /// `NATS_URL` without `REDIS_URL`.
    Nats(NatsServer),
}

impl Link {
    /// The part readiness names for it.
    fn name(&self) -> &'static str {
        match self {
            Link::Redis(_) => "redis",
            Link::Nats(_) => "nats",
        }
    }

    fn configure(&self, config: &mut Config) {
        match self {
            Link::Redis(redis) => config.scale.redis_url = Some(Secret::new(redis.url())),
            Link::Nats(nats) => config.nats_url = Some(Secret::new(nats.url())),
        }
    }

    fn kill(&mut self) {
        match self {
            Link::Redis(redis) => redis.kill(),
            Link::Nats(nats) => nats.kill(),
        }
    }

    async fn restart(&mut self) {
        match self {
            Link::Redis(redis) => redis.restart().await,
            Link::Nats(nats) => nats.restart().await,
        }
    }
}

/// Declares a scenario `async fn NAME(link: Link)` as two tests, one per link.
macro_rules! both_links {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use crate::services::{NatsServer, RedisServer};

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn redis() {
                super::$name(super::Link::Redis(RedisServer::start().await)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn nats() {
                super::$name(super::Link::Nats(NatsServer::start().await)).await;
            }
        }
    )*};
}

both_links!(
    a_client_on_one_instance_sees_bids_placed_through_another,
    an_outage_of_the_link_costs_readiness_not_bids_and_is_recovered_without_a_restart,
);

/// Two instances configured by `link`, with the rate limits given.
async fn pair(link: impl Fn(&mut Config), bid_rate: u32, ws_connect_rate: u32) -> (TestApp, TestApp) {
    let adjust = |config: &mut Config| {
        link(config);
        config.scale.bid_rate = bid_rate;
        config.scale.ws_connect_rate = ws_connect_rate;
    };
    let a = spawn_app_with(Kind::Postgres, adjust).await;
    let b = a.second_instance_with(adjust).await;
    (a, b)
}

/// A guild on `a` with a funded member and an open lot: the guild, the member, the lot id.
async fn lot_with_bidder(a: &TestApp, slug: &str) -> (Guild, User, String) {
    let guild = a.guild(slug).await;
    let (ana, _) = a.funded_member(&guild, "ana", 1000).await;
    let lot = a.open_lot(&guild, json!({})).await;
    (guild, ana, lot["id"].as_str().unwrap().to_owned())
}

/// The next event on the feed, skipping acknowledgements.
async fn next_event(feed: &mut Feed) -> Value {
    loop {
        let message = feed.next().await;
        if message["type"] == "event" {
            return message;
        }
    }
}

async fn ready(app: &TestApp) -> (u16, Value) {
    let reply = app.get("/health/ready").send().await;
    (reply.status.as_u16(), reply.json)
}

/// Polls readiness until it is `status`, for at most 10 s.
async fn wait_ready(app: &TestApp, status: u16) -> Value {
    for _ in 0..100 {
        let (now, body) = ready(app).await;
        if now == status {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("readiness never became {status}");
}

async fn a_client_on_one_instance_sees_bids_placed_through_another(link: Link) {
    let (a, b) = pair(|config| link.configure(config), 0, 0).await;
    let lot = a_bid_crosses_instances(&a, &b, link.name()).await;
    if let Link::Redis(_) = link {
        lot_state_is_shared(&a, lot).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_and_nats_both_set_redis_carries_the_fan_out() {
    let redis = Link::Redis(RedisServer::start().await);
    let mut nats = Link::Nats(NatsServer::start().await);
    let (a, b) = pair(
        |config| {
            redis.configure(config);
            nats.configure(config);
        },
        0,
        0,
    )
    .await;

    // NATS away (it only has the outbox's events to take): events still cross.
    nats.kill();
    a_bid_crosses_instances(&a, &b, "redis").await;

    assert_eq!(ready(&a).await.1["checks"].get("nats"), None, "readiness does not wait on NATS");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_a_redis_cluster() {
    let cluster = RedisCluster::start().await;
    let redis = |config: &mut Config| config.scale.redis_url = Some(Secret::new(cluster.url()));
    let (a, b) = pair(redis, 0, 0).await;
    let lot = a_bid_crosses_instances(&a, &b, "redis").await;
    lot_state_is_shared(&a, lot).await;
    // The limits' counters live on the cluster's shards too.
    let (a, b) = pair(redis, 2, 0).await;
    let (guild, ana, id) = lot_with_bidder(&a, "stags").await;
    let mut limited = 0;
    for n in 0..8 {
        let instance = if n % 2 == 0 { &a } else { &b };
        limited += usize::from(instance.bid(&guild, &id, &ana.token, json!(10 + n)).await.status.as_u16() == 429);
    }
    assert!(limited >= 4, "only {limited} of 8 bids limited at 2 per second");
}

/// A bid placed through B reaches a client of A live, and A refuses a bid
/// below it; the lot's id.
async fn a_bid_crosses_instances(a: &TestApp, b: &TestApp, link: &str) -> uuid::Uuid {
    let (guild, ana, id) = lot_with_bidder(a, "wolves").await;
    let id = id.as_str();
    let address = a.serve().await;
    let mut feed = Feed::connect(address, &ana.token).await;
    assert_eq!(feed.subscribe(&format!("lot:{id}"), None).await["type"], "subscribed");
    assert_eq!(wait_ready(a, 200).await["checks"][link], "ok");

    b.bid(&guild, id, &ana.token, json!(25)).await.expect(201);

    let event = next_event(&mut feed).await;
    assert_eq!((event["event"].as_str(), event["data"]["amount"].as_str()), (Some("bid_placed"), Some("25.00")));
    // A refuses it (from the lot state Redis shares, or from the database).
    a.bid(&guild, id, &ana.token, json!(20)).await.expect_error(422, "bid_too_low");
    uuid::Uuid::parse_str(id).unwrap()
}

/// The lot state B committed is shared through Redis, newer than anything A
/// has seen.
async fn lot_state_is_shared(a: &TestApp, lot: uuid::Uuid) {
    // B writes it to Redis just after its commit: wait a moment for it. The
    // state the lot's opening shared, with no bid yet, may be read first.
    let mut standing = None;
    for _ in 0..40 {
        standing = a.service.shared_lot_standing(lot, 0).await;
        if standing.as_ref().is_some_and(|s| s.high_bid.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let standing = standing.expect("the shared lot state");
    assert_eq!(standing.high_bid.map(|p| p.hundredths()), Some(2500));
}

async fn an_outage_of_the_link_costs_readiness_not_bids_and_is_recovered_without_a_restart(mut link: Link) {
    let (a, b) = pair(|config| link.configure(config), 0, 0).await;
    // An instance with no link: what it publishes reaches no other instance live.
    let alone = a.second_instance().await;
    let (guild, ana, id) = lot_with_bidder(&a, "ravens").await;
    let id = id.as_str();
    let address = a.serve().await;
    let mut feed = Feed::connect(address, &ana.token).await;
    feed.subscribe(&format!("lot:{id}"), None).await;
    wait_ready(&a, 200).await;
    b.bid(&guild, id, &ana.token, json!(10)).await.expect(201);
    let first = next_event(&mut feed).await["offset"].as_i64().unwrap();

    link.kill();
    assert_eq!(wait_ready(&a, 503).await["failing"], link.name());
    // The database is the truth: bids go on, on both instances.
    b.bid(&guild, id, &ana.token, json!(11)).await.expect(201);
    a.bid(&guild, id, &ana.token, json!(12)).await.expect(201);
    let seen = a.get(&format!("/api/v1/guilds/{}/lots/{id}", guild.slug)).token(&ana.token).send().await;
    assert_eq!(seen.expect(200).json["lot"]["high_bid"], "12.00");

    // The lot closes through the instance with no link: no live frame will
    // bring that last event of the channel, over the link or not.
    let close = format!("/api/v1/guilds/{}/lots/{id}/close", guild.slug);
    alone.post(&close).token(&guild.owner.token).send().await.expect(200);

    link.restart().await;
    wait_ready(&a, 200).await;
    wait_ready(&b, 200).await;
    // A's client gets every event once, in order: what the outage kept from
    // it is read from the log, on the gap the next live frame showed and
    // when A's link came back.
    let mut seen = Vec::new();
    loop {
        let event = next_event(&mut feed).await;
        let name = event["event"].as_str().unwrap().to_owned();
        seen.push((event["offset"].as_i64().unwrap(), event["data"]["amount"].as_str().unwrap_or(&name).to_owned()));
        if name == "lot_closed" {
            break;
        }
    }
    let expected: Vec<(i64, String)> =
        [(1, "11.00"), (2, "12.00"), (3, "lot_closed")].iter().map(|(n, what)| (first + n, what.to_string())).collect();
    assert_eq!(seen, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_hold_across_instances() {
    let redis = Link::Redis(RedisServer::start().await);
    let (a, b) = pair(|config| redis.configure(config), 3, 2).await;
    let (guild, ana, id) = lot_with_bidder(&a, "bears").await;
    let id = id.as_str();

    // Ten bids from one member, alternating instances, within at most two
    // one-second windows: at most 3 in each get through.
    let mut limited = 0;
    let mut passed = 0;
    for n in 0..10 {
        let instance = if n % 2 == 0 { &a } else { &b };
        let reply = instance.bid(&guild, id, &ana.token, json!(10 + n)).await;
        if reply.status.as_u16() == 429 {
            assert_eq!(reply.code(), "rate_limited");
            assert_eq!(reply.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
            limited += 1;
        } else {
            passed += 1;
        }
    }
    assert!(passed <= 6 && limited >= 4, "{passed} passed, {limited} limited");

    // WebSocket connects from one address, alternating instances.
    let addresses = [a.serve().await, b.serve().await];
    let mut refused = 0;
    for n in 0..8 {
        let url = format!("ws://{}/api/v1/ws?token={}", addresses[n % 2], ana.token);
        match tokio_tungstenite::connect_async(url).await {
            Ok(_) => {}
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                assert_eq!(response.status().as_u16(), 429);
                refused += 1;
            }
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert!(refused >= 4, "only {refused} of 8 connects refused with a limit of 2 per second");

    // Failed logins of one account from one address, alternating instances:
    // ten in fifteen minutes, counted together.
    for n in 0..12 {
        let (password, status, code) =
            if n < 10 { ("wrong password", 401, "unauthenticated") } else { ("correct horse", 429, "rate_limited") };
        let login = [&a, &b][n % 2].post("/api/v1/auth/login").json(json!({"username": "ana", "password": password}));
        login.send().await.expect_error(status, code);
    }
}
