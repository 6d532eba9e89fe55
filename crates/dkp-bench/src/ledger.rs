//! The ledger benchmark (seed risk R1): `concurrency` writers share
//! `operations` ledger requests over HTTP to `dkp serve` (one instance, or
//! two on one PostgreSQL database: `Topology`). 9 of 10 are transfers
//! between a few wallets of a pool, the tenth alternately an award and a
//! (negative) adjustment.
//!
//! With `--pools 1` (the default) every request hits one pool, whose writers
//! take turns: the throughput of a single hot pool. With `--pools P` the
//! requests go round P pools (in guilds of `--pools-per-guild`), whose
//! writers need not wait for each other. It prints throughput, latency and
//! retries per commit (from the servers' metrics), then checks, through the
//! standings, that the wallets hold exactly what was moved.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};

use crate::deployment::{Deployment, Topology};
use crate::harness::{Database, Http};
use crate::latency_line;
use crate::metrics::Change;
use crate::setup::{Officer, account, few_at_a_time, register, run_tag};

#[derive(Debug, Clone, Args)]
pub struct LedgerBench {
    #[command(flatten)]
    pub database: Database,
    #[command(flatten)]
    pub topology: Topology,
    /// Writers running at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Ledger operations in all.
    #[arg(long, default_value_t = 5000)]
    pub operations: usize,
    /// Wallets of each pool the operations move points between.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u16).range(2..))]
    pub wallets: u16,
    /// Pools the operations go round (1: one hot pool).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub pools: u16,
    /// Pools of each guild (1: a guild per pool).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub pools_per_guild: u16,
}

/// Points each wallet starts with, in hundredths.
const START: i64 = 1_000_000 * 100;

/// One pool the writers move points in.
struct Pool {
    /// Its ledger path: `/api/v1/guilds/{slug}/pools/{id}`.
    path: String,
    members: Vec<String>,
}

/// One ledger request, by wallet index in its pool.
#[derive(Debug, PartialEq, Eq)]
enum Move {
    Award { to: usize },
    Adjustment { of: usize },
    Transfer { from: usize, to: usize },
}

impl Move {
    /// The `j`th request on a pool of `wallets`: nine transfers in ten, the
    /// tenth an award or an adjustment in turn.
    fn nth(j: usize, wallets: usize) -> Move {
        match j % 10 {
            0 if (j / 10).is_multiple_of(2) => Move::Award { to: j % wallets },
            0 => Move::Adjustment { of: j % wallets },
            // An offset of 1..n-1 from the sender: never the sender itself.
            _ => Move::Transfer { from: j % wallets, to: (j + 1 + (j / wallets) % (wallets - 1)) % wallets },
        }
    }

    /// What it adds to the pool's wallets together, in hundredths.
    fn added(&self) -> i64 {
        match self {
            Move::Award { .. } => 10,
            Move::Adjustment { .. } => -5,
            Move::Transfer { .. } => 0,
        }
    }

    /// Its path under the pool, and its body.
    fn request(&self, members: &[String]) -> (&'static str, Value) {
        match *self {
            Move::Award { to } => ("awards", json!({"member_ids": [members[to]], "amount": "0.10", "reason": "bench"})),
            Move::Adjustment { of } => {
                ("adjustments", json!({"member_id": members[of], "amount": "-0.05", "reason": "bench"}))
            }
            Move::Transfer { from, to } => (
                "transfers",
                json!({"from_member_id": members[from], "to_member_id": members[to], "amount": "0.01", "reason": "bench"}),
            ),
        }
    }
}

/// What the writers saw.
#[derive(Default)]
struct Tally {
    latencies: Vec<f64>,
    /// Requests answered 500 or above, and any other than 201 (those included).
    server_errors: usize,
    failed: usize,
    /// Hundredths the accepted requests added.
    added: i64,
}

pub async fn run(bench: LedgerBench) -> anyhow::Result<()> {
    let mut deployment = Deployment::start(&bench.database, &bench.topology).await?;
    let doors = deployment.spread().await?;
    let doors: Vec<Http> = doors.into_iter().map(|address| Http::new(address, bench.concurrency + 8)).collect();
    let (owner, pools) = set_up(&doors[0], &bench).await?;
    let pools = Arc::new(pools);
    let before = deployment.metrics().await?;
    let began = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut writers = Vec::new();
    for writer in 0..bench.concurrency {
        let (http, token) = (doors[writer % doors.len()].clone(), owner.token.clone());
        writers.push(tokio::spawn(write(http, token, pools.clone(), next.clone(), bench.operations)));
    }
    let mut tally = Tally::default();
    for writer in writers {
        let mut one = writer.await.context("a writer crashed")?;
        tally.latencies.append(&mut one.latencies);
        (tally.server_errors, tally.failed, tally.added) =
            (tally.server_errors + one.server_errors, tally.failed + one.failed, tally.added + one.added);
    }
    let elapsed = began.elapsed().as_secs_f64();
    tally.latencies.sort_by(f64::total_cmp);
    let change = Change { before, after: deployment.metrics().await? };
    let held = owner.held(pools.iter().map(|pool| pool.path.as_str())).await?;
    let expected = START * i64::from(bench.wallets) * pools.len() as i64 + tally.added;
    report(&bench, &deployment, &tally, elapsed, &change);
    println!(
        "  conservation: wallets hold {held} hundredths, expected {expected}: {}",
        if held == expected { "ok" } else { "MISMATCH" }
    );
    if held != expected || tally.failed > 0 {
        bail!("the ledger benchmark found an error");
    }
    Ok(())
}

/// One writer: takes the next request number until `total`, sends it.
async fn write(http: Http, token: String, pools: Arc<Vec<Pool>>, next: Arc<AtomicUsize>, total: usize) -> Tally {
    let mut tally = Tally::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            return tally;
        }
        let pool = &pools[i % pools.len()];
        let change = Move::nth(i / pools.len(), pool.members.len());
        let (what, body) = change.request(&pool.members);
        let started = Instant::now();
        let status = http.send("POST", &format!("{}/{what}", pool.path), Some(&token), Some(&body)).await.ok();
        tally.latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        match status.map(|(status, _)| status) {
            Some(201) => tally.added += change.added(),
            Some(500..) => (tally.server_errors, tally.failed) = (tally.server_errors + 1, tally.failed + 1),
            _ => tally.failed += 1,
        }
    }
}

/// Registers the owner and the wallets' users, then opens the guilds, each
/// with its pools, the users as members, and their starting points.
async fn set_up(http: &Http, bench: &LedgerBench) -> anyhow::Result<(Officer, Vec<Pool>)> {
    let tag = run_tag();
    let owner = Officer { http: http.clone(), token: account(http, &format!("own{tag}")).await? };
    let names: Vec<String> = (0..bench.wallets).map(|n| format!("w{n}x{tag}")).collect();
    few_at_a_time(names.clone(), |name| async move { register(http, &name).await }).await?;
    let (pools, per_guild) = (usize::from(bench.pools), usize::from(bench.pools_per_guild));
    let guilds: Vec<(usize, usize)> =
        (0..pools.div_ceil(per_guild)).map(|g| (g, per_guild.min(pools - g * per_guild))).collect();
    let (owner_ref, names, tag) = (&owner, &names, &tag);
    let guilds = few_at_a_time(guilds, |(g, pools)| async move {
        let slug = format!("l{g}x{tag}");
        owner_ref.guild(&slug).await?;
        let mut members = Vec::new();
        for name in names {
            members.push(owner_ref.member(&slug, name).await?);
        }
        let mut opened = Vec::new();
        for p in 0..pools {
            let id = owner_ref.pool(&slug, &format!("Pool {p}")).await?;
            owner_ref.award(&slug, &id, &members, &crate::setup::amount(START)).await?;
            opened.push(Pool { path: format!("/api/v1/guilds/{slug}/pools/{id}"), members: members.clone() });
        }
        anyhow::Ok(opened)
    })
    .await?;
    Ok((owner, guilds.into_iter().flatten().collect()))
}

fn report(bench: &LedgerBench, deployment: &Deployment, tally: &Tally, elapsed: f64, change: &Change) {
    let latencies = &tally.latencies;
    println!(
        "ledger bench: backend={} {} concurrency={} wallets={} pools={} pools_per_guild={} operations={}",
        bench.database.store(),
        deployment.describe(),
        bench.concurrency,
        bench.wallets,
        bench.pools,
        bench.pools_per_guild,
        bench.operations
    );
    // Every request answered, and those that moved points (a 201).
    println!(
        "  elapsed_s={elapsed:.2} ops_per_s={:.0} ok_per_s={:.0}",
        latencies.len() as f64 / elapsed,
        (latencies.len() - tally.failed) as f64 / elapsed
    );
    println!("  {}", latency_line(latencies));
    let (commits, retries) = (change.total("dkp_tx_commits_total"), change.total("dkp_tx_retries_total"));
    println!(
        "  commits={commits} retries={retries} retries_per_commit={:.4} failures={} failed_requests={} 5xx={}",
        retries / commits.max(1.0),
        change.total("dkp_tx_failures_total"),
        tally.failed,
        tally.server_errors,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nine_requests_in_ten_are_transfers_and_the_tenth_awards_or_adjusts_in_turn() {
        let moves: Vec<Move> = (0..20).map(|j| Move::nth(j, 3)).collect();
        assert_eq!(moves[0], Move::Award { to: 0 });
        assert_eq!(moves[10], Move::Adjustment { of: 1 });
        let transfers = moves.iter().filter(|m| matches!(m, Move::Transfer { .. })).count();
        assert_eq!(transfers, 18);
    }

    #[test]
    fn a_transfer_never_goes_to_its_sender() {
        for j in 0..1000 {
            if let Move::Transfer { from, to } = Move::nth(j, 3) {
                assert_ne!(from, to, "request {j}");
            }
        }
    }
}
