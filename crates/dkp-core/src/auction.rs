//! Lots and bids: the rules of the three auction modes, anti-snipe, holds and
//! settlement. Pure: the caller passes the lot as read inside its
//! transaction, the bidder's wallet and the server's clock, and gets back what
//! to write. Times are microseconds since 1970.
//!
//! A lot's standing bids are what its holds reserve: in `open` mode the
//! leader's bid alone, in sealed modes each bidder's best bid. Ties go to the
//! earlier bid, that is the lower `seq`.

use crate::points::{AmountError, Points};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Ascending, every bid visible, each must beat the high bid by `increment`.
    Open,
    /// Hidden bids; the highest pays its bid.
    SealedFirst,
    /// Hidden bids; the highest pays the second-highest bid, or `min_bid` alone.
    SealedSecond,
}

impl Mode {
    pub fn parse(text: &str) -> Option<Mode> {
        match text {
            "open" => Some(Mode::Open),
            "sealed_first" => Some(Mode::SealedFirst),
            "sealed_second" => Some(Mode::SealedSecond),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Open => "open",
            Mode::SealedFirst => "sealed_first",
            Mode::SealedSecond => "sealed_second",
        }
    }

    pub fn is_sealed(self) -> bool {
        self != Mode::Open
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Open,
    Closed,
    Cancelled,
}

impl Status {
    pub fn parse(text: &str) -> Option<Status> {
        match text {
            "open" => Some(Status::Open),
            "closed" => Some(Status::Closed),
            "cancelled" => Some(Status::Cancelled),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::Closed => "closed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// The terms a lot was opened with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Terms {
    pub mode: Mode,
    pub min_bid: Points,
    pub increment: Points,
    /// A bid accepted this close to the end (µs) extends the lot.
    pub anti_snipe_us: i64,
    /// To how long after that bid (µs).
    pub extend_us: i64,
}

/// One standing bid: what a bidder's hold on the lot reserves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Standing<K> {
    pub member: K,
    pub amount: Points,
    pub seq: i64,
}

/// A lot as read inside the writing transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lot<K> {
    pub terms: Terms,
    pub status: Status,
    pub ends_at: i64,
    /// The offset of the lot's last event; the next event is `seq + 1`.
    pub seq: i64,
    pub bid_count: i64,
    pub standing: Vec<Standing<K>>,
}

/// Why a bid was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BidError {
    #[error("the lot is not open for bids")]
    LotClosed,
    #[error("the bid must be at least {minimum}")]
    TooLow { minimum: Points },
    #[error("not enough points: {needed} needed, {available} available")]
    InsufficientPoints { needed: Points, available: Points },
    #[error(transparent)]
    Amount(#[from] AmountError),
}

/// What an accepted bid changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted<K> {
    /// The bid's own offset on the lot's channel.
    pub seq: i64,
    /// Set when anti-snipe moved the end: the new `ends_at`.
    pub extended_to: Option<i64>,
    /// The bidder whose hold this bid ended (an outbid leader).
    pub released: Option<K>,
}

impl<K: Clone + PartialEq> Lot<K> {
    /// The bid that wins if the lot closes now: highest amount, earliest seq.
    pub fn leader(&self) -> Option<&Standing<K>> {
        self.standing.iter().min_by(|a, b| b.amount.cmp(&a.amount).then(a.seq.cmp(&b.seq)))
    }

    /// Whether bids are still taken at `now`.
    pub fn is_live(&self, now: i64) -> bool {
        self.status == Status::Open && now < self.ends_at
    }

    /// The lowest amount `member` may bid now.
    pub fn minimum_for(&self, member: &K) -> Result<Points, AmountError> {
        match self.terms.mode {
            Mode::Open => match self.leader() {
                Some(leader) => leader.amount.checked_add(self.terms.increment),
                None => Ok(self.terms.min_bid),
            },
            Mode::SealedFirst | Mode::SealedSecond => match self.standing.iter().find(|s| s.member == *member) {
                // A sealed bidder may only raise their own bid.
                Some(own) => {
                    own.amount.checked_add(Points::from_stored(1)).map(|raised| raised.max(self.terms.min_bid))
                }
                None => Ok(self.terms.min_bid),
            },
        }
    }

    /// Places a bid of `amount` by `member` at `now`. `available` is the
    /// member's balance minus all their holds, this lot's included.
    pub fn bid(&mut self, member: K, amount: Points, now: i64, available: Points) -> Result<Accepted<K>, BidError> {
        if !self.is_live(now) {
            return Err(BidError::LotClosed);
        }
        let minimum = self.minimum_for(&member)?;
        if amount < minimum {
            return Err(BidError::TooLow { minimum });
        }
        let own_hold = self.standing.iter().find(|s| s.member == member).map_or(Points::ZERO, |s| s.amount);
        let spendable = available.checked_add(own_hold)?;
        if amount > spendable {
            return Err(BidError::InsufficientPoints { needed: amount, available: spendable });
        }
        self.seq += 1;
        self.bid_count += 1;
        let seq = self.seq;
        let released = match self.terms.mode {
            Mode::Open => {
                let previous = self.standing.pop().map(|s| s.member).filter(|m| *m != member);
                self.standing.push(Standing { member, amount, seq });
                previous
            }
            Mode::SealedFirst | Mode::SealedSecond => {
                self.standing.retain(|s| s.member != member);
                self.standing.push(Standing { member, amount, seq });
                None
            }
        };
        let extended_to = self.anti_snipe(now);
        if extended_to.is_some() {
            self.seq += 1;
        }
        Ok(Accepted { seq, extended_to, released })
    }

    fn anti_snipe(&mut self, now: i64) -> Option<i64> {
        if self.terms.anti_snipe_us <= 0 || self.ends_at - now > self.terms.anti_snipe_us {
            return None;
        }
        let until = now.saturating_add(self.terms.extend_us);
        (until > self.ends_at).then(|| {
            self.ends_at = until;
            until
        })
    }

    /// Who wins and what they pay, if the lot closes now.
    pub fn outcome(&self) -> Option<(K, Points)> {
        let leader = self.leader()?;
        let price = match self.terms.mode {
            Mode::Open | Mode::SealedFirst => leader.amount,
            Mode::SealedSecond => self
                .standing
                .iter()
                .filter(|s| !(s.member == leader.member && s.seq == leader.seq))
                .map(|s| s.amount)
                .max()
                .unwrap_or(self.terms.min_bid),
        };
        Some((leader.member.clone(), price))
    }
}

/// One bid of a batch, as decided: accepted (with what it changed) or refused.
pub type Decision<K> = Result<Accepted<K>, BidError>;

/// What a batch of bids leaves behind, besides the lot itself (which
/// `decide` moves on in place): each bid's decision, in the order given, and
/// each bidder's hold on the lot after the batch (`None`: released), for
/// every bidder whose hold the batch changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch<K> {
    pub decisions: Vec<Decision<K>>,
    pub holds: Vec<(K, Option<(Points, i64)>)>,
}

impl<K: Clone + PartialEq> Lot<K> {
    /// Decides a batch of bids `(member, amount)` in order at `now`, against
    /// the bidders' wallets as read (each wallet's `held` counts this lot's
    /// hold too, and is kept up to date as the batch goes: what an accepted
    /// bid holds, what it releases). A bidder with no wallet is refused as
    /// having no points. The same points never back two bids: each bid is
    /// checked against what its bidder has not yet held.
    pub fn decide(&mut self, wallets: &mut [(K, crate::ledger::Wallet)], bids: &[(K, Points)], now: i64) -> Batch<K> {
        let mut decisions = Vec::with_capacity(bids.len());
        let mut holds: Vec<(K, Option<(Points, i64)>)> = Vec::new();
        for (member, amount) in bids {
            let decision = self.decide_one(wallets, member, *amount, now);
            if let Ok(accepted) = &decision {
                if let Some(released) = &accepted.released {
                    set_hold(&mut holds, released, None);
                }
                set_hold(&mut holds, member, Some((*amount, accepted.seq)));
            }
            decisions.push(decision);
        }
        Batch { decisions, holds }
    }

    fn decide_one(
        &mut self,
        wallets: &mut [(K, crate::ledger::Wallet)],
        member: &K,
        amount: Points,
        now: i64,
    ) -> Decision<K> {
        let wallet = wallets.iter().position(|(m, _)| m == member);
        let available = match wallet {
            Some(i) => wallets[i].1.available()?,
            None => Points::ZERO,
        };
        let own_before = self.standing.iter().find(|s| s.member == *member).map_or(Points::ZERO, |s| s.amount);
        let previous_leader = self.leader().map(|s| (s.member.clone(), s.amount));
        let accepted = self.bid(member.clone(), amount, now, available)?;
        if let Some(released) = &accepted.released {
            let amount = previous_leader.filter(|(m, _)| m == released).map_or(Points::ZERO, |(_, a)| a);
            if let Some((_, w)) = wallets.iter_mut().find(|(m, _)| m == released) {
                w.held = w.held.checked_sub(amount)?;
            }
        }
        if let Some(i) = wallet {
            let w = &mut wallets[i].1;
            w.held = w.held.checked_sub(own_before)?.checked_add(amount)?;
        }
        Ok(accepted)
    }
}

fn set_hold<K: Clone + PartialEq>(
    holds: &mut Vec<(K, Option<(Points, i64)>)>,
    member: &K,
    hold: Option<(Points, i64)>,
) {
    match holds.iter_mut().find(|(m, _)| m == member) {
        Some(slot) => slot.1 = hold,
        None => holds.push((member.clone(), hold)),
    }
}

/// The order in which to apply one batch of bids on an open lot. Bids in one
/// batch were all waiting at once (none had been answered), so any order of
/// them is one the bidders could have seen; this one accepts the most while
/// the highest bid still ends up leading. It is the longest rising chain of
/// amounts, each at least `increment` above the one before, that starts at
/// or above `floor` and ends with the highest bid (the earliest of equal
/// ones), applied from the lowest; the other bids follow in arrival order
/// and are refused as outbid. Sealed lots keep arrival order.
pub fn batch_order(mode: Mode, floor: Points, increment: Points, amounts: &[Points]) -> Vec<usize> {
    let arrival: Vec<usize> = (0..amounts.len()).collect();
    if mode != Mode::Open || amounts.len() < 2 || !increment.is_positive() {
        return arrival;
    }
    let mut highest_first = arrival.clone();
    highest_first.sort_by(|&a, &b| amounts[b].cmp(&amounts[a]).then(a.cmp(&b)));
    let mut chain: Vec<usize> = Vec::new();
    let mut ceiling: Option<Points> = None;
    for i in highest_first {
        let amount = amounts[i];
        if amount < floor {
            break;
        }
        if ceiling.is_some_and(|ceiling| amount > ceiling) {
            continue;
        }
        chain.push(i);
        match amount.checked_sub(increment) {
            Ok(next) => ceiling = Some(next),
            Err(_) => break,
        }
    }
    chain.reverse();
    let mut in_chain = vec![false; amounts.len()];
    for &i in &chain {
        in_chain[i] = true;
    }
    chain.extend(arrival.into_iter().filter(|&i| !in_chain[i]));
    chain
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn pts(h: i64) -> Points {
        Points::from_stored(h)
    }

    fn lot(mode: Mode) -> Lot<u32> {
        Lot {
            terms: Terms { mode, min_bid: pts(1000), increment: pts(100), anti_snipe_us: 10 * S, extend_us: 20 * S },
            status: Status::Open,
            ends_at: 100 * S,
            seq: 1,
            bid_count: 0,
            standing: Vec::new(),
        }
    }

    const RICH: Points = Points::from_stored(1_000_000);

    #[test]
    fn an_open_bid_must_reach_min_bid_then_beat_the_leader_by_the_increment() {
        let mut lot = lot(Mode::Open);
        assert_eq!(lot.bid(1, pts(999), 0, RICH), Err(BidError::TooLow { minimum: pts(1000) }));
        assert_eq!(lot.bid(1, pts(1000), 0, RICH).unwrap().seq, 2);
        assert_eq!(lot.bid(2, pts(1099), 0, RICH), Err(BidError::TooLow { minimum: pts(1100) }));
        let accepted = lot.bid(2, pts(1100), 0, RICH).unwrap();
        assert_eq!(accepted.released, Some(1));
        assert_eq!(lot.standing, vec![Standing { member: 2, amount: pts(1100), seq: 3 }]);
        assert_eq!(lot.bid_count, 2);
    }

    fn wallet(balance: i64, held: i64) -> crate::ledger::Wallet {
        crate::ledger::Wallet { balance: pts(balance), held: pts(held) }
    }

    #[test]
    fn a_batch_moves_holds_from_the_outbid_leader_to_the_new_one() {
        let mut lot = lot(Mode::Open);
        let mut wallets = vec![(1, wallet(5000, 0)), (2, wallet(5000, 0))];
        let batch = lot.decide(&mut wallets, &[(1, pts(1000)), (2, pts(1100)), (1, pts(1150))], 0);
        assert!(batch.decisions[0].is_ok() && batch.decisions[1].is_ok());
        assert_eq!(batch.decisions[2], Err(BidError::TooLow { minimum: pts(1200) }));
        assert_eq!(wallets, vec![(1, wallet(5000, 0)), (2, wallet(5000, 1100))]);
        assert_eq!(batch.holds, vec![(1, None), (2, Some((pts(1100), 3)))]);
    }

    #[test]
    fn points_held_on_another_lot_never_back_a_bid_of_the_batch() {
        let mut lot = lot(Mode::SealedFirst);
        // Member 1 holds 3000 of their 5000 on some other lot.
        let mut wallets = vec![(1, wallet(5000, 3000))];
        let batch = lot.decide(&mut wallets, &[(1, pts(2500)), (1, pts(2000))], 0);
        assert_eq!(batch.decisions[0], Err(BidError::InsufficientPoints { needed: pts(2500), available: pts(2000) }));
        assert!(batch.decisions[1].is_ok());
        assert_eq!(wallets[0].1, wallet(5000, 5000));
        assert_eq!(batch.holds, vec![(1, Some((pts(2000), 2)))]);
    }

    #[test]
    fn a_bidder_without_a_wallet_has_no_points() {
        let mut lot = lot(Mode::Open);
        let batch = lot.decide(&mut Vec::new(), &[(9, pts(1000))], 0);
        assert_eq!(batch.decisions, vec![Err(BidError::InsufficientPoints { needed: pts(1000), available: pts(0) })]);
        assert!(batch.holds.is_empty());
    }

    #[test]
    fn a_leader_raising_their_own_bid_counts_their_hold_as_available() {
        let mut lot = lot(Mode::Open);
        lot.bid(1, pts(1000), 0, pts(1500)).unwrap();
        // After the first hold, 500 remain available; 1500 in all may back the raise.
        assert_eq!(lot.bid(1, pts(1500), 0, pts(500)).unwrap().released, None);
        assert_eq!(
            lot.bid(1, pts(1600), 0, pts(0)),
            Err(BidError::InsufficientPoints { needed: pts(1600), available: pts(1500) })
        );
    }

    #[test]
    fn a_bid_beyond_available_points_is_refused_and_changes_nothing() {
        let mut lot = lot(Mode::Open);
        let before = lot.clone();
        assert_eq!(
            lot.bid(1, pts(1000), 0, pts(999)),
            Err(BidError::InsufficientPoints { needed: pts(1000), available: pts(999) })
        );
        assert_eq!(lot, before);
    }

    #[test]
    fn no_bid_is_taken_at_or_after_the_end_or_once_closed() {
        let mut lot = lot(Mode::Open);
        assert_eq!(lot.bid(1, pts(1000), 100 * S, RICH), Err(BidError::LotClosed));
        lot.status = Status::Cancelled;
        assert_eq!(lot.bid(1, pts(1000), 0, RICH), Err(BidError::LotClosed));
    }

    #[test]
    fn a_bid_in_the_anti_snipe_window_extends_the_end_and_takes_an_offset() {
        let mut lot = lot(Mode::Open);
        assert_eq!(lot.bid(1, pts(1000), 80 * S, RICH).unwrap().extended_to, None);
        let accepted = lot.bid(2, pts(1100), 95 * S, RICH).unwrap();
        assert_eq!(accepted.extended_to, Some(115 * S));
        assert_eq!((lot.ends_at, lot.seq), (115 * S, 4));
    }

    #[test]
    fn a_rejected_bid_never_extends() {
        let mut lot = lot(Mode::Open);
        assert!(lot.bid(1, pts(1), 95 * S, RICH).is_err());
        assert_eq!(lot.ends_at, 100 * S);
    }

    #[test]
    fn sealed_bidders_each_hold_their_own_bid_and_may_only_raise_it() {
        let mut lot = lot(Mode::SealedFirst);
        lot.bid(1, pts(1500), 0, RICH).unwrap();
        lot.bid(2, pts(1200), 0, RICH).unwrap();
        assert_eq!(lot.standing.len(), 2);
        assert_eq!(lot.bid(1, pts(1500), 0, RICH), Err(BidError::TooLow { minimum: pts(1501) }));
        lot.bid(2, pts(1300), 0, RICH).unwrap();
        assert_eq!(lot.outcome(), Some((1, pts(1500))));
    }

    #[test]
    fn sealed_second_price_pays_the_second_bid_or_min_bid_alone() {
        let mut lot = lot(Mode::SealedSecond);
        lot.bid(1, pts(5000), 0, RICH).unwrap();
        assert_eq!(lot.outcome(), Some((1, pts(1000))));
        lot.bid(2, pts(3000), 0, RICH).unwrap();
        lot.bid(3, pts(2000), 0, RICH).unwrap();
        assert_eq!(lot.outcome(), Some((1, pts(3000))));
    }

    #[test]
    fn ties_go_to_the_earlier_bid() {
        let mut lot = lot(Mode::SealedSecond);
        lot.bid(7, pts(2000), 0, RICH).unwrap();
        lot.bid(3, pts(2000), 0, RICH).unwrap();
        assert_eq!(lot.outcome(), Some((7, pts(2000))));
    }

    #[test]
    fn a_lot_without_bids_has_no_winner() {
        assert_eq!(lot(Mode::Open).outcome(), None);
    }

    #[test]
    fn a_batch_of_open_bids_is_applied_as_the_longest_rising_chain_ending_at_the_highest() {
        let amounts: Vec<Points> =
            [105, 101, 103, 102, 99, 104, 104].iter().map(|&a| Points::from_stored(a * 100)).collect();
        let order = batch_order(Mode::Open, Points::from_stored(100_00), Points::from_stored(100), &amounts);
        // 101, 102, 103, 104 (the earlier of the two), 105; then 99 and the later 104, refused.
        assert_eq!(order, vec![1, 3, 2, 5, 0, 4, 6]);
        let mut lot = lot(Mode::Open);
        let mut accepted = Vec::new();
        for i in order {
            if lot.bid(i as u32, amounts[i], 0, RICH).is_ok() {
                accepted.push(i);
            }
        }
        assert_eq!(accepted, vec![1, 3, 2, 5, 0]);
        assert_eq!(lot.leader().map(|s| s.member), Some(0), "the highest bid leads");
    }

    #[test]
    fn a_close_higher_bid_is_never_pushed_out_by_a_lower_one() {
        // 100.50 cannot follow 100 with an increment of 1: the chain keeps the higher.
        let amounts = [Points::from_stored(100_00), Points::from_stored(100_50)];
        let order = batch_order(Mode::Open, Points::from_stored(100_00), Points::from_stored(100), &amounts);
        assert_eq!(order, vec![1, 0]);
        assert_eq!(batch_order(Mode::SealedFirst, Points::ZERO, Points::from_stored(100), &amounts), vec![0, 1]);
    }
}
