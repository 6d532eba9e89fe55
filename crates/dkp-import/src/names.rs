//! Player names compared the way the game compares them: without case, with
//! accents kept (`Scyllá` is not `Scylla`).
//!
//! World of Warcraft writes a name either alone (`Booster`) or with its realm
//! (`Booster-Netherwind`). A file that uses only one form keeps it whole; a
//! file that mixes both forms is compared without the `-Realm` suffix, so the
//! two spellings of one character meet.

/// A name split at the first `-` into the character and its realm.
pub fn split_realm(name: &str) -> (&str, Option<&str>) {
    match name.split_once('-') {
        Some((character, realm)) if !character.is_empty() && !realm.is_empty() => (character, Some(realm)),
        _ => (name, None),
    }
}

/// The comparison key of one name, once the file's form is known.
pub fn key(name: &str, uses_realms: bool, drop_realms: bool) -> String {
    if uses_realms && drop_realms {
        return split_realm(name).0.to_lowercase();
    }
    name.to_lowercase()
}

/// The key a name typed by someone looking into a finished import compares as.
pub fn lookup_key(name: &str, uses_realms: bool, realms_dropped: bool) -> String {
    key(name.trim(), uses_realms, realms_dropped)
}

/// Whether some names carry a realm and others do not.
pub fn mixes_forms<'a>(names: impl IntoIterator<Item = &'a str>) -> bool {
    let (mut with, mut without) = (false, false);
    for name in names {
        match split_realm(name).1 {
            Some(_) => with = true,
            None => without = true,
        }
        if with && without {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_is_ignored_and_accents_are_kept() {
        assert_eq!(key("Lucey", true, false), key("lucey", true, false));
        assert_ne!(key("Scyllá", true, false), key("Scylla", true, false));
        assert_eq!(key("ØSCAR", true, false), "øscar");
    }

    #[test]
    fn realms_are_dropped_only_when_the_file_mixes_both_forms() {
        assert!(mixes_forms(["Booster-Netherwind", "Booster"]));
        assert!(!mixes_forms(["Booster-Netherwind", "Nevets-Netherwind"]));
        assert_eq!(key("Booster-Netherwind", true, true), "booster");
        assert_eq!(key("Booster-Netherwind", true, false), "booster-netherwind");
    }

    #[test]
    fn a_realm_with_a_dash_stays_whole() {
        assert_eq!(split_realm("Tank-Azjol-Nerub"), ("Tank", Some("Azjol-Nerub")));
        assert_eq!(split_realm("-Odd"), ("-Odd", None));
    }

    #[test]
    fn names_of_other_games_keep_their_dashes() {
        assert_eq!(key("Ash-Ka", false, true), "ash-ka");
    }
}
