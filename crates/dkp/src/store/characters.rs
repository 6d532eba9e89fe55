//! Characters: names in the game, each one member's, all spending from that
//! member's wallet (characters hold no points of their own). Unique per
//! guild by name and realm as the game compares them (`dkp_core::roster`);
//! one main per member, the old main unset in the transaction that sets a
//! new one. A character's member is of the character's guild, checked in the
//! transaction that writes it.

use uuid::Uuid;

use super::audit::{AuditWrite, OnUnique, audit};
use super::sql::{Db, Row, Tx};
use super::{Ctx, Read, Store, StoreError};
use crate::model::{Character, CharacterChange, Code, NewCharacter};

/// A character query, then `$tail`.
macro_rules! character_sql {
    ($tail:literal) => {
        concat!("SELECT c.id, c.member_id, c.name, c.realm, c.class, c.spec, c.main FROM characters c", $tail)
    };
}

fn character_of(row: &Row) -> Result<Character, StoreError> {
    Ok(Character {
        id: row.get("id")?,
        member_id: row.get("member_id")?,
        name: row.get("name")?,
        realm: row.get("realm")?,
        class: row.get("class")?,
        spec: row.get("spec")?,
        main: row.get("main")?,
    })
}

/// Refuses a member who is not of the guild.
async fn member_of_guild(tx: &mut Tx, guild_id: Uuid, member_id: Uuid) -> Result<(), StoreError> {
    let found = tx.sql("SELECT id FROM members WHERE guild_id = $1 AND id = $2").bind(guild_id).bind(member_id);
    found.fetch_optional().await?.ok_or(StoreError::UnknownReference("member_id"))?;
    Ok(())
}

/// Makes `main` the member's only main: unsets every other.
async fn only_main(tx: &mut Tx, guild_id: Uuid, member_id: Uuid, main: Uuid) -> Result<(), StoreError> {
    tx.sql("UPDATE characters SET main = $1 WHERE guild_id = $2 AND member_id = $3 AND main AND id <> $4")
        .bind(false)
        .bind(guild_id)
        .bind(member_id)
        .bind(main)
        .execute()
        .await?;
    Ok(())
}

async fn add_character(tx: &mut Tx, guild_id: Uuid, new: &NewCharacter, ctx: &Ctx) -> Result<Character, StoreError> {
    member_of_guild(tx, guild_id, new.member_id).await?;
    let character = Character {
        id: Uuid::now_v7(),
        member_id: new.member_id,
        name: new.name.name.clone(),
        realm: new.name.realm.clone(),
        class: new.class.clone(),
        spec: new.spec.clone(),
        main: new.main,
    };
    if character.main {
        only_main(tx, guild_id, character.member_id, character.id).await?;
    }
    let (name_folded, realm_folded) = new.name.key();
    tx.sql(
        "INSERT INTO characters (id, guild_id, member_id, name, realm, name_folded, realm_folded, class, spec, main, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(character.id)
    .bind(guild_id)
    .bind(character.member_id)
    .bind(character.name.as_str())
    .bind(character.realm.clone())
    .bind(name_folded)
    .bind(realm_folded)
    .bind(character.class.clone())
    .bind(character.spec.clone())
    .bind(character.main)
    .bind(ctx.now)
    .execute()
    .await
    .on_unique(
        "characters_guild_name_key",
        "characters.guild_id, characters.name_folded, characters.realm_folded",
        Code::CharacterTaken,
    )?;
    audit(tx, AuditWrite::new(ctx, Some(guild_id), "character.add", "character", character.id).after(&character))
        .await?;
    Ok(character)
}

async fn change_character(
    tx: &mut Tx,
    guild_id: Uuid,
    id: Uuid,
    change: &CharacterChange,
    ctx: &Ctx,
) -> Result<Character, StoreError> {
    const SQL: &str = character_sql!(" WHERE c.guild_id = $1 AND c.id = $2");
    let row = tx.sql(SQL).bind(guild_id).bind(id).fetch_optional().await?.ok_or(StoreError::NotFound)?;
    let before = character_of(&row)?;
    let mut after = before.clone();
    if let Some(member_id) = change.member_id.filter(|member_id| *member_id != before.member_id) {
        member_of_guild(tx, guild_id, member_id).await?;
        // A character handed to another member is not their main unless asked.
        after.member_id = member_id;
        after.main = false;
    }
    after.class = change.class.clone().unwrap_or(after.class);
    after.spec = change.spec.clone().unwrap_or(after.spec);
    after.main = change.main.unwrap_or(after.main);
    if after.main {
        only_main(tx, guild_id, after.member_id, after.id).await?;
    }
    tx.sql("UPDATE characters SET member_id = $1, class = $2, spec = $3, main = $4 WHERE guild_id = $5 AND id = $6")
        .bind(after.member_id)
        .bind(after.class.clone())
        .bind(after.spec.clone())
        .bind(after.main)
        .bind(guild_id)
        .bind(id)
        .execute()
        .await?;
    let row = AuditWrite::new(ctx, Some(guild_id), "character.change", "character", id);
    audit(tx, row.before(&before).after(&after)).await?;
    Ok(after)
}

async fn characters(db: &Db, guild_id: Uuid, member_id: Option<Uuid>) -> Result<Vec<Character>, StoreError> {
    const SQL: &str = character_sql!(
        " WHERE c.guild_id = $1 AND ($2 IS NULL OR c.member_id = $2) ORDER BY c.name_folded, c.realm_folded"
    );
    db.sql(SQL).bind(guild_id).bind(member_id).fetch_all().await?.iter().map(character_of).collect()
}

impl Store {
    /// The guild's characters by name, or one member's.
    pub async fn characters(
        &self,
        guild_id: Uuid,
        member_id: Option<Uuid>,
        read: Read,
    ) -> Result<Vec<Character>, StoreError> {
        self.read(read, |db| characters(db, guild_id, member_id)).await
    }

    pub async fn add_character(&self, guild_id: Uuid, new: &NewCharacter, ctx: &Ctx) -> Result<Character, StoreError> {
        write_tx!(self, "add_character", |tx| add_character(tx, guild_id, new, ctx))
    }

    pub async fn change_character(
        &self,
        guild_id: Uuid,
        id: Uuid,
        change: &CharacterChange,
        ctx: &Ctx,
    ) -> Result<Character, StoreError> {
        write_tx!(self, "change_character", |tx| change_character(tx, guild_id, id, change, ctx))
    }
}
