//! One subscription's forwarder: replays what the client missed from the
//! event log, then forwards live frames from the hub, filling any gap in
//! offsets from the log, so the client gets every event once, in order.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::json;
use tokio::sync::{Notify, broadcast, mpsc};

use super::{Outgoing, REPLAY_PAGE, text};
use crate::http::wire::Wire;
use crate::hub::{Frame, RESYNC};
use crate::service::Service;

/// Replays and then forwards one channel to one client.
pub(super) struct Forwarder {
    pub(super) service: Arc<Service>,
    pub(super) wire: Arc<Wire>,
    pub(super) channel: String,
    pub(super) public: String,
    pub(super) live: broadcast::Receiver<Arc<Frame>>,
    pub(super) outbox: mpsc::Sender<Outgoing>,
    pub(super) slow: Arc<Notify>,
    /// The offset of the last frame queued for the client.
    pub(super) queued: Arc<AtomicI64>,
}

impl Forwarder {
    pub(super) async fn run(mut self, since: Option<i64>) {
        let mut last = None;
        if let Some(since) = since {
            match self.replay(since).await {
                Ok(sent_up_to) => last = Some(sent_up_to),
                Err(()) => return,
            }
        }
        loop {
            match self.live.recv().await {
                Ok(frame) if frame.offset == RESYNC => {
                    // Frames may have been lost on the way: read the log.
                    if let Some(seen) = last {
                        match self.catch_up(seen, i64::MAX).await {
                            Ok(caught_up) => last = Some(caught_up),
                            Err(()) => return,
                        }
                    }
                }
                Ok(frame) => {
                    if last.is_some_and(|last| frame.offset <= last) {
                        continue;
                    }
                    // Events are published after their commits, from several
                    // tasks, so they may come out of order: what this frame
                    // skips over is read from the log first.
                    if let Some(seen) = last.filter(|seen| frame.offset > seen + 1) {
                        match self.catch_up(seen, frame.offset).await {
                            Ok(caught_up) => last = Some(caught_up),
                            Err(()) => return,
                        }
                        if last.is_some_and(|last| frame.offset <= last) {
                            continue;
                        }
                    }
                    last = Some(frame.offset);
                    if self.outbox.try_send(Outgoing::live(&frame)).is_err() {
                        self.slow.notify_one();
                        return;
                    }
                    self.queued.store(frame.offset, Ordering::Release);
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.slow.notify_one();
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    /// Sends the logged events after `seen` and before `next`; the offset it
    /// brought the client up to.
    async fn catch_up(&mut self, seen: i64, next: i64) -> Result<i64, ()> {
        let events = self.service.events_since(&self.channel, seen, REPLAY_PAGE).await.map_err(|_| ())?;
        let mut sent = seen;
        for event in events.iter().take_while(|e| e.offset < next) {
            if self.outbox.try_send(self.wire.frame(event).into()).is_err() {
                self.slow.notify_one();
                return Err(());
            }
            sent = event.offset;
            self.queued.store(sent, Ordering::Release);
        }
        Ok(sent)
    }

    /// Sends every logged event after `since`, or a reset when the log no
    /// longer holds them all; the offset it brought the client up to.
    async fn replay(&mut self, since: i64) -> Result<i64, ()> {
        let bounds = self.service.event_bounds(&self.channel).await.map_err(|_| ())?;
        let complete = match bounds {
            None => since == 0,
            Some((first, last)) => since >= first - 1 && since <= last,
        };
        if !complete {
            let reset = text(json!({"type": "reset", "channel": self.public}));
            self.outbox.send(reset.into()).await.map_err(|_| ())?;
            return Ok(bounds.map_or(0, |(_, last)| last));
        }
        let mut sent = since;
        loop {
            let events = self.service.events_since(&self.channel, sent, REPLAY_PAGE).await.map_err(|_| ())?;
            let Some(newest) = events.last().map(|e| e.offset) else { break };
            for event in &events {
                self.outbox.send(self.wire.frame(event).into()).await.map_err(|_| ())?;
                self.queued.store(event.offset, Ordering::Release);
            }
            sent = newest;
            if events.len() < REPLAY_PAGE as usize {
                break;
            }
        }
        Ok(sent)
    }
}
