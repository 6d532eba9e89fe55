//! Raids: what a raid pays each attendee under its pool's earning rules, the
//! postings that bring what was paid for a raid to what is due now, and the
//! split of a price among a raid's present attendees in a zero-sum pool.
//!
//! Every amount is rounded down to the hundredth at the step the rules name:
//! the pro-rata hours, then the standby share of the whole. An award never
//! pays twice: it pays the difference between what is due and what the
//! raid's earlier entries paid, which is nothing when nothing changed.

use std::collections::{BTreeMap, BTreeSet};

use crate::ledger::{AccountRef, LedgerError, Posting, SystemAccount, loot};
use crate::points::{AmountError, Points};

/// A hundred percent, in hundredths of a percent.
pub const WHOLE_PERCENT: Points = Points::from_stored(100_00);

/// A pool's earning rules. Amounts are points; `standby_percent` is in
/// hundredths of a percent (`50_00` is 50 %), from 0 to 100.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rules {
    /// Paid to each attendee for each boss killed in the raid.
    pub boss_kill: Points,
    /// Paid to an attendee who came on time.
    pub on_time: Points,
    /// Paid per hour present, pro rata by minutes.
    pub per_hour: Points,
    /// The share of what being present would have paid that a standby attendee gets.
    pub standby_percent: Points,
}

/// Why rules were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    #[error("{0} must not be negative")]
    Negative(&'static str),
    #[error("standby_percent is from 0 to 100")]
    PercentOutOfRange,
}

impl Rules {
    /// Checks the rules an owner sets: no negative amount, a percent from 0 to 100.
    pub fn check(self) -> Result<Rules, RulesError> {
        let amounts = [("boss_kill", self.boss_kill), ("on_time", self.on_time), ("per_hour", self.per_hour)];
        if let Some((name, _)) = amounts.iter().find(|(_, amount)| amount.is_negative()) {
            return Err(RulesError::Negative(name));
        }
        if self.standby_percent.is_negative() || self.standby_percent > WHOLE_PERCENT {
            return Err(RulesError::PercentOutOfRange);
        }
        Ok(self)
    }

    /// What one attendee is due for a raid in which `kills` bosses died.
    ///
    /// Present: `boss_kill` per kill, `on_time` if on time, and `per_hour`
    /// times minutes / 60, rounded down to the hundredth. Standby: the same
    /// sum for the same record (the minutes are the minutes on call), then
    /// `standby_percent` of it, rounded down to the hundredth.
    pub fn due(&self, attendance: &Attendance, kills: u32) -> Result<Points, AmountError> {
        let hours = i128::from(self.per_hour.hundredths()) * i128::from(attendance.minutes) / 60;
        let mut present = i128::from(self.boss_kill.hundredths()) * i128::from(kills) + hours;
        if attendance.on_time {
            present += i128::from(self.on_time.hundredths());
        }
        let due = if attendance.standby {
            present * i128::from(self.standby_percent.hundredths()) / i128::from(WHOLE_PERCENT.hundredths())
        } else {
            present
        };
        Points::from_hundredths(i64::try_from(due).map_err(|_| AmountError::OutOfRange)?)
    }
}

/// One attendee's record of a raid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attendance {
    /// Minutes present (or, on standby, on call).
    pub minutes: u32,
    pub on_time: bool,
    pub standby: bool,
}

/// What the raid is due to pay each attendee now.
pub fn dues<K: Clone + Ord>(
    rules: &Rules,
    attendees: &BTreeMap<K, Attendance>,
    kills: u32,
) -> Result<BTreeMap<K, Points>, AmountError> {
    attendees.iter().map(|(member, attendance)| Ok((member.clone(), rules.due(attendance, kills)?))).collect()
}

/// The postings that bring what a raid paid each member (`paid`, the sum
/// of the member's postings in the raid's entries) to what is `due` now:
/// each member's difference, in member order, balanced against the pool's
/// issued account. A member paid before and no longer attending is due
/// nothing, so what they were paid is taken back. Empty when nothing differs.
pub fn payout<K: Clone + Ord>(
    due: &BTreeMap<K, Points>,
    paid: &BTreeMap<K, Points>,
) -> Result<Vec<Posting<K>>, LedgerError<K>> {
    let members: BTreeSet<&K> = due.keys().chain(paid.keys()).collect();
    let mut postings = Vec::new();
    let mut total = Points::ZERO;
    for member in members {
        let owed = due.get(member).copied().unwrap_or(Points::ZERO);
        let difference = owed.checked_sub(paid.get(member).copied().unwrap_or(Points::ZERO))?;
        if difference != Points::ZERO {
            total = total.checked_add(difference)?;
            postings.push(Posting { account: AccountRef::Member(member.clone()), amount: difference });
        }
    }
    if total != Points::ZERO {
        postings.push(Posting { account: AccountRef::System(SystemAccount::Issued), amount: total.checked_neg()? });
    }
    Ok(postings)
}

/// In a zero-sum pool, the winner of a lot pays `price` to the `present`
/// attendees of the lot's raid: evenly, the hundredths left over going one
/// each to the attendees in ascending order. A winner who was present is one
/// of them, and gets one posting: their share less the price. With nobody
/// present the price goes to the pool's spent account, as in any pool.
pub fn shared_loot<K: Clone + Ord>(
    winner: K,
    price: Points,
    present: &BTreeSet<K>,
) -> Result<Vec<Posting<K>>, LedgerError<K>> {
    if present.is_empty() {
        return loot(winner, price);
    }
    if !price.is_positive() {
        return Err(LedgerError::NotPositive);
    }
    let count = i64::try_from(present.len()).map_err(|_| AmountError::OutOfRange)?;
    let (share, left_over) = (price.hundredths() / count, price.hundredths() % count);
    let mut postings = Vec::with_capacity(present.len() + 1);
    if !present.contains(&winner) {
        postings.push(Posting { account: AccountRef::Member(winner.clone()), amount: price.checked_neg()? });
    }
    for (index, member) in present.iter().enumerate() {
        let extra = i64::from(i64::try_from(index).map_err(|_| AmountError::OutOfRange)? < left_over);
        let mut amount = Points::from_stored(share + extra);
        if *member == winner {
            amount = amount.checked_sub(price)?;
        }
        if amount != Points::ZERO {
            postings.push(Posting { account: AccountRef::Member(member.clone()), amount });
        }
    }
    Ok(postings)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::{Check, EntryKind, Wallet, apply, check_balanced};

    fn pts(h: i64) -> Points {
        Points::from_stored(h)
    }

    /// 10 per kill, 5 on time, 3 per hour, standby 50 %.
    const RULES: Rules = Rules {
        boss_kill: Points::from_stored(10_00),
        on_time: Points::from_stored(5_00),
        per_hour: Points::from_stored(3_00),
        standby_percent: Points::from_stored(50_00),
    };

    fn present(minutes: u32, on_time: bool) -> Attendance {
        Attendance { minutes, on_time, standby: false }
    }

    fn amounts(postings: &[Posting<u32>]) -> Vec<(AccountRef<u32>, i64)> {
        postings.iter().map(|p| (p.account.clone(), p.amount.hundredths())).collect()
    }

    #[test]
    fn each_kill_pays_boss_kill_and_coming_on_time_pays_on_time() {
        assert_eq!(RULES.due(&present(0, false), 3), Ok(pts(30_00)));
        assert_eq!(RULES.due(&present(0, true), 3), Ok(pts(35_00)));
        assert_eq!(RULES.due(&present(0, true), 0), Ok(pts(5_00)));
    }

    #[test]
    fn hours_are_paid_pro_rata_by_minutes_rounded_down_to_the_hundredth() {
        // 3.00 per hour: 90 minutes is 4.50; 1 minute is 0.05; 7 minutes is 0.35.
        assert_eq!(RULES.due(&present(90, false), 0), Ok(pts(4_50)));
        assert_eq!(RULES.due(&present(1, false), 0), Ok(pts(5)));
        // 1.00 per hour: 1 minute is 0.0166… and pays 0.01; 59 minutes 0.98.
        let one = Rules { per_hour: pts(1_00), ..Rules::default() };
        assert_eq!(one.due(&present(1, false), 0), Ok(pts(1)));
        assert_eq!(one.due(&present(59, false), 0), Ok(pts(98)));
    }

    #[test]
    fn standby_gets_its_percent_of_what_being_present_would_have_paid_rounded_down() {
        let standby = Attendance { minutes: 90, on_time: true, standby: true };
        // Present would be 2 kills 20.00 + on time 5.00 + 4.50 = 29.50; half is 14.75.
        assert_eq!(RULES.due(&standby, 2), Ok(pts(14_75)));
        let third = Rules { standby_percent: pts(33_33), ..RULES };
        // 29.50 x 33.33 % = 9.83235: 9.83.
        assert_eq!(third.due(&standby, 2), Ok(pts(9_83)));
        let none = Rules { standby_percent: Points::ZERO, ..RULES };
        assert_eq!(none.due(&standby, 2), Ok(Points::ZERO));
    }

    #[test]
    fn rules_refuse_negative_amounts_and_a_percent_outside_0_to_100() {
        assert_eq!(RULES.check(), Ok(RULES));
        assert_eq!(Rules { on_time: pts(-1), ..RULES }.check(), Err(RulesError::Negative("on_time")));
        assert_eq!(Rules { standby_percent: pts(100_01), ..RULES }.check(), Err(RulesError::PercentOutOfRange));
        assert_eq!(Rules { standby_percent: pts(-1), ..RULES }.check(), Err(RulesError::PercentOutOfRange));
        assert!(Rules { standby_percent: WHOLE_PERCENT, ..RULES }.check().is_ok());
    }

    #[test]
    fn a_due_too_large_for_one_amount_is_an_error_not_a_wrap() {
        let huge = Rules { boss_kill: pts(100_000_000_000_000), ..Rules::default() };
        assert_eq!(huge.due(&present(0, false), 2), Err(AmountError::OutOfRange));
    }

    #[test]
    fn the_first_payout_pays_every_due_against_issued() {
        let due = BTreeMap::from([(1, pts(1000)), (2, pts(500)), (3, Points::ZERO)]);
        let postings = payout(&due, &BTreeMap::new()).unwrap();
        assert_eq!(
            amounts(&postings),
            vec![
                (AccountRef::Member(1), 1000),
                (AccountRef::Member(2), 500),
                (AccountRef::System(SystemAccount::Issued), -1500)
            ]
        );
        assert_eq!(check_balanced(&postings), Ok(()));
    }

    #[test]
    fn a_payout_with_nothing_changed_is_empty() {
        let due = BTreeMap::from([(1, pts(1000)), (2, pts(500))]);
        assert_eq!(payout(&due, &due.clone()).unwrap(), vec![]);
    }

    #[test]
    fn a_correction_pays_the_forgotten_and_takes_back_from_the_removed() {
        let paid = BTreeMap::from([(1, pts(1000)), (2, pts(500))]);
        let due = BTreeMap::from([(1, pts(800)), (3, pts(800))]);
        let postings = payout(&due, &paid).unwrap();
        assert_eq!(
            amounts(&postings),
            vec![
                (AccountRef::Member(1), -200),
                (AccountRef::Member(2), -500),
                (AccountRef::Member(3), 800),
                (AccountRef::System(SystemAccount::Issued), -100),
            ]
        );
        assert_eq!(check_balanced(&postings), Ok(()));
    }

    #[test]
    fn a_correction_whose_differences_cancel_out_touches_no_system_account() {
        let paid = BTreeMap::from([(1, pts(300)), (2, pts(100))]);
        let due = BTreeMap::from([(1, pts(100)), (2, pts(300))]);
        assert_eq!(
            amounts(&payout(&due, &paid).unwrap()),
            vec![(AccountRef::Member(1), -200), (AccountRef::Member(2), 200)]
        );
    }

    #[test]
    fn a_correction_takes_back_points_the_member_has_spent_since() {
        let take_back = payout(&BTreeMap::from([(1, Points::ZERO)]), &BTreeMap::from([(1, pts(500))])).unwrap();
        let spent = BTreeMap::from([(1, Wallet { balance: pts(100), held: pts(50) })]);
        let after = apply(&take_back, &spent, Check::of(EntryKind::RaidCorrection, false)).unwrap();
        assert_eq!(after[&1], pts(-400));
        let first = payout(&BTreeMap::from([(1, pts(500))]), &BTreeMap::new()).unwrap();
        assert_eq!(Check::of(EntryKind::Raid, false), Check::Request { allow_negative: false });
        assert!(apply(&first, &spent, Check::of(EntryKind::Raid, false)).is_ok());
    }

    #[test]
    fn a_split_price_goes_evenly_and_the_hundredths_left_over_one_each_in_ascending_order() {
        // 10.00 among three: 3.34, 3.33, 3.33.
        let present = BTreeSet::from([7, 3, 5]);
        let postings = shared_loot(9, pts(10_00), &present).unwrap();
        assert_eq!(
            amounts(&postings),
            vec![
                (AccountRef::Member(9), -1000),
                (AccountRef::Member(3), 334),
                (AccountRef::Member(5), 333),
                (AccountRef::Member(7), 333)
            ]
        );
        assert_eq!(check_balanced(&postings), Ok(()));
    }

    #[test]
    fn a_present_winner_shares_in_the_split_through_one_posting() {
        // 0.05 among 1, 2, 3, 4 (the winner is 2): 0.02, 0.01, 0.01, 0.01.
        let present = BTreeSet::from([1, 2, 3, 4]);
        let postings = shared_loot(2, pts(5), &present).unwrap();
        assert_eq!(
            amounts(&postings),
            vec![
                (AccountRef::Member(1), 2),
                (AccountRef::Member(2), -4),
                (AccountRef::Member(3), 1),
                (AccountRef::Member(4), 1)
            ]
        );
        assert_eq!(check_balanced(&postings), Ok(()));
    }

    #[test]
    fn a_split_smaller_than_the_attendees_pays_a_hundredth_to_the_first_ones_only() {
        let present: BTreeSet<u32> = (1..=10).collect();
        let postings = shared_loot(99, pts(3), &present).unwrap();
        assert_eq!(
            amounts(&postings),
            vec![
                (AccountRef::Member(99), -3),
                (AccountRef::Member(1), 1),
                (AccountRef::Member(2), 1),
                (AccountRef::Member(3), 1)
            ]
        );
    }

    #[test]
    fn every_split_sums_to_exactly_zero() {
        for attendees in 1..=41u32 {
            for price in [1, 7, 99, 100, 1234, 99_999, 100_000_000_000_000] {
                let present: BTreeSet<u32> = (1..=attendees).collect();
                for winner in [1, attendees, 1000] {
                    let postings = shared_loot(winner, pts(price), &present).unwrap();
                    assert_eq!(check_balanced(&postings), Ok(()), "{attendees} attendees, price {price}");
                    let shares: Vec<i64> = postings
                        .iter()
                        .filter(|p| p.account != AccountRef::Member(winner))
                        .map(|p| p.amount.hundredths())
                        .collect();
                    assert!(shares.iter().all(|s| *s > 0), "only positive shares besides the winner");
                }
            }
        }
    }

    #[test]
    fn a_winner_alone_present_pays_themselves_and_nothing_moves() {
        assert_eq!(shared_loot(4, pts(700), &BTreeSet::from([4])).unwrap(), vec![]);
    }

    #[test]
    fn a_split_with_nobody_present_goes_to_spent() {
        let postings = shared_loot(1, pts(500), &BTreeSet::new()).unwrap();
        assert_eq!(
            amounts(&postings),
            vec![(AccountRef::Member(1), -500), (AccountRef::System(SystemAccount::Spent), 500)]
        );
    }
}
