//! What the store reads and writes, in the shapes the API shows: points as
//! strings with two decimals, times as RFC 3339 in UTC.

use dkp_core::{AccountRef, Points, Role};
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use super::Ts;
use crate::blobs::PublicUrls;

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.0.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }
}

/// Serializes points as the API shows them: `"12.50"`.
pub fn points_text<S: Serializer>(points: &Points, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(points)
}

fn role_text<S: Serializer>(role: &Role, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(role.as_str())
}

#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
}

pub struct NewUser {
    pub id: Uuid,
    pub username: String,
    pub username_folded: String,
    pub display_name: String,
    pub password_hash: String,
}

pub struct NewSession {
    pub token_hash: Vec<u8>,
    pub user_id: Uuid,
    pub expires_at: Ts,
}

#[derive(Clone, Debug, Serialize)]
pub struct Guild {
    pub id: Uuid,
    pub slug: String,
    pub name: String,
    /// The object key of the guild's logo; the API shows its URL.
    #[serde(skip)]
    pub logo_key: Option<String>,
}

impl Guild {
    /// The guild as the API shows it, with `logo_url` (null without a logo).
    pub fn to_json(&self, urls: &PublicUrls) -> serde_json::Value {
        serde_json::json!({
            "id": self.id,
            "slug": self.slug,
            "name": self.name,
            "logo_url": self.logo_key.as_deref().map(|key| urls.of(key)),
        })
    }
}

pub struct NewGuild {
    pub slug: String,
    pub name: String,
}

/// A user's place in one guild.
#[derive(Clone, Debug)]
pub struct Membership {
    pub guild: Guild,
    pub member_id: Uuid,
    pub role: Role,
}

#[derive(Clone, Debug, Serialize)]
pub struct Member {
    pub id: Uuid,
    pub user_id: Uuid,
    pub username: String,
    #[serde(serialize_with = "role_text")]
    pub role: Role,
}

#[derive(Clone, Debug, Serialize)]
pub struct Pool {
    pub id: Uuid,
    pub name: String,
    pub allow_negative: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Standing {
    pub member_id: Uuid,
    pub username: String,
    #[serde(serialize_with = "points_text")]
    pub balance: Points,
    #[serde(serialize_with = "points_text")]
    pub held: Points,
    #[serde(serialize_with = "points_text")]
    pub available: Points,
    /// The part of `held` that backs sealed bids: secret to everyone else.
    #[serde(skip)]
    pub sealed_held: Points,
}

impl Standing {
    /// The row as another member may see it: without the holds of sealed
    /// bids, which would tell the amounts bid.
    pub fn seen_by_others(mut self) -> Standing {
        self.held = self.held.checked_sub(self.sealed_held).unwrap_or(self.held);
        self.available = self.balance.checked_sub(self.held).unwrap_or(self.available);
        self.sealed_held = Points::ZERO;
        self
    }
}

/// One immutable movement of points, with postings that sum to zero.
#[derive(Clone, Debug, Serialize)]
pub struct Entry {
    pub id: Uuid,
    pub pool_id: Uuid,
    pub kind: &'static str,
    pub reason: String,
    pub created_at: Ts,
    /// The member who made the entry.
    pub created_by: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reverses: Option<Uuid>,
    pub postings: Vec<EntryPosting>,
}

impl Entry {
    /// The members whose balance the entry moves.
    pub fn members(&self) -> Vec<Uuid> {
        let mut members: Vec<Uuid> = self
            .postings
            .iter()
            .filter_map(|p| match p.account {
                AccountRef::Member(id) => Some(id),
                AccountRef::System(_) => None,
            })
            .collect();
        members.sort_unstable();
        members.dedup();
        members
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryPosting {
    pub account: AccountRef<Uuid>,
    pub amount: Points,
}

impl Serialize for EntryPosting {
    /// `{"member_id": …, "amount": …}` or `{"account": "issued", "amount": …}`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(2))?;
        match &self.account {
            AccountRef::Member(id) => map.serialize_entry("member_id", id)?,
            AccountRef::System(system) => map.serialize_entry("account", system.as_str())?,
        }
        map.serialize_entry("amount", &self.amount.to_string())?;
        map.end()
    }
}

/// The kinds of entry and their names in the API.
pub const ENTRY_KINDS: [&str; 6] = ["award", "adjustment", "transfer", "reversal", "settlement", "decay"];

/// A request to move points, checked against the wallets inside the transaction.
#[derive(Clone, Debug)]
pub enum EntryRequest {
    Award {
        member_ids: Vec<Uuid>,
        amount: Points,
    },
    Adjustment {
        member_id: Uuid,
        amount: Points,
    },
    Transfer {
        from: Uuid,
        to: Uuid,
        amount: Points,
    },
    Reversal {
        entry_id: Uuid,
    },
    /// `percent` (in hundredths of a percent) of every member's balance.
    Decay {
        percent: Points,
    },
}

impl EntryRequest {
    pub fn kind(&self) -> &'static str {
        match self {
            EntryRequest::Award { .. } => ENTRY_KINDS[0],
            EntryRequest::Adjustment { .. } => ENTRY_KINDS[1],
            EntryRequest::Transfer { .. } => ENTRY_KINDS[2],
            EntryRequest::Reversal { .. } => ENTRY_KINDS[3],
            EntryRequest::Decay { .. } => ENTRY_KINDS[5],
        }
    }
}

/// An idempotency key, scoped to its caller, with a fingerprint of the request.
#[derive(Clone, Debug)]
pub struct IdempotencyClaim {
    pub user_id: Uuid,
    pub key: String,
    pub fingerprint: Vec<u8>,
}

/// Everything needed to write one entry.
pub struct EntryCommand {
    pub guild_id: Uuid,
    pub pool_id: Uuid,
    /// The member making the entry.
    pub actor_member: Uuid,
    pub request: EntryRequest,
    pub reason: String,
    pub idempotency: Option<IdempotencyClaim>,
    /// The response status and body to store under the idempotency key.
    pub respond: fn(&Entry) -> (u16, String),
}

/// What `record_entry` did.
#[derive(Debug)]
pub enum Recorded {
    /// A new entry, and the events its commit published.
    Fresh(Entry, Vec<Event>),
    /// The request was seen before under the same key: its stored answer.
    Replay { status: u16, body: String },
}

/// One page of a list, newest first.
#[derive(Clone, Copy, Debug)]
pub struct PageRequest {
    pub limit: u32,
    /// Items strictly older than this id.
    pub before: Option<Uuid>,
}

#[derive(Debug)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts, `None` at the end.
    pub next: Option<Uuid>,
}

/// Cuts a list read with one row too many into a page and its continuation.
pub fn paginate<T>(mut items: Vec<T>, page: PageRequest, id: impl Fn(&T) -> Uuid) -> Page<T> {
    let limit = page.limit as usize;
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more { items.last().map(id) } else { None };
    Page { items, next }
}

#[derive(Clone, Debug, Serialize)]
pub struct AuditRecord {
    pub id: Uuid,
    pub actor_id: Option<Uuid>,
    pub action: String,
    pub target_type: String,
    pub target_id: String,
    pub request_id: Option<String>,
    pub created_at: Ts,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// An audit row to write beside a change.
pub struct AuditWrite<'a> {
    pub guild_id: Option<Uuid>,
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub ctx: &'a super::Ctx,
}

impl<'a> AuditWrite<'a> {
    pub fn new(
        ctx: &'a super::Ctx,
        guild_id: Option<Uuid>,
        action: &'static str,
        target_type: &'static str,
        target_id: impl ToString,
    ) -> Self {
        AuditWrite { guild_id, action, target_type, target_id: target_id.to_string(), before: None, after: None, ctx }
    }

    pub fn before(mut self, value: impl Serialize) -> Self {
        self.before = serde_json::to_value(value).ok();
        self
    }

    pub fn after(mut self, value: impl Serialize) -> Self {
        self.after = serde_json::to_value(value).ok();
        self
    }
}

/// An event on a real-time channel, as written to the event log.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub channel: String,
    pub offset: i64,
    pub name: &'static str,
    pub data: serde_json::Value,
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

/// A lot as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct LotView {
    pub id: Uuid,
    pub guild_id: Uuid,
    pub pool_id: Uuid,
    pub item_name: String,
    pub game_item_id: Option<String>,
    pub mode: dkp_core::auction::Mode,
    pub status: dkp_core::auction::Status,
    pub min_bid: Points,
    pub increment: Points,
    pub anti_snipe_s: i32,
    pub extend_s: i32,
    pub ends_at: Ts,
    pub created_at: Ts,
    pub created_by: Uuid,
    pub seq: i64,
    pub bid_count: i64,
    pub high_bid: Option<Points>,
    pub leader_member_id: Option<Uuid>,
    pub winner_member_id: Option<Uuid>,
    pub price: Option<Points>,
    pub settlement_entry_id: Option<Uuid>,
    pub cancel_reason: Option<String>,
    /// The object key of the item's icon; the API shows its URL.
    pub icon_key: Option<String>,
}

impl LotView {
    /// Whether amounts and the leader are secret: a sealed lot not closed (a
    /// cancelled one never reveals them).
    pub fn is_secret(&self) -> bool {
        self.mode.is_sealed() && self.status != dkp_core::auction::Status::Closed
    }

    /// The lot as everyone in the guild may see it: in sealed modes the high
    /// bid and the leader stay hidden until the close. `icon_url` is null
    /// without an icon.
    pub fn to_json(&self, urls: &PublicUrls) -> serde_json::Value {
        let mut lot = serde_json::json!({
            "id": self.id,
            "pool_id": self.pool_id,
            "item": {"name": self.item_name, "game_item_id": self.game_item_id},
            "mode": self.mode.as_str(),
            "status": self.status.as_str(),
            "min_bid": self.min_bid.to_string(),
            "increment": self.increment.to_string(),
            "anti_snipe_s": self.anti_snipe_s,
            "extend_s": self.extend_s,
            "ends_at": self.ends_at,
            "created_at": self.created_at,
            "bid_count": self.bid_count,
            "seq": self.seq,
            "icon_url": self.icon_key.as_deref().map(|key| urls.of(key)),
        });
        let fields = [
            ("high_bid", self.high_bid.filter(|_| !self.is_secret()).map(|p| serde_json::json!(p.to_string()))),
            ("leader_member_id", self.leader_member_id.filter(|_| !self.is_secret()).map(|id| serde_json::json!(id))),
            ("winner_member_id", self.winner_member_id.map(|id| serde_json::json!(id))),
            ("price", self.price.map(|p| serde_json::json!(p.to_string()))),
            ("settlement_entry_id", self.settlement_entry_id.map(|id| serde_json::json!(id))),
            ("cancel_reason", self.cancel_reason.clone().map(serde_json::Value::String)),
        ];
        for (name, value) in fields {
            if let Some(value) = value {
                lot[name] = value;
            }
        }
        lot
    }
}

/// A lot to open.
pub struct NewLot {
    pub guild_id: Uuid,
    pub guild_slug: String,
    pub pool_id: Uuid,
    pub item_name: String,
    pub game_item_id: Option<String>,
    pub terms: dkp_core::auction::Terms,
    pub anti_snipe_s: i32,
    pub extend_s: i32,
    pub duration_s: i64,
    pub created_by: Uuid,
}

/// One bid waiting in a lot's queue.
#[derive(Clone, Debug)]
pub struct BidCommand {
    pub member_id: Uuid,
    pub amount: Points,
    pub idempotency: Option<IdempotencyClaim>,
    /// The status and body of a refusal, stored under the idempotency key.
    pub refusal: fn(&dkp_core::auction::BidError) -> (u16, String),
}

/// An accepted bid.
#[derive(Clone, Debug, Serialize)]
pub struct BidView {
    pub id: Uuid,
    pub seq: i64,
    #[serde(serialize_with = "points_text")]
    pub amount: Points,
    pub created_at: Ts,
}

/// What became of one bid of a batch.
#[derive(Debug)]
pub enum BidOutcome {
    Accepted(BidView),
    Rejected(dkp_core::auction::BidError),
    /// Seen before under its idempotency key: the stored answer.
    Replay {
        status: u16,
        body: String,
    },
    KeyReused,
}

/// The result of one batch of bids on a lot, committed together.
#[derive(Debug)]
pub struct BidBatch {
    pub outcomes: Vec<BidOutcome>,
    pub lot: LotView,
    pub events: Vec<Event>,
}

/// The answer to an accepted bid, as the API sends it and idempotency stores it.
pub fn bid_response(bid: &BidView, lot: &LotView, urls: &PublicUrls) -> String {
    serde_json::json!({"bid": bid, "lot": lot.to_json(urls)}).to_string()
}
