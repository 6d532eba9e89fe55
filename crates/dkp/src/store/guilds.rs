//! Guilds, their members and roles, and the guild's audit log.

use dkp_core::Role;
use sqlx::types::Json;
use uuid::Uuid;

use super::audit::{AuditWrite, OnUnique, audit as write_audit, paginate, stored_role};
use super::retry::retry;
use super::sql::{Db, Row, Tx};
use super::{Ctx, Read, Store, StoreError};
use crate::model::{AuditRecord, Code, Guild, Member, Membership, NewGuild, Page, PageRequest};

/// A membership query: the guild and the caller's member row, then `$tail`.
macro_rules! membership_sql {
    ($tail:literal) => {
        concat!(
            "SELECT g.id, g.slug, g.name, g.logo_key, m.id AS member_id, m.role FROM guilds g \
             JOIN members m ON m.guild_id = g.id",
            $tail
        )
    };
}

/// A member query: the member with their username, then `$tail`.
macro_rules! member_sql {
    ($tail:literal) => {
        concat!("SELECT m.id, m.user_id, u.username, m.role FROM members m JOIN users u ON u.id = m.user_id", $tail)
    };
}

fn membership_of(row: &Row) -> Result<Membership, StoreError> {
    Ok(Membership {
        guild: Guild {
            id: row.get("id")?,
            slug: row.get("slug")?,
            name: row.get("name")?,
            logo_key: row.get("logo_key")?,
        },
        member_id: row.get("member_id")?,
        role: stored_role(&row.get::<String>("role")?)?,
    })
}

fn member_of(row: &Row) -> Result<Member, StoreError> {
    Ok(Member {
        id: row.get("id")?,
        user_id: row.get("user_id")?,
        username: row.get("username")?,
        role: stored_role(&row.get::<String>("role")?)?,
    })
}

async fn memberships(db: &Db, user_id: Uuid) -> Result<Vec<Membership>, StoreError> {
    const SQL: &str = membership_sql!(" WHERE m.user_id = $1 ORDER BY g.slug");
    db.sql(SQL).bind(user_id).fetch_all().await?.iter().map(membership_of).collect()
}

/// Adds a member and opens their account in every pool of the guild.
async fn insert_member(tx: &mut Tx, guild_id: Uuid, user_id: Uuid, role: Role, ctx: &Ctx) -> Result<Uuid, StoreError> {
    let member_id = Uuid::now_v7();
    tx.sql("INSERT INTO members (id, guild_id, user_id, role, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(member_id)
        .bind(guild_id)
        .bind(user_id)
        .bind(role.as_str())
        .bind(ctx.now)
        .execute()
        .await
        .on_unique("members_guild_user_key", "members.guild_id", Code::AlreadyMember)?;
    let pools: Vec<Uuid> = tx
        .sql("SELECT id FROM pools WHERE guild_id = $1 ORDER BY id")
        .bind(guild_id)
        .fetch_all()
        .await?
        .iter()
        .map(|row| row.get("id"))
        .collect::<Result<_, _>>()?;
    for pool_id in pools {
        super::pools::open_account(tx, guild_id, pool_id, Some(member_id), None).await?;
    }
    Ok(member_id)
}

async fn members(db: &Db, guild_id: Uuid) -> Result<Vec<Member>, StoreError> {
    const SQL: &str = member_sql!(" WHERE m.guild_id = $1 ORDER BY u.username_folded");
    db.sql(SQL).bind(guild_id).fetch_all().await?.iter().map(member_of).collect()
}

async fn audit(db: &Db, guild_id: Uuid, page: PageRequest) -> Result<Page<AuditRecord>, StoreError> {
    let rows = db
        .sql(
            "SELECT id, actor_id, action, target_type, target_id, request_id, created_at, before, after FROM audit_log \
             WHERE guild_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(guild_id)
        .bind(page.before)
        .bind(i64::from(page.limit) + 1)
        .fetch_all()
        .await?;
    let items = rows
        .iter()
        .map(|row| {
            Ok(AuditRecord {
                id: row.get("id")?,
                actor_id: row.get("actor_id")?,
                action: row.get("action")?,
                target_type: row.get("target_type")?,
                target_id: row.get("target_id")?,
                request_id: row.get("request_id")?,
                created_at: row.get("created_at")?,
                before: row.get::<Option<Json<serde_json::Value>>>("before")?.map(|j| j.0),
                after: row.get::<Option<Json<serde_json::Value>>>("after")?.map(|j| j.0),
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    Ok(paginate(items, page, |r| r.id))
}

impl Store {
    pub async fn memberships(&self, user_id: Uuid, read: Read) -> Result<Vec<Membership>, StoreError> {
        self.read(read, |db| memberships(db, user_id)).await
    }

    /// The caller's membership of the guild at `slug`: the tenancy gate.
    pub async fn membership(&self, slug: &str, user_id: Uuid) -> Result<Option<Membership>, StoreError> {
        const SQL: &str = membership_sql!(" WHERE g.slug = $1 AND m.user_id = $2");
        self.db.sql(SQL).bind(slug).bind(user_id).fetch_optional().await?.as_ref().map(membership_of).transpose()
    }

    pub async fn members(&self, guild_id: Uuid, read: Read) -> Result<Vec<Member>, StoreError> {
        self.read(read, |db| members(db, guild_id)).await
    }

    pub async fn audit(&self, guild_id: Uuid, page: PageRequest, read: Read) -> Result<Page<AuditRecord>, StoreError> {
        self.read(read, |db| audit(db, guild_id, page)).await
    }

    pub async fn create_guild(&self, new: &NewGuild, ctx: &Ctx) -> Result<Membership, StoreError> {
        let owner = ctx.actor.ok_or(StoreError::NotFound)?;
        retry("create_guild", || async {
            let mut tx = self.db.begin_write().await?;
            let guild = Guild { id: Uuid::now_v7(), slug: new.slug.clone(), name: new.name.clone(), logo_key: None };
            tx.sql("INSERT INTO guilds (id, slug, name, created_at) VALUES ($1, $2, $3, $4)")
                .bind(guild.id)
                .bind(guild.slug.as_str())
                .bind(guild.name.as_str())
                .bind(ctx.now)
                .execute()
                .await
                .on_unique("guilds_slug_key", "guilds.slug", Code::SlugTaken)?;
            let member_id = insert_member(&mut tx, guild.id, owner, Role::Owner, ctx).await?;
            write_audit(&mut tx, AuditWrite::new(ctx, Some(guild.id), "guild.create", "guild", guild.id).after(&guild))
                .await?;
            tx.commit().await?;
            Ok(Membership { guild, member_id, role: Role::Owner })
        })
        .await
    }

    pub async fn add_member(
        &self,
        guild_id: Uuid,
        username_folded: &str,
        role: Role,
        ctx: &Ctx,
    ) -> Result<Member, StoreError> {
        retry("add_member", || async {
            let mut tx = self.db.begin_write().await?;
            let user = tx
                .sql("SELECT id, username FROM users WHERE username_folded = $1")
                .bind(username_folded)
                .fetch_optional()
                .await?
                .ok_or(StoreError::UnknownReference("username"))?;
            let (user_id, username): (Uuid, String) = (user.get("id")?, user.get("username")?);
            let id = insert_member(&mut tx, guild_id, user_id, role, ctx).await?;
            let member = Member { id, user_id, username, role };
            write_audit(&mut tx, AuditWrite::new(ctx, Some(guild_id), "member.add", "member", id).after(&member))
                .await?;
            tx.commit().await?;
            Ok(member)
        })
        .await
    }

    pub async fn set_role(&self, guild_id: Uuid, member_id: Uuid, role: Role, ctx: &Ctx) -> Result<Member, StoreError> {
        const SQL: &str = member_sql!(" WHERE m.guild_id = $1 AND m.id = $2");
        retry("set_role", || async {
            let mut tx = self.db.begin_write().await?;
            let row = tx.sql(SQL).bind(guild_id).bind(member_id).fetch_optional().await?.ok_or(StoreError::NotFound)?;
            let before = member_of(&row)?;
            if before.role == Role::Owner && role != Role::Owner {
                let owners: i64 = tx
                    .sql("SELECT COUNT(*) AS owners FROM members WHERE guild_id = $1 AND role = 'owner'")
                    .bind(guild_id)
                    .fetch_one()
                    .await?
                    .get("owners")?;
                if owners <= 1 {
                    return Err(StoreError::Conflict(Code::LastOwner));
                }
            }
            tx.sql("UPDATE members SET role = $1 WHERE guild_id = $2 AND id = $3")
                .bind(role.as_str())
                .bind(guild_id)
                .bind(member_id)
                .execute()
                .await?;
            let after = Member { role, ..before.clone() };
            write_audit(
                &mut tx,
                AuditWrite::new(ctx, Some(guild_id), "member.role", "member", member_id)
                    .before(serde_json::json!({"role": before.role.as_str()}))
                    .after(serde_json::json!({"role": role.as_str()})),
            )
            .await?;
            tx.commit().await?;
            Ok(after)
        })
        .await
    }
}
