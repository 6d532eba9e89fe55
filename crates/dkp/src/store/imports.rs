//! Imports: another tool's players and balances written into a pool in one
//! transaction in the write lane, or not at all.
//!
//! Inside the transaction: the file's hash is looked up (a file imported
//! into the pool before writes nothing and answers its kept report), the
//! players are matched to the roster (`matching`), new members (without
//! accounts) get their accounts in every pool and their characters, and one
//! `import` entry moves each member of the file from the balance they hold
//! to the one the file gives (`dkp_core::ledger::import`), its postings
//! summing to zero against the pool's issued account. Rows go in with a
//! statement per `CHUNK` rows, never one per row: a file of 10,000 players
//! is a few dozen statements.

mod matching;

use std::collections::{BTreeMap, BTreeSet};

use dkp_core::ledger::{self, Check, Wallet};
use dkp_core::roster::fold;
use dkp_core::{AccountRef, EntryKind, Points};
use uuid::Uuid;

use super::audit::{AuditWrite, audit};
use super::book::insert_entry;
use super::ledger::{credit_system, lock_wallets};
use super::pools::pool;
use super::retry::retry;
use super::sql::{Db, Row, Tx, value_rows};
use super::{Ctx, Store, StoreError};
use crate::model::{Entry, EntryPosting, Event, ImportCommand, ImportReport, Imported, ImportedPlayer, RosterCounts};
use matching::{Matching, Roster, Target, match_players};

/// Rows per statement (at most 11 values each: well within both databases' limits).
const CHUNK: usize = 500;

const MEMBERS: &str = "SELECT id, name_folded FROM members WHERE guild_id = $1";
const CHARACTERS: &str = "SELECT member_id, name_folded, realm_folded, main FROM characters WHERE guild_id = $1";
const KEPT: &str = "SELECT report FROM imports WHERE pool_id = $1 AND content_hash = $2";

/// What a dry run finds: the report kept if the file went in before, how
/// the file meets the roster, and whether a balance would move.
#[derive(Debug)]
pub struct ImportPreview {
    pub already: Option<ImportReport>,
    pub roster: RosterCounts,
    pub entries: u64,
}

fn roster_of(members: &[Row], characters: &[Row]) -> Result<Roster, StoreError> {
    let mut roster = Roster::default();
    for row in members {
        roster.members.insert(row.get("name_folded")?, row.get("id")?);
    }
    for row in characters {
        let member: Uuid = row.get("member_id")?;
        roster.characters.insert((row.get("name_folded")?, row.get("realm_folded")?), member);
        if row.get::<bool>("main")? {
            roster.with_main.insert(member);
        }
    }
    Ok(roster)
}

fn kept(row: Option<Row>) -> Result<Option<ImportReport>, StoreError> {
    row.map(|row| {
        let text: String = row.get("report")?;
        serde_json::from_str(&text).map_err(|error| StoreError::Corrupt(format!("an import's report: {error}")))
    })
    .transpose()
}

fn matched(players: &[ImportedPlayer], roster: &Roster) -> Result<Matching, StoreError> {
    match_players(players, roster).map_err(|error| StoreError::Ledger(error.into()))
}

async fn preview(
    db: &Db,
    guild_id: Uuid,
    pool_id: Uuid,
    content_hash: &[u8],
    players: &[ImportedPlayer],
) -> Result<ImportPreview, StoreError> {
    pool(db, guild_id, pool_id).await?;
    let already = kept(db.sql(KEPT).bind(pool_id).bind(content_hash.to_vec()).fetch_optional().await?)?;
    let members = db.sql(MEMBERS).bind(guild_id).fetch_all().await?;
    let characters = db.sql(CHARACTERS).bind(guild_id).fetch_all().await?;
    let matching = matched(players, &roster_of(&members, &characters)?)?;
    let held = super::pools::balances(db, guild_id, pool_id).await?;
    let moves = matching.balances.iter().any(|(target, balance)| match target {
        Target::Existing(member) => held.get(member).copied().unwrap_or(Points::ZERO) != *balance,
        Target::New(_) => *balance != Points::ZERO,
    });
    Ok(ImportPreview { already, roster: matching.counts, entries: u64::from(moves) })
}

/// Members an import adds before the tables' statistics are refreshed.
const FRESH_STATISTICS_AFTER: u64 = 200;

/// One try at the import; `retry` runs it again on a serialization failure.
async fn import(db: &Db, command: &ImportCommand, ctx: &Ctx) -> Result<Imported, StoreError> {
    let mut tx = db.begin_write_in_lane().await?;
    tx.sql("SELECT id FROM pools WHERE guild_id = $1 AND id = $2")
        .bind(command.guild_id)
        .bind(command.pool_id)
        .fetch_optional()
        .await?
        .ok_or(StoreError::NotFound)?;
    let found = tx.sql(KEPT).bind(command.pool_id).bind(command.content_hash.clone()).fetch_optional().await?;
    if let Some(report) = kept(found)? {
        return Ok(Imported::Already(report));
    }
    let members = tx.sql(MEMBERS).bind(command.guild_id).fetch_all().await?;
    let characters = tx.sql(CHARACTERS).bind(command.guild_id).fetch_all().await?;
    let matching = matched(&command.players, &roster_of(&members, &characters)?)?;
    let new_ids = insert_members(&mut tx, command.guild_id, &matching.new_members, ctx).await?;
    let member = |target: &Target| match target {
        Target::Existing(id) => *id,
        Target::New(index) => new_ids[*index],
    };
    insert_characters(&mut tx, command.guild_id, &matching, &member, ctx).await?;
    let targets: BTreeMap<Uuid, Points> = matching.balances.iter().map(|(t, b)| (member(t), *b)).collect();
    let entry = move_balances(&mut tx, command, &targets, ctx).await?;
    let mut report = command.report.clone();
    report.roster = matching.counts;
    report.entries = u64::from(entry.is_some());
    let stored = serde_json::to_string(&report).map_err(|error| StoreError::Corrupt(error.to_string()))?;
    tx.sql(
        "INSERT INTO imports (id, guild_id, pool_id, content_hash, format, report, entry_id, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(Uuid::now_v7())
    .bind(command.guild_id)
    .bind(command.pool_id)
    .bind(command.content_hash.clone())
    .bind(report.format.clone())
    .bind(stored)
    .bind(entry.as_ref().map(|entry| entry.id))
    .bind(command.actor_member)
    .bind(ctx.now)
    .execute()
    .await?;
    let summary = serde_json::json!({"format": report.format, "pool_id": command.pool_id, "roster": report.roster,
        "entry_id": entry.as_ref().map(|entry| entry.id)});
    audit(&mut tx, AuditWrite::new(ctx, Some(command.guild_id), "import", "pool", command.pool_id).after(summary))
        .await?;
    let events = balance_events(&mut tx, command.pool_id, &targets, ctx).await?;
    tx.commit().await?;
    Ok(Imported::Fresh { report, events })
}

/// Adds members without accounts, and their accounts in every pool of the guild.
async fn insert_members(tx: &mut Tx, guild_id: Uuid, names: &[String], ctx: &Ctx) -> Result<Vec<Uuid>, StoreError> {
    let ids: Vec<Uuid> = names.iter().map(|_| Uuid::now_v7()).collect();
    let pools = super::pools::ids(tx, "SELECT id FROM pools WHERE guild_id = $1 ORDER BY id", guild_id).await?;
    let rows: Vec<(Uuid, &String)> = ids.iter().copied().zip(names).collect();
    for chunk in rows.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO members (id, guild_id, user_id, role, created_at, name, name_folded, active) VALUES {}",
            value_rows(1, chunk.len(), 8)
        );
        let mut statement = tx.sql_built(sql);
        for (id, name) in chunk {
            statement = statement.bind(*id).bind(guild_id).bind(None::<Uuid>).bind("member");
            statement = statement.bind(ctx.now).bind((*name).clone()).bind(fold(name)).bind(true);
        }
        statement.execute().await?;
    }
    let accounts: Vec<(Uuid, Uuid)> = pools.iter().flat_map(|pool| ids.iter().map(|id| (*pool, *id))).collect();
    for chunk in accounts.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO accounts (id, guild_id, pool_id, member_id, system, balance) VALUES {}",
            value_rows(1, chunk.len(), 6)
        );
        let mut statement = tx.sql_built(sql);
        for (pool_id, member_id) in chunk {
            statement = statement.bind(Uuid::now_v7()).bind(guild_id).bind(*pool_id).bind(*member_id);
            statement = statement.bind(None::<String>).bind(0_i64);
        }
        statement.execute().await?;
    }
    Ok(ids)
}

async fn insert_characters(
    tx: &mut Tx,
    guild_id: Uuid,
    matching: &Matching,
    member: &impl Fn(&Target) -> Uuid,
    ctx: &Ctx,
) -> Result<(), StoreError> {
    for chunk in matching.new_characters.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO characters (id, guild_id, member_id, name, realm, name_folded, realm_folded, class, spec, main, \
             created_at) VALUES {}",
            value_rows(1, chunk.len(), 11)
        );
        let mut statement = tx.sql_built(sql);
        for (target, character) in chunk {
            let (name_folded, realm_folded) = character.name.key();
            statement = statement.bind(Uuid::now_v7()).bind(guild_id).bind(member(target));
            statement = statement.bind(character.name.name.clone()).bind(character.name.realm.clone());
            statement = statement.bind(name_folded).bind(realm_folded).bind(character.class.clone());
            statement = statement.bind(None::<String>).bind(character.main).bind(ctx.now);
        }
        statement.execute().await?;
    }
    Ok(())
}

/// Writes the one `import` entry that brings every member of the file to
/// their balance; none when no balance moves.
async fn move_balances(
    tx: &mut Tx,
    command: &ImportCommand,
    targets: &BTreeMap<Uuid, Points>,
    ctx: &Ctx,
) -> Result<Option<Entry>, StoreError> {
    let mut wallets: BTreeMap<Uuid, Wallet> = BTreeMap::new();
    let mut accounts: BTreeMap<Uuid, Uuid> = BTreeMap::new();
    let members: Vec<Uuid> = targets.keys().copied().collect();
    for chunk in members.chunks(CHUNK * 4) {
        let wanted: BTreeSet<Uuid> = chunk.iter().copied().collect();
        for (member, locked) in lock_wallets(tx, command.pool_id, &wanted).await? {
            wallets.insert(member, locked.wallet);
            accounts.insert(member, locked.account);
        }
    }
    if accounts.len() < targets.len() {
        return Err(StoreError::Corrupt("a member of the guild without an account in the pool".into()));
    }
    let mut changes = BTreeMap::new();
    for (member, target) in targets {
        changes.insert(*member, target.checked_sub(wallets[member].balance).map_err(dkp_core::LedgerError::from)?);
    }
    let postings = ledger::import(&changes)?;
    if postings.is_empty() {
        return Ok(None);
    }
    let balances = ledger::apply(&postings, &wallets, Check::of(EntryKind::Import, true))?;
    let entry = Entry {
        id: Uuid::now_v7(),
        pool_id: command.pool_id,
        kind: EntryKind::Import,
        reason: command.reason.clone(),
        created_at: ctx.now,
        created_by: command.actor_member,
        reverses: None,
        raid_id: None,
        postings: postings.iter().map(|p| EntryPosting { account: p.account.clone(), amount: p.amount }).collect(),
    };
    insert_entry(tx, command.guild_id, &entry).await?;
    let mut lines: Vec<(Uuid, i64, i32)> = Vec::with_capacity(postings.len());
    for (line, posting) in postings.iter().enumerate() {
        let account = match &posting.account {
            AccountRef::Member(member) => accounts[member],
            AccountRef::System(system) => credit_system(tx, command.pool_id, *system, posting.amount).await?,
        };
        let line = i32::try_from(line).map_err(|_| StoreError::Corrupt("too many postings".into()))?;
        lines.push((account, posting.amount.hundredths(), line));
    }
    for chunk in lines.chunks(CHUNK) {
        let sql = format!(
            "INSERT INTO postings (entry_id, account_id, amount, line) VALUES {}",
            value_rows(1, chunk.len(), 4)
        );
        let mut statement = tx.sql_built(sql);
        for (account, amount, line) in chunk {
            statement = statement.bind(entry.id).bind(*account).bind(*amount).bind(*line);
        }
        statement.execute().await?;
    }
    let updates: Vec<(Uuid, i64)> = balances.iter().map(|(m, b)| (accounts[m], b.hundredths())).collect();
    for chunk in updates.chunks(CHUNK) {
        let sql = format!(
            "UPDATE accounts SET balance = v.column2 FROM (VALUES {}) AS v WHERE accounts.id = v.column1",
            value_rows(1, chunk.len(), 2)
        );
        let mut statement = tx.sql_built(sql);
        for (account, balance) in chunk {
            statement = statement.bind(*account).bind(*balance);
        }
        statement.execute().await?;
    }
    Ok(Some(entry))
}

/// The `balance_changed` events of the members of the file who have accounts.
async fn balance_events(
    tx: &mut Tx,
    pool_id: Uuid,
    targets: &BTreeMap<Uuid, Points>,
    ctx: &Ctx,
) -> Result<Vec<Event>, StoreError> {
    let members: Vec<Uuid> = targets.keys().copied().collect();
    let mut pending = Vec::new();
    for chunk in members.chunks(CHUNK * 4) {
        pending.extend(super::events::balance_changes(tx, pool_id, chunk).await?);
    }
    super::events::append(tx, pending, ctx).await
}

impl Store {
    /// What importing would do, written nowhere.
    pub async fn import_preview(
        &self,
        guild_id: Uuid,
        pool_id: Uuid,
        content_hash: &[u8],
        players: &[ImportedPlayer],
    ) -> Result<ImportPreview, StoreError> {
        preview(&self.db, guild_id, pool_id, content_hash, players).await
    }

    /// Writes an import, or answers the report of the same file's earlier import into the pool.
    pub async fn import(&self, command: &ImportCommand, ctx: &Ctx) -> Result<Imported, StoreError> {
        let _turn = self.gate.enter().await?;
        let imported = retry("import", || import(&self.db, command, ctx)).await?;
        if let Imported::Fresh { report, .. } = &imported {
            if report.roster.members_created >= FRESH_STATISTICS_AFTER {
                self.refresh_statistics().await;
            }
        }
        Ok(imported)
    }

    /// After an import that adds many members PostgreSQL's statistics still
    /// describe much smaller tables until autovacuum catches up (about a
    /// minute), and it plans the guild's standings as if a pool had one
    /// member: 200 ms for 1,000 members instead of 3 ms. Refreshed now, the
    /// guild's first pages plan well. A failure here costs only that.
    async fn refresh_statistics(&self) {
        if let Db::Pg(..) = &self.db {
            if let Err(error) = self.db.sql("ANALYZE members, accounts, entries, postings").execute().await {
                tracing::warn!(error = %error, "refreshing the statistics after an import");
            }
        }
    }
}
