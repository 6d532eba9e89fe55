//! What the clients of a round did and saw: every request's outcome, as a
//! client can know it (answered, refused, or unknown: timed out, cut off, or
//! answered 5xx), and whatever broke a guarantee on the spot.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

use crate::harness::Http;

/// A request's outcome as its client saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Answered 2xx: the status and the body.
    Ok(u16, Value),
    /// Refused with a 4xx: nothing happened. The status and the body.
    Refused(u16, Value),
    /// No answer that says what happened: it may or may not have been applied.
    Unknown,
}

impl Outcome {
    fn column(&self) -> usize {
        match self {
            Outcome::Ok(..) => 0,
            Outcome::Refused(..) => 1,
            Outcome::Unknown => 2,
        }
    }

    /// The error code of a refusal.
    pub fn code(&self) -> Option<&str> {
        match self {
            Outcome::Refused(_, body) => body["error"]["code"].as_str(),
            _ => None,
        }
    }

    pub fn body(&self) -> Option<&Value> {
        match self {
            Outcome::Ok(_, body) => Some(body),
            _ => None,
        }
    }
}

/// A signed-in client of the service, behind the balancer.
#[derive(Clone)]
pub struct Caller {
    pub http: Http,
    pub token: String,
}

impl Caller {
    /// Sends a request with an idempotency key if given, waiting at most `limit`.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
        limit: Duration,
    ) -> Outcome {
        let headers: Vec<(&str, &str)> = key.map(|key| ("idempotency-key", key)).into_iter().collect();
        let sent = self.http.send_with(method, path, Some(&self.token), body, &headers);
        match tokio::time::timeout(limit, sent).await {
            Ok(Ok((status, reply))) if (200..300).contains(&status) => Outcome::Ok(status, reply),
            Ok(Ok((status, reply))) if (400..500).contains(&status) => Outcome::Refused(status, reply),
            _ => Outcome::Unknown,
        }
    }
}

/// Counts of outcomes by kind of request: answered, refused, unknown.
#[derive(Debug, Default, Clone)]
pub struct Tally(pub BTreeMap<String, [u64; 3]>);

impl Tally {
    pub fn count(&mut self, kind: &str, outcome: &Outcome) {
        self.0.entry(kind.to_owned()).or_default()[outcome.column()] += 1;
    }

    pub fn add(&mut self, other: &Tally) {
        for (kind, counts) in &other.0 {
            let mine = self.0.entry(kind.clone()).or_default();
            for (m, o) in mine.iter_mut().zip(counts) {
                *m += o;
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.0.values().flatten().sum()
    }
}

/// Broken guarantees, as they are found.
#[derive(Clone, Default)]
pub struct Findings(Arc<Mutex<Vec<String>>>);

impl Findings {
    pub fn add(&self, what: String) {
        self.0.lock().expect("findings").push(what);
    }

    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("findings"))
    }
}

/// A point-moving request of an officer, by the reason it carries (unique
/// to it), with its idempotency key and body.
#[derive(Debug, Clone)]
pub struct LedgerOp {
    pub kind: &'static str,
    pub path: String,
    pub body: Value,
    pub key: String,
    /// What the client last learnt of it.
    pub outcome: Outcome,
}

impl LedgerOp {
    /// The reason it wrote on its entry, which tells the entry apart.
    pub fn reason(&self) -> &str {
        self.body["reason"].as_str().unwrap_or_default()
    }

    /// The entry it made, when it was answered.
    pub fn entry(&self) -> Option<&str> {
        self.outcome.body()?["entry"]["id"].as_str()
    }
}

/// An accepted bid as its answer showed it.
#[derive(Debug, Clone)]
pub struct AckedBid {
    pub id: String,
    pub lot: String,
    pub seq: i64,
    pub amount: String,
}

/// What one WebSocket client received on one channel.
#[derive(Debug, Clone, Default)]
pub struct Track {
    /// The channel as the client names it (`me` for its own).
    pub channel: String,
    /// The channel as the event log names it (`user:<id>` for `me`).
    pub logged_as: String,
    /// Offsets in the order they came.
    pub seen: Vec<i64>,
    pub resets: u32,
    /// A lot channel of a sealed lot.
    pub sealed: bool,
    /// The lot's close (or cancel) has come on it.
    pub ended: bool,
}

impl Track {
    pub fn last(&self) -> i64 {
        self.seen.last().copied().unwrap_or(0)
    }
}
