//! The bridge over Redis pub/sub (`REDIS_URL`): one channel every instance
//! publishes to and listens on. The listener reconnects by itself, with
//! backoff, moving on to the next node of a cluster after a failure.

use std::time::Duration;

use futures_util::StreamExt;

use super::{Bridge, Listener, Names, retry_delay};
use crate::hub::Encoder;
use crate::shared::Shared;

/// The Redis pub/sub channel every instance publishes to and listens on.
const REDIS_CHANNEL: &str = "dkp:events";

static NAMES: Names = names!("redis");

impl Bridge {
    /// Starts the publisher and the listener of this instance on Redis.
    pub fn over_redis(shared: Shared, encoder: Encoder) -> Bridge {
        let (bridge, outgoing, listener) = Bridge::new(&NAMES, encoder);
        let mut connection = shared.connection();
        tokio::spawn(outgoing.run(async move |messages| {
            let mut pipe = ::redis::pipe();
            for message in messages {
                pipe.cmd("PUBLISH").arg(REDIS_CHANNEL).arg(message).ignore();
            }
            Ok(pipe.query_async::<()>(&mut connection).await?)
        }));
        tokio::spawn(listen(shared, listener));
        bridge
    }
}

/// Delivers what other instances publish, reconnecting whenever the link drops.
async fn listen(shared: Shared, mut listener: Listener) {
    let mut attempt = 0;
    let mut failures = 0;
    loop {
        match subscribe(shared.listener(attempt)).await {
            Ok(mut pubsub) => {
                listener.up();
                failures = 0;
                let mut messages = pubsub.on_message();
                while let Some(message) = messages.next().await {
                    listener.hear(message.get_payload_bytes());
                }
                listener.down();
            }
            Err(error) => {
                listener.down();
                tracing::debug!(error = %error, "cannot listen on Redis yet");
                attempt += 1;
                failures += 1;
            }
        }
        tokio::time::sleep(retry_delay(failures)).await;
    }
}

async fn subscribe(client: &::redis::Client) -> anyhow::Result<::redis::aio::PubSub> {
    let connect = async {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(REDIS_CHANNEL).await?;
        Ok::<_, ::redis::RedisError>(pubsub)
    };
    Ok(tokio::time::timeout(Duration::from_secs(2), connect).await??)
}
