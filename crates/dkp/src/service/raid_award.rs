//! A raid's award: officers pay each attendee what the raid's record makes
//! them due and the raid has not paid yet (`store::raid_award` writes it in
//! one transaction). Idempotent under a key like every point-moving POST;
//! without one it is safe to repeat all the same, since a second award of an
//! unchanged raid writes nothing.

use dkp_core::Action;

use super::idempotency::Request;
use super::{Caller, Error, Service};
use crate::model::{Entry, RaidAwardCommand, Recorded};

impl Service {
    /// The entry written, or `None` when the raid had nothing left to pay or take back.
    pub async fn award_raid(
        &self,
        caller: &Caller,
        slug: &str,
        raid_id: &str,
        idem: Option<Request>,
    ) -> Result<Recorded<Option<Entry>>, Error> {
        let access = self.guild_access(caller, slug, Action::RunRaids).await?;
        let command = RaidAwardCommand {
            guild_id: access.guild.id,
            raid_id: super::id(raid_id)?,
            actor_member: access.member_id,
            idempotency: idem.map(|idem| idem.claim(caller.user.id)),
        };
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        let awarded = self.store.award_raid(&command, &ctx).await;
        self.after_write(command.idempotency.as_ref(), awarded, &ctx).await
    }
}
