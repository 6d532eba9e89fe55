//! The answers kept under idempotency keys (see `service::idempotency`):
//! read before a change, written in its transaction.
//!
//! A row's `status` is 0 when `response` holds the answer's record
//! (`model::Answer`); rows written before answers were kept as records hold
//! the HTTP status and the rendered body, and are replayed as they are.

use super::audit::is_unique;
use super::sql::Tx;
use super::{Ctx, Store, StoreError};
use crate::model::{Answer, IdempotencyClaim};

/// The `status` of a row that keeps a record.
const RECORD: i32 = 0;

/// The answer kept for a key seen before, or an error if the key came with
/// another request.
pub async fn replay(tx: &mut Tx, claim: &IdempotencyClaim) -> Result<Option<Answer>, StoreError> {
    let Some(row) = tx
        .sql("SELECT fingerprint, status, response FROM idempotency_keys WHERE user_id = $1 AND key = $2")
        .bind(claim.user_id)
        .bind(claim.key.as_str())
        .fetch_optional()
        .await?
    else {
        return Ok(None);
    };
    if row.get::<Vec<u8>>("fingerprint")? != claim.fingerprint {
        return Err(StoreError::IdempotencyKeyReused);
    }
    let (status, body): (i32, String) = (row.get("status")?, row.get("response")?);
    if status != RECORD {
        return Ok(Some(Answer::Rendered { status: u16::try_from(status).unwrap_or(200), body }));
    }
    Answer::decode(&body).map(Some).ok_or_else(|| StoreError::Corrupt("a kept answer does not read back".into()))
}

/// Keeps the answer under the key. A racer that kept one first makes this
/// attempt retry, and the retry replays the racer's answer.
pub async fn remember(tx: &mut Tx, claim: &IdempotencyClaim, answer: &Answer, ctx: &Ctx) -> Result<(), StoreError> {
    tx.sql("INSERT INTO idempotency_keys (user_id, key, fingerprint, status, response, created_at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(claim.user_id)
        .bind(claim.key.as_str())
        .bind(claim.fingerprint.as_slice())
        .bind(RECORD)
        .bind(answer.encode())
        .bind(ctx.now)
        .execute()
        .await
        .map_err(|error| {
            if is_unique(&error, "idempotency_keys_pkey", "idempotency_keys.user_id") {
                StoreError::Raced
            } else {
                StoreError::Database(error)
            }
        })?;
    Ok(())
}

impl Store {
    /// Keeps `answer` under the key on its own (a refusal), unless an answer
    /// is kept there already: the first stays the answer.
    pub async fn remember(&self, claim: &IdempotencyClaim, answer: &Answer, ctx: &Ctx) -> Result<(), StoreError> {
        let mut tx = self.db.begin_locking().await?;
        match remember(&mut tx, claim, answer, ctx).await {
            Ok(()) => Ok(tx.commit().await?),
            Err(StoreError::Raced) => Ok(()),
            Err(other) => Err(other),
        }
    }
}
