//! The clients of a chaos round, each a task of its own until the round's
//! deadline, all through the balancer: per guild an officer moving points
//! (awards, transfers, adjustments, reversals, replays of its keys, some
//! with a changed body), a lot runner (opening open and sealed lots, closing
//! and cancelling some, leaving the rest to close by themselves), two
//! bidding seats per raider (a raider bidding from two places at once) on a
//! hot lot and spread ones, and two WebSocket subscribers that drop their
//! connections and come back with `since`; one of them is a member who never
//! bids and watches the sealed lots.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::Rng;
use super::record::{AckedBid, Caller, Findings, LedgerOp, Outcome, Tally, Track};
use crate::harness::Http;
use crate::raid_night::{above_high, minimum};
use crate::setup::{Officer, account, amount, few_at_a_time, text};

/// Points each raider starts a round with, in hundredths (100 points).
const FUNDS: i64 = 10_000;

/// How long a client waits for an answer, and the short wait some requests get.
const PATIENCE: Duration = Duration::from_secs(3);

/// A lot while its runner keeps it: bidders read it to choose where and what to bid.
pub struct LiveLot {
    pub id: String,
    pub sealed: bool,
    /// The lowest bid that can win, as the guild's room shows it (hundredths).
    next: AtomicI64,
}

/// A guild of the round, as its clients know it.
pub struct Guild {
    pub slug: String,
    main_pool: String,
    alt_pool: String,
    officer: Caller,
    /// Each raider's member id and session.
    raiders: Vec<(String, Caller)>,
    /// A member who never bids: sealed amounts must never reach them before a close.
    watcher: Caller,
    /// The watcher's member id: it attends raids too, and is the one member
    /// a raid's correction may take points back from (see `correct_raid`).
    watcher_id: String,
    /// What each raider's two seats think the raider has left to bid (hundredths).
    left: Vec<AtomicI64>,
    lots: Mutex<Vec<Arc<LiveLot>>>,
}

impl Guild {
    pub fn raider_count(&self) -> usize {
        self.raiders.len()
    }

    fn lots(&self) -> Vec<Arc<LiveLot>> {
        self.lots.lock().expect("lots").clone()
    }

    fn path(&self, rest: &str) -> String {
        format!("/api/v1/guilds/{}/{rest}", self.slug)
    }
}

/// Sets up `guilds` guilds of `raiders` raiders, each raider funded in the
/// guild's main pool; names carry `tag`.
pub async fn set_up(http: &Http, tag: &str, guilds: usize, raiders: usize) -> anyhow::Result<Vec<Arc<Guild>>> {
    let mut made = Vec::new();
    for g in 0..guilds {
        let slug = format!("c{tag}g{g}");
        let owner = Officer { http: http.clone(), token: account(http, &format!("o{tag}g{g}")).await? };
        owner.guild(&slug).await?;
        let main_pool = owner.pool(&slug, "Main").await?;
        owner.put(&format!("/api/v1/guilds/{slug}/pools/{main_pool}/rules"), raid_rules()).await?;
        let alt =
            owner.post(&format!("/api/v1/guilds/{slug}/pools"), json!({"name": "Alt", "allow_negative": true})).await?;
        let alt_pool = text(&alt["pool"]["id"], "pool id")?;
        let names: Vec<String> = (0..=raiders).map(|r| format!("r{tag}g{g}n{r}")).collect();
        let tokens = few_at_a_time(names.clone(), |name| async move { account(http, &name).await }).await?;
        let mut members = Vec::new();
        for name in &names {
            members.push(owner.member(&slug, name).await?);
        }
        // The last one is the watcher, with no points.
        let raider_ids = &members[..raiders];
        owner.award(&slug, &main_pool, raider_ids, &amount(FUNDS)).await?;
        let caller = |token: &String| Caller { http: http.clone(), token: token.clone() };
        made.push(Arc::new(Guild {
            slug,
            main_pool,
            alt_pool,
            officer: caller(&owner.token),
            raiders: raider_ids.iter().cloned().zip(tokens.iter().map(caller)).collect(),
            watcher: caller(tokens.last().expect("a watcher")),
            watcher_id: members[raiders].clone(),
            left: (0..raiders).map(|_| AtomicI64::new(FUNDS)).collect(),
            lots: Mutex::new(Vec::new()),
        }));
    }
    Ok(made)
}

/// The main pool's rules: what a raid pays.
fn raid_rules() -> Value {
    json!({"boss_kill": 10, "on_time": 5, "per_hour": 6, "standby_percent": 50})
}

/// A raid an officer runs, as far as it knows it for sure.
#[derive(Debug, Clone)]
pub struct RaidRecord {
    pub id: String,
    path: String,
    /// Each attendee's minutes, as last set (all on time, none on standby).
    pub attendance: Vec<(String, i64)>,
    pub kills: i64,
    /// Every kill and the last attendance were answered, and (after the
    /// round) an award after them: the raid must have paid exactly `worth`.
    pub certain: bool,
}

impl RaidRecord {
    /// What each attendee must have been paid in all, in hundredths, by the rules above.
    pub fn worth(&self, minutes: i64) -> i64 {
        (10 * self.kills + 5) * 100 + 6 * 100 * minutes / 60
    }
}

/// A client's wait: usually `PATIENCE`, sometimes far less (a client timing out).
fn patience(rng: &mut Rng) -> Duration {
    if rng.chance(0.08) { Duration::from_millis(20 + rng.below(250)) } else { PATIENCE }
}

/// Points as a request writes them, possibly negative.
fn signed(hundredths: i64) -> String {
    if hundredths < 0 { format!("-{}", amount(-hundredths)) } else { amount(hundredths) }
}

/// What an officer did in a round.
#[derive(Default)]
pub struct OfficerLog {
    pub ops: Vec<LedgerOp>,
    pub raids: Vec<RaidRecord>,
    pub tally: Tally,
}

/// An officer moving points until `deadline`: every request under a key of
/// its own and a reason no other request carries.
pub async fn officer(
    guild: Arc<Guild>,
    mut rng: Rng,
    tag: String,
    deadline: Instant,
    findings: Findings,
) -> OfficerLog {
    let mut log = OfficerLog::default();
    let mut n = 0;
    let mut reversed: HashSet<String> = HashSet::new();
    while Instant::now() < deadline {
        n += 1;
        let reason = format!("chaos {tag} {} {n}", guild.slug);
        let key = format!("k{tag}-{}-{n}", guild.slug);
        let pool = if rng.chance(0.8) { &guild.main_pool } else { &guild.alt_pool };
        let member = |rng: &mut Rng| guild.raiders[rng.below(guild.raiders.len() as u64) as usize].0.clone();
        let roll = rng.below(100);
        let (kind, path, body) = match roll {
            0..28 => {
                let members: Vec<String> =
                    (0..1 + rng.below(4)).map(|_| member(&mut rng)).collect::<HashSet<_>>().into_iter().collect();
                let body =
                    json!({"member_ids": members, "amount": amount(100 + rng.below(1900) as i64), "reason": reason});
                ("award", guild.path(&format!("pools/{pool}/awards")), body)
            }
            28..50 => {
                let (from, to) = (member(&mut rng), member(&mut rng));
                let body = json!({"from_member_id": from, "to_member_id": to, "amount": amount(1 + rng.below(3000) as i64), "reason": reason});
                ("transfer", guild.path(&format!("pools/{pool}/transfers")), body)
            }
            50..68 => {
                let change = rng.below(5000) as i64 - 2500;
                let body = json!({"member_id": member(&mut rng), "amount": signed(if change == 0 { 1 } else { change }), "reason": reason});
                ("adjustment", guild.path(&format!("pools/{pool}/adjustments")), body)
            }
            68..78 => {
                let done: Vec<&LedgerOp> = log
                    .ops
                    .iter()
                    .filter(|op| op.kind != "reversal" && op.entry().is_some_and(|e| !reversed.contains(e)))
                    .collect();
                let Some(target) = rng.pick(&done).and_then(|op| op.entry()).map(str::to_owned) else { continue };
                reversed.insert(target.clone());
                ("reversal", guild.path(&format!("entries/{target}/reverse")), json!({"reason": reason}))
            }
            78..84 => {
                new_raid(&guild, &mut rng, &mut log, &key).await;
                continue;
            }
            84..89 => {
                correct_raid(&guild, &mut rng, &mut log, &key).await;
                continue;
            }
            _ => {
                replay(&guild, &mut rng, &mut log, &findings).await;
                continue;
            }
        };
        let outcome = guild.officer.call("POST", &path, Some(&body), Some(&key), patience(&mut rng)).await;
        log.tally.count(kind, &outcome);
        log.ops.push(LedgerOp { kind, path, body, key, outcome });
        tokio::time::sleep(Duration::from_millis(rng.below(40))).await;
    }
    log
}

/// Opens a raid of the main pool with a kill or two and some raiders
/// present for one or two hours, and awards it.
async fn new_raid(guild: &Guild, rng: &mut Rng, log: &mut OfficerLog, key: &str) {
    let body = json!({"pool_id": guild.main_pool, "name": "Chaos raid", "started_at": "2026-11-30T18:00:00Z",
                      "ended_at": "2026-11-30T21:00:00Z"});
    let outcome = guild.officer.call("POST", &guild.path("raids"), Some(&body), None, PATIENCE).await;
    log.tally.count("raid", &outcome);
    let Some(id) = outcome.body().and_then(|b| b["raid"]["id"].as_str()).map(str::to_owned) else { return };
    let path = guild.path(&format!("raids/{id}"));
    let mut raid = RaidRecord { id, path, attendance: Vec::new(), kills: 0, certain: true };
    for kill in 0..1 + rng.below(2) {
        let body = json!({"boss": format!("Boss {kill}"), "killed_at": "2026-11-30T19:00:00Z"});
        let outcome = guild.officer.call("POST", &format!("{}/kills", raid.path), Some(&body), None, PATIENCE).await;
        log.tally.count("raid_kill", &outcome);
        match outcome {
            Outcome::Ok(..) => raid.kills += 1,
            Outcome::Refused(..) => {}
            Outcome::Unknown => raid.certain = false,
        }
    }
    let mut attendance = Vec::new();
    for id in guild.raiders.iter().map(|(id, _)| id).chain([&guild.watcher_id]) {
        if rng.chance(0.6) {
            attendance.push((id.clone(), 60 * (1 + rng.below(2) as i64)));
        }
    }
    if attendance.is_empty() {
        attendance.push((guild.raiders[0].0.clone(), 60));
    }
    set_attendance(guild, &mut raid, attendance, log).await;
    award_raid(guild, &raid, log, key, PATIENCE).await;
    log.raids.push(raid);
}

/// Corrects a raid's attendance and awards it again: the award pays the
/// difference. A correction that takes points back may leave its member's
/// available points below zero, by design (a raid's record is the truth,
/// `dkp_core::ledger::Check::of`), so only the watcher, who never bids nor
/// gets anything else, is ever taken off a raid or given fewer minutes; a
/// raider is added, or given more.
async fn correct_raid(guild: &Guild, rng: &mut Rng, log: &mut OfficerLog, key: &str) {
    let Some(n) = (!log.raids.is_empty()).then(|| rng.below(log.raids.len() as u64) as usize) else { return };
    let mut raid = log.raids[n].clone();
    let mut attendance = raid.attendance.clone();
    let member = match rng.below(guild.raiders.len() as u64 + 1) as usize {
        r if r < guild.raiders.len() => &guild.raiders[r].0,
        _ => &guild.watcher_id,
    };
    let lowers = *member == guild.watcher_id;
    match attendance.iter().position(|(id, _)| id == member) {
        Some(at) if lowers && attendance.len() > 1 && rng.chance(0.5) => {
            attendance.remove(at);
        }
        Some(at) if lowers || attendance[at].1 == 60 => attendance[at].1 = 180 - attendance[at].1,
        Some(_) => return,
        None => attendance.push((member.clone(), 120)),
    }
    set_attendance(guild, &mut raid, attendance, log).await;
    award_raid(guild, &raid, log, key, PATIENCE).await;
    log.raids[n] = raid;
}

/// Replaces a raid's attendance, asking again (it is a replacement, the
/// same twice is once) until answered; a raid whose attendance stays
/// unknown is no longer certain.
async fn set_attendance(guild: &Guild, raid: &mut RaidRecord, attendance: Vec<(String, i64)>, log: &mut OfficerLog) {
    let attendees: Vec<Value> = attendance
        .iter()
        .map(|(id, minutes)| json!({"member_id": id, "minutes": minutes, "on_time": true, "standby": false}))
        .collect();
    let body = json!({ "attendees": attendees });
    for _ in 0..3 {
        let outcome =
            guild.officer.call("PUT", &format!("{}/attendance", raid.path), Some(&body), None, PATIENCE).await;
        log.tally.count("raid_attendance", &outcome);
        match outcome {
            Outcome::Ok(..) => {
                raid.attendance = attendance;
                return;
            }
            Outcome::Refused(..) => return,
            Outcome::Unknown => {}
        }
    }
    raid.certain = false;
}

/// Awards a raid under `key`: whether it was answered.
async fn award_raid(guild: &Guild, raid: &RaidRecord, log: &mut OfficerLog, key: &str, limit: Duration) -> bool {
    let outcome = guild.officer.call("POST", &format!("{}/award", raid.path), None, Some(key), limit).await;
    log.tally.count("raid_award", &outcome);
    matches!(outcome, Outcome::Ok(..))
}

/// Sends an answered request of the officer's again under its key: the same
/// body must get the very same answer, a changed one `idempotency_key_reused`.
async fn replay(guild: &Guild, rng: &mut Rng, log: &mut OfficerLog, findings: &Findings) {
    let answered: Vec<&LedgerOp> = log.ops.iter().filter(|op| matches!(op.outcome, Outcome::Ok(..))).collect();
    let Some(op) = rng.pick(&answered).map(|op| (*op).clone()) else { return };
    let changed = rng.chance(0.4) && op.body.get("amount").is_some();
    let mut body = op.body.clone();
    if changed {
        // Another amount than the first body's, whatever that was.
        body["amount"] = json!(if op.body["amount"] == "0.07" { "0.08" } else { "0.07" });
    }
    let outcome = guild.officer.call("POST", &op.path, Some(&body), Some(&op.key), PATIENCE).await;
    log.tally.count(if changed { "replay_changed" } else { "replay" }, &outcome);
    match (&outcome, changed) {
        (Outcome::Unknown, _) => {}
        (Outcome::Refused(422, _), true) if outcome.code() == Some("idempotency_key_reused") => {}
        (_, true) => findings.add(format!("{} {}: a changed body under a used key got {outcome:?}", op.kind, op.key)),
        (_, false) if outcome != op.outcome => findings
            .add(format!("{} {}: a replay got {outcome:?}, the first answer was {:?}", op.kind, op.key, op.outcome)),
        _ => {}
    }
}

/// Asks once more, after the round, about every request whose outcome the
/// client never learnt, under the same key and body, as a client would, and
/// awards each raid a last time; each guild's officer at once. A request
/// the recovered service still leaves without an answer is a finding: the
/// service did not come back.
pub async fn settle_unknowns(guilds: &[Arc<Guild>], logs: &mut [(usize, OfficerLog)], findings: &Findings) -> Tally {
    let settled = logs.iter_mut().map(|(g, log)| settle_officer(&guilds[*g], log, findings));
    let mut tally = Tally::default();
    for settled in futures_util::future::join_all(settled).await {
        tally.add(&settled);
    }
    tally
}

async fn settle_officer(guild: &Guild, log: &mut OfficerLog, findings: &Findings) -> Tally {
    const LIMIT: Duration = Duration::from_secs(15);
    let mut tally = Tally::default();
    for op in log.ops.iter_mut().filter(|op| op.outcome == Outcome::Unknown) {
        op.outcome = guild.officer.call("POST", &op.path, Some(&op.body), Some(&op.key), LIMIT).await;
        tally.count(&format!("{}_asked_again", op.kind), &op.outcome);
        if op.outcome == Outcome::Unknown {
            findings.add(format!("{} {}: still no answer after the faults ended", op.kind, op.key));
        }
    }
    // A last award of each raid after its last change: then it has paid what its attendance is worth.
    let mut last = OfficerLog::default();
    for (n, raid) in log.raids.iter_mut().enumerate().filter(|(_, raid)| raid.certain) {
        let key = format!("final-{}-{n}", raid.id);
        raid.certain = award_raid(guild, raid, &mut last, &key, LIMIT).await;
    }
    tally.add(&last.tally);
    tally
}

/// What a lot runner did.
#[derive(Default)]
pub struct RunnerLog {
    pub tally: Tally,
    /// Every lot it opened.
    pub lots: Vec<String>,
}

/// Keeps three lots of the guild open (the first one hot), opening open and
/// sealed lots of 10-40 s, closing or cancelling some early.
pub async fn lot_runner(guild: Arc<Guild>, mut rng: Rng, deadline: Instant) -> RunnerLog {
    let mut log = RunnerLog::default();
    while Instant::now() < deadline {
        // Lots that ended by themselves (or whose close the runner never heard of) leave the room.
        for lot in guild.lots() {
            let outcome =
                guild.officer.call("GET", &guild.path(&format!("lots/{}", lot.id)), None, None, PATIENCE).await;
            if let Outcome::Ok(_, reply) = outcome
                && reply["lot"]["status"] != "open"
            {
                guild.lots.lock().expect("lots").retain(|l| l.id != lot.id);
            }
        }
        let live = guild.lots();
        if live.len() < 3 {
            let mode = match rng.below(10) {
                0 | 1 => "sealed_first",
                2 => "sealed_second",
                _ => "open",
            };
            let body = json!({"pool_id": guild.main_pool, "item": {"name": "Chaos item"}, "mode": mode,
                "min_bid": "1", "increment": "1", "duration_s": 10 + rng.below(30), "anti_snipe_s": 3, "extend_s": 5});
            let outcome = guild.officer.call("POST", &guild.path("lots"), Some(&body), None, PATIENCE).await;
            log.tally.count("open_lot", &outcome);
            if let Some(id) = outcome.body().and_then(|b| b["lot"]["id"].as_str()) {
                log.lots.push(id.to_owned());
                let lot = LiveLot { id: id.to_owned(), sealed: mode != "open", next: AtomicI64::new(100) };
                guild.lots.lock().expect("lots").push(Arc::new(lot));
            }
        } else if rng.chance(0.25) {
            let lot = rng.pick(&live).expect("three lots").clone();
            let (kind, path, body) = if rng.chance(0.6) {
                ("close", format!("lots/{}/close", lot.id), None)
            } else {
                ("cancel", format!("lots/{}/cancel", lot.id), Some(json!({"reason": "chaos"})))
            };
            let outcome = guild.officer.call("POST", &guild.path(&path), body.as_ref(), None, patience(&mut rng)).await;
            log.tally.count(kind, &outcome);
            if !matches!(outcome, Outcome::Unknown) {
                guild.lots.lock().expect("lots").retain(|l| l.id != lot.id);
            }
        }
        tokio::time::sleep(Duration::from_millis(500 + rng.below(1500))).await;
    }
    log
}

/// What a bidding seat did.
#[derive(Default)]
pub struct SeatLog {
    pub tally: Tally,
    pub bids: Vec<AckedBid>,
}

/// One place a raider bids from until `deadline`: mostly the lowest amount
/// that can win on an open lot, sometimes about all the raider is thought
/// to have left (`all_in` of its bids on open lots; learnt from the answers to both seats: accepted, it was
/// there; refused for want of points, it was not), so that the raider's two
/// seats often ask for the same points on two lots at once; on a sealed
/// lot, some amount of their funds. Half the bids go to the guild's first
/// lot, the hot one.
pub async fn seat(
    guild: Arc<Guild>,
    raider: usize,
    all_in: f64,
    mut rng: Rng,
    deadline: Instant,
    findings: Findings,
) -> SeatLog {
    let mut log = SeatLog::default();
    let caller = guild.raiders[raider].1.clone();
    let left = &guild.left[raider];
    let mut n = 0;
    while Instant::now() < deadline {
        let live = guild.lots();
        let lot = match live.first() {
            Some(hot) if rng.chance(0.5) => hot.clone(),
            _ => match rng.pick(&live) {
                Some(lot) => lot.clone(),
                None => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let next = lot.next.load(Ordering::Relaxed);
        let hundredths = if lot.sealed {
            100 + rng.below(FUNDS as u64 / 2) as i64
        } else if rng.chance(all_in) {
            let thought = left.load(Ordering::Relaxed);
            next.max(thought + rng.below(thought as u64 / 10 + 1) as i64)
        } else {
            next
        };
        n += 1;
        let key = format!("b{}-{raider}-{}-{n}", guild.slug, rng.next_u64());
        let path = guild.path(&format!("lots/{}/bids", lot.id));
        let body = json!({"amount": amount(hundredths)});
        let outcome = caller.call("POST", &path, Some(&body), Some(&key), patience(&mut rng)).await;
        log.tally.count("bid", &outcome);
        let known = match &outcome {
            Outcome::Ok(_, reply) => {
                let bid = &reply["bid"];
                left.fetch_max(hundredths, Ordering::Relaxed);
                log.bids.push(AckedBid {
                    id: bid["id"].as_str().unwrap_or_default().to_owned(),
                    lot: lot.id.clone(),
                    seq: bid["seq"].as_i64().unwrap_or(-1),
                    amount: bid["amount"].as_str().unwrap_or_default().to_owned(),
                });
                if rng.chance(0.05) {
                    let again = caller.call("POST", &path, Some(&body), Some(&key), PATIENCE).await;
                    log.tally.count("bid_replay", &again);
                    if again != Outcome::Unknown && again != outcome {
                        findings.add(format!("bid {key}: a replay got {again:?}, the first answer was {outcome:?}"));
                    }
                }
                above_high(&reply["lot"])
            }
            Outcome::Refused(_, reply) => match outcome.code() {
                Some("insufficient_points") => {
                    left.store(hundredths * 9 / 10, Ordering::Relaxed);
                    None
                }
                Some("lot_closed") => {
                    guild.lots.lock().expect("lots").retain(|l| l.id != lot.id);
                    None
                }
                _ => minimum(reply),
            },
            Outcome::Unknown => None,
        };
        if let Some(known) = known {
            lot.next.fetch_max(known, Ordering::Relaxed);
        }
    }
    log
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket client of a guild: its `guild:` and `me` channels and, when
/// `lots` is set, the channel of every lot of the guild. It drops its
/// connection every few seconds (or loses it to a fault) and subscribes
/// again with `since`. Watching lots, it is a member who never bids: no
/// sealed amount may reach it, by event or by reading the lot, before the
/// lot has closed.
pub struct Subscriber {
    pub guild: Arc<Guild>,
    pub caller: Caller,
    pub lots: bool,
    pub door: std::net::SocketAddr,
    /// The user it is, once known: its `me` is the log's `user:<id>`.
    pub user: Option<String>,
    pub tracks: HashMap<String, Track>,
    pub tally: Tally,
}

impl Subscriber {
    pub async fn run(mut self, mut rng: Rng, deadline: Instant, findings: Findings) -> Subscriber {
        while Instant::now() < deadline {
            let stay = Instant::now() + Duration::from_millis(2000 + rng.below(6000));
            let outcome = self.session(stay.min(deadline), false, &findings).await;
            self.tally.count("subscription", &outcome);
            if outcome == Outcome::Unknown {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        self
    }

    /// Connects once more after the round and takes in what it missed,
    /// until nothing new has come for a second and a half.
    pub async fn catch_up(&mut self, findings: &Findings) {
        let outcome = self.session(Instant::now() + Duration::from_secs(30), true, findings).await;
        self.tally.count("catch_up", &outcome);
    }

    /// One connection until `until`, or (`catching_up`) until nothing new
    /// has come for a second and a half. `Ok` when it lasted, `Unknown` when cut.
    async fn session(&mut self, until: Instant, catching_up: bool, findings: &Findings) -> Outcome {
        let Ok(mut ws) = self.connect().await else { return Outcome::Unknown };
        let mut subscribed = HashSet::new();
        let mut quiet = Instant::now();
        let mut polled = Instant::now();
        loop {
            if let Err(()) = self.subscribe_new(&mut ws, &mut subscribed).await {
                return Outcome::Unknown;
            }
            if self.lots && polled.elapsed() > Duration::from_secs(1) {
                polled = Instant::now();
                self.read_sealed_lots(findings).await;
            }
            let now = Instant::now();
            if now >= until || catching_up && quiet.elapsed() > Duration::from_millis(1500) {
                let _ = ws.close(None).await;
                return Outcome::Ok(200, Value::Null);
            }
            let wait = (until - now).min(Duration::from_millis(250));
            match tokio::time::timeout(wait, ws.next()).await {
                Err(_) => {}
                Ok(Some(Ok(Message::Text(text)))) => {
                    quiet = Instant::now();
                    if let Ok(message) = serde_json::from_str::<Value>(&text) {
                        self.take(&message, findings);
                    }
                }
                Ok(Some(Ok(_))) => {}
                Ok(Some(Err(_)) | None) => return Outcome::Unknown,
            }
        }
    }

    async fn connect(&self) -> anyhow::Result<Socket> {
        let url = format!("ws://{}/api/v1/ws?token={}", self.door, self.caller.token);
        let (ws, _) = tokio::time::timeout(PATIENCE, tokio_tungstenite::connect_async(url)).await??;
        Ok(ws)
    }

    /// Subscribes to every channel it follows that this connection has not,
    /// each from the last offset it has.
    async fn subscribe_new(&mut self, ws: &mut Socket, subscribed: &mut HashSet<String>) -> Result<(), ()> {
        if self.user.is_none()
            && let Outcome::Ok(_, me) = self.caller.call("GET", "/api/v1/me", None, None, PATIENCE).await
        {
            self.user = me["user"]["id"].as_str().map(str::to_owned);
        }
        let mut wanted = vec![(format!("guild:{}", self.guild.slug), false)];
        if self.user.is_some() {
            wanted.push(("me".to_owned(), false));
        }
        if self.lots {
            wanted.extend(self.guild.lots().iter().map(|lot| (format!("lot:{}", lot.id), lot.sealed)));
        }
        for (channel, sealed) in wanted {
            let logged_as = match (&*channel, &self.user) {
                ("me", Some(user)) => format!("user:{user}"),
                _ => channel.clone(),
            };
            let track = self.tracks.entry(channel.clone()).or_insert_with(|| Track {
                channel: channel.clone(),
                logged_as,
                sealed,
                ..Track::default()
            });
            if subscribed.contains(&channel) {
                continue;
            }
            let subscribe = json!({"type": "subscribe", "channel": channel, "since": track.last()});
            ws.send(Message::text(subscribe.to_string())).await.map_err(|_| ())?;
            subscribed.insert(channel);
        }
        Ok(())
    }

    /// One message from the server: an event must come after the last one
    /// of its channel, and on a sealed lot must not show an amount before
    /// the lot ends.
    fn take(&mut self, message: &Value, findings: &Findings) {
        let Some(channel) = message["channel"].as_str() else { return };
        let Some(track) = self.tracks.get_mut(channel) else { return };
        match message["type"].as_str() {
            Some("reset") => {
                track.resets += 1;
                track.seen.clear();
            }
            Some("event") => {
                let offset = message["offset"].as_i64().unwrap_or(-1);
                if offset <= track.last() {
                    findings.add(format!("{channel}: offset {offset} came after {}", track.last()));
                    return;
                }
                track.seen.push(offset);
                let event = message["event"].as_str().unwrap_or_default();
                if matches!(event, "lot_closed" | "lot_cancelled") {
                    track.ended = true;
                }
                if track.sealed && !track.ended && event == "bid_placed" && message["data"].get("amount").is_some() {
                    findings.add(format!("{channel}: a sealed bid's amount reached a member who did not bid"));
                }
            }
            _ => {}
        }
    }

    /// Reads the guild's sealed lots as the watcher: an open one shows no high bid and no leader.
    async fn read_sealed_lots(&self, findings: &Findings) {
        for lot in self.guild.lots().iter().filter(|lot| lot.sealed) {
            let path = self.guild.path(&format!("lots/{}", lot.id));
            if let Outcome::Ok(_, reply) = self.caller.call("GET", &path, None, None, PATIENCE).await {
                let lot = &reply["lot"];
                if lot["status"] == "open" && (!lot["high_bid"].is_null() || !lot["leader_member_id"].is_null()) {
                    findings.add(format!("lot {}: an open sealed lot showed its high bid to a member", lot["id"]));
                }
            }
        }
    }
}

/// The two subscribers of a guild: its watcher, following the lots too, and its first raider.
pub fn subscribers(guild: &Arc<Guild>, door: std::net::SocketAddr) -> [Subscriber; 2] {
    let make = |caller: Caller, lots: bool| Subscriber {
        guild: guild.clone(),
        caller,
        lots,
        door,
        user: None,
        tracks: HashMap::new(),
        tally: Tally::default(),
    };
    [make(guild.watcher.clone(), true), make(guild.raiders[0].1.clone(), false)]
}
