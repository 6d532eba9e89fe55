//! The roster: members with an account or (added by name) without one yet,
//! their roles, linking an account to a member added by name, and taking
//! members off the roster and back.
//!
//! A member is never deleted: one taken off the roster is `active = false`,
//! keeps their accounts, postings and characters, reaches the guild no more
//! (see `guilds::membership`) and is left out of default lists. Names are
//! unique per guild as compared (`dkp_core::roster::fold`); a linked member's
//! name is their username.

use dkp_core::Role;
use dkp_core::roster::fold;
use serde_json::{Value, json};
use uuid::Uuid;

use super::audit::{AuditWrite, OnUnique, audit, stored_role};
use super::pools::{ids, open_account};
use super::sql::{Db, Row, Tx};
use super::{Ctx, Read, Store, StoreError};
use crate::model::{Code, Joining, Member, MemberChange};

/// A member query: the member with their username, then `$tail`.
macro_rules! member_sql {
    ($tail:literal) => {
        concat!(
            "SELECT m.id, m.user_id, u.username, m.name, m.role, m.active FROM members m \
             LEFT JOIN users u ON u.id = m.user_id",
            $tail
        )
    };
}

/// One member of a guild, by id: `$1` the guild, `$2` the member.
const ONE_MEMBER: &str = member_sql!(" WHERE m.guild_id = $1 AND m.id = $2");

/// What the roster's unique constraints refuse, each with its code.
const CONFLICTS: &[(&str, &str, Code)] = &[
    ("members_guild_user_key", "members.guild_id, members.user_id", Code::AlreadyMember),
    ("members_guild_name_key", "members.guild_id, members.name_folded", Code::MemberNameTaken),
];

fn member_of(row: &Row) -> Result<Member, StoreError> {
    Ok(Member {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        username: row.get("username")?,
        name: row.get("name")?,
        role: stored_role(&row.get::<String>("role")?)?,
        active: row.get("active")?,
    })
}

/// Who takes a new place on the roster.
pub(super) enum Seat<'a> {
    /// A user: their name on the roster is their username.
    User { id: Uuid, username: &'a str },
    /// A raider without an account, by name.
    Unlinked { name: &'a str },
}

/// Adds a member and opens their account in every pool of the guild.
pub(super) async fn insert_member(
    tx: &mut Tx,
    guild_id: Uuid,
    seat: Seat<'_>,
    role: Role,
    ctx: &Ctx,
) -> Result<Uuid, StoreError> {
    let member_id = Uuid::now_v7();
    let (user_id, name) = match seat {
        Seat::User { id, username } => (Some(id), username),
        Seat::Unlinked { name } => (None, name),
    };
    tx.sql(
        "INSERT INTO members (id, guild_id, user_id, role, created_at, name, name_folded, active) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(member_id)
    .bind(guild_id)
    .bind(user_id)
    .bind(role.as_str())
    .bind(ctx.now)
    .bind(name)
    .bind(fold(name))
    .bind(true)
    .execute()
    .await
    .on_uniques(CONFLICTS)?;
    for pool_id in ids(tx, "SELECT id FROM pools WHERE guild_id = $1 ORDER BY id", guild_id).await? {
        open_account(tx, guild_id, pool_id, Some(member_id), None).await?;
    }
    Ok(member_id)
}

/// The id and username of the user with this folded username.
async fn user_named(tx: &mut Tx, username_folded: &str) -> Result<(Uuid, String), StoreError> {
    let user = tx
        .sql("SELECT id, username FROM users WHERE username_folded = $1")
        .bind(username_folded)
        .fetch_optional()
        .await?
        .ok_or(StoreError::UnknownReference("username"))?;
    Ok((user.get("id")?, user.get("username")?))
}

/// Refuses a user who is a member of the guild already. Asked before the
/// write: such a user would also clash by name (their username), and the
/// refusal should say what is wrong.
async fn not_a_member(tx: &mut Tx, guild_id: Uuid, user_id: Uuid) -> Result<(), StoreError> {
    let found = tx.sql("SELECT id FROM members WHERE guild_id = $1 AND user_id = $2").bind(guild_id).bind(user_id);
    match found.fetch_optional().await? {
        Some(_) => Err(StoreError::Conflict(Code::AlreadyMember)),
        None => Ok(()),
    }
}

async fn members(db: &Db, guild_id: Uuid, include_inactive: bool) -> Result<Vec<Member>, StoreError> {
    const SQL: &str = member_sql!(" WHERE m.guild_id = $1 AND ($2 OR m.active) ORDER BY m.name_folded");
    db.sql(SQL).bind(guild_id).bind(include_inactive).fetch_all().await?.iter().map(member_of).collect()
}

async fn member(db: &Db, guild_id: Uuid, member_id: Uuid) -> Result<Option<Member>, StoreError> {
    db.sql(ONE_MEMBER).bind(guild_id).bind(member_id).fetch_optional().await?.as_ref().map(member_of).transpose()
}

async fn add_member(
    tx: &mut Tx,
    guild_id: Uuid,
    joining: &Joining,
    role: Role,
    ctx: &Ctx,
) -> Result<Member, StoreError> {
    let member = match joining {
        Joining::User { username_folded } => {
            let (user_id, username) = user_named(tx, username_folded).await?;
            not_a_member(tx, guild_id, user_id).await?;
            let id = insert_member(tx, guild_id, Seat::User { id: user_id, username: &username }, role, ctx).await?;
            Member { id, user_id: Some(user_id), username: Some(username.clone()), name: username, role, active: true }
        }
        Joining::Unlinked { name } => {
            let id = insert_member(tx, guild_id, Seat::Unlinked { name }, role, ctx).await?;
            Member { id, user_id: None, username: None, name: name.clone(), role, active: true }
        }
    };
    audit(tx, AuditWrite::new(ctx, Some(guild_id), "member.add", "member", member.id).after(&member)).await?;
    Ok(member)
}

/// Links the account of `username_folded` to a member who has none.
async fn link(tx: &mut Tx, guild_id: Uuid, member: &mut Member, username_folded: &str) -> Result<(), StoreError> {
    if member.user_id.is_some() {
        return Err(StoreError::Conflict(Code::AlreadyLinked));
    }
    let (user_id, username) = user_named(tx, username_folded).await?;
    not_a_member(tx, guild_id, user_id).await?;
    tx.sql("UPDATE members SET user_id = $1, name = $2, name_folded = $3 WHERE guild_id = $4 AND id = $5")
        .bind(user_id)
        .bind(username.as_str())
        .bind(fold(&username))
        .bind(guild_id)
        .bind(member.id)
        .execute()
        .await
        .on_uniques(CONFLICTS)?;
    member.user_id = Some(user_id);
    member.name = username.clone();
    member.username = Some(username);
    Ok(())
}

/// Refuses a change that leaves the guild without an active owner who has an
/// account (someone must be able to sign in and run it).
async fn keep_an_owner(tx: &mut Tx, guild_id: Uuid, before: &Member, after: &Member) -> Result<(), StoreError> {
    let was_owner = before.role == Role::Owner && before.active && before.user_id.is_some();
    if !was_owner || (after.role == Role::Owner && after.active) {
        return Ok(());
    }
    let owners: i64 = tx
        .sql(
            "SELECT COUNT(*) AS owners FROM members \
              WHERE guild_id = $1 AND role = 'owner' AND active AND user_id IS NOT NULL",
        )
        .bind(guild_id)
        .fetch_one()
        .await?
        .get("owners")?;
    if owners <= 1 {
        return Err(StoreError::Conflict(Code::LastOwner));
    }
    Ok(())
}

async fn change_member(
    tx: &mut Tx,
    guild_id: Uuid,
    member_id: Uuid,
    change: &MemberChange,
    ctx: &Ctx,
) -> Result<Member, StoreError> {
    let row = tx.sql(ONE_MEMBER).bind(guild_id).bind(member_id).fetch_optional().await?.ok_or(StoreError::NotFound)?;
    let before = member_of(&row)?;
    if change.active.is_some_and(|active| active != before.active) && !change.actor_role.may_add_with(before.role) {
        return Err(StoreError::Forbidden);
    }
    let mut after = before.clone();
    if let Some(username) = &change.link {
        link(tx, guild_id, &mut after, username).await?;
    }
    after.role = change.role.unwrap_or(before.role);
    after.active = change.active.unwrap_or(before.active);
    keep_an_owner(tx, guild_id, &before, &after).await?;
    tx.sql("UPDATE members SET role = $1, active = $2 WHERE guild_id = $3 AND id = $4")
        .bind(after.role.as_str())
        .bind(after.active)
        .bind(guild_id)
        .bind(member_id)
        .execute()
        .await?;
    audit_change(tx, ctx, guild_id, &before, &after).await?;
    Ok(after)
}

/// The audit rows of a member's change: one for each part that changed.
async fn audit_change(
    tx: &mut Tx,
    ctx: &Ctx,
    guild_id: Uuid,
    before: &Member,
    after: &Member,
) -> Result<(), StoreError> {
    let parts = [
        (before.user_id != after.user_id).then(|| Part {
            action: "member.link",
            before: json!({"name": before.name}),
            after: json!({"user_id": after.user_id, "name": after.name}),
        }),
        (before.role != after.role).then(|| Part {
            action: "member.role",
            before: json!({"role": before.role.as_str()}),
            after: json!({"role": after.role.as_str()}),
        }),
        (before.active != after.active).then(|| Part {
            action: "member.active",
            before: json!({"active": before.active}),
            after: json!({"active": after.active}),
        }),
    ];
    for part in parts.into_iter().flatten() {
        let row = AuditWrite::new(ctx, Some(guild_id), part.action, "member", after.id);
        audit(tx, row.before(part.before).after(part.after)).await?;
    }
    Ok(())
}

/// One part of a member's change, as its audit row shows it.
struct Part {
    action: &'static str,
    before: Value,
    after: Value,
}

impl Store {
    /// The guild's members by name: those on the roster, or everyone.
    pub async fn members(&self, guild_id: Uuid, include_inactive: bool, read: Read) -> Result<Vec<Member>, StoreError> {
        self.read(read, |db| members(db, guild_id, include_inactive)).await
    }

    /// One member of the guild, on the roster or not.
    pub async fn member(&self, guild_id: Uuid, member_id: Uuid, read: Read) -> Result<Option<Member>, StoreError> {
        self.read(read, |db| member(db, guild_id, member_id)).await
    }

    /// Adds a user, or a raider without an account, to the roster.
    pub async fn add_member(
        &self,
        guild_id: Uuid,
        joining: &Joining,
        role: Role,
        ctx: &Ctx,
    ) -> Result<Member, StoreError> {
        write_tx!(self, "add_member", |tx| add_member(tx, guild_id, joining, role, ctx))
    }

    /// Changes a member's role, account or place on the roster, in one transaction.
    pub async fn change_member(
        &self,
        guild_id: Uuid,
        member_id: Uuid,
        change: &MemberChange,
        ctx: &Ctx,
    ) -> Result<Member, StoreError> {
        write_tx!(self, "change_member", |tx| change_member(tx, guild_id, member_id, change, ctx))
    }
}
