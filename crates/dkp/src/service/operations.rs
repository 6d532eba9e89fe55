//! Readiness: whether every backing service this instance depends on answers.

use std::time::Duration;

use super::Service;
use crate::store::Lsn;

/// How long one backing service may take to answer the readiness check.
const CHECK_LIMIT: Duration = Duration::from_secs(2);

impl Service {
    /// The backing services that answered, in the order checked, or the
    /// first that did not: `database`, then `redis`, `nats` (the link
    /// between instances, when NATS carries it), `blobs` and
    /// `database_read` where configured. Each answer sets
    /// `dkp_backend_up{backend}` (1 or 0; the parts after a failing one keep
    /// their last value).
    pub async fn readiness(&self) -> Result<Vec<&'static str>, &'static str> {
        let checked = self.check_parts().await;
        let up = |part: &'static str, up: bool| {
            metrics::gauge!("dkp_backend_up", "backend" => part).set(if up { 1.0 } else { 0.0 });
        };
        match &checked {
            Ok(ready) => ready.iter().for_each(|part| up(part, true)),
            Err(failing) => up(failing, false),
        }
        checked
    }

    async fn check_parts(&self) -> Result<Vec<&'static str>, &'static str> {
        match tokio::time::timeout(CHECK_LIMIT, self.store.ping()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                tracing::warn!(error = %error, "readiness: the database does not answer");
                return Err("database");
            }
            Err(_) => return Err("database"),
        }
        let mut ready = vec!["database"];
        if let Some(shared) = &self.shared {
            if let Err(error) = shared.ping().await {
                tracing::warn!(error = %error, "readiness: Redis does not answer");
                return Err("redis");
            }
            ready.push("redis");
        }
        if let Some(link) = self.hub.link() {
            // Without its link this instance would miss the others' events.
            if !self.hub.healthy() {
                return Err(link);
            }
            if !ready.contains(&link) {
                ready.push(link);
            }
        }
        if self.blobs.is_remote() {
            // A local folder fails with its own requests; a remote store may be away.
            match tokio::time::timeout(CHECK_LIMIT, self.blobs.ping()).await {
                Ok(Ok(())) => ready.push("blobs"),
                Ok(Err(error)) => {
                    tracing::warn!(error = %error, "readiness: the blob store does not answer");
                    return Err("blobs");
                }
                Err(_) => return Err("blobs"),
            }
        }
        // Reads fall back to the primary while the replica is away, but readiness says so.
        match tokio::time::timeout(CHECK_LIMIT, self.store.ping_replica()).await {
            Ok(None) => {}
            Ok(Some(Ok(()))) => ready.push("database_read"),
            Ok(Some(Err(error))) => {
                tracing::warn!(error = %error, "readiness: the read replica does not answer");
                return Err("database_read");
            }
            Err(_) => return Err("database_read"),
        }
        Ok(ready)
    }

    /// How far the primary has written, for a caller who has just written;
    /// `None` when reads never go to a replica.
    pub async fn write_position(&self) -> Result<Option<Lsn>, super::Error> {
        Ok(self.store.write_position().await?)
    }
}
