//! The images a guild shows: its logo and its lots' icons. The store keeps
//! only the object key (the bytes live in the `Blobs` port); each change of a
//! key is audited with the key before and after, in the same transaction.

use serde_json::json;
use uuid::Uuid;

use super::audit::{AuditWrite, audit};
use super::retry::retry;
use super::{Ctx, Store, StoreError, lots};
use crate::model::{Guild, LotView};

impl Store {
    pub async fn set_guild_logo(&self, guild_id: Uuid, key: &str, ctx: &Ctx) -> Result<Guild, StoreError> {
        retry("set_guild_logo", || async {
            let mut tx = self.db.begin_write().await?;
            let row = tx
                .sql("SELECT id, slug, name, logo_key FROM guilds WHERE id = $1")
                .bind(guild_id)
                .fetch_optional()
                .await?
                .ok_or(StoreError::NotFound)?;
            let before: Option<String> = row.get("logo_key")?;
            tx.sql("UPDATE guilds SET logo_key = $1 WHERE id = $2").bind(key).bind(guild_id).execute().await?;
            let change = AuditWrite::new(ctx, Some(guild_id), "guild.logo", "guild", guild_id)
                .before(json!({ "key": before }))
                .after(json!({ "key": key }));
            audit(&mut tx, change).await?;
            tx.commit().await?;
            Ok(Guild {
                id: row.get("id")?,
                slug: row.get("slug")?,
                name: row.get("name")?,
                logo_key: Some(key.to_owned()),
            })
        })
        .await
    }

    /// Takes the write turn and lane, as bid batches do, so that changing the
    /// icon of a hot lot waits its turn instead of failing a batch's snapshot.
    pub async fn set_lot_icon(
        &self,
        guild_id: Uuid,
        lot_id: Uuid,
        key: &str,
        ctx: &Ctx,
    ) -> Result<LotView, StoreError> {
        let _turn = self.gate.enter().await?;
        retry("set_lot_icon", || async {
            let mut tx = self.db.begin_write_in_lane().await?;
            let mut lot = lots::lot_in(&mut tx, guild_id, lot_id).await?.ok_or(StoreError::NotFound)?;
            let before = lot.icon_key.replace(key.to_owned());
            tx.sql("UPDATE lots SET icon_key = $1 WHERE guild_id = $2 AND id = $3")
                .bind(key)
                .bind(guild_id)
                .bind(lot_id)
                .execute()
                .await?;
            let change = AuditWrite::new(ctx, Some(guild_id), "lot.icon", "lot", lot_id)
                .before(json!({ "key": before }))
                .after(json!({ "key": key }));
            audit(&mut tx, change).await?;
            tx.commit().await?;
            Ok(lot)
        })
        .await
    }
}
