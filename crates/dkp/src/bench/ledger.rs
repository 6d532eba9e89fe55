//! The ledger benchmark (seed risk R1): `concurrency` writers share
//! `operations` transfers and awards among a few wallets of one pool, through
//! the same use cases the API calls, on one or several store instances (each
//! with its own connection pool and in-process turnstile, as separate hosts
//! would have). It prints throughput, latency and retries per commit, then
//! checks that the wallets hold exactly what was moved.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use serde_json::json;

use super::{counter_total, quantile};
use crate::config::DatabaseArgs;
use crate::service::accounts::{Login, Registration};
use crate::service::guilds::{NewGuildInput, NewMemberInput};
use crate::service::ledger::{AwardInput, NewPoolInput, TransferInput};
use crate::service::{Caller, Service};
use crate::store::{self, Location};

#[derive(Debug, Clone, Args)]
pub struct LedgerBench {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Writers running at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: usize,
    /// Ledger operations in all.
    #[arg(long, default_value_t = 5000)]
    pub operations: usize,
    /// Wallets the operations move points between.
    #[arg(long, default_value_t = 3)]
    pub wallets: usize,
    /// Service instances sharing the database (PostgreSQL only).
    #[arg(long, default_value_t = 1)]
    pub instances: usize,
}

fn service(store: store::Store) -> Service {
    let encoder: crate::hub::Encoder = Arc::new(|_: &crate::model::Event| Default::default());
    Service::new(crate::service::Parts {
        store: Arc::new(store),
        hub: Arc::new(crate::hub::LocalHub::new(encoder)),
        clock: Arc::new(crate::clock::SystemClock),
        shared: None,
        bid_rate: 0,
        connect_rate: 0,
        blobs: Arc::new(crate::blobs::Blobs::in_memory()),
        session_ttl_hours: 1,
    })
}

pub async fn run(bench: LedgerBench) -> anyhow::Result<()> {
    let location = bench.database.location()?;
    if bench.instances > 1 && matches!(location, Location::Sqlite { .. }) {
        bail!("several instances need PostgreSQL");
    }
    if bench.wallets < 2 {
        bail!("--wallets must be at least 2");
    }
    let metrics = crate::telemetry::metrics();
    let mut services = Vec::new();
    for _ in 0..bench.instances.max(1) {
        services.push(Arc::new(service(store::open(&location).await?)));
    }
    let setup = &services[0];
    let run_id = uuid::Uuid::now_v7().simple().to_string();
    let owner_name = format!("bench{}", &run_id[20..]);
    let err = |e: crate::service::Error| anyhow::anyhow!("setup: {e}");
    setup
        .register(
            Registration { username: owner_name.clone(), password: "bench-password".into(), display_name: None },
            "bench",
        )
        .await
        .map_err(err)?;
    let (token, user) = setup
        .login(Login { username: owner_name.clone(), password: "bench-password".into() }, "bench")
        .await
        .map_err(err)?;
    let caller = Caller {
        user,
        token_hash: crate::service::accounts::token_hash(&token),
        request_id: "bench".into(),
        // The final check of the balances must see every write.
        reads: crate::store::Read::Fresh,
    };
    let slug = format!("bench-{}", &run_id[16..]);
    setup.create_guild(&caller, NewGuildInput { name: "Bench".into(), slug: slug.clone() }).await.map_err(err)?;
    let pool = setup
        .create_pool(&caller, &slug, NewPoolInput { name: "Main".into(), allow_negative: false })
        .await
        .map_err(err)?;
    let mut wallets = Vec::new();
    for n in 0..bench.wallets {
        let name = format!("w{n}{}", &run_id[24..]);
        setup
            .register(
                Registration { username: name.clone(), password: "bench-password".into(), display_name: None },
                "bench",
            )
            .await
            .map_err(err)?;
        let member = setup
            .add_member(&caller, &slug, NewMemberInput { username: name, role: "member".into() })
            .await
            .map_err(err)?;
        wallets.push(member.id.to_string());
    }
    let start = 1_000_000i64;
    let award = AwardInput { member_ids: wallets.clone(), amount: json!(start), reason: "start".into() };
    setup.award(&caller, &slug, &pool.id.to_string(), award, None).await.map_err(err)?;

    let before_retries = counter_total(&metrics.render(), "dkp_tx_retries_total");
    let before_commits = counter_total(&metrics.render(), "dkp_tx_commits_total");
    let before_failures = counter_total(&metrics.render(), "dkp_tx_failures_total");
    let next = Arc::new(AtomicUsize::new(0));
    let wallets = Arc::new(wallets);
    let began = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..bench.concurrency {
        let service = services[writer % services.len()].clone();
        let (next, wallets, caller, slug) = (next.clone(), wallets.clone(), caller.clone(), slug.clone());
        let (pool_id, total) = (pool.id.to_string(), bench.operations);
        writers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let (mut failed, mut awarded) = (0usize, 0i64);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let n = wallets.len();
                let started = Instant::now();
                let is_award = i % 10 == 0;
                let result = if is_award {
                    let input = AwardInput {
                        member_ids: vec![wallets[i % n].clone()],
                        amount: json!("0.10"),
                        reason: "bench".into(),
                    };
                    service.award(&caller, &slug, &pool_id, input, None).await
                } else {
                    let input = TransferInput {
                        from_member_id: wallets[i % n].clone(),
                        // An offset of 1..n-1 from the sender: never the sender itself.
                        to_member_id: wallets[(i + 1 + (i / n) % (n - 1)) % n].clone(),
                        amount: json!("0.01"),
                        reason: "bench".into(),
                    };
                    service.transfer(&caller, &slug, &pool_id, input, None).await
                };
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                match result {
                    Ok(_) if is_award => awarded += 10,
                    Ok(_) => {}
                    Err(_) => failed += 1,
                }
            }
            (latencies, failed, awarded)
        }));
    }
    let mut latencies = Vec::new();
    let (mut failed, mut awarded) = (0, 0);
    for writer in writers {
        let (mut l, f, a) = writer.await.context("a writer crashed")?;
        latencies.append(&mut l);
        failed += f;
        awarded += a;
    }
    let elapsed = began.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let rendered = metrics.render();
    let retries = counter_total(&rendered, "dkp_tx_retries_total") - before_retries;
    let commits = counter_total(&rendered, "dkp_tx_commits_total") - before_commits;
    let failures = counter_total(&rendered, "dkp_tx_failures_total") - before_failures;

    let standings = setup.standings(&caller, &slug, &pool.id.to_string()).await.map_err(err)?;
    let held: i64 = standings.iter().map(|s| s.balance.hundredths()).sum();
    let expected = start * 100 * bench.wallets as i64 + awarded;
    let backend = super::backend(&location);
    println!(
        "ledger bench: backend={backend} instances={} concurrency={} wallets={} operations={}",
        services.len(),
        bench.concurrency,
        bench.wallets,
        bench.operations
    );
    println!("  elapsed_s={elapsed:.2} ops_per_s={:.0}", latencies.len() as f64 / elapsed);
    println!(
        "  latency_ms p50={:.2} p99={:.2} max={:.2}",
        quantile(&latencies, 0.5),
        quantile(&latencies, 0.99),
        quantile(&latencies, 1.0)
    );
    println!(
        "  commits={commits} retries={retries} retries_per_commit={:.4} failures={failures} failed_requests={failed}",
        retries / commits.max(1.0)
    );
    println!(
        "  conservation: wallets hold {held} hundredths, expected {expected}: {}",
        if held == expected { "ok" } else { "MISMATCH" }
    );
    for service in &services {
        service.close().await;
    }
    if held != expected || failed > 0 {
        bail!("the ledger benchmark found an error");
    }
    Ok(())
}
