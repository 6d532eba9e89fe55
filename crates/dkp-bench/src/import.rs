//! `import` (issue 14): large files uploaded to the import route as an
//! officer would. Two files of the same players and history rows are made
//! here: a generic CSV history (`name,date,amount,reason`) and a
//! MonolithDKP SavedVariables file (`MonDKP_DKPTable` stating each balance,
//! `MonDKP_DKPHistory` one entry per row, written one record to a line, as
//! compact as the addon allows, so that a million rows stay under the
//! route's 64 MiB). Each goes to a fresh `dkp serve` and a fresh guild; the
//! figures are the upload's wall time and the server's peak resident memory
//! (VmHWM) before and after. The stated balances are the rows' sums, so a
//! correct import reports no mismatch.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;

use crate::harness::{Database, Http, Server};
use crate::setup::{Officer, account, run_tag};

#[derive(Debug, Clone, Args)]
pub struct LargeImport {
    #[command(flatten)]
    pub database: Database,
    /// Players of each file.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=99_999))]
    pub players: u32,
    /// History rows of each file.
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub rows: u32,
    /// A folder to write the two files to as well (to import them with `dkp import`).
    #[arg(long)]
    pub keep_in: Option<PathBuf>,
}

/// Unix time of the first row; each next row is a minute later.
const FIRST_ROW: u64 = 1_700_000_000;

fn name(player: u32) -> String {
    format!("Raider{player:05}")
}

/// The row's player and amount in hundredths: from -10.00 to 39.99, spread
/// so that players' sums differ.
fn row(index: u32, players: u32) -> (u32, i64) {
    let hundredths = (u64::from(index) * 7919 % 5000) as i64 - 1000;
    (index % players, hundredths)
}

/// Points from hundredths, as both files write them (`-4.50`, `12.00`).
fn points(hundredths: i64) -> String {
    let sign = if hundredths < 0 { "-" } else { "" };
    format!("{sign}{}.{:02}", hundredths.abs() / 100, hundredths.abs() % 100)
}

/// The generic CSV history: one line per row, dates over a year.
fn csv_history(players: u32, rows: u32) -> Bytes {
    let mut file = String::with_capacity(rows as usize * 40 + 32);
    file.push_str("name,date,amount,reason\n");
    for index in 0..rows {
        let (player, amount) = row(index, players);
        let (month, day) = (1 + index / 28 % 12, 1 + index % 28);
        let _ = writeln!(file, "{},2024-{month:02}-{day:02},{},Boss kill", name(player), points(amount));
    }
    Bytes::from(file)
}

/// The MonolithDKP file: the table stating what the rows add up to, then the history.
fn monolith(players: u32, rows: u32) -> Bytes {
    let mut sums = vec![0_i64; players as usize];
    for index in 0..rows {
        let (player, amount) = row(index, players);
        sums[player as usize] += amount;
    }
    let mut file = String::with_capacity(rows as usize * 64 + players as usize * 100);
    file.push_str("MonDKP_DKPTable = {\n");
    for (player, sum) in sums.iter().enumerate() {
        let _ = writeln!(
            file,
            "\t{{[\"player\"]=\"{}\",[\"class\"]=\"WARRIOR\",[\"dkp\"]={}}}, -- [{}]",
            name(player as u32),
            points(*sum),
            player + 1
        );
    }
    file.push_str("}\nMonDKP_DKPHistory = {\n");
    for index in 0..rows {
        let (player, amount) = row(index, players);
        let date = FIRST_ROW + u64::from(index) * 60;
        let _ =
            writeln!(file, "{{[\"players\"]=\"{},\",[\"dkp\"]={},[\"date\"]={date}}},", name(player), points(amount));
    }
    file.push_str("}\n");
    Bytes::from(file)
}

pub async fn run(bench: LargeImport) -> anyhow::Result<()> {
    let files = [("csv", csv_history(bench.players, bench.rows)), ("monolith", monolith(bench.players, bench.rows))];
    println!("import: {} players, {} rows, store {}", bench.players, bench.rows, bench.database.store());
    let mut failed = false;
    for (format, file) in files {
        if let Some(folder) = &bench.keep_in {
            let path = folder.join(format!("large-{format}.{}", if format == "csv" { "csv" } else { "lua" }));
            std::fs::write(&path, &file).with_context(|| format!("cannot write {}", path.display()))?;
        }
        failed |= !upload(&bench, format, file).await?;
    }
    if failed {
        bail!("a large import was not imported whole");
    }
    Ok(())
}

/// Uploads one file to a fresh server and prints its figures: whether every player came in whole.
async fn upload(bench: &LargeImport, format: &str, file: Bytes) -> anyhow::Result<bool> {
    let server = Server::start(&bench.database).await?;
    let http = Http::new(server.address, 2);
    let tag = run_tag();
    let owner = Officer { http: http.clone(), token: account(&http, &format!("imp{tag}")).await? };
    let slug = format!("i{tag}");
    owner.guild(&slug).await?;
    let pool = owner.pool(&slug, "Main").await?;
    let idle_kib = server.peak_rss_kib()?;
    let path = format!("/api/v1/guilds/{slug}/imports?format={format}&pool_id={pool}&dry_run=false");
    let size = file.len();
    let started = Instant::now();
    let (status, report) = http.post_file(&path, &owner.token, file).await?;
    let seconds = started.elapsed().as_secs_f64();
    let peak_kib = server.peak_rss_kib()?;
    let created = report["members"]["created"].as_u64().unwrap_or(0);
    let mismatches = report["mismatches"].as_array().map_or(0, Vec::len);
    println!(
        "  {format}: {:.1} MB, status {status}, {seconds:.1} s, server peak RSS {} MiB (idle {} MiB), \
         members created {created}, mismatches {mismatches}",
        size as f64 / 1e6,
        peak_kib / 1024,
        idle_kib / 1024
    );
    if status != 201 {
        println!("  {format}: answered {report}");
    }
    Ok(status == 201 && created == u64::from(bench.players) && mismatches == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_are_written_with_two_decimals_and_a_sign() {
        assert_eq!(points(-450), "-4.50");
        assert_eq!(points(1200), "12.00");
        assert_eq!(points(-5), "-0.05");
    }

    #[test]
    fn both_files_hold_every_row() {
        let csv = csv_history(3, 10);
        assert_eq!(csv.iter().filter(|b| **b == b'\n').count(), 11);
        assert!(csv.starts_with(b"name,date,amount,reason\nRaider00000,2024-01-01,-10.00,Boss kill\n"));
        let lua = String::from_utf8(monolith(3, 10).to_vec()).unwrap();
        assert_eq!(lua.matches("[\"players\"]").count(), 10);
        assert_eq!(lua.matches("[\"player\"]").count(), 3);
    }
}
