//! The fault harness (`dkp bench chaos`) against this build, on a
//! PostgreSQL, a Redis, three instances, two workers and nginx of its own: a
//! round under faults breaks no guarantee, and the same traffic against a
//! deliberately broken bid path (this debug build's
//! `DKP_FAULT_BIDS_UNLOCKED`: no write lane, no locks, READ COMMITTED) is
//! caught, which proves the harness can fail.

use std::path::PathBuf;

use dkp_bench::chaos::{Plan, rounds};

use crate::support::temp_dir;

/// A short round of a small world, with a fault every 2-6 s.
fn plan(seed: u64, env: Vec<(String, String)>) -> Plan {
    Plan {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_dkp")),
        dir: temp_dir(),
        env,
        rounds: 1,
        seconds: 25,
        seed,
        guilds: 3,
        raiders: 6,
        fault_every: 4,
        all_in: 0.3,
        keep_broken: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_round_under_faults_breaks_no_guarantee() {
    let done = rounds(&plan(11, Vec::new()), |_| {}).await.expect("the round runs");
    let round = &done[0];
    assert!(round.violations.is_empty(), "{}\n{:#?}", round.line(), round.violations);
    assert!(round.faults.values().sum::<u64>() >= 3, "{}", round.line());
    assert!(round.accepted_bids >= 50, "{}", round.line());
    assert!(round.events >= 100, "the subscribers' streams were checked: {}", round.line());
    for kind in ["award", "transfer", "adjustment", "reversal", "replay", "bid", "open_lot", "subscription", "catch_up"]
    {
        let [answered, _, _] = round.requests.0.get(kind).copied().unwrap_or_default();
        assert!(answered > 0, "no {kind} was answered: {}", round.line());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bid_path_without_locks_is_caught() {
    let broken = vec![("DKP_FAULT_BIDS_UNLOCKED".to_owned(), "1".to_owned())];
    let plan = Plan { fault_every: 0, ..plan(12, broken) };
    let done = rounds(&plan, |_| {}).await.expect("the round runs");
    let round = &done[0];
    assert!(
        round.violations.iter().any(|v| v.contains("available points are below zero")),
        "the broken bid path went unnoticed: {}\n{:#?}",
        round.line(),
        round.violations
    );
}
