//! Guilds and the audit log (the roster is `members`).

use dkp_core::Action;
use dkp_core::names::{self, Slug};
use serde::Deserialize;

use super::Error;
use super::{Caller, Service};
use crate::model::{AuditRecord, Membership, NewGuild, Page, PageRequest};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGuildInput {
    pub name: String,
    pub slug: String,
}

impl Service {
    pub async fn create_guild(&self, caller: &Caller, input: NewGuildInput) -> Result<Membership, Error> {
        let slug = Slug::parse(&input.slug)?;
        let name = names::display_text("name", &input.name, 100)?;
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        Ok(self.store.create_guild(&NewGuild { slug: slug.as_str().to_owned(), name }, &ctx).await?)
    }

    pub async fn audit(&self, caller: &Caller, slug: &str, page: PageRequest) -> Result<Page<AuditRecord>, Error> {
        let access = self.guild_access(caller, slug, Action::ReadAudit).await?;
        Ok(self.store.audit(access.guild.id, page, caller.reads).await?)
    }
}
