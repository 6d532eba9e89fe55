//! The relay from the outbox to NATS JetStream (seed phase 3: events for
//! other services). Every committed event is published at least once to
//! the stream `DKP_EVENTS` on `dkp.events.<channel>` (`:` as `.`), with
//! `Nats-Msg-Id: <channel>:<offset>` so that JetStream drops a second copy,
//! and the same JSON as the WebSocket event.
//!
//! In order per channel: the outbox is read oldest first (a channel's
//! events are written in offset order), and each publish waits for
//! JetStream's acknowledgement before the next, so a channel's later event
//! is never stored before an earlier one, also when two relays run at once
//! or one is killed mid-batch (its rows stay and are published again;
//! JetStream keeps the first copy). Rows go only once acknowledged.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, stream};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::hub::Encoder;
use crate::store::Store;

/// The stream every event goes to.
pub const STREAM: &str = "DKP_EVENTS";
/// Events read from the outbox per round.
const BATCH: u32 = 500;

/// The subject of a channel's events.
pub fn subject(channel: &str) -> String {
    format!("dkp.events.{}", channel.replace(':', "."))
}

/// Connects to NATS and makes sure the stream exists.
pub async fn connect(url: &str) -> anyhow::Result<jetstream::Context> {
    let client = async_nats::connect(url).await?;
    let context = jetstream::new(client);
    let config =
        stream::Config { name: STREAM.to_owned(), subjects: vec!["dkp.events.>".to_owned()], ..Default::default() };
    context.get_or_create_stream(config).await.map_err(|e| anyhow::anyhow!("the stream {STREAM}: {e}"))?;
    Ok(context)
}

/// Publishes one round of the outbox; how many events went.
async fn round(store: &Store, nats: &jetstream::Context, encode: &Encoder) -> anyhow::Result<usize> {
    let waiting = store.outbox_batch(BATCH).await?;
    let mut done = Vec::with_capacity(waiting.len());
    for item in &waiting {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            format!("{}:{}", item.event.channel, item.event.offset).as_str(),
        );
        let payload = bytes::Bytes::copy_from_slice(encode(&item.event).as_bytes());
        let ack = nats.publish_with_headers(subject(&item.event.channel), headers, payload).await;
        let published = match ack {
            Ok(ack) => ack.await.is_ok(),
            Err(_) => false,
        };
        if !published {
            // What went before is stored; this one and the rest wait for the next round.
            break;
        }
        done.push(item.id);
    }
    store.outbox_done(&done).await?;
    Ok(done.len())
}

/// Relays until `stop`, and reports the age of the oldest event waiting.
pub async fn run(
    store: Arc<Store>,
    nats: jetstream::Context,
    encode: Encoder,
    clock: Arc<dyn Clock>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let sent = match round(&store, &nats, &encode).await {
            Ok(sent) => sent,
            Err(error) => {
                tracing::warn!(error = %error, "publishing the outbox to NATS");
                0
            }
        };
        metrics::counter!("dkp_outbox_published_total").increment(sent as u64);
        let lag = match store.outbox_oldest().await {
            Ok(Some(oldest)) => (clock.now().micros() - oldest.micros()).max(0) as f64 / 1e6,
            _ => 0.0,
        };
        metrics::gauge!("dkp_outbox_lag_seconds").set(lag);
        if sent > 0 {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_channel_is_a_subject_of_its_own() {
        assert_eq!(super::subject("lot:0191"), "dkp.events.lot.0191");
        assert_eq!(super::subject("guild:owls"), "dkp.events.guild.owls");
    }
}
