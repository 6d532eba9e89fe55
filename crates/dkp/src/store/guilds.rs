//! Guilds, a user's memberships (the tenancy gate: only members on the
//! roster, active, reach their guild), and the guild's audit log.

use dkp_core::Role;
use sqlx::types::Json;
use uuid::Uuid;

use super::audit::{AuditWrite, OnUnique, audit as write_audit, paginate, stored_role};
use super::members::{Seat, insert_member};
use super::retry::retry;
use super::sql::{Db, Row};
use super::{Ctx, Read, Store, StoreError};
use crate::model::{AuditRecord, Code, Guild, Membership, NewGuild, Page, PageRequest, Ts};

/// A membership query: the guild and the caller's member row, then `$tail`.
macro_rules! membership_sql {
    ($tail:literal) => {
        concat!(
            "SELECT g.id, g.slug, g.name, g.logo_key, m.id AS member_id, m.role FROM guilds g \
             JOIN members m ON m.guild_id = g.id AND m.active",
            $tail
        )
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

async fn memberships(db: &Db, user_id: Uuid) -> Result<Vec<Membership>, StoreError> {
    const SQL: &str = membership_sql!(" WHERE m.user_id = $1 ORDER BY g.slug");
    db.sql(SQL).bind(user_id).fetch_all().await?.iter().map(membership_of).collect()
}

fn audit_record(row: &Row) -> Result<AuditRecord, StoreError> {
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
    let items = rows.iter().map(audit_record).collect::<Result<Vec<_>, StoreError>>()?;
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

    /// The id of the guild at `slug`.
    pub async fn guild_id(&self, slug: &str) -> Result<Option<Uuid>, StoreError> {
        let row = self.db.sql("SELECT id FROM guilds WHERE slug = $1").bind(slug).fetch_optional().await?;
        Ok(row.map(|row| row.get("id")).transpose()?)
    }

    /// The membership of the guild's first owner, whom the command line acts as.
    pub async fn first_owner(&self, slug: &str) -> Result<Option<Membership>, StoreError> {
        const SQL: &str = membership_sql!(" WHERE g.slug = $1 AND m.role = 'owner' ORDER BY m.id LIMIT 1");
        self.db.sql(SQL).bind(slug).fetch_optional().await?.as_ref().map(membership_of).transpose()
    }

    pub async fn audit(&self, guild_id: Uuid, page: PageRequest, read: Read) -> Result<Page<AuditRecord>, StoreError> {
        self.read(read, |db| audit(db, guild_id, page)).await
    }

    /// Audit rows of every guild after `after` (by id) made before
    /// `before`, oldest first: what the audit database copies next.
    pub async fn audit_rows_after(
        &self,
        after: Option<Uuid>,
        before: Ts,
        limit: u32,
    ) -> Result<Vec<(Option<Uuid>, AuditRecord)>, StoreError> {
        let rows = self
            .db
            .sql(
                "SELECT id, guild_id, actor_id, action, target_type, target_id, request_id, created_at, before, after \
                 FROM audit_log WHERE ($1 IS NULL OR id > $1) AND created_at < $2 ORDER BY id LIMIT $3",
            )
            .bind(after)
            .bind(before)
            .bind(i64::from(limit))
            .fetch_all()
            .await?;
        rows.iter().map(|row| Ok((row.get("guild_id")?, audit_record(row)?))).collect()
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
            let username: String =
                tx.sql("SELECT username FROM users WHERE id = $1").bind(owner).fetch_one().await?.get("username")?;
            let seat = Seat::User { id: owner, username: &username };
            let member_id = insert_member(&mut tx, guild.id, seat, Role::Owner, ctx).await?;
            write_audit(&mut tx, AuditWrite::new(ctx, Some(guild.id), "guild.create", "guild", guild.id).after(&guild))
                .await?;
            tx.commit().await?;
            Ok(Membership { guild, member_id, role: Role::Owner })
        })
        .await
    }
}
