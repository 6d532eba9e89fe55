//! `dkp bench`: programs that load the service on this machine and print
//! figures (recorded with their commands in BENCHMARKS.md). `harness` and
//! `balancer` (running `dkp serve` and nginx as children) serve the
//! integration tests too.

pub mod balancer;
mod cpu;
mod deployment;
pub mod harness;
mod ledger;
mod lot;

use clap::{Args, Subcommand};

use crate::store::Location;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: Bench,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Bench {
    /// Seed risk R1: concurrent, conflicting ledger writes on a few wallets.
    Ledger(ledger::LedgerBench),
    /// Seed risk R3: bidders racing on one lot over HTTP.
    HotLot(lot::HotLot),
    /// Seed risk R2: WebSocket subscribers of one lot while bids flow.
    FanOut(lot::FanOut),
    /// Seed risk R2: idle WebSocket connections and the memory each costs.
    Connections(lot::Connections),
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        Bench::Ledger(bench) => ledger::run(bench).await,
        Bench::HotLot(bench) => lot::hot_lot(bench).await,
        Bench::FanOut(bench) => lot::fan_out(bench).await,
        Bench::Connections(bench) => lot::connections(bench).await,
    }
}

/// The value at quantile `q` (0-1) of sorted samples.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// The name of the store a benchmark runs on, as its report prints it.
pub fn backend(location: &Location) -> &'static str {
    match location {
        Location::Postgres { .. } => "postgres",
        Location::Sqlite { .. } => "sqlite",
    }
}

/// The sum of a counter over all its label sets, from Prometheus text.
pub fn counter_total(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(name) && line[name.len()..].starts_with(['{', ' ']))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
