//! Names that compare equal become one member: their characters join, their
//! stated balances add, and the import warns, naming the spellings it merged.
//! A twink (alt) folded into its main joins the main's member the same way,
//! but silently: the file asked for it.

use std::collections::HashMap;

use dkp_core::Points;

use crate::builder::RawName;
use crate::error::{ErrorKind, ImportError};
use crate::model::{Character, Player, PlayerRef, Posting, Stated};
use crate::names;

/// Longest chain of twink-of-twink links followed before a name is taken alone.
const MAX_MAIN_LINKS: usize = 16;

/// The merged players, and where each provisional ref now points.
pub(crate) struct Merged {
    pub players: Vec<Player>,
    pub final_ref: Vec<PlayerRef>,
    pub warnings: Vec<String>,
}

struct Group {
    spellings: Vec<String>,
    character_keys: Vec<String>,
}

pub(crate) fn merge_players(raw: &[RawName], uses_realms: bool, drop_realms: bool) -> Merged {
    let keys: Vec<String> = raw.iter().map(|name| names::key(&name.text, uses_realms, drop_realms)).collect();
    let mut merged = Merged { players: Vec::new(), final_ref: vec![PlayerRef(u32::MAX); raw.len()], warnings: vec![] };
    let mut groups: Vec<Group> = Vec::new();
    let mut by_key: HashMap<&str, PlayerRef> = HashMap::new();
    for (index, name) in raw.iter().enumerate() {
        if name.main.is_some() && main_of(raw, index).is_some() {
            continue;
        }
        let player = *by_key.entry(&keys[index]).or_insert_with(|| {
            let display = if drop_realms { names::split_realm(&name.text).0 } else { name.text.as_str() };
            merged.players.push(Player {
                name: display.to_owned(),
                key: keys[index].clone(),
                class: None,
                characters: Vec::new(),
            });
            groups.push(Group { spellings: Vec::new(), character_keys: Vec::new() });
            PlayerRef(merged.players.len() as u32 - 1)
        });
        merged.final_ref[index] = player;
        let group = &mut groups[player.index()];
        if !group.spellings.contains(&name.text) {
            group.spellings.push(name.text.clone());
        }
        join(&mut merged.players[player.index()], group, name, &keys[index], uses_realms);
    }
    for (index, name) in raw.iter().enumerate() {
        if let Some(root) = name.main.and(main_of(raw, index)) {
            let player = merged.final_ref[root];
            merged.final_ref[index] = player;
            join(&mut merged.players[player.index()], &mut groups[player.index()], name, &keys[index], uses_realms);
        }
    }
    for (player, group) in merged.players.iter().zip(&groups) {
        if group.spellings.len() > 1 {
            let spellings: Vec<String> = group.spellings.iter().map(|text| format!("'{text}'")).collect();
            merged.warnings.push(format!(
                "{} are one player (names compare without case{}): merged as '{}'",
                spellings.join(", "),
                if drop_realms { " and without realm" } else { "" },
                player.name
            ));
        }
    }
    merged
}

/// The raw name at the root of a twink's chain of mains, if the chain ends.
fn main_of(raw: &[RawName], index: usize) -> Option<usize> {
    let mut at = index;
    for _ in 0..MAX_MAIN_LINKS {
        match raw[at].main {
            Some(main) => at = main.index(),
            None => return Some(at),
        }
    }
    None
}

fn join(player: &mut Player, group: &mut Group, name: &RawName, key: &str, uses_realms: bool) {
    if player.class.is_none() {
        player.class = name.class;
    }
    if group.character_keys.iter().any(|known| known == key) {
        return;
    }
    group.character_keys.push(key.to_owned());
    let (character, realm) = if uses_realms { names::split_realm(&name.text) } else { (name.text.as_str(), None) };
    player.characters.push(Character {
        name: character.to_owned(),
        key: key.to_owned(),
        realm: realm.map(str::to_owned),
        class: name.class,
        main: player.characters.is_empty(),
    });
}

/// Stated balances per merged player: records of one player add up.
pub(crate) fn merge_stated(
    stated: &[Stated],
    remap: &impl Fn(PlayerRef) -> PlayerRef,
    players: &[Player],
) -> Result<(Vec<Stated>, Vec<String>), ImportError> {
    let mut merged: Vec<Stated> = Vec::new();
    let mut records: Vec<usize> = Vec::new();
    let mut at: HashMap<PlayerRef, usize> = HashMap::new();
    for record in stated {
        let player = remap(record.player);
        match at.get(&player) {
            Some(&index) => {
                let sum = &mut merged[index];
                sum.balance = add(sum.balance, record.balance)?;
                sum.earned = add_optional(sum.earned, record.earned)?;
                sum.spent = add_optional(sum.spent, record.spent)?;
                records[index] += 1;
            }
            None => {
                at.insert(player, merged.len());
                merged.push(Stated { player, ..*record });
                records.push(1);
            }
        }
    }
    let warnings = merged
        .iter()
        .zip(&records)
        .filter(|(_, count)| **count > 1)
        .map(|(sum, count)| {
            let name = &players[sum.player.index()].name;
            format!("'{name}' has {count} balance records; they are added: {}", sum.balance)
        })
        .collect();
    Ok((merged, warnings))
}

/// Points a row's postings at merged players, one posting per player.
pub(crate) fn remap_postings(
    postings: &mut Vec<Posting>,
    remap: &impl Fn(PlayerRef) -> PlayerRef,
) -> Result<(), ImportError> {
    let mut merged: Vec<Posting> = Vec::with_capacity(postings.len());
    for posting in postings.iter() {
        let player = remap(posting.player);
        match merged.iter_mut().find(|known| known.player == player) {
            Some(known) => known.amount = add(known.amount, posting.amount)?,
            None => merged.push(Posting { player, amount: posting.amount }),
        }
    }
    *postings = merged;
    Ok(())
}

fn add(left: Points, right: Points) -> Result<Points, ImportError> {
    left.checked_add(right).map_err(|_| ImportError::whole_file(ErrorKind::Invalid("a balance is too large".into())))
}

fn add_optional(left: Option<Points>, right: Option<Points>) -> Result<Option<Points>, ImportError> {
    Ok(match (left, right) {
        (Some(left), Some(right)) => Some(add(left, right)?),
        (left, right) => left.or(right),
    })
}
