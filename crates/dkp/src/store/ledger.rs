//! Entries and the ledger write (seed risk R1).
//!
//! A ledger write locks what it touches in one fixed order, member accounts
//! by account id and then the pool's system accounts, so two writers never
//! wait on each other in a cycle; it checks the new balances with `dkp-core`
//! and writes the entry, its postings, the balances, the audit row and the
//! idempotency record in one transaction. The moves that wait for the
//! instance's turn together share that transaction (`record_entries`): each
//! is posted in one `Book` against what the ones before it left, and a move
//! refused for its own fault is refused alone.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use dkp_core::ledger::{self, Wallet};
use dkp_core::{AccountRef, EntryKind, Points, Posting, SystemAccount};
use uuid::Uuid;

use super::audit::{AuditWrite, add_audit_writes, paginate};
use super::book::{Book, run_writes};
use super::events::add_event_writes;
use super::idempotency::{add_kept, replay_all};
use super::pools::pool;
use super::retry::retry;
use super::sql::{Backend, Db, Row, Rows, Tx, Writes};
use super::{Ctx, Read, Store, StoreError};
use crate::model::{
    Answer, Code, Entry, EntryCommand, EntryPosting, EntryRequest, Event, IdempotencyClaim, Page, PageRequest, Recorded,
};

fn entry_of(row: &Row) -> Result<Entry, StoreError> {
    let kind: String = row.get("kind")?;
    Ok(Entry {
        id: row.get("id")?,
        pool_id: row.get("pool_id")?,
        kind: EntryKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("entry kind {kind:?}")))?,
        reason: row.get("reason")?,
        created_at: row.get("created_at")?,
        created_by: row.get("created_by")?,
        reverses: row.get("reverses")?,
        raid_id: row.get("raid_id")?,
        postings: Vec::new(),
    })
}

fn posting_of(row: &Row) -> Result<EntryPosting, StoreError> {
    let member: Option<Uuid> = row.get("member_id")?;
    let system: Option<String> = row.get("system")?;
    let account = match (member, system.as_deref().and_then(SystemAccount::parse)) {
        (Some(member), _) => AccountRef::Member(member),
        (None, Some(system)) => AccountRef::System(system),
        (None, None) => return Err(StoreError::Corrupt("a posting without an account".into())),
    };
    Ok(EntryPosting { account, amount: Points::from_stored(row.get("amount")?) })
}

async fn entry(db: &Db, guild_id: Uuid, entry_id: Uuid) -> Result<Option<Entry>, StoreError> {
    let Some(row) = db
        .sql(
            "SELECT e.id, e.pool_id, e.kind, e.reason, e.created_at, e.created_by, e.reverses, e.raid_id FROM entries e \
              WHERE e.guild_id = $1 AND e.id = $2",
        )
        .bind(guild_id)
        .bind(entry_id)
        .fetch_optional()
        .await?
    else {
        return Ok(None);
    };
    let mut entry = entry_of(&row)?;
    entry.postings = db
        .sql(
            "SELECT p.entry_id, a.member_id, a.system, p.amount FROM postings p JOIN accounts a ON a.id = p.account_id \
              WHERE a.guild_id = $1 AND p.entry_id = $2 ORDER BY p.line",
        )
        .bind(guild_id)
        .bind(entry_id)
        .fetch_all()
        .await?
        .iter()
        .map(posting_of)
        .collect::<Result<_, _>>()?;
    Ok(Some(entry))
}

async fn entries(
    db: &Db,
    guild_id: Uuid,
    pool_id: Uuid,
    member_id: Option<Uuid>,
    page: PageRequest,
) -> Result<Page<Entry>, StoreError> {
    pool(db, guild_id, pool_id).await?;
    let rows = db
        .sql(
            "SELECT e.id, e.pool_id, e.kind, e.reason, e.created_at, e.created_by, e.reverses, e.raid_id FROM entries e \
             WHERE e.guild_id = $1 AND e.pool_id = $2 AND ($3 IS NULL OR e.id < $3) \
             AND ($4 IS NULL OR EXISTS (SELECT 1 FROM postings p JOIN accounts a ON a.id = p.account_id \
                                        WHERE p.entry_id = e.id AND a.member_id = $4)) \
             ORDER BY e.id DESC LIMIT $5",
        )
        .bind(guild_id)
        .bind(pool_id)
        .bind(page.before)
        .bind(member_id)
        .bind(i64::from(page.limit) + 1)
        .fetch_all()
        .await?;
    let mut page = paginate(rows.iter().map(entry_of).collect::<Result<Vec<_>, _>>()?, page, |e| e.id);
    let (Some(newest), Some(oldest)) = (page.items.first().map(|e| e.id), page.items.last().map(|e| e.id)) else {
        return Ok(page);
    };
    // The postings of every entry in the page's id range, in one read.
    let rows = db
        .sql(
            "SELECT p.entry_id, a.member_id, a.system, p.amount FROM postings p \
              JOIN entries e ON e.id = p.entry_id JOIN accounts a ON a.id = p.account_id \
              WHERE e.guild_id = $1 AND e.pool_id = $2 AND e.id >= $3 AND e.id <= $4 ORDER BY p.entry_id, p.line",
        )
        .bind(guild_id)
        .bind(pool_id)
        .bind(oldest)
        .bind(newest)
        .fetch_all()
        .await?;
    let mut postings: HashMap<Uuid, Vec<EntryPosting>> = HashMap::new();
    for row in &rows {
        postings.entry(row.get("entry_id")?).or_default().push(posting_of(row)?);
    }
    for entry in &mut page.items {
        entry.postings = postings.remove(&entry.id).unwrap_or_default();
    }
    Ok(page)
}

/// A ledger entry asked for, with who asked and when.
pub struct EntryJob {
    pub command: EntryCommand,
    pub ctx: Ctx,
}

/// What each of a batch of entries came to: written, replayed, or refused.
type Outcomes = Vec<Result<Recorded<Entry>, StoreError>>;

/// One try at writing entries in one transaction (`retry` runs it again on
/// a serialization failure): the answers kept under their keys, the pools,
/// each request's postings, then every entry posted in one book. An entry
/// refused for a fault of its own leaves the others be; any other failure
/// fails them all.
async fn record_entries(db: &Db, jobs: &[(&EntryCommand, &Ctx)]) -> Result<Outcomes, StoreError> {
    let mut tx = db.begin_write_in_lane().await?;
    let claims: Vec<&IdempotencyClaim> = jobs.iter().filter_map(|(command, _)| command.idempotency.as_ref()).collect();
    let mut kept = replay_all(&mut tx, &claims).await?.into_iter();
    let mut results: Vec<Option<Result<Recorded<Entry>, StoreError>>> = Vec::with_capacity(jobs.len());
    for (command, _) in jobs {
        results.push(match command.idempotency.as_ref().and_then(|_| kept.next()) {
            Some(Ok(kept)) => kept.map(|answer| Ok(Recorded::Replay(answer))),
            Some(Err(error)) if error.is_refusal() => Some(Err(error)),
            Some(Err(error)) => return Err(error),
            None => None,
        });
    }
    let open: Vec<(Uuid, Uuid)> =
        jobs.iter().zip(&results).filter(|(_, r)| r.is_none()).map(|((c, _), _)| (c.guild_id, c.pool_id)).collect();
    let pools = allow_negative(&mut tx, &open).await?;
    let (mut drafts, mut slots) = (Vec::new(), Vec::new());
    for (slot, (command, ctx)) in jobs.iter().enumerate() {
        if results[slot].is_some() {
            continue;
        }
        let drafted = match pools.get(&(command.guild_id, command.pool_id)) {
            Some(&allow_negative) => draft(&mut tx, command, allow_negative).await,
            None => Err(StoreError::NotFound),
        };
        match drafted {
            Ok(draft) => {
                drafts.push((draft, command.idempotency.as_ref(), *ctx));
                slots.push(slot);
            }
            Err(error) if error.is_refusal() => results[slot] = Some(Err(error)),
            Err(error) => return Err(error),
        }
    }
    for (slot, recorded) in slots.into_iter().zip(record_all(&mut tx, drafts).await?) {
        results[slot] = Some(recorded.map(|(entry, events)| Recorded::Fresh(entry, events)));
    }
    tx.commit().await?;
    Ok(results.into_iter().map(|r| r.unwrap_or_else(|| Err(unanswered()))).collect())
}

fn unanswered() -> StoreError {
    StoreError::Corrupt("an entry went unanswered".into())
}

/// Whether each `(guild, pool)` pool allows negative balances; a pool its
/// guild does not have is missing.
async fn allow_negative(tx: &mut Tx, pools: &[(Uuid, Uuid)]) -> Result<HashMap<(Uuid, Uuid), bool>, StoreError> {
    if pools.is_empty() {
        return Ok(HashMap::new());
    }
    let pairs = Rows::of(pools.iter().copied());
    let sql = format!(
        "SELECT p.guild_id, p.id, p.allow_negative FROM {} JOIN pools p ON p.guild_id = v.column1 AND p.id = v.column2",
        pairs.relation(tx.backend(), 1)
    );
    let mut found = HashMap::new();
    for row in tx.sql_built(sql).bind_rows(pairs).fetch_all().await? {
        found.insert((row.get("guild_id")?, row.get("id")?), row.get("allow_negative")?);
    }
    Ok(found)
}

/// Writes the entry a command asks for inside `tx` (in the write lane), with
/// its audit row, its kept answer and its events: what every point-moving
/// write does between its opening and its commit.
pub(super) async fn write_entry(
    tx: &mut Tx,
    command: &EntryCommand,
    ctx: &Ctx,
) -> Result<(Entry, Vec<Event>), StoreError> {
    let pools = allow_negative(tx, &[(command.guild_id, command.pool_id)]).await?;
    let allow_negative = pools.get(&(command.guild_id, command.pool_id)).copied().ok_or(StoreError::NotFound)?;
    let draft = draft(tx, command, allow_negative).await?;
    record(tx, draft, command.idempotency.as_ref(), ctx).await
}

/// The entry a command asks for, about to be written.
async fn draft(tx: &mut Tx, command: &EntryCommand, allow_negative: bool) -> Result<Draft, StoreError> {
    let Plan { postings, reverses, raid_id } = plan(tx, command).await?;
    Ok(Draft {
        guild_id: command.guild_id,
        pool_id: command.pool_id,
        kind: command.request.kind(),
        reason: command.reason.clone(),
        created_by: command.actor_member,
        reverses,
        raid_id,
        postings,
        allow_negative,
    })
}

/// Writes an entry someone asked for inside `tx` (`post`), with its audit
/// row, the answer kept under its key, and its `balance_changed` events.
pub(super) async fn record(
    tx: &mut Tx,
    draft: Draft,
    claim: Option<&IdempotencyClaim>,
    ctx: &Ctx,
) -> Result<(Entry, Vec<Event>), StoreError> {
    record_all(tx, vec![(draft, claim, ctx)]).await?.pop().unwrap_or_else(|| Err(unanswered()))
}

/// Writes entries asked for inside `tx`, each with its audit row, the answer
/// kept under its key and its `balance_changed` events: all posted in one
/// book, each against the wallets as the ones before it left them, and
/// written together. An entry refused for a fault of its own is left out.
pub(super) async fn record_all(
    tx: &mut Tx,
    drafts: Vec<(Draft, Option<&IdempotencyClaim>, &Ctx)>,
) -> Result<Vec<Result<(Entry, Vec<Event>), StoreError>>, StoreError> {
    let Some(first) = drafts.first().map(|(_, _, ctx)| *ctx) else { return Ok(Vec::new()) };
    let mut book =
        Book::open(tx, drafts.iter().map(|(draft, _, _)| (draft.pool_id, draft.postings.as_slice()))).await?;
    let (mut posted, mut pending, mut audits) = (Vec::new(), Vec::new(), Vec::new());
    for (draft, claim, ctx) in drafts {
        let guild_id = draft.guild_id;
        match book.post(draft, ctx) {
            Ok(entry) => {
                let events = book.balance_events(entry.pool_id, &entry.members())?;
                let action = audit_action(entry.kind);
                audits.push(AuditWrite::new(ctx, Some(guild_id), action, "entry", entry.id).after(&entry));
                posted.push(Ok((entry, events.len(), claim, ctx)));
                pending.extend(events);
            }
            Err(error) if error.is_refusal() => posted.push(Err(error)),
            Err(error) => return Err(error),
        }
    }
    let events = super::events::number(tx, pending).await?;
    let mut writes = Writes::default();
    book.add_writes(&mut writes);
    add_audit_writes(&mut writes, audits);
    add_event_writes(&mut writes, &events, first);
    let kept: Vec<(&IdempotencyClaim, Answer)> = posted
        .iter()
        .filter_map(|outcome| match outcome {
            Ok((entry, _, Some(claim), _)) => Some((*claim, Answer::Entry(entry.clone()))),
            _ => None,
        })
        .collect();
    add_kept(&mut writes, kept.iter().map(|(claim, answer)| (*claim, answer)), first);
    run_writes(tx, writes).await?;
    let mut events = events.into_iter();
    let mut results = Vec::with_capacity(posted.len());
    for outcome in posted {
        results.push(match outcome {
            Ok((entry, count, _, _)) => Ok((entry, events.by_ref().take(count).collect())),
            Err(error) => Err(error),
        });
    }
    Ok(results)
}

/// An entry about to be written.
pub(super) struct Draft {
    pub guild_id: Uuid,
    pub pool_id: Uuid,
    pub kind: EntryKind,
    pub reason: String,
    pub created_by: Uuid,
    pub reverses: Option<Uuid>,
    pub raid_id: Option<Uuid>,
    pub postings: Vec<Posting<Uuid>>,
    pub allow_negative: bool,
}

/// Writes an entry inside `tx`: locks the accounts it moves, checks the new
/// balances with `dkp-core`, and writes the entry, its postings and the
/// balances (see `Book`).
pub(super) async fn post(tx: &mut Tx, draft: Draft, ctx: &Ctx) -> Result<Entry, StoreError> {
    let mut book = Book::open(tx, [(draft.pool_id, draft.postings.as_slice())]).await?;
    let entry = book.post(draft, ctx)?;
    book.write(tx).await?;
    Ok(entry)
}

/// What a request writes: its postings, and for a reversal the entry it
/// reverses and that entry's raid (the reversal of a raid's award is part
/// of what the raid has paid).
struct Plan {
    postings: Vec<Posting<Uuid>>,
    reverses: Option<Uuid>,
    raid_id: Option<Uuid>,
}

impl From<Vec<Posting<Uuid>>> for Plan {
    fn from(postings: Vec<Posting<Uuid>>) -> Plan {
        Plan { postings, reverses: None, raid_id: None }
    }
}

/// The postings a request makes, and the entry it reverses if it is a reversal.
async fn plan(tx: &mut Tx, command: &EntryCommand) -> Result<Plan, StoreError> {
    Ok(match &command.request {
        EntryRequest::Award { member_ids, amount } => ledger::award(member_ids, *amount)?.into(),
        EntryRequest::Adjustment { member_id, amount } => ledger::adjustment(*member_id, *amount)?.into(),
        EntryRequest::Transfer { from, to, amount } => ledger::transfer(*from, *to, *amount)?.into(),
        EntryRequest::Decay { percent } => {
            let members: BTreeSet<Uuid> = tx
                .sql("SELECT member_id FROM accounts WHERE guild_id = $1 AND pool_id = $2 AND member_id IS NOT NULL")
                .bind(command.guild_id)
                .bind(command.pool_id)
                .fetch_all()
                .await?
                .iter()
                .map(|row| row.get("member_id"))
                .collect::<Result<_, _>>()?;
            let balances: BTreeMap<Uuid, Points> = lock_wallets(tx, command.pool_id, &members)
                .await?
                .into_iter()
                .map(|(member, locked)| (member, locked.wallet.balance))
                .collect();
            ledger::decay(&balances, *percent)?.into()
        }
        EntryRequest::Reversal { entry_id } => {
            let original = tx
                .sql(
                    "SELECT reverses, raid_id, (SELECT COUNT(*) FROM entries r WHERE r.reverses = e.id) AS reversals \
                      FROM entries e WHERE e.guild_id = $1 AND e.pool_id = $2 AND e.id = $3",
                )
                .bind(command.guild_id)
                .bind(command.pool_id)
                .bind(*entry_id)
                .fetch_optional()
                .await?
                .ok_or(StoreError::NotFound)?;
            if original.get::<Option<Uuid>>("reverses")?.is_some() {
                return Err(StoreError::Conflict(Code::NotReversible));
            }
            let row_raid: Option<Uuid> = original.get("raid_id")?;
            if original.get::<i64>("reversals")? > 0 {
                return Err(StoreError::Conflict(Code::AlreadyReversed));
            }
            let rows = tx
                .sql("SELECT p.entry_id, a.member_id, a.system, p.amount FROM postings p JOIN accounts a ON a.id = p.account_id \
                      WHERE a.pool_id = $1 AND p.entry_id = $2 ORDER BY p.line")
                .bind(command.pool_id)
                .bind(*entry_id)
                .fetch_all()
                .await?;
            let original: Vec<Posting<Uuid>> = rows
                .iter()
                .map(|row| posting_of(row).map(|p| Posting { account: p.account, amount: p.amount }))
                .collect::<Result<_, _>>()?;
            Plan { postings: ledger::reversal(&original)?, reverses: Some(*entry_id), raid_id: row_raid }
        }
    })
}

/// Locks, in one statement and in account-id order, the accounts of
/// `members` in the pool and reads their wallets, by member id. A member
/// with no account in the pool is missing from the map.
pub(super) async fn lock_wallets(
    tx: &mut Tx,
    pool_id: Uuid,
    members: &BTreeSet<Uuid>,
) -> Result<BTreeMap<Uuid, LockedWallet>, StoreError> {
    let wanted: Vec<(Uuid, Uuid)> = members.iter().map(|member| (pool_id, *member)).collect();
    let locked = lock_wallets_in(tx, &wanted).await?;
    Ok(locked.into_iter().map(|((_, member), locked)| (member, locked)).collect())
}

/// A member's account locked for a write, with what its events need.
pub(super) struct LockedWallet {
    pub account: Uuid,
    pub wallet: Wallet,
    pub guild_id: Uuid,
    /// The member's user, whose own channel hears of the wallet (none for a
    /// member without an account).
    pub user_id: Option<Uuid>,
    /// Whether the member is on the roster.
    pub active: bool,
}

/// Locks, in one statement and in account-id order (the one order every
/// writer locks accounts in), the accounts of `(pool, member)` pairs of any
/// pools, and reads their wallets. A pair with no account is missing. (The
/// pairs are joined as a list of values: planned at once, where `(a, b) IN
/// (…)` costs the planner one index probe per pair.)
pub(super) async fn lock_wallets_in(
    tx: &mut Tx,
    wanted: &[(Uuid, Uuid)],
) -> Result<BTreeMap<(Uuid, Uuid), LockedWallet>, StoreError> {
    if wanted.is_empty() {
        return Ok(BTreeMap::new());
    }
    // SQLite has no row locks: its writer holds the whole database already.
    let locks = tx.backend() == Backend::Postgres && !super::gate::bids_unlocked();
    let lock = if locks { " FOR UPDATE OF a" } else { "" };
    let pairs = Rows::of(wanted.iter().copied());
    let sql = format!(
        concat!(
            "SELECT a.id, a.guild_id, a.pool_id, a.member_id, m.user_id, m.active, a.balance, ",
            held_sql!(),
            " FROM {} JOIN accounts a ON a.pool_id = v.column1 AND a.member_id = v.column2 \
             JOIN members m ON m.id = a.member_id ORDER BY a.id{}"
        ),
        pairs.relation(tx.backend(), 1),
        lock
    );
    let statement = tx.sql_built(sql).bind_rows(pairs);
    let mut wallets = BTreeMap::new();
    for row in statement.fetch_all().await? {
        let wallet =
            Wallet { balance: Points::from_stored(row.get("balance")?), held: Points::from_stored(row.get("held")?) };
        let locked = LockedWallet {
            account: row.get("id")?,
            wallet,
            guild_id: row.get("guild_id")?,
            user_id: row.get("user_id")?,
            active: row.get("active")?,
        };
        wallets.insert((row.get("pool_id")?, row.get("member_id")?), locked);
    }
    Ok(wallets)
}

/// Adds `amount` to a system account of the pool (checked: an overflow is
/// refused like any other) and returns the account's id.
pub(super) async fn credit_system(
    tx: &mut Tx,
    pool_id: Uuid,
    system: SystemAccount,
    amount: Points,
) -> Result<Uuid, StoreError> {
    const SELECT: &str = "SELECT id, balance FROM accounts WHERE pool_id = $1 AND system = $2";
    const LOCK: &str = "SELECT id, balance FROM accounts WHERE pool_id = $1 AND system = $2 FOR UPDATE";
    let sql = if tx.backend() == Backend::Postgres { LOCK } else { SELECT };
    let row = tx.sql(sql).bind(pool_id).bind(system.as_str()).fetch_one().await?;
    let id: Uuid = row.get("id")?;
    let balance = Points::from_stored(row.get("balance")?).checked_add(amount).map_err(dkp_core::LedgerError::from)?;
    tx.sql("UPDATE accounts SET balance = $1 WHERE id = $2").bind(balance.hundredths()).bind(id).execute().await?;
    Ok(id)
}

/// The audit action of an entry of `kind`.
fn audit_action(kind: EntryKind) -> &'static str {
    match kind {
        EntryKind::Award => "entry.award",
        EntryKind::Adjustment => "entry.adjustment",
        EntryKind::Transfer => "entry.transfer",
        EntryKind::Reversal => "entry.reversal",
        EntryKind::Decay => "entry.decay",
        EntryKind::Settlement => "entry.settlement",
        EntryKind::Raid => "entry.raid",
        EntryKind::RaidCorrection => "entry.raid_correction",
        EntryKind::Import => "entry.import",
    }
}

impl Store {
    pub async fn entry(&self, guild_id: Uuid, entry_id: Uuid) -> Result<Option<Entry>, StoreError> {
        entry(&self.db, guild_id, entry_id).await
    }

    pub async fn entries(
        &self,
        guild_id: Uuid,
        pool_id: Uuid,
        member_id: Option<Uuid>,
        page: PageRequest,
        read: Read,
    ) -> Result<Page<Entry>, StoreError> {
        self.read(read, |db| entries(db, guild_id, pool_id, member_id, page)).await
    }

    /// Writes one ledger entry, or replays the answer kept under its idempotency key.
    pub async fn record_entry(&self, command: &EntryCommand, ctx: &Ctx) -> Result<Recorded<Entry>, StoreError> {
        let _turn = self.gate.enter().await?;
        self.record_alone(command, ctx).await
    }

    async fn record_alone(&self, command: &EntryCommand, ctx: &Ctx) -> Result<Recorded<Entry>, StoreError> {
        let one = [(command, ctx)];
        let mut results = retry(command.request.kind().as_str(), || record_entries(&self.db, &one)).await?;
        results.pop().unwrap_or_else(|| Err(unanswered()))
    }

    /// Writes many ledger entries in one transaction, each one's answer (or
    /// its kept one) in the order given: they share one durable commit. Only
    /// moves come here (awards, adjustments, transfers, reversals): a decay
    /// reads what it decays from the database, and goes alone
    /// (`record_entry`). When the batch fails as a whole, each entry is
    /// tried alone, so one entry's fault is never another's.
    pub async fn record_entries(&self, jobs: &[EntryJob]) -> Outcomes {
        let _turn = match self.gate.enter().await {
            Ok(turn) => turn,
            Err(_) => return jobs.iter().map(|_| Err(StoreError::Overloaded)).collect(),
        };
        let all: Vec<(&EntryCommand, &Ctx)> = jobs.iter().map(|job| (&job.command, &job.ctx)).collect();
        // Commits are counted by kind: a batch of several kinds as `moves`.
        let mut kinds = jobs.iter().map(|job| job.command.request.kind().as_str());
        let first = kinds.next().unwrap_or("moves");
        let op = if kinds.all(|kind| kind == first) { first } else { "moves" };
        match retry(op, || record_entries(&self.db, &all)).await {
            Ok(results) => results,
            Err(error) if jobs.len() == 1 => vec![Err(error)],
            Err(_) => {
                let mut results = Vec::with_capacity(jobs.len());
                for (command, ctx) in all {
                    results.push(self.record_alone(command, ctx).await);
                }
                results
            }
        }
    }
}
