//! HAProxy running deploy/haproxy/dkp.cfg in front of two `dkp serve`
//! processes: the file passes `haproxy -c`, carries requests and a WebSocket
//! feed, sends the bids of one lot to one instance, keeps serving through the instances that are alive while a Redis
//! outage fails readiness on all of them, and takes a killed instance out by
//! its health check while requests go on through the other.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dkp_bench::balancer::{EXAMPLE_AUCTION_INSTANCES, EXAMPLE_INSTANCES, substitute};
use dkp_bench::harness::{Http, stop};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::balancer::instances;
use crate::services::{RedisServer, free_port, wait_for_port};
use crate::support::{Kind, spawn_app, temp_dir};

const CONFIG: &str = include_str!("../../../../deploy/haproxy/dkp.cfg");
const ROLES_CONFIG: &str = include_str!("../../../../deploy/haproxy/dkp-roles.cfg");

fn binary() -> &'static str {
    if Path::new("/usr/sbin/haproxy").exists() { "/usr/sbin/haproxy" } else { "haproxy" }
}

/// A foreground HAProxy of this test's own, stopped when dropped.
struct Haproxy {
    address: SocketAddr,
    stats: Http,
    child: Child,
    dir: PathBuf,
}

impl Haproxy {
    /// Renders a shipped file with its example instances replaced and checks
    /// it with `haproxy -c`; the stats listener only where the file has one.
    fn render(config: &str, instances: &[(&str, SocketAddr)]) -> (PathBuf, SocketAddr, SocketAddr) {
        let (port, stats) = (free_port(), free_port());
        let mut replacements: Vec<(&str, String)> =
            instances.iter().map(|(from, to)| (*from, to.to_string())).collect();
        replacements.push(("bind :80", format!("bind 127.0.0.1:{port}")));
        if config.contains("bind 127.0.0.1:8404") {
            replacements.push(("bind 127.0.0.1:8404", format!("bind 127.0.0.1:{stats}")));
        }
        let text = substitute(config, &replacements).expect("the file has its example instances and listeners");
        let dir = temp_dir();
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, text).expect("write the config");
        let check = Command::new(binary()).arg("-c").arg("-f").arg(&path).output().expect("haproxy runs");
        let said = String::from_utf8_lossy(&check.stdout).into_owned() + &String::from_utf8_lossy(&check.stderr);
        assert!(check.status.success() && said.contains("Configuration file is valid"), "haproxy -c: {said}");
        (path, ([127, 0, 0, 1], port).into(), ([127, 0, 0, 1], stats).into())
    }

    async fn start(config: &str, instances: &[(&str, SocketAddr)]) -> Haproxy {
        let (path, address, stats) = Haproxy::render(config, instances);
        let dir = path.parent().expect("the config's folder").to_path_buf();
        let log = std::fs::File::create(dir.join("haproxy.log")).expect("log file");
        let child = Command::new(binary())
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("haproxy starts");
        wait_for_port(address.port(), "haproxy").await;
        Haproxy { address, stats: Http::new(stats, 1), child, dir }
    }

    /// HAProxy's own Prometheus figures.
    async fn figures(&self) -> String {
        self.stats.text("/metrics").await.unwrap_or_default()
    }

    /// Waits until HAProxy's figures contain `line`, for at most 20 s.
    async fn wait_for(&self, line: &str) {
        let started = Instant::now();
        while !self.figures().await.lines().any(|l| l == line) {
            assert!(started.elapsed() < Duration::from_secs(20), "HAProxy never reported `{line}`");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        stop(&mut self.child);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_checks_readiness_carries_the_feed_and_routes_around_a_dead_instance() {
    let app = spawn_app(Kind::Postgres).await;
    let mut redis = RedisServer::start().await;
    let guild = app.guild("herons").await;
    let (ana, _) = app.funded_member(&guild, "ana", 1000).await;
    let lot = app.open_lot(&guild, json!({"min_bid": 1, "increment": 1})).await;
    let id = lot["id"].as_str().expect("lot id");
    let ([mut a, b], _logs) = instances(&app, &redis).await;
    let haproxy = Haproxy::start(CONFIG, &[(EXAMPLE_INSTANCES[0], a.address), (EXAMPLE_INSTANCES[1], b.address)]).await;
    let http = Http::new(haproxy.address, 4);
    let bids = format!("/api/v1/guilds/{}/lots/{id}/bids", guild.slug);
    let mut amount = 10;
    let mut bid = async || {
        amount += 1;
        let key = uuid::Uuid::now_v7().to_string();
        let body = json!({"amount": amount});
        let reply = http.send_with("POST", &bids, Some(&ana.token), Some(&body), &[("idempotency-key", &key)]).await;
        reply.expect("HAProxy answers").0
    };

    // The feed upgrades through HAProxy, and a bid through it reaches the subscriber.
    let url = format!("ws://{}/api/v1/ws?token={}", haproxy.address, ana.token);
    let (mut feed, response) = tokio_tungstenite::connect_async(url).await.expect("the upgrade passes HAProxy");
    assert!(response.headers().contains_key("x-dkp-upstream"));
    feed.send(Message::text(json!({"type": "subscribe", "channel": format!("lot:{id}")}).to_string())).await.unwrap();
    assert_eq!(bid().await, 201);
    let event = loop {
        let Some(Ok(Message::Text(text))) = feed.next().await else { panic!("the feed closed") };
        let message: Value = serde_json::from_str(text.as_str()).unwrap();
        if message["type"] == "event" {
            break message;
        }
    };
    assert_eq!(event["event"], "bid_placed");
    // Bids on one lot all go to one instance (`dkp_bids`, hashed by path).
    for _ in 0..3 {
        assert_eq!(bid().await, 201);
    }
    let figures = haproxy.figures().await;
    let mut answered: Vec<u64> = figures
        .lines()
        .filter(|l| l.starts_with("haproxy_server_http_responses_total{proxy=\"dkp_bids\"") && l.contains("2xx"))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    answered.sort_unstable();
    assert_eq!(answered, [0, 4], "2xx answers per server of dkp_bids");

    // Redis away: readiness fails everywhere, HAProxy takes both instances out
    // of `dkp` and serves through `dkp_alive` instead of refusing everyone.
    redis.kill();
    haproxy.wait_for(r#"haproxy_backend_active_servers{proxy="dkp"} 0"#).await;
    let (status, body) = http.send("GET", "/health/ready", None, None).await.unwrap();
    assert_eq!((status, body["failing"].as_str()), (503, Some("redis")), "dkp's own answer, not HAProxy's");
    assert_eq!(bid().await, 201, "bids go on through the database");

    // Redis back, then one instance killed: its health check takes it out,
    // and requests meanwhile go on through the other.
    redis.restart().await;
    haproxy.wait_for(r#"haproxy_backend_active_servers{proxy="dkp"} 2"#).await;
    a.kill();
    for _ in 0..10 {
        assert_eq!(bid().await, 201);
    }
    haproxy.wait_for(r#"haproxy_server_status{proxy="dkp",server="dkp1",state="DOWN"} 1"#).await;
    for _ in 0..5 {
        let reply = http.send("GET", "/health/ready", None, None).await.unwrap();
        assert_eq!(reply.0, 200);
    }
    let lot = app.get(&format!("/api/v1/guilds/{}/lots/{id}", guild.slug)).token(&ana.token).send().await;
    assert_eq!(lot.json["lot"]["bid_count"], 15);
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn haproxy_sends_lots_and_bids_to_the_auction_role_and_the_rest_to_the_api_role() {
    let app = spawn_app(Kind::Postgres).await;
    let redis = RedisServer::start().await;
    let guild = app.guild("herons").await;
    let (ana, _) = app.funded_member(&guild, "ana", 1000).await;
    let lot = app.open_lot(&guild, json!({"min_bid": 1, "increment": 1})).await;
    let id = lot["id"].as_str().expect("lot id");
    let (api, [first, second], _logs) = crate::roles::split(&app, &redis).await;
    let instances = [
        (EXAMPLE_INSTANCES[0], api.address),
        (EXAMPLE_INSTANCES[1], api.address),
        (EXAMPLE_AUCTION_INSTANCES[0], first.address),
        (EXAMPLE_AUCTION_INSTANCES[1], second.address),
    ];
    let haproxy = Haproxy::start(ROLES_CONFIG, &instances).await;
    let http = Http::new(haproxy.address, 2);
    let bids = format!("/api/v1/guilds/{}/lots/{id}/bids", guild.slug);
    let standings = format!("/api/v1/guilds/{}/pools/{}/standings", guild.slug, guild.pool);
    let started = Instant::now();
    // Until the first health checks pass, HAProxy has no server to send to.
    while http.send("GET", &standings, Some(&ana.token), None).await.map(|(s, _)| s).unwrap_or(0) != 200 {
        assert!(started.elapsed() < Duration::from_secs(20), "the api role never answered through HAProxy");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let placed = http.send("POST", &bids, Some(&ana.token), Some(&json!({"amount": 5}))).await;
    assert_eq!(placed.expect("a bid through HAProxy").0, 201, "the bid reached an auction instance");
    let auction_accepted = crate::balancer::accepted_by(&first).await + crate::balancer::accepted_by(&second).await;
    assert_eq!(auction_accepted, 1.0, "the auction role took the bid");
    assert_eq!(crate::balancer::accepted_by(&api).await, 0.0);
}
