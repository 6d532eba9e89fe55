//! A file's history folded as it is read: per player the sum of its
//! postings, and for the report how many rows of each kind and when the
//! first and last happened. Rows are never kept (unless a caller asks for
//! them with `read_rows`), so reading a file of a million rows takes memory
//! for its players, not for its rows.
//!
//! The builder folds rows under the provisional refs readers use; `finish`
//! adds the sums of names merged into one player.

use dkp_core::Points;

use crate::error::{ErrorKind, ImportError};
use crate::model::{HistoryRow, Kind, PlayerRef};
use crate::time::At;

/// What a file's history amounts to: counts, dates and per-player sums.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    rows: u64,
    kinds: [u64; Kind::ALL.len()],
    first: Option<At>,
    last: Option<At>,
    /// Per player: the sum of its postings, `None` when no row posts to it.
    sums: Vec<Option<Points>>,
}

impl History {
    /// How many rows the history has (after MonolithDKP's deletions fold).
    pub fn len(&self) -> u64 {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// How many rows are of a kind.
    pub fn count(&self, kind: Kind) -> u64 {
        self.kinds[kind.index()]
    }

    /// The earliest and latest time of a dated row.
    pub fn span(&self) -> Option<(At, At)> {
        self.first.zip(self.last)
    }

    /// The sum of a player's postings, `None` when no row moves its points.
    pub fn sum(&self, player: PlayerRef) -> Option<Points> {
        self.sums.get(player.index()).copied().flatten()
    }

    /// Folds one row in.
    pub(crate) fn add(&mut self, row: &HistoryRow) -> Result<(), ImportError> {
        for posting in &row.postings {
            self.post(posting.player.index(), posting.amount, Some(row.line))?;
        }
        self.rows += 1;
        self.kinds[row.kind.index()] += 1;
        if let Some(at) = row.at {
            self.date(at);
        }
        Ok(())
    }

    /// The same history under merged players: the sums of names that became
    /// one player add up.
    pub(crate) fn remapped(
        mut self,
        remap: &impl Fn(PlayerRef) -> PlayerRef,
        players: usize,
    ) -> Result<History, ImportError> {
        let sums = std::mem::replace(&mut self.sums, vec![None; players]);
        for (index, sum) in sums.into_iter().enumerate() {
            if let Some(sum) = sum {
                self.post(remap(PlayerRef(index as u32)).index(), sum, None)?;
            }
        }
        Ok(self)
    }

    /// Adds another history whose refs `remap` turns into this one's.
    pub(crate) fn absorb(&mut self, other: History, remap: &[PlayerRef]) -> Result<(), ImportError> {
        for (sum, player) in other.sums.into_iter().zip(remap) {
            if let Some(sum) = sum {
                self.post(player.index(), sum, None)?;
            }
        }
        self.rows += other.rows;
        self.kinds.iter_mut().zip(other.kinds).for_each(|(count, more)| *count += more);
        for at in [other.first, other.last].into_iter().flatten() {
            self.date(at);
        }
        Ok(())
    }

    /// Adds an amount to a player's sum; `sums` grows to reach the player.
    fn post(&mut self, player: usize, amount: Points, line: Option<u64>) -> Result<(), ImportError> {
        if self.sums.len() <= player {
            self.sums.resize(player + 1, None);
        }
        let slot = &mut self.sums[player];
        *slot = Some(add(slot.unwrap_or(Points::ZERO), amount, line)?);
        Ok(())
    }

    fn date(&mut self, at: At) {
        if self.first.is_none_or(|first| at.sort_key() < first.sort_key()) {
            self.first = Some(at);
        }
        if self.last.is_none_or(|last| at.sort_key() > last.sort_key()) {
            self.last = Some(at);
        }
    }

    /// The room the per-player sums take, for the test that memory follows players.
    #[cfg(test)]
    pub(crate) fn players_held(&self) -> usize {
        self.sums.capacity()
    }
}

fn add(left: Points, right: Points, line: Option<u64>) -> Result<Points, ImportError> {
    left.checked_add(right).map_err(|_| {
        let kind = ErrorKind::Invalid("a rebuilt balance is too large".into());
        match line {
            Some(line) => ImportError::at(line, kind),
            None => ImportError::whole_file(kind),
        }
    })
}
