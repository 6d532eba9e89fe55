//! Two `dkp serve` processes on one PostgreSQL schema and one Redis, behind
//! nginx running deploy/nginx/dkp.conf. The instance that takes the lot's
//! bids is killed (SIGKILL) while bids flow and WebSocket clients listen
//! through nginx: bids go on through the other, the cut clients reconnect through nginx with `since`,
//! and every client ends with every event of the lot exactly once, in order.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use dkp_bench::balancer::Nginx;
use dkp_bench::harness::{Database, Http, Launch, Server};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use crate::services::RedisServer;
use crate::support::{Guild, Kind, TestApp, User, spawn_app, temp_dir};

/// Subscribers through nginx; least_conn spreads them over both instances.
const SUBSCRIBERS: usize = 8;
const BIDDERS: usize = 4;
/// Bids accepted before the kill, and again after it.
const ACCEPTED_PER_PHASE: i64 = 25;

/// A folder removed when dropped.
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Two `dkp serve` processes of this test's database behind a balancer, and
/// the folder of their logs.
pub async fn instances(app: &TestApp, redis: &RedisServer) -> ([Server; 2], Scratch) {
    let dir = temp_dir();
    let launch = |name: &str| Launch {
        exe: PathBuf::from(env!("CARGO_BIN_EXE_dkp")),
        log_file: Some(dir.join(format!("{name}.log"))),
        database: Database { database_url: Some(app.url.clone()), data_dir: dir.join(name) },
        redis_url: Some(redis.url()),
        behind_balancer: true,
        role: None,
    };
    let a = Server::launch(&launch("a")).await.expect("instance a starts");
    let b = Server::launch(&launch("b")).await.expect("instance b starts");
    ([a, b], Scratch(dir))
}

/// What one WebSocket client saw: the offsets of the lot's events in the
/// order they came, and the instance behind each of its connections.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub offsets: Vec<i64>,
    pub bids: usize,
    pub upstreams: Vec<String>,
    pub resets: usize,
}

/// Follows `channel` through the balancer until it has seen offset
/// `until`; reconnects with `since` = the last offset seen whenever its
/// connection is cut. Reports the instance of its first connection on `landed`.
pub(crate) async fn follow(
    door: SocketAddr,
    token: String,
    channel: String,
    landed: mpsc::Sender<String>,
    mut until: watch::Receiver<Option<i64>>,
) -> Seen {
    let mut seen = Seen::default();
    let deadline = Instant::now() + Duration::from_secs(90);
    let done = |seen: &Seen, until: &watch::Receiver<Option<i64>>| {
        until.borrow().is_some_and(|last| seen.offsets.last().is_some_and(|seen| *seen >= last))
    };
    while !done(&seen, &until) {
        assert!(Instant::now() < deadline, "a client never caught up: {seen:?}");
        let url = format!("ws://{door}/api/v1/ws?token={token}");
        let Ok((mut socket, response)) = tokio_tungstenite::connect_async(url).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        // nginx lists every instance it tried ("a, b" when a refused the
        // connection); the last one answered.
        let upstream = response.headers().get("x-dkp-upstream").and_then(|v| v.to_str().ok()).unwrap_or("");
        let upstream = upstream.rsplit(", ").next().unwrap_or("");
        seen.upstreams.push(upstream.to_owned());
        if seen.upstreams.len() == 1 {
            let _ = landed.send(upstream.to_owned()).await;
        }
        let since = seen.offsets.last().copied().unwrap_or(0);
        let subscribe = json!({"type": "subscribe", "channel": channel, "since": since});
        if socket.send(Message::text(subscribe.to_string())).await.is_err() {
            continue;
        }
        while !done(&seen, &until) {
            let message = tokio::select! {
                message = socket.next() => message,
                _ = until.changed() => continue,
                () = tokio::time::sleep_until(deadline) => None,
            };
            let Some(Ok(message)) = message else { break };
            let Message::Text(text) = message else { continue };
            let Ok(message) = serde_json::from_str::<Value>(text.as_str()) else { continue };
            match message["type"].as_str() {
                Some("event") => {
                    seen.offsets.push(message["offset"].as_i64().unwrap_or(-1));
                    seen.bids += usize::from(message["event"] == "bid_placed");
                }
                Some("reset") => seen.resets += 1,
                _ => {}
            }
        }
    }
    seen
}

/// What became of the bids: the amount of every accepted one by its
/// Idempotency-Key, and how many requests had to be repeated.
#[derive(Debug, Default)]
pub(crate) struct Bids {
    pub accepted: BTreeMap<String, i64>,
    pub accepted_after_kill: usize,
    pub refused: usize,
    pub repeated: usize,
}

/// Bids from one member until `stop`; a request that fails (the instance
/// died under it, nginx answered 502) is repeated with the same
/// Idempotency-Key until it has an answer.
pub(crate) async fn bid_loop(
    http: Http,
    path: String,
    token: String,
    next: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
    killed: Arc<AtomicBool>,
) -> Bids {
    let mut bids = Bids::default();
    while !stop.load(Ordering::Acquire) {
        let amount = next.fetch_add(1, Ordering::AcqRel);
        let key = uuid::Uuid::now_v7().to_string();
        let after_kill = killed.load(Ordering::Acquire);
        let body = json!({"amount": amount});
        let mut attempts = 0;
        let status = loop {
            attempts += 1;
            assert!(attempts <= 100, "a bid never got an answer");
            match http.send_with("POST", &path, Some(&token), Some(&body), &[("idempotency-key", &key)]).await {
                Ok((status @ (201 | 409 | 422), reply)) => {
                    assert_ne!(reply["error"]["code"], "idempotency_key_reused");
                    break status;
                }
                _ => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        bids.repeated += attempts - 1;
        if status == 201 {
            bids.accepted.insert(key, amount);
            bids.accepted_after_kill += usize::from(after_kill);
        } else {
            bids.refused += 1;
        }
    }
    bids
}

/// The bids an instance has accepted, from its own metrics.
pub(crate) async fn accepted_by(server: &Server) -> f64 {
    let metrics = Http::new(server.address, 1).text("/metrics").await.expect("the instance's metrics");
    dkp_bench::counter_total(&metrics, "dkp_bids_accepted_total")
}

/// Waits until the bidders have had `count` more bids accepted, judged by the lot's `bid_count`.
pub(crate) async fn wait_for_bids(app: &TestApp, guild: &Guild, lot: &str, count: i64) {
    let started = Instant::now();
    let path = format!("/api/v1/guilds/{}/lots/{lot}", guild.slug);
    let bid_count = || async {
        app.get(&path).token(&guild.owner.token).send().await.json["lot"]["bid_count"].as_i64().unwrap_or(0)
    };
    let target = bid_count().await + count;
    while bid_count().await < target {
        assert!(started.elapsed() < Duration::from_secs(30), "bids stopped flowing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A guild "phoenix" with `count` members of a million points each and an
/// open lot (minimum 1, increment 1): the guild, the bidders, the lot's id.
pub(crate) async fn lot_with_bidders(app: &TestApp, count: usize) -> (Guild, Vec<(User, String)>, String) {
    let guild = app.guild("phoenix").await;
    let mut bidders = Vec::new();
    for n in 0..count {
        bidders.push(app.funded_member(&guild, &format!("bidder{n}"), 1_000_000).await);
    }
    let lot = app.open_lot(&guild, json!({"min_bid": 1, "increment": 1})).await;
    (guild, bidders, lot["id"].as_str().expect("lot id").to_owned())
}

/// Bidders bidding on one lot through a balancer until `finish`: one loop
/// each, amounts rising from 1.
pub(crate) struct Bidding {
    loops: Vec<tokio::task::JoinHandle<Bids>>,
    stop: Arc<AtomicBool>,
    /// Set when an instance is killed, so each bid says whether it came after.
    pub killed: Arc<AtomicBool>,
}

impl Bidding {
    pub fn start(http: &Http, path: &str, bidders: &[(User, String)]) -> Bidding {
        let (next, stop, killed) =
            (Arc::new(AtomicI64::new(1)), Arc::<AtomicBool>::default(), Arc::<AtomicBool>::default());
        let loops = bidders
            .iter()
            .map(|(user, _)| {
                let (next, stop, killed) = (next.clone(), stop.clone(), killed.clone());
                tokio::spawn(bid_loop(http.clone(), path.to_owned(), user.token.clone(), next, stop, killed))
            })
            .collect();
        Bidding { loops, stop, killed }
    }

    /// Stops the bidders; what became of all their bids.
    pub async fn finish(self) -> Bids {
        self.stop.store(true, Ordering::Release);
        let mut bids = Bids::default();
        for done in self.loops {
            let done = done.await.expect("a bidder");
            bids.accepted.extend(done.accepted);
            bids.accepted_after_kill += done.accepted_after_kill;
            bids.refused += done.refused;
            bids.repeated += done.repeated;
        }
        bids
    }
}

/// The lot (`{"lot": …}`) and the wallets agree with what the bidders were
/// told: every accepted bid counted once, the highest one leads and is the
/// only one held, and the ledger is consistent.
pub(crate) async fn assert_lot_agrees(app: &TestApp, guild: &Guild, lot: &Value, bids: &Bids) {
    let high = bids.accepted.values().max().copied().expect("accepted bids");
    assert_eq!(lot["lot"]["bid_count"].as_u64(), Some(bids.accepted.len() as u64), "accepted once per key");
    assert_eq!(lot["lot"]["high_bid"].as_str(), Some(format!("{high}.00").as_str()));
    let leader = lot["lot"]["leader_member_id"].as_str().expect("a leader").to_owned();
    let held: BTreeSet<(String, String)> = app
        .wallets(guild)
        .await
        .into_iter()
        .filter(|(_, (_, held))| held != "0.00")
        .map(|(m, (_, h))| (m, h))
        .collect();
    assert_eq!(held, BTreeSet::from([(leader, format!("{high}.00"))]), "only the leader's bid is held");
    app.assert_ledger_consistent().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_of_a_killed_instance_reconnect_through_nginx_and_miss_no_event() {
    // Arrange: the schema and the guild (in-process), two instances, nginx.
    let app = spawn_app(Kind::Postgres).await;
    let redis = RedisServer::start().await;
    let (guild, bidders, lot_id) = lot_with_bidders(&app, BIDDERS).await;
    let ([a, b], _logs) = instances(&app, &redis).await;
    let nginx = Nginx::start([a.address, b.address], 1).await.expect("nginx starts");

    let (landed_tx, mut landed) = mpsc::channel(SUBSCRIBERS);
    let (until_tx, until) = watch::channel(None);
    let mut followers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let channel = format!("lot:{lot_id}");
        let token = guild.owner.token.clone();
        followers.push(tokio::spawn(follow(nginx.address, token, channel, landed_tx.clone(), until.clone())));
        // One connect at a time, so least_conn sees the ones before.
        let first = tokio::time::timeout(Duration::from_secs(10), landed.recv()).await.expect("a client connects");
        assert!(first.is_some_and(|u| !u.is_empty()), "nginx names the instance behind each connection");
    }

    let http = Http::new(nginx.address, BIDDERS * 2);
    let path = format!("/api/v1/guilds/{}/lots/{lot_id}/bids", guild.slug);
    let bidding = Bidding::start(&http, &path, &bidders);

    // Act: kill the instance that takes the lot's bids while they are in
    // flight (nginx sends all of one lot's bids to one instance), then keep bidding.
    wait_for_bids(&app, &guild, &lot_id, ACCEPTED_PER_PHASE).await;
    let (mut bidding_on, other) = if accepted_by(&a).await > 0.0 { (a, b) } else { (b, a) };
    assert_eq!(accepted_by(&other).await, 0.0, "the bids of one lot all went to one instance");
    bidding_on.kill();
    bidding.killed.store(true, Ordering::Release);
    wait_for_bids(&app, &guild, &lot_id, ACCEPTED_PER_PHASE).await;
    let bids = bidding.finish().await;
    let reply =
        http.send("GET", &format!("/api/v1/guilds/{}/lots/{lot_id}", guild.slug), Some(&guild.owner.token), None).await;
    let (status, lot) = reply.expect("the lot through nginx");
    assert_eq!(status, 200);
    let last = lot["lot"]["seq"].as_i64().expect("seq");
    until_tx.send(Some(last)).expect("followers listen");
    let mut seen = Vec::new();
    for follower in followers {
        seen.push(follower.await.expect("a follower"));
    }

    // Assert: every client has every event once, in order, whichever instance it was on.
    let (dead, alive) = (bidding_on.address.to_string(), other.address.to_string());
    let on_dead = seen.iter().filter(|s| s.upstreams[0] == dead).count();
    assert!(
        on_dead > 0 && on_dead < SUBSCRIBERS,
        "clients on both instances: {on_dead} of {SUBSCRIBERS} on the killed one"
    );
    let every: Vec<i64> = (1..=last).collect();
    for client in &seen {
        assert_eq!(client.offsets, every, "a client missed or repeated events (on {:?})", client.upstreams);
        assert_eq!(client.resets, 0);
        if client.upstreams[0] == dead {
            assert!(
                client.upstreams.len() >= 2,
                "a client of the killed instance was never cut: {:?}",
                client.upstreams
            );
            assert!(client.upstreams[1..].iter().all(|u| *u == alive), "it reconnected to {:?}", client.upstreams);
        } else {
            assert_eq!(client.upstreams, [alive.as_str()], "a client of the surviving instance was cut");
        }
    }

    // Bids went on through the surviving instance, and the lot and the
    // ledger agree with what the bidders were told.
    assert!(bids.accepted_after_kill > 0, "no bid was accepted after the kill");
    assert_eq!(seen[0].bids, bids.accepted.len(), "one bid_placed event per accepted bid");
    assert_lot_agrees(&app, &guild, &lot, &bids).await;
    eprintln!(
        "failover: {} accepted ({} after the kill), {} refused, {} requests repeated; {on_dead} of {SUBSCRIBERS} clients moved",
        bids.accepted.len(),
        bids.accepted_after_kill,
        bids.refused,
        bids.repeated
    );
    drop(nginx);
}
