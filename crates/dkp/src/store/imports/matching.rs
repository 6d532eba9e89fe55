//! How a file's players meet the guild's roster, decided from what the
//! roster holds (read inside the import's transaction, or for a dry run
//! outside any): a player is the member of the same name as compared
//! (`dkp_core::roster::fold`), else the member owning one of the player's
//! characters, else a new member without an account. Pure: no I/O.

use std::collections::{BTreeMap, HashMap, HashSet};

use dkp_core::Points;
use dkp_core::roster::fold;
use uuid::Uuid;

use crate::model::{ImportedCharacter, ImportedPlayer, RosterCounts};

/// The guild's roster as far as matching needs it.
#[derive(Debug, Default)]
pub(super) struct Roster {
    /// Folded member name to member id (members off the roster too: names stay taken).
    pub members: HashMap<String, Uuid>,
    /// A character's key (`CharacterName::key`) to its member.
    pub characters: HashMap<(String, String), Uuid>,
    /// Members that have a main already.
    pub with_main: HashSet<Uuid>,
}

/// Whom the pool's balance goes to: a member of the roster, or the n-th new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Target {
    Existing(Uuid),
    New(usize),
}

/// What an import writes to the roster, and the balances it sets.
#[derive(Debug, Default)]
pub(super) struct Matching {
    /// New members' names, in the order of the file.
    pub new_members: Vec<String>,
    /// Characters to add, each to its member.
    pub new_characters: Vec<(Target, ImportedCharacter)>,
    /// The balance each member of the file is to hold (players matched to one member add up).
    pub balances: BTreeMap<Target, Points>,
    pub counts: RosterCounts,
}

/// Matches every player of the file to the roster.
pub(super) fn match_players(players: &[ImportedPlayer], roster: &Roster) -> Result<Matching, dkp_core::AmountError> {
    let mut matching = Matching::default();
    let mut new_by_name: HashMap<String, usize> = HashMap::new();
    let mut characters_taken: HashSet<(String, String)> = roster.characters.keys().cloned().collect();
    let mut with_main = roster.with_main.clone();
    let mut new_with_main: HashSet<usize> = HashSet::new();
    let mut matched: HashSet<Uuid> = HashSet::new();
    for player in players {
        let folded = fold(&player.name);
        let existing = roster.members.get(&folded).copied().or_else(|| {
            player.characters.iter().find_map(|character| roster.characters.get(&character.name.key()).copied())
        });
        let target = match (existing, new_by_name.get(&folded)) {
            (Some(member), _) => {
                if matched.insert(member) {
                    matching.counts.members_matched += 1;
                }
                Target::Existing(member)
            }
            (None, Some(index)) => Target::New(*index),
            (None, None) => {
                let index = matching.new_members.len();
                matching.new_members.push(player.name.clone());
                new_by_name.insert(folded, index);
                matching.counts.members_created += 1;
                Target::New(index)
            }
        };
        let slot = matching.balances.entry(target).or_insert(Points::ZERO);
        *slot = slot.checked_add(player.balance)?;
        for character in &player.characters {
            if !characters_taken.insert(character.name.key()) {
                continue;
            }
            // One main per member: a member who has one keeps it.
            let main = character.main
                && match target {
                    Target::Existing(member) => with_main.insert(member),
                    Target::New(index) => new_with_main.insert(index),
                };
            matching.new_characters.push((target, ImportedCharacter { main, ..character.clone() }));
            matching.counts.characters_created += 1;
        }
    }
    Ok(matching)
}

#[cfg(test)]
mod tests {
    use dkp_core::roster::CharacterName;

    use super::*;

    fn player(name: &str, characters: &[&str], balance: i64) -> ImportedPlayer {
        ImportedPlayer {
            name: name.to_owned(),
            characters: characters
                .iter()
                .enumerate()
                .map(|(index, character)| ImportedCharacter {
                    name: CharacterName::parse(character, None).expect("a name"),
                    class: None,
                    main: index == 0,
                })
                .collect(),
            balance: Points::from_stored(balance),
        }
    }

    #[test]
    fn players_match_members_by_name_then_by_character_and_the_rest_are_new() {
        let ana = Uuid::now_v7();
        let bo = Uuid::now_v7();
        let mut roster = Roster::default();
        roster.members.insert("ana".into(), ana);
        roster.members.insert("bo".into(), bo);
        roster.characters.insert(("bolt".into(), String::new()), bo);
        roster.with_main.insert(bo);
        let players =
            [player("ANA", &[], 100), player("Bolter", &["Bolt", "Zap"], 50), player("Cid", &["Cid", "Cidalt"], 7)];

        let matching = match_players(&players, &roster).unwrap();

        assert_eq!(matching.counts, RosterCounts { members_created: 1, members_matched: 2, characters_created: 3 });
        assert_eq!(matching.new_members, vec!["Cid".to_owned()]);
        assert_eq!(matching.balances[&Target::Existing(ana)], Points::from_stored(100));
        assert_eq!(matching.balances[&Target::Existing(bo)], Points::from_stored(50));
        let mains: Vec<(Target, bool)> = matching.new_characters.iter().map(|(t, c)| (*t, c.main)).collect();
        assert_eq!(mains, vec![(Target::Existing(bo), false), (Target::New(0), true), (Target::New(0), false)]);
    }
}
