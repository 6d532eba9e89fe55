//! Feeds the audit database (`store::audit_db`) from the main database's
//! audit rows: those it has not yet, oldest first. Rows younger than a few
//! seconds wait for the next round, so a transaction that committed late
//! with an older id is never passed over.

use std::time::Duration;

use crate::clock::Clock;
use crate::model::Ts;
use crate::store::audit_db::AuditDb;
use crate::store::{Store, StoreError};

/// How old a row must be before it is copied.
const SETTLED: Duration = Duration::from_secs(5);
/// Rows copied per statement batch.
const BATCH: u32 = 500;

/// Copies every row made before `until`; how many were copied.
pub async fn copy_until(store: &Store, audit: &AuditDb, until: Ts) -> Result<usize, StoreError> {
    let mut copied = 0;
    loop {
        let after = audit.last_id().await?;
        let rows = store.audit_rows_after(after, until, BATCH).await?;
        if rows.is_empty() {
            return Ok(copied);
        }
        audit.append(&rows).await?;
        copied += rows.len();
    }
}

/// Feeds the audit database every second until the process ends, making
/// each month's partitions ahead as it goes.
pub async fn run(store: std::sync::Arc<Store>, audit: AuditDb, clock: std::sync::Arc<dyn Clock>) {
    let mut round: u64 = 0;
    loop {
        let now = clock.now();
        // Partitions once an hour (and at start): made months ahead, never dropped.
        if round % 3600 == 0 {
            if let Err(error) = audit.make_partitions(now).await {
                tracing::warn!(error = %error, "making the audit database's partitions");
            }
        }
        let until = Ts(now.0 - SETTLED);
        match copy_until(&store, &audit, until).await {
            Ok(copied) => metrics::counter!("dkp_audit_rows_copied_total").increment(copied as u64),
            Err(error) => tracing::warn!(error = %error, "feeding the audit database"),
        }
        round += 1;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
