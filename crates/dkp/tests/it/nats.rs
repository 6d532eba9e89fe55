//! Events to NATS JetStream (seed phase 3): with `NATS_URL`, every committed
//! event waits in the outbox and a relay publishes it to the stream
//! `DKP_EVENTS` on `dkp.events.<channel>` with `Nats-Msg-Id: <channel>:<offset>`.
//! A `dkp worker` relaying is killed with SIGKILL mid-stream and started
//! again: the stream ends with every event of the log exactly once, each
//! channel's in offset order.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures_util::StreamExt;
use serde_json::json;

use crate::jobs::Worker;
use crate::support::{Kind, TestApp, spawn_app_with};

const STREAM: &str = "DKP_EVENTS";

fn nats_url() -> String {
    std::env::var("DKP_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// Bids and awards enough to fill the outbox with some hundreds of events
/// on many channels (the lot's and each bidder's own).
async fn make_events(app: &TestApp) {
    let guild = app.guild("herons").await;
    let mut bidders = Vec::new();
    for n in 0..4 {
        bidders.push(app.funded_member(&guild, &format!("bidder{n}"), 100_000).await.0);
    }
    let lot = app.open_lot(&guild, json!({"min_bid": 1, "increment": 1})).await;
    let id = lot["id"].as_str().expect("lot id");
    for amount in 1..=150 {
        let bidder = &bidders[amount as usize % bidders.len()];
        app.bid(&guild, id, &bidder.token, json!(amount)).await.expect(201);
    }
}

/// Every message of the stream: the channel and offset its id names, in stream order.
async fn stored(context: &jetstream::Context, expected: usize) -> Vec<(String, i64)> {
    let stream = context.get_stream(STREAM).await.expect("the stream");
    let config = consumer::pull::Config { deliver_policy: consumer::DeliverPolicy::All, ..Default::default() };
    let puller = stream.create_consumer(config).await.expect("a consumer");
    let mut messages = puller.messages().await.expect("messages");
    let mut seen = Vec::new();
    while seen.len() < expected {
        let next = tokio::time::timeout(Duration::from_secs(5), messages.next()).await;
        let Ok(Some(Ok(message))) = next else { break };
        let id = message
            .headers
            .as_ref()
            .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
            .map(|v| v.to_string())
            .unwrap_or_default();
        let (channel, offset) =
            id.rsplit_once(':').unwrap_or_else(|| panic!("no id: {:?} {:?}", message.subject, message.headers));
        assert_eq!(message.subject.as_str(), format!("dkp.events.{}", channel.replace(':', ".")));
        seen.push((channel.to_owned(), offset.parse().expect("an offset")));
        let _ = message.ack().await;
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_killed_mid_stream_loses_and_repeats_no_event() {
    // Arrange: a fresh stream, a service that queues its events, and events.
    let client = async_nats::connect(nats_url()).await.expect("NATS runs (see .ci/run)");
    let context = jetstream::new(client);
    let _ = context.delete_stream(STREAM).await;
    let url = nats_url();
    let app = spawn_app_with(Kind::Postgres, |config| config.nats_url = Some(dkp::config::Secret::new(&url))).await;
    make_events(&app).await;
    let events = app.count("SELECT count(*) AS n FROM events").await;
    assert_eq!(app.count("SELECT count(*) AS n FROM outbox").await, events, "every event queued");

    // Act: a relay starts, and is killed once JetStream holds some of the
    // events and before it has forgotten any: all of them wait again.
    let env = [("NATS_URL", url.as_str())];
    let mut relay = Worker::start_with(&app, 30, &env);
    let started = Instant::now();
    let mut stream = context.get_stream(STREAM).await.expect("the service made the stream");
    loop {
        let held = stream.info().await.expect("the stream's state").state.messages;
        if held > 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "the relay published nothing");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    relay.kill();
    let held = stream.info().await.expect("the stream's state").state.messages as i64;
    let left = app.count("SELECT count(*) AS n FROM outbox").await;
    assert!(held < events && left == events, "killed mid-stream: {held} stored, {left} of {events} waiting");
    let _relay = Worker::start_with(&app, 30, &env);
    while app.count("SELECT count(*) AS n FROM outbox").await > 0 {
        assert!(started.elapsed() < Duration::from_secs(40), "the outbox never emptied");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Assert: every event once, each channel in order.
    let seen = stored(&context, events as usize + 10).await;
    assert_eq!(seen.len() as i64, events, "every event exactly once, the {held} published before the kill too");
    let mut by_channel: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (channel, offset) in &seen {
        by_channel.entry(channel).or_default().push(*offset);
    }
    assert!(by_channel.len() > 4, "events of many channels");
    for (channel, offsets) in by_channel {
        assert_eq!(offsets, (1..=offsets.len() as i64).collect::<Vec<_>>(), "{channel} in order");
    }
    let _ = context.delete_stream(STREAM).await;
}
