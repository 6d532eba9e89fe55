//! Use cases: what a user can do, checked and carried out through the store.
//! Each takes the caller (who is asking) and already-parsed input, applies
//! tenancy (a non-member sees 404) and roles (a member without the role gets
//! 403), validates with `dkp-core`, calls the `Store`, and only after the
//! commit publishes what changed. Failures are `Error`, the service's own;
//! the transport decides how a client sees them.
//!
//! The parts: `accounts`, `guilds`, `members` (the roster), `characters`,
//! `ledger` with its `ledger_writer`, `imports` (another tool's file into a pool), `decay`, `schedule` (decay that runs by itself, and its
//! preview), `auction` (lots and bids) with its `writer`, `raids` (earning
//! rules, raids and their record), `raid_award`, `records` (attendance
//! rates, loot), `images`, `realtime` (what the feed may
//! subscribe to and replay), `jobs` (the runner), `idempotency`, `limits`,
//! `operations` (readiness), `watch` (the sessions of open connections),
//! `passwords` (hashing on threads of its own).

pub mod accounts;
pub mod auction;
pub mod audit_feed;
pub mod characters;
pub mod decay;
pub mod error;
pub mod guilds;
pub mod idempotency;
pub mod images;
pub mod imports;
pub mod jobs;
pub mod ledger;
mod ledger_writer;
pub mod limits;
mod lot_states;
pub mod members;
pub mod operations;
pub mod outbox;
mod passwords;
pub mod raid_award;
pub mod raids;
pub mod realtime;
mod recent;
pub mod records;
pub mod schedule;
pub mod watch;
mod writer;

use std::sync::Arc;

use dkp_core::{Action, Points};
use serde_json::Value;
use uuid::Uuid;

pub use crate::store::{Lsn, Read};
pub use error::Error;

use crate::blobs::Blobs;
use crate::clock::Clock;
use crate::hub::Hub;
use crate::model::{Code, Membership, PageRequest, Ts, User};
use crate::shared::Shared;
use crate::store::{Ctx, Store};
use crate::telemetry::spans::Spans;
use limits::Limits;

/// What every use case needs.
pub struct Service {
    store: Arc<Store>,
    clock: Arc<dyn Clock>,
    hub: Arc<dyn Hub>,
    auctions: Arc<auction::Auctions>,
    /// The writer of this instance's ledger moves, started with the first.
    ledger: std::sync::OnceLock<tokio::sync::mpsc::Sender<ledger_writer::Queued>>,
    limits: Limits,
    /// Redis, when instances share it.
    shared: Option<Shared>,
    /// Where uploaded images live.
    blobs: Arc<Blobs>,
    session_ttl_hours: u32,
    /// Whether events are queued in the outbox for NATS.
    outbox: bool,
    spans: Option<Spans>,
    /// Sessions seen in the last moments, by token hash.
    sessions: recent::Recent<Vec<u8>, User>,
    /// Memberships seen in the last moments, by guild slug and user.
    memberships: recent::Recent<(String, Uuid), Membership>,
    /// The sessions of open WebSocket connections.
    watch: watch::SessionWatch,
    /// The threads that hash passwords.
    hashers: passwords::Hashers,
}

/// What a service is made of.
pub struct Parts {
    pub store: Arc<Store>,
    pub hub: Arc<dyn Hub>,
    pub clock: Arc<dyn Clock>,
    /// Redis, when instances share it.
    pub shared: Option<Shared>,
    /// Bids one member may place per second, WebSocket connects one address
    /// may open per second (0: no limit).
    pub bid_rate: u32,
    pub connect_rate: u32,
    pub blobs: Arc<Blobs>,
    pub session_ttl_hours: u32,
    /// Whether events are queued in the outbox for NATS (`NATS_URL`).
    pub outbox: bool,
    /// Where spans of the work done for requests go, when they are exported.
    pub spans: Option<Spans>,
}

/// How long a session or membership read is reused.
const RECENT: std::time::Duration = std::time::Duration::from_secs(2);

/// An authenticated request: who, under which session, and its request id.
#[derive(Clone, Debug)]
pub struct Caller {
    pub user: User,
    pub token_hash: Vec<u8>,
    pub request_id: String,
    /// Where this caller's lag-tolerant reads may be served: a replica that
    /// has replayed their own last write.
    pub reads: Read,
}

impl Service {
    pub fn new(parts: Parts) -> Service {
        let limits = Limits::new(parts.shared.clone(), parts.clock.clone(), parts.bid_rate, parts.connect_rate);
        Service {
            store: parts.store,
            auctions: Arc::new(auction::Auctions::new(parts.shared.clone(), parts.clock.clone())),
            ledger: std::sync::OnceLock::new(),
            clock: parts.clock,
            hub: parts.hub,
            limits,
            shared: parts.shared,
            blobs: parts.blobs,
            session_ttl_hours: parts.session_ttl_hours,
            outbox: parts.outbox,
            spans: parts.spans,
            sessions: recent::Recent::new(RECENT),
            memberships: recent::Recent::new(RECENT),
            watch: watch::SessionWatch::default(),
            hashers: passwords::Hashers::start(),
        }
    }

    /// Where the spans of requests go, when they are exported.
    pub fn spans(&self) -> Option<&Spans> {
        self.spans.as_ref()
    }

    /// How long a login lasts, in hours.
    pub fn session_ttl_hours(&self) -> u32 {
        self.session_ttl_hours
    }

    /// Closes the connections to the database.
    pub async fn close(&self) {
        self.store.close().await;
    }

    /// Which database serves, for the log.
    pub fn backend(&self) -> crate::store::Backend {
        self.store.backend()
    }

    /// The clock the service's rules read.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    /// The time now, as the service's clock reads it.
    pub fn now(&self) -> Ts {
        self.clock.now()
    }

    /// The audit context of a change made by `actor`.
    fn ctx(&self, actor: Option<Uuid>, request_id: &str) -> Ctx {
        Ctx { actor, request_id: request_id.to_owned(), now: self.clock.now(), outbox: self.outbox }
    }

    /// The caller's membership of the guild at `slug` if their role allows
    /// `action`: 404 for a non-member (existence never leaks), 403 for a
    /// member without the role.
    pub async fn guild_access(&self, caller: &Caller, slug: &str, action: Action) -> Result<Membership, Error> {
        // What cannot be a slug names no guild.
        dkp_core::names::Slug::parse(slug).map_err(|_| Error::not_found())?;
        let key = (slug.to_owned(), caller.user.id);
        let membership = match self.memberships.get(&key) {
            Some(membership) => membership,
            None => {
                let membership = self.store.membership(slug, caller.user.id).await?.ok_or_else(Error::not_found)?;
                self.memberships.put(key, membership.clone());
                membership
            }
        };
        if !membership.role.may(action) {
            return Err(Error::Forbidden);
        }
        Ok(membership)
    }
}

/// Hands `item` to a writer's queue. So many requests waiting already that
/// this one would wait seconds means the service cannot keep up: 503, and
/// nothing was written.
fn hand_to<T>(writer: &tokio::sync::mpsc::Sender<T>, item: T) -> Result<(), Error> {
    use tokio::sync::mpsc::error::TrySendError;
    match writer.try_send(item) {
        Ok(()) => Ok(()),
        Err(TrySendError::Full(_)) => {
            metrics::counter!("dkp_writer_queue_full_total").increment(1);
            Err(Error::Busy)
        }
        Err(TrySendError::Closed(_)) => Err(writer_stopped()),
    }
}

/// Waits until a writer's queue has something (unless something waits in
/// `waiting` already), then takes into `waiting` whatever else is queued, up
/// to `max`. False once every sender is gone and nothing waits.
async fn gather<T>(
    queue: &mut tokio::sync::mpsc::Receiver<T>,
    waiting: &mut std::collections::VecDeque<T>,
    max: usize,
) -> bool {
    if waiting.is_empty() {
        match queue.recv().await {
            Some(first) => waiting.push_back(first),
            None => return false,
        }
    }
    while waiting.len() < max {
        match queue.try_recv() {
            Ok(next) => waiting.push_back(next),
            Err(_) => break,
        }
    }
    true
}

/// What a request waiting on a writer that stopped answers.
fn writer_stopped() -> Error {
    Error::internal(anyhow::anyhow!("a writer stopped"))
}

/// Reads an amount as the contract allows it: a JSON string of a plain
/// decimal, or a JSON integer. Everything else is `invalid_amount`.
pub fn amount(value: &Value) -> Result<Points, Error> {
    let points = match value {
        Value::String(text) => Points::parse(text)?,
        Value::Number(number) => match number.as_i64() {
            Some(whole) => Points::from_whole(whole)?,
            None if number.is_u64() => return Err(dkp_core::AmountError::OutOfRange.into()),
            None => {
                return Err(Error::invalid(Code::InvalidAmount, "send fractional amounts as a string, like \"12.5\""));
            }
        },
        _ => return Err(Error::invalid(Code::InvalidAmount, "an amount is a decimal string or an integer")),
    };
    Ok(points)
}

/// Reads an id the client got from us; anything else names nothing.
pub fn id(text: &str) -> Result<Uuid, Error> {
    Uuid::try_parse(text).map_err(|_| Error::not_found())
}

/// Reads an id given in a body or query: a malformed one is a 422.
pub fn field_id(field: &'static str, text: &str) -> Result<Uuid, Error> {
    Uuid::try_parse(text).map_err(|_| Error::invalid_field(format!("{field}: not an id")))
}

/// `?limit=` (default 50, at most 500) and `?cursor=` of a list.
pub fn page(limit: Option<&str>, cursor: Option<&str>) -> Result<PageRequest, Error> {
    let limit = match limit {
        None => 50,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if n >= 1 => n.min(500),
            _ => return Err(Error::invalid_field("limit: a whole number from 1 to 500")),
        },
    };
    let before = cursor.map(|c| field_id("cursor", c)).transpose()?;
    Ok(PageRequest { limit, before })
}
