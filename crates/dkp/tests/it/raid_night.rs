//! A raid night in miniature: raiders of several guilds bidding on several
//! lots each at once, with officers awarding points in the same pools, on
//! both stores. No answer is a 5xx; every rule holds per lot and per wallet.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde_json::json;

use crate::both_stores;
use crate::support::{Guild, TestApp, User};

both_stores!(many_guilds_bid_on_many_lots_at_once_and_every_rule_holds);

const GUILDS: usize = 4;
const RAIDERS: usize = 6;
const LOTS: usize = 3;
const BIDS_EACH: usize = 24;
const FUNDS: i64 = 100;
const AWARDS: usize = 8;

struct Night {
    guild: Guild,
    raiders: Vec<(User, String)>,
    lots: Vec<String>,
}

async fn night(app: &TestApp, g: usize) -> Night {
    let guild = app.guild(&format!("raid{g}")).await;
    let mut raiders = Vec::new();
    for r in 0..RAIDERS {
        raiders.push(app.member(&guild, &format!("g{g}r{r}"), "member").await);
    }
    let ids: Vec<&String> = raiders.iter().map(|(_, id)| id).collect();
    app.post(&format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool))
        .token(&guild.owner.token)
        .json(json!({"member_ids": ids, "amount": FUNDS, "reason": "raid"}))
        .send()
        .await
        .expect(201);
    let mut lots = Vec::new();
    for _ in 0..LOTS {
        lots.push(app.open_lot(&guild, json!({"increment": 1})).await["id"].as_str().unwrap().to_owned());
    }
    Night { guild, raiders, lots }
}

/// A raider's bids: on their guild's lots in turn, each at the lot's next
/// amount; how many were accepted on each lot.
async fn raider(app: Arc<TestApp>, night: Arc<Night>, token: String, counters: Arc<Vec<AtomicI64>>) -> Vec<i64> {
    let mut accepted = vec![0; LOTS];
    for n in 0..BIDS_EACH {
        let lot = n % LOTS;
        let hundredths = counters[lot].fetch_add(100, Ordering::SeqCst);
        let amount = format!("{}.{:02}", hundredths / 100, hundredths % 100);
        let reply = app.bid(&night.guild, &night.lots[lot], &token, json!(amount)).await;
        match (reply.status.as_u16(), reply.code()) {
            (201, _) => accepted[lot] += 1,
            (422, "bid_too_low" | "insufficient_points") => {}
            (status, _) => panic!("unexpected {status}: {}", reply.text),
        }
    }
    accepted
}

/// An officer's awards of one point to every raider, racing the bids.
async fn awards(app: Arc<TestApp>, night: Arc<Night>) {
    let ids: Vec<&String> = night.raiders.iter().map(|(_, id)| id).collect();
    for _ in 0..AWARDS {
        let path = format!("/api/v1/guilds/{}/pools/{}/awards", night.guild.slug, night.guild.pool);
        let body = json!({"member_ids": ids, "amount": 1, "reason": "on time"});
        let reply = app.post(&path).token(&night.guild.owner.token).json(body).send().await;
        assert_eq!(reply.status.as_u16(), 201, "{}", reply.text);
    }
}

async fn many_guilds_bid_on_many_lots_at_once_and_every_rule_holds(app: TestApp) {
    let app = Arc::new(app);
    let mut nights = Vec::new();
    for g in 0..GUILDS {
        nights.push(Arc::new(night(&app, g).await));
    }
    let mut tasks = Vec::new();
    let mut officers = Vec::new();
    for night in &nights {
        let counters: Arc<Vec<AtomicI64>> = Arc::new((0..LOTS).map(|_| AtomicI64::new(10_00)).collect());
        for (user, _) in &night.raiders {
            tasks.push(tokio::spawn(raider(app.clone(), night.clone(), user.token.clone(), counters.clone())));
        }
        officers.push(tokio::spawn(awards(app.clone(), night.clone())));
    }
    let mut accepted: Vec<Vec<i64>> = Vec::new();
    for task in tasks {
        accepted.push(task.await.expect("a raider"));
    }
    for officer in officers {
        officer.await.expect("an officer");
    }
    for (g, night) in nights.iter().enumerate() {
        let mut leads: BTreeMap<String, i64> = BTreeMap::new();
        for (l, lot_id) in night.lots.iter().enumerate() {
            let taken: i64 = accepted[g * RAIDERS..(g + 1) * RAIDERS].iter().map(|a| a[l]).sum();
            let lot = check_lot(&app, &night.guild, lot_id, taken).await;
            if let (Some(leader), Some(high)) = (lot["leader_member_id"].as_str(), lot["high_bid"].as_str()) {
                *leads.entry(leader.to_owned()).or_default() += dkp_core::Points::parse(high).unwrap().hundredths();
            }
        }
        let wallets = app.wallets(&night.guild).await;
        for (_, member) in &night.raiders {
            let (balance, held) = &wallets[member];
            assert_eq!(balance, &format!("{}.00", FUNDS + AWARDS as i64), "awards all landed, nothing charged");
            let held = dkp_core::Points::parse(held).unwrap().hundredths();
            assert_eq!(held, leads.get(member).copied().unwrap_or(0), "a raider holds exactly the lots they lead");
            assert!(held <= (FUNDS + AWARDS as i64) * 100, "the same points never back two lots");
        }
    }
    app.assert_ledger_consistent().await;
}

/// Checks one lot's log against the bids accepted on it; the lot as shown.
async fn check_lot(app: &TestApp, guild: &Guild, lot_id: &str, accepted: i64) -> serde_json::Value {
    let path = format!("/api/v1/guilds/{}/lots/{lot_id}", guild.slug);
    let lot = app.get(&path).token(&guild.owner.token).send().await.expect(200).json["lot"].clone();
    assert_eq!(lot["bid_count"], accepted, "every accepted bid counted once");
    let (amounts, offsets) = app.lot_log(lot_id).await;
    assert_eq!(amounts.len() as i64, accepted);
    assert!(amounts.windows(2).all(|w| w[0] < w[1]), "accepted amounts rise strictly in sequence order");
    assert_eq!(offsets, (1..=offsets.len() as i64).collect::<Vec<_>>(), "offsets run 1, 2, 3 … with no gap");
    lot
}
