//! PgBouncer in transaction mode in front of PostgreSQL: the service works
//! through it (`?pgbouncer=true` on the URL) from migration to settlement,
//! with four instances sharing three server connections, so a server
//! connection really passes from one client to another between transactions.

use std::sync::Arc;

use serde_json::json;

use crate::servers::Bouncer;
use crate::support::{TestApp, spawn_app_on};

/// Server connections PgBouncer may open to the database.
const POOL_SIZE: u32 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_works_through_pgbouncer_in_transaction_mode() {
    let bouncer = Bouncer::start(POOL_SIZE).await;
    // Arrange: four instances through PgBouncer (the first one migrates), a guild and eight bidders.
    let first = spawn_app_on(&bouncer.url(), |_| {}).await;
    let mut apps = vec![Arc::new(first)];
    for _ in 1..4 {
        apps.push(Arc::new(apps[0].second_instance().await));
    }
    let app = &apps[0];
    let guild = app.guild("bouncers").await;
    let mut bidders = Vec::new();
    for n in 0..8 {
        bidders.push(app.member(&guild, &format!("bidder{n}"), "member").await);
    }

    // Act: concurrent awards spread over the instances, then concurrent bids and reads.
    let awards: Vec<_> = bidders
        .iter()
        .enumerate()
        .map(|(i, (_, member))| {
            let (instance, token) = (apps[i % apps.len()].clone(), guild.owner.token.clone());
            let path = format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool);
            let body = json!({"member_ids": [member], "amount": 100, "reason": format!("raid {i}")});
            tokio::spawn(async move { instance.post(&path).token(&token).json(body).send().await })
        })
        .collect();
    for award in awards {
        award.await.expect("the award task").expect(201);
    }
    let lot = app.open_lot(&guild, json!({"increment": 1})).await;
    let lot_id = lot["id"].as_str().expect("lot id").to_owned();
    let mut tasks = Vec::new();
    for (i, (user, _)) in bidders.iter().enumerate() {
        let (instance, guild, lot_id, token) =
            (apps[i % apps.len()].clone(), guild.clone(), lot_id.clone(), user.token.clone());
        tasks.push(tokio::spawn(async move {
            let bid = instance.bid(&guild, &lot_id, &token, json!(10 + i)).await;
            let standings = format!("/api/v1/guilds/{}/pools/{}/standings", guild.slug, guild.pool);
            let read = instance.get(&standings).token(&token).send().await;
            (bid, read)
        }));
    }
    for task in tasks {
        let (bid, read) = task.await.expect("the bid task");
        assert!(bid.status == 201 || bid.code() == "bid_too_low", "a bid through PgBouncer: {}", bid.text);
        read.expect(200);
    }
    let closed = app
        .post(&format!("/api/v1/guilds/{}/lots/{lot_id}/close", guild.slug))
        .token(&guild.owner.token)
        .send()
        .await
        .expect(200);

    // Assert: the highest bid (17, from the last bidder) won and paid; nobody else was charged or holds anything.
    let winner = &bidders[7].1;
    assert_eq!(closed.json["lot"]["winner_member_id"], json!(winner));
    assert_eq!(closed.json["lot"]["price"], "17.00");
    let wallets = app.wallets(&guild).await;
    for (_, member) in &bidders {
        let expected = if member == winner { "83.00" } else { "100.00" };
        assert_eq!(wallets[member], (expected.to_owned(), "0.00".to_owned()), "member {member}");
    }
    app.assert_ledger_consistent().await;
    assert_servers_shared(&bouncer, &apps).await;
}

/// More clients than server connections were connected to the database: the
/// servers were shared between them.
async fn assert_servers_shared(bouncer: &Bouncer, apps: &[Arc<TestApp>]) {
    use sqlx::{ConnectOptions, Row};
    let options: sqlx::postgres::PgConnectOptions = bouncer.admin_url().parse().expect("admin url");
    let mut console = options.extra_float_digits(None).connect().await.expect("PgBouncer's admin console");
    let count = |rows: Vec<sqlx::postgres::PgRow>| {
        rows.iter().filter(|row| row.try_get::<String, _>("database").is_ok_and(|db| db == "dkp")).count()
    };
    let clients = count(sqlx::raw_sql("SHOW CLIENTS").fetch_all(&mut console).await.expect("SHOW CLIENTS"));
    let servers = count(sqlx::raw_sql("SHOW SERVERS").fetch_all(&mut console).await.expect("SHOW SERVERS"));
    assert!(clients >= apps.len(), "every instance keeps a connection to PgBouncer: {clients}");
    assert!(servers <= POOL_SIZE as usize, "PgBouncer opened {servers} server connections");
    assert!(clients > servers, "{clients} clients shared {servers} server connections");
}
