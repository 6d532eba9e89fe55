//! The auction benchmarks (seed risks R2 and R3), each against `dkp serve`
//! child processes over real HTTP and WebSocket connections on loopback: one
//! instance, or two sharing Redis, optionally behind nginx (`Topology`).
//!
//! - `hot-lot`: N bidders race on one open lot, their amounts taken from one
//!   shared, increasing counter so most bids can win. With two instances the
//!   bidders spread over both (through nginx, or half on each), or with
//!   `--pinned` all bid through the first.
//! - `fan-out`: S WebSocket subscribers on one sealed lot while 64 bidders
//!   bid at a set rate (each bid above the bidder's last); delivered
//!   messages/s and the time from a bid's acceptance (its 201 reaching the
//!   bidder) to each delivery. With two instances bids go to one and the
//!   subscribers listen on the other.
//! - `connections`: K idle authenticated WebSocket connections; the server's
//!   resident memory per connection.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::deployment::{Deployment, Topology};
use crate::figures::{Answers, BidWork, Outcome, Row};
use crate::harness::{Database, Http, Server};
use crate::metrics::{Change, counter_total};
use crate::quantile;
use crate::setup::{Stage, amount, stage};

#[derive(Debug, Clone, Args)]
pub struct HotLot {
    #[command(flatten)]
    pub database: Database,
    #[command(flatten)]
    pub topology: Topology,
    /// Bidders racing at once (each with its own connection).
    #[arg(long, default_value_t = 64)]
    pub bidders: usize,
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// With several instances: send every bid to the first (through nginx, a
    /// front door that prefers it), as routing a lot's bids by lot would.
    #[arg(long)]
    pub pinned: bool,
}

#[derive(Debug, Clone, Args)]
pub struct FanOut {
    #[command(flatten)]
    pub database: Database,
    #[command(flatten)]
    pub topology: Topology,
    #[arg(long, default_value_t = 1000)]
    pub subscribers: usize,
    /// Bids per second to place while the subscribers listen.
    #[arg(long, default_value_t = 500)]
    pub rate: u64,
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
}

#[derive(Debug, Clone, Args)]
pub struct Connections {
    #[command(flatten)]
    pub database: Database,
    #[arg(long, default_value_t = 10_000)]
    pub connections: usize,
}

pub async fn hot_lot(bench: HotLot) -> anyhow::Result<()> {
    let mut deployment = Deployment::start(&bench.database, &bench.topology).await?;
    let doors = if bench.pinned { vec![deployment.pinned(0).await?] } else { deployment.spread().await? };
    let doors: Vec<Http> = doors.into_iter().map(|address| Http::new(address, bench.bidders + 8)).collect();
    let http = doors[0].clone();
    let stage = Arc::new(stage(&http, bench.bidders, json!({})).await?);
    let before = deployment.metrics().await?;
    let cpu = deployment.cpu_meter();
    let began = Instant::now();
    let mut answers = race(&doors, &stage, Duration::from_secs(bench.seconds)).await?;
    let elapsed = began.elapsed().as_secs_f64();
    let cpu = cpu.report();
    answers.sort();
    let lot = http
        .send("GET", &format!("/api/v1/guilds/{}/lots/{}", stage.slug, stage.lot_id), Some(&stage.owner), None)
        .await?
        .1;
    let change = Change { before, after: deployment.metrics().await? };
    println!(
        "hot-lot bench: backend={} {}{} bidders={} seconds={}",
        bench.database.store(),
        deployment.describe(),
        if bench.pinned { " pinned" } else { "" },
        bench.bidders,
        bench.seconds
    );
    let latencies = &answers.accepted;
    println!(
        "  accepted={} ({:.0}/s) rejected={} ({:.0}/s) errors={}",
        latencies.len(),
        latencies.len() as f64 / elapsed,
        answers.refused,
        answers.refused as f64 / elapsed,
        answers.server_errors + answers.other,
    );
    println!(
        "  accepted ack latency ms: p50={:.2} p99={:.2} max={:.2}",
        quantile(latencies, 0.5),
        quantile(latencies, 0.99),
        quantile(latencies, 1.0)
    );
    println!(
        "  lot bid_count={} (matches accepted: {})",
        lot["lot"]["bid_count"],
        lot["lot"]["bid_count"] == latencies.len()
    );
    // Where the time went, from the servers' own metrics.
    let mean = |name: &str| {
        let count = change.total(&format!("{name}_count"));
        if count > 0.0 { change.total(&format!("{name}_sum")) / count } else { 0.0 }
    };
    println!(
        "  server: batches={} mean batch={:.1} bids, mean queued+applied={:.2} ms, mean bid request={:.2} ms",
        change.total("dkp_sequencer_batch_size_count"),
        mean("dkp_sequencer_batch_size"),
        mean("dkp_bid_queue_seconds") * 1000.0,
        mean("dkp_bid_latency_seconds") * 1000.0,
    );
    println!("  {cpu}");
    let row = Row {
        bench: "hot-lot",
        store: bench.database.store(),
        deployment: deployment.describe(),
        bidders: bench.bidders,
        lots: 1,
        elapsed,
        answers: &answers,
        work: BidWork::over(&change),
    };
    println!("{row}");
    Ok(())
}

/// The bidders of `stage`, spread over `doors`, each bidding in a loop for
/// `seconds`: every amount the next of one shared, rising counter, so that
/// most bids can win.
async fn race(doors: &[Http], stage: &Arc<Stage>, seconds: Duration) -> anyhow::Result<Answers> {
    let counter = Arc::new(AtomicI64::new(1));
    let deadline = Instant::now() + seconds;
    let path = format!("/api/v1/guilds/{}/lots/{}/bids", stage.slug, stage.lot_id);
    let mut tasks = Vec::new();
    for bidder in 0..stage.bidders.len() {
        let http = doors[bidder % doors.len()].clone();
        let (stage, counter, path) = (stage.clone(), counter.clone(), path.clone());
        tasks.push(tokio::spawn(async move {
            let mut answers = Answers::default();
            while Instant::now() < deadline {
                let body = json!({"amount": amount(counter.fetch_add(1, Ordering::Relaxed))});
                let sent = Instant::now();
                let status = http.send("POST", &path, Some(&stage.bidders[bidder]), Some(&body)).await.ok();
                answers.record(Outcome::of(status.map(|(status, _)| status)), sent);
            }
            answers
        }));
    }
    let mut all = Answers::default();
    for task in tasks {
        all.merge(task.await?);
    }
    Ok(all)
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens an authenticated feed connection from a source address of 127.0.0.0/8.
async fn connect(server: std::net::SocketAddr, token: &str, n: usize) -> anyhow::Result<Socket> {
    // Spread sources over 127.0.0.x so one source never runs out of ports.
    let source = std::net::Ipv4Addr::new(127, 0, ((n / 20_000) % 250) as u8, (1 + (n / 20_000) / 250) as u8);
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind((source, 0).into())?;
    let stream = socket.connect(server).await?;
    let url = format!("ws://{server}/api/v1/ws?token={token}");
    // tungstenite zeroes as much of its read buffer as it may read into on
    // every read (128 KiB by default): at a thousand feeds that was a quarter
    // of the generator's CPU. A flush of the server's carries a few KiB.
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
    let stream = tokio_tungstenite::MaybeTlsStream::Plain(stream);
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, stream, Some(config)).await?;
    Ok(ws)
}

/// The top-level `offset` of a feed frame, read off its text without parsing
/// it (the last `"offset":` in it: the frame's keys come sorted, after `data`).
fn frame_offset(text: &str) -> Option<usize> {
    let at = text.rfind("\"offset\":")? + "\"offset\":".len();
    let digits = text[at..].find(|c: char| !c.is_ascii_digit()).map_or(&text[at..], |end| &text[at..at + end]);
    digits.parse().ok()
}

/// Nanoseconds since `origin`, plus one (zero stands for none yet).
fn stamp(origin: Instant, at: Instant) -> u64 {
    at.saturating_duration_since(origin).as_nanos() as u64 + 1
}

pub async fn fan_out(bench: FanOut) -> anyhow::Result<()> {
    let mut deployment = Deployment::start(&bench.database, &bench.topology).await?;
    let bids_door = deployment.pinned(0).await?;
    let feed_door = deployment.pinned(1).await?;
    let http = Http::new(bids_door, 16);
    // Sealed bids: every bidder's rising bid is accepted whatever the others
    // bid, so the accepted rate follows the offered rate.
    let stage = Arc::new(stage(&http, 64, json!({"mode": "sealed_first"})).await?);
    let channel = format!("lot:{}", stage.lot_id);
    // By the lot's seq (the channel's offset): when a bid's 201 reached its
    // bidder, and when the last subscriber so far got its frame.
    let origin = Instant::now();
    let slots = (bench.rate * bench.seconds * 2 + 4096) as usize;
    let accepted_at: Arc<[AtomicU64]> = (0..slots).map(|_| AtomicU64::new(0)).collect();
    let last_delivery: Arc<[AtomicU64]> = (0..slots).map(|_| AtomicU64::new(0)).collect();
    let delivered = Arc::new(AtomicU64::new(0));
    let out_of_order = Arc::new(AtomicU64::new(0));
    let samples: Arc<Mutex<Vec<(usize, u64)>>> = Arc::default();
    let mut listeners = Vec::new();
    for n in 0..bench.subscribers {
        let mut ws = connect(feed_door, &stage.owner, n).await.with_context(|| format!("subscriber {n}"))?;
        ws.send(Message::text(json!({"type": "subscribe", "channel": channel}).to_string())).await?;
        let (delivered, out_of_order, samples) = (delivered.clone(), out_of_order.clone(), samples.clone());
        let last_delivery = last_delivery.clone();
        listeners.push(tokio::spawn(async move {
            let (mut local, mut previous) = (Vec::new(), 0);
            while let Some(Ok(message)) = ws.next().await {
                let Message::Text(text) = message else { continue };
                let received = stamp(origin, Instant::now());
                // A cheap look at the frame: the load generator must not be the bottleneck.
                let text = text.as_str();
                if !text.contains("\"bid_placed\"") {
                    continue;
                }
                let Some(offset) = frame_offset(text) else { continue };
                delivered.fetch_add(1, Ordering::Relaxed);
                if offset <= previous {
                    out_of_order.fetch_add(1, Ordering::Relaxed);
                }
                previous = offset;
                if let Some(last) = last_delivery.get(offset) {
                    last.fetch_max(received, Ordering::Relaxed);
                }
                // Each delivery of one subscriber in ten, to keep the bookkeeping light.
                if n % 10 == 0 {
                    local.push((offset, received));
                    if local.len() >= 256
                        && let Ok(mut all) = samples.lock()
                    {
                        all.append(&mut local);
                    }
                }
            }
            if let Ok(mut all) = samples.lock() {
                all.append(&mut local);
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let path = format!("/api/v1/guilds/{}/lots/{}/bids", stage.slug, stage.lot_id);
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / bench.rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let before = deployment.metrics().await?;
    let cpu = deployment.cpu_meter();
    let began = Instant::now();
    let mut placed = 0u64;
    let mut next = 1i64;
    let mut inflight = Vec::new();
    while began.elapsed() < Duration::from_secs(bench.seconds) {
        ticker.tick().await;
        let (http, stage, path, accepted_at) = (http.clone(), stage.clone(), path.clone(), accepted_at.clone());
        let body = json!({"amount": amount(next)});
        next += 1;
        let bidder = placed as usize % stage.bidders.len();
        placed += 1;
        inflight.push(tokio::spawn(async move {
            if let Ok((201, reply)) = http.send("POST", &path, Some(&stage.bidders[bidder]), Some(&body)).await {
                let slot = reply["bid"]["seq"].as_u64().and_then(|seq| accepted_at.get(seq as usize));
                if let Some(slot) = slot {
                    slot.store(stamp(origin, Instant::now()), Ordering::Relaxed);
                }
                return 1u64;
            }
            0
        }));
    }
    let mut accepted = 0;
    for task in inflight {
        accepted += task.await.unwrap_or(0);
    }
    let elapsed = began.elapsed().as_secs_f64();
    let server_cpu = cpu.seconds_of("dkp");
    let cpu = cpu.report();
    // Frames still on their way: wait until every one is in, or none has come for 2 s.
    let expected = accepted * bench.subscribers as u64;
    let (mut total, mut last_progress) = (delivered.load(Ordering::Relaxed), Instant::now());
    while total < expected && last_progress.elapsed() < Duration::from_secs(2) {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let now = delivered.load(Ordering::Relaxed);
        if now > total {
            (total, last_progress) = (now, Instant::now());
        }
    }
    let drained = began.elapsed().as_secs_f64() - elapsed;
    let closed = listeners.iter().filter(|listener| listener.is_finished()).count();
    for listener in &listeners {
        listener.abort();
    }
    let metrics = deployment.metrics().await?;
    let change = Change { before, after: metrics.clone() };
    // From a bid's 201 to a delivery of it (none before: a frame may beat the 201).
    let accepted_stamp = |seq: usize| accepted_at.get(seq).map(|at| at.load(Ordering::Relaxed)).filter(|at| *at > 0);
    let ms = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1e6;
    let samples = samples.lock().map(|s| s.clone()).unwrap_or_default();
    let mut latencies: Vec<f64> =
        samples.iter().filter_map(|&(offset, received)| accepted_stamp(offset).map(|at| ms(at, received))).collect();
    latencies.sort_by(f64::total_cmp);
    let mut to_last: Vec<f64> = (0..slots)
        .filter_map(|seq| {
            let last = last_delivery[seq].load(Ordering::Relaxed);
            accepted_stamp(seq).filter(|_| last > 0).map(|at| ms(at, last))
        })
        .collect();
    to_last.sort_by(f64::total_cmp);
    println!(
        "fan-out bench: backend={} {} subscribers={} rate={}/s seconds={}",
        bench.database.store(),
        deployment.describe(),
        bench.subscribers,
        bench.rate,
        bench.seconds
    );
    println!("  bids placed={placed} accepted={accepted} ({:.0}/s)", accepted as f64 / elapsed);
    println!(
        "  delivered={total} ({:.0} messages/s), expected {expected} (every subscriber every accepted bid), \
         the last {:.1} s after the last bid",
        total as f64 / elapsed,
        drained
    );
    println!(
        "  subscribers cut off={closed}; server: slow consumers dropped={}, frames Redis could not carry={}",
        counter_total(&metrics, "dkp_ws_slow_consumers_dropped_total") as u64,
        counter_total(&metrics, "dkp_hub_redis_dropped_total") as u64,
    );
    println!(
        "  acceptance-to-delivery ms (1 subscriber in 10): p50={:.2} p99={:.2} max={:.2}",
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        quantile(&latencies, 1.0)
    );
    println!(
        "  acceptance to the last subscriber's delivery ms (each of {} bids): p50={:.2} p99={:.2} max={:.2}; \
         frames out of order={}",
        to_last.len(),
        quantile(&to_last, 0.5),
        quantile(&to_last, 0.99),
        quantile(&to_last, 1.0),
        out_of_order.load(Ordering::Relaxed),
    );
    // The server's own share: from a frame's publish to the flush that wrote it.
    let waited = |q: f64| change.bucket_quantile("dkp_ws_frame_wait_seconds", q).map_or(f64::NAN, |s| s * 1000.0);
    let per_flush = change.total("dkp_ws_frames_per_flush_sum") / change.total("dkp_ws_frames_per_flush_count");
    println!(
        "  in the server, publish to write ms (bucket bound, 1 flush in 16): p50<={:.1} p99<={:.1}; \
         frames per flush {per_flush:.2}; server CPU per delivered message {:.2} us",
        waited(0.5),
        waited(0.99),
        server_cpu / (total.max(1) as f64) * 1e6,
    );
    println!("  {cpu}");
    Ok(())
}

pub async fn connections(bench: Connections) -> anyhow::Result<()> {
    let server = Server::start(&bench.database).await?;
    let http = Http::new(server.address, 4);
    let stage = stage(&http, 1, json!({})).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = server.rss_kib()?;
    let mut sockets = Vec::with_capacity(bench.connections);
    let began = Instant::now();
    for n in 0..bench.connections {
        let mut ws = connect(server.address, &stage.owner, n).await.with_context(|| format!("connection {n}"))?;
        ws.send(Message::text(json!({"type": "subscribe", "channel": "me"}).to_string())).await?;
        sockets.push(ws);
    }
    let opened = began.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = server.rss_kib()?;
    println!("connections bench: backend={} connections={}", bench.database.store(), bench.connections);
    println!("  opened in {opened:.1}s; server RSS {before} KiB before, {after} KiB after");
    println!("  per connection: {:.2} KiB", (after.saturating_sub(before)) as f64 / bench.connections as f64);
    drop(sockets);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::frame_offset;

    #[test]
    fn a_frames_offset_is_its_top_level_one() {
        let frame =
            r#"{"channel":"lot:1","data":{"amount":"0.05","seq":7},"event":"bid_placed","offset":42,"type":"event"}"#;
        assert_eq!(frame_offset(frame), Some(42));
        assert_eq!(frame_offset(r#"{"offset":9}"#), Some(9));
        assert_eq!(frame_offset(r#"{"type":"subscribed"}"#), None);
    }
}
