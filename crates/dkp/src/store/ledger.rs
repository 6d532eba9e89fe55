//! Entries and the ledger write (seed risk R1).
//!
//! A ledger write locks what it touches in one fixed order, member accounts
//! by account id and then the pool's system accounts, so two writers never
//! wait on each other in a cycle; it checks the new balances with `dkp-core`
//! and writes the entry, its postings, the balances, the audit row and the
//! idempotency record in one transaction.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use dkp_core::ledger::{self, Check, Wallet};
use dkp_core::{AccountRef, EntryKind, Points, Posting, SystemAccount};
use uuid::Uuid;

use super::audit::{AuditWrite, OnUnique, audit, paginate};
use super::idempotency::{remember, replay};
use super::pools::pool;
use super::retry::retry;
use super::sql::{Backend, Db, Row, Rows, Tx};
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

/// One try at writing an entry; `retry` runs it again on a serialization failure.
async fn record_entry(db: &Db, command: &EntryCommand, ctx: &Ctx) -> Result<Recorded<Entry>, StoreError> {
    let mut tx = db.begin_write_in_lane().await?;
    if let Some(claim) = &command.idempotency {
        if let Some(answer) = replay(&mut tx, claim).await? {
            return Ok(Recorded::Replay(answer));
        }
    }
    let (entry, events) = write_entry(&mut tx, command, ctx).await?;
    tx.commit().await?;
    Ok(Recorded::Fresh(entry, events))
}

/// Writes the entry a command asks for inside `tx` (in the write lane), with
/// its audit row, its kept answer and its events: what every point-moving
/// write does between its opening and its commit.
pub(super) async fn write_entry(
    tx: &mut Tx,
    command: &EntryCommand,
    ctx: &Ctx,
) -> Result<(Entry, Vec<Event>), StoreError> {
    let allow_negative: bool = tx
        .sql("SELECT allow_negative FROM pools WHERE guild_id = $1 AND id = $2")
        .bind(command.guild_id)
        .bind(command.pool_id)
        .fetch_optional()
        .await?
        .ok_or(StoreError::NotFound)?
        .get("allow_negative")?;
    let Plan { postings, reverses, raid_id } = plan(tx, command).await?;
    let draft = Draft {
        guild_id: command.guild_id,
        pool_id: command.pool_id,
        kind: command.request.kind(),
        reason: command.reason.clone(),
        created_by: command.actor_member,
        reverses,
        raid_id,
        postings,
        allow_negative,
    };
    record(tx, draft, command.idempotency.as_ref(), ctx).await
}

/// Writes an entry someone asked for inside `tx` (`post`), with its audit
/// row, the answer kept under its key, and its `balance_changed` events.
pub(super) async fn record(
    tx: &mut Tx,
    draft: Draft,
    claim: Option<&IdempotencyClaim>,
    ctx: &Ctx,
) -> Result<(Entry, Vec<Event>), StoreError> {
    let guild_id = draft.guild_id;
    let entry = post(tx, draft, ctx).await?;
    let action = audit_action(entry.kind);
    audit(tx, AuditWrite::new(ctx, Some(guild_id), action, "entry", entry.id).after(&entry)).await?;
    if let Some(claim) = claim {
        remember(tx, claim, &Answer::Entry(entry.clone()), ctx).await?;
    }
    let pending = super::events::balance_changes(tx, entry.pool_id, &entry.members()).await?;
    let events = super::events::append(tx, pending, ctx).await?;
    Ok((entry, events))
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

/// Writes an entry inside `tx`: locks the member accounts it touches in
/// account-id order, checks the new balances with `dkp-core`, and writes the
/// entry, its postings and the balances.
pub(super) async fn post(tx: &mut Tx, draft: Draft, ctx: &Ctx) -> Result<Entry, StoreError> {
    let members: BTreeSet<Uuid> = draft
        .postings
        .iter()
        .filter_map(|p| match &p.account {
            AccountRef::Member(id) => Some(*id),
            AccountRef::System(_) => None,
        })
        .collect();
    let locked = lock_wallets(tx, draft.pool_id, &members).await?;
    if locked.len() < members.len() {
        return Err(StoreError::UnknownReference("member_id"));
    }
    if draft.kind.names_members() && locked.values().any(|locked| !locked.active) {
        return Err(StoreError::Conflict(Code::MemberInactive));
    }
    let accounts: BTreeMap<Uuid, Uuid> = locked.iter().map(|(member, locked)| (*member, locked.account)).collect();
    let wallets: BTreeMap<Uuid, Wallet> = locked.iter().map(|(member, locked)| (*member, locked.wallet)).collect();
    let balances = ledger::apply(&draft.postings, &wallets, Check::of(draft.kind, draft.allow_negative))?;

    let entry = Entry {
        id: Uuid::now_v7(),
        pool_id: draft.pool_id,
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
    insert_entry(tx, draft.guild_id, &entry).await?;
    let moved = Rows::of(balances.iter().map(|(member, balance)| (accounts[member], balance.hundredths())));
    if !moved.is_empty() {
        let sql = format!(
            "UPDATE accounts SET balance = v.column2 FROM {} WHERE accounts.id = v.column1",
            moved.relation(tx.backend(), 1)
        );
        tx.sql_built(sql).bind_rows(moved).execute().await?;
    }
    let mut lines = Vec::with_capacity(draft.postings.len());
    for (line, posting) in draft.postings.iter().enumerate() {
        let account = match &posting.account {
            AccountRef::Member(member) => accounts[member],
            AccountRef::System(system) => credit_system(tx, draft.pool_id, *system, posting.amount).await?,
        };
        let line = i64::try_from(line).map_err(|_| StoreError::Corrupt("too many postings".into()))?;
        lines.push((entry.id, account, posting.amount.hundredths(), line));
    }
    if lines.is_empty() {
        return Ok(entry);
    }
    let lines = Rows::of(lines.into_iter());
    let sql = format!(
        "INSERT INTO postings (entry_id, account_id, amount, line) SELECT * FROM {}",
        lines.relation(tx.backend(), 1)
    );
    tx.sql_built(sql).bind_rows(lines).execute().await?;
    Ok(entry)
}

/// Writes an entry's row; a second reversal of one entry is refused here.
pub(super) async fn insert_entry(tx: &mut Tx, guild_id: Uuid, entry: &Entry) -> Result<(), StoreError> {
    tx.sql(
        "INSERT INTO entries (id, guild_id, pool_id, kind, reason, created_at, created_by, reverses, raid_id) \
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(entry.id)
    .bind(guild_id)
    .bind(entry.pool_id)
    .bind(entry.kind.as_str())
    .bind(entry.reason.as_str())
    .bind(entry.created_at)
    .bind(entry.created_by)
    .bind(entry.reverses)
    .bind(entry.raid_id)
    .execute()
    .await
    .on_unique("entries_reverses_key", "entries.reverses", Code::AlreadyReversed)?;
    Ok(())
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
    let lock = if tx.backend() == Backend::Postgres { " FOR UPDATE OF a" } else { "" };
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
        retry(command.request.kind().as_str(), || record_entry(&self.db, command, ctx)).await
    }
}
