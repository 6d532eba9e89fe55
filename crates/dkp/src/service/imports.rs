//! Importing another tool's file into a pool: the one use case behind both
//! the API upload and `dkp import`. The file is read by `dkp-import` on a
//! blocking thread (parsed, never run), its balances reconciled, and then
//! either previewed (a dry run: reads only) or written by the store in one
//! transaction. A bad file is a 422 `invalid_import` naming the line, and
//! nothing is written. Events are published after the commit.
//!
//! What lands: every player as a member (matched by name or character, else
//! new without an account), the characters the file names, and the balances
//! the file gives (stated where it states them, else rebuilt from its
//! history) through one `import` entry. The file's history rows and raids
//! are summed into those balances, not kept one by one (the report warns).
//! The file is read from disk (the command line's own, or an upload spooled
//! to a temporary file) through a small buffer (`file`) and its history
//! folded as it is read, so memory follows the file's players, not its size.

mod file;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use dkp_core::Action;
use dkp_core::roster::{CharacterName, member_name};
use dkp_import::{Format, Import, Options, Reconciliation};

use self::file::Counted;
pub use self::file::{ImportFile, Upload};
use super::{Caller, Error, Service};
use crate::model::{
    Code, ImportCommand, ImportMismatch, ImportReport, Imported, ImportedCharacter, ImportedPlayer, Membership,
    NamedPoints, RosterCounts,
};

/// Who asks for an import.
pub enum Importer<'a> {
    /// A signed-in officer, through the API.
    Caller(&'a Caller),
    /// Whoever runs `dkp import` on the server: the entry is recorded as made
    /// by the guild's first owner.
    Operator,
}

/// What to import, and where.
#[derive(Clone, Debug)]
pub struct ImportRequest {
    pub format: Format,
    pub pool_id: String,
    pub dry_run: bool,
    pub options: Options,
    /// Counts the bytes of the file parsed so far, for whoever shows progress.
    pub parsed: Option<Arc<AtomicU64>>,
}

/// The answer of an import: its report, and whether the same file was imported before.
#[derive(Clone, Debug)]
pub struct ImportAnswer {
    pub report: ImportReport,
    pub already_imported: bool,
}

impl ImportAnswer {
    /// Whether this import wrote anything.
    pub fn written(&self) -> bool {
        !self.report.dry_run && !self.already_imported
    }
}

fn invalid_import(message: impl Into<String>) -> Error {
    Error::invalid(Code::InvalidImport, message)
}

impl Service {
    pub async fn import(
        &self,
        importer: Importer<'_>,
        slug: &str,
        request: ImportRequest,
        file: ImportFile,
    ) -> Result<ImportAnswer, Error> {
        let access = self.import_access(&importer, slug).await?;
        let pool_id = super::id(&request.pool_id)?;
        let content_hash = file.hash().to_vec();
        let (format, options, parsed) = (request.format, request.options.clone(), request.parsed.clone());
        let (import, reconciliation) = tokio::task::spawn_blocking(move || {
            let import = dkp_import::read(format, Counted { inner: file.reader(), parsed }, &options)?;
            let reconciliation = dkp_import::reconcile(&import)?;
            Ok::<_, dkp_import::ImportError>((import, reconciliation))
        })
        .await
        .map_err(Error::internal)?
        .map_err(|error| invalid_import(error.to_string()))?;
        let mut report = report(&import, &reconciliation, request.dry_run);
        let players = players(&import, &reconciliation, &mut report.warnings)?;
        let guild_id = access.guild.id;
        if request.dry_run {
            let preview = self.store.import_preview(guild_id, pool_id, &content_hash, &players).await?;
            if let Some(kept) = preview.already {
                return Ok(ImportAnswer { report: kept, already_imported: true });
            }
            report.roster = preview.roster;
            report.entries = preview.entries;
            return Ok(ImportAnswer { report, already_imported: false });
        }
        let command = ImportCommand {
            guild_id,
            pool_id,
            actor_member: access.member_id,
            content_hash,
            players,
            reason: format!("import of a {} file", import.format.as_str()),
            report,
        };
        let actor = match importer {
            Importer::Caller(caller) => (Some(caller.user.id), caller.request_id.clone()),
            Importer::Operator => (None, "cli".to_owned()),
        };
        let ctx = self.ctx(actor.0, &actor.1);
        match self.store.import(&command, &ctx).await? {
            Imported::Fresh { report, events } => {
                self.hub.publish(&events);
                Ok(ImportAnswer { report, already_imported: false })
            }
            Imported::Already(report) => Ok(ImportAnswer { report, already_imported: true }),
        }
    }

    /// Officers import through the API; the operator of the server (the
    /// command line) into any guild, as its first owner.
    async fn import_access(&self, importer: &Importer<'_>, slug: &str) -> Result<Membership, Error> {
        match importer {
            Importer::Caller(caller) => self.guild_access(caller, slug, Action::MovePoints).await,
            Importer::Operator => self.store.first_owner(slug).await?.ok_or_else(Error::not_found),
        }
    }
}

/// The report of what the file says, before the roster is consulted.
fn report(import: &Import, reconciliation: &Reconciliation, dry_run: bool) -> ImportReport {
    let name = |player: dkp_import::PlayerRef| import.player(player).name.clone();
    let mut warnings = import.warnings.clone();
    if !import.raids.is_empty() {
        warnings.push(format!(
            "{} raid(s) read: their points are in the balances; the raids themselves are not imported yet",
            import.raids.len()
        ));
    }
    if !import.history.is_empty() {
        warnings.push(format!(
            "{} history row(s) read: the balances they give are imported as one entry, not row by row",
            import.history.len()
        ));
    }
    ImportReport {
        format: import.format.as_str().to_owned(),
        dry_run,
        roster: RosterCounts::default(),
        raids: 0,
        entries: 0,
        balances: reconciliation
            .balances
            .iter()
            .map(|(player, balance)| NamedPoints { name: name(*player), balance: *balance })
            .collect(),
        stated: import.stated.iter().map(|s| NamedPoints { name: name(s.player), balance: s.balance }).collect(),
        mismatches: reconciliation
            .mismatches
            .iter()
            .map(|m| ImportMismatch { name: m.name.clone(), stated: m.stated, rebuilt: m.rebuilt })
            .collect(),
        warnings,
        time_zone: import.time_zone.as_str().to_owned(),
    }
}

/// The file's players as the roster takes them, each with the balance the pool is to hold.
fn players(
    import: &Import,
    reconciliation: &Reconciliation,
    warnings: &mut Vec<String>,
) -> Result<Vec<ImportedPlayer>, Error> {
    let mut balances = vec![dkp_core::Points::ZERO; import.players.len()];
    for (player, balance) in &reconciliation.balances {
        balances[player.index()] = *balance;
    }
    let mut skipped = Vec::new();
    let mut players = Vec::with_capacity(import.players.len());
    for (index, player) in import.players.iter().enumerate() {
        let name = member_name(&player.name)
            .map_err(|error| invalid_import(format!("the player {:?} cannot be a member: {error}", player.name)))?;
        let mut characters = Vec::new();
        // A generic CSV names members, not characters.
        if import.format != Format::Csv {
            for character in &player.characters {
                let realm = character.realm.as_deref();
                let bare = realm.and_then(|realm| character.name.strip_suffix(&format!("-{realm}")));
                match CharacterName::parse(bare.unwrap_or(&character.name), realm) {
                    Ok(parsed) => characters.push(ImportedCharacter {
                        name: parsed,
                        class: character.class.or(player.class).map(|class| class.as_str().to_owned()),
                        main: character.main,
                    }),
                    Err(_) => skipped.push(character.name.clone()),
                }
            }
        }
        players.push(ImportedPlayer { name, characters, balance: balances[index] });
    }
    if !skipped.is_empty() {
        warnings.push(format!("characters not added (not a valid name): {}", skipped.join(", ")));
    }
    Ok(players)
}
