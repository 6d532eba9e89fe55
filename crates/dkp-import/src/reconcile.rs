//! Rebuilding balances from a file's history, and comparing them with what
//! the file states.
//!
//! A player's rebuilt balance is the sum of the postings of every history
//! row, added up as the file was read (`History`). Real files do not always agree with themselves (MonolithDKP's table
//! is edited by hand, WebDKP's log is trimmed), so each disagreement is
//! listed; the stated balance is what the pool gets, wherever there is one.
//! A file that states balances and has history for a player it states no
//! balance for (a player deleted from the table) lists that player too, with
//! a stated balance of zero, since zero is what the pool will hold. A file
//! with no history at all (an EQdkp Plus export, a `name,balance` CSV) has
//! nothing to rebuild from, so it has no mismatches.

use dkp_core::Points;

use crate::error::ImportError;
use crate::model::{Import, PlayerRef};

/// A player whose history does not add up to the balance the file states.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub player: PlayerRef,
    pub name: String,
    pub stated: Points,
    pub rebuilt: Points,
}

/// Balances rebuilt from history, compared with the stated ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    /// Per player, the sum of the history's postings (players without history hold zero).
    pub rebuilt: Vec<Points>,
    pub mismatches: Vec<Mismatch>,
    /// What the pool holds after the import: the stated balance where the file
    /// states balances, else the rebuilt one. Zero balances are left out.
    pub balances: Vec<(PlayerRef, Points)>,
}

/// Rebuilds every balance and lists the mismatches (an `Err` is kept for
/// callers, though the sums that could overflow are checked while reading).
pub fn reconcile(import: &Import) -> Result<Reconciliation, ImportError> {
    let sums: Vec<Option<Points>> =
        (0..import.players.len()).map(|index| import.history.sum(PlayerRef(index as u32))).collect();
    let rebuilt: Vec<Points> = sums.iter().map(|sum| sum.unwrap_or(Points::ZERO)).collect();
    let states_balances = !import.stated.is_empty();
    let mut stated = vec![None; import.players.len()];
    for record in &import.stated {
        stated[record.player.index()] = Some(record.balance);
    }
    let mut mismatches = Vec::new();
    let mut balances = Vec::new();
    for (index, player) in import.players.iter().enumerate() {
        let player_ref = PlayerRef(index as u32);
        let compared = match stated[index] {
            Some(balance) => Some(balance),
            None if states_balances && sums[index].is_some() => Some(Points::ZERO),
            None => None,
        };
        if let Some(balance) = compared
            && !import.history.is_empty()
            && balance != rebuilt[index]
        {
            mismatches.push(Mismatch {
                player: player_ref,
                name: player.name.clone(),
                stated: balance,
                rebuilt: rebuilt[index],
            });
        }
        let holds = if states_balances { stated[index].unwrap_or(Points::ZERO) } else { rebuilt[index] };
        if holds != Points::ZERO {
            balances.push((player_ref, holds));
        }
    }
    Ok(Reconciliation { rebuilt, mismatches, balances })
}
