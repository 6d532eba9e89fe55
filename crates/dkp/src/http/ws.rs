//! `GET /api/v1/ws`: the real-time feed (seed risk R2).
//!
//! One task per connection owns the socket; one small task per subscription
//! replays missed events from the event log (for `since`) and then forwards
//! live frames from the hub. Everything bound for the client goes through one
//! bounded queue: a client that lets it fill, or that lags behind the hub's
//! buffer, is disconnected and counted, so a slow reader never grows memory.
//! A socket that takes 5 s to accept one frame counts as slow too. Pings
//! every 20 s; a client silent for 60 s is closed.
//!
//! Connections end with the closing handshake: a client's Close is answered
//! with a Close, and the server's own (idle 1001, too slow or session ended
//! 1008, a message over 64 KiB 1009) waits briefly for the client's answer.
//! A connection whose session ends (a logout on any instance, or its time
//! running out) is closed within about a second (see `service::watch`).
//!
//! On one connection a channel's offsets never repeat: subscribing again to a
//! channel continues after what the earlier subscription already queued
//! (unsubscribe first to be replayed from scratch).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{
    CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::http::{HeaderMap, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::SinkExt;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use tokio_tungstenite::tungstenite;

use super::extract::{ClientAddress, Credentials, ListQuery};
use super::wire::Wire;
use super::{ApiError, AppState};
use crate::model::{Code, User};
use crate::service::watch::Watched;
use crate::service::{Error, Service};

mod forward;

use forward::Forwarder;

/// Frames queued for one client at most.
const OUTBOX: usize = 256;
const PING_EVERY: Duration = Duration::from_secs(20);
/// A client whose socket takes longer than this to accept one frame is too slow.
const SEND_LIMIT: Duration = Duration::from_secs(5);
const SILENCE_LIMIT: Duration = Duration::from_secs(60);
const MAX_SUBSCRIPTIONS: usize = 64;
/// Events replayed per read of the log.
const REPLAY_PAGE: u32 = 500;
/// One flush of a connection in this many records how long its oldest live
/// frame waited in this process (`dkp_ws_frame_wait_seconds`), and how many
/// frames the flush wrote (`dkp_ws_frames_per_flush`).
const WAIT_SAMPLE: u32 = 16;

/// A frame queued for a client, and when a live one was published here
/// (replies and replays from the log carry none).
struct Outgoing {
    text: Utf8Bytes,
    born: Option<std::time::Instant>,
}

impl Outgoing {
    fn live(frame: &crate::hub::Frame) -> Outgoing {
        Outgoing { text: frame.text.clone(), born: Some(frame.born) }
    }
}

impl From<Utf8Bytes> for Outgoing {
    fn from(text: Utf8Bytes) -> Outgoing {
        Outgoing { text, born: None }
    }
}

pub fn router() -> Router<AppState> {
    Router::new().route("/api/v1/ws", get(upgrade))
}

async fn upgrade(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    query: ListQuery,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    state.service.admit_connect(&address).await?;
    let token = match Credentials::of(&headers) {
        Some(Credentials { token, by_cookie }) => {
            if by_cookie {
                state.origin.check(&Method::GET, true, &headers)?;
            }
            token
        }
        None => query.get("token").map(str::to_owned).ok_or(ApiError::Unauthenticated)?,
    };
    let user = state.service.authenticate(&token).await?.ok_or(ApiError::Unauthenticated)?;
    let ws = ws.map_err(|e| ApiError::BadRequest { code: Code::WebsocketRequired, message: e.body_text() })?;
    let (service, wire) = (state.service.clone(), state.wire.clone());
    let lots_only = state.role == crate::config::ServeRole::Auction;
    Ok(ws
        .read_buffer_size(4 * 1024)
        .write_buffer_size(16 * 1024)
        .max_message_size(64 * 1024)
        .on_upgrade(move |socket| async move {
            let session = service.watch_session(&token);
            Connection::new(service, wire, user, lots_only).run(socket, session).await
        })
        .into_response())
}

/// How long a Close of ours waits for the client's answer.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How a connection ends.
enum Ending {
    /// The client closed: its Close is answered (the echo is queued already).
    Answered,
    /// We close with this code and reason.
    Close(u16, &'static str),
    /// The link is gone, or too clogged to carry a Close.
    Dropped,
}

impl Ending {
    /// Ends the connection with the closing handshake where there is a link for one.
    async fn finish(self, mut socket: WebSocket) {
        match self {
            Ending::Answered => {
                let _ = tokio::time::timeout(SEND_LIMIT, socket.flush()).await;
            }
            Ending::Close(code, reason) => {
                let close = Message::Close(Some(CloseFrame { code, reason: reason.into() }));
                if let Ok(Ok(())) = tokio::time::timeout(SEND_LIMIT, socket.send(close)).await {
                    // The client answers with a Close of its own; then the link ends.
                    let answered = async { while let Some(Ok(_)) = socket.recv().await {} };
                    let _ = tokio::time::timeout(CLOSE_WAIT, answered).await;
                }
            }
            Ending::Dropped => {}
        }
    }
}

/// Whether a read failed on a message over the size limit.
fn too_big(error: &axum::Error) -> bool {
    let cause = std::error::Error::source(error).and_then(|cause| cause.downcast_ref::<tungstenite::Error>());
    matches!(cause, Some(tungstenite::Error::Capacity(_)))
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    Subscribe { channel: String, since: Option<i64> },
    Unsubscribe { channel: String },
}

struct Connection {
    service: Arc<Service>,
    /// On an `auction` instance: only `lot:` channels are here.
    lots_only: bool,
    wire: Arc<Wire>,
    user: User,
    outbox: mpsc::Sender<Outgoing>,
    outbox_rx: Option<mpsc::Receiver<Outgoing>>,
    /// Raised by a forwarder whose client fell behind.
    slow: Arc<Notify>,
    subscriptions: HashMap<String, Subscription>,
}

/// One channel a client follows: its forwarder, and the offset of the last
/// frame it queued (so a new subscription to the same channel starts after
/// it instead of queueing the same frames twice).
struct Subscription {
    task: JoinHandle<()>,
    queued: Arc<AtomicI64>,
}

/// `queued` before anything was queued.
const NOTHING_QUEUED: i64 = i64::MIN;

fn text(value: serde_json::Value) -> Utf8Bytes {
    Utf8Bytes::from(value.to_string())
}

impl Connection {
    fn new(service: Arc<Service>, wire: Arc<Wire>, user: User, lots_only: bool) -> Connection {
        let (outbox, outbox_rx) = mpsc::channel(OUTBOX);
        Connection {
            service,
            wire,
            user,
            lots_only,
            outbox,
            outbox_rx: Some(outbox_rx),
            slow: Arc::new(Notify::new()),
            subscriptions: HashMap::new(),
        }
    }

    async fn run(mut self, mut socket: WebSocket, mut session: Watched) {
        metrics::gauge!("dkp_ws_connections").increment(1.0);
        let Some(mut outbox) = self.outbox_rx.take() else { return };
        let mut ping = tokio::time::interval_at(Instant::now() + PING_EVERY, PING_EVERY);
        let mut last_heard = Instant::now();
        let slow = self.slow.clone();
        let mut flushes = 0u32;
        let ending = loop {
            tokio::select! {
                incoming = socket.recv() => {
                    let message = match incoming {
                        Some(Ok(message)) => message,
                        Some(Err(error)) if too_big(&error) => break Ending::Close(1009, "message too big"),
                        _ => break Ending::Dropped,
                    };
                    last_heard = Instant::now();
                    match message {
                        Message::Text(body) => {
                            if let Some(reply) = self.handle(body.as_str()).await {
                                self.queue(reply);
                            }
                        }
                        Message::Close(_) => break Ending::Answered,
                        _ => {}
                    }
                }
                Some(frame) = outbox.recv() => {
                    match tokio::time::timeout(SEND_LIMIT, send_queued(&mut socket, frame, &mut outbox)).await {
                        Ok(Ok((sent, oldest))) => {
                            crate::telemetry::ws_sent(sent);
                            flushes = flushes.wrapping_add(1);
                            if let Some(born) = oldest.filter(|_| flushes % WAIT_SAMPLE == 0) {
                                crate::telemetry::ws_frame_waited(born.elapsed(), sent);
                            }
                        }
                        Ok(Err(_)) => break Ending::Dropped,
                        Err(_) => {
                            // The socket accepts nothing more: a consumer too slow to keep up.
                            metrics::counter!("dkp_ws_slow_consumers_dropped_total").increment(1);
                            break Ending::Dropped;
                        }
                    }
                }
                _ = ping.tick() => {
                    if last_heard.elapsed() > SILENCE_LIMIT {
                        break Ending::Close(1001, "idle");
                    }
                    if !matches!(tokio::time::timeout(SEND_LIMIT, socket.send(Message::Ping(Default::default()))).await, Ok(Ok(()))) {
                        break Ending::Dropped;
                    }
                }
                _ = slow.notified() => {
                    metrics::counter!("dkp_ws_slow_consumers_dropped_total").increment(1);
                    break Ending::Close(1008, "too slow");
                }
                _ = session.ended() => break Ending::Close(1008, "session ended"),
            }
        };
        for (_, subscription) in self.subscriptions.drain() {
            subscription.task.abort();
        }
        ending.finish(socket).await;
        metrics::gauge!("dkp_ws_connections").decrement(1.0);
    }

    /// Queues a reply behind what is already queued; a client whose queue is
    /// full is too slow, and is cut off like any other slow consumer.
    fn queue(&self, reply: Utf8Bytes) {
        if self.outbox.try_send(reply.into()).is_err() {
            self.slow.notify_one();
        }
    }

    /// Handles one client message; what to answer it with, if anything.
    async fn handle(&mut self, body: &str) -> Option<Utf8Bytes> {
        let message: ClientMessage = match serde_json::from_str(body) {
            Ok(message) => message,
            Err(e) => return Some(text(json!({"type": "error", "code": "invalid_json", "message": e.to_string()}))),
        };
        match message {
            ClientMessage::Unsubscribe { channel } => {
                if let Some(subscription) = self.subscriptions.remove(&channel) {
                    subscription.task.abort();
                }
                Some(text(json!({"type": "unsubscribed", "channel": channel})))
            }
            ClientMessage::Subscribe { channel, since } => {
                if self.subscriptions.len() >= MAX_SUBSCRIPTIONS && !self.subscriptions.contains_key(&channel) {
                    return Some(text(json!({"type": "error", "code": "too_many_subscriptions", "channel": channel})));
                }
                if self.lots_only && !channel.starts_with("lot:") {
                    return Some(text(json!({"type": "error", "code": "not_found", "channel": channel})));
                }
                match self.service.channel(&self.user, &channel).await {
                    Ok(internal) => {
                        let live = self.service.subscribe(&internal);
                        // What an earlier subscription to this channel queued is
                        // still on its way to the client: start after it.
                        let mut since = since;
                        if let Some(old) = self.subscriptions.remove(&channel) {
                            old.task.abort();
                            let _ = old.task.await;
                            let queued = old.queued.load(Ordering::Acquire);
                            if queued != NOTHING_QUEUED {
                                since = Some(since.map_or(queued, |since| since.max(queued)));
                            }
                        }
                        let queued = Arc::new(AtomicI64::new(NOTHING_QUEUED));
                        let forwarder = Forwarder {
                            service: self.service.clone(),
                            wire: self.wire.clone(),
                            channel: internal,
                            public: channel.clone(),
                            live,
                            outbox: self.outbox.clone(),
                            slow: self.slow.clone(),
                            queued: queued.clone(),
                        };
                        // The subscription is acknowledged before anything it replays.
                        self.queue(text(json!({"type": "subscribed", "channel": channel})));
                        let task = tokio::spawn(forwarder.run(since));
                        self.subscriptions.insert(channel, Subscription { task, queued });
                        None
                    }
                    Err(error) => {
                        let code = match error {
                            Error::Refused(_) | Error::Forbidden => "not_found",
                            _ => "unavailable",
                        };
                        Some(text(json!({"type": "error", "code": code, "channel": channel})))
                    }
                }
            }
        }
    }
}

/// Writes `first` and whatever else is already queued (up to a batch), then
/// flushes once: one write to the socket for a burst of frames. How many
/// went, and when the oldest live one among them was published.
async fn send_queued(
    socket: &mut WebSocket,
    first: Outgoing,
    outbox: &mut mpsc::Receiver<Outgoing>,
) -> Result<(u64, Option<std::time::Instant>), axum::Error> {
    let mut oldest = first.born;
    socket.feed(Message::Text(first.text)).await?;
    let mut sent = 1;
    while sent < 64 {
        let Ok(next) = outbox.try_recv() else { break };
        oldest = oldest.or(next.born);
        socket.feed(Message::Text(next.text)).await?;
        sent += 1;
    }
    socket.flush().await?;
    Ok((sent, oldest))
}
