//! `Bridge`: the fan-out between instances, over Redis pub/sub or core NATS
//! (`redis.rs`, `nats.rs`; which one, `app.rs` decides). Each instance
//! delivers its own committed events to its own clients at once, and sends
//! the same encoded frames to every other instance over the link; each
//! delivers what it hears there to its clients. No sticky sessions are
//! needed: a client may be connected anywhere.
//!
//! Neither link keeps anything, so a frame lost while the link is away is
//! not lost to the client: its forwarder fills any gap in offsets from the
//! event log when the next frame comes, and when the listener gets its link
//! back every forwarder is told to read the log for what it missed, so even
//! a channel's last event (a lot closed by another instance) arrives. A
//! reconnecting client asks with `since`. What the two links share lives
//! here: the message format, the queue of frames to send and its batches,
//! and the listener's rule of when to resync and whether it is healthy.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{broadcast, mpsc};

use super::{Encoder, Frame, Hub, LocalHub};
use crate::model::Event;
use crate::shared::CALL_LIMIT;

/// What tells one link from the other: the part readiness names, and its counters.
pub(super) struct Names {
    link: &'static str,
    published: &'static str,
    received: &'static str,
    dropped: &'static str,
}

/// The names of the link `$link`: readiness names it so, and its counters
/// are `dkp_hub_<link>_published_total`, `_received_total` and `_dropped_total`.
macro_rules! names {
    ($link:literal) => {
        Names {
            link: $link,
            published: concat!("dkp_hub_", $link, "_published_total"),
            received: concat!("dkp_hub_", $link, "_received_total"),
            dropped: concat!("dkp_hub_", $link, "_dropped_total"),
        }
    };
}

mod nats;
mod redis;

/// Frames waiting to be sent to the other instances; beyond this they are
/// dropped (and recovered from the log by the clients that need them).
const OUTGOING: usize = 16 * 1024;
/// Frames sent in one round trip at most.
const PUBLISH_BATCH: usize = 256;

/// Delivers this instance's events here and sends them to the others.
pub struct Bridge {
    names: &'static Names,
    local: Arc<LocalHub>,
    outgoing: mpsc::Sender<Arc<Frame>>,
    listening: Arc<AtomicBool>,
}

impl Bridge {
    /// The hub, and the sending and listening ends its link drives.
    fn new(names: &'static Names, encoder: Encoder) -> (Bridge, Outgoing, Listener) {
        let local = Arc::new(LocalHub::new(encoder));
        let instance = uuid::Uuid::now_v7().simple().to_string();
        let (outgoing, queue) = mpsc::channel(OUTGOING);
        let listening = Arc::new(AtomicBool::new(false));
        let listener = Listener {
            names,
            instance: instance.clone(),
            local: local.clone(),
            listening: listening.clone(),
            listened: false,
        };
        (Bridge { names, local, outgoing, listening }, Outgoing { names, instance, queue }, listener)
    }
}

impl Hub for Bridge {
    fn publish(&self, events: &[Event]) {
        for event in events {
            let frame = Arc::new(Frame::encode(event, self.local.encoder()));
            self.local.deliver(frame.clone());
            if self.outgoing.try_send(frame).is_err() {
                metrics::counter!(self.names.dropped).increment(1);
            }
        }
    }

    fn subscribe(&self, channel: &str) -> broadcast::Receiver<Arc<Frame>> {
        self.local.subscribe(channel)
    }

    fn healthy(&self) -> bool {
        self.listening.load(Ordering::Relaxed)
    }

    fn link(&self) -> Option<&'static str> {
        Some(self.names.link)
    }
}

/// One message on the link: the sending instance, the internal channel, the
/// offset and the frame, separated by newlines (the first three never hold
/// one; the frame is compact JSON, so it holds none either).
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
    Some(Frame::new(channel.to_owned(), offset.parse().ok()?, Utf8Bytes::from(frame.to_owned())))
}

/// How long to wait before the next attempt to reach a link that failed
/// `failures` times in a row: from 0.1 s, doubling, at most 2 s.
fn retry_delay(failures: usize) -> Duration {
    (Duration::from_millis(100) * 2_u32.saturating_pow(failures.min(5) as u32)).min(Duration::from_secs(2))
}

/// The frames this instance sends to the others.
struct Outgoing {
    names: &'static Names,
    instance: String,
    queue: mpsc::Receiver<Arc<Frame>>,
}

impl Outgoing {
    /// Sends queued frames with `send`, a batch of messages per call, until the hub is dropped.
    async fn run(mut self, mut send: impl AsyncFnMut(Vec<Vec<u8>>) -> anyhow::Result<()>) {
        let mut batch = Vec::with_capacity(PUBLISH_BATCH);
        while self.queue.recv_many(&mut batch, PUBLISH_BATCH).await > 0 {
            let count = batch.len() as u64;
            let messages = batch.drain(..).map(|frame| wire(&self.instance, &frame)).collect();
            match tokio::time::timeout(CALL_LIMIT * 4, send(messages)).await {
                Ok(Ok(())) => metrics::counter!(self.names.published).increment(count),
                _ => metrics::counter!(self.names.dropped).increment(count),
            }
        }
    }
}

/// Delivers what the other instances send, and keeps the hub's health.
struct Listener {
    names: &'static Names,
    instance: String,
    local: Arc<LocalHub>,
    listening: Arc<AtomicBool>,
    /// Whether the link was ever up: coming back after that, frames may have been lost.
    listened: bool,
}

impl Listener {
    /// The link is up and listening: after an outage, every forwarder reads the log.
    fn up(&mut self) {
        if self.listening.swap(true, Ordering::Relaxed) {
            return;
        }
        tracing::info!(link = self.names.link, "listening for other instances' events");
        if self.listened {
            self.local.resync();
        }
        self.listened = true;
    }

    /// The link is away: what the others send is lost until it is back.
    fn down(&mut self) {
        if self.listening.swap(false, Ordering::Relaxed) {
            tracing::warn!(link = self.names.link, "lost the link to the other instances; reconnecting");
        }
    }

    /// Messages were lost on the way in while the link stayed up (the
    /// server dropped them for a subscriber that fell behind): every
    /// forwarder reads the log, as after an outage.
    fn lost(&self) {
        tracing::warn!(link = self.names.link, "messages from other instances were dropped; reading the log");
        metrics::counter!(self.names.dropped).increment(1);
        self.local.resync();
    }

    /// Delivers one message, unless it is our own.
    fn hear(&self, message: &[u8]) {
        if let Some(frame) = unwire(&self.instance, message) {
            metrics::counter!(self.names.received).increment(1);
            self.local.deliver(Arc::new(frame));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::RESYNC;

    static NAMES: Names = Names { link: "test", published: "p", received: "r", dropped: "d" };

    #[test]
    fn a_frame_crosses_the_wire_unchanged_and_our_own_is_skipped() {
        let frame = Frame::new("lot:1".into(), 7, Utf8Bytes::from(r#"{"a":"x\ny"}"#.to_owned()));
        let payload = wire("me", &frame);
        assert!(unwire("me", &payload).is_none());
        let heard = unwire("other", &payload).expect("a frame");
        assert_eq!((heard.channel.as_str(), heard.offset, heard.text.as_str()), ("lot:1", 7, frame.text.as_str()));
    }

    #[tokio::test]
    async fn forwarders_resync_when_the_link_comes_back_and_only_then() {
        let (bridge, _outgoing, mut listener) = Bridge::new(&NAMES, Arc::new(|_: &Event| Utf8Bytes::from("")));
        let mut live = bridge.subscribe("lot:1");
        assert!(!bridge.healthy(), "not listening before the link is up");

        listener.up();
        listener.up();
        assert!(bridge.healthy());
        assert!(live.try_recv().is_err(), "nothing can have been missed before the link was first up");

        listener.down();
        assert!(!bridge.healthy());
        listener.up();
        assert_eq!(live.try_recv().expect("a resync").offset, RESYNC);
        assert!(live.try_recv().is_err(), "one resync per outage");

        listener.lost();
        assert!(bridge.healthy(), "a loss on a link that stays up is no outage");
        assert_eq!(live.try_recv().expect("a resync after a loss").offset, RESYNC);
    }

    #[test]
    fn attempts_back_off_from_a_tenth_of_a_second_to_two() {
        let delays: Vec<u128> = (0..7).map(|n| retry_delay(n).as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1600, 2000, 2000]);
    }
}
