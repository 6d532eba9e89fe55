//! Characters and alts: names in the game, each one member's, all spending
//! from that member's wallet. Members read them; officers add and change
//! them. Names and realms are parsed by `dkp_core::roster` (`Name-Realm` in
//! one string, compared as the game compares them).

use dkp_core::Action;
use dkp_core::roster::{CharacterName, character_trait};
use serde::{Deserialize, Deserializer};

use super::{Caller, Error, Service, field_id};
use crate::model::{Character, CharacterChange, NewCharacter};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCharacterInput {
    pub member_id: String,
    /// The name, or `Name-Realm` when `realm` is left out.
    pub name: String,
    pub realm: Option<String>,
    pub class: Option<String>,
    pub spec: Option<String>,
    #[serde(default)]
    pub main: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CharacterPatch {
    pub member_id: Option<String>,
    /// Left out: unchanged; `null`: cleared.
    #[serde(default, deserialize_with = "present")]
    pub class: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub spec: Option<Option<String>>,
    pub main: Option<bool>,
}

/// A field that is present, `null` or not: told apart from one left out.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(deserializer).map(Some)
}

/// A class or spec as typed, if any.
fn character_trait_of(field: &'static str, text: Option<&str>) -> Result<Option<String>, Error> {
    Ok(text.map(|text| character_trait(field, text)).transpose()?)
}

impl Service {
    /// The guild's characters, or one member's.
    pub async fn characters(
        &self,
        caller: &Caller,
        slug: &str,
        member_id: Option<&str>,
    ) -> Result<Vec<Character>, Error> {
        let access = self.guild_access(caller, slug, Action::Read).await?;
        let member_id = member_id.map(|id| field_id("member_id", id)).transpose()?;
        Ok(self.store.characters(access.guild.id, member_id, caller.reads).await?)
    }

    pub async fn add_character(
        &self,
        caller: &Caller,
        slug: &str,
        input: NewCharacterInput,
    ) -> Result<Character, Error> {
        let access = self.guild_access(caller, slug, Action::AddMember).await?;
        let new = NewCharacter {
            member_id: field_id("member_id", &input.member_id)?,
            name: CharacterName::parse(&input.name, input.realm.as_deref())?,
            class: character_trait_of("class", input.class.as_deref())?,
            spec: character_trait_of("spec", input.spec.as_deref())?,
            main: input.main,
        };
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        Ok(self.store.add_character(access.guild.id, &new, &ctx).await?)
    }

    pub async fn change_character(
        &self,
        caller: &Caller,
        slug: &str,
        character_id: &str,
        patch: CharacterPatch,
    ) -> Result<Character, Error> {
        let access = self.guild_access(caller, slug, Action::AddMember).await?;
        let character_id = super::id(character_id)?;
        let change = CharacterChange {
            member_id: patch.member_id.as_deref().map(|id| field_id("member_id", id)).transpose()?,
            class: patch.class.map(|class| character_trait_of("class", class.as_deref())).transpose()?,
            spec: patch.spec.map(|spec| character_trait_of("spec", spec.as_deref())).transpose()?,
            main: patch.main,
        };
        let ctx = self.ctx(Some(caller.user.id), &caller.request_id);
        Ok(self.store.change_character(access.guild.id, character_id, &change, &ctx).await?)
    }
}
