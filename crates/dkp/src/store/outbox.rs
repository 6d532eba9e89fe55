//! The outbox: events waiting to be published to NATS JetStream, read in
//! the order they were written (within a channel, the order of their
//! offsets) and deleted once JetStream has acknowledged them.

use super::sql::Rows;
use super::{Store, StoreError};
use crate::model::{Event, EventName, Ts};

/// One event waiting in the outbox.
pub struct Waiting {
    pub id: i64,
    pub event: Event,
    pub created_at: Ts,
}

impl Store {
    /// The oldest `limit` events waiting, oldest first.
    pub async fn outbox_batch(&self, limit: u32) -> Result<Vec<Waiting>, StoreError> {
        let rows = self
            .db
            .sql(
                "SELECT o.id, o.channel, o.\"offset\", o.created_at, e.name, e.data FROM outbox o \
                 JOIN events e ON e.channel = o.channel AND e.\"offset\" = o.\"offset\" ORDER BY o.id LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all()
            .await?;
        rows.iter()
            .map(|row| {
                let name: String = row.get("name")?;
                let data: String = row.get("data")?;
                let event = Event {
                    channel: row.get("channel")?,
                    offset: row.get("offset")?,
                    name: EventName::parse(&name).ok_or_else(|| StoreError::Corrupt(format!("event {name}")))?,
                    data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                };
                Ok(Waiting { id: row.get("id")?, event, created_at: row.get("created_at")? })
            })
            .collect()
    }

    /// Forgets the events JetStream has acknowledged.
    pub async fn outbox_done(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let rows = Rows::of(ids.iter().map(|id| (*id,)));
        let sql =
            format!("DELETE FROM outbox WHERE id IN (SELECT column1 FROM {})", rows.relation(self.db.backend(), 1));
        self.db.sql_built(sql).bind_rows(rows).execute().await?;
        Ok(())
    }

    /// When the oldest event waiting was written, if any waits.
    pub async fn outbox_oldest(&self) -> Result<Option<Ts>, StoreError> {
        let row = self.db.sql("SELECT created_at FROM outbox ORDER BY id LIMIT 1").fetch_optional().await?;
        Ok(row.map(|row| row.get("created_at")).transpose()?)
    }
}
