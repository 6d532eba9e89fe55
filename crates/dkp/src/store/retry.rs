//! The one retry helper for writing transactions (seed risk R1). A transaction
//! that the database refuses for a serialization failure or a deadlock (SQLite:
//! busy) runs again after an exponential backoff with jitter, a bounded number
//! of times. `dkp_tx_commits_total`, `dkp_tx_retries_total` and
//! `dkp_tx_failures_total`, by operation, show how often that happens.

use std::future::Future;
use std::time::Duration;

use super::StoreError;
use super::{postgres, sqlite};

/// How many times one operation is tried at most.
pub const MAX_ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(4);

/// Whether the database asked for the whole transaction to be run again.
pub fn is_retryable(error: &StoreError) -> bool {
    if matches!(error, StoreError::Raced) {
        return true;
    }
    let StoreError::Database(sqlx::Error::Database(db)) = error else {
        return false;
    };
    let Some(code) = db.code() else { return false };
    if db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>().is_some() {
        postgres::is_retryable(&code)
    } else {
        sqlite::is_retryable(&code)
    }
}

/// Runs `attempt` until it succeeds, fails for good, or runs out of attempts.
pub async fn retry<T, F, Fut>(operation: &'static str, mut attempt: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let mut tries = 1;
    loop {
        match attempt().await {
            Ok(value) => {
                metrics::counter!("dkp_tx_commits_total", "op" => operation).increment(1);
                return Ok(value);
            }
            Err(error) if is_retryable(&error) && tries < MAX_ATTEMPTS => {
                metrics::counter!("dkp_tx_retries_total", "op" => operation).increment(1);
                tokio::time::sleep(backoff(tries)).await;
                tries += 1;
            }
            Err(error) => {
                if is_retryable(&error) {
                    metrics::counter!("dkp_tx_failures_total", "op" => operation).increment(1);
                    tracing::warn!(operation, tries, "transaction gave up after repeated serialization failures");
                }
                return Err(error);
            }
        }
    }
}

/// 4 ms, 8 ms, 16 ms … for try 1, 2, 3 …, each scaled by a random 50-150 %.
fn backoff(tries: u32) -> Duration {
    let base = FIRST_BACKOFF * 2u32.saturating_pow(tries - 1);
    let mut byte = [0u8; 1];
    let jitter = if getrandom::fill(&mut byte).is_ok() { f64::from(byte[0]) / 255.0 } else { 0.5 };
    base.mul_f64(0.5 + jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_stays_within_its_jitter() {
        for tries in 1..=4 {
            let base = FIRST_BACKOFF * 2u32.pow(tries - 1);
            let wait = backoff(tries);
            assert!(wait >= base.mul_f64(0.5) && wait <= base.mul_f64(1.5), "{tries}: {wait:?}");
        }
    }

    #[tokio::test]
    async fn a_non_database_error_is_not_retried() {
        let mut calls = 0;
        let result: Result<(), _> = retry("test", || {
            calls += 1;
            async { Err(StoreError::NotFound) }
        })
        .await;
        assert!(matches!(result, Err(StoreError::NotFound)));
        assert_eq!(calls, 1);
    }
}
