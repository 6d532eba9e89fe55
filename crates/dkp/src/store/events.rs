//! The durable event log: every event is written in the transaction of the
//! change it reports, with an offset that strictly increases per channel, so
//! a client that reconnects can be given exactly what it missed.

use dkp_core::Points;
use serde_json::{Value, json};
use uuid::Uuid;

use super::model::{Event, user_channel};
use super::sql::{Db, Row, Tx};
use super::{Ctx, StoreError};

/// Appends an event at an offset the caller owns (a lot's seq).
pub async fn append_at(
    tx: &mut Tx,
    channel: String,
    offset: i64,
    name: &'static str,
    data: Value,
    ctx: &Ctx,
) -> Result<Event, StoreError> {
    tx.sql("INSERT INTO events (channel, \"offset\", name, data, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(channel.as_str())
        .bind(offset)
        .bind(name)
        .bind(data.to_string())
        .bind(ctx.now)
        .execute()
        .await?;
    Ok(Event { channel, offset, name, data })
}

/// Appends an event at the channel's next offset. The counter row stays
/// locked until commit, so offsets commit in the order they were taken.
pub async fn append(
    tx: &mut Tx,
    channel: String,
    name: &'static str,
    data: Value,
    ctx: &Ctx,
) -> Result<Event, StoreError> {
    let offset: i64 = tx
        .sql(
            "INSERT INTO channel_offsets (channel, last) VALUES ($1, 1) \
             ON CONFLICT (channel) DO UPDATE SET last = channel_offsets.last + 1 RETURNING last",
        )
        .bind(channel.as_str())
        .fetch_one()
        .await?
        .get("last")?;
    append_at(tx, channel, offset, name, data, ctx).await
}

/// A `balance_changed` event on the own channel of each member named, with
/// their wallet as it stands inside `tx`.
pub async fn balance_changes(
    tx: &mut Tx,
    guild_id: Uuid,
    pool_id: Uuid,
    members: &[Uuid],
    ctx: &Ctx,
) -> Result<Vec<Event>, StoreError> {
    let mut events = Vec::with_capacity(members.len());
    for member in members {
        let row = tx
            .sql(
                "SELECT m.user_id, a.balance, \
                 CAST(COALESCE((SELECT SUM(h.amount) FROM holds h WHERE h.account_id = a.id), 0) AS BIGINT) AS held \
                 FROM accounts a JOIN members m ON m.id = a.member_id WHERE a.pool_id = $1 AND a.member_id = $2",
            )
            .bind(pool_id)
            .bind(*member)
            .fetch_one()
            .await?;
        let (balance, held) = (Points::from_stored(row.get("balance")?), Points::from_stored(row.get("held")?));
        let available = balance.checked_sub(held).map_err(|_| StoreError::Corrupt("available overflows".into()))?;
        let data = json!({
            "guild_id": guild_id, "pool_id": pool_id, "member_id": member,
            "balance": balance.to_string(), "held": held.to_string(), "available": available.to_string(),
        });
        events.push(append(tx, user_channel(row.get("user_id")?), "balance_changed", data, ctx).await?);
    }
    Ok(events)
}

fn event_of(row: &Row) -> Result<Event, StoreError> {
    let name: String = row.get("name")?;
    let data: String = row.get("data")?;
    Ok(Event {
        channel: row.get("channel")?,
        offset: row.get("offset")?,
        name: EVENT_NAMES
            .into_iter()
            .find(|n| *n == name)
            .ok_or_else(|| StoreError::Corrupt(format!("event {name:?}")))?,
        data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

/// Every event name the service writes.
pub const EVENT_NAMES: [&str; 6] =
    ["lot_opened", "bid_placed", "lot_extended", "lot_closed", "lot_cancelled", "balance_changed"];

/// Up to `limit` events of `channel` after `offset`, in order.
pub async fn since(db: &Db, channel: &str, offset: i64, limit: u32) -> Result<Vec<Event>, StoreError> {
    db.sql("SELECT channel, \"offset\", name, data FROM events WHERE channel = $1 AND \"offset\" > $2 ORDER BY \"offset\" LIMIT $3")
        .bind(channel)
        .bind(offset)
        .bind(i64::from(limit))
        .fetch_all()
        .await?
        .iter()
        .map(event_of)
        .collect()
}

/// The oldest and newest offsets kept for `channel`.
pub async fn bounds(db: &Db, channel: &str) -> Result<Option<(i64, i64)>, StoreError> {
    let row = db
        .sql("SELECT MIN(\"offset\") AS first, MAX(\"offset\") AS last FROM events WHERE channel = $1")
        .bind(channel)
        .fetch_one()
        .await?;
    let (first, last): (Option<i64>, Option<i64>) = (row.get("first")?, row.get("last")?);
    Ok(first.zip(last))
}
