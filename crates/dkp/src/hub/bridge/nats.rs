//! The bridge over core NATS (`NATS_URL` without `REDIS_URL`): plain
//! publishes on one subject every instance subscribes to, outside JetStream
//! (the outbox's stream takes `dkp.events.>` only). The client reconnects by
//! itself and renews the subscription; its connection events tell the
//! listener when the link drops, when it is back, and when the server
//! dropped messages for a subscriber that fell behind (forwarders then read
//! the log, as after an outage).

use async_nats::{Client, Event, Subscriber};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{Bridge, Listener, Names, retry_delay};
use crate::hub::Encoder;
use crate::shared::CALL_LIMIT;

/// The subject every instance publishes to and listens on.
const SUBJECT: &str = "dkp.hub";
/// A subject no one listens on, asked to learn that the server has caught up.
const NO_ONE: &str = "dkp.hub.sync";

static NAMES: Names = names!("nats");

impl Bridge {
    /// Connects to NATS and starts the publisher and the listener of this instance.
    pub async fn over_nats(url: &str, encoder: Encoder) -> anyhow::Result<Bridge> {
        let (sender, events) = mpsc::unbounded_channel();
        let client = async_nats::ConnectOptions::new()
            // Our own frames are delivered here already.
            .no_echo()
            .reconnect_delay_callback(|attempts| retry_delay(attempts.saturating_sub(1)))
            .event_callback(move |event| {
                let sender = sender.clone();
                async move {
                    let _ = sender.send(event);
                }
            })
            .connect(url)
            .await?;
        let subscriber = client.subscribe(SUBJECT).await?;
        let (bridge, outgoing, mut listener) = Bridge::new(&NAMES, encoder);
        caught_up(&client).await;
        listener.up();
        let publisher = client.clone();
        tokio::spawn(outgoing.run(async move |messages| {
            for message in messages {
                publisher.publish(SUBJECT, message.into()).await?;
            }
            Ok(publisher.flush().await?)
        }));
        tokio::spawn(listen(client, subscriber, events, listener));
        Ok(bridge)
    }
}

/// Delivers what other instances publish, and follows the link's ups and downs.
async fn listen(
    client: Client,
    mut subscriber: Subscriber,
    mut events: mpsc::UnboundedReceiver<Event>,
    mut listener: Listener,
) {
    loop {
        tokio::select! {
            message = subscriber.next() => match message {
                Some(message) => listener.hear(&message.payload),
                None => break,
            },
            event = events.recv() => match event {
                Some(Event::Connected) => {
                    caught_up(&client).await;
                    listener.up();
                }
                Some(Event::Disconnected) => listener.down(),
                Some(Event::SlowConsumer(_)) => listener.lost(),
                Some(_) => {}
                None => break,
            },
        }
    }
    listener.down();
}

/// Waits until the server holds the subscription the client renewed on
/// connecting, so that a resync reads the log only once every later event
/// will come live. The server handles a connection's messages in order, and
/// answers a request no one listens for itself ("no responders"): that
/// answer comes after the renewal.
async fn caught_up(client: &Client) {
    let _ = tokio::time::timeout(CALL_LIMIT * 4, client.request(NO_ONE, bytes::Bytes::new())).await;
}
