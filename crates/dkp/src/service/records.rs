//! What a guild's records tell: attendance rates over a pool's last raids,
//! and the loot history of the guild. Members read both.

use dkp_core::Action;

use super::{Caller, Error, Service, field_id};
use crate::model::{AttendanceRate, Loot, Page, PageRequest};

/// How many of a pool's last raids attendance is counted over, unless asked.
const DEFAULT_LAST: u32 = 10;

/// The most raids attendance is counted over.
const MAX_LAST: u32 = 1000;

impl Service {
    /// Each member of the pool on the roster (with `include_inactive`,
    /// everyone) with how many of its last `last` raids they attended.
    pub async fn attendance_rates(
        &self,
        caller: &Caller,
        slug: &str,
        pool_id: &str,
        last: Option<&str>,
        include_inactive: bool,
    ) -> Result<Vec<AttendanceRate>, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        let pool_id = super::id(pool_id)?;
        let last = match last {
            None => DEFAULT_LAST,
            Some(text) => match text.parse::<u32>() {
                Ok(n) if (1..=MAX_LAST).contains(&n) => n,
                _ => return Err(Error::invalid_field(format!("last: a whole number from 1 to {MAX_LAST}"))),
            },
        };
        Ok(self.store.attendance_rates(access.guild.id, pool_id, last, include_inactive, caller.reads).await?)
    }

    /// The guild's loot, newest lot first, of one winner or one pool if asked.
    pub async fn loot(
        &self,
        caller: &Caller,
        slug: &str,
        member_id: Option<&str>,
        pool_id: Option<&str>,
        page: PageRequest,
    ) -> Result<Page<Loot>, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        let member_id = member_id.map(|m| field_id("member_id", m)).transpose()?;
        let pool_id = pool_id.map(|p| field_id("pool_id", p)).transpose()?;
        Ok(self.store.loot(access.guild.id, member_id, pool_id, page, caller.reads).await?)
    }
}
