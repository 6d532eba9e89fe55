//! The double-entry ledger of one pool. Every movement of points is an entry
//! whose postings sum to zero: points come from and go to the pool's own system
//! accounts, so the sum of every posting of a pool is zero at every moment.
//!
//! Functions here turn a request (an award, an adjustment, a transfer, the
//! reversal of an earlier entry) into postings, and check those postings
//! against the balances and holds read inside the writing transaction.

use std::collections::BTreeMap;

use crate::points::{AmountError, MAX_BALANCE, Points};

/// The pool's own accounts, where points enter and leave the members' wallets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SystemAccount {
    /// The source of awards and positive adjustments.
    Issued,
    /// Where points spent on loot go.
    Spent,
    /// Where decayed points go.
    Decayed,
}

impl SystemAccount {
    pub const ALL: [SystemAccount; 3] = [SystemAccount::Issued, SystemAccount::Spent, SystemAccount::Decayed];

    pub fn as_str(self) -> &'static str {
        match self {
            SystemAccount::Issued => "issued",
            SystemAccount::Spent => "spent",
            SystemAccount::Decayed => "decayed",
        }
    }

    pub fn parse(text: &str) -> Option<SystemAccount> {
        SystemAccount::ALL.into_iter().find(|a| a.as_str() == text)
    }
}

/// The kinds of ledger entry, each with its one name in the API and the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryKind {
    Award,
    Adjustment,
    Transfer,
    Reversal,
    /// What the winner of a lot pays when it closes.
    Settlement,
    Decay,
    /// A raid's first award: each attendee's due, issued by the pool.
    Raid,
    /// What a raid's award pays or takes back after its record changed.
    RaidCorrection,
    /// Balances brought in from another tool's file: each member's
    /// difference to the balance the file gives, against the issued account.
    Import,
}

impl EntryKind {
    pub const ALL: [EntryKind; 9] = [
        EntryKind::Award,
        EntryKind::Adjustment,
        EntryKind::Transfer,
        EntryKind::Reversal,
        EntryKind::Settlement,
        EntryKind::Decay,
        EntryKind::Raid,
        EntryKind::RaidCorrection,
        EntryKind::Import,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::Award => "award",
            EntryKind::Adjustment => "adjustment",
            EntryKind::Transfer => "transfer",
            EntryKind::Reversal => "reversal",
            EntryKind::Settlement => "settlement",
            EntryKind::Decay => "decay",
            EntryKind::Raid => "raid",
            EntryKind::RaidCorrection => "raid_correction",
            EntryKind::Import => "import",
        }
    }

    pub fn parse(text: &str) -> Option<EntryKind> {
        EntryKind::ALL.into_iter().find(|kind| kind.as_str() == text)
    }

    /// Whether an entry of this kind is asked for by naming the members it
    /// pays or charges (an award, an adjustment, a transfer): those must be
    /// on the roster. Reversals, decays and settlements carry out what was
    /// decided before, and reach whomever it reached; a raid's award carries
    /// out the raid's record, which may name a member taken off the roster
    /// since (and a correction must reach them).
    pub fn names_members(self) -> bool {
        matches!(self, EntryKind::Award | EntryKind::Adjustment | EntryKind::Transfer)
    }
}

/// Whose account a posting moves: a member's wallet or a system account.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccountRef<K> {
    Member(K),
    System(SystemAccount),
}

/// One line of an entry: an amount added to (or, negative, taken from) an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posting<K> {
    pub account: AccountRef<K>,
    pub amount: Points,
}

/// Why a ledger request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError<K> {
    #[error("the amount must be positive")]
    NotPositive,
    #[error("the amount must not be zero")]
    Zero,
    #[error("name at least one member")]
    NoMembers,
    #[error("a member is named twice")]
    DuplicateMember(K),
    #[error("a transfer needs two different members")]
    SameMember,
    #[error("the postings do not sum to zero")]
    Unbalanced,
    #[error("not enough points: {needed} needed, {available} available")]
    InsufficientPoints { member: K, needed: Points, available: Points },
    #[error("a balance would pass the largest one a wallet keeps ({MAX_BALANCE})")]
    BalanceOutOfRange { member: K },
    #[error(transparent)]
    Amount(#[from] AmountError),
}

/// Each named member gets `amount`, all of it issued by the pool.
pub fn award<K: Clone + Ord>(members: &[K], amount: Points) -> Result<Vec<Posting<K>>, LedgerError<K>> {
    if !amount.is_positive() {
        return Err(LedgerError::NotPositive);
    }
    if members.is_empty() {
        return Err(LedgerError::NoMembers);
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut postings = Vec::with_capacity(members.len() + 1);
    for member in members {
        if !seen.insert(member.clone()) {
            return Err(LedgerError::DuplicateMember(member.clone()));
        }
        postings.push(Posting { account: AccountRef::Member(member.clone()), amount });
    }
    let count = i64::try_from(members.len()).map_err(|_| AmountError::OutOfRange)?;
    let total = amount.checked_mul(count)?;
    postings.push(Posting { account: AccountRef::System(SystemAccount::Issued), amount: total.checked_neg()? });
    Ok(postings)
}

/// A signed correction of one member's balance, against the issued account.
pub fn adjustment<K: Clone + Ord>(member: K, amount: Points) -> Result<Vec<Posting<K>>, LedgerError<K>> {
    if amount == Points::ZERO {
        return Err(LedgerError::Zero);
    }
    Ok(vec![
        Posting { account: AccountRef::Member(member), amount },
        Posting { account: AccountRef::System(SystemAccount::Issued), amount: amount.checked_neg()? },
    ])
}

/// Points moved from one member to another.
pub fn transfer<K: Clone + Ord>(from: K, to: K, amount: Points) -> Result<Vec<Posting<K>>, LedgerError<K>> {
    if !amount.is_positive() {
        return Err(LedgerError::NotPositive);
    }
    if from == to {
        return Err(LedgerError::SameMember);
    }
    Ok(vec![
        Posting { account: AccountRef::Member(from), amount: amount.checked_neg()? },
        Posting { account: AccountRef::Member(to), amount },
    ])
}

/// The winner of a lot pays its price into the pool's spent account.
pub fn loot<K: Clone + Ord>(winner: K, price: Points) -> Result<Vec<Posting<K>>, LedgerError<K>> {
    if !price.is_positive() {
        return Err(LedgerError::NotPositive);
    }
    Ok(vec![
        Posting { account: AccountRef::Member(winner), amount: price.checked_neg()? },
        Posting { account: AccountRef::System(SystemAccount::Spent), amount: price },
    ])
}

/// The postings that undo an entry: each of its postings, negated.
pub fn reversal<K: Clone + Ord>(original: &[Posting<K>]) -> Result<Vec<Posting<K>>, LedgerError<K>> {
    original.iter().map(|p| Ok(Posting { account: p.account.clone(), amount: p.amount.checked_neg()? })).collect()
}

/// Decay: every member gives up `percent` of a positive balance (rounded down
/// to the hundredth) into the pool's decayed account. The percent is itself
/// in hundredths (`1000` is 10 %), from 0.01 % to 100 %. Members with nothing
/// to give are left out; no member at all is an entry with no member
/// postings, which the caller may skip.
///
/// Decay reads balances only, never holds: what sealed bids hold is secret
/// until their lot closes, and an entry everyone can read that spared held
/// points would tell it. So a decay may leave a member holding more than
/// their balance (`available` below zero); they can then bid, transfer or be
/// charged nothing more until it is positive again, and a lot they win still
/// charges its whole price at the close (see `Check::Consequence`), which may
/// take the balance below zero.
///
/// Shares are computed in `i128`; each is at most its balance, so it fits.
pub fn decay<K: Clone + Ord>(
    balances: &BTreeMap<K, Points>,
    percent: Points,
) -> Result<Vec<Posting<K>>, LedgerError<K>> {
    let percent = decay_percent(percent)?;
    let mut postings = Vec::new();
    let mut total: i128 = 0;
    for (member, balance) in balances {
        if !balance.is_positive() {
            continue;
        }
        // hundredths x hundredths of a percent: divide by 100 x 100.
        let share = i128::from(balance.hundredths()) * i128::from(percent.hundredths()) / 100_00;
        let share = i64::try_from(share).map_err(|_| AmountError::OutOfRange)?;
        if share > 0 {
            postings.push(Posting { account: AccountRef::Member(member.clone()), amount: Points::from_stored(-share) });
            total += i128::from(share);
        }
    }
    if total > 0 {
        let total = i64::try_from(total).map_err(|_| AmountError::OutOfRange)?;
        postings
            .push(Posting { account: AccountRef::System(SystemAccount::Decayed), amount: Points::from_stored(total) });
    }
    Ok(postings)
}

/// An import: each member's balance moved to the one a file gives, by the
/// difference to what they hold (`changes`, member to difference), all of it
/// issued by (or, for a lowered balance, returned to) the pool. Members with
/// no difference are left out; no difference at all is no postings.
pub fn import<K: Clone + Ord>(changes: &BTreeMap<K, Points>) -> Result<Vec<Posting<K>>, LedgerError<K>> {
    let mut postings = Vec::with_capacity(changes.len() + 1);
    let mut total = Points::ZERO;
    for (member, change) in changes {
        if *change == Points::ZERO {
            continue;
        }
        total = total.checked_add(*change)?;
        postings.push(Posting { account: AccountRef::Member(member.clone()), amount: *change });
    }
    if total != Points::ZERO {
        postings.push(Posting { account: AccountRef::System(SystemAccount::Issued), amount: total.checked_neg()? });
    }
    Ok(postings)
}

/// A decay's percent, checked: above 0 and at most 100 (in hundredths of a
/// percent, so at most two decimals).
pub fn decay_percent(percent: Points) -> Result<Points, AmountError> {
    if !percent.is_positive() || percent > Points::from_stored(100_00) {
        return Err(AmountError::OutOfRange);
    }
    Ok(percent)
}

/// Checks that postings sum to zero.
pub fn check_balanced<K>(postings: &[Posting<K>]) -> Result<(), LedgerError<K>> {
    let mut sum = Points::ZERO;
    for p in postings {
        sum = sum.checked_add(p.amount)?;
    }
    if sum != Points::ZERO {
        return Err(LedgerError::Unbalanced);
    }
    Ok(())
}

/// A member's wallet as read inside the writing transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wallet {
    pub balance: Points,
    pub held: Points,
}

impl Wallet {
    pub fn available(self) -> Result<Points, AmountError> {
        self.balance.checked_sub(self.held)
    }
}

/// What `apply` checks of the balances an entry leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Check {
    /// An entry someone asks for (an award, an adjustment, a transfer, a
    /// reversal): a member whose balance it lowers must keep `available` at
    /// zero or above unless the pool allows negative balances, and no
    /// balance may move beyond `MAX_BALANCE` either way.
    Request { allow_negative: bool },
    /// An entry that carries out what was accepted before (a lot's
    /// settlement, a decay): never refused for the balances it leaves, so a
    /// winner pays their price even when a decay since their bid took their
    /// balance below it.
    Consequence,
}

impl Check {
    /// The check an entry of `kind` gets in a pool that does (or does not)
    /// allow negative balances. A raid's correction takes back what the raid
    /// paid by mistake even from a member who has spent it since (their
    /// `available` may go below zero, as after a decay); the raid's record is
    /// the truth, and one member's spending must not keep it from being
    /// corrected for everyone. What it credits is still bounded.
    pub fn of(kind: EntryKind, allow_negative: bool) -> Check {
        match kind {
            EntryKind::Settlement | EntryKind::Decay | EntryKind::Import => Check::Consequence,
            EntryKind::RaidCorrection => Check::Request { allow_negative: true },
            _ => Check::Request { allow_negative },
        }
    }
}

/// Applies balanced postings to the wallets they touch and returns the new
/// balances, checked as `check` says.
pub fn apply<K: Clone + Ord>(
    postings: &[Posting<K>],
    wallets: &BTreeMap<K, Wallet>,
    check: Check,
) -> Result<BTreeMap<K, Points>, LedgerError<K>> {
    check_balanced(postings)?;
    let mut changes: BTreeMap<K, Points> = BTreeMap::new();
    for p in postings {
        if let AccountRef::Member(member) = &p.account {
            let change = changes.entry(member.clone()).or_insert(Points::ZERO);
            *change = change.checked_add(p.amount)?;
        }
    }
    let mut balances = BTreeMap::new();
    for (member, change) in changes {
        let wallet = wallets.get(&member).copied().unwrap_or(Wallet { balance: Points::ZERO, held: Points::ZERO });
        let balance = wallet.balance.checked_add(change)?;
        if let Check::Request { allow_negative } = check {
            if change.is_negative() && !allow_negative {
                let available = wallet.available()?;
                if available.checked_add(change)?.is_negative() {
                    return Err(LedgerError::InsufficientPoints { member, needed: change.checked_neg()?, available });
                }
            }
            let beyond =
                if change.is_negative() { balance < MAX_BALANCE.checked_neg()? } else { balance > MAX_BALANCE };
            if beyond {
                return Err(LedgerError::BalanceOutOfRange { member });
            }
        }
        balances.insert(member, balance);
    }
    Ok(balances)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(h: i64) -> Points {
        Points::from_stored(h)
    }

    fn wallets(list: &[(u32, i64, i64)]) -> BTreeMap<u32, Wallet> {
        list.iter().map(|&(m, b, h)| (m, Wallet { balance: pts(b), held: pts(h) })).collect()
    }

    #[test]
    fn every_entry_kind_reads_back_from_its_name() {
        for kind in EntryKind::ALL {
            assert_eq!(EntryKind::parse(kind.as_str()), Some(kind));
        }
        assert_eq!(EntryKind::parse("gift"), None);
    }

    #[test]
    fn an_award_gives_each_member_the_amount_and_balances_against_issued() {
        let postings = award(&[1, 2, 3], pts(500)).unwrap();
        assert_eq!(postings.len(), 4);
        assert_eq!(postings[3], Posting { account: AccountRef::System(SystemAccount::Issued), amount: pts(-1500) });
        assert_eq!(check_balanced(&postings), Ok(()));
    }

    #[test]
    fn an_award_rejects_no_members_duplicates_and_non_positive_amounts() {
        assert_eq!(award::<u32>(&[], pts(1)), Err(LedgerError::NoMembers));
        assert_eq!(award(&[1, 1], pts(1)), Err(LedgerError::DuplicateMember(1)));
        assert_eq!(award(&[1], pts(0)), Err(LedgerError::NotPositive));
        assert_eq!(award(&[1], pts(-1)), Err(LedgerError::NotPositive));
    }

    #[test]
    fn an_award_whose_total_overflows_is_refused() {
        let members: Vec<u32> = (0..200_000).collect();
        let huge = Points::parse("1000000000000").unwrap();
        assert_eq!(award(&members, huge), Err(LedgerError::Amount(AmountError::OutOfRange)));
    }

    #[test]
    fn adjustments_are_signed_and_never_zero() {
        assert_eq!(check_balanced(&adjustment(1, pts(-250)).unwrap()), Ok(()));
        assert_eq!(adjustment(1, pts(0)), Err(LedgerError::Zero));
    }

    #[test]
    fn a_transfer_needs_two_members_and_a_positive_amount() {
        assert_eq!(transfer(1, 1, pts(5)), Err(LedgerError::SameMember));
        assert_eq!(transfer(1, 2, pts(0)), Err(LedgerError::NotPositive));
        let postings = transfer(1, 2, pts(5)).unwrap();
        assert_eq!(check_balanced(&postings), Ok(()));
    }

    #[test]
    fn a_reversal_negates_every_posting() {
        let original = award(&[1, 2], pts(300)).unwrap();
        let undo = reversal(&original).unwrap();
        let mut all = original.clone();
        all.extend(undo.iter().cloned());
        assert_eq!(check_balanced(&all), Ok(()));
        assert_eq!(undo[0].amount, pts(-300));
    }

    fn balances(list: &[(u32, i64)]) -> BTreeMap<u32, Points> {
        list.iter().map(|&(m, b)| (m, pts(b))).collect()
    }

    const REQUEST: Check = Check::Request { allow_negative: false };

    #[test]
    fn decay_takes_the_percent_of_each_positive_balance_rounded_down() {
        let postings = decay(&balances(&[(1, 1000), (2, 1005), (3, 1000), (4, -500), (5, 0)]), pts(10_00)).unwrap();
        let taken: Vec<(AccountRef<u32>, i64)> =
            postings.iter().map(|p| (p.account.clone(), p.amount.hundredths())).collect();
        assert_eq!(
            taken,
            vec![
                (AccountRef::Member(1), -100),
                (AccountRef::Member(2), -100),
                (AccountRef::Member(3), -100),
                (AccountRef::System(SystemAccount::Decayed), 300),
            ]
        );
    }

    #[test]
    fn decay_may_leave_holds_beyond_the_balance_and_the_winner_still_pays() {
        // Member 3 holds 950 of 1000 in bids: decay takes its 10 % all the same.
        let postings = decay(&balances(&[(3, 1000)]), pts(10_00)).unwrap();
        let after = apply(&postings, &wallets(&[(3, 1000, 950)]), Check::of(EntryKind::Decay, false)).unwrap();
        assert_eq!(after[&3], pts(900));
        let holding = wallets(&[(3, 900, 950)]);
        assert!(matches!(
            apply(&adjustment(3, pts(-1)).unwrap(), &holding, REQUEST),
            Err(LedgerError::InsufficientPoints { .. })
        ));
        // The lot closes: its hold is released and its price charged.
        let settled =
            apply(&loot(3, pts(950)).unwrap(), &wallets(&[(3, 900, 0)]), Check::of(EntryKind::Settlement, false));
        assert_eq!(settled.unwrap()[&3], pts(-50));
    }

    #[test]
    fn decay_of_the_largest_balances_computes_without_overflow() {
        let largest = MAX_BALANCE.hundredths();
        let postings = decay(&balances(&[(1, largest), (2, largest), (3, largest)]), pts(50_00)).unwrap();
        assert_eq!(postings[0].amount, pts(-largest / 2));
        assert_eq!(postings[3].amount, pts(3 * (largest / 2)));
        assert_eq!(check_balanced(&postings), Ok(()));
    }

    #[test]
    fn decay_percent_must_be_above_zero_and_at_most_a_hundred() {
        let one = balances(&[(1, 1000)]);
        assert!(decay(&one, pts(0)).is_err());
        assert!(decay(&one, pts(100_01)).is_err());
        assert_eq!(decay(&one, pts(100_00)).unwrap()[0].amount, pts(-1000));
        assert_eq!(decay(&BTreeMap::<u32, Points>::new(), pts(5_00)).unwrap(), vec![]);
    }

    #[test]
    fn only_awards_adjustments_and_transfers_name_their_members() {
        let named: Vec<EntryKind> = EntryKind::ALL.into_iter().filter(|kind| kind.names_members()).collect();
        assert_eq!(named, [EntryKind::Award, EntryKind::Adjustment, EntryKind::Transfer]);
    }

    #[test]
    fn a_request_may_not_take_a_balance_beyond_the_largest_kept() {
        let largest = MAX_BALANCE.hundredths();
        let award = award(&[1], pts(1)).unwrap();
        assert_eq!(apply(&award, &wallets(&[(1, largest - 1, 0)]), REQUEST).map(|b| b[&1]), Ok(MAX_BALANCE));
        assert_eq!(
            apply(&award, &wallets(&[(1, largest, 0)]), REQUEST),
            Err(LedgerError::BalanceOutOfRange { member: 1 })
        );
        let debt = Check::Request { allow_negative: true };
        let charge = adjustment(1, pts(-1)).unwrap();
        assert_eq!(
            apply(&charge, &wallets(&[(1, -largest, 0)]), debt),
            Err(LedgerError::BalanceOutOfRange { member: 1 })
        );
        // Moving back towards zero is always allowed.
        assert!(apply(&charge, &wallets(&[(1, largest + 5, 0)]), REQUEST).is_ok());
    }

    #[test]
    fn unbalanced_postings_are_refused() {
        let postings = vec![Posting { account: AccountRef::Member(1u32), amount: pts(5) }];
        assert_eq!(apply(&postings, &BTreeMap::new(), REQUEST), Err(LedgerError::Unbalanced));
    }

    #[test]
    fn spending_more_than_available_is_refused_counting_holds() {
        let postings = transfer(1, 2, pts(600)).unwrap();
        let w = wallets(&[(1, 1000, 500)]);
        assert_eq!(
            apply(&postings, &w, REQUEST),
            Err(LedgerError::InsufficientPoints { member: 1, needed: pts(600), available: pts(500) })
        );
        let ok = apply(&transfer(1, 2, pts(500)).unwrap(), &w, REQUEST).unwrap();
        assert_eq!(ok[&1], pts(500));
        assert_eq!(ok[&2], pts(500));
    }

    #[test]
    fn a_pool_that_allows_negative_balances_lets_a_wallet_go_below_zero() {
        let result = apply(
            &adjustment(1, pts(-700)).unwrap(),
            &wallets(&[(1, 100, 0)]),
            Check::Request { allow_negative: true },
        )
        .unwrap();
        assert_eq!(result[&1], pts(-600));
    }

    #[test]
    fn a_credit_is_never_refused_even_to_a_negative_wallet() {
        let result = apply(&adjustment(1, pts(50)).unwrap(), &wallets(&[(1, -100, 0)]), REQUEST).unwrap();
        assert_eq!(result[&1], pts(-50));
    }

    #[test]
    fn an_import_posts_each_difference_against_the_issued_account() {
        let changes = BTreeMap::from([(1, pts(500)), (2, Points::ZERO), (3, pts(-200))]);
        let postings = import(&changes).unwrap();
        assert_eq!(
            postings,
            vec![
                Posting { account: AccountRef::Member(1), amount: pts(500) },
                Posting { account: AccountRef::Member(3), amount: pts(-200) },
                Posting { account: AccountRef::System(SystemAccount::Issued), amount: pts(-300) },
            ]
        );
        check_balanced(&postings).unwrap();
        assert!(import::<u32>(&BTreeMap::new()).unwrap().is_empty());
    }

    #[test]
    fn an_import_that_lowers_a_balance_below_zero_is_not_refused() {
        let postings = import(&BTreeMap::from([(1, pts(-100))])).unwrap();
        let result = apply(&postings, &wallets(&[(1, 0, 0)]), Check::of(EntryKind::Import, false)).unwrap();
        assert_eq!(result[&1], pts(-100));
    }
}
