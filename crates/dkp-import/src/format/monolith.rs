//! MonolithDKP and EssentialDKP (`MonDKP_*` tables) and CommunityDKP
//! (`CommDKP_*`, the same tables nested by realm, guild and team).
//!
//! The file is walked record by record: each entry of `DKPTable`,
//! `DKPHistory`, `Loot` and `Archive` is collected alone and turned into rows
//! at once (`records`). CommunityDKP's records go to their team; the team
//! imported is the one the `team` option names, else the one the file's
//! settings (`CommDKP_DB[realm][guild].defaults.CurrentTeam`) name as current.
//! Teams known not to be wanted are skipped unread; the others are kept until
//! the end, since the settings may come after the tables. Stated balances are
//! `dkp`; all times are unix times, so UTC.

mod records;

use std::io::BufRead;

use records::Team;

use crate::Options;
use crate::builder::{Builder, Start};
use crate::error::{ErrorKind, ImportError};
use crate::lua::{self, Events, Key, Step, Value, Visitor};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    Table,
    History,
    Loot,
    Archive,
    Settings,
}

/// Realm, guild and team of a CommunityDKP record; empty for MonolithDKP.
type TeamId = (String, String, String);

#[derive(Default)]
struct GuildSettings {
    current_team: Option<String>,
    /// Team keys and their names.
    teams: Vec<(String, String)>,
}

struct Reader<'a> {
    options: &'a Options,
    start: Start,
    teams: Vec<(TeamId, Team)>,
    settings: Vec<((String, String), GuildSettings)>,
    found_tables: bool,
    nested: bool,
}

pub(crate) fn read<R: BufRead>(input: R, options: &Options, start: Start) -> Result<Builder, ImportError> {
    let mut reader =
        Reader { options, start, teams: Vec::new(), settings: Vec::new(), found_tables: false, nested: false };
    lua::walk(&mut Events::new(input), &mut reader)?;
    if !reader.found_tables {
        return Err(ImportError::whole_file(ErrorKind::WrongShape(
            "no MonDKP_DKPTable or CommDKP_DKPTable: not a MonolithDKP, EssentialDKP or CommunityDKP file".into(),
        )));
    }
    reader.select()
}

/// Which table a global is, and whether it is CommunityDKP's nested form.
fn part_of(global: &str) -> Option<(bool, Part)> {
    let (nested, rest) = match (global.strip_prefix("MonDKP_"), global.strip_prefix("CommDKP_")) {
        (Some(rest), _) => (false, rest),
        (_, Some(rest)) => (true, rest),
        _ => return None,
    };
    let part = match rest {
        "DKPTable" => Part::Table,
        "DKPHistory" => Part::History,
        "Loot" => Part::Loot,
        "Archive" => Part::Archive,
        "DB" => Part::Settings,
        _ => return None,
    };
    Some((nested, part))
}

impl Visitor for Reader<'_> {
    fn step(&mut self, path: &[Key]) -> Step {
        let Some((nested, part)) = path[0].name().and_then(part_of) else { return Step::Skip };
        let record_depth = match (nested, part) {
            (false, Part::Settings) => return Step::Skip,
            (true, Part::Settings) => 3,
            (false, _) => 2,
            (true, _) => 5,
        };
        if path.len() == 1 && part != Part::Settings {
            self.found_tables = true;
            self.nested |= nested;
        }
        if nested && part != Part::Settings && path.len() == 4 && !self.wanted(&path[1], &path[2], &path[3]) {
            return Step::Skip;
        }
        match path.len().cmp(&record_depth) {
            std::cmp::Ordering::Less => Step::Descend,
            std::cmp::Ordering::Equal => Step::Collect,
            std::cmp::Ordering::Greater => Step::Skip,
        }
    }

    fn record(&mut self, path: &[Key], value: Value, line: u64) -> Result<(), ImportError> {
        let Some((nested, part)) = path[0].name().and_then(part_of) else { return Ok(()) };
        // Scalars beside the records (`["seed"] = 0`) carry nothing to import.
        let Some(record) = value.table() else { return Ok(()) };
        if part == Part::Settings {
            self.settings_record(path[1].to_text(), path[2].to_text(), record);
            return Ok(());
        }
        let id = match nested {
            true => (path[1].to_text(), path[2].to_text(), path[3].to_text()),
            false => TeamId::default(),
        };
        let team = self.team(id);
        match part {
            Part::Table => team.table_record(record, line),
            Part::History => team.history_record(record, line),
            Part::Loot => team.loot_record(record, line),
            Part::Archive => team.archive_record(&path[path.len() - 1].to_text(), record, line),
            Part::Settings => Ok(()),
        }
    }
}

impl Reader<'_> {
    fn team(&mut self, id: TeamId) -> &mut Team {
        let index = match self.teams.iter().position(|(known, _)| *known == id) {
            Some(index) => index,
            None => {
                self.teams.push((id, Team::new(self.start)));
                self.teams.len() - 1
            }
        };
        &mut self.teams[index].1
    }

    fn settings_record(&mut self, realm: String, guild: String, record: &lua::Table) {
        let current_team = record.table("defaults").and_then(|defaults| defaults.get("CurrentTeam")).and_then(key_text);
        let teams = record
            .table("teams")
            .map(|teams| {
                let name = |value: &Value| value.table().and_then(|team| team.text("name")).unwrap_or("").to_owned();
                teams.entries.iter().map(|(key, value)| (key.to_text(), name(value))).collect()
            })
            .unwrap_or_default();
        self.settings.push(((realm, guild), GuildSettings { current_team, teams }));
    }

    fn guild_settings(&self, realm: &str, guild: &str) -> Option<&GuildSettings> {
        self.settings.iter().find(|((r, g), _)| r == realm && g == guild).map(|(_, settings)| settings)
    }

    /// Whether a team's records may be the ones imported; `false` only when certain.
    fn wanted(&self, realm: &Key, guild: &Key, team: &Key) -> bool {
        let (realm, guild, team) = (realm.to_text(), guild.to_text(), team.to_text());
        if !guild_matches(self.options.guild.as_deref(), &realm, &guild) {
            return false;
        }
        let Some(settings) = self.guild_settings(&realm, &guild) else { return true };
        match &self.options.team {
            Some(wanted) => team_matches(wanted, &team, settings),
            None => settings.current_team.as_ref().is_none_or(|current| *current == team),
        }
    }

    /// The team to import, among those the file holds.
    fn select(self) -> Result<Builder, ImportError> {
        if !self.nested {
            return self.teams.into_iter().next().map_or_else(|| Team::new(self.start), |(_, team)| team).finish();
        }
        let Some((realm, guild)) = self.choose_guild()? else { return Team::new(self.start).finish() };
        let in_guild = |id: &TeamId| id.0 == realm && id.1 == guild;
        let keys: Vec<String> = self.teams.iter().filter(|(id, _)| in_guild(id)).map(|(id, _)| id.2.clone()).collect();
        let chosen = self.choose_team(&realm, &guild, &keys)?;
        let (shown, others) = self.describe_teams(&realm, &guild, &keys, &chosen);
        let team = self.teams.into_iter().find(|(id, _)| in_guild(id) && id.2 == chosen).map(|(_, team)| team);
        let mut builder = team.unwrap_or_else(|| Team::new(self.start)).finish()?;
        builder.warn(format!("read CommunityDKP team {shown} of guild '{guild}' on {realm}"));
        if !others.is_empty() {
            builder.warn(format!("the guild also has teams {} (not read)", others.join(", ")));
        }
        Ok(builder)
    }

    /// The one realm and guild with records that the guild option allows.
    fn choose_guild(&self) -> Result<Option<(String, String)>, ImportError> {
        let mut guilds: Vec<(String, String)> = Vec::new();
        for ((realm, guild, _), _) in &self.teams {
            let pair = (realm.clone(), guild.clone());
            if guild_matches(self.options.guild.as_deref(), realm, guild) && !guilds.contains(&pair) {
                guilds.push(pair);
            }
        }
        match guilds.len() {
            0 if self.options.guild.is_some() => Err(choose("no guild matches the guild option", &self.teams)),
            0 => Ok(None),
            1 => Ok(guilds.pop()),
            _ => Err(choose("the file holds several guilds; name one with the guild option", &self.teams)),
        }
    }

    /// The team option's team, else the settings' current team, else the only one.
    fn choose_team(&self, realm: &str, guild: &str, keys: &[String]) -> Result<String, ImportError> {
        let default_settings = GuildSettings::default();
        let settings = self.guild_settings(realm, guild).unwrap_or(&default_settings);
        let chosen = match (&self.options.team, &settings.current_team) {
            (Some(wanted), _) => keys.iter().find(|key| team_matches(wanted, key, settings)).cloned(),
            (None, Some(current)) => Some(current.clone()),
            (None, None) if keys.len() == 1 => Some(keys[0].clone()),
            (None, None) => None,
        };
        chosen.ok_or_else(|| choose("name the team to import with the team option", &self.teams))
    }

    /// The chosen team as shown to the user, and the guild's other teams.
    fn describe_teams(&self, realm: &str, guild: &str, keys: &[String], chosen: &str) -> (String, Vec<String>) {
        let default_settings = GuildSettings::default();
        let settings = self.guild_settings(realm, guild).unwrap_or(&default_settings);
        let label = |key: &str| match settings.teams.iter().find(|(team, _)| team == key) {
            Some((_, name)) if !name.is_empty() => format!("'{name}' ({key})"),
            _ => key.to_owned(),
        };
        let mut others: Vec<&str> = settings.teams.iter().map(|(key, _)| key.as_str()).collect();
        for key in keys {
            if !others.contains(&key.as_str()) {
                others.push(key);
            }
        }
        let others = others.into_iter().filter(|key| *key != chosen).map(label).collect();
        (label(chosen), others)
    }
}

fn key_text(value: &Value) -> Option<String> {
    match value {
        Value::Str(text) => Some(text.clone()),
        Value::Number(number) => number.to_i64().map(|index| index.to_string()),
        _ => None,
    }
}

fn guild_matches(option: Option<&str>, realm: &str, guild: &str) -> bool {
    let Some(option) = option.map(str::trim) else { return true };
    match option.split_once('/') {
        Some((wanted_realm, wanted_guild)) => {
            wanted_realm.eq_ignore_ascii_case(realm) && wanted_guild.to_lowercase() == guild.to_lowercase()
        }
        None => option.to_lowercase() == guild.to_lowercase(),
    }
}

fn team_matches(wanted: &str, key: &str, settings: &GuildSettings) -> bool {
    let wanted = wanted.trim();
    wanted == key
        || settings.teams.iter().any(|(team, name)| team == key && name.to_lowercase() == wanted.to_lowercase())
}

/// An error listing the guilds and teams the file holds.
fn choose(message: &str, teams: &[(TeamId, Team)]) -> ImportError {
    let held: Vec<String> =
        teams.iter().map(|((realm, guild, team), _)| format!("{realm}/{guild} team {team}")).collect();
    ImportError::whole_file(ErrorKind::WrongShape(format!("{message} (the file holds: {})", held.join(", "))))
}

#[cfg(test)]
mod tests;
