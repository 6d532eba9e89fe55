//! Use cases: what a user can do, checked and carried out through the store.
//! Each takes the caller (who is asking) and already-parsed input, applies
//! tenancy (a non-member sees 404) and roles (a member without the role gets
//! 403), validates with `dkp-core`, and calls the `Store`.

pub mod accounts;
pub mod auction;
pub mod decay;
pub mod guilds;
pub mod images;
pub mod ledger;
mod lot_states;
mod recent;

use std::sync::Arc;

use dkp_core::{Action, Points};
use serde_json::Value;
use uuid::Uuid;

use crate::blobs::Blobs;
use crate::clock::{Clock, SystemClock};
use crate::error::ApiError;
use crate::hub::Hub;
use crate::limits::Limits;
use crate::shared::Shared;
use crate::store::{Ctx, Membership, PageRequest, Read, Store, User};

/// What every use case needs.
pub struct Service {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    pub hub: Arc<dyn Hub>,
    pub auctions: Arc<auction::Auctions>,
    pub limits: Limits,
    /// Redis, when instances share it.
    pub shared: Option<Shared>,
    /// Where uploaded images live.
    pub blobs: Arc<Blobs>,
    pub session_ttl_hours: u32,
    /// Sessions seen in the last moments, by token hash.
    sessions: recent::Recent<Vec<u8>, User>,
    /// Memberships seen in the last moments, by guild slug and user.
    memberships: recent::Recent<(String, Uuid), Membership>,
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
    pub fn new(store: Arc<dyn Store>, hub: Arc<dyn Hub>, session_ttl_hours: u32) -> Service {
        Service::with_parts(store, hub, None, Limits::new(None, 0, 0), session_ttl_hours)
    }

    /// A service whose instances share `shared` (Redis), with these limits.
    pub fn with_parts(
        store: Arc<dyn Store>,
        hub: Arc<dyn Hub>,
        shared: Option<Shared>,
        limits: Limits,
        session_ttl_hours: u32,
    ) -> Service {
        Service {
            store,
            clock: Arc::new(SystemClock),
            hub,
            auctions: Arc::new(auction::Auctions::new(shared.clone())),
            limits,
            shared,
            blobs: Arc::new(Blobs::in_memory()),
            session_ttl_hours,
            sessions: recent::Recent::new(RECENT),
            memberships: recent::Recent::new(RECENT),
        }
    }

    /// The same service keeping images in `blobs`.
    pub fn with_blobs(mut self, blobs: Arc<Blobs>) -> Service {
        self.blobs = blobs;
        self
    }

    /// The audit context of a change made by `actor`.
    pub fn ctx(&self, actor: Option<Uuid>, request_id: &str) -> Ctx {
        Ctx { actor, request_id: request_id.to_owned(), now: self.clock.now() }
    }

    /// The caller's membership of the guild at `slug` if their role allows
    /// `action`: 404 for a non-member (existence never leaks), 403 for a
    /// member without the role.
    pub async fn guild_access(&self, caller: &Caller, slug: &str, action: Action) -> Result<Membership, ApiError> {
        // What cannot be a slug names no guild.
        dkp_core::names::Slug::parse(slug).map_err(|_| ApiError::NotFound)?;
        let key = (slug.to_owned(), caller.user.id);
        let membership = match self.memberships.get(&key) {
            Some(membership) => membership,
            None => {
                let membership = self.store.membership(slug, caller.user.id).await?.ok_or(ApiError::NotFound)?;
                self.memberships.put(key, membership.clone());
                membership
            }
        };
        if !membership.role.may(action) {
            return Err(ApiError::Forbidden);
        }
        Ok(membership)
    }
}

/// Reads an amount as the contract allows it: a JSON string of a plain
/// decimal, or a JSON integer. Everything else is `invalid_amount`.
pub fn amount(value: &Value) -> Result<Points, ApiError> {
    let points = match value {
        Value::String(text) => Points::parse(text)?,
        Value::Number(number) => match number.as_i64() {
            Some(whole) => Points::from_whole(whole)?,
            None if number.is_u64() => return Err(dkp_core::AmountError::OutOfRange.into()),
            None => {
                return Err(ApiError::unprocessable(
                    "invalid_amount",
                    "send fractional amounts as a string, like \"12.5\"",
                ));
            }
        },
        _ => {
            return Err(ApiError::unprocessable("invalid_amount", "an amount is a decimal string or an integer"));
        }
    };
    Ok(points)
}

/// Reads an id the client got from us; anything else names nothing.
pub fn id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(text).map_err(|_| ApiError::NotFound)
}

/// Reads an id given in a body or query: a malformed one is a 422.
pub fn field_id(field: &'static str, text: &str) -> Result<Uuid, ApiError> {
    Uuid::try_parse(text).map_err(|_| ApiError::unprocessable("invalid_field", format!("{field}: not an id")))
}

/// `?limit=` (default 50, at most 500) and `?cursor=` of a list.
pub fn page(limit: Option<&str>, cursor: Option<&str>) -> Result<PageRequest, ApiError> {
    let limit = match limit {
        None => 50,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if n >= 1 => n.min(500),
            _ => {
                return Err(ApiError::unprocessable("invalid_field", "limit: a whole number from 1 to 500"));
            }
        },
    };
    let before = cursor.map(|c| field_id("cursor", c)).transpose()?;
    Ok(PageRequest { limit, before })
}
