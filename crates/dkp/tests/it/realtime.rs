//! The WebSocket feed: live events in order, replay by `since`, reset beyond
//! the log, tenancy on every subscribe, sealed amounts kept secret.

use serde_json::{Value, json};

use crate::both_stores;
use std::time::Duration;

use crate::support::{Feed, Guild, Kind, TestApp, User, spawn_app};

both_stores!(
    a_subscriber_sees_a_lot_from_opening_to_close_in_order,
    a_client_that_reconnects_with_since_gets_exactly_what_it_missed,
    a_subscription_beyond_the_log_is_told_to_reset,
    outsiders_are_refused_and_strangers_cannot_connect,
    sealed_bid_events_carry_no_amount,
    subscribing_again_on_one_connection_repeats_nothing,
    a_logout_closes_the_sessions_sockets,
    a_close_is_answered_with_a_close,
);

async fn setup(app: &TestApp) -> (Guild, User, String) {
    let guild = app.guild("owls").await;
    let (ana, a) = app.funded_member(&guild, "ana", 1000).await;
    (guild, ana, a)
}

async fn a_subscriber_sees_a_lot_from_opening_to_close_in_order(app: TestApp) {
    let (guild, ana, a) = setup(&app).await;
    let address = app.serve().await;
    let mut guild_feed = Feed::connect(address, &ana.token).await;
    assert_eq!(guild_feed.subscribe("guild:owls", None).await["type"], "subscribed");
    let lot = app.open_lot(&guild, json!({"duration_s": 30, "anti_snipe_s": 60, "extend_s": 90})).await;
    let opened = guild_feed.next().await;
    assert_eq!((opened["event"].as_str(), opened["channel"].as_str()), (Some("lot_opened"), Some("guild:owls")));
    let id = lot["id"].as_str().unwrap();

    let mut feed = Feed::connect(address, &ana.token).await;
    assert_eq!(feed.subscribe(&format!("lot:{id}"), Some(0)).await["type"], "subscribed");
    // The lot's replay and the answer to the next subscription may come in either order.
    feed.send(json!({"type": "subscribe", "channel": "me"})).await;
    let two = [feed.next().await, feed.next().await];
    let subscribed = two.iter().find(|m| m["type"] == "subscribed").expect("the subscription to me answered");
    assert_eq!(subscribed["channel"], "me");
    let replayed = two.iter().find(|m| m["type"] == "event").expect("the lot's opening replayed");
    assert_eq!((replayed["event"].as_str(), replayed["offset"].as_i64()), (Some("lot_opened"), Some(1)));

    app.bid(&guild, id, &ana.token, json!(25)).await.expect(201);
    let mut seen = Vec::new();
    while seen.len() < 3 {
        let message = feed.next().await;
        seen.push((
            message["channel"].as_str().unwrap().to_owned(),
            message["event"].as_str().unwrap().to_owned(),
            message.clone(),
        ));
    }
    let lot_events: Vec<&(String, String, Value)> = seen.iter().filter(|(c, _, _)| c.starts_with("lot:")).collect();
    assert_eq!(lot_events[0].1, "bid_placed");
    assert_eq!(lot_events[0].2["offset"], 2);
    assert_eq!(lot_events[0].2["data"]["amount"], "25.00");
    assert_eq!(lot_events[1].1, "lot_extended");
    assert_eq!(lot_events[1].2["offset"], 3);
    let mine = seen.iter().find(|(c, _, _)| c == "me").expect("balance_changed on me");
    assert_eq!(mine.1, "balance_changed");
    assert_eq!(mine.2["data"]["member_id"], a.as_str());
    assert_eq!(mine.2["data"]["held"], "25.00");

    app.post(&format!("/api/v1/guilds/{}/lots/{id}/close", guild.slug))
        .token(&guild.owner.token)
        .send()
        .await
        .expect(200);
    let mut closing = Vec::new();
    while closing.len() < 2 {
        closing.push(feed.next().await);
    }
    let closed = closing.iter().find(|m| m["event"] == "lot_closed").expect("lot_closed");
    assert_eq!(closed["offset"], 4);
    assert_eq!(closed["data"]["lot"]["price"], "25.00");
    let balance = closing.iter().find(|m| m["event"] == "balance_changed").expect("balance_changed");
    assert_eq!((balance["data"]["balance"].as_str(), balance["data"]["held"].as_str()), (Some("975.00"), Some("0.00")));
    let guild_closed = guild_feed.next().await;
    assert_eq!(guild_closed["event"], "lot_closed");
    assert!(guild_closed["offset"].as_i64().unwrap() > opened["offset"].as_i64().unwrap());

    app.bid(&guild, id, &ana.token, json!(99)).await.expect_error(409, "lot_closed");
    app.run_due_jobs().await;
    let metrics = app.get("/metrics").send().await.expect(200).text;
    for name in [
        "dkp_bids_accepted_total",
        "dkp_bids_rejected_total{reason=\"lot_closed\"}",
        "dkp_sequencer_batch_size_bucket",
        "dkp_bid_latency_seconds_bucket",
        "dkp_ws_connections",
        "dkp_ws_messages_sent_total",
        "dkp_ws_frame_wait_seconds_bucket",
        "dkp_ws_frames_per_flush_bucket",
        "dkp_lots_open",
    ] {
        assert!(metrics.contains(name), "{name} is missing from /metrics");
    }
}

async fn a_client_that_reconnects_with_since_gets_exactly_what_it_missed(app: TestApp) {
    let (guild, ana, _) = setup(&app).await;
    let (bob, b) = app.member(&guild, "bob", "member").await;
    app.post(&format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool))
        .token(&guild.owner.token)
        .json(json!({"member_ids": [b], "amount": 1000, "reason": "raid"}))
        .send()
        .await
        .expect(201);
    let address = app.serve().await;
    let lot = app.open_lot(&guild, json!({})).await;
    let id = lot["id"].as_str().unwrap();
    let channel = format!("lot:{id}");
    let mut feed = Feed::connect(address, &ana.token).await;
    feed.subscribe(&channel, None).await;
    app.bid(&guild, id, &ana.token, json!(10)).await.expect(201);
    let last = feed.next().await["offset"].as_i64().unwrap();
    drop(feed);

    for (n, user) in [&bob, &ana, &bob].into_iter().enumerate() {
        app.bid(&guild, id, &user.token, json!(20 + n)).await.expect(201);
    }
    let mut feed = Feed::connect(address, &ana.token).await;
    feed.subscribe(&channel, Some(last)).await;
    app.bid(&guild, id, &ana.token, json!(40)).await.expect(201);
    let mut offsets = Vec::new();
    let mut amounts = Vec::new();
    while let Some(message) = feed.next_within(std::time::Duration::from_millis(1500)).await {
        offsets.push(message["offset"].as_i64().unwrap());
        amounts.push(message["data"]["amount"].as_str().unwrap().to_owned());
    }
    assert_eq!(offsets, vec![last + 1, last + 2, last + 3, last + 4], "each missed event once, in order, then live");
    assert_eq!(amounts, ["20.00", "21.00", "22.00", "40.00"]);
}

async fn a_subscription_beyond_the_log_is_told_to_reset(app: TestApp) {
    let (guild, ana, _) = setup(&app).await;
    let address = app.serve().await;
    let lot = app.open_lot(&guild, json!({})).await;
    let mut feed = Feed::connect(address, &ana.token).await;
    feed.subscribe(&format!("lot:{}", lot["id"].as_str().unwrap()), Some(999)).await;
    let reset = feed.next().await;
    assert_eq!(reset["type"], "reset");
    // And the live feed carries on after the reset.
    app.bid(&guild, lot["id"].as_str().unwrap(), &ana.token, json!(10)).await.expect(201);
    assert_eq!(feed.next().await["event"], "bid_placed");
}

async fn outsiders_are_refused_and_strangers_cannot_connect(app: TestApp) {
    let (guild, _, _) = setup(&app).await;
    let lot = app.open_lot(&guild, json!({})).await;
    let stranger = app.register("stranger").await;
    let address = app.serve().await;
    let mut feed = Feed::connect(address, &stranger.token).await;
    for channel in [
        format!("lot:{}", lot["id"].as_str().unwrap()),
        "guild:owls".to_owned(),
        "lot:nonsense".into(),
        "user:x".into(),
    ] {
        let answer = feed.subscribe(&channel, None).await;
        assert_eq!((answer["type"].as_str(), answer["code"].as_str()), (Some("error"), Some("not_found")), "{channel}");
    }
    feed.send(json!({"type": "dance"})).await;
    assert_eq!(feed.next().await["code"], "invalid_json");
    let refused = tokio_tungstenite::connect_async(format!("ws://{address}/api/v1/ws?token=wrong")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => assert_eq!(response.status().as_u16(), 401),
        other => panic!("expected a 401, got {other:?}"),
    }
    app.get("/api/v1/ws").token(&stranger.token).send().await.expect_error(400, "websocket_required");
}

async fn sealed_bid_events_carry_no_amount(app: TestApp) {
    let (guild, ana, _) = setup(&app).await;
    let address = app.serve().await;
    let lot = app.open_lot(&guild, json!({"mode": "sealed_second"})).await;
    let id = lot["id"].as_str().unwrap();
    let mut feed = Feed::connect(address, &guild.owner.token).await;
    feed.subscribe(&format!("lot:{id}"), None).await;
    app.bid(&guild, id, &ana.token, json!(77)).await.expect(201);
    let event = feed.next().await;
    assert_eq!(event["event"], "bid_placed");
    assert!(event["data"].get("amount").is_none(), "{event}");
    assert!(event["data"].get("member_id").is_none());
}

/// A client that stops reading is cut off once its queue fills, and counted;
/// the server's memory for it stays bounded by that queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_that_stops_reading_is_disconnected_and_counted() {
    let app = crate::support::spawn_app(crate::support::Kind::Sqlite).await;
    let (guild, ana, _) = setup(&app).await;
    let lot = app.open_lot(&guild, json!({})).await;
    let id: uuid::Uuid = lot["id"].as_str().unwrap().parse().unwrap();
    let address = app.serve().await;
    let dropped_before = slow_consumers(&app).await;
    let mut feed = Feed::connect(address, &ana.token).await;
    feed.subscribe(&format!("lot:{id}"), None).await;
    // Publish far more than socket buffers and the queue hold, and read none of it.
    let padding = "x".repeat(16 * 1024);
    for offset in 0..4000 {
        let event = dkp::model::Event {
            channel: dkp::model::lot_channel(id),
            offset: 1000 + offset,
            name: dkp::model::EventName::BidPlaced,
            data: json!({"padding": padding}),
        };
        app.service.publish(&[event]);
        if offset % 200 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while slow_consumers(&app).await <= dropped_before {
        assert!(std::time::Instant::now() < deadline, "the slow consumer was not dropped");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        feed.next_within(std::time::Duration::from_secs(2)).await.is_some(),
        "what was sent before the cut arrives"
    );
}

async fn slow_consumers(app: &TestApp) -> f64 {
    let metrics = app.get("/metrics").send().await.expect(200).text;
    dkp_bench::counter_total(&metrics, "dkp_ws_slow_consumers_dropped_total")
}

async fn subscribing_again_on_one_connection_repeats_nothing(app: TestApp) {
    let (guild, ana, _) = setup(&app).await;
    let address = app.serve().await;
    let lot = app.open_lot(&guild, json!({})).await;
    let id = lot["id"].as_str().unwrap();
    for n in 0..40 {
        app.bid(&guild, id, &ana.token, json!(10 + n)).await.expect(201);
    }
    let channel = format!("lot:{id}");
    let mut feed = Feed::connect(address, &ana.token).await;
    assert_eq!(feed.subscribe(&channel, Some(0)).await["type"], "subscribed");
    let mut offsets = vec![feed.next().await["offset"].as_i64().unwrap()];
    // Subscribing again, saying what it has: what the first subscription
    // already sent on is not sent twice.
    feed.send(json!({"type": "subscribe", "channel": channel, "since": offsets[0]})).await;
    while let Some(message) = feed.next_within(std::time::Duration::from_millis(1500)).await {
        if message["type"] == "event" {
            offsets.push(message["offset"].as_i64().unwrap());
        }
    }
    let expected: Vec<i64> = (offsets[0]..=offsets.last().copied().unwrap_or(0)).collect();
    assert_eq!(offsets, expected, "every event once, in order");
    assert!(offsets.len() >= 40, "the replay covers every bid");

    // After an unsubscribe, a new subscription starts afresh.
    feed.send(json!({"type": "unsubscribe", "channel": channel})).await;
    assert_eq!(feed.next().await["type"], "unsubscribed");
    assert_eq!(feed.subscribe(&channel, Some(38)).await["type"], "subscribed");
    let replayed = feed.next().await;
    assert_eq!(replayed["offset"], 39);
}

/// Awards `amount` to `member` and tells whether `feed` then hears of it
/// within a second.
async fn hears_award(app: &TestApp, guild: &Guild, member: &str, feed: &mut Feed) -> bool {
    app.post(&format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool))
        .token(&guild.owner.token)
        .json(json!({"member_ids": [member], "amount": 5, "reason": "r"}))
        .send()
        .await
        .expect(201);
    feed.next_within(Duration::from_secs(1)).await.is_some_and(|m| m["event"] == "balance_changed")
}

async fn a_logout_closes_the_sessions_sockets(app: TestApp) {
    let (guild, ana, a) = setup(&app).await;
    let address = app.serve().await;
    let mut feed = Feed::connect(address, &ana.token).await;
    assert_eq!(feed.subscribe("me", None).await["type"], "subscribed");
    let other = app.post("/api/v1/auth/login").json(json!({"username": "ana", "password": "correct horse"}));
    let other = other.send().await.expect(200).json["token"].as_str().unwrap().to_owned();
    let mut other_feed = Feed::connect(address, &other).await;
    assert_eq!(other_feed.subscribe("me", None).await["type"], "subscribed");
    assert!(hears_award(&app, &guild, &a, &mut feed).await);
    assert!(other_feed.next().await["event"] == "balance_changed");

    app.post("/api/v1/auth/logout").token(&ana.token).send().await.expect(204);

    let ending = feed.ending(Duration::from_secs(2)).await;
    assert_eq!(ending, Some((1008, true)), "the socket of the ended session is closed");
    assert!(hears_award(&app, &guild, &a, &mut other_feed).await, "another session of the same user goes on");
}

/// A logout through one instance closes the session's socket on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_on_one_instance_closes_sockets_on_another() {
    let a = spawn_app(Kind::Postgres).await;
    let b = a.second_instance().await;
    let (guild, ana, member) = setup(&a).await;
    let mut feed = Feed::connect(a.serve().await, &ana.token).await;
    assert_eq!(feed.subscribe("me", None).await["type"], "subscribed");
    assert!(hears_award(&a, &guild, &member, &mut feed).await);
    // Instance b has the session in its cache too.
    b.get("/api/v1/me").token(&ana.token).send().await.expect(200);

    b.post("/api/v1/auth/logout").token(&ana.token).send().await.expect(204);

    assert_eq!(feed.ending(Duration::from_secs(2)).await, Some((1008, true)));
}

async fn a_close_is_answered_with_a_close(app: TestApp) {
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::protocol::CloseFrame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
    let user = app.register("ana").await;
    let address = app.serve().await;

    let mut feed = Feed::connect(address, &user.token).await;
    let bye = CloseFrame { code: CloseCode::Normal, reason: "bye".into() };
    feed.send_frame(Message::Close(Some(bye))).await;
    assert_eq!(feed.ending(Duration::from_secs(2)).await, Some((1000, true)));

    let mut feed = Feed::connect(address, &user.token).await;
    feed.send_frame(Message::text("x".repeat(100 * 1024))).await;
    assert_eq!(feed.ending(Duration::from_secs(2)).await, Some((1009, true)), "a message too big");
}
