//! `raid-awards` (issue 10): the end of a raid night, when many guilds award
//! their raids at once. G guilds, each with one pool and one raid of R
//! raiders (the last tenth on standby) and three boss kills; then every raid
//! is awarded `repeats` times at once under different idempotency keys, by
//! `concurrency` requests in flight. Each raid must pay exactly once: one
//! 201 per raid, every other award a 200 with nothing to pay, and each
//! pool's wallets holding exactly what its raid was worth. It prints the
//! awards' throughput and latency and the retries per commit of the award
//! transactions (from the servers' metrics).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;

use crate::deployment::{Deployment, Topology};
use crate::harness::{Database, Http};
use crate::latency_line;
use crate::metrics::Change;
use crate::setup::{Officer, account, few_at_a_time, register, run_tag, text};

#[derive(Debug, Clone, Args)]
pub struct RaidAwards {
    #[command(flatten)]
    pub database: Database,
    #[command(flatten)]
    pub topology: Topology,
    /// Guilds awarding at once, each with one pool and one raid.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
    pub guilds: u16,
    /// Attendees of each raid.
    #[arg(long, default_value_t = 40, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub raiders: u16,
    /// Award requests for each raid, sent together: the first to commit pays.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..))]
    pub repeats: u16,
    /// Award requests in flight at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
}

/// Each guild's pool pays 10 per kill, 5 on time, 6 per hour; standby half.
fn rules() -> serde_json::Value {
    json!({"boss_kill": 10, "on_time": 5, "per_hour": 6, "standby_percent": 50})
}

const KILLS: [&str; 3] = ["2026-11-26T18:30:00Z", "2026-11-26T19:30:00Z", "2026-11-26T20:30:00Z"];
const MINUTES: i64 = 180;

/// What one raid pays in all, in hundredths: 3 kills x 10 + 5 + 3 h x 6 =
/// 53 to each present raider, half of it to each on standby.
fn raid_worth(raiders: usize) -> i64 {
    let standby = standbys(raiders);
    (raiders - standby) as i64 * 53_00 + standby as i64 * 26_50
}

/// How many of a raid's attendees are on standby: the last tenth.
fn standbys(raiders: usize) -> usize {
    raiders / 10
}

/// One guild's raid as the awards reach it.
struct Raid {
    /// Its pool's path: `/api/v1/guilds/{slug}/pools/{id}`.
    pool: String,
    award: String,
}

/// What the awarders saw.
#[derive(Default)]
struct Tally {
    latencies: Vec<f64>,
    paid: usize,
    unchanged: usize,
    server_errors: usize,
    other: usize,
}

pub async fn run(bench: RaidAwards) -> anyhow::Result<()> {
    let mut deployment = Deployment::start(&bench.database, &bench.topology).await?;
    let doors = deployment.spread().await?;
    let doors: Vec<Http> = doors.into_iter().map(|address| Http::new(address, bench.concurrency + 8)).collect();
    let set_up_began = Instant::now();
    let (owner, raids) = set_up(&doors[0], &bench).await?;
    let set_up_s = set_up_began.elapsed().as_secs_f64();
    let raids = Arc::new(raids);
    let before = deployment.metrics().await?;
    let began = Instant::now();
    let total = raids.len() * usize::from(bench.repeats);
    let next = Arc::new(AtomicUsize::new(0));
    let mut awarders = Vec::new();
    for n in 0..bench.concurrency {
        let (http, token) = (doors[n % doors.len()].clone(), owner.token.clone());
        awarders.push(tokio::spawn(award(http, token, raids.clone(), next.clone(), (total, bench.repeats))));
    }
    let mut tally = Tally::default();
    for awarder in awarders {
        let mut one = awarder.await.context("an awarder crashed")?;
        tally.latencies.append(&mut one.latencies);
        tally.paid += one.paid;
        tally.unchanged += one.unchanged;
        tally.server_errors += one.server_errors;
        tally.other += one.other;
    }
    let elapsed = began.elapsed().as_secs_f64();
    tally.latencies.sort_by(f64::total_cmp);
    let change = Change { before, after: deployment.metrics().await? };
    let held = owner.held(raids.iter().map(|raid| raid.pool.as_str())).await?;
    let expected = raid_worth(usize::from(bench.raiders)) * raids.len() as i64;
    report(&bench, &deployment, &tally, (set_up_s, elapsed), &change);
    let once = tally.paid == raids.len() && tally.unchanged == total - raids.len();
    println!(
        "  each raid paid once: {}; wallets hold {held} hundredths, expected {expected}: {}",
        if once { "yes" } else { "NO" },
        if held == expected { "ok" } else { "MISMATCH" }
    );
    if !once || held != expected || tally.server_errors + tally.other > 0 {
        bail!("the raid-awards benchmark found an error");
    }
    Ok(())
}

/// One awarder: takes the next request until `total`; the `repeats` requests
/// of a raid come one after another, so they are in flight together.
async fn award(
    http: Http,
    token: String,
    raids: Arc<Vec<Raid>>,
    next: Arc<AtomicUsize>,
    (total, repeats): (usize, u16),
) -> Tally {
    let mut tally = Tally::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= total {
            return tally;
        }
        let raid = &raids[i / usize::from(repeats)];
        let key = format!("award-{i}");
        let started = Instant::now();
        let answer = http.send_with("POST", &raid.award, Some(&token), None, &[("idempotency-key", &key)]).await;
        tally.latencies.push(started.elapsed().as_secs_f64() * 1000.0);
        match answer.map(|(status, _)| status).ok() {
            Some(201) => tally.paid += 1,
            Some(200) => tally.unchanged += 1,
            Some(500..) => tally.server_errors += 1,
            _ => tally.other += 1,
        }
    }
}

/// Registers the raiders, then opens each guild with its raiders as members,
/// its pool and rules, and its raid with kills and attendance.
async fn set_up(http: &Http, bench: &RaidAwards) -> anyhow::Result<(Officer, Vec<Raid>)> {
    let tag = run_tag();
    let owner = Officer { http: http.clone(), token: account(http, &format!("own{tag}")).await? };
    let names: Vec<String> = (0..bench.raiders).map(|n| format!("a{n}x{tag}")).collect();
    few_at_a_time(names.clone(), |name| async move { register(http, &name).await }).await?;
    let (owner_ref, names, tag) = (&owner, &names, &tag);
    let raids = few_at_a_time((0..bench.guilds).collect(), |g| async move {
        let slug = format!("ra{g}x{tag}");
        owner_ref.guild(&slug).await?;
        let mut members = Vec::new();
        for name in names {
            members.push(owner_ref.member(&slug, name).await?);
        }
        let pool = owner_ref.pool(&slug, "Raids").await?;
        owner_ref.put(&format!("/api/v1/guilds/{slug}/pools/{pool}/rules"), rules()).await?;
        let raid = json!({"pool_id": pool, "name": "Bench night", "started_at": "2026-11-26T18:00:00Z",
                          "ended_at": "2026-11-26T21:00:00Z"});
        let raid = owner_ref.post(&format!("/api/v1/guilds/{slug}/raids"), raid).await?;
        let path = format!("/api/v1/guilds/{slug}/raids/{}", text(&raid["raid"]["id"], "raid id")?);
        for (n, at) in KILLS.iter().enumerate() {
            owner_ref.post(&format!("{path}/kills"), json!({"boss": format!("Boss {n}"), "killed_at": at})).await?;
        }
        let on_standby = members.len() - standbys(members.len());
        let attendees: Vec<_> = members
            .iter()
            .enumerate()
            .map(|(n, id)| json!({"member_id": id, "minutes": MINUTES, "on_time": true, "standby": n >= on_standby}))
            .collect();
        owner_ref.put(&format!("{path}/attendance"), json!({ "attendees": attendees })).await?;
        anyhow::Ok(Raid { pool: format!("/api/v1/guilds/{slug}/pools/{pool}"), award: format!("{path}/award") })
    })
    .await?;
    Ok((owner, raids))
}

fn report(
    bench: &RaidAwards,
    deployment: &Deployment,
    tally: &Tally,
    (set_up_s, elapsed): (f64, f64),
    change: &Change,
) {
    let latencies = &tally.latencies;
    println!(
        "raid-awards bench: store={} {} guilds={} raiders={} repeats={} concurrency={} (set up in {set_up_s:.1} s)",
        bench.database.store(),
        deployment.describe(),
        bench.guilds,
        bench.raiders,
        bench.repeats,
        bench.concurrency,
    );
    println!(
        "  awards={} paid={} unchanged={} elapsed_s={elapsed:.2} ops_per_s={:.0} paid_per_s={:.0}",
        latencies.len(),
        tally.paid,
        tally.unchanged,
        latencies.len() as f64 / elapsed,
        tally.paid as f64 / elapsed,
    );
    println!("  {}", latency_line(latencies));
    let op = "op=\"raid_award\"";
    let (commits, retries) = (change.labelled("dkp_tx_commits_total", op), change.labelled("dkp_tx_retries_total", op));
    println!(
        "  award commits={commits} retries={retries} retries_per_commit={:.4} tx_failures={} 5xx={} other={}",
        retries / commits.max(1.0),
        change.total("dkp_tx_failures_total"),
        tally.server_errors,
        tally.other,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_raid_of_forty_is_worth_36_present_shares_and_4_standby_halves() {
        assert_eq!(standbys(40), 4);
        assert_eq!(raid_worth(40), 36 * 53_00 + 4 * 26_50);
        assert_eq!(raid_worth(5), 5 * 53_00, "a raid under ten has nobody on standby");
    }
}
