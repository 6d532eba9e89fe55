//! `RedisHub`: the fan-out between instances. Each instance delivers its own
//! committed events to its own clients at once, and sends the same encoded
//! frames over one Redis pub/sub channel; every other instance delivers what
//! it hears there to its clients. No sticky sessions are needed: a client may
//! be connected anywhere.
//!
//! Redis pub/sub keeps nothing, so a frame lost while Redis is away is not
//! lost to the client: its forwarder fills any gap in offsets from the event
//! log when the next frame comes, and when the listener gets its link back
//! (it reconnects by itself, with backoff) every forwarder is told to read
//! the log for what it missed, so even a channel's last event (a lot closed
//! by another instance) arrives. A reconnecting client asks with `since`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use futures_util::StreamExt;
use tokio::sync::{broadcast, mpsc};

use super::{Encoder, Frame, Hub, LocalHub};
use crate::model::Event;
use crate::shared::{CALL_LIMIT, Shared};

/// The Redis pub/sub channel every instance publishes to and listens on.
pub const REDIS_CHANNEL: &str = "dkp:events";
/// Frames waiting to be sent to Redis; beyond this they are dropped (and
/// recovered from the log by the clients that need them).
const OUTGOING: usize = 16 * 1024;
/// Frames sent to Redis in one round trip at most.
const PUBLISH_BATCH: usize = 256;

pub struct RedisHub {
    local: Arc<LocalHub>,
    outgoing: mpsc::Sender<Arc<Frame>>,
    listening: Arc<AtomicBool>,
}

impl RedisHub {
    /// Starts the publisher and the listener of this instance.
    pub fn start(shared: Shared, encoder: Encoder) -> RedisHub {
        let local = Arc::new(LocalHub::new(encoder));
        let instance = uuid::Uuid::now_v7().simple().to_string();
        let (outgoing, queue) = mpsc::channel(OUTGOING);
        let listening = Arc::new(AtomicBool::new(false));
        tokio::spawn(publish(shared.clone(), instance.clone(), queue));
        tokio::spawn(listen(shared, instance, local.clone(), listening.clone()));
        RedisHub { local, outgoing, listening }
    }
}

impl Hub for RedisHub {
    fn publish(&self, events: &[Event]) {
        for event in events {
            let frame = Arc::new(Frame::encode(event, self.local.encoder()));
            self.local.deliver(frame.clone());
            if self.outgoing.try_send(frame).is_err() {
                metrics::counter!("dkp_hub_redis_dropped_total").increment(1);
            }
        }
    }

    fn subscribe(&self, channel: &str) -> broadcast::Receiver<Arc<Frame>> {
        self.local.subscribe(channel)
    }

    fn healthy(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }
}

/// One message on the Redis channel: the sending instance, the internal
/// channel, the offset and the frame, separated by newlines (the first three
/// never hold one; the frame is compact JSON, so it holds none either).
fn wire(instance: &str, frame: &Frame) -> Vec<u8> {
    format!("{instance}\n{}\n{}\n{}", frame.channel, frame.offset, frame.text.as_str()).into_bytes()
}

/// Reads a message from another instance; `None` for our own or a malformed one.
fn unwire(own: &str, payload: &[u8]) -> Option<Frame> {
    let text = std::str::from_utf8(payload).ok()?;
    let mut parts = text.splitn(4, '\n');
    let (instance, channel, offset, frame) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if instance == own {
        return None;
    }
    Some(Frame { channel: channel.to_owned(), offset: offset.parse().ok()?, text: Utf8Bytes::from(frame.to_owned()) })
}

/// Sends queued frames to Redis, a batch per round trip.
async fn publish(shared: Shared, instance: String, mut queue: mpsc::Receiver<Arc<Frame>>) {
    let mut connection = shared.connection();
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    while queue.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
        let mut pipe = redis::pipe();
        for frame in &batch {
            pipe.cmd("PUBLISH").arg(REDIS_CHANNEL).arg(wire(&instance, frame)).ignore();
        }
        match tokio::time::timeout(CALL_LIMIT * 4, pipe.query_async::<()>(&mut connection)).await {
            Ok(Ok(())) => metrics::counter!("dkp_hub_redis_published_total").increment(batch.len() as u64),
            _ => metrics::counter!("dkp_hub_redis_dropped_total").increment(batch.len() as u64),
        }
        batch.clear();
    }
}

/// Delivers what other instances publish, reconnecting whenever the link drops.
async fn listen(shared: Shared, instance: String, local: Arc<LocalHub>, listening: Arc<AtomicBool>) {
    let mut backoff = Duration::from_millis(100);
    let mut attempt = 0;
    let mut listened_before = false;
    loop {
        match subscribe(shared.listener(attempt)).await {
            Ok(mut pubsub) => {
                listening.store(true, Ordering::Relaxed);
                backoff = Duration::from_millis(100);
                tracing::info!("listening for other instances' events on Redis");
                if listened_before {
                    local.resync();
                }
                listened_before = true;
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    if let Some(frame) = unwire(&instance, message.get_payload_bytes()) {
                        metrics::counter!("dkp_hub_redis_received_total").increment(1);
                        local.deliver(Arc::new(frame));
                    }
                }
                listening.store(false, Ordering::Relaxed);
                tracing::warn!("lost the Redis event channel; reconnecting");
            }
            Err(error) => {
                listening.store(false, Ordering::Relaxed);
                tracing::debug!(error = %error, "cannot listen on Redis yet");
                attempt += 1;
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn subscribe(client: &redis::Client) -> anyhow::Result<redis::aio::PubSub> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(REDIS_CHANNEL).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    Ok(tokio::time::timeout(Duration::from_secs(2), connect).await??)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_frame_crosses_the_wire_unchanged_and_our_own_is_skipped() {
        let frame = Frame { channel: "lot:1".into(), offset: 7, text: Utf8Bytes::from(r#"{"a":"x\ny"}"#.to_owned()) };
        let payload = wire("me", &frame);
        assert!(unwire("me", &payload).is_none());
        let heard = unwire("other", &payload).expect("a frame");
        assert_eq!((heard.channel.as_str(), heard.offset, heard.text.as_str()), ("lot:1", 7, frame.text.as_str()));
    }
}
