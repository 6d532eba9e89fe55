//! The real-time fan-out port (seed risk R2). Committed events are published
//! here, each encoded once (by the encoder the transport hands in: the hub
//! knows no wire format) into the exact text frame subscribers receive, and
//! shared by reference among them. `LocalHub` fans out inside one process; a
//! `Bridge` carries the same frames between instances, over Redis or NATS.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::broadcast;

use crate::model::Event;

mod bridge;
pub use bridge::Bridge;

/// The offset of a frame that carries no event but tells forwarders to read
/// the log for anything they may have missed (after a lost link between instances).
pub const RESYNC: i64 = i64::MIN;

/// One event, encoded once for every subscriber of its channel.
#[derive(Debug)]
pub struct Frame {
    pub channel: String,
    pub offset: i64,
    /// The WebSocket text frame; clones share one buffer.
    pub text: Utf8Bytes,
    /// When this process had it to send: published after its commit, or
    /// heard from another instance (how long it waits here is a metric).
    pub born: Instant,
}

/// Encodes an event into the text frame its subscribers receive.
pub type Encoder = Arc<dyn Fn(&Event) -> Utf8Bytes + Send + Sync>;

impl Frame {
    pub fn encode(event: &Event, encoder: &Encoder) -> Frame {
        Frame::new(event.channel.clone(), event.offset, encoder(event))
    }

    pub fn new(channel: String, offset: i64, text: Utf8Bytes) -> Frame {
        Frame { channel, offset, text, born: Instant::now() }
    }
}

pub trait Hub: Send + Sync + 'static {
    /// Sends committed events to the subscribers of their channels.
    fn publish(&self, events: &[Event]);
    /// Frames published on `channel` from now on.
    fn subscribe(&self, channel: &str) -> broadcast::Receiver<Arc<Frame>>;
    /// Whether events from other instances reach this one now.
    fn healthy(&self) -> bool {
        true
    }
    /// The service that carries events between instances, as readiness
    /// names it (`redis`, `nats`); `None` when events stay in this process.
    fn link(&self) -> Option<&'static str> {
        None
    }
}

/// How many frames a channel buffers for a subscriber that is behind; one
/// further behind than this has lagged and is dropped as a slow consumer.
const CHANNEL_BUFFER: usize = 1024;

/// From this many channels on, subscribing sweeps the abandoned ones.
const SWEEP_AT: usize = 1024;

/// Fan-out inside one process.
pub struct LocalHub {
    channels: Mutex<HashMap<String, broadcast::Sender<Arc<Frame>>>>,
    encoder: Encoder,
}

impl LocalHub {
    pub fn new(encoder: Encoder) -> LocalHub {
        LocalHub { channels: Mutex::default(), encoder }
    }

    pub fn encoder(&self) -> &Encoder {
        &self.encoder
    }

    /// Delivers an already encoded frame (as a bridge from another instance does).
    pub fn deliver(&self, frame: Arc<Frame>) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sender) = channels.get(&frame.channel) {
            let channel = frame.channel.clone();
            if sender.send(frame).is_err() {
                // Nobody listens any more: forget the channel.
                channels.remove(&channel);
            }
        }
    }
}

impl LocalHub {
    /// Tells every subscriber to look in the log for what it may have missed.
    pub fn resync(&self) {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        for (channel, sender) in channels.iter() {
            let _ = sender.send(Arc::new(Frame::new(channel.clone(), RESYNC, Utf8Bytes::from(""))));
        }
    }
}

impl Hub for LocalHub {
    fn publish(&self, events: &[Event]) {
        for event in events {
            self.deliver(Arc::new(Frame::encode(event, &self.encoder)));
        }
    }

    fn subscribe(&self, channel: &str) -> broadcast::Receiver<Arc<Frame>> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if channels.len() >= SWEEP_AT && channels.len().is_power_of_two() {
            // Channels whose subscribers all left and that saw no event since.
            channels.retain(|_, sender| sender.receiver_count() > 0);
        }
        channels.entry(channel.to_owned()).or_insert_with(|| broadcast::channel(CHANNEL_BUFFER).0).subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::EventName;

    fn event(channel: &str, offset: i64) -> Event {
        Event { channel: channel.into(), offset, name: EventName::BidPlaced, data: serde_json::json!({"seq": offset}) }
    }

    fn hub() -> LocalHub {
        LocalHub::new(Arc::new(|event: &Event| Utf8Bytes::from(format!("{} {}", event.channel, event.offset))))
    }

    #[tokio::test]
    async fn subscribers_get_the_same_encoded_frame_in_order() {
        let hub = hub();
        let mut a = hub.subscribe("lot:1");
        let mut b = hub.subscribe("lot:1");
        hub.publish(&[event("lot:1", 1), event("lot:2", 1), event("lot:1", 2)]);
        let (first_a, first_b) = (a.recv().await.unwrap(), b.recv().await.unwrap());
        assert!(Arc::ptr_eq(&first_a, &first_b), "encoded once, shared");
        assert_eq!(a.recv().await.unwrap().offset, 2);
        assert_eq!(first_a.text.as_str(), "lot:1 1");
    }
}
