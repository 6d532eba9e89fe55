//! Connecting to PostgreSQL: the primary (`DATABASE_URL`) and the optional
//! read replica (`DATABASE_READ_URL`). Statements are prepared per connection
//! and kept, unless the URL says `pgbouncer=true`: then they go through
//! PgBouncer in transaction mode (see `sql::Pooler`).

use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::sql::{Db, Pooler};

/// Which of the configured databases a connection is for, as error messages name it.
struct Role {
    variable: &'static str,
    what: &'static str,
    /// How long a request may wait for a connection before it gives up.
    acquire: Duration,
}

const PRIMARY: Role = Role { variable: "DATABASE_URL", what: "PostgreSQL", acquire: Duration::from_secs(5) };

/// A read that waits long for the replica only delays falling back to the primary.
const REPLICA: Role = Role { variable: "DATABASE_READ_URL", what: "the read replica", acquire: Duration::from_secs(1) };

pub async fn connect(url: &str) -> anyhow::Result<Db> {
    open(url, &PRIMARY).await
}

/// A pool to the read replica; its errors name `DATABASE_READ_URL`.
pub async fn connect_replica(url: &str) -> anyhow::Result<Db> {
    open(url, &REPLICA).await
}

/// Prepared statements kept per connection.
const STATEMENT_CACHE: usize = 2048;

async fn open(url: &str, role: &Role) -> anyhow::Result<Db> {
    let (url, pooler) = pooler_of(url).with_context(|| format!("{} is not valid", role.variable))?;
    let options: PgConnectOptions =
        url.parse().with_context(|| format!("{} is not a valid postgres:// URL", role.variable))?;
    // A batch's statements list as many values as it has bids, lots and
    // bidders, so their texts vary; each text is prepared once per
    // connection and kept, which takes a round trip off each later use.
    let mut options = options.application_name("dkp").statement_cache_capacity(STATEMENT_CACHE);
    if pooler == Pooler::Bouncer {
        // PgBouncer refuses startup parameters it does not know; the service reads no floats.
        options = options.extra_float_digits(None);
    }
    let pool = PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(role.acquire)
        .connect_with(options.clone())
        .await
        .with_context(|| {
            format!(
                "cannot connect to {} ({}) at {}:{}/{}",
                role.what,
                role.variable,
                options.get_host(),
                options.get_port(),
                options.get_database().unwrap_or("")
            )
        })?;
    Ok(Db::Pg(pool, pooler))
}

/// Takes our own `pgbouncer=true|false` parameter off the URL; the rest is for sqlx.
fn pooler_of(url: &str) -> anyhow::Result<(String, Pooler)> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), Pooler::Direct));
    };
    let mut pooler = Pooler::Direct;
    let mut kept = Vec::new();
    for pair in query.split('&') {
        match pair.split_once('=').unwrap_or((pair, "")) {
            ("pgbouncer", "true") => pooler = Pooler::Bouncer,
            ("pgbouncer", "false") => pooler = Pooler::Direct,
            ("pgbouncer", _) => anyhow::bail!("the pgbouncer parameter is true or false"),
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok((url, pooler))
}

/// Whether PostgreSQL asks for the transaction to be run again: a
/// serialization failure or a deadlock.
pub fn is_retryable(code: &str) -> bool {
    matches!(code, "40001" | "40P01")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_without_the_parameter_connects_directly() {
        let (url, pooler) = pooler_of("postgres://u@h/db?sslmode=disable").unwrap();
        assert_eq!((url.as_str(), pooler), ("postgres://u@h/db?sslmode=disable", Pooler::Direct));
    }

    #[test]
    fn the_pgbouncer_parameter_is_taken_off_and_kept_apart() {
        let (url, pooler) = pooler_of("postgres://u@h/db?pgbouncer=true").unwrap();
        assert_eq!((url.as_str(), pooler), ("postgres://u@h/db", Pooler::Bouncer));
        let (url, pooler) = pooler_of("postgres://u@h/db?sslmode=disable&pgbouncer=true&application_name=x").unwrap();
        assert_eq!((url.as_str(), pooler), ("postgres://u@h/db?sslmode=disable&application_name=x", Pooler::Bouncer));
    }

    #[test]
    fn a_pgbouncer_parameter_that_is_not_a_boolean_is_refused() {
        assert!(pooler_of("postgres://u@h/db?pgbouncer=yes").is_err());
        assert!(pooler_of("postgres://u@h/db?pgbouncer").is_err());
    }
}
