//! The roster: adding members (users, or raiders by name who have no account
//! yet), listing them, linking an account to a member added by name,
//! changing roles, and taking members off the roster and back.
//!
//! Who may do what: officers add plain members (by username or by name),
//! link accounts, and take plain members off the roster or back; owners do
//! all that for any role and change roles. A guild keeps an active owner. A
//! member taken off the roster reaches the guild no more, and can be given
//! or charged nothing until brought back; their history, balances and
//! characters stay.

use dkp_core::names::Username;
use dkp_core::roster::member_name;
use dkp_core::{Action, Role};
use serde::Deserialize;
use uuid::Uuid;

use super::{Caller, Error, Service};
use crate::model::{Joining, Member, MemberChange};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewMemberInput {
    /// A user's username; or, without it, `name` alone.
    pub username: Option<String>,
    pub name: Option<String>,
    /// `member` when left out.
    pub role: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberPatch {
    pub role: Option<String>,
    /// The account to link to a member who has none.
    pub username: Option<String>,
    pub active: Option<bool>,
}

fn role(text: &str) -> Result<Role, Error> {
    Role::parse(text).ok_or_else(|| Error::invalid_field("role: one of owner, officer, member"))
}

fn username(text: &str) -> Result<String, Error> {
    Ok(Username::parse(text)?.folded())
}

/// Who joins, from a body that names a user or (alone) a name.
fn joining(input: &NewMemberInput, role: Role) -> Result<Joining, Error> {
    match (&input.username, &input.name) {
        (Some(name), None) => Ok(Joining::User { username_folded: username(name)? }),
        (None, Some(name)) if role == Role::Member => Ok(Joining::Unlinked { name: member_name(name)? }),
        (None, Some(_)) => Err(Error::invalid_field("role: a member without an account is a plain member")),
        _ => Err(Error::invalid_field("send a username, or a name alone for a member without an account")),
    }
}

impl Service {
    pub async fn add_member(&self, caller: &Caller, slug: &str, input: NewMemberInput) -> Result<Member, Error> {
        let access = self.guild_access(caller, slug, Action::AddMember).await?;
        let role = role(input.role.as_deref().unwrap_or("member"))?;
        if !access.role.may_add_with(role) {
            return Err(Error::Forbidden);
        }
        let joining = joining(&input, role)?;
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        Ok(self.store.add_member(access.guild.id, &joining, role, &ctx).await?)
    }

    /// The guild's members: those on the roster, or with `include_inactive` everyone.
    pub async fn members(&self, caller: &Caller, slug: &str, include_inactive: bool) -> Result<Vec<Member>, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        Ok(self.store.members(access.guild.id, include_inactive, caller.reads).await?)
    }

    /// One member of the guild, on the roster or not; `None` for an id the guild does not have.
    pub async fn member(&self, caller: &Caller, slug: &str, member_id: Uuid) -> Result<Option<Member>, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        Ok(self.store.member(access.guild.id, member_id, caller.reads).await?)
    }

    /// Changes any of a member's role, account and place on the roster, at once.
    pub async fn change_member(
        &self,
        caller: &Caller,
        slug: &str,
        member_id: &str,
        patch: MemberPatch,
    ) -> Result<Member, Error> {
        let access = self.guild_access(caller, slug, Action::AddMember).await?;
        let member_id = super::id(member_id)?;
        if patch.role.is_some() && !access.role.may(Action::ManageRoles) {
            return Err(Error::Forbidden);
        }
        let change = MemberChange {
            role: patch.role.as_deref().map(role).transpose()?,
            link: patch.username.as_deref().map(username).transpose()?,
            active: patch.active,
            actor_role: access.role,
        };
        if change.role.is_none() && change.link.is_none() && change.active.is_none() {
            return Err(Error::invalid_field("send any of role, username, active"));
        }
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        let member = self.store.change_member(access.guild.id, member_id, &change, &ctx).await?;
        // Whose access changed (a role, a linked account, a place on the roster) sees it at once.
        self.memberships.clear();
        Ok(member)
    }

    /// Takes a member off the roster: what `DELETE .../members/{id}` does.
    pub async fn remove_member(&self, caller: &Caller, slug: &str, member_id: &str) -> Result<Member, Error> {
        let patch = MemberPatch { role: None, username: None, active: Some(false) };
        self.change_member(caller, slug, member_id, patch).await
    }
}
