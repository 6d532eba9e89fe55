//! Lots and bids as stored and as decided.

use dkp_core::Points;
use dkp_core::auction::{BidError, Mode, Status, Terms};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{IdempotencyClaim, Ts, points_text};

/// A lot as stored, secrets included: `http::wire` decides what a client sees.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LotView {
    pub id: Uuid,
    pub guild_id: Uuid,
    pub pool_id: Uuid,
    pub item_name: String,
    pub game_item_id: Option<String>,
    #[serde(with = "mode_text")]
    pub mode: Mode,
    #[serde(with = "status_text")]
    pub status: Status,
    #[serde(with = "points_text")]
    pub min_bid: Points,
    #[serde(with = "points_text")]
    pub increment: Points,
    pub anti_snipe_s: i32,
    pub extend_s: i32,
    pub ends_at: Ts,
    pub created_at: Ts,
    pub created_by: Uuid,
    pub seq: i64,
    pub bid_count: i64,
    #[serde(with = "points_text::option")]
    pub high_bid: Option<Points>,
    pub leader_member_id: Option<Uuid>,
    pub winner_member_id: Option<Uuid>,
    #[serde(with = "points_text::option")]
    pub price: Option<Points>,
    pub settlement_entry_id: Option<Uuid>,
    pub cancel_reason: Option<String>,
    /// The object key of the item's icon, if it has one.
    pub icon_key: Option<String>,
    /// The raid the item dropped in (kept lots and events from before raids have none).
    #[serde(default)]
    pub raid_id: Option<Uuid>,
}

impl LotView {
    /// Whether amounts and the leader are secret: a sealed lot not closed (a
    /// cancelled one never reveals them).
    pub fn is_secret(&self) -> bool {
        self.mode.is_sealed() && self.status != Status::Closed
    }

    /// The lot without what its secrecy hides, as kept where others may read it.
    pub fn without_secrets(&self) -> LotView {
        let mut lot = self.clone();
        if lot.is_secret() {
            lot.high_bid = None;
            lot.leader_member_id = None;
        }
        lot
    }

    /// The lowest bid that can win on the lot as it stands: the high bid plus
    /// the increment on an open lot, else `min_bid` (a sealed lot shows no
    /// high bid).
    pub fn floor(&self) -> Result<Points, dkp_core::AmountError> {
        match (self.mode, self.high_bid) {
            (Mode::Open, Some(high)) => high.checked_add(self.increment),
            _ => Ok(self.min_bid),
        }
    }
}

text_form!(mode_text, dkp_core::auction::Mode, "lot mode");
text_form!(status_text, dkp_core::auction::Status, "lot status");

/// A lot to open.
pub struct NewLot {
    pub guild_id: Uuid,
    pub guild_slug: String,
    pub pool_id: Uuid,
    pub item_name: String,
    pub game_item_id: Option<String>,
    pub terms: Terms,
    pub anti_snipe_s: i32,
    pub extend_s: i32,
    pub duration_s: i64,
    pub created_by: Uuid,
    pub raid_id: Option<Uuid>,
}

impl NewLot {
    /// The lot as it opens, with `id`, at `now`: its first event is its `seq` 1.
    pub fn opened(&self, id: Uuid, now: Ts) -> LotView {
        LotView {
            id,
            guild_id: self.guild_id,
            pool_id: self.pool_id,
            item_name: self.item_name.clone(),
            game_item_id: self.game_item_id.clone(),
            mode: self.terms.mode,
            status: Status::Open,
            min_bid: self.terms.min_bid,
            increment: self.terms.increment,
            anti_snipe_s: self.anti_snipe_s,
            extend_s: self.extend_s,
            ends_at: Ts(now.0 + time::Duration::seconds(self.duration_s)),
            created_at: now,
            created_by: self.created_by,
            seq: 1,
            bid_count: 0,
            high_bid: None,
            leader_member_id: None,
            winner_member_id: None,
            price: None,
            settlement_entry_id: None,
            cancel_reason: None,
            icon_key: None,
            raid_id: self.raid_id,
        }
    }
}

/// How a lot ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// The closing job: only once `ends_at` has passed.
    Due,
    /// An officer closes it now.
    Now,
    Cancel,
}

/// One bid waiting in a lot's queue.
#[derive(Clone, Debug)]
pub struct BidCommand {
    pub member_id: Uuid,
    pub amount: Points,
    pub idempotency: Option<IdempotencyClaim>,
}

/// An accepted bid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BidView {
    pub id: Uuid,
    pub seq: i64,
    #[serde(with = "points_text")]
    pub amount: Points,
    pub created_at: Ts,
}

/// What became of one bid of a batch.
#[derive(Debug)]
pub enum BidOutcome {
    Accepted(BidView),
    Rejected(BidError),
    /// Seen before under its idempotency key: its first answer.
    Replay(super::Answer),
    KeyReused,
}

/// What a batch did to one lot: each bid's outcome, and the lot after.
#[derive(Debug)]
pub struct BidBatch {
    pub outcomes: Vec<BidOutcome>,
    pub lot: LotView,
}
