//! Lag-tolerant reads and the read replica (`DATABASE_READ_URL`).
//!
//! Reads that may lag (standings, entry history, the lists of guilds, members,
//! pools and lots, the audit log) go to the replica when one is configured.
//! Everything inside a write, the tenancy gate, sessions and the auction hot
//! path stay on the primary.
//!
//! Read-your-writes: a caller who wrote carries a mark of the primary's WAL
//! position taken after their write (set on write responses, see
//! `http::read_after`). Their lag-tolerant reads go to the replica only once it
//! has replayed that far, and to the primary until then. The mark travels with
//! the client, so this holds across instances with no sticky sessions and no
//! shared state, and it lasts exactly as long as the replica lags.
//!
//! A read the replica fails runs again on the primary; the replica is then set
//! aside (every read goes to the primary) until a probe finds it answering.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::StoreError;
use super::sql::Db;

/// A position in PostgreSQL's write-ahead log, printed as PostgreSQL does (`16/B374D848`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Lsn(pub u64);

impl fmt::Display for Lsn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:X}/{:X}", self.0 >> 32, self.0 & 0xffff_ffff)
    }
}

impl FromStr for Lsn {
    type Err = ();
    fn from_str(text: &str) -> Result<Lsn, ()> {
        let (high, low) = text.split_once('/').ok_or(())?;
        let part = |hex: &str| match hex.len() {
            1..=8 if hex.bytes().all(|b| b.is_ascii_hexdigit()) => u32::from_str_radix(hex, 16).map_err(|_| ()),
            _ => Err(()),
        };
        Ok(Lsn((u64::from(part(high)?) << 32) | u64::from(part(low)?)))
    }
}

/// Where a read may be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// It must see every committed change: the primary.
    Fresh,
    /// A replica will do once it has replayed the reader's own last write
    /// (if they made one), else the primary.
    MayLag(Option<Lsn>),
}

/// How often a reader who is ahead of the replica may ask it how far it got;
/// the others in that moment read from the primary.
const RECHECK: Duration = Duration::from_millis(5);
/// How often a replica set aside is probed.
const PROBE: Duration = Duration::from_secs(1);
/// The replica's replay lag in seconds (see `Replica::ping`).
const LAG: &str = "SELECT CAST(CASE WHEN NOT pg_is_in_recovery() THEN 0 \
      WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
      ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END AS DOUBLE PRECISION) AS lag_s";

/// The read replica and what this instance knows of it.
#[derive(Clone)]
pub struct Replica {
    inner: Arc<Inner>,
}

struct Inner {
    db: Db,
    /// The furthest replay position seen; it only grows.
    replayed: AtomicU64,
    /// When the replay position was last asked.
    checked: Mutex<Instant>,
    /// Set aside after a failure, until the probe finds it answering.
    down: AtomicBool,
}

impl Replica {
    pub fn new(db: Db) -> Replica {
        let inner = Inner {
            db,
            replayed: AtomicU64::new(0),
            checked: Mutex::new(Instant::now().checked_sub(RECHECK).unwrap_or_else(Instant::now)),
            down: AtomicBool::new(false),
        };
        Replica { inner: Arc::new(inner) }
    }

    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// Whether `read` may be served by the replica now.
    async fn serves(&self, read: Read) -> bool {
        match read {
            Read::Fresh => false,
            _ if self.inner.down.load(Ordering::Relaxed) => false,
            Read::MayLag(None) => true,
            Read::MayLag(Some(after)) => self.replayed(after).await,
        }
    }

    /// Whether the replica has replayed the log up to `after`.
    async fn replayed(&self, after: Lsn) -> bool {
        if self.inner.replayed.load(Ordering::Relaxed) >= after.0 {
            return true;
        }
        {
            let Ok(mut checked) = self.inner.checked.lock() else { return false };
            if checked.elapsed() < RECHECK {
                return false;
            }
            *checked = Instant::now();
        }
        let position = self
            .inner
            .db
            .sql("SELECT CAST(pg_last_wal_replay_lsn() - '0/0' AS BIGINT) AS replayed")
            .fetch_one()
            .await
            .and_then(|row| row.get::<Option<i64>>("replayed"));
        match position {
            Ok(Some(replayed)) => {
                let replayed = u64::try_from(replayed).unwrap_or(0);
                self.inner.replayed.fetch_max(replayed, Ordering::Relaxed);
                replayed >= after.0
            }
            // Not in recovery: not a replica whose progress can be told, so own writes read from the primary.
            Ok(None) => false,
            Err(error) => {
                self.failed(&error);
                false
            }
        }
    }

    /// Sets the replica aside after `error`, and starts the probe that brings it back.
    fn failed(&self, error: &sqlx::Error) {
        metrics::counter!("dkp_db_replica_fallbacks_total").increment(1);
        if self.inner.down.swap(true, Ordering::Relaxed) {
            return;
        }
        tracing::warn!(%error, "the read replica failed; reading from the primary until it answers again");
        let inner = self.inner.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE).await;
                match inner.db.sql("SELECT 1 AS one").fetch_one().await {
                    Ok(_) => {
                        inner.down.store(false, Ordering::Relaxed);
                        tracing::info!("the read replica answers again; lag-tolerant reads go back to it");
                        return;
                    }
                    Err(sqlx::Error::PoolClosed) => return,
                    Err(_) => {}
                }
            }
        });
    }

    /// Answers when the replica does, and sets `dkp_replica_lag_seconds`: how
    /// long ago the last transaction it replayed committed, or 0 when it has
    /// replayed all it received (an idle primary is no lag) or is no replica.
    pub async fn ping(&self) -> Result<(), StoreError> {
        let row = self.inner.db.sql(LAG).fetch_one().await?;
        metrics::gauge!("dkp_replica_lag_seconds").set(row.get::<f64>("lag_s")?);
        Ok(())
    }
}

/// Runs a lag-tolerant read on the replica when `read` allows it and the
/// replica answers, else on the primary; counts where it ran.
pub async fn route<'a, T, F, Fut>(
    primary: &'a Db,
    replica: Option<&'a Replica>,
    read: Read,
    query: F,
) -> Result<T, StoreError>
where
    F: Fn(&'a Db) -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    if let Some(replica) = replica
        && replica.serves(read).await
    {
        match query(&replica.inner.db).await {
            Ok(value) => {
                metrics::counter!("dkp_db_reads_total", "target" => "replica").increment(1);
                return Ok(value);
            }
            Err(StoreError::Database(error)) => replica.failed(&error),
            // Not there yet may only mean the replica is behind: the primary knows.
            Err(StoreError::NotFound) => {}
            // What the data says otherwise (corrupt) the primary would say too.
            Err(other) => return Err(other),
        }
    }
    metrics::counter!("dkp_db_reads_total", "target" => "primary").increment(1);
    query(primary).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_prints_and_parses_as_postgresql_writes_it() {
        let lsn: Lsn = "16/B374D848".parse().unwrap();
        assert_eq!(lsn, Lsn(0x16_B374_D848));
        assert_eq!(lsn.to_string(), "16/B374D848");
        assert_eq!("0/0".parse::<Lsn>(), Ok(Lsn(0)));
    }

    #[test]
    fn what_is_not_a_position_is_refused() {
        for text in ["", "12", "/1", "1/", "x/1", "1/123456789", "-1/2", "+1/2", "1/2/3"] {
            assert!(text.parse::<Lsn>().is_err(), "{text:?}");
        }
    }

    #[test]
    fn positions_order_by_high_then_low_word() {
        assert!("1/0".parse::<Lsn>().unwrap() > "0/FFFFFFFF".parse::<Lsn>().unwrap());
    }
}
