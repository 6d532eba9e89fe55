//! The ledger as a transaction's entries see it (seed risk R1): the wallets
//! and system accounts they touch, locked once at the start in the one order
//! every writer locks accounts in (members' accounts by account id, then the
//! pools' system accounts by id), and moved in memory entry by entry, each
//! checked by `dkp-core` against what the entries before it left. Whatever
//! the number of entries, the book then writes them with a fixed number of
//! set-based statements: the entries, their postings and the final balances.

use std::collections::{BTreeMap, BTreeSet};

use dkp_core::ledger::{self, Check, Wallet};
use dkp_core::{AccountRef, Points, Posting, SystemAccount};
use uuid::Uuid;

use super::audit::OnUnique;
use super::events::Pending;
use super::ledger::{Draft, LockedWallet, lock_wallets_in};
use super::sql::{Backend, Rows, Tx, Writes};
use super::{Ctx, StoreError};
use crate::model::{Code, Entry, EntryPosting, EventName, balance_changed, user_channel};

/// The accounts a transaction's entries move, as they have left them, and
/// the rows they will write.
pub(super) struct Book {
    wallets: BTreeMap<(Uuid, Uuid), LockedWallet>,
    /// Each pool's system accounts: their ids and balances.
    systems: BTreeMap<(Uuid, SystemAccount), (Uuid, Points)>,
    /// The entries posted, with their guilds.
    entries: Vec<(Uuid, Entry)>,
    /// `(entry, account, amount, line)` of every posting.
    lines: Vec<(Uuid, Uuid, i64, i64)>,
    /// The balance to write of every account moved.
    balances: BTreeMap<Uuid, i64>,
    /// The entries the book's reversals reverse.
    reversed: BTreeSet<Uuid>,
}

impl Book {
    /// Locks the accounts the postings of `drafts` name, each `(pool, postings)`.
    pub async fn open<'a>(
        tx: &mut Tx,
        drafts: impl IntoIterator<Item = (Uuid, &'a [Posting<Uuid>])>,
    ) -> Result<Book, StoreError> {
        let (mut members, mut systems) = (BTreeSet::new(), BTreeSet::new());
        for (pool_id, postings) in drafts {
            for posting in postings {
                match posting.account {
                    AccountRef::Member(member) => members.insert((pool_id, member)),
                    AccountRef::System(system) => systems.insert((pool_id, system)),
                };
            }
        }
        let wanted: Vec<(Uuid, Uuid)> = members.into_iter().collect();
        let wallets = lock_wallets_in(tx, &wanted).await?;
        let systems = lock_systems(tx, &systems).await?;
        Ok(Book {
            wallets,
            systems,
            entries: Vec::new(),
            lines: Vec::new(),
            balances: BTreeMap::new(),
            reversed: BTreeSet::new(),
        })
    }

    /// Posts `draft`: checks it against the wallets as the book has them and
    /// moves them. A refusal leaves the book as it was.
    pub fn post(&mut self, draft: Draft, ctx: &Ctx) -> Result<Entry, StoreError> {
        let pool_id = draft.pool_id;
        // The database refuses a second reversal when it is written; one
        // within the book is refused here, as the first would refuse it.
        if draft.reverses.is_some_and(|original| self.reversed.contains(&original)) {
            return Err(StoreError::Conflict(Code::AlreadyReversed));
        }
        let members: BTreeSet<Uuid> = draft
            .postings
            .iter()
            .filter_map(|p| match p.account {
                AccountRef::Member(member) => Some(member),
                AccountRef::System(_) => None,
            })
            .collect();
        let locked: Vec<(Uuid, &LockedWallet)> =
            members.iter().filter_map(|m| Some((*m, self.wallets.get(&(pool_id, *m))?))).collect();
        if locked.len() < members.len() {
            return Err(StoreError::UnknownReference("member_id"));
        }
        if draft.kind.names_members() && locked.iter().any(|(_, locked)| !locked.active) {
            return Err(StoreError::Conflict(Code::MemberInactive));
        }
        let wallets: BTreeMap<Uuid, Wallet> = locked.iter().map(|(member, locked)| (*member, locked.wallet)).collect();
        let balances = ledger::apply(&draft.postings, &wallets, Check::of(draft.kind, draft.allow_negative))?;
        let systems = self.credit_systems(pool_id, &draft.postings)?;

        let entry = Entry {
            id: Uuid::now_v7(),
            pool_id,
            kind: draft.kind,
            reason: draft.reason,
            created_at: ctx.now,
            created_by: draft.created_by,
            reverses: draft.reverses,
            raid_id: draft.raid_id,
            postings: draft
                .postings
                .iter()
                .map(|p| EntryPosting { account: p.account.clone(), amount: p.amount })
                .collect(),
        };
        for (member, balance) in balances {
            let locked = self.wallets.get_mut(&(pool_id, member)).ok_or_else(unlocked)?;
            locked.wallet.balance = balance;
            self.balances.insert(locked.account, balance.hundredths());
        }
        for (system, balance) in systems {
            let (account, stored) = self.systems.get_mut(&(pool_id, system)).ok_or_else(unlocked)?;
            *stored = balance;
            self.balances.insert(*account, balance.hundredths());
        }
        for (line, posting) in draft.postings.iter().enumerate() {
            let account = match posting.account {
                AccountRef::Member(member) => self.wallets.get(&(pool_id, member)).map(|l| l.account),
                AccountRef::System(system) => self.systems.get(&(pool_id, system)).map(|(account, _)| *account),
            };
            let line = i64::try_from(line).map_err(|_| StoreError::Corrupt("too many postings".into()))?;
            self.lines.push((entry.id, account.ok_or_else(unlocked)?, posting.amount.hundredths(), line));
        }
        self.reversed.extend(draft.reverses);
        self.entries.push((draft.guild_id, entry.clone()));
        Ok(entry)
    }

    /// The new balances of the pool's system accounts the postings credit
    /// (checked: an overflow is refused like any other).
    fn credit_systems(
        &self,
        pool_id: Uuid,
        postings: &[Posting<Uuid>],
    ) -> Result<BTreeMap<SystemAccount, Points>, StoreError> {
        let mut balances = BTreeMap::new();
        for posting in postings {
            let AccountRef::System(system) = posting.account else { continue };
            let balance =
                match balances.get(&system) {
                    Some(balance) => *balance,
                    None => self.systems.get(&(pool_id, system)).map(|(_, b)| *b).ok_or_else(|| {
                        StoreError::Corrupt(format!("a pool without its {} account", system.as_str()))
                    })?,
                };
            let balance = balance.checked_add(posting.amount).map_err(dkp_core::LedgerError::from)?;
            balances.insert(system, balance);
        }
        Ok(balances)
    }

    /// The `balance_changed` events of the pool's `members`, from their
    /// wallets as the book has them now.
    pub fn balance_events(&self, pool_id: Uuid, members: &[Uuid]) -> Result<Vec<Pending>, StoreError> {
        let mut pending = Vec::with_capacity(members.len());
        for member in members {
            let locked = self.wallets.get(&(pool_id, *member)).ok_or_else(unlocked)?;
            // A member without an account has no channel of their own to hear it on.
            let Some(user_id) = locked.user_id else { continue };
            let Wallet { balance, held } = locked.wallet;
            let data = balance_changed(locked.guild_id, pool_id, *member, balance, held)
                .ok_or_else(|| StoreError::Corrupt("available overflows".into()))?;
            pending.push(Pending::next(user_channel(user_id), EventName::BalanceChanged, data));
        }
        Ok(pending)
    }

    /// Adds the writes of every entry posted: the entries, their postings and
    /// the accounts' new balances.
    pub fn add_writes(self, writes: &mut Writes) {
        add_entry_writes(writes, self.entries);
        writes.add(INSERT_POSTINGS, Rows::of(self.lines.into_iter()));
        writes.add(UPDATE_BALANCES, Rows::of(self.balances.into_iter()));
    }

    /// Writes every entry posted; a second reversal of one entry is refused here.
    pub async fn write(self, tx: &mut Tx) -> Result<(), StoreError> {
        let mut writes = Writes::default();
        self.add_writes(&mut writes);
        run_writes(tx, writes).await
    }
}

/// Adds the rows of `entries`, each with its guild.
fn add_entry_writes(writes: &mut Writes, entries: Vec<(Uuid, Entry)>) {
    let rows = entries.into_iter().map(|(guild_id, e)| {
        let kind = e.kind.as_str().to_owned();
        (e.id, guild_id, e.pool_id, kind, e.reason, e.created_at, e.created_by, e.reverses, e.raid_id)
    });
    writes.add(INSERT_ENTRIES, Rows::of(rows));
}

/// Writes an entry's row alone (its postings and balances written by the
/// caller); a second reversal of one entry is refused here.
pub(super) async fn insert_entry(tx: &mut Tx, guild_id: Uuid, entry: &Entry) -> Result<(), StoreError> {
    let mut writes = Writes::default();
    add_entry_writes(&mut writes, vec![(guild_id, entry.clone())]);
    run_writes(tx, writes).await
}

/// Runs the writes of a book (and what was added beside them): a second
/// reversal of one entry is refused here.
pub(super) async fn run_writes(tx: &mut Tx, writes: Writes) -> Result<(), StoreError> {
    match writes.run(tx).await {
        Err(error) if super::idempotency::kept_first(&error) => Err(StoreError::Raced),
        done => done.on_unique("entries_reverses_key", "entries.reverses", Code::AlreadyReversed),
    }
}

const INSERT_ENTRIES: &str = "INSERT INTO entries \
     (id, guild_id, pool_id, kind, reason, created_at, created_by, reverses, raid_id) SELECT * FROM {rows}";

const INSERT_POSTINGS: &str = "INSERT INTO postings (entry_id, account_id, amount, line) SELECT * FROM {rows}";

const UPDATE_BALANCES: &str = "UPDATE accounts SET balance = v.column2 FROM {rows} WHERE accounts.id = v.column1";

/// An account the book moved but never locked: a fault of the book's own.
fn unlocked() -> StoreError {
    StoreError::Corrupt("an entry moved an account its book did not lock".into())
}

/// Locks, in one statement and in account-id order, the system accounts
/// `(pool, system)` and reads their balances.
async fn lock_systems(
    tx: &mut Tx,
    wanted: &BTreeSet<(Uuid, SystemAccount)>,
) -> Result<BTreeMap<(Uuid, SystemAccount), (Uuid, Points)>, StoreError> {
    if wanted.is_empty() {
        return Ok(BTreeMap::new());
    }
    // SQLite has no row locks: its writer holds the whole database already.
    let lock = if tx.backend() == Backend::Postgres { " FOR UPDATE OF a" } else { "" };
    let pairs = Rows::of(wanted.iter().map(|(pool, system)| (*pool, system.as_str().to_owned())));
    let sql = format!(
        "SELECT a.id, a.pool_id, a.system, a.balance FROM {} \
         JOIN accounts a ON a.pool_id = v.column1 AND a.system = v.column2 ORDER BY a.id{lock}",
        pairs.relation(tx.backend(), 1)
    );
    let mut systems = BTreeMap::new();
    for row in tx.sql_built(sql).bind_rows(pairs).fetch_all().await? {
        let system: String = row.get("system")?;
        let system =
            SystemAccount::parse(&system).ok_or_else(|| StoreError::Corrupt(format!("system account {system:?}")))?;
        systems.insert((row.get("pool_id")?, system), (row.get("id")?, Points::from_stored(row.get("balance")?)));
    }
    Ok(systems)
}
