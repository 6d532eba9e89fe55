//! What the store's files share: the audit row written beside every change,
//! the mapping of named unique constraints to conflict codes, and pages.

use dkp_core::Role;
use serde::Serialize;
use uuid::Uuid;

use super::sql::{JsonCell, Rows, Tx, Writes};
use super::{Ctx, StoreError};
use crate::model::{Code, Page, PageRequest};

/// An audit row to write beside a change.
pub struct AuditWrite<'a> {
    pub guild_id: Option<Uuid>,
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub ctx: &'a Ctx,
}

impl<'a> AuditWrite<'a> {
    pub fn new(
        ctx: &'a Ctx,
        guild_id: Option<Uuid>,
        action: &'static str,
        target_type: &'static str,
        target_id: impl ToString,
    ) -> Self {
        AuditWrite { guild_id, action, target_type, target_id: target_id.to_string(), before: None, after: None, ctx }
    }

    pub fn before(mut self, value: impl Serialize) -> Self {
        self.before = serde_json::to_value(value).ok();
        self
    }

    pub fn after(mut self, value: impl Serialize) -> Self {
        self.after = serde_json::to_value(value).ok();
        self
    }
}

/// Writes the audit row of a change, inside the change's transaction.
pub async fn audit(tx: &mut Tx, row: AuditWrite<'_>) -> Result<(), StoreError> {
    let mut writes = Writes::default();
    add_audit_writes(&mut writes, vec![row]);
    writes.run(tx).await?;
    Ok(())
}

/// Adds the audit rows of many changes to `writes`, one statement for them all.
pub fn add_audit_writes(writes: &mut Writes, rows: Vec<AuditWrite<'_>>) {
    let rows = rows.into_iter().map(|row| {
        (
            Uuid::now_v7(),
            row.guild_id,
            row.ctx.actor,
            row.action.to_owned(),
            row.target_type.to_owned(),
            row.target_id,
            row.ctx.request_id.clone(),
            row.ctx.now,
            JsonCell(row.before),
            JsonCell(row.after),
        )
    });
    writes.add(INSERT_AUDIT, Rows::of(rows));
}

const INSERT_AUDIT: &str = "INSERT INTO audit_log \
     (id, guild_id, actor_id, action, target_type, target_id, request_id, created_at, before, after) SELECT * FROM {rows}";

/// Maps a named unique constraint to a stable conflict code.
pub trait OnUnique<T> {
    /// `constraint` is the PostgreSQL constraint name; `columns` the
    /// `table.column` SQLite names in its message.
    fn on_unique(self, constraint: &str, columns: &str, code: Code) -> Result<T, StoreError>;

    /// The same for each of several constraints, as `(constraint, columns, code)`.
    fn on_uniques(self, constraints: &[(&str, &str, Code)]) -> Result<T, StoreError>;
}

impl<T> OnUnique<T> for Result<T, sqlx::Error> {
    fn on_unique(self, constraint: &str, columns: &str, code: Code) -> Result<T, StoreError> {
        self.on_uniques(&[(constraint, columns, code)])
    }

    fn on_uniques(self, constraints: &[(&str, &str, Code)]) -> Result<T, StoreError> {
        self.map_err(|error| {
            match constraints.iter().find(|(constraint, columns, _)| is_unique(&error, constraint, columns)) {
                Some((_, _, code)) => StoreError::Conflict(*code),
                None => StoreError::Database(error),
            }
        })
    }
}

/// Whether a write failed on the named unique constraint.
pub fn is_unique(error: &sqlx::Error, constraint: &str, columns: &str) -> bool {
    matches!(error, sqlx::Error::Database(db)
        if db.is_unique_violation() && (db.constraint() == Some(constraint) || db.message().contains(columns)))
}

/// Parses a role read back from the database.
pub fn stored_role(text: &str) -> Result<Role, StoreError> {
    Role::parse(text).ok_or_else(|| StoreError::Corrupt(format!("unknown role {text:?}")))
}

/// Cuts a list read with one row too many into a page and its continuation.
pub fn paginate<T>(mut items: Vec<T>, page: PageRequest, id: impl Fn(&T) -> Uuid) -> Page<T> {
    let limit = page.limit as usize;
    let more = items.len() > limit;
    items.truncate(limit);
    let next = if more { items.last().map(id) } else { None };
    Page { items, next }
}
