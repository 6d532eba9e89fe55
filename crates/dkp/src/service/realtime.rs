//! What the real-time feed may do (seed risk R2): which internal channel a
//! name a client subscribes to stands for, and whether this caller may follow
//! it (`me`, a guild they belong to, a lot of such a guild); the live frames
//! of a channel; and the event log a reconnecting client is replayed from.

use std::sync::Arc;

use dkp_core::Action;
use tokio::sync::broadcast;

use super::limits::Limited;
use super::{Caller, Error, Service};
use crate::hub::Frame;
use crate::model::{Event, User, guild_channel, user_channel};
use crate::store::Read;

impl Service {
    /// Admits one more WebSocket connection from `address` in this second, or refuses it.
    pub async fn admit_connect(&self, address: &str) -> Result<(), Error> {
        self.limits.admit(Limited::Connect, address).await
    }

    /// The internal channel behind `name`, if `user` may follow it.
    pub async fn channel(&self, user: &User, name: &str) -> Result<String, Error> {
        let caller =
            Caller { user: user.clone(), token_hash: Vec::new(), request_id: String::new(), reads: Read::Fresh };
        if name == "me" {
            return Ok(user_channel(user.id));
        }
        if let Some(slug) = name.strip_prefix("guild:") {
            let access = self.guild_access(&caller, slug, Action::Read).await?;
            return Ok(guild_channel(&access.guild.slug));
        }
        if let Some(id) = name.strip_prefix("lot:") {
            let lot_id = super::id(id)?;
            let slug = self.store.lot_guild(lot_id).await?.ok_or_else(Error::not_found)?;
            self.guild_access(&caller, &slug, Action::Read).await?;
            return Ok(crate::model::lot_channel(lot_id));
        }
        Err(Error::not_found())
    }

    /// Frames published on `channel` from now on.
    pub fn subscribe(&self, channel: &str) -> broadcast::Receiver<Arc<Frame>> {
        self.hub.subscribe(channel)
    }

    /// Up to `limit` logged events of `channel` after `offset`, in order.
    pub async fn events_since(&self, channel: &str, offset: i64, limit: u32) -> Result<Vec<Event>, Error> {
        Ok(self.store.events_since(channel, offset, limit).await?)
    }

    /// The oldest and newest offsets the log keeps for `channel`.
    pub async fn event_bounds(&self, channel: &str) -> Result<Option<(i64, i64)>, Error> {
        Ok(self.store.event_bounds(channel).await?)
    }

    /// Sends events to the subscribers of their channels (as a commit does).
    pub fn publish(&self, events: &[Event]) {
        self.hub.publish(events);
    }
}
