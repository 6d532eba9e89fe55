//! What sealed bids hold stays secret until their lot closes: no refusal an
//! officer gets and no decay anyone can read tells how much a member holds
//! in sealed bids, and a lot still settles whatever a decay took meanwhile.

use serde_json::{Value, json};

use crate::both_stores;
use crate::support::{Guild, TestApp};

both_stores!(
    a_refused_transfer_or_adjustment_tells_nothing_of_sealed_bids,
    decay_takes_its_percent_whatever_sealed_bids_hold,
    a_lot_settles_after_a_decay_took_what_its_winner_held,
);

fn pool_path(guild: &Guild, what: &str) -> String {
    format!("/api/v1/guilds/{}/pools/{}/{what}", guild.slug, guild.pool)
}

/// Asks for a decay of the guild's pool and runs it now.
async fn decay(app: &TestApp, guild: &Guild, percent: &str) {
    app.post(&pool_path(guild, "decay"))
        .token(&guild.owner.token)
        .json(json!({"percent": percent}))
        .send()
        .await
        .expect(202);
    app.run_due_jobs().await;
}

/// The postings of the pool's newest decay entry, member id to amount.
async fn last_decay(app: &TestApp, guild: &Guild, token: &str) -> Vec<(String, String)> {
    let entries = app.get(&pool_path(guild, "entries")).token(token).send().await.expect(200).json;
    let decay = entries["entries"].as_array().unwrap().iter().find(|e| e["kind"] == "decay").cloned();
    let postings = decay.expect("a decay entry")["postings"].as_array().unwrap().clone();
    postings
        .iter()
        .filter_map(|p: &Value| Some((p["member_id"].as_str()?.to_owned(), p["amount"].as_str()?.to_owned())))
        .collect()
}

async fn a_refused_transfer_or_adjustment_tells_nothing_of_sealed_bids(app: TestApp) {
    let guild = app.guild("owls").await;
    let (ana, a) = app.funded_member(&guild, "ana", 150).await;
    let (_, b) = app.member(&guild, "bob", "member").await;
    let lot = app.open_lot(&guild, json!({"mode": "sealed_first"})).await;
    app.bid(&guild, lot["id"].as_str().unwrap(), &ana.token, json!("50.56")).await.expect(201);

    let transfer = json!({"from_member_id": a, "to_member_id": b, "amount": 150, "reason": "gift"});
    let adjustment = json!({"member_id": a, "amount": -150, "reason": "penalty"});
    for (what, body) in [("transfers", transfer), ("adjustments", adjustment)] {
        for key in ["first", "first"] {
            let reply = app
                .post(&pool_path(&guild, what))
                .token(&guild.owner.token)
                .header("idempotency-key", &format!("{what}-{key}"))
                .json(body.clone())
                .send()
                .await
                .expect_error(422, "insufficient_points");
            for secret in ["99.44", "50.56"] {
                assert!(!reply.text.contains(secret), "{what} tells what the sealed bid holds: {}", reply.text);
            }
        }
    }
    assert_eq!(app.balances(&guild).await[&a], "150.00");
}

async fn decay_takes_its_percent_whatever_sealed_bids_hold(app: TestApp) {
    let guild = app.guild("owls").await;
    let (ana, a) = app.funded_member(&guild, "ana", 100).await;
    let (cai, c) = app.funded_member(&guild, "cai", 100).await;
    let (bob, _) = app.funded_member(&guild, "bob", 100).await;
    let lot = app.open_lot(&guild, json!({"mode": "sealed_second"})).await;
    let id = lot["id"].as_str().unwrap();
    // Ana bids 80 of her 100; Cai goes all in.
    app.bid(&guild, id, &ana.token, json!(80)).await.expect(201);
    app.bid(&guild, id, &cai.token, json!(100)).await.expect(201);

    decay(&app, &guild, "50").await;

    let taken = last_decay(&app, &guild, &bob.token).await;
    assert!(taken.contains(&(a.clone(), "-50.00".to_owned())), "{taken:?}");
    assert!(taken.contains(&(c.clone(), "-50.00".to_owned())), "{taken:?}");
    let seen_by_bob = app.wallets_seen_by(&guild, &bob.token).await;
    assert_eq!(seen_by_bob[&a], ("50.00".to_owned(), "0.00".to_owned()));
    assert_eq!(seen_by_bob[&c], ("50.00".to_owned(), "0.00".to_owned()));
    // Ana herself sees her hold, and that it now exceeds her balance.
    let seen_by_ana = app.wallets_seen_by(&guild, &ana.token).await;
    assert_eq!(seen_by_ana[&a], ("50.00".to_owned(), "80.00".to_owned()));
    app.assert_ledger_consistent().await;
}

async fn a_lot_settles_after_a_decay_took_what_its_winner_held(app: TestApp) {
    let guild = app.guild("owls").await;
    let (ana, a) = app.funded_member(&guild, "ana", 100).await;
    let lot = app.open_lot(&guild, json!({"mode": "sealed_first"})).await;
    let id = lot["id"].as_str().unwrap();
    app.bid(&guild, id, &ana.token, json!(100)).await.expect(201);
    decay(&app, &guild, "10").await;
    assert_eq!(app.wallets_seen_by(&guild, &ana.token).await[&a], ("90.00".to_owned(), "100.00".to_owned()));
    // While her holds exceed her balance she can spend nothing more.
    app.post(&pool_path(&guild, "adjustments"))
        .token(&guild.owner.token)
        .json(json!({"member_id": a, "amount": "-0.01", "reason": "r"}))
        .send()
        .await
        .expect_error(422, "insufficient_points");

    let closed = app
        .post(&format!("/api/v1/guilds/{}/lots/{id}/close", guild.slug))
        .token(&guild.owner.token)
        .send()
        .await
        .expect(200);
    assert_eq!(
        (closed.json["lot"]["winner_member_id"].as_str(), closed.json["lot"]["price"].as_str()),
        (Some(a.as_str()), Some("100.00"))
    );
    assert_eq!(app.wallets(&guild).await[&a], ("-10.00".to_owned(), "0.00".to_owned()));
    app.assert_ledger_consistent().await;
}
