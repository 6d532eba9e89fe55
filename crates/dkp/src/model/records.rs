//! Users, guilds, members, pools, standings, ledger entries, lists and the
//! audit log.

use dkp_core::{AccountRef, EntryKind, Points, Role, SystemAccount};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

use super::Ts;
use super::points_text;

text_form!(role_text, dkp_core::Role, "role");

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
    /// The object key of the guild's logo, if it has one (`http::wire` shows its URL).
    #[serde(skip)]
    pub logo_key: Option<String>,
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

/// A place on a guild's roster: a user's, or (`user_id` null) a raider's
/// added by name who has no account yet.
#[derive(Clone, Debug, Serialize)]
pub struct Member {
    pub id: Uuid,
    pub user_id: Option<Uuid>,
    pub username: Option<String>,
    /// The name shown: the username where linked.
    pub name: String,
    #[serde(with = "role_text")]
    pub role: Role,
    /// False once taken off the roster: history and balances stay.
    pub active: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct Pool {
    pub id: Uuid,
    pub name: String,
    pub allow_negative: bool,
    /// The decay that runs by itself, if one is set.
    pub decay_schedule: Option<super::DecaySchedule>,
    /// Whether the price of a lot goes to the present attendees of its raid.
    pub zero_sum: bool,
    /// What its raids pay.
    #[serde(with = "super::rules_text")]
    pub rules: dkp_core::raid::Rules,
}

#[derive(Clone, Debug, Serialize)]
pub struct Standing {
    pub member_id: Uuid,
    pub username: Option<String>,
    pub name: String,
    pub active: bool,
    #[serde(with = "points_text")]
    pub balance: Points,
    #[serde(with = "points_text")]
    pub held: Points,
    #[serde(with = "points_text")]
    pub available: Points,
    /// Points received over the member's life in the pool (see `store::pools`).
    #[serde(with = "points_text")]
    pub earned: Points,
    /// Points paid for loot over the member's life in the pool.
    #[serde(with = "points_text")]
    pub spent: Points,
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub id: Uuid,
    pub pool_id: Uuid,
    #[serde(with = "kind_text")]
    pub kind: EntryKind,
    pub reason: String,
    pub created_at: Ts,
    /// The member who made the entry.
    pub created_by: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reverses: Option<Uuid>,
    /// The raid whose award the entry is (or whose award entry it reverses).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raid_id: Option<Uuid>,
    pub postings: Vec<EntryPosting>,
}

text_form!(kind_text, dkp_core::EntryKind, "entry kind");

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

/// A posting as shown and kept: `{"member_id": …, "amount": …}` or
/// `{"account": "issued", "amount": …}`.
#[derive(Serialize, Deserialize)]
struct PostingForm {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    member_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account: Option<String>,
    #[serde(with = "points_text")]
    amount: Points,
}

impl Serialize for EntryPosting {
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

impl<'de> Deserialize<'de> for EntryPosting {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<EntryPosting, D::Error> {
        let form = PostingForm::deserialize(deserializer)?;
        let account = match (form.member_id, form.account.as_deref().and_then(SystemAccount::parse)) {
            (Some(member), _) => AccountRef::Member(member),
            (None, Some(system)) => AccountRef::System(system),
            (None, None) => return Err(serde::de::Error::custom("a posting without an account")),
        };
        Ok(EntryPosting { account, amount: form.amount })
    }
}

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
    /// About how many postings the request makes: those it names (a
    /// reversal or a decay, whose postings only the ledger knows, as two).
    pub fn postings(&self) -> usize {
        match self {
            EntryRequest::Award { member_ids, .. } => member_ids.len() + 1,
            _ => 2,
        }
    }

    pub fn kind(&self) -> EntryKind {
        match self {
            EntryRequest::Award { .. } => EntryKind::Award,
            EntryRequest::Adjustment { .. } => EntryKind::Adjustment,
            EntryRequest::Transfer { .. } => EntryKind::Transfer,
            EntryRequest::Reversal { .. } => EntryKind::Reversal,
            EntryRequest::Decay { .. } => EntryKind::Decay,
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
}

/// What a point-moving write did.
#[derive(Debug)]
pub enum Recorded<T> {
    /// A new change, and the events its commit published.
    Fresh(T, Vec<super::Event>),
    /// The request was seen before under the same key: its first answer.
    Replay(super::Answer),
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
