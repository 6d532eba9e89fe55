//! Rate limits: bids per member per second and WebSocket connects per
//! address per second. Each is a count per one-second window. With Redis the
//! count is shared, so the limit holds however the balancer spreads a client
//! over instances; without it (or while Redis is away) each process counts
//! alone, which is exact for a single node and fails open towards `N x limit`
//! across N instances, never towards refusing honest clients.
//!
//! A refusal is 429 `rate_limited` with `Retry-After`; it changes nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::Error;
use crate::clock::Clock;
use crate::shared::Shared;

/// What is limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limited {
    Bid,
    Connect,
}

impl Limited {
    fn as_str(self) -> &'static str {
        match self {
            Limited::Bid => "bid",
            Limited::Connect => "connect",
        }
    }
}

/// Counts within one window, then forgets it.
const WINDOW_MS: u64 = 1000;
/// From this many counters on, a count sweeps out the past windows.
const SWEEP_AT: usize = 4096;

/// The increment of a window's counter; the counter expires with the window.
const COUNT: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n";

pub struct Limits {
    shared: Option<Shared>,
    clock: Arc<dyn Clock>,
    script: redis::Script,
    bids_per_s: u32,
    connects_per_s: u32,
    local: Mutex<HashMap<(Limited, String), (u64, u32)>>,
}

impl Limits {
    /// Limits of `per_second` each; 0 turns one off.
    pub fn new(shared: Option<Shared>, clock: Arc<dyn Clock>, bids_per_s: u32, connects_per_s: u32) -> Limits {
        let script = redis::Script::new(COUNT);
        Limits { shared, clock, script, bids_per_s, connects_per_s, local: Mutex::default() }
    }

    /// Admits one more `what` by `who` in this second, or refuses it.
    pub async fn admit(&self, what: Limited, who: &str) -> Result<(), Error> {
        let limit = match what {
            Limited::Bid => self.bids_per_s,
            Limited::Connect => self.connects_per_s,
        };
        if limit == 0 {
            return Ok(());
        }
        let window = self.clock.now_ms() / WINDOW_MS;
        let count = match self.count_shared(what, who, window).await {
            Some(count) => count,
            None => self.count_local(what, who, window),
        };
        if count > u64::from(limit) {
            metrics::counter!("dkp_rate_limited_total", "what" => what.as_str()).increment(1);
            return Err(Error::RateLimited { retry_after_s: 1 });
        }
        Ok(())
    }

    async fn count_shared(&self, what: Limited, who: &str, window: u64) -> Option<u64> {
        let shared = self.shared.as_ref()?;
        let key = format!("dkp:rl:{}:{who}:{window}", what.as_str());
        let mut call = self.script.prepare_invoke();
        call.key(key).arg(WINDOW_MS * 2);
        shared.run::<u64>("rate_limit", call).await
    }

    fn count_local(&self, what: Limited, who: &str, window: u64) -> u64 {
        let mut counts = self.local.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() >= SWEEP_AT && counts.len().is_power_of_two() {
            counts.retain(|_, (seen, _)| *seen == window);
        }
        let entry = counts.entry((what, who.to_owned())).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        u64::from(entry.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_limit_refuses_past_it_within_a_window_and_zero_turns_it_off() {
        let clock = Arc::new(crate::clock::TestClock::new());
        let limits = Limits::new(None, clock.clone(), 2, 0);
        let window = 10;
        assert_eq!(limits.count_local(Limited::Bid, "a", window), 1);
        assert_eq!(limits.count_local(Limited::Bid, "a", window), 2);
        assert_eq!(limits.count_local(Limited::Bid, "b", window), 1, "counted per member");
        assert_eq!(limits.count_local(Limited::Bid, "a", window + 1), 1, "a new window starts over");
        for _ in 0..100 {
            limits.admit(Limited::Connect, "127.0.0.1").await.expect("off");
        }
        // The clock stands still: one window, two bids allowed in it.
        let mut refused = 0;
        for _ in 0..5 {
            if limits.admit(Limited::Bid, "c").await.is_err() {
                refused += 1;
            }
        }
        assert_eq!(refused, 3, "five bids in one window, two allowed");
        clock.advance(std::time::Duration::from_secs(1));
        assert!(limits.admit(Limited::Bid, "c").await.is_ok(), "the next window admits again");
    }
}
