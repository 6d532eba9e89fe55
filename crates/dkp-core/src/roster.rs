//! The roster's names, compared the way the game compares them: a member's
//! name, and a character's name and realm.
//!
//! Names are compared case-insensitively with Unicode's lowercasing, accents
//! and every other mark kept: `Thrall` and `thrall` are one character,
//! `Thräll` is another. Realms are compared the same way and without spaces
//! or hyphens, as the game writes them in `Name-Realm` (`Argent Dawn` is
//! `ArgentDawn`, `Azjol-Nerub` is `AzjolNerub`).

use crate::names::{InvalidField, display_text};

/// The longest name, realm, class or spec kept, in characters.
pub const MAX_NAME: usize = 64;

/// The form names are compared in: lowercased, accents kept.
pub fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// The form realms are compared in: lowercased, without spaces or hyphens.
pub fn fold_realm(realm: &str) -> String {
    realm.chars().filter(|c| !c.is_whitespace() && *c != '-').flat_map(char::to_lowercase).collect()
}

/// A roster member's name as typed: trimmed, 1-64 characters, no control characters.
pub fn member_name(text: &str) -> Result<String, InvalidField> {
    display_text("name", text, MAX_NAME)
}

/// A character's class or spec as typed: trimmed, 1-64 characters.
pub fn character_trait(field: &'static str, text: &str) -> Result<String, InvalidField> {
    display_text(field, text, MAX_NAME)
}

/// A character's name and realm, parsed from what was typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CharacterName {
    pub name: String,
    pub realm: Option<String>,
}

impl CharacterName {
    /// Parses a name and an optional realm. Without a realm, a name that
    /// holds a `-` is `Name-Realm`, split at the first `-`: the game's
    /// character names never hold one, while realm names may
    /// (`Thrall-Azjol-Nerub` is Thrall of Azjol-Nerub). With a realm given,
    /// the name is taken as it is.
    pub fn parse(name: &str, realm: Option<&str>) -> Result<CharacterName, InvalidField> {
        let (name, realm) = match (realm, name.split_once('-')) {
            (Some(realm), _) => (name, Some(realm)),
            (None, Some((name, realm))) => (name, Some(realm)),
            (None, None) => (name, None),
        };
        let name = display_text("name", name, MAX_NAME)?;
        let realm = realm.map(|realm| display_text("realm", realm, MAX_NAME)).transpose()?;
        if realm.as_deref().is_some_and(|realm| fold_realm(realm).is_empty()) {
            return Err(InvalidField { field: "realm", reason: "must name a realm" });
        }
        Ok(CharacterName { name, realm })
    }

    /// What two characters of a guild may not share: the folded name and
    /// realm (an empty realm for a character without one).
    pub fn key(&self) -> (String, String) {
        (fold(&self.name), self.realm.as_deref().map(fold_realm).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(name: &str, realm: Option<&str>) -> (String, Option<String>) {
        let character = CharacterName::parse(name, realm).expect("a character name");
        (character.name, character.realm)
    }

    #[test]
    fn names_compare_without_case_but_with_their_accents() {
        assert_eq!(fold("Thrall"), fold("tHRALL"));
        assert_ne!(fold("Thräll"), fold("Thrall"));
        assert_eq!(fold("ÉLUNE"), "élune");
        assert_eq!(fold("Ωmega"), fold("ωMEGA"));
    }

    #[test]
    fn realms_compare_without_case_spaces_or_hyphens() {
        assert_eq!(fold_realm("Argent Dawn"), fold_realm("ArgentDawn"));
        assert_eq!(fold_realm("Azjol-Nerub"), "azjolnerub");
        assert_ne!(fold_realm("Drak'thul"), fold_realm("Drakthul"));
    }

    #[test]
    fn name_realm_in_one_string_splits_at_the_first_hyphen() {
        assert_eq!(parsed("Thrall-Draenor", None), ("Thrall".into(), Some("Draenor".into())));
        assert_eq!(parsed("Thrall-Azjol-Nerub", None), ("Thrall".into(), Some("Azjol-Nerub".into())));
        assert_eq!(parsed(" Jaina ", None), ("Jaina".into(), None));
    }

    #[test]
    fn a_realm_given_apart_leaves_the_name_as_it_is() {
        assert_eq!(parsed("Jean-Luc", Some("Argent Dawn")), ("Jean-Luc".into(), Some("Argent Dawn".into())));
    }

    #[test]
    fn the_key_folds_name_and_realm_and_is_empty_without_a_realm() {
        let one = CharacterName::parse("THRALL-argent dawn", None).unwrap();
        let other = CharacterName::parse("thrall", Some("ArgentDawn")).unwrap();
        assert_eq!(one.key(), other.key());
        assert_eq!(CharacterName::parse("Thrall", None).unwrap().key(), ("thrall".into(), String::new()));
        assert_ne!(CharacterName::parse("Thräll", None).unwrap().key(), ("thrall".into(), String::new()));
    }

    #[test]
    fn empty_over_long_or_controlled_names_are_refused() {
        let long = "x".repeat(MAX_NAME + 1);
        for (name, realm) in [("", None), ("  ", None), ("-Draenor", None), ("Thrall-", None), ("Thrall", Some(" "))] {
            assert!(CharacterName::parse(name, realm).is_err(), "{name:?} {realm:?}");
        }
        assert!(CharacterName::parse(&long, None).is_err());
        assert!(CharacterName::parse("Thrall", Some("--")).is_err());
        assert!(CharacterName::parse("Th\u{7}rall", None).is_err());
        assert!(CharacterName::parse(&"é".repeat(MAX_NAME), None).is_ok(), "characters are counted, not bytes");
        assert!(member_name(&long).is_err());
        assert_eq!(member_name(" Ana "), Ok("Ana".into()));
    }
}
