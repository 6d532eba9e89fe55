//! Several instances on one PostgreSQL database sharing a real Redis: events
//! cross instances, the lot state is shared, rate limits (bids, connects,
//! failed logins) hold across them, and a Redis outage costs readiness,
//! never correctness.

use std::time::Duration;

use serde_json::{Value, json};

use crate::services::{RedisCluster, RedisServer};
use crate::support::{Feed, Guild, Kind, TestApp, User, spawn_app_with};

/// Two instances sharing the Redis at `url`, with the rate limits given.
async fn pair(url: String, bid_rate: u32, ws_connect_rate: u32) -> (TestApp, TestApp) {
    let adjust = |config: &mut dkp::config::Config| {
        config.scale.redis_url = Some(dkp::config::Secret::new(url.clone()));
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_on_one_instance_sees_bids_placed_through_another() {
    let redis = RedisServer::start().await;
    events_and_lot_states_cross_instances(redis.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_a_redis_cluster() {
    let cluster = RedisCluster::start().await;
    events_and_lot_states_cross_instances(cluster.url()).await;
    // The limits' counters live on the cluster's shards too.
    let (a, b) = pair(cluster.url(), 2, 0).await;
    let (guild, ana, id) = lot_with_bidder(&a, "stags").await;
    let mut limited = 0;
    for n in 0..8 {
        let instance = if n % 2 == 0 { &a } else { &b };
        limited += usize::from(instance.bid(&guild, &id, &ana.token, json!(10 + n)).await.status.as_u16() == 429);
    }
    assert!(limited >= 4, "only {limited} of 8 bids limited at 2 per second");
}

/// A bid placed through one instance reaches a client of the other, and
/// the lot state it committed is shared.
async fn events_and_lot_states_cross_instances(url: String) {
    let (a, b) = pair(url, 0, 0).await;
    let (guild, ana, id) = lot_with_bidder(&a, "wolves").await;
    let id = id.as_str();
    let address = a.serve().await;
    let mut feed = Feed::connect(address, &ana.token).await;
    assert_eq!(feed.subscribe(&format!("lot:{id}"), None).await["type"], "subscribed");
    assert_eq!(wait_ready(&a, 200).await["checks"]["redis"], "ok");

    b.bid(&guild, id, &ana.token, json!(25)).await.expect(201);

    let event = next_event(&mut feed).await;
    assert_eq!((event["event"].as_str(), event["data"]["amount"].as_str()), (Some("bid_placed"), Some("25.00")));
    // The lot state B committed is shared, newer than anything A has seen.
    // (B writes it to Redis just after its commit: wait a moment for it. The
    // state the lot's opening shared, with no bid yet, may be read first.)
    let lot_id = uuid::Uuid::parse_str(id).unwrap();
    let mut standing = None;
    for _ in 0..40 {
        standing = a.service.shared_lot_standing(lot_id, 0).await;
        if standing.as_ref().is_some_and(|s| s.high_bid.is_some()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let standing = standing.expect("the shared lot state");
    assert_eq!(standing.high_bid.map(|p| p.hundredths()), Some(2500));
    // A refuses a hopeless bid from that shared state, as the database would.
    a.bid(&guild, id, &ana.token, json!(20)).await.expect_error(422, "bid_too_low");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_costs_readiness_not_bids_and_is_recovered_without_a_restart() {
    let mut redis = RedisServer::start().await;
    let (a, b) = pair(redis.url(), 0, 0).await;
    let (guild, ana, id) = lot_with_bidder(&a, "ravens").await;
    let id = id.as_str();
    let address = a.serve().await;
    let mut feed = Feed::connect(address, &ana.token).await;
    feed.subscribe(&format!("lot:{id}"), None).await;
    wait_ready(&a, 200).await;
    b.bid(&guild, id, &ana.token, json!(10)).await.expect(201);
    let first = next_event(&mut feed).await["offset"].as_i64().unwrap();

    redis.kill();
    assert_eq!(wait_ready(&a, 503).await["failing"], "redis");
    // The database is the truth: bids go on, on both instances.
    b.bid(&guild, id, &ana.token, json!(11)).await.expect(201);
    a.bid(&guild, id, &ana.token, json!(12)).await.expect(201);
    let seen = a.get(&format!("/api/v1/guilds/{}/lots/{id}", guild.slug)).token(&ana.token).send().await;
    assert_eq!(seen.expect(200).json["lot"]["high_bid"], "12.00");

    // The lot closes through B while Redis is away: no live frame will
    // follow that last event on this channel.
    let close = format!("/api/v1/guilds/{}/lots/{id}/close", guild.slug);
    b.post(&close).token(&guild.owner.token).send().await.expect(200);
    // Long enough for B's attempt to publish it to have failed for good.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;

    redis.restart().await;
    wait_ready(&a, 200).await;
    wait_ready(&b, 200).await;
    // A's client gets every event once, in order: what the outage kept from
    // it is read from the log, on the gap the next live frame showed and
    // when A's link to Redis came back.
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
    let redis = RedisServer::start().await;
    let (a, b) = pair(redis.url(), 3, 2).await;
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
