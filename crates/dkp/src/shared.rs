//! What instances share when several serve one database (`REDIS_URL`): the
//! connection to Redis, used by the cross-instance hub, the lot-state cache
//! and the rate limits. Redis only ever speeds things up or limits them; the
//! database stays the truth, so when Redis is away bids remain correct: the
//! limits fall back to this process, the cache to memory, the hub to this
//! instance's own clients (others catch up from the event log).
//!
//! Every call has a short time limit, so a Redis that hangs costs a request
//! a few milliseconds, never a stall. The connection manager reconnects by
//! itself once Redis is back.

use std::time::Duration;

use anyhow::Context;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::config::Secret;

/// How long one Redis call may take before it counts as failed.
pub const CALL_LIMIT: Duration = Duration::from_millis(250);

/// The connection to Redis, shared by every part that uses it.
#[derive(Clone)]
pub struct Shared {
    client: redis::Client,
    connection: ConnectionManager,
}

impl Shared {
    /// Connects at start-up: a wrong or unreachable `REDIS_URL` stops here
    /// with a line naming Redis (the URL itself may hold a password).
    pub async fn connect(url: &Secret) -> anyhow::Result<Shared> {
        let client = redis::Client::open(url.expose()).map_err(|e| anyhow::anyhow!("REDIS_URL is not valid: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(CALL_LIMIT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection =
            tokio::time::timeout(Duration::from_secs(5), ConnectionManager::new_with_config(client.clone(), config))
                .await
                .map_err(|_| anyhow::anyhow!("Redis at REDIS_URL does not answer"))?
                .context("cannot connect to Redis at REDIS_URL")?;
        let shared = Shared { client, connection };
        shared.ping().await.context("Redis at REDIS_URL does not answer")?;
        Ok(shared)
    }

    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// A handle on the shared, self-healing connection (cheap to clone).
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Whether Redis answers now.
    pub async fn ping(&self) -> anyhow::Result<()> {
        let mut connection = self.connection();
        let ping = redis::cmd("PING");
        let call = ping.query_async::<String>(&mut connection);
        match tokio::time::timeout(CALL_LIMIT * 4, call).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(error.into()),
            Err(_) => anyhow::bail!("no answer within {:?}", CALL_LIMIT * 4),
        }
    }

    /// Runs a script with a time limit; `None` (counted) when Redis fails.
    pub async fn run<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        call: redis::ScriptInvocation<'_>,
    ) -> Option<T> {
        let mut connection = self.connection();
        match tokio::time::timeout(CALL_LIMIT, call.invoke_async::<T>(&mut connection)).await {
            Ok(Ok(value)) => Some(value),
            Ok(Err(error)) => {
                metrics::counter!("dkp_redis_failures_total", "call" => what).increment(1);
                tracing::debug!(error = %error, call = what, "a Redis call failed");
                None
            }
            Err(_) => {
                metrics::counter!("dkp_redis_failures_total", "call" => what).increment(1);
                None
            }
        }
    }
}
