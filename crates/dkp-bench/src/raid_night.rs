//! `raid-night`: many guilds bidding at once, as on a busy evening. G guilds,
//! each with R raiders (funded with a billion points each) and L open lots in
//! its pool; N closed-loop bidders spread over the guilds (bidder `b` is a
//! raider of guild `b mod G`), each bidding on its guild's lots in turn and
//! waiting for each answer before the next bid.
//!
//! Each lot's live room shows every raider of the guild the amount that can
//! win next, and a bid placed there is seen at once: a bidder takes that
//! amount and the room moves one increment up, so two guild-mates bidding on
//! one lot at the same moment bid different amounts, as the hot lot's
//! bidders share one counter. The room also learns from every answer (an
//! accepted bid's lot, a refusal's minimum, which `bid_too_low` names, or
//! else the lot read back). Bids still race: a higher bid decided before a
//! lower one of the same lot refuses it. The load is spread over G x L lots,
//! where hot-lot puts it all on one.
//!
//! With `--same-amount`, the room shows only answers: guild-mates stepping
//! onto one lot together bid the same amount and all but one lose, which
//! measures the generator's lockstep more than the service.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::{Value, json};

use crate::deployment::{Deployment, Topology};
use crate::figures::{Answers, BidWork, Outcome, Row};
use crate::harness::{Database, Http};
use crate::metrics::Change;
use crate::setup::{INCREMENT, Officer, account, amount, few_at_a_time, hundredths, register, run_tag};

#[derive(Debug, Clone, Args)]
pub struct RaidNight {
    #[command(flatten)]
    pub database: Database,
    #[command(flatten)]
    pub topology: Topology,
    /// Guilds raiding at once.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..))]
    pub guilds: u16,
    /// Raiders of each guild (members with points).
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u16).range(1..))]
    pub raiders: u16,
    /// Open lots in each guild's pool.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub lots: u16,
    /// Bidders in all, spread over the guilds; more than guilds x raiders
    /// makes some raiders bid from two places at once.
    #[arg(long, default_value_t = 64)]
    pub bidders: usize,
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Send every bid with an `Idempotency-Key` of its own, as the web pages do.
    #[arg(long)]
    pub keys: bool,
    /// Bidders learn a lot's next amount from answers only, so guild-mates
    /// bidding on one lot at once bid the same amount (the earlier model).
    #[arg(long)]
    pub same_amount: bool,
}

/// One guild as its bidders see it.
struct Guild {
    slug: String,
    lots: Vec<String>,
    /// The lowest bid that can win on each lot, as the room shows it (hundredths).
    next: Arc<[AtomicI64]>,
    /// The session of each raider who bids (the first ones), in order.
    sessions: Vec<String>,
}

/// Where bidder `b` sits: its guild, and its raider in that guild.
fn seat(bidder: usize, guilds: usize, raiders: usize) -> (usize, usize) {
    (bidder % guilds, (bidder / guilds) % raiders)
}

pub async fn run(bench: RaidNight) -> anyhow::Result<()> {
    let mut deployment = Deployment::start(&bench.database, &bench.topology).await?;
    let doors = deployment.spread().await?;
    let doors: Vec<Http> = doors.into_iter().map(|address| Http::new(address, bench.bidders + 8)).collect();
    let guilds = Arc::new(set_up(&doors[0], &bench).await?);
    let before = deployment.metrics().await?;
    let cpu = deployment.cpu_meter();
    let began = Instant::now();
    let deadline = began + Duration::from_secs(bench.seconds);
    let mut tasks = Vec::new();
    for b in 0..bench.bidders {
        let (g, r) = seat(b, guilds.len(), usize::from(bench.raiders));
        let mut bidder = Bidder::new(&guilds[g], r, b / guilds.len());
        bidder.keys = bench.keys.then(|| format!("{}-{b}", run_tag()));
        bidder.claims = !bench.same_amount;
        tasks.push(tokio::spawn(bidder.run(doors[b % doors.len()].clone(), deadline)));
    }
    let mut answers = Answers::default();
    for task in tasks {
        answers.merge(task.await?);
    }
    let elapsed = began.elapsed().as_secs_f64();
    let cpu = cpu.report();
    answers.sort();
    let counted = bid_counts(&doors[0], &guilds).await?;
    let change = Change { before, after: deployment.metrics().await? };
    println!(
        "raid-night bench: store={} {} guilds={} raiders={} lots per guild={} bidders={} seconds={} keys={} \
         same_amount={}",
        bench.database.store(),
        deployment.describe(),
        bench.guilds,
        bench.raiders,
        bench.lots,
        bench.bidders,
        bench.seconds,
        bench.keys,
        bench.same_amount,
    );
    let accepted = answers.accepted.len() as u64;
    println!("  lots' bid_count sum={counted} (matches accepted: {})", counted == accepted);
    println!("  {cpu}");
    let row = Row {
        bench: "raid-night",
        store: bench.database.store(),
        deployment: deployment.describe(),
        bidders: bench.bidders,
        lots: guilds.iter().map(|guild| guild.lots.len()).sum(),
        elapsed,
        answers: &answers,
        work: BidWork::over(&change),
    };
    println!("{row}");
    Ok(())
}

/// Registers every raider (logging in those who bid), then sets up each
/// guild: its pool, its raiders as members with a billion points each, and
/// its open lots.
async fn set_up(http: &Http, bench: &RaidNight) -> anyhow::Result<Vec<Guild>> {
    let tag = run_tag();
    let owner = Officer { http: http.clone(), token: account(http, &format!("own{tag}")).await? };
    let (guilds, raiders) = (usize::from(bench.guilds), usize::from(bench.raiders));
    let bidding = |g: usize, r: usize| (0..bench.bidders).any(|b| seat(b, guilds, raiders) == (g, r));
    let seats: Vec<(usize, usize, bool)> =
        (0..guilds).flat_map(|g| (0..raiders).map(move |r| (g, r))).map(|(g, r)| (g, r, bidding(g, r))).collect();
    let name = |g: usize, r: usize| format!("r{r}g{g}x{tag}");
    let sessions = few_at_a_time(seats, |(g, r, bids)| {
        let name = name(g, r);
        async move {
            if bids {
                return Ok(Some(account(http, &name).await?));
            }
            register(http, &name).await?;
            Ok(None)
        }
    })
    .await?;
    let mut sessions = sessions.into_iter();
    let mut plans = Vec::new();
    for g in 0..guilds {
        let mine: Vec<Option<String>> = sessions.by_ref().take(raiders).collect();
        plans.push((g, mine));
    }
    let (owner, name, tag, lots) = (&owner, &name, &tag, usize::from(bench.lots));
    few_at_a_time(plans, |(g, mine)| async move {
        let slug = format!("g{g}x{tag}");
        owner.guild(&slug).await?;
        let pool = owner.pool(&slug, "Main").await?;
        let mut members = Vec::new();
        for r in 0..raiders {
            members.push(owner.member(&slug, &name(g, r)).await?);
        }
        owner.award(&slug, &pool, &members, "1000000000").await?;
        let mut ids = Vec::new();
        for _ in 0..lots {
            ids.push(owner.lot(&slug, &pool, &json!({})).await?);
        }
        let next = ids.iter().map(|_| AtomicI64::new(1)).collect();
        Ok(Guild { slug, lots: ids, next, sessions: mine.into_iter().flatten().collect() })
    })
    .await
}

/// The sum of the lots' `bid_count`, read back through the API.
async fn bid_counts(http: &Http, guilds: &[Guild]) -> anyhow::Result<u64> {
    let mut total = 0;
    for guild in guilds {
        let Some(session) = guild.sessions.first() else { continue };
        for lot in &guild.lots {
            let path = format!("/api/v1/guilds/{}/lots/{lot}", guild.slug);
            let (_, reply) = http.send("GET", &path, Some(session), None).await?;
            total += reply["lot"]["bid_count"].as_u64().unwrap_or(0);
        }
    }
    Ok(total)
}

/// One closed-loop bidder: a raider's session and its guild's lots.
struct Bidder {
    session: String,
    /// Each lot's bids path and path.
    lots: Vec<(String, String)>,
    /// What the guild's rooms show: the amount to bid on each lot next.
    next: Arc<[AtomicI64]>,
    /// The lot it bids on next; bidders of one guild start on different lots.
    turn: usize,
    /// With `--keys`: what its idempotency keys start with (a count follows).
    keys: Option<String>,
    /// Whether a bid moves the room's next amount up as it is placed.
    claims: bool,
}

impl Bidder {
    /// The bidder sitting at raider `r` of `guild`, the `nth` of its guild.
    fn new(guild: &Guild, r: usize, nth: usize) -> Bidder {
        let lots = guild
            .lots
            .iter()
            .map(|lot| {
                let path = format!("/api/v1/guilds/{}/lots/{lot}", guild.slug);
                (format!("{path}/bids"), path)
            })
            .collect();
        let session = guild.sessions[r % guild.sessions.len()].clone();
        Bidder { session, lots, next: guild.next.clone(), turn: nth % guild.lots.len(), keys: None, claims: true }
    }

    async fn run(mut self, http: Http, deadline: Instant) -> Answers {
        let mut answers = Answers::default();
        while Instant::now() < deadline {
            let n = self.turn % self.lots.len();
            self.turn += 1;
            let (bids, lot) = &self.lots[n];
            let body = json!({"amount": amount(take(&self.next[n], self.claims))});
            let sent = Instant::now();
            let key = self.keys.as_ref().map(|keys| format!("{keys}-{}", self.turn));
            let headers: Vec<(&str, &str)> = key.iter().map(|key| ("idempotency-key", key.as_str())).collect();
            let answer = http.send_with("POST", bids, Some(&self.session), Some(&body), &headers).await.ok();
            let outcome = Outcome::of(answer.as_ref().map(|(status, _)| *status));
            answers.record(outcome, sent);
            let known = match (outcome, &answer) {
                (Outcome::Accepted, Some((_, reply))) => above_high(&reply["lot"]),
                (Outcome::Refused, Some((_, reply))) => match minimum(reply) {
                    Some(minimum) => Some(minimum),
                    None => read_lot(&http, lot, &self.session).await,
                },
                _ => None,
            };
            if let Some(known) = known {
                self.next[n].fetch_max(known, Ordering::Relaxed);
            }
        }
        answers
    }
}

/// The amount to bid from what a lot's room shows; one that `claims` it
/// moves the room one increment up for the next bidder.
fn take(next: &AtomicI64, claims: bool) -> i64 {
    match claims {
        true => next.fetch_add(INCREMENT, Ordering::Relaxed),
        false => next.load(Ordering::Relaxed),
    }
}

/// The lowest bid that can win on a lot as an answer shows it: its high bid
/// plus its increment, or its minimum bid while it has none.
pub(crate) fn above_high(lot: &Value) -> Option<i64> {
    match lot["high_bid"].as_str() {
        Some(high) => Some(hundredths(high)? + hundredths(lot["increment"].as_str()?)?),
        None => hundredths(lot["min_bid"].as_str()?),
    }
}

/// The minimum a `bid_too_low` refusal names ("the bid must be at least 12.34").
pub(crate) fn minimum(refusal: &Value) -> Option<i64> {
    let error = &refusal["error"];
    if error["code"] != "bid_too_low" {
        return None;
    }
    hundredths(error["message"].as_str()?.rsplit(' ').next()?)
}

/// The lowest bid that can win on a lot, read from the lot itself.
async fn read_lot(http: &Http, path: &str, session: &str) -> Option<i64> {
    let (status, reply) = http.send("GET", path, Some(session), None).await.ok()?;
    if status != 200 {
        return None;
    }
    above_high(&reply["lot"])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bidders_go_round_the_guilds_then_round_the_raiders() {
        assert_eq!(seat(0, 20, 25), (0, 0));
        assert_eq!(seat(21, 20, 25), (1, 1));
        assert_eq!(seat(500, 20, 25), (0, 0), "past 500 a raider bids twice");
    }

    #[test]
    fn guild_mates_taking_from_one_room_bid_rising_amounts_unless_they_learn_from_answers_only() {
        let room = AtomicI64::new(100);
        assert_eq!((take(&room, true), take(&room, true)), (100, 101));
        assert_eq!((take(&room, false), take(&room, false)), (102, 102));
    }

    #[test]
    fn the_next_bid_is_the_high_bid_plus_the_increment_or_the_minimum_bid() {
        let lot = json!({"high_bid": "2.50", "increment": "0.05", "min_bid": "0.01"});
        assert_eq!(above_high(&lot), Some(255));
        assert_eq!(above_high(&json!({"increment": "0.05", "min_bid": "1.00"})), Some(100));
    }

    #[test]
    fn a_too_low_refusal_names_the_minimum() {
        let refusal = json!({"error": {"code": "bid_too_low", "message": "the bid must be at least 12.34"}});
        assert_eq!(minimum(&refusal), Some(1234));
        let closed = json!({"error": {"code": "lot_closed", "message": "the lot is not open for bids"}});
        assert_eq!(minimum(&closed), None);
    }
}
