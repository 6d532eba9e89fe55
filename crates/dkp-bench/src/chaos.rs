//! `chaos`: proof under faults. Seeded rounds of a raid night's traffic
//! against a whole deployment (`cluster`: PostgreSQL, Redis, three
//! instances, two workers, nginx), while a seeded schedule kills and stops
//! its processes: an instance or a worker killed (SIGKILL) and started
//! again, an instance stopped for 5 s (SIGSTOP), PostgreSQL restarted fast,
//! Redis killed or emptied (`FLUSHALL`); clients also give up on some
//! requests early. Every request's outcome is recorded (`record`); after
//! each round, with everything back up, what the clients were told is held
//! against what the database committed (`check`). A round's figures: its
//! seed, requests by kind and outcome, faults by kind, and every broken
//! guarantee found (the goal: none).

mod check;
mod cluster;
mod load;
mod record;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use self::cluster::{Cluster, INSTANCES, WORKERS};
use self::load::{OfficerLog, RunnerLog, SeatLog, Subscriber};
use self::record::Findings;
pub use self::record::Tally;
use crate::harness::Http;

#[derive(Debug, Clone, Args)]
pub struct Chaos {
    /// Rounds to run, one after the other on one cluster.
    #[arg(long, default_value_t = 20)]
    pub rounds: u64,
    /// Seconds of load in each round.
    #[arg(long, default_value_t = 120)]
    pub seconds: u64,
    /// The first round's seed; round n runs seed + n.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Guilds each round, each with its officer, lot runner and subscribers.
    #[arg(long, default_value_t = 6)]
    pub guilds: usize,
    /// Raiders of each guild, each bidding from two places at once.
    #[arg(long, default_value_t = 20)]
    pub raiders: usize,
    /// Mean seconds between two faults (0: none).
    #[arg(long, default_value_t = 6)]
    pub fault_every: u64,
    /// The share of bids on open lots that ask for about all the raider has left.
    #[arg(long, default_value_t = 0.3)]
    pub all_in: f64,
    /// Where the cluster keeps its data and logs (kept when a round breaks a guarantee).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}

/// A run of rounds, as a program or a test asks for it.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The `dkp` executable the instances and workers run.
    pub exe: PathBuf,
    pub dir: PathBuf,
    /// More environment for the instances and workers.
    pub env: Vec<(String, String)>,
    pub rounds: u64,
    pub seconds: u64,
    pub seed: u64,
    pub guilds: usize,
    pub raiders: usize,
    pub fault_every: u64,
    /// The share of bids on open lots that ask for about all the raider has left.
    pub all_in: f64,
    /// Keep the cluster's folder (data and logs) when a guarantee broke.
    pub keep_broken: bool,
}

/// What one round came to.
#[derive(Debug)]
pub struct Round {
    pub seed: u64,
    pub requests: Tally,
    pub faults: BTreeMap<&'static str, u64>,
    pub accepted_bids: usize,
    /// Events the subscribers received (the stream check's material), and
    /// the times the server told one to reload a channel instead.
    pub events: usize,
    pub resets: u32,
    pub violations: Vec<String>,
}

impl Round {
    /// Its figures on one line.
    pub fn line(&self) -> String {
        let [ok, refused, unknown] = self.requests.0.values().fold([0; 3], |mut all, c| {
            for (a, c) in all.iter_mut().zip(c) {
                *a += c;
            }
            all
        });
        let faults: Vec<String> = self.faults.iter().map(|(kind, n)| format!("{kind}={n}")).collect();
        format!(
            "seed={} requests={} answered={ok} refused={refused} unknown={unknown} accepted_bids={} events={} resets={} faults=[{}] violations={}",
            self.seed,
            self.requests.total(),
            self.accepted_bids,
            self.events,
            self.resets,
            faults.join(" "),
            self.violations.len()
        )
    }
}

/// A small seeded generator (SplitMix64): a round's choices follow from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number below `n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        items.get(self.below(items.len() as u64) as usize)
    }

    /// A generator of its own for one client, so clients do not share a sequence.
    pub fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}

/// The faults, by name.
const FAULTS: [&str; 6] =
    ["kill_instance", "kill_worker", "pause_instance", "restart_postgres", "kill_redis", "flush_redis"];

/// The faults in a seeded order, every kind once before any comes again.
struct Deck {
    rng: Rng,
    left: Vec<&'static str>,
}

impl Deck {
    fn new(rng: Rng) -> Deck {
        Deck { rng, left: Vec::new() }
    }

    fn draw(&mut self) -> &'static str {
        if self.left.is_empty() {
            self.left = FAULTS.to_vec();
        }
        let n = self.rng.below(self.left.len() as u64) as usize;
        self.left.swap_remove(n)
    }
}

/// Injects `fault` and waits until its part is back.
async fn inject(cluster: &mut Cluster, fault: &'static str, rng: &mut Rng, findings: &Findings) {
    let down = Duration::from_millis(300 + rng.below(2000));
    let done = match fault {
        "kill_instance" => cluster.crash_instance(rng.below(INSTANCES as u64) as usize, down).await,
        "kill_worker" => cluster.crash_worker(rng.below(WORKERS as u64) as usize, down).await,
        "pause_instance" => {
            cluster.pause_instance(rng.below(INSTANCES as u64) as usize, Duration::from_secs(5)).await;
            Ok(())
        }
        "restart_postgres" => cluster.postgres.restart(),
        "kill_redis" => cluster.redis.crash(down).await,
        _ => cluster.redis.flush_all().await,
    };
    if let Err(error) = done {
        findings.add(format!("{fault}: the part did not come back: {error:#}"));
    }
}

/// Runs the plan's rounds on one cluster, calling `each` with every round's
/// figures as it ends.
pub async fn rounds(plan: &Plan, mut each: impl FnMut(&Round)) -> anyhow::Result<Vec<Round>> {
    let mut cluster = Cluster::start(&plan.dir, &plan.exe, plan.env.clone()).await?;
    let mut done = Vec::new();
    for n in 0..plan.rounds {
        let round = round(&mut cluster, plan, plan.seed + n).await?;
        each(&round);
        done.push(round);
    }
    let broken = done.iter().any(|r| !r.violations.is_empty());
    let dir = cluster.dir().to_path_buf();
    drop(cluster);
    if !(broken && plan.keep_broken) {
        let _ = std::fs::remove_dir_all(dir);
    }
    Ok(done)
}

async fn round(cluster: &mut Cluster, plan: &Plan, seed: u64) -> anyhow::Result<Round> {
    let mut rng = Rng::new(seed);
    let door = cluster.nginx.address;
    let http = Http::new(door, 64);
    let tag = format!("{:06x}", rng.next_u64() & 0xff_ffff);
    let guilds = load::set_up(&http, &tag, plan.guilds, plan.raiders).await?;
    let findings = Findings::default();
    let deadline = Instant::now() + Duration::from_secs(plan.seconds);

    let mut officers = Vec::new();
    let mut runners = Vec::new();
    let mut seats = Vec::new();
    let mut subscribers = Vec::new();
    for (g, guild) in guilds.iter().enumerate() {
        let officer = load::officer(guild.clone(), rng.fork(), tag.clone(), deadline, findings.clone());
        officers.push(tokio::spawn(async move { (g, officer.await) }));
        runners.push(tokio::spawn(load::lot_runner(guild.clone(), rng.fork(), deadline)));
        for raider in 0..guild.raider_count() {
            for _ in 0..2 {
                seats.push(tokio::spawn(load::seat(
                    guild.clone(),
                    raider,
                    plan.all_in,
                    rng.fork(),
                    deadline,
                    findings.clone(),
                )));
            }
        }
        for subscriber in load::subscribers(guild, door) {
            subscribers.push(tokio::spawn(subscriber.run(rng.fork(), deadline, findings.clone())));
        }
    }

    let watch = tokio::spawn(check::watch(cluster.postgres.psql(), deadline, cluster.dir().to_path_buf()));
    let mut faults: BTreeMap<&'static str, u64> = BTreeMap::new();
    let (mut schedule, mut deck) = (rng.fork(), Deck::new(rng.fork()));
    let every = plan.fault_every * 1000;
    loop {
        let pause = Duration::from_millis(every / 2 + schedule.below(every));
        if every == 0 || Instant::now() + pause >= deadline {
            break;
        }
        tokio::time::sleep(pause).await;
        let fault = deck.draw();
        inject(cluster, fault, &mut schedule, &findings).await;
        *faults.entry(fault).or_default() += 1;
    }
    tokio::time::sleep_until(deadline.into()).await;

    let mut requests = Tally::default();
    let mut officer_logs: Vec<(usize, OfficerLog)> = Vec::new();
    for task in officers {
        officer_logs.push(task.await?);
    }
    for task in runners {
        let log: RunnerLog = task.await?;
        requests.add(&log.tally);
    }
    let mut bids = Vec::new();
    for task in seats {
        let log: SeatLog = task.await?;
        requests.add(&log.tally);
        bids.extend(log.bids);
    }
    let mut listened: Vec<Subscriber> = Vec::new();
    for task in subscribers {
        listened.push(task.await?);
    }

    // Everything back up; then what the clients never learnt is asked again,
    // and every subscriber comes back once more for what it missed.
    cluster.heal().await?;
    requests.add(&load::settle_unknowns(&guilds, &mut officer_logs, &findings).await);
    let caught_up = listened.into_iter().map(|mut subscriber| {
        let findings = findings.clone();
        async move {
            subscriber.catch_up(&findings).await;
            subscriber
        }
    });
    let listened = futures_util::future::join_all(caught_up).await;
    for (_, log) in &officer_logs {
        requests.add(&log.tally);
    }
    for subscriber in &listened {
        requests.add(&subscriber.tally);
    }

    let ops: Vec<_> = officer_logs.iter().flat_map(|(_, log)| &log.ops).collect();
    let raids: Vec<_> = officer_logs.iter().flat_map(|(_, log)| &log.raids).collect();
    let tracks: Vec<_> = listened.iter().flat_map(|s| s.tracks.values()).collect();
    let acked: Vec<_> = bids.iter().collect();
    let mut violations = findings.take();
    violations.extend(watch.await?);
    violations.extend(check::check(&cluster.postgres.psql(), &ops, &raids, &acked, &tracks)?);
    let events = tracks.iter().map(|t| t.seen.len()).sum();
    let resets = tracks.iter().map(|t| t.resets).sum();
    Ok(Round { seed, requests, faults, accepted_bids: bids.len(), events, resets, violations })
}

/// `dkp bench chaos`: runs the rounds and prints each round's figures, then
/// the totals; fails when any round broke a guarantee.
pub async fn run(bench: Chaos) -> anyhow::Result<()> {
    let dir = bench
        .dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join(format!("dkp-chaos-{}", crate::setup::run_tag())));
    let plan = Plan {
        exe: std::env::current_exe()?,
        dir,
        env: Vec::new(),
        rounds: bench.rounds,
        seconds: bench.seconds,
        seed: bench.seed,
        guilds: bench.guilds,
        raiders: bench.raiders,
        fault_every: bench.fault_every,
        all_in: bench.all_in,
        keep_broken: true,
    };
    println!(
        "chaos rounds={} seconds={} seed={} guilds={} raiders={} fault_every={}s instances={INSTANCES} workers={WORKERS} via=nginx store=postgres+redis",
        plan.rounds, plan.seconds, plan.seed, plan.guilds, plan.raiders, plan.fault_every
    );
    let started = Instant::now();
    let mut n = 0;
    let running = rounds(&plan, |round| {
        n += 1;
        println!("round {n} {}", round.line());
        for violation in &round.violations {
            println!("  violation: {violation}");
        }
    });
    // Stopped by a signal, the cluster still stops every process it started.
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let done = tokio::select! {
        done = running => done?,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted"),
        _ = terminate.recv() => anyhow::bail!("terminated"),
    };
    let mut requests = Tally::default();
    let mut faults: BTreeMap<&str, u64> = BTreeMap::new();
    for round in &done {
        requests.add(&round.requests);
        for (kind, count) in &round.faults {
            *faults.entry(kind).or_default() += count;
        }
    }
    println!("requests by kind (answered / refused / unknown):");
    for (kind, [ok, refused, unknown]) in &requests.0 {
        println!("  {kind}: {ok} / {refused} / {unknown}");
    }
    let faults: Vec<String> = faults.iter().map(|(kind, n)| format!("{kind}={n}")).collect();
    let violations: usize = done.iter().map(|r| r.violations.len()).sum();
    println!(
        "total rounds={} requests={} accepted_bids={} faults=[{}] violations={violations} elapsed_s={:.0}",
        done.len(),
        requests.total(),
        done.iter().map(|r| r.accepted_bids).sum::<usize>(),
        faults.join(" "),
        started.elapsed().as_secs_f64()
    );
    if violations > 0 {
        anyhow::bail!(
            "{violations} broken guarantees (the cluster's folder, with its logs, is kept: {})",
            plan.dir.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_choices_and_another_seed_others() {
        let draw = |seed| {
            let mut rng = Rng::new(seed);
            (0..8).map(|_| rng.below(1000)).collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
        assert_eq!(Rng::new(1).below(0), 0);
    }

    #[test]
    fn the_deck_deals_every_fault_before_any_again() {
        let mut deck = Deck::new(Rng::new(3));
        let mut first: Vec<&str> = (0..FAULTS.len()).map(|_| deck.draw()).collect();
        first.sort();
        let mut all = FAULTS.to_vec();
        all.sort();
        assert_eq!(first, all);
    }
}
