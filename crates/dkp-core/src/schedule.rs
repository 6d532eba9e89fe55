//! A pool's decay schedule: a percent of every balance, every N days, from
//! a first run on. Times are microseconds since 1970, passed in.
//!
//! A run is due at its period's time and carried out once. The next period
//! keeps the schedule's rhythm: it is the first of `due + k * every` (k >= 1)
//! that lies after the run, so periods missed while nothing ran (a service
//! down for weeks) are not made up in a burst of decays on its return.

use crate::names::InvalidField;

/// The longest gap between two runs a schedule may have: ten years.
pub const MAX_EVERY_DAYS: i64 = 3650;

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Days between runs, as asked for: a whole number from 1 to `MAX_EVERY_DAYS`.
pub fn every_days(days: i64) -> Result<u32, InvalidField> {
    if !(1..=MAX_EVERY_DAYS).contains(&days) {
        return Err(InvalidField { field: "every_days", reason: "a whole number of days from 1 to 3650" });
    }
    u32::try_from(days).map_err(|_| InvalidField { field: "every_days", reason: "too large" })
}

/// When the run after the one due at `due` is due, for a run made at `now`:
/// the first `due + k * every_days` (k >= 1) later than `now`.
pub fn next_run(due: i64, every_days: u32, now: i64) -> i64 {
    let every = i64::from(every_days) * MICROS_PER_DAY;
    let late = now.saturating_sub(due).max(0);
    let periods = late / every + 1;
    due.saturating_add(periods.saturating_mul(every))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: i64 = MICROS_PER_DAY;
    const START: i64 = 1_795_000_000_000_000;

    #[test]
    fn a_run_on_time_schedules_the_next_one_a_period_later() {
        assert_eq!(next_run(START, 7, START), START + 7 * DAY);
        assert_eq!(next_run(START, 1, START + 5), START + DAY);
    }

    #[test]
    fn a_run_late_by_weeks_keeps_the_rhythm_and_makes_up_nothing() {
        // Due on day 0 every 7 days, run on day 20: the next is day 21, not day 7 or 14.
        assert_eq!(next_run(START, 7, START + 20 * DAY), START + 21 * DAY);
        // Run exactly at a later period's time: the next is the one after.
        assert_eq!(next_run(START, 7, START + 14 * DAY), START + 21 * DAY);
    }

    #[test]
    fn the_next_run_is_always_after_the_run_and_after_its_due_time() {
        for now in [START - DAY, START, START + 1, START + 3 * DAY, START + 365 * DAY] {
            for every in [1, 2, 7, 30, 3650] {
                let next = next_run(START, every, now);
                assert!(next > now && next > START, "every {every} days, run at {now}: {next}");
                assert_eq!((next - START) % (i64::from(every) * DAY), 0, "on the schedule's rhythm");
            }
        }
    }

    #[test]
    fn every_days_is_a_whole_number_from_one_to_ten_years() {
        assert_eq!(every_days(1), Ok(1));
        assert_eq!(every_days(3650), Ok(3650));
        for bad in [0, -7, 3651, i64::MAX] {
            assert!(every_days(bad).is_err(), "{bad}");
        }
    }
}
