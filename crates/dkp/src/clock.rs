//! The time source, passed in wherever a rule depends on time (lot ends,
//! anti-snipe, sessions, job schedules, rate-limit windows, cache horizons),
//! so tests move a `TestClock` instead of sleeping.

use std::sync::Mutex;
use std::time::Duration;

use time::OffsetDateTime;

use crate::model::Ts;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Ts;

    /// Milliseconds since 1970, for windows and horizons that need no more.
    fn now_ms(&self) -> u64 {
        u64::try_from(self.now().micros() / 1_000).unwrap_or(0)
    }
}

/// The machine's clock, cut to microseconds (what every store keeps).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Ts {
        let now = OffsetDateTime::now_utc();
        Ts(now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now))
    }
}

/// A clock that stands still until it is moved: the time of the machine when
/// made, plus whatever the test has moved it by.
pub struct TestClock {
    now: Mutex<Ts>,
}

impl TestClock {
    pub fn new() -> TestClock {
        TestClock { now: Mutex::new(SystemClock.now()) }
    }

    /// Moves the clock on by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now = now.plus(by);
    }
}

impl Default for TestClock {
    fn default() -> TestClock {
        TestClock::new()
    }
}

impl Clock for TestClock {
    fn now(&self) -> Ts {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_test_clock_moves_only_when_told() {
        let clock = TestClock::new();
        let start = clock.now();
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now().micros() - start.micros(), 1_500_000);
        assert_eq!(clock.now_ms() - start.micros() as u64 / 1000, 1500);
    }
}
