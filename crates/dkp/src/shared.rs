//! What instances share when several serve one database (`REDIS_URL`): the
//! connection to Redis, used by the cross-instance hub, the lot-state cache
//! and the rate limits. Redis only ever speeds things up or limits them; the
//! database stays the truth, so when Redis is away bids remain correct: the
//! limits fall back to this process, the cache to memory, the hub to this
//! instance's own clients (others catch up from the event log).
//!
//! Every call has a short time limit, and a call that fails opens a breaker:
//! for the next second no request waits on Redis at all (the limits count in
//! this process, the lot state comes from memory), so an outage costs a
//! request at most one time limit, once a second, never a stall. The
//! connection reconnects by itself once Redis is back; the readiness probe
//! closes the breaker as soon as Redis answers again.
//!
//! `REDIS_URL` names one server, or a Redis Cluster as a comma-separated list
//! of its nodes (`redis://a:7000,redis://b:7000,…`): keys are then spread
//! over the cluster's shards (each key our scripts touch is a single key, so
//! every script runs on one shard), and pub/sub messages reach every node,
//! so listening on any one of them hears them all.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::secret::Secret;

/// How long one Redis call may take before it counts as failed.
pub const CALL_LIMIT: Duration = Duration::from_millis(250);

/// The connection to Redis, shared by every part that uses it.
#[derive(Clone)]
pub struct Shared {
    /// Where pub/sub listens: the server, or each node of a cluster in turn.
    listeners: Vec<redis::Client>,
    connection: Link,
    /// Until when (ms since the epoch) requests leave Redis alone after a failure.
    open_until_ms: Arc<AtomicU64>,
}

/// How long a failed call keeps requests off Redis.
const BREAK: Duration = Duration::from_secs(1);

/// Milliseconds since the epoch, by this machine's clock.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// A self-healing connection to one server or to a cluster.
#[derive(Clone)]
pub enum Link {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Link {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Link::Single(connection) => connection.req_packed_command(cmd),
            Link::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Link::Single(connection) => connection.req_packed_commands(pipeline, offset, count),
            Link::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Link::Single(connection) => connection.get_db(),
            Link::Cluster(connection) => connection.get_db(),
        }
    }
}

impl Shared {
    /// Connects at start-up: a wrong or unreachable `REDIS_URL` stops here
    /// with a line naming Redis (the URL itself may hold a password).
    pub async fn connect(url: &Secret) -> anyhow::Result<Shared> {
        let nodes: Vec<&str> = url.expose().split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
        let listeners = nodes
            .iter()
            .map(|node| redis::Client::open(*node))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("REDIS_URL is not valid: {e}"))?;
        let connect = async {
            match listeners.as_slice() {
                [] => anyhow::bail!("REDIS_URL names no server"),
                [one] => {
                    let config = ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(Duration::from_secs(2)))
                        .set_response_timeout(Some(CALL_LIMIT))
                        .set_number_of_retries(1)
                        .set_max_delay(Duration::from_secs(1));
                    Ok(Link::Single(ConnectionManager::new_with_config(one.clone(), config).await?))
                }
                _ => {
                    let cluster = redis::cluster::ClusterClientBuilder::new(nodes.clone())
                        .connection_timeout(Duration::from_secs(2))
                        .response_timeout(CALL_LIMIT)
                        .retries(1)
                        .build()?;
                    Ok(Link::Cluster(cluster.get_async_connection().await?))
                }
            }
        };
        let connection = tokio::time::timeout(Duration::from_secs(5), connect)
            .await
            .map_err(|_| anyhow::anyhow!("Redis at REDIS_URL does not answer"))?
            .context("cannot connect to Redis at REDIS_URL")?;
        let shared = Shared { listeners, connection, open_until_ms: Arc::default() };
        shared.ping().await.context("Redis at REDIS_URL does not answer")?;
        Ok(shared)
    }

    /// Where to listen for pub/sub messages on the `attempt`-th try: the
    /// nodes in turn, so a dead node is passed over.
    pub fn listener(&self, attempt: usize) -> &redis::Client {
        &self.listeners[attempt % self.listeners.len()]
    }

    /// A handle on the shared, self-healing connection (cheap to clone).
    pub fn connection(&self) -> Link {
        self.connection.clone()
    }

    /// Whether Redis answers now (asked whatever the breaker says).
    pub async fn ping(&self) -> anyhow::Result<()> {
        let mut connection = self.connection();
        let ping = redis::cmd("PING");
        let call = ping.query_async::<String>(&mut connection);
        match tokio::time::timeout(CALL_LIMIT * 4, call).await {
            Ok(Ok(_)) => {
                self.open_until_ms.store(0, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(error)) => {
                self.trip();
                Err(error.into())
            }
            Err(_) => {
                self.trip();
                anyhow::bail!("no answer within {:?}", CALL_LIMIT * 4)
            }
        }
    }

    /// Whether requests may call Redis now (no failure in the last second).
    fn closed(&self) -> bool {
        now_ms() >= self.open_until_ms.load(Ordering::Relaxed)
    }

    fn trip(&self) {
        self.open_until_ms.store(now_ms() + BREAK.as_millis() as u64, Ordering::Relaxed);
    }

    /// Runs a call with a time limit; `None` (counted) when Redis fails or
    /// failed within the last second.
    async fn call<T>(&self, what: &'static str, call: impl Future<Output = redis::RedisResult<T>>) -> Option<T> {
        if !self.closed() {
            metrics::counter!("dkp_redis_skipped_total", "call" => what).increment(1);
            return None;
        }
        match tokio::time::timeout(CALL_LIMIT, call).await {
            Ok(Ok(value)) => Some(value),
            outcome => {
                if let Ok(Err(error)) = outcome {
                    tracing::debug!(error = %error, call = what, "a Redis call failed");
                }
                metrics::counter!("dkp_redis_failures_total", "call" => what).increment(1);
                self.trip();
                None
            }
        }
    }

    /// Runs a script (see `call`).
    pub async fn run<T: redis::FromRedisValue>(
        &self,
        what: &'static str,
        script: redis::ScriptInvocation<'_>,
    ) -> Option<T> {
        let mut connection = self.connection();
        self.call(what, script.invoke_async::<T>(&mut connection)).await
    }

    /// Runs one command (see `call`).
    pub async fn query<T: redis::FromRedisValue>(&self, what: &'static str, command: &Cmd) -> Option<T> {
        let mut connection = self.connection();
        self.call(what, command.query_async::<T>(&mut connection)).await
    }
}
