//! The time source. Passed in, so rules that depend on time are testable.

use time::OffsetDateTime;

use crate::store::Ts;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Ts;
}

/// The machine's clock, cut to microseconds (what every store keeps).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Ts {
        let now = OffsetDateTime::now_utc();
        Ts(now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000).unwrap_or(now))
    }
}
