//! The durable event log: every event is written in the transaction of the
//! change it reports, with an offset that strictly increases per channel, so
//! a client that reconnects can be given exactly what it missed.

use std::collections::{BTreeMap, HashMap};

use dkp_core::Points;
use serde_json::Value;
use uuid::Uuid;

use super::sql::{Row, Rows, Tx, Writes};
use super::{Ctx, Store, StoreError};
use crate::model::{Event, EventName, balance_changed, user_channel};

/// An event to write: on a lot's channel with the lot's own offset, or on
/// another channel at that channel's next offset.
pub struct Pending {
    pub channel: String,
    pub offset: Option<i64>,
    pub name: EventName,
    pub data: Value,
}

impl Pending {
    pub fn at(channel: String, offset: i64, name: EventName, data: Value) -> Pending {
        Pending { channel, offset: Some(offset), name, data }
    }

    pub fn next(channel: String, name: EventName, data: Value) -> Pending {
        Pending { channel, offset: None, name, data }
    }
}

/// Writes events in two statements whatever their number: one bump of the
/// channel counters that need one (each row stays locked until commit, so
/// offsets commit in the order they were taken) and one multi-row insert.
pub async fn append(tx: &mut Tx, pending: Vec<Pending>, ctx: &Ctx) -> Result<Vec<Event>, StoreError> {
    let events = number(tx, pending).await?;
    let mut writes = Writes::default();
    add_event_writes(&mut writes, &events, ctx);
    writes.run(tx).await?;
    Ok(events)
}

/// The writes of `events`: into the log, and into the outbox when events go to NATS.
pub fn add_event_writes(writes: &mut Writes, events: &[Event], ctx: &Ctx) {
    writes.add(INSERT_EVENTS, event_rows(events, ctx));
    if ctx.outbox {
        let rows = Rows::of(events.iter().map(|event| (event.channel.clone(), event.offset, ctx.now)));
        writes.add(INSERT_OUTBOX, rows);
    }
}

/// Queues events for NATS: `(channel, offset, created_at)` rows.
const INSERT_OUTBOX: &str = "INSERT INTO outbox (channel, \"offset\", created_at) SELECT * FROM {rows}";

/// Inserts events from their `event_rows`.
const INSERT_EVENTS: &str = "INSERT INTO events (channel, \"offset\", name, data, created_at) SELECT * FROM {rows}";

/// The rows of `INSERT_EVENTS`.
fn event_rows(events: &[Event], ctx: &Ctx) -> Rows {
    Rows::of(events.iter().map(|event| {
        (event.channel.clone(), event.offset, event.name.as_str().to_string(), event.data.to_string(), ctx.now)
    }))
}

/// Gives each pending event its offset: its own, or the next of its
/// channel's counter, bumped in one statement for every channel.
pub async fn number(tx: &mut Tx, pending: Vec<Pending>) -> Result<Vec<Event>, StoreError> {
    if pending.is_empty() {
        return Ok(Vec::new());
    }
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for event in pending.iter().filter(|e| e.offset.is_none()) {
        *counts.entry(event.channel.as_str()).or_default() += 1;
    }
    let mut next: HashMap<String, i64> = HashMap::new();
    if !counts.is_empty() {
        let bumps = Rows::of(counts.iter().map(|(channel, count)| (channel.to_string(), *count)));
        let sql = format!(
            "INSERT INTO channel_offsets (channel, last) SELECT column1, column2 FROM {} WHERE true \
             ON CONFLICT (channel) DO UPDATE SET last = channel_offsets.last + excluded.last RETURNING channel, last",
            bumps.relation(tx.backend(), 1)
        );
        for row in tx.sql_built(sql).bind_rows(bumps).fetch_all().await? {
            let channel: String = row.get("channel")?;
            let last: i64 = row.get("last")?;
            let first = last - counts.get(channel.as_str()).copied().unwrap_or(1) + 1;
            next.insert(channel, first);
        }
    }
    let mut events = Vec::with_capacity(pending.len());
    for event in pending {
        let offset = match event.offset {
            Some(offset) => offset,
            None => {
                let slot = next
                    .get_mut(&event.channel)
                    .ok_or_else(|| StoreError::Corrupt("no offset for a channel".into()))?;
                *slot += 1;
                *slot - 1
            }
        };
        events.push(Event { channel: event.channel, offset, name: event.name, data: event.data });
    }
    Ok(events)
}

/// A `balance_changed` event for the own channel of each member named who
/// has an account, with their wallet in the pool as it stands inside `tx`.
pub async fn balance_changes(tx: &mut Tx, pool_id: Uuid, members: &[Uuid]) -> Result<Vec<Pending>, StoreError> {
    let wanted: Vec<(Uuid, Uuid)> = members.iter().map(|member| (pool_id, *member)).collect();
    balance_changes_in(tx, &wanted).await
}

/// The same for `(pool, member)` pairs of any pools, read in one statement.
pub async fn balance_changes_in(tx: &mut Tx, wanted: &[(Uuid, Uuid)]) -> Result<Vec<Pending>, StoreError> {
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let pairs = Rows::of(wanted.iter().copied());
    let sql = format!(
        concat!(
            "SELECT m.user_id, a.guild_id, a.pool_id, a.member_id, a.balance, ",
            held_sql!(),
            " FROM {} JOIN accounts a ON a.pool_id = v.column1 AND a.member_id = v.column2 \
             JOIN members m ON m.id = a.member_id ORDER BY a.pool_id, a.member_id"
        ),
        pairs.relation(tx.backend(), 1)
    );
    let statement = tx.sql_built(sql).bind_rows(pairs);
    let mut pending = Vec::with_capacity(wanted.len());
    for row in statement.fetch_all().await? {
        let (balance, held) = (Points::from_stored(row.get("balance")?), Points::from_stored(row.get("held")?));
        let data = balance_changed(row.get("guild_id")?, row.get("pool_id")?, row.get("member_id")?, balance, held)
            .ok_or_else(|| StoreError::Corrupt("available overflows".into()))?;
        // A member without an account has no channel of their own to hear it on.
        if let Some(user_id) = row.get::<Option<Uuid>>("user_id")? {
            pending.push(Pending::next(user_channel(user_id), EventName::BalanceChanged, data));
        }
    }
    Ok(pending)
}

fn event_of(row: &Row) -> Result<Event, StoreError> {
    let name: String = row.get("name")?;
    let data: String = row.get("data")?;
    Ok(Event {
        channel: row.get("channel")?,
        offset: row.get("offset")?,
        name: EventName::parse(&name).ok_or_else(|| StoreError::Corrupt(format!("event {name:?}")))?,
        data: serde_json::from_str(&data).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    })
}

impl Store {
    /// Up to `limit` events of `channel` after `offset`, in order.
    pub async fn events_since(&self, channel: &str, offset: i64, limit: u32) -> Result<Vec<Event>, StoreError> {
        self.db.sql("SELECT channel, \"offset\", name, data FROM events WHERE channel = $1 AND \"offset\" > $2 ORDER BY \"offset\" LIMIT $3")
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
    pub async fn event_bounds(&self, channel: &str) -> Result<Option<(i64, i64)>, StoreError> {
        let row = self
            .db
            .sql("SELECT MIN(\"offset\") AS first, MAX(\"offset\") AS last FROM events WHERE channel = $1")
            .bind(channel)
            .fetch_one()
            .await?;
        let (first, last): (Option<i64>, Option<i64>) = (row.get("first")?, row.get("last")?);
        Ok(first.zip(last))
    }
}
