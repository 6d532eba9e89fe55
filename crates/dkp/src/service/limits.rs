//! Rate limits: bids per member per second, WebSocket connects per address
//! per second, and failed logins. Each is a count per window of the injected
//! clock. With Redis the count is shared, so the limit holds however the
//! balancer spreads a client over instances; without it (or while Redis is
//! away) each process counts alone, which is exact for a single node and
//! fails open towards `N x limit` across N instances, never towards refusing
//! honest clients.
//!
//! Failed logins are counted per 15 minutes three ways: for one account from
//! one address (10), from one address to any account (50), and for one
//! account from anywhere (500). The first two stop one guesser; the third,
//! high enough that the owner of an account is not locked out by a single
//! guesser elsewhere, bounds a guessing spread over many addresses. Accounts
//! are counted by the name typed, whether or not it exists, so an unknown
//! name and a wrong password are answered alike. A login is checked against
//! the counts before its password is, and only one password check runs at a
//! time per address in a process: a burst from one address waits its turn
//! (and is refused once past the limit) instead of taking every hasher.
//!
//! A refusal is 429 `rate_limited` with `Retry-After`; it changes nothing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::OwnedMutexGuard;

use super::Error;
use crate::clock::Clock;
use crate::shared::Shared;

/// What is limited.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Limited {
    Bid,
    Connect,
    /// Failed logins to one account from one address.
    LoginAccountAtAddress,
    /// Failed logins from one address, to any account.
    LoginAddress,
    /// Failed logins to one account, from any address.
    LoginAccount,
}

impl Limited {
    fn as_str(self) -> &'static str {
        match self {
            Limited::Bid => "bid",
            Limited::Connect => "connect",
            Limited::LoginAccountAtAddress => "login_account_address",
            Limited::LoginAddress => "login_address",
            Limited::LoginAccount => "login_account",
        }
    }
}

/// The window of the per-second limits.
const SECOND_MS: u64 = 1000;
/// The window failed logins are counted in.
pub const LOGIN_WINDOW_MS: u64 = 15 * 60 * 1000;
/// Failed logins allowed per window: to one account from one address, from
/// one address, to one account.
pub const LOGIN_LIMITS: [u32; 3] = [10, 50, 500];
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
    /// One password check at a time per address.
    turns: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Limits {
    /// Limits of `per_second` each; 0 turns one off.
    pub fn new(shared: Option<Shared>, clock: Arc<dyn Clock>, bids_per_s: u32, connects_per_s: u32) -> Limits {
        let script = redis::Script::new(COUNT);
        Limits { shared, clock, script, bids_per_s, connects_per_s, local: Mutex::default(), turns: Mutex::default() }
    }

    /// How many of `what` a window allows (0: no limit), and its length.
    fn rule(&self, what: Limited) -> (u32, u64) {
        match what {
            Limited::Bid => (self.bids_per_s, SECOND_MS),
            Limited::Connect => (self.connects_per_s, SECOND_MS),
            Limited::LoginAccountAtAddress => (LOGIN_LIMITS[0], LOGIN_WINDOW_MS),
            Limited::LoginAddress => (LOGIN_LIMITS[1], LOGIN_WINDOW_MS),
            Limited::LoginAccount => (LOGIN_LIMITS[2], LOGIN_WINDOW_MS),
        }
    }

    /// Admits one more `what` by `who` in this window, or refuses it.
    pub async fn admit(&self, what: Limited, who: &str) -> Result<(), Error> {
        let (limit, _) = self.rule(what);
        if limit == 0 {
            return Ok(());
        }
        if self.count(what, who, true).await > u64::from(limit) {
            return Err(self.refusal(what));
        }
        Ok(())
    }

    /// Refuses a login while its account at its address, its address or its
    /// account has failed too often in this window. `account` is the name as
    /// typed, folded.
    pub async fn admit_login(&self, account: &str, address: &str) -> Result<(), Error> {
        for (what, who) in login_counters(account, address) {
            let (limit, _) = self.rule(what);
            if self.count(what, &who, false).await >= u64::from(limit) {
                return Err(self.refusal(what));
            }
        }
        Ok(())
    }

    /// Counts a failed login.
    pub async fn count_failed_login(&self, account: &str, address: &str) {
        for (what, who) in login_counters(account, address) {
            self.count(what, &who, true).await;
        }
    }

    /// Waits for the turn of `address` to have a password checked.
    pub async fn login_turn(&self, address: &str) -> OwnedMutexGuard<()> {
        let lane = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            if turns.len() >= SWEEP_AT && turns.len().is_power_of_two() {
                // Lanes nobody holds or waits for.
                turns.retain(|_, lane| Arc::strong_count(lane) > 1);
            }
            turns.entry(address.to_owned()).or_default().clone()
        };
        lane.lock_owned().await
    }

    /// A refusal of `what`, counted, with the seconds until its window ends.
    fn refusal(&self, what: Limited) -> Error {
        metrics::counter!("dkp_rate_limited_total", "what" => what.as_str()).increment(1);
        let (_, window_ms) = self.rule(what);
        let left_ms = window_ms - self.clock.now_ms() % window_ms;
        Error::RateLimited { retry_after_s: left_ms.div_ceil(1000).max(1) }
    }

    /// The count of `what` by `who` in this window, after adding one if `add`.
    async fn count(&self, what: Limited, who: &str, add: bool) -> u64 {
        let (_, window_ms) = self.rule(what);
        let window = self.clock.now_ms() / window_ms;
        match self.count_shared(what, who, window, add).await {
            Some(count) => count,
            None => self.count_local(what, who, window, add),
        }
    }

    async fn count_shared(&self, what: Limited, who: &str, window: u64, add: bool) -> Option<u64> {
        let shared = self.shared.as_ref()?;
        let key = format!("dkp:rl:{}:{who}:{window}", what.as_str());
        if !add {
            let count: Option<u64> = shared.query("rate_limit", redis::cmd("GET").arg(&key)).await?;
            return Some(count.unwrap_or(0));
        }
        let mut call = self.script.prepare_invoke();
        call.key(key).arg(self.rule(what).1 * 2);
        shared.run::<u64>("rate_limit", call).await
    }

    fn count_local(&self, what: Limited, who: &str, window: u64, add: bool) -> u64 {
        let mut counts = self.local.lock().unwrap_or_else(|e| e.into_inner());
        if counts.len() >= SWEEP_AT && counts.len().is_power_of_two() {
            let now_ms = self.clock.now_ms();
            counts.retain(|(what, _), (seen, _)| *seen == now_ms / self.rule(*what).1);
        }
        let entry = counts.entry((what, who.to_owned())).or_insert((window, 0));
        if entry.0 != window {
            *entry = (window, 0);
        }
        if add {
            entry.1 = entry.1.saturating_add(1);
        }
        u64::from(entry.1)
    }
}

/// The counters a login of `account` from `address` counts in.
fn login_counters(account: &str, address: &str) -> [(Limited, String); 3] {
    [
        (Limited::LoginAccountAtAddress, format!("{address}/{account}")),
        (Limited::LoginAddress, address.to_owned()),
        (Limited::LoginAccount, account.to_owned()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_limit_refuses_past_it_within_a_window_and_zero_turns_it_off() {
        let clock = Arc::new(crate::clock::TestClock::new());
        let limits = Limits::new(None, clock.clone(), 2, 0);
        let window = 10;
        assert_eq!(limits.count_local(Limited::Bid, "a", window, true), 1);
        assert_eq!(limits.count_local(Limited::Bid, "a", window, true), 2);
        assert_eq!(limits.count_local(Limited::Bid, "b", window, true), 1, "counted per member");
        assert_eq!(limits.count_local(Limited::Bid, "a", window + 1, true), 1, "a new window starts over");
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

    #[tokio::test]
    async fn failed_logins_refuse_the_account_at_the_address_until_the_window_ends() {
        let clock = Arc::new(crate::clock::TestClock::new());
        let limits = Limits::new(None, clock.clone(), 0, 0);
        for _ in 0..LOGIN_LIMITS[0] {
            limits.admit_login("ana", "10.0.0.1").await.expect("not yet");
            limits.count_failed_login("ana", "10.0.0.1").await;
        }
        let Err(Error::RateLimited { retry_after_s }) = limits.admit_login("ana", "10.0.0.1").await else {
            panic!("the eleventh is refused")
        };
        assert!((1..=900).contains(&retry_after_s), "{retry_after_s}");
        assert!(limits.admit_login("ana", "10.0.0.2").await.is_ok(), "from elsewhere");
        assert!(limits.admit_login("bob", "10.0.0.1").await.is_ok(), "another account");
        clock.advance(std::time::Duration::from_millis(LOGIN_WINDOW_MS));
        assert!(limits.admit_login("ana", "10.0.0.1").await.is_ok(), "a new window");
    }
}
