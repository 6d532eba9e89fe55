//! Users and their sessions. Session tokens are stored only as hashes.

use super::audit::{AuditWrite, OnUnique, audit};
use super::retry::retry;
use std::collections::HashSet;

use super::sql::{Row, placeholders};
use super::{Ctx, Store, StoreError};
use crate::model::{Code, NewSession, NewUser, Ts, User};

fn user(row: &Row) -> Result<User, sqlx::Error> {
    Ok(User { id: row.get("id")?, username: row.get("username")?, display_name: row.get("display_name")? })
}

impl Store {
    pub async fn create_user(&self, new: &NewUser, ctx: &Ctx) -> Result<User, StoreError> {
        retry("register", || async {
            let mut tx = self.db.begin_write().await?;
            tx.sql(
                "INSERT INTO users (id, username, username_folded, display_name, password_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(new.id)
            .bind(new.username.as_str())
            .bind(new.username_folded.as_str())
            .bind(new.display_name.as_str())
            .bind(new.password_hash.as_str())
            .bind(ctx.now)
            .execute()
            .await
            .on_unique("users_username_key", "users.username_folded", Code::UsernameTaken)?;
            let created = User { id: new.id, username: new.username.clone(), display_name: new.display_name.clone() };
            let ctx = Ctx { actor: Some(new.id), ..ctx.clone() };
            audit(&mut tx, AuditWrite::new(&ctx, None, "user.register", "user", new.id).after(&created)).await?;
            tx.commit().await?;
            Ok(created)
        })
        .await
    }

    pub async fn login_of(&self, username_folded: &str) -> Result<Option<(User, String)>, StoreError> {
        let row = self
            .db
            .sql("SELECT id, username, display_name, password_hash FROM users WHERE username_folded = $1")
            .bind(username_folded)
            .fetch_optional()
            .await?;
        Ok(match row {
            Some(row) => Some((user(&row)?, row.get("password_hash")?)),
            None => None,
        })
    }

    pub async fn create_session(&self, session: &NewSession, ctx: &Ctx) -> Result<(), StoreError> {
        retry("login", || async {
            let mut tx = self.db.begin_write().await?;
            tx.sql("INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)")
                .bind(session.token_hash.as_slice())
                .bind(session.user_id)
                .bind(ctx.now)
                .bind(session.expires_at)
                .execute()
                .await?;
            // Sessions that have run out are swept as new ones begin.
            tx.sql("DELETE FROM sessions WHERE user_id = $1 AND expires_at <= $2")
                .bind(session.user_id)
                .bind(ctx.now)
                .execute()
                .await?;
            audit(&mut tx, AuditWrite::new(ctx, None, "session.login", "user", session.user_id)).await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    pub async fn session_user(&self, token_hash: &[u8], now: Ts) -> Result<Option<User>, StoreError> {
        let row = self
            .db
            .sql(
                "SELECT u.id, u.username, u.display_name FROM sessions s JOIN users u ON u.id = s.user_id \
                 WHERE s.token_hash = $1 AND s.expires_at > $2",
            )
            .bind(token_hash)
            .bind(now)
            .fetch_optional()
            .await?;
        Ok(row.as_ref().map(user).transpose()?)
    }

    /// Which of the sessions named by `hashes` are still open at `now`: a few
    /// statements whatever their number.
    pub async fn open_sessions(&self, hashes: &[Vec<u8>], now: Ts) -> Result<HashSet<Vec<u8>>, StoreError> {
        let mut open = HashSet::with_capacity(hashes.len());
        for some in hashes.chunks(500) {
            let sql = format!(
                "SELECT token_hash FROM sessions WHERE expires_at > $1 AND token_hash IN ({})",
                placeholders(2, some.len())
            );
            let mut statement = self.db.sql_built(sql).bind(now);
            for hash in some {
                statement = statement.bind(hash.clone());
            }
            for row in statement.fetch_all().await? {
                open.insert(row.get::<Vec<u8>>("token_hash")?);
            }
        }
        Ok(open)
    }

    pub async fn end_session(&self, token_hash: &[u8], ctx: &Ctx) -> Result<(), StoreError> {
        retry("logout", || async {
            let mut tx = self.db.begin_write().await?;
            let ended = tx.sql("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute().await?;
            if ended > 0 {
                let target = ctx.actor.map(|id| id.to_string()).unwrap_or_default();
                audit(&mut tx, AuditWrite::new(ctx, None, "session.logout", "user", target)).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }
}
