//! Lots, bids, holds, closing and settlement over HTTP, on both stores.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use serde_json::{Value, json};

use crate::both_stores;
use crate::support::{Guild, TestApp, User};

both_stores!(
    an_open_lot_takes_rising_bids_holds_the_leader_and_settles_once,
    sealed_lots_hide_bids_until_the_close_and_charge_by_their_mode,
    the_same_points_never_back_two_lots,
    a_cancelled_lot_releases_every_hold_and_charges_nobody,
    a_bid_near_the_end_extends_the_lot,
    lots_close_by_themselves_at_their_end,
    racing_closers_settle_a_lot_exactly_once,
    racing_bidders_leave_strictly_rising_bids_and_only_the_leader_holding,
    bids_are_idempotent_and_lot_input_is_checked,
);

/// A guild whose members `names` hold `points` each.
async fn funded(app: &TestApp, names: &[&str], points: i64) -> (Guild, Vec<(User, String)>) {
    let guild = app.guild("owls").await;
    let mut members = Vec::new();
    for name in names {
        members.push(app.member(&guild, name, "member").await);
    }
    let ids: Vec<&String> = members.iter().map(|(_, id)| id).collect();
    app.post(&format!("/api/v1/guilds/{}/pools/{}/awards", guild.slug, guild.pool))
        .token(&guild.owner.token)
        .json(json!({"member_ids": ids, "amount": points, "reason": "raid"}))
        .send()
        .await
        .expect(201);
    (guild, members)
}

fn lot_path(guild: &Guild, lot: &str, what: &str) -> String {
    format!("/api/v1/guilds/{}/lots/{lot}{what}", guild.slug)
}

async fn an_open_lot_takes_rising_bids_holds_the_leader_and_settles_once(app: TestApp) {
    let (guild, members) = funded(&app, &["ana", "bob"], 100).await;
    let ((ana, a), (bob, b)) = (&members[0], &members[1]);
    let lot = app.open_lot(&guild, json!({"min_bid": 10, "increment": "1.5"})).await;
    let id = lot["id"].as_str().unwrap();
    assert_eq!((lot["status"].as_str(), lot["seq"].as_i64()), (Some("open"), Some(1)));

    app.bid(&guild, id, &ana.token, json!("9.99")).await.expect_error(422, "bid_too_low");
    let first = app.bid(&guild, id, &ana.token, json!(10)).await.expect(201);
    assert_eq!(first.json["bid"]["amount"], "10.00");
    assert_eq!(first.json["bid"]["seq"], 2);
    assert_eq!(first.json["lot"]["high_bid"], "10.00");
    app.bid(&guild, id, &bob.token, json!("11.49")).await.expect_error(422, "bid_too_low");
    app.bid(&guild, id, &bob.token, json!("11.5")).await.expect(201);
    assert_eq!(app.wallets(&guild).await[a], ("100.00".into(), "0.00".into()), "the outbid leader's hold ended");
    assert_eq!(app.wallets(&guild).await[b], ("100.00".into(), "11.50".into()));
    app.bid(&guild, id, &ana.token, json!(40)).await.expect(201);
    let standings = app
        .get(&format!("/api/v1/guilds/{}/pools/{}/standings", guild.slug, guild.pool))
        .token(&ana.token)
        .send()
        .await
        .expect(200);
    let ana_row =
        standings.json["standings"].as_array().unwrap().iter().find(|s| s["member_id"] == a.as_str()).unwrap().clone();
    assert_eq!((ana_row["held"].as_str(), ana_row["available"].as_str()), (Some("40.00"), Some("60.00")));

    app.post(&lot_path(&guild, id, "/close")).token(&ana.token).send().await.expect_error(403, "forbidden");
    let closed = app.post(&lot_path(&guild, id, "/close")).token(&guild.owner.token).send().await.expect(200);
    assert_eq!(closed.json["lot"]["status"], "closed");
    assert_eq!(closed.json["lot"]["winner_member_id"], a.as_str());
    assert_eq!(closed.json["lot"]["price"], "40.00");
    assert_eq!(app.wallets(&guild).await[a], ("60.00".into(), "0.00".into()));
    assert_eq!(app.wallets(&guild).await[b], ("100.00".into(), "0.00".into()));
    let entry_id = closed.json["lot"]["settlement_entry_id"].as_str().unwrap();
    let entries = app
        .get(&format!("/api/v1/guilds/{}/pools/{}/entries", guild.slug, guild.pool))
        .token(&ana.token)
        .send()
        .await
        .expect(200);
    let settlement = &entries.json["entries"][0];
    assert_eq!((settlement["id"].as_str(), settlement["kind"].as_str()), (Some(entry_id), Some("settlement")));
    assert_eq!(
        settlement["postings"],
        json!([{"member_id": a, "amount": "-40.00"}, {"account": "spent", "amount": "40.00"}])
    );

    app.post(&lot_path(&guild, id, "/close")).token(&guild.owner.token).send().await.expect_error(409, "lot_closed");
    app.bid(&guild, id, &bob.token, json!(99)).await.expect_error(409, "lot_closed");
    let listed = app
        .get(&format!("/api/v1/guilds/{}/lots?status=closed", guild.slug))
        .token(&bob.token)
        .send()
        .await
        .expect(200);
    assert_eq!(listed.json["lots"].as_array().unwrap().len(), 1);
    app.assert_ledger_consistent().await;
}

async fn sealed_lots_hide_bids_until_the_close_and_charge_by_their_mode(app: TestApp) {
    let (guild, members) = funded(&app, &["ana", "bob", "cyd"], 100).await;
    let (a, b) = (&members[0].1, &members[1].1);
    for (mode, price) in [("sealed_first", "30.00"), ("sealed_second", "25.00")] {
        let lot = app.open_lot(&guild, json!({"mode": mode, "min_bid": 5})).await;
        let id = lot["id"].as_str().unwrap();
        app.bid(&guild, id, &members[0].0.token, json!(30)).await.expect(201);
        let second = app.bid(&guild, id, &members[1].0.token, json!(25)).await.expect(201);
        assert!(second.json["lot"].get("high_bid").is_none(), "{}", second.json);
        app.bid(&guild, id, &members[2].0.token, json!(20)).await.expect(201);
        app.bid(&guild, id, &members[1].0.token, json!(24)).await.expect_error(422, "bid_too_low");
        let seen = app.get(&lot_path(&guild, id, "")).token(&members[2].0.token).send().await.expect(200);
        assert!(seen.json["lot"].get("high_bid").is_none() && seen.json["lot"].get("leader_member_id").is_none());
        assert_eq!(seen.json["lot"]["bid_count"], 3);
        assert_eq!(
            app.wallets_seen_by(&guild, &members[1].0.token).await[b].1,
            "25.00",
            "every sealed bidder holds their bid"
        );
        assert_eq!(app.wallets(&guild).await[b].1, "0.00", "and no one else sees it");
        let closed = app.post(&lot_path(&guild, id, "/close")).token(&guild.owner.token).send().await.expect(200);
        assert_eq!(closed.json["lot"]["winner_member_id"], a.as_str());
        assert_eq!(closed.json["lot"]["price"], price, "{mode}");
        assert_eq!(closed.json["lot"]["high_bid"], "30.00", "revealed at the close");
    }
    assert_eq!(app.wallets(&guild).await[a], ("45.00".into(), "0.00".into()));
    // Alone in a second-price lot, the winner pays the minimum bid.
    let lot = app.open_lot(&guild, json!({"mode": "sealed_second", "min_bid": 7})).await;
    let id = lot["id"].as_str().unwrap();
    app.bid(&guild, id, &members[1].0.token, json!(50)).await.expect(201);
    let closed = app.post(&lot_path(&guild, id, "/close")).token(&guild.owner.token).send().await.expect(200);
    assert_eq!(closed.json["lot"]["price"], "7.00");
    // A lot with no bids closes with no winner.
    let lot = app.open_lot(&guild, json!({})).await;
    let closed = app
        .post(&lot_path(&guild, lot["id"].as_str().unwrap(), "/close"))
        .token(&guild.owner.token)
        .send()
        .await
        .expect(200);
    assert!(closed.json["lot"].get("winner_member_id").is_none());
    app.assert_ledger_consistent().await;
}

async fn the_same_points_never_back_two_lots(app: TestApp) {
    let (guild, members) = funded(&app, &["ana"], 100).await;
    let (ana, a) = &members[0];
    let first = app.open_lot(&guild, json!({})).await;
    let second = app.open_lot(&guild, json!({})).await;
    app.bid(&guild, first["id"].as_str().unwrap(), &ana.token, json!(60)).await.expect(201);
    app.bid(&guild, second["id"].as_str().unwrap(), &ana.token, json!(41))
        .await
        .expect_error(422, "insufficient_points");
    app.bid(&guild, second["id"].as_str().unwrap(), &ana.token, json!(40)).await.expect(201);
    // Held points cannot be transferred away either.
    let (_, b) = app.member(&guild, "bob", "member").await;
    app.post(&format!("/api/v1/guilds/{}/pools/{}/transfers", guild.slug, guild.pool))
        .token(&guild.owner.token)
        .json(json!({"from_member_id": a, "to_member_id": b, "amount": "0.01", "reason": "r"}))
        .send()
        .await
        .expect_error(422, "insufficient_points");
    assert_eq!(app.wallets(&guild).await[a], ("100.00".into(), "100.00".into()));
}

async fn a_cancelled_lot_releases_every_hold_and_charges_nobody(app: TestApp) {
    let (guild, members) = funded(&app, &["ana", "bob"], 100).await;
    let lot = app.open_lot(&guild, json!({"mode": "sealed_first"})).await;
    let id = lot["id"].as_str().unwrap();
    app.bid(&guild, id, &members[0].0.token, json!(30)).await.expect(201);
    app.bid(&guild, id, &members[1].0.token, json!(20)).await.expect(201);
    let cancelled = app
        .post(&lot_path(&guild, id, "/cancel"))
        .token(&guild.owner.token)
        .json(json!({"reason": "wrong item"}))
        .send()
        .await
        .expect(200);
    assert_eq!(cancelled.json["lot"]["status"], "cancelled");
    assert!(cancelled.json["lot"].get("price").is_none());
    for (_, id) in &members {
        assert_eq!(app.wallets(&guild).await[id], ("100.00".into(), "0.00".into()));
    }
    app.bid(&guild, id, &members[0].0.token, json!(50)).await.expect_error(409, "lot_closed");
    app.post(&lot_path(&guild, id, "/cancel"))
        .token(&guild.owner.token)
        .json(json!({"reason": "again"}))
        .send()
        .await
        .expect_error(409, "lot_closed");
    app.assert_ledger_consistent().await;
}

fn ends_at(lot: &Value) -> time::OffsetDateTime {
    time::OffsetDateTime::parse(lot["ends_at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339)
        .unwrap()
}

async fn a_bid_near_the_end_extends_the_lot(app: TestApp) {
    let (guild, members) = funded(&app, &["ana", "bob"], 100).await;
    let lot = app.open_lot(&guild, json!({"duration_s": 30, "anti_snipe_s": 60, "extend_s": 120})).await;
    let id = lot["id"].as_str().unwrap();
    app.bid(&guild, id, &members[0].0.token, json!(5)).await.expect_error(422, "bid_too_low");
    let shown = app.get(&lot_path(&guild, id, "")).token(&members[0].0.token).send().await.expect(200);
    assert_eq!(ends_at(&shown.json["lot"]), ends_at(&lot), "a rejected bid never extends");
    let accepted = app.bid(&guild, id, &members[1].0.token, json!(10)).await.expect(201);
    let extended = ends_at(&accepted.json["lot"]);
    assert!(extended - ends_at(&lot) > time::Duration::seconds(80), "{} -> {extended}", ends_at(&lot));
    assert_eq!(accepted.json["lot"]["seq"], 3, "the bid and the extension each take an offset");
}

async fn lots_close_by_themselves_at_their_end(app: TestApp) {
    let (guild, members) = funded(&app, &["ana"], 100).await;
    let _runner = app.start_jobs();
    let lot = app.open_lot(&guild, json!({"duration_s": 1})).await;
    let id = lot["id"].as_str().unwrap();
    app.bid(&guild, id, &members[0].0.token, json!(12)).await.expect(201);
    let open = app.get(&lot_path(&guild, id, "")).token(&guild.owner.token).send().await.expect(200);
    assert_eq!(open.json["lot"]["status"], "open", "not before its end");
    // The lot's end comes: the running job runner closes it within a second.
    app.clock.advance(Duration::from_secs(1));
    let deadline = std::time::Instant::now() + Duration::from_millis(1500);
    let closed = loop {
        let shown = app.get(&lot_path(&guild, id, "")).token(&guild.owner.token).send().await.expect(200);
        if shown.json["lot"]["status"] == "closed" {
            break shown;
        }
        assert!(std::time::Instant::now() < deadline, "not closed within 1 s of its end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(closed.json["lot"]["price"], "12.00");
    assert_eq!(app.wallets(&guild).await[&members[0].1].0, "88.00");
}

async fn racing_closers_settle_a_lot_exactly_once(app: TestApp) {
    let (guild, members) = funded(&app, &["ana"], 100).await;
    let lot = app.open_lot(&guild, json!({"duration_s": 1})).await;
    let id = lot["id"].as_str().unwrap().to_owned();
    app.bid(&guild, &id, &members[0].0.token, json!(30)).await.expect(201);
    app.clock.advance(Duration::from_millis(1100));
    let app = Arc::new(app);
    let mut closers = Vec::new();
    for n in 0..8 {
        let app = app.clone();
        let (guild, id) = (guild.clone(), id.clone());
        closers.push(tokio::spawn(async move {
            if n % 2 == 0 {
                // A job runner: whether it closed the lot shows in its job.
                app.run_due_jobs().await;
                0
            } else {
                let reply = app.post(&lot_path(&guild, &id, "/close")).token(&guild.owner.token).send().await;
                usize::from(reply.status.as_u16() == 200)
            }
        }));
    }
    let mut closed = 0;
    for closer in closers {
        closed += closer.await.unwrap();
    }
    let job = app.store.job_by_key(&format!("close_lot:{id}")).await.expect("read").expect("the lot's job");
    assert_eq!(job.state, "done");
    closed += usize::from(job.result.as_ref().is_some_and(|r| r["status"] == "closed"));
    assert_eq!(closed, 1, "one closer settles the lot");
    assert_eq!(app.wallets(&guild).await[&members[0].1], ("70.00".into(), "0.00".into()));
    app.assert_ledger_consistent().await;
}

async fn racing_bidders_leave_strictly_rising_bids_and_only_the_leader_holding(app: TestApp) {
    let names: Vec<String> = (0..32).map(|n| format!("bidder{n:02}")).collect();
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (guild, members) = funded(&app, &name_refs, 100_000).await;
    let lot = app.open_lot(&guild, json!({"min_bid": 1, "increment": "0.01"})).await;
    let id = lot["id"].as_str().unwrap().to_owned();
    let app = Arc::new(app);
    let counter = Arc::new(AtomicI64::new(100));
    let mut bidders = Vec::new();
    for (user, _) in members.clone() {
        let (app, guild, id, counter) = (app.clone(), guild.clone(), id.clone(), counter.clone());
        bidders.push(tokio::spawn(async move {
            let mut accepted = 0;
            for _ in 0..50 {
                let hundredths = counter.fetch_add(1, Ordering::SeqCst);
                let amount = format!("{}.{:02}", hundredths / 100, hundredths % 100);
                let reply = app.bid(&guild, &id, &user.token, json!(amount)).await;
                match reply.status.as_u16() {
                    201 => accepted += 1,
                    422 => assert_eq!(reply.code(), "bid_too_low", "{}", reply.text),
                    other => panic!("unexpected {other}: {}", reply.text),
                }
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for bidder in bidders {
        accepted += bidder.await.unwrap();
    }
    assert!(accepted > 0);
    let lot =
        app.get(&lot_path(&guild, &id, "")).token(&guild.owner.token).send().await.expect(200).json["lot"].clone();
    assert_eq!(lot["bid_count"], accepted);
    let (amounts, offsets) = app.lot_log(&id).await;
    assert_eq!(amounts.len() as i64, accepted);
    assert!(amounts.windows(2).all(|w| w[0] < w[1]), "accepted amounts rise strictly in sequence order");
    assert_eq!(offsets, (1..=offsets.len() as i64).collect::<Vec<_>>(), "offsets run 1, 2, 3 … with no gap");
    let wallets = app.wallets(&guild).await;
    let holding: Vec<&String> = wallets.iter().filter(|(_, (_, held))| held != "0.00").map(|(id, _)| id).collect();
    assert_eq!(holding, vec![lot["leader_member_id"].as_str().unwrap()], "only the leader holds");
    assert_eq!(wallets[lot["leader_member_id"].as_str().unwrap()].1, lot["high_bid"].as_str().unwrap());
    app.assert_ledger_consistent().await;
}

async fn bids_are_idempotent_and_lot_input_is_checked(app: TestApp) {
    let (guild, members) = funded(&app, &["ana"], 100).await;
    let lot = app.open_lot(&guild, json!({})).await;
    let id = lot["id"].as_str().unwrap();
    let path = lot_path(&guild, id, "/bids");
    let token = &members[0].0.token;
    let first = app
        .post(&path)
        .token(token)
        .header("idempotency-key", "bid-1")
        .json(json!({"amount": 20}))
        .send()
        .await
        .expect(201);
    let again = app
        .post(&path)
        .token(token)
        .header("idempotency-key", "bid-1")
        .json(json!({"amount": 20}))
        .send()
        .await
        .expect(201);
    assert_eq!(first.json, again.json);
    app.post(&path)
        .token(token)
        .header("idempotency-key", "bid-1")
        .json(json!({"amount": 25}))
        .send()
        .await
        .expect_error(422, "idempotency_key_reused");
    // A refusal is the first answer too: its repeat gets the same refusal.
    let low = app.post(&path).token(token).header("idempotency-key", "low-1").json(json!({"amount": 11})).send().await;
    let low = low.expect_error(422, "bid_too_low");
    let again =
        app.post(&path).token(token).header("idempotency-key", "low-1").json(json!({"amount": 11})).send().await;
    assert_eq!((again.status, again.json.clone()), (low.status, low.json.clone()));
    // Racing repeats of one keyed bid, likely sequenced in one batch: one bid, one answer.
    let app = Arc::new(app);
    let mut racers = Vec::new();
    for _ in 0..10 {
        let (app, path, token) = (app.clone(), path.clone(), token.clone());
        racers.push(tokio::spawn(async move {
            app.post(&path).token(&token).header("idempotency-key", "bid-2").json(json!({"amount": 30})).send().await
        }));
    }
    let mut ids = Vec::new();
    for racer in racers {
        ids.push(racer.await.unwrap().expect(201).json["bid"]["id"].clone());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let shown = app.get(&lot_path(&guild, id, "")).token(token).send().await.expect(200);
    assert_eq!(shown.json["lot"]["bid_count"], 2);

    let stranger = app.register("stranger").await;
    app.bid(&guild, id, &stranger.token, json!(50)).await.expect_error(404, "not_found");
    app.get(&lot_path(&guild, id, "")).token(&stranger.token).send().await.expect_error(404, "not_found");
    app.bid(&guild, &uuid::Uuid::now_v7().to_string(), token, json!(50)).await.expect_error(404, "not_found");
    app.bid(&guild, id, token, json!("1e3")).await.expect_error(422, "invalid_amount");
    app.bid(&guild, id, token, json!(-5)).await.expect_error(422, "invalid_amount");
    let lots = format!("/api/v1/guilds/{}/lots", guild.slug);
    let base =
        json!({"pool_id": guild.pool, "item": {"name": "Sword"}, "mode": "open", "min_bid": 10, "duration_s": 60});
    let bad = [
        ("mode", json!("dutch"), 422, "invalid_field"),
        ("min_bid", json!("0"), 422, "invalid_amount"),
        ("min_bid", json!(1.5), 422, "invalid_amount"),
        ("duration_s", json!(0), 422, "invalid_field"),
        ("duration_s", json!(999_999_999), 422, "invalid_field"),
        ("anti_snipe_s", json!(-1), 422, "invalid_field"),
        ("pool_id", json!(uuid::Uuid::now_v7().to_string()), 422, "unknown_reference"),
        ("item", json!({"name": ""}), 422, "invalid_field"),
        ("duration_s", json!("60"), 400, "invalid_json"),
    ];
    for (field, value, status, code) in bad {
        let mut body = base.clone();
        body[field] = value;
        let reply = app.post(&lots).token(&guild.owner.token).json(body).send().await;
        assert_eq!((reply.status.as_u16(), reply.code()), (status, code), "{field}: {}", reply.text);
    }
    app.post(&lots).token(token).json(base).send().await.expect_error(403, "forbidden");
}
