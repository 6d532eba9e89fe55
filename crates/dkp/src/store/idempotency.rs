//! The answers kept under idempotency keys (see `service::idempotency`):
//! read before a change, written in its transaction.
//!
//! A row's `status` is 0 when `response` holds the answer's record
//! (`model::Answer`); rows written before answers were kept as records hold
//! the HTTP status and the rendered body, and are replayed as they are.

use super::audit::is_unique;
use std::collections::HashMap;

use uuid::Uuid;

use super::sql::{Row, Rows, Tx, Writes};
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
    kept_answer(&row, claim).map(Some)
}

/// The same for the keys of a whole batch, read in one statement (not a
/// round trip each inside the write lane): for each claim in order, its
/// kept answer, none, or `IdempotencyKeyReused`.
pub async fn replay_all(
    tx: &mut Tx,
    claims: &[&IdempotencyClaim],
) -> Result<Vec<Result<Option<Answer>, StoreError>>, StoreError> {
    if claims.is_empty() {
        return Ok(Vec::new());
    }
    let wanted = Rows::of(claims.iter().map(|claim| (claim.user_id, claim.key.clone())));
    let sql = format!(
        "SELECT k.user_id, k.key, k.fingerprint, k.status, k.response FROM {} \
         JOIN idempotency_keys k ON k.user_id = v.column1 AND k.key = v.column2",
        wanted.relation(tx.backend(), 1)
    );
    let mut kept = HashMap::new();
    for row in tx.sql_built(sql).bind_rows(wanted).fetch_all().await? {
        kept.insert((row.get::<Uuid>("user_id")?, row.get::<String>("key")?), row);
    }
    Ok(claims
        .iter()
        .map(|claim| match kept.get(&(claim.user_id, claim.key.clone())) {
            Some(row) => kept_answer(row, claim).map(Some),
            None => Ok(None),
        })
        .collect())
}

/// The answer a kept row holds for `claim`, or `IdempotencyKeyReused` if it
/// was kept for another request.
fn kept_answer(row: &Row, claim: &IdempotencyClaim) -> Result<Answer, StoreError> {
    if row.get::<Vec<u8>>("fingerprint")? != claim.fingerprint {
        return Err(StoreError::IdempotencyKeyReused);
    }
    let (status, body): (i32, String) = (row.get("status")?, row.get("response")?);
    if status != RECORD {
        return Ok(Answer::Rendered { status: u16::try_from(status).unwrap_or(200), body });
    }
    Answer::decode(&body).ok_or_else(|| StoreError::Corrupt("a kept answer does not read back".into()))
}

/// Keeps the answer under the key. A racer that kept one first makes this
/// attempt retry, and the retry replays the racer's answer.
pub async fn remember(tx: &mut Tx, claim: &IdempotencyClaim, answer: &Answer, ctx: &Ctx) -> Result<(), StoreError> {
    let mut writes = Writes::default();
    add_kept(&mut writes, [(claim, answer)], ctx);
    writes.run(tx).await.map_err(kept_or_fault)
}

/// Adds the answers to keep under their keys to a batch's writes: one
/// statement for all of them, not a round trip each (a raid night's bids
/// mostly come with keys). Run them with `kept_or_fault` for their errors.
pub fn add_kept<'a>(
    writes: &mut Writes,
    kept: impl IntoIterator<Item = (&'a IdempotencyClaim, &'a Answer)>,
    ctx: &Ctx,
) {
    let rows: Vec<_> = kept
        .into_iter()
        .map(|(claim, answer)| {
            (claim.user_id, claim.key.clone(), claim.fingerprint.clone(), i64::from(RECORD), answer.encode(), ctx.now)
        })
        .collect();
    writes.add(INSERT_KEPT, Rows::of(rows.into_iter()));
}

const INSERT_KEPT: &str =
    "INSERT INTO idempotency_keys (user_id, key, fingerprint, status, response, created_at) SELECT * FROM {rows}";

/// The error of writes that kept answers: a key a racer kept first makes
/// the attempt retry (and the retry replays the racer's answer).
pub fn kept_or_fault(error: sqlx::Error) -> StoreError {
    if kept_first(&error) { StoreError::Raced } else { StoreError::Database(error) }
}

/// Whether writes failed on a key another writer kept first.
pub fn kept_first(error: &sqlx::Error) -> bool {
    is_unique(error, "idempotency_keys_pkey", "idempotency_keys.user_id")
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
