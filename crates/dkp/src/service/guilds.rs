//! Guilds, members, roles and the audit log.

use dkp_core::names::{self, Slug, Username};
use dkp_core::{Action, Role};
use serde::Deserialize;

use super::Error;
use super::{Caller, Service};
use crate::model::{AuditRecord, Member, Membership, NewGuild, Page, PageRequest};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewGuildInput {
    pub name: String,
    pub slug: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMemberInput {
    pub username: String,
    pub role: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleInput {
    pub role: String,
}

fn role(text: &str) -> Result<Role, Error> {
    Role::parse(text).ok_or_else(|| Error::invalid_field("role: one of owner, officer, member"))
}

impl Service {
    pub async fn create_guild(&self, caller: &Caller, input: NewGuildInput) -> Result<Membership, Error> {
        let slug = Slug::parse(&input.slug)?;
        let name = names::display_text("name", &input.name, 100)?;
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        Ok(self.store.create_guild(&NewGuild { slug: slug.as_str().to_owned(), name }, &ctx).await?)
    }

    pub async fn add_member(&self, caller: &Caller, slug: &str, input: NewMemberInput) -> Result<Member, Error> {
        let access = self.guild_access(caller, slug, Action::AddMember).await?;
        let role = role(&input.role)?;
        if !access.role.may_add_with(role) {
            return Err(Error::Forbidden);
        }
        let username = Username::parse(&input.username)?;
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        Ok(self.store.add_member(access.guild.id, &username.folded(), role, &ctx).await?)
    }

    pub async fn members(&self, caller: &Caller, slug: &str) -> Result<Vec<Member>, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        Ok(self.store.members(access.guild.id, caller.reads).await?)
    }

    pub async fn set_role(
        &self,
        caller: &Caller,
        slug: &str,
        member_id: &str,
        input: RoleInput,
    ) -> Result<Member, Error> {
        let access = self.guild_access(caller, slug, Action::ManageRoles).await?;
        let member_id = super::id(member_id)?;
        let role = role(&input.role)?;
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        let member = self.store.set_role(access.guild.id, member_id, role, &ctx).await?;
        self.memberships.clear();
        Ok(member)
    }

    pub async fn audit(&self, caller: &Caller, slug: &str, page: PageRequest) -> Result<Page<AuditRecord>, Error> {
        let access = self.guild_access(caller, slug, Action::ReadAudit).await?;
        Ok(self.store.audit(access.guild.id, page, caller.reads).await?)
    }
}
