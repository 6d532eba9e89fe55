//! Commands of the `dkp` binary that run once and exit, beside the servers.
//! `dkp import` opens the database `dkp serve` uses (same flags and
//! environment), migrates it, and imports through the same use case as the
//! API (`Service::import`), as the guild's first owner. On SQLite it takes
//! the data folder's lock, so it refuses to run beside a `dkp serve` of the
//! same folder (use the API there). Progress goes to standard error
//! (`progress`: a bar on a terminal, plain lines elsewhere); `--json` prints
//! the report on standard output.

mod progress;

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::Context;

use crate::blobs::PublicUrls;
use crate::config::ImportArgs;
use crate::http::wire::{self, Wire};
use crate::service::imports::{ImportAnswer, ImportFile, ImportRequest, Importer};
use crate::store::Location;
use progress::Progress;

/// How often the bar is redrawn while the file is parsed.
const TICK: Duration = Duration::from_millis(100);

/// `dkp import`: one file into one pool, or a report of what it would do.
pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    let format: dkp_import::Format = args.file_format.parse().map_err(|error| anyhow::anyhow!("--format: {error}"))?;
    let location = args.database.location()?;
    let _lock = match &location {
        Location::Sqlite { path } => Some(crate::app::lock_data(path)?),
        Location::Postgres { .. } => None,
    };
    let mut progress = Progress::new(std::io::stderr(), std::io::stderr().is_terminal());
    progress.say(&format!("reading {}", args.file.display()));
    let path = args.file.clone();
    let file = tokio::task::spawn_blocking(move || ImportFile::open(&path))
        .await?
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    progress.say(&format!("read {} bytes; opening the database", file.len()));
    let (store, shared) = crate::app::connect(&location, None, None).await?;
    let wire = Arc::new(Wire::new(PublicUrls::parse("/blobs")?));
    // Nothing listens here: clients read the import's events from the log.
    let hub = crate::app::hub(&shared, None, &wire).await?;
    let service = crate::app::headless_service(store, shared, hub, args.nats_url.is_some());
    let options = dkp_import::Options { team: args.team, guild: None, table: args.table };
    let parsed = Arc::new(AtomicU64::new(0));
    let request =
        ImportRequest { format, pool_id: args.pool, dry_run: args.dry_run, options, parsed: Some(parsed.clone()) };
    progress.say(if args.dry_run { "importing (dry run: nothing is written)" } else { "importing" });
    let total = file.len();
    let import = service.import(Importer::Operator, &args.guild, request, file);
    let answer = watch_parsing(import, &parsed, total, &mut progress).await;
    service.close().await;
    let answer = answer.map_err(|error| anyhow::anyhow!("{error}"))?;
    summarize(&answer, &mut progress);
    if args.json {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", wire::import_report(&answer.report, answer.already_imported))?;
    }
    Ok(())
}

/// Runs the import, showing how much of the file is parsed as it goes.
async fn watch_parsing<T>(
    import: impl Future<Output = T>,
    parsed: &AtomicU64,
    total: u64,
    progress: &mut Progress<impl Write>,
) -> T {
    let mut import = std::pin::pin!(import);
    let mut tick = tokio::time::interval(TICK);
    let answer = loop {
        tokio::select! {
            answer = &mut import => break answer,
            _ = tick.tick() => progress.parsed(parsed.load(Ordering::Relaxed), total),
        }
    };
    progress.parsed(parsed.load(Ordering::Relaxed), total);
    answer
}

/// What the import did, and its warnings, as progress lines.
fn summarize(answer: &ImportAnswer, progress: &mut Progress<impl Write>) {
    let report = &answer.report;
    if answer.already_imported {
        progress.say("this file was imported into this pool before: nothing written");
    } else {
        progress.say(&format!(
            "{} member(s) created, {} matched, {} character(s) created, {} entr{} {}",
            report.roster.members_created,
            report.roster.members_matched,
            report.roster.characters_created,
            report.entries,
            if report.entries == 1 { "y" } else { "ies" },
            if report.dry_run { "would be written" } else { "written" }
        ));
    }
    for warning in &report.warnings {
        progress.say(&format!("warning: {warning}"));
    }
}

/// `dkp audit verify|rebuild`: the audit database checked against its hash
/// chain, or refilled from the main database's audit rows.
pub async fn audit(args: crate::config::AuditArgs) -> anyhow::Result<()> {
    use crate::config::AuditAction;
    use crate::store::audit_db::AuditDb;
    let audit = AuditDb::open(args.audit_database_url.expose()).await.context("cannot open the audit database")?;
    let (store, _) = crate::app::connect(&args.database.location()?, None, None).await?;
    match args.action {
        AuditAction::Verify { guild } => {
            let guild_id = match &guild {
                Some(slug) => Some(store.guild_id(slug).await?.with_context(|| format!("no guild {slug}"))?),
                None => None,
            };
            match audit.verify(guild_id).await? {
                None => {
                    eprintln!("dkp audit: the chain is intact");
                    Ok(())
                }
                Some(broken) => {
                    let guild = broken.guild_id.map_or_else(|| "(no guild)".to_owned(), |g| g.to_string());
                    eprintln!("dkp audit: broken at guild {guild}, row {}", broken.id);
                    std::process::exit(1);
                }
            }
        }
        AuditAction::Rebuild => {
            let now = crate::clock::Clock::now(&crate::clock::SystemClock);
            let oldest = store.audit_rows_after(None, now, 1).await?;
            audit.make_partitions_between(oldest.first().map_or(now, |(_, row)| row.created_at), now).await?;
            let copied = crate::service::audit_feed::copy_until(&store, &audit, now).await?;
            eprintln!("dkp audit: {copied} rows copied");
            Ok(())
        }
    }
}
