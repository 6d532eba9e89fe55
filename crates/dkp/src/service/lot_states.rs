//! The lot states that bids are pre-rejected against: this instance's memory,
//! and with Redis a copy every instance shares, so a bid reaching instance A
//! is measured against the high bid committed through instance B.
//!
//! Every copy is a committed state, and a lot's `seq` only grows while its
//! high bid only rises and an ended lot stays ended; so a copy can only be
//! behind the truth, and a bid it refuses could not have won. The Redis copy
//! is replaced only by a state of higher `seq`, whatever order instances
//! write in.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use dkp_core::Points;
use dkp_core::auction::Status;
use uuid::Uuid;

use crate::clock::Clock;
use crate::model::LotView;
use crate::shared::Shared;

/// From this many lots on, remembering one sweeps out the ended ones.
const SWEEP_AT: usize = 4096;
/// How long Redis keeps the state of an open lot after its last change.
const OPEN_TTL_S: u64 = 24 * 3600;
/// How long Redis keeps the state of an ended lot.
const ENDED_TTL_S: u64 = 3600;

/// Writes `seq status high` unless a state of the same or a higher seq is there.
const KEEP_NEWEST: &str = r"
local known = redis.call('GET', KEYS[1])
if known then
  local seq = tonumber(string.match(known, '^(%d+)'))
  if seq and seq >= tonumber(ARGV[1]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'EX', ARGV[3])
return 1";

/// The part of a lot's state that decides whether a bid is hopeless.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Standing {
    pub seq: i64,
    pub status: Status,
    pub high_bid: Option<Points>,
}

impl Standing {
    fn encode(&self) -> String {
        let high = self.high_bid.map_or("-".to_owned(), |h| h.hundredths().to_string());
        format!("{} {high}", self.status.as_str())
    }

    fn decode(text: &str) -> Option<Standing> {
        let mut parts = text.split(' ');
        let seq = parts.next()?.parse().ok()?;
        let status = Status::parse(parts.next()?)?;
        let high_bid = match parts.next()? {
            "-" => None,
            high => Some(Points::from_hundredths(high.parse().ok()?).ok()?),
        };
        Some(Standing { seq, status, high_bid })
    }
}

pub struct LotStates {
    local: Mutex<HashMap<Uuid, LotView>>,
    clock: Arc<dyn Clock>,
    shared: Option<Shared>,
    script: redis::Script,
}

impl LotStates {
    pub fn new(shared: Option<Shared>, clock: Arc<dyn Clock>) -> LotStates {
        LotStates { local: Mutex::default(), clock, shared, script: redis::Script::new(KEEP_NEWEST) }
    }

    /// This instance's copy of a lot.
    pub fn cached(&self, lot_id: Uuid) -> Option<LotView> {
        self.local.lock().unwrap_or_else(|e| e.into_inner()).get(&lot_id).cloned()
    }

    /// Keeps the newest known state of a lot here, and in Redis for the others.
    pub fn remember(&self, lot: &LotView) {
        {
            let mut local = self.local.lock().unwrap_or_else(|e| e.into_inner());
            if local.len() >= SWEEP_AT && local.len().is_power_of_two() {
                // Lots ended elsewhere (another instance, a worker) are never
                // seen ending here: forget those well past their end.
                let horizon = self.clock.now().0 - time::Duration::minutes(10);
                local.retain(|_, known| known.ends_at.0 > horizon);
            }
            let newer = local.get(&lot.id).is_none_or(|known| known.seq <= lot.seq);
            if lot.status != Status::Open {
                // An ended lot is refused from the database; no need to keep it.
                local.remove(&lot.id);
            } else if newer {
                local.insert(lot.id, lot.clone());
            }
        }
        if let Some(shared) = &self.shared {
            let standing = Standing { seq: lot.seq, status: lot.status, high_bid: lot.high_bid };
            let ttl = if lot.status == Status::Open { OPEN_TTL_S } else { ENDED_TTL_S };
            let (shared, script, lot_id) = (shared.clone(), self.script.clone(), lot.id);
            tokio::spawn(async move {
                let mut call = script.prepare_invoke();
                call.key(key(lot_id)).arg(standing.seq).arg(standing.encode()).arg(ttl);
                shared.run::<i64>("lot_state_write", call).await;
            });
        }
    }

    /// The shared copy of a lot's standing, when Redis holds a newer one than `seq`.
    pub async fn newer_than(&self, lot_id: Uuid, seq: i64) -> Option<Standing> {
        let shared = self.shared.as_ref()?;
        let mut get = redis::cmd("GET");
        get.arg(key(lot_id));
        let text = shared.query::<Option<String>>("lot_state_read", &get).await??;
        Standing::decode(&text).filter(|standing| standing.seq > seq)
    }
}

fn key(lot_id: Uuid) -> String {
    format!("dkp:lot:{}", lot_id.simple())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standing_reads_back_as_written() {
        for standing in [
            Standing { seq: 12, status: Status::Open, high_bid: Some(Points::from_stored(1250)) },
            Standing { seq: 0, status: Status::Cancelled, high_bid: None },
        ] {
            let text = format!("{} {}", standing.seq, standing.encode());
            assert_eq!(Standing::decode(&text), Some(standing));
        }
        assert_eq!(Standing::decode("7 open"), None);
        assert_eq!(Standing::decode("x open -"), None);
    }
}
