//! `dkp bench`: programs that load the service on this machine and print
//! figures (recorded with their commands in BENCHMARKS.md).
//!
//! The service is driven only from outside, as its users and operators meet
//! it: every benchmark starts `dkp serve` child processes (`harness`, behind
//! nginx when asked: `balancer`, `deployment`), speaks HTTP and WebSocket to
//! them, and reads what happened on the server from its `/metrics`
//! (`metrics`). This crate does not link the service; the `dkp` binary runs
//! it as `dkp bench …` and the children are that same binary.
//!
//! `harness`, `balancer` and `metrics` serve the integration tests too.

pub mod balancer;
pub mod chaos;
mod cpu;
mod deployment;
mod figures;
pub mod harness;
mod import;
mod ledger;
mod lot;
pub mod metrics;
pub mod postgres;
mod raid_awards;
mod raid_night;
mod setup;

use clap::{Args, Subcommand};

pub use metrics::counter_total;

#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: Bench,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Bench {
    /// Seed risk R1: concurrent, conflicting ledger writes on a few wallets, or spread over many pools.
    Ledger(ledger::LedgerBench),
    /// Seed risk R3: bidders racing on one lot over HTTP.
    HotLot(lot::HotLot),
    /// Seed risk R3 at scale: many guilds, each with raiders bidding on a few open lots.
    RaidNight(raid_night::RaidNight),
    /// Issue 10: many guilds awarding their raids at once, each raid awarded several times.
    RaidAwards(raid_awards::RaidAwards),
    /// Seed risk R2: WebSocket subscribers of one lot while bids flow.
    FanOut(lot::FanOut),
    /// Seed risk R2: idle WebSocket connections and the memory each costs.
    Connections(lot::Connections),
    /// Proof under faults: seeded rounds against a whole deployment while its processes die.
    Chaos(chaos::Chaos),
    /// Issue 14: a CSV and a MonolithDKP file of many players and history rows, uploaded whole.
    Import(import::LargeImport),
}

/// Runs the benchmark named on the command line and prints its figures.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match args.what {
        Bench::Ledger(bench) => ledger::run(bench).await,
        Bench::HotLot(bench) => lot::hot_lot(bench).await,
        Bench::RaidNight(bench) => raid_night::run(bench).await,
        Bench::RaidAwards(bench) => raid_awards::run(bench).await,
        Bench::FanOut(bench) => lot::fan_out(bench).await,
        Bench::Connections(bench) => lot::connections(bench).await,
        Bench::Import(bench) => import::run(bench).await,
        Bench::Chaos(bench) => chaos::run(bench).await,
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

/// `latency_ms p50=… p99=… max=…` of sorted samples in milliseconds.
pub fn latency_line(sorted: &[f64]) -> String {
    format!(
        "latency_ms p50={:.2} p99={:.2} max={:.2}",
        quantile(sorted, 0.5),
        quantile(sorted, 0.99),
        quantile(sorted, 1.0)
    )
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    /// `dkp`'s command line, as far as `bench` goes.
    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        what: Bench,
    }

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_spread_ledger_and_raid_night_parse_with_their_defaults() {
        let cli = Cli::parse_from(["bench", "ledger", "--pools", "100", "--concurrency", "200"]);
        let Bench::Ledger(ledger) = cli.what else { panic!("not ledger") };
        assert_eq!((ledger.pools, ledger.pools_per_guild, ledger.concurrency), (100, 1, 200));
        let cli = Cli::parse_from(["bench", "raid-night", "--bidders", "512"]);
        let Bench::RaidNight(night) = cli.what else { panic!("not raid-night") };
        assert_eq!((night.guilds, night.raiders, night.lots, night.bidders), (20, 25, 5, 512));
        assert!(!night.same_amount, "bidders take the room's next amount unless told otherwise");
        let cli = Cli::parse_from(["bench", "raid-night", "--same-amount"]);
        let Bench::RaidNight(night) = cli.what else { panic!("not raid-night") };
        assert!(night.same_amount);
        let cli = Cli::parse_from(["bench", "raid-awards", "--guilds", "10"]);
        let Bench::RaidAwards(awards) = cli.what else { panic!("not raid-awards") };
        assert_eq!((awards.guilds, awards.raiders, awards.repeats, awards.concurrency), (10, 40, 2, 50));
    }

    #[test]
    fn the_median_of_three_samples_is_the_middle_one() {
        assert_eq!(quantile(&[1.0, 2.0, 9.0], 0.5), 2.0);
        assert_eq!(quantile(&[1.0, 2.0, 9.0], 1.0), 9.0);
        assert_eq!(quantile(&[], 0.99), 0.0);
    }
}
