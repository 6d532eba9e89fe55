//! Seed phase 3: the auction service apart. One `dkp serve --role api` and
//! two `--role auction` processes on one PostgreSQL schema and one Redis,
//! behind nginx running deploy/nginx/dkp-roles.conf. Each role answers only
//! its own routes; bids flow through nginx to one auction instance, which is
//! killed mid-lot: the bids go on through the other, a WebSocket client of
//! the api instance sees every event of the lot once, and the lot and the
//! ledger agree with what the bidders were told.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use dkp_bench::balancer::Nginx;
use dkp_bench::harness::{Database, Http, Launch, Server};
use tokio::sync::{mpsc, watch};

use crate::balancer::{Bidding, Scratch, accepted_by, assert_lot_agrees, follow, lot_with_bidders, wait_for_bids};
use crate::services::RedisServer;
use crate::support::{Guild, Kind, TestApp, spawn_app, temp_dir};

const BIDDERS: usize = 4;
const ACCEPTED_PER_PHASE: i64 = 20;

/// One `--role api` and two `--role auction` processes of this test's database.
pub async fn split(app: &TestApp, redis: &RedisServer) -> (Server, [Server; 2], Scratch) {
    let dir = temp_dir();
    let launch = |name: &str, role: &'static str| Launch {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_dkp")),
        log_file: Some(dir.join(format!("{name}.log"))),
        database: Database { database_url: Some(app.url.clone()), data_dir: dir.join(name) },
        redis_url: Some(redis.url()),
        behind_balancer: true,
        role: Some(role),
    };
    let api = Server::launch(&launch("api", "api")).await.expect("the api instance starts");
    let first = Server::launch(&launch("auction-1", "auction")).await.expect("an auction instance starts");
    let second = Server::launch(&launch("auction-2", "auction")).await.expect("an auction instance starts");
    (api, [first, second], Scratch(dir))
}

/// Each role answers its own routes and 404 for the other's.
async fn roles_keep_to_their_routes(api: &Server, auction: &Server, guild: &Guild, lot: &str) {
    let (api, auction) = (Http::new(api.address, 1), Http::new(auction.address, 1));
    let token = Some(guild.owner.token.as_str());
    let lot_path = format!("/api/v1/guilds/{}/lots/{lot}", guild.slug);
    let standings = format!("/api/v1/guilds/{}/pools/{}/standings", guild.slug, guild.pool);
    let status = |reply: anyhow::Result<(u16, serde_json::Value)>| reply.map(|(status, _)| status).unwrap_or(0);
    assert_eq!(status(auction.send("GET", &lot_path, token, None).await), 200);
    assert_eq!(status(auction.send("GET", &standings, token, None).await), 404, "an auction instance has no ledger");
    assert_eq!(status(api.send("GET", &standings, token, None).await), 200);
    assert_eq!(status(api.send("GET", &lot_path, token, None).await), 404, "an api instance has no lots");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auction_instance_killed_mid_lot_loses_no_bid_behind_nginx() {
    // Arrange: the guild (in-process), the three processes, nginx.
    let app = spawn_app(Kind::Postgres).await;
    let redis = RedisServer::start().await;
    let (guild, bidders, lot_id) = lot_with_bidders(&app, BIDDERS).await;
    let (api, [first, second], _logs) = split(&app, &redis).await;
    roles_keep_to_their_routes(&api, &first, &guild, &lot_id).await;
    let nginx =
        Nginx::start_roles([api.address, api.address], [first.address, second.address], 1).await.expect("nginx starts");

    // A client of the api instance follows the lot through nginx.
    let (landed_tx, mut landed) = mpsc::channel(1);
    let (until_tx, until) = watch::channel(None);
    let follower =
        tokio::spawn(follow(nginx.address, guild.owner.token.clone(), format!("lot:{lot_id}"), landed_tx, until));
    let upstream = landed.recv().await.expect("the client connects");
    assert_eq!(upstream, api.address.to_string(), "the feed is the api role's");

    // Act: bids through nginx; the auction instance taking them is killed mid-lot.
    let http = Http::new(nginx.address, BIDDERS * 2);
    let path = format!("/api/v1/guilds/{}/lots/{lot_id}/bids", guild.slug);
    let bidding = Bidding::start(&http, &path, &bidders);
    wait_for_bids(&app, &guild, &lot_id, ACCEPTED_PER_PHASE).await;
    let (mut bidding_on, other) = if accepted_by(&first).await > 0.0 { (first, second) } else { (second, first) };
    assert_eq!(accepted_by(&other).await, 0.0, "one lot's bids go to one auction instance");
    bidding_on.kill();
    bidding.killed.store(true, Ordering::Release);
    wait_for_bids(&app, &guild, &lot_id, ACCEPTED_PER_PHASE).await;
    let bids = bidding.finish().await;
    let shown = app.get(&format!("/api/v1/guilds/{}/lots/{lot_id}", guild.slug)).token(&guild.owner.token).send().await;
    let last = shown.json["lot"]["seq"].as_i64().expect("seq");
    until_tx.send(Some(last)).expect("the follower listens");
    let seen = follower.await.expect("the follower");

    // Assert: bids went on through the other auction instance, each accepted once.
    assert!(bids.accepted_after_kill > 0 && accepted_by(&other).await > 0.0, "no bid after the kill");
    assert_eq!(seen.offsets, (1..=last).collect::<Vec<_>>(), "the feed missed or repeated events");
    assert_eq!(seen.bids, bids.accepted.len());
    assert_lot_agrees(&app, &guild, &shown.json, &bids).await;
    drop(nginx);
}
