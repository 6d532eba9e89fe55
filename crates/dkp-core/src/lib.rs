//! Pure rules of `dkp`: the arithmetic of points, the postings of every kind of
//! ledger entry, the check that keeps `available` from going below zero, what
//! a raid pays under its pool's earning rules, guild roles and what each may
//! do, the parsing of the names users type (and of characters' names as the
//! game compares them), and when a decay schedule runs next.
//!
//! Nothing here does I/O or knows about time or storage: the service passes in
//! what it read and gets back what to write, so every rule is unit-tested alone.

pub mod auction;
pub mod ledger;
pub mod names;
pub mod points;
pub mod raid;
pub mod roles;
pub mod roster;
pub mod schedule;

pub use ledger::{AccountRef, EntryKind, LedgerError, Posting, SystemAccount};
pub use points::{AmountError, Points};
pub use roles::{Action, Role};
