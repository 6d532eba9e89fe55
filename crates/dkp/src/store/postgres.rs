//! Connecting to PostgreSQL. Statements are prepared per connection and kept;
//! behind PgBouncer in transaction mode that must be turned off (a later step).

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::sql::Db;

pub async fn connect(url: &str) -> anyhow::Result<Db> {
    let options: PgConnectOptions = url.parse().context("DATABASE_URL is not a valid postgres:// URL")?;
    let options = options.application_name("dkp");
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options.clone())
        .await
        .with_context(|| {
            format!(
                "cannot connect to PostgreSQL at {}:{}/{}",
                options.get_host(),
                options.get_port(),
                options.get_database().unwrap_or("")
            )
        })?;
    Ok(Db::Pg(pool))
}

/// Whether PostgreSQL asks for the transaction to be run again: a
/// serialization failure or a deadlock.
pub fn is_retryable(code: &str) -> bool {
    matches!(code, "40001" | "40P01")
}
