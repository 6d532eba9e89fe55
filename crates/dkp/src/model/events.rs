//! Events on the real-time channels, as the event log keeps them. Each is
//! written in the transaction of the change it reports, with an offset that
//! strictly increases per channel. The data is the event's record; a lot in
//! it is kept without its secrets, and `http::wire` renders it for clients.

use dkp_core::Points;
use serde_json::{Value, json};
use uuid::Uuid;

use super::{LotView, Ts};

/// The events the service writes, each with its one name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventName {
    LotOpened,
    BidPlaced,
    LotExtended,
    LotClosed,
    LotCancelled,
    BalanceChanged,
}

impl EventName {
    const ALL: [EventName; 6] = [
        EventName::LotOpened,
        EventName::BidPlaced,
        EventName::LotExtended,
        EventName::LotClosed,
        EventName::LotCancelled,
        EventName::BalanceChanged,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventName::LotOpened => "lot_opened",
            EventName::BidPlaced => "bid_placed",
            EventName::LotExtended => "lot_extended",
            EventName::LotClosed => "lot_closed",
            EventName::LotCancelled => "lot_cancelled",
            EventName::BalanceChanged => "balance_changed",
        }
    }

    pub fn parse(text: &str) -> Option<EventName> {
        EventName::ALL.into_iter().find(|name| name.as_str() == text)
    }
}

/// An event on a real-time channel, as written to the event log.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub channel: String,
    pub offset: i64,
    pub name: EventName,
    pub data: Value,
}

impl Event {
    /// The data of an event about a whole lot (opened, closed, cancelled).
    pub fn lot_data(lot: &LotView) -> Value {
        json!({ "lot": lot.without_secrets() })
    }

    /// The data of an accepted bid: the bid's amount, bidder and id only on
    /// an open lot.
    pub fn bid_data(lot_id: Uuid, seq: i64, bid_count: i64, ends_at: Ts, open: Option<(Points, Uuid, Uuid)>) -> Value {
        let mut data = json!({"lot_id": lot_id, "seq": seq, "bid_count": bid_count, "ends_at": ends_at});
        if let Some((amount, member_id, bid_id)) = open {
            data["amount"] = json!(amount.to_string());
            data["member_id"] = json!(member_id);
            data["bid_id"] = json!(bid_id);
        }
        data
    }

    /// The data of an anti-snipe extension.
    pub fn extension_data(lot_id: Uuid, seq: i64, ends_at: Ts) -> Value {
        json!({"lot_id": lot_id, "seq": seq, "ends_at": ends_at})
    }
}

/// The data of a member's new wallet in a pool.
pub fn balance_changed(guild_id: Uuid, pool_id: Uuid, member_id: Uuid, balance: Points, held: Points) -> Option<Value> {
    let available = balance.checked_sub(held).ok()?;
    Some(json!({
        "guild_id": guild_id, "pool_id": pool_id, "member_id": member_id,
        "balance": balance.to_string(), "held": held.to_string(), "available": available.to_string(),
    }))
}

/// The channel of a lot's events; its offsets are the lot's `seq`.
pub fn lot_channel(lot_id: Uuid) -> String {
    format!("lot:{lot_id}")
}

/// The channel of a guild's events.
pub fn guild_channel(slug: &str) -> String {
    format!("guild:{slug}")
}

/// A user's own channel, which they subscribe to as `me`.
pub fn user_channel(user_id: Uuid) -> String {
    format!("user:{user_id}")
}
