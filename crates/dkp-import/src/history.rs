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

    /// Folds one row in; `sums` grows to reach the players the row posts to.
    pub(crate) fn add(&mut self, row: &HistoryRow) -> Result<(), ImportError> {
        for posting in &row.postings {
            let index = posting.player.index();
            if self.sums.len() <= index {
                self.sums.resize(index + 1, None);
            }
            let slot = &mut self.sums[index];
            *slot = Some(add(slot.unwrap_or(Points::ZERO), posting.amount, Some(row.line))?);
        }
        self.rows += 1;
        self.kinds[row.kind.index()] += 1;
        if let Some(at) = row.at {
            if self.first.is_none_or(|first| at.sort_key() < first.sort_key()) {
                self.first = Some(at);
            }
            if self.last.is_none_or(|last| at.sort_key() > last.sort_key()) {
                self.last = Some(at);
            }
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
        let mut sums = vec![None; players];
        for (index, sum) in self.sums.iter().enumerate() {
            let Some(sum) = sum else { continue };
            let slot: &mut Option<Points> = &mut sums[remap(PlayerRef(index as u32)).index()];
            *slot = Some(add(slot.unwrap_or(Points::ZERO), *sum, None)?);
        }
        self.sums = sums;
        Ok(self)
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
